//! The safetensors checkpoint reader: a file (written to a scratch file: the reader takes a
//! path and maps it), its header, and every tensor read as f32. Memory bar on the header and
//! tensor table; reading a tensor as f32 is bounded by 4 × its bytes (int8 → f32).
#![no_main]
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static A: eai_fuzz::Counting = eai_fuzz::Counting;

fuzz_target!(|data: &[u8]| {
    let p = eai_fuzz::scratch("model.safetensors", data);
    eai_fuzz::bounded(data.len(), || {
        let Ok(c) = eai_quant::checkpoint::Checkpoint::open(&p) else { return };
        let names: Vec<String> = c.tensors().map(|t| t.name.clone()).collect();
        for n in names {
            let _ = c.bytes(&n);
            let _ = c.read_f32(&n);
        }
    });
});
