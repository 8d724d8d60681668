//! The analysis of a study ([`StudyReport`]) and its output folder.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use eai_metrics::{
    Candidate, Comparison, ConfigSummary, Constraints, Estimate, Objectives, ParetoPoint,
    ProfileSet, Recommendation, Run, Summary, Table2, compare, pareto_front, summaries_to_markdown,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::scheme::Scheme;
use crate::study::{EnergyKind, StudyResults, TaskRecord};

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

fn of_scheme(runs: &[Run], scheme: Scheme) -> Vec<Run> {
    runs.iter().filter(|r| r.config().scheme == scheme.label()).cloned().collect()
}

fn summary(xs: &[f64], what: &str) -> Result<Summary> {
    Summary::of(xs).map_err(|e| Error::metrics(format!("summarizing {what}"), e))
}

fn opt_summary(xs: Option<Vec<f64>>) -> Option<Summary> {
    xs.and_then(|v| Summary::of(&v).ok())
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() { f64::NAN } else { xs.iter().sum::<f64>() / xs.len() as f64 }
}

impl StudyResults {
    /// The analysis with the default constraints: candidates must keep at least 98 % of the
    /// baseline's score; ranked by EOR improvement.
    ///
    /// # Errors
    /// As [`StudyResults::analyze_with`].
    pub fn analyze(&self) -> Result<StudyReport> {
        let c = Constraints { min_retained_accuracy: Some(0.98), ..Constraints::default() };
        self.analyze_with(&c)
    }

    /// The analysis: scores, Table 2 against the first scheme with 95 % intervals, per-scheme
    /// summaries, per-task cells and tables, the Pareto front and the advice under
    /// `constraints`. Parts that need energy are left out (with a note) when the study had
    /// no power source.
    ///
    /// # Errors
    /// [`Error::Metrics`] when the runs cannot be compared (e.g. a scheme with no run).
    pub fn analyze_with(&self, constraints: &Constraints) -> Result<StudyReport> {
        let schemes: Vec<Scheme> = self
            .settings
            .schemes
            .iter()
            .copied()
            .filter(|s| self.runs.iter().any(|r| r.config().scheme == s.label()))
            .collect();
        let baseline = *schemes.first().ok_or_else(|| Error::Config {
            field: "runs",
            reason: "the study recorded no run".into(),
        })?;
        let base_runs = of_scheme(&self.runs, baseline);
        let has_energy = self.energy.kind != EnergyKind::None
            && self.runs.iter().all(|r| r.energy().is_ok_and(|e| e.0 > 0.0));
        let mut notes = Vec::new();
        if !has_energy {
            notes.push(match self.energy.kind {
                EnergyKind::None => EnergyKind::None.banner().to_string(),
                _ => "Some runs have no (or zero) energy: energy tables are left out.".into(),
            });
        }

        // Scores.
        let base_scores: Vec<f64> = base_runs.iter().filter_map(|r| r.score().ok()).collect();
        let mut scores = Vec::new();
        for &s in &schemes {
            let runs = of_scheme(&self.runs, s);
            let run_scores: Vec<f64> = runs.iter().filter_map(|r| r.score().ok()).collect();
            let walls: Vec<f64> = runs.iter().filter_map(|r| r.wall().ok().map(|w| w.0)).collect();
            let mut tasks = BTreeMap::new();
            for t in &self.settings.tasks {
                let v: Vec<f64> = runs.iter().filter_map(|r| r.task_score(&t.name).ok()).collect();
                tasks.insert(t.name.clone(), mean(&v));
            }
            let accuracy_loss = (s != baseline).then(|| {
                let loss = 100.0 * (mean(&base_scores) - mean(&run_scores));
                match eai_metrics::welch(&base_scores, &run_scores, eai_metrics::COMPARISON_LEVEL) {
                    Ok(w) => Estimate {
                        value: loss,
                        ci: Some(eai_metrics::Interval {
                            lo: 100.0 * w.interval.lo,
                            hi: 100.0 * w.interval.hi,
                            level: w.interval.level,
                        }),
                    },
                    Err(_) => Estimate::point(loss),
                }
            });
            scores.push(ScoreRow {
                scheme: s,
                tasks,
                score: summary(&run_scores, &format!("{} scores", s.label()))?,
                accuracy_loss,
                wall_s: summary(&walls, &format!("{} wall times", s.label()))?,
            });
        }

        // Table 2 and summaries.
        let mut table2 = None;
        let mut comparisons = Vec::new();
        let mut summaries = Vec::new();
        let mut task_tables = BTreeMap::new();
        let mut points = Vec::new();
        let mut front = Vec::new();
        let mut advice = None;
        if has_energy {
            let mut t =
                Table2::new(format!("{} ({} runs)", baseline.display_name(), base_runs.len()));
            for &s in &schemes {
                let runs = of_scheme(&self.runs, s);
                summaries.push(
                    ConfigSummary::from_runs(&runs)
                        .map_err(|e| Error::metrics(format!("summarizing {}", s.label()), e))?,
                );
                points
                    .push(ParetoPoint::from_runs(&runs).map_err(|e| {
                        Error::metrics(format!("Pareto point of {}", s.label()), e)
                    })?);
                if s == baseline {
                    continue;
                }
                match compare(&base_runs, &runs) {
                    Ok(c) => {
                        t.push(s.display_name(), &c);
                        comparisons.push(c);
                    }
                    Err(eai_metrics::Error::UnboundedRatio { .. }) => {
                        notes.push(format!(
                            "{}: a 95 % ratio interval is unbounded (too few or too noisy runs \
                             for Fieller's interval); point estimates only",
                            s.display_name()
                        ));
                        t.rows.push(point_row(s.display_name(), &base_runs, &runs)?);
                    }
                    Err(e) => notes.push(format!(
                        "{} is not in Table 2: it cannot be compared with {} ({e})",
                        s.display_name(),
                        baseline.display_name()
                    )),
                }
            }
            table2 = Some(t);
            for task in &self.settings.tasks {
                let of = |s: Scheme| -> Vec<Run> {
                    self.task_runs
                        .iter()
                        .filter(|r| {
                            r.config().scheme == s.label() && r.scores().contains_key(&task.name)
                        })
                        .cloned()
                        .collect()
                };
                let b = of(baseline);
                let mut tt = Table2::new(format!("{} on {}", baseline.display_name(), task.name));
                for &s in schemes.iter().skip(1) {
                    match compare(&b, &of(s)) {
                        Ok(c) => tt.push(s.display_name(), &c),
                        Err(eai_metrics::Error::UnboundedRatio { .. }) => {
                            tt.rows.push(point_row(s.display_name(), &b, &of(s))?);
                        }
                        Err(e) => notes.push(format!(
                            "{} on {}: no comparison ({e})",
                            s.display_name(),
                            task.name
                        )),
                    }
                }
                task_tables.insert(task.name.clone(), tt);
            }
            let fr = pareto_front(&points, Objectives::ScoreEnergy)
                .map_err(|e| Error::metrics("Pareto front", e))?;
            let mut fr: Vec<&ParetoPoint> = fr.iter().collect();
            fr.sort_by(|a, b| a.energy.0.total_cmp(&b.energy.0));
            front = fr.iter().filter_map(|p| Scheme::from_label(&p.config.scheme)).collect();
            advice = self.advice(&schemes, baseline, constraints, &mut notes);
        }

        // Per-task cells.
        let mut cells = Vec::new();
        for &s in &schemes {
            for task in &self.settings.tasks {
                let recs: Vec<&TaskRecord> =
                    self.tasks.iter().filter(|t| t.scheme == s && t.task == task.name).collect();
                if recs.is_empty() {
                    continue;
                }
                let all = |f: &dyn Fn(&TaskRecord) -> Option<f64>| -> Option<Vec<f64>> {
                    recs.iter().map(|r| f(r)).collect()
                };
                let call = |kind: crate::metered::CallKind| -> Option<f64> {
                    let v: Option<Vec<f64>> = recs
                        .iter()
                        .map(|r| {
                            r.calls
                                .iter()
                                .find(|c| c.kind == kind)
                                .and_then(|c| c.energy)
                                .map(|e| e.0)
                        })
                        .collect();
                    v.map(|v| mean(&v))
                };
                let walls: Vec<f64> = recs.iter().map(|r| r.wall.0).collect();
                cells.push(TaskCell {
                    scheme: s,
                    task: task.name.clone(),
                    score: mean(&recs.iter().map(|r| r.score).collect::<Vec<_>>()),
                    wall_s: summary(&walls, "task wall times")?,
                    energy_j: opt_summary(all(&|r| r.energy.map(|e| e.0))),
                    eor: opt_summary(all(&TaskRecord::eor)),
                    tweor: opt_summary(all(&|r| r.eor().map(|e| e / r.wall.0))),
                    j_per_request: all(&TaskRecord::joules_per_request).map(|v| mean(&v)),
                    j_per_token: all(&TaskRecord::joules_per_token).map(|v| mean(&v)),
                    loglikelihood_j: call(crate::metered::CallKind::Loglikelihood),
                    generation_j: call(crate::metered::CallKind::Generation),
                });
            }
        }

        Ok(StudyReport {
            baseline,
            energy_kind: if has_energy { self.energy.kind } else { EnergyKind::None },
            scores,
            table2,
            comparisons,
            summaries,
            cells,
            task_tables,
            points,
            front,
            advice,
            notes,
        })
    }

