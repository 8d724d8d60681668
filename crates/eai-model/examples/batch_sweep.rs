//! Issue 14's engine-side measurements on a GPU, through `eai-eval`'s `Evaluator` (what the
//! study runs): full ARC-Easy at the engine's batching (whole task per call) against 64
//! requests per call, first pass (tokenizing) against later passes (token cache), and GSM8K
//! greedy generation at several decoding group sizes (`gen_batch`), with the generated texts
//! compared to the first size's.
//!
//! ```text
//! batch_sweep --gguf SmolLM2.gguf --data ../shared/data [--scheme fp16] [--gsm8k 200]
//!             [--gen-batch 32,64,128,256] [--batch-tokens 8192,16384]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use eai_eval::{Evaluator, Limit, Suite, TaskOptions};
use eai_model::TokenCache;
use eai_model::cuda::{GpuEngine, GpuScheme, open_device};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn list(args: &[String], name: &str, def: &str) -> Vec<usize> {
    arg(args, name).unwrap_or_else(|| def.into()).split(',').map(|x| x.parse().unwrap()).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let gguf = PathBuf::from(arg(&args, "--gguf").expect("--gguf PATH"));
    let data = PathBuf::from(arg(&args, "--data").unwrap_or_else(|| "../shared/data".into()));
    let scheme = GpuScheme::from_label(&arg(&args, "--scheme").unwrap_or_else(|| "fp16".into()))
        .expect("scheme");
    let n_gsm: usize = arg(&args, "--gsm8k").map_or(200, |s| s.parse().unwrap());
    let dev = open_device(0).expect("GPU");
    let cache = Arc::new(TokenCache::new());
    let load =
        || GpuEngine::from_gguf(dev.clone(), &gguf, scheme).unwrap().token_cache(cache.clone());
    let ev = Evaluator::new().progress(false).keep_samples(false);

    // Full ARC-Easy: engine batching vs 64 per call; first pass vs cached passes.
    let arc = Suite::load_spec(&data, "arc_easy", &TaskOptions::default()).unwrap();
    let plan = ev.prepare(&arc).unwrap();
    eprintln!(
        "arc_easy: {} requests ({} unique), prepared in {:.3} s",
        plan.requests(),
        plan.unique_requests(),
        plan.prepare_time().0
    );
    for bt in list(&args, "--batch-tokens", "8192") {
        let mut e = load();
        let mut o = e.options().clone();
        o.batch_tokens = bt;
        e = e.with_options(o);
        for (label, evb) in
            [("engine hint", ev.clone()), ("64 per call", ev.clone().batch_size(64))]
        {
            for pass in 1..=3 {
                let r = evb.run_prepared(&mut e, &plan).unwrap();
                let t = r.tasks[0].timing;
                eprintln!(
                    "arc_easy batch_tokens={bt} {label} pass {pass}: total {:.3} s, {:.0} req/s, \
                     engine {:.3} s (tokenize {:.3} s), scoring {:.3} s, bookkeeping {:.3} s, \
                     calls {}, acc {:.4}",
                    t.total.0,
                    plan.unique_requests() as f64 / t.total.0,
                    t.engine.0,
                    t.tokenize.map_or(f64::NAN, |x| x.0),
                    t.scoring.0,
                    t.bookkeeping.0,
                    t.calls,
                    r.tasks[0].metric("acc,none").unwrap().value
                );
            }
        }
        let rep = ev.run_prepared_passes(&mut e, &plan, |p| p.elapsed.as_secs_f64() < 5.0).unwrap();
        let t = rep.results.tasks[0].timing;
        eprintln!(
            "arc_easy batch_tokens={bt} passes over 5 s: {} passes, {:.3} s per pass, \
             engine share {:.3}, agreement {:?}",
            rep.passes,
            t.total.0 / rep.passes as f64,
            t.engine_share(),
            rep.agreement
        );
    }
    eprintln!("token cache: {:?}", cache.stats());

    // GSM8K greedy generation at several group sizes.
    let opts = TaskOptions { limit: Some(Limit::Count(n_gsm)), ..TaskOptions::default() };
    let gsm = Suite::load_spec(&data, "gsm8k:5", &opts).unwrap();
    let plan = ev.prepare(&gsm).unwrap();
    let mut first: Option<Vec<String>> = None;
    for gb in list(&args, "--gen-batch", "32,64,128,256") {
        let mut e = load();
        let mut o = e.options().clone();
        o.gen_batch = gb;
        e = e.with_options(o);
        let t = Instant::now();
        let r = ev.clone().keep_samples(true).run_prepared(&mut e, &plan).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let toks = r.tasks[0].requests.generated_tokens.unwrap_or(0);
        let texts: Vec<String> =
            r.samples.values().flatten().filter_map(|s| s.generation.clone()).collect();
        let same = first.as_ref().map(|f| f.iter().zip(&texts).filter(|(a, b)| a == b).count());
        eprintln!(
            "gsm8k {n_gsm} gen_batch={gb}: {secs:.2} s, {toks} tokens, {:.0} tok/s, \
             strict {:.4}, same text as first size: {same:?}/{}",
            toks as f64 / secs,
            r.tasks[0].metric("exact_match,strict-match").map_or(f64::NAN, |m| m.value),
            texts.len()
        );
        first.get_or_insert(texts);
    }
}
