//! Continuous batching for greedy generation, host side (no CUDA): which rows each forward pass
//! runs, and which KV-cache slots they use.
//!
//! Up to `slots` sequences decode together. Each owns a fixed range of `cap` cache slots
//! (slot `s` at `s·cap..`), so a pass can mix sequences at any position. When a sequence
//! finishes (EOS, `max_new` tokens or a stop condition), its slot goes to the next waiting
//! prompt, whose prompt is prefilled in the same forward pass as the others' next tokens — the
//! batch stays full until the prompts run out, instead of a group decoding on until its longest
//! member ends. Each row reads only its own sequence's tokens and cache slots, so the generated
//! ids are those of one-at-a-time greedy decoding (on the device, up to the float rounding of
//! kernels that are chosen by row count).

/// The rows of one forward pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pass {
    /// Token id per row.
    pub(crate) ids: Vec<u32>,
    /// Sequence of each row: an index into `seq_off` (the live sequences of this pass).
    pub(crate) seq: Vec<i32>,
    /// Position of each row in its sequence.
    pub(crate) pos: Vec<i32>,
    /// First cache slot of each live sequence (`slot·cap`).
    pub(crate) seq_off: Vec<u32>,
    /// Row whose next-token argmax each live sequence needs (its last row).
    pub(crate) pick: Vec<u32>,
    /// Whether any sequence is prefilled in this pass (more than one row per sequence).
    pub(crate) prefill: bool,
}

/// What a generation run did: generated ids per prompt (EOS excluded), forward passes, and
/// tokens run through the decoder.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) generated: Vec<Vec<u32>>,
    pub(crate) passes: u64,
    pub(crate) processed: u64,
}

/// A sequence being decoded.
struct Live {
    /// Prompt index.
    i: usize,
    /// Cache slot range index.
    slot: usize,
    /// Tokens already in the cache.
    pos: usize,
    /// Tokens this pass feeds (the prompt when admitted, then one token).
    feed: Vec<u32>,
    generated: Vec<u32>,
}

