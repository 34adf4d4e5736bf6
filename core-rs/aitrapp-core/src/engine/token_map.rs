//! Instrument token -> slot index. Tokens are trusted-width integers chosen
//! by the exchange, so a multiplicative hash is enough and much cheaper than
//! SipHash on the per-tick path.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Default)]
pub struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        // Fibonacci hashing; the high bits are well mixed.
        self.0 = (u64::from(n) ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub type TokenMap = HashMap<u32, usize, BuildHasherDefault<TokenHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_tokens() {
        let mut m = TokenMap::default();
        for (i, t) in [738_561u32, 256_265, 13_238_786, 1, 0].iter().enumerate() {
            m.insert(*t, i);
        }
        assert_eq!(m.get(&13_238_786), Some(&2));
        assert_eq!(m.get(&0), Some(&4));
        assert_eq!(m.get(&2), None);
    }
}
