//! The study's mechanics with an engine of our own: energy sources, accounting, the
//! no-sensor rule, errors, and the output folder.

use std::time::Duration;

use eai::core::{LanguageModel, ModelError, Watts};
use eai::eval::bundled;
use eai::metrics::Run;
use eai::power::ConstantSource;
use eai::{EnergyKind, Error, PowerSetup, Scheme, Study, StudyTask, files, loader_fn};

use crate::common::{LengthModel, check_advice, check_row, constant_gpu_trace};

fn loader() -> impl eai::ModelLoader {
    loader_fn("length-model", |s: Scheme| -> Result<Box<dyn LanguageModel>, ModelError> {
        let scale = match s {
            Scheme::Fp32 => 1.0,
            Scheme::Fp16 => 1.0,
            _ => -1.0, // prefers long continuations: a different (worse) model
        };
        Ok(Box::new(LengthModel { scale, per_request: Duration::from_millis(30) }))
    })
}

fn small(schemes: &[Scheme]) -> Study<impl eai::ModelLoader> {
    Study::new(loader())
        .schemes(schemes.iter().copied())
        .task(StudyTask::new(bundled::arc_easy().unwrap()).limit(8))
        .task(StudyTask::new(bundled::hellaswag().unwrap()).limit(4))
        .repeats(2)
        .warmup_docs(1)
        .baseline(Duration::ZERO)
        .progress(false)
}

#[test]
fn no_sensor_means_no_energy_figures() {
    let r = small(&[Scheme::Fp32, Scheme::Dynamic]).power(PowerSetup::Off).run().unwrap();
    assert_eq!(r.energy.kind, EnergyKind::None);
    assert_eq!(r.runs.len(), 4);
    assert!(r.runs.iter().all(|x| x.energy().is_err()));
    assert!(r.tasks.iter().all(|t| t.energy.is_none()));
    let rep = r.analyze().unwrap();
    assert!(rep.table2.is_none() && rep.summaries.is_empty() && rep.advice.is_none());
    let md = rep.markdown(&r);
    assert!(md.contains("no power sensor was available"), "{md}");
    assert!(!md.contains("EOR (score/Wh)"), "{md}");
    assert!(!md.contains("Energy (J)"), "{md}");
    // Scores are still there, with the accuracy loss against FP32.
    assert!(md.contains("| Dynamic (W8A8 per token) |"), "{md}");
    let dir = tempfile::tempdir().unwrap();
    r.write(dir.path()).unwrap();
    assert!(dir.path().join(files::HEATMAP_SVG).exists());
    assert!(!dir.path().join(files::TABLE2_CSV).exists());
    assert!(!dir.path().join(files::TRACE_CSV).exists());
}

#[test]
fn tdp_estimate_is_labelled_and_only_used_without_sensors() {
    let r = small(&[Scheme::Fp32, Scheme::Fp16])
        .power(PowerSetup::Off)
        .tdp_estimate(Watts(65.0))
        .run()
        .unwrap();
    assert_eq!(r.energy.kind, EnergyKind::Estimated);
    assert_eq!(r.energy.sources[0].id, eai::TDP_ESTIMATE_ID);
    let rep = r.analyze().unwrap();
    assert!(rep.markdown(&r).contains("ESTIMATED"));
    assert!(rep.table2.is_some());
    // With a real (here: constant) source the estimate is not used, and the report says so.
    let r = small(&[Scheme::Fp32])
        .power(PowerSetup::Sources(vec![Box::new(ConstantSource::new(Watts(10.0)))]))
        .tdp_estimate(Watts(65.0))
        .run()
        .unwrap();
    assert!(r.energy.sources.iter().all(|s| s.id != eai::TDP_ESTIMATE_ID));
    assert!(r.energy.warnings.iter().any(|w| w.contains("TDP estimate")));
}

