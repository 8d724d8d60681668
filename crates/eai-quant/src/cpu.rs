//! The [`Quantizer`] trait and its CPU implementation on `ndarray`.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::error::{QuantError, Result};
use crate::kernel::{self, GroupParams, RangeStats, ScaleIssue};
use crate::qtensor::{Codes, GroupLayout, QuantizedTensor};
use crate::spec::QuantSpec;

/// Quantize and dequantize tensors under one [`QuantSpec`]. Object safe.
///
/// Implementations must produce the codes and scales that [`kernel::quantize_value`] and
/// [`kernel::group_params`] define, bit for bit ([`CpuQuantizer`] is the reference).
pub trait Quantizer {
    /// The scheme this quantizer applies.
    fn spec(&self) -> &QuantSpec;

    /// Quantize `x`; `name` identifies the tensor in errors.
    ///
    /// # Errors
    /// [`QuantError::NonFinite`] (under [`NonFinite::Reject`](crate::NonFinite::Reject)),
    /// [`QuantError::Empty`], [`QuantError::BadGroup`], [`QuantError::AxisOutOfRange`],
    /// [`QuantError::BadScale`], [`QuantError::InvalidSpec`].
    fn quantize_named(&self, name: &str, x: ArrayViewD<'_, f32>) -> Result<QuantizedTensor>;

    /// Reconstruct `(q − zero_point) · scale` for every element.
    ///
    /// # Errors
    /// [`QuantError::ShapeMismatch`] when `q` is internally inconsistent.
    fn dequantize(&self, q: &QuantizedTensor) -> Result<ArrayD<f32>>;

    /// Quantize an unnamed tensor (errors call it `<unnamed>`).
    ///
    /// # Errors
    /// As [`quantize_named`](Quantizer::quantize_named).
    fn quantize(&self, x: ArrayViewD<'_, f32>) -> Result<QuantizedTensor> {
        self.quantize_named("<unnamed>", x)
    }
}

impl<Q: Quantizer + ?Sized> Quantizer for &Q {
    fn spec(&self) -> &QuantSpec {
        (**self).spec()
    }
    fn quantize_named(&self, name: &str, x: ArrayViewD<'_, f32>) -> Result<QuantizedTensor> {
        (**self).quantize_named(name, x)
    }
    fn dequantize(&self, q: &QuantizedTensor) -> Result<ArrayD<f32>> {
        (**self).dequantize(q)
    }
}

impl<Q: Quantizer + ?Sized> Quantizer for Box<Q> {
    fn spec(&self) -> &QuantSpec {
        (**self).spec()
    }
    fn quantize_named(&self, name: &str, x: ArrayViewD<'_, f32>) -> Result<QuantizedTensor> {
        (**self).quantize_named(name, x)
    }
    fn dequantize(&self, q: &QuantizedTensor) -> Result<ArrayD<f32>> {
        (**self).dequantize(q)
    }
}

/// The CPU reference quantizer (single-threaded, vectorisable loops over contiguous runs).
///
/// ```
/// use eai_quant::{CpuQuantizer, QuantSpec, Quantizer};
/// let q = CpuQuantizer::new(QuantSpec::int8_weight())?;
/// let w = ndarray::array![[0.5f32, -1.0], [2.0, 0.25]].into_dyn();
/// let qt = q.quantize_named("w", w.view())?;
/// assert_eq!(qt.scales, vec![1.0 / 127.0, 2.0 / 127.0]);
/// assert_eq!(qt.codes, eai_quant::Codes::I8(vec![64, -127, 127, 16]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct CpuQuantizer {
    spec: QuantSpec,
}

impl CpuQuantizer {
    /// A quantizer for `spec`.
    ///
    /// # Errors
    /// [`QuantError::InvalidSpec`] when the spec does not validate.
    pub fn new(spec: QuantSpec) -> Result<Self> {
        spec.validate()?;
        Ok(CpuQuantizer { spec })
    }

    /// Quantize a contiguous row-major buffer of the given shape.
    ///
    /// # Errors
    /// As [`Quantizer::quantize_named`], plus [`QuantError::ShapeMismatch`] when `data.len()`
    /// differs from the shape's element count.
    pub fn quantize_slice(
        &self,
        name: &str,
        data: &[f32],
        shape: &[usize],
    ) -> Result<QuantizedTensor> {
        let layout = GroupLayout::new(name, shape, self.spec.granularity)?;
        if data.len() != layout.numel() {
            return Err(QuantError::ShapeMismatch {
                context: format!("quantize `{name}`"),
                detail: format!("{} values for shape {shape:?}", data.len()),
            });
        }
        // Each group one contiguous run that fits in cache: one pass (stats, parameters and
        // codes while the run is hot). Otherwise two passes over the tensor.
        let run = layout.run_len();
        if layout.groups() * run == layout.numel() && layout.groups() > 1 && run <= 64 * 1024 {
            return self.quantize_fused(name, data, shape, &layout);
        }
        let params = self.group_params(name, data, shape, &layout, None)?;
        Ok(self.encode(data, shape, &layout, &params))
    }

