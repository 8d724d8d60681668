//! Reading the legacy-completions `logprobs` object, as lm-eval's `local-completions` does.
//!
//! With `echo: true`, `logprobs: 1` and `max_tokens: 1`, a server returns one entry per prompt
//! token followed by one for the generated token: `tokens`, `token_logprobs` (the first is
//! `null`: nothing predicts the first token), `top_logprobs` (a map from token text to
//! log-probability holding the top `logprobs` tokens, vLLM adds the actual token) and
//! `text_offset` (character offset of each token in the echoed text). The score of a
//! continuation is `Σ token_logprobs[ctxlen:-1]` (the last entry is the generated token, not
//! part of the prompt), and it is greedy when every one of those tokens has the highest
//! log-probability in its `top_logprobs`.

use serde_json::Value;

use crate::error::{Result, ServeError};

/// The per-token arrays of one choice.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenLogprobs {
    /// Log-probability of each token; `None` where the server gives `null` (the first).
    pub token_logprobs: Vec<Option<f64>>,
    /// Highest log-probability among the returned alternatives at each position, when given.
    pub top_max: Vec<Option<f64>>,
    /// Character offset of each token in the echoed text, when given.
    pub text_offset: Vec<usize>,
    /// Each token's text, when given.
    pub tokens: Vec<String>,
}

