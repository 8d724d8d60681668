//! Exact rendered prompts and continuations (whitespace included), as eval-spec.md describes.
use eai_eval::data::{arc, gsm8k, hellaswag, truthfulqa};
use eai_eval::tasks::{self, TRUTHFULQA_PRIMER};
use eai_eval::{Benchmark, DocRequests, Instance, Suite, TaskOptions, split_whitespace};

use crate::common::fixture_data;

fn ll_pairs(inst: &Instance) -> Vec<(String, String)> {
    match &inst.requests {
        DocRequests::Loglikelihood(rs) => {
            rs.iter().map(|r| (r.context.clone(), r.continuation.clone())).collect()
        }
        _ => panic!("not multiple choice"),
    }
}

#[test]
fn arc_challenge_zero_shot_item_0() {
    let test =
        arc::load_split(&fixture_data().join("arc"), arc::ArcSubset::Challenge, "Test").unwrap();
    let task = tasks::arc_task(arc::ArcSubset::Challenge, &test, &[], 0).unwrap();
    let inst = &task.instances().unwrap()[0];
    let ctx = "Question: An astronomer observes that a planet rotates faster after a meteorite impact. Which is the most likely effect of this increase in rotation?\nAnswer:";
    let pairs = ll_pairs(inst);
    let conts: Vec<&str> = pairs.iter().map(|p| p.1.as_str()).collect();
    assert!(pairs.iter().all(|p| p.0 == ctx));
    assert_eq!(
        conts,
        [
            " Planetary density will decrease.",
            " Planetary years will become longer.",
            " Planetary days will become shorter.",
            " Planetary gravity will become stronger."
        ]
    );
    assert_eq!(task.docs()[0].target, eai_eval::Target::Choice(2));
}

#[test]
fn arc_25_shot_format() {
    let suite = Suite::load(
        &fixture_data(),
        &[Benchmark::ArcChallenge],
        &TaskOptions { num_fewshot: Some(25), ..TaskOptions::default() },
    )
    .unwrap();
    let inst = &suite.tasks[0].instances().unwrap()[0];
    // 25 shots "Question: …\nAnswer: <gold text>\n\n", then the question.
    assert_eq!(inst.context.matches("\nAnswer: ").count(), 25);
    assert_eq!(inst.context.matches("Question: ").count(), 26);
    assert!(inst.context.ends_with("in rotation?\nAnswer:"));
    let train =
        arc::load_split(&fixture_data().join("arc"), arc::ArcSubset::Challenge, "Train").unwrap();
    // CPython: random.Random(1234).sample(range(60), 25)[0] == 49 (checked in the golden test).
    let first = &train[49];
    let shot =
        format!("Question: {}\nAnswer: {}\n\n", first.question, first.choice_texts[first.gold]);
    assert!(inst.context.starts_with(&shot), "{}", &inst.context[..200]);
}

#[test]
fn hellaswag_process_docs() {
    let val = hellaswag::load_jsonl(&fixture_data().join("hellaswag/hellaswag_val.jsonl")).unwrap();
    let task = tasks::hellaswag_task(&val, &[], 0).unwrap();
    let insts = task.instances().unwrap();
    let p = ll_pairs(&insts[0]);
    assert_eq!(p[0].0, "Roof shingle removal: A man is sitting on a roof. He");
    let conts: Vec<&str> = p.iter().map(|x| x.1.as_str()).collect();
    assert_eq!(
        conts,
        [
            " is using wrap to wrap a pair of skis.",
            " is ripping level tiles off.",
            " is holding a rubik's cube.",
            " starts pulling up roofing on a roof."
        ]
    );
    let lens: Vec<usize> = task.docs()[0].choices.iter().map(|c| c.chars().count()).collect();
    assert_eq!(lens, [37, 27, 26, 36]);
    // Synthetic WikiHow item: " [title]" -> ". " before tag removal (double period), tags gone,
    // empty ctx_b leaves a space that strip() removes.
    let d = &task.docs()[10];
    assert_eq!(
        d.text,
        "Food and Entertaining: How to bake bread. Preheat the oven. Heat it to 350 degrees."
    );
    // No space before the leading tag: it is deleted, leaving the space that followed it.
    assert_eq!(d.choices[0], " Mix the flour. Use a bowl.");
    assert_eq!(task.docs()[12].choices[1], "He never stops. Really.");
    assert_eq!(d.choices[1], "Wait  for it  to cool ok");
    // capitalize() lower-cases the rest.
    assert_eq!(task.docs()[11].text, "Walking: A crowd gathers in the square. The man in red");
    // A trailing tag leaves a trailing space, which moves into the continuation.
    let d = &task.docs()[12];
    assert!(d.text.ends_with("He keeps going "), "{:?}", d.text);
    let (ctx, cont) = split_whitespace(&d.text, &format!(" {}", d.choices[0]));
    assert!(ctx.ends_with("He keeps going"));
    assert_eq!(cont, "  He stops.");
}

