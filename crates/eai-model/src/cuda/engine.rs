//! [`GpuEngine`]: lm-eval request semantics on top of [`GpuModel`], and
//! [`eai_core::LanguageModel`].
//!
//! The request semantics are the CPU [`Engine`](crate::Engine)'s: lm-eval's `_encode_pair`
//! (trailing context whitespace moves to the continuation), input = last `max_length + 1` tokens
//! of `ctx ++ cont` minus the last, identical inputs run once (shared contexts of single-token
//! continuations), longest first, packed without padding up to `batch_tokens` per forward pass.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use eai_core::{
    GenerateRequest, Generation, LanguageModel, Loglikelihood, LoglikelihoodRequest, ModelError,
    ModelInfo,
};
use eai_quant::cuda::CudaDevice;

use super::error::{GpuError, Result};
use super::model::{GpuModel, GpuScheme};
use crate::config::ModelConfig;
use crate::engine::{Counters, EngineOptions, TokenPair};
use crate::gguf::GgufFile;
use crate::source::{GgufSource, SafetensorsSource};
use crate::tokenizer::{BosPolicy, Tokenizer};

/// A GPU model with its tokenizer: implements [`LanguageModel`].
///
/// ```no_run
/// # #[cfg(feature = "cuda")] {
/// use eai_core::{LanguageModel, LoglikelihoodRequest};
/// use eai_model::cuda::{GpuEngine, GpuScheme, open_device};
/// let dev = open_device(0)?;
/// let mut lm = GpuEngine::from_gguf(dev, "SmolLM2-135M-Instruct.Q4_1.gguf", GpuScheme::W8A8)?;
/// let r = lm.loglikelihood(&[LoglikelihoodRequest::new("The capital of France is", " Paris")])?;
/// println!("{} on {}", r[0].logprob, lm.model().device_label());
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct GpuEngine {
    model: GpuModel,
    tokenizer: Tokenizer,
    name: String,
    opts: EngineOptions,
    counters: Counters,
}

impl GpuEngine {
    /// The GPU's default settings: [`EngineOptions::default`] with larger batches (8192 packed
    /// tokens per scoring pass, 32 sequences decoded together), since a GPU forward pass of a
    /// few thousand tokens costs little more than one of a few hundred.
    pub fn default_options() -> EngineOptions {
        EngineOptions { batch_tokens: 8192, gen_batch: 32, ..EngineOptions::default() }
    }

    /// Wraps a model and its tokenizer, with [`GpuEngine::default_options`].
    pub fn new(model: GpuModel, tokenizer: Tokenizer, name: impl Into<String>) -> Self {
        GpuEngine {
            model,
            tokenizer,
            name: name.into(),
            opts: Self::default_options(),
            counters: Counters::default(),
        }
    }

    /// Loads a GGUF file onto `dev` (weights dequantized on the host, converted to `scheme`
    /// and uploaded), with the tokenizer its metadata describes.
    ///
    /// # Errors
    /// Loading errors ([`GpuError::Model`]) and device errors.
    pub fn from_gguf(
        dev: Arc<CudaDevice>,
        path: impl AsRef<Path>,
        scheme: GpuScheme,
    ) -> Result<Self> {
        let f = GgufFile::open(path.as_ref())?;
        let cfg = ModelConfig::from_gguf(&f)?;
        let tok = Tokenizer::from_gguf(&f)?;
        let model = GpuModel::load(dev, &GgufSource::new(&f, &cfg), cfg, scheme)?;
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

    /// Loads a Hugging Face folder (`config.json`, `tokenizer.json`, safetensors) onto `dev`.
    ///
    /// # Errors
    /// Loading errors and device errors.
    pub fn from_hf_dir(
        dev: Arc<CudaDevice>,
        dir: impl AsRef<Path>,
        scheme: GpuScheme,
    ) -> Result<Self> {
        let dir = dir.as_ref();
        let cfg = ModelConfig::from_hf_file(dir.join("config.json"))?;
        let tok =
            Tokenizer::from_file(dir.join("tokenizer.json"), cfg.bos_token_id, &cfg.eos_token_ids)?;
        let src = SafetensorsSource::open(dir)?;
        let model = GpuModel::load(dev, &src, cfg, scheme)?;
        let name = dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Self::new(model, tok, name))
    }

    /// Replaces the settings.
    pub fn with_options(mut self, opts: EngineOptions) -> Self {
        self.opts = opts;
        self
    }

    /// Sets the BOS policy.
    pub fn set_bos_policy(&mut self, p: BosPolicy) {
        self.tokenizer.set_bos_policy(p);
    }

    /// The model.
    pub fn model(&self) -> &GpuModel {
        &self.model
    }

