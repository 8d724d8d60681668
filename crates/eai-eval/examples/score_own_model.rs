//! Score a task with your own model: answer each document's requests (here a log-likelihood per
//! choice) and score them as lm-evaluation-harness does, on the 40 ARC-Easy items that ship with
//! the crate. (To let eai batch and cache the requests, implement `eai_core::LanguageModel`
//! instead and run `eai_eval::Evaluator`; see the crate docs.)
//!
//! Your `Cargo.toml`: `eai-eval = "0.1"` and `eai-core = "0.1"`. Run here with
//! `cargo run -p eai-eval --example score_own_model`.
use eai_core::Loglikelihood;
use eai_eval::{DocRequests, DocResponses, bundled, score_task};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let task = bundled::arc_easy()?;
    let mut answers = Vec::new();
    for inst in task.instances()? {
        if let DocRequests::Loglikelihood(choices) = &inst.requests {
            // your model here: this one finds shorter answers likelier
            let lls =
                choices.iter().map(|r| Loglikelihood::new(-(r.continuation.len() as f64), false));
            answers.push(DocResponses::Loglikelihood(lls.collect()));
        }
    }
    println!("acc = {:?}", score_task(&task, &answers)?.result.metric("acc,none"));
    Ok(())
}
