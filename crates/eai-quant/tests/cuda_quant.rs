//! GPU quantization against the CPU reference, bit for bit: codes, scales and zero points for
//! every preset and granularity, from f32, f16 and bf16 inputs, over ragged shapes, exact
//! rounding ties, all-zero groups, subnormals and non-finite values (≥ 10⁸ elements in all);
//! the same errors as the CPU; and the W8A8 linear pipeline against the CPU INT8 matmul.
//! Without a GPU each test prints `skipped <name>` (fails with `EAI_REQUIRE_GPU=1`).
#![cfg(feature = "cuda")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "cuda_common/mod.rs"]
mod common;

use std::sync::Arc;

use common::{Rng, device};
use eai_quant::cuda::{CudaDevice, CudaError, CudaQuantizer, GemmShape};
use eai_quant::{
    Codes, CpuQuantizer, Granularity, IntRange, Mapping, NonFinite, QuantError, QuantSpec,
    Quantizer, ScaleDtype, dequantize_to_vec,
};
use half::{bf16, f16};

/// Every preset plus variations that exercise the remaining code paths.
fn specs() -> Vec<(String, QuantSpec)> {
    let mut v: Vec<(String, QuantSpec)> =
        QuantSpec::presets().into_iter().map(|(n, s)| (n.to_string(), s)).collect();
    v.push(("vllm per-token".into(), QuantSpec::vllm_int8_activation_per_token()));
    v.push(("eai per-token".into(), QuantSpec::int8_activation_per_token()));
    v.push((
        "eai sym f16 scales group-64".into(),
        QuantSpec {
            scale_dtype: ScaleDtype::F16,
            granularity: Granularity::PerGroup { size: 64 },
            ..QuantSpec::int8_weight()
        },
    ));
    v.push((
        "eai asym bf16 scales per-token saturate".into(),
        QuantSpec {
            scale_dtype: ScaleDtype::Bf16,
            granularity: Granularity::PerToken,
            non_finite: NonFinite::Saturate,
            ..QuantSpec::uint8_asymmetric()
        },
    ));
    v.push((
        "i8 asym per-tensor".into(),
        QuantSpec::torch_per_tensor(IntRange::I8, Mapping::Asymmetric),
    ));
    v.push((
        "eai sym per-channel axis 1 saturate".into(),
        QuantSpec {
            granularity: Granularity::PerChannel { axis: 1 },
            non_finite: NonFinite::Saturate,
            ..QuantSpec::int8_weight()
        },
    ));
    v.push((
        "u8 sym per-channel last axis".into(),
        QuantSpec {
            range: IntRange::U8,
            granularity: Granularity::PerChannel { axis: usize::MAX },
            ..QuantSpec::int8_weight()
        },
    ));
    v
}

/// Fix a spec for a shape (group size dividing the last axis, channel axis in range).
fn fit(spec: QuantSpec, shape: &[usize]) -> Option<QuantSpec> {
    let last = *shape.last()?;
    let granularity = match spec.granularity {
        Granularity::PerGroup { size } => {
            if last % size == 0 {
                spec.granularity
            } else if last % 7 == 0 {
                Granularity::PerGroup { size: 7 }
            } else {
                return None;
            }
        }
        Granularity::PerChannel { axis } if axis >= shape.len() => {
            Granularity::PerChannel { axis: shape.len() - 1 }
        }
        g => g,
    };
    Some(QuantSpec { granularity, ..spec })
}

/// Random input with the hard cases mixed in: rows of exact ties (amax 127 → scale 1, so
/// k + ½ is an exact tie; amax 63.5 → scale ½), all-zero rows, tiny and subnormal rows,
/// outliers, and (for Saturate specs) NaN/±inf.
fn input(rng: &mut Rng, shape: &[usize], non_finite: bool) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let last = *shape.last().unwrap();
    let mut x: Vec<f32> = (0..n).map(|_| rng.normal(1.0)).collect();
    for (r, row) in x.chunks_mut(last).enumerate() {
        match r % 11 {
            1 => {
                for v in row.iter_mut() {
                    *v = (rng.below(253) as f32 - 126.0) + 0.5;
                }
                row[0] = 127.0;
                if row.len() > 1 {
                    row[1] = -127.0;
                }
            }
            2 => {
                for v in row.iter_mut() {
                    *v = ((rng.below(253) as f32 - 126.0) + 0.5) * 0.5;
                }
                row[0] = -63.5;
            }
            3 => row.iter_mut().for_each(|v| *v = 0.0),
            4 => row.iter_mut().for_each(|v| *v *= 1e-39),
            5 => row.iter_mut().for_each(|v| *v *= 1e-6),
            6 => {
                let i = rng.below(row.len());
                row[i] *= 1000.0;
            }
            7 => row.iter_mut().for_each(|v| *v = v.abs() + 3.0),
            8 => row.iter_mut().for_each(|v| *v = -v.abs() - 0.25),
            _ => {}
        }
    }
    if non_finite {
        for _ in 0..(n / 1000).max(3) {
            let i = rng.below(n);
            x[i] = match rng.below(3) {
                0 => f32::NAN,
                1 => f32::INFINITY,
                _ => f32::NEG_INFINITY,
            };
        }
    }
    x
}

