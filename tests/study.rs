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
        .per_call_energy(true)
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

/// An engine that records the size of every call it gets.
struct CallSizes {
    sizes: std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
}

impl LanguageModel for CallSizes {
    fn info(&self) -> eai::core::ModelInfo {
        eai::core::ModelInfo::new("call-sizes")
    }
    fn loglikelihood(
        &mut self,
        reqs: &[eai::core::LoglikelihoodRequest],
    ) -> Result<Vec<eai::core::Loglikelihood>, ModelError> {
        self.sizes.lock().unwrap().push(reqs.len());
        Ok(reqs
            .iter()
            .map(|r| eai::core::Loglikelihood::new(-(r.continuation.len() as f64), false))
            .collect())
    }
    fn generate_until(
        &mut self,
        reqs: &[eai::core::GenerateRequest],
    ) -> Result<Vec<eai::core::Generation>, ModelError> {
        Ok(reqs.iter().map(|_| eai::core::Generation::new("")).collect())
    }
}

#[test]
fn batch_size_overrides_the_engines_choice() {
    let run = |batch: Option<usize>| {
        let sizes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s2 = sizes.clone();
        let loader =
            loader_fn("call-sizes", move |_| -> Result<Box<dyn LanguageModel>, ModelError> {
                Ok(Box::new(CallSizes { sizes: s2.clone() }))
            });
        let mut s = Study::new(loader)
            .schemes([Scheme::Fp32])
            .task(StudyTask::new(bundled::arc_easy().unwrap()).limit(10))
            .repeats(1)
            .warmup_docs(0)
            .baseline(Duration::ZERO)
            .power(PowerSetup::Off)
            .progress(false);
        if let Some(n) = batch {
            s = s.batch_size(n);
        }
        let r = s.run().unwrap();
        let sizes = sizes.lock().unwrap().clone();
        (r, sizes)
    };
    let (r, sizes) = run(Some(3));
    assert_eq!(r.settings.batch_size, Some(3));
    assert!(sizes.iter().all(|&n| n <= 3) && sizes.len() >= 13, "{sizes:?}");
    // Without the override the evaluator's default applies (the engine's choice; this engine
    // states none, so the evaluator's own default, more than 3 here).
    let (r, sizes) = run(None);
    assert_eq!(r.settings.batch_size, None);
    assert!(sizes.iter().any(|&n| n > 3), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), r.tasks[0].requests as usize);
}

#[test]
fn min_window_runs_passes_and_divides_energy_by_them() {
    let r = Study::new(loader())
        .schemes([Scheme::Fp32])
        .task(StudyTask::new(bundled::arc_easy().unwrap()).limit(2))
        .repeats(2)
        .warmup_docs(0)
        .baseline(Duration::ZERO)
        .power(PowerSetup::Sources(vec![Box::new(ConstantSource::new(Watts(100.0)))]))
        .min_window(Duration::from_millis(400))
        .progress(false)
        .run()
        .unwrap();
    assert_eq!(r.settings.min_window.0, 0.4);
    for t in &r.tasks {
        // 2 documents × 4 choices × 30 ms ≈ 0.24 s per pass: at least two passes in 0.4 s.
        assert!(t.passes >= 2, "{} passes", t.passes);
        assert!(t.passes_agree);
        assert!(t.window_wall.0 >= 0.4, "{}", t.window_wall.0);
        assert!((t.wall.0 * f64::from(t.passes) - t.window_wall.0).abs() < 1e-9);
        // The window's energy, divided by the passes, is the task's.
        let w = r.windows.iter().find(|w| Some(w.id) == t.window).unwrap();
        let e = w.energy().unwrap().0;
        assert!((t.energy.unwrap().0 * f64::from(t.passes) - e).abs() <= 1e-9 * e, "{e}");
        let dev: f64 = t.devices.iter().filter_map(|d| d.energy).map(|x| x.0).sum();
        assert!((dev - t.energy.unwrap().0).abs() <= 1e-9 * e);
        // Score from the first pass: the bundled ARC items scored by length.
        assert_eq!(t.docs, 2);
        // Time is per pass and its parts add up to it.
        let b = t.time.unwrap();
        assert!((b.total().0 - t.wall.0).abs() < 1e-6, "{b:?} vs {}", t.wall.0);
        assert!(b.engine.0 > 0.0 && b.engine_busy().unwrap() <= 1.0);
    }
    let md = r.analyze().unwrap().markdown(&r);
    assert!(md.contains("## Where the time went"), "{md}");
    let dir = tempfile::tempdir().unwrap();
    r.write(dir.path()).unwrap();
    let csv = std::fs::read_to_string(dir.path().join(files::TASKS_CSV)).unwrap();
    let header = csv.lines().next().unwrap();
    for col in ["passes", "window_s", "passes_agree", "engine_s", "engine_busy"] {
        assert!(header.split(',').any(|c| c == col), "{header}");
    }
    // Without a minimum window (the default without an NVML GPU): one pass per window.
    let r = small(&[Scheme::Fp32])
        .power(PowerSetup::Sources(vec![Box::new(ConstantSource::new(Watts(100.0)))]))
        .run()
        .unwrap();
    assert_eq!(r.settings.min_window.0, 0.0);
    assert!(r.tasks.iter().all(|t| t.passes == 1 && t.wall == t.window_wall));
}

