//! Scoring passes, host side (no CUDA): which inputs a log-likelihood call runs, which of them
//! share a context, and how they are packed into forward passes.
//!
//! lm-eval semantics: input = the last `max_length + 1` tokens of `ctx ++ cont` minus the last;
//! identical inputs run once; longest first. Shared contexts: inputs whose unscored head
//! (everything before the first scored position, ≥ 2 tokens) is identical run that head once,
//! in the same pass as every member's scored tail ([`plan_items`]). Passes are packed without
//! padding up to `batch_tokens` tokens.

use std::collections::HashMap;
use std::ops::Range;

use super::error::{GpuError, Result};
use super::model::PackedSeq;
use crate::engine::TokenPair;

/// A work item: `(head, members)` — `head = 0`: one input run whole; `head > 0`: a shared
/// context of `head` tokens run once before the members' tails.
pub(crate) type Item = (usize, Vec<usize>);

/// A scoring call's plan.
#[derive(Clone, Debug, Default)]
pub(crate) struct ScorePlan {
    /// Distinct inputs and the scored positions each needs (the longest continuation among the
    /// requests that share it).
    pub(crate) uniq: Vec<(Vec<u32>, usize)>,
    /// Per request: its index into `uniq`.
    pub(crate) member: Vec<usize>,
    /// The requests of each input, `req_of[req_start[u]..req_start[u + 1]]`.
    req_start: Vec<usize>,
    req_of: Vec<usize>,
    /// Work items, longest first.
    pub(crate) items: Vec<Item>,
    /// Per forward pass: its range of `items`.
    pub(crate) passes: Vec<Range<usize>>,
    /// Tokens per pass at most (an item larger than that runs alone).
    #[cfg_attr(not(test), allow(dead_code))]
    batch_tokens: usize,
}

/// What a plan runs: forward passes, tokens through the model, scored positions.
#[cfg(test)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PlanCounts {
    pub(crate) passes: usize,
    pub(crate) tokens: usize,
    pub(crate) scored: usize,
    /// Inputs run after a shared head (members of items with `head > 0`).
    pub(crate) shared_inputs: usize,
}

/// One forward pass's sequences, ready for `GpuModel::score_packed`: a shared head (nothing
/// scored) before its members, whose own tokens are exactly their scored positions; unshared
/// inputs whole.
#[derive(Debug, Default)]
pub(crate) struct PassInput<'a> {
    pub(crate) seqs: Vec<PackedSeq<'a>>,
    /// Scored positions per sequence (indices into its own tokens).
    pub(crate) pos: Vec<Vec<usize>>,
    /// Targets wanted at each scored position.
    pub(crate) targets: Vec<Vec<Vec<u32>>>,
    /// The input each sequence scores (`None`: a shared head).
    pub(crate) owner: Vec<Option<usize>>,
    /// Tokens through the model.
    pub(crate) tokens: usize,
    /// Scored positions.
    pub(crate) scored: usize,
}

