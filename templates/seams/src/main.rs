//! Each public seam of eai's library crates, used as a crate outside the workspace uses them.
//! Run: `cargo run --manifest-path templates/seams/Cargo.toml` (prints one line per seam; any
//! failed check exits non-zero).

use std::error::Error;
use std::path::Path;

use eai_core::{
    GenerateRequest, Generation, LanguageModel, Loglikelihood, LoglikelihoodRequest, ModelError,
    ModelInfo, RequestKind, RollingLoglikelihood, RollingRequest,
};
use eai_eval::{
    DocRequests, DocResponses, Evaluator, Suite, Target, TaskOptions, TaskScorer, bundled,
    score_task, tasks,
};
use eai_model::{EngineOptions, SpecialTokens, Tokenizer, rolling_windows};

type Res<T = ()> = Result<T, Box<dyn Error>>;

fn check(ok: bool, what: &str) -> Res {
    if ok { Ok(()) } else { Err(format!("check failed: {what}").into()) }
}

/// 1. Scores from log-likelihoods you computed yourself, per document, duplicates included.
fn scoring_from_responses() -> Res {
    let task = bundled::arc_easy()?;
    let instances = task.instances()?;
    // "Your engine": the gold choice scores -1, the others -2.
    let responses: Vec<DocResponses> = instances
        .iter()
        .map(|inst| {
            let doc = &task.docs()[inst.doc];
            let gold = match doc.target {
                Target::Choice(g) => g,
                _ => usize::MAX,
            };
            let lls = (0..doc.choices.len())
                .map(|i| Loglikelihood::new(if i == gold { -1.0 } else { -2.0 }, i == gold))
                .collect();
            DocResponses::Loglikelihood(lls)
        })
        .collect();
    let scored = score_task(&task, &responses)?;
    let acc = scored.result.metric("acc,none").map(|m| m.value);
    check(acc == Some(1.0), "a perfect engine scores acc 1")?;
    // Document by document, with the aggregates at the end.
    let mut scorer = TaskScorer::new(&task).keep_samples(false);
    for (inst, r) in instances.iter().zip(&responses) {
        let rec = scorer.add(inst, r)?;
        check(rec.metrics["acc,none"] == 1.0, "per-document acc")?;
    }
    check(scorer.finish()?.result.metrics == scored.result.metrics, "same aggregates")?;
    println!("scoring from responses: arc_easy acc = {}", acc.unwrap_or(f64::NAN));
    Ok(())
}

/// 2. Documents by index, and one MMLU subject without the other 56.
fn selection(dir: &Path) -> Res {
    let task = bundled::arc_easy()?.with_doc_indices(Some(vec![3, 1, 4]))?;
    let picked: Vec<usize> = task.instances()?.iter().map(|i| i.doc).collect();
    check(picked == [1, 3, 4], "document order, each once")?;
    // A data root with one subject only.
    let q = "\"What is 2 + 2?\",3,4,5,6,B\n\"What is 3 + 3?\",5,6,7,8,B\n";
    for split in ["test", "dev"] {
        std::fs::create_dir_all(dir.join("mmlu").join(split))?;
        std::fs::write(dir.join("mmlu").join(split).join(format!("anatomy_{split}.csv")), q)?;
    }
    let opts = TaskOptions { num_fewshot: Some(1), ..TaskOptions::default() };
    let suite = tasks::load_named(dir, "mmlu_anatomy", &opts)?;
    check(suite.tasks.len() == 1 && suite.tasks[0].docs().len() == 2, "one subject")?;
    println!("selection: arc_easy docs {picked:?}; mmlu_anatomy alone ({} docs)", 2);
    // 3. Which few-shot rows each prompt holds, in the instances and in the sample records.
    let inst = &suite.tasks[0].instances()?[0];
    check(inst.fewshot == [0], "first_n: dev row 0")?;
    let pool_id = &suite.tasks[0].fewshot_pool()[inst.fewshot[0]].id;
    let res = Evaluator::new().run(&mut Uniform, &suite)?;
    let rec = &res.samples["mmlu_anatomy"][0];
    check(rec.fewshot[0].id == *pool_id, "sample record names its shot")?;
    check(rec.to_json()["fewshot"][0]["id"] == pool_id.as_str(), "samples jsonl")?;
    println!("few-shot provenance: {} uses {pool_id}", rec.doc);
    Ok(())
}

