//! `PyRandom` against values CPython produced (`scripts/pyrandom_golden.py`).
use eai_eval::PyRandom;
use serde_json::Value;

use crate::common::fixtures;

fn golden() -> Value {
    let text = std::fs::read_to_string(fixtures().join("pyrandom_golden.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

#[test]
fn every_draw_matches_cpython() {
    let g = golden();
    for rec in g["seeds"].as_array().unwrap() {
        let seed = rec["seed"].as_i64().unwrap();
        let mut r = PyRandom::new(seed);
        let u32s: Vec<u64> = (0..10).map(|_| r.getrandbits(32)).collect();
        let want: Vec<u64> =
            rec["u32"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
        assert_eq!(u32s, want, "seed {seed}: getrandbits(32)");
        for w in rec["random53"].as_array().unwrap() {
            let x = r.random();
            assert_eq!(
                (x * 9_007_199_254_740_992.0) as u64,
                w.as_u64().unwrap(),
                "seed {seed}: random()"
            );
        }
        for kv in rec["bits"].as_array().unwrap() {
            let k = kv[0].as_u64().unwrap() as u32;
            assert_eq!(r.getrandbits(k), kv[1].as_u64().unwrap(), "seed {seed}: getrandbits({k})");
        }
        for nv in rec["randbelow"].as_array().unwrap() {
            let n = nv[0].as_u64().unwrap();
            assert_eq!(r.randbelow(n), nv[1].as_u64().unwrap(), "seed {seed}: randbelow({n})");
        }
        for s in rec["samples"].as_array().unwrap() {
            let (n, k) = (s[0].as_u64().unwrap() as usize, s[1].as_u64().unwrap() as usize);
            assert_eq!(
                r.sample_indices(n, k).unwrap(),
                usizes(&s[2]),
                "seed {seed}: sample({n}, {k})"
            );
        }
        let mut xs: Vec<usize> = (0..20).collect();
        r.shuffle(&mut xs);
        assert_eq!(xs, usizes(&rec["shuffle20"]), "seed {seed}: shuffle");
    }
}

#[test]
fn lm_eval_draw_sequences_match() {
    let g = golden();
    for (key, n, k) in
        [("arc_challenge_25shot_first50", 1119, 25), ("gsm8k_5shot_first50", 7473, 5)]
    {
        let mut r = PyRandom::new(1234);
        for (i, want) in g[key].as_array().unwrap().iter().enumerate() {
            assert_eq!(r.sample_indices(n, k).unwrap(), usizes(want), "{key} draw {i}");
        }
    }
}
