//! The Protocol layer (Transport -> Protocol -> Processor, as the game-server article
//! layers a server): cutting a byte stream into messages, and the echo processor's
//! reply to each. Shared by the server and the load generator.
//!
//! - `raw`: no messages, bytes are echoed as they come.
//! - `line`: text lines ending in `\n`; each complete line is echoed.
//! - `tlv`: frames `[type: u16][length: u32][value]`, big-endian. A request (1) is
//!   answered by a response (2) carrying the same value; notices (3) and responses get
//!   no reply. A request's value starts with its 8-byte sequence number (big-endian),
//!   which lets a client match pipelined responses.
//! - `resp`: Redis's protocol, commands as arrays of bulk strings; `ECHO` and `PING`
//!   are answered as Redis answers them, any other command with an error ([`resp`]).
//! - `memcache`: memcached's text protocol, `set` and `get` on a store the caller
//!   provides ([`memcache`]).
//!
//! Replies are in the order of the requests, so a pipelining client matches them
//! by position.
//!
//! Layer: the bottom (beside `sys`); uses only `names`.

pub mod memcache;
pub mod resp;

use crate::names::named_enum;
use std::fmt;

named_enum! {
    /// How a byte stream is cut into messages.
    pub enum Protocol {
        /// bytes echoed as they come
        Raw => "raw",
        /// `\n`-terminated lines, each echoed
        Line => "line",
        /// [type u16][length u32][value], big-endian
        Tlv => "tlv",
        /// Redis's RESP: ECHO and PING answered, other commands an error
        Resp => "resp",
        /// memcached's text protocol: set and get on an in-memory store
        Memcache => "memcache",
    }
}

/// The line end of RESP and memcache.
pub const CRLF: &[u8] = b"\r\n";

pub const TLV_HEADER: usize = 6;
pub const TLV_REQUEST: u16 = 1;
pub const TLV_RESPONSE: u16 = 2;
pub const TLV_NOTICE: u16 = 3;

/// One decoded message, borrowed from the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A line, with its `\n`.
    Line(&'a [u8]),
    Tlv {
        kind: u16,
        value: &'a [u8],
    },
    /// A RESP command (an array of bulk strings).
    Resp(resp::Command<'a>),
    /// A memcache command line, with a set's value.
    Memcache(memcache::Command<'a>),
}

/// Why a stream cannot be decoded: the connection is closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    LineTooLong {
        limit: usize,
    },
    FrameTooLong {
        length: u64,
        limit: usize,
    },
    UnknownType(u16),
    /// A frame that breaks the protocol's grammar, and what was wrong with it.
    Malformed(&'static str),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::LineTooLong { limit } => {
                write!(f, "line longer than the {limit}-byte limit (--max-frame)")
            }
            ProtocolError::FrameTooLong { length, limit } => {
                write!(
                    f,
                    "frame of {length} bytes exceeds the {limit}-byte limit (--max-frame)"
                )
            }
            ProtocolError::UnknownType(t) => write!(f, "unknown frame type {t}"),
            ProtocolError::Malformed(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// The next complete message at the start of `buf` and the bytes it takes, or None
/// when more bytes are needed. Never asks for more than `max_frame` bytes of payload:
/// a peer cannot make us buffer without bound.
pub fn decode(
    protocol: Protocol,
    buf: &[u8],
    max_frame: usize,
) -> Result<Option<(Frame<'_>, usize)>, ProtocolError> {
    decode_from(protocol, buf, 0, max_frame)
}

/// [`decode`] of a `buf` whose first `scanned` bytes are known to hold no line end
/// (an earlier call returned None on them): a line arriving in many small reads is
/// scanned once, not again from its start on every read. (`resp` and `memcache`
/// look for line ends only in short length and command lines, and skip values by
/// their length: they rescan at most those lines.)
pub fn decode_from(
    protocol: Protocol,
    buf: &[u8],
    scanned: usize,
    max_frame: usize,
) -> Result<Option<(Frame<'_>, usize)>, ProtocolError> {
    match protocol {
        Protocol::Raw => unreachable!("raw streams are not decoded"),
        Protocol::Line => match buf[scanned.min(buf.len())..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|at| scanned + at)
        {
            Some(end) if end < max_frame => Ok(Some((Frame::Line(&buf[..=end]), end + 1))),
            Some(_) => Err(ProtocolError::LineTooLong { limit: max_frame }),
            None if buf.len() >= max_frame => Err(ProtocolError::LineTooLong { limit: max_frame }),
            None => Ok(None),
        },
        Protocol::Tlv => {
            if buf.len() < 2 {
                return Ok(None);
            }
            let kind = u16::from_be_bytes([buf[0], buf[1]]);
            if !(TLV_REQUEST..=TLV_NOTICE).contains(&kind) {
                return Err(ProtocolError::UnknownType(kind));
            }
            if buf.len() < TLV_HEADER {
                return Ok(None);
            }
            let length = u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]) as usize;
            if length > max_frame {
                return Err(ProtocolError::FrameTooLong {
                    length: length as u64,
                    limit: max_frame,
                });
            }
            let end = TLV_HEADER + length;
            if buf.len() < end {
                return Ok(None);
            }
            let value = &buf[TLV_HEADER..end];
            Ok(Some((Frame::Tlv { kind, value }, end)))
        }
        Protocol::Resp => Ok(resp::decode(buf, max_frame)?.map(|(c, n)| (Frame::Resp(c), n))),
        Protocol::Memcache => {
            Ok(memcache::decode(buf, max_frame)?.map(|(c, n)| (Frame::Memcache(c), n)))
        }
    }
}

