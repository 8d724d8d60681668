//! Window results: [`Measurement`] per window, [`DeviceEnergy`] per source, computed from a
//! [`Timeline`] by every method at once.

use std::fmt;
use std::time::Duration;

use eai_core::{Joules, Seconds, Watts};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::integrate::{self, CounterParams};
use crate::source::{Domain, Provenance, Signal};
use crate::timeline::{EventKind, Sample, Timeline};

/// Which estimate a device's primary `energy` comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Method {
    /// Energy counter, edges interpolated in proportion to the instant-power stream.
    CounterShaped,
    /// Energy counter, edges interpolated linearly in time (no power stream).
    CounterLinear,
    /// Trapezoidal integral of instant power (no usable counter).
    InstantTrapezoid,
    /// 1-s averaged power shifted by its group delay (no counter, no instant power).
    AverageShifted,
}

/// A quality flag on a window. Nothing degraded is ever silent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "flag")]
#[non_exhaustive]
pub enum Flag {
    /// Shorter than 0.5 s: below what the sensors resolve reliably; repeat the work instead.
    TooShort,
    /// Samples missing inside the window (sampler stalled, NVML hang, suspend).
    Gap,
    /// The counter decreased (driver reload, GPU reset): integrated in segments.
    CounterReset,
    /// A RAPL counter wrapped and was unwrapped.
    CounterWrapped,
    /// The device was lost during the window: energy is partial, up to the loss.
    DeviceLost,
    /// Other processes used the GPU during the window: its energy is not all yours.
    Shared,
    /// The GPU was power- or thermally-throttled during the window.
    Throttled,
    /// A window edge lay outside the recorded samples and was extrapolated.
    Extrapolated,
    /// The counter was not read around an edge (a window defined after the fact, between the
    /// sparse background reads, or the edge-read budget was spent): the edge is not between
    /// two consecutive update points and lies more than a fifth of an update period from the
    /// nearer one (RAPL: more than [`AnalysisConfig::coarse_edge`] from a read), so the energy
    /// near it is interpolated over a long stretch (shaped by instant power where that stream
    /// tracks the counter). Accurate on steady loads; on loads faster than the sensor expect
    /// several % on 0.5–1 s windows and up to ~1 % on 5 s windows.
    CoarseEdge {
        /// The distance to the nearer update point, ms.
        ms: u32,
    },
    /// Counter and instant-power integral disagree by more than the threshold.
    Discrepancy,
    /// Readings were rejected as absurd inside the window.
    RejectedSamples {
        /// How many (of those logged).
        count: u64,
    },
    /// The bounded buffer dropped samples this window needed.
    Overflow,
    /// No data at all for this device: energy is `None`, never 0.
    NoData,
    /// A sampler thread panicked; the panic was caught and the source's data ends there.
    SamplerFailed,
    /// The measured work was interrupted by a signal (`eai measure` forwarded it to the
    /// command): the window ends when the work stopped, not when it would have finished.
    Interrupted {
        /// The signal number (2 SIGINT, 15 SIGTERM, 1 SIGHUP).
        signal: i32,
    },
    /// The source's values come from a periodic scrape (a Prometheus endpoint, e.g. NVIDIA's
    /// DCGM exporter): nothing finer than `interval_ms` is resolved, and each value may be up to
    /// that old when read. `bound_j` is a hard bound on the window energy's error from scrape
    /// timing (from the monotone counter reads that bracket each edge; see
    /// [`crate::SCRAPE_INTERVAL_META`]); `None` when no such reads bracket both edges (power
    /// only, a reset, or the window ends too recently).
    Scraped {
        /// The stated resolution: the larger of the scrape interval and the observed interval
        /// between value changes, ms.
        interval_ms: u32,
        /// Hard bound on the energy error from scrape timing, J.
        bound_j: Option<f64>,
    },
    /// A signal was unsupported and the next one in the fallback order was used.
    Fallback {
        /// The signal missing.
        signal: Signal,
        /// Why.
        reason: String,
    },
}

