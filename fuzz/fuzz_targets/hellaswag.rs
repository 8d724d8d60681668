//! The HellaSwag loaders (JSON Lines and the preprocessed text form) and the task.
#![no_main]
use libfuzzer_sys::fuzz_target;
use eai_eval::data::hellaswag;

#[global_allocator]
static A: eai_fuzz::Counting = eai_fuzz::Counting;

fuzz_target!(|data: &[u8]| {
    let Some(text) = eai_fuzz::text(data) else { return };
    let origin = std::path::Path::new("fuzz.jsonl");
    if let Ok(items) = eai_fuzz::bounded(data.len(), || hellaswag::parse_jsonl(text, origin)) {
        if let Ok(t) = eai_eval::tasks::hellaswag_task(&items, &items, 0) {
            let _ = t.instances();
        }
    }
    if let Ok(items) = eai_fuzz::bounded(data.len(), || hellaswag::parse_text(text, origin)) {
        if let Ok(t) = eai_eval::tasks::hellaswag_text_task(&items) {
            let _ = t.instances();
        }
    }
});
