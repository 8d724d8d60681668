//! Dynamic quantization and the CPU reference INT8 matmul: the oracle for the CUDA kernels.
//!
//! `y = x · wᵀ + b` for an `nn.Linear` weight `w: [N, K]` becomes
//!
//! ```text
//! acc[m, n] = Σ_k (qx[m, k] − zx[m]) · (qw[n, k] − zw[n])          exact, i32
//! y[m, n]   = (acc[m, n] as f32) * (sx[m] * sw[n]) + bias[n]        f32, in this order, no FMA
//! ```

use ndarray::{Array2, ArrayView2};

use crate::cpu::{CpuQuantizer, Quantizer};
use crate::error::{QuantError, Result};
use crate::qtensor::{Codes, QuantizedTensor};
use crate::spec::{Granularity, QuantSpec};

/// Exact `i8 × i8 → i32` matrix product `a · bᵀ` with `a: [M, K]`, `b: [N, K]` (both row-major,
/// the `nn.Linear` layout). The int32 GEMM the GPU path must reproduce exactly.
///
/// # Errors
/// [`QuantError::ShapeMismatch`] when the `K`s differ; [`QuantError::AccumulatorOverflow`] when
/// `K > 131 071` (beyond which `K · 128 · 128` can exceed `i32::MAX`).
pub fn matmul_i8_i32(a: ArrayView2<'_, i8>, b: ArrayView2<'_, i8>) -> Result<Array2<i32>> {
    let (m, k) = a.dim();
    let (n, k2) = b.dim();
    if k != k2 {
        return Err(QuantError::ShapeMismatch {
            context: "matmul_i8_i32".into(),
            detail: format!("a is [{m}, {k}] but b is [{n}, {k2}] (both must be [_, K])"),
        });
    }
    let limit = (i32::MAX as usize) / (128 * 128);
    if k > limit {
        return Err(QuantError::AccumulatorOverflow { k, limit });
    }
    let a = a.as_standard_layout();
    let b = b.as_standard_layout();
    let (a, b) = (a.as_slice().unwrap_or(&[]), b.as_slice().unwrap_or(&[]));
    let mut out = Array2::<i32>::zeros((m, n));
    for (i, row) in out.rows_mut().into_iter().enumerate() {
        let ar = &a[i * k..(i + 1) * k];
        for (j, o) in row.into_iter().enumerate() {
            let br = &b[j * k..(j + 1) * k];
            *o = ar.iter().zip(br).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum();
        }
    }
    Ok(out)
}

/// The scaled epilogue: `y[m, n] = (acc[m, n] as f32) * (row_scale[m] * col_scale[n]) + bias[n]`,
/// each operation an IEEE f32 operation in exactly this order (no fused multiply-add).
///
/// # Errors
/// [`QuantError::ShapeMismatch`] when the scale or bias lengths do not match `acc`.
pub fn scaled_epilogue(
    acc: ArrayView2<'_, i32>,
    row_scale: &[f32],
    col_scale: &[f32],
    bias: Option<&[f32]>,
) -> Result<Array2<f32>> {
    let (m, n) = acc.dim();
    if row_scale.len() != m || col_scale.len() != n || bias.is_some_and(|b| b.len() != n) {
        return Err(QuantError::ShapeMismatch {
            context: "scaled_epilogue".into(),
            detail: format!(
                "acc [{m}, {n}], {} row scales, {} column scales, bias {:?}",
                row_scale.len(),
                col_scale.len(),
                bias.map(<[f32]>::len)
            ),
        });
    }
    let mut y = Array2::<f32>::zeros((m, n));
    for ((i, j), o) in y.indexed_iter_mut() {
        let v = acc[[i, j]] as f32 * (row_scale[i] * col_scale[j]);
        *o = match bias {
            Some(b) => v + b[j],
            None => v,
        };
    }
    Ok(y)
}

