//! [`DataParallel`]: one engine per device, each call's requests split so that every replica
//! gets a balanced token load, run concurrently, the answers merged back in request order.
//!
//! Each replica lives on a thread of its own for its whole life: it is built there (by the
//! closure given to [`DataParallel::spawn`]) and every call is sent to it over a channel. A CUDA
//! engine therefore keeps its context on one thread and needs not be `Send` (a captured CUDA
//! graph is not). No collective communication is needed: scoring and greedy generation of one
//! request never look at another's.
//!
//! **Splitting.** Scoring requests that share a context (the choices of a multiple-choice
//! document) go to the same replica, so that its engine runs the shared context once
//! (`EngineOptions::share_prefixes`) exactly as one engine would; a group's load is its context's
//! tokens plus every continuation's. Generation requests are split by prompt; a prompt's load is
//! its tokens plus `max_gen_toks`. Groups are assigned longest first to the least-loaded replica
//! (LPT: the largest load is at most the mean plus one group's), deterministically. Loads are
//! counted in tokens by the replicas' tokenizer ([`Replica::weigher`], through the token cache the
//! replicas then hit) or, for engines without one, in bytes.
//!
//! **Results** are each request's own computation on its replica. On the CPU engine they are
//! bit-identical to one engine's (tested); where an engine's float summation order depends on
//! what else is in a pass (cuBLAS picks GEMM kernels by row count), they agree within rounding,
//! as they do between two batch sizes on one device.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use eai_core::{
    BatchHint, EngineTime, GenerateRequest, Generation, LanguageModel, Loglikelihood,
    LoglikelihoodRequest, ModelError, ModelInfo, Seconds,
};

use crate::tokenizer::Tokenizer;
use crate::tokens::TokenCache;

/// How a replica's requests are weighed for splitting: by tokens (the replicas' tokenizer, through
/// their shared token cache) or by bytes.
#[derive(Clone, Debug)]
pub struct Weigher(Weigh);

#[derive(Clone, Debug)]
enum Weigh {
    Bytes,
    Tokens { tok: Box<Tokenizer>, cache: Arc<TokenCache>, max_len: usize },
}

impl Weigher {
    /// Loads in UTF-8 bytes (for engines without a tokenizer).
    pub fn bytes() -> Self {
        Weigher(Weigh::Bytes)
    }

    /// Loads in tokens: requests are encoded as the engines encode them (left-truncated to
    /// `max_len`), through `cache`; give the replicas the same cache and they encode nothing again.
    pub fn tokens(tok: Tokenizer, cache: Arc<TokenCache>, max_len: usize) -> Self {
        Weigher(Weigh::Tokens { tok: Box::new(tok), cache, max_len })
    }

    /// Whether loads are counted in tokens (else bytes).
    pub fn counts_tokens(&self) -> bool {
        matches!(self.0, Weigh::Tokens { .. })
    }

    /// `(context, continuation)` length of each scoring request, the context cut as the engines
    /// cut it (to `max_len + 1` tokens with the continuation). A batch the tokenizer rejects is
    /// weighed in bytes (the replica that gets a bad request reports it).
    pub fn pairs(&self, reqs: &[LoglikelihoodRequest]) -> Vec<(u64, u64)> {
        if let Weigh::Tokens { tok, cache, max_len } = &self.0
            && let Ok((pairs, _)) =
                crate::tokens::encode_requests(cache, tok, reqs, *max_len, "data-parallel split")
        {
            // The engines run the last `max_len + 1` tokens of context + continuation.
            let keep = max_len.saturating_add(1);
            return pairs
                .iter()
                .map(|(c, x)| (c.len().min(keep.saturating_sub(x.len())) as u64, x.len() as u64))
                .collect();
        }
        reqs.iter().map(|r| (r.context.len() as u64, r.continuation.len() as u64)).collect()
    }

    /// Prompt length of each generation request (bytes when the tokenizer rejects the batch).
    pub fn prompts(&self, reqs: &[GenerateRequest]) -> Vec<u64> {
        if let Weigh::Tokens { tok, cache, max_len } = &self.0
            && let Ok((p, _)) =
                crate::tokens::encode_prompts(cache, tok, reqs, *max_len, "data-parallel split")
        {
            return p.iter().map(|p| p.len() as u64).collect();
        }
        reqs.iter().map(|r| r.context.len() as u64).collect()
    }
}

