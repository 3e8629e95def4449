//! Mutated inputs for the readers' deterministic fuzz smoke tests (test builds only):
//! a short, seeded stand-in for `fuzz/` (cargo-fuzz) that runs with the test suite.
//! Each mutant is a seed file with one to four edits drawn from the crate's [`Rng`]:
//! bit flips, byte insertions and deletions, truncations, and size fields (32 or 16
//! bits, either byte order) overwritten with edge values.

use crate::rng::Rng;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Values written over a size field: the edges where readers go wrong.
const SIZES: [u32; 10] = [
    0,
    1,
    2,
    7,
    0xFF,
    0xFFFF,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFE,
    0xFFFF_FFFF,
];

/// `seed` with one to four random edits.
pub fn mutant(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !b.is_empty() => {
                let at = rng.below(b.len());
                b[at] ^= 1 << rng.below(8);
            }
            1 => {
                let at = rng.below(b.len() + 1);
                b.insert(at, rng.next_u64() as u8);
            }
            2 if !b.is_empty() => {
                let at = rng.below(b.len());
                let n = 1 + rng.below((b.len() - at).min(16));
                b.drain(at..at + n);
            }
            3 => {
                let len = rng.below(b.len() + 1);
                b.truncate(len);
            }
            4 | 5 if b.len() >= 4 => {
                // A size field: mostly an edge value, sometimes the input's length
                // give or take a little.
                let value = match rng.below(3) {
                    0 => (b.len() as u32)
                        .wrapping_add(rng.below(9) as u32)
                        .wrapping_sub(4),
                    _ => SIZES[rng.below(SIZES.len())],
                };
                let bytes = match rng.bit() {
                    true => value.to_le_bytes(),
                    false => value.to_be_bytes(),
                };
                let width = if rng.bit() { 4 } else { 2 };
                let at = rng.below(b.len() - width + 1);
                let from = if rng.bit() || width == 4 { 0 } else { 2 };
                b[at..at + width].copy_from_slice(&bytes[from..from + width]);
            }
            _ => {}
        }
    }
    b
}

/// Calls `read` on the seeds themselves and on `count` mutants of them drawn from
/// `rng_seed`, and fails, naming the mutant and its bytes, if a call panics: each
/// must return, Ok or Err. `read` tells whether the input read (Ok); returns how
/// many did.
pub fn no_panics(
    what: &str,
    seeds: &[&[u8]],
    rng_seed: u64,
    count: usize,
    mut read: impl FnMut(&[u8]) -> bool,
) -> usize {
    let mut rng = Rng::new(rng_seed);
    let mut ok = 0;
    for k in 0..seeds.len() + count {
        let input = match k < seeds.len() {
            true => seeds[k].to_vec(),
            false => mutant(seeds[rng.below(seeds.len())], &mut rng),
        };
        match catch_unwind(AssertUnwindSafe(|| read(&input))) {
            Ok(read) => ok += usize::from(read),
            Err(_) => panic!(
                "{what}: input {k} (rng seed {rng_seed}, {} bytes) panicked: {:02x?}",
                input.len(),
                &input[..input.len().min(256)]
            ),
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_are_deterministic_and_differ_from_their_seed() {
        let seed = b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0";
        let draw = |s| {
            let mut rng = Rng::new(s);
            (0..100).map(|_| mutant(seed, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        let changed = draw(3).iter().filter(|m| m[..] != seed[..]).count();
        assert!(changed > 80, "{changed} of 100 mutants changed");
    }
}