/// Energy of one source over one window, by every available method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceEnergy {
    /// Source id.
    pub source: String,
    /// Source name.
    pub name: String,
    /// What it measures.
    pub domain: Domain,
    /// Where the numbers come from (replayed and constant sources are labelled).
    pub provenance: Provenance,
    /// The primary estimate (`None` when there is no data: never a silent 0).
    pub energy: Option<Joules>,
    /// Which method the primary estimate used.
    pub method: Option<Method>,
    /// Counter delta, edges interpolated linearly in time between update points.
    pub counter_linear: Option<Joules>,
    /// Counter delta, edges interpolated in proportion to instant power (the hybrid).
    pub counter_shaped: Option<Joules>,
    /// Trapezoidal integral of instant power with exact edge values.
    pub instant_integral: Option<Joules>,
    /// Averaged power shifted by half its window, integrated.
    pub average_shifted: Option<Joules>,
    /// Zeus-style two-read counter delta (first read at/after begin and end).
    pub two_read: Option<Joules>,
    /// The paper's method: 1 Hz samples of averaged power, `Σ P·Δt`.
    pub paper_1hz: Option<Joules>,
    /// Relative difference of the instant integral to the counter, `(instant - counter) /
    /// counter`.
    pub disagreement: Option<f64>,
    /// One-sigma statistical uncertainty of the primary estimate (edge timing). The board
    /// sensor's ±5 % absolute tolerance comes on top.
    pub uncertainty: Option<Joules>,
    /// Mean power (primary energy / duration).
    pub mean_power: Option<Watts>,
    /// Peak power seen (instant stream, or counter-derived over >= 100 ms).
    pub peak_power: Option<Watts>,
    /// Power samples inside the window.
    pub samples: usize,
    /// Counter reads inside the window.
    pub counter_reads: usize,
    /// Energy minus the idle baseline, only when a baseline was subtracted on request.
    pub dynamic_energy: Option<Joules>,
    /// The baseline power subtracted, when one was.
    pub baseline_power: Option<Watts>,
    /// Spread (one sigma) of the subtracted baseline energy.
    pub baseline_sigma: Option<Joules>,
    /// Quality flags.
    pub flags: Vec<Flag>,
}

impl DeviceEnergy {
    /// Whether a flag of this kind is set (compares the variant only).
    pub fn has(&self, flag: &Flag) -> bool {
        self.flags.iter().any(|f| std::mem::discriminant(f) == std::mem::discriminant(flag))
    }

    /// The primary energy in watt-hours.
    pub fn watt_hours(&self) -> Option<f64> {
        self.energy.map(Joules::to_watt_hours)
    }
}

/// The result of one window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Measurement {
    /// Window id (unique within its meter).
    pub id: u64,
    /// Window name.
    pub name: String,
    /// Start, seconds since the meter's anchor (monotonic clock).
    pub start: Seconds,
    /// Duration.
    pub duration: Seconds,
    /// One entry per source.
    pub devices: Vec<DeviceEnergy>,
}

impl Measurement {
    /// Sum of the primary energies of the devices with data; `None` when none has data.
    pub fn energy(&self) -> Option<Joules> {
        let mut any = false;
        let mut e = Joules::ZERO;
        for d in &self.devices {
            if let Some(x) = d.energy {
                any = true;
                e += x;
            }
        }
        any.then_some(e)
    }

    /// Whether any device has a flag of this kind.
    pub fn has(&self, flag: &Flag) -> bool {
        self.devices.iter().any(|d| d.has(flag))
    }

    /// The device entry of a source id.
    pub fn device(&self, source: &str) -> Option<&DeviceEnergy> {
        self.devices.iter().find(|d| d.source == source)
    }

