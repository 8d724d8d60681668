//! The model's numeric schemes, build options and memory report.

use super::GemvTile;
use crate::cuda::blas::InType;
use crate::linear::Scheme;

/// The numeric scheme of the GPU model's decoder projections.
///
/// Every scheme keeps the residual stream, norms, rope, attention, softmax and accumulation in
/// f32. The embedding table and the LM head are f32 for FP32 and the int8 schemes (the head is
/// commonly left unquantized) and f16/bf16 for the half schemes, as on the CPU reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GpuScheme {
    /// f32 weights and GEMM inputs (cuBLAS, no TF32).
    Fp32,
    /// f16 weights and GEMM inputs, f32 accumulation and output (cuBLAS tensor cores).
    Fp16,
    /// bf16 weights and GEMM inputs, f32 accumulation and output.
    Bf16,
    /// int8 weights per output channel, int8 activations per token computed at run time (fused
    /// into RMSNorm / SwiGLU), eai-quant's cuBLASLt INT8 GEMM, dequantizing epilogue.
    W8A8,
    /// int8 weights per output channel, f16 activations: eai-quant's W8A16 GEMV for decode
    /// (M ≤ 16); weights dequantized to f16 per layer and a cuBLAS f16 GEMM for prefill.
    W8A16,
    /// "Dynamic quantization" in PyTorch's sense: int8 weights per output channel, activations
    /// quantized at run time with **one scale per activation tensor** (symmetric, from the
    /// tensor's absolute maximum over the real rows of the batch), INT8 GEMM. Scores can depend
    /// on what else is in the batch, as with `torch.ao.quantization.quantize_dynamic`.
    Dynamic,
}

impl GpuScheme {
    /// Every scheme, in report order.
    pub const ALL: [GpuScheme; 6] = [
        GpuScheme::Fp32,
        GpuScheme::Fp16,
        GpuScheme::Bf16,
        GpuScheme::W8A8,
        GpuScheme::W8A16,
        GpuScheme::Dynamic,
    ];

    /// Short label: `fp32`, `fp16`, `bf16`, `int8-w8a8`, `int8-w8a16`, `dynamic`.
    pub fn label(self) -> &'static str {
        match self {
            GpuScheme::Fp32 => "fp32",
            GpuScheme::Fp16 => "fp16",
            GpuScheme::Bf16 => "bf16",
            GpuScheme::W8A8 => "int8-w8a8",
            GpuScheme::W8A16 => "int8-w8a16",
            GpuScheme::Dynamic => "dynamic",
        }
    }

    /// Parses a label ([`GpuScheme::label`], the CPU [`Scheme`] labels, `dynamic-int8`).
    pub fn from_label(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "dynamic" | "dynamic-int8" | "int8-dynamic" => GpuScheme::Dynamic,
            other => return Scheme::from_label(other).and_then(GpuScheme::from_cpu),
        })
    }

    /// The GPU scheme that runs a CPU [`Scheme`].
    pub fn from_cpu(s: Scheme) -> Option<Self> {
        Some(match s.label() {
            "fp32" => GpuScheme::Fp32,
            "fp16" => GpuScheme::Fp16,
            "bf16" => GpuScheme::Bf16,
            "int8-w8a8" => GpuScheme::W8A8,
            "int8-w8a16" => GpuScheme::W8A16,
            _ => return None,
        })
    }

    /// The CPU reference scheme computing the same function (`None` for [`GpuScheme::Dynamic`],
    /// which has no CPU counterpart; compare it against FP32 with an int8 tolerance).
    pub fn cpu_reference(self) -> Option<Scheme> {
        match self {
            GpuScheme::Dynamic => None,
            s => Scheme::from_label(s.label()),
        }
    }

    pub(super) fn is_int8_act(self) -> bool {
        matches!(self, GpuScheme::W8A8 | GpuScheme::Dynamic)
    }

    pub(super) fn float_type(self) -> InType {
        match self {
            GpuScheme::Fp16 | GpuScheme::W8A16 => InType::F16,
            GpuScheme::Bf16 => InType::Bf16,
            _ => InType::F32,
        }
    }

    /// Type of the embedding table and LM head.
    pub(super) fn table_type(self) -> InType {
        match self {
            GpuScheme::Fp16 => InType::F16,
            GpuScheme::Bf16 => InType::Bf16,
            _ => InType::F32,
        }
    }
}

