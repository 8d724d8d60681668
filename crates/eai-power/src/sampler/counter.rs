//! The energy counter's read schedule ([`CounterPlan`]) and the counter thread's loop.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{HISTORY_READS, SamplerConfig, Shared, Task, TaskState, lock, run_task};
use crate::integrate::UpdateGrid;
use crate::source::PowerSource;
use crate::timeline::Sample;

/// The energy counter's read schedule: dense calibration bursts (at start and every
/// `counter_burst_every`) that pin the counter's update grid, sparse background reads placed
/// mid-interval of that grid, and edge reads requested by `begin`/`end` within a token budget.
pub(super) struct CounterPlan {
    pub(super) update: Option<Duration>,
    pub(super) sparse: u64,
    pub(super) dense: Option<u64>,
    pub(super) burst_len: u64,
    pub(super) burst_every: u64,
    pub(super) in_burst: bool,
    pub(super) burst_until: u64,
    pub(super) next_burst: u64,
    pub(super) bursts: u32,
    pub(super) next_dense: u64,
    pub(super) next_sparse: u64,
    pub(super) hold_until: u64,
    pub(super) grid: Option<UpdateGrid>,
    /// Grid intervals (indices) that still need a read.
    pub(super) targets: BTreeSet<i64>,
    /// Without a republication period every read is current: an edge read is due now.
    pub(super) asap: bool,
    /// The grid interval of the last read taken clear of the update instants.
    pub(super) have: Option<i64>,
    pub(super) last_read: Option<u64>,
    pub(super) tokens: f64,
    pub(super) refilled: u64,
    pub(super) rate: f64,
    pub(super) cap: f64,
}

fn dur_ns(d: Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX)) as u64
}

impl CounterPlan {
    pub(super) fn new(cfg: &SamplerConfig, update: Option<Duration>) -> Self {
        let dense = (update.is_some() && cfg.counter_burst_hz > cfg.counter_hz)
            .then(|| dur_ns(Duration::from_secs_f64(1.0 / cfg.counter_burst_hz)));
        let burst_len = dur_ns(cfg.counter_burst);
        Self {
            update,
            sparse: dur_ns(Duration::from_secs_f64(1.0 / cfg.counter_hz)),
            dense,
            burst_len,
            burst_every: dur_ns(cfg.counter_burst_every).max(1),
            in_burst: dense.is_some(),
            // The first burst: at least 2 s, enough brackets for a first fit.
            burst_until: burst_len.max(2_000_000_000),
            // A ladder: the 2-s start-up burst pins the period to ~0.3 %, good for ~8 s;
            // bursts at 8, 24 and 56 s extend the baseline before the regular interval.
            next_burst: dur_ns(cfg.counter_burst_every).min(8_000_000_000),
            bursts: 0,
            next_dense: 0,
            next_sparse: 0,
            hold_until: 0,
            grid: None,
            targets: BTreeSet::new(),
            asap: false,
            have: None,
            last_read: None,
            tokens: f64::from(cfg.edge_read_burst),
            refilled: 0,
            rate: cfg.edge_read_hz,
            cap: f64::from(cfg.edge_read_burst),
        }
    }

    pub(super) fn index(g: &UpdateGrid, t: u64) -> i64 {
        ((t as f64 - g.phase_ns) / g.period_ns).floor() as i64
    }

    pub(super) fn start_of(g: &UpdateGrid, k: i64) -> f64 {
        g.phase_ns + k as f64 * g.period_ns
    }

    /// Where a read of interval `k` may go: clear of both update instants by more than the
    /// estimator's snapping guard (10 % of the period) plus half a slow read.
    pub(super) fn zone(g: &UpdateGrid, k: i64) -> (u64, u64) {
        let a = Self::start_of(g, k);
        ((a + 0.15 * g.period_ns).max(0.0) as u64, (a + 0.8 * g.period_ns).max(0.0) as u64)
    }

