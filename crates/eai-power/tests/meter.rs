//! The live meter: windows (nested, overlapping, closures), baseline, serde, replay, the
//! command runner.

use std::time::{Duration, Instant};

use eai_core::Watts;
use eai_power::{
    CommandOptions, ConstantSource, Flag, Meter, MeterConfig, Method, Provenance, ReplaySource,
    Signal, Timeline, measure_command,
};

use crate::{BOTH, Fake, steady};

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-9)
}

#[test]
fn nested_and_overlapping_windows() {
    let meter =
        Meter::start(vec![Box::new(Fake::new("g", BOTH, steady(250.0)))], MeterConfig::new())
            .unwrap();
    let a = meter.begin("outer");
    std::thread::sleep(Duration::from_millis(300));
    let b = meter.begin("inner/overlapping");
    std::thread::sleep(Duration::from_millis(400));
    meter.end(a).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    meter.end(b).unwrap();
    let (ma, mb) = (meter.measurement(a).unwrap(), meter.measurement(b).unwrap());
    for m in [&ma, &mb] {
        let d = &m.devices[0];
        assert_eq!(d.method, Some(Method::CounterShaped), "{m}");
        assert!(close(d.energy.unwrap().0, 250.0 * m.duration.0, 0.01), "{m}");
        assert!(close(d.instant_integral.unwrap().0, 250.0 * m.duration.0, 0.01), "{m}");
        assert_eq!(d.provenance, Provenance::Synthetic);
    }
    let session = meter.stop().unwrap();
    assert_eq!(session.windows.len(), 2);
    assert!(session.windows[0].duration.0 > 0.69 && session.windows[1].duration.0 > 0.69);
}

#[test]
fn closure_and_threads() {
    let meter = std::sync::Arc::new(
        Meter::start(vec![Box::new(ConstantSource::new(Watts(100.0)))], MeterConfig::new())
            .unwrap(),
    );
    let hs: Vec<_> = (0..3)
        .map(|i| {
            let m = std::sync::Arc::clone(&meter);
            std::thread::spawn(move || {
                m.measure(&format!("t{i}"), || std::thread::sleep(Duration::from_millis(600)))
                    .unwrap()
                    .1
            })
        })
        .collect();
    for h in hs {
        let m = h.join().unwrap();
        assert!(close(m.energy().unwrap().0, 100.0 * m.duration.0, 0.01), "{m}");
        assert!(!m.has(&Flag::TooShort));
        assert_eq!(m.devices[0].provenance, Provenance::Constant);
    }
}

#[test]
fn begin_end_cost_is_microseconds() {
    let meter = Meter::start(vec![Box::new(ConstantSource::new(Watts(100.0)))], MeterConfig::new())
        .unwrap();
    let n = 20_000;
    let t = Instant::now();
    for _ in 0..n {
        let id = meter.begin("w");
        meter.end(id).unwrap();
    }
    let per = t.elapsed() / n;
    // Bar: < 10 µs in release; debug builds and a loaded CI runner get slack.
    assert!(per < Duration::from_micros(50), "begin+end {per:?}");
}

#[test]
fn baseline_is_measured_with_spread_and_subtracted_only_on_request() {
    let meter =
        Meter::start(vec![Box::new(Fake::new("g", BOTH, steady(60.0)))], MeterConfig::new())
            .unwrap();
    let b = meter.measure_baseline(Duration::from_secs(2)).unwrap();
    assert_eq!(b.devices.len(), 1);
    assert!(close(b.devices[0].mean.0, 60.0, 0.01), "{b:?}");
    assert!(b.devices[0].std.0 < 1.0 && b.devices[0].bins == 2);
    let (_, mut m) = meter.measure("w", || std::thread::sleep(Duration::from_millis(700))).unwrap();
    assert!(m.devices[0].dynamic_energy.is_none(), "never subtracted silently");
    m.subtract_baseline(&b);
    let d = &m.devices[0];
    assert!(d.dynamic_energy.unwrap().0.abs() < 0.02 * d.energy.unwrap().0, "{m}");
    assert_eq!(d.baseline_power, Some(b.devices[0].mean));
    assert!(matches!(
        meter.measure_baseline(Duration::from_millis(10)),
        Err(eai_power::Error::Config { .. })
    ));
}

