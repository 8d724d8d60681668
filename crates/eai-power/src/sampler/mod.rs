//! The background sampler: OS threads per source (the slow energy-counter read on its own
//! thread so that it never blocks the instant-power stream), deadline scheduling without
//! drift, bounded ring buffers, monotonic time, explicit stop and join, panics caught.
//!
//! Jobs: this module runs the threads and holds the shared state; `counter` schedules the
//! energy-counter reads.

mod counter;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use self::counter::{CounterPlan, counter_loop};
use crate::error::{Error, Result};
use crate::source::{PowerSource, Reading, Signal, SignalSpec, SourceError, SourceInfo};
use crate::timeline::{Channel, Event, EventKind, Ring, Sample, StatusSample, Timeline};

/// Sampling rates and buffer bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct SamplerConfig {
    /// Instant power rate (default 100 Hz).
    pub instant_hz: f64,
    /// Averaged power rate (default 10 Hz; the signal is a 1-s boxcar).
    pub average_hz: f64,
    /// Background energy-counter rate (default 0.5 Hz). An NVML counter read costs 3.6–6.6 ms
    /// of busy CPU on Hopper (a GSP RPC; 6.1 ms on average inside the sampler on the H200), so
    /// reading it at 20 Hz costs 7–13 % of a core; the default keeps the whole sampler under
    /// 1 %. Accuracy of windows opened with
    /// `begin`/`end` does not depend on this rate: each edge requests its own counter reads
    /// (see `edge_reads`). It matters for windows defined after the fact and for traces.
    pub counter_hz: f64,
    /// Counter rate during calibration bursts (default 1/61.8 ms ≈ 16.2 Hz: the golden ratio of
    /// the ~100 ms update period, so successive reads land at evenly spread phases of the
    /// update interval and a dozen reads pin the update instant to a few ms; a spacing near
    /// half the period would leave the phase unswept — the session-1 trace's 50 ms reads fit
    /// any period from 99.945 to 100.06 ms). Bursts apply to counters with a
    /// republication period (NVML); equal or lower than `counter_hz` disables them.
    pub counter_burst_hz: f64,
    /// Length of each recalibration burst (default 0.74 s, 12 reads); the first burst, at
    /// start, lasts at least 2 s.
    pub counter_burst: Duration,
    /// Interval between recalibration bursts (default 120 s; the first ones come at 8, 24, 56
    /// and 120 s, a ladder that extends the baseline while the period is still coarse): the grid's
    /// period is refitted over all bursts in the history, so its error shrinks as the
    /// baseline grows.
    pub counter_burst_every: Duration,
    /// Edge reads (default on): `begin`/`end` ask the counter thread to read the counter in
    /// the update interval containing the edge and in the next one (placed clear of the
    /// update instants), so the edge lies between two consecutive update points — the
    /// accuracy of a 20 Hz counter stream at a fraction of the reads. The caller never waits
    /// for a read; the window's result waits until the reads have landed.
    pub edge_reads: bool,
    /// Sustained edge-read budget in reads per second (default 1.0). Each edge takes up to
    /// two reads (windows sharing an edge share them), and every read also serves as the
    /// background read, so the counter thread never averages more than ~1.1 reads/s (about
    /// 0.7 % of a core on the H200 at 6.1 ms per read) however many windows are opened.
    /// Edges beyond the budget fall back to the background reads and their windows are
    /// flagged [`crate::Flag::CoarseEdge`]; raise it for many short windows.
    pub edge_read_hz: f64,
    /// Edge-read burst allowance (default 16 reads: four separate windows at once).
    pub edge_read_burst: u32,
    /// Device status rate (default 1 Hz).
    pub status_hz: f64,
    /// How much history each channel keeps (default 2 h); older samples are dropped and
    /// counted, and windows that needed them are flagged [`crate::Flag::Overflow`].
    pub history: Duration,
    /// Rejected readings logged as events per channel (all are counted; default 32).
    pub max_logged_rejections: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            instant_hz: 100.0,
            average_hz: 10.0,
            counter_hz: 0.5,
            counter_burst_hz: 1.0 / 0.0618,
            counter_burst: Duration::from_millis(740),
            counter_burst_every: Duration::from_secs(120),
            edge_reads: true,
            edge_read_hz: 1.0,
            edge_read_burst: 16,
            status_hz: 1.0,
            history: Duration::from_secs(2 * 3600),
            max_logged_rejections: 32,
        }
    }
}

