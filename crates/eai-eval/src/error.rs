//! The crate's one error type.

use std::path::PathBuf;

use eai_core::ModelError;

/// Everything that can go wrong while loading data, building prompts or scoring.
///
/// Data errors name the file, the 1-based line (the record's first line for CSV records that span
/// lines) and, where one is at fault, the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line (or CSV record) is not well formed: bad JSON, wrong number of columns, a truncated
    /// record, a field of the wrong type.
    #[error("{path}:{line}: malformed record: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A required field is absent.
    #[error("{path}:{line}: missing field `{field}`")]
    MissingField {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field's name (dotted for nested fields, e.g. `question.stem`).
        field: String,
    },
    /// A field is present but holds a value the task cannot use.
    #[error("{path}:{line}: field `{field}`: {reason}")]
    BadField {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field's name.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The answer key does not name one of the item's choices.
    #[error(
        "{path}:{line}: field `{field}`: answer {answer:?} is not one of the {choices} choices"
    )]
    AnswerOutOfRange {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field holding the answer.
        field: String,
        /// The answer as written in the file.
        answer: String,
        /// How many choices the item has.
        choices: usize,
    },
    /// An item has no choices at all.
    #[error("{path}:{line}: field `{field}`: empty choice list")]
    EmptyChoices {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field that should hold the choices.
        field: String,
    },
    /// A data directory does not hold what the task needs (e.g. an MMLU subject file is absent).
    #[error("{path}: {reason}")]
    MissingData {
        /// The file or directory looked for.
        path: PathBuf,
        /// What was expected.
        reason: String,
    },
    /// A data file holds no records at all (an empty or whitespace-only file): a task built
    /// from it would score nothing and print an empty table.
    #[error("{path}: the file holds no records")]
    NoRecords {
        /// The file (or the name of the text parsed).
        path: PathBuf,
    },
    /// A task would evaluate no document (its data is empty, or its limit keeps none).
    #[error("task `{task}` has no document to evaluate: {reason}")]
    NoDocuments {
        /// The task.
        task: String,
        /// Why (the limit, or the source that is empty).
        reason: String,
    },
    /// The model returned a log-likelihood that is NaN or infinite: no score is computed from
    /// it (a NaN compares false with everything, so argmax would pick the first choice).
    #[error(
        "task `{task}`, document {doc}: the model returned a non-finite log-likelihood ({value}) \
         for continuation {continuation:?} of context {context:?}"
    )]
    NonFiniteLoglikelihood {
        /// The task.
        task: String,
        /// The document's id (or its index in the evaluation order).
        doc: String,
        /// The request's context, shortened to its last 80 characters.
        context: String,
        /// The request's continuation.
        continuation: String,
        /// The value returned.
        value: f64,
    },
    /// The answers given for a document do not fit its requests (another kind, or another
    /// count), or there is not one set of answers per document.
    #[error("task `{task}`, document {doc}: expected {expected}, got {got}")]
    ResponseMismatch {
        /// The task.
        task: String,
        /// The document's id (`*` for the whole task).
        doc: String,
        /// What the requests call for.
        expected: String,
        /// What was given.
        got: String,
    },
    /// A task or evaluation setting is invalid (more shots than the few-shot pool holds, an
    /// unknown task name, a regex that does not compile, ...).
    #[error("invalid configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The model failed or broke the [`LanguageModel`](eai_core::LanguageModel) contract.
    #[error("model failed while scoring task `{task}`")]
    Model {
        /// The task being run (or `*` for a batch spanning several tasks).
        task: String,
        /// The engine's error.
        #[source]
        source: ModelError,
    },
    /// Results could not be serialized.
    #[error("cannot serialize results")]
    Serialize(#[source] serde_json::Error),
}

impl Error {
    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Self::Config { reason: reason.into() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
