//! Measure a closure's energy with every sensor this machine has (NVIDIA GPUs through NVML, CPU
//! packages through RAPL); a machine without one says which backends are missing and why.
//!
//! Your `Cargo.toml`: `eai-power = { version = "0.1", features = ["nvml"] }`. Run here with
//! `cargo run -p eai-power --features nvml --example measure_closure`.
use eai_power::{CommandOptions, Meter, MeterConfig, discover};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (sources, unavailable, _warnings) = discover(&CommandOptions::default())?;
    unavailable.iter().for_each(|u| eprintln!("unavailable: {u}"));
    if sources.is_empty() {
        return Err("no power sensor on this machine".into());
    }
    let meter = Meter::start(sources, MeterConfig::new())?;
    let work = || (0..400_000_000u64).fold(0u64, |a, i| a.wrapping_add(i ^ (a >> 3)));
    let (answer, m) = meter.measure("my closure", work)?;
    println!("{answer}\n{m}");
    Ok(())
}
