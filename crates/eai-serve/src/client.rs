//! The HTTP side: one [`Endpoint`] (URL, served model, key, timeouts, retries) and a blocking
//! client that posts JSON, retries what may succeed on a second try, and reads server-sent
//! events line by line.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::{Result, ServeError};

/// Where a served model lives and how to talk to it.
///
/// `base_url` is the server root or its `/v1` root (`http://127.0.0.1:8000` and
/// `http://127.0.0.1:8000/v1` both work); routes are appended as `/v1/completions`,
/// `/v1/chat/completions`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Endpoint {
    /// Server root, e.g. `http://127.0.0.1:8000`.
    pub base_url: String,
    /// The model name the server serves (`--served-model-name` in vLLM).
    pub model: String,
    /// Bearer token, if the server wants one.
    pub api_key: Option<String>,
    /// Whole-request timeout (connect, send, the full answer).
    pub timeout: Duration,
    /// Attempts per request (1 = no retry). 408, 429, 5xx, timeouts and transport failures
    /// are retried.
    pub max_attempts: u32,
    /// First backoff; doubled each retry, capped by [`Endpoint::max_backoff`]. A server's
    /// `Retry-After` (seconds) is honoured when larger.
    pub backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
}

impl Endpoint {
    /// An endpoint with lm-eval-like defaults: 600 s timeout, 3 attempts, backoff 1 s doubling
    /// to at most 10 s (lm-eval's `wait_exponential(multiplier=0.5, min=1, max=10)`).
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        let mut base: String = base_url.into().trim().trim_end_matches('/').to_string();
        for suffix in ["/completions", "/chat", "/v1"] {
            if let Some(s) = base.strip_suffix(suffix) {
                base = s.to_string();
            }
        }
        Self {
            base_url: base,
            model: model.into(),
            api_key: None,
            timeout: Duration::from_secs(600),
            max_attempts: 3,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
        }
    }

    /// Sets the bearer token.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Sets the whole-request timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Sets the attempts per request and the first backoff.
    pub fn retries(mut self, max_attempts: u32, backoff: Duration) -> Self {
        self.max_attempts = max_attempts.max(1);
        self.backoff = backoff;
        self
    }

    /// The full URL of a route such as `/v1/completions`.
    pub fn url(&self, route: &str) -> String {
        format!("{}{route}", self.base_url)
    }

    /// Checks the URL scheme (this build speaks plain HTTP).
    ///
    /// # Errors
    /// [`ServeError::Config`] for a non-`http://` URL or an empty model name.
    pub fn validate(&self) -> Result<()> {
        if !self.base_url.starts_with("http://") {
            return Err(ServeError::Config {
                field: "endpoint",
                reason: format!(
                    "`{}`: only http:// URLs are supported (put a TLS-terminating proxy such as \
                     `socat` or nginx in front of an https endpoint)",
                    self.base_url
                ),
            });
        }
        if self.model.trim().is_empty() {
            return Err(ServeError::Config {
                field: "served model",
                reason: "empty; pass the name the server serves (`GET /v1/models` lists it)".into(),
            });
        }
        Ok(())
    }
}

/// A blocking JSON client for one endpoint; cheap to clone and share across threads.
#[derive(Clone, Debug)]
pub struct Client {
    endpoint: Endpoint,
    agent: ureq::Agent,
}

/// Retry bookkeeping exposed for reports: how many attempts a call took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attempts(pub u32);

impl Client {
    /// A client for `endpoint` with a pool of `connections` keep-alive connections.
    ///
    /// # Errors
    /// [`ServeError::Config`] from [`Endpoint::validate`].
    pub fn new(endpoint: Endpoint, connections: usize) -> Result<Self> {
        endpoint.validate()?;
        let cfg = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(endpoint.timeout))
            .max_idle_connections(connections.max(1) * 2)
            .max_idle_connections_per_host(connections.max(1) * 2)
            .user_agent(concat!("eai-serve/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Self { endpoint, agent: cfg.into() })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn transport(&self, url: &str, e: ureq::Error) -> ServeError {
        match e {
            ureq::Error::Timeout(_) => {
                ServeError::Timeout { url: url.to_string(), after: self.endpoint.timeout }
            }
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                ServeError::Timeout { url: url.to_string(), after: self.endpoint.timeout }
            }
            other => ServeError::Transport { url: url.to_string(), reason: other.to_string() },
        }
    }

    fn send(&self, url: &str, body: &Value) -> Result<ureq::http::Response<ureq::Body>> {
        let mut req = self.agent.post(url).header("Content-Type", "application/json");
        if let Some(k) = &self.endpoint.api_key {
            req = req.header("Authorization", format!("Bearer {k}"));
        }
        req.send(body.to_string()).map_err(|e| self.transport(url, e))
    }

    fn status_error(url: &str, resp: &mut ureq::http::Response<ureq::Body>) -> ServeError {
        let status = resp.status().as_u16();
        let mut body = resp.body_mut().read_to_string().unwrap_or_default();
        if body.len() > 600 {
            let cut = (0..=600).rev().find(|&i| body.is_char_boundary(i)).unwrap_or(0);
            body.truncate(cut);
            body.push('…');
        }
        ServeError::Status { url: url.to_string(), status, body }
    }

    fn retry_after(resp: &ureq::http::Response<ureq::Body>) -> Option<Duration> {
        let v = resp.headers().get("retry-after")?.to_str().ok()?;
        v.trim().parse::<f64>().ok().and_then(|s| Duration::try_from_secs_f64(s).ok())
    }

