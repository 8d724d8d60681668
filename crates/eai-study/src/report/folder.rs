//! The study folder: [`StudyResults::write`] (the analysis, the records as JSON and CSV, the
//! trace, per-sample records, the plots and `report.md`) and [`StudyResults::load`].

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{StudyReport, files};
use crate::error::{Error, Result};
use crate::study::{StudyResults, TaskRecord};

#[derive(Serialize)]
struct RunRow<'a> {
    model: &'a str,
    scheme: &'a str,
    hardware: &'a str,
    repetition: Option<u32>,
    score: Option<f64>,
    energy_j: Option<f64>,
    energy_wh: Option<f64>,
    wall_s: Option<f64>,
    eor: Option<f64>,
    tweor: Option<f64>,
    requests: Option<u64>,
    output_tokens: Option<u64>,
    scores: String,
}

#[derive(Serialize)]
struct TaskRow<'a> {
    scheme: &'a str,
    repetition: u32,
    task: &'a str,
    metric: &'a str,
    score: f64,
    stderr: Option<f64>,
    docs: usize,
    start_s: f64,
    wall_s: f64,
    energy_j: Option<f64>,
    eor: Option<f64>,
    requests: u64,
    tokens: Option<u64>,
    j_per_request: Option<f64>,
    j_per_token: Option<f64>,
    loglikelihood_j: Option<f64>,
    generation_j: Option<f64>,
    window: Option<u64>,
    passes: u32,
    window_s: f64,
    passes_agree: bool,
    tokenize_s: Option<f64>,
    engine_s: Option<f64>,
    scoring_s: Option<f64>,
    bookkeeping_s: Option<f64>,
    engine_busy: Option<f64>,
}

fn write_file(path: &Path, bytes: impl AsRef<[u8]>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

fn json<T: Serialize + ?Sized>(v: &T, what: &Path) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| Error::format(what.display().to_string(), e))
}

fn csv_bytes<T: Serialize>(rows: impl IntoIterator<Item = T>, what: &Path) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(|e| Error::format(what.display().to_string(), e))?;
    }
    w.into_inner().map_err(|e| Error::format(what.display().to_string(), e))
}

impl StudyResults {
    /// Analyses the study (default constraints) and writes its folder: `report.md`,
    /// `report.json`, `results.json`, `runs.json`/`runs.csv`, `tasks.csv`, `windows.json`,
    /// `trace.csv`/`trace.json`, `table2.csv`/`table2.json`, per-sample records and three SVG
    /// plots (see [`files`]). Returns the analysis.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file, formatting and plotting errors, analysis errors.
    pub fn write(&self, dir: impl AsRef<Path>) -> Result<StudyReport> {
        let report = self.analyze()?;
        self.write_with(dir, &report)?;
        Ok(report)
    }

    /// Writes the folder for an analysis you made (e.g. with other constraints).
    ///
    /// # Errors
    /// As [`StudyResults::write`].
    pub fn write_with(&self, dir: impl AsRef<Path>, report: &StudyReport) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let p = |name: &str| -> PathBuf { dir.join(name) };

