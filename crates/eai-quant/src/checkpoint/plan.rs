//! Which tensor gets what: the quantization plan and the mixed-precision policy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cast::{HalfType, RangePolicy};
use crate::spec::QuantSpec;

/// What a tensor is, judged from its name and shape (Hugging Face naming conventions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TensorClass {
    /// The weight of a linear layer: 2-D, name ends in `.weight`, not an embedding, norm or head.
    Linear,
    /// Token / position / type embeddings (`embed`, `wte`, `wpe`, `embeddings.`).
    Embedding,
    /// Normalisation weights and biases (`norm`, `LayerNorm`, `ln_`).
    Norm,
    /// A bias vector (`.bias`, 1-D).
    Bias,
    /// The output head (`lm_head`), often tied to the embedding.
    LmHead,
    /// Anything else (buffers such as `position_ids`, scalars, convolution kernels).
    Other,
}

impl TensorClass {
    /// Classify a tensor by its name and shape.
    pub fn of(name: &str, shape: &[usize]) -> TensorClass {
        let lower = name.to_ascii_lowercase();
        let last = lower.rsplit('.').next().unwrap_or("");
        if lower.contains("norm") || lower.contains(".ln_") || lower.starts_with("ln_") {
            return TensorClass::Norm;
        }
        if lower.starts_with("lm_head") || lower.contains(".lm_head") {
            return TensorClass::LmHead;
        }
        if lower.contains("embed") || lower.contains(".wte") || lower.contains(".wpe") {
            return TensorClass::Embedding;
        }
        if last == "bias" {
            return TensorClass::Bias;
        }
        if last == "weight" && shape.len() == 2 {
            return TensorClass::Linear;
        }
        TensorClass::Other
    }
}

/// What happens to activations of quantized linear layers, recorded in `quantization_config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ActivationScheme {
    /// Weight-only quantization (W8A16): activations stay in floating point.
    None,
    /// Activations quantized per token at run time (W8A8 dynamic, symmetric int8).
    DynamicPerToken,
    /// Static per-tensor activation scales from calibration, keyed by module name (the tensor
    /// name without `.weight`); written as `<module>.input_scale` (`[1]`).
    Static(BTreeMap<String, f32>),
}

/// The mixed-precision policy for FP16/BF16 copies: which tensors are cast, which stay FP32.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixedPrecision {
    /// The 16-bit type to cast to.
    pub dtype: HalfType,
    /// Classes kept in their original precision (default: norms).
    pub keep_classes: Vec<TensorClass>,
    /// Tensor names (exact) or module prefixes kept in their original precision.
    pub keep_names: Vec<String>,
    /// What to do with values outside the 16-bit range.
    pub range: RangePolicy,
}

impl MixedPrecision {
    /// Cast everything to `dtype` except normalisation parameters; out-of-range values are an error.
    pub fn new(dtype: HalfType) -> Self {
        MixedPrecision {
            dtype,
            keep_classes: vec![TensorClass::Norm],
            keep_names: Vec::new(),
            range: RangePolicy::Error,
        }
    }

    /// Whether `name` is cast (`true`) or kept in its original precision.
    pub fn casts(&self, name: &str, shape: &[usize]) -> bool {
        !(self.keep_classes.contains(&TensorClass::of(name, shape))
            || self.keep_names.iter().any(|k| name == k || name.starts_with(&format!("{k}."))))
    }
}

/// The quantization plan: which tensors are quantized and how, what happens to the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantPlan {
    /// Scheme for linear weights (granularity per channel on axis 0, per tensor, per group or per
    /// token; per token = per output row).
    pub weight: QuantSpec,
    /// Activation scheme recorded for loaders (and static scales written).
    pub activations: ActivationScheme,
    /// Also quantize embeddings (default `false`).
    pub quantize_embeddings: bool,
    /// Also quantize `lm_head` (default `false`).
    pub quantize_lm_head: bool,
    /// Modules never quantized (exact module names or prefixes, e.g. `"pooler"`).
    pub ignore: Vec<String>,
    /// Cast the tensors that are not quantized (`None`: copy them unchanged).
    pub rest: Option<MixedPrecision>,
}