    /// Runs `attempt` until it succeeds, fails for good, or attempts run out.
    fn with_retries<T>(
        &self,
        url: &str,
        mut attempt: impl FnMut() -> std::result::Result<T, (ServeError, Option<Duration>)>,
    ) -> Result<(T, Attempts)> {
        let max = self.endpoint.max_attempts.max(1);
        let mut wait = self.endpoint.backoff;
        for n in 1..=max {
            match attempt() {
                Ok(v) => return Ok((v, Attempts(n))),
                Err((e, retry_after)) => {
                    if !e.retryable() {
                        return Err(e);
                    }
                    if n == max {
                        return Err(if max == 1 {
                            e
                        } else {
                            ServeError::RetriesExhausted {
                                url: url.to_string(),
                                attempts: n,
                                last: Box::new(e),
                            }
                        });
                    }
                    let pause = retry_after.map_or(wait, |r| r.max(wait));
                    tracing::warn!(%url, attempt = n, error = %e, ?pause, "retrying");
                    std::thread::sleep(pause.min(self.endpoint.max_backoff.max(wait)));
                    wait = (wait * 2).min(self.endpoint.max_backoff);
                }
            }
        }
        unreachable_attempts(url)
    }

    /// POSTs JSON to `route` and parses the JSON answer, with retries.
    ///
    /// # Errors
    /// [`ServeError::Status`], [`ServeError::Timeout`], [`ServeError::Transport`],
    /// [`ServeError::RetriesExhausted`], [`ServeError::BadResponse`] for a non-JSON body.
    pub fn post_json(&self, route: &str, body: &Value) -> Result<Value> {
        self.post_json_counted(route, body).map(|(v, _)| v)
    }

    /// As [`Client::post_json`], also returning the attempts it took.
    ///
    /// # Errors
    /// As [`Client::post_json`].
    pub fn post_json_counted(&self, route: &str, body: &Value) -> Result<(Value, Attempts)> {
        let url = self.endpoint.url(route);
        self.with_retries(&url, || {
            let mut resp = self.send(&url, body).map_err(|e| (e, None))?;
            if !resp.status().is_success() {
                let ra = Self::retry_after(&resp);
                return Err((Self::status_error(&url, &mut resp), ra));
            }
            let text = resp
                .body_mut()
                .with_config()
                .limit(1 << 30)
                .read_to_string()
                .map_err(|e| (self.transport(&url, e), None))?;
            serde_json::from_str::<Value>(&text).map_err(|e| {
                (
                    ServeError::BadResponse {
                        url: url.clone(),
                        field: "(body)".into(),
                        reason: format!("not JSON: {e}"),
                    },
                    None,
                )
            })
        })
    }

    /// POSTs JSON to `route` and hands each server-sent event's `data:` payload to `on_data`
    /// with its arrival time, until `[DONE]` or the end of the stream. The connection phase
    /// (up to the response headers) is retried; a stream that breaks midway is not, since
    /// its tokens were already timed.
    ///
    /// # Errors
    /// As [`Client::post_json`]; [`ServeError::Transport`] for a stream that breaks.
    pub fn post_stream(
        &self,
        route: &str,
        body: &Value,
        mut on_data: impl FnMut(&str, Instant) -> Result<()>,
    ) -> Result<Attempts> {
        let url = self.endpoint.url(route);
        let (resp, attempts) = self.with_retries(&url, || {
            let mut resp = self.send(&url, body).map_err(|e| (e, None))?;
            if !resp.status().is_success() {
                let ra = Self::retry_after(&resp);
                return Err((Self::status_error(&url, &mut resp), ra));
            }
            Ok(resp)
        })?;
        let mut reader = BufReader::new(resp.into_body().into_reader());
        let mut line = String::new();
        let mut data = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line).map_err(|e| {
                if e.kind() == std::io::ErrorKind::TimedOut {
                    ServeError::Timeout { url: url.clone(), after: self.endpoint.timeout }
                } else {
                    ServeError::Transport { url: url.clone(), reason: format!("stream: {e}") }
                }
            })?;
            let now = Instant::now();
            let l = line.trim_end_matches(['\n', '\r']);
            if n == 0 || l.is_empty() {
                // End of one event (blank line) or of the stream.
                if !data.is_empty() {
                    if data.trim() == "[DONE]" {
                        return Ok(attempts);
                    }
                    on_data(&data, now)?;
                    data.clear();
                }
                if n == 0 {
                    return Ok(attempts);
                }
                continue;
            }
            if let Some(rest) = l.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            }
            // `event:`, `id:`, `retry:` and comments (`:`) carry nothing we use.
        }
    }
}

fn unreachable_attempts<T>(url: &str) -> Result<T> {
    Err(ServeError::Config { field: "retries", reason: format!("no attempt was made for {url}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_normalises_routes() {
        for u in [
            "http://h:1",
            "http://h:1/",
            "http://h:1/v1",
            "http://h:1/v1/",
            "http://h:1/v1/completions",
            "http://h:1/v1/chat/completions",
        ] {
            assert_eq!(Endpoint::new(u, "m").url("/v1/completions"), "http://h:1/v1/completions");
        }
        assert!(Endpoint::new("https://h", "m").validate().is_err());
        assert!(Endpoint::new("http://h", " ").validate().is_err());
    }

    #[test]
    fn retryable_statuses() {
        let s = |status| ServeError::Status { url: "u".into(), status, body: String::new() };
        assert!(s(429).retryable() && s(500).retryable() && s(503).retryable());
        assert!(!s(400).retryable() && !s(404).retryable() && !s(401).retryable());
    }
}
