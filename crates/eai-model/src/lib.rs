//! eai-model: a small Llama-family runtime with a CPU reference forward pass.
//!
//! Design: every weight source (GGUF v2/v3 file, Hugging Face safetensors folder) is read into
//! Hugging Face tensor order — llama-arch GGUF Q/K rows are un-permuted at load — so there is one
//! rope convention (NeoX, rotate-half) and one forward pass. Weights are dequantized to f32 and
//! then converted to the requested [`Scheme`] (FP32, FP16, BF16, INT8 W8A8, INT8 weight-only) in
//! each [`Linear`] layer; activations, norms, softmax and the residual stream stay f32. The
//! [`Engine`] adds lm-eval's request semantics (context/continuation split, truncation, greedy
//! check, one forward for identical inputs) and implements [`eai_core::LanguageModel`], rolling
//! log-likelihoods included ([`rolling_windows`], lm-eval's windowing). Settings are built with
//! [`EngineOptions::new`] and its setters; [`SpecialTokens`] says whether special-token text in a
//! request is parsed (the default, as lm-eval's HF backend) or kept as text.
//!
//! ```
//! use eai_model::{ModelConfig, Scheme};
//! let cfg = ModelConfig::from_hf_json(r#"{
//!     "architectures": ["Qwen2ForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
//!     "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2,
//!     "vocab_size": 100, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6 }"#, "config.json")?;
//! assert!(cfg.qkv_bias);
//! assert_eq!(cfg.head_dim, 16);
//! assert_eq!(Scheme::from_label("w8a8"), Some(Scheme::W8A8));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bloom;
mod bound;
mod calls;
mod config;
mod convert;
mod dequant;
mod engine;
mod error;
mod fetch;
mod gguf;
mod int8;
mod linear;
mod mmap;
mod model;
mod parallel;
mod rolling;
mod source;
mod tokenizer;
mod tokens;
mod validate;

pub use crate::{
    bloom::{BLOOM_DEFAULT_CONTEXT, alibi_slopes, bloom_qkv_to_blocks, bloom_qkv_to_interleaved},
    config::{Architecture, ModelConfig, RopeScaling},
    convert::{ConvertDtype, gguf_to_hf, hf_config_json, hf_tensor_names},
    dequant::{GgmlType, dequantize_into, quantize},
    engine::{Counters, Engine, EngineOptions, TokenPair, encode_pair},
    error::{Error, Result},
    fetch::{
        PypiModelFile, R1_DISTILL_QWEN_7B_HEADER, SMOLLM2, SMOLLM2_FILE, SMOLLM2_PYPI,
        SMOLLM2_SHA256, cache_dir, find_model, find_smollm2, sha256_file,
    },
    gguf::{DEFAULT_ALIGNMENT, GgufContents, GgufFile, GgufValue, GgufWriter, TensorInfo},
    linear::{Linear, Scheme},
    model::{KvCache, LoadOptions, Model, Scratch},
    parallel::{
        DataParallel, Replica, ReplicaStats, Share, Split, Weigher, split_generation, split_scoring,
    },
    rolling::rolling_windows,
    source::{
        F32Tensor, GgufSource, SafetensorsSource, WeightSource, hf_to_gguf_name, permute_rows,
        unpermute_rows,
    },
    tokenizer::{BosPolicy, SpecialTokens, Tokenizer},
    tokens::{TokenCache, TokenCacheStats},
};

#[cfg(feature = "fetch")]
#[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
pub use crate::fetch::{fetch_model, fetch_smollm2};

#[cfg(feature = "cuda")]
#[cfg_attr(docsrs, doc(cfg(feature = "cuda")))]
#[allow(unsafe_code)]
pub mod cuda;