#[derive(Clone, Copy, Debug)]
enum Dtype {
    F32,
    F16,
    Bf16,
}

/// Quantize on both sides and compare bit for bit. Returns the element count.
fn compare(
    dev: &CudaDevice,
    name: &str,
    spec: &QuantSpec,
    shape: &[usize],
    x: &[f32],
    dtype: Dtype,
) -> usize {
    // The exact f32 values the device sees (16-bit inputs widen exactly).
    let (xs, cuda) = match dtype {
        Dtype::F32 => (x.to_vec(), dev.quantize(name, spec, &dev.upload(x).unwrap(), shape)),
        Dtype::F16 => {
            let h: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
            (
                h.iter().map(|v| v.to_f32()).collect(),
                dev.quantize(name, spec, &dev.upload(&h).unwrap(), shape),
            )
        }
        Dtype::Bf16 => {
            let h: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
            (
                h.iter().map(|v| v.to_f32()).collect(),
                dev.quantize(name, spec, &dev.upload(&h).unwrap(), shape),
            )
        }
    };
    let cpu = CpuQuantizer::new(*spec).unwrap().quantize_slice(name, &xs, shape);
    let (cpu, cuda) = match (cpu, cuda) {
        (Ok(c), Ok(g)) => (c, g),
        (Err(a), Err(CudaError::Quant(b))) => {
            assert_eq!(
                a.to_string(),
                b.to_string(),
                "{name} {shape:?} {dtype:?}: different errors"
            );
            return xs.len();
        }
        (a, b) => panic!("{name} {shape:?} {dtype:?}: cpu {a:?} vs cuda {b:?}"),
    };
    let gpu = cuda.to_host(dev).unwrap();
    assert_eq!(gpu.scale_shape, cpu.scale_shape, "{name} {shape:?}");
    for (g, (a, b)) in cpu.scales.iter().zip(&gpu.scales).enumerate() {
        assert_eq!(
            a.to_bits(),
            b.to_bits(),
            "{name} {shape:?} {dtype:?}: scale of group {g}: cpu {a:e} gpu {b:e}"
        );
    }
    assert_eq!(cpu.zero_points, gpu.zero_points, "{name} {shape:?} {dtype:?}: zero points");
    let (cc, gc) = (cpu.codes.to_i32(), gpu.codes.to_i32());
    if cc != gc {
        let i = cc.iter().zip(&gc).position(|(a, b)| a != b).unwrap();
        let layout = cpu.layout().unwrap();
        let g = layout.group_of(i);
        panic!(
            "{name} {shape:?} {dtype:?}: code {i} differs: x = {:e} ({:#010x}), scale {:e}, zp {}, cpu {} gpu {}",
            xs[i],
            xs[i].to_bits(),
            cpu.scales[g],
            cpu.zero_points[g],
            cc[i],
            gc[i]
        );
    }
    assert_eq!(
        matches!(cpu.codes, Codes::I8(_)),
        matches!(gpu.codes, Codes::I8(_)),
        "{name}: code type"
    );
    // Dequantization on the device is bit-identical to the CPU's.
    let mut y = dev.zeros::<f32>(xs.len()).unwrap();
    dev.dequantize_into(&cuda, &mut y).unwrap();
    let gy = dev.download(&y).unwrap();
    let cy = dequantize_to_vec(&cpu).unwrap();
    for i in 0..cy.len() {
        assert_eq!(cy[i].to_bits(), gy[i].to_bits(), "{name} {shape:?}: dequantized {i}");
    }
    // ... and to f16/bf16: the CPU value rounded once (RNE), on the smaller shapes
    if xs.len() <= 1 << 20 {
        let mut yh = dev.zeros::<f16>(xs.len()).unwrap();
        dev.dequantize_into(&cuda, &mut yh).unwrap();
        let mut yb = dev.zeros::<bf16>(xs.len()).unwrap();
        dev.dequantize_into(&cuda, &mut yb).unwrap();
        let (gh, gb) = (dev.download(&yh).unwrap(), dev.download(&yb).unwrap());
        for i in 0..cy.len() {
            assert_eq!(
                f16::from_f32(cy[i]).to_bits(),
                gh[i].to_bits(),
                "{name} {shape:?}: f16 dequantized {i}"
            );
            assert_eq!(
                bf16::from_f32(cy[i]).to_bits(),
                gb[i].to_bits(),
                "{name} {shape:?}: bf16 dequantized {i}"
            );
        }
    }
    xs.len()
}

