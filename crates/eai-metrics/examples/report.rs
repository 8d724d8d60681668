#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Reports on measured runs: per-configuration summaries, Table 2 against a baseline scheme,
//! the Pareto front, and a recommendation.
//!
//! `cargo run -p eai-metrics --example report -- runs.json fp32`
//!
//! `runs.json` is a JSON array of [`eai_metrics::Run`] (as serialized by this crate). Scheme
//! labels map to strategies: `fp32`, `fp16`/`fp16-mixed`, `bf16`, `int8*`/`w8a8`, `dynamic*`,
//! `fp8`.

use eai_metrics::{
    Candidate, ConfigSummary, Constraints, Objectives, ParetoPoint, ProfileSet, Run, Strategy,
    Table2, compare, group_by_config, pareto_front, recommend, summaries_to_markdown,
};

fn strategy(scheme: &str) -> Option<Strategy> {
    let s = scheme.to_ascii_lowercase();
    Some(match s.as_str() {
        "fp32" => Strategy::fp32(),
        "fp16" | "fp16-mixed" => Strategy::fp16_mixed(),
        "bf16" => Strategy::bf16(),
        "fp8" => Strategy::fp8(),
        _ if s.starts_with("dynamic") => Strategy::dynamic_int8(),
        _ if s.starts_with("int8") || s == "w8a8" => Strategy::int8(),
        _ => return None,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(base)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: report <runs.json> <baseline-scheme>");
        std::process::exit(2);
    };
    let runs: Vec<Run> = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let groups = group_by_config(&runs);
    let summaries: Vec<ConfigSummary> =
        groups.values().map(|g| ConfigSummary::from_runs(g)).collect::<Result<_, _>>()?;
    println!("# Configurations\n\n{}", summaries_to_markdown(&summaries));

    let mut candidates = Vec::new();
    let mut tables: std::collections::BTreeMap<(String, String), Table2> = Default::default();
    for (cfg, group) in &groups {
        if cfg.scheme == *base {
            continue;
        }
        let Some((_, reference)) = groups
            .iter()
            .find(|(c, _)| c.scheme == *base && c.model == cfg.model && c.hardware == cfg.hardware)
        else {
            continue;
        };
        tables
            .entry((cfg.model.clone(), cfg.hardware.clone()))
            .or_insert_with(|| Table2::new(format!("{} / {} / {}", cfg.model, base, cfg.hardware)))
            .push(&cfg.scheme, &compare(reference, group)?);
        if let Some(s) = strategy(&cfg.scheme) {
            candidates.push(Candidate::from_runs(reference, group, s)?);
        }
    }

    for ((model, hw), t) in &tables {
        println!("# Table 2: {model} on {hw}\n\n{}", t.to_markdown());
    }

    let points: Vec<ParetoPoint> =
        groups.values().map(|g| ParetoPoint::from_runs(g)).collect::<Result<_, _>>()?;
    println!("# Pareto front (score, energy)\n");
    for p in pareto_front(&points, Objectives::ScoreEnergy)? {
        println!("- {}: score {:.4}, {:.3} Wh", p.config, p.score, p.energy.to_watt_hours());
    }
    let rec = recommend(&candidates, &Constraints::default(), &ProfileSet::builtin()?)?;
    println!("\n# Recommendation (energy priority, no other constraint)\n\n{}", rec.to_markdown());
    Ok(())
}
