//! GPU benchmark of eai-power on one NVIDIA GPU: steady and bursty loads (a PyTorch matmul
//! loop in a child process), every estimator per window against the counter, short windows over
//! many trials, and the overheads (sampler CPU, begin/end cost, memory per hour of trace).
//!
//! Run: `EAI_REQUIRE_GPU=1 gpu_bench <out-dir>` (needs `python3` with PyTorch and CUDA).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use eai_power::nvml::{GpuSelection, NvmlOptions, NvmlSource, discover_nvml};
use eai_power::{DeviceEnergy, Meter, MeterConfig, PowerSource, Reading, Signal, Timeline};

const LOAD: &str = r#"
import sys, time, torch
mode, secs = sys.argv[1], float(sys.argv[2])
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16); b = torch.randn_like(a)
for _ in range(30): c = a @ b
torch.cuda.synchronize()
print("READY", flush=True)
end = time.monotonic() + secs
if mode == "steady":
    while time.monotonic() < end:
        for _ in range(20): c = a @ b
        torch.cuda.synchronize()
else:
    on, off = float(sys.argv[3]), float(sys.argv[4])
    while time.monotonic() < end:
        t = time.monotonic()
        while time.monotonic() - t < on:
            for _ in range(4): c = a @ b
            torch.cuda.synchronize()
        time.sleep(off)
print("DONE", flush=True)
"#;

/// CPU nanoseconds used so far by this process's threads whose name starts with `prefix`.
fn thread_cpu_ns(prefix: &str) -> u64 {
    let mut total = 0;
    let Ok(rd) = std::fs::read_dir("/proc/self/task") else { return 0 };
    for e in rd.flatten() {
        let p = e.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if !comm.trim().starts_with(prefix) {
            continue;
        }
        if let Ok(s) = std::fs::read_to_string(p.join("schedstat")) {
            total += s.split_whitespace().next().and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    total
}

/// The GPU without its energy counter (to measure the sampler cost of the power streams alone).
struct NoCounter(Arc<NvmlSource>);

impl PowerSource for NoCounter {
    fn info(&self) -> eai_power::SourceInfo {
        let mut i = self.0.info();
        i.signals.retain(|s| s.signal != Signal::EnergyCounter);
        i
    }
    fn read(&self, signal: Signal) -> Result<Reading, eai_power::SourceError> {
        self.0.read(signal)
    }
}

struct Load {
    child: std::process::Child,
    rx: mpsc::Receiver<(String, Instant)>,
}

fn start_load(args: &[&str]) -> Load {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(LOAD)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with torch");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send((l, Instant::now()));
        }
    });
    Load { child, rx }
}

impl Load {
    fn wait_for(&self, what: &str) -> Instant {
        loop {
            let (l, t) = self.rx.recv_timeout(Duration::from_secs(120)).expect("load output");
            if l.trim() == what {
                return t;
            }
        }
    }
}

fn counter_now(src: &NvmlSource) -> f64 {
    match src.read(Signal::EnergyCounter) {
        Ok(Reading::Energy(j)) => j.0,
        _ => f64::NAN,
    }
}

fn rel(x: Option<eai_core::Joules>, r: f64) -> Option<f64> {
    x.map(|x| (x.0 - r) / r * 100.0)
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{x:+.3} %"))
}

fn j(x: Option<eai_core::Joules>) -> String {
    x.map_or("-".into(), |x| format!("{:.1}", x.0))
}

#[derive(serde::Serialize)]
struct Row {
    load: String,
    window: String,
    duration_s: f64,
    counter_j: Option<f64>,
    ours_j: Option<f64>,
    instant_j: Option<f64>,
    zeus_two_read_j: Option<f64>,
    paper_1hz_j: Option<f64>,
    ours_err_pct: Option<f64>,
    instant_err_pct: Option<f64>,
    zeus_err_pct: Option<f64>,
    paper_err_pct: Option<f64>,
    mean_w: Option<f64>,
    peak_w: Option<f64>,
    flags: String,
}

fn row(load: &str, window: &str, d: &DeviceEnergy, dur: f64, zeus: Option<f64>) -> Row {
    let c = d.counter_linear.map(|x| x.0);
    let r = c.unwrap_or(f64::NAN);
    Row {
        load: load.into(),
        window: window.into(),
        duration_s: dur,
        counter_j: c,
        ours_j: d.energy.map(|x| x.0),
        instant_j: d.instant_integral.map(|x| x.0),
        zeus_two_read_j: zeus,
        paper_1hz_j: d.paper_1hz.map(|x| x.0),
        ours_err_pct: rel(d.energy, r),
        instant_err_pct: rel(d.instant_integral, r),
        zeus_err_pct: zeus.map(|z| (z - r) / r * 100.0),
        paper_err_pct: rel(d.paper_1hz, r),
        mean_w: d.mean_power.map(|p| p.0),
        peak_w: d.peak_power.map(|p| p.0),
        flags: format!("{:?}", d.flags),
    }
}

