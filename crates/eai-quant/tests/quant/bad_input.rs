//! Bad input: each case is a typed error or a defined, finite result — never a panic.

use eai_quant::{CpuQuantizer, Granularity, QuantError, QuantSpec, Quantizer};
use ndarray::{ArrayD, IxDyn};

fn q(g: Granularity) -> CpuQuantizer {
    CpuQuantizer::new(QuantSpec { granularity: g, ..QuantSpec::int8_weight() }).unwrap()
}

#[test]
fn nan_and_inf_name_tensor_and_first_index() {
    let mut x = ArrayD::<f32>::zeros(IxDyn(&[2, 3, 4]));
    x[[1, 2, 0]] = f32::NEG_INFINITY;
    x[[1, 2, 3]] = f32::NAN;
    for g in [Granularity::PerTensor, Granularity::PerChannel { axis: 1 }, Granularity::PerToken] {
        match q(g).quantize_named("blk.0.w", x.view()) {
            Err(e @ QuantError::NonFinite { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("blk.0.w") && msg.contains("[1, 2, 0]"), "{msg}");
            }
            other => panic!("{g:?}: {other:?}"),
        }
    }
}

#[test]
fn empty_bad_group_bad_axis() {
    let empty = ArrayD::<f32>::zeros(IxDyn(&[0, 4]));
    assert!(matches!(
        q(Granularity::PerTensor).quantize(empty.view()),
        Err(QuantError::Empty { .. })
    ));
    let x = ArrayD::<f32>::ones(IxDyn(&[2, 10]));
    assert!(matches!(
        q(Granularity::PerGroup { size: 4 }).quantize_named("w", x.view()),
        Err(QuantError::BadGroup { len: 10, group: 4, .. })
    ));
    assert!(matches!(
        q(Granularity::PerChannel { axis: 5 }).quantize(x.view()),
        Err(QuantError::AxisOutOfRange { axis: 5, rank: 2, .. })
    ));
    assert!(matches!(
        CpuQuantizer::new(QuantSpec {
            granularity: Granularity::PerGroup { size: 0 },
            ..QuantSpec::int8_weight()
        }),
        Err(QuantError::InvalidSpec { .. })
    ));
}

#[test]
fn all_zero_tensors_and_groups_give_zero_codes_and_finite_scales() {
    let mut x = ArrayD::<f32>::zeros(IxDyn(&[4, 64]));
    x[[1, 5]] = 3.0; // one group non-zero, the others all zero
    for (name, spec) in QuantSpec::presets() {
        for g in [Granularity::PerTensor, Granularity::PerToken, Granularity::PerGroup { size: 32 }]
        {
            let z = ArrayD::<f32>::zeros(IxDyn(&[4, 64]));
            for data in [&x, &z] {
                let quant = CpuQuantizer::new(QuantSpec { granularity: g, ..spec }).unwrap();
                let qt = quant.quantize(data.view()).unwrap();
                assert!(qt.scales.iter().all(|s| s.is_finite() && *s >= 0.0), "{name} {g:?}");
                let back = quant.dequantize(&qt).unwrap();
                assert!(back.iter().all(|v| v.is_finite()), "{name} {g:?}");
                for (a, b) in data.iter().zip(back.iter()) {
                    if *a == 0.0 {
                        assert_eq!(*b, 0.0, "{name} {g:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn f16_scale_overflow_is_a_typed_error() {
    let x = ArrayD::from_elem(IxDyn(&[1, 32]), 1e9f32);
    match CpuQuantizer::new(QuantSpec::ggml_q8_0()).unwrap().quantize_named("big", x.view()) {
        Err(QuantError::BadScale { tensor, dtype: "f16", .. }) => assert_eq!(tensor, "big"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn inconsistent_quantized_tensor_is_rejected_by_dequantize() {
    let quant = q(Granularity::PerToken);
    let x = ArrayD::from_elem(IxDyn(&[3, 8]), 1.0f32);
    let mut qt = quant.quantize(x.view()).unwrap();
    qt.scales.pop();
    assert!(matches!(quant.dequantize(&qt), Err(QuantError::ShapeMismatch { .. })));
}
