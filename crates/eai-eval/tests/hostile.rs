//! Hostile inputs (issue 15): empty data files, a limit that keeps nothing, a model returning
//! non-finite log-likelihoods. Each must be an error naming what is at fault, never an empty
//! table or a score computed from NaN.
use std::collections::HashMap;
use std::path::Path;

use eai_eval::data::{arc, gsm8k, hellaswag, mmlu, truthfulqa};
use eai_eval::tasks::{self, Benchmark, Suite, TaskOptions};
use eai_eval::{Error, Evaluator, Limit};

use crate::common::{Table, fixture_data};

fn assert_no_records(r: Result<usize, Error>, file: &Path) {
    match r {
        Err(Error::NoRecords { path }) => assert_eq!(path, file),
        other => panic!("{}: expected NoRecords, got {other:?}", file.display()),
    }
}

#[test]
fn empty_data_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("empty", ""), ("blank", "\n\n  \n")] {
        let f = dir.path().join(format!("{name}.jsonl"));
        std::fs::write(&f, text).unwrap();
        assert_no_records(arc::load(&f).map(|v| v.len()), &f);
        assert_no_records(gsm8k::load(&f).map(|v| v.len()), &f);
        assert_no_records(hellaswag::load_jsonl(&f).map(|v| v.len()), &f);
        assert_no_records(hellaswag::load_text(&f).map(|v| v.len()), &f);
        // A CSV line of blanks is a record of one field: malformed, naming the file.
        match mmlu::load(&f, "anatomy") {
            Err(Error::NoRecords { path }) | Err(Error::Malformed { path, .. }) => {
                assert_eq!(path, f)
            }
            other => panic!("{other:?}"),
        }
        let e = truthfulqa::load(&f).map(|v| v.len());
        // `[]` and an empty file alike: no item.
        assert!(matches!(e, Err(Error::NoRecords { .. }) | Err(Error::Malformed { .. })), "{e:?}");
    }
    let f = dir.path().join("mc_task.json");
    std::fs::write(&f, "[]").unwrap();
    assert_no_records(truthfulqa::load(&f).map(|v| v.len()), &f);
    // The message names the file.
    let e = arc::load(&f.with_file_name("empty.jsonl")).unwrap_err();
    assert!(e.to_string().contains("empty.jsonl"), "{e}");
}

#[test]
fn an_empty_benchmark_file_fails_the_task_load() {
    // A data root whose ARC-Easy test file is empty: the task does not load (it would print an
    // empty table with exit 0).
    let root = tempfile::tempdir().unwrap();
    let arc_dir = root.path().join("arc").join("ARC-Easy");
    std::fs::create_dir_all(&arc_dir).unwrap();
    let test = arc_dir.join("ARC-Easy-Test.jsonl");
    std::fs::write(&test, "").unwrap();
    let e = tasks::load(root.path(), Benchmark::ArcEasy, &TaskOptions::default()).unwrap_err();
    assert!(matches!(&e, Error::NoRecords { path } if *path == test), "{e:?}");
}

#[test]
fn an_empty_mmlu_subject_fails_the_suite_instead_of_leaving_the_aggregate() {
    let root = tempfile::tempdir().unwrap();
    let src = fixture_data().join("mmlu");
    for split in ["dev", "test"] {
        let to = root.path().join("mmlu").join(split);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(src.join(split)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    let empty = root.path().join("mmlu").join("test").join("anatomy_test.csv");
    std::fs::write(&empty, "").unwrap();
    let e = tasks::load(root.path(), Benchmark::Mmlu, &TaskOptions::default()).unwrap_err();
    assert!(matches!(&e, Error::NoRecords { path } if *path == empty), "{e:?}");
}

#[test]
fn a_limit_of_zero_documents_is_an_error() {
    let task = eai_eval::bundled::arc_easy().unwrap().with_limit(Some(Limit::Count(0)));
    let e = Evaluator::new()
        .progress(false)
        .run(&mut Table(HashMap::new()), &Suite { tasks: vec![task], groups: vec![] })
        .unwrap_err();
    match &e {
        Error::NoDocuments { task, reason } => {
            assert_eq!(task, "arc_easy");
            assert!(reason.contains("Count(0)") && reason.contains("40"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // A fraction that keeps nothing is the same error; a limit that keeps one is fine.
    let one = eai_eval::bundled::arc_easy().unwrap().with_limit(Some(Limit::Count(1)));
    assert_eq!(one.instances().unwrap().len(), 1);
}

#[test]
fn a_non_finite_loglikelihood_is_an_error_naming_task_document_and_request() {
    let task = eai_eval::bundled::arc_easy().unwrap().with_limit(Some(Limit::Count(3)));
    let inst = task.instances().unwrap();
    let eai_eval::DocRequests::Loglikelihood(reqs) = &inst[1].requests else { panic!() };
    let bad = reqs[2].continuation.clone();
    let doc_id = task.docs()[inst[1].doc].id.clone();
    for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let model = Table(HashMap::from([(bad.clone(), value)]));
        let e = Evaluator::new()
            .progress(false)
            .run(&mut { model }, &Suite { tasks: vec![task.clone()], groups: vec![] })
            .unwrap_err();
        match &e {
            Error::NonFiniteLoglikelihood { task, doc, continuation, value: v, .. } => {
                assert_eq!(task, "arc_easy");
                assert_eq!(doc, &doc_id);
                assert_eq!(continuation, &bad);
                assert!(!v.is_finite());
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains(&doc_id), "{e}");
    }
}
