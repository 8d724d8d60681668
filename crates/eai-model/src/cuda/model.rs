//! The decoder on the GPU: resident weights per scheme, the f32 residual stream, KV cache, and
//! the forward pass (embedding → N × block → final norm → LM head on selected rows only).

use std::sync::Arc;

use cudarc::driver::{
    CudaGraph, CudaSlice, CudaStream, DevicePtr, DeviceRepr, LaunchConfig, PushKernelArg,
    ValidAsZeroBits, sys as ds,
};
use eai_quant::QuantSpec;
use eai_quant::cuda::{CudaDevice, DeviceBuffer, DeviceQuantized, DeviceScalar, GemmShape};
use half::{bf16, f16};

use super::blas::{Blas, InType};
use super::error::{GpuError, Result};
use super::kernels::Kernels;
use crate::config::ModelConfig;
use crate::linear::Scheme;
use crate::source::WeightSource;

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

    fn is_int8_act(self) -> bool {
        matches!(self, GpuScheme::W8A8 | GpuScheme::Dynamic)
    }

    fn float_type(self) -> InType {
        match self {
            GpuScheme::Fp16 | GpuScheme::W8A16 => InType::F16,
            GpuScheme::Bf16 => InType::Bf16,
            _ => InType::F32,
        }
    }

    /// Type of the embedding table and LM head.
    fn table_type(self) -> InType {
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
    /// For the int8 schemes, keep the embedding table and the LM head in f16 instead of f32 (what
    /// serving stacks do with a half-precision checkpoint; halves the head's bytes per decoded
    /// token). Off by default: the CPU reference keeps them f32, and parity is checked against it.
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
    /// Row layout of the fused path's plain GEMVs (o and down projections); the tensor-core
    /// layouts also run the norm-fused int8 GEMVs (qkv, gate/up, int8 head) on tensor cores.
    /// [`GemvTile::Auto`] (default) decides per model and weight format.
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
}

/// Weight format of a decode GEMV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GemvWeight {
    I8,
    F16,
    Bf16,
    F32,
}

impl From<InType> for GemvWeight {
    fn from(t: InType) -> Self {
        match t {
            InType::F32 => GemvWeight::F32,
            InType::F16 => GemvWeight::F16,
            InType::Bf16 => GemvWeight::Bf16,
        }
    }
}

/// Largest row count for which the dense schemes use the decode GEMV (beyond: cuBLAS).
pub const GEMV_DENSE_MAX_M: usize = 4;

impl GpuOptions {
    /// Options for `scheme` with the reference's head rule and the decode GEMV on (unless
    /// `EAI_DECODE_GEMV=0`).
    pub fn new(scheme: GpuScheme) -> Self {
        let decode_gemv = std::env::var("EAI_DECODE_GEMV").map_or(true, |v| v.trim() != "0");
        let cuda_graph = std::env::var("EAI_CUDA_GRAPH").map_or(true, |v| v.trim() != "0");
        let fused_decode = std::env::var("EAI_FUSED_DECODE").map_or(true, |v| v.trim() != "0");
        let int8_head = std::env::var("EAI_INT8_HEAD").is_ok_and(|v| v.trim() == "1");
        GpuOptions {
            scheme,
            half_head: false,
            decode_gemv,
            cuda_graph,
            fused_decode,
            gemv_tile: GemvTile::default(),
            int8_head,
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

    /// Sets [`GpuOptions::gemv_tile`].
    pub fn gemv_tile(mut self, tile: GemvTile) -> Self {
        self.gemv_tile = tile;
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

    fn table_type(&self) -> InType {
        match self.scheme.table_type() {
            InType::F32 if self.half_head && self.scheme != GpuScheme::Fp32 => InType::F16,
            t => t,
        }
    }
}

/// Device memory used by a [`GpuModel`], in bytes, and the device's state when measured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GpuMemory {
    /// Weights in their resident formats (codes, scales, biases, norms, rope tables).
    pub weights: u64,
    /// The KV cache as currently allocated.
    pub kv_cache: u64,
    /// Activation scratch buffers currently allocated.
    pub scratch: u64,
    /// Free device memory as the driver reports it.
    pub device_free: u64,
    /// Total device memory.
    pub device_total: u64,
}

/// A dense matrix or vector in one of the float types.
#[derive(Debug)]
pub(crate) enum Dense {
    F32(CudaSlice<f32>),
    F16(CudaSlice<f16>),
    Bf16(CudaSlice<bf16>),
}

impl Dense {
    fn ty(&self) -> InType {
        match self {
            Dense::F32(_) => InType::F32,
            Dense::F16(_) => InType::F16,
            Dense::Bf16(_) => InType::Bf16,
        }
    }
    fn ptr(&self, s: &CudaStream) -> u64 {
        match self {
            Dense::F32(b) => b.device_ptr(s).0,
            Dense::F16(b) => b.device_ptr(s).0,
            Dense::Bf16(b) => b.device_ptr(s).0,
        }
    }
    fn bytes(&self) -> u64 {
        match self {
            Dense::F32(b) => 4 * b.len() as u64,
            Dense::F16(b) => 2 * b.len() as u64,
            Dense::Bf16(b) => 2 * b.len() as u64,
        }
    }
    fn suffix(&self) -> &'static str {
        match self {
            Dense::F32(_) => "f32",
            Dense::F16(_) => "f16",
            Dense::Bf16(_) => "bf16",
        }
    }
}

#[derive(Debug)]
enum Weight {
    Dense(Dense),
    I8(Box<DeviceQuantized>),
}

#[derive(Debug)]
struct GpuLinear {
    name: String,
    n: usize,
    k: usize,
    w: Weight,
}

#[derive(Debug)]
struct GpuLayer {
    attn_norm: CudaSlice<f32>,
    qkv: GpuLinear,
    qkv_bias: Option<CudaSlice<f32>>,
    o: GpuLinear,
    ffn_norm: CudaSlice<f32>,
    gate_up: GpuLinear,
    down: GpuLinear,
}

/// Activation buffers of one forward shape (`m` rows, padding included).
#[derive(Debug)]
struct Scratch {
    m: usize,
    ids: CudaSlice<u32>,
    seq: CudaSlice<i32>,
    pos: CudaSlice<i32>,
    seq_off: CudaSlice<u32>,
    /// Shared-prefix descriptors of a scoring pass, two per sequence (see [`RowPlan::pre`]).
    pre: CudaSlice<u32>,
    /// The uploaded plan is a scoring pass: attention runs `attention_prefill_*`, which reads
    /// `pre`; otherwise (generation) the decode attention kernel.
    prefill: bool,
    x: CudaSlice<f32>,
    qkv: CudaSlice<f32>,
    gu: CudaSlice<f32>,
    act: Act,
    bytes: u64,
}

#[derive(Debug)]
enum Act {
    /// GEMM input of the float schemes, `m × max K`.
    Float(Dense),
    /// W8A16: exact-size f16 inputs per K and outputs per N (eai-quant's GEMV takes whole
    /// buffers), plus an f16 weight staging buffer for the prefill GEMM.
    W8A16 {
        xin: Vec<(usize, DeviceBuffer<f16>)>,
        yout: Vec<(usize, DeviceBuffer<f16>)>,
        wtmp: Option<CudaSlice<f16>>,
    },
    /// W8A8 / dynamic: int8 codes per K, int32 accumulators per N, per-row scales, an f32
    /// staging matrix, and the per-tensor absmax slot.
    Int8 {
        qin: Vec<(usize, DeviceBuffer<i8>)>,
        acc: Vec<(usize, DeviceBuffer<i32>)>,
        sx: CudaSlice<f32>,
        tmp: CudaSlice<f32>,
        slot: CudaSlice<u32>,
    },
}

/// Buffers of the LM head (a chunk of scored rows at a time).
#[derive(Debug)]
struct HeadScratch {
    rows: usize,
    idx: CudaSlice<u32>,
    act: Dense,
    logits: CudaSlice<f32>,
    lse: CudaSlice<f64>,
    amax: CudaSlice<u32>,
    /// `argmax_rows`'s per-row 64-bit running maximum and finished-block count (zeroed at
    /// allocation; the kernel leaves them zeroed).
    amax_slot: CudaSlice<u64>,
    amax_count: CudaSlice<u32>,
    pick_rows: CudaSlice<u32>,
    pick_tgts: CudaSlice<u32>,
    picks: CudaSlice<f32>,
    bytes: u64,
}

/// What a captured decode step depends on besides its own buffers: replaying it is valid while
/// the row count, the argmax limit and the KV cache (address and size) are unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct GraphKey {
    m: usize,
    argmax_limit: usize,
    kv_ptr: u64,
    kv_tokens: usize,
}

/// A captured decode step and the buffers its kernels read and write (their addresses are
/// baked into the graph, so the graph owns them).
struct DecodeGraph {
    key: GraphKey,
    sc: Scratch,
    hs: HeadScratch,
    graph: CudaGraph,
}

impl std::fmt::Debug for DecodeGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodeGraph").field("key", &self.key).finish_non_exhaustive()
    }
}

/// Scored position: log Σ exp over the vocabulary, the argmax, and the wanted targets' logits.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RowScore {
    /// `log Σ_v exp(logit_v)` (accumulated in f64).
    pub log_z: f64,
    /// First index of the largest logit.
    pub argmax: u32,
    /// `(target, logit)` for every requested target.
    pub picks: Vec<(u32, f32)>,
}

/// Rows of one forward pass, as laid out on the device.
#[derive(Debug, Default)]
pub(crate) struct RowPlan {
    pub(crate) ids: Vec<u32>,
    pub(crate) seq: Vec<i32>,
    pub(crate) pos: Vec<i32>,
    pub(crate) seq_off: Vec<u32>,
    /// Scoring passes: two entries per sequence, `(prefix slot offset, prefix length)`; key
    /// `j` of sequence `s` is at slot `pre[2s] + j` for `j < pre[2s + 1]`, else
    /// `seq_off[s] + j`. Empty for generation passes (decode attention kernel, no prefixes).
    pub(crate) pre: Vec<u32>,
    /// Rows that belong to sequences (the rest are padding).
    pub(crate) real: usize,
}

/// A sequence of a packed scoring pass ([`GpuModel::score_packed`]): its own tokens and,
/// optionally, the shared prefix it continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedSeq<'a> {
    /// The sequence's own tokens (after the prefix, if any).
    pub tokens: &'a [u32],
    /// `Some((i, n))`: the tokens continue the first `n` tokens of sequence `i` of the same
    /// pass (`i` earlier in the pass, itself without a prefix, at least `n` tokens long); their
    /// positions start at `n` and they attend to `i`'s first `n` keys, computed once.
    pub prefix: Option<(usize, usize)>,
}

impl<'a> PackedSeq<'a> {
    /// A sequence from position 0.
    pub fn new(tokens: &'a [u32]) -> Self {
        PackedSeq { tokens, prefix: None }
    }

    /// A sequence continuing the first `len` tokens of sequence `of` of the same pass.
    pub fn continuing(tokens: &'a [u32], of: usize, len: usize) -> Self {
        PackedSeq { tokens, prefix: Some((of, len)) }
    }
}

