//! The study's seam to an inference engine: [`ModelLoader`], closures ([`loader_fn`]) and
//! `eai-model` GGUF files ([`GgufLoader`]).

#[cfg(feature = "model")]
use std::path::PathBuf;

use eai_core::{LanguageModel, ModelError, Seconds};
use eai_eval::Prepared;

use crate::scheme::Scheme;

/// Builds the model under each scheme: the study's seam to an inference engine.
///
/// Implemented for `eai-model` GGUF files by `GgufLoader` (feature `model`), and for any
/// closure `FnMut(Scheme) -> Result<Box<dyn LanguageModel>, ModelError>` through
/// [`loader_fn`].
pub trait ModelLoader {
    /// The model's name (the `model` label of every run).
    fn name(&self) -> String;

    /// Builds the model under `scheme`, quantizing as needed. Called once per scheme, inside
    /// an energy window of its own (the quantization cost is reported, not mixed into runs).
    ///
    /// # Errors
    /// [`ModelError::Unsupported`] for a scheme the engine cannot run; any engine failure.
    fn load(&mut self, scheme: Scheme) -> Result<Box<dyn LanguageModel>, ModelError>;

    /// The CUDA devices (ordinals of this process) the model runs on, when known (a capability
    /// query: `None` is never wrong). Only these GPUs' energy is charged to the runs; the
    /// machine's other GPUs are measured and shown apart.
    fn cuda_ordinals(&self) -> Option<Vec<usize>> {
        None
    }

    /// Encodes a task's requests ahead of its windows, where the models this loader builds
    /// will find them (e.g. a token cache they share), so that no measured window pays for
    /// tokenizing; returns the time it took. A capability: `Ok(None)` (the default) means "not
    /// done", and the engine then tokenizes inside its calls, as before.
    ///
    /// # Errors
    /// When the tokenizer cannot be read.
    fn pretokenize(&mut self, plan: &Prepared) -> Result<Option<Seconds>, ModelError> {
        let _ = plan;
        Ok(None)
    }
}

impl<L: ModelLoader + ?Sized> ModelLoader for &mut L {
    fn name(&self) -> String {
        (**self).name()
    }
    fn load(&mut self, scheme: Scheme) -> Result<Box<dyn LanguageModel>, ModelError> {
        (**self).load(scheme)
    }
    fn cuda_ordinals(&self) -> Option<Vec<usize>> {
        (**self).cuda_ordinals()
    }
    fn pretokenize(&mut self, plan: &Prepared) -> Result<Option<Seconds>, ModelError> {
        (**self).pretokenize(plan)
    }
}

impl<L: ModelLoader + ?Sized> ModelLoader for Box<L> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn load(&mut self, scheme: Scheme) -> Result<Box<dyn LanguageModel>, ModelError> {
        (**self).load(scheme)
    }
    fn cuda_ordinals(&self) -> Option<Vec<usize>> {
        (**self).cuda_ordinals()
    }
    fn pretokenize(&mut self, plan: &Prepared) -> Result<Option<Seconds>, ModelError> {
        (**self).pretokenize(plan)
    }
}

/// A [`ModelLoader`] from a name and a closure (see [`loader_fn`]).
pub struct FnLoader<F> {
    name: String,
    f: F,
}

impl<F> std::fmt::Debug for FnLoader<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnLoader").field("name", &self.name).finish_non_exhaustive()
    }
}

/// A loader from a closure that builds your engine under a scheme.
///
/// ```
/// use eai_study::{Scheme, loader_fn};
/// use eai_core::{LanguageModel, ModelError};
/// # use eai_core::{GenerateRequest, Generation, Loglikelihood, LoglikelihoodRequest, ModelInfo};
/// # struct MyEngine(Scheme);
/// # impl LanguageModel for MyEngine {
/// #     fn info(&self) -> ModelInfo { ModelInfo::new("mine") }
/// #     fn loglikelihood(&mut self, r: &[LoglikelihoodRequest]) -> Result<Vec<Loglikelihood>, ModelError> { Ok(vec![]) }
/// #     fn generate_until(&mut self, r: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> { Ok(vec![]) }
/// # }
/// let loader = loader_fn("my-engine", |scheme: Scheme| -> Result<Box<dyn LanguageModel>, ModelError> {
///     match scheme {
///         Scheme::Fp32 | Scheme::Fp16 => Ok(Box::new(MyEngine(scheme))),
///         other => Err(ModelError::Unsupported { model: "my-engine".into(), what: other.label().into() }),
///     }
/// });
/// # let _ = loader;
/// ```
pub fn loader_fn<F>(name: impl Into<String>, f: F) -> FnLoader<F>
where
    F: FnMut(Scheme) -> Result<Box<dyn LanguageModel>, ModelError>,
{
    FnLoader { name: name.into(), f }
}

