//! Integration methods: pure functions over sample slices (times in ns since an anchor).
//!
//! * [`trapezoid`] and [`zoh`]: power streams, with values interpolated exactly at the edges.
//! * [`counter_energy`]: a cumulative counter, with each edge interpolated between the counter's
//!   update points, either linearly in time or shaped by a power stream (the "hybrid"); RAPL
//!   wraps are unwrapped and resets split into segments.
//! * [`two_read_delta`]: what Zeus does (counter read at begin and at end, subtracted).
//! * [`paper_1hz`]: the paper's method, 1 Hz samples of averaged power summed as `P·Δt`.
//! * [`averaged_shifted`]: a 1-s average shifted by its group delay (fallback).

use std::time::Duration;

use eai_core::{Joules, Watts};

use crate::timeline::Sample;

fn secs(ns: u64) -> f64 {
    ns as f64 * 1e-9
}

fn dt(a: u64, b: u64) -> f64 {
    (b as f64 - a as f64) * 1e-9
}

/// The value of a piecewise-linear signal at `t`: linear between the bracketing samples, held
/// constant beyond the first and last sample. `None` for an empty slice.
pub fn interpolate(samples: &[Sample], t: u64) -> Option<f64> {
    let first = samples.first()?;
    let last = samples.last()?;
    if t <= first.t_ns {
        return Some(first.value);
    }
    if t >= last.t_ns {
        return Some(last.value);
    }
    let i = samples.partition_point(|s| s.t_ns <= t); // samples[i-1].t <= t < samples[i].t
    let (a, b) = (samples[i - 1], samples[i]);
    let f = dt(a.t_ns, t) / dt(a.t_ns, b.t_ns);
    Some(a.value + (b.value - a.value) * f)
}

/// Trapezoidal integral of a power stream (W) over `[t0, t1]`, with the values at the edges
/// linearly interpolated (held constant outside the samples). `None` when there are no samples
/// or `t1 <= t0`.
pub fn trapezoid(samples: &[Sample], t0: u64, t1: u64) -> Option<Joules> {
    if t1 <= t0 || samples.is_empty() {
        return None;
    }
    let mut prev_t = t0;
    let mut prev_v = interpolate(samples, t0)?;
    let mut e = 0.0;
    let start = samples.partition_point(|s| s.t_ns <= t0);
    for s in &samples[start..] {
        if s.t_ns >= t1 {
            break;
        }
        e += 0.5 * (prev_v + s.value) * dt(prev_t, s.t_ns);
        prev_t = s.t_ns;
        prev_v = s.value;
    }
    let v1 = interpolate(samples, t1)?;
    e += 0.5 * (prev_v + v1) * dt(prev_t, t1);
    Some(Joules(e))
}

/// Zero-order-hold integral: each sample's value holds until the next sample (the value before
/// `t0` holds into the window; before the first sample the first value is used).
pub fn zoh(samples: &[Sample], t0: u64, t1: u64) -> Option<Joules> {
    if t1 <= t0 || samples.is_empty() {
        return None;
    }
    let i0 = samples.partition_point(|s| s.t_ns <= t0);
    let mut v = if i0 == 0 { samples[0].value } else { samples[i0 - 1].value };
    let mut t = t0;
    let mut e = 0.0;
    for s in &samples[i0..] {
        if s.t_ns >= t1 {
            break;
        }
        e += v * dt(t, s.t_ns);
        t = s.t_ns;
        v = s.value;
    }
    e += v * dt(t, t1);
    Some(Joules(e))
}

/// The paper's method on the same timeline: the averaged-power stream sampled at 1 Hz from
/// `t0` (the last value at or before each grid point, as polling `nvidia-smi` once a second
/// would see), each sample multiplied by its interval (1 s; the final partial second by its
/// length). Returns joules; divide by 3600 for the paper's Wh.
///
/// The grid points between two consecutive samples all see the same value, so each such run
/// is summed in one step: the cost grows with the samples in the window, not with its length
/// in seconds (a trace spanning a century is as cheap as one spanning a minute).
pub fn paper_1hz(samples: &[Sample], t0: u64, t1: u64) -> Option<Joules> {
    const SECOND: u64 = 1_000_000_000;
    if t1 <= t0 || samples.is_empty() {
        return None;
    }
    let mut e = 0.0;
    let mut g = t0;
    while g < t1 {
        let i = samples.partition_point(|s| s.t_ns <= g);
        let p = if i == 0 { samples[0].value } else { samples[i - 1].value };
        // Grid points g, g + 1 s, … before the next sample (or the window's end) see `p`.
        let change = samples.get(i).map_or(t1, |s| s.t_ns.min(t1));
        let steps = (change - g).div_ceil(SECOND);
        let next = g.saturating_add(steps.saturating_mul(SECOND)).min(t1);
        e += p * dt(g, next);
        g = next;
    }
    Some(Joules(e))
}

