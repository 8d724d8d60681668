//! The decoder: weights, KV cache and the CPU f32 forward pass.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis, linalg::general_mat_mul, s};
use rayon::prelude::*;

use crate::config::{Architecture, ModelConfig};
use crate::error::{Error, Result};
use crate::linear::{Linear, Scheme, dot};
use crate::source::WeightSource;

/// How to build a [`Model`] from f32 weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Scheme of every projection inside the decoder layers.
    pub scheme: Scheme,
    /// Scheme of the LM head. `None`: the same as `scheme` for float schemes, FP32 for int8
    /// schemes (the LM head is commonly left unquantized, as compressed-tensors' `ignore:
    /// ["lm_head"]` does).
    pub lm_head_scheme: Option<Scheme>,
    /// Check every weight for NaN and infinities as it is loaded (default on; one pass over
    /// the weights, a small fraction of the load time): a non-finite weight is an error naming
    /// the tensor, never a run of NaN scores.
    pub check_finite: bool,
}

impl LoadOptions {
    /// Options for one scheme with the default LM-head rule.
    pub fn new(scheme: Scheme) -> Self {
        LoadOptions { scheme, lm_head_scheme: None, check_finite: true }
    }

    /// Overrides the LM head's scheme.
    pub fn lm_head_scheme(mut self, s: Scheme) -> Self {
        self.lm_head_scheme = Some(s);
        self
    }

    /// Turns the finite-weight check off (it is on by default).
    pub fn check_finite(mut self, on: bool) -> Self {
        self.check_finite = on;
        self
    }

    pub(crate) fn head(&self) -> Scheme {
        self.lm_head_scheme.unwrap_or(match self.scheme {
            Scheme::W8A8 | Scheme::W8A16 => Scheme::Fp32,
            s => s,
        })
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self::new(Scheme::Fp32)
    }
}

#[derive(Debug)]
struct Layer {
    attn_norm: Vec<f32>,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ffn_norm: Vec<f32>,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// A loaded Llama-family decoder.
#[derive(Debug)]
pub struct Model {
    cfg: ModelConfig,
    opts: LoadOptions,
    embed: Arc<Array2<f32>>,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    lm_head: Linear,
    inv_freq: Vec<f32>,
    rope_cos: Vec<f32>,
    rope_sin: Vec<f32>,
    rope_len: usize,
    /// BLOOM's blocks and norms (then `layers` and `norm` are empty).
    bloom: Option<Box<crate::bloom::BloomParts>>,
}

/// Keys and values of past positions for one sequence (post-rope), `[layer][kv_head][pos][dim]`.
#[derive(Clone, Debug)]
pub struct KvCache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    n_kv: usize,
    d: usize,
    cap: usize,
    len: usize,
}

