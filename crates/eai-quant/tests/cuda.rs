//! GPU tests of the CUDA backend: device opening, casts, INT8 GEMM, its epilogue and the W8A16
//! GEMV, each against the CPU. They print `skipped <name>` without a GPU, and fail instead when
//! `EAI_REQUIRE_GPU=1`.
#![cfg(feature = "cuda")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "cuda_common/mod.rs"]
mod common;

use common::{Rng, device};
use eai_quant::cuda::{CudaDevice, CudaError, GemmShape, WgmmaKernel, row_panels};
use half::{bf16, f16};

#[test]
fn open_reports_device_or_typed_error() {
    match CudaDevice::open(0) {
        Ok(dev) => {
            let info = dev.info();
            assert!(info.compute_capability >= eai_quant::cuda::MIN_COMPUTE_CAPABILITY);
            assert!(info.multiprocessors > 0 && info.total_memory_bytes > 0);
            eprintln!("device: {info:?}");
            // An ordinal past the end is a typed error, not a panic.
            let count = CudaDevice::count().unwrap();
            match CudaDevice::open(count) {
                Err(CudaError::NoSuchDevice { ordinal, count: c }) => {
                    assert_eq!((ordinal, c), (count, count))
                }
                other => panic!("expected NoSuchDevice, got {other:?}"),
            }
        }
        Err(e) => {
            if std::env::var("EAI_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("EAI_REQUIRE_GPU=1 but: {e}");
            }
            assert!(
                matches!(
                    e,
                    CudaError::LibraryMissing { .. }
                        | CudaError::NoDevice
                        | CudaError::UnsupportedComputeCapability { .. }
                        | CudaError::Driver { .. }
                ),
                "{e:?}"
            );
            eprintln!("skipped open_reports_device_or_typed_error (checked the error only): {e}");
        }
    }
}

fn special_values() -> Vec<f32> {
    vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        65504.0,
        65519.996,
        65520.0,
        -65520.0,
        1e-8,
        -1e-8,
        5.9604645e-8,
        2.9802322e-8,
        2.9802326e-8,
        f32::MIN_POSITIVE,
        1e-40,
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        1.0 + f32::EPSILON,
        3.3895314e38,
        // exact ties of bf16 (low 16 bits = 0x8000) and of f16
        f32::from_bits(0x3F80_8000),
        f32::from_bits(0x3F81_8000),
        f32::from_bits(0x3F80_1000),
        f32::from_bits(0x3F80_3000),
    ]
}