/// 4. The tokenizer's switch for special-token text.
fn special_tokens(dir: &Path) -> Res {
    let path = dir.join("tokenizer.json");
    std::fs::write(
        &path,
        r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[{"id":3,
        "content":"<|im_start|>","single_word":false,"lstrip":false,"rstrip":false,
        "normalized":false,"special":true}],"normalizer":null,"pre_tokenizer":{"type":"Whitespace"},
        "post_processor":null,"decoder":null,"model":{"type":"WordLevel","vocab":{"?":0,"a":1,
        "b":2,"<|im_start|>":3},"unk_token":"?"}}"#,
    )?;
    let mut tok = Tokenizer::from_file(&path, None, &[])?;
    check(tok.encode("a <|im_start|> b")? == [1, 3, 2], "parsed by default (lm-eval's HF)")?;
    tok.set_special_tokens(SpecialTokens::AsText);
    let as_text = tok.encode("a <|im_start|> b")?;
    check(!as_text.contains(&3), "kept as text")?;
    println!("special tokens: parsed [1, 3, 2]; as text {as_text:?}");
    Ok(())
}

/// A model of your own: log-likelihoods by length, rolling ones at -1 nat per byte.
struct Uniform;

impl LanguageModel for Uniform {
    fn info(&self) -> ModelInfo {
        ModelInfo::new("uniform")
    }
    fn loglikelihood(
        &mut self,
        r: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, ModelError> {
        Ok(r.iter().map(|r| Loglikelihood::new(-(r.continuation.len() as f64), false)).collect())
    }
    fn generate_until(&mut self, r: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
        Ok(r.iter().map(|_| Generation::new("")).collect())
    }
    fn loglikelihood_rolling(
        &mut self,
        r: &[RollingRequest],
    ) -> Result<Vec<RollingLoglikelihood>, ModelError> {
        Ok(r.iter().map(|r| RollingLoglikelihood::new(-(r.text.len() as f64))).collect())
    }
    fn supports(&self, _: RequestKind) -> Option<bool> {
        Some(true)
    }
}

/// A model that does not implement rolling log-likelihoods.
struct NoRolling;

impl LanguageModel for NoRolling {
    fn info(&self) -> ModelInfo {
        ModelInfo::new("no-rolling")
    }
    fn loglikelihood(
        &mut self,
        r: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, ModelError> {
        Ok(r.iter().map(|_| Loglikelihood::new(-1.0, false)).collect())
    }
    fn generate_until(&mut self, r: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
        Ok(r.iter().map(|_| Generation::new("")).collect())
    }
}

/// 5. Rolling log-likelihoods and the perplexity task.
fn perplexity() -> Res {
    let windows = rolling_windows(&[5, 6, 7], 0, 2);
    check(windows == [(vec![0], vec![5, 6]), (vec![5, 6], vec![7])], "lm-eval's windows")?;
    let suite = Suite { tasks: vec![bundled::perplexity()?], groups: vec![] };
    let res = Evaluator::new().progress(false).run(&mut Uniform, &suite)?;
    let bpb = res.tasks[0].metric("bits_per_byte,none").map(|m| m.value).unwrap_or(f64::NAN);
    check((bpb - 1.0 / std::f64::consts::LN_2).abs() < 1e-12, "1 nat per byte")?;
    check(NoRolling.supports(RequestKind::LoglikelihoodRolling).is_none(), "unknown")?;
    let err = Evaluator::new().progress(false).run(&mut NoRolling, &suite);
    check(err.is_err(), "a model without rolling log-likelihoods is an error")?;
    // The same numbers from responses you computed yourself.
    let resp: Vec<DocResponses> = suite.tasks[0]
        .instances()?
        .iter()
        .map(|i| match &i.requests {
            DocRequests::Rolling(r) => {
                DocResponses::Rolling(RollingLoglikelihood::new(-(r.text.len() as f64)))
            }
            _ => DocResponses::Rolling(RollingLoglikelihood::new(f64::NAN)),
        })
        .collect();
    let s = score_task(&suite.tasks[0], &resp)?;
    check(s.result.metrics == res.tasks[0].metrics, "given responses, same perplexity")?;
    println!("perplexity: bits_per_byte = {bpb:.4}");
    Ok(())
}

/// 6. Engine options with setters (`Engine::set_options` applies them in place).
fn engine_options() -> Res {
    let o = EngineOptions::new().max_length(Some(2048)).batch_tokens(4096).share_prefixes(true);
    check(o.max_length == Some(2048) && o.batch_tokens == 4096, "builder")?;
    println!("engine options: {o:?}");
    Ok(())
}

fn main() -> Res {
    let dir = std::env::temp_dir().join(format!("eai-seams-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let out = scoring_from_responses()
        .and_then(|()| selection(&dir))
        .and_then(|()| special_tokens(&dir))
        .and_then(|()| perplexity())
        .and_then(|()| engine_options());
    let _ = std::fs::remove_dir_all(&dir);
    out
}
