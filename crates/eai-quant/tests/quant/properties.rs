//! Property tests of the quantization invariants, over every preset and granularity.

use eai_quant::kernel::{self, RangeStats};
use eai_quant::{
    CpuQuantizer, ErrorStats, Granularity, GroupLayout, Mapping, NonFinite, QuantSpec,
    QuantizedTensor, Quantizer, ScaleApply,
};
use ndarray::{Array2, ArrayD, IxDyn};
use proptest::prelude::*;

fn presets() -> Vec<QuantSpec> {
    let mut v: Vec<QuantSpec> = QuantSpec::presets().into_iter().map(|(_, s)| s).collect();
    v.push(QuantSpec::vllm_int8_activation_per_token());
    v
}

fn granularities(cols: usize) -> Vec<Granularity> {
    let mut g = vec![
        Granularity::PerTensor,
        Granularity::PerChannel { axis: 0 },
        Granularity::PerChannel { axis: 1 },
        Granularity::PerToken,
    ];
    for size in [4, 8, 32] {
        if cols.is_multiple_of(size) {
            g.push(Granularity::PerGroup { size });
        }
    }
    g
}

/// A matrix with rows of different magnitudes (like LLM weights), values and shape from proptest.
fn matrix() -> impl Strategy<Value = Array2<f32>> {
    (1usize..6, prop::sample::select(vec![4usize, 8, 12, 32, 64]))
        .prop_flat_map(|(r, c)| {
            (
                prop::collection::vec(-1.0f32..1.0, r * c),
                prop::collection::vec(-12.0f32..4.0, r),
                Just((r, c)),
            )
        })
        .prop_map(|(v, e, (r, c))| {
            Array2::from_shape_fn((r, c), |(i, j)| v[i * c + j] * e[i].exp2())
        })
}

