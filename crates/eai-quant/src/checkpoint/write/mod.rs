//! Streaming checkpoint writers: compressed-tensors `int-quantized` and FP16/BF16 copies.
//!
//! Memory: tensors are produced one at a time while the file is written (safetensors' lazy
//! [`View`](safetensors::View)), the source is read in chunks of [`CHUNK`] elements whose pages
//! are released from the resident set as soon as they are consumed, and only the output bytes of
//! the tensor being written live in memory. Peak memory is therefore about one output tensor plus
//! a few MB, below 2× the largest tensor whatever the checkpoint's size.
//!
//! Safety of the inputs: before anything is touched, the destination is refused when it is,
//! contains or lies inside an input (paths resolved through symbolic links), when it exists
//! without `overwrite`, when the checkpoint holds no tensor, and when an output name would be
//! written twice.
//!
//! Atomicity: everything is written into a fresh temporary directory next to the destination,
//! which is renamed into place only when every file is complete. A failure (or a panic) removes
//! the temporary directory; nothing half-written ever appears under the final name. Every output
//! file gets the process's default file mode.
//!
//! Jobs: `names` decides the output names, `stream` produces the tensors, `config` writes
//! `config.json` and copies the side files, `dest` guards the destination.

mod config;
mod dest;
mod names;
mod stream;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use self::stream::CHUNK;
use self::stream::{Ctx, Lazy, tensor_views};
use super::plan::{MixedPrecision, QuantPlan};
use super::read::Checkpoint;
use crate::cast::{CastReport, HalfType, RangePolicy};
use crate::error::{QuantError, Result};
use crate::metrics::{ErrorAccumulator, ErrorStats};
use crate::spec::Granularity;

/// Options for the writers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteOptions {
    /// Replace an existing destination (only after the new one is complete).
    pub overwrite: bool,
    /// Measure the error of every converted tensor (dequantize / widen and compare; costs time).
    pub measure_error: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { overwrite: false, measure_error: true }
    }
}

/// What happened to one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TensorAction {
    /// Copied byte for byte.
    Copy,
    /// Cast to a 16-bit float type.
    Cast(HalfType),
    /// Quantized to int8 codes with scales.
    Quantize,
}

/// Per-tensor outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorReport {
    /// Source tensor name.
    pub name: String,
    /// What was done.
    pub action: TensorAction,
    /// Bytes in the source.
    pub in_bytes: usize,
    /// Bytes written for it (codes + scales + zero points for quantized tensors).
    pub out_bytes: usize,
    /// Error against the source (when measured and converted).
    pub error: Option<ErrorStats>,
    /// Cast counters (for cast tensors).
    pub cast: Option<CastReport>,
}

/// Outcome of writing a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointReport {
    /// Destination directory.
    pub out_dir: PathBuf,
    /// Files written (safetensors shards, index, config and copied side files).
    pub files: Vec<PathBuf>,
    /// One entry per source tensor.
    pub tensors: Vec<TensorReport>,
    /// Total bytes of the source tensors.
    pub in_bytes: usize,
    /// Total bytes of the written safetensors files (headers included).
    pub out_bytes: u64,
    /// Bytes of the largest source tensor.
    pub largest_tensor_bytes: usize,
    /// Error over all converted (quantized or cast) tensors together.
    pub error: Option<ErrorStats>,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// What makes this output less than a clean, loadable model folder (for example: the source
    /// had no `config.json`, so the written one holds only the quantization settings). Empty
    /// for a clean write; a caller presenting the result must show these.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Quantize the linear weights of `src` per `plan` and write a compressed-tensors