/// An averaged-power stream (boxcar of `window`) integrated over `[t0 + window/2, t1 +
/// window/2]`, compensating its group delay. Only meaningful for windows padded by at least
/// `window` of steady signal on both sides.
pub fn averaged_shifted(samples: &[Sample], t0: u64, t1: u64, window: Duration) -> Option<Joules> {
    let d = (window.as_nanos() / 2) as u64;
    trapezoid(samples, t0.saturating_add(d), t1.saturating_add(d))
}

/// Zeus-style two-read delta: the first counter read at or after `t0` subtracted from the
/// first read at or after `t1` (what a synchronous read at begin and end returns). `None` when
/// either read is missing or the counter went backwards.
pub fn two_read_delta(reads: &[Sample], t0: u64, t1: u64) -> Option<Joules> {
    let a = reads.get(reads.partition_point(|s| s.t_ns < t0))?;
    let b = reads.get(reads.partition_point(|s| s.t_ns < t1))?;
    (b.value >= a.value).then_some(Joules(b.value - a.value))
}

/// Parameters of a counter for [`counter_energy`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct CounterParams {
    /// How often the counter is republished (NVML on Hopper: 100 ms). `None`: every read is
    /// current (RAPL at ~1 ms, replayed and constant sources).
    pub update_period: Option<Duration>,
    /// Wraparound range (RAPL `max_energy_range_uj`); `None`: a decrease is a reset.
    pub wrap_at: Option<Joules>,
}

impl CounterParams {
    /// Parameters with the given update period and wrap range.
    pub fn new(update_period: Option<Duration>, wrap_at: Option<Joules>) -> Self {
        Self { update_period, wrap_at }
    }
}

/// The counter estimate of a window.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct CounterEstimate {
    /// Edges interpolated linearly in time between update points.
    pub linear: Joules,
    /// The hybrid: each edge interpolated in proportion to the power stream's integral where
    /// that stream tracks the counter in the neighbouring update intervals, linearly where it
    /// does not (loads faster than the sensor alias). `None` without a power stream.
    pub shaped: Option<Joules>,
    /// Counter decreases treated as resets (segments bridged by the power integral).
    pub resets: u32,
    /// Counter decreases unwrapped with the wrap range.
    pub wraps: u32,
    /// Resets inside the window whose energy could not be bridged (no power stream, no
    /// ordinary segment): `linear` and `shaped` lack that energy and must not be used.
    pub unbridged: u32,
    /// An edge lay outside the counter's update points and was extrapolated.
    pub extrapolated: bool,
    /// Update points inside the window.
    pub points_inside: usize,
    /// One-sigma uncertainty from locating the update points at the two edges.
    pub edge_sigma: Joules,
    /// How far the worse edge lies from counter information: 0 when it lies between two
    /// update points at most 1.5 update periods apart (what the sampler's edge reads
    /// provide), otherwise the distance to the nearer update point (`min(t − a, b − t)`), the
    /// stretch whose energy is interpolated over the long segment `[a, b]` — up to half the
    /// background read interval for a window defined after the fact.
    pub edge_distance: Duration,
}

