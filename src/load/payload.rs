//! Request contents: every request's body is a window into one pseudo-random
//! template, at an offset that depends on the connection and the request number, framed
//! as the protocol wants. Requests differ by connection and by request, nothing is
//! generated per request, and a reply is checked against the expected one segment
//! by segment, without building it.
//!
//! memcache is the exception to "one reply per request, the request echoed": a
//! connection's request 0 stores its value (`set`, answered `STORED`), and every
//! later one gets it back (`get`, answered with the value).

use crate::protocol::{
    self, CRLF, Head, Protocol, Sink, TLV_REQUEST, TLV_RESPONSE, memcache, resp,
};
use crate::rng::XorShift;
use crate::units::Size;
use anyhow::{Result, bail};

/// Distinct offsets into the template (a prime, so that offsets spread well).
const SPREAD: usize = 4093;
/// A TLV request's value starts with its sequence number.
const SEQ: usize = 8;
/// memcache: a connection's value is stored under `iobench:` and its number in 16
/// hex digits (every key as long, so that every reply is too), with these flags.
const KEY_PREFIX: &[u8] = b"iobench:";
/// The length of every memcache key the generator stores under.
pub const MEMCACHE_KEY_LEN: usize = KEY_PREFIX.len() + 16;
const FLAGS: u32 = 0xC0FFEE;

pub struct Payload {
    template: Vec<u8>,
    /// Bytes per message: raw bytes, a line with its `\n`, a TLV value, the string
    /// ECHOed, the value stored.
    size: usize,
    protocol: Protocol,
}

/// One message as it goes on the wire: a head, a window of the template (or a
/// fixed reply), a tail.
pub struct Message<'a> {
    head: Head,
    body: &'a [u8],
    tail: &'static [u8],
}

/// The largest request body: the generator keeps one template of it.
pub const MAX_PAYLOAD: usize = 16 << 20;
/// The largest memcache value: what a memcached item holds at its default `-I 1m`,
/// less room for the item's header and key.
pub const MAX_MEMCACHE_VALUE: usize = (1 << 20) - 1024;

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
        Protocol::Memcache if size > MAX_MEMCACHE_VALUE => bail!(
            "--payload {} is more than the {} value memcached stores by default (its -I 1m, less the item's header): use a smaller --payload",
            Size(size),
            Size(MAX_MEMCACHE_VALUE)
        ),
        _ if size > MAX_PAYLOAD => bail!(
            "--payload {} is more than the {} a request may carry",
            Size(size),
            Size(MAX_PAYLOAD)
        ),
        _ => Ok(()),
    }
}

/// The bytes of a request of `size` that a server's --max-frame bounds: a line, a
/// TLV value, an ECHO command's strings (its name too), a memcache value; nothing
/// in a raw stream.
pub fn limited_size(size: usize, protocol: Protocol) -> usize {
    match protocol {
        Protocol::Raw => 0,
        Protocol::Line | Protocol::Tlv | Protocol::Memcache => size,
        Protocol::Resp => resp::ECHO.len() + size,
    }
}

