//! Bring your own engine: implement `LanguageModel` (three methods) and get the benchmark
//! tasks, the energy attribution and the whole study for free.
//!
//! The "engine" here is a character-bigram language model fitted, in a few milliseconds, on
//! the prompts of the bundled ARC-Easy and HellaSwag subsets (never on their answers). Its two
//! "schemes" are its log-probability table in f32 and rounded to f16. It is not a good model;
//! the point is the seam.
//!
//! ```sh
//! cargo run --release --example eval_own_model
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use eai::core::{
    GenerateRequest, Generation, LanguageModel, Loglikelihood, LoglikelihoodRequest, ModelError,
    ModelInfo, Watts,
};
use eai::eval::{Evaluator, Suite, bundled};
use eai::{Metered, Scheme, Study, StudyTask, loader_fn};

/// A character-bigram model over bytes: `log p(b | a)` with add-one smoothing.
#[derive(Clone)]
struct Bigram {
    logp: Vec<f32>, // 256 × 256
    name: String,
}

impl Bigram {
    fn fit(texts: &[String]) -> Self {
        let mut counts = vec![1.0f64; 256 * 256];
        for t in texts {
            for w in t.as_bytes().windows(2) {
                counts[usize::from(w[0]) * 256 + usize::from(w[1])] += 1.0;
            }
        }
        let mut logp = vec![0.0f32; 256 * 256];
        for a in 0..256 {
            let row = &counts[a * 256..(a + 1) * 256];
            let total: f64 = row.iter().sum();
            for b in 0..256 {
                logp[a * 256 + b] = (row[b] / total).ln() as f32;
            }
        }
        Self { logp, name: "char-bigram".into() }
    }

    fn rounded_to_f16(&self) -> Self {
        let logp = self.logp.iter().map(|&x| half_round(x)).collect();
        Self { logp, name: "char-bigram".into() }
    }

    fn score(&self, context: &str, continuation: &str) -> (f64, u32) {
        let mut prev = context.as_bytes().last().copied().unwrap_or(b' ');
        let mut lp = 0.0;
        for &b in continuation.as_bytes() {
            lp += f64::from(self.logp[usize::from(prev) * 256 + usize::from(b)]);
            prev = b;
        }
        (lp, continuation.len() as u32)
    }
}

/// Rounds to the nearest f16 value (10-bit mantissa), staying in f32.
fn half_round(x: f32) -> f32 {
    let bits = x.to_bits();
    let keep = 13; // 23 - 10 mantissa bits
    let half = 1u32 << (keep - 1);
    let rounded = (bits + half - 1 + ((bits >> keep) & 1)) & !((1u32 << keep) - 1);
    f32::from_bits(rounded)
}

impl LanguageModel for Bigram {
    fn info(&self) -> ModelInfo {
        ModelInfo::new(self.name.clone()).device("cpu")
    }

    fn loglikelihood(
        &mut self,
        reqs: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, ModelError> {
        Ok(reqs
            .iter()
            .map(|r| {
                let (logprob, tokens) = self.score(&r.context, &r.continuation);
                Loglikelihood { logprob, is_greedy: false, tokens: Some(tokens) }
            })
            .collect())
    }

    fn generate_until(&mut self, reqs: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
        Err(ModelError::Unsupported {
            model: self.name.clone(),
            what: format!("generate_until ({} requests)", reqs.len()),
        })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arc = bundled::arc_easy()?;
    let hs = bundled::hellaswag()?;
    let prompts: Vec<String> = [&arc, &hs].iter().flat_map(|t| t.contexts().unwrap()).collect();
    let model = Bigram::fit(&prompts);

    // 1. Just the tasks: lm-eval's scoring of your engine.
    let suite = Suite { tasks: vec![arc.clone(), hs.clone()], groups: vec![] };
    let mut m = model.clone();
    let results = Evaluator::new().progress(false).run(&mut m, &suite)?;
    println!("{}", results.table());

    // 2. Energy per call, around any engine (needs a power source; a constant one here, labelled).
    let meter = eai::power::Meter::start(
        vec![Box::new(eai::power::ConstantSource::new(Watts(15.0)))],
        eai::power::MeterConfig::new(),
    )?;
    let mut metered = Metered::new(model.clone(), &meter);
    Evaluator::new()
        .progress(false)
        .run(&mut metered, &Suite { tasks: vec![arc.clone()], groups: vec![] })?;
    for c in metered.energy()? {
        println!(
            "{:?}: {} calls, {} requests, {:?} tokens, {:.3} J (constant 15 W source, not measured)",
            c.kind,
            c.calls,
            c.requests,
            c.tokens,
            c.energy.map_or(0.0, |e| e.0)
        );
    }
    drop(metered);
    meter.stop()?;

    // 3. The whole study, with this machine's sensors (or none: then scores only).
    let base = model.clone();
    let loader =
        loader_fn("char-bigram", move |s: Scheme| -> Result<Box<dyn LanguageModel>, ModelError> {
            match s {
                Scheme::Fp32 => Ok(Box::new(base.clone())),
                Scheme::Fp16 => Ok(Box::new(base.rounded_to_f16())),
                other => Err(ModelError::Unsupported {
                    model: "char-bigram".into(),
                    what: other.label().into(),
                }),
            }
        });
    let results = Study::new(loader)
        .schemes([Scheme::Fp32, Scheme::Fp16])
        .task(StudyTask::new(arc))
        .task(StudyTask::new(hs))
        .repeats(3)
        .warmup_docs(2)
        .baseline(Duration::ZERO)
        .progress(false)
        .run()?;
    let report = results.write("eai-own-model")?;
    println!("{}\n\n{}", report.energy_kind.banner(), report.table());
    println!("report: eai-own-model/report.md");
    Ok(())
}
