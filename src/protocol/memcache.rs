//! memcached's text protocol, its `set` and `get`:
//! `set <key> <flags> <exptime> <bytes> [noreply]\r\n<data>\r\n` is answered
//! `STORED\r\n`, and `get <key>...\r\n` with `VALUE <key> <flags> <bytes>\r\n<data>\r\n`
//! for each key found, then `END\r\n`. Other commands get `ERROR\r\n`, a bad `set`
//! line or key `CLIENT_ERROR bad command line format\r\n`, as memcached answers
//! them, and the connection stays (the line alone is consumed, as memcached does);
//! a value longer than --max-frame or not followed by `\r\n`, or a line longer than
//! [`MAX_LINE`], is a protocol error. Expiry times are read and not kept: a value
//! stays until it is replaced.

use super::{CRLF, ProtocolError, Sink};

/// The longest command line (memcached's own read limit for one).
pub const MAX_LINE: usize = 2048;
/// The longest key (memcached's KEY_MAX_LENGTH).
pub const MAX_KEY: usize = 250;
pub const STORED: &[u8] = b"STORED\r\n";
/// What follows the last value of a `get` with one key: its `\r\n`, then `END`.
pub const VALUE_TAIL: &[u8] = b"\r\nEND\r\n";
/// The store's answer past its memory bound (memcached's words, with -M).
pub const OUT_OF_MEMORY: &[u8] = b"SERVER_ERROR out of memory storing object\r\n";

#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    Set {
        key: &'a [u8],
        flags: u32,
        data: &'a [u8],
        noreply: bool,
    },
    /// The keys, separated by spaces.
    Get { keys: &'a [u8] },
    /// A command this server does not know: memcached's `ERROR`.
    Unknown,
    /// A command line memcached refuses: `CLIENT_ERROR bad command line format`.
    Invalid,
}

/// Where `set` keeps values and `get` finds them: the server's store, shared by its
/// threads.
pub trait Store {
    /// Keeps `data` with its flags under `key`, in place of what was there; false
    /// when there is no room for it.
    fn set(&self, key: &[u8], flags: u32, data: &[u8]) -> bool;
    /// Calls `found` with the flags and data kept under `key`, if any.
    fn get(&self, key: &[u8], found: &mut dyn FnMut(u32, &[u8]));
}

/// The next complete command at the start of `buf` and the bytes it takes (a set's
/// value included), or None when more are needed. A value may be up to `max_frame`
/// bytes, a command line up to [`MAX_LINE`].
pub fn decode(buf: &[u8], max_frame: usize) -> Result<Option<(Command<'_>, usize)>, ProtocolError> {
    let window = &buf[..buf.len().min(MAX_LINE)];
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        return match buf.len() >= MAX_LINE {
            true => Err(ProtocolError::Malformed(
                "a command line longer than memcached's 2048 bytes",
            )),
            false => Ok(None),
        };
    };
    // memcached takes a bare `\n` as well.
    let line = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
    let after = nl + 1;
    let start = line.iter().position(|&b| b != b' ').unwrap_or(line.len());
    let end = line[start..]
        .iter()
        .position(|&b| b == b' ')
        .map_or(line.len(), |e| start + e);
    let (name, rest) = (&line[start..end], &line[end..]);
    match name {
        b"set" => set(words(rest).collect(), &buf[after..], max_frame)
            .map(|c| c.map(|(command, used)| (command, after + used))),
        b"get" => {
            let command = match words(rest).map(<[u8]>::len).max() {
                None => Command::Unknown,
                Some(longest) if longest > MAX_KEY => Command::Invalid,
                Some(_) => Command::Get { keys: rest },
            };
            Ok(Some((command, after)))
        }
        _ => Ok(Some((Command::Unknown, after))),
    }
}

/// The words of a command line, which spaces separate.
fn words(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&b| b == b' ').filter(|w| !w.is_empty())
}

