//! [`ReplaySource`]: plays a recorded trace back in real time, labelled
//! [`Provenance::Replayed`].

use std::sync::OnceLock;
use std::time::Instant;

use eai_core::{Joules, Watts};

use crate::error::{Error, Result};
use crate::integrate::{CounterParams, counter_points, fit_grid, snapped_points};
use crate::source::{PowerSource, Provenance, Reading, Signal, SourceError, SourceInfo};
use crate::timeline::{Sample, Timeline};

/// Plays back one source of a [`Timeline`] (loaded from CSV or JSON): a power read at time `t`
/// after the first read returns the last recorded sample at or before `t` (the recorded value,
/// not an interpolation). The energy counter is replayed as a counter: its update points are
/// reconstructed from the recorded reads (snapped to the fitted update grid where there is
/// one, unwrapped, resets bridged), interpolated linearly between them and republished at the
/// original update period, so a trace recorded with sparse counter reads still replays as a
/// counter of the original cadence. After the trace ends, reads return
/// [`SourceError::Exhausted`].
#[derive(Debug)]
pub struct ReplaySource {
    info: SourceInfo,
    instant: Vec<Sample>,
    average: Vec<Sample>,
    counter: Vec<Sample>,
    /// Reconstructed counter update points `(t, J)`, plus the first raw value.
    points: Vec<(u64, f64)>,
    base: f64,
    /// Republication grid of the replayed counter: (period ns, phase ns).
    republish: Option<(f64, f64)>,
    offset_ns: u64,
    start: OnceLock<Instant>,
}

impl ReplaySource {
    /// Replays source `index` of `timeline`, starting at the timeline's first sample.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `index` is out of range or the source has no samples.
    pub fn new(timeline: &Timeline, index: usize) -> Result<Self> {
        let mut info = timeline.sources.get(index).cloned().ok_or_else(|| Error::Config {
            field: "replay source index",
            reason: format!("{index} out of {} sources", timeline.sources.len()),
        })?;
        info.provenance = Provenance::Replayed;
        let get = |sig| timeline.channel(index, sig).map(|c| c.samples.clone()).unwrap_or_default();
        let (instant, average, counter) =
            (get(Signal::InstantPower), get(Signal::AveragePower), get(Signal::EnergyCounter));
        let offset_ns = [&instant, &average, &counter]
            .iter()
            .filter_map(|s| s.first())
            .map(|s| s.t_ns)
            .min()
            .ok_or_else(|| Error::Config {
                field: "replay source",
                reason: format!("source `{}` has no samples", info.id),
            })?;
        info.signals.retain(|s| match s.signal {
            Signal::InstantPower => !instant.is_empty(),
            Signal::AveragePower => !average.is_empty(),
            Signal::EnergyCounter => !counter.is_empty(),
        });
        // The counter: update points from the reads, republished at the original period.
        let cspec = info.spec(Signal::EnergyCounter).cloned();
        let u = cspec.as_ref().and_then(|c| c.update_period);
        let params = CounterParams::new(u, cspec.as_ref().and_then(|c| c.wrap_at));
        let cp = counter_points(&counter, params, None);
        let mut points = cp.points;
        let mut republish =
            u.map(|u| (u.as_nanos() as f64, points.first().map_or(0.0, |p| p.0 as f64)));
        if let Some(u) = u
            && cp.resets.is_empty()
            && cp.wraps.is_empty()
            && let Some(g) = fit_grid(&counter, u)
        {
            if let Some(p) = snapped_points(&counter, &g).filter(|p| p.len() >= 2) {
                points = p;
            }
            republish = Some((g.period_ns, g.phase_ns));
        }
        let base = counter.first().map_or(0.0, |s| s.value);
        // A replayed power value is republished at the recording's cadence: at least that is
        // its update period.
        for spec in &mut info.signals {
            let s = match spec.signal {
                Signal::InstantPower => &instant,
                Signal::AveragePower => &average,
                Signal::EnergyCounter => continue,
            };
            if let Some(cadence) = median_spacing(s)
                && spec.update_period.is_none_or(|u| u < cadence)
            {
                spec.update_period = Some(cadence);
            }
        }
        Ok(Self {
            info,
            instant,
            average,
            counter,
            points,
            base,
            republish,
            offset_ns,
            start: OnceLock::new(),
        })
    }

    /// Every source of a timeline, as replay sources.
    ///
    /// # Errors
    ///
    /// As [`ReplaySource::new`].
    pub fn all(timeline: &Timeline) -> Result<Vec<Self>> {
        (0..timeline.sources.len()).map(|i| Self::new(timeline, i)).collect()
    }
}

impl PowerSource for ReplaySource {
    fn info(&self) -> SourceInfo {
        self.info.clone()
    }

    fn read(&self, signal: Signal) -> Result<Reading, SourceError> {
        let start = *self.start.get_or_init(Instant::now);
        let t = self.offset_ns + start.elapsed().as_nanos() as u64;
        let s = match signal {
            Signal::InstantPower => &self.instant,
            Signal::AveragePower => &self.average,
            Signal::EnergyCounter => &self.counter,
        };
        let Some(last) = s.last() else {
            return Err(SourceError::NotSupported(format!(
                "trace has no {} samples",
                signal.as_str()
            )));
        };
        if t > last.t_ns {
            return Err(SourceError::Exhausted);
        }
        if signal == Signal::EnergyCounter && !self.points.is_empty() {
            let tq = match self.republish {
                Some((period, phase)) => {
                    (phase + ((t as f64 - phase) / period).floor() * period).max(0.0) as u64
                }
                None => t,
            };
            let v = interpolate_points(&self.points, tq);
            return Ok(Reading::Energy(Joules(self.base + v)));
        }
        let i = s.partition_point(|x| x.t_ns <= t);
        let v = if i == 0 { s[0].value } else { s[i - 1].value };
        Ok(match signal {
            Signal::EnergyCounter => Reading::Energy(Joules(v)),
            _ => Reading::Power(Watts(v)),
        })
    }
}

/// Linear interpolation between `(t, value)` points, held beyond the ends.
fn interpolate_points(p: &[(u64, f64)], t: u64) -> f64 {
    let i = p.partition_point(|x| x.0 <= t);
    if i == 0 {
        return p.first().map_or(0.0, |x| x.1);
    }
    if i == p.len() {
        return p[i - 1].1;
    }
    let (a, b) = (p[i - 1], p[i]);
    a.1 + (b.1 - a.1) * (t - a.0) as f64 / (b.0 - a.0) as f64
}

fn median_spacing(s: &[Sample]) -> Option<std::time::Duration> {
    let mut d: Vec<u64> = s.windows(2).map(|w| w[1].t_ns - w[0].t_ns).collect();
    if d.is_empty() {
        return None;
    }
    d.sort_unstable();
    Some(std::time::Duration::from_nanos(d[d.len() / 2]))
}
