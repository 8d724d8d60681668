//! Checkpoint reading and writing on small generated checkpoints.

use std::collections::HashMap;
use std::path::Path;

use eai_quant::checkpoint::{
    ActivationScheme, Checkpoint, MixedPrecision, QuantPlan, TensorAction, WriteOptions,
    write_half, write_quantized,
};
use eai_quant::{
    Codes, CpuQuantizer, HalfType, IntRange, Mapping, QuantError, QuantSpec, Quantizer,
};
use safetensors::{Dtype, tensor::TensorView};

struct T {
    name: &'static str,
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

fn f32s(name: &'static str, shape: &[usize], f: impl Fn(usize) -> f32) -> T {
    let n: usize = shape.iter().product();
    T {
        name,
        dtype: Dtype::F32,
        shape: shape.to_vec(),
        bytes: (0..n).flat_map(|i| f(i).to_le_bytes()).collect(),
    }
}

fn bf16s(name: &'static str, shape: &[usize], f: impl Fn(usize) -> f32) -> T {
    let n: usize = shape.iter().product();
    T {
        name,
        dtype: Dtype::BF16,
        shape: shape.to_vec(),
        bytes: (0..n).flat_map(|i| half::bf16::from_f32(f(i)).to_le_bytes()).collect(),
    }
}

fn tensors() -> Vec<T> {
    let w = |seed: usize| {
        move |i: usize| {
            (((i * 7919 + seed * 104729) % 1000) as f32 / 500.0 - 1.0)
                * (1.0 + (i / 16) as f32 * 0.1)
        }
    };
    vec![
        f32s("embeddings.word_embeddings.weight", &[50, 16], w(1)),
        f32s("encoder.layer.0.attention.self.query.weight", &[16, 16], w(2)),
        f32s("encoder.layer.0.attention.self.query.bias", &[16], w(3)),
        f32s("encoder.layer.0.attention.output.LayerNorm.weight", &[16], |_| 1.0),
        bf16s("encoder.layer.0.intermediate.dense.weight", &[32, 16], w(4)),
        f32s("encoder.layer.0.output.dense.weight", &[16, 32], w(5)),
        f32s("pooler.dense.weight", &[16, 16], w(6)),
        T {
            name: "embeddings.position_ids",
            dtype: Dtype::I64,
            shape: vec![1, 8],
            bytes: (0..8i64).flat_map(|i| i.to_le_bytes()).collect(),
        },
    ]
}

fn save(path: &Path, ts: &[&T]) {
    let views: Vec<(String, TensorView<'_>)> = ts
        .iter()
        .map(|t| (t.name.to_string(), TensorView::new(t.dtype, t.shape.clone(), &t.bytes).unwrap()))
        .collect();
    let meta: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    safetensors::serialize_to_file(views, Some(meta), path).unwrap();
}

fn make_checkpoint(dir: &Path, shards: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let ts = tensors();
    if shards == 1 {
        save(&dir.join("model.safetensors"), &ts.iter().collect::<Vec<_>>());
    } else {
        let mut map = serde_json::Map::new();
        for s in 0..shards {
            let name = format!("model-{:05}-of-{:05}.safetensors", s + 1, shards);
            let part: Vec<&T> =
                ts.iter().enumerate().filter(|(i, _)| i % shards == s).map(|(_, t)| t).collect();
            for t in &part {
                map.insert(t.name.to_string(), serde_json::json!(name));
            }
            save(&dir.join(&name), &part);
        }
        let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": map});
        std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    }
    std::fs::write(dir.join("config.json"), r#"{"model_type": "bert", "hidden_size": 16}"#)
        .unwrap();
    std::fs::write(dir.join("tokenizer.json"), r#"{"version": "1.0"}"#).unwrap();
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn quantized_checkpoint_has_the_compressed_tensors_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let src_dir = tmp.path().join("src");
    make_checkpoint(&src_dir, 1);
    let src = Checkpoint::open(&src_dir).unwrap();
    assert_eq!(src.tensors().count(), 8);
    let mut plan = QuantPlan::new(QuantSpec::int8_weight());
    plan.ignore.push("pooler".into());
    let out = tmp.path().join("int8");
    let report = write_quantized(&src, &plan, &out, WriteOptions::default()).unwrap();
    let q = Checkpoint::open(&out).unwrap();
    // safetensors metadata and names
    assert_eq!(q.metadata().and_then(|m| m.get("format")).map(String::as_str), Some("pt"));
    let query = q.info("encoder.layer.0.attention.self.query.weight").unwrap();
    assert_eq!((query.dtype.as_str(), query.shape.clone()), ("I8", vec![16, 16]));
    let scale = q.info("encoder.layer.0.attention.self.query.weight_scale").unwrap();
    assert_eq!((scale.dtype.as_str(), scale.shape.clone()), ("F32", vec![16, 1]));
    assert!(q.info("encoder.layer.0.attention.self.query.weight_zero_point").is_err());
    assert_eq!(q.info("encoder.layer.0.intermediate.dense.weight").unwrap().dtype, "I8");
    // codes and scales equal the in-memory quantizer's
    let w = src.read_f32("encoder.layer.0.intermediate.dense.weight").unwrap();
    let qt = CpuQuantizer::new(QuantSpec::int8_weight())
        .unwrap()
        .quantize_named("w", ndarray::ArrayD::from_shape_vec(vec![32, 16], w).unwrap().view())
        .unwrap();
    let Codes::I8(codes) = &qt.codes else { panic!() };
    let on_disk: Vec<i8> = q
        .bytes("encoder.layer.0.intermediate.dense.weight")
        .unwrap()
        .iter()
        .map(|&b| b as i8)
        .collect();
    assert_eq!(&on_disk, codes);
    assert_eq!(q.read_f32("encoder.layer.0.intermediate.dense.weight_scale").unwrap(), qt.scales);
    // everything else copied byte for byte
    for name in [
        "embeddings.word_embeddings.weight",
        "encoder.layer.0.attention.self.query.bias",
        "encoder.layer.0.attention.output.LayerNorm.weight",
        "embeddings.position_ids",
        "pooler.dense.weight",
    ] {
        assert_eq!(q.bytes(name).unwrap(), src.bytes(name).unwrap(), "{name}");
    }
    // config and side files
    let cfg = read_json(&out.join("config.json"));
    assert_eq!(cfg["model_type"], "bert");
    let qc = &cfg["quantization_config"];
    assert_eq!(qc["quant_method"], "compressed-tensors");
    assert_eq!(qc["format"], "int-quantized");
    assert_eq!(qc["config_groups"]["group_0"]["weights"]["strategy"], "channel");
    assert_eq!(qc["config_groups"]["group_0"]["input_activations"]["strategy"], "token");
    assert_eq!(qc["config_groups"]["group_0"]["input_activations"]["dynamic"], true);
    assert_eq!(qc["ignore"], serde_json::json!(["pooler.dense"]));
    assert!(out.join("tokenizer.json").is_file());
    // report
    let quantized: Vec<_> =
        report.tensors.iter().filter(|t| t.action == TensorAction::Quantize).collect();
    assert_eq!(quantized.len(), 3);
    assert!(quantized.iter().all(|t| t.error.unwrap().sqnr_db > 35.0));
    assert_eq!(report.largest_tensor_bytes, 50 * 16 * 4);
    assert!(report.out_bytes < report.in_bytes as u64);
    // nothing left behind
    let leftovers: Vec<_> =
        std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
}

#[test]
fn sharded_checkpoints_round_trip_and_asymmetric_zero_points_are_written() {
    let tmp = tempfile::tempdir().unwrap();
    let src_dir = tmp.path().join("src");
    make_checkpoint(&src_dir, 3);
    let src = Checkpoint::open(&src_dir).unwrap();
    assert!(src.is_sharded());
    assert_eq!(src.tensors().count(), 8);
    let spec = QuantSpec::uint8_asymmetric();
    let mut plan = QuantPlan::new(spec);
    plan.activations = ActivationScheme::Static([("pooler.dense".to_string(), 0.05f32)].into());
    let out = tmp.path().join("out");
    write_quantized(&src, &plan, &out, WriteOptions::default()).unwrap();
    let index = read_json(&out.join("model.safetensors.index.json"));
    assert!(index["weight_map"]["pooler.dense.weight_zero_point"].is_string());
    let q = Checkpoint::open(&out).unwrap();
    assert_eq!(q.shard_paths().len(), 3);
    assert_eq!(q.read_f32("pooler.dense.input_scale").unwrap(), vec![0.05]);
    // dequantize from disk: (code − zp) · scale with int8 codes shifted by −128
    let w = src.read_f32("pooler.dense.weight").unwrap();
    let codes = q.bytes("pooler.dense.weight").unwrap();
    let zps = q.bytes("pooler.dense.weight_zero_point").unwrap();
    let scales = q.read_f32("pooler.dense.weight_scale").unwrap();
    for (i, &x) in w.iter().enumerate() {
        let r = i / 16;
        let y = (i32::from(codes[i] as i8) - i32::from(zps[r] as i8)) as f32 * scales[r];
        assert!((x - y).abs() <= scales[r] * 0.5001, "{x} vs {y}");
    }
    let cfg = read_json(&out.join("config.json"));
    let g = &cfg["quantization_config"]["config_groups"]["group_0"];
    assert_eq!(g["weights"]["symmetric"], false);
    assert_eq!(g["input_activations"]["dynamic"], false);
    // same data, per-tensor torch preset, group preset
    let g8 = QuantSpec {
        granularity: eai_quant::Granularity::PerGroup { size: 8 },
        ..QuantSpec::ggml_q8_0()
    };
    for spec in [QuantSpec::torch_per_tensor(IntRange::I8, Mapping::Symmetric), g8] {
        let o =
            tmp.path().join(format!("o{:?}", spec.granularity).replace(['{', '}', ' ', ':'], ""));
        write_quantized(&src, &QuantPlan::new(spec), &o, WriteOptions::default()).unwrap();
        let q = Checkpoint::open(&o).unwrap();
        let s = q.info("encoder.layer.0.output.dense.weight_scale").unwrap();
        let want = if spec.granularity == eai_quant::Granularity::PerTensor {
            vec![1]
        } else {
            vec![16, 4]
        };
        assert_eq!(s.shape, want);
        if spec == g8 {
            assert_eq!(s.dtype, "F16");
        }
    }
    // a group size that does not divide the rows is a typed error naming the tensor
    match write_quantized(
        &src,
        &QuantPlan::new(QuantSpec::ggml_q8_0()),
        &tmp.path().join("g32"),
        WriteOptions::default(),
    ) {
        Err(QuantError::BadGroup { len: 16, group: 32, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn half_copies_keep_norms_in_f32() {
    let tmp = tempfile::tempdir().unwrap();
    let src_dir = tmp.path().join("src");
    make_checkpoint(&src_dir, 1);
    let src = Checkpoint::open(&src_dir).unwrap();
    for dtype in [HalfType::F16, HalfType::Bf16] {
        let out = tmp.path().join(dtype.name());
        let rep =
            write_half(&src, &MixedPrecision::new(dtype), &out, WriteOptions::default()).unwrap();
        let h = Checkpoint::open(&out).unwrap();
        let want = match dtype {
            HalfType::F16 => "F16",
            HalfType::Bf16 => "BF16",
        };
        assert_eq!(h.info("encoder.layer.0.attention.self.query.weight").unwrap().dtype, want);
        assert_eq!(
            h.info("encoder.layer.0.attention.output.LayerNorm.weight").unwrap().dtype,
            "F32"
        );
        assert_eq!(h.info("embeddings.position_ids").unwrap().dtype, "I64");
        let a = src.read_f32("pooler.dense.weight").unwrap();
        let b = h.read_f32("pooler.dense.weight").unwrap();
        let (bits, _) = eai_quant::cast_f32("p", &a, dtype, eai_quant::RangePolicy::Error).unwrap();
        assert_eq!(b, eai_quant::widen_to_f32(&bits, dtype));
        assert!(rep.error.unwrap().sqnr_db > 40.0);
        let cfg = read_json(&out.join("config.json"));
        assert_eq!(cfg["torch_dtype"], if dtype == HalfType::F16 { "float16" } else { "bfloat16" });
    }
}

#[test]
fn bad_checkpoints_are_typed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("src");
    make_checkpoint(&dir, 1);
    let file = dir.join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    // truncated
    let trunc = tmp.path().join("trunc.safetensors");
    std::fs::write(&trunc, &bytes[..bytes.len() - 10]).unwrap();
    assert!(matches!(Checkpoint::open(&trunc), Err(QuantError::Safetensors { .. })));
    // header garbage
    let bad = tmp.path().join("bad.safetensors");
    let mut b = bytes.clone();
    b[10] = b'!';
    std::fs::write(&bad, &b).unwrap();
    assert!(matches!(Checkpoint::open(&bad), Err(QuantError::Safetensors { .. })));
    std::fs::write(&bad, [1u8, 2, 3]).unwrap();
    assert!(matches!(Checkpoint::open(&bad), Err(QuantError::Safetensors { .. })));
    // index pointing at a missing shard
    let sh = tmp.path().join("sharded");
    make_checkpoint(&sh, 2);
    std::fs::remove_file(sh.join("model-00002-of-00002.safetensors")).unwrap();
    match Checkpoint::open(&sh) {
        Err(e @ QuantError::MissingShard { .. }) => {
            assert!(e.to_string().contains("model-00002-of-00002"))
        }
        other => panic!("{other:?}"),
    }
    std::fs::write(sh.join("model.safetensors.index.json"), "{not json").unwrap();
    assert!(matches!(Checkpoint::open(&sh), Err(QuantError::Json { .. })));
    // unsupported dtype to read as float
    let src = Checkpoint::open(&dir).unwrap();
    assert!(matches!(
        src.read_f32("embeddings.position_ids"),
        Err(QuantError::UnsupportedDtype { .. })
    ));
    assert!(matches!(src.read_f32("nope"), Err(QuantError::MissingTensor { .. })));
}

#[test]
fn a_failed_write_leaves_nothing_under_the_final_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("src");
    std::fs::create_dir_all(&dir).unwrap();
    let mut ts = tensors();
    // NaN deep inside the second linear weight
    let t = ts.iter_mut().find(|t| t.name == "encoder.layer.0.output.dense.weight").unwrap();
    t.bytes[4 * 37..4 * 38].copy_from_slice(&f32::NAN.to_le_bytes());
    save(&dir.join("model.safetensors"), &ts.iter().collect::<Vec<_>>());
    let src = Checkpoint::open(&dir).unwrap();
    let out = tmp.path().join("out");
    match write_quantized(
        &src,
        &QuantPlan::new(QuantSpec::int8_weight()),
        &out,
        WriteOptions::default(),
    ) {
        Err(QuantError::NonFinite { tensor, index, .. }) => {
            assert_eq!(tensor, "encoder.layer.0.output.dense.weight");
            assert_eq!(index, vec![1, 5]);
        }
        other => panic!("{other:?}"),
    }
    assert!(!out.exists());
    // an overflow during an f16 cast fails mid-file (inside the streaming writer)
    let t = ts.iter_mut().find(|t| t.name == "encoder.layer.0.output.dense.weight").unwrap();
    t.bytes[4 * 37..4 * 38].copy_from_slice(&1e6f32.to_le_bytes());
    save(&dir.join("model.safetensors"), &ts.iter().collect::<Vec<_>>());
    let src = Checkpoint::open(&dir).unwrap();
    match write_half(&src, &MixedPrecision::new(HalfType::F16), &out, WriteOptions::default()) {
        Err(QuantError::Overflow { tensor, flat: 37, .. }) => {
            assert_eq!(tensor, "encoder.layer.0.output.dense.weight")
        }
        other => panic!("{other:?}"),
    }
    assert!(!out.exists());
    let names: Vec<_> =
        std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("src")]);
    // an existing destination is refused unless overwrite is set, and then replaced whole
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("stale.txt"), "old").unwrap();
    let mp = MixedPrecision {
        range: eai_quant::RangePolicy::Saturate,
        ..MixedPrecision::new(HalfType::F16)
    };
    assert!(write_half(&src, &mp, &out, WriteOptions::default()).is_err());
    write_half(&src, &mp, &out, WriteOptions { overwrite: true, measure_error: false }).unwrap();
    assert!(!out.join("stale.txt").exists() && out.join("model.safetensors").is_file());
}
