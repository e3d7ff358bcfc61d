//! Support for ctnet's own property and mutation tests: a seeded generator and
//! mutations of valid inputs (bytes and JSON documents), so every case can be
//! replayed from its seed. Public so the other crates' tests share one generator;
//! not part of the library's API.

/// A small deterministic generator (xorshift64*): the same seed, the same cases.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    #[expect(
        clippy::should_implement_trait,
        reason = "an endless generator, not an iterator: `rng.next()` reads as it is meant"
    )]
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

/// What a hostile or careless file puts where a name or number should be.
pub const HOSTILE_STRINGS: &[&str] = &[
    "\x1b]0;OWNED\x07",
    "\x1b[2J\x1b[H",
    "row\nFORGED",
    "\u{202e}evil",
    "\u{9b}31m",
    "",
    "..",
    "/",
    "lo",
    "eth0",
    "default",
    "10.0.0.1",
    "forwarding",
    "veth",
    "bridge",
];

fn hostile_value(rng: &mut Rng) -> serde_json::Value {
    use serde_json::Value;
    match rng.below(9) {
        0 => Value::String(rng.pick(HOSTILE_STRINGS).to_string()),
        1 => Value::String("x".repeat(1 + rng.below(70_000))),
        2 => Value::from(u64::MAX),
        3 => Value::from(-1),
        4 => Value::from(1e300),
        5 => Value::Null,
        6 => Value::Array(Vec::new()),
        7 => Value::Object(Default::default()),
        _ => Value::from(rng.below(70_000) as u64),
    }
}

/// Mostly a value of the same type as `old` (so a typed reader still takes it and
/// what comes after meets it), sometimes anything at all.
fn replacement(rng: &mut Rng, old: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    if rng.one_in(3) {
        return hostile_value(rng);
    }
    match old {
        Value::String(s) => Value::String(format!("{s}{}", rng.pick(HOSTILE_STRINGS))),
        Value::Number(_) => Value::from(*rng.pick(&[0u64, 1, 2, 255, 65_535, 4_294_967_295])),
        Value::Bool(b) => Value::Bool(!b),
        Value::Array(a) => Value::Array(a.iter().take(rng.below(a.len() + 1)).cloned().collect()),
        _ => old.clone(),
    }
}

/// One structural mutation somewhere in a JSON document: a value replaced (see
/// [`HOSTILE_STRINGS`]), a key removed (never `keep`), an array emptied or an element
/// repeated, or a string poisoned.
pub fn mutate_json(rng: &mut Rng, v: &mut serde_json::Value, keep: &str) {
    mutate_at(rng, v, keep, 0);
}

fn mutate_at(rng: &mut Rng, v: &mut serde_json::Value, keep: &str, depth: usize) {
    use serde_json::Value;
    let descend = depth < 12 && !rng.one_in(4);
    match v {
        Value::Object(m) if !m.is_empty() => {
            let key = m.keys().nth(rng.below(m.len())).cloned().unwrap_or_default();
            if descend {
                if let Some(child) = m.get_mut(&key) {
                    mutate_at(rng, child, keep, depth + 1);
                }
            } else if rng.one_in(3) && key != keep {
                m.remove(&key);
            } else if let Some(child) = m.get_mut(&key) {
                *child = replacement(rng, child);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let i = rng.below(a.len());
            if descend {
                mutate_at(rng, &mut a[i], keep, depth + 1);
            } else {
                match rng.below(3) {
                    0 => a.clear(),
                    1 => {
                        let copy = a[i].clone();
                        a.extend(std::iter::repeat_n(copy, 1 + rng.below(50)));
                    }
                    _ => a[i] = replacement(rng, &a[i]),
                }
            }
        }
        Value::String(s) => {
            let extra = HOSTILE_STRINGS[rng.below(HOSTILE_STRINGS.len())];
            s.push_str(extra)
        }
        other => *other = replacement(rng, other),
    }
}
