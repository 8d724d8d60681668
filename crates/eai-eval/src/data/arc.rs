//! AI2 ARC (`ARC-V1-Feb2018`) JSON Lines: `{"id", "question": {"stem", "choices": [{"text",
//! "label"}]}, "answerKey"}`.

use std::path::Path;

use super::{Fields, jsonl_objects, read_to_string};
use crate::{Error, Result};

/// One ARC question, as the HF `allenai/ai2_arc` dataset presents it to lm-eval.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ArcItem {
    /// The item id (e.g. `Mercury_7175875`).
    pub id: String,
    /// `question.stem`, verbatim.
    pub question: String,
    /// `choices[].text`, in file order (3 to 5 of them).
    pub choice_texts: Vec<String>,
    /// `choices[].label`, in file order (`A`..`E` or `1`..`5`).
    pub choice_labels: Vec<String>,
    /// `answerKey`, verbatim.
    pub answer_key: String,
    /// `choices.label.index(answerKey)`: the gold choice's position.
    pub gold: usize,
}

/// Reads an ARC `.jsonl` file.
///
/// # Errors
/// I/O errors, malformed lines, missing fields, an empty choice list, or an `answerKey` that is
/// not one of the item's labels (lm-eval would crash on `list.index`), each naming file and line.
pub fn load(path: &Path) -> Result<Vec<ArcItem>> {
    parse(&read_to_string(path)?, path)
}

/// Parses ARC JSON Lines held in memory; `origin` names it in errors.
///
/// # Errors
/// As [`load`].
pub fn parse(text: &str, origin: &Path) -> Result<Vec<ArcItem>> {
    let mut out = Vec::new();
    for rec in jsonl_objects(text, origin) {
        let (line, map) = rec?;
        let f = Fields { path: origin, line };
        let id = f.string(&map, "id", "id")?;
        let q = f.object(&map, "question", "question")?;
        let question = f.string(q, "stem", "question.stem")?;
        let choices = f.array(q, "choices", "question.choices")?;
        if choices.is_empty() {
            return Err(f.empty("question.choices"));
        }
        let mut choice_texts = Vec::with_capacity(choices.len());
        let mut choice_labels = Vec::with_capacity(choices.len());
        for (i, c) in choices.iter().enumerate() {
            let Some(c) = c.as_object() else {
                return Err(f.bad(
                    &format!("question.choices[{i}]"),
                    format!("expected an object, found {}", super::kind(c)),
                ));
            };
            choice_texts.push(f.string(c, "text", &format!("question.choices[{i}].text"))?);
            choice_labels.push(f.string(c, "label", &format!("question.choices[{i}].label"))?);
        }
        let answer_key = f.string(&map, "answerKey", "answerKey")?;
        let gold = choice_labels
            .iter()
            .position(|l| *l == answer_key)
            .ok_or_else(|| f.out_of_range("answerKey", answer_key.clone(), choice_labels.len()))?;
        out.push(ArcItem { id, question, choice_texts, choice_labels, answer_key, gold });
    }
    super::non_empty(out, origin)
}

/// The two ARC subsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArcSubset {
    /// `ARC-Easy`.
    Easy,
    /// `ARC-Challenge`.
    Challenge,
}

impl ArcSubset {
    /// The directory and file-name stem (`ARC-Easy`, `ARC-Challenge`).
    pub fn dir_name(self) -> &'static str {
        match self {
            Self::Easy => "ARC-Easy",
            Self::Challenge => "ARC-Challenge",
        }
    }
}

/// Loads `<root>/<ARC-X>/<ARC-X>-<Split>.jsonl` where split is `Train`, `Dev` or `Test`.
///
/// # Errors
/// As [`load`]; [`Error::MissingData`] when the file is absent.
pub fn load_split(root: &Path, subset: ArcSubset, split: &str) -> Result<Vec<ArcItem>> {
    let name = subset.dir_name();
    let path = root.join(name).join(format!("{name}-{split}.jsonl"));
    if !path.is_file() {
        return Err(Error::MissingData { path, reason: "ARC split file not found".into() });
    }
    load(&path)
}
