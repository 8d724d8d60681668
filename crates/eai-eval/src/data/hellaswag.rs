//! HellaSwag in two formats.
//!
//! - The original JSON Lines (`rowanz/hellaswag` `data/hellaswag_{train,val}.jsonl`, and HF
//!   `Rowan/hellaswag`): `ind`, `activity_label`, `ctx_a`, `ctx_b`, `ctx`, `endings[4]`,
//!   `source_id`, `split`, `split_type`, `label` (an int, or a string `"0"`..`"3"` in HF exports).
//!   This is what lm-eval scores; the task applies its `process_docs` to it.
//! - llama.cpp's 6-line text format (`hellaswag_val_full.txt`, the only copy in
//!   `shared/data`): per item, the already-preprocessed `activity_label: ctx`, the gold label,
//!   and the four preprocessed endings. It is lossy: `ctx` was not split into `ctx_a`/`ctx_b`, so
//!   lm-eval's `capitalize(ctx_b)` cannot be applied (`"…on a roof. he"` instead of `"… He"`),
//!   and its tag removal differs from lm-eval's generic `\[.*?\]` deletion. Scores on it are
//!   close to, not equal to, lm-eval's.

use std::path::Path;

use serde_json::Value;

use super::{Fields, jsonl_objects, read_to_string};
use crate::{Error, Result};

/// One HellaSwag item in the original schema.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HellaswagItem {
    /// `ind`, when present.
    pub ind: Option<i64>,
    /// `activity_label` (e.g. `Roof shingle removal`).
    pub activity_label: String,
    /// `ctx_a`.
    pub ctx_a: String,
    /// `ctx_b` (lm-eval capitalizes it).
    pub ctx_b: String,
    /// The four endings.
    pub endings: Vec<String>,
    /// The gold ending's index.
    pub label: usize,
    /// `source_id`, when present.
    pub source_id: Option<String>,
}

/// One item of llama.cpp's 6-line format: already preprocessed by its author's script.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HellaswagTextItem {
    /// Line 1: `activity_label: ctx`, preprocessed.
    pub query: String,
    /// Line 2: the gold label.
    pub label: usize,
    /// Lines 3–6: the endings, preprocessed.
    pub endings: Vec<String>,
}

/// Reads the original `.jsonl`.
///
/// # Errors
/// I/O errors, malformed lines, missing fields, no endings, a label that is not an integer (or
/// digit string) naming one of the endings; each error names file and line.
pub fn load_jsonl(path: &Path) -> Result<Vec<HellaswagItem>> {
    parse_jsonl(&read_to_string(path)?, path)
}

/// Parses original-format JSON Lines held in memory; `origin` names it in errors.
///
/// # Errors
/// As [`load_jsonl`].
pub fn parse_jsonl(text: &str, origin: &Path) -> Result<Vec<HellaswagItem>> {
    let mut out = Vec::new();
    for rec in jsonl_objects(text, origin) {
        let (line, map) = rec?;
        let f = Fields { path: origin, line };
        let endings_v = f.array(&map, "endings", "endings")?;
        if endings_v.is_empty() {
            return Err(f.empty("endings"));
        }
        let mut endings = Vec::with_capacity(endings_v.len());
        for (i, e) in endings_v.iter().enumerate() {
            match e {
                Value::String(s) => endings.push(s.clone()),
                other => {
                    return Err(f.bad(
                        &format!("endings[{i}]"),
                        format!("expected a string, found {}", super::kind(other)),
                    ));
                }
            }
        }
        let label = match f.get(&map, "label", "label")? {
            Value::Number(n) => n
                .as_u64()
                .map(|v| v as usize)
                .ok_or_else(|| f.out_of_range("label", n.to_string(), endings.len()))?,
            // HF stores "0".."3"; lm-eval does int(label).
            Value::String(s) => crate::text::py_strip(s)
                .parse::<usize>()
                .map_err(|_| f.bad("label", format!("{s:?} is not an integer")))?,
            other => {
                return Err(
                    f.bad("label", format!("expected an integer, found {}", super::kind(other)))
                );
            }
        };
        if label >= endings.len() {
            return Err(f.out_of_range("label", label.to_string(), endings.len()));
        }
        out.push(HellaswagItem {
            ind: map.get("ind").and_then(Value::as_i64),
            activity_label: f.string(&map, "activity_label", "activity_label")?,
            ctx_a: f.string(&map, "ctx_a", "ctx_a")?,
            ctx_b: f.string(&map, "ctx_b", "ctx_b")?,
            endings,
            label,
            source_id: map.get("source_id").and_then(Value::as_str).map(str::to_owned),
        });
    }
    super::non_empty(out, origin)
}