#[test]
fn quantize_matches_cpu_bit_for_bit() {
    let Some(dev) = device("quantize_matches_cpu_bit_for_bit") else { return };
    let mut rng = Rng::new(2026);
    let small: &[&[usize]] = &[
        &[1],
        &[7],
        &[37, 129],
        &[3, 5, 7],
        &[2, 3, 64],
        &[1, 4097],
        &[64, 3000],
        &[17, 2048],
        &[5, 8200],
        &[9, 96],
        &[1_000_003],
        &[33, 7, 40],
        &[7, 2600],
        &[5, 1800],
    ];
    let large: &[&[usize]] = &[&[4096, 4096], &[2048, 11008], &[8192, 1024]];
    let mut total = 0usize;
    let mut cases = 0usize;
    for (ci, (name, spec)) in specs().into_iter().enumerate() {
        // every small shape, and one large shape per spec (rotating)
        let big = large[ci % large.len()];
        for (si, shape) in small.iter().chain(std::iter::once(&big)).enumerate() {
            let Some(spec) = fit(spec, shape) else { continue };
            let is_large = si >= small.len();
            let nf = spec.non_finite == NonFinite::Saturate;
            let x = input(&mut rng, shape, nf);
            let dtypes: &[Dtype] =
                if is_large { &[Dtype::F32] } else { &[Dtype::F32, Dtype::F16, Dtype::Bf16] };
            for &dt in dtypes {
                total += compare(&dev, &name, &spec, shape, &x, dt);
                cases += 1;
            }
        }
    }
    // A second pass over the large shapes from 16-bit inputs, so each input type gets ≥ 10⁷.
    for (name, spec) in specs().into_iter().take(4) {
        let shape: &[usize] = &[4096, 4096];
        let Some(spec) = fit(spec, shape) else { continue };
        let x = input(&mut rng, shape, false);
        total += compare(&dev, &name, &spec, shape, &x, Dtype::F16);
        total += compare(&dev, &name, &spec, shape, &x, Dtype::Bf16);
        cases += 2;
    }
    // Per-tensor inputs that fit in shared memory take the one-pass cooperative kernel: a
    // shape spread over every multiprocessor, from each input type.
    for (name, spec) in specs() {
        if spec.granularity != Granularity::PerTensor {
            continue;
        }
        let shape: &[usize] = &[2048, 3072];
        let x = input(&mut rng, shape, spec.non_finite == NonFinite::Saturate);
        for dt in [Dtype::F32, Dtype::F16, Dtype::Bf16] {
            total += compare(&dev, &name, &spec, shape, &x, dt);
            cases += 1;
        }
    }
    eprintln!(
        "quantize_matches_cpu_bit_for_bit: {cases} cases, {total} elements compared bit for bit"
    );
    assert!(total >= 100_000_000, "only {total} elements compared");
}