    /// Subtracts an idle baseline on request: sets `dynamic_energy = energy − P_idle·T` on each
    /// device the baseline covers, recording the baseline power and spread. `energy` itself is
    /// unchanged.
    pub fn subtract_baseline(&mut self, baseline: &Baseline) {
        for d in &mut self.devices {
            if let (Some(e), Some(b)) =
                (d.energy, baseline.devices.iter().find(|b| b.source == d.source))
            {
                d.dynamic_energy = Some(e - b.mean * self.duration);
                d.baseline_power = Some(b.mean);
                let sem = if b.bins > 1 { b.std.0 / (b.bins as f64).sqrt() } else { b.std.0 };
                d.baseline_sigma = Some(Joules(sem * self.duration.0));
            }
        }
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "window `{}`: {:.3} s", self.name, self.duration.0)?;
        for d in &self.devices {
            let label = match d.provenance {
                Provenance::Measured => "",
                Provenance::Replayed => " [REPLAYED TRACE]",
                Provenance::Constant => " [CONSTANT, NOT MEASURED]",
                _ => " [SYNTHETIC, NOT MEASURED]",
            };
            let j = |x: Option<Joules>| x.map_or("-".to_string(), |x| format!("{:.3} J", x.0));
            writeln!(f, "  {} ({}){}", d.source, d.name, label)?;
            writeln!(
                f,
                "    energy {} ({}) via {:?}{}",
                j(d.energy),
                d.watt_hours().map_or("-".into(), |w| format!("{w:.6} Wh")),
                d.method,
                d.uncertainty.map_or(String::new(), |u| format!(" ± {:.3} J", u.0)),
            )?;
            writeln!(
                f,
                "    mean {}  peak {}",
                d.mean_power.map_or("-".into(), |p| format!("{:.1} W", p.0)),
                d.peak_power.map_or("-".into(), |p| format!("{:.1} W", p.0)),
            )?;
            writeln!(
                f,
                "    counter(linear) {}  counter(shaped) {}  instant∫ {}  two-read {}",
                j(d.counter_linear),
                j(d.counter_shaped),
                j(d.instant_integral),
                j(d.two_read)
            )?;
            writeln!(
                f,
                "    paper 1 Hz {} ({})  disagreement {}",
                j(d.paper_1hz),
                d.paper_1hz.map_or("-".into(), |e| format!("{:.6} Wh", e.to_watt_hours())),
                d.disagreement.map_or("-".into(), |x| format!("{:+.3} %", x * 100.0)),
            )?;
            if let Some(de) = d.dynamic_energy {
                writeln!(
                    f,
                    "    minus idle baseline {:.1} W: {:.3} J",
                    d.baseline_power.map_or(0.0, |p| p.0),
                    de.0
                )?;
            }
            if !d.flags.is_empty() {
                writeln!(f, "    flags: {:?}", d.flags)?;
            }
        }
        Ok(())
    }
}

/// Idle baseline of each source: mean power and its spread over 1-s bins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Baseline {
    /// How long it was measured.
    pub duration: Seconds,
    /// Per source.
    pub devices: Vec<BaselineDevice>,
}

/// One source's idle baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BaselineDevice {
    /// Source id.
    pub source: String,
    /// Mean power.
    pub mean: Watts,
    /// Standard deviation of 1-s bin means.
    pub std: Watts,
    /// Number of 1-s bins.
    pub bins: usize,
}

/// Settings for window analysis.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct AnalysisConfig {
    /// Windows shorter than this are flagged [`Flag::TooShort`] (default 0.5 s).
    pub too_short: Duration,
    /// Relative counter/instant disagreement above which [`Flag::Discrepancy`] is set, for
    /// windows of at least 1 s (default 0.05).
    pub discrepancy: f64,
    /// For counters without a republication period (RAPL): an edge further than this from the
    /// nearest counter read is flagged [`Flag::CoarseEdge`] (default 125 ms). Counters with
    /// one (NVML) flag an edge that is not between two consecutive update points and lies
    /// more than a fifth of the period from the nearer one.
    pub coarse_edge: Duration,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            too_short: Duration::from_millis(500),
            discrepancy: 0.05,
            coarse_edge: Duration::from_millis(125),
        }
    }
}

/// The longest idle baseline [`Timeline::baseline`] computes, in 1-s bins: one day.
pub const MAX_BASELINE_BINS: u64 = 86_400;

fn ns(d: Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX)) as u64
}

impl Timeline {
    /// Computes a window `[t0_ns, t1_ns]` (ns since the anchor) from the recorded samples.
    /// Works on live snapshots and on loaded traces alike.
    ///
    /// # Errors
    ///
    /// [`Error::EndBeforeBegin`] or [`Error::EmptyWindow`] for a reversed or empty window.
    pub fn measure(&self, name: &str, t0_ns: u64, t1_ns: u64) -> Result<Measurement> {
        self.measure_with(name, t0_ns, t1_ns, AnalysisConfig::default())
    }

