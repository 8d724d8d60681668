//! Encoding requests once: [`TokenCache`], shared by every engine that uses the same tokenizer.
//!
//! A study scores the same requests under several schemes and repetitions; the token ids of a
//! request depend only on the tokenizer, its BOS policy and the text, so they are computed once
//! and looked up afterwards. Misses are encoded in parallel (rayon's pool, one job per
//! context), each context once however many continuations share it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use rayon::prelude::*;

use eai_core::{GenerateRequest, LoglikelihoodRequest, ModelError};

use crate::engine::TokenPair;
use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

/// Token ids of requests already encoded, keyed by tokenizer (a fingerprint of its vocabulary,
/// merges, pre-tokenizer and special tokens, plus the BOS policy) and text.
///
/// Every engine owns one by default (so repetitions re-use encodings); give engines that share a
/// tokenizer the same cache (`Arc`) so that other schemes re-use them too:
///
/// ```no_run
/// use std::sync::Arc;
/// use eai_model::{Engine, LoadOptions, Scheme, TokenCache};
/// let cache = Arc::new(TokenCache::new());
/// let path = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// let fp32 = Engine::from_gguf(path, LoadOptions::new(Scheme::Fp32))?.token_cache(cache.clone());
/// let w8a8 = Engine::from_gguf(path, LoadOptions::new(Scheme::W8A8))?.token_cache(cache.clone());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The ids are exactly what encoding the text gives (lm-eval's `_encode_pair` for scoring
/// requests, the whole prompt for generation requests). Memory grows with the distinct texts seen
/// (about the texts' size plus 4 bytes per token); [`TokenCache::clear`] empties it.
#[derive(Debug, Default)]
pub struct TokenCache {
    by_tokenizer: RwLock<HashMap<u64, Entries>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Debug, Default)]
struct Entries {
    /// Scoring requests by context (the request's text as given), then continuation.
    contexts: HashMap<Arc<str>, Context>,
    /// Generation prompts (encoded whole, BOS per policy).
    prompts: HashMap<Arc<str>, Arc<[u32]>>,
}

#[derive(Debug)]
struct Context {
    /// `encode(context without trailing whitespace)`.
    ids: Arc<[u32]>,
    /// Continuation (as given) → its token ids in `encode(context + continuation)`.
    conts: HashMap<Box<str>, Arc<[u32]>>,
}

/// Counts of a [`TokenCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenCacheStats {
    /// Requests answered from the cache.
    pub hits: u64,
    /// Requests encoded.
    pub misses: u64,
    /// Distinct scoring contexts held.
    pub contexts: usize,
    /// Distinct `(context, continuation)` pairs held.
    pub pairs: usize,
    /// Distinct generation prompts held.
    pub prompts: usize,
}

/// A context's missing requests: its ids when already cached, and the request indices.
type Missing = (Option<Arc<[u32]>>, Vec<usize>);

/// One scoring request's text, borrowed.
type PairText<'a> = (&'a str, &'a str);