#[test]
fn replayed_trace_energies_match_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.csv");
    constant_gpu_trace(&trace, 150.0, 120.0);
    let r = small(&[Scheme::Fp32, Scheme::Fp16, Scheme::Dynamic])
        .power(PowerSetup::Replay(trace))
        .run()
        .unwrap();
    assert_eq!(r.energy.kind, EnergyKind::Replayed);
    assert_eq!(r.tasks.len(), 3 * 2 * 2);
    for t in &r.tasks {
        let e = t.energy.unwrap().0;
        assert!(
            (e - 150.0 * t.wall.0).abs() <= 0.05 * e + 2.0, // edges: a few sampler periods
            "{} {e} J in {} s",
            t.task,
            t.wall.0
        );
        // The calls inside the window account for (almost) all of it.
        let calls: f64 = t.calls.iter().filter_map(|c| c.energy).map(|e| e.0).sum();
        assert!(calls <= e * 1.01 && calls >= 0.5 * e, "{calls} of {e}");
        assert_eq!(t.requests, t.calls.iter().map(|c| c.requests).sum::<u64>());
    }
    let total: f64 = r.tasks.iter().map(|t| t.energy.unwrap().0).sum();
    let wall: f64 = r.tasks.iter().map(|t| t.wall.0).sum();
    assert!((total - 150.0 * wall).abs() <= 0.03 * total, "{total} J over {wall} s");
    // Runs sum their tasks.
    for run in &r.runs {
        let mine: Vec<_> = r
            .tasks
            .iter()
            .filter(|t| {
                t.scheme.label() == run.config().scheme && Some(t.repetition) == run.repetition()
            })
            .collect();
        let e: f64 = mine.iter().map(|t| t.energy.unwrap().0).sum();
        assert!((run.energy().unwrap().0 - e).abs() < 1e-9);
        assert_eq!(run.scores().len(), 2);
    }
    let out = dir.path().join("study");
    let rep = r.write(&out).unwrap();
    // The written runs reproduce the written Table 2.
    let runs: Vec<Run> =
        serde_json::from_str(&std::fs::read_to_string(out.join(files::RUNS_JSON)).unwrap())
            .unwrap();
    assert_eq!(runs, r.runs);
    let t2: eai::metrics::Table2 =
        serde_json::from_str(&std::fs::read_to_string(out.join(files::TABLE2_JSON)).unwrap())
            .unwrap();
    let of = |s: &str| runs.iter().filter(|r| r.config().scheme == s).cloned().collect::<Vec<_>>();
    let row = t2.rows.iter().find(|r| r.strategy == "Dynamic (W8A8 per token)").unwrap();
    let expect = check_row(row, &of("fp32"), &of("dynamic"));
    let md = std::fs::read_to_string(out.join(files::REPORT_MD)).unwrap();
    assert!(md.contains("REPLAYED"), "{md}");
    assert!(md.contains(&expect), "{md}");
    assert_eq!(rep.table2.as_ref(), Some(&t2));
    for f in [files::POWER_SVG, files::PARETO_SVG, files::HEATMAP_SVG] {
        let svg = std::fs::read_to_string(out.join(f)).unwrap();
        assert!(svg.starts_with("<svg"), "{f}");
    }
    let trace = eai::power::Timeline::load(&out.join(files::TRACE_CSV)).unwrap();
    assert!(!trace.channels.is_empty());
    // The folder reads back.
    let back = eai::StudyResults::load(&out).unwrap();
    assert_eq!(back.runs, r.runs);
    assert_eq!(back.analyze().unwrap().table2, rep.table2);
    let samples = out.join("samples/fp32/rep1/samples_arc_easy.jsonl");
    assert_eq!(std::fs::read_to_string(samples).unwrap().lines().count(), 8);
}

#[test]
fn bad_settings_are_named() {
    let e = small(&[Scheme::Fp32, Scheme::Fp32]).power(PowerSetup::Off).run().unwrap_err();
    assert!(e.to_string().contains("fp32 is listed twice"), "{e}");
    let e = small(&[]).power(PowerSetup::Off).run().unwrap_err();
    assert!(e.to_string().contains("no scheme"), "{e}");
    let e = small(&[Scheme::Fp32]).repeats(0).power(PowerSetup::Off).run().unwrap_err();
    assert!(e.to_string().contains("repeats"), "{e}");
    let e = small(&[Scheme::Fp32])
        .baseline(Duration::from_millis(200))
        .power(PowerSetup::Off)
        .run()
        .unwrap_err();
    assert!(e.to_string().contains("baseline"), "{e}");
    let e = Study::new(loader()).power(PowerSetup::Off).run().unwrap_err();
    assert!(e.to_string().contains("no task"), "{e}");
    let e = small(&[Scheme::Fp32])
        .power(PowerSetup::Replay("/nonexistent/trace.csv".into()))
        .run()
        .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/trace.csv"), "{e}");
}

#[test]
fn a_failing_scheme_keeps_what_was_recorded() {
    let loader = loader_fn("flaky", |s: Scheme| -> Result<Box<dyn LanguageModel>, ModelError> {
        match s {
            Scheme::Fp32 => {
                Ok(Box::new(LengthModel { scale: 1.0, per_request: Duration::from_millis(1) }))
            }
            other => {
                Err(ModelError::Unsupported { model: "flaky".into(), what: other.label().into() })
            }
        }
    });
    let e = Study::new(loader)
        .schemes([Scheme::Fp32, Scheme::Int8Static])
        .task(StudyTask::new(bundled::arc_easy().unwrap()).limit(3))
        .repeats(1)
        .warmup_docs(0)
        .baseline(Duration::ZERO)
        .power(PowerSetup::Sources(vec![Box::new(ConstantSource::new(Watts(20.0)))]))
        .progress(false)
        .run()
        .unwrap_err();
    assert!(matches!(e, Error::Partial { .. }));
    assert!(e.to_string().contains("int8-w8a8-static"), "{e}");
    let kept = e.partial_results().unwrap();
    assert_eq!(kept.runs.len(), 1);
    assert!(kept.timeline.is_some());
    assert!(!kept.windows.is_empty());
}

