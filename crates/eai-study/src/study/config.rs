//! The study's configuration: [`Study`] and its builder methods, where power comes from
//! ([`PowerSetup`]), how energy is charged ([`Accounting`]), validation and the meter's start.

use std::path::PathBuf;
use std::time::Duration;

use eai_core::Watts;
use eai_power::{
    CommandOptions, Meter, MeterConfig, PowerSource, Provenance, ReplaySource, SourceInfo, Timeline,
};
use serde::{Deserialize, Serialize};

use super::loader::ModelLoader;
use super::records::{EnergyInfo, EnergyKind};
use super::task::StudyTask;
use crate::error::{Error, Result};
use crate::estimate::TdpEstimate;
use crate::scheme::Scheme;

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

/// A study of one model under several schemes on several tasks.
///
/// ```no_run
/// use eai_study::{GgufLoader, Scheme, Study, StudyTask};
/// use eai_eval::bundled;
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
    pub(super) loader: L,
    pub(super) schemes: Vec<Scheme>,
    pub(super) tasks: Vec<StudyTask>,
    pub(super) repeats: u32,
    pub(super) warmup_docs: usize,
    pub(super) cooldown: Duration,
    pub(super) baseline: Duration,
    pub(super) power: PowerSetup,
    pub(super) tdp_estimate: Option<Watts>,
    pub(super) meter_config: MeterConfig,
    pub(super) accounting: Accounting,
    pub(super) hardware: Option<String>,
    pub(super) batch_size: Option<usize>,
    pub(super) per_call_energy: bool,
    pub(super) min_window: Option<Duration>,
    pub(super) progress: bool,
    pub(super) keep_samples: bool,
    pub(super) journal: Option<std::path::PathBuf>,
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
    /// total energy accounting; per-sample records kept; progress lines on stderr; batching as
    /// the engine asks; no per-call metering; a 5 s minimum task window when an NVML GPU is
    /// measured (0 otherwise).
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
            batch_size: None,
            per_call_energy: false,
            min_window: None,
            progress: true,
            keep_samples: true,
            journal: None,
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
    /// 0 disables the warm-up). The warm-up also runs each task's 256 longest log-likelihood
    /// requests once, so that a task's first window does not pay for the engine's first passes
    /// at the task's shapes (buffers grown, kernels loaded).
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

    /// Requests per call to the model, overriding the engine's choice. By default the
    /// evaluator asks the model how much work it wants per call
    /// (`LanguageModel::batch_hint`): the engine knows its memory and shapes. For experts and
    /// experiments only.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = Some(n);
        self
    }

    /// Meter every call to the model in a window of its own ([`Metered`](crate::Metered)):
    /// energy of log-likelihood (prefill) and generation calls apart. Off by default: on a GPU
    /// the windows cost more than the calls they measure. Task windows are always measured.
    pub fn per_call_energy(mut self, on: bool) -> Self {
        self.per_call_energy = on;
        self
    }

    /// The shortest task window: a task's requests run again, in the same window, until it
    /// lasts this long; energy and time are divided by the passes, the score comes from the
    /// first pass (the others are checked against it). Default: 5 s when an NVML GPU is among
    /// the power sources (the sensor's resolution makes shorter windows noisy), 0 otherwise;
    /// zero turns it off.
    pub fn min_window(mut self, d: Duration) -> Self {
        self.min_window = Some(d);
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

    /// Records each finished (scheme, repetition) in this file (JSON Lines, synced to disk as
    /// each run finishes) and, when the file already holds runs of this same study, skips them:
    /// a study killed at any point resumes where it stopped. The results are those of an
    /// uninterrupted study, except that the trace (`timeline`) covers only the last session;
    /// the restored runs keep their windows. Each run's per-sample records are written beside
    /// the journal (`samples/<scheme>/rep<k>/samples_<task>.jsonl`) as it finishes and leave
    /// memory ([`SampleSet::file`](crate::SampleSet::file)). See `docs/reliability.md`.
    pub fn journal(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.journal = Some(path.into());
        self
    }

    pub(super) fn validate(&self) -> Result<()> {
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
        if self.batch_size == Some(0) {
            return cfg("batch_size", "must be at least 1");
        }
        Ok(())
    }

    pub(super) fn start_meter(&mut self) -> Result<(Option<Meter>, EnergyInfo)> {
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
}
