//! The TruthfulQA loader and its MC1/MC2 tasks.
#![no_main]

#[global_allocator]
static A: eai_fuzz::Counting = eai_fuzz::Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| eai_fuzz::truthfulqa(data));
