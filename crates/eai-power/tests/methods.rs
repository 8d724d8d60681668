//! Integration methods against synthetic signals with known integrals.

use std::time::Duration;

use eai_power::integrate::{
    CounterParams, averaged_shifted, counter_energy, paper_1hz, trapezoid, two_read_delta, zoh,
};
use eai_power::{Domain, Provenance, Sample, Signal, SignalSpec, SourceInfo, Timeline};
use proptest::prelude::*;

const S: u64 = 1_000_000_000;

/// Samples `f` every `dt_ms` from 0 to `end_s`.
fn sample(f: impl Fn(f64) -> f64, dt_ms: u64, end_s: f64) -> Vec<Sample> {
    let n = (end_s * 1000.0 / dt_ms as f64) as u64;
    (0..=n)
        .map(|i| {
            let t = i * dt_ms * 1_000_000;
            Sample::new(t, f(t as f64 * 1e-9))
        })
        .collect()
}

/// Exact integral of a piecewise-constant power given as (start_s, watts) steps.
fn step_power(steps: &[(f64, f64)]) -> impl Fn(f64) -> f64 + '_ {
    move |t| steps.iter().rev().find(|(s, _)| t >= *s).map_or(steps[0].1, |s| s.1)
}

fn step_energy(steps: &[(f64, f64)], a: f64, b: f64) -> f64 {
    let n = 200_000;
    let p = step_power(steps);
    (0..n).map(|i| p(a + (b - a) * (i as f64 + 0.5) / n as f64)).sum::<f64>() * (b - a) / n as f64
}

/// NVML-like counter: republished every `u` s at phase `phase`, holding the exact integral up
/// to the last update; read every `read` s.
fn nvml_counter(
    energy: impl Fn(f64) -> f64,
    u: f64,
    phase: f64,
    read: f64,
    end: f64,
) -> Vec<Sample> {
    let n = (end / read) as u64;
    (1..=n)
        .map(|i| {
            let t = i as f64 * read;
            let last_update = ((t - phase) / u).floor() * u + phase;
            Sample::new((t * 1e9) as u64, energy(last_update.max(0.0)))
        })
        .collect()
}

#[test]
fn trapezoid_is_exact_on_ramps_with_edges_inside_samples() {
    let ramp = sample(|t| 100.0 + 50.0 * t, 10, 10.0);
    let (a, b) = (1.2345, 7.891);
    let exact = 100.0 * (b - a) + 25.0 * (b * b - a * a);
    let e = trapezoid(&ramp, (a * 1e9) as u64, (b * 1e9) as u64).unwrap();
    assert!((e.0 - exact).abs() < 1e-6, "{} vs {exact}", e.0);
}

#[test]
fn step_error_is_bounded_by_one_sample_period() {
    let steps = [(0.0, 100.0), (1.003, 500.0), (2.2, 80.0)];
    let p = sample(step_power(&steps), 10, 4.0);
    let exact = step_energy(&steps, 0.5, 3.0);
    let e = trapezoid(&p, S / 2, 3 * S).unwrap();
    // Each edge of the step is smeared over one 10 ms period: at most ΔP·dt/2 per step.
    assert!(
        (e.0 - exact).abs() <= 400.0 * 0.01 / 2.0 + 420.0 * 0.01 / 2.0 + 1e-6,
        "{} vs {exact}",
        e.0
    );
    let z = zoh(&p, S / 2, 3 * S).unwrap();
    assert!((z.0 - exact).abs() <= 400.0 * 0.01 + 420.0 * 0.01, "{} vs {exact}", z.0);
}

#[test]
fn burst_shorter_than_sampling_period_is_caught_by_counter_not_by_instant_stream() {
    // 100 W with a 30 ms burst to 1000 W between two 100 ms instant samples.
    let steps = [(0.0, 100.0), (1.04, 1000.0), (1.07, 100.0)];
    let truth = step_energy(&steps, 0.5, 2.0);
    let instant = sample(step_power(&steps), 100, 3.0);
    let energy = |t: f64| step_energy(&steps, 0.0, t);
    let counter: Vec<Sample> = (0..=60)
        .map(|i| {
            let t = i as f64 * 0.05;
            Sample::new((t * 1e9) as u64, energy(t))
        })
        .collect();
    let i = trapezoid(&instant, S / 2, 2 * S).unwrap().0;
    assert!((truth - i - 27.0).abs() < 0.5, "instant stream misses the burst: {i} vs {truth}");
    let c =
        counter_energy(&counter, S / 2, 2 * S, CounterParams::default(), Some(&instant)).unwrap();
    assert!((c.linear.0 - truth).abs() < 0.05, "{c:?} vs {truth}");
    assert!((c.shaped.unwrap().0 - truth).abs() < 0.05, "{c:?} vs {truth}");
}

