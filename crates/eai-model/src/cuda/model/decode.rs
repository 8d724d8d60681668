//! Fused decode path (session 3): passes of at most [`GEMV_DENSE_MAX_M`] rows run five kernels
//! per layer (`kernels/decode.cu`): qkv GEMV with RMSNorm in its activation load and bias +
//! rope + KV-cache write in its epilogue, decode attention, o GEMV + residual, gate/up GEMV with
//! RMSNorm in its load and SwiGLU in its epilogue, down GEMV + residual; the LM head runs the
//! final norm in its load.

use std::ffi::c_void;

use cudarc::driver::{CudaSlice, DevicePtr, DeviceRepr, LaunchConfig, PushKernelArg, sys};

use super::tile::{GemvTile, W16_MAX_ROWS};
use super::{
    Act, Dense, GEMV_DENSE_MAX_M, GpuLinear, GpuModel, GpuScheme, HeadScratch, Scratch, Weight,
    attention_dec_cfg, attention_dec_entry, check_launch, find,
};
use crate::cuda::blas::InType;
use crate::cuda::error::{GpuError, Result};

/// Bytes of warp partials (two buffers) at the start of the bandwidth tensor-core GEMV's
/// dynamic shared memory (`TW_PART_BYTES` in tw.cu).
const TW_PART_BYTES: usize = 8192;

/// Dynamic shared memory the bandwidth tensor-core GEMVs may take: 48 KiB without opting in,
/// less their static reduction buffer.
const TW_SMEM_MAX: usize = (48 << 10) - 128;

/// The kernels' `DecArgs` (decode.cu), field for field; device pointers as u64 (0 = null).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct DecArgs {
    w: u64,
    scale: u64,
    x: u64,
    nw: u64,
    xidx: u64,
    y: u64,
    act: u64,
    bias: u64,
    seq: u64,
    pos: u64,
    seq_off: u64,
    cos_t: u64,
    sin_t: u64,
    inv_freq: u64,
    kc: u64,
    vc: u64,
    m: u32,
    n: u32,
    k: u32,
    ldy: u32,
    add: i32,
    eps: f32,
    table_len: u32,
    nh: u32,
    nkv: u32,
    d: u32,
    f: u32,
}

// SAFETY: plain integers and floats in the C layout of decode.cu's `struct DecArgs` (16
// pointers, then 11 four-byte fields; the same size and padding in both), passed by value.
unsafe impl DeviceRepr for DecArgs {}

/// What a fused GEMV does around the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    /// RMSNorm in the load, bias + rope + KV write after.
    NormRope,
    /// RMSNorm in the load, SwiGLU after.
    NormSwiglu,
    /// RMSNorm in the load, plain f32 output.
    NormPlain,
    /// Activations from memory, plain f32 output (written or added).
    Plain(GemvTile),
}

/// A kernel parameter's address for [`GpuModel::launch_params`] (the driver copies the value at
/// launch and never writes through it).
fn param<T>(x: &T) -> *mut c_void {
    std::ptr::from_ref(x).cast_mut().cast()
}

/// Dynamic shared memory the norm-fused kernels may take (48 KiB without opting in to more,
/// less the static reduction buffer).
const DGEMV_SMEM_MAX: usize = 46 << 10;

fn m_tile(m: usize) -> usize {
    match m {
        0 | 1 => 1,
        2 => 2,
        _ => 4,
    }
}

