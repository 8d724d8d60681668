//! The report as Markdown: [`StudyReport::markdown`] (a study folder's `report.md`), its
//! headline table ([`StudyReport::table`]) and the advice ([`Advice::to_markdown`]).

use std::fmt::Write as _;

use eai_metrics::{Estimate, Summary, summaries_to_markdown};

use super::{Advice, StudyReport, files};
use crate::scheme::Scheme;
use crate::study::{EnergyKind, StudyResults};

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