/// An engine that [`DataParallel`] can replicate: a [`LanguageModel`] that says how to weigh
/// requests (default: bytes).
pub trait Replica: LanguageModel {
    /// How to weigh this engine's requests for splitting.
    fn weigher(&self) -> Weigher {
        Weigher::bytes()
    }
}

impl Replica for crate::Engine {
    fn weigher(&self) -> Weigher {
        Weigher::tokens(self.tokenizer().clone(), self.tokens().clone(), self.max_length())
    }
}

#[cfg(feature = "cuda")]
impl Replica for crate::cuda::GpuEngine {
    fn weigher(&self) -> Weigher {
        Weigher::tokens(self.tokenizer().clone(), self.tokens().clone(), self.max_length())
    }
}

impl Replica for Box<dyn LanguageModel> {}
impl Replica for Box<dyn LanguageModel + Send> {}

/// One replica's share of a call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Share {
    /// Indices of the call's requests it ran, ascending.
    pub requests: Vec<usize>,
    /// Their load (tokens, or bytes: [`Weigher::counts_tokens`]).
    pub load: u64,
}

/// How a call was split: one [`Share`] per replica.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Split {
    /// Per replica, in replica order.
    pub shares: Vec<Share>,
}

impl Split {
    /// The largest share's load over the mean (1.0 = perfectly balanced; 0 requests → 1.0).
    pub fn imbalance(&self) -> f64 {
        let total: u64 = self.shares.iter().map(|s| s.load).sum();
        let max = self.shares.iter().map(|s| s.load).max().unwrap_or(0);
        if total == 0 { 1.0 } else { max as f64 * self.shares.len() as f64 / total as f64 }
    }
}

/// Splits scoring requests over `n` replicas: requests with the same context stay together (one
/// group: its context's length plus every continuation's), groups go longest first to the
/// least-loaded replica. `lens` are [`Weigher::pairs`].
pub fn split_scoring(reqs: &[LoglikelihoodRequest], lens: &[(u64, u64)], n: usize) -> Split {
    let mut by_ctx: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<(u64, Vec<usize>)> = Vec::new();
    for (i, r) in reqs.iter().enumerate() {
        let (ctx, cont) = lens.get(i).copied().unwrap_or((0, 0));
        match by_ctx.get(r.context.as_str()) {
            Some(&g) => {
                groups[g].0 += cont;
                groups[g].1.push(i);
            }
            None => {
                by_ctx.insert(&r.context, groups.len());
                groups.push((ctx + cont, vec![i]));
            }
        }
    }
    assign(groups, n)
}

/// Splits generation requests over `n` replicas by prompt: load = prompt length (`prompts`, from
/// [`Weigher::prompts`]) + `max_gen_toks`, longest first to the least-loaded replica.
pub fn split_generation(reqs: &[GenerateRequest], prompts: &[u64], n: usize) -> Split {
    let groups = reqs
        .iter()
        .enumerate()
        .map(|(i, r)| (prompts.get(i).copied().unwrap_or(0) + r.max_gen_toks as u64, vec![i]))
        .collect();
    assign(groups, n)
}

/// Longest-processing-time-first assignment (ties: the earlier group, the lower replica).
fn assign(mut groups: Vec<(u64, Vec<usize>)>, n: usize) -> Split {
    let n = n.max(1);
    groups.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1[0].cmp(&b.1[0])));
    let mut shares = vec![Share::default(); n];
    for (load, members) in groups {
        let k = (0..n).min_by_key(|&k| (shares[k].load, k)).unwrap_or(0);
        shares[k].load += load;
        shares[k].requests.extend(members);
    }
    for s in &mut shares {
        s.requests.sort_unstable();
    }
    Split { shares }
}

