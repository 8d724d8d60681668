//! Quantization and dequantization on the device, for every [`QuantSpec`], from f32, f16 and
//! bf16 inputs, with the scale reduction on the device; and [`CudaQuantizer`], the CUDA
//! implementation of the [`Quantizer`] seam.
//!
//! Execution paths, chosen per tensor by [`CudaDevice::quantize_into`]:
//! - **one pass** for groups that are contiguous runs (per-token, per-channel on axis 0 or
//!   whenever the leading axes have size 1, per-group, small per-tensor): groups of up to 8 KiB
//!   are held in registers by a team of lanes (packed NaN-propagating min/max, a warp vote for
//!   non-finite values, parameters exactly like
//!   [`kernel::group_params`](crate::kernel::group_params), codes from the same registers) —
//!   groups of 4–8 KiB by a team of four warps that meet in shared memory, groups of up to 128
//!   bytes (Q8_0) by lanes holding consecutive vectors; which kernel, and whether
//!   it loads with the streaming hint, is the measured best per input type and group size
//!   (`plan::row_kernel`); longer groups stream through a shared-memory `cp.async` pipeline;
//!   ragged rows use plain register kernels. Per-token dynamic activation quantization is one
//!   kernel.
//! - **one cooperative pass** for per-tensor inputs that fit in the multiprocessors' shared
//!   memory ([`CudaDevice::one_pass_tensor_capacity_bytes`]): slices stay on chip across a
//!   grid-wide barrier while the global min/max is formed.
//! - **two passes** otherwise (larger per-tensor, per-channel on an inner axis): min/max per
//!   group with order-preserving integer atomics, parameters per group, then an element-wise
//!   pass.
//!
//! Launch parameters ([`Tuning`](super::Tuning)) change speed only, never bits.
//!
//! Errors keep their CPU meaning: non-finite input under [`NonFinite::Reject`] reports the first
//! offending element in row-major order, an unrepresentable scale reports the first bad group.

use std::sync::Arc;

use cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::device::{CudaDevice, DeviceBuffer};
use super::error::{CudaError, Result};
use super::gemm::{FloatElem, grid_stride_config};
use crate::{
    Codes, Granularity, GroupLayout, Mapping, NonFinite, QuantError, QuantSpec, QuantizedTensor,
    Quantizer, Rounding, ScaleApply, ScaleDtype, ZeroRange,
};

pub(super) mod plan;
use plan::*;

/// A quantized tensor in device memory: codes (bytes; `i8` for signed ranges, the same bits for
/// `u8` ones), one scale and zero point per group, and the shape and spec that made them.
#[derive(Debug)]
pub struct DeviceQuantized {
    name: String,
    spec: QuantSpec,
    shape: Vec<usize>,
    scale_shape: Vec<usize>,
    path: Path,
    codes: DeviceBuffer<i8>,
    scales: DeviceBuffer<f32>,
    zero_points: DeviceBuffer<i32>,
    invs: DeviceBuffer<f32>,
    ord: DeviceBuffer<u32>,
    flags: DeviceBuffer<u64>,
    /// The zero point every group has, when they all have the same (symmetric specs): the
    /// dequantize kernels then skip loading them.
    uniform_zp: Option<i32>,
}

impl DeviceQuantized {
    /// The spec the codes follow.
    pub fn spec(&self) -> &QuantSpec {
        &self.spec
    }

