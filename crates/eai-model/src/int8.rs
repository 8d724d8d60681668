//! INT8 adapter between [`crate::Linear`] and the int8 formulas (symmetric, −127..127,
//! round-half-to-even, per-output-channel weight scales, per-token dynamic activation scales).

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Quantizes `w: [out, in]` per output channel: `s = max(amax/127, ε)`, `q = clamp(rne(x/s))`.
pub(crate) fn quantize_per_channel(
    w: ArrayView2<'_, f32>,
    layer: &str,
) -> Result<(Array2<i8>, Vec<f32>)> {
    if w.iter().any(|x| !x.is_finite()) {
        return Err(Error::Quant {
            layer: layer.into(),
            reason: "weight contains NaN or infinity".into(),
        });
    }
    let (n, k) = w.dim();
    let mut q = Array2::<i8>::zeros((n, k));
    let mut scale = vec![0f32; n];
    for ((row, mut qrow), s) in w.rows().into_iter().zip(q.rows_mut()).zip(scale.iter_mut()) {
        *s = row_scale(row.iter().copied());
        let inv = 1.0 / *s;
        for (x, qv) in row.iter().zip(qrow.iter_mut()) {
            *qv = (x * inv).round_ties_even().clamp(-127.0, 127.0) as i8;
        }
    }
    Ok((q, scale))
}

fn row_scale(it: impl Iterator<Item = f32>) -> f32 {
    let amax = it.fold(0f32, |a, x| a.max(x.abs()));
    (amax / 127.0).max(f32::EPSILON)
}

/// `out = x·Wᵀ` for int8 `q` with per-channel `scale`; activations quantized per token when
/// `act_quant` (W8A8), else used in f32 against the dequantized weight values (W8A16).
pub(crate) fn forward(
    x: ArrayView2<'_, f32>,
    q: ArrayView2<'_, i8>,
    scale: &[f32],
    act_quant: bool,
    mut out: ArrayViewMut2<'_, f32>,
    _layer: &str,
) -> Result<()> {
    let k = q.ncols();
    let qs = q.as_standard_layout();
    let qs = qs.as_slice().unwrap_or(&[]);
    if act_quant {
        for (xr, mut orow) in x.rows().into_iter().zip(out.axis_iter_mut(Axis(0))) {
            let s_tok = row_scale(xr.iter().copied());
            let inv = 1.0 / s_tok;
            let xq: Vec<i8> =
                xr.iter().map(|v| (v * inv).round_ties_even().clamp(-127.0, 127.0) as i8).collect();
            let o = orow.as_slice_mut();
            let mut tmp;
            let o: &mut [f32] = match o {
                Some(o) => o,
                None => {
                    tmp = vec![0f32; scale.len()];
                    &mut tmp
                }
            };
            o.par_iter_mut().zip(qs.par_chunks_exact(k)).zip(scale.par_iter()).for_each(
                |((y, wr), sw)| {
                    let acc: i32 =
                        wr.iter().zip(&xq).map(|(&a, &b)| i32::from(a) * i32::from(b)).sum();
                    *y = acc as f32 * s_tok * sw;
                },
            );
        }
    } else {
        for (xr, mut orow) in x.rows().into_iter().zip(out.axis_iter_mut(Axis(0))) {
            let xv = xr.to_vec();
            let vals: Vec<f32> = qs
                .par_chunks_exact(k)
                .zip(scale.par_iter())
                .map(|(wr, sw)| {
                    wr.iter().zip(&xv).map(|(&a, b)| f32::from(a) * b).sum::<f32>() * sw
                })
                .collect();
            for (y, v) in orow.iter_mut().zip(vals) {
                *y = v;
            }
        }
    }
    Ok(())
}
