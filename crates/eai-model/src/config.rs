//! Model hyper-parameters, read from a Hugging Face `config.json` or from GGUF metadata.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::gguf::GgufFile;

/// The decoder families this runtime implements: pre-norm RMSNorm + rope + GQA + SwiGLU (Llama,
/// Mistral, Qwen2), and BLOOM (LayerNorm with bias, ALiBi, GELU MLP with biases, fused QKV).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Architecture {
    /// Llama 1/2/3, SmolLM, Yi (and any `LlamaForCausalLM`).
    Llama,
    /// Mistral (`MistralForCausalLM`): Llama plus an optional sliding window.
    Mistral,
    /// Qwen2 / Qwen2.5 / DeepSeek-R1-Distill-Qwen: Llama plus q/k/v biases.
    Qwen2,
    /// BLOOM / BLOOMZ (`BloomForCausalLM`): LayerNorm with bias (also on the word embeddings),
    /// ALiBi position biases instead of rope, a fused `query_key_value` projection, a GELU (tanh
    /// form) MLP of width 4·hidden, biases on every projection, tied embeddings.
    Bloom,
}

impl Architecture {
    /// Lower-case name (`llama`, `mistral`, `qwen2`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Mistral => "mistral",
            Self::Qwen2 => "qwen2",
            Self::Bloom => "bloom",
        }
    }

    /// Whether positions enter through rope (every family but BLOOM, which uses ALiBi).
    pub fn uses_rope(self) -> bool {
        !matches!(self, Self::Bloom)
    }
}

/// Rope frequency scaling.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum RopeScaling {
    /// Plain rope.
    None,
    /// Positions divided by `factor` (`rope_type: "linear"`).
    Linear {
        /// Divisor of positions.
        factor: f32,
    },
    /// Llama 3.1/3.2's per-frequency scaling (`rope_type: "llama3"`).
    Llama3 {
        /// `factor` (8 for Llama 3.1, 32 for Llama 3.2).
        factor: f32,
        /// `low_freq_factor`.
        low_freq_factor: f32,
        /// `high_freq_factor`.
        high_freq_factor: f32,
        /// `original_max_position_embeddings`.
        original_max_position: f32,
    },
}

/// Everything the forward pass needs to know about a model's shape.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ModelConfig {
    /// Family.
    pub arch: Architecture,
    /// Number of decoder layers.
    pub n_layers: usize,
    /// Residual width.
    pub hidden: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (GQA when fewer than `n_heads`).
    pub n_kv_heads: usize,
    /// Per-head width.
    pub head_dim: usize,
    /// MLP inner width.
    pub ffn: usize,
    /// Embedding rows.
    pub vocab: usize,
    /// Context length the model was trained for.
    pub max_position: usize,
    /// Rope base θ.
    pub rope_theta: f32,
    /// Rope scaling.
    pub rope_scaling: RopeScaling,
    /// ε of the normalisation layers: RMSNorm's, or LayerNorm's for BLOOM (`layer_norm_epsilon`).
    pub rms_eps: f32,
    /// The LM head is the embedding matrix.
    pub tie_embeddings: bool,
    /// q/k/v projections carry biases.
    pub qkv_bias: bool,
    /// Attention window, when the model uses sliding-window attention.
    pub sliding_window: Option<usize>,
    /// Beginning-of-sequence token, when the model has one.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence tokens.
    pub eos_token_ids: Vec<u32>,
    /// Per-frequency rope divisors (GGUF `rope_freqs.weight`, Llama 3.1 style), when given.
    pub rope_freq_factors: Option<Vec<f32>>,
    /// BLOOM's `apply_residual_connection_post_layernorm`: the residual of each sub-block is the
    /// normalised input instead of the input (false for every published BLOOM model).
    pub residual_post_norm: bool,
}

