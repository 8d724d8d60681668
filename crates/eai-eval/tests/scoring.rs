//! Scoring with scripted log-likelihoods: acc, acc_norm by characters, MC1, MC2 (#25, #208),
//! GSM8K extraction, stderr, the MMLU aggregate, de-duplication and forward passes.
use std::collections::HashMap;

use eai_core::{
    GenerateRequest, Generation, LanguageModel, Loglikelihood, LoglikelihoodRequest, ModelError,
    ModelInfo,
};
use eai_eval::data::truthfulqa;
use eai_eval::metrics::{self, ExactMatch, RegexFilter};
use eai_eval::tasks::{self, Group};
use eai_eval::{
    Benchmark, Doc, Error, Evaluator, Mc2Version, Scoring, Suite, Task, TaskConfig, TaskOptions,
};

use crate::common::{Scripted, Table, fixture_data};

fn mc_task(docs: Vec<Doc>, acc_norm: bool) -> Task {
    Task::new(TaskConfig::new("t"), docs, vec![], Scoring::MultipleChoice { acc_norm }).unwrap()
}

#[test]
fn acc_and_acc_norm_scripted() {
    let docs = vec![
        Doc::multiple_choice("0", "q0", vec!["aa".into(), "bbbb".into()], 1),
        Doc::multiple_choice("1", "q1", vec!["c".into(), "dddddddddd".into()], 0),
        Doc::multiple_choice("2", "q2", vec!["x".into(), "yy".into(), "zzz".into()], 2),
    ];
    let mut model = Table(HashMap::from([
        (" aa".to_string(), -2.0),         // /2 = -1.0
        (" bbbb".to_string(), -3.0),       // /4 = -0.75 -> norm picks 1 (gold), raw picks 0
        (" c".to_string(), -1.0),          // /1 = -1.0
        (" dddddddddd".to_string(), -5.0), // /10 = -0.5 -> norm picks 1, raw picks 0 (gold)
        (" x".to_string(), -4.0),
        (" yy".to_string(), -4.0),
        (" zzz".to_string(), -4.0), // tie: argmax takes the first -> 0; norm -4/3 best -> 2
    ]));
    let suite = Suite { tasks: vec![mc_task(docs, true)], groups: vec![] };
    let res = Evaluator::new().progress(false).run(&mut model, &suite).unwrap();
    let t = res.task("t").unwrap();
    let acc = t.metric("acc,none").unwrap();
    let norm = t.metric("acc_norm,none").unwrap();
    assert!((acc.value - 1.0 / 3.0).abs() < 1e-15);
    assert!((norm.value - 2.0 / 3.0).abs() < 1e-15);
    // stderr = sqrt(p(1-p)/(n-1))
    let p: f64 = 1.0 / 3.0;
    assert!((acc.stderr.unwrap() - (p * (1.0 - p) / 2.0).sqrt()).abs() < 1e-15);
    let recs = &res.samples["t"];
    assert_eq!(recs[2].prediction, Some(0), "ties go to the first index");
    assert_eq!(recs[2].prediction_norm, Some(2));
    assert_eq!(recs[0].continuations, [" aa", " bbbb"]);
}

#[test]
fn mercury_item_flips_only_under_byte_normalisation() {
    let a = "The average high temperature in springtime is 22°C.".to_string();
    let b = "The average annual rainfall is 51cm.".to_string();
    let (la, lb) = (-10.25, -7.17);
    let chars = metrics::predict_choice(&[la, lb], &[a.clone(), b.clone()]).unwrap();
    assert_eq!(chars.pred, 1);
    assert_eq!(chars.pred_norm, 1, "by characters: -10.25/51 < -7.17/36");
    let by_bytes = metrics::argmax(&[la / a.len() as f64, lb / b.len() as f64]).unwrap();
    assert_eq!(by_bytes, 0, "dividing by bytes would pick the other choice");
}

