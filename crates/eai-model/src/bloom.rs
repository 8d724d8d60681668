//! BLOOM (`BloomForCausalLM`, Bloomz-7B1): config, weights and the CPU forward pass.
//!
//! A BLOOM block differs from a Llama block in every part but the shape of the residual stream:
//! LayerNorm with bias (one more on the word embeddings, before the first block), ALiBi biases
//! on the attention scores instead of rope, a fused `query_key_value` projection whose rows are
//! interleaved per head (`[heads, 3, head_dim]`), a GELU (tanh form) MLP of width 4·hidden, biases
//! on every projection, and tied input/output embeddings.
//!
//! Layout decisions: sources yield Hugging Face order (a `bloom` GGUF stores the fused rows as
//! `[3, heads, head_dim]`; [`GgufSource`](crate::GgufSource) re-interleaves them); at load the
//! rows are regrouped into `[q of all heads; k; v]` (one [`Linear`], so every [`Scheme`] applies
//! unchanged, int8 scales per output row as for Llama), and the forward pass reads q, k and v as
//! column blocks of one product.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Zip};
use serde_json::Value;

use crate::config::{Architecture, ModelConfig, RopeScaling};
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::linear::{Linear, Scheme};
use crate::model::{
    AttnGeometry, KvCache, LoadOptions, Model, Scratch, attention, buf, build_lm_head, view,
};
use crate::source::WeightSource;

/// BLOOM's `max_length` when `config.json` names none (`seq_length`): the training context, and
/// lm-evaluation-harness's fallback (`_DEFAULT_MAX_LENGTH`) when neither the model config
/// (`n_positions`, `max_position_embeddings`, `n_ctx`: BLOOM has none) nor the tokenizer names
/// a length.
pub const BLOOM_DEFAULT_CONTEXT: usize = 2048;

/// The ALiBi slope of every head, exactly as BLOOM's `build_alibi_tensor` defines them: for the
/// largest power of two `p ≤ n_heads`, slopes `b^1 … b^p` with `b = 2^(−8/p)`; the remaining
/// `n_heads − p` heads take the odd powers `c^1, c^3, …` of `c = 2^(−4/p)` (the in-between slopes
/// of a `2p`-head model). llama.cpp's `max_alibi_bias = 8` gives the same values.
///
/// ```
/// let s = eai_model::alibi_slopes(6);
/// assert_eq!(s, vec![0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125]);
/// ```
pub fn alibi_slopes(n_heads: usize) -> Vec<f32> {
    if n_heads == 0 {
        return Vec::new();
    }
    let p = 1usize << (usize::BITS - 1 - n_heads.leading_zeros());
    let lp = (p as f64).log2();
    // As in Python: base = 2 ** (-(2 ** -(log2(p) - 3))), held in f32, then f32 powers.
    let base = 2f64.powf(-(2f64.powf(-(lp - 3.0)))) as f32;
    let mut v: Vec<f32> = (1..=p).map(|k| pow_f32(base, k)).collect();
    if p != n_heads {
        let extra = 2f64.powf(-(2f64.powf(-(lp + 1.0 - 3.0)))) as f32;
        let rest = (n_heads - p).min(p);
        v.extend((0..rest).map(|i| pow_f32(extra, 2 * i + 1)));
    }
    v
}

/// `b^k` computed in f64 and rounded once to f32 (torch's f32 `pow` is correctly rounded for these
/// powers of two and their exact products).
fn pow_f32(b: f32, k: usize) -> f32 {
    f64::from(b).powi(k as i32) as f32
}

/// Regroups BLOOM's fused `query_key_value` rows from Hugging Face order (`[heads, 3, d]`, i.e. per
/// head its q, k and v rows) to `[3, heads, d]` (all q rows, then all k, then all v: llama.cpp's
/// `attn_qkv` order). `row_len` is the number of values per row (1 for the bias).
pub fn bloom_qkv_to_blocks(data: &[f32], n_heads: usize, row_len: usize) -> Vec<f32> {
    qkv_regroup(data, n_heads, row_len, true)
}

