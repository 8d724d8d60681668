//! "Where the time went": the report's table of each task's time per pass, split into
//! tokenize / engine / scoring / bookkeeping, with the engine's busy share and the passes of the
//! minimum window.

use std::fmt::Write as _;

use crate::study::{StudyResults, TaskRecord};

/// Mean over the repetitions of one (scheme, task).
#[derive(Debug, Default)]
struct Row {
    n: usize,
    tokenize: f64,
    engine: f64,
    scoring: f64,
    bookkeeping: f64,
    passes: u32,
    window: f64,
    disagree: usize,
}

/// The Markdown section, or an empty string when no task was timed.
pub(crate) fn time_markdown(r: &StudyResults) -> String {
    let mut rows: Vec<(String, String, Row)> = Vec::new();
    for t in &r.tasks {
        let Some(b) = t.time else { continue };
        let key = (t.scheme.display_name().to_string(), t.task.clone());
        let i = match rows.iter().position(|(s, k, _)| (s, k) == (&key.0, &key.1)) {
            Some(i) => i,
            None => {
                rows.push((key.0, key.1, Row::default()));
                rows.len() - 1
            }
        };
        let row = &mut rows[i].2;
        row.n += 1;
        row.tokenize += b.tokenize.0;
        row.engine += b.engine.0;
        row.scoring += b.scoring.0;
        row.bookkeeping += b.bookkeeping.0;
        row.passes = row.passes.max(t.passes);
        row.window += t.window_wall.0;
        row.disagree += usize::from(!t.passes_agree);
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "## Where the time went\n\nSeconds per pass of each task's requests, mean over the \
         repetitions: tokenizing (inside the engine's calls, as the engine reports it; near zero \
         once its token cache holds the requests), the engine's other work inside its calls, \
         scoring, and the rest of the window (request handling, bookkeeping). Engine busy is \
         the engine's share of the pass (its calls, tokenization excluded). A window shorter than the minimum window runs the requests again \
         (passes); energy and time are per pass, the score is the first pass's.\n\n",
    );
    let prepared: Vec<String> = r
        .settings
        .tasks
        .iter()
        .filter(|t| t.prepare.0 > 0.0)
        .map(|t| format!("{} {:.2} s", t.name, t.prepare.0))
        .collect();
    let tokenized: Vec<String> = r
        .settings
        .tasks
        .iter()
        .filter_map(|t| t.tokenize.map(|x| format!("{} {:.2} s", t.name, x.0)))
        .collect();
    if !tokenized.is_empty() {
        let _ = writeln!(
            s,
            "Requests were tokenized once per task, before any window, into the token cache \
             every scheme's engine shares (the Tokenize column is then the cache look-ups): {}.\n",
            tokenized.join(", ")
        );
    }
    if !prepared.is_empty() {
        let _ = writeln!(
            s,
            "Requests were built once per task, before any window, and reused by every scheme, \
             repetition and pass: {}. Batching: {}.\n",
            prepared.join(", "),
            r.settings.batch_size.map_or_else(
                || "the engine's choice".to_string(),
                |n| format!("at most {n} requests per call (override)")
            )
        );
    }
    s.push_str(
        "| Scheme | Task | Tokenize (s) | Engine (s) | Scoring (s) | Bookkeeping (s) | Engine busy | Passes | Window (s) |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (scheme, task, row) in &rows {
        let n = row.n as f64;
        let total = row.tokenize + row.engine + row.scoring + row.bookkeeping;
        let busy =
            if total > 0.0 { format!("{:.0} %", 100.0 * row.engine / total) } else { "–".into() };
        let _ = writeln!(
            s,
            "| {scheme} | {task} | {:.3} | {:.3} | {:.3} | {:.3} | {busy} | {}{} | {:.1} |",
            row.tokenize / n,
            row.engine / n,
            row.scoring / n,
            row.bookkeeping / n,
            row.passes,
            if row.disagree > 0 { " (disagree)" } else { "" },
            row.window / n,
        );
    }
    s.push('\n');
    s
}

/// Quality notes about passes: windows whose passes scored differently.
pub(crate) fn pass_flags(tasks: &[TaskRecord]) -> Vec<String> {
    tasks
        .iter()
        .filter(|t| !t.passes_agree)
        .map(|t| {
            format!(
                "{}/rep{}/{}: the {} passes of the window did not all score the same (the \
                 first pass's score is reported)",
                t.scheme.label(),
                t.repetition,
                t.task,
                t.passes
            )
        })
        .collect()
}