#[test]
fn truthfulqa_mc1_mc2_items_25_and_208() {
    let items = truthfulqa::load(&fixture_data().join("truthfulqa/mc_task.json")).unwrap();
    let (i25, i208) = (&items[25], &items[30]);
    // #25 labels [1,1,1,0,1,0,0,0,0]; give every option ll = -1 except option 4 (true, after a
    // false) which is very likely.
    let mut ll25 = vec![-1.0; 9];
    ll25[4] = 0.0;
    let labels25: Vec<bool> = i25.mc2.iter().map(|c| c.1).collect();
    let e = std::f64::consts::E;
    let z = 8.0 / e + 1.0;
    let v3 = metrics::mc2(&ll25, &labels25, Mc2Version::V3LabelMask);
    let v2 = metrics::mc2(&ll25, &labels25, Mc2Version::V2SplitAtFirstFalse);
    assert!((v3 - (3.0 / e + 1.0) / z).abs() < 1e-12);
    assert!((v2 - (3.0 / e) / z).abs() < 1e-12);
    // #208 labels [1,1,0,1,0,0,0]
    let labels208: Vec<bool> = i208.mc2.iter().map(|c| c.1).collect();
    let ll = [-2.0, -2.0, -2.0, -2.0, -2.0, -2.0, -2.0];
    assert!((metrics::mc2(&ll, &labels208, Mc2Version::V3LabelMask) - 3.0 / 7.0).abs() < 1e-12);
    assert!(
        (metrics::mc2(&ll, &labels208, Mc2Version::V2SplitAtFirstFalse) - 2.0 / 7.0).abs() < 1e-12
    );
    // No underflow: lls around -2000 still give the right ratio (naive exp gives 0/0).
    let deep: Vec<f64> = ll.iter().map(|x| x - 2000.0).collect();
    assert!((metrics::mc2(&deep, &labels208, Mc2Version::V3LabelMask) - 3.0 / 7.0).abs() < 1e-12);

    // Through the evaluator: MC1 gold is the first key; MC2 reported as acc.
    let mc1 = tasks::truthfulqa_mc1_task(&items).unwrap();
    let mc2 = tasks::truthfulqa_mc2_task(&items, Mc2Version::V3LabelMask).unwrap();
    let mc2_old = tasks::truthfulqa_mc2_task(&items, Mc2Version::V2SplitAtFirstFalse).unwrap();
    assert_eq!(mc2_old.config().version, "2.0");
    let mut table = HashMap::new();
    for it in &items {
        for (k, (c, _)) in it.mc2.iter().enumerate() {
            table.insert(format!(" {c}"), -(k as f64) - 1.0);
        }
        for (c, _) in it.mc1.iter().skip(1) {
            table.entry(format!(" {c}")).or_insert(-50.0);
        }
    }
    let suite = Suite { tasks: vec![mc1, mc2], groups: vec![] };
    let res = Evaluator::new().progress(false).run(&mut Table(table.clone()), &suite).unwrap();
    let old = Suite { tasks: vec![mc2_old], groups: vec![] };
    let res_old = Evaluator::new().progress(false).run(&mut Table(table), &old).unwrap();
    for (i, labels) in [(25, &labels25), (30, &labels208)] {
        let new = &res.samples["truthfulqa_mc2"][i];
        let old = &res_old.samples["truthfulqa_mc2"][i];
        assert_eq!(new.loglikelihoods, old.loglikelihoods);
        let v3 = metrics::mc2(&new.loglikelihoods, labels, Mc2Version::V3LabelMask);
        let v2 = metrics::mc2(&new.loglikelihoods, labels, Mc2Version::V2SplitAtFirstFalse);
        assert_eq!(new.metrics["acc,none"], v3);
        assert_eq!(old.metrics["acc,none"], v2);
        assert!(v3 > v2, "item {i}: the late true answer adds mass under v3");
    }
    // Items whose true answers all come first score the same under both definitions.
    for i in (0..31).filter(|&i| i != 25 && i != 30) {
        assert_eq!(
            res.samples["truthfulqa_mc2"][i].metrics["acc,none"],
            res_old.samples["truthfulqa_mc2"][i].metrics["acc,none"],
            "item {i}"
        );
    }
    let mc1_recs = &res.samples["truthfulqa_mc1"];
    let hits = mc1_recs.iter().filter(|r| r.prediction == Some(0)).count() as f64;
    assert_eq!(res.task("truthfulqa_mc1").unwrap().metric("acc,none").unwrap().value, hits / 31.0);
    assert!(res.task("truthfulqa_mc2").unwrap().metric("acc_norm,none").is_none());
}

