//! The scoring and generation engine: lm-eval semantics on top of [`Model`], and
//! [`eai_core::LanguageModel`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use eai_core::{
    BatchHint, EngineTime, GenerateRequest, Generation, LanguageModel, Loglikelihood,
    LoglikelihoodRequest, ModelError, ModelInfo, RequestKind, RollingLoglikelihood, RollingRequest,
};

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::model::{KvCache, LoadOptions, Model, Scratch};
use crate::source::{GgufSource, SafetensorsSource};
use crate::tokenizer::{BosPolicy, SpecialTokens, Tokenizer};
use crate::tokens::TokenCache;

/// Engine settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineOptions {
    /// lm-eval's `max_length`: inputs are left-truncated to it. `None`: the model's
    /// `max_position_embeddings` (lm-eval's default resolution).
    pub max_length: Option<usize>,
    /// Packed tokens per scoring forward pass (requests are sorted longest first and packed
    /// without padding up to this many tokens).
    pub batch_tokens: usize,
    /// Sequences decoded together in `generate_until`.
    pub gen_batch: usize,
    /// Run a context shared by several requests once and continue each from a copy of its KV
    /// cache (lm-eval runs every request's full input; per-token results are the same).
    pub share_prefixes: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { max_length: None, batch_tokens: 2048, gen_batch: 8, share_prefixes: true }
    }
}

impl EngineOptions {
    /// The defaults (the CPU engine's; `GpuEngine::default_options` for the GPU engine's),
    /// to change with the setters below.
    ///
    /// ```
    /// use eai_model::EngineOptions;
    /// let o = EngineOptions::new().max_length(Some(1024)).batch_tokens(4096).gen_batch(16);
    /// assert_eq!((o.max_length, o.batch_tokens, o.gen_batch), (Some(1024), 4096, 16));
    /// assert!(o.share_prefixes);
    /// assert_eq!(EngineOptions::new(), EngineOptions::default());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `max_length` (`None`: the model's `max_position_embeddings`).
    pub fn max_length(mut self, n: Option<usize>) -> Self {
        self.max_length = n;
        self
    }

    /// Sets the packed tokens per scoring forward pass (at least 1).
    pub fn batch_tokens(mut self, n: usize) -> Self {
        self.batch_tokens = n.max(1);
        self
    }

    /// Sets the sequences decoded together (at least 1).
    pub fn gen_batch(mut self, n: usize) -> Self {
        self.gen_batch = n.max(1);
        self
    }

    /// Runs a shared context once per group of requests (the default) or every request's
    /// whole input.
    pub fn share_prefixes(mut self, on: bool) -> Self {
        self.share_prefixes = on;
        self
    }
}

/// Counters for energy accounting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Forward passes (one per packed scoring batch or decode step).
    pub forward_passes: u64,
    /// Tokens run through the decoder (prefill + decode).
    pub tokens_processed: u64,
    /// Positions whose log-probabilities were scored.
    pub tokens_scored: u64,
    /// Tokens generated.
    pub tokens_generated: u64,
    /// Requests whose input was left-truncated to `max_length`.
    pub truncated_requests: u64,
}

/// A model with its tokenizer: implements [`LanguageModel`].
///
/// ```no_run
/// use eai_core::{LanguageModel, LoglikelihoodRequest};
/// use eai_model::{Engine, LoadOptions, Scheme};
/// let mut lm = Engine::from_gguf("SmolLM2-135M-Instruct.Q4_1.gguf", LoadOptions::new(Scheme::Fp32))?;
/// let r = lm.loglikelihood(&[LoglikelihoodRequest::new("The capital of France is", " Paris")])?;
/// println!("{}", r[0].logprob);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Engine {
    model: Model,
    tokenizer: Tokenizer,
    name: String,
    opts: EngineOptions,
    scratch: Scratch,
    pool: Vec<KvCache>,
    counters: Counters,
    tokens: Arc<TokenCache>,
    time: EngineTime,
}

