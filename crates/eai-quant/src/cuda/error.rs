//! The error type of the CUDA backend.

/// What went wrong on the CUDA path.
///
/// Foreign errors (cudarc's driver, NVRTC and cuBLAS errors) are kept as boxed `#[source]`s so
/// that cudarc's version is not part of this crate's API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CudaError {
    /// A shared library the CUDA path needs could not be loaded (no driver, or no toolkit
    /// library on the loader's search path).
    #[error(
        "CUDA library `{library}` could not be loaded ({hint}); is the NVIDIA driver/toolkit installed and on LD_LIBRARY_PATH?"
    )]
    LibraryMissing {
        /// The library's short name: `cuda` (driver), `nvrtc`, `cublasLt` or `cublas`.
        library: &'static str,
        /// What the library is needed for.
        hint: &'static str,
    },
    /// The driver loaded but reports no CUDA device at all.
    #[error("the CUDA driver reports no device")]
    NoDevice,
    /// The requested ordinal is out of range.
    #[error("CUDA device {ordinal} requested but only {count} device(s) present")]
    NoSuchDevice {
        /// The ordinal that was asked for.
        ordinal: usize,
        /// How many devices the driver reports.
        count: usize,
    },
    /// The device is older than the kernels support.
    #[error(
        "CUDA device {ordinal} ({name}) has compute capability {major}.{minor}; eai-quant needs at least {min_major}.{min_minor}"
    )]
    UnsupportedComputeCapability {
        /// Device ordinal.
        ordinal: usize,
        /// Device name as the driver reports it.
        name: String,
        /// Major compute capability of the device.
        major: u32,
        /// Minor compute capability of the device.
        minor: u32,
        /// Required major version.
        min_major: u32,
        /// Required minor version.
        min_minor: u32,
    },
    /// A CUDA driver call failed.
    #[error("CUDA driver call `{call}` failed on device {ordinal}")]
    Driver {
        /// What was being done.
        call: &'static str,
        /// Device ordinal.
        ordinal: usize,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// NVRTC could not compile the embedded kernels (the log is in the message).
    #[error("NVRTC failed to compile `{module}` for {arch}:\n{log}")]
    Compile {
        /// Kernel module name.
        module: &'static str,
        /// Target architecture, e.g. `compute_90`.
        arch: String,
        /// Compiler log or error description.
        log: String,
    },
    /// A cuBLAS / cuBLASLt call failed.
    #[error("{library} call `{call}` failed for {shape}")]
    Blas {
        /// `cublasLt` or `cublas`.
        library: &'static str,
        /// The call that failed.
        call: &'static str,
        /// The problem shape, e.g. `M=1 N=4096 K=4096`.
        shape: String,
        /// The library's status.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Operand shapes or buffer lengths do not fit together.
    #[error("{op}: {detail}")]
    Shape {
        /// The operation, e.g. `int8 gemm`.
        op: &'static str,
        /// What does not fit.
        detail: String,
    },
    /// A quantization error with the same meaning as on the CPU path (invalid spec, bad layout,
    /// non-finite input under `Reject`, unrepresentable scale).
    #[error(transparent)]
    Quant(#[from] crate::QuantError),
    /// The request is valid but this backend does not implement it.
    #[error("{op} is not supported on the CUDA backend: {detail}")]
    Unsupported {
        /// The operation.
        op: &'static str,
        /// Why.
        detail: String,
    },
}

/// Result alias of the CUDA backend.
pub type Result<T, E = CudaError> = std::result::Result<T, E>;

impl CudaError {
    pub(crate) fn driver(
        call: &'static str,
        ordinal: usize,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Driver { call, ordinal, source: Box::new(e) }
    }

    pub(crate) fn blas(
        library: &'static str,
        call: &'static str,
        shape: String,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Blas { library, call, shape, source: Box::new(e) }
    }

    pub(crate) fn shape(op: &'static str, detail: impl Into<String>) -> Self {
        Self::Shape { op, detail: detail.into() }
    }
}
