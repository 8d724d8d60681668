//! [`Study`]: the paper's co-evaluation protocol in one call.
//!
//! For each scheme: build (quantize) the model, measure the idle baseline, warm up, then for
//! each repetition run every task inside its own energy window through a [`Metered`] model,
//! and record one [`TaskRecord`] per window and one [`Run`] per (scheme, repetition); cool
//! down; next scheme. The analysis (Table 2 with intervals, Pareto front, recommendation) and
//! the output folder are in [`StudyResults`].

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use eai_core::{Joules, LanguageModel, ModelError, ModelInfo, Seconds, Watts};
use eai_eval::{Evaluator, Limit, Suite, Task};
use eai_metrics::{EnergyDomain, Run};
use eai_power::{
    Baseline, CommandOptions, Domain, Measurement, Meter, MeterConfig, PowerSource, Provenance,
    ReplaySource, SourceInfo, Timeline,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::estimate::TdpEstimate;
use crate::metered::{CallEnergy, CallKind, Metered};
use crate::scheme::Scheme;

/// Builds the model under each scheme: the study's seam to an inference engine.
///
/// Implemented for `eai-model` GGUF files by [`GgufLoader`] (feature `model`), and for any
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
/// use eai::{Scheme, loader_fn};
/// use eai::core::{LanguageModel, ModelError};
/// # use eai::core::{GenerateRequest, Generation, Loglikelihood, LoglikelihoodRequest, ModelInfo};
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

/// Loads a GGUF file with `eai-model` under each scheme (weights dequantized to f32, then
/// converted to the scheme's format in every linear layer).
#[cfg(feature = "model")]
#[derive(Clone, Debug)]
pub struct GgufLoader {
    path: PathBuf,
    name: String,
    options: Option<eai_model::EngineOptions>,
    /// Shapes and tokenizer from the file's metadata, synthetic weights (see
    /// [`GgufLoader::synthetic`]).
    synthetic: bool,
    #[cfg(feature = "cuda")]
    cuda: Option<usize>,
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
            synthetic: false,
            #[cfg(feature = "cuda")]
            cuda: None,
        }
    }

    /// A model with the exact shapes and the tokenizer of the GGUF file at `path` — which may be
    /// metadata only (`eai_model::GgufFile::open_metadata_only`), such as the published first
    /// part of DeepSeek-R1-Distill-Qwen-7B — and synthetic weights (fixed seed). Its runs are
    /// named `<model> (synthetic weights)`: their speed, memory and energy describe the shapes and
    /// the scheme; their scores are those of random weights. Runs on the GPU only
    /// ([`GgufLoader::cuda`]): the CPU engine keeps f32 weights, 30 GB at 7B.
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
        Ok(Box::new(e))
    }

    /// Runs the model on CUDA device `ordinal` (`eai_model::cuda::GpuEngine`) instead of the
    /// CPU. A missing driver or GPU is an error when the model is loaded, never a silent CPU
    /// fallback.
    #[cfg(feature = "cuda")]
    pub fn cuda(mut self, ordinal: usize) -> Self {
        self.cuda = Some(ordinal);
        self
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
        #[cfg(feature = "cuda")]
        if let (true, Some(ordinal)) = (self.synthetic, self.cuda) {
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
        if let Some(ordinal) = self.cuda {
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
        self.name = e.info().name;
        Ok(Box::new(e))
    }
}

/// One task of a study, run in one energy window: an `eai-eval` task, or a group of tasks
/// scored by their aggregate (MMLU's 57 subjects as `mmlu`), plus the metric that scores it.
#[derive(Clone, Debug)]
pub struct StudyTask {
    name: String,
    suite: Suite,
    metric: Option<String>,
}

impl StudyTask {
    /// The task with its headline metric (`acc_norm` for ARC-Challenge and HellaSwag,
    /// `exact_match,strict-match` for GSM8K, `acc` otherwise).
    pub fn new(task: Task) -> Self {
        let name = task.name().to_string();
        Self { name, suite: Suite { tasks: vec![task], groups: vec![] }, metric: None }
    }

    /// A group of tasks run in one window and scored by the aggregate of the group `name` of
    /// `suite` (e.g. the `mmlu` suite from `eai_eval::tasks::load`, scored as `mmlu`).
    ///
    /// # Errors
    /// [`Error::Config`] when `suite` has no group called `name`.
    pub fn group(name: impl Into<String>, suite: Suite) -> Result<Self> {
        let name = name.into();
        if !suite.groups.iter().any(|g| g.name == name) {
            return Err(Error::Config {
                field: "tasks",
                reason: format!(
                    "the suite has no group `{name}` (it has {})",
                    suite.groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            });
        }
        Ok(Self { name, suite, metric: None })
    }

    /// Scores with this metric (lm-eval key, e.g. `acc,none`) instead of the headline one.
    pub fn metric(mut self, key: impl Into<String>) -> Self {
        self.metric = Some(key.into());
        self
    }

    /// Evaluates only the first `n` documents (of each task of a group).
    pub fn limit(mut self, n: usize) -> Self {
        self.suite.tasks =
            self.suite.tasks.into_iter().map(|t| t.with_limit(Some(Limit::Count(n)))).collect();
        self
    }

    /// Uses `k` few-shot examples.
    ///
    /// # Errors
    /// When a task has no few-shot pool large enough.
    pub fn shots(mut self, k: usize) -> Result<Self> {
        let mut out = Vec::with_capacity(self.suite.tasks.len());
        for t in self.suite.tasks {
            let name = t.name().to_string();
            out.push(t.with_num_fewshot(k).map_err(|e| Error::Eval {
                task: name,
                scheme: "-".into(),
                source: Box::new(e),
            })?);
        }
        self.suite.tasks = out;
        Ok(self)
    }

    /// The task's (or group's) name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tasks and groups it runs.
    pub fn suite(&self) -> &Suite {
        &self.suite
    }

    /// Documents evaluated (summed over a group's tasks).
    pub fn docs(&self) -> usize {
        self.suite.tasks.iter().map(|t| t.eval_docs().len()).sum()
    }

    fn metric_key(&self) -> String {
        if let Some(m) = &self.metric {
            return m.clone();
        }
        eai_eval::Benchmark::from_name(&self.name)
            .map_or_else(|_| "acc,none".to_string(), |b| b.headline_metric().to_string())
    }

    fn setting(&self) -> TaskSetting {
        let first = self.suite.tasks.first();
        let more = self.suite.tasks.len().saturating_sub(1);
        TaskSetting {
            name: self.name.clone(),
            metric: self.metric_key(),
            shots: first.map_or(0, |t| t.config().num_fewshot),
            docs: self.docs(),
            source: first.map_or_else(String::new, |t| {
                if more > 0 {
                    format!("{} (+{more} tasks)", t.source())
                } else {
                    t.source().to_string()
                }
            }),
        }
    }
}

impl From<Task> for StudyTask {
    fn from(t: Task) -> Self {
        Self::new(t)
    }
}

/// Where the study's power readings come from.
#[non_exhaustive]
pub enum PowerSetup {
    /// NVIDIA GPUs through NVML and CPU packages through RAPL, whatever this machine has
    /// (the default). Backends that are missing are listed in the report with the reason.
    Auto,
    /// A recorded trace (`.csv` or `.json`, as `eai measure --trace` writes), replayed in real
    /// time; every figure is labelled as replayed.
    Replay(PathBuf),
    /// Sources you built (any [`PowerSource`]).
    Sources(Vec<Box<dyn PowerSource>>),
    /// No energy measurement: scores and times only.
    Off,
}

impl std::fmt::Debug for PowerSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("Auto"),
            Self::Replay(p) => f.debug_tuple("Replay").field(p).finish(),
            Self::Sources(s) => write!(f, "Sources({} sources)", s.len()),
            Self::Off => f.write_str("Off"),
        }
    }
}