    fn quantize_fused(
        &self,
        name: &str,
        data: &[f32],
        shape: &[usize],
        layout: &GroupLayout,
    ) -> Result<QuantizedTensor> {
        let spec = &self.spec;
        let run = layout.run_len();
        let mut params = Vec::with_capacity(layout.groups());
        let mut fused = |out_run: &mut dyn FnMut(&[f32], GroupParams, usize)| -> Result<()> {
            for (g, src) in data.chunks_exact(run).enumerate() {
                let (st, bad) = kernel::run_stats(src, spec.non_finite);
                if let Some(off) = bad {
                    let flat = g * run + off;
                    return Err(QuantError::NonFinite {
                        tensor: name.into(),
                        index: unravel(flat, shape),
                        flat,
                        value: data[flat],
                    });
                }
                let p =
                    kernel::group_params(st, spec).map_err(|ScaleIssue::NotRepresentable(s)| {
                        QuantError::BadScale {
                            tensor: name.into(),
                            group: g,
                            scale: s,
                            dtype: spec.scale_dtype.name(),
                        }
                    })?;
                out_run(src, p, g);
                params.push(p);
            }
            Ok(())
        };
        let codes = if spec.range.is_signed() {
            let mut out = vec![0i8; data.len()];
            fused(&mut |src, p, g| {
                kernel::quantize_run(src, p, spec, &mut out[g * run..(g + 1) * run], |q| q as i8)
            })?;
            Codes::I8(out)
        } else {
            let mut out = vec![0u8; data.len()];
            fused(&mut |src, p, g| {
                kernel::quantize_run(src, p, spec, &mut out[g * run..(g + 1) * run], |q| q as u8)
            })?;
            Codes::U8(out)
        };
        Ok(QuantizedTensor {
            spec: *spec,
            shape: shape.to_vec(),
            codes,
            scales: params.iter().map(|p| p.scale).collect(),
            scale_shape: layout.scale_shape(),
            zero_points: params.iter().map(|p| p.zero_point).collect(),
        })
    }

    /// Static quantization with calibrated ranges: one [`RangeStats`] per group (from an
    /// [`Observer`](crate::Observer)) instead of the data's own min/max. Values beyond the range
    /// saturate.
    ///
    /// # Errors
    /// As [`quantize_slice`](Self::quantize_slice), plus [`QuantError::ShapeMismatch`] when the
    /// number of ranges differs from the number of groups.
    pub fn quantize_calibrated(
        &self,
        name: &str,
        x: ArrayViewD<'_, f32>,
        ranges: &[RangeStats],
    ) -> Result<QuantizedTensor> {
        let shape = x.shape().to_vec();
        let owned;
        let data = match x.as_slice() {
            Some(s) => s,
            None => {
                owned = x.iter().copied().collect::<Vec<f32>>();
                &owned
            }
        };
        let layout = GroupLayout::new(name, &shape, self.spec.granularity)?;
        if ranges.len() != layout.groups() {
            return Err(QuantError::ShapeMismatch {
                context: format!("quantize_calibrated `{name}`"),
                detail: format!("{} ranges for {} groups", ranges.len(), layout.groups()),
            });
        }
        let params = self.group_params(name, data, &shape, &layout, Some(ranges))?;
        Ok(self.encode(data, &shape, &layout, &params))
    }

    fn encode(
        &self,
        data: &[f32],
        shape: &[usize],
        layout: &GroupLayout,
        params: &[GroupParams],
    ) -> QuantizedTensor {
        let codes = if self.spec.range.is_signed() {
            let mut out = vec![0i8; data.len()];
            self.fill_codes(data, layout, params, &mut out, |q| q as i8);
            Codes::I8(out)
        } else {
            let mut out = vec![0u8; data.len()];
            self.fill_codes(data, layout, params, &mut out, |q| q as u8);
            Codes::U8(out)
        };
        QuantizedTensor {
            spec: self.spec,
            shape: shape.to_vec(),
            codes,
            scales: params.iter().map(|p| p.scale).collect(),
            scale_shape: layout.scale_shape(),
            zero_points: params.iter().map(|p| p.zero_point).collect(),
        }
    }

