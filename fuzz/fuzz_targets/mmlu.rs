//! The MMLU loader (one subject's CSV) and its task.
#![no_main]

#[global_allocator]
static A: eai_fuzz::Counting = eai_fuzz::Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| eai_fuzz::mmlu(data));