impl TokenCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hits, misses and sizes so far.
    pub fn stats(&self) -> TokenCacheStats {
        let mut s = TokenCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            ..TokenCacheStats::default()
        };
        if let Ok(map) = self.by_tokenizer.read() {
            for e in map.values() {
                s.contexts += e.contexts.len();
                s.pairs += e.contexts.values().map(|c| c.conts.len()).sum::<usize>();
                s.prompts += e.prompts.len();
            }
        }
        s
    }

    /// Forgets every encoding (the counters stay).
    pub fn clear(&self) {
        if let Ok(mut map) = self.by_tokenizer.write() {
            map.clear();
        }
    }

    /// lm-eval's `_encode_pair` (as [`Engine::encode_pair`](crate::Engine::encode_pair)) for
    /// each request with `tok`, from the cache where possible; the rest are encoded in parallel
    /// (one job per context, each context once) and stored. One result per request, in order;
    /// the ids are exactly `encode_pair`'s.
    pub fn encode_pairs(
        &self,
        tok: &Tokenizer,
        reqs: &[LoglikelihoodRequest],
    ) -> Vec<Result<TokenPair>> {
        let texts: Vec<PairText<'_>> =
            reqs.iter().map(|r| (r.context.as_str(), r.continuation.as_str())).collect();
        self.encode_texts(tok, &texts)
    }

    fn encode_texts(&self, tok: &Tokenizer, reqs: &[PairText<'_>]) -> Vec<Result<TokenPair>> {
        let key = tok.cache_key();
        let mut out: Vec<Option<Result<TokenPair>>> = Vec::with_capacity(reqs.len());
        // Misses grouped by context: context → (known ctx ids, request indices).
        let mut missing: HashMap<&str, Missing> = HashMap::new();
        {
            let map = self.by_tokenizer.read().unwrap_or_else(|e| e.into_inner());
            let entries = map.get(&key);
            for (i, &(ctx, cont)) in reqs.iter().enumerate() {
                if ctx.is_empty() {
                    // The prefix token may depend on the continuation: not cached.
                    out.push(Some(crate::engine::encode_pair(tok, ctx, cont)));
                    continue;
                }
                let c = entries.and_then(|e| e.contexts.get(ctx));
                match c.and_then(|c| c.conts.get(cont).map(|k| (&c.ids, k))) {
                    Some((ids, k)) => out.push(Some(Ok((ids.to_vec(), k.to_vec())))),
                    None => {
                        out.push(None);
                        let m = missing.entry(ctx).or_insert_with(|| (None, Vec::new()));
                        m.0 = c.map(|c| c.ids.clone());
                        m.1.push(i);
                    }
                }
            }
        }
        let n_missing: usize = missing.values().map(|m| m.1.len()).sum();
        self.hits.fetch_add((reqs.len() - n_missing) as u64, Ordering::Relaxed);
        self.misses.fetch_add(n_missing as u64, Ordering::Relaxed);
        if n_missing == 0 {
            return out.into_iter().flatten().collect();
        }
        let groups: Vec<(&str, Missing)> = missing.into_iter().collect();
        // One job per context: its ids (unless known), then each continuation.
        type Encoded = (Result<Arc<[u32]>>, Vec<(usize, Result<Arc<[u32]>>)>);
        let encoded: Vec<Encoded> = groups
            .par_iter()
            .map(|(ctx, (known, idx))| {
                let trimmed = ctx.trim_end_matches(crate::engine::py_space);
                let ids = match known {
                    Some(ids) => Ok(ids.clone()),
                    None => encode_context(tok, trimmed),
                };
                let conts = idx
                    .iter()
                    .map(|&i| {
                        let r = match &ids {
                            Ok(c) => encode_continuation(tok, ctx, trimmed, c, reqs[i].1),
                            Err(e) => Err(Error::invalid(e.to_string())),
                        };
                        (i, r)
                    })
                    .collect();
                (ids, conts)
            })
            .collect();
        let mut map = self.by_tokenizer.write().unwrap_or_else(|e| e.into_inner());
        let entries = map.entry(key).or_default();
        for ((ctx, _), (ids, conts)) in groups.iter().zip(encoded) {
            let ids = match ids {
                Ok(ids) => ids,
                Err(e) => {
                    for (i, _) in conts {
                        out[i] = Some(Err(Error::invalid(e.to_string())));
                    }
                    continue;
                }
            };
            let entry = entries
                .contexts
                .entry(Arc::from(*ctx))
                .or_insert_with(|| Context { ids: ids.clone(), conts: HashMap::new() });
            for (i, r) in conts {
                out[i] = Some(r.map(|k| {
                    entry.conts.insert(Box::from(reqs[i].1), k.clone());
                    (ids.to_vec(), k.to_vec())
                }));
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::invalid("request not encoded"))))
            .collect()
    }

    /// `tok.encode(text)` for each prompt, from the cache where possible; misses encoded in
    /// parallel and stored.
    pub(crate) fn encode_prompts(&self, tok: &Tokenizer, texts: &[&str]) -> Vec<Result<Vec<u32>>> {
        let key = tok.cache_key();
        let mut out: Vec<Option<Result<Vec<u32>>>> = Vec::with_capacity(texts.len());
        let mut missing: Vec<usize> = Vec::new();
        {
            let map = self.by_tokenizer.read().unwrap_or_else(|e| e.into_inner());
            let entries = map.get(&key);
            for (i, t) in texts.iter().enumerate() {
                match entries.and_then(|e| e.prompts.get(*t)) {
                    Some(ids) => out.push(Some(Ok(ids.to_vec()))),
                    None => {
                        out.push(None);
                        missing.push(i);
                    }
                }
            }
        }
        self.hits.fetch_add((texts.len() - missing.len()) as u64, Ordering::Relaxed);
        self.misses.fetch_add(missing.len() as u64, Ordering::Relaxed);
        if !missing.is_empty() {
            let encoded: Vec<Result<Vec<u32>>> =
                missing.par_iter().map(|&i| tok.encode(texts[i])).collect();
            let mut map = self.by_tokenizer.write().unwrap_or_else(|e| e.into_inner());
            let entries = map.entry(key).or_default();
            for (i, r) in missing.into_iter().zip(encoded) {
                if let Ok(ids) = &r {
                    entries.prompts.insert(Arc::from(texts[i]), Arc::from(ids.as_slice()));
                }
                out[i] = Some(r);
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::invalid("prompt not encoded"))))
            .collect()
    }
}

