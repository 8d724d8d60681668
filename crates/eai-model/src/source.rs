//! Where weights come from: a GGUF file or a Hugging Face safetensors folder.
//!
//! Both are addressed by Hugging Face tensor names (`model.layers.3.self_attn.q_proj.weight`) and
//! yield f32 in Hugging Face row order, so the forward pass has one rope convention (NeoX).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};

use crate::config::{Architecture, ModelConfig};
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::mmap::Bytes;

/// A tensor as f32, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct F32Tensor {
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// Values.
    pub data: Vec<f32>,
}

/// Anything that can hand out weights by Hugging Face name.
pub trait WeightSource {
    /// A name for error messages (usually the path).
    fn source_name(&self) -> String;
    /// The tensor, or `None` when absent.
    ///
    /// # Errors
    /// When the tensor exists but cannot be decoded.
    fn tensor(&self, hf_name: &str) -> Result<Option<F32Tensor>>;
}

/// The GGUF name for a Hugging Face tensor name (llama.cpp's standard names; BLOOM's
/// `transformer.h.N...` names map to llama.cpp's `bloom` names).
pub fn hf_to_gguf_name(name: &str) -> Option<String> {
    if let Some(g) = crate::bloom::hf_to_gguf_name(name) {
        return Some(g);
    }
    let fixed = match name {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = name.strip_prefix("model.layers.")?;
    let (layer, tail) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, kind) = tail.rsplit_once('.')?;
    let g = match module {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{g}.{kind}"))
}

/// Undoes llama.cpp's Q/K row permutation: per head of `d` rows, `hf[j·d/2 + i] = gguf[2i + j]`.
/// `row_len` is the number of values per row (1 for a bias).
pub fn unpermute_rows(data: &[f32], n_heads: usize, row_len: usize) -> Vec<f32> {
    permute_impl(data, n_heads, row_len, true)
}

/// Applies llama.cpp's Q/K row permutation (inverse of [`unpermute_rows`]).
pub fn permute_rows(data: &[f32], n_heads: usize, row_len: usize) -> Vec<f32> {
    permute_impl(data, n_heads, row_len, false)
}

fn permute_impl(data: &[f32], n_heads: usize, row_len: usize, undo: bool) -> Vec<f32> {
    let rows = data.len() / row_len.max(1);
    let d = rows / n_heads.max(1);
    let half = d / 2;
    let mut out = vec![0f32; data.len()];
    for h in 0..n_heads {
        for i in 0..half {
            for j in 0..2 {
                let gguf = h * d + 2 * i + j;
                let hf = h * d + j * half + i;
                let (src, dst) = if undo { (gguf, hf) } else { (hf, gguf) };
                out[dst * row_len..(dst + 1) * row_len]
                    .copy_from_slice(&data[src * row_len..(src + 1) * row_len]);
            }
        }
    }
    out
}

/// Weights of a GGUF file, dequantized to f32 on request and un-permuted for llama-arch Q/K.
#[derive(Debug)]
pub struct GgufSource<'a> {
    file: &'a GgufFile,
    arch: Architecture,
    n_heads: usize,
    n_kv_heads: usize,
}

impl<'a> GgufSource<'a> {
    /// Wraps a parsed file with its config.
    pub fn new(file: &'a GgufFile, cfg: &ModelConfig) -> Self {
        GgufSource { file, arch: cfg.arch, n_heads: cfg.n_heads, n_kv_heads: cfg.n_kv_heads }
    }
}

impl WeightSource for GgufSource<'_> {
    fn source_name(&self) -> String {
        self.file.path().display().to_string()
    }

    fn tensor(&self, hf_name: &str) -> Result<Option<F32Tensor>> {
        let Some(g) = hf_to_gguf_name(hf_name) else { return Ok(None) };
        let Some(info) = self.file.tensor(&g) else { return Ok(None) };
        let shape = info.shape();
        let mut data = self.file.dequantize(&g)?;
        // llama.cpp's converter regroups BLOOM's fused QKV rows to [3, heads, d]; undo it.
        if self.arch == Architecture::Bloom && g.contains(".attn_qkv.") {
            let row_len = if shape.len() == 2 { shape[1] } else { 1 };
            let rows = data.len() / row_len.max(1);
            if self.n_heads == 0 || rows != 3 * self.n_heads * (rows / (3 * self.n_heads)) {
                return Err(Error::BadTensor {
                    path: self.file.path().to_path_buf(),
                    tensor: g,
                    reason: format!(
                        "{rows} rows cannot be split into q, k, v of {} heads",
                        self.n_heads
                    ),
                });
            }
            return Ok(Some(F32Tensor {
                shape,
                data: crate::bloom::bloom_qkv_to_interleaved(&data, self.n_heads, row_len),
            }));
        }
        // llama-arch GGUF stores Q/K rows permuted for interleaved rope; qwen2 does not.
        if self.arch != Architecture::Qwen2 {
            let heads = if g.contains(".attn_q.") {
                Some(self.n_heads)
            } else if g.contains(".attn_k.") {
                Some(self.n_kv_heads)
            } else {
                None
            };
            if let Some(nh) = heads {
                let row_len = if shape.len() == 2 { shape[1] } else { 1 };
                let rows = data.len() / row_len.max(1);
                if nh == 0 || rows % (2 * nh) != 0 {
                    return Err(Error::BadTensor {
                        path: self.file.path().to_path_buf(),
                        tensor: g,
                        reason: format!("{rows} rows cannot be split into {nh} rope heads"),
                    });
                }
                data = unpermute_rows(&data, nh, row_len);
            }
        }
        Ok(Some(F32Tensor { shape, data }))
    }
}