/// What one replica has done so far (a snapshot taken after each of its calls).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ReplicaStats {
    /// Where it runs (its [`ModelInfo::device`], else `replica N`).
    pub device: String,
    /// Requests it answered.
    pub requests: u64,
    /// Their load (tokens, or bytes).
    pub load: u64,
    /// Its engine's forward passes, when it counts them.
    pub forward_passes: Option<u64>,
    /// Its engine's left-truncated requests, when it counts them.
    pub truncated_requests: Option<u64>,
    /// Its engine's own time (busy time on its device), when it measures it.
    pub engine_time: Option<EngineTime>,
}

enum Job {
    Score(Vec<LoglikelihoodRequest>),
    Generate(Vec<GenerateRequest>),
}

enum Outcome {
    Scores(Result<Vec<Loglikelihood>, ModelError>),
    Generations(Result<Vec<Generation>, ModelError>),
    Panicked(String),
}

struct Reply {
    outcome: Outcome,
    forward_passes: Option<u64>,
    truncated_requests: Option<u64>,
    engine_time: Option<EngineTime>,
}

/// What a replica's thread reports once its engine is built.
struct Ready {
    info: ModelInfo,
    hint: Option<BatchHint>,
    weigher: Weigher,
    forward_passes: Option<u64>,
    truncated_requests: Option<u64>,
    engine_time: Option<EngineTime>,
}

struct Worker {
    jobs: Option<Sender<Job>>,
    replies: Receiver<Reply>,
    thread: Option<JoinHandle<()>>,
    stats: ReplicaStats,
    /// Why it can no longer be used (its engine panicked, its thread ended).
    failed: Option<String>,
}

/// N replicas of an engine, one per device, used as one [`LanguageModel`].
///
/// ```
/// use eai_core::{GenerateRequest, Generation, LanguageModel, Loglikelihood, LoglikelihoodRequest,
///                ModelError, ModelInfo};
/// use eai_model::{DataParallel, Replica};
/// struct Len(usize);
/// impl LanguageModel for Len {
///     fn info(&self) -> ModelInfo { ModelInfo::new("len").device(format!("slot {}", self.0)) }
///     fn loglikelihood(&mut self, r: &[LoglikelihoodRequest]) -> Result<Vec<Loglikelihood>, ModelError> {
///         Ok(r.iter().map(|r| Loglikelihood::new(-(r.continuation.len() as f64), true)).collect())
///     }
///     fn generate_until(&mut self, r: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
///         Ok(r.iter().map(|r| Generation::new(r.context.to_uppercase())).collect())
///     }
/// }
/// impl Replica for Len {}
/// let mut dp = DataParallel::spawn(3, |k| Ok(Len(k)))?;
/// let reqs: Vec<_> = (0..10).map(|i| LoglikelihoodRequest::new(format!("q{i}"), "x".repeat(i))).collect();
/// let out = dp.loglikelihood(&reqs)?;
/// assert_eq!(out[7].logprob, -7.0); // request order
/// assert_eq!(dp.replicas().len(), 3);
/// assert_eq!(dp.last_split().unwrap().shares.iter().map(|s| s.requests.len()).sum::<usize>(), 10);
/// # Ok::<(), ModelError>(())
/// ```
pub struct DataParallel {
    workers: Vec<Worker>,
    info: ModelInfo,
    hint: Option<BatchHint>,
    weigher: Weigher,
    time: EngineTime,
    last: Option<Split>,
}

impl std::fmt::Debug for DataParallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataParallel")
            .field("info", &self.info)
            .field("replicas", &self.replicas())
            .finish_non_exhaustive()
    }
}

