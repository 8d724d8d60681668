//! The only `unsafe` outside `cuda/`: mapping a file read-only, and dropping pages we are done
//! with from the resident set.
#![allow(unsafe_code)]

use std::fs::File;
use std::path::Path;

use memmap2::{Mmap, UncheckedAdvice};

use crate::error::{QuantError, Result};

/// Map `file` read-only.
pub(crate) fn map(file: &File, path: &Path) -> Result<Mmap> {
    // SAFETY: the mapping is read-only (PROT_READ, shared); we never create a mutable
    // view of it. The one hazard memmap2 cannot rule out — another process truncating or
    // rewriting the file while it is mapped — is outside this crate's control, as with every
    // mmap-based reader (ripgrep documents the same caveat). Checkpoint files are inputs that
    // are not expected to change while being read; writers in this crate never write to a path
    // they read from (outputs go to a fresh temporary directory first).
    unsafe { Mmap::map(file) }.map_err(|e| QuantError::io(path, e))
}

/// Drop the pages of `[a, b)` from this process's resident set (best effort).
pub(crate) fn release(mmap: &Mmap, a: usize, b: usize) {
    let page = 4096;
    let start = a / page * page;
    let end = b.min(mmap.len());
    if end <= start {
        return;
    }
    // SAFETY: the map is a read-only file mapping. MADV_DONTNEED on it discards only clean page
    // cache references: the next access re-reads the same bytes from the file, so every
    // outstanding borrow of the mapping keeps observing identical contents (the unsafety memmap2
    // guards against is for private *written* mappings, whose modifications would be lost; this
    // mapping is never written). The range lies within the mapping (clamped above, start is
    // page-aligned as madvise requires).
    let r = unsafe { mmap.unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start) };
    if let Err(e) = r {
        tracing::debug!("madvise(DONTNEED) failed: {e}");
    }
}
