//! [`GpuEngine`]: lm-eval request semantics on top of [`GpuModel`], and
//! [`eai_core::LanguageModel`].
//!
//! The request semantics are the CPU [`Engine`](crate::Engine)'s: lm-eval's `_encode_pair`
//! (trailing context whitespace moves to the continuation), input = last `max_length + 1` tokens
//! of `ctx ++ cont` minus the last, identical inputs run once, longest first, packed without
//! padding up to `batch_tokens` per forward pass. Shared contexts
//! ([`EngineOptions::share_prefixes`], on by default, as on the CPU): inputs with the same
//! unscored head (a multiple-choice document's context) run that head once, in the same pass
//! as every choice's scored tail, which attends to the head's KV slots
//! ([`GpuModel::score_packed`](super::GpuModel::score_packed)).

use std::path::Path;
use std::sync::Arc;

use eai_core::{
    BatchHint, EngineTime, GenerateRequest, Generation, LanguageModel, Loglikelihood,
    LoglikelihoodRequest, ModelError, ModelInfo,
};
use eai_quant::cuda::CudaDevice;

use super::error::{GpuError, Result};
use super::model::{GpuModel, GpuScheme};
use super::plan::{ScorePlan, pipelined};
use crate::config::ModelConfig;
use crate::engine::{Counters, EngineOptions, TokenPair};
use crate::gguf::GgufFile;
use crate::source::{GgufSource, SafetensorsSource};
use crate::tokenizer::{BosPolicy, Tokenizer};
use crate::tokens::TokenCache;

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
    tokens: Arc<TokenCache>,
    time: EngineTime,
}

