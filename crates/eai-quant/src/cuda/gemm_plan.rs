//! The host-side choices of [`CudaDevice::gemm_i8_dequant`](super::CudaDevice::gemm_i8_dequant):
//! which path a shape takes (our wgmma kernel or cuBLASLt), and on cuBLASLt the row panels and
//! the heuristic rank, each the measured best unless [`Tuning`](super::Tuning) forces it. Plain
//! host logic, unit-tested without a device.

use super::gemm::GemmShape;

/// Panel budget (MiB of int32 accumulator, 0 = one panel) and cuBLASLt heuristic rank of the
/// INT8 GEMM for an `m × n` output: `Tuning::gemm_panel_mib` / `gemm_algo_rank` where set,
/// else the measured best (H100, 2026-12-06, `cuda_bench --gemm-only`, ×cuBLAS FP16):
/// - accumulator ≤ 64 MiB (4096² measured): 32 MiB panels, rank 0 (1.511×; one panel 1.501×,
///   separate 1.426×). Up to 32 MiB that is one panel, as before.
/// - accumulator ≥ 256 MiB (8192² measured): one panel, rank 2 (1.850×; rank 0 1.807×, any
///   panels ≤ 1.699×).
/// - between the two measured points: one panel, rank 0, the setting within 2.5 % of the best
///   at both (1.501× / 1.807×); more panels lost up to 60 % at 8192², and rank 2 was 4 % slower
///   than rank 0 at 4096².
pub fn gemm_plan(m: usize, n: usize, tuning: &super::Tuning) -> (u32, u32) {
    const MIB: u64 = 1 << 20;
    let acc = (m as u64).saturating_mul(n as u64).saturating_mul(4);
    let (mib, rank) = if acc <= 64 * MIB {
        (32, 0)
    } else if acc >= 256 * MIB {
        (0, 2)
    } else {
        (0, 0)
    };
    (tuning.gemm_panel_mib.unwrap_or(mib), tuning.gemm_algo_rank.unwrap_or(rank))
}

/// Whether [`CudaDevice::gemm_i8_dequant`](super::CudaDevice::gemm_i8_dequant) takes the
/// fused wgmma kernel for `shape` on a device of `sms` multiprocessors where the kernel
/// applies: `Tuning::gemm_wgmma` where set, else the measured default: where the output has at
/// least 3/8 of a 128 × 256 tile per multiprocessor (50 tiles on a 132-SM H100). Below that the persistent kernel leaves most
/// multiprocessors idle, each running a whole K loop, while cuBLASLt splits K. H100, session 15,
/// both paths settled at their own clock, 23 shapes × 2 processes (M = 1 … 8192, N, K ∈
/// {4096, 11008}): the rule picks the faster path in all 46; the crossover lies between 43
/// tiles (cuBLASLt 12 % faster) and 64 (wgmma 15–19 % faster); wgmma is 11–37 % faster from
/// M = 512 up and 21–22 % at 4096³, cuBLASLt 1.3–2.6× faster at M ≤ 128.
pub fn use_wgmma(tuning: &super::Tuning, shape: &GemmShape, sms: u32) -> bool {
    tuning.gemm_wgmma.unwrap_or_else(|| 8 * super::wgmma::wgmma_tiles(shape) >= 3 * sms as usize)
}

