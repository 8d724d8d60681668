//! Peak resident memory while quantizing a synthetic multi-GB checkpoint, next to its largest
//! tensor. The checkpoint is generated on the fly in a temporary directory (sharded, f32).
//!
//! `cargo bench -p eai-quant --bench checkpoint_rss` (size: `EAI_RSS_GB`, default 3).
//! Linux only (reads `/proc/self/status`, resets the high-water mark through
//! `/proc/self/clear_refs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use eai_quant::checkpoint::{
    Checkpoint, MixedPrecision, QuantPlan, WriteOptions, write_half, write_quantized,
};
use eai_quant::{HalfType, QuantSpec};
use safetensors::{Dtype, View};

/// A tensor whose bytes are generated when the writer asks for them.
struct Synth {
    shape: Vec<usize>,
    seed: u64,
}

impl View for &Synth {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data_len(&self) -> usize {
        self.shape.iter().product::<usize>() * 4
    }
    fn data(&self) -> Cow<'_, [u8]> {
        let n: usize = self.shape.iter().product();
        let mut out = Vec::with_capacity(n * 4);
        let mut s = self.seed | 1;
        let row = *self.shape.last().unwrap();
        for i in 0..n {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let row_scale = 0.02 * (1.0 + ((i / row) % 7) as f32);
            out.extend_from_slice(&(u * row_scale).to_le_bytes());
        }
        Cow::Owned(out)
    }
}

fn status(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn make(dir: &Path, gb: f64) -> (u64, u64) {
    std::fs::create_dir_all(dir).unwrap();
    // per shard: one 8192×8192 (256 MiB) and six 4096×8192 (128 MiB) linear weights + a norm
    let shard_bytes = (256 + 6 * 128) as f64 / 1024.0;
    let shards = ((gb / shard_bytes).round() as usize).max(1);
    let mut map = serde_json::Map::new();
    let (mut total, mut largest) = (0u64, 0u64);
    for s in 0..shards {
        let file = format!("model-{:05}-of-{:05}.safetensors", s + 1, shards);
        let mut tensors: Vec<(String, Synth)> = Vec::new();
        tensors.push((
            format!("model.layers.{s}.mlp.down_proj.weight"),
            Synth { shape: vec![8192, 8192], seed: s as u64 * 10 + 1 },
        ));
        for (j, p) in
            ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj"].iter().enumerate()
        {
            tensors.push((
                format!("model.layers.{s}.self_attn.{p}.weight"),
                Synth { shape: vec![4096, 8192], seed: s as u64 * 10 + 2 + j as u64 },
            ));
        }
        tensors.push((
            format!("model.layers.{s}.input_layernorm.weight"),
            Synth { shape: vec![8192], seed: 99 },
        ));
        for (n, t) in &tensors {
            map.insert(n.clone(), serde_json::json!(file));
            let b = (&t).data_len() as u64;
            total += b;
            largest = largest.max(b);
        }
        let meta: HashMap<String, String> = [("format".into(), "pt".into())].into();
        safetensors::serialize_to_file(
            tensors.iter().map(|(n, t)| (n.clone(), t)),
            Some(meta),
            &dir.join(&file),
        )
        .unwrap();
    }
    let index = serde_json::json!({"metadata": {"total_size": total}, "weight_map": map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("config.json"), r#"{"model_type": "llama"}"#).unwrap();
    (total, largest)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing we need.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let gb: f64 = std::env::var("EAI_RSS_GB").ok().and_then(|v| v.parse().ok()).unwrap_or(3.0);
    let tmp = tempfile::tempdir().unwrap();
    let src_dir = tmp.path().join("src");
    let t0 = Instant::now();
    let (total, largest) = make(&src_dir, gb);
    println!(
        "synthetic checkpoint: {:.0} MiB in {} ({:.1} s to generate), largest tensor {:.0} MiB",
        mib(total),
        src_dir.display(),
        t0.elapsed().as_secs_f64(),
        mib(largest)
    );
    let src = Checkpoint::open(&src_dir).unwrap();
    type Job<'a> = Box<dyn Fn(&Path) -> eai_quant::checkpoint::CheckpointReport + 'a>;
    let jobs: Vec<(&str, Job<'_>)> = vec![
        (
            "int8 per-channel (compressed-tensors)",
            Box::new(|o: &Path| {
                write_quantized(
                    &src,
                    &QuantPlan::new(QuantSpec::int8_weight()),
                    o,
                    WriteOptions::default(),
                )
                .unwrap()
            }),
        ),
        (
            "bf16 copy",
            Box::new(|o: &Path| {
                write_half(&src, &MixedPrecision::new(HalfType::Bf16), o, WriteOptions::default())
                    .unwrap()
            }),
        ),
    ];
    println!(
        "| job | checkpoint MiB | largest tensor MiB | RSS before MiB | peak RSS MiB | peak / largest | time s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (i, (name, job)) in jobs.iter().enumerate() {
        let out = tmp.path().join(format!("out{i}"));
        let can_reset = reset_peak();
        let before = status("VmRSS:");
        let t = Instant::now();
        let rep = job(&out);
        let secs = t.elapsed().as_secs_f64();
        let peak = status("VmHWM:");
        let note =
            if can_reset { "" } else { " (high-water mark not resettable: includes generation)" };
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.1} |{note}",
            mib(total),
            mib(largest),
            mib(before),
            mib(peak),
            peak as f64 / largest as f64,
            secs
        );
        assert_eq!(rep.largest_tensor_bytes as u64, largest);
        std::fs::remove_dir_all(&out).unwrap();
    }
}
