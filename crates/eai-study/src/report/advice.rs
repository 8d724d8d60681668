//! The deployment advice from measured runs ([`advise`]): recommender candidates against the
//! baseline, then `eai_metrics::recommend`'s decision flow, or the same flow without its
//! hardware step when the hardware has no profile.

use eai_metrics::{Candidate, Constraints, Estimate, ProfileSet, Recommendation, Run, compare};

use super::Advice;
use super::point::point_candidate;
use crate::error::{Error, Result};
use crate::scheme::Scheme;

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