impl QuantPlan {
    /// Quantize every linear weight with `weight`; dynamic per-token activations; embeddings,
    /// norms, biases and `lm_head` copied unchanged.
    pub fn new(weight: QuantSpec) -> Self {
        QuantPlan {
            weight,
            activations: ActivationScheme::DynamicPerToken,
            quantize_embeddings: false,
            quantize_lm_head: false,
            ignore: Vec::new(),
            rest: None,
        }
    }

    /// Whether the tensor `name` of `shape` is quantized under this plan.
    pub fn quantizes(&self, name: &str, shape: &[usize]) -> bool {
        let module = name.strip_suffix(".weight").unwrap_or(name);
        if self.ignore.iter().any(|k| module == k || module.starts_with(&format!("{k}."))) {
            return false;
        }
        match TensorClass::of(name, shape) {
            TensorClass::Linear => true,
            TensorClass::Embedding => {
                self.quantize_embeddings && shape.len() == 2 && name.ends_with(".weight")
            }
            TensorClass::LmHead => {
                self.quantize_lm_head && shape.len() == 2 && name.ends_with(".weight")
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_hf_names() {
        let c = |n: &str, s: &[usize]| TensorClass::of(n, s);
        assert_eq!(
            c("encoder.layer.0.attention.self.query.weight", &[384, 384]),
            TensorClass::Linear
        );
        assert_eq!(c("encoder.layer.0.attention.self.query.bias", &[384]), TensorClass::Bias);
        assert_eq!(
            c("encoder.layer.0.attention.output.LayerNorm.weight", &[384]),
            TensorClass::Norm
        );
        assert_eq!(c("embeddings.word_embeddings.weight", &[30522, 384]), TensorClass::Embedding);
        assert_eq!(c("model.embed_tokens.weight", &[32000, 4096]), TensorClass::Embedding);
        assert_eq!(c("model.layers.3.input_layernorm.weight", &[4096]), TensorClass::Norm);
        assert_eq!(c("model.norm.weight", &[4096]), TensorClass::Norm);
        assert_eq!(c("lm_head.weight", &[32000, 4096]), TensorClass::LmHead);
        assert_eq!(c("model.layers.3.mlp.down_proj.weight", &[4096, 11008]), TensorClass::Linear);
        assert_eq!(c("embeddings.position_ids", &[1, 512]), TensorClass::Embedding);
        assert_eq!(c("transformer.h.0.ln_1.weight", &[768]), TensorClass::Norm);
        assert_eq!(c("conv.weight", &[3, 3, 3, 3]), TensorClass::Other);
    }

    #[test]
    fn plan_and_policy() {
        let mut plan = QuantPlan::new(QuantSpec::int8_weight());
        assert!(plan.quantizes("model.layers.0.mlp.up_proj.weight", &[8, 4]));
        assert!(!plan.quantizes("lm_head.weight", &[8, 4]));
        assert!(!plan.quantizes("model.embed_tokens.weight", &[8, 4]));
        plan.ignore.push("model.layers.0.mlp".into());
        assert!(!plan.quantizes("model.layers.0.mlp.up_proj.weight", &[8, 4]));
        assert!(plan.quantizes("model.layers.1.mlp.up_proj.weight", &[8, 4]));
        plan.quantize_lm_head = true;
        assert!(plan.quantizes("lm_head.weight", &[8, 4]));

        let mut mp = MixedPrecision::new(HalfType::Bf16);
        assert!(!mp.casts("model.norm.weight", &[4]));
        assert!(mp.casts("model.layers.0.mlp.up_proj.weight", &[8, 4]));
        mp.keep_names.push("model.layers.0".into());
        assert!(!mp.casts("model.layers.0.mlp.up_proj.weight", &[8, 4]));
        assert!(mp.casts("model.layers.10.mlp.up_proj.weight", &[8, 4]));
    }
}
