//! The decoder on the GPU: resident weights per scheme, the f32 residual stream, KV cache, and
//! the forward pass (embedding → N × block → final norm → LM head on selected rows only).

use std::sync::Arc;

use cudarc::driver::{CudaGraph, CudaSlice, CudaStream, DevicePtr, LaunchConfig};
use eai_quant::cuda::{CudaDevice, DeviceBuffer, DeviceQuantized};
use half::{bf16, f16};

use super::blas::{Blas, InType};
use super::error::{GpuError, Result};
use super::kernels::Kernels;
use crate::config::ModelConfig;

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
    /// The uploaded plan is a scoring pass: attention runs `attention_prefill_tile_*`, which reads
    /// `pre`; otherwise (generation) the decode attention kernel.
    prefill: bool,
    /// In a `prefill` pass: the leading rows that are whole sequences of one row without a
    /// shared prefix ([`lead_rows`]: a generation pass's decode rows, ahead of the prompts it
    /// admits). Their attention runs the decode kernel, the rest the tiled kernel.
    lead: usize,
    x: CudaSlice<f32>,
    qkv: CudaSlice<f32>,
    /// The gate/up GEMM's output, `m × 2·ffn` f32 — or, when `gu_half`, as many elements of the
    /// activation type in its first half.
    gu: CudaSlice<f32>,
    /// The last gate/up GEMM wrote 16-bit values into `gu` (see [`GpuOptions::half_gate_up`]).
    gu_half: bool,
    act: Act,
    bytes: u64,
}

#[derive(Debug)]
enum Act {
    /// GEMM input of the float schemes, `m × max K`.
    Float(Dense),
    /// W8A16: exact-size f16 inputs per K and outputs per N (eai-quant's GEMV takes whole
    /// buffers); the prefill GEMM's f16 weight staging buffer is the model's (`GpuModel::wtmp`).
    W8A16 { xin: Vec<(usize, DeviceBuffer<f16>)>, yout: Vec<(usize, DeviceBuffer<f16>)> },
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
        let cfg: LaunchConfig = $cfg;
        match $crate::cuda::model::check_launch(&cfg) {
            Err(why) => Err(GpuError::invalid(format!("kernel `{}`: {why}", $name))),
            // SAFETY: every call site lists exactly the parameters of the kernel `$name` in
            // kernels/model.cu, in order and with matching types (device buffers of this
            // context as cudarc slices/views or u64 device addresses, scalars as
            // u32/i32/u64/f32), and sizes the buffers for the indices the kernel touches under
            // `$cfg` (stated at each site); the configuration is within CUDA's limits (checked).
            Ok(()) => unsafe { b.launch(cfg) }
                .map(|_| ())
                .map_err(|e| GpuError::driver("cuLaunchKernel", $self.ordinal(), $name, e)),
        }
    }};
}

mod bloom;
mod buffers;
mod decode;
mod forward;
mod generate;
mod head;
mod load;
mod options;
mod score;
mod tile;

pub use load::open_device;
pub use options::{GEMV_DENSE_MAX_M, GpuMemory, GpuOptions, GpuScheme, WeightBytes, pdl_default};
pub use tile::{
    AUTO_TENSOR_CORE_MAX_HIDDEN, FP16_W16_MAX_ROWS, GemvTile, W16_DEFAULT_MAX_ROWS, W16_MAX_ROWS,
    W16_MIN_ROWS, default_gemv_tile,
};

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

