//! MMLU, ARC, HellaSwag, TruthfulQA and GSM8K, scored exactly as EleutherAI's
//! lm-evaluation-harness scores them.
//!
//! **Design.** Parity is the point, so every step that decides a number follows the harness
//! (commit `4e7e0d47`) rather than taste: its prompt templates byte for byte, its few-shot
//! sampling (CPython's `random.Random(1234).sample`, reimplemented in [`PyRandom`]), its
//! request shape (`(context, " " + choice)`; trailing context whitespace moves to the
//! continuation, see [`split_whitespace`]), its metrics (`acc`, `acc_norm` by characters, MC2,
//! `exact_match` after its regex filters), its stderr and its size-weighted group aggregation
//! with pooled stderr. The model side is the narrow [`eai_core::LanguageModel`] trait: anything
//! implementing its three methods can be evaluated. Tasks are plain data ([`Task`] = processed
//! [`Doc`]s + [`TaskConfig`] + [`Scoring`]), built from the original files by the loaders in
//! [`data`] and the constructors in [`tasks`], or from your own documents.
//!
//! **Seams.** Scoring is public and has one implementation: [`score_document`], [`TaskScorer`]
//! and [`score_task`] score answers you computed yourself (per document, so identical requests
//! may get different answers), and the [`Evaluator`] calls the same code. A task evaluates a
//! prefix ([`Limit`]) or chosen documents ([`Task::with_doc_indices`], lm-eval's `--samples`);
//! [`tasks::load_named`] loads one MMLU subject alone; every [`Instance`] and [`SampleRecord`]
//! names its few-shot rows; [`perplexity`] scores rolling log-likelihoods as lm-eval's wikitext
//! does, with a bundled text ([`bundled::perplexity`]). See `docs/api.md`.
//!
//! ```
//! use eai_core::{
//!     GenerateRequest, Generation, LanguageModel, Loglikelihood, LoglikelihoodRequest,
//!     ModelError, ModelInfo,
//! };
//! use eai_eval::{Evaluator, Suite, bundled};
//!
//! /// A stand-in engine that prefers shorter continuations.
//! struct ShortIsLikely;
//! impl LanguageModel for ShortIsLikely {
//!     fn info(&self) -> ModelInfo { ModelInfo::new("short-is-likely") }
//!     fn loglikelihood(&mut self, reqs: &[LoglikelihoodRequest])
//!         -> Result<Vec<Loglikelihood>, ModelError> {
//!         Ok(reqs.iter().map(|r| Loglikelihood::new(-(r.continuation.len() as f64), false)).collect())
//!     }
//!     fn generate_until(&mut self, reqs: &[GenerateRequest])
//!         -> Result<Vec<Generation>, ModelError> {
//!         Ok(reqs.iter().map(|_| Generation::new("")).collect())
//!     }
//! }
//!
//! let task = bundled::arc_easy()?; // 40 ARC-Easy test items compiled into the crate
//! let first = &task.instances()?[0];
//! assert!(first.context.starts_with("Question: "));
//! assert!(first.context.ends_with("\nAnswer:"));
//!
//! let suite = Suite { tasks: vec![task, bundled::hellaswag()?], groups: vec![] };
//! let results = Evaluator::new().progress(false).run(&mut ShortIsLikely, &suite)?;
//! let acc = results.task("arc_easy").and_then(|t| t.metric("acc,none")).map(|m| m.value);
//! assert!(acc.is_some_and(|a| (0.0..=1.0).contains(&a)));
//! println!("{}", results.table());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use crate::{
    error::{Error, Result},
    evaluate::{Agreement, Answers, Evaluator, PassProgress, RepeatedRun},
    prepare::Prepared,
    pyrandom::PyRandom,
    results::{
        BatchSource, Batching, EvalResults, GroupResult, MetricValue, RequestStats, SampleRecord,
        TaskResult, TaskTiming,
    },
    score::{DocResponses, TaskScorer, TaskScores, aggregate_groups, score_document, score_task},
    task::{
        Doc, DocRequests, FewshotRef, Instance, Limit, Mc2Version, Sampler, Scoring, Target, Task,
        TaskConfig, split_whitespace,
    },
    tasks::{Benchmark, Group, Setting, Suite, TaskOptions},
    text::PyRegex,
};

pub mod bundled;
pub mod data;
mod error;
mod evaluate;
pub mod metrics;
pub mod perplexity;
mod prepare;
mod pyrandom;
mod results;
mod score;
mod task;
pub mod tasks;
pub mod text;
