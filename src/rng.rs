//! The deterministic generator for payloads and file contents: Marsaglia's xorshift64
//! (shifts 13, 7, 17). Not random in any strong sense, and it need not be: the same
//! seed gives the same bytes on every run and every machine, so a run is repeatable
//! and whoever checks the bytes can generate them again.
//!
//! Layer: the bottom; uses nothing of ours.

/// Marsaglia's xorshift64 generator.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator starting from `seed`; 0 is refused (xorshift would stay at 0).
    pub const fn new(seed: u64) -> XorShift {
        assert!(seed != 0, "xorshift cannot start from 0");
        XorShift(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// One byte: bits 24..31 of the next value.
    pub fn next_byte(&mut self) -> u8 {
        (self.next_u64() >> 24) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::XorShift;

    /// The sequence is part of what the generated payloads and files are: it must
    /// not change by accident. From seed 1, Marsaglia's generator starts 1082269761.
    #[test]
    fn the_sequence_is_marsaglias_xorshift64() {
        let mut rng = XorShift::new(1);
        assert_eq!(rng.next_u64(), 1_082_269_761);
        assert_eq!(rng.next_u64(), 1_152_992_998_833_853_505);
        // The third is 0x9B1E_842F_6E86_2629: bits 24..31 are 0x6E.
        assert_eq!(rng.next_byte(), 0x6E);
    }
}