/// Integer view of a 2-D quantized operand with its zero points removed: `q − z` per element.
fn centred(q: &QuantizedTensor, what: &str) -> Result<(Array2<i32>, Vec<f32>)> {
    q.validate()?;
    if q.shape.len() != 2 {
        return Err(QuantError::ShapeMismatch {
            context: format!("int8 matmul {what}"),
            detail: format!("expected a 2-D tensor, got shape {:?}", q.shape),
        });
    }
    let (rows, cols) = (q.shape[0], q.shape[1]);
    let per_row = match q.spec.granularity {
        Granularity::PerTensor => false,
        Granularity::PerToken | Granularity::PerChannel { axis: 0 } => true,
        g => {
            return Err(QuantError::InvalidSpec {
                reason: format!(
                    "int8 matmul {what} needs one scale per row or per tensor, got {g:?}"
                ),
            });
        }
    };
    let codes = q.codes.to_i32();
    let mut out = Array2::<i32>::zeros((rows, cols));
    let mut scales = Vec::with_capacity(rows);
    for r in 0..rows {
        let g = if per_row { r } else { 0 };
        let z = q.zero_points[g];
        scales.push(q.scales[g]);
        for c in 0..cols {
            out[[r, c]] = codes[r * cols + c] - z;
        }
    }
    Ok((out, scales))
}

/// INT8 matmul of quantized operands: `x: [M, K]` (per-token or per-tensor) times `w: [N, K]`
/// (per-channel axis 0, per-token or per-tensor), dequantized through [`scaled_epilogue`].
///
/// # Errors
/// [`QuantError::ShapeMismatch`] for incompatible shapes or bias; [`QuantError::InvalidSpec`] for
/// granularities without one scale per row; [`QuantError::AccumulatorOverflow`] when `K` is too
/// long for an exact i32 sum of these ranges.
pub fn int8_matmul(
    x: &QuantizedTensor,
    w: &QuantizedTensor,
    bias: Option<&[f32]>,
) -> Result<Array2<f32>> {
    let (xa, sx) = centred(x, "activation")?;
    let (wa, sw) = centred(w, "weight")?;
    let (m, k) = xa.dim();
    let (n, k2) = wa.dim();
    if k != k2 {
        return Err(QuantError::ShapeMismatch {
            context: "int8_matmul".into(),
            detail: format!("x is [{m}, {k}] but w is [{n}, {k2}]"),
        });
    }
    let amax = |q: &QuantizedTensor| {
        let r = q.spec.range;
        let z = q.zero_points.iter().fold(0i64, |acc, &z| {
            acc.max((i64::from(r.qmax) - i64::from(z)).abs())
                .max((i64::from(r.qmin) - i64::from(z)).abs())
        });
        z.max(1)
    };
    let limit = (i64::from(i32::MAX) / (amax(x) * amax(w))) as usize;
    if k > limit {
        return Err(QuantError::AccumulatorOverflow { k, limit });
    }
    let mut acc = Array2::<i32>::zeros((m, n));
    for i in 0..m {
        let xr = xa.row(i);
        for j in 0..n {
            let wr = wa.row(j);
            acc[[i, j]] = xr.iter().zip(wr.iter()).map(|(&a, &b)| a * b).sum();
        }
    }
    scaled_epilogue(acc.view(), &sx, &sw, bias)
}

/// Per-token dynamic activation quantization: one scale per row of `x: [M, K]`, computed at run
/// time from the row's absolute maximum (`spec` must have [`Granularity::PerToken`]).
///
/// # Errors
/// As [`Quantizer::quantize_named`]; [`QuantError::InvalidSpec`] when `spec` is not per-token.
pub fn quantize_per_token(x: ArrayView2<'_, f32>, spec: &QuantSpec) -> Result<QuantizedTensor> {
    if spec.granularity != Granularity::PerToken {
        return Err(QuantError::InvalidSpec {
            reason: format!(
                "per-token quantization needs Granularity::PerToken, got {:?}",
                spec.granularity
            ),
        });
    }
    CpuQuantizer::new(*spec)?.quantize_named("activation", x.into_dyn())
}