    fn advice(
        &self,
        schemes: &[Scheme],
        baseline: Scheme,
        constraints: &Constraints,
        notes: &mut Vec<String>,
    ) -> Option<Advice> {
        let runs: Vec<Run> = schemes.iter().flat_map(|&s| of_scheme(&self.runs, s)).collect();
        match advise(&runs, baseline.label(), constraints) {
            Ok(a) => Some(a),
            Err(e) => {
                notes.push(format!("no advice: {e}"));
                None
            }
        }
    }
}

/// The deployment advice from measured runs: one recommender candidate per configuration
/// (model, scheme, hardware) against the runs of the `baseline` scheme — retained accuracy
/// (ratio of mean scores) and EOR improvement (the ratio of mean per-run EOR, as Table 2) —
/// then `eai_metrics::recommend`'s decision flow under `constraints`.
///
/// When every run's hardware label is a hardware-profile id (`eai recommend --profiles`) the
/// full flow runs, tensor-core checks included. Otherwise (a CPU, an unprofiled GPU) the
/// hardware step is skipped, said so in every candidate's reasons, and the candidates are
/// checked against the requirements and ranked exactly as the full flow would rank them.
///
/// This is what a study's report shows as its advice and what `eai recommend` prints.
///
/// # Errors
/// [`Error::Config`] when no run has the baseline scheme; [`Error::Metrics`] when no
/// candidate can be built (runs without energy, a zero baseline score) or the constraints are
/// invalid.
pub fn advise(runs: &[Run], baseline: &str, constraints: &Constraints) -> Result<Advice> {
    // Configurations in the order they first appear (a study's scheme order).
    let mut configs: Vec<&eai_metrics::Config> = Vec::new();
    for r in runs {
        if !configs.contains(&r.config()) {
            configs.push(r.config());
        }
    }
    let of = |c: &eai_metrics::Config| -> Vec<Run> {
        runs.iter().filter(|r| r.config() == c).cloned().collect()
    };
    let base_cfg = configs.iter().find(|c| c.scheme == baseline).ok_or_else(|| Error::Config {
        field: "baseline",
        reason: format!("no run of the baseline scheme `{baseline}`"),
    })?;
    let base_runs = of(base_cfg);
    let mut notes = Vec::new();
    let mut candidates = Vec::new();
    let mut eor_gain = Vec::new();
    let mut made_from: Vec<(String, String, Vec<Run>)> = Vec::new();
    let mut first_error = None;
    for c in &configs {
        let strategy = Scheme::from_label(&c.scheme).map_or_else(
            || eai_metrics::Strategy { name: c.scheme.clone(), ..eai_metrics::Strategy::fp32() },
            Scheme::strategy,
        );
        let cand_runs = of(c);
        let made = match Candidate::from_runs(&base_runs, &cand_runs, strategy.clone()) {
            Err(eai_metrics::Error::UnboundedRatio { .. }) => {
                point_candidate(&base_runs, &cand_runs, strategy)
            }
            other => other.map_err(|e| Error::metrics(format!("candidate {c}"), e)),
        };
        match made {
            Ok(x) => {
                if c.scheme != baseline
                    && let Ok(cmp) = compare(&base_runs, &cand_runs)
                {
                    eor_gain.push((
                        x.strategy.name.clone(),
                        x.hardware.clone(),
                        cmp.eor_improvement,
                    ));
                }
                made_from.push((x.strategy.name.clone(), x.hardware.clone(), cand_runs));
                candidates.push(x);
            }
            Err(e) => {
                notes.push(format!("no advice candidate for {c}: {e}"));
                first_error.get_or_insert(e);
            }
        }
    }
    if candidates.is_empty() {
        return Err(first_error
            .unwrap_or(Error::Config { field: "runs", reason: "no run to advise on".into() }));
    }
    let profiles = ProfileSet::builtin().map_err(|e| Error::metrics("hardware profiles", e))?;
    let hardware_checked = candidates.iter().all(|c| profiles.get(&c.hardware).is_ok());
    let recommendation = if hardware_checked {
        eai_metrics::recommend(&candidates, constraints, &profiles)
    } else {
        recommend_unprofiled(&candidates, constraints)
    }
    .map_err(|e| Error::metrics("recommendation", e))?;
    if let Some(best) = recommendation.best() {
        let b = &best.candidate;
        let est = eor_gain.iter().find(|(n, h, _)| *n == b.strategy.name && *h == b.hardware);
        if let Some((_, _, Estimate { value, ci: Some(ci) })) = est
            && ci.lo <= 0.0
            && ci.hi >= 0.0
        {
            notes.push(format!(
                "the first choice's EOR improvement over the baseline, {value:+.1} % [{:.1}, \
                     {:.1}] ({:.0} % interval), includes zero: these runs do not show that {} \
                     is more efficient than the baseline (more repetitions or documents would \
                     narrow it)",
                ci.lo,
                ci.hi,
                100.0 * ci.level,
                b.strategy.name
            ));
        }
    }
    // Whether the runs separate the first two choices (the ranking is on point estimates).
    if let [first, second, ..] = recommendation.ranked.as_slice() {
        let runs_of = |c: &Candidate| {
            made_from
                .iter()
                .find(|(n, h, _)| *n == c.strategy.name && *h == c.hardware)
                .map(|(_, _, r)| r)
        };
        if let (Some(a), Some(b)) = (runs_of(&first.candidate), runs_of(&second.candidate))
            && let Ok(cmp) = compare(b, a)
            && let Some(ci) = cmp.eor_improvement.ci
            && ci.lo <= 0.0
            && ci.hi >= 0.0
        {
            notes.push(format!(
                "{} ranks before {} on the point estimates, but its EOR relative to {} is \
                 {:+.1} % [{:.1}, {:.1}] ({:.0} % interval), which includes zero: these runs \
                 do not separate the two",
                first.candidate.strategy.name,
                second.candidate.strategy.name,
                second.candidate.strategy.name,
                cmp.eor_improvement.value,
                ci.lo,
                ci.hi,
                100.0 * ci.level
            ));
        }
    }
    Ok(Advice {
        constraints: constraints.clone(),
        baseline: base_cfg.to_string(),
        hardware_checked,
        recommendation,
        notes,
    })
}

