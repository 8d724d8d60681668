//! Scoring passes: packed sequences (with shared prefixes) scored at chosen positions, and
//! full logits for checks against the CPU reference.

use super::{GpuModel, PackedSeq, RowPlan, RowScore, bucket_rows};
use crate::cuda::error::{GpuError, Result};

impl GpuModel {
    /// Scores a packed batch of independent sequences (each from position 0): for each
    /// sequence, the positions `score[s]` (indices into that sequence) get a [`RowScore`]
    /// with the logits of `targets[s][j]`. One forward pass; only scored positions reach the
    /// LM head.
    ///
    /// # Errors
    /// Invalid token ids or positions, [`GpuError::OutOfMemory`], CUDA errors.
    pub fn score_batch(
        &mut self,
        seqs: &[&[u32]],
        score: &[Vec<usize>],
        targets: &[Vec<Vec<u32>>],
    ) -> Result<Vec<Vec<RowScore>>> {
        let packed: Vec<PackedSeq<'_>> = seqs.iter().map(|s| PackedSeq::new(s)).collect();
        self.score_packed(&packed, score, targets)
    }

    /// [`GpuModel::score_batch`] with shared prefixes: a sequence with
    /// [`PackedSeq::prefix`] `Some((i, n))` continues the first `n` tokens of sequence `i` of
    /// the same pass (run once, attended to by every continuation). `score[s]` indexes the
    /// sequence's own tokens. Results equal running each continuation's whole input (prefix
    /// and own tokens) as a sequence of its own, up to float rounding.
    ///
    /// # Errors
    /// A prefix that is not an earlier, unprefixed sequence at least `n` tokens long; as
    /// [`GpuModel::score_batch`].
    pub fn score_packed(
        &mut self,
        seqs: &[PackedSeq<'_>],
        score: &[Vec<usize>],
        targets: &[Vec<Vec<u32>>],
    ) -> Result<Vec<Vec<RowScore>>> {
        if score.len() != seqs.len() || targets.len() != seqs.len() {
            return Err(GpuError::invalid(
                "score_batch: one position list and target list per sequence",
            ));
        }
        let total: usize = seqs.iter().map(|s| s.tokens.len()).sum();
        if total == 0 {
            return Ok(vec![Vec::new(); seqs.len()]);
        }
        let m = bucket_rows(total);
        let mut plan = RowPlan { real: total, ..Default::default() };
        let mut off = 0usize;
        for (si, s) in seqs.iter().enumerate() {
            let (poff, plen) = match s.prefix {
                None => (0, 0),
                Some((i, n)) => {
                    let ok = i < si
                        && seqs[i].prefix.is_none()
                        && n <= seqs[i].tokens.len()
                        && n <= u32::MAX as usize;
                    if !ok {
                        return Err(GpuError::invalid(format!(
                            "sequence {si}: prefix ({i}, {n}) is not the head of an earlier \
                             sequence without a prefix"
                        )));
                    }
                    (plan.seq_off[i], n)
                }
            };
            // Own tokens at slots off.., positions plen..: seq_off + position = slot.
            plan.seq_off.push((off - plen) as u32);
            plan.pre.extend([poff, plen as u32]);
            for (p, &t) in s.tokens.iter().enumerate() {
                plan.ids.push(t);
                plan.seq.push(si as i32);
                plan.pos.push((plen + p) as i32);
            }
            off += s.tokens.len();
        }
        plan.ids.resize(m, 0);
        plan.seq.resize(m, -1);
        plan.pos.resize(m, 0);
        self.ensure_kv(total)?;
        let mut sc = self.take_scratch(m)?;
        let kv = self.kv.take();
        let res = match &kv {
            Some(kvb) => self.forward(&mut sc, &plan, kvb, self.kv_tokens),
            None => Err(GpuError::invalid("KV cache missing")),
        };
        self.kv = kv;
        if let Err(e) = res {
            self.put_scratch(sc);
            return Err(e);
        }
        let mut idx = Vec::new();
        let mut tg = Vec::new();
        let mut base = 0usize;
        for (si, s) in seqs.iter().enumerate() {
            if score[si].len() != targets[si].len() {
                self.put_scratch(sc);
                return Err(GpuError::invalid(format!(
                    "sequence {si}: positions and targets differ in length"
                )));
            }
            for (j, &p) in score[si].iter().enumerate() {
                if p >= s.tokens.len() {
                    self.put_scratch(sc);
                    return Err(GpuError::invalid(format!(
                        "sequence {si}: position {p} beyond its {} tokens",
                        s.tokens.len()
                    )));
                }
                idx.push((base + p) as u32);
                tg.push(targets[si][j].clone());
            }
            base += s.tokens.len();
        }
        let vocab = self.cfg.vocab;
        let res = self.head(&sc.x, &idx, &tg, vocab, false);
        self.put_scratch(sc);
        let (scores, _) = res?;
        let mut out = Vec::with_capacity(seqs.len());
        let mut it = scores.into_iter();
        for sp in score {
            out.push(it.by_ref().take(sp.len()).collect());
        }
        Ok(out)
    }

    /// Logits `[position][vocab]` at every position of one sequence from scratch (for checks
    /// against the CPU reference), computed as a scoring pass.
    ///
    /// # Errors
    /// As [`GpuModel::score_batch`].
    pub fn logits_for(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        self.logits_pass(tokens, false)
    }

    /// As [`GpuModel::logits_for`], computed as a generation pass (the pass a greedy prompt
    /// prefill runs): sequences of at most [`GEMV_DENSE_MAX_M`] tokens take the fused decode
    /// layers when [`GpuOptions::fused_decode`] is on — for checking the fused kernels' logits
    /// (scoring passes never take them).
    ///
    /// # Errors
    /// As [`GpuModel::score_batch`].
    pub fn generation_logits_for(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        self.logits_pass(tokens, true)
    }

    fn logits_pass(&mut self, tokens: &[u32], generation: bool) -> Result<Vec<Vec<f32>>> {
        let n = tokens.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let m = bucket_rows(n);
        let mut plan = RowPlan {
            ids: tokens.to_vec(),
            seq: vec![0; n],
            pos: (0..n as i32).collect(),
            seq_off: vec![0],
            pre: if generation { Vec::new() } else { vec![0, 0] },
            real: n,
        };
        plan.ids.resize(m, 0);
        plan.seq.resize(m, -1);
        plan.pos.resize(m, 0);
        self.ensure_kv(n)?;
        let mut sc = self.take_scratch(m)?;
        let kv = self.kv.take();
        let res = match &kv {
            Some(kvb) => self.forward(&mut sc, &plan, kvb, self.kv_tokens),
            None => Err(GpuError::invalid("KV cache missing")),
        };
        self.kv = kv;
        let res = res.and_then(|()| {
            let idx: Vec<u32> = (0..n as u32).collect();
            let tg = vec![Vec::new(); n];
            let vocab = self.cfg.vocab;
            self.head(&sc.x, &idx, &tg, vocab, true)
        });
        self.put_scratch(sc);
        Ok(res?.1)
    }
}
