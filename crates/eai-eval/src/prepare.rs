//! A suite's requests, built once: prompts rendered, identical requests merged, requests sorted
//! for batching. [`Prepared`] is what the `Evaluator` runs, as often as it is asked to.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use eai_core::{GenerateRequest, LoglikelihoodRequest, RollingRequest, Seconds};

use crate::Result;
use crate::task::{DocRequests, Instance, Task};
use crate::tasks::{Group, Suite};

/// A suite with every task's requests built, de-duplicated and sorted, ready to run against any
/// number of models any number of times (`Evaluator::run_prepared`).
///
/// Building requests (rendering few-shot prompts, merging identical `(context, continuation)`
/// pairs, sorting longest context first) costs CPU time that does not depend on the model, so a
/// study prepares each task once and reuses the plan across repetitions and schemes. A plan owns
/// copies of its tasks: it is `Send + Sync + 'static` and can be stored next to the suite.
///
/// ```
/// use eai_eval::{Evaluator, Suite, bundled};
/// let suite = Suite { tasks: vec![bundled::arc_easy()?], groups: vec![] };
/// let plan = Evaluator::new().prepare(&suite)?;
/// assert_eq!(plan.task_names().collect::<Vec<_>>(), ["arc_easy"]);
/// assert!(plan.unique_requests() <= plan.requests());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Prepared {
    pub(crate) tasks: Vec<PreparedTask>,
    pub(crate) groups: Vec<Group>,
    /// Distinct per `Prepared::new` (clones share it): answers name the plan they answer.
    pub(crate) id: u64,
}

/// One task's plan.
#[derive(Clone, Debug)]
pub(crate) struct PreparedTask {
    pub(crate) task: Task,
    pub(crate) instances: Vec<Instance>,
    /// Distinct log-likelihood requests, longest context first, shared contexts adjacent.
    pub(crate) ll_unique: Vec<LoglikelihoodRequest>,
    /// Per instance with log-likelihood requests, per choice: index into `ll_unique`.
    pub(crate) ll_index: Vec<Vec<usize>>,
    /// Distinct generation requests, longest context first.
    pub(crate) gen_unique: Vec<GenerateRequest>,
    /// Per generation instance: index into `gen_unique`.
    pub(crate) gen_index: Vec<usize>,
    /// Distinct rolling log-likelihood requests, longest text first.
    pub(crate) roll_unique: Vec<RollingRequest>,
    /// Per rolling instance: index into `roll_unique`.
    pub(crate) roll_index: Vec<usize>,
    /// Requests before merging (lm-eval's count).
    pub(crate) requests: usize,
    /// Distinct contexts among the distinct requests.
    pub(crate) unique_contexts: usize,
    /// Time it took to build this plan.
    pub(crate) prepare: Seconds,
}

impl Prepared {
    /// Builds every task's requests.
    ///
    /// # Errors
    /// Prompt construction failures ([`Task::instances`]).
    pub(crate) fn new(suite: &Suite) -> Result<Self> {
        let tasks = suite.tasks.iter().map(PreparedTask::new).collect::<Result<Vec<_>>>()?;
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        Ok(Self { tasks, groups: suite.groups.clone(), id })
    }

    /// Task names, in run order.
    pub fn task_names(&self) -> impl Iterator<Item = &str> {
        self.tasks.iter().map(|t| t.task.name())
    }