impl Advice {
    /// The advice as Markdown: the constraints, whether the hardware step ran, then the
    /// recommender's ranked and rejected candidates with their reasons.
    pub fn to_markdown(&self) -> String {
        let c = &self.constraints;
        let mut limits = vec![c.min_retained_accuracy.map_or_else(
            || "no accuracy threshold".to_string(),
            |m| format!("keep at least {:.1} % of the baseline score", 100.0 * m),
        )];
        if let Some(l) = c.max_latency {
            limits.push(format!("at most {:.3} s per request", l.0));
        }
        let mut s = format!(
            "Baseline {}. Constraints: {}; priority {:?}; input variability {:?}.",
            self.baseline,
            limits.join(", "),
            c.priority,
            c.variability
        );
        if !self.hardware_checked {
            s.push_str(
                " The hardware is not a profiled GPU, so the hardware step of \
                 `eai_metrics::recommend`'s decision flow (tensor-core support, memory, power \
                 envelope) is skipped; candidates are checked against the requirements and \
                 ranked as that flow ranks them, on the runs' figures.",
            );
        }
        s.push_str("\n\n");
        // The recommender's sections sit under the report's "Advice" section.
        for line in self.recommendation.to_markdown().lines() {
            match line.strip_prefix("## ") {
                Some(h) => {
                    let _ = writeln!(s, "### {h}");
                }
                None => {
                    let _ = writeln!(s, "{line}");
                }
            }
        }
        for n in &self.notes {
            let _ = writeln!(s, "\n- note: {n}");
        }
        s
    }
}