/// Weight suffix, elements per 16-byte vector and activation bytes of a weight format.
fn format_of(ty: WeightTy) -> (&'static str, usize, usize) {
    match ty {
        WeightTy::I8 => ("i8", 16, 2),
        WeightTy::Dense(InType::F16) => ("f16", 8, 2),
        WeightTy::Dense(InType::Bf16) => ("bf16", 8, 2),
        WeightTy::Dense(InType::F32) => ("f32", 4, 4),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WeightTy {
    I8,
    Dense(InType),
}

/// Kernel, work units, warps per block and dynamic shared memory of one fused GEMV, before the
/// occupancy clamp.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Launch {
    name: String,
    units: usize,
    warps: usize,
    smem: usize,
    /// One unit per block (block-split-K and tensor-core layouts) instead of one per warp.
    block_k: bool,
    /// The bandwidth tensor-core GEMV ([`GemvTile::W16`]) runs it.
    w16: bool,
}

/// See [`GpuModel::w16_batched_tile`].
fn w16_batched_tile(
    tile: GemvTile,
    gemv: bool,
    sm80: bool,
    ty: WeightTy,
    m: usize,
    k: usize,
) -> Option<usize> {
    let (_, epv, _) = format_of(ty);
    let ok = gemv
        && sm80
        && tile == GemvTile::W16
        && matches!(ty, WeightTy::I8 | WeightTy::Dense(InType::F16))
        && k.is_multiple_of(4 * epv)
        && (GEMV_DENSE_MAX_M + 1..=W16_MAX_ROWS).contains(&m);
    ok.then(|| m.next_power_of_two().max(8))
}

/// Which kernel runs a fused GEMV of variant `v` over `ty` weights for the pass's tile
/// `model_tile` ([`GemvTile::for_pass`]), on an sm_80+ device or not, with
/// `(m, n, k, head_dim, ffn)`.
fn launch_plan(
    v: Variant,
    ty: WeightTy,
    model_tile: GemvTile,
    sm80: bool,
    (m, n, k, d, f): (usize, usize, usize, usize, usize),
) -> Launch {
    let (wn, epv, xb) = format_of(ty);
    let mt = m_tile(m);
    let int8 = ty == WeightTy::I8;
    // Tensor-core norm-fused int8 GEMVs: units of 8 rows (4 rope pairs of one head, 4 gate/up
    // pairs).
    let tc = model_tile.for_format(int8, sm80).tensor_core()
        && int8
        && f.is_multiple_of(4)
        && (d / 2).is_multiple_of(4);
    // The bandwidth tensor-core GEMVs (GemvTile::W16): int8 / f16 weights, K a whole number of
    // 64-byte chunks per row (4 lanes × 16 bytes), units of 8 rope / gate-up pairs.
    let norm = !matches!(v, Variant::Plain(_));
    let tile = match v {
        Variant::Plain(t) => t,
        _ => model_tile,
    };
    let tw_smem = TW_PART_BYTES + if norm { mt * k * xb } else { 0 };
    let w16 = tile.for_format(int8, sm80) == GemvTile::W16
        && matches!(ty, WeightTy::I8 | WeightTy::Dense(InType::F16))
        && k.is_multiple_of(4 * epv)
        && match v {
            Variant::NormRope => (d / 2).is_multiple_of(8) && n.is_multiple_of(16),
            Variant::NormSwiglu => f.is_multiple_of(8),
            _ => true,
        }
        && tw_smem <= TW_SMEM_MAX;
    let mut block_k = false;
    let (var, units, warps, smem) = match v {
        _ if w16 => {
            let (var, units) = match v {
                Variant::NormRope => ("wnr", n / 16),
                Variant::NormSwiglu => ("wns", f / 8),
                Variant::NormPlain => ("wnp", n.div_ceil(16)),
                Variant::Plain(_) => ("wxp", n.div_ceil(16)),
            };
            block_k = true;
            (var.to_string(), units, 8, tw_smem)
        }
        Variant::NormRope if tc => ("tnr".to_string(), n / 8, 8, mt * k * xb),
        Variant::NormSwiglu if tc => ("tns".to_string(), f / 4, 8, mt * k * xb),
        Variant::NormPlain if tc => ("tnp".to_string(), n.div_ceil(8), 8, mt * k * xb),
        Variant::NormRope => ("nr".to_string(), n / 2, 8, mt * k * xb),
        Variant::NormSwiglu => ("ns".to_string(), f, 8, mt * k * xb),
        Variant::NormPlain => ("np".to_string(), n.div_ceil(2), 8, mt * k * xb),
        Variant::Plain(t) => {
            // W16 where its kernel does not apply (bf16/f32 weights, K not a whole number of
            // chunks): the block-split-K layout.
            let t = match t.for_format(int8, sm80) {
                GemvTile::W16 => GemvTile::K4U2,
                t => t,
            };
            block_k = t.block_k();
            let warps = if block_k { 8 } else { 4 };
            (format!("xp_{}", t.label()), n.div_ceil(t.rows()), warps, 0)
        }
    };
    Launch { name: format!("dg_{wn}_{var}_m{mt}"), units, warps, smem, block_k, w16 }
}

impl GpuModel {
    fn layer_weight_ty(&self) -> Option<WeightTy> {
        Some(match self.scheme {
            GpuScheme::Fp32 | GpuScheme::Fp16 | GpuScheme::Bf16 => {
                WeightTy::Dense(self.scheme.float_type())
            }
            GpuScheme::W8A16 => WeightTy::I8,
            GpuScheme::W8A8 | GpuScheme::Dynamic => return None,
        })
    }

    /// Whether a pass of `m` rows runs the fused decoder layers.
    pub(super) fn fused_fits(&self, m: usize) -> bool {
        if !(self.fused && self.gemv && (1..=GEMV_DENSE_MAX_M).contains(&m)) {
            return false;
        }
        let Some(ty) = self.layer_weight_ty() else { return false };
        let (_, epv, xb) = format_of(ty);
        let c = &self.cfg;
        [c.hidden, c.n_heads * c.head_dim, c.ffn].iter().all(|k| k.is_multiple_of(epv))
            && m_tile(m) * c.hidden * xb <= DGEMV_SMEM_MAX
    }

    /// The batched plain W16 GEMV for a linear layer of `ty` weights and inner size `k` in a
    /// pass of `m` rows: its row tile (8, 16 or 32), when the pass's tile
    /// ([`GpuModel::gemv_tile_for`]) is [`GemvTile::W16`], the decode GEMV is on, the device is
    /// sm_80+, the weights are int8 or f16, K is a whole number of 64-byte chunks and `m` is
    /// past the fused path's rows and at most [`W16_MAX_ROWS`] (decode steps of 5–32
    /// sequences; W8A16 otherwise dequantizes every weight to f16 per pass above 16 rows).
    pub(super) fn w16_batched_tile(&self, ty: WeightTy, m: usize, k: usize) -> Option<usize> {
        w16_batched_tile(self.gemv_tile_for(m), self.gemv, self.sm80(), ty, m, k)
    }

    fn sm80(&self) -> bool {
        self.dev.info().compute_capability.0 >= 8
    }

    /// The decode GEMV layout a pass of `rows` rows runs: the forced tile
    /// ([`GpuModel::set_gemv_tile`], `EAI_GEMV_TILE`), else [`default_gemv_tile`] for this
    /// model's scheme and width on this device.
    ///
    /// [`default_gemv_tile`]: super::default_gemv_tile
    pub fn gemv_tile_for(&self, rows: usize) -> GemvTile {
        self.tile.for_pass(self.scheme, rows, self.sm80(), self.cfg.hidden)
    }

    /// Blocks of `warps` warps (and `smem` bytes of dynamic shared memory) of kernel `name`
    /// resident on the whole device at once.
    fn resident_blocks(&self, name: &str, warps: usize, smem: usize) -> Result<usize> {
        let per_sm = self
            .kernels
            .get(name)?
            .occupancy_max_active_blocks_per_multiprocessor(32 * warps as u32, smem, None)
            .map_err(|e| {
                GpuError::driver(
                    "cuOccupancyMaxActiveBlocksPerMultiprocessor",
                    self.ordinal(),
                    name.to_string(),
                    e,
                )
            })?
            .max(1) as usize;
        Ok(per_sm * self.dev.info().multiprocessors.max(1) as usize)
    }

    /// Launches the batched plain W16 GEMV: y[m, n] (= or +=) scale[n] · Σ_k W[n, k] · x[m, k].
    ///
    /// # Safety
    /// `w` holds n·k elements of `ty` (int8: `scale` n f32), `x` m·k f16 activations, `y` m·n
    /// f32; [`GpuModel::w16_batched_tile`] returned `Some(mt)` for (`ty`, m, k).
    pub(super) unsafe fn w16_batched(
        &self,
        ty: WeightTy,
        mt: usize,
        (w, scale, x, y): (u64, u64, u64, u64),
        (m, n, k): (usize, usize, usize),
        add: bool,
    ) -> Result<()> {
        let name = format!("dg_{}_wxp_m{mt}", format_of(ty).0);
        let smem = TW_PART_BYTES * mt.div_ceil(8);
        let cap = self.resident_blocks(&name, 8, smem)?;
        let a = DecArgs {
            w,
            scale,
            x,
            y,
            m: m as u32,
            n: n as u32,
            k: k as u32,
            ldy: n as u32,
            add: i32::from(add),
            ..DecArgs::default()
        };
        let cfg = LaunchConfig {
            grid_dim: (n.div_ceil(16).clamp(1, cap) as u32, m.div_ceil(mt) as u32, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: smem as u32,
        };
        // The kernel bounds-checks rows and batch rows; the caller guarantees the buffers.
        launch!(self, name.as_str(), cfg, [&a])
    }

    /// Whether the LM head of `r` rows (weights `head_ty`: int8 takes f16 activations) runs
    /// with the final norm fused into its GEMV.
    pub(super) fn fused_head_fits(&self, r: usize, head_ty: WeightTy, act_ty: InType) -> bool {
        let act_ok = match head_ty {
            WeightTy::I8 => act_ty == InType::F16,
            WeightTy::Dense(t) => t == act_ty,
        };
        if !(self.fused && self.gemv && (1..=GEMV_DENSE_MAX_M).contains(&r) && act_ok) {
            return false;
        }
        let (_, epv, xb) = format_of(head_ty);
        let h = self.cfg.hidden;
        h.is_multiple_of(epv) && m_tile(r) * h * xb <= DGEMV_SMEM_MAX
    }

    /// Device address of the scheme's GEMM-input buffer for inner size `k`.
    fn act_ptr(&self, sc: &Scratch, k: usize) -> Result<u64> {
        let s = &self.stream;
        match &sc.act {
            Act::Float(a) => Ok(a.ptr(s)),
            Act::W8A16 { xin, .. } => Ok(find(xin, k, "f16 input")?.as_cudarc().device_ptr(s).0),
            Act::Int8 { .. } => Err(GpuError::invalid("fused decode: int8 activations")),
        }
    }

    /// Weight and per-row scale addresses (scale 0 for dense weights) and the weight format.
    fn weight_of(&self, lin: &GpuLinear) -> (u64, u64, WeightTy) {
        let s = &self.stream;
        match &lin.w {
            Weight::Dense(w) => (w.ptr(s), 0, WeightTy::Dense(w.ty())),
            Weight::I8(q) => (
                q.codes().as_cudarc().device_ptr(s).0,
                q.scales().as_cudarc().device_ptr(s).0,
                WeightTy::I8,
            ),
        }
    }

    /// Launches one fused GEMV.
    ///
    /// # Safety
    /// `a` describes buffers of this context sized for the kernel's reads and writes: `w`
    /// holds n·k elements of `ty` (plus n f32 scales for int8), `x` m·k activations (or, for the
    /// norm variants, the f32 residual rows named by `xidx`, and `nw` k floats), and the
    /// variant's outputs (y m·ldy f32; act m·f; the cache slots of `seq_off[seq] + pos`); k a
    /// multiple of the 16-byte vector width of `ty`; for the norm variants the shared memory
    /// m_tile(m)·k activations fits [`DGEMV_SMEM_MAX`].
    /// With `pdl` it is launched as a programmatic dependent ([`GpuModel::launch_params`]).
    unsafe fn dgemv(&self, v: Variant, ty: WeightTy, a: &DecArgs, pdl: bool) -> Result<()> {
        let (m, n, k) = (a.m as usize, a.n as usize, a.k as usize);
        let mt = m_tile(m);
        let dims = (m, n, k, a.d as usize, a.f as usize);
        let Launch { name, units, warps, smem, block_k, w16 } =
            launch_plan(v, ty, self.gemv_tile_for(m), self.sm80(), dims);
        let resident = |warps: usize| self.resident_blocks(&name, warps, smem);
        let mut warps = warps;
        // Warp-per-unit kernels: `warps` units per block; block-split-K: one unit per block.
        let mut blocks = if block_k { units.max(1) } else { units.div_ceil(warps).max(1) };
        if smem > 0 {
            // Norm-fused and W16 kernels: at most as many blocks as fit on the device at once,
            // each normalizing its rows once (norm variants) and then looping over units.
            let mut cap = resident(warps)?;
            if w16 && units > cap {
                // More units than resident 8-warp blocks: blocks of 4 warps, when that puts
                // every unit in one wave (Qwen2.5-7B's qkv: 288 units; a second wave of 24
                // blocks would stream at a fraction of the bandwidth).
                let cap4 = resident(4)?;
                if units <= cap4 {
                    (warps, cap) = (4, cap4);
                }
            }
            blocks = blocks.min(cap);
        }
        let cfg = LaunchConfig {
            grid_dim: (blocks as u32, m.div_ceil(mt) as u32, 1),
            block_dim: (32 * warps as u32, 1, 1),
            shared_mem_bytes: smem as u32,
        };
        // Every warp handles one unit (R rows, a rope pair or a gate/up pair); the kernel
        // bounds-checks units, rows and m; the caller guarantees the buffer sizes above.
        let mut params = [param(a)];
        // SAFETY: every dg_* kernel takes one `DecArgs` by value (`a`, live for the call)
        // and waits (`pdl_wait`) before it touches anything but its weights.
        unsafe { self.launch_params(&name, cfg, &mut params, pdl) }
    }

    /// Launches kernel `name` with the parameter addresses `params`: as a programmatic
    /// dependent launch (`cuLaunchKernelEx`) when `pdl` and [`GpuModel::pdl_on`] — the kernel may
    /// start before the one before it in the stream has finished — else with `cuLaunchKernel`.
    ///
    /// # Safety
    /// `params` point at live values of exactly the kernel's parameter types, in order; the
    /// buffers they name are sized for the kernel under `cfg`; with `pdl`, the kernel runs
    /// decode.cu's `pdl_wait` before it reads or writes anything an earlier kernel may write.
    pub(super) unsafe fn launch_params(
        &self,
        name: &str,
        cfg: LaunchConfig,
        params: &mut [*mut c_void],
        pdl: bool,
    ) -> Result<()> {
        check_launch(&cfg).map_err(|why| GpuError::invalid(format!("kernel `{name}`: {why}")))?;
        let f = self.kernels.get(name)?;
        let ord = self.ordinal();
        self.stream
            .context()
            .bind_to_thread()
            .map_err(|e| GpuError::driver("cuCtxSetCurrent", ord, name.to_string(), e))?;
        if !(pdl && self.pdl_on()) {
            // SAFETY: `f` is a kernel of this context (bound above), `cfg` a valid
            // configuration (checked) on the model's stream; the caller guarantees the
            // parameters.
            return unsafe {
                cudarc::driver::result::launch_kernel(
                    f.cu_function(),
                    cfg.grid_dim,
                    cfg.block_dim,
                    cfg.shared_mem_bytes,
                    self.stream.cu_stream(),
                    params,
                )
            }
            .map_err(|e| GpuError::driver("cuLaunchKernel", ord, name.to_string(), e));
        }
        // Programmatic dependent launch (sm_90+, so a driver with cuLaunchKernelEx).
        // SAFETY: a zeroed attribute is a valid value of the plain-data union; id and value
        // are set below.
        let mut attr: sys::CUlaunchAttribute = unsafe { std::mem::zeroed() };
        attr.id = sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
        attr.value.programmaticStreamSerializationAllowed = 1;
        let conf = sys::CUlaunchConfig {
            gridDimX: cfg.grid_dim.0,
            gridDimY: cfg.grid_dim.1,
            gridDimZ: cfg.grid_dim.2,
            blockDimX: cfg.block_dim.0,
            blockDimY: cfg.block_dim.1,
            blockDimZ: cfg.block_dim.2,
            sharedMemBytes: cfg.shared_mem_bytes,
            hStream: self.stream.cu_stream(),
            attrs: &raw mut attr,
            numAttrs: 1,
        };
        // SAFETY: as above, with `conf` holding the checked configuration and one attribute.
        unsafe {
            sys::cuLaunchKernelEx(&conf, f.cu_function(), params.as_mut_ptr(), std::ptr::null_mut())
        }
        .result()
        .map_err(|e| GpuError::driver("cuLaunchKernelEx", ord, name.to_string(), e))
    }

    /// The decoder layers of a decode pass (rows already embedded into `sc.x` by the kernel
    /// enqueued just before: every launch here may be a programmatic dependent of a kernel,
    /// [`GpuOptions::pdl`](super::GpuOptions::pdl)).
    pub(super) fn fused_layers(
        &self,
        sc: &mut Scratch,
        kv: &CudaSlice<f32>,
        kv_tokens: usize,
    ) -> Result<()> {
        let c = &self.cfg;
        let (h, d, nh, nkv, f) = (c.hidden, c.head_dim, c.n_heads, c.n_kv_heads, c.ffn);
        let m = sc.m;
        let s = &self.stream;
        let wq = (nh + 2 * nkv) * d;
        if sc.qkv.len() < m * wq || sc.x.len() < m * h {
            return Err(GpuError::invalid("fused decode: scratch too small"));
        }
        let attn_out = self.act_ptr(sc, nh * d)?;
        let ffn_in = self.act_ptr(sc, f)?;
        let (xp, _gx) = sc.x.device_ptr(s);
        let (qkvp, _gq) = sc.qkv.device_ptr(s);
        let (seqp, _gs) = sc.seq.device_ptr(s);
        let (posp, _gp) = sc.pos.device_ptr(s);
        let (offp, _go) = sc.seq_off.device_ptr(s);
        let (kvp, _gk) = kv.device_ptr(s);
        let (cosp, _gc) = self.rope_cos.device_ptr(s);
        let (sinp, _gn) = self.rope_sin.device_ptr(s);
        let (invp, _gi) = self.inv_freq.device_ptr(s);
        let per_layer = (kv_tokens * nkv * d) as u64;
        let (m32, h32, nh32, nkv32, d32, f32_) =
            (m as u32, h as u32, nh as u32, nkv as u32, d as u32, f as u32);
        let base = DecArgs {
            seq: seqp,
            pos: posp,
            seq_off: offp,
            cos_t: cosp,
            sin_t: sinp,
            inv_freq: invp,
            m: m32,
            eps: c.rms_eps,
            table_len: self.rope_len as u32,
            nh: nh32,
            nkv: nkv32,
            d: d32,
            f: f32_,
            ..DecArgs::default()
        };
        let scale = 1.0f32 / (d as f32).sqrt();
        let tile = self.gemv_tile_for(m);
        let window = c.sliding_window.map_or(0u32, |w| w.min(u32::MAX as usize) as u32);
        let attn = attention_dec_entry(
            match &sc.act {
                Act::Float(Dense::F32(_)) => "f32",
                Act::Float(Dense::Bf16(_)) => "bf16",
                _ => "f16",
            },
            d,
        );
        let attn_cfg = attention_dec_cfg(m32, nh32);
        for (li, layer) in self.layers.iter().enumerate() {
            let kc = kvp + 4 * (2 * li as u64) * per_layer;
            let vc = kc + 4 * per_layer;
            let (norm1, _g1) = layer.attn_norm.device_ptr(s);
            let (norm2, _g2) = layer.ffn_norm.device_ptr(s);
            let bias = layer.qkv_bias.as_ref().map_or(0, |b| b.device_ptr(s).0);
            let (w, sw, ty) = self.weight_of(&layer.qkv);
            let a = DecArgs {
                w,
                scale: sw,
                x: xp,
                nw: norm1,
                y: qkvp,
                bias,
                kc,
                vc,
                n: wq as u32,
                k: h32,
                ldy: wq as u32,
                ..base
            };
            // SAFETY: qkv weights (wq × h), the residual (m × h f32), the norm (h), qkv
            // scratch (m × wq f32, checked above), the bias (wq) and this layer's cache slices
            // (slots < kv_tokens, checked by upload_plan); fused_fits checked k and smem.
            unsafe { self.dgemv(Variant::NormRope, ty, &a, true)? };
            // One block per (head, row): q from the qkv rows, keys/values from this layer's
            // cache slots (written above), output m × nh·d activations.
            let ptrs = [qkvp, seqp, posp, offp, kc, vc, attn_out];
            let mut params = [
                param(&ptrs[0]),
                param(&ptrs[1]),
                param(&ptrs[2]),
                param(&ptrs[3]),
                param(&ptrs[4]),
                param(&ptrs[5]),
                param(&ptrs[6]),
                param(&nh32),
                param(&nkv32),
                param(&d32),
                param(&scale),
                param(&window),
            ];
            // SAFETY: the parameters of attention_dec_* in order (device addresses as u64,
            // then u32 nh, nkv, d, f32 scale, u32 window), each live for the call; the kernel
            // waits (`pdl_wait`) before it reads anything.
            unsafe { self.launch_params(attn, attn_cfg, &mut params, true)? };
            let (w, sw, ty) = self.weight_of(&layer.o);
            let a = DecArgs {
                w,
                scale: sw,
                x: attn_out,
                y: xp,
                n: h32,
                k: (nh * d) as u32,
                ldy: h32,
                add: 1,
                ..base
            };
            // SAFETY: o weights (h × nh·d), attention output (m × nh·d), residual (m × h).
            unsafe { self.dgemv(Variant::Plain(tile), ty, &a, true)? };
            let (w, sw, ty) = self.weight_of(&layer.gate_up);
            let a = DecArgs {
                w,
                scale: sw,
                x: xp,
                nw: norm2,
                act: ffn_in,
                n: (2 * f) as u32,
                k: h32,
                ..base
            };
            // SAFETY: gate/up weights (2f × h), residual (m × h), norm (h), SwiGLU output
            // (m × f activations).
            unsafe { self.dgemv(Variant::NormSwiglu, ty, &a, true)? };
            let (w, sw, ty) = self.weight_of(&layer.down);
            let a = DecArgs {
                w,
                scale: sw,
                x: ffn_in,
                y: xp,
                n: h32,
                k: f32_,
                ldy: h32,
                add: 1,
                ..base
            };
            // SAFETY: down weights (h × f), SwiGLU output (m × f), residual (m × h).
            unsafe { self.dgemv(Variant::Plain(tile), ty, &a, true)? };
        }
        Ok(())
    }

    /// Final norm fused into the LM-head GEMV for the first `r` rows of `hs.idx`; with `pdl`,
    /// launched as a programmatic dependent of the kernel before it (which must be the last
    /// thing enqueued: `hs.idx` is read after the wait, but a copy is no kernel to wait for).
    pub(super) fn fused_head(
        &self,
        hs: &HeadScratch,
        x: &CudaSlice<f32>,
        r: usize,
        (h, v): (usize, usize),
        pdl: bool,
    ) -> Result<()> {
        let s = &self.stream;
        let head_w = self.head.as_ref().unwrap_or(&self.embed);
        let (xp, _gx) = x.device_ptr(s);
        let (idxp, _gi) = hs.idx.device_ptr(s);
        let (np, _gn) = self.norm.device_ptr(s);
        let (lp, _gl) = hs.logits.device_ptr(s);
        if hs.logits.len() < r * v || hs.idx.len() < r {
            return Err(GpuError::invalid("LM head: buffers too small"));
        }
        let (w, scale, ty) = match &self.head_i8 {
            Some(q) => (
                q.codes().as_cudarc().device_ptr(s).0,
                q.scales().as_cudarc().device_ptr(s).0,
                WeightTy::I8,
            ),
            None => (head_w.ptr(s), 0, WeightTy::Dense(head_w.ty())),
        };
        let a = DecArgs {
            w,
            scale,
            x: xp,
            nw: np,
            xidx: idxp,
            y: lp,
            m: r as u32,
            n: v as u32,
            k: h as u32,
            ldy: v as u32,
            eps: self.cfg.rms_eps,
            ..DecArgs::default()
        };
        // SAFETY: head weights (vocab × h of their type; int8: vocab scales too), residual rows idx[i] < rows of x
        // (checked by the callers), norm (h), logits (≥ r × vocab, checked);
        // fused_head_fits checked the vector width and shared memory.
        unsafe { self.dgemv(Variant::NormPlain, ty, &a, pdl) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dec_args_matches_the_kernel_struct_size() {
        // 16 pointers + 11 four-byte fields, padded to 8: the C struct's size.
        assert_eq!(std::mem::size_of::<DecArgs>(), 16 * 8 + 11 * 4 + 4);
    }

    #[test]
    fn m_tile_pads_to_1_2_4() {
        assert_eq!((m_tile(1), m_tile(2), m_tile(3), m_tile(4)), (1, 2, 4, 4));
    }

    /// Every (tile, weight format, device generation, variant, shape, row count) dispatches to
    /// a kernel the module exports; W16 takes the int8 and f16 GEMVs of the 7B shapes (and the
    /// tiny test model's) on sm_80+ and nothing else.
    #[test]
    fn every_launch_plan_names_an_exported_kernel() {
        let names = crate::cuda::kernels::dgemv_names();
        let tys = [
            WeightTy::I8,
            WeightTy::Dense(InType::F16),
            WeightTy::Dense(InType::Bf16),
            WeightTy::Dense(InType::F32),
        ];
        // (hidden, heads·head_dim, kv heads·head_dim, head_dim, ffn, vocab): Qwen2.5-7B,
        // Mistral-7B, SmolLM2-135M, the GPU tests' tiny and W16 models, an odd head.
        let shapes = [
            (3584, 3584, 512, 128, 18944, 152_064),
            (4096, 4096, 1024, 128, 14336, 32_000),
            (576, 576, 192, 64, 1536, 49_152),
            (128, 128, 64, 32, 320, 300),
            (512, 512, 128, 64, 1408, 6007),
            (96, 96, 48, 48, 272, 1000),
        ];
        for tile in GemvTile::ALL {
            for ty in tys {
                for sm80 in [true, false] {
                    for (h, q, kv, d, f, vocab) in shapes {
                        let wq = q + 2 * kv;
                        let gemvs = [
                            (Variant::NormRope, wq, h),
                            (Variant::NormSwiglu, 2 * f, h),
                            (Variant::NormPlain, vocab, h),
                            (Variant::Plain(tile), h, q),
                            (Variant::Plain(tile), h, f),
                        ];
                        for (v, n, k) in gemvs {
                            for m in 1..=4 {
                                let pass = tile.for_pass(scheme_of(ty), m, sm80, h);
                                let v = match v {
                                    Variant::Plain(_) => Variant::Plain(pass),
                                    v => v,
                                };
                                let l = launch_plan(v, ty, pass, sm80, (m, n, k, d, f));
                                assert!(names.contains(&l.name), "{tile:?} {ty:?} {v:?}: {l:?}");
                                // (The CUDA-core norm kernels' smem is checked by fused_fits.)
                                assert!(l.units > 0 && (!l.w16 || l.smem <= TW_SMEM_MAX));
                                let tw = pass == GemvTile::W16
                                    && sm80
                                    && matches!(ty, WeightTy::I8 | WeightTy::Dense(InType::F16))
                                    && h % 64 == 0
                                    && k % 64 == 0;
                                if tw {
                                    assert!(l.w16, "{tile:?} {ty:?} {v:?} {h}: {l:?}");
                                }
                                assert_eq!(l.w16, l.name.contains("_w"), "{l:?}");
                                if !(pass == GemvTile::W16 && sm80) {
                                    assert!(!l.w16, "{l:?}");
                                }
                            }
                        }
                    }
                }
            }
        }
        // Qwen2.5-7B's units: qkv 288 (rope pairs of 8), gate/up 2,368, down 224, head 9,504.
        let (i8, f16) = (WeightTy::I8, WeightTy::Dense(InType::F16));
        let qwen = |v, n, k| launch_plan(v, i8, GemvTile::W16, true, (1, n, k, 128, 18944));
        assert_eq!(qwen(Variant::NormRope, 4608, 3584).units, 288);
        assert_eq!(qwen(Variant::NormSwiglu, 37888, 3584).units, 2368);
        assert_eq!(qwen(Variant::Plain(GemvTile::W16), 3584, 18944).units, 224);
        let head = qwen(Variant::NormPlain, 152_064, 3584);
        assert_eq!(
            (head.units, head.smem, head.name.as_str()),
            (9504, 8192 + 7168, "dg_i8_wnp_m1")
        );
        // The default (Auto) at Qwen2.5-7B shapes on sm_80+: K4U2 and the CUDA-core norm
        // kernels at 1 and 2 rows, W16 from 3 rows (W8A16 and FP16).
        for (ty, scheme, wn) in [(i8, GpuScheme::W8A16, "i8"), (f16, GpuScheme::Fp16, "f16")] {
            let cases = [
                (1, "xp_k4u2_m1", "nr_m1"),
                (2, "xp_k4u2_m2", "nr_m2"),
                (3, "wxp_m4", "wnr_m4"),
                (4, "wxp_m4", "wnr_m4"),
            ];
            for (m, plain, norm) in cases {
                let pass = GemvTile::Auto.for_pass(scheme, m, true, 3584);
                let dims = |n, k| (m, n, k, 128, 18944);
                let down = launch_plan(Variant::Plain(pass), ty, pass, true, dims(3584, 18944));
                assert_eq!(down.name, format!("dg_{wn}_{plain}"));
                let qkv = launch_plan(Variant::NormRope, ty, pass, true, dims(4608, 3584));
                assert_eq!(qkv.name, format!("dg_{wn}_{norm}"));
            }
        }
    }

    /// The scheme whose layers have weights of `ty`.
    fn scheme_of(ty: WeightTy) -> GpuScheme {
        match ty {
            WeightTy::I8 => GpuScheme::W8A16,
            WeightTy::Dense(InType::F16) => GpuScheme::Fp16,
            WeightTy::Dense(InType::Bf16) => GpuScheme::Bf16,
            WeightTy::Dense(InType::F32) => GpuScheme::Fp32,
        }
    }

    /// A CPU model of the W16 kernel's data flow for one warp: thread (g, t) loads `epv`
    /// elements at chunk·4·epv + t·epv of rows g and g + 8 and of batch row g's activations;
    /// mma j takes elements 4j…4j+3 of each as its A fragment (a0 = row g's 4j, 4j+1; a1 = row
    /// g+8's; a2, a3 the same rows' 4j+2, 4j+3) and B fragment (b0 = 4j, 4j+1; b1 = 4j+2, 4j+3),
    /// placed where PTX's m16n8k16 layout puts them; C = A·B. Every output (row, batch row)
    /// must be the plain dot product (integers, so exact), for both formats' vector widths.
    #[test]
    fn w16_fragment_mapping_computes_the_dot_products() {
        for (epv, mmas) in [(16usize, 4usize), (8, 2)] {
            let chunks = 3usize;
            let kk = chunks * 4 * epv;
            let w = |r: usize, k: usize| ((r * 31 + k * 17) % 255) as i64 - 127;
            let x = |c: usize, k: usize| ((c * 7 + k * 13) % 61) as i64 - 30;
            let mut c = vec![[0i64; 4]; 32];
            for chunk in 0..chunks {
                for j in 0..mmas {
                    let (mut a, mut b) = ([[0i64; 16]; 16], [[0i64; 8]; 16]);
                    for lane in 0..32 {
                        let (g, t) = (lane / 4, lane % 4);
                        let k0 = chunk * 4 * epv + t * epv + 4 * j;
                        for i in 0..2 {
                            a[g][2 * t + i] = w(g, k0 + i);
                            a[g + 8][2 * t + i] = w(g + 8, k0 + i);
                            a[g][2 * t + 8 + i] = w(g, k0 + 2 + i);
                            a[g + 8][2 * t + 8 + i] = w(g + 8, k0 + 2 + i);
                            b[2 * t + i][g] = x(g, k0 + i);
                            b[2 * t + 8 + i][g] = x(g, k0 + 2 + i);
                        }
                    }
                    let dot = |r: usize, n: usize| (0..16).map(|q| a[r][q] * b[q][n]).sum::<i64>();
                    for (lane, cl) in c.iter_mut().enumerate() {
                        let (g, t) = (lane / 4, lane % 4);
                        cl[0] += dot(g, 2 * t);
                        cl[1] += dot(g, 2 * t + 1);
                        cl[2] += dot(g + 8, 2 * t);
                        cl[3] += dot(g + 8, 2 * t + 1);
                    }
                }
            }
            let want = |r: usize, n: usize| (0..kk).map(|k| w(r, k) * x(n, k)).sum::<i64>();
            for (lane, cl) in c.iter().enumerate() {
                let (g, t) = (lane / 4, lane % 4);
                assert_eq!(cl[0], want(g, 2 * t), "epv {epv} lane {lane}");
                assert_eq!(cl[1], want(g, 2 * t + 1));
                assert_eq!(cl[2], want(g + 8, 2 * t));
                assert_eq!(cl[3], want(g + 8, 2 * t + 1));
            }
        }
    }

    #[test]
    fn w16_batched_tiles_cover_5_to_32_rows() {
        let names = crate::cuda::kernels::dgemv_names();
        let (i8, f16) = (WeightTy::I8, WeightTy::Dense(InType::F16));
        for m in 0..40 {
            for ty in tys_all() {
                let t = w16_batched_tile(GemvTile::W16, true, true, ty, m, 3584);
                let want = (5..=32).contains(&m) && (ty == i8 || ty == f16);
                assert_eq!(t.is_some(), want, "{m} {ty:?}");
                if let Some(mt) = t {
                    assert!(mt >= m && mt <= 32 && [8, 16, 32].contains(&mt));
                    let (wn, ..) = format_of(ty);
                    assert!(names.contains(&format!("dg_{wn}_wxp_m{mt}")));
                    assert!(TW_PART_BYTES * mt.div_ceil(8) <= TW_SMEM_MAX);
                }
            }
        }
        assert_eq!(w16_batched_tile(GemvTile::Auto, true, true, i8, 8, 3584), None);
        assert_eq!(w16_batched_tile(GemvTile::W16, false, true, i8, 8, 3584), None);
        assert_eq!(w16_batched_tile(GemvTile::W16, true, false, i8, 8, 3584), None);
        assert_eq!(w16_batched_tile(GemvTile::W16, true, true, i8, 8, 3600), None);
        assert_eq!(w16_batched_tile(GemvTile::W16, true, true, f16, 20, 3616), Some(32));
    }

    /// The default rule's batched passes: W8A16 decode steps of 5–32 rows and FP16 ones of
    /// 5–8 take the batched W16 GEMV (layers and f16 head); FP16 above 8 rows, every pass
    /// above 32 rows and pre-sm_80 devices do not.
    #[test]
    fn the_default_rule_takes_the_batched_w16_gemv_where_it_won() {
        let (i8, f16) = (WeightTy::I8, WeightTy::Dense(InType::F16));
        for m in 5..=40 {
            for sm80 in [true, false] {
                let w8 = GemvTile::Auto.for_pass(GpuScheme::W8A16, m, sm80, 3584);
                let fp = GemvTile::Auto.for_pass(GpuScheme::Fp16, m, sm80, 3584);
                // By default (sm_80+) W8A16 up to 32 rows, FP16 up to 8; forced, both to 32.
                let (w8_on, fp_on) = (sm80 && m <= 32, sm80 && m <= 8);
                let forced = w16_batched_tile(GemvTile::W16, true, sm80, i8, m, 3584);
                assert_eq!(forced.is_some(), sm80 && m <= 32, "forced W16 {m} {sm80}");
                // W8A16: int8 layers and the f16 head.
                for ty in [i8, f16] {
                    let t = w16_batched_tile(w8, true, sm80, ty, m, 3584);
                    assert_eq!(t.is_some(), w8_on, "W8A16 {m} {sm80} {ty:?}");
                }
                let t = w16_batched_tile(fp, true, sm80, f16, m, 3584);
                assert_eq!(t.is_some(), fp_on, "FP16 {m} {sm80}");
                // The decode GEMV off: no W16 either.
                assert_eq!(w16_batched_tile(w8, false, sm80, i8, m, 3584), None);
            }
        }
    }

    fn tys_all() -> [WeightTy; 4] {
        [
            WeightTy::I8,
            WeightTy::Dense(InType::F16),
            WeightTy::Dense(InType::Bf16),
            WeightTy::Dense(InType::F32),
        ]
    }

    #[test]
    fn w16_shared_memory_layout_matches_the_kernel() {
        let define = format!("#define TW_PART_BYTES {TW_PART_BYTES}\n");
        assert!(crate::cuda::kernels::SOURCE.contains(&define), "{define}");
        // 2 buffers × 8 warps × 32 lanes × 4 f32 partials.
        assert_eq!(TW_PART_BYTES, 2 * 8 * 32 * 4 * 4);
        // Qwen2.5-7B and Mistral-7B hidden sizes fit 4 normalized f16 rows besides the partials.
        for h in [3584, 4096] {
            assert!(TW_PART_BYTES + 4 * h * 2 <= TW_SMEM_MAX, "{h}");
        }
    }

    #[test]
    fn every_fused_kernel_name_exists() {
        let names = crate::cuda::kernels::dgemv_names();
        for (wn, ..) in [WeightTy::I8, WeightTy::Dense(InType::F16)].map(format_of) {
            let int8 = wn == "i8";
            for var in GemvTile::ALL
                .iter()
                .flat_map(|t| {
                    let scheme = if int8 { GpuScheme::W8A16 } else { GpuScheme::Fp16 };
                    [(1, true), (1, false), (1 << 20, true), (1 << 20, false)].into_iter().flat_map(
                        move |(h, sm80)| {
                            (1..=4)
                                .map(move |m| t.for_pass(scheme, m, sm80, h).for_format(int8, sm80))
                        },
                    )
                })
                .map(|t| match t {
                    GemvTile::W16 => "wxp".to_string(),
                    t => format!("xp_{}", t.label()),
                })
                .chain(["nr", "ns", "np", "wnr", "wns", "wnp"].map(String::from))
            {
                for mt in [1, 2, 4] {
                    let n = format!("dg_{wn}_{var}_m{mt}");
                    assert!(names.contains(&n), "{n}");
                }
            }
        }
    }
}
