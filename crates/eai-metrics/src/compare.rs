//! Comparisons against a baseline: energy reduction, accuracy loss, EOR and TWEOR improvement,
//! for single runs or groups of repeated runs (with intervals and a test of difference).

use std::collections::{BTreeMap, BTreeSet};

use eai_core::Joules;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, non_negative, positive};
use crate::quantity::{Percent, PercentagePoints};
use crate::run::{Config, Run};
use crate::stats::{Interval, Summary, WelchTest, ratio_of_means, welch};

/// Energy reduction of `candidate` against `baseline`: `100 · (E_b − E_c) / E_b` percent.
///
/// ```
/// use eai_core::Joules;
/// // The paper's DeepSeek-R1-Distill-Qwen-7B, FP32 → INT8: 39.65 Wh → 29.74 Wh.
/// let r = eai_metrics::energy_reduction(Joules::from_watt_hours(39.65), Joules::from_watt_hours(29.74))?;
/// assert!((r.0 - 24.99).abs() < 0.01);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Zero`] for a zero baseline; [`Error::Invalid`] for negative or non-finite energy.
pub fn energy_reduction(baseline: Joules, candidate: Joules) -> Result<Percent> {
    positive("baseline", "energy", baseline.0)?;
    non_negative("candidate", "energy", candidate.0)?;
    Ok(Percent(100.0 * (baseline.0 - candidate.0) / baseline.0))
}

/// Accuracy loss in percentage points: `100 · (s_b − s_c)` for scores given as fractions.
///
/// # Errors
/// [`Error::Invalid`] for a score outside `[0, 1]`.
pub fn accuracy_loss(baseline: f64, candidate: f64) -> Result<PercentagePoints> {
    for (who, s) in [("baseline", baseline), ("candidate", candidate)] {
        non_negative(who, "score", s)?;
        if s > 1.0 {
            return Err(Error::Invalid {
                run: who.into(),
                field: "score",
                value: s,
                reason: "scores are fractions in [0, 1]",
            });
        }
    }
    Ok(PercentagePoints(100.0 * (baseline - candidate)))
}

/// Relative improvement of a larger-is-better ratio metric (EOR, TWEOR): `100 · (m_c / m_b − 1)`.
///
/// Improvements compose multiplicatively: `(1 + i_ac) = (1 + i_ab)(1 + i_bc)`.
///
/// # Errors
/// [`Error::Zero`] for a zero baseline value; [`Error::Invalid`] for negative or non-finite values.
pub fn improvement(baseline: f64, candidate: f64) -> Result<Percent> {
    positive("baseline", "metric", baseline)?;
    non_negative("candidate", "metric", candidate)?;
    Ok(Percent(100.0 * (candidate / baseline - 1.0)))
}

/// The EOR improvement that an energy reduction and a **relative** accuracy retention imply:
/// `EOR_c / EOR_b = (s_c / s_b) / (E_c / E_b)`, so `100 · (retention / (1 − reduction/100) − 1)`.
///
/// `retention` is `s_c / s_b` (0.99 for a 1 % relative loss). Used to check published tables.
///
/// # Errors
/// [`Error::Invalid`] for a reduction of 100 % or more, or a retention outside `(0, ∞)`.
pub fn implied_eor_improvement(reduction: Percent, retention: f64) -> Result<Percent> {
    if !(reduction.0.is_finite() && reduction.0 < 100.0) {
        return Err(Error::Invalid {
            run: "implied EOR".into(),
            field: "energy_reduction",
            value: reduction.0,
            reason: "must be finite and below 100 %",
        });
    }
    positive("implied EOR", "retention", retention)?;
    Ok(Percent(100.0 * (retention / (1.0 - reduction.0 / 100.0) - 1.0)))
}

/// A point estimate with its confidence interval (when the runs allow one).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The point estimate.
    pub value: f64,
    /// Its interval; `None` with a single run per configuration.
    pub ci: Option<Interval>,
}

impl Estimate {
    /// A point value without interval.
    pub fn point(value: f64) -> Self {
        Self { value, ci: None }
    }
}

