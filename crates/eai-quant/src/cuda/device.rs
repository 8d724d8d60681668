//! Opening a device: probing the libraries first, then the driver, then the device itself.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cudarc::driver::sys::CUdevice_attribute as Attr;
use cudarc::driver::{CudaContext, CudaEvent, CudaFunction, CudaModule, CudaSlice, CudaStream};

use super::error::{CudaError, Result};
use super::kernels;

/// The oldest compute capability the kernels and the INT8 tensor-core GEMM support (Ampere:
/// native bf16 conversion instructions, IMMA through cuBLASLt with regular row/column layouts).
pub const MIN_COMPUTE_CAPABILITY: (u32, u32) = (8, 0);

/// Which shared libraries are needed, and for what. Probed before any cudarc call, because
/// cudarc panics when a dynamically loaded library is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Library {
    Driver,
    Nvrtc,
    CublasLt,
    Cublas,
}

impl Library {
    fn name(self) -> &'static str {
        match self {
            Library::Driver => "cuda",
            Library::Nvrtc => "nvrtc",
            Library::CublasLt => "cublasLt",
            Library::Cublas => "cublas",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Library::Driver => "the NVIDIA driver library libcuda; without it there is no GPU",
            Library::Nvrtc => "NVRTC compiles the quantization kernels at run time",
            Library::CublasLt => "cuBLASLt runs the INT8 GEMM",
            Library::Cublas => "cuBLAS runs the FP16 reference GEMM",
        }
    }

    fn present(self) -> bool {
        // SAFETY: each `is_culib_present` only tries `dlopen` on candidate file names and drops
        // the handle again; it runs no code of the library beyond its initialisers, touches no
        // cudarc global state, and is safe to call from any thread.
        unsafe {
            match self {
                Library::Driver => cudarc::driver::sys::is_culib_present(),
                Library::Nvrtc => cudarc::nvrtc::sys::is_culib_present(),
                Library::CublasLt => cudarc::cublaslt::sys::is_culib_present(),
                Library::Cublas => cudarc::cublas::sys::is_culib_present(),
            }
        }
    }
}

/// Returns an error naming `lib` unless it can be loaded.
pub(crate) fn probe_library(lib: Library) -> Result<()> {
    if lib.present() {
        Ok(())
    } else {
        Err(CudaError::LibraryMissing { library: lib.name(), hint: lib.hint() })
    }
}

/// What the driver says about an opened device.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceInfo {
    /// Device ordinal.
    pub ordinal: usize,
    /// Marketing name, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// Compute capability `(major, minor)`, e.g. `(9, 0)` on Hopper.
    pub compute_capability: (u32, u32),
    /// Global memory in bytes.
    pub total_memory_bytes: u64,
    /// Number of streaming multiprocessors.
    pub multiprocessors: u32,
    /// L2 cache size in bytes.
    pub l2_cache_bytes: u64,
    /// Largest shared memory one block may use after opting in (bytes).
    pub shared_memory_per_block_optin_bytes: u64,
}

/// Element types that can live in a [`DeviceBuffer`]. Sealed: implemented for `i8`, `u8`,
/// `i32`, `u32`, `u64`, `f32`, [`half::f16`] and [`half::bf16`].
pub trait DeviceScalar:
    cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits + Copy + Default + sealed::Sealed
{
}
mod sealed {
    pub trait Sealed {}
}
macro_rules! device_scalar {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl DeviceScalar for $t {}
    )*};
}
device_scalar!(i8, u8, i32, u32, u64, f32, half::f16, half::bf16);

/// An array of `T` in the memory of one [`CudaDevice`].
#[derive(Debug)]
pub struct DeviceBuffer<T> {
    pub(crate) slice: CudaSlice<T>,
}

impl<T> DeviceBuffer<T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.slice.len()
    }

    /// Whether the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.slice.len() == 0
    }

    /// Size in bytes.
    pub fn num_bytes(&self) -> usize {
        self.slice.len() * std::mem::size_of::<T>()
    }

    /// The underlying cudarc slice, for interoperation with other cudarc code (use the
    /// re-exported [`super::cudarc`] to match versions).
    pub fn as_cudarc(&self) -> &CudaSlice<T> {
        &self.slice
    }
}

/// The kernels of the embedded module, loaded into one context.
#[derive(Debug)]
pub(crate) struct Kernels {
    _module: Arc<CudaModule>,
    functions: std::collections::HashMap<&'static str, CudaFunction>,
    /// Co-resident clusters of the wgmma v2, v3 and v4 kernels (queried once on first launch).
    pub(crate) wgmma_clusters: [std::sync::OnceLock<u32>; 3],
}

impl Kernels {
    pub(crate) fn get(&self, name: &'static str) -> Result<&CudaFunction> {
        self.functions.get(name).ok_or(CudaError::Unsupported {
            op: "kernel lookup",
            detail: format!("kernel `{name}` is not in the compiled module"),
        })
    }
}

