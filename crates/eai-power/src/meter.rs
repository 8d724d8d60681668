//! [`Meter`]: owns the sampler, records windows, computes them from the timeline.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::measurement::{AnalysisConfig, Baseline, Measurement};
use crate::sampler::{ChannelStats, Sampler, SamplerConfig, lock};
use crate::source::{PowerSource, SourceInfo};
use crate::timeline::Timeline;

/// Identifies a window of one [`Meter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WindowId(pub u64);

#[derive(Debug)]
struct WindowRec {
    name: String,
    t0: u64,
    t1: Option<u64>,
    span: tracing::Span,
}

/// Meter settings: sampler rates plus analysis thresholds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct MeterConfig {
    /// Sampling rates and history bound.
    pub sampler: SamplerConfig,
    /// Thresholds for flags.
    pub analysis: AnalysisConfig,
    /// How long [`Meter::measurement`] waits for the samples that bracket a window's end
    /// (default 3 s: the edge reads land within ~0.1–0.2 s; an edge without one waits for the
    /// next 0.5 Hz background read; on timeout the edge is extrapolated and flagged).
    pub settle_timeout: Duration,
}

impl MeterConfig {
    /// Defaults: 100 Hz instant power, 10 Hz average, energy counter at 0.5 Hz in the
    /// background plus edge reads at every `begin`/`end` and a short calibration burst every
    /// two minutes, 1 Hz status, 2 h history.
    pub fn new() -> Self {
        Self {
            sampler: SamplerConfig::default(),
            analysis: AnalysisConfig::default(),
            settle_timeout: Duration::from_secs(3),
        }
    }

    /// Sets the instant-power rate.
    pub fn instant_hz(mut self, hz: f64) -> Self {
        self.sampler.instant_hz = hz;
        self
    }

    /// Sets the averaged-power rate.
    pub fn average_hz(mut self, hz: f64) -> Self {
        self.sampler.average_hz = hz;
        self
    }

    /// Sets the background energy-counter rate (calibration bursts are kept only when their
    /// rate is higher).
    pub fn counter_hz(mut self, hz: f64) -> Self {
        self.sampler.counter_hz = hz;
        self
    }

    /// Turns edge reads on or off (see [`SamplerConfig::edge_reads`]).
    pub fn edge_reads(mut self, on: bool) -> Self {
        self.sampler.edge_reads = on;
        self
    }

    /// Sets the history bound per channel.
    pub fn history(mut self, d: Duration) -> Self {
        self.sampler.history = d;
        self
    }

    /// Sets the settle timeout.
    pub fn settle_timeout(mut self, d: Duration) -> Self {
        self.settle_timeout = d;
        self
    }

    /// Sets the discrepancy threshold (relative).
    pub fn discrepancy(mut self, rel: f64) -> Self {
        self.analysis.discrepancy = rel;
        self
    }
}

/// Everything a stopped meter recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Session {
    /// The whole timeline.
    pub timeline: Timeline,
    /// Every ended window, in id order.
    pub windows: Vec<Measurement>,
    /// Read statistics per channel.
    pub stats: Vec<ChannelStats>,
}

/// Samples power sources in the background and measures windows.
///
/// `begin`/`end` only take a timestamp (no sensor call, no allocation beyond the name);
/// energy is computed from the recorded timeline when asked for. Windows may nest and overlap
/// and may be opened from several threads (`Meter` is `Sync`).
///
/// ```
/// use eai_core::Watts;
/// use eai_power::{ConstantSource, Meter, MeterConfig};
///
/// let meter = Meter::start(vec![Box::new(ConstantSource::new(Watts(200.0)))], MeterConfig::new())?;
/// let (_, m) = meter.measure("work", || std::thread::sleep(std::time::Duration::from_millis(300)))?;
/// let e = m.energy().unwrap();
/// assert!((e.0 - 200.0 * m.duration.0).abs() < 2.0, "{m}");
/// meter.stop()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Meter {
    sampler: Mutex<Sampler>,
    shared: Arc<crate::sampler::Shared>,
    windows: Mutex<Vec<WindowRec>>,
    cfg: MeterConfig,
}