impl SamplerConfig {
    /// Checks the rates and bounds.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        for (field, hz) in [
            ("instant_hz", self.instant_hz),
            ("average_hz", self.average_hz),
            ("counter_hz", self.counter_hz),
            ("counter_burst_hz", self.counter_burst_hz),
            ("status_hz", self.status_hz),
        ] {
            if !(hz.is_finite() && hz > 0.0 && hz <= 10_000.0) {
                return Err(Error::Config {
                    field,
                    reason: format!("{hz} Hz is not in (0, 10000]"),
                });
            }
        }
        if !(self.edge_read_hz.is_finite() && self.edge_read_hz >= 0.0) {
            return Err(Error::Config {
                field: "edge_read_hz",
                reason: format!("{} is not a finite rate >= 0", self.edge_read_hz),
            });
        }
        if self.counter_burst > self.counter_burst_every {
            return Err(Error::Config {
                field: "counter_burst",
                reason: "must not exceed counter_burst_every".into(),
            });
        }
        if self.history < Duration::from_secs(1) {
            return Err(Error::Config { field: "history", reason: "must be at least 1 s".into() });
        }
        Ok(())
    }

    /// Checks that counters that wrap are read at least twice per wrap at their maximum power
    /// (a missed wrap cannot be recovered).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] on `counter_hz` when too slow for a source.
    pub fn validate_for(&self, info: &SourceInfo) -> Result<()> {
        if let Some(spec) = info.spec(Signal::EnergyCounter)
            && let Some(range) = spec.wrap_at
        {
            {
                let pmax = spec.max_power.map_or(1000.0, |p| p.0).max(1.0);
                let max_period = range.0 / (2.0 * pmax);
                if 1.0 / self.counter_hz.min(self.counter_burst_hz) > max_period {
                    return Err(Error::Config {
                        field: "counter_hz",
                        reason: format!(
                            "{}: counter wraps every {:.1} s at {pmax:.0} W; reading at {} Hz could miss a wrap (need >= {:.4} Hz)",
                            info.id,
                            range.0 / pmax,
                            self.counter_hz,
                            1.0 / max_period
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Read statistics of one channel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChannelStats {
    /// Source id.
    pub source: String,
    /// Signal.
    pub signal: Option<Signal>,
    /// Successful reads.
    pub reads: u64,
    /// Mean read duration.
    pub mean_read: Duration,
    /// Longest read.
    pub max_read: Duration,
}

#[derive(Debug)]
pub(crate) struct ChannelState {
    pub(crate) source: usize,
    pub(crate) signal: Signal,
    pub(crate) ring: Mutex<Ring>,
    pub(crate) alive: AtomicBool,
    /// Counters: edge times (ns) waiting for the counter thread.
    edges: Mutex<Vec<u64>>,
    /// Counters: the thread to wake for an edge read.
    thread: OnceLock<Thread>,
    /// Counters: every update at or before this time (ns) is in the recorded reads.
    through: AtomicU64,
    reads: AtomicU64,
    read_ns: AtomicU64,
    max_read_ns: AtomicU64,
}

/// State shared between the sampler threads and the meter.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) anchor: Instant,
    pub(crate) sources: Vec<SourceInfo>,
    pub(crate) channels: Vec<ChannelState>,
    pub(crate) events: Mutex<Vec<Event>>,
    pub(crate) status: Mutex<Vec<StatusSample>>,
    pub(crate) own_pids: Mutex<Vec<u32>>,
    source_dead: Vec<AtomicBool>,
    stop: AtomicBool,
    cfg: SamplerConfig,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a sampler thread panicked while holding it; the data (plain
    // samples) is still consistent, so keep going.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn now_ns(&self) -> u64 {
        self.ns_of(Instant::now())
    }

    pub(crate) fn ns_of(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.anchor).as_nanos().min(u128::from(u64::MAX)) as u64
    }

    fn event(&self, t_ns: u64, source: usize, signal: Option<Signal>, kind: EventKind) {
        tracing::debug!(source = %self.sources[source].id, ?signal, ?kind, "eai-power event");
        lock(&self.events).push(Event::new(t_ns, source, signal, kind));
    }

    /// Asks every live counter thread for reads around `t` (a window edge). Costs a push and
    /// a wake-up; the read itself happens on the counter thread.
    pub(crate) fn edge(&self, t: u64) {
        if !self.cfg.edge_reads {
            return;
        }
        for c in self.channels.iter().filter(|c| c.signal == Signal::EnergyCounter) {
            if let Some(th) = c.thread.get()
                && c.alive.load(Ordering::Relaxed)
            {
                lock(&c.edges).push(t);
                th.unpark();
            }
        }
    }

    /// Whether every live channel has data at or beyond `t` (counters: the first update after
    /// `t` has been read, so the edge lies between two recorded update points).
    pub(crate) fn covered(&self, t: u64) -> bool {
        self.channels.iter().all(|c| {
            if !c.alive.load(Ordering::Acquire)
                || self.source_dead[c.source].load(Ordering::Acquire)
            {
                return true;
            }
            match c.signal {
                Signal::EnergyCounter => c.through.load(Ordering::Acquire) >= t,
                _ => lock(&c.ring).last_t().is_some_and(|l| l >= t),
            }
        })
    }

    /// A snapshot restricted to `[lo, hi]` (plus two samples each side), or everything.
    pub(crate) fn snapshot(&self, range: Option<(u64, u64)>) -> Timeline {
        let mut tl = Timeline::new(self.sources.clone());
        for c in &self.channels {
            let ring = lock(&c.ring);
            // Counters: a wide margin, so the estimator can fit the update grid on several
            // calibration bursts (sparse reads, a few hundred samples).
            let m = if c.signal == Signal::EnergyCounter { COUNTER_MARGIN_NS } else { 0 };
            let samples = match range {
                Some((lo, hi)) => ring.range(lo.saturating_sub(m), hi.saturating_add(m), 2),
                None => ring.samples.iter().copied().collect(),
            };
            let first = ring.first_t();
            let mut ch = Channel {
                source: c.source,
                signal: Some(c.signal),
                samples,
                rejected: ring.rejected,
                dropped: ring.dropped,
            };
            // Keep the overflow signal meaningful on a range copy: if the ring's oldest
            // sample is inside the range, samples the range needed were dropped.
            if ring.dropped > 0 && range.is_some_and(|(lo, _)| first.is_some_and(|f| f <= lo)) {
                ch.dropped = 0;
            }
            tl.channels.push(ch);
        }
        let keep = |t: u64| {
            range.is_none_or(|(lo, hi)| {
                t.saturating_add(5_000_000_000) >= lo && t <= hi.saturating_add(5_000_000_000)
            })
        };
        tl.events = lock(&self.events)
            .iter()
            .filter(|e| {
                keep(e.t_ns)
                    || matches!(
                        e.kind,
                        EventKind::DeviceLost { .. } | EventKind::SamplerPanic { .. }
                    )
            })
            .cloned()
            .collect();
        tl.status = lock(&self.status).iter().filter(|s| keep(s.t_ns)).cloned().collect();
        tl.own_pids = lock(&self.own_pids).clone();
        tl
    }

    pub(crate) fn stats(&self) -> Vec<ChannelStats> {
        self.channels
            .iter()
            .map(|c| {
                let reads = c.reads.load(Ordering::Relaxed);
                ChannelStats {
                    source: self.sources[c.source].id.clone(),
                    signal: Some(c.signal),
                    reads,
                    mean_read: Duration::from_nanos(
                        c.read_ns.load(Ordering::Relaxed) / reads.max(1),
                    ),
                    max_read: Duration::from_nanos(c.max_read_ns.load(Ordering::Relaxed)),
                }
            })
            .collect()
    }
}

enum Task {
    Read { channel: usize, spec: SignalSpec },
    Status,
}

struct TaskState {
    task: Task,
    period: Duration,
    next: Instant,
    last_ok: Option<u64>,
    backoff: u32,
    done: bool,
    logged_rejections: u64,
}

/// Counter reads the sampler refits its grid on (several minutes at the defaults).
const HISTORY_READS: usize = 600;

/// How far around a window the counter reads are copied for its computation.
const COUNTER_MARGIN_NS: u64 = 150_000_000_000;

/// Running sampler threads.
#[derive(Debug)]
pub(crate) struct Sampler {
    pub(crate) shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Sampler {
    pub(crate) fn start(
        sources: Vec<Arc<dyn PowerSource>>,
        cfg: SamplerConfig,
        own_pids: Vec<u32>,
    ) -> Result<Self> {
        cfg.validate()?;
        let infos: Vec<SourceInfo> = sources.iter().map(|s| s.info()).collect();
        for info in &infos {
            cfg.validate_for(info)?;
        }
        let mut channels = Vec::new();
        for (i, info) in infos.iter().enumerate() {
            for spec in &info.signals {
                let hz = match spec.signal {
                    Signal::InstantPower => cfg.instant_hz,
                    Signal::AveragePower => cfg.average_hz,
                    Signal::EnergyCounter => cfg.counter_hz.max(cfg.counter_burst_hz),
                };
                let cap = (hz * cfg.history.as_secs_f64()).ceil() as usize;
                channels.push(ChannelState {
                    source: i,
                    signal: spec.signal,
                    ring: Mutex::new(Ring::new(cap)),
                    alive: AtomicBool::new(true),
                    edges: Mutex::new(Vec::new()),
                    thread: OnceLock::new(),
                    through: AtomicU64::new(0),
                    reads: AtomicU64::new(0),
                    read_ns: AtomicU64::new(0),
                    max_read_ns: AtomicU64::new(0),
                });
            }
        }
        let shared = Arc::new(Shared {
            anchor: Instant::now(),
            source_dead: infos.iter().map(|_| AtomicBool::new(false)).collect(),
            sources: infos,
            channels,
            events: Mutex::new(Vec::new()),
            status: Mutex::new(Vec::new()),
            own_pids: Mutex::new(own_pids),
            stop: AtomicBool::new(false),
            cfg,
        });
        let mut sampler = Sampler { shared: Arc::clone(&shared), threads: Vec::new() };
        for (i, src) in sources.into_iter().enumerate() {
            let info = &shared.sources[i];
            let mut fast = Vec::new();
            let mut slow = Vec::new();
            let now = Instant::now();
            for (ci, c) in shared.channels.iter().enumerate().filter(|(_, c)| c.source == i) {
                let Some(spec) = info.spec(c.signal).cloned() else { continue };
                let hz = match c.signal {
                    Signal::InstantPower => cfg.instant_hz,
                    Signal::AveragePower => cfg.average_hz,
                    Signal::EnergyCounter => cfg.counter_hz,
                };
                let t = TaskState::new(Task::Read { channel: ci, spec }, hz, now);
                if c.signal == Signal::EnergyCounter { slow.push(t) } else { fast.push(t) }
            }
            fast.push(TaskState::new(Task::Status, cfg.status_hz, now));
            for (kind, tasks) in [("power", fast), ("counter", slow)] {
                if tasks.iter().all(|t| matches!(t.task, Task::Status)) && kind == "counter" {
                    continue;
                }
                if tasks.is_empty() {
                    continue;
                }
                let sh = Arc::clone(&shared);
                let s = Arc::clone(&src);
                let name = format!("eai-power-{kind}-{i}");
                let counter_channel = match tasks.first().map(|t| &t.task) {
                    Some(Task::Read { channel, spec }) if spec.signal == Signal::EnergyCounter => {
                        Some(*channel)
                    }
                    _ => None,
                };
                let h = std::thread::Builder::new()
                    .name(name)
                    .spawn(move || run_thread(&sh, i, &*s, tasks))
                    .map_err(|e| Error::Spawn {
                        source_id: shared.sources[i].id.clone(),
                        source: e,
                    })?;
                if let Some(ci) = counter_channel {
                    let _ = shared.channels[ci].thread.set(h.thread().clone());
                }
                sampler.threads.push(h);
            }
        }
        Ok(sampler)
    }

    /// Signals the threads to stop and joins them.
    pub(crate) fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for h in &self.threads {
            h.thread().unpark();
        }
        // A read that hangs (an NVML call stuck in the driver, a sysfs file that never
        // answers) must not hang the caller: wait at most STOP_TIMEOUT, then leave such a
        // thread behind (it owns only reference-counted state) and record that it hung.
        let deadline = Instant::now() + STOP_TIMEOUT;
        while self.threads.iter().any(|h| !h.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        for h in self.threads.drain(..) {
            if h.is_finished() {
                // Panics are caught inside the thread body; a join error cannot carry one.
                let _ = h.join();
            } else {
                let name = h.thread().name().unwrap_or("eai-power").to_string();
                let src = name.rsplit('-').next().and_then(|i| i.parse::<usize>().ok());
                tracing::warn!(thread = %name, "eai-power sampler thread did not stop: a read hangs");
                if let Some(src) = src.filter(|&s| s < self.shared.sources.len()) {
                    let t = self.shared.now_ns();
                    self.shared.event(
                        t,
                        src,
                        None,
                        EventKind::Hung { waited_ms: STOP_TIMEOUT.as_millis() as u64 },
                    );
                }
            }
        }
    }
}

/// How long [`Sampler::stop`] waits for a thread whose read hangs before leaving it behind.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(2);

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop();
    }
}

impl TaskState {
    fn new(task: Task, hz: f64, now: Instant) -> Self {
        Self {
            task,
            period: Duration::from_secs_f64(1.0 / hz),
            next: now,
            last_ok: None,
            backoff: 0,
            done: false,
            logged_rejections: 0,
        }
    }
}

fn run_thread(sh: &Shared, src: usize, source: &dyn PowerSource, mut tasks: Vec<TaskState>) {
    // When the last read started: the time of a panic (the panic hook may take long to print a
    // backtrace before the panic is caught here).
    let attempt = AtomicU64::new(0);
    let counter = match tasks.first() {
        Some(TaskState { task: Task::Read { spec, .. }, .. })
            if tasks.len() == 1 && spec.signal == Signal::EnergyCounter =>
        {
            Some(CounterPlan::new(&sh.cfg, spec.update_period))
        }
        _ => None,
    };
    let r = catch_unwind(AssertUnwindSafe(|| match counter {
        Some(mut plan) => counter_loop(sh, src, source, &mut tasks[0], &mut plan, &attempt),
        None => thread_loop(sh, src, source, &mut tasks, &attempt),
    }));
    if let Err(p) = r {
        let message = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        tracing::error!(source = %sh.sources[src].id, %message, "eai-power sampler thread panicked");
        for t in &tasks {
            if let Task::Read { channel, .. } = t.task {
                sh.channels[channel].alive.store(false, Ordering::Release);
            }
        }
        sh.event(attempt.load(Ordering::Relaxed), src, None, EventKind::SamplerPanic { message });
    }
}

fn thread_loop(
    sh: &Shared,
    src: usize,
    source: &dyn PowerSource,
    tasks: &mut [TaskState],
    attempt: &AtomicU64,
) {
    loop {
        if sh.stop.load(Ordering::Acquire) {
            return;
        }
        if sh.source_dead[src].load(Ordering::Acquire) || tasks.iter().all(|t| t.done) {
            for t in tasks.iter() {
                if let Task::Read { channel, .. } = t.task {
                    sh.channels[channel].alive.store(false, Ordering::Release);
                }
            }
            return;
        }
        let now = Instant::now();
        let Some(t) = tasks.iter_mut().filter(|t| !t.done).min_by_key(|t| t.next) else { return };
        if t.next > now {
            std::thread::park_timeout(t.next - now);
            continue;
        }
        attempt.store(sh.now_ns(), Ordering::Relaxed);
        run_task(sh, src, source, t);
        // Deadline scheduling: next += period (no drift); if we fell behind by more than a
        // period, skip ahead rather than bursting.
        let period = t.period;
        t.next += period * (1 + t.backoff.min(6));
        let now = Instant::now();
        if t.next + period < now {
            t.next = now + period;
        }
    }
}

fn run_task(sh: &Shared, src: usize, source: &dyn PowerSource, t: &mut TaskState) {
    match &t.task {
        Task::Status => match source.status() {
            Ok(Some(status)) => {
                let t_ns = sh.now_ns();
                if let Some(pids) = &status.processes {
                    let me = std::process::id();
                    let mut own = lock(&sh.own_pids);
                    for &p in pids {
                        // Children of eai, and children of a process registered as part of the
                        // work (`Meter::add_own_pid`: a server's workers, say), are adopted.
                        if !own.contains(&p)
                            && (is_descendant(p, me) || own.iter().any(|&r| is_descendant(p, r)))
                        {
                            own.push(p);
                        }
                    }
                }
                lock(&sh.status).push(StatusSample { t_ns, source: src, status });
            }
            Ok(None) => t.done = true,
            Err(SourceError::DeviceLost(reason)) => lost(sh, src, reason),
            Err(_) => t.done = true,
        },
        Task::Read { channel, spec } => {
            let (channel, spec) = (*channel, spec.clone());
            let before = Instant::now();
            let r = source.read(spec.signal);
            let after = Instant::now();
            let read = after - before;
            let t_ns = sh.ns_of(before + read / 2);
            match r {
                Ok(reading) => {
                    t.backoff = 0;
                    let c = &sh.channels[channel];
                    c.reads.fetch_add(1, Ordering::Relaxed);
                    let rn = read.as_nanos() as u64;
                    c.read_ns.fetch_add(rn, Ordering::Relaxed);
                    c.max_read_ns.fetch_max(rn, Ordering::Relaxed);
                    let value = match reading {
                        Reading::Power(w) => w.0,
                        Reading::Energy(j) => j.0,
                    };
                    if let Some(why) = reject_reason(&spec, reading) {
                        let mut ring = lock(&c.ring);
                        ring.rejected += 1;
                        drop(ring);
                        if t.logged_rejections < sh.cfg.max_logged_rejections {
                            t.logged_rejections += 1;
                            sh.event(
                                t_ns,
                                src,
                                Some(spec.signal),
                                EventKind::Rejected { value, reason: why },
                            );
                        }
                        return;
                    }
                    // Gap: no good sample for much longer than the period.
                    if let Some(last) = t.last_ok {
                        let limit = (t.period.as_nanos() as u64 * 5).max(250_000_000);
                        if t_ns.saturating_sub(last) > limit {
                            sh.event(
                                last,
                                src,
                                Some(spec.signal),
                                EventKind::Gap { until_ns: t_ns },
                            );
                        }
                    }
                    t.last_ok = Some(t_ns);
                    let pushed = lock(&c.ring).push(Sample::new(t_ns, value));
                    match pushed {
                        Ok(true) => sh.event(t_ns, src, Some(spec.signal), EventKind::Overflow),
                        Ok(false) => {}
                        Err(()) => {
                            if t.logged_rejections < sh.cfg.max_logged_rejections {
                                t.logged_rejections += 1;
                                sh.event(
                                    t_ns,
                                    src,
                                    Some(spec.signal),
                                    EventKind::Rejected {
                                        value,
                                        reason: "timestamp not after the previous sample".into(),
                                    },
                                );
                            }
                        }
                    }
                }
                Err(SourceError::DeviceLost(reason)) => lost(sh, src, reason),
                Err(SourceError::NotSupported(reason)) => {
                    t.done = true;
                    sh.channels[channel].alive.store(false, Ordering::Release);
                    sh.event(t_ns, src, Some(spec.signal), EventKind::Unsupported { reason });
                }
                Err(SourceError::Permission { fix }) => {
                    t.done = true;
                    sh.channels[channel].alive.store(false, Ordering::Release);
                    sh.event(t_ns, src, Some(spec.signal), EventKind::Permission { fix });
                }
                Err(SourceError::Exhausted) => {
                    t.done = true;
                    sh.channels[channel].alive.store(false, Ordering::Release);
                    sh.event(t_ns, src, Some(spec.signal), EventKind::Exhausted);
                }
                Err(SourceError::Transient(reason)) => {
                    if t.backoff == 0 {
                        sh.event(t_ns, src, Some(spec.signal), EventKind::Transient { reason });
                    }
                    t.backoff += 1;
                }
            }
        }
    }
}

fn lost(sh: &Shared, src: usize, reason: String) {
    if !sh.source_dead[src].swap(true, Ordering::AcqRel) {
        sh.event(sh.now_ns(), src, None, EventKind::DeviceLost { reason });
    }
}

/// Why a reading is absurd, if it is.
pub(crate) fn reject_reason(spec: &SignalSpec, r: Reading) -> Option<String> {
    match r {
        Reading::Power(w) => {
            let v = w.0;
            if !v.is_finite() {
                Some("not finite".into())
            } else if v < 0.0 {
                Some("negative power".into())
            } else if v == 0.0 && spec.zero_is_invalid {
                Some("zero power from a powered device (polled too fast?)".into())
            } else if let Some(why) = crate::source::implausible(spec.signal, v) {
                Some(why)
            } else if spec.max_power.is_some_and(|m| v > m.0) {
                Some(format!(
                    "above the plausibility bound of {:.0} W",
                    spec.max_power.map_or(0.0, |m| m.0)
                ))
            } else {
                None
            }
        }
        Reading::Energy(j) => crate::source::implausible(Signal::EnergyCounter, j.0),
    }
}

/// Whether `pid` is `ancestor` or one of its descendants (Linux `/proc`; false elsewhere).
pub(crate) fn is_descendant(pid: u32, ancestor: u32) -> bool {
    let mut p = pid;
    for _ in 0..64 {
        if p == ancestor {
            return true;
        }
        if p <= 1 {
            return false;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { return false };
        // The command name may contain spaces and parentheses: parse after the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { return false };
        let Some(ppid) = rest.split_whitespace().nth(1).and_then(|x| x.parse::<u32>().ok()) else {
            return false;
        };
        p = ppid;
    }
    false
}

#[cfg(test)]
mod tests;
