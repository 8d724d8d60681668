//! Per-document metrics, per-task aggregation with stderr, and group aggregation, as
//! lm-evaluation-harness computes them.

use crate::text::{PyRegex, py_strip};
use crate::{Result, task::Mc2Version};

/// `np.argmax`: the first maximal index; a NaN counts as the maximum (the first NaN wins).
/// Returns `None` for an empty slice.
pub fn argmax(xs: &[f64]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, &x) in xs.iter().enumerate() {
        if x.is_nan() {
            return Some(i);
        }
        match best {
            Some((_, b)) if x <= b => {}
            _ => best = Some((i, x)),
        }
    }
    best.map(|(i, _)| i)
}

/// Multiple-choice predictions for one document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChoicePrediction {
    /// `argmax(ll)`.
    pub pred: usize,
    /// `argmax(ll / len_chars(choice))`.
    pub pred_norm: usize,
}

/// Predictions from per-choice log-likelihoods and the choice strings (without the delimiter).
/// `acc_norm` divides by the number of Unicode scalar values (Python's `len(str)`), not bytes.
/// Returns `None` for an empty choice list.
pub fn predict_choice(lls: &[f64], choices: &[String]) -> Option<ChoicePrediction> {
    let pred = argmax(lls)?;
    let normed: Vec<f64> =
        lls.iter().zip(choices).map(|(ll, c)| ll / c.chars().count() as f64).collect();
    let pred_norm = argmax(&normed)?;
    Some(ChoicePrediction { pred, pred_norm })
}

