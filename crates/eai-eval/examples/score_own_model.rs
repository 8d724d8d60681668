//! Score a task with your own model: implement `LanguageModel` (three methods) and evaluate it on
//! the 40 ARC-Easy items that ship with the crate, as lm-evaluation-harness scores them.
//!
//! Your `Cargo.toml`: `eai-eval = "0.1"` and `eai-core = "0.1"`. Run here with
//! `cargo run -p eai-eval --example score_own_model`.
use eai_core::{GenerateRequest, Generation, LanguageModel, Loglikelihood};
use eai_core::{LoglikelihoodRequest as Ask, ModelError, ModelInfo};
use eai_eval::{Evaluator, Suite, bundled};

struct ShortIsLikely; // your engine here: this one finds shorter answers likelier
impl LanguageModel for ShortIsLikely {
    fn info(&self) -> ModelInfo {
        ModelInfo::new("short-is-likely")
    }
    fn loglikelihood(&mut self, reqs: &[Ask]) -> Result<Vec<Loglikelihood>, ModelError> {
        Ok(reqs.iter().map(|r| Loglikelihood::new(-(r.continuation.len() as f64), false)).collect())
    }
    fn generate_until(&mut self, r: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
        Ok(r.iter().map(|_| Generation::new("")).collect())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let suite = Suite { tasks: vec![bundled::arc_easy()?], groups: vec![] };
    println!("{}", Evaluator::new().run(&mut ShortIsLikely, &suite)?.table());
    Ok(())
}
