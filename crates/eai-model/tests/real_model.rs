//! Tests on the real SmolLM2-135M-Instruct GGUF.

use eai_core::{GenerateRequest, LanguageModel, LoglikelihoodRequest};
use eai_model::{Engine, GgmlType, GgufFile, LoadOptions, ModelConfig, Scheme};

const CAPITALS: &str = "The capital of France is Paris. The capital of Germany is Berlin. The capital of Italy is Rome. The capital of Spain is Madrid.";

#[test]
fn gguf_header_and_tensors() {
    let p = need_model!();
    let f = GgufFile::open(&p).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.data_start(), 1_785_664);
    assert_eq!(f.tensors().len(), 272);
    let e = f.tensor("token_embd.weight").unwrap();
    assert_eq!((e.ty, e.dims.clone(), e.n_bytes), (GgmlType::Q8_0, vec![576, 49152], 30_081_024));
    let k = f.tensor("blk.0.attn_k.weight").unwrap();
    assert_eq!((k.ty, k.n_bytes), (GgmlType::Q4_1, 69_120));
    let cfg = ModelConfig::from_gguf(&f).unwrap();
    assert_eq!(
        (cfg.n_layers, cfg.hidden, cfg.n_heads, cfg.n_kv_heads, cfg.ffn, cfg.vocab),
        (30, 576, 9, 3, 1536, 49152)
    );
    assert_eq!(cfg.rope_theta, 100_000.0);
    assert!(cfg.tie_embeddings);
}

#[test]
fn capitals_nll_and_greedy_chat() {
    let p = need_model!();
    let mut lm = Engine::from_gguf(&p, LoadOptions::new(Scheme::Fp32)).unwrap();
    let ids = lm.tokenizer().encode(CAPITALS).unwrap();
    assert_eq!(ids.len(), 28);
    assert_eq!(&ids[..12], &[504, 3575, 282, 4649, 314, 7042, 30, 378, 3575, 282, 4521, 314]);
    let nll = lm.token_nlls(&ids).unwrap();
    let mean = nll.iter().sum::<f64>() / nll.len() as f64;
    eprintln!("capitals mean NLL {mean:.4}");
    // Our numpy fp32 reference over the same dequantized weights: 1.0822.
    assert!((mean - 1.0822).abs() < 0.005, "mean NLL {mean}");
    let out = lm
        .generate_until(&[GenerateRequest::new(
            "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
            vec!["<|im_end|>".into()],
        )
        .max_gen_toks(20)])
        .unwrap();
    assert_eq!(out[0].text, "The capital of France is Paris.");
    let r = lm
        .loglikelihood(&[
            LoglikelihoodRequest::new("The capital of France is", " Paris"),
            LoglikelihoodRequest::new("The capital of France is", " Berlin"),
        ])
        .unwrap();
    assert!(r[0].logprob > r[1].logprob);
    assert!(r[0].is_greedy);
}

#[test]
fn converted_safetensors_folder_gives_the_same_logits() {
    let p = need_model!();
    let dir = tempfile::tempdir().unwrap();
    let hf = dir.path().join("smollm2-hf");
    eai_model::gguf_to_hf(&p, &hf, eai_model::ConvertDtype::F16).unwrap();
    // FP16 scheme rounds weights to f16 on both paths, so logits must be bit-identical.
    let a = Engine::from_gguf(&p, LoadOptions::new(Scheme::Fp16)).unwrap();
    let b = Engine::from_hf_dir(&hf, LoadOptions::new(Scheme::Fp16)).unwrap();
    let ids = a.tokenizer().encode(CAPITALS).unwrap();
    assert_eq!(b.tokenizer().encode(CAPITALS).unwrap(), ids);
    let la = a.model().logits_for(&ids).unwrap();
    let lb = b.model().logits_for(&ids).unwrap();
    let max = la.iter().zip(lb.iter()).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert_eq!(max, 0.0, "GGUF vs converted safetensors: max |Δlogit| {max}");
    assert_eq!(b.model().config(), a.model().config());
    // The tokenizer.json written by the converter reproduces the GGUF tokenizer (and llama.cpp).
    let fx = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokens.jsonl"),
    )
    .unwrap();
    for line in fx.lines().take(500) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let t = v["text"].as_str().unwrap();
        assert_eq!(
            b.tokenizer().encode_raw(t).unwrap(),
            a.tokenizer().encode_raw(t).unwrap(),
            "{t:?}"
        );
    }
}

