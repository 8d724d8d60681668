//! [`OpenAiModel`]: any OpenAI-compatible server as an `eai_core::LanguageModel`, scored the way
//! lm-evaluation-harness's `local-completions` model scores it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use eai_core::{
    GenerateRequest, Generation, LanguageModel, Loglikelihood, LoglikelihoodRequest, ModelError,
    ModelInfo,
};
use serde_json::{Value, json};

use crate::client::{Client, Endpoint};
use crate::error::{Result, ServeError};
use crate::logprobs::TokenLogprobs;

/// A tokenizer on the client side: the same one the server runs, so that the client can send
/// token ids and knows where the context ends (lm-eval's default, `tokenized_requests=True`).
///
/// The facade implements it for `eai-model`'s tokenizer (GGUF or `tokenizer.json`).
pub trait PairTokenizer: Send + Sync {
    /// Splits a request into context and continuation ids as lm-eval's `_encode_pair` does
    /// (trailing whitespace of the context moves to the continuation; `whole[len(ctx):]`).
    ///
    /// # Errors
    /// A message saying why the text cannot be encoded.
    fn encode_pair(
        &self,
        context: &str,
        continuation: &str,
    ) -> std::result::Result<(Vec<u32>, Vec<u32>), String>;

    /// Encodes a generation prompt (special tokens as the scoring path adds them).
    ///
    /// # Errors
    /// A message saying why the text cannot be encoded.
    fn encode(&self, text: &str) -> std::result::Result<Vec<u32>, String>;

    /// Whether encoding prepends BOS, when known (recorded with results).
    fn adds_bos(&self) -> Option<bool> {
        None
    }
}

/// Who tokenizes.
#[derive(Clone)]
#[non_exhaustive]
pub enum Tokenization {
    /// The client tokenizes and sends token ids (lm-eval's default; exact context split).
    Client(Arc<dyn PairTokenizer>),
    /// The server tokenizes the text; the continuation is the echoed prompt tokens that spell
    /// its last characters (a token straddling the boundary counts as continuation).
    Server,
}

impl std::fmt::Debug for Tokenization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tokenization::Client(_) => f.write_str("Client(..)"),
            Tokenization::Server => f.write_str("Server"),
        }
    }
}

/// Which route generates text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum GenerationRoute {
    /// `/v1/completions` with the raw prompt (what lm-eval's `local-completions` does).
    #[default]
    Completions,
    /// `/v1/chat/completions`, the prompt as one user message (the server applies its chat
    /// template; scores differ from the plain-text protocol).
    Chat,
}

/// How requests are sent.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Who tokenizes.
    pub tokenization: Tokenization,
    /// Prompts per HTTP request for scoring (vLLM and SGLang take a list; llama.cpp's
    /// OpenAI route takes one). Default 1.
    pub batch_size: usize,
    /// HTTP requests in flight at once (the server batches them). Default 8.
    pub concurrency: usize,
    /// Longest prompt in tokens; longer prompts are left-truncated as lm-eval does (its API
    /// default is 2048). Applies when the client tokenizes.
    pub max_length: usize,
    /// The generation route.
    pub generation: GenerationRoute,
    /// The `seed` lm-eval sends (1234).
    pub seed: u64,
    /// A label for the deployment (`fp16`, `awq-int4`, …), recorded as the scheme.
    pub label: Option<String>,
}

impl ServeOptions {
    /// Defaults with the given tokenization.
    pub fn new(tokenization: Tokenization) -> Self {
        Self {
            tokenization,
            batch_size: 1,
            concurrency: 8,
            max_length: 2048,
            generation: GenerationRoute::Completions,
            seed: 1234,
            label: None,
        }
    }
}

/// An OpenAI-compatible server as a [`LanguageModel`].
///
/// ```no_run
/// use eai_core::{LanguageModel, LoglikelihoodRequest};
/// use eai_serve::{Endpoint, OpenAiModel, ServeOptions, Tokenization};
///
/// let ep = Endpoint::new("http://127.0.0.1:8000", "HuggingFaceTB/SmolLM2-135M-Instruct");
/// let mut m = OpenAiModel::new(ep, ServeOptions::new(Tokenization::Server))?;
/// let ll = m.loglikelihood(&[LoglikelihoodRequest::new("The capital of France is", " Paris")])?;
/// println!("{} {}", ll[0].logprob, ll[0].is_greedy);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct OpenAiModel {
    client: Client,
    opts: ServeOptions,
    requests_sent: Arc<AtomicUsize>,
}

