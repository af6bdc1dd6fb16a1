//! The conventions of a CLI people already use: shell completions, a man page,
//! `--version` that names the build, `--help` with headings and examples. Each runs
//! the built binary and reads what it prints.

use std::process::Command;

/// `iobench ARGS`: its standard output, after checking that it succeeded.
fn iobench(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_iobench"))
        .args(args)
        .output()
        .expect("run iobench");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    assert!(
        out.status.success(),
        "iobench {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn completions_know_the_commands_and_their_flags() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = iobench(&["completions", shell]);
        assert!(script.contains("compare"), "{shell}: {script}");
        assert!(script.contains("backends"), "{shell}: {script}");
        assert!(
            script.contains("--backends") || shell == "fish",
            "{shell}: {script}"
        );
    }
    // fish names long flags without their dashes: `-l backends`.
    assert!(iobench(&["completions", "fish"]).contains("-l backends"));
}

#[test]
fn the_man_page_is_roff_and_names_every_command() {
    let page = iobench(&["manpage"]);
    assert!(page.starts_with(".TH") || page.starts_with(".ie"), "{page}");
    assert!(page.contains("\n.TH iobench 1"), "{page}");
    for command in ["serve", "load", "run", "compare", "demo", "completions"] {
        assert!(
            page.contains(&format!("iobench\\-{command}(1)")),
            "{command}: {page}"
        );
    }
}

#[test]
fn manpage_dir_writes_one_page_per_command_with_its_options() {
    let dir = std::env::temp_dir().join(format!("iobench-man-{}", std::process::id()));
    let said = iobench(&["manpage", "--dir", dir.to_str().unwrap()]);
    assert!(said.contains("iobench.1"), "{said}");
    let compare = std::fs::read_to_string(dir.join("iobench-compare.1")).unwrap();
    let run = std::fs::read_to_string(dir.join("iobench-experiment-run.1"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        compare.contains("backends") && compare.contains(".SH WORKLOAD"),
        "{compare}"
    );
    assert!(compare.contains("Examples:"), "{compare}");
    assert!(run.unwrap().contains("quick"));
}

#[test]
fn version_names_the_commit_and_the_profile() {
    let version = iobench(&["--version"]);
    // "iobench 0.1.0 (1a2b3c4-dirty, debug)", or "unknown" outside a git checkout.
    let inside = version
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(inside, _)| inside)
        .unwrap_or_else(|| panic!("{version}"));
    let (commit, profile) = inside
        .split_once(", ")
        .unwrap_or_else(|| panic!("{version}"));
    let hash = commit.trim_end_matches("-dirty");
    assert!(
        hash == "unknown" || (hash.len() >= 7 && hash.chars().all(|c| c.is_ascii_hexdigit())),
        "{version}"
    );
    let expected = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    assert_eq!(profile, expected, "{version}");
    assert!(version.starts_with(&format!("iobench {}", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn help_groups_the_flags_and_ends_with_examples() {
    let help = iobench(&["compare", "--help"]);
    for heading in [
        "Server:",
        "Workload:",
        "Measurement:",
        "Output:",
        "Examples:",
    ] {
        assert!(help.lines().any(|l| l == heading), "{heading}: {help}");
    }
    assert!(
        help.contains("  iobench compare --backends select,poll,epoll-et --idle-connections 900"),
        "{help}"
    );
    // Every command says how it is used.
    for command in [
        "serve",
        "load",
        "run",
        "demo",
        "soak",
        "transfer",
        "experiment",
    ] {
        assert!(iobench(&[command, "-h"]).contains("Examples:"), "{command}");
    }
}

#[test]
fn a_closed_stdout_is_a_message_not_a_panic() {
    // The reading end closed before the start: every write fails, deterministically.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_iobench"))
        .args(["completions", "bash"])
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("standard output"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
