//! Launch plans of the quantization kernels: the argument blocks passed by value (each laid
//! out like its `struct` in `kernels/quant*.cu`) and the host-side choice of kernel, team size,
//! tile and grid for a tensor's shape, including the table of measured-best register kernels
//! ([`row_kernel`]). Plain host logic, unit-tested without a device.

use super::*;
/// Spec fields in the layout of `struct QSpec` in `kernels/quant.cu`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(super) struct QSpecArgs {
    pub(super) d: f32,
    pub(super) eps: f32,
    pub(super) min_pos: f32,
    pub(super) qmin: i32,
    pub(super) qmax: i32,
    pub(super) zp_sym: i32,
    pub(super) asym: i32,
    pub(super) apply: i32,
    pub(super) away: i32,
    pub(super) dtype: i32,
    pub(super) zero_scale: i32,
    pub(super) saturate: i32,
}

// SAFETY: `QSpecArgs` is `#[repr(C)]`, `Copy`, holds only 4-byte scalars (no padding, no
// pointers), and matches `struct QSpec` in kernels/quant.cu field for field, so passing it by
// value as a kernel parameter copies exactly the bytes the kernel reads.
unsafe impl DeviceRepr for QSpecArgs {}

impl QSpecArgs {
    pub(super) fn new(spec: &QuantSpec) -> Self {
        QSpecArgs {
            d: spec.divisor(),
            eps: spec.eps,
            min_pos: spec.scale_dtype.smallest_positive(),
            qmin: spec.range.qmin,
            qmax: spec.range.qmax,
            zp_sym: spec.symmetric_zero_point(),
            asym: i32::from(spec.mapping == Mapping::Asymmetric),
            apply: match spec.scale_apply {
                ScaleApply::MulReciprocal => 0,
                ScaleApply::MulReciprocalUnrounded => 1,
                ScaleApply::MulRatio => 2,
                ScaleApply::Divide => 3,
            },
            away: i32::from(spec.rounding == Rounding::HalfAwayFromZero),
            dtype: match spec.scale_dtype {
                ScaleDtype::F32 => 0,
                ScaleDtype::F16 => 1,
                ScaleDtype::Bf16 => 2,
            },
            zero_scale: i32::from(spec.zero_range == ZeroRange::ZeroScale),
            saturate: i32::from(spec.non_finite == NonFinite::Saturate),
        }
    }
}

/// `group = (i / inner) % channels` with precomputed division magics, in the layout of
/// `struct GroupIndex` in `kernels/quant.cu`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(super) struct GroupIndexArgs {
    pub(super) inner: u64,
    pub(super) channels: u64,
    pub(super) m1: u32,
    pub(super) s1: u32,
    pub(super) m2: u32,
    pub(super) s2: u32,
    pub(super) fast: i32,
    pub(super) modulo: i32,
}

// SAFETY: `#[repr(C)]`, `Copy`, two u64 followed by six 4-byte scalars (40 bytes, no padding,
// no pointers), matching `struct GroupIndex` in kernels/quant.cu field for field.
unsafe impl DeviceRepr for GroupIndexArgs {}

/// Multiplier and shift for `n / d` as `(umulhi(m, n) + n) >> s` (exact for all u32 `n`).
pub(crate) fn div_magic(d: u64) -> Option<(u32, u32)> {
    let d = u32::try_from(d).ok().filter(|&d| d > 0)?;
    let l = 32 - (d - 1).leading_zeros(); // ceil(log2 d); 0 for d = 1
    let m = ((1u128 << 32) * ((1u128 << l) - u128::from(d))) / u128::from(d) + 1;
    Some((u32::try_from(m).ok()?, l))
}

impl GroupIndexArgs {
    pub(super) fn new(n: u64, inner: u64, channels: u64, modulo: bool) -> Self {
        let magics =
            if n <= u64::from(u32::MAX) { div_magic(inner).zip(div_magic(channels)) } else { None };
        let ((m1, s1), (m2, s2)) = magics.unwrap_or(((0, 0), (0, 0)));
        GroupIndexArgs {
            inner,
            channels,
            m1,
            s1,
            m2,
            s2,
            fast: i32::from(magics.is_some()),
            modulo: i32::from(modulo),
        }
    }
}

/// Lanes per group for the team kernel (`None`: one block per group). Each lane reads 16-byte
/// vectors (`16 / elem_bytes` elements) and keeps up to 32 floats in registers; teams are
/// powers of two (so they never straddle a warp) of at least 2 lanes (so a request uses whole
/// 32-byte sectors).
pub(super) fn team_size(len: u64, elem_bytes: u64) -> Option<u32> {
    if len >= BLOCK_ROW_MIN {
        return None;
    }
    let w = 16 / elem_bytes.max(1);
    let per_lane = 32 / w;
    let vectors = len.div_ceil(w);
    Some(vectors.div_ceil(per_lane).next_power_of_two().clamp(2, 32) as u32)
}

/// Layout of the pipelined row kernel (`struct TileArgs` in `kernels/quant_pipelined.cu`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TileArgs {
    pub(super) groups: u64,
    pub(super) len: u64,
    pub(super) lv: u32,
    pub(super) gs: u32,
    pub(super) r: u32,
    pub(super) ts: u32,
    pub(super) lv_m: u32,
    pub(super) lv_s: u32,
    pub(super) stage_vecs: u32,
    pub(super) unused: u32,
}

