//! The GSM8K loader and its tasks (plain and chain-of-thought).
#![no_main]

#[global_allocator]
static A: eai_fuzz::Counting = eai_fuzz::Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| eai_fuzz::gsm8k(data));