impl DataParallel {
    /// Builds `n` (at least 1) replicas, replica `k` by `build(k)` on its own thread (all at once:
    /// loading runs in parallel), and waits until every one is ready. Give the replicas one
    /// token cache so that splitting and scoring encode each text once.
    ///
    /// # Errors
    /// When any replica cannot be built: every failure, each naming its replica (the others
    /// are dropped).
    pub fn spawn<M, F>(n: usize, build: F) -> Result<Self, ModelError>
    where
        M: Replica + 'static,
        F: Fn(usize) -> Result<M, ModelError> + Send + Sync + 'static,
    {
        let build = Arc::new(build);
        let mut starting = Vec::with_capacity(n.max(1));
        for k in 0..n.max(1) {
            let (job_tx, job_rx) = channel::<Job>();
            let (reply_tx, reply_rx) = channel::<Reply>();
            let (ready_tx, ready_rx) = channel::<Result<Ready, ModelError>>();
            let build = build.clone();
            let thread = std::thread::Builder::new()
                .name(format!("eai-replica-{k}"))
                .spawn(move || serve(k, &*build, &ready_tx, &job_rx, &reply_tx))
                .map_err(|e| {
                    ModelError::backend(
                        format!("data-parallel replica {k}: starting its thread"),
                        e,
                    )
                })?;
            starting.push((job_tx, reply_rx, thread, ready_rx));
        }
        let mut workers = Vec::with_capacity(starting.len());
        let mut first: Option<Ready> = None;
        let mut errors: Vec<(usize, ModelError)> = Vec::new();
        for (k, (jobs, replies, thread, ready)) in starting.into_iter().enumerate() {
            let r = ready.recv().unwrap_or_else(|_| {
                Err(ModelError::backend(
                    format!("data-parallel replica {k}"),
                    "its thread ended while building the model (a panic)",
                ))
            });
            match r {
                Ok(r) => {
                    let stats = ReplicaStats {
                        device: r.info.device.clone().unwrap_or_else(|| format!("replica {k}")),
                        forward_passes: r.forward_passes,
                        truncated_requests: r.truncated_requests,
                        engine_time: r.engine_time,
                        ..ReplicaStats::default()
                    };
                    workers.push(Worker {
                        jobs: Some(jobs),
                        replies,
                        thread: Some(thread),
                        stats,
                        failed: None,
                    });
                    if first.is_none() {
                        first = Some(r);
                    }
                }
                Err(e) => {
                    drop(jobs);
                    let _ = thread.join();
                    errors.push((k, e));
                }
            }
        }
        if !errors.is_empty() {
            let n_failed = errors.len();
            let listed: Vec<String> =
                errors.iter().map(|(k, e)| format!("replica {k}: {}", chain(e))).collect();
            let (k, e) = errors.remove(0);
            drop(workers); // joins the replicas that did start
            return Err(ModelError::backend(
                format!(
                    "data-parallel: {n_failed} of {} replicas could not be built (replica {k} \
                     first): {}",
                    n.max(1),
                    listed.join("; ")
                ),
                e,
            ));
        }
        let Some(first) = first else {
            return Err(ModelError::backend("data-parallel", "no replica was built"));
        };
        let mut info = first.info;
        let devices: Vec<&str> = workers.iter().map(|w| w.stats.device.as_str()).collect();
        let n = workers.len();
        let replicas = if n == 1 { "1 replica".to_string() } else { format!("{n} replicas") };
        info.device = Some(format!("{} (data-parallel, {replicas})", devices.join(" + ")));
        let hint = first.hint.map(|h| {
            let times = |x: Option<usize>| x.map(|x| x.saturating_mul(workers.len()));
            BatchHint::unlimited()
                .loglikelihood_requests(times(h.loglikelihood_requests))
                .generate_requests(times(h.generate_requests))
        });
        Ok(DataParallel {
            workers,
            info,
            hint,
            weigher: first.weigher,
            time: EngineTime::default(),
            last: None,
        })
    }

