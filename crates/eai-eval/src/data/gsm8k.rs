//! GSM8K JSON Lines (`openai/grade-school-math`): `{"question", "answer"}`.

use std::path::Path;

use super::{Fields, jsonl_objects, read_to_string};
use crate::Result;

/// One GSM8K problem.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Gsm8kItem {
    /// The problem text.
    pub question: String,
    /// The worked solution with `<<calc>>` annotations, ending in `#### <number>`.
    pub answer: String,
}

impl Gsm8kItem {
    /// The text after the last `####`, stripped: `gsm8k_cot`'s target.
    pub fn final_answer(&self) -> &str {
        let tail = self.answer.rsplit("####").next().unwrap_or(&self.answer);
        crate::text::py_strip(tail)
    }
}

/// Reads a GSM8K `.jsonl` file.
///
/// # Errors
/// I/O errors, malformed lines and missing or non-string fields, naming file and line.
pub fn load(path: &Path) -> Result<Vec<Gsm8kItem>> {
    parse(&read_to_string(path)?, path)
}

/// Parses GSM8K JSON Lines held in memory; `origin` names it in errors.
///
/// # Errors
/// As [`load`].
pub fn parse(text: &str, origin: &Path) -> Result<Vec<Gsm8kItem>> {
    let items = jsonl_objects(text, origin)
        .map(|rec| {
            let (line, map) = rec?;
            let f = Fields { path: origin, line };
            Ok(Gsm8kItem {
                question: f.string(&map, "question", "question")?,
                answer: f.string(&map, "answer", "answer")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    super::non_empty(items, origin)
}
