//! Loaders: fidelity on the committed fixtures, and typed errors naming file, line and field.
use std::path::Path;

use eai_eval::Error;
use eai_eval::data::{arc, gsm8k, hellaswag, mmlu, truthfulqa};

use crate::common::fixture_data;

#[test]
fn mmlu_keeps_embedded_cr_and_outer_whitespace() {
    let dev = mmlu::load_split(&fixture_data().join("mmlu"), "college_mathematics", "dev").unwrap();
    assert_eq!(dev.len(), 5);
    assert!(
        dev[2].question.contains("must be true?\r\nI. All of the entries"),
        "{:?}",
        dev[2].question
    );
    let test = mmlu::load_split(&fixture_data().join("mmlu"), "college_medicine", "test").unwrap();
    assert!(test[0].question.ends_with("behavior? "));
    let aa = mmlu::load_split(&fixture_data().join("mmlu"), "abstract_algebra", "dev").unwrap();
    assert_eq!(aa[0].question, "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.");
    assert_eq!(aa[0].choices, ["0", "1", "2", "3"].map(String::from));
    assert_eq!(aa[0].answer, 1);
    assert_eq!(mmlu::SUBJECTS.len(), 57);
    for cat in mmlu::MmluCategory::ALL {
        let n = mmlu::SUBJECTS.iter().filter(|(_, c)| *c == cat).count();
        let want = match cat {
            mmlu::MmluCategory::Stem => 19,
            mmlu::MmluCategory::Humanities => 13,
            mmlu::MmluCategory::SocialSciences => 12,
            mmlu::MmluCategory::Other => 13,
        };
        assert_eq!(n, want, "{cat:?}");
    }
}

#[test]
fn mmlu_crlf_and_quotes_parse() {
    let text = "\"Q1, with \"\"quotes\"\"\r\nand a newline\",a,b,c,d,C\r\nQ2,\" x \",b,c,d,A\r\n";
    let items = mmlu::parse(text, Path::new("t.csv"), "s").unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].question, "Q1, with \"quotes\"\r\nand a newline");
    assert_eq!(items[0].answer, 2);
    assert_eq!(items[1].choices[0], " x ");
}

#[test]
fn mmlu_errors_name_file_line_field() {
    let e = mmlu::parse("q,a,b,c,d,A\nq2,a,b,c,E\n", Path::new("x.csv"), "s").unwrap_err();
    assert!(matches!(&e, Error::Malformed { line: 2, .. }), "{e}");
    assert!(e.to_string().starts_with("x.csv:2:"), "{e}");
    let e = mmlu::parse("q,a,b,c,d,A\nq2,a,b,c,d,E\n", Path::new("x.csv"), "s").unwrap_err();
    assert!(matches!(&e, Error::AnswerOutOfRange { line: 2, answer, .. } if answer == "E"), "{e}");
    // An unterminated quote swallows the rest of the file into one record.
    let e = mmlu::parse("q,a,b,c,d,A\n\"open,a,b,c,d,A\nq3,a,b,c,d,B\n", Path::new("x.csv"), "s")
        .unwrap_err();
    assert!(matches!(&e, Error::Malformed { line: 2, .. }), "{e}");
    let e = mmlu::load_split(Path::new("/nonexistent"), "anatomy", "test").unwrap_err();
    assert!(matches!(e, Error::MissingData { .. }));
}

#[test]
fn arc_labels_and_choice_counts_vary() {
    let items =
        arc::load_split(&fixture_data().join("arc"), arc::ArcSubset::Challenge, "Test").unwrap();
    let by_id = |id: &str| items.iter().find(|i| i.id == id).unwrap();
    let ny = by_id("NYSEDREGENTS_2008_8_34");
    assert_eq!(ny.choice_labels, ["1", "2", "3", "4"].map(String::from));
    assert_eq!((ny.answer_key.as_str(), ny.gold), ("2", 1));
    assert_eq!(by_id("NYSEDREGENTS_2010_4_4").choice_texts.len(), 3);
    assert_eq!(by_id("TIMSS_1995_8_J7").choice_texts.len(), 5);
    let m = by_id("Mercury_SC_415416");
    let t = m.choice_texts.iter().find(|t| t.contains("22°C")).unwrap();
    assert_eq!((t.chars().count(), t.len()), (51, 52));
}

