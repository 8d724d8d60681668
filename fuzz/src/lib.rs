//! The fuzz targets' bodies (one function per target; `fuzz_targets/*.rs` are one-line
//! wrappers), and what they share: a counting allocator that turns the memory bar into a
//! crash (a reader may hold at most 4 × its input plus a constant on the heap), and a scratch
//! file for readers that take a path. The workspace test `tests/fuzz_seeds.rs` includes this
//! file to run every body over the seeds and their mutations in CI (docs/fuzzing.md).
#![allow(unsafe_code, missing_docs, dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The global allocator of every target: `System`, counting the live bytes and their peak.
#[derive(Debug)]
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

/// GGUF reader: header, metadata, tensor table, each tensor's bytes, and the model
/// configuration read from the metadata. Memory bar on the whole read.
pub fn gguf(data: &[u8]) -> Option<eai_model::GgufFile> {
    bounded(data.len(), || {
        let f = eai_model::GgufFile::from_bytes("fuzz.gguf", data.to_vec()).ok()?;
        for t in f.tensors() {
            let _ = f.tensor_bytes(&t.name);
            let _ = t.shape();
        }
        let _ = eai_model::ModelConfig::from_gguf(&f);
        Some(f)
    })
}

/// The safetensors checkpoint reader: a file (written to a scratch file: the reader takes a
/// path and maps it), its header, and every tensor read as f32. Memory bar on the whole read
/// (reading a tensor as f32 is at most 4 × its bytes: int8 → f32).
pub fn safetensors(data: &[u8]) {
    let p = scratch("model.safetensors", data);
    bounded(data.len(), || {
        let Ok(c) = eai_quant::checkpoint::Checkpoint::open(&p) else { return };
        let names: Vec<String> = c.tensors().map(|t| t.name.clone()).collect();
        for n in names {
            let _ = c.bytes(&n);
            let _ = c.read_f32(&n);
        }
    });
}

/// The ARC loader (JSON Lines) and the task built from it (0-shot requests).
pub fn arc(data: &[u8]) {
    use eai_eval::data::arc;
    let Some(text) = text(data) else { return };
    let origin = std::path::Path::new("fuzz.jsonl");
    let Ok(items) = bounded(data.len(), || arc::parse(text, origin)) else { return };
    if let Ok(t) = eai_eval::tasks::arc_task(arc::ArcSubset::Easy, &items, &items, 0) {
        let _ = t.instances();
    }
}

/// The HellaSwag loaders (JSON Lines and the preprocessed text form) and their tasks.
pub fn hellaswag(data: &[u8]) {
    use eai_eval::data::hellaswag;
    let Some(text) = text(data) else { return };
    let origin = std::path::Path::new("fuzz.jsonl");
    if let Ok(items) = bounded(data.len(), || hellaswag::parse_jsonl(text, origin))
        && let Ok(t) = eai_eval::tasks::hellaswag_task(&items, &items, 0)
    {
        let _ = t.instances();
    }
    if let Ok(items) = bounded(data.len(), || hellaswag::parse_text(text, origin))
        && let Ok(t) = eai_eval::tasks::hellaswag_text_task(&items)
    {
        let _ = t.instances();
    }
}

/// The TruthfulQA loader and its MC1/MC2 tasks.
pub fn truthfulqa(data: &[u8]) {
    use eai_eval::data::truthfulqa;
    let Some(text) = text(data) else { return };
    let origin = std::path::Path::new("fuzz.json");
    let Ok(items) = bounded(data.len(), || truthfulqa::parse(text, origin)) else { return };
    if let Ok(t) = eai_eval::tasks::truthfulqa_mc1_task(&items) {
        let _ = t.instances();
    }
    for v in [eai_eval::Mc2Version::V3LabelMask, eai_eval::Mc2Version::V2SplitAtFirstFalse] {
        if let Ok(t) = eai_eval::tasks::truthfulqa_mc2_task(&items, v) {
            let _ = t.instances();
        }
    }
}

/// The MMLU loader (one subject's CSV) and its task.
pub fn mmlu(data: &[u8]) {
    use eai_eval::data::mmlu;
    let Some(text) = text(data) else { return };
    let origin = std::path::Path::new("abstract_algebra_test.csv");
    let Ok(items) = bounded(data.len(), || mmlu::parse(text, origin, "abstract_algebra")) else {
        return;
    };
    if let Ok(t) = eai_eval::tasks::mmlu_task("abstract_algebra", &items, &items, 0) {
        let _ = t.instances();
    }
}

/// The GSM8K loader and its tasks (plain and chain-of-thought).
pub fn gsm8k(data: &[u8]) {
    use eai_eval::data::gsm8k;
    let Some(text) = text(data) else { return };
    let origin = std::path::Path::new("fuzz.jsonl");
    let Ok(items) = bounded(data.len(), || gsm8k::parse(text, origin)) else { return };
    for it in &items {
        let _ = it.final_answer();
    }
    if let Ok(t) = eai_eval::tasks::gsm8k_task(&items, &items, 0) {
        let _ = t.instances();
    }
    if let Ok(t) = eai_eval::tasks::gsm8k_cot_task(&items, 0) {
        let _ = t.instances();
    }
}

/// Trace replay: a recorded trace (CSV, or JSON when it starts with `{`), the replay sources
/// built from it, and the energy of its whole span and of its halves, which must be a finite,
/// non-negative number of joules when there is one.
pub fn replay(data: &[u8]) {
    use eai_power::Timeline;
    let tl = bounded(data.len(), || {
        if data.first() == Some(&b'{') {
            Timeline::read_json(data, "fuzz.json")
        } else {
            Timeline::read_csv(data, "fuzz.csv")
        }
    });
    let Ok(tl) = tl else { return };
    let _ = eai_power::ReplaySource::all(&tl);
    let end = tl.end_ns();
    for (t0, t1) in [(0, end), (0, end / 2), (end / 2, end)] {
        if let Ok(m) = tl.measure("fuzz", t0, t1) {
            for d in &m.devices {
                if let Some(e) = d.energy {
                    assert!(e.0.is_finite() && e.0 >= 0.0, "{}: {} J", d.source, e.0);
                }
            }
        }
    }
}

/// `runs.json` (what `eai recommend` reads): the runs, their metrics, and the comparison of
/// the first configuration with the next (Table 2's row).
pub fn runs(data: &[u8]) {
    use eai_metrics::Run;
    let Ok(runs) = bounded(data.len(), || serde_json::from_slice::<Vec<Run>>(data)) else {
        return;
    };
    for r in &runs {
        let _ = (r.score(), r.energy(), r.wall(), r.label());
    }
    let Some(first) = runs.first() else { return };
    let base: Vec<Run> = runs.iter().filter(|r| r.config() == first.config()).cloned().collect();
    let rest: Vec<Run> = runs.iter().filter(|r| r.config() != first.config()).cloned().collect();
    if let Some(c) = rest.first() {
        let cand: Vec<Run> = rest.iter().filter(|r| r.config() == c.config()).cloned().collect();
        let _ = eai_metrics::compare(&base, &cand);
    }
}
