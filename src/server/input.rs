//! A connection's input that does not make a whole message yet, and the echo
//! processor run over what does.
//!
//! Bytes are appended at the back and consumed from the front, and a line's end is
//! looked for only in bytes not looked at before, so that a message arriving in many
//! small reads costs amortised O(1) per byte, not a copy and a rescan of everything
//! kept on every read.

use crate::protocol::{self, Protocol};
use std::io::{self, ErrorKind};

#[derive(Default)]
pub struct Input {
    buf: Vec<u8>,
    /// `buf[start..]` is kept; what comes before has been answered.
    start: usize,
    /// Bytes at the front of what is kept known to hold no line end.
    scanned: usize,
}

impl Input {
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps bytes read, to be answered later (after more arrive, or by the main
    /// thread of the io-threads model).
    pub fn keep(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Keeps what a read left after its complete messages, when nothing was kept
    /// before: the start of the next message, already scanned to its end.
    pub fn keep_rest(&mut self, rest: &[u8]) {
        debug_assert!(self.is_empty());
        self.keep(rest);
        self.scanned = rest.len();
    }

    /// Answers the complete messages kept; see [`answer`]. Returns how many bytes
    /// they took, and a protocol error.
    pub fn answer(
        &mut self,
        protocol: Protocol,
        max_frame: usize,
        replies: &mut Vec<u8>,
    ) -> (usize, io::Result<()>) {
        let kept = &self.buf[self.start..];
        let (used, result) = answer(protocol, max_frame, kept, self.scanned, replies);
        self.scanned = kept.len() - used;
        self.start += used;
        if self.start == self.buf.len() {
            // All answered: give the memory back (an idle connection holds none).
            *self = Input::default();
        } else if self.start >= self.len() {
            // Moving what is kept to the front costs no more than what was
            // consumed since the last move: amortised O(1) per byte.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        (used, result)
    }
}

/// Runs the echo processor over the complete messages at the start of `data`, whose
/// first `scanned` bytes hold no line end; the replies go to `replies`. Returns the
/// bytes used (what follows is the start of a message, scanned to its end), and a
/// protocol error as an InvalidData error (after telling the peer, where the
/// protocol has a way to).
pub fn answer(
    protocol: Protocol,
    max_frame: usize,
    data: &[u8],
    scanned: usize,
    replies: &mut Vec<u8>,
) -> (usize, io::Result<()>) {
    if protocol == Protocol::Raw {
        replies.extend_from_slice(data);
        return (data.len(), Ok(()));
    }
    let mut used = 0;
    let mut scanned = scanned;
    loop {
        match protocol::decode_from(protocol, &data[used..], scanned, max_frame) {
            Ok(Some((frame, len))) => {
                protocol::echo_reply(&frame, replies);
                used += len;
                scanned = 0;
            }
            Ok(None) => return (used, Ok(())),
            Err(e) => {
                if let Some(line) = protocol::error_reply(protocol, &e) {
                    replies.extend_from_slice(line.as_bytes());
                }
                return (used, Err(io::Error::new(ErrorKind::InvalidData, e)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line trickled in one byte at a time is answered once, whole, and what
    /// follows it is kept.
    #[test]
    fn a_trickled_line_is_answered_once_and_the_rest_kept() {
        let mut input = Input::default();
        let mut replies = Vec::new();
        for &b in b"hello\nwor" {
            input.keep(&[b]);
            input
                .answer(Protocol::Line, 1 << 20, &mut replies)
                .1
                .unwrap();
        }
        assert_eq!(replies, b"hello\n");
        assert_eq!(input.len(), 3);
        input.keep(b"ld\n");
        let (used, result) = input.answer(Protocol::Line, 1 << 20, &mut replies);
        result.unwrap();
        assert_eq!((used, replies.as_slice()), (6, &b"hello\nworld\n"[..]));
        assert!(input.is_empty());
    }

    /// The scan resumes where it stopped: the bytes looked at per byte kept stay
    /// constant however long the unfinished line grows (the limit still applies).
    #[test]
    fn a_long_unfinished_line_hits_the_limit_without_rescans() {
        let mut input = Input::default();
        let mut replies = Vec::new();
        for _ in 0..999 {
            input.keep(b"x");
            assert!(input.answer(Protocol::Line, 1000, &mut replies).1.is_ok());
            assert_eq!(input.scanned, input.len());
        }
        input.keep(b"x");
        let (_, result) = input.answer(Protocol::Line, 1000, &mut replies);
        assert_eq!(result.unwrap_err().kind(), ErrorKind::InvalidData);
    }
}