fn params_of(qt: &QuantizedTensor) -> Vec<eai_quant::GroupParams> {
    (0..qt.scales.len()).map(|g| qt.group(g).unwrap()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// |x − dq(q(x))| ≤ scale/2 (plus float slack) for every value inside the code range, and
    /// values beyond it saturate to qmin / qmax. For GGML, which quantizes with the f32 scale and
    /// stores an f16 one, the bound adds |q − z| · |stored − f32 scale|.
    #[test]
    fn round_trip_error_is_at_most_half_a_step_and_outside_saturates(m in matrix(), pi in 0usize..10) {
        let specs = presets();
        let spec0 = specs[pi % specs.len()];
        for g in granularities(m.ncols()) {
            let spec = QuantSpec { granularity: g, ..spec0 };
            let q = CpuQuantizer::new(spec).unwrap();
            let qt = q.quantize(m.view().into_dyn()).unwrap();
            let back = q.dequantize(&qt).unwrap();
            let layout = qt.layout().unwrap();
            let codes = qt.codes.to_i32();
            let data = m.as_slice().unwrap();
            let mut groups: Vec<Vec<f32>> = vec![Vec::new(); layout.groups()];
            for (i, &x) in data.iter().enumerate() { groups[layout.group_of(i)].push(x); }
            let params: Vec<_> = groups.iter()
                .map(|v| kernel::group_params(RangeStats::of(v), &spec).unwrap()).collect();
            let (qmin, qmax) = (spec.range.qmin, spec.range.qmax);
            for (i, (&x, &y)) in data.iter().zip(back.iter()).enumerate() {
                let p = params[layout.group_of(i)];
                if p.scale == 0.0 { prop_assert_eq!(y, 0.0); continue; }
                let sq = match spec.scale_apply { ScaleApply::Divide => p.scale, _ => 1.0 / p.inv };
                let pos = f64::from(x) / f64::from(sq) + f64::from(p.zero_point);
                let k = (codes[i] - p.zero_point).abs() as f32;
                let bound = sq * (0.5 + 1e-4) + k * (p.scale - sq).abs() + 1e-4 * p.scale;
                if pos >= f64::from(qmin) && pos <= f64::from(qmax) {
                    prop_assert!((x - y).abs() <= bound,
                        "{:?} x={} y={} scale={} bound={}", g, x, y, p.scale, bound);
                } else if pos > f64::from(qmax) + 0.5001 {
                    prop_assert_eq!(codes[i], qmax);
                } else if pos < f64::from(qmin) - 0.5001 {
                    prop_assert_eq!(codes[i], qmin);
                }
            }
            // values far beyond the range saturate
            for p in &params {
                if p.scale == 0.0 { continue; }
                let big = p.scale.max(1.0 / p.inv) * 600.0;
                prop_assert_eq!(kernel::quantize_value(big, *p, &spec), qmax);
                prop_assert_eq!(kernel::quantize_value(-big, *p, &spec), qmin);
                prop_assert_eq!(kernel::quantize_value(f32::INFINITY, *p, &spec), qmax);
            }
        }
    }

    /// Quantizing the dequantized tensor with the same scales gives the same codes.
    #[test]
    fn requantizing_the_dequantized_tensor_is_idempotent(m in matrix(), pi in 0usize..10) {
        let specs = presets();
        let spec0 = specs[pi % specs.len()];
        for g in granularities(m.ncols()) {
            let spec = QuantSpec { granularity: g, ..spec0 };
            let q = CpuQuantizer::new(spec).unwrap();
            let qt = q.quantize(m.view().into_dyn()).unwrap();
            let back = q.dequantize(&qt).unwrap();
            let layout = qt.layout().unwrap();
            let params = params_of(&qt);
            let codes = qt.codes.to_i32();
            for (i, &y) in back.iter().enumerate() {
                let again = kernel::quantize_value(y, params[layout.group_of(i)], &spec);
                prop_assert_eq!(again, codes[i], "{:?} element {}", g, i);
            }
        }
    }

    /// 0 maps to the zero point and back to exactly 0 (symmetric: zero point fixed at 0 / 128).
    #[test]
    fn zero_is_exact(m in matrix(), pi in 0usize..10) {
        let specs = presets();
        let spec0 = specs[pi % specs.len()];
        for g in granularities(m.ncols()) {
            let spec = QuantSpec { granularity: g, ..spec0 };
            let qt = CpuQuantizer::new(spec).unwrap().quantize(m.view().into_dyn()).unwrap();
            for p in params_of(&qt) {
                let z = kernel::quantize_value(0.0, p, &spec);
                prop_assert_eq!(z, p.zero_point);
                prop_assert_eq!(kernel::dequantize_value(z, p), 0.0);
                if spec.mapping == Mapping::Symmetric {
                    prop_assert_eq!(p.zero_point, spec.symmetric_zero_point());
                }
            }
        }
    }

    /// The vectorised CPU loop equals the scalar reference `quantize_value` element for element,
    /// including NaN and ±inf under the Saturate policy.
    #[test]
    fn fast_path_equals_scalar_reference(m in matrix(), pi in 0usize..10, holes in prop::collection::vec((0usize..10_000, 0u8..3), 0..4)) {
        let specs = presets();
        let spec0 = QuantSpec { non_finite: NonFinite::Saturate, ..specs[pi % specs.len()] };
        let mut m = m;
        let n = m.len();
        for (at, kind) in holes {
            let v = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][kind as usize];
            m.as_slice_mut().unwrap()[at % n] = v;
        }
        for g in granularities(m.ncols()) {
            let spec = QuantSpec { granularity: g, ..spec0 };
            let qt = CpuQuantizer::new(spec).unwrap().quantize(m.view().into_dyn()).unwrap();
            let layout = GroupLayout::new("m", m.shape(), g).unwrap();
            let data = m.as_slice().unwrap();
            let mut groups: Vec<Vec<f32>> = vec![Vec::new(); layout.groups()];
            for (i, &x) in data.iter().enumerate() { groups[layout.group_of(i)].push(x); }
            let params: Vec<_> = groups.iter()
                .map(|v| kernel::group_params(RangeStats::of(v), &spec).unwrap()).collect();
            prop_assert_eq!(params.iter().map(|p| p.scale).collect::<Vec<_>>(), qt.scales.clone());
            let codes = qt.codes.to_i32();
            for (i, &x) in data.iter().enumerate() {
                prop_assert_eq!(codes[i], kernel::quantize_value(x, params[layout.group_of(i)], &spec));
            }
        }
    }

    /// Per-channel is never worse than per-tensor in MSE when every other channel's range is at
    /// most half the largest (so each per-channel step is at most half the per-tensor step).
    /// Without that condition the claim is false in general: see the counterexample below.
    #[test]
    fn per_channel_beats_per_tensor(rows in 2usize..6, cols in prop::sample::select(vec![64usize, 128]),
                                    v in prop::collection::vec(-1.0f32..1.0, 6 * 128),
                                    f in prop::collection::vec(0.001f32..0.5, 6)) {
        let mut m = Array2::from_shape_fn((rows, cols), |(i, j)| v[i * cols + j] * if i == 0 { 1.0 } else { f[i] });
        m[[0, 0]] = 1.0;
        let data = m.as_slice().unwrap();
        for base in [QuantSpec::int8_weight(), QuantSpec::uint8_asymmetric()] {
            let mse = |g| {
                let q = CpuQuantizer::new(QuantSpec { granularity: g, ..base }).unwrap();
                let back = q.dequantize(&q.quantize(m.view().into_dyn()).unwrap()).unwrap();
                ErrorStats::between(data, back.as_slice().unwrap()).unwrap().mse
            };
            let (pc, pt) = (mse(Granularity::PerChannel { axis: 0 }), mse(Granularity::PerTensor));
            prop_assert!(pc <= pt, "per-channel {} > per-tensor {}", pc, pt);
        }
    }
}