impl KvCache {
    /// An empty cache shaped for `cfg`.
    pub fn new(cfg: &ModelConfig) -> Self {
        KvCache {
            k: vec![Vec::new(); cfg.n_layers],
            v: vec![Vec::new(); cfg.n_layers],
            n_kv: cfg.n_kv_heads,
            d: cfg.head_dim,
            cap: 0,
            len: 0,
        }
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every position (keeps the memory).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Keeps only the first `len` positions.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Makes room for `total` positions (amortised doubling).
    pub fn reserve(&mut self, total: usize) {
        if total <= self.cap {
            return;
        }
        let new_cap = total.max(self.cap * 2).max(16);
        let (n_kv, d, old_cap, len) = (self.n_kv, self.d, self.cap, self.len);
        for buf in self.k.iter_mut().chain(self.v.iter_mut()) {
            let mut nb = vec![0f32; n_kv * new_cap * d];
            for h in 0..n_kv {
                let src = &buf[h * old_cap * d..h * old_cap * d + len * d];
                nb[h * new_cap * d..h * new_cap * d + len * d].copy_from_slice(src);
            }
            *buf = nb;
        }
        self.cap = new_cap;
    }

    /// Makes this cache a copy of `other`'s positions (reusing this cache's memory), with room
    /// for `extra` more.
    pub(crate) fn copy_from(&mut self, other: &KvCache, extra: usize) {
        self.len = 0;
        self.reserve(other.len + extra);
        let (d, n) = (self.d, other.len * other.d);
        for (dst, src) in
            self.k.iter_mut().chain(self.v.iter_mut()).zip(other.k.iter().chain(&other.v))
        {
            for h in 0..self.n_kv.min(other.n_kv) {
                let (a, b) = (h * self.cap * d, h * other.cap * other.d);
                dst[a..a + n].copy_from_slice(&src[b..b + n]);
            }
        }
        self.len = other.len;
    }

    /// Stores the key and value of `kv_head` at position `pos` of `layer` (room must be reserved).
    pub(crate) fn write(&mut self, layer: usize, pos: usize, kv_head: usize, k: &[f32], v: &[f32]) {
        let dst = kv_head * self.cap * self.d + pos * self.d;
        self.k[layer][dst..dst + self.d].copy_from_slice(k);
        self.v[layer][dst..dst + self.d].copy_from_slice(v);
    }

    /// Marks `n` more positions as cached (after every layer wrote them).
    pub(crate) fn advance(&mut self, n: usize) {
        self.len += n;
    }

    pub(crate) fn head(&self, layer: usize, h: usize, n: usize) -> (&[f32], &[f32]) {
        let base = h * self.cap * self.d;
        (&self.k[layer][base..base + n * self.d], &self.v[layer][base..base + n * self.d])
    }
}

/// Reusable buffers for [`Model::forward`]; grows to the largest batch seen, never shrinks.
#[derive(Debug, Default)]
pub struct Scratch {
    pub(crate) x: Vec<f32>,
    pub(crate) xn: Vec<f32>,
    pub(crate) q: Vec<f32>,
    pub(crate) k: Vec<f32>,
    pub(crate) v: Vec<f32>,
    pub(crate) att: Vec<f32>,
    pub(crate) tmp: Vec<f32>,
    pub(crate) g: Vec<f32>,
    pub(crate) u: Vec<f32>,
}

pub(crate) fn buf(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

pub(crate) fn view(v: &mut [f32], rows: usize, cols: usize) -> Result<ArrayViewMut2<'_, f32>> {
    ArrayViewMut2::from_shape((rows, cols), v)
        .map_err(|e| Error::invalid(format!("scratch view: {e}")))
}

const ROPE_TABLE_MAX: usize = 16_384;

impl Model {
    /// Builds the model from `src` according to `cfg`, converting weights to `opts.scheme`.
    ///
    /// # Errors
    /// [`Error::MissingTensor`] / [`Error::ShapeMismatch`] when the weights do not match `cfg`;
    /// [`Error::Quant`] when int8 quantization fails.
    pub fn load(src: &dyn WeightSource, cfg: ModelConfig, opts: LoadOptions) -> Result<Self> {
        cfg.validate(&src.source_name())?;
        if cfg.arch == Architecture::Bloom {
            return crate::bloom::load(src, cfg, opts);
        }
        let name = src.source_name();
        let get = |t: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let ten = src.tensor(t)?.ok_or_else(|| Error::MissingTensor {
                tensor: t.into(),
                source_name: name.clone(),
            })?;
            if ten.shape != shape {
                return Err(Error::ShapeMismatch {
                    tensor: t.into(),
                    expected: shape.to_vec(),
                    found: ten.shape,
                });
            }
            if opts.check_finite {
                crate::validate::check_finite(&name, t, &ten.data)?;
            }
            Ok(ten.data)
        };
        let mat = |t: &str, r: usize, c: usize| -> Result<Array2<f32>> {
            let v = get(t, &[r, c])?;
            Array2::from_shape_vec((r, c), v).map_err(|e| Error::invalid(format!("{t}: {e}")))
        };
        let (h, d, nh, nkv, f) = (cfg.hidden, cfg.head_dim, cfg.n_heads, cfg.n_kv_heads, cfg.ffn);
        let s = opts.scheme;
        let round = |v: Vec<f32>| -> Vec<f32> { v };
        let mut embed = mat("model.embed_tokens.weight", cfg.vocab, h)?;
        if matches!(s, Scheme::Fp16 | Scheme::Bf16) {
            embed.mapv_inplace(|x| s.round(x));
        }
        let embed = Arc::new(embed);
        // Grown as layers load (a declared count is not trusted for an allocation).
        let mut layers = Vec::new();
        for l in 0..cfg.n_layers {
            let p = format!("model.layers.{l}");
            let lin = |m: &str, out: usize, inp: usize, bias: bool| -> Result<Linear> {
                let w = mat(&format!("{p}.{m}.weight"), out, inp)?;
                let b = if bias { Some(get(&format!("{p}.{m}.bias"), &[out])?) } else { None };
                Linear::new(format!("{p}.{m}"), w, b, s)
            };
            let qb = cfg.qkv_bias;
            layers.push(Layer {
                attn_norm: round(get(&format!("{p}.input_layernorm.weight"), &[h])?),
                q: lin("self_attn.q_proj", nh * d, h, qb)?,
                k: lin("self_attn.k_proj", nkv * d, h, qb)?,
                v: lin("self_attn.v_proj", nkv * d, h, qb)?,
                o: lin("self_attn.o_proj", h, nh * d, false)?,
                ffn_norm: round(get(&format!("{p}.post_attention_layernorm.weight"), &[h])?),
                gate: lin("mlp.gate_proj", f, h, false)?,
                up: lin("mlp.up_proj", f, h, false)?,
                down: lin("mlp.down_proj", h, f, false)?,
            });
        }
        let norm = get("model.norm.weight", &[h])?;
        let lm_head = build_lm_head(src, &cfg, &embed, opts)?;
        let inv_freq = cfg.rope_inv_freq();
        let rope_len = cfg.max_position.clamp(1, ROPE_TABLE_MAX);
        let half = d / 2;
        let mut rope_cos = vec![0f32; rope_len * half];
        let mut rope_sin = vec![0f32; rope_len * half];
        for p in 0..rope_len {
            for (i, fr) in inv_freq.iter().enumerate() {
                let a = p as f32 * fr;
                rope_cos[p * half + i] = a.cos();
                rope_sin[p * half + i] = a.sin();
            }
        }
        Ok(Model {
            cfg,
            opts,
            embed,
            layers,
            norm,
            lm_head,
            inv_freq,
            rope_cos,
            rope_sin,
            rope_len,
            bloom: None,
        })
    }

