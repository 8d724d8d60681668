//! eai-quant: INT8 (symmetric and asymmetric), FP16/BF16 and dynamic quantization, with a CPU
//! reference path on `ndarray` and a CUDA path behind the `cuda` feature.
//!
//! **Design decision.** Every scheme in the wild — PyTorch, compressed-tensors/vLLM,
//! bitsandbytes, GGML — is `q = clamp(round(x / s) + z, qmin, qmax)`, `x̂ = (q − z) · s`; they
//! differ in the integer range, the scale rule, the tie-breaking rule, how `x` is brought into
//! code space, the zero-range policy and the granularity. [`QuantSpec`] makes each of these an
//! explicit field and ships presets that reproduce those libraries. The arithmetic lives in small
//! pure functions ([`kernel::group_params`], [`kernel::quantize_value`]) whose exact f32
//! operation order is the contract the CUDA kernels reproduce bit for bit (`docs/quant.md`).
//! [`QuantizedTensor`] is plain data; [`Quantizer`] is the narrow trait (quantize, dequantize).
//!
//! ```
//! use eai_quant::{CpuQuantizer, ErrorStats, QuantSpec, Quantizer};
//! let w = ndarray::Array2::from_shape_fn((8, 64), |(i, j)| ((i * 64 + j) as f32).sin());
//! let q = CpuQuantizer::new(QuantSpec::int8_weight())?;          // symmetric, per output channel
//! let qt = q.quantize_named("w", w.view().into_dyn())?;
//! let back = q.dequantize(&qt)?;
//! let err = ErrorStats::between(w.as_slice().unwrap(), back.as_slice().unwrap())?;
//! assert!(err.sqnr_db > 40.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cast;
pub mod checkpoint;
mod cpu;
mod error;
pub mod kernel;
mod matmul;
mod metrics;
mod observer;
mod qtensor;
mod spec;
#[cfg(any(test, feature = "test-util"))]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;

pub use crate::cast::{CastReport, HalfType, RangePolicy, cast_f32, cast_f32_into, widen_to_f32};
pub use crate::cpu::{CpuQuantizer, Quantizer, dequantize_to_vec};
pub use crate::error::{QuantError, Result};
pub use crate::kernel::{GroupParams, RangeStats};
pub use crate::matmul::{
    Int8Linear, codes_i8_2d, int8_matmul, matmul_i8_i32, quantize_per_token, scaled_epilogue,
};
pub use crate::metrics::{ErrorAccumulator, ErrorStats};
pub use crate::observer::{MinMaxObserver, MovingAverageObserver, Observer, PercentileObserver};
pub use crate::qtensor::{Codes, GroupLayout, QuantizedTensor};
pub use crate::spec::{
    Granularity, IntRange, Mapping, NonFinite, QuantSpec, Rounding, ScaleApply, ScaleDtype,
    ScaleRule, ZeroRange,
};

#[cfg(feature = "cuda")]
#[allow(unsafe_code)]
pub mod cuda;
