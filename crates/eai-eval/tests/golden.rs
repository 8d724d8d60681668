//! Parity with lm-evaluation-harness itself: `scripts/lmeval_golden.py` ran the harness (commit
//! 4e7e0d47) on the fixture data with a scripted stand-in model and recorded every request it
//! built and every number it reported. Here the same tasks are built from the same files, the
//! requests are compared byte for byte (SHA-256, plus full text for the first documents), and
//! the same scripted model is scored through `Evaluator`.
use std::collections::HashMap;

use eai_eval::{Benchmark, DocRequests, Evaluator, Limit, Suite, TaskOptions};
use serde_json::Value;

use crate::common::{Scripted, fixture_data, fixtures, sha};

fn golden_file(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn golden() -> Value {
    golden_file("lmeval_golden.json")
}

fn suite_in(run: &Value, root: &std::path::Path) -> Suite {
    let benchmarks: Vec<Benchmark> = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| Benchmark::from_name(t.as_str().unwrap()).unwrap())
        .collect();
    let opts = TaskOptions {
        num_fewshot: run["num_fewshot"].as_u64().map(|k| k as usize),
        limit: run["limit"].as_u64().map(|n| Limit::Count(n as usize)),
        ..TaskOptions::default()
    };
    Suite::load(root, &benchmarks, &opts).unwrap()
}

fn py_json_list(xs: &[String]) -> String {
    let parts: Vec<String> = xs.iter().map(|s| serde_json::to_string(s).unwrap()).collect();
    format!("[{}]", parts.join(", "))
}

#[test]
fn requests_match_lm_eval_byte_for_byte() {
    let checked = check_requests(&golden(), &fixture_data());
    assert!(checked > 2500, "only {checked} requests compared");
}

/// Real files and pools (ARC train 1,119/2,251, GSM8K train 7,473, MMLU dev, all of TruthfulQA).
#[test]
fn full_data_requests_and_scores_match_lm_eval() {
    let Some(root) =
        crate::common::shared_data_or_skip("full_data_requests_and_scores_match_lm_eval")
    else {
        return;
    };
    let g = golden_file("lmeval_golden_full.json");
    let checked = check_requests(&g, &root);
    assert!(checked > 10_000, "only {checked} requests compared");
    check_scores(&g, &root);
}

fn check_requests(g: &Value, root: &std::path::Path) -> usize {
    let mut checked = 0usize;
    for run in g["runs"].as_array().unwrap() {
        let name = run["name"].as_str().unwrap();
        let suite = suite_in(run, root);
        let want_tasks = run["requests"].as_object().unwrap();
        assert_eq!(suite.tasks.len(), want_tasks.len(), "{name}: task count");
        for task in &suite.tasks {
            let want = &want_tasks[task.name()];
            let mut got: Vec<(usize, usize, String, String)> = Vec::new();
            for inst in task.instances().unwrap() {
                match inst.requests {
                    DocRequests::Loglikelihood(rs) => {
                        for (i, r) in rs.into_iter().enumerate() {
                            got.push((inst.doc_index, i, r.context, r.continuation));
                        }
                    }
                    DocRequests::Generate(g) => {
                        got.push((inst.doc_index, 0, g.context, py_json_list(&g.until)));
                    }
                    other => panic!("{name}: unexpected request kind {other:?}"),
                }
            }
            let hashes: Vec<String> =
                got.iter().map(|(_, _, c, k)| sha(&format!("{c}\u{1f}{k}"))).collect();
            let want_hashes: Vec<&str> =
                want["hashes"].as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect();
            assert_eq!(hashes.len(), want_hashes.len(), "{name}/{}: request count", task.name());
            for w in want["text"].as_array().unwrap() {
                let (d, i) = (w[0].as_u64().unwrap() as usize, w[1].as_u64().unwrap() as usize);
                let g = got.iter().find(|x| x.0 == d && x.1 == i).unwrap();
                assert_eq!(g.2, w[2].as_str().unwrap(), "{name}/{}: doc {d} context", task.name());
                assert_eq!(
                    g.3,
                    w[3].as_str().unwrap(),
                    "{name}/{}: doc {d}/{i} continuation",
                    task.name()
                );
            }
            for (k, (h, w)) in hashes.iter().zip(&want_hashes).enumerate() {
                assert_eq!(
                    &h[..w.len()],
                    *w,
                    "{name}/{}: request {k} (doc {}, choice {}) differs:\n{:?}",
                    task.name(),
                    got[k].0,
                    got[k].1,
                    got[k].2
                );
            }
            checked += hashes.len();
        }
    }
    checked
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + b.abs())
}

#[test]
fn scores_match_lm_eval() {
    check_scores(&golden(), &fixture_data());
}

fn check_scores(g: &Value, root: &std::path::Path) {
    let generations: HashMap<String, String> = g["generations"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    for run in g["runs"].as_array().unwrap() {
        let name = run["name"].as_str().unwrap();
        let suite = suite_in(run, root);
        let mut model = Scripted { generations: generations.clone(), ..Scripted::default() };
        let res = Evaluator::new().progress(false).batch_size(7).run(&mut model, &suite).unwrap();
        let mut compared = 0;
        for (tname, metrics) in run["results"].as_object().unwrap() {
            let got: Vec<eai_eval::MetricValue> = match res.task(tname) {
                Some(t) => t.metrics.clone(),
                None => {
                    res.group(tname).unwrap_or_else(|| panic!("{name}: no {tname}")).metrics.clone()
                }
            };
            for (key, want) in metrics.as_object().unwrap() {
                let (metric, filter) = key.split_once(',').unwrap();
                if let Some(base) = metric.strip_suffix("_stderr") {
                    let m = got.iter().find(|m| m.metric == base && m.filter == filter).unwrap();
                    match want {
                        Value::String(s) => assert_eq!((s.as_str(), m.stderr), ("N/A", None)),
                        w => assert!(
                            close(m.stderr.unwrap(), w.as_f64().unwrap()),
                            "{name}/{tname} {key}: {:?} vs {w}",
                            m.stderr
                        ),
                    }
                } else {
                    let m = got
                        .iter()
                        .find(|m| m.metric == metric && m.filter == filter)
                        .unwrap_or_else(|| panic!("{name}/{tname}: no {key}"));
                    assert!(
                        close(m.value, want.as_f64().unwrap()),
                        "{name}/{tname} {key}: {} vs {want}",
                        m.value
                    );
                }
                compared += 1;
            }
        }
        assert!(compared > 0, "{name}");
        for (t, n) in run["n-samples"].as_object().unwrap() {
            let tr = res.task(t).unwrap();
            assert_eq!(tr.n_effective as u64, n["effective"].as_u64().unwrap(), "{name}/{t}");
            assert_eq!(tr.n_original as u64, n["original"].as_u64().unwrap(), "{name}/{t}");
        }
        for (t, v) in run["versions"].as_object().unwrap() {
            if let Some(tr) = res.task(t) {
                assert_eq!(tr.version, v.as_str().unwrap(), "{name}/{t} version");
            }
        }
        for (t, k) in run["n-shot"].as_object().unwrap() {
            if let Some(tr) = res.task(t) {
                assert_eq!(tr.num_fewshot as u64, k.as_u64().unwrap(), "{name}/{t} n-shot");
            }
        }
    }
}