#[test]
fn per_call_energy_only_when_asked_and_environment_always() {
    let r = small(&[Scheme::Fp32])
        .power(PowerSetup::Sources(vec![Box::new(ConstantSource::new(Watts(10.0)))]))
        .run()
        .unwrap();
    assert!(!r.settings.per_call_energy);
    assert!(r.tasks.iter().all(|t| t.calls.is_empty()));
    // Requests and tokens are counted without metering the calls.
    assert!(r.tasks.iter().all(|t| t.requests > 0 && t.tokens.is_some_and(|n| n > 0)));
    let md = r.analyze().unwrap().markdown(&r);
    assert!(!md.contains("Prefill J"), "{md}");
    assert!(md.contains("## Environment") && md.contains("| eai | "), "{md}");
    assert!(md.contains("Hardware label"), "{md}");
    assert_eq!(r.environment.eai_version, env!("CARGO_PKG_VERSION"));
    assert!(r.environment.hardware.is_some());
    let r = small(&[Scheme::Fp32])
        .power(PowerSetup::Sources(vec![Box::new(ConstantSource::new(Watts(10.0)))]))
        .per_call_energy(true)
        .run()
        .unwrap();
    assert!(r.settings.per_call_energy);
    assert!(r.tasks.iter().all(|t| !t.calls.is_empty()));
    assert!(r.analyze().unwrap().markdown(&r).contains("Prefill J"));
}

/// A loader that tokenizes ahead (says so, and how long it took) and records when it was asked.
struct Pretokenizing {
    events: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl eai::ModelLoader for Pretokenizing {
    fn name(&self) -> String {
        "length-model".into()
    }
    fn load(&mut self, s: Scheme) -> Result<Box<dyn LanguageModel>, ModelError> {
        self.events.lock().unwrap().push(format!("load {}", s.label()));
        Ok(Box::new(LengthModel { scale: 1.0, per_request: Duration::from_millis(1) }))
    }
    fn pretokenize(
        &mut self,
        plan: &eai::eval::Prepared,
    ) -> Result<Option<eai::core::Seconds>, ModelError> {
        let n = plan.loglikelihood_requests().count();
        self.events.lock().unwrap().push(format!("tokenize {n}"));
        Ok(Some(eai::core::Seconds(0.25)))
    }
}

#[test]
fn tasks_are_tokenized_once_before_any_window_and_the_time_reported() {
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let r = Study::new(Pretokenizing { events: events.clone() })
        .schemes([Scheme::Fp32, Scheme::Fp16])
        .task(StudyTask::new(bundled::arc_easy().unwrap()).limit(4))
        .task(StudyTask::new(bundled::hellaswag().unwrap()).limit(2))
        .repeats(2)
        .warmup_docs(0)
        .baseline(Duration::ZERO)
        .power(PowerSetup::Sources(vec![Box::new(ConstantSource::new(Watts(100.0)))]))
        .progress(false)
        .run()
        .unwrap();
    // Once per task, before the first model is built (so before every window).
    let ev = events.lock().unwrap().clone();
    assert_eq!(ev, ["tokenize 16", "tokenize 8", "load fp32", "load fp16"]);
    let tok: Vec<_> = r.settings.tasks.iter().map(|t| t.tokenize.map(|s| s.0)).collect();
    assert_eq!(tok, [Some(0.25), Some(0.25)]);
    let md = r.analyze().unwrap().markdown(&r);
    assert!(md.contains("tokenized once per task, before any window"), "{md}");
    assert!(md.contains("arc_easy 0.25 s, hellaswag 0.25 s"), "{md}");
}

#[test]
fn warm_up_runs_each_tasks_longest_requests_before_the_windows() {
    let run = |warmup: usize| {
        let sizes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s2 = sizes.clone();
        let loader =
            loader_fn("call-sizes", move |_| -> Result<Box<dyn LanguageModel>, ModelError> {
                Ok(Box::new(CallSizes { sizes: s2.clone() }))
            });
        let r = Study::new(loader)
            .schemes([Scheme::Fp32])
            .task(StudyTask::new(bundled::arc_easy().unwrap()).limit(10))
            .repeats(1)
            .warmup_docs(warmup)
            .baseline(Duration::ZERO)
            .power(PowerSetup::Off)
            .progress(false)
            .run()
            .unwrap();
        let calls = sizes.lock().unwrap().clone();
        (r.tasks[0].requests as usize, calls)
    };
    // Two documents, then the task's longest requests (all of these: fewer than 256) in one
    // call, then the window's pass.
    let (n, calls) = run(2);
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(calls[0] <= 2 * 5, "{calls:?}");
    assert_eq!(&calls[1..], [n, n]);
    // No warm-up at all when it is turned off.
    let (n, calls) = run(0);
    assert_eq!(calls, [n]);
}