/// `int-quantized` checkpoint to `out_dir` (see `docs/quant.md` for the exact layout).
///
/// # Errors
/// [`QuantError::InvalidSpec`] for a weight spec the layout cannot express; any quantization
/// error of a tensor (named); [`QuantError::Io`] for file-system failures (then nothing is left
/// under `out_dir`); [`QuantError::Io`] with kind `AlreadyExists` when `out_dir` exists and
/// `opts.overwrite` is false.
pub fn write_quantized(
    src: &Checkpoint,
    plan: &QuantPlan,
    out_dir: &Path,
    opts: WriteOptions,
) -> Result<CheckpointReport> {
    plan.weight.validate()?;
    match plan.weight.granularity {
        Granularity::PerTensor
        | Granularity::PerToken
        | Granularity::PerGroup { .. }
        | Granularity::PerChannel { axis: 0 } => {}
        g => {
            return Err(QuantError::spec(format!(
                "the compressed-tensors layout stores per-tensor, per-output-channel, per-row or \
                 per-group weight scales, not {g:?}"
            )));
        }
    }
    let mut jobs = BTreeMap::new();
    for t in src.tensors() {
        let float = t.float;
        let job = if float.is_some() && plan.quantizes(&t.name, &t.shape) {
            Plan::Quantize
        } else {
            match (&plan.rest, float) {
                (Some(mp), Some(_)) if mp.casts(&t.name, &t.shape) => {
                    Plan::Cast(mp.dtype, mp.range)
                }
                _ => Plan::Copy,
            }
        };
        jobs.insert(t.name.clone(), job);
    }
    let config = |cfg: &mut serde_json::Map<String, Value>, reports: &[TensorReport]| {
        cfg.insert("quantization_config".into(), config::quantization_config(src, plan, reports));
    };
    write_checkpoint(src, &jobs, Some(plan), out_dir, opts, &config)
}

/// Write an FP16 or BF16 copy of `src` to `out_dir`, keeping the tensors `policy` keeps in their
/// original precision; `config.json` gets `torch_dtype`.
///
/// # Errors
/// Cast errors under [`RangePolicy::Error`] (tensor and index named); I/O errors as for
/// [`write_quantized`].
pub fn write_half(
    src: &Checkpoint,
    policy: &MixedPrecision,
    out_dir: &Path,
    opts: WriteOptions,
) -> Result<CheckpointReport> {
    let jobs = src
        .tensors()
        .map(|t| {
            let job = if t.float.is_some() && policy.casts(&t.name, &t.shape) {
                Plan::Cast(policy.dtype, policy.range)
            } else {
                Plan::Copy
            };
            (t.name.clone(), job)
        })
        .collect();
    let dtype = match policy.dtype {
        HalfType::F16 => "float16",
        HalfType::Bf16 => "bfloat16",
    };
    let config = |cfg: &mut serde_json::Map<String, Value>, _: &[TensorReport]| {
        cfg.insert("torch_dtype".into(), json!(dtype));
    };
    write_checkpoint(src, &jobs, None, out_dir, opts, &config)
}

/// Edits `config.json` once the tensors are written.
pub(crate) type ConfigEdit<'a> = dyn Fn(&mut serde_json::Map<String, Value>, &[TensorReport]) + 'a;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Plan {
    Copy,
    Cast(HalfType, RangePolicy),
    Quantize,
}

fn write_checkpoint(
    src: &Checkpoint,
    jobs: &BTreeMap<String, Plan>,
    quant: Option<&QuantPlan>,
    out_dir: &Path,
    opts: WriteOptions,
    config: &ConfigEdit<'_>,
) -> Result<CheckpointReport> {
    let t0 = Instant::now();
    // Every check before anything is touched.
    if src.tensors().next().is_none() {
        return Err(QuantError::EmptyCheckpoint { checkpoint: src.opened_path().to_path_buf() });
    }
    dest::check_destination(src, out_dir, opts.overwrite)?;
    names::check_names(src, jobs, quant)?;
    let parent = match out_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| QuantError::io(&parent, e))?;
    let base = out_dir.file_name().map_or("out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dest::TempDir::new_in(&parent, &base)?;
    let mut report = write_into(src, jobs, quant, tmp.path(), opts, config)?;
    tmp.persist(out_dir)?;
    report.out_dir = out_dir.to_path_buf();
    report.files =
        report.files.iter().filter_map(|f| f.file_name().map(|n| out_dir.join(n))).collect();
    report.seconds = t0.elapsed().as_secs_f64();
    Ok(report)
}

