//! Which decode GEMV layout a pass runs (issue 16): [`GemvTile`] and the default rule,
//! [`default_gemv_tile`] — one pure function of the scheme, the pass's rows, the device
//! generation and the model width, so the measured-best choice lives in one place.

use super::GpuScheme;

/// Row layout of the decode GEMVs: output rows per warp and 16-byte weight vectors in flight
/// per row and lane. The warp-per-row layout ([`GemvTile::R1U8`]) accumulates each lane's
/// vectors in increasing k; the block-split-K and tensor-core layouts (one block of 8 warps
/// per unit of rows, its 256 threads striding K together, per-warp sums added across warps)
/// sum in another, equally deterministic order. A tile other than [`GemvTile::Auto`] is forced
/// on every pass (`EAI_GEMV_TILE`, `gpu_bench --tile`: A/B runs). Issue 16 kept the layouts the
/// rule picks and the tests' CUDA-core reference (R1U8); R2U4, R1U4, R4U2, R4U4, K2U4, K1U4
/// and T8U8 (never picked: slower than K4U2 / equal to T8U4 where measured, or never measured)
/// were deleted with their kernels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GemvTile {
    /// The measured-best layout per pass, [`default_gemv_tile`]: batch 1 on the CUDA-core
    /// block-split-K GEMV [`GemvTile::K4U2`] (int8 weights of a model narrower than
    /// [`AUTO_TENSOR_CORE_MAX_HIDDEN`]: [`GemvTile::T8U4`]); decode steps of
    /// [`W16_MIN_ROWS`] or more rows on the bandwidth tensor-core GEMV [`GemvTile::W16`] —
    /// W8A16 at every row count it serves (up to [`W16_MAX_ROWS`]), FP16 up to
    /// [`FP16_W16_MAX_ROWS`] rows (cuBLAS above).
    #[default]
    Auto,
    /// One row per warp, 8 vectors in flight per lane (4 warps per block): the CUDA-core
    /// reference layout of the GPU tests (no rule picks it; at SmolLM2's shapes FP16 K4U2 was
    /// 5 % faster, H200, session 3).
    R1U8,
    /// Block-split K: four rows per block of 8 warps, 2 vectors in flight per row and thread
    /// (N/4 blocks of 256 threads: for the tall down projection several times the bytes in
    /// flight of the warp-per-row layouts).
    K4U2,
    /// Tensor cores (int8 weights, sm_80+; other formats and older GPUs take
    /// [`GemvTile::K4U2`]): 8 rows per block of 8 warps, each warp's `mma.sync` taking 8 rows ×
    /// 16 k of weights, converted int8 → f16 by byte permute + one f16x2 subtract per two;
    /// 4 steps of 64 bytes per row in flight per warp.
    T8U4,
    /// Bandwidth tensor-core GEMV (issue 16; int8 and f16 weights on sm_80+, other formats and
    /// older GPUs take [`GemvTile::K4U2`]): weights as the `mma.sync` A operand, 16 rows per
    /// unit (for the rope / SwiGLU epilogues, 8 pairs), a persistent grid of blocks of 8 warps
    /// striding K in 64-byte chunks per row with 4 chunks (8 16-byte weight loads per thread)
    /// in flight, one activation load per weight load. Runs every GEMV of a decode step: the
    /// plain ones, the norm-fused qkv and gate/up and the norm-fused LM head (int8 or f16);
    /// passes of 5–32 rows take its batched form (weights read once for all rows).
    W16,
}

/// Residual width below which batch-1 W8A16 decode runs its int8 GEMVs on [`GemvTile::T8U4`].
pub const AUTO_TENSOR_CORE_MAX_HIDDEN: usize = 2048;

/// Fewest rows of a pass that [`GemvTile::Auto`] runs on [`GemvTile::W16`]: at 2 rows
/// [`GemvTile::K4U2`] was faster (H100, 2026-12-06, Qwen2.5-7B shapes: FP16 331.6 vs 306.2
/// tok/s, W8A16 457.2 vs 450.7), at 4 W16 (FP16 596.2 vs 559.3, W8A16 792.3 vs 670.0).
pub const W16_MIN_ROWS: usize = 3;

/// Most rows of an FP16 pass that [`GemvTile::Auto`] runs on [`GemvTile::W16`]; above, cuBLAS.
pub const FP16_W16_MAX_ROWS: usize = 8;