/// One prompt ready to send for scoring.
#[derive(Clone, Debug)]
struct Scored {
    prompt: Value,
    /// Client mode: context tokens and prompt tokens. Server mode: continuation chars, 0.
    ctxlen: usize,
    prompt_len: usize,
}

impl OpenAiModel {
    /// A model behind `endpoint`.
    ///
    /// # Errors
    /// [`ServeError::Config`] for a bad URL or zero batch size/concurrency.
    pub fn new(endpoint: Endpoint, opts: ServeOptions) -> Result<Self> {
        if opts.batch_size == 0 || opts.concurrency == 0 || opts.max_length < 2 {
            return Err(ServeError::Config {
                field: "serve options",
                reason: "batch size and concurrency must be ≥ 1 and max length ≥ 2".into(),
            });
        }
        let client = Client::new(endpoint, opts.concurrency)?;
        Ok(Self { client, opts, requests_sent: Arc::new(AtomicUsize::new(0)) })
    }

    /// The HTTP client (for the load generator or your own calls).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// HTTP requests sent so far (retries not counted).
    pub fn requests_sent(&self) -> usize {
        self.requests_sent.load(Ordering::Relaxed)
    }

    fn url(&self, route: &str) -> String {
        self.client.endpoint().url(route)
    }

    fn model(&self) -> &str {
        &self.client.endpoint().model
    }

    fn prepare(&self, i: usize, r: &LoglikelihoodRequest) -> Result<Scored, ModelError> {
        let invalid = |reason: String| ModelError::InvalidRequest { index: i, reason };
        match &self.opts.tokenization {
            Tokenization::Client(tok) => {
                let (ctx, cont) = tok.encode_pair(&r.context, &r.continuation).map_err(invalid)?;
                if ctx.is_empty() || cont.is_empty() {
                    return Err(invalid("empty context or continuation after tokenizing".into()));
                }
                let max = self.opts.max_length;
                if cont.len() >= max {
                    return Err(invalid(format!(
                        "continuation of {} tokens does not fit max length {max}",
                        cont.len()
                    )));
                }
                // lm-eval: inp = (ctx + cont)[-max_length:], ctxlen shrinks by what was cut.
                let total = ctx.len() + cont.len();
                let cut = total.saturating_sub(max);
                let ids: Vec<u32> = ctx.iter().chain(&cont).skip(cut).copied().collect();
                Ok(Scored { prompt: json!(ids), ctxlen: ctx.len() - cut, prompt_len: ids.len() })
            }
            Tokenization::Server => {
                if r.context.is_empty() {
                    return Err(invalid(
                        "empty context needs a client tokenizer (its BOS/EOS prefix token)".into(),
                    ));
                }
                let trimmed = r.context.trim_end_matches(py_space);
                let cont = format!("{}{}", &r.context[trimmed.len()..], r.continuation);
                if cont.is_empty() {
                    return Err(invalid("empty continuation".into()));
                }
                let text = format!("{trimmed}{cont}");
                Ok(Scored { prompt: json!(text), ctxlen: cont.chars().count(), prompt_len: 0 })
            }
        }
    }