/// The inverse of [`bloom_qkv_to_blocks`]: `[3, heads, d]` rows back to `[heads, 3, d]`.
pub fn bloom_qkv_to_interleaved(data: &[f32], n_heads: usize, row_len: usize) -> Vec<f32> {
    qkv_regroup(data, n_heads, row_len, false)
}

fn qkv_regroup(data: &[f32], n_heads: usize, row_len: usize, to_blocks: bool) -> Vec<f32> {
    let rows = data.len() / row_len.max(1);
    let d = rows / (3 * n_heads.max(1));
    let mut out = vec![0f32; data.len()];
    for h in 0..n_heads {
        for part in 0..3 {
            for i in 0..d {
                let hf = (h * 3 + part) * d + i;
                let blk = (part * n_heads + h) * d + i;
                let (src, dst) = if to_blocks { (hf, blk) } else { (blk, hf) };
                out[dst * row_len..(dst + 1) * row_len]
                    .copy_from_slice(&data[src * row_len..(src + 1) * row_len]);
            }
        }
    }
    out
}

/// The GGUF name (llama.cpp's `bloom` tensor names) of a BLOOM Hugging Face tensor name, with or
/// without the `transformer.` prefix.
pub(crate) fn hf_to_gguf_name(name: &str) -> Option<String> {
    let name = name.strip_prefix("transformer.").unwrap_or(name);
    let fixed = match name {
        "word_embeddings.weight" => Some("token_embd.weight"),
        "word_embeddings_layernorm.weight" => Some("token_embd_norm.weight"),
        "word_embeddings_layernorm.bias" => Some("token_embd_norm.bias"),
        "ln_f.weight" => Some("output_norm.weight"),
        "ln_f.bias" => Some("output_norm.bias"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = name.strip_prefix("h.")?;
    let (layer, tail) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, kind) = tail.rsplit_once('.')?;
    let g = match module {
        "input_layernorm" => "attn_norm",
        "self_attention.query_key_value" => "attn_qkv",
        "self_attention.dense" => "attn_output",
        "post_attention_layernorm" => "ffn_norm",
        "mlp.dense_h_to_4h" => "ffn_up",
        "mlp.dense_4h_to_h" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{g}.{kind}"))
}

/// Every tensor name of a BLOOM checkpoint as `save_pretrained` writes it (`transformer.` prefix;
/// `lm_head.weight` only when untied).
pub(crate) fn hf_tensor_names(cfg: &ModelConfig) -> Vec<String> {
    let mut v = Vec::new();
    let wb = |v: &mut Vec<String>, p: &str| {
        v.push(format!("{p}.weight"));
        v.push(format!("{p}.bias"));
    };
    v.push("transformer.word_embeddings.weight".into());
    wb(&mut v, "transformer.word_embeddings_layernorm");
    for l in 0..cfg.n_layers {
        let p = format!("transformer.h.{l}");
        for m in [
            "input_layernorm",
            "self_attention.query_key_value",
            "self_attention.dense",
            "post_attention_layernorm",
            "mlp.dense_h_to_4h",
            "mlp.dense_4h_to_h",
        ] {
            wb(&mut v, &format!("{p}.{m}"));
        }
    }
    wb(&mut v, "transformer.ln_f");
    if !cfg.tie_embeddings {
        v.push("lm_head.weight".into());
    }
    v
}

/// The `config.json` of a BLOOM model (the keys `BloomConfig` reads).
pub(crate) fn hf_config_json(cfg: &ModelConfig) -> Value {
    let mut v = serde_json::json!({
        "architectures": ["BloomForCausalLM"],
        "model_type": "bloom",
        "hidden_size": cfg.hidden,
        "n_head": cfg.n_heads,
        "n_layer": cfg.n_layers,
        "vocab_size": cfg.vocab,
        "layer_norm_epsilon": cfg.rms_eps,
        "seq_length": cfg.max_position,
        "apply_residual_connection_post_layernorm": cfg.residual_post_norm,
        "tie_word_embeddings": cfg.tie_embeddings,
    });
    if let Some(b) = cfg.bos_token_id {
        v["bos_token_id"] = b.into();
    }
    if let Some(e) = cfg.eos_token_ids.first() {
        v["eos_token_id"] = (*e).into();
    }
    v
}

/// A BLOOM [`ModelConfig`] from the fields `BloomConfig` reads (`hidden_size` or the old
/// `n_embed`, `n_head`, `n_layer`, `layer_norm_epsilon`, `vocab_size`, ...).
pub(crate) fn config_from_hf(v: &Value, arch_name: &str, source: &str) -> Result<ModelConfig> {
    let first = |keys: &[&str]| -> Result<usize> {
        for k in keys {
            if let Some(x) = v.get(*k).filter(|x| !x.is_null()) {
                return x
                    .as_u64()
                    .map(|x| x as usize)
                    .ok_or_else(|| Error::config(source, *k, "not a non-negative integer"));
            }
        }
        Err(Error::config(source, keys[0], "missing"))
    };
    let hidden = first(&["hidden_size", "n_embed"])?;
    let n_heads = first(&["n_head", "num_attention_heads"])?;
    let n_layers = first(&["n_layer", "num_hidden_layers"])?;
    let vocab = first(&["vocab_size"])?;
    if n_heads == 0 || !hidden.is_multiple_of(n_heads) {
        return Err(Error::config(source, "n_head", "does not divide hidden_size"));
    }
    let eps = match v.get("layer_norm_epsilon") {
        Some(x) if !x.is_null() => {
            x.as_f64().ok_or_else(|| Error::config(source, "layer_norm_epsilon", "not a number"))?
                as f32
        }
        _ => 1e-5,
    };
    // `pretraining_tp` / `slow_but_exact` only change a summation order: ignored.
    if let Some(act) = v.get("hidden_act").and_then(Value::as_str)
        && !act.starts_with("gelu")
    {
        return Err(Error::UnsupportedArchitecture {
            arch: arch_name.to_string(),
            reason: format!("hidden_act `{act}` (BLOOM's MLP is GELU, tanh form)"),
        });
    }
    let cfg = ModelConfig {
        arch: Architecture::Bloom,
        n_layers,
        hidden,
        n_heads,
        n_kv_heads: n_heads,
        head_dim: hidden / n_heads,
        ffn: 4 * hidden,
        vocab,
        max_position: v
            .get("seq_length")
            .and_then(Value::as_u64)
            .map_or(BLOOM_DEFAULT_CONTEXT, |x| x as usize),
        rope_theta: 10_000.0,
        rope_scaling: RopeScaling::None,
        rms_eps: eps,
        tie_embeddings: v.get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(true),
        qkv_bias: true,
        sliding_window: None,
        bos_token_id: v.get("bos_token_id").and_then(Value::as_u64).map(|x| x as u32),
        eos_token_ids: v
            .get("eos_token_id")
            .and_then(Value::as_u64)
            .map(|x| vec![x as u32])
            .unwrap_or_default(),
        rope_freq_factors: None,
        residual_post_norm: v
            .get("apply_residual_connection_post_layernorm")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    cfg.validate(source)?;
    Ok(cfg)
}

/// A BLOOM [`ModelConfig`] from a `bloom` GGUF's metadata (llama.cpp's converter writes
/// `bloom.{context_length, embedding_length, feed_forward_length, block_count,
/// attention.head_count, attention.layer_norm_epsilon}`).
pub(crate) fn config_from_gguf(f: &GgufFile) -> Result<ModelConfig> {
    let src = f.path().display().to_string();
    let u = |k: &str| f.get_u64(&format!("bloom.{k}")).map(|x| x as usize);
    let hidden = u("embedding_length")?;
    let n_heads = u("attention.head_count")?;
    if n_heads == 0 || !hidden.is_multiple_of(n_heads) {
        return Err(Error::config(
            &src,
            "bloom.attention.head_count",
            "does not divide embedding_length",
        ));
    }
    if let Some(kv) = f.get("bloom.attention.head_count_kv").and_then(|v| v.as_u64())
        && kv as usize != n_heads
    {
        return Err(Error::config(
            &src,
            "bloom.attention.head_count_kv",
            format!("{kv} differs from head_count {n_heads}; BLOOM has no grouped-query attention"),
        ));
    }
    let ffn = u("feed_forward_length")?;
    if ffn != 4 * hidden {
        return Err(Error::config(
            &src,
            "bloom.feed_forward_length",
            format!("{ffn} is not 4 × embedding_length ({})", 4 * hidden),
        ));
    }
    let vocab = match f.get("bloom.vocab_size").and_then(|v| v.as_u64()) {
        Some(v) => v as usize,
        None => f
            .get("tokenizer.ggml.tokens")
            .and_then(|t| t.as_array())
            .map(<[_]>::len)
            .or_else(|| {
                f.tensor("token_embd.weight").map(|t| t.dims.get(1).copied().unwrap_or(0) as usize)
            })
            .ok_or_else(|| Error::config(&src, "bloom.vocab_size", "missing"))?,
    };
    let id = |key: &str| f.get(key).and_then(|v| v.as_u64()).map(|x| x as u32);
    let n_layers = u("block_count")?;
    crate::validate::check_block_count(f, "bloom.block_count", n_layers as u64)?;
    let cfg = ModelConfig {
        arch: Architecture::Bloom,
        n_layers,
        hidden,
        n_heads,
        n_kv_heads: n_heads,
        head_dim: hidden / n_heads,
        ffn,
        vocab,
        max_position: crate::validate::optional_u64(
            f,
            "bloom.context_length",
            BLOOM_DEFAULT_CONTEXT as u64,
        )? as usize,
        rope_theta: 10_000.0,
        rope_scaling: RopeScaling::None,
        rms_eps: f.get_f64("bloom.attention.layer_norm_epsilon")? as f32,
        tie_embeddings: f.tensor("output.weight").is_none(),
        qkv_bias: true,
        sliding_window: None,
        bos_token_id: id("tokenizer.ggml.bos_token_id"),
        eos_token_ids: id("tokenizer.ggml.eos_token_id").into_iter().collect(),
        rope_freq_factors: None,
        residual_post_norm: false,
    };
    cfg.validate(&src)?;
    Ok(cfg)
}

/// Parameter count of a BLOOM config.
pub(crate) fn n_params(c: &ModelConfig) -> usize {
    let h = c.hidden;
    let per_layer =
        2 * h + (3 * h * h + 3 * h) + (h * h + h) + 2 * h + (4 * h * h + 4 * h) + (4 * h * h + h);
    let head = if c.tie_embeddings { 0 } else { c.vocab * h };
    c.vocab * h + 2 * h + c.n_layers * per_layer + 2 * h + head
}

#[derive(Debug)]
struct Norm {
    w: Vec<f32>,
    b: Vec<f32>,
}

#[derive(Debug)]
struct Block {
    ln1: Norm,
    /// Rows `[q of all heads; k; v]`.
    qkv: Linear,
    dense: Linear,
    ln2: Norm,
    up: Linear,
    down: Linear,
}

/// BLOOM's weights besides the embedding table, `ln_f.weight` and the LM head (which live in
/// [`Model`]).
#[derive(Debug)]
pub(crate) struct BloomParts {
    emb_norm: Norm,
    blocks: Vec<Block>,
    final_norm: Norm,
    slopes: Vec<f32>,
}

/// Reads a tensor by its `transformer.`-prefixed name, or without the prefix (the original
/// `bigscience` checkpoints store `h.0...`, `word_embeddings.weight`).
/// Checks the weights for NaN and infinities when `check` is set ([`LoadOptions::check_finite`]).
fn fetch(src: &dyn WeightSource, name: &str, shape: &[usize], check: bool) -> Result<Vec<f32>> {
    let t = match src.tensor(name)? {
        Some(t) => Some(t),
        None => match name.strip_prefix("transformer.") {
            Some(bare) => src.tensor(bare)?,
            None => None,
        },
    };
    let t = t.ok_or_else(|| Error::MissingTensor {
        tensor: name.into(),
        source_name: src.source_name(),
    })?;
    if t.shape != shape {
        return Err(Error::ShapeMismatch {
            tensor: name.into(),
            expected: shape.to_vec(),
            found: t.shape,
        });
    }
    if check {
        crate::validate::check_finite(&src.source_name(), name, &t.data)?;
    }
    Ok(t.data)
}

/// Builds a BLOOM [`Model`].
pub(crate) fn load(src: &dyn WeightSource, cfg: ModelConfig, opts: LoadOptions) -> Result<Model> {
    let (h, nh, d) = (cfg.hidden, cfg.n_heads, cfg.head_dim);
    let (s, check) = (opts.scheme, opts.check_finite);
    let mat = |name: &str, r: usize, c: usize| -> Result<Array2<f32>> {
        Array2::from_shape_vec((r, c), fetch(src, name, &[r, c], check)?)
            .map_err(|e| Error::invalid(format!("{name}: {e}")))
    };
    let norm = |p: &str| -> Result<Norm> {
        Ok(Norm {
            w: fetch(src, &format!("{p}.weight"), &[h], check)?,
            b: fetch(src, &format!("{p}.bias"), &[h], check)?,
        })
    };
    let lin = |p: &str, out: usize, inp: usize| -> Result<Linear> {
        let w = mat(&format!("{p}.weight"), out, inp)?;
        let b = fetch(src, &format!("{p}.bias"), &[out], check)?;
        Linear::new(p, w, Some(b), s)
    };
    let mut embed = mat("transformer.word_embeddings.weight", cfg.vocab, h)?;
    if matches!(s, Scheme::Fp16 | Scheme::Bf16) {
        embed.mapv_inplace(|x| s.round(x));
    }
    let embed = Arc::new(embed);
    let emb_norm = norm("transformer.word_embeddings_layernorm")?;
    // Grown as layers load (a declared count is not trusted for an allocation).
    let mut blocks = Vec::new();
    for l in 0..cfg.n_layers {
        let p = format!("transformer.h.{l}");
        let qkv_name = format!("{p}.self_attention.query_key_value");
        let w = fetch(src, &format!("{qkv_name}.weight"), &[3 * h, h], check)?;
        let b = fetch(src, &format!("{qkv_name}.bias"), &[3 * h], check)?;
        let w = Array2::from_shape_vec((3 * h, h), bloom_qkv_to_blocks(&w, nh, h))
            .map_err(|e| Error::invalid(format!("{qkv_name}: {e}")))?;
        let qkv = Linear::new(qkv_name, w, Some(bloom_qkv_to_blocks(&b, nh, 1)), s)?;
        debug_assert_eq!(qkv.out_features(), 3 * nh * d);
        blocks.push(Block {
            ln1: norm(&format!("{p}.input_layernorm"))?,
            qkv,
            dense: lin(&format!("{p}.self_attention.dense"), h, h)?,
            ln2: norm(&format!("{p}.post_attention_layernorm"))?,
            up: lin(&format!("{p}.mlp.dense_h_to_4h"), cfg.ffn, h)?,
            down: lin(&format!("{p}.mlp.dense_4h_to_h"), h, cfg.ffn)?,
        });
    }
    let ln_f = norm("transformer.ln_f")?;
    let lm_head = build_lm_head(src, &cfg, &embed, opts)?;
    let parts =
        BloomParts { emb_norm, blocks, final_norm: ln_f, slopes: alibi_slopes(cfg.n_heads) };
    Ok(Model::from_bloom(cfg, opts, embed, lm_head, parts))
}

/// `y = (x − mean) / sqrt(var + eps) · w + b` per row (biased variance, as `torch.nn.LayerNorm`).
fn layer_norm(x: ArrayView2<'_, f32>, n: &Norm, eps: f32, mut y: ArrayViewMut2<'_, f32>) {
    for (xr, mut yr) in x.rows().into_iter().zip(y.rows_mut()) {
        let len = xr.len() as f32;
        let mean = xr.sum() / len;
        let var = xr.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / len;
        let inv = 1.0 / (var + eps).sqrt();
        for (((o, &v), &w), &b) in yr.iter_mut().zip(xr.iter()).zip(&n.w).zip(&n.b) {
            *o = (v - mean) * inv * w + b;
        }
    }
}

/// BLOOM's GELU (`bloom_gelu_forward`: the tanh form with its constant 0.79788456, written as
/// transformers writes it).
#[allow(clippy::excessive_precision)]
pub(crate) fn gelu(x: f32) -> f32 {
    x * 0.5 * (1.0 + (0.797_884_56 * x * (1.0 + 0.044_715 * x * x)).tanh())
}

impl BloomParts {
    /// Every projection, in layer order.
    pub(crate) fn linears(&self) -> impl Iterator<Item = &Linear> {
        self.blocks.iter().flat_map(|b| [&b.qkv, &b.dense, &b.up, &b.down])
    }

    /// [`Model::forward`] for BLOOM.
    pub(crate) fn forward<'s>(
        &self,
        model: &Model,
        tokens: &[&[u32]],
        caches: &mut [&mut KvCache],
        scratch: &'s mut Scratch,
    ) -> Result<ArrayViewMut2<'s, f32>> {
        let cfg = model.config();
        if tokens.len() != caches.len() {
            return Err(Error::invalid(format!(
                "{} token lists for {} caches",
                tokens.len(),
                caches.len()
            )));
        }
        if let Some(t) = tokens.iter().flat_map(|t| t.iter()).find(|&&t| t as usize >= cfg.vocab) {
            return Err(Error::invalid(format!(
                "token id {t} is outside the vocabulary ({})",
                cfg.vocab
            )));
        }
        let (h, d, nh, f, eps) = (cfg.hidden, cfg.head_dim, cfg.n_heads, cfg.ffn, cfg.rms_eps);
        let n: usize = tokens.iter().map(|t| t.len()).sum();
        let mut bases = Vec::with_capacity(tokens.len());
        for (t, c) in tokens.iter().zip(caches.iter_mut()) {
            c.reserve(c.len() + t.len());
            bases.push(c.len());
        }
        let embed = model.embed();
        let Scratch { x, xn, q, att, tmp, g, .. } = scratch;
        let mut x = view(buf(x, n * h), n, h)?;
        let mut xn = view(buf(xn, n * h), n, h)?;
        for (mut row, &t) in xn.rows_mut().into_iter().zip(tokens.iter().flat_map(|t| t.iter())) {
            row.assign(&embed.row(t as usize));
        }
        layer_norm(xn.view(), &self.emb_norm, eps, x.view_mut());
        let mut qkv = view(buf(q, n * 3 * h), n, 3 * h)?;
        let mut att = view(buf(att, n * h), n, h)?;
        let mut tmp = view(buf(tmp, n * h), n, h)?;
        let mut gb = view(buf(g, n * f), n, f)?;
        let geo = AttnGeometry {
            n_heads: nh,
            n_kv_heads: nh,
            head_dim: d,
            scale: 1.0 / (d as f32).sqrt(),
        };
        let post = cfg.residual_post_norm;
        for (li, b) in self.blocks.iter().enumerate() {
            layer_norm(x.view(), &b.ln1, eps, xn.view_mut());
            b.qkv.forward(xn.view(), qkv.view_mut())?;
            let mut r = 0;
            for (t, c) in tokens.iter().zip(caches.iter_mut()) {
                let base = c.len();
                for i in 0..t.len() {
                    let row = qkv.row(r + i);
                    let row = row.as_slice().ok_or_else(|| Error::invalid("qkv row layout"))?;
                    for hh in 0..nh {
                        let k = &row[h + hh * d..h + (hh + 1) * d];
                        let v = &row[2 * h + hh * d..2 * h + (hh + 1) * d];
                        c.write(li, base + i, hh, k, v);
                    }
                }
                r += t.len();
            }
            let ro: Vec<&KvCache> = caches.iter().map(|c| &**c).collect();
            let qv = qkv.slice(ndarray::s![.., 0..h]);
            attention(qv, att.view_mut(), tokens, &bases, &ro, li, geo, None, Some(&self.slopes));
            b.dense.forward(att.view(), tmp.view_mut())?;
            residual(&mut x, &xn, &tmp, post);
            layer_norm(x.view(), &b.ln2, eps, xn.view_mut());
            b.up.forward(xn.view(), gb.view_mut())?;
            gb.mapv_inplace(gelu);
            b.down.forward(gb.view(), tmp.view_mut())?;
            residual(&mut x, &xn, &tmp, post);
        }
        for (t, c) in tokens.iter().zip(caches.iter_mut()) {
            c.advance(t.len());
        }
        layer_norm(x.view(), &self.final_norm, eps, xn.view_mut());
        Ok(xn)
    }
}

/// `x ← (post ? xn : x) + y`.
fn residual(
    x: &mut ArrayViewMut2<'_, f32>,
    xn: &ArrayViewMut2<'_, f32>,
    y: &ArrayViewMut2<'_, f32>,
    post: bool,
) {
    if post {
        Zip::from(x.view_mut()).and(xn.view()).and(y.view()).for_each(|o, &a, &b| *o = a + b);
    } else {
        *x += &y.view();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn alibi_slopes_match_the_closed_forms() {
        // Power of two: 2^(-8k/n). The base is held in f32 as in transformers (2^-0.25 rounded),
        // so its powers carry k times its rounding error (0.25000003 for k = 8).
        let s32 = alibi_slopes(32);
        for (k, s) in s32.iter().enumerate() {
            let want = 2f64.powf(-8.0 * (k + 1) as f64 / 32.0);
            assert!(
                (f64::from(*s) - want).abs() <= want * 3e-7 * (k + 1) as f64,
                "{k}: {s} vs {want}"
            );
        }
        // 12 heads: 8 from the 8-head series, then the odd powers of the 16-head series.
        let s12 = alibi_slopes(12);
        let want: Vec<f64> = (1..=8)
            .map(|k| 2f64.powf(-(k as f64)))
            .chain([1, 3, 5, 7].map(|k| 2f64.powf(-(k as f64) / 2.0)))
            .collect();
        for (a, b) in s12.iter().zip(&want) {
            assert!((f64::from(*a) - b).abs() <= b * 1e-6, "{a} vs {b}");
        }
        assert_eq!(alibi_slopes(1), vec![2f32.powi(-8)]);
        assert!(alibi_slopes(0).is_empty());
        assert_eq!(alibi_slopes(112).len(), 112);
    }

    #[test]
    fn qkv_regrouping_round_trips_and_puts_q_first() {
        // 2 heads of d = 2, rows of length 1: HF rows are [q0 q0 k0 k0 v0 v0 q1 q1 k1 k1 v1 v1].
        let hf: Vec<f32> = (0..12).map(|x| x as f32).collect();
        let b = bloom_qkv_to_blocks(&hf, 2, 1);
        assert_eq!(b, vec![0., 1., 6., 7., 2., 3., 8., 9., 4., 5., 10., 11.]);
        assert_eq!(bloom_qkv_to_interleaved(&b, 2, 1), hf);
        let w: Vec<f32> = (0..36).map(|x| x as f32).collect();
        assert_eq!(bloom_qkv_to_interleaved(&bloom_qkv_to_blocks(&w, 2, 3), 2, 3), w);
    }

    #[test]
    fn names_map_to_llama_cpp() {
        for (hf, g) in [
            ("transformer.word_embeddings.weight", "token_embd.weight"),
            ("word_embeddings_layernorm.bias", "token_embd_norm.bias"),
            ("transformer.h.3.self_attention.query_key_value.weight", "blk.3.attn_qkv.weight"),
            ("h.0.self_attention.dense.bias", "blk.0.attn_output.bias"),
            ("transformer.h.29.mlp.dense_4h_to_h.weight", "blk.29.ffn_down.weight"),
            ("transformer.h.1.post_attention_layernorm.weight", "blk.1.ffn_norm.weight"),
            ("transformer.ln_f.bias", "output_norm.bias"),
        ] {
            assert_eq!(hf_to_gguf_name(hf).as_deref(), Some(g), "{hf}");
        }
        assert_eq!(hf_to_gguf_name("transformer.h.x.mlp.dense_h_to_4h.weight"), None);
    }

    #[test]
    #[allow(clippy::excessive_precision)]
    fn gelu_is_the_tanh_form() {
        assert_eq!(gelu(0.0), 0.0);
        let x = 1.3f32;
        let want = 0.5 * x * (1.0 + (0.797_884_56f32 * (x + 0.044_715 * x * x * x)).tanh());
        assert!((gelu(x) - want).abs() < 1e-6);
        assert!(gelu(-10.0).abs() < 1e-6 && (gelu(10.0) - 10.0).abs() < 1e-5);
    }
}
