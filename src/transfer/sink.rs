//! The receiving end: a loopback listener that takes one connection, reads it to the
//! end and checksums what came.

use anyhow::{Context, Result};
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::thread::JoinHandle;

/// What the sink received.
pub struct Received {
    pub bytes: u64,
    pub checksum: u64,
}

/// A fast streaming checksum (8 bytes at a time), independent of how the stream is
/// cut into reads.
#[derive(Default)]
pub struct Checksum {
    acc: u64,
    carry: Vec<u8>,
}

impl Checksum {
    fn word(&mut self, w: [u8; 8]) {
        self.acc = (self.acc ^ u64::from_le_bytes(w)).wrapping_mul(0x0000_0100_0000_01B3);
    }

    pub fn update(&mut self, mut data: &[u8]) {
        if !self.carry.is_empty() {
            let take = (8 - self.carry.len()).min(data.len());
            self.carry.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.carry.len() < 8 {
                return;
            }
            let w: [u8; 8] = self.carry[..].try_into().expect("8 bytes");
            self.word(w);
            self.carry.clear();
        }
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            self.word(w.try_into().expect("8 bytes"));
        }
        self.carry.extend_from_slice(words.remainder());
    }

    pub fn finish(mut self) -> u64 {
        if !self.carry.is_empty() {
            let mut w = [0u8; 8];
            w[..self.carry.len()].copy_from_slice(&self.carry);
            w[7] ^= self.carry.len() as u8 | 0x80;
            self.word(w);
        }
        self.acc
    }
}

/// Starts the sink; it returns what it received once the sender closes.
pub fn start() -> Result<(SocketAddr, JoinHandle<Result<Received>>)> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding the sink")?;
    let addr = listener.local_addr()?;
    let handle = std::thread::Builder::new()
        .name("sink".into())
        .spawn(move || -> Result<Received> {
            let (mut s, _) = listener.accept().context("sink accept")?;
            let mut sum = Checksum::default();
            let mut buf = vec![0u8; 256 * 1024];
            let mut bytes = 0u64;
            loop {
                let n = s.read(&mut buf).context("sink read")?;
                if n == 0 {
                    break;
                }
                sum.update(&buf[..n]);
                bytes += n as u64;
            }
            Ok(Received {
                bytes,
                checksum: sum.finish(),
            })
        })
        .context("starting the sink")?;
    Ok((addr, handle))
}

/// The checksum of a whole file (for `--file`).
pub fn checksum_file(path: &Path) -> Result<u64> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut sum = Checksum::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(sum.finish());
        }
        sum.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::Checksum;

    #[test]
    fn the_checksum_does_not_depend_on_the_cuts() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut whole = Checksum::default();
        whole.update(&data);
        let mut cut = Checksum::default();
        for piece in data.chunks(7) {
            cut.update(piece);
        }
        let mut other = Checksum::default();
        other.update(&data[1..]);
        let w = whole.finish();
        assert_eq!(w, cut.finish());
        assert_ne!(w, other.finish());
    }
}