    /// A BLOOM model from its parts (no rope tables, no Llama layers).
    pub(crate) fn from_bloom(
        cfg: ModelConfig,
        opts: LoadOptions,
        embed: Arc<Array2<f32>>,
        lm_head: Linear,
        parts: crate::bloom::BloomParts,
    ) -> Self {
        Model {
            cfg,
            opts,
            embed,
            layers: Vec::new(),
            norm: Vec::new(),
            lm_head,
            inv_freq: Vec::new(),
            rope_cos: Vec::new(),
            rope_sin: Vec::new(),
            rope_len: 0,
            bloom: Some(Box::new(parts)),
        }
    }

    /// The embedding table.
    pub(crate) fn embed(&self) -> &Array2<f32> {
        &self.embed
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The scheme of the decoder projections.
    pub fn scheme(&self) -> Scheme {
        self.opts.scheme
    }

    /// `(layer name, scheme)` for every linear layer, LM head last.
    pub fn layer_schemes(&self) -> Vec<(String, Scheme)> {
        let mut v = Vec::new();
        for l in &self.layers {
            for lin in [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down] {
                v.push((lin.name().to_string(), lin.scheme()));
            }
        }
        for lin in self.bloom.iter().flat_map(|b| b.linears()) {
            v.push((lin.name().to_string(), lin.scheme()));
        }
        v.push((self.lm_head.name().to_string(), self.lm_head.scheme()));
        v
    }

    /// Bytes of all weights in their schemes' native storage (embedding counted once).
    pub fn weight_bytes(&self) -> usize {
        let lin: usize = self
            .layers
            .iter()
            .flat_map(|l| [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down])
            .chain(self.bloom.iter().flat_map(|b| b.linears()))
            .map(Linear::weight_bytes)
            .sum();
        let emb = self.embed.len()
            * if matches!(self.opts.scheme, Scheme::Fp16 | Scheme::Bf16) { 2 } else { 4 };
        let head = if self.cfg.tie_embeddings { 0 } else { self.lm_head.weight_bytes() };
        lin + emb + head
    }

    /// Runs the decoder over a batch of sequences and returns the final-norm hidden states of
    /// every new token, packed in order `[Σ tokens, hidden]`. Each sequence continues its own
    /// cache (positions start at `cache.len()`), and the caches are extended.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for token ids outside the vocabulary or mismatched arguments.
    pub fn forward<'s>(
        &self,
        tokens: &[&[u32]],
        caches: &mut [&mut KvCache],
        scratch: &'s mut Scratch,
    ) -> Result<ArrayViewMut2<'s, f32>> {
        if let Some(b) = &self.bloom {
            return b.forward(self, tokens, caches, scratch);
        }
        if tokens.len() != caches.len() {
            return Err(Error::invalid(format!(
                "{} token lists for {} caches",
                tokens.len(),
                caches.len()
            )));
        }
        let cfg = &self.cfg;
        let (h, d, nh, nkv, f) = (cfg.hidden, cfg.head_dim, cfg.n_heads, cfg.n_kv_heads, cfg.ffn);
        let n: usize = tokens.iter().map(|t| t.len()).sum();
        for t in tokens.iter().flat_map(|t| t.iter()) {
            if *t as usize >= cfg.vocab {
                return Err(Error::invalid(format!(
                    "token id {t} is outside the vocabulary ({})",
                    cfg.vocab
                )));
            }
        }
        let mut positions = Vec::with_capacity(n);
        let mut bases = Vec::with_capacity(tokens.len());
        for (t, c) in tokens.iter().zip(caches.iter_mut()) {
            c.reserve(c.len + t.len());
            bases.push(c.len);
            positions.extend((0..t.len()).map(|i| c.len + i));
        }
        let Scratch { x, xn, q, k, v, att, tmp, g, u } = scratch;
        let mut x = view(buf(x, n * h), n, h)?;
        for (mut row, &t) in x.rows_mut().into_iter().zip(tokens.iter().flat_map(|t| t.iter())) {
            row.assign(&self.embed.row(t as usize));
        }
        let mut xn = view(buf(xn, n * h), n, h)?;
        let mut qb = view(buf(q, n * nh * d), n, nh * d)?;
        let mut kb = view(buf(k, n * nkv * d), n, nkv * d)?;
        let mut vb = view(buf(v, n * nkv * d), n, nkv * d)?;
        let mut att = view(buf(att, n * nh * d), n, nh * d)?;
        let mut tmp = view(buf(tmp, n * h), n, h)?;
        let mut gb = view(buf(g, n * f), n, f)?;
        let mut ub = view(buf(u, n * f), n, f)?;
        let scale = 1.0 / (d as f32).sqrt();
        for (li, layer) in self.layers.iter().enumerate() {
            rmsnorm(x.view(), &layer.attn_norm, cfg.rms_eps, xn.view_mut());
            layer.q.forward(xn.view(), qb.view_mut())?;
            layer.k.forward(xn.view(), kb.view_mut())?;
            layer.v.forward(xn.view(), vb.view_mut())?;
            self.rope(qb.view_mut(), &positions, nh);
            self.rope(kb.view_mut(), &positions, nkv);
            // Append K/V to each sequence's cache.
            let mut r = 0;
            for (t, c) in tokens.iter().zip(caches.iter_mut()) {
                let base = c.len;
                let cap = c.cap;
                for i in 0..t.len() {
                    let krow = kb.row(r + i);
                    let vrow = vb.row(r + i);
                    for hh in 0..nkv {
                        let dst = hh * cap * d + (base + i) * d;
                        for (o, s) in c.k[li][dst..dst + d]
                            .iter_mut()
                            .zip(krow.slice(s![hh * d..(hh + 1) * d]))
                        {
                            *o = *s;
                        }
                        for (o, s) in c.v[li][dst..dst + d]
                            .iter_mut()
                            .zip(vrow.slice(s![hh * d..(hh + 1) * d]))
                        {
                            *o = *s;
                        }
                    }
                }
                r += t.len();
            }
            // Attention, parallel over (sequence, head).
            let caches_ro: Vec<&KvCache> = caches.iter().map(|c| &**c).collect();
            let geo = AttnGeometry { n_heads: nh, n_kv_heads: nkv, head_dim: d, scale };
            attention(
                qb.view(),
                att.view_mut(),
                tokens,
                &bases,
                &caches_ro,
                li,
                geo,
                cfg.sliding_window,
                None,
            );
            layer.o.forward(att.view(), tmp.view_mut())?;
            x += &tmp;
            rmsnorm(x.view(), &layer.ffn_norm, cfg.rms_eps, xn.view_mut());
            layer.gate.forward(xn.view(), gb.view_mut())?;
            layer.up.forward(xn.view(), ub.view_mut())?;
            gb.zip_mut_with(&ub, |g, &u| *g = *g / (1.0 + (-*g).exp()) * u);
            layer.down.forward(gb.view(), tmp.view_mut())?;
            x += &tmp;
        }
        for (t, c) in tokens.iter().zip(caches.iter_mut()) {
            c.len += t.len();
        }
        rmsnorm(x.view(), &self.norm, cfg.rms_eps, xn.view_mut());
        Ok(xn)
    }

    /// LM-head logits `[rows, vocab]` for final-norm hidden states.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `hidden` is not `[_, hidden_size]`.
    pub fn logits(&self, hidden: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let mut out = Array2::zeros((hidden.nrows(), self.cfg.vocab));
        self.lm_head.forward(hidden, out.view_mut())?;
        Ok(out)
    }

    /// Convenience: logits at every position of one sequence from scratch.
    ///
    /// # Errors
    /// As [`Model::forward`].
    pub fn logits_for(&self, tokens: &[u32]) -> Result<Array2<f32>> {
        let mut cache = KvCache::new(&self.cfg);
        let mut scratch = Scratch::default();
        let hidden = self.forward(&[tokens], &mut [&mut cache], &mut scratch)?;
        self.logits(hidden.view())
    }

    fn rope(&self, mut x: ArrayViewMut2<'_, f32>, positions: &[usize], heads: usize) {
        let d = self.cfg.head_dim;
        let half = d / 2;
        let mut cs = vec![0f32; half];
        let mut sn = vec![0f32; half];
        for (mut row, &p) in x.rows_mut().into_iter().zip(positions) {
            let (c, s): (&[f32], &[f32]) = if p < self.rope_len {
                (&self.rope_cos[p * half..(p + 1) * half], &self.rope_sin[p * half..(p + 1) * half])
            } else {
                for (i, fr) in self.inv_freq.iter().enumerate() {
                    let a = p as f32 * fr;
                    cs[i] = a.cos();
                    sn[i] = a.sin();
                }
                (&cs, &sn)
            };
            let Some(r) = row.as_slice_mut() else { continue };
            for hh in 0..heads {
                let hd = &mut r[hh * d..(hh + 1) * d];
                let (a, b) = hd.split_at_mut(half);
                for i in 0..half {
                    let (x0, x1) = (a[i], b[i]);
                    a[i] = x0 * c[i] - x1 * s[i];
                    b[i] = x0 * s[i] + x1 * c[i];
                }
            }
        }
    }
}

