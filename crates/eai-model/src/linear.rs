//! The `Linear` seam: one projection `y = x·Wᵀ (+ b)` whose weight format is a [`Scheme`].

use std::sync::Arc;

use half::{bf16, f16};
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis, linalg::general_mat_mul};

use crate::error::{Error, Result};

/// The numeric scheme of one linear layer.
///
/// On the CPU reference path every scheme accumulates in f32 and keeps the residual stream in
/// f32. FP16/BF16 are exact emulations of "f16/bf16 weights and GEMM inputs, f32 accumulation":
/// weights and activations are rounded to the half type before the product, which is then formed in
/// f32 (storage stays f32 so the fast f32 kernel can be used).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// f32 weights and activations.
    Fp32,
    /// f16 weights and GEMM inputs, f32 accumulation.
    Fp16,
    /// bf16 weights and GEMM inputs, f32 accumulation.
    Bf16,
    /// int8 weights (symmetric, per output channel) and int8 activations (symmetric, per token,
    /// computed at run time); i8×i8→i32 products, then `acc · s_token · s_channel (+ bias)`.
    W8A8,
    /// int8 weights (symmetric, per output channel), f32 activations (weight-only).
    W8A16,
}

impl Scheme {
    /// Short label: `fp32`, `fp16`, `bf16`, `int8-w8a8`, `int8-w8a16`.
    pub fn label(self) -> &'static str {
        match self {
            Scheme::Fp32 => "fp32",
            Scheme::Fp16 => "fp16",
            Scheme::Bf16 => "bf16",
            Scheme::W8A8 => "int8-w8a8",
            Scheme::W8A16 => "int8-w8a16",
        }
    }

    /// Parses a [`Scheme::label`] (also accepts `w8a8`, `w8a16`, `int8`).
    pub fn from_label(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "fp32" | "f32" => Scheme::Fp32,
            "fp16" | "f16" => Scheme::Fp16,
            "bf16" => Scheme::Bf16,
            "int8-w8a8" | "w8a8" | "int8" => Scheme::W8A8,
            "int8-w8a16" | "w8a16" | "int8-weight-only" => Scheme::W8A16,
            _ => return None,
        })
    }

    /// Rounds a value as this scheme's float storage would (identity for f32 and int8 schemes).
    pub(crate) fn round(self, x: f32) -> f32 {
        match self {
            Scheme::Fp16 => f16::from_f32(x).to_f32(),
            Scheme::Bf16 => bf16::from_f32(x).to_f32(),
            _ => x,
        }
    }
}

#[derive(Debug, Clone)]
enum Store {
    /// f32 values `[out, in]` (already rounded to f16/bf16 for those schemes).
    Dense(Arc<Array2<f32>>),
    /// int8 weights `[out, in]` with one f32 scale per output channel (W8A8).
    Int8(crate::int8::Int8Weight),
}

/// One linear projection.
#[derive(Debug, Clone)]
pub struct Linear {
    name: String,
    scheme: Scheme,
    out_features: usize,
    in_features: usize,
    store: Store,
    bias: Option<Vec<f32>>,
}

impl Linear {
    /// Builds a layer from an f32 weight `[out, in]`, converting it to `scheme`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the bias length differs from `out`; [`Error::Quant`] when the
    /// int8 quantizer rejects the weight (e.g. non-finite values).
    pub fn new(
        name: impl Into<String>,
        weight: Array2<f32>,
        bias: Option<Vec<f32>>,
        scheme: Scheme,
    ) -> Result<Self> {
        Self::from_shared(name, Arc::new(weight), bias, scheme)
    }

    /// As [`Linear::new`], sharing the weight (used for tied embeddings under float schemes).
    ///
    /// # Errors
    /// As [`Linear::new`].
    pub fn from_shared(
        name: impl Into<String>,
        weight: Arc<Array2<f32>>,
        bias: Option<Vec<f32>>,
        scheme: Scheme,
    ) -> Result<Self> {
        let name = name.into();
        let (out_features, in_features) = weight.dim();
        if let Some(b) = &bias
            && b.len() != out_features
        {
            return Err(Error::ShapeMismatch {
                tensor: format!("{name}.bias"),
                expected: vec![out_features],
                found: vec![b.len()],
            });
        }
        let store = match scheme {
            Scheme::Fp32 => Store::Dense(weight),
            Scheme::Fp16 | Scheme::Bf16 => {
                let rounded = weight.mapv(|x| scheme.round(x));
                Store::Dense(Arc::new(rounded))
            }
            Scheme::W8A8 => Store::Int8(crate::int8::quantize_weight(weight.view(), &name)?),
            // Weight-only: int8 codes and scales from eai-quant, multiplied in f32 as q·s.
            Scheme::W8A16 => {
                let w = crate::int8::quantize_weight(weight.view(), &name)?;
                Store::Dense(Arc::new(crate::int8::dequantize_weight(&w)))
            }
        };
        Ok(Linear { name, scheme, out_features, in_features, store, bias })
    }