fn means(runs: &[Run], f: impl Fn(&Run) -> eai_metrics::Result<f64>) -> Result<f64> {
    let v: Vec<f64> = runs
        .iter()
        .map(&f)
        .collect::<eai_metrics::Result<_>>()
        .map_err(|e| Error::metrics("point estimates", e))?;
    if v.is_empty() {
        return Err(Error::Config { field: "runs", reason: "no runs to compare".into() });
    }
    Ok(mean(&v))
}

/// Table 2 figures without intervals, by the same definitions as `eai_metrics::compare`
/// (ratio of mean energies; difference of mean scores; ratio of mean per-run EOR/TWEOR). Used
/// when Fieller's interval is unbounded, which `compare` reports as an error.
fn point_row(strategy: &str, base: &[Run], cand: &[Run]) -> Result<eai_metrics::Table2Row> {
    let e = |r: &Run| r.energy().map(|e| e.0);
    let eor = |r: &Run| r.eor().map(|e| e.0);
    let tweor = |r: &Run| r.tweor().map(|e| e.0);
    let tw = match (means(base, tweor), means(cand, tweor)) {
        (Ok(b), Ok(c)) if b > 0.0 => Some(Estimate::point(100.0 * (c / b - 1.0))),
        _ => None,
    };
    Ok(eai_metrics::Table2Row {
        strategy: strategy.to_string(),
        n_baseline: base.len(),
        n_candidate: cand.len(),
        energy_reduction: Estimate::point(100.0 * (1.0 - means(cand, e)? / means(base, e)?)),
        accuracy_loss: Estimate::point(
            100.0 * (means(base, Run::score)? - means(cand, Run::score)?),
        ),
        eor_improvement: Estimate::point(100.0 * (means(cand, eor)? / means(base, eor)? - 1.0)),
        tweor_improvement: tw,
    })
}

/// A recommender candidate from point estimates (see [`point_row`]).
fn point_candidate(
    base: &[Run],
    cand: &[Run],
    strategy: eai_metrics::Strategy,
) -> Result<Candidate> {
    let row = point_row(&strategy.name, base, cand)?;
    let per_req =
        |r: &Run| -> eai_metrics::Result<f64> { Ok(r.energy()?.0 / r.requests()?.max(1) as f64) };
    let lat =
        |r: &Run| -> eai_metrics::Result<f64> { Ok(r.wall()?.0 / r.requests()?.max(1) as f64) };
    Ok(Candidate {
        hardware: cand.first().map(|r| r.config().hardware.clone()).unwrap_or_default(),
        strategy,
        retained_accuracy: means(cand, Run::score)? / means(base, Run::score)?,
        efficiency_gain: eai_metrics::Percent(row.eor_improvement.value),
        energy_per_request: means(cand, per_req).ok().map(eai_core::Joules),
        latency: means(cand, lat).ok().map(eai_core::Seconds),
        evidence: eai_metrics::Evidence::Measured { runs: cand.len() },
    })
}

/// The decision flow without the hardware step: requirements (retained accuracy, latency),
/// then ranking by the priority. Used when the hardware label matches no profile.
fn recommend_unprofiled(
    candidates: &[Candidate],
    c: &Constraints,
) -> eai_metrics::Result<Recommendation> {
    // Re-use the library's flow on a synthetic "any hardware" view: filter and rank here,
    // and let the library format reasons through its public types.
    use eai_metrics::{Assessment, Priority, Reason, Step, Verdict};
    let mut ranked = Vec::new();
    let mut rejected = Vec::new();
    for cand in candidates {
        let mut reasons = vec![Reason {
            step: Step::Hardware,
            verdict: Verdict::Note,
            text: format!(
                "`{}` has no hardware profile: tensor-core, memory and power checks skipped",
                cand.hardware
            ),
        }];
        let mut ok = true;
        if let Some(min) = c.min_retained_accuracy {
            let pass = cand.retained_accuracy >= min;
            ok &= pass;
            reasons.push(Reason {
                step: Step::Requirements,
                verdict: if pass { Verdict::Pass } else { Verdict::Fail },
                text: format!(
                    "retains {:.1} % of baseline accuracy ({} the {:.1} % threshold)",
                    100.0 * cand.retained_accuracy,
                    if pass { "meets" } else { "below" },
                    100.0 * min
                ),
            });
        }
        if let (Some(max), Some(l)) = (c.max_latency, cand.latency) {
            let pass = l.0 <= max.0;
            ok &= pass;
            reasons.push(Reason {
                step: Step::Requirements,
                verdict: if pass { Verdict::Pass } else { Verdict::Fail },
                text: format!("latency {:.3} s per request (limit {:.3} s)", l.0, max.0),
            });
        }
        let a = Assessment {
            candidate: cand.clone(),
            reasons,
            gpus: None,
            annual_energy_cost: None,
            tco: None,
        };
        if ok { ranked.push(a) } else { rejected.push(a) }
    }
    ranked.sort_by(|x, y| {
        let (a, b) = (&x.candidate, &y.candidate);
        let gain = b.efficiency_gain.0.total_cmp(&a.efficiency_gain.0);
        let acc = b.retained_accuracy.total_cmp(&a.retained_accuracy);
        match c.priority {
            Priority::Accuracy => acc.then(gain),
            Priority::Flexibility => b.strategy.adaptive.cmp(&a.strategy.adaptive).then(gain),
            _ => gain.then(acc),
        }
    });
    let n = ranked.len();
    for (i, a) in ranked.iter_mut().enumerate() {
        let text = format!(
            "rank {} of {n}: EOR {:+.1} %, {:.1} % of baseline accuracy",
            i + 1,
            a.candidate.efficiency_gain.0,
            100.0 * a.candidate.retained_accuracy
        );
        a.reasons.push(Reason { step: Step::Ranking, verdict: Verdict::Note, text });
    }
    Ok(Recommendation { ranked, rejected })
}