#[test]
fn gsm8k_extractors_and_exact_match() {
    let strict = RegexFilter::new("#### (\\-?[0-9\\.\\,]+)", 0).unwrap();
    let flex = RegexFilter::new("(-?[$0-9.,]{2,})|(-?[0-9]+)", -1).unwrap();
    let cot = RegexFilter::new("The answer is (\\-?[0-9\\.\\,]+).", 0).unwrap();
    let em = ExactMatch::gsm8k().unwrap();
    assert_eq!(strict.apply("so\n#### 1,200\n#### 5"), "1,200", "first #### wins");
    assert_eq!(strict.apply("no marker"), "[invalid]");
    assert_eq!(cot.apply("The answer is 18"), "1", "trailing any-char backtracks into the number");
    assert_eq!(cot.apply("The answer is 18."), "18");
    assert_eq!(cot.apply("The answer is $18."), "[invalid]");
    assert_eq!(flex.apply("It costs $5."), "$5.");
    assert_eq!(flex.apply("…pays $1,200. The total is 7."), "7.");
    assert_eq!(flex.apply("x 3 y"), "3", "single digits come from the second group");
    assert_eq!(em.normalize("$5."), "5");
    assert_eq!(em.normalize("7."), "7");
    assert_eq!(em.normalize("Janet sells 9 eggs.\n#### 2,125"), "2125");
    assert_eq!(em.score("5.00", "#### 5"), 0.0);
    assert_eq!(em.score("$1,200.", "He pays.\n#### 1,200"), 1.0);
    let llama = RegexFilter::new("The final answer is ((-?[$0-9.,]{2,})|(-?[0-9]+))", -1).unwrap();
    assert_eq!(llama.apply("The final answer is 4. The final answer is $12"), "$12");
    assert_eq!(llama.apply("The final answer is 7"), "7");
}