/// Most rows the batched [`GemvTile::W16`] GEMV takes (`dg_*_wxp_m32`: 4 groups of 8 batch
/// rows); larger passes take cuBLAS (FP16) or dequantize to f16 for cuBLAS (W8A16).
pub const W16_MAX_ROWS: usize = 32;

/// Most rows [`GemvTile::Auto`] gives to W16: every row count its kernels serve. The batched
/// W16 kernels (`dg_*_wxp_m8/16/32`, 5–32 rows) passed their GPU correctness test on an H100
/// (2026-12-06, session 9: `w16_decode_gemv_matches_the_cuda_core_path_and_the_cpu`, W8A16
/// with f32 / f16 / int8 heads and FP16, against the CUDA-core path and the CPU, greedy tokens
/// of 1, 3 and 12 prompts equal); until then they ran only when forced (`EAI_GEMV_TILE=w16`).
pub const W16_DEFAULT_MAX_ROWS: usize = W16_MAX_ROWS;

// The fused path's rows (≤ GEMV_DENSE_MAX_M) lie inside the rule's W16 ranges, and FP16's
// range inside the batched kernels' rows.
const _: () =
    assert!(super::GEMV_DENSE_MAX_M < FP16_W16_MAX_ROWS && FP16_W16_MAX_ROWS <= W16_MAX_ROWS);

/// The decode GEMV layout [`GemvTile::Auto`] picks for a pass of `rows` rows of a `scheme`
/// model of residual width `hidden`, on an sm_80+ device or not — measured on an NVIDIA H100
/// 80GB HBM3 (2026-12-06, `gpu_bench --only 7b --quick --fused true --half-head true --tile
/// auto,w16 --batches 1,8,32`, Qwen2.5-7B and Mistral-7B shapes; `docs/results/model-gpu.md`):
///
/// - batch 1: [`GemvTile::K4U2`] (W16 was 0.95× for FP16 and 0.89–0.91× for W8A16), int8
///   weights of models narrower than [`AUTO_TENSOR_CORE_MAX_HIDDEN`] [`GemvTile::T8U4`]
///   (session 3, H200);
/// - 2 rows: [`GemvTile::K4U2`] (W16 was 0.92× for FP16, 0.99× for W8A16; see
///   [`W16_MIN_ROWS`]);
/// - W8A16, 3 to [`W16_MAX_ROWS`] rows: [`GemvTile::W16`] (1.18× at 4 rows, 2.03× at 8,
///   3.13× at 16, 3.06× at 32);
///   larger passes (no W16 kernel) [`GemvTile::K4U2`], i.e. the weights dequantized to f16
///   for cuBLAS as before;
/// - FP16, 3 to [`FP16_W16_MAX_ROWS`] rows: [`GemvTile::W16`] (1.07× at 4 rows, 1.05× over
///   cuBLAS at 8);
///   more rows: [`GemvTile::K4U2`], i.e. cuBLAS above
///   [`GEMV_DENSE_MAX_M`](super::GEMV_DENSE_MAX_M) rows (W16 was 0.85×
///   at 32);
/// - rows 3 and 5–7 were not measured: the W16 kernels read each weight once per pass and feed
///   up to 8 batch rows to one `mma` per weight fragment, so a pass of 3–7 rows costs what one
///   of 8 does, while the CUDA-core layouts' instructions per weight byte grow with the rows;
/// - FP32, BF16, W8A8, dynamic, and devices before sm_80 (no W16 or tensor-core GEMV):
///   [`GemvTile::K4U2`], as before.
pub fn default_gemv_tile(scheme: GpuScheme, rows: usize, sm80: bool, hidden: usize) -> GemvTile {
    if !sm80 {
        return GemvTile::K4U2;
    }
    let w16 = |max: usize| (W16_MIN_ROWS..=max.min(W16_DEFAULT_MAX_ROWS)).contains(&rows);
    match scheme {
        GpuScheme::W8A16 if w16(W16_MAX_ROWS) => GemvTile::W16,
        GpuScheme::W8A16 if rows <= 1 && hidden < AUTO_TENSOR_CORE_MAX_HIDDEN => GemvTile::T8U4,
        GpuScheme::Fp16 if w16(FP16_W16_MAX_ROWS) => GemvTile::W16,
        _ => GemvTile::K4U2,
    }
}

impl GemvTile {
    /// Every layout.
    pub const ALL: [GemvTile; 5] =
        [GemvTile::Auto, GemvTile::R1U8, GemvTile::K4U2, GemvTile::T8U4, GemvTile::W16];