/// `log(Σ exp(x))`, stable; `-inf` for an empty slice or all `-inf`.
pub fn logsumexp(xs: &[f64]) -> f64 {
    let m = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY || m.is_nan() {
        return m;
    }
    m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// TruthfulQA MC2 for one document: the normalised probability mass on the true options.
///
/// Computed as `exp(logsumexp(ll[true]) − logsumexp(ll[all]))`, which equals lm-eval's
/// `Σ p[true] / Σ p` but does not underflow to 0/0 for very negative log-likelihoods.
pub fn mc2(lls: &[f64], labels: &[bool], version: Mc2Version) -> f64 {
    let truth: Vec<bool> = match version {
        Mc2Version::V3LabelMask => labels.to_vec(),
        Mc2Version::V2SplitAtFirstFalse => {
            let split = labels.iter().position(|&l| !l).unwrap_or(labels.len());
            (0..labels.len()).map(|i| i < split).collect()
        }
    };
    let t: Vec<f64> = lls.iter().zip(&truth).filter(|(_, t)| **t).map(|(l, _)| *l).collect();
    if t.is_empty() {
        return 0.0;
    }
    (logsumexp(&t) - logsumexp(lls)).exp()
}

/// lm-eval's `regex` filter followed by `take_first`.
#[derive(Clone, Debug)]
pub struct RegexFilter {
    regex: PyRegex,
    group_select: isize,
    fallback: String,
}

impl RegexFilter {
    /// `regex_pattern`, `group_select` (negative counts from the end) and the `[invalid]`
    /// fallback.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) when the pattern does not compile.
    pub fn new(pattern: &str, group_select: isize) -> Result<Self> {
        Ok(Self { regex: PyRegex::new(pattern)?, group_select, fallback: "[invalid]".into() })
    }

    /// The pattern (Python syntax).
    pub fn pattern(&self) -> &str {
        self.regex.as_str()
    }

    /// The selected match index.
    pub fn group_select(&self) -> isize {
        self.group_select
    }

    /// Python's `re.findall` then selection: with no capture group each match is the whole
    /// match; with one, its group 1; with several, the first non-empty group of the tuple
    /// (the fallback if all are empty). The result is stripped.
    pub fn apply(&self, text: &str) -> String {
        let re = self.regex.regex();
        let groups = re.captures_len() - 1;
        let matches: Vec<String> = re
            .captures_iter(text)
            .map(|c| match groups {
                0 => c.get(0).map_or("", |m| m.as_str()).to_owned(),
                1 => c.get(1).map_or("", |m| m.as_str()).to_owned(),
                _ => (1..=groups)
                    .filter_map(|g| c.get(g).map(|m| m.as_str()))
                    .find(|s| !s.is_empty())
                    .unwrap_or(self.fallback.as_str())
                    .to_owned(),
            })
            .collect();
        if matches.is_empty() {
            return self.fallback.clone();
        }
        let n = matches.len() as isize;
        let i = if self.group_select < 0 { n + self.group_select } else { self.group_select };
        match usize::try_from(i).ok().and_then(|i| matches.get(i)) {
            Some(m) => py_strip(m).to_owned(),
            // Python would raise IndexError; the fallback keeps a run going and scores 0.
            None => self.fallback.clone(),
        }
    }
}

/// lm-eval's `exact_match` (the HF `evaluate` definition) settings.
#[derive(Clone, Debug)]
pub struct ExactMatch {
    /// Deleted from prediction and reference, in order (`re.sub(p, "", s)`).
    pub regexes_to_ignore: Vec<PyRegex>,
    /// Lower-case both.
    pub ignore_case: bool,
    /// Delete ASCII punctuation (Python's `string.punctuation`).
    pub ignore_punctuation: bool,
    /// Delete ASCII digits.
    pub ignore_numbers: bool,
}

impl ExactMatch {
    /// GSM8K's settings: ignore case, and delete `,`, `\$`, `(?s).*#### ` and `\.$`.
    ///
    /// # Errors
    /// Never in practice (the patterns are fixed); typed for uniformity.
    pub fn gsm8k() -> Result<Self> {
        Ok(Self {
            regexes_to_ignore: [",", "\\$", "(?s).*#### ", "\\.$"]
                .iter()
                .map(|p| PyRegex::new(p))
                .collect::<Result<_>>()?,
            ignore_case: true,
            ignore_punctuation: false,
            ignore_numbers: false,
        })
    }

    /// Normalises one string as the metric does.
    pub fn normalize(&self, s: &str) -> String {
        let mut s = s.to_owned();
        for r in &self.regexes_to_ignore {
            s = r.delete_all(&s);
        }
        if self.ignore_case {
            s = s.to_lowercase();
        }
        if self.ignore_punctuation {
            s.retain(|c| !c.is_ascii_punctuation());
        }
        if self.ignore_numbers {
            s.retain(|c| !c.is_ascii_digit());
        }
        s
    }

    /// 1.0 if prediction and reference are equal after normalisation, else 0.0.
    pub fn score(&self, prediction: &str, reference: &str) -> f64 {
        if self.normalize(prediction) == self.normalize(reference) { 1.0 } else { 0.0 }
    }
}

/// Cuts generated text at the earliest occurrence of any non-empty stop string (lm-eval's
/// post-processing; a no-op on text an engine already cut).
pub fn cut_at_stop(text: &str, until: &[String]) -> String {
    let mut end = text.len();
    for u in until.iter().filter(|u| !u.is_empty()) {
        if let Some(i) = text[..end].find(u.as_str()) {
            end = i;
        }
    }
    text[..end].to_owned()
}

/// Python's built-in `sum` over floats as CPython up to 3.11 computes it: a plain
/// left-to-right fold. (CPython 3.12 switched to compensated summation; the two differ only in
/// the last bits.)
pub fn py_sum(xs: impl IntoIterator<Item = f64>) -> f64 {
    xs.into_iter().fold(0.0, |a, x| a + x)
}

/// lm-eval's `mean`.
pub fn mean(xs: &[f64]) -> f64 {
    py_sum(xs.iter().copied()) / xs.len() as f64
}

/// lm-eval's `mean_stderr`: `sqrt(Σ(x − x̄)² / (n − 1)) / sqrt(n)`; `None` ("N/A") for `n ≤ 1`.
pub fn mean_stderr(xs: &[f64]) -> Option<f64> {
    let n = xs.len();
    if n <= 1 {
        return None;
    }
    let mu = mean(xs);
    let var = py_sum(xs.iter().map(|x| (x - mu) * (x - mu))) / (n - 1) as f64;
    Some(var.sqrt() / (n as f64).sqrt())
}

/// lm-eval's `aggregate_subtask_metrics`: `Σ w·m / Σ w` with `w = n` (size-weighted) or 1.
pub fn aggregate_subtasks(values: &[f64], sizes: &[usize], weight_by_size: bool) -> f64 {
    let w: Vec<f64> = sizes.iter().map(|&n| if weight_by_size { n as f64 } else { 1.0 }).collect();
    py_sum(values.iter().zip(&w).map(|(m, w)| m * w)) / py_sum(w.iter().copied())
}

/// lm-eval's `pooled_sample_stderr`:
/// `sqrt( Σ (nᵢ−1)·nᵢ·seᵢ² / (Σnᵢ − k) / Σnᵢ )`. `None` when it is undefined.
pub fn pooled_stderr(stderrs: &[f64], sizes: &[usize]) -> Option<f64> {
    let total: usize = sizes.iter().sum();
    if stderrs.len() != sizes.len() || total <= sizes.len() {
        return None;
    }
    let num =
        py_sum(stderrs.iter().zip(sizes).map(|(se, &n)| (n as f64 - 1.0) * (se * se) * n as f64));
    let var = num / (total - sizes.len()) as f64;
    Some((var / total as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_first_max_and_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), Some(1));
        assert_eq!(argmax(&[1.0, f64::NAN, 5.0, f64::NAN]), Some(1));
        assert_eq!(argmax(&[f64::NEG_INFINITY, f64::NEG_INFINITY]), Some(0));
        assert_eq!(argmax(&[]), None);
    }

    #[test]
    fn stderr_binary_closed_form() {
        let xs = [1.0, 0.0, 1.0, 1.0];
        let p: f64 = 0.75;
        let want = (p * (1.0 - p) / 3.0).sqrt();
        assert!((mean_stderr(&xs).unwrap() - want).abs() < 1e-15);
        assert_eq!(mean_stderr(&[1.0]), None);
    }

    #[test]
    fn stop_strings_cut_earliest() {
        let u = vec!["Question:".to_string(), "</s>".to_string(), String::new()];
        assert_eq!(cut_at_stop("a </s> b Question: c", &u), "a ");
        assert_eq!(cut_at_stop("abc", &u), "abc");
    }
}
