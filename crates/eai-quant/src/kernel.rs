//! The arithmetic itself: small pure functions on one group and one element.
//!
//! Everything else (the CPU quantizer, the CUDA kernels, the checkpoint writer) must produce the
//! same bits as these functions. The contract, operation by operation, is written out in
//! `docs/quant.md`; in short (all `f32`, IEEE round-to-nearest-even, no fused multiply-add):
//!
//! ```text
//! group:   amax = max(-min(lo,0), max(hi,0))            (symmetric)
//!          s_exact = amax / D        or (max(hi,0) - min(lo,0)) / D      (f32 division)
//!          s_exact = max(s_exact, eps)                   (ZeroRange::ClampToEps only)
//!          scale = round_to(scale_dtype, s_exact)        (0 → the dtype's smallest subnormal)
//!          zp = symmetric zp  or  clamp(qmin - round(min(lo,0) / scale), qmin, qmax)
//!          inv = 1/scale | 1/s_exact | D/amax            (per ScaleApply)
//! element: v = x * inv   (or x / scale for ScaleApply::Divide)
//!          r = round(v)  (half-to-even or half-away-from-zero), saturating cast to i32, NaN → 0
//!          q = clamp(r + zp, qmin, qmax)                 (integer arithmetic)
//!          x̂ = ((q - zp) as f32) * scale
//! ```

use serde::{Deserialize, Serialize};

use crate::spec::{Mapping, NonFinite, QuantSpec, Rounding, ScaleApply, ZeroRange};

/// Minimum and maximum of a group's values (finite values only under [`NonFinite::Saturate`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RangeStats {
    /// Smallest value.
    pub min: f32,
    /// Largest value.
    pub max: f32,
}

impl RangeStats {
    /// Stats of a slice, ignoring non-finite values; `(0, 0)` when nothing finite is present.
    pub fn of(values: &[f32]) -> RangeStats {
        let (mut mn, mut mx) = (f32::INFINITY, f32::NEG_INFINITY);
        for &x in values {
            if x.is_finite() {
                mn = mn.min(x);
                mx = mx.max(x);
            }
        }
        RangeStats::finish(mn, mx)
    }

    /// `(0, 0)` when `min > max` (a reduction that saw no finite value), else unchanged.
    pub fn normalised(self) -> RangeStats {
        RangeStats::finish(self.min, self.max)
    }

    /// Normalise the result of a reduction that started from `(+inf, −inf)`.
    pub(crate) fn finish(mn: f32, mx: f32) -> RangeStats {
        if mn > mx { RangeStats { min: 0.0, max: 0.0 } } else { RangeStats { min: mn, max: mx } }
    }
}

/// Scale, zero point and multiplier of one group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GroupParams {
    /// The stored scale (exactly representable in the spec's scale dtype), `≥ 0`.
    pub scale: f32,
    /// The integer zero point, within `qmin..=qmax`.
    pub zero_point: i32,
    /// The multiplier `inv` with `v = x * inv` (unused by [`ScaleApply::Divide`]); 0 when
    /// `scale == 0`.
    pub inv: f32,
}

/// Why a group's scale could not be formed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScaleIssue {
    /// The scale is infinite or NaN (e.g. an f16 scale above 65504, or non-finite stats).
    NotRepresentable(f32),
}

/// Round per the spec's tie rule (no saturation, no clamping).
#[inline(always)]
pub fn round(v: f32, rounding: Rounding) -> f32 {
    match rounding {
        Rounding::HalfToEven => v.round_ties_even(),
        Rounding::HalfAwayFromZero => v.round(),
    }
}

