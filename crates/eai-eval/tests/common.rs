use std::collections::HashMap;
use std::path::{Path, PathBuf};

use eai_core::{
    GenerateRequest, Generation, LanguageModel, Loglikelihood, LoglikelihoodRequest, ModelError,
    ModelInfo,
};
use sha2::{Digest, Sha256};

pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

pub(crate) fn fixture_data() -> PathBuf {
    fixtures().join("data")
}

pub(crate) fn sha(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The stand-in model of `scripts/lmeval_golden.py`: log-likelihoods are a pure function of the
/// request; generations are replayed from the golden file by context hash (raw, uncut).
/// Counts forward passes as one per distinct context per call (lm-eval's one-token cache when
/// every continuation is one token).
#[derive(Default)]
pub(crate) struct Scripted {
    pub(crate) generations: HashMap<String, String>,
    pub(crate) passes: u64,
    pub(crate) calls: usize,
    pub(crate) requests_seen: usize,
}

impl Scripted {
    pub(crate) fn ll(ctx: &str, cont: &str) -> Loglikelihood {
        let h = fnv(&format!("{ctx}\u{0}{cont}"));
        Loglikelihood::new(-((h % 100_000) as f64) / 10_000.0 - 0.01, h.is_multiple_of(7))
    }
}

impl LanguageModel for Scripted {
    fn info(&self) -> ModelInfo {
        ModelInfo::new("scripted").scheme("fnv")
    }
    fn loglikelihood(
        &mut self,
        reqs: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, ModelError> {
        self.calls += 1;
        self.requests_seen += reqs.len();
        let mut ctxs: Vec<&str> = reqs.iter().map(|r| r.context.as_str()).collect();
        ctxs.sort_unstable();
        ctxs.dedup();
        self.passes += ctxs.len() as u64;
        Ok(reqs.iter().map(|r| Self::ll(&r.context, &r.continuation)).collect())
    }
    fn generate_until(&mut self, reqs: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
        self.calls += 1;
        self.requests_seen += reqs.len();
        self.passes += reqs.len() as u64;
        reqs.iter()
            .map(|r| {
                self.generations.get(&sha(&r.context)).map(Generation::new).ok_or_else(|| {
                    ModelError::InvalidRequest {
                        index: 0,
                        reason: format!("no scripted generation for context {:?}", &r.context),
                    }
                })
            })
            .collect()
    }
    fn forward_passes(&self) -> Option<u64> {
        Some(self.passes)
    }
}

/// A model returning the given log-likelihoods per continuation text (missing: -100).
pub(crate) struct Table(pub(crate) HashMap<String, f64>);

impl LanguageModel for Table {
    fn info(&self) -> ModelInfo {
        ModelInfo::new("table")
    }
    fn loglikelihood(
        &mut self,
        reqs: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, ModelError> {
        Ok(reqs
            .iter()
            .map(|r| Loglikelihood::new(*self.0.get(&r.continuation).unwrap_or(&-100.0), false))
            .collect())
    }
    fn generate_until(&mut self, reqs: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
        Ok(reqs.iter().map(|_| Generation::new("")).collect())
    }
}

pub(crate) fn shared_data_or_skip(test: &str) -> Option<PathBuf> {
    let d = eai_eval::data::shared_data_dir();
    if d.is_none() {
        eprintln!("SKIP {test}: ../shared/data not found (set EAI_DATA_DIR to run it)");
    }
    d
}
