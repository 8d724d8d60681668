//! The `eai` program under signals, with commands that leave processes behind, with bad
//! outputs and bad numbers: the real binary, real signals, real child processes.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn eai() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_eai"));
    c.stdin(Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls (signal, sigprocmask): the
    // test may itself run with SIGINT ignored (a shell's `&`), which eai would inherit.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut c, || {
            for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::signal(s, libc::SIG_DFL);
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    c
}

fn run(args: &[&str]) -> (i32, String) {
    let out = eai().args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `eai measure` with a labelled constant source: no sensors needed.
const CONSTANT: [&str; 5] = ["measure", "--no-gpu", "--no-cpu", "--constant", "50"];

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The process ids of the live processes named `name` whose parent is `parent`.
fn children_named(parent: u32, name: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if &stat[open + 1..close] == name && rest[0] != "Z" && rest[1] == parent.to_string() {
            out.push(pid);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rfind(')').is_some_and(|c| !s[c + 1..].trim_start().starts_with('Z')))
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_exit(c: &mut Child) -> std::process::ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(s) = c.try_wait().unwrap() {
            return s;
        }
        if t.elapsed() > Duration::from_secs(20) {
            let _ = c.kill();
            panic!("eai did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn signals_are_forwarded_and_the_outputs_flagged() {
    let d = tempfile::tempdir().unwrap();
    for (sig, name) in [(libc::SIGINT, "INT"), (libc::SIGTERM, "TERM"), (libc::SIGHUP, "HUP")] {
        let (j, t) =
            (d.path().join(format!("{name}.json")), d.path().join(format!("{name}.json.trace")));
        let mut c = eai()
            .args(CONSTANT)
            .args(["--json", j.to_str().unwrap(), "--trace", t.to_str().unwrap(), "--"])
            .args(["sleep", "30"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let eai_pid = c.id();
        let mut sleeper = 0;
        wait_for("the command to start", || {
            sleeper = children_named(eai_pid, "sleep").first().copied().unwrap_or(0);
            sleeper != 0
        });
        // SAFETY: kill with plain integers, to the child we spawned.
        assert_eq!(unsafe { libc::kill(eai_pid as i32, sig) }, 0);
        let status = wait_exit(&mut c);
        assert_eq!(status.code(), Some(128 + sig), "SIG{name}: exits 128 + the signal");
        assert!(!alive(sleeper), "SIG{name}: the command was left running");
        let r = json(&j);
        assert_eq!(r["interrupted"], sig, "SIG{name}: {r}");
        assert_eq!(r["signal"], sig, "SIG{name}: the command died of the forwarded signal");
        let flags = &r["measurement"]["devices"][0]["flags"];
        assert!(
            flags
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["flag"] == "interrupted" && f["signal"] == sig),
            "SIG{name}: {flags}"
        );
        let trace = json(&t);
        assert!(
            trace["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"]["kind"] == "interrupted" && e["kind"]["signal"] == sig),
            "SIG{name}: {}",
            trace["events"]
        );
        // No temporary file is left beside the outputs.
        for e in std::fs::read_dir(d.path()).unwrap().flatten() {
            assert!(!e.file_name().to_string_lossy().contains("eai-tmp"), "{:?}", e.path());
        }
    }
}

#[test]
fn processes_left_behind_are_waited_for_and_named() {
    let d = tempfile::tempdir().unwrap();
    let j = d.path().join("r.json");
    let t = Instant::now();
    let (rc, err) = run(&[
        CONSTANT[0],
        CONSTANT[1],
        CONSTANT[2],
        CONSTANT[3],
        CONSTANT[4],
        "--json",
        j.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "sleep 1.5 &",
    ]);
    assert_eq!(rc, 0, "{err}");
    assert!(t.elapsed() >= Duration::from_millis(1400));
    let r = json(&j);
    assert!(r["measurement"]["duration"].as_f64().unwrap() >= 1.4, "{r}");
    assert!(r["outlived"].as_array().unwrap().iter().any(|p| p["name"] == "sleep"), "{r}");
    assert!(r["left_running"].as_array().unwrap().is_empty());
    assert!(err.contains("outlived it") && err.contains("waited for them"), "{err}");

    // --no-wait: the window closes with the command, and the survivor is named.
    let (rc, err) = run(&[
        CONSTANT[0],
        CONSTANT[1],
        CONSTANT[2],
        CONSTANT[3],
        CONSTANT[4],
        "--no-wait",
        "--json",
        j.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "sleep 3 &",
    ]);
    assert_eq!(rc, 0, "{err}");
    let r = json(&j);
    assert!(r["measurement"]["duration"].as_f64().unwrap() < 1.0, "{r}");
    // (named as it was when the window closed: `sh` if it had not yet exec'd `sleep`)
    let left = r["left_running"].as_array().unwrap();
    assert!(!left.is_empty(), "{r}");
    assert!(err.contains("still running when the window closed"), "{err}");
    for p in left {
        let pid = p["pid"].as_i64().unwrap() as i32;
        // SAFETY: kill with plain integers; the sleep is ours.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

#[test]
fn exit_codes_and_outputs_checked_before_the_command() {
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("ran");
    let script = format!("touch {}; exit 3", marker.display());
    let m = |extra: &[&str], cmd: &[&str]| {
        let mut a: Vec<&str> = CONSTANT.to_vec();
        a.extend_from_slice(extra);
        a.push("--");
        a.extend_from_slice(cmd);
        run(&a)
    };
    // An unwritable trace fails before the command runs, with eai's own code.
    let (rc, err) = m(&["--trace", "/proc/x.csv"], &["sh", "-c", &script]);
    assert_eq!(rc, 125, "{err}");
    assert!(err.contains("--trace") && err.contains("/proc/x.csv"), "{err}");
    assert!(!marker.exists(), "the command ran although its output could not be written");
    // The command's own status passes through, 2 included.
    let trace = d.path().join("t.csv");
    let (rc, err) = m(&["--trace", trace.to_str().unwrap()], &["sh", "-c", &script]);
    assert_eq!(rc, 3, "{err}");
    assert!(marker.exists() && trace.exists());
    assert_eq!(m(&[], &["sh", "-c", "exit 2"]).0, 2);
    // A trace may not overwrite the replayed one, nor the report the trace.
    let before = std::fs::read(&trace).unwrap();
    let (rc, err) = run(&[
        "measure",
        "--replay",
        trace.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
        "--",
        "true",
    ]);
    assert_eq!(rc, 125, "{err}");
    assert!(err.contains("--replay trace"), "{err}");
    assert_eq!(std::fs::read(&trace).unwrap(), before);
    let (rc, err) = m(&["--trace", "a.json", "--json", "./a.json"], &["true"]);
    assert_eq!(rc, 125, "{err}");
    // Bad numbers are refused with a reason, and eai's code.
    for (flag, v) in [
        ("--hz", "1e-9"),
        ("--hz", "NaN"),
        ("--counter-hz", "inf"),
        ("--constant", "-10"),
        ("--constant", "NaN"),
        ("--constant", "inf"),
    ] {
        let (rc, err) = run(&["measure", "--no-gpu", "--no-cpu", flag, v, "--", "true"]);
        assert_eq!(rc, 125, "{flag} {v}: {err}");
        assert!(err.contains(flag) && (err.contains("between") || err.contains("number")), "{err}");
    }
}

#[test]
fn output_folders_are_checked_before_any_work() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("afile");
    std::fs::write(&file, b"keep").unwrap();
    // The model does not exist: a check of --out after loading it would name the model.
    for cmd in ["eval", "study"] {
        let (rc, err) =
            run(&[cmd, "--model", "/nonexistent.gguf", "--out", file.to_str().unwrap()]);
        assert_eq!(rc, 2, "{err}");
        assert!(err.contains("invalid --out") && err.contains("not a folder"), "{cmd}: {err}");
    }
    // An output folder holding the model, or inside the data.
    let model = d.path().join("m/model.gguf");
    std::fs::create_dir_all(model.parent().unwrap()).unwrap();
    std::fs::write(&model, b"GGUF").unwrap();
    let (rc, err) = run(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--out",
        d.path().join("m").to_str().unwrap(),
    ]);
    assert_eq!(rc, 2);
    assert!(err.contains("contains the model"), "{err}");
    let (rc, err) = run(&[
        "study",
        "--model",
        model.to_str().unwrap(),
        "--data",
        d.path().to_str().unwrap(),
        "--out",
        d.path().join("out").to_str().unwrap(),
    ]);
    assert_eq!(rc, 2);
    assert!(err.contains("lies inside the --data folder"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep");
}

#[test]
fn errors_keep_their_cause() {
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("model.safetensors");
    std::fs::write(&bad, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......").unwrap();
    let (rc, err) =
        run(&["quantize", bad.to_str().unwrap(), "--out", d.path().join("q").to_str().unwrap()]);
    assert_eq!(rc, 2);
    let line = err.trim();
    assert_eq!(line.lines().count(), 1, "{err}");
    // `malformed safetensors file …` followed by the parser's reason.
    let at = line.find("malformed safetensors file").expect(line);
    assert!(line[at..].contains(": "), "no cause: {line}");
}

#[test]
fn runs_of_two_models_are_not_compared() {
    use eai::core::{Joules, Seconds};
    use eai::metrics::{EnergyDomain, Run};
    let mk = |model: &str, scheme: &str, score: f64, j: f64| {
        Run::builder(model, scheme, "cpu")
            .repetition(1)
            .score("arc_easy", score)
            .energy(EnergyDomain::Gpu(0), Joules(j))
            .wall(Seconds(1.0))
            .build()
            .unwrap()
    };
    let runs = vec![mk("small", "fp32", 0.5, 100.0), mk("big", "int8", 0.8, 60.0)];
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("runs.json");
    std::fs::write(&p, serde_json::to_string(&runs).unwrap()).unwrap();
    let (rc, err) = run(&["recommend", p.to_str().unwrap()]);
    assert_eq!(rc, 2);
    assert!(err.contains("2 models") && err.contains("--model"), "{err}");
    let (rc, err) = run(&["recommend", p.to_str().unwrap(), "--model", "huge"]);
    assert_eq!(rc, 2);
    assert!(err.contains("no run of model `huge`"), "{err}");
    // One model selected: its own baseline only (`big` has no fp32 run, so its int8 is its
    // baseline; nothing of `small` is used).
    let out = eai()
        .args(["recommend", p.to_str().unwrap(), "--model", "big", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!v.to_string().contains("small"), "{v}");
}

/// A one-tensor safetensors file (`a.weight`, 2 × 2 F32) that `eai quantize` accepts.
fn tiny_safetensors(p: &Path) {
    let header = br#"{"a.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    for x in [0.5f32, -1.0, 2.0, 0.25] {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(p, bytes).unwrap();
}

#[test]
fn an_output_error_keeps_its_cause() {
    // Issue 15 item 10: `I/O error on afile` with the cause ("file exists") dropped.
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("model.safetensors");
    tiny_safetensors(&model);
    let afile = d.path().join("afile");
    std::fs::write(&afile, "not a folder").unwrap();
    for out in [afile.clone(), afile.join("q")] {
        let (rc, err) = run(&["quantize", model.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert_eq!(rc, 2, "{err}");
        let line = err.trim();
        assert_eq!(line.lines().count(), 1, "{err}");
        assert!(line.contains("afile"), "{line}");
        let cause = ["exists", "not a directory", "Not a directory"];
        assert!(cause.iter().any(|c| line.contains(c)), "no cause: {line}");
    }
    assert_eq!(std::fs::read_to_string(&afile).unwrap(), "not a folder");
}

#[test]
fn classes_that_already_held_stay_one_clear_error() {
    // The audit's classes that held (issue 15): malformed runs.json to `eai recommend`, bad
    // `--baseline` values. Each is one `eai: error:` line naming the file or the flag.
    let d = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("not-json.json", "{not json"),
        ("object.json", "{\"runs\": 3}"),
        ("empty.json", "[]"),
        ("mistyped.json", "[{\"config\": 7}]"),
    ] {
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        let (rc, err) = run(&["recommend", p.to_str().unwrap()]);
        assert_eq!(rc, 2, "{name}: {err}");
        let line = err.trim();
        assert_eq!(line.lines().count(), 1, "{name}: {err}");
        assert!(line.starts_with("eai: error:"), "{name}: {line}");
        assert!(line.contains(name), "{name} not named: {line}");
        if name == "empty.json" {
            assert!(line.contains("holds no run"), "{line}");
        }
    }
    for bad in ["-1", "NaN", "inf", "abc"] {
        let (rc, err) = run(&[
            "measure",
            "--no-gpu",
            "--no-cpu",
            "--constant",
            "5",
            "--baseline",
            bad,
            "--",
            "true",
        ]);
        assert_ne!(rc, 0, "--baseline {bad}: {err}");
        assert!(err.contains("--baseline"), "--baseline {bad}: {err}");
    }
}
