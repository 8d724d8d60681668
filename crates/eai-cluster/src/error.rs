//! The crate's error type.

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `eai-cluster`. Each case names the URL, line, metric or
/// setting involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A URL this crate cannot use (only `http://host:port/path` is supported).
    #[error("invalid URL `{url}`: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Connecting, sending or receiving failed.
    #[error("HTTP to {url} failed")]
    Io {
        /// The URL.
        url: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The peer answered something that is not HTTP/1.x as this crate reads it.
    #[error("malformed HTTP response from {url}: {reason}")]
    BadResponse {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server refused the bearer token (HTTP 401/403).
    #[error("{url} refused the request (HTTP {status}): missing or wrong bearer token")]
    Unauthorized {
        /// The URL.
        url: String,
        /// 401 or 403.
        status: u16,
    },
    /// Any other non-2xx status.
    #[error("{url} answered HTTP {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// Malformed Prometheus text exposition.
    #[error("malformed Prometheus exposition from {what}, line {line}: {reason}")]
    Exposition {
        /// Where it came from (URL or file).
        what: String,
        /// 1-based line number.
        line: usize,
        /// Why.
        reason: String,
    },
    /// A required metric is absent from a scrape.
    #[error("{what} exposes no `{metric}` (and no usable alternative): {hint}")]
    MissingMetric {
        /// The URL.
        what: String,
        /// The metric looked for.
        metric: String,
        /// How to fix it.
        hint: String,
    },
    /// A DCGM energy counter decreased (driver reload or GPU reset): flagged on windows as
    /// `CounterReset`, and returned by [`crate::check_counter`].
    #[error(
        "energy counter of {gpu} decreased from {from_mj} mJ to {to_mj} mJ (driver reload or GPU reset)"
    )]
    CounterReset {
        /// The GPU (`host/UUID`).
        gpu: String,
        /// The previous value, mJ.
        from_mj: f64,
        /// The new value, mJ.
        to_mj: f64,
    },
    /// A JSON body could not be encoded or decoded.
    #[error("cannot (de)serialise JSON {what}")]
    Json {
        /// What.
        what: String,
        /// The parser error.
        #[source]
        source: serde_json::Error,
    },
    /// A setting is out of range or missing.
    #[error("invalid `{field}`: {reason}")]
    Config {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Binding the agent's listening socket failed.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An `eai-power` error (sampler start, window computation).
    #[error(transparent)]
    Power(#[from] eai_power::Error),
}
