//! Redis's RESP, as far as an echo needs it: a command is an array of bulk strings
//! (`*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n`); `ECHO x` is answered with the bulk
//! string `x`, `PING` with `+PONG` (`PING x` with `x`), names in any case, as
//! Redis does; any other command gets Redis's error for it, and the connection
//! stays. Inline commands (a bare `PING\r\n`) are not spoken: a protocol error.

use super::{CRLF, ProtocolError, Sink};

/// Most strings in one command: with each string bounded by --max-frame (all of
/// them together, in fact), a frame's framing is bounded too.
pub const MAX_ARGS: u64 = 1024;
/// Digits a length may have: any 19-digit number fits a u64.
const MAX_DIGITS: usize = 19;
pub const ECHO: &[u8] = b"ECHO";
const PING: &[u8] = b"PING";
/// The most of a peer's string an error quotes (Redis's cut).
const QUOTED: usize = 128;

/// One command: its name, and its arguments as they came.
#[derive(Debug, PartialEq, Eq)]
pub struct Command<'a> {
    pub name: &'a [u8],
    /// How many arguments follow the name.
    pub args: u64,
    /// The arguments' bulk strings, framing and all (checked by `decode`).
    encoded: &'a [u8],
}

impl<'a> Command<'a> {
    /// The arguments, read from their framing again: only an error quotes more
    /// than the first.
    pub fn arguments(&self) -> impl Iterator<Item = &'a [u8]> {
        let mut rest = self.encoded;
        std::iter::from_fn(move || {
            let (len, start) = length(rest, 0, b'$').ok().flatten()?;
            let (string, after) = rest[start..].split_at(len as usize);
            rest = &after[CRLF.len()..];
            Some(string)
        })
    }
}

/// The next complete command at the start of `buf` and the bytes it takes, or None
/// when more are needed. The strings of one command are at most `max_frame` bytes
/// together; values are skipped by their length, never scanned.
pub fn decode(buf: &[u8], max_frame: usize) -> Result<Option<(Command<'_>, usize)>, ProtocolError> {
    let Some((count, mut at)) = length(buf, 0, b'*')? else {
        return Ok(None);
    };
    if !(1..=MAX_ARGS).contains(&count) {
        return Err(ProtocolError::Malformed(
            "invalid multibulk length: a command is an array of 1 to 1024 bulk strings",
        ));
    }
    let (mut name, mut args_from) = (&buf[..0], at);
    let mut total = 0u64;
    for i in 0..count {
        let Some((len, start)) = length(buf, at, b'$')? else {
            return Ok(None);
        };
        total += len;
        if total > max_frame as u64 {
            return Err(ProtocolError::FrameTooLong {
                length: total,
                limit: max_frame,
            });
        }
        let end = start + len as usize;
        if buf.len() < end + CRLF.len() {
            return Ok(None);
        }
        if &buf[end..end + CRLF.len()] != CRLF {
            return Err(ProtocolError::Malformed(
                "a bulk string not followed by \\r\\n",
            ));
        }
        at = end + CRLF.len();
        if i == 0 {
            (name, args_from) = (&buf[start..end], at);
        }
    }
    let command = Command {
        name,
        args: count - 1,
        encoded: &buf[args_from..at],
    };
    Ok(Some((command, at)))
}

/// The length line at `at` (`*N\r\n` or `$N\r\n`, by `marker`): N and where what
/// follows it starts, or None when it is not complete yet.
fn length(buf: &[u8], at: usize, marker: u8) -> Result<Option<(u64, usize)>, ProtocolError> {
    let Some(&first) = buf.get(at) else {
        return Ok(None);
    };
    if first != marker {
        return Err(ProtocolError::Malformed(if marker == b'*' {
            "expected '*': a command is an array of bulk strings"
        } else {
            "expected '$': a command's elements are bulk strings"
        }));
    }
    let rest = &buf[at + 1..buf.len().min(at + 2 + MAX_DIGITS)];
    let Some(cr) = rest.iter().position(|&b| b == b'\r') else {
        return match rest.len() > MAX_DIGITS {
            true => Err(ProtocolError::Malformed("a length longer than 19 digits")),
            false => Ok(None),
        };
    };
    let digits = &rest[..cr];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ProtocolError::Malformed(
            "invalid length: not a decimal number",
        ));
    }
    let after_cr = at + 1 + cr + 1;
    match buf.get(after_cr) {
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return Err(ProtocolError::Malformed("a length not followed by \\r\\n")),
    }
    let n = digits
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    Ok(Some((n, after_cr + 1)))
}

/// Redis's answer to `command`.
pub fn reply(command: &Command<'_>, out: &mut Vec<u8>) {
    let (echo, ping) = (
        command.name.eq_ignore_ascii_case(ECHO),
        command.name.eq_ignore_ascii_case(PING),
    );
    match (command.arguments().next(), command.args) {
        (Some(x), 1) if echo || ping => {
            bulk_head(x.len(), out);
            out.put(x);
            out.put(CRLF);
        }
        (None, _) if ping => out.put(b"+PONG\r\n"),
        _ if echo => out.put(b"-ERR wrong number of arguments for 'echo' command\r\n"),
        _ if ping => out.put(b"-ERR wrong number of arguments for 'ping' command\r\n"),
        _ => {
            out.put(b"-ERR unknown command '");
            quote(command.name, out);
            out.put(b"', with args beginning with: ");
            // As Redis lists them: each quoted, until the list is QUOTED long.
            let mut listed = 0;
            for arg in command.arguments() {
                if listed >= QUOTED {
                    break;
                }
                let shown = &arg[..arg.len().min(QUOTED - listed)];
                out.put(b"'");
                quote(shown, out);
                out.put(b"' ");
                listed += shown.len() + 3;
            }
            out.put(CRLF);
        }
    }
}

/// A peer's string inside an error line: cut short, its line breaks made spaces so
/// that the line stays one line.
fn quote(s: &[u8], out: &mut Vec<u8>) {
    out.extend(s.iter().take(QUOTED).map(|&b| match b {
        b'\r' | b'\n' => b' ',
        b => b,
    }));
}

/// `$N\r\n`: what comes before a bulk string of `len` bytes (and `\r\n` after it).
pub fn bulk_head(len: usize, out: &mut impl Sink) {
    out.put(b"$");
    out.put_number(len as u64);
    out.put(CRLF);
}

/// What comes before the argument of `ECHO x` with an `x` of `len` bytes (and
/// `\r\n` after it).
pub fn echo_head(len: usize, out: &mut impl Sink) {
    out.put(b"*2\r\n");
    bulk_head(ECHO.len(), out);
    out.put(ECHO);
    out.put(CRLF);
    bulk_head(len, out);
}
