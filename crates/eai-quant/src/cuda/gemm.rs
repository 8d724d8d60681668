//! INT8 GEMM through cuBLASLt, its dequantization epilogue, the weight-only INT8 (W8A16)
//! GEMV/GEMM, and cuBLAS FP16 GEMM as the reference the INT8 paths are measured against.
//!
//! Layout: everything is row-major as in `nn.Linear`: activations `X[M, K]`, weights
//! `W[N, K]`, output `Y[M, N] = X · Wᵀ`. In cuBLAS's column-major terms that is
//! `Yᵀ[N, M] = op(W)[N, K] · Xᵀ[K, M]` with `op = T`: the "TN" form, the only regular (non
//! COL32) layout for which cuBLASLt has IMMA (int8 tensor-core) kernels. cuBLASLt requires the
//! int8 dimensions to be multiples of 4 for those kernels, so `K % 4 == 0` and `N % 4 == 0`
//! are checked up front (M is free).

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Arc;

use cudarc::cublas::sys as blas_sys;
use cudarc::cublaslt::{result as lt, sys as lt_sys};
use cudarc::driver::{CudaSlice, CudaStream, DevicePtr, DevicePtrMut, LaunchConfig, PushKernelArg};
use half::{bf16, f16};

use super::device::{
    CudaDevice, DeviceBuffer, DeviceScalar, Library, MAX_ALGO_RANK, probe_library,
};
use super::error::{CudaError, Result};
use super::gemm_plan::{gemm_plan, row_panels, use_wgmma};

/// Workspace handed to cuBLASLt (its docs recommend 32 MiB on Hopper).
const LT_WORKSPACE_BYTES: usize = 32 << 20;

/// Largest K for which an int8 × int8 dot product cannot overflow i32 (127² · K < 2³¹ for
/// operands in −128..127: 128² · 131 071 < 2³¹).
pub const MAX_K_INT8: usize = 131_071;

/// Problem size of `Y[M, N] = X[M, K] · W[N, K]ᵀ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GemmShape {
    /// Rows of X and Y (tokens).
    pub m: usize,
    /// Rows of W, columns of Y (output features).
    pub n: usize,
    /// Columns of X and W (input features).
    pub k: usize,
}

impl GemmShape {
    /// A shape `M × N × K`.
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        Self { m, n, k }
    }

    /// Multiply-adds × 2 (the usual FLOP/OP count).
    pub fn ops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }

    fn label(&self) -> String {
        format!("M={} N={} K={}", self.m, self.n, self.k)
    }

    /// The buffer lengths of an INT8 GEMM + dequantize (`X` m·k, `W` n·k, row scales m,
    /// column scales n, `Y` m·n, bias n when given), checked against this shape.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_fused_lens(
        &self,
        op: &'static str,
        x: usize,
        w: usize,
        sx: usize,
        sw: usize,
        bias: Option<usize>,
        y: usize,
    ) -> Result<()> {
        let (m, n, k) = (self.m, self.n, self.k);
        self.check_len(op, "X", x, m * k)?;
        self.check_len(op, "W", w, n * k)?;
        self.check_len(op, "row scales", sx, m)?;
        self.check_len(op, "column scales", sw, n)?;
        self.check_len(op, "Y", y, m * n)?;
        if let Some(b) = bias {
            self.check_len(op, "bias", b, n)?;
        }
        Ok(())
    }

    fn check_len(&self, op: &'static str, what: &str, got: usize, want: usize) -> Result<()> {
        if got == want {
            Ok(())
        } else {
            Err(CudaError::shape(
                op,
                format!("{what} holds {got} elements, {} needs {want}", self.label()),
            ))
        }
    }

    fn as_i32(&self, op: &'static str) -> Result<(i32, i32, i32)> {
        let c = |v: usize| {
            i32::try_from(v)
                .map_err(|_| CudaError::shape(op, format!("{} exceeds i32", self.label())))
        };
        Ok((c(self.m)?, c(self.n)?, c(self.k)?))
    }
}

/// Floating-point element types the kernels read and write. Sealed: `f32`, `f16`, `bf16`.
pub trait FloatElem: DeviceScalar {
    /// Suffix of the kernels for this type (`f32`, `f16`, `bf16`).
    const SUFFIX: &'static str;
}
impl FloatElem for f32 {
    const SUFFIX: &'static str = "f32";
}
impl FloatElem for f16 {
    const SUFFIX: &'static str = "f16";
}
impl FloatElem for bf16 {
    const SUFFIX: &'static str = "bf16";
}

/// 16-bit activation types of the W8A16 path. Sealed: `f16`, `bf16`.
pub trait HalfElem: FloatElem {}
impl HalfElem for f16 {}
impl HalfElem for bf16 {}

/// A cached cuBLASLt plan for one shape: descriptors and the heuristic's algorithm.
#[derive(Debug)]
struct LtPlan {
    desc: lt_sys::cublasLtMatmulDesc_t,
    a: lt_sys::cublasLtMatrixLayout_t,
    b: lt_sys::cublasLtMatrixLayout_t,
    c: lt_sys::cublasLtMatrixLayout_t,
    algo: lt_sys::cublasLtMatmulAlgo_t,
}

