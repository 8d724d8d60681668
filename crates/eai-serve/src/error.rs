//! Typed errors: every one names the endpoint (and, where it applies, the request).

use std::time::Duration;

/// Why talking to a server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The server answered with an error status (after retries for 429 and 5xx).
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the response body (the server's own message).
        body: String,
    },
    /// The request did not complete in time.
    #[error("{url}: no complete answer within {after:?}")]
    Timeout {
        /// The URL requested.
        url: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The connection failed (refused, reset, DNS, a malformed HTTP answer).
    #[error("{url}: {reason}")]
    Transport {
        /// The URL requested.
        url: String,
        /// What the HTTP client said.
        reason: String,
    },
    /// Every attempt failed; `last` is the final failure.
    #[error("{url}: gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// The URL requested.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        last: Box<ServeError>,
    },
    /// The server returned no log-probabilities of the prompt tokens, which scoring needs
    /// (`echo` with `logprobs` on `/v1/completions`). Chat-only APIs never return them.
    #[error(
        "{url}: model `{model}` returned no prompt log-probabilities ({detail}); log-likelihood \
         tasks need a server whose /v1/completions honours `echo: true` with `logprobs` (vLLM, \
         SGLang, TGI's completions route; not chat-only APIs)"
    )]
    NoPromptLogprobs {
        /// The URL requested.
        url: String,
        /// The served model name.
        model: String,
        /// What was missing.
        detail: String,
    },
    /// A response was valid JSON but not the expected shape.
    #[error("{url}: bad response: field `{field}`: {reason}")]
    BadResponse {
        /// The URL requested.
        url: String,
        /// The JSON path of the offending field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The client-side tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A setting is invalid.
    #[error("{field}: {reason}")]
    Config {
        /// The setting.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
}

impl ServeError {
    /// Whether a retry may succeed: 408, 429, 5xx, timeouts, transport failures.
    pub fn retryable(&self) -> bool {
        match self {
            ServeError::Status { status, .. } => {
                *status == 408 || *status == 429 || (500..600).contains(status)
            }
            ServeError::Timeout { .. } | ServeError::Transport { .. } => true,
            _ => false,
        }
    }
}

/// `Result` with [`ServeError`].
pub type Result<T, E = ServeError> = std::result::Result<T, E>;
