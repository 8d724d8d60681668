//! Pareto fronts of configurations on (score, energy) and (score, energy, latency).

use eai_core::{Joules, Seconds};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::run::{Config, Run};

/// Whether an objective is to be maximized or minimized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sense {
    /// Larger is better (score).
    Maximize,
    /// Smaller is better (energy, latency).
    Minimize,
}

/// One configuration's position: mean score, mean energy, mean wall time over its runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParetoPoint {
    /// The configuration.
    pub config: Config,
    /// Mean aggregate score (fraction).
    pub score: f64,
    /// Mean energy.
    pub energy: Joules,
    /// Mean wall time (the paper's "inference time"), when every run recorded one.
    pub latency: Option<Seconds>,
}

impl ParetoPoint {
    /// The mean position of a group of runs of one configuration.
    ///
    /// # Errors
    /// An empty group; runs of different configurations; a run missing score or energy.
    pub fn from_runs(runs: &[Run]) -> Result<Self> {
        let first =
            runs.first().ok_or(Error::TooFewValues { what: "Pareto point", needed: 1, got: 0 })?;
        let n = runs.len() as f64;
        let (mut s, mut e, mut t) = (0.0, 0.0, Some(0.0));
        for r in runs {
            if r.config() != first.config() {
                return Err(Error::Incomparable {
                    what: format!("Pareto point mixes `{}` and `{}`", first.config(), r.config()),
                });
            }
            s += r.score()?;
            e += r.energy()?.0;
            t = match (t, r.wall()) {
                (Some(acc), Ok(w)) => Some(acc + w.0),
                _ => None,
            };
        }
        Ok(Self {
            config: first.config().clone(),
            score: s / n,
            energy: Joules(e / n),
            latency: t.map(|x| Seconds(x / n)),
        })
    }
}

/// Which objectives a front is taken over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Objectives {
    /// Maximize score, minimize energy.
    ScoreEnergy,
    /// Maximize score, minimize energy, minimize latency.
    ScoreEnergyLatency,
}

/// Indices of the non-dominated rows of `points` (each row one value per objective).
///
/// A row dominates another when it is at least as good in every objective and strictly better
/// in one; equal rows do not dominate each other, so duplicates on the front are all kept.
/// Two objectives use an `O(n log n)` sweep, more use the `O(n² d)` pairwise check. Indices
/// are returned in increasing order.
///
/// ```
/// use eai_metrics::{Sense, pareto_indices};
/// // (score, energy): the third point is worse than the first in both.
/// let pts = [vec![0.60, 30.0], vec![0.62, 40.0], vec![0.58, 35.0]];
/// let front = pareto_indices(&pts, &[Sense::Maximize, Sense::Minimize])?;
/// assert_eq!(front, vec![0, 1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Invalid`] for a NaN/infinite value or a row of the wrong length.
pub fn pareto_indices(points: &[Vec<f64>], senses: &[Sense]) -> Result<Vec<usize>> {
    // Normalize to "minimize everything".
    let mut rows: Vec<Vec<f64>> = Vec::with_capacity(points.len());
    for p in points {
        if p.len() != senses.len() {
            return Err(Error::Invalid {
                run: "Pareto front".into(),
                field: "objectives",
                value: p.len() as f64,
                reason: "every point needs one value per objective",
            });
        }
        let mut row = Vec::with_capacity(p.len());
        for (&v, s) in p.iter().zip(senses) {
            if !v.is_finite() {
                return Err(Error::Invalid {
                    run: "Pareto front".into(),
                    field: "value",
                    value: v,
                    reason: "must be finite",
                });
            }
            row.push(if *s == Sense::Maximize { -v } else { v });
        }
        rows.push(row);
    }
    if senses.len() == 2 {
        return Ok(front_2d(&rows));
    }
    let mut out = Vec::new();
    for (i, a) in rows.iter().enumerate() {
        if !rows.iter().any(|b| dominates(b, a)) {
            out.push(i);
        }
    }
    Ok(out)
}

pub(crate) fn dominates(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(x, y)| x <= y) && a.iter().zip(b).any(|(x, y)| x < y)
}

/// Sweep in increasing first objective (ties: increasing second); a point is on the front when
/// its second objective beats every earlier point's, or equals the best of an identical row.
fn front_2d(rows: &[Vec<f64>]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..rows.len()).collect();
    idx.sort_by(|&i, &j| rows[i][0].total_cmp(&rows[j][0]).then(rows[i][1].total_cmp(&rows[j][1])));
    let mut out = Vec::new();
    let mut best: Option<(f64, f64)> = None; // (first, second) of the point holding the best second
    for i in idx {
        let (x, y) = (rows[i][0], rows[i][1]);
        let keep = match best {
            None => true,
            Some((bx, by)) => y < by || (y == by && x == bx),
        };
        if keep {
            out.push(i);
            if best.is_none_or(|(_, by)| y < by) {
                best = Some((x, y));
            }
        }
    }
    out.sort_unstable();
    out
}

/// The non-dominated configurations among `points`, in input order.
///
/// # Errors
/// [`Error::Missing`] when latency is an objective and a point has none; invalid values.
pub fn pareto_front(points: &[ParetoPoint], objectives: Objectives) -> Result<Vec<ParetoPoint>> {
    let (rows, senses): (Vec<Vec<f64>>, Vec<Sense>) = match objectives {
        Objectives::ScoreEnergy => (
            points.iter().map(|p| vec![p.score, p.energy.0]).collect(),
            vec![Sense::Maximize, Sense::Minimize],
        ),
        Objectives::ScoreEnergyLatency => {
            let mut rows = Vec::with_capacity(points.len());
            for p in points {
                let l = p
                    .latency
                    .ok_or_else(|| Error::Missing { run: p.config.to_string(), field: "wall" })?;
                rows.push(vec![p.score, p.energy.0, l.0]);
            }
            (rows, vec![Sense::Maximize, Sense::Minimize, Sense::Minimize])
        }
    };
    Ok(pareto_indices(&rows, &senses)?.into_iter().map(|i| points[i].clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_objectives_keep_the_fast_one() {
        // (score, energy, latency): c is dominated on (score, energy) but is the fastest.
        let pts = [
            vec![0.6, 30.0, 10.0],
            vec![0.62, 40.0, 12.0],
            vec![0.58, 35.0, 5.0],
            vec![0.57, 36.0, 6.0],
        ];
        let s3 = [Sense::Maximize, Sense::Minimize, Sense::Minimize];
        assert_eq!(pareto_indices(&pts, &s3).unwrap(), vec![0, 1, 2]);
        let two: Vec<Vec<f64>> = pts.iter().map(|p| p[..2].to_vec()).collect();
        assert_eq!(pareto_indices(&two, &s3[..2]).unwrap(), vec![0, 1]);
    }

    #[test]
    fn duplicates_and_ties() {
        let pts = [vec![1.0, 1.0], vec![1.0, 1.0], vec![1.0, 2.0], vec![0.5, 1.0]];
        let s = [Sense::Minimize, Sense::Minimize];
        assert_eq!(pareto_indices(&pts, &s).unwrap(), vec![3]);
        let pts = [vec![1.0, 1.0], vec![1.0, 1.0], vec![1.0, 2.0]];
        assert_eq!(pareto_indices(&pts, &s).unwrap(), vec![0, 1]);
        assert!(pareto_indices(&[vec![f64::NAN, 1.0]], &s).is_err());
        assert!(pareto_indices(&[vec![1.0]], &s).is_err());
        assert!(pareto_indices(&[], &s).unwrap().is_empty());
    }
}