    /// Shape of the original tensor.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.codes.len()
    }

    /// The codes, row-major; signed specs' codes are directly usable by
    /// [`CudaDevice::gemm_i8`].
    pub fn codes(&self) -> &DeviceBuffer<i8> {
        &self.codes
    }

    /// One scale per group (see [`Granularity`] for the order).
    pub fn scales(&self) -> &DeviceBuffer<f32> {
        &self.scales
    }

    /// One zero point per group.
    pub fn zero_points(&self) -> &DeviceBuffer<i32> {
        &self.zero_points
    }

    /// Checks the error flags of the last quantization into this tensor (waits for it):
    /// non-finite input under [`NonFinite::Reject`] and unrepresentable scales, reported as
    /// the CPU path reports them.
    ///
    /// # Errors
    /// [`CudaError::Quant`] with [`QuantError::NonFinite`] or [`QuantError::BadScale`];
    /// [`CudaError::Driver`] if the device work failed.
    pub fn check<T: FloatElem + Into<f32>>(
        &self,
        dev: &CudaDevice,
        input: &DeviceBuffer<T>,
    ) -> Result<()> {
        let flags = dev.download(&self.flags)?;
        let (bad, bad_scale) = (flags[0], flags[1]);
        if bad != u64::MAX {
            let flat = bad as usize;
            let value: f32 = dev.download_range(input, flat, 1)?[0].into();
            return Err(QuantError::NonFinite {
                tensor: self.name.clone(),
                index: crate::cpu::unravel(flat, &self.shape),
                flat,
                value,
            }
            .into());
        }
        if bad_scale != u64::MAX {
            let group = bad_scale as usize;
            let scale = dev.download_range(&self.scales, group, 1)?[0];
            return Err(QuantError::BadScale {
                tensor: self.name.clone(),
                group,
                scale,
                dtype: self.spec.scale_dtype.name(),
            }
            .into());
        }
        Ok(())
    }

    /// Copies codes, scales and zero points to the host as a [`QuantizedTensor`] (does not
    /// check the error flags: call [`check`](Self::check) first).
    ///
    /// # Errors
    /// [`CudaError::Driver`] on copy failure.
    pub fn to_host(&self, dev: &CudaDevice) -> Result<QuantizedTensor> {
        let raw = dev.download(&self.codes)?;
        let codes = if self.spec.range.is_signed() {
            Codes::I8(raw)
        } else {
            Codes::U8(raw.into_iter().map(|c| c as u8).collect())
        };
        Ok(QuantizedTensor {
            spec: self.spec,
            shape: self.shape.clone(),
            codes,
            scales: dev.download(&self.scales)?,
            scale_shape: self.scale_shape.clone(),
            zero_points: dev.download(&self.zero_points)?,
        })
    }
}

fn suffix<T: FloatElem>() -> &'static str {
    T::SUFFIX
}

/// Defines `kernel_name(base, suffix)` (the entry point `{base}_{suffix}`, as a static name)
/// and `KERNEL_BASES` from one list of base names.
macro_rules! kernel_names {
    ($($b:literal),* $(,)?) => {
        #[cfg(test)]
        const KERNEL_BASES: &[&str] = &[$($b),*];

        fn kernel_name(base: &'static str, suf: &'static str) -> &'static str {
            match (base, suf) {
                $(
                    ($b, "f32") => concat!($b, "_f32"),
                    ($b, "f16") => concat!($b, "_f16"),
                    ($b, _) => concat!($b, "_bf16"),
                )*
                _ => "missing_kernel",
            }
        }
    };
}
kernel_names!(
    "quant_rows_reg1",
    "quant_rows_reg2",
    "quant_rows_reg4",
    "quant_rows_reg8",
    "quant_rows_reg16",
    "quant_rows_split4x4",
    "quant_rows_regc4",
    "quant_rows_split4x4cs",
    "quant_rows_regc2cs",
    "dequant_4b",
    "quant_tensor_coop",
    "quant_rows_tiles2",
    "quant_rows_tiles3",
    "quant_rows_tiles4",
    "quant_stats_cols",
    "quant_apply_vec",
    "quant_apply_cols",
    "quant_rows_team",
    "quant_rows_block",
    "quant_stats_all",
    "quant_stats_channels",
    "quant_apply",
);

/// Threads per block of the one-pass per-tensor kernel.
const ONE_PASS_THREADS: u32 = 1024;

impl CudaDevice {
    /// Largest input (in bytes) that per-tensor quantization handles in one pass over memory:
    /// every multiprocessor holds a slice of the input in shared memory across a grid-wide
    /// barrier. Larger inputs take two passes (statistics, then codes).
    pub fn one_pass_tensor_capacity_bytes(&self) -> u64 {
        u64::from(self.info().multiprocessors) * (self.tile_smem_limit() & !15)
    }

    /// Grid (one block per multiprocessor) and 16-byte vectors per block of the one-pass
    /// per-tensor kernel for `n` elements of `elem_bytes`, or `None` when it does not apply
    /// (bytes not a multiple of 16, or more than fits in shared memory).
    fn one_pass_chunk(&self, n: u64, elem_bytes: u64) -> Option<(u32, u64)> {
        let bytes = n.checked_mul(elem_bytes)?;
        if bytes == 0 || !bytes.is_multiple_of(16) || bytes > self.one_pass_tensor_capacity_bytes()
        {
            return None;
        }
        let sms = u64::from(self.info().multiprocessors.max(1));
        let nv = bytes / 16;
        let chunk = nv.div_ceil(sms);
        let blocks = nv.div_ceil(chunk);
        if chunk * 16 > self.tile_smem_limit() {
            return None;
        }
        Some((u32::try_from(blocks).ok()?, chunk))
    }

