//! `config.json` (the source's, edited) and the side files copied beside the tensors.

use std::path::{Path, PathBuf};

use safetensors::Dtype;
use serde_json::{Value, json};

use super::{ConfigEdit, TensorAction, TensorReport};
use crate::checkpoint::plan::{ActivationScheme, QuantPlan, TensorClass};
use crate::checkpoint::read::Checkpoint;
use crate::error::{QuantError, Result};
use crate::spec::{Granularity, Mapping};

/// Files copied from the source directory when present.
pub(super) const SIDE_FILES: &[&str] = &[
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "sentencepiece.bpe.model",
    "chat_template.jinja",
    "chat_template.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
];

pub(super) fn write_json(p: &Path, v: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v)
        .map_err(|e| QuantError::Json { file: p.into(), detail: e.to_string() })?;
    std::fs::write(p, text).map_err(|e| QuantError::io(p, e))
}

pub(super) fn dtype_from_name(s: &str) -> Option<Dtype> {
    let q = format!("\"{s}\"");
    serde_json::from_str::<Dtype>(&q).ok()
}

pub(super) fn quantization_config(
    src: &Checkpoint,
    plan: &QuantPlan,
    reports: &[TensorReport],
) -> Value {
    let w = &plan.weight;
    let (strategy, group_size) = match w.granularity {
        Granularity::PerTensor => ("tensor", Value::Null),
        Granularity::PerGroup { size } => ("group", json!(size)),
        _ => ("channel", Value::Null),
    };
    let weights = json!({
        "num_bits": 8,
        "type": "int",
        "symmetric": w.mapping == Mapping::Symmetric,
        "strategy": strategy,
        "group_size": group_size,
        "dynamic": false,
    });
    let input = match &plan.activations {
        ActivationScheme::None => Value::Null,
        ActivationScheme::DynamicPerToken => json!({
            "num_bits": 8, "type": "int", "symmetric": true, "strategy": "token",
            "group_size": null, "dynamic": true,
        }),
        ActivationScheme::Static(_) => json!({
            "num_bits": 8, "type": "int", "symmetric": true, "strategy": "tensor",
            "group_size": null, "dynamic": false,
        }),
    };
    // Linear layers left in floating point must be listed, or loaders would expect int8 there.
    let quantized: std::collections::BTreeSet<&str> = reports
        .iter()
        .filter(|r| r.action == TensorAction::Quantize)
        .map(|r| r.name.as_str())
        .collect();
    let ignore: Vec<String> = src
        .tensors()
        .filter(|t| {
            matches!(TensorClass::of(&t.name, &t.shape), TensorClass::Linear | TensorClass::LmHead)
                && t.name.ends_with(".weight")
                && !quantized.contains(t.name.as_str())
        })
        .map(|t| t.name.trim_end_matches(".weight").to_string())
        .collect();
    json!({
        "quant_method": "compressed-tensors",
        "format": "int-quantized",
        "quantization_status": "compressed",
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "weights": weights,
                "input_activations": input,
                "output_activations": null,
            }
        },
        "ignore": ignore,
        "kv_cache_scheme": null,
        "global_compression_ratio": null,
    })
}

/// Writes `dir/config.json`: the source's `config.json` edited by `edit`, or only the edit when
/// the source has none (then the second value is `false`: the output is not a loadable model
/// folder, and the report says so).
pub(super) fn write_config(
    src: &Checkpoint,
    dir: &Path,
    edit: &ConfigEdit<'_>,
    reports: &[TensorReport],
) -> Result<(PathBuf, bool)> {
    let cfg_src = src.root().join("config.json");
    let had = cfg_src.is_file();
    let mut cfg = if had {
        let text = std::fs::read_to_string(&cfg_src).map_err(|e| QuantError::io(&cfg_src, e))?;
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(QuantError::Json { file: cfg_src, detail: "not a JSON object".into() });
            }
            Err(e) => return Err(QuantError::Json { file: cfg_src, detail: e.to_string() }),
        }
    } else {
        serde_json::Map::new()
    };
    edit(&mut cfg, reports);
    let p = dir.join("config.json");
    write_json(&p, &Value::Object(cfg))?;
    Ok((p, had))
}

/// Copies the side files the source directory holds into `dir`; returns the copies.
pub(super) fn copy_side_files(src: &Checkpoint, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for side in SIDE_FILES {
        let from = src.root().join(side);
        if from.is_file() {
            let to = dir.join(side);
            std::fs::copy(&from, &to).map_err(|e| QuantError::io(&from, e))?;
            out.push(to);
        }
    }
    Ok(out)
}