    /// The layer's name (Hugging Face tensor name without `.weight`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layer's scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// Bytes the weight would occupy in its scheme's native storage (f32 = 4, f16/bf16 = 2,
    /// int8 = 1 per element, plus scales).
    pub fn weight_bytes(&self) -> usize {
        let n = self.out_features * self.in_features;
        match self.scheme {
            Scheme::Fp32 => 4 * n,
            Scheme::Fp16 | Scheme::Bf16 => 2 * n,
            Scheme::W8A8 | Scheme::W8A16 => n + 4 * self.out_features,
        }
    }

    /// `out = x·Wᵀ + b` for `x: [t, in]`, `out: [t, out]`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on shape mismatch.
    pub fn forward(&self, x: ArrayView2<'_, f32>, mut out: ArrayViewMut2<'_, f32>) -> Result<()> {
        let (t, i) = x.dim();
        if i != self.in_features || out.dim() != (t, self.out_features) {
            return Err(Error::invalid(format!(
                "layer {}: input {:?} / output {:?} do not fit weight [{}, {}]",
                self.name,
                x.dim(),
                out.dim(),
                self.out_features,
                self.in_features
            )));
        }
        match &self.store {
            Store::Dense(w) => {
                if matches!(self.scheme, Scheme::Fp16 | Scheme::Bf16) {
                    let xr = x.mapv(|v| self.scheme.round(v));
                    matmul_t(xr.view(), w.view(), out.view_mut());
                } else {
                    matmul_t(x, w.view(), out.view_mut());
                }
            }
            Store::Int8(w) => crate::int8::forward_w8a8(x, w, out.view_mut(), &self.name)?,
        }
        if let Some(b) = &self.bias {
            for mut row in out.rows_mut() {
                for (y, bb) in row.iter_mut().zip(b) {
                    *y += bb;
                }
            }
        }
        Ok(())
    }
}

/// Work (multiply-adds) below which a product runs on one thread.
const PAR_MIN_WORK: usize = 1 << 17;

/// `out = x · wᵀ` with `x: [t, k]`, `w: [n, k]`, `out: [t, n]`; parallel over output columns.
pub(crate) fn matmul_t(
    x: ArrayView2<'_, f32>,
    w: ArrayView2<'_, f32>,
    out: ArrayViewMut2<'_, f32>,
) {
    let (t, k) = x.dim();
    let n = w.nrows();
    let threads = rayon::current_num_threads().max(1);
    let pieces = if t * k * n < PAR_MIN_WORK { 1 } else { threads * if t <= 4 { 4 } else { 1 } };
    par_split(x, w, out, pieces.min(n.max(1)));
}

fn par_split(
    x: ArrayView2<'_, f32>,
    w: ArrayView2<'_, f32>,
    mut out: ArrayViewMut2<'_, f32>,
    pieces: usize,
) {
    if pieces <= 1 {
        kernel(x, w, out);
        return;
    }
    let n = w.nrows();
    let left = pieces / 2;
    let mid = n * left / pieces;
    let (w0, w1) = w.split_at(Axis(0), mid);
    let (o0, o1) = out.view_mut().split_at(Axis(1), mid);
    rayon::join(|| par_split(x, w0, o0, left), || par_split(x, w1, o1, pieces - left));
}

fn kernel(x: ArrayView2<'_, f32>, w: ArrayView2<'_, f32>, mut out: ArrayViewMut2<'_, f32>) {
    let t = x.nrows();
    if t <= 2
        && let Some(ws) = w.as_slice()
    {
        let k = w.ncols();
        for (xr, mut orow) in x.rows().into_iter().zip(out.rows_mut()) {
            let xs_owned;
            let xs = match xr.as_slice() {
                Some(s) => s,
                None => {
                    xs_owned = xr.to_vec();
                    &xs_owned
                }
            };
            for (o, wr) in orow.iter_mut().zip(ws.chunks_exact(k)) {
                *o = dot_wide(xs, wr);
            }
        }
        return;
    }
    general_mat_mul(1.0, &x, &w.t(), 0.0, &mut out);
}

/// The GEMV dot product: AVX2+FMA when the CPU has them (checked at run time), else [`dot`].
fn dot_wide(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: AVX2 and FMA support were checked at run time just above.
            #[allow(unsafe_code)]
            return unsafe { dot_avx2_fma(a, b) };
        }
    }
    dot(a, b)
}

