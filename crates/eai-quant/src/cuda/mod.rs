//! The CUDA backend (feature `cuda`): quantization kernels at the memory limit, INT8 GEMM on
//! the tensor cores, weight-only INT8 GEMV for decode, FP16/BF16 casts.
//!
//! Design:
//! - **Nothing needs CUDA to build.** cudarc is loaded dynamically (`dynamic-loading`, pinned
//!   `cuda-13000` bindings) and the kernels are CUDA C embedded with `include_str!` and compiled
//!   at run time by NVRTC, once per process ([`CudaDevice::load_kernels`]).
//! - **No panics when CUDA is missing.** cudarc panics if a library it needs cannot be loaded,
//!   so [`CudaDevice::open`] first probes the driver, NVRTC and cuBLASLt libraries and returns
//!   [`CudaError::LibraryMissing`], [`CudaError::NoDevice`] or
//!   [`CudaError::UnsupportedComputeCapability`] instead.
//! - **Bit-exact with the CPU.** Kernels are compiled without fast math and with
//!   `--fmad=false`; every rounding step mirrors the CPU reference (round-half-to-even via
//!   `__float2int_rn`/`rintf`, IEEE division), so codes and scales agree bit for bit.
//! - **One device, one stream.** Every call is enqueued on the device's stream in order;
//!   results are read back with [`CudaDevice::download`], which synchronizes.
//! - This module is the only place in the crate with `unsafe` code; every block states its
//!   invariants in a `// SAFETY:` comment.
//!
//! cudarc types appear only here; [`cudarc`] is re-exported so users can match its version.

mod cast;
mod device;
mod error;
mod fill;
mod gemm;
mod gemm_plan;
mod kernels;
mod quant;
mod wgmma;

pub use cudarc;
pub use device::{
    CudaDevice, DeviceBuffer, DeviceInfo, DeviceScalar, GpuTimer, MIN_COMPUTE_CAPABILITY, Tuning,
};
pub use error::{CudaError, Result};
pub use gemm::{FloatElem, GemmShape, HalfElem, MAX_K_INT8};
pub use gemm_plan::{gemm_plan, row_panels, use_wgmma};
pub use quant::{CudaQuantizer, DeviceQuantized};
pub use wgmma::{
    WgmmaKernel, wgmma_cluster_launch_config, wgmma_cluster_tiles, wgmma_launch_config,
    wgmma_shape_issue, wgmma_tiles,
};
