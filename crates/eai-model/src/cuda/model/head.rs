//! The LM head on selected rows: final norm, logits (cuBLAS, decode GEMV or the int8 head),
//! row statistics, picked logits.

use cudarc::driver::{CudaSlice, DevicePtr, LaunchConfig, PushKernelArg};

use super::{
    GemvWeight, GpuModel, HEAD_CHUNK_ELEMS, HeadScratch, RowScore, decode, rows_cfg, warp_rows_cfg,
};
use crate::cuda::blas::InType;
use crate::cuda::error::{GpuError, Result};

impl GpuModel {
    /// Activation type the LM head takes (f16 for the int8 head, else the head's own type).
    fn head_act_ty(&self) -> InType {
        if self.head_i8.is_some() {
            InType::F16
        } else {
            self.head.as_ref().unwrap_or(&self.embed).ty()
        }
    }

    fn head_rows_cap(&self) -> usize {
        (HEAD_CHUNK_ELEMS / self.cfg.vocab.max(1)).clamp(16, 1024)
    }

    /// LM-head buffers for chunks of at least `rows` rows and `picks` picked logits. Sized by
    /// what the passes ask for, growing up to [`Self::head_rows_cap`] rows: a generation step
    /// of 32 sequences holds 32 rows of logits (19 MB at Qwen2.5-7B's vocabulary), not the
    /// 256 MiB chunk a scoring pass uses.
    fn ensure_head(&mut self, rows: usize, picks: usize) -> Result<()> {
        let ok =
            self.head_scratch.as_ref().is_some_and(|s| s.rows >= rows && s.picks.len() >= picks);
        if ok {
            return Ok(());
        }
        let rows = rows.max(self.head_scratch.as_ref().map_or(0, |s| s.rows));
        self.head_scratch = None;
        self.head_scratch = Some(self.new_head_scratch(rows, picks.max(rows * 4))?);
        Ok(())
    }

    /// LM-head buffers for `rows` rows and `picks_cap` picked logits.
    pub(super) fn new_head_scratch(&self, rows: usize, picks_cap: usize) -> Result<HeadScratch> {
        let (h, v) = (self.cfg.hidden, self.cfg.vocab);
        let head_ty = self.head_act_ty();
        let act = self.dense_buf("LM-head input", head_ty, rows * h)?;
        let bytes = act.bytes() + (rows * (4 * v + 8 + 8) + 12 * picks_cap) as u64;
        Ok(HeadScratch {
            rows,
            idx: self.alloc("LM-head row indices", rows)?,
            act,
            logits: self.alloc(&format!("logits for {rows} rows × {v}"), rows * v)?,
            lse: self.alloc("log-partition per row", rows)?,
            amax: self.alloc("argmax per row", rows)?,
            amax_slot: self.alloc("argmax slot per row", rows)?,
            amax_count: self.alloc("argmax block count per row", rows)?,
            pick_rows: self.alloc("scored rows", picks_cap)?,
            pick_tgts: self.alloc("scored targets", picks_cap)?,
            picks: self.alloc("scored logits", picks_cap)?,
            bytes,
        })
    }

    /// LM head on rows `idx` of the residual buffer `x`: final norm, logits, row statistics and
    /// picked logits. `targets[i]` are the tokens whose logits are wanted at `idx[i]`.
    /// Returns the rows' scores, and the full logits when `keep_logits`.
    pub(super) fn head(
        &mut self,
        x: &CudaSlice<f32>,
        idx: &[u32],
        targets: &[Vec<u32>],
        argmax_limit: usize,
        keep_logits: bool,
    ) -> Result<(Vec<RowScore>, Vec<Vec<f32>>)> {
        let (h, v) = (self.cfg.hidden, self.cfg.vocab);
        let cap = self.head_rows_cap();
        let chunk = idx.len().clamp(1, cap).next_power_of_two().min(cap);
        let max_picks =
            targets.chunks(chunk).map(|c| c.iter().map(Vec::len).sum::<usize>()).max().unwrap_or(0);
        self.ensure_head(chunk, max_picks)?;
        let Some(mut hs) = self.head_scratch.take() else {
            return Err(GpuError::invalid("LM-head buffers missing"));
        };
        let res =
            self.head_inner(&mut hs, x, idx, targets, argmax_limit, keep_logits, chunk, (h, v));
        self.head_scratch = Some(hs);
        res
    }

