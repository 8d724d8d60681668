//! EOR (score per watt-hour) of two runs, and the candidate's Table 2 row against the baseline.
//!
//! Your `Cargo.toml`: `eai-metrics = "0.1"` and `eai-core = "0.1"`. Run here with
//! `cargo run -p eai-metrics --example eor`.
use eai_core::{Joules, Seconds};
use eai_metrics::{EnergyDomain, Run, compare};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let run = |scheme: &str, wh: f64, score: f64| {
        Run::builder("my-model", scheme, "my-gpu")
            .score("arc_easy", score)
            .energy(EnergyDomain::Gpu(0), Joules::from_watt_hours(wh))
            .wall(Seconds(120.0))
            .build()
    };
    let (fp32, int8) = (run("fp32", 2.0, 0.71)?, run("int8", 1.4, 0.70)?);
    println!("EOR fp32 {:.3}/Wh, int8 {:.3}/Wh", fp32.eor()?.0, int8.eor()?.0);
    println!("{:#?}", compare(&[fp32], &[int8])?);
    Ok(())
}
