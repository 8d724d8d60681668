//! The analysis of a study ([`StudyReport`]) and its output folder.
//!
//! The analysis is in `analyze` (scores, Table 2, per-task cells, the Pareto front), the
//! deployment advice in `advice` (with `point`: point estimates where an interval is
//! unbounded), the Markdown report in `markdown`, and the study folder, written and read back,
//! in `folder` (its file names in [`files`]).

mod advice;
mod analyze;
/// Names of the files a study folder holds, relative to it.
pub mod files;
mod folder;
mod markdown;
mod point;

pub use advice::advise;

use std::collections::BTreeMap;

use eai_metrics::{
    Comparison, ConfigSummary, Constraints, Estimate, ParetoPoint, Recommendation, Summary, Table2,
};
use serde::{Deserialize, Serialize};

use crate::scheme::Scheme;
use crate::study::EnergyKind;

/// One scheme's scores (always available, with or without energy).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScoreRow {
    /// The scheme.
    pub scheme: Scheme,
    /// Mean score per task over the repetitions.
    pub tasks: BTreeMap<String, f64>,
    /// Mean over tasks and repetitions of the run score.
    pub score: Summary,
    /// Accuracy loss against the baseline, percentage points (none for the baseline).
    pub accuracy_loss: Option<Estimate>,
    /// Wall time per run, seconds.
    pub wall_s: Summary,
}

/// One (scheme, task) cell: means over the repetitions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskCell {
    /// The scheme.
    pub scheme: Scheme,
    /// The task.
    pub task: String,
    /// Score.
    pub score: f64,
    /// Wall time, seconds.
    pub wall_s: Summary,
    /// Energy in joules, when measured.
    pub energy_j: Option<Summary>,
    /// EOR (score per Wh), when measured.
    pub eor: Option<Summary>,
    /// TWEOR (score per Wh·s), when measured.
    pub tweor: Option<Summary>,
    /// Joules per request, when measured.
    pub j_per_request: Option<f64>,
    /// Joules per token scored or generated, when measured and counted.
    pub j_per_token: Option<f64>,
    /// Energy of log-likelihood calls (prefill), joules, mean.
    pub loglikelihood_j: Option<f64>,
    /// Energy of generation calls, joules, mean.
    pub generation_j: Option<f64>,
}

/// The study's advice: the recommender's output, or a ranking on measured figures when the
/// hardware has no profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Advice {
    /// The constraints used.
    pub constraints: Constraints,
    /// The baseline configuration the candidates are measured against.
    #[serde(default)]
    pub baseline: String,
    /// `true` when the hardware matched a profile and the full decision flow ran.
    pub hardware_checked: bool,
    /// The recommendation (ranked and rejected, with reasons).
    pub recommendation: Recommendation,
    /// Configurations left out of the advice, and why.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Everything computed from a study's runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StudyReport {
    /// The baseline scheme (the study's first).
    pub baseline: Scheme,
    /// How to read the energy figures.
    pub energy_kind: EnergyKind,
    /// Scores per scheme.
    pub scores: Vec<ScoreRow>,
    /// The paper's Table 2 against the baseline (needs energy).
    pub table2: Option<Table2>,
    /// The comparisons behind it.
    pub comparisons: Vec<Comparison>,
    /// Per-scheme summaries with intervals (needs energy).
    pub summaries: Vec<ConfigSummary>,
    /// Per (scheme, task).
    pub cells: Vec<TaskCell>,
    /// Table 2 of each task alone (needs energy).
    pub task_tables: BTreeMap<String, Table2>,
    /// Mean (score, energy, time) per scheme (needs energy).
    pub points: Vec<ParetoPoint>,
    /// The non-dominated schemes on (score, energy), lowest energy first.
    pub front: Vec<Scheme>,
    /// The advice (needs energy and a non-zero baseline score).
    pub advice: Option<Advice>,
    /// Why a part is missing, in words.
    pub notes: Vec<String>,
}
