//! The ARC loader (JSON Lines) and the task built from it (0-shot requests).
#![no_main]
use libfuzzer_sys::fuzz_target;
use eai_eval::data::arc;

#[global_allocator]
static A: eai_fuzz::Counting = eai_fuzz::Counting;

fuzz_target!(|data: &[u8]| {
    let Some(text) = eai_fuzz::text(data) else { return };
    let origin = std::path::Path::new("fuzz.jsonl");
    let Ok(items) = eai_fuzz::bounded(data.len(), || arc::parse(text, origin)) else { return };
    if let Ok(t) = eai_eval::tasks::arc_task(arc::ArcSubset::Easy, &items, &items, 0) {
        let _ = t.instances();
    }
});
