//! [`Run`]: one measured (or predicted) execution of one configuration, as plain data.

use std::collections::BTreeMap;
use std::fmt;

use eai_core::{Joules, Seconds};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, non_negative};

/// Where energy was measured. Runs may carry several domains; metrics use their sum unless
/// the run is first narrowed with [`Run::restricted_to`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EnergyDomain {
    /// One GPU board, by index (what NVML reports: GPU and its memory).
    Gpu(u32),
    /// One CPU package (RAPL `package-N`), by socket.
    CpuPackage(u32),
    /// DRAM (RAPL `dram`).
    Dram,
    /// A whole-system meter (wall plug, PDU).
    System,
    /// Anything else, by name.
    Other(String),
}

impl EnergyDomain {
    /// `true` for [`EnergyDomain::Gpu`].
    pub fn is_gpu(&self) -> bool {
        matches!(self, Self::Gpu(_))
    }
}

impl fmt::Display for EnergyDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gpu(i) => write!(f, "gpu{i}"),
            Self::CpuPackage(i) => write!(f, "cpu-package{i}"),
            Self::Dram => f.write_str("dram"),
            Self::System => f.write_str("system"),
            Self::Other(s) => f.write_str(s),
        }
    }
}

/// Energy of one domain in one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainEnergy {
    /// Where it was measured.
    pub domain: EnergyDomain,
    /// How much.
    pub energy: Joules,
}

/// Which domains to keep in [`Run::restricted_to`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnergyScope {
    /// Every GPU domain (the paper measured GPU energy only).
    Gpu,
    /// Exactly these domains.
    Domains(Vec<EnergyDomain>),
}

impl EnergyScope {
    fn keeps(&self, d: &EnergyDomain) -> bool {
        match self {
            Self::Gpu => d.is_gpu(),
            Self::Domains(ds) => ds.contains(d),
        }
    }
}

/// The labels that identify a configuration: runs with equal labels are repetitions of it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Config {
    /// Model name (e.g. `DeepSeek-R1-Distill-Qwen-7B`).
    pub model: String,
    /// Numeric scheme or strategy label (e.g. `fp32`, `int8`, `fp16-mixed`, `dynamic`).
    pub scheme: String,
    /// Hardware label; for the predictor and recommender, a [`crate::HardwareProfile`] id.
    pub hardware: String,
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.model, self.scheme, self.hardware)
    }
}

/// One execution of one configuration: scores per task, energy per domain, wall time, tokens
/// and requests. Plain data; build it with [`Run::builder`], which validates every value.
///
/// Scores are **fractions in `[0, 1]`** (lm-evaluation-harness convention: accuracy 0.62, not
/// 62). Differences of scores are reported in percentage points (`100 ×` the difference).
/// The run's aggregate [`score`](Run::score) is the unweighted mean over its tasks.
///
/// Everything except the labels is optional at build time; a metric that needs a missing value
/// returns [`Error::Missing`], one that divides by a zero value returns [`Error::Zero`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Run {
    config: Config,
    repetition: Option<u32>,
    scores: BTreeMap<String, f64>,
    energy: Vec<DomainEnergy>,
    wall: Option<Seconds>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    requests: Option<u64>,
}

/// The serialized form of a [`Run`]; deserializing goes through the builder's validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRecord {
    config: Config,
    #[serde(default)]
    repetition: Option<u32>,
    #[serde(default)]
    scores: BTreeMap<String, f64>,
    #[serde(default)]
    energy: Vec<DomainEnergy>,
    #[serde(default)]
    wall: Option<Seconds>,
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    requests: Option<u64>,
}

impl<'de> Deserialize<'de> for Run {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let r = RunRecord::deserialize(d)?;
        let mut b = Run::builder(r.config.model, r.config.scheme, r.config.hardware);
        b.repetition = r.repetition;
        b.scores = r.scores.into_iter().collect();
        b.energy = r.energy.into_iter().map(|e| (e.domain, e.energy)).collect();
        b.wall = r.wall;
        b.input_tokens = r.input_tokens;
        b.output_tokens = r.output_tokens;
        b.requests = r.requests;
        b.build().map_err(serde::de::Error::custom)
    }
}

