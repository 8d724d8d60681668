//! Hostile checkpoints and destinations (issue 15): name clashes, destinations overlapping the
//! source, empty checkpoints, missing `config.json`, file modes. Every bad file is built here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use eai_quant::checkpoint::{
    Checkpoint, MixedPrecision, QuantPlan, WriteOptions, write_half, write_quantized,
};
use eai_quant::{HalfType, QuantError, QuantSpec};
use safetensors::{Dtype, tensor::TensorView};

fn save(path: &Path, ts: &[(&str, Vec<usize>)]) {
    let bytes: Vec<Vec<u8>> = ts
        .iter()
        .map(|(_, s)| {
            let n: usize = s.iter().product();
            (0..n).flat_map(|i| (i as f32 * 0.25 - 1.0).to_le_bytes()).collect()
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = ts
        .iter()
        .zip(&bytes)
        .map(|((n, s), b)| (n.to_string(), TensorView::new(Dtype::F32, s.clone(), b).unwrap()))
        .collect();
    let meta: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    safetensors::serialize_to_file(views, Some(meta), path).unwrap();
}

/// A model folder `dir` with one linear weight, a config and a tokenizer.
fn model_dir(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    save(&dir.join("model.safetensors"), &[("layer.0.mlp.up_proj.weight", vec![8, 16])]);
    std::fs::write(dir.join("config.json"), r#"{"model_type": "llama"}"#).unwrap();
    std::fs::write(dir.join("tokenizer.json"), "{}").unwrap();
}

/// Every entry under `dir`, recursively, relative to it.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

fn int8() -> QuantPlan {
    QuantPlan::new(QuantSpec::int8_weight())
}

#[test]
fn generated_names_clashing_with_source_names_are_refused_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let src_dir = tmp.path().join("src");
    std::fs::create_dir_all(&src_dir).unwrap();
    // `a.weight` is quantized to `a.weight` + `a.weight_scale`, and the source already holds an
    // `a.weight_scale` (issue 15: an index-out-of-bounds panic inside the safetensors crate and
    // an empty temporary folder left behind).
    save(
        &src_dir.join("model.safetensors"),
        &[("a.proj.weight", vec![4, 4]), ("a.proj.weight_scale", vec![4, 1])],
    );
    let before = tree(tmp.path());
    let src = Checkpoint::open(&src_dir).unwrap();
    let out = tmp.path().join("out");
    match write_quantized(&src, &int8(), &out, WriteOptions::default()) {
        Err(QuantError::NameClash { name, tensor, other }) => {
            assert_eq!(name, "a.proj.weight_scale");
            assert_eq!(tensor, "a.proj.weight");
            assert_eq!(other, "a.proj.weight_scale");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(tree(tmp.path()), before, "nothing written, no temporary folder left");
    // A cast keeps names: no clash there.
    write_half(&src, &MixedPrecision::new(HalfType::F16), &out, WriteOptions::default()).unwrap();
}

#[test]
fn a_destination_that_is_contains_or_lies_inside_the_source_is_refused_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("models");
    let src_dir = parent.join("model");
    model_dir(&src_dir);
    // An unrelated file beside the model (issue 15: deleted with the input by --overwrite).
    std::fs::write(parent.join("notes.txt"), "keep me").unwrap();
    let link = tmp.path().join("link-to-models");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&parent, &link).unwrap();
    let before = tree(tmp.path());
    let src = Checkpoint::open(&src_dir).unwrap();
    let mut cases: Vec<(PathBuf, &str)> = vec![
        (src_dir.clone(), "is"),
        (parent.clone(), "contains"),
        (tmp.path().to_path_buf(), "contains"),
        (src_dir.join("int8"), "lies inside"),
        (src_dir.join("new").join("deeper"), "lies inside"),
        (src_dir.join("model.safetensors"), "is"),
        (parent.join("x").join("..").join("model"), "is"),
    ];
    if cfg!(unix) {
        cases.push((link.clone(), "contains"));
        cases.push((link.join("model").join("q"), "lies inside"));
    }
    for (out, rel) in cases {
        for overwrite in [false, true] {
            let opts = WriteOptions { overwrite, measure_error: false };
            match write_quantized(&src, &int8(), &out, opts) {
                Err(QuantError::UnsafeDestination { destination, relation, .. }) => {
                    assert_eq!(destination, out);
                    assert_eq!(relation, rel, "{}", out.display());
                }
                other => panic!("{}: {other:?}", out.display()),
            }
            assert_eq!(tree(tmp.path()), before, "{} touched something", out.display());
        }
    }
    // A sibling is fine.
    let ok = parent.join("model-int8");
    write_quantized(&src, &int8(), &ok, WriteOptions::default()).unwrap();
    assert_eq!(std::fs::read_to_string(parent.join("notes.txt")).unwrap(), "keep me");
    assert!(src_dir.join("model.safetensors").is_file());
}

#[test]
fn a_single_file_source_may_be_written_beside_itself_but_not_over_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("weights.safetensors");
    save(&f, &[("l.weight", vec![4, 4])]);
    let src = Checkpoint::open(&f).unwrap();
    // The folder holding the file contains it.
    let e = write_quantized(
        &src,
        &int8(),
        tmp.path(),
        WriteOptions { overwrite: true, measure_error: false },
    );
    assert!(matches!(e, Err(QuantError::UnsafeDestination { relation: "contains", .. })), "{e:?}");
    assert!(f.is_file());
    // A folder beside it is not an input.
    let out = tmp.path().join("q");
    let r = write_quantized(&src, &int8(), &out, WriteOptions::default()).unwrap();
    assert!(out.join("model.safetensors").is_file());
    // No config.json in the source: the result says so (never a silent clean success).
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("no config.json"), "{:?}", r.warnings);
}

#[test]
fn an_empty_checkpoint_is_an_error_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("empty");
    std::fs::create_dir_all(&dir).unwrap();
    save(&dir.join("model.safetensors"), &[]);
    std::fs::write(dir.join("config.json"), "{}").unwrap();
    let src = Checkpoint::open(&dir).unwrap();
    let out = tmp.path().join("out");
    let e = write_quantized(&src, &int8(), &out, WriteOptions::default());
    assert!(
        matches!(&e, Err(QuantError::EmptyCheckpoint { checkpoint }) if *checkpoint == dir),
        "{e:?}"
    );
    let e = write_half(&src, &MixedPrecision::new(HalfType::Bf16), &out, WriteOptions::default());
    assert!(matches!(e, Err(QuantError::EmptyCheckpoint { .. })), "{e:?}");
    assert!(!out.exists());
    assert_eq!(tree(tmp.path()).len(), 3, "{:?}", tree(tmp.path()));
}

#[test]
fn a_clean_write_has_no_warnings_and_every_output_has_the_default_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let src_dir = tmp.path().join("src");
    model_dir(&src_dir);
    let src = Checkpoint::open(&src_dir).unwrap();
    let out = tmp.path().join("out");
    let r = write_quantized(&src, &int8(), &out, WriteOptions::default()).unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // What this process creates a plain file with (0666 minus the umask).
        let probe = tmp.path().join("probe");
        std::fs::write(&probe, "").unwrap();
        let want = std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
        for f in &r.files {
            let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, want, "{}", f.display());
        }
        assert!(r.files.iter().any(|f| f.ends_with("model.safetensors")));
    }
}
