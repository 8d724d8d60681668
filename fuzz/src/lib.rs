//! Shared by the fuzz targets: a counting allocator that turns the memory bar into a crash
//! (a reader may hold at most 4 × its input plus a constant on the heap), and a scratch file
//! for readers that take a path.
#![allow(unsafe_code, missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The global allocator of every target: `System`, counting the live bytes and their peak.
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; the counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` was allocated by `System` with layout `l` (we forward every alloc).
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: as `dealloc`, and `new` is the caller's size.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE.fetch_sub(l.size(), Ordering::Relaxed);
            grew(new);
        }
        q
    }
}

/// The constant of the memory bar: parsing state that does not grow with the input.
pub const HEAP_CONSTANT: usize = 1 << 20;

/// Runs `f` (a reader given `input_len` bytes) and panics when the heap it used at its peak
/// exceeds `4 × input_len + HEAP_CONSTANT`: the memory bar of docs/fuzzing.md.
pub fn bounded<R>(input_len: usize, f: impl FnOnce() -> R) -> R {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let r = f();
    let used = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    let limit = 4 * input_len + HEAP_CONSTANT;
    assert!(used <= limit, "heap peak {used} B for a {input_len}-byte input (bar {limit} B)");
    r
}

/// A scratch file of this process (on /dev/shm when there is one), rewritten per input.
pub fn scratch(name: &str, data: &[u8]) -> std::path::PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("eai-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let p = dir.join(name);
    if std::fs::write(&p, data).is_err() {
        // The scratch space is full or gone: not the reader's fault; stop loudly.
        eprintln!("cannot write the scratch file {}", p.display());
        std::process::exit(3);
    }
    p
}

/// Text of the input, or `None` when it is not UTF-8 (the loaders take `&str`; their files
/// are read with `read_to_string`, which refuses invalid UTF-8 first).
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}