impl<F> ModelLoader for FnLoader<F>
where
    F: FnMut(Scheme) -> Result<Box<dyn LanguageModel>, ModelError>,
{
    fn name(&self) -> String {
        self.name.clone()
    }
    fn load(&mut self, scheme: Scheme) -> Result<Box<dyn LanguageModel>, ModelError> {
        (self.f)(scheme)
    }
}

/// Loads a GGUF file or a Hugging Face folder (`config.json`, `tokenizer.json`, safetensors) with
/// `eai-model` under each scheme (weights dequantized to f32, then converted to the scheme's
/// format in every linear layer).
#[cfg(feature = "model")]
#[derive(Clone, Debug)]
pub struct GgufLoader {
    path: PathBuf,
    name: String,
    options: Option<eai_model::EngineOptions>,
    /// Where replicas run: one device, or several CUDA devices (data-parallel). Never empty.
    devices: Vec<crate::device::Device>,
    tokens: std::sync::Arc<eai_model::TokenCache>,
    /// The model's tokenizer, once read (for [`ModelLoader::pretokenize`]).
    tokenizer: Option<eai_model::Tokenizer>,
    /// Shapes and tokenizer from the file's metadata, synthetic weights (see
    /// [`GgufLoader::synthetic`]).
    synthetic: bool,
}