/// `x` to `digits` decimals, without the sign of a negative value that rounds to zero.
fn num(x: f64, digits: usize) -> String {
    let s = format!("{x:.digits$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

fn fmt_summary(s: Option<&Summary>, digits: usize) -> String {
    match s {
        None => "–".into(),
        Some(s) => match s.ci {
            Some(ci) => {
                format!("{} [{}, {}]", num(s.mean, digits), num(ci.lo, digits), num(ci.hi, digits))
            }
            None => num(s.mean, digits),
        },
    }
}

fn fmt_opt(x: Option<f64>, digits: usize) -> String {
    x.filter(|v| v.is_finite()).map_or_else(|| "–".into(), |v| num(v, digits))
}

fn fmt_estimate(e: Option<&Estimate>, unit: &str, digits: usize) -> String {
    match e {
        None => "(baseline)".into(),
        Some(e) => match e.ci {
            Some(ci) => format!(
                "{} {unit} [{}, {}]",
                num(e.value, digits),
                num(ci.lo, digits),
                num(ci.hi, digits)
            ),
            None => format!("{} {unit}", num(e.value, digits)),
        },
    }
}

/// Names of the files a study folder holds, relative to it.
pub mod files {
    /// The report.
    pub const REPORT_MD: &str = "report.md";
    /// The analysis as JSON ([`crate::StudyReport`]).
    pub const REPORT_JSON: &str = "report.json";
    /// Everything recorded except the trace and samples ([`crate::StudyResults`]).
    pub const RESULTS_JSON: &str = "results.json";
    /// One run per (scheme, repetition), as [`eai_metrics::Run`] JSON.
    pub const RUNS_JSON: &str = "runs.json";
    /// The same runs, flat.
    pub const RUNS_CSV: &str = "runs.csv";
    /// One row per task window.
    pub const TASKS_CSV: &str = "tasks.csv";
    /// Every energy window.
    pub const WINDOWS_JSON: &str = "windows.json";
    /// The power timeline, every sample (`source,signal,t_s,value`).
    pub const TRACE_CSV: &str = "trace.csv";
    /// The power timeline with sources, events and status (replayable).
    pub const TRACE_JSON: &str = "trace.json";
    /// Table 2 as CSV.
    pub const TABLE2_CSV: &str = "table2.csv";
    /// Table 2 as JSON.
    pub const TABLE2_JSON: &str = "table2.json";
    /// Per-sample records, `samples/<scheme>/rep<k>/samples_<task>.jsonl`.
    pub const SAMPLES_DIR: &str = "samples";
    /// The study's journal: one line per finished run, for `--resume` (`Study::journal`).
    pub const JOURNAL_JSONL: &str = "journal.jsonl";
    /// The `eai study` arguments, for `eai study --resume`.
    pub const STUDY_ARGS_JSON: &str = "study-args.json";
    /// Power over time with task windows.
    pub const POWER_SVG: &str = "plots/power.svg";
    /// Score against energy with the Pareto front.
    pub const PARETO_SVG: &str = "plots/score_energy.svg";
    /// Scheme × task heatmap of EOR (or of scores without energy).
    pub const HEATMAP_SVG: &str = "plots/eor_heatmap.svg";
}

impl StudyReport {
    /// The headline table: Table 2 when there is energy, else the scores per scheme.
    pub fn table(&self) -> String {
        match &self.table2 {
            Some(t) => t.to_markdown(),
            None => self.scores_markdown(),
        }
    }

    fn scores_markdown(&self) -> String {
        let tasks: Vec<&String> =
            self.scores.first().map(|r| r.tasks.keys().collect()).unwrap_or_default();
        let mut s = String::from("| Scheme |");
        for t in &tasks {
            let _ = write!(s, " {t} |");
        }
        s.push_str(" Mean score | Acc. loss vs baseline | Time per run (s) |\n|---|");
        for _ in &tasks {
            s.push_str("---:|");
        }
        s.push_str("---:|---:|---:|\n");
        for r in &self.scores {
            let _ = write!(s, "| {} |", r.scheme.display_name());
            for t in &tasks {
                let _ = write!(s, " {} |", fmt_opt(r.tasks.get(*t).copied(), 4));
            }
            let _ = writeln!(
                s,
                " {} | {} | {} |",
                fmt_summary(Some(&r.score), 4),
                fmt_estimate(r.accuracy_loss.as_ref(), "pp", 2),
                fmt_summary(Some(&r.wall_s), 1)
            );
        }
        s
    }

    /// The whole report as Markdown (the `report.md` of a study folder).
    pub fn markdown(&self, r: &StudyResults) -> String {
        let st = &r.settings;
        let mut s = String::new();
        let _ = writeln!(s, "# eai study: {} on {}\n", st.model, st.hardware);
        let _ = writeln!(s, "> {}\n", self.energy_kind_banner(r));
        let _ = writeln!(
            s,
            "Schemes {} (baseline {}), {} repetition(s) each, {} warm-up document(s) per task, \
             {:.0} s idle baseline and {:.0} s cool-down per scheme; the study took {:.1} s.\n",
            st.schemes.iter().map(|x| x.display_name()).collect::<Vec<_>>().join(", "),
            self.baseline.display_name(),
            st.repeats,
            st.warmup_docs,
            st.baseline.0,
            st.cooldown.0,
            r.duration.0
        );
        s.push_str("| Task | Metric | Shots | Documents | Data |\n|---|---|---:|---:|---|\n");
        for t in &st.tasks {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                t.name, t.metric, t.shots, t.docs, t.source
            );
        }
        s.push('\n');
        s.push_str(&r.environment.to_markdown());
        if let Some(t) = &self.table2 {
            let _ = writeln!(
                s,
                "## Table 2: quantization strategy performance\n\nIn the paper's layout: \
                 energy reduction, accuracy loss (percentage points of the mean task score) and \
                 EOR improvement of each scheme against {}, over all tasks together. {}\n",
                self.baseline.display_name(),
                t.to_markdown()
            );
        }
        let _ = writeln!(s, "## Scores\n\n{}", self.scores_markdown());
        if !self.summaries.is_empty() {
            let _ = writeln!(
                s,
                "## Per configuration\n\nMean [95 % interval] over the repetitions; energy and \
                 time summed over the tasks of a run.\n\n{}",
                summaries_to_markdown(&self.summaries)
            );
        }
        let energy = self.energy_kind != EnergyKind::None;
        // Per-call energy columns only when the calls were metered (`per_call_energy`).
        let calls = r.tasks.iter().any(|t| !t.calls.is_empty());
        s.push_str("## Per task\n\n");
        if energy {
            s.push_str(
                "Mean [95 % interval] over the repetitions; energy and time per pass of the \
                 task's requests. J/token here divides by the tokens the engine scored \
                 (log-likelihood continuations) or generated; the per-configuration J/token \
                 above counts generated tokens only (none on multiple-choice tasks).",
            );
            if calls {
                s.push_str(
                    " Prefill J and Generation J are the energy inside the model's \
                     log-likelihood and generation calls of the first pass (`Metered`); the \
                     rest of a task's energy is prompt building and scoring.",
                );
            }
            s.push_str("\n\n");
            s.push_str(if calls {
                "| Scheme | Task | Score | Energy (J) | EOR (score/Wh) | TWEOR (score/(Wh·s)) | J/request | J/token | Prefill J | Generation J | Time (s) |\n\
                 |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
            } else {
                "| Scheme | Task | Score | Energy (J) | EOR (score/Wh) | TWEOR (score/(Wh·s)) | J/request | J/token | Time (s) |\n\
                 |---|---|---:|---:|---:|---:|---:|---:|---:|\n"
            });
        } else {
            s.push_str("| Scheme | Task | Score | Time (s) |\n|---|---|---:|---:|\n");
        }
        for c in &self.cells {
            if energy {
                let call_cols = if calls {
                    format!(" {} | {} |", fmt_opt(c.loglikelihood_j, 1), fmt_opt(c.generation_j, 1))
                } else {
                    String::new()
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.4} | {} | {} | {} | {} | {} |{call_cols} {} |",
                    c.scheme.display_name(),
                    c.task,
                    c.score,
                    fmt_summary(c.energy_j.as_ref(), 1),
                    fmt_summary(c.eor.as_ref(), 3),
                    fmt_summary(c.tweor.as_ref(), 5),
                    fmt_opt(c.j_per_request, 3),
                    fmt_opt(c.j_per_token, 4),
                    fmt_summary(Some(&c.wall_s), 2),
                );
            } else {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.4} | {} |",
                    c.scheme.display_name(),
                    c.task,
                    c.score,
                    fmt_summary(Some(&c.wall_s), 2)
                );
            }
        }
        s.push('\n');
        s.push_str(&crate::breakdown::time_markdown(r));
        s.push_str(&crate::devices::device_energy_markdown(r));
        for (task, t) in &self.task_tables {
            if !t.rows.is_empty() {
                let _ = writeln!(s, "### Table 2 on {task} alone\n\n{}", t.to_markdown());
            }
        }
        if !self.points.is_empty() {
            s.push_str("## Score against energy\n\n| Scheme | Mean score | Mean energy (Wh) | Mean time (s) | Pareto-optimal |\n|---|---:|---:|---:|---|\n");
            for p in &self.points {
                let sch = Scheme::from_label(&p.config.scheme);
                let _ = writeln!(
                    s,
                    "| {} | {:.4} | {:.5} | {} | {} |",
                    sch.map_or_else(|| p.config.scheme.clone(), |x| x.display_name().to_string()),
                    p.score,
                    p.energy.to_watt_hours(),
                    fmt_opt(p.latency.map(|l| l.0), 2),
                    if sch.is_some_and(|x| self.front.contains(&x)) { "yes" } else { "" }
                );
            }
            s.push('\n');
        }
        if let Some(a) = &self.advice {
            let _ = writeln!(
                s,
                "## Advice\n\nThe deployment decision computed from the runs above by \
                 `eai::advise` (eai-metrics' recommender; `eai recommend <this folder>` prints \
                 the same).{}\n\n{}",
                if self.energy_kind == EnergyKind::Estimated {
                    " The energy figures it ranks on are ESTIMATED, not measured."
                } else if self.energy_kind == EnergyKind::Replayed {
                    " The energy figures it ranks on come from a REPLAYED trace."
                } else {
                    ""
                },
                a.to_markdown()
            );
        }
        s.push_str("## Plots\n\n");
        if r.timeline.is_some() {
            let _ = writeln!(s, "![Power over time]({})\n", files::POWER_SVG);
        }
        if !self.points.is_empty() {
            let _ = writeln!(s, "![Score against energy]({})\n", files::PARETO_SVG);
        }
        let _ = writeln!(s, "![Scheme × task heatmap]({})\n", files::HEATMAP_SVG);
        s.push_str(&self.measurement_notes(r));
        if !self.notes.is_empty() {
            s.push_str("\n## Notes\n\n");
            for n in &self.notes {
                let _ = writeln!(s, "- {n}");
            }
        }
        let _ = writeln!(
            s,
            "\n## Files\n\n`{}` (every run, as `eai_metrics::Run`), `{}`, `{}` (one row per task \
             window), `{}` (everything recorded), `{}` (this analysis), `{}` (every energy \
             window), `{}`/`{}` (the power trace), `{}`/`{}`, `{}/` (per-sample records).",
            files::RUNS_JSON,
            files::RUNS_CSV,
            files::TASKS_CSV,
            files::RESULTS_JSON,
            files::REPORT_JSON,
            files::WINDOWS_JSON,
            files::TRACE_CSV,
            files::TRACE_JSON,
            files::TABLE2_CSV,
            files::TABLE2_JSON,
            files::SAMPLES_DIR
        );
        s
    }

    fn energy_kind_banner(&self, r: &StudyResults) -> String {
        let mut b = self.energy_kind.banner().to_string();
        if !r.energy.sources.is_empty() {
            let names: Vec<String> =
                r.energy.sources.iter().map(|s| format!("{} ({})", s.id, s.name)).collect();
            let _ = write!(b, " Sources: {}.", names.join(", "));
        }
        b
    }

    fn measurement_notes(&self, r: &StudyResults) -> String {
        let mut s = String::from("## Measurement\n\n");
        if r.energy.sources.is_empty() {
            s.push_str("No power source was sampled.\n");
        } else {
            s.push_str("| Source | Name | Provenance | Signals |\n|---|---|---|---|\n");
            for src in &r.energy.sources {
                let sig: Vec<&str> = src.signals.iter().map(|x| x.signal.as_str()).collect();
                let _ = writeln!(
                    s,
                    "| {} | {} | {:?} | {} |",
                    src.id,
                    src.name,
                    src.provenance,
                    sig.join(", ")
                );
            }
        }
        for u in &r.energy.unavailable {
            let _ = writeln!(s, "- unavailable: {u}");
        }
        for w in &r.energy.warnings {
            let _ = writeln!(s, "- warning: {w}");
        }
        let _ = writeln!(s, "- energy accounting: {:?}", r.energy.accounting);
        s.push_str("\n| Scheme | Build time (s) | Build energy (J) | Idle baseline | Warm-up (s) |\n|---|---:|---:|---|---:|\n");
        for sc in &r.schemes {
            let base = sc.baseline.as_ref().map_or_else(
                || "–".to_string(),
                |b| {
                    b.devices
                        .iter()
                        .map(|d| format!("{}: {:.2} ± {:.2} W", d.source, d.mean.0, d.std.0))
                        .collect::<Vec<_>>()
                        .join("; ")
                },
            );
            let _ = writeln!(
                s,
                "| {} | {:.2} | {} | {} | {:.2} |",
                sc.scheme.display_name(),
                sc.load_time.0,
                fmt_opt(sc.load_energy.map(|e| e.0), 1),
                base,
                sc.warmup_time.0
            );
        }
        let mut flagged: Vec<String> = r
            .tasks
            .iter()
            .filter_map(|t| {
                let f: Vec<String> = t
                    .devices
                    .iter()
                    .flat_map(|d| d.flags.iter().map(move |f| format!("{}: {f}", d.source)))
                    .collect();
                (!f.is_empty()).then(|| {
                    format!("{}/rep{}/{}: {}", t.scheme.label(), t.repetition, t.task, f.join(", "))
                })
            })
            .collect();
        flagged.extend(crate::breakdown::pass_flags(&r.tasks));
        if !flagged.is_empty() {
            s.push_str("\nQuality flags on task windows:\n\n");
            for f in flagged {
                let _ = writeln!(s, "- {f}");
            }
        }
        s
    }
}

