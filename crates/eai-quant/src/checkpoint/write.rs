//! Streaming checkpoint writers: compressed-tensors `int-quantized` and FP16/BF16 copies.
//!
//! Memory: tensors are produced one at a time while the file is written (safetensors' lazy
//! [`View`]), the source is read in chunks of [`CHUNK`] elements whose pages are released from
//! the resident set as soon as they are consumed, and only the output bytes of the tensor being
//! written live in memory. Peak memory is therefore about one output tensor plus a few MB,
//! below 2× the largest tensor whatever the checkpoint's size.
//!
//! Atomicity: everything is written into a fresh temporary directory next to the destination,
//! which is renamed into place only when every file is complete. A failure removes the
//! temporary directory; nothing half-written ever appears under the final name.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use safetensors::{Dtype, View};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::plan::{ActivationScheme, MixedPrecision, QuantPlan, TensorClass};
use super::read::{Checkpoint, FloatDtype, TensorInfo, widen_bytes};
use crate::cast::{CastReport, HalfType, RangePolicy, cast_f32_into};
use crate::cpu::unravel;
use crate::error::{QuantError, Result};
use crate::kernel::{self, GroupParams, RangeStats, ScaleIssue};
use crate::metrics::{ErrorAccumulator, ErrorStats};
use crate::qtensor::GroupLayout;
use crate::spec::{Granularity, Mapping, QuantSpec, ScaleDtype};

/// Elements converted per chunk (4 MiB of f32).
pub const CHUNK: usize = 1 << 20;

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
        cfg.insert("quantization_config".into(), quantization_config(src, plan, reports));
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
type ConfigEdit<'a> = dyn Fn(&mut serde_json::Map<String, Value>, &[TensorReport]) + 'a;

#[derive(Debug, Clone, Copy)]
enum Plan {
    Copy,
    Cast(HalfType, RangePolicy),
    Quantize,
}

/// Shared state of one write: error side channel (View::data cannot fail), page release,
/// measurements.
struct Ctx<'a> {
    ck: &'a Checkpoint,
    measure: bool,
    failed: RefCell<Option<QuantError>>,
    touched: RefCell<Option<(usize, usize, usize)>>,
    errors: RefCell<BTreeMap<String, ErrorAccumulator>>,
    casts: RefCell<BTreeMap<String, CastReport>>,
}

impl Ctx<'_> {
    fn fail(&self, e: QuantError) {
        let mut f = self.failed.borrow_mut();
        if f.is_none() {
            *f = Some(e);
        }
    }

    fn release_touched(&self) {
        if let Some((s, a, b)) = self.touched.borrow_mut().take() {
            self.ck.release(s, a, b);
        }
    }
}

enum Job {
    Copy {
        shard: usize,
        range: (usize, usize),
    },
    Cast {
        name: String,
        shard: usize,
        range: (usize, usize),
        from: FloatDtype,
        to: HalfType,
        policy: RangePolicy,
    },
    Codes {
        name: String,
        shard: usize,
        range: (usize, usize),
        from: FloatDtype,
        q: Box<QuantJob>,
    },
    Owned(Vec<u8>),
}

struct QuantJob {
    spec: QuantSpec,
    layout: GroupLayout,
    params: Vec<GroupParams>,
    /// Codes are stored shifted by −128 when the spec's range is unsigned (int8 on disk).
    shift: i32,
}

struct Lazy<'a> {
    ctx: &'a Ctx<'a>,
    dtype: Dtype,
    shape: Vec<usize>,
    len: usize,
    job: Job,
}

impl View for &Lazy<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data_len(&self) -> usize {
        self.len
    }
    fn data(&self) -> Cow<'_, [u8]> {
        let ctx = self.ctx;
        ctx.release_touched();
        if ctx.failed.borrow().is_some() {
            return Cow::Borrowed(&[]);
        }
        match &self.job {
            Job::Owned(v) => Cow::Borrowed(v),
            Job::Copy { shard, range } => {
                *ctx.touched.borrow_mut() = Some((*shard, range.0, range.1));
                let s = &ctx.ck.shards[*shard].mmap[range.0..range.1];
                Cow::Borrowed(s)
            }
            Job::Cast { name, shard, range, from, to, policy } => {
                match cast_job(ctx, name, *shard, *range, *from, *to, *policy) {
                    Ok(v) => Cow::Owned(v),
                    Err(e) => {
                        ctx.fail(e);
                        Cow::Borrowed(&[])
                    }
                }
            }
            Job::Codes { name, shard, range, from, q } => {
                Cow::Owned(codes_job(ctx, name, *shard, *range, *from, q))
            }
        }
    }
}