/// One opened CUDA device with one stream; every operation of this backend runs on that
/// stream, in submission order.
///
/// Opening checks, in this order and without panicking, that the driver library loads, that
/// the driver reports a device with this ordinal, that its compute capability is at least
/// [`MIN_COMPUTE_CAPABILITY`], and that NVRTC and cuBLASLt load. Kernels are compiled on first
/// use (once per process, see the `kernels` module) and loaded once per device.
///
/// ```no_run
/// # #[cfg(feature = "cuda")] {
/// use eai_quant::cuda::CudaDevice;
/// match CudaDevice::open(0) {
///     Ok(dev) => println!("{}: sm_{}{}", dev.info().name, dev.info().compute_capability.0,
///                         dev.info().compute_capability.1),
///     Err(e) => eprintln!("no CUDA: {e}"),
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct CudaDevice {
    info: DeviceInfo,
    pub(crate) ctx: Arc<CudaContext>,
    pub(crate) stream: Arc<CudaStream>,
    kernels: Mutex<Option<Arc<Kernels>>>,
    /// The Hopper-only wgmma module (`compute_90a`), loaded on first use.
    wgmma: Mutex<Option<Arc<Kernels>>>,
    pub(crate) tuning: Mutex<Tuning>,
    pub(crate) lt: Mutex<Option<super::gemm::LtState>>,
    pub(crate) blas: Mutex<Option<super::gemm::BlasState>>,
}