impl std::fmt::Display for GpuScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// How to build a [`GpuModel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GpuOptions {
    /// Scheme of the decoder projections.
    pub scheme: GpuScheme,
    /// For the int8 schemes, keep the embedding table and the LM head in f16 instead of f32 —
    /// what serving stacks do with a half-precision checkpoint whose linear layers they quantize
    /// (bitsandbytes' LLM.int8 and torchao's int8 weight-only leave `lm_head` in the
    /// checkpoint's f16): the head runs on f16 tensor cores and its bytes per token halve. **On
    /// by default** (issue 14: the f32 head's GEMM cost full ARC-Easy ~25 % of a W8A16 pass on an
    /// H100). `EAI_HALF_HEAD=0` turns the default off; off, the head is f32 as on the CPU
    /// reference (the parity tests against the CPU use that). Ignored for FP32/FP16/BF16.
    pub half_head: bool,
    /// Decode GEMV: forward passes of at most a few rows (decode steps) run their linear layers
    /// and the LM head through the model's own bandwidth-bound GEMV kernels (16-byte weight
    /// loads, f32 accumulation, f32 output with the residual add fused) instead of cuBLAS /
    /// eai-quant: FP32/FP16/BF16 up to [`GEMV_DENSE_MAX_M`] rows, W8A16 up to 16 rows. On by
    /// default; the environment variable `EAI_DECODE_GEMV=0` turns the default off.
    pub decode_gemv: bool,
    /// CUDA graphs for decode: the model runs on its own (capturable, non-blocking) stream, and
    /// a greedy-generation decode step that uses only the model's own kernels (the decode GEMV
    /// on, FP32/FP16/BF16/W8A16, at most [`GEMV_DENSE_MAX_M`] rows) is captured once — embedding,
    /// every layer, final norm, LM head and the on-device argmax — and replayed per token, with
    /// token ids and positions passed through device buffers. On by default; the environment
    /// variable `EAI_CUDA_GRAPH=0` turns the default off. [`GpuModel::set_cuda_graph`] toggles
    /// it on a loaded model.
    pub cuda_graph: bool,
    /// Fused decode (session 3): generation passes (greedy prefill and decode steps; scoring
    /// passes keep their shared-prefix attention) of at most [`GEMV_DENSE_MAX_M`] rows that
    /// take the decode GEMV run 5 kernels per layer instead of 9 — RMSNorm fused into the qkv and
    /// gate/up GEMVs' activation load, q/k/v bias + rope + KV-cache write into the qkv GEMV's
    /// epilogue, SwiGLU into the gate/up GEMV's epilogue, a decode attention kernel — and the
    /// LM head runs the final norm in its activation load (greedy graph steps: an argmax-only
    /// kernel after it; the norm-fused head also serves scoring chunks of at most
    /// [`GEMV_DENSE_MAX_M`] rows). On by default; `EAI_FUSED_DECODE=0` turns the default off;
    /// [`GpuModel::set_fused_decode`] toggles it on a loaded model.
    pub fused_decode: bool,
    /// Decode GEMV layout: the row layout of the fused path's plain GEMVs (o and down
    /// projections); the tensor-core layouts also run the norm-fused GEMVs (qkv, gate/up, LM
    /// head), and [`GemvTile::W16`] the batched GEMVs of 5–32-row passes. [`GemvTile::Auto`]
    /// (default) picks per pass by scheme, rows and device ([`super::default_gemv_tile`], the
    /// measured best); any other tile is forced on every pass, for A/B runs — the environment
    /// variable `EAI_GEMV_TILE=<label>` (e.g. `w16`, `k4u2`) sets it.
    pub gemv_tile: GemvTile,
    /// For the int8 schemes (W8A16, W8A8, dynamic), an **int8 LM head**: the head matrix (the
    /// embedding table when tied) quantized per output row with eai-quant's int8 weight spec
    /// (symmetric, one f32 scale per vocabulary row, as llama.cpp's Q8_0 quantizes
    /// `output.weight`), fed f16 activations (the final norm rounded to f16) — a quarter of the
    /// f32 head's bytes per decoded token, half of the f16 one's. The embedding lookup keeps its
    /// table ([`GpuOptions::half_head`] decides f32 or f16). Passes of more rows than the decode
    /// GEMV takes run the head as M-tiled GEMVs too (slower than cuBLAS for long scoring passes:
    /// the option is meant for generation). Off by default (the CPU reference's head is f32);
    /// ignored for the float schemes. `EAI_INT8_HEAD=1` turns the default on.
    pub int8_head: bool,
    /// Scoring passes (log-likelihoods over shared prefixes) run their attention over tiles of
    /// several query rows: the rows of a tile that belong to one sequence share each chunk of
    /// keys and values staged in shared memory (issue 14: full HellaSwag, contexts of ~100
    /// tokens, 1.15× per pass on an H100). Off, every tile is one row, as the scoring kernel
    /// of sessions before 9 staged them; a row's result is the same either way (bit for bit
    /// where compared). Generation passes that prefill prompts (more rows than the fused decode
    /// layers take) run it too, without shared prefixes, and their decode steps the fused
    /// layers' decode attention (four keys in flight per warp). On by default;
    /// `EAI_TILED_ATTENTION=0` turns the default off (scoring: tiles of one row; generation
    /// passes: the generic kernel, one key per warp step), for A/B runs;
    /// [`GpuModel::set_tiled_attention`] toggles it on a loaded model.
    pub tiled_attention: bool,
    /// FP16 / BF16 (and W8A16 passes of more rows than its GEMV takes): the gate/up GEMM of a
    /// cuBLAS pass writes its output in the activation type (f32 accumulation, rounded once),
    /// as transformers' 16-bit `Linear` does, and SwiGLU reads those 16-bit values: half the
    /// gate/up matrix's bytes written and read (issue 14). Off, the matrix is f32 (rounded to
    /// the activation type only after SwiGLU). On by default; `EAI_HALF_GATE_UP=0` turns the
    /// default off, for A/B runs; [`GpuModel::set_half_gate_up`] toggles it on a loaded model.
    pub half_gate_up: bool,
    /// Programmatic dependent launch of the fused decode layers' kernels (sm_90+): each of
    /// them (and a CUDA-graph step's LM head) is launched with CUDA's programmatic stream
    /// serialization, so it starts while the kernel before it finishes and prefetches its first
    /// weight bytes into L2 before it waits for that kernel's results (`griddepcontrol`;
    /// decode.cu's `pdl_wait`). The kernels compute exactly what they compute without it.
    /// `None` (default) = the measured rule, [`pdl_default`]: on for W8A16 (batch-1 decode
    /// steps +1.9 % / +3.8 % at Qwen2.5-7B / Mistral-7B shapes on an H100), off for the float
    /// schemes (FP16 −0.8 % / −2.3 %); `Some(on)` forces it, for A/B runs — `EAI_PDL=0` / `=1`
    /// set that; [`GpuModel::set_pdl`] forces it on a loaded model. Ignored before sm_90.
    pub pdl: Option<bool>,
    /// `EAI_GEMV_TILE` was set to a label that names no tile.
    unknown_env_tile: bool,
}

