//! GPU benchmark of eai-power on one NVIDIA GPU at the default configuration (1 Hz background
//! counter, edge reads, calibration bursts): steady and bursty loads (a PyTorch matmul loop in
//! a child process), live windows of 0.1–15 s, each estimate against an independent reference
//! (a separate thread reading the energy counter every ~53 ms, interpolated at the edges), and
//! the overheads (sampler CPU idle and under load, begin/end cost, memory per hour of trace).
//!
//! Run: `EAI_REQUIRE_GPU=1 gpu_bench <out-dir>` (needs `python3` with PyTorch and CUDA).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eai_power::integrate::{CounterParams, counter_energy, fit_grid};
use eai_power::nvml::{GpuSelection, NvmlOptions, NvmlSource, discover_nvml};
use eai_power::{Flag, Meter, MeterConfig, PowerSource, Reading, Sample, Signal, Timeline};

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

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{x:+.3} %"))
}

fn j(x: Option<eai_core::Joules>) -> String {
    x.map_or("-".into(), |x| format!("{:.1}", x.0))
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

/// The independent reference: a thread (not an `eai-power` one, so not in the sampler CPU)
/// reading the energy counter every 52–54 ms while switched on.
struct RefReader {
    reads: Arc<Mutex<Vec<Sample>>>,
    on: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

fn start_ref(gpu: Arc<NvmlSource>, anchor: Instant) -> RefReader {
    let reads = Arc::new(Mutex::new(Vec::new()));
    let on = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (r, o, s) = (Arc::clone(&reads), Arc::clone(&on), Arc::clone(&stop));
    let handle = std::thread::Builder::new()
        .name("ref-counter".into())
        .spawn(move || {
            let mut rng = Rng(0x1234_5678_9abc_def1);
            let mut next = Instant::now();
            while !s.load(Ordering::Relaxed) {
                if !o.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                    next = Instant::now();
                    continue;
                }
                let b = Instant::now();
                let x = gpu.read(Signal::EnergyCounter);
                let a = Instant::now();
                if let Ok(Reading::Energy(j)) = x {
                    let mid = (b + (a - b) / 2).saturating_duration_since(anchor);
                    r.lock().unwrap().push(Sample::new(mid.as_nanos() as u64, j.0));
                }
                next += Duration::from_micros(52_000 + (rng.next_f64() * 2000.0) as u64);
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
        })
        .unwrap();
    RefReader { reads, on, stop, handle: Some(handle) }
}

/// Errors per estimator (ours, instant, Zeus, paper) and the count of CoarseEdge windows.
type ByLength = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, usize);

struct Live {
    load: &'static str,
    name: String,
    id: eai_power::WindowId,
    zeus: f64,
}

fn ms(x: Option<Duration>) -> String {
    x.map_or("-".into(), |d| format!("{:.3} ms", d.as_secs_f64() * 1e3))
}

fn stat_str(xs: &[f64]) -> String {
    if xs.is_empty() {
        return "-".into();
    }
    let (m, sd, mx) = stats(xs);
    format!("{m:+.3} ± {sd:.3} % (max {mx:.3} %)")
}

/// Runs windows during one load: `long` back-to-back windows of `long_s` with an outer window
/// around them, then short windows in random order with random gaps.
fn run_load(
    meter: &Meter,
    gpu: &NvmlSource,
    load_name: &'static str,
    args: &[&str],
    rng: &mut Rng,
    live: &mut Vec<Live>,
    latency: &mut Vec<Duration>,
) -> (u64, u64) {
    let load = start_load(args);
    meter.add_own_pid(load.child.id());
    load.wait_for("READY");
    std::thread::sleep(Duration::from_secs(2)); // power settles
    let a = meter.now_ns();
    let z_outer = counter_now(gpu);
    let outer = meter.begin(&format!("{load_name} 15 s (outer)"));
    for k in 1..=3 {
        let z0 = counter_now(gpu);
        let id = meter.begin(&format!("{load_name} 5 s #{k}"));
        std::thread::sleep(Duration::from_secs(5));
        meter.end(id).unwrap();
        let z1 = counter_now(gpu);
        // How long until the live result is ready (the edge reads land).
        let t = Instant::now();
        let _ = meter.measurement(id).unwrap();
        latency.push(t.elapsed());
        live.push(Live { load: load_name, name: format!("5 s #{k}"), id, zeus: z1 - z0 });
    }
    meter.end(outer).unwrap();
    let z = counter_now(gpu) - z_outer;
    live.push(Live { load: load_name, name: "15 s (outer, overlaps)".into(), id: outer, zeus: z });
    let mut lens: Vec<f64> = [0.1; 6].iter().chain(&[0.5; 6]).chain(&[1.0; 6]).copied().collect();
    for i in (1..lens.len()).rev() {
        let j = (rng.next_f64() * (i + 1) as f64) as usize;
        lens.swap(i, j.min(i));
    }
    for len in lens {
        std::thread::sleep(Duration::from_secs_f64(0.5 + rng.next_f64()));
        let z0 = counter_now(gpu);
        let id = meter.begin(&format!("{load_name} {len} s"));
        std::thread::sleep(Duration::from_secs_f64(len));
        meter.end(id).unwrap();
        let z1 = counter_now(gpu);
        live.push(Live { load: load_name, name: format!("{len} s"), id, zeus: z1 - z0 });
    }
    let b = meter.now_ns();
    let mut child = load.child;
    let _ = child.kill();
    let _ = child.wait();
    (a, b)
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

    // Read costs of each signal.
    md.push(
        "\n#### Read cost per call (100 calls)\n\n| signal | mean | max |\n|---|---|---|".into(),
    );
    for sig in [Signal::InstantPower, Signal::AveragePower, Signal::EnergyCounter] {
        let mut mx = Duration::ZERO;
        let t = Instant::now();
        for _ in 0..100 {
            let s = Instant::now();
            let _ = gpu.read(sig);
            mx = mx.max(s.elapsed());
        }
        md.push(format!("| {sig:?} | {:?} | {mx:?} |", t.elapsed() / 100));
    }

    let cfg = MeterConfig::new();
    md.push(format!("\nConfiguration: defaults, {:?}", cfg.sampler));
    let meter = Meter::start(vec![Box::new(Arc::clone(&gpu))], cfg).unwrap();
    let anchor = Instant::now() - Duration::from_nanos(meter.now_ns());
    let mut refr = start_ref(Arc::clone(&gpu), anchor);

    // Start-up phase CPU: after the 2-s start-up burst, 12 s (baseline, includes the 8-s
    // calibration burst), no windows.
    std::thread::sleep(Duration::from_millis(2500));
    let (c0, w0) = (thread_cpu_ns("eai-power"), Instant::now());
    let baseline = meter.measure_baseline(Duration::from_secs(12)).unwrap();
    let cpu_idle = (thread_cpu_ns("eai-power") - c0) as f64 / w0.elapsed().as_nanos() as f64;
    md.push(format!("\nIdle baseline (12 s): {:?}", baseline.devices));

    // Loads with live windows; the reference reader runs during them.
    refr.on.store(true, Ordering::Relaxed);
    let (c1, w1) = (thread_cpu_ns("eai-power"), Instant::now());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut live, mut latency) = (Vec::new(), Vec::new());
    let steady =
        run_load(&meter, &gpu, "steady", &["steady", "120"], &mut rng, &mut live, &mut latency);
    std::thread::sleep(Duration::from_secs(2));
    let bursty = run_load(
        &meter,
        &gpu,
        "bursty",
        &["bursty", "120", "0.06", "0.09"],
        &mut rng,
        &mut live,
        &mut latency,
    );
    let cpu_load = (thread_cpu_ns("eai-power") - c1) as f64 / w1.elapsed().as_nanos() as f64;
    let load_s = w1.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    refr.on.store(false, Ordering::Relaxed);

    // Steady-state idle CPU: no windows, no reference reader, between the calibration bursts
    // (the ladder's 120-s burst is over, the next one is at 240 s): 20 s.
    let burst_done = 121_500_000_000u64;
    let now = meter.now_ns();
    if now < burst_done {
        std::thread::sleep(Duration::from_nanos(burst_done - now));
    }
    let counter_reads = |m: &Meter| {
        m.stats()
            .iter()
            .filter(|s| s.signal == Some(Signal::EnergyCounter))
            .map(|s| s.reads)
            .sum::<u64>()
    };
    let (c2, w2, r2) = (thread_cpu_ns("eai-power"), Instant::now(), counter_reads(&meter));
    let t2 = meter.now_ns();
    std::thread::sleep(Duration::from_secs(20));
    let cpu_steady = (thread_cpu_ns("eai-power") - c2) as f64 / w2.elapsed().as_nanos() as f64;
    let reads_steady = counter_reads(&meter) - r2;
    let steady_span = (t2 as f64 * 1e-9, meter.now_ns() as f64 * 1e-9);

    std::thread::sleep(Duration::from_millis(300));
    let session = meter.stop().unwrap();
    // begin/end cost with a sampler live (a second meter, dropped without computing its
    // 100 000 windows).
    let n = 100_000;
    let be = {
        let m2 = Meter::start(vec![Box::new(Arc::clone(&gpu))], MeterConfig::new()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        for _ in 0..n {
            let id = m2.begin("cost");
            m2.end(id).unwrap();
        }
        t.elapsed() / n
    };
    refr.stop.store(true, Ordering::Relaxed);
    let _ = refr.handle.take().map(|h| h.join());
    let refs = refr.reads.lock().unwrap().clone();
    let tl = &session.timeline;
    let counter = tl
        .channels
        .iter()
        .find(|c| c.signal == Some(Signal::EnergyCounter))
        .map(|c| c.samples.clone())
        .unwrap_or_default();
    let params = CounterParams::new(Some(Duration::from_millis(100)), None);
    let reference =
        |t0: u64, t1: u64| counter_energy(&refs, t0, t1, params, None).map(|c| c.linear.0);

    // Grid fits: the reference's dense reads vs the meter's bursts.
    let g_ref = fit_grid(&refs, Duration::from_millis(100));
    let g_met = fit_grid(&counter, Duration::from_millis(100));
    md.push(format!("\n#### Counter update grid\n\n- fitted on the reference reads ({} reads): {g_ref:?}\n- fitted on the meter's reads ({} reads): {g_met:?}", refs.len(), counter.len()));
    if let (Some(a), Some(b)) = (g_ref, g_met) {
        let t = refs.last().map_or(0, |s| s.t_ns);
        let d = (a.floor(t) as f64 - b.floor(t) as f64).rem_euclid(a.period_ns);
        md.push(format!(
            "- update instants at the end of the loads differ by {:.2} ms",
            d.min(a.period_ns - d) * 1e-6
        ));
    }
    // Phase of the reference reads against its grid (a read pattern locked to the updates
    // would show as clusters).
    if let Some(g) = g_ref {
        let mut h = [0usize; 10];
        for s in &refs {
            let x = (s.t_ns as f64 - g.phase_ns).rem_euclid(g.period_ns) / g.period_ns;
            h[((x * 10.0) as usize).min(9)] += 1;
        }
        md.push(format!("- reference read phases in tenths of the period: {h:?}"));
    }

    // Live windows.
    md.push("\n#### Live windows (begin/end at the defaults) against the reference\n".into());
    md.push("reference = counter delta from the independent ~53 ms reader, edges interpolated linearly between its update points; Zeus = synchronous counter reads just before begin and after end.\n".into());
    md.push("| load | window | s | reference J | ours J | ours err | ours counter-linear err | instant ∫ err | Zeus err | paper 1 Hz err | flags |".into());
    md.push("|---|---|---|---|---|---|---|---|---|---|---|".into());
    let mut rows = Vec::new();
    let mut short: std::collections::BTreeMap<(String, String), ByLength> = Default::default();
    for l in &live {
        let m = session.windows.iter().find(|w| w.id == l.id.0).unwrap();
        let d = &m.devices[0];
        let t0 = (m.start.0 * 1e9).round() as u64;
        let t1 = t0 + (m.duration.0 * 1e9).round() as u64;
        let Some(r) = reference(t0, t1) else { continue };
        let e = |x: Option<eai_core::Joules>| x.map(|x| (x.0 - r) / r * 100.0);
        let coarse = d.flags.iter().any(|f| matches!(f, Flag::CoarseEdge { .. }));
        let zeus = (l.zeus - r) / r * 100.0;
        md.push(format!(
            "| {} | {} | {:.2} | {:.1} | {} | {} | {} | {} | {:+.3} % | {} | {:?} |",
            l.load,
            l.name,
            m.duration.0,
            r,
            j(d.energy),
            pct(e(d.energy)),
            pct(e(d.counter_linear)),
            pct(e(d.instant_integral)),
            zeus,
            pct(e(d.paper_1hz)),
            d.flags
        ));
        let s = short
            .entry((l.load.to_string(), l.name.split(" #").next().unwrap_or("").to_string()))
            .or_default();
        if coarse {
            s.4 += 1;
        } else {
            if let Some(x) = e(d.energy) {
                s.0.push(x);
            }
            if let Some(x) = e(d.instant_integral) {
                s.1.push(x);
            }
            s.2.push(zeus);
            if let Some(x) = e(d.paper_1hz) {
                s.3.push(x);
            }
        }
        rows.push(serde_json::json!({"load": l.load, "window": l.name, "t0_ns": t0, "t1_ns": t1,
            "reference_j": r, "ours_j": d.energy.map(|x| x.0), "ours_linear_j": d.counter_linear.map(|x| x.0),
            "instant_j": d.instant_integral.map(|x| x.0), "zeus_j": l.zeus, "paper_1hz_j": d.paper_1hz.map(|x| x.0),
            "flags": format!("{:?}", d.flags)}));
    }
    md.push("\n#### Live windows by length (errors vs the reference, windows with edge reads; CoarseEdge = edge-read budget spent)\n".into());
    md.push(
        "| load | window | n | ours | instant ∫ | Zeus two-read | paper 1 Hz | CoarseEdge |".into(),
    );
    md.push("|---|---|---|---|---|---|---|---|".into());
    for ((load, name), (a, b, c, d, k)) in &short {
        md.push(format!(
            "| {load} | {name} | {} | {} | {} | {} | {} | {k} |",
            a.len(),
            stat_str(a),
            stat_str(b),
            stat_str(c),
            stat_str(d)
        ));
    }

    // Windows defined after the fact (no edge reads): random windows inside each load.
    md.push(
        "\n#### Windows defined after the fact (random offsets inside each load; no edge reads)\n"
            .into(),
    );
    md.push("| load | window | n | ours | CoarseEdge flagged |".into());
    md.push("|---|---|---|---|---|".into());
    let mut posthoc = Vec::new();
    for (name, (a, b)) in [("steady", steady), ("bursty", bursty)] {
        for len_s in [0.5f64, 1.0, 5.0] {
            let len = (len_s * 1e9) as u64;
            let (mut errs, mut flagged) = (Vec::new(), 0);
            for _ in 0..40 {
                let t0 = a + (rng.next_f64() * (b - a - len) as f64) as u64;
                let Ok(m) = tl.measure("post hoc", t0, t0 + len) else { continue };
                let (Some(x), Some(r)) = (m.devices[0].energy, reference(t0, t0 + len)) else {
                    continue;
                };
                flagged += usize::from(
                    m.devices[0].flags.iter().any(|f| matches!(f, Flag::CoarseEdge { .. })),
                );
                errs.push((x.0 - r) / r * 100.0);
            }
            md.push(format!(
                "| {name} | {len_s} s | {} | {} | {flagged} |",
                errs.len(),
                stat_str(&errs)
            ));
            posthoc.push(serde_json::json!({"load": name, "window_s": len_s, "errors_pct": errs}));
        }
    }

    // Overheads.
    let dur_s = tl.end_ns() as f64 * 1e-9;
    let per_hour: f64 =
        tl.channels.iter().map(|c| c.samples.len() as f64 / dur_s * 3600.0 * 16.0).sum();
    md.push("\n#### Overheads\n".into());
    md.push(format!(
        "- sampler CPU (all eai-power threads) at the defaults, steady state (idle GPU, no windows, {:.1}–{:.1} s after start, between calibration bursts): **{:.3} %** of one core, {} counter reads in 20 s",
        steady_span.0,
        steady_span.1,
        cpu_steady * 100.0,
        reads_steady
    ));
    md.push(format!(
        "- start-up phase (2.5–14.5 s after start: includes the 8-s calibration burst; idle GPU, no windows): {:.3} %; during the two loads with {} live windows and the reference reader running ({:.0} s): {:.3} %",
        cpu_idle * 100.0,
        live.len() + 2,
        load_s,
        cpu_load * 100.0
    ));
    md.push(format!(
        "- counter reads by the meter: {} in {:.1} s ({:.2}/s, incl. the start-up burst)",
        counter.len(),
        dur_s,
        counter.len() as f64 / dur_s
    ));
    md.push(format!("- begin+end pair with the sampler live: {be:?} ({n} pairs)"));
    md.push(format!(
        "- `measurement()` right after `end` of the 5 s windows returned after: {:?}",
        latency
    ));
    md.push(format!(
        "- trace memory: {:.2} MB per GPU-hour ({} samples in {:.1} s)",
        per_hour / 1e6,
        tl.channels.iter().map(|c| c.samples.len()).sum::<usize>(),
        dur_s
    ));
    for s in &session.stats {
        md.push(format!(
            "- reads {:?}: {} reads, mean {}, max {}",
            s.signal,
            s.reads,
            ms(Some(s.mean_read)),
            ms(Some(s.max_read))
        ));
    }
    let text = md.join("\n");
    println!("{text}");
    std::fs::write(out_dir.join("power-gpu.md"), &text).unwrap();
    std::fs::write(
        out_dir.join("power-gpu.json"),
        serde_json::to_string_pretty(&serde_json::json!({"windows": rows, "posthoc": posthoc,
            "cpu_idle_frac": cpu_idle, "cpu_load_frac": cpu_load, "cpu_steady_frac": cpu_steady, "reads_steady_20s": reads_steady, "begin_end_ns": be.as_nanos() as u64,
            "trace_bytes_per_hour": per_hour, "stats": session.stats})).unwrap(),
    )
    .unwrap();
    session.timeline.save(&out_dir.join("trace.json")).unwrap();
    let mut rt = Timeline::new(tl.sources.clone());
    for s in &refs {
        rt.push(0, Signal::EnergyCounter, *s);
    }
    rt.save(&out_dir.join("reference.json")).unwrap();
}