/// Reads llama.cpp's 6-line text format.
///
/// # Errors
/// I/O errors; a truncated item (line count not a multiple of 6); a label line that is not
/// `0`..`3`; each naming file and line.
pub fn load_text(path: &Path) -> Result<Vec<HellaswagTextItem>> {
    parse_text(&read_to_string(path)?, path)
}

/// Parses the 6-line text format held in memory; `origin` names it in errors.
///
/// # Errors
/// As [`load_text`].
pub fn parse_text(text: &str, origin: &Path) -> Result<Vec<HellaswagTextItem>> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.trim().is_empty() {
        return Err(Error::NoRecords { path: origin.to_path_buf() });
    }
    let lines: Vec<&str> = body.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    if !lines.len().is_multiple_of(6) {
        let start = lines.len() - lines.len() % 6;
        return Err(Error::Malformed {
            path: origin.to_path_buf(),
            line: start + 1,
            reason: format!(
                "truncated item: {} of 6 lines (context, label, 4 endings)",
                lines.len() % 6
            ),
        });
    }
    let mut out = Vec::with_capacity(lines.len() / 6);
    for (k, chunk) in lines.chunks_exact(6).enumerate() {
        let label_line = k * 6 + 2;
        let label: usize = chunk[1].trim().parse().map_err(|_| Error::BadField {
            path: origin.to_path_buf(),
            line: label_line,
            field: "label".into(),
            reason: format!("{:?} is not an integer", chunk[1]),
        })?;
        if label >= 4 {
            return Err(Error::AnswerOutOfRange {
                path: origin.to_path_buf(),
                line: label_line,
                field: "label".into(),
                answer: chunk[1].to_owned(),
                choices: 4,
            });
        }
        out.push(HellaswagTextItem {
            query: chunk[0].to_owned(),
            label,
            endings: chunk[2..].iter().map(|s| (*s).to_owned()).collect(),
        });
    }
    super::non_empty(out, origin)
}

/// lm-eval's HellaSwag `preprocess`: strip; `" [title]"` → `". "`; delete every `\[.*?\]`;
/// replace `"  "` with `" "` (one left-to-right pass). Nothing is stripped afterwards.
pub fn preprocess(text: &str) -> String {
    let t = crate::text::py_strip(text).replace(" [title]", ". ");
    let t = delete_bracketed(&t);
    t.replace("  ", " ")
}

/// `re.sub(r"\[.*?\]", "", t)`: delete from each `[` to the next `]` on the same line.
fn delete_bracketed(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        // `.` does not match `\n`: the closing bracket must come before any newline.
        let close = after.find(']').filter(|&c| !after[..c].contains('\n'));
        match close {
            Some(c) => {
                out.push_str(&rest[..open]);
                rest = &after[c + 1..];
            }
            None => {
                out.push_str(&rest[..open + 1]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preprocess_like_lm_eval() {
        assert_eq!(preprocess("foo bar [step]"), "foo bar ");
        assert_eq!(preprocess("Preheat the oven. [title] Mix it."), "Preheat the oven.. Mix it.");
        assert_eq!(preprocess("a   b"), "a  b");
        assert_eq!(preprocess("  x [header] y [a\nb] z"), "x y [a\nb] z");
        assert_eq!(preprocess("[x]"), "");
    }
}
