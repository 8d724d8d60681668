//! The study's journal: one JSON line per finished (scheme, repetition), appended and synced to
//! disk when the run finishes, so that a study killed at any point (SIGKILL, power loss)
//! resumes where it stopped without redoing finished runs ([`crate::Study::journal`]).
//!
//! Line 1 is the header (the study's settings: a journal is only resumed by the same study);
//! then `scheme` lines (a scheme's model was built) and `run` lines (everything a finished
//! repetition recorded but its per-sample records). A last line cut short by a kill is
//! ignored; any other bad line is an error naming the line.
//!
//! The per-sample records (megabytes per task on a real benchmark) are not in the journal:
//! they are written beside it, in the study folder's own layout
//! (`samples/<scheme>/rep<k>/samples_<task>.jsonl`, each file written to a temporary name,
//! synced and renamed) before the run's line, which names each file with its record count,
//! length and FNV-1a hash. A run line holds no per-document data: its size grows with the
//! tasks, the sample files and the power sources of the run, never with the documents or the
//! window's length. On resume a run whose files are missing or differ is run again (said on
//! stderr), never restored with other records than it wrote.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use eai_metrics::Run;
use eai_power::Measurement;
use serde::{Deserialize, Serialize};

use super::records::{SampleSet, SchemeRecord, StudySettings, TaskRecord};
use crate::error::{Error, Result};
use crate::scheme::Scheme;

/// The journal format written: 2 (per-sample records in files); 1 (records inline) is read.
const VERSION: u32 = 2;

/// One line of the journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub(crate) enum Entry {
    Header { version: u32, settings: Box<StudySettings> },
    Scheme { record: Box<SchemeRecord> },
    Run(Box<RunEntry>),
}

/// Everything one finished (scheme, repetition) recorded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RunEntry {
    pub(crate) scheme: Scheme,
    pub(crate) repetition: u32,
    pub(crate) run: Run,
    pub(crate) tasks: Vec<TaskRecord>,
    pub(crate) task_runs: Vec<Run>,
    /// Per-sample records inline (journals of version 1; never written now).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) samples: Vec<SampleSet>,
    /// Per-sample records in files beside the journal (version 2).
    #[serde(default)]
    pub(crate) sample_files: Vec<SampleFile>,
    pub(crate) windows: Vec<Measurement>,
}

/// One file of per-sample records, as a run line names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SampleFile {
    pub(crate) task: String,
    /// Relative to the journal's folder.
    pub(crate) path: PathBuf,
    pub(crate) records: usize,
    pub(crate) bytes: u64,
    /// FNV-1a (64-bit) of the file's bytes, hexadecimal.
    pub(crate) fnv1a: String,
}

/// FNV-1a, 64-bit: a check that a file is the one written (not a security measure).
fn fnv1a(mut r: impl Read, path: &Path) -> Result<(u64, u64)> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut n = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = r.read(&mut buf).map_err(io(path))?;
        if k == 0 {
            return Ok((h, n));
        }
        n += k as u64;
        for &b in &buf[..k] {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// What a journal already holds.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    pub(crate) schemes: Vec<SchemeRecord>,
    pub(crate) runs: Vec<RunEntry>,
    /// Runs recorded but not restored (their sample files are missing or differ), with why:
    /// they are run again.
    pub(crate) redo: Vec<((Scheme, u32), String)>,
}

impl Restored {
    pub(crate) fn done(&self) -> BTreeSet<(Scheme, u32)> {
        self.runs.iter().map(|r| (r.scheme, r.repetition)).collect()
    }
}

/// An open journal, appended to.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    /// The journal's folder: sample files are written under it.
    dir: PathBuf,
    file: std::fs::File,
}

