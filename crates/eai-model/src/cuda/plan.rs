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
    /// Per input, per scored position: the target tokens wanted there.
    pub(crate) wanted: Vec<Vec<Vec<u32>>>,
    /// Work items, longest first.
    pub(crate) items: Vec<Item>,
    /// Per forward pass: its range of `items`.
    pub(crate) passes: Vec<Range<usize>>,
}

/// What a plan runs: forward passes, tokens through the model, scored positions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PlanCounts {
    pub(crate) passes: usize,
    pub(crate) tokens: usize,
    pub(crate) scored: usize,
    /// Inputs run after a shared head (members of items with `head > 0`).
    pub(crate) shared_inputs: usize,
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
        let mut key: HashMap<Vec<u32>, usize> = HashMap::new();
        let mut member = Vec::with_capacity(reqs.len());
        for (i, (ctx, cont)) in reqs.iter().enumerate() {
            if ctx.is_empty() || cont.is_empty() {
                return Err(GpuError::invalid(format!(
                    "request {i}: empty context or continuation"
                )));
            }
            if cont.len() > max_len {
                return Err(GpuError::invalid(format!(
                    "request {i}: continuation of {} tokens exceeds max_length {max_len}",
                    cont.len()
                )));
            }
            let total = ctx.len() + cont.len();
            let start = total.saturating_sub(max_len + 1);
            let input: Vec<u32> = ctx
                .iter()
                .chain(cont.iter())
                .skip(start)
                .take(total - 1 - start)
                .copied()
                .collect();
            let u = *key.entry(input.clone()).or_insert_with(|| {
                uniq.push((input, 0));
                uniq.len() - 1
            });
            uniq[u].1 = uniq[u].1.max(cont.len());
            member.push(u);
        }
        // Targets wanted at each of the last `need` positions of each unique input.
        let mut wanted: Vec<Vec<Vec<u32>>> =
            uniq.iter().map(|(_, need)| vec![Vec::new(); *need]).collect();
        for (i, (_, cont)) in reqs.iter().enumerate() {
            let u = member[i];
            let need = uniq[u].1;
            for (j, &t) in cont.iter().enumerate() {
                let w = &mut wanted[u][need - cont.len() + j];
                if !w.contains(&t) {
                    w.push(t);
                }
            }
        }
        let items = plan_items(&uniq, share, batch_tokens);
        let passes = pack(&items, batch_tokens, |it| item_tokens(&uniq, it));
        Ok(Self { uniq, member, wanted, items, passes })
    }

    /// Tokens an item runs (its head once, then each member's tail; or the input whole).
    pub(crate) fn item_tokens(&self, it: &Item) -> usize {
        item_tokens(&self.uniq, it)
    }

    /// Passes, tokens and scored positions of the whole plan.
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
    use super::plan_items;

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
        let tok = crate::Tokenizer::from_gguf(&crate::GgufFile::open(&gguf).ok()?).ok()?;
        let opts = TaskOptions { limit: limit.map(Limit::Count), ..TaskOptions::default() };
        let suite = Suite::load_spec(&root, spec, &opts).ok()?;
        let plan = Evaluator::new().prepare(&suite).ok()?;
        let reqs: Vec<_> = plan.loglikelihood_requests().cloned().collect();
        let cache = crate::TokenCache::new();
        Some(crate::tokens::encode_requests(&cache, &tok, &reqs, 8192, "test").ok()?.0)
    }

    #[test]
    fn real_hellaswag_counts() {
        for limit in [Some(1000), None] {
            let Some(pairs) = real_pairs("hellaswag", limit) else { return };
            for share in [true, false] {
                let plan = super::ScorePlan::new(&pairs, 8192, share, 8192).unwrap();
                eprintln!(
                    "hellaswag {limit:?} share={share} requests={} {:?}",
                    pairs.len(),
                    plan.counts()
                );
            }
        }
    }
}
