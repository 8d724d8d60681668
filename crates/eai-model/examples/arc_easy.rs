#![allow(clippy::unwrap_used, clippy::expect_used)]
//! ARC-Easy (lm-eval `arc_easy`, 0-shot, test split) — or another multiple-choice task — through
//! eai-eval on the CPU engine.
//!
//! `cargo run --release -p eai-model --example arc_easy -- <model.gguf> <data-root> <schemes,comma> [limit|all] [task]`
//! e.g. `... SmolLM2-135M-Instruct.Q4_1.gguf ../shared/data fp32,fp16,int8-w8a8,int8-w8a16 500 hellaswag`.
//! Prints one JSON line per scheme.

use std::path::Path;
use std::time::Instant;

use eai_core::LanguageModel;
use eai_eval::{Benchmark, Evaluator, Limit, Suite, TaskOptions};
use eai_model::{Engine, LoadOptions, Scheme};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model = &args[1];
    let root = Path::new(&args[2]);
    let schemes: Vec<Scheme> =
        args[3].split(',').map(|s| Scheme::from_label(s).expect("scheme")).collect();
    let limit = args.get(4).filter(|s| *s != "all").map(|s| Limit::Count(s.parse().unwrap()));
    let bench = Benchmark::from_name(args.get(5).map_or("arc_easy", String::as_str)).unwrap();
    let opts = TaskOptions { limit, ..TaskOptions::default() };
    let suite = Suite::load(root, &[bench], &opts).unwrap();
    let n_req = suite.request_count().unwrap();
    for s in schemes {
        let mut lm = Engine::from_gguf(model, LoadOptions::new(s)).unwrap();
        let settings = lm.settings_label();
        let t = Instant::now();
        let res = Evaluator::new().progress(false).run(&mut lm, &suite).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let task = res.task(bench.name()).unwrap();
        let acc = task.metric("acc,none").unwrap();
        let accn = task.metric("acc_norm,none").unwrap();
        let c = lm.counters();
        println!(
            "{{\"task\":\"{}\",\"scheme\":\"{}\",\"settings\":\"{settings}\",\"limit\":{:?},\"requests\":{n_req},\"acc\":{:.4},\"acc_stderr\":{:.4},\"acc_norm\":{:.4},\"acc_norm_stderr\":{:.4},\"seconds\":{secs:.1},\"forward_passes\":{},\"tokens_processed\":{},\"info\":\"{:?}\"}}",
            bench.name(),
            s.label(),
            args.get(4),
            acc.value,
            acc.stderr.unwrap_or(f64::NAN),
            accn.value,
            accn.stderr.unwrap_or(f64::NAN),
            c.forward_passes,
            c.tokens_processed,
            lm.info().scheme
        );
    }
}