    /// As [`Timeline::measure`] with explicit settings.
    ///
    /// # Errors
    ///
    /// As [`Timeline::measure`].
    pub fn measure_with(
        &self,
        name: &str,
        t0: u64,
        t1: u64,
        cfg: AnalysisConfig,
    ) -> Result<Measurement> {
        if t1 < t0 {
            return Err(Error::EndBeforeBegin { by_ns: t0 - t1 });
        }
        if t1 == t0 {
            return Err(Error::EmptyWindow);
        }
        let devices = (0..self.sources.len()).map(|i| self.device_energy(i, t0, t1, cfg)).collect();
        Ok(Measurement {
            id: 0,
            name: name.to_string(),
            start: Seconds(t0 as f64 * 1e-9),
            duration: Seconds((t1 - t0) as f64 * 1e-9),
            devices,
        })
    }

    fn samples(&self, src: usize, sig: Signal) -> Option<&[Sample]> {
        self.channel(src, sig).map(|c| c.samples.as_slice()).filter(|s| !s.is_empty())
    }

    fn device_energy(&self, src: usize, t0: u64, t1: u64, cfg: AnalysisConfig) -> DeviceEnergy {
        let info = &self.sources[src];
        let instant = self.samples(src, Signal::InstantPower);
        let average = self.samples(src, Signal::AveragePower);
        let counter = self.samples(src, Signal::EnergyCounter);
        let mut flags = Vec::new();
        let dur = (t1 - t0) as f64 * 1e-9;
        if t1 - t0 < ns(cfg.too_short) {
            flags.push(Flag::TooShort);
        }

        // Device loss: data ends at the loss; windows spanning it get partial energy.
        let lost_at = self
            .events
            .iter()
            .filter(|e| e.source == src && matches!(e.kind, EventKind::DeviceLost { .. }))
            .map(|e| e.t_ns)
            .min();
        let panic_at = self
            .events
            .iter()
            .filter(|e| e.source == src && matches!(e.kind, EventKind::SamplerPanic { .. }))
            .map(|e| e.t_ns)
            .min();
        let mut e1 = t1;
        if let Some(l) = lost_at.filter(|&l| l <= t1) {
            flags.push(Flag::DeviceLost);
            e1 = l.max(t0);
        }
        if panic_at.is_some_and(|p| p <= t1) {
            flags.push(Flag::SamplerFailed);
            let last = [instant, counter, average]
                .iter()
                .flatten()
                .filter_map(|s| s.last())
                .map(|s| s.t_ns)
                .max()
                .unwrap_or(t0);
            e1 = e1.min(last.max(t0));
        }

        // Fallbacks recorded.
        for (sig, why) in &info.unsupported {
            flags.push(Flag::Fallback { signal: *sig, reason: why.clone() });
        }
        for e in self.events.iter().filter(|e| e.source == src) {
            if let (EventKind::Unsupported { reason }, Some(sig)) = (&e.kind, e.signal)
                && e.t_ns <= t1
                && !flags
                    .iter()
                    .any(|f| matches!(f, Flag::Fallback { signal, .. } if *signal == sig))
            {
                flags.push(Flag::Fallback { signal: sig, reason: reason.clone() });
            }
        }

        let spec = info.spec(Signal::EnergyCounter);
        let params =
            CounterParams::new(spec.and_then(|s| s.update_period), spec.and_then(|s| s.wrap_at));
        let ce = if e1 > t0 {
            counter.and_then(|c| integrate::counter_energy(c, t0, e1, params, instant))
        } else {
            None
        };
        // A reset inside the window that could not be bridged leaves the counter's figure
        // short by an unknown amount: flagged, and the counter is not used for this window.
        let unbridged = ce.as_ref().is_some_and(|c| c.unbridged > 0);
        if unbridged {
            flags.push(Flag::CounterReset);
        }
        let ce = ce.filter(|c| c.unbridged == 0);
        let instant_integral =
            instant.and_then(|p| if e1 > t0 { integrate::trapezoid(p, t0, e1) } else { None });
        let avg_window = info
            .spec(Signal::AveragePower)
            .and_then(|s| s.averaging_window)
            .unwrap_or(Duration::ZERO);
        let average_shifted = average.and_then(|p| {
            if e1 > t0 { integrate::averaged_shifted(p, t0, e1, avg_window) } else { None }
        });
        let paper_1hz = average
            .or(instant)
            .and_then(|p| if e1 > t0 { integrate::paper_1hz(p, t0, e1) } else { None });
        let two_read = counter.and_then(|c| integrate::two_read_delta(c, t0, e1));

        if let Some(c) = &ce {
            // With a republication period, an unbracketed edge more than a fifth of a period
            // from the nearest update point (≥ 20 ms × the power swing on NVML); without one
            // (RAPL), the configured distance.
            let limit = params.update_period.map_or(cfg.coarse_edge, |u| u / 5);
            if c.edge_distance > limit {
                flags.push(Flag::CoarseEdge {
                    ms: c.edge_distance.as_millis().min(u128::from(u32::MAX)) as u32,
                });
            }
            if c.resets > 0 {
                flags.push(Flag::CounterReset);
            }
            if c.wraps > 0 {
                flags.push(Flag::CounterWrapped);
            }
        }
        let (energy, method, uncertainty) = match (&ce, instant_integral, average_shifted) {
            (Some(c), _, _) if c.shaped.is_some() => {
                (c.shaped, Some(Method::CounterShaped), Some(c.edge_sigma))
            }
            (Some(c), _, _) => (Some(c.linear), Some(Method::CounterLinear), Some(c.edge_sigma)),
            (None, Some(i), _) => (Some(i), Some(Method::InstantTrapezoid), None),
            (None, None, Some(a)) => (Some(a), Some(Method::AverageShifted), None),
            _ => (None, None, None),
        };
        // Never a non-finite figure: such an estimate is no estimate (flagged NoData below).
        let energy = energy.filter(|e| e.0.is_finite());
        if ce.as_ref().is_some_and(|c| c.extrapolated)
            || (method == Some(Method::InstantTrapezoid)
                && instant.is_some_and(|p| p[0].t_ns > t0 || p[p.len() - 1].t_ns < e1))
        {
            flags.push(Flag::Extrapolated);
        }
        let counter_ref = ce.as_ref().map(|c| c.shaped.unwrap_or(c.linear));
        let disagreement = match (counter_ref, instant_integral) {
            (Some(c), Some(i)) if c.0 > 0.0 => Some((i.0 - c.0) / c.0),
            _ => None,
        };
        if dur >= 1.0 && disagreement.is_some_and(|d| d.abs() > cfg.discrepancy) {
            flags.push(Flag::Discrepancy);
        }
        if energy.is_none() {
            flags.push(Flag::NoData);
        }

        // Gaps: explicit gap events overlapping the window, or a live stream ending early.
        let gap_event = self.events.iter().any(|e| {
            e.source == src
                && matches!(e.kind, EventKind::Gap { until_ns } if e.t_ns < t1 && until_ns > t0)
        });
        let max_spacing = instant.map_or(0, |p| {
            let lo = p.partition_point(|s| s.t_ns < t0).saturating_sub(1);
            let hi = (p.partition_point(|s| s.t_ns <= e1) + 1).min(p.len());
            p[lo..hi].windows(2).map(|w| w[1].t_ns - w[0].t_ns).max().unwrap_or(0)
        });
        // A stream that stopped well before the window's end (stalled or dead thread), unless
        // the device was lost (flagged separately).
        let stopped = lost_at.is_none()
            && [instant, average, counter]
                .iter()
                .flatten()
                .any(|s| s.last().is_some_and(|l| l.t_ns.saturating_add(500_000_000) < e1));
        if gap_event || stopped || max_spacing > 500_000_000 {
            flags.push(Flag::Gap);
        }

        let rejected = self
            .events
            .iter()
            .filter(|e| {
                e.source == src
                    && matches!(e.kind, EventKind::Rejected { .. })
                    && e.t_ns >= t0
                    && e.t_ns <= t1
            })
            .count() as u64;
        if rejected > 0 {
            flags.push(Flag::RejectedSamples { count: rejected });
        }
        let overflow = self.channels.iter().any(|c| {
            c.source == src && c.dropped > 0 && c.samples.first().is_some_and(|s| s.t_ns > t0)
        });
        if overflow {
            flags.push(Flag::Overflow);
        }

        let in_window =
            self.status.iter().filter(|s| s.source == src && s.t_ns >= t0 && s.t_ns <= t1);
        let (mut throttled, mut shared) = (false, false);
        for s in in_window {
            throttled |= s.status.throttled;
            if let Some(p) = &s.status.processes {
                shared |= p.iter().any(|pid| !self.own_pids.contains(pid));
            }
        }
        if throttled {
            flags.push(Flag::Throttled);
        }
        if shared {
            flags.push(Flag::Shared);
        }

        if let Some(f) = crate::scraped::flag(info, counter, energy, t0, e1) {
            flags.push(f);
        }
        let mean_power = energy.map(|e| Watts(e.0 / dur));
        let peak_power = instant
            .and_then(|p| integrate::peak(p, t0, e1))
            .or_else(|| average.and_then(|p| integrate::peak(p, t0, e1)))
            .or_else(|| {
                counter.and_then(|c| {
                    let cp = integrate::counter_points(c, params, None);
                    integrate::counter_peak(&cp.points, t0, e1, Duration::from_millis(100))
                })
            });
        let count = |s: Option<&[Sample]>| {
            s.map_or(0, |s| s.iter().filter(|x| x.t_ns >= t0 && x.t_ns <= t1).count())
        };
        DeviceEnergy {
            source: info.id.clone(),
            name: info.name.clone(),
            domain: info.domain.clone(),
            provenance: info.provenance,
            energy,
            method,
            counter_linear: ce.as_ref().map(|c| c.linear),
            counter_shaped: ce.as_ref().and_then(|c| c.shaped),
            instant_integral,
            average_shifted,
            two_read,
            paper_1hz,
            disagreement,
            uncertainty,
            mean_power,
            peak_power,
            samples: count(instant.or(average)),
            counter_reads: count(counter),
            dynamic_energy: None,
            baseline_power: None,
            baseline_sigma: None,
            flags,
        }
    }

