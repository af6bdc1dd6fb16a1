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
//!
//! Layer: the bottom (beside `sys`); uses only `names`.

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
    }
}

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
}

/// Why a stream cannot be decoded: the connection is closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    LineTooLong { limit: usize },
    FrameTooLong { length: u64, limit: usize },
    UnknownType(u16),
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
/// scanned once, not again from its start on every read.
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
    }
}

/// The echo processor: appends the reply to `frame`, if any, to `out`.
pub fn echo_reply(frame: &Frame<'_>, out: &mut Vec<u8>) {
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
    }
}

pub fn tlv_header(kind: u16, length: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(length as u32).to_be_bytes());
}

/// What a server writes before closing a connection over a protocol error: one
/// line for `line` (a person with nc sees why), nothing for binary protocols.
pub fn error_reply(protocol: Protocol, err: &ProtocolError) -> Option<String> {
    (protocol == Protocol::Line).then(|| format!("ERR {err}\n"))
}

#[cfg(test)]
mod tests;