fn stats(xs: &[f64]) -> (f64, f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let sd = (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    let maxabs = xs.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    (m, sd, maxabs)
}

/// Simple deterministic PRNG (xorshift) for window offsets.
struct Rng(u64);
impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn short_windows(
    tl: &Timeline,
    load: &str,
    a: u64,
    b: u64,
    out: &mut Vec<String>,
    json: &mut Vec<serde_json::Value>,
) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    out.push(format!("\n#### Short windows, {load} load (random offsets; errors vs interpolated counter, mean ± sd, max |err|)\n"));
    out.push(
        "| window | trials | ours | instant ∫ | Zeus two-read | paper 1 Hz | flags seen |".into(),
    );
    out.push("|---|---|---|---|---|---|---|".into());
    for len_s in [0.1f64, 0.5, 1.0, 5.0] {
        let len = (len_s * 1e9) as u64;
        if b - a <= len {
            continue;
        }
        let trials = if len_s >= 5.0 { 20 } else { 60 };
        let mut e: [Vec<f64>; 4] = Default::default();
        let mut flags = std::collections::BTreeSet::new();
        for _ in 0..trials {
            let t0 = a + (rng.next_f64() * (b - a - len) as f64) as u64;
            let m = tl.measure("short", t0, t0 + len).unwrap();
            let d = &m.devices[0];
            let Some(c) = d.counter_linear.map(|x| x.0) else { continue };
            for f in &d.flags {
                flags.insert(format!("{f:?}").split([' ', '{']).next().unwrap_or("").to_string());
            }
            for (k, v) in [d.energy, d.instant_integral, d.two_read, d.paper_1hz].iter().enumerate()
            {
                if let Some(v) = v {
                    e[k].push((v.0 - c) / c * 100.0);
                }
            }
        }
        let f = |xs: &Vec<f64>| {
            if xs.is_empty() {
                return "-".to_string();
            }
            let (m, sd, mx) = stats(xs);
            format!("{m:+.2} ± {sd:.2} % (max {mx:.2} %)")
        };
        out.push(format!(
            "| {len_s} s | {trials} | {} | {} | {} | {} | {:?} |",
            f(&e[0]),
            f(&e[1]),
            f(&e[2]),
            f(&e[3]),
            flags
        ));
        json.push(serde_json::json!({"load": load, "window_s": len_s, "trials": trials,
            "ours_err_pct": e[0], "instant_err_pct": e[1], "zeus_err_pct": e[2], "paper_err_pct": e[3]}));
    }
}