/// A `set` line's words after `set`, and what follows the line: the command and
/// the bytes its value takes (none when the line is refused).
fn set<'a>(
    words: Vec<&'a [u8]>,
    rest: &'a [u8],
    max_frame: usize,
) -> Result<Option<(Command<'a>, usize)>, ProtocolError> {
    let (key, flags, exptime, bytes, noreply) = match words[..] {
        [key, flags, exptime, bytes] => (key, flags, exptime, bytes, false),
        // memcached ignores a fifth word that is not `noreply`.
        [key, flags, exptime, bytes, last] => (key, flags, exptime, bytes, last == b"noreply"),
        // Not a set to memcached at all.
        _ => return Ok(Some((Command::Unknown, 0))),
    };
    let refused = Ok(Some((Command::Invalid, 0)));
    if key.len() > MAX_KEY {
        return refused;
    }
    let number = |w: &[u8]| {
        std::str::from_utf8(w)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
    };
    let expiry_ok = std::str::from_utf8(exptime)
        .ok()
        .is_some_and(|s| s.parse::<i64>().is_ok());
    let (Some(flags), Some(bytes), true) = (number(flags), number(bytes), expiry_ok) else {
        return refused;
    };
    let Ok(flags) = u32::try_from(flags) else {
        return refused;
    };
    if bytes > max_frame as u64 {
        return Err(ProtocolError::FrameTooLong {
            length: bytes,
            limit: max_frame,
        });
    }
    let end = bytes as usize;
    if rest.len() < end + CRLF.len() {
        return Ok(None);
    }
    if &rest[end..end + CRLF.len()] != CRLF {
        return Err(ProtocolError::Malformed(
            "bad data chunk: the value is not followed by \\r\\n",
        ));
    }
    let command = Command::Set {
        key,
        flags,
        data: &rest[..end],
        noreply,
    };
    Ok(Some((command, end + CRLF.len())))
}

/// memcached's answer to `command`, `store` keeping the values.
pub fn reply(command: &Command<'_>, store: &dyn Store, out: &mut Vec<u8>) {
    match *command {
        Command::Set {
            key,
            flags,
            data,
            noreply,
        } => {
            let stored = store.set(key, flags, data);
            if !noreply {
                out.put(if stored { STORED } else { OUT_OF_MEMORY });
            }
        }
        Command::Get { keys } => {
            for key in words(keys) {
                store.get(key, &mut |flags, data| {
                    value_head(key, flags, data.len(), out);
                    out.put(data);
                    out.put(CRLF);
                });
            }
            out.put(b"END\r\n");
        }
        Command::Unknown => out.put(b"ERROR\r\n"),
        Command::Invalid => out.put(b"CLIENT_ERROR bad command line format\r\n"),
    }
}

/// `VALUE <key> <flags> <bytes>\r\n`: what comes before a value in a `get`'s reply.
pub fn value_head(key: &[u8], flags: u32, len: usize, out: &mut impl Sink) {
    out.put(b"VALUE ");
    out.put(key);
    out.put(b" ");
    out.put_number(flags.into());
    out.put(b" ");
    out.put_number(len as u64);
    out.put(CRLF);
}

/// `set <key> <flags> 0 <bytes>\r\n`: what comes before a value to store (and
/// `\r\n` after it); it never expires.
pub fn set_head(key: &[u8], flags: u32, len: usize, out: &mut impl Sink) {
    out.put(b"set ");
    out.put(key);
    out.put(b" ");
    out.put_number(flags.into());
    out.put(b" 0 ");
    out.put_number(len as u64);
    out.put(CRLF);
}

/// `get <key>\r\n`.
pub fn get_line(key: &[u8], out: &mut impl Sink) {
    out.put(b"get ");
    out.put(key);
    out.put(CRLF);
}

/// A store for the tests of the protocol and of the load generator's replies:
/// a map, and a bound on how many items it takes.
#[cfg(test)]
pub(crate) struct MapStore {
    /// Flags and value by key.
    items: std::cell::RefCell<std::collections::HashMap<Vec<u8>, Item>>,
    capacity: usize,
}

#[cfg(test)]
type Item = (u32, Vec<u8>);

#[cfg(test)]
impl MapStore {
    pub(crate) fn new(capacity: usize) -> MapStore {
        MapStore {
            items: Default::default(),
            capacity,
        }
    }
}

#[cfg(test)]
impl Store for MapStore {
    fn set(&self, key: &[u8], flags: u32, data: &[u8]) -> bool {
        let mut items = self.items.borrow_mut();
        if !items.contains_key(key) && items.len() >= self.capacity {
            return false;
        }
        items.insert(key.to_vec(), (flags, data.to_vec()));
        true
    }

    fn get(&self, key: &[u8], found: &mut dyn FnMut(u32, &[u8])) {
        if let Some((flags, data)) = self.items.borrow().get(key) {
            found(*flags, data);
        }
    }
}
