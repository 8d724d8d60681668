//! The TruthfulQA loader and its MC1/MC2 tasks.
#![no_main]
use libfuzzer_sys::fuzz_target;
use eai_eval::data::truthfulqa;

#[global_allocator]
static A: eai_fuzz::Counting = eai_fuzz::Counting;

fuzz_target!(|data: &[u8]| {
    let Some(text) = eai_fuzz::text(data) else { return };
    let origin = std::path::Path::new("fuzz.json");
    let Ok(items) = eai_fuzz::bounded(data.len(), || truthfulqa::parse(text, origin)) else {
        return;
    };
    if let Ok(t) = eai_eval::tasks::truthfulqa_mc1_task(&items) {
        let _ = t.instances();
    }
    for v in [eai_eval::Mc2Version::V3LabelMask, eai_eval::Mc2Version::V2SplitAtFirstFalse] {
        if let Ok(t) = eai_eval::tasks::truthfulqa_mc2_task(&items, v) {
            let _ = t.instances();
        }
    }
});