// SAFETY: `#[repr(C)]`, `Copy`, two u64 followed by eight u32 (48 bytes, no padding, no
// pointers), matching `struct TileArgs` in kernels/quant_pipelined.cu field for field.
unsafe impl DeviceRepr for TileArgs {}

/// How the pipelined row kernel runs one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TilePlan {
    pub(super) args: TileArgs,
    pub(super) stages: u32,
    pub(super) threads: u32,
    pub(super) smem_bytes: u32,
}

/// Padding (in 16-byte slots) after each group of `lv` vectors so that teams of `ts` < 8
/// lanes read shared memory without bank conflicts: the 8 lanes of a quarter warp touch
/// `j·gs + t` (teams j, lanes t) and need distinct slots modulo 8, i.e. `gs ≡ ts·odd (mod 8)`.
pub(super) fn group_pad(lv: u32, ts: u32) -> u32 {
    if ts >= 8 {
        return 0;
    }
    (0..16)
        .find(|&p| {
            let g = lv + p;
            g.is_multiple_of(ts) && ((g % 8) / ts) % 2 == 1
        })
        .unwrap_or(0)
}

/// Plan of the pipelined kernel for `groups` contiguous groups of `len` elements of
/// `elem_bytes` bytes, or `None` when it does not apply (a group's bytes not a multiple of 16,
/// or a row too long for two stages of shared memory): then the register kernels run.
pub(super) fn tile_plan(
    groups: u64,
    len: u64,
    elem_bytes: u64,
    tuning: &crate::cuda::device::Tuning,
    smem_limit: u64,
) -> Option<TilePlan> {
    let row_bytes = len.checked_mul(elem_bytes)?;
    if groups == 0 || len == 0 || !row_bytes.is_multiple_of(16) {
        return None;
    }
    let lv = u32::try_from(row_bytes / 16).ok()?;
    let threads = tuning.quant_threads;
    let ts = lv.div_ceil(tuning.quant_vectors_per_lane.max(1)).next_power_of_two().min(threads);
    let gs = lv + group_pad(lv, ts);
    let r = (u64::from(tuning.quant_tile_bytes) / row_bytes).clamp(1, groups.min(1 << 16)) as u32;
    let stage_vecs = u64::from(r) * u64::from(gs);
    let stage_bytes = stage_vecs * 16;
    let mut stages = tuning.quant_stages;
    while stages > 2 && u64::from(stages) * stage_bytes > smem_limit {
        stages -= 1;
    }
    if u64::from(stages) * stage_bytes > smem_limit {
        return None;
    }
    let (lv_m, lv_s) = div_magic(u64::from(lv))?;
    Some(TilePlan {
        args: TileArgs {
            groups,
            len,
            lv,
            gs,
            r,
            ts,
            lv_m,
            lv_s,
            stage_vecs: u32::try_from(stage_vecs).ok()?,
            unused: 0,
        },
        stages,
        threads,
        smem_bytes: u32::try_from(u64::from(stages) * stage_bytes).ok()?,
    })
}

/// Whether the two-pass kernels can use 16-byte vectors of `16 / elem_bytes` elements: each
/// vector lies in one group (`inner` a multiple of the vector) or covers consecutive groups
/// (`inner == 1`, `channels` a multiple of the vector).
pub(super) fn cols_vectorizable(channels: u64, inner: u64, elem_bytes: u64) -> bool {
    let w = 16 / elem_bytes.max(1);
    (inner == 1 && channels.is_multiple_of(w)) || inner.is_multiple_of(w)
}