    /// Moves built engines onto a thread each (engines that are `Send`, such as the CPU engine;
    /// build CUDA engines with [`DataParallel::spawn`] instead, on their own threads).
    ///
    /// # Errors
    /// An empty list.
    pub fn from_models<M: Replica + Send + 'static>(models: Vec<M>) -> Result<Self, ModelError> {
        if models.is_empty() {
            return Err(ModelError::backend("data-parallel", "no replicas given"));
        }
        let n = models.len();
        let slots: Mutex<Vec<Option<M>>> = Mutex::new(models.into_iter().map(Some).collect());
        Self::spawn(n, move |k| {
            slots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(k)
                .and_then(Option::take)
                .ok_or_else(|| {
                    ModelError::backend(format!("data-parallel replica {k}"), "model taken twice")
                })
        })
    }

    /// Number of replicas.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Always `false`: there is at least one replica.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// What each replica has done so far, in replica order.
    pub fn replicas(&self) -> Vec<ReplicaStats> {
        self.workers.iter().map(|w| w.stats.clone()).collect()
    }

    /// How the last call was split.
    pub fn last_split(&self) -> Option<&Split> {
        self.last.as_ref()
    }

    /// The weigher in use (replica 0's).
    pub fn weigher(&self) -> &Weigher {
        &self.weigher
    }

    /// Sends each replica its share, waits for all, merges in request order. Every replica's
    /// failure is reported, each naming its device.
    fn dispatch<T>(
        &mut self,
        split: &Split,
        total: usize,
        what: &str,
        job: impl Fn(&[usize]) -> Job,
        take: impl Fn(Outcome) -> Option<Result<Vec<T>, ModelError>>,
    ) -> Result<Vec<T>, ModelError> {
        let mut failures: Vec<(usize, ModelError)> = Vec::new();
        let mut sent = vec![false; self.workers.len()];
        for (k, (w, share)) in self.workers.iter_mut().zip(&split.shares).enumerate() {
            if share.requests.is_empty() {
                continue;
            }
            if let Some(why) = &w.failed {
                failures.push((k, ModelError::backend(w.stats.device.clone(), why.clone())));
                continue;
            }
            match w.jobs.as_ref().map(|tx| tx.send(job(&share.requests))) {
                Some(Ok(())) => sent[k] = true,
                _ => {
                    let why = "its thread has ended".to_string();
                    w.failed = Some(why.clone());
                    failures.push((k, ModelError::backend(w.stats.device.clone(), why)));
                }
            }
        }
        let mut out: Vec<Option<T>> = (0..total).map(|_| None).collect();
        for (k, (w, share)) in self.workers.iter_mut().zip(&split.shares).enumerate() {
            if !sent[k] {
                continue;
            }
            let Ok(reply) = w.replies.recv() else {
                let why = "its thread ended during the call (a panic)".to_string();
                w.failed = Some(why.clone());
                failures.push((k, ModelError::backend(w.stats.device.clone(), why)));
                continue;
            };
            w.stats.forward_passes = reply.forward_passes;
            w.stats.truncated_requests = reply.truncated_requests;
            w.stats.engine_time = reply.engine_time;
            let r = match reply.outcome {
                Outcome::Panicked(msg) => {
                    let why = format!("its engine panicked: {msg}");
                    w.failed = Some(why.clone());
                    Err(ModelError::backend(w.stats.device.clone(), why))
                }
                o => take(o).unwrap_or_else(|| {
                    Err(ModelError::backend(
                        w.stats.device.clone(),
                        "answered another kind of call",
                    ))
                }),
            };
            match r {
                Ok(v) if v.len() == share.requests.len() => {
                    w.stats.requests += v.len() as u64;
                    w.stats.load += share.load;
                    for (&i, x) in share.requests.iter().zip(v) {
                        out[i] = Some(x);
                    }
                }
                Ok(v) => failures.push((
                    k,
                    ModelError::backend(
                        w.stats.device.clone(),
                        ModelError::CountMismatch { expected: share.requests.len(), got: v.len() },
                    ),
                )),
                Err(ModelError::InvalidRequest { index, reason }) => {
                    // The replica's index is into its share: name the caller's request.
                    let index = share.requests.get(index).copied().unwrap_or(index);
                    let reason = format!("{reason} (on replica {k}, {})", w.stats.device);
                    failures.push((k, ModelError::InvalidRequest { index, reason }));
                }
                Err(e) => failures.push((k, e)),
            }
        }
        if failures.is_empty() {
            let merged: Option<Vec<T>> = out.into_iter().collect();
            return merged.ok_or_else(|| {
                ModelError::backend("data-parallel", "a request was assigned to no replica")
            });
        }
        Err(self.combine(failures, what))
    }

    /// One error for every replica that failed: the first as the source, all named in the message.
    fn combine(&self, mut failures: Vec<(usize, ModelError)>, what: &str) -> ModelError {
        let device = |k: usize| self.workers.get(k).map_or("?", |w| w.stats.device.as_str());
        if failures.len() == 1 {
            let (k, e) = failures.remove(0);
            if let ModelError::InvalidRequest { .. } = e {
                return e;
            }
            return ModelError::backend(
                format!("data-parallel replica {k} on {}: {what}", device(k)),
                e,
            );
        }
        let listed: Vec<String> = failures
            .iter()
            .map(|(k, e)| format!("replica {k} on {}: {}", device(*k), chain(e)))
            .collect();
        let n = failures.len();
        let (_, e) = failures.remove(0);
        ModelError::backend(
            format!(
                "data-parallel: {n} of {} replicas failed {what}: {}",
                self.workers.len(),
                listed.join("; ")
            ),
            e,
        )
    }
}