/// Scale and zero point for a group with the given statistics.
///
/// # Errors
/// [`ScaleIssue::NotRepresentable`] when the scale overflows its storage dtype or the stats are
/// not finite.
pub fn group_params(stats: RangeStats, spec: &QuantSpec) -> Result<GroupParams, ScaleIssue> {
    let lo = stats.min.min(0.0);
    let hi = stats.max.max(0.0);
    let d = spec.divisor();
    let zero_range = hi == lo;
    let amax = (-lo).max(hi);
    let mut s_exact = match spec.mapping {
        Mapping::Symmetric => amax / d,
        Mapping::Asymmetric => (hi - lo) / d,
    };
    if spec.zero_range == ZeroRange::ClampToEps {
        s_exact = s_exact.max(spec.eps);
    }
    if !s_exact.is_finite() {
        return Err(ScaleIssue::NotRepresentable(s_exact));
    }
    if spec.zero_range == ZeroRange::ZeroScale && zero_range {
        let zero_point = match spec.mapping {
            Mapping::Symmetric => spec.symmetric_zero_point(),
            Mapping::Asymmetric => spec.range.qmin,
        };
        return Ok(GroupParams { scale: 0.0, zero_point, inv: 0.0 });
    }
    let mut scale = spec.scale_dtype.round(s_exact);
    if !scale.is_finite() {
        return Err(ScaleIssue::NotRepresentable(scale));
    }
    if scale == 0.0 {
        scale = spec.scale_dtype.smallest_positive();
    }
    let zero_point = match spec.mapping {
        Mapping::Symmetric => spec.symmetric_zero_point(),
        Mapping::Asymmetric => {
            let z = spec.range.qmin as f32 - round(lo / scale, spec.rounding);
            (z as i32).clamp(spec.range.qmin, spec.range.qmax)
        }
    };
    let inv = match spec.scale_apply {
        ScaleApply::MulReciprocal | ScaleApply::Divide => 1.0 / scale,
        ScaleApply::MulReciprocalUnrounded => 1.0 / s_exact,
        ScaleApply::MulRatio => {
            if amax > 0.0 {
                d / amax
            } else {
                1.0 / scale
            }
        }
    };
    Ok(GroupParams { scale, zero_point, inv })
}

/// Quantize one value: the reference definition every backend must match bit for bit.
///
/// `v = x * inv` (or `x / scale` for [`ScaleApply::Divide`]), rounded per `spec.rounding`,
/// saturating-cast to `i32` (NaN → 0), plus the zero point, clamped to `qmin..=qmax`. A group
/// with `scale == 0` maps every value to its zero point.
#[inline]
pub fn quantize_value(x: f32, p: GroupParams, spec: &QuantSpec) -> i32 {
    if p.scale == 0.0 {
        return p.zero_point;
    }
    let v = match spec.scale_apply {
        ScaleApply::Divide => x / p.scale,
        _ => x * p.inv,
    };
    let r = round(v, spec.rounding) as i32; // `as` saturates and maps NaN to 0
    (i64::from(r) + i64::from(p.zero_point))
        .clamp(i64::from(spec.range.qmin), i64::from(spec.range.qmax)) as i32
}

/// Dequantize one code: `((q − zero_point) as f32) * scale`.
#[inline(always)]
pub fn dequantize_value(q: i32, p: GroupParams) -> f32 {
    (q - p.zero_point) as f32 * p.scale
}

/// Fast slice version of [`quantize_value`] for one group, writing codes through `store`.
///
/// Produces exactly the codes of [`quantize_value`] for every input, including NaN and ±inf.
#[inline]
pub(crate) fn quantize_run<T: Copy>(
    src: &[f32],
    p: GroupParams,
    spec: &QuantSpec,
    dst: &mut [T],
    store: impl Fn(i32) -> T,
) {
    let (qmin, qmax, zp) = (spec.range.qmin, spec.range.qmax, p.zero_point);
    if p.scale == 0.0 {
        let z = store(zp);
        dst.iter_mut().for_each(|d| *d = z);
        return;
    }
    // |v| is clamped to 1024 before rounding: every code is within 512 of the zero point, so the
    // clamp never changes a result, and it keeps the integer conversion exact and branch-free.
    // NaN survives the clamp and becomes 0 through `as i32`, as in `quantize_value`.
    const LIM: f32 = 1024.0;
    // 1.5 · 2^23: adding and subtracting it rounds |v| < 2^22 to an integer, ties to even.
    const MAGIC: f32 = 12_582_912.0;
    let inv = p.inv;
    let scale = p.scale;
    let divide = spec.scale_apply == ScaleApply::Divide;
    macro_rules! body {
        ($v:expr, $round:expr) => {
            for (d, &x) in dst.iter_mut().zip(src) {
                let v: f32 = $v(x);
                let v = v.clamp(-LIM, LIM);
                let r: i32 = $round(v);
                *d = store((r + zp).clamp(qmin, qmax));
            }
        };
    }
    let rne = |v: f32| ((v + MAGIC) - MAGIC) as i32;
    let away = |v: f32| {
        let t = v as i32;
        let f = v - t as f32;
        t + i32::from(f >= 0.5) - i32::from(f <= -0.5)
    };
    match (divide, spec.rounding) {
        (false, Rounding::HalfToEven) => body!(|x: f32| x * inv, rne),
        (false, Rounding::HalfAwayFromZero) => body!(|x: f32| x * inv, away),
        (true, Rounding::HalfToEven) => body!(|x: f32| x / scale, rne),
        (true, Rounding::HalfAwayFromZero) => body!(|x: f32| x / scale, away),
    }
}