/// Counter update points: `(time, unwrapped energy)`. A change seen at read `i` happened in
/// `(t[i-1], t[i]]`; with a republication period `U` the point is placed at
/// `t[i] - min(U, t[i]-t[i-1]) / 2`. Unchanged reads more than `U` after the last point are
/// kept as flat points (a flat stretch is not a ramp).
pub fn counter_points(
    reads: &[Sample],
    params: CounterParams,
    power: Option<&[Sample]>,
) -> CounterPoints {
    let u_ns = params.update_period.map_or(0, |d| d.as_nanos() as u64);
    let mut pts: Vec<(u64, f64)> = Vec::with_capacity(reads.len());
    let mut raw_prev: Option<f64> = None;
    let mut acc = 0.0;
    let mut reset_at = Vec::new();
    let mut reset_after = Vec::new();
    let mut wrap_after = Vec::new();
    let mut wrap_at = Vec::new();
    let mut prev_t = None;
    // Resets without a power stream: (index of their point in `pts`, index of the reset).
    let mut bridge: Vec<(usize, usize)> = Vec::new();
    for r in reads {
        let t_point = match prev_t {
            Some(pt) => r.t_ns - (u_ns.min(r.t_ns - pt) / 2),
            None => r.t_ns.saturating_sub(u_ns / 2),
        };
        match raw_prev {
            None => {
                pts.push((t_point, 0.0));
            }
            Some(prev) if r.value == prev => {
                // Unchanged: current as of t - U at least.
                let flat_t = r.t_ns.saturating_sub(u_ns / 2);
                let due = u_ns == 0
                    || pts.last().is_some_and(|&(lt, _)| flat_t > lt.saturating_add(u_ns));
                if due && pts.last().is_some_and(|&(lt, _)| flat_t > lt) {
                    pts.push((flat_t, acc));
                }
            }
            Some(prev) => {
                let mut d = r.value - prev;
                if d < 0.0 {
                    match params.wrap_at {
                        Some(range) => {
                            d += range.0;
                            wrap_at.push(r.t_ns);
                            wrap_after.push(prev_t.unwrap_or(0));
                        }
                        None => {
                            reset_at.push(r.t_ns);
                            reset_after.push(prev_t.unwrap_or(0));
                            let lt = pts.last().map_or(t_point, |p| p.0);
                            // The energy across the reset is unknown: bridge it with the power
                            // stream when there is one, otherwise (below, once the neighbours
                            // are known) at the rate of the nearest ordinary segment. The new
                            // value is not "energy since the reset": a counter may come back
                            // anywhere (a replayed trace of 97 kW came from trusting it).
                            d = match power.and_then(|p| trapezoid(p, lt, t_point)) {
                                Some(e) => e.0,
                                None => {
                                    bridge.push((pts.len(), reset_at.len() - 1));
                                    0.0
                                }
                            };
                        }
                    }
                }
                acc += d;
                if let Some(b) = bridge.last_mut()
                    && b.0 == pts.len()
                    && pts.last().is_some_and(|&(lt, _)| t_point <= lt)
                {
                    b.0 = pts.len() - 1; // merged into the last point below
                }
                if pts.last().is_none_or(|&(lt, _)| t_point > lt) {
                    pts.push((t_point, acc));
                } else if let Some(l) = pts.last_mut() {
                    l.1 = acc;
                }
            }
        }
        raw_prev = Some(r.value);
        prev_t = Some(r.t_ns);
    }
    let unbridged = bridge_resets(&mut pts, &bridge)
        .into_iter()
        .map(|i| (reset_after[i], reset_at[i]))
        .collect();
    CounterPoints {
        points: pts,
        resets: reset_at,
        wraps: wrap_at,
        reset_after,
        wrap_after,
        unbridged,
    }
}

/// Fills the energy of each reset interval (point `k` of `bridge`, whose increment was left at
/// 0) with the rate of the nearest ordinary segment times the interval: the previous segment,
/// else the next. With no ordinary segment at all the energy is unknown: it stays 0 and the
/// reset's index is returned (the value after the reset is not used: a counter may come back
/// anywhere).
fn bridge_resets(pts: &mut [(u64, f64)], bridge: &[(usize, usize)]) -> Vec<usize> {
    let unknown = |k: usize| bridge.iter().any(|b| b.0 == k);
    let mut unbridged = Vec::new();
    for &(k, reset) in bridge {
        if k == 0 || k >= pts.len() {
            unbridged.push(reset);
            continue;
        }
        let rate = |j: usize| -> Option<f64> {
            // Segment (j-1, j), ordinary and of positive length.
            if j == 0 || j >= pts.len() || unknown(j) || pts[j].0 <= pts[j - 1].0 {
                return None;
            }
            Some((pts[j].1 - pts[j - 1].1) / dt(pts[j - 1].0, pts[j].0))
        };
        let r = (1..k).rev().find_map(rate).or_else(|| (k + 1..pts.len()).find_map(rate));
        let Some(r) = r else {
            unbridged.push(reset);
            continue;
        };
        let d = r.max(0.0) * dt(pts[k - 1].0, pts[k].0);
        for p in &mut pts[k..] {
            p.1 += d;
        }
    }
    unbridged
}

/// The counter's republication grid: updates happen at `phase_ns + k * period_ns` (times in the
/// trace's ns). Hopper's NVML energy counter republishes on a strict ~99.95 ms grid of fixed
/// phase (measured on an H200), so once the grid is known every read, however sparse, is the
/// exact cumulative energy at the last grid instant before it.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct UpdateGrid {
    /// Republication period in ns (fractional: the GPU's clock is not the host's).
    pub period_ns: f64,
    /// Time of one update instant, ns.
    pub phase_ns: f64,
    /// Change brackets the fit used.
    pub brackets: usize,
    /// Brackets consistent with the fitted grid.
    pub consistent: usize,
}

impl UpdateGrid {
    /// The last update instant at or before `t` (ns; saturating at 0).
    pub fn floor(&self, t: u64) -> u64 {
        let k = ((t as f64 - self.phase_ns) / self.period_ns).floor();
        (self.phase_ns + k * self.period_ns).max(0.0) as u64
    }
}

