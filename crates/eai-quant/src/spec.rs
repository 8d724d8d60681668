//! [`QuantSpec`]: every choice a quantization scheme makes, as an explicit field, plus presets.

use serde::{Deserialize, Serialize};

use crate::error::{QuantError, Result};

/// The integer range codes are clamped to (inclusive on both ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IntRange {
    /// Smallest code.
    pub qmin: i32,
    /// Largest code.
    pub qmax: i32,
}

impl IntRange {
    /// `−127..=127`: signed, negation-closed ("restricted" / narrow range). bitsandbytes,
    /// GGML Q8_0, vLLM activations, the eai default.
    pub const I8_NARROW: IntRange = IntRange { qmin: -127, qmax: 127 };
    /// `−128..=127`: the full signed byte. PyTorch `qint8`, compressed-tensors.
    pub const I8: IntRange = IntRange { qmin: -128, qmax: 127 };
    /// `0..=255`: the unsigned byte. PyTorch `quint8`, the paper's worked example.
    pub const U8: IntRange = IntRange { qmin: 0, qmax: 255 };

    /// Whether codes are stored as `i8` (`true`) or `u8` (`false`).
    pub fn is_signed(self) -> bool {
        self.qmin < 0
    }

    /// Number of steps between the ends, `qmax − qmin`.
    pub fn levels(self) -> i32 {
        self.qmax - self.qmin
    }
}

/// Whether the zero point is fixed (symmetric) or fitted to the data (asymmetric / affine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mapping {
    /// Zero point fixed: 0 for signed ranges, the midpoint `(qmin + qmax + 1) / 2` (128) for `U8`.
    Symmetric,
    /// Zero point `clamp(round(qmin − lo / scale), qmin, qmax)` with `lo = min(min, 0)`.
    Asymmetric,
}

/// How the scale of a group is derived from its statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScaleRule {
    /// Symmetric: `scale = amax / (qmax − zero_point)`, i.e. `amax / 127` for signed ranges.
    /// bitsandbytes, GGML, vLLM runtime, eai default.
    AbsMaxOverQmax,
    /// Symmetric: `scale = amax / ((qmax − qmin) / 2)`, i.e. `amax / 127.5`. PyTorch observers,
    /// compressed-tensors calibration.
    AbsMaxOverHalfRange,
    /// Asymmetric: `scale = (hi − lo) / (qmax − qmin)` with `lo = min(min, 0)`, `hi = max(max, 0)`.
    RangeOverLevels,
}

/// How a value that lies exactly between two integers is rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Rounding {
    /// Round half to even (`f32::round_ties_even`, C `nearbyint`, CUDA `__float2int_rn`).
    HalfToEven,
    /// Round half away from zero (`f32::round`, C `roundf`): GGML's convention.
    HalfAwayFromZero,
}

/// Which elements share one scale (and zero point).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Granularity {
    /// One scale for the whole tensor. Scales shape `[1]`.
    PerTensor,
    /// One scale per index along `axis` (reducing over all other axes). Scales shape
    /// `[shape[axis]]`. For an `nn.Linear` weight `[out, in]`, axis 0 is per output channel.
    PerChannel {
        /// The channel axis.
        axis: usize,
    },
    /// One scale per `size` consecutive elements along the last axis, which `size` must divide.
    /// Scales shape `[rows, last / size]` where `rows` is the product of the leading axes.
    PerGroup {
        /// Elements per group.
        size: usize,
    },
    /// One scale per row: per token for activations `[tokens, features]`, per output row for
    /// weights (bitsandbytes "vector-wise"). Scales shape `[rows]`.
    PerToken,
}

/// The floating-point type scales are stored in. Scales are rounded (to nearest, ties to even)
/// to this type before use, so stored `(codes, scales)` pairs are self-consistent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScaleDtype {
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    Bf16,
}

