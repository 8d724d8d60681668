//! A recorded DCGM exporter scrape series (tests/fixtures/dcgm-h100x4.prom, written by
//! make_dcgm_fixture.py with its truth) served over loopback by a test HTTP server.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use eai_cluster::{DcgmConfig, Error, discover_dcgm};
use eai_power::{Flag, Meter, Method, PowerSource};

use crate::common::ScrapeServer;

const TOKEN: &str = "prom-reader-3c1a";

struct Fixture {
    /// (collection time on the fixture clock, exposition text)
    scrapes: Vec<(f64, String)>,
    /// Per UUID: 50 ms steps `(t_start, watts)`.
    truth: HashMap<String, Vec<(f64, f64)>>,
}

fn fixture() -> Fixture {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
    let text = std::fs::read_to_string(format!("{dir}dcgm-h100x4.prom")).unwrap();
    let mut scrapes: Vec<(f64, String)> = Vec::new();
    for part in text.split("# EAI-FIXTURE t_s=").filter(|p| !p.is_empty()) {
        let (t, body) = part.split_once('\n').unwrap();
        scrapes.push((t.trim().parse().unwrap(), body.to_string()));
    }
    let mut truth: HashMap<String, Vec<(f64, f64)>> = HashMap::new();
    let csv = std::fs::read_to_string(format!("{dir}dcgm-h100x4.truth.csv")).unwrap();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        truth
            .entry(f[0].to_string())
            .or_default()
            .push((f[1].parse().unwrap(), f[2].parse().unwrap()));
    }
    Fixture { scrapes, truth }
}

/// The exporter's answer at fixture time `t`: its latest collection.
fn body_at(fx: &Fixture, t: f64) -> String {
    let i = fx.scrapes.partition_point(|(c, _)| *c <= t).max(1);
    fx.scrapes[i - 1].1.clone()
}

fn energy(steps: &[(f64, f64)], a: f64, b: f64) -> f64 {
    steps.iter().map(|&(s, w)| w * ((s + 0.05).min(b) - s.max(a)).max(0.0)).sum()
}

#[test]
fn dcgm_window_energy_is_within_the_stated_scrape_bound() {
    let fx = Arc::new(fixture());
    assert_eq!(fx.scrapes.len(), 31);
    let f2 = Arc::clone(&fx);
    let server = ScrapeServer::start(Some(TOKEN), move |d| body_at(&f2, d.as_secs_f64()));
    let cfg = DcgmConfig::new(server.url()).token(TOKEN).interval(Duration::from_millis(500));
    let gpus = discover_dcgm(&cfg).unwrap();
    assert_eq!(gpus.len(), 4);
    let info = gpus[0].info();
    assert!(info.id.starts_with("dcgm/gpu-node-07/GPU-"), "{}", info.id);
    assert_eq!(info.meta("pci_bus_id"), Some("00000000:18:00.0"));
    assert_eq!(info.name, "NVIDIA H100 80GB HBM3");
    let sources: Vec<Box<dyn PowerSource>> = gpus.into_iter().map(|g| Box::new(g) as _).collect();
    let meter = Meter::start(sources, cfg.meter_config()).unwrap();
    let until = |t: f64| {
        let e = server.start.elapsed().as_secs_f64();
        if t > e {
            std::thread::sleep(Duration::from_secs_f64(t - e));
        }
    };
    until(3.1);
    let id = meter.begin("steady");
    until(13.4);
    meter.end(id).unwrap();
    std::thread::sleep(cfg.settle(Some(Duration::from_secs(1))));
    let m = meter.measurement(id).unwrap();
    let s0 = meter.ns_of(server.start) as f64 * 1e-9;
    let (a, b) = (m.start.0 - s0, m.start.0 - s0 + m.duration.0);
    let (mut sum_e, mut sum_t, mut sum_b) = (0.0, 0.0, 0.0);
    for d in &m.devices {
        let uuid = d.source.rsplit('/').next().unwrap();
        let t = energy(&fx.truth[uuid], a, b);
        let e = d.energy.unwrap().0;
        assert_eq!(d.method, Some(Method::CounterLinear), "counter first");
        let (interval_ms, bound) = d
            .flags
            .iter()
            .find_map(|f| match f {
                Flag::Scraped { interval_ms, bound_j } => Some((*interval_ms, *bound_j)),
                _ => None,
            })
            .expect("every window of a scraped source states its resolution");
        let bound = bound.expect("reads bracket both edges after the settle time");
        eprintln!(
            "{uuid}: {e:.1} J, truth {t:.1} J, error {:+.1} J ({:+.3} %), stated bound ±{bound:.1} J ({:.2} %), resolution {interval_ms} ms",
            e - t,
            (e - t) / t * 100.0,
            bound / t * 100.0
        );
        assert!(interval_ms >= 1000, "the exporter's 1 s collection shows: {interval_ms} ms");
        assert!((e - t).abs() <= bound, "{uuid}: |{e} - {t}| > {bound}");
        // A bound, not a shrug: a few collection intervals of energy at most.
        assert!(bound <= 4.0 * 0.72 * 1000.0 * f64::from(interval_ms) / 1000.0, "{bound}");
        sum_e += e;
        sum_t += t;
        sum_b += bound;
    }
    eprintln!(
        "4 GPUs over {:.2} s: {sum_e:.1} J, truth {sum_t:.1} J, error {:+.3} %, bound ±{:.2} %",
        m.duration.0,
        (sum_e - sum_t) / sum_t * 100.0,
        sum_b / sum_t * 100.0
    );
    assert!((sum_e - sum_t).abs() <= sum_b);
    meter.stop().unwrap();
}