    /// The tasks, in run order.
    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.iter().map(|t| &t.task)
    }

    /// The group definitions.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// Requests the tasks produce, one per choice or generation, before identical ones are
    /// merged: the count lm-evaluation-harness builds and reports.
    pub fn requests(&self) -> usize {
        self.tasks.iter().map(|t| t.requests).sum()
    }

    /// Distinct requests, the ones sent to the model per pass.
    pub fn unique_requests(&self) -> usize {
        self.tasks.iter().map(PreparedTask::unique_requests).sum()
    }

    /// Time spent building the plan (rendering prompts, merging and sorting requests).
    pub fn prepare_time(&self) -> Seconds {
        self.tasks.iter().map(|t| t.prepare).sum()
    }

    /// Every distinct log-likelihood request of every task, in the order they are sent: for an
    /// engine that wants to tokenize ahead of time (e.g. to warm a token cache).
    pub fn loglikelihood_requests(&self) -> impl Iterator<Item = &LoglikelihoodRequest> {
        self.tasks.iter().flat_map(|t| t.ll_unique.iter())
    }

    /// Every distinct generation request of every task, in the order they are sent.
    pub fn generate_requests(&self) -> impl Iterator<Item = &GenerateRequest> {
        self.tasks.iter().flat_map(|t| t.gen_unique.iter())
    }

    /// Every distinct rolling log-likelihood request of every task, in the order they are sent.
    pub fn rolling_requests(&self) -> impl Iterator<Item = &RollingRequest> {
        self.tasks.iter().flat_map(|t| t.roll_unique.iter())
    }
}

impl PreparedTask {
    /// Distinct requests of every kind.
    pub(crate) fn unique_requests(&self) -> usize {
        self.ll_unique.len() + self.gen_unique.len() + self.roll_unique.len()
    }

    fn new(task: &Task) -> Result<Self> {
        let t0 = Instant::now();
        let instances = task.instances()?;
        let mut ll_map: HashMap<&LoglikelihoodRequest, usize> = HashMap::new();
        let mut ll_first: Vec<&LoglikelihoodRequest> = Vec::new();
        let mut ll_index = Vec::with_capacity(instances.len());
        let mut gen_map: HashMap<&GenerateRequest, usize> = HashMap::new();
        let mut gen_first: Vec<&GenerateRequest> = Vec::new();
        let mut gen_index = Vec::new();
        let mut roll_map: HashMap<&RollingRequest, usize> = HashMap::new();
        let mut roll_first: Vec<&RollingRequest> = Vec::new();
        let mut roll_index = Vec::new();
        let mut requests = 0;
        for inst in &instances {
            match &inst.requests {
                DocRequests::Loglikelihood(reqs) => {
                    requests += reqs.len();
                    let idx: Vec<usize> = reqs
                        .iter()
                        .map(|r| {
                            *ll_map.entry(r).or_insert_with(|| {
                                ll_first.push(r);
                                ll_first.len() - 1
                            })
                        })
                        .collect();
                    ll_index.push(idx);
                }
                DocRequests::Generate(g) => {
                    requests += 1;
                    let i = *gen_map.entry(g).or_insert_with(|| {
                        gen_first.push(g);
                        gen_first.len() - 1
                    });
                    gen_index.push(i);
                }
                DocRequests::Rolling(r) => {
                    requests += 1;
                    let i = *roll_map.entry(r).or_insert_with(|| {
                        roll_first.push(r);
                        roll_first.len() - 1
                    });
                    roll_index.push(i);
                }
            }
        }
        // Longest context first; requests sharing a context stay adjacent.
        let mut order: Vec<usize> = (0..ll_first.len()).collect();
        order.sort_by(|&a, &b| {
            let (ra, rb) = (ll_first[a], ll_first[b]);
            rb.context
                .len()
                .cmp(&ra.context.len())
                .then_with(|| ra.context.cmp(&rb.context))
                .then_with(|| rb.continuation.len().cmp(&ra.continuation.len()))
                .then_with(|| ra.continuation.cmp(&rb.continuation))
        });
        let mut new_pos = vec![0; order.len()];
        for (pos, &old) in order.iter().enumerate() {
            new_pos[old] = pos;
        }
        let ll_unique: Vec<LoglikelihoodRequest> =
            order.iter().map(|&i| ll_first[i].clone()).collect();
        for idx in &mut ll_index {
            for i in idx.iter_mut() {
                *i = new_pos[*i];
            }
        }
        let mut gorder: Vec<usize> = (0..gen_first.len()).collect();
        gorder.sort_by(|&a, &b| gen_first[b].context.len().cmp(&gen_first[a].context.len()));
        let mut gpos = vec![0; gorder.len()];
        for (pos, &old) in gorder.iter().enumerate() {
            gpos[old] = pos;
        }
        let gen_unique: Vec<GenerateRequest> =
            gorder.iter().map(|&i| gen_first[i].clone()).collect();
        for i in &mut gen_index {
            *i = gpos[*i];
        }
        let mut rorder: Vec<usize> = (0..roll_first.len()).collect();
        rorder.sort_by(|&a, &b| roll_first[b].text.len().cmp(&roll_first[a].text.len()));
        let mut rpos = vec![0; rorder.len()];
        for (pos, &old) in rorder.iter().enumerate() {
            rpos[old] = pos;
        }
        let roll_unique: Vec<RollingRequest> =
            rorder.iter().map(|&i| roll_first[i].clone()).collect();
        for i in &mut roll_index {
            *i = rpos[*i];
        }
        let unique_contexts = {
            let mut c: Vec<&str> = ll_unique.iter().map(|r| r.context.as_str()).collect();
            c.extend(gen_unique.iter().map(|r| r.context.as_str()));
            c.extend(roll_unique.iter().map(|r| r.text.as_str()));
            c.sort_unstable();
            c.dedup();
            c.len()
        };
        Ok(Self {
            task: task.clone(),
            instances,
            ll_unique,
            ll_index,
            gen_unique,
            gen_index,
            roll_unique,
            roll_index,
            requests,
            unique_contexts,
            prepare: Seconds(t0.elapsed().as_secs_f64()),
        })
    }
}

