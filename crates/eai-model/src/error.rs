//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while loading or running a model.
///
/// Each variant names the file, tensor, field or request it is about, so a message alone is
/// enough to find the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a GGUF file.
    #[error("{path} is not a GGUF file (magic bytes {found:02x?}, expected \"GGUF\")")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A GGUF version this reader does not understand.
    #[error("{path}: GGUF version {version} is not supported (only 2 and 3, little-endian)")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version word as read.
        version: u32,
    },
    /// The file ends before a structure it declares, or declares something impossible.
    #[error("{path}: malformed at byte {offset}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Byte offset where parsing failed.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A tensor's declared type, shape or location is invalid.
    #[error("{path}: tensor `{tensor}`: {reason}")]
    BadTensor {
        /// The file.
        path: PathBuf,
        /// Tensor name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// A metadata-only GGUF file (see `GgufFile::open_metadata_only`) lists the tensor, but its
    /// data lies past the end of the file.
    #[error(
        "{path}: tensor `{tensor}` is listed but its data (ending at byte {end}) is absent: \
         the file ends at byte {file_len} (metadata only)"
    )]
    TensorDataAbsent {
        /// The file.
        path: PathBuf,
        /// Tensor name.
        tensor: String,
        /// Where the tensor's data would end.
        end: u64,
        /// The file's length.
        file_len: u64,
    },
    /// A tensor type this crate cannot dequantize.
    #[error("tensor `{tensor}` has type {ty}, which is not supported")]
    UnsupportedTensorType {
        /// Tensor name.
        tensor: String,
        /// The type's name (or numeric id when unknown).
        ty: String,
    },
    /// A weight holds NaN or an infinity (checked at load unless
    /// [`LoadOptions::check_finite`](crate::LoadOptions::check_finite) turns it off): every
    /// score computed through it would be NaN.
    #[error(
        "{source_name}: tensor `{tensor}` holds a non-finite value ({value}) at flat index \
         {index} (for a quantized GGUF tensor: a block's scale or minimum)"
    )]
    NonFinite {
        /// The file or folder.
        source_name: String,
        /// Tensor name (Hugging Face naming).
        tensor: String,
        /// Flat index of the first bad element.
        index: usize,
        /// The value.
        value: f32,
    },
    /// A required metadata key or config field is missing or has the wrong type.
    #[error("{source_name}: field `{field}`: {reason}")]
    Config {
        /// The file or metadata section the field comes from.
        source_name: String,
        /// Field or key name.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The model's architecture is not one this runtime implements.
    #[error("unsupported architecture `{arch}`: {reason}")]
    UnsupportedArchitecture {
        /// The architecture as named by the file.
        arch: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A tensor the architecture needs is absent.
    #[error("tensor `{tensor}` is missing from {source_name}")]
    MissingTensor {
        /// Tensor name.
        tensor: String,
        /// Where it was looked for.
        source_name: String,
    },
    /// A tensor's shape does not match the config.
    #[error("tensor `{tensor}` has shape {found:?}, config implies {expected:?}")]
    ShapeMismatch {
        /// Tensor name.
        tensor: String,
        /// Shape implied by the config (row-major, outermost first).
        expected: Vec<usize>,
        /// Shape found in the file.
        found: Vec<usize>,
    },
    /// A safetensors file could not be parsed.
    #[error("{path}: invalid safetensors: {reason}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// Building or running the tokenizer failed.
    #[error("tokenizer: {reason}")]
    Tokenizer {
        /// What failed.
        reason: String,
    },
    /// Quantizing a layer or running a quantized matmul failed.
    #[error("layer `{layer}`: quantization failed: {reason}")]
    Quant {
        /// Layer name.
        layer: String,
        /// What failed.
        reason: String,
    },
    /// A request or argument the model cannot serve.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong.
        reason: String,
    },
    /// Fetching the model from PyPI failed.
    #[error("cannot fetch {what}: {reason}")]
    Fetch {
        /// What was being fetched.
        what: String,
        /// Why it failed.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    pub(crate) fn config(
        source_name: impl Into<String>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::Config { source_name: source_name.into(), field: field.into(), reason: reason.into() }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidInput { reason: reason.into() }
    }

    pub(crate) fn tokenizer(reason: impl std::fmt::Display) -> Self {
        Self::Tokenizer { reason: reason.to_string() }
    }
}
