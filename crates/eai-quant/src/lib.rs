//! eai-quant: INT8 (symmetric/asymmetric), FP16/BF16 and dynamic quantization on CPU (ndarray) and CUDA (NVRTC + cuBLASLt).
//!
//! (Under construction: see the open issue for this layer.)
//!
//! ```
//! assert_eq!(2 + 2, 4);
//! ```
#![deny(unsafe_code)]

#[cfg(feature = "cuda")]
#[allow(unsafe_code)]
pub mod cuda;