/// What energy a run is charged with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Accounting {
    /// Everything the devices drew inside the windows (what the paper reports).
    #[default]
    Total,
    /// Minus the idle baseline measured before each scheme (`P_idle × duration`).
    AboveIdle,
}

/// Where the energy figures of a study come from: decides how the report labels them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EnergyKind {
    /// Hardware sensors read during the study.
    Measured,
    /// A recorded trace played back.
    Replayed,
    /// A model (TDP × utilisation) or a constant: an estimate, not a measurement.
    Estimated,
    /// No power source: no energy figures.
    None,
}

impl EnergyKind {
    /// The banner a report prints above energy figures.
    pub fn banner(self) -> &'static str {
        match self {
            EnergyKind::Measured => "Energy: measured by hardware sensors during this study.",
            EnergyKind::Replayed => {
                "Energy: REPLAYED from a recorded power trace, not measured during this study."
            }
            EnergyKind::Estimated => {
                "Energy: ESTIMATED (TDP x CPU utilisation, or a constant), NOT MEASURED. \
                 Treat every energy, EOR and TWEOR figure below as a model output."
            }
            EnergyKind::None => {
                "Energy: no power sensor was available, so this report shows no energy, EOR or \
                 TWEOR figures. Ask for a labelled estimate (`Study::tdp_estimate`, \
                 `--estimate-tdp WATTS`) to see modelled figures."
            }
        }
    }
}

/// What the study knew about its power sources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EnergyInfo {
    /// Measured, replayed, estimated or none.
    pub kind: EnergyKind,
    /// The sources sampled.
    pub sources: Vec<SourceInfo>,
    /// Backends that were unavailable, with the reason.
    pub unavailable: Vec<String>,
    /// Warnings from discovery.
    pub warnings: Vec<String>,
    /// Energy accounting of the runs.
    pub accounting: Accounting,
}