/// The LM head: `lm_head.weight` for untied models, else the (shared) embedding table, in the
/// head's scheme ([`LoadOptions::lm_head_scheme`]).
pub(crate) fn build_lm_head(
    src: &dyn WeightSource,
    cfg: &ModelConfig,
    embed: &Arc<Array2<f32>>,
    opts: LoadOptions,
) -> Result<Linear> {
    let (h, s, head_scheme) = (cfg.hidden, opts.scheme, opts.head());
    Ok(match src.tensor("lm_head.weight")? {
        Some(t) if !cfg.tie_embeddings => {
            if t.shape != [cfg.vocab, h] {
                return Err(Error::ShapeMismatch {
                    tensor: "lm_head.weight".into(),
                    expected: vec![cfg.vocab, h],
                    found: t.shape,
                });
            }
            if opts.check_finite {
                crate::validate::check_finite(&src.source_name(), "lm_head.weight", &t.data)?;
            }
            let w = Array2::from_shape_vec((cfg.vocab, h), t.data)
                .map_err(|e| Error::invalid(e.to_string()))?;
            Linear::new("lm_head", w, None, head_scheme)?
        }
        None if !cfg.tie_embeddings => {
            return Err(Error::MissingTensor {
                tensor: "lm_head.weight".into(),
                source_name: src.source_name(),
            });
        }
        _ => {
            if head_scheme == s
                || head_scheme == Scheme::Fp32 && !matches!(s, Scheme::Fp16 | Scheme::Bf16)
            {
                Linear::from_shared("lm_head", embed.clone(), None, head_scheme)?
            } else {
                Linear::new("lm_head", (**embed).clone(), None, head_scheme)?
            }
        }
    })
}

