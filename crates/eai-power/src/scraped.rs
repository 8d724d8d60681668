//! Scraped sources (a Prometheus endpoint such as NVIDIA's DCGM exporter): the resolution
//! statement and hard error bound that every window of such a source carries
//! ([`Flag::Scraped`]).
//!
//! A scraped value is the exporter's cached sample: it changes at most once per collection
//! interval and may be up to that old when read, so nothing finer than the interval is
//! resolved. The bound below uses only that, and that the energy counter never decreases.

use std::time::Duration;

use eai_core::Joules;

use crate::measurement::Flag;
use crate::source::SourceInfo;
use crate::timeline::Sample;

/// [`SourceInfo`] metadata key a scraped source sets to its scrape interval in milliseconds;
/// windows of such a source carry [`Flag::Scraped`].
pub const SCRAPE_INTERVAL_META: &str = "scrape_interval_ms";

/// Neighbourhood of the window searched for value changes (the exporter's update interval).
const NEIGHBOURHOOD_NS: u64 = 120_000_000_000;

/// Resolution and energy bracket of a window `[t0, t1]` (ns) of a scraped cumulative counter.
///
/// `reads` are the counter reads in joules, `interval` the scrape interval. The stated
/// resolution `L` is the larger of `interval` and the longest spacing between successive
/// value changes near the window (an exporter that collects every 30 s while being scraped
/// every second has `L` ≈ 30 s). Each read's value was produced no earlier than `L` before
/// the read and no later than the read, and the counter is monotone, so the true energy lies
/// in `[c⁻(t1) − c⁺(t0), c⁺(t1) − c⁻(t0)]`, where `c⁻(t)` is the last read before `t` and
/// `c⁺(t)` the first read more than `L` after `t` (each with a margin of a tenth of the
/// interval for the read's own duration). The bracket is `None` when the counter decreased
/// (a reset) or no read brackets an edge (the window ends within `L` of the last read).
pub fn scrape_bound(
    reads: &[Sample],
    t0: u64,
    t1: u64,
    interval: Duration,
) -> (Duration, Option<(Joules, Joules)>) {
    let iv = interval.as_nanos().min(u128::from(u64::MAX)) as u64;
    let lo_i = reads.partition_point(|r| r.t_ns < t0.saturating_sub(NEIGHBOURHOOD_NS));
    let hi_i = reads.partition_point(|r| r.t_ns <= t1.saturating_add(NEIGHBOURHOOD_NS));
    let near = &reads[lo_i..hi_i];
    if near.windows(2).any(|w| w[1].value < w[0].value) {
        return (interval, None);
    }
    let mut last_change: Option<u64> = None;
    let mut spacing = iv;
    for w in near.windows(2) {
        if w[1].value != w[0].value {
            if let Some(c) = last_change {
                spacing = spacing.max(w[1].t_ns - c);
            }
            last_change = Some(w[1].t_ns);
        }
    }
    let res = Duration::from_nanos(spacing);
    let margin = iv / 10;
    let c_minus = |t: u64| {
        let i = near.partition_point(|r| r.t_ns.saturating_add(margin) <= t);
        (i > 0).then(|| near[i - 1].value)
    };
    let c_plus = |t: u64| {
        let after = t.saturating_add(spacing).saturating_add(margin);
        near.get(near.partition_point(|r| r.t_ns < after)).map(|r| r.value)
    };
    let bracket = match (c_minus(t0), c_plus(t0), c_minus(t1), c_plus(t1)) {
        (Some(m0), Some(p0), Some(m1), Some(p1)) => {
            Some((Joules((m1 - p0).max(0.0)), Joules((p1 - m0).max(0.0))))
        }
        _ => None,
    };
    (res, bracket)
}

/// The [`Flag::Scraped`] of a window, for sources that declare a scrape interval.
pub(crate) fn flag(
    info: &SourceInfo,
    counter: Option<&[Sample]>,
    energy: Option<Joules>,
    t0: u64,
    t1: u64,
) -> Option<Flag> {
    let ms: u64 = info.meta(SCRAPE_INTERVAL_META)?.trim().parse().ok()?;
    let interval = Duration::from_millis(ms);
    let (res, bracket) = match counter {
        Some(c) if t1 > t0 => scrape_bound(c, t0, t1, interval),
        _ => (interval, None),
    };
    let bound_j = match (bracket, energy) {
        (Some((lo, hi)), Some(e)) => Some((e.0 - lo.0).max(hi.0 - e.0).max(0.0)),
        _ => None,
    };
    Some(Flag::Scraped { interval_ms: res.as_millis().min(u128::from(u32::MAX)) as u32, bound_j })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A 400 W counter collected every second at phase 0.3 s, read every 0.5 s.
    fn reads() -> Vec<Sample> {
        (0..60)
            .map(|i| {
                let t = i as f64 * 0.5;
                let collected = ((t - 0.3) / 1.0).floor() + 0.3;
                Sample::new((t * 1e9) as u64, 400.0 * collected.max(0.0))
            })
            .collect()
    }

    #[test]
    fn bracket_contains_the_truth_and_states_the_update_interval() {
        let r = reads();
        let (t0, t1) = (5_250_000_000u64, 20_700_000_000u64);
        let (res, b) = scrape_bound(&r, t0, t1, Duration::from_millis(500));
        let (lo, hi) = b.unwrap();
        let truth = 400.0 * (t1 - t0) as f64 * 1e-9;
        assert!(lo.0 <= truth && truth <= hi.0, "{lo:?} {truth} {hi:?}");
        assert!(res >= Duration::from_millis(1000), "{res:?}");
        // The bracket is a few intervals of energy wide, not unbounded.
        assert!(hi.0 - lo.0 <= 400.0 * 6.0, "{lo:?} {hi:?}");
    }

    #[test]
    fn reset_or_open_end_gives_no_bracket() {
        let mut r = reads();
        assert!(
            scrape_bound(&r, 5_000_000_000, 29_000_000_000, Duration::from_secs(1)).1.is_none()
        );
        r[30].value = 1.0;
        assert!(
            scrape_bound(&r, 5_000_000_000, 10_000_000_000, Duration::from_secs(1)).1.is_none()
        );
    }
}