#[derive(Serialize)]
struct RunRow<'a> {
    model: &'a str,
    scheme: &'a str,
    hardware: &'a str,
    repetition: Option<u32>,
    score: Option<f64>,
    energy_j: Option<f64>,
    energy_wh: Option<f64>,
    wall_s: Option<f64>,
    eor: Option<f64>,
    tweor: Option<f64>,
    requests: Option<u64>,
    output_tokens: Option<u64>,
    scores: String,
}

#[derive(Serialize)]
struct TaskRow<'a> {
    scheme: &'a str,
    repetition: u32,
    task: &'a str,
    metric: &'a str,
    score: f64,
    stderr: Option<f64>,
    docs: usize,
    start_s: f64,
    wall_s: f64,
    energy_j: Option<f64>,
    eor: Option<f64>,
    requests: u64,
    tokens: Option<u64>,
    j_per_request: Option<f64>,
    j_per_token: Option<f64>,
    loglikelihood_j: Option<f64>,
    generation_j: Option<f64>,
    window: Option<u64>,
    passes: u32,
    window_s: f64,
    passes_agree: bool,
    tokenize_s: Option<f64>,
    engine_s: Option<f64>,
    scoring_s: Option<f64>,
    bookkeeping_s: Option<f64>,
    engine_busy: Option<f64>,
}