/// A dynamically quantized linear layer (W8A8): int8 weights per output channel ahead of time,
/// int8 activations per token at run time, exact i32 accumulation, f32 output.
///
/// ```
/// use eai_quant::{Int8Linear, QuantSpec};
/// let w = ndarray::array![[1.0f32, -2.0, 0.5], [0.25, 0.0, -1.0]];
/// let layer = Int8Linear::new("proj", w.view(), Some(vec![0.1, -0.1]), QuantSpec::int8_weight(),
///                             QuantSpec::int8_activation_per_token())?;
/// let x = ndarray::array![[1.0f32, 1.0, 1.0]];
/// let y = layer.forward(x.view())?;
/// assert!((y[[0, 0]] - (-0.5 + 0.1)).abs() < 0.05);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Int8Linear {
    weight: QuantizedTensor,
    bias: Option<Vec<f32>>,
    act_spec: QuantSpec,
}

impl Int8Linear {
    /// Quantize `weight: [out, in]` under `weight_spec` (per-channel axis 0 or per-tensor), keep
    /// `bias` in f32, and remember `act_spec` (per-token) for run time.
    ///
    /// # Errors
    /// Quantization errors for the weight (named `name`); [`QuantError::ShapeMismatch`] for a
    /// bias of the wrong length; [`QuantError::InvalidSpec`] for unsuitable specs.
    pub fn new(
        name: &str,
        weight: ArrayView2<'_, f32>,
        bias: Option<Vec<f32>>,
        weight_spec: QuantSpec,
        act_spec: QuantSpec,
    ) -> Result<Self> {
        if !matches!(
            weight_spec.granularity,
            Granularity::PerChannel { axis: 0 } | Granularity::PerTensor | Granularity::PerToken
        ) {
            return Err(QuantError::InvalidSpec {
                reason: format!(
                    "Int8Linear weights need per-channel (axis 0) or per-tensor scales, got {:?}",
                    weight_spec.granularity
                ),
            });
        }
        act_spec.validate()?;
        if act_spec.granularity != Granularity::PerToken
            && act_spec.granularity != Granularity::PerTensor
        {
            return Err(QuantError::InvalidSpec {
                reason: "Int8Linear activations need per-token or per-tensor scales".into(),
            });
        }
        if let Some(b) = &bias
            && b.len() != weight.nrows()
        {
            return Err(QuantError::ShapeMismatch {
                context: format!("Int8Linear `{name}` bias"),
                detail: format!("{} values for {} outputs", b.len(), weight.nrows()),
            });
        }
        let weight = CpuQuantizer::new(weight_spec)?.quantize_named(name, weight.into_dyn())?;
        Ok(Int8Linear { weight, bias, act_spec })
    }

    /// The quantized weight.
    pub fn weight(&self) -> &QuantizedTensor {
        &self.weight
    }

    /// `y = dequant(int8(x) · int8(w)ᵀ) + b` for `x: [M, in]`.
    ///
    /// # Errors
    /// Quantization errors for `x`; [`QuantError::ShapeMismatch`] when `x` has the wrong width.
    pub fn forward(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let qx = CpuQuantizer::new(self.act_spec)?.quantize_named("activation", x.into_dyn())?;
        int8_matmul(&qx, &self.weight, self.bias.as_deref())
    }
}