/// The tile `EAI_GEMV_TILE`'s value asks for: `Auto` when unset or blank, `None` when it names
/// no tile.
fn tile_from_env(v: Option<&str>) -> Option<GemvTile> {
    match v.map(str::trim) {
        None | Some("") => Some(GemvTile::Auto),
        Some(l) => GemvTile::from_label(l),
    }
}

/// The [`GpuOptions::pdl`] setting `EAI_PDL`'s value asks for: `0` forces it off, `1` on;
/// unset or anything else leaves the per-scheme default.
fn pdl_from_env(v: Option<&str>) -> Option<bool> {
    match v.map(str::trim) {
        Some("0") => Some(false),
        Some("1") => Some(true),
        _ => None,
    }
}

/// Largest row count for which the dense schemes use the decode GEMV (beyond: cuBLAS).
pub const GEMV_DENSE_MAX_M: usize = 4;

/// Whether the fused decode kernels of `scheme` are launched as programmatic dependents by
/// default ([`GpuOptions::pdl`]), from issue 16's measurement (H100, 2026-12-07,
/// docs/results/session12.md): W8A16's int8 kernels gain (their weight bytes stream under the
/// decode attention and the previous kernel's tail), the float schemes' 16/32-bit kernels, which
/// already keep the memory busier, lose a little.
pub fn pdl_default(scheme: GpuScheme) -> bool {
    scheme == GpuScheme::W8A16
}