/// One scored position: log-partition, argmax, and the logits of the wanted targets.
type ScoredPos = (f64, u32, Vec<(u32, f32)>);

/// One scored request in token space: `(context ids, continuation ids)`.
pub type TokenPair = (Vec<u32>, Vec<u32>);

/// lm-eval's `_encode_pair` for any engine holding a [`Tokenizer`] (see [`Engine::encode_pair`]).
///
/// # Errors
/// [`Error::InvalidInput`] when either side ends up empty; tokenizer errors.
pub fn encode_pair(tokenizer: &Tokenizer, context: &str, continuation: &str) -> Result<TokenPair> {
    if context.is_empty() {
        let prefix = tokenizer
            .bos_id()
            .or_else(|| tokenizer.eos_ids().first().copied())
            .ok_or_else(|| Error::invalid("empty context and the model has neither BOS nor EOS"))?;
        let cont = tokenizer.encode_raw(continuation)?;
        return match cont.first() {
            None => Err(Error::invalid("empty continuation")),
            Some(&c0) if c0 == prefix => Ok((vec![c0], cont[1..].to_vec())),
            Some(_) => Ok((vec![prefix], cont)),
        };
    }
    let trimmed = context.trim_end_matches(py_space);
    let moved = &context[trimmed.len()..];
    let cont_text = format!("{moved}{continuation}");
    let whole = tokenizer.encode(&format!("{trimmed}{cont_text}"))?;
    let ctx = tokenizer.encode(trimmed)?;
    if ctx.is_empty() {
        return Err(Error::invalid("context encodes to no tokens"));
    }
    let cont = whole.get(ctx.len()..).unwrap_or(&[]).to_vec();
    if cont.is_empty() {
        return Err(Error::invalid("continuation encodes to no tokens"));
    }
    Ok((ctx, cont))
}

pub(crate) fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

impl Engine {
    /// Wraps a model and its tokenizer.
    pub fn new(model: Model, tokenizer: Tokenizer, name: impl Into<String>) -> Self {
        Engine {
            model,
            tokenizer,
            name: name.into(),
            opts: EngineOptions::default(),
            scratch: Scratch::default(),
            pool: Vec::new(),
            counters: Counters::default(),
            tokens: Arc::default(),
            time: EngineTime::default(),
        }
    }

    /// Uses `cache` for the token ids of requests (see [`TokenCache`]): give every engine that
    /// shares a tokenizer the same cache so that each text is encoded once per process. Without
    /// it an engine keeps a cache of its own.
    pub fn token_cache(mut self, cache: Arc<TokenCache>) -> Self {
        self.tokens = cache;
        self
    }

    /// [`Engine::token_cache`] in place.
    pub fn set_token_cache(&mut self, cache: Arc<TokenCache>) {
        self.tokens = cache;
    }

    /// The token cache in use.
    pub fn tokens(&self) -> &Arc<TokenCache> {
        &self.tokens
    }

    /// Loads a GGUF file (weights dequantized to f32, then converted to `opts.scheme`) with the
    /// tokenizer its metadata describes.
    ///
    /// # Errors
    /// Any loading error (see [`GgufFile::open`], [`ModelConfig::from_gguf`], [`Model::load`],
    /// [`Tokenizer::from_gguf`]).
    pub fn from_gguf(path: impl AsRef<Path>, opts: LoadOptions) -> Result<Self> {
        let f = GgufFile::open(path.as_ref())?;
        let cfg = ModelConfig::from_gguf(&f)?;
        let tok = Tokenizer::from_gguf(&f)?;
        let model = Model::load(&GgufSource::new(&f, &cfg), cfg, opts)?;
        let name =
            f.get("general.name").and_then(|v| v.as_str()).map(str::to_string).unwrap_or_else(
                || {
                    path.as_ref()
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default()
                },
            );
        Ok(Self::new(model, tok, name))
    }