    /// Allocates the device output for quantizing a tensor of `shape` under `spec` (`name`
    /// identifies it in errors).
    ///
    /// # Errors
    /// [`CudaError::Quant`] with the CPU path's errors for invalid specs and layouts
    /// ([`QuantError::InvalidSpec`], [`QuantError::Empty`], [`QuantError::BadGroup`],
    /// [`QuantError::AxisOutOfRange`]); [`CudaError::Driver`] on allocation failure.
    pub fn quant_output(
        &self,
        name: &str,
        spec: &QuantSpec,
        shape: &[usize],
    ) -> Result<DeviceQuantized> {
        spec.validate()?;
        let layout = GroupLayout::new(name, shape, spec.granularity)?;
        let path = plan_path(spec, shape);
        let groups = path.groups() as usize;
        if groups != layout.groups() {
            return Err(CudaError::Unsupported {
                op: "quantize",
                detail: format!(
                    "internal layout mismatch for `{name}`: {groups} vs {} groups",
                    layout.groups()
                ),
            });
        }
        let n = layout.numel();
        Ok(DeviceQuantized {
            name: name.to_string(),
            spec: *spec,
            shape: shape.to_vec(),
            scale_shape: layout.scale_shape(),
            path,
            codes: self.zeros(n)?,
            scales: self.zeros(groups)?,
            zero_points: self.zeros(groups)?,
            invs: self.zeros(groups)?,
            ord: self.zeros(2 * groups)?,
            flags: self.zeros(3)?,
            // group_params gives every group of a symmetric spec the symmetric zero point
            // (after a failed quantization, reported by `check`, the contents are unspecified)
            uniform_zp: (spec.mapping == Mapping::Symmetric).then(|| spec.symmetric_zero_point()),
        })
    }

