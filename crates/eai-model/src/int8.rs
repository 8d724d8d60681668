//! INT8 adapter between [`crate::Linear`] and `eai-quant`.
//!
//! Quantization (weights per output channel, activations per token) is `eai-quant`'s
//! (`QuantSpec::int8_weight()` / `int8_activation_per_token()`: symmetric −127..127, `s = amax/127`,
//! round half to even). The i8×i8→i32 product is computed here with a parallel kernel — integer
//! sums are exact, so the accumulators equal `eai_quant::matmul_i8_i32`'s — and the epilogue is
//! eai-quant's formula `(acc as f32) * (s_token * s_channel)` in that order, so outputs are
//! bit-identical to `eai_quant::Int8Linear::forward` (tested).

use eai_quant::{
    CpuQuantizer, QuantSpec, QuantizedTensor, Quantizer, codes_i8_2d, quantize_per_token,
};
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

use crate::error::{Error, Result};

fn qerr(layer: &str, e: impl std::fmt::Display) -> Error {
    Error::Quant { layer: layer.to_string(), reason: e.to_string() }
}

/// An int8 weight `[out, in]` with one f32 scale per output channel.
#[derive(Debug, Clone)]
pub(crate) struct Int8Weight {
    pub(crate) q: Array2<i8>,
    pub(crate) scale: Vec<f32>,
}

/// Quantizes `w: [out, in]` with eai-quant's default int8 weight spec.
pub(crate) fn quantize_weight(w: ArrayView2<'_, f32>, layer: &str) -> Result<Int8Weight> {
    let qt: QuantizedTensor = CpuQuantizer::new(QuantSpec::int8_weight())
        .and_then(|q| q.quantize_named(layer, w.into_dyn()))
        .map_err(|e| qerr(layer, e))?;
    if qt.zero_points.iter().any(|&z| z != 0) || qt.scales.len() != w.nrows() {
        return Err(qerr(layer, "expected symmetric per-channel scales"));
    }
    let q = codes_i8_2d(&qt).map_err(|e| qerr(layer, e))?;
    Ok(Int8Weight { q, scale: qt.scales })
}

/// The dequantized weight `q · s` (W8A16 multiplies activations by this in f32).
pub(crate) fn dequantize_weight(w: &Int8Weight) -> Array2<f32> {
    let mut out = w.q.mapv(f32::from);
    for (mut row, s) in out.rows_mut().into_iter().zip(&w.scale) {
        row.mapv_inplace(|v| v * s);
    }
    out
}

/// W8A8: `out = (Σ qx·qw) as f32 * (s_token * s_channel)`, activations quantized per token.
pub(crate) fn forward_w8a8(
    x: ArrayView2<'_, f32>,
    w: &Int8Weight,
    mut out: ArrayViewMut2<'_, f32>,
    layer: &str,
) -> Result<()> {
    let qx = quantize_per_token(x, &QuantSpec::int8_activation_per_token())
        .map_err(|e| qerr(layer, e))?;
    let xq = codes_i8_2d(&qx).map_err(|e| qerr(layer, e))?;
    let sx = &qx.scales;
    let (m, k) = xq.dim();
    let n = w.q.nrows();
    let (Some(xs), Some(ws)) = (xq.as_slice(), w.q.as_slice()) else {
        return Err(qerr(layer, "non-contiguous int8 operands"));
    };
    // Column-major blocks of output channels, all tokens per block (weights read once).
    let mut acc = vec![0i32; m * n];
    let block = 16usize;
    acc.par_chunks_mut(block * m).enumerate().for_each(|(bi, chunk)| {
        let n0 = bi * block;
        let nb = chunk.len() / m;
        for j in 0..nb {
            let wr = &ws[(n0 + j) * k..(n0 + j + 1) * k];
            for i in 0..m {
                chunk[j * m + i] = dot_i8(&xs[i * k..(i + 1) * k], wr);
            }
        }
    });
    for (i, mut row) in out.rows_mut().into_iter().enumerate() {
        for (j, o) in row.iter_mut().enumerate() {
            *o = acc[j * m + i] as f32 * (sx[i] * w.scale[j]);
        }
    }
    Ok(())
}

