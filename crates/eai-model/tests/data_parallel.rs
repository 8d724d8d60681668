//! `DataParallel` over 1–3 CPU engines: the same answers as one engine, balanced token loads,
//! every replica's failure reported with its device.

use std::sync::Arc;

use eai_core::{
    GenerateRequest, Generation, LanguageModel, Loglikelihood, LoglikelihoodRequest, ModelError,
    ModelInfo,
};
use eai_model::{DataParallel, Engine, EngineOptions, Replica, Scheme, TokenCache};

use crate::synthetic::{tiny_engine, words};

/// Multiple-choice documents with contexts from 3 to ~300 tokens (past the tiny model's 256:
/// left-truncated), 2–5 choices each, a repeated document and a repeated request.
fn scoring_requests() -> Vec<LoglikelihoodRequest> {
    let mut reqs = Vec::new();
    for d in 0..23u32 {
        let n = 3 + (d * 37 % 97) as usize + if d == 7 { 280 } else { 0 };
        let ctx = words((0..n as u32).map(|i| (i * 13 + d * 7 + 1) % 300));
        for c in 0..2 + d % 4 {
            let cont = words((0..1 + (c + d) % 3).map(|i| (i * 29 + c * 31 + d) % 300));
            reqs.push(LoglikelihoodRequest::new(ctx.clone(), format!(" {cont}")));
        }
    }
    let again = reqs[5..9].to_vec();
    reqs.extend(again);
    reqs.push(reqs[0].clone());
    reqs
}

fn generation_requests() -> Vec<GenerateRequest> {
    [1usize, 9, 3, 40, 17, 2, 25, 6, 11, 30, 5]
        .iter()
        .enumerate()
        .map(|(k, &n)| {
            let ids = (0..n as u32).map(|i| (i * 37 + 11 * k as u32 + 3) % 300);
            let until = if k % 3 == 1 { vec![" t7".to_string()] } else { vec![] };
            GenerateRequest::new(words(ids), until).max_gen_toks(3 + 7 * (k % 5))
        })
        .collect()
}

fn engines(
    n: usize,
    dir: &std::path::Path,
    cache: &Arc<TokenCache>,
    o: &EngineOptions,
) -> Vec<Engine> {
    (0..n)
        .map(|_| tiny_engine(Scheme::Fp32, dir).with_options(o.clone()).token_cache(cache.clone()))
        .collect()
}

/// Per-request log-likelihoods (bit for bit), greedy flags, token counts and generations equal
/// one engine's on 1, 2 and 3 replicas, with small and default packing; the capability answers
/// add up; the split keeps documents together and balances tokens.
#[test]
fn data_parallel_answers_equal_one_engine() {
    let dir = tempfile::tempdir().unwrap();
    let reqs = scoring_requests();
    let gens = generation_requests();
    for batch_tokens in [2048usize, 96] {
        let mut o = EngineOptions::default();
        o.batch_tokens = batch_tokens;
        o.gen_batch = 4;
        let cache = Arc::new(TokenCache::new());
        let mut solo = engines(1, dir.path(), &cache, &o).remove(0);
        let want: Vec<Loglikelihood> = solo.loglikelihood(&reqs).unwrap();
        let want_gen: Vec<Generation> = solo.generate_until(&gens).unwrap();
        assert!(solo.truncated_requests().unwrap() >= 1, "one document is past max_length");
        // Token loads as the engines count them: context once per document + continuations.
        let pairs: Vec<_> =
            reqs.iter().map(|r| solo.encode_pair(&r.context, &r.continuation).unwrap()).collect();
        for n in 1..=3 {
            let mut dp = DataParallel::from_models(engines(n, dir.path(), &cache, &o)).unwrap();
            assert_eq!(dp.len(), n);
            let got = dp.loglikelihood(&reqs).unwrap();
            assert_eq!(got, want, "{n} replicas, batch_tokens {batch_tokens}");
            let split = dp.last_split().unwrap().clone();
            assert_eq!(split.shares.len(), n);
            assert!(dp.weigher().counts_tokens());
            for share in &split.shares {
                // Every request with the same context is on the same replica.
                for &i in &share.requests {
                    for (j, r) in reqs.iter().enumerate() {
                        if r.context == reqs[i].context {
                            assert!(share.requests.contains(&j), "{i} and {j} split");
                        }
                    }
                }
            }
            let mut seen = std::collections::HashSet::new();
            let expected_load: u64 = reqs
                .iter()
                .zip(&pairs)
                .map(|(r, (ctx, cont))| {
                    let c = if seen.insert(r.context.clone()) {
                        ctx.len().min(257 - cont.len())
                    } else {
                        0
                    };
                    (c + cont.len()) as u64
                })
                .sum();
            let total: u64 = split.shares.iter().map(|s| s.load).sum();
            // The truncated document counts the 257 tokens the engine runs.
            assert_eq!(total, expected_load);
            if n > 1 {
                let max = split.shares.iter().map(|s| s.load).max().unwrap();
                assert!(split.imbalance() < 1.25, "{split:?}");
                assert!(max < total, "work on every replica");
            }
            let g = dp.generate_until(&gens).unwrap();
            assert_eq!(g, want_gen, "{n} replicas, generation");
            let counts: Vec<usize> =
                dp.last_split().unwrap().shares.iter().map(|s| s.requests.len()).collect();
            assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 2, "{counts:?}");
            assert_eq!(dp.truncated_requests(), solo.truncated_requests());
            let stats = dp.replicas();
            assert_eq!(
                stats.iter().map(|s| s.requests).sum::<u64>(),
                (reqs.len() + gens.len()) as u64
            );
            assert!(stats.iter().all(|s| s.engine_time.is_some() && s.device.starts_with("cpu")));
            assert!(dp.forward_passes().unwrap() >= solo.forward_passes().unwrap() / 2);
            let dev = dp.info().device.unwrap();
            assert!(dev.starts_with("cpu") && dev.ends_with("replica)") == (n == 1), "{dev}");
            assert!(dev.contains("(data-parallel, "), "{dev}");
            let hint = dp.batch_hint().unwrap();
            assert_eq!(hint.loglikelihood_requests, Some(n * (batch_tokens / 2).max(64)));
            assert!(dp.engine_time().unwrap().compute.0 > 0.0);
            assert!(dp.loglikelihood(&[]).unwrap().is_empty());
        }
    }
}