#[test]
fn shared_contexts_score_like_full_inputs() {
    let p = need_model!();
    let q = "Question: Which gas do plants take in from the air to make food?\nAnswer:";
    let h = "A man is sitting on a roof. he";
    let reqs: Vec<LoglikelihoodRequest> = [
        (q, " carbon dioxide"),
        (q, " oxygen"),
        (q, " nitrogen gas from the soil"),
        (q, " water vapor"),
        (h, " is using wrap to wrap a pair of skis."),
        (h, " starts pulling up roofing on a roof."),
        ("Lonely context", " with one ending"),
    ]
    .iter()
    .map(|(c, x)| LoglikelihoodRequest::new(*c, *x))
    .collect();
    let mut diffs = Vec::new();
    for scheme in [Scheme::Fp32, Scheme::W8A8] {
        let mut shared = Engine::from_gguf(&p, LoadOptions::new(scheme)).unwrap();
        let mut opts = shared.options().clone();
        opts.share_prefixes = false;
        let mut full = Engine::from_gguf(&p, LoadOptions::new(scheme)).unwrap().with_options(opts);
        let a = shared.loglikelihood(&reqs).unwrap();
        let b = full.loglikelihood(&reqs).unwrap();
        let d: Vec<f64> = a.iter().zip(&b).map(|(x, y)| (x.logprob - y.logprob).abs()).collect();
        eprintln!("{scheme:?}: |Δ logprob| shared vs full inputs: {d:?}");
        diffs.push(d);
        // Two contexts ran once instead of 4 and 2 times.
        assert!(shared.counters().tokens_processed < full.counters().tokens_processed);
        assert!(shared.settings_label().contains("shared_contexts=yes"));
    }
    // FP32: only the float summation order of the short tails differs.
    assert!(diffs[0].iter().all(|&d| d < 1e-4), "fp32 {:?}", diffs[0]);
    // W8A8: per-token int8 rounding turns such 1e-7 differences into an occasional flipped
    // code (seen: one request of seven moved by 0.47 nats); most requests stay identical.
    assert!(diffs[1].iter().filter(|&&d| d < 1e-4).count() >= 5, "w8a8 {:?}", diffs[1]);
    assert!(diffs[1].iter().all(|&d| d < 1.5), "w8a8 {:?}", diffs[1]);
}

/// The token cache gives exactly `encode_pair`'s ids on every distinct request of full ARC-Easy
/// (and HellaSwag's first 2,000 documents) with the real tokenizer, and prints what
/// tokenization costs per request: one encode pair at a time as the engines did before
/// (`encode` with offsets, context re-encoded per continuation), `encode_pair` now, the cache's
/// first pass (parallel, each context once) and its second pass (look-ups). Printed, not
/// asserted (a debug build here; the GPU script prints release figures).
#[test]
fn token_cache_equals_encode_pair_on_real_requests_and_prints_its_cost() {
    use std::time::Instant;

    use eai_eval::{Evaluator, Limit, Suite, TaskOptions};
    let p = need_model!();
    let Some(root) = eai_eval::data::shared_data_dir() else {
        eprintln!("SKIP token_cache_equals_encode_pair_on_real_requests: ../shared/data not found");
        return;
    };
    let tok = eai_model::Tokenizer::from_gguf(&GgufFile::open(&p).unwrap()).unwrap();
    let mut opts = TaskOptions::default();
    let arc = Suite::load_spec(&root, "arc_easy", &opts).unwrap();
    opts.limit = Some(Limit::Count(2_000));
    let hs = Suite::load_spec(&root, "hellaswag", &opts).unwrap();
    let ev = Evaluator::new();
    for (name, suite) in [("arc_easy", arc), ("hellaswag:2000", hs)] {
        let plan = ev.prepare(&suite).unwrap();
        let reqs: Vec<LoglikelihoodRequest> = plan.loglikelihood_requests().cloned().collect();
        let n = reqs.len() as f64;
        let us = |t: Instant| t.elapsed().as_secs_f64() * 1e6 / n;
        let t = Instant::now();
        for r in &reqs {
            let trimmed = r.context.trim_end();
            let whole = format!("{trimmed}{}{}", &r.context[trimmed.len()..], r.continuation);
            let a = tok.inner().encode(whole.as_str(), false).unwrap();
            let b = tok.inner().encode(trimmed, false).unwrap();
            std::hint::black_box((a, b));
        }
        let old = us(t);
        let t = Instant::now();
        let want: Vec<_> =
            reqs.iter().map(|r| tok.encode_pair(&r.context, &r.continuation).unwrap()).collect();
        let now = us(t);
        let cache = eai_model::TokenCache::new();
        let t = Instant::now();
        let first: Vec<_> =
            cache.encode_pairs(&tok, &reqs).into_iter().map(Result::unwrap).collect();
        let cold = us(t);
        let t = Instant::now();
        let second: Vec<_> =
            cache.encode_pairs(&tok, &reqs).into_iter().map(Result::unwrap).collect();
        let warm = us(t);
        assert_eq!(first, want, "{name}: cache (cold) vs encode_pair");
        assert_eq!(second, want, "{name}: cache (warm) vs encode_pair");
        let s = cache.stats();
        assert_eq!((s.misses, s.hits), (reqs.len() as u64, reqs.len() as u64));
        eprintln!(
            "{name}: {} requests, µs/request: before {old:.1}, encode_pair {now:.1}, \
             cache first pass {cold:.1} ({} threads), cache hit {warm:.2}",
            reqs.len(),
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
    }
}