/// `Σ a·b` over two equal-length int8 slices, exact in i32 (|a·b| ≤ 127² per term).
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 support was checked at run time just above.
            #[allow(unsafe_code)]
            return unsafe { dot_i8_avx2(a, b) };
        }
    }
    dot_i8_portable(a, b)
}

fn dot_i8_portable(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = [0i32; 16];
    let ca = a.chunks_exact(16);
    let cb = b.chunks_exact(16);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..16 {
            acc[l] += i32::from(x[l]) * i32::from(y[l]);
        }
    }
    let tail: i32 = ra.iter().zip(rb).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum();
    acc.iter().sum::<i32>() + tail
}

/// AVX2: sign-extend 16 codes to i16, multiply pairwise and add adjacent products to i32
/// (`vpmaddwd`), accumulate in eight i32 lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_cvtsi128_si32, _mm_loadu_si128, _mm_shuffle_epi32,
        _mm256_add_epi32, _mm256_castsi256_si128, _mm256_cvtepi8_epi16, _mm256_extracti128_si256,
        _mm256_madd_epi16, _mm256_setzero_si256,
    };
    let n = a.len().min(b.len());
    let (ca, cb) = (a[..n].chunks_exact(16), b[..n].chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let mut acc0 = _mm256_setzero_si256();
    for (x, y) in ca.zip(cb) {
        // SAFETY: each chunk holds exactly 16 bytes, the width of an unaligned 128-bit load.
        #[allow(unsafe_code)]
        let (vx, vy) = unsafe {
            (
                _mm_loadu_si128(x.as_ptr().cast::<__m128i>()),
                _mm_loadu_si128(y.as_ptr().cast::<__m128i>()),
            )
        };
        let p = _mm256_madd_epi16(_mm256_cvtepi8_epi16(vx), _mm256_cvtepi8_epi16(vy));
        acc0 = _mm256_add_epi32(acc0, p);
    }
    let s = _mm_add_epi32(_mm256_castsi256_si128(acc0), _mm256_extracti128_si256::<1>(acc0));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    let tail: i32 = ra.iter().zip(rb).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum();
    _mm_cvtsi128_si32(s) + tail
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn w8a8_is_bit_identical_to_eai_quant() {
        let w = Array2::from_shape_fn((37, 70), |(i, j)| {
            ((i * 70 + j) as f32 * 0.37).sin() * (1.0 + i as f32 * 0.1)
        });
        let x = Array2::from_shape_fn((5, 70), |(i, j)| ((i * 13 + j) as f32 * 0.11).cos() * 3.0);
        let ours_w = quantize_weight(w.view(), "w").unwrap();
        let mut ours = Array2::zeros((5, 37));
        forward_w8a8(x.view(), &ours_w, ours.view_mut(), "w").unwrap();
        let theirs = eai_quant::Int8Linear::new(
            "w",
            w.view(),
            None,
            QuantSpec::int8_weight(),
            QuantSpec::int8_activation_per_token(),
        )
        .unwrap()
        .forward(x.view())
        .unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn dot_kernels_agree_exactly_on_ragged_lengths_and_extremes() {
        for n in [0usize, 1, 15, 16, 17, 31, 64, 576, 1537] {
            let a: Vec<i8> = (0..n).map(|i| ((i * 37 + 11) % 255) as i8).collect();
            let b: Vec<i8> = (0..n).map(|i| ((i * 91 + 3) % 255) as i8).collect();
            let want: i32 = a.iter().zip(&b).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum();
            assert_eq!(dot_i8_portable(&a, &b), want, "portable n={n}");
            assert_eq!(dot_i8(&a, &b), want, "dispatched n={n}");
        }
        let lo = vec![-127i8; 4096];
        assert_eq!(dot_i8(&lo, &lo), 127 * 127 * 4096);
        let hi = vec![127i8; 4096];
        assert_eq!(dot_i8(&lo, &hi), -127 * 127 * 4096);
    }
}