    /// Enqueues the quantization of `x` (row-major, `out.shape()`) into `out`, without waiting;
    /// call [`DeviceQuantized::check`] to collect errors. This is the hot-path entry point
    /// (e.g. per-token activation quantization before [`CudaDevice::gemm_i8`]).
    ///
    /// # Errors
    /// [`CudaError::Shape`] if `x` does not hold `out.numel()` elements; [`CudaError::Driver`]
    /// on launch failure.
    pub fn quantize_into<T: FloatElem>(
        &self,
        x: &DeviceBuffer<T>,
        out: &mut DeviceQuantized,
    ) -> Result<()> {
        if x.len() != out.numel() {
            return Err(CudaError::shape(
                "quantize",
                format!("`{}` has {} elements for shape {:?}", out.name, x.len(), out.shape),
            ));
        }
        let kernels = self.kernels()?;
        let sms = self.info().multiprocessors;
        let s = QSpecArgs::new(&out.spec);
        let groups = out.path.groups();
        let suf = suffix::<T>();
        // reset flags (and two-pass statistics)
        {
            let f = kernels.get("quant_init")?;
            let cfg = match out.path {
                Path::TwoPass { .. } => grid_stride_config(groups, sms),
                Path::Rows { .. } => grid_stride_config(1, sms),
            };
            let g_init: u64 = match out.path {
                Path::TwoPass { .. } => groups,
                Path::Rows { .. } => 0,
            };
            let mut l = self.stream.launch_builder(f);
            l.arg(&mut out.ord.slice).arg(&g_init).arg(&mut out.flags.slice);
            // SAFETY: signature (u32* ord, u64 G, u64* flags); ord holds 2·groups ≥ 2·G words,
            // flags holds 2 words; the loop is bounded by G.
            unsafe { l.launch(cfg) }.map_err(self.err("cuLaunchKernel(quant_init)"))?;
        }
        let (bad_ptr, bad_scale_ptr) = {
            let (p, _g) = cudarc::driver::DevicePtr::device_ptr(&out.flags.slice, &self.stream);
            (p, p + 8)
        };
        match out.path {
            Path::Rows { groups, len } => {
                let eb = std::mem::size_of::<T>() as u64;
                let tuning = self.tuning();
                let chosen = row_kernel(Src::from_suffix(suf), groups, len, &tuning);
                let plan = tile_plan(groups, len, eb, &tuning, self.tile_smem_limit());
                if let Some(k) = chosen {
                    let RowKernel { args, base, threads } = k;
                    let f = kernels.get(kernel_name(base, suf))?;
                    let per_sm = f
                        .occupancy_max_active_blocks_per_multiprocessor(threads, 0, None)
                        .map_err(self.err("cuOccupancyMaxActiveBlocksPerMultiprocessor"))?
                        .max(1);
                    let blocks = k
                        .warps()
                        .div_ceil(u64::from(threads / 32))
                        .clamp(1, u64::from(sms.max(1)) * u64::from(per_sm))
                        as u32;
                    let cfg = LaunchConfig {
                        grid_dim: (blocks, 1, 1),
                        block_dim: (threads, 1, 1),
                        shared_mem_bytes: 0,
                    };
                    let mut l = self.stream.launch_builder(f);
                    l.arg(&x.slice)
                        .arg(&mut out.codes.slice)
                        .arg(&mut out.scales.slice)
                        .arg(&mut out.zero_points.slice)
                        .arg(&args)
                        .arg(&s)
                        .arg(&bad_ptr)
                        .arg(&bad_scale_ptr);
                    // SAFETY: signature (const T*, u8* q, float* scales, int* zps, RegArgs,
                    // QSpec, u64* bad, u64* bad_scale) matches; x and codes hold G·L elements
                    // with L·sizeof(T) = 16·LV, so every 16-byte load `x + (g·LV + v)·16` with
                    // g < G, v < LV is aligned (allocation base 256-byte aligned) and in bounds;
                    // scales/zps hold G; TS is a power of two ≤ 32 with TS·V ≥ LV (reg_plan) and
                    // the block a multiple of 32 threads, so teams never straddle warps and every
                    // warp-wide vote and shuffle is reached by all 32 lanes (the group loop is
                    // warp-uniform); split kernels (TS = 32·NW, split_plan) run with 256-thread
                    // blocks, whole teams per block, and their group loop is team-uniform, so
                    // every named barrier is reached by the team's NW warps.
                    unsafe { l.launch(cfg) }.map_err(self.err("cuLaunchKernel(quant_rows_reg)"))?;
                } else if let Some(plan) = plan {
                    let base = match plan.stages {
                        2 => "quant_rows_tiles2",
                        3 => "quant_rows_tiles3",
                        _ => "quant_rows_tiles4",
                    };
                    let f = kernels.get(kernel_name(base, suf))?;
                    let per_sm = f
                        .occupancy_max_active_blocks_per_multiprocessor(
                            plan.threads,
                            plan.smem_bytes as usize,
                            None,
                        )
                        .map_err(self.err("cuOccupancyMaxActiveBlocksPerMultiprocessor"))?
                        .max(1);
                    let tiles = groups.div_ceil(u64::from(plan.args.r));
                    let blocks = tiles.clamp(1, u64::from(sms.max(1)) * u64::from(per_sm)) as u32;
                    let cfg = LaunchConfig {
                        grid_dim: (blocks, 1, 1),
                        block_dim: (plan.threads, 1, 1),
                        shared_mem_bytes: plan.smem_bytes,
                    };
                    let mut l = self.stream.launch_builder(f);
                    l.arg(&x.slice)
                        .arg(&mut out.codes.slice)
                        .arg(&mut out.scales.slice)
                        .arg(&mut out.zero_points.slice)
                        .arg(&plan.args)
                        .arg(&s)
                        .arg(&bad_ptr)
                        .arg(&bad_scale_ptr);
                    // SAFETY: signature (const T*, u8* q, float* scales, int* zps, TileArgs,
                    // QSpec, u64* bad, u64* bad_scale) matches; x and codes hold G·L elements
                    // with G·L·sizeof(T) a multiple of 16 per group (16-byte cp.async chunks
                    // stay inside the allocation, whose base is 256-byte aligned), scales/zps G;
                    // the dynamic shared memory (stages · R · GS · 16 bytes) is what the kernel
                    // indexes and is within the limit set on the function at load; TS is a
                    // power of two dividing the block, so teams never straddle warps below 32
                    // lanes and every __syncthreads is reached by the whole block.
                    unsafe { l.launch(cfg) }
                        .map_err(self.err("cuLaunchKernel(quant_rows_tiles)"))?;
                } else if let Some(ts) = team_size(len, eb) {
                    let f = kernels.get(kernel_name("quant_rows_team", suf))?;
                    let threads = groups * u64::from(ts);
                    let cfg = grid_stride_config(threads, sms);
                    let mut l = self.stream.launch_builder(f);
                    l.arg(&x.slice)
                        .arg(&mut out.codes.slice)
                        .arg(&mut out.scales.slice)
                        .arg(&mut out.zero_points.slice)
                        .arg(&groups)
                        .arg(&len)
                        .arg(&ts)
                        .arg(&s)
                        .arg(&bad_ptr)
                        .arg(&bad_scale_ptr);
                    // SAFETY: signature (const T*, u8* q, float* scales, int* zps, u64 G, u64 L,
                    // u32 TS, QSpec, u64* bad, u64* bad_scale) matches; x and codes hold G·L
                    // elements, scales/zps G; TS is a power of two ≤ 32 dividing the 256-thread
                    // block, so teams never straddle warps; the flag pointers address the two
                    // u64 words of `out.flags`, alive for the call.
                    unsafe { l.launch(cfg) }
                        .map_err(self.err("cuLaunchKernel(quant_rows_team)"))?;
                } else {
                    let f = kernels.get(kernel_name("quant_rows_block", suf))?;
                    let blocks = groups.clamp(1, u64::from(sms.max(1)) * 16) as u32;
                    let cfg = LaunchConfig {
                        grid_dim: (blocks, 1, 1),
                        block_dim: (128, 1, 1),
                        shared_mem_bytes: 0,
                    };
                    let mut l = self.stream.launch_builder(f);
                    l.arg(&x.slice)
                        .arg(&mut out.codes.slice)
                        .arg(&mut out.scales.slice)
                        .arg(&mut out.zero_points.slice)
                        .arg(&groups)
                        .arg(&len)
                        .arg(&s)
                        .arg(&bad_ptr)
                        .arg(&bad_scale_ptr);
                    // SAFETY: signature (const T*, u8*, float*, int*, u64 G, u64 L, QSpec, u64*,
                    // u64*) matches; lengths as for the team kernel; the block-uniform group loop
                    // keeps every __syncthreads reached by all 128 threads (4 warps ≤ 32 slots).
                    unsafe { l.launch(cfg) }
                        .map_err(self.err("cuLaunchKernel(quant_rows_block)"))?;
                }
            }
            Path::TwoPass { outer, channels, inner } => {
                let n = x.len() as u64;
                let eb = std::mem::size_of::<T>() as u64;
                let one_pass = if channels == 1 && self.tuning().quant_one_pass_tensor {
                    self.one_pass_chunk(n, eb)
                } else {
                    None
                };
                if let Some((blocks, chunk)) = one_pass {
                    let f = kernels.get(kernel_name("quant_tensor_coop", suf))?;
                    let smem = u32::try_from(chunk * 16).unwrap_or(u32::MAX);
                    let cfg = LaunchConfig {
                        grid_dim: (blocks, 1, 1),
                        block_dim: (ONE_PASS_THREADS, 1, 1),
                        shared_mem_bytes: smem,
                    };
                    let nv = n * eb / 16;
                    let barrier_ptr = bad_ptr + 16;
                    let mut l = self.stream.launch_builder(f);
                    l.arg(&x.slice)
                        .arg(&nv)
                        .arg(&chunk)
                        .arg(&mut out.codes.slice)
                        .arg(&mut out.scales.slice)
                        .arg(&mut out.zero_points.slice)
                        .arg(&mut out.ord.slice)
                        .arg(&s)
                        .arg(&bad_ptr)
                        .arg(&bad_scale_ptr)
                        .arg(&barrier_ptr);
                    // SAFETY: signature (const T*, u64 nv, u64 chunk, u8* q, float* scales,
                    // int* zps, u32* ord, QSpec, u64* bad, u64* bad_scale, u32* barrier)
                    // matches; x holds nv 16-byte vectors (n·sizeof(T) = 16·nv, checked by
                    // one_pass_chunk) and codes n bytes; block b reads vectors
                    // [b·chunk, min(nv, (b+1)·chunk)) into chunk·16 bytes of dynamic shared
                    // memory (≤ the limit set on the function at load); ord holds 2 words and
                    // was reset by quant_init, as was the barrier word (third u64 of `flags`).
                    // The launch is cooperative, so all `blocks` blocks (sized from the
                    // occupancy of this configuration) are resident and the grid barrier
                    // cannot deadlock; the driver refuses the launch otherwise.
                    unsafe { l.launch_cooperative(cfg) }
                        .map_err(self.err("cuLaunchCooperativeKernel(quant_tensor_coop)"))?;
                    return Ok(());
                }
                if channels == 1 {
                    let f = kernels.get(kernel_name("quant_stats_all", suf))?;
                    let cfg = grid_stride_config(n.div_ceil(8), sms);
                    let mut l = self.stream.launch_builder(f);
                    l.arg(&x.slice).arg(&n).arg(&mut out.ord.slice).arg(&s).arg(&bad_ptr);
                    // SAFETY: signature (const T*, u64 n, u32* ord, QSpec, u64* bad); x holds n
                    // elements, ord 2 words; 256-thread blocks (≤ 32 warps of shared slots).
                    unsafe { l.launch(cfg) }
                        .map_err(self.err("cuLaunchKernel(quant_stats_all)"))?;
                } else if cols_vectorizable(channels, inner, std::mem::size_of::<T>() as u64) {
                    let w = 16 / std::mem::size_of::<T>() as u64;
                    let f = kernels.get(kernel_name("quant_stats_cols", suf))?;
                    // 16-bit inputs (packed statistics, 8 rows in flight): 2 blocks per SM, a
                    // quarter of the slices' atomics; f32: 8
                    let per_sm = if w == 8 { 2 } else { 8 };
                    let cfg = cols_config(channels * inner / w, outer, sms, per_sm);
                    let interleave = cols_interleave(&self.tuning());
                    let mut l = self.stream.launch_builder(f);
                    l.arg(&x.slice)
                        .arg(&outer)
                        .arg(&channels)
                        .arg(&inner)
                        .arg(&mut out.ord.slice)
                        .arg(&s)
                        .arg(&bad_ptr)
                        .arg(&interleave);
                    // SAFETY: signature (const T*, u64 outer, u64 channels, u64 inner, u32* ord,
                    // QSpec, u64* bad, u32 interleave); x holds outer·channels·inner elements,
                    // a multiple of the 16-byte vector per outer row (checked by
                    // cols_vectorizable), so every vector is aligned and in bounds; ord holds
                    // 2·channels words and every channel index is below `channels`; rows are
                    // walked below `outer` in either order.
                    unsafe { l.launch(cfg) }
                        .map_err(self.err("cuLaunchKernel(quant_stats_cols)"))?;
                } else {
                    let f = kernels.get(kernel_name("quant_stats_channels", suf))?;
                    let ci = channels * inner;
                    let mut cfg = grid_stride_config(ci, sms);
                    // split the outer loop so the grid fills the device
                    let want = u64::from(sms.max(1)) * 8;
                    cfg.grid_dim.1 = (want.div_ceil(u64::from(cfg.grid_dim.0)))
                        .clamp(1, outer.min(65_535)) as u32;
                    let mut l = self.stream.launch_builder(f);
                    l.arg(&x.slice)
                        .arg(&outer)
                        .arg(&channels)
                        .arg(&inner)
                        .arg(&mut out.ord.slice)
                        .arg(&s)
                        .arg(&bad_ptr);
                    // SAFETY: signature (const T*, u64 outer, u64 channels, u64 inner, u32* ord,
                    // QSpec, u64* bad); x holds outer·channels·inner elements; ord holds
                    // 2·channels words; indices are bounded by those products.
                    unsafe { l.launch(cfg) }
                        .map_err(self.err("cuLaunchKernel(quant_stats_channels)"))?;
                }
                {
                    let f = kernels.get("quant_params")?;
                    let cfg = grid_stride_config(channels, sms);
                    let mut l = self.stream.launch_builder(f);
                    l.arg(&out.ord.slice)
                        .arg(&channels)
                        .arg(&s)
                        .arg(&mut out.scales.slice)
                        .arg(&mut out.zero_points.slice)
                        .arg(&mut out.invs.slice)
                        .arg(&bad_scale_ptr);
                    // SAFETY: signature (const u32* ord, u64 G, QSpec, float*, int*, float*,
                    // u64*); every buffer holds G (ord: 2·G) entries.
                    unsafe { l.launch(cfg) }.map_err(self.err("cuLaunchKernel(quant_params)"))?;
                }
                let vec = cols_vectorizable(channels, inner, std::mem::size_of::<T>() as u64);
                let w = 16 / std::mem::size_of::<T>() as u64;
                if inner == 1 && channels.is_multiple_of(w) && apply_cols(&self.tuning()) {
                    let f = kernels.get(kernel_name("quant_apply_cols", suf))?;
                    let cfg = cols_config(channels / w, outer, sms, 8);
                    let interleave = cols_interleave(&self.tuning());
                    let mut l = self.stream.launch_builder(f);
                    l.arg(&x.slice)
                        .arg(&outer)
                        .arg(&channels)
                        .arg(&out.scales.slice)
                        .arg(&out.zero_points.slice)
                        .arg(&out.invs.slice)
                        .arg(&s)
                        .arg(&mut out.codes.slice)
                        .arg(&interleave);
                    // SAFETY: signature (const T*, u64 outer, u64 channels, const float*,
                    // const int*, const float*, QSpec, u8*, u32 interleave); x and codes hold
                    // outer·channels elements (inner == 1), channels a multiple of the 16-byte
                    // vector's W elements, so every vector and its W-byte code store are aligned
                    // and in bounds; the parameter arrays hold `channels` entries and thread p
                    // reads entries p·W .. p·W + W − 1 < channels (16-byte loads, aligned as the
                    // arrays are 256-byte aligned and p·W·4 is a multiple of 16).
                    unsafe { l.launch(cfg) }
                        .map_err(self.err("cuLaunchKernel(quant_apply_cols)"))?;
                } else {
                    let f = if vec {
                        kernels.get(kernel_name("quant_apply_vec", suf))?
                    } else {
                        kernels.get(kernel_name("quant_apply", suf))?
                    };
                    let cfg = grid_stride_config(n.div_ceil(16), sms);
                    let gi = out.path.group_index(n);
                    let mut l = self.stream.launch_builder(f);
                    l.arg(&x.slice)
                        .arg(&n)
                        .arg(&gi)
                        .arg(&out.scales.slice)
                        .arg(&out.zero_points.slice)
                        .arg(&out.invs.slice)
                        .arg(&s)
                        .arg(&mut out.codes.slice);
                    // SAFETY: signature (const T*, u64 n, GroupIndex, const float*, const int*,
                    // const float*, QSpec, u8*); x and codes hold n elements, the parameter arrays
                    // `channels`; group indices (i / inner) % channels < channels (the division
                    // magics are exact for n < 2^32, else plain division is used); quads are used
                    // only when inner % 4 == 0, so they never straddle a group and stay aligned;
                    // the vector kernel (same signature) runs only when a 16-byte vector lies in
                    // one group or covers consecutive groups (cols_vectorizable), and reads the
                    // parameters of at most W consecutive groups below `channels`.
                    unsafe { l.launch(cfg) }.map_err(self.err("cuLaunchKernel(quant_apply)"))?;
                }
            }
        }
        Ok(())
    }