/// Builds a [`Run`], validating on [`build`](RunBuilder::build).
#[derive(Clone, Debug)]
#[must_use]
pub struct RunBuilder {
    config: Config,
    repetition: Option<u32>,
    scores: Vec<(String, f64)>,
    energy: Vec<(EnergyDomain, Joules)>,
    wall: Option<Seconds>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    requests: Option<u64>,
}

impl Run {
    /// Starts a run of `model` under `scheme` on `hardware`.
    ///
    /// ```
    /// use eai_core::{Joules, Seconds};
    /// use eai_metrics::{EnergyDomain, Run};
    ///
    /// let run = Run::builder("Qwen2.5-7B-Instruct", "int8", "A100-PCIe-40GB")
    ///     .repetition(1)
    ///     .score("mmlu", 0.71)
    ///     .score("arc_challenge", 0.55)
    ///     .energy(EnergyDomain::Gpu(0), Joules::from_watt_hours(29.74))
    ///     .wall(Seconds(410.0))
    ///     .output_tokens(120_000)
    ///     .build()?;
    /// assert!((run.score()? - 0.63).abs() < 1e-12);
    /// assert!((run.energy()?.to_watt_hours() - 29.74).abs() < 1e-9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(
        model: impl Into<String>,
        scheme: impl Into<String>,
        hardware: impl Into<String>,
    ) -> RunBuilder {
        RunBuilder {
            config: Config {
                model: model.into(),
                scheme: scheme.into(),
                hardware: hardware.into(),
            },
            repetition: None,
            scores: Vec::new(),
            energy: Vec::new(),
            wall: None,
            input_tokens: None,
            output_tokens: None,
            requests: None,
        }
    }

    /// `model/scheme/hardware`, plus `#n` for a repetition: how errors name the run.
    pub fn label(&self) -> String {
        label(&self.config, self.repetition)
    }

    /// The configuration labels.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The repetition index, if one was given.
    pub fn repetition(&self) -> Option<u32> {
        self.repetition
    }

    /// Scores per task (fractions in `[0, 1]`).
    pub fn scores(&self) -> &BTreeMap<String, f64> {
        &self.scores
    }

    /// The aggregate score: the unweighted mean of the task scores.
    ///
    /// # Errors
    /// [`Error::Missing`] when no task was scored.
    pub fn score(&self) -> Result<f64> {
        if self.scores.is_empty() {
            return Err(self.missing("score"));
        }
        Ok(self.scores.values().sum::<f64>() / self.scores.len() as f64)
    }

    /// The score of one task.
    ///
    /// # Errors
    /// [`Error::Missing`] when that task was not scored.
    pub fn task_score(&self, task: &str) -> Result<f64> {
        self.scores.get(task).copied().ok_or_else(|| self.missing("score (task)"))
    }

    /// Energy per domain, in insertion order.
    pub fn energy_domains(&self) -> &[DomainEnergy] {
        &self.energy
    }

    /// Total energy over all recorded domains.
    ///
    /// # Errors
    /// [`Error::Missing`] when no energy was recorded.
    pub fn energy(&self) -> Result<Joules> {
        if self.energy.is_empty() {
            return Err(self.missing("energy"));
        }
        Ok(self.energy.iter().map(|e| e.energy).sum())
    }

    /// Wall-clock time of the run.
    ///
    /// # Errors
    /// [`Error::Missing`] when it was not recorded.
    pub fn wall(&self) -> Result<Seconds> {
        self.wall.ok_or_else(|| self.missing("wall"))
    }

    /// Prompt (input) tokens processed.
    ///
    /// # Errors
    /// [`Error::Missing`] when not recorded.
    pub fn input_tokens(&self) -> Result<u64> {
        self.input_tokens.ok_or_else(|| self.missing("input_tokens"))
    }

    /// Generated (output) tokens.
    ///
    /// # Errors
    /// [`Error::Missing`] when not recorded.
    pub fn output_tokens(&self) -> Result<u64> {
        self.output_tokens.ok_or_else(|| self.missing("output_tokens"))
    }

    /// Requests served (e.g. lm-eval requests, or user requests in a serving test).
    ///
    /// # Errors
    /// [`Error::Missing`] when not recorded.
    pub fn requests(&self) -> Result<u64> {
        self.requests.ok_or_else(|| self.missing("requests"))
    }

    /// A copy that keeps only the energy domains in `scope` (e.g. GPU only, as the paper).
    ///
    /// # Errors
    /// [`Error::Missing`] when no recorded domain is in scope.
    pub fn restricted_to(&self, scope: &EnergyScope) -> Result<Run> {
        let energy: Vec<_> =
            self.energy.iter().filter(|e| scope.keeps(&e.domain)).cloned().collect();
        if energy.is_empty() {
            return Err(self.missing("energy (in scope)"));
        }
        Ok(Run { energy, ..self.clone() })
    }

    pub(crate) fn missing(&self, field: &'static str) -> Error {
        Error::Missing { run: self.label(), field }
    }

    pub(crate) fn zero(&self, field: &'static str) -> Error {
        Error::Zero { run: self.label(), field }
    }
}