#[test]
fn truthfulqa_prompt() {
    let items = truthfulqa::load(&fixture_data().join("truthfulqa/mc_task.json")).unwrap();
    let task = tasks::truthfulqa_mc1_task(&items).unwrap();
    let p = ll_pairs(&task.instances().unwrap()[0]);
    let want = format!(
        "{TRUTHFULQA_PRIMER}\n\nQ: What is the smallest country in the world that is at least one square mile in area?\nA:"
    );
    assert_eq!(p[0].0, want);
    assert!(
        TRUTHFULQA_PRIMER
            .starts_with("Q: What is human life expectancy in the United States?\nA: Human")
    );
    assert!(TRUTHFULQA_PRIMER.ends_with("A: The 1992 Olympics were held in Barcelona, Spain."));
    assert_eq!(TRUTHFULQA_PRIMER.matches("\n\nQ: ").count(), 5);
    assert_eq!(
        p[0].1,
        " Nauru is the smallest country in the world that is at least one square mile in area."
    );
    // The YAML pins 0 shots; --num_fewshot cannot change it.
    let opts = TaskOptions { num_fewshot: Some(5), ..TaskOptions::default() };
    assert_eq!(opts.shots_for(Benchmark::TruthfulqaMc2), 0);
}

#[test]
fn mmlu_five_shot_abstract_algebra() {
    let suite = Suite::load(
        &fixture_data(),
        &[Benchmark::Mmlu],
        &TaskOptions { num_fewshot: Some(5), ..TaskOptions::default() },
    )
    .unwrap();
    assert_eq!(suite.tasks.len(), 57);
    let t = &suite.tasks[0];
    assert_eq!(t.name(), "mmlu_abstract_algebra");
    let p = ll_pairs(&t.instances().unwrap()[0]);
    let ctx = &p[0].0;
    assert!(ctx.starts_with(
        "The following are multiple choice questions (with answers) about abstract algebra.\n\n\
         Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer: B\n\n"
    ));
    assert!(ctx.ends_with(
        "\n\nFind the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\nA. 0\nB. 4\nC. 2\nD. 6\nAnswer:"
    ));
    assert_eq!(ctx.matches("\nAnswer: ").count(), 5);
    let conts: Vec<&str> = p.iter().map(|x| x.1.as_str()).collect();
    assert_eq!(conts, [" A", " B", " C", " D"]);
    // college_mathematics: the dev exemplar's embedded \r reaches the prompt.
    let cm = suite.tasks.iter().find(|t| t.name() == "mmlu_college_mathematics").unwrap();
    assert!(cm.contexts().unwrap()[0].contains("must be true?\r\nI. All of the entries"));
    // college_medicine: only the question is stripped.
    let med = suite.tasks.iter().find(|t| t.name() == "mmlu_college_medicine").unwrap();
    let c = &med.contexts().unwrap()[0];
    assert!(c.contains("behavior?\nA. "), "{c}");
    // 0-shot: description directly followed by the question.
    let zero = tasks::mmlu_task("abstract_algebra", &[], &[], 0).unwrap();
    assert!(zero.config().description.ends_with("abstract algebra.\n\n"));
}

#[test]
fn gsm8k_prompts() {
    let test = gsm8k::load(&fixture_data().join("gsm8k/test.jsonl")).unwrap();
    let train = gsm8k::load(&fixture_data().join("gsm8k/train.jsonl")).unwrap();
    let t = tasks::gsm8k_task(&test, &train, 5).unwrap();
    let inst = &t.instances().unwrap()[0];
    let DocRequests::Generate(g) = &inst.requests else { panic!() };
    assert_eq!(g.until, ["Question:", "</s>", "<|im_end|>"]);
    assert_eq!(g.max_gen_toks, 256);
    assert!(g.context.ends_with(&format!("\n\nQuestion: {}\nAnswer:", test[0].question)));
    assert_eq!(g.context.matches("\nAnswer: ").count(), 5);
    assert!(g.context.contains("<<"), "calculator annotations are kept in the shots");
    assert!(g.context.matches("\n#### ").count() == 5);

    let cot = tasks::gsm8k_cot_task(&test, 8).unwrap();
    let c = &cot.contexts().unwrap()[0];
    assert!(c.starts_with("Q: There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?\nA: There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The answer is 6.\n\nQ: If there are 3 cars"));
    assert!(c.ends_with(&format!("The answer is 8.\n\nQ: {}\nA:", test[0].question)));
    assert_eq!(cot.docs()[0].target, eai_eval::Target::Text("18".into()));

    let llama = tasks::gsm8k_cot_llama_task(&test, 8).unwrap();
    let c = &llama.contexts().unwrap()[0];
    assert!(c.starts_with("Given the following problem, reason and give a final answer to the problem.\nProblem: There are 15 trees"));
    assert!(
        c.contains(" is the response to the problem.\nThere are 15 trees originally."),
        "target delimiter is empty"
    );
    assert!(c.contains("The final answer is 6\n\nGiven the following problem"));
    assert!(c.ends_with("[answer] is the response to the problem.\n"));
    assert!(tasks::gsm8k_cot_task(&test, 9).is_err(), "only 8 exemplars exist");
}