impl CudaDevice {
    /// Number of CUDA devices the driver reports (0 when there is a driver but no GPU).
    ///
    /// # Errors
    /// [`CudaError::LibraryMissing`] when the driver library cannot be loaded, or
    /// [`CudaError::Driver`] when the driver fails to initialise.
    pub fn count() -> Result<usize> {
        probe_library(Library::Driver)?;
        cudarc::driver::result::init().map_err(|e| CudaError::driver("cuInit", 0, e))?;
        let n = cudarc::driver::result::device::get_count()
            .map_err(|e| CudaError::driver("cuDeviceGetCount", 0, e))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Opens device `ordinal`.
    ///
    /// # Errors
    /// [`CudaError::LibraryMissing`] (no driver, NVRTC or cuBLASLt), [`CudaError::NoDevice`],
    /// [`CudaError::NoSuchDevice`], [`CudaError::UnsupportedComputeCapability`], or
    /// [`CudaError::Driver`] when the driver refuses a call.
    pub fn open(ordinal: usize) -> Result<Self> {
        let count = Self::count()?;
        if count == 0 {
            return Err(CudaError::NoDevice);
        }
        if ordinal >= count {
            return Err(CudaError::NoSuchDevice { ordinal, count });
        }
        let ctx =
            CudaContext::new(ordinal).map_err(|e| CudaError::driver("cuCtxCreate", ordinal, e))?;
        let name = ctx.name().map_err(|e| CudaError::driver("cuDeviceGetName", ordinal, e))?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| CudaError::driver("cuDeviceGetAttribute", ordinal, e))?;
        let (major, minor) = (u32::try_from(major).unwrap_or(0), u32::try_from(minor).unwrap_or(0));
        if (major, minor) < MIN_COMPUTE_CAPABILITY {
            return Err(CudaError::UnsupportedComputeCapability {
                ordinal,
                name,
                major,
                minor,
                min_major: MIN_COMPUTE_CAPABILITY.0,
                min_minor: MIN_COMPUTE_CAPABILITY.1,
            });
        }
        probe_library(Library::Nvrtc)?;
        probe_library(Library::CublasLt)?;
        let attr = |a: Attr| {
            ctx.attribute(a).map_err(|e| CudaError::driver("cuDeviceGetAttribute", ordinal, e))
        };
        let multiprocessors =
            u32::try_from(attr(Attr::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?).unwrap_or(0);
        let shared_memory_per_block_optin_bytes =
            u64::try_from(attr(Attr::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)?)
                .unwrap_or(48 << 10);
        let l2_cache_bytes =
            u64::try_from(attr(Attr::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)?).unwrap_or(0);
        let total_memory_bytes =
            ctx.total_mem().map_err(|e| CudaError::driver("cuDeviceTotalMem", ordinal, e))? as u64;
        // SAFETY: this device only ever uses the context's default stream (`stream` below) for
        // every allocation, copy, kernel and library call, so there is no cross-stream use
        // that cudarc's per-buffer events would have to order; frees are ordered on the same
        // stream after all earlier work.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.default_stream();
        Ok(Self {
            info: DeviceInfo {
                ordinal,
                name,
                compute_capability: (major, minor),
                total_memory_bytes,
                multiprocessors,
                l2_cache_bytes,
                shared_memory_per_block_optin_bytes,
            },
            ctx,
            stream,
            kernels: Mutex::new(None),
            wgmma: Mutex::new(None),
            tuning: Mutex::new(Tuning::from_env()),
            lt: Mutex::new(None),
            blas: Mutex::new(None),
        })
    }

    /// The CUDA stream every call through this value is enqueued on (the context's default
    /// stream for a device from [`open`](Self::open)). Buffers this value allocates are bound to
    /// it; work on it runs in submission order.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The same device, enqueuing on `stream` instead: it shares the compiled kernels and the
    /// tuning of `self` but has its own cuBLAS/cuBLASLt handles (bound to `stream`). Use it to
    /// run the quantization kernels and GEMMs on a caller's stream, e.g. one that is being
    /// captured into a CUDA graph (allocate every buffer before capture begins).
    ///
    /// # Errors
    /// [`CudaError::Unsupported`] when `stream` belongs to another CUDA context.
    pub fn with_stream(&self, stream: Arc<CudaStream>) -> Result<CudaDevice> {
        if stream.context().cu_ctx() != self.ctx.cu_ctx() {
            return Err(CudaError::Unsupported {
                op: "with_stream",
                detail: format!(
                    "the stream belongs to another CUDA context than device {}",
                    self.info.ordinal
                ),
            });
        }
        let kernels = self.kernels.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let wgmma = self.wgmma.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let tuning = *self.tuning.lock().unwrap_or_else(|p| p.into_inner());
        Ok(CudaDevice {
            info: self.info.clone(),
            ctx: self.ctx.clone(),
            stream,
            kernels: Mutex::new(kernels),
            wgmma: Mutex::new(wgmma),
            tuning: Mutex::new(tuning),
            lt: Mutex::new(None),
            blas: Mutex::new(None),
        })
    }

    /// The same device on a new non-blocking stream of its context (see
    /// [`with_stream`](Self::with_stream)); such a stream can be captured into a CUDA graph,
    /// the legacy default stream cannot.
    ///
    /// # Errors
    /// [`CudaError::Driver`] if the stream cannot be created.
    pub fn on_new_stream(&self) -> Result<CudaDevice> {
        let stream = self.ctx.new_stream().map_err(self.err("cuStreamCreate"))?;
        self.with_stream(stream)
    }

    /// Dynamic shared memory the pipelined row kernels may use per block (the opt-in maximum
    /// less room for their static shared memory).
    pub(crate) fn tile_smem_limit(&self) -> u64 {
        self.info.shared_memory_per_block_optin_bytes.saturating_sub(1024).max(32 << 10)
    }

    /// Kernel launch parameters in use (see [`Tuning`]).
    pub fn tuning(&self) -> Tuning {
        *self.tuning.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the kernel launch parameters (benchmarks sweep them; results never depend on
    /// them, only speed does). Out-of-range values are clamped to the supported ones.
    pub fn set_tuning(&self, t: Tuning) {
        *self.tuning.lock().unwrap_or_else(|p| p.into_inner()) = t.clamped();
    }

    /// What the driver reports about this device.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The virtual architecture the kernels are compiled for, e.g. `compute_90`.
    pub fn arch(&self) -> String {
        format!("compute_{}{}", self.info.compute_capability.0, self.info.compute_capability.1)
    }

    pub(crate) fn err(
        &self,
        call: &'static str,
    ) -> impl Fn(cudarc::driver::DriverError) -> CudaError {
        let ordinal = self.info.ordinal;
        move |e| CudaError::driver(call, ordinal, e)
    }

    /// Compiles (once per process) and loads (once per device) the kernel module. Called
    /// implicitly by every kernel launch; call it up front to keep compilation out of timings.
    ///
    /// # Errors
    /// [`CudaError::Compile`] with NVRTC's log, or [`CudaError::Driver`] if loading fails.
    pub fn load_kernels(&self) -> Result<()> {
        self.kernels().map(|_| ())
    }

    pub(crate) fn kernels(&self) -> Result<Arc<Kernels>> {
        let mut slot = self.kernels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = slot.as_ref() {
            return Ok(k.clone());
        }
        let ptx = kernels::ptx_for(&self.arch())?;
        let module = self.ctx.load_module(ptx).map_err(self.err("cuModuleLoadData"))?;
        let mut functions = std::collections::HashMap::new();
        for &name in kernels::ENTRY_POINTS {
            let f = module.load_function(name).map_err(self.err("cuModuleGetFunction"))?;
            if name.starts_with("quant_rows_tiles") || name.starts_with("quant_tensor_coop") {
                // the pipelined row kernels may use more than the default 48 KiB of dynamic
                // shared memory (long rows); the launch asks only for what it needs
                f.set_attribute(
                    cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    i32::try_from(self.tile_smem_limit()).unwrap_or(48 << 10),
                )
                .map_err(self.err("cuFuncSetAttribute"))?;
            }
            functions.insert(name, f);
        }
        let k =
            Arc::new(Kernels { _module: module, functions, wgmma_clusters: Default::default() });
        *slot = Some(k.clone());
        Ok(k)
    }

    /// Compiles (once per process, for `compute_90a`) and loads (once per device) the module of
    /// the int8 wgmma GEMM. Only compute capability 9.0 runs it.
    ///
    /// # Errors
    /// [`CudaError::Unsupported`] on another architecture; [`CudaError::Compile`];
    /// [`CudaError::Driver`] if loading fails or the shared-memory opt-in is refused.
    pub(crate) fn wgmma_kernels(&self) -> Result<Arc<Kernels>> {
        if self.info.compute_capability != (9, 0) {
            return Err(CudaError::Unsupported {
                op: "int8 wgmma gemm",
                detail: format!(
                    "needs compute capability 9.0 (sm_90a), device {} is {}.{}",
                    self.info.ordinal,
                    self.info.compute_capability.0,
                    self.info.compute_capability.1
                ),
            });
        }
        let mut slot = self.wgmma.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = slot.as_ref() {
            return Ok(k.clone());
        }
        probe_library(Library::Nvrtc)?;
        let ptx = kernels::wgmma_ptx()?;
        let module = self.ctx.load_module(ptx).map_err(self.err("cuModuleLoadData"))?;
        let mut functions = std::collections::HashMap::new();
        for &name in kernels::WGMMA_ENTRY_POINTS {
            let f = module.load_function(name).map_err(self.err("cuModuleGetFunction"))?;
            let smem = i32::try_from(super::wgmma::smem_bytes_of_entry(name)).unwrap_or(i32::MAX);
            f.set_attribute(
                cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                smem,
            )
            .map_err(self.err("cuFuncSetAttribute"))?;
            functions.insert(name, f);
        }
        let k =
            Arc::new(Kernels { _module: module, functions, wgmma_clusters: Default::default() });
        *slot = Some(k.clone());
        Ok(k)
    }

    /// Copies `host` into a new device buffer.
    ///
    /// # Errors
    /// [`CudaError::Driver`] on allocation or copy failure.
    pub fn upload<T: DeviceScalar>(&self, host: &[T]) -> Result<DeviceBuffer<T>> {
        let slice = self.stream.clone_htod(host).map_err(self.err("cuMemcpyHtoD"))?;
        Ok(DeviceBuffer { slice })
    }

    /// A new zero-filled device buffer of `len` elements.
    ///
    /// # Errors
    /// [`CudaError::Driver`] on allocation failure (e.g. out of memory).
    pub fn zeros<T: DeviceScalar>(&self, len: usize) -> Result<DeviceBuffer<T>> {
        let slice = self.stream.alloc_zeros(len).map_err(self.err("cuMemAlloc"))?;
        Ok(DeviceBuffer { slice })
    }

    /// Copies a device buffer back to the host (waits for all earlier work on the stream).
    ///
    /// # Errors
    /// [`CudaError::Driver`] on copy failure, including errors of earlier asynchronous work.
    pub fn download<T: DeviceScalar>(&self, buf: &DeviceBuffer<T>) -> Result<Vec<T>> {
        self.stream.clone_dtoh(&buf.slice).map_err(self.err("cuMemcpyDtoH"))
    }

    /// Copies `len` elements starting at `start` back to the host.
    ///
    /// # Errors
    /// [`CudaError::Shape`] if the range is out of bounds; [`CudaError::Driver`] on failure.
    pub fn download_range<T: DeviceScalar>(
        &self,
        buf: &DeviceBuffer<T>,
        start: usize,
        len: usize,
    ) -> Result<Vec<T>> {
        let end = start.checked_add(len).filter(|&e| e <= buf.len()).ok_or_else(|| {
            CudaError::shape(
                "download",
                format!("range {start}..{start}+{len} outside a buffer of {}", buf.len()),
            )
        })?;
        let view = buf.slice.slice(start..end);
        self.stream.clone_dtoh(&view).map_err(self.err("cuMemcpyDtoH"))
    }

    /// Device-to-device copy of all of `src` into the start of `dst`.
    ///
    /// # Errors
    /// [`CudaError::Shape`] if `dst` is shorter than `src`; [`CudaError::Driver`] on failure.
    pub fn copy<T: DeviceScalar>(
        &self,
        src: &DeviceBuffer<T>,
        dst: &mut DeviceBuffer<T>,
    ) -> Result<()> {
        if dst.len() < src.len() {
            return Err(CudaError::shape(
                "device copy",
                format!("destination holds {} elements, source {}", dst.len(), src.len()),
            ));
        }
        self.stream.memcpy_dtod(&src.slice, &mut dst.slice).map_err(self.err("cuMemcpyDtoD"))
    }

    /// Blocks until all work submitted to this device's stream has finished.
    ///
    /// # Errors
    /// [`CudaError::Driver`], including errors of earlier asynchronous work.
    pub fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().map_err(self.err("cuStreamSynchronize"))
    }

    /// Starts a device-event timer on this device's stream.
    ///
    /// # Errors
    /// [`CudaError::Driver`] when events cannot be created or recorded.
    pub fn start_timer(&self) -> Result<GpuTimer<'_>> {
        let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
        let start = self.ctx.new_event(flags).map_err(self.err("cuEventCreate"))?;
        let stop = self.ctx.new_event(flags).map_err(self.err("cuEventCreate"))?;
        start.record(&self.stream).map_err(self.err("cuEventRecord"))?;
        Ok(GpuTimer { dev: self, start, stop })
    }
}

/// Measures device time between [`CudaDevice::start_timer`] and [`GpuTimer::stop`] with CUDA
/// events (resolution about 0.5 µs), independent of host-side launch overhead.
#[derive(Debug)]
pub struct GpuTimer<'a> {
    dev: &'a CudaDevice,
    start: CudaEvent,
    stop: CudaEvent,
}

