//! The crate's error type.

use std::path::PathBuf;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `eai-power`.
///
/// Library code never panics on bad input or missing hardware: each case below names what failed
/// (the file, device, field or window) and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A whole backend cannot be used on this machine (no NVML library, driver not loaded, ...).
    #[error("{backend} is unavailable: {reason}{}", hint_suffix(.hint))]
    Unavailable {
        /// The backend (`"nvml"`, `"rapl"`).
        backend: &'static str,
        /// What went wrong.
        reason: String,
        /// How to fix it, when known.
        hint: Option<String>,
    },
    /// Reading a sensor was refused by the operating system or the driver.
    #[error("permission denied reading {what}; fix: {fix}")]
    Permission {
        /// The file or device that could not be read.
        what: String,
        /// The fix (group rule, daemon, root).
        fix: String,
    },
    /// A file could not be read or written.
    #[error("I/O error on {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A trace or sysfs file has content that cannot be used.
    #[error("cannot parse {what}: {reason}")]
    Parse {
        /// The file (and line or record when known).
        what: String,
        /// Why.
        reason: String,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration `{field}`: {reason}")]
    Config {
        /// The setting.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// No window with this id exists in this meter.
    #[error("unknown window id {id}")]
    UnknownWindow {
        /// The id passed in.
        id: u64,
    },
    /// `end` was called twice for one window.
    #[error("window {id} (`{name}`) was already ended")]
    AlreadyEnded {
        /// The window id.
        id: u64,
        /// Its name.
        name: String,
    },
    /// A result was asked for a window that has not ended.
    #[error("window {id} (`{name}`) has not ended")]
    NotEnded {
        /// The window id.
        id: u64,
        /// Its name.
        name: String,
    },
    /// A window's end lies before its beginning (post-hoc windows).
    #[error("window end lies {by_ns} ns before its beginning")]
    EndBeforeBegin {
        /// How far before, in nanoseconds.
        by_ns: u64,
    },
    /// A window of zero length.
    #[error("window has zero length")]
    EmptyWindow,
    /// The meter has no sources to sample.
    #[error("no power source to sample (every backend was unavailable: {why})")]
    NoSources {
        /// Why each backend was unavailable.
        why: String,
    },
    /// The sampler could not start a thread.
    #[error("cannot start sampler thread for {source_id}")]
    Spawn {
        /// The source.
        source_id: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The measured command could not be started or waited for.
    #[error("cannot run command `{command}`")]
    Command {
        /// The program.
        command: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Serialising or deserialising JSON/CSV failed.
    #[error("cannot serialise {what}")]
    Serde {
        /// What was being (de)serialised.
        what: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn hint_suffix(h: &Option<String>) -> String {
    match h {
        Some(h) => format!(" (hint: {h})"),
        None => String::new(),
    }
}
