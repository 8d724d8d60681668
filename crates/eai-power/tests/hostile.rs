//! Hostile traces (issue 15, item 7) and faults injected on cue into real sources (item 8).
//! Every trace is built here.

use std::path::Path;
use std::time::{Duration, Instant};

use eai_core::{Joules, Watts};
use eai_power::{
    ConstantSource, Domain, Error, EventKind, Fault, FaultySource, Flag, Meter, MeterConfig,
    PowerSource, Provenance, ReplaySource, Sample, Signal, SignalSpec, SourceError, SourceInfo,
    Timeline,
};

/// A CSV trace of one source `g`: `rows` of (signal, t_s, value).
fn csv(dir: &Path, name: &str, rows: &[(&str, f64, f64)]) -> std::path::PathBuf {
    let mut s = String::from("source,signal,t_s,value\n");
    for (sig, t, v) in rows {
        s.push_str(&format!("g,{sig},{t},{v}\n"));
    }
    let p = dir.join(name);
    std::fs::write(&p, s).unwrap();
    p
}

/// 200 W for 1 s sampled every 10 ms; the counter falls from 100 kJ to 50 kJ at 0.5 s (a reset
/// to a value that is not zero: what produced 97 kW before).
fn reset_rows(with_power: bool) -> Vec<(&'static str, f64, f64)> {
    let mut rows = Vec::new();
    for i in 0..=100 {
        let t = i as f64 * 0.01;
        let c = if t < 0.5 { 100_000.0 + 200.0 * t } else { 50_000.0 + 200.0 * (t - 0.5) };
        rows.push(("counter", t, c));
        if with_power {
            rows.push(("instant", t, 200.0));
        }
    }
    rows
}

fn replay_meter(tl: &Timeline) -> Meter {
    let srcs: Vec<Box<dyn PowerSource>> =
        ReplaySource::all(tl).unwrap().into_iter().map(|s| Box::new(s) as _).collect();
    Meter::start(srcs, MeterConfig::new()).unwrap()
}

#[test]
fn a_decreasing_counter_is_a_flagged_reset_bridged_at_a_plausible_rate() {
    let dir = tempfile::tempdir().unwrap();
    for with_power in [false, true] {
        let p = csv(dir.path(), "reset.csv", &reset_rows(with_power));
        let tl = Timeline::load(&p).unwrap();
        // Analysed directly.
        let m = tl.measure("w", 100_000_000, 900_000_000).unwrap();
        let d = &m.devices[0];
        assert!(d.has(&Flag::CounterReset), "{m}");
        let e = d.energy.unwrap().0;
        assert!((e - 160.0).abs() < 8.0, "0.8 s at 200 W is 160 J, got {e} ({m})");
        // Replayed live: the decrease reaches the live analysis and is flagged there too; the
        // reset interval is bridged at the rate the live reads saw before it.
        let meter = replay_meter(&tl);
        std::thread::sleep(Duration::from_millis(250));
        let (_, m) = meter.measure("w", || std::thread::sleep(Duration::from_millis(600))).unwrap();
        let d = &m.devices[0];
        assert!(d.has(&Flag::CounterReset), "{m}");
        let watts = d.energy.unwrap().0 / m.duration.0;
        assert!(watts > 100.0 && watts < 400.0, "mean power {watts} W, never kW ({m})");
        meter.stop().unwrap();
        // With no information at all around the reset (two counter reads, one each side, no
        // power stream) the energy is unknown: no figure, flagged, never the value after it.
        if !with_power {
            let mut few = Timeline::new(tl.sources.clone());
            few.push(0, Signal::EnergyCounter, Sample::new(100_000_000, 100_020.0));
            few.push(0, Signal::EnergyCounter, Sample::new(900_000_000, 50_080.0));
            let m = few.measure("w", 100_000_000, 900_000_000).unwrap();
            let d = &m.devices[0];
            assert!(d.has(&Flag::CounterReset) && d.has(&Flag::NoData), "{m}");
            assert_eq!(d.energy, None, "{m}");
        }
    }
}