impl GpuOptions {
    /// Options for `scheme` with the reference's head rule and the decode GEMV on (unless
    /// `EAI_DECODE_GEMV=0`).
    pub fn new(scheme: GpuScheme) -> Self {
        let decode_gemv = std::env::var("EAI_DECODE_GEMV").map_or(true, |v| v.trim() != "0");
        let cuda_graph = std::env::var("EAI_CUDA_GRAPH").map_or(true, |v| v.trim() != "0");
        let fused_decode = std::env::var("EAI_FUSED_DECODE").map_or(true, |v| v.trim() != "0");
        let int8_head = std::env::var("EAI_INT8_HEAD").is_ok_and(|v| v.trim() == "1");
        let half_head = std::env::var("EAI_HALF_HEAD").map_or(true, |v| v.trim() != "0");
        let tiled_attention =
            std::env::var("EAI_TILED_ATTENTION").map_or(true, |v| v.trim() != "0");
        let half_gate_up = std::env::var("EAI_HALF_GATE_UP").map_or(true, |v| v.trim() != "0");
        let pdl = pdl_from_env(std::env::var("EAI_PDL").ok().as_deref());
        // `EAI_GEMV_TILE=<label>` (e.g. `w16`, `k4u2`): the decode GEMV layout, for A/B runs;
        // a label naming no tile (e.g. one deleted in issue 16) fails the model's load.
        let env_tile = tile_from_env(std::env::var("EAI_GEMV_TILE").ok().as_deref());
        GpuOptions {
            scheme,
            half_head,
            decode_gemv,
            cuda_graph,
            fused_decode,
            gemv_tile: env_tile.unwrap_or_default(),
            int8_head,
            tiled_attention,
            half_gate_up,
            pdl,
            unknown_env_tile: env_tile.is_none(),
        }
    }

    /// Sets [`GpuOptions::int8_head`].
    pub fn int8_head(mut self, on: bool) -> Self {
        self.int8_head = on;
        self
    }

    /// Sets [`GpuOptions::fused_decode`].
    pub fn fused_decode(mut self, on: bool) -> Self {
        self.fused_decode = on;
        self
    }

    /// Sets [`GpuOptions::gemv_tile`] (an unknown `EAI_GEMV_TILE` no longer matters).
    pub fn gemv_tile(mut self, tile: GemvTile) -> Self {
        self.gemv_tile = tile;
        self.unknown_env_tile = false;
        self
    }

    /// The error a model load reports when `EAI_GEMV_TILE` named no tile and no tile was set.
    pub(super) fn tile_error(&self) -> Option<String> {
        self.unknown_env_tile.then(|| {
            let v = std::env::var("EAI_GEMV_TILE").unwrap_or_default();
            let labels: Vec<&str> = GemvTile::ALL.iter().map(|t| t.label()).collect();
            format!("EAI_GEMV_TILE={v:?} names no decode GEMV tile (one of {})", labels.join(", "))
        })
    }

    /// Sets [`GpuOptions::tiled_attention`].
    pub fn tiled_attention(mut self, on: bool) -> Self {
        self.tiled_attention = on;
        self
    }

    /// Forces [`GpuOptions::pdl`] on or off.
    pub fn pdl(mut self, on: bool) -> Self {
        self.pdl = Some(on);
        self
    }

    /// Sets [`GpuOptions::half_gate_up`].
    pub fn half_gate_up(mut self, on: bool) -> Self {
        self.half_gate_up = on;
        self
    }

    /// Sets [`GpuOptions::cuda_graph`].
    pub fn cuda_graph(mut self, on: bool) -> Self {
        self.cuda_graph = on;
        self
    }

    /// Sets [`GpuOptions::decode_gemv`].
    pub fn decode_gemv(mut self, on: bool) -> Self {
        self.decode_gemv = on;
        self
    }

    /// Sets [`GpuOptions::half_head`].
    pub fn half_head(mut self, on: bool) -> Self {
        self.half_head = on;
        self
    }

