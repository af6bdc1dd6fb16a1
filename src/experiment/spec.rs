//! An experiment file: the question, a workload, and sweeps over settings.
//!
//! ```toml
//! title = "Idle connections"
//! question = "Do select and poll slow down as idle connections grow?"
//! kind = "echo"                      # echo (default), ring or transfer
//! runs = 3                           # interleaved over every point
//! [workload]                         # settings every point shares
//! connections = 64
//! [[sweep]]                          # every combination of these values
//! backend = ["select", "poll", "epoll-et"]
//! idle_connections = [0, 1000, 10000]
//! x = "idle_connections"             # the plots' x axis (default: the first numeric)
//! name = "idle"                      # optional: heads its table, names its plots' files
//! plots = ["requests_per_s", "p99_us"]
//! [quick]                            # `--quick`: fewer runs, shorter, fewer points
//! runs = 1
//! idle_connections = [0, 1000]
//! ```

use super::setting::{Kind, Setting};
use anyhow::{Context, Result, anyhow, bail};
use std::path::Path;

pub struct Experiment {
    pub name: String,
    pub title: String,
    pub question: String,
    /// What the literature found or what to expect: the README quotes it as is.
    pub background: Option<String>,
    pub kind: Kind,
    pub runs: usize,
    pub sweeps: Vec<Sweep>,
    /// Figures in the README's table (default: every sweep's plotted ones).
    pub table: Vec<String>,
    /// Every distinct point of all sweeps: the full settings it runs with.
    pub points: Vec<Vec<Setting>>,
    pub scale: Scale,
    /// The file as written, kept with the results.
    pub source: String,
}

pub struct Sweep {
    /// A heading for its table and a suffix for its plots' files, e.g. "100 active".
    pub name: Option<String>,
    /// Each swept setting's values, in the file's order.
    pub axes: Vec<Vec<Setting>>,
    pub x: &'static str,
    pub plots: Vec<String>,
    /// Indexes into [`Experiment::points`], in sweep order.
    pub points: Vec<usize>,
}

impl Sweep {
    /// The swept settings that take more than one value, x first.
    pub fn varied(&self) -> Vec<&'static str> {
        let mut keys: Vec<&'static str> = self
            .axes
            .iter()
            .filter(|a| a.len() > 1)
            .map(|a| a[0].key())
            .collect();
        keys.sort_by_key(|k| *k != self.x);
        keys
    }
}

impl Experiment {
    /// Point `i` by the settings that tell it from the others: those its sweeps vary
    /// ("poll, idle_connections=1000").
    pub fn point_label(&self, i: usize) -> String {
        let varied: Vec<&str> = self.sweeps.iter().flat_map(Sweep::varied).collect();
        let label: Vec<String> = self.points[i]
            .iter()
            .filter(|s| varied.contains(&s.key()))
            .map(Setting::label)
            .collect();
        label.join(", ")
    }
}

/// How much of an experiment file runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Every run and point the file asks for: a reference result.
    Full,
    /// The file's `[quick]` table applied: fewer runs and points, short windows.
    Quick,
}

impl Experiment {
    /// Reads `path` at `scale`.
    pub fn load(path: &Path, scale: Scale) -> Result<Experiment> {
        let source = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the experiment file {}", path.display()))?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::parse(&source, &stem, scale).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(source: &str, stem: &str, scale: Scale) -> Result<Experiment> {
        let mut doc: toml::Table = source.parse()?;
        let name = text(&mut doc, "name")?.unwrap_or_else(|| stem.to_string());
        let title = text(&mut doc, "title")?.unwrap_or_else(|| name.clone());
        let question = text(&mut doc, "question")?
            .ok_or_else(|| anyhow!("an experiment states its `question`"))?;
        let background = text(&mut doc, "background")?;
        let kind = match text(&mut doc, "kind")? {
            Some(k) => k.parse::<Kind>().map_err(|e| anyhow!(e))?,
            None => Kind::Echo,
        };
        let mut runs = match doc.remove("runs") {
            Some(v) => positive(&v, "runs")?,
            None => 3,
        };
        let mut base = workload(kind, doc.remove("workload"))?;
        let mut sweeps = sweeps(kind, doc.remove("sweep"))?;
        let table = match doc.remove("table") {
            Some(v) => strings(&v, "table")?,
            None => plotted(&sweeps),
        };
        let quick_table = doc.remove("quick");
        if let Some(key) = doc.keys().next() {
            bail!(
                "`{key}` is not a key of an experiment file (name, title, question, \
                 background, kind, runs, workload, sweep, quick, table)"
            );
        }
        if scale == Scale::Quick
            && let Some(toml::Value::Table(q)) = quick_table
        {
            apply_quick(kind, &q, &mut runs, &mut base, &mut sweeps)?;
        }
        let points = expand(&base, &mut sweeps);
        Ok(Experiment {
            name,
            title,
            question,
            background,
            kind,
            runs,
            sweeps,
            table,
            points,
            scale,
            source: source.to_string(),
        })
    }
}