/// A Hugging Face folder: `model.safetensors`, or shards listed in `model.safetensors.index.json`.
#[derive(Debug)]
pub struct SafetensorsSource {
    dir: PathBuf,
    files: Vec<(PathBuf, Bytes)>,
    index: BTreeMap<String, usize>,
}

impl SafetensorsSource {
    /// Opens (memory-maps) the weight files of `dir`. The files must not change while open.
    ///
    /// # Errors
    /// [`Error::Io`] when no weight file exists or one cannot be read; [`Error::Safetensors`] when
    /// a file's header is invalid (offsets past the end, overlapping, unknown dtypes).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let single = dir.join("model.safetensors");
        let index_path = dir.join("model.safetensors.index.json");
        let names: Vec<String> = if index_path.exists() {
            let text =
                std::fs::read_to_string(&index_path).map_err(|e| Error::io(&index_path, e))?;
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                Error::config(index_path.display().to_string(), "<root>", e.to_string())
            })?;
            let map = v.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| {
                Error::config(index_path.display().to_string(), "weight_map", "missing")
            })?;
            let mut files: Vec<String> =
                map.values().filter_map(|f| f.as_str().map(str::to_string)).collect();
            files.sort();
            files.dedup();
            files
        } else if single.exists() {
            vec!["model.safetensors".into()]
        } else {
            return Err(Error::io(
                &single,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no model.safetensors or model.safetensors.index.json",
                ),
            ));
        };
        let mut files = Vec::new();
        let mut index = BTreeMap::new();
        for name in names {
            if name.contains('/') || name.contains('\\') || name.contains("..") {
                return Err(Error::config(
                    index_path.display().to_string(),
                    "weight_map",
                    format!("shard name `{name}` leaves the folder"),
                ));
            }
            let p = dir.join(&name);
            let bytes = Bytes::map(&p)?;
            let st = SafeTensors::deserialize(&bytes)
                .map_err(|e| Error::Safetensors { path: p.clone(), reason: e.to_string() })?;
            for t in st.names() {
                index.insert(t.to_string(), files.len());
            }
            files.push((p, bytes));
        }
        Ok(SafetensorsSource { dir, files, index })
    }

    /// Names of all tensors.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }
}

impl WeightSource for SafetensorsSource {
    fn source_name(&self) -> String {
        self.dir.display().to_string()
    }

    fn tensor(&self, hf_name: &str) -> Result<Option<F32Tensor>> {
        let Some(&fi) = self.index.get(hf_name) else { return Ok(None) };
        let (path, bytes) = &self.files[fi];
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::Safetensors { path: path.clone(), reason: e.to_string() })?;
        let view = st
            .tensor(hf_name)
            .map_err(|e| Error::Safetensors { path: path.clone(), reason: e.to_string() })?;
        let raw = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => {
                raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            }
            Dtype::F16 => {
                raw.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            Dtype::BF16 => {
                raw.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            other => {
                return Err(Error::UnsupportedTensorType {
                    tensor: hf_name.to_string(),
                    ty: format!("safetensors {other:?}"),
                });
            }
        };
        Ok(Some(F32Tensor { shape: view.shape().to_vec(), data }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map() {
        assert_eq!(
            hf_to_gguf_name("model.layers.12.mlp.gate_proj.weight").as_deref(),
            Some("blk.12.ffn_gate.weight")
        );
        assert_eq!(
            hf_to_gguf_name("model.layers.0.self_attn.q_proj.bias").as_deref(),
            Some("blk.0.attn_q.bias")
        );
        assert_eq!(hf_to_gguf_name("lm_head.weight").as_deref(), Some("output.weight"));
        assert_eq!(hf_to_gguf_name("model.layers.x.mlp.up_proj.weight"), None);
    }

    #[test]
    fn permutation_round_trips_and_matches_llama_cpp_formula() {
        // 2 heads of d = 4 rows, row length 3.
        let data: Vec<f32> = (0..24).map(|x| x as f32).collect();
        let p = permute_rows(&data, 2, 3);
        assert_eq!(unpermute_rows(&p, 2, 3), data);
        // gguf_row[2i + j] = hf_row[j·d/2 + i]: gguf row 1 (i=0, j=1) = hf row 2.
        assert_eq!(&p[3..6], &data[6..9]);
    }
}