    /// Loads a Hugging Face folder (`config.json`, `tokenizer.json`, safetensors).
    ///
    /// # Errors
    /// Any loading error.
    pub fn from_hf_dir(dir: impl AsRef<Path>, opts: LoadOptions) -> Result<Self> {
        let dir = dir.as_ref();
        let cfg = ModelConfig::from_hf_file(dir.join("config.json"))?;
        let tok =
            Tokenizer::from_file(dir.join("tokenizer.json"), cfg.bos_token_id, &cfg.eos_token_ids)?;
        let src = SafetensorsSource::open(dir)?;
        let model = Model::load(&src, cfg, opts)?;
        let name = dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Self::new(model, tok, name))
    }

    /// The settings.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Replaces the settings.
    pub fn with_options(mut self, opts: EngineOptions) -> Self {
        self.opts = opts;
        self
    }

    /// Replaces the settings in place (they apply from the next call).
    pub fn set_options(&mut self, opts: EngineOptions) {
        self.opts = opts;
    }

    /// Sets the BOS policy (recorded in [`Engine::settings_label`]).
    pub fn set_bos_policy(&mut self, p: BosPolicy) {
        self.tokenizer.set_bos_policy(p);
    }

    /// Sets how special-token text inside requests is encoded (see [`SpecialTokens`]; recorded
    /// in [`Engine::settings_label`] when not the default).
    pub fn set_special_tokens(&mut self, mode: SpecialTokens) {
        self.tokenizer.set_special_tokens(mode);
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Counters since construction.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The effective `max_length`.
    pub fn max_length(&self) -> usize {
        self.opts.max_length.unwrap_or(self.model.config().max_position).max(1)
    }

    /// Everything that changes scores, in one line: scheme, BOS, max length, batching.
    pub fn settings_label(&self) -> String {
        format!(
            "scheme={} {}{} max_length={} batch_tokens={} shared_contexts={} device=cpu",
            self.model.scheme().label(),
            self.tokenizer.bos_label(),
            match self.tokenizer.special_tokens() {
                SpecialTokens::Parse => "",
                _ => " special_tokens=text",
            },
            self.max_length(),
            self.opts.batch_tokens,
            if self.opts.share_prefixes { "yes" } else { "no" }
        )
    }

    /// lm-eval's `_encode_pair`: trailing whitespace of the context moves to the continuation;
    /// `cont = enc(ctx + cont)[len(enc(ctx)):]`. An empty context becomes the prefix token (BOS,
    /// else EOS).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when either side ends up empty; tokenizer errors.
    pub fn encode_pair(&self, context: &str, continuation: &str) -> Result<TokenPair> {
        encode_pair(&self.tokenizer, context, continuation)
    }

    /// Scores token pairs: `(Σ log p(cont | ctx), is_greedy)` per pair, lm-eval style (input =
    /// last `max_length + 1` tokens of `ctx ++ cont` minus the last; identical inputs are run once).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for empty sides or continuations longer than `max_length`.
    pub fn loglikelihood_tokens(&mut self, reqs: &[TokenPair]) -> Result<Vec<(f64, bool)>> {
        let max_len = self.max_length();
        // Unique inputs and how many trailing positions each must score.
        let mut uniq: Vec<(Vec<u32>, usize)> = Vec::new();
        let mut key: HashMap<Vec<u32>, usize> = HashMap::new();
        let mut member = Vec::with_capacity(reqs.len());
        for (i, (ctx, cont)) in reqs.iter().enumerate() {
            let input = scored_input(i, ctx, cont, max_len).map_err(Error::invalid)?;
            let u = *key.entry(input.clone()).or_insert_with(|| {
                uniq.push((input, 0));
                uniq.len() - 1
            });
            uniq[u].1 = uniq[u].1.max(cont.len());
            member.push(u);
        }
        // Which targets each unique needs at each of its last `need` positions.
        let mut wanted: Vec<Vec<Vec<u32>>> =
            uniq.iter().map(|(_, need)| vec![Vec::new(); *need]).collect();
        for (i, (_, cont)) in reqs.iter().enumerate() {
            let u = member[i];
            let need = uniq[u].1;
            for (j, &t) in cont.iter().enumerate() {
                wanted[u][need - cont.len() + j].push(t);
            }
        }
        // Shared contexts: inputs whose unscored head (everything before the first scored
        // position) is identical run that head once; each then continues from a copy of its
        // KV cache. Per-token results do not depend on this (attention reads the same keys).
        let mut jobs: Vec<(usize, Vec<usize>)> = Vec::new(); // (head length, members)
        {
            let mut by_head: HashMap<&[u32], usize> = HashMap::new();
            for (u, (input, need)) in uniq.iter().enumerate() {
                let p = input.len() - (*need).min(input.len());
                if self.opts.share_prefixes && p >= 2 {
                    if let Some(&j) = by_head.get(&input[..p]) {
                        jobs[j].1.push(u);
                        continue;
                    }
                    by_head.insert(&input[..p], jobs.len());
                }
                jobs.push((p, vec![u]));
            }
        }
        for job in &mut jobs {
            if job.1.len() == 1 {
                job.0 = 0; // nothing to share: run the whole input
            }
        }
        // Longest first (lm-eval's order).
        let job_len = |j: &(usize, Vec<usize>)| uniq[j.1[0]].0.len();
        jobs.sort_by(|a, b| {
            job_len(b).cmp(&job_len(a)).then_with(|| uniq[a.1[0]].0.cmp(&uniq[b.1[0]].0))
        });
        let mut scored: Vec<Vec<ScoredPos>> = vec![Vec::new(); uniq.len()];
        let mut heads: Vec<KvCache> = Vec::new();
        let mut jb = 0;
        while jb < jobs.len() {
            // A group of jobs whose shared heads fit one pass.
            let mut je = jb;
            let mut head_tokens = 0;
            while je < jobs.len()
                && (je == jb || head_tokens + jobs[je].0 <= self.opts.batch_tokens)
            {
                head_tokens += jobs[je].0;
                je += 1;
            }
            let group = &jobs[jb..je];
            // Phase 1: the shared heads, each into its own cache.
            let shared: Vec<usize> = (0..group.len()).filter(|&g| group[g].0 > 0).collect();
            while heads.len() < shared.len() {
                heads.push(KvCache::new(self.model.config()));
            }
            let mut head_slot = vec![usize::MAX; group.len()];
            if !shared.is_empty() {
                let seqs: Vec<&[u32]> =
                    shared.iter().map(|&g| &uniq[group[g].1[0]].0[..group[g].0]).collect();
                let mut caches: Vec<&mut KvCache> = heads.iter_mut().take(seqs.len()).collect();
                for c in &mut caches {
                    c.clear();
                }
                self.model.forward(&seqs, &mut caches, &mut self.scratch)?;
                for (slot, &g) in shared.iter().enumerate() {
                    head_slot[g] = slot;
                }
                self.counters.forward_passes += 1;
                self.counters.tokens_processed += head_tokens as u64;
            }
            // Phase 2: every member's tail (its whole input when nothing is shared), packed.
            let items: Vec<(usize, usize)> = group
                .iter()
                .enumerate()
                .flat_map(|(g, (_, us))| us.iter().map(move |&u| (g, u)))
                .collect();
            let mut b = 0;
            while b < items.len() {
                let mut e = b;
                let mut tokens = 0;
                while e < items.len() {
                    let (g, u) = items[e];
                    let t = uniq[u].0.len() - group[g].0;
                    if e > b && tokens + t > self.opts.batch_tokens {
                        break;
                    }
                    tokens += t;
                    e += 1;
                }
                let batch = &items[b..e];
                while self.pool.len() < batch.len() {
                    self.pool.push(KvCache::new(self.model.config()));
                }
                for (c, &(g, u)) in self.pool.iter_mut().zip(batch) {
                    match head_slot[g] {
                        usize::MAX => c.clear(),
                        slot => c.copy_from(&heads[slot], uniq[u].0.len() - group[g].0),
                    }
                }
                let seqs: Vec<&[u32]> =
                    batch.iter().map(|&(g, u)| &uniq[u].0[group[g].0..]).collect();
                let mut caches: Vec<&mut KvCache> = self.pool.iter_mut().take(seqs.len()).collect();
                let hidden = self.model.forward(&seqs, &mut caches, &mut self.scratch)?;
                // Gather the rows to score: the last `need` positions of each input.
                let mut rows = Vec::new();
                let mut off = 0;
                for (&(_, u), seq) in batch.iter().zip(&seqs) {
                    let need = uniq[u].1.min(seq.len());
                    rows.extend(off + seq.len() - need..off + seq.len());
                    off += seq.len();
                }
                let sel = hidden.select(ndarray::Axis(0), &rows);
                let logits = self.model.logits(sel.view())?;
                let mut r = 0;
                for (&(_, u), seq) in batch.iter().zip(&seqs) {
                    let need = uniq[u].1.min(seq.len());
                    for want in wanted[u].iter().take(need) {
                        scored[u].push(score_row(logits.row(r), want));
                        r += 1;
                    }
                }
                self.counters.forward_passes += 1;
                self.counters.tokens_processed += tokens as u64;
                self.counters.tokens_scored += rows.len() as u64;
                b = e;
            }
            jb = je;
        }
        let mut out = Vec::with_capacity(reqs.len());
        for (i, (_, cont)) in reqs.iter().enumerate() {
            let u = member[i];
            let need = scored[u].len();
            let mut lp = 0f64;
            let mut greedy = true;
            // Continuation tokens beyond the input (when truncated) cannot exceed `need`.
            let n = cont.len().min(need);
            for (j, &t) in cont[cont.len() - n..].iter().enumerate() {
                let (z, am, picks) = &scored[u][need - n + j];
                let v = picks.iter().find(|(tt, _)| *tt == t).map_or(f32::NEG_INFINITY, |p| p.1);
                lp += f64::from(v) - z;
                greedy &= *am == t;
            }
            out.push((lp, greedy));
        }
        Ok(out)
    }

    /// Per-token negative log-likelihoods (nats) of `ids[1..]` given their prefixes, in one pass.
    ///
    /// # Errors
    /// As [`Model::forward`].
    pub fn token_nlls(&mut self, ids: &[u32]) -> Result<Vec<f64>> {
        if ids.len() < 2 {
            return Ok(Vec::new());
        }
        let logits = self.model.logits_for(&ids[..ids.len() - 1])?;
        Ok(logits
            .rows()
            .into_iter()
            .zip(&ids[1..])
            .map(|(row, &t)| {
                let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let z =
                    row.iter().map(|&v| f64::from(v - mx).exp()).sum::<f64>().ln() + f64::from(mx);
                z - f64::from(row[t as usize])
            })
            .collect())
    }

    /// Greedy generation from token ids; stops at EOS, a stop string or `max_new` tokens.
    /// Returns `(generated ids, text cut before the first stop string)` per prompt.
    ///
    /// Up to `gen_batch` sequences decode together, and a finished sequence's slot goes to the
    /// next prompt at once (its prompt is prefilled in the same forward pass as the others'
    /// next tokens), so the batch stays full until the prompts run out. Each sequence's
    /// computation reads only its own tokens and KV cache, so the generated ids are those of
    /// one-at-a-time greedy decoding.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the three lists differ in length; as [`Model::forward`];
    /// tokenizer errors.
    pub fn generate_tokens(
        &mut self,
        prompts: &[Vec<u32>],
        until: &[Vec<String>],
        max_new: &[usize],
    ) -> Result<Vec<(Vec<u32>, String)>> {
        if until.len() != prompts.len() || max_new.len() != prompts.len() {
            return Err(Error::invalid("one stop list and one max_new per prompt"));
        }
        let cfg_vocab = self.model.config().vocab;
        let vocab = self.tokenizer.vocab_size().min(cfg_vocab).max(1);
        let eos: Vec<u32> = self.tokenizer.eos_ids().to_vec();
        let mut results = vec![(Vec::new(), String::new()); prompts.len()];
        let slots = self.opts.gen_batch.max(1);
        let mut queue = (0..prompts.len()).filter(|&i| max_new[i] > 0 && !prompts[i].is_empty());
        /// A sequence being decoded: its prompt index, cache, output so far and next input.
        struct Live {
            i: usize,
            cache: KvCache,
            generated: Vec<u32>,
            feed: Vec<u32>,
        }
        let mut live: Vec<Live> = Vec::with_capacity(slots);
        let mut spare: Vec<KvCache> = Vec::new();
        loop {
            while live.len() < slots {
                let Some(i) = queue.next() else { break };
                let mut cache = spare.pop().unwrap_or_else(|| KvCache::new(self.model.config()));
                cache.clear();
                live.push(Live { i, cache, generated: Vec::new(), feed: prompts[i].clone() });
            }
            if live.is_empty() {
                break;
            }
            let (seqs, mut caches): (Vec<&[u32]>, Vec<&mut KvCache>) =
                live.iter_mut().map(|l| (l.feed.as_slice(), &mut l.cache)).unzip();
            let mut rows = Vec::with_capacity(seqs.len());
            let mut off = 0;
            for s in &seqs {
                off += s.len();
                rows.push(off - 1);
            }
            let hidden = self.model.forward(&seqs, &mut caches, &mut self.scratch)?;
            let sel = hidden.select(ndarray::Axis(0), &rows);
            let logits = self.model.logits(sel.view())?;
            self.counters.forward_passes += 1;
            self.counters.tokens_processed += off as u64;
            let mut finished = Vec::new();
            for (r, l) in live.iter_mut().enumerate() {
                let next = argmax(logits.row(r).as_slice().unwrap_or(&[]), vocab);
                let done = if eos.contains(&next) {
                    true
                } else {
                    l.generated.push(next);
                    self.counters.tokens_generated += 1;
                    l.generated.len() >= max_new[l.i]
                        || stop_hit(&self.tokenizer, &l.generated, &until[l.i])?
                };
                if done {
                    finished.push(r);
                } else {
                    l.feed.clear();
                    l.feed.push(next);
                }
            }
            for r in finished.into_iter().rev() {
                let l = live.swap_remove(r);
                results[l.i] = (l.generated, String::new());
                spare.push(l.cache);
            }
        }
        for (i, (ids, text)) in results.iter_mut().enumerate() {
            *text = cut_text(self.tokenizer.decode(ids, true)?, &until[i]);
        }
        Ok(results)
    }
}

