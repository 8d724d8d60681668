//! The analysis ([`StudyResults::analyze`]): scores, Table 2 against the baseline with
//! intervals, per-scheme summaries, per-task cells and tables, the Pareto front and the advice.

use std::collections::BTreeMap;

use eai_metrics::{
    ConfigSummary, Constraints, Estimate, Objectives, ParetoPoint, Run, Summary, Table2, compare,
    pareto_front,
};

use super::point::point_row;
use super::{Advice, ScoreRow, StudyReport, TaskCell, advise};
use crate::error::{Error, Result};
use crate::scheme::Scheme;
use crate::study::{EnergyKind, StudyResults, TaskRecord};

fn of_scheme(runs: &[Run], scheme: Scheme) -> Vec<Run> {
    runs.iter().filter(|r| r.config().scheme == scheme.label()).cloned().collect()
}

fn summary(xs: &[f64], what: &str) -> Result<Summary> {
    Summary::of(xs).map_err(|e| Error::metrics(format!("summarizing {what}"), e))
}

fn opt_summary(xs: Option<Vec<f64>>) -> Option<Summary> {
    xs.and_then(|v| Summary::of(&v).ok())
}

pub(super) fn mean(xs: &[f64]) -> f64 {
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
