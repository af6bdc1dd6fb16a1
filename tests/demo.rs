//! `iobench demo`: the article's transcripts byte for byte, and each extra demo's
//! claim as a reader sees it.

use iobench::backend::Backend;
use iobench::demo::{DEMOS, Mode};
use std::process::Command;

/// The demo's output, as wide as it needs (tests/presentation.rs checks the
/// wrapping), so that each of its lines is found whole.
fn demo(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_iobench"))
        .env("COLUMNS", "1000")
        .arg("demo")
        .args(args)
        .output()
        .expect("run iobench demo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The four transcripts of the article, in the order ET "A", ET "ABC...", LT "A",
/// LT "ABC..." (../shared/MISSION.md, section 6).
const ARTICLE: &str = "\
-->ET Mode: it was triggered once
get 1 bytes of content: A
-->wait to read!
-->ET Mode: it was triggered once
get 9 bytes of content: ABCDEFGHI
get 8 bytes of content: JKLMNOPQ
-->wait to read!
-->LT Mode: it was triggered once!
get 1 bytes of content: A
-->LT Mode: it was triggered once!
get 9 bytes of content: ABCDEFGHI
-->LT Mode: it was triggered once!
get 8 bytes of content: JKLMNOPQ
";

#[test]
fn et_lt_plain_is_the_article_byte_for_byte() {
    // Several times: the run must be deterministic.
    for _ in 0..5 {
        assert_eq!(demo(&["et-lt", "--plain"]), ARTICLE);
    }
}

#[test]
fn et_lt_with_headers_holds_the_same_transcript_lines() {
    let out = demo(&["et-lt"]);
    let transcript: String = out
        .lines()
        .filter(|l| l.starts_with("-->") || l.starts_with("get "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(transcript, ARTICLE, "{out}");
    assert!(
        out.contains("== epoll-et: ET, each wakeup reads until EAGAIN"),
        "{out}"
    );
}

#[test]
fn a_teacher_can_vary_mode_input_buffer_and_backend() {
    assert_eq!(
        demo(&[
            "et-lt",
            "--plain",
            "--mode",
            Mode::Et.name(),
            "--input",
            "hello",
            "--buffer-size",
            "4"
        ]),
        "-->ET Mode: it was triggered once\nget 3 bytes of content: hel\nget 2 bytes of content: lo\n-->wait to read!\n"
    );
    let lt = demo(&["et-lt", "--plain", "--mode", Mode::Lt.name()]);
    for backend in [Backend::Select, Backend::Poll] {
        assert_eq!(
            demo(&["et-lt", "--plain", "--backend", backend.name()]),
            lt,
            "{backend}"
        );
        let explained = demo(&["et-lt", "--backend", backend.name()]);
        assert!(
            explained.contains("level-triggered (like LT; it has no ET)"),
            "{explained}"
        );
    }
}

#[test]
fn the_pitfall_strands_exactly_8_bytes_until_the_next_send() {
    let out = demo(&["et-pitfall"]);
    let lines: Vec<&str> = out.lines().collect();
    let stranded = "0 reports in the next 200 ms; 8 bytes still in the socket (FIONREAD): stranded";
    let first = lines
        .iter()
        .position(|l| *l == stranded)
        .unwrap_or_else(|| panic!("{out}"));
    // Only the next send brings them out, in the same read as the new byte.
    let rest = &lines[first..];
    assert!(
        rest.contains(&"-- the client sends \"R\" (1 byte)"),
        "{out}"
    );
    assert!(rest.contains(&"get 9 bytes of content: JKLMNOPQR"), "{out}");
    assert!(
        rest.contains(&"0 reports in the next 200 ms; 0 bytes still in the socket (FIONREAD)"),
        "{out}"
    );
}

#[test]
fn epollout_once_per_drain_in_et_on_every_wait_in_lt() {
    let out = demo(&["epollout"]);
    let section = |name: &str| -> Vec<String> {
        out.split(&format!("== {name} ==\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("{out}"))
            .lines()
            .take_while(|l| !l.starts_with("=="))
            .map(String::from)
            .collect()
    };
    let (et, lt) = (
        section(Backend::EpollEt.name()),
        section(Backend::EpollLt.name()),
    );
    assert_eq!(et.len(), 2, "{out}");
    assert!(
        et.iter()
            .all(|l| l.ends_with("EPOLLOUT on 1 of the next 4 waits")),
        "{out}"
    );
    assert!(
        lt.iter()
            .all(|l| l.ends_with("EPOLLOUT on 4 of the next 4 waits")),
        "{out}"
    );
    assert!(
        et.iter()
            .chain(&lt)
            .all(|l| l.contains(", 0 reports while full")),
        "{out}"
    );
}

#[test]
fn ctl_mod_yields_one_new_report() {
    let out = demo(&["ctl-mod"]);
    assert!(out.contains("first wait: 1 report\nsecond wait, nothing read: 0 reports\nafter EPOLL_CTL_MOD: 1 report\n"), "{out}");
}

#[test]
fn fd_setsize_refuses_exactly_descriptor_1024_on_select() {
    let out = demo(&["fd-setsize"]);
    let refused: Vec<&str> = out.lines().filter(|l| l.contains("refused")).collect();
    assert_eq!(refused.len(), 1, "{out}");
    assert!(
        refused[0].starts_with("select: descriptor 1024: refused"),
        "{out}"
    );
    assert!(
        out.contains("select: watching [1023], the wait reports 1 descriptor: 1023\n"),
        "{out}"
    );
    assert!(
        out.contains("poll: watching [1023, 1024], the wait reports 2 descriptors: 1023 and 1024"),
        "{out}"
    );
    assert!(out.contains("epoll-lt: watching [1023, 1024]"), "{out}");
}

#[test]
fn scan_cost_grows_with_idle_descriptors_for_select_and_poll_only() {
    let out = demo(&["scan-cost"]);
    let row = |n: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.split(['│', '┆']).nth(1).is_some_and(|c| c.trim() == n))
            .unwrap_or_else(|| panic!("no row {n}: {out}"))
            .split(['│', '┆'])
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect()
    };
    for (n, scanned) in [
        ("10", "(11)"),
        ("100", "(101)"),
        ("1000", "(1001)"),
        ("10000", "(10001)"),
    ] {
        let cells = row(n);
        assert!(cells[2].ends_with(scanned), "poll at {n}: {cells:?}");
        assert!(cells[3].ends_with("(1)"), "epoll at {n}: {cells:?}");
    }
    assert!(row("10")[1].ends_with("(11)"), "{out}");
    assert!(row("1000")[1].ends_with("(1001)"), "{out}");
    assert_eq!(row("10000")[1], "n/a (fd limit 1024)");
}

#[test]
fn trace_shows_the_loop_turn() {
    let out = demo(&[
        "et-lt",
        "--trace",
        "--mode",
        Mode::Et.name(),
        "--input",
        "A",
        "--plain",
    ]);
    // The calls and the transcript, in the order they happened.
    let order: Vec<&str> = out
        .lines()
        .map(|l| l.split(']').nth(1).unwrap_or(l).trim())
        .collect();
    let wait = order
        .iter()
        .position(|l| l.starts_with("epoll_wait("))
        .unwrap();
    assert_eq!(
        order[wait + 1],
        "-->ET Mode: it was triggered once",
        "{out}"
    );
    assert!(order[wait + 2].starts_with("read(fd "), "{out}");
    assert_eq!(order[wait + 3], "get 1 bytes of content: A", "{out}");
    assert!(out.contains("epoll_ctl(ADD, fd "), "{out}");
    assert!(
        out.contains("epoll_wait(max=1024, timeout=5000000us) = 1 [fd "),
        "{out}"
    );
    assert!(out.contains(", 9) = 1 \"A\""), "{out}");
    assert!(
        out.contains(", 9) = -1 EAGAIN (Resource temporarily unavailable)"),
        "{out}"
    );
}

#[test]
fn the_list_and_an_unknown_demo() {
    let list = demo(&[]);
    for (name, _) in DEMOS {
        assert!(list.contains(&format!("  {name} ")), "{list}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_iobench"))
        .args(["demo", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no demo called `nope`"));
}

/// Flags that contradict each other or the demo are refused with a reason (before:
/// `et-lt --backend epoll-et --mode lt` ran ET without a word, and `fd-setsize
/// --mode et` was accepted and ignored).
#[test]
fn conflicting_demo_flags_are_refused() {
    let refused = |args: &[&str], says: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_iobench"))
            .arg("demo")
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "demo {args:?} ran: {stderr}");
        assert!(stderr.contains(says), "demo {args:?}: {stderr}");
    };
    let et = Backend::EpollEt.name();
    refused(
        &["et-lt", "--backend", et, "--mode", Mode::Lt.name()],
        "--backend epoll-et is edge-triggered: it cannot show --mode lt",
    );
    refused(
        &["et-lt", "--backend", et, "--mode", Mode::Both.name()],
        "cannot show --mode both",
    );
    refused(
        &["fd-setsize", "--mode", Mode::Et.name()],
        "demo fd-setsize takes no --mode",
    );
    refused(
        &["et-pitfall", "--backend", et],
        "demo et-pitfall takes no --backend",
    );
    // What fits still runs: a level-triggered backend in LT mode.
    let lt = demo(&[
        "et-lt",
        "--plain",
        "--backend",
        Backend::Poll.name(),
        "--mode",
        Mode::Lt.name(),
    ]);
    assert!(lt.contains("-->LT Mode"), "{lt}");
}

/// Through a ring, the server is told what was read: the article's sends come back as
/// completions of 1, 9 and 8 bytes, and eight connections' receives as one enter.
#[test]
fn uring_is_told_what_was_read_and_batches_in_one_enter() {
    let out = demo(&["uring"]);
    let completions: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("completion: recv = "))
        .collect();
    assert_eq!(
        completions,
        ["1: A", "9: ABCDEFGHI", "8: JKLMNOPQ"],
        "{out}"
    );
    assert_eq!(
        out.matches("io_uring_enter(to_submit=1, min_complete=1) = 1")
            .count(),
        3,
        "one enter per receive: {out}"
    );
    assert!(
        out.contains("8 completions of 8 bytes reaped by 1 io_uring_enter"),
        "{out}"
    );
}
