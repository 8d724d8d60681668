//! Crash-safe studies: the real `eai` binary on a tiny GGUF model, killed with SIGKILL
//! mid-way, finished with `eai study --resume`, compared with an uninterrupted study.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eai::model::{GgmlType, GgufValue, GgufWriter};

/// GPT-2's byte-to-character map: the 256 byte tokens of a byte-level BPE vocabulary.
fn byte_tokens() -> Vec<String> {
    let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
    let mut extra = 0;
    (0u32..256)
        .map(|b| {
            let c = if printable(b) {
                b
            } else {
                extra += 1;
                255 + extra
            };
            char::from_u32(c).unwrap().to_string()
        })
        .collect()
}

/// A tiny llama (1 layer, hidden 32) with a byte-level tokenizer, as a GGUF file.
fn tiny_gguf(path: &Path) {
    let (hidden, ffn, heads, kv_heads, vocab) = (32u64, 64u64, 4u64, 2u64, 258u64);
    let kv = hidden / heads * kv_heads;
    let mut g = GgufWriter::new();
    let a = "llama";
    g.metadata("general.architecture", GgufValue::String(a.into()));
    g.metadata("general.name", GgufValue::String("tiny-resume".into()));
    for (k, v) in [
        ("block_count", 1),
        ("embedding_length", hidden),
        ("feed_forward_length", ffn),
        ("attention.head_count", heads),
        ("attention.head_count_kv", kv_heads),
        ("context_length", 1024),
        ("vocab_size", vocab),
    ] {
        g.metadata(format!("{a}.{k}"), GgufValue::U32(v as u32));
    }
    g.metadata(format!("{a}.attention.layer_norm_rms_epsilon"), GgufValue::F32(1e-5));
    g.metadata(format!("{a}.rope.freq_base"), GgufValue::F32(10000.0));
    let mut tokens: Vec<GgufValue> = byte_tokens().into_iter().map(GgufValue::String).collect();
    tokens.push(GgufValue::String("<|endoftext|>".into()));
    tokens.push(GgufValue::String("ab".into()));
    g.metadata("tokenizer.ggml.model", GgufValue::String("gpt2".into()));
    g.metadata("tokenizer.ggml.pre", GgufValue::String("gpt-2".into()));
    g.metadata("tokenizer.ggml.tokens", GgufValue::Array(tokens));
    g.metadata("tokenizer.ggml.merges", GgufValue::Array(vec![GgufValue::String("a b".into())]));
    g.metadata("tokenizer.ggml.eos_token_id", GgufValue::U32(256));
    g.metadata("tokenizer.ggml.bos_token_id", GgufValue::U32(256));
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut t = |name: &str, dims: &[u64]| {
        let n: u64 = dims.iter().product();
        let data: Vec<u8> = (0..n)
            .flat_map(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let x = ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.4;
                x.to_le_bytes()
            })
            .collect();
        g.tensor(name, dims, GgmlType::F32, data).unwrap();
    };
    t("token_embd.weight", &[hidden, vocab]);
    t("output.weight", &[hidden, vocab]);
    t("output_norm.weight", &[hidden]);
    t("blk.0.attn_norm.weight", &[hidden]);
    t("blk.0.ffn_norm.weight", &[hidden]);
    t("blk.0.attn_q.weight", &[hidden, hidden]);
    t("blk.0.attn_k.weight", &[hidden, kv]);
    t("blk.0.attn_v.weight", &[hidden, kv]);
    t("blk.0.attn_output.weight", &[hidden, hidden]);
    t("blk.0.ffn_gate.weight", &[hidden, ffn]);
    t("blk.0.ffn_up.weight", &[hidden, ffn]);
    t("blk.0.ffn_down.weight", &[ffn, hidden]);
    g.write(path).unwrap();
}

fn study_args(model: &Path, trace: &Path, out: &Path) -> Vec<String> {
    [
        "study",
        "--model",
        model.to_str().unwrap(),
        "--replay",
        trace.to_str().unwrap(),
        "--schemes",
        "fp32,fp16,int8",
        "--task",
        "arc_easy:12",
        "--task",
        "hellaswag:6",
        "--repeats",
        "2",
        "--warmup",
        "0",
        "--baseline",
        "0",
        "--cooldown",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn eai(args: &[String]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_eai"));
    c.args(args).stdin(Stdio::null()).stdout(Stdio::null());
    c
}

fn run_lines(journal: &Path) -> usize {
    std::fs::read_to_string(journal)
        .map(|s| s.lines().filter(|l| l.starts_with("{\"entry\":\"run\"")).count())
        .unwrap_or(0)
}

/// What must not depend on the interruption: every task record but its timing and energy
/// figures, and the samples.
fn comparable(dir: &Path) -> (Vec<String>, usize, Vec<String>) {
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let tasks = r["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert!(t["energy"].as_f64().is_some_and(|e| e > 0.0), "a task without energy: {t}");
            format!(
                "{} rep {} {} {} {} {} docs {} requests",
                t["scheme"],
                t["repetition"],
                t["task"],
                t["score"],
                t["stderr"],
                t["docs"],
                t["requests"]
            )
        })
        .collect();
    let windows = r["tasks"].as_array().unwrap().iter().filter(|t| t["window"].is_u64()).count();
    let mut samples = Vec::new();
    let mut stack = vec![dir.join("samples")];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                let name = e.path().strip_prefix(dir).unwrap().display().to_string();
                samples.push(format!("{name}: {}", std::fs::read_to_string(e.path()).unwrap()));
            }
        }
    }
    samples.sort();
    (tasks, windows, samples)
}

