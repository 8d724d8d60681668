//! INT8 GEMM on Hopper's warpgroup tensor-core instructions (`wgmma`) with the dequantize in
//! its epilogue (`kernels/gemm_wgmma.cu`): `y[m, n] = O(f32(Σₖ x[m, k]·w[n, k]) · (sx[m] ·
//! sw[n]) (+ bias[n]))` without an int32 matrix in memory.
//!
//! The kernel is a persistent, warp-specialized GEMM: per block one producer warpgroup whose
//! single thread loads 128 × 128-byte tiles of X and 256 × 128-byte tiles of W with the TMA
//! unit (tensor maps encoded here with `cuTensorMapEncodeTiled`, 128-byte swizzle, zero fill
//! outside the matrix) into a ring of [`STAGES`] shared-memory stages, and two consumer
//! warpgroups that each multiply a 64 × 256 half of the 128 × 256 output tile
//! (`wgmma.mma_async.m64n256k32.s32.s8.s8`, 128 int32 accumulators per thread) and then
//! dequantize it from registers straight to global memory. The integer sum is exact, and the
//! epilogue evaluates the same correctly rounded f32 operations in the same order as the
//! separate dequantize kernel, so the result is bit-identical to
//! [`gemm_i8`](CudaDevice::gemm_i8) + [`gemm_dequant`](CudaDevice::gemm_dequant) and to the
//! CPU reference.
//!
//! Four kernels (see [`WgmmaKernel`]): v1 as above, one CTA per tile; v2 the same CTA in
//! clusters of 2 along M whose producers each load half of the shared W tile and multicast it
//! into both CTAs (2/3 of v1's L2 → shared-memory traffic per tile); v3 in clusters of 4 (each
//! loads a quarter: 1/2 of v1's traffic); v4 v2's mainloop (3 stages) with the epilogue staged
//! in shared memory and written by TMA stores, so the consumers return to the MMAs without
//! waiting on 64 global stores each. All give the same bits. v4 is the default, and
//! [`CudaDevice::gemm_i8_dequant`] takes it where it applies and the output has enough tiles
//! ([`use_wgmma`](super::use_wgmma); H100, sessions 14–15: the fastest path from M ≈ 256–512
//! up, cuBLASLt below; `Tuning::gemm_wgmma` forces either).
//!
//! Applies to compute capability 9.0 only (the module is compiled for `compute_90a`) and to
//! shapes with `K % 16 == 0` (the TMA row stride must be a multiple of 16 bytes) besides the
//! INT8 GEMM's own `N % 4 == 0`; see [`wgmma_shape_issue`].

use std::ffi::c_void;

use cudarc::driver::sys as drv;
use cudarc::driver::{DevicePtr, DevicePtrMut, DeviceRepr, LaunchConfig, PushKernelArg};

use super::device::{CudaDevice, DeviceBuffer};
use super::error::{CudaError, Result};
use super::gemm::{FloatElem, GemmShape, MAX_K_INT8};

/// Output rows per block tile (two consumer warpgroups of 64 rows).
pub(crate) const TILE_M: usize = 128;
/// Output columns per block tile (one `m64n256k32` wgmma per consumer and 32 bytes of K).
pub(crate) const TILE_N: usize = 256;
/// Bytes of K per pipeline stage: one 128-byte swizzle row.
pub(crate) const TILE_K: usize = 128;
/// Pipeline stages in shared memory.
pub(crate) const STAGES: usize = 4;
/// Threads per block: two consumer warpgroups and one producer warpgroup.
pub(crate) const THREADS: u32 = 384;
/// Bytes of one stage: the X tile and the W tile.
pub(crate) const STAGE_BYTES: usize = (TILE_M + TILE_N) * TILE_K;
/// Dynamic shared memory of one block: the ring plus 1 KiB to align it to 1024 bytes (the
/// 128-byte swizzle atom).
pub(crate) const SMEM_BYTES: usize = STAGES * STAGE_BYTES + 1024;
/// Pipeline stages of v4 (one fewer, for the output staging buffers).
pub(crate) const STAGES4: usize = 3;
/// v4's output staging buffer per consumer warpgroup: 64 rows × 256 f16/bf16 (one pass) or
/// 64 × 128 f32 (two passes), as four TMA boxes of 64 rows × 128 bytes.
pub(crate) const OUT_BYTES4: usize = 32 * 1024;
/// Rows of one box of v4's output tensor map (one consumer warpgroup's rows).
pub(crate) const OUT_BOX_ROWS: usize = 64;
/// Bytes along N of one box of v4's output tensor map (the 128-byte swizzle span).
pub(crate) const OUT_BOX_BYTES: usize = 128;
/// Dynamic shared memory of a v4 block: 3-stage ring, two staging buffers, 1 KiB of alignment.
pub(crate) const SMEM4_BYTES: usize = STAGES4 * STAGE_BYTES + 2 * OUT_BYTES4 + 1024;