    pub(super) fn take_token(&mut self) -> bool {
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Turns edge times into reads to take.
    pub(super) fn add_edges(&mut self, edges: &[u64], now: u64) {
        self.tokens = (self.tokens + (now.saturating_sub(self.refilled)) as f64 * 1e-9 * self.rate)
            .min(self.cap);
        self.refilled = now;
        for &t in edges {
            match (self.update, self.grid) {
                (None, _) => {
                    if !self.asap && self.last_read.is_none_or(|r| r < t) && self.take_token() {
                        self.asap = true;
                    }
                }
                (Some(u), None) => {
                    // Not calibrated yet: read densely across the edge.
                    if self.dense.is_some() {
                        if !self.in_burst {
                            self.in_burst = true;
                            self.next_dense = now;
                        }
                        self.burst_until = self.burst_until.max(now + 3 * dur_ns(u));
                    } else if self.take_token() {
                        self.asap = true;
                    }
                }
                (Some(_), Some(g)) => {
                    let k = Self::index(&g, t);
                    for k in [k, k + 1] {
                        if Self::zone(&g, k).1 < now
                            || self.have.is_some_and(|h| h >= k)
                            || self.targets.contains(&k)
                        {
                            continue;
                        }
                        if self.take_token() {
                            self.targets.insert(k);
                        }
                    }
                }
            }
        }
    }

    /// When the next read is due (ns since the anchor).
    pub(super) fn next_read(&mut self, now: u64) -> u64 {
        if self.dense.is_some() && !self.in_burst && now >= self.next_burst {
            self.in_burst = true;
            self.burst_until = now + self.burst_len;
            self.next_dense = now;
            self.bursts += 1;
            let ladder = 8_000_000_000u64.saturating_mul(1 << self.bursts.min(20));
            self.next_burst = now + self.burst_every.min(ladder);
        }
        let mut best = u64::MAX;
        if self.in_burst {
            best = best.min(self.next_dense);
        }
        if self.asap {
            best = best.min(now);
        }
        if let Some(g) = self.grid {
            while let Some(&k) = self.targets.first() {
                let (lo, hi) = Self::zone(&g, k);
                if now > hi {
                    self.targets.remove(&k);
                    continue;
                }
                best = best.min(lo.max(now));
                break;
            }
        }
        let sparse = match self.grid {
            Some(g) => {
                let k = Self::index(&g, self.next_sparse);
                let mut mid = Self::start_of(&g, k) + 0.5 * g.period_ns;
                if mid < self.next_sparse as f64 {
                    mid += g.period_ns;
                }
                mid.max(0.0) as u64
            }
            None => self.next_sparse,
        };
        best.min(sparse).max(self.hold_until)
    }

    /// Bookkeeping after a read at `t`; returns the new "all updates up to here are read" time.
    pub(super) fn after_read(
        &mut self,
        t: u64,
        ok: bool,
        history: impl FnOnce() -> Vec<Sample>,
    ) -> Option<u64> {
        self.last_read = Some(t);
        self.asap = false;
        self.next_sparse = t + self.sparse;
        if let Some(d) = self.dense
            && self.in_burst
        {
            self.next_dense = t + d;
            if self.next_dense > self.burst_until {
                self.in_burst = false;
                self.refit(&history());
            }
        }
        if !ok {
            return None;
        }
        let Some(u) = self.update else { return Some(t) };
        let Some(g) = self.grid else { return Some(t.saturating_sub(dur_ns(u))) };
        let k = Self::index(&g, t);
        let into = t as f64 - Self::start_of(&g, k);
        // A read near an update instant is skipped by the estimator: it serves no target.
        let safe = into >= 0.1 * g.period_ns && into <= 0.9 * g.period_ns;
        while self.targets.first().is_some_and(|&x| x < k || (safe && x == k)) {
            self.targets.pop_first();
        }
        if safe {
            self.have = Some(k);
            return Some(Self::start_of(&g, k).max(0.0) as u64);
        }
        None
    }

    /// Refits the grid on the recent reads (several bursts: the longer the baseline, the
    /// better the period).
    pub(super) fn refit(&mut self, reads: &[Sample]) {
        let Some(u) = self.update else { return };
        if let Some(g) = crate::integrate::fit_grid(reads, u) {
            self.grid = Some(g);
            self.have = None;
            self.targets.clear();
        }
    }
}

pub(super) fn counter_loop(
    sh: &Shared,
    src: usize,
    source: &dyn PowerSource,
    t: &mut TaskState,
    plan: &mut CounterPlan,
    attempt: &AtomicU64,
) {
    let Task::Read { channel, .. } = t.task else { return };
    let c = &sh.channels[channel];
    loop {
        if sh.stop.load(Ordering::Acquire) {
            return;
        }
        if sh.source_dead[src].load(Ordering::Acquire) || t.done {
            c.alive.store(false, Ordering::Release);
            return;
        }
        let edges = std::mem::take(&mut *lock(&c.edges));
        let now = sh.now_ns();
        if !edges.is_empty() {
            plan.add_edges(&edges, now);
        }
        let due = plan.next_read(now);
        if due > now {
            std::thread::park_timeout(Duration::from_nanos(due - now));
            continue;
        }
        attempt.store(now, Ordering::Relaxed);
        let before = lock(&c.ring).last_t();
        run_task(sh, src, source, t);
        let after = lock(&c.ring).last_t();
        let ok = after.is_some() && after != before;
        let t_read = after.filter(|_| ok).unwrap_or_else(|| sh.now_ns());
        if let Some(through) = plan.after_read(t_read, ok, || lock(&c.ring).tail(HISTORY_READS)) {
            c.through.fetch_max(through, Ordering::AcqRel);
        }
        if t.backoff > 0 {
            plan.hold_until = sh.now_ns() + 100_000_000 * u64::from(t.backoff.min(6));
        }
    }
}
