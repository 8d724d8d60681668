//! The HellaSwag loaders (JSON Lines and the preprocessed text form) and the task.
#![no_main]

#[global_allocator]
static A: eai_fuzz::Counting = eai_fuzz::Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| eai_fuzz::hellaswag(data));