/// The settings a study ran with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StudySettings {
    /// Model name.
    pub model: String,
    /// Hardware label of the runs (a hardware-profile id enables the full recommender).
    pub hardware: String,
    /// Schemes, in run order; the first is the baseline.
    pub schemes: Vec<Scheme>,
    /// Tasks with their metric, shots and documents evaluated.
    pub tasks: Vec<TaskSetting>,
    /// Repetitions per scheme.
    pub repeats: u32,
    /// Documents per task run once, unmeasured, before the repetitions of each scheme.
    pub warmup_docs: usize,
    /// Pause after each scheme.
    pub cooldown: Seconds,
    /// Idle baseline measured before each scheme.
    pub baseline: Seconds,
    /// Requests per call to the model.
    pub batch_size: usize,
}

/// One task's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskSetting {
    /// Task name.
    pub name: String,
    /// Metric key scored.
    pub metric: String,
    /// Few-shot examples.
    pub shots: usize,
    /// Documents evaluated.
    pub docs: usize,
    /// Where the data came from.
    pub source: String,
}

/// What happened to one scheme before its repetitions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SchemeRecord {
    /// The scheme.
    pub scheme: Scheme,
    /// What the engine said about itself.
    pub model: ModelInfoRecord,
    /// Time to build (quantize) the model.
    pub load_time: Seconds,
    /// Energy of building it, when measured.
    pub load_energy: Option<Joules>,
    /// The idle baseline measured before the runs, when measured.
    pub baseline: Option<Baseline>,
    /// Time spent in the warm-up.
    pub warmup_time: Seconds,
}

/// [`ModelInfo`] as plain serializable data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelInfoRecord {
    /// Name.
    pub name: String,
    /// Maximum context.
    pub max_context: Option<usize>,
    /// Scheme label the engine reports.
    pub scheme: Option<String>,
    /// Device the engine reports.
    pub device: Option<String>,
}

impl From<ModelInfo> for ModelInfoRecord {
    fn from(m: ModelInfo) -> Self {
        Self { name: m.name, max_context: m.max_context, scheme: m.scheme, device: m.device }
    }
}

/// Energy of one source in one task window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceShare {
    /// Source id.
    pub source: String,
    /// The metrics layer's domain.
    pub domain: EnergyDomain,
    /// Primary energy estimate (`None`: no data).
    pub energy: Option<Joules>,
    /// Energy above the idle baseline, when a baseline was measured.
    pub above_idle: Option<Joules>,
    /// Quality flags of the window on this source.
    pub flags: Vec<String>,
}

/// One task of one scheme and repetition, inside one energy window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskRecord {
    /// The scheme.
    pub scheme: Scheme,
    /// Repetition, from 1.
    pub repetition: u32,
    /// Task name.
    pub task: String,
    /// Metric key.
    pub metric: String,
    /// Score (fraction).
    pub score: f64,
    /// Its standard error.
    pub stderr: Option<f64>,
    /// Documents evaluated.
    pub docs: usize,
    /// Id of the window in `windows.json` (`None` without a meter).
    pub window: Option<u64>,
    /// Start, seconds since the study began.
    pub start: Seconds,
    /// Duration of the window.
    pub wall: Seconds,
    /// Energy charged to the task under the study's accounting (`None`: not measured).
    pub energy: Option<Joules>,
    /// Per source.
    pub devices: Vec<DeviceShare>,
    /// Energy inside the model's calls, by kind of call.
    pub calls: Vec<CallEnergy>,
    /// Requests sent to the model.
    pub requests: u64,
    /// Tokens scored or generated, when the engine counted them.
    pub tokens: Option<u64>,
    /// Tokens generated (generation tasks), when counted.
    pub generated_tokens: Option<u64>,
}

impl TaskRecord {
    /// Joules per request.
    pub fn joules_per_request(&self) -> Option<f64> {
        let e = self.energy?;
        (self.requests > 0).then(|| e.0 / self.requests as f64)
    }

    /// Joules per token scored or generated.
    pub fn joules_per_token(&self) -> Option<f64> {
        let (e, t) = (self.energy?, self.tokens?);
        (t > 0).then(|| e.0 / t as f64)
    }

    /// EOR of this task alone (score per Wh).
    pub fn eor(&self) -> Option<f64> {
        let e = self.energy?.to_watt_hours();
        (e > 0.0).then(|| self.score / e)
    }
}

/// Per-sample records of one task window, as lm-eval `samples_<task>.jsonl` lines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SampleSet {
    /// The scheme.
    pub scheme: Scheme,
    /// Repetition.
    pub repetition: u32,
    /// Task.
    pub task: String,
    /// One JSON object per document.
    pub records: Vec<serde_json::Value>,
}

