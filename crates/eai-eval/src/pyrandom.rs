//! CPython's `random.Random`, reimplemented draw for draw.
//!
//! lm-evaluation-harness picks few-shot examples with `random.Random(seed).sample(pool, k)`, one
//! draw per evaluated document, in evaluation order. Matching its prompts item for item therefore
//! needs the same generator (MT19937 seeded through `init_by_array`) and the same algorithms on
//! top of it (`getrandbits`, `_randbelow_with_getrandbits`, `sample`'s pool/set strategies,
//! `shuffle`, `random`). This module is that, and nothing else; `tests/` checks it against values
//! that CPython 3.11 produced (see `scripts/pyrandom_golden.py`).

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// A `random.Random` whose every draw equals CPython's for the same seed and call sequence.
///
/// ```
/// use eai_eval::PyRandom;
///
/// // python3 -c "import random; r = random.Random(1234); print(r.sample(range(100), 3))"
/// let mut r = PyRandom::new(1234);
/// assert_eq!(r.sample_indices(100, 3)?, vec![99, 56, 14]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct PyRandom {
    mt: Box<[u32; N]>,
    index: usize,
}

impl PyRandom {
    /// `random.Random(seed)` for an integer seed (CPython seeds with the absolute value).
    pub fn new(seed: i64) -> Self {
        let n = seed.unsigned_abs();
        let mut key = vec![(n & 0xffff_ffff) as u32];
        if n >> 32 != 0 {
            key.push((n >> 32) as u32);
        }
        Self::from_key(&key)
    }

    /// Seeds from 32-bit words, least significant first: `init_by_array` in CPython's
    /// `_randommodule.c`. `PyRandom::new(s)` is `from_key` of the words of `|s|` (`[0]` for 0).
    pub fn from_key(key: &[u32]) -> Self {
        let mut r = Self { mt: Box::new([0u32; N]), index: N };
        r.init_genrand(19_650_218);
        let mt = &mut r.mt;
        let (mut i, mut j) = (1usize, 0usize);
        let key_len = key.len().max(1);
        let word = |j: usize| key.get(j).copied().unwrap_or(0);
        for _ in 0..N.max(key_len) {
            let prev = mt[i - 1] ^ (mt[i - 1] >> 30);
            mt[i] =
                (mt[i] ^ prev.wrapping_mul(1_664_525)).wrapping_add(word(j)).wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key_len {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = mt[i - 1] ^ (mt[i - 1] >> 30);
            mt[i] = (mt[i] ^ prev.wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        r
    }

    fn init_genrand(&mut self, s: u32) {
        self.mt[0] = s;
        for i in 1..N {
            let prev = self.mt[i - 1] ^ (self.mt[i - 1] >> 30);
            self.mt[i] = 1_812_433_253u32.wrapping_mul(prev).wrapping_add(i as u32);
        }
        self.index = N;
    }

    fn twist(&mut self) {
        let mt = &mut self.mt;
        let mag = |y: u32| if y & 1 == 1 { MATRIX_A } else { 0 };
        for kk in 0..N - M {
            let y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
            mt[kk] = mt[kk + M] ^ (y >> 1) ^ mag(y);
        }
        for kk in N - M..N - 1 {
            let y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
            mt[kk] = mt[kk + M - N] ^ (y >> 1) ^ mag(y);
        }
        let y = (mt[N - 1] & UPPER_MASK) | (mt[0] & LOWER_MASK);
        mt[N - 1] = mt[M - 1] ^ (y >> 1) ^ mag(y);
        self.index = 0;
    }

    /// The next raw 32-bit output (`genrand_uint32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `random()`: a float in `[0, 1)` with 53 random bits.
    pub fn random(&mut self) -> f64 {
        let a = self.next_u32() >> 5;
        let b = self.next_u32() >> 6;
        (f64::from(a) * 67_108_864.0 + f64::from(b)) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `getrandbits(k)` for `k <= 64`, the only widths an index into a Rust slice can need.
    pub fn getrandbits(&mut self, k: u32) -> u64 {
        match k {
            0 => 0,
            1..=32 => u64::from(self.next_u32() >> (32 - k)),
            _ => {
                // CPython fills 32-bit words least significant first; the last word keeps its
                // top `k % 32` bits.
                let lo = u64::from(self.next_u32());
                let hi_bits = k.min(64) - 32;
                let hi = u64::from(self.next_u32() >> (32 - hi_bits));
                (hi << 32) | lo
            }
        }
    }

    /// `_randbelow(n)`: a uniform integer in `[0, n)` by rejection on `n.bit_length()` bits.
    /// Returns 0 for `n == 0` without drawing (CPython raises; callers here never ask).
    pub fn randbelow(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let k = 64 - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `sample(range(n), k)`: `k` distinct indices into a population of `n`, in selection order.
    ///
    /// Uses the same strategy CPython picks: the pool (partial Fisher–Yates) when `n` is at most
    /// the set-size threshold, otherwise rejection against a set of already chosen indices.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) when `k > n` (CPython's `ValueError`).
    pub fn sample_indices(&mut self, n: usize, k: usize) -> crate::Result<Vec<usize>> {
        if k > n {
            return Err(crate::Error::config(format!(
                "cannot sample {k} items from a population of {n}"
            )));
        }
        let mut setsize = 21usize;
        if k > 5 {
            // math.ceil(math.log(k * 3, 4)); 3k is never a power of four, so no rounding edge.
            let e = ((k as f64 * 3.0).ln() / 4f64.ln()).ceil() as u32;
            setsize = setsize.saturating_add(4usize.saturating_pow(e));
        }
        let mut result = Vec::with_capacity(k);
        if n <= setsize {
            let mut pool: Vec<usize> = (0..n).collect();
            for i in 0..k {
                let j = self.randbelow((n - i) as u64) as usize;
                result.push(pool[j]);
                pool[j] = pool[n - i - 1];
            }
        } else {
            let mut selected = std::collections::HashSet::with_capacity(k);
            for _ in 0..k {
                let mut j = self.randbelow(n as u64) as usize;
                while selected.contains(&j) {
                    j = self.randbelow(n as u64) as usize;
                }
                selected.insert(j);
                result.push(j);
            }
        }
        Ok(result)
    }

    /// `shuffle(x)`: in-place Fisher–Yates from the end, as CPython does it.
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.randbelow(i as u64 + 1) as usize;
            x.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_mt19937_outputs() {
        // The MT19937 reference (mt19937ar.c) seeded by init_by_array({0x123, 0x234, 0x345,
        // 0x456}) starts 1067595299 955945823 477289528 4107218783 4228976476.
        let mut r = PyRandom::from_key(&[0x123, 0x234, 0x345, 0x456]);
        let got: Vec<u32> = (0..5).map(|_| r.next_u32()).collect();
        assert_eq!(got, vec![1067595299, 955945823, 477289528, 4107218783, 4228976476]);
    }

    #[test]
    fn sample_rejects_oversized_k() {
        assert!(PyRandom::new(1).sample_indices(3, 4).is_err());
        assert_eq!(PyRandom::new(1).sample_indices(3, 0).unwrap(), Vec::<usize>::new());
    }
}