fn write_file(path: &Path, bytes: impl AsRef<[u8]>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

fn json<T: Serialize + ?Sized>(v: &T, what: &Path) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| Error::format(what.display().to_string(), e))
}

fn csv_bytes<T: Serialize>(rows: impl IntoIterator<Item = T>, what: &Path) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(|e| Error::format(what.display().to_string(), e))?;
    }
    w.into_inner().map_err(|e| Error::format(what.display().to_string(), e))
}

impl StudyResults {
    /// Analyses the study (default constraints) and writes its folder: `report.md`,
    /// `report.json`, `results.json`, `runs.json`/`runs.csv`, `tasks.csv`, `windows.json`,
    /// `trace.csv`/`trace.json`, `table2.csv`/`table2.json`, per-sample records and three SVG
    /// plots (see [`files`]). Returns the analysis.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file, formatting and plotting errors, analysis errors.
    pub fn write(&self, dir: impl AsRef<Path>) -> Result<StudyReport> {
        let report = self.analyze()?;
        self.write_with(dir, &report)?;
        Ok(report)
    }

    /// Writes the folder for an analysis you made (e.g. with other constraints).
    ///
    /// # Errors
    /// As [`StudyResults::write`].
    pub fn write_with(&self, dir: impl AsRef<Path>, report: &StudyReport) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let p = |name: &str| -> PathBuf { dir.join(name) };

