//! The GSM8K loader and its tasks (plain and chain-of-thought).
#![no_main]
use libfuzzer_sys::fuzz_target;
use eai_eval::data::gsm8k;

#[global_allocator]
static A: eai_fuzz::Counting = eai_fuzz::Counting;

fuzz_target!(|data: &[u8]| {
    let Some(text) = eai_fuzz::text(data) else { return };
    let origin = std::path::Path::new("fuzz.jsonl");
    let Ok(items) = eai_fuzz::bounded(data.len(), || gsm8k::parse(text, origin)) else { return };
    for it in &items {
        let _ = it.final_answer();
    }
    if let Ok(t) = eai_eval::tasks::gsm8k_task(&items, &items, 0) {
        let _ = t.instances();
    }
    if let Ok(t) = eai_eval::tasks::gsm8k_cot_task(&items, 0) {
        let _ = t.instances();
    }
});
