//! An experiment's results as files: README.md (the question, what the data shows,
//! tables and plots, how it was measured, the command and the machine), data.csv,
//! data.json, and one SVG per sweep and plotted figure; and the plots drawn again from a
//! saved data.json.

mod csv;
mod json;
mod plots;
mod readme;
mod shows;
mod sweep;

use crate::experiment::{Experiment, Results};
use crate::style::Style;
use anyhow::{Context, Result, bail};
use std::path::Path;

/// Writes `results` of `exp`, run by `command`, into `out`.
pub fn write(exp: &Experiment, results: &Results, command: &str, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    plots::remove_old(out)?;
    save(out, "data.json", json::render(exp, results, command)?)?;
    save(out, "data.csv", csv::render(results)?)?;
    let plots = plots::draw(exp, results, out)?;
    save(
        out,
        "README.md",
        readme::render(exp, results, command, &plots),
    )
}

/// Draws the plots of the results in `out` again from its data.json, without measuring:
/// for a change in how plots are drawn. README.md, data.csv and data.json stay as they
/// are, since none depends on how a plot is drawn; should the README now show a plot
/// differently (another title, or one drawn that was not), that is an error that says
/// so. Returns the plots' files.
pub fn replot(out: &Path) -> Result<Vec<String>> {
    let (exp, results) = json::load(out)?;
    plots::remove_old(out)?;
    let plots = plots::draw(&exp, &results, out)?;
    let path = out.join("README.md");
    let readme =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let lines = plots.iter().flatten().map(readme::plot_line);
    let stale: Vec<String> = lines.filter(|l| !readme.contains(l.as_str())).collect();
    if !stale.is_empty() {
        bail!(
            "the plots are drawn again, but {} does not show them so (run the experiment \
             again to rewrite it): {}",
            path.display(),
            stale.concat().trim_end()
        );
    }
    let files = plots.into_iter().flatten();
    Ok(files
        .filter_map(|p| match p {
            plots::Plot::Drawn { file, .. } => Some(file),
            plots::Plot::NotDrawn(_) => None,
        })
        .collect())
}

/// What the experiment shows, in the terminal: the README's sentences, wrapped,
/// and where the results are.
pub fn summary(exp: &Experiment, results: &Results, out: &Path, style: &Style) -> String {
    let mut text = String::new();
    for sentence in shows::sentences(exp, results) {
        text += &style.wrap(&sentence.replace("**", ""), 2);
    }
    text + &style.wrap(&format!("{}: results in {}", exp.name, out.display()), 2)
}

fn save(out: &Path, name: &str, text: String) -> Result<()> {
    let path = out.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}
