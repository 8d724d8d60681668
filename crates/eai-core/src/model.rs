//! The seam between an inference engine and the benchmark tasks.
//!
//! Requests mirror EleutherAI's lm-evaluation-harness: a multiple-choice item becomes one
//! [`LoglikelihoodRequest`] per choice (shared context, one continuation each); a generative item
//! becomes one [`GenerateRequest`]. Calls are batched so an engine can batch internally.

use crate::units::Seconds;

/// Score `continuation` given `context`: lm-eval's `loglikelihood` request.
///
/// The engine tokenizes `context + continuation` and splits the tokens as lm-eval does
/// (trailing spaces of the context move to the continuation; see `eai-eval`'s docs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LoglikelihoodRequest {
    /// The prompt, few-shot examples included.
    pub context: String,
    /// The text whose log-probability is wanted (e.g. `" B"` or `" Paris"`).
    pub continuation: String,
}

impl LoglikelihoodRequest {
    /// A request for `log p(continuation | context)`.
    pub fn new(context: impl Into<String>, continuation: impl Into<String>) -> Self {
        Self { context: context.into(), continuation: continuation.into() }
    }
}

/// The answer to a [`LoglikelihoodRequest`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Loglikelihood {
    /// Sum of the natural-log probabilities of the continuation tokens.
    pub logprob: f64,
    /// `true` iff every continuation token is the argmax at its position (teacher forcing).
    pub is_greedy: bool,
    /// Number of continuation tokens scored, when the engine knows it.
    pub tokens: Option<u32>,
}

impl Loglikelihood {
    /// A result without a token count.
    pub fn new(logprob: f64, is_greedy: bool) -> Self {
        Self { logprob, is_greedy, tokens: None }
    }
}

/// Generate from `context` until a stop string or `max_gen_toks`: lm-eval's `generate_until`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GenerateRequest {
    /// The prompt.
    pub context: String,
    /// Stop strings; the returned text is cut before the first one found. The engine adds its own
    /// end-of-sequence token as a stop condition.
    pub until: Vec<String>,
    /// Maximum number of new tokens (lm-eval's default is 256).
    pub max_gen_toks: usize,
}

impl GenerateRequest {
    /// lm-eval's default `max_gen_toks`.
    pub const DEFAULT_MAX_GEN_TOKS: usize = 256;

    /// Greedy generation with the given stop strings and lm-eval's default length limit.
    pub fn new(context: impl Into<String>, until: Vec<String>) -> Self {
        Self { context: context.into(), until, max_gen_toks: Self::DEFAULT_MAX_GEN_TOKS }
    }

    /// Sets the maximum number of new tokens.
    pub fn max_gen_toks(mut self, n: usize) -> Self {
        self.max_gen_toks = n;
        self
    }
}

/// The answer to a [`GenerateRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Generation {
    /// Generated text with the stop string and everything after it removed.
    pub text: String,
    /// Number of tokens the engine generated (including any cut off by a stop string), when known.
    pub tokens: Option<u32>,
}

impl Generation {
    /// A generation without a token count.
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into(), tokens: None }
    }
}

/// Score a whole text, conditioned only on the engine's prefix token: lm-eval's
/// `loglikelihood_rolling` request, used by perplexity tasks (wikitext).
///
/// The engine encodes `text` as it encodes any request (lm-eval's `tok_encode`), cuts the tokens
/// into windows of at most its maximum length, conditions the first window on its prefix token (BOS, else EOS) and each later one
/// on as many preceding tokens as fit, so that every token is predicted exactly once
/// (lm-eval's `get_rolling_token_windows` with `context_len = 1` and `make_disjoint_window`),
/// and sums the log-probabilities.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RollingRequest {
    /// The text to score.
    pub text: String,
}

impl RollingRequest {
    /// A request for `log p(text)`.
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into() }
    }
}

/// The answer to a [`RollingRequest`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct RollingLoglikelihood {
    /// Sum of the natural-log probabilities of every token of the text.
    pub logprob: f64,
    /// Number of tokens scored, when the engine knows it.
    pub tokens: Option<u32>,
    /// Number of windows (model inputs) the text was cut into, when the engine knows it.
    pub windows: Option<u32>,
}

impl RollingLoglikelihood {
    /// A result without counts.
    pub fn new(logprob: f64) -> Self {
        Self { logprob, tokens: None, windows: None }
    }

    /// Sets the token and window counts.
    pub fn counts(mut self, tokens: u32, windows: u32) -> Self {
        self.tokens = Some(tokens);
        self.windows = Some(windows);
        self
    }
}

/// The kinds of request a [`LanguageModel`] may serve: the argument of
/// [`LanguageModel::supports`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum RequestKind {
    /// [`LanguageModel::loglikelihood`].
    Loglikelihood,
    /// [`LanguageModel::loglikelihood_rolling`].
    LoglikelihoodRolling,
    /// [`LanguageModel::generate_until`].
    GenerateUntil,
}