impl Drop for LtPlan {
    fn drop(&mut self) {
        // SAFETY: each descriptor was created by this plan, is owned by it alone, and is
        // destroyed exactly once here; errors on teardown cannot be reported and are ignored.
        unsafe {
            let _ = lt::destroy_matrix_layout(self.c);
            let _ = lt::destroy_matrix_layout(self.b);
            let _ = lt::destroy_matrix_layout(self.a);
            let _ = lt::destroy_matmul_desc(self.desc);
        }
    }
}

/// cuBLASLt handle, workspace and per-shape plans of one device.
#[derive(Debug)]
pub(crate) struct LtState {
    handle: lt_sys::cublasLtHandle_t,
    workspace: CudaSlice<u8>,
    /// Plans by (M, N, K, heuristic rank).
    plans: HashMap<(usize, usize, usize, u32), LtPlan>,
    /// Int32 accumulator panel of [`CudaDevice::gemm_i8_dequant`], grown on demand and reused
    /// (stream order makes the reuse safe: every use is on the device's stream).
    scratch: Option<CudaSlice<i32>>,
    /// Second stream of the overlapped variant (`Tuning::gemm_overlap`): panel p's dequantize
    /// runs there while panel p + 1's GEMM runs on the device's stream.
    side: Option<Arc<CudaStream>>,
}

impl Drop for LtState {
    fn drop(&mut self) {
        self.plans.clear();
        // SAFETY: the handle was created in `CudaDevice::lt_state` and is destroyed once; all
        // plans that refer to it were dropped just above.
        unsafe {
            let _ = lt::destroy_handle(self.handle);
        }
    }
}

// SAFETY: a cuBLASLt handle is not bound to a thread (only to the device's context, which
// cudarc makes current before each call), and `LtState` is only reached through the device's
// `Mutex`, so no two threads use the handle or its workspace at the same time.
unsafe impl Send for LtState {}

/// cuBLAS handle of one device (FP16 reference GEMM).
#[derive(Debug)]
pub(crate) struct BlasState {
    handle: blas_sys::cublasHandle_t,
}

impl Drop for BlasState {
    fn drop(&mut self) {
        // SAFETY: created once in `CudaDevice::blas_state`, destroyed once here.
        unsafe {
            let _ = cudarc::cublas::result::destroy_handle(self.handle);
        }
    }
}

// SAFETY: as for `LtState`: the handle is only used under the device's `Mutex`.
unsafe impl Send for BlasState {}

fn lt_err(call: &'static str, shape: &GemmShape) -> impl Fn(lt::CublasError) -> CudaError {
    let label = shape.label();
    move |e| CudaError::blas("cublasLt", call, label.clone(), e)
}

