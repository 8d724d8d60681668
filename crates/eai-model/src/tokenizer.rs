//! Tokenizers: from `tokenizer.json`, or rebuilt from GGUF metadata.

use std::path::Path;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeBuilder, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::tokenizer::normalizer::SplitDelimiterBehavior;
use tokenizers::{
    AddedToken, DecoderWrapper, ModelWrapper, PostProcessorWrapper, PreTokenizerWrapper,
};

use crate::error::{Error, Result};
use crate::gguf::GgufFile;

const GPT2_REGEX: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Whether to put the beginning-of-sequence token in front of encoded text.
///
/// lm-eval changed its default in v0.4.9.2 (before: never; since: the tokenizer's own default);
/// the choice moves scores by points on Llama-family models, so record it with every result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BosPolicy {
    /// What the tokenizer does by default (`tokenizer.json`'s post-processor, or GGUF's
    /// `tokenizer.ggml.add_bos_token`); like lm-eval ≥ 0.4.9.2, text that already starts with the BOS
    /// string gets no second one.
    #[default]
    TokenizerDefault,
    /// Always prepend BOS (lm-eval `add_bos_token=True`).
    Always,
    /// Never prepend BOS (lm-eval 0.4.0–0.4.9.1 default).
    Never,
}

/// How text that spells a special token (`<|im_start|>`, `</s>`) is encoded when it appears
/// inside a request.
///
/// The default is what lm-eval's Hugging Face backend does: `tokenizer.encode` with the
/// tokenizer's default `split_special_tokens=False`, so the text becomes the special token's id
/// (llama.cpp's `special=true`). [`SpecialTokens::AsText`] encodes it as ordinary text, like
/// HF's `split_special_tokens=True` and llama.cpp's `special=false`: a document that quotes a
/// chat template is then scored as the characters it contains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SpecialTokens {
    /// Special-token text becomes the special token (lm-eval's HF backend; the default).
    #[default]
    Parse,
    /// Special-token text is split like any other text.
    AsText,
}

/// A tokenizer plus the BOS/EOS facts the engine needs.
#[derive(Clone, Debug)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    policy: BosPolicy,
    special: SpecialTokens,
    bos: Option<(u32, String)>,
    eos_ids: Vec<u32>,
    default_adds_bos: bool,
    /// A fingerprint of everything that decides ids (see [`Tokenizer::cache_key`]).
    identity: u64,
}