/// A candidate configuration compared with a baseline configuration over repeated runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Comparison {
    /// The baseline's labels.
    pub baseline: Config,
    /// The candidate's labels.
    pub candidate: Config,
    /// Runs of the baseline.
    pub n_baseline: usize,
    /// Runs of the candidate.
    pub n_candidate: usize,
    /// Mean energies (J) of baseline and candidate.
    pub energy: (Summary, Summary),
    /// Mean scores (fractions) of baseline and candidate.
    pub score: (Summary, Summary),
    /// Energy reduction in percent, `100 · (1 − Ē_c / Ē_b)`; interval by Fieller.
    pub energy_reduction: Estimate,
    /// Accuracy loss in percentage points, `100 · (s̄_b − s̄_c)`; interval by Welch.
    pub accuracy_loss: Estimate,
    /// EOR improvement in percent, `100 · (mean EOR_c / mean EOR_b − 1)` over per-run EORs;
    /// interval by Fieller.
    pub eor_improvement: Estimate,
    /// TWEOR improvement in percent (as EOR), when every run has a wall time.
    pub tweor_improvement: Option<Estimate>,
    /// Welch's test that the mean energies differ (`None` with fewer than 2 runs a side, or
    /// when both sides are constant).
    pub energy_test: Option<WelchTest>,
    /// Welch's test that the mean scores differ (same conditions).
    pub score_test: Option<WelchTest>,
}

/// Confidence level of every interval in a [`Comparison`].
pub const COMPARISON_LEVEL: f64 = 0.95;

fn check_group(runs: &[Run], role: &'static str) -> Result<(Config, BTreeSet<String>)> {
    let first = runs.first().ok_or(Error::TooFewValues { what: role, needed: 1, got: 0 })?;
    let tasks: BTreeSet<String> = first.scores().keys().cloned().collect();
    for r in runs {
        if r.config() != first.config() {
            return Err(Error::Incomparable {
                what: format!(
                    "{role} group mixes configurations `{}` and `{}`",
                    first.config(),
                    r.config()
                ),
            });
        }
        let t: BTreeSet<String> = r.scores().keys().cloned().collect();
        if t != tasks {
            return Err(Error::Incomparable {
                what: format!(
                    "{} scores tasks {:?}, but {} scores {:?}",
                    r.label(),
                    t,
                    first.label(),
                    tasks
                ),
            });
        }
    }
    Ok((first.config().clone(), tasks))
}

fn collect(runs: &[Run], f: impl Fn(&Run) -> Result<f64>) -> Result<Vec<f64>> {
    runs.iter().map(f).collect()
}