impl CudaDevice {
    fn with_lt<R>(&self, f: impl FnOnce(&mut LtState) -> Result<R>) -> Result<R> {
        let mut slot = self.lt.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            probe_library(Library::CublasLt)?;
            self.ctx.bind_to_thread().map_err(self.err("cuCtxSetCurrent"))?;
            let handle = lt::create_handle()
                .map_err(|e| CudaError::blas("cublasLt", "cublasLtCreate", String::new(), e))?;
            let workspace = match self.stream.alloc_zeros::<u8>(LT_WORKSPACE_BYTES) {
                Ok(w) => w,
                Err(e) => {
                    // SAFETY: the handle was just created and nothing else refers to it.
                    unsafe {
                        let _ = lt::destroy_handle(handle);
                    }
                    return Err(CudaError::driver("cuMemAlloc", self.info().ordinal, e));
                }
            };
            *slot = Some(LtState {
                handle,
                workspace,
                plans: HashMap::new(),
                scratch: None,
                side: None,
            });
        }
        match slot.as_mut() {
            Some(state) => f(state),
            None => Err(CudaError::Unsupported {
                op: "int8 gemm",
                detail: "cuBLASLt state missing".into(),
            }),
        }
    }

    fn with_blas<R>(&self, f: impl FnOnce(&BlasState) -> Result<R>) -> Result<R> {
        let mut slot = self.blas.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            probe_library(Library::Cublas)?;
            self.ctx.bind_to_thread().map_err(self.err("cuCtxSetCurrent"))?;
            let handle = cudarc::cublas::result::create_handle()
                .map_err(|e| CudaError::blas("cublas", "cublasCreate", String::new(), e))?;
            let state = BlasState { handle };
            // SAFETY: the handle is valid (just created) and the stream belongs to this
            // device's context and outlives the handle (both live in `self`).
            unsafe {
                cudarc::cublas::result::set_stream(
                    state.handle,
                    self.stream.cu_stream() as blas_sys::cudaStream_t,
                )
            }
            .map_err(|e| CudaError::blas("cublas", "cublasSetStream", String::new(), e))?;
            *slot = Some(state);
        }
        match slot.as_ref() {
            Some(state) => f(state),
            None => Err(CudaError::Unsupported {
                op: "fp16 gemm",
                detail: "cuBLAS state missing".into(),
            }),
        }
    }

    /// Exact integer GEMM `Y[M, N] = X[M, K] · W[N, K]ᵀ` (int8 × int8 → int32) on the tensor
    /// cores through cuBLASLt. The plan (descriptors and the heuristic's algorithm) is built
    /// on the first call for a shape and cached.
    ///
    /// # Errors
    /// [`CudaError::Shape`] when a buffer length does not match `shape`, `K` or `N` is not a
    /// multiple of 4, or `K` > [`MAX_K_INT8`]; [`CudaError::Blas`] when cuBLASLt has no
    /// algorithm or fails.
    pub fn gemm_i8(
        &self,
        x: &DeviceBuffer<i8>,
        w: &DeviceBuffer<i8>,
        y: &mut DeviceBuffer<i32>,
        shape: GemmShape,
    ) -> Result<()> {
        const OP: &str = "int8 gemm";
        shape.check_len(OP, "X", x.len(), shape.m * shape.k)?;
        shape.check_len(OP, "W", w.len(), shape.n * shape.k)?;
        shape.check_len(OP, "Y", y.len(), shape.m * shape.n)?;
        check_int8_dims(OP, &shape)?;
        let stream = self.stream.clone();
        let rank = gemm_plan(shape.m, shape.n, &self.tuning()).1;
        let (xp, _gx) = x.slice.device_ptr(&stream);
        let (wp, _gw) = w.slice.device_ptr(&stream);
        let (yp, _gy) = y.slice.device_ptr_mut(&stream);
        // SAFETY: the three pointers are live allocations of this context (borrowed until the
        // call returns, i.e. until the GEMM is enqueued) whose lengths were checked against
        // `shape` above.
        self.with_lt(|state| unsafe { lt_matmul_i8(state, &stream, xp, wp, yp, shape, rank) })
    }

    /// Dequantization epilogue of the INT8 GEMM, one fused pass over the int32 accumulator:
    /// `y[m, n] = f32(acc[m, n]) · (sx[m] · sw[n]) (+ bias[n])`, every operation correctly
    /// rounded in f32 (no FMA contraction) and rounded once to `O`.
    ///
    /// # Errors
    /// [`CudaError::Shape`] on mismatched lengths or `N % 4 != 0`; [`CudaError::Driver`] if
    /// the launch fails.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_dequant<O: FloatElem>(
        &self,
        acc: &DeviceBuffer<i32>,
        sx: &DeviceBuffer<f32>,
        sw: &DeviceBuffer<f32>,
        bias: Option<&DeviceBuffer<f32>>,
        y: &mut DeviceBuffer<O>,
        m: usize,
        n: usize,
    ) -> Result<()> {
        const OP: &str = "int8 gemm dequant";
        let shape = GemmShape::new(m, n, 0);
        shape.check_len(OP, "acc", acc.len(), m * n)?;
        shape.check_len(OP, "row scales", sx.len(), m)?;
        shape.check_len(OP, "column scales", sw.len(), n)?;
        shape.check_len(OP, "Y", y.len(), m * n)?;
        if let Some(b) = bias {
            shape.check_len(OP, "bias", b.len(), n)?;
        }
        if !n.is_multiple_of(4) {
            return Err(CudaError::shape(OP, format!("N = {n} is not a multiple of 4")));
        }
        let stream = &self.stream;
        let (ap, _ga) = acc.slice.device_ptr(stream);
        let (sxp, _gsx) = sx.slice.device_ptr(stream);
        let (swp, _gsw) = sw.slice.device_ptr(stream);
        let bias_g = bias.map(|b| b.slice.device_ptr(stream));
        let bp = bias_g.as_ref().map_or(0, |(p, _)| *p);
        let (yp, _gy) = y.slice.device_ptr_mut(stream);
        // SAFETY: every pointer is a live allocation of this context, borrowed until the launch
        // is enqueued, whose length was checked against M and N above (bias may be null).
        unsafe { self.launch_gemm_dequant::<O>(stream, ap, sxp, swp, bp, yp, m, n) }
    }

    /// Enqueues the dequantization kernel on raw device pointers.
    ///
    /// # Safety
    /// `acc` holds `m·n` i32, `sx` `m` f32, `sw` `n` f32, `bias` `n` f32 or is 0, `y` `m·n`
    /// elements of `O`; all are device memory of this context that stays allocated until the
    /// kernel has run (stream order), 16-byte aligned where `acc`, `sw`, `bias` and `y` start;
    /// `n % 4 == 0`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn launch_gemm_dequant<O: FloatElem>(
        &self,
        stream: &CudaStream,
        acc: u64,
        sx: u64,
        sw: u64,
        bias: u64,
        y: u64,
        m: usize,
        n: usize,
    ) -> Result<()> {
        const OP: &str = "int8 gemm dequant";
        let (m32, n32, _) = GemmShape::new(m, n, 0).as_i32(OP)?;
        let (m32, n32) = (m32 as u32, n32 as u32);
        // 8 outputs per step when N % 8 == 0 (16-byte stores of 16-bit outputs), else 4
        let wide = n.is_multiple_of(8);
        let name = match (O::SUFFIX, wide) {
            ("f32", true) => "gemm_dequant8_f32",
            ("f16", true) => "gemm_dequant8_f16",
            (_, true) => "gemm_dequant8_bf16",
            ("f32", false) => "gemm_dequant_f32",
            ("f16", false) => "gemm_dequant_f16",
            _ => "gemm_dequant_bf16",
        };
        let kernels = self.kernels()?;
        let func = kernels.get(name)?;
        let items = (m * n / if wide { 8 } else { 4 }) as u64;
        let cfg = grid_stride_config(items, self.info().multiprocessors);
        // row = e / N as (umulhi(nm, e) + e) >> ns for e < 2^32 (the kernel checks M·N)
        let (nm, ns) = super::quant::plan::div_magic(n as u64).unwrap_or((0, 0));
        let mut launch = stream.launch_builder(func);
        launch.arg(&acc).arg(&sx).arg(&sw).arg(&bias).arg(&y).arg(&m32).arg(&n32);
        if wide {
            launch.arg(&nm).arg(&ns);
        }
        // SAFETY: the kernel's signature is (const int*, const float*, const float*, const
        // float*, O*, u32, u32) (+ u32 nm, u32 ns for the 8-wide kernel, whose division magic
        // of N is exact for all u32 dividends), matching the arguments pushed above (pointers
        // as 64-bit device addresses; a null bias is 0, which the kernel checks); the caller
        // guarantees the lengths and alignment, so the 16-byte vector accesses stay in bounds,
        // and the grid-stride loop covers exactly M·N/4 quads.
        unsafe { launch.launch(cfg) }.map_err(self.err("cuLaunchKernel(gemm_dequant)"))?;
        Ok(())
    }

    /// INT8 GEMM with its dequantization: `y[m, n] = f32(Σₖ x[m, k]·w[n, k]) · (sx[m] · sw[n])
    /// (+ bias[n])`, bit-identical to [`gemm_i8`](Self::gemm_i8) followed by
    /// [`gemm_dequant`](Self::gemm_dequant) (and so to the CPU reference), without a caller-side
    /// int32 matrix. Panel budget and cuBLASLt candidate are the measured best for the output size
    /// ([`gemm_plan`]) unless [`Tuning`](super::Tuning) forces them. With a panel budget the rows
    /// are cut into panels (see [`row_panels`]): each panel's GEMM writes a reused int32 scratch
    /// buffer of at most that size and its dequantize pass reads it back from L2, so the
    /// accumulator never makes the round trip to memory that dominates the separate pass
    /// (64 MiB written and read back at 4096³). Where [`use_wgmma`] says so (by default: a
    /// compute capability 9.0 device and at least 3/8 of a 128 × 256 output tile per
    /// multiprocessor),
    /// shapes our Hopper kernel takes go to
    /// [`gemm_i8_dequant_wgmma`](Self::gemm_i8_dequant_wgmma) instead (same bits, no int32
    /// matrix at all); other devices and shapes stay on cuBLASLt.
    ///
    /// # Errors
    /// As [`gemm_i8`](Self::gemm_i8) and [`gemm_dequant`](Self::gemm_dequant);
    /// [`CudaError::Driver`] when the scratch buffer cannot be allocated.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_i8_dequant<O: FloatElem>(
        &self,
        x: &DeviceBuffer<i8>,
        w: &DeviceBuffer<i8>,
        sx: &DeviceBuffer<f32>,
        sw: &DeviceBuffer<f32>,
        bias: Option<&DeviceBuffer<f32>>,
        y: &mut DeviceBuffer<O>,
        shape: GemmShape,
    ) -> Result<()> {
        const OP: &str = "int8 gemm + dequant";
        let (m, n, k) = (shape.m, shape.n, shape.k);
        shape.check_fused_lens(
            OP,
            x.len(),
            w.len(),
            sx.len(),
            sw.len(),
            bias.map(|b| b.len()),
            y.len(),
        )?;
        check_int8_dims(OP, &shape)?;
        let tuning = self.tuning();
        if use_wgmma(&tuning, &shape, self.info().multiprocessors) && self.wgmma_applies(&shape) {
            return self.gemm_i8_dequant_wgmma(x, w, sx, sw, bias, y, shape);
        }
        let (panel_mib, rank) = gemm_plan(m, n, &tuning);
        let panels = row_panels(m, n, panel_mib);
        let panel_rows = panels.iter().map(|p| p.1).max().unwrap_or(0);
        // the overlapped variant double-buffers the scratch (GEMM p + 1 writes one half while
        // the dequantize of panel p reads the other)
        let overlap = tuning.gemm_overlap && panels.len() > 1;
        let half_len = panel_rows * n;
        let scratch_len = if overlap { 2 * half_len } else { half_len };
        let stream = self.stream.clone();
        let (xp, _gx) = x.slice.device_ptr(&stream);
        let (wp, _gw) = w.slice.device_ptr(&stream);
        let (sxp, _gsx) = sx.slice.device_ptr(&stream);
        let (swp, _gsw) = sw.slice.device_ptr(&stream);
        let bias_g = bias.map(|b| b.slice.device_ptr(&stream));
        let bp = bias_g.as_ref().map_or(0, |(p, _)| *p);
        let (yp, _gy) = y.slice.device_ptr_mut(&stream);
        let out_size = std::mem::size_of::<O>() as u64;
        self.with_lt(|state| {
            let mut scratch = match state.scratch.take() {
                Some(s) if s.len() >= scratch_len => s,
                // the old one (if any) is dropped first: both at once may not fit
                _ => self
                    .stream
                    .alloc_zeros::<i32>(scratch_len)
                    .map_err(|e| CudaError::driver("cuMemAlloc", self.info().ordinal, e))?,
            };
            let side = if overlap {
                match &state.side {
                    Some(s) => Some(s.clone()),
                    None => {
                        let s = stream.fork().map_err(self.err("cuStreamCreate"))?;
                        state.side = Some(s.clone());
                        Some(s)
                    }
                }
            } else {
                None
            };
            let mut run = || -> Result<()> {
                let (acc0, _gacc) = scratch.device_ptr_mut(&stream);
                // dequantize stream: the side stream (after everything enqueued so far on the
                // device's stream) or the device's stream itself
                let dq: &CudaStream = match &side {
                    Some(s) => {
                        s.join(&stream).map_err(self.err("cuStreamWaitEvent"))?;
                        s
                    }
                    None => &stream,
                };
                let no_timing = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DISABLE_TIMING);
                let mut done: Vec<cudarc::driver::CudaEvent> = Vec::with_capacity(panels.len());
                for (p, &(row0, rows)) in panels.iter().enumerate() {
                    let accp =
                        if overlap && p % 2 == 1 { acc0 + 4 * half_len as u64 } else { acc0 };
                    if overlap && p >= 2 {
                        // this half was last read by panel p − 2's dequantize
                        stream.wait(&done[p - 2]).map_err(self.err("cuStreamWaitEvent"))?;
                    }
                    let r0 = row0 as u64;
                    let part = GemmShape::new(rows, n, k);
                    // SAFETY: rows row0..row0+rows of X start r0·K bytes in (a multiple of 256
                    // bytes unless row0 = 0: panels are multiples of 64 rows and K % 4 == 0, so
                    // cuBLASLt's default alignment assumption holds); the scratch holds at least
                    // rows·N i32; all buffers are borrowed until this function returns.
                    unsafe {
                        lt_matmul_i8(state, &stream, xp + r0 * k as u64, wp, accp, part, rank)?;
                    }
                    if overlap {
                        let ev =
                            stream.record_event(no_timing).map_err(self.err("cuEventRecord"))?;
                        dq.wait(&ev).map_err(self.err("cuStreamWaitEvent"))?;
                    }
                    // SAFETY: the same panel of sx and of Y (r0·N·size_of::<O>() bytes in: 16-byte
                    // aligned since N % 4 == 0 and r0 % 64 == 0), the full sw and bias; the
                    // dequantize runs after this panel's GEMM (same stream, or the side stream
                    // waiting on the event just recorded) and before anything overwrites its
                    // scratch half (same stream, or the wait on `done[p]` two panels later).
                    unsafe {
                        self.launch_gemm_dequant::<O>(
                            dq,
                            accp,
                            sxp + r0 * 4,
                            swp,
                            bp,
                            yp + r0 * n as u64 * out_size,
                            rows,
                            n,
                        )?;
                    }
                    if overlap {
                        done.push(dq.record_event(no_timing).map_err(self.err("cuEventRecord"))?);
                    }
                }
                if side.is_some() {
                    // the caller's later work on the device's stream sees Y complete
                    stream.join(dq).map_err(self.err("cuStreamWaitEvent"))?;
                }
                Ok(())
            };
            let res = run();
            state.scratch = Some(scratch);
            res
        })
    }

    /// Weight-only INT8 linear layer for decode (W8A16): `y[m, n] = sw[n] · Σₖ f32(w[n, k]) ·
    /// x[m, k] (+ bias[n])` with f16/bf16 activations and output and f32 accumulation; the
    /// weights are dequantized on the fly in registers, so the kernel streams 1 byte per
    /// weight. Best for small M (decode); for M ≳ 64 use the INT8 GEMM.
    ///
    /// # Errors
    /// [`CudaError::Shape`] on mismatched lengths; [`CudaError::Driver`] on launch failure.
    pub fn w8a16<T: HalfElem>(
        &self,
        w: &DeviceBuffer<i8>,
        sw: &DeviceBuffer<f32>,
        x: &DeviceBuffer<T>,
        bias: Option<&DeviceBuffer<f32>>,
        y: &mut DeviceBuffer<T>,
        shape: GemmShape,
    ) -> Result<()> {
        const OP: &str = "w8a16 gemv";
        shape.check_len(OP, "W", w.len(), shape.n * shape.k)?;
        shape.check_len(OP, "weight scales", sw.len(), shape.n)?;
        shape.check_len(OP, "X", x.len(), shape.m * shape.k)?;
        shape.check_len(OP, "Y", y.len(), shape.m * shape.n)?;
        if let Some(b) = bias {
            shape.check_len(OP, "bias", b.len(), shape.n)?;
        }
        if shape.m == 0 || shape.n == 0 {
            return Ok(());
        }
        let (m32, n32, k32) = shape.as_i32(OP)?;
        let (m32, n32, k32) = (m32 as u32, n32 as u32, k32 as u32);
        let mt: u32 = match shape.m {
            1 => 1,
            2 => 2,
            3 | 4 => 4,
            _ => 8,
        };
        let tuning = self.tuning();
        let (rows, unroll) =
            if mt == 1 { (tuning.w8a16_rows, tuning.w8a16_unroll) } else { (1, 4) };
        let name: &'static str = match (T::SUFFIX, mt, rows, unroll) {
            ("f16", 1, 1, 2) => "w8a16_f16_m1_r1u2",
            ("f16", 1, 2, 1) => "w8a16_f16_m1_r2u1",
            ("f16", 1, 4, 1) => "w8a16_f16_m1_r4u1",
            ("f16", 1, 1, 8) => "w8a16_f16_m1_r1u8",
            ("f16", 1, 2, 2) => "w8a16_f16_m1_r2u2",
            ("f16", 1, 2, 4) => "w8a16_f16_m1_r2u4",
            ("f16", 1, 2, 8) => "w8a16_f16_m1_r2u8",
            ("f16", 1, 4, 2) => "w8a16_f16_m1_r4u2",
            ("f16", 1, 4, 4) => "w8a16_f16_m1_r4u4",
            ("bf16", 1, 1, 2) => "w8a16_bf16_m1_r1u2",
            ("bf16", 1, 2, 1) => "w8a16_bf16_m1_r2u1",
            ("bf16", 1, 4, 1) => "w8a16_bf16_m1_r4u1",
            ("bf16", 1, 1, 8) => "w8a16_bf16_m1_r1u8",
            ("bf16", 1, 2, 2) => "w8a16_bf16_m1_r2u2",
            ("bf16", 1, 2, 4) => "w8a16_bf16_m1_r2u4",
            ("bf16", 1, 2, 8) => "w8a16_bf16_m1_r2u8",
            ("bf16", 1, 4, 2) => "w8a16_bf16_m1_r4u2",
            ("bf16", 1, 4, 4) => "w8a16_bf16_m1_r4u4",
            ("f16", 1, ..) => "w8a16_f16_m1",
            ("f16", 2, ..) => "w8a16_f16_m2",
            ("f16", 4, ..) => "w8a16_f16_m4",
            ("f16", ..) => "w8a16_f16_m8",
            (_, 1, ..) => "w8a16_bf16_m1",
            (_, 2, ..) => "w8a16_bf16_m2",
            (_, 4, ..) => "w8a16_bf16_m4",
            _ => "w8a16_bf16_m8",
        };
        // (1, 4) for M = 1 is the plain `_m1` kernel
        let rows = if name.contains("_r") { rows } else { 1 };
        let kernels = self.kernels()?;
        let func = kernels.get(name)?;
        // `warps` warps per block, `rows` output rows per warp (kernels/gemm.cu)
        let warps = tuning.w8a16_warps;
        let cfg = LaunchConfig {
            grid_dim: (n32.div_ceil(warps * rows), m32.div_ceil(mt), 1),
            block_dim: (warps * 32, 1, 1),
            shared_mem_bytes: 0,
        };
        let null: u64 = 0;
        let mut launch = self.stream.launch_builder(func);
        launch.arg(&w.slice).arg(&sw.slice).arg(&x.slice);
        match bias {
            Some(b) => launch.arg(&b.slice),
            None => launch.arg(&null),
        };
        launch.arg(&mut y.slice).arg(&m32).arg(&n32).arg(&k32);
        // SAFETY: the kernel's signature is (const i8*, const float*, const T*, const float*,
        // T*, u32 M, u32 N, u32 K), matching the pushed arguments (null bias as a 64-bit zero);
        // all lengths were checked against the shape; the grid covers N rows in warps of `rows`
        // rows each (the kernel's R) and M in tiles of `mt`, and the kernel bounds-checks n < N, m < M, k < K.
        // Vector loads are used only when K % 16 == 0, so every row start is 16-byte aligned.
        unsafe { launch.launch(cfg) }.map_err(self.err("cuLaunchKernel(w8a16)"))?;
        Ok(())
    }

    /// Reference FP16 GEMM `Y[M, N] = X[M, K] · W[N, K]ᵀ` through cuBLAS (`cublasGemmEx`, f16
    /// inputs and output, f32 accumulation, tensor cores): the baseline the INT8 paths are
    /// measured against. For M = 1 cuBLAS dispatches its GEMV kernels.
    ///
    /// # Errors
    /// [`CudaError::LibraryMissing`] without cuBLAS; [`CudaError::Shape`]; [`CudaError::Blas`].
    pub fn gemm_f16(
        &self,
        x: &DeviceBuffer<f16>,
        w: &DeviceBuffer<f16>,
        y: &mut DeviceBuffer<f16>,
        shape: GemmShape,
    ) -> Result<()> {
        const OP: &str = "fp16 gemm";
        shape.check_len(OP, "X", x.len(), shape.m * shape.k)?;
        shape.check_len(OP, "W", w.len(), shape.n * shape.k)?;
        shape.check_len(OP, "Y", y.len(), shape.m * shape.n)?;
        let (m, n, k) = shape.as_i32(OP)?;
        let stream = self.stream.clone();
        self.with_blas(|state| {
            let alpha: f32 = 1.0;
            let beta: f32 = 0.0;
            let (xp, _gx) = x.slice.device_ptr(&stream);
            let (wp, _gw) = w.slice.device_ptr(&stream);
            let (yp, _gy) = y.slice.device_ptr_mut(&stream);
            // SAFETY: column-major view as in the module docs: A = W (K×N, lda K, op T),
            // B = X (K×M, ldb K), C = Y (N×M, ldc N); lengths were checked; the pointers are
            // live device allocations of this context; alpha/beta are host f32 as required by
            // CUBLAS_COMPUTE_32F; the handle's stream is this device's stream.
            unsafe {
                cudarc::cublas::result::gemm_ex(
                    state.handle,
                    blas_sys::cublasOperation_t::CUBLAS_OP_T,
                    blas_sys::cublasOperation_t::CUBLAS_OP_N,
                    n,
                    m,
                    k,
                    (&alpha as *const f32).cast::<c_void>(),
                    wp as *const c_void,
                    blas_sys::cudaDataType::CUDA_R_16F,
                    k,
                    xp as *const c_void,
                    blas_sys::cudaDataType::CUDA_R_16F,
                    k,
                    (&beta as *const f32).cast::<c_void>(),
                    yp as *mut c_void,
                    blas_sys::cudaDataType::CUDA_R_16F,
                    n,
                    blas_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                    blas_sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT_TENSOR_OP,
                )
            }
            .map_err(|e| CudaError::blas("cublas", "cublasGemmEx", shape.label(), e))
        })
    }
}