    /// Quantizes `x` (row-major, `shape`) under `spec` on the device and checks for errors.
    ///
    /// # Errors
    /// As [`quant_output`](Self::quant_output), [`quantize_into`](Self::quantize_into) and
    /// [`DeviceQuantized::check`].
    pub fn quantize<T: FloatElem + Into<f32>>(
        &self,
        name: &str,
        spec: &QuantSpec,
        x: &DeviceBuffer<T>,
        shape: &[usize],
    ) -> Result<DeviceQuantized> {
        let mut out = self.quant_output(name, spec, shape)?;
        self.quantize_into(x, &mut out)?;
        out.check(self, x)?;
        Ok(out)
    }

    /// Copies a host [`QuantizedTensor`] to the device (for dequantization or GEMM).
    ///
    /// # Errors
    /// [`CudaError::Quant`] if `q` is inconsistent; [`CudaError::Driver`] on copy failure.
    pub fn upload_quantized(&self, q: &QuantizedTensor) -> Result<DeviceQuantized> {
        q.validate()?;
        let mut out = self.quant_output("<quantized>", &q.spec, &q.shape)?;
        let codes: Vec<i8> = match &q.codes {
            Codes::I8(c) => c.clone(),
            Codes::U8(c) => c.iter().map(|&b| b as i8).collect(),
        };
        out.codes = self.upload(&codes)?;
        out.scales = self.upload(&q.scales)?;
        out.zero_points = self.upload(&q.zero_points)?;
        out.uniform_zp = match q.zero_points.split_first() {
            Some((&z, rest)) if rest.iter().all(|&r| r == z) => Some(z),
            _ => None,
        };
        Ok(out)
    }

