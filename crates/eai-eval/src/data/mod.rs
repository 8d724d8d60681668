//! Loaders for the benchmarks' original file formats.
//!
//! Each loader has a `load_*` form reading a path and a `parse_*` form reading text you already
//! hold (the bundled subsets use it); `origin` names the text in errors. Loaders keep every
//! string byte for byte (no trimming, no line-ending normalisation): the tasks apply exactly the
//! processing lm-evaluation-harness applies, and nothing else.

pub mod arc;
pub mod gsm8k;
pub mod hellaswag;
pub mod mmlu;
pub mod truthfulqa;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Error, Result};

/// A file without a single record is an error naming it (it would otherwise become a task that
/// scores nothing, or silently leave an MMLU subject out of its aggregate).
pub(crate) fn non_empty<T>(items: Vec<T>, origin: &Path) -> Result<Vec<T>> {
    if items.is_empty() {
        return Err(Error::NoRecords { path: origin.to_path_buf() });
    }
    Ok(items)
}

pub(crate) fn read_to_string(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// Iterates the non-empty lines of a JSON Lines text as `(1-based line, parsed object)`.
pub(crate) fn jsonl_objects<'a>(
    text: &'a str,
    origin: &'a Path,
) -> impl Iterator<Item = Result<(usize, serde_json::Map<String, Value>)>> + 'a {
    text.split('\n').enumerate().filter(|(_, l)| !l.trim().is_empty()).map(move |(i, line)| {
        let line_no = i + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => Ok((line_no, map)),
            Ok(other) => Err(Error::Malformed {
                path: origin.to_path_buf(),
                line: line_no,
                reason: format!("expected a JSON object, found {}", kind(&other)),
            }),
            Err(e) => Err(Error::Malformed {
                path: origin.to_path_buf(),
                line: line_no,
                reason: format!("invalid JSON: {e}"),
            }),
        }
    })
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Field access with errors that name file, line and (dotted) field.
pub(crate) struct Fields<'a> {
    pub(crate) path: &'a Path,
    pub(crate) line: usize,
}

impl Fields<'_> {
    pub(crate) fn get<'v>(
        &self,
        map: &'v serde_json::Map<String, Value>,
        field: &str,
        dotted: &str,
    ) -> Result<&'v Value> {
        map.get(field).ok_or_else(|| Error::MissingField {
            path: self.path.to_path_buf(),
            line: self.line,
            field: dotted.to_owned(),
        })
    }

    pub(crate) fn string(
        &self,
        map: &serde_json::Map<String, Value>,
        field: &str,
        dotted: &str,
    ) -> Result<String> {
        match self.get(map, field, dotted)? {
            Value::String(s) => Ok(s.clone()),
            other => Err(self.bad(dotted, format!("expected a string, found {}", kind(other)))),
        }
    }

    pub(crate) fn object<'v>(
        &self,
        map: &'v serde_json::Map<String, Value>,
        field: &str,
        dotted: &str,
    ) -> Result<&'v serde_json::Map<String, Value>> {
        match self.get(map, field, dotted)? {
            Value::Object(m) => Ok(m),
            other => Err(self.bad(dotted, format!("expected an object, found {}", kind(other)))),
        }
    }

    pub(crate) fn array<'v>(
        &self,
        map: &'v serde_json::Map<String, Value>,
        field: &str,
        dotted: &str,
    ) -> Result<&'v Vec<Value>> {
        match self.get(map, field, dotted)? {
            Value::Array(a) => Ok(a),
            other => Err(self.bad(dotted, format!("expected an array, found {}", kind(other)))),
        }
    }

    pub(crate) fn bad(&self, field: &str, reason: String) -> Error {
        Error::BadField {
            path: self.path.to_path_buf(),
            line: self.line,
            field: field.to_owned(),
            reason,
        }
    }

    pub(crate) fn empty(&self, field: &str) -> Error {
        Error::EmptyChoices { path: self.path.to_path_buf(), line: self.line, field: field.into() }
    }

    pub(crate) fn out_of_range(&self, field: &str, answer: String, choices: usize) -> Error {
        Error::AnswerOutOfRange {
            path: self.path.to_path_buf(),
            line: self.line,
            field: field.into(),
            answer,
            choices,
        }
    }
}

/// Where the full data sets live: `$EAI_DATA_DIR`, else `../shared/data` next to the checkout
/// (how CI lays it out), else `/work/shared/data`. Returns `None` when none exists.
pub fn shared_data_dir() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(d) = std::env::var_os("EAI_DATA_DIR") {
        candidates.push(PathBuf::from(d));
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // crates/eai-eval -> workspace root -> its parent.
    if let Some(root_parent) = manifest.parent().and_then(Path::parent).and_then(Path::parent) {
        candidates.push(root_parent.join("shared").join("data"));
    }
    candidates.push(PathBuf::from("/work/shared/data"));
    candidates.into_iter().find(|p| p.is_dir())
}