/// Splits sorted requests into batches of at most `size` (`None`: one batch), ending batches at
/// context boundaries whenever a whole context group fits (a group larger than `size` is split).
pub(crate) fn context_batches(
    reqs: &[LoglikelihoodRequest],
    size: Option<usize>,
) -> Vec<Range<usize>> {
    let Some(size) = size else {
        return chunks(reqs.len(), None);
    };
    let size = size.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < reqs.len() {
        let mut j = i + 1;
        while j < reqs.len() && reqs[j].context == reqs[i].context {
            j += 1;
        }
        // group is i..j
        if j - start > size && i > start {
            out.push(start..i);
            start = i;
        }
        while j - start > size {
            out.push(start..start + size);
            start += size;
        }
        i = j;
    }
    if start < reqs.len() {
        out.push(start..reqs.len());
    }
    out
}

/// Plain chunks of at most `size` (`None`: one chunk).
pub(crate) fn chunks(len: usize, size: Option<usize>) -> Vec<Range<usize>> {
    match size {
        None if len == 0 => Vec::new(),
        None => std::iter::once(0..len).collect(),
        Some(size) => {
            let size = size.max(1);
            (0..len).step_by(size).map(|s| s..(s + size).min(len)).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(c: &str, k: &str) -> LoglikelihoodRequest {
        LoglikelihoodRequest::new(c, k)
    }

    #[test]
    fn batches_respect_context_groups() {
        let reqs =
            vec![r("a", "1"), r("a", "2"), r("a", "3"), r("b", "1"), r("b", "2"), r("c", "1")];
        assert_eq!(context_batches(&reqs, Some(4)), vec![0..3, 3..6]);
        assert_eq!(context_batches(&reqs, Some(2)), vec![0..2, 2..3, 3..5, 5..6]);
        assert_eq!(context_batches(&reqs, Some(100)), vec![0..6]);
        assert_eq!(context_batches(&reqs, None), vec![0..6]);
        assert!(context_batches(&[], Some(3)).is_empty());
        assert!(context_batches(&[], None).is_empty());
    }

    #[test]
    fn chunks_cover_everything_once() {
        assert_eq!(chunks(7, Some(3)), vec![0..3, 3..6, 6..7]);
        assert_eq!(chunks(7, None), vec![0..7]);
        assert!(chunks(0, None).is_empty());
        assert!(chunks(0, Some(2)).is_empty());
    }
}