    /// Dequantizes on the device: `y[i] = ((q[i] − zp[g]) as f32) · scale[g]`, rounded once to
    /// `O` (bit-identical to the CPU for `O = f32`).
    ///
    /// # Errors
    /// [`CudaError::Shape`] if `y` does not hold `q.numel()` elements; [`CudaError::Driver`].
    pub fn dequantize_into<O: FloatElem>(
        &self,
        q: &DeviceQuantized,
        y: &mut DeviceBuffer<O>,
    ) -> Result<()> {
        if y.len() != q.numel() {
            return Err(CudaError::shape(
                "dequantize",
                format!("output holds {} elements, `{}` has {}", y.len(), q.name, q.numel()),
            ));
        }
        let kernels = self.kernels()?;
        let t = self.tuning();
        let f = kernels.get(kernel_name("dequant_4b", O::SUFFIX))?;
        let n = q.numel() as u64;
        let gi = q.path.group_index(n);
        let signed = i32::from(q.spec.range.is_signed());
        let mut cfg = grid_stride_config(n.div_ceil(8), self.info().multiprocessors);
        let w = if std::mem::size_of::<O>() == 4 { 4 } else { 8 };
        let max =
            u64::from(self.info().multiprocessors.max(1)) * u64::from(t.dequant_blocks_per_sm);
        cfg.grid_dim.0 = n.div_ceil(w * 256).clamp(1, max) as u32;
        let zp_uniform = i32::from(q.uniform_zp.is_some());
        let zp_value = q.uniform_zp.unwrap_or(0);
        let mut l = self.stream.launch_builder(f);
        l.arg(&q.codes.slice)
            .arg(&signed)
            .arg(&n)
            .arg(&gi)
            .arg(&q.scales.slice)
            .arg(&q.zero_points.slice)
            .arg(&zp_uniform)
            .arg(&zp_value)
            .arg(&mut y.slice);
        // SAFETY: signature (const u8*, int, u64 n, GroupIndex, const float*, const int*,
        // int zp_uniform, int zp_value, O*) as pushed above; when zp_uniform is 1 every group's
        // zero point is zp_value; codes and y hold n elements, scales/zps one per group and
        // every group index is below the group count; vectors of W = 4 (f32) or 8 (16-bit)
        // codes only when inner % W == 0 (aligned, within one group); the block is 256
        // threads (grid_stride_config), whole warps, as the warp-blocked loop needs.
        unsafe { l.launch(cfg) }.map_err(self.err("cuLaunchKernel(dequant)"))?;
        Ok(())
    }
}