    /// Per-group statistics and parameters (first pass).
    fn group_params(
        &self,
        name: &str,
        data: &[f32],
        shape: &[usize],
        layout: &GroupLayout,
        calibrated: Option<&[RangeStats]>,
    ) -> Result<Vec<GroupParams>> {
        let mut stats =
            vec![RangeStats { min: f32::INFINITY, max: f32::NEG_INFINITY }; layout.groups()];
        if let Some(c) = layout.channels_last()
            && c >= 8
            && Self::row_stats(data, c, &mut stats)
        {
            return self.finish_params(name, stats, calibrated);
        }
        for (start, len, g) in layout.runs() {
            let (st, bad) = kernel::run_stats(&data[start..start + len], self.spec.non_finite);
            if let Some(off) = bad {
                let flat = start + off;
                return Err(QuantError::NonFinite {
                    tensor: name.into(),
                    index: unravel(flat, shape),
                    flat,
                    value: data[flat],
                });
            }
            // A run whose values are all non-finite (Saturate) reports (0, 0), which only widens
            // the group's range to include 0 — harmless, since every range includes 0.
            let s = &mut stats[g];
            s.min = s.min.min(st.min);
            s.max = s.max.max(st.max);
        }
        self.finish_params(name, stats, calibrated)
    }

    /// Column-wise min/max over rows of `c` elements (per-channel on the last axis). Returns
    /// `false` (and leaves the work to the general path) when a non-finite value is present.
    fn row_stats(data: &[f32], c: usize, stats: &mut [RangeStats]) -> bool {
        let mut mn = vec![f32::INFINITY; c];
        let mut mx = vec![f32::NEG_INFINITY; c];
        let mut bad = false;
        for row in data.chunks_exact(c) {
            for ((x, lo), hi) in row.iter().zip(mn.iter_mut()).zip(mx.iter_mut()) {
                *lo = if *x < *lo { *x } else { *lo };
                *hi = if *x > *hi { *x } else { *hi };
                bad |= !x.is_finite();
            }
        }
        if bad {
            return false;
        }
        for ((s, lo), hi) in stats.iter_mut().zip(mn).zip(mx) {
            *s = RangeStats { min: lo, max: hi };
        }
        true
    }

    fn finish_params(
        &self,
        name: &str,
        stats: Vec<RangeStats>,
        calibrated: Option<&[RangeStats]>,
    ) -> Result<Vec<GroupParams>> {
        let stats = match calibrated {
            Some(c) => c.to_vec(),
            None => stats,
        };
        stats
            .iter()
            .enumerate()
            .map(|(g, &st)| {
                let st = RangeStats::finish(st.min, st.max);
                kernel::group_params(st, &self.spec).map_err(|ScaleIssue::NotRepresentable(s)| {
                    QuantError::BadScale {
                        tensor: name.into(),
                        group: g,
                        scale: s,
                        dtype: self.spec.scale_dtype.name(),
                    }
                })
            })
            .collect()
    }

    fn fill_codes<T: Copy>(
        &self,
        data: &[f32],
        layout: &GroupLayout,
        params: &[GroupParams],
        out: &mut [T],
        store: impl Fn(i32) -> T + Copy,
    ) {
        if let Some(c) = layout.channels_last()
            && c >= 8
        {
            for (row, dst) in data.chunks_exact(c).zip(out.chunks_exact_mut(c)) {
                kernel::quantize_row_varying(row, params, &self.spec, dst, store);
            }
            return;
        }
        for (start, len, g) in layout.runs() {
            kernel::quantize_run(
                &data[start..start + len],
                params[g],
                &self.spec,
                &mut out[start..start + len],
                store,
            );
        }
    }
}

impl Quantizer for CpuQuantizer {
    fn spec(&self) -> &QuantSpec {
        &self.spec
    }

    fn quantize_named(&self, name: &str, x: ArrayViewD<'_, f32>) -> Result<QuantizedTensor> {
        let shape = x.shape().to_vec();
        match x.as_slice() {
            Some(s) => self.quantize_slice(name, s, &shape),
            None => {
                let owned: Vec<f32> = x.iter().copied().collect();
                self.quantize_slice(name, &owned, &shape)
            }
        }
    }

    fn dequantize(&self, q: &QuantizedTensor) -> Result<ArrayD<f32>> {
        let out = dequantize_to_vec(q)?;
        ArrayD::from_shape_vec(IxDyn(&q.shape), out).map_err(|e| QuantError::ShapeMismatch {
            context: "dequantize".into(),
            detail: e.to_string(),
        })
    }
}

