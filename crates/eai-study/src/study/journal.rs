//! The study's journal: one JSON line per finished (scheme, repetition), appended and synced to
//! disk when the run finishes, so that a study killed at any point (SIGKILL, power loss)
//! resumes where it stopped without redoing finished runs ([`crate::Study::journal`]).
//!
//! Line 1 is the header (the study's settings: a journal is only resumed by the same study);
//! then `scheme` lines (a scheme's model was built) and `run` lines (everything a finished
//! repetition recorded). A last line cut short by a kill is ignored; any other bad line is an
//! error naming the line.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use eai_metrics::Run;
use eai_power::Measurement;
use serde::{Deserialize, Serialize};

use super::records::{SampleSet, SchemeRecord, StudySettings, TaskRecord};
use crate::error::{Error, Result};
use crate::scheme::Scheme;

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
    pub(crate) samples: Vec<SampleSet>,
    pub(crate) windows: Vec<Measurement>,
}

/// What a journal already holds.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    pub(crate) schemes: Vec<SchemeRecord>,
    pub(crate) runs: Vec<RunEntry>,
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
    file: std::fs::File,
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
                    (_, Entry::Run(r)) => restored.runs.push(*r),
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
        let mut j = Self { path: path.to_path_buf(), file };
        if !exists || std::fs::metadata(path).map_err(io(path))?.len() == 0 {
            j.append(&Entry::Header { version: 1, settings: Box::new(settings.clone()) })?;
        }
        Ok((j, restored))
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