impl Payload {
    pub fn new(size: usize, protocol: Protocol) -> Result<Payload> {
        check_payload(size, protocol)?;
        let mut rng = XorShift::new(0x2545_F491_4F6C_DD1D);
        let template = (0..size + SPREAD)
            .map(|_| {
                let b = rng.next_byte();
                // A line's body must hold no newline: keep it printable. (RESP and
                // memcache values are counted, not delimited: any byte will do.)
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

    /// Bytes the reply to request `seq` takes on the wire, whichever the connection.
    pub fn reply_size(&self, seq: u64) -> usize {
        self.response(0, seq).len()
    }

    /// Bytes of the replies to the requests `seqs`.
    pub fn replies_size(&self, seqs: std::ops::Range<u64>) -> u64 {
        seqs.map(|seq| self.reply_size(seq) as u64).sum()
    }

    /// Bytes one reply takes on the wire once a connection has started (for
    /// memcache, a `get`'s).
    pub fn wire_size(&self) -> usize {
        self.reply_size(1)
    }

    /// Request `seq` of connection `conn`.
    pub fn request(&self, conn: u64, seq: u64) -> Message<'_> {
        let mut head = Head::new();
        let (body, tail): (&[u8], &'static [u8]) = match self.protocol {
            Protocol::Raw => (self.window(conn, seq, self.size), b""),
            Protocol::Line => (self.window(conn, seq, self.size - 1), b"\n"),
            Protocol::Tlv => {
                tlv_head(&mut head, TLV_REQUEST, self.size, seq);
                (self.window(conn, seq, self.size - SEQ), b"")
            }
            Protocol::Resp => {
                resp::echo_head(self.size, &mut head);
                (self.window(conn, seq, self.size), CRLF)
            }
            Protocol::Memcache if seq == 0 => {
                memcache::set_head(key(conn).as_slice(), FLAGS, self.size, &mut head);
                (self.value(conn), CRLF)
            }
            Protocol::Memcache => {
                memcache::get_line(key(conn).as_slice(), &mut head);
                (b"", b"")
            }
        };
        Message { head, body, tail }
    }

    /// What the server must answer to it.
    pub fn response(&self, conn: u64, seq: u64) -> Message<'_> {
        let mut head = Head::new();
        let (body, tail): (&[u8], &'static [u8]) = match self.protocol {
            Protocol::Raw | Protocol::Line => return self.request(conn, seq),
            Protocol::Tlv => {
                tlv_head(&mut head, TLV_RESPONSE, self.size, seq);
                (self.window(conn, seq, self.size - SEQ), b"")
            }
            Protocol::Resp => {
                resp::bulk_head(self.size, &mut head);
                (self.window(conn, seq, self.size), CRLF)
            }
            Protocol::Memcache if seq == 0 => (memcache::STORED, b""),
            Protocol::Memcache => {
                memcache::value_head(key(conn).as_slice(), FLAGS, self.size, &mut head);
                (self.value(conn), memcache::VALUE_TAIL)
            }
        };
        Message { head, body, tail }
    }

    /// `len` bytes of the template, at an offset chosen by the connection and the
    /// request number.
    fn window(&self, conn: u64, seq: u64, len: usize) -> &[u8] {
        let mix =
            conn.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seq.wrapping_mul(0xBF58_4761_CE4E_5B9D);
        let off = (mix >> 33) as usize % SPREAD;
        &self.template[off..off + len]
    }

    /// The value a memcache connection stores, and gets back every time.
    fn value(&self, conn: u64) -> &[u8] {
        self.window(conn, 0, self.size)
    }
}

/// A TLV frame's header, and the sequence number its value starts with.
fn tlv_head(head: &mut Head, kind: u16, size: usize, seq: u64) {
    protocol::tlv_header(kind, size, head);
    head.put(&seq.to_be_bytes());
}

/// The memcache key of connection `conn`.
fn key(conn: u64) -> Head {
    let mut key = Head::new();
    key.put(KEY_PREFIX);
    for nibble in (0..MEMCACHE_KEY_LEN - KEY_PREFIX.len()).rev() {
        key.put(&[b"0123456789abcdef"[(conn >> (4 * nibble)) as usize & 15]]);
    }
    key
}

impl Message<'_> {
    fn parts(&self) -> [&[u8]; 3] {
        [self.head.as_slice(), self.body, self.tail]
    }

    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        self.parts().iter().map(|p| p.len()).sum()
    }

    /// The bytes from `offset` on, contiguous: the body itself when there is no
    /// framing (no copy), else assembled in `scratch`.
    pub fn bytes_from<'s>(&'s self, offset: usize, scratch: &'s mut Vec<u8>) -> &'s [u8] {
        if self.head.as_slice().is_empty() && self.tail.is_empty() {
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
    use crate::protocol::{decode, memcache::MapStore, reply};

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

    /// The client's idea of each reply is what the server's processor says, on
    /// one store for every connection (memcache's first request stores the value
    /// the others get back), and one wrong byte is one mismatch.
    #[test]
    fn responses_are_what_the_server_answers() {
        let framed = Protocol::ALL.iter().filter(|&&p| p != Protocol::Raw);
        for &protocol in framed {
            let p = Payload::new(40, protocol).unwrap();
            let store = MapStore::new(usize::MAX);
            for (conn, seq) in [(3, 0), (3, 5), (4, 0), (3, 6), (4, 1)] {
                let request = whole(&p.request(conn, seq));
                let (frame, used) = decode(protocol, &request, 1024).unwrap().unwrap();
                assert_eq!(used, request.len(), "{protocol}");
                let mut answer = Vec::new();
                reply(&frame, &store, &mut answer);
                let expected = p.response(conn, seq);
                assert_eq!(answer, whole(&expected), "{protocol} {conn}/{seq}");
                assert_eq!(expected.len(), p.reply_size(seq), "{protocol}");
                assert_eq!(expected.mismatches(0, &answer), 0);
                assert_eq!(expected.mismatches(4, &answer[4..]), 0);
                let mut off = answer.clone();
                off[answer.len() / 2] ^= 1;
                assert_eq!(expected.mismatches(0, &off), 1);
                let mut scratch = Vec::new();
                let from = request.len() / 3;
                assert_eq!(
                    p.request(conn, seq).bytes_from(from, &mut scratch),
                    &request[from..]
                );
            }
            assert_eq!(p.wire_size(), p.reply_size(1));
            assert_eq!(
                p.replies_size(0..3),
                (p.reply_size(0) + 2 * p.reply_size(1)) as u64
            );
        }
    }

    /// The wire formats, spelled out once here as the servers' documentation has
    /// them.
    #[test]
    fn resp_and_memcache_requests_are_what_redis_and_memcached_expect() {
        let p = Payload::new(3, Protocol::Resp).unwrap();
        let body = p.window(1, 2, 3).to_vec();
        let request = [&b"*2\r\n$4\r\nECHO\r\n$3\r\n"[..], &body, b"\r\n"].concat();
        assert_eq!(whole(&p.request(1, 2)), request);
        assert_eq!(
            whole(&p.response(1, 2)),
            [&b"$3\r\n"[..], &body, b"\r\n"].concat()
        );
        let p = Payload::new(3, Protocol::Memcache).unwrap();
        let value = p.value(255).to_vec();
        let key = "iobench:00000000000000ff";
        let set = [
            format!("set {key} 12648430 0 3\r\n").as_bytes(),
            &value,
            b"\r\n",
        ]
        .concat();
        assert_eq!(whole(&p.request(255, 0)), set);
        assert_eq!(whole(&p.response(255, 0)), b"STORED\r\n");
        assert_eq!(
            whole(&p.request(255, 9)),
            format!("get {key}\r\n").as_bytes()
        );
        let value_reply = [
            format!("VALUE {key} 12648430 3\r\n").as_bytes(),
            &value,
            b"\r\nEND\r\n",
        ]
        .concat();
        assert_eq!(whole(&p.response(255, 9)), value_reply);
    }

    #[test]
    fn sizes_that_cannot_frame_are_refused() {
        assert!(Payload::new(0, Protocol::Raw).is_err());
        assert!(Payload::new(7, Protocol::Tlv).is_err());
        assert!(Payload::new(1, Protocol::Line).is_ok());
        assert!(Payload::new(0, Protocol::Resp).is_ok());
        assert!(Payload::new(MAX_PAYLOAD + 1, Protocol::Resp).is_err());
        assert!(Payload::new(MAX_MEMCACHE_VALUE, Protocol::Memcache).is_ok());
        assert_eq!(limited_size(1 << 20, Protocol::Raw), 0);
        assert_eq!(limited_size(100, Protocol::Resp), 104);
        let err = check_payload(MAX_MEMCACHE_VALUE + 1, Protocol::Memcache).unwrap_err();
        assert!(err.to_string().contains("use a smaller --payload"), "{err}");
    }
}