/// Fits the counter's update grid from reads closer together than the period: each change
/// between two such reads brackets one update (evidence for an update instant in between),
/// each pair without a change excludes one. For each candidate period (±0.2 % of `nominal`,
/// coarse then fine) the phase with the best score (brackets containing it minus change-free
/// pairs containing it) is found by a sweep; the period is the middle of the best-scoring
/// range (reads that do not sweep the update phase leave a range of periods equally
/// consistent), the phase the middle of the best region. `None` with fewer than 8 brackets,
/// or when fewer than 90 % of the brackets agree with the grid or more than 10 % of the
/// change-free pairs contradict it (a counter that is not on a grid).
///
/// Reads spaced by a non-divisor of the period (the sampler's bursts use 61.8 ms against
/// ~100 ms) sweep the phase and pin the update instants to a few ms; bursts far apart pin the
/// period (its error shrinks as 1/baseline).
pub fn fit_grid(reads: &[Sample], nominal: Duration) -> Option<UpdateGrid> {
    let u = nominal.as_nanos() as f64;
    if u <= 0.0 || reads.len() < 2 {
        return None;
    }
    let t_ref = reads[0].t_ns as f64;
    let pairs = reads
        .windows(2)
        .filter(|w| ((w[1].t_ns - w[0].t_ns) as f64) < 0.9 * u)
        .map(|w| (w[0].t_ns as f64 - t_ref, w[1].t_ns as f64 - t_ref, w[1].value != w[0].value));
    let (br, quiet): (Vec<_>, Vec<_>) = pairs.partition(|p| p.2);
    let strip = |v: Vec<(f64, f64, bool)>| -> Vec<(f64, f64)> {
        v.into_iter().map(|(a, b, _)| (a, b)).collect()
    };
    let (br_all, quiet_all) = (strip(br), strip(quiet));
    // At most 256 of each for the search, spread evenly (bounds the cost on long traces).
    let thin = |v: &[(f64, f64)]| -> Vec<(f64, f64)> {
        let stride = v.len().div_ceil(256).max(1);
        v.iter().step_by(stride).copied().collect()
    };
    let (br, quiet) = (thin(&br_all), thin(&quiet_all));
    if br.len() < 8 {
        return None;
    }
    // The middle of the best-scoring periods of a scan.
    let scan = |centre: f64, step: f64| -> f64 {
        let res: Vec<(f64, i64)> = (-30..=30)
            .map(|k| {
                let p = centre * (1.0 + step * k as f64);
                (p, best_phase(&br, &quiet, p).0)
            })
            .collect();
        let top = res.iter().map(|r| r.1).max().unwrap_or(0);
        let tied: Vec<f64> = res.iter().filter(|r| r.1 == top).map(|r| r.0).collect();
        tied[tied.len() / 2]
    };
    let coarse = scan(u, 6.7e-5);
    let p0 = scan(coarse, 2.3e-6);
    let (_, _, ph0) = best_phase(&br, &quiet, p0);
    let (mut p, mut ph) = (p0, ph0);
    // Refinement: each cluster of close reads (a calibration burst) pins one update instant
    // to the middle of its feasible region; a least-squares line through those instants
    // gives the period from the longest baseline available.
    if let Some((p1, ph1)) = refine(&br_all, &quiet_all, p0, ph0) {
        let score = |p: f64, ph: f64| {
            let k = |t: f64| ((t - ph) / p).floor();
            br.iter().filter(|&&(a, b)| k(b) > k(a)).count() as i64
                - quiet.iter().filter(|&&(a, b)| k(b) > k(a)).count() as i64
        };
        if score(p1, ph1) >= score(p0, ph0) {
            (p, ph) = (p1, ph1);
        }
    }
    let k = |t: f64| ((t - ph) / p).floor();
    let consistent = br.iter().filter(|&&(a, b)| k(b) > k(a)).count();
    let violated = quiet.iter().filter(|&&(a, b)| k(b) > k(a)).count();
    if (consistent as f64) < 0.9 * br.len() as f64 || (violated as f64) > 0.1 * quiet.len() as f64 {
        return None;
    }
    Some(UpdateGrid {
        period_ns: p,
        phase_ns: t_ref + ph.rem_euclid(p),
        brackets: br.len(),
        consistent,
    })
}

/// Best phase for one period: (score = brackets containing it − change-free pairs containing
/// it, width of the best region, its middle in `[0, p)`).
fn best_phase(br: &[(f64, f64)], quiet: &[(f64, f64)], p: f64) -> (i64, f64, f64) {
    let mut ev: Vec<(f64, i64)> = Vec::with_capacity((br.len() + quiet.len()) * 4);
    for (set, w) in [(br, 1i64), (quiet, -1i64)] {
        for &(a, b) in set {
            let lo = a.rem_euclid(p);
            let hi = lo + (b - a);
            // Circular interval: add it and its copy one period later.
            for off in [0.0, p] {
                ev.push((lo + off, w));
                ev.push((hi + off, -w));
            }
        }
    }
    ev.sort_by(|x, y| x.0.total_cmp(&y.0).then(y.1.cmp(&x.1)));
    let (mut c, mut best, mut at, mut width) = (0i64, i64::MIN, 0.0, 0.0);
    for (i, &(t, d)) in ev.iter().enumerate() {
        c += d;
        let end = ev.get(i + 1).map_or(t, |e| e.0);
        if c > best || (c == best && end - t > width) {
            best = c;
            at = 0.5 * (t + end);
            width = end - t;
        }
    }
    (best, width, at.rem_euclid(p))
}