impl TokenLogprobs {
    /// Reads `choice.logprobs`. `url`/`model` only label errors.
    ///
    /// # Errors
    /// [`ServeError::NoPromptLogprobs`] when the object or `token_logprobs` is missing or
    /// empty; [`ServeError::BadResponse`] for wrong types.
    pub fn from_choice(choice: &Value, url: &str, model: &str) -> Result<Self> {
        let bad = |field: &str, reason: &str| ServeError::BadResponse {
            url: url.to_string(),
            field: field.to_string(),
            reason: reason.to_string(),
        };
        let none = |detail: &str| ServeError::NoPromptLogprobs {
            url: url.to_string(),
            model: model.to_string(),
            detail: detail.to_string(),
        };
        let lp = match choice.get("logprobs") {
            None | Some(Value::Null) => return Err(none("`choices[].logprobs` is absent")),
            Some(v) => v,
        };
        let tl = match lp.get("token_logprobs") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            _ => return Err(none("`logprobs.token_logprobs` is absent or empty")),
        };
        let mut token_logprobs = Vec::with_capacity(tl.len());
        for (i, v) in tl.iter().enumerate() {
            token_logprobs.push(match v {
                Value::Null => None,
                Value::Number(n) => Some(n.as_f64().ok_or_else(|| {
                    bad(&format!("logprobs.token_logprobs[{i}]"), "not a finite number")
                })?),
                _ => return Err(bad(&format!("logprobs.token_logprobs[{i}]"), "not a number")),
            });
        }
        let mut top_max = Vec::new();
        if let Some(Value::Array(tops)) = lp.get("top_logprobs") {
            for (i, t) in tops.iter().enumerate() {
                top_max.push(match t {
                    Value::Null => None,
                    Value::Object(m) => {
                        let mut best: Option<f64> = None;
                        for (k, v) in m {
                            let x = v.as_f64().ok_or_else(|| {
                                bad(&format!("logprobs.top_logprobs[{i}][{k:?}]"), "not a number")
                            })?;
                            best = Some(best.map_or(x, |b: f64| b.max(x)));
                        }
                        best
                    }
                    _ => {
                        return Err(bad(
                            &format!("logprobs.top_logprobs[{i}]"),
                            "not an object or null",
                        ));
                    }
                });
            }
        }
        let mut text_offset = Vec::new();
        if let Some(Value::Array(offs)) = lp.get("text_offset") {
            for (i, o) in offs.iter().enumerate() {
                text_offset.push(o.as_u64().ok_or_else(|| {
                    bad(&format!("logprobs.text_offset[{i}]"), "not a non-negative integer")
                })? as usize);
            }
        }
        let tokens = match lp.get("tokens") {
            Some(Value::Array(a)) => {
                a.iter().map(|t| t.as_str().unwrap_or_default().to_string()).collect()
            }
            _ => Vec::new(),
        };
        Ok(Self { token_logprobs, top_max, text_offset, tokens })
    }

    /// `(Σ token_logprobs[ctxlen..prompt_len], is_greedy, tokens)`: the continuation's score
    /// when the entries `0..prompt_len` are the prompt and the first `ctxlen` are context. The
    /// entries after the prompt (the generated token) are ignored: lm-eval's `[ctxlen:-1]`.
    ///
    /// # Errors
    /// [`ServeError::NoPromptLogprobs`] when fewer than `prompt_len` entries came back (the
    /// server did not echo the prompt) or a continuation entry is `null`;
    /// [`ServeError::BadResponse`] when `ctxlen` is 0 or not below `prompt_len`.
    pub fn score(
        &self,
        ctxlen: usize,
        prompt_len: usize,
        url: &str,
        model: &str,
    ) -> Result<(f64, bool, u32)> {
        if ctxlen == 0 || ctxlen >= prompt_len {
            return Err(ServeError::BadResponse {
                url: url.to_string(),
                field: "logprobs".into(),
                reason: format!("context of {ctxlen} tokens in a prompt of {prompt_len}"),
            });
        }
        if self.token_logprobs.len() < prompt_len {
            return Err(ServeError::NoPromptLogprobs {
                url: url.to_string(),
                model: model.to_string(),
                detail: format!(
                    "{} log-probabilities for a prompt of {prompt_len} tokens (was the prompt \
                     echoed?)",
                    self.token_logprobs.len()
                ),
            });
        }
        let mut sum = 0.0;
        let mut greedy = true;
        for (i, lp) in self.token_logprobs.iter().enumerate().take(prompt_len).skip(ctxlen) {
            let lp = lp.ok_or_else(|| ServeError::NoPromptLogprobs {
                url: url.to_string(),
                model: model.to_string(),
                detail: format!("token_logprobs[{i}] is null inside the continuation"),
            })?;
            sum += lp;
            // lm-eval: greedy unless the token's log-probability differs from the best one.
            if let Some(Some(best)) = self.top_max.get(i)
                && lp < *best
            {
                greedy = false;
            }
        }
        Ok((sum, greedy, (prompt_len - ctxlen) as u32))
    }

    /// How many of the first `prompt_entries` entries, counted from the last, spell the final
    /// `suffix_chars` characters of the prompt: the continuation's token count when the server
    /// tokenized the text. Token lengths come from `text_offset` differences (else from
    /// `tokens`); a token straddling the boundary counts as continuation. Working from the
    /// end makes it independent of where a server starts its offsets and of a leading BOS
    /// that a server hides (llama-cpp-python lists the prompt from the token after BOS).
    ///
    /// # Errors
    /// [`ServeError::BadResponse`] when neither `tokens` nor `text_offset` covers the prompt,
    /// or the prompt entries are fewer characters than the suffix.
    pub fn suffix_tokens(
        &self,
        suffix_chars: usize,
        prompt_entries: usize,
        url: &str,
    ) -> Result<usize> {
        // A token's length: the next offset minus its own (llama-cpp-python decodes prefixes,
        // which survives characters split across tokens), else its text's length (vLLM's
        // offsets are those lengths summed anyway).
        let mut lens = Vec::with_capacity(prompt_entries);
        for i in 0..prompt_entries {
            let len = match (self.text_offset.get(i), self.text_offset.get(i + 1)) {
                (Some(&a), Some(&b)) if b >= a => b - a,
                _ => match self.tokens.get(i) {
                    Some(t) => t.chars().count(),
                    None => {
                        return Err(ServeError::BadResponse {
                            url: url.to_string(),
                            field: "logprobs.tokens".into(),
                            reason: format!(
                                "{} tokens and {} offsets for {prompt_entries} prompt entries (the \
                                 server-tokenizer mode needs the echoed tokens)",
                                self.tokens.len(),
                                self.text_offset.len()
                            ),
                        });
                    }
                },
            };
            lens.push(len);
        }
        let mut covered = 0usize;
        for (k, len) in lens.iter().rev().enumerate() {
            covered += len;
            if covered >= suffix_chars {
                return Ok(k + 1);
            }
        }
        Err(ServeError::BadResponse {
            url: url.to_string(),
            field: "logprobs.tokens".into(),
            reason: format!(
                "the echoed prompt tokens spell {covered} characters, fewer than the \
                 continuation's {suffix_chars}"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn choice() -> Value {
        json!({"index": 0, "text": "x", "logprobs": {
            "tokens": ["A", "B", "C", "D", "E"],
            "token_logprobs": [null, -1.0, -0.5, -0.25, -3.0],
            "top_logprobs": [null, {"B": -1.0}, {"Z": -0.1, "C": -0.5}, {"D": -0.25}, {"Q": -0.1}],
            "text_offset": [0, 1, 2, 3, 4]
        }})
    }

    #[test]
    fn sums_ctxlen_to_minus_one() {
        let t = TokenLogprobs::from_choice(&choice(), "u", "m").unwrap();
        // Prompt = 4 tokens (A B C D), E generated. Context = A B.
        let (s, g, n) = t.score(2, 4, "u", "m").unwrap();
        assert_eq!((s, g, n), (-0.75, false, 2));
        let (s, g, _) = t.score(3, 4, "u", "m").unwrap();
        assert_eq!((s, g), (-0.25, true));
        assert!(t.score(0, 4, "u", "m").is_err());
        assert!(t.score(4, 4, "u", "m").is_err());
        assert!(matches!(t.score(2, 9, "u", "m"), Err(ServeError::NoPromptLogprobs { .. })));
    }

    #[test]
    fn suffix_split() {
        let t = TokenLogprobs::from_choice(&choice(), "u", "m").unwrap();
        // Prompt = A B C D (one char each): the last two characters are two tokens.
        assert_eq!(t.suffix_tokens(2, 4, "u").unwrap(), 2);
        assert!(t.suffix_tokens(5, 4, "u").is_err());
        let mut t2 = t.clone();
        t2.tokens = vec!["The".into(), " cap".into(), "ital".into(), " B".into(), ".".into()];
        t2.text_offset.clear();
        // " B" is 2 chars: one token. "ital B" straddles " cap|ital": 3 chars reach into "ital".
        assert_eq!(t2.suffix_tokens(2, 4, "u").unwrap(), 1);
        assert_eq!(t2.suffix_tokens(3, 4, "u").unwrap(), 2);
        // Offsets take precedence over token strings (a character split over two tokens).
        t2.tokens = vec!["a".into(), "".into(), "".into(), "é".into(), "!".into()];
        t2.text_offset = vec![0, 1, 1, 1, 2];
        assert_eq!(t2.suffix_tokens(1, 4, "u").unwrap(), 1);
        t2.text_offset.clear();
        t2.tokens = vec!["x".into(), "y".into(), "zz".into(), "w".into()];
        assert_eq!(t2.suffix_tokens(3, 4, "u").unwrap(), 2);
        t2.tokens.truncate(2);
        assert!(t2.suffix_tokens(3, 4, "u").is_err());
    }

    #[test]
    fn missing_logprobs_is_typed() {
        let c = json!({"index": 0, "text": "x", "logprobs": null});
        assert!(matches!(
            TokenLogprobs::from_choice(&c, "u", "m"),
            Err(ServeError::NoPromptLogprobs { .. })
        ));
    }
}