/// FNV-1a over token ids: the key of the de-duplication map (equality is checked, so
/// collisions only cost a comparison).
fn token_hash(ids: &[u32]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &t in ids {
        h = (h ^ u64::from(t)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

impl ScorePlan {
    /// Plans `reqs` (token pairs) for passes of at most `batch_tokens` tokens (an item larger
    /// than that runs alone).
    ///
    /// # Errors
    /// An empty side, or a continuation longer than `max_len`.
    pub(crate) fn new(
        reqs: &[TokenPair],
        max_len: usize,
        share: bool,
        batch_tokens: usize,
    ) -> Result<Self> {
        let mut uniq: Vec<(Vec<u32>, usize)> = Vec::new();
        // Hash → first input with it; `next` chains inputs whose hashes collide.
        let mut first: HashMap<u64, usize> = HashMap::with_capacity(reqs.len());
        let mut next: Vec<usize> = Vec::new();
        let mut member = Vec::with_capacity(reqs.len());
        for (i, (ctx, cont)) in reqs.iter().enumerate() {
            let input =
                crate::engine::scored_input(i, ctx, cont, max_len).map_err(GpuError::invalid)?;
            let h = token_hash(&input);
            let mut found = None;
            let mut at = first.get(&h).copied();
            while let Some(u) = at {
                if uniq[u].0 == input {
                    found = Some(u);
                    break;
                }
                at = (next[u] != usize::MAX).then_some(next[u]);
            }
            let u = match found {
                Some(u) => u,
                None => {
                    let u = uniq.len();
                    next.push(first.insert(h, u).unwrap_or(usize::MAX));
                    uniq.push((input, 0));
                    u
                }
            };
            uniq[u].1 = uniq[u].1.max(cont.len());
            member.push(u);
        }
        // The requests of each input, grouped (counting sort).
        let mut req_start = vec![0usize; uniq.len() + 1];
        for &u in &member {
            req_start[u + 1] += 1;
        }
        for u in 0..uniq.len() {
            req_start[u + 1] += req_start[u];
        }
        let mut fill = req_start.clone();
        let mut req_of = vec![0usize; member.len()];
        for (i, &u) in member.iter().enumerate() {
            req_of[fill[u]] = i;
            fill[u] += 1;
        }
        let items = plan_items(&uniq, share, batch_tokens);
        let passes = pack(&items, batch_tokens, |it| item_tokens(&uniq, it));
        Ok(Self { uniq, member, req_start, req_of, items, passes, batch_tokens })
    }

    /// Tokens an item runs (its head once, then each member's tail; or the input whole).
    #[cfg(test)]
    pub(crate) fn item_tokens(&self, it: &Item) -> usize {
        item_tokens(&self.uniq, it)
    }

    /// Targets wanted at each of the first `n` of input `u`'s scored positions (its last
    /// `need` positions, `need` the longest continuation; when truncation left fewer input
    /// positions than continuation tokens, the first `n` lists are the ones that fit, as on the
    /// CPU).
    fn wanted(&self, reqs: &[TokenPair], u: usize, n: usize) -> Vec<Vec<u32>> {
        let need = self.uniq[u].1;
        let mut w: Vec<Vec<u32>> = vec![Vec::new(); n];
        for &r in &self.req_of[self.req_start[u]..self.req_start[u + 1]] {
            let cont = &reqs[r].1;
            for (j, &t) in cont.iter().enumerate() {
                if let Some(l) = w.get_mut(need - cont.len() + j)
                    && !l.contains(&t)
                {
                    l.push(t);
                }
            }
        }
        w
    }

    /// The sequences of pass `p` (`reqs`: the requests the plan was made from).
    pub(crate) fn pass_input<'a>(&'a self, reqs: &[TokenPair], p: usize) -> PassInput<'a> {
        let mut out = PassInput::default();
        for (head, us) in &self.items[self.passes[p].clone()] {
            let head = *head;
            let hi = out.seqs.len();
            if head > 0 {
                out.seqs.push(PackedSeq::new(&self.uniq[us[0]].0[..head]));
                out.pos.push(Vec::new());
                out.targets.push(Vec::new());
                out.owner.push(None);
                out.tokens += head;
            }
            for &u in us {
                let input = &self.uniq[u].0;
                let len = input.len();
                let need = self.uniq[u].1.min(len);
                if head > 0 {
                    out.seqs.push(PackedSeq::continuing(&input[head..], hi, head));
                    out.pos.push((len - need - head..len - head).collect());
                } else {
                    out.seqs.push(PackedSeq::new(input));
                    out.pos.push((len - need..len).collect());
                }
                out.tokens += len - head;
                out.targets.push(self.wanted(reqs, u, need));
                out.owner.push(Some(u));
                out.scored += need;
            }
        }
        out
    }

    /// [`ScorePlan::counts`] of the same inputs planned with sharing on or off.
    #[cfg(test)]
    pub(crate) fn counts_with(&self, share: bool) -> PlanCounts {
        let cap = self.batch_tokens;
        let mut p = self.clone();
        p.items = plan_items(&p.uniq, share, cap);
        p.passes = pack(&p.items, cap, |it| item_tokens(&p.uniq, it));
        p.counts()
    }

    /// Passes, tokens and scored positions of the whole plan.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> PlanCounts {
        let mut c = PlanCounts { passes: self.passes.len(), ..PlanCounts::default() };
        for it in &self.items {
            c.tokens += self.item_tokens(it);
            if it.0 > 0 {
                c.shared_inputs += it.1.len();
            }
            for &u in &it.1 {
                c.scored += self.uniq[u].1.min(self.uniq[u].0.len());
            }
        }
        c
    }
}