/// An engine wrapper that fails (or panics) on demand and names no device in its errors.
struct Faulty {
    inner: Engine,
    device: String,
    fail: bool,
    panic: bool,
}

impl LanguageModel for Faulty {
    fn info(&self) -> ModelInfo {
        self.inner.info().device(self.device.clone())
    }
    fn loglikelihood(
        &mut self,
        reqs: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, ModelError> {
        if self.panic {
            panic!("kernel exploded");
        }
        if self.fail {
            return Err(ModelError::backend("out of memory", "allocating 3 GiB"));
        }
        self.inner.loglikelihood(reqs)
    }
    fn generate_until(&mut self, reqs: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
        self.inner.generate_until(reqs)
    }
}

impl Replica for Faulty {
    fn weigher(&self) -> eai_model::Weigher {
        self.inner.weigher()
    }
}

fn flatten(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s = format!("{s}: {x}");
        src = x.source();
    }
    s
}

/// A replica's error names its replica and device and keeps the engine's own message; two
/// failing replicas are both reported; an invalid request is named by the caller's index; a
/// panic is an error value (and that replica stays failed); a replica that cannot be built
/// fails `spawn` naming it.
#[test]
fn replica_errors_name_their_device_and_are_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let reqs = scoring_requests();
    let cache = Arc::new(TokenCache::new());
    let faulty = |fail: &[usize], panic: &[usize]| {
        (0..3)
            .map(|k| Faulty {
                inner: tiny_engine(Scheme::Fp32, dir.path()).token_cache(cache.clone()),
                device: format!("fake:{k}"),
                fail: fail.contains(&k),
                panic: panic.contains(&k),
            })
            .collect::<Vec<_>>()
    };
    let mut dp = DataParallel::from_models(faulty(&[1], &[])).unwrap();
    let e = dp.loglikelihood(&reqs).unwrap_err();
    let msg = flatten(&e);
    assert!(msg.contains("replica 1 on fake:1") && msg.contains("allocating 3 GiB"), "{msg}");
    assert!(!msg.contains("fake:0") && !msg.contains("fake:2"), "{msg}");
    // Generation still works on every replica.
    assert_eq!(
        dp.generate_until(&generation_requests()).unwrap().len(),
        generation_requests().len()
    );

    let mut dp = DataParallel::from_models(faulty(&[0, 2], &[])).unwrap();
    let msg = flatten(&dp.loglikelihood(&reqs).unwrap_err());
    assert!(msg.contains("2 of 3 replicas failed"), "{msg}");
    assert!(msg.contains("replica 0 on fake:0") && msg.contains("replica 2 on fake:2"), "{msg}");

    let mut dp = DataParallel::from_models(faulty(&[], &[2])).unwrap();
    let msg = flatten(&dp.loglikelihood(&reqs).unwrap_err());
    assert!(msg.contains("fake:2") && msg.contains("kernel exploded"), "{msg}");
    let msg = flatten(&dp.loglikelihood(&reqs).unwrap_err());
    assert!(msg.contains("fake:2") && msg.contains("panicked"), "stays failed: {msg}");

    // An empty continuation: the caller's index, whichever replica got it.
    let mut bad = reqs.clone();
    let at = bad.len() - 3;
    bad[at].continuation.clear();
    let mut dp = DataParallel::from_models(faulty(&[], &[])).unwrap();
    match dp.loglikelihood(&bad) {
        Err(ModelError::InvalidRequest { index, reason }) => {
            assert_eq!(index, at);
            assert!(reason.contains("fake:"), "{reason}");
        }
        other => panic!("{other:?}"),
    }

    let path = dir.path().to_path_buf();
    let e = DataParallel::spawn(3, move |k| {
        if k == 2 {
            Err(ModelError::backend("opening CUDA device 2", "no such device"))
        } else {
            Ok(Box::new(Faulty {
                inner: tiny_engine(Scheme::Fp32, &path),
                device: format!("fake:{k}"),
                fail: false,
                panic: false,
            }) as Box<dyn LanguageModel + Send>)
        }
    })
    .unwrap_err();
    let msg = flatten(&e);
    assert!(msg.contains("replica 2") && msg.contains("no such device"), "{msg}");
}