fn same_bits_or_both_nan_f32(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

#[test]
fn casts_match_half_bit_for_bit() {
    let Some(dev) = device("casts_match_half_bit_for_bit") else { return };
    let mut rng = Rng::new(7);
    // Ragged length (not a multiple of the 8-element vector), specials, and random bit patterns
    // that cover every exponent.
    let n = 1_000_003;
    let mut x: Vec<f32> = (0..n).map(|_| f32::from_bits(rng.next_u64() as u32)).collect();
    let specials = special_values();
    x[..specials.len()].copy_from_slice(&specials);
    for v in x.iter_mut().skip(specials.len()).step_by(3) {
        *v = rng.normal(100.0);
    }
    let dx = dev.upload(&x).unwrap();

    let mut d16 = dev.zeros::<f16>(n).unwrap();
    dev.cast(&dx, &mut d16).unwrap();
    let h16 = dev.download(&d16).unwrap();
    let mut db = dev.zeros::<bf16>(n).unwrap();
    dev.cast(&dx, &mut db).unwrap();
    let hb = dev.download(&db).unwrap();
    for i in 0..n {
        let want = f16::from_f32(x[i]);
        assert!(
            want.to_bits() == h16[i].to_bits() || (want.is_nan() && h16[i].is_nan()),
            "f32->f16 at {i}: x={:e} ({:#x}) want {:#x} got {:#x}",
            x[i],
            x[i].to_bits(),
            want.to_bits(),
            h16[i].to_bits()
        );
        let want = bf16::from_f32(x[i]);
        assert!(
            want.to_bits() == hb[i].to_bits() || (want.is_nan() && hb[i].is_nan()),
            "f32->bf16 at {i}: x={:#x} want {:#x} got {:#x}",
            x[i].to_bits(),
            want.to_bits(),
            hb[i].to_bits()
        );
    }

    // Widening is exact; f16 <-> bf16 rounds once.
    let mut back = dev.zeros::<f32>(n).unwrap();
    dev.cast(&d16, &mut back).unwrap();
    let b16 = dev.download(&back).unwrap();
    dev.cast(&db, &mut back).unwrap();
    let bb = dev.download(&back).unwrap();
    let mut d16b = dev.zeros::<bf16>(n).unwrap();
    dev.cast(&d16, &mut d16b).unwrap();
    let h16b = dev.download(&d16b).unwrap();
    let mut db16 = dev.zeros::<f16>(n).unwrap();
    dev.cast(&db, &mut db16).unwrap();
    let hb16 = dev.download(&db16).unwrap();
    for i in 0..n {
        assert!(same_bits_or_both_nan_f32(b16[i], h16[i].to_f32()), "f16->f32 at {i}");
        assert!(same_bits_or_both_nan_f32(bb[i], hb[i].to_f32()), "bf16->f32 at {i}");
        let w = bf16::from_f32(h16[i].to_f32());
        assert!(
            w.to_bits() == h16b[i].to_bits() || (w.is_nan() && h16b[i].is_nan()),
            "f16->bf16 at {i}"
        );
        let w = f16::from_f32(hb[i].to_f32());
        assert!(
            w.to_bits() == hb16[i].to_bits() || (w.is_nan() && hb16[i].is_nan()),
            "bf16->f16 at {i}"
        );
    }

    let mut wrong = dev.zeros::<f16>(n - 1).unwrap();
    assert!(matches!(dev.cast(&dx, &mut wrong), Err(CudaError::Shape { .. })));
}

fn gemm_i32_reference(x: &[i8], w: &[i8], s: GemmShape) -> Vec<i32> {
    let mut y = vec![0i32; s.m * s.n];
    for m in 0..s.m {
        for n in 0..s.n {
            let xr = &x[m * s.k..(m + 1) * s.k];
            let wr = &w[n * s.k..(n + 1) * s.k];
            y[m * s.n + n] = xr.iter().zip(wr).map(|(&a, &b)| i32::from(a) * i32::from(b)).sum();
        }
    }
    y
}

#[test]
fn int8_gemm_is_exact_and_epilogue_matches_cpu() {
    let Some(dev) = device("int8_gemm_is_exact_and_epilogue_matches_cpu") else { return };
    let mut rng = Rng::new(11);
    // Odd M, K and N multiples of 4 but not of 8/16, decode shapes, and an extreme-value case.
    let shapes = [
        GemmShape::new(1, 4, 4),
        GemmShape::new(1, 260, 132),
        GemmShape::new(3, 68, 36),
        GemmShape::new(17, 132, 260),
        GemmShape::new(16, 256, 512),
        GemmShape::new(67, 300, 1028),
        GemmShape::new(128, 512, 4096),
        GemmShape::new(257, 1024, 772),
    ];
    for (si, &s) in shapes.iter().enumerate() {
        let mut x: Vec<i8> = (0..s.m * s.k).map(|_| rng.i8()).collect();
        let mut w: Vec<i8> = (0..s.n * s.k).map(|_| rng.i8()).collect();
        if si == 6 {
            // worst case magnitudes: every product is 128*128 or -128*127
            x.iter_mut().step_by(2).for_each(|v| *v = -128);
            w.iter_mut().step_by(2).for_each(|v| *v = -128);
        }
        let (dx, dw) = (dev.upload(&x).unwrap(), dev.upload(&w).unwrap());
        let mut dy = dev.upload(&vec![i32::MIN; s.m * s.n]).unwrap();
        dev.gemm_i8(&dx, &dw, &mut dy, s).unwrap();
        let y = dev.download(&dy).unwrap();
        let want = gemm_i32_reference(&x, &w, s);
        assert_eq!(y, want, "int32 GEMM differs for {s:?}");

        // Epilogue: exact same f32 operation order as on the CPU -> bit-identical f32, and
        // f16/bf16 equal to rounding that f32 once.
        let sx: Vec<f32> = (0..s.m).map(|_| rng.unit() * 0.02 + 1e-4).collect();
        let sw: Vec<f32> = (0..s.n).map(|_| rng.unit() * 0.01 + 1e-5).collect();
        let bias: Vec<f32> = (0..s.n).map(|_| rng.normal(1.0)).collect();
        let (dsx, dsw, db) =
            (dev.upload(&sx).unwrap(), dev.upload(&sw).unwrap(), dev.upload(&bias).unwrap());
        for with_bias in [false, true] {
            let mut want = vec![0f32; s.m * s.n];
            for m in 0..s.m {
                for n in 0..s.n {
                    let mut v = y[m * s.n + n] as f32 * (sx[m] * sw[n]);
                    if with_bias {
                        v += bias[n];
                    }
                    want[m * s.n + n] = v;
                }
            }
            let b = with_bias.then_some(&db);
            let mut o32 = dev.upload(&vec![f32::NAN; s.m * s.n]).unwrap();
            dev.gemm_dequant(&dy, &dsx, &dsw, b, &mut o32, s.m, s.n).unwrap();
            let got = dev.download(&o32).unwrap();
            for i in 0..got.len() {
                assert_eq!(got[i].to_bits(), want[i].to_bits(), "f32 epilogue {s:?} at {i}");
            }
            let mut o16 = dev.zeros::<f16>(s.m * s.n).unwrap();
            dev.gemm_dequant(&dy, &dsx, &dsw, b, &mut o16, s.m, s.n).unwrap();
            let got = dev.download(&o16).unwrap();
            for i in 0..got.len() {
                assert_eq!(got[i], f16::from_f32(want[i]), "f16 epilogue {s:?} at {i}");
            }
            let mut ob = dev.zeros::<bf16>(s.m * s.n).unwrap();
            dev.gemm_dequant(&dy, &dsx, &dsw, b, &mut ob, s.m, s.n).unwrap();
            let got = dev.download(&ob).unwrap();
            for i in 0..got.len() {
                assert_eq!(got[i], bf16::from_f32(want[i]), "bf16 epilogue {s:?} at {i}");
            }
        }
    }
}

/// Random inputs of an INT8 GEMM + dequantize of `shape` (codes, row and column scales, bias),
/// drawn in this order.
struct FusedCase {
    x: Vec<i8>,
    w: Vec<i8>,
    sx: Vec<f32>,
    sw: Vec<f32>,
    bias: Vec<f32>,
}

impl FusedCase {
    fn random(rng: &mut Rng, s: GemmShape) -> Self {
        let x = (0..s.m * s.k).map(|_| rng.i8()).collect();
        let w = (0..s.n * s.k).map(|_| rng.i8()).collect();
        let sx = (0..s.m).map(|_| rng.unit() * 0.02 + 1e-4).collect();
        let sw = (0..s.n).map(|_| rng.unit() * 0.01 + 1e-5).collect();
        let bias = (0..s.n).map(|_| rng.normal(1.0)).collect();
        Self { x, w, sx, sw, bias }
    }
}

/// The fused INT8 GEMM + dequantize (`gemm_i8_dequant`) for every row-panel budget and several
/// cuBLASLt heuristic ranks: bit-identical to the CPU's exact int32 product followed by the
/// CPU epilogue's operation order, for f32, f16 and bf16 outputs, with and without bias.
#[test]
fn fused_int8_gemm_dequant_matches_cpu_for_every_panel_and_algo() {
    let Some(dev) = device("fused_int8_gemm_dequant_matches_cpu_for_every_panel_and_algo") else {
        return;
    };
    let mut rng = Rng::new(12);
    let shapes = [
        GemmShape::new(1, 4096, 4096),
        GemmShape::new(3, 68, 36),
        GemmShape::new(257, 1024, 772),
        GemmShape::new(300, 4096, 260),
        GemmShape::new(1000, 2048, 512),
        GemmShape::new(129, 260, 132),
    ];
    let base = dev.tuning();
    let mut panels_seen = 0usize;
    for &s in &shapes {
        let FusedCase { x, w, sx, sw, bias } = FusedCase::random(&mut rng, s);
        let acc = gemm_i32_reference(&x, &w, s);
        let (dx, dw) = (dev.upload(&x).unwrap(), dev.upload(&w).unwrap());
        let (dsx, dsw, db) =
            (dev.upload(&sx).unwrap(), dev.upload(&sw).unwrap(), dev.upload(&bias).unwrap());
        for (mib, rank, overlap) in [
            (0, 0, false),
            (1, 0, false),
            (2, 0, false),
            (0, 1, false),
            (1, 3, false),
            (0, 7, false),
            (1, 0, true),
            (2, 1, true),
        ] {
            let mut t = base;
            t.gemm_panel_mib = Some(mib);
            t.gemm_algo_rank = Some(rank);
            t.gemm_overlap = overlap;
            dev.set_tuning(t);
            panels_seen += row_panels(s.m, s.n, mib).len();
            // the int32 GEMM alone under this rank
            let mut dy = dev.upload(&vec![i32::MIN; s.m * s.n]).unwrap();
            dev.gemm_i8(&dx, &dw, &mut dy, s).unwrap();
            assert_eq!(dev.download(&dy).unwrap(), acc, "int32 GEMM {s:?} rank {rank}");
            for with_bias in [false, true] {
                let want: Vec<f32> = (0..s.m * s.n)
                    .map(|i| {
                        let (m, n) = (i / s.n, i % s.n);
                        let v = acc[i] as f32 * (sx[m] * sw[n]);
                        if with_bias { v + bias[n] } else { v }
                    })
                    .collect();
                let b = with_bias.then_some(&db);
                let what =
                    format!("{s:?} panel {mib} MiB rank {rank} overlap {overlap} bias {with_bias}");
                let mut o32 = dev.upload(&vec![f32::NAN; s.m * s.n]).unwrap();
                dev.gemm_i8_dequant(&dx, &dw, &dsx, &dsw, b, &mut o32, s).unwrap();
                let got = dev.download(&o32).unwrap();
                for i in 0..got.len() {
                    assert_eq!(got[i].to_bits(), want[i].to_bits(), "f32 {what} at {i}");
                }
                let mut o16 = dev.upload(&vec![f16::NAN; s.m * s.n]).unwrap();
                dev.gemm_i8_dequant(&dx, &dw, &dsx, &dsw, b, &mut o16, s).unwrap();
                let got = dev.download(&o16).unwrap();
                for i in 0..got.len() {
                    assert_eq!(
                        got[i].to_bits(),
                        f16::from_f32(want[i]).to_bits(),
                        "f16 {what} at {i}"
                    );
                }
                let mut ob = dev.upload(&vec![bf16::NAN; s.m * s.n]).unwrap();
                dev.gemm_i8_dequant(&dx, &dw, &dsx, &dsw, b, &mut ob, s).unwrap();
                let got = dev.download(&ob).unwrap();
                for i in 0..got.len() {
                    assert_eq!(
                        got[i].to_bits(),
                        bf16::from_f32(want[i]).to_bits(),
                        "bf16 {what} at {i}"
                    );
                }
            }
        }
    }
    dev.set_tuning(base);
    // the multi-panel path really ran (1000 × 2048 at 1 MiB is 8 panels of 128 rows)
    assert!(panels_seen > 8 * shapes.len(), "panels: {panels_seen}");
    println!(
        "fused int8 gemm + dequant: {panels_seen} panels over {} shapes bit-exact",
        shapes.len()
    );
    // shape errors are typed
    let s = GemmShape::new(2, 6, 8);
    let (x, w) = (dev.zeros::<i8>(16).unwrap(), dev.zeros::<i8>(48).unwrap());
    let (sx, sw) = (dev.zeros::<f32>(2).unwrap(), dev.zeros::<f32>(6).unwrap());
    let mut y = dev.zeros::<f32>(12).unwrap();
    let r = dev.gemm_i8_dequant(&x, &w, &sx, &sw, None, &mut y, s);
    assert!(matches!(r, Err(CudaError::Shape { .. })));
}

#[test]
fn int8_gemm_rejects_bad_shapes() {
    let Some(dev) = device("int8_gemm_rejects_bad_shapes") else { return };
    let s = GemmShape::new(2, 6, 8);
    let x = dev.zeros::<i8>(16).unwrap();
    let w = dev.zeros::<i8>(48).unwrap();
    let mut y = dev.zeros::<i32>(12).unwrap();
    assert!(matches!(dev.gemm_i8(&x, &w, &mut y, s), Err(CudaError::Shape { .. })));
    let s = GemmShape::new(2, 8, 8);
    let w = dev.zeros::<i8>(64).unwrap();
    assert!(matches!(dev.gemm_i8(&x, &w, &mut y, s), Err(CudaError::Shape { .. })));
}

#[test]
fn w8a16_matches_f64_reference() {
    let Some(dev) = device("w8a16_matches_f64_reference") else { return };
    let mut rng = Rng::new(23);
    let shapes = [
        GemmShape::new(1, 1, 16),
        GemmShape::new(1, 4096, 4096),
        GemmShape::new(1, 333, 1000), // K not a multiple of 16: scalar path
        GemmShape::new(2, 130, 2064),
        GemmShape::new(3, 64, 528),
        GemmShape::new(5, 100, 4096),
        GemmShape::new(16, 256, 11008),
        GemmShape::new(19, 77, 99),
    ];
    for s in shapes {
        let w: Vec<i8> = (0..s.n * s.k).map(|_| rng.i8().max(-127)).collect();
        let sw: Vec<f32> = (0..s.n).map(|_| rng.unit() * 0.01 + 1e-4).collect();
        let bias: Vec<f32> = (0..s.n).map(|_| rng.normal(0.1)).collect();
        let xf: Vec<f32> = (0..s.m * s.k).map(|_| rng.normal(1.0)).collect();
        let (dw, dsw, db) =
            (dev.upload(&w).unwrap(), dev.upload(&sw).unwrap(), dev.upload(&bias).unwrap());
        // f16 and bf16 activations
        let x16: Vec<f16> = xf.iter().map(|&v| f16::from_f32(v)).collect();
        let xb: Vec<bf16> = xf.iter().map(|&v| bf16::from_f32(v)).collect();
        let check = |xs: &[f32], got: &[f32], tol_out: f32, what: &str| {
            for m in 0..s.m {
                for n in 0..s.n {
                    let mut acc = 0f64;
                    let mut mag = 0f64;
                    for k in 0..s.k {
                        let t = f64::from(w[n * s.k + k]) * f64::from(xs[m * s.k + k]);
                        acc += t;
                        mag += t.abs();
                    }
                    let want = acc * f64::from(sw[n]) + f64::from(bias[n]);
                    let g = f64::from(got[m * s.n + n]);
                    let tol =
                        1e-5 * mag * f64::from(sw[n]) + f64::from(tol_out) * want.abs() + 1e-6;
                    assert!(
                        (g - want).abs() <= tol,
                        "{what} {s:?} m={m} n={n}: got {g} want {want}"
                    );
                }
            }
        };
        let dx = dev.upload(&x16).unwrap();
        let mut dy = dev.zeros::<f16>(s.m * s.n).unwrap();
        dev.w8a16(&dw, &dsw, &dx, Some(&db), &mut dy, s).unwrap();
        let got: Vec<f32> = dev.download(&dy).unwrap().iter().map(|v| v.to_f32()).collect();
        let xs: Vec<f32> = x16.iter().map(|v| v.to_f32()).collect();
        check(&xs, &got, 1e-3, "f16");
        let dx = dev.upload(&xb).unwrap();
        let mut dy = dev.zeros::<bf16>(s.m * s.n).unwrap();
        dev.w8a16(&dw, &dsw, &dx, Some(&db), &mut dy, s).unwrap();
        let got: Vec<f32> = dev.download(&dy).unwrap().iter().map(|v| v.to_f32()).collect();
        let xs: Vec<f32> = xb.iter().map(|v| v.to_f32()).collect();
        check(&xs, &got, 8e-3, "bf16");
    }
}

#[test]
fn fp16_reference_gemm_is_close() {
    let Some(dev) = device("fp16_reference_gemm_is_close") else { return };
    let mut rng = Rng::new(5);
    for s in [GemmShape::new(1, 256, 512), GemmShape::new(33, 64, 128)] {
        let x: Vec<f16> = (0..s.m * s.k).map(|_| f16::from_f32(rng.normal(1.0))).collect();
        let w: Vec<f16> = (0..s.n * s.k).map(|_| f16::from_f32(rng.normal(0.05))).collect();
        let (dx, dw) = (dev.upload(&x).unwrap(), dev.upload(&w).unwrap());
        let mut dy = dev.zeros::<f16>(s.m * s.n).unwrap();
        dev.gemm_f16(&dx, &dw, &mut dy, s).unwrap();
        let y = dev.download(&dy).unwrap();
        let (mut num, mut den) = (0f64, 0f64);
        for m in 0..s.m {
            for n in 0..s.n {
                let want: f64 = (0..s.k)
                    .map(|k| {
                        f64::from(x[m * s.k + k].to_f32()) * f64::from(w[n * s.k + k].to_f32())
                    })
                    .sum();
                num += (f64::from(y[m * s.n + n].to_f32()) - want).powi(2);
                den += want * want;
            }
        }
        assert!((num / den).sqrt() < 2e-3, "relative error {}", (num / den).sqrt());
    }
}

/// The traffic probes (strided and blocked) write every item, tail included, with the value
/// their kernel defines: `o[k mod wr/4] ^= w[k mod rd/4] + k` over the item's words.
#[test]
fn traffic_probes_write_every_item() {
    let Some(dev) = device("traffic_probes_write_every_item") else { return };
    let mut rng = Rng::new(13);
    // 132 · 4 blocks of 256 threads cover 135,168 items per pass: take more, and a ragged tail
    let items = 135_168 * 2 + 4 * 128 + 77;
    for (rd, wr) in [(16usize, 4usize), (16, 8), (16, 16), (8, 16), (4, 16)] {
        let src: Vec<u8> = (0..items * rd).map(|_| rng.i8() as u8).collect();
        let ds = dev.upload(&src).unwrap();
        let word = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut want = vec![0u8; items * wr];
        for i in 0..items {
            let mut o = vec![0u32; wr / 4];
            for k in 0..rd.max(wr) / 4 {
                o[k % (wr / 4)] ^= word(&src, i * rd + 4 * (k % (rd / 4))).wrapping_add(k as u32);
            }
            for (j, v) in o.iter().enumerate() {
                want[i * wr + 4 * j..i * wr + 4 * j + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
        for blocked in [false, true] {
            let mut dd = dev.zeros::<u8>(items * wr).unwrap();
            let moved = if blocked {
                dev.traffic_probe_blocked(&ds, &mut dd, rd, wr).unwrap()
            } else {
                dev.traffic_probe(&ds, &mut dd, rd, wr).unwrap()
            };
            assert_eq!(moved, (items * (rd + wr)) as u64);
            assert!(dev.download(&dd).unwrap() == want, "probe {rd}:{wr} blocked {blocked}");
        }
    }
    let (s, mut d) = (dev.zeros::<u8>(64).unwrap(), dev.zeros::<u8>(64).unwrap());
    assert!(matches!(dev.traffic_probe_blocked(&s, &mut d, 4, 4), Err(CudaError::Shape { .. })));
    // the read-only probe: every item read once, folded into one word per thread, so the xor
    // of all the words is the xor over every item and word k of (word + k)
    let src: Vec<u8> = (0..items * 16).map(|_| rng.i8() as u8).collect();
    let ds = dev.upload(&src).unwrap();
    let threads = items.div_ceil(256).min(4 * dev.info().multiprocessors as usize) * 256;
    let mut dd = dev.zeros::<u8>(4 * threads).unwrap();
    let moved = dev.traffic_probe(&ds, &mut dd, 16, 0).unwrap();
    assert_eq!(moved, (items * 16 + 4 * threads) as u64);
    let fold = |b: &[u8]| {
        b.chunks_exact(4).enumerate().fold(0u32, |a, (j, w)| {
            let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            a ^ w.wrapping_add((j % 4) as u32)
        })
    };
    let got = dev.download(&dd).unwrap();
    let words =
        got.chunks_exact(4).fold(0u32, |a, w| a ^ u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
    assert_eq!(words, fold(&src), "read-only probe");
    let mut small = dev.zeros::<u8>(4 * threads - 4).unwrap();
    assert!(matches!(dev.traffic_probe(&ds, &mut small, 16, 0), Err(CudaError::Shape { .. })));
}

/// The Hopper wgmma INT8 GEMM with the dequantize in its epilogue (`gemm_i8_dequant_wgmma`):
/// bit-identical to the CPU's exact int32 product followed by the CPU epilogue, for f32, f16
/// and bf16 outputs, with and without bias, on ragged shapes (M and N not multiples of the
/// 128 × 256 tile, K a multiple of 16 but not of the 128-byte stage, more tiles than SMs so
/// that the persistent blocks take several tiles each), and at 4096³ against the cuBLASLt path
/// (all elements) and the CPU (sampled rows). On a compute capability 9.0 device the kernel
/// must run (no fallback); elsewhere it must refuse with `Unsupported`. Kernel v1 (one CTA per
/// tile); [`wgmma2_int8_gemm_dequant_matches_cpu_bit_for_bit`] runs the same checks on v2.
#[test]
fn wgmma_int8_gemm_dequant_matches_cpu_bit_for_bit() {
    check_wgmma(WgmmaKernel::V1, "wgmma_int8_gemm_dequant_matches_cpu_bit_for_bit");
}

/// [`wgmma_int8_gemm_dequant_matches_cpu_bit_for_bit`] on kernel v2 (clusters of 2 CTAs along M
/// sharing W's tile by TMA multicast): the same shapes cover odd tile-row counts (the last
/// cluster's second CTA has no rows), W halves wholly outside N (N = 4, 68, 260, 4100) and
/// clusters taking 1 to 3 cluster tiles; bf16 through the `Tuning::gemm_wgmma` dispatch (whose
/// kernel is v2).
#[test]
fn wgmma2_int8_gemm_dequant_matches_cpu_bit_for_bit() {
    check_wgmma(WgmmaKernel::V2, "wgmma2_int8_gemm_dequant_matches_cpu_bit_for_bit");
}

/// The same checks on kernel v3 (clusters of 4 CTAs along M, each loading a quarter of W's
/// tile): tile rows not a multiple of 4 (1, 2, 3, 9, 11), W quarters wholly outside N.
#[test]
fn wgmma3_int8_gemm_dequant_matches_cpu_bit_for_bit() {
    check_wgmma(WgmmaKernel::V3, "wgmma3_int8_gemm_dequant_matches_cpu_bit_for_bit");
}

/// The same checks on kernel v4 (v2's clusters of 2, 3 stages, the epilogue staged in shared
/// memory and written by TMA stores): f32 always through the TMA store (ragged N = 4 … 4100
/// clipped by the tensor map, rows past M, the spare CTA of 1408 rows, two passes per tile),
/// f16 / bf16 through it where N % 8 == 0 (N = 1024, 4096, 2560, 6144; 4096³: 4 tiles per CTA
/// reusing the staging buffers) and from registers elsewhere (no tensor map for that stride).
#[test]
fn wgmma4_int8_gemm_dequant_matches_cpu_bit_for_bit() {
    check_wgmma(WgmmaKernel::V4, "wgmma4_int8_gemm_dequant_matches_cpu_bit_for_bit");
}

fn check_wgmma(kernel: WgmmaKernel, test: &str) {
    let Some(dev) = device(test) else { return };
    let hopper = dev.info().compute_capability == (9, 0);
    if !hopper {
        let s = GemmShape::new(1, 4, 16);
        let (x, w) = (dev.zeros::<i8>(16).unwrap(), dev.zeros::<i8>(64).unwrap());
        let (sx, sw) = (dev.zeros::<f32>(1).unwrap(), dev.zeros::<f32>(4).unwrap());
        let mut y = dev.zeros::<f32>(4).unwrap();
        let r = dev.gemm_i8_dequant_wgmma(&x, &w, &sx, &sw, None, &mut y, s);
        assert!(matches!(r, Err(CudaError::Unsupported { .. })), "{r:?}");
        assert!(!dev.wgmma_applies(&s));
        eprintln!("skipped {test}: not sm_90");
        return;
    }
    println!(
        "wgmma {}: {} co-resident clusters of {} on {} SMs",
        kernel.name(),
        dev.wgmma_clusters(kernel).unwrap(),
        kernel.cluster(),
        dev.info().multiprocessors
    );
    let mut rng = Rng::new(13);
    let shapes = [
        GemmShape::new(1, 4, 16),
        GemmShape::new(3, 68, 48),
        GemmShape::new(129, 260, 144),
        GemmShape::new(257, 1024, 784),
        GemmShape::new(131, 516, 4096),
        GemmShape::new(300, 4096, 272),
        // 9 × 17 = 153 and 16 × 10 = 160 tiles: more than the 132 SMs of an H100
        GemmShape::new(1100, 4100, 64),
        GemmShape::new(2000, 2560, 160),
        // v2: 11 tile rows (the last cluster's second CTA has none), 6 × 24 = 144 cluster tiles
        // on 66 clusters (2 or 3 each), K of one stage and a 16-byte tail
        GemmShape::new(1408, 6144, 144),
    ];
    let base = dev.tuning();
    for &s in &shapes {
        assert!(dev.wgmma_applies(&s), "{s:?}");
        let FusedCase { x, w, sx, sw, bias } = FusedCase::random(&mut rng, s);
        let acc = gemm_i32_reference(&x, &w, s);
        let (dx, dw) = (dev.upload(&x).unwrap(), dev.upload(&w).unwrap());
        let (dsx, dsw, db) =
            (dev.upload(&sx).unwrap(), dev.upload(&sw).unwrap(), dev.upload(&bias).unwrap());
        for with_bias in [false, true] {
            let want: Vec<f32> = (0..s.m * s.n)
                .map(|i| {
                    let (m, n) = (i / s.n, i % s.n);
                    let v = acc[i] as f32 * (sx[m] * sw[n]);
                    if with_bias { v + bias[n] } else { v }
                })
                .collect();
            let b = with_bias.then_some(&db);
            let what = format!("wgmma {} {s:?} bias {with_bias}", kernel.name());
            let mut o32 = dev.upload(&vec![f32::NAN; s.m * s.n]).unwrap();
            dev.gemm_i8_dequant_wgmma_kernel(&dx, &dw, &dsx, &dsw, b, &mut o32, s, kernel).unwrap();
            let got = dev.download(&o32).unwrap();
            for i in 0..got.len() {
                assert_eq!(got[i].to_bits(), want[i].to_bits(), "f32 {what} at {i}");
            }
            let mut o16 = dev.upload(&vec![f16::NAN; s.m * s.n]).unwrap();
            dev.gemm_i8_dequant_wgmma_kernel(&dx, &dw, &dsx, &dsw, b, &mut o16, s, kernel).unwrap();
            let got = dev.download(&o16).unwrap();
            for i in 0..got.len() {
                assert_eq!(got[i].to_bits(), f16::from_f32(want[i]).to_bits(), "f16 {what} at {i}");
            }
            // bf16: v2 through the public entry point with the tuning switch (the dispatch)
            let mut ob = dev.upload(&vec![bf16::NAN; s.m * s.n]).unwrap();
            if kernel == WgmmaKernel::default() {
                let mut t = base;
                t.gemm_wgmma = Some(true);
                dev.set_tuning(t);
                dev.gemm_i8_dequant(&dx, &dw, &dsx, &dsw, b, &mut ob, s).unwrap();
                dev.set_tuning(base);
            } else {
                dev.gemm_i8_dequant_wgmma_kernel(&dx, &dw, &dsx, &dsw, b, &mut ob, s, kernel)
                    .unwrap();
            }
            let got = dev.download(&ob).unwrap();
            for i in 0..got.len() {
                assert_eq!(
                    got[i].to_bits(),
                    bf16::from_f32(want[i]).to_bits(),
                    "bf16 {what} at {i}"
                );
            }
        }
    }
    // 4096³: every element against the cuBLASLt path (itself bit-exact against the CPU in the
    // test above), and 48 sampled rows against the CPU
    let s = GemmShape::new(4096, 4096, 4096);
    let FusedCase { x, w, sx, sw, bias } = FusedCase::random(&mut rng, s);
    let (dx, dw) = (dev.upload(&x).unwrap(), dev.upload(&w).unwrap());
    let (dsx, dsw, db) =
        (dev.upload(&sx).unwrap(), dev.upload(&sw).unwrap(), dev.upload(&bias).unwrap());
    let mut t = base;
    t.gemm_wgmma = Some(false);
    dev.set_tuning(t);
    let mut lt = dev.zeros::<f16>(s.m * s.n).unwrap();
    dev.gemm_i8_dequant(&dx, &dw, &dsx, &dsw, Some(&db), &mut lt, s).unwrap();
    dev.set_tuning(base);
    let lt = dev.download(&lt).unwrap();
    let mut wg = dev.upload(&vec![f16::NAN; s.m * s.n]).unwrap();
    dev.gemm_i8_dequant_wgmma_kernel(&dx, &dw, &dsx, &dsw, Some(&db), &mut wg, s, kernel).unwrap();
    let wg = dev.download(&wg).unwrap();
    let mismatches = lt.iter().zip(&wg).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    let k = kernel.name();
    assert_eq!(mismatches, 0, "4096³ wgmma {k} vs cuBLASLt: {mismatches} of {} differ", lt.len());
    for r in 0..48 {
        let m = if r == 0 { s.m - 1 } else { rng.below(s.m) };
        let row = GemmShape::new(1, s.n, s.k);
        let acc = gemm_i32_reference(&x[m * s.k..(m + 1) * s.k], &w, row);
        for n in 0..s.n {
            let v = acc[n] as f32 * (sx[m] * sw[n]) + bias[n];
            assert_eq!(
                wg[m * s.n + n].to_bits(),
                f16::from_f32(v).to_bits(),
                "4096³ row {m} col {n}"
            );
        }
    }
    // shapes the kernel does not take are typed errors, never a silent fallback
    let s = GemmShape::new(2, 8, 40);
    let (x, w) = (dev.zeros::<i8>(80).unwrap(), dev.zeros::<i8>(320).unwrap());
    let (sx, sw) = (dev.zeros::<f32>(2).unwrap(), dev.zeros::<f32>(8).unwrap());
    let mut y = dev.zeros::<f32>(16).unwrap();
    assert!(!dev.wgmma_applies(&s));
    let r = dev.gemm_i8_dequant_wgmma(&x, &w, &sx, &sw, None, &mut y, s);
    assert!(matches!(r, Err(CudaError::Shape { .. })), "{r:?}");
    println!(
        "wgmma {} int8 gemm + dequant: {} shapes and 4096³ bit-exact",
        kernel.name(),
        shapes.len()
    );
}