const ROPE_TABLE_MAX: usize = 16_384;
/// Largest M for which W8A16 uses eai-quant's GEMV (beyond: dequantize + cuBLAS f16 GEMM).
const W8A16_GEMV_MAX_M: usize = 16;
/// Scratch shapes kept alive.
const SCRATCH_CACHE: usize = 6;
/// Logit elements per LM-head chunk.
const HEAD_CHUNK_ELEMS: usize = 64 << 20;

/// Launches kernel `$name` of the model module on the model's stream with the listed arguments.
macro_rules! launch {
    ($self:expr, $name:expr, $cfg:expr, [$($arg:expr),* $(,)?]) => {{
        let f = $self.kernels.get($name)?;
        let mut b = $self.stream.launch_builder(f);
        $( b.arg($arg); )*
        // SAFETY: every call site lists exactly the parameters of the kernel `$name` in
        // kernels/model.cu, in order and with matching types (device buffers of this context
        // as cudarc slices/views or u64 device addresses, scalars as u32/i32/u64/f32), and sizes
        // the buffers for the indices the kernel touches under `$cfg` (stated at each site).
        unsafe { b.launch($cfg) }
            .map(|_| ())
            .map_err(|e| GpuError::driver("cuLaunchKernel", $self.ordinal(), $name, e))
    }};
}

mod decode;
pub use decode::{AUTO_TENSOR_CORE_MAX_HIDDEN, GemvTile};

fn grid(items: u64, sms: u32) -> LaunchConfig {
    let blocks = items.div_ceil(256).clamp(1, u64::from(sms.max(1)) * 16);
    LaunchConfig { grid_dim: (blocks as u32, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 }
}

fn rows_cfg(rows: usize, threads: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows.max(1) as u32, 1, 1),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Rows of a forward pass rounded up so that few distinct scratch shapes exist.
pub(crate) fn bucket_rows(m: usize) -> usize {
    match m {
        0..=16 => m.max(1),
        17..=64 => m.div_ceil(16) * 16,
        65..=256 => m.div_ceil(64) * 64,
        _ => m.div_ceil(256) * 256,
    }
}

/// A Llama-family decoder resident on one CUDA device.
///
/// ```no_run
/// # #[cfg(feature = "cuda")] {
/// use std::sync::Arc;
/// use eai_model::cuda::{GpuModel, GpuScheme, open_device};
/// use eai_model::{GgufFile, GgufSource, ModelConfig};
/// let dev = open_device(0)?;
/// let f = GgufFile::open("SmolLM2-135M-Instruct.Q4_1.gguf")?;
/// let cfg = ModelConfig::from_gguf(&f)?;
/// let mut m = GpuModel::load(dev, &GgufSource::new(&f, &cfg), cfg, GpuScheme::Fp16)?;
/// let logits = m.logits_for(&[1, 504, 3458])?;
/// println!("{} positions, memory {:?}", logits.len(), m.memory()?);
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct GpuModel {
    dev: Arc<CudaDevice>,
    stream: Arc<CudaStream>,
    kernels: Kernels,
    blas: Blas,
    cfg: ModelConfig,
    scheme: GpuScheme,
    embed: Dense,
    head: Option<Dense>,
    /// The int8 LM head ([`GpuOptions::int8_head`]); when present it replaces `head`/`embed`
    /// for logits.
    head_i8: Option<Box<DeviceQuantized>>,
    layers: Vec<GpuLayer>,
    norm: CudaSlice<f32>,
    rope_cos: CudaSlice<f32>,
    rope_sin: CudaSlice<f32>,
    inv_freq: CudaSlice<f32>,
    rope_len: usize,
    kv: Option<CudaSlice<f32>>,
    kv_tokens: usize,
    scratch: Vec<Scratch>,
    head_scratch: Option<HeadScratch>,
    weight_bytes: u64,
    wtmp_len: usize,
    gemv: bool,
    /// Built on its own stream, so decode steps can be captured.
    capturable: bool,
    graph_on: bool,
    graph: Option<DecodeGraph>,
    /// Fused decode kernels for passes of at most `GEMV_DENSE_MAX_M` rows.
    fused: bool,
    tile: GemvTile,
}

/// Opens CUDA device `ordinal` through eai-quant (library probes first: a missing driver or
/// toolkit is an error, never a panic) and checks that cuBLAS loads as well.
///
/// # Errors
/// [`GpuError::Cuda`] (no driver, no device, too old a GPU, NVRTC/cuBLASLt missing) or
/// [`GpuError::LibraryMissing`] for cuBLAS.
pub fn open_device(ordinal: usize) -> Result<Arc<CudaDevice>> {
    let dev = CudaDevice::open(ordinal)?;
    // SAFETY: only probes for the shared library with dlopen; runs none of its code.
    if !unsafe { cudarc::cublas::sys::is_culib_present() } {
        return Err(GpuError::LibraryMissing {
            library: "cublas",
            hint: "cuBLAS runs the FP32/FP16/BF16 linear layers",
        });
    }
    Ok(Arc::new(dev))
}

/// The stream eai-quant enqueues all its work on. eai-quant keeps it private, but every buffer
/// it allocates is bound to it; the model enqueues its own kernels and cuBLAS calls on the same
/// stream, so everything runs in submission order.
fn quant_stream(dev: &CudaDevice) -> Result<Arc<CudaStream>> {
    let anchor: DeviceBuffer<u8> = dev.zeros(1)?;
    Ok(anchor.as_cudarc().stream().clone())
}

struct Loader<'a> {
    dev: &'a CudaDevice,
    stream: &'a Arc<CudaStream>,
    bytes: u64,
}

impl Loader<'_> {
    fn check_fits(&self, what: &str, bytes: u64) -> Result<()> {
        check_fits(self.stream, self.dev.info().ordinal, what, bytes)
    }

    fn upload<T: DeviceRepr + ValidAsZeroBits + Copy>(
        &mut self,
        what: &str,
        data: &[T],
    ) -> Result<CudaSlice<T>> {
        let bytes = std::mem::size_of_val(data) as u64;
        self.check_fits(what, bytes)?;
        let s = self.stream.clone_htod(data).map_err(|e| {
            GpuError::driver("cuMemcpyHtoD", self.dev.info().ordinal, what.to_string(), e)
        })?;
        self.bytes += bytes;
        Ok(s)
    }

    fn dense(&mut self, what: &str, data: &[f32], ty: InType) -> Result<Dense> {
        Ok(match ty {
            InType::F32 => Dense::F32(self.upload(what, data)?),
            InType::F16 => {
                use rayon::prelude::*;
                let h: Vec<f16> = data.par_iter().map(|&v| f16::from_f32(v)).collect();
                Dense::F16(self.upload(what, &h)?)
            }
            InType::Bf16 => {
                use rayon::prelude::*;
                let h: Vec<bf16> = data.par_iter().map(|&v| bf16::from_f32(v)).collect();
                Dense::Bf16(self.upload(what, &h)?)
            }
        })
    }

    /// Quantizes on the device with eai-quant's int8 weight spec (bit-identical to the CPU
    /// quantizer the reference path uses).
    fn int8(&mut self, name: &str, data: &[f32], n: usize, k: usize) -> Result<DeviceQuantized> {
        self.check_fits(
            &format!("{name} (f32 staging for int8 quantization)"),
            5 * data.len() as u64,
        )?;
        let buf = self.dev.upload(data)?;
        let q = self.dev.quantize(name, &QuantSpec::int8_weight(), &buf, &[n, k])?;
        self.bytes += (n * k + 4 * n) as u64;
        Ok(q)
    }

    fn linear(
        &mut self,
        name: String,
        data: Vec<f32>,
        n: usize,
        k: usize,
        scheme: GpuScheme,
    ) -> Result<GpuLinear> {
        let w = match scheme {
            GpuScheme::Fp32 | GpuScheme::Fp16 | GpuScheme::Bf16 => Weight::Dense(self.dense(
                &format!("{name} weights ({scheme})"),
                &data,
                scheme.float_type(),
            )?),
            _ => Weight::I8(Box::new(self.int8(&name, &data, n, k)?)),
        };
        Ok(GpuLinear { name, n, k, w })
    }
}

fn check_fits(stream: &CudaStream, ordinal: usize, what: &str, bytes: u64) -> Result<()> {
    stream
        .context()
        .bind_to_thread()
        .map_err(|e| GpuError::driver("cuCtxSetCurrent", ordinal, what.to_string(), e))?;
    let (free, total) = cudarc::driver::result::mem_get_info()
        .map_err(|e| GpuError::driver("cuMemGetInfo", ordinal, what.to_string(), e))?;
    if bytes > free as u64 {
        return Err(oom(ordinal, what, bytes, free as u64, total as u64));
    }
    Ok(())
}

fn oom(ordinal: usize, what: &str, bytes: u64, free: u64, total: u64) -> GpuError {
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    GpuError::OutOfMemory {
        ordinal,
        what: what.to_string(),
        needed_mib: mib(bytes),
        free_mib: mib(free),
        total_mib: mib(total),
    }
}

impl GpuModel {
    /// Loads the model from `src` (Hugging Face tensor names, as every [`WeightSource`] hands
    /// them out) onto `dev`, converting every projection to `scheme`. Q/K/V and gate/up are
    /// concatenated into one matrix each, so a block runs four GEMMs.
    ///
    /// # Errors
    /// Missing or mis-shaped tensors ([`GpuError::Model`]), a shape the kernels do not support
    /// (head dimension not a multiple of 32 or above 256), [`GpuError::OutOfMemory`] naming the
    /// tensor that did not fit, or any CUDA error.
    pub fn load(
        dev: Arc<CudaDevice>,
        src: &dyn WeightSource,
        cfg: ModelConfig,
        scheme: GpuScheme,
    ) -> Result<Self> {
        Self::load_with(dev, src, cfg, GpuOptions::new(scheme))
    }

