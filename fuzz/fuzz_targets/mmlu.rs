//! The MMLU loader (one subject's CSV) and its task.
#![no_main]
use libfuzzer_sys::fuzz_target;
use eai_eval::data::mmlu;

#[global_allocator]
static A: eai_fuzz::Counting = eai_fuzz::Counting;

fuzz_target!(|data: &[u8]| {
    let Some(text) = eai_fuzz::text(data) else { return };
    let origin = std::path::Path::new("abstract_algebra_test.csv");
    let Ok(items) =
        eai_fuzz::bounded(data.len(), || mmlu::parse(text, origin, "abstract_algebra"))
    else {
        return;
    };
    if let Ok(t) = eai_eval::tasks::mmlu_task("abstract_algebra", &items, &items, 0) {
        let _ = t.instances();
    }
});