/// Runs `run(build(0)) … run(build(n − 1))` in order, building the next items on another
/// thread while `run` works (at most two built ahead): a GPU pass's host-side preparation
/// overlaps the previous pass instead of leaving the device idle. One item: no thread.
///
/// # Errors
/// The first error of `run` (later items are not run).
pub(crate) fn pipelined<T: Send, E>(
    n: usize,
    build: impl Fn(usize) -> T + Sync,
    mut run: impl FnMut(T) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    if n <= 1 {
        return (0..n).try_for_each(|i| run(build(i)));
    }
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<T>(2);
        let build = &build;
        s.spawn(move || {
            for i in 0..n {
                if tx.send(build(i)).is_err() {
                    break; // the consumer stopped (an error): build no more
                }
            }
        });
        rx.into_iter().try_for_each(&mut run)
    })
}

fn item_tokens(uniq: &[(Vec<u32>, usize)], it: &Item) -> usize {
    match it.0 {
        0 => uniq[it.1[0]].0.len(),
        head => head + it.1.iter().map(|&u| uniq[u].0.len() - head).sum::<usize>(),
    }
}

/// Consecutive items packed into passes of at most `cap` tokens (an item larger than `cap`
/// alone in its pass).
fn pack(items: &[Item], cap: usize, tokens: impl Fn(&Item) -> usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut b = 0;
    while b < items.len() {
        let mut e = b;
        let mut t = 0;
        while e < items.len() && (e == b || t + tokens(&items[e]) <= cap) {
            t += tokens(&items[e]);
            e += 1;
        }
        out.push(b..e);
        b = e;
    }
    out
}

/// Work items of a scoring call, in lm-eval's order (longest input first): `(head, members)`
/// with `head = 0` for one input run whole, or `head > 0` for a shared context — inputs
/// whose unscored head (everything before the first scored position, ≥ 2 tokens) is
/// identical run that head once in the same pass as their scored tails
/// (`share`: `EngineOptions::share_prefixes`, on by default). A group whose head and tails
/// exceed `batch_tokens` is split into items that fit (the head once per item); an input whose
/// head and tail alone exceed it runs whole, unshared.
pub(crate) fn plan_items(
    uniq: &[(Vec<u32>, usize)],
    share: bool,
    batch_tokens: usize,
) -> Vec<Item> {
    let cap = batch_tokens.max(1);
    let mut groups: Vec<Item> = Vec::new();
    let mut by_head: HashMap<&[u32], usize> = HashMap::new();
    for (u, (input, need)) in uniq.iter().enumerate() {
        let p = input.len() - (*need).min(input.len());
        if share && p >= 2 {
            if let Some(&g) = by_head.get(&input[..p]) {
                groups[g].1.push(u);
                continue;
            }
            by_head.insert(&input[..p], groups.len());
        }
        groups.push((p, vec![u]));
    }
    let mut items: Vec<Item> = Vec::new();
    for (p, mut us) in groups {
        if us.len() < 2 {
            items.push((0, us));
            continue;
        }
        us.sort_by(|&a, &b| {
            uniq[b].0.len().cmp(&uniq[a].0.len()).then_with(|| uniq[a].0.cmp(&uniq[b].0))
        });
        let mut cur: Vec<usize> = Vec::new();
        let mut tokens = p;
        let flush = |cur: &mut Vec<usize>, items: &mut Vec<Item>| match cur.len() {
            0 => {}
            1 => items.push((0, std::mem::take(cur))),
            _ => items.push((p, std::mem::take(cur))),
        };
        for u in us {
            let tail = uniq[u].0.len() - p;
            if p + tail > cap {
                items.push((0, vec![u]));
                continue;
            }
            if !cur.is_empty() && tokens + tail > cap {
                flush(&mut cur, &mut items);
                tokens = p;
            }
            cur.push(u);
            tokens += tail;
        }
        flush(&mut cur, &mut items);
    }
    let first = |it: &Item| it.1[0];
    items.sort_by(|a, b| {
        let (ua, ub) = (first(a), first(b));
        uniq[ub].0.len().cmp(&uniq[ua].0.len()).then_with(|| uniq[ua].0.cmp(&uniq[ub].0))
    });
    items
}

