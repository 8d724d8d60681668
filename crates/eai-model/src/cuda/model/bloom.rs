//! BLOOM (`BloomForCausalLM`, Bloomz-7B1) on the GPU: the weights besides those a Llama block
//! shares with it, and the block loop of the forward pass.
//!
//! A BLOOM block reuses the decoder's machinery — the four GEMMs of every scheme (the fused
//! `query_key_value` regrouped to `[q of all heads; k; v]` as on the CPU, so the qkv GEMM and the
//! KV layout are the Llama ones), the KV cache, the scoring attention with shared prefixes, the
//! decode GEMVs, CUDA-graph decode and the LM head — and swaps the rest:
//! - **LayerNorm with bias** (`layernorm_*`, fused with per-token int8 quantization for W8A8) for
//!   the word-embeddings norm, both block norms and `ln_f`;
//! - **no rope**: `bias_kv` adds the q/k/v bias and writes k and v to the cache;
//! - **ALiBi**: the attention kernels add `slope[head] · (j − pos)` to the score of key `j`
//!   (slopes exactly as BLOOM's `build_alibi_tensor`, [`crate::alibi_slopes`]);
//! - **GELU (tanh form)** with the up projection's bias (`gelu_*`, int8-fused for W8A8);
//! - **biases** of the o and down projections added after the GEMM's fused residual add;
//! - tied input/output embeddings (the LM head reads the embedding table, as for tied Llamas).
//!
//! The fused decode kernels (RMSNorm folded into the GEMV loads, rope in the epilogue) are
//! Llama-specific; BLOOM's generation passes take the unfused path with the decode GEMVs (and
//! CUDA graphs) instead.

use cudarc::driver::{CudaSlice, DevicePtr, LaunchConfig, PushKernelArg};

use super::forward::{Out, Source};
use super::load::{Loader, Tensor};
use super::{GpuLayer, GpuModel, GpuScheme, Scratch, grid, rows_cfg};
use crate::config::{Architecture, ModelConfig};
use crate::cuda::error::{GpuError, Result};

/// BLOOM's tensors that a Llama block does not have (LayerNorm biases, projection biases, the
/// word-embeddings norm, `ln_f`'s bias) and the ALiBi slopes. The LayerNorm weights, the
/// projections and the q/k/v bias live in the model's [`GpuLayer`]s.
#[derive(Debug)]
pub(super) struct BloomGpu {
    emb_norm_w: CudaSlice<f32>,
    emb_norm_b: CudaSlice<f32>,
    /// `ln_f.bias` (its weight is the model's final norm).
    final_b: CudaSlice<f32>,
    layers: Vec<BloomLayer>,
    slopes: CudaSlice<f32>,
}

#[derive(Debug)]
struct BloomLayer {
    ln1_b: CudaSlice<f32>,
    o_b: CudaSlice<f32>,
    ln2_b: CudaSlice<f32>,
    up_b: CudaSlice<f32>,
    down_b: CudaSlice<f32>,
}

/// Whether `cfg` is a BLOOM model (the GPU loader's hooks ask).
pub(super) fn is_bloom(cfg: &ModelConfig) -> bool {
    cfg.arch == Architecture::Bloom
}

/// The word-embedding table's tensor name.
pub(super) fn embed_name(cfg: &ModelConfig) -> &'static str {
    if is_bloom(cfg) { "transformer.word_embeddings.weight" } else { "model.embed_tokens.weight" }
}

/// The final norm's weight name.
pub(super) fn final_norm_name(cfg: &ModelConfig) -> &'static str {
    if is_bloom(cfg) { "transformer.ln_f.weight" } else { "model.norm.weight" }
}

/// What the GPU decoder cannot run of a BLOOM config (`None`: it runs).
pub(super) fn unsupported(cfg: &ModelConfig) -> Option<String> {
    if !is_bloom(cfg) {
        return None;
    }
    if cfg.residual_post_norm {
        return Some(
            "apply_residual_connection_post_layernorm = true (no released BLOOM uses it; the \
             CPU engine runs it)"
                .into(),
        );
    }
    if cfg.n_kv_heads != cfg.n_heads {
        return Some(format!("{} kv heads for {} heads", cfg.n_kv_heads, cfg.n_heads));
    }
    None
}