    /// As [`GpuModel::load`] with explicit [`GpuOptions`].
    ///
    /// # Errors
    /// As [`GpuModel::load`].
    pub fn load_with(
        dev: Arc<CudaDevice>,
        src: &dyn WeightSource,
        cfg: ModelConfig,
        opts: GpuOptions,
    ) -> Result<Self> {
        let name = src.source_name();
        cfg.validate(&name)?;
        let get = |t: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let ten = src.tensor(t)?.ok_or_else(|| crate::Error::MissingTensor {
                tensor: t.into(),
                source_name: name.clone(),
            })?;
            if ten.shape != shape {
                return Err(crate::Error::ShapeMismatch {
                    tensor: t.into(),
                    expected: shape.to_vec(),
                    found: ten.shape,
                }
                .into());
            }
            Ok(ten.data)
        };
        Self::build(dev, cfg, opts, &name, |what| match what {
            Tensor::Embed { vocab, h } => get("model.embed_tokens.weight", &[vocab, h]),
            Tensor::Head { vocab, h } => {
                if let Some(t) = src.tensor("lm_head.weight")? {
                    if t.shape != [vocab, h] {
                        return Err(crate::Error::ShapeMismatch {
                            tensor: "lm_head.weight".into(),
                            expected: vec![vocab, h],
                            found: t.shape,
                        }
                        .into());
                    }
                    Ok(t.data)
                } else {
                    Err(crate::Error::MissingTensor {
                        tensor: "lm_head.weight".into(),
                        source_name: name.clone(),
                    }
                    .into())
                }
            }
            Tensor::Norm(t, h) | Tensor::Bias(t, h) => get(&t, &[h]),
            Tensor::Matrix(t, r, c) => get(&t, &[r, c]),
        })
    }

    /// A model with `cfg`'s exact shapes and synthetic weights (uniform, variance-preserving
    /// scale, fixed `seed`), built on the host layer by layer: for speed and energy
    /// measurements at a scale whose real weights are not at hand (e.g. a 7B configuration).
    ///
    /// # Errors
    /// As [`GpuModel::load`].
    pub fn synthetic(
        dev: Arc<CudaDevice>,
        cfg: ModelConfig,
        scheme: GpuScheme,
        seed: u64,
    ) -> Result<Self> {
        Self::synthetic_with(dev, cfg, GpuOptions::new(scheme), seed)
    }

    /// As [`GpuModel::synthetic`] with explicit [`GpuOptions`].
    ///
    /// # Errors
    /// As [`GpuModel::load`].
    pub fn synthetic_with(
        dev: Arc<CudaDevice>,
        cfg: ModelConfig,
        opts: GpuOptions,
        seed: u64,
    ) -> Result<Self> {
        let mut tensor = 0u64;
        let mut fill = move |len: usize, amp: f32| -> Vec<f32> {
            use rayon::prelude::*;
            tensor += 1;
            let mut v = vec![0f32; len];
            v.par_chunks_mut(1 << 16).enumerate().for_each(|(ci, chunk)| {
                let mut st = (seed ^ tensor.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                    .wrapping_add((ci as u64).wrapping_mul(0xD1B5_4A32_D192_ED03))
                    | 1;
                for x in chunk {
                    st ^= st << 13;
                    st ^= st >> 7;
                    st ^= st << 17;
                    *x = ((st >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * amp;
                }
            });
            v
        };
        Self::build(dev, cfg, opts, "<synthetic>", |what| {
            Ok(match what {
                Tensor::Embed { vocab, h } | Tensor::Head { vocab, h } => fill(vocab * h, 1.0),
                Tensor::Norm(_, h) => vec![1.0; h],
                Tensor::Bias(_, h) => fill(h, 0.1),
                Tensor::Matrix(_, r, c) => fill(r * c, (3.0 / c as f32).sqrt()),
            })
        })
    }

    fn build(
        dev: Arc<CudaDevice>,
        cfg: ModelConfig,
        opts: GpuOptions,
        model_name: &str,
        mut fetch: impl FnMut(Tensor) -> Result<Vec<f32>>,
    ) -> Result<Self> {
        let scheme = opts.scheme;
        let (h, d, nh, nkv, f) = (cfg.hidden, cfg.head_dim, cfg.n_heads, cfg.n_kv_heads, cfg.ffn);
        if !cfg.arch.uses_rope() {
            return Err(GpuError::Unsupported {
                model: model_name.to_string(),
                reason: format!(
                    "{} runs on the CPU engine only so far (ALiBi, LayerNorm and GELU kernels \
                     are not in the GPU decoder yet)",
                    cfg.arch.name()
                ),
            });
        }
        if d % 32 != 0 || d > 256 || nkv == 0 || nh % nkv != 0 {
            return Err(GpuError::Unsupported {
                model: model_name.to_string(),
                reason: format!(
                    "head_dim {d} (must be a multiple of 32, at most 256) / heads {nh}:{nkv}"
                ),
            });
        }
        if scheme.is_int8_act() || scheme == GpuScheme::W8A16 {
            for (what, v) in [("hidden", h), ("ffn", f), ("heads·head_dim", nh * d)] {
                if v % 16 != 0 {
                    return Err(GpuError::Unsupported {
                        model: model_name.to_string(),
                        reason: format!("{what} = {v} is not a multiple of 16 (int8 kernels)"),
                    });
                }
            }
        }
        let ordinal = dev.info().ordinal;
        dev.load_kernels()?;
        // A CUDA graph cannot capture the legacy default stream eai-quant opens devices on:
        // with graphs on, the model (and its eai-quant calls) get a stream of their own.
        let dev = if opts.cuda_graph { Arc::new(dev.on_new_stream()?) } else { dev };
        let stream = quant_stream(&dev)?;
        // SAFETY: only probes for the shared library with dlopen; runs none of its code.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(GpuError::LibraryMissing {
                library: "nvrtc",
                hint: "NVRTC compiles the model kernels",
            });
        }
        let kernels = Kernels::load(stream.context(), &dev.arch(), ordinal)?;
        let blas = Blas::new(&stream, ordinal)?;
        let mut ld = Loader { dev: &dev, stream: &stream, bytes: 0 };
        let table_ty = opts.table_type();
        let tsize = |t: InType| if t == InType::F32 { 4 } else { 2 };
        ld.check_fits("model.embed_tokens.weight", (cfg.vocab * h * tsize(table_ty)) as u64)?;
        let embed_f32 = fetch(Tensor::Embed { vocab: cfg.vocab, h })?;
        let embed = ld.dense("model.embed_tokens.weight", &embed_f32, table_ty)?;
        let int8_head = opts.int8_head
            && matches!(opts.scheme, GpuScheme::W8A16 | GpuScheme::W8A8 | GpuScheme::Dynamic);
        if int8_head && !h.is_multiple_of(16) {
            return Err(GpuError::Unsupported {
                model: model_name.to_string(),
                reason: format!("int8 LM head needs a hidden size divisible by 16, not {h}"),
            });
        }
        let mut head_i8 = None;
        if int8_head && cfg.tie_embeddings {
            head_i8 = Some(Box::new(ld.int8("lm_head (tied, int8)", &embed_f32, cfg.vocab, h)?));
        }
        drop(embed_f32);
        let head = if cfg.tie_embeddings {
            None
        } else if int8_head {
            let w = fetch(Tensor::Head { vocab: cfg.vocab, h })?;
            head_i8 = Some(Box::new(ld.int8("lm_head.weight (int8)", &w, cfg.vocab, h)?));
            None
        } else {
            ld.check_fits("lm_head.weight", (cfg.vocab * h * tsize(table_ty)) as u64)?;
            let w = fetch(Tensor::Head { vocab: cfg.vocab, h })?;
            Some(ld.dense("lm_head.weight", &w, table_ty)?)
        };
        let wq = (nh + 2 * nkv) * d;
        let mut layers = Vec::with_capacity(cfg.n_layers);
        for l in 0..cfg.n_layers {
            let p = format!("model.layers.{l}");
            let mut qkv = fetch(Tensor::Matrix(format!("{p}.self_attn.q_proj.weight"), nh * d, h))?;
            qkv.extend(fetch(Tensor::Matrix(format!("{p}.self_attn.k_proj.weight"), nkv * d, h))?);
            qkv.extend(fetch(Tensor::Matrix(format!("{p}.self_attn.v_proj.weight"), nkv * d, h))?);
            let qkv_bias = if cfg.qkv_bias {
                let mut b = fetch(Tensor::Bias(format!("{p}.self_attn.q_proj.bias"), nh * d))?;
                b.extend(fetch(Tensor::Bias(format!("{p}.self_attn.k_proj.bias"), nkv * d))?);
                b.extend(fetch(Tensor::Bias(format!("{p}.self_attn.v_proj.bias"), nkv * d))?);
                Some(ld.upload(&format!("{p}.self_attn.qkv bias"), &b)?)
            } else {
                None
            };
            let qkv = ld.linear(format!("{p}.self_attn.qkv"), qkv, wq, h, scheme)?;
            let o = fetch(Tensor::Matrix(format!("{p}.self_attn.o_proj.weight"), h, nh * d))?;
            let o = ld.linear(format!("{p}.self_attn.o_proj"), o, h, nh * d, scheme)?;
            let mut gu = fetch(Tensor::Matrix(format!("{p}.mlp.gate_proj.weight"), f, h))?;
            gu.extend(fetch(Tensor::Matrix(format!("{p}.mlp.up_proj.weight"), f, h))?);
            let gate_up = ld.linear(format!("{p}.mlp.gate_up"), gu, 2 * f, h, scheme)?;
            let down = fetch(Tensor::Matrix(format!("{p}.mlp.down_proj.weight"), h, f))?;
            let down = ld.linear(format!("{p}.mlp.down_proj"), down, h, f, scheme)?;
            let attn_norm = ld.upload(
                &format!("{p}.input_layernorm"),
                &fetch(Tensor::Norm(format!("{p}.input_layernorm.weight"), h))?,
            )?;
            let ffn_norm = ld.upload(
                &format!("{p}.post_attention_layernorm"),
                &fetch(Tensor::Norm(format!("{p}.post_attention_layernorm.weight"), h))?,
            )?;
            layers.push(GpuLayer { attn_norm, qkv, qkv_bias, o, ffn_norm, gate_up, down });
        }
        let norm = ld.upload("model.norm", &fetch(Tensor::Norm("model.norm.weight".into(), h))?)?;
        // Rope tables exactly as the CPU reference computes them (f32 angle, f32 cos/sin).
        let inv = cfg.rope_inv_freq();
        let rope_len = cfg.max_position.clamp(1, ROPE_TABLE_MAX);
        let half = d / 2;
        let mut cos = vec![0f32; rope_len * half];
        let mut sin = vec![0f32; rope_len * half];
        for p in 0..rope_len {
            for (i, fr) in inv.iter().enumerate() {
                let a = p as f32 * fr;
                cos[p * half + i] = a.cos();
                sin[p * half + i] = a.sin();
            }
        }
        let rope_cos = ld.upload("rope cos table", &cos)?;
        let rope_sin = ld.upload("rope sin table", &sin)?;
        let inv_freq = ld.upload("rope inverse frequencies", &inv)?;
        let weight_bytes = ld.bytes;
        let wtmp_len = if scheme == GpuScheme::W8A16 {
            [wq * h, h * nh * d, 2 * f * h, h * f].into_iter().max().unwrap_or(0)
        } else {
            0
        };
        dev.synchronize()?;
        Ok(GpuModel {
            dev,
            stream,
            kernels,
            blas,
            cfg,
            scheme,
            embed,
            head,
            head_i8,
            layers,
            norm,
            rope_cos,
            rope_sin,
            inv_freq,
            rope_len,
            kv: None,
            kv_tokens: 0,
            scratch: Vec::new(),
            head_scratch: None,
            weight_bytes,
            wtmp_len,
            gemv: opts.decode_gemv,
            capturable: opts.cuda_graph,
            graph_on: opts.cuda_graph,
            graph: None,
            fused: opts.fused_decode,
            tile: opts.gemv_tile,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The scheme.
    pub fn scheme(&self) -> GpuScheme {
        self.scheme
    }

    /// The device.
    pub fn device(&self) -> &Arc<CudaDevice> {
        &self.dev
    }

    /// `name (sm_XY, N GiB)` of the device.
    pub fn device_label(&self) -> String {
        let i = self.dev.info();
        format!(
            "cuda:{} {} (sm_{}{}, {:.0} GiB)",
            i.ordinal,
            i.name,
            i.compute_capability.0,
            i.compute_capability.1,
            i.total_memory_bytes as f64 / (1u64 << 30) as f64
        )
    }

    /// Device memory in use by this model and the device's free/total memory.
    ///
    /// # Errors
    /// [`GpuError::Driver`] when the driver cannot be queried.
    pub fn memory(&self) -> Result<GpuMemory> {
        let ord = self.dev.info().ordinal;
        self.stream
            .context()
            .bind_to_thread()
            .map_err(|e| GpuError::driver("cuCtxSetCurrent", ord, "memory report", e))?;
        let (free, total) = cudarc::driver::result::mem_get_info()
            .map_err(|e| GpuError::driver("cuMemGetInfo", ord, "memory report", e))?;
        Ok(GpuMemory {
            weights: self.weight_bytes,
            kv_cache: self.kv.as_ref().map_or(0, |k| 4 * k.len() as u64),
            scratch: self.scratch.iter().map(|s| s.bytes).sum::<u64>()
                + self.head_scratch.as_ref().map_or(0, |s| s.bytes),
            device_free: free as u64,
            device_total: total as u64,
        })
    }

    /// Turns CUDA-graph decode on or off (see [`GpuOptions::cuda_graph`]) and returns whether it
    /// is now on: it can only be turned on for a model built with `cuda_graph` set (which runs on
    /// a capturable stream of its own).
    pub fn set_cuda_graph(&mut self, on: bool) -> bool {
        self.graph_on = on && self.capturable;
        if !self.graph_on {
            self.graph = None;
        }
        self.graph_on
    }

    /// Turns the fused decode kernels on or off (see [`GpuOptions::fused_decode`]); they run
    /// only where the decode GEMV runs (`decode_gemv`), so this returns whether they are on.
    pub fn set_fused_decode(&mut self, on: bool) -> bool {
        self.fused = on;
        self.graph = None;
        self.fused && self.gemv
    }

    /// Sets the row layout of the fused path's plain GEMVs (see [`GpuOptions::gemv_tile`]).
    pub fn set_gemv_tile(&mut self, tile: GemvTile) {
        self.tile = tile;
        self.graph = None;
    }

    /// Whether decode steps are captured into and replayed from a CUDA graph.
    pub fn cuda_graph(&self) -> bool {
        self.graph_on
    }

    /// Frees the KV cache and activation buffers (weights stay).
    pub fn release_buffers(&mut self) {
        self.graph = None;
        self.kv = None;
        self.kv_tokens = 0;
        self.scratch.clear();
        self.head_scratch = None;
    }

    fn ordinal(&self) -> usize {
        self.dev.info().ordinal
    }

    fn alloc<T: DeviceRepr + ValidAsZeroBits>(
        &self,
        what: &str,
        len: usize,
    ) -> Result<CudaSlice<T>> {
        let bytes = (len.max(1) * std::mem::size_of::<T>()) as u64;
        check_fits(&self.stream, self.ordinal(), what, bytes)?;
        self.stream
            .alloc_zeros::<T>(len.max(1))
            .map_err(|e| GpuError::driver("cuMemAlloc", self.ordinal(), what.to_string(), e))
    }

    fn dbuf<T: DeviceScalar>(&self, what: &str, len: usize) -> Result<DeviceBuffer<T>> {
        let bytes = (len.max(1) * std::mem::size_of::<T>()) as u64;
        check_fits(&self.stream, self.ordinal(), what, bytes)?;
        Ok(self.dev.zeros(len)?)
    }

    fn dense_buf(&self, what: &str, ty: InType, len: usize) -> Result<Dense> {
        Ok(match ty {
            InType::F32 => Dense::F32(self.alloc(what, len)?),
            InType::F16 => Dense::F16(self.alloc(what, len)?),
            InType::Bf16 => Dense::Bf16(self.alloc(what, len)?),
        })
    }

    fn new_scratch(&self, m: usize) -> Result<Scratch> {
        let c = &self.cfg;
        let (h, d, nh, nkv, f) = (c.hidden, c.head_dim, c.n_heads, c.n_kv_heads, c.ffn);
        let wq = (nh + 2 * nkv) * d;
        let kmax = h.max(nh * d).max(f);
        let what = |s: &str| format!("activations `{s}` for {m} rows");
        let mut bytes = (m * (4 * 4 + 4 * (h + wq + 2 * f))) as u64;
        let mut ks = vec![h, nh * d, f];
        ks.dedup();
        ks.sort_unstable();
        ks.dedup();
        let mut ns = vec![wq, h, 2 * f];
        ns.sort_unstable();
        ns.dedup();
        let act = match self.scheme {
            GpuScheme::Fp32 | GpuScheme::Fp16 | GpuScheme::Bf16 => {
                let a = self.dense_buf(&what("gemm input"), self.scheme.float_type(), m * kmax)?;
                bytes += a.bytes();
                Act::Float(a)
            }
            GpuScheme::W8A16 => {
                let mut xin = Vec::new();
                for &k in &ks {
                    xin.push((k, self.dbuf::<f16>(&what("f16 gemm input"), m * k)?));
                    bytes += 2 * (m * k) as u64;
                }
                let mut yout = Vec::new();
                if m <= W8A16_GEMV_MAX_M {
                    for &n in &ns {
                        yout.push((n, self.dbuf::<f16>(&what("f16 gemv output"), m * n)?));
                        bytes += 2 * (m * n) as u64;
                    }
                }
                let wtmp = if m > W8A16_GEMV_MAX_M {
                    bytes += 2 * self.wtmp_len as u64;
                    Some(self.alloc("W8A16 f16 weight staging", self.wtmp_len)?)
                } else {
                    None
                };
                Act::W8A16 { xin, yout, wtmp }
            }
            GpuScheme::W8A8 | GpuScheme::Dynamic => {
                let mut qin = Vec::new();
                for &k in &ks {
                    qin.push((k, self.dbuf::<i8>(&what("int8 gemm input"), m * k)?));
                    bytes += (m * k) as u64;
                }
                let mut acc = Vec::new();
                for &n in &ns {
                    acc.push((n, self.dbuf::<i32>(&what("int32 accumulator"), m * n)?));
                    bytes += 4 * (m * n) as u64;
                }
                bytes += 4 * (m + m * kmax + 1) as u64;
                Act::Int8 {
                    qin,
                    acc,
                    sx: self.alloc(&what("token scales"), m)?,
                    tmp: self.alloc(&what("f32 staging"), m * kmax)?,
                    slot: self.alloc("absmax slot", 1)?,
                }
            }
        };
        Ok(Scratch {
            m,
            ids: self.alloc(&what("token ids"), m)?,
            seq: self.alloc(&what("sequence ids"), m)?,
            pos: self.alloc(&what("positions"), m)?,
            seq_off: self.alloc(&what("sequence offsets"), m)?,
            pre: self.alloc(&what("shared-prefix descriptors"), 2 * m)?,
            prefill: false,
            x: self.alloc(&what("residual stream"), m * h)?,
            qkv: self.alloc(&what("qkv"), m * wq)?,
            gu: self.alloc(&what("gate/up"), m * 2 * f)?,
            act,
            bytes,
        })
    }

    fn take_scratch(&mut self, m: usize) -> Result<Scratch> {
        if let Some(i) = self.scratch.iter().position(|s| s.m == m) {
            return Ok(self.scratch.remove(i));
        }
        match self.new_scratch(m) {
            Ok(s) => Ok(s),
            Err(e) if e.is_out_of_memory() && !self.scratch.is_empty() => {
                self.scratch.clear();
                self.new_scratch(m)
            }
            Err(e) => Err(e),
        }
    }

    fn put_scratch(&mut self, s: Scratch) {
        self.scratch.push(s);
        if self.scratch.len() > SCRATCH_CACHE {
            self.scratch.remove(0);
        }
    }

    /// Ensures the KV cache holds `tokens` slots per layer (contents are not kept on growth).
    fn ensure_kv(&mut self, tokens: usize) -> Result<()> {
        if tokens <= self.kv_tokens && self.kv.is_some() {
            return Ok(());
        }
        let c = &self.cfg;
        let tokens = tokens.max(self.kv_tokens).next_multiple_of(256);
        let len = c.n_layers * 2 * tokens * c.n_kv_heads * c.head_dim;
        self.graph = None;
        self.kv = None;
        let what = format!("KV cache for {tokens} tokens ({} layers, f32)", c.n_layers);
        self.kv = Some(self.alloc::<f32>(&what, len)?);
        self.kv_tokens = tokens;
        Ok(())
    }

    fn upload_into<T: DeviceRepr>(
        &self,
        host: &[T],
        dst: &mut CudaSlice<T>,
        what: &str,
    ) -> Result<()> {
        if host.is_empty() {
            return Ok(());
        }
        let mut view = dst.slice_mut(..host.len());
        self.stream
            .memcpy_htod(host, &mut view)
            .map_err(|e| GpuError::driver("cuMemcpyHtoD", self.ordinal(), what.to_string(), e))
    }

    /// Runs the decoder over the rows of `plan`, leaving the last hidden states (before the
    /// final norm) in the scratch's residual buffer.
    fn forward(
        &self,
        sc: &mut Scratch,
        plan: &RowPlan,
        kv: &CudaSlice<f32>,
        kv_tokens: usize,
    ) -> Result<()> {
        self.upload_plan(sc, plan, kv_tokens)?;
        self.enqueue_forward(sc, kv, kv_tokens, plan.real)
    }

    /// Checks `plan` against the scratch shape, the vocabulary and the cache, and uploads it.
    fn upload_plan(&self, sc: &mut Scratch, plan: &RowPlan, kv_tokens: usize) -> Result<()> {
        let c = &self.cfg;
        let m = sc.m;
        if plan.ids.len() != m
            || plan.seq.len() != m
            || plan.pos.len() != m
            || plan.seq_off.len() > m
            || (!plan.pre.is_empty() && plan.pre.len() != 2 * plan.seq_off.len())
        {
            return Err(GpuError::invalid(format!("row plan does not fit {m} rows")));
        }
        for (r, (&s, &p)) in plan.seq.iter().zip(&plan.pos).enumerate() {
            if s >= 0 {
                let off = plan.seq_off.get(s as usize).copied().unwrap_or(u32::MAX) as usize;
                if off.saturating_add(p.max(0) as usize) >= kv_tokens {
                    return Err(GpuError::invalid(format!("row {r}: KV slot outside the cache")));
                }
                if let Some(d) = plan.pre.get(2 * s as usize..2 * s as usize + 2) {
                    let (po, pl) = (d[0] as usize, d[1] as usize);
                    if pl > 0 && (po.saturating_add(pl) > kv_tokens || pl > p.max(0) as usize) {
                        return Err(GpuError::invalid(format!(
                            "row {r}: shared prefix outside the cache or after the position"
                        )));
                    }
                }
            }
            if plan.ids[r] as usize >= c.vocab {
                return Err(GpuError::invalid(format!(
                    "token id {} is outside the vocabulary ({})",
                    plan.ids[r], c.vocab
                )));
            }
        }
        self.upload_into(&plan.ids, &mut sc.ids, "token ids")?;
        self.upload_into(&plan.seq, &mut sc.seq, "sequence ids")?;
        self.upload_into(&plan.pos, &mut sc.pos, "positions")?;
        sc.prefill = !plan.pre.is_empty();
        self.upload_into(&plan.pre, &mut sc.pre, "shared-prefix descriptors")?;
        self.upload_into(&plan.seq_off, &mut sc.seq_off, "sequence offsets")
    }

    /// Enqueues the decoder over the uploaded rows of `sc` (no host synchronization, no
    /// allocation, no host-to-device copy: capturable). `real` rows belong to sequences.
    fn enqueue_forward(
        &self,
        sc: &mut Scratch,
        kv: &CudaSlice<f32>,
        kv_tokens: usize,
        real: usize,
    ) -> Result<()> {
        let c = &self.cfg;
        let (h, d, nh, nkv, f) = (c.hidden, c.head_dim, c.n_heads, c.n_kv_heads, c.ffn);
        let m = sc.m;
        let sms = self.dev.info().multiprocessors;
        let (m32, h32) = (m as u32, h as u32);
        // Embedding: x[m, h] ← table[ids].
        let ename = match self.embed.suffix() {
            "f32" => "embed_f32",
            "f16" => "embed_f16",
            _ => "embed_bf16",
        };
        {
            let table = self.embed.ptr(&self.stream);
            // ids < vocab (checked), table holds vocab·h, x holds m·h.
            launch!(self, ename, grid((m * h) as u64, sms), [&table, &sc.ids, &sc.x, &m32, &h32])?;
        }
        // Generation passes (no shared-prefix descriptors) of few rows: the fused decode
        // layers. Scoring passes keep the scoring attention kernel, which reads the prefixes.
        if !sc.prefill && self.fused_fits(m) {
            return self.fused_layers(sc, kv, kv_tokens);
        }
        let per_layer = kv_tokens * nkv * d;
        let table_len = self.rope_len as u32;
        let (nh32, nkv32, d32) = (nh as u32, nkv as u32, d as u32);
        let scale = 1.0f32 / (d as f32).sqrt();
        let window = c.sliding_window.map_or(0u32, |w| w.min(u32::MAX as usize) as u32);
        for (li, layer) in self.layers.iter().enumerate() {
            let kc = kv.slice(2 * li * per_layer..(2 * li + 1) * per_layer);
            let vc = kv.slice((2 * li + 1) * per_layer..(2 * li + 2) * per_layer);
            self.produce(sc, Source::Norm(&layer.attn_norm), h, real)?;
            self.linear(sc, &layer.qkv, Out::Qkv)?;
            {
                let bias: u64 = layer.qkv_bias.as_ref().map_or(0, |b| b.device_ptr(&self.stream).0);
                // One block per row; slots seq_off[s] + pos < kv_tokens (checked above); qkv
                // holds m rows of (nh + 2nkv)·d; bias (0 = none) holds (nh + 2nkv)·d.
                launch!(
                    self,
                    "rope_qkv",
                    rows_cfg(m, 128),
                    [
                        &sc.qkv,
                        &bias,
                        &sc.seq,
                        &sc.pos,
                        &sc.seq_off,
                        &self.rope_cos,
                        &self.rope_sin,
                        &self.inv_freq,
                        &table_len,
                        &kc,
                        &vc,
                        &nh32,
                        &nkv32,
                        &d32,
                    ]
                )?;
            }
            self.produce(sc, Source::Attn { kc: &kc, vc: &vc, scale, window }, nh * d, real)?;
            self.linear(sc, &layer.o, Out::Residual)?;
            self.produce(sc, Source::Norm(&layer.ffn_norm), h, real)?;
            self.linear(sc, &layer.gate_up, Out::Gu)?;
            self.produce(sc, Source::Swiglu, f, real)?;
            self.linear(sc, &layer.down, Out::Residual)?;
        }
        Ok(())
    }

    /// Builds the GEMM input of width `k` from `src` in the scheme's activation format.
    fn produce(&self, sc: &mut Scratch, src: Source<'_>, k: usize, real: usize) -> Result<()> {
        let c = &self.cfg;
        let m = sc.m;
        let sms = self.dev.info().multiprocessors;
        let (m32, k32, h32, f32_) = (m as u32, k as u32, c.hidden as u32, c.ffn as u32);
        let (nh32, nkv32, d32) = (c.n_heads as u32, c.n_kv_heads as u32, c.head_dim as u32);
        let eps = c.rms_eps;
        let null: u64 = 0;
        let Scratch { x, gu, qkv, seq, pos, seq_off, pre, prefill, act, .. } = sc;
        // Kernel launches below: rmsnorm/quant kernels run one block per row over k columns of
        // buffers holding m·k; attention one block per (head, row) reading the cache slots the
        // rope kernel wrote; swiglu reads m·2f and writes m·f.
        let attn_cfg =
            LaunchConfig { grid_dim: (nh32, m32, 1), block_dim: (128, 1, 1), shared_mem_bytes: 0 };
        // Scoring attention: one block per (row, kv head, group of ≤ 8 query heads), one warp
        // per query head, a chunk of `ch` keys staged in shared memory (see model.cu).
        let prefill = *prefill;
        let group = c.n_heads / c.n_kv_heads.max(1);
        let ch = (4096 / c.head_dim.max(1)).min(32);
        let pf_cfg = LaunchConfig {
            grid_dim: (m32, nkv32, group.div_ceil(8) as u32),
            block_dim: (32 * group.min(8) as u32, 1, 1),
            shared_mem_bytes: (4 * (ch * (c.head_dim + 4) + ch * c.head_dim + 8 * c.head_dim))
                as u32,
        };
        macro_rules! float_stage {
            ($suffix:literal, $out:expr) => {{
                let out = $out;
                match src {
                    Source::Norm(w) => launch!(
                        self,
                        concat!("rmsnorm_", $suffix),
                        rows_cfg(m, 256),
                        [&*x, &null, w, out, &h32, &eps,]
                    ),
                    Source::Attn { kc, vc, scale, window } if prefill => launch!(
                        self,
                        concat!("attention_prefill_", $suffix),
                        pf_cfg,
                        [
                            &*qkv, &*seq, &*pos, &*seq_off, &*pre, kc, vc, out, &nh32, &nkv32,
                            &d32, &scale, &window,
                        ]
                    ),
                    Source::Attn { kc, vc, scale, window } => launch!(
                        self,
                        concat!("attention_", $suffix),
                        attn_cfg,
                        [
                            &*qkv, &*seq, &*pos, &*seq_off, kc, vc, out, &nh32, &nkv32, &d32,
                            &scale, &window,
                        ]
                    ),
                    Source::Swiglu => launch!(
                        self,
                        concat!("swiglu_", $suffix),
                        grid((m * c.ffn) as u64, sms),
                        [&*gu, out, &m32, &f32_,]
                    ),
                }
            }};
        }
        match act {
            Act::Float(Dense::F32(a)) => float_stage!("f32", &*a),
            Act::Float(Dense::F16(a)) => float_stage!("f16", &*a),
            Act::Float(Dense::Bf16(a)) => float_stage!("bf16", &*a),
            Act::W8A16 { xin, .. } => {
                let buf = find(xin, k, "f16 input")?;
                float_stage!("f16", buf.as_cudarc())
            }
            Act::Int8 { qin, sx, tmp, slot, .. } => {
                let q = find(qin, k, "int8 input")?.as_cudarc();
                if self.scheme == GpuScheme::W8A8 {
                    match src {
                        Source::Norm(w) => launch!(
                            self,
                            "rmsnorm_q8",
                            rows_cfg(m, 256),
                            [&*x, w, q, &*sx, &h32, &eps]
                        ),
                        Source::Swiglu => {
                            launch!(self, "swiglu_q8", rows_cfg(m, 256), [&*gu, q, &*sx, &f32_])
                        }
                        Source::Attn { .. } => {
                            float_stage!("f32", &*tmp)?;
                            launch!(self, "quant_rows", rows_cfg(m, 256), [&*tmp, q, &*sx, &k32])
                        }
                    }
                } else {
                    float_stage!("f32", &*tmp)?;
                    self.stream.memset_zeros(slot).map_err(|e| {
                        GpuError::driver("cuMemsetD8", self.ordinal(), "absmax slot", e)
                    })?;
                    let n_real = (real * k) as u64;
                    let n_all = (m * k) as u64;
                    launch!(self, "absmax_all", grid(n_real, sms), [&*tmp, &n_real, &*slot])?;
                    launch!(
                        self,
                        "quant_global",
                        grid(n_all, sms),
                        [&*tmp, &n_all, &k32, &m32, &*slot, q, &*sx]
                    )
                }
            }
        }
    }

    /// Runs one linear layer on the prepared input, writing or accumulating its f32 output.
    fn linear(&self, sc: &mut Scratch, lin: &GpuLinear, out: Out) -> Result<()> {
        let m = sc.m;
        let (n, k) = (lin.n, lin.k);
        let sms = self.dev.info().multiprocessors;
        let s = &self.stream;
        let add = matches!(out, Out::Residual);
        let Scratch { x, gu, qkv, act, .. } = sc;
        let y: &mut CudaSlice<f32> = match out {
            Out::Qkv => qkv,
            Out::Gu => gu,
            Out::Residual => x,
        };
        if y.len() < m * n {
            return Err(GpuError::invalid(format!("{}: output buffer too small", lin.name)));
        }
        let (yp, _g) = y.device_ptr(s);
        match (&lin.w, &mut *act) {
            (Weight::Dense(w), Act::Float(a))
                if self.gemv_fits(w.ty(), m, k) && a.ty() == w.ty() =>
            {
                let (wp, xp) = (w.ptr(s), a.ptr(s));
                // SAFETY: w holds n·k elements of its type, a ≥ m·k of the same type (scratch
                // sized m·max K), y ≥ m·n f32 (checked above); k is a multiple of the 16-byte
                // vector width (gemv_fits) and every buffer is a whole allocation (aligned).
                unsafe { self.gemv(w.ty().into(), wp, 0, xp, yp, (m, n, k), add) }
            }
            (Weight::I8(q), Act::W8A16 { xin, .. })
                if self.gemv && m <= W8A16_GEMV_MAX_M && k.is_multiple_of(16) =>
            {
                let xb = find(xin, k, "f16 input")?;
                let (wp, _gw) = q.codes().as_cudarc().device_ptr(s);
                let (sp, _gs) = q.scales().as_cudarc().device_ptr(s);
                let (xp, _gx) = xb.as_cudarc().device_ptr(s);
                // SAFETY: the codes hold n·k int8 and the scales n f32 (quantized so), xb
                // exactly m·k f16, y ≥ m·n f32 (checked above); k % 16 == 0 (checked).
                unsafe { self.gemv(GemvWeight::I8, wp, sp, xp, yp, (m, n, k), add) }
            }
            (Weight::Dense(w), Act::Float(a)) => {
                // SAFETY: w holds n·k elements of its type (loaded so), a holds ≥ m·k of the
                // same type (scratch sized m·max K), y holds ≥ m·n f32 (checked above).
                unsafe {
                    self.blas.gemm(&lin.name, w.ty(), w.ptr(s), a.ptr(s), yp, (m, n, k), n, add)
                }
            }
            (Weight::I8(q), Act::W8A16 { xin, yout, wtmp }) => {
                let xb = find(xin, k, "f16 input")?;
                if m <= W8A16_GEMV_MAX_M {
                    let yb = find_mut(yout, n, "f16 output")?;
                    self.dev.w8a16::<f16>(
                        q.codes(),
                        q.scales(),
                        xb,
                        None,
                        yb,
                        GemmShape::new(m, n, k),
                    )?;
                    let len = (m * n) as u64;
                    let addi = i32::from(add);
                    let ybr = &*yb;
                    // widen reads m·n halves and writes/adds m·n f32 (y holds ≥ m·n).
                    launch!(self, "widen_f16", grid(len, sms), [ybr.as_cudarc(), &*y, &len, &addi])
                } else {
                    let Some(wt) = wtmp.as_mut() else {
                        return Err(GpuError::invalid("W8A16 staging buffer missing"));
                    };
                    let (n32, k32) = (n as u32, k as u32);
                    let wtr = &*wt;
                    // dequant writes n·k halves; the staging buffer holds the largest n·k.
                    launch!(
                        self,
                        "dequant_weight_f16",
                        grid((n * k) as u64, sms),
                        [q.codes().as_cudarc(), q.scales().as_cudarc(), wtr, &n32, &k32,]
                    )?;
                    let (wp, _gw) = wt.device_ptr(s);
                    let (xp, _gx) = xb.as_cudarc().device_ptr(s);
                    // SAFETY: wt holds ≥ n·k f16 (just written), xb exactly m·k f16, y ≥ m·n.
                    unsafe { self.blas.gemm(&lin.name, InType::F16, wp, xp, yp, (m, n, k), n, add) }
                }
            }
            (Weight::I8(q), Act::Int8 { qin, acc, sx, .. }) => {
                let xb = find(qin, k, "int8 input")?;
                let ab = find_mut(acc, n, "int32 accumulator")?;
                self.dev.gemm_i8(xb, q.codes(), ab, GemmShape::new(m, n, k))?;
                let (m32, n32, addi) = (m as u32, n as u32, i32::from(add));
                let abr = &*ab;
                // dequant_out reads m·n i32, m scales, n scales; writes y rows of stride n.
                launch!(
                    self,
                    "dequant_out",
                    grid((m * n) as u64, sms),
                    [abr.as_cudarc(), &*sx, q.scales().as_cudarc(), &*y, &m32, &n32, &n32, &addi,]
                )
            }
            _ => Err(GpuError::invalid(format!(
                "{}: weight format does not match the scheme",
                lin.name
            ))),
        }
    }

    /// Whether the decode GEMV takes a dense product of `m` rows and inner size `k` in `ty`.
    fn gemv_fits(&self, ty: InType, m: usize, k: usize) -> bool {
        let epv = if ty == InType::F32 { 4 } else { 8 };
        self.gemv && m <= GEMV_DENSE_MAX_M && k.is_multiple_of(epv)
    }

    /// `y[m, n] (+)= scale[n] · W[n, :] · x[m, :]` with the decode GEMV kernels (`scale` 0: 1).
    ///
    /// # Safety
    /// `w` holds n·k elements of `ty` (int8 codes for [`GemvWeight::I8`], then `scale` holds n f32),
    /// `x` holds m·k elements of the matching activation type (f16 for int8 weights, else
    /// `ty`), `y` holds m·n f32; all three 16-byte aligned and `k` a multiple of the 16-byte
    /// vector width of `ty`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemv(
        &self,
        ty: GemvWeight,
        w: u64,
        scale: u64,
        x: u64,
        y: u64,
        (m, n, k): (usize, usize, usize),
        add: bool,
    ) -> Result<()> {
        let mt: u32 = match m {
            1 => 1,
            2 => 2,
            3 | 4 => 4,
            _ => 8,
        };
        let name: &'static str = match (ty, mt) {
            (GemvWeight::I8, 1) => "gemv_i8_f16_m1",
            (GemvWeight::I8, 2) => "gemv_i8_f16_m2",
            (GemvWeight::I8, 4) => "gemv_i8_f16_m4",
            (GemvWeight::I8, _) => "gemv_i8_f16_m8",
            (GemvWeight::F16, 1) => "gemv_f16_f16_m1",
            (GemvWeight::F16, 2) => "gemv_f16_f16_m2",
            (GemvWeight::F16, 4) => "gemv_f16_f16_m4",
            (GemvWeight::F16, _) => "gemv_f16_f16_m8",
            (GemvWeight::Bf16, 1) => "gemv_bf16_bf16_m1",
            (GemvWeight::Bf16, 2) => "gemv_bf16_bf16_m2",
            (GemvWeight::Bf16, 4) => "gemv_bf16_bf16_m4",
            (GemvWeight::Bf16, _) => "gemv_bf16_bf16_m8",
            (GemvWeight::F32, 1) => "gemv_f32_f32_m1",
            (GemvWeight::F32, 2) => "gemv_f32_f32_m2",
            (GemvWeight::F32, 4) => "gemv_f32_f32_m4",
            (GemvWeight::F32, _) => "gemv_f32_f32_m8",
        };
        let (m32, n32, k32, addi) = (m as u32, n as u32, k as u32, i32::from(add));
        // GV_WARPS (8) warps × GV_ROWS (2) output rows per block; M in tiles of `mt`.
        let cfg = LaunchConfig {
            grid_dim: (n32.div_ceil(16), m32.div_ceil(mt), 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        // The kernel bounds-checks n < N and m < M; the caller guarantees the sizes above.
        launch!(self, name, cfg, [&w, &scale, &x, &y, &m32, &n32, &k32, &n32, &addi])
    }

    /// Activation type the LM head takes (f16 for the int8 head, else the head's own type).
    fn head_act_ty(&self) -> InType {
        if self.head_i8.is_some() {
            InType::F16
        } else {
            self.head.as_ref().unwrap_or(&self.embed).ty()
        }
    }

    fn head_rows_cap(&self) -> usize {
        (HEAD_CHUNK_ELEMS / self.cfg.vocab.max(1)).clamp(16, 1024)
    }

    fn ensure_head(&mut self, picks: usize) -> Result<()> {
        let rows = self.head_rows_cap();
        let ok =
            self.head_scratch.as_ref().is_some_and(|s| s.rows == rows && s.picks.len() >= picks);
        if ok {
            return Ok(());
        }
        self.head_scratch = None;
        self.head_scratch = Some(self.new_head_scratch(rows, picks.max(rows * 4))?);
        Ok(())
    }

    /// LM-head buffers for `rows` rows and `picks_cap` picked logits.
    fn new_head_scratch(&self, rows: usize, picks_cap: usize) -> Result<HeadScratch> {
        let (h, v) = (self.cfg.hidden, self.cfg.vocab);
        let head_ty = self.head_act_ty();
        let act = self.dense_buf("LM-head input", head_ty, rows * h)?;
        let bytes = act.bytes() + (rows * (4 * v + 8 + 8) + 12 * picks_cap) as u64;
        Ok(HeadScratch {
            rows,
            idx: self.alloc("LM-head row indices", rows)?,
            act,
            logits: self.alloc(&format!("logits for {rows} rows × {v}"), rows * v)?,
            lse: self.alloc("log-partition per row", rows)?,
            amax: self.alloc("argmax per row", rows)?,
            amax_slot: self.alloc("argmax slot per row", rows)?,
            amax_count: self.alloc("argmax block count per row", rows)?,
            pick_rows: self.alloc("scored rows", picks_cap)?,
            pick_tgts: self.alloc("scored targets", picks_cap)?,
            picks: self.alloc("scored logits", picks_cap)?,
            bytes,
        })
    }

    /// LM head on rows `idx` of the residual buffer `x`: final norm, logits, row statistics and
    /// picked logits. `targets[i]` are the tokens whose logits are wanted at `idx[i]`.
    /// Returns the rows' scores, and the full logits when `keep_logits`.
    fn head(
        &mut self,
        x: &CudaSlice<f32>,
        idx: &[u32],
        targets: &[Vec<u32>],
        argmax_limit: usize,
        keep_logits: bool,
    ) -> Result<(Vec<RowScore>, Vec<Vec<f32>>)> {
        let (h, v) = (self.cfg.hidden, self.cfg.vocab);
        let chunk = self.head_rows_cap();
        let max_picks =
            targets.chunks(chunk).map(|c| c.iter().map(Vec::len).sum::<usize>()).max().unwrap_or(0);
        self.ensure_head(max_picks)?;
        let Some(mut hs) = self.head_scratch.take() else {
            return Err(GpuError::invalid("LM-head buffers missing"));
        };
        let res =
            self.head_inner(&mut hs, x, idx, targets, argmax_limit, keep_logits, chunk, (h, v));
        self.head_scratch = Some(hs);
        res
    }

    /// Enqueues final norm, logits and row statistics for the first `r` rows of `hs.idx`
    /// (already uploaded) — capturable: no copies, allocations or synchronization.
    fn head_enqueue(
        &self,
        hs: &HeadScratch,
        x: &CudaSlice<f32>,
        r: usize,
        (h, v): (usize, usize),
        lim32: u32,
        argmax_only: bool,
    ) -> Result<()> {
        let s = &self.stream;
        let head_w = self.head.as_ref().unwrap_or(&self.embed);
        let eps = self.cfg.rms_eps;
        let (h32, v32) = (h as u32, v as u32);
        let head_wty = if self.head_i8.is_some() {
            decode::WeightTy::I8
        } else {
            decode::WeightTy::Dense(head_w.ty())
        };
        if self.fused_head_fits(r, head_wty, hs.act.ty()) {
            self.fused_head(hs, x, r, (h, v))?;
            let (lg, lse, am) = (&hs.logits, &hs.lse, &hs.amax);
            return if argmax_only {
                let (slot, count) = (&hs.amax_slot, &hs.amax_count);
                let blocks =
                    v.div_ceil(2048).clamp(1, self.dev.info().multiprocessors.max(1) as usize);
                let cfg = LaunchConfig {
                    grid_dim: (blocks as u32, r as u32, 1),
                    block_dim: (256, 1, 1),
                    shared_mem_bytes: 0,
                };
                // grid.y = r rows of vocab logits; amax, slot and count hold rows ≥ r entries.
                launch!(self, "argmax_rows", cfg, [lg, &v32, &lim32, slot, count, am])
            } else {
                // One block per row over vocab logits; lse/amax hold rows entries.
                launch!(self, "row_stats", rows_cfg(r, 256), [lg, &v32, &lim32, lse, am])
            };
        }
        let norm_name = match hs.act.suffix() {
            "f32" => "rmsnorm_f32",
            "f16" => "rmsnorm_f16",
            _ => "rmsnorm_bf16",
        };
        {
            let (idxb, act) = (&hs.idx, &hs.act);
            // One block per selected row; idx < rows of x (checked by the callers); act holds
            // rows·h, r ≤ rows.
            let actp = act.ptr(s);
            launch!(self, norm_name, rows_cfg(r, 256), [x, idxb, &self.norm, &actp, &h32, &eps])?;
        }
        let (lp, _g) = hs.logits.device_ptr(s);
        if let Some(q) = &self.head_i8 {
            let (wp, _gw) = q.codes().as_cudarc().device_ptr(s);
            let (sp, _gs) = q.scales().as_cudarc().device_ptr(s);
            if hs.act.ty() != InType::F16 {
                return Err(GpuError::invalid("int8 LM head: activation buffer not f16"));
            }
            // SAFETY: the codes hold vocab·h int8 and the scales vocab f32 (quantized so), act
            // ≥ r·h f16 (written above), logits ≥ rows·vocab f32; h % 16 == 0 (checked at load);
            // whole allocations, so aligned. Any r: the kernel tiles M over grid.y.
            unsafe { self.gemv(GemvWeight::I8, wp, sp, hs.act.ptr(s), lp, (r, v, h), false)? };
        } else if self.gemv_fits(head_w.ty(), r, h) && hs.act.ty() == head_w.ty() {
            // SAFETY: the head weight holds vocab·h elements of its type, act ≥ r·h of the same
            // type (written above), logits ≥ rows·vocab f32; h is a multiple of the vector
            // width (gemv_fits); whole allocations, so aligned.
            unsafe {
                self.gemv(
                    head_w.ty().into(),
                    head_w.ptr(s),
                    0,
                    hs.act.ptr(s),
                    lp,
                    (r, v, h),
                    false,
                )?
            };
        } else {
            // SAFETY: the head weight holds vocab·h elements of its type, act ≥ r·h of the same
            // type (written above), logits ≥ rows·vocab f32.
            unsafe {
                self.blas.gemm(
                    "lm_head",
                    head_w.ty(),
                    head_w.ptr(s),
                    hs.act.ptr(s),
                    lp,
                    (r, v, h),
                    v,
                    false,
                )?
            };
        }
        let (lg, lse, am) = (&hs.logits, &hs.lse, &hs.amax);
        // One block per row over vocab logits; lse/amax hold rows entries.
        launch!(self, "row_stats", rows_cfg(r, 256), [lg, &v32, &lim32, lse, am])
    }

    #[allow(clippy::too_many_arguments)]
    fn head_inner(
        &self,
        hs: &mut HeadScratch,
        x: &CudaSlice<f32>,
        idx: &[u32],
        targets: &[Vec<u32>],
        argmax_limit: usize,
        keep_logits: bool,
        chunk: usize,
        (h, v): (usize, usize),
    ) -> Result<(Vec<RowScore>, Vec<Vec<f32>>)> {
        let (v32, lim32) = (v as u32, argmax_limit.min(v) as u32);
        let mut scores = Vec::with_capacity(idx.len());
        let mut all_logits = Vec::new();
        let rows_in_x = x.len() / h.max(1);
        if idx.iter().any(|&r| r as usize >= rows_in_x) {
            return Err(GpuError::invalid("LM-head row index outside the batch"));
        }
        for (ci, rows) in idx.chunks(chunk).enumerate() {
            let tg = &targets[ci * chunk..ci * chunk + rows.len()];
            let r = rows.len();
            self.upload_into(rows, &mut hs.idx, "LM-head row indices")?;
            self.head_enqueue(hs, x, r, (h, v), lim32, false)?;
            let mut prow = Vec::new();
            let mut ptgt = Vec::new();
            for (i, t) in tg.iter().enumerate() {
                for &tok in t {
                    prow.push(i as u32);
                    ptgt.push(tok);
                }
            }
            let np = prow.len();
            if np > 0 {
                self.upload_into(&prow, &mut hs.pick_rows, "scored rows")?;
                self.upload_into(&ptgt, &mut hs.pick_tgts, "scored targets")?;
                let np32 = np as u32;
                let (lg, pr, pt, pk) = (&hs.logits, &hs.pick_rows, &hs.pick_tgts, &hs.picks);
                // n = np ≤ capacity of the pick buffers; rows < r, targets checked < vocab.
                let cfg = LaunchConfig {
                    grid_dim: (np32.div_ceil(256), 1, 1),
                    block_dim: (256, 1, 1),
                    shared_mem_bytes: 0,
                };
                launch!(self, "gather_logits", cfg, [lg, &v32, pr, pt, &np32, pk])?;
            }
            let lse = self.download(&hs.lse, r, "log-partition")?;
            let am = self.download(&hs.amax, r, "argmax")?;
            let picks = self.download(&hs.picks, np, "scored logits")?;
            if keep_logits {
                let flat = self.download(&hs.logits, r * v, "logits")?;
                all_logits.extend(flat.chunks_exact(v).map(<[f32]>::to_vec));
            }
            let mut pi = 0;
            for (i, t) in tg.iter().enumerate() {
                let p: Vec<(u32, f32)> = t
                    .iter()
                    .map(|&tok| {
                        let val = picks.get(pi).copied().unwrap_or(f32::NEG_INFINITY);
                        pi += 1;
                        (tok, val)
                    })
                    .collect();
                scores.push(RowScore { log_z: lse[i], argmax: am[i], picks: p });
            }
        }
        Ok((scores, all_logits))
    }

    fn download<T: DeviceRepr + Default + Clone>(
        &self,
        src: &CudaSlice<T>,
        n: usize,
        what: &str,
    ) -> Result<Vec<T>> {
        let mut out = vec![T::default(); n];
        if n == 0 {
            return Ok(out);
        }
        self.stream
            .memcpy_dtoh(&src.slice(..n), &mut out)
            .map_err(|e| GpuError::driver("cuMemcpyDtoH", self.ordinal(), what.to_string(), e))?;
        self.stream.synchronize().map_err(|e| {
            GpuError::driver("cuStreamSynchronize", self.ordinal(), what.to_string(), e)
        })?;
        Ok(out)
    }

    /// Scores a packed batch of independent sequences (each from position 0): for each
    /// sequence, the positions `score[s]` (indices into that sequence) get a [`RowScore`]
    /// with the logits of `targets[s][j]`. One forward pass; only scored positions reach the
    /// LM head.
    ///
    /// # Errors
    /// Invalid token ids or positions, [`GpuError::OutOfMemory`], CUDA errors.
    pub fn score_batch(
        &mut self,
        seqs: &[&[u32]],
        score: &[Vec<usize>],
        targets: &[Vec<Vec<u32>>],
    ) -> Result<Vec<Vec<RowScore>>> {
        let packed: Vec<PackedSeq<'_>> = seqs.iter().map(|s| PackedSeq::new(s)).collect();
        self.score_packed(&packed, score, targets)
    }

    /// [`GpuModel::score_batch`] with shared prefixes: a sequence with
    /// [`PackedSeq::prefix`] `Some((i, n))` continues the first `n` tokens of sequence `i` of
    /// the same pass (run once, attended to by every continuation). `score[s]` indexes the
    /// sequence's own tokens. Results equal running each continuation's whole input (prefix
    /// and own tokens) as a sequence of its own, up to float rounding.
    ///
    /// # Errors
    /// A prefix that is not an earlier, unprefixed sequence at least `n` tokens long; as
    /// [`GpuModel::score_batch`].
    pub fn score_packed(
        &mut self,
        seqs: &[PackedSeq<'_>],
        score: &[Vec<usize>],
        targets: &[Vec<Vec<u32>>],
    ) -> Result<Vec<Vec<RowScore>>> {
        if score.len() != seqs.len() || targets.len() != seqs.len() {
            return Err(GpuError::invalid(
                "score_batch: one position list and target list per sequence",
            ));
        }
        let total: usize = seqs.iter().map(|s| s.tokens.len()).sum();
        if total == 0 {
            return Ok(vec![Vec::new(); seqs.len()]);
        }
        let m = bucket_rows(total);
        let mut plan = RowPlan { real: total, ..Default::default() };
        let mut off = 0usize;
        for (si, s) in seqs.iter().enumerate() {
            let (poff, plen) = match s.prefix {
                None => (0, 0),
                Some((i, n)) => {
                    let ok = i < si
                        && seqs[i].prefix.is_none()
                        && n <= seqs[i].tokens.len()
                        && n <= u32::MAX as usize;
                    if !ok {
                        return Err(GpuError::invalid(format!(
                            "sequence {si}: prefix ({i}, {n}) is not the head of an earlier \
                             sequence without a prefix"
                        )));
                    }
                    (plan.seq_off[i], n)
                }
            };
            // Own tokens at slots off.., positions plen..: seq_off + position = slot.
            plan.seq_off.push((off - plen) as u32);
            plan.pre.extend([poff, plen as u32]);
            for (p, &t) in s.tokens.iter().enumerate() {
                plan.ids.push(t);
                plan.seq.push(si as i32);
                plan.pos.push((plen + p) as i32);
            }
            off += s.tokens.len();
        }
        plan.ids.resize(m, 0);
        plan.seq.resize(m, -1);
        plan.pos.resize(m, 0);
        self.ensure_kv(total)?;
        let mut sc = self.take_scratch(m)?;
        let kv = self.kv.take();
        let res = match &kv {
            Some(kvb) => self.forward(&mut sc, &plan, kvb, self.kv_tokens),
            None => Err(GpuError::invalid("KV cache missing")),
        };
        self.kv = kv;
        if let Err(e) = res {
            self.put_scratch(sc);
            return Err(e);
        }
        let mut idx = Vec::new();
        let mut tg = Vec::new();
        let mut base = 0usize;
        for (si, s) in seqs.iter().enumerate() {
            if score[si].len() != targets[si].len() {
                self.put_scratch(sc);
                return Err(GpuError::invalid(format!(
                    "sequence {si}: positions and targets differ in length"
                )));
            }
            for (j, &p) in score[si].iter().enumerate() {
                if p >= s.tokens.len() {
                    self.put_scratch(sc);
                    return Err(GpuError::invalid(format!(
                        "sequence {si}: position {p} beyond its {} tokens",
                        s.tokens.len()
                    )));
                }
                idx.push((base + p) as u32);
                tg.push(targets[si][j].clone());
            }
            base += s.tokens.len();
        }
        let vocab = self.cfg.vocab;
        let res = self.head(&sc.x, &idx, &tg, vocab, false);
        self.put_scratch(sc);
        let (scores, _) = res?;
        let mut out = Vec::with_capacity(seqs.len());
        let mut it = scores.into_iter();
        for sp in score {
            out.push(it.by_ref().take(sp.len()).collect());
        }
        Ok(out)
    }

    /// Logits `[position][vocab]` at every position of one sequence from scratch (for checks
    /// against the CPU reference), computed as a scoring pass.
    ///
    /// # Errors
    /// As [`GpuModel::score_batch`].
    pub fn logits_for(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        self.logits_pass(tokens, false)
    }

    /// As [`GpuModel::logits_for`], computed as a generation pass (the pass a greedy prompt
    /// prefill runs): sequences of at most [`GEMV_DENSE_MAX_M`] tokens take the fused decode
    /// layers when [`GpuOptions::fused_decode`] is on — for checking the fused kernels' logits
    /// (scoring passes never take them).
    ///
    /// # Errors
    /// As [`GpuModel::score_batch`].
    pub fn generation_logits_for(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        self.logits_pass(tokens, true)
    }

    fn logits_pass(&mut self, tokens: &[u32], generation: bool) -> Result<Vec<Vec<f32>>> {
        let n = tokens.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let m = bucket_rows(n);
        let mut plan = RowPlan {
            ids: tokens.to_vec(),
            seq: vec![0; n],
            pos: (0..n as i32).collect(),
            seq_off: vec![0],
            pre: if generation { Vec::new() } else { vec![0, 0] },
            real: n,
        };
        plan.ids.resize(m, 0);
        plan.seq.resize(m, -1);
        plan.pos.resize(m, 0);
        self.ensure_kv(n)?;
        let mut sc = self.take_scratch(m)?;
        let kv = self.kv.take();
        let res = match &kv {
            Some(kvb) => self.forward(&mut sc, &plan, kvb, self.kv_tokens),
            None => Err(GpuError::invalid("KV cache missing")),
        };
        self.kv = kv;
        let res = res.and_then(|()| {
            let idx: Vec<u32> = (0..n as u32).collect();
            let tg = vec![Vec::new(); n];
            let vocab = self.cfg.vocab;
            self.head(&sc.x, &idx, &tg, vocab, true)
        });
        self.put_scratch(sc);
        Ok(res?.1)
    }

    /// Greedy decoding of a group of prompts: one packed prefill, then one decode step per
    /// token for the whole group (finished rows ride along as padding). `stop(i, generated)` is
    /// asked after every accepted token. Returns the generated ids per prompt (EOS excluded)
    /// and the number of forward passes and processed tokens.
    ///
    /// # Errors
    /// Empty prompts, invalid ids, [`GpuError::OutOfMemory`] (the KV cache for the group is
    /// allocated up front), CUDA errors.
    pub fn generate_greedy(
        &mut self,
        prompts: &[&[u32]],
        max_new: &[usize],
        eos: &[u32],
        argmax_limit: usize,
        mut stop: impl FnMut(usize, &[u32]) -> bool,
    ) -> Result<(Vec<Vec<u32>>, u64, u64)> {
        let g = prompts.len();
        if max_new.len() != g {
            return Err(GpuError::invalid("one max_new per prompt"));
        }
        if prompts.iter().any(|p| p.is_empty()) {
            return Err(GpuError::invalid("empty prompt"));
        }
        let mut out = vec![Vec::new(); g];
        if g == 0 {
            return Ok((out, 0, 0));
        }
        let cap = prompts.iter().zip(max_new).map(|(p, &n)| p.len() + n).max().unwrap_or(1).max(1);
        self.ensure_kv(g * cap)?;
        // Prefill: sequence s at cache slots s·cap.
        let total: usize = prompts.iter().map(|p| p.len()).sum();
        let m = bucket_rows(total);
        let mut plan = RowPlan { real: total, ..Default::default() };
        let mut last = Vec::with_capacity(g);
        for (s, p) in prompts.iter().enumerate() {
            plan.seq_off.push((s * cap) as u32);
            for (i, &t) in p.iter().enumerate() {
                plan.ids.push(t);
                plan.seq.push(s as i32);
                plan.pos.push(i as i32);
            }
            last.push((plan.ids.len() - 1) as u32);
        }
        plan.ids.resize(m, 0);
        plan.seq.resize(m, -1);
        plan.pos.resize(m, 0);
        let mut passes = 1u64;
        let mut processed = total as u64;
        let next = self.step(&plan, &last, argmax_limit)?;
        let mut next: Vec<u32> = next;
        let mut len: Vec<usize> = prompts.iter().map(|p| p.len()).collect();
        let mut done: Vec<bool> = max_new.iter().map(|&n| n == 0).collect();
        loop {
            for a in 0..g {
                if done[a] {
                    continue;
                }
                if eos.contains(&next[a]) {
                    done[a] = true;
                    continue;
                }
                out[a].push(next[a]);
                if out[a].len() >= max_new[a] || stop(a, &out[a]) {
                    done[a] = true;
                }
            }
            let active = done.iter().filter(|d| !**d).count();
            if active == 0 {
                break;
            }
            let mut plan = RowPlan {
                seq_off: (0..g).map(|s| (s * cap) as u32).collect(),
                real: g,
                ..Default::default()
            };
            for a in 0..g {
                if done[a] {
                    plan.ids.push(0);
                    plan.seq.push(-1);
                    plan.pos.push(0);
                } else {
                    plan.ids.push(next[a]);
                    plan.seq.push(a as i32);
                    plan.pos.push(len[a] as i32);
                    len[a] += 1;
                }
            }
            next = if self.graph_on && self.graph_eligible(g) {
                self.step_graph(&plan, argmax_limit)?
            } else {
                let rows: Vec<u32> = (0..g as u32).collect();
                self.step(&plan, &rows, argmax_limit)?
            };
            passes += 1;
            processed += active as u64;
        }
        Ok((out, passes, processed))
    }

    /// One forward pass of `plan` (rows = plan length) and the argmax at rows `pick`.
    fn step(&mut self, plan: &RowPlan, pick: &[u32], argmax_limit: usize) -> Result<Vec<u32>> {
        let mut sc = self.take_scratch(plan.ids.len())?;
        let kv = self.kv.take();
        let res = match &kv {
            Some(kvb) => self.forward(&mut sc, plan, kvb, self.kv_tokens),
            None => Err(GpuError::invalid("KV cache missing")),
        };
        self.kv = kv;
        let res = res.and_then(|()| {
            let tg = vec![Vec::new(); pick.len()];
            self.head(&sc.x, pick, &tg, argmax_limit, false)
        });
        self.put_scratch(sc);
        Ok(res?.0.into_iter().map(|r| r.argmax).collect())
    }

    /// Whether a decode step of `m` rows runs on the model's own kernels only (decode GEMV for
    /// every linear layer and the LM head, no cuBLAS / eai-quant call), so it can be captured.
    fn graph_eligible(&self, m: usize) -> bool {
        let c = &self.cfg;
        let ks = [c.hidden, c.n_heads * c.head_dim, c.ffn];
        let layers_ok = match self.scheme {
            GpuScheme::Fp32 | GpuScheme::Fp16 | GpuScheme::Bf16 => {
                ks.iter().all(|&k| self.gemv_fits(self.scheme.float_type(), m, k))
            }
            GpuScheme::W8A16 => {
                self.gemv && m <= W8A16_GEMV_MAX_M && ks.iter().all(|k| k.is_multiple_of(16))
            }
            GpuScheme::W8A8 | GpuScheme::Dynamic => false,
        };
        let head_ty = self.head.as_ref().unwrap_or(&self.embed).ty();
        // The int8 head: its GEMV takes any row count (h % 16 checked at load).
        layers_ok && (self.head_i8.is_some() || self.gemv_fits(head_ty, m, c.hidden))
    }

    /// One decode step of `plan` (`m` rows, the argmax taken at every row) replayed from a
    /// CUDA graph, captured first when none fits (new row count, argmax limit or KV cache).
    fn step_graph(&mut self, plan: &RowPlan, argmax_limit: usize) -> Result<Vec<u32>> {
        let m = plan.ids.len();
        let Some(kv) = self.kv.as_ref() else {
            return Err(GpuError::invalid("KV cache missing"));
        };
        let key = GraphKey {
            m,
            argmax_limit,
            kv_ptr: kv.device_ptr(&self.stream).0,
            kv_tokens: self.kv_tokens,
        };
        if self.graph.as_ref().is_none_or(|g| g.key != key) {
            self.graph = None;
            self.graph = Some(self.capture_step(key)?);
        }
        let Some(mut g) = self.graph.take() else {
            return Err(GpuError::invalid("decode graph missing"));
        };
        let res = self.upload_plan(&mut g.sc, plan, key.kv_tokens).and_then(|()| {
            g.graph
                .launch()
                .map_err(|e| GpuError::driver("cuGraphLaunch", self.ordinal(), "decode step", e))?;
            self.download(&g.hs.amax, m, "argmax")
        });
        self.graph = Some(g);
        res
    }

    /// Captures one decode step of `key.m` rows into a CUDA graph with buffers of its own.
    fn capture_step(&self, key: GraphKey) -> Result<DecodeGraph> {
        let Some(kv) = self.kv.as_ref() else {
            return Err(GpuError::invalid("KV cache missing"));
        };
        let ord = self.ordinal();
        let mut sc = self.new_scratch(key.m)?;
        let mut hs = self.new_head_scratch(key.m, 1)?;
        let rows: Vec<u32> = (0..key.m as u32).collect();
        self.upload_into(&rows, &mut hs.idx, "LM-head row indices")?;
        self.stream
            .synchronize()
            .map_err(|e| GpuError::driver("cuStreamSynchronize", ord, "decode graph", e))?;
        let (h, v) = (self.cfg.hidden, self.cfg.vocab);
        let lim32 = key.argmax_limit.min(v) as u32;
        self.stream
            .begin_capture(ds::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(|e| GpuError::driver("cuStreamBeginCapture", ord, "decode graph", e))?;
        let work = self
            .enqueue_forward(&mut sc, kv, key.kv_tokens, key.m)
            .and_then(|()| self.head_enqueue(&hs, &sc.x, key.m, (h, v), lim32, true));
        // Always end the capture, also after a failed launch, so the stream stays usable.
        let graph = self.stream.end_capture(ds::CUgraphInstantiate_flags(0));
        work?;
        match graph {
            Ok(Some(graph)) => Ok(DecodeGraph { key, sc, hs, graph }),
            Ok(None) => Err(GpuError::invalid("decode graph capture recorded nothing")),
            Err(e) => Err(GpuError::driver("cuStreamEndCapture", ord, "decode graph", e)),
        }
    }

    /// Waits for all enqueued work.
    ///
    /// # Errors
    /// CUDA errors of earlier asynchronous work.
    pub fn synchronize(&self) -> Result<()> {
        Ok(self.dev.synchronize()?)
    }
}

/// What a weight fetcher is asked for.
enum Tensor {
    Embed { vocab: usize, h: usize },
    Head { vocab: usize, h: usize },
    Norm(String, usize),
    Bias(String, usize),
    Matrix(String, usize, usize),
}

#[derive(Clone, Copy)]
enum Source<'a> {
    Norm(&'a CudaSlice<f32>),
    Attn {
        kc: &'a cudarc::driver::CudaView<'a, f32>,
        vc: &'a cudarc::driver::CudaView<'a, f32>,
        scale: f32,
        window: u32,
    },
    Swiglu,
}

#[derive(Clone, Copy)]
enum Out {
    Qkv,
    Gu,
    Residual,
}

fn find<'a, T>(
    v: &'a [(usize, DeviceBuffer<T>)],
    k: usize,
    what: &str,
) -> Result<&'a DeviceBuffer<T>> {
    v.iter()
        .find(|(kk, _)| *kk == k)
        .map(|(_, b)| b)
        .ok_or_else(|| GpuError::invalid(format!("no {what} buffer of width {k}")))
}

fn find_mut<'a, T>(
    v: &'a mut [(usize, DeviceBuffer<T>)],
    k: usize,
    what: &str,
) -> Result<&'a mut DeviceBuffer<T>> {
    v.iter_mut()
        .find(|(kk, _)| *kk == k)
        .map(|(_, b)| b)
        .ok_or_else(|| GpuError::invalid(format!("no {what} buffer of width {k}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_and_are_few() {
        for m in 1..5000 {
            let b = bucket_rows(m);
            assert!(b >= m, "{m} -> {b}");
            assert!(b - m < 256);
        }
        assert_eq!(bucket_rows(1), 1);
        assert_eq!(bucket_rows(16), 16);
        assert_eq!(bucket_rows(17), 32);
        assert_eq!(bucket_rows(2000), 2048);
    }

    #[test]
    fn scheme_labels_round_trip() {
        for s in GpuScheme::ALL {
            assert_eq!(GpuScheme::from_label(s.label()), Some(s));
        }
        assert_eq!(GpuScheme::from_label("w8a8"), Some(GpuScheme::W8A8));
        assert_eq!(GpuScheme::from_cpu(Scheme::Bf16), Some(GpuScheme::Bf16));
        assert_eq!(GpuScheme::Fp16.cpu_reference(), Some(Scheme::Fp16));
        assert_eq!(GpuScheme::Dynamic.cpu_reference(), None);
        assert_eq!(GpuScheme::from_label("nope"), None);
    }
}