#[test]
fn a_zero_update_period_is_an_error_naming_the_source() {
    let info = SourceInfo::new("gpu0", "gpu0", Domain::Gpu, Provenance::Replayed)
        .with_signal(SignalSpec::new(Signal::EnergyCounter).update_period(Duration::ZERO));
    let mut tl = Timeline::new(vec![info]);
    for i in 0..100u64 {
        tl.push(0, Signal::EnergyCounter, Sample::new(i * 10_000_000, i as f64));
    }
    // Through a JSON file, as `--replay` reads it.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.json");
    tl.save(&p).unwrap();
    let tl = Timeline::load(&p).unwrap();
    match ReplaySource::new(&tl, 0) {
        Err(Error::Config { field, reason }) => {
            assert!(field.contains("update_period"), "{field}");
            assert!(reason.contains("gpu0"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn timestamps_beyond_the_trace_range_are_refused_and_replay_never_overflows() {
    let dir = tempfile::tempdir().unwrap();
    let p = csv(dir.path(), "far.csv", &[("instant", 0.0, 10.0), ("instant", 1.9e10, 10.0)]);
    match Timeline::load(&p) {
        Err(Error::Parse { what, reason }) => {
            assert!(what.contains("record 2"), "{what}");
            assert!(reason.contains("beyond"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let info = SourceInfo::new("g", "g", Domain::Gpu, Provenance::Replayed)
        .with_signal(SignalSpec::new(Signal::InstantPower));
    let mut tl = Timeline::new(vec![info]);
    tl.push(0, Signal::InstantPower, Sample::new(u64::MAX - 5, 10.0));
    let p = dir.path().join("far.json");
    tl.save(&p).unwrap();
    assert!(matches!(Timeline::load(&p), Err(Error::Parse { .. })));
    // A timeline built in code near u64::MAX replays without overflowing: instant power and
    // counter agree (issue 15: 0.001 J against 5 J).
    let info = SourceInfo::new("g", "g", Domain::Gpu, Provenance::Replayed)
        .with_signal(SignalSpec::new(Signal::InstantPower))
        .with_signal(SignalSpec::new(Signal::EnergyCounter));
    let mut tl = Timeline::new(vec![info]);
    let t0 = u64::MAX - 3_000_000_000;
    for i in 0..300u64 {
        let t = t0 + i * 10_000_000;
        tl.push(0, Signal::InstantPower, Sample::new(t, 10.0));
        tl.push(0, Signal::EnergyCounter, Sample::new(t, 10.0 * i as f64 * 0.01));
    }
    let meter = replay_meter(&tl);
    let (_, m) = meter.measure("w", || std::thread::sleep(Duration::from_millis(600))).unwrap();
    let d = &m.devices[0];
    let (e, i) = (d.energy.unwrap().0, d.instant_integral.unwrap().0);
    assert!((e - 10.0 * m.duration.0).abs() < 1.0, "{m}");
    assert!((e - i).abs() < 1.0, "counter {e} J vs instant {i} J ({m})");
}

/// Runs `f` on a thread and fails the test if it has not finished within `limit` (a hang
/// must fail, not stall the suite).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).unwrap_or_else(|_| panic!("did not finish within {limit:?}"))
}

#[test]
fn a_trace_spanning_centuries_is_measured_in_time_proportional_to_its_samples() {
    // The replay fuzzer's hang (fuzz/regressions/replay/): one row at t_s = 5.744e11 s. Such a
    // row is beyond what a trace holds and is refused at load, naming it.
    let dir = tempfile::tempdir().unwrap();
    let reg = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions/replay/timeout-e4e71bdb4dfcb211842c806698ac22a0324fd38b");
    let bytes = std::fs::read(&reg).unwrap();
    match Timeline::read_csv(bytes.as_slice(), "regression.csv") {
        Err(Error::Parse { what, reason }) => {
            assert!(what.contains("record 14"), "{what}");
            assert!(reason.contains("beyond"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // Just inside the range (4e9 s, 127 years): accepted, and every window over it, whole,
    // halves and a baseline, is computed in time proportional to the samples, not to the
    // seconds spanned (the 1-Hz method stepped through every second: 4e9 steps).
    let mut rows: Vec<(&str, f64, f64)> =
        (0..=12).map(|i| ("instant", i as f64 * 0.01, 30.0)).collect();
    rows.push(("instant", 4.0e9, 30.0));
    rows.extend((0..=12).map(|i| ("average", i as f64 * 0.01, 30.0)));
    rows.push(("average", 4.0e9, 30.0));
    let p = csv(dir.path(), "centuries.csv", &rows);
    let tl = Timeline::load(&p).unwrap();
    let end = tl.end_ns();
    assert_eq!(end, 4_000_000_000_000_000_000);
    let ms = within(Duration::from_secs(20), move || {
        let mut out = Vec::new();
        for (a, b) in [(0, end), (0, end / 2), (end / 2, end)] {
            out.push(tl.measure("w", a, b).unwrap());
        }
        out.push(match tl.baseline(0, end) {
            Err(Error::Config { field, reason }) => {
                assert!(field.contains("baseline"), "{field}: {reason}");
                tl.measure("ok", 0, 1_000_000_000).unwrap()
            }
            other => panic!("a 127-year baseline: {other:?}"),
        });
        out
    });
    for m in &ms {
        let d = &m.devices[0];
        let e = d.energy.unwrap().0;
        // 30 W throughout: every method gives 30 W × the window (relative to its length).
        assert!((e / m.duration.0 - 30.0).abs() < 1e-6, "{m}");
        let p = d.paper_1hz.unwrap().0;
        assert!((p / m.duration.0 - 30.0).abs() < 1e-6, "1 Hz: {p} J ({m})");
    }
}

#[test]
fn an_absurd_power_sample_is_rejected_never_inf_joules() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows: Vec<(&str, f64, f64)> =
        (0..=100).map(|i| ("instant", i as f64 * 0.01, 100.0)).collect();
    rows[50].2 = 1e308;
    let p = csv(dir.path(), "absurd.csv", &rows);
    let tl = Timeline::load(&p).unwrap();
    assert_eq!(tl.channel(0, Signal::InstantPower).unwrap().rejected, 1);
    let m = tl.measure("w", 0, 1_000_000_000).unwrap();
    let e = m.devices[0].energy.unwrap().0;
    assert!((e - 100.0).abs() < 1e-6, "{m}");
    // Replayed: the source says that rows were dropped at load.
    let r = ReplaySource::new(&tl, 0).unwrap();
    assert!(r.info().meta.iter().any(|(k, v)| k == "rejected_at_load" && v == "1"));
    // A live source returning it: rejected, counted, flagged; energy stays finite.
    struct Absurd;
    impl PowerSource for Absurd {
        fn info(&self) -> SourceInfo {
            SourceInfo::new("a", "a", Domain::Gpu, Provenance::Synthetic)
                .with_signal(SignalSpec::new(Signal::InstantPower))
        }
        fn read(&self, _: Signal) -> Result<eai_power::Reading, SourceError> {
            Ok(eai_power::Reading::Power(Watts(1e308)))
        }
    }
    let meter = Meter::start(vec![Box::new(Absurd)], MeterConfig::new()).unwrap();
    let (_, m) = meter.measure("w", || std::thread::sleep(Duration::from_millis(300))).unwrap();
    let d = &m.devices[0];
    assert!(d.energy.is_none_or(|e| e.0.is_finite()), "{m}");
    assert!(d.flags.iter().any(|f| matches!(f, Flag::RejectedSamples { .. })), "{m}");
    meter.stop().unwrap();
}

#[test]
fn an_empty_replay_trace_is_an_error_not_a_missing_sensor() {
    let dir = tempfile::tempdir().unwrap();
    let p = csv(dir.path(), "empty.csv", &[]);
    let tl = Timeline::load(&p).unwrap();
    assert!(matches!(ReplaySource::all(&tl), Err(Error::Config { .. })));
    let mut opts = eai_power::CommandOptions::default();
    opts.replay = Some(p.clone());
    match eai_power::discover(&opts) {
        Err(Error::Config { reason, .. }) => assert!(reason.contains("empty.csv"), "{reason}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("an empty trace replayed as no sensor"),
    }
}

// ---- Faults on cue (item 8): windows keep what was recorded, flagged, never zero, never a
// hang past a timeout.

fn faulty(fault: Fault) -> Box<dyn PowerSource> {
    Box::new(FaultySource::new(ConstantSource::new(Watts(100.0))).with(fault))
}

/// Runs one 1-s window from 0.3 s to 1.3 s after the source's first read with the fault (faults
/// strike at 0.7 s), stops the meter, and returns the window, the trace and how long the stop
/// took.
fn window_with(fault: Fault) -> (eai_power::Measurement, Timeline, Duration) {
    let meter = Meter::start(vec![faulty(fault)], MeterConfig::new()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (_, m) = meter.measure("w", || std::thread::sleep(Duration::from_millis(1000))).unwrap();
    let t = Instant::now();
    let s = meter.stop().unwrap();
    (m, s.timeline, t.elapsed())
}

fn assert_kept(m: &eai_power::Measurement, lo: f64) {
    let e = m.devices[0].energy.expect("energy kept").0;
    assert!(e >= lo && e <= 100.0 * m.duration.0 * 1.05, "energy {e} J ({m})");
}

#[test]
fn an_nvml_error_mid_window_keeps_the_window() {
    let (m, tl, _) = window_with(Fault::Error {
        signal: None,
        from: Duration::from_millis(600),
        until: Duration::from_millis(800),
        error: SourceError::Transient("NVML_ERROR_UNKNOWN".into()),
    });
    assert_kept(&m, 90.0);
    assert!(tl.events.iter().any(|e| matches!(e.kind, EventKind::Transient { .. })));
}

#[test]
fn a_gpu_lost_mid_window_keeps_the_energy_up_to_the_loss() {
    let (m, _, _) = window_with(Fault::Lost { at: Duration::from_millis(700) });
    assert!(m.has(&Flag::DeviceLost), "{m}");
    assert_kept(&m, 25.0);
}

#[test]
fn a_counter_reset_mid_window_is_flagged_and_bridged() {
    let (m, _, _) =
        window_with(Fault::CounterReset { at: Duration::from_millis(700), to: Joules(3.0) });
    assert!(m.has(&Flag::CounterReset), "{m}");
    assert_kept(&m, 90.0);
}

#[test]
fn a_sampler_panic_keeps_what_was_recorded() {
    let (m, tl, _) = window_with(Fault::Panic { at: Duration::from_millis(700) });
    assert!(m.has(&Flag::SamplerFailed) || m.has(&Flag::Gap), "{m}");
    assert_kept(&m, 25.0);
    assert!(tl.events.iter().any(|e| matches!(e.kind, EventKind::SamplerPanic { .. })));
}

#[test]
fn a_read_that_never_returns_does_not_hang_the_meter() {
    let (m, tl, stop) = window_with(Fault::Hang {
        at: Duration::from_millis(700),
        duration: Duration::from_secs(3600),
    });
    assert!(m.has(&Flag::Gap), "{m}");
    assert_kept(&m, 25.0);
    // Bounded: the window settle timeout (3 s) plus the sampler's stop timeout (2 s).
    assert!(stop < Duration::from_secs(7), "stop took {stop:?}");
    assert!(tl.events.iter().any(|e| matches!(e.kind, EventKind::Hung { .. })), "{:?}", tl.events);
}