/// The unrestricted "per-channel never worse than per-tensor" is false: a channel whose values
/// happen to sit on the per-tensor grid is exact per-tensor but not per-channel.
#[test]
fn per_channel_can_lose_to_per_tensor_on_adversarial_data() {
    let step = 1.0f32 / 127.0;
    // row 0 sets the per-tensor scale to 1/127; row 1's values are multiples of it
    let m = ndarray::arr2(&[[1.0f32, -1.0], [100.0 * step, 37.0 * step]]);
    let mse = |g| {
        let q =
            CpuQuantizer::new(QuantSpec { granularity: g, ..QuantSpec::int8_weight() }).unwrap();
        let back = q.dequantize(&q.quantize(m.view().into_dyn()).unwrap()).unwrap();
        ErrorStats::between(m.as_slice().unwrap(), back.as_slice().unwrap()).unwrap().mse
    };
    let pt = mse(Granularity::PerTensor);
    let pc = mse(Granularity::PerChannel { axis: 0 });
    assert!(pt < 1e-12 && pc > pt, "per-tensor {pt}, per-channel {pc}");
}

#[test]
fn three_d_channel_axes_round_trip() {
    let x = ArrayD::from_shape_fn(IxDyn(&[3, 4, 5]), |ix| {
        (ix[0] as f32 + 1.0) * ((ix[1] * 5 + ix[2]) as f32).sin()
    });
    for axis in 0..3 {
        let q = CpuQuantizer::new(QuantSpec {
            granularity: Granularity::PerChannel { axis },
            ..QuantSpec::int8_weight()
        })
        .unwrap();
        let qt = q.quantize(x.view()).unwrap();
        assert_eq!(qt.scale_shape, vec![x.shape()[axis]]);
        let e = ErrorStats::between(
            x.as_slice().unwrap(),
            q.dequantize(&qt).unwrap().as_slice().unwrap(),
        )
        .unwrap();
        assert!(e.sqnr_db > 35.0, "axis {axis}: {e:?}");
    }
}

#[test]
fn every_preset_passes_the_conformance_suite_on_the_cpu() {
    for (name, spec) in QuantSpec::presets() {
        let q = CpuQuantizer::new(spec).unwrap();
        eai_quant::testing::check_quantizer(&q).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