#[test]
fn paper_1hz_samples_averaged_power_once_a_second() {
    // Averaged power steps from 100 to 300 W at 2.5 s; 1 Hz sampling from 0 sees 100 W for the
    // samples at 0,1,2 and 300 W at 3,4: 3*100 + 1.5*300 over a 4.5 s window.
    let avg = sample(step_power(&[(0.0, 100.0), (2.5, 300.0)]), 100, 6.0);
    let e = paper_1hz(&avg, 0, 4_500_000_000).unwrap();
    assert!((e.0 - (300.0 + 450.0)).abs() < 1e-9, "{e:?}");
    assert!((e.to_watt_hours() - 750.0 / 3600.0).abs() < 1e-12);
}

#[test]
fn averaged_shifted_recovers_a_padded_step() {
    // A 1-s boxcar of a step load, compensated by its 0.5 s group delay.
    let steps = [(0.0, 80.0), (2.0, 690.0), (6.0, 80.0)];
    let raw = step_power(&steps);
    let boxcar = |t: f64| {
        let n = 200;
        (0..n).map(|i| raw(t - 1.0 + (i as f64 + 0.5) / n as f64)).sum::<f64>() / n as f64
    };
    let avg = sample(boxcar, 10, 10.0);
    let truth = step_energy(&steps, 1.0, 7.0);
    let e = averaged_shifted(&avg, S, 7 * S, Duration::from_secs(1)).unwrap();
    assert!((e.0 - truth).abs() / truth < 0.002, "{} vs {truth}", e.0);
    let unshifted = trapezoid(&avg, 2 * S, 6 * S).unwrap();
    let truth_load = step_energy(&steps, 2.0, 6.0);
    assert!((unshifted.0 - truth_load).abs() / truth_load > 0.05, "lag visible unshifted");
}

#[test]
fn two_read_delta_quantises_to_counter_updates() {
    let counter = nvml_counter(|t| 500.0 * t, 0.1, 0.03, 0.05, 10.0);
    let e = two_read_delta(&counter, S, 6 * S).unwrap();
    assert!((e.0 - 2500.0).abs() <= 500.0 * 0.1 + 1e-6);
}

#[test]
fn counter_with_reset_is_integrated_in_segments() {
    let mut c: Vec<Sample> = (0..=40)
        .map(|i| Sample::new(i * 50_000_000, 1_000_000.0 + 200.0 * i as f64 * 0.05))
        .collect();
    // Driver reload at 2.025 s: counter restarts near 0.
    let base = c.len() as u64;
    for i in 0..40 {
        c.push(Sample::new((base + i) * 50_000_000, 200.0 * (i as f64 * 0.05 + 0.025)));
    }
    let p: Vec<Sample> = (0..400).map(|i| Sample::new(i * 10_000_000, 200.0)).collect();
    let e = counter_energy(&c, S / 2, 3 * S, CounterParams::default(), Some(&p)).unwrap();
    assert_eq!(e.resets, 1);
    assert!((e.linear.0 - 500.0).abs() < 1.0, "{e:?}");
    // Never abs(): a naive delta would be hugely negative or huge.
}

#[test]
fn rapl_wrap_is_unwrapped() {
    let range = 1000.0; // J
    let c: Vec<Sample> = (0..=100)
        .map(|i| Sample::new(i * 100_000_000, (900.0 + 50.0 * i as f64 * 0.1) % range))
        .collect();
    let params = CounterParams::new(None, Some(eai_core::Joules(range)));
    let e = counter_energy(&c, 0, 10 * S, params, None).unwrap();
    assert_eq!(e.wraps, 1);
    assert!((e.linear.0 - 500.0).abs() < 1e-6, "{e:?}");
}