/// Launch grid of the column kernels (`quant_stats_cols`, `quant_apply_cols`) over `nvec`
/// 16-byte column vectors per outer row: 256-thread blocks along the vectors, and slices of the
/// outer index so that the grid holds `per_sm` blocks per multiprocessor, each slice at least
/// 16 rows long. Every slice of the statistics ends in one atomic min/max pair per channel, so
/// fewer, longer slices mean fewer atomics on the same `2 · channels` words.
pub(super) fn cols_config(nvec: u64, outer: u64, sms: u32, per_sm: u64) -> LaunchConfig {
    let bx = nvec.div_ceil(256).max(1);
    let want = u64::from(sms.max(1)) * per_sm.max(1);
    let by = want.div_ceil(bx).clamp(1, outer.div_ceil(16).clamp(1, 65_535));
    LaunchConfig {
        grid_dim: (u32::try_from(bx).unwrap_or(u32::MAX), by as u32, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Whether per-channel groups on the last axis (inner == 1) take the column-owning apply
/// kernel (`quant_apply_cols`: each thread holds its channels' parameters for a slice of rows)
/// instead of the grid-stride vector kernel: [`Tuning::quant_apply_cols`](crate::cuda::Tuning)
/// where set, else the measured choice: the column kernel (H100, session 15, 2²⁸ elements in
/// rows of 4096, whole quantize: 0.959 / 0.822 / 0.826 of the two-pass bound from f32 / bf16 /
/// f16 against the vector kernel's 0.945 / 0.791 / 0.771).
pub(super) fn apply_cols(tuning: &crate::cuda::Tuning) -> bool {
    tuning.quant_apply_cols.unwrap_or(true)
}

/// Whether the column kernels walk interleaved rows (`1`) or a slice of consecutive rows per
/// block (`0`): [`Tuning::quant_cols_interleave`](crate::cuda::Tuning) where set, else the
/// measured choice: interleaved (H100, session 15, three builds in three calls: ahead by
/// 0.2–1.1 % on every row, e.g. 0.962 / 0.829 / 0.832 of the two-pass bound against 0.959 /
/// 0.822 / 0.826 from f32 / bf16 / f16).
pub(super) fn cols_interleave(tuning: &crate::cuda::Tuning) -> u32 {
    u32::from(tuning.quant_cols_interleave.unwrap_or(true))
}

/// Layout of the register-resident row kernel (`struct RegArgs` in `kernels/quant_rows.cu`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RegArgs {
    pub(super) groups: u64,
    pub(super) len: u64,
    pub(super) lv: u32,
    pub(super) ts: u32,
    pub(super) log_ts: u32,
    pub(super) unused: u32,
}

// SAFETY: `#[repr(C)]`, `Copy`, two u64 followed by four u32 (32 bytes, no padding, no
// pointers), matching `struct RegArgs` in kernels/quant_rows.cu field for field.
unsafe impl DeviceRepr for RegArgs {}

/// Most 16-byte vectors a lane of the register kernel holds (its largest variant).
pub(super) const REG_MAX_VECTORS: u32 = 16;

/// Plan of the register-resident row kernel: `(args, vectors per lane)`, or `None` when it
/// does not apply (a group's bytes not a multiple of 16, more than 32 · 16 vectors per group,
/// or the kernel switched off with `v_pref == 0`).
pub(super) fn reg_plan(
    groups: u64,
    len: u64,
    elem_bytes: u64,
    v_pref: u32,
) -> Option<(RegArgs, u32)> {
    let row_bytes = len.checked_mul(elem_bytes)?;
    if v_pref == 0 || groups == 0 || len == 0 || !row_bytes.is_multiple_of(16) {
        return None;
    }
    let lv = u32::try_from(row_bytes / 16).ok()?;
    if lv > 32 * REG_MAX_VECTORS {
        return None;
    }
    // at least enough vectors per lane for a warp to hold the group, at most what one lane
    // would need alone
    let v = v_pref.max(lv.div_ceil(32).next_power_of_two()).min(lv.next_power_of_two());
    let ts = lv.div_ceil(v).next_power_of_two().min(32);
    Some((
        RegArgs { groups, len, lv, ts, log_ts: ts.trailing_zeros(), unused: 0 },
        v.min(REG_MAX_VECTORS),
    ))
}

/// Threads per block of the split register kernels (8 warps; `rows_split` in quant_rows.cu).
pub(super) const SPLIT_THREADS: u32 = 256;

/// Plan of the split register kernel (a team of `warps` = 4 whole warps per group, 4 vectors
/// per lane, 512 per team) for a group the in-warp kernel would hold in 16 vectors per lane
/// (256 < LV ≤ 512), or `None` (split kernel off with `warps == 0`, or a smaller group).
pub(super) fn split_plan(reg: RegArgs, warps: u32) -> Option<RegArgs> {
    if warps != 4 || reg.lv <= 256 || reg.lv > 32 * REG_MAX_VECTORS {
        return None;
    }
    let ts = 32 * warps;
    Some(RegArgs { ts, log_ts: ts.trailing_zeros(), ..reg })
}

/// Plan of the contiguous small-group kernel (each lane holds `v` consecutive vectors of its
/// group, a team of `LV / v` lanes), or `None` (`v` not 2 or 4, a group of more than
/// [`REG_SMALL_GROUP`] vectors, or one that does not split into a power of two of whole
/// `v`-vector pieces).
pub(super) fn contig_plan(reg: RegArgs, v: u32) -> Option<RegArgs> {
    if u64::from(reg.lv) > REG_SMALL_GROUP {
        return None;
    }
    contig_team(reg, v)
}

/// The contiguous kernel for a larger group (9..=32·v vectors, e.g. group-128: 16 vectors from
/// 16-bit inputs, 32 from f32; [`Tuning::quant_group_contig`](crate::cuda::Tuning)), or `None`
/// (off, a small group, or no whole power-of-two team of at most 32 lanes).
pub(super) fn group_contig_plan(reg: RegArgs, v: u32) -> Option<RegArgs> {
    if u64::from(reg.lv) <= REG_SMALL_GROUP {
        return None;
    }
    contig_team(reg, v)
}

fn contig_team(reg: RegArgs, v: u32) -> Option<RegArgs> {
    if !matches!(v, 2 | 4) || !reg.lv.is_multiple_of(v) {
        return None;
    }
    let ts = reg.lv / v;
    (ts.is_power_of_two() && ts <= 32).then_some(RegArgs { ts, log_ts: ts.trailing_zeros(), ..reg })
}

/// Input element type of a quantize kernel: the measured choices differ between f16 and
/// bf16, not only by width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Src {
    F32,
    F16,
    Bf16,
}

impl Src {
    /// From a kernel suffix (`FloatElem::SUFFIX`).
    pub(super) fn from_suffix(suf: &str) -> Src {
        match suf {
            "f32" => Src::F32,
            "f16" => Src::F16,
            _ => Src::Bf16,
        }
    }

    pub(super) fn bytes(self) -> u64 {
        if self == Src::F32 { 4 } else { 2 }
    }
}

/// The measured-best small-group kernel per input type (vectors per lane of the contiguous
/// kernel; 2 means `quant_rows_regc2cs`, streaming loads), H100, 2026-12-06, GGML Q8_0 (ratio
/// to copy): from f32 contig 4 0.978 (in-warp 0.957, contig 2 0.975); from bf16 contig 4 0.921
/// (contig 2 + ld.cs 0.880, in-warp 0.837); from f16 contig 2 + ld.cs 0.880 (contig 4 0.871,
/// in-warp 0.836).
pub(super) fn measured_contig(src: Src) -> u32 {
    match src {
        Src::F32 | Src::Bf16 => 4,
        Src::F16 => 2,
    }
}

/// Streaming loads (`ld.global.cs`) for the split kernel, as measured (H100, 2026-12-06):
/// from f16/bf16 0.913–0.920 of copy against 0.883–0.895 without (per-token, per-channel,
/// asymmetric u8, vLLM on 4096-element rows). Not from f32: those bench rows ran the pipelined
/// kernel in both columns (equal, 0.969–0.978), and every f32 register kernel that did run
/// both ways lost with the hint (group-128 0.985 → 0.917, Q8_0 0.957 → 0.865, contig 2
/// 0.975 → 0.898, contig 4 0.978 → 0.906).
pub(super) fn measured_streaming(src: Src) -> bool {
    src != Src::F32
}

/// The register row kernel chosen for `groups` contiguous groups of `len` elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RowKernel {
    pub(super) args: RegArgs,
    /// Entry-point base name (without the `_f32`/`_f16`/`_bf16` suffix).
    pub(super) base: &'static str,
    /// Threads per block.
    pub(super) threads: u32,
}