    /// `auto`, `r1u8`, `k4u2`, `t8u4`, `w16`.
    pub fn label(self) -> &'static str {
        match self {
            GemvTile::Auto => "auto",
            GemvTile::R1U8 => "r1u8",
            GemvTile::K4U2 => "k4u2",
            GemvTile::T8U4 => "t8u4",
            GemvTile::W16 => "w16",
        }
    }

    /// Parses [`GemvTile::label`].
    pub fn from_label(s: &str) -> Option<Self> {
        GemvTile::ALL.into_iter().find(|t| t.label() == s)
    }

    /// The layout a pass of `rows` rows runs: this one when forced, else (for
    /// [`GemvTile::Auto`]) [`default_gemv_tile`]. Model-wide per pass, so that one setting
    /// decides every GEMV of a step (the tensor-core layouts also switch the norm-fused GEMVs).
    pub fn for_pass(self, scheme: GpuScheme, rows: usize, sm80: bool, hidden: usize) -> GemvTile {
        match self {
            GemvTile::Auto => default_gemv_tile(scheme, rows, sm80, hidden),
            t => t,
        }
    }

    pub(super) fn rows(self) -> usize {
        match self {
            GemvTile::Auto | GemvTile::R1U8 => 1,
            GemvTile::K4U2 => 4,
            GemvTile::T8U4 => 8,
            GemvTile::W16 => 16,
        }
    }

    /// The layout a kernel exists for, given a pass's layout ([`GemvTile::for_pass`]): the
    /// tensor-core layouts serve int8 weights on sm_80+, W16 any format on sm_80+ (the
    /// dispatch checks the format); everything else takes [`GemvTile::K4U2`] (as does an
    /// unresolved [`GemvTile::Auto`]).
    pub(super) fn for_format(self, int8: bool, sm80: bool) -> GemvTile {
        match self {
            GemvTile::Auto => GemvTile::K4U2,
            GemvTile::T8U4 if !(int8 && sm80) => GemvTile::K4U2,
            GemvTile::W16 if !sm80 => GemvTile::K4U2,
            t => t,
        }
    }

    /// Whether the layout runs the int8 GEMVs on tensor cores — the plain ones and, for the
    /// model's tile, the norm-fused qkv, gate/up and int8 LM-head GEMVs too.
    pub fn tensor_core(self) -> bool {
        self == GemvTile::T8U4
    }

    /// Whether the layout splits K over a whole block (one unit per block of 8 warps).
    pub fn block_k(self) -> bool {
        matches!(self, GemvTile::K4U2 | GemvTile::T8U4 | GemvTile::W16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_labels_round_trip() {
        for t in GemvTile::ALL {
            assert_eq!(GemvTile::from_label(t.label()), Some(t));
        }
        // Deleted layouts (issue 16) no longer parse.
        for gone in ["r9u9", "r2u4", "r1u4", "r4u2", "r4u4", "k2u4", "k1u4", "t8u8"] {
            assert_eq!(GemvTile::from_label(gone), None, "{gone}");
        }
        assert_eq!(GemvTile::R1U8.for_format(true, true), GemvTile::R1U8);
        assert_eq!(GemvTile::T8U4.for_format(false, true), GemvTile::K4U2);
        assert_eq!(GemvTile::T8U4.for_format(true, false), GemvTile::K4U2);
        assert!(GemvTile::K4U2.block_k() && !GemvTile::R1U8.block_k());
        assert_eq!((GemvTile::K4U2.rows(), GemvTile::T8U4.rows()), (4, 8));
        assert_eq!(GemvTile::W16.for_format(true, true), GemvTile::W16);
        assert_eq!(GemvTile::W16.for_format(false, true), GemvTile::W16);
        assert_eq!(GemvTile::W16.for_format(true, false), GemvTile::K4U2);
        assert!(GemvTile::W16.block_k() && !GemvTile::W16.tensor_core());
    }

    /// The measured table (H100, 2026-12-06, Qwen2.5-7B shapes, hidden 3,584): which layout
    /// each (scheme, rows) runs by default.
    #[test]
    fn default_tile_follows_the_measured_table() {
        let qwen = |s, rows| default_gemv_tile(s, rows, true, 3584);
        use GpuScheme::{Fp16, W8A16};
        // Batch 1: K4U2 beat W16 (FP16 176.5 vs 168.3 tok/s, W8A16 265.4 vs 236.8).
        assert_eq!(qwen(Fp16, 1), GemvTile::K4U2);
        assert_eq!(qwen(W8A16, 1), GemvTile::K4U2);
        // Batch 8: W16 beat cuBLAS (FP16 1177.0 vs 1115.7) and the CUDA-core int8 GEMV (W8A16
        // 1656.0 vs 817.4); the batched kernels passed their GPU test (session 9).
        assert_eq!(W16_DEFAULT_MAX_ROWS, W16_MAX_ROWS);
        assert_eq!(qwen(Fp16, 8), GemvTile::W16);
        assert_eq!(qwen(W8A16, 8), GemvTile::W16);
        // Batch 16: W8A16 W16 3016.2 vs 963.8 tok/s (session 9).
        assert_eq!(qwen(W8A16, 16), GemvTile::W16);
        // Batch 32: cuBLAS beat W16 for FP16 (4239.3 vs 3607.9); W16 beat dequantize + cuBLAS
        // for W8A16 (4506.9 vs 1471.1).
        assert_eq!(qwen(Fp16, 32), GemvTile::K4U2);
        assert_eq!(qwen(W8A16, 32), GemvTile::W16);
        // Rows 2: K4U2 beat W16 (FP16 331.6 vs 306.2 tok/s, W8A16 457.2 vs 450.7).
        assert_eq!(qwen(Fp16, 2), GemvTile::K4U2);
        assert_eq!(qwen(W8A16, 2), GemvTile::K4U2);
        // Rows 3–4: the single-pass W16 GEMV, GPU-checked (at 4 rows FP16 596.2 vs 559.3,
        // W8A16 792.3 vs 670.0).
        for rows in W16_MIN_ROWS..=FP16_W16_MAX_ROWS {
            assert_eq!(qwen(Fp16, rows), GemvTile::W16, "{rows}");
        }
        for rows in W16_MIN_ROWS..=W16_MAX_ROWS {
            assert_eq!(qwen(W8A16, rows), GemvTile::W16, "{rows}");
        }
        for rows in FP16_W16_MAX_ROWS + 1..=64 {
            assert_eq!(qwen(Fp16, rows), GemvTile::K4U2, "{rows}");
        }
        for rows in [W16_MAX_ROWS + 1, 512] {
            assert_eq!(qwen(W8A16, rows), GemvTile::K4U2, "{rows}");
            assert_eq!(default_gemv_tile(W8A16, rows, true, 576), GemvTile::K4U2, "{rows}");
        }
        // Batch 1 at SmolLM2's width: int8 on the session-3 tensor-core GEMV, FP16 on K4U2.
        assert_eq!(default_gemv_tile(W8A16, 1, true, 576), GemvTile::T8U4);
        assert_eq!(default_gemv_tile(Fp16, 1, true, 576), GemvTile::K4U2);
        assert_eq!(default_gemv_tile(W8A16, 4, true, 576), GemvTile::W16);
        // No tensor-core GEMV before sm_80, none for the other schemes.
        for rows in [1, 2, 8, 32] {
            for s in GpuScheme::ALL {
                assert_eq!(default_gemv_tile(s, rows, false, 3584), GemvTile::K4U2, "{s:?}");
                assert_eq!(default_gemv_tile(s, rows, false, 576), GemvTile::K4U2, "{s:?}");
            }
            for s in [GpuScheme::Fp32, GpuScheme::Bf16, GpuScheme::W8A8, GpuScheme::Dynamic] {
                assert_eq!(default_gemv_tile(s, rows, true, 3584), GemvTile::K4U2, "{s:?}");
            }
        }
    }

    /// A forced tile runs on every pass; `Auto` follows the rule.
    #[test]
    fn a_forced_tile_overrides_the_rule() {
        for t in GemvTile::ALL.into_iter().filter(|t| *t != GemvTile::Auto) {
            for rows in [1, 2, 8, 32, 100] {
                assert_eq!(t.for_pass(GpuScheme::W8A16, rows, true, 3584), t);
                assert_eq!(t.for_pass(GpuScheme::Fp16, rows, false, 576), t);
            }
        }
        assert_eq!(GemvTile::Auto.for_pass(GpuScheme::W8A16, 4, true, 3584), GemvTile::W16);
        assert_eq!(GemvTile::Auto.for_pass(GpuScheme::W8A16, 8, true, 3584), GemvTile::W16);
        assert_eq!(GemvTile::Auto.for_pass(GpuScheme::Fp16, 1, true, 3584), GemvTile::K4U2);
    }
}