#[cfg(test)]
mod tests {
    use super::{ScorePlan, plan_items};

    fn input(head: &[u32], tail: usize) -> (Vec<u32>, usize) {
        let mut v = head.to_vec();
        v.extend((0..tail as u32).map(|i| 1000 + i));
        (v, tail)
    }

    #[test]
    fn groups_share_heads_split_to_fit_and_fall_back() {
        let (h1, h2) = ([1u32, 2, 3, 4, 5, 6], [7u32, 8]);
        let uniq = vec![
            input(&h1, 3),
            input(&h1, 2),
            input(&h2, 4),
            input(&h1, 5),
            input(&h2, 1),
            input(&[9], 2), // head of 1 token: never shared
            input(&[9], 3),
        ];
        // Sharing off: every input alone, longest first.
        let off = plan_items(&uniq, false, 100);
        assert!(off.iter().all(|(h, us)| *h == 0 && us.len() == 1));
        let lens: Vec<usize> = off.iter().map(|(_, us)| uniq[us[0]].0.len()).collect();
        assert!(lens.windows(2).all(|w| w[0] >= w[1]), "{lens:?}");
        // Sharing on, room for everything: one item per head of ≥ 2 tokens.
        let on = plan_items(&uniq, true, 100);
        assert_eq!(on.len(), 4, "{on:?}");
        assert!(on.contains(&(6, vec![3, 0, 1])), "{on:?}");
        assert!(on.contains(&(2, vec![2, 4])), "{on:?}");
        // 12 tokens per pass: h1's group (6 + 5 + 3 + 2) splits into 6+5 alone (unshared, one
        // member) and 6+3+2; every input appears exactly once.
        let small = plan_items(&uniq, true, 12);
        let mut seen: Vec<usize> = small.iter().flat_map(|(_, us)| us.clone()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..uniq.len()).collect::<Vec<_>>());
        assert!(small.contains(&(6, vec![0, 1])), "{small:?}");
        assert!(small.contains(&(0, vec![3])), "{small:?}");
        for (h, us) in &small {
            if *h > 0 {
                let t: usize = h + us.iter().map(|&u| uniq[u].0.len() - h).sum::<usize>();
                assert!(t <= 12 && us.len() >= 2);
            }
        }
        // A head and tail larger than a pass: that input runs whole, unshared.
        let tiny = plan_items(&uniq, true, 8);
        assert!(tiny.contains(&(0, vec![3])) && tiny.contains(&(0, vec![0])), "{tiny:?}");
    }

    /// Requests with shared contexts, an input shared by two requests (single-token
    /// continuations of one context: one input, two targets at its last position), identical
    /// requests, a context of one token (never shared) and a truncated input.
    fn toy_requests() -> Vec<crate::engine::TokenPair> {
        let mut r = Vec::new();
        for d in 0..40u32 {
            let ctx: Vec<u32> = (0..(5 + d % 7)).map(|i| 100 * d + i).collect();
            for e in 0..4u32 {
                r.push((ctx.clone(), (0..(1 + (d + e) % 5)).map(|i| 9000 + 10 * e + i).collect()));
            }
            r.push((ctx.clone(), vec![7000]));
            r.push((ctx.clone(), vec![7001]));
            r.push((ctx, vec![7001]));
        }
        r.push((vec![1], vec![2, 3]));
        r.push((vec![1], vec![2, 4, 5]));
        r.push(((0..30).collect(), vec![40, 41, 42]));
        r
    }

    /// An input's tokens as a pass rebuilds them, and the targets wanted at each position.
    type Seen = (Vec<u32>, Vec<Vec<u32>>);

    /// Every request's continuation is scored exactly where it lies in its input, once, in the
    /// passes `pass_input` builds, with or without sharing, at any pass size; passes respect
    /// the token budget unless an item alone exceeds it.
    #[test]
    fn pass_inputs_score_every_request_where_its_continuation_lies() {
        let reqs = toy_requests();
        let max_len = 20;
        for share in [true, false] {
            for cap in [8, 24, 100, 100_000] {
                let plan = ScorePlan::new(&reqs, max_len, share, cap).unwrap();
                // Input u's whole tokens as the pass rebuilds them, and its scored targets.
                let mut seen: Vec<Option<Seen>> = vec![None; plan.uniq.len()];
                let mut tokens = 0;
                for p in 0..plan.passes.len() {
                    let pass = plan.pass_input(&reqs, p);
                    assert!(pass.tokens <= cap || plan.passes[p].len() == 1, "cap {cap}");
                    tokens += pass.tokens;
                    let n: usize = pass.seqs.iter().map(|s| s.tokens.len()).sum();
                    assert_eq!(n, pass.tokens);
                    for (k, seq) in pass.seqs.iter().enumerate() {
                        let Some(u) = pass.owner[k] else {
                            assert!(pass.pos[k].is_empty() && pass.targets[k].is_empty());
                            continue;
                        };
                        let mut whole = match seq.prefix {
                            Some((i, n)) => pass.seqs[i].tokens[..n].to_vec(),
                            None => Vec::new(),
                        };
                        let off = whole.len();
                        whole.extend_from_slice(seq.tokens);
                        assert_eq!(whole, plan.uniq[u].0);
                        assert!(seen[u].is_none(), "input {u} scored twice");
                        // The target at whole-input position q predicts token q + 1.
                        let mut by_pos = vec![Vec::new(); whole.len()];
                        for (j, &q) in pass.pos[k].iter().enumerate() {
                            by_pos[off + q] = pass.targets[k][j].clone();
                        }
                        seen[u] = Some((whole, by_pos));
                    }
                }
                assert_eq!(plan.counts().tokens, tokens);
                for (i, (ctx, cont)) in reqs.iter().enumerate() {
                    let (input, by_pos) = seen[plan.member[i]].as_ref().expect("input scored");
                    let full: Vec<u32> = ctx.iter().chain(cont).copied().collect();
                    // The input is the last max_len + 1 tokens minus the last.
                    let start = full.len().saturating_sub(max_len + 1);
                    assert_eq!(input[..], full[start..full.len() - 1]);
                    for (j, &t) in cont.iter().enumerate() {
                        let q = full.len() - cont.len() + j - 1 - start;
                        assert!(by_pos[q].contains(&t), "request {i} token {j}");
                    }
                }
                {
                    // The two single-token continuations of one context: one input, two targets.
                    let n = reqs.len();
                    assert_eq!(plan.member[n - 6], plan.member[n - 5]);
                    assert_eq!(plan.member[n - 5], plan.member[n - 4], "identical requests");
                }
            }
        }
    }

    /// The next pass is built while the current one runs (the old loop built each pass after
    /// the previous one had finished, leaving the device idle meanwhile); results come in order;
    /// an error stops the passes.
    #[test]
    fn passes_are_built_while_the_previous_one_runs() {
        use std::sync::Mutex;
        use std::time::{Duration, Instant};
        let t0 = Instant::now();
        let built: Mutex<Vec<(usize, Duration)>> = Mutex::new(Vec::new());
        let mut ran: Vec<(usize, Duration, Duration)> = Vec::new();
        super::pipelined(
            5,
            |i| {
                built.lock().unwrap().push((i, t0.elapsed()));
                i
            },
            |i| {
                let start = t0.elapsed();
                std::thread::sleep(Duration::from_millis(30));
                ran.push((i, start, t0.elapsed()));
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        assert_eq!(ran.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        let built = built.into_inner().unwrap();
        for w in ran.windows(2) {
            let (i, _, end) = w[0];
            let next = built.iter().find(|b| b.0 == i + 1).unwrap().1;
            assert!(next < end, "pass {} built after pass {i} ended", i + 1);
        }
        let mut calls = 0;
        let r = super::pipelined(
            100,
            |i| i,
            |i| {
                calls += 1;
                if i == 3 { Err(i) } else { Ok(()) }
            },
        );
        assert_eq!((r, calls), (Err(3), 4));
        assert_eq!(super::pipelined(0, |i| i, |_| Err::<(), ()>(())), Ok(()));
    }

    /// The study's HellaSwag request stream (the evaluator's prepared plan, encoded as the GPU
    /// engine encodes it), or `None` with a printed reason when the data or model is absent.
    fn real_pairs(spec: &str, limit: Option<usize>) -> Option<Vec<crate::engine::TokenPair>> {
        use eai_eval::{Evaluator, Limit, Suite, TaskOptions};
        let Some(root) = eai_eval::data::shared_data_dir() else {
            eprintln!("SKIP: ../shared/data not found");
            return None;
        };
        let cache = crate::cache_dir(
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache"),
        );
        let Ok(Some(gguf)) = crate::find_smollm2(&cache) else {
            eprintln!("SKIP: SmolLM2 GGUF not in {}", cache.display());
            return None;
        };
        let tok = crate::Tokenizer::from_gguf(&crate::GgufFile::open(&gguf).unwrap()).unwrap();
        let opts = TaskOptions { limit: limit.map(Limit::Count), ..TaskOptions::default() };
        let suite = Suite::load_spec(&root, spec, &opts).unwrap();
        let plan = Evaluator::new().prepare(&suite).unwrap();
        let reqs: Vec<_> = plan.loglikelihood_requests().cloned().collect();
        let cache = crate::TokenCache::new();
        Some(crate::tokens::encode_requests(&cache, &tok, &reqs, 8192, "test").unwrap().0)
    }

    /// Full HellaSwag through the study's path (the evaluator's plan, the engine's encoding):
    /// every request runs after its document's shared context, each document's endings in one
    /// item, passes nearly full; prints the counts against the bench's subset (the first 1,000
    /// documents) and the host-side cost of planning and building the passes.
    #[test]
    fn real_hellaswag_shares_every_context_and_fills_passes() {
        use std::time::Instant;
        for limit in [Some(1000), None] {
            let Some(pairs) = real_pairs("hellaswag", limit) else { return };
            let t = Instant::now();
            let plan = ScorePlan::new(&pairs, 8192, true, 8192).unwrap();
            let planned = t.elapsed();
            let t = Instant::now();
            let mut tokens = 0;
            for p in 0..plan.passes.len() {
                let pass = plan.pass_input(&pairs, p);
                assert!(pass.tokens <= 8192);
                tokens += pass.tokens;
            }
            let built = t.elapsed();
            let c = plan.counts();
            assert_eq!(c.tokens, tokens);
            let docs = pairs.len() / 4;
            eprintln!(
                "hellaswag {limit:?}: {} requests, {docs} docs, {c:?}, {:.1} % of {} × 8192 \
                 tokens; plan {planned:?}, passes built {built:?} (this machine, test profile)",
                pairs.len(),
                100.0 * c.tokens as f64 / (c.passes * 8192) as f64,
                c.passes
            );
            assert_eq!(c.shared_inputs, pairs.len(), "every ending after a shared context");
            let groups = plan.items.iter().filter(|(h, _)| *h > 0).count();
            eprintln!("  {groups} shared items ({} items in all)", plan.items.len());
            assert!(groups <= docs + docs / 100, "{groups} shared items for {docs} documents");
            // Passes are full but for the item that did not fit and the last pass.
            assert!(c.tokens as f64 >= 0.97 * (c.passes * 8192) as f64 - 8192.0, "{c:?}");
            let unshared = plan.counts_with(false);
            assert!(unshared.tokens > c.tokens * 17 / 10, "{unshared:?} vs {c:?}");
        }
    }
}
