//! Calibration observers: watch activation batches, report the range to quantize to.
//!
//! Observers are per tensor. Feed each batch to [`Observer::observe`], then hand
//! [`Observer::range`] to [`CpuQuantizer::quantize_calibrated`](crate::CpuQuantizer::quantize_calibrated)
//! (values beyond the observed range saturate).

use crate::error::{QuantError, Result};
use crate::kernel::RangeStats;

/// Watches batches of values and summarises their range. Object safe.
pub trait Observer {
    /// Record one batch. `name` identifies the tensor in errors.
    ///
    /// # Errors
    /// [`QuantError::NonFinite`] for NaN/inf in the batch; [`QuantError::Empty`] for an empty one.
    fn observe(&mut self, name: &str, batch: &[f32]) -> Result<()>;

    /// The range to quantize to, or `None` before the first batch.
    fn range(&self) -> Option<RangeStats>;
}

fn check(name: &str, batch: &[f32]) -> Result<()> {
    if batch.is_empty() {
        return Err(QuantError::Empty { tensor: name.into(), shape: vec![0] });
    }
    if let Some(i) = batch.iter().position(|x| !x.is_finite()) {
        return Err(QuantError::NonFinite {
            tensor: name.into(),
            index: vec![i],
            flat: i,
            value: batch[i],
        });
    }
    Ok(())
}

/// Running minimum and maximum over every batch (PyTorch `MinMaxObserver`).
#[derive(Debug, Clone, Default)]
pub struct MinMaxObserver {
    range: Option<RangeStats>,
}

impl MinMaxObserver {
    /// A fresh observer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Observer for MinMaxObserver {
    fn observe(&mut self, name: &str, batch: &[f32]) -> Result<()> {
        check(name, batch)?;
        let b = RangeStats::of(batch);
        self.range = Some(match self.range {
            None => b,
            Some(r) => RangeStats { min: r.min.min(b.min), max: r.max.max(b.max) },
        });
        Ok(())
    }

    fn range(&self) -> Option<RangeStats> {
        self.range
    }
}

/// Exponential moving average of each batch's min and max (PyTorch
/// `MovingAverageMinMaxObserver`): the first batch sets the range, later ones move it by
/// `min += c · (batch_min − min)` (same for max), in f32.
#[derive(Debug, Clone)]
pub struct MovingAverageObserver {
    c: f32,
    range: Option<RangeStats>,
}

impl MovingAverageObserver {
    /// An observer with averaging constant `c` in `(0, 1]` (PyTorch's default is 0.01).
    ///
    /// # Errors
    /// [`QuantError::InvalidSpec`] when `c` is outside `(0, 1]`.
    pub fn new(c: f32) -> Result<Self> {
        if !(c > 0.0 && c <= 1.0) {
            return Err(QuantError::spec(format!("averaging constant {c} is not in (0, 1]")));
        }
        Ok(MovingAverageObserver { c, range: None })
    }
}

impl Observer for MovingAverageObserver {
    fn observe(&mut self, name: &str, batch: &[f32]) -> Result<()> {
        check(name, batch)?;
        let b = RangeStats::of(batch);
        self.range = Some(match self.range {
            None => b,
            Some(r) => RangeStats {
                min: r.min + self.c * (b.min - r.min),
                max: r.max + self.c * (b.max - r.max),
            },
        });
        Ok(())
    }

    fn range(&self) -> Option<RangeStats> {
        self.range
    }
}

/// Percentile clipping: each batch contributes its `(100 − p)`-th and `p`-th percentiles
/// (nearest rank on the sorted batch); the range is their mean over batches. Outliers beyond the
/// percentiles saturate when quantizing, trading clipping error for a finer step.
#[derive(Debug, Clone)]
pub struct PercentileObserver {
    p: f64,
    sum_lo: f64,
    sum_hi: f64,
    batches: usize,
    scratch: Vec<f32>,
}

impl PercentileObserver {
    /// Clip at the `p`-th percentile, `50 < p ≤ 100` (e.g. 99.99).
    ///
    /// # Errors
    /// [`QuantError::InvalidSpec`] when `p` is outside `(50, 100]`.
    pub fn new(p: f64) -> Result<Self> {
        if !(p > 50.0 && p <= 100.0) {
            return Err(QuantError::spec(format!("percentile {p} is not in (50, 100]")));
        }
        Ok(PercentileObserver { p, sum_lo: 0.0, sum_hi: 0.0, batches: 0, scratch: Vec::new() })
    }

    fn rank(&self, n: usize, q: f64) -> usize {
        // nearest rank: ceil(q/100 · n) − 1, within 0..n
        (((q / 100.0) * n as f64).ceil() as usize).clamp(1, n) - 1
    }
}

impl Observer for PercentileObserver {
    fn observe(&mut self, name: &str, batch: &[f32]) -> Result<()> {
        check(name, batch)?;
        let n = batch.len();
        self.scratch.clear();
        self.scratch.extend_from_slice(batch);
        let hi_rank = self.rank(n, self.p);
        let lo_rank = self.rank(n, 100.0 - self.p).min(hi_rank);
        let (_, hi, _) = self.scratch.select_nth_unstable_by(hi_rank, f32::total_cmp);
        let hi = *hi;
        let (_, lo, _) = self.scratch.select_nth_unstable_by(lo_rank, f32::total_cmp);
        let lo = *lo;
        self.sum_lo += f64::from(lo);
        self.sum_hi += f64::from(hi);
        self.batches += 1;
        Ok(())
    }

    fn range(&self) -> Option<RangeStats> {
        (self.batches > 0).then(|| RangeStats {
            min: (self.sum_lo / self.batches as f64) as f32,
            max: (self.sum_hi / self.batches as f64) as f32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_max_and_moving_average() {
        let mut m = MinMaxObserver::new();
        let mut a = MovingAverageObserver::new(0.5).unwrap();
        assert!(m.range().is_none());
        for (o, _) in [(&mut m as &mut dyn Observer, 0), (&mut a as &mut dyn Observer, 1)] {
            o.observe("x", &[-1.0, 2.0]).unwrap();
            o.observe("x", &[-3.0, 1.0]).unwrap();
        }
        assert_eq!(m.range(), Some(RangeStats { min: -3.0, max: 2.0 }));
        assert_eq!(a.range(), Some(RangeStats { min: -2.0, max: 1.5 }));
        assert!(m.observe("x", &[f32::NAN]).is_err());
        assert!(m.observe("x", &[]).is_err());
        assert!(MovingAverageObserver::new(0.0).is_err());
    }

    #[test]
    fn percentile_clips_outliers() {
        let mut batch: Vec<f32> = (0..1000).map(|i| (i as f32 / 999.0) * 2.0 - 1.0).collect();
        batch[10] = 100.0;
        batch[20] = -50.0;
        let mut p = PercentileObserver::new(99.0).unwrap();
        p.observe("x", &batch).unwrap();
        let r = p.range().unwrap();
        assert!(r.max < 1.0 && r.max > 0.9, "{r:?}");
        assert!(r.min > -1.0 && r.min < -0.9, "{r:?}");
        let mut full = PercentileObserver::new(100.0).unwrap();
        full.observe("x", &batch).unwrap();
        assert_eq!(full.range(), Some(RangeStats { min: -50.0, max: 100.0 }));
        assert!(PercentileObserver::new(40.0).is_err());
    }
}