/// `y = w · x / sqrt(mean(x²) + eps)` per row.
fn rmsnorm(x: ArrayView2<'_, f32>, w: &[f32], eps: f32, mut y: ArrayViewMut2<'_, f32>) {
    for (xr, mut yr) in x.rows().into_iter().zip(y.rows_mut()) {
        let ss: f32 = xr.iter().map(|v| v * v).sum();
        let inv = 1.0 / (ss / xr.len() as f32 + eps).sqrt();
        for ((o, &v), &ww) in yr.iter_mut().zip(xr.iter()).zip(w) {
            *o = ww * (v * inv);
        }
    }
}

/// Head counts and scale of one attention layer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttnGeometry {
    pub(crate) n_heads: usize,
    pub(crate) n_kv_heads: usize,
    pub(crate) head_dim: usize,
    pub(crate) scale: f32,
}

/// Causal attention of a packed batch, parallel over (sequence, head): the queries `q`
/// (`[Σ t, n_heads·head_dim]`, any row stride) attend over each sequence's cache of layer `li`
/// (which already holds the new positions); results go to `att`. `alibi` gives one slope per
/// head (BLOOM).
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention(
    q: ArrayView2<'_, f32>,
    att: ArrayViewMut2<'_, f32>,
    tokens: &[&[u32]],
    bases: &[usize],
    caches: &[&KvCache],
    li: usize,
    geo: AttnGeometry,
    window: Option<usize>,
    alibi: Option<&[f32]>,
) {
    let AttnGeometry { n_heads: nh, n_kv_heads: nkv, head_dim: d, scale } = geo;
    let mut jobs = Vec::new();
    let mut rest = att;
    let mut r = 0;
    for (si, t) in tokens.iter().enumerate() {
        let (block, tail) = rest.split_at(Axis(0), t.len());
        rest = tail;
        let mut cols = block;
        for hh in 0..nh {
            let (out, more) = cols.split_at(Axis(1), d);
            jobs.push((si, hh, r, out));
            cols = more;
        }
        r += t.len();
    }
    let group = nh / nkv.max(1);
    jobs.into_par_iter().for_each(|(si, hh, r0, out)| {
        let t = tokens[si].len();
        let base = bases[si];
        let (kc, vc) = caches[si].head(li, hh / group, base + t);
        let qh = q.slice(s![r0..r0 + t, hh * d..(hh + 1) * d]);
        let slope = alibi.and_then(|a| a.get(hh).copied());
        attend(qh, kc, vc, d, base, scale, window, slope, out);
    });
}

