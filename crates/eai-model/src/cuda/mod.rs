//! The GPU runtime (feature `cuda`): the decoder's forward pass on an NVIDIA GPU, with every
//! scheme's linear layers on the device — FP32/FP16/BF16 through cuBLAS, INT8 through
//! eai-quant's CUDA backend (cuBLASLt INT8 GEMM with per-token activation quantization fused
//! into RMSNorm and SwiGLU, W8A16 GEMV for decode) — checked against the CPU reference.
//! Llama-family models and BLOOM (LayerNorm, ALiBi, GELU, biases: `model/bloom.rs`).
//!
//! Design:
//! - **Nothing needs CUDA to build, nothing panics without it.** The device is opened through
//!   [`eai_quant::cuda::CudaDevice::open`], which probes the driver, NVRTC and cuBLASLt
//!   libraries first; [`open_device`] adds cuBLAS. A missing library or GPU is a typed error.
//! - **One stream.** The model enqueues its kernels and cuBLAS calls on the stream eai-quant
//!   uses for its GEMMs, so all work runs in submission order without events.
//!   With [`GpuOptions::cuda_graph`] (default) that stream is the model's own non-blocking one,
//!   and a batch-1..4 greedy decode step is captured into a CUDA graph once and replayed per
//!   token (ids and positions read from device buffers).
//! - **Weights resident per scheme**, the residual stream f32: Q/K/V and gate/up are fused into
//!   one GEMM each; residual adds are fused into the output GEMMs (cuBLAS `beta = 1`, or the
//!   INT8 dequantizing epilogue); rope writes K/V straight into the cache; only the scored
//!   positions go through the final norm and the LM head.
//! - **Attention** is one kernel for prefill and decode over a token-slot KV cache (packed
//!   sequences for scoring, fixed slots per sequence for generation), online softmax in f32.
//! - **Out of memory** is checked before every allocation and reported as
//!   [`GpuError::OutOfMemory`] naming the buffer.
//! - This module is the only place in eai-model with `unsafe` code; each block has a
//!   `// SAFETY:` comment.

mod blas;
mod engine;
mod error;
mod kernels;
mod model;
mod plan;
mod schedule;

pub use engine::GpuEngine;
pub use error::{GpuError, Result};
pub use model::{
    AUTO_TENSOR_CORE_MAX_HIDDEN, FP16_W16_MAX_ROWS, GEMV_DENSE_MAX_M, GemvTile, GpuMemory,
    GpuModel, GpuOptions, GpuScheme, PackedSeq, RowScore, W16_DEFAULT_MAX_ROWS, W16_MAX_ROWS,
    W16_MIN_ROWS, WeightBytes, default_gemv_tile, open_device, pdl_default,
};

/// Number of CUDA devices this process can use (its `CUDA_VISIBLE_DEVICES`; 0 with a driver but
/// no GPU): what `--cuda all` means.
///
/// # Errors
/// [`GpuError::Cuda`] when the driver library is missing or fails to initialise.
pub fn device_count() -> Result<usize> {
    Ok(eai_quant::cuda::CudaDevice::count()?)
}
