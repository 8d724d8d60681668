//! Offline check of the counter read rate: loads a recorded GPU trace (JSON), keeps every
//! `k`-th counter read, and compares random windows against the full-rate counter estimate.
//!
//! Run: `decimate trace.json 10` (20 Hz recorded -> 2 Hz).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use eai_power::{Signal, Timeline};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("trace.json");
    let k: usize = args.next().map_or(10, |s| s.parse().unwrap());
    let full = Timeline::load(std::path::Path::new(&path)).unwrap();
    let mut dec = full.clone();
    for c in &mut dec.channels {
        if c.signal == Some(Signal::EnergyCounter) {
            c.samples = c.samples.iter().step_by(k).copied().collect();
        }
    }
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
    for len_s in [0.5f64, 1.0, 5.0, 10.0] {
        let len = (len_s * 1e9) as u64;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..200 {
            let t0 = 2_000_000_000 + (rnd() * (end - len - 4_000_000_000) as f64) as u64;
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
        println!("| {len_s} s | {} | {} | {} |", a.len(), st(&a), st(&b));
    }
}