/// The string at `key`, taken out of `doc`.
fn text(doc: &mut toml::Table, key: &str) -> Result<Option<String>> {
    doc.remove(key)
        .map(|v| match v {
            toml::Value::String(s) => Ok(s),
            _ => Err(anyhow!("`{key}` must be a string")),
        })
        .transpose()
}

/// `[workload]`: the settings every point shares.
fn workload(kind: Kind, table: Option<toml::Value>) -> Result<Vec<Setting>> {
    let workload = match table {
        Some(toml::Value::Table(t)) => t,
        None => toml::Table::new(),
        Some(_) => bail!("`[workload]` must be a table"),
    };
    workload
        .iter()
        .map(|(key, value)| Setting::parse(kind, key, value).map_err(|e| anyhow!("[workload] {e}")))
        .collect()
}

/// The `[[sweep]]` tables, at least one.
fn sweeps(kind: Kind, tables: Option<toml::Value>) -> Result<Vec<Sweep>> {
    match tables {
        Some(toml::Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, t)| sweep(kind, t).with_context(|| format!("in sweep {} ([[sweep]])", i + 1)))
            .collect(),
        None => bail!("an experiment has at least one [[sweep]]"),
        Some(_) => bail!("write sweeps as [[sweep]] tables"),
    }
}

/// Every sweep's plotted figures, each once: the README table's default.
fn plotted(sweeps: &[Sweep]) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for p in sweeps.iter().flat_map(|s| &s.plots) {
        if !all.contains(p) {
            all.push(p.clone());
        }
    }
    all
}

fn sweep(kind: Kind, value: &toml::Value) -> Result<Sweep> {
    let table = value
        .as_table()
        .ok_or_else(|| anyhow!("a sweep is a table"))?;
    let mut axes = Vec::new();
    let (mut x, mut plots, mut name) = (None, Vec::new(), None);
    for (key, value) in table {
        match key.as_str() {
            "name" => {
                name = Some(
                    value
                        .as_str()
                        .ok_or_else(|| anyhow!("a sweep's `name` is a string"))?
                        .to_string(),
                )
            }
            "x" => {
                x = Some(
                    value
                        .as_str()
                        .ok_or_else(|| anyhow!("`x` names a setting"))?,
                )
            }
            "plots" => plots = strings(value, "plots")?,
            _ => axes.push(axis(kind, key, value)?),
        }
    }
    if axes.is_empty() {
        bail!("a sweep varies at least one setting");
    }
    let x = match x {
        Some(name) => axes
            .iter()
            .map(|a: &Vec<Setting>| a[0].key())
            .find(|k| *k == name)
            .ok_or_else(|| anyhow!("x = \"{name}\" is not one of this sweep's settings"))?,
        // The first numeric setting with several values, else the first.
        None => axes
            .iter()
            .find(|a| a.len() > 1 && a[0].number().is_some())
            .unwrap_or(&axes[0])[0]
            .key(),
    };
    Ok(Sweep {
        name,
        axes,
        x,
        plots,
        points: Vec::new(),
    })
}

/// A sweep's values for one setting: a list, or one value.
fn axis(kind: Kind, key: &str, value: &toml::Value) -> Result<Vec<Setting>> {
    let values = match value {
        toml::Value::Array(a) => a.clone(),
        v => vec![v.clone()],
    };
    if values.is_empty() {
        bail!("`{key}` has no values");
    }
    values
        .iter()
        .map(|v| Setting::parse(kind, key, v).map_err(|e| anyhow!(e)))
        .collect()
}

/// `[quick]`: `runs`, and settings: a swept one gets the new values in every sweep
/// that varies it, any other one replaces the workload's.
fn apply_quick(
    kind: Kind,
    quick: &toml::Table,
    runs: &mut usize,
    base: &mut Vec<Setting>,
    sweeps: &mut [Sweep],
) -> Result<()> {
    for (key, value) in quick {
        if key == "runs" {
            *runs = positive(value, "quick.runs")?;
            continue;
        }
        let values = axis(kind, key, value).context("in [quick]")?;
        let mut swept = false;
        for a in sweeps.iter_mut().flat_map(|s| &mut s.axes) {
            if a[0].key() == key.as_str() {
                *a = values.clone();
                swept = true;
            }
        }
        if !swept {
            if values.len() > 1 {
                bail!("[quick] gives several values for `{key}`, which no sweep varies");
            }
            base.retain(|s| s.key() != key.as_str());
            base.push(values[0].clone());
        }
    }
    Ok(())
}

