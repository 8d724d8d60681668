//! Greedy generation with continuous batching (the host-side schedule is
//! [`crate::cuda::schedule`]): packed prefills mixed with decode steps, the small decode steps
//! replayed from a CUDA graph where they run only the model's own kernels.

use cudarc::driver::{DevicePtr, sys as ds};

use super::{DecodeGraph, GpuModel, GpuScheme, GraphKey, RowPlan, W8A16_GEMV_MAX_M, bucket_rows};
use crate::cuda::error::{GpuError, Result};

impl GpuModel {
    /// Greedy decoding of a group of prompts, all decoded together: one packed prefill, then
    /// one decode step per token for the sequences still running. `stop(i, generated)` is asked
    /// after every accepted token. Returns the generated ids per prompt (EOS excluded) and the
    /// number of forward passes and processed tokens.
    ///
    /// # Errors
    /// Empty prompts, invalid ids, [`GpuError::OutOfMemory`] (the KV cache for the group is
    /// allocated up front), CUDA errors.
    pub fn generate_greedy(
        &mut self,
        prompts: &[&[u32]],
        max_new: &[usize],
        eos: &[u32],
        argmax_limit: usize,
        stop: impl FnMut(usize, &[u32]) -> bool,
    ) -> Result<(Vec<Vec<u32>>, u64, u64)> {
        self.generate_continuous(
            prompts,
            max_new,
            eos,
            argmax_limit,
            (prompts.len(), usize::MAX),
            stop,
        )
    }

    /// Greedy decoding with continuous batching ([`super::super::schedule`]): up to `slots`
    /// sequences decode together, each with cache slots for its prompt and `max_new` tokens;
    /// a finished sequence's slots go to the next waiting prompt, prefilled in the same forward
    /// pass as the others' next tokens (a pass admits prompts while its rows stay within
    /// `row_budget`, at least one). Each row reads only its own sequence's cache slots, so the
    /// ids equal one-at-a-time greedy decoding up to the rounding of kernels chosen by row
    /// count. `stop(i, generated)` is asked after every accepted token of prompt `i`. Returns
    /// the generated ids per prompt (EOS excluded) and the number of forward passes and
    /// processed tokens.
    ///
    /// # Errors
    /// Empty prompts, invalid ids, [`GpuError::OutOfMemory`] (the KV cache for `slots`
    /// sequences is allocated up front), CUDA errors.
    pub fn generate_continuous(
        &mut self,
        prompts: &[&[u32]],
        max_new: &[usize],
        eos: &[u32],
        argmax_limit: usize,
        (slots, row_budget): (usize, usize),
        stop: impl FnMut(usize, &[u32]) -> bool,
    ) -> Result<(Vec<Vec<u32>>, u64, u64)> {
        if max_new.len() != prompts.len() {
            return Err(GpuError::invalid("one max_new per prompt"));
        }
        if prompts.iter().any(|p| p.is_empty()) {
            return Err(GpuError::invalid("empty prompt"));
        }
        let running = (0..prompts.len()).filter(|&i| max_new[i] > 0);
        let cap = running.clone().map(|i| prompts[i].len() + max_new[i]).max().unwrap_or(0);
        let slots = slots.clamp(1, running.count().max(1));
        if cap > 0 {
            self.ensure_kv(slots.saturating_mul(cap))?;
        }
        let out = crate::cuda::schedule::run(
            prompts,
            max_new,
            eos,
            (slots, cap, row_budget.max(1)),
            GpuError::invalid,
            |pass| self.run_pass(pass, argmax_limit),
            stop,
        )?;
        Ok((out.generated, out.passes, out.processed))
    }

    /// One generation pass: the decode steps of ≤ 4 rows replay a CUDA graph where eligible,
    /// everything else runs eagerly (rows padded to [`bucket_rows`]).
    fn run_pass(
        &mut self,
        pass: &crate::cuda::schedule::Pass,
        argmax_limit: usize,
    ) -> Result<Vec<u32>> {
        let n = pass.ids.len();
        let graph = !pass.prefill && self.graph_on && self.graph_eligible(n);
        let m = if graph { n } else { bucket_rows(n) };
        // Prefill passes of more rows than the fused decode layers take run the tiled scoring
        // attention (descriptors of no shared prefix): a prompt's consecutive rows share each
        // staged chunk of keys, where the generation kernel reads them per (row, head) — the
        // 5-shot GSM8K prompts are ~850 tokens (issue 14).
        let tiled = pass.prefill && self.tiled_attention && !self.fused_fits(m);
        let mut plan = RowPlan {
            ids: pass.ids.clone(),
            seq: pass.seq.clone(),
            pos: pass.pos.clone(),
            seq_off: pass.seq_off.clone(),
            pre: if tiled { vec![0; 2 * pass.seq_off.len()] } else { Vec::new() },
            real: n,
        };
        plan.ids.resize(m, 0);
        plan.seq.resize(m, -1);
        plan.pos.resize(m, 0);
        if graph {
            // Every row is a sequence's last (decode step): the graph takes the argmax at each.
            self.step_graph(&plan, argmax_limit)
        } else {
            self.step(&plan, &pass.pick, argmax_limit)
        }
    }