#[test]
fn traces_roundtrip_through_csv_and_json_and_replay_is_labelled() {
    let meter =
        Meter::start(vec![Box::new(Fake::new("g", BOTH, steady(321.0)))], MeterConfig::new())
            .unwrap();
    let (_, live) = meter.measure("w", || std::thread::sleep(Duration::from_millis(1200))).unwrap();
    let session = meter.stop().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (csv, json) = (dir.path().join("t.csv"), dir.path().join("t.json"));
    session.timeline.save(&csv).unwrap();
    session.timeline.save(&json).unwrap();
    let s = serde_json::to_string(&session).unwrap();
    let back: eai_power::Session = serde_json::from_str(&s).unwrap();
    assert_eq!(back.windows.len(), session.windows.len());
    assert!(close(
        back.windows[0].energy().unwrap().0,
        session.windows[0].energy().unwrap().0,
        1e-12
    ));
    assert_eq!(back.windows[0].devices[0].flags, session.windows[0].devices[0].flags);
    for p in [&csv, &json] {
        let tl = Timeline::load(p).unwrap();
        // CSV has no provenance column (-> Replayed); JSON keeps Synthetic, relabels Measured.
        assert_ne!(tl.sources[0].provenance, Provenance::Measured);
        let t0 = (live.start.0 * 1e9) as u64;
        let t1 = t0 + (live.duration.0 * 1e9) as u64;
        let m = tl.measure("offline", t0, t1).unwrap();
        // The live result saw only the samples up to its settle point; offline sees all.
        assert!(close(m.energy().unwrap().0, live.energy().unwrap().0, 0.01), "{m} vs {live}");
    }
    // Replay the trace in real time through a new meter.
    let tl = Timeline::load(&csv).unwrap();
    let meter = Meter::start(
        ReplaySource::all(&tl)
            .unwrap()
            .into_iter()
            .map(|s| Box::new(s) as Box<dyn eai_power::PowerSource>)
            .collect(),
        MeterConfig::new(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let (_, m) =
        meter.measure("replayed", || std::thread::sleep(Duration::from_millis(600))).unwrap();
    assert_eq!(m.devices[0].provenance, Provenance::Replayed);
    // Power replays exactly; the counter replays from its reconstructed update points.
    let d = &m.devices[0];
    assert!(close(d.instant_integral.unwrap().0 / m.duration.0, 321.0, 0.02), "{m}");
    assert!(close(d.mean_power.unwrap().0, 321.0, 0.1), "{m}");
    assert!(format!("{m}").contains("REPLAYED"));
}

#[test]
fn measure_command_runs_and_reports() {
    let mut opts = CommandOptions::default();
    opts.gpus = false;
    opts.cpu = false;
    opts.constant = Some(Watts(150.0));
    let (r, session) = measure_command(&"sleep".into(), &["0.6".into()], &opts).unwrap();
    assert_eq!(r.exit_code, Some(0));
    assert!(
        close(r.measurement.energy().unwrap().0, 150.0 * r.measurement.duration.0, 0.01),
        "{r}"
    );
    assert!(r.measurement.duration.0 >= 0.6);
    assert!(!session.timeline.channels.is_empty());
    assert!(format!("{r}").contains("CONSTANT, NOT MEASURED"));
    let (r, _) = measure_command(&"false".into(), &[], &opts).unwrap();
    assert_eq!(r.exit_code, Some(1));
    let e = measure_command(&"/nonexistent/program".into(), &[], &opts).unwrap_err();
    assert!(matches!(e, eai_power::Error::Command { .. }), "{e}");
    // No usable backend: a typed error listing why, never a silent 0.
    let mut none = CommandOptions::default();
    none.gpus = false;
    none.rapl_root = "/nonexistent".into();
    let e = measure_command(&"true".into(), &[], &none).unwrap_err();
    assert!(
        matches!(e, eai_power::Error::NoSources { .. }) && e.to_string().contains("rapl"),
        "{e}"
    );
}

#[test]
fn sampler_rates_are_honoured() {
    let meter = Meter::start(
        vec![Box::new(Fake::new("g", BOTH, steady(1.0)))],
        MeterConfig::new().instant_hz(100.0).counter_hz(20.0),
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let tl = meter.stop().unwrap().timeline;
    let n_inst = tl.channel(0, Signal::InstantPower).unwrap().samples.len();
    let n_ctr = tl.channel(0, Signal::EnergyCounter).unwrap().samples.len();
    assert!((85..=110).contains(&n_inst), "{n_inst}");
    assert!((16..=23).contains(&n_ctr), "{n_ctr}");
}

/// A live meter at the defaults over a counter republished every 100 ms (like NVML): each
/// `begin`/`end` makes the counter thread read around the edge, though the background rate is
/// 1 Hz, and the window's result waits for those reads.
#[test]
fn edge_reads_follow_begin_and_end() {
    let mut fake = Fake::new("g", BOTH, |sig, t| match sig {
        // 300 W, counter published on a 100 ms grid.
        Signal::EnergyCounter => {
            Ok(eai_power::Reading::Energy(eai_core::Joules(300.0 * (t * 10.0).floor() / 10.0)))
        }
        _ => Ok(eai_power::Reading::Power(Watts(300.0))),
    });
    fake.info.signals = vec![
        eai_power::SignalSpec::new(Signal::InstantPower),
        eai_power::SignalSpec::new(Signal::EnergyCounter).update_period(Duration::from_millis(100)),
    ];
    let meter = Meter::start(vec![Box::new(fake)], MeterConfig::new()).unwrap();
    // Past the 2-s calibration burst.
    std::thread::sleep(Duration::from_millis(2600));
    let mut edges = Vec::new();
    for k in 0..3 {
        let m = if k < 2 {
            meter.measure("w", || std::thread::sleep(Duration::from_millis(300))).unwrap().1
        } else {
            // Marks request the same reads for a window defined after the fact.
            let a = meter.mark();
            std::thread::sleep(Duration::from_millis(300));
            let b = meter.mark();
            meter.window_between("marked", a, b).unwrap()
        };
        let d = &m.devices[0];
        // Constant power: any interpolation is exact, so this checks the plumbing.
        assert!(close(d.energy.unwrap().0, 300.0 * m.duration.0, 0.03), "{m}");
        let t0 = (m.start.0 * 1e9) as u64;
        edges.push(t0);
        edges.push(t0 + (m.duration.0 * 1e9) as u64);
        std::thread::sleep(Duration::from_millis(400));
    }
    let tl = meter.stop().unwrap().timeline;
    let reads = &tl.channel(0, Signal::EnergyCounter).unwrap().samples;
    // Every edge has a counter read within 400 ms after it; with 1 Hz background reads alone
    // all six would pass by chance with probability 0.4^6 < 0.5 %.
    let served = edges
        .iter()
        .filter(|&&e| reads.iter().any(|r| r.t_ns > e && r.t_ns < e + 400_000_000))
        .count();
    assert_eq!(served, 6, "{edges:?} {:?}", reads.iter().map(|r| r.t_ns).collect::<Vec<_>>());
}
