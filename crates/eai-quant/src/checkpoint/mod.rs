//! Safetensors checkpoints: memory-mapped reading (single file or sharded), the quantization plan
//! and mixed-precision policy, and streaming, atomic writers for compressed-tensors
//! `int-quantized` and FP16/BF16 copies.

mod mmap;
mod plan;
mod read;
mod write;

pub use plan::{ActivationScheme, MixedPrecision, QuantPlan, TensorClass};
pub use read::{Checkpoint, FloatDtype, TensorInfo};
pub use write::{
    CHUNK, CheckpointReport, TensorAction, TensorReport, WriteOptions, write_half, write_quantized,
};
