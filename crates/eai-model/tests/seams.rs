//! Issue 20's model-side seams through the public API: rolling log-likelihoods, the
//! special-token switch, `EngineOptions` built and set in place.
use std::path::Path;

use eai_core::{LanguageModel, RequestKind, RollingRequest};
use eai_model::{Engine, EngineOptions, LoadOptions, SpecialTokens, rolling_windows};

use crate::synthetic::{tiny_llama, weights, write_safetensors};

const EOS: u32 = 299;
const SPECIAL: u32 = 298;

/// A Hugging Face folder with the tiny Llama's weights, EOS 299 and a word-level tokenizer
/// (`t0` … `t297`, plus the special token `<|im_start|>` as id 298 and `</s>` as 299).
fn tiny_dir(dir: &Path) {
    let cfg = tiny_llama();
    write_safetensors(dir, &weights(&cfg, 5), 1);
    let config = r#"{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":96,
        "num_attention_heads":4,"num_key_value_heads":2,"num_hidden_layers":2,"vocab_size":300,
        "rope_theta":10000.0,"rms_norm_eps":1e-5,"tie_word_embeddings":false,
        "max_position_embeddings":256,"eos_token_id":299}"#;
    std::fs::write(dir.join("config.json"), config).unwrap();
    let mut vocab: serde_json::Map<String, serde_json::Value> =
        (0..298u32).map(|i| (format!("t{i}"), serde_json::json!(i))).collect();
    vocab.insert("<|im_start|>".into(), serde_json::json!(SPECIAL));
    vocab.insert("</s>".into(), serde_json::json!(EOS));
    let added = |id: u32, s: &str| {
        serde_json::json!({"id": id, "content": s, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true})
    };
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [added(SPECIAL, "<|im_start|>"), added(EOS, "</s>")],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
        "decoder": null, "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "t0"}
    });
    std::fs::write(dir.join("tokenizer.json"), json.to_string()).unwrap();
}

fn words(ids: impl IntoIterator<Item = u32>) -> String {
    ids.into_iter().map(|i| format!("t{i}")).collect::<Vec<_>>().join(" ")
}

/// Σ log p over a window's continuation, from the engine's per-token NLLs of the window's
/// whole input (an independent route: one plain forward per window, no packing or sharing).
fn window_logprob(engine: &mut Engine, ctx: &[u32], cont: &[u32]) -> f64 {
    let seq: Vec<u32> = ctx.iter().chain(cont).copied().collect();
    let nll = engine.token_nlls(&seq).unwrap();
    -nll[nll.len() - cont.len()..].iter().sum::<f64>()
}

#[test]
fn rolling_loglikelihood_sums_every_token_once() {
    let dir = tempfile::tempdir().unwrap();
    tiny_dir(dir.path());
    let ids: Vec<u32> = (0..30u32).map(|i| (i * 53 + 7) % 298).collect();
    let short: Vec<u32> = ids[..5].to_vec();
    let reqs = [RollingRequest::new(words(ids.clone())), RollingRequest::new(words(short.clone()))];
    for (max_length, share) in [(8usize, true), (8, false), (64, true), (1, true)] {
        let opts = EngineOptions::new().max_length(Some(max_length)).share_prefixes(share);
        let mut e = Engine::from_hf_dir(dir.path(), LoadOptions::default()).unwrap();
        e.set_options(opts);
        assert_eq!(e.supports(RequestKind::LoglikelihoodRolling), Some(true));
        let got = e.loglikelihood_rolling(&reqs).unwrap();
        for (r, toks) in got.iter().zip([&ids, &short]) {
            let windows = rolling_windows(toks, EOS, max_length);
            let want: f64 = windows.iter().map(|(c, k)| window_logprob(&mut e, c, k)).sum();
            assert!(
                (r.logprob - want).abs() < 1e-3 * want.abs().max(1.0),
                "max_length {max_length}: {} vs {want}",
                r.logprob
            );
            assert_eq!(r.tokens, Some(toks.len() as u32));
            assert_eq!(r.windows, Some(windows.len() as u32));
            assert!(r.logprob < 0.0);
        }
    }
    // One window when the text fits: log p(text | EOS) = Σ NLLs of [EOS] ++ text.
    let mut e = Engine::from_hf_dir(dir.path(), LoadOptions::default()).unwrap();
    let one = e.loglikelihood_rolling(&reqs[1..]).unwrap()[0];
    let mut seq = vec![EOS];
    seq.extend(&short);
    let want = -e.token_nlls(&seq).unwrap().iter().sum::<f64>();
    assert!((one.logprob - want).abs() < 1e-4, "{} vs {want}", one.logprob);
    assert_eq!(one.windows, Some(1));
}