fn write_into(
    src: &Checkpoint,
    jobs: &BTreeMap<String, Plan>,
    quant: Option<&QuantPlan>,
    dir: &Path,
    opts: WriteOptions,
    config: &ConfigEdit<'_>,
) -> Result<CheckpointReport> {
    let ctx = Ctx {
        ck: src,
        measure: opts.measure_error,
        failed: std::cell::RefCell::new(None),
        touched: std::cell::RefCell::new(None),
        errors: std::cell::RefCell::new(BTreeMap::new()),
        casts: std::cell::RefCell::new(BTreeMap::new()),
    };
    let mut reports: Vec<TensorReport> = Vec::new();
    let mut files = Vec::new();
    let mut weight_map: BTreeMap<String, String> = BTreeMap::new();
    let mut total_size = 0usize;
    let mut out_bytes = 0u64;
    let sharded = src.is_sharded();
    for (si, shard_path) in src.shard_paths().iter().enumerate() {
        let file_name = if sharded {
            shard_path.file_name().map_or_else(
                || format!("model-{:05}.safetensors", si + 1),
                |n| n.to_string_lossy().into_owned(),
            )
        } else {
            "model.safetensors".to_string()
        };
        let mut views: Vec<(String, Lazy<'_>)> = Vec::new();
        for info in src.tensors().filter(|t| t.shard == si) {
            let plan = jobs.get(&info.name).copied().unwrap_or(Plan::Copy);
            let (v, report) = tensor_views(&ctx, info, plan, quant, shard_path)?;
            views.extend(v);
            reports.push(report);
        }
        for (name, v) in &views {
            weight_map.insert(name.clone(), file_name.clone());
            total_size += v.len;
        }
        let path = dir.join(&file_name);
        let meta: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
        let r = safetensors::serialize_to_file(
            views.iter().map(|(n, v)| (n.clone(), v)),
            Some(meta),
            &path,
        );
        ctx.release_touched();
        if let Some(e) = ctx.failed.borrow_mut().take() {
            return Err(e);
        }
        r.map_err(|e| QuantError::Safetensors { file: path.clone(), source: Box::new(e) })?;
        out_bytes += std::fs::metadata(&path).map_err(|e| QuantError::io(&path, e))?.len();
        files.push(path);
    }
    // Attach measurements.
    let errors = ctx.errors.borrow();
    let casts = ctx.casts.borrow();
    let mut all = ErrorAccumulator::default();
    for r in &mut reports {
        if let Some(acc) = errors.get(&r.name) {
            r.error = acc.finish();
            all.merge(acc);
        }
        r.cast = casts.get(&r.name).copied();
    }
    let tensor_files = files.clone();
    if sharded {
        let index = json!({ "metadata": { "total_size": total_size }, "weight_map": weight_map });
        let p = dir.join("model.safetensors.index.json");
        config::write_json(&p, &index)?;
        files.push(p);
    }
    let (cfg_path, had_config) = config::write_config(src, dir, config, &reports)?;
    dest::match_permissions(&tensor_files, &cfg_path)?;
    files.push(cfg_path);
    files.extend(config::copy_side_files(src, dir)?);
    for f in &files {
        if let Ok(file) = std::fs::File::open(f) {
            file.sync_all().map_err(|e| QuantError::io(f, e))?;
        }
    }
    let mut warnings = Vec::new();
    if !had_config {
        warnings.push(format!(
            "{} has no config.json: the written config.json holds only the conversion's \
             settings, so the output is not a loadable model folder",
            src.root().display()
        ));
    }
    let in_bytes = src.tensors().map(|t| t.nbytes).sum();
    let largest = src.tensors().map(|t| t.nbytes).max().unwrap_or(0);
    Ok(CheckpointReport {
        out_dir: dir.to_path_buf(),
        files,
        tensors: reports,
        in_bytes,
        out_bytes,
        largest_tensor_bytes: largest,
        error: all.finish(),
        seconds: 0.0,
        warnings,
    })
}
