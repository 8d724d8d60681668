//! The safetensors checkpoint reader: a file (written to a scratch file: the reader takes a
//! path and maps it), its header, and every tensor read as f32. Memory bar on the header and
//! tensor table; reading a tensor as f32 is bounded by 4 × its bytes (int8 → f32).
#![no_main]

#[global_allocator]
static A: eai_fuzz::Counting = eai_fuzz::Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| eai_fuzz::safetensors(data));