/// An error and its sources in one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// A replica's thread: build, report ready, then answer jobs until the sender is dropped.
fn serve<M: Replica>(
    k: usize,
    build: &(dyn Fn(usize) -> Result<M, ModelError> + Send + Sync),
    ready: &Sender<Result<Ready, ModelError>>,
    jobs: &Receiver<Job>,
    replies: &Sender<Reply>,
) {
    let mut m = match catch_unwind(AssertUnwindSafe(|| build(k))) {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            let _ = ready.send(Err(e));
            return;
        }
        Err(p) => {
            let _ = ready.send(Err(ModelError::backend(
                format!("data-parallel replica {k}"),
                format!("building the model panicked: {}", panic_text(&*p)),
            )));
            return;
        }
    };
    let r = Ready {
        info: m.info(),
        hint: m.batch_hint(),
        weigher: m.weigher(),
        forward_passes: m.forward_passes(),
        truncated_requests: m.truncated_requests(),
        engine_time: m.engine_time(),
    };
    if ready.send(Ok(r)).is_err() {
        return;
    }
    while let Ok(job) = jobs.recv() {
        let outcome = match catch_unwind(AssertUnwindSafe(|| match job {
            Job::Score(r) => Outcome::Scores(m.loglikelihood(&r)),
            Job::Generate(r) => Outcome::Generations(m.generate_until(&r)),
        })) {
            Ok(o) => o,
            Err(p) => Outcome::Panicked(panic_text(&*p)),
        };
        let panicked = matches!(outcome, Outcome::Panicked(_));
        let reply = Reply {
            outcome,
            forward_passes: m.forward_passes(),
            truncated_requests: m.truncated_requests(),
            engine_time: m.engine_time(),
        };
        if replies.send(reply).is_err() || panicked {
            return;
        }
    }
}