/// Enqueues the cuBLASLt int8 GEMM `Y = X · Wᵀ` of `shape` (plan built and cached on first use
/// for this shape and heuristic rank).
///
/// # Safety
/// `x` (M·K i8), `w` (N·K i8) and `y` (M·N i32) are device memory of the state's context that
/// stays allocated until the GEMM has run (stream order), `x` and `w` 256-byte aligned or the
/// start of an allocation plus a multiple of 256 bytes; `shape` passed [`check_int8_dims`].
unsafe fn lt_matmul_i8(
    state: &mut LtState,
    stream: &CudaStream,
    x: u64,
    w: u64,
    y: u64,
    shape: GemmShape,
    rank: u32,
) -> Result<()> {
    const OP: &str = "int8 gemm";
    let (m, n, k) = shape.as_i32(OP)?;
    let key = (shape.m, shape.n, shape.k, rank);
    if !state.plans.contains_key(&key) {
        let plan = build_int8_plan(state, &shape, (m, n, k), rank)?;
        state.plans.insert(key, plan);
    }
    let Some(plan) = state.plans.get(&key) else {
        return Err(CudaError::Unsupported { op: OP, detail: "plan cache lost an entry".into() });
    };
    let alpha: i32 = 1;
    let beta: i32 = 0;
    let (wsp, _gws) = state.workspace.device_ptr_mut(stream);
    // SAFETY: all descriptors of `plan` are live and describe exactly these buffers (A = W as
    // K×N col-major ld K, B = X as K×M ld K, C = D = Y as N×M ld N; the caller guarantees the
    // lengths); alpha/beta are host i32 matching the CUDA_R_32I scale type; the workspace is
    // LT_WORKSPACE_BYTES long, and the stream belongs to this context. C aliases D, which
    // cuBLASLt allows with beta = 0.
    unsafe {
        lt::matmul(
            state.handle,
            plan.desc,
            (&alpha as *const i32).cast::<c_void>(),
            (&beta as *const i32).cast::<c_void>(),
            w as *const c_void,
            plan.a,
            x as *const c_void,
            plan.b,
            y as *const c_void,
            plan.c,
            y as *mut c_void,
            plan.c,
            &plan.algo,
            wsp as *mut c_void,
            LT_WORKSPACE_BYTES,
            stream.cu_stream() as lt_sys::cudaStream_t,
        )
    }
    .map_err(lt_err("cublasLtMatmul", &shape))
}