impl ScaleDtype {
    /// Name as safetensors spells it.
    pub fn name(self) -> &'static str {
        match self {
            ScaleDtype::F32 => "f32",
            ScaleDtype::F16 => "f16",
            ScaleDtype::Bf16 => "bf16",
        }
    }

    /// Round an `f32` to the nearest value of this type (ties to even), returned widened to `f32`.
    pub fn round(self, x: f32) -> f32 {
        match self {
            ScaleDtype::F32 => x,
            ScaleDtype::F16 => half::f16::from_f32(x).to_f32(),
            ScaleDtype::Bf16 => half::bf16::from_f32(x).to_f32(),
        }
    }

    /// Smallest positive (subnormal) value of this type.
    pub fn smallest_positive(self) -> f32 {
        match self {
            ScaleDtype::F32 => f32::from_bits(1),
            ScaleDtype::F16 => half::f16::from_bits(1).to_f32(),
            ScaleDtype::Bf16 => half::bf16::from_bits(1).to_f32(),
        }
    }
}

/// How the per-group multiplier that maps `x` into code space is formed. Every variant is one
/// IEEE f32 operation per element; see `docs/quant.md` for the exact contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScaleApply {
    /// `v = x * inv`, `inv = 1.0 / scale` with `scale` the stored (dtype-rounded) scale.
    /// PyTorch CPU (`quantize_val`), the eai default.
    MulReciprocal,
    /// `v = x * inv`, `inv = 1.0 / scale_exact` with the f32 scale *before* rounding it to the
    /// storage dtype. GGML Q8_0 (`id = 1/d` with `d` f32, stored as f16).
    MulReciprocalUnrounded,
    /// `v = x * inv`, `inv = divisor / amax`: bitsandbytes (`127 / absmax`) and vLLM's dynamic
    /// per-token kernel. Symmetric specs only.
    MulRatio,
    /// `v = x / scale` (IEEE division by the stored scale): compressed-tensors' `x / scale` for f32
    /// weights, PyTorch CUDA.
    Divide,
}

/// What to do when a group's range is zero (all-zero group), or its scale would fall below `eps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ZeroRange {
    /// `scale = max(scale, eps)` for every group (PyTorch observers): an all-zero group gets
    /// `scale = eps` and codes equal to the zero point.
    ClampToEps,
    /// A group whose range is exactly zero gets `scale = 0` and multiplier 0: codes equal the zero
    /// point and dequantize to exactly 0 (GGML `d = 0`, vLLM). Other groups are untouched.
    ZeroScale,
}

/// What to do with NaN and ±infinity in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NonFinite {
    /// Return [`QuantError::NonFinite`] naming the tensor and the first offending index.
    Reject,
    /// Statistics over finite values only; NaN → the zero point, ±inf → `qmax` / `qmin`.
    Saturate,
}

/// A complete, explicit description of an integer quantization scheme.
///
/// The quantized value of `x` in a group with scale `s` and zero point `z` is
/// `clamp(round(x · (1/s)) + z, qmin, qmax)` (the exact operation order is fixed by
/// [`ScaleApply`] and documented in `docs/quant.md`); the dequantized value is `(q − z) · s`.
///
/// Build one from a preset and adjust fields, then [`validate`](QuantSpec::validate) it (every
/// quantizer validates again).
///
/// ```
/// use eai_quant::{Granularity, QuantSpec};
/// let spec = QuantSpec { granularity: Granularity::PerGroup { size: 128 }, ..QuantSpec::int8_weight() };
/// spec.validate()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuantSpec {
    /// Integer range of the codes.
    pub range: IntRange,
    /// Symmetric (fixed zero point) or asymmetric.
    pub mapping: Mapping,
    /// How the scale is derived from the group's statistics.
    pub scale_rule: ScaleRule,
    /// How `x` is brought into code space.
    pub scale_apply: ScaleApply,
    /// Tie-breaking when rounding to an integer.
    pub rounding: Rounding,
    /// Which elements share a scale.
    pub granularity: Granularity,
    /// Storage type of the scales.
    pub scale_dtype: ScaleDtype,
    /// Zero-range handling.
    pub zero_range: ZeroRange,
    /// Lower bound on the scale used by [`ZeroRange::ClampToEps`].
    pub eps: f32,
    /// NaN / infinity handling.
    pub non_finite: NonFinite,
}

impl Default for QuantSpec {
    fn default() -> Self {
        QuantSpec::int8_weight()
    }
}