impl GpuTimer<'_> {
    /// Records the stop event, waits for it, and returns the elapsed device time.
    ///
    /// # Errors
    /// [`CudaError::Driver`], including errors of the timed work.
    pub fn stop(self) -> Result<Duration> {
        self.stop.record(&self.dev.stream).map_err(self.dev.err("cuEventRecord"))?;
        let ms = self.start.elapsed_ms(&self.stop).map_err(self.dev.err("cuEventElapsedTime"))?;
        Ok(Duration::from_secs_f64(f64::from(ms.max(0.0)) / 1e3))
    }
}

/// Launch parameters of the memory-bound kernels. Every setting computes the same bits; only
/// speed differs. The defaults are the best measured (docs/results/quant-gpu.md: the row-kernel
/// and GEMM choices on an H100, 2026-12-06; the older fields on an H200, 2026-11-21). Fields
/// that are `None` ("auto") leave the choice to the measured table of the kernel plans
/// (`cuda::quant::plan::row_kernel`, `cuda::gemm::gemm_plan`), which depends on the input type
/// and shape; `Some` forces one setting everywhere, for A/B runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tuning {
    /// Stages of the shared-memory pipeline of the fused row quantizer (2..=4): tiles whose
    /// loads are in flight while one is reduced and quantized.
    pub quant_stages: u32,
    /// Bytes of input per pipeline stage (4096..=32768, a multiple of 4096); rows longer than
    /// this get a stage of their own size (up to the device's shared-memory limit).
    pub quant_tile_bytes: u32,
    /// Threads per block of the fused row quantizer (64, 128 or 256).
    pub quant_threads: u32,
    /// Target 16-byte vectors per lane and group in the fused row quantizer (2, 4, 8 or 16):
    /// a group of LV vectors gets a team of `next_pow2(LV / this)` lanes (at most a block).
    pub quant_vectors_per_lane: u32,
    /// W8A16 decode kernel variant: output rows per warp (1, 2 or 4).
    pub w8a16_rows: u32,
    /// W8A16 decode kernel variant: 16-byte weight loads in flight per lane and row (1, 2, 4 or
    /// 8; with 1 row only 2, 4 or 8, with 4 rows only 1, 2 or 4).
    pub w8a16_unroll: u32,
    /// Warps per block of the W8A16 kernels (4 or 8).
    pub w8a16_warps: u32,
    /// Register-resident row quantizer for f32 inputs: preferred 16-byte vectors per lane and
    /// group (1, 2, 4, 8 or 16; a group of LV ≤ 512 vectors gets a team of
    /// `next_pow2(LV / this)` ≤ 32 lanes), or 0 to use the pipelined kernel instead. Groups of
    /// more than 512 vectors (8 KiB) always take the pipelined kernel.
    pub quant_reg_vectors_f32: u32,
    /// The same for f16/bf16 inputs.
    pub quant_reg_vectors_half: u32,
    /// The same for groups of at most 8 vectors (e.g. GGML Q8_0's 32 elements) that the
    /// contiguous kernel does not take, either input width (1, 2, 4 or 8; a value of 0 in the
    /// two fields above still switches the kernel off).
    pub quant_reg_vectors_small: u32,
    /// Threads per block of the register-resident row quantizer (64, 128 or 256).
    pub quant_reg_threads: u32,
    /// Dequantize: resident blocks of 256 threads per multiprocessor the grid is sized for
    /// (4, 8 or 16).
    pub dequant_blocks_per_sm: u32,
    /// Per-tensor quantization of an input that fits in the multiprocessors' shared memory
    /// (see [`CudaDevice::one_pass_tensor_capacity_bytes`]) in one cooperative kernel (one pass
    /// over memory) instead of two passes.
    pub quant_one_pass_tensor: bool,
    /// Groups of 257..=512 16-byte vectors (e.g. 4096-element f16/bf16 rows, 2048-element f32
    /// rows): warps per group of the split register kernel (4: each lane holds 4 vectors, the
    /// four warps meet in shared memory, the next group's loads are issued before the current
    /// one is reduced), or 0 for one warp per group (16 vectors per lane).
    pub quant_split_warps: u32,
    /// INT8 GEMM with its dequantization ([`CudaDevice::gemm_i8_dequant`]): MiB of int32
    /// accumulator per row panel (`Some(0)`: one GEMM over all rows, then one dequantize pass;
    /// `None`: the measured choice per output size). With a budget, the rows are cut into
    /// panels whose accumulator fits it (a multiple of 64 rows); each panel's GEMM writes one
    /// scratch buffer that its dequantize pass reads back while it is still in L2.
    pub gemm_panel_mib: Option<u32>,
    /// INT8 GEMM: which of cuBLASLt's heuristic candidates to use (0 = its first choice, up to
    /// 7; a rank the heuristic does not reach falls back to its last candidate; `None`: the
    /// measured choice per output size).
    pub gemm_algo_rank: Option<u32>,
    /// Groups of at most 8 16-byte vectors (e.g. GGML Q8_0's 32 elements) whose vectors split
    /// evenly into teams of a power of two lanes: the contiguous kernel with this many vectors
    /// per lane (2: `quant_rows_regc2cs`, streaming loads; 4: `quant_rows_regc4`; each lane
    /// holds consecutive vectors and writes its codes with one wide store), 0 for the in-warp
    /// kernel with `quant_reg_vectors_small`, `None` for the measured choice per input type.
    pub quant_small_contig: Option<u32>,
    /// The split register kernel: load the input with the streaming hint (`ld.global.cs`)
    /// instead of through the non-coherent path (`ld.global.nc`); `None`: the measured choice
    /// (streaming from f16/bf16, not from f32).
    pub quant_load_streaming: Option<bool>,
    /// Groups of 9..=128 16-byte vectors (e.g. group-128) whose vectors split into a team of a
    /// power of two ≤ 32 lanes: the contiguous kernel with this many consecutive vectors per
    /// lane (2: `quant_rows_regc2cs`, streaming loads; 4: `quant_rows_regc4`), as
    /// [`quant_small_contig`](Self::quant_small_contig) for small groups; 0 for the in-warp
    /// kernel; `None`: the measured choice (the in-warp kernel: on group-128 the contiguous
    /// kernel measured 0.908 / 0.895 from bf16 / f16 against the in-warp 2-vector kernel's
    /// 0.907 / 0.941, H100, session 14).
    pub quant_group_contig: Option<u32>,
    /// INT8 GEMM + dequantize with row panels: run each panel's dequantize on a second stream,
    /// overlapping the next panel's GEMM (the scratch is double-buffered: twice the panel).
    pub gemm_overlap: bool,
    /// INT8 GEMM + dequantize ([`CudaDevice::gemm_i8_dequant`]): `Some(true)` runs our Hopper
    /// wgmma kernel with the dequantize in its epilogue (no int32 matrix in memory) where it
    /// applies (compute capability 9.0, `K % 16 == 0`), `Some(false)` always cuBLASLt +
    /// dequantize pass; `None`: the measured choice ([`use_wgmma`](super::use_wgmma): the
    /// wgmma kernel, v4, where it applies and the output has at least 3/8 of a 128 × 256 tile
    /// per multiprocessor; cuBLASLt, which splits K, below that; H100, session 15).
    pub gemm_wgmma: Option<bool>,
    /// Per-channel quantization on the last axis (two passes): `Some(true)` applies the codes
    /// with the column kernel (`quant_apply_cols`: a thread holds its 16-byte column's channel
    /// parameters for a slice of rows), `Some(false)` with the grid-stride vector kernel, which
    /// loads them per vector; `None`: the measured choice (the column kernel; H100, session
    /// 15: 0.959 / 0.822 / 0.826 of the measured two-pass bound from f32 / bf16 / f16 against
    /// 0.945 / 0.791 / 0.771).
    pub quant_apply_cols: Option<bool>,
    /// The column kernels of per-channel quantization on an inner axis (statistics, and the
    /// apply with [`quant_apply_cols`](Self::quant_apply_cols)): `Some(true)` walks rows
    /// `blockIdx.y`, `+ gridDim.y`, … (the grid streams one window of consecutive rows),
    /// `Some(false)` a slice of consecutive rows per block; `None`: the measured choice
    /// (interleaved: ahead by 0.2–1.1 % on every row measured, H100, session 15).
    pub quant_cols_interleave: Option<bool>,
}