/// Loads BLOOM's blocks (Hugging Face names, `transformer.` prefix; sources without it are
/// handled by the fetcher) into Llama-shaped [`GpuLayer`]s plus the [`BloomGpu`] extras.
/// `gate_up` holds the up projection alone (`4·hidden` rows).
pub(super) fn load_layers(
    ld: &mut Loader<'_>,
    cfg: &ModelConfig,
    scheme: GpuScheme,
    fetch: &mut dyn FnMut(Tensor) -> Result<Vec<f32>>,
) -> Result<(Vec<GpuLayer>, BloomGpu)> {
    let (h, nh, f) = (cfg.hidden, cfg.n_heads, cfg.ffn);
    // A LayerNorm weight (`norm`) or a bias vector, fetched and uploaded as f32.
    let vec = |ld: &mut Loader<'_>,
               fetch: &mut dyn FnMut(Tensor) -> Result<Vec<f32>>,
               name: String,
               n: usize,
               norm: bool| {
        let t = if norm { Tensor::Norm(name.clone(), n) } else { Tensor::Bias(name.clone(), n) };
        let data = fetch(t)?;
        ld.upload(&name, &data)
    };
    let emb_norm_w =
        vec(ld, fetch, "transformer.word_embeddings_layernorm.weight".into(), h, true)?;
    let emb_norm_b = vec(ld, fetch, "transformer.word_embeddings_layernorm.bias".into(), h, false)?;
    let mut layers = Vec::new();
    let mut extras = Vec::new();
    for l in 0..cfg.n_layers {
        let p = format!("transformer.h.{l}");
        let qkv_name = format!("{p}.self_attention.query_key_value");
        let w = fetch(Tensor::Matrix(format!("{qkv_name}.weight"), 3 * h, h))?;
        let qkv =
            ld.linear(qkv_name.clone(), crate::bloom_qkv_to_blocks(&w, nh, h), 3 * h, h, scheme)?;
        drop(w);
        let b = fetch(Tensor::Bias(format!("{qkv_name}.bias"), 3 * h))?;
        let qkv_bias =
            Some(ld.upload(&format!("{qkv_name}.bias"), &crate::bloom_qkv_to_blocks(&b, nh, 1))?);
        let o = fetch(Tensor::Matrix(format!("{p}.self_attention.dense.weight"), h, h))?;
        let o = ld.linear(format!("{p}.self_attention.dense"), o, h, h, scheme)?;
        let up = fetch(Tensor::Matrix(format!("{p}.mlp.dense_h_to_4h.weight"), f, h))?;
        let gate_up = ld.linear(format!("{p}.mlp.dense_h_to_4h"), up, f, h, scheme)?;
        let down = fetch(Tensor::Matrix(format!("{p}.mlp.dense_4h_to_h.weight"), h, f))?;
        let down = ld.linear(format!("{p}.mlp.dense_4h_to_h"), down, h, f, scheme)?;
        let attn_norm = vec(ld, fetch, format!("{p}.input_layernorm.weight"), h, true)?;
        let ffn_norm = vec(ld, fetch, format!("{p}.post_attention_layernorm.weight"), h, true)?;
        layers.push(GpuLayer { attn_norm, qkv, qkv_bias, o, ffn_norm, gate_up, down });
        extras.push(BloomLayer {
            ln1_b: vec(ld, fetch, format!("{p}.input_layernorm.bias"), h, false)?,
            o_b: vec(ld, fetch, format!("{p}.self_attention.dense.bias"), h, false)?,
            ln2_b: vec(ld, fetch, format!("{p}.post_attention_layernorm.bias"), h, false)?,
            up_b: vec(ld, fetch, format!("{p}.mlp.dense_h_to_4h.bias"), f, false)?,
            down_b: vec(ld, fetch, format!("{p}.mlp.dense_4h_to_h.bias"), h, false)?,
        });
    }
    let final_b = vec(ld, fetch, "transformer.ln_f.bias".into(), h, false)?;
    let slopes = ld.upload("ALiBi slopes", &crate::alibi_slopes(nh))?;
    Ok((layers, BloomGpu { emb_norm_w, emb_norm_b, final_b, layers: extras, slopes }))
}