#[test]
fn rolling_loglikelihood_runs_the_perplexity_task() {
    let dir = tempfile::tempdir().unwrap();
    tiny_dir(dir.path());
    let mut e = Engine::from_hf_dir(dir.path(), LoadOptions::default()).unwrap();
    let docs = (0..3u32).map(|d| (format!("d{d}"), words((0..20).map(|i| (i * 7 + d) % 298))));
    let task = eai_eval::perplexity::perplexity_task("tiny_ppl", docs).unwrap();
    let suite = eai_eval::Suite { tasks: vec![task], groups: vec![] };
    let res = eai_eval::Evaluator::new().progress(false).run(&mut e, &suite).unwrap();
    let t = &res.tasks[0];
    let bpb = t.metric("bits_per_byte,none").unwrap().value;
    let wppl = t.metric("word_perplexity,none").unwrap().value;
    assert!(bpb.is_finite() && bpb > 0.0, "{bpb}");
    // 20 words of a 298-word vocabulary under near-uniform random weights: perplexity per word
    // is in the hundreds, not 1 and not infinite.
    assert!((20.0..5000.0).contains(&wppl), "{wppl}");
    assert_eq!(t.requests.scored_tokens, Some(60));
}

#[test]
fn special_token_text_parsed_by_default_or_kept_as_text() {
    let dir = tempfile::tempdir().unwrap();
    tiny_dir(dir.path());
    let mut e = Engine::from_hf_dir(dir.path(), LoadOptions::default()).unwrap();
    let text = "t1 <|im_start|> t2";
    assert_eq!(e.tokenizer().special_tokens(), SpecialTokens::Parse);
    assert_eq!(e.tokenizer().encode(text).unwrap(), [1, SPECIAL, 2]);
    let key = e.tokenizer().cache_key();
    let before = e.loglikelihood_rolling(&[RollingRequest::new(text)]).unwrap()[0];
    assert!(!e.settings_label().contains("special_tokens"));
    e.set_special_tokens(SpecialTokens::AsText);
    let ids = e.tokenizer().encode(text).unwrap();
    assert!(!ids.contains(&SPECIAL), "{ids:?}");
    assert_eq!(ids.len(), 5, "{ids:?}"); // t1, "<|", "im_start", "|>" (unknown: t0), t2
    assert_ne!(e.tokenizer().cache_key(), key, "cached ids must not be shared across modes");
    let after = e.loglikelihood_rolling(&[RollingRequest::new(text)]).unwrap()[0];
    assert_eq!(after.tokens, Some(5));
    assert_ne!(before.logprob, after.logprob);
    assert!(e.settings_label().contains("special_tokens=text"));
}

#[test]
fn engine_options_are_built_and_set_in_place() {
    let dir = tempfile::tempdir().unwrap();
    tiny_dir(dir.path());
    let mut e = Engine::from_hf_dir(dir.path(), LoadOptions::default()).unwrap();
    let opts = EngineOptions::new().max_length(Some(16)).batch_tokens(0).gen_batch(3);
    assert_eq!(opts.batch_tokens, 1, "clamped to at least 1");
    e.set_options(opts.clone());
    assert_eq!(e.options(), &opts);
    assert_eq!(e.max_length(), 16);
    assert_eq!(e.info().max_context, Some(16));
}

/// The bundled perplexity task on the real model (when it can be had): the engine's rolling
/// log-likelihood of each paragraph equals the sum of per-token NLLs of one plain forward over
/// `[prefix] ++ tokens` (each paragraph fits one window), and the bits per byte are those of a
/// small English model on plain prose.
#[test]
fn perplexity_task_on_smollm2() {
    let Some(gguf) = crate::common::smollm2() else { return };
    let mut e = Engine::from_gguf(&gguf, LoadOptions::default()).unwrap();
    let task = eai_eval::bundled::perplexity().unwrap();
    let texts: Vec<String> =
        task.docs().iter().map(|d| d.answer_text().unwrap().to_owned()).collect();
    let reqs: Vec<RollingRequest> = texts.iter().map(RollingRequest::new).collect();
    let got = e.loglikelihood_rolling(&reqs).unwrap();
    let prefix = e.tokenizer().bos_id().or(e.tokenizer().eos_ids().first().copied()).unwrap();
    let mut ll = 0.0;
    for (r, text) in got.iter().zip(&texts) {
        let mut seq = vec![prefix];
        seq.extend(e.tokenizer().encode(text).unwrap());
        assert!(seq.len() <= e.max_length());
        let want = -e.token_nlls(&seq).unwrap().iter().sum::<f64>();
        assert!((r.logprob - want).abs() < 1e-3 * want.abs(), "{} vs {want}", r.logprob);
        assert_eq!(r.windows, Some(1));
        ll += r.logprob;
    }
    let suite = eai_eval::Suite { tasks: vec![task], groups: vec![] };
    let res = eai_eval::Evaluator::new().progress(false).run(&mut e, &suite).unwrap();
    let m = |k: &str| res.tasks[0].metric(k).unwrap().value;
    let bytes: usize = texts.iter().map(String::len).sum();
    let bpb = -ll / bytes as f64 / std::f64::consts::LN_2;
    assert!((m("bits_per_byte,none") - bpb).abs() < 1e-9 * bpb);
    eprintln!(
        "SmolLM2 Q4_1→FP32 on bundled perplexity: word_perplexity {:.3}, byte_perplexity {:.4}, \
         bits_per_byte {:.4}",
        m("word_perplexity,none"),
        m("byte_perplexity,none"),
        m("bits_per_byte,none")
    );
    assert!((0.4..1.6).contains(&bpb), "bits per byte {bpb}");
}