/// [`quantize_value`] over a row whose element `i` belongs to group `i` (per-channel on the last
/// axis): `params[i]` applies to `src[i]`. Same results as `quantize_value`, element for element.
#[inline]
pub(crate) fn quantize_row_varying<T: Copy>(
    src: &[f32],
    params: &[GroupParams],
    spec: &QuantSpec,
    dst: &mut [T],
    store: impl Fn(i32) -> T,
) {
    if spec.scale_apply == ScaleApply::Divide && params.iter().any(|p| p.scale == 0.0) {
        for ((d, &x), p) in dst.iter_mut().zip(src).zip(params) {
            *d = store(quantize_value(x, *p, spec));
        }
        return;
    }
    const LIM: f32 = 1024.0;
    const MAGIC: f32 = 12_582_912.0;
    let (qmin, qmax) = (spec.range.qmin, spec.range.qmax);
    let divide = spec.scale_apply == ScaleApply::Divide;
    for ((d, &x), p) in dst.iter_mut().zip(src).zip(params) {
        // scale == 0 has inv == 0: x · 0 = 0 (NaN for ±inf, which `as i32` maps to 0), so the
        // code is the zero point, as in `quantize_value`.
        let v = if divide { x / p.scale } else { x * p.inv };
        let v = v.clamp(-LIM, LIM);
        let r = match spec.rounding {
            Rounding::HalfToEven => ((v + MAGIC) - MAGIC) as i32,
            Rounding::HalfAwayFromZero => {
                let t = v as i32;
                let f = v - t as f32;
                t + i32::from(f >= 0.5) - i32::from(f <= -0.5)
            }
        };
        *d = store((r + p.zero_point).clamp(qmin, qmax));
    }
}