fn label(c: &Config, rep: Option<u32>) -> String {
    match rep {
        Some(r) => format!("{c}#{r}"),
        None => c.to_string(),
    }
}

impl RunBuilder {
    /// Sets the repetition index (the paper ran each configuration 3 times).
    pub fn repetition(mut self, n: u32) -> Self {
        self.repetition = Some(n);
        self
    }

    /// Adds the score of one task, as a fraction in `[0, 1]`.
    pub fn score(mut self, task: impl Into<String>, fraction: f64) -> Self {
        self.scores.push((task.into(), fraction));
        self
    }

    /// Adds the score of one task given in percent (`62.0` for 62 %).
    pub fn score_percent(self, task: impl Into<String>, percent: f64) -> Self {
        self.score(task, percent / 100.0)
    }

    /// Adds the energy of one domain.
    pub fn energy(mut self, domain: EnergyDomain, energy: Joules) -> Self {
        self.energy.push((domain, energy));
        self
    }

    /// Sets the wall-clock time.
    pub fn wall(mut self, wall: Seconds) -> Self {
        self.wall = Some(wall);
        self
    }

    /// Sets the number of prompt tokens processed.
    pub fn input_tokens(mut self, n: u64) -> Self {
        self.input_tokens = Some(n);
        self
    }

    /// Sets the number of generated tokens.
    pub fn output_tokens(mut self, n: u64) -> Self {
        self.output_tokens = Some(n);
        self
    }

