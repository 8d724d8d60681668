//! Trace replay: a recorded trace (CSV, or JSON when it starts with `{`), and the energy of
//! its whole span and of its halves. A window's energy is never negative or infinite.
#![no_main]

#[global_allocator]
static A: eai_fuzz::Counting = eai_fuzz::Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| eai_fuzz::replay(data));
