//! `iobench transfer`: every method delivers the file intact, with the system calls
//! the article predicts where the kernel follows it; bad input is refused clearly.

use iobench::sys::Call;
use iobench::transfer::Method;
use serde_json::Value;
use std::process::Command;

fn transfer(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_iobench"))
        .arg("transfer")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn every_method_delivers_the_file_with_the_predicted_calls() {
    let out = transfer(&["--file-size", "8M", "--chunk", "32K", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let by = |m: Method| {
        results
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["method"] == m.name())
            .unwrap_or_else(|| panic!("no {m}: {results}"))
            .clone()
    };
    let chunks = 8 * 1024 / 32;
    // read + write: one read per chunk plus the one that finds the end.
    let rw = by(Method::ReadWrite);
    assert_eq!(rw["calls"][Call::Read.name()], chunks + 1, "{rw}");
    assert_eq!(rw["calls"][Call::Write.name()], chunks, "{rw}");
    assert_eq!(rw["bytes"], 8 << 20);
    // mmap: one mapping, one write per chunk, one unmapping.
    let mm = by(Method::Mmap);
    assert_eq!(mm["calls_total"], chunks + 2, "{mm}");
    // splice: at least two moves per chunk, and the one that finds the end.
    let splices = by(Method::Splice)["calls"][Call::Splice.name()].as_u64();
    assert!(splices.unwrap() > 2 * chunks);
    // sendfile: no user buffer at all, far fewer calls.
    let sf = by(Method::Sendfile);
    let sendfiles = sf["calls"][Call::Sendfile.name()].as_u64();
    assert!(sendfiles.unwrap() >= 1, "{sf}");
    assert!(sf["calls_total"].as_u64().unwrap() < chunks, "{sf}");
    assert!(sf["calls"].get(Call::Read.name()).is_none(), "{sf}");
    // O_DIRECT: the device fills the user buffer; only the write copies.
    let direct = by(Method::Direct);
    assert!(
        direct["prediction"]
            .as_str()
            .unwrap()
            .contains("1 CPU copy per chunk"),
        "{direct}"
    );
    // One unit convention, said: 8 MiB is 8.4 decimal MB, beside decimal MB/s
    // (before: "8 MB" for 8,388,608 bytes).
    assert!(
        stdout.contains("8.4 MB (8,388,608 bytes) in 32K chunks") && stdout.contains("decimal"),
        "{stdout}"
    );
}

#[test]
fn bad_input_is_refused_clearly() {
    for (args, message) in [
        (vec!["--chunk", "0"], "--chunk must be at least 1 byte"),
        (
            vec!["--file", "/nonexistent/iobench"],
            "cannot read /nonexistent/iobench",
        ),
        (vec!["--file-size", "1000000G"], "does not fit"),
        (
            vec![
                "--method",
                Method::Direct.name(),
                "--file-size",
                "1M",
                "--chunk",
                "1000",
            ],
            "multiple of 4096",
        ),
    ] {
        let out = transfer(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
