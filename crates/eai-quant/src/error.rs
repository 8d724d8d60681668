//! The crate's one error type.

use std::path::PathBuf;

/// Result alias used throughout `eai-quant`.
pub type Result<T, E = QuantError> = std::result::Result<T, E>;

/// Everything that can go wrong while quantizing, casting, reading or writing tensors.
///
/// Every variant names what it is about (tensor, file, field, index) so that a message is
/// actionable on its own. Foreign errors are boxed as `#[source]` so that third-party versions do
/// not leak into this crate's API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuantError {
    /// A NaN or infinity was found where the policy is to reject it.
    #[error(
        "tensor `{tensor}` holds a non-finite value ({value}) at index {index:?} (flat {flat})"
    )]
    NonFinite {
        /// Name of the tensor (or `"<unnamed>"`).
        tensor: String,
        /// Multi-dimensional index of the first non-finite element.
        index: Vec<usize>,
        /// Row-major flat index of the same element.
        flat: usize,
        /// The offending value.
        value: f32,
    },
    /// The tensor has no elements (or a zero-length axis).
    #[error("tensor `{tensor}` is empty (shape {shape:?})")]
    Empty {
        /// Name of the tensor.
        tensor: String,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A group size that is zero or does not divide the length of the grouped axis.
    #[error("tensor `{tensor}`: group size {group} does not divide the last axis of length {len}")]
    BadGroup {
        /// Name of the tensor.
        tensor: String,
        /// Length of the axis being grouped.
        len: usize,
        /// Requested group size.
        group: usize,
    },
    /// A channel axis beyond the tensor's rank.
    #[error("tensor `{tensor}`: axis {axis} out of range for rank {rank}")]
    AxisOutOfRange {
        /// Name of the tensor.
        tensor: String,
        /// Requested axis.
        axis: usize,
        /// Rank of the tensor.
        rank: usize,
    },
    /// A [`QuantSpec`](crate::QuantSpec) whose fields contradict each other.
    #[error("invalid quantization spec: {reason}")]
    InvalidSpec {
        /// What is wrong.
        reason: String,
    },
    /// Shapes that do not fit together (matmul operands, scales, codes, metrics inputs).
    #[error("shape mismatch in {context}: {detail}")]
    ShapeMismatch {
        /// Which operation or tensor.
        context: String,
        /// Expected versus found.
        detail: String,
    },
    /// A value that cannot be represented in the target type under the `Error` policy.
    #[error("tensor `{tensor}`: value {value} at flat index {flat} overflows {target}")]
    Overflow {
        /// Name of the tensor.
        tensor: String,
        /// Row-major flat index.
        flat: usize,
        /// The value.
        value: f32,
        /// Target type, e.g. `"f16"`.
        target: &'static str,
    },
    /// A scale that is not finite or not representable in its storage dtype.
    #[error("tensor `{tensor}`: scale {scale} for group {group} is not representable as {dtype}")]
    BadScale {
        /// Name of the tensor.
        tensor: String,
        /// Group (scale) index.
        group: usize,
        /// The scale.
        scale: f32,
        /// Storage dtype of the scale.
        dtype: &'static str,
    },
    /// An INT8 matmul whose reduction length could overflow the i32 accumulator.
    #[error("int8 matmul with K = {k} may overflow the i32 accumulator (limit {limit})")]
    AccumulatorOverflow {
        /// Reduction length.
        k: usize,
        /// Largest K that is always exact for these operand ranges.
        limit: usize,
    },
    /// A safetensors dtype this crate does not read or write here.
    #[error("tensor `{tensor}` in {file}: unsupported dtype {dtype}")]
    UnsupportedDtype {
        /// Name of the tensor.
        tensor: String,
        /// File it lives in.
        file: PathBuf,
        /// The dtype as safetensors names it.
        dtype: String,
    },
    /// A safetensors file that is truncated or malformed.
    #[error("malformed safetensors file {file}")]
    Safetensors {
        /// The file.
        file: PathBuf,
        /// The parser's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A malformed JSON file (shard index, `config.json`).
    #[error("malformed JSON in {file}: {detail}")]
    Json {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A tensor name that the checkpoint does not hold.
    #[error("tensor `{tensor}` not found in checkpoint {checkpoint}")]
    MissingTensor {
        /// Name of the tensor.
        tensor: String,
        /// The checkpoint directory or file.
        checkpoint: PathBuf,
    },
    /// A shard named by `model.safetensors.index.json` that does not exist.
    #[error("index {index} names shard {shard} (for tensor `{tensor}`), which is missing")]
    MissingShard {
        /// The index file.
        index: PathBuf,
        /// The missing shard.
        shard: PathBuf,
        /// One tensor mapped to it.
        tensor: String,
    },
    /// A name the writer generates (`{module}.weight_scale`, `{module}.weight_zero_point`,
    /// `{module}.input_scale`, `{module}.weight`) is already taken by another tensor.
    #[error(
        "output tensor `{name}` (written for source tensor `{tensor}`) clashes with `{other}`: \
         the checkpoint already holds a tensor of that name, or two tensors map to it"
    )]
    NameClash {
        /// The clashing output name.
        name: String,
        /// The source tensor whose conversion generates it.
        tensor: String,
        /// The other source tensor that produces the same output name.
        other: String,
    },
    /// An output directory that is, contains or lies inside an input of the write: writing
    /// (or replacing) it would destroy the source.
    #[error("refusing to write to {destination}: it {relation} the input {input}")]
    UnsafeDestination {
        /// The destination asked for.
        destination: PathBuf,
        /// The input it overlaps.
        input: PathBuf,
        /// `is`, `contains` or `lies inside`.
        relation: &'static str,
    },
    /// A checkpoint without a single tensor: there is nothing to write.
    #[error("checkpoint {checkpoint} holds no tensors")]
    EmptyCheckpoint {
        /// The checkpoint.
        checkpoint: PathBuf,
    },
    /// A compute backend (e.g. the CUDA path) failed for a reason that is not a quantization
    /// error: driver or library call, kernel compilation, out of device memory.
    #[error("{device}: {op} failed: {message}")]
    Backend {
        /// The device, e.g. `cuda:0 (NVIDIA H200)`.
        device: String,
        /// The operation that was running, e.g. `quantize` or `dequantize`.
        op: &'static str,
        /// The backend error's own description (its chain is in `source`).
        message: String,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An I/O error on a named file.
    #[error("I/O error on {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl QuantError {
    #[allow(dead_code)]
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        QuantError::Io { path: path.into(), source }
    }

    pub(crate) fn spec(reason: impl Into<String>) -> Self {
        QuantError::InvalidSpec { reason: reason.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::QuantError;

    #[test]
    fn backend_errors_name_device_and_operation_and_keep_their_source() {
        let e = QuantError::Backend {
            device: "cuda:0 (NVIDIA H200)".into(),
            op: "quantize",
            message: "CUDA driver call `cuMemAlloc` failed on device 0".into(),
            source: Box::new(std::io::Error::other("out of memory")),
        };
        assert_eq!(
            e.to_string(),
            "cuda:0 (NVIDIA H200): quantize failed: CUDA driver call `cuMemAlloc` failed on device 0"
        );
        let src = std::error::Error::source(&e).map(|s| s.to_string());
        assert_eq!(src.as_deref(), Some("out of memory"));
    }
}
