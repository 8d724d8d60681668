//! [`Scheme`]: the numeric schemes a study compares, named as the paper names them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A numeric scheme of the model's linear layers.
///
/// | scheme | label | what runs |
/// |---|---|---|
/// | [`Fp32`](Scheme::Fp32) | `fp32` | f32 weights and activations (the paper's baseline) |
/// | [`Fp16`](Scheme::Fp16) | `fp16` | f16 weights and GEMM inputs, f32 accumulation (mixed precision) |
/// | [`Bf16`](Scheme::Bf16) | `bf16` | bf16 weights and GEMM inputs, f32 accumulation |
/// | [`Int8WeightOnly`](Scheme::Int8WeightOnly) | `int8` | INT8 weights (symmetric, per output channel, post-training), float activations: W8A16 |
/// | [`Int8Static`](Scheme::Int8Static) | `int8-w8a8-static` | INT8 weights and INT8 activations with scales calibrated offline |
/// | [`Dynamic`](Scheme::Dynamic) | `dynamic` | INT8 weights; activations quantized to INT8 with a scale computed per token at run time (W8A8 dynamic, PyTorch's `quantize_dynamic` recipe) |
///
/// `eai-model` runs every scheme except [`Int8Static`](Scheme::Int8Static), for which it has
/// no calibrated activation scales; an engine of your own may run it.
///
/// ```
/// use eai_study::Scheme;
/// assert_eq!(Scheme::from_label("fp16"), Some(Scheme::Fp16));
/// assert_eq!(Scheme::from_label("w8a16"), Some(Scheme::Int8WeightOnly));
/// assert_eq!(Scheme::Dynamic.label(), "dynamic");
/// assert_eq!(Scheme::Dynamic.to_string(), "Dynamic (W8A8 per token)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Scheme {
    /// f32 (the baseline).
    Fp32,
    /// f16 mixed precision.
    Fp16,
    /// bf16 mixed precision.
    Bf16,
    /// INT8 weights, float activations (W8A16).
    Int8WeightOnly,
    /// INT8 weights and activations, activation scales calibrated offline (W8A8 static).
    Int8Static,
    /// INT8 weights, activations quantized per token at run time (W8A8 dynamic).
    Dynamic,
}

impl Scheme {
    /// Every scheme, in the order reports list them.
    pub const ALL: [Scheme; 6] = [
        Scheme::Fp32,
        Scheme::Fp16,
        Scheme::Bf16,
        Scheme::Int8WeightOnly,
        Scheme::Int8Static,
        Scheme::Dynamic,
    ];

    /// The short label used in file names, CSV and runs (`fp32`, `fp16`, `bf16`, `int8`,
    /// `int8-w8a8-static`, `dynamic`).
    pub fn label(self) -> &'static str {
        match self {
            Scheme::Fp32 => "fp32",
            Scheme::Fp16 => "fp16",
            Scheme::Bf16 => "bf16",
            Scheme::Int8WeightOnly => "int8",
            Scheme::Int8Static => "int8-w8a8-static",
            Scheme::Dynamic => "dynamic",
        }
    }

    /// Parses a label (case-insensitive). Accepts [`Scheme::label`] and the aliases `f32`,
    /// `f16`, `w8a16`, `int8-w8a16`, `int8-weight-only`, `w8a8-static`, `w8a8`,
    /// `int8-w8a8`, `int8-dynamic`, `dynamic-int8`. `w8a8` means the dynamic scheme, as
    /// `eai-model` runs it.
    pub fn from_label(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "f32" => Scheme::Fp32,
            "fp16" | "f16" | "fp16-mixed" => Scheme::Fp16,
            "bf16" => Scheme::Bf16,
            "int8" | "w8a16" | "int8-w8a16" | "int8-weight-only" => Scheme::Int8WeightOnly,
            "int8-w8a8-static" | "w8a8-static" | "int8-static" => Scheme::Int8Static,
            "dynamic" | "w8a8" | "int8-w8a8" | "int8-dynamic" | "dynamic-int8" => Scheme::Dynamic,
            _ => return None,
        })
    }

    /// The name a report prints (`FP32`, `FP16`, `BF16`, `INT8 (W8A16)`, `INT8 (W8A8 static)`,
    /// `Dynamic (W8A8 per token)`).
    pub fn display_name(self) -> &'static str {
        match self {
            Scheme::Fp32 => "FP32",
            Scheme::Fp16 => "FP16",
            Scheme::Bf16 => "BF16",
            Scheme::Int8WeightOnly => "INT8 (W8A16)",
            Scheme::Int8Static => "INT8 (W8A8 static)",
            Scheme::Dynamic => "Dynamic (W8A8 per token)",
        }
    }

    /// The recommender's view of the scheme: the precision its matrix products run in and
    /// whether it adapts to each input.
    pub fn strategy(self) -> eai_metrics::Strategy {
        use eai_metrics::{Precision, Strategy};
        let mut s = match self {
            Scheme::Fp32 => Strategy::fp32(),
            Scheme::Fp16 => Strategy::fp16_mixed(),
            Scheme::Bf16 => Strategy::bf16(),
            // Weight-only INT8 dequantizes to half precision for the product.
            Scheme::Int8WeightOnly => {
                Strategy { name: String::new(), compute: Precision::Fp16, adaptive: false }
            }
            Scheme::Int8Static => Strategy::int8(),
            Scheme::Dynamic => Strategy::dynamic_int8(),
        };
        s.name = self.display_name().to_string();
        s
    }

    /// The `eai-model` scheme that runs this one, or `None` for [`Scheme::Int8Static`].
    #[cfg(feature = "model")]
    pub fn model_scheme(self) -> Option<eai_model::Scheme> {
        Some(match self {
            Scheme::Fp32 => eai_model::Scheme::Fp32,
            Scheme::Fp16 => eai_model::Scheme::Fp16,
            Scheme::Bf16 => eai_model::Scheme::Bf16,
            Scheme::Int8WeightOnly => eai_model::Scheme::W8A16,
            Scheme::Dynamic => eai_model::Scheme::W8A8,
            Scheme::Int8Static => return None,
        })
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

impl std::str::FromStr for Scheme {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scheme::from_label(s).ok_or_else(|| crate::Error::Config {
            field: "scheme",
            reason: format!(
                "unknown scheme `{s}` (expected one of {})",
                Scheme::ALL.iter().map(|s| s.label()).collect::<Vec<_>>().join(", ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        for s in Scheme::ALL {
            assert_eq!(Scheme::from_label(s.label()), Some(s));
            assert_eq!(s.label().parse::<Scheme>().ok(), Some(s));
            assert_eq!(s.strategy().name, s.display_name());
        }
        assert!("int4".parse::<Scheme>().is_err());
        assert!(Scheme::Dynamic.strategy().adaptive);
        assert!(!Scheme::Int8Static.strategy().adaptive);
    }
}
