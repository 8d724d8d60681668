/// The report.
pub const REPORT_MD: &str = "report.md";
/// The analysis as JSON ([`crate::StudyReport`]).
pub const REPORT_JSON: &str = "report.json";
/// Everything recorded except the trace and samples ([`crate::StudyResults`]).
pub const RESULTS_JSON: &str = "results.json";
/// One run per (scheme, repetition), as [`eai_metrics::Run`] JSON.
pub const RUNS_JSON: &str = "runs.json";
/// The same runs, flat.
pub const RUNS_CSV: &str = "runs.csv";
/// One row per task window.
pub const TASKS_CSV: &str = "tasks.csv";
/// Every energy window.
pub const WINDOWS_JSON: &str = "windows.json";
/// The power timeline, every sample (`source,signal,t_s,value`).
pub const TRACE_CSV: &str = "trace.csv";
/// The power timeline with sources, events and status (replayable).
pub const TRACE_JSON: &str = "trace.json";
/// Table 2 as CSV.
pub const TABLE2_CSV: &str = "table2.csv";
/// Table 2 as JSON.
pub const TABLE2_JSON: &str = "table2.json";
/// Per-sample records, `samples/<scheme>/rep<k>/samples_<task>.jsonl`.
pub const SAMPLES_DIR: &str = "samples";
/// The study's journal: one line per finished run, for `--resume` (`Study::journal`).
pub const JOURNAL_JSONL: &str = "journal.jsonl";
/// The `eai study` arguments, for `eai study --resume`.
pub const STUDY_ARGS_JSON: &str = "study-args.json";
/// Power over time with task windows.
pub const POWER_SVG: &str = "plots/power.svg";
/// Score against energy with the Pareto front.
pub const PARETO_SVG: &str = "plots/score_energy.svg";
/// Scheme × task heatmap of EOR (or of scores without energy).
pub const HEATMAP_SVG: &str = "plots/eor_heatmap.svg";
