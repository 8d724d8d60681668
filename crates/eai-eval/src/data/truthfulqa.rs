//! TruthfulQA's `data/mc_task.json`: a JSON array of `{"question", "mc1_targets": {answer: 0|1},
//! "mc2_targets": {answer: 0|1}}`. The answers are object keys and **their order is data** (the
//! MC1 gold is the first key; MC2 labels follow key order), so this loader reads them in file
//! order without relying on `serde_json`'s `preserve_order` feature.

use std::fmt;
use std::path::Path;

use serde::de::{Deserializer, MapAccess, Visitor};

use super::read_to_string;
use crate::{Error, Result};

/// One TruthfulQA multiple-choice item, as HF `truthful_qa/multiple_choice` presents it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TruthfulQaItem {
    /// The question.
    pub question: String,
    /// `mc1_targets` as `(choice, label)` in file order.
    pub mc1: Vec<(String, bool)>,
    /// `mc2_targets` as `(choice, label)` in file order.
    pub mc2: Vec<(String, bool)>,
}

#[derive(Debug)]
struct OrderedLabels(Vec<(String, i64)>);

impl<'de> serde::Deserialize<'de> for OrderedLabels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedLabels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object mapping answer text to 0 or 1")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some((k, l)) = m.next_entry::<String, i64>()? {
                    v.push((k, l));
                }
                Ok(OrderedLabels(v))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, serde::Deserialize)]
struct RawItem {
    question: String,
    mc1_targets: OrderedLabels,
    mc2_targets: OrderedLabels,
}

/// Reads `mc_task.json`.
///
/// # Errors
/// I/O errors; invalid JSON; an item without `question`/`mc1_targets`/`mc2_targets`; empty
/// targets; labels other than 0/1; an MC1 set without exactly one true answer, or whose true
/// answer is not first (lm-eval scores MC1 with gold index 0). Errors name the file and line.
pub fn load(path: &Path) -> Result<Vec<TruthfulQaItem>> {
    parse(&read_to_string(path)?, path)
}

/// Parses `mc_task.json` held in memory; `origin` names it in errors.
///
/// # Errors
/// As [`load`].
pub fn parse(text: &str, origin: &Path) -> Result<Vec<TruthfulQaItem>> {
    let malformed =
        |line: usize, reason: String| Error::Malformed { path: origin.to_path_buf(), line, reason };
    let spans = top_level_elements(text).map_err(|(line, r)| malformed(line, r))?;
    let mut out = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        let line = 1 + text[..start].matches('\n').count();
        let raw: RawItem = serde_json::from_str(&text[start..end]).map_err(|e| {
            // serde_json's line is relative to the element.
            let l = line + e.line().saturating_sub(1);
            match e.classify() {
                serde_json::error::Category::Data => {
                    let msg = e.to_string();
                    if let Some(field) = missing_field_name(&msg) {
                        Error::MissingField { path: origin.to_path_buf(), line: l, field }
                    } else {
                        malformed(l, msg)
                    }
                }
                _ => malformed(l, format!("invalid JSON: {e}")),
            }
        })?;
        let conv = |field: &str, v: OrderedLabels| -> Result<Vec<(String, bool)>> {
            if v.0.is_empty() {
                return Err(Error::EmptyChoices {
                    path: origin.to_path_buf(),
                    line,
                    field: field.into(),
                });
            }
            v.0.into_iter()
                .map(|(k, l)| match l {
                    0 => Ok((k, false)),
                    1 => Ok((k, true)),
                    other => Err(Error::BadField {
                        path: origin.to_path_buf(),
                        line,
                        field: field.into(),
                        reason: format!("label {other} for {k:?} is not 0 or 1"),
                    }),
                })
                .collect()
        };
        let mc1 = conv("mc1_targets", raw.mc1_targets)?;
        let mc2 = conv("mc2_targets", raw.mc2_targets)?;
        let trues = mc1.iter().filter(|(_, t)| *t).count();
        if trues != 1 || !mc1[0].1 {
            return Err(Error::BadField {
                path: origin.to_path_buf(),
                line,
                field: "mc1_targets".into(),
                reason: format!(
                    "expected exactly one true answer, listed first (found {trues} true)"
                ),
            });
        }
        out.push(TruthfulQaItem { question: raw.question, mc1, mc2 });
    }
    super::non_empty(out, origin)
}

fn missing_field_name(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// Byte spans of the elements of a top-level JSON array, found by a string-aware bracket scan.
fn top_level_elements(text: &str) -> std::result::Result<Vec<(usize, usize)>, (usize, String)> {
    let b = text.as_bytes();
    let line_at = |i: usize| 1 + text[..i].matches('\n').count();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    if b.get(i) != Some(&b'[') {
        return Err((line_at(i), "expected a JSON array of items".into()));
    }
    i += 1;
    let mut spans = Vec::new();
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    let mut start: Option<usize> = None;
    while i < b.len() {
        let c = b[i];
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
        } else {
            match c {
                b'"' => {
                    in_str = true;
                    start.get_or_insert(i);
                }
                b'{' | b'[' => {
                    start.get_or_insert(i);
                    depth += 1;
                }
                b'}' | b']' if depth > 0 => depth -= 1,
                b']' => {
                    if let Some(s) = start.take() {
                        spans.push((s, i));
                    }
                    return Ok(spans);
                }
                b',' if depth == 0 => match start.take() {
                    Some(s) => spans.push((s, i)),
                    None => return Err((line_at(i), "empty array element".into())),
                },
                c if c.is_ascii_whitespace() => {}
                _ => {
                    start.get_or_insert(i);
                }
            }
        }
        i += 1;
    }
    Err((line_at(b.len()), "truncated: the top-level array is not closed".into()))
}