#[cfg(feature = "model")]
impl GgufLoader {
    /// A loader for the GGUF file at `path`; the model name is the file stem until the file is
    /// loaded.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let name = path
            .file_stem()
            .map_or_else(|| "model".to_string(), |s| s.to_string_lossy().into_owned());
        Self {
            path,
            name,
            options: None,
            devices: vec![crate::device::Device::Cpu],
            tokens: std::sync::Arc::new(eai_model::TokenCache::new()),
            tokenizer: None,
            synthetic: false,
        }
    }

    /// A model with the exact shapes and the tokenizer of the GGUF file at `path` — which may be
    /// metadata only (`eai_model::GgufFile::open_metadata_only`), such as the published first
    /// part of DeepSeek-R1-Distill-Qwen-7B — and synthetic weights (fixed seed). Its runs are
    /// named `<model> (synthetic weights)`: their speed, memory and energy describe the shapes and
    /// the scheme; their scores are those of random weights. Runs on a CUDA device only
    /// ([`GgufLoader::device`]): the CPU engine keeps f32 weights, 30 GB at 7B.
    pub fn synthetic(path: impl Into<PathBuf>) -> Self {
        let mut l = Self::new(path);
        l.synthetic = true;
        l.name = format!("{} (synthetic weights)", l.name);
        l
    }

    #[cfg(feature = "cuda")]
    fn load_synthetic(
        &mut self,
        s: eai_model::Scheme,
        ordinal: usize,
    ) -> Result<Box<dyn LanguageModel>, ModelError> {
        use eai_model::cuda::{GpuEngine, GpuModel, GpuScheme, open_device};
        let what = |e: &dyn std::fmt::Display| {
            ModelError::backend(format!("reading {}", self.path.display()), e.to_string())
        };
        let f = eai_model::GgufFile::open_metadata_only(&self.path).map_err(|e| what(&e))?;
        let cfg = eai_model::ModelConfig::from_gguf(&f).map_err(|e| what(&e))?;
        let tok = eai_model::Tokenizer::from_gguf(&f).map_err(|e| what(&e))?;
        let base = f
            .get("general.name")
            .and_then(|v| v.as_str())
            .map_or_else(|| self.name.replace(" (synthetic weights)", ""), str::to_string);
        self.name = format!("{base} (synthetic weights)");
        let gs = GpuScheme::from_cpu(s).unwrap_or(GpuScheme::W8A16);
        let dev = open_device(ordinal)
            .map_err(|e| ModelError::backend(format!("opening CUDA device {ordinal}"), e))?;
        let model = GpuModel::synthetic(dev, cfg, gs, 7)
            .map_err(|e| ModelError::backend(format!("building synthetic {base} on the GPU"), e))?;
        let mut e = GpuEngine::new(model, tok, self.name.clone());
        if let Some(o) = &self.options {
            e = e.with_options(o.clone());
        }
        let e = e.token_cache(self.tokens.clone());
        Ok(Box::new(e))
    }

    /// One replica per device, as one `eai_model::DataParallel` model.
    #[cfg(feature = "cuda")]
    fn load_data_parallel(
        &mut self,
        s: eai_model::Scheme,
    ) -> Result<Box<dyn LanguageModel>, ModelError> {
        let mut ordinals = Vec::with_capacity(self.devices.len());
        for d in &self.devices {
            match d {
                crate::device::Device::Cuda(n) => ordinals.push(*n),
                other => {
                    return Err(ModelError::Unsupported {
                        model: "eai-model".into(),
                        what: format!(
                            "data-parallel replicas on {other}: several devices must all be CUDA \
                             devices"
                        ),
                    });
                }
            }
        }
        if self.synthetic {
            return Err(ModelError::Unsupported {
                model: self.name.clone(),
                what: "synthetic weights on several devices (use one `--cuda N`)".into(),
            });
        }
        let (path, options, tokens) =
            (self.path.clone(), self.options.clone(), self.tokens.clone());
        let dp = eai_model::DataParallel::spawn(ordinals.len(), move |k| {
            gpu_engine(&path, ordinals[k], s, options.as_ref(), &tokens)
        })?;
        self.name = dp.info().name;
        Ok(Box::new(dp))
    }

    /// Runs the model on CUDA device `ordinal` (`eai_model::cuda::GpuEngine`) instead of the
    /// CPU. A missing driver or GPU is an error when the model is loaded, never a silent CPU
    /// fallback.
    #[cfg(feature = "cuda")]
    pub fn cuda(self, ordinal: usize) -> Self {
        self.device(crate::device::Device::Cuda(ordinal))
    }

    /// Runs the model on `device` (default: the CPU; [`Device::auto`](crate::Device::auto)
    /// picks the GPU when one is usable). A CUDA device in a build without the `cuda` feature,
    /// or one that cannot be opened, is an error when the model is loaded, never a silent CPU
    /// fallback.
    pub fn device(mut self, device: crate::device::Device) -> Self {
        self.devices = vec![device];
        self
    }

    /// Runs one replica of the model on each of `devices` (CUDA devices; one device: as
    /// [`GgufLoader::device`]), as one data-parallel model (`eai_model::DataParallel`): each call's
    /// requests are split by token load and run on every device at once, the answers merged in
    /// request order. A device listed twice gets two replicas (for testing the split on one GPU).
    /// An empty list keeps the current device.
    pub fn devices(mut self, devices: impl IntoIterator<Item = crate::device::Device>) -> Self {
        let d: Vec<_> = devices.into_iter().collect();
        if !d.is_empty() {
            self.devices = d;
        }
        self
    }

    /// The devices the model will run on (one, or several for data-parallel runs).
    pub fn devices_of(&self) -> &[crate::device::Device] {
        &self.devices
    }

    /// The token cache the engines it builds share (one tokenizer, one cache: schemes and
    /// repetitions encode each request once). Hits and misses: `TokenCache::stats`.
    pub fn tokens(&self) -> &std::sync::Arc<eai_model::TokenCache> {
        &self.tokens
    }

    /// The device the model will run on.
    pub fn device_of(&self) -> crate::device::Device {
        self.devices.first().copied().unwrap_or_default()
    }

    /// The model's tokenizer, as its engines build it (read once, then kept).
    fn tokenizer(&mut self) -> Result<eai_model::Tokenizer, ModelError> {
        if let Some(t) = &self.tokenizer {
            return Ok(t.clone());
        }
        let what = |e: &dyn std::fmt::Display| {
            ModelError::backend(
                format!("reading the tokenizer of {}", self.path.display()),
                e.to_string(),
            )
        };
        let tok = if self.path.is_dir() {
            let cfg = eai_model::ModelConfig::from_hf_file(self.path.join("config.json"))
                .map_err(|e| what(&e))?;
            eai_model::Tokenizer::from_file(
                self.path.join("tokenizer.json"),
                cfg.bos_token_id,
                &cfg.eos_token_ids,
            )
        } else {
            eai_model::GgufFile::open_metadata_only(&self.path)
                .and_then(|f| eai_model::Tokenizer::from_gguf(&f))
        }
        .map_err(|e| what(&e))?;
        self.tokenizer = Some(tok.clone());
        Ok(tok)
    }

    /// Sets the engine options (max length, batching). Without it the engine's defaults apply
    /// (larger batches on the GPU: `GpuEngine::default_options`).
    pub fn engine_options(mut self, o: eai_model::EngineOptions) -> Self {
        self.options = Some(o);
        self
    }
}