    pub(super) fn table_type(&self) -> InType {
        match self.scheme.table_type() {
            InType::F32 if self.half_head && self.scheme != GpuScheme::Fp32 => InType::F16,
            t => t,
        }
    }
}

/// Resident weight bytes of a [`GpuModel`] by part; [`WeightBytes::total`] is
/// [`GpuMemory::weights`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WeightBytes {
    /// The embedding table (f32, f16 or bf16: [`GpuOptions::half_head`]).
    pub embedding: u64,
    /// The LM head matrix when it is stored apart from the embedding table: an untied head in
    /// the table's type, or the int8 head's codes and per-row scales ([`GpuOptions::int8_head`],
    /// tied models included). 0 when the head is the (tied) embedding table itself.
    pub lm_head: u64,
    /// The decoder projections in their resident format (int8 codes or f32/f16/bf16 values).
    pub layers: u64,
    /// The projections' per-output-row f32 scales (int8 schemes).
    pub scales: u64,
    /// Norm weights, biases, rope tables (and BLOOM's ALiBi slopes).
    pub other: u64,
}

impl WeightBytes {
    /// Sum of the parts.
    pub fn total(&self) -> u64 {
        self.embedding + self.lm_head + self.layers + self.scales + self.other
    }
}

/// Device memory used by a [`GpuModel`], in bytes, and the device's state when measured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GpuMemory {
    /// Weights in their resident formats (codes, scales, biases, norms, rope tables):
    /// `weight_parts.total()`.
    pub weights: u64,
    /// [`GpuMemory::weights`] by part.
    pub weight_parts: WeightBytes,
    /// The KV cache as currently allocated (f32 keys and values).
    pub kv_cache: u64,
    /// Activation scratch buffers currently allocated (the per-shape pool and the LM head's
    /// buffers), without the captured decode step's own buffers.
    pub scratch: u64,
    /// Buffers owned by the captured CUDA-graph decode step (activations and LM-head buffers of
    /// its row count).
    pub graph: u64,
    /// W8A16's f16 weight staging buffer for prefill GEMMs (one per model, the largest
    /// projection; allocated on the first pass of more than 16 rows).
    pub staging: u64,
    /// Free device memory as the driver reports it.
    pub device_free: u64,
    /// Total device memory.
    pub device_total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16, session 12 (H100, batch-1 decode at Qwen2.5-7B / Mistral-7B shapes): PDL on
    /// for W8A16 (+2.1 % / +3.9 %), off for the float schemes (FP16 −0.8 % / −2.3 %);
    /// `EAI_PDL` forces either way.
    #[test]
    fn pdl_follows_the_measured_rule_and_env_forces_it() {
        assert!(pdl_default(GpuScheme::W8A16));
        for s in [GpuScheme::Fp32, GpuScheme::Fp16, GpuScheme::Bf16] {
            assert!(!pdl_default(s), "{s}");
        }
        assert_eq!(pdl_from_env(None), None);
        assert_eq!(pdl_from_env(Some(" 0 ")), Some(false));
        assert_eq!(pdl_from_env(Some("1")), Some(true));
        assert_eq!(pdl_from_env(Some("yes")), None);
    }

    #[test]
    fn env_tile_labels_parse_and_unknown_ones_are_flagged() {
        assert_eq!(tile_from_env(None), Some(GemvTile::Auto));
        assert_eq!(tile_from_env(Some(" ")), Some(GemvTile::Auto));
        assert_eq!(tile_from_env(Some(" w16\n")), Some(GemvTile::W16));
        assert_eq!(tile_from_env(Some("k4u2")), Some(GemvTile::K4U2));
        // Deleted in issue 16, and typos: flagged, so the load fails instead of running Auto.
        assert_eq!(tile_from_env(Some("r4u2")), None);
        assert_eq!(tile_from_env(Some("W16x")), None);
        let mut o = GpuOptions::new(GpuScheme::Fp16);
        o.unknown_env_tile = true;
        assert!(o.tile_error().is_some_and(|e| e.contains("k4u2, t8u4, w16")));
        assert_eq!(o.gemv_tile(GemvTile::K4U2).tile_error(), None);
    }
}
