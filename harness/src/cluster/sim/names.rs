//! Names and hashes the apiserver and the controllers generate: the
//! seeded stand-in for random name suffixes and the template hash. A leaf,
//! so the store and the controllers share them without importing each other.

/// Deterministic stand-in for the apiserver's random name suffixes.
pub(super) struct NameGen(pub(super) u64);

impl NameGen {
    /// Five characters from the alphabet Kubernetes uses for generated names.
    pub(super) fn suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..5)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                ALPHABET[(self.0 % ALPHABET.len() as u64) as usize] as char
            })
            .collect()
    }
}

/// fnv32a, the hash Kubernetes uses for pod-template and revision hashes.
pub fn fnv32a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h ^= *b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Kubernetes renders template hashes as the decimal hash re-spelled in a
/// vowel-free alphabet, so they never form words (e.g. `6bdf5d484b`).
pub fn safe_encode(n: u32) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    n.to_string()
        .bytes()
        .map(|b| ALPHABET[(b as usize) % ALPHABET.len()] as char)
        .collect()
}