    /// Enqueues final norm, logits and row statistics for the first `r` rows of `hs.idx`
    /// (already uploaded) — capturable: no copies, allocations or synchronization.
    pub(super) fn head_enqueue(
        &self,
        hs: &HeadScratch,
        x: &CudaSlice<f32>,
        r: usize,
        (h, v): (usize, usize),
        lim32: u32,
        argmax_only: bool,
    ) -> Result<()> {
        let s = &self.stream;
        let head_w = self.head.as_ref().unwrap_or(&self.embed);
        let eps = self.cfg.rms_eps;
        let (h32, v32, r32) = (h as u32, v as u32, r as u32);
        let head_wty = if self.head_i8.is_some() {
            decode::WeightTy::I8
        } else {
            decode::WeightTy::Dense(head_w.ty())
        };
        if self.bloom.is_none() && self.fused_head_fits(r, head_wty, hs.act.ty()) {
            // A graph step's head (argmax only) follows the layers' last kernel with nothing
            // in between: a programmatic dependent launch (GpuOptions::pdl). The scoring path
            // uploads its row indices just before, so it launches the ordinary way.
            self.fused_head(hs, x, r, (h, v), argmax_only)?;
            let (lg, lse, am) = (&hs.logits, &hs.lse, &hs.amax);
            return if argmax_only {
                let (slot, count) = (&hs.amax_slot, &hs.amax_count);
                let blocks =
                    v.div_ceil(2048).clamp(1, self.dev.info().multiprocessors.max(1) as usize);
                let cfg = LaunchConfig {
                    grid_dim: (blocks as u32, r as u32, 1),
                    block_dim: (256, 1, 1),
                    shared_mem_bytes: 0,
                };
                // grid.y = r rows of vocab logits; amax, slot and count hold rows ≥ r entries.
                launch!(self, "argmax_rows", cfg, [lg, &v32, &lim32, slot, count, am])
            } else {
                // One block per row over vocab logits; lse/amax hold rows entries.
                launch!(self, "row_stats", rows_cfg(r, 256), [lg, &v32, &lim32, lse, am])
            };
        }
        let norm_name = match hs.act.suffix() {
            "f32" => "rmsnorm_f32",
            "f16" => "rmsnorm_f16",
            _ => "rmsnorm_bf16",
        };
        {
            let (idxb, act) = (&hs.idx, &hs.act);
            // One warp (rmsnorm) or block (layernorm) per selected row; idx < rows of x (checked
            // by the callers); act holds rows·h, r ≤ rows.
            let actp = act.ptr(s);
            if let Some(b) = &self.bloom {
                // BLOOM's ln_f: LayerNorm with bias, same row gather.
                let lname = norm_name.replacen("rmsnorm", "layernorm", 1);
                let bias = b.final_bias();
                launch!(
                    self,
                    &lname,
                    rows_cfg(r, 256),
                    [x, idxb, &self.norm, bias, &actp, &h32, &eps]
                )?;
            } else {
                launch!(
                    self,
                    norm_name,
                    warp_rows_cfg(r),
                    [x, idxb, &self.norm, &actp, &r32, &h32, &eps]
                )?;
            }
        }
        let (lp, _g) = hs.logits.device_ptr(s);
        // Issue 16: 5–32 rows with the W16 tile: the batched bandwidth GEMV (f16 activations).
        let w16 = self.w16_batched_tile(head_wty, r, h).filter(|_| hs.act.ty() == InType::F16);
        if let Some(mt) = w16 {
            let (wp, sp) = match &self.head_i8 {
                Some(q) => {
                    (q.codes().as_cudarc().device_ptr(s).0, q.scales().as_cudarc().device_ptr(s).0)
                }
                None => (head_w.ptr(s), 0),
            };
            // SAFETY: the head holds vocab·h weights of `head_wty` (int8: vocab scales), act ≥
            // r·h f16 (written above), logits ≥ rows·vocab f32 with r ≤ rows; w16_batched_tile
            // checked the shapes.
            unsafe {
                self.w16_batched(head_wty, mt, (wp, sp, hs.act.ptr(s), lp), (r, v, h), false)?
            };
        } else if let Some(q) = &self.head_i8 {
            let (wp, _gw) = q.codes().as_cudarc().device_ptr(s);
            let (sp, _gs) = q.scales().as_cudarc().device_ptr(s);
            if hs.act.ty() != InType::F16 {
                return Err(GpuError::invalid("int8 LM head: activation buffer not f16"));
            }
            // SAFETY: the codes hold vocab·h int8 and the scales vocab f32 (quantized so), act
            // ≥ r·h f16 (written above), logits ≥ rows·vocab f32; h % 16 == 0 (checked at load);
            // whole allocations, so aligned. Any r: the kernel tiles M over grid.y.
            unsafe { self.gemv(GemvWeight::I8, wp, sp, hs.act.ptr(s), lp, (r, v, h), false)? };
        } else if self.gemv_fits(head_w.ty(), r, h) && hs.act.ty() == head_w.ty() {
            // SAFETY: the head weight holds vocab·h elements of its type, act ≥ r·h of the same
            // type (written above), logits ≥ rows·vocab f32; h is a multiple of the vector
            // width (gemv_fits); whole allocations, so aligned.
            unsafe {
                self.gemv(
                    head_w.ty().into(),
                    head_w.ptr(s),
                    0,
                    hs.act.ptr(s),
                    lp,
                    (r, v, h),
                    false,
                )?
            };
        } else {
            // SAFETY: the head weight holds vocab·h elements of its type, act ≥ r·h of the same
            // type (written above), logits ≥ rows·vocab f32.
            unsafe {
                self.blas.gemm(
                    "lm_head",
                    head_w.ty(),
                    (head_w.ptr(s), hs.act.ptr(s)),
                    (lp, InType::F32),
                    (r, v, h),
                    v,
                    false,
                )?
            };
        }
        let (lg, lse, am) = (&hs.logits, &hs.lse, &hs.amax);
        // One block per row over vocab logits; lse/amax hold rows entries.
        launch!(self, "row_stats", rows_cfg(r, 256), [lg, &v32, &lim32, lse, am])
    }