/// Everything a study recorded. Plain data: serialize it, or analyse and write it with
/// [`StudyResults::analyze`] and [`StudyResults::write`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StudyResults {
    /// The settings.
    pub settings: StudySettings,
    /// The power sources and how to read the energy figures.
    pub energy: EnergyInfo,
    /// One entry per scheme that was loaded.
    pub schemes: Vec<SchemeRecord>,
    /// One entry per (scheme, repetition, task).
    pub tasks: Vec<TaskRecord>,
    /// One run per (scheme, repetition): every task's score, the tasks' summed energy and
    /// wall time (the unit Table 2 compares).
    pub runs: Vec<Run>,
    /// One run per (scheme, repetition, task), for per-task comparisons (the `hardware`
    /// label is shared; group them by [`Run::scores`]' single task).
    pub task_runs: Vec<Run>,
    /// Every energy window (tasks, loads, warm-ups, and each model call).
    pub windows: Vec<Measurement>,
    /// The recorded power timeline, when there was a meter.
    pub timeline: Option<Timeline>,
    /// Per-sample records.
    pub samples: Vec<SampleSet>,
    /// Wall time of the whole study.
    pub duration: Seconds,
}

/// A study of one model under several schemes on several tasks.
///
/// ```no_run
/// use eai::{GgufLoader, Scheme, Study, StudyTask};
/// use eai::eval::bundled;
///
/// let results = Study::new(GgufLoader::new(".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
///     .schemes([Scheme::Fp32, Scheme::Fp16, Scheme::Int8WeightOnly, Scheme::Dynamic])
///     .task(StudyTask::new(bundled::arc_easy()?).limit(20))
///     .task(StudyTask::new(bundled::hellaswag()?).limit(10))
///     .repeats(3)
///     .run()?;
/// let report = results.analyze()?;
/// println!("{}", report.markdown(&results));
/// results.write("study-out")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Study<L> {
    loader: L,
    schemes: Vec<Scheme>,
    tasks: Vec<StudyTask>,
    repeats: u32,
    warmup_docs: usize,
    cooldown: Duration,
    baseline: Duration,
    power: PowerSetup,
    tdp_estimate: Option<Watts>,
    meter_config: MeterConfig,
    accounting: Accounting,
    hardware: Option<String>,
    batch_size: usize,
    progress: bool,
    keep_samples: bool,
}

impl<L> std::fmt::Debug for Study<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Study")
            .field("schemes", &self.schemes)
            .field("tasks", &self.tasks.iter().map(StudyTask::name).collect::<Vec<_>>())
            .field("repeats", &self.repeats)
            .field("power", &self.power)
            .finish_non_exhaustive()
    }
}

impl<L: ModelLoader> Study<L> {
    /// A study of the model `loader` builds. Defaults: schemes FP32, FP16, INT8 (W8A16) and
    /// dynamic; no tasks; 3 repetitions; 5 warm-up documents per task; no cool-down; a 5 s
    /// idle baseline per scheme (when there is a meter); power from [`PowerSetup::Auto`];
    /// total energy accounting; per-sample records kept; progress lines on stderr.
    pub fn new(loader: L) -> Self {
        Self {
            loader,
            schemes: vec![Scheme::Fp32, Scheme::Fp16, Scheme::Int8WeightOnly, Scheme::Dynamic],
            tasks: Vec::new(),
            repeats: 3,
            warmup_docs: 5,
            cooldown: Duration::ZERO,
            baseline: Duration::from_secs(5),
            power: PowerSetup::Auto,
            tdp_estimate: None,
            meter_config: MeterConfig::new(),
            accounting: Accounting::Total,
            hardware: None,
            batch_size: 64,
            progress: true,
            keep_samples: true,
        }
    }

    /// The schemes to compare; the first is the baseline of every comparison.
    pub fn schemes(mut self, s: impl IntoIterator<Item = Scheme>) -> Self {
        self.schemes = s.into_iter().collect();
        self
    }

    /// Adds a task.
    pub fn task(mut self, t: impl Into<StudyTask>) -> Self {
        self.tasks.push(t.into());
        self
    }

    /// Adds tasks.
    pub fn tasks(mut self, ts: impl IntoIterator<Item = StudyTask>) -> Self {
        self.tasks.extend(ts);
        self
    }

    /// Repetitions per scheme (default 3, as the paper).
    pub fn repeats(mut self, n: u32) -> Self {
        self.repeats = n;
        self
    }

    /// Documents per task run once before each scheme's repetitions, unmeasured (default 5;
    /// 0 disables the warm-up).
    pub fn warmup_docs(mut self, n: usize) -> Self {
        self.warmup_docs = n;
        self
    }

    /// Pause after each scheme (the paper: 5 minutes, against thermal carry-over).
    pub fn cooldown(mut self, d: Duration) -> Self {
        self.cooldown = d;
        self
    }

    /// Idle baseline measured before each scheme (default 5 s; zero disables it; at least
    /// 1 s otherwise).
    pub fn baseline(mut self, d: Duration) -> Self {
        self.baseline = d;
        self
    }

    /// Where power readings come from (default [`PowerSetup::Auto`]).
    pub fn power(mut self, p: PowerSetup) -> Self {
        self.power = p;
        self
    }

    /// When no power source is found, estimate CPU power as `tdp × CPU utilisation` of this
    /// process (CodeCarbon's model without sensors) instead of reporting no energy. Every
    /// figure is then labelled as an estimate.
    pub fn tdp_estimate(mut self, tdp: Watts) -> Self {
        self.tdp_estimate = Some(tdp);
        self
    }

