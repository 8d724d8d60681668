//! The error type of the GPU runtime.

use eai_quant::cuda::CudaError;

/// What went wrong on the GPU path. Every variant names the device, tensor or buffer involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    /// The CUDA backend of eai-quant failed: no driver or toolkit library, no device, an
    /// unsupported GPU, a driver, NVRTC or cuBLASLt error.
    #[error(transparent)]
    Cuda(#[from] CudaError),
    /// Loading or validating the model on the host failed.
    #[error(transparent)]
    Model(#[from] crate::Error),
    /// A device allocation did not fit.
    #[error(
        "out of GPU memory on device {ordinal}: {what} needs {needed_mib:.1} MiB but only {free_mib:.1} MiB of {total_mib:.1} MiB are free"
    )]
    OutOfMemory {
        /// Device ordinal.
        ordinal: usize,
        /// What was being allocated, e.g. `model.layers.3.mlp.gate_up weights (int8)`.
        what: String,
        /// MiB requested.
        needed_mib: f64,
        /// MiB free on the device when the request was made.
        free_mib: f64,
        /// MiB of device memory in total.
        total_mib: f64,
    },
    /// A CUDA driver call of the model runtime failed.
    #[error("CUDA call `{call}` failed on device {ordinal} ({what})")]
    Driver {
        /// The driver call.
        call: &'static str,
        /// Device ordinal.
        ordinal: usize,
        /// What it was doing.
        what: String,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A cuBLAS call of the model runtime failed.
    #[error("cuBLAS `{call}` failed for {layer} ({shape})")]
    Blas {
        /// The call.
        call: &'static str,
        /// The layer.
        layer: String,
        /// `M=… N=… K=…`.
        shape: String,
        /// cuBLAS's status.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// NVRTC could not compile the model kernels.
    #[error("NVRTC failed to compile the eai-model kernels for {arch}:\n{log}")]
    Compile {
        /// Target architecture, e.g. `compute_90`.
        arch: String,
        /// Compiler log.
        log: String,
    },
    /// A shared library the model runtime needs is missing.
    #[error("CUDA library `{library}` could not be loaded ({hint})")]
    LibraryMissing {
        /// The library's short name.
        library: &'static str,
        /// What it is needed for.
        hint: &'static str,
    },
    /// The model's shape is valid on the CPU but not supported by the GPU kernels.
    #[error("model `{model}` is not supported on the GPU: {reason}")]
    Unsupported {
        /// The model.
        model: String,
        /// Why.
        reason: String,
    },
    /// A request or argument is invalid.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong.
        reason: String,
    },
}

/// Result alias of the GPU runtime.
pub type Result<T, E = GpuError> = std::result::Result<T, E>;

impl GpuError {
    pub(crate) fn driver(
        call: &'static str,
        ordinal: usize,
        what: impl Into<String>,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        GpuError::Driver { call, ordinal, what: what.into(), source: Box::new(e) }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        GpuError::InvalidInput { reason: reason.into() }
    }

    /// True when this is an out-of-memory error (ours, or a driver allocation failure).
    pub fn is_out_of_memory(&self) -> bool {
        match self {
            GpuError::OutOfMemory { .. } => true,
            GpuError::Cuda(e) => format!("{e:?}").contains("OUT_OF_MEMORY"),
            GpuError::Driver { source, .. } => format!("{source:?}").contains("OUT_OF_MEMORY"),
            _ => false,
        }
    }
}