        // Everything recorded, without the bulky parts that have their own files.
        let lean = StudyResults { timeline: None, samples: Vec::new(), ..self.clone() };
        let f = p(files::RESULTS_JSON);
        write_file(&f, json(&lean, &f)?)?;
        let f = p(files::RUNS_JSON);
        write_file(&f, json(&self.runs, &f)?)?;
        let f = p(files::RUNS_CSV);
        let rows = self.runs.iter().map(|r| RunRow {
            model: &r.config().model,
            scheme: &r.config().scheme,
            hardware: &r.config().hardware,
            repetition: r.repetition(),
            score: r.score().ok(),
            energy_j: r.energy().ok().map(|e| e.0),
            energy_wh: r.energy().ok().map(|e| e.to_watt_hours()),
            wall_s: r.wall().ok().map(|w| w.0),
            eor: r.eor().ok().map(|e| e.0),
            tweor: r.tweor().ok().map(|e| e.0),
            requests: r.requests().ok(),
            output_tokens: r.output_tokens().ok(),
            scores: r
                .scores()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(";"),
        });
        let bytes = csv_bytes(rows, &f)?;
        write_file(&f, bytes)?;
        let f = p(files::TASKS_CSV);
        let call = |t: &TaskRecord, k| {
            t.calls.iter().find(|c| c.kind == k).and_then(|c| c.energy).map(|e| e.0)
        };
        let rows = self.tasks.iter().map(|t| TaskRow {
            scheme: t.scheme.label(),
            repetition: t.repetition,
            task: &t.task,
            metric: &t.metric,
            score: t.score,
            stderr: t.stderr,
            docs: t.docs,
            start_s: t.start.0,
            wall_s: t.wall.0,
            energy_j: t.energy.map(|e| e.0),
            eor: t.eor(),
            requests: t.requests,
            tokens: t.tokens,
            j_per_request: t.joules_per_request(),
            j_per_token: t.joules_per_token(),
            loglikelihood_j: call(t, crate::metered::CallKind::Loglikelihood),
            generation_j: call(t, crate::metered::CallKind::Generation),
            window: t.window,
            passes: t.passes,
            window_s: t.window_wall.0,
            passes_agree: t.passes_agree,
            tokenize_s: t.time.map(|b| b.tokenize.0),
            engine_s: t.time.map(|b| b.engine.0),
            scoring_s: t.time.map(|b| b.scoring.0),
            bookkeeping_s: t.time.map(|b| b.bookkeeping.0),
            engine_busy: t.time.and_then(|b| b.engine_busy()),
        });
        let bytes = csv_bytes(rows, &f)?;
        write_file(&f, bytes)?;
        let f = p(files::WINDOWS_JSON);
        write_file(&f, json(&self.windows, &f)?)?;
        if let Some(tl) = &self.timeline {
            for name in [files::TRACE_CSV, files::TRACE_JSON] {
                let f = p(name);
                tl.save(&f).map_err(|e| Error::power(format!("writing {}", f.display()), e))?;
            }
        }
        if let Some(t) = &report.table2 {
            let f = p(files::TABLE2_CSV);
            let mut bytes = Vec::new();
            t.write_csv(&mut bytes).map_err(|e| Error::metrics(f.display().to_string(), e))?;
            write_file(&f, bytes)?;
            let f = p(files::TABLE2_JSON);
            write_file(&f, t.to_json().map_err(|e| Error::metrics(f.display().to_string(), e))?)?;
        }
        for set in &self.samples {
            let f = dir.join(set.relative_path());
            match &set.file {
                // Records kept on disk (a study with a journal): copied, unless that file
                // already is the destination.
                Some(src) if set.records.is_empty() => {
                    let same = std::fs::canonicalize(&f)
                        .is_ok_and(|d| std::fs::canonicalize(src).is_ok_and(|s| s == d));
                    if !same {
                        if let Some(parent) = f.parent() {
                            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                        }
                        std::fs::copy(src, &f).map_err(|e| Error::io(src, e))?;
                    }
                }
                _ => {
                    let out = set.jsonl().map_err(|e| Error::format(f.display().to_string(), e))?;
                    write_file(&f, out)?;
                }
            }
        }
        crate::plots::power_over_time(self, &p(files::POWER_SVG))?;
        if !report.points.is_empty() {
            crate::plots::score_energy(self, report, &p(files::PARETO_SVG))?;
        }
        crate::plots::heatmap(report, &p(files::HEATMAP_SVG))?;
        let f = p(files::REPORT_JSON);
        write_file(&f, json(report, &f)?)?;
        write_file(&p(files::REPORT_MD), report.markdown(self))?;
        Ok(())
    }

    /// Reads a study folder written by [`StudyResults::write`] back (results, trace and
    /// samples), e.g. to analyse it again with other constraints.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Format`] naming the file.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let f = dir.join(files::RESULTS_JSON);
        let text = std::fs::read_to_string(&f).map_err(|e| Error::io(&f, e))?;
        let mut r: StudyResults =
            serde_json::from_str(&text).map_err(|e| Error::format(f.display().to_string(), e))?;
        let trace = dir.join(files::TRACE_JSON);
        if trace.exists() {
            r.timeline = Some(
                eai_power::Timeline::load(&trace)
                    .map_err(|e| Error::power(format!("reading {}", trace.display()), e))?,
            );
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_that_round_to_zero_have_no_sign() {
        assert_eq!(super::num(-0.0, 2), "0.00");
        assert_eq!(super::num(-0.001, 2), "0.00");
        assert_eq!(super::num(-0.01, 2), "-0.01");
        assert_eq!(super::num(2.5, 1), "2.5");
    }
}
