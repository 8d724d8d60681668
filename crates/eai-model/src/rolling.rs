//! Rolling log-likelihoods (lm-eval's `loglikelihood_rolling`): a whole text scored in windows
//! of at most `max_length` tokens, every token predicted exactly once.

use eai_core::{RollingLoglikelihood, RollingRequest};

use crate::engine::TokenPair;
use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

/// lm-eval's `get_rolling_token_windows(tokens, prefix, max_len, context_len=1)` followed by
/// `make_disjoint_window`, as `(context, continuation)` token pairs ready for log-likelihood
/// scoring.
///
/// The first window predicts the first `min(max_len, n)` tokens from the prefix token alone;
/// each later window predicts the next at most `max_len` tokens, its context being the tokens
/// just before them, so that context plus continuation is `max_len + 1` tokens (the scored
/// input is the last `max_len + 1` tokens minus the last, as for any log-likelihood request).
/// The continuations partition `tokens`; no windows for an empty list.
///
/// ```
/// use eai_model::rolling_windows;
/// // max_length 2: the prefix token predicts the first two tokens; then each window's input is
/// // the two tokens before the last one it predicts.
/// let w = rolling_windows(&[10, 11, 12, 13, 14], 1, 2);
/// assert_eq!(w, vec![
///     (vec![1], vec![10, 11]),
///     (vec![11], vec![12, 13]),
///     (vec![12, 13], vec![14]),
/// ]);
/// assert!(rolling_windows(&[], 1, 2).is_empty());
/// ```
pub fn rolling_windows(tokens: &[u32], prefix: u32, max_len: usize) -> Vec<TokenPair> {
    let max_len = max_len.max(1);
    let n = tokens.len();
    if n == 0 {
        return Vec::new();
    }
    let first = max_len.min(n);
    let mut out = vec![(vec![prefix], tokens[..first].to_vec())];
    let mut predicted = first;
    while predicted < n {
        let len = (n - predicted).min(max_len);
        let end = predicted + len;
        // Window input tokens[end - max_len - 1 .. end - 1]; made disjoint, its context is the
        // part before the predicted tokens.
        let ctx_start = end - max_len - 1;
        out.push((tokens[ctx_start..end - len].to_vec(), tokens[end - len..end].to_vec()));
        predicted = end;
    }
    out
}

/// Rolling requests in token space: every window of every text, and which windows belong to
/// which text. Any engine with a token-pair scorer serves rolling requests with it:
/// [`RollingPlan::new`], score [`RollingPlan::pairs`], then [`RollingPlan::finish`].
#[derive(Clone, Debug)]
pub(crate) struct RollingPlan {
    pairs: Vec<TokenPair>,
    /// Per text: first window, window count, token count.
    spans: Vec<(usize, usize, usize)>,
}

impl RollingPlan {
    /// Encodes each text as the engine encodes every request (lm-eval's `tok_encode`: BOS per
    /// the tokenizer's policy) and cuts it into [`rolling_windows`] conditioned on lm-eval's
    /// `prefix_token_id` (BOS, else the first EOS).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the tokenizer has neither BOS nor EOS; tokenizer errors.
    pub(crate) fn new(
        tokenizer: &Tokenizer,
        max_len: usize,
        reqs: &[RollingRequest],
    ) -> Result<Self> {
        let prefix =
            tokenizer.bos_id().or_else(|| tokenizer.eos_ids().first().copied()).ok_or_else(
                || Error::invalid("rolling log-likelihood needs a prefix token: no BOS and no EOS"),
            )?;
        let mut pairs = Vec::new();
        let mut spans = Vec::with_capacity(reqs.len());
        for r in reqs {
            let ids = tokenizer.encode(&r.text)?;
            let w = rolling_windows(&ids, prefix, max_len);
            spans.push((pairs.len(), w.len(), ids.len()));
            pairs.extend(w);
        }
        Ok(Self { pairs, spans })
    }

    /// The windows to score, as `(context, continuation)` token pairs.
    pub(crate) fn pairs(&self) -> &[TokenPair] {
        &self.pairs
    }

    /// Each text's summed log-probability from the windows' scores (in [`RollingPlan::pairs`]
    /// order); a text with no tokens scores 0 over 0 windows, as in lm-eval.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when there is not one score per window.
    pub(crate) fn finish(&self, scores: &[(f64, bool)]) -> Result<Vec<RollingLoglikelihood>> {
        if scores.len() != self.pairs.len() {
            return Err(Error::invalid(format!(
                "{} scores for {} rolling windows",
                scores.len(),
                self.pairs.len()
            )));
        }
        Ok(self
            .spans
            .iter()
            .map(|&(start, windows, tokens)| {
                let lp = scores[start..start + windows].iter().map(|s| s.0).sum();
                RollingLoglikelihood::new(lp).counts(tokens as u32, windows as u32)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A direct transcription of lm-eval's two functions (list slicing semantics), for
    /// comparison with [`rolling_windows`] on many sizes.
    fn reference(tokens: &[u32], prefix: u32, max_seq_len: usize) -> Vec<TokenPair> {
        let context_len = 1usize;
        let mut out = Vec::new();
        if tokens.is_empty() {
            return out;
        }
        let pred_len = max_seq_len - context_len + 1;
        let mut predicted = 0;
        let first_seq_len = max_seq_len.min(tokens.len());
        let mut a = vec![prefix];
        a.extend_from_slice(&tokens[..first_seq_len - 1]);
        out.push((a, tokens[..first_seq_len].to_vec()));
        predicted += first_seq_len;
        while predicted < tokens.len() {
            let window_pred_len = (tokens.len() - predicted).min(pred_len);
            let window_end = predicted + window_pred_len;
            out.push((
                tokens[window_end - max_seq_len - 1..window_end - 1].to_vec(),
                tokens[window_end - window_pred_len..window_end].to_vec(),
            ));
            predicted += window_pred_len;
        }
        // make_disjoint_window: a[: len(a) - (len(b) - 1)]
        out.into_iter().map(|(a, b)| (a[..a.len() - (b.len() - 1)].to_vec(), b)).collect()
    }

    #[test]
    fn windows_match_lm_eval() {
        for n in 0..40u32 {
            let tokens: Vec<u32> = (100..100 + n).collect();
            for max_len in 1..12 {
                let got = rolling_windows(&tokens, 7, max_len);
                assert_eq!(got, reference(&tokens, 7, max_len), "n={n} max_len={max_len}");
                let flat: Vec<u32> = got.iter().flat_map(|(_, c)| c.clone()).collect();
                assert_eq!(flat, tokens, "continuations partition the tokens");
                for (ctx, cont) in &got {
                    assert!(!ctx.is_empty() && cont.len() <= max_len);
                    assert!(ctx.len() + cont.len() <= max_len + 1);
                }
            }
        }
    }
}