/// The run's sample sets as files of `dir`, checked against what the run line says; the sets
/// keep only their paths. An error says why the run cannot be restored.
fn restore_samples(dir: &Path, r: &RunEntry) -> std::result::Result<Vec<SampleSet>, String> {
    let mut sets = r.samples.clone();
    for f in &r.sample_files {
        let path = dir.join(&f.path);
        let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (h, n) = fnv1a(std::io::BufReader::new(file), &path).map_err(|e| e.to_string())?;
        if n != f.bytes || format!("{h:016x}") != f.fnv1a {
            return Err(format!(
                "{} is not the file the run wrote ({n} bytes, expected {})",
                path.display(),
                f.bytes
            ));
        }
        let set = SampleSet {
            scheme: r.scheme,
            repetition: r.repetition,
            task: f.task.clone(),
            records: Vec::new(),
            file: Some(path),
        };
        // Only paths the journal itself would write are accepted.
        if set.relative_path() != f.path {
            return Err(format!("unexpected sample file {}", f.path.display()));
        }
        sets.push(set);
    }
    Ok(sets)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// The same tasks, documents, shots, metric and data (timings such as the preparation time
/// are not compared).
fn same_tasks(a: &StudySettings, b: &StudySettings) -> bool {
    let key = |s: &StudySettings| -> Vec<(String, String, usize, usize, String)> {
        s.tasks
            .iter()
            .map(|t| (t.name.clone(), t.metric.clone(), t.shots, t.docs, t.source.clone()))
            .collect()
    };
    key(a) == key(b)
}

/// Where two studies' settings differ (the model's name is not compared: it is only known
/// once the model is built).
fn difference(a: &StudySettings, b: &StudySettings) -> Option<&'static str> {
    if a.schemes != b.schemes {
        Some("schemes")
    } else if !same_tasks(a, b) {
        Some("tasks")
    } else if a.repeats != b.repeats {
        Some("repeats")
    } else if a.warmup_docs != b.warmup_docs {
        Some("warm-up documents")
    } else if a.batch_size != b.batch_size {
        Some("batch size")
    } else if a.hardware != b.hardware {
        Some("hardware")
    } else if a.baseline != b.baseline || a.cooldown != b.cooldown {
        Some("baseline or cool-down")
    } else {
        None
    }
}