impl RowKernel {
    /// Warps the launch needs: in-warp teams hold 32 / TS groups per warp, split teams span
    /// TS / 32 warps per group.
    pub(super) fn warps(&self) -> u64 {
        let ts = self.args.ts;
        if ts > 32 {
            self.args.groups * u64::from(ts / 32)
        } else {
            self.args.groups.div_ceil(u64::from(32 / ts))
        }
    }
}

/// The one place that chooses the register row kernel of a tensor: the measured best per input
/// type and group size ([`measured_contig`], [`measured_streaming`]) unless `Tuning` forces a
/// setting; `None` when no register kernel applies (then the pipelined kernel runs). Pure
/// host logic.
pub(super) fn row_kernel(
    src: Src,
    groups: u64,
    len: u64,
    tuning: &crate::cuda::device::Tuning,
) -> Option<RowKernel> {
    let eb = src.bytes();
    let v_pref = if (eb == 4 && tuning.quant_reg_vectors_f32 == 0)
        || (eb != 4 && tuning.quant_reg_vectors_half == 0)
    {
        0
    } else if (len * eb).div_ceil(16) <= REG_SMALL_GROUP {
        tuning.quant_reg_vectors_small
    } else if eb == 4 {
        tuning.quant_reg_vectors_f32
    } else {
        tuning.quant_reg_vectors_half
    };
    let (reg, v) = reg_plan(groups, len, eb, v_pref)?;
    if let Some(split) = split_plan(reg, tuning.quant_split_warps) {
        let cs = tuning.quant_load_streaming.unwrap_or_else(|| measured_streaming(src));
        let base = if cs { "quant_rows_split4x4cs" } else { "quant_rows_split4x4" };
        return Some(RowKernel { args: split, base, threads: SPLIT_THREADS });
    }
    let threads = tuning.quant_reg_threads;
    let contig = tuning.quant_small_contig.unwrap_or_else(|| measured_contig(src));
    let group_contig = tuning.quant_group_contig.unwrap_or(0);
    let planned = contig_plan(reg, contig)
        .map(|a| (a, contig))
        .or_else(|| group_contig_plan(reg, group_contig).map(|a| (a, group_contig)));
    if let Some((args, v)) = planned {
        let base = if v == 2 { "quant_rows_regc2cs" } else { "quant_rows_regc4" };
        return Some(RowKernel { args, base, threads });
    }
    let base = match v {
        1 => "quant_rows_reg1",
        2 => "quant_rows_reg2",
        4 => "quant_rows_reg4",
        8 => "quant_rows_reg8",
        _ => "quant_rows_reg16",
    };
    Some(RowKernel { args: reg, base, threads })
}

/// Groups of at most this many 16-byte vectors use `Tuning::quant_reg_vectors_small`.
pub(super) const REG_SMALL_GROUP: u64 = 8;

/// How a tensor's groups map onto the kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Path {
    /// `groups` contiguous runs of `len` elements (fused single-pass kernels).
    Rows { groups: u64, len: u64 },
    /// `outer × channels × inner` with a group per channel (`channels == 1`: per tensor).
    TwoPass { outer: u64, channels: u64, inner: u64 },
}

/// Rows at least this long get a whole 256-thread block per group.
pub(super) const BLOCK_ROW_MIN: u64 = 1024;
/// Per-tensor inputs up to this size run as one fused block.
pub(super) const FUSED_TENSOR_MAX: u64 = 16_384;