impl RequestKind {
    /// lm-eval's name of the request type (`loglikelihood`, `loglikelihood_rolling`,
    /// `generate_until`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Loglikelihood => "loglikelihood",
            Self::LoglikelihoodRolling => "loglikelihood_rolling",
            Self::GenerateUntil => "generate_until",
        }
    }
}

/// What an engine says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ModelInfo {
    /// A human-readable name (e.g. `SmolLM2-135M-Instruct`).
    pub name: String,
    /// Maximum context length in tokens, when known.
    pub max_context: Option<usize>,
    /// A label for the numeric scheme the engine runs (e.g. `fp16`, `int8-w8a8`), when known.
    pub scheme: Option<String>,
    /// Where it runs (e.g. `cpu`, `cuda:0 NVIDIA H100`), when known.
    pub device: Option<String>,
    /// Whether the engine prepends the tokenizer's BOS token when encoding requests, when known.
    /// lm-eval's default changed across versions (none before v0.4.9.2, the tokenizer's default
    /// since) and it moves Llama-family scores, so evaluations record it.
    pub add_bos_token: Option<bool>,
}

impl ModelInfo {
    /// Info with only a name.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            max_context: None,
            scheme: None,
            device: None,
            add_bos_token: None,
        }
    }

    /// Sets the maximum context length.
    pub fn max_context(mut self, n: usize) -> Self {
        self.max_context = Some(n);
        self
    }

    /// Sets the scheme label.
    pub fn scheme(mut self, s: impl Into<String>) -> Self {
        self.scheme = Some(s.into());
        self
    }

    /// Sets the device label.
    pub fn device(mut self, d: impl Into<String>) -> Self {
        self.device = Some(d.into());
        self
    }

    /// Records whether the engine prepends BOS to every request.
    pub fn add_bos_token(mut self, on: bool) -> Self {
        self.add_bos_token = Some(on);
        self
    }
}

/// How an engine wants the requests of a task split into calls: the answer to
/// [`LanguageModel::batch_hint`].
///
/// A caller (e.g. `eai-eval`'s `Evaluator`) sends at most this many requests per call; `None` in
/// a field means "no limit": send everything of that kind at once and let the engine batch
/// internally (it packs forward passes to its own token budget, can overlap host work with device
/// work, and can keep decoding slots full). Keep shared contexts in one call either way.
///
/// ```
/// use eai_core::BatchHint;
/// let gpu = BatchHint::unlimited();
/// assert_eq!(gpu.loglikelihood_requests, None);
/// let cpu = BatchHint::requests(512).generate_requests(Some(8));
/// assert_eq!((cpu.loglikelihood_requests, cpu.generate_requests), (Some(512), Some(8)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct BatchHint {
    /// Most log-likelihood requests per call (`None`: no limit, the whole task in one call).
    pub loglikelihood_requests: Option<usize>,
    /// Most generation requests per call (`None`: no limit, the whole task in one call).
    pub generate_requests: Option<usize>,
}

impl BatchHint {
    /// No limit on either kind: every request of a task in one call.
    pub fn unlimited() -> Self {
        Self { loglikelihood_requests: None, generate_requests: None }
    }

    /// At most `n` requests (at least 1) of either kind per call.
    pub fn requests(n: usize) -> Self {
        let n = Some(n.max(1));
        Self { loglikelihood_requests: n, generate_requests: n }
    }

    /// Sets the log-likelihood limit (`None`: no limit; `Some(0)` counts as 1).
    pub fn loglikelihood_requests(mut self, n: Option<usize>) -> Self {
        self.loglikelihood_requests = n.map(|n| n.max(1));
        self
    }

    /// Sets the generation limit (`None`: no limit; `Some(0)` counts as 1).
    pub fn generate_requests(mut self, n: Option<usize>) -> Self {
        self.generate_requests = n.map(|n| n.max(1));
        self
    }
}

/// Where an engine's time went, cumulative since it was built: the answer to
/// [`LanguageModel::engine_time`].
///
/// Both are wall-clock seconds of the thread that called the engine, inside its calls, so
/// `tokenize + compute` is the time spent inside `loglikelihood`/`generate_until`. Tokenization
/// that the engine overlaps with device work (on another thread) and that the caller never waits
/// for counts as `compute`, since it costs no time. Subtract two readings to time one stretch of
/// work ([`EngineTime::since`]).
///
/// ```
/// use eai_core::{EngineTime, Seconds};
/// let before = EngineTime::new(Seconds(1.0), Seconds(4.0));
/// let after = EngineTime::new(Seconds(1.5), Seconds(6.0));
/// let d = after.since(before);
/// assert_eq!((d.tokenize, d.compute), (Seconds(0.5), Seconds(2.0)));
/// assert_eq!(d.total(), Seconds(2.5));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct EngineTime {
    /// Turning text into token ids (and building the engine's inputs from them), not hidden
    /// behind device work.
    pub tokenize: Seconds,
    /// Everything else inside the calls: forward passes, transfers, scoring the logits, decoding.
    pub compute: Seconds,
}