    /// The model, mutably (e.g. to free its buffers).
    pub fn model_mut(&mut self) -> &mut GpuModel {
        &mut self.model
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

    /// Everything that changes scores, in one line.
    pub fn settings_label(&self) -> String {
        format!(
            "scheme={} {} max_length={} batch_tokens={} device={}",
            self.model.scheme().label(),
            self.tokenizer.bos_label(),
            self.max_length(),
            self.opts.batch_tokens,
            self.model.device_label()
        )
    }

    /// lm-eval's `_encode_pair` (as [`Engine::encode_pair`](crate::Engine::encode_pair)).
    ///
    /// # Errors
    /// Empty sides; tokenizer errors (as [`GpuError::Model`]).
    pub fn encode_pair(&self, context: &str, continuation: &str) -> Result<TokenPair> {
        Ok(crate::engine::encode_pair(&self.tokenizer, context, continuation)?)
    }

    /// Scores token pairs: `(Σ log p(cont | ctx), is_greedy)` per pair, with the CPU engine's
    /// semantics; each packed batch is one forward pass on the device.
    ///
    /// # Errors
    /// Invalid requests; device errors.
    pub fn loglikelihood_tokens(&mut self, reqs: &[TokenPair]) -> Result<Vec<(f64, bool)>> {
        let max_len = self.max_length();
        let mut uniq: Vec<(Vec<u32>, usize)> = Vec::new();
        let mut key: HashMap<Vec<u32>, usize> = HashMap::new();
        let mut member = Vec::with_capacity(reqs.len());
        for (i, (ctx, cont)) in reqs.iter().enumerate() {
            if ctx.is_empty() || cont.is_empty() {
                return Err(GpuError::invalid(format!(
                    "request {i}: empty context or continuation"
                )));
            }
            if cont.len() > max_len {
                return Err(GpuError::invalid(format!(
                    "request {i}: continuation of {} tokens exceeds max_length {max_len}",
                    cont.len()
                )));
            }
            let total = ctx.len() + cont.len();
            let start = total.saturating_sub(max_len + 1);
            let input: Vec<u32> = ctx
                .iter()
                .chain(cont.iter())
                .skip(start)
                .take(total - 1 - start)
                .copied()
                .collect();
            let u = *key.entry(input.clone()).or_insert_with(|| {
                uniq.push((input, 0));
                uniq.len() - 1
            });
            uniq[u].1 = uniq[u].1.max(cont.len());
            member.push(u);
        }
        let mut order: Vec<usize> = (0..uniq.len()).collect();
        order.sort_by(|&a, &b| {
            uniq[b].0.len().cmp(&uniq[a].0.len()).then_with(|| uniq[a].0.cmp(&uniq[b].0))
        });
        // Targets wanted at each of the last `need` positions of each unique input.
        let mut wanted: Vec<Vec<Vec<u32>>> =
            uniq.iter().map(|(_, need)| vec![Vec::new(); *need]).collect();
        for (i, (_, cont)) in reqs.iter().enumerate() {
            let u = member[i];
            let need = uniq[u].1;
            for (j, &t) in cont.iter().enumerate() {
                let w = &mut wanted[u][need - cont.len() + j];
                if !w.contains(&t) {
                    w.push(t);
                }
            }
        }
        let mut scored: Vec<Vec<super::model::RowScore>> = vec![Vec::new(); uniq.len()];
        let mut b = 0;
        while b < order.len() {
            let mut e = b;
            let mut tokens = 0;
            while e < order.len()
                && (e == b || tokens + uniq[order[e]].0.len() <= self.opts.batch_tokens)
            {
                tokens += uniq[order[e]].0.len();
                e += 1;
            }
            let batch = &order[b..e];
            let seqs: Vec<&[u32]> = batch.iter().map(|&u| uniq[u].0.as_slice()).collect();
            let mut pos = Vec::with_capacity(batch.len());
            let mut tg = Vec::with_capacity(batch.len());
            let mut n_scored = 0;
            for &u in batch {
                let len = uniq[u].0.len();
                let need = uniq[u].1.min(len);
                pos.push((len - need..len).collect::<Vec<_>>());
                // When truncation left fewer input positions than continuation tokens, the
                // first `need` wanted lists are the ones that fit (as on the CPU).
                tg.push(wanted[u].iter().take(need).cloned().collect::<Vec<_>>());
                n_scored += need;
            }
            let res = self.model.score_batch(&seqs, &pos, &tg)?;
            for (&u, r) in batch.iter().zip(res) {
                scored[u] = r;
            }
            self.counters.forward_passes += 1;
            self.counters.tokens_processed += tokens as u64;
            self.counters.tokens_scored += n_scored as u64;
            b = e;
        }
        let mut out = Vec::with_capacity(reqs.len());
        for (i, (_, cont)) in reqs.iter().enumerate() {
            let u = member[i];
            let need = scored[u].len();
            let n = cont.len().min(need);
            let mut lp = 0f64;
            let mut greedy = true;
            for (j, &t) in cont[cont.len() - n..].iter().enumerate() {
                let r = &scored[u][need - n + j];
                let v = r.picks.iter().find(|(tt, _)| *tt == t).map_or(f32::NEG_INFINITY, |p| p.1);
                lp += f64::from(v) - r.log_z;
                greedy &= r.argmax == t;
            }
            out.push((lp, greedy));
        }
        Ok(out)
    }

    /// Greedy generation from token ids in groups of `gen_batch`; stops at EOS, a stop string or
    /// `max_new` tokens. Returns `(generated ids, text cut before the first stop string)`.
    ///
    /// # Errors
    /// Device and tokenizer errors.
    pub fn generate_tokens(
        &mut self,
        prompts: &[Vec<u32>],
        until: &[Vec<String>],
        max_new: &[usize],
    ) -> Result<Vec<(Vec<u32>, String)>> {
        if until.len() != prompts.len() || max_new.len() != prompts.len() {
            return Err(GpuError::invalid("one stop list and one max_new per prompt"));
        }
        let vocab = self.tokenizer.vocab_size().min(self.model.config().vocab).max(1);
        let eos: Vec<u32> = self.tokenizer.eos_ids().to_vec();
        let mut results = vec![(Vec::new(), String::new()); prompts.len()];
        let chunk = self.opts.gen_batch.max(1);
        let idx: Vec<usize> =
            (0..prompts.len()).filter(|&i| !prompts[i].is_empty() && max_new[i] > 0).collect();
        for group in idx.chunks(chunk) {
            let ps: Vec<&[u32]> = group.iter().map(|&i| prompts[i].as_slice()).collect();
            let mn: Vec<usize> = group.iter().map(|&i| max_new[i]).collect();
            let tok = &self.tokenizer;
            let mut stop_err = None;
            let (generated, passes, processed) =
                self.model.generate_greedy(&ps, &mn, &eos, vocab, |a, ids| {
                    let stops = &until[group[a]];
                    if stops.is_empty() {
                        return false;
                    }
                    match tok.decode(ids, true) {
                        Ok(text) => {
                            stops.iter().any(|s| !s.is_empty() && text.contains(s.as_str()))
                        }
                        Err(e) => {
                            stop_err = Some(e);
                            true
                        }
                    }
                })?;
            if let Some(e) = stop_err {
                return Err(e.into());
            }
            self.counters.forward_passes += passes;
            self.counters.tokens_processed += processed;
            for (a, ids) in generated.into_iter().enumerate() {
                let i = group[a];
                self.counters.tokens_generated += ids.len() as u64;
                let mut text = self.tokenizer.decode(&ids, true)?;
                let cut = until[i]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .filter_map(|s| text.find(s.as_str()))
                    .min();
                if let Some(c) = cut {
                    text.truncate(c);
                }
                results[i] = (ids, text);
            }
        }
        Ok(results)
    }
}

fn model_err(e: GpuError) -> ModelError {
    ModelError::backend("eai-model CUDA engine", e)
}

impl LanguageModel for GpuEngine {
    fn info(&self) -> ModelInfo {
        ModelInfo::new(self.name.clone())
            .max_context(self.max_length())
            .scheme(self.model.scheme().label())
            .device(self.model.device_label())
            .add_bos_token(self.tokenizer.adds_bos())
    }

