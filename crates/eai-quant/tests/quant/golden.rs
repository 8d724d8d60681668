//! Golden tests: codes, scales and zero points of the PyTorch / compressed-tensors /
//! bitsandbytes / GGML presets against `fixtures/golden.json`, made by
//! `fixtures/make_golden.py` (a numpy float32 re-implementation of those libraries' formulas;
//! PyTorch itself could not be installed where the fixture was made — see the script's header).

use eai_quant::{Codes, CpuQuantizer, IntRange, Mapping, QuantSpec, Quantizer};
use serde_json::Value;

fn spec_for(case: &Value) -> QuantSpec {
    let range =
        |c: &Value| if c["unsigned"].as_bool().unwrap() { IntRange::U8 } else { IntRange::I8 };
    let mapping = |c: &Value| {
        if c["symmetric"].as_bool().unwrap() { Mapping::Symmetric } else { Mapping::Asymmetric }
    };
    match case["preset"].as_str().unwrap() {
        "torch_per_tensor" => QuantSpec::torch_per_tensor(range(case), mapping(case)),
        "torch_per_channel" => QuantSpec::torch_per_channel(
            range(case),
            mapping(case),
            case["axis"].as_u64().unwrap() as usize,
        ),
        "compressed_tensors" => QuantSpec::compressed_tensors_int8_weight(),
        "bitsandbytes" => QuantSpec::bitsandbytes_int8(),
        "ggml_q8_0" => QuantSpec::ggml_q8_0(),
        other => panic!("unknown preset {other}"),
    }
}

#[test]
fn presets_match_the_reference_formulas_bit_for_bit() {
    let text = include_str!("../fixtures/golden.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 14);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let shape: Vec<usize> = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let x: Vec<f32> =
            case["x"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let want_codes: Vec<i32> =
            case["codes"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap() as i32).collect();
        let want_scales: Vec<f32> =
            case["scales"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let want_zp: Vec<i32> = case["zero_points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap() as i32)
            .collect();
        let spec = spec_for(case);
        let q = CpuQuantizer::new(spec).unwrap();
        let arr = ndarray::ArrayD::from_shape_vec(shape.clone(), x).unwrap();
        let qt = q.quantize_named(name, arr.view()).unwrap();
        let codes = match &qt.codes {
            Codes::I8(c) => c.iter().map(|&v| i32::from(v)).collect::<Vec<_>>(),
            Codes::U8(c) => c.iter().map(|&v| i32::from(v)).collect::<Vec<_>>(),
        };
        let scales_eq = qt.scales.iter().zip(&want_scales).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            scales_eq && qt.scales.len() == want_scales.len(),
            "{name}: scales {:?} vs {:?}",
            qt.scales,
            want_scales
        );
        assert_eq!(qt.zero_points, want_zp, "{name}: zero points");
        let diffs: Vec<usize> = (0..codes.len()).filter(|&i| codes[i] != want_codes[i]).collect();
        assert!(
            diffs.is_empty(),
            "{name}: {} codes differ, first at {:?}",
            diffs.len(),
            diffs.first()
        );
        assert_eq!(qt.shape, shape);
    }
}
