//! The full test sets in ../shared/data (skipped with a message when absent): counts, request
//! counts and the spec's data facts.
use eai_eval::data::{hellaswag, mmlu, truthfulqa};
use eai_eval::{Benchmark, Scoring, Suite, TaskOptions};

use crate::common::shared_data_or_skip;

fn requests(s: &Suite) -> usize {
    s.request_count().unwrap()
}

#[test]
fn full_sets_load_with_expected_counts() {
    let Some(root) = shared_data_or_skip("full_sets_load_with_expected_counts") else { return };
    let o = TaskOptions::default();
    let load = |b| Suite::load(&root, &[b], &o).unwrap();

    let m = load(Benchmark::Mmlu);
    assert_eq!(m.tasks.len(), 57);
    let n: usize = m.tasks.iter().map(|t| t.docs().len()).sum();
    assert_eq!(n, 14_042);
    assert_eq!(requests(&m), 56_168);
    for (cat, want) in [
        (mmlu::MmluCategory::Stem, 3_153),
        (mmlu::MmluCategory::Humanities, 4_705),
        (mmlu::MmluCategory::SocialSciences, 3_077),
        (mmlu::MmluCategory::Other, 3_107),
    ] {
        let got: usize = m
            .tasks
            .iter()
            .filter(|t| mmlu::category(t.config().alias.as_deref().unwrap()) == Some(cat))
            .map(|t| t.docs().len())
            .sum();
        assert_eq!(got, want, "{cat:?}");
    }
    let law = m.tasks.iter().find(|t| t.name() == "mmlu_professional_law").unwrap();
    assert_eq!(law.docs().len(), 1_534);
    let stripped = m.tasks.iter().flat_map(|t| t.docs()).count();
    assert_eq!(stripped, 14_042);

    let c = load(Benchmark::ArcChallenge);
    assert_eq!(c.tasks[0].docs().len(), 1_172);
    assert_eq!(requests(&c), 4_687);
    let e = load(Benchmark::ArcEasy);
    assert_eq!(e.tasks[0].docs().len(), 2_376);
    assert_eq!(requests(&e), 9_501);
    // Two questions appear twice with the same choices (3 + 2 identical requests): eai sends
    // 9,496, lm-eval builds and reports 9,501 (docs/eval.md).
    let plan = eai_eval::Evaluator::new().prepare(&e).unwrap();
    assert_eq!((plan.requests(), plan.unique_requests()), (9_501, 9_496));

    let h = load(Benchmark::Hellaswag);
    assert_eq!(h.tasks[0].docs().len(), 10_042);
    assert_eq!(requests(&h), 40_168);
    let plan = eai_eval::Evaluator::new().prepare(&h).unwrap();
    assert_eq!((plan.requests(), plan.unique_requests()), (40_168, 40_145));

    let t1 = load(Benchmark::TruthfulqaMc1);
    let t2 = load(Benchmark::TruthfulqaMc2);
    assert_eq!(t1.tasks[0].docs().len(), 817);
    assert_eq!(requests(&t1), 4_114);
    assert_eq!(requests(&t2), 5_882);
    assert!(matches!(t2.tasks[0].scoring(), Scoring::Mc2(_)));

    let g = load(Benchmark::Gsm8k);
    assert_eq!(g.tasks[0].docs().len(), 1_319);
    assert_eq!(g.tasks[0].fewshot_pool().len(), 7_473);
    assert_eq!(g.tasks[0].config().num_fewshot, 5);
}

#[test]
fn full_data_facts_from_the_spec() {
    let Some(root) = shared_data_or_skip("full_data_facts_from_the_spec") else { return };
    let items = truthfulqa::load(&root.join("truthfulqa/mc_task.json")).unwrap();
    let labels = |i: usize| items[i].mc2.iter().map(|(_, l)| u8::from(*l)).collect::<Vec<_>>();
    assert_eq!(labels(25), [1, 1, 1, 0, 1, 0, 0, 0, 0]);
    assert_eq!(labels(208), [1, 1, 0, 1, 0, 0, 0]);
    // Exactly #25 and #208 have a true answer after a false one.
    let late: Vec<usize> = (0..items.len())
        .filter(|&i| {
            let l = labels(i);
            l.iter().position(|&x| x == 0).is_some_and(|f| l[f..].contains(&1))
        })
        .collect();
    assert_eq!(late, [25, 208]);
    // MMLU: 963 test questions carry outer whitespace; 133 choices do.
    let mut q_ws = 0;
    let mut c_ws = 0;
    for (s, _) in mmlu::SUBJECTS {
        for it in mmlu::load_split(&root.join("mmlu"), s, "test").unwrap() {
            q_ws += usize::from(eai_eval::text::py_strip(&it.question) != it.question);
            c_ws += it.choices.iter().filter(|c| eai_eval::text::py_strip(c) != c.as_str()).count();
        }
    }
    assert_eq!((q_ws, c_ws), (963, 133));
    let hs = hellaswag::load_text(&root.join("hellaswag/hellaswag_val_full.txt")).unwrap();
    let mut counts = [0usize; 4];
    for it in &hs {
        counts[it.label] += 1;
    }
    assert_eq!(counts, [2_515, 2_485, 2_584, 2_458]);
}

#[test]
fn conventional_settings_build_on_full_data() {
    let Some(root) = shared_data_or_skip("conventional_settings_build_on_full_data") else {
        return;
    };
    let o = TaskOptions { setting: eai_eval::Setting::Conventional, ..TaskOptions::default() };
    let s =
        Suite::load(&root, &[Benchmark::ArcChallenge, Benchmark::Mmlu, Benchmark::Gsm8kCot], &o)
            .unwrap();
    let arc = &s.tasks[0];
    assert_eq!(arc.config().num_fewshot, 25);
    let ctx = arc.contexts().unwrap();
    assert_eq!(ctx.len(), 1_172);
    assert_eq!(ctx[0].matches("\nAnswer: ").count(), 25);
    assert!(s.tasks.iter().any(|t| t.name() == "mmlu_anatomy" && t.config().num_fewshot == 5));
    // HellaSwag's conventional 10 shots need the train split, which shared/data lacks.
    let e = Suite::load(&root, &[Benchmark::Hellaswag], &o);
    if !root.join("hellaswag/hellaswag_train.jsonl").is_file() {
        assert!(matches!(e, Err(eai_eval::Error::MissingData { .. })));
    }
}