impl Tokenizer {
    /// Loads `tokenizer.json`. `bos_id`/`eos_ids` come from the model config (used when the
    /// tokenizer itself does not name them).
    ///
    /// # Errors
    /// [`Error::Tokenizer`] when the file cannot be parsed.
    pub fn from_file(path: impl AsRef<Path>, bos_id: Option<u32>, eos_ids: &[u32]) -> Result<Self> {
        let path = path.as_ref();
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| Error::tokenizer(format!("{}: {e}", path.display())))?;
        Ok(Self::wrap(inner, bos_id, eos_ids))
    }

    fn wrap(inner: tokenizers::Tokenizer, bos_id: Option<u32>, eos_ids: &[u32]) -> Self {
        let bos = bos_id.and_then(|id| inner.id_to_token(id).map(|t| (id, t)));
        // Does the post-processor add BOS? Ask it with an empty-ish input.
        let default_adds_bos = match (&bos, inner.encode("a", true)) {
            (Some((id, _)), Ok(enc)) => enc.get_ids().first() == Some(id),
            _ => false,
        };
        let identity = fingerprint(&inner, bos.as_ref().map(|b| b.0), eos_ids, default_adds_bos);
        Tokenizer {
            inner,
            policy: BosPolicy::TokenizerDefault,
            special: SpecialTokens::Parse,
            bos,
            eos_ids: eos_ids.to_vec(),
            default_adds_bos,
            identity,
        }
    }

    /// Builds the tokenizer a GGUF file describes (`tokenizer.ggml.model = "gpt2"`, i.e. byte-level
    /// BPE, with pre-tokenizers `smollm`/`starcoder`/`refact`, `gpt-2`, `llama-bpe`, `qwen2`,
    /// `deepseek-r1-qwen`). Control and user-defined tokens become special tokens; BOS follows
    /// `tokenizer.ggml.add_bos_token`.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] for SentencePiece (`llama`) vocabularies and unknown pre-tokenizers
    /// (refusing to guess a regex), [`Error::Config`] for missing or ill-typed keys.
    pub fn from_gguf(f: &GgufFile) -> Result<Self> {
        let src = f.path().display().to_string();
        let model = f.get_str("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(Error::tokenizer(format!(
                "{src}: tokenizer.ggml.model = `{model}` is not supported (only byte-level BPE `gpt2`); \
                 load such models from a Hugging Face folder with tokenizer.json"
            )));
        }
        let pre = f.get("tokenizer.ggml.pre").and_then(|v| v.as_str()).unwrap_or("default");
        let (regexes, ignore_merges): (Vec<&str>, bool) = match pre {
            "smollm" | "starcoder" | "refact" | "codeshell" => (vec![r"\p{N}", GPT2_REGEX], false),
            "gpt-2" | "default" => (vec![GPT2_REGEX], false),
            "llama-bpe" | "llama3" => (vec![LLAMA3_REGEX], true),
            "qwen2" | "deepseek-r1-qwen" => (vec![QWEN2_REGEX], false),
            // BLOOM's split (llama.cpp's `bloom` / `poro-chat` / `gpt3-finnish`).
            "bloom" | "poro-chat" | "gpt3-finnish" => (vec![r" ?[^(\s|.,!?…。，、।۔،)]+"], false),
            other => {
                return Err(Error::tokenizer(format!(
                    "{src}: pre-tokenizer `{other}` is not supported; refusing to guess its regex"
                )));
            }
        };
        let strings = |key: &str| -> Result<Vec<String>> {
            let arr = f
                .get(key)
                .and_then(|v| v.as_array())
                .ok_or_else(|| Error::config(&src, key, "missing or not an array"))?;
            arr.iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| Error::config(&src, key, "non-string element"))
                })
                .collect()
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges_raw = strings("tokenizer.ggml.merges")?;
        let types: Vec<u64> = match f.get("tokenizer.ggml.token_type").and_then(|v| v.as_array()) {
            Some(a) => a.iter().map(|v| v.as_u64().unwrap_or(1)).collect(),
            None => vec![1; tokens.len()],
        };
        let vocab: Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let mut merges = Vec::with_capacity(merges_raw.len());
        for m in &merges_raw {
            let (a, b) = m.split_once(' ').ok_or_else(|| {
                Error::config(&src, "tokenizer.ggml.merges", format!("merge `{m}` has no space"))
            })?;
            merges.push((a.to_string(), b.to_string()));
        }
        let bpe = BpeBuilder::new()
            .vocab_and_merges(vocab, merges)
            .ignore_merges(ignore_merges)
            .build()
            .map_err(|e| Error::tokenizer(format!("{src}: building BPE: {e}")))?;
        let mut inner = tokenizers::Tokenizer::new(ModelWrapper::BPE(bpe));
        let mut pres = Vec::new();
        for r in regexes {
            let split = Split::new(
                SplitPattern::Regex(r.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| Error::tokenizer(format!("regex {r}: {e}")))?;
            pres.push(PreTokenizerWrapper::Split(split));
        }
        pres.push(PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, false)));
        inner.with_pre_tokenizer(Some(Sequence::new(pres)));
        inner.with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevelDecoder::new(
            false, false, false,
        ))));
        let specials: Vec<AddedToken> = types
            .iter()
            .zip(&tokens)
            .filter(|(t, _)| **t == 3 || **t == 4)
            .map(|(_, s)| AddedToken::from(s.clone(), true))
            .collect();
        inner.add_special_tokens(&specials);
        let id = |k: &str| f.get(k).and_then(|v| v.as_u64()).map(|x| x as u32);
        let bos_id = id("tokenizer.ggml.bos_token_id");
        let add_bos =
            f.get("tokenizer.ggml.add_bos_token").and_then(|v| v.as_bool()).unwrap_or(false);
        if let (true, Some(b)) = (add_bos, bos_id) {
            let text = tokens.get(b as usize).ok_or_else(|| {
                Error::config(&src, "tokenizer.ggml.bos_token_id", "out of vocabulary")
            })?;
            let tp = TemplateProcessing::builder()
                .try_single(format!("{text} $A"))
                .and_then(|b| b.try_pair(format!("{text} $A $B:1")))
                .map_err(|e| Error::tokenizer(e.to_string()))?
                .special_tokens(vec![(text.clone(), b)])
                .build()
                .map_err(|e| Error::tokenizer(e.to_string()))?;
            inner.with_post_processor(Some(PostProcessorWrapper::Template(tp)));
        }
        let eos: Vec<u32> = id("tokenizer.ggml.eos_token_id").into_iter().collect();
        Ok(Self::wrap(inner, bos_id, &eos))
    }

    /// A key under which encodings by this tokenizer may be cached: equal for tokenizers that
    /// encode every text to the same ids (same serialized vocabulary, merges, normalizer,
    /// pre-tokenizer, special tokens, BOS/EOS ids and BOS policy), different otherwise up to
    /// 64-bit hash collisions.
    pub fn cache_key(&self) -> u64 {
        let policy = match self.policy {
            BosPolicy::TokenizerDefault => 1u64,
            BosPolicy::Always => 2,
            BosPolicy::Never => 3,
        };
        let special = match self.special {
            SpecialTokens::Parse => 0u64,
            SpecialTokens::AsText => 0xD6E8_FEB8_6659_FD93,
        };
        self.identity ^ policy.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ special
    }

    /// Sets how special-token text inside requests is encoded (see [`SpecialTokens`]).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("eai-tok-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("tokenizer.json");
    /// # std::fs::write(&path, r#"{"version":"1.0","truncation":null,"padding":null,
    /// #   "added_tokens":[{"id":3,"content":"<s>","single_word":false,"lstrip":false,
    /// #   "rstrip":false,"normalized":false,"special":true}],"normalizer":null,
    /// #   "pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
    /// #   "model":{"type":"WordLevel","vocab":{"?":0,"a":1,"b":2,"<s>":3},"unk_token":"?"}}"#)?;
    /// use eai_model::{SpecialTokens, Tokenizer};
    /// let mut tok = Tokenizer::from_file(&path, None, &[])?;
    /// assert_eq!(tok.encode("a <s> b")?, [1, 3, 2]);
    /// tok.set_special_tokens(SpecialTokens::AsText);
    /// assert_eq!(tok.encode("a <s> b")?, [1, 0, 0, 0, 2]); // "<", "s", ">" as plain text
    /// # Ok(()) }
    /// ```
    pub fn set_special_tokens(&mut self, mode: SpecialTokens) {
        self.special = mode;
        self.inner.set_encode_special_tokens(mode == SpecialTokens::AsText);
    }

    /// How special-token text inside requests is encoded.
    pub fn special_tokens(&self) -> SpecialTokens {
        self.special
    }

    /// Sets the BOS policy.
    pub fn set_bos_policy(&mut self, policy: BosPolicy) {
        self.policy = policy;
    }

    /// The BOS policy.
    pub fn bos_policy(&self) -> BosPolicy {
        self.policy
    }

    /// Whether [`Tokenizer::encode`] of plain text would start with BOS under the current policy.
    pub fn adds_bos(&self) -> bool {
        match self.policy {
            BosPolicy::TokenizerDefault => self.default_adds_bos,
            BosPolicy::Always => self.bos.is_some(),
            BosPolicy::Never => false,
        }
    }

    /// A one-line record of the BOS handling, e.g. `bos=tokenizer-default(no)`.
    pub fn bos_label(&self) -> String {
        let yn = if self.adds_bos() { "yes" } else { "no" };
        match self.policy {
            BosPolicy::TokenizerDefault => format!("bos=tokenizer-default({yn})"),
            BosPolicy::Always => format!("bos=always({yn})"),
            BosPolicy::Never => "bos=never".into(),
        }
    }

    /// The BOS token id, if the model has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos.as_ref().map(|b| b.0)
    }

    /// End-of-sequence token ids.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    /// Encodes text; special-token strings in the text map to their ids (unless
    /// [`SpecialTokens::AsText`] is set); BOS per the policy.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] when the tokenizer fails.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let starts_with_bos = self.bos.as_ref().is_some_and(|(_, t)| text.starts_with(t.as_str()));
        let (special, manual) = match self.policy {
            BosPolicy::TokenizerDefault => (self.default_adds_bos && !starts_with_bos, false),
            BosPolicy::Always => (false, true),
            BosPolicy::Never => (false, false),
        };
        let enc = self.inner.encode_fast(text, special).map_err(Error::tokenizer)?;
        let mut ids = enc.get_ids().to_vec();
        if manual && let Some((b, _)) = &self.bos {
            ids.insert(0, *b);
        }
        Ok(ids)
    }

    /// Encodes without any BOS, whatever the policy.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] when the tokenizer fails.
    pub fn encode_raw(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.inner.encode_fast(text, false).map_err(Error::tokenizer)?.get_ids().to_vec())
    }

    /// lm-eval's `_encode_pair`: trailing whitespace of the context moves to the continuation;
    /// `cont = enc(ctx + cont)[len(enc(ctx)):]`. An empty context becomes the prefix token (BOS,
    /// else EOS). [`TokenCache`](crate::TokenCache) gives the same ids, cached.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when either side ends up empty; tokenizer errors.
    pub fn encode_pair(&self, context: &str, continuation: &str) -> Result<crate::TokenPair> {
        crate::engine::encode_pair(self, context, continuation)
    }

    /// Decodes ids to text, skipping special tokens when asked.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] when the tokenizer fails.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner.decode(ids, skip_special).map_err(Error::tokenizer)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Writes `tokenizer.json`.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] when serialisation or writing fails.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.inner.save(path.as_ref(), false).map_err(Error::tokenizer)
    }
}

/// FNV-1a over the tokenizer's JSON form (deterministic: vocabularies are written in id order)
/// and the BOS/EOS facts kept beside it.
fn fingerprint(
    inner: &tokenizers::Tokenizer,
    bos: Option<u32>,
    eos: &[u32],
    default_adds_bos: bool,
) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    match inner.to_string(false) {
        Ok(json) => eat(json.as_bytes()),
        // Serialization fails only for custom components, which these tokenizers never have;
        // such a tokenizer then shares no cache entries with any other.
        Err(_) => {
            static UNIQUE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            eat(b"unserializable");
            eat(&UNIQUE.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_le_bytes());
        }
    }
    eat(&bos.map_or(u64::MAX, u64::from).to_le_bytes());
    for e in eos {
        eat(&e.to_le_bytes());
    }
    eat(&[u8::from(default_adds_bos)]);
    h
}
