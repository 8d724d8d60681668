//! Offline check of the counter read rate: loads a recorded GPU trace (JSON), keeps every
//! `k`-th counter read, and compares random windows against the full-rate counter estimate.
//!
//! Run: `decimate trace.json 10` (20 Hz recorded -> 2 Hz, every 10th read), or
//! `decimate trace.json grid 2` (the sampler's default schedule replayed: 1-s bursts of all
//! reads every 20 s, between them 2 reads/s each taken in the middle of an update interval of
//! the grid fitted on the bursts), or `decimate trace.json edge` (the current default
//! schedule: a 2-s burst at start and 0.74-s bursts at 8, 24, 56, 120 s, one read per 2 s
//! mid-interval, plus the
//! two edge reads per window edge that `begin`/`end` request: the first read clear of the
//! update instants in the update interval containing the edge and one in the next interval;
//! the `post-hoc` column is the same schedule without edge reads, i.e. a window defined after
//! the fact). Windows are classed steady / bursty / idle by instant power.
//! `decimate trace.json bench reference.json power-gpu.json` recomputes the live windows of a
//! `gpu_bench` run from its saved trace with the current estimator (flags included) against
//! its saved reference reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use eai_power::{Signal, Timeline};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("trace.json");
    let mode = args.next().unwrap_or_else(|| "10".into());
    let full = Timeline::load(std::path::Path::new(&path)).unwrap();
    if mode == "edge" {
        edge_mode(&full);
        return;
    }
    if mode == "self" {
        self_mode(&full);
        return;
    }
    if mode == "bench" {
        let refs =
            Timeline::load(std::path::Path::new(&args.next().expect("reference.json"))).unwrap();
        let windows: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(args.next().expect("power-gpu.json")).unwrap(),
        )
        .unwrap();
        bench_mode(&full, &refs, &windows);
        return;
    }
    let mut dec = full.clone();
    for c in &mut dec.channels {
        if c.signal == Some(Signal::EnergyCounter) {
            if mode == "grid" {
                let hz: f64 = args.next().map_or(2.0, |s| s.parse().unwrap());
                c.samples = grid_schedule(&c.samples, hz);
            } else {
                let k: usize = mode.parse().unwrap();
                c.samples = c.samples.iter().step_by(k).copied().collect();
            }
            eprintln!("counter reads kept: {}", c.samples.len());
        }
    }
    let inst = full.channels.iter().find(|c| c.signal == Some(Signal::InstantPower)).unwrap();
    let class = |t0: u64, t1: u64| {
        let v: Vec<f64> =
            inst.samples.iter().filter(|s| s.t_ns >= t0 && s.t_ns <= t1).map(|s| s.value).collect();
        let mn = v.iter().copied().fold(f64::INFINITY, f64::min);
        let mx = v.iter().copied().fold(0.0, f64::max);
        if mn > 400.0 {
            "steady"
        } else if mx > 400.0 {
            "bursty"
        } else {
            "idle"
        }
    };
    let end = full.end_ns();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    println!(
        "| window | trials | decimated hybrid vs full-rate hybrid (mean ± sd, max) | decimated linear vs full-rate |"
    );
    println!("|---|---|---|---|");
    for (len_s, want) in
        [0.5f64, 1.0, 5.0, 10.0].iter().flat_map(|l| ["steady", "bursty", "any"].map(|w| (*l, w)))
    {
        let len = (len_s * 1e9) as u64;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut tries = 0;
        while a.len() < 60 && tries < 3_000 {
            tries += 1;
            let t0 = 2_000_000_000 + (rnd() * (end - len - 4_000_000_000) as f64) as u64;
            let c = class(t0, t0 + len);
            if want != "any" && c != want {
                continue;
            }
            let f = full.measure("f", t0, t0 + len).unwrap();
            let d = dec.measure("d", t0, t0 + len).unwrap();
            let (Some(r), Some(x), Some(l)) =
                (f.devices[0].energy, d.devices[0].energy, d.devices[0].counter_linear)
            else {
                continue;
            };
            a.push((x.0 - r.0) / r.0 * 100.0);
            b.push((l.0 - r.0) / r.0 * 100.0);
        }
        let st = |v: &[f64]| {
            let n = v.len() as f64;
            let m = v.iter().sum::<f64>() / n;
            let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            let mx = v.iter().fold(0.0f64, |z, x| z.max(x.abs()));
            format!("{m:+.3} ± {sd:.3} % (max {mx:.3} %)")
        };
        println!("| {len_s} s {want} | {} | {} | {} |", a.len(), st(&a), st(&b));
    }
}