    /// Sampler rates and analysis thresholds.
    pub fn meter_config(mut self, c: MeterConfig) -> Self {
        self.meter_config = c;
        self
    }

    /// Charge runs with total energy (default) or energy above the idle baseline.
    pub fn accounting(mut self, a: Accounting) -> Self {
        self.accounting = a;
        self
    }

    /// The hardware label of the runs. Use a hardware-profile id (`A100-PCIe-40GB`,
    /// `H100-SXM5-80GB`, …) to let the recommender check tensor-core support; default: the
    /// first GPU's name, else `cpu`.
    pub fn hardware(mut self, label: impl Into<String>) -> Self {
        self.hardware = Some(label.into());
        self
    }

    /// Requests per call to the model (default 64).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// Progress lines and bars on stderr (default on).
    pub fn progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// Keep per-sample records (default on).
    pub fn keep_samples(mut self, on: bool) -> Self {
        self.keep_samples = on;
        self
    }

    fn validate(&self) -> Result<()> {
        let cfg = |field, reason: &str| Err(Error::Config { field, reason: reason.to_string() });
        if self.schemes.is_empty() {
            return cfg("schemes", "no scheme to run");
        }
        for (i, s) in self.schemes.iter().enumerate() {
            if self.schemes[..i].contains(s) {
                return Err(Error::Config {
                    field: "schemes",
                    reason: format!("{} is listed twice", s.label()),
                });
            }
        }
        if self.tasks.is_empty() {
            return cfg("tasks", "no task to run");
        }
        for (i, t) in self.tasks.iter().enumerate() {
            if self.tasks[..i].iter().any(|u| u.name() == t.name()) {
                return Err(Error::Config {
                    field: "tasks",
                    reason: format!("{} is listed twice", t.name()),
                });
            }
            if t.docs() == 0 {
                return Err(Error::Config {
                    field: "tasks",
                    reason: format!("{} has no documents to evaluate", t.name()),
                });
            }
        }
        if self.repeats == 0 {
            return cfg("repeats", "must be at least 1");
        }
        if !self.baseline.is_zero() && self.baseline < Duration::from_secs(1) {
            return cfg("baseline", "must be zero (off) or at least 1 s");
        }
        if self.batch_size == 0 {
            return cfg("batch_size", "must be at least 1");
        }
        Ok(())
    }

    fn start_meter(&mut self) -> Result<(Option<Meter>, EnergyInfo)> {
        let mut unavailable = Vec::new();
        let mut warnings = Vec::new();
        let mut sources: Vec<Box<dyn PowerSource>> =
            match std::mem::replace(&mut self.power, PowerSetup::Off) {
                PowerSetup::Off => Vec::new(),
                PowerSetup::Auto => {
                    let (s, u, w) = eai_power::discover(&CommandOptions::default())
                        .map_err(|e| Error::power("discovering power sources", e))?;
                    unavailable = u;
                    warnings = w;
                    s
                }
                PowerSetup::Replay(path) => {
                    let tl = Timeline::load(&path).map_err(|e| {
                        Error::power(format!("loading trace {}", path.display()), e)
                    })?;
                    ReplaySource::all(&tl)
                        .map_err(|e| Error::power(format!("replaying {}", path.display()), e))?
                        .into_iter()
                        .map(|s| Box::new(s) as Box<dyn PowerSource>)
                        .collect()
                }
                PowerSetup::Sources(s) => s,
            };
        if sources.is_empty() {
            if let Some(tdp) = self.tdp_estimate {
                sources.push(Box::new(TdpEstimate::new(tdp)?));
            }
        } else if self.tdp_estimate.is_some() {
            warnings.push(
                "a TDP estimate was requested but power sources were found: measuring instead"
                    .into(),
            );
        }
        let infos: Vec<SourceInfo> = sources.iter().map(|s| s.info()).collect();
        let kind = if infos.is_empty() {
            EnergyKind::None
        } else if infos
            .iter()
            .any(|i| matches!(i.provenance, Provenance::Synthetic | Provenance::Constant))
        {
            EnergyKind::Estimated
        } else if infos.iter().any(|i| i.provenance == Provenance::Replayed) {
            EnergyKind::Replayed
        } else {
            EnergyKind::Measured
        };
        let meter = if sources.is_empty() {
            None
        } else {
            Some(
                Meter::start(sources, self.meter_config)
                    .map_err(|e| Error::power("starting the sampler", e))?,
            )
        };
        let sources = meter.as_ref().map_or(infos, |m| m.sources().to_vec());
        Ok((
            meter,
            EnergyInfo { kind, sources, unavailable, warnings, accounting: self.accounting },
        ))
    }

