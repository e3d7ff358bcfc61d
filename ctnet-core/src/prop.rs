//! Test-only helpers for property tests of the decoders: a seeded generator and
//! mutations of valid inputs, so every case can be replayed from its seed.

/// A small deterministic generator (xorshift64*): the same seed, the same cases.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True once in `n` draws.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// One to four byte-level mutations of `b`: a byte changed, a token spliced in, a run
/// cut, a run repeated, the tail cut off, or random bytes inserted.
pub fn mutate_bytes(rng: &mut Rng, mut b: Vec<u8>, tokens: &[&[u8]]) -> Vec<u8> {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(6) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            1 if !tokens.is_empty() => {
                let t = *rng.pick(tokens);
                b.splice(at..at, t.iter().copied());
            }
            2 => {
                let end = (at + rng.below(32)).min(b.len());
                b.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(64)).min(b.len());
                let copy = b[at..end].to_vec();
                for _ in 0..rng.below(16) {
                    b.splice(at..at, copy.iter().copied());
                }
            }
            4 => b.truncate(at),
            _ => {
                let n = rng.below(16);
                let junk = rng.bytes(n);
                b.splice(at..at, junk);
            }
        }
    }
    b
}