fn main() {
    let out_dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let require = std::env::var("EAI_REQUIRE_GPU").is_ok();
    let disc = match discover_nvml(&NvmlOptions::new().selection(GpuSelection::All)) {
        Ok(d) if !d.gpus.is_empty() => d,
        other => {
            let why = match other {
                Ok(_) => "no GPU".to_string(),
                Err(e) => e.to_string(),
            };
            if require {
                eprintln!("EAI_REQUIRE_GPU set but NVML unavailable: {why}");
                std::process::exit(1);
            }
            eprintln!("skipped: {why}");
            return;
        }
    };
    let gpu = Arc::new(disc.gpus.into_iter().next().unwrap());
    let info = gpu.info();
    let mut md = Vec::new();
    md.push(format!(
        "Device: {} ({}), driver {}, {:?}",
        info.name,
        info.meta("uuid").unwrap_or("?"),
        disc.driver.clone().unwrap_or_default(),
        info.meta
    ));
    md.push(format!(
        "Signals: {:?}\nUnsupported: {:?}",
        info.signals.iter().map(|s| s.signal).collect::<Vec<_>>(),
        info.unsupported
    ));

    // Read costs of each signal (200 calls each).
    md.push(
        "\n#### Read cost per call (200 calls)\n\n| signal | mean | max |\n|---|---|---|".into(),
    );
    for sig in [Signal::InstantPower, Signal::AveragePower, Signal::EnergyCounter] {
        let mut mx = Duration::ZERO;
        let t = Instant::now();
        for _ in 0..200 {
            let s = Instant::now();
            let _ = gpu.read(sig);
            mx = mx.max(s.elapsed());
        }
        md.push(format!("| {sig:?} | {:?} | {mx:?} |", t.elapsed() / 200));
    }

    // Sampler CPU for other configurations (5 s idle each).
    md.push("\n#### Sampler CPU by configuration (idle GPU, 5 s each)\n\n| configuration | CPU % of one core |\n|---|---|".into());
    let configs: Vec<(&str, Box<dyn PowerSource>, MeterConfig)> = vec![
        (
            "100 Hz instant + 10 Hz average + 5 Hz counter",
            Box::new(Arc::clone(&gpu)),
            MeterConfig::new().counter_hz(5.0),
        ),
        (
            "100 Hz instant + 10 Hz average + 2 Hz counter",
            Box::new(Arc::clone(&gpu)),
            MeterConfig::new().counter_hz(2.0),
        ),
        (
            "100 Hz instant + 10 Hz average, no counter",
            Box::new(NoCounter(Arc::clone(&gpu))),
            MeterConfig::new(),
        ),
    ];
    for (name, src, cfg) in configs {
        let m = Meter::start(vec![src], cfg).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let (c, w) = (thread_cpu_ns("eai-power"), Instant::now());
        std::thread::sleep(Duration::from_secs(5));
        let f = (thread_cpu_ns("eai-power") - c) as f64 / w.elapsed().as_nanos() as f64;
        m.stop().unwrap();
        md.push(format!("| {name} | {:.3} % |", f * 100.0));
    }

    let meter = Meter::start(vec![Box::new(Arc::clone(&gpu))], MeterConfig::new()).unwrap();
    // Sampler CPU at 100 Hz instant + 10 Hz average + 20 Hz counter + 1 Hz status, idle GPU.
    std::thread::sleep(Duration::from_millis(500));
    let (c0, w0) = (thread_cpu_ns("eai-power"), Instant::now());
    let baseline = meter.measure_baseline(Duration::from_secs(10)).unwrap();
    let cpu_idle = (thread_cpu_ns("eai-power") - c0) as f64 / w0.elapsed().as_nanos() as f64;
    md.push(format!("\nIdle baseline (10 s): {:?}", baseline.devices));

    // begin/end cost with the GPU sampler live.
    let n = 100_000;
    let t = Instant::now();
    for _ in 0..n {
        let id = meter.begin("cost");
        meter.end(id).unwrap();
    }
    let be = t.elapsed() / n;

    let mut rows: Vec<Row> = Vec::new();
    let mut spans = Vec::new();
    // Steady load.
    let load = start_load(&["steady", "32"]);
    meter.add_own_pid(load.child.id());
    let ready = load.wait_for("READY");
    std::thread::sleep(Duration::from_secs(2)); // thermal/power settle
    let (c1, w1) = (thread_cpu_ns("eai-power"), Instant::now());
    let mut live = Vec::new();
    let outer = meter.begin("steady 20 s");
    let z_outer = counter_now(&gpu);
    for (name, secs) in [("steady 5 s #1", 5.0), ("steady 5 s #2", 5.0), ("steady 10 s", 10.0)] {
        let z0 = counter_now(&gpu);
        let id = meter.begin(name);
        std::thread::sleep(Duration::from_secs_f64(secs));
        meter.end(id).unwrap();
        let z1 = counter_now(&gpu);
        live.push((id, name, z1 - z0));
    }
    meter.end(outer).unwrap();
    let z_outer = counter_now(&gpu) - z_outer;
    live.push((outer, "steady 20 s (outer, overlaps the others)", z_outer));
    let cpu_load = (thread_cpu_ns("eai-power") - c1) as f64 / w1.elapsed().as_nanos() as f64;
    let done = load.wait_for("DONE");
    let _ = load.rx; // drop
    let mut child = load.child;
    let _ = child.wait();
    spans.push(("steady", meter.ns_of(ready) + 2_000_000_000, meter.ns_of(done) - 300_000_000));
    for (id, name, z) in &live {
        let m = meter.measurement(*id).unwrap();
        rows.push(row("steady", name, &m.devices[0], m.duration.0, Some(*z)));
    }
    // Padded window around the whole steady run (idle before and after): the paper's method
    // in its best case.
    std::thread::sleep(Duration::from_secs(3));

    // Bursty load: 60 ms on, 90 ms off.
    let load = start_load(&["bursty", "22", "0.06", "0.09"]);
    meter.add_own_pid(load.child.id());
    let ready_b = load.wait_for("READY");
    std::thread::sleep(Duration::from_secs(1));
    let mut live = Vec::new();
    for (name, secs) in [("bursty 5 s #1", 5.0), ("bursty 5 s #2", 5.0), ("bursty 10 s", 10.0)] {
        let z0 = counter_now(&gpu);
        let id = meter.begin(name);
        std::thread::sleep(Duration::from_secs_f64(secs));
        meter.end(id).unwrap();
        let z1 = counter_now(&gpu);
        live.push((id, name, z1 - z0));
    }
    let done_b = load.wait_for("DONE");
    let mut child = load.child;
    let _ = child.wait();
    spans.push(("bursty", meter.ns_of(ready_b) + 1_000_000_000, meter.ns_of(done_b) - 300_000_000));
    for (id, name, z) in &live {
        let m = meter.measurement(*id).unwrap();
        rows.push(row("bursty", name, &m.devices[0], m.duration.0, Some(*z)));
    }
    std::thread::sleep(Duration::from_secs(2));
    let session = meter.stop().unwrap();
    let tl = &session.timeline;

    // Padded windows: from 1.5 s before each load's READY to 1.5 s after DONE.
    for (load_name, a, b) in &spans {
        let m = tl.measure("padded", a.saturating_sub(3_500_000_000), b + 1_800_000_000).unwrap();
        rows.push(row(
            load_name,
            "whole run, padded by idle",
            &m.devices[0],
            m.duration.0,
            m.devices[0].two_read.map(|x| x.0),
        ));
    }

    md.push("\n#### Windows (errors against the counter delta interpolated at the edges; Zeus = synchronous counter reads at begin and end)\n".into());
    md.push("| load | window | s | counter J | ours J | instant ∫ J | Zeus J | paper 1 Hz J | ours err | instant err | Zeus err | paper err | mean W | peak W | flags |".into());
    md.push("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|".into());
    for r in &rows {
        md.push(format!(
            "| {} | {} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {} |",
            r.load,
            r.window,
            r.duration_s,
            j(r.counter_j.map(eai_core::Joules)),
            j(r.ours_j.map(eai_core::Joules)),
            j(r.instant_j.map(eai_core::Joules)),
            j(r.zeus_two_read_j.map(eai_core::Joules)),
            j(r.paper_1hz_j.map(eai_core::Joules)),
            pct(r.ours_err_pct),
            pct(r.instant_err_pct),
            pct(r.zeus_err_pct),
            pct(r.paper_err_pct),
            r.mean_w.unwrap_or(f64::NAN),
            r.peak_w.unwrap_or(f64::NAN),
            r.flags
        ));
    }
    let mut short_json = Vec::new();
    for (load_name, a, b) in &spans {
        short_windows(tl, load_name, *a, *b, &mut md, &mut short_json);
    }

    // Memory per hour of trace, from the recorded sample rates.
    let dur_s = tl.end_ns() as f64 * 1e-9;
    let per_hour: f64 =
        tl.channels.iter().map(|c| c.samples.len() as f64 / dur_s * 3600.0 * 16.0).sum();
    md.push("\n#### Overheads\n".into());
    md.push(format!("- sampler CPU (all eai-power threads, 100 Hz instant + 10 Hz average + 20 Hz counter + 1 Hz status): idle GPU {:.3} % of one core, under load {:.3} %", cpu_idle * 100.0, cpu_load * 100.0));
    md.push(format!("- begin+end pair with the sampler live: {be:?} ({n} pairs)"));
    md.push(format!(
        "- trace memory: {:.2} MB per GPU-hour ({} samples in {:.1} s)",
        per_hour / 1e6,
        tl.channels.iter().map(|c| c.samples.len()).sum::<usize>(),
        dur_s
    ));
    for s in &session.stats {
        md.push(format!(
            "- reads {:?}: {} reads, mean {:?}, max {:?}",
            s.signal, s.reads, s.mean_read, s.max_read
        ));
    }
    let text = md.join("\n");
    println!("{text}");
    std::fs::write(out_dir.join("power-gpu.md"), &text).unwrap();
    std::fs::write(
        out_dir.join("power-gpu.json"),
        serde_json::to_string_pretty(&serde_json::json!({"windows": rows, "short": short_json,
            "cpu_idle_frac": cpu_idle, "cpu_load_frac": cpu_load, "begin_end_ns": be.as_nanos() as u64,
            "trace_bytes_per_hour": per_hour, "stats": session.stats})).unwrap(),
    )
    .unwrap();
    session.timeline.save(&out_dir.join("trace.json")).unwrap();
}