impl Meter {
    /// Starts sampling `sources` on background threads.
    ///
    /// # Errors
    ///
    /// [`Error::NoSources`] for an empty list, [`Error::Config`] for bad rates (including a
    /// counter rate too slow for a wrapping counter), [`Error::Spawn`].
    pub fn start(sources: Vec<Box<dyn PowerSource>>, cfg: MeterConfig) -> Result<Self> {
        if sources.is_empty() {
            return Err(Error::NoSources { why: "the source list is empty".into() });
        }
        let sources: Vec<Arc<dyn PowerSource>> = sources.into_iter().map(Arc::from).collect();
        let sampler = Sampler::start(sources, cfg.sampler, vec![std::process::id()])?;
        let shared = Arc::clone(&sampler.shared);
        Ok(Self { sampler: Mutex::new(sampler), shared, windows: Mutex::new(Vec::new()), cfg })
    }

    /// The sources being sampled.
    pub fn sources(&self) -> &[SourceInfo] {
        &self.shared.sources
    }

    /// Nanoseconds since the meter's anchor (monotonic).
    pub fn now_ns(&self) -> u64 {
        self.shared.now_ns()
    }

    /// Converts an `Instant` into the meter's time base.
    pub fn ns_of(&self, t: Instant) -> u64 {
        self.shared.ns_of(t)
    }

    /// Registers a process id as part of the measured work (a child process, or a server that
    /// eai measures under load), so that its GPU use, and that of its descendants, does not flag
    /// windows as shared.
    pub fn add_own_pid(&self, pid: u32) {
        lock(&self.shared.own_pids).push(pid);
    }

    /// Opens a window now. Costs a timestamp, a push and a wake-up of the counter thread
    /// (which reads the counter around this instant); never calls a sensor.
    pub fn begin(&self, name: &str) -> WindowId {
        let t0 = self.shared.now_ns();
        self.shared.edge(t0);
        let mut w = lock(&self.windows);
        let id = w.len() as u64;
        let span =
            tracing::info_span!("eai_power.window", id, name, energy_j = tracing::field::Empty);
        w.push(WindowRec { name: name.to_string(), t0, t1: None, span });
        WindowId(id)
    }

    /// Closes a window now. Costs a timestamp and a wake-up of the counter thread; never calls
    /// a sensor.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownWindow`], [`Error::AlreadyEnded`].
    pub fn end(&self, id: WindowId) -> Result<()> {
        let t1 = self.shared.now_ns();
        let mut w = lock(&self.windows);
        let rec = w.get_mut(id.0 as usize).ok_or(Error::UnknownWindow { id: id.0 })?;
        if rec.t1.is_some() {
            return Err(Error::AlreadyEnded { id: id.0, name: rec.name.clone() });
        }
        rec.t1 = Some(t1.max(rec.t0 + 1));
        drop(w);
        self.shared.edge(t1);
        Ok(())
    }

    /// The result of an ended window. Waits (up to the settle timeout) until the sampler has
    /// recorded the samples that bracket the window's end, then computes every estimate.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownWindow`], [`Error::NotEnded`].
    pub fn measurement(&self, id: WindowId) -> Result<Measurement> {
        let (name, t0, t1) = {
            let w = lock(&self.windows);
            let rec = w.get(id.0 as usize).ok_or(Error::UnknownWindow { id: id.0 })?;
            let t1 = rec.t1.ok_or_else(|| Error::NotEnded { id: id.0, name: rec.name.clone() })?;
            (rec.name.clone(), rec.t0, t1)
        };
        self.wait_covered(t1);
        let mut m = self.compute(&name, t0, t1)?;
        m.id = id.0;
        let w = lock(&self.windows);
        if let (Some(rec), Some(e)) = (w.get(id.0 as usize), m.energy()) {
            rec.span.record("energy_j", e.0);
            rec.span.in_scope(|| {
                tracing::info!(window = %name, energy_j = e.0, duration_s = m.duration.0, "eai-power window");
            });
        }
        Ok(m)
    }