/// The bound on a journal's run line per task window with one power source (measured: 1.9
/// KiB; docs/reliability.md). It holds no per-document data.
const RUN_LINE_BYTES_PER_TASK: usize = 4 * 1024;

#[test]
fn a_study_killed_mid_way_resumes_to_the_same_results() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("tiny.gguf");
    tiny_gguf(&model);
    let trace = d.path().join("power.csv");
    crate::common::constant_gpu_trace(&trace, 100.0, 600.0);

    // Uninterrupted.
    let whole = d.path().join("whole");
    let out = eai(&study_args(&model, &trace, &whole)).stderr(Stdio::piped()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Killed with SIGKILL once the first scheme's runs are on disk (the cool-down after it
    // leaves a second in which the study is certainly mid-way).
    let cut = d.path().join("cut");
    let journal = cut.join(eai::files::JOURNAL_JSONL);
    let mut c = eai(&study_args(&model, &trace, &cut)).stderr(Stdio::null()).spawn().unwrap();
    let t = Instant::now();
    while run_lines(&journal) < 2 {
        assert!(c.try_wait().unwrap().is_none(), "the study ended before it was killed");
        assert!(t.elapsed() < Duration::from_secs(120), "no run finished");
        std::thread::sleep(Duration::from_millis(5));
    }
    c.kill().unwrap(); // SIGKILL
    c.wait().unwrap();
    let done = run_lines(&journal);
    assert!((2..6).contains(&done), "{done} runs on disk");
    assert!(!cut.join("results.json").exists());

    // The journal holds no per-sample records: they are in the sample files, which the run
    // lines name; a run line is bounded by the run's tasks, sample files and sources.
    for line in std::fs::read_to_string(&journal).unwrap().lines() {
        assert!(!line.contains("\"records\":["), "a journal line holds records");
        if line.starts_with("{\"entry\":\"run\"") {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let files = v["sample_files"].as_array().unwrap().len();
            assert_eq!(files, 2, "{line}");
            assert!(line.len() <= RUN_LINE_BYTES_PER_TASK * 2, "{} bytes: {line}", line.len());
        }
    }
    // A finished run whose sample file was changed after the kill is run again, not restored
    // with records it did not write.
    let tampered = cut.join("samples/fp32/rep1/samples_arc_easy.jsonl");
    let mut text = std::fs::read_to_string(&tampered).unwrap();
    text.push_str("{}\n");
    std::fs::write(&tampered, text).unwrap();

    // A new study into the same folder is refused; --resume finishes it.
    let out = eai(&study_args(&model, &trace, &cut)).stderr(Stdio::piped()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));
    let resume = vec!["study".to_string(), "--resume".into(), cut.to_str().unwrap().into()];
    let out = eai(&resume).stderr(Stdio::piped()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("{} run(s) already finished", done - 1)), "{err}");
    assert!(err.contains("FP32 rep 1 is run again"), "{err}");
    // Finished runs were not redone: FP32's second repetition is not run again.
    assert!(err.contains("FP32 rep 1/2") && !err.contains("FP32 rep 2/2"), "{err}");
    assert_eq!(run_lines(&journal), 7);

    let (a, b) = (comparable(&whole), comparable(&cut));
    assert_eq!(a.0, b.0, "task records differ");
    assert_eq!(a.1, b.1, "windows");
    assert_eq!(a.2, b.2, "samples differ");
    // Every task record's window is in windows.json.
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cut.join("results.json")).unwrap()).unwrap();
    let w: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cut.join("windows.json")).unwrap()).unwrap();
    for t in r["tasks"].as_array().unwrap() {
        let id = &t["window"];
        let win = w.as_array().unwrap().iter().find(|x| &x["id"] == id).expect("window");
        assert!(win["name"].as_str().unwrap().ends_with(t["task"].as_str().unwrap()), "{win}");
    }
}

/// SIGTERM mid-way (what a job scheduler or `timeout` sends): eai exits 128 + 15 at once,
/// says so, leaves no temporary output, and `--resume` finishes the study. On the GPU machine
/// the same signal once ended in SIGSEGV (the C exit handlers tore the CUDA context down under
/// the running study; docs/results/session7.md): the exit now skips them.
#[cfg(target_os = "linux")]
#[test]
fn a_study_sent_sigterm_exits_143_and_resumes() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("tiny.gguf");
    tiny_gguf(&model);
    let trace = d.path().join("power.csv");
    crate::common::constant_gpu_trace(&trace, 100.0, 600.0);
    let cut = d.path().join("term");
    let journal = cut.join(eai::files::JOURNAL_JSONL);
    let mut c = eai(&study_args(&model, &trace, &cut)).stderr(Stdio::piped()).spawn().unwrap();
    let t = Instant::now();
    while run_lines(&journal) < 2 {
        assert!(c.try_wait().unwrap().is_none(), "the study ended before the signal");
        assert!(t.elapsed() < Duration::from_secs(120), "no run finished");
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = libc::pid_t::try_from(c.id()).unwrap();
    // SAFETY: kill takes plain integers; the child is ours and still running.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let out = c.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(128 + libc::SIGTERM), "{:?}: {err}", out.status);
    assert!(err.contains("interrupted by signal 15"), "{err}");
    assert!(!cut.join("results.json").exists());
    let staged: Vec<_> = std::fs::read_dir(&cut)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp") || n.starts_with('.'))
        .collect();
    assert!(staged.is_empty(), "temporary files left: {staged:?}");

    let resume = vec!["study".to_string(), "--resume".into(), cut.to_str().unwrap().into()];
    let out = eai(&resume).stderr(Stdio::piped()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(run_lines(&journal), 6);
}
