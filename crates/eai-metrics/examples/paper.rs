#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The paper's published numbers through this crate: Table 2's internal consistency and the
//! recommender on its three deployment scenarios.
//!
//! `cargo run -p eai-metrics --example paper`

use eai_metrics::{ProfileSet, paper, recommend};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("# Table 2 against EOR_c/EOR_b = retention / (1 - reduction)\n");
    println!(
        "| Strategy | Energy Red. | Acc. Loss | EOR Imp. (published) | zero-loss EOR | implied at stated | max with rounding | verdict |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for row in paper::table2() {
        let c = paper::check_row(&row)?;
        let loss = match row.loss_statement {
            paper::LossStatement::Below => format!("<{:.1}", row.accuracy_loss),
            paper::LossStatement::Exact => format!("{:.1}", row.accuracy_loss),
        };
        println!(
            "| {} | {:.1} % | {loss} | {:.1} % | {:.2} % | {:.2}–{:.2} % | {:.2} % | {:?} |",
            row.strategy,
            row.energy_reduction,
            row.eor_improvement,
            c.zero_loss.0,
            c.at_stated.0.0,
            c.at_stated.1.0,
            c.max_with_rounding.0,
            c.verdict
        );
    }
    let profiles = ProfileSet::builtin()?;
    for (name, cons) in [
        ("Data centre", paper::data_centre()),
        ("Enterprise", paper::enterprise()),
        ("Edge", paper::edge()),
    ] {
        println!("\n# Scenario: {name}\n");
        println!("{}", recommend(&paper::scenario_candidates(), &cons, &profiles)?.to_markdown());
    }
    Ok(())
}