    /// Scores one batch of prepared prompts in one HTTP request.
    fn score_batch(&self, batch: &[Scored]) -> Result<Vec<Loglikelihood>> {
        let url = self.url("/v1/completions");
        let prompt = if batch.len() == 1 {
            batch[0].prompt.clone()
        } else {
            Value::Array(batch.iter().map(|s| s.prompt.clone()).collect())
        };
        let body = json!({
            "model": self.model(),
            "prompt": prompt,
            "temperature": 0,
            "max_tokens": 1,
            "logprobs": 1,
            "seed": self.opts.seed,
            "echo": true,
        });
        self.requests_sent.fetch_add(1, Ordering::Relaxed);
        let resp = self.client.post_json("/v1/completions", &body)?;
        let choices = sorted_choices(&resp, &url, batch.len())?;
        let server = matches!(self.opts.tokenization, Tokenization::Server);
        // Entries after the prompt: the generated token (none when the server stopped at EOS
        // and says so in `usage`, which is per request, so read only for one prompt).
        let generated = (batch.len() == 1)
            .then(|| resp.pointer("/usage/completion_tokens").and_then(Value::as_u64))
            .flatten()
            .map_or(1, |g| g.min(1) as usize);
        let mut out = Vec::with_capacity(batch.len());
        for (s, c) in batch.iter().zip(choices) {
            let t = TokenLogprobs::from_choice(c, &url, self.model())?;
            let n = t.token_logprobs.len();
            let (ctxlen, prompt_len) = if server {
                let end = n.checked_sub(generated).filter(|&e| e >= 2).ok_or_else(|| {
                    ServeError::NoPromptLogprobs {
                        url: url.clone(),
                        model: self.model().to_string(),
                        detail: format!("{n} log-probabilities: the prompt was not echoed"),
                    }
                })?;
                let k = t.suffix_tokens(s.ctxlen, end, &url)?;
                if k >= end {
                    return Err(ServeError::BadResponse {
                        url: url.clone(),
                        field: "logprobs.tokens".into(),
                        reason: "the continuation covers the whole echoed prompt".into(),
                    });
                }
                (end - k, end)
            } else {
                if n < s.prompt_len + generated {
                    return Err(ServeError::NoPromptLogprobs {
                        url: url.clone(),
                        model: self.model().to_string(),
                        detail: format!(
                            "{n} log-probabilities for a prompt of {} tokens (was the prompt echoed?)",
                            s.prompt_len
                        ),
                    });
                }
                if n > s.prompt_len + generated {
                    return Err(ServeError::BadResponse {
                        url: url.clone(),
                        field: "logprobs.token_logprobs".into(),
                        reason: format!(
                            "{n} entries for a prompt of {} tokens and {generated} generated (did \
                             the server add tokens to the prompt?)",
                            s.prompt_len
                        ),
                    });
                }
                (s.ctxlen, s.prompt_len)
            };
            let (lp, greedy, k) = t.score(ctxlen, prompt_len, &url, self.model())?;
            let mut l = Loglikelihood::new(lp, greedy);
            l.tokens = Some(k);
            out.push(l);
        }
        Ok(out)
    }

    fn generate_one(&self, i: usize, r: &GenerateRequest) -> Result<Generation, ModelError> {
        let until: Vec<&str> =
            r.until.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
        let (route, mut body) = match self.opts.generation {
            GenerationRoute::Completions => {
                let prompt = match &self.opts.tokenization {
                    Tokenization::Client(tok) => {
                        let mut ids = tok
                            .encode(&r.context)
                            .map_err(|reason| ModelError::InvalidRequest { index: i, reason })?;
                        let keep = self.opts.max_length.saturating_sub(r.max_gen_toks).max(1);
                        if ids.len() > keep {
                            ids.drain(..ids.len() - keep);
                        }
                        json!(ids)
                    }
                    Tokenization::Server => json!(r.context),
                };
                ("/v1/completions", json!({"model": self.model(), "prompt": prompt}))
            }
            GenerationRoute::Chat => (
                "/v1/chat/completions",
                json!({"model": self.model(),
                       "messages": [{"role": "user", "content": r.context}]}),
            ),
        };
        body["max_tokens"] = json!(r.max_gen_toks);
        body["temperature"] = json!(0);
        body["seed"] = json!(self.opts.seed);
        if !until.is_empty() {
            body["stop"] = json!(until);
        }
        self.requests_sent.fetch_add(1, Ordering::Relaxed);
        let url = self.url(route);
        let resp = self.client.post_json(route, &body).map_err(backend)?;
        let c = sorted_choices(&resp, &url, 1).map_err(backend)?[0];
        let text = match self.opts.generation {
            GenerationRoute::Completions => c.get("text").and_then(Value::as_str),
            GenerationRoute::Chat => c.pointer("/message/content").and_then(Value::as_str),
        }
        .ok_or_else(|| {
            backend(ServeError::BadResponse {
                url: url.clone(),
                field: "choices[0].text".into(),
                reason: "missing or not a string".into(),
            })
        })?;
        let mut g = Generation::new(cut_at_stop(text, &until));
        g.tokens =
            resp.pointer("/usage/completion_tokens").and_then(Value::as_u64).map(|x| x as u32);
        Ok(g)
    }
}

/// Python's `str.isspace` set, as lm-eval's `rstrip()` uses it.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The text before the earliest stop string.
pub fn cut_at_stop<'a>(text: &'a str, until: &[&str]) -> &'a str {
    let cut = until.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s)).min();
    &text[..cut.unwrap_or(text.len())]
}