/// `text` cut before the earliest of the stop strings.
pub(crate) fn cut_text(mut text: String, until: &[String]) -> String {
    let cut = until.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s.as_str())).min();
    if let Some(c) = cut {
        text.truncate(c);
    }
    text
}

/// Whether the decoded text of `ids` contains a stop string, checked after every new token
/// until the first hit.
///
/// Equal to `decode(ids).contains(s)` for some `s` in `stops` whenever no shorter prefix of
/// `ids` contained one (the caller stops at the first hit), without decoding everything each
/// time: a match that the newest token created ends within that token's text (plus the at most
/// 3 bytes a completed multi-byte character rewrites, each shown as a 3-byte U+FFFD before), so
/// it lies inside the decoded tail of the last few tokens once that tail is longer than the
/// newest token's text, the longest stop string and a margin for a character cut at the tail's
/// start (again at most 3 bytes, 9 once replaced). A hit in the tail is confirmed on the full
/// text.
///
/// # Errors
/// Tokenizer errors.
pub(crate) fn stop_hit(tok: &Tokenizer, ids: &[u32], stops: &[String]) -> Result<bool> {
    let longest = stops.iter().map(String::len).max().unwrap_or(0);
    if longest == 0 || ids.is_empty() {
        return Ok(false);
    }
    let hit = |text: &str| stops.iter().any(|s| !s.is_empty() && text.contains(s.as_str()));
    const MARGIN: usize = 32;
    let window = longest + MARGIN;
    if ids.len() > 2 * window {
        let last = tok.decode(&ids[ids.len() - 1..], true)?;
        let tail = tok.decode(&ids[ids.len() - window..], true)?;
        if tail.len() >= last.len() + longest + MARGIN && !hit(&tail) {
            return Ok(false);
        }
    }
    Ok(hit(&tok.decode(ids, true)?))
}