impl BloomGpu {
    /// `ln_f.bias`, for the LM head's final norm.
    pub(super) fn final_bias(&self) -> &CudaSlice<f32> {
        &self.final_b
    }
}

impl GpuModel {
    /// BLOOM's blocks over the uploaded rows of `sc`, after the embedding lookup (capturable as
    /// [`GpuModel::enqueue_forward`]): the word-embeddings LayerNorm in place, then per block
    /// LayerNorm → qkv GEMM → bias + KV write → ALiBi attention → o GEMM (+ residual) + bias →
    /// LayerNorm → up GEMM → GELU(+ bias) → down GEMM (+ residual) + bias.
    pub(super) fn bloom_layers(
        &self,
        bl: &BloomGpu,
        sc: &mut Scratch,
        kv: &CudaSlice<f32>,
        kv_tokens: usize,
        real: usize,
    ) -> Result<()> {
        let c = &self.cfg;
        let (h, d, nh, nkv, f) = (c.hidden, c.head_dim, c.n_heads, c.n_kv_heads, c.ffn);
        let m = sc.m;
        let sms = self.dev.info().multiprocessors;
        let (m32, h32, nh32, nkv32, d32) = (m as u32, h as u32, nh as u32, nkv as u32, d as u32);
        let eps = c.rms_eps;
        let null: u64 = 0;
        if bl.layers.len() != self.layers.len() {
            return Err(GpuError::invalid("BLOOM layer extras do not match the layers"));
        }
        // In place: x holds m·h, one block per row (the kernel allows y == x with idx null).
        launch!(
            self,
            "layernorm_f32",
            rows_cfg(m, 256),
            [&sc.x, &null, &bl.emb_norm_w, &bl.emb_norm_b, &sc.x, &h32, &eps]
        )?;
        let per_layer = kv_tokens * nkv * d;
        let scale = 1.0f32 / (d as f32).sqrt();
        let alibi = bl.slopes.device_ptr(&self.stream).0;
        for (li, (layer, ex)) in self.layers.iter().zip(&bl.layers).enumerate() {
            let kc = kv.slice(2 * li * per_layer..(2 * li + 1) * per_layer);
            let vc = kv.slice((2 * li + 1) * per_layer..(2 * li + 2) * per_layer);
            self.produce(sc, Source::LayerNorm(&layer.attn_norm, &ex.ln1_b), h, real)?;
            self.linear(sc, &layer.qkv, Out::Qkv)?;
            {
                let bias: u64 = layer.qkv_bias.as_ref().map_or(0, |b| b.device_ptr(&self.stream).0);
                // One block per row; slots seq_off[s] + pos < kv_tokens (checked by
                // upload_plan); qkv holds m rows of 3·nh·d; bias (0 = none) 3·nh·d.
                launch!(
                    self,
                    "bias_kv",
                    rows_cfg(m, 128),
                    [&sc.qkv, &bias, &sc.seq, &sc.pos, &sc.seq_off, &kc, &vc, &nh32, &nkv32, &d32]
                )?;
            }
            let attn = Source::Attn { kc: &kc, vc: &vc, scale, window: 0, alibi };
            self.produce(sc, attn, nh * d, real)?;
            self.linear(sc, &layer.o, Out::Residual)?;
            // x holds m·h, the bias h.
            launch!(self, "add_bias", grid((m * h) as u64, sms), [&sc.x, &ex.o_b, &m32, &h32])?;
            self.produce(sc, Source::LayerNorm(&layer.ffn_norm, &ex.ln2_b), h, real)?;
            self.linear(sc, &layer.gate_up, Out::Gu)?;
            self.produce(sc, Source::Gelu(&ex.up_b), f, real)?;
            self.linear(sc, &layer.down, Out::Residual)?;
            launch!(self, "add_bias", grid((m * h) as u64, sms), [&sc.x, &ex.down_b, &m32, &h32])?;
        }
        Ok(())
    }
}
