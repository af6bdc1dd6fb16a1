//! Printing system calls as they happen, from our own counting layer.

use std::borrow::Borrow;
use std::fmt::Display;
use std::io::{self, Write};
use std::sync::Mutex;
use std::time::Instant;

/// Where trace lines go, each prefixed by the time since tracing started.
pub struct Tracer {
    start: Instant,
    out: Mutex<Box<dyn Write + Send>>,
}

impl Tracer {
    pub fn new(out: Box<dyn Write + Send>) -> Tracer {
        Tracer {
            start: Instant::now(),
            out: Mutex::new(out),
        }
    }

    pub fn line(&self, text: &str) {
        let t = self.start.elapsed().as_secs_f64();
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        // A closed trace stream must not stop the server.
        let _ = writeln!(out, "[{t:10.6}] {text}");
    }
}

/// `= 9`, or `= -1 EAGAIN (Resource temporarily unavailable)`, as strace prints it.
pub fn outcome<T: Display, E: Borrow<io::Error>>(r: &Result<T, E>) -> String {
    match r {
        Ok(v) => format!("= {v}"),
        Err(e) => {
            let e = e.borrow();
            // strerror's words, as strace shows them, without Rust's "(os error N)".
            let text = e.to_string();
            let words = text.split(" (os error").next().unwrap_or(&text);
            match e.raw_os_error() {
                Some(n) => format!("= -1 {:?} ({words})", nix::errno::Errno::from_raw(n)),
                None => format!("= -1 ({words})"),
            }
        }
    }
}

/// Bytes as a quoted, escaped string (at most 32 shown), after a space.
pub fn shown(bytes: &[u8]) -> String {
    let mut s = String::from(" \"");
    for &b in bytes.iter().take(32) {
        s.extend(std::ascii::escape_default(b).map(char::from));
    }
    s.push('"');
    if bytes.len() > 32 {
        s.push_str("...");
    }
    s
}
