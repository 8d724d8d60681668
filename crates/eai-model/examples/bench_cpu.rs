#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CPU prefill/decode throughput, llama-bench style (pp = one prompt of N tokens, tg = N greedy
//! decode steps with the KV cache).
//!
//! `cargo run --release -p eai-model --example bench_cpu -- <model.gguf|hf-dir> [scheme] [pp] [tg] [reps]`
//! Prints one JSON line per measurement.

use std::time::Instant;

use eai_model::{Engine, KvCache, LoadOptions, Scheme, Scratch};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("usage: bench_cpu <model.gguf|hf-dir> [scheme] [pp] [tg] [reps]");
    let scheme = Scheme::from_label(args.get(2).map_or("fp32", String::as_str)).expect("scheme");
    let pp: usize = args.get(3).map_or(512, |s| s.parse().unwrap());
    let tg: usize = args.get(4).map_or(64, |s| s.parse().unwrap());
    let reps: usize = args.get(5).map_or(3, |s| s.parse().unwrap());
    let t0 = Instant::now();
    let opts = LoadOptions::new(scheme);
    let engine = if std::path::Path::new(path).is_dir() {
        Engine::from_hf_dir(path, opts)
    } else {
        Engine::from_gguf(path, opts)
    }
    .unwrap();
    let load_s = t0.elapsed().as_secs_f64();
    let model = engine.model();
    let text = "The quick brown fox jumps over the lazy dog while the energy meter keeps counting joules. ".repeat(64);
    let mut ids = engine.tokenizer().encode(&text).unwrap();
    ids.truncate(pp);
    assert_eq!(ids.len(), pp, "prompt too short");
    let mut scratch = Scratch::default();
    let threads = rayon::current_num_threads();
    for rep in 0..reps {
        let mut cache = KvCache::new(model.config());
        let t = Instant::now();
        let h = model.forward(&[&ids], &mut [&mut cache], &mut scratch).unwrap();
        let last = h.row(pp - 1).to_owned().insert_axis(ndarray::Axis(0));
        let logits = model.logits(last.view()).unwrap();
        let pp_s = t.elapsed().as_secs_f64();
        let mut next = argmax(logits.row(0).as_slice().unwrap());
        // Decode from a short context, as llama-bench's tg does (fresh context per test).
        let mut cache = KvCache::new(model.config());
        model.forward(&[&ids[..1]], &mut [&mut cache], &mut scratch).unwrap();
        let t = Instant::now();
        for _ in 0..tg {
            let h = model.forward(&[&[next]], &mut [&mut cache], &mut scratch).unwrap().to_owned();
            let logits = model.logits(h.view()).unwrap();
            next = argmax(logits.row(0).as_slice().unwrap());
        }
        let tg_s = t.elapsed().as_secs_f64();
        println!(
            "{{\"engine\":\"eai-model\",\"scheme\":\"{}\",\"threads\":{threads},\"rep\":{rep},\"load_s\":{load_s:.3},\"pp\":{pp},\"pp_tok_s\":{:.2},\"tg\":{tg},\"tg_tok_s\":{:.2}}}",
            scheme.label(),
            pp as f64 / pp_s,
            tg as f64 / tg_s
        );
    }
}

fn argmax(r: &[f32]) -> u32 {
    let mut b = 0;
    for (i, v) in r.iter().enumerate() {
        if *v > r[b] {
            b = i;
        }
    }
    b as u32
}