/// Dynamic shared memory that entry point `name` of the wgmma module is launched with (its
/// opt-in when the module is loaded).
pub(crate) fn smem_bytes_of_entry(name: &str) -> usize {
    if name.starts_with("gemm_wgmma4_") { SMEM4_BYTES } else { SMEM_BYTES }
}

/// Which wgmma kernel [`CudaDevice::gemm_i8_dequant_wgmma_kernel`] launches (the same result,
/// bit for bit). The default is v4, the fastest measured (H100, session 14: 4096³ 1.50–1.76×
/// cuBLAS FP16 over three processes, 8192³ 2.10–2.31×; v1 1.21× / 1.64× in session 13, v2
/// 1.16× / 1.76×, v3 1.05× / 1.83×; docs/results/session14.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WgmmaKernel {
    /// One CTA per 128 × 256 tile, W's tile loaded by every CTA (session 13).
    V1,
    /// Clusters of 2 CTAs along M sharing W's tile through TMA multicast (each loads half).
    V2,
    /// As v2 in clusters of 4 (each CTA loads a quarter of W's tile).
    V3,
    /// v2 (clusters of 2) with a 3-stage ring and the epilogue overlapped with the next tile:
    /// dequantized into shared memory and written by TMA stores (16-bit outputs with
    /// `N % 8 != 0`, whose row stride a tensor map cannot take, store from registers as v2).
    #[default]
    V4,
}

impl WgmmaKernel {
    /// Every kernel, for tests and benches.
    pub const ALL: [WgmmaKernel; 4] =
        [WgmmaKernel::V1, WgmmaKernel::V2, WgmmaKernel::V3, WgmmaKernel::V4];

    /// Short name for reports (`v1` … `v4`).
    pub fn name(self) -> &'static str {
        match self {
            WgmmaKernel::V1 => "v1",
            WgmmaKernel::V2 => "v2",
            WgmmaKernel::V3 => "v3",
            WgmmaKernel::V4 => "v4",
        }
    }

    /// CTAs per cluster (along M; `WG2_CLUSTER` / `WG3_CLUSTER` in the kernel source).
    pub fn cluster(self) -> usize {
        match self {
            WgmmaKernel::V1 => 1,
            WgmmaKernel::V2 | WgmmaKernel::V4 => 2,
            WgmmaKernel::V3 => 4,
        }
    }

    /// Dynamic shared memory of one block (`SMEM_BYTES`, v4: `SMEM4_BYTES`).
    pub fn smem_bytes(self) -> usize {
        match self {
            WgmmaKernel::V4 => SMEM4_BYTES,
            _ => SMEM_BYTES,
        }
    }

    /// Whether the kernel stores its epilogue through Y's tensor map (v4: it takes the map and
    /// the `tma_y` flag).
    fn tma_store(self) -> bool {
        self == WgmmaKernel::V4
    }

    /// Entry point for output type suffix `f32`, `f16` or `bf16`.
    fn entry(self, suffix: &str) -> &'static str {
        match (self, suffix) {
            (WgmmaKernel::V1, "f32") => "gemm_wgmma_f32",
            (WgmmaKernel::V1, "f16") => "gemm_wgmma_f16",
            (WgmmaKernel::V1, _) => "gemm_wgmma_bf16",
            (WgmmaKernel::V2, "f32") => "gemm_wgmma2_f32",
            (WgmmaKernel::V2, "f16") => "gemm_wgmma2_f16",
            (WgmmaKernel::V2, _) => "gemm_wgmma2_bf16",
            (WgmmaKernel::V3, "f32") => "gemm_wgmma3_f32",
            (WgmmaKernel::V3, "f16") => "gemm_wgmma3_f16",
            (WgmmaKernel::V3, _) => "gemm_wgmma3_bf16",
            (WgmmaKernel::V4, "f32") => "gemm_wgmma4_f32",
            (WgmmaKernel::V4, "f16") => "gemm_wgmma4_f16",
            (WgmmaKernel::V4, _) => "gemm_wgmma4_bf16",
        }
    }
}