/// The CUDA implementation of [`Quantizer`]: the same codes and scales as
/// [`CpuQuantizer`](crate::CpuQuantizer), bit for bit, computed on the GPU.
///
/// ```no_run
/// use std::sync::Arc;
/// use eai_quant::cuda::{CudaDevice, CudaQuantizer};
/// use eai_quant::{QuantSpec, Quantizer};
/// let dev = Arc::new(CudaDevice::open(0)?);
/// let q = CudaQuantizer::new(dev, QuantSpec::int8_weight())?;
/// let w = ndarray::Array2::from_shape_fn((64, 256), |(i, j)| ((i * 256 + j) as f32).cos());
/// let qt = q.quantize_named("w", w.view().into_dyn())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct CudaQuantizer {
    dev: Arc<CudaDevice>,
    spec: QuantSpec,
}

impl CudaQuantizer {
    /// A quantizer for `spec` on `dev`.
    ///
    /// # Errors
    /// [`QuantError::InvalidSpec`] when the spec does not validate.
    pub fn new(dev: Arc<CudaDevice>, spec: QuantSpec) -> crate::Result<Self> {
        spec.validate()?;
        Ok(Self { dev, spec })
    }

    /// The device this quantizer runs on.
    pub fn device(&self) -> &Arc<CudaDevice> {
        &self.dev
    }
}

