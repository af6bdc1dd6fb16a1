//! The layering of src/lib.rs, checked: a module uses only the layers below its own.
//! Read from the source (`crate::NAME` in each file, comments left out), so that an
//! upward arrow fails here instead of waiting for a review to find it.

use std::collections::BTreeMap;
use std::path::Path;

/// Bottom to top, as src/lib.rs lists them; modules on one line are peers and may
/// not use each other.
const LAYERS: &[&[&str]] = &[
    &["names", "units", "rng", "words"],
    &["sys", "protocol", "style"],
    &["backend"],
    &["metrics"],
    &["server", "load", "transfer", "demo"],
    &["bench"],
    &["experiment"],
    &["report"],
    &["cli"],
    &["options"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level modules named as `crate::NAME` in `code`, comments left out.
fn uses(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            // `crate::{a::X, b}` names several.
            let names = match rest.strip_prefix('{') {
                Some(list) => list.split('}').next().unwrap_or("").to_string(),
                None => rest.to_string(),
            };
            for path in names.split(',') {
                let name: String = path
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push(name);
                }
                if !rest.starts_with('{') {
                    break;
                }
            }
        }
    }
    found
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_arrow_points_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut upward: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in all {
        let rel = path.strip_prefix(&src).unwrap();
        let module = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        // The crate roots and the build script are no layer's modules.
        if module == "lib" || module == "main" || module == "build" {
            continue;
        }
        let mine = layer_of(&module)
            .unwrap_or_else(|| panic!("src/{module} is in no layer: add it to LAYERS and lib.rs"));
        for used in uses(&std::fs::read_to_string(&path).unwrap()) {
            if used == module {
                continue;
            }
            let theirs = layer_of(&used)
                .unwrap_or_else(|| panic!("{}: crate::{used} is in no layer", rel.display()));
            if theirs >= mine {
                upward
                    .entry(rel.display().to_string())
                    .or_default()
                    .push(used);
            }
        }
    }
    for v in upward.values_mut() {
        v.dedup();
    }
    assert!(
        upward.is_empty(),
        "uses of a layer at or above the file's own: {upward:#?}"
    );
}

/// The layer list here and the module list of src/lib.rs name the same modules.
#[test]
fn the_layers_are_the_library_modules() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let mut declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';'))
        .collect();
    let mut layered: Vec<&str> = LAYERS.iter().flat_map(|l| l.iter().copied()).collect();
    declared.sort();
    layered.sort();
    assert_eq!(declared, layered);
}
