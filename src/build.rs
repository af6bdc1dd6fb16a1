//! Build script (here rather than at the root, whose layout is fixed): sets
//! `IOBENCH_VERSION`, what `iobench --version` prints, e.g. `0.1.0 (1a2b3c4-dirty,
//! release)`, so that a result can be traced to the code and profile that measured it.

use std::path::Path;
use std::process::Command;

fn main() {
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    // Only what goes into the binary reruns this script: a change there is a
    // rebuild anyway, and that keeps `-dirty` current without a rebuild per build.
    for input in ["src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo::rerun-if-changed={input}");
    }
    let commit = commit(Path::new(&root)).unwrap_or_else(|| "unknown".to_string());
    // PROFILE is `debug` or `release`, whatever the custom profile inherits from.
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".to_string());
    println!(
        "cargo::rustc-env=IOBENCH_VERSION={} ({commit}, {profile})",
        std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION")
    );
}

/// The short hash of HEAD, `-dirty` when the tree has changes; `None` without git or
/// outside a checkout of this repository (a crates tarball inside some other one).
fn commit(root: &Path) -> Option<String> {
    if !root.join(".git").exists() {
        return None;
    }
    let hash = git(root, &["rev-parse", "--short", "HEAD"])?;
    // A commit moves HEAD (detached) or the branch it names; a worktree keeps its
    // HEAD apart from the shared refs, so git says where each one is.
    println!(
        "cargo::rerun-if-changed={}",
        git(root, &["rev-parse", "--git-path", "HEAD"])?
    );
    let branch = git(root, &["rev-parse", "--symbolic-full-name", "HEAD"])?;
    if branch != "HEAD" {
        let loose = git(root, &["rev-parse", "--git-path", &branch])?;
        // A watched file that does not exist reruns the script every build: a packed
        // ref lives in packed-refs.
        let watched = match Path::new(&loose).exists() {
            true => loose,
            false => git(root, &["rev-parse", "--git-path", "packed-refs"])?,
        };
        println!("cargo::rerun-if-changed={watched}");
    }
    let dirty = match git(root, &["status", "--porcelain"]) {
        Some(changes) if !changes.is_empty() => "-dirty",
        _ => "",
    };
    Some(format!("{hash}{dirty}"))
}

/// `git ARGS` in `root`, its output trimmed; `None` when git is missing or fails.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        // `git status` would otherwise refresh the index, and a rewritten index is a
        // change some other tool may rebuild for.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    out.status.success().then(|| text.trim().to_string())
}
