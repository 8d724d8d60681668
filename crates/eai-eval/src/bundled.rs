//! Small subsets of the benchmarks compiled into the library, so that a fresh clone can run an
//! end-to-end evaluation without `shared/data` (the quickstart uses them).
//!
//! - ARC-Easy and ARC-Challenge: the first 40 lines of the original `*-Test.jsonl` files.
//! - HellaSwag: the first 40 items (240 lines) of llama.cpp's `hellaswag_val_full.txt`, the only
//!   HellaSwag copy available; its prompts differ slightly from lm-eval's (see
//!   [`crate::data::hellaswag`]).
//!
//! - `perplexity`: five paragraphs of English prose written for this project (so under its own
//!   licence), scored as lm-eval scores wikitext ([`crate::perplexity`]).
//!
//! All are 0-shot (the train splits are not bundled). Provenance and licences: ARC is CC BY-SA
//! 4.0 (AI2), HellaSwag MIT (Zellers et al.); see `docs/eval.md`.

use std::path::Path;

use crate::Result;
use crate::data::{arc, hellaswag};
use crate::task::Task;
use crate::tasks;

const ARC_EASY: &str = include_str!("../data/arc_easy_test_head40.jsonl");
const ARC_CHALLENGE: &str = include_str!("../data/arc_challenge_test_head40.jsonl");
const HELLASWAG: &str = include_str!("../data/hellaswag_val_head40.txt");
const PERPLEXITY: &str = include_str!("../data/perplexity_eai.txt");

/// The name of the bundled perplexity task.
pub const PERPLEXITY_TASK: &str = "perplexity";
/// Documents in [`perplexity()`].
pub const PERPLEXITY_DOCS: usize = 5;

/// Items in [`arc_easy`].
pub const ARC_EASY_ITEMS: usize = 40;
/// Items in [`arc_challenge`].
pub const ARC_CHALLENGE_ITEMS: usize = 40;
/// Items in [`hellaswag()`].
pub const HELLASWAG_ITEMS: usize = 40;

/// `arc_easy`, 0-shot, on the first 40 test items.
///
/// # Errors
/// Only if the embedded data were corrupt.
pub fn arc_easy() -> Result<Task> {
    let items = arc::parse(ARC_EASY, Path::new("bundled:arc_easy_test_head40.jsonl"))?;
    Ok(tasks::arc_task(arc::ArcSubset::Easy, &items, &[], 0)?
        .with_source("bundled:ARC-Easy-Test.jsonl[..40]"))
}

/// `arc_challenge`, 0-shot, on the first 40 test items.
///
/// # Errors
/// Only if the embedded data were corrupt.
pub fn arc_challenge() -> Result<Task> {
    let items = arc::parse(ARC_CHALLENGE, Path::new("bundled:arc_challenge_test_head40.jsonl"))?;
    Ok(tasks::arc_task(arc::ArcSubset::Challenge, &items, &[], 0)?
        .with_source("bundled:ARC-Challenge-Test.jsonl[..40]"))
}

/// `hellaswag`, 0-shot, on the first 40 validation items (llama.cpp text format).
///
/// # Errors
/// Only if the embedded data were corrupt.
pub fn hellaswag() -> Result<Task> {
    let items = hellaswag::parse_text(HELLASWAG, Path::new("bundled:hellaswag_val_head40.txt"))?;
    Ok(tasks::hellaswag_text_task(&items)?.with_source("bundled:hellaswag_val_full.txt[..40]"))
}

/// `perplexity`: wikitext-style perplexity (`word_perplexity`, `byte_perplexity`,
/// `bits_per_byte`) of five paragraphs of prose written for this project, one document each.
/// Needs an engine with rolling log-likelihoods
/// ([`LanguageModel::loglikelihood_rolling`](eai_core::LanguageModel::loglikelihood_rolling)).
///
/// ```
/// let task = eai_eval::bundled::perplexity()?;
/// assert_eq!(task.docs().len(), eai_eval::bundled::PERPLEXITY_DOCS);
/// assert!(matches!(task.instances()?[0].requests, eai_eval::DocRequests::Rolling(_)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// Only if the embedded text were empty.
pub fn perplexity() -> Result<Task> {
    let docs = crate::perplexity::paragraphs("perplexity", PERPLEXITY);
    Ok(crate::perplexity::perplexity_task(PERPLEXITY_TASK, docs)?
        .with_source("bundled:perplexity_eai.txt (written for eai)"))
}
