//! The `eai` program: errors are one line, `--json` is machine-readable.

use std::process::Command;

fn eai(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_eai")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn errors_are_one_line() {
    let (rc, _, err) = eai(&["study", "--schemes", "fp32,int4", "--no-power"]);
    assert_eq!(rc, 2);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("eai: error: invalid scheme: unknown scheme `int4`"), "{err}");
    let (rc, _, err) = eai(&["study", "--model", "/nonexistent.gguf", "--no-power"]);
    assert_eq!(rc, 2);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent.gguf is neither a file nor a folder"), "{err}");
    let (rc, _, err) = eai(&["study", "--task", "mmlu", "--no-power"]);
    assert_eq!(rc, 2);
    assert!(err.contains("pass --data DIR"), "{err}");
    // A study folder without energy cannot be advised on, and says why.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/example-report");
    let (rc, _, err) = eai(&["recommend", dir]);
    assert_eq!(rc, 2);
    assert!(err.contains("has no energy"), "{err}");
}

#[test]
fn recommend_json_lists_profiles() {
    let (rc, out, _) = eai(&["recommend", "--profiles", "--json"]);
    assert_eq!(rc, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v.as_array().unwrap().iter().any(|p| p["id"] == "A100-PCIe-40GB"));
}