impl EngineTime {
    /// A reading.
    pub fn new(tokenize: Seconds, compute: Seconds) -> Self {
        Self { tokenize, compute }
    }

    /// `tokenize + compute`: time inside the engine's calls.
    pub fn total(self) -> Seconds {
        self.tokenize + self.compute
    }

    /// The time between an earlier reading and this one (negative parts clamp to zero).
    pub fn since(self, earlier: EngineTime) -> EngineTime {
        let d = |a: Seconds, b: Seconds| Seconds((a.0 - b.0).max(0.0));
        EngineTime {
            tokenize: d(self.tokenize, earlier.tokenize),
            compute: d(self.compute, earlier.compute),
        }
    }
}

/// Why an engine could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The engine does not support this kind of request.
    #[error("{model} does not support {what}")]
    Unsupported {
        /// The engine's name.
        model: String,
        /// What was asked (e.g. `generate_until`).
        what: String,
    },
    /// A request cannot be served as given (e.g. longer than the context window).
    #[error("request {index} is invalid: {reason}")]
    InvalidRequest {
        /// Index of the request in the batch.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The engine returned a different number of answers than requests.
    #[error("engine returned {got} answers for {expected} requests")]
    CountMismatch {
        /// Requests sent.
        expected: usize,
        /// Answers returned.
        got: usize,
    },
    /// The engine failed; the source says why.
    #[error("{context}")]
    Backend {
        /// What the engine was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ModelError {
    /// Wraps an engine's own error.
    pub fn backend(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Backend { context: context.into(), source: source.into() }
    }
}

/// An inference engine that benchmark tasks can score. Object safe.
///
/// Three required methods; anyone with their own engine implements them and gets every task in
/// `eai-eval`. Implementations must return exactly one answer per request, in request order.
pub trait LanguageModel {
    /// Name, context length, scheme, device.
    fn info(&self) -> ModelInfo;

    /// Scores each `(context, continuation)` pair.
    ///
    /// # Errors
    /// When the engine fails or a request cannot be served.
    fn loglikelihood(
        &mut self,
        reqs: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, ModelError>;

    /// Generates greedily for each request until a stop string, EOS or `max_gen_toks`.
    ///
    /// # Errors
    /// When the engine fails or a request cannot be served.
    fn generate_until(&mut self, reqs: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError>;

    /// Scores whole texts (lm-eval's `loglikelihood_rolling`; see [`RollingRequest`]).
    ///
    /// The default answers [`ModelError::Unsupported`]: an engine that implements it should
    /// also answer `Some(true)` to [`LanguageModel::supports`] for
    /// [`RequestKind::LoglikelihoodRolling`].
    ///
    /// # Errors
    /// [`ModelError::Unsupported`] unless the engine implements it; otherwise when the engine
    /// fails or a request cannot be served.
    fn loglikelihood_rolling(
        &mut self,
        reqs: &[RollingRequest],
    ) -> Result<Vec<RollingLoglikelihood>, ModelError> {
        let _ = reqs;
        Err(ModelError::Unsupported {
            model: self.info().name,
            what: RequestKind::LoglikelihoodRolling.name().to_owned(),
        })
    }

    /// Whether the engine serves this kind of request (a capability query: `None` means
    /// "unknown", and is never wrong). The default says yes for the two required kinds and
    /// "unknown" for the rolling one, so a caller that needs rolling log-likelihoods asks, or
    /// simply calls and handles [`ModelError::Unsupported`].
    fn supports(&self, kind: RequestKind) -> Option<bool> {
        match kind {
            RequestKind::Loglikelihood | RequestKind::GenerateUntil => Some(true),
            RequestKind::LoglikelihoodRolling => None,
        }
    }

    /// Number of forward passes the engine has run so far, if it counts them (a capability query:
    /// it is never wrong to return `None`). Lets a caller report passes next to requests, e.g.
    /// when an engine de-duplicates shared contexts.
    fn forward_passes(&self) -> Option<u64> {
        None
    }

    /// Number of requests so far whose input was longer than the engine's context and was
    /// left-truncated to it (as lm-eval does), if the engine counts them (a capability query:
    /// `None` is never wrong).
    fn truncated_requests(&self) -> Option<u64> {
        None
    }

    /// How the engine wants a task's requests split into calls (a capability query: it is never
    /// wrong to return `None`, which means "unknown"; callers then use their own default,
    /// `eai-eval`'s being 64 requests per call). Engines that batch internally should answer, so
    /// that callers do not cut their work into small calls. See [`BatchHint`].
    fn batch_hint(&self) -> Option<BatchHint> {
        None
    }

    /// Cumulative time spent inside the engine's calls, split into tokenization and compute, if
    /// the engine measures it (never wrong to return `None`). Callers subtract two readings to
    /// see where a task's time went. See [`EngineTime`].
    fn engine_time(&self) -> Option<EngineTime> {
        None
    }
}

impl<M: LanguageModel + ?Sized> LanguageModel for &mut M {
    fn info(&self) -> ModelInfo {
        (**self).info()
    }
    fn loglikelihood(
        &mut self,
        reqs: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, ModelError> {
        (**self).loglikelihood(reqs)
    }
    fn generate_until(&mut self, reqs: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
        (**self).generate_until(reqs)
    }
    fn loglikelihood_rolling(
        &mut self,
        reqs: &[RollingRequest],
    ) -> Result<Vec<RollingLoglikelihood>, ModelError> {
        (**self).loglikelihood_rolling(reqs)
    }
    fn supports(&self, kind: RequestKind) -> Option<bool> {
        (**self).supports(kind)
    }
    fn forward_passes(&self) -> Option<u64> {
        (**self).forward_passes()
    }
    fn truncated_requests(&self) -> Option<u64> {
        (**self).truncated_requests()
    }
    fn batch_hint(&self) -> Option<BatchHint> {
        (**self).batch_hint()
    }
    fn engine_time(&self) -> Option<EngineTime> {
        (**self).engine_time()
    }
}

impl<M: LanguageModel + ?Sized> LanguageModel for Box<M> {
    fn info(&self) -> ModelInfo {
        (**self).info()
    }
    fn loglikelihood(
        &mut self,
        reqs: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, ModelError> {
        (**self).loglikelihood(reqs)
    }
    fn generate_until(&mut self, reqs: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
        (**self).generate_until(reqs)
    }
    fn loglikelihood_rolling(
        &mut self,
        reqs: &[RollingRequest],
    ) -> Result<Vec<RollingLoglikelihood>, ModelError> {
        (**self).loglikelihood_rolling(reqs)
    }
    fn supports(&self, kind: RequestKind) -> Option<bool> {
        (**self).supports(kind)
    }
    fn forward_passes(&self) -> Option<u64> {
        (**self).forward_passes()
    }
    fn truncated_requests(&self) -> Option<u64> {
        (**self).truncated_requests()
    }
    fn batch_hint(&self) -> Option<BatchHint> {
        (**self).batch_hint()
    }
    fn engine_time(&self) -> Option<EngineTime> {
        (**self).engine_time()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl LanguageModel for Echo {
        fn info(&self) -> ModelInfo {
            ModelInfo::new("echo")
        }
        fn loglikelihood(
            &mut self,
            reqs: &[LoglikelihoodRequest],
        ) -> Result<Vec<Loglikelihood>, ModelError> {
            Ok(reqs
                .iter()
                .map(|r| Loglikelihood::new(-(r.continuation.len() as f64), true))
                .collect())
        }
        fn generate_until(
            &mut self,
            reqs: &[GenerateRequest],
        ) -> Result<Vec<Generation>, ModelError> {
            Ok(reqs.iter().map(|r| Generation::new(r.context.clone())).collect())
        }
    }

    #[test]
    fn object_safe_and_forwarding() {
        let mut boxed: Box<dyn LanguageModel> = Box::new(Echo);
        let out = boxed.loglikelihood(&[LoglikelihoodRequest::new("a", " bc")]).unwrap();
        assert_eq!(out[0].logprob, -3.0);
        let mut e = Echo;
        let mut r: &mut dyn LanguageModel = &mut e;
        let g = (&mut r).generate_until(&[GenerateRequest::new("x", vec![])]).unwrap();
        assert_eq!(g[0].text, "x");
        assert_eq!(r.forward_passes(), None);
        assert_eq!(r.batch_hint(), None);
        assert_eq!(boxed.engine_time(), None);
        assert_eq!(GenerateRequest::new("x", vec![]).max_gen_toks, 256);
        // Rolling log-likelihoods: unsupported by default, through every forwarding impl.
        assert_eq!(boxed.supports(RequestKind::LoglikelihoodRolling), None);
        assert_eq!(r.supports(RequestKind::Loglikelihood), Some(true));
        let err = boxed.loglikelihood_rolling(&[RollingRequest::new("abc")]).unwrap_err();
        assert!(
            matches!(&err, ModelError::Unsupported { model, what }
                if model == "echo" && what == "loglikelihood_rolling"),
            "{err}"
        );
        assert!((&mut r).loglikelihood_rolling(&[]).is_err());
    }
}