#[test]
fn advice_is_the_recommenders_answer_from_the_runs() {
    // FP16 computes twice as fast as FP32 with the same answers; the dynamic scheme is faster
    // still but answers differently (prefers long continuations).
    let loader =
        loader_fn("length-model", |s: Scheme| -> Result<Box<dyn LanguageModel>, ModelError> {
            let (scale, ms) = match s {
                Scheme::Fp32 => (1.0, 20),
                Scheme::Fp16 => (1.0, 10),
                _ => (-1.0, 5),
            };
            Ok(Box::new(LengthModel { scale, per_request: Duration::from_millis(ms) }))
        });
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.csv");
    constant_gpu_trace(&trace, 200.0, 120.0);
    let schemes = [Scheme::Fp32, Scheme::Fp16, Scheme::Dynamic];
    let r = Study::new(loader)
        .schemes(schemes)
        .task(StudyTask::new(bundled::arc_easy().unwrap()).limit(8))
        .task(StudyTask::new(bundled::hellaswag().unwrap()).limit(4))
        .repeats(2)
        .warmup_docs(0)
        .baseline(Duration::ZERO)
        .power(PowerSetup::Replay(trace))
        .progress(false)
        .run()
        .unwrap();
    let out = dir.path().join("study");
    let rep = r.write(&out).unwrap();
    let advice = rep.advice.as_ref().expect("energy was replayed, so there is advice");
    assert!(!advice.hardware_checked, "`cpu` has no hardware profile");
    let best = check_advice(advice, &r.runs, Scheme::Fp32, &schemes, 0.98);
    assert_eq!(best, Scheme::Fp16.strategy().name, "same scores, half the time");
    let md = std::fs::read_to_string(out.join(files::REPORT_MD)).unwrap();
    assert!(md.contains("## Advice") && md.contains("REPLAYED"), "{md}");
    let first = &advice.recommendation.ranked[0].candidate;
    assert!(md.contains(&format!("1. **{} + {}**", first.hardware, first.strategy.name)), "{md}");

    // `eai recommend` on the folder gives the same answer, from runs.json alone.
    let recommend = |extra: &[&str]| -> eai::Advice {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_eai"))
            .args(["recommend", "--json"])
            .args(extra)
            .arg(&out)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let labels = |a: &eai::Advice| {
        let l = |v: &[eai::metrics::Assessment]| {
            v.iter().map(|x| x.candidate.strategy.name.clone()).collect::<Vec<_>>()
        };
        (l(&a.recommendation.ranked), l(&a.recommendation.rejected))
    };
    let from_cli = recommend(&[]);
    assert_eq!(labels(&from_cli), labels(advice));
    check_advice(&from_cli, &r.runs, Scheme::Fp32, &schemes, 0.98);
    // A stricter threshold rejects more, by the same figures.
    let strict = recommend(&["--min-retained", "1.5"]);
    assert!(strict.recommendation.ranked.is_empty());
    check_advice(&strict, &r.runs, Scheme::Fp32, &schemes, 1.5);
    // On a profiled GPU the whole flow runs, tensor-core checks included.
    let gpu = recommend(&["--hardware", "H200-SXM-141GB"]);
    assert!(gpu.hardware_checked);
    check_advice(&gpu, &r.runs, Scheme::Fp32, &schemes, 0.98);
    let fp16 = gpu.recommendation.best().unwrap();
    assert!(fp16.reasons.iter().any(|x| x.text.contains("tensor cores")), "{:?}", fp16.reasons);
}

#[test]
fn advice_from_the_measured_gpu_study() {
    // The H200 study committed in docs/results/gpu-study: measured runs, a profiled GPU.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let runs: Vec<Run> = serde_json::from_str(
        &std::fs::read_to_string(root.join("docs/results/gpu-study/runs.json")).unwrap(),
    )
    .unwrap();
    let c = eai::metrics::Constraints {
        min_retained_accuracy: Some(0.98),
        ..eai::metrics::Constraints::default()
    };
    let advice = eai::advise(&runs, "fp32", &c).unwrap();
    assert!(advice.hardware_checked, "H200-SXM-141GB is a built-in profile");
    let schemes = [Scheme::Fp32, Scheme::Fp16, Scheme::Int8WeightOnly, Scheme::Dynamic];
    check_advice(&advice, &runs, Scheme::Fp32, &schemes, 0.98);
    // The committed answer (docs/results/recommendation-gpu.md) is this one.
    let doc = std::fs::read_to_string(root.join("docs/results/recommendation-gpu.md")).unwrap();
    let md = advice.to_markdown();
    assert!(doc.contains(md.trim()), "docs/results/recommendation-gpu.md is stale:\n{md}");
}