/// Min, max and first non-finite position of a run, in one pass.
#[inline]
pub(crate) fn run_stats(src: &[f32], policy: NonFinite) -> (RangeStats, Option<usize>) {
    const L: usize = 8;
    let mut mn = [f32::INFINITY; L];
    let mut mx = [f32::NEG_INFINITY; L];
    let mut bad = [false; L];
    let chunks = src.chunks_exact(L);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..L {
            let x = c[i];
            mn[i] = if x < mn[i] { x } else { mn[i] };
            mx[i] = if x > mx[i] { x } else { mx[i] };
            bad[i] |= !x.is_finite();
        }
    }
    let mut any_bad = bad.iter().any(|&b| b);
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for i in 0..L {
        lo = lo.min(mn[i]);
        hi = hi.max(mx[i]);
    }
    for &x in rest {
        lo = lo.min(x);
        hi = hi.max(x);
        any_bad |= !x.is_finite();
    }
    if !any_bad {
        return (RangeStats::finish(lo, hi), None);
    }
    let first = src.iter().position(|x| !x.is_finite());
    match policy {
        NonFinite::Reject => (RangeStats::finish(lo, hi), first),
        NonFinite::Saturate => (RangeStats::of(src), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{IntRange, QuantSpec};

    fn run_codes(xs: &[f32], p: GroupParams, spec: &QuantSpec) -> Vec<i32> {
        let mut out = vec![0i32; xs.len()];
        quantize_run(xs, p, spec, &mut out, |q| q);
        out
    }

    #[test]
    fn ties_follow_the_rounding_rule() {
        let spec = QuantSpec::int8_weight();
        let p = GroupParams { scale: 1.0, zero_point: 0, inv: 1.0 };
        let xs = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, -126.5, 127.5, -127.5];
        let even: Vec<i32> = xs.iter().map(|&x| quantize_value(x, p, &spec)).collect();
        assert_eq!(even, [0, 2, 2, 0, -2, -2, 126, -126, 127, -127]);
        assert_eq!(run_codes(&xs, p, &spec), even);
        let ggml = QuantSpec { rounding: Rounding::HalfAwayFromZero, ..spec };
        let away: Vec<i32> = xs.iter().map(|&x| quantize_value(x, p, &ggml)).collect();
        assert_eq!(away, [1, 2, 3, -1, -2, -3, 127, -127, 127, -127]);
        assert_eq!(run_codes(&xs, p, &ggml), away);
    }

    #[test]
    fn non_finite_values_saturate_or_map_to_zero_point() {
        let spec = QuantSpec { range: IntRange::U8, ..QuantSpec::uint8_asymmetric() };
        let p = GroupParams { scale: 0.5, zero_point: 100, inv: 2.0 };
        let xs = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30, 0.0];
        let want = [100, 255, 0, 255, 0, 100];
        let got: Vec<i32> = xs.iter().map(|&x| quantize_value(x, p, &spec)).collect();
        assert_eq!(got, want);
        assert_eq!(run_codes(&xs, p, &spec), want);
    }

    #[test]
    fn zero_scale_maps_everything_to_the_zero_point() {
        let spec = QuantSpec::ggml_q8_0();
        let p = group_params(RangeStats { min: 0.0, max: 0.0 }, &spec).unwrap();
        assert_eq!(p, GroupParams { scale: 0.0, zero_point: 0, inv: 0.0 });
        assert_eq!(quantize_value(0.0, p, &spec), 0);
        assert_eq!(dequantize_value(0, p), 0.0);
    }

    #[test]
    fn all_zero_group_under_eps_gets_finite_scale() {
        for (name, spec) in QuantSpec::presets() {
            let p = group_params(RangeStats { min: 0.0, max: 0.0 }, &spec).unwrap();
            assert!(p.scale.is_finite() && p.inv.is_finite(), "{name}: {p:?}");
            let q = quantize_value(0.0, p, &spec);
            assert_eq!(q, p.zero_point, "{name}");
            assert_eq!(dequantize_value(q, p), 0.0, "{name}");
        }
    }

    #[test]
    fn f16_scale_overflow_is_reported() {
        let spec = QuantSpec::ggml_q8_0();
        let r = group_params(RangeStats { min: -1e8, max: 1e8 }, &spec);
        assert!(matches!(r, Err(ScaleIssue::NotRepresentable(_))));
    }

    #[test]
    fn tiny_f16_scales_stay_subnormal_or_become_the_smallest_subnormal() {
        let spec = QuantSpec { scale_dtype: crate::ScaleDtype::F16, ..QuantSpec::int8_weight() };
        let p = group_params(RangeStats { min: -1e-12, max: 1e-12 }, &spec).unwrap();
        assert_eq!(p.scale, half::f16::from_f32(f32::EPSILON).to_f32());
        let spec = QuantSpec::ggml_q8_0();
        let p = group_params(RangeStats { min: -1e-12, max: 1e-12 }, &spec).unwrap();
        assert_eq!(p.scale, half::f16::from_bits(1).to_f32());
        let p = group_params(RangeStats { min: -1e-3, max: 1e-4 }, &spec).unwrap();
        assert_eq!(p.scale, half::f16::from_f32(1e-3 / 127.0).to_f32());
        assert_eq!(p.inv, 1.0 / (1e-3f32 / 127.0));
    }

    #[test]
    fn run_stats_finds_first_non_finite() {
        let mut xs = vec![1.0f32; 37];
        xs[20] = f32::NAN;
        xs[30] = f32::INFINITY;
        let (_, first) = run_stats(&xs, NonFinite::Reject);
        assert_eq!(first, Some(20));
        let (st, first) = run_stats(&xs, NonFinite::Saturate);
        assert_eq!(first, None);
        assert_eq!(st, RangeStats { min: 1.0, max: 1.0 });
        xs[36] = -3.0;
        xs[20] = 1.0;
        xs[30] = 1.0;
        assert_eq!(run_stats(&xs, NonFinite::Reject), (RangeStats { min: -3.0, max: 1.0 }, None));
    }
}