#[test]
fn dcgm_scrapes_need_the_token_and_reject_bad_exposition() {
    let fx = Arc::new(fixture());
    let f2 = Arc::clone(&fx);
    let server = ScrapeServer::start(Some(TOKEN), move |_| f2.scrapes[0].1.clone());
    for cfg in [DcgmConfig::new(server.url()), DcgmConfig::new(server.url()).token("nope")] {
        assert!(matches!(discover_dcgm(&cfg), Err(Error::Unauthorized { status: 401, .. })));
    }
    assert_eq!(discover_dcgm(&DcgmConfig::new(server.url()).token(TOKEN)).unwrap().len(), 4);
    assert_eq!(
        discover_dcgm(&DcgmConfig::new(server.url()).token(TOKEN).hosts(["gpu-node-08"]))
            .map(|g| g.len())
            .map_err(|e| matches!(e, Error::MissingMetric { .. })),
        Err(true)
    );
    let bad = ScrapeServer::start(None, |_| {
        "# TYPE DCGM_FI_DEV_POWER_USAGE gauge\nDCGM_FI_DEV_POWER_USAGE{gpu=\"0\",UUID=\"GPU-1\" 12\n".into()
    });
    match discover_dcgm(&DcgmConfig::new(bad.url())) {
        Err(Error::Exposition { line, .. }) => assert_eq!(line, 2),
        other => panic!("{other:?}"),
    }
    let none = ScrapeServer::start(None, |_| {
        "# TYPE DCGM_FI_DEV_SM_CLOCK gauge\nDCGM_FI_DEV_SM_CLOCK{gpu=\"0\",UUID=\"GPU-1\"} 1980\n"
            .into()
    });
    assert!(matches!(
        discover_dcgm(&DcgmConfig::new(none.url())),
        Err(Error::MissingMetric { .. })
    ));
}

#[test]
fn dcgm_counter_reset_is_flagged() {
    // One GPU at 400 W; the driver reloads at 1.6 s (the counter restarts from 0).
    let server = ScrapeServer::start(None, |d| {
        let t = d.as_secs_f64();
        let mj = if t < 1.6 { 5.0e9 + 400.0e3 * t } else { 400.0e3 * (t - 1.6) };
        format!(
            "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\nDCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{gpu=\"0\",UUID=\"GPU-r\",Hostname=\"n\"}} {mj:.0}\n# TYPE DCGM_FI_DEV_POWER_USAGE gauge\nDCGM_FI_DEV_POWER_USAGE{{gpu=\"0\",UUID=\"GPU-r\",Hostname=\"n\"}} 400\n"
        )
    });
    let cfg = DcgmConfig::new(server.url()).interval(Duration::from_millis(200));
    let gpu = Arc::new(discover_dcgm(&cfg).unwrap().remove(0));
    let meter = Meter::start(vec![Box::new(Arc::clone(&gpu))], cfg.meter_config()).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let id = meter.begin("reset");
    std::thread::sleep(Duration::from_millis(2000));
    meter.end(id).unwrap();
    std::thread::sleep(cfg.settle(None));
    let m = meter.measurement(id).unwrap();
    assert!(m.has(&Flag::CounterReset), "{m}");
    let resets = gpu.resets();
    assert_eq!(resets.len(), 1, "{resets:?}");
    assert!(resets[0].contains("n/GPU-r"), "{resets:?}");
    meter.stop().unwrap();
}