    #[allow(clippy::too_many_arguments)]
    fn head_inner(
        &self,
        hs: &mut HeadScratch,
        x: &CudaSlice<f32>,
        idx: &[u32],
        targets: &[Vec<u32>],
        argmax_limit: usize,
        keep_logits: bool,
        chunk: usize,
        (h, v): (usize, usize),
    ) -> Result<(Vec<RowScore>, Vec<Vec<f32>>)> {
        let (v32, lim32) = (v as u32, argmax_limit.min(v) as u32);
        let mut scores = Vec::with_capacity(idx.len());
        let mut all_logits = Vec::new();
        let rows_in_x = x.len() / h.max(1);
        if idx.iter().any(|&r| r as usize >= rows_in_x) {
            return Err(GpuError::invalid("LM-head row index outside the batch"));
        }
        for (ci, rows) in idx.chunks(chunk).enumerate() {
            let tg = &targets[ci * chunk..ci * chunk + rows.len()];
            let r = rows.len();
            self.upload_into(rows, &mut hs.idx, "LM-head row indices")?;
            self.head_enqueue(hs, x, r, (h, v), lim32, false)?;
            let mut prow = Vec::new();
            let mut ptgt = Vec::new();
            for (i, t) in tg.iter().enumerate() {
                for &tok in t {
                    prow.push(i as u32);
                    ptgt.push(tok);
                }
            }
            let np = prow.len();
            if np > 0 {
                self.upload_into(&prow, &mut hs.pick_rows, "scored rows")?;
                self.upload_into(&ptgt, &mut hs.pick_tgts, "scored targets")?;
                let np32 = np as u32;
                let (lg, pr, pt, pk) = (&hs.logits, &hs.pick_rows, &hs.pick_tgts, &hs.picks);
                // n = np ≤ capacity of the pick buffers; rows < r, targets checked < vocab.
                let cfg = LaunchConfig {
                    grid_dim: (np32.div_ceil(256), 1, 1),
                    block_dim: (256, 1, 1),
                    shared_mem_bytes: 0,
                };
                launch!(self, "gather_logits", cfg, [lg, &v32, pr, pt, &np32, pk])?;
            }
            let lse = self.download(&hs.lse, r, "log-partition")?;
            let am = self.download(&hs.amax, r, "argmax")?;
            let picks = self.download(&hs.picks, np, "scored logits")?;
            if keep_logits {
                let flat = self.download(&hs.logits, r * v, "logits")?;
                all_logits.extend(flat.chunks_exact(v).map(<[f32]>::to_vec));
            }
            let mut pi = 0;
            for (i, t) in tg.iter().enumerate() {
                let p: Vec<(u32, f32)> = t
                    .iter()
                    .map(|&tok| {
                        let val = picks.get(pi).copied().unwrap_or(f32::NEG_INFINITY);
                        pi += 1;
                        (tok, val)
                    })
                    .collect();
                scores.push(RowScore { log_z: lse[i], argmax: am[i], picks: p });
            }
        }
        Ok((scores, all_logits))
    }
}
