//! Power alone, around your own code: `eai-power` without the rest of eai.
//!
//! Samples every NVIDIA GPU (NVML) and readable CPU package (RAPL) in the background, runs a
//! region of code inside a window, and prints its energy by every estimator, with quality flags.
//! On a machine without sensors it says which backends are missing and why; `--constant W` adds
//! a labelled constant source to try the flow anyway.
//!
//! ```sh
//! cargo run --release --example measure_region
//! cargo run --release --example measure_region -- --constant 65
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use eai::core::Watts;
use eai::power::{CommandOptions, ConstantSource, Meter, MeterConfig, discover};

fn work() -> f64 {
    // A region of your own: 2 s of dense arithmetic on one core.
    let t = std::time::Instant::now();
    let mut acc = 0.0f64;
    let mut x = 1.0f64;
    while t.elapsed() < Duration::from_secs(2) {
        for _ in 0..10_000 {
            x = (x * 1.000_001 + 0.5).fract() + 1.0;
            acc += x.sqrt();
        }
    }
    acc
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let constant = std::env::args()
        .skip_while(|a| a != "--constant")
        .nth(1)
        .map(|w| w.parse::<f64>())
        .transpose()?;
    let (mut sources, unavailable, warnings) = discover(&CommandOptions::default())?;
    for u in &unavailable {
        eprintln!("unavailable: {u}");
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if let Some(w) = constant {
        sources.push(Box::new(ConstantSource::new(Watts(w))));
    }
    if sources.is_empty() {
        eprintln!("no power source on this machine; pass `-- --constant WATTS` to try the flow");
        return Ok(());
    }
    let meter = Meter::start(sources, MeterConfig::new())?;
    let idle = meter.measure_baseline(Duration::from_secs(2))?;
    let (acc, mut m) = meter.measure("my region", work)?;
    m.subtract_baseline(&idle);
    println!("region result {acc:.3}");
    print!("{m}");
    if let Some(e) = m.energy() {
        println!("total {:.2} J = {:.6} Wh in {:.2} s", e.0, e.to_watt_hours(), m.duration.0);
    }
    let session = meter.stop()?;
    println!("{} samples recorded", session.timeline.sample_bytes() / 16);
    Ok(())
}