impl QuantSpec {
    /// eai's default for weights: symmetric `−127..=127`, `scale = amax / 127` per output channel
    /// (axis 0), round half to even, f32 scales, `scale ≥ f32::EPSILON`, NaN/Inf rejected.
    pub fn int8_weight() -> Self {
        QuantSpec {
            range: IntRange::I8_NARROW,
            mapping: Mapping::Symmetric,
            scale_rule: ScaleRule::AbsMaxOverQmax,
            scale_apply: ScaleApply::MulReciprocal,
            rounding: Rounding::HalfToEven,
            granularity: Granularity::PerChannel { axis: 0 },
            scale_dtype: ScaleDtype::F32,
            zero_range: ZeroRange::ClampToEps,
            eps: f32::EPSILON,
            non_finite: NonFinite::Reject,
        }
    }

    /// eai's default for activations quantized at run time: like [`int8_weight`](Self::int8_weight)
    /// but one scale per token (row).
    pub fn int8_activation_per_token() -> Self {
        QuantSpec { granularity: Granularity::PerToken, ..QuantSpec::int8_weight() }
    }

    /// eai's asymmetric INT8: `0..=255` with a fitted zero point, per output channel.
    pub fn uint8_asymmetric() -> Self {
        QuantSpec {
            range: IntRange::U8,
            mapping: Mapping::Asymmetric,
            scale_rule: ScaleRule::RangeOverLevels,
            ..QuantSpec::int8_weight()
        }
    }

    /// PyTorch `torch.quantize_per_tensor` with the scale and zero point a `MinMaxObserver`
    /// computes (`qscheme = per_tensor_symmetric` or `per_tensor_affine`). `range` is
    /// [`IntRange::I8`] for `qint8` or [`IntRange::U8`] for `quint8`.
    pub fn torch_per_tensor(range: IntRange, mapping: Mapping) -> Self {
        QuantSpec {
            range,
            mapping,
            scale_rule: match mapping {
                Mapping::Symmetric => ScaleRule::AbsMaxOverHalfRange,
                Mapping::Asymmetric => ScaleRule::RangeOverLevels,
            },
            scale_apply: ScaleApply::MulReciprocal,
            rounding: Rounding::HalfToEven,
            granularity: Granularity::PerTensor,
            scale_dtype: ScaleDtype::F32,
            zero_range: ZeroRange::ClampToEps,
            eps: f32::EPSILON,
            non_finite: NonFinite::Reject,
        }
    }

    /// PyTorch `torch.quantize_per_channel` with a `PerChannelMinMaxObserver(ch_axis = axis)`.
    pub fn torch_per_channel(range: IntRange, mapping: Mapping, axis: usize) -> Self {
        QuantSpec {
            granularity: Granularity::PerChannel { axis },
            ..QuantSpec::torch_per_tensor(range, mapping)
        }
    }

    /// compressed-tensors / vLLM `W8A8` int8 weights (`strategy: channel, symmetric`):
    /// `−128..=127`, `scale = amax / 127.5`, `q = round(x / scale)`, f32 weights.
    pub fn compressed_tensors_int8_weight() -> Self {
        QuantSpec {
            range: IntRange::I8,
            mapping: Mapping::Symmetric,
            scale_rule: ScaleRule::AbsMaxOverHalfRange,
            scale_apply: ScaleApply::Divide,
            rounding: Rounding::HalfToEven,
            granularity: Granularity::PerChannel { axis: 0 },
            scale_dtype: ScaleDtype::F32,
            zero_range: ZeroRange::ClampToEps,
            eps: f32::EPSILON,
            non_finite: NonFinite::Reject,
        }
    }

    /// vLLM's dynamic per-token int8 activation quantization (`input_activations: strategy
    /// token, dynamic`): `scale = amax / 127`, `q = round(x · (127 / amax))` clamped to
    /// `−128..=127`; an all-zero token gets scale 0 and codes 0.
    pub fn vllm_int8_activation_per_token() -> Self {
        QuantSpec {
            range: IntRange::I8,
            mapping: Mapping::Symmetric,
            scale_rule: ScaleRule::AbsMaxOverQmax,
            scale_apply: ScaleApply::MulRatio,
            rounding: Rounding::HalfToEven,
            granularity: Granularity::PerToken,
            scale_dtype: ScaleDtype::F32,
            zero_range: ZeroRange::ZeroScale,
            eps: 0.0,
            non_finite: NonFinite::Reject,
        }
    }