/// Dequantize any [`QuantizedTensor`] into a row-major `Vec<f32>` (independent of who made it).
///
/// # Errors
/// [`QuantError::ShapeMismatch`] when `q` is internally inconsistent.
pub fn dequantize_to_vec(q: &QuantizedTensor) -> Result<Vec<f32>> {
    q.validate()?;
    let layout = q.layout()?;
    let mut out = vec![0f32; q.numel()];
    for (start, len, g) in layout.runs() {
        let (s, z) = (q.scales[g], q.zero_points[g]);
        let dst = &mut out[start..start + len];
        match &q.codes {
            Codes::I8(c) => {
                for (d, &c) in dst.iter_mut().zip(&c[start..start + len]) {
                    *d = (i32::from(c) - z) as f32 * s;
                }
            }
            Codes::U8(c) => {
                for (d, &c) in dst.iter_mut().zip(&c[start..start + len]) {
                    *d = (i32::from(c) - z) as f32 * s;
                }
            }
        }
    }
    Ok(out)
}

/// Row-major multi-index of flat index `flat` in `shape`.
pub(crate) fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (i, &d) in shape.iter().enumerate().rev() {
        if d > 0 {
            idx[i] = flat % d;
            flat /= d;
        }
    }
    idx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Granularity, NonFinite};
    use ndarray::{Array2, array};

    #[test]
    fn nan_is_rejected_with_its_index() {
        let q = CpuQuantizer::new(QuantSpec::int8_weight()).unwrap();
        let mut w = Array2::<f32>::zeros((3, 4));
        w[[2, 1]] = f32::NAN;
        w[[2, 3]] = f32::INFINITY;
        match q.quantize_named("layer.weight", w.view().into_dyn()) {
            Err(QuantError::NonFinite { tensor, index, flat, .. }) => {
                assert_eq!((tensor.as_str(), index, flat), ("layer.weight", vec![2, 1], 9));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn saturate_policy_maps_non_finite() {
        let spec =
            QuantSpec { non_finite: NonFinite::Saturate, ..QuantSpec::int8_activation_per_token() };
        let q = CpuQuantizer::new(spec).unwrap();
        let x = array![[1.0f32, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.5]].into_dyn();
        let qt = q.quantize(x.view()).unwrap();
        assert_eq!(qt.codes, Codes::I8(vec![127, 0, 127, -127, -64]));
        assert_eq!(qt.scales, vec![1.0 / 127.0]);
    }

    #[test]
    fn all_zero_rows_get_codes_zero_and_finite_scales() {
        for (name, spec) in QuantSpec::presets() {
            let spec = QuantSpec { granularity: Granularity::PerToken, ..spec };
            let q = CpuQuantizer::new(spec).unwrap();
            let x = Array2::<f32>::zeros((2, 64)).into_dyn();
            let qt = q.quantize(x.view()).unwrap();
            assert!(qt.scales.iter().all(|s| s.is_finite()), "{name}");
            let dq = q.dequantize(&qt).unwrap();
            assert!(dq.iter().all(|&v| v == 0.0), "{name}");
        }
    }

    #[test]
    fn non_contiguous_views_are_handled() {
        let q = CpuQuantizer::new(QuantSpec::int8_weight()).unwrap();
        let w = array![[1.0f32, 2.0], [3.0, 4.0]];
        let t = w.t();
        let a = q.quantize(t.into_dyn()).unwrap();
        let b = q.quantize(t.to_owned().into_dyn().view()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn channels_last_path_matches_the_scalar_reference() {
        use crate::spec::{ScaleApply, ZeroRange};
        let mut x = Array2::from_shape_fn((5, 12), |(i, j)| ((i * 12 + j) as f32 * 0.7).sin());
        x.column_mut(3).fill(0.0); // a zero-range channel
        x[[2, 7]] = f32::INFINITY;
        let axis1 = Granularity::PerChannel { axis: 1 };
        let base = QuantSpec {
            non_finite: NonFinite::Saturate,
            granularity: axis1,
            ..QuantSpec::int8_weight()
        };
        let divide_zero = QuantSpec {
            scale_apply: ScaleApply::Divide,
            zero_range: ZeroRange::ZeroScale,
            eps: 0.0,
            ..base
        };
        for spec in [
            base,
            divide_zero,
            QuantSpec {
                granularity: axis1,
                non_finite: NonFinite::Saturate,
                ..QuantSpec::ggml_q8_0()
            },
        ] {
            let qt = CpuQuantizer::new(spec).unwrap().quantize(x.view().into_dyn()).unwrap();
            let codes = qt.codes.to_i32();
            for ((i, j), &v) in x.indexed_iter() {
                let col: Vec<f32> = x.column(j).to_vec();
                let p = kernel::group_params(RangeStats::of(&col), &spec).unwrap();
                assert_eq!(
                    codes[i * 12 + j],
                    kernel::quantize_value(v, p, &spec),
                    "{spec:?} {i} {j}"
                );
            }
        }
    }

    #[test]
    fn unravel_works() {
        assert_eq!(unravel(9, &[3, 4]), vec![2, 1]);
        assert_eq!(unravel(23, &[2, 3, 4]), vec![1, 2, 3]);
    }
}
