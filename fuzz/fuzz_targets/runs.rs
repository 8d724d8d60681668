//! `runs.json` (what `eai recommend` reads): the runs, their metrics, and the comparison of
//! each configuration with the first one (Table 2's row).
#![no_main]

#[global_allocator]
static A: eai_fuzz::Counting = eai_fuzz::Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| eai_fuzz::runs(data));