        // Everything recorded, without the bulky parts that have their own files.
        let lean = StudyResults { timeline: None, samples: Vec::new(), ..self.clone() };
        let f = p(files::RESULTS_JSON);
        write_file(&f, json(&lean, &f)?)?;
        let f = p(files::RUNS_JSON);
        write_file(&f, json(&self.runs, &f)?)?;
        let f = p(files::RUNS_CSV);
        let rows = self.runs.iter().map(|r| RunRow {
            model: &r.config().model,
            scheme: &r.config().scheme,
            hardware: &r.config().hardware,
            repetition: r.repetition(),
            score: r.score().ok(),
            energy_j: r.energy().ok().map(|e| e.0),
            energy_wh: r.energy().ok().map(|e| e.to_watt_hours()),
            wall_s: r.wall().ok().map(|w| w.0),
            eor: r.eor().ok().map(|e| e.0),
            tweor: r.tweor().ok().map(|e| e.0),
            requests: r.requests().ok(),
            output_tokens: r.output_tokens().ok(),
            scores: r
                .scores()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(";"),
        });
        let bytes = csv_bytes(rows, &f)?;
        write_file(&f, bytes)?;
        let f = p(files::TASKS_CSV);
        let call = |t: &TaskRecord, k| {
            t.calls.iter().find(|c| c.kind == k).and_then(|c| c.energy).map(|e| e.0)
        };
        let rows = self.tasks.iter().map(|t| TaskRow {
            scheme: t.scheme.label(),
            repetition: t.repetition,
            task: &t.task,
            metric: &t.metric,
            score: t.score,
            stderr: t.stderr,
            docs: t.docs,
            start_s: t.start.0,
            wall_s: t.wall.0,
            energy_j: t.energy.map(|e| e.0),
            eor: t.eor(),
            requests: t.requests,
            tokens: t.tokens,
            j_per_request: t.joules_per_request(),
            j_per_token: t.joules_per_token(),
            loglikelihood_j: call(t, crate::metered::CallKind::Loglikelihood),
            generation_j: call(t, crate::metered::CallKind::Generation),
            window: t.window,
            passes: t.passes,
            window_s: t.window_wall.0,
            passes_agree: t.passes_agree,
            tokenize_s: t.time.map(|b| b.tokenize.0),
            engine_s: t.time.map(|b| b.engine.0),
            scoring_s: t.time.map(|b| b.scoring.0),
            bookkeeping_s: t.time.map(|b| b.bookkeeping.0),
            engine_busy: t.time.and_then(|b| b.engine_busy()),
        });
        let bytes = csv_bytes(rows, &f)?;
        write_file(&f, bytes)?;
        let f = p(files::WINDOWS_JSON);
        write_file(&f, json(&self.windows, &f)?)?;
        if let Some(tl) = &self.timeline {
            for name in [files::TRACE_CSV, files::TRACE_JSON] {
                let f = p(name);
                tl.save(&f).map_err(|e| Error::power(format!("writing {}", f.display()), e))?;
            }
        }
        if let Some(t) = &report.table2 {
            let f = p(files::TABLE2_CSV);
            let mut bytes = Vec::new();
            t.write_csv(&mut bytes).map_err(|e| Error::metrics(f.display().to_string(), e))?;
            write_file(&f, bytes)?;
            let f = p(files::TABLE2_JSON);
            write_file(&f, t.to_json().map_err(|e| Error::metrics(f.display().to_string(), e))?)?;
        }
        for set in &self.samples {
            let f = dir.join(set.relative_path());
            match &set.file {
                // Records kept on disk (a study with a journal): copied, unless that file
                // already is the destination.
                Some(src) if set.records.is_empty() => {
                    let same = std::fs::canonicalize(&f)
                        .is_ok_and(|d| std::fs::canonicalize(src).is_ok_and(|s| s == d));
                    if !same {
                        if let Some(parent) = f.parent() {
                            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                        }
                        std::fs::copy(src, &f).map_err(|e| Error::io(src, e))?;
                    }
                }
                _ => {
                    let out = set.jsonl().map_err(|e| Error::format(f.display().to_string(), e))?;
                    write_file(&f, out)?;
                }
            }
        }
        crate::plots::power_over_time(self, &p(files::POWER_SVG))?;
        if !report.points.is_empty() {
            crate::plots::score_energy(self, report, &p(files::PARETO_SVG))?;
        }
        crate::plots::heatmap(report, &p(files::HEATMAP_SVG))?;
        let f = p(files::REPORT_JSON);
        write_file(&f, json(report, &f)?)?;
        write_file(&p(files::REPORT_MD), report.markdown(self))?;
        Ok(())
    }

    /// Reads a study folder written by [`StudyResults::write`] back (results, trace and
    /// samples), e.g. to analyse it again with other constraints.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Format`] naming the file.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let f = dir.join(files::RESULTS_JSON);
        let text = std::fs::read_to_string(&f).map_err(|e| Error::io(&f, e))?;
        let mut r: StudyResults =
            serde_json::from_str(&text).map_err(|e| Error::format(f.display().to_string(), e))?;
        let trace = dir.join(files::TRACE_JSON);
        if trace.exists() {
            r.timeline = Some(
                eai_power::Timeline::load(&trace)
                    .map_err(|e| Error::power(format!("reading {}", trace.display()), e))?,
            );
        }
        Ok(r)
    }
}
