//! Issue 20's seams, through the public API only: scoring from given responses, document
//! selection by index, one MMLU subject, few-shot provenance, perplexity.
use eai_core::{
    GenerateRequest, Generation, LanguageModel, Loglikelihood, LoglikelihoodRequest, ModelError,
    ModelInfo, RequestKind, RollingLoglikelihood, RollingRequest,
};
use eai_eval::perplexity::{PerplexitySample, word_count};
use eai_eval::{
    Doc, DocRequests, DocResponses, Error, Evaluator, Scoring, Suite, Task, TaskConfig,
    TaskOptions, TaskScorer, bundled, score_document, score_task, tasks,
};

use crate::common::{Scripted, fixture_data};

/// The answers `Scripted` gives, per document.
fn scripted_responses(task: &Task) -> Vec<DocResponses> {
    task.instances()
        .unwrap()
        .iter()
        .map(|inst| match &inst.requests {
            DocRequests::Loglikelihood(rs) => DocResponses::Loglikelihood(
                rs.iter().map(|r| Scripted::ll(&r.context, &r.continuation)).collect(),
            ),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[test]
fn scoring_given_responses_equals_the_evaluator() {
    let opts = TaskOptions { num_fewshot: Some(3), ..TaskOptions::default() };
    for name in ["arc_easy", "hellaswag", "truthfulqa_mc2", "mmlu_anatomy"] {
        let suite = tasks::load_named(&fixture_data(), name, &opts).unwrap();
        let task = &suite.tasks[0];
        let scored = score_task(task, &scripted_responses(task)).unwrap();
        let ran = Evaluator::new()
            .progress(false)
            .run(&mut Scripted::default(), &Suite { tasks: vec![task.clone()], groups: vec![] })
            .unwrap();
        let via_eval = &ran.tasks[0];
        assert!(!scored.result.metrics.is_empty());
        // Bit-identical metrics and per-document records: one scoring path.
        assert_eq!(scored.result.metrics, via_eval.metrics, "{name}");
        assert_eq!(scored.samples, ran.samples[task.name()], "{name}");
        assert_eq!(scored.result.n_effective, via_eval.n_effective);
        assert_eq!(scored.result.requests.requests, via_eval.requests.requests);
    }
}

#[test]
fn duplicate_requests_can_get_different_answers() {
    // Two documents with the same question and choices: the Evaluator sends their requests
    // once; scored from responses, each gets its own answers.
    let q = "Question: Which is a fruit?\nAnswer:";
    let choices = vec!["apple".to_string(), "stone".to_string()];
    let docs = vec![
        Doc::multiple_choice("a", q, choices.clone(), 0),
        Doc::multiple_choice("b", q, choices, 0),
    ];
    let task =
        Task::new(TaskConfig::new("dup"), docs, vec![], Scoring::MultipleChoice { acc_norm: true })
            .unwrap();
    let ll = |a: f64, b: f64| {
        DocResponses::Loglikelihood(vec![Loglikelihood::new(a, false), Loglikelihood::new(b, true)])
    };
    let scored = score_task(&task, &[ll(-1.0, -2.0), ll(-3.0, -2.0)]).unwrap();
    let acc = scored.result.metric("acc,none").unwrap();
    assert_eq!(acc.value, 0.5);
    assert_eq!(scored.samples[0].metrics["acc,none"], 1.0);
    assert_eq!(scored.samples[1].metrics["acc,none"], 0.0);
    assert_eq!(scored.samples[1].prediction, Some(1));
    assert_eq!(scored.samples[1].is_greedy, [false, true]);
    // acc_norm divides by characters: "apple" 5, "stone" 5, so the same picks here.
    assert_eq!(scored.result.metric("acc_norm,none").unwrap().value, 0.5);
    // The per-document call gives the same record.
    let inst = &task.instances().unwrap()[1];
    assert_eq!(score_document(&task, inst, &ll(-3.0, -2.0)).unwrap(), scored.samples[1]);
}

#[test]
fn responses_that_do_not_fit_are_typed_errors() {
    let task = bundled::arc_easy().unwrap();
    let inst = &task.instances().unwrap()[0];
    let wrong_kind = DocResponses::Generate(Generation::new("A"));
    let e = score_document(&task, inst, &wrong_kind).unwrap_err();
    assert!(matches!(&e, Error::ResponseMismatch { task, .. } if task == "arc_easy"), "{e}");
    let too_few = DocResponses::Loglikelihood(vec![Loglikelihood::new(-1.0, false)]);
    let e = score_document(&task, inst, &too_few).unwrap_err();
    assert!(e.to_string().contains("got 1 log-likelihoods"), "{e}");
    let nan = DocResponses::Loglikelihood(vec![Loglikelihood::new(f64::NAN, false); 4]);
    assert!(matches!(
        score_document(&task, inst, &nan).unwrap_err(),
        Error::NonFiniteLoglikelihood { .. }
    ));
    let e = score_task(&task, &[]).unwrap_err();
    assert!(matches!(e, Error::ResponseMismatch { .. }), "{e}");
    assert!(matches!(TaskScorer::new(&task).finish().unwrap_err(), Error::NoDocuments { .. }));
}

#[test]
fn generation_scored_from_given_text() {
    let gsm = tasks::load_named(&fixture_data(), "gsm8k", &TaskOptions::default()).unwrap();
    let task = gsm.tasks[0].clone().with_doc_indices(Some(vec![0, 1])).unwrap();
    let gold: Vec<String> =
        task.eval_docs().iter().map(|d| d.answer_text().unwrap().to_owned()).collect();
    // The gold answer itself, then a wrong number; each followed by a stop string.
    let responses = vec![
        DocResponses::Generate(Generation::new(format!("{}\n\nQuestion: more", gold[0]))),
        DocResponses::Generate(Generation::new("The answer is 987654321.")),
    ];
    let s = score_task(&task, &responses).unwrap();
    assert_eq!(s.result.metric("exact_match,strict-match").unwrap().value, 0.5);
    assert_eq!(s.result.metric("exact_match,flexible-extract").unwrap().value, 0.5);
    assert!(!s.samples[0].generation.as_deref().unwrap().contains("Question:"));
}

#[test]
fn selection_by_index_follows_lm_eval_samples() {
    let opts = TaskOptions { num_fewshot: Some(2), ..TaskOptions::default() };
    let task = tasks::load_named(&fixture_data(), "arc_easy", &opts).unwrap().tasks.remove(0);
    let full = task.instances().unwrap();
    let sel = task.clone().with_doc_indices(Some(vec![5, 2, 5])).unwrap();
    let picked = sel.instances().unwrap();
    // Document order, each once, the limit ignored.
    assert_eq!(picked.iter().map(|i| i.doc).collect::<Vec<_>>(), [2, 5]);
    assert_eq!(sel.clone().with_limit(Some(eai_eval::Limit::Count(1))).eval_docs().len(), 2);
    // One draw per evaluated document in evaluation order: the first selected document gets
    // the shots the first document of a full run gets.
    assert_eq!(picked[0].fewshot, full[0].fewshot);
    assert!(picked[0].context.ends_with(&task.docs()[2].text));
    // Out of range: an error naming the index.
    let e = task.clone().with_doc_indices(Some(vec![task.docs().len()])).unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
    assert!(task.with_doc_indices(Some(vec![])).unwrap().instances().is_err());
}

#[test]
fn one_mmlu_subject_loads_alone_and_matches_the_full_suite() {
    let opts = TaskOptions { num_fewshot: Some(5), ..TaskOptions::default() };
    let one = tasks::load_named(&fixture_data(), "mmlu_anatomy", &opts).unwrap();
    assert_eq!(one.tasks.len(), 1);
    assert!(one.groups.is_empty());
    let all = tasks::load_named(&fixture_data(), "mmlu", &opts).unwrap();
    let same = all.tasks.iter().find(|t| t.name() == "mmlu_anatomy").unwrap();
    assert_eq!(one.tasks[0].instances().unwrap(), same.instances().unwrap());
    // Only that subject's files are read: a root holding nothing else loads it.
    let dir = tempfile::tempdir().unwrap();
    for split in ["test", "dev"] {
        std::fs::create_dir_all(dir.path().join("mmlu").join(split)).unwrap();
        let f = format!("anatomy_{split}.csv");
        std::fs::copy(
            fixture_data().join("mmlu").join(split).join(&f),
            dir.path().join("mmlu").join(split).join(&f),
        )
        .unwrap();
    }
    let lone = tasks::load_named(dir.path(), "mmlu_anatomy", &opts).unwrap();
    assert_eq!(lone.tasks[0].instances().unwrap(), same.instances().unwrap());
    let e = tasks::mmlu_subject(dir.path(), "anatomyy", 0).unwrap_err();
    assert!(e.to_string().contains("unknown MMLU subject"), "{e}");
    let spec = Suite::load_spec(&fixture_data(), "mmlu_anatomy:1, arc_easy", &opts).unwrap();
    assert_eq!(spec.tasks.len(), 2);
    assert_eq!(spec.tasks[0].config().num_fewshot, 1);
}

#[test]
fn few_shot_provenance_in_instances_and_samples() {
    let opts = TaskOptions { num_fewshot: Some(3), ..TaskOptions::default() };
    for name in ["arc_easy", "mmlu_anatomy", "hellaswag", "gsm8k"] {
        let task = tasks::load_named(&fixture_data(), name, &opts).unwrap().tasks.remove(0);
        let c = task.config();
        for inst in task.instances().unwrap() {
            assert_eq!(inst.fewshot.len(), 3, "{name}");
            // The context is the description, then exactly these shots in this order.
            let mut want = c.description.clone();
            for &i in &inst.fewshot {
                let d = &task.fewshot_pool()[i];
                want.push_str(&d.text);
                want.push_str(&c.target_delimiter);
                want.push_str(d.answer_text().unwrap());
                want.push_str(&c.fewshot_delimiter);
            }
            want.push_str(&task.docs()[inst.doc].text);
            assert_eq!(inst.context, want, "{name} doc {}", inst.doc);
        }
    }
    // MMLU's first_n sampler: dev rows 0..k.
    let mmlu = tasks::load_named(&fixture_data(), "mmlu_anatomy", &opts).unwrap();
    assert_eq!(mmlu.tasks[0].instances().unwrap()[0].fewshot, [0, 1, 2]);
    // Written to samples_*.jsonl.
    let res = Evaluator::new().progress(false).run(&mut Scripted::default(), &mmlu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    res.write_dir(dir.path()).unwrap();
    let text = std::fs::read_to_string(dir.path().join("samples_mmlu_anatomy.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["fewshot"][2]["index"], 2);
    assert_eq!(first["fewshot"][2]["id"], "anatomy/dev/2");
}

/// An engine with rolling log-likelihoods: −0.5 nats per byte of text.
struct PerByte(Vec<RollingRequest>);

impl LanguageModel for PerByte {
    fn info(&self) -> ModelInfo {
        ModelInfo::new("per-byte")
    }
    fn loglikelihood(
        &mut self,
        reqs: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, ModelError> {
        Ok(reqs.iter().map(|_| Loglikelihood::new(-1.0, false)).collect())
    }
    fn generate_until(&mut self, reqs: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
        Ok(reqs.iter().map(|_| Generation::new("")).collect())
    }
    fn loglikelihood_rolling(
        &mut self,
        reqs: &[RollingRequest],
    ) -> Result<Vec<RollingLoglikelihood>, ModelError> {
        self.0.extend(reqs.iter().cloned());
        Ok(reqs.iter().map(|r| RollingLoglikelihood::new(-0.5 * r.text.len() as f64)).collect())
    }
    fn supports(&self, kind: RequestKind) -> Option<bool> {
        let _ = kind;
        Some(true)
    }
}

#[test]
fn perplexity_as_lm_eval_computes_it() {
    let task = bundled::perplexity().unwrap();
    let texts: Vec<String> =
        task.docs().iter().map(|d| d.answer_text().unwrap().to_owned()).collect();
    assert_eq!(texts.len(), bundled::PERPLEXITY_DOCS);
    // Given responses: −(i+1)·100 nats for document i.
    let lls: Vec<f64> = (0..texts.len()).map(|i| -100.0 * (i + 1) as f64).collect();
    let responses: Vec<DocResponses> =
        lls.iter().map(|&l| DocResponses::Rolling(RollingLoglikelihood::new(l))).collect();
    let s = score_task(&task, &responses).unwrap();
    let ll: f64 = lls.iter().sum();
    let words: usize = texts.iter().map(|t| word_count(t)).sum();
    let bytes: usize = texts.iter().map(String::len).sum();
    let m = |k: &str| s.result.metric(k).unwrap();
    assert!((m("word_perplexity,none").value - (-ll / words as f64).exp()).abs() < 1e-9);
    assert!((m("byte_perplexity,none").value - (-ll / bytes as f64).exp()).abs() < 1e-12);
    let bpb = -ll / bytes as f64 / std::f64::consts::LN_2;
    assert!((m("bits_per_byte,none").value - bpb).abs() < 1e-12);
    assert_eq!(m("bits_per_byte,none").stderr, None);
    assert_eq!(s.samples[0].perplexity, Some(PerplexitySample::new(lls[0], &texts[0])));
    // Through the Evaluator: the same path, the texts sent whole.
    let mut model = PerByte(Vec::new());
    let suite = Suite { tasks: vec![task.clone()], groups: vec![] };
    let res = Evaluator::new().progress(false).run(&mut model, &suite).unwrap();
    assert_eq!(model.0.len(), texts.len());
    let bpb = res.tasks[0].metric("bits_per_byte,none").unwrap().value;
    assert!((bpb - 0.5 / std::f64::consts::LN_2).abs() < 1e-12, "{bpb}");
    let line = res.samples["perplexity"][0].to_json();
    assert_eq!(line["word_perplexity,none"][1], word_count(&texts[0]));
    // An engine without them: a typed error naming the task and the request kind.
    let e = Evaluator::new().progress(false).run(&mut Scripted::default(), &suite).unwrap_err();
    let Error::Model { task, source } = e else { panic!("{e}") };
    assert_eq!(task, "perplexity");
    assert!(matches!(source, ModelError::Unsupported { .. }), "{source}");
    // Few-shot examples make no sense for it.
    assert!(task_with_shots_fails());
}

fn task_with_shots_fails() -> bool {
    let t = bundled::perplexity().unwrap();
    let mut cfg = t.config().clone();
    cfg.num_fewshot = 1;
    Task::new(cfg, t.docs().to_vec(), t.docs().to_vec(), Scoring::Perplexity).is_err()
}