/// Why the wgmma kernel cannot compute `shape` (`None`: it can). Shape checks only; the device
/// must also be compute capability 9.0.
pub fn wgmma_shape_issue(shape: &GemmShape) -> Option<String> {
    let GemmShape { m, n, k } = *shape;
    if m == 0 || n == 0 || k == 0 {
        return Some(format!("empty shape M={m} N={n} K={k}"));
    }
    if !k.is_multiple_of(16) {
        return Some(format!("K = {k} is not a multiple of 16 (TMA row stride)"));
    }
    if !n.is_multiple_of(4) {
        return Some(format!("N = {n} is not a multiple of 4"));
    }
    if k > MAX_K_INT8 {
        return Some(format!("K = {k} could overflow the int32 accumulator"));
    }
    // tile coordinates are signed 32-bit in the TMA instruction, element offsets 64-bit
    if m > i32::MAX as usize - TILE_M || n > i32::MAX as usize - TILE_N {
        return Some(format!("M = {m} or N = {n} exceeds the TMA coordinate range"));
    }
    None
}

/// Output tiles of `shape` (128 × 256 each).
pub fn wgmma_tiles(shape: &GemmShape) -> usize {
    shape.m.div_ceil(TILE_M) * shape.n.div_ceil(TILE_N)
}

/// Launch configuration: one persistent block per multiprocessor (fewer when there are fewer
/// tiles), `THREADS` threads, `SMEM_BYTES` of dynamic shared memory.
pub fn wgmma_launch_config(shape: &GemmShape, sms: u32) -> LaunchConfig {
    let blocks = wgmma_tiles(shape).min(sms.max(1) as usize).max(1);
    LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: SMEM_BYTES as u32,
    }
}

/// Cluster tiles of `shape` for clusters of `cluster` CTAs along M (`cluster` 128-row tiles
/// stacked × 256 columns).
pub fn wgmma_cluster_tiles(shape: &GemmShape, cluster: usize) -> usize {
    shape.m.div_ceil(TILE_M).div_ceil(cluster.max(1)) * shape.n.div_ceil(TILE_N)
}

