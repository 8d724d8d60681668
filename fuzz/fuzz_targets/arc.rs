//! The ARC loader (JSON Lines) and the task built from it (0-shot requests).
#![no_main]

#[global_allocator]
static A: eai_fuzz::Counting = eai_fuzz::Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| eai_fuzz::arc(data));