/// Runs greedy generation over `prompts` with `slots` sequences at a time, each with `cap`
/// cache slots (at least `prompt + max_new − 1` for every prompt). A pass admits waiting
/// prompts while its rows stay within `row_budget` (at least one prompt per pass when a slot is
/// free, whatever its length). `step(pass)` runs one forward pass and returns the argmax at
/// each of `pass.pick`; `stop(i, generated)` is asked after every accepted token of prompt `i`.
/// Prompts with `max_new == 0` or no tokens generate nothing and run no pass.
///
/// # Errors
/// `invalid(reason)` when `cap` is too small for a prompt or `step` answers the wrong number of
/// tokens; `step`'s errors.
pub(crate) fn run<E>(
    prompts: &[&[u32]],
    max_new: &[usize],
    eos: &[u32],
    (slots, cap, row_budget): (usize, usize, usize),
    invalid: impl Fn(String) -> E,
    mut step: impl FnMut(&Pass) -> Result<Vec<u32>, E>,
    mut stop: impl FnMut(usize, &[u32]) -> bool,
) -> Result<Outcome, E> {
    let mut out = Outcome { generated: vec![Vec::new(); prompts.len()], ..Outcome::default() };
    if max_new.len() != prompts.len() {
        return Err(invalid("one max_new per prompt".into()));
    }
    let mut queue = (0..prompts.len()).filter(|&i| max_new[i] > 0 && !prompts[i].is_empty());
    if let Some(i) = (0..prompts.len())
        .find(|&i| max_new[i] > 0 && prompts[i].len().saturating_add(max_new[i] - 1) > cap)
    {
        return Err(invalid(format!(
            "prompt {i}: {} tokens + {} new do not fit {cap} cache slots per sequence",
            prompts[i].len(),
            max_new[i]
        )));
    }
    if u32::try_from(slots.max(1).saturating_mul(cap)).is_err() {
        return Err(invalid(format!("{slots} sequences × {cap} cache slots exceed u32 slots")));
    }
    let slots = slots.max(1);
    let mut free: Vec<usize> = (0..slots).rev().collect();
    let mut live: Vec<Live> = Vec::with_capacity(slots);
    let mut waiting = queue.next();
    loop {
        let mut rows: usize = live.len();
        let mut admitted = false;
        while let Some(i) = waiting {
            let Some(&slot) = free.last() else { break };
            let len = prompts[i].len();
            if admitted && rows + len > row_budget {
                break;
            }
            free.pop();
            live.push(Live { i, slot, pos: 0, feed: prompts[i].to_vec(), generated: Vec::new() });
            rows += len;
            admitted = true;
            waiting = queue.next();
        }
        if live.is_empty() {
            break;
        }
        let mut pass = Pass { prefill: admitted, ..Pass::default() };
        for (k, l) in live.iter().enumerate() {
            pass.seq_off.push((l.slot * cap) as u32);
            for (j, &t) in l.feed.iter().enumerate() {
                pass.ids.push(t);
                pass.seq.push(k as i32);
                pass.pos.push((l.pos + j) as i32);
            }
            pass.pick.push((pass.ids.len() - 1) as u32);
        }
        let next = step(&pass)?;
        if next.len() != live.len() {
            return Err(invalid(format!("step answered {} tokens for {}", next.len(), live.len())));
        }
        out.passes += 1;
        out.processed += pass.ids.len() as u64;
        let mut done = vec![false; live.len()];
        for (k, l) in live.iter_mut().enumerate() {
            l.pos += l.feed.len();
            let t = next[k];
            done[k] = if eos.contains(&t) {
                true
            } else {
                l.generated.push(t);
                l.generated.len() >= max_new[l.i] || stop(l.i, &l.generated)
            };
            l.feed.clear();
            l.feed.push(t);
        }
        let mut k = 0;
        live.retain_mut(|l| {
            let d = done[k];
            k += 1;
            if d {
                free.push(l.slot);
                out.generated[l.i] = std::mem::take(&mut l.generated);
            }
            !d
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A deterministic toy "model": the next token is a hash of the sequence's tokens so far,
    /// read back from the cache slots the pass's rows wrote — so a row that used another
    /// sequence's slots, a wrong position or a stale slot gives a different answer.
    struct Toy {
        cache: HashMap<u32, u32>,
        vocab: u32,
    }

    impl Toy {
        fn next(&self, off: u32, upto: i32) -> u32 {
            let mut h = 0xcbf2_9ce4_8422_2325u64;
            for p in 0..=upto {
                let t = self.cache[&(off + p as u32)];
                h = (h ^ u64::from(t)).wrapping_mul(0x100_0000_01b3);
            }
            (h % u64::from(self.vocab)) as u32
        }

        fn step(&mut self, pass: &Pass) -> Vec<u32> {
            for r in 0..pass.ids.len() {
                let off = pass.seq_off[pass.seq[r] as usize];
                self.cache.insert(off + pass.pos[r] as u32, pass.ids[r]);
            }
            pass.pick
                .iter()
                .map(|&r| {
                    let r = r as usize;
                    self.next(pass.seq_off[pass.seq[r] as usize], pass.pos[r])
                })
                .collect()
        }
    }

    fn greedy(
        prompts: &[&[u32]],
        max_new: &[usize],
        shape: (usize, usize, usize),
        passes: &mut Vec<Pass>,
    ) -> Outcome {
        let mut toy = Toy { cache: HashMap::new(), vocab: 50 };
        run(
            prompts,
            max_new,
            &[7],
            shape,
            |e| e,
            |p| {
                passes.push(p.clone());
                Ok::<_, String>(toy.step(p))
            },
            |_, g| g.ends_with(&[3, 4]),
        )
        .unwrap()
    }

    #[test]
    fn continuous_batches_equal_one_at_a_time_and_refill_slots() {
        let ps: Vec<Vec<u32>> = (0..23u32)
            .map(|i| (0..(1 + (i * 7) % 13)).map(|j| (i * 31 + j * 17) % 50).collect())
            .collect();
        let prompts: Vec<&[u32]> = ps.iter().map(Vec::as_slice).collect();
        let max_new: Vec<usize> = (0..23).map(|i| [0, 1, 5, 40, 9][i % 5]).collect();
        let cap = 13 + 40;
        let mut one = Vec::new();
        let mut alone = Vec::new();
        for (p, &n) in prompts.iter().zip(&max_new) {
            let o = greedy(&[p], &[n], (1, cap, 1 << 20), &mut one);
            alone.push(o.generated[0].clone());
        }
        assert!(alone.iter().any(|g| g.len() == 40), "some sequence runs to max_new");
        assert!(alone.iter().any(|g| !g.is_empty() && g.len() < 5), "some stop early");
        for (slots, budget) in [(1, 1 << 20), (4, 1 << 20), (5, 8), (23, 1), (64, 30)] {
            let mut passes = Vec::new();
            let o = greedy(&prompts, &max_new, (slots, cap, budget), &mut passes);
            assert_eq!(o.generated, alone, "{slots} slots, budget {budget}");
            assert_eq!(o.passes as usize, passes.len());
            let rows: usize = passes.iter().map(|p| p.ids.len()).sum();
            assert_eq!(o.processed as usize, rows);
            for p in &passes {
                // At most `slots` sequences per pass, each slot range used once per pass.
                assert!(p.seq_off.len() <= slots);
                let mut offs = p.seq_off.clone();
                offs.sort_unstable();
                offs.dedup();
                assert_eq!(offs.len(), p.seq_off.len());
                assert!(p.seq_off.iter().all(|&o| o as usize + cap <= slots * cap));
                // Admissions respect the row budget beyond the first admitted prompt.
                let decode_rows = p.seq_off.len();
                if p.prefill && p.ids.len() > decode_rows + 13 {
                    assert!(p.ids.len() <= budget.max(decode_rows + 13), "{}", p.ids.len());
                }
            }
            if slots > 1 {
                // Refilling: some pass mixes a prefill with other sequences' decode rows.
                assert!(
                    passes
                        .iter()
                        .any(|p| p.prefill && p.pick.len() > 1 && p.ids.len() > p.pick.len()),
                    "{slots} slots"
                );
            }
        }
        // Fewer passes than groups that decode until their longest member ends.
        let mut cont = Vec::new();
        greedy(&prompts, &max_new, (4, cap, 1 << 20), &mut cont);
        let grouped: usize =
            alone.chunks(4).map(|g| g.iter().map(Vec::len).max().unwrap_or(0) + 1).sum();
        assert!(cont.len() < grouped, "{} passes vs {grouped}", cont.len());
    }

    #[test]
    fn too_small_a_cache_is_an_error() {
        let p: &[u32] = &[1, 2, 3];
        let r = run(&[p], &[5], &[], (1, 6, 64), |e| e, |_| Ok(vec![1]), |_, _| false);
        assert!(r.unwrap_err().contains("cache slots"));
        let r = run(&[p], &[4], &[], (1, 6, 64), |e| e, |_| Ok(vec![1]), |_, _| false);
        assert_eq!(r.unwrap().generated, vec![vec![1, 1, 1, 1]]);
        let r = run(&[p], &[4], &[], (1, 6, 64), |e| e, |_| Ok(vec![1, 1]), |_, _| false);
        assert!(r.unwrap_err().contains("answered"));
    }
}