#[cfg(feature = "model")]
impl ModelLoader for GgufLoader {
    fn name(&self) -> String {
        self.name.clone()
    }

    /// The CUDA ordinals of [`GgufLoader::devices`]; `None` for the CPU engine (every source
    /// is then charged, as before).
    fn cuda_ordinals(&self) -> Option<Vec<usize>> {
        self.devices
            .iter()
            .map(|d| match d {
                crate::device::Device::Cuda(n) => Some(*n),
                _ => None,
            })
            .collect()
    }

    /// Encodes the plan's scoring requests into the token cache every engine it builds shares
    /// (`GgufLoader::tokens`), with the model's own tokenizer read from the file, exactly as the
    /// engines encode them (lm-eval's `_encode_pair`); the windows then find them cached.
    fn pretokenize(&mut self, plan: &Prepared) -> Result<Option<Seconds>, ModelError> {
        let t = std::time::Instant::now();
        let reqs: Vec<eai_core::LoglikelihoodRequest> =
            plan.loglikelihood_requests().cloned().collect();
        if reqs.is_empty() {
            return Ok(None);
        }
        let tok = self.tokenizer()?;
        // A request that fails to encode is left out: its engine call reports it.
        let _ = self.tokens.encode_pairs(&tok, &reqs);
        Ok(Some(Seconds(t.elapsed().as_secs_f64())))
    }

    fn load(&mut self, scheme: Scheme) -> Result<Box<dyn LanguageModel>, ModelError> {
        let Some(s) = scheme.model_scheme() else {
            return Err(ModelError::Unsupported {
                model: "eai-model".into(),
                what: format!(
                    "{scheme}: static INT8 activations need calibrated scales; use `dynamic` \
                     (per-token scales at run time) or `int8` (weight-only)"
                ),
            });
        };
        #[cfg(not(feature = "cuda"))]
        if let crate::device::Device::Cuda(ordinal) = self.device_of() {
            return Err(ModelError::Unsupported {
                model: "eai-model".into(),
                what: format!(
                    "cuda:{ordinal}: this eai was built without the `cuda` feature \
                     (cargo build --features cuda)"
                ),
            });
        }
        #[cfg(feature = "cuda")]
        if self.devices.len() > 1 {
            return self.load_data_parallel(s);
        }
        #[cfg(feature = "cuda")]
        if let (true, crate::device::Device::Cuda(ordinal)) = (self.synthetic, self.device_of()) {
            return self.load_synthetic(s, ordinal);
        }
        if self.synthetic {
            return Err(ModelError::Unsupported {
                model: self.name.clone(),
                what: "synthetic weights on the CPU (they run on the GPU only: `--cuda N` in a \
                       build with the `cuda` feature; the CPU engine keeps f32 weights, 30 GB at \
                       7B)"
                .into(),
            });
        }
        #[cfg(feature = "cuda")]
        if let crate::device::Device::Cuda(ordinal) = self.device_of() {
            let e = gpu_engine(&self.path, ordinal, s, self.options.as_ref(), &self.tokens)?;
            self.name = e.info().name;
            return Ok(Box::new(e));
        }
        // A Hugging Face folder (config.json, tokenizer.json, safetensors) or a GGUF file.
        let opts = eai_model::LoadOptions::new(s);
        let mut e = if self.path.is_dir() {
            eai_model::Engine::from_hf_dir(&self.path, opts)
        } else {
            eai_model::Engine::from_gguf(&self.path, opts)
        }
        .map_err(|e| ModelError::backend(format!("loading {}", self.path.display()), e))?;
        if let Some(o) = &self.options {
            e = e.with_options(o.clone());
        }
        let e = e.token_cache(self.tokens.clone());
        self.name = e.info().name;
        Ok(Box::new(e))
    }
}