/// Log-partition, argmax and the wanted targets' logits of one logits row.
fn score_row(row: ndarray::ArrayView1<'_, f32>, want: &[u32]) -> ScoredPos {
    let mut mx = f32::NEG_INFINITY;
    let mut am = 0u32;
    for (k, &v) in row.iter().enumerate() {
        if v > mx {
            mx = v;
            am = k as u32;
        }
    }
    let z: f64 = row.iter().map(|&v| f64::from(v - mx).exp()).sum::<f64>().ln() + f64::from(mx);
    let picks = want
        .iter()
        .map(|&t| (t, row.get(t as usize).copied().unwrap_or(f32::NEG_INFINITY)))
        .collect();
    (z, am, picks)
}

fn argmax(row: &[f32], limit: usize) -> u32 {
    let mut best = 0usize;
    let mut mx = f32::NEG_INFINITY;
    for (k, &v) in row.iter().take(limit).enumerate() {
        if v > mx {
            mx = v;
            best = k;
        }
    }
    best as u32
}

const CPU: &str = "eai-model CPU engine";

fn model_err(e: Error) -> ModelError {
    ModelError::backend(CPU, e)
}

crate::calls::token_engine!(Engine, CPU);

impl LanguageModel for Engine {
    fn info(&self) -> ModelInfo {
        ModelInfo::new(self.name.clone())
            .max_context(self.max_length())
            .scheme(self.model.scheme().label())
            .device(format!("cpu ({})", self.tokenizer.bos_label()))
    }

