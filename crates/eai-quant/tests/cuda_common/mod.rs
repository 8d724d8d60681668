//! Shared helpers of the GPU tests (included with `#[path]`, not a test binary of its own).
#![allow(dead_code, unreachable_pub, missing_docs)]

use eai_quant::cuda::CudaDevice;

/// Opens device 0, or explains why the named test is skipped. With `EAI_REQUIRE_GPU=1` a
/// missing GPU is a failure instead.
pub fn device(test: &str) -> Option<CudaDevice> {
    match CudaDevice::open(0) {
        Ok(d) => Some(d),
        Err(e) => {
            if std::env::var("EAI_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("{test}: EAI_REQUIRE_GPU=1 but no usable GPU: {e}");
            }
            eprintln!("skipped {test}: no usable CUDA device ({e})");
            None
        }
    }
}

/// Small deterministic PRNG (SplitMix64) so tests need no extra dependencies.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Uniform in [-a, a).
    pub fn sym(&mut self, a: f32) -> f32 {
        (self.unit() * 2.0 - 1.0) * a
    }
    /// Roughly normal (sum of uniforms), scaled.
    pub fn normal(&mut self, sd: f32) -> f32 {
        let s: f32 = (0..4).map(|_| self.unit()).sum::<f32>() - 2.0;
        s * sd * 1.732
    }
    pub fn i8(&mut self) -> i8 {
        (self.next_u64() >> 56) as u8 as i8
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