fn grid(items: u64, sms: u32) -> LaunchConfig {
    let blocks = items.div_ceil(256).clamp(1, u64::from(sms.max(1)) * 16);
    LaunchConfig { grid_dim: (blocks as u32, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 }
}

/// One warp per row, eight rows per block of 256 threads (the `rmsnorm_*` kernels).
fn warp_rows_cfg(rows: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (u32::try_from(rows.max(1).div_ceil(8)).unwrap_or(u32::MAX), 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The row kernels of four columns per thread (`swiglu_*`, `dequant_out`): the row in
/// `gridDim.x`, the columns over `gridDim.y` blocks of 128 threads (the kernels stride over any
/// columns past the grid).
fn row_quads_cfg(rows: usize, f: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (
            u32::try_from(rows.max(1)).unwrap_or(u32::MAX),
            f.div_ceil(4 * 128).clamp(1, 65_535) as u32,
            1,
        ),
        block_dim: (128, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// One block of `threads` per row, the row in `gridDim.x` (up to 2³¹ − 1 rows; `gridDim.y` and
/// `.z` stop at 65,535, so no kernel of the model puts an unbounded row count there).
fn rows_cfg(rows: usize, threads: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (u32::try_from(rows.max(1)).unwrap_or(u32::MAX), 1, 1),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// CUDA's launch limits (compute capability ≥ 7.0): `gridDim.x` ≤ 2³¹ − 1, `gridDim.y` and
/// `gridDim.z` ≤ 65,535, at most 1,024 threads per block, and at most 48 KiB of shared memory
/// per block (more needs the opt-in attribute, which no kernel of the model sets). A launch
/// outside them fails with `CUDA_ERROR_INVALID_VALUE` and no hint which limit it broke: every
/// launch is checked first, so the error names the kernel and the limit.
pub(crate) fn check_launch(cfg: &LaunchConfig) -> std::result::Result<(), String> {
    const SMEM_DEFAULT_MAX: u32 = 48 << 10;
    let (gx, gy, gz) = cfg.grid_dim;
    let (bx, by, bz) = cfg.block_dim;
    let threads = u64::from(bx) * u64::from(by) * u64::from(bz);
    if gx == 0 || gy == 0 || gz == 0 || threads == 0 {
        return Err(format!("empty launch (grid {:?}, block {:?})", cfg.grid_dim, cfg.block_dim));
    }
    if gx > i32::MAX as u32 || gy > 65_535 || gz > 65_535 {
        return Err(format!(
            "grid {:?} exceeds CUDA's limits (x ≤ 2³¹ − 1, y and z ≤ 65,535)",
            cfg.grid_dim
        ));
    }
    if threads > 1024 || bz > 64 {
        return Err(format!("block {:?} exceeds 1,024 threads", cfg.block_dim));
    }
    if cfg.shared_mem_bytes > SMEM_DEFAULT_MAX {
        return Err(format!(
            "{} bytes of shared memory exceed the 48 KiB available without opt-in",
            cfg.shared_mem_bytes
        ));
    }
    Ok(())
}

/// Launch configuration of the generation attention kernel (`attention_*`, kernels/model.cu):
/// one block of `ATT_WARPS` (8) warps per (query row, head), the row in `gridDim.x`, the head
/// in `gridDim.y` — a packed generation prefill has as many rows as its prompts have tokens
/// (tens of thousands for a group of few-shot prompts), beyond `gridDim.y`'s 65,535.
fn attention_cfg(rows: usize, heads: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (
            u32::try_from(rows.max(1)).unwrap_or(u32::MAX),
            u32::try_from(heads).unwrap_or(u32::MAX),
            1,
        ),
        block_dim: (32 * ATT_WARPS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Warps per block of the generation attention kernel (`ATT_WARPS` in kernels/model.cu).
const ATT_WARPS: u32 = 8;

/// Warps per block of the decode attention kernel (`ATTD_WARPS` in kernels/decode.cu).
const ATTD_WARPS: u32 = 16;

/// Launch configuration of the decode attention kernel (`attention_dec_*`): one block of
/// `ATTD_WARPS` warps per (head, row), the head in `gridDim.x`, the row in `gridDim.y`.
pub(crate) fn attention_dec_cfg(rows: u32, heads: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (heads, rows, 1),
        block_dim: (32 * ATTD_WARPS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The decode attention entry point for an output type (`"f32"`, `"f16"` or `"bf16"`, the
/// kernels' suffix) and head dimension: the one holding d / 32 values per lane in the fewest
/// registers (`_v2` to d = 64, `_v4` to 128, `_v8` to 256, as the scoring tiles).
pub(crate) fn attention_dec_entry(ty: &str, head_dim: usize) -> &'static str {
    const NAMES: [[&str; 3]; 3] = [
        ["attention_dec_f32_v2", "attention_dec_f32_v4", "attention_dec_f32_v8"],
        ["attention_dec_f16_v2", "attention_dec_f16_v4", "attention_dec_f16_v8"],
        ["attention_dec_bf16_v2", "attention_dec_bf16_v4", "attention_dec_bf16_v8"],
    ];
    let t = match ty {
        "f32" => 0,
        "bf16" => 2,
        _ => 1,
    };
    let v = match head_dim {
        0..=64 => 0,
        65..=128 => 1,
        _ => 2,
    };
    NAMES[t][v]
}

/// Warps per block and (row, head) pairs per warp of the tiled scoring attention kernel
/// (`ATTT_WARPS`, `ATTT_PAIRS` in kernels/attention.cu).
const ATTT_WARPS: usize = 4;
const ATTT_PAIRS: usize = 8;

/// Launch configuration of the scoring attention kernel (`attention_prefill_tile_*`) and its
/// rows per tile: one block of `ATTT_WARPS` warps per (tile, kv head, group of ≤ 8 query
/// heads). Not `tiled`, a tile is one row; tiled, it holds as many rows as keep its (row, head)
/// pairs within `ATTT_WARPS · ATTT_PAIRS` and its staged queries, beside a chunk of `ch` keys
/// and values
/// (`(ch·(d + 4) + ch·d + tr·heads·d)` floats) and the kernel's static weights
/// (`ATTT_WARPS · ATTT_PAIRS · 32` floats and 3 words), within 48 KiB of shared memory.
fn prefill_tile_cfg(
    rows: usize,
    n_heads: usize,
    n_kv_heads: usize,
    d: usize,
    tiled: bool,
) -> (LaunchConfig, u32) {
    let group = n_heads / n_kv_heads.max(1);
    let heads = group.clamp(1, 8);
    let d = d.max(1);
    let ch = (4096 / d).min(32);
    let kv = ch * (d + 4) + ch * d;
    let fixed = ATTT_WARPS * ATTT_PAIRS * 32 + 4;
    let room = ((48 << 10) / 4usize).saturating_sub(kv + fixed) / (heads * d);
    let tr = if tiled { (ATTT_WARPS * ATTT_PAIRS / heads).min(room).max(1) } else { 1 };
    let cfg = LaunchConfig {
        grid_dim: (
            u32::try_from(rows.max(1).div_ceil(tr)).unwrap_or(u32::MAX),
            u32::try_from(n_kv_heads).unwrap_or(u32::MAX),
            u32::try_from(group.div_ceil(8)).unwrap_or(u32::MAX),
        ),
        block_dim: (32 * ATTT_WARPS as u32, 1, 1),
        shared_mem_bytes: u32::try_from(4 * (kv + tr * heads * d)).unwrap_or(u32::MAX),
    };
    (cfg, tr as u32)
}

/// The leading rows of a packed pass that are sequences of one row each (`seq` ≥ 0, the next
/// row another sequence's) with no shared prefix (`pre[2s + 1]` = 0, or no descriptors): in a
/// generation pass that admits prompts, the running sequences' decode rows come first (see
/// [`crate::cuda::schedule`]). The tiled attention gives each tile's runs in turn, so a tile of
/// such rows walks every row's context one after the other; these rows take the decode
/// attention kernel instead, one block per (head, row).
pub(crate) fn lead_rows(seq: &[i32], pre: &[u32]) -> usize {
    let mut n = 0;
    while let Some(&s) = seq.get(n) {
        let single = s >= 0 && seq.get(n + 1) != Some(&s);
        let prefix = pre.get(2 * s.max(0) as usize + 1).copied().unwrap_or(0);
        if !single || prefix != 0 {
            break;
        }
        n += 1;
    }
    n
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

/// A Llama-family or BLOOM decoder resident on one CUDA device.
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
    /// BLOOM's LayerNorm and projection biases and ALiBi slopes (`None` for the Llama family).
    bloom: Option<Box<bloom::BloomGpu>>,
    norm: CudaSlice<f32>,
    rope_cos: CudaSlice<f32>,
    rope_sin: CudaSlice<f32>,
    inv_freq: CudaSlice<f32>,
    rope_len: usize,
    kv: Option<CudaSlice<f32>>,
    kv_tokens: usize,
    scratch: Vec<Scratch>,
    head_scratch: Option<HeadScratch>,
    weight_bytes: WeightBytes,
    /// W8A16: elements of the f16 weight staging buffer (the largest projection) and the
    /// buffer, one per model, allocated for the first pass of more than
    /// [`W8A16_GEMV_MAX_M`] rows (each cached scratch shape held its own before issue 16).
    wtmp_len: usize,
    wtmp: Option<CudaSlice<f16>>,
    gemv: bool,
    /// Built on its own stream, so decode steps can be captured.
    capturable: bool,
    graph_on: bool,
    graph: Option<DecodeGraph>,
    /// Fused decode kernels for passes of at most `GEMV_DENSE_MAX_M` rows.
    fused: bool,
    /// Decode GEMV layout: `Auto` (the rule per pass, [`GpuModel::gemv_tile_for`]) or forced.
    tile: GemvTile,
    /// Scoring attention over tiles of query rows (see [`GpuOptions::tiled_attention`]).
    tiled_attention: bool,
    /// 16-bit gate/up GEMM output in cuBLAS passes (see [`GpuOptions::half_gate_up`]).
    half_gate_up: bool,
    /// Programmatic dependent launch in the fused decode layers (see [`GpuOptions::pdl`];
    /// `None`: [`pdl_default`]).
    pdl: Option<bool>,
}

impl GpuModel {
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
            weights: self.weight_bytes.total(),
            weight_parts: self.weight_bytes,
            kv_cache: self.kv.as_ref().map_or(0, |k| 4 * k.len() as u64),
            scratch: self.scratch.iter().map(|s| s.bytes).sum::<u64>()
                + self.head_scratch.as_ref().map_or(0, |s| s.bytes),
            graph: self.graph.as_ref().map_or(0, |g| g.sc.bytes + g.hs.bytes),
            staging: self.wtmp.as_ref().map_or(0, |w| 2 * w.len() as u64),
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

    /// Turns the tiled scoring attention on or off (see [`GpuOptions::tiled_attention`]).
    pub fn set_tiled_attention(&mut self, on: bool) {
        self.tiled_attention = on;
    }

    /// Turns the 16-bit gate/up GEMM output on or off (see [`GpuOptions::half_gate_up`]).
    pub fn set_half_gate_up(&mut self, on: bool) {
        self.half_gate_up = on;
    }

    /// Forces programmatic dependent launch of the fused decode kernels on or off (see
    /// [`GpuOptions::pdl`]) and returns whether it is now on (sm_90+ only).
    pub fn set_pdl(&mut self, on: bool) -> bool {
        self.pdl = Some(on);
        self.graph = None;
        self.pdl_on()
    }

    /// Whether the fused decode layers' kernels are launched as programmatic dependents (the
    /// forced setting, else [`pdl_default`] for the scheme; never before sm_90).
    pub fn pdl_on(&self) -> bool {
        self.pdl.unwrap_or_else(|| pdl_default(self.scheme))
            && self.dev.info().compute_capability.0 >= 9
    }

    /// Sets the decode GEMV layout (see [`GpuOptions::gemv_tile`]): [`GemvTile::Auto`] follows
    /// [`default_gemv_tile`] per pass, any other tile is forced on every pass.
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
        self.wtmp = None;
    }

    /// Bytes a batch-1 decode step reads from device memory at a context of `context` tokens
    /// (the new token included): every projection's weights and scales, norms and biases, the
    /// LM head matrix (the embedding table when tied, the int8 head when built), one embedding
    /// row, one rope-table row, and the f32 keys and values of `context` positions per layer —
    /// the numerator of the decode roofline (activations, a few KB per layer, left out).
    pub fn decode_read_bytes(&self, context: usize) -> u64 {
        let c = &self.cfg;
        let w = &self.weight_bytes;
        let table = self.embed.bytes();
        let row = table / c.vocab.max(1) as u64;
        // The head read per token: the int8 head or the separate head, else the tied table.
        let head = if w.lm_head > 0 { w.lm_head } else { table };
        let rope_row = 4 * 2 * (c.head_dim / 2) as u64;
        let other = w.other.saturating_sub(self.rope_cos.len() as u64 * 4 * 2) + rope_row;
        let kv = 4 * 2 * (c.n_layers * context * c.n_kv_heads * c.head_dim) as u64;
        w.layers + w.scales + head + row + other + kv
    }

    fn ordinal(&self) -> usize {
        self.dev.info().ordinal
    }

    /// Waits for all enqueued work.
    ///
    /// # Errors
    /// CUDA errors of earlier asynchronous work.
    pub fn synchronize(&self) -> Result<()> {
        Ok(self.dev.synchronize()?)
    }
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
    use crate::linear::Scheme;

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

    /// The decode rows a generation pass leads with (one row per running sequence, no shared
    /// prefix) and nothing after the first prompt, padding row or prefixed continuation.
    #[test]
    fn lead_rows_are_the_leading_one_row_sequences() {
        // Three decode rows, then a prompt of three rows, then a decode row, then padding.
        let seq = [0, 1, 2, 3, 3, 3, 4, -1];
        assert_eq!(lead_rows(&seq, &[]), 3);
        assert_eq!(lead_rows(&seq, &[0; 10]), 3);
        // Sequence 1 continues a shared prefix: the lead stops before it.
        assert_eq!(lead_rows(&seq, &[0, 0, 0, 5, 0, 0, 0, 0, 0, 0]), 1);
        // A pass of decode rows only (and its padding), a prompt first, nothing.
        assert_eq!(lead_rows(&[0, 1, 2, -1, -1], &[]), 3);
        assert_eq!(lead_rows(&[0, 0, 1], &[]), 0);
        assert_eq!(lead_rows(&[-1, 0], &[]), 0);
        assert_eq!(lead_rows(&[], &[]), 0);
        // A one-row prompt admitted after the decode rows counts with them (same result).
        assert_eq!(lead_rows(&[0, 1, 2, 2], &[]), 2);
    }

    #[test]
    fn launch_limits_are_checked() {
        let cfg = |g: (u32, u32, u32), b: u32, smem: u32| LaunchConfig {
            grid_dim: g,
            block_dim: (b, 1, 1),
            shared_mem_bytes: smem,
        };
        assert!(check_launch(&cfg((1 << 30, 65_535, 65_535), 1024, 48 << 10)).is_ok());
        assert!(check_launch(&cfg((1, 65_536, 1), 128, 0)).unwrap_err().contains("grid"));
        assert!(check_launch(&cfg((1, 1, 65_536), 128, 0)).is_err());
        assert!(check_launch(&cfg((1 << 31, 1, 1), 128, 0)).is_err());
        assert!(check_launch(&cfg((1, 1, 1), 1025, 0)).unwrap_err().contains("1,024"));
        assert!(check_launch(&cfg((1, 1, 1), 32, (48 << 10) + 4)).unwrap_err().contains("48 KiB"));
        assert!(check_launch(&cfg((0, 1, 1), 32, 0)).is_err());
    }

    /// Issue 14: groups of 256 GSM8K 5-shot prompts failed with `CUDA_ERROR_INVALID_VALUE` in
    /// `attention_f16`. The generation attention put the row in `gridDim.y`: a packed prefill of
    /// 256 prompts of ~800 tokens has ~200k rows, and even a group capped at 65,535 prompt tokens
    /// launched `bucket_rows(65_535)` = 65,536 rows, one over the limit.
    #[test]
    fn attention_launches_fit_any_packed_prefill() {
        assert_eq!(bucket_rows(65_535), 65_536);
        let old_layout = LaunchConfig {
            grid_dim: (9, bucket_rows(65_535) as u32, 1),
            block_dim: (128, 1, 1),
            shared_mem_bytes: 0,
        };
        assert!(check_launch(&old_layout).is_err());
        for rows in [1, 17, 65_535, 65_536, 200_000, 256 * 1_100, 4 << 20] {
            let m = bucket_rows(rows);
            for heads in [1, 9, 32, 64, 128] {
                assert_eq!(check_launch(&attention_cfg(m, heads)), Ok(()), "{m} rows, {heads}");
            }
            // Every head shape the loader accepts: d a multiple of 32 up to 256, any GQA group.
            for d in (32..=256).step_by(32) {
                for (nh, nkv) in [(9, 3), (32, 8), (28, 4), (64, 64), (64, 1), (71, 1)] {
                    let (cfg, one) = prefill_tile_cfg(m, nh, nkv, d, false);
                    assert_eq!(check_launch(&cfg), Ok(()), "{m} rows, d {d}, {nh}:{nkv}");
                    assert_eq!((one, cfg.grid_dim.0 as usize), (1, m));
                    let (cfg, tr) = prefill_tile_cfg(m, nh, nkv, d, true);
                    assert_eq!(check_launch(&cfg), Ok(()), "tiled: {m} rows, d {d}, {nh}:{nkv}");
                    // Every row in one tile, every (row, head) pair held by a warp.
                    let heads = (nh / nkv).clamp(1, 8);
                    assert!(cfg.grid_dim.0 as usize * tr as usize >= m);
                    assert!(tr as usize * heads <= ATTT_WARPS * ATTT_PAIRS, "{tr} rows × {heads}");
                }
            }
        }
        assert_eq!(attention_cfg(200_000, 9).block_dim.0, 32 * ATT_WARPS);
        // The kernel strides its keys by its own ATT_WARPS: the block must hold exactly that.
        let define = format!("#define ATT_WARPS {ATT_WARPS}\n");
        assert!(super::super::kernels::SOURCE.contains(&define), "{define}");
        assert_eq!(attention_dec_cfg(3, 28).block_dim.0, 32 * ATTD_WARPS);
        for (ty, d, name) in [
            ("f16", 64, "attention_dec_f16_v2"),
            ("f32", 128, "attention_dec_f32_v4"),
            ("bf16", 256, "attention_dec_bf16_v8"),
            ("f16", 96, "attention_dec_f16_v4"),
        ] {
            assert_eq!(attention_dec_entry(ty, d), name);
        }
        for define in [
            format!("#define ATTD_WARPS {ATTD_WARPS}\n"),
            format!("#define ATTT_WARPS {ATTT_WARPS}\n"),
            format!("#define ATTT_PAIRS {ATTT_PAIRS}\n"),
        ] {
            assert!(super::super::kernels::SOURCE.contains(&define), "{define}");
        }
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