#[test]
fn errors_match_cpu() {
    let Some(dev) = device("errors_match_cpu") else { return };
    let mut rng = Rng::new(3);
    for gran in [
        Granularity::PerTensor,
        Granularity::PerToken,
        Granularity::PerChannel { axis: 0 },
        Granularity::PerChannel { axis: 1 },
        Granularity::PerGroup { size: 8 },
    ] {
        for shape in [vec![40usize, 3000], vec![300, 72], vec![8, 8]] {
            let spec = QuantSpec { granularity: gran, ..QuantSpec::int8_weight() };
            let n: usize = shape.iter().product();
            let mut x: Vec<f32> = (0..n).map(|_| rng.normal(1.0)).collect();
            // two non-finite values: the first in row-major order must be reported
            let a = rng.below(n / 2) + n / 2;
            let b = rng.below(n / 2);
            x[a] = f32::NAN;
            x[b] = f32::NEG_INFINITY;
            let gpu = dev.quantize("blk.0.w", &spec, &dev.upload(&x).unwrap(), &shape);
            let cpu = CpuQuantizer::new(spec).unwrap().quantize_slice("blk.0.w", &x, &shape);
            match (cpu, gpu) {
                (Err(c @ QuantError::NonFinite { .. }), Err(CudaError::Quant(g))) => {
                    assert_eq!(c.to_string(), g.to_string())
                }
                other => panic!("{gran:?} {shape:?}: {other:?}"),
            }
            // the same from bf16 (the 16-bit statistics kernels, whose packed fast paths hand
            // a column or group with a non-finite value to the exact rule)
            let xb: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
            let xw: Vec<f32> = xb.iter().map(|v| v.to_f32()).collect();
            let gpu = dev.quantize("blk.0.w", &spec, &dev.upload(&xb).unwrap(), &shape);
            let cpu = CpuQuantizer::new(spec).unwrap().quantize_slice("blk.0.w", &xw, &shape);
            match (cpu, gpu) {
                (Err(c @ QuantError::NonFinite { .. }), Err(CudaError::Quant(g))) => {
                    assert_eq!(c.to_string(), g.to_string())
                }
                other => panic!("bf16 {gran:?} {shape:?}: {other:?}"),
            }
        }
    }
    // f16 scale overflow is reported for the same group
    let spec = QuantSpec {
        scale_dtype: ScaleDtype::F16,
        granularity: Granularity::PerToken,
        ..QuantSpec::int8_weight()
    };
    let mut x = vec![1.0f32; 4 * 16];
    x[2 * 16 + 3] = 1e9;
    let gpu = dev.quantize("big", &spec, &dev.upload(&x).unwrap(), &[4, 16]);
    let cpu = CpuQuantizer::new(spec).unwrap().quantize_slice("big", &x, &[4, 16]);
    match (cpu, gpu) {
        (Err(c @ QuantError::BadScale { .. }), Err(CudaError::Quant(g))) => {
            assert_eq!(c.to_string(), g.to_string())
        }
        other => panic!("{other:?}"),
    }
    // layout errors are the CPU's
    let spec =
        QuantSpec { granularity: Granularity::PerGroup { size: 5 }, ..QuantSpec::int8_weight() };
    assert!(matches!(
        dev.quantize("g", &spec, &dev.upload(&[0f32; 12]).unwrap(), &[2, 6]),
        Err(CudaError::Quant(QuantError::BadGroup { .. }))
    ));
}

#[test]
fn cuda_quantizer_is_a_drop_in_quantizer() {
    let Some(dev) = device("cuda_quantizer_is_a_drop_in_quantizer") else { return };
    let dev = Arc::new(dev);
    let mut rng = Rng::new(99);
    for (name, spec) in specs() {
        // both this shape and its transpose are divisible by every group size used
        let shape = [128usize, 384];
        let Some(spec) = fit(spec, &shape) else { continue };
        let x = ndarray::Array2::from_shape_fn((128, 384), |_| rng.normal(2.0)).into_dyn();
        let qs: Vec<Box<dyn Quantizer>> = vec![
            Box::new(CpuQuantizer::new(spec).unwrap()),
            Box::new(CudaQuantizer::new(dev.clone(), spec).unwrap()),
        ];
        let a = qs[0].quantize_named("t", x.view()).unwrap();
        let b = qs[1].quantize_named("t", x.view()).unwrap();
        assert_eq!(a, b, "{name}");
        let da = qs[0].dequantize(&a).unwrap();
        let db = qs[1].dequantize(&a).unwrap();
        assert!(da.iter().zip(db.iter()).all(|(p, q)| p.to_bits() == q.to_bits()), "{name}");
        // non-contiguous input
        let t = x.t();
        assert_eq!(
            qs[0].quantize(t.view()).unwrap(),
            qs[1].quantize(t.view()).unwrap(),
            "{name} (transposed)"
        );
    }
}