    fn loglikelihood(
        &mut self,
        reqs: &[LoglikelihoodRequest],
    ) -> std::result::Result<Vec<Loglikelihood>, ModelError> {
        let mut pairs = Vec::with_capacity(reqs.len());
        for (i, r) in reqs.iter().enumerate() {
            let p = self.encode_pair(&r.context, &r.continuation).map_err(|e| match e {
                GpuError::InvalidInput { reason } => {
                    ModelError::InvalidRequest { index: i, reason }
                }
                e => model_err(e),
            })?;
            pairs.push(p);
        }
        let scores = self.loglikelihood_tokens(&pairs).map_err(model_err)?;
        Ok(scores
            .into_iter()
            .zip(&pairs)
            .map(|((lp, g), (_, cont))| {
                let mut l = Loglikelihood::new(lp, g);
                l.tokens = Some(cont.len() as u32);
                l
            })
            .collect())
    }

    fn generate_until(
        &mut self,
        reqs: &[GenerateRequest],
    ) -> std::result::Result<Vec<Generation>, ModelError> {
        let max_len = self.max_length();
        let mut prompts = Vec::with_capacity(reqs.len());
        for (i, r) in reqs.iter().enumerate() {
            let mut ids = self.tokenizer.encode(&r.context).map_err(|e| model_err(e.into()))?;
            if ids.is_empty() {
                return Err(ModelError::InvalidRequest { index: i, reason: "empty prompt".into() });
            }
            let keep = max_len.saturating_sub(r.max_gen_toks).max(1);
            if ids.len() > keep {
                ids.drain(..ids.len() - keep);
            }
            prompts.push(ids);
        }
        let until: Vec<Vec<String>> = reqs.iter().map(|r| r.until.clone()).collect();
        let max_new: Vec<usize> = reqs.iter().map(|r| r.max_gen_toks).collect();
        let out = self.generate_tokens(&prompts, &until, &max_new).map_err(model_err)?;
        Ok(out
            .into_iter()
            .map(|(ids, text)| {
                let mut g = Generation::new(text);
                g.tokens = Some(ids.len() as u32);
                g
            })
            .collect())
    }

    fn forward_passes(&self) -> Option<u64> {
        Some(self.counters.forward_passes)
    }
}
