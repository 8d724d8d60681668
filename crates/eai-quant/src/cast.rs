//! FP16 / BF16 casts with an explicit policy for values outside the target's range.

use half::{bf16, f16};
use serde::{Deserialize, Serialize};

use crate::error::{QuantError, Result};

/// A 16-bit floating-point target type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HalfType {
    /// IEEE binary16: max 65504, overflows to ±inf at |x| ≥ 65520.
    F16,
    /// bfloat16: f32's exponent range, 8 significant bits.
    Bf16,
}

impl HalfType {
    /// Name as safetensors spells it.
    pub fn name(self) -> &'static str {
        match self {
            HalfType::F16 => "f16",
            HalfType::Bf16 => "bf16",
        }
    }
}

/// What a cast does with values it cannot represent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RangePolicy {
    /// Any NaN, ±inf, or finite value that would round to ±inf is an error naming the tensor and
    /// the first index.
    Error,
    /// Finite values beyond the range and ±inf become ±max; NaN stays NaN (and is counted).
    Saturate,
}

/// What a cast did, counted per category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CastReport {
    /// Elements converted.
    pub n: usize,
    /// Finite inputs that were beyond the range (and ±inf inputs) replaced by ±max.
    pub saturated: usize,
    /// NaN inputs (kept as NaN).
    pub nan: usize,
    /// Non-zero inputs that became ±0 (below half the smallest subnormal).
    pub flushed_to_zero: usize,
}

/// Casts `f32 → f16/bf16`, round to nearest even, with a [`RangePolicy`].
///
/// ```
/// use eai_quant::{cast_f32, HalfType, RangePolicy};
/// let (bits, report) = cast_f32("w", &[1.0, 70000.0], HalfType::F16, RangePolicy::Saturate)?;
/// assert_eq!(half::f16::from_bits(bits[1]).to_f32(), 65504.0);
/// assert_eq!(report.saturated, 1);
/// assert!(cast_f32("w", &[70000.0], HalfType::F16, RangePolicy::Error).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Returns the raw 16-bit patterns (`f16::to_bits` / `bf16::to_bits`), which is what checkpoints
/// store and GPUs consume.
///
/// # Errors
/// Under [`RangePolicy::Error`]: [`QuantError::NonFinite`] for NaN/inf inputs and
/// [`QuantError::Overflow`] for finite values that round to infinity; both name `tensor` and the
/// first offending flat index.
pub fn cast_f32(
    tensor: &str,
    src: &[f32],
    to: HalfType,
    policy: RangePolicy,
) -> Result<(Vec<u16>, CastReport)> {
    let mut out = vec![0u16; src.len()];
    let report = cast_f32_into(tensor, src, to, policy, &mut out)?;
    Ok((out, report))
}

/// As [`cast_f32`], writing into `dst` (same length as `src`).
///
/// # Errors
/// As [`cast_f32`], plus [`QuantError::ShapeMismatch`] when the lengths differ.
pub fn cast_f32_into(
    tensor: &str,
    src: &[f32],
    to: HalfType,
    policy: RangePolicy,
    dst: &mut [u16],
) -> Result<CastReport> {
    if src.len() != dst.len() {
        return Err(QuantError::ShapeMismatch {
            context: format!("cast `{tensor}`"),
            detail: format!("{} inputs, {} outputs", src.len(), dst.len()),
        });
    }
    let conv: fn(f32) -> u16 = match to {
        HalfType::F16 => |x| f16::from_f32(x).to_bits(),
        HalfType::Bf16 => |x| bf16::from_f32(x).to_bits(),
    };
    let max_bits = match to {
        HalfType::F16 => f16::MAX.to_bits(),
        HalfType::Bf16 => bf16::MAX.to_bits(),
    };
    // Bit 15 is the sign in both formats; exponent all ones marks inf/NaN.
    let exp_mask = match to {
        HalfType::F16 => 0x7c00u16,
        HalfType::Bf16 => 0x7f80u16,
    };
    let mut report = CastReport { n: src.len(), ..CastReport::default() };
    for (i, (d, &x)) in dst.iter_mut().zip(src).enumerate() {
        let b = conv(x);
        *d = b;
        if b & 0x7fff == 0 && x != 0.0 && x.is_finite() {
            report.flushed_to_zero += 1;
        }
        if b & exp_mask == exp_mask {
            // inf or NaN in the output
            if x.is_nan() {
                if policy == RangePolicy::Error {
                    return Err(QuantError::NonFinite {
                        tensor: tensor.into(),
                        index: vec![i],
                        flat: i,
                        value: x,
                    });
                }
                report.nan += 1;
            } else {
                if policy == RangePolicy::Error {
                    return Err(if x.is_finite() {
                        QuantError::Overflow {
                            tensor: tensor.into(),
                            flat: i,
                            value: x,
                            target: to.name(),
                        }
                    } else {
                        QuantError::NonFinite {
                            tensor: tensor.into(),
                            index: vec![i],
                            flat: i,
                            value: x,
                        }
                    });
                }
                report.saturated += 1;
                *d = max_bits | (b & 0x8000);
            }
        }
    }
    Ok(report)
}