/// Four independent 8-lane FMA accumulators over 32-float chunks, then the scalar tail.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_avx2_fma(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::{
        __m256, _mm_add_ps, _mm_cvtss_f32, _mm_movehl_ps, _mm_shuffle_ps, _mm256_add_ps,
        _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_loadu_ps,
        _mm256_setzero_ps,
    };
    let n = a.len().min(b.len());
    let (ca, cb) = (a[..n].chunks_exact(32), b[..n].chunks_exact(32));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let mut acc: [__m256; 4] = [_mm256_setzero_ps(); 4];
    for (x, y) in ca.zip(cb) {
        for (l, acc_l) in acc.iter_mut().enumerate() {
            // SAFETY: each chunk holds 32 floats; lane group `l` reads floats 8l..8l+8 of it.
            #[allow(unsafe_code)]
            let (vx, vy) = unsafe {
                (_mm256_loadu_ps(x.as_ptr().add(8 * l)), _mm256_loadu_ps(y.as_ptr().add(8 * l)))
            };
            *acc_l = _mm256_fmadd_ps(vx, vy, *acc_l);
        }
    }
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let s = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ps(s, _mm_shuffle_ps::<0b01>(s, s));
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    _mm_cvtss_f32(s) + tail
}

/// Dot product with 16 independent accumulators (vectorises without fast-math).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let ca = a.chunks_exact(16);
    let cb = b.chunks_exact(16);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..16 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = 0f32;
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    let mut half = [0f32; 8];
    for l in 0..8 {
        half[l] = acc[l] + acc[l + 8];
    }
    (half[0] + half[4]) + (half[1] + half[5]) + (half[2] + half[6]) + (half[3] + half[7]) + s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ndarray::Array2;

    fn naive(x: &Array2<f32>, w: &Array2<f32>) -> Array2<f32> {
        let mut o = Array2::zeros((x.nrows(), w.nrows()));
        for i in 0..x.nrows() {
            for j in 0..w.nrows() {
                o[[i, j]] = (0..x.ncols())
                    .map(|k| f64::from(x[[i, k]]) * f64::from(w[[j, k]]))
                    .sum::<f64>() as f32;
            }
        }
        o
    }

    #[test]
    fn matmul_matches_naive_for_all_paths() {
        for (t, k, n) in [(1, 37, 5), (2, 64, 300), (1, 576, 1536), (7, 100, 3), (33, 576, 200)] {
            let x =
                Array2::from_shape_fn((t, k), |(i, j)| ((i * 7 + j * 3) % 11) as f32 * 0.1 - 0.5);
            let w =
                Array2::from_shape_fn((n, k), |(i, j)| ((i * 5 + j * 13) % 17) as f32 * 0.05 - 0.4);
            let mut o = Array2::zeros((t, n));
            matmul_t(x.view(), w.view(), o.view_mut());
            let r = naive(&x, &w);
            for (a, b) in o.iter().zip(r.iter()) {
                assert!((a - b).abs() < 1e-3, "{t}x{k}x{n}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn bias_and_shape_checks() {
        let w = Array2::from_shape_vec((2, 3), vec![1., 0., 0., 0., 1., 1.]).unwrap();
        let l = Linear::new("l", w.clone(), Some(vec![10., 20.]), Scheme::Fp32).unwrap();
        let x = Array2::from_shape_vec((1, 3), vec![1., 2., 3.]).unwrap();
        let mut o = Array2::zeros((1, 2));
        l.forward(x.view(), o.view_mut()).unwrap();
        assert_eq!(o.as_slice().unwrap(), &[11., 25.]);
        let mut bad = Array2::zeros((1, 3));
        assert!(l.forward(x.view(), bad.view_mut()).is_err());
        assert!(Linear::new("l", w, Some(vec![1.]), Scheme::Fp32).is_err());
    }

    #[test]
    fn half_schemes_round_weights_and_inputs() {
        let w = Array2::from_shape_vec((1, 1), vec![1.0 + 1.0 / 4096.0]).unwrap();
        let x = Array2::from_shape_vec((1, 1), vec![1.0 + 1.0 / 4096.0]).unwrap();
        for (s, expect) in [
            (Scheme::Fp32, (1.0f32 + 1.0 / 4096.0).powi(2)),
            (Scheme::Fp16, 1.0),
            (Scheme::Bf16, 1.0),
        ] {
            let l = Linear::new("l", w.clone(), None, s).unwrap();
            let mut o = Array2::zeros((1, 1));
            l.forward(x.view(), o.view_mut()).unwrap();
            assert_eq!(o[[0, 0]], expect, "{s:?}");
        }
        assert_eq!(Scheme::from_label("w8a8"), Some(Scheme::W8A8));
        assert_eq!(Scheme::from_label(Scheme::W8A16.label()), Some(Scheme::W8A16));
    }

    #[test]
    fn wide_dot_matches_the_portable_dot() {
        for n in [0usize, 1, 7, 31, 32, 33, 576, 1536, 1537] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 91 % 89) as f32 - 44.0) * 0.021).collect();
            let want: f64 = a.iter().zip(&b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
            let (p, w) = (dot(&a, &b), dot_wide(&a, &b));
            let tol = 1e-5 * (1.0 + want.abs());
            assert!((f64::from(p) - want).abs() < tol, "portable n={n}");
            assert!((f64::from(w) - want).abs() < tol, "wide n={n}: {w} vs {want}");
        }
    }
}
