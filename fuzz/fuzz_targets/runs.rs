//! `runs.json` (what `eai recommend` reads): the runs, their metrics, and the comparison of
//! each configuration with the first one (Table 2's row).
#![no_main]
use libfuzzer_sys::fuzz_target;
use eai_metrics::Run;

#[global_allocator]
static A: eai_fuzz::Counting = eai_fuzz::Counting;

fuzz_target!(|data: &[u8]| {
    let Ok(runs) = eai_fuzz::bounded(data.len(), || serde_json::from_slice::<Vec<Run>>(data))
    else {
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
});