impl ModelConfig {
    /// Reads a Hugging Face `config.json`.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Config`] for missing or ill-typed fields, and
    /// [`Error::UnsupportedArchitecture`] for anything but Llama/Mistral/Qwen2-style models and
    /// BLOOM (Falcon or GPT-NeoX, for instance, are rejected with a message saying so).
    pub fn from_hf_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_hf_json(&text, &path.display().to_string())
    }

    /// Parses the text of a `config.json`; `source` names it in errors.
    ///
    /// # Errors
    /// As [`ModelConfig::from_hf_file`].
    pub fn from_hf_json(text: &str, source: &str) -> Result<Self> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| Error::config(source, "<root>", format!("invalid JSON: {e}")))?;
        let model_type = v.get("model_type").and_then(Value::as_str).unwrap_or("");
        let archs: Vec<&str> = v
            .get("architectures")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let arch_name = archs.first().copied().unwrap_or(model_type);
        let arch = match (arch_name, model_type) {
            ("LlamaForCausalLM" | "YiForCausalLM", _) | (_, "llama" | "Yi") => Architecture::Llama,
            ("MistralForCausalLM", _) | (_, "mistral") => Architecture::Mistral,
            ("Qwen2ForCausalLM", _) | (_, "qwen2") => Architecture::Qwen2,
            ("BloomForCausalLM" | "BloomModel", _) | (_, "bloom") => {
                return crate::bloom::config_from_hf(&v, arch_name, source);
            }
            _ => {
                return Err(Error::UnsupportedArchitecture {
                    arch: if arch_name.is_empty() {
                        "<none>".into()
                    } else {
                        arch_name.to_string()
                    },
                    reason:
                        "supported: LlamaForCausalLM (Llama 2/3, SmolLM, Yi), MistralForCausalLM, \
                             Qwen2ForCausalLM, BloomForCausalLM"
                            .into(),
                });
            }
        };
        let usize_of = |k: &str| -> Result<usize> {
            v.get(k)
                .and_then(Value::as_u64)
                .map(|x| x as usize)
                .ok_or_else(|| Error::config(source, k, "missing or not a non-negative integer"))
        };
        let f32_of = |k: &str, default: Option<f32>| -> Result<f32> {
            match v.get(k) {
                Some(x) if !x.is_null() => x
                    .as_f64()
                    .map(|x| x as f32)
                    .ok_or_else(|| Error::config(source, k, "not a number")),
                _ => default.ok_or_else(|| Error::config(source, k, "missing")),
            }
        };
        if let Some(act) = v.get("hidden_act").and_then(Value::as_str)
            && act != "silu"
            && act != "swish"
        {
            return Err(Error::UnsupportedArchitecture {
                arch: arch_name.to_string(),
                reason: format!("hidden_act `{act}` (only SiLU-gated MLPs are implemented)"),
            });
        }
        if v.get("mlp_bias").and_then(Value::as_bool) == Some(true) {
            return Err(Error::UnsupportedArchitecture {
                arch: arch_name.to_string(),
                reason: "mlp_bias = true is not implemented".into(),
            });
        }
        let hidden = usize_of("hidden_size")?;
        let n_heads = usize_of("num_attention_heads")?;
        let n_kv_heads = match v.get("num_key_value_heads") {
            Some(x) if !x.is_null() => usize_of("num_key_value_heads")?,
            _ => n_heads,
        };
        let head_dim = match v.get("head_dim") {
            Some(x) if !x.is_null() => usize_of("head_dim")?,
            _ => {
                if n_heads == 0 || hidden % n_heads != 0 {
                    return Err(Error::config(
                        source,
                        "num_attention_heads",
                        "does not divide hidden_size",
                    ));
                }
                hidden / n_heads
            }
        };
        let rope_scaling = parse_rope_scaling(v.get("rope_scaling"), source)?;
        let qkv_bias = match arch {
            Architecture::Qwen2 => true,
            _ => v.get("attention_bias").and_then(Value::as_bool).unwrap_or(false),
        };
        let sliding_window = match arch {
            Architecture::Mistral => {
                v.get("sliding_window").and_then(Value::as_u64).map(|x| x as usize)
            }
            Architecture::Qwen2
                if v.get("use_sliding_window").and_then(Value::as_bool) == Some(true) =>
            {
                v.get("sliding_window").and_then(Value::as_u64).map(|x| x as usize)
            }
            _ => None,
        };
        let eos_token_ids = match v.get("eos_token_id") {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_u64).map(|x| x as u32).collect(),
            Some(x) => x.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
            None => Vec::new(),
        };
        let cfg = ModelConfig {
            arch,
            n_layers: usize_of("num_hidden_layers")?,
            hidden,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn: usize_of("intermediate_size")?,
            vocab: usize_of("vocab_size")?,
            max_position: v.get("max_position_embeddings").and_then(Value::as_u64).unwrap_or(2048)
                as usize,
            rope_theta: f32_of("rope_theta", Some(10_000.0))?,
            rope_scaling,
            rms_eps: f32_of("rms_norm_eps", Some(1e-6))?,
            tie_embeddings: v.get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(false),
            qkv_bias,
            sliding_window,
            bos_token_id: v.get("bos_token_id").and_then(Value::as_u64).map(|x| x as u32),
            eos_token_ids,
            rope_freq_factors: None,
            residual_post_norm: false,
        };
        cfg.validate(source)?;
        Ok(cfg)
    }

    /// Reads the hyper-parameters of a GGUF file (`llama`, `qwen2` and `bloom` architectures).
    ///
    /// # Errors
    /// [`Error::UnsupportedArchitecture`] for other architectures; [`Error::Config`] for missing
    /// keys.
    pub fn from_gguf(f: &GgufFile) -> Result<Self> {
        let arch_name = f.architecture()?;
        let arch = match arch_name {
            "llama" => Architecture::Llama,
            "qwen2" => Architecture::Qwen2,
            "bloom" => return crate::bloom::config_from_gguf(f),
            other => {
                return Err(Error::UnsupportedArchitecture {
                    arch: other.into(),
                    reason: "supported GGUF architectures: llama, qwen2, bloom".into(),
                });
            }
        };
        let k = |s: &str| format!("{arch_name}.{s}");
        let u = |s: &str| f.get_u64(&k(s)).map(|x| x as usize);
        let hidden = u("embedding_length")?;
        let n_heads = u("attention.head_count")?;
        let n_kv_heads = if f.get(&k("attention.head_count_kv")).is_some() {
            u("attention.head_count_kv")?
        } else {
            n_heads
        };
        if n_heads == 0 || hidden % n_heads != 0 {
            return Err(Error::config(
                f.path().display().to_string(),
                k("attention.head_count"),
                "does not divide embedding_length",
            ));
        }
        let head_dim = if f.get(&k("attention.key_length")).is_some() {
            u("attention.key_length")?
        } else {
            hidden / n_heads
        };
        let vocab = match f.get(&k("vocab_size")).and_then(|v| v.as_u64()) {
            Some(v) => v as usize,
            None => f
                .get("tokenizer.ggml.tokens")
                .and_then(|t| t.as_array())
                .map(<[_]>::len)
                .or_else(|| {
                    f.tensor("token_embd.weight")
                        .map(|t| t.dims.get(1).copied().unwrap_or(0) as usize)
                })
                .ok_or_else(|| {
                    Error::config(f.path().display().to_string(), k("vocab_size"), "missing")
                })?,
        };
        let rope_scaling = match f.get(&k("rope.scaling.type")).and_then(|v| v.as_str()) {
            None | Some("none") => RopeScaling::None,
            Some("linear") => {
                RopeScaling::Linear { factor: f.get_f64(&k("rope.scaling.factor"))? as f32 }
            }
            Some(other) => {
                return Err(Error::config(
                    f.path().display().to_string(),
                    k("rope.scaling.type"),
                    format!("rope scaling `{other}` is not supported"),
                ));
            }
        };
        let get_id = |key: &str| f.get(key).and_then(|v| v.as_u64()).map(|x| x as u32);
        let n_layers = u("block_count")?;
        crate::validate::check_block_count(f, &k("block_count"), n_layers as u64)?;
        let cfg = ModelConfig {
            arch,
            n_layers,
            hidden,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn: u("feed_forward_length")?,
            vocab,
            max_position: crate::validate::optional_u64(f, &k("context_length"), 2048)? as usize,
            rope_theta: crate::validate::optional_f64(f, &k("rope.freq_base"), 10_000.0)? as f32,
            rope_scaling,
            rms_eps: f.get_f64(&k("attention.layer_norm_rms_epsilon"))? as f32,
            tie_embeddings: f.tensor("output.weight").is_none(),
            qkv_bias: f.tensor("blk.0.attn_q.bias").is_some(),
            sliding_window: None,
            bos_token_id: get_id("tokenizer.ggml.bos_token_id"),
            eos_token_ids: get_id("tokenizer.ggml.eos_token_id").into_iter().collect(),
            rope_freq_factors: if f.tensor("rope_freqs.weight").is_some() {
                Some(f.dequantize("rope_freqs.weight")?)
            } else {
                None
            },
            residual_post_norm: false,
        };
        cfg.validate(&f.path().display().to_string())?;
        Ok(cfg)
    }

    /// Checks internal consistency (non-zero sizes, heads divisible, rope dims even).
    ///
    /// # Errors
    /// [`Error::Config`] naming the offending field.
    pub fn validate(&self, source: &str) -> Result<()> {
        let nonzero = [
            ("num_hidden_layers", self.n_layers),
            ("hidden_size", self.hidden),
            ("num_attention_heads", self.n_heads),
            ("num_key_value_heads", self.n_kv_heads),
            ("head_dim", self.head_dim),
            ("intermediate_size", self.ffn),
            ("vocab_size", self.vocab),
        ];
        for (name, v) in nonzero {
            if v == 0 {
                return Err(Error::config(source, name, "must be positive"));
            }
            if v > 1 << 24 {
                return Err(Error::config(source, name, format!("{v} is absurd")));
            }
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(Error::config(
                source,
                "num_key_value_heads",
                "does not divide num_attention_heads",
            ));
        }
        if self.arch.uses_rope() && !self.head_dim.is_multiple_of(2) {
            return Err(Error::config(source, "head_dim", "must be even for rope"));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(Error::config(source, "rope_theta", "must be positive"));
        }
        if let Some(ff) = &self.rope_freq_factors
            && (ff.len() != self.head_dim / 2 || ff.iter().any(|x| !(x.is_finite() && *x > 0.0)))
        {
            return Err(Error::config(source, "rope_freqs", "needs head_dim/2 positive factors"));
        }
        let factors: Vec<(&str, f32)> = match self.rope_scaling {
            RopeScaling::None => Vec::new(),
            RopeScaling::Linear { factor } => vec![("rope_scaling.factor", factor)],
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position,
            } => vec![
                ("rope_scaling.factor", factor),
                ("rope_scaling.low_freq_factor", low_freq_factor),
                ("rope_scaling.high_freq_factor", high_freq_factor),
                ("rope_scaling.original_max_position_embeddings", original_max_position),
            ],
        };
        for (name, v) in factors {
            // A factor of 0 divides positions by zero: every rope angle NaN, every score NaN.
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::config(source, name, format!("{v} is not a positive number")));
            }
        }
        if !(self.rms_eps.is_finite() && self.rms_eps >= 0.0) {
            return Err(Error::config(source, "rms_norm_eps", "must be non-negative"));
        }
        Ok(())
    }

    /// Total parameter count implied by the shapes.
    pub fn n_params(&self) -> usize {
        if self.arch == Architecture::Bloom {
            return crate::bloom::n_params(self);
        }
        let q = self.n_heads * self.head_dim;
        let kv = self.n_kv_heads * self.head_dim;
        let per_layer = self.hidden * (q + 2 * kv)
            + q * self.hidden
            + 3 * self.hidden * self.ffn
            + 2 * self.hidden;
        let bias = if self.qkv_bias { q + 2 * kv } else { 0 };
        let head = if self.tie_embeddings { 0 } else { self.vocab * self.hidden };
        self.vocab * self.hidden + self.n_layers * (per_layer + bias) + self.hidden + head
    }

    /// The rope inverse frequencies `θ_i` for `i < head_dim/2`, scaling applied.
    pub fn rope_inv_freq(&self) -> Vec<f32> {
        let d = self.head_dim as f64;
        (0..self.head_dim / 2)
            .map(|i| {
                let f = (self.rope_theta as f64).powf(-(2.0 * i as f64) / d);
                let f = match self.rope_scaling {
                    RopeScaling::None => f,
                    RopeScaling::Linear { factor } => f / factor as f64,
                    RopeScaling::Llama3 {
                        factor,
                        low_freq_factor,
                        high_freq_factor,
                        original_max_position,
                    } => {
                        let (factor, low, high, old) = (
                            factor as f64,
                            low_freq_factor as f64,
                            high_freq_factor as f64,
                            original_max_position as f64,
                        );
                        let wavelen = 2.0 * std::f64::consts::PI / f;
                        let low_wl = old / low;
                        let high_wl = old / high;
                        if wavelen < high_wl {
                            f
                        } else if wavelen > low_wl {
                            f / factor
                        } else {
                            let smooth = (old / wavelen - low) / (high - low);
                            (1.0 - smooth) * f / factor + smooth * f
                        }
                    }
                };
                let f = match &self.rope_freq_factors {
                    Some(ff) => f / f64::from(ff.get(i).copied().unwrap_or(1.0)),
                    None => f,
                };
                f as f32
            })
            .collect()
    }
}

fn parse_rope_scaling(v: Option<&Value>, source: &str) -> Result<RopeScaling> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(RopeScaling::None) };
    let ty = v
        .get("rope_type")
        .or_else(|| v.get("type"))
        .and_then(Value::as_str)
        .ok_or_else(|| Error::config(source, "rope_scaling.rope_type", "missing"))?;
    let num = |k: &str, d: Option<f64>| -> Result<f32> {
        v.get(k).and_then(Value::as_f64).or(d).map(|x| x as f32).ok_or_else(|| {
            Error::config(source, format!("rope_scaling.{k}"), "missing or not a number")
        })
    };
    match ty {
        "default" => Ok(RopeScaling::None),
        "linear" => Ok(RopeScaling::Linear { factor: num("factor", None)? }),
        "llama3" => Ok(RopeScaling::Llama3 {
            factor: num("factor", Some(8.0))?,
            low_freq_factor: num("low_freq_factor", Some(1.0))?,
            high_freq_factor: num("high_freq_factor", Some(4.0))?,
            original_max_position: num("original_max_position_embeddings", Some(8192.0))?,
        }),
        other => Err(Error::config(
            source,
            "rope_scaling.rope_type",
            format!("`{other}` is not supported"),
        )),
    }
}
