//! Parity with llama.cpp (fixtures made by `scripts/make_fixtures.py` with llama-cpp-python
//! 0.3.36 from the same GGUF): token ids, per-position logits, perplexity.

use std::path::Path;

use eai_model::{Engine, LoadOptions, Scheme};
use serde_json::Value;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name))
        .unwrap()
}

#[test]
fn token_ids_equal_llama_cpp_on_3000_strings() {
    let p = need_model!();
    let lm = Engine::from_gguf(&p, LoadOptions::default()).unwrap();
    let tok = lm.tokenizer();
    let mut n = 0;
    let mut mismatches = Vec::new();
    for line in fixture("tokens.jsonl").lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let text = v["text"].as_str().unwrap();
        let want: Vec<u32> =
            v["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        let got = tok.encode_raw(text).unwrap();
        if got != want {
            mismatches.push((text.to_string(), got, want));
        }
        n += 1;
    }
    assert!(n >= 3000);
    assert!(
        mismatches.is_empty(),
        "{} of {n} differ; first: {:?}",
        mismatches.len(),
        mismatches.first()
    );
    // Decoding gives the text back (byte-level BPE is lossless) for plain text.
    let s = "Café naïve 你好 😀  tabs\tand\nnewlines 12345";
    assert_eq!(tok.decode(&tok.encode_raw(s).unwrap(), false).unwrap(), s);
}

struct Cmp {
    top1_agree: usize,
    positions: usize,
    max_abs: f32,
    nll_ours: f64,
    nll_ref: f64,
}

fn compare(lm: &mut Engine, fx: &Value) -> Vec<Cmp> {
    let mut out = Vec::new();
    for p in fx["prompts"].as_array().unwrap() {
        let ids: Vec<u32> =
            p["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        assert_eq!(lm.tokenizer().encode_raw(p["text"].as_str().unwrap()).unwrap(), ids);
        let logits = lm.model().logits_for(&ids).unwrap();
        let mut c = Cmp {
            top1_agree: 0,
            positions: 0,
            max_abs: 0.0,
            nll_ours: 0.0,
            nll_ref: p["mean_nll"].as_f64().unwrap(),
        };
        let mut nll = 0f64;
        for (pos, e) in p["positions"].as_array().unwrap().iter().enumerate() {
            let row = logits.row(pos);
            let top = e["top"].as_array().unwrap();
            let ref_top1 = top[0][0].as_u64().unwrap() as usize;
            let mut am = 0;
            for (k, v) in row.iter().enumerate() {
                if *v > row[am] {
                    am = k;
                }
            }
            c.positions += 1;
            c.top1_agree += usize::from(am == ref_top1);
            for t in top {
                let (k, v) = (t[0].as_u64().unwrap() as usize, t[1].as_f64().unwrap() as f32);
                c.max_abs = c.max_abs.max((row[k] - v).abs());
            }
            if let Some(nx) = e.get("next") {
                let t = nx[0].as_u64().unwrap() as usize;
                let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let z =
                    row.iter().map(|&v| f64::from(v - mx).exp()).sum::<f64>().ln() + f64::from(mx);
                nll += z - f64::from(row[t]);
            }
        }
        c.nll_ours = nll / (c.positions - 1).max(1) as f64;
        out.push(c);
    }
    out
}

#[test]
fn logits_match_llama_cpp_on_the_same_weights() {
    let p = need_model!();
    let mut lm = Engine::from_gguf(&p, LoadOptions::new(Scheme::Fp32)).unwrap();
    // llama.cpp on the F32 twin of the GGUF (f32 KV cache): the same arithmetic up to summation order.
    let f32fx: Value = serde_json::from_str(&fixture("logits_f32.json")).unwrap();
    for (i, c) in compare(&mut lm, &f32fx).iter().enumerate() {
        eprintln!(
            "vs llama.cpp F32, prompt {i}: top-1 {}/{}, max |Δlogit| {:.2e}, mean NLL ours {:.5} ref {:.5}",
            c.top1_agree, c.positions, c.max_abs, c.nll_ours, c.nll_ref
        );
        assert_eq!(c.top1_agree, c.positions, "prompt {i}");
        assert!(c.max_abs < 5e-4, "prompt {i}: {}", c.max_abs);
        assert!((c.nll_ours - c.nll_ref).abs() < 1e-4, "prompt {i}");
    }
    // llama.cpp on the Q4_1 file as shipped (q8 activations, f16 KV cache): looser.
    let q4fx: Value = serde_json::from_str(&fixture("logits_q4_1.json")).unwrap();
    let cmps = compare(&mut lm, &q4fx);
    let (agree, total): (usize, usize) =
        cmps.iter().fold((0, 0), |a, c| (a.0 + c.top1_agree, a.1 + c.positions));
    for (i, c) in cmps.iter().enumerate() {
        eprintln!(
            "vs llama.cpp Q4_1, prompt {i}: top-1 {}/{}, max |Δlogit| {:.3}, mean NLL ours {:.4} ref {:.4}",
            c.top1_agree, c.positions, c.max_abs, c.nll_ours, c.nll_ref
        );
        assert!(c.max_abs < 2.5, "prompt {i}: {}", c.max_abs);
        assert!((c.nll_ours - c.nll_ref).abs() < 0.03, "prompt {i}");
    }
    assert!(agree * 100 >= total * 93, "top-1 agreement {agree}/{total}");
}