/// The sampler's default counter schedule replayed on a 20 Hz recording.
fn grid_schedule(reads: &[eai_power::Sample], hz: f64) -> Vec<eai_power::Sample> {
    let t_first = reads[0].t_ns;
    let in_burst = |t: u64| (t - t_first) % 20_000_000_000 < 1_000_000_000;
    let burst: Vec<_> = reads.iter().copied().filter(|s| in_burst(s.t_ns)).collect();
    let grid = eai_power::integrate::fit_grid(&burst, std::time::Duration::from_millis(100))
        .expect("grid from bursts");
    eprintln!("grid fitted on bursts: {grid:?}");
    let step = (1e9 / hz) as u64;
    let mut out = Vec::new();
    let mut next = t_first;
    for s in reads {
        if in_burst(s.t_ns) {
            out.push(*s);
            next = s.t_ns + step;
            continue;
        }
        if s.t_ns < next {
            continue;
        }
        // Only reads in the middle half of an update interval (what the sampler schedules).
        let ph = (s.t_ns as f64 - grid.phase_ns).rem_euclid(grid.period_ns) / grid.period_ns;
        if (0.25..0.75).contains(&ph) {
            out.push(*s);
            next = s.t_ns + step - 50_000_000;
        }
    }
    out
}

fn rnd_gen() -> impl FnMut() -> f64 {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn stat(v: &[f64]) -> String {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let mx = v.iter().fold(0.0f64, |z, x| z.max(x.abs()));
    format!("{m:+.3} ± {sd:.3} % (max {mx:.3} %)")
}

/// The default schedule (bursts, 1 Hz mid-interval) and the edge reads of one window.
fn edge_mode(full: &Timeline) {
    use eai_power::Sample;
    use eai_power::integrate::{UpdateGrid, fit_grid};
    let ci = full.channels.iter().position(|c| c.signal == Some(Signal::EnergyCounter)).unwrap();
    let reads = full.channels[ci].samples.clone();
    let u = std::time::Duration::from_millis(100);
    let g: UpdateGrid = fit_grid(&reads, u).unwrap();
    eprintln!("grid fitted on the whole 20 Hz trace: {g:?}");
    let into = |t: u64| (t as f64 - g.phase_ns).rem_euclid(g.period_ns) / g.period_ns;
    let idx = |t: u64| ((t as f64 - g.phase_ns) / g.period_ns).floor() as i64;
    let t_first = reads[0].t_ns;
    let in_burst = |t: u64| {
        let s = t - t_first;
        s < 2_000_000_000
            || [8u64, 24, 56, 120, 240]
                .iter()
                .any(|b| s >= b * 1_000_000_000 && s < b * 1_000_000_000 + 740_000_000)
    };
    let mut base: Vec<Sample> = Vec::new();
    let mut next = t_first;
    for s in &reads {
        if in_burst(s.t_ns) {
            base.push(*s);
            next = s.t_ns + 2_000_000_000;
        } else if s.t_ns >= next && (0.15..0.8).contains(&into(s.t_ns)) {
            base.push(*s);
            next = s.t_ns + 2_000_000_000 - 60_000_000;
        }
    }
    eprintln!("base schedule keeps {} of {} reads", base.len(), reads.len());
    let edge_reads = |t: u64| -> Vec<Sample> {
        let k = idx(t);
        let mut out = Vec::new();
        // interval k: the first read at or after t, clear of the update instants
        if let Some(r) = reads
            .iter()
            .find(|r| r.t_ns >= t && idx(r.t_ns) == k && (0.15..0.8).contains(&into(r.t_ns)))
        {
            out.push(*r);
        }
        if let Some(r) =
            reads.iter().find(|r| idx(r.t_ns) == k + 1 && (0.15..0.8).contains(&into(r.t_ns)))
        {
            out.push(*r);
        }
        out
    };
    let inst = full.channels.iter().find(|c| c.signal == Some(Signal::InstantPower)).unwrap();
    let class = |t0: u64, t1: u64| {
        let v: Vec<f64> =
            inst.samples.iter().filter(|s| s.t_ns >= t0 && s.t_ns <= t1).map(|s| s.value).collect();
        let mn = v.iter().copied().fold(f64::INFINITY, f64::min);
        let mx = v.iter().copied().fold(0.0, f64::max);
        if mn > 400.0 {
            "steady"
        } else if mx > 400.0 {
            "bursty"
        } else {
            "idle"
        }
    };
    let end = full.end_ns();
    let mut rnd = rnd_gen();
    println!(
        "| window | trials | edge reads vs full-rate primary | post-hoc (no edge reads) vs full-rate primary | edge reads vs full-rate counter-linear | CoarseEdge flags (edge / post-hoc) |"
    );
    println!("|---|---|---|---|---|---|");
    for (len_s, want) in [0.1f64, 0.5, 1.0, 5.0, 10.0]
        .iter()
        .flat_map(|l| ["steady", "bursty", "any"].map(|w| (*l, w)))
    {
        let len = (len_s * 1e9) as u64;
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        let (mut fe, mut fp) = (0, 0);
        let mut tries = 0;
        while a.len() < 60 && tries < 5_000 {
            tries += 1;
            let t0 = 3_000_000_000 + (rnd() * (end - len - 6_000_000_000) as f64) as u64;
            let t1 = t0 + len;
            if want != "any" && class(t0, t1) != want {
                continue;
            }
            let mut with = base.clone();
            with.extend(edge_reads(t0));
            with.extend(edge_reads(t1));
            with.sort_by_key(|s| s.t_ns);
            with.dedup_by_key(|s| s.t_ns);
            let mut te = full.clone();
            te.channels[ci].samples = with;
            let mut tp = full.clone();
            tp.channels[ci].samples = base.clone();
            let f = full.measure("f", t0, t1).unwrap();
            let e = te.measure("e", t0, t1).unwrap();
            let p = tp.measure("p", t0, t1).unwrap();
            let (Some(r), Some(rl), Some(x), Some(y)) = (
                f.devices[0].energy,
                f.devices[0].counter_linear,
                e.devices[0].energy,
                p.devices[0].energy,
            ) else {
                continue;
            };
            let coarse = |m: &eai_power::Measurement| {
                m.devices[0].flags.iter().any(|f| matches!(f, eai_power::Flag::CoarseEdge { .. }))
            };
            fe += usize::from(coarse(&e));
            fp += usize::from(coarse(&p));
            a.push((x.0 - r.0) / r.0 * 100.0);
            b.push((y.0 - r.0) / r.0 * 100.0);
            c.push((x.0 - rl.0) / rl.0 * 100.0);
        }
        if a.len() < 2 {
            continue;
        }
        println!(
            "| {len_s} s {want} | {} | {} | {} | {} | {fe} / {fp} |",
            a.len(),
            stat(&a),
            stat(&b),
            stat(&c)
        );
    }
}

/// How much the full-rate estimate itself moves when its grid is fitted on a different span
/// of reads (±8 s around the window instead of the whole trace): the grid ambiguity of a
/// trace whose reads do not sweep the update phase.
fn self_mode(full: &Timeline) {
    let ci = full.channels.iter().position(|c| c.signal == Some(Signal::EnergyCounter)).unwrap();
    let inst = full.channels.iter().find(|c| c.signal == Some(Signal::InstantPower)).unwrap();
    let end = full.end_ns();
    let mut rnd = rnd_gen();
    for len_s in [1.0f64, 5.0] {
        let len = (len_s * 1e9) as u64;
        let mut errs = Vec::new();
        let mut tries = 0;
        while errs.len() < 60 && tries < 5000 {
            tries += 1;
            let t0 = 9_000_000_000 + (rnd() * (end - len - 18_000_000_000) as f64) as u64;
            let t1 = t0 + len;
            let v: Vec<f64> = inst
                .samples
                .iter()
                .filter(|s| s.t_ns >= t0 && s.t_ns <= t1)
                .map(|s| s.value)
                .collect();
            let mn = v.iter().copied().fold(f64::INFINITY, f64::min);
            let mx = v.iter().copied().fold(0.0, f64::max);
            if !(mn < 400.0 && mx > 400.0) {
                continue;
            }
            let mut part = full.clone();
            part.channels[ci]
                .samples
                .retain(|s| s.t_ns + 8_000_000_000 > t0 && s.t_ns < t1 + 8_000_000_000);
            let a = full.measure("a", t0, t1).unwrap().devices[0].counter_linear.unwrap().0;
            let b = part.measure("b", t0, t1).unwrap().devices[0].counter_linear.unwrap().0;
            errs.push((b - a) / a * 100.0);
        }
        println!(
            "bursty {len_s} s: full-rate counter-linear, grid fitted on ±8 s vs whole trace: {}",
            stat(&errs)
        );
    }
}

/// Errors of ours and of Zeus two-read (%), and the count of `CoarseEdge` windows.
type Errors = (Vec<f64>, Vec<f64>, usize);

/// Recomputes a `gpu_bench` run's live windows from its saved trace and reference reads.
fn bench_mode(full: &Timeline, refs: &Timeline, bench: &serde_json::Value) {
    use eai_power::integrate::{CounterParams, counter_energy};
    let rr =
        &refs.channels.iter().find(|c| c.signal == Some(Signal::EnergyCounter)).unwrap().samples;
    let params = CounterParams::new(Some(std::time::Duration::from_millis(100)), None);
    let mut by: std::collections::BTreeMap<(String, String), Errors> = Default::default();
    for w in bench["windows"].as_array().unwrap() {
        let (t0, t1) = (w["t0_ns"].as_u64().unwrap(), w["t1_ns"].as_u64().unwrap());
        let r = counter_energy(rr, t0, t1, params, None).unwrap().linear.0;
        let m = full.measure("w", t0, t1).unwrap();
        let d = &m.devices[0];
        let coarse = d.flags.iter().any(|f| matches!(f, eai_power::Flag::CoarseEdge { .. }));
        let name = w["window"].as_str().unwrap().split(" #").next().unwrap().to_string();
        let e = by.entry((w["load"].as_str().unwrap().to_string(), name)).or_default();
        let z = w["zeus_j"].as_f64().unwrap();
        if coarse {
            e.2 += 1;
        } else {
            e.0.push((d.energy.unwrap().0 - r) / r * 100.0);
            e.1.push((z - r) / r * 100.0);
        }
    }
    println!("| load | window | with edge reads | ours | Zeus two-read | CoarseEdge |");
    println!("|---|---|---|---|---|---|");
    for ((load, name), (a, z, k)) in &by {
        let f = |v: &[f64]| if v.len() < 2 { format!("{v:.3?}") } else { stat(v) };
        println!("| {load} | {name} | {} | {} | {} | {k} |", a.len(), f(a), f(z));
    }
}