/// Row panels `(first row, rows)` of
/// [`CudaDevice::gemm_i8_dequant`](super::CudaDevice::gemm_i8_dequant) for an `m × n` output
/// whose int32 accumulator panel may take `mib` MiB (0: one panel of all rows). Panels are a
/// multiple of 64 rows (at least 64) except the last, which takes the remainder; they cover
/// `0..m` in order without overlap.
pub fn row_panels(m: usize, n: usize, mib: u32) -> Vec<(usize, usize)> {
    if mib == 0 || m == 0 || n == 0 {
        return vec![(0, m)];
    }
    let budget_rows = ((mib as usize) << 20) / (4 * n);
    let rows = (budget_rows / 64 * 64).max(64);
    if rows >= m {
        return vec![(0, m)];
    }
    (0..m).step_by(rows).map(|r| (r, rows.min(m - r))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_plans_are_the_measured_best() {
        let d = crate::cuda::Tuning::default();
        // the two measured points
        assert_eq!(gemm_plan(4096, 4096, &d), (32, 0));
        assert_eq!(row_panels(4096, 4096, 32).len(), 2);
        assert_eq!(gemm_plan(8192, 8192, &d), (0, 2));
        // decode and small-batch shapes: one panel, the heuristic's first choice
        let (mib, rank) = gemm_plan(1, 11_008, &d);
        assert_eq!((row_panels(1, 11_008, mib).len(), rank), (1, 0));
        assert_eq!(row_panels(128, 4096, gemm_plan(128, 4096, &d).0).len(), 1);
        // between the points (2048 × 11008: 86 MiB), and beyond the larger one
        assert_eq!(gemm_plan(2048, 11_008, &d), (0, 0));
        assert_eq!(gemm_plan(16_384, 8192, &d), (0, 2));
        // overrides win everywhere
        let t = d.with_overrides("gemm_panel_mib=8,gemm_algo_rank=1");
        assert_eq!(gemm_plan(8192, 8192, &t), (8, 1));
        assert_eq!(gemm_plan(1, 8, &t), (8, 1));
    }

    #[test]
    fn wgmma_takes_shapes_with_enough_tiles() {
        let d = crate::cuda::Tuning::default();
        let on = |m, n, k| use_wgmma(&d, &GemmShape::new(m, n, k), 132);
        // measured winners (H100, session 15): 64 tiles and up
        assert!(on(4096, 4096, 4096) && on(8192, 8192, 8192));
        for m in [512, 1024, 2048] {
            for (n, k) in [(4096, 4096), (11_008, 4096), (4096, 11_008)] {
                assert!(on(m, n, k), "{m}x{n}x{k}");
            }
        }
        assert!(on(256, 11_008, 4096)); // 86 tiles
        // measured losers: up to 43 tiles
        for (m, n, k) in [(1, 4096, 4096), (16, 11_008, 4096), (128, 11_008, 4096)] {
            assert!(!on(m, n, k), "{m}x{n}x{k}");
        }
        assert!(!on(256, 4096, 11_008)); // 32 tiles
        // the boundary on 132 SMs: 50 tiles of 128 x 256
        assert!(!on(128, 12_544, 4096)); // 1 x 49
        assert!(on(128, 12_800, 4096)); // 1 x 50
        assert!(!on(640, 2304, 4096)); // 5 x 9 = 45
        assert!(on(640, 2560, 4096)); // 5 x 10 = 50
        // the tuning field overrides both ways
        let forced = |b| crate::cuda::Tuning { gemm_wgmma: Some(b), ..d };
        assert!(use_wgmma(&forced(true), &GemmShape::new(1, 4096, 4096), 132));
        assert!(!use_wgmma(&forced(false), &GemmShape::new(8192, 8192, 8192), 132));
    }

    #[test]
    fn row_panels_cover_the_rows_in_order() {
        assert_eq!(row_panels(4096, 4096, 0), vec![(0, 4096)]);
        // 16 MiB of int32 at N = 4096 is 1024 rows
        assert_eq!(
            row_panels(4096, 4096, 16),
            vec![(0, 1024), (1024, 1024), (2048, 1024), (3072, 1024)]
        );
        // budget rounded down to 64 rows, remainder in the last panel
        assert_eq!(row_panels(200, 4096 * 64, 1), vec![(0, 64), (64, 64), (128, 64), (192, 8)]);
        // a budget larger than the matrix is one panel; tiny budgets still make 64-row panels
        assert_eq!(row_panels(100, 8, 1024), vec![(0, 100)]);
        assert_eq!(row_panels(130, 1 << 20, 1).len(), 3);
        for (m, n, mib) in [(8192, 8192, 24), (1, 4096, 8), (4097, 11008, 32), (777, 4, 1)] {
            let p = row_panels(m, n, mib);
            let mut next = 0;
            for &(r, rows) in &p {
                assert_eq!(r, next);
                assert!(rows > 0);
                assert!(r % 64 == 0);
                next += rows;
            }
            assert_eq!(next, m, "{m}x{n} at {mib} MiB: {p:?}");
        }
    }
}
