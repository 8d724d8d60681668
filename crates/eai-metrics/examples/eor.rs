//! EOR (score per watt-hour) of two runs, and the candidate's EOR improvement over the baseline.
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
    let (fp32, int8) = ([run("fp32", 2.0, 0.71)?], [run("int8", 1.4, 0.70)?]);
    let (a, b) = (fp32[0].eor()?.0, int8[0].eor()?.0);
    println!("EOR {a:.3} -> {b:.3}/Wh ({:+.1} %)", compare(&fp32, &int8)?.eor_improvement.value);
    Ok(())
}
