//! Checks on what a model file declares, made before anything is sized from it: the layer
//! count against the tensors present, typed optional metadata, finite weights.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::gguf::GgufFile;

/// `blk.N.` layer indices of the tensors of `f`.
fn block_indices(f: &GgufFile) -> BTreeSet<u64> {
    f.tensors()
        .iter()
        .filter_map(|t| t.name.strip_prefix("blk.")?.split('.').next()?.parse::<u64>().ok())
        .collect()
}

/// The declared layer count `n` (metadata `key`) must match the `blk.N.*` tensors exactly:
/// blocks `0..n` all present and none beyond. Called before anything is allocated per layer,
/// so `block_count = 2^24` fails here and not in a 19.6 GB allocation.
///
/// # Errors
/// [`Error::Config`] naming the key and the first missing block, or the tensors beyond it.
pub(crate) fn check_block_count(f: &GgufFile, key: &str, n: u64) -> Result<()> {
    let present = block_indices(f);
    let source = f.path().display().to_string();
    let extra: Vec<&str> = f
        .tensors()
        .iter()
        .filter(|t| {
            t.name
                .strip_prefix("blk.")
                .and_then(|r| r.split('.').next()?.parse::<u64>().ok())
                .is_some_and(|i| i >= n)
        })
        .map(|t| t.name.as_str())
        .collect();
    if !extra.is_empty() {
        let shown: Vec<&str> = extra.iter().take(4).copied().collect();
        let more =
            if extra.len() > 4 { format!(" and {} more", extra.len() - 4) } else { String::new() };
        return Err(Error::config(
            source,
            key,
            format!(
                "declares {n} layers but the file holds tensors of later layers: {}{more}",
                shown.join(", ")
            ),
        ));
    }
    if let Some(missing) = (0..n).find(|i| !present.contains(i)) {
        return Err(Error::config(
            source,
            key,
            format!(
                "declares {n} layers but the file holds no tensor of layer {missing} \
                 (no `blk.{missing}.*`; {} layers present)",
                present.len()
            ),
        ));
    }
    Ok(())
}

/// An optional numeric metadata value: `default` when absent, an error when present with a
/// non-numeric type (a string-typed `rope.freq_base` must not silently become the default).
///
/// # Errors
/// [`Error::Config`] naming the key and the type found.
pub(crate) fn optional_f64(f: &GgufFile, key: &str, default: f64) -> Result<f64> {
    match f.get(key) {
        None => Ok(default),
        Some(v) => v.as_f64().ok_or_else(|| {
            Error::config(f.path().display().to_string(), key, format!("is not a number: {v:?}"))
        }),
    }
}

/// As [`optional_f64`] for a non-negative integer.
///
/// # Errors
/// [`Error::Config`] naming the key and the value found.
pub(crate) fn optional_u64(f: &GgufFile, key: &str, default: u64) -> Result<u64> {
    match f.get(key) {
        None => Ok(default),
        Some(v) => v.as_u64().ok_or_else(|| {
            Error::config(
                f.path().display().to_string(),
                key,
                format!("is not a non-negative integer: {v:?}"),
            )
        }),
    }
}

/// Every value finite, or [`Error::NonFinite`] naming the tensor and the first bad index: one
/// pass over the weights just loaded (llama.cpp validates its tensors' data the same way).
///
/// # Errors
/// [`Error::NonFinite`].
pub(crate) fn check_finite(source_name: &str, tensor: &str, data: &[f32]) -> Result<()> {
    // Branch-free per chunk (vectorizes); locate the element only when a chunk fails.
    for (c, chunk) in data.chunks(4096).enumerate() {
        if chunk.iter().fold(true, |ok, x| ok & x.is_finite()) {
            continue;
        }
        if let Some(i) = chunk.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite {
                source_name: source_name.to_string(),
                tensor: tensor.to_string(),
                index: c * 4096 + i,
                value: chunk[i],
            });
        }
    }
    Ok(())
}

/// A [`WeightSource`](crate::WeightSource) whose tensors are checked with [`check_finite`] as
/// they are handed out: for loaders that do not take [`LoadOptions`](crate::LoadOptions) (the
/// CUDA path).
#[cfg(feature = "cuda")]
#[derive(Debug)]
pub(crate) struct FiniteChecked<'a, S: ?Sized>(pub(crate) &'a S);

#[cfg(feature = "cuda")]
impl<S: crate::WeightSource + ?Sized> crate::WeightSource for FiniteChecked<'_, S> {
    fn source_name(&self) -> String {
        self.0.source_name()
    }

    fn tensor(&self, hf_name: &str) -> Result<Option<crate::source::F32Tensor>> {
        let t = self.0.tensor(hf_name)?;
        if let Some(t) = &t {
            check_finite(&self.0.source_name(), hf_name, &t.data)?;
        }
        Ok(t)
    }
}