    /// Runs the study.
    ///
    /// # Errors
    /// Invalid settings ([`Error::Config`]) and power-source failures before anything ran;
    /// after that, any failure is returned as [`Error::Partial`] carrying everything recorded
    /// so far (windows and trace included).
    pub fn run(mut self) -> Result<StudyResults> {
        self.validate()?;
        let (meter, energy) = self.start_meter()?;
        let hardware = self.hardware.clone().unwrap_or_else(|| default_hardware(&energy.sources));
        let settings = StudySettings {
            model: self.loader.name(),
            hardware,
            schemes: self.schemes.clone(),
            tasks: self.tasks.iter().map(StudyTask::setting).collect(),
            repeats: self.repeats,
            warmup_docs: self.warmup_docs,
            cooldown: Seconds(self.cooldown.as_secs_f64()),
            baseline: Seconds(if meter.is_some() { self.baseline.as_secs_f64() } else { 0.0 }),
            batch_size: self.batch_size,
        };
        let t0 = Instant::now();
        let mut rec = Recorder {
            results: StudyResults {
                settings,
                energy,
                schemes: Vec::new(),
                tasks: Vec::new(),
                runs: Vec::new(),
                task_runs: Vec::new(),
                windows: Vec::new(),
                timeline: None,
                samples: Vec::new(),
                duration: Seconds(0.0),
            },
            t0,
        };
        let outcome = self.run_all(meter.as_ref(), &mut rec);
        let mut results = rec.results;
        results.duration = Seconds(t0.elapsed().as_secs_f64());
        if let Some(m) = meter {
            match m.stop() {
                Ok(session) => {
                    results.windows = session.windows;
                    results.timeline = Some(session.timeline);
                }
                Err(e) if outcome.is_ok() => {
                    return Err(Error::Partial {
                        results: Box::new(results),
                        source: Box::new(Error::power("stopping the sampler", e)),
                    });
                }
                Err(_) => {}
            }
        }
        match outcome {
            Ok(()) => Ok(results),
            Err(e) => Err(Error::Partial { results: Box::new(results), source: Box::new(e) }),
        }
    }

    fn say(&self, line: &str) {
        tracing::info!("{line}");
        if self.progress {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{line}");
        }
    }