    /// bitsandbytes LLM.int8() vector-wise absmax (`int8_vectorwise_quant`, no outlier
    /// threshold): one scale per row, `q = round(x · (127 / absmax))`, `−127..=127`. bitsandbytes
    /// stores `SCB = absmax`; here `scale = absmax / 127`. An all-zero row gets codes 0 and scale 0
    /// (bitsandbytes itself produces NaN there).
    pub fn bitsandbytes_int8() -> Self {
        QuantSpec {
            range: IntRange::I8_NARROW,
            mapping: Mapping::Symmetric,
            scale_rule: ScaleRule::AbsMaxOverQmax,
            scale_apply: ScaleApply::MulRatio,
            rounding: Rounding::HalfToEven,
            granularity: Granularity::PerToken,
            scale_dtype: ScaleDtype::F32,
            zero_range: ZeroRange::ZeroScale,
            eps: 0.0,
            non_finite: NonFinite::Reject,
        }
    }

    /// GGML `Q8_0` (`quantize_row_q8_0_ref`): blocks of 32 along the row, `d = amax / 127` in f32,
    /// `q = roundf(x · (1/d))` (ties away from zero), `d` stored as f16.
    pub fn ggml_q8_0() -> Self {
        QuantSpec {
            range: IntRange::I8_NARROW,
            mapping: Mapping::Symmetric,
            scale_rule: ScaleRule::AbsMaxOverQmax,
            scale_apply: ScaleApply::MulReciprocalUnrounded,
            rounding: Rounding::HalfAwayFromZero,
            granularity: Granularity::PerGroup { size: 32 },
            scale_dtype: ScaleDtype::F16,
            zero_range: ZeroRange::ZeroScale,
            eps: 0.0,
            non_finite: NonFinite::Reject,
        }
    }

    /// The named presets, for tables and examples: `(name, spec)`.
    pub fn presets() -> Vec<(&'static str, QuantSpec)> {
        vec![
            ("eai int8 sym per-channel", QuantSpec::int8_weight()),
            ("eai uint8 asym per-channel", QuantSpec::uint8_asymmetric()),
            (
                "eai int8 sym group-128",
                QuantSpec {
                    granularity: Granularity::PerGroup { size: 128 },
                    ..QuantSpec::int8_weight()
                },
            ),
            (
                "torch qint8 per-tensor sym",
                QuantSpec::torch_per_tensor(IntRange::I8, Mapping::Symmetric),
            ),
            (
                "torch quint8 per-tensor affine",
                QuantSpec::torch_per_tensor(IntRange::U8, Mapping::Asymmetric),
            ),
            (
                "torch qint8 per-channel sym",
                QuantSpec::torch_per_channel(IntRange::I8, Mapping::Symmetric, 0),
            ),
            ("compressed-tensors int8", QuantSpec::compressed_tensors_int8_weight()),
            ("bitsandbytes int8 vector-wise", QuantSpec::bitsandbytes_int8()),
            ("ggml q8_0", QuantSpec::ggml_q8_0()),
        ]
    }

    /// The zero point a symmetric spec uses: 0 for signed ranges, `(qmin + qmax + 1) / 2` (128)
    /// for unsigned ones.
    pub fn symmetric_zero_point(&self) -> i32 {
        if self.range.is_signed() { 0 } else { (self.range.qmin + self.range.qmax + 1) / 2 }
    }

    /// The divisor `D` of the scale rule: `scale = amax / D` (symmetric) or `(hi − lo) / D`.
    pub fn divisor(&self) -> f32 {
        match self.scale_rule {
            ScaleRule::AbsMaxOverQmax => (self.range.qmax - self.symmetric_zero_point()) as f32,
            ScaleRule::AbsMaxOverHalfRange => self.range.levels() as f32 / 2.0,
            ScaleRule::RangeOverLevels => self.range.levels() as f32,
        }
    }