/// Least-squares period and phase through the update instants pinned by each cluster of
/// close reads (clusters split at gaps over 1 s, each with at least 4 brackets). `None` with
/// fewer than two clusters or a baseline under 5 s.
fn refine(br: &[(f64, f64)], quiet: &[(f64, f64)], p0: f64, ph0: f64) -> Option<(f64, f64)> {
    let mut all: Vec<(f64, f64, bool)> = br.iter().map(|&(a, b)| (a, b, true)).collect();
    all.extend(quiet.iter().map(|&(a, b)| (a, b, false)));
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut pts: Vec<(f64, f64, f64)> = Vec::new(); // (n, instant, weight)
    let mut start = 0;
    for i in 1..=all.len() {
        if i < all.len() && all[i].0 - all[i - 1].1 < 1e9 {
            continue;
        }
        let cl = &all[start..i];
        start = i;
        let b: Vec<(f64, f64)> = cl.iter().filter(|x| x.2).map(|x| (x.0, x.1)).collect();
        let q: Vec<(f64, f64)> = cl.iter().filter(|x| !x.2).map(|x| (x.0, x.1)).collect();
        if b.len() < 4 {
            continue;
        }
        let (_, width, mid) = best_phase(&b, &q, p0);
        // The instant of that phase nearest the cluster's middle, and its index on the grid.
        let centre = 0.5 * (cl[0].0 + cl[cl.len() - 1].1);
        let inst = mid + ((centre - mid) / p0).round() * p0;
        let n = ((inst - ph0) / p0).round();
        let w = 1.0 / width.max(1e6).powi(2);
        pts.push((n, inst, w));
    }
    if pts.len() < 2 {
        return None;
    }
    let (n_min, n_max) =
        pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x.0), b.max(x.0)));
    if (n_max - n_min) * p0 < 5e9 {
        return None;
    }
    let sw: f64 = pts.iter().map(|x| x.2).sum();
    let mn = pts.iter().map(|x| x.2 * x.0).sum::<f64>() / sw;
    let mt = pts.iter().map(|x| x.2 * x.1).sum::<f64>() / sw;
    let snn: f64 = pts.iter().map(|x| x.2 * (x.0 - mn).powi(2)).sum();
    let snt: f64 = pts.iter().map(|x| x.2 * (x.0 - mn) * (x.1 - mt)).sum();
    let p = snt / snn;
    if !p.is_finite() || (p / p0 - 1.0).abs() > 2e-3 {
        return None;
    }
    Some((p, mt - p * mn))
}

/// Counter update points snapped to a fitted grid: every read is the exact energy at the last
/// grid instant before it. Reads within 10 % of a period of a grid instant are skipped (which
/// side of the update they saw is ambiguous at the fit's precision); a read that contradicts
/// the grid (a change with no grid instant since the previous read) is dropped. `None` (use
/// [`counter_points`]) when the counter decreased (resets and wraps take the general path) or
/// more than 10 % of the reads contradict the grid (the grid does not describe the reads).
pub fn snapped_points(reads: &[Sample], grid: &UpdateGrid) -> Option<Vec<(u64, f64)>> {
    let guard = 0.1 * grid.period_ns;
    let mut pts: Vec<(u64, f64)> = Vec::with_capacity(reads.len());
    let mut prev: Option<(u64, f64)> = None;
    let base = reads.first()?.value;
    let (mut used, mut dropped) = (0usize, 0usize);
    for r in reads {
        if let Some((_, pv)) = prev
            && r.value < pv
        {
            return None;
        }
        let g = grid.floor(r.t_ns);
        let into = r.t_ns as f64 - g as f64;
        if into < guard || grid.period_ns - into < guard {
            continue;
        }
        if let Some((pg, pv)) = prev
            && (g < pg || (g == pg && r.value != pv))
        {
            dropped += 1;
            continue;
        }
        let v = r.value - base;
        match pts.last_mut() {
            Some(l) if l.0 == g => l.1 = l.1.max(v),
            _ => pts.push((g, v)),
        }
        prev = Some((g, r.value));
        used += 1;
    }
    (dropped * 10 <= used).then_some(pts)
}

