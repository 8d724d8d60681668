//! Shared helpers: a small engine of our own (the role a user's engine plays), and trace files.

use std::path::Path;

use eai::core::{
    GenerateRequest, Generation, LanguageModel, Loglikelihood, LoglikelihoodRequest, ModelError,
    ModelInfo,
};

/// An engine of our own: scores a continuation by its length (scaled per scheme) and computes
/// for a fixed time per request, so windows have a known duration.
pub(crate) struct LengthModel {
    pub(crate) scale: f64,
    pub(crate) per_request: std::time::Duration,
}

impl LanguageModel for LengthModel {
    fn info(&self) -> ModelInfo {
        ModelInfo::new("length-model").scheme(format!("scale={}", self.scale))
    }
    fn loglikelihood(
        &mut self,
        reqs: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, ModelError> {
        // Busy, not asleep: a CPU-utilisation estimate sees the work.
        let t = std::time::Instant::now();
        let mut x = 1u64;
        while t.elapsed() < self.per_request * reqs.len() as u32 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        Ok(reqs
            .iter()
            .map(|r| Loglikelihood {
                logprob: -(r.continuation.len() as f64) * self.scale,
                is_greedy: false,
                tokens: Some(r.continuation.split_whitespace().count() as u32),
            })
            .collect())
    }
    fn generate_until(&mut self, reqs: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
        Ok(reqs.iter().map(|_| Generation { text: String::new(), tokens: Some(1) }).collect())
    }
}

/// Writes a trace in `eai measure --trace` CSV form: one GPU at a constant `watts` for
/// `seconds`, instant power and its energy counter at 50 Hz.
pub(crate) fn constant_gpu_trace(path: &Path, watts: f64, seconds: f64) {
    let mut s = String::from("source,signal,t_s,value\n");
    let n = (seconds * 50.0) as usize;
    for i in 0..=n {
        let t = i as f64 / 50.0;
        s.push_str(&format!("nvml/GPU-replayed,instant,{t},{watts}\n"));
    }
    for i in 0..=n {
        let t = i as f64 / 50.0;
        s.push_str(&format!("nvml/GPU-replayed,counter,{t},{}\n", 1000.0 + watts * t));
    }
    std::fs::write(path, s).unwrap();
}

/// Checks a Table 2 row against the runs it was computed from: `compare`'s estimates, or —
/// when Fieller's interval is unbounded — point estimates computed here from the runs.
/// Returns the energy reduction as the report prints it.
pub(crate) fn check_row(
    row: &eai::metrics::Table2Row,
    base: &[eai::metrics::Run],
    cand: &[eai::metrics::Run],
) -> String {
    use eai::metrics::{Error, Run, compare};
    // One decimal; a value that rounds to zero prints unsigned, as the report prints it.
    let one = |x: f64| {
        let s = format!("{x:.1}");
        if s == "-0.0" { "0.0".to_owned() } else { s }
    };
    let fmt = |e: &eai::metrics::Estimate| match e.ci {
        Some(ci) => format!("{} % [{}, {}]", one(e.value), one(ci.lo), one(ci.hi)),
        None => format!("{} %", one(e.value)),
    };
    match compare(base, cand) {
        Ok(c) => {
            assert_eq!(row.energy_reduction, c.energy_reduction);
            assert_eq!(row.accuracy_loss, c.accuracy_loss);
            assert_eq!(row.eor_improvement, c.eor_improvement);
            fmt(&c.energy_reduction)
        }
        Err(Error::UnboundedRatio { .. }) => {
            let mean = |rs: &[Run], f: &dyn Fn(&Run) -> f64| {
                rs.iter().map(f).sum::<f64>() / rs.len() as f64
            };
            let e = |r: &Run| r.energy().unwrap().0;
            let eor = |r: &Run| r.score().unwrap() / r.energy().unwrap().to_watt_hours();
            let s = |r: &Run| r.score().unwrap();
            let er = 100.0 * (1.0 - mean(cand, &e) / mean(base, &e));
            let ei = 100.0 * (mean(cand, &eor) / mean(base, &eor) - 1.0);
            let al = 100.0 * (mean(base, &s) - mean(cand, &s));
            assert!(row.energy_reduction.ci.is_none());
            assert!((row.energy_reduction.value - er).abs() < 1e-9);
            assert!((row.eor_improvement.value - ei).abs() < 1e-9);
            assert!((row.accuracy_loss.value - al).abs() < 1e-9);
            fmt(&row.energy_reduction)
        }
        Err(e) => panic!("runs cannot be compared: {e}"),
    }
}

/// Checks that a study's advice is the recommender's answer computed from `runs`: one
/// candidate per scheme, its retained accuracy and EOR improvement recomputed here from the
/// runs, accepted exactly when it keeps `min_retained` of the baseline score, ranked by EOR
/// improvement. Returns the best scheme's strategy name.
pub(crate) fn check_advice(
    advice: &eai::Advice,
    runs: &[eai::metrics::Run],
    baseline: eai::Scheme,
    schemes: &[eai::Scheme],
    min_retained: f64,
) -> String {
    use eai::metrics::{Evidence, Run};
    let mean =
        |rs: &[Run], f: &dyn Fn(&Run) -> f64| rs.iter().map(f).sum::<f64>() / rs.len() as f64;
    let of = |s: eai::Scheme| {
        runs.iter().filter(|r| r.config().scheme == s.label()).cloned().collect::<Vec<_>>()
    };
    let score = |r: &Run| r.score().unwrap();
    let eor = |r: &Run| r.score().unwrap() / r.energy().unwrap().to_watt_hours();
    let base = of(baseline);
    let rec = &advice.recommendation;
    assert_eq!(rec.ranked.len() + rec.rejected.len(), schemes.len(), "one candidate per scheme");
    for &s in schemes {
        let mine = of(s);
        let a = rec
            .ranked
            .iter()
            .chain(&rec.rejected)
            .find(|a| a.candidate.strategy == s.strategy())
            .unwrap_or_else(|| panic!("no candidate for {}", s.label()));
        let retained = mean(&mine, &score) / mean(&base, &score);
        let gain = 100.0 * (mean(&mine, &eor) / mean(&base, &eor) - 1.0);
        assert!((a.candidate.retained_accuracy - retained).abs() < 1e-12, "{}", s.label());
        assert!((a.candidate.efficiency_gain.0 - gain).abs() < 1e-9, "{}", s.label());
        assert_eq!(a.candidate.evidence, Evidence::Measured { runs: mine.len() });
        assert_eq!(a.accepted(), retained >= min_retained, "{}: retains {retained}", s.label());
    }
    let gains: Vec<f64> = rec.ranked.iter().map(|a| a.candidate.efficiency_gain.0).collect();
    assert!(gains.windows(2).all(|w| w[0] >= w[1]), "ranked by EOR improvement: {gains:?}");
    rec.best().map(|a| a.candidate.strategy.name.clone()).unwrap_or_default()
}