    /// Sets the number of requests served.
    pub fn requests(mut self, n: u64) -> Self {
        self.requests = Some(n);
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    /// - [`Error::Label`]: an empty model/scheme/hardware/task label, or a task or energy
    ///   domain given twice;
    /// - [`Error::Invalid`]: a score outside `[0, 1]`, or an energy or time that is NaN,
    ///   infinite or negative.
    pub fn build(self) -> Result<Run> {
        let run = label(&self.config, self.repetition);
        for (what, s) in [
            ("model", &self.config.model),
            ("scheme", &self.config.scheme),
            ("hardware", &self.config.hardware),
        ] {
            if s.trim().is_empty() {
                return Err(Error::Label { run, what: format!("the {what} label is empty") });
            }
        }
        let mut scores = BTreeMap::new();
        for (task, v) in self.scores {
            if task.trim().is_empty() {
                return Err(Error::Label { run, what: "a task name is empty".into() });
            }
            non_negative(&run, "score", v)?;
            if v > 1.0 {
                return Err(Error::Invalid {
                    run,
                    field: "score",
                    value: v,
                    reason: "scores are fractions in [0, 1] (use score_percent for percent)",
                });
            }
            if scores.insert(task.clone(), v).is_some() {
                return Err(Error::Label { run, what: format!("task `{task}` scored twice") });
            }
        }
        let mut energy: Vec<DomainEnergy> = Vec::with_capacity(self.energy.len());
        for (domain, e) in self.energy {
            non_negative(&run, "energy", e.0)?;
            if energy.iter().any(|x| x.domain == domain) {
                return Err(Error::Label {
                    run,
                    what: format!("energy domain `{domain}` given twice"),
                });
            }
            energy.push(DomainEnergy { domain, energy: e });
        }
        if let Some(w) = self.wall {
            non_negative(&run, "wall", w.0)?;
        }
        Ok(Run {
            config: self.config,
            repetition: self.repetition,
            scores,
            energy,
            wall: self.wall,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            requests: self.requests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> RunBuilder {
        Run::builder("m", "int8", "A100-PCIe-40GB")
    }

    #[test]
    fn validates_scores_and_energy() {
        assert!(matches!(
            base().score("mmlu", 62.0).build(),
            Err(Error::Invalid { field: "score", .. })
        ));
        assert!(matches!(base().score("mmlu", f64::NAN).build(), Err(Error::Invalid { .. })));
        assert!(matches!(
            base().energy(EnergyDomain::Gpu(0), Joules(-1.0)).build(),
            Err(Error::Invalid { field: "energy", .. })
        ));
        assert!(matches!(
            base().wall(Seconds(f64::INFINITY)).build(),
            Err(Error::Invalid { field: "wall", .. })
        ));
        assert!(matches!(base().score("a", 0.1).score("a", 0.2).build(), Err(Error::Label { .. })));
        assert!(matches!(
            base()
                .energy(EnergyDomain::Dram, Joules(1.0))
                .energy(EnergyDomain::Dram, Joules(1.0))
                .build(),
            Err(Error::Label { .. })
        ));
        assert!(matches!(Run::builder(" ", "s", "h").build(), Err(Error::Label { .. })));
    }

    #[test]
    fn missing_fields_are_typed() {
        let r = base().repetition(2).build().unwrap();
        match r.energy() {
            Err(Error::Missing { run, field }) => {
                assert_eq!(run, "m/int8/A100-PCIe-40GB#2");
                assert_eq!(field, "energy");
            }
            other => panic!("{other:?}"),
        }
        assert!(r.score().is_err() && r.wall().is_err() && r.output_tokens().is_err());
    }

    #[test]
    fn sums_and_restricts_domains() {
        let r = base()
            .energy(EnergyDomain::Gpu(0), Joules(100.0))
            .energy(EnergyDomain::Gpu(1), Joules(50.0))
            .energy(EnergyDomain::CpuPackage(0), Joules(25.0))
            .score_percent("mmlu", 50.0)
            .build()
            .unwrap();
        assert_eq!(r.energy().unwrap(), Joules(175.0));
        assert_eq!(r.restricted_to(&EnergyScope::Gpu).unwrap().energy().unwrap(), Joules(150.0));
        let only_dram = r.restricted_to(&EnergyScope::Domains(vec![EnergyDomain::Dram]));
        assert!(matches!(only_dram, Err(Error::Missing { .. })));
        assert_eq!(r.score().unwrap(), 0.5);
    }

    #[test]
    fn json_round_trip_validates() {
        let r = base()
            .score("gsm8k", 0.4)
            .energy(EnergyDomain::Gpu(0), Joules(3600.0))
            .wall(Seconds(10.0))
            .output_tokens(100)
            .build()
            .unwrap();
        let s = serde_json::to_string(&r).unwrap();
        let back: Run = serde_json::from_str(&s).unwrap();
        assert_eq!(back, r);
        let bad = s.replace("0.4", "1.4");
        let err = serde_json::from_str::<Run>(&bad).unwrap_err().to_string();
        assert!(err.contains("score"), "{err}");
    }
}