/// Update points of a counter and where it reset or wrapped (see [`counter_points`]).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct CounterPoints {
    /// `(time ns, unwrapped energy J)`, strictly increasing in time.
    pub points: Vec<(u64, f64)>,
    /// Read times at which the counter decreased (reset).
    pub resets: Vec<u64>,
    /// Read times at which the counter wrapped.
    pub wraps: Vec<u64>,
    /// For each reset, the time of the read before it (the reset happened in between).
    pub reset_after: Vec<u64>,
    /// For each wrap, the time of the read before it.
    pub wrap_after: Vec<u64>,
    /// Resets whose interval could not be bridged (no power stream, no ordinary segment to
    /// take a rate from): `(time of the read before, time of the read after)`. Their energy is
    /// unknown (counted as 0 in `points`): a window that contains one has no counter estimate.
    pub unbridged: Vec<(u64, u64)>,
}

/// Energy between two update points up to `t`, as a fraction of the segment, shaped by power.
fn shaped_fraction(power: &[Sample], a: u64, b: u64, t: u64) -> Option<f64> {
    // Require the power stream to cover the segment (with one sample period of slack).
    let first = power.first()?.t_ns;
    let last = power.last()?.t_ns;
    if first > a.saturating_add(150_000_000) || last.saturating_add(150_000_000) < b {
        return None;
    }
    let whole = trapezoid(power, a, b)?.0;
    if whole.is_nan() || whole <= 0.0 {
        return None;
    }
    let part = if t <= a { 0.0 } else { trapezoid(power, a, t.min(b))?.0 };
    Some((part / whole).clamp(0.0, 1.0))
}

/// Whether the power stream tracks the counter around segment `i` (ending at point `i`): the
/// ratio of counter increment to power integral over the two segments on each side agrees
/// within 10 %. On loads that vary faster than the sensor's publication period (bursts under
/// 100 ms on Hopper, whose instant field observes 25 ms of every 100 ms) the instant stream
/// aliases, the ratios scatter, and the edge is interpolated linearly instead.
fn shape_trusted(pts: &[(u64, f64)], power: &[Sample], i: usize) -> bool {
    let lo = i.saturating_sub(2).max(1);
    let hi = (i + 2).min(pts.len() - 1);
    let mut rmin = f64::INFINITY;
    let mut rmax = 0.0f64;
    for k in lo..=hi {
        let (a, b) = (pts[k - 1], pts[k]);
        let Some(e) = trapezoid(power, a.0, b.0) else { return false };
        let dc = b.1 - a.1;
        if e.0 <= 0.0 || dc <= 0.0 {
            return false;
        }
        let r = dc / e.0;
        rmin = rmin.min(r);
        rmax = rmax.max(r);
    }
    rmin.is_finite() && rmax / rmin <= 1.10
}

/// Unwrapped energy at time `t` from update points; `(linear, shaped, extrapolated)`.
fn energy_at(
    pts: &[(u64, f64)],
    power: Option<&[Sample]>,
    t: u64,
) -> Option<(f64, Option<f64>, bool)> {
    let n = pts.len();
    if n == 0 {
        return None;
    }
    if n == 1 {
        let (pt, pv) = pts[0];
        let p = power?;
        let off = if t >= pt { trapezoid(p, pt, t)?.0 } else { -trapezoid(p, t, pt)?.0 };
        return Some((pv + off, Some(pv + off), t != pt));
    }
    let i = pts.partition_point(|p| p.0 <= t);
    if i == 0 || i == n {
        // Extrapolate from the nearest segment.
        let (a, b) = if i == 0 { (pts[0], pts[1]) } else { (pts[n - 2], pts[n - 1]) };
        let slope = (b.1 - a.1) / dt(a.0, b.0);
        let anchor = if i == 0 { a } else { b };
        let lin = anchor.1 + slope * (secs(t) - secs(anchor.0));
        let shaped = power.and_then(|p| {
            let off = if t >= anchor.0 {
                trapezoid(p, anchor.0, t)?.0
            } else {
                -trapezoid(p, t, anchor.0)?.0
            };
            Some(anchor.1 + off)
        });
        return Some((lin, shaped, true));
    }
    let (a, b) = (pts[i - 1], pts[i]);
    let f = dt(a.0, t) / dt(a.0, b.0);
    let lin = a.1 + (b.1 - a.1) * f;
    // The hybrid: shaped where the power stream tracks the counter, linear where it aliases.
    let shaped = power.map(|p| {
        if shape_trusted(pts, p, i) {
            shaped_fraction(p, a.0, b.0, t).map_or(lin, |g| a.1 + (b.1 - a.1) * g)
        } else {
            lin
        }
    });
    Some((lin, shaped, false))
}