impl GpuEngine {
    /// The GPU's default settings: [`EngineOptions::default`] with larger batches (8192 packed
    /// tokens per scoring pass, up to 256 sequences decoded together with continuous batching,
    /// fewer when their KV cache would not fit the device's memory: [`GpuEngine::gen_slots`]),
    /// since a GPU forward pass of a few thousand tokens costs little more than one of a few
    /// hundred. The environment variable `EAI_GEN_BATCH=N` sets `gen_batch` (e.g. 1, to check
    /// batched generation against one-at-a-time greedy decoding through the CLI), and
    /// `EAI_BATCH_TOKENS=N` sets `batch_tokens` (to measure other pass sizes through the CLI).
    pub fn default_options() -> EngineOptions {
        let env = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|&n| n > 0)
                .unwrap_or(default)
        };
        EngineOptions {
            batch_tokens: env("EAI_BATCH_TOKENS", 8192),
            gen_batch: env("EAI_GEN_BATCH", 256),
            ..EngineOptions::default()
        }
    }

    /// Wraps a model and its tokenizer, with [`GpuEngine::default_options`].
    pub fn new(model: GpuModel, tokenizer: Tokenizer, name: impl Into<String>) -> Self {
        GpuEngine {
            model,
            tokenizer,
            name: name.into(),
            opts: Self::default_options(),
            counters: Counters::default(),
            tokens: Arc::default(),
            time: EngineTime::default(),
        }
    }

    /// Uses `cache` for the token ids of requests (see [`TokenCache`]): give every engine that
    /// shares a tokenizer (CPU or GPU, any scheme) the same cache so that each text is encoded
    /// once per process. Without it an engine keeps a cache of its own.
    pub fn token_cache(mut self, cache: Arc<TokenCache>) -> Self {
        self.tokens = cache;
        self
    }

    /// [`GpuEngine::token_cache`] in place.
    pub fn set_token_cache(&mut self, cache: Arc<TokenCache>) {
        self.tokens = cache;
    }

    /// The token cache in use.
    pub fn tokens(&self) -> &Arc<TokenCache> {
        &self.tokens
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
        let src = GgufSource::new(&f, &cfg);
        let model = GpuModel::load(dev, &crate::validate::FiniteChecked(&src), cfg, scheme)?;
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
        let model = GpuModel::load(dev, &crate::validate::FiniteChecked(&src), cfg, scheme)?;
        let name = dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Self::new(model, tok, name))
    }

    /// Replaces the settings.
    pub fn with_options(mut self, opts: EngineOptions) -> Self {
        self.opts = opts;
        self
    }

    /// The settings.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Replaces the settings in place (they apply from the next call).
    pub fn set_options(&mut self, opts: EngineOptions) {
        self.opts = opts;
    }

    /// Turns shared-context scoring ([`EngineOptions::share_prefixes`]) on or off.
    pub fn set_share_prefixes(&mut self, on: bool) {
        self.opts.share_prefixes = on;
    }

    /// Sets the BOS policy.
    pub fn set_bos_policy(&mut self, p: BosPolicy) {
        self.tokenizer.set_bos_policy(p);
    }

    /// Sets how special-token text inside requests is encoded (see
    /// [`SpecialTokens`](crate::SpecialTokens)).
    pub fn set_special_tokens(&mut self, mode: crate::SpecialTokens) {
        self.tokenizer.set_special_tokens(mode);
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
            "scheme={} {} max_length={} batch_tokens={} shared_contexts={} device={}",
            self.model.scheme().label(),
            self.tokenizer.bos_label(),
            self.max_length(),
            self.opts.batch_tokens,
            if self.opts.share_prefixes { "yes" } else { "no" },
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
    /// semantics; each packed batch is one forward pass on the device. With
    /// [`EngineOptions::share_prefixes`] a shared context runs once per pass (results equal
    /// the unshared path up to float rounding, except for [`GpuScheme::Dynamic`], whose
    /// per-tensor activation scale depends on which rows share a pass).
    ///
    /// # Errors
    /// Invalid requests; device errors.
    pub fn loglikelihood_tokens(&mut self, reqs: &[TokenPair]) -> Result<Vec<(f64, bool)>> {
        let plan = ScorePlan::new(
            reqs,
            self.max_length(),
            self.opts.share_prefixes,
            self.opts.batch_tokens,
        )?;
        let mut scored: Vec<Vec<super::model::RowScore>> = vec![Vec::new(); plan.uniq.len()];
        // Each pass's sequences are built on another thread while the device runs the previous
        // pass (host work that would otherwise leave the GPU idle between passes).
        let model = &mut self.model;
        let counters = &mut self.counters;
        pipelined(
            plan.passes.len(),
            |p| plan.pass_input(reqs, p),
            |pass| {
                let res = model.score_packed(&pass.seqs, &pass.pos, &pass.targets)?;
                for (o, r) in pass.owner.into_iter().zip(res) {
                    if let Some(u) = o {
                        scored[u] = r;
                    }
                }
                counters.forward_passes += 1;
                counters.tokens_processed += pass.tokens as u64;
                counters.tokens_scored += pass.scored as u64;
                Ok::<(), GpuError>(())
            },
        )?;
        let mut out = Vec::with_capacity(reqs.len());
        for (i, (_, cont)) in reqs.iter().enumerate() {
            let u = plan.member[i];
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

    /// Greedy generation from token ids with continuous batching: up to `gen_batch`
    /// sequences decode together (fewer when their KV cache would not fit the device's memory:
    /// [`GpuEngine::gen_slots`]), and a finished sequence's cache slots go to the next prompt at
    /// once, prefilled in the same forward pass as the others' next tokens (at most
    /// `batch_tokens` prompt rows admitted per pass), as on the CPU engine. Stops at EOS, a stop
    /// string or `max_new` tokens. Returns `(generated ids, text cut before the first stop
    /// string)`.
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
        let idx: Vec<usize> =
            (0..prompts.len()).filter(|&i| !prompts[i].is_empty() && max_new[i] > 0).collect();
        if idx.is_empty() {
            return Ok(results);
        }
        let ps: Vec<&[u32]> = idx.iter().map(|&i| prompts[i].as_slice()).collect();
        let mn: Vec<usize> = idx.iter().map(|&i| max_new[i]).collect();
        let cap = ps.iter().zip(&mn).map(|(p, &n)| p.len() + n).max().unwrap_or(1);
        let row_budget = self.opts.batch_tokens.max(1);
        let slots = self.gen_slots(idx.len(), cap, row_budget)?;
        let tok = &self.tokenizer;
        let mut stop_err = None;
        let (generated, passes, processed) = self.model.generate_continuous(
            &ps,
            &mn,
            &eos,
            vocab,
            (slots, row_budget),
            |a, ids| match crate::engine::stop_hit(tok, ids, &until[idx[a]]) {
                Ok(hit) => hit,
                Err(e) => {
                    stop_err = Some(e);
                    true
                }
            },
        )?;
        if let Some(e) = stop_err {
            return Err(e.into());
        }
        self.counters.forward_passes += passes;
        self.counters.tokens_processed += processed;
        for (a, ids) in generated.into_iter().enumerate() {
            let i = idx[a];
            self.counters.tokens_generated += ids.len() as u64;
            let text = crate::engine::cut_text(self.tokenizer.decode(&ids, true)?, &until[i]);
            results[i] = (ids, text);
        }
        Ok(results)
    }

    /// How many of `n` sequences of up to `cap` tokens (prompt + new) decode together: at most
    /// `gen_batch`, and no more than fit three quarters of the memory the device has free (plus
    /// this model's current KV cache, which a larger one replaces) with the KV cache (f32, `cap`
    /// slots per sequence, as [`GpuModel::generate_continuous`] allocates it) and the
    /// activations of a pass of `row_budget` prompt rows plus one decode row per sequence. At
    /// least one whatever the estimate; an allocation that still fails is a typed
    /// out-of-memory error.
    ///
    /// # Errors
    /// [`GpuError::Driver`] when free memory cannot be queried.
    pub fn gen_slots(&self, n: usize, cap: usize, row_budget: usize) -> Result<usize> {
        let mem = self.model.memory()?;
        let budget = (mem.device_free + mem.kv_cache) / 4 * 3;
        let c = self.model.config();
        let kv_per_token = (c.n_layers * 2 * c.n_kv_heads * c.head_dim * 4) as u64;
        let wq = (c.n_heads + 2 * c.n_kv_heads) * c.head_dim;
        let kmax = c.hidden.max(c.n_heads * c.head_dim).max(c.ffn);
        // f32 activations per packed row (an upper bound of the scratch `GpuModel` allocates).
        let per_row = (16 + 4 * (c.hidden + wq + 2 * c.ffn) + 4 * kmax) as u64;
        let mut slots = self.opts.gen_batch.clamp(1, n.max(1));
        while slots > 1 {
            let kv = (slots as u64 * cap as u64).next_multiple_of(256) * kv_per_token;
            let rows = (row_budget + slots).next_multiple_of(256) as u64;
            if kv + rows * per_row <= budget {
                break;
            }
            slots = slots * 7 / 8;
        }
        Ok(slots.max(1))
    }
}

const GPU: &str = "eai-model CUDA engine";

fn model_err(e: GpuError) -> ModelError {
    ModelError::backend(GPU, e)
}

crate::calls::token_engine!(GpuEngine, GPU);

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
        crate::calls::loglikelihood(self, reqs)
    }

    fn generate_until(
        &mut self,
        reqs: &[GenerateRequest],
    ) -> std::result::Result<Vec<Generation>, ModelError> {
        crate::calls::generate_until(self, reqs)
    }

    /// lm-eval's `loglikelihood_rolling`, as the CPU engine serves it (`crate::rolling`).
    fn loglikelihood_rolling(
        &mut self,
        reqs: &[eai_core::RollingRequest],
    ) -> std::result::Result<Vec<eai_core::RollingLoglikelihood>, ModelError> {
        crate::calls::loglikelihood_rolling(self, reqs)
    }

    fn supports(&self, _: eai_core::RequestKind) -> Option<bool> {
        Some(true)
    }

    /// A whole task per call, of either kind: the engine packs scoring passes to
    /// `batch_tokens` and decodes in groups sized to the device's memory, so device memory does
    /// not depend on the call size, and one call lets it order and pack all of a task's work.
    fn batch_hint(&self) -> Option<BatchHint> {
        Some(BatchHint::unlimited())
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