fn sorted_choices<'a>(resp: &'a Value, url: &str, expected: usize) -> Result<Vec<&'a Value>> {
    let bad = |reason: String| ServeError::BadResponse {
        url: url.to_string(),
        field: "choices".into(),
        reason,
    };
    let arr = resp
        .get("choices")
        .and_then(Value::as_array)
        .ok_or_else(|| bad(format!("missing (answer: {})", truncate(&resp.to_string(), 300))))?;
    if arr.len() != expected {
        return Err(bad(format!("{} choices for {expected} prompts", arr.len())));
    }
    let mut v: Vec<(u64, &Value)> = arr
        .iter()
        .enumerate()
        .map(|(i, c)| (c.get("index").and_then(Value::as_u64).unwrap_or(i as u64), c))
        .collect();
    v.sort_by_key(|(i, _)| *i);
    Ok(v.into_iter().map(|(_, c)| c).collect())
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let cut = (0..=n).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
    format!("{}…", &s[..cut])
}

fn backend(e: ServeError) -> ModelError {
    ModelError::backend("OpenAI-compatible server", e)
}

/// Runs `f(0..n)` on up to `threads` scoped threads, keeping order; stops at the first error.
pub(crate) fn parallel<T: Send>(
    n: usize,
    threads: usize,
    f: impl Fn(usize) -> Result<T, ModelError> + Sync,
) -> Result<Vec<T>, ModelError> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let mut slots: Vec<Option<Result<T, ModelError>>> = (0..n).map(|_| None).collect();
    let results = std::sync::Mutex::new(&mut slots);
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, n.max(1)) {
            s.spawn(|| {
                loop {
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let r = f(i);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    if let Ok(mut g) = results.lock() {
                        g[i] = Some(r);
                    }
                }
            });
        }
    });
    let mut out = Vec::with_capacity(n);
    for (i, r) in slots.into_iter().enumerate() {
        match r {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => return Err(e),
            None => {
                return Err(ModelError::backend(
                    "OpenAI-compatible server",
                    format!("request {i} was not sent (an earlier request failed)"),
                ));
            }
        }
    }
    Ok(out)
}

impl LanguageModel for OpenAiModel {
    fn info(&self) -> ModelInfo {
        let ep = self.client.endpoint();
        let mut info = ModelInfo::new(ep.model.clone())
            .max_context(self.opts.max_length)
            .device(ep.base_url.clone());
        if let Some(l) = &self.opts.label {
            info = info.scheme(l.clone());
        }
        if let Tokenization::Client(t) = &self.opts.tokenization
            && let Some(b) = t.adds_bos()
        {
            info = info.add_bos_token(b);
        }
        info
    }

    fn loglikelihood(
        &mut self,
        reqs: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, ModelError> {
        let prepared: Vec<Scored> =
            reqs.iter().enumerate().map(|(i, r)| self.prepare(i, r)).collect::<Result<_, _>>()?;
        let bs = self.opts.batch_size;
        let batches: Vec<&[Scored]> = prepared.chunks(bs).collect();
        let this = &*self;
        let answers = parallel(batches.len(), self.opts.concurrency, |b| {
            this.score_batch(batches[b]).map_err(backend)
        })?;
        let out: Vec<Loglikelihood> = answers.into_iter().flatten().collect();
        if out.len() != reqs.len() {
            return Err(ModelError::CountMismatch { expected: reqs.len(), got: out.len() });
        }
        Ok(out)
    }

    fn generate_until(&mut self, reqs: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
        let this = &*self;
        parallel(reqs.len(), self.opts.concurrency, |i| this.generate_one(i, &reqs[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_cut_is_earliest() {
        assert_eq!(cut_at_stop("a\n\nb Question: c", &["Question:", "\n\n"]), "a");
        assert_eq!(cut_at_stop("abc", &[""]), "abc");
    }

    #[test]
    fn parallel_keeps_order_and_stops() {
        let v = parallel(50, 4, |i| Ok::<_, ModelError>(i * 2)).unwrap();
        assert_eq!(v, (0..50).map(|i| i * 2).collect::<Vec<_>>());
        let e =
            parallel(50, 4, |i| if i == 7 { Err(ModelError::backend("x", "boom")) } else { Ok(i) });
        assert!(e.is_err());
    }
}