#[test]
fn w8a8_linear_matches_cpu_int8_matmul() {
    let Some(dev) = device("w8a8_linear_matches_cpu_int8_matmul") else { return };
    let mut rng = Rng::new(8);
    for (m, n, k) in [(1usize, 256usize, 512usize), (17, 132, 260), (128, 512, 4096)] {
        let x: Vec<f32> = (0..m * k).map(|_| rng.normal(1.0)).collect();
        let w: Vec<f32> = (0..n * k).map(|_| rng.normal(0.05)).collect();
        let bias: Vec<f32> = (0..n).map(|_| rng.normal(0.1)).collect();
        let sx = QuantSpec::int8_activation_per_token();
        let sw = QuantSpec::int8_weight();
        let cx = CpuQuantizer::new(sx).unwrap().quantize_slice("x", &x, &[m, k]).unwrap();
        let cw = CpuQuantizer::new(sw).unwrap().quantize_slice("w", &w, &[n, k]).unwrap();
        let want = eai_quant::int8_matmul(&cx, &cw, Some(&bias)).unwrap();

        let gx = dev.quantize("x", &sx, &dev.upload(&x).unwrap(), &[m, k]).unwrap();
        let gw = dev.quantize("w", &sw, &dev.upload(&w).unwrap(), &[n, k]).unwrap();
        let mut acc = dev.zeros::<i32>(m * n).unwrap();
        dev.gemm_i8(gx.codes(), gw.codes(), &mut acc, GemmShape::new(m, n, k)).unwrap();
        let db = dev.upload(&bias).unwrap();
        let mut y = dev.zeros::<f32>(m * n).unwrap();
        dev.gemm_dequant(&acc, gx.scales(), gw.scales(), Some(&db), &mut y, m, n).unwrap();
        let got = dev.download(&y).unwrap();
        for (i, (a, b)) in want.iter().zip(&got).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "({m},{n},{k}) at {i}: cpu {a} gpu {b}");
        }
    }
}