/// Every combination of each sweep's values over the workload; identical points
/// (in two sweeps) are measured once. (Identical as written: a setting left to its
/// default is not the same as one set to the default's value.)
fn expand(base: &[Setting], sweeps: &mut [Sweep]) -> Vec<Vec<Setting>> {
    let mut points: Vec<Vec<Setting>> = Vec::new();
    for sweep in sweeps {
        let mut combos: Vec<Vec<Setting>> = vec![Vec::new()];
        for axis in &sweep.axes {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    axis.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push(v.clone());
                        c
                    })
                })
                .collect();
        }
        for combo in combos {
            let mut full: Vec<Setting> = base
                .iter()
                .filter(|b| combo.iter().all(|c| c.key() != b.key()))
                .cloned()
                .collect();
            full.extend(combo);
            let index = match points.iter().position(|p| same_point(p, &full)) {
                Some(i) => i,
                None => {
                    points.push(full);
                    points.len() - 1
                }
            };
            sweep.points.push(index);
        }
    }
    points
}

fn same_point(a: &[Setting], b: &[Setting]) -> bool {
    a.len() == b.len() && a.iter().all(|s| b.contains(s))
}

fn positive(v: &toml::Value, what: &str) -> Result<usize> {
    v.as_integer()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n >= 1)
        .ok_or_else(|| anyhow!("`{what}` must be a whole number of at least 1"))
}

fn strings(v: &toml::Value, what: &str) -> Result<Vec<String>> {
    v.as_array()
        .and_then(|a| {
            a.iter()
                .map(|s| s.as_str().map(String::from))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| anyhow!("`{what}` is a list of figure names in quotes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        title = "t"
        question = "q?"
        runs = 3
        [workload]
        connections = 64
        payload = 64
        [[sweep]]
        backend = ["select", "epoll-et"]
        idle_connections = [0, 100, 1000]
        plots = ["requests_per_s"]
        [[sweep]]
        backend = ["select", "epoll-et"]
        idle_connections = 0
        payload = [64, "4K"]
        [quick]
        runs = 1
        idle_connections = [0, 100]
        duration = "100ms"
    "#;

    #[test]
    fn sweeps_expand_to_distinct_points() {
        let e = Experiment::parse(FILE, "idle", Scale::Full).unwrap();
        assert_eq!(e.name, "idle");
        assert_eq!(e.runs, 3);
        assert_eq!(e.sweeps[0].x, "idle_connections");
        assert_eq!(e.sweeps[0].varied(), ["idle_connections", "backend"]);
        assert_eq!(e.sweeps[1].x, "payload");
        assert_eq!(e.sweeps[0].points.len(), 6);
        assert_eq!(e.sweeps[1].points.len(), 4);
        // (backend, 0 idle, 64 B) is in both sweeps: 6 + 4 - 2.
        assert_eq!(e.points.len(), 8);
        assert!(
            e.points
                .iter()
                .all(|p| p.contains(&Setting::Connections(64)))
        );
        assert_eq!(e.table, ["requests_per_s"]);
        // Named by what some sweep varies; connections, the same everywhere, is not.
        assert_eq!(e.point_label(1), "payload=64, select, idle_connections=100");
        assert_eq!(e.point_label(7), "epoll-et, idle_connections=0, payload=4K");
    }

    #[test]
    fn quick_shrinks_the_sweep() {
        let e = Experiment::parse(FILE, "idle", Scale::Quick).unwrap();
        assert_eq!(e.runs, 1);
        assert_eq!(e.sweeps[0].points.len(), 4);
        assert!(
            e.points
                .iter()
                .all(|p| p.contains(&Setting::Duration(std::time::Duration::from_millis(100))))
        );
    }

    #[test]
    fn mistakes_say_where() {
        let bad = FILE.replace("idle_connections = 0", "idle = 0");
        let e = format!(
            "{:#}",
            Experiment::parse(&bad, "x", Scale::Full).err().unwrap()
        );
        assert!(e.contains("sweep 2") && e.contains("`idle`"), "{e}");
        let bad = FILE.replace("question = \"q?\"", "");
        assert!(Experiment::parse(&bad, "x", Scale::Full).is_err());
        let bad = FILE.replace("runs = 3", "runs = 3\nrusn = 2");
        let e = format!(
            "{:#}",
            Experiment::parse(&bad, "x", Scale::Full).err().unwrap()
        );
        assert!(e.contains("rusn"), "{e}");
        let bad = FILE.replace("plots = [", "x = \"payload\"\nplots = [");
        assert!(Experiment::parse(&bad, "x", Scale::Full).is_err());
    }
}