/// Energy over `[t0, t1]` from a cumulative counter. `reads` are the raw counter reads (J);
/// `power`, when given, is an instant-power stream used to shape the interpolation at the
/// edges and to bridge resets. `None` without reads or when `t1 <= t0`.
pub fn counter_energy(
    reads: &[Sample],
    t0: u64,
    t1: u64,
    params: CounterParams,
    power: Option<&[Sample]>,
) -> Option<CounterEstimate> {
    if t1 <= t0 || reads.is_empty() {
        return None;
    }
    let power = power.filter(|p| p.len() >= 2);
    let mut cp = counter_points(reads, params, power);
    if let Some(u) = params.update_period
        && cp.resets.is_empty()
        && cp.wraps.is_empty()
    {
        // Fit the grid on the reads around the window (the phase drifts slowly against the
        // host clock; a local fit keeps the cost bounded on long traces). The range spans
        // several of the sampler's calibration bursts (one a minute at the defaults).
        let m = 150_000_000_000u64;
        let lo = reads.partition_point(|r| r.t_ns < t0.saturating_sub(m));
        let hi = reads.partition_point(|r| r.t_ns <= t1.saturating_add(m));
        let local = &reads[lo..hi];
        if let Some(g) = fit_grid(local, u)
            && let Some(p) = snapped_points(local, &g)
            && p.len() >= 2
        {
            cp.points = p;
        }
    }
    let unbridged =
        cp.unbridged.iter().filter(|(after, at)| *at > t0 && *after < t1).count() as u32;
    let pts = cp.points;
    // A decrease seen at read r happened in (previous read, r]: it belongs to the window when
    // that interval meets the window (with sparse reads, the read that sees a reset inside the
    // window can come after its end).
    let in_win = |(at, after): (&u64, &u64)| *at > t0 && *after < t1;
    let resets = cp.resets.iter().zip(&cp.reset_after).filter(|x| in_win(*x)).count() as u32;
    let wraps = cp.wraps.iter().zip(&cp.wrap_after).filter(|x| in_win(*x)).count() as u32;
    let (l0, s0, x0) = energy_at(&pts, power, t0)?;
    let (l1, s1, x1) = energy_at(&pts, power, t1)?;
    let shaped = match (s0, s1) {
        (Some(a), Some(b)) => Some(Joules(b - a)),
        _ => None,
    };
    // Edge sigma: the update point at each edge is uncertain by +-w/2, w = min(U, the
    // bracketing segment); the distance to the nearer point bounds how far energy is
    // interpolated at that edge.
    let u = params.update_period.map_or(0.0, |d| d.as_secs_f64());
    // Per edge: (unbracketed distance, localisation width). With a republication period U an
    // edge between two update points at most 1.5 U apart is fully bracketed (distance 0);
    // otherwise the distance is that to the nearer point, the stretch interpolated blind.
    let bracket = |t: u64| -> (f64, f64) {
        let i = pts.partition_point(|p| p.0 <= t);
        if i == 0 || i == pts.len() {
            let d = if i == 0 { pts[0].0 - t.min(pts[0].0) } else { t - pts[i - 1].0.min(t) };
            return (secs(d), u);
        }
        let (a, b) = (pts[i - 1].0, pts[i].0);
        let span = dt(a, b);
        let d = if u > 0.0 && span <= 1.5 * u { 0.0 } else { secs((t - a).min(b - t)) };
        (d, u.min(span))
    };
    let (d0, w0) = bracket(t0);
    let (d1, w1) = bracket(t1);
    let p_at = |t: u64| power.and_then(|p| interpolate(p, t)).unwrap_or(0.0);
    let sig = ((p_at(t0) * w0).powi(2) + (p_at(t1) * w1).powi(2)).sqrt() / 12f64.sqrt();
    let points_inside = pts.iter().filter(|p| p.0 >= t0 && p.0 <= t1).count();
    Some(CounterEstimate {
        linear: Joules(l1 - l0),
        shaped,
        resets,
        wraps,
        unbridged,
        extrapolated: x0 || x1,
        points_inside,
        edge_sigma: Joules(sig),
        edge_distance: Duration::from_secs_f64(d0.max(d1).max(0.0)),
    })
}

/// Peak power seen in `[t0, t1]` in a power stream.
pub fn peak(samples: &[Sample], t0: u64, t1: u64) -> Option<Watts> {
    samples
        .iter()
        .filter(|s| s.t_ns >= t0 && s.t_ns <= t1)
        .map(|s| s.value)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
        .map(Watts)
}

