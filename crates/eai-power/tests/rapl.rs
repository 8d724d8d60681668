//! RAPL against fake powercap trees.

use std::path::Path;
use std::time::Duration;

use eai_power::{Domain, Error, Meter, MeterConfig, PowerSource, Reading, Signal, discover_rapl};

fn zone(root: &Path, dir: &str, name: &str, energy: u64, range: Option<u64>) {
    let d = root.join(dir);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("name"), format!("{name}\n")).unwrap();
    std::fs::write(d.join("energy_uj"), format!("{energy}\n")).unwrap();
    if let Some(r) = range {
        std::fs::write(d.join("max_energy_range_uj"), format!("{r}\n")).unwrap();
    }
}

#[test]
fn discovers_domains_and_deduplicates_mirrors() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    zone(r, "intel-rapl:0", "package-0", 1_000_000, Some(262_143_328_850));
    zone(r, "intel-rapl:0:0", "core", 400_000, Some(262_143_328_850));
    zone(r, "intel-rapl:0:1", "dram", 300_000, Some(65_712_999_613));
    zone(r, "intel-rapl:1", "package-1", 2_000_000, Some(262_143_328_850));
    // An MMIO twin of package 0 (same counter) must not be summed twice.
    zone(r, "intel-rapl-mmio:0", "package-0", 1_000_000, Some(262_143_328_850));
    std::fs::create_dir_all(r.join("intel-rapl")).unwrap(); // the control type dir: ignored
    let d = discover_rapl(r).unwrap();
    let domains: Vec<Domain> = d.zones.iter().map(|z| z.info().domain).collect();
    assert_eq!(
        domains,
        vec![
            Domain::CpuPackage { package: 0 },
            Domain::CpuCores { package: 0 },
            Domain::Dram { package: 0 },
            Domain::CpuPackage { package: 1 }
        ]
    );
    assert_eq!(d.skipped.len(), 1);
    assert!(
        d.skipped[0].0.contains("mmio") && d.skipped[0].1.contains("mirrors"),
        "{:?}",
        d.skipped
    );
    let z = &d.zones[0];
    assert_eq!(z.read(Signal::EnergyCounter).unwrap(), Reading::Energy(eai_core::Joules(1.0)));
    assert!(z.read(Signal::InstantPower).is_err());
    let spec = z.info().spec(Signal::EnergyCounter).cloned().unwrap();
    assert!((spec.wrap_at.unwrap().0 - 262_143.328_850).abs() < 1e-6);
}

#[test]
fn mirrored_die_zones_counted_once() {
    let t = tempfile::tempdir().unwrap();
    zone(t.path(), "intel-rapl:0", "package-0-die-0", 5_000_000, Some(1 << 32));
    zone(t.path(), "intel-rapl:1", "package-0-die-1", 5_000_000, Some(1 << 32));
    let d = discover_rapl(t.path()).unwrap();
    assert_eq!(d.zones.len(), 1);
}

#[test]
fn missing_root_is_unavailable_not_a_panic() {
    let e = discover_rapl(Path::new("/nonexistent/powercap")).unwrap_err();
    assert!(matches!(e, Error::Unavailable { backend: "rapl", .. }), "{e}");
    let t = tempfile::tempdir().unwrap();
    assert!(matches!(discover_rapl(t.path()), Err(Error::Unavailable { .. })));
}

#[test]
fn malformed_counter_is_skipped_with_reason() {
    let t = tempfile::tempdir().unwrap();
    zone(t.path(), "intel-rapl:0", "package-0", 1, Some(10));
    std::fs::write(t.path().join("intel-rapl:0/energy_uj"), "garbage").unwrap();
    let e = discover_rapl(t.path()).unwrap_err();
    assert!(e.to_string().contains("not a counter"), "{e}");
}

#[test]
fn live_wrap_is_unwrapped_by_the_meter() {
    let t = tempfile::tempdir().unwrap();
    let range: u64 = 10_000_000; // 10 J
    zone(t.path(), "intel-rapl:0", "package-0", 9_000_000, Some(range));
    std::fs::write(t.path().join("intel-rapl:0/constraint_0_max_power_uw"), "20000000").unwrap();
    let d = discover_rapl(t.path()).unwrap();
    let src: Vec<Box<dyn PowerSource>> =
        d.zones.into_iter().map(|z| Box::new(z) as Box<dyn PowerSource>).collect();
    let meter = Meter::start(src, MeterConfig::new().counter_hz(50.0)).unwrap();
    let path = t.path().join("intel-rapl:0/energy_uj");
    std::thread::sleep(Duration::from_millis(150)); // first reads in
    let id = meter.begin("wrap");
    // +0.5 J every 50 ms for 1 s = 10 J total, wrapping once at 10 J.
    let mut e = 9_000_000u64;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(50));
        e = (e + 500_000) % range;
        // Atomic replace, so the sampler never reads a half-written file.
        let tmp = t.path().join("energy_uj.tmp");
        std::fs::write(&tmp, e.to_string()).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    std::thread::sleep(Duration::from_millis(60));
    meter.end(id).unwrap();
    let m = meter.measurement(id).unwrap();
    let dev = &m.devices[0];
    assert!(dev.has(&eai_power::Flag::CounterWrapped), "{m}");
    assert!((dev.energy.unwrap().0 - 10.0).abs() <= 0.6, "{m}");
}

#[test]
fn counter_rate_too_slow_for_wrap_is_rejected() {
    let t = tempfile::tempdir().unwrap();
    zone(t.path(), "intel-rapl:0", "package-0", 0, Some(1_000_000)); // 1 J range
    std::fs::write(t.path().join("intel-rapl:0/constraint_0_max_power_uw"), "100000000").unwrap(); // 100 W
    let d = discover_rapl(t.path()).unwrap();
    let src: Vec<Box<dyn PowerSource>> =
        d.zones.into_iter().map(|z| Box::new(z) as Box<dyn PowerSource>).collect();
    let e = Meter::start(src, MeterConfig::new().counter_hz(20.0)).unwrap_err();
    assert!(matches!(e, Error::Config { field: "counter_hz", .. }), "{e}");
}

// Issue 15: a `--rapl-root` whose `energy_uj` is a FIFO hung the reader forever.
#[cfg(unix)]
#[test]
fn a_fifo_energy_file_is_refused_without_hanging() {
    let t = tempfile::tempdir().unwrap();
    zone(t.path(), "intel-rapl:0", "package-0", 1_000_000, Some(1 << 32));
    let d = t.path().join("intel-rapl:1");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("name"), "package-1\n").unwrap();
    let fifo = d.join("energy_uj");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("SKIP a_fifo_energy_file_is_refused_without_hanging: mkfifo unavailable");
        return;
    }
    let root = t.path().to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(discover_rapl(&root).map(|d| (d.zones.len(), d.skipped)));
    });
    let got = rx.recv_timeout(Duration::from_secs(10)).expect("discover_rapl hung on a FIFO");
    let (zones, skipped) = got.unwrap();
    assert_eq!(zones, 1);
    assert!(
        skipped.iter().any(|(z, why)| z == "intel-rapl:1" && why.contains("not a regular file")),
        "{skipped:?}"
    );
}