    /// Check that the fields are consistent.
    ///
    /// # Errors
    /// [`QuantError::InvalidSpec`] naming the contradiction: a range that does not contain 0 or
    /// has more than 256 levels, a scale rule that does not fit the mapping, [`ScaleApply::MulRatio`]
    /// with an asymmetric mapping, a group size of 0, or a negative / non-finite `eps`.
    pub fn validate(&self) -> Result<()> {
        let r = self.range;
        if !(r.qmin <= 0 && 0 <= r.qmax && r.qmin < r.qmax) {
            return Err(QuantError::spec(format!(
                "range {}..={} must contain 0 and more than one level",
                r.qmin, r.qmax
            )));
        }
        if r.levels() > 255 || r.qmin < -128 || r.qmax > 255 {
            return Err(QuantError::spec(format!(
                "range {}..={} does not fit in 8 bits (i8 or u8)",
                r.qmin, r.qmax
            )));
        }
        if !r.is_signed() && r.qmin != 0 {
            return Err(QuantError::spec("unsigned ranges must start at 0"));
        }
        if r.qmin < 0 && r.qmax > 127 {
            return Err(QuantError::spec("signed ranges must lie within -128..=127"));
        }
        match (self.mapping, self.scale_rule) {
            (Mapping::Symmetric, ScaleRule::RangeOverLevels) => {
                return Err(QuantError::spec(
                    "a symmetric mapping needs an absmax scale rule, not RangeOverLevels",
                ));
            }
            (Mapping::Asymmetric, ScaleRule::AbsMaxOverQmax | ScaleRule::AbsMaxOverHalfRange) => {
                return Err(QuantError::spec(
                    "an asymmetric mapping needs the RangeOverLevels scale rule",
                ));
            }
            _ => {}
        }
        if self.mapping == Mapping::Asymmetric && self.scale_apply == ScaleApply::MulRatio {
            return Err(QuantError::spec(
                "ScaleApply::MulRatio is defined for symmetric specs only",
            ));
        }
        if self.divisor() <= 0.0 {
            return Err(QuantError::spec("the scale divisor must be positive"));
        }
        if let Granularity::PerGroup { size: 0 } = self.granularity {
            return Err(QuantError::spec("group size must be at least 1"));
        }
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return Err(QuantError::spec(format!(
                "eps must be finite and non-negative, got {}",
                self.eps
            )));
        }
        if self.zero_range == ZeroRange::ClampToEps && self.eps == 0.0 {
            return Err(QuantError::spec(
                "ZeroRange::ClampToEps needs eps > 0 (use ZeroRange::ZeroScale for eps = 0)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate() {
        for (name, spec) in QuantSpec::presets() {
            spec.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        QuantSpec::vllm_int8_activation_per_token().validate().unwrap();
        QuantSpec::int8_activation_per_token().validate().unwrap();
    }

    #[test]
    fn invalid_specs_are_rejected() {
        let bad = [
            QuantSpec { range: IntRange { qmin: 1, qmax: 255 }, ..QuantSpec::int8_weight() },
            QuantSpec { range: IntRange { qmin: -200, qmax: 55 }, ..QuantSpec::int8_weight() },
            QuantSpec { scale_rule: ScaleRule::RangeOverLevels, ..QuantSpec::int8_weight() },
            QuantSpec { scale_rule: ScaleRule::AbsMaxOverQmax, ..QuantSpec::uint8_asymmetric() },
            QuantSpec { scale_apply: ScaleApply::MulRatio, ..QuantSpec::uint8_asymmetric() },
            QuantSpec {
                granularity: Granularity::PerGroup { size: 0 },
                ..QuantSpec::int8_weight()
            },
            QuantSpec { eps: f32::NAN, ..QuantSpec::int8_weight() },
            QuantSpec { eps: 0.0, ..QuantSpec::int8_weight() },
        ];
        for spec in bad {
            assert!(matches!(spec.validate(), Err(QuantError::InvalidSpec { .. })), "{spec:?}");
        }
    }

    #[test]
    fn divisors() {
        assert_eq!(QuantSpec::int8_weight().divisor(), 127.0);
        assert_eq!(QuantSpec::torch_per_tensor(IntRange::I8, Mapping::Symmetric).divisor(), 127.5);
        assert_eq!(QuantSpec::torch_per_tensor(IntRange::U8, Mapping::Symmetric).divisor(), 127.5);
        assert_eq!(QuantSpec::uint8_asymmetric().divisor(), 255.0);
        let u8sym = QuantSpec {
            range: IntRange::U8,
            scale_rule: ScaleRule::AbsMaxOverQmax,
            ..QuantSpec::int8_weight()
        };
        assert_eq!(u8sym.symmetric_zero_point(), 128);
        assert_eq!(u8sym.divisor(), 127.0);
    }
}