#[test]
fn cuda_quantizer_passes_the_conformance_suite() {
    let Some(dev) = device("cuda_quantizer_passes_the_conformance_suite") else { return };
    let dev = Arc::new(dev);
    for (name, spec) in specs() {
        let Some(spec) = fit(spec, &[4, 64]) else { continue };
        let q = CudaQuantizer::new(dev.clone(), spec).unwrap();
        eai_quant::testing::check_quantizer(&q).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// The register row kernels on groups of more than 8 vectors against the CPU bit for bit, for
/// every spec on shapes whose groups take them (group-128 rows, ragged and short rows, more
/// groups than resident teams so the loop runs several steps, and fewer): the in-warp kernel
/// with 2 and 4 vectors per lane at several block sizes, and the contiguous kernel (session
/// 14's `quant_group_contig` 2 and 4).
#[test]
fn register_row_variants_match_cpu_bit_for_bit() {
    let Some(dev) = device("register_row_variants_match_cpu_bit_for_bit") else { return };
    let mut rng = Rng::new(78);
    let shapes: &[&[usize]] =
        &[&[37, 129], &[9, 96], &[40, 256], &[4099, 128], &[1, 64], &[3, 40, 256]];
    let default = dev.tuning();
    let mut total = 0usize;
    for v in [2u32, 4] {
        for (cs, threads, contig) in
            [(false, 256u32, false), (true, 64, false), (false, 128, false), (false, 256, true)]
        {
            let mut t = default;
            t.quant_group_contig = Some(if contig { v } else { 0 });
            t.quant_load_streaming = Some(cs);
            t.quant_reg_vectors_f32 = v;
            t.quant_reg_vectors_half = v;
            t.quant_reg_vectors_small = v;
            t.quant_small_contig = Some(0);
            t.quant_reg_threads = threads;
            dev.set_tuning(t);
            for (name, spec) in specs() {
                for shape in shapes {
                    let Some(spec) = fit(spec, shape) else { continue };
                    let x = input(&mut rng, shape, spec.non_finite == NonFinite::Saturate);
                    for dt in [Dtype::F32, Dtype::F16, Dtype::Bf16] {
                        total += compare(&dev, &name, &spec, shape, &x, dt);
                    }
                }
            }
        }
    }
    dev.set_tuning(default);
    eprintln!("register_row_variants_match_cpu_bit_for_bit: {total} elements");
}

#[test]
fn every_tuning_and_a_private_stream_give_the_same_bits() {
    let Some(dev) = device("every_tuning_and_a_private_stream_give_the_same_bits") else {
        return;
    };
    let mut rng = Rng::new(77);
    let shapes: &[&[usize]] = &[
        &[37, 129],
        &[2, 3, 64],
        &[64, 3000],
        &[9, 96],
        &[33, 7, 40],
        &[40, 256],
        &[67, 2048],
        &[3, 4096],
        // split register kernels: ragged 325 vectors (bf16) / 450 vectors (f32) per group
        &[7, 2600],
        &[5, 1800],
    ];
    let default = dev.tuning();
    let mut total = 0usize;
    for (i, (stages, tile, threads)) in
        [(2u32, 4096u32, 128u32), (3, 8192, 256), (4, 32768, 64), (2, 16384, 256), (4, 4096, 64)]
            .into_iter()
            .enumerate()
    {
        let mut t = default;
        t.quant_stages = stages;
        t.quant_tile_bytes = tile;
        t.quant_threads = threads;
        t.quant_vectors_per_lane = [2, 4, 8, 16, 8][i];
        t.w8a16_rows = [1, 2, 4, 2, 4][i];
        t.w8a16_unroll = [2, 1, 1, 8, 2][i];
        t.w8a16_warps = [4, 8, 4, 8, 8][i];
        // register row kernel: every variant (0 = pipelined kernel) for both input widths
        t.quant_reg_vectors_f32 = [0, 1, 2, 8, 16][i];
        t.quant_reg_vectors_half = [16, 0, 1, 2, 8][i];
        t.quant_reg_threads = [128, 256, 64, 256, 64][i];
        t.quant_reg_vectors_small = [1, 2, 4, 8, 2][i];
        // dequantize (the blocked kernel): grid sizes
        t.dequant_blocks_per_sm = [16, 4, 8, 16, 4][i];
        // per-tensor: one cooperative pass or two passes
        t.quant_one_pass_tensor = i % 2 == 1;
        // split register kernel (0: one warp per group)
        t.quant_split_warps = [4, 4, 0, 0, 4][i];
        // small groups: contiguous kernel with 2 (streaming loads) or 4 vectors per lane, the
        // in-warp kernel (0), or the measured choice per input type (None), both widths
        // (f32 where quant_reg_vectors_f32 != 0, bf16 where quant_reg_vectors_half != 0)
        t.quant_small_contig = [Some(2), Some(4), Some(0), None, Some(2)][i];
        // split kernel's loads: forced either way, or the measured choice
        t.quant_load_streaming = [Some(false), Some(true), None, Some(false), Some(true)][i];
        // larger groups on the contiguous kernel (2 or 4 per lane), the in-warp one, or auto
        t.quant_group_contig = [Some(4), None, Some(2), Some(0), Some(2)][i];
        // per-channel on the last axis: the column apply kernel, the vector one, or auto
        t.quant_apply_cols = [Some(false), Some(true), None, Some(true), Some(false)][i];
        t.quant_cols_interleave = [Some(true), Some(false), Some(true), None, Some(true)][i];
        // odd settings run on a new non-blocking stream of the same context
        let on_stream;
        let d: &CudaDevice = if i % 2 == 1 {
            on_stream = dev.on_new_stream().unwrap();
            &on_stream
        } else {
            &dev
        };
        d.set_tuning(t);
        assert_eq!(d.tuning(), t);
        for (name, spec) in specs() {
            for shape in shapes {
                let Some(spec) = fit(spec, shape) else { continue };
                let x = input(&mut rng, shape, spec.non_finite == NonFinite::Saturate);
                total += compare(d, &name, &spec, shape, &x, Dtype::F32);
                total += compare(d, &name, &spec, shape, &x, Dtype::Bf16);
            }
        }
        // W8A16 variants agree bit for bit with the default kernel (same accumulation order)
        let (n, k) = (40usize, 4096usize);
        let w: Vec<i8> = (0..n * k).map(|_| rng.i8()).collect();
        let sw: Vec<f32> = (0..n).map(|_| 0.01 + rng.unit() * 0.01).collect();
        let xh: Vec<f16> = (0..k).map(|_| f16::from_f32(rng.sym(1.0))).collect();
        let (dw, dsw, dx) = (d.upload(&w).unwrap(), d.upload(&sw).unwrap(), d.upload(&xh).unwrap());
        let mut y1 = d.zeros::<f16>(n).unwrap();
        d.w8a16(&dw, &dsw, &dx, None, &mut y1, GemmShape::new(1, n, k)).unwrap();
        d.set_tuning(default);
        let mut y0 = d.zeros::<f16>(n).unwrap();
        d.w8a16(&dw, &dsw, &dx, None, &mut y0, GemmShape::new(1, n, k)).unwrap();
        let (a, b) = (d.download(&y0).unwrap(), d.download(&y1).unwrap());
        assert!(
            a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()),
            "w8a16 variant {t:?} differs from the default"
        );
    }
    assert!(dev.with_stream(dev.stream().clone()).is_ok());
    eprintln!("every_tuning_and_a_private_stream_give_the_same_bits: {total} elements");
}