impl Journal {
    /// Opens `path` for `settings`: creates it with a header, or reads what it holds (which
    /// must be a journal of the same study) and appends from there.
    pub(crate) fn open(path: &Path, settings: &StudySettings) -> Result<(Self, Restored)> {
        let mut restored = Restored::default();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = dir.as_path();
        let exists = path.exists();
        if exists {
            let text = std::fs::read_to_string(path).map_err(io(path))?;
            let lines: Vec<&str> = text.lines().collect();
            let complete = text.ends_with('\n');
            for (i, line) in lines.iter().enumerate() {
                let bad = |reason: String| Error::Format {
                    what: format!("{} line {}", path.display(), i + 1),
                    reason,
                };
                let entry: Entry = match serde_json::from_str(line) {
                    Ok(e) => e,
                    // The last line of a journal killed while writing it.
                    Err(_) if i + 1 == lines.len() && !complete => break,
                    Err(e) => return Err(bad(e.to_string())),
                };
                match (i, entry) {
                    (0, Entry::Header { settings: s, .. }) => {
                        if let Some(what) = difference(&s, settings) {
                            return Err(Error::Config {
                                field: "journal",
                                reason: format!(
                                    "{} is the journal of another study (its {what} differ)",
                                    path.display()
                                ),
                            });
                        }
                    }
                    (0, _) => return Err(bad("the first line is not a journal header".into())),
                    (_, Entry::Header { .. }) => return Err(bad("a second header".into())),
                    (_, Entry::Scheme { record }) => {
                        restored.schemes.retain(|s| s.scheme != record.scheme);
                        restored.schemes.push(*record);
                    }
                    (_, Entry::Run(mut r)) => {
                        let key = (r.scheme, r.repetition);
                        // A run recorded again (after its files were found wrong) replaces
                        // the earlier line.
                        restored.runs.retain(|x| (x.scheme, x.repetition) != key);
                        restored.redo.retain(|x| x.0 != key);
                        match restore_samples(dir, &r) {
                            Ok(sets) => {
                                r.samples = sets;
                                r.sample_files.clear();
                                restored.runs.push(*r);
                            }
                            Err(why) => restored.redo.push((key, why)),
                        }
                    }
                }
            }
        }
        let file =
            std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io(path))?;
        // A line cut short by a kill is dropped, so that what follows starts on a line of its own.
        let bytes = std::fs::read(path).map_err(io(path))?;
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            file.set_len(keep as u64).map_err(io(path))?;
        }
        let mut j = Self { path: path.to_path_buf(), dir: dir.to_path_buf(), file };
        if !exists || std::fs::metadata(path).map_err(io(path))?.len() == 0 {
            j.append(&Entry::Header { version: VERSION, settings: Box::new(settings.clone()) })?;
        }
        Ok((j, restored))
    }

    /// Records a finished run: writes its per-sample records to their files (synced), then
    /// appends the run's line naming them. The sets keep only their file paths afterwards, so
    /// the records leave memory.
    pub(crate) fn record_run(&mut self, mut run: RunEntry, sets: &mut [SampleSet]) -> Result<()> {
        run.samples.clear();
        run.sample_files.clear();
        let mut folders = BTreeSet::new();
        for set in sets.iter_mut() {
            if set.records.is_empty() && set.file.is_some() {
                continue; // already on disk
            }
            let rel = set.relative_path();
            let path = self.dir.join(&rel);
            let text = set.jsonl().map_err(|e| Error::format(path.display().to_string(), e))?;
            let folder = path.parent().unwrap_or(&self.dir).to_path_buf();
            std::fs::create_dir_all(&folder).map_err(io(&folder))?;
            let tmp = path.with_extension("jsonl.eai-tmp");
            let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(text.as_bytes()).map_err(io(&tmp))?;
            f.sync_data().map_err(io(&tmp))?;
            drop(f);
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
            folders.insert(folder);
            let (h, n) = fnv1a(text.as_bytes(), &path)?;
            run.sample_files.push(SampleFile {
                task: set.task.clone(),
                path: rel,
                records: set.records.len(),
                bytes: n,
                fnv1a: format!("{h:016x}"),
            });
            set.records = Vec::new();
            set.file = Some(path);
        }
        // The renames are durable before the line that relies on them.
        for folder in folders {
            if let Ok(d) = std::fs::File::open(&folder) {
                let _ = d.sync_all();
            }
        }
        self.append(&Entry::Run(Box::new(run)))
    }

    /// Appends one line and syncs it to disk.
    pub(crate) fn append(&mut self, e: &Entry) -> Result<()> {
        let mut line = serde_json::to_string(e)
            .map_err(|e| Error::format(self.path.display().to_string(), e))?;
        line.push('\n');
        self.file.write_all(line.as_bytes()).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use eai_core::Seconds;

    fn settings(repeats: u32) -> StudySettings {
        StudySettings {
            model: "m".into(),
            hardware: "cpu".into(),
            schemes: vec![Scheme::Fp32],
            tasks: Vec::new(),
            repeats,
            warmup_docs: 0,
            cooldown: Seconds(0.0),
            baseline: Seconds(0.0),
            batch_size: None,
            per_call_energy: false,
            min_window: Seconds(0.0),
        }
    }

    fn entry(rep: u32) -> RunEntry {
        RunEntry {
            scheme: Scheme::Fp32,
            repetition: rep,
            run: Run::builder("m", "fp32", "cpu")
                .repetition(rep)
                .score("arc_easy", 0.5)
                .wall(Seconds(1.0))
                .build()
                .unwrap(),
            tasks: Vec::new(),
            task_runs: Vec::new(),
            samples: Vec::new(),
            sample_files: Vec::new(),
            windows: Vec::new(),
        }
    }

    fn set(rep: u32, n: usize) -> SampleSet {
        SampleSet {
            scheme: Scheme::Fp32,
            repetition: rep,
            task: "arc_easy".into(),
            records: (0..n)
                .map(|i| serde_json::json!({ "doc_id": i, "arguments": "a question ".repeat(20) }))
                .collect(),
            file: None,
        }
    }

    fn run_line(path: &Path, k: usize) -> String {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines().filter(|l| l.starts_with("{\"entry\":\"run\"")).nth(k).unwrap().to_string()
    }

    #[test]
    fn a_journal_of_another_study_is_refused_naming_what_differs() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("journal.jsonl");
        drop(Journal::open(&p, &settings(3)).unwrap());
        match Journal::open(&p, &settings(2)) {
            Err(Error::Config { field, reason }) => {
                assert_eq!(field, "journal");
                assert!(reason.contains("repeats") && reason.contains("journal.jsonl"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn run_lines_name_sample_files_and_do_not_grow_with_the_records() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("journal.jsonl");
        let (mut j, restored) = Journal::open(&p, &settings(2)).unwrap();
        assert!(restored.runs.is_empty());
        let mut few = [set(1, 10)];
        j.record_run(entry(1), &mut few).unwrap();
        let mut many = [set(2, 10_000)];
        j.record_run(entry(2), &mut many).unwrap();
        // The records left memory for their files, in the study folder's layout.
        for (s, n) in [(&few[0], 10), (&many[0], 10_000)] {
            assert!(s.records.is_empty());
            let f = s.file.clone().unwrap();
            assert_eq!(f, d.path().join(s.relative_path()));
            assert_eq!(std::fs::read_to_string(&f).unwrap().lines().count(), n);
        }
        // A 10,000-record run's line is as long as a 10-record one's (the digits of the
        // byte count and record count aside).
        let (a, b) = (run_line(&p, 0), run_line(&p, 1));
        assert!(!b.contains("\"records\":[") && !b.contains("a question"), "{b}");
        assert!(b.len() < a.len() + 8 && b.len() < 1024, "{} vs {} bytes: {b}", a.len(), b.len());
        drop(j);

        // Resumed: both runs restored, their records by reference.
        let (_, r) = Journal::open(&p, &settings(2)).unwrap();
        assert_eq!(r.done().len(), 2);
        assert!(r.redo.is_empty());
        let s = &r.runs[1].samples[0];
        assert_eq!((s.task.as_str(), s.repetition, s.records.len()), ("arc_easy", 2, 0));
        assert_eq!(s.file.as_deref(), many[0].file.as_deref());

        // A sample file changed (or cut) after its run was journaled: that run is redone,
        // not restored with records it did not write; a missing one likewise.
        let f = many[0].file.clone().unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        std::fs::write(&f, &text[..text.len() - 1]).unwrap();
        let (_, r) = Journal::open(&p, &settings(2)).unwrap();
        assert_eq!(r.done().into_iter().collect::<Vec<_>>(), vec![(Scheme::Fp32, 1)]);
        assert_eq!(r.redo.len(), 1);
        assert!(r.redo[0].1.contains("samples_arc_easy.jsonl"), "{}", r.redo[0].1);
        std::fs::remove_file(few[0].file.as_ref().unwrap()).unwrap();
        let (mut j, r) = Journal::open(&p, &settings(2)).unwrap();
        assert!(r.runs.is_empty() && r.redo.len() == 2);
        // Run again and journaled again: the later line is the one restored.
        let mut again = [set(2, 10_000)];
        j.record_run(entry(2), &mut again).unwrap();
        drop(j);
        let (_, r) = Journal::open(&p, &settings(2)).unwrap();
        assert_eq!(r.done().into_iter().collect::<Vec<_>>(), vec![(Scheme::Fp32, 2)]);
        assert_eq!(r.redo.len(), 1);
    }

    #[test]
    fn a_line_cut_short_by_a_kill_is_dropped_and_appending_goes_on() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("journal.jsonl");
        let (mut j, _) = Journal::open(&p, &settings(2)).unwrap();
        j.record_run(entry(1), &mut [set(1, 3)]).unwrap();
        drop(j);
        let whole = std::fs::read_to_string(&p).unwrap();
        let line = run_line(&p, 0);
        std::fs::write(&p, format!("{whole}{}", &line[..line.len() / 2])).unwrap();
        let (mut j, r) = Journal::open(&p, &settings(2)).unwrap();
        assert_eq!(r.runs.len(), 1);
        j.record_run(entry(2), &mut [set(2, 3)]).unwrap();
        drop(j);
        let (_, r) = Journal::open(&p, &settings(2)).unwrap();
        assert_eq!(r.done().len(), 2);
    }
}