#[test]
fn timeline_measure_chooses_counter_and_reports_all_methods() {
    let info = SourceInfo::new("gpu", "gpu", Domain::Gpu, Provenance::Synthetic)
        .with_signal(SignalSpec::new(Signal::InstantPower))
        .with_signal(SignalSpec::new(Signal::AveragePower).averaging_window(Duration::from_secs(1)))
        .with_signal(
            SignalSpec::new(Signal::EnergyCounter).update_period(Duration::from_millis(100)),
        );
    let mut tl = Timeline::new(vec![info]);
    let p = 400.0;
    for s in sample(|_| p, 10, 12.0) {
        tl.push(0, Signal::InstantPower, s);
    }
    for s in sample(|_| p, 100, 12.0) {
        tl.push(0, Signal::AveragePower, s);
    }
    for s in nvml_counter(|t| p * t, 0.1, 0.037, 0.05, 12.0) {
        tl.push(0, Signal::EnergyCounter, s);
    }
    let m = tl.measure("w", 2 * S + 123_456_789, 8 * S).unwrap();
    let d = &m.devices[0];
    let truth = p * (8.0 - 2.123456789);
    assert_eq!(d.method, Some(eai_power::Method::CounterShaped));
    for (name, e) in [
        ("shaped", d.counter_shaped),
        ("linear", d.counter_linear),
        ("instant", d.instant_integral),
        ("paper", d.paper_1hz),
        ("avg", d.average_shifted),
    ] {
        let e = e.unwrap().0;
        assert!((e - truth).abs() / truth < 0.005, "{name}: {e} vs {truth}");
    }
    assert!(d.disagreement.unwrap().abs() < 0.005);
    assert!(d.flags.is_empty(), "{:?}", d.flags);
    assert!((d.mean_power.unwrap().0 - p).abs() < 2.0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// NVML-like counter (100 ms updates, unknown phase, read at 20 Hz) on a load with a step:
    /// the shaped counter estimate is within one read half-period of power at each edge.
    #[test]
    fn shaped_counter_error_bounded(phase in 0.0f64..0.1, a in 1.0f64..3.0, len in 0.1f64..6.0, step_at in 1.0f64..8.0, p1 in 50.0f64..700.0, p2 in 50.0f64..700.0) {
        let steps = [(0.0, p1), (step_at, p2)];
        let b = a + len;
        let ef = |t: f64| if t <= step_at { p1 * t } else { p1 * step_at + p2 * (t - step_at) };
        let counter = nvml_counter(ef, 0.1, phase, 0.05, 12.0);
        let instant = sample(step_power(&steps), 10, 12.0);
        let truth = ef(b) - ef(a);
        let params = CounterParams::new(Some(Duration::from_millis(100)), None);
        let e = counter_energy(&counter, (a * 1e9) as u64, (b * 1e9) as u64, params, Some(&instant)).unwrap();
        let bound = 2.0 * p1.max(p2) * 0.05 + 2.0 * (p1 - p2).abs() * 0.01 + 1e-6;
        prop_assert!((e.shaped.unwrap().0 - truth).abs() <= bound, "{:?} vs {truth}", e);
        prop_assert!((e.linear.0 - truth).abs() <= bound + (p1 - p2).abs() * 0.1, "{:?} vs {truth}", e);
    }

    /// Additivity and non-negativity of the power integral.
    #[test]
    fn trapezoid_additive(vals in proptest::collection::vec(0.0f64..1000.0, 3..200), a in 0u64..1000, m in 0u64..1000, b in 0u64..1000) {
        let s: Vec<Sample> = vals.iter().enumerate().map(|(i, v)| Sample::new(i as u64 * 10_000_000, *v)).collect();
        let mut t = [a * 2_000_000, m * 2_000_000, b * 2_000_000];
        t.sort();
        prop_assume!(t[0] < t[1] && t[1] < t[2]);
        let whole = trapezoid(&s, t[0], t[2]).unwrap().0;
        let parts = trapezoid(&s, t[0], t[1]).unwrap().0 + trapezoid(&s, t[1], t[2]).unwrap().0;
        prop_assert!((whole - parts).abs() < 1e-6 * whole.max(1.0));
        prop_assert!(whole >= 0.0);
    }
}
