//! The seam between an inference engine and the benchmark tasks.
//!
//! Requests mirror EleutherAI's lm-evaluation-harness: a multiple-choice item becomes one
//! [`LoglikelihoodRequest`] per choice (shared context, one continuation each); a generative item
//! becomes one [`GenerateRequest`]. Calls are batched so an engine can batch internally.

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
    fn forward_passes(&self) -> Option<u64> {
        (**self).forward_passes()
    }
    fn truncated_requests(&self) -> Option<u64> {
        (**self).truncated_requests()
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
    fn forward_passes(&self) -> Option<u64> {
        (**self).forward_passes()
    }
    fn truncated_requests(&self) -> Option<u64> {
        (**self).truncated_requests()
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
        assert_eq!(GenerateRequest::new("x", vec![]).max_gen_toks, 256);
    }
}