    fn loglikelihood(
        &mut self,
        reqs: &[LoglikelihoodRequest],
    ) -> std::result::Result<Vec<Loglikelihood>, ModelError> {
        crate::calls::loglikelihood(self, reqs)
    }

    fn generate_until(
        &mut self,
        reqs: &[GenerateRequest],
    ) -> std::result::Result<Vec<Generation>, ModelError> {
        crate::calls::generate_until(self, reqs)
    }

    /// lm-eval's `loglikelihood_rolling`: each text in [`crate::rolling_windows`] of at most
    /// `max_length` predicted tokens, scored like log-likelihood requests and summed.
    fn loglikelihood_rolling(
        &mut self,
        reqs: &[RollingRequest],
    ) -> std::result::Result<Vec<RollingLoglikelihood>, ModelError> {
        crate::calls::loglikelihood_rolling(self, reqs)
    }

    fn supports(&self, kind: RequestKind) -> Option<bool> {
        let _ = kind;
        Some(true)
    }

    /// Calls of `max(64, batch_tokens / 2)` scoring requests (several packed passes each, so
    /// calls do not cut packing short, and the progress bar moves every few seconds on a CPU)
    /// and `4 × gen_batch` generation requests (the decoding slots stay full across finished
    /// sequences). Memory does not depend on the call size: passes are packed to
    /// `batch_tokens` inside a call.
    fn batch_hint(&self) -> Option<BatchHint> {
        Some(
            BatchHint::requests((self.opts.batch_tokens / 2).max(64))
                .generate_requests(Some(4 * self.opts.gen_batch.max(1))),
        )
    }