pub(super) fn plan_path(spec: &QuantSpec, shape: &[usize]) -> Path {
    let n: u64 = shape.iter().map(|&d| d as u64).product();
    let last = shape.last().map_or(1, |&d| d as u64);
    let rows = |groups: u64, len: u64| Path::Rows { groups, len };
    match spec.granularity {
        Granularity::PerTensor if n <= FUSED_TENSOR_MAX => rows(1, n),
        Granularity::PerTensor => Path::TwoPass { outer: 1, channels: 1, inner: n },
        Granularity::PerToken => rows(n / last, last),
        Granularity::PerGroup { size } => rows(n / size as u64, size as u64),
        Granularity::PerChannel { axis } => {
            let outer: u64 = shape[..axis].iter().map(|&d| d as u64).product();
            let channels = shape[axis] as u64;
            let inner: u64 = shape[axis + 1..].iter().map(|&d| d as u64).product();
            if outer == 1 {
                rows(channels, inner)
            } else {
                Path::TwoPass { outer, channels, inner }
            }
        }
    }
}

impl Path {
    pub(super) fn groups(&self) -> u64 {
        match *self {
            Path::Rows { groups, .. } => groups,
            Path::TwoPass { channels, .. } => channels,
        }
    }

    /// The formula `group = (i / inner) % channels` of this layout for `n` elements.
    pub(super) fn group_index(&self, n: u64) -> GroupIndexArgs {
        match *self {
            Path::Rows { groups, len } => GroupIndexArgs::new(n, len, groups, false),
            Path::TwoPass { outer, channels, inner } => {
                GroupIndexArgs::new(n, inner, channels, outer > 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_kernels_fill_the_device_with_slices_of_rows() {
        // a 65536 x 4096 bf16 matrix: 512 vectors per row, two blocks wide, 528 slices of
        // 124 rows (132 SMs x 8 blocks)
        let c = cols_config(512, 65_536, 132, 8);
        assert_eq!((c.grid_dim, c.block_dim), ((2, 528, 1), (256, 1, 1)));
        // the 16-bit statistics: 2 blocks per SM, a quarter of the slices (and atomics)
        assert_eq!(cols_config(512, 65_536, 132, 2).grid_dim, (2, 132, 1));
        // short matrices: slices of at least 16 rows; one block at least
        assert_eq!(cols_config(1024, 40, 132, 8).grid_dim, (4, 3, 1));
        assert_eq!(cols_config(1, 1, 0, 0).grid_dim, (1, 1, 1));
        // the grid's y extent stays within the driver's 65535
        assert!(cols_config(1, u64::MAX / 2, 132, 8).grid_dim.1 <= 65_535);
        let d = crate::cuda::Tuning::default();
        assert!(apply_cols(&d));
        assert!(!apply_cols(&d.with_overrides("quant_apply_cols=false")));
        assert_eq!(cols_interleave(&d), 1);
        assert_eq!(cols_interleave(&d.with_overrides("quant_cols_interleave=true")), 1);
        assert_eq!(cols_interleave(&d.with_overrides("quant_cols_interleave=false")), 0);
    }

    #[test]
    fn paths_follow_granularity() {
        let w = QuantSpec::int8_weight();
        assert_eq!(plan_path(&w, &[4096, 4096]), Path::Rows { groups: 4096, len: 4096 });
        let t = QuantSpec::int8_activation_per_token();
        assert_eq!(plan_path(&t, &[3, 100]), Path::Rows { groups: 3, len: 100 });
        let g = QuantSpec { granularity: Granularity::PerGroup { size: 32 }, ..w };
        assert_eq!(plan_path(&g, &[2, 64]), Path::Rows { groups: 4, len: 32 });
        let c1 = QuantSpec { granularity: Granularity::PerChannel { axis: 1 }, ..w };
        assert_eq!(plan_path(&c1, &[5, 6, 7]), Path::TwoPass { outer: 5, channels: 6, inner: 7 });
        assert_eq!(plan_path(&c1, &[1, 6, 7]), Path::Rows { groups: 6, len: 7 });
        let pt = QuantSpec { granularity: Granularity::PerTensor, ..w };
        assert_eq!(
            plan_path(&pt, &[1000, 1000]),
            Path::TwoPass { outer: 1, channels: 1, inner: 1_000_000 }
        );
        assert_eq!(plan_path(&pt, &[10, 10]), Path::Rows { groups: 1, len: 100 });
    }

    #[test]
    fn group_padding_makes_team_reads_conflict_free() {
        for lv in 1..200u32 {
            for ts in [1u32, 2, 4, 8, 16, 32] {
                let gs = lv + group_pad(lv, ts);
                assert!(gs >= lv && gs < lv + 16);
                if ts >= 8 {
                    continue;
                }
                // the 8 lanes of a quarter warp: teams j, lanes t, reading slot j·gs + t + k·ts
                for k in 0..4u32 {
                    let mut banks: Vec<u32> = (0..8 / ts)
                        .flat_map(|j| (0..ts).map(move |t| (j * gs + t + k * ts) % 8))
                        .collect();
                    banks.sort_unstable();
                    banks.dedup();
                    assert_eq!(banks.len(), 8, "lv {lv} ts {ts} gs {gs}");
                }
            }
        }
    }

    #[test]
    fn tile_plans_for_the_bench_shapes() {
        let lim = 227 << 10;
        // the defaults: 64-thread blocks, 8 KiB tiles, teams of ≤ 64 lanes
        let d = tile_plan(65_536, 4096, 2, &crate::cuda::Tuning::default(), lim).unwrap();
        assert_eq!((d.threads, d.stages, d.args.r, d.args.ts), (64, 2, 1, 64));
        let t = crate::cuda::Tuning {
            quant_threads: 256,
            quant_vectors_per_lane: 4,
            quant_stages: 2,
            quant_tile_bytes: 16_384,
            ..Default::default()
        };
        // per-token f32 rows of 4096: one row per 16 KiB tile, a whole block per row
        let p = tile_plan(65_536, 4096, 4, &t, lim).unwrap();
        assert_eq!((p.args.lv, p.args.gs, p.args.r, p.args.ts), (1024, 1024, 1, 256));
        assert_eq!(p.smem_bytes, 2 * 16_384);
        // bf16 rows of 4096: two rows per tile, teams of 128
        let p = tile_plan(65_536, 4096, 2, &t, lim).unwrap();
        assert_eq!((p.args.lv, p.args.r, p.args.ts), (512, 2, 128));
        // Q8_0 from bf16: 4 vectors per group, one lane per group, odd slot stride
        let p = tile_plan(1 << 23, 32, 2, &t, lim).unwrap();
        assert_eq!((p.args.lv, p.args.gs, p.args.ts, p.args.r), (4, 5, 1, 256));
        // ragged rows use the register kernels; long rows get their own stage size
        assert!(tile_plan(10, 4097, 4, &t, lim).is_none());
        let p = tile_plan(4096, 11_008, 4, &t, lim).unwrap();
        assert_eq!((p.args.r, p.stages), (1, 2));
        assert_eq!(p.smem_bytes, 2 * 44_032);
        assert!(tile_plan(4, 1 << 20, 4, &t, lim).is_none());
        // a tile never holds more groups than there are
        assert_eq!(tile_plan(3, 32, 4, &t, lim).unwrap().args.r, 3);
    }

    #[test]
    fn reg_plans_cover_the_group_with_one_team() {
        // per-token bf16 rows of 4096: 512 vectors, a whole warp with 16 each
        let (a, v) = reg_plan(65_536, 4096, 2, 4).unwrap();
        assert_eq!((a.lv, a.ts, a.log_ts, v), (512, 32, 5, 16));
        // group-128 bf16: 16 vectors, teams of 4 lanes × 4
        let (a, v) = reg_plan(1 << 21, 128, 2, 4).unwrap();
        assert_eq!((a.lv, a.ts, v), (16, 4, 4));
        // Q8_0 from bf16: 4 vectors, one lane per group; from f32 with 2 per lane: teams of 4
        assert_eq!(reg_plan(1 << 23, 32, 2, 4).map(|(a, v)| (a.ts, v)), Some((1, 4)));
        assert_eq!(reg_plan(1 << 23, 32, 4, 2).map(|(a, v)| (a.ts, v)), Some((4, 2)));
        // never more vectors per lane than the group has, ragged vector counts round up
        assert_eq!(reg_plan(10, 40, 2, 16).map(|(a, v)| (a.lv, a.ts, v)), Some((5, 1, 8)));
        assert_eq!(reg_plan(10, 40, 2, 1).map(|(a, v)| (a.lv, a.ts, v)), Some((5, 8, 1)));
        for lv in 1..=512u64 {
            for vp in [1u32, 2, 4, 8, 16] {
                let (a, v) = reg_plan(3, lv * 4, 4, vp).unwrap();
                assert!(a.ts.is_power_of_two() && a.ts <= 32 && v <= REG_MAX_VECTORS);
                assert!(u64::from(a.ts) * u64::from(v) >= lv, "lv {lv} vp {vp}");
                assert_eq!(1u32 << a.log_ts, a.ts);
            }
        }
        // off, ragged bytes, or too long for one warp
        assert!(reg_plan(3, 128, 4, 0).is_none());
        assert!(reg_plan(3, 129, 4, 4).is_none());
        assert!(reg_plan(3, 4096, 4, 4).is_none());
        assert!(reg_plan(3, 2048, 4, 4).is_some());
    }

    #[test]
    fn split_plans_cover_long_groups_with_whole_warps() {
        // a 4096-element bf16 row: 512 vectors over 4 warps of 4 vectors per lane
        let (reg, _) = reg_plan(65_536, 4096, 2, 4).unwrap();
        let a = split_plan(reg, 4).unwrap();
        assert_eq!((a.ts, a.log_ts, a.lv, a.groups), (128, 7, 512, 65_536));
        // off, unsupported team sizes, and groups the in-warp kernel holds in ≤ 8 vectors/lane
        assert!(split_plan(reg, 0).is_none() && split_plan(reg, 2).is_none());
        assert!(split_plan(reg_plan(9, 2048, 2, 4).unwrap().0, 4).is_none());
        // ragged: 325 vectors (2600 bf16) still fit one team of 512 slots
        let a = split_plan(reg_plan(7, 2600, 2, 4).unwrap().0, 4).unwrap();
        assert!(a.ts * 4 >= a.lv && a.lv == 325);
    }

    #[test]
    fn contig_plans_split_small_groups_into_whole_lanes() {
        // Q8_0 from f32 (8 vectors): 4 lanes × 2 or 2 lanes × 4; from 16-bit (4 vectors): 2 × 2
        // or 1 × 4
        let (f32_reg, _) = reg_plan(1 << 23, 32, 4, 2).unwrap();
        let a = contig_plan(f32_reg, 2).unwrap();
        assert_eq!((a.lv, a.ts, a.log_ts), (8, 4, 2));
        let a = contig_plan(f32_reg, 4).unwrap();
        assert_eq!((a.lv, a.ts, a.log_ts), (8, 2, 1));
        let (half_reg, _) = reg_plan(1 << 23, 32, 2, 2).unwrap();
        assert_eq!(contig_plan(half_reg, 2).map(|a| a.ts), Some(2));
        assert_eq!(contig_plan(half_reg, 4).map(|a| (a.ts, a.log_ts)), Some((1, 0)));
        // off, group-128 (too many vectors), 6 vectors (3 lanes: not a power of two), 2 vectors
        // with 4 per lane (not whole)
        assert!(contig_plan(f32_reg, 0).is_none());
        assert!(contig_plan(reg_plan(9, 128, 2, 4).unwrap().0, 2).is_none());
        assert!(contig_plan(reg_plan(9, 24, 4, 2).unwrap().0, 2).is_none());
        assert!(contig_plan(reg_plan(9, 8, 4, 2).unwrap().0, 4).is_none());
        // larger groups: only through group_contig_plan, whole power-of-two teams ≤ 32 lanes
        let g128 = reg_plan(9, 128, 2, 4).unwrap().0;
        assert_eq!(group_contig_plan(g128, 4).map(|a| (a.ts, a.log_ts)), Some((4, 2)));
        assert_eq!(group_contig_plan(g128, 2).map(|a| a.ts), Some(8));
        assert!(group_contig_plan(g128, 0).is_none());
        assert!(group_contig_plan(reg_plan(9, 96, 2, 4).unwrap().0, 4).is_none()); // 12 / 4 = 3
        assert!(group_contig_plan(reg_plan(9, 2048, 4, 4).unwrap().0, 2).is_none()); // 256 lanes
        assert!(group_contig_plan(half_reg, 2).is_none()); // Q8_0: contig_plan's
        // every plan covers the group exactly with whole lanes
        for (len, eb) in [(32u64, 4u64), (32, 2), (16, 4), (64, 2), (8, 4), (16, 2), (8, 2)] {
            for v in [2, 4] {
                let (reg, _) = reg_plan(5, len, eb, 2).unwrap();
                if let Some(a) = contig_plan(reg, v) {
                    assert_eq!(a.ts * v, a.lv, "{len} × {eb} B, {v} per lane");
                    assert!(a.ts <= 32 && 1u32 << a.log_ts == a.ts);
                }
            }
        }
    }

    /// The choice table against the session-8 H100 measurements (docs/results/quant-gpu.md):
    /// each bench shape gets the kernel that measured best, and every override still reaches
    /// the kernel it names.
    #[test]
    fn row_kernels_are_the_measured_best() {
        use crate::cuda::Tuning;
        let d = Tuning::default();
        let pick = |src, groups, len, t: &Tuning| row_kernel(src, groups, len, t).map(|k| k.base);
        // per-token / per-channel / asym / vLLM rows of 4096: split kernel, streaming loads
        // from 16-bit; f32 rows of 4096 take the pipelined kernel (no register kernel)
        for src in [Src::F16, Src::Bf16] {
            assert_eq!(pick(src, 65_536, 4096, &d), Some("quant_rows_split4x4cs"));
        }
        assert_eq!(pick(Src::F32, 65_536, 4096, &d), None);
        // f32 rows the split kernel does take (2048 elements): no streaming hint
        assert_eq!(pick(Src::F32, 65_536, 2048, &d), Some("quant_rows_split4x4"));
        // group-128: the in-warp kernel with 4 vectors per lane from f32, 2 from 16-bit inputs
        // (H100, session 14: bf16 0.898 → 0.907 / 0.910, f16 0.904 → 0.941), no streaming hint
        assert_eq!(pick(Src::F32, 1 << 21, 128, &d), Some("quant_rows_reg4"));
        for src in [Src::F16, Src::Bf16] {
            assert_eq!(pick(src, 1 << 21, 128, &d), Some("quant_rows_reg2"));
        }
        // Q8_0: contiguous 4 per lane from f32 and bf16, 2 per lane + ld.cs from f16
        let q8 = |src, t: &Tuning| row_kernel(src, 1 << 23, 32, t).map(|k| (k.base, k.args.ts));
        assert_eq!(q8(Src::F32, &d), Some(("quant_rows_regc4", 2)));
        assert_eq!(q8(Src::Bf16, &d), Some(("quant_rows_regc4", 1)));
        assert_eq!(q8(Src::F16, &d), Some(("quant_rows_regc2cs", 2)));
        // overrides force one setting everywhere (A/B)
        let no_cs = d.with_overrides("quant_load_streaming=false");
        assert_eq!(pick(Src::Bf16, 65_536, 4096, &no_cs), Some("quant_rows_split4x4"));
        let cs = d.with_overrides("quant_load_streaming=true");
        assert_eq!(pick(Src::F32, 65_536, 2048, &cs), Some("quant_rows_split4x4cs"));
        // the in-warp kernel for group-128 from 16-bit inputs: 2 vectors per lane by default,
        // 4 on request (the streaming hint is the split kernel's only)
        assert_eq!(pick(Src::Bf16, 1 << 21, 128, &d), Some("quant_rows_reg2"));
        let v4 = d.with_overrides("quant_reg_vectors_half=4,quant_load_streaming=true");
        assert_eq!(pick(Src::F16, 1 << 21, 128, &v4), Some("quant_rows_reg4"));
        // group-128 on the contiguous kernel: 16-bit (16 vectors) 4 lanes × 4 or 8 × 2 (+ ld.cs),
        // f32 (32 vectors) 8 × 4; Q8_0 keeps its own setting
        let gc4 = d.with_overrides("quant_group_contig=4");
        let g = |src, t: &Tuning| row_kernel(src, 1 << 21, 128, t).map(|k| (k.base, k.args.ts));
        assert_eq!(g(Src::Bf16, &gc4), Some(("quant_rows_regc4", 4)));
        assert_eq!(g(Src::F32, &gc4), Some(("quant_rows_regc4", 8)));
        let gc2 = d.with_overrides("quant_group_contig=2");
        assert_eq!(g(Src::F16, &gc2), Some(("quant_rows_regc2cs", 8)));
        assert_eq!(q8(Src::F16, &gc4), Some(("quant_rows_regc2cs", 2)));
        let v8 = d.with_overrides("quant_reg_vectors_half=8");
        assert_eq!(pick(Src::Bf16, 1 << 21, 128, &v8), Some("quant_rows_reg8"));
        let in_warp = d.with_overrides("quant_small_contig=0");
        assert_eq!(q8(Src::F16, &in_warp), Some(("quant_rows_reg2", 2)));
        assert_eq!(q8(Src::F32, &in_warp), Some(("quant_rows_reg2", 4)));
        let c2 = d.with_overrides("quant_small_contig=2");
        assert_eq!(q8(Src::Bf16, &c2), Some(("quant_rows_regc2cs", 2)));
        let c4 = d.with_overrides("quant_small_contig=4");
        assert_eq!(q8(Src::F16, &c4), Some(("quant_rows_regc4", 1)));
        // small groups the contiguous kernels cannot split keep the in-warp kernel (6 vectors)
        assert_eq!(pick(Src::F32, 9, 24, &d), Some("quant_rows_reg2"));
        // register kernels off: the pipelined kernel
        let off = d.with_overrides("quant_reg_vectors_half=0");
        assert_eq!(pick(Src::Bf16, 65_536, 4096, &off), None);
        // every name the table can give is an entry point, for every input type
        for base in [
            "quant_rows_split4x4",
            "quant_rows_split4x4cs",
            "quant_rows_regc2cs",
            "quant_rows_regc4",
            "quant_rows_reg1",
            "quant_rows_reg2",
            "quant_rows_reg4",
            "quant_rows_reg8",
            "quant_rows_reg16",
        ] {
            for suf in ["f32", "f16", "bf16"] {
                assert!(crate::cuda::kernels::ENTRY_POINTS.contains(&kernel_name(base, suf)));
            }
        }
    }

    #[test]
    fn warps_per_launch() {
        let d = crate::cuda::Tuning::default();
        // split: 4 warps per group; in-warp teams of 2 lanes: 16 groups per warp
        assert_eq!(row_kernel(Src::Bf16, 10, 4096, &d).unwrap().warps(), 40);
        assert_eq!(row_kernel(Src::F32, 33, 32, &d).unwrap().warps(), 3);
    }

    #[test]
    fn team_sizes() {
        assert_eq!(team_size(4096, 4), None);
        assert_eq!(team_size(1024, 2), None);
        assert_eq!(team_size(128, 4), Some(4)); // 32 vectors, 8 per lane
        assert_eq!(team_size(128, 2), Some(4)); // 16 vectors, 4 per lane
        assert_eq!(team_size(32, 4), Some(2));
        assert_eq!(team_size(7, 4), Some(2));
        assert_eq!(team_size(1000, 4), Some(32));
    }

    #[test]
    fn division_magics_are_exact() {
        let ns: Vec<u32> = (0..5000u32)
            .chain([u32::MAX, u32::MAX - 1, 1 << 31, (1 << 31) - 1, 4_294_967_000])
            .collect();
        for d in [
            1u64,
            2,
            3,
            5,
            7,
            32,
            100,
            127,
            128,
            4096,
            11008,
            65_535,
            1 << 20,
            3_000_001,
            u64::from(u32::MAX),
        ] {
            let (m, s) = div_magic(d).unwrap();
            for &n in &ns {
                let hi = ((u64::from(m) * u64::from(n)) >> 32) as u32;
                let q = ((u64::from(hi) + u64::from(n)) >> s) as u32;
                assert_eq!(u64::from(q), u64::from(n) / d, "{n} / {d}");
            }
        }
        assert!(div_magic(0).is_none());
        assert!(div_magic(1 << 32).is_none());
    }
}
