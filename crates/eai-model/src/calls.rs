//! The [`eai_core::LanguageModel`] request calls both engines answer alike: requests are
//! tokenized (timed as tokenization, truncated ones counted), run on token ids (timed as
//! compute) and turned into eai-core's answers. The CPU [`Engine`](crate::Engine) and the GPU
//! engine lend their parts through [`TokenEngine`].

use std::time::Instant;

use eai_core::{
    EngineTime, GenerateRequest, Generation, Loglikelihood, LoglikelihoodRequest, ModelError,
    RollingLoglikelihood, RollingRequest, Seconds,
};

use crate::engine::TokenPair;
use crate::error::Error;
use crate::rolling::RollingPlan;
use crate::tokenizer::Tokenizer;
use crate::tokens::{TokenCache, encode_prompts, encode_requests};

/// What an engine lends the shared calls: its tokenizer and token cache, its limits and
/// bookkeeping, and its two token-level entry points (errors as [`ModelError`]s naming it).
pub(crate) trait TokenEngine {
    /// The engine's name in errors.
    const LABEL: &'static str;
    fn token_cache(&self) -> &TokenCache;
    fn tokenizer(&self) -> &Tokenizer;
    /// Tokens one request may use (`max_length`).
    fn max_len(&self) -> usize;
    /// Counts `n` requests cut to their tail.
    fn note_truncated(&mut self, n: u64);
    fn time_mut(&mut self) -> &mut EngineTime;
    /// Log-likelihood and greedy flag of each continuation.
    fn score(&mut self, pairs: &[TokenPair]) -> Result<Vec<(f64, bool)>, ModelError>;
    /// Generated ids and text (cut before the first stop string) per prompt.
    fn generate(
        &mut self,
        prompts: &[Vec<u32>],
        until: &[Vec<String>],
        max_new: &[usize],
    ) -> Result<Vec<(Vec<u32>, String)>, ModelError>;
    /// A tokenization error of the crate as this engine reports it.
    fn error(e: Error) -> ModelError;
}

/// Implements [`TokenEngine`] for an engine type with the fields `tokens`, `tokenizer`,
/// `counters` and `time` and the methods `max_length`, `loglikelihood_tokens` and
/// `generate_tokens`, whose errors the calling module's `model_err` turns into [`ModelError`]s.
macro_rules! token_engine {
    ($ty:ty, $label:expr) => {
        impl crate::calls::TokenEngine for $ty {
            const LABEL: &'static str = $label;
            fn token_cache(&self) -> &crate::tokens::TokenCache {
                &self.tokens
            }
            fn tokenizer(&self) -> &crate::tokenizer::Tokenizer {
                &self.tokenizer
            }
            fn max_len(&self) -> usize {
                self.max_length()
            }
            fn note_truncated(&mut self, n: u64) {
                self.counters.truncated_requests += n;
            }
            fn time_mut(&mut self) -> &mut eai_core::EngineTime {
                &mut self.time
            }
            fn score(
                &mut self,
                pairs: &[crate::engine::TokenPair],
            ) -> Result<Vec<(f64, bool)>, eai_core::ModelError> {
                self.loglikelihood_tokens(pairs).map_err(model_err)
            }
            fn generate(
                &mut self,
                prompts: &[Vec<u32>],
                until: &[Vec<String>],
                max_new: &[usize],
            ) -> Result<Vec<(Vec<u32>, String)>, eai_core::ModelError> {
                self.generate_tokens(prompts, until, max_new).map_err(model_err)
            }
            fn error(e: crate::error::Error) -> eai_core::ModelError {
                #[allow(clippy::useless_conversion)] // the identity for the CPU engine
                model_err(e.into())
            }
        }
    };
}
pub(crate) use token_engine;

/// Runs `prepare` timed as tokenization, then `run` on its result timed as compute.
fn timed<E: TokenEngine, P, T>(
    e: &mut E,
    prepare: impl FnOnce(&mut E) -> Result<P, ModelError>,
    run: impl FnOnce(&mut E, P) -> Result<T, ModelError>,
) -> Result<T, ModelError> {
    let t = Instant::now();
    let prepared = prepare(e);
    let tokenized = t.elapsed();
    e.time_mut().tokenize += Seconds(tokenized.as_secs_f64());
    let out = prepared.and_then(|p| run(e, p));
    e.time_mut().compute += Seconds((t.elapsed() - tokenized).as_secs_f64());
    out
}

/// `LanguageModel::loglikelihood`.
pub(crate) fn loglikelihood<E: TokenEngine>(
    e: &mut E,
    reqs: &[LoglikelihoodRequest],
) -> Result<Vec<Loglikelihood>, ModelError> {
    timed(
        e,
        |e| {
            let (pairs, truncated) =
                encode_requests(e.token_cache(), e.tokenizer(), reqs, e.max_len(), E::LABEL)?;
            e.note_truncated(truncated);
            Ok(pairs)
        },
        |e, pairs| Ok(loglikelihoods(e.score(&pairs)?, &pairs)),
    )
}

/// `LanguageModel::generate_until`.
pub(crate) fn generate_until<E: TokenEngine>(
    e: &mut E,
    reqs: &[GenerateRequest],
) -> Result<Vec<Generation>, ModelError> {
    timed(
        e,
        |e| {
            let (prompts, truncated) =
                encode_prompts(e.token_cache(), e.tokenizer(), reqs, e.max_len(), E::LABEL)?;
            e.note_truncated(truncated);
            Ok(prompts)
        },
        |e, prompts| {
            let until: Vec<Vec<String>> = reqs.iter().map(|r| r.until.clone()).collect();
            let max_new: Vec<usize> = reqs.iter().map(|r| r.max_gen_toks).collect();
            Ok(generations(e.generate(&prompts, &until, &max_new)?))
        },
    )
}

/// `LanguageModel::loglikelihood_rolling`: each text in [`crate::rolling_windows`] of at most
/// `max_length` predicted tokens, scored like log-likelihood requests and summed.
pub(crate) fn loglikelihood_rolling<E: TokenEngine>(
    e: &mut E,
    reqs: &[RollingRequest],
) -> Result<Vec<RollingLoglikelihood>, ModelError> {
    timed(
        e,
        |e| RollingPlan::new(e.tokenizer(), e.max_len(), reqs).map_err(E::error),
        |e, plan| {
            let scores = e.score(plan.pairs())?;
            plan.finish(&scores).map_err(E::error)
        },
    )
}

/// Scores with their continuations' token counts.
fn loglikelihoods(scores: Vec<(f64, bool)>, pairs: &[TokenPair]) -> Vec<Loglikelihood> {
    scores
        .into_iter()
        .zip(pairs)
        .map(|((lp, g), (_, cont))| {
            let mut l = Loglikelihood::new(lp, g);
            l.tokens = Some(cont.len() as u32);
            l
        })
        .collect()
}

/// Generations with their token counts.
fn generations(out: Vec<(Vec<u32>, String)>) -> Vec<Generation> {
    out.into_iter()
        .map(|(ids, text)| {
            let mut g = Generation::new(text);
            g.tokens = Some(ids.len() as u32);
            g
        })
        .collect()
}