/// The processors: appends the reply to `frame`, if any, to `out`. Every protocol
/// but memcache is echoed (resp's ECHO and PING); memcache's set and get go to
/// `store`.
pub fn reply(frame: &Frame<'_>, store: &dyn memcache::Store, out: &mut Vec<u8>) {
    match frame {
        Frame::Line(line) => out.extend_from_slice(line),
        Frame::Tlv {
            kind: TLV_REQUEST,
            value,
        } => {
            tlv_header(TLV_RESPONSE, value.len(), out);
            out.extend_from_slice(value);
        }
        Frame::Tlv { .. } => {}
        Frame::Resp(command) => resp::reply(command, out),
        Frame::Memcache(command) => memcache::reply(command, store, out),
    }
}

pub fn tlv_header(kind: u16, length: usize, out: &mut impl Sink) {
    out.put(&kind.to_be_bytes());
    out.put(&(length as u32).to_be_bytes());
}

/// What a server writes before closing a connection over a protocol error: a line
/// for the text protocols, in each one's own form (a person with nc sees why, a
/// Redis or memcached client gets the error it knows), nothing for `tlv`.
pub fn error_reply(protocol: Protocol, err: &ProtocolError) -> Option<String> {
    match protocol {
        Protocol::Line => Some(format!("ERR {err}\n")),
        Protocol::Resp => Some(format!("-ERR Protocol error: {err}\r\n")),
        Protocol::Memcache => Some(format!("CLIENT_ERROR {err}\r\n")),
        Protocol::Raw | Protocol::Tlv => None,
    }
}

/// Where framing is written: a reply buffer, or a request's [`Head`]. Numbers are
/// written in decimal, as the text protocols carry them.
pub trait Sink {
    fn put(&mut self, bytes: &[u8]);

    fn put_number(&mut self, n: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = n;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.put(&digits[at..]);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// The framing before a message's body, built in place: a load generator frames
/// every request and expected reply without allocating.
#[derive(Clone, Copy)]
pub struct Head {
    bytes: [u8; Head::CAPACITY],
    len: usize,
}

impl Head {
    /// Room for the longest head the load generator builds (a memcache `set` line
    /// with its key and three numbers).
    pub const CAPACITY: usize = 96;

    pub fn new() -> Head {
        Head {
            bytes: [0; Head::CAPACITY],
            len: 0,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Default for Head {
    fn default() -> Head {
        Head::new()
    }
}

impl Sink for Head {
    /// Past the capacity the head is cut short, which a peer's check then reports:
    /// the callers' heads are bounded well below it.
    fn put(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(Head::CAPACITY - self.len);
        debug_assert_eq!(n, bytes.len(), "a head longer than Head::CAPACITY");
        self.bytes[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }
}

#[cfg(test)]
mod tests;