/// Walk `[a, b)` of a shard in chunks of `CHUNK` elements of `from`, widened to f32, releasing
/// each chunk's pages after `f` has consumed it. `f(start_element, values)`.
fn for_chunks(
    ck: &Checkpoint,
    shard: usize,
    range: (usize, usize),
    from: FloatDtype,
    mut f: impl FnMut(usize, &[f32]) -> Result<()>,
) -> Result<()> {
    let size = from.size();
    let n = (range.1 - range.0) / size;
    let bytes = &ck.shards[shard].mmap[range.0..range.1];
    let mut buf = vec![0f32; CHUNK.min(n)];
    let mut start = 0;
    while start < n {
        let end = (start + CHUNK).min(n);
        let chunk = &mut buf[..end - start];
        widen_bytes(&bytes[start * size..end * size], from, chunk);
        f(start, chunk)?;
        ck.release(shard, range.0 + start * size, range.0 + end * size);
        start = end;
    }
    Ok(())
}

/// Pieces of `[s, e)` that share one group: `(piece_start, piece_end, group)`.
fn pieces(
    layout: &GroupLayout,
    s: usize,
    e: usize,
) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    let l = layout.run_len();
    (s / l..e.div_ceil(l)).map(move |r| {
        let (a, b) = ((r * l).max(s), ((r + 1) * l).min(e));
        (a, b, layout.group_of(r * l))
    })
}

