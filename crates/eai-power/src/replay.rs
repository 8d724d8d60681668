//! [`ReplaySource`]: plays a recorded trace back in real time, labelled
//! [`Provenance::Replayed`].

use std::sync::OnceLock;
use std::time::Instant;

use eai_core::{Joules, Watts};

use crate::error::{Error, Result};
use crate::source::{PowerSource, Provenance, Reading, Signal, SourceError, SourceInfo};
use crate::timeline::{Sample, Timeline};

/// Plays back one source of a [`Timeline`] (loaded from CSV or JSON): a read at time `t` after
/// the first read returns the last recorded sample at or before `t` (the recorded value, not
/// an interpolation). After the trace ends, reads return [`SourceError::Exhausted`].
#[derive(Debug)]
pub struct ReplaySource {
    info: SourceInfo,
    instant: Vec<Sample>,
    average: Vec<Sample>,
    counter: Vec<Sample>,
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
        // A replayed value is republished at the recording's cadence: at least that is its
        // update period (so a replayed counter's update points are placed correctly).
        for spec in &mut info.signals {
            let s = match spec.signal {
                Signal::InstantPower => &instant,
                Signal::AveragePower => &average,
                Signal::EnergyCounter => &counter,
            };
            if let Some(cadence) = median_spacing(s)
                && spec.update_period.is_none_or(|u| u < cadence)
            {
                spec.update_period = Some(cadence);
            }
        }
        Ok(Self { info, instant, average, counter, offset_ns, start: OnceLock::new() })
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
        let i = s.partition_point(|x| x.t_ns <= t);
        let v = if i == 0 { s[0].value } else { s[i - 1].value };
        Ok(match signal {
            Signal::EnergyCounter => Reading::Energy(Joules(v)),
            _ => Reading::Power(Watts(v)),
        })
    }
}

fn median_spacing(s: &[Sample]) -> Option<std::time::Duration> {
    let mut d: Vec<u64> = s.windows(2).map(|w| w[1].t_ns - w[0].t_ns).collect();
    if d.is_empty() {
        return None;
    }
    d.sort_unstable();
    Some(std::time::Duration::from_nanos(d[d.len() / 2]))
}