    fn wait_covered(&self, t1: u64) {
        let deadline = Instant::now() + self.cfg.settle_timeout;
        while !self.shared.covered(t1) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn compute(&self, name: &str, t0: u64, t1: u64) -> Result<Measurement> {
        let margin = 3_000_000_000;
        let tl = self.shared.snapshot(Some((t0.saturating_sub(margin), t1 + margin)));
        tl.measure_with(name, t0, t1, self.cfg.analysis)
    }

    /// Runs `f` inside a window and returns its output with the measurement.
    ///
    /// # Errors
    ///
    /// As [`Meter::measurement`].
    pub fn measure<T>(&self, name: &str, f: impl FnOnce() -> T) -> Result<(T, Measurement)> {
        let id = self.begin(name);
        let out = f();
        self.end(id)?;
        Ok((out, self.measurement(id)?))
    }

    /// Marks an instant for a window defined later with [`Meter::window_between`]: like a
    /// `begin`/`end` edge it asks the counter thread to read the counter around it (within
    /// the edge-read budget), so such a window is as accurate as one opened with `begin`.
    /// Costs a timestamp and a wake-up.
    pub fn mark(&self) -> Instant {
        let t = Instant::now();
        self.shared.edge(self.shared.ns_of(t));
        t
    }

    /// A window between two instants, defined after the fact. Edges that were not
    /// [`Meter::mark`]ed get no edge reads (only the sparse background reads around them:
    /// flagged [`crate::Flag::CoarseEdge`] where that matters).
    ///
    /// # Errors
    ///
    /// [`Error::EndBeforeBegin`], [`Error::EmptyWindow`].
    pub fn window_between(&self, name: &str, begin: Instant, end: Instant) -> Result<Measurement> {
        let (t0, t1) = (self.shared.ns_of(begin), self.shared.ns_of(end));
        if end < begin {
            return Err(Error::EndBeforeBegin { by_ns: (begin - end).as_nanos() as u64 });
        }
        self.wait_covered(t1);
        self.compute(name, t0, t1)
    }

    /// Measures the idle baseline: sleeps `duration` (at least 1 s; 10 s or more recommended)
    /// while sampling, then returns each source's mean power and spread. Nothing is
    /// subtracted unless you call [`Measurement::subtract_baseline`].
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a duration under 1 s.
    pub fn measure_baseline(&self, duration: Duration) -> Result<Baseline> {
        if duration < Duration::from_secs(1) {
            return Err(Error::Config {
                field: "baseline duration",
                reason: "must be at least 1 s (10 s or more recommended)".into(),
            });
        }
        let t0 = self.shared.now_ns();
        std::thread::sleep(duration);
        let t1 = self.shared.now_ns();
        self.wait_covered(t1);
        let margin = 3_000_000_000;
        self.shared.snapshot(Some((t0.saturating_sub(margin), t1 + margin))).baseline(t0, t1)
    }

    /// A snapshot of everything recorded so far.
    pub fn timeline(&self) -> Timeline {
        self.shared.snapshot(None)
    }

    /// Read statistics per channel.
    pub fn stats(&self) -> Vec<ChannelStats> {
        self.shared.stats()
    }

    /// Stops and joins the sampler threads and computes every ended window.
    ///
    /// # Errors
    ///
    /// Window computation errors (none expected for windows opened through this meter).
    pub fn stop(self) -> Result<Session> {
        if let Some(t) = lock(&self.windows).iter().filter_map(|w| w.t1).max() {
            self.wait_covered(t);
        }
        lock(&self.sampler).stop();
        let timeline = self.shared.snapshot(None);
        let mut windows = Vec::new();
        for (i, w) in lock(&self.windows).iter().enumerate() {
            if let Some(t1) = w.t1 {
                let mut m = timeline.measure_with(&w.name, w.t0, t1, self.cfg.analysis)?;
                m.id = i as u64;
                windows.push(m);
            }
        }
        Ok(Session { timeline, windows, stats: self.shared.stats() })
    }
}
