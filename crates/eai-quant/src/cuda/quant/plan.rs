//! Launch plans of the quantization kernels: the argument blocks passed by value (each laid
//! out like its `struct` in `kernels/quant*.cu`) and the host-side choice of kernel, team size,
//! tile and grid for a tensor's shape. Plain host logic, unit-tested without a device.

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
    if !matches!(v, 2 | 4) || u64::from(reg.lv) > REG_SMALL_GROUP || !reg.lv.is_multiple_of(v) {
        return None;
    }
    let ts = reg.lv / v;
    ts.is_power_of_two().then_some(RegArgs { ts, log_ts: ts.trailing_zeros(), ..reg })
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
    if let Some(args) = contig_plan(reg, contig) {
        let base = if contig == 2 { "quant_rows_regc2cs" } else { "quant_rows_regc4" };
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