struct Fixed(Vec<&'static str>);
impl LanguageModel for Fixed {
    fn info(&self) -> ModelInfo {
        ModelInfo::new("fixed")
    }
    fn loglikelihood(
        &mut self,
        r: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, ModelError> {
        Ok(r.iter().map(|_| Loglikelihood::new(0.0, true)).collect())
    }
    fn generate_until(&mut self, reqs: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
        Ok(reqs
            .iter()
            .map(|r| {
                let q: usize = r
                    .context
                    .trim_end_matches("\nAnswer:")
                    .rsplit(' ')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                Generation { text: self.0[q].to_owned(), tokens: Some(10 + q as u32) }
            })
            .collect())
    }
}

#[test]
fn gsm8k_scoring_both_filters() {
    let gold = ["Work.\n#### 18", "Work.\n#### 2,125", "#### -3", "#### 5"];
    let docs: Vec<Doc> = gold
        .iter()
        .enumerate()
        .map(|(i, g)| Doc::generation(format!("{i}"), format!("Question: n {i}\nAnswer:"), *g))
        .collect();
    let outputs = vec![
        "9 + 9 = 18.\n#### 18\n\nQuestion: next #### 4", // strict 18 ✓, flexible 18 ✓ (cut at Question:)
        "It costs $2,125.",                              // strict ✗, flexible ✓
        "#### -3</s>#### 9",                             // both ✓ (cut at </s>)
        "5.00",                                          // both ✗
    ];
    let gsm = tasks::gsm8k_task(&[], &[], 0).unwrap();
    let Scoring::Generate { filters, exact_match } = gsm.scoring().clone() else { panic!() };
    let mut cfg = gsm.config().clone();
    cfg.name = "g".into();
    let task = Task::new(cfg, docs, vec![], Scoring::Generate { filters, exact_match }).unwrap();
    let res = Evaluator::new()
        .progress(false)
        .run(&mut Fixed(outputs), &Suite { tasks: vec![task], groups: vec![] })
        .unwrap();
    let t = res.task("g").unwrap();
    assert_eq!(t.metric("exact_match,strict-match").unwrap().value, 0.5);
    assert_eq!(t.metric("exact_match,flexible-extract").unwrap().value, 0.75);
    let s = &res.samples["g"];
    assert_eq!(s[0].generation.as_deref(), Some("9 + 9 = 18.\n#### 18\n\n"));
    assert_eq!(
        s[1].filtered,
        [
            ("strict-match".to_string(), "[invalid]".to_string()),
            ("flexible-extract".to_string(), "$2,125.".to_string())
        ]
    );
    assert_eq!(t.requests.generated_tokens, Some(10 + 11 + 12 + 13));
    let se = t.metric("exact_match,strict-match").unwrap().stderr.unwrap();
    assert!((se - (0.25f64 / 3.0).sqrt()).abs() < 1e-15);
}

#[test]
fn mmlu_aggregate_is_size_weighted_with_pooled_stderr() {
    // Two subjects of different sizes in one group.
    let mk = |name: &str, n: usize, correct: usize| {
        let docs = (0..n)
            .map(|i| {
                Doc::multiple_choice(
                    format!("{i}"),
                    format!("{name} {i}"),
                    vec!["A".into(), "B".into()],
                    usize::from(i >= correct),
                )
            })
            .collect();
        let mut cfg = TaskConfig::new(name);
        cfg.alias = Some(name.into());
        Task::new(cfg, docs, vec![], Scoring::MultipleChoice { acc_norm: false }).unwrap()
    };
    // Model always prefers "A" (index 0): doc i is correct iff i < correct.
    let mut model = Table(HashMap::from([(" A".to_string(), -0.1), (" B".to_string(), -2.0)]));
    let suite = Suite {
        tasks: vec![mk("small", 4, 3), mk("big", 12, 3)],
        groups: vec![
            Group {
                name: "all".into(),
                alias: "all".into(),
                children: vec!["sub".into()],
                weight_by_size: true,
            },
            Group {
                name: "sub".into(),
                alias: "sub".into(),
                children: vec!["small".into(), "big".into()],
                weight_by_size: true,
            },
            Group {
                name: "macro".into(),
                alias: "macro".into(),
                children: vec!["small".into(), "big".into()],
                weight_by_size: false,
            },
        ],
    };
    let res = Evaluator::new().progress(false).run(&mut model, &suite).unwrap();
    let all = res.group("all").unwrap().metric("acc,none").unwrap().clone();
    assert!((all.value - 6.0 / 16.0).abs() < 1e-15, "micro average = total correct / total");
    let macro_ = res.group("macro").unwrap().metric("acc,none").unwrap().value;
    assert!((macro_ - (0.75 + 0.25) / 2.0).abs() < 1e-15);
    // pooled: sqrt( Σ (n_i-1) n_i se_i² / (N-k) / N ) with n_i se_i² = s_i²
    let (s1, s2) = (0.75 * 0.25 * 4.0 / 3.0, 0.25 * 0.75 * 12.0 / 11.0);
    let pooled = ((3.0 * s1 + 11.0 * s2) / 14.0 / 16.0f64).sqrt();
    assert!((all.stderr.unwrap() - pooled).abs() < 1e-15);
    assert_eq!(res.group("all").unwrap().n, 16);
    // The JSON carries the group next to its subtasks.
    let j = res.to_json();
    assert!(j["results"]["all"]["acc,none"].as_f64().is_some());
    assert_eq!(j["group_subtasks"]["sub"], serde_json::json!(["small", "big"]));
}

#[test]
fn mmlu_dedup_one_pass_per_question() {
    let suite = Suite::load(
        &fixture_data(),
        &[Benchmark::Mmlu],
        &TaskOptions { num_fewshot: Some(5), ..TaskOptions::default() },
    )
    .unwrap();
    let mut model = Scripted::default();
    let res = Evaluator::new().progress(false).batch_size(10).run(&mut model, &suite).unwrap();
    let questions: usize = res.tasks.iter().map(|t| t.n_effective).sum();
    let requests: usize = res.tasks.iter().map(|t| t.requests.requests).sum();
    let passes: u64 = res.tasks.iter().map(|t| t.requests.forward_passes.unwrap()).sum();
    let contexts: usize = res.tasks.iter().map(|t| t.requests.unique_contexts).sum();
    assert_eq!(requests, 4 * questions);
    assert_eq!(contexts, questions);
    assert_eq!(passes, questions as u64, "batches keep a question's four requests together");
    assert_eq!(res.group("mmlu").unwrap().n, questions);
    assert_eq!(res.groups.len(), 5);
}

#[test]
fn duplicate_requests_are_sent_once() {
    let docs = vec![
        Doc::multiple_choice("0", "same", vec!["x".into(), "y".into()], 0),
        Doc::multiple_choice("1", "same", vec!["x".into(), "y".into()], 1),
    ];
    let mut model = Scripted::default();
    let res = Evaluator::new()
        .progress(false)
        .run(&mut model, &Suite { tasks: vec![mc_task(docs, false)], groups: vec![] })
        .unwrap();
    let st = res.task("t").unwrap().requests;
    assert_eq!((st.requests, st.unique_requests, st.unique_contexts), (4, 2, 1));
    assert_eq!(model.requests_seen, 2);
    assert_eq!((st.scored_tokens, st.generated_tokens), (None, None), "the model gave no counts");
    assert_eq!(res.task("t").unwrap().metric("acc,none").unwrap().value, 0.5);
}

#[test]
fn out_of_range_gold_scores_zero_and_is_counted() {
    let docs = vec![
        Doc::multiple_choice("0", "q", vec!["x".into()], 0),
        Doc::multiple_choice("1", "q2", vec!["x".into()], 5),
    ];
    let res = Evaluator::new()
        .progress(false)
        .run(&mut Scripted::default(), &Suite { tasks: vec![mc_task(docs, true)], groups: vec![] })
        .unwrap();
    let t = res.task("t").unwrap();
    assert_eq!(t.invalid_gold, 1);
    assert_eq!(t.metric("acc,none").unwrap().value, 0.5);
}

struct Broken;
impl LanguageModel for Broken {
    fn info(&self) -> ModelInfo {
        ModelInfo::new("broken")
    }
    fn loglikelihood(
        &mut self,
        r: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, ModelError> {
        Ok(r.iter().skip(1).map(|_| Loglikelihood::new(0.0, true)).collect())
    }
    fn generate_until(&mut self, _: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
        Err(ModelError::Unsupported { model: "broken".into(), what: "generate_until".into() })
    }
}

#[test]
fn model_contract_violations_are_typed_errors() {
    let task = eai_eval::bundled::arc_easy().unwrap();
    let e = Evaluator::new()
        .progress(false)
        .run(&mut Broken, &Suite { tasks: vec![task], groups: vec![] })
        .unwrap_err();
    assert!(
        matches!(&e, Error::Model { task, source: ModelError::CountMismatch { .. } } if task == "arc_easy"),
        "{e}"
    );
    let g = tasks::gsm8k_cot_task(
        &[eai_eval::data::gsm8k::Gsm8kItem { question: "q".into(), answer: "#### 1".into() }],
        0,
    )
    .unwrap();
    let e = Evaluator::new()
        .progress(false)
        .run(&mut Broken, &Suite { tasks: vec![g], groups: vec![] })
        .unwrap_err();
    assert!(matches!(e, Error::Model { source: ModelError::Unsupported { .. }, .. }));
}

#[test]
fn too_many_shots_is_a_config_error() {
    let e = Suite::load(
        &fixture_data(),
        &[Benchmark::ArcEasy],
        &TaskOptions { num_fewshot: Some(61), ..TaskOptions::default() },
    )
    .unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e}");
    let e = Suite::load(
        &fixture_data(),
        &[Benchmark::Mmlu],
        &TaskOptions { num_fewshot: Some(6), ..TaskOptions::default() },
    )
    .unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e}");
}

#[test]
fn results_json_and_samples_written() {
    let suite = Suite {
        tasks: vec![
            eai_eval::bundled::arc_easy().unwrap(),
            eai_eval::bundled::hellaswag().unwrap(),
        ],
        groups: vec![],
    };
    let res = Evaluator::new().progress(false).run(&mut Scripted::default(), &suite).unwrap();
    let dir = tempfile::tempdir().unwrap();
    res.write_dir(dir.path()).unwrap();
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap())
            .unwrap();
    for key in [
        "results",
        "configs",
        "versions",
        "n-shot",
        "higher_is_better",
        "n-samples",
        "config",
        "eai",
    ] {
        assert!(j.get(key).is_some(), "missing {key}");
    }
    assert!(j["results"]["arc_easy"]["acc_norm_stderr,none"].as_f64().is_some());
    assert_eq!(j["n-samples"]["hellaswag"]["effective"], 40);
    assert_eq!(j["configs"]["arc_easy"]["fewshot_config"]["sampler"], "random");
    let lines = std::fs::read_to_string(dir.path().join("samples_arc_easy.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 40);
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert!(first["prompt"].as_str().unwrap().starts_with("Question: "));
    assert_eq!(
        first["arguments"].as_array().unwrap().len(),
        first["doc"]["choices"].as_array().unwrap().len()
    );
    assert!(res.table().contains("|arc_easy|1.0|none|0|acc|"));
}
