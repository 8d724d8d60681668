//! Tokenization bounded by the model's context: only the tail of a long text that can survive
//! lm-eval's left-truncation is tokenized, so a 1 MB question costs what a context-sized one
//! does.
//!
//! lm-eval keeps the last `max_length + 1` tokens of `context ++ continuation`. Tokens far from
//! where a text is cut are the same whether the whole text or only its tail is tokenized:
//! pre-tokenization (the GPT-2/Llama-3/Qwen2 regexes) splits at whitespace and BPE never
//! merges across its pieces. So the tail is cut just before a whitespace character and must
//! yield [`MARGIN`] tokens more than are kept; the tokens near the cut, the only ones that may
//! differ, are then among those truncation drops.

use crate::error::Result;
use crate::tokenizer::Tokenizer;

/// Tokens beyond the kept ones that the tail must produce (the first pieces after a cut may
/// tokenize differently from the whole text).
const MARGIN: usize = 64;

/// Texts up to this many bytes per kept token are tokenized whole (no token is shorter than
/// one byte, so a shorter text can never need cutting; most tokens are 3–5 bytes).
const BYTES_PER_TOKEN: usize = 8;

/// The tail of `text` to tokenize when only its last `keep` tokens can matter, and whether it
/// was cut. Whole texts come back unchanged; a cut tail starts at a whitespace character and
/// tokenizes to at least `keep + MARGIN` tokens.
///
/// # Errors
/// Tokenizer errors.
pub(crate) fn tail<'a>(tok: &Tokenizer, text: &'a str, keep: usize) -> Result<(&'a str, bool)> {
    let need = keep.saturating_add(MARGIN);
    let mut window = need.saturating_mul(BYTES_PER_TOKEN);
    while window < text.len() {
        let mut cut = text.len() - window;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        // Back to the start of the whitespace run the cut falls in or before, so the first
        // piece of the tail begins as it would in the whole text.
        // A text without whitespace before the cut (one giant "word") is cut where it is: BPE
        // merges are local, and MARGIN tokens absorb the difference at the cut.
        let start = match text[..cut].rfind(char::is_whitespace) {
            Some(ws) => text[..ws].trim_end_matches(char::is_whitespace).len(),
            None => cut,
        };
        if start == 0 {
            return Ok((text, false));
        }
        let t = &text[start..];
        if tok.encode_raw(t)?.len() >= need {
            return Ok((t, true));
        }
        window = window.saturating_mul(2);
    }
    Ok((text, false))
}