    fn run_all(&mut self, meter: Option<&Meter>, rec: &mut Recorder) -> Result<()> {
        let total = self.schemes.len() * self.repeats as usize * self.tasks.len();
        let mut step = 0usize;
        let schemes = self.schemes.clone();
        for (si, &scheme) in schemes.iter().enumerate() {
            // 1. Build (quantize) the model.
            self.say(&format!("eai study: {} — building the model", scheme.display_name()));
            let t = Instant::now();
            let w = meter.map(|m| m.begin(&format!("load:{}", scheme.label())));
            let loaded = self.loader.load(scheme);
            let load_time = Seconds(t.elapsed().as_secs_f64());
            let load_energy = match (meter, w) {
                (Some(m), Some(w)) => {
                    m.end(w).map_err(|e| Error::power("closing the load window", e))?;
                    m.measurement(w)
                        .map_err(|e| Error::power("computing the load window", e))?
                        .energy()
                }
                _ => None,
            };
            let mut model =
                loaded.map_err(|e| Error::Model { scheme: scheme.label().into(), source: e })?;
            let info: ModelInfoRecord = model.info().into();
            if si == 0 {
                rec.results.settings.model = info.name.clone();
            }

            // 2. Idle baseline.
            let baseline = match meter {
                Some(m) if !self.baseline.is_zero() => {
                    self.say(&format!(
                        "eai study: {} — idle baseline ({:.0} s)",
                        scheme.display_name(),
                        self.baseline.as_secs_f64()
                    ));
                    Some(
                        m.measure_baseline(self.baseline)
                            .map_err(|e| Error::power("measuring the idle baseline", e))?,
                    )
                }
                _ => None,
            };

            // 3. Warm-up (unmeasured: its window is recorded but charged to no run).
            let t = Instant::now();
            if self.warmup_docs > 0 {
                let w = meter.map(|m| m.begin(&format!("warmup:{}", scheme.label())));
                for st in &self.tasks {
                    let suite = st.clone().limit(self.warmup_docs).suite;
                    Evaluator::new()
                        .progress(false)
                        .keep_samples(false)
                        .batch_size(self.batch_size)
                        .run(&mut model, &suite)
                        .map_err(|e| Error::Eval {
                            task: st.name().into(),
                            scheme: scheme.label().into(),
                            source: Box::new(e),
                        })?;
                }
                if let (Some(m), Some(w)) = (meter, w) {
                    m.end(w).map_err(|e| Error::power("closing the warm-up window", e))?;
                }
            }
            rec.results.schemes.push(SchemeRecord {
                scheme,
                model: info,
                load_time,
                load_energy,
                baseline: baseline.clone(),
                warmup_time: Seconds(t.elapsed().as_secs_f64()),
            });

            // 4. Repetitions × tasks, each task in its own window.
            for rep in 1..=self.repeats {
                let mut run_tasks = Vec::new();
                for st in &self.tasks {
                    step += 1;
                    let r =
                        self.run_task(meter, rec, &mut model, scheme, rep, st, baseline.as_ref())?;
                    self.say(&format!(
                        "eai study: [{step}/{total}] {} rep {rep}/{} {}: {} {:.4}, {:.1} s{}",
                        scheme.display_name(),
                        self.repeats,
                        r.task,
                        r.metric,
                        r.score,
                        r.wall.0,
                        r.energy.map_or(String::new(), |e| format!(", {:.1} J", e.0)),
                    ));
                    run_tasks.push(r);
                }
                let run =
                    build_run(&rec.results.settings, self.accounting, scheme, rep, &run_tasks)?;
                rec.results.runs.push(run);
                rec.results.tasks.extend(run_tasks);
            }
            drop(model);

            // 5. Cool-down.
            if !self.cooldown.is_zero() && si + 1 < schemes.len() {
                self.say(&format!("eai study: cool-down {:.0} s", self.cooldown.as_secs_f64()));
                std::thread::sleep(self.cooldown);
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn run_task(
        &self,
        meter: Option<&Meter>,
        rec: &mut Recorder,
        model: &mut Box<dyn LanguageModel>,
        scheme: Scheme,
        rep: u32,
        st: &StudyTask,
        baseline: Option<&Baseline>,
    ) -> Result<TaskRecord> {
        let name = st.name().to_string();
        let eval_err = |e| Error::Eval {
            task: name.clone(),
            scheme: scheme.label().into(),
            source: Box::new(e),
        };
        let suite = &st.suite;
        let evaluator = Evaluator::new()
            .progress(self.progress)
            .keep_samples(self.keep_samples)
            .batch_size(self.batch_size);
        let metric = st.metric_key();
        let window_name = format!("{}/rep{rep}/{name}", scheme.label());
        let start = Seconds(rec.t0.elapsed().as_secs_f64());
        let (results, wall, measurement, calls) = match meter {
            Some(m) => {
                let mut lm = Metered::new(&mut **model, m)
                    .label(format!("{}/rep{rep}/{name}", scheme.label()));
                let t = Instant::now();
                let w = m.begin(&window_name);
                let out = evaluator.run(&mut lm, suite);
                m.end(w).map_err(|e| Error::power("closing a task window", e))?;
                let wall = Seconds(t.elapsed().as_secs_f64());
                let out = out.map_err(eval_err)?;
                let mut meas =
                    m.measurement(w).map_err(|e| Error::power("computing a task window", e))?;
                if let Some(b) = baseline {
                    meas.subtract_baseline(b);
                }
                let calls = lm.energy()?;
                (out, wall, Some((w.0, meas)), calls)
            }
            None => {
                let t = Instant::now();
                let out = evaluator.run(&mut **model, suite).map_err(eval_err)?;
                (out, Seconds(t.elapsed().as_secs_f64()), None, Vec::new())
            }
        };
        let (metrics, docs) = match results.group(&name) {
            Some(g) => (&g.metrics, g.n),
            None => {
                let t = results.task(&name).ok_or_else(|| Error::Config {
                    field: "tasks",
                    reason: format!("the evaluator returned no result for {name}"),
                })?;
                (&t.metrics, t.n_effective)
            }
        };
        let mv = metrics.iter().find(|m| m.key() == metric).ok_or_else(|| Error::Config {
            field: "metric",
            reason: format!(
                "{name} has no metric `{metric}` (it has {})",
                metrics.iter().map(|m| m.key()).collect::<Vec<_>>().join(", ")
            ),
        })?;
        let (score, stderr) = (mv.value, mv.stderr);
        if self.keep_samples {
            for (task, recs) in &results.samples {
                rec.results.samples.push(SampleSet {
                    scheme,
                    repetition: rep,
                    task: task.clone(),
                    records: recs.iter().map(eai_eval::SampleRecord::to_json).collect(),
                });
            }
        }
        let unique: u64 = results.tasks.iter().map(|t| t.requests.unique_requests as u64).sum();
        let requests = calls.iter().map(|c| c.requests).sum::<u64>().max(unique);
        let tokens = if calls.is_empty() {
            None
        } else {
            calls.iter().map(|c| c.tokens).sum::<Option<u64>>()
        };
        let generated_tokens =
            calls.iter().find(|c| c.kind == CallKind::Generation).and_then(|c| c.tokens);
        let (window, devices, energy) = match &measurement {
            Some((id, m)) => {
                let devices: Vec<DeviceShare> = m
                    .devices
                    .iter()
                    .map(|d| DeviceShare {
                        source: d.source.clone(),
                        domain: energy_domain(&rec.results.energy.sources, &d.source, &d.domain),
                        energy: d.energy,
                        above_idle: d.dynamic_energy,
                        flags: d
                            .flags
                            .iter()
                            .map(|f| {
                                serde_json::to_value(f)
                                    .ok()
                                    .and_then(|v| {
                                        v.get("flag").and_then(|x| x.as_str()).map(str::to_string)
                                    })
                                    .unwrap_or_else(|| format!("{f:?}"))
                            })
                            .collect(),
                    })
                    .collect();
                let charged: Vec<Joules> = devices
                    .iter()
                    .filter_map(|d| match self.accounting {
                        Accounting::Total => d.energy,
                        Accounting::AboveIdle => d.above_idle.or(d.energy),
                    })
                    .collect();
                let energy = (!charged.is_empty()).then(|| charged.into_iter().sum());
                (Some(*id), devices, energy)
            }
            None => (None, Vec::new(), None),
        };
        let record = TaskRecord {
            scheme,
            repetition: rep,
            task: name,
            metric,
            score,
            stderr,
            docs,
            window,
            start,
            wall,
            energy,
            devices,
            calls,
            requests,
            tokens,
            generated_tokens,
        };
        rec.results.task_runs.push(build_task_run(
            &rec.results.settings,
            self.accounting,
            &record,
        )?);
        Ok(record)
    }
}

struct Recorder {
    results: StudyResults,
    t0: Instant,
}

fn default_hardware(sources: &[SourceInfo]) -> String {
    sources
        .iter()
        .find(|s| matches!(s.domain, Domain::Gpu | Domain::GpuModule))
        .map_or_else(|| "cpu".to_string(), |s| s.name.clone())
}

/// The metrics layer's domain for a power source.
fn energy_domain(sources: &[SourceInfo], id: &str, d: &Domain) -> EnergyDomain {
    match d {
        Domain::Gpu | Domain::GpuModule => {
            let idx = sources
                .iter()
                .find(|s| s.id == id)
                .and_then(|s| s.meta("nvml_index"))
                .and_then(|i| i.parse().ok())
                .unwrap_or_else(|| {
                    sources
                        .iter()
                        .filter(|s| matches!(s.domain, Domain::Gpu | Domain::GpuModule))
                        .position(|s| s.id == id)
                        .unwrap_or(0) as u32
                });
            EnergyDomain::Gpu(idx)
        }
        Domain::CpuPackage { package } => EnergyDomain::CpuPackage(*package),
        Domain::Dram { .. } => EnergyDomain::Other(id.to_string()),
        Domain::Psys => EnergyDomain::System,
        _ => EnergyDomain::Other(id.to_string()),
    }
}

fn metrics_err(ctx: String) -> impl FnOnce(eai_metrics::Error) -> Error {
    move |e| Error::metrics(ctx, e)
}

/// The run of one (scheme, repetition): every task's score, summed energy per domain, summed
/// wall time, requests and tokens.
fn build_run(
    s: &StudySettings,
    a: Accounting,
    scheme: Scheme,
    rep: u32,
    tasks: &[TaskRecord],
) -> Result<Run> {
    let mut b = Run::builder(&s.model, scheme.label(), &s.hardware).repetition(rep);
    let mut by_domain: BTreeMap<EnergyDomain, Joules> = BTreeMap::new();
    let mut complete = true;
    for t in tasks {
        b = b.score(&t.task, t.score);
        if t.energy.is_none() {
            complete = false;
        }
        add_domains(&mut by_domain, t, a);
    }
    if complete {
        for (d, e) in by_domain {
            b = b.energy(d, e);
        }
    }
    let wall: f64 = tasks.iter().map(|t| t.wall.0).sum();
    b = b.wall(Seconds(wall)).requests(tasks.iter().map(|t| t.requests).sum());
    let generated: Option<u64> = tasks.iter().map(|t| t.generated_tokens).sum();
    if let Some(g) = generated.filter(|&g| g > 0) {
        b = b.output_tokens(g);
    }
    b.build().map_err(metrics_err(format!("building run {}/{}#{rep}", s.model, scheme.label())))
}

/// Adds a task's per-domain energy, charged as the study charges (total or above idle).
fn add_domains(by_domain: &mut BTreeMap<EnergyDomain, Joules>, t: &TaskRecord, a: Accounting) {
    if t.energy.is_none() {
        return;
    }
    for d in &t.devices {
        let e = match a {
            Accounting::Total => d.energy,
            Accounting::AboveIdle => d.above_idle.or(d.energy),
        };
        if let Some(e) = e {
            *by_domain.entry(d.domain.clone()).or_insert(Joules::ZERO) += e;
        }
    }
}

/// The run of one task window.
fn build_task_run(s: &StudySettings, a: Accounting, t: &TaskRecord) -> Result<Run> {
    let mut b = Run::builder(&s.model, t.scheme.label(), &s.hardware)
        .repetition(t.repetition)
        .score(&t.task, t.score)
        .wall(t.wall)
        .requests(t.requests);
    let mut by_domain = BTreeMap::new();
    add_domains(&mut by_domain, t, a);
    for (d, e) in by_domain {
        b = b.energy(d, e);
    }
    if let Some(g) = t.generated_tokens.filter(|&g| g > 0) {
        b = b.output_tokens(g);
    }
    b.build().map_err(metrics_err(format!(
        "building run {}/{}#{} ({})",
        s.model,
        t.scheme.label(),
        t.repetition,
        t.task
    )))
}