fn welch_opt(a: &[f64], b: &[f64]) -> Result<Option<WelchTest>> {
    if a.len() < 2 || b.len() < 2 {
        return Ok(None);
    }
    match welch(a, b, COMPARISON_LEVEL) {
        Ok(w) => Ok(Some(w)),
        Err(Error::NoVariance { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `100 · (ratio − 1)` with Fieller's interval of `mean(cand) / mean(base)`.
fn ratio_improvement(base: &[f64], cand: &[f64], what: &'static str) -> Result<Estimate> {
    let r = ratio_of_means(cand, base, COMPARISON_LEVEL, what)?;
    Ok(Estimate { value: 100.0 * (r.value - 1.0), ci: r.interval.map(|i| i.affine(100.0, -100.0)) })
}

/// Compares repeated runs of a candidate configuration with repeated runs of a baseline.
///
/// Each group must hold runs of one configuration that scored the same tasks. With one run per
/// side the estimates are points; with two or more a side they carry 95 % intervals:
/// energy reduction and EOR/TWEOR improvement by Fieller's ratio interval (asymmetric, exact for
/// normal data), accuracy loss by Welch's interval of a difference; and Welch tests say whether
/// energy and score differ at all.
///
/// ```
/// use eai_core::{Joules, Seconds};
/// use eai_metrics::{EnergyDomain, Run, compare};
///
/// let run = |scheme: &str, rep, wh: f64, acc: f64| {
///     Run::builder("DeepSeek-R1-Distill-Qwen-7B", scheme, "A100-PCIe-40GB")
///         .repetition(rep)
///         .score("mmlu", acc)
///         .energy(EnergyDomain::Gpu(0), Joules::from_watt_hours(wh))
///         .build()
/// };
/// let base = vec![run("fp32", 1, 39.5, 0.60)?, run("fp32", 2, 39.8, 0.61)?, run("fp32", 3, 39.65, 0.605)?];
/// let int8 = vec![run("int8", 1, 29.6, 0.60)?, run("int8", 2, 29.9, 0.60)?, run("int8", 3, 29.72, 0.598)?];
/// let c = compare(&base, &int8)?;
/// assert!((c.energy_reduction.value - 25.0).abs() < 0.1);
/// assert!(c.energy_reduction.ci.unwrap().contains(25.0));
/// assert!(c.energy_test.unwrap().differs_at(0.001));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// Empty or mixed groups, different task sets ([`Error::Incomparable`]); any run missing its
/// score or energy, or with zero energy; an unbounded ratio interval.
pub fn compare(baseline: &[Run], candidate: &[Run]) -> Result<Comparison> {
    let (bc, bt) = check_group(baseline, "baseline")?;
    let (cc, ct) = check_group(candidate, "candidate")?;
    if bt != ct {
        return Err(Error::Incomparable {
            what: format!("baseline `{bc}` scores tasks {bt:?}, candidate `{cc}` scores {ct:?}"),
        });
    }
    let be = collect(baseline, |r| Ok(r.energy()?.0))?;
    let ce = collect(candidate, |r| Ok(r.energy()?.0))?;
    let bs = collect(baseline, Run::score)?;
    let cs = collect(candidate, Run::score)?;
    let beor = collect(baseline, |r| Ok(r.eor()?.0))?;
    let ceor = collect(candidate, |r| Ok(r.eor()?.0))?;

    let er = ratio_of_means(&ce, &be, COMPARISON_LEVEL, "energy ratio")?;
    let energy_reduction = Estimate {
        value: 100.0 * (1.0 - er.value),
        ci: er.interval.map(|i| i.affine(-100.0, 100.0)),
    };

    let (sb, sc) = (Summary::of(&bs)?, Summary::of(&cs)?);
    let loss = 100.0 * (sb.mean - sc.mean);
    let accuracy_loss = if bs.len() >= 2 && cs.len() >= 2 {
        match welch(&bs, &cs, COMPARISON_LEVEL) {
            Ok(w) => Estimate { value: loss, ci: Some(w.interval.affine(100.0, 0.0)) },
            // Identical scores in every run (deterministic evaluation): no run-to-run spread.
            Err(Error::NoVariance { .. }) => Estimate {
                value: loss,
                ci: Some(Interval { lo: loss, hi: loss, level: COMPARISON_LEVEL }),
            },
            Err(e) => return Err(e),
        }
    } else {
        Estimate::point(loss)
    };

    let eor_improvement = ratio_improvement(&beor, &ceor, "EOR ratio")?;
    let has_wall = baseline.iter().chain(candidate).all(|r| r.wall().is_ok());
    let tweor_improvement = if has_wall {
        let bt = collect(baseline, |r| Ok(r.tweor()?.0))?;
        let ct = collect(candidate, |r| Ok(r.tweor()?.0))?;
        Some(ratio_improvement(&bt, &ct, "TWEOR ratio")?)
    } else {
        None
    };

    Ok(Comparison {
        baseline: bc,
        candidate: cc,
        n_baseline: baseline.len(),
        n_candidate: candidate.len(),
        energy: (Summary::of(&be)?, Summary::of(&ce)?),
        score: (sb, sc),
        energy_reduction,
        accuracy_loss,
        eor_improvement,
        tweor_improvement,
        energy_test: welch_opt(&be, &ce)?,
        score_test: welch_opt(&bs, &cs)?,
    })
}

/// Groups runs by configuration (model, scheme, hardware), keeping their order within a group.
pub fn group_by_config(runs: &[Run]) -> BTreeMap<Config, Vec<Run>> {
    let mut m: BTreeMap<Config, Vec<Run>> = BTreeMap::new();
    for r in runs {
        m.entry(r.config().clone()).or_default().push(r.clone());
    }
    m
}

#[cfg(test)]
mod tests {
    use eai_core::Seconds;

    use super::*;
    use crate::run::EnergyDomain;

    fn run(scheme: &str, rep: u32, wh: f64, acc: f64, secs: f64) -> Run {
        Run::builder("DeepSeek-R1-Distill-Qwen-7B", scheme, "A100-PCIe-40GB")
            .repetition(rep)
            .score("mmlu", acc)
            .energy(EnergyDomain::Gpu(0), Joules::from_watt_hours(wh))
            .wall(Seconds(secs))
            .build()
            .unwrap()
    }

    #[test]
    fn single_runs_give_points_matching_the_scalar_functions() {
        let b = [run("fp32", 1, 39.65, 0.60, 100.0)];
        let c = [run("int8", 1, 29.74, 0.594, 80.0)];
        let cmp = compare(&b, &c).unwrap();
        let er = energy_reduction(Joules::from_watt_hours(39.65), Joules::from_watt_hours(29.74))
            .unwrap();
        assert!((cmp.energy_reduction.value - er.0).abs() < 1e-9);
        assert!((cmp.accuracy_loss.value - 0.6).abs() < 1e-9);
        // EOR ratio = (0.594/29.74) / (0.60/39.65) = 0.99 · 1.33322 = 1.31989.
        let want = 100.0 * (0.99 * 39.65 / 29.74 - 1.0);
        assert!((cmp.eor_improvement.value - want).abs() < 1e-9);
        assert!((implied_eor_improvement(er, 0.99).unwrap().0 - want).abs() < 1e-9);
        // TWEOR also divides by time: × 100/80.
        let tw = 100.0 * ((1.0 + want / 100.0) * 100.0 / 80.0 - 1.0);
        assert!((cmp.tweor_improvement.unwrap().value - tw).abs() < 1e-9);
        assert!(cmp.energy_reduction.ci.is_none() && cmp.energy_test.is_none());
    }

    #[test]
    fn repeated_runs_give_intervals_and_tests() {
        let b: Vec<_> = [39.5, 39.8, 39.65]
            .iter()
            .zip(1..)
            .map(|(&e, i)| run("fp32", i, e, 0.60, 100.0))
            .collect();
        let c: Vec<_> = [29.6, 29.9, 29.72]
            .iter()
            .zip(1..)
            .map(|(&e, i)| run("int8", i, e, 0.60, 80.0))
            .collect();
        let cmp = compare(&b, &c).unwrap();
        let ci = cmp.energy_reduction.ci.unwrap();
        assert!(ci.contains(cmp.energy_reduction.value) && ci.hi - ci.lo < 2.0, "{ci:?}");
        // Identical scores: zero-width accuracy interval, no score test.
        assert_eq!(cmp.accuracy_loss.ci.unwrap().lo, 0.0);
        assert!(cmp.score_test.is_none());
        assert!(cmp.energy_test.unwrap().p_value < 1e-4);
        assert!(cmp.eor_improvement.ci.unwrap().contains(cmp.eor_improvement.value));
    }

    #[test]
    fn incomparable_groups_are_rejected() {
        let b = [run("fp32", 1, 39.65, 0.60, 1.0), run("fp16", 1, 39.65, 0.60, 1.0)];
        let c = [run("int8", 1, 29.74, 0.594, 1.0)];
        assert!(matches!(compare(&b, &c), Err(Error::Incomparable { .. })));
        let other_task = Run::builder("DeepSeek-R1-Distill-Qwen-7B", "int8", "A100-PCIe-40GB")
            .score("gsm8k", 0.5)
            .energy(EnergyDomain::Gpu(0), Joules(1.0))
            .build()
            .unwrap();
        assert!(matches!(compare(&b[..1], &[other_task]), Err(Error::Incomparable { .. })));
        assert!(matches!(compare(&[], &c), Err(Error::TooFewValues { .. })));
        assert!(matches!(energy_reduction(Joules(0.0), Joules(1.0)), Err(Error::Zero { .. })));
        assert!(accuracy_loss(0.5, 1.5).is_err());
        assert!(improvement(0.0, 1.0).is_err());
    }
}
