//! The facade's error type: one enum naming what failed (scheme, task, file, field).

use std::path::PathBuf;

/// Why a study (or one of its steps) failed.
///
/// Nothing already measured is lost on failure: [`crate::Study::run`] returns what was
/// recorded before the failing step inside [`Error::Partial`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid.
    #[error("invalid {field}: {reason}")]
    Config {
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The model could not be built or run under a scheme.
    #[error("model under scheme {scheme}: {source}")]
    Model {
        /// The scheme label.
        scheme: String,
        /// The engine's error.
        #[source]
        source: eai_core::ModelError,
    },
    /// The evaluation of a task failed.
    #[error("task {task} under scheme {scheme}: {source}")]
    Eval {
        /// The task name.
        task: String,
        /// The scheme label.
        scheme: String,
        /// The evaluation error.
        #[source]
        source: Box<eai_eval::Error>,
    },
    /// The power layer failed (no usable source, a window error, a trace that cannot be read).
    #[error("energy measurement ({context}): {source}")]
    Power {
        /// What was being done.
        context: String,
        /// The power layer's error.
        #[source]
        source: Box<eai_power::Error>,
    },
    /// A metric, comparison or recommendation could not be computed.
    #[error("metrics ({context}): {source}")]
    Metrics {
        /// What was being computed.
        context: String,
        /// The metrics layer's error.
        #[source]
        source: Box<eai_metrics::Error>,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Encoding or decoding JSON/CSV failed.
    #[error("{what}: {reason}")]
    Format {
        /// What was being encoded or decoded (with the path when there is one).
        what: String,
        /// Why.
        reason: String,
    },
    /// Reading, quantizing or writing a checkpoint failed (`eai quantize`); the cause chain
    /// of the quantization layer's error is kept.
    #[cfg(feature = "quant")]
    #[error("{what}: {source}")]
    Quant {
        /// What was being done, with the checkpoint's path.
        what: String,
        /// The quantization layer's error.
        #[source]
        source: Box<eai_quant::QuantError>,
    },
    /// Drawing a plot failed.
    #[error("plot {path}: {reason}")]
    Plot {
        /// The SVG being drawn.
        path: String,
        /// Why.
        reason: String,
    },
    /// A step failed after others had been recorded: the results so far are kept.
    #[error("{source} (results recorded before the failure are kept)")]
    Partial {
        /// What had been recorded.
        results: Box<crate::study::StudyResults>,
        /// The failure.
        #[source]
        source: Box<Error>,
    },
}

/// `Result` with the facade's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// [`Error::Power`]: a power-layer failure while doing `context`.
    pub fn power(context: impl Into<String>, e: eai_power::Error) -> Self {
        Self::Power { context: context.into(), source: Box::new(e) }
    }

    /// [`Error::Metrics`]: a metrics-layer failure while doing `context`.
    pub fn metrics(context: impl Into<String>, e: eai_metrics::Error) -> Self {
        Self::Metrics { context: context.into(), source: Box::new(e) }
    }

    /// [`Error::Io`] on `path`.
    pub fn io(path: impl Into<PathBuf>, e: std::io::Error) -> Self {
        Self::Io { path: path.into(), source: e }
    }

    /// [`Error::Format`]: encoding or decoding `what` failed.
    pub fn format(what: impl Into<String>, e: impl std::fmt::Display) -> Self {
        Self::Format { what: what.into(), reason: e.to_string() }
    }

    /// The results recorded before a failure, when the error carries them.
    pub fn partial_results(&self) -> Option<&crate::study::StudyResults> {
        match self {
            Self::Partial { results, .. } => Some(results),
            _ => None,
        }
    }
}
