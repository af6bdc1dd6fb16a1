//! Request contents: every request's body is a window into one pseudo-random
//! template, at an offset that depends on the connection and the request number, framed
//! as the protocol wants. Requests differ by connection and by request, nothing is
//! generated per request, and an echo is checked against the expected response
//! segment by segment, without building it.

use crate::protocol::{Protocol, TLV_HEADER, TLV_REQUEST, TLV_RESPONSE};
use crate::rng::XorShift;
use crate::units::Size;
use anyhow::{Result, bail};

/// Distinct offsets into the template (a prime, so that offsets spread well).
const SPREAD: usize = 4093;
/// A TLV request's value starts with its sequence number.
const SEQ: usize = 8;

pub struct Payload {
    template: Vec<u8>,
    /// Bytes per message: raw bytes, a line with its `\n`, or a TLV value.
    size: usize,
    protocol: Protocol,
}

/// One message as it goes on the wire: a head, a window of the template, a tail.
pub struct Message<'a> {
    head: [u8; TLV_HEADER + SEQ],
    head_len: usize,
    body: &'a [u8],
    tail: &'static [u8],
}

/// The largest request body: the generator keeps one template of it.
pub const MAX_PAYLOAD: usize = 16 << 20;

/// Refuses a payload the protocol cannot carry or the generator should not hold.
pub fn check_payload(size: usize, protocol: Protocol) -> Result<()> {
    match protocol {
        Protocol::Raw | Protocol::Line if size == 0 => {
            bail!("--payload must be at least 1 byte: an empty request has no echo to wait for")
        }
        Protocol::Tlv if size < SEQ => {
            bail!(
                "--payload must be at least {SEQ} bytes with tlv: a request's value starts with its 8-byte sequence number"
            )
        }
        _ if size > MAX_PAYLOAD => bail!(
            "--payload {} is more than the {} a request may carry",
            Size(size),
            Size(MAX_PAYLOAD)
        ),
        _ => Ok(()),
    }
}

impl Payload {
    pub fn new(size: usize, protocol: Protocol) -> Result<Payload> {
        check_payload(size, protocol)?;
        let mut rng = XorShift::new(0x2545_F491_4F6C_DD1D);
        let template = (0..size + SPREAD)
            .map(|_| {
                let b = rng.next_byte();
                // A line's body must hold no newline: keep it printable.
                if protocol == Protocol::Line {
                    b'!' + b % 94
                } else {
                    b
                }
            })
            .collect();
        Ok(Payload {
            template,
            size,
            protocol,
        })
    }

    /// Bytes one request (and its response) takes on the wire.
    pub fn wire_size(&self) -> usize {
        match self.protocol {
            Protocol::Raw | Protocol::Line => self.size,
            Protocol::Tlv => TLV_HEADER + self.size,
        }
    }

    /// Request `seq` of connection `conn`.
    pub fn request(&self, conn: u64, seq: u64) -> Message<'_> {
        self.message(conn, seq, TLV_REQUEST)
    }

    /// What the echo server must answer to it.
    pub fn response(&self, conn: u64, seq: u64) -> Message<'_> {
        self.message(conn, seq, TLV_RESPONSE)
    }

    fn message(&self, conn: u64, seq: u64, kind: u16) -> Message<'_> {
        let mix =
            conn.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seq.wrapping_mul(0xBF58_4761_CE4E_5B9D);
        let off = (mix >> 33) as usize % SPREAD;
        let mut head = [0u8; TLV_HEADER + SEQ];
        let (head_len, body_len, tail): (usize, usize, &'static [u8]) = match self.protocol {
            Protocol::Raw => (0, self.size, b""),
            Protocol::Line => (0, self.size - 1, b"\n"),
            Protocol::Tlv => {
                head[..2].copy_from_slice(&kind.to_be_bytes());
                head[2..6].copy_from_slice(&(self.size as u32).to_be_bytes());
                head[6..].copy_from_slice(&seq.to_be_bytes());
                (TLV_HEADER + SEQ, self.size - SEQ, b"")
            }
        };
        Message {
            head,
            head_len,
            body: &self.template[off..off + body_len],
            tail,
        }
    }
}

impl Message<'_> {
    fn parts(&self) -> [&[u8]; 3] {
        [&self.head[..self.head_len], self.body, self.tail]
    }

    /// The bytes from `offset` on, contiguous: the body itself when there is no
    /// framing (no copy), else assembled in `scratch`.
    pub fn bytes_from<'s>(&'s self, offset: usize, scratch: &'s mut Vec<u8>) -> &'s [u8] {
        if self.head_len == 0 && self.tail.is_empty() {
            return &self.body[offset..];
        }
        scratch.clear();
        let mut skip = offset;
        for part in self.parts() {
            let from = skip.min(part.len());
            scratch.extend_from_slice(&part[from..]);
            skip -= from;
        }
        scratch
    }

    /// How many of `data`'s bytes differ from this message's bytes at `offset`.
    pub fn mismatches(&self, offset: usize, data: &[u8]) -> u64 {
        let mut wrong = 0;
        let (mut skip, mut data) = (offset, data);
        for part in self.parts() {
            let from = skip.min(part.len());
            skip -= from;
            let k = (part.len() - from).min(data.len());
            let (expected, got) = (&part[from..from + k], &data[..k]);
            if expected != got {
                wrong += expected.iter().zip(got).filter(|(a, b)| a != b).count() as u64;
            }
            data = &data[k..];
        }
        wrong
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{decode, echo_reply};

    fn whole(m: &Message<'_>) -> Vec<u8> {
        m.bytes_from(0, &mut Vec::new()).to_vec()
    }

    #[test]
    fn requests_differ_by_connection_and_number() {
        let p = Payload::new(64, Protocol::Raw).unwrap();
        assert_eq!(whole(&p.request(1, 1)).len(), 64);
        assert_ne!(whole(&p.request(1, 1)), whole(&p.request(2, 1)));
        assert_ne!(whole(&p.request(1, 1)), whole(&p.request(1, 2)));
        assert_eq!(whole(&p.request(7, 9)), whole(&p.request(7, 9)));
    }

    /// The client's idea of the response is what the server's echo processor says.
    #[test]
    fn responses_are_what_the_server_answers() {
        for protocol in [Protocol::Line, Protocol::Tlv] {
            let p = Payload::new(40, protocol).unwrap();
            let request = whole(&p.request(3, 5));
            assert_eq!(request.len(), p.wire_size());
            let (frame, used) = decode(protocol, &request, 1024).unwrap().unwrap();
            assert_eq!(used, request.len());
            let mut reply = Vec::new();
            echo_reply(&frame, &mut reply);
            assert_eq!(reply, whole(&p.response(3, 5)), "{protocol:?}");
            assert_eq!(p.response(3, 5).mismatches(0, &reply), 0);
            assert_eq!(p.response(3, 5).mismatches(4, &reply[4..]), 0);
            let mut off = reply.clone();
            off[10] ^= 1;
            assert_eq!(p.response(3, 5).mismatches(0, &off), 1);
            let mut scratch = Vec::new();
            assert_eq!(p.request(3, 5).bytes_from(9, &mut scratch), &request[9..]);
        }
    }

    #[test]
    fn sizes_that_cannot_frame_are_refused() {
        assert!(Payload::new(0, Protocol::Raw).is_err());
        assert!(Payload::new(7, Protocol::Tlv).is_err());
        assert!(Payload::new(1, Protocol::Line).is_ok());
    }
}
