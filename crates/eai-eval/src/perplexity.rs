//! Perplexity tasks: lm-eval's `loglikelihood_rolling` output type scored as its `wikitext`
//! task scores it.
//!
//! Each document's target text is sent whole as one [`RollingRequest`](eai_core::RollingRequest);
//! the engine returns `ll`, the summed log-probability of every token. wikitext's
//! `process_results` pairs `ll` with the text's word count (`len(re.split(r"\s+", page))`) and
//! its UTF-8 byte count, and the task aggregates over all documents:
//!
//! - `word_perplexity = exp(−Σll / Σwords)` (lm-eval's `weighted_perplexity`),
//! - `byte_perplexity = exp(−Σll / Σbytes)`,
//! - `bits_per_byte = −(Σll / Σbytes) / ln 2`.
//!
//! The sums are Python's left-to-right float sums ([`py_sum`]); no stderr is reported (lm-eval
//! reports `N/A` for these aggregations). lm-eval counts words and bytes on wikitext's page
//! *before* its detokenizer; the texts here need no detokenizer, so the counts are those of the
//! scored text itself.
//!
//! ```
//! use eai_eval::perplexity::{PerplexitySample, aggregate, word_count};
//! assert_eq!(word_count("two words"), 2);
//! assert_eq!(word_count(" leading space"), 3); // re.split keeps the empty first field
//! let docs = [PerplexitySample::new(-10.0, "one two"), PerplexitySample::new(-6.0, "three")];
//! let [(_, word_ppl), (_, byte_ppl), (_, bpb)] = aggregate(&docs);
//! assert!((word_ppl - (16.0f64 / 3.0).exp()).abs() < 1e-12);
//! assert!((byte_ppl - (16.0f64 / 12.0).exp()).abs() < 1e-12);
//! assert!((bpb - 16.0 / 12.0 / std::f64::consts::LN_2).abs() < 1e-12);
//! ```

use crate::metrics::py_sum;
use crate::task::{Doc, Scoring, Task, TaskConfig};
use crate::text::py_isspace;
use crate::{Error, Result};

/// The metrics of a perplexity task, in lm-eval's order.
pub const METRICS: [&str; 3] = ["word_perplexity", "byte_perplexity", "bits_per_byte"];

/// One document's contribution: its rolling log-likelihood and the weights it is divided by.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct PerplexitySample {
    /// The summed natural-log probability of the text's tokens.
    pub logprob: f64,
    /// `len(re.split(r"\s+", text))`.
    pub words: usize,
    /// `len(text.encode("utf-8"))`.
    pub bytes: usize,
    /// Tokens the engine scored, when it said.
    pub tokens: Option<u32>,
}

impl PerplexitySample {
    /// The sample of `text` scored `logprob`.
    pub fn new(logprob: f64, text: &str) -> Self {
        Self { logprob, words: word_count(text), bytes: text.len(), tokens: None }
    }
}

/// Python's `len(re.split(r"\s+", text))`: one more than the number of whitespace runs (the
/// Unicode whitespace of Python's `str` patterns), so leading or trailing whitespace counts an
/// empty field, as it does in lm-eval.
pub fn word_count(text: &str) -> usize {
    let mut runs = 0;
    let mut in_space = false;
    for c in text.chars() {
        let s = py_isspace(c);
        if s && !in_space {
            runs += 1;
        }
        in_space = s;
    }
    runs + 1
}

/// The three task-level values `(metric, value)` over all documents, in [`METRICS`] order.
/// An empty slice gives NaN values (lm-eval divides by zero); callers score at least one
/// document.
pub fn aggregate(samples: &[PerplexitySample]) -> [(&'static str, f64); 3] {
    let ll = py_sum(samples.iter().map(|s| s.logprob));
    let words = py_sum(samples.iter().map(|s| s.words as f64));
    let bytes = py_sum(samples.iter().map(|s| s.bytes as f64));
    let per_word = ll / words;
    let per_byte = ll / bytes;
    [
        (METRICS[0], (-per_word).exp()),
        (METRICS[1], (-per_byte).exp()),
        (METRICS[2], -per_byte / std::f64::consts::LN_2),
    ]
}

/// A perplexity task over `texts` (`(id, text)` pairs): one document per text, scored whole.
///
/// # Errors
/// [`Error::Config`] when a text is empty (lm-eval's windowing yields no request for it).
pub fn perplexity_task(
    name: impl Into<String>,
    texts: impl IntoIterator<Item = (String, String)>,
) -> Result<Task> {
    let mut cfg = TaskConfig::new(name);
    cfg.version = "2.0".into(); // wikitext's metadata.version
    let mut docs = Vec::new();
    for (id, text) in texts {
        if text.is_empty() {
            return Err(Error::config(format!("task {}: document {id} is empty", cfg.name)));
        }
        docs.push(Doc::generation(id, "", text));
    }
    Task::new(cfg, docs, Vec::new(), Scoring::Perplexity)
}

/// Splits a text into documents at blank lines (one or more empty lines), trimming each
/// paragraph's surrounding newlines; ids are `<prefix>/<n>`.
pub fn paragraphs(prefix: &str, text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .map(|p| p.trim_matches('\n'))
        .filter(|p| !p.is_empty())
        .enumerate()
        .map(|(i, p)| (format!("{prefix}/{i}"), p.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_count_is_python_re_split() {
        // len(re.split(r"\s+", s)) in CPython 3.12 for each s.
        for (s, n) in [
            ("", 1),
            ("a", 1),
            ("a b", 2),
            ("a  \n\t b", 2),
            (" a", 2),
            ("a ", 2),
            (" ", 2),
            ("a\u{a0}b", 2),
            ("a\u{2003}b\u{1f}c", 3),
            ("x\u{200b}y", 1),
        ] {
            assert_eq!(word_count(s), n, "{s:?}");
        }
    }

    #[test]
    fn paragraphs_split_at_blank_lines() {
        let p = paragraphs("t", "one\ntwo\n\nthree\n\n\n\nfour\n");
        let texts: Vec<&str> = p.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["one\ntwo", "three", "four"]);
        assert_eq!(p[2].0, "t/2");
    }
}
