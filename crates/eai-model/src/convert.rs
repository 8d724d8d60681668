//! GGUF → Hugging Face folder (`config.json`, `tokenizer.json`, `model.safetensors`).

use std::collections::BTreeMap;
use std::path::Path;

use half::f16;
use safetensors::{Dtype, tensor::TensorView};
use serde_json::json;

use crate::config::{Architecture, ModelConfig, RopeScaling};
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::source::{GgufSource, WeightSource};
use crate::tokenizer::Tokenizer;

/// Float type of the converted weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConvertDtype {
    /// 32-bit floats (exactly the dequantized GGUF values).
    F32,
    /// IEEE half.
    F16,
}

/// The Hugging Face tensor names of a model with `cfg`'s shape (LM head only when untied).
pub fn hf_tensor_names(cfg: &ModelConfig) -> Vec<String> {
    if cfg.arch == Architecture::Bloom {
        return crate::bloom::hf_tensor_names(cfg);
    }
    let mut v = vec!["model.embed_tokens.weight".to_string()];
    for l in 0..cfg.n_layers {
        let p = format!("model.layers.{l}");
        v.push(format!("{p}.input_layernorm.weight"));
        for m in ["q_proj", "k_proj", "v_proj"] {
            v.push(format!("{p}.self_attn.{m}.weight"));
            if cfg.qkv_bias {
                v.push(format!("{p}.self_attn.{m}.bias"));
            }
        }
        v.push(format!("{p}.self_attn.o_proj.weight"));
        v.push(format!("{p}.post_attention_layernorm.weight"));
        for m in ["gate_proj", "up_proj", "down_proj"] {
            v.push(format!("{p}.mlp.{m}.weight"));
        }
    }
    v.push("model.norm.weight".into());
    if !cfg.tie_embeddings {
        v.push("lm_head.weight".into());
    }
    v
}

/// The `config.json` value for `cfg`.
pub fn hf_config_json(cfg: &ModelConfig, dtype: ConvertDtype) -> serde_json::Value {
    let (arch, ty) = match cfg.arch {
        Architecture::Llama => ("LlamaForCausalLM", "llama"),
        Architecture::Mistral => ("MistralForCausalLM", "mistral"),
        Architecture::Qwen2 => ("Qwen2ForCausalLM", "qwen2"),
        Architecture::Bloom => return crate::bloom::hf_config_json(cfg),
    };
    let mut v = json!({
        "architectures": [arch],
        "model_type": ty,
        "hidden_act": "silu",
        "hidden_size": cfg.hidden,
        "intermediate_size": cfg.ffn,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads,
        "num_hidden_layers": cfg.n_layers,
        "head_dim": cfg.head_dim,
        "max_position_embeddings": cfg.max_position,
        "rms_norm_eps": cfg.rms_eps,
        "rope_theta": cfg.rope_theta,
        "tie_word_embeddings": cfg.tie_embeddings,
        "vocab_size": cfg.vocab,
        "torch_dtype": if dtype == ConvertDtype::F32 { "float32" } else { "float16" },
    });
    if let Some(b) = cfg.bos_token_id {
        v["bos_token_id"] = json!(b);
    }
    match cfg.eos_token_ids.as_slice() {
        [] => {}
        [e] => v["eos_token_id"] = json!(e),
        es => v["eos_token_id"] = json!(es),
    }
    if cfg.arch == Architecture::Llama && cfg.qkv_bias {
        v["attention_bias"] = json!(true);
    }
    if let RopeScaling::Linear { factor } = cfg.rope_scaling {
        v["rope_scaling"] = json!({"rope_type": "linear", "factor": factor});
    }
    v
}

/// Converts a GGUF file to a Hugging Face folder: weights dequantized (llama-arch Q/K rows
/// un-permuted back to Hugging Face order), `config.json`, and `tokenizer.json` built from the GGUF
/// metadata.
///
/// # Errors
/// Loading errors of the GGUF; [`Error::UnsupportedArchitecture`] when the file uses per-frequency
/// rope factors (`rope_freqs.weight`), which `config.json` cannot express exactly; [`Error::Io`].
pub fn gguf_to_hf(
    gguf: impl AsRef<Path>,
    out_dir: impl AsRef<Path>,
    dtype: ConvertDtype,
) -> Result<()> {
    let f = GgufFile::open(gguf.as_ref())?;
    let cfg = ModelConfig::from_gguf(&f)?;
    if cfg.rope_freq_factors.is_some() {
        return Err(Error::UnsupportedArchitecture {
            arch: f.architecture()?.to_string(),
            reason:
                "rope_freqs.weight cannot be written to config.json without its llama3 parameters"
                    .into(),
        });
    }
    let tok = Tokenizer::from_gguf(&f)?;
    let out = out_dir.as_ref();
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let src = GgufSource::new(&f, &cfg);
    let mut blobs: BTreeMap<String, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
    for name in hf_tensor_names(&cfg) {
        let t = src.tensor(&name)?.ok_or_else(|| Error::MissingTensor {
            tensor: name.clone(),
            source_name: src.source_name(),
        })?;
        let bytes: Vec<u8> = match dtype {
            ConvertDtype::F32 => t.data.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ConvertDtype::F16 => {
                t.data.iter().flat_map(|x| f16::from_f32(*x).to_le_bytes()).collect()
            }
        };
        blobs.insert(name, (t.shape, bytes));
    }
    let st_dtype = if dtype == ConvertDtype::F32 { Dtype::F32 } else { Dtype::F16 };
    let mut views = Vec::with_capacity(blobs.len());
    for (name, (shape, bytes)) in &blobs {
        let v = TensorView::new(st_dtype, shape.clone(), bytes).map_err(|e| {
            Error::Safetensors { path: out.join("model.safetensors"), reason: e.to_string() }
        })?;
        views.push((name.clone(), v));
    }
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let st_path = out.join("model.safetensors");
    safetensors::serialize_to_file(views, Some(meta), &st_path)
        .map_err(|e| Error::Safetensors { path: st_path.clone(), reason: e.to_string() })?;
    let cfg_path = out.join("config.json");
    let text = serde_json::to_string_pretty(&hf_config_json(&cfg, dtype))
        .map_err(|e| Error::invalid(e.to_string()))?;
    std::fs::write(&cfg_path, text).map_err(|e| Error::io(&cfg_path, e))?;
    tok.save(out.join("tokenizer.json"))?;
    Ok(())
}
