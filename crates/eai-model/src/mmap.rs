//! Read-only memory maps: the crate's only `unsafe` besides the run-time-dispatched SIMD dot products.

use std::fs::File;
use std::ops::Deref;
use std::path::Path;

use crate::error::{Error, Result};

/// Bytes of a file: memory-mapped when possible, otherwise read into memory.
#[derive(Debug)]
pub(crate) enum Bytes {
    /// A read-only private mapping of the whole file.
    Mapped(memmap2::Mmap),
    /// An owned copy (used for in-memory files and when mapping fails).
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

impl Bytes {
    /// Maps `path` read-only; falls back to reading it when the OS refuses the mapping.
    pub(crate) fn map(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len == 0 {
            return Ok(Bytes::Owned(Vec::new()));
        }
        #[allow(unsafe_code)]
        // SAFETY: the mapping is read-only and private, and every access goes through bounds-checked
        // slices of it. The remaining hazard of file-backed maps is another process truncating or
        // rewriting the file while we hold the map (SIGBUS or changed bytes); model files are treated
        // as immutable inputs, as in every mmap-based loader (llama.cpp, safetensors, candle), and this
        // is documented on the public loaders.
        let mapped = unsafe { memmap2::Mmap::map(&file) };
        match mapped {
            Ok(m) => Ok(Bytes::Mapped(m)),
            Err(_) => std::fs::read(path).map(Bytes::Owned).map_err(|e| Error::io(path, e)),
        }
    }
}
