//! Batching from the model's hint, prepared plans, the time breakdown, repeated passes.

use eai_core::{
    BatchHint, EngineTime, GenerateRequest, Generation, LanguageModel, Loglikelihood,
    LoglikelihoodRequest, ModelError, ModelInfo, Seconds,
};
use eai_eval::{BatchSource, Benchmark, Evaluator, Suite, TaskOptions, bundled};

use crate::common::{Scripted, Table, fixture_data};

/// `Scripted` with a batch hint, an engine-time counter, and a call log; after
/// `drift_from_call` log-likelihood calls it reverses the order of its answers (`x → −10 − x`),
/// to test the agreement check.
#[derive(Default)]
struct Hinted {
    inner: Scripted,
    hint: Option<BatchHint>,
    ll_calls: Vec<usize>,
    gen_calls: Vec<usize>,
    time: EngineTime,
    drift_from_call: Option<usize>,
}

impl LanguageModel for Hinted {
    fn info(&self) -> ModelInfo {
        self.inner.info()
    }
    fn loglikelihood(
        &mut self,
        reqs: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, ModelError> {
        self.ll_calls.push(reqs.len());
        // Pretend work: tokenizing costs 1 s per call and computing 2 s (reported, not slept).
        self.time.tokenize += Seconds(1.0);
        self.time.compute += Seconds(2.0);
        let mut out = self.inner.loglikelihood(reqs)?;
        if self.drift_from_call.is_some_and(|c| self.ll_calls.len() > c) {
            for l in &mut out {
                l.logprob = -10.0 - l.logprob;
            }
        }
        Ok(out)
    }
    fn generate_until(&mut self, reqs: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
        self.gen_calls.push(reqs.len());
        Ok(reqs.iter().map(|_| Generation::new(" The answer is 4.")).collect())
    }
    fn forward_passes(&self) -> Option<u64> {
        self.inner.forward_passes()
    }
    fn batch_hint(&self) -> Option<BatchHint> {
        self.hint
    }
    fn engine_time(&self) -> Option<EngineTime> {
        Some(self.time)
    }
}

fn arc() -> Suite {
    Suite { tasks: vec![bundled::arc_easy().unwrap()], groups: vec![] }
}

#[test]
fn the_models_batch_hint_decides_calls_unless_overridden() {
    let suite = arc();
    let unique = Evaluator::new().prepare(&suite).unwrap().unique_requests();
    assert!(unique > 100, "{unique}");
    // No hint: the default of 64.
    let mut m = Hinted::default();
    let r = Evaluator::new().progress(false).run(&mut m, &suite).unwrap();
    assert_eq!(r.batching.source, BatchSource::Default);
    assert_eq!(r.batching.loglikelihood_requests, Some(Evaluator::DEFAULT_BATCH_SIZE));
    assert!(m.ll_calls.iter().all(|&n| n <= 64) && m.ll_calls.len() >= unique.div_ceil(64));
    assert_eq!(r.to_json()["config"]["batch_size"], 64);
    // "Everything at once": one call for the task.
    let mut m = Hinted { hint: Some(BatchHint::unlimited()), ..Hinted::default() };
    let r = Evaluator::new().progress(false).run(&mut m, &suite).unwrap();
    assert_eq!((r.batching.source, r.batching.loglikelihood_requests), (BatchSource::Engine, None));
    assert_eq!(m.ll_calls, vec![unique]);
    assert_eq!(r.tasks[0].timing.calls, 1);
    assert_eq!(r.to_json()["config"]["batch_size"], "all");
    // A limit of 50: calls of at most 50 that never split a question's choices (≤ 5 each).
    let mut m = Hinted { hint: Some(BatchHint::requests(50)), ..Hinted::default() };
    let r = Evaluator::new().progress(false).run(&mut m, &suite).unwrap();
    assert_eq!(r.batching.loglikelihood_requests, Some(50));
    assert!(m.ll_calls.iter().all(|&n| (45..=50).contains(&n) || n == *m.ll_calls.last().unwrap()));
    // The expert override wins over the hint.
    let mut m = Hinted { hint: Some(BatchHint::unlimited()), ..Hinted::default() };
    let r = Evaluator::new().progress(false).batch_size(7).run(&mut m, &suite).unwrap();
    assert_eq!(
        (r.batching.source, r.batching.loglikelihood_requests),
        (BatchSource::Override, Some(7))
    );
    assert!(m.ll_calls.iter().all(|&n| n <= 7));
    // `batch_limit(None)` goes back to the hint.
    let mut m = Hinted { hint: Some(BatchHint::unlimited()), ..Hinted::default() };
    Evaluator::new().progress(false).batch_size(7).batch_limit(None).run(&mut m, &suite).unwrap();
    assert_eq!(m.ll_calls.len(), 1);
}

#[test]
fn generation_calls_follow_the_generation_hint() {
    let suite = Suite::load(
        &fixture_data(),
        &[Benchmark::Gsm8k],
        &TaskOptions { num_fewshot: Some(3), ..TaskOptions::default() },
    )
    .unwrap();
    let n = Evaluator::new().prepare(&suite).unwrap().unique_requests();
    assert!(n > 3, "{n}");
    let hint = BatchHint::unlimited().generate_requests(Some(2));
    let mut m = Hinted { hint: Some(hint), ..Hinted::default() };
    let r = Evaluator::new().progress(false).run(&mut m, &suite).unwrap();
    assert!(m.gen_calls.iter().all(|&c| c <= 2) && m.gen_calls.iter().sum::<usize>() == n);
    assert_eq!(r.tasks[0].timing.calls, n.div_ceil(2));
    assert_eq!(r.batching.generate_requests, Some(2));
}

#[test]
fn a_prepared_plan_reused_gives_what_run_gives() {
    let suite = Suite::load(
        &fixture_data(),
        &[Benchmark::ArcChallenge, Benchmark::Mmlu],
        &TaskOptions { num_fewshot: Some(2), ..TaskOptions::default() },
    )
    .unwrap();
    let ev = Evaluator::new().progress(false);
    let direct = ev.run(&mut Scripted::default(), &suite).unwrap();
    let plan = ev.prepare(&suite).unwrap();
    assert_eq!(plan.task_names().count(), suite.tasks.len());
    assert_eq!(plan.requests(), direct.tasks.iter().map(|t| t.requests.requests).sum::<usize>());
    assert_eq!(
        plan.unique_requests(),
        direct.tasks.iter().map(|t| t.requests.unique_requests).sum::<usize>()
    );
    assert_eq!(plan.loglikelihood_requests().count(), plan.unique_requests());
    for _ in 0..2 {
        let mut m = Scripted::default();
        let again = ev.run_prepared(&mut m, &plan).unwrap();
        assert_eq!(m.requests_seen, plan.unique_requests());
        for (a, b) in direct.tasks.iter().zip(&again.tasks) {
            assert_eq!((&a.name, &a.metrics, a.requests), (&b.name, &b.metrics, b.requests));
            // A reused plan costs this run no preparation.
            assert!(a.timing.prepare.0 >= 0.0 && b.timing.prepare == Seconds::ZERO);
        }
        assert_eq!(direct.groups, again.groups);
        assert_eq!(direct.samples, again.samples);
    }
    // Answering and scoring separately is the same again.
    let mut m = Scripted::default();
    let answers = ev.answer(&mut m, &plan).unwrap();
    let split = ev.score(m.info(), &plan, &answers).unwrap();
    assert_eq!(split.groups, direct.groups);
}

#[test]
fn the_time_breakdown_adds_up() {
    let suite = Suite::load(
        &fixture_data(),
        &[Benchmark::ArcEasy, Benchmark::Gsm8k],
        &TaskOptions { num_fewshot: Some(1), ..TaskOptions::default() },
    )
    .unwrap();
    let mut m = Hinted { hint: Some(BatchHint::requests(16)), ..Hinted::default() };
    let r = Evaluator::new().progress(false).run(&mut m, &suite).unwrap();
    for t in &r.tasks {
        let tm = t.timing;
        let parts = tm.prepare + tm.engine + tm.scoring + tm.bookkeeping;
        assert!((parts.0 - tm.total.0).abs() <= 1e-9 * tm.total.0.max(1.0), "{tm:?}");
        assert!(tm.total.0 > 0.0 && tm.prepare.0 > 0.0, "{tm:?}");
        assert!((0.0..=1.0).contains(&tm.engine_share()));
        assert_eq!(tm.passes, 1);
        assert!(tm.calls >= 1);
        // `Hinted` reports 1 s of tokenization per log-likelihood call, none for generation.
        let ll_calls = if t.name == "arc_easy" { tm.calls } else { 0 };
        assert_eq!(tm.tokenize, Some(Seconds(ll_calls as f64)), "{}", t.name);
        let j = &r.to_json()["eai"][&t.name]["timing"];
        assert_eq!(j["passes"], 1);
        assert!(j["engine"].as_f64().is_some() && j["total"].as_f64().is_some());
    }
    // A model that does not time itself: no tokenize figure.
    let mut table = Table(std::collections::HashMap::new());
    let r = Evaluator::new().progress(false).run(&mut table, &suite).unwrap();
    assert!(r.tasks.iter().all(|t| t.timing.tokenize.is_none()));
    assert!(r.tasks.iter().all(|t| t.timing.compute() == t.timing.engine));
}

#[test]
fn repeated_passes_score_the_first_and_check_agreement() {
    let suite = arc();
    let ev = Evaluator::new().progress(false);
    let plan = ev.prepare(&suite).unwrap();
    let once = ev.run_prepared(&mut Scripted::default(), &plan).unwrap();
    // A deterministic model: four passes, identical answers, the first pass's scores.
    let mut m = Hinted { hint: Some(BatchHint::unlimited()), ..Hinted::default() };
    let rep = ev.run_prepared_passes(&mut m, &plan, |p| p.passes < 4).unwrap();
    assert_eq!(rep.passes, 4);
    assert_eq!(m.ll_calls, vec![plan.unique_requests(); 4]);
    assert!(rep.agreement.identical && rep.agreement.agrees());
    assert_eq!((rep.agreement.passes, rep.agreement.max_logprob_diff), (3, 0.0));
    let t = &rep.results.tasks[0];
    assert_eq!(t.metrics, once.tasks[0].metrics);
    assert_eq!((t.timing.passes, t.timing.calls), (4, 4));
    assert_eq!(t.timing.tokenize, Some(Seconds(4.0)));
    // Asked for no more: one pass.
    let rep = ev.run_prepared_passes(&mut Scripted::default(), &plan, |_| false).unwrap();
    assert_eq!((rep.passes, rep.agreement.passes), (1, 0));
    assert!(rep.agreement.agrees());
    // A model whose second pass moves a prediction: scored from the first, disagreement shown.
    let mut m = Hinted {
        hint: Some(BatchHint::unlimited()),
        drift_from_call: Some(1),
        ..Hinted::default()
    };
    let rep = ev.run_prepared_passes(&mut m, &plan, |p| p.passes < 2).unwrap();
    assert_eq!(rep.results.tasks[0].metrics, once.tasks[0].metrics);
    assert!(!rep.agreement.identical);
    assert!(rep.agreement.max_logprob_diff > 0.0);
    assert!(rep.agreement.changed_predictions >= 1, "{:?}", rep.agreement);
    assert!(!rep.agreement.agrees());
    // Comparing answers of different plans is an error, not a number.
    let other = ev.prepare(&Suite { tasks: vec![bundled::hellaswag().unwrap()], groups: vec![] });
    let other = other.unwrap();
    let a = ev.answer(&mut Scripted::default(), &plan).unwrap();
    let b = ev.answer(&mut Scripted::default(), &other).unwrap();
    assert!(a.compare(&b, &plan).is_err());
    let a2 = ev.answer(&mut Scripted::default(), &plan).unwrap();
    let same = a.compare(&a2, &plan).unwrap();
    assert_eq!((same.passes, same.identical, same.agrees()), (1, true, true));
    assert!(ev.score(Scripted::default().info(), &plan, &b).is_err());
}

#[test]
fn a_warm_up_pass_runs_untimed_before_the_timed_one() {
    let suite = arc();
    let ev = Evaluator::new().progress(false);
    let plan = ev.prepare(&suite).unwrap();
    let cold = ev.run_prepared(&mut Scripted::default(), &plan).unwrap();
    assert_eq!(cold.tasks[0].timing.warmup, Seconds(0.0));
    // With the warm-up: twice the calls, the timed figures of one pass (1 s of tokenization per
    // call in `Hinted`), the same scores, and the warm-up's time reported apart.
    let mut m = Hinted { hint: Some(BatchHint::unlimited()), ..Hinted::default() };
    let warm = ev.clone().warmup(true).run_prepared(&mut m, &plan).unwrap();
    assert_eq!(m.ll_calls, vec![plan.unique_requests(); 2]);
    let t = &warm.tasks[0];
    assert_eq!(t.metrics, cold.tasks[0].metrics);
    assert_eq!((t.timing.passes, t.timing.calls), (1, 1));
    assert_eq!(t.timing.tokenize, Some(Seconds(1.0)));
    assert!(t.timing.warmup.0 > 0.0);
    assert!(warm.to_json()["eai"]["arc_easy"]["timing"]["warmup"].as_f64().is_some());
    // Repeated passes: the warm-up comes first and counts in none of them.
    let mut m = Hinted { hint: Some(BatchHint::unlimited()), ..Hinted::default() };
    let rep = ev.warmup(true).run_prepared_passes(&mut m, &plan, |p| p.passes < 3).unwrap();
    assert_eq!(m.ll_calls.len(), 4);
    assert_eq!(rep.passes, 3);
    assert_eq!(rep.results.tasks[0].timing.tokenize, Some(Seconds(3.0)));
    assert!(rep.results.tasks[0].timing.warmup.0 > 0.0);
}
