//! Point estimates without intervals, by the same definitions as `eai_metrics::compare`: the
//! Table 2 row and the recommender candidate used when Fieller's interval is unbounded.

use eai_metrics::{Candidate, Estimate, Run};

use super::analyze::mean;
use crate::error::{Error, Result};

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
pub(super) fn point_row(
    strategy: &str,
    base: &[Run],
    cand: &[Run],
) -> Result<eai_metrics::Table2Row> {
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
pub(super) fn point_candidate(
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