fn quant_params(ctx: &Ctx<'_>, info: &TensorInfo, spec: &QuantSpec) -> Result<QuantJob> {
    let layout = GroupLayout::new(&info.name, &info.shape, spec.granularity)?;
    let from = ctx.ck.float_of(info)?;
    let (shard, range) = ctx.ck.range(&info.name).ok_or_else(|| QuantError::MissingTensor {
        tensor: info.name.clone(),
        checkpoint: ctx.ck.root().into(),
    })?;
    let mut mn = vec![f32::INFINITY; layout.groups()];
    let mut mx = vec![f32::NEG_INFINITY; layout.groups()];
    for_chunks(ctx.ck, shard, range, from, |start, vals| {
        for (a, b, g) in pieces(&layout, start, start + vals.len()) {
            let (st, bad) = kernel::run_stats(&vals[a - start..b - start], spec.non_finite);
            if let Some(off) = bad {
                let flat = a + off;
                return Err(QuantError::NonFinite {
                    tensor: info.name.clone(),
                    index: unravel(flat, &info.shape),
                    flat,
                    value: vals[flat - start],
                });
            }
            mn[g] = mn[g].min(st.min);
            mx[g] = mx[g].max(st.max);
        }
        Ok(())
    })?;
    let params = mn
        .iter()
        .zip(&mx)
        .enumerate()
        .map(|(g, (&lo, &hi))| {
            kernel::group_params(RangeStats { min: lo, max: hi }.normalised(), spec).map_err(
                |ScaleIssue::NotRepresentable(s)| QuantError::BadScale {
                    tensor: info.name.clone(),
                    group: g,
                    scale: s,
                    dtype: spec.scale_dtype.name(),
                },
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let shift = if spec.range.is_signed() { 0 } else { -128 };
    Ok(QuantJob { spec: *spec, layout, params, shift })
}

fn codes_job(
    ctx: &Ctx<'_>,
    name: &str,
    shard: usize,
    range: (usize, usize),
    from: FloatDtype,
    q: &QuantJob,
) -> Vec<u8> {
    let n = (range.1 - range.0) / from.size();
    let mut out = vec![0u8; n];
    let mut codes = vec![0i32; CHUNK.min(n)];
    let mut back = if ctx.measure { vec![0f32; CHUNK.min(n)] } else { Vec::new() };
    let mut acc = ErrorAccumulator::default();
    let r = for_chunks(ctx.ck, shard, range, from, |start, vals| {
        let end = start + vals.len();
        for (a, b, g) in pieces(&q.layout, start, end) {
            let p = q.params[g];
            let (src, dst) = (&vals[a - start..b - start], &mut codes[a - start..b - start]);
            kernel::quantize_run(src, p, &q.spec, dst, |c| c);
            if ctx.measure {
                for (y, &c) in back[a - start..b - start].iter_mut().zip(dst.iter()) {
                    *y = kernel::dequantize_value(c, p);
                }
            }
        }
        for (o, &c) in out[start..end].iter_mut().zip(&codes[..vals.len()]) {
            *o = ((c + q.shift) as i8).to_le_bytes()[0];
        }
        if ctx.measure {
            acc.push(vals, &back[..vals.len()]);
        }
        Ok(())
    });
    if let Err(e) = r {
        ctx.fail(e);
    }
    if ctx.measure {
        ctx.errors.borrow_mut().insert(name.to_string(), acc);
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn cast_job(
    ctx: &Ctx<'_>,
    name: &str,
    shard: usize,
    range: (usize, usize),
    from: FloatDtype,
    to: HalfType,
    policy: RangePolicy,
) -> Result<Vec<u8>> {
    let n = (range.1 - range.0) / from.size();
    let mut out = vec![0u8; 2 * n];
    let mut bits = vec![0u16; CHUNK.min(n)];
    let mut back = Vec::new();
    let mut acc = ErrorAccumulator::default();
    let mut report = CastReport::default();
    for_chunks(ctx.ck, shard, range, from, |start, vals| {
        let b = &mut bits[..vals.len()];
        let r = cast_f32_into(name, vals, to, policy, b).map_err(|e| match e {
            QuantError::Overflow { tensor, flat, value, target } => {
                QuantError::Overflow { tensor, flat: flat + start, value, target }
            }
            QuantError::NonFinite { tensor, flat, value, .. } => QuantError::NonFinite {
                tensor,
                index: vec![flat + start],
                flat: flat + start,
                value,
            },
            other => other,
        })?;
        report.n += r.n;
        report.saturated += r.saturated;
        report.nan += r.nan;
        report.flushed_to_zero += r.flushed_to_zero;
        for (o, v) in out[2 * start..2 * (start + vals.len())].chunks_exact_mut(2).zip(b.iter()) {
            o.copy_from_slice(&v.to_le_bytes());
        }
        if ctx.measure {
            back = crate::cast::widen_to_f32(b, to);
            acc.push(vals, &back);
        }
        Ok(())
    })?;
    drop(back);
    ctx.casts.borrow_mut().insert(name.to_string(), report);
    if ctx.measure {
        ctx.errors.borrow_mut().insert(name.to_string(), acc);
    }
    Ok(out)
}

fn scale_bytes(params: &[GroupParams], dtype: ScaleDtype) -> (Dtype, Vec<u8>) {
    match dtype {
        ScaleDtype::F32 => {
            (Dtype::F32, params.iter().flat_map(|p| p.scale.to_le_bytes()).collect())
        }
        ScaleDtype::F16 => (
            Dtype::F16,
            params.iter().flat_map(|p| half::f16::from_f32(p.scale).to_le_bytes()).collect(),
        ),
        ScaleDtype::Bf16 => (
            Dtype::BF16,
            params.iter().flat_map(|p| half::bf16::from_f32(p.scale).to_le_bytes()).collect(),
        ),
    }
}

fn scale_shape(spec: &QuantSpec, shape: &[usize], layout: &GroupLayout) -> Vec<usize> {
    match spec.granularity {
        Granularity::PerTensor => vec![1],
        Granularity::PerGroup { size } => vec![shape[0], shape[1] / size],
        _ => vec![layout.groups(), 1],
    }
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
    if out_dir.exists() && !opts.overwrite {
        return Err(QuantError::io(
            out_dir,
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "destination exists"),
        ));
    }
    let src_root = std::fs::canonicalize(src.root()).map_err(|e| QuantError::io(src.root(), e))?;
    if let Ok(o) = std::fs::canonicalize(out_dir)
        && o == src_root
    {
        return Err(QuantError::io(
            out_dir,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "destination is the source"),
        ));
    }
    let parent = match out_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| QuantError::io(&parent, e))?;
    let base = out_dir.file_name().map_or("out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = tempdir_in(&parent, &base)?;
    let result = write_into(src, jobs, quant, &tmp, opts, config);
    match result {
        Ok(mut report) => {
            if let Err(e) = replace_dir(&tmp, out_dir) {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
            report.out_dir = out_dir.to_path_buf();
            report.files = report
                .files
                .iter()
                .filter_map(|f| f.file_name().map(|n| out_dir.join(n)))
                .collect();
            report.seconds = t0.elapsed().as_secs_f64();
            Ok(report)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

fn tempdir_in(parent: &Path, base: &str) -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for i in 0..100u32 {
        let p = parent.join(format!(".{base}.tmp-{}-{nanos}-{i}", std::process::id()));
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(QuantError::io(&p, e)),
        }
    }
    Err(QuantError::io(
        parent,
        std::io::Error::new(std::io::ErrorKind::AlreadyExists, "no free temporary name"),
    ))
}

/// Move `tmp` to `dst`; an existing `dst` is moved aside first and removed only afterwards.
fn replace_dir(tmp: &Path, dst: &Path) -> Result<()> {
    if dst.exists() {
        let aside = dst.with_file_name(format!(
            ".{}.old-{}",
            dst.file_name().map_or("out".into(), |n| n.to_string_lossy().into_owned()),
            std::process::id()
        ));
        std::fs::rename(dst, &aside).map_err(|e| QuantError::io(dst, e))?;
        if let Err(e) = std::fs::rename(tmp, dst) {
            let _ = std::fs::rename(&aside, dst);
            return Err(QuantError::io(dst, e));
        }
        if aside.is_dir() {
            std::fs::remove_dir_all(&aside).map_err(|e| QuantError::io(&aside, e))?;
        } else {
            std::fs::remove_file(&aside).map_err(|e| QuantError::io(&aside, e))?;
        }
        Ok(())
    } else {
        std::fs::rename(tmp, dst).map_err(|e| QuantError::io(dst, e))
    }
}

const SIDE_FILES: &[&str] = &[
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "sentencepiece.bpe.model",
    "chat_template.jinja",
    "chat_template.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
];

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
        failed: RefCell::new(None),
        touched: RefCell::new(None),
        errors: RefCell::new(BTreeMap::new()),
        casts: RefCell::new(BTreeMap::new()),
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
        // Build this shard's views (quantization parameters computed here, streaming).
        let mut views: Vec<(String, Lazy<'_>)> = Vec::new();
        for info in src.tensors().filter(|t| t.shard == si) {
            let (shard, range) = src.range(&info.name).unwrap_or((si, (0, 0)));
            let plan = jobs.get(&info.name).copied().unwrap_or(Plan::Copy);
            let mut report = TensorReport {
                name: info.name.clone(),
                action: TensorAction::Copy,
                in_bytes: info.nbytes,
                out_bytes: 0,
                error: None,
                cast: None,
            };
            let dtype_of = |i: &TensorInfo| -> Result<Dtype> {
                dtype_from_name(&i.dtype).ok_or_else(|| QuantError::UnsupportedDtype {
                    tensor: i.name.clone(),
                    file: shard_path.to_path_buf(),
                    dtype: i.dtype.clone(),
                })
            };
            match (plan, quant) {
                (Plan::Quantize, Some(qp)) => {
                    let from = src.float_of(info)?;
                    let q = quant_params(&ctx, info, &qp.weight)?;
                    let module =
                        info.name.strip_suffix(".weight").unwrap_or(&info.name).to_string();
                    let sshape = scale_shape(&qp.weight, &info.shape, &q.layout);
                    let (sdt, sbytes) = scale_bytes(&q.params, qp.weight.scale_dtype);
                    let n: usize = info.shape.iter().product();
                    report.action = TensorAction::Quantize;
                    report.out_bytes = n + sbytes.len();
                    if qp.weight.mapping == Mapping::Asymmetric {
                        let zp: Vec<u8> = q
                            .params
                            .iter()
                            .map(|p| ((p.zero_point + q.shift) as i8).to_le_bytes()[0])
                            .collect();
                        report.out_bytes += zp.len();
                        views.push((
                            format!("{module}.weight_zero_point"),
                            Lazy {
                                ctx: &ctx,
                                dtype: Dtype::I8,
                                shape: sshape.clone(),
                                len: zp.len(),
                                job: Job::Owned(zp),
                            },
                        ));
                    }
                    views.push((
                        format!("{module}.weight_scale"),
                        Lazy {
                            ctx: &ctx,
                            dtype: sdt,
                            shape: sshape,
                            len: sbytes.len(),
                            job: Job::Owned(sbytes),
                        },
                    ));
                    if let ActivationScheme::Static(scales) = &qp.activations
                        && let Some(s) = scales.get(&module)
                    {
                        views.push((
                            format!("{module}.input_scale"),
                            Lazy {
                                ctx: &ctx,
                                dtype: Dtype::F32,
                                shape: vec![1],
                                len: 4,
                                job: Job::Owned(s.to_le_bytes().to_vec()),
                            },
                        ));
                    }
                    views.push((
                        format!("{module}.weight"),
                        Lazy {
                            ctx: &ctx,
                            dtype: Dtype::I8,
                            shape: info.shape.clone(),
                            len: n,
                            job: Job::Codes {
                                name: info.name.clone(),
                                shard,
                                range,
                                from,
                                q: Box::new(q),
                            },
                        },
                    ));
                }
                (Plan::Cast(to, policy), _) => {
                    let from = src.float_of(info)?;
                    let n: usize = info.shape.iter().product();
                    report.action = TensorAction::Cast(to);
                    report.out_bytes = 2 * n;
                    let dtype = match to {
                        HalfType::F16 => Dtype::F16,
                        HalfType::Bf16 => Dtype::BF16,
                    };
                    views.push((
                        info.name.clone(),
                        Lazy {
                            ctx: &ctx,
                            dtype,
                            shape: info.shape.clone(),
                            len: 2 * n,
                            job: Job::Cast {
                                name: info.name.clone(),
                                shard,
                                range,
                                from,
                                to,
                                policy,
                            },
                        },
                    ));
                }
                _ => {
                    report.out_bytes = info.nbytes;
                    views.push((
                        info.name.clone(),
                        Lazy {
                            ctx: &ctx,
                            dtype: dtype_of(info)?,
                            shape: info.shape.clone(),
                            len: info.nbytes,
                            job: Job::Copy { shard, range },
                        },
                    ));
                }
            }
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
    if sharded {
        let index = json!({ "metadata": { "total_size": total_size }, "weight_map": weight_map });
        let p = dir.join("model.safetensors.index.json");
        write_json(&p, &index)?;
        files.push(p);
    }
    // config.json (+ side files)
    let cfg_src = src.root().join("config.json");
    let mut cfg = if cfg_src.is_file() {
        let text = std::fs::read_to_string(&cfg_src).map_err(|e| QuantError::io(&cfg_src, e))?;
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(QuantError::Json { file: cfg_src, detail: "not a JSON object".into() });
            }
            Err(e) => return Err(QuantError::Json { file: cfg_src, detail: e.to_string() }),
        }
    } else {
        serde_json::Map::new()
    };
    config(&mut cfg, &reports);
    let p = dir.join("config.json");
    write_json(&p, &Value::Object(cfg))?;
    files.push(p);
    for side in SIDE_FILES {
        let from = src.root().join(side);
        if from.is_file() {
            let to = dir.join(side);
            std::fs::copy(&from, &to).map_err(|e| QuantError::io(&from, e))?;
            files.push(to);
        }
    }
    for f in &files {
        if let Ok(file) = std::fs::File::open(f) {
            file.sync_all().map_err(|e| QuantError::io(f, e))?;
        }
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
    })
}

fn write_json(p: &Path, v: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v)
        .map_err(|e| QuantError::Json { file: p.into(), detail: e.to_string() })?;
    std::fs::write(p, text).map_err(|e| QuantError::io(p, e))
}

fn dtype_from_name(s: &str) -> Option<Dtype> {
    let q = format!("\"{s}\"");
    serde_json::from_str::<Dtype>(&q).ok()
}

fn quantization_config(src: &Checkpoint, plan: &QuantPlan, reports: &[TensorReport]) -> Value {
    let w = &plan.weight;
    let (strategy, group_size) = match w.granularity {
        Granularity::PerTensor => ("tensor", Value::Null),
        Granularity::PerGroup { size } => ("group", json!(size)),
        _ => ("channel", Value::Null),
    };
    let weights = json!({
        "num_bits": 8,
        "type": "int",
        "symmetric": w.mapping == Mapping::Symmetric,
        "strategy": strategy,
        "group_size": group_size,
        "dynamic": false,
    });
    let input = match &plan.activations {
        ActivationScheme::None => Value::Null,
        ActivationScheme::DynamicPerToken => json!({
            "num_bits": 8, "type": "int", "symmetric": true, "strategy": "token",
            "group_size": null, "dynamic": true,
        }),
        ActivationScheme::Static(_) => json!({
            "num_bits": 8, "type": "int", "symmetric": true, "strategy": "tensor",
            "group_size": null, "dynamic": false,
        }),
    };
    // Linear layers left in floating point must be listed, or loaders would expect int8 there.
    let quantized: std::collections::BTreeSet<&str> = reports
        .iter()
        .filter(|r| r.action == TensorAction::Quantize)
        .map(|r| r.name.as_str())
        .collect();
    let ignore: Vec<String> = src
        .tensors()
        .filter(|t| {
            matches!(TensorClass::of(&t.name, &t.shape), TensorClass::Linear | TensorClass::LmHead)
                && t.name.ends_with(".weight")
                && !quantized.contains(t.name.as_str())
        })
        .map(|t| t.name.trim_end_matches(".weight").to_string())
        .collect();
    json!({
        "quant_method": "compressed-tensors",
        "format": "int-quantized",
        "quantization_status": "compressed",
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "weights": weights,
                "input_activations": input,
                "output_activations": null,
            }
        },
        "ignore": ignore,
        "kv_cache_scheme": null,
        "global_compression_ratio": null,
    })
}