/// The codes of a signed quantized 2-D tensor as an `[rows, cols]` `i8` array.
///
/// # Errors
/// [`QuantError::ShapeMismatch`] when the tensor is not 2-D or its codes are unsigned.
pub fn codes_i8_2d(q: &QuantizedTensor) -> Result<Array2<i8>> {
    match (&q.codes, q.shape.as_slice()) {
        (Codes::I8(c), &[r, k]) => Array2::from_shape_vec((r, k), c.clone()).map_err(|e| {
            QuantError::ShapeMismatch { context: "codes_i8_2d".into(), detail: e.to_string() }
        }),
        _ => Err(QuantError::ShapeMismatch {
            context: "codes_i8_2d".into(),
            detail: format!("need signed codes of a 2-D tensor, got shape {:?}", q.shape),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::IntRange;
    use ndarray::array;

    #[test]
    fn i32_matmul_is_exact_at_the_extremes() {
        let k = 1000;
        let a = Array2::from_elem((2, k), -128i8);
        let b = Array2::from_elem((3, k), -128i8);
        let c = matmul_i8_i32(a.view(), b.view()).unwrap();
        assert!(c.iter().all(|&v| v == 16384 * k as i32));
        let too_long = Array2::from_elem((1, 140_000), 1i8);
        assert!(matches!(
            matmul_i8_i32(too_long.view(), too_long.view()),
            Err(QuantError::AccumulatorOverflow { .. })
        ));
    }

    #[test]
    fn epilogue_order_is_fixed() {
        let acc = array![[3i32, -7]];
        let y = scaled_epilogue(acc.view(), &[0.1], &[0.3, 0.7], Some(&[1.0, -1.0])).unwrap();
        assert_eq!(y[[0, 0]], 3.0f32 * (0.1f32 * 0.3f32) + 1.0);
        assert_eq!(y[[0, 1]], -7.0f32 * (0.1f32 * 0.7f32) - 1.0);
    }

    #[test]
    fn asymmetric_activations_match_dequantized_product() {
        let w = array![[0.5f32, -1.0, 0.25, 2.0], [-0.75, 0.1, 0.2, -0.3]];
        let x = array![[1.0f32, 2.0, 3.0, 4.0], [-1.0, 0.5, 0.0, 0.2], [0.0, 0.0, 0.0, 0.0]];
        let ws = QuantSpec::int8_weight();
        let xs = QuantSpec {
            range: IntRange::I8,
            granularity: Granularity::PerToken,
            ..QuantSpec::uint8_asymmetric()
        };
        let qx = CpuQuantizer::new(xs).unwrap().quantize(x.view().into_dyn()).unwrap();
        let qw = CpuQuantizer::new(ws).unwrap().quantize(w.view().into_dyn()).unwrap();
        let y = int8_matmul(&qx, &qw, None).unwrap();
        let dx = CpuQuantizer::new(xs).unwrap().dequantize(&qx).unwrap();
        let dw = CpuQuantizer::new(ws).unwrap().dequantize(&qw).unwrap();
        let dx = dx.into_dimensionality::<ndarray::Ix2>().unwrap();
        let dw = dw.into_dimensionality::<ndarray::Ix2>().unwrap();
        let want = dx.dot(&dw.t());
        for (a, b) in y.iter().zip(want.iter()) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
        }
        assert_eq!(y.row(2).to_vec(), vec![0.0, 0.0]);
    }

    #[test]
    fn w8a8_linear_is_close_to_f32() {
        let w = Array2::from_shape_fn((16, 64), |(i, j)| ((i * 64 + j) as f32 * 0.37).sin());
        let x = Array2::from_shape_fn((5, 64), |(i, j)| ((i * 7 + j) as f32 * 0.11).cos());
        let bias: Vec<f32> = (0..16).map(|i| i as f32 * 0.01).collect();
        let layer = Int8Linear::new(
            "w",
            w.view(),
            Some(bias.clone()),
            QuantSpec::int8_weight(),
            QuantSpec::int8_activation_per_token(),
        )
        .unwrap();
        let y = layer.forward(x.view()).unwrap();
        let mut want = x.dot(&w.t());
        for mut r in want.rows_mut() {
            for (v, b) in r.iter_mut().zip(&bias) {
                *v += b;
            }
        }
        let e =
            crate::metrics::ErrorStats::between(want.as_slice().unwrap(), y.as_slice().unwrap())
                .unwrap();
        assert!(e.sqnr_db > 35.0, "{e:?}");
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let w = array![[1.0f32, 2.0], [3.0, 4.0]];
        let layer = Int8Linear::new(
            "w",
            w.view(),
            None,
            QuantSpec::int8_weight(),
            QuantSpec::int8_activation_per_token(),
        )
        .unwrap();
        let x = array![[1.0f32, 2.0, 3.0]];
        assert!(matches!(layer.forward(x.view()), Err(QuantError::ShapeMismatch { .. })));
        assert!(
            Int8Linear::new(
                "w",
                w.view(),
                Some(vec![1.0]),
                QuantSpec::int8_weight(),
                QuantSpec::int8_activation_per_token()
            )
            .is_err()
        );
        let g = QuantSpec {
            granularity: Granularity::PerGroup { size: 2 },
            ..QuantSpec::int8_weight()
        };
        assert!(
            Int8Linear::new("w", w.view(), None, g, QuantSpec::int8_activation_per_token())
                .is_err()
        );
    }
}
