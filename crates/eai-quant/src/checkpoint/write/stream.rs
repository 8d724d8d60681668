//! The lazy tensor views the safetensors writer pulls from: copies borrowed from the source's
//! memory map, casts and int8 codes computed chunk by chunk when the writer asks for them.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

use safetensors::{Dtype, View};

use super::config::dtype_from_name;
use super::names::QuantNames;
use super::{Plan, TensorAction, TensorReport};
use crate::cast::{CastReport, HalfType, RangePolicy, cast_f32_into};
use crate::checkpoint::plan::{ActivationScheme, QuantPlan};
use crate::checkpoint::read::{Checkpoint, FloatDtype, TensorInfo, widen_bytes};
use crate::cpu::unravel;
use crate::error::{QuantError, Result};
use crate::kernel::{self, GroupParams, RangeStats, ScaleIssue};
use crate::metrics::ErrorAccumulator;
use crate::qtensor::GroupLayout;
use crate::spec::{Granularity, QuantSpec, ScaleDtype};

/// Elements converted per chunk (4 MiB of f32).
pub const CHUNK: usize = 1 << 20;

/// Shared state of one write: error side channel (View::data cannot fail), page release,
/// measurements.
pub(super) struct Ctx<'a> {
    pub(super) ck: &'a Checkpoint,
    pub(super) measure: bool,
    pub(super) failed: RefCell<Option<QuantError>>,
    pub(super) touched: RefCell<Option<(usize, usize, usize)>>,
    pub(super) errors: RefCell<BTreeMap<String, ErrorAccumulator>>,
    pub(super) casts: RefCell<BTreeMap<String, CastReport>>,
}

impl Ctx<'_> {
    fn fail(&self, e: QuantError) {
        let mut f = self.failed.borrow_mut();
        if f.is_none() {
            *f = Some(e);
        }
    }

    pub(super) fn release_touched(&self) {
        if let Some((s, a, b)) = self.touched.borrow_mut().take() {
            self.ck.release(s, a, b);
        }
    }
}

pub(super) enum Job {
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

pub(super) struct QuantJob {
    spec: QuantSpec,
    layout: GroupLayout,
    params: Vec<GroupParams>,
    /// Codes are stored shifted by −128 when the spec's range is unsigned (int8 on disk).
    shift: i32,
}

pub(super) struct Lazy<'a> {
    ctx: &'a Ctx<'a>,
    dtype: Dtype,
    shape: Vec<usize>,
    pub(super) len: usize,
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

/// The output views of one source tensor (quantization parameters are computed here, streaming
/// through the source) and its report.
pub(super) fn tensor_views<'a>(
    ctx: &'a Ctx<'a>,
    info: &TensorInfo,
    plan: Plan,
    quant: Option<&QuantPlan>,
    shard_path: &Path,
) -> Result<(Vec<(String, Lazy<'a>)>, TensorReport)> {
    let src = ctx.ck;
    let si = info.shard;
    let mut views: Vec<(String, Lazy<'a>)> = Vec::new();
    let (shard, range) = src.range(&info.name).unwrap_or((si, (0, 0)));
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
            let q = quant_params(ctx, info, &qp.weight)?;
            let names = QuantNames::of(&info.name, qp);
            let sshape = scale_shape(&qp.weight, &info.shape, &q.layout);
            let (sdt, sbytes) = scale_bytes(&q.params, qp.weight.scale_dtype);
            let n: usize = info.shape.iter().product();
            report.action = TensorAction::Quantize;
            report.out_bytes = n + sbytes.len();
            if let Some(zp_name) = names.zero_point {
                let zp: Vec<u8> = q
                    .params
                    .iter()
                    .map(|p| ((p.zero_point + q.shift) as i8).to_le_bytes()[0])
                    .collect();
                report.out_bytes += zp.len();
                views.push((
                    zp_name,
                    Lazy {
                        ctx,
                        dtype: Dtype::I8,
                        shape: sshape.clone(),
                        len: zp.len(),
                        job: Job::Owned(zp),
                    },
                ));
            }
            views.push((
                names.scale,
                Lazy { ctx, dtype: sdt, shape: sshape, len: sbytes.len(), job: Job::Owned(sbytes) },
            ));
            if let ActivationScheme::Static(scales) = &qp.activations
                && let Some(s) = scales.get(&names.module)
                && let Some(input_name) = names.input_scale
            {
                views.push((
                    input_name,
                    Lazy {
                        ctx,
                        dtype: Dtype::F32,
                        shape: vec![1],
                        len: 4,
                        job: Job::Owned(s.to_le_bytes().to_vec()),
                    },
                ));
            }
            views.push((
                names.weight,
                Lazy {
                    ctx,
                    dtype: Dtype::I8,
                    shape: info.shape.clone(),
                    len: n,
                    job: Job::Codes { name: info.name.clone(), shard, range, from, q: Box::new(q) },
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
                    ctx,
                    dtype,
                    shape: info.shape.clone(),
                    len: 2 * n,
                    job: Job::Cast { name: info.name.clone(), shard, range, from, to, policy },
                },
            ));
        }
        _ => {
            report.out_bytes = info.nbytes;
            views.push((
                info.name.clone(),
                Lazy {
                    ctx,
                    dtype: dtype_of(info)?,
                    shape: info.shape.clone(),
                    len: info.nbytes,
                    job: Job::Copy { shard, range },
                },
            ));
        }
    }
    Ok((views, report))
}
