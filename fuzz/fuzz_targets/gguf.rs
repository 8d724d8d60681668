//! The GGUF reader: header, metadata, tensor table, each tensor's bytes, and the model
//! configuration read from the metadata. Memory bar on the whole read.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static A: eai_fuzz::Counting = eai_fuzz::Counting;

fuzz_target!(|data: &[u8]| {
    let parsed = eai_fuzz::gguf(data);
    #[cfg(feature = "planted-bug")]
    if let Some(f) = &parsed {
        planted::file_type_name(f);
    }
    drop(parsed);
});

/// A bug planted on purpose (feature `planted-bug`) to show the fuzzer finds one: the name of
/// `general.file_type` looked up in a table without checking the index, as a reader written in
/// haste would. llama.cpp's file types go past the table's end.
#[cfg(feature = "planted-bug")]
mod planted {
    const NAMES: [&str; 8] = ["F32", "F16", "Q4_0", "Q4_1", "Q4_1_F16", "Q4_2", "Q4_3", "Q8_0"];

    pub(crate) fn file_type_name(f: &eai_model::GgufFile) -> &'static str {
        match f.get("general.file_type").and_then(|v| v.as_u64()) {
            Some(t) => NAMES[t as usize],
            None => "unknown",
        }
    }
}