/// `encode(trimmed context)`, which must not be empty.
fn encode_context(tok: &Tokenizer, trimmed: &str) -> Result<Arc<[u32]>> {
    let ids = tok.encode(trimmed)?;
    if ids.is_empty() {
        return Err(Error::invalid("context encodes to no tokens"));
    }
    Ok(Arc::from(ids))
}

/// The continuation's ids: `encode(trimmed + moved whitespace + continuation)[len(ctx)..]`.
fn encode_continuation(
    tok: &Tokenizer,
    context: &str,
    trimmed: &str,
    ctx_ids: &[u32],
    continuation: &str,
) -> Result<Arc<[u32]>> {
    debug_assert!(context.starts_with(trimmed));
    // `trimmed + moved + continuation` is the context followed by the continuation.
    let mut whole = String::with_capacity(context.len() + continuation.len());
    whole.push_str(context);
    whole.push_str(continuation);
    let ids = tok.encode(&whole)?;
    let cont = ids.get(ctx_ids.len()..).unwrap_or(&[]);
    if cont.is_empty() {
        return Err(Error::invalid("continuation encodes to no tokens"));
    }
    Ok(Arc::from(cont))
}

/// lm-eval's `_encode_pair` for every request through `cache`, as the engines' `loglikelihood`
/// needs it: invalid requests become [`ModelError::InvalidRequest`] naming the index, other
/// failures a backend error of `engine`.
pub(crate) fn encode_requests(
    cache: &TokenCache,
    tok: &Tokenizer,
    reqs: &[LoglikelihoodRequest],
    max_len: usize,
    engine: &str,
) -> std::result::Result<(Vec<TokenPair>, u64), ModelError> {
    // Only the last `max_len + 1` tokens of context + continuation can be scored: longer
    // contexts are cut to their tail before encoding (as lm-eval left-truncates), and counted.
    let keep = max_len.saturating_add(1);
    let mut texts: Vec<PairText<'_>> = Vec::with_capacity(reqs.len());
    for r in reqs {
        let (ctx, _) = crate::bound::tail(tok, &r.context, keep)
            .map_err(|e| ModelError::backend(engine, e))?;
        texts.push((ctx, r.continuation.as_str()));
    }
    let pairs: Vec<TokenPair> = cache
        .encode_texts(tok, &texts)
        .into_iter()
        .enumerate()
        .map(|(index, r)| r.map_err(|e| request_error(index, e, engine)))
        .collect::<std::result::Result<_, _>>()?;
    let truncated = pairs.iter().filter(|p| p.0.len() + p.1.len() > keep).count() as u64;
    Ok((pairs, truncated))
}

/// Generation prompts through `cache`, left-truncated so that `max_gen_toks` new tokens fit in
/// `max_len` (at least one prompt token kept), as the engines' `generate_until` needs them.
pub(crate) fn encode_prompts(
    cache: &TokenCache,
    tok: &Tokenizer,
    reqs: &[GenerateRequest],
    max_len: usize,
    engine: &str,
) -> std::result::Result<(Vec<Vec<u32>>, u64), ModelError> {
    let mut texts: Vec<&str> = Vec::with_capacity(reqs.len());
    for r in reqs {
        let (ctx, _) = crate::bound::tail(tok, &r.context, max_len)
            .map_err(|e| ModelError::backend(engine, e))?;
        texts.push(ctx);
    }
    let mut out = Vec::with_capacity(reqs.len());
    let mut truncated = 0u64;
    for (index, (r, ids)) in reqs.iter().zip(cache.encode_prompts(tok, &texts)).enumerate() {
        let mut ids = ids.map_err(|e| ModelError::backend(engine, e))?;
        if ids.is_empty() {
            return Err(ModelError::InvalidRequest { index, reason: "empty prompt".into() });
        }
        let keep = max_len.saturating_sub(r.max_gen_toks).max(1);
        if ids.len() > keep {
            ids.drain(..ids.len() - keep);
            truncated += 1;
        }
        out.push(ids);
    }
    Ok((out, truncated))
}

fn request_error(index: usize, e: Error, engine: &str) -> ModelError {
    match e {
        Error::InvalidInput { reason } => ModelError::InvalidRequest { index, reason },
        e => ModelError::backend(engine, e),
    }
}
