//! What a study records: plain serializable data ([`StudyResults`] and its parts).

use eai_core::{Joules, ModelInfo, Seconds};
use eai_metrics::{EnergyDomain, Run};
use eai_power::{Baseline, Measurement, SourceInfo, Timeline};
use serde::{Deserialize, Serialize};

use super::config::Accounting;
use crate::environment::Environment;
use crate::metered::CallEnergy;
use crate::scheme::Scheme;

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
    /// Requests per call to the model when overridden (`None`: the engine's choice).
    pub batch_size: Option<usize>,
    /// Every model call metered in its own window.
    #[serde(default)]
    pub per_call_energy: bool,
    /// Shortest task window (zero: one pass per window).
    #[serde(default)]
    pub min_window: Seconds,
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
    /// Time to build the task's requests (prompts, merging, sorting), once for the whole study,
    /// outside every energy window.
    #[serde(default)]
    pub prepare: Seconds,
    /// Time to encode the task's requests into the engines' shared token cache, once for the
    /// whole study, outside every energy window (`None`: the loader does not, and each engine
    /// tokenizes inside its first window; `ModelLoader::pretokenize`).
    #[serde(default)]
    pub tokenize: Option<Seconds>,
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
    /// Whether the energy is charged to the task: `false` for a GPU the model did not run on
    /// (the loader named its devices: `ModelLoader::cuda_ordinals`), measured and shown apart.
    #[serde(default = "yes")]
    pub charged: bool,
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
    /// Passes of the task's requests inside the window (the minimum window runs them again
    /// until it is long enough; `wall`, `energy`, `devices` and `time` are per pass).
    #[serde(default = "one")]
    pub passes: u32,
    /// The whole window, all passes.
    #[serde(default)]
    pub window_wall: Seconds,
    /// Whether every later pass made the same predictions and generated the same text as the
    /// first (always true for one pass): the scores of any pass would be the same. A
    /// disagreement is flagged in the report, not an error: the score is the first pass's.
    #[serde(default = "yes")]
    pub passes_agree: bool,
    /// Whether every later pass answered bit for bit as the first (log-likelihoods, greedy
    /// flags, generated text); passes may agree (same predictions) without being identical.
    #[serde(default = "yes")]
    pub passes_identical: bool,
    /// Requests as lm-evaluation-harness counts them (one per choice or generation, before
    /// identical requests are merged; `requests` counts those sent).
    #[serde(default)]
    pub lm_eval_requests: u64,
    /// Where the time of one pass went, when the evaluator timed it.
    #[serde(default)]
    pub time: Option<TimeBreakdown>,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

/// Where the time of one pass of a task went. The parts add up to the pass's wall time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TimeBreakdown {
    /// Tokenizing inside the model's calls, as the engine reports it
    /// (`LanguageModel::engine_time`; zero when its token cache already holds the requests, or
    /// when the engine does not say). Prompts are built once per task before any window
    /// ([`TaskSetting::prepare`]).
    pub tokenize: Seconds,
    /// The rest of the time inside the model's calls (forward passes, transfers, decoding).
    pub engine: Seconds,
    /// Scoring the answers (metrics, filters, per-sample records).
    pub scoring: Seconds,
    /// The rest of the window: request handling in the evaluator, the study's bookkeeping.
    pub bookkeeping: Seconds,
}

impl TimeBreakdown {
    /// The parts, from the evaluator's timing of one pass and the pass's wall time: what the
    /// evaluator did not account for is bookkeeping.
    pub fn new(tokenize: Seconds, engine: Seconds, scoring: Seconds, wall: Seconds) -> Self {
        let rest = wall.0 - tokenize.0 - engine.0 - scoring.0;
        Self { tokenize, engine, scoring, bookkeeping: Seconds(rest.max(0.0)) }
    }

    /// Wall time of the pass (the sum of the parts).
    pub fn total(&self) -> Seconds {
        Seconds(self.tokenize.0 + self.engine.0 + self.scoring.0 + self.bookkeeping.0)
    }

    /// Fraction of the pass spent inside the engine ("engine busy").
    pub fn engine_busy(&self) -> Option<f64> {
        let t = self.total().0;
        (t > 0.0).then(|| self.engine.0 / t)
    }
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
    /// One JSON object per document. Empty when the records are on disk instead (`file`).
    pub records: Vec<serde_json::Value>,
    /// The file that holds the records when they are not kept in memory: a study with a
    /// journal ([`crate::Study::journal`]) writes each finished run's records beside the
    /// journal as the run finishes and keeps only their path, so a long study's memory does
    /// not grow with its documents. [`StudyResults::write`] copies the file (or leaves it
    /// where it is when it already is the destination).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<std::path::PathBuf>,
}

impl SampleSet {
    /// Where these records go in a study folder: `samples/<scheme>/rep<k>/samples_<task>.jsonl`.
    pub fn relative_path(&self) -> std::path::PathBuf {
        std::path::Path::new(crate::report::files::SAMPLES_DIR)
            .join(self.scheme.label())
            .join(format!("rep{}", self.repetition))
            .join(format!("samples_{}.jsonl", self.task))
    }

    /// The records as JSON Lines (one compact object per line), as `samples_<task>.jsonl`.
    pub(crate) fn jsonl(&self) -> serde_json::Result<String> {
        let mut out = String::new();
        for rec in &self.records {
            out.push_str(&serde_json::to_string(rec)?);
            out.push('\n');
        }
        Ok(out)
    }
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
    /// Where it ran: eai version and commit, CPU, GPUs, CUDA libraries, the device that ran
    /// the model, how the hardware label was chosen.
    #[serde(default)]
    pub environment: Environment,
}
