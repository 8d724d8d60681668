//! MMLU in the original hendrycks CSV layout: `<root>/{dev,val,test}/<subject>_<split>.csv`,
//! headerless, six columns `question, A, B, C, D, answer_letter`, RFC-4180 quoting, LF or CRLF
//! record terminators, embedded `\r`/`\n` kept verbatim.

use std::path::Path;

use super::read_to_string;
use crate::{Error, Result};

/// lm-eval's four MMLU categories (the `tag` of each subject YAML).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MmluCategory {
    /// `mmlu_stem` (19 subjects).
    Stem,
    /// `mmlu_humanities` (13 subjects).
    Humanities,
    /// `mmlu_social_sciences` (12 subjects).
    SocialSciences,
    /// `mmlu_other` (13 subjects).
    Other,
}

impl MmluCategory {
    /// All four, in the order lm-eval lists them in `_mmlu.yaml`.
    pub const ALL: [Self; 4] = [Self::Stem, Self::Other, Self::SocialSciences, Self::Humanities];

    /// The group's task name (`mmlu_stem`, ...).
    pub fn group_name(self) -> &'static str {
        match self {
            Self::Stem => "mmlu_stem",
            Self::Humanities => "mmlu_humanities",
            Self::SocialSciences => "mmlu_social_sciences",
            Self::Other => "mmlu_other",
        }
    }

    /// The group's alias in lm-eval's tables (`stem`, `humanities`, ...).
    pub fn alias(self) -> &'static str {
        match self {
            Self::Stem => "stem",
            Self::Humanities => "humanities",
            Self::SocialSciences => "social sciences",
            Self::Other => "other",
        }
    }
}

use MmluCategory::{Humanities as H, Other as O, SocialSciences as S, Stem as T};

/// The 57 subjects in alphabetical order with their categories.
pub const SUBJECTS: [(&str, MmluCategory); 57] = [
    ("abstract_algebra", T),
    ("anatomy", T),
    ("astronomy", T),
    ("business_ethics", O),
    ("clinical_knowledge", O),
    ("college_biology", T),
    ("college_chemistry", T),
    ("college_computer_science", T),
    ("college_mathematics", T),
    ("college_medicine", O),
    ("college_physics", T),
    ("computer_security", T),
    ("conceptual_physics", T),
    ("econometrics", S),
    ("electrical_engineering", T),
    ("elementary_mathematics", T),
    ("formal_logic", H),
    ("global_facts", O),
    ("high_school_biology", T),
    ("high_school_chemistry", T),
    ("high_school_computer_science", T),
    ("high_school_european_history", H),
    ("high_school_geography", S),
    ("high_school_government_and_politics", S),
    ("high_school_macroeconomics", S),
    ("high_school_mathematics", T),
    ("high_school_microeconomics", S),
    ("high_school_physics", T),
    ("high_school_psychology", S),
    ("high_school_statistics", T),
    ("high_school_us_history", H),
    ("high_school_world_history", H),
    ("human_aging", O),
    ("human_sexuality", S),
    ("international_law", H),
    ("jurisprudence", H),
    ("logical_fallacies", H),
    ("machine_learning", T),
    ("management", O),
    ("marketing", O),
    ("medical_genetics", O),
    ("miscellaneous", O),
    ("moral_disputes", H),
    ("moral_scenarios", H),
    ("nutrition", O),
    ("philosophy", H),
    ("prehistory", H),
    ("professional_accounting", O),
    ("professional_law", H),
    ("professional_medicine", O),
    ("professional_psychology", S),
    ("public_relations", S),
    ("security_studies", S),
    ("sociology", S),
    ("us_foreign_policy", S),
    ("virology", O),
    ("world_religions", H),
];

/// The category of a subject, if it is one of the 57.
pub fn category(subject: &str) -> Option<MmluCategory> {
    SUBJECTS.iter().find(|(s, _)| *s == subject).map(|&(_, c)| c)
}

/// One MMLU question, as HF `cais/mmlu` presents it to lm-eval.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MmluItem {
    /// The subject (file-name stem).
    pub subject: String,
    /// Column 0, verbatim (the task strips it when rendering).
    pub question: String,
    /// Columns 1..=4, verbatim.
    pub choices: [String; 4],
    /// Index of column 5's letter in `ABCD`.
    pub answer: usize,
}

/// Reads one subject file.
///
/// # Errors
/// I/O errors; a record with other than six fields, an unterminated quote, or an answer that is
/// not `A`..`D` (naming file, line and field).
pub fn load(path: &Path, subject: &str) -> Result<Vec<MmluItem>> {
    parse(&read_to_string(path)?, path, subject)
}

/// Parses one subject's CSV held in memory; `origin` names it in errors.
///
/// # Errors
/// As [`load`].
pub fn parse(text: &str, origin: &Path, subject: &str) -> Result<Vec<MmluItem>> {
    let mut rdr =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut out = Vec::new();
    let mut rec = csv::StringRecord::new();
    loop {
        let line = rdr.position().line() as usize;
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line() as usize);
                return Err(Error::Malformed {
                    path: origin.to_path_buf(),
                    line,
                    reason: format!("CSV: {e}"),
                });
            }
        }
        let line = rec.position().map_or(line, |p| p.line() as usize);
        if rec.len() != 6 {
            return Err(Error::Malformed {
                path: origin.to_path_buf(),
                line,
                reason: format!(
                    "expected 6 fields (question, A, B, C, D, answer), found {}",
                    rec.len()
                ),
            });
        }
        let letter = &rec[5];
        let answer = match letter {
            "A" => 0,
            "B" => 1,
            "C" => 2,
            "D" => 3,
            _ => {
                return Err(Error::AnswerOutOfRange {
                    path: origin.to_path_buf(),
                    line,
                    field: "answer (column 6)".into(),
                    answer: letter.to_owned(),
                    choices: 4,
                });
            }
        };
        out.push(MmluItem {
            subject: subject.to_owned(),
            question: rec[0].to_owned(),
            choices: [rec[1].to_owned(), rec[2].to_owned(), rec[3].to_owned(), rec[4].to_owned()],
            answer,
        });
    }
    // An unterminated quoted field makes the csv crate swallow the rest of the file into one
    // field; the field-count check above catches that as a malformed record.
    super::non_empty(out, origin)
}

/// Loads `<root>/<split>/<subject>_<split>.csv` for `split` in `dev`, `val`, `test`.
///
/// # Errors
/// As [`load`]; [`Error::MissingData`] when the file is absent.
pub fn load_split(root: &Path, subject: &str, split: &str) -> Result<Vec<MmluItem>> {
    let path = root.join(split).join(format!("{subject}_{split}.csv"));
    if !path.is_file() {
        return Err(Error::MissingData { path, reason: "MMLU subject file not found".into() });
    }
    load(&path, subject)
}