/// cuBLASLt's int8 tensor-core kernels need K and N to be non-zero multiples of 4, and K is
/// bounded by the int32 accumulator.
fn check_int8_dims(op: &'static str, shape: &GemmShape) -> Result<()> {
    if !shape.k.is_multiple_of(4) || !shape.n.is_multiple_of(4) || shape.m == 0 || shape.k == 0 {
        return Err(CudaError::shape(
            op,
            format!(
                "{}: cuBLASLt's int8 tensor-core kernels need K and N to be non-zero multiples of 4 (and M > 0)",
                shape.label()
            ),
        ));
    }
    if shape.k > MAX_K_INT8 {
        return Err(CudaError::shape(
            op,
            format!("K = {} could overflow the int32 accumulator (limit {MAX_K_INT8})", shape.k),
        ));
    }
    Ok(())
}

/// Grid for a grid-stride loop over `items` work items: enough 256-thread blocks to fill the
/// device several times over, never more than the work needs.
pub(crate) fn grid_stride_config(items: u64, sms: u32) -> LaunchConfig {
    const THREADS: u32 = 256;
    let max_blocks = u64::from(sms.max(1)) * 16;
    let blocks = items.div_ceil(u64::from(THREADS)).clamp(1, max_blocks);
    LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn build_int8_plan(
    state: &LtState,
    shape: &GemmShape,
    (m, n, k): (i32, i32, i32),
    rank: u32,
) -> Result<LtPlan> {
    let e = |call| lt_err(call, shape);
    let i8t = lt_sys::cudaDataType::CUDA_R_8I;
    let i32t = lt_sys::cudaDataType::CUDA_R_32I;
    let desc = lt::create_matmul_desc(lt_sys::cublasComputeType_t::CUBLAS_COMPUTE_32I, i32t)
        .map_err(e("cublasLtMatmulDescCreate"))?;
    let mut plan = LtPlan {
        desc,
        a: std::ptr::null_mut(),
        b: std::ptr::null_mut(),
        c: std::ptr::null_mut(),
        // SAFETY: cublasLtMatmulAlgo_t is a plain C struct of u64 words; all-zero is a valid
        // (if meaningless) value that is overwritten by the heuristic below before any use.
        algo: unsafe { std::mem::zeroed() },
    };
    let trans_a = blas_sys::cublasOperation_t::CUBLAS_OP_T as i32;
    // SAFETY: `plan.desc` is live; the attribute TRANSA takes an int32 cublasOperation_t and
    // we pass a pointer to one with its exact size.
    unsafe {
        lt::set_matmul_desc_attribute(
            plan.desc,
            lt_sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSA,
            (&trans_a as *const i32).cast::<c_void>(),
            std::mem::size_of::<i32>(),
        )
    }
    .map_err(e("cublasLtMatmulDescSetAttribute"))?;
    let (m64, n64, k64) = (m as u64, n as u64, k as u64);
    plan.a = lt::create_matrix_layout(i8t, k64, n64, i64::from(k))
        .map_err(e("cublasLtMatrixLayoutCreate"))?;
    plan.b = lt::create_matrix_layout(i8t, k64, m64, i64::from(k))
        .map_err(e("cublasLtMatrixLayoutCreate"))?;
    plan.c = lt::create_matrix_layout(i32t, n64, m64, i64::from(n))
        .map_err(e("cublasLtMatrixLayoutCreate"))?;
    let pref = lt::create_matmul_pref().map_err(e("cublasLtMatmulPreferenceCreate"))?;
    let ws = LT_WORKSPACE_BYTES as u64;
    // SAFETY: `pref` is live; MAX_WORKSPACE_BYTES takes a u64 and we pass one by pointer.
    let set = unsafe {
        lt::set_matmul_pref_attribute(
            pref,
            lt_sys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
            (&ws as *const u64).cast::<c_void>(),
            std::mem::size_of::<u64>(),
        )
    };
    const WANT: usize = MAX_ALGO_RANK as usize + 1;
    // SAFETY: cublasLtMatmulHeuristicResult_t is a plain C struct; all-zero is a valid value,
    // and cuBLASLt overwrites the first `found` entries.
    let mut results: [lt_sys::cublasLtMatmulHeuristicResult_t; WANT] =
        unsafe { std::mem::zeroed() };
    let mut found: i32 = 0;
    // SAFETY: every descriptor passed is live and describes the operands of this plan; the
    // result array holds WANT entries, the number requested.
    let heuristic = set.and_then(|()| unsafe {
        lt_sys::cublasLtMatmulAlgoGetHeuristic(
            state.handle,
            plan.desc,
            plan.a,
            plan.b,
            plan.c,
            plan.c,
            pref,
            WANT as i32,
            results.as_mut_ptr(),
            &mut found,
        )
        .result()
    });
    // SAFETY: `pref` was created above and is not used after this point.
    unsafe {
        let _ = lt::destroy_matmul_pref(pref);
    }
    heuristic.map_err(e("cublasLtMatmulAlgoGetHeuristic"))?;
    if found < 1 {
        return Err(e("cublasLtMatmulAlgoGetHeuristic")(lt::CublasError(
            lt_sys::cublasStatus_t::CUBLAS_STATUS_NOT_SUPPORTED,
        )));
    }
    let pick = (rank as usize).min(found as usize - 1);
    plan.algo = results[pick].algo;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_bounded_and_nonzero() {
        let c = grid_stride_config(0, 132);
        assert_eq!(c.grid_dim.0, 1);
        let c = grid_stride_config(10, 132);
        assert_eq!(c.grid_dim.0, 1);
        let c = grid_stride_config(1 << 40, 132);
        assert_eq!(c.grid_dim.0, 132 * 16);
    }

    #[test]
    fn ops_count() {
        assert_eq!(GemmShape::new(2, 3, 4).ops(), 48.0);
    }
}