    /// Idle baseline over `[t0, t1]`: per source, the mean power and the spread of 1-s bin
    /// means (by the same primary method as windows).
    ///
    /// # Errors
    ///
    /// As [`Timeline::measure`]; [`Error::Config`] when the span is shorter than 1 s or
    /// longer than [`MAX_BASELINE_BINS`] seconds (each second is one window).
    pub fn baseline(&self, t0: u64, t1: u64) -> Result<Baseline> {
        if t1 <= t0 {
            return Err(Error::EmptyWindow);
        }
        let bins = (t1 - t0) / 1_000_000_000;
        if bins == 0 {
            return Err(Error::Config {
                field: "baseline duration",
                reason: "must be at least 1 s (10 s or more recommended)".into(),
            });
        }
        if bins > MAX_BASELINE_BINS {
            return Err(Error::Config {
                field: "baseline duration",
                reason: format!(
                    "{bins} s is longer than the {MAX_BASELINE_BINS} s (one day) a baseline may span"
                ),
            });
        }
        let whole = self.measure("baseline", t0, t1)?;
        let mut per_bin: Vec<Vec<f64>> = vec![Vec::new(); self.sources.len()];
        for b in 0..bins {
            let a = t0 + b * 1_000_000_000;
            let m = self.measure("baseline-bin", a, a + 1_000_000_000)?;
            for (i, d) in m.devices.iter().enumerate() {
                if let Some(p) = d.mean_power {
                    per_bin[i].push(p.0);
                }
            }
        }
        let devices = whole
            .devices
            .iter()
            .zip(per_bin)
            .filter_map(|(d, bins)| {
                let mean = d.mean_power?;
                let n = bins.len();
                let m = bins.iter().sum::<f64>() / n.max(1) as f64;
                let var = if n > 1 {
                    bins.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64
                } else {
                    0.0
                };
                Some(BaselineDevice {
                    source: d.source.clone(),
                    mean,
                    std: Watts(var.sqrt()),
                    bins: n,
                })
            })
            .collect();
        Ok(Baseline { duration: whole.duration, devices })
    }
}
