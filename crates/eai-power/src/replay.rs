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
        for spec in &info.signals {
            if spec.update_period.is_some_and(|u| u.is_zero()) {
                return Err(Error::Config {
                    field: "replay trace update_period",
                    reason: format!(
                        "source `{}` declares a zero update period for its {} signal",
                        info.id,
                        spec.signal.as_str()
                    ),
                });
            }
        }
        let rejected: u64 =
            timeline.channels.iter().filter(|c| c.source == index).map(|c| c.rejected).sum();
        if rejected > 0 {
            // Implausible or out-of-order rows were dropped when the trace was loaded: say so
            // in every result that lists the source.
            info.meta.push(("rejected_at_load".into(), rejected.to_string()));
        }
        // The counter: update points from the reads, republished at the original period.
        let cspec = info.spec(Signal::EnergyCounter).cloned();
        let u = cspec.as_ref().and_then(|c| c.update_period);
        let params = CounterParams::new(u, cspec.as_ref().and_then(|c| c.wrap_at));
        let cp = counter_points(&counter, params, None);
        // A counter that reset or wrapped is replayed as recorded (held between reads), so the
        // live analysis sees the decrease, flags it and bridges it; a smooth reconstruction
        // would hide it (and, without a power stream, charge the whole post-reset value to
        // one read interval).
        let raw = !cp.resets.is_empty() || !cp.wraps.is_empty();
        let mut points = if raw { Vec::new() } else { cp.points };
        let mut republish =
            u.map(|u| (u.as_nanos() as f64, points.first().map_or(0.0, |p| p.0 as f64)));
        if let Some(u) = u
            && !raw
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
    /// [`Error::Config`] as well when the timeline has no source at all (an empty trace
    /// replays as an error, never as "no power sensor").
    pub fn all(timeline: &Timeline) -> Result<Vec<Self>> {
        if timeline.sources.is_empty() || timeline.channels.iter().all(|c| c.samples.is_empty()) {
            return Err(Error::Config {
                field: "replay trace",
                reason: "the trace holds no samples".into(),
            });
        }
        (0..timeline.sources.len()).map(|i| Self::new(timeline, i)).collect()
    }
}

impl PowerSource for ReplaySource {
    fn info(&self) -> SourceInfo {
        self.info.clone()
    }

    fn read(&self, signal: Signal) -> Result<Reading, SourceError> {
        let start = *self.start.get_or_init(Instant::now);
        let elapsed = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        // Past u64::MAX is past every sample.
        let Some(t) = self.offset_ns.checked_add(elapsed) else {
            return Err(SourceError::Exhausted);
        };
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
        // A counter replayed as recorded (it reset or wrapped): linear between two recorded
        // reads that do not decrease, so live reads see its rate; held across a decrease.
        let v = match (signal, s.get(i.wrapping_sub(1)), s.get(i)) {
            (Signal::EnergyCounter, Some(a), Some(b)) if b.value >= a.value && b.t_ns > a.t_ns => {
                a.value + (b.value - a.value) * (t - a.t_ns) as f64 / (b.t_ns - a.t_ns) as f64
            }
            _ => v,
        };
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