/// A CUDA engine for `path` on device `ordinal` under `s`, with the loader's options and token
/// cache.
#[cfg(feature = "cuda")]
fn gpu_engine(
    path: &std::path::Path,
    ordinal: usize,
    s: eai_model::Scheme,
    options: Option<&eai_model::EngineOptions>,
    tokens: &std::sync::Arc<eai_model::TokenCache>,
) -> Result<eai_model::cuda::GpuEngine, ModelError> {
    use eai_model::cuda::{GpuEngine, GpuScheme, open_device};
    let gs = match s {
        eai_model::Scheme::Fp32 => GpuScheme::Fp32,
        eai_model::Scheme::Fp16 => GpuScheme::Fp16,
        eai_model::Scheme::Bf16 => GpuScheme::Bf16,
        eai_model::Scheme::W8A8 => GpuScheme::W8A8,
        _ => GpuScheme::W8A16,
    };
    let dev = open_device(ordinal)
        .map_err(|e| ModelError::backend(format!("opening CUDA device {ordinal}"), e))?;
    let e = if path.is_dir() {
        GpuEngine::from_hf_dir(dev, path, gs)
    } else {
        GpuEngine::from_gguf(dev, path, gs)
    };
    let mut e = e.map_err(|e| {
        ModelError::backend(format!("loading {} on CUDA device {ordinal}", path.display()), e)
    })?;
    if let Some(o) = options {
        e = e.with_options(o.clone());
    }
    Ok(e.token_cache(tokens.clone()))
}

#[cfg(all(test, feature = "model"))]
mod tests {
    use eai_eval::{Evaluator, Limit, Suite, bundled};

    use super::{GgufLoader, ModelLoader};
    use crate::scheme::Scheme;

    /// Requests the loader tokenized ahead of the windows are cache hits for every engine it
    /// builds (the engines' tokenizer is the one the loader read): the windows tokenize nothing.
    #[test]
    fn pretokenized_requests_are_cache_hits_for_the_engines() {
        let cache = eai_model::cache_dir(
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache"),
        );
        let Ok(Some(gguf)) = eai_model::find_smollm2(&cache) else {
            eprintln!(
                "SKIP pretokenized_requests_are_cache_hits: no SmolLM2 GGUF in {}",
                cache.display()
            );
            return;
        };
        let task = bundled::hellaswag().unwrap().with_limit(Some(Limit::Count(6)));
        let plan = Evaluator::new().prepare(&Suite { tasks: vec![task], groups: vec![] }).unwrap();
        let mut loader = GgufLoader::new(&gguf);
        let secs = loader.pretokenize(&plan).unwrap().expect("the GGUF loader pretokenizes");
        assert!(secs.0 > 0.0);
        let before = loader.tokens().stats();
        assert_eq!(before.pairs, plan.unique_requests());
        for scheme in [Scheme::Fp32, Scheme::Int8WeightOnly] {
            let mut m = loader.load(scheme).unwrap();
            let t0 = m.engine_time().unwrap();
            Evaluator::new().progress(false).run_prepared(&mut m, &plan).unwrap();
            let after = loader.tokens().stats();
            assert_eq!(after.misses, before.misses, "{scheme}: every request was cached");
            assert!(m.engine_time().unwrap().since(t0).tokenize.0 < secs.0 + 0.05);
        }
        // Tokenizing again costs look-ups only.
        loader.pretokenize(&plan).unwrap();
        assert_eq!(loader.tokens().stats().misses, before.misses);
    }
}