    fn engine_time(&self) -> Option<EngineTime> {
        Some(self.time)
    }

    fn forward_passes(&self) -> Option<u64> {
        Some(self.counters.forward_passes)
    }

    fn truncated_requests(&self) -> Option<u64> {
        Some(self.counters.truncated_requests)
    }
}

/// The model input that scores request `i`'s continuation, as lm-eval builds it: context and
/// continuation joined, cut to the last `max_len + 1` tokens from the left, without the last
/// token (whose successor is not scored). The CPU engine and the GPU plan share it. `Err` names
/// the request: an empty side, or a continuation longer than `max_len`.
pub(crate) fn scored_input(
    i: usize,
    ctx: &[u32],
    cont: &[u32],
    max_len: usize,
) -> std::result::Result<Vec<u32>, String> {
    if ctx.is_empty() || cont.is_empty() {
        return Err(format!("request {i}: empty context or continuation"));
    }
    if cont.len() > max_len {
        return Err(format!(
            "request {i}: continuation of {} tokens exceeds max_length {max_len}",
            cont.len()
        ));
    }
    let total = ctx.len() + cont.len();
    let start = total.saturating_sub(max_len + 1);
    Ok(ctx.iter().chain(cont.iter()).skip(start).take(total - 1 - start).copied().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `stop_hit` on every prefix up to the first hit equals "the full decoded text contains a
    /// stop string", for
    /// the real byte-level tokenizer on random ids (partial UTF-8 characters included) with
    /// stop strings cut from the text, when the model file is in the cache.
    #[test]
    fn stop_hit_equals_the_full_decode_check() {
        let cache = crate::cache_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache"));
        let path = cache.join("models").join(crate::SMOLLM2_FILE);
        let Ok(f) = GgufFile::open(&path) else {
            eprintln!("SKIP stop_hit_equals_the_full_decode_check: {} not found", path.display());
            return;
        };
        let tok = Tokenizer::from_gguf(&f).unwrap();
        let vocab = tok.vocab_size() as u64;
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let text = "Natürlich — 3 × 4 = 12 😀; Ünïcödé «quotes» and\nnewlines. The answer is 12.\n\nQuestion:";
        let mut seqs: Vec<Vec<u32>> = vec![tok.encode_raw(text).unwrap()];
        // Byte tokens (ids of single bytes ≥ 0x80 split characters) and random ids.
        for _ in 0..6 {
            seqs.push((0..160).map(|_| (rnd() % vocab) as u32).collect());
        }
        let mut checked = 0;
        for ids in &seqs {
            let full = tok.decode(ids, true).unwrap();
            let chars: Vec<char> = full.chars().collect();
            let mut stops: Vec<Vec<String>> = vec![vec!["\n\n".into(), "Question:".into()]];
            for k in [3usize, 40, 90, 150] {
                if k + 3 <= chars.len() {
                    stops.push(vec![chars[k..k + 3].iter().collect()]);
                    stops.push(vec![
                        chars[k.saturating_sub(5)..k + 1].iter().collect(),
                        "zzz".into(),
                    ]);
                }
            }
            for st in &stops {
                // As in generation: checked after every token until the first hit.
                for n in 1..=ids.len() {
                    let want = {
                        let t = tok.decode(&ids[..n], true).unwrap();
                        st.iter().any(|s| !s.is_empty() && t.contains(s.as_str()))
                    };
                    assert_eq!(stop_hit(&tok, &ids[..n], st).unwrap(), want, "{st:?} at {n}");
                    checked += 1;
                    if want {
                        break;
                    }
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    #[test]
    fn cut_text_cuts_at_the_earliest_stop() {
        let until = vec!["\n\n".to_string(), "Q:".to_string(), String::new()];
        assert_eq!(cut_text("a Q: b\n\nc".into(), &until), "a ");
        assert_eq!(cut_text("abc".into(), &until), "abc");
    }
}