/// Highest [`Tuning::gemm_algo_rank`]: cuBLASLt is asked for this many + 1 candidates.
pub(crate) const MAX_ALGO_RANK: u32 = 7;

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            quant_stages: 2,
            quant_tile_bytes: 8192,
            quant_threads: 64,
            quant_vectors_per_lane: 4,
            w8a16_rows: 2,
            w8a16_unroll: 2,
            w8a16_warps: 8,
            quant_reg_vectors_f32: 4,
            quant_reg_vectors_half: 2,
            quant_reg_vectors_small: 2,
            quant_reg_threads: 256,
            dequant_blocks_per_sm: 4,
            quant_one_pass_tensor: true,
            quant_split_warps: 4,
            gemm_panel_mib: None,
            gemm_algo_rank: None,
            quant_small_contig: None,
            quant_load_streaming: None,
            quant_group_contig: None,
            gemm_overlap: false,
            gemm_wgmma: None,
            quant_apply_cols: None,
            quant_cols_interleave: None,
        }
    }
}

/// `auto` for `None`, else the value (the override syntax of the optional fields).
fn show<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "auto".to_string(), |v| v.to_string())
}

impl Tuning {
    /// Name of the environment variable [`from_env`](Self::from_env) reads.
    pub const ENV: &'static str = "EAI_QUANT_TUNING";