/// Widen 16-bit patterns of `from` back to `f32` (exact).
pub fn widen_to_f32(bits: &[u16], from: HalfType) -> Vec<f32> {
    match from {
        HalfType::F16 => bits.iter().map(|&b| f16::from_bits(b).to_f32()).collect(),
        HalfType::Bf16 => bits.iter().map(|&b| bf16::from_bits(b).to_f32()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_rounding_and_edges() {
        let xs = [65504.0f32, 65519.0, 65520.0, -1e9, 1e-8, 2.9e-8, 3.0e-8, f32::NAN, 0.0, -0.0];
        let (b, r) = cast_f32("t", &xs, HalfType::F16, RangePolicy::Saturate).unwrap();
        let back = widen_to_f32(&b, HalfType::F16);
        assert_eq!(back[0], 65504.0);
        assert_eq!(back[1], 65504.0); // below the rounding boundary: not an overflow
        assert_eq!(back[2], 65504.0); // rounds to inf, saturated
        assert_eq!(back[3], -65504.0);
        assert_eq!(back[4], 0.0);
        assert_eq!(back[5], 0.0); // below half the smallest subnormal (2^-25 ≈ 2.98e-8)
        assert_eq!(back[6], f16::from_bits(1).to_f32());
        assert!(back[7].is_nan());
        assert_eq!(r, CastReport { n: 10, saturated: 2, nan: 1, flushed_to_zero: 2 });
        assert!(back[9].is_sign_negative());
    }

    #[test]
    fn error_policy_names_the_index() {
        match cast_f32("layer", &[1.0, 2.0, 1e6], HalfType::F16, RangePolicy::Error) {
            Err(QuantError::Overflow { tensor, flat: 2, target: "f16", .. }) => {
                assert_eq!(tensor, "layer")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            cast_f32("l", &[f32::INFINITY], HalfType::Bf16, RangePolicy::Error),
            Err(QuantError::NonFinite { flat: 0, .. })
        ));
        assert!(cast_f32("l", &[1e38], HalfType::Bf16, RangePolicy::Error).is_ok());
        let (b, r) = cast_f32("l", &[f32::MAX], HalfType::Bf16, RangePolicy::Saturate).unwrap();
        assert_eq!((bf16::from_bits(b[0]), r.saturated), (bf16::MAX, 1));
    }

    #[test]
    fn bf16_ties_to_even() {
        // 1 + 2^-8 is halfway between bf16 1.0 and 1 + 2^-7: ties to even (1.0)
        let (b, _) = cast_f32(
            "t",
            &[1.0 + 2f32.powi(-8), 1.0 + 3.0 * 2f32.powi(-8)],
            HalfType::Bf16,
            RangePolicy::Error,
        )
        .unwrap();
        let back = widen_to_f32(&b, HalfType::Bf16);
        assert_eq!(back, vec![1.0, 1.0 + 2.0 * 2f32.powi(-7)]);
    }
}