/// Peak power derived from counter points at least `min_dt` apart (no "millions of watts" from
/// tiny intervals).
pub fn counter_peak(pts: &[(u64, f64)], t0: u64, t1: u64, min_dt: Duration) -> Option<Watts> {
    let min = min_dt.as_nanos() as u64;
    let inside: Vec<_> = pts.iter().filter(|p| p.0 >= t0 && p.0 <= t1).collect();
    let mut best: Option<f64> = None;
    let mut j = 0;
    for i in 1..inside.len() {
        while j < i && inside[i].0 - inside[j].0 >= min {
            j += 1;
        }
        if j > 0 {
            let a = inside[j - 1];
            let b = inside[i];
            let p = (b.1 - a.1) / dt(a.0, b.0);
            best = Some(best.map_or(p, |m| m.max(p)));
        }
    }
    best.map(Watts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t_ms: u64, v: f64) -> Sample {
        Sample::new(t_ms * 1_000_000, v)
    }

    #[test]
    fn interpolation_and_holds() {
        let x = [s(0, 0.0), s(10, 10.0)];
        assert_eq!(interpolate(&x, 5_000_000), Some(5.0));
        assert_eq!(interpolate(&x, 20_000_000), Some(10.0));
        assert_eq!(interpolate(&[], 0), None);
    }

    /// The 1-Hz method's definition, one grid point at a time.
    fn paper_1hz_stepwise(samples: &[Sample], t0: u64, t1: u64) -> f64 {
        let (mut e, mut g) = (0.0, t0);
        while g < t1 {
            let i = samples.partition_point(|s| s.t_ns <= g);
            let p = if i == 0 { samples[0].value } else { samples[i - 1].value };
            let next = (g + 1_000_000_000).min(t1);
            e += p * dt(g, next);
            g = next;
        }
        e
    }

    #[test]
    fn paper_1hz_sums_runs_of_grid_points_as_the_stepwise_definition_does() {
        // Samples at irregular times (some several seconds apart, some within one second),
        // windows starting and ending on and off the samples and the grid.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for _ in 0..200 {
            let mut t = rnd(3_000_000_000);
            let mut v = Vec::new();
            for _ in 0..1 + rnd(12) {
                v.push(Sample::new(t, rnd(500) as f64));
                t += 1 + rnd(4_000_000_000);
            }
            let t0 = rnd(t);
            let t1 = t0 + 1 + rnd(20_000_000_000);
            let fast = paper_1hz(&v, t0, t1).unwrap().0;
            let slow = paper_1hz_stepwise(&v, t0, t1);
            assert!((fast - slow).abs() <= 1e-9 * slow.abs().max(1.0), "{fast} vs {slow}");
        }
        // Near the end of u64: no overflow, the last partial second counted.
        let v = [Sample::new(u64::MAX - 5_000_000_000, 10.0)];
        let e = paper_1hz(&v, u64::MAX - 2_500_000_000, u64::MAX).unwrap().0;
        assert!((e - 25.0).abs() < 1e-3, "{e}");
    }

    #[test]
    fn zoh_step() {
        let x = [s(0, 100.0), s(500, 200.0)];
        let e = zoh(&x, 0, 1_000_000_000).unwrap();
        assert!((e.0 - 150.0).abs() < 1e-9);
    }

    #[test]
    fn counter_points_flat_is_not_ramp() {
        // Counter flat for 1 s, then +100 J; with U = 100 ms the energy lands in the last
        // update period, not spread over the flat second.
        let mut reads: Vec<Sample> = (0..=20).map(|i| s(i * 50, 0.0)).collect();
        reads.push(s(1050, 100.0));
        let p = CounterParams::new(Some(Duration::from_millis(100)), None);
        let e = counter_energy(&reads, 0, 900_000_000, p, None).unwrap();
        assert!(e.linear.0.abs() < 1e-9, "{e:?}");
    }

    #[test]
    fn grid_fit_and_snap_recover_updates() {
        // Counter at 500 W republished every 99.95 ms from 37 ms; reads every 43 ms for 2 s,
        // then every 500 ms: the fitted grid places every sparse read exactly.
        let (u, ph) = (99.95e6, 37e6);
        let e = |t: u64| {
            let k = ((t as f64 - ph) / u).floor();
            (ph + k * u).max(0.0) * 1e-9 * 500.0
        };
        let mut reads: Vec<Sample> =
            (1..47).map(|i| i * 43_000_000u64).map(|t| Sample::new(t, e(t))).collect();
        reads.extend((5..20).map(|i| i * 500_000_000u64 + 11).map(|t| Sample::new(t, e(t))));
        reads.extend(
            (0..46).map(|i| 10_000_000_000 + i * 43_000_000u64).map(|t| Sample::new(t, e(t))),
        );
        let g = fit_grid(&reads, Duration::from_millis(100)).unwrap();
        assert!((g.period_ns - u).abs() < 0.1e6, "{g:?}");
        let pts = snapped_points(&reads, &g).unwrap();
        for r in &reads[46..61] {
            let p = pts.iter().find(|p| p.0 == g.floor(r.t_ns)).unwrap();
            let truth = (r.t_ns as f64 - ph).rem_euclid(u);
            assert!((g.floor(r.t_ns) as f64 - (r.t_ns as f64 - truth)).abs() < 20e6);
            assert!((p.1 - (r.value - reads[0].value)).abs() < 1e-9);
        }
    }
}