    /// The defaults with overrides from `EAI_QUANT_TUNING`, a comma-separated list of
    /// `field=value` (field names as in this struct, e.g.
    /// `quant_reg_threads=128,quant_small_contig=4`; the optional fields also take `auto`).
    /// Unknown fields and unparsable values are ignored with a warning; values are clamped as
    /// by [`CudaDevice::set_tuning`]. [`CudaDevice::open`] starts from this.
    pub fn from_env() -> Self {
        match std::env::var(Self::ENV) {
            Ok(spec) => Self::default().with_overrides(&spec),
            Err(_) => Self::default(),
        }
    }

    /// These settings with `field=value` overrides (see [`from_env`](Self::from_env)).
    pub fn with_overrides(self, spec: &str) -> Self {
        let mut t = self;
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                tracing::warn!(item, "{}: expected field=value", Self::ENV);
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            let num = value.parse::<u32>();
            let flag = value.parse::<bool>();
            let auto = value == "auto";
            let field = match key {
                "quant_stages" => Some(&mut t.quant_stages),
                "quant_tile_bytes" => Some(&mut t.quant_tile_bytes),
                "quant_threads" => Some(&mut t.quant_threads),
                "quant_vectors_per_lane" => Some(&mut t.quant_vectors_per_lane),
                "w8a16_rows" => Some(&mut t.w8a16_rows),
                "w8a16_unroll" => Some(&mut t.w8a16_unroll),
                "w8a16_warps" => Some(&mut t.w8a16_warps),
                "quant_reg_vectors_f32" => Some(&mut t.quant_reg_vectors_f32),
                "quant_reg_vectors_half" => Some(&mut t.quant_reg_vectors_half),
                "quant_reg_vectors_small" => Some(&mut t.quant_reg_vectors_small),
                "quant_reg_threads" => Some(&mut t.quant_reg_threads),
                "dequant_blocks_per_sm" => Some(&mut t.dequant_blocks_per_sm),
                "quant_split_warps" => Some(&mut t.quant_split_warps),
                _ => None,
            };
            let optional = match key {
                "gemm_panel_mib" => Some(&mut t.gemm_panel_mib),
                "gemm_algo_rank" => Some(&mut t.gemm_algo_rank),
                "quant_small_contig" => Some(&mut t.quant_small_contig),
                "quant_group_contig" => Some(&mut t.quant_group_contig),
                _ => None,
            };
            match (key, field, optional, num, flag) {
                (_, Some(f), _, Ok(v), _) => *f = v,
                (_, _, Some(f), Ok(v), _) => *f = Some(v),
                (_, _, Some(f), _, _) if auto => *f = None,
                ("quant_load_streaming", _, _, _, Ok(b)) => t.quant_load_streaming = Some(b),
                ("quant_load_streaming", ..) if auto => t.quant_load_streaming = None,
                ("gemm_wgmma", _, _, _, Ok(b)) => t.gemm_wgmma = Some(b),
                ("gemm_wgmma", ..) if auto => t.gemm_wgmma = None,
                ("quant_apply_cols", _, _, _, Ok(b)) => t.quant_apply_cols = Some(b),
                ("quant_apply_cols", ..) if auto => t.quant_apply_cols = None,
                ("quant_cols_interleave", _, _, _, Ok(b)) => t.quant_cols_interleave = Some(b),
                ("quant_cols_interleave", ..) if auto => t.quant_cols_interleave = None,
                ("quant_one_pass_tensor", _, _, _, Ok(b)) => t.quant_one_pass_tensor = b,
                ("gemm_overlap", _, _, _, Ok(b)) => t.gemm_overlap = b,
                _ => tracing::warn!(item, "{}: unknown field or bad value", Self::ENV),
            }
        }
        t.clamped()
    }

    /// The settings as `field=value,…`, the format [`with_overrides`](Self::with_overrides)
    /// reads.
    pub fn to_overrides(&self) -> String {
        format!(
            "quant_stages={},quant_tile_bytes={},quant_threads={},quant_vectors_per_lane={},\
             w8a16_rows={},w8a16_unroll={},w8a16_warps={},quant_reg_vectors_f32={},\
             quant_reg_vectors_half={},quant_reg_vectors_small={},quant_reg_threads={},\
             dequant_blocks_per_sm={},quant_one_pass_tensor={},quant_split_warps={},\
             gemm_panel_mib={},gemm_algo_rank={},quant_small_contig={},\
             quant_load_streaming={},quant_group_contig={},\
             gemm_overlap={},gemm_wgmma={},quant_apply_cols={},quant_cols_interleave={}",
            self.quant_stages,
            self.quant_tile_bytes,
            self.quant_threads,
            self.quant_vectors_per_lane,
            self.w8a16_rows,
            self.w8a16_unroll,
            self.w8a16_warps,
            self.quant_reg_vectors_f32,
            self.quant_reg_vectors_half,
            self.quant_reg_vectors_small,
            self.quant_reg_threads,
            self.dequant_blocks_per_sm,
            self.quant_one_pass_tensor,
            self.quant_split_warps,
            show(self.gemm_panel_mib),
            show(self.gemm_algo_rank),
            show(self.quant_small_contig),
            show(self.quant_load_streaming),
            show(self.quant_group_contig),
            self.gemm_overlap,
            show(self.gemm_wgmma),
            show(self.quant_apply_cols),
            show(self.quant_cols_interleave),
        )
    }

    fn clamped(self) -> Self {
        let pick = |v: u32, allowed: &[u32], d: u32| if allowed.contains(&v) { v } else { d };
        let d = Tuning::default();
        Tuning {
            quant_stages: self.quant_stages.clamp(2, 4),
            quant_tile_bytes: (self.quant_tile_bytes.clamp(4096, 32768) / 4096) * 4096,
            quant_threads: pick(self.quant_threads, &[64, 128, 256], d.quant_threads),
            quant_vectors_per_lane: pick(
                self.quant_vectors_per_lane,
                &[2, 4, 8, 16],
                d.quant_vectors_per_lane,
            ),
            w8a16_rows: pick(self.w8a16_rows, &[1, 2, 4], d.w8a16_rows),
            w8a16_unroll: pick(self.w8a16_unroll, &[1, 2, 4, 8], d.w8a16_unroll),
            w8a16_warps: pick(self.w8a16_warps, &[4, 8], d.w8a16_warps),
            quant_reg_vectors_f32: pick(
                self.quant_reg_vectors_f32,
                &[0, 1, 2, 4, 8, 16],
                d.quant_reg_vectors_f32,
            ),
            quant_reg_vectors_half: pick(
                self.quant_reg_vectors_half,
                &[0, 1, 2, 4, 8, 16],
                d.quant_reg_vectors_half,
            ),
            quant_reg_vectors_small: pick(
                self.quant_reg_vectors_small,
                &[1, 2, 4, 8],
                d.quant_reg_vectors_small,
            ),
            quant_reg_threads: pick(self.quant_reg_threads, &[64, 128, 256], d.quant_reg_threads),
            dequant_blocks_per_sm: pick(
                self.dequant_blocks_per_sm,
                &[4, 8, 16],
                d.dequant_blocks_per_sm,
            ),
            quant_one_pass_tensor: self.quant_one_pass_tensor,
            quant_split_warps: pick(self.quant_split_warps, &[0, 4], d.quant_split_warps),
            gemm_panel_mib: self.gemm_panel_mib.map(|m| m.min(4096)),
            gemm_algo_rank: self.gemm_algo_rank.map(|r| r.min(MAX_ALGO_RANK)),
            quant_small_contig: self
                .quant_small_contig
                .and_then(|v| [0, 2, 4].contains(&v).then_some(v)),
            quant_load_streaming: self.quant_load_streaming,
            quant_group_contig: self
                .quant_group_contig
                .and_then(|v| [0, 2, 4].contains(&v).then_some(v)),
            gemm_overlap: self.gemm_overlap,
            gemm_wgmma: self.gemm_wgmma,
            quant_apply_cols: self.quant_apply_cols,
            quant_cols_interleave: self.quant_cols_interleave,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Tuning;

    #[test]
    fn tuning_overrides_round_trip_and_ignore_junk() {
        let d = Tuning::default();
        assert_eq!(d.with_overrides(&d.to_overrides()), d);
        let mut t = d;
        t.quant_reg_vectors_small = 8;
        t.quant_reg_threads = 64;
        t.quant_one_pass_tensor = false;
        t.quant_split_warps = 0;
        t.gemm_panel_mib = Some(16);
        t.gemm_algo_rank = Some(3);
        t.quant_small_contig = Some(0);
        t.quant_load_streaming = Some(false);
        t.quant_group_contig = Some(4);
        t.gemm_overlap = !d.gemm_overlap;
        t.gemm_wgmma = Some(true);
        t.quant_apply_cols = Some(false);
        t.quant_cols_interleave = Some(true);
        assert_eq!(Tuning::default().with_overrides(&t.to_overrides()), t);
        assert_eq!(t.with_overrides("quant_apply_cols=auto").quant_apply_cols, None);
        // `auto` gives a forced field back to the measured choice
        let back = t.with_overrides("gemm_panel_mib=auto,quant_small_contig=auto");
        assert_eq!((back.gemm_panel_mib, back.quant_small_contig), (None, None));
        assert_eq!(t.with_overrides("quant_load_streaming=auto").quant_load_streaming, None);
        assert_eq!(t.with_overrides("gemm_wgmma=auto").gemm_wgmma, None);
        assert_eq!(d.with_overrides("gemm_wgmma=false").gemm_wgmma, Some(false));
        let o = d.with_overrides(
            " quant_reg_threads = 128 , nonsense=3, quant_stages=x, gemm_overlap=maybe,",
        );
        assert_eq!(o.quant_reg_threads, 128);
        assert_eq!((o.quant_stages, o.gemm_overlap), (d.quant_stages, d.gemm_overlap));
        // out-of-range values are clamped to supported ones, as by set_tuning
        assert_eq!(
            d.with_overrides("quant_reg_threads=100").quant_reg_threads,
            d.quant_reg_threads
        );
        assert_eq!(d.with_overrides("quant_stages=9").quant_stages, 4);
        assert_eq!(
            d.with_overrides("gemm_algo_rank=99").gemm_algo_rank,
            Some(super::MAX_ALGO_RANK)
        );
        assert_eq!(d.with_overrides("quant_small_contig=3").quant_small_contig, None);
        // fields of deleted variants are ignored with a warning, not an error
        assert_eq!(
            d.with_overrides("dequant_blocked=true,quant_reg_pair=false,quant_reg_prefetch=true"),
            d
        );
    }
}