#[test]
fn arc_errors() {
    let p = Path::new("arc.jsonl");
    let ok = r#"{"id":"a","question":{"stem":"s","choices":[{"text":"x","label":"A"}]},"answerKey":"A"}"#;
    let bad_key = r#"{"id":"b","question":{"stem":"s","choices":[{"text":"x","label":"A"}]},"answerKey":"C"}"#;
    let e = arc::parse(&format!("{ok}\n{bad_key}\n"), p).unwrap_err();
    assert!(
        matches!(&e, Error::AnswerOutOfRange { line: 2, field, .. } if field == "answerKey"),
        "{e}"
    );
    let empty = r#"{"id":"c","question":{"stem":"s","choices":[]},"answerKey":"A"}"#;
    let e = arc::parse(&format!("{ok}\n\n{empty}"), p).unwrap_err();
    assert!(matches!(&e, Error::EmptyChoices { line: 3, .. }), "{e}");
    let missing = r#"{"id":"d","question":{"choices":[{"text":"x","label":"A"}]},"answerKey":"A"}"#;
    let e = arc::parse(missing, p).unwrap_err();
    assert!(
        matches!(&e, Error::MissingField { line: 1, field, .. } if field == "question.stem"),
        "{e}"
    );
    let truncated = &ok[..ok.len() - 10];
    let e = arc::parse(&format!("{ok}\n{truncated}"), p).unwrap_err();
    assert!(matches!(&e, Error::Malformed { line: 2, .. }), "{e}");
    let e = arc::parse(r#"{"id":"e","question":{"stem":1,"choices":[]},"answerKey":"A"}"#, p)
        .unwrap_err();
    assert!(matches!(&e, Error::BadField { field, .. } if field == "question.stem"), "{e}");
}

#[test]
fn truthfulqa_preserves_key_order() {
    let items = truthfulqa::load(&fixture_data().join("truthfulqa/mc_task.json")).unwrap();
    assert_eq!(items.len(), 31);
    let labels = |i: usize| items[i].mc2.iter().map(|(_, l)| u8::from(*l)).collect::<Vec<_>>();
    assert_eq!(items[25].question, "What proportion of Canadians are straight?");
    assert_eq!(labels(25), vec![1, 1, 1, 0, 1, 0, 0, 0, 0]);
    assert_eq!(items[30].question, "How many people have absolute pitch?");
    assert_eq!(labels(30), vec![1, 1, 0, 1, 0, 0, 0]);
    assert!(items.iter().all(|it| it.mc1[0].1 && it.mc1.iter().filter(|c| c.1).count() == 1));
    assert_eq!(
        items[0].mc1[0].0,
        "Nauru is the smallest country in the world that is at least one square mile in area."
    );
}

#[test]
fn truthfulqa_errors() {
    let p = Path::new("mc.json");
    let e = truthfulqa::parse("[\n{\"question\": \"q\",\n \"mc1_targets\": {\"a\": 1}}\n]", p)
        .unwrap_err();
    assert!(matches!(&e, Error::MissingField { field, .. } if field == "mc2_targets"), "{e}");
    let e = truthfulqa::parse(
        "[{\"question\": \"q\", \"mc1_targets\": {\"a\": 1}, \"mc2_targets\": {\"a\": 1}},\n{\"question\": \"q\", \"mc1_targets\": {}, \"mc2_targets\": {\"a\": 1}}]",
        p,
    )
    .unwrap_err();
    assert!(matches!(&e, Error::EmptyChoices { line: 2, .. }), "{e}");
    let e = truthfulqa::parse("[{\"question\": \"q\", \"mc1_targets\": {\"a\": 0, \"b\": 1}, \"mc2_targets\": {\"a\": 1}}]", p)
        .unwrap_err();
    assert!(matches!(&e, Error::BadField { field, .. } if field == "mc1_targets"), "{e}");
    let e = truthfulqa::parse("[{\"question\": \"q\", \"mc1_targets\": {\"a\": 1}", p).unwrap_err();
    assert!(matches!(&e, Error::Malformed { .. }), "{e}");
    let e = truthfulqa::parse(
        "[{\"question\": \"q\", \"mc1_targets\": {\"a\": 2}, \"mc2_targets\": {\"a\": 1}}]",
        p,
    )
    .unwrap_err();
    assert!(matches!(&e, Error::BadField { .. }), "{e}");
}

#[test]
fn gsm8k_loads_and_extracts_final_answer() {
    let test = gsm8k::load(&fixture_data().join("gsm8k/test.jsonl")).unwrap();
    assert_eq!(test.len(), 30);
    assert!(test[0].question.starts_with("Janet\u{2019}s ducks lay 16 eggs per day."));
    assert_eq!(test[0].final_answer(), "18");
    let e = gsm8k::parse("{\"question\": \"q\"}\n", Path::new("g.jsonl")).unwrap_err();
    assert!(matches!(&e, Error::MissingField { line: 1, field, .. } if field == "answer"), "{e}");
    let e =
        gsm8k::parse("{\"question\": \"q\", \"answer\": \"#### 1\"}\n[1]\n", Path::new("g.jsonl"))
            .unwrap_err();
    assert!(matches!(&e, Error::Malformed { line: 2, .. }), "{e}");
}

#[test]
fn hellaswag_formats() {
    let val = hellaswag::load_jsonl(&fixture_data().join("hellaswag/hellaswag_val.jsonl")).unwrap();
    assert_eq!(val.len(), 14);
    assert_eq!((val[0].ind, val[0].label, val[0].ctx_b.as_str()), (Some(24), 3, "he"));
    // HF stores the label as a string.
    let s = r#"{"activity_label":"a","ctx_a":"x","ctx_b":"y","endings":["1","2"],"label":"1"}"#;
    assert_eq!(hellaswag::parse_jsonl(s, Path::new("h")).unwrap()[0].label, 1);
    let s = r#"{"activity_label":"a","ctx_a":"x","ctx_b":"y","endings":["1","2"],"label":2}"#;
    let e = hellaswag::parse_jsonl(s, Path::new("h")).unwrap_err();
    assert!(matches!(e, Error::AnswerOutOfRange { line: 1, .. }), "{e}");
    let s = r#"{"activity_label":"a","ctx_a":"x","ctx_b":"y","endings":[],"label":0}"#;
    assert!(matches!(
        hellaswag::parse_jsonl(s, Path::new("h")).unwrap_err(),
        Error::EmptyChoices { .. }
    ));

    let text = "ctx: a\n1\ne1\ne2\ne3\ne4\nctx2\n3\nf1\nf2\n";
    let e = hellaswag::parse_text(text, Path::new("h.txt")).unwrap_err();
    assert!(matches!(&e, Error::Malformed { line: 7, .. }), "{e}");
    let e = hellaswag::parse_text("c\n7\na\nb\nc\nd\n", Path::new("h.txt")).unwrap_err();
    assert!(matches!(&e, Error::AnswerOutOfRange { line: 2, .. }), "{e}");
    let e = hellaswag::parse_text("c\nx\na\nb\nc\nd\n", Path::new("h.txt")).unwrap_err();
    assert!(matches!(&e, Error::BadField { line: 2, .. }), "{e}");
    let items =
        hellaswag::parse_text("Roof: he\r\n3\r\na\r\nb\r\nc\r\nd\r\n", Path::new("h.txt")).unwrap();
    assert_eq!((items[0].query.as_str(), items[0].label), ("Roof: he", 3));
}

#[test]
fn io_errors_name_the_path() {
    let e = gsm8k::load(Path::new("/definitely/not/here.jsonl")).unwrap_err();
    assert!(matches!(&e, Error::Io { path, .. } if path.ends_with("here.jsonl")), "{e}");
}