/// Causal attention of `t` queries (positions `base..base+t`) over `base+t` cached keys. With
/// `alibi = Some(slope)` the score of key `j` for the query at position `p` gains
/// `slope · (j − p)` (BLOOM; the same softmax as `slope · j`, with smaller magnitudes).
#[allow(clippy::too_many_arguments)]
pub(crate) fn attend(
    q: ArrayView2<'_, f32>,
    kc: &[f32],
    vc: &[f32],
    d: usize,
    base: usize,
    scale: f32,
    window: Option<usize>,
    alibi: Option<f32>,
    mut out: ArrayViewMut2<'_, f32>,
) {
    let t = q.nrows();
    let n_keys = base + t;
    let visible = |i: usize, j: usize| -> bool {
        let p = base + i;
        j <= p && window.is_none_or(|w| p - j < w)
    };
    if t <= 4 {
        let mut sc = vec![0f32; n_keys];
        let mut acc = vec![0f32; d];
        for i in 0..t {
            let qi = q.row(i).to_vec();
            let mut mx = f32::NEG_INFINITY;
            for j in 0..n_keys {
                sc[j] = if visible(i, j) {
                    let s = dot(&qi, &kc[j * d..(j + 1) * d]) * scale;
                    match alibi {
                        Some(m) => s + m * (j as f32 - (base + i) as f32),
                        None => s,
                    }
                } else {
                    f32::NEG_INFINITY
                };
                mx = mx.max(sc[j]);
            }
            let mut sum = 0f32;
            for s in sc.iter_mut() {
                *s = (*s - mx).exp();
                sum += *s;
            }
            acc.iter_mut().for_each(|a| *a = 0.0);
            for (j, &p) in sc.iter().enumerate() {
                if p != 0.0 {
                    for (a, vv) in acc.iter_mut().zip(&vc[j * d..(j + 1) * d]) {
                        *a += p * vv;
                    }
                }
            }
            for (o, a) in out.row_mut(i).iter_mut().zip(&acc) {
                *o = a / sum;
            }
        }
        return;
    }
    let (Ok(k), Ok(v)) =
        (ArrayView2::from_shape((n_keys, d), kc), ArrayView2::from_shape((n_keys, d), vc))
    else {
        return;
    };
    let mut sc = Array2::<f32>::zeros((t, n_keys));
    general_mat_mul(scale, &q, &k.t(), 0.0, &mut sc);
    for (i, mut row) in sc.rows_mut().into_iter().enumerate() {
        let mut mx = f32::NEG_INFINITY;
        for (j, s) in row.iter_mut().enumerate() {
            if !visible(i, j) {
                *s = f32::NEG_INFINITY;
            } else if let Some(m) = alibi {
                *s += m * (j as f32 - (base + i) as f32);
            }
            mx = mx.max(*s);
        }
        let mut sum = 0f32;
        for s in row.iter_mut() {
            *s = (*s - mx).exp();
            sum += *s;
        }
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|s| *s *= inv);
    }
    general_mat_mul(1.0, &sc, &v, 0.0, &mut out);
}