    /// One forward pass of `plan` (rows = plan length) and the argmax at rows `pick`.
    fn step(&mut self, plan: &RowPlan, pick: &[u32], argmax_limit: usize) -> Result<Vec<u32>> {
        let mut sc = self.take_scratch(plan.ids.len())?;
        let kv = self.kv.take();
        let res = match &kv {
            Some(kvb) => self.forward(&mut sc, plan, kvb, self.kv_tokens),
            None => Err(GpuError::invalid("KV cache missing")),
        };
        self.kv = kv;
        let res = res.and_then(|()| {
            let tg = vec![Vec::new(); pick.len()];
            self.head(&sc.x, pick, &tg, argmax_limit, false)
        });
        self.put_scratch(sc);
        Ok(res?.0.into_iter().map(|r| r.argmax).collect())
    }

    /// Whether a decode step of `m` rows runs on the model's own kernels only (decode GEMV for
    /// every linear layer and the LM head, no cuBLAS / eai-quant call), so it can be captured.
    fn graph_eligible(&self, m: usize) -> bool {
        let c = &self.cfg;
        let ks = [c.hidden, c.n_heads * c.head_dim, c.ffn];
        let layers_ok = match self.scheme {
            GpuScheme::Fp32 | GpuScheme::Fp16 | GpuScheme::Bf16 => {
                ks.iter().all(|&k| self.gemv_fits(self.scheme.float_type(), m, k))
            }
            GpuScheme::W8A16 => {
                self.gemv && m <= W8A16_GEMV_MAX_M && ks.iter().all(|k| k.is_multiple_of(16))
            }
            GpuScheme::W8A8 | GpuScheme::Dynamic => false,
        };
        let head_ty = self.head.as_ref().unwrap_or(&self.embed).ty();
        // The int8 head: its GEMV takes any row count (h % 16 checked at load).
        layers_ok && (self.head_i8.is_some() || self.gemv_fits(head_ty, m, c.hidden))
    }

    /// One decode step of `plan` (`m` rows, the argmax taken at every row) replayed from a
    /// CUDA graph, captured first when none fits (new row count, argmax limit or KV cache).
    fn step_graph(&mut self, plan: &RowPlan, argmax_limit: usize) -> Result<Vec<u32>> {
        let m = plan.ids.len();
        let Some(kv) = self.kv.as_ref() else {
            return Err(GpuError::invalid("KV cache missing"));
        };
        let key = GraphKey {
            m,
            argmax_limit,
            kv_ptr: kv.device_ptr(&self.stream).0,
            kv_tokens: self.kv_tokens,
        };
        if self.graph.as_ref().is_none_or(|g| g.key != key) {
            self.graph = None;
            self.graph = Some(self.capture_step(key)?);
        }
        let Some(mut g) = self.graph.take() else {
            return Err(GpuError::invalid("decode graph missing"));
        };
        let res = self.upload_plan(&mut g.sc, plan, key.kv_tokens).and_then(|()| {
            g.graph
                .launch()
                .map_err(|e| GpuError::driver("cuGraphLaunch", self.ordinal(), "decode step", e))?;
            self.download(&g.hs.amax, m, "argmax")
        });
        self.graph = Some(g);
        res
    }

    /// Captures one decode step of `key.m` rows into a CUDA graph with buffers of its own.
    fn capture_step(&self, key: GraphKey) -> Result<DecodeGraph> {
        let Some(kv) = self.kv.as_ref() else {
            return Err(GpuError::invalid("KV cache missing"));
        };
        let ord = self.ordinal();
        let mut sc = self.new_scratch(key.m)?;
        let mut hs = self.new_head_scratch(key.m, 1)?;
        let rows: Vec<u32> = (0..key.m as u32).collect();
        self.upload_into(&rows, &mut hs.idx, "LM-head row indices")?;
        self.stream
            .synchronize()
            .map_err(|e| GpuError::driver("cuStreamSynchronize", ord, "decode graph", e))?;
        let (h, v) = (self.cfg.hidden, self.cfg.vocab);
        let lim32 = key.argmax_limit.min(v) as u32;
        self.stream
            .begin_capture(ds::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(|e| GpuError::driver("cuStreamBeginCapture", ord, "decode graph", e))?;
        let work = self
            .enqueue_forward(&mut sc, kv, key.kv_tokens, key.m)
            .and_then(|()| self.head_enqueue(&hs, &sc.x, key.m, (h, v), lim32, true));
        // Always end the capture, also after a failed launch, so the stream stays usable.
        let graph = self.stream.end_capture(ds::CUgraphInstantiate_flags(0));
        work?;
        match graph {
            Ok(Some(graph)) => Ok(DecodeGraph { key, sc, hs, graph }),
            Ok(None) => Err(GpuError::invalid("decode graph capture recorded nothing")),
            Err(e) => Err(GpuError::driver("cuStreamEndCapture", ord, "decode graph", e)),
        }
    }
}