/// Maps a backend error into the crate's error: quantization errors pass through unchanged;
/// device failures (driver, NVRTC, out of memory) become [`QuantError::Backend`] naming the
/// device `cuda:<ordinal> (<name>)`, the operation, and the CUDA error as source.
fn to_quant_error(dev: &CudaDevice, op: &'static str, e: CudaError) -> QuantError {
    match e {
        CudaError::Quant(q) => q,
        other => QuantError::Backend {
            device: format!("cuda:{} ({})", dev.info().ordinal, dev.info().name),
            op,
            message: other.to_string(),
            source: Box::new(other),
        },
    }
}

impl Quantizer for CudaQuantizer {
    fn spec(&self) -> &QuantSpec {
        &self.spec
    }

    fn quantize_named(&self, name: &str, x: ArrayViewD<'_, f32>) -> crate::Result<QuantizedTensor> {
        let shape = x.shape().to_vec();
        let run = || -> Result<QuantizedTensor> {
            // validate before touching the device, so errors match the CPU path exactly
            self.spec.validate()?;
            GroupLayout::new(name, &shape, self.spec.granularity)?;
            let dx = match x.as_slice() {
                Some(s) => self.dev.upload(s)?,
                None => self.dev.upload(&x.iter().copied().collect::<Vec<f32>>())?,
            };
            let q = self.dev.quantize(name, &self.spec, &dx, &shape)?;
            q.to_host(&self.dev)
        };
        run().map_err(|e| to_quant_error(&self.dev, "quantize", e))
    }

    fn dequantize(&self, q: &QuantizedTensor) -> crate::Result<ArrayD<f32>> {
        let run = || -> Result<ArrayD<f32>> {
            let dq = self.dev.upload_quantized(q)?;
            let mut y = self.dev.zeros::<f32>(q.numel())?;
            self.dev.dequantize_into(&dq, &mut y)?;
            let v = self.dev.download(&y)?;
            ArrayD::from_shape_vec(IxDyn(&q.shape), v).map_err(|e| {
                CudaError::Quant(QuantError::ShapeMismatch {
                    context: "dequantize".into(),
                    detail: e.to_string(),
                })
            })
        };
        run().map_err(|e| to_quant_error(&self.dev, "dequantize", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_names_exist() {
        for &base in KERNEL_BASES {
            for suf in ["f32", "f16", "bf16"] {
                let k = kernel_name(base, suf);
                assert_eq!(k, format!("{base}_{suf}"));
                assert!(super::super::kernels::ENTRY_POINTS.contains(&k));
            }
        }
    }
}