impl Drop for DataParallel {
    fn drop(&mut self) {
        for w in &mut self.workers {
            w.jobs = None;
        }
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sums a per-replica answer when every replica gives one.
fn sum(xs: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    xs.sum()
}

impl LanguageModel for DataParallel {
    /// Replica 0's info, its device replaced by every replica's (`cuda:0 … + cuda:1 …
    /// (data-parallel, 2 replicas)`).
    fn info(&self) -> ModelInfo {
        self.info.clone()
    }

    fn loglikelihood(
        &mut self,
        reqs: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, ModelError> {
        let t = Instant::now();
        let lens = self.weigher.pairs(reqs);
        let split = split_scoring(reqs, &lens, self.workers.len());
        let weighed = t.elapsed();
        let r = self.dispatch(
            &split,
            reqs.len(),
            "scoring",
            |idx| Job::Score(idx.iter().map(|&i| reqs[i].clone()).collect()),
            |o| match o {
                Outcome::Scores(r) => Some(r),
                _ => None,
            },
        );
        self.last = Some(split);
        self.time.tokenize += Seconds(weighed.as_secs_f64());
        self.time.compute += Seconds((t.elapsed() - weighed).as_secs_f64());
        r
    }

    fn generate_until(&mut self, reqs: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
        let t = Instant::now();
        let prompts = self.weigher.prompts(reqs);
        let split = split_generation(reqs, &prompts, self.workers.len());
        let weighed = t.elapsed();
        let r = self.dispatch(
            &split,
            reqs.len(),
            "generating",
            |idx| Job::Generate(idx.iter().map(|&i| reqs[i].clone()).collect()),
            |o| match o {
                Outcome::Generations(r) => Some(r),
                _ => None,
            },
        );
        self.last = Some(split);
        self.time.tokenize += Seconds(weighed.as_secs_f64());
        self.time.compute += Seconds((t.elapsed() - weighed).as_secs_f64());
        r
    }

    /// The sum over replicas, when every replica counts them.
    fn forward_passes(&self) -> Option<u64> {
        sum(self.workers.iter().map(|w| w.stats.forward_passes))
    }

    /// The sum over replicas, when every replica counts them.
    fn truncated_requests(&self) -> Option<u64> {
        sum(self.workers.iter().map(|w| w.stats.truncated_requests))
    }

    /// Replica 0's limits times the number of replicas (each replica gets about its own limit).
    fn batch_hint(&self) -> Option<BatchHint> {
        self.hint
    }

    /// Wall-clock time inside this wrapper's calls: `tokenize` is the weighing (on the caller's
    /// thread), `compute` the rest (the replicas run concurrently; their own times are in
    /// [`DataParallel::replicas`]).
    fn engine_time(&self) -> Option<EngineTime> {
        Some(self.time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lreq(ctx: &str, cont: &str) -> LoglikelihoodRequest {
        LoglikelihoodRequest::new(ctx, cont)
    }

    #[test]
    fn same_context_stays_together_and_loads_balance() {
        // 12 documents of 4 choices, contexts of different lengths.
        let mut reqs = Vec::new();
        for d in 0..12 {
            for c in 0..4 {
                reqs.push(lreq(&"w ".repeat(5 + 7 * d), &" x".repeat(1 + c)));
            }
        }
        let lens: Vec<(u64, u64)> =
            reqs.iter().map(|r| (r.context.len() as u64, r.continuation.len() as u64)).collect();
        for n in 1..=4 {
            let s = split_scoring(&reqs, &lens, n);
            assert_eq!(s.shares.len(), n);
            let mut all: Vec<usize> = s.shares.iter().flat_map(|x| x.requests.clone()).collect();
            all.sort_unstable();
            assert_eq!(all, (0..reqs.len()).collect::<Vec<_>>(), "every request once");
            for sh in &s.shares {
                for &i in &sh.requests {
                    // The whole document is on this replica.
                    for j in 4 * (i / 4)..4 * (i / 4) + 4 {
                        assert!(sh.requests.contains(&j));
                    }
                }
                assert!(sh.requests.windows(2).all(|w| w[0] < w[1]), "request order kept");
            }
            let total: u64 = s.shares.iter().map(|x| x.load).sum();
            let want: u64 =
                (0..12).map(|d| (10 + 14 * d) as u64 + (2 + 4 + 6 + 8) as u64).sum::<u64>();
            assert_eq!(total, want, "context once per document");
            // LPT: the largest share is at most the mean plus the largest group.
            let biggest = (10 + 14 * 11 + 20) as u64;
            let max = s.shares.iter().map(|x| x.load).max().unwrap();
            assert!(max * n as u64 <= total + n as u64 * biggest, "{s:?}");
            if n == 2 {
                assert!(s.imbalance() < 1.03, "{}", s.imbalance());
            }
        }
        assert_eq!(Split::default().imbalance(), 1.0);
    }

    #[test]
    fn generation_is_split_by_prompt() {
        let reqs: Vec<GenerateRequest> =
            (0..7).map(|i| GenerateRequest::new("p".repeat(i), vec![]).max_gen_toks(10)).collect();
        let s = split_generation(&reqs, &[0, 1, 2, 3, 4, 5, 6], 3);
        let counts: Vec<usize> = s.shares.iter().map(|x| x.requests.len()).collect();
        assert_eq!(counts.iter().sum::<usize>(), 7);
        assert!(counts.iter().all(|&c| (2..=3).contains(&c)), "{counts:?}");
        assert_eq!(s.shares.iter().map(|x| x.load).sum::<u64>(), 21 + 70);
    }
}
