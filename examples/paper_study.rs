//! The paper's full protocol on your model and hardware: every scheme, the five benchmarks
//! with their conventional shot counts, three repetitions, a 10 s idle baseline and a 5-minute
//! cool-down per scheme, energy from NVML/RAPL; then Table 2 with 95 % intervals, the Pareto
//! front and the deployment advice, written to `eai-paper-study/`.
//!
//! ```sh
//! # data laid out like shared/data (see docs/eval.md); the model as a GGUF file
//! cargo run --release --example paper_study -- --model qwen2.5-7b-instruct.gguf --data ../shared/data \
//!     --hardware H100-SXM5-80GB
//! # a quick dress rehearsal: 20 documents per task, no cool-down
//! cargo run --release --example paper_study -- --limit 20 --cooldown 0
//! ```
//!
//! Arguments: `--model GGUF|smollm2` (default smollm2), `--data DIR` (default `../shared/data`),
//! `--limit N` (documents per task, default all), `--cooldown S` (default 300), `--repeats N`
//! (default 3), `--hardware ID` (a hardware-profile id enables the hardware checks), `--out DIR`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use eai::eval::{Benchmark, Limit, Setting, TaskOptions};
use eai::{GgufLoader, Scheme, Study, StudyTask};

fn arg(name: &str) -> Option<String> {
    let mut it = std::env::args().skip_while(|a| a != name);
    it.next()?;
    it.next()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model =
        eai_cli::cli::ModelArgs { model: arg("--model").unwrap_or_else(|| "smollm2".into()) };
    let gguf = model.resolve()?;
    let data = PathBuf::from(arg("--data").unwrap_or_else(|| "../shared/data".into()));
    if !data.is_dir() {
        return Err(format!("{} is not a directory (pass --data DIR)", data.display()).into());
    }
    let limit: Option<usize> = arg("--limit").map(|s| s.parse()).transpose()?;
    let cooldown: f64 = arg("--cooldown").map_or(Ok(300.0), |s| s.parse())?;
    let repeats: u32 = arg("--repeats").map_or(Ok(3), |s| s.parse())?;
    let out = PathBuf::from(arg("--out").unwrap_or_else(|| "eai-paper-study".into()));

    let opts = TaskOptions {
        setting: Setting::Conventional,
        limit: limit.map(Limit::Count),
        ..TaskOptions::default()
    };
    let mut tasks = Vec::new();
    for b in [
        Benchmark::Mmlu,
        Benchmark::ArcChallenge,
        Benchmark::TruthfulqaMc2,
        Benchmark::Gsm8k,
        Benchmark::Hellaswag,
    ] {
        // MMLU's 57 subjects run in one window and score as the size-weighted `mmlu` group.
        let suite = eai::eval::tasks::load(&data, b, &opts)?;
        if suite.groups.iter().any(|g| g.name == b.name()) {
            tasks.push(StudyTask::group(b.name(), suite)?);
        } else {
            tasks.extend(suite.tasks.into_iter().map(StudyTask::new));
        }
    }
    let mut study = Study::new(GgufLoader::new(gguf))
        .schemes([
            Scheme::Fp32,
            Scheme::Fp16,
            Scheme::Bf16,
            Scheme::Int8WeightOnly,
            Scheme::Dynamic,
        ])
        .tasks(tasks)
        .repeats(repeats)
        .warmup_docs(5)
        .baseline(Duration::from_secs(10))
        .cooldown(Duration::from_secs_f64(cooldown));
    if let Some(h) = arg("--hardware") {
        study = study.hardware(h);
    }
    let results = study.run()?;
    let report = results.write(&out)?;
    println!("{}\n\n{}", report.energy_kind.banner(), report.table());
    println!("report: {}", out.join(eai::files::REPORT_MD).display());
    Ok(())
}