/// Launch configuration of a cluster kernel (v2, v3): persistent clusters of `cluster` CTAs, at
/// most `max_clusters` (the device's co-resident clusters; fewer when there are fewer cluster
/// tiles), so the grid is a multiple of `cluster`.
pub fn wgmma_cluster_launch_config(
    shape: &GemmShape,
    cluster: usize,
    max_clusters: u32,
) -> LaunchConfig {
    let clusters = wgmma_cluster_tiles(shape, cluster).min(max_clusters.max(1) as usize).max(1);
    LaunchConfig {
        grid_dim: ((clusters * cluster.max(1)) as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: SMEM_BYTES as u32,
    }
}

/// Geometry of the 2-D tensor map of a row-major `rows × k` int8 matrix read in boxes of
/// `box_rows × TILE_K` bytes: (global dims innermost first, row stride in bytes, box dims).
pub(crate) fn tensor_map_geometry(
    rows: usize,
    k: usize,
    box_rows: usize,
) -> ([u64; 2], u64, [u32; 2]) {
    ([k as u64, rows as u64], k as u64, [TILE_K as u32, box_rows as u32])
}

/// A `CUtensorMap` as a kernel parameter (128 opaque bytes; the kernel's `TmaDesc`).
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct TensorMapArg([u64; 16]);

// SAFETY: a plain 128-byte value with the size and alignment of the kernel's `TmaDesc`
// parameter (`struct __align__(64) { u64 v[16]; }`); the driver copies it by value.
unsafe impl DeviceRepr for TensorMapArg {}

/// Geometry of v4's output tensor map of a row-major `m × n` matrix of `elem`-byte values,
/// written in boxes of [`OUT_BOX_BYTES`] along N × [`OUT_BOX_ROWS`] rows: (global dims
/// innermost first, row stride in bytes, box dims in elements). `None` where the row stride is
/// not a multiple of 16 bytes (a tensor map's rule): 16-bit outputs with `n % 8 != 0`.
pub(crate) fn output_map_geometry(
    m: usize,
    n: usize,
    elem: usize,
) -> Option<([u64; 2], u64, [u32; 2])> {
    let stride = (n * elem) as u64;
    stride.is_multiple_of(16).then_some((
        [n as u64, m as u64],
        stride,
        [(OUT_BOX_BYTES / elem) as u32, OUT_BOX_ROWS as u32],
    ))
}

/// Encodes the tensor map of the `rows × k` int8 matrix at device address `ptr`.
///
/// # Safety
/// `ptr` is a 16-byte aligned device allocation of at least `rows · k` bytes, `k % 16 == 0`;
/// the map is used only while that allocation lives.
unsafe fn encode_tensor_map(
    ptr: u64,
    rows: usize,
    k: usize,
    box_rows: usize,
) -> std::result::Result<TensorMapArg, cudarc::driver::DriverError> {
    let (dims, stride, boxes) = tensor_map_geometry(rows, k, box_rows);
    // SAFETY: forwarded from the caller (int8 elements, 16-byte aligned rows of k bytes)
    unsafe {
        encode_map(
            ptr,
            drv::CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_UINT8,
            dims,
            stride,
            boxes,
            drv::CUtensorMapL2promotion::CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
        )
    }
}

/// Encodes v4's output tensor map of the `m × n` matrix of `O` at device address `ptr`
/// (`None`: its row stride does not allow one, see [`output_map_geometry`]).
///
/// # Safety
/// `ptr` is a 16-byte aligned device allocation of at least `m · n` values of `O`; the map is
/// used only while that allocation lives.
unsafe fn encode_output_map<O: FloatElem>(
    ptr: u64,
    m: usize,
    n: usize,
) -> std::result::Result<Option<TensorMapArg>, cudarc::driver::DriverError> {
    use drv::CUtensorMapDataType as T;
    let (dtype, elem) = match O::SUFFIX {
        "f32" => (T::CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 4),
        "f16" => (T::CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2),
        _ => (T::CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2),
    };
    debug_assert_eq!(std::mem::size_of::<O>(), elem);
    let Some((dims, stride, boxes)) = output_map_geometry(m, n, elem) else { return Ok(None) };
    // SAFETY: forwarded from the caller; the stride is a multiple of 16 (checked above)
    unsafe {
        encode_map(
            ptr,
            dtype,
            dims,
            stride,
            boxes,
            drv::CUtensorMapL2promotion::CU_TENSOR_MAP_L2_PROMOTION_NONE,
        )
    }
    .map(Some)
}

/// `cuTensorMapEncodeTiled` of a 2-D map with 128-byte swizzle and zero fill.
///
/// # Safety
/// `ptr` is a 16-byte aligned device allocation holding `dims[1]` rows of `stride` bytes,
/// `stride % 16 == 0`, `boxes[0]` elements span at most 128 bytes; the map is used only while
/// that allocation lives.
unsafe fn encode_map(
    ptr: u64,
    dtype: drv::CUtensorMapDataType,
    dims: [u64; 2],
    stride: u64,
    boxes: [u32; 2],
    l2: drv::CUtensorMapL2promotion,
) -> std::result::Result<TensorMapArg, cudarc::driver::DriverError> {
    let strides = [stride];
    let elem_strides = [1u32, 1u32];
    let mut map = std::mem::MaybeUninit::<drv::CUtensorMap>::zeroed();
    // SAFETY: every array has the length the rank (2) requires (strides: rank − 1), the map is
    // a valid out-pointer, and the caller guarantees the address, alignment and stride rules.
    unsafe {
        drv::cuTensorMapEncodeTiled(
            map.as_mut_ptr(),
            dtype,
            2,
            ptr as *mut c_void,
            dims.as_ptr(),
            strides.as_ptr(),
            boxes.as_ptr(),
            elem_strides.as_ptr(),
            drv::CUtensorMapInterleave::CU_TENSOR_MAP_INTERLEAVE_NONE,
            drv::CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_128B,
            l2,
            drv::CUtensorMapFloatOOBfill::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
        )
        .result()?;
    }
    // SAFETY: the driver initialized the map (the call succeeded).
    let map = unsafe { map.assume_init() };
    Ok(TensorMapArg(map.opaque))
}

impl CudaDevice {
    /// Whether [`gemm_i8_dequant_wgmma`](Self::gemm_i8_dequant_wgmma) can compute `shape` on
    /// this device (compute capability 9.0 and [`wgmma_shape_issue`] is `None`).
    pub fn wgmma_applies(&self, shape: &GemmShape) -> bool {
        self.info().compute_capability == (9, 0) && wgmma_shape_issue(shape).is_none()
    }

    /// Clusters of `kernel` (v2, v3) that fit on the device at once (its persistent grid):
    /// `cuOccupancyMaxActiveClusters` (a cluster lives within one GPC), at most
    /// multiprocessors / cluster size, which is also the answer where the query fails. Queried
    /// once per loaded module; v1 (no clusters): the multiprocessors.
    ///
    /// # Errors
    /// As [`gemm_i8_dequant_wgmma`](Self::gemm_i8_dequant_wgmma) when loading the module.
    pub fn wgmma_clusters(&self, kernel: WgmmaKernel) -> Result<u32> {
        let sms = self.info().multiprocessors;
        let cl = kernel.cluster();
        if cl == 1 {
            return Ok(sms);
        }
        let kernels = self.wgmma_kernels()?;
        let most = (sms / cl as u32).max(1);
        // the three output types share one resource footprint
        let func = kernels.get(kernel.entry("f16"))?;
        let slot = &kernels.wgmma_clusters[match kernel {
            WgmmaKernel::V3 => 1,
            WgmmaKernel::V4 => 2,
            _ => 0,
        }];
        Ok(*slot.get_or_init(|| {
            let mut probe = wgmma_cluster_launch_config(&GemmShape::new(1, 1, 16), cl, 1);
            probe.shared_mem_bytes = kernel.smem_bytes() as u32;
            func.occupancy_max_active_clusters(probe, &self.stream)
                .ok()
                .filter(|&c| c > 0)
                .map_or(most, |c| c.min(most))
        }))
    }

    /// INT8 GEMM with the dequantize fused into the epilogue of our Hopper wgmma kernel
    /// ([`WgmmaKernel::default`]; see the `cuda::wgmma` module docs): the same result, bit for bit, as
    /// [`gemm_i8_dequant`](Self::gemm_i8_dequant) on the cuBLASLt path, without its int32
    /// matrix. Never falls back: on another device or an unsupported shape it is an error.
    ///
    /// # Errors
    /// [`CudaError::Shape`] on mismatched lengths or a shape the kernel does not take;
    /// [`CudaError::Unsupported`] on a device other than compute capability 9.0;
    /// [`CudaError::Compile`] / [`CudaError::Driver`] from compiling, loading or launching.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_i8_dequant_wgmma<O: FloatElem>(
        &self,
        x: &DeviceBuffer<i8>,
        w: &DeviceBuffer<i8>,
        sx: &DeviceBuffer<f32>,
        sw: &DeviceBuffer<f32>,
        bias: Option<&DeviceBuffer<f32>>,
        y: &mut DeviceBuffer<O>,
        shape: GemmShape,
    ) -> Result<()> {
        self.gemm_i8_dequant_wgmma_kernel(x, w, sx, sw, bias, y, shape, WgmmaKernel::default())
    }

    /// [`gemm_i8_dequant_wgmma`](Self::gemm_i8_dequant_wgmma) with the kernel named (for A/B
    /// comparisons; both give the same bits).
    ///
    /// # Errors
    /// As [`gemm_i8_dequant_wgmma`](Self::gemm_i8_dequant_wgmma).
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_i8_dequant_wgmma_kernel<O: FloatElem>(
        &self,
        x: &DeviceBuffer<i8>,
        w: &DeviceBuffer<i8>,
        sx: &DeviceBuffer<f32>,
        sw: &DeviceBuffer<f32>,
        bias: Option<&DeviceBuffer<f32>>,
        y: &mut DeviceBuffer<O>,
        shape: GemmShape,
        kernel: WgmmaKernel,
    ) -> Result<()> {
        const OP: &str = "int8 wgmma gemm + dequant";
        let (m, n, k) = (shape.m, shape.n, shape.k);
        shape.check_fused_lens(
            OP,
            x.len(),
            w.len(),
            sx.len(),
            sw.len(),
            bias.map(|b| b.len()),
            y.len(),
        )?;
        if let Some(issue) = wgmma_shape_issue(&shape) {
            return Err(CudaError::shape(OP, issue));
        }
        let kernels = self.wgmma_kernels()?;
        let name = kernel.entry(O::SUFFIX);
        let func = kernels.get(name)?;
        let stream = &self.stream;
        let (xp, _gx) = x.slice.device_ptr(stream);
        let (wp, _gw) = w.slice.device_ptr(stream);
        let (sxp, _gsx) = sx.slice.device_ptr(stream);
        let (swp, _gsw) = sw.slice.device_ptr(stream);
        let bias_g = bias.map(|b| b.slice.device_ptr(stream));
        let bp = bias_g.as_ref().map_or(0, |(p, _)| *p);
        let (yp, _gy) = y.slice.device_ptr_mut(stream);
        // v2, v3: each CTA of a cluster loads its part of W's 256-row box
        let w_box = TILE_N / kernel.cluster();
        // SAFETY: X and W are whole device allocations (256-byte aligned) of M·K and N·K bytes,
        // K % 16 == 0 (checked above); the maps are used only by the launch below, which is
        // enqueued while the buffers are borrowed (stream order keeps them alive until it runs).
        // Encoding is host-only work (no driver round trip), a few µs at most beside a launch.
        let (tx, tw) = unsafe {
            (
                encode_tensor_map(xp, m, k, TILE_M).map_err(self.err("cuTensorMapEncodeTiled"))?,
                encode_tensor_map(wp, n, k, w_box).map_err(self.err("cuTensorMapEncodeTiled"))?,
            )
        };
        let (m32, n32, k32) = (m as u32, n as u32, k as u32);
        let mut cfg = match kernel {
            WgmmaKernel::V1 => wgmma_launch_config(&shape, self.info().multiprocessors),
            // co-resident clusters only: a persistent grid larger than that would run its last
            // clusters in a second wave
            _ => {
                wgmma_cluster_launch_config(&shape, kernel.cluster(), self.wgmma_clusters(kernel)?)
            }
        };
        cfg.shared_mem_bytes = kernel.smem_bytes() as u32;
        // v4: Y's tensor map for the TMA-store epilogue (an unused zero map and tma_y = 0 where
        // the row stride rules one out)
        let ty = if kernel.tma_store() {
            // SAFETY: y is a whole device allocation (256-byte aligned) of M·N values of O
            // (length checked above), used only by the launch below while it is borrowed.
            unsafe { encode_output_map::<O>(yp, m, n) }
                .map_err(self.err("cuTensorMapEncodeTiled"))?
        } else {
            None
        };
        let tma_y = u32::from(ty.is_some());
        let ty = ty.unwrap_or(TensorMapArg([0; 16]));
        let mut launch = stream.launch_builder(func);
        launch.arg(&tx).arg(&tw);
        if kernel.tma_store() {
            launch.arg(&ty);
        }
        launch.arg(&sxp).arg(&swp).arg(&bp).arg(&yp);
        launch.arg(&m32).arg(&n32).arg(&k32);
        if kernel.tma_store() {
            launch.arg(&tma_y);
        }
        // SAFETY: the kernel's signature is (TmaDesc, TmaDesc, const float*, const float*,
        // const float*, O*, u32 M, u32 N, u32 K), matching the pushed arguments (tensor maps by
        // value, pointers as 64-bit device addresses, a null bias as 0, which the kernel
        // checks); lengths were checked against the shape; the TMA reads stay inside the maps'
        // bounds (zero fill outside) and the epilogue writes only rows < M and columns < N,
        // in pairs that are 8-byte (f32) or 4-byte aligned since N and the column are even.
        // The dynamic shared memory was opted in when the module was loaded. v2: the grid is a
        // multiple of the kernel's compile-time cluster size (2 or 4), and the W map's box is
        // the part (128 or 64 rows) each CTA of a cluster loads. v4 takes (X map, W map, Y map,
        // …, K, tma_y): Y's map covers exactly the M × N output (TMA stores clip to it), with
        // boxes of 128 bytes × 64 rows as the kernel stages them; tma_y = 0 makes the kernel
        // store from registers as v2 and never touch the zero map.
        unsafe { launch.launch(cfg) }.map_err(self.err("cuLaunchKernel(gemm_wgmma)"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_the_kernel_takes() {
        assert_eq!(wgmma_shape_issue(&GemmShape::new(4096, 4096, 4096)), None);
        assert_eq!(wgmma_shape_issue(&GemmShape::new(1, 4, 16)), None);
        assert_eq!(wgmma_shape_issue(&GemmShape::new(777, 260, 48)), None);
        assert!(wgmma_shape_issue(&GemmShape::new(64, 64, 40)).is_some_and(|s| s.contains("16")));
        assert!(wgmma_shape_issue(&GemmShape::new(64, 6, 64)).is_some());
        assert!(wgmma_shape_issue(&GemmShape::new(0, 64, 64)).is_some());
        assert!(wgmma_shape_issue(&GemmShape::new(1, 64, MAX_K_INT8 + 17)).is_some());
    }

    #[test]
    fn shared_memory_fits_hopper() {
        // 227 KiB of opt-in shared memory per block on sm_90, less the kernel's 1 KiB of static
        const { assert!(SMEM_BYTES + 1024 <= 227 * 1024) };
        // every stage and both operand tiles start on a 1024-byte swizzle atom
        assert_eq!(STAGE_BYTES % 1024, 0);
        assert_eq!((TILE_M * TILE_K) % 1024, 0);
        // the kernel's constants (kernels/gemm_wgmma.cu) match these
        let src = include_str!("../../kernels/gemm_wgmma.cu");
        for (name, v) in [
            ("WG_BM", TILE_M),
            ("WG_BN", TILE_N),
            ("WG_BK", TILE_K),
            ("WG_STAGES", STAGES),
            ("WG_THREADS", THREADS as usize),
        ] {
            assert!(src.contains(&format!("#define {name} {v}\n")), "{name} != {v}");
        }
        // v4: 3-stage ring + two 32 KiB staging buffers (209 KiB) within the same limit
        const { assert!(SMEM4_BYTES + 1024 <= 227 * 1024) };
        assert_eq!(SMEM4_BYTES, 214_016);
        assert_eq!(OUT_BYTES4 % 1024, 0);
        // a staging buffer is four boxes of 64 rows × 128 bytes: one warpgroup's 64 × 256 f16,
        // or half of its 64 × 256 f32
        assert_eq!(OUT_BYTES4, 4 * OUT_BOX_ROWS * OUT_BOX_BYTES);
        assert_eq!(OUT_BYTES4, (TILE_M / 2) * TILE_N * 2);
        for (name, v) in [
            ("WG4_STAGES", STAGES4),
            ("WG4_OUT_BYTES", OUT_BYTES4),
            ("WG4_BOX_BYTES", OUT_BOX_ROWS * OUT_BOX_BYTES),
        ] {
            assert!(src.contains(&format!("#define {name} {v}\n")), "{name} != {v}");
        }
        assert_eq!(smem_bytes_of_entry("gemm_wgmma4_f16"), SMEM4_BYTES);
        assert_eq!(smem_bytes_of_entry("gemm_wgmma2_f16"), SMEM_BYTES);
        for k in WgmmaKernel::ALL {
            let want = if k == WgmmaKernel::V4 { SMEM4_BYTES } else { SMEM_BYTES };
            assert_eq!(k.smem_bytes(), want);
            assert_eq!(smem_bytes_of_entry(k.entry("bf16")), want);
        }
    }

    #[test]
    fn output_maps_take_16_byte_row_strides() {
        // f32: any N % 4 == 0; boxes of 32 columns × 64 rows (128 bytes wide)
        let (dims, stride, boxes) = output_map_geometry(1100, 4100, 4).unwrap();
        assert_eq!((dims, stride, boxes), ([4100, 1100], 16_400, [32, 64]));
        assert_eq!(output_map_geometry(1, 4, 4).unwrap().2, [32, 64]);
        // 16-bit: N % 8 == 0 only (the kernel stores from registers otherwise)
        let (dims, stride, boxes) = output_map_geometry(4096, 4096, 2).unwrap();
        assert_eq!((dims, stride, boxes), ([4096, 4096], 8192, [64, 64]));
        assert!(output_map_geometry(1100, 4100, 2).is_none());
        assert!(output_map_geometry(3, 68, 2).is_none());
        assert!(output_map_geometry(1408, 6144, 2).is_some());
        for elem in [2, 4] {
            let (_, s, b) = output_map_geometry(7, 1024, elem).unwrap();
            assert_eq!(s % 16, 0);
            assert_eq!(b[0] as usize * elem, OUT_BOX_BYTES);
        }
    }

    #[test]
    fn grid_is_persistent() {
        let c = wgmma_launch_config(&GemmShape::new(4096, 4096, 4096), 132);
        assert_eq!(c.grid_dim, (132, 1, 1));
        assert_eq!(c.block_dim, (THREADS, 1, 1));
        assert_eq!(wgmma_tiles(&GemmShape::new(4096, 4096, 4096)), 32 * 16);
        // ragged shapes round up; small ones get one block per tile
        assert_eq!(wgmma_tiles(&GemmShape::new(129, 260, 16)), 2 * 2);
        assert_eq!(wgmma_launch_config(&GemmShape::new(129, 260, 16), 132).grid_dim.0, 4);
        assert_eq!(wgmma_launch_config(&GemmShape::new(1, 4, 16), 0).grid_dim.0, 1);
    }

    #[test]
    fn cluster_grids_are_whole_clusters() {
        let s = GemmShape::new(4096, 4096, 4096);
        assert_eq!(wgmma_cluster_tiles(&s, 2), 16 * 16);
        assert_eq!(wgmma_cluster_tiles(&s, 4), 8 * 16);
        let c = wgmma_cluster_launch_config(&s, 2, 66);
        assert_eq!(c.grid_dim, (132, 1, 1));
        assert_eq!(c.block_dim, (THREADS, 1, 1));
        assert_eq!(c.shared_mem_bytes as usize, SMEM_BYTES);
        assert_eq!(wgmma_cluster_launch_config(&s, 4, 32).grid_dim, (128, 1, 1));
        // tile rows not a multiple of the cluster: the last cluster's spare CTAs (no rows,
        // masked) are still launched
        assert_eq!(wgmma_cluster_tiles(&GemmShape::new(1, 4, 16), 2), 1);
        assert_eq!(wgmma_cluster_launch_config(&GemmShape::new(1, 4, 16), 2, 66).grid_dim.0, 2);
        assert_eq!(wgmma_cluster_launch_config(&GemmShape::new(1, 4, 16), 4, 33).grid_dim.0, 4);
        assert_eq!(wgmma_cluster_tiles(&GemmShape::new(1100, 4100, 64), 2), 5 * 17);
        assert_eq!(wgmma_cluster_tiles(&GemmShape::new(1100, 4100, 64), 4), 3 * 17);
        assert_eq!(wgmma_cluster_launch_config(&GemmShape::new(257, 260, 16), 2, 0).grid_dim.0, 2);
        for cl in [2, 4] {
            for (m, n, most) in [(129, 260, 66), (2048, 11_008, 66), (7, 4, 1), (9000, 9000, 31)] {
                let c = wgmma_cluster_launch_config(&GemmShape::new(m, n, 16), cl, most);
                assert_eq!(c.grid_dim.0 as usize % cl, 0);
                assert!(c.grid_dim.0 as usize <= cl * most as usize);
            }
        }
        let src = include_str!("../../kernels/gemm_wgmma.cu");
        for (k, name) in [
            (WgmmaKernel::V2, "WG2_CLUSTER"),
            (WgmmaKernel::V3, "WG3_CLUSTER"),
            (WgmmaKernel::V4, "WG4_CLUSTER"),
        ] {
            assert!(src.contains(&format!("#define {name} {}\n", k.cluster())), "{name}");
            // the W part each CTA loads is whole 1024-byte swizzle atoms
            assert_eq!((TILE_N / k.cluster() * TILE_K) % 1024, 0);
        }
        // the opt-in takes the kernel measured on a GPU (v1) until v2/v3 are measured
        assert_eq!(WgmmaKernel::default(), WgmmaKernel::V4);
        for k in WgmmaKernel::ALL {
            for suffix in ["f32", "f16", "bf16"] {
                let e = k.entry(suffix);
                assert!(super::super::kernels::WGMMA_ENTRY_POINTS.contains(&e), "{e}");
                assert!(e.ends_with(suffix));
            }
        }
    }

    #[test]
    fn tensor_maps_describe_k_major_rows() {
        let (dims, stride, boxes) = tensor_map_geometry(4096, 11_008, TILE_N);
        assert_eq!(dims, [11_008, 4096]);
        assert_eq!(stride, 11_008);
        assert_eq!(stride % 16, 0);
        assert_eq!(boxes, [128, 256]);
        // box limits of cuTensorMapEncodeTiled: ≤ 256 per dim, inner box ≤ the 128-byte swizzle
        assert!(boxes.iter().all(|&b| (1..=256).contains(&b)));
        assert!(boxes[0] as usize <= 128);
    }
}
