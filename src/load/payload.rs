//! Request contents: every request is a window into one pseudo-random template, at an
//! offset that depends on the connection and the request number. Requests differ by
//! connection and by request, nothing is generated per request, and an echo is
//! checked with one slice comparison.

/// Distinct offsets into the template (a prime, so that offsets spread well).
const SPREAD: usize = 4093;

pub struct Payload {
    template: Vec<u8>,
    size: usize,
}

impl Payload {
    pub fn new(size: usize) -> Payload {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let template = (0..size + SPREAD)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        Payload { template, size }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// The bytes of request `seq` on connection `conn`.
    pub fn request(&self, conn: u64, seq: u64) -> &[u8] {
        let mix =
            conn.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seq.wrapping_mul(0xBF58_4761_CE4E_5B9D);
        let off = (mix >> 33) as usize % SPREAD;
        &self.template[off..off + self.size]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_differ_by_connection_and_number() {
        let p = Payload::new(64);
        assert_eq!(p.request(1, 1).len(), 64);
        assert_ne!(p.request(1, 1), p.request(2, 1));
        assert_ne!(p.request(1, 1), p.request(1, 2));
        assert_eq!(p.request(7, 9), p.request(7, 9));
    }
}
