//! The study's seam to an inference engine: [`ModelLoader`], closures ([`loader_fn`]) and
//! `eai-model` GGUF files ([`GgufLoader`]).

#[cfg(feature = "model")]
use std::path::PathBuf;

use eai_core::{LanguageModel, ModelError};

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
}

impl<L: ModelLoader + ?Sized> ModelLoader for &mut L {
    fn name(&self) -> String {
        (**self).name()
    }
    fn load(&mut self, scheme: Scheme) -> Result<Box<dyn LanguageModel>, ModelError> {
        (**self).load(scheme)
    }
}

impl<L: ModelLoader + ?Sized> ModelLoader for Box<L> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn load(&mut self, scheme: Scheme) -> Result<Box<dyn LanguageModel>, ModelError> {
        (**self).load(scheme)
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
    device: crate::device::Device,
    tokens: std::sync::Arc<eai_model::TokenCache>,
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
            device: crate::device::Device::Cpu,
            tokens: std::sync::Arc::new(eai_model::TokenCache::new()),
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
        self.device = device;
        self
    }

    /// The token cache the engines it builds share (one tokenizer, one cache: schemes and
    /// repetitions encode each request once). Hits and misses: `TokenCache::stats`.
    pub fn tokens(&self) -> &std::sync::Arc<eai_model::TokenCache> {
        &self.tokens
    }

    /// The device the model will run on.
    pub fn device_of(&self) -> crate::device::Device {
        self.device
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
        if let crate::device::Device::Cuda(ordinal) = self.device {
            return Err(ModelError::Unsupported {
                model: "eai-model".into(),
                what: format!(
                    "cuda:{ordinal}: this eai was built without the `cuda` feature \
                     (cargo build --features cuda)"
                ),
            });
        }
        #[cfg(feature = "cuda")]
        if let (true, crate::device::Device::Cuda(ordinal)) = (self.synthetic, self.device) {
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
        if let crate::device::Device::Cuda(ordinal) = self.device {
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
            let e = if self.path.is_dir() {
                GpuEngine::from_hf_dir(dev, &self.path, gs)
            } else {
                GpuEngine::from_gguf(dev, &self.path, gs)
            };
            let mut e = e.map_err(|e| {
                ModelError::backend(format!("loading {} on the GPU", self.path.display()), e)
            })?;
            if let Some(o) = &self.options {
                e = e.with_options(o.clone());
            }
            let e = e.token_cache(self.tokens.clone());
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