#[test]
fn limit_keeps_the_same_prompts_for_the_prefix() {
    let full = Suite::load(
        &fixture_data(),
        &[Benchmark::Gsm8k],
        &TaskOptions { num_fewshot: Some(5), ..TaskOptions::default() },
    )
    .unwrap();
    let lim = Suite::load(
        &fixture_data(),
        &[Benchmark::Gsm8k],
        &TaskOptions {
            num_fewshot: Some(5),
            limit: Some(eai_eval::Limit::Count(7)),
            ..TaskOptions::default()
        },
    )
    .unwrap();
    let a = full.tasks[0].contexts().unwrap();
    let b = lim.tasks[0].contexts().unwrap();
    assert_eq!(b.len(), 7);
    assert_eq!(&a[..7], &b[..]);
    let other_seed = full.tasks[0].clone().with_fewshot_seed(42).contexts().unwrap();
    assert_ne!(a[0], other_seed[0]);
}

#[test]
fn task_specs_by_name() {
    let s = Suite::load_spec(
        &fixture_data(),
        "arc_easy:3, truthfulqa_mc1:5,gsm8k_cot",
        &TaskOptions::default(),
    )
    .unwrap();
    let shots: Vec<(&str, usize)> =
        s.tasks.iter().map(|t| (t.name(), t.config().num_fewshot)).collect();
    assert_eq!(shots, [("arc_easy", 3), ("truthfulqa_mc1", 0), ("gsm8k_cot", 8)]);
    assert!(Suite::parse_spec("arc_easy:x").is_err());
    assert!(Suite::parse_spec("winogrande").is_err());
    assert_eq!(Benchmark::Hellaswag.headline_metric(), "acc_norm,none");
}

/// Open LLM Leaderboard v1 harness (b281b09): `rnd = random.Random(); rnd.seed(42);
/// rnd.shuffle(task_docs)`, then `rnd.sample(train, k)` per document from the same generator.
/// Expected values from CPython: shuffle(range(34)) starts [5, 19, 20, 12, 24]; the next two
/// `sample(range(60), 25)` start [21, 17, 9] and [45, 4, 2].
#[test]
fn leaderboard_v1_shuffle_and_shared_generator() {
    let opts = TaskOptions { setting: eai_eval::Setting::LeaderboardV1, ..TaskOptions::default() };
    let s =
        Suite::load(&fixture_data(), &[Benchmark::ArcChallenge, Benchmark::TruthfulqaMc2], &opts)
            .unwrap();
    let arc_task = &s.tasks[0];
    assert_eq!(arc_task.config().num_fewshot, 25);
    assert_eq!(arc_task.config().legacy_shuffle_seed, Some(42));
    let insts = arc_task.instances().unwrap();
    let order: Vec<usize> = insts.iter().map(|i| i.doc).collect();
    assert_eq!(&order[..5], [5, 19, 20, 12, 24]);
    let train =
        arc::load_split(&fixture_data().join("arc"), arc::ArcSubset::Challenge, "Train").unwrap();
    let shot = |i: usize| {
        format!(
            "Question: {}\nAnswer: {}\n\n",
            train[i].question, train[i].choice_texts[train[i].gold]
        )
    };
    let first = &insts[0].context;
    assert!(first.starts_with(&format!("{}{}{}", shot(21), shot(17), shot(9))));
    assert!(
        first.ends_with(&format!(
            "{}\nAnswer:",
            arc_task.docs()[5].text.trim_end_matches("\nAnswer:")
        ))
    );
    assert!(insts[1].context.starts_with(&format!("{}{}{}", shot(45), shot(4), shot(2))));
    assert_eq!(s.tasks[1].config().version, "2.0", "old MC2 definition");
    // A fractional limit keeps floor(len * f) documents, after the shuffle.
    let half = arc_task.clone().with_limit(Some(eai_eval::Limit::Fraction(0.5)));
    let insts = half.instances().unwrap();
    assert_eq!(insts.len(), 17);
    assert_eq!(insts[16].doc, 6);
}
