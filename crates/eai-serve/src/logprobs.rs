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
        Ok(Self { token_logprobs, top_max, text_offset })
    }

    /// `(Σ token_logprobs[ctxlen..len-1], is_greedy)`: the continuation's score when the prompt
    /// had `prompt_len` tokens of which the first `ctxlen` are context. The entries after the
    /// prompt (the generated token) are ignored.
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
        for i in ctxlen..prompt_len {
            let lp = self.token_logprobs[i].ok_or_else(|| ServeError::NoPromptLogprobs {
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

    /// The number of prompt tokens lying wholly before character `boundary` of the echoed text,
    /// given that the prompt is the first `prompt_len` entries: the context length when the
    /// server tokenized the text itself.
    ///
    /// # Errors
    /// [`ServeError::BadResponse`] when `text_offset` is missing or shorter than the prompt.
    pub fn ctxlen_from_offsets(
        &self,
        boundary: usize,
        prompt_len: usize,
        url: &str,
    ) -> Result<usize> {
        if self.text_offset.len() < prompt_len {
            return Err(ServeError::BadResponse {
                url: url.to_string(),
                field: "logprobs.text_offset".into(),
                reason: format!(
                    "{} offsets for {prompt_len} prompt tokens (the server-tokenizer mode needs \
                     them)",
                    self.text_offset.len()
                ),
            });
        }
        // Token i spans [offset[i], offset[i+1]); it is context if it ends at or before the
        // boundary. A token straddling the boundary belongs to the continuation.
        let mut n = 0;
        for i in 0..prompt_len {
            let end = self.text_offset.get(i + 1).copied().unwrap_or(usize::MAX);
            if end <= boundary { n = i + 1 } else { break }
        }
        Ok(n)
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
    fn offsets_split() {
        let t = TokenLogprobs::from_choice(&choice(), "u", "m").unwrap();
        assert_eq!(t.ctxlen_from_offsets(2, 4, "u").unwrap(), 2);
        let mut t2 = t.clone();
        t2.text_offset = vec![0, 3, 5, 8, 9];
        // boundary inside token 1 (3..5): it straddles, so only token 0 is context.
        assert_eq!(t2.ctxlen_from_offsets(4, 4, "u").unwrap(), 1);
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
