//! Greedy generation: a packed prefill, then decode steps for the whole group, replayed
//! from a CUDA graph where the step runs only the model's own kernels.

use cudarc::driver::{DevicePtr, sys as ds};

use super::{DecodeGraph, GpuModel, GpuScheme, GraphKey, RowPlan, W8A16_GEMV_MAX_M, bucket_rows};
use crate::cuda::error::{GpuError, Result};

impl GpuModel {
    /// Greedy decoding of a group of prompts: one packed prefill, then one decode step per
    /// token for the whole group (finished rows ride along as padding). `stop(i, generated)` is
    /// asked after every accepted token. Returns the generated ids per prompt (EOS excluded)
    /// and the number of forward passes and processed tokens.
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
        mut stop: impl FnMut(usize, &[u32]) -> bool,
    ) -> Result<(Vec<Vec<u32>>, u64, u64)> {
        let g = prompts.len();
        if max_new.len() != g {
            return Err(GpuError::invalid("one max_new per prompt"));
        }
        if prompts.iter().any(|p| p.is_empty()) {
            return Err(GpuError::invalid("empty prompt"));
        }
        let mut out = vec![Vec::new(); g];
        if g == 0 {
            return Ok((out, 0, 0));
        }
        let cap = prompts.iter().zip(max_new).map(|(p, &n)| p.len() + n).max().unwrap_or(1).max(1);
        self.ensure_kv(g * cap)?;
        // Prefill: sequence s at cache slots s·cap.
        let total: usize = prompts.iter().map(|p| p.len()).sum();
        let m = bucket_rows(total);
        let mut plan = RowPlan { real: total, ..Default::default() };
        let mut last = Vec::with_capacity(g);
        for (s, p) in prompts.iter().enumerate() {
            plan.seq_off.push((s * cap) as u32);
            for (i, &t) in p.iter().enumerate() {
                plan.ids.push(t);
                plan.seq.push(s as i32);
                plan.pos.push(i as i32);
            }
            last.push((plan.ids.len() - 1) as u32);
        }
        plan.ids.resize(m, 0);
        plan.seq.resize(m, -1);
        plan.pos.resize(m, 0);
        let mut passes = 1u64;
        let mut processed = total as u64;
        let next = self.step(&plan, &last, argmax_limit)?;
        let mut next: Vec<u32> = next;
        let mut len: Vec<usize> = prompts.iter().map(|p| p.len()).collect();
        let mut done: Vec<bool> = max_new.iter().map(|&n| n == 0).collect();
        loop {
            for a in 0..g {
                if done[a] {
                    continue;
                }
                if eos.contains(&next[a]) {
                    done[a] = true;
                    continue;
                }
                out[a].push(next[a]);
                if out[a].len() >= max_new[a] || stop(a, &out[a]) {
                    done[a] = true;
                }
            }
            let active = done.iter().filter(|d| !**d).count();
            if active == 0 {
                break;
            }
            let mut plan = RowPlan {
                seq_off: (0..g).map(|s| (s * cap) as u32).collect(),
                real: g,
                ..Default::default()
            };
            for a in 0..g {
                if done[a] {
                    plan.ids.push(0);
                    plan.seq.push(-1);
                    plan.pos.push(0);
                } else {
                    plan.ids.push(next[a]);
                    plan.seq.push(a as i32);
                    plan.pos.push(len[a] as i32);
                    len[a] += 1;
                }
            }
            next = if self.graph_on && self.graph_eligible(g) {
                self.step_graph(&plan, argmax_limit)?
            } else {
                let rows: Vec<u32> = (0..g as u32).collect();
                self.step(&plan, &rows, argmax_limit)?
            };
            passes += 1;
            processed += active as u64;
        }
        Ok((out, passes, processed))
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
