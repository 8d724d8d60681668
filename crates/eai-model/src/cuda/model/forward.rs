//! The decoder's forward pass over a row plan: embedding, per layer the activation stages
//! (norm, attention, SwiGLU in the scheme's input format) and the linear layers.

use cudarc::driver::{CudaSlice, DevicePtr, LaunchConfig, PushKernelArg};
use eai_quant::cuda::GemmShape;
use half::f16;

use super::decode::WeightTy;
use super::{
    Act, Dense, GEMV_DENSE_MAX_M, GemvWeight, GpuLinear, GpuModel, GpuScheme, RowPlan, Scratch,
    W8A16_GEMV_MAX_M, Weight, attention_cfg, attention_dec_cfg, attention_dec_entry, find,
    find_mut, grid, prefill_tile_cfg, row_quads_cfg, rows_cfg, warp_rows_cfg,
};
use crate::cuda::blas::InType;
use crate::cuda::error::{GpuError, Result};

impl GpuModel {
    /// Runs the decoder over the rows of `plan`, leaving the last hidden states (before the
    /// final norm) in the scratch's residual buffer.
    pub(super) fn forward(
        &self,
        sc: &mut Scratch,
        plan: &RowPlan,
        kv: &CudaSlice<f32>,
        kv_tokens: usize,
    ) -> Result<()> {
        self.upload_plan(sc, plan, kv_tokens)?;
        self.enqueue_forward(sc, kv, kv_tokens, plan.real)
    }

    /// Checks `plan` against the scratch shape, the vocabulary and the cache, and uploads it.
    pub(super) fn upload_plan(
        &self,
        sc: &mut Scratch,
        plan: &RowPlan,
        kv_tokens: usize,
    ) -> Result<()> {
        let c = &self.cfg;
        let m = sc.m;
        if plan.ids.len() != m
            || plan.seq.len() != m
            || plan.pos.len() != m
            || plan.seq_off.len() > m
            || (!plan.pre.is_empty() && plan.pre.len() != 2 * plan.seq_off.len())
        {
            return Err(GpuError::invalid(format!("row plan does not fit {m} rows")));
        }
        for (r, (&s, &p)) in plan.seq.iter().zip(&plan.pos).enumerate() {
            if s >= 0 {
                let off = plan.seq_off.get(s as usize).copied().unwrap_or(u32::MAX) as usize;
                if off.saturating_add(p.max(0) as usize) >= kv_tokens {
                    return Err(GpuError::invalid(format!("row {r}: KV slot outside the cache")));
                }
                if let Some(d) = plan.pre.get(2 * s as usize..2 * s as usize + 2) {
                    let (po, pl) = (d[0] as usize, d[1] as usize);
                    if pl > 0 && (po.saturating_add(pl) > kv_tokens || pl > p.max(0) as usize) {
                        return Err(GpuError::invalid(format!(
                            "row {r}: shared prefix outside the cache or after the position"
                        )));
                    }
                }
            }
            if plan.ids[r] as usize >= c.vocab {
                return Err(GpuError::invalid(format!(
                    "token id {} is outside the vocabulary ({})",
                    plan.ids[r], c.vocab
                )));
            }
        }
        self.upload_into(&plan.ids, &mut sc.ids, "token ids")?;
        self.upload_into(&plan.seq, &mut sc.seq, "sequence ids")?;
        self.upload_into(&plan.pos, &mut sc.pos, "positions")?;
        sc.prefill = !plan.pre.is_empty();
        sc.lead = if sc.prefill { super::lead_rows(&plan.seq, &plan.pre) } else { 0 };
        self.upload_into(&plan.pre, &mut sc.pre, "shared-prefix descriptors")?;
        self.upload_into(&plan.seq_off, &mut sc.seq_off, "sequence offsets")
    }

    /// Enqueues the decoder over the uploaded rows of `sc` (no host synchronization, no
    /// allocation, no host-to-device copy: capturable). `real` rows belong to sequences.
    pub(super) fn enqueue_forward(
        &self,
        sc: &mut Scratch,
        kv: &CudaSlice<f32>,
        kv_tokens: usize,
        real: usize,
    ) -> Result<()> {
        let c = &self.cfg;
        let (h, d, nh, nkv, f) = (c.hidden, c.head_dim, c.n_heads, c.n_kv_heads, c.ffn);
        let m = sc.m;
        let sms = self.dev.info().multiprocessors;
        let (m32, h32) = (m as u32, h as u32);
        // Embedding: x[m, h] ← table[ids].
        let ename = match self.embed.suffix() {
            "f32" => "embed_f32",
            "f16" => "embed_f16",
            _ => "embed_bf16",
        };
        {
            let table = self.embed.ptr(&self.stream);
            // ids < vocab (checked), table holds vocab·h, x holds m·h.
            launch!(self, ename, grid((m * h) as u64, sms), [&table, &sc.ids, &sc.x, &m32, &h32])?;
        }
        if let Some(b) = &self.bloom {
            return self.bloom_layers(b, sc, kv, kv_tokens, real);
        }
        // Generation passes (no shared-prefix descriptors) of few rows: the fused decode
        // layers. Scoring passes keep the scoring attention kernel, which reads the prefixes.
        if !sc.prefill && self.fused_fits(m) {
            return self.fused_layers(sc, kv, kv_tokens);
        }
        let per_layer = kv_tokens * nkv * d;
        let table_len = self.rope_len as u32;
        let (nh32, nkv32, d32) = (nh as u32, nkv as u32, d as u32);
        let scale = 1.0f32 / (d as f32).sqrt();
        let window = c.sliding_window.map_or(0u32, |w| w.min(u32::MAX as usize) as u32);
        for (li, layer) in self.layers.iter().enumerate() {
            let kc = kv.slice(2 * li * per_layer..(2 * li + 1) * per_layer);
            let vc = kv.slice((2 * li + 1) * per_layer..(2 * li + 2) * per_layer);
            self.produce(sc, Source::Norm(&layer.attn_norm), h, real)?;
            self.linear(sc, &layer.qkv, Out::Qkv)?;
            {
                let bias: u64 = layer.qkv_bias.as_ref().map_or(0, |b| b.device_ptr(&self.stream).0);
                // One block per row; slots seq_off[s] + pos < kv_tokens (checked above); qkv
                // holds m rows of (nh + 2nkv)·d; bias (0 = none) holds (nh + 2nkv)·d.
                launch!(
                    self,
                    "rope_qkv",
                    rows_cfg(m, 128),
                    [
                        &sc.qkv,
                        &bias,
                        &sc.seq,
                        &sc.pos,
                        &sc.seq_off,
                        &self.rope_cos,
                        &self.rope_sin,
                        &self.inv_freq,
                        &table_len,
                        &kc,
                        &vc,
                        &nh32,
                        &nkv32,
                        &d32,
                    ]
                )?;
            }
            let attn = Source::Attn { kc: &kc, vc: &vc, scale, window, alibi: 0 };
            self.produce(sc, attn, nh * d, real)?;
            self.linear(sc, &layer.o, Out::Residual)?;
            self.produce(sc, Source::Norm(&layer.ffn_norm), h, real)?;
            if self.scheme == GpuScheme::W8A8 {
                // Per-token W8A8: SwiGLU + quantization read the gate/up int32 accumulators.
                self.linear(sc, &layer.gate_up, Out::Acc)?;
                self.produce(sc, Source::SwigluAcc(&layer.gate_up), f, real)?;
            } else {
                self.linear(sc, &layer.gate_up, Out::Gu)?;
                self.produce(sc, Source::Swiglu, f, real)?;
            }
            self.linear(sc, &layer.down, Out::Residual)?;
        }
        Ok(())
    }

    /// Builds the GEMM input of width `k` from `src` in the scheme's activation format.
    pub(super) fn produce(
        &self,
        sc: &mut Scratch,
        src: Source<'_>,
        k: usize,
        real: usize,
    ) -> Result<()> {
        let c = &self.cfg;
        let m = sc.m;
        let sms = self.dev.info().multiprocessors;
        let (m32, k32, h32, f32_) = (m as u32, k as u32, c.hidden as u32, c.ffn as u32);
        let (nh32, nkv32, d32) = (c.n_heads as u32, c.n_kv_heads as u32, c.head_dim as u32);
        let eps = c.rms_eps;
        let null: u64 = 0;
        let Scratch { x, gu, gu_half, qkv, seq, pos, seq_off, pre, prefill, lead, act, .. } = sc;
        // Kernel launches below: rmsnorm and the per-token int8 kernels one warp per row, the
        // other int8 kernels one block per row, over k columns of buffers holding m·k; attention (scoring tiles, decode or generic
        // kernel, below) reads the cache slots the rope kernel wrote; swiglu reads m·2f (f32, or
        // 16-bit when the gate/up GEMM wrote them so) and writes m·f.
        let gu_half = *gu_half;
        let attn_cfg = attention_cfg(m, c.n_heads);
        // Generation passes of the unfused layers (more rows than the fused decode layers take):
        // the decode kernel (16 warps, four keys in flight per warp, as the fused layers run it) where it
        // applies — no ALiBi, rows within gridDim.y — when the tiled attention is on.
        let dec = self.tiled_attention && m <= 65_535;
        let dec_cfg = attention_dec_cfg(m32, nh32);
        // Scoring attention: one block per (tile of `tr` rows, kv head, group of ≤ 8 query
        // heads); the rows of a tile in one sequence share their staged keys (see attention.cu).
        // A generation pass that admits prompts leads with its running sequences' decode rows
        // (`lead`): those take the decode kernel, the tiles start at the first prompt row (the
        // tiled kernel walks a tile's sequences one after another, so a tile of decode rows
        // would walk all their contexts in turn and hold up the whole launch).
        let prefill = *prefill;
        let lead = if dec { (*lead).min(m) } else { 0 };
        let tile_cfg_for = |rows: usize| {
            prefill_tile_cfg(rows, c.n_heads, c.n_kv_heads, c.head_dim, self.tiled_attention)
        };
        let (q_row, o_row) = ((c.n_heads + 2 * c.n_kv_heads) * c.head_dim, c.n_heads * c.head_dim);
        macro_rules! float_stage {
            ($suffix:literal, $out:expr) => {{
                let out = $out;
                match src {
                    Source::Norm(w) => launch!(
                        self,
                        concat!("rmsnorm_", $suffix),
                        warp_rows_cfg(m),
                        [&*x, &null, w, out, &m32, &h32, &eps,]
                    ),
                    Source::LayerNorm(w, b) => launch!(
                        self,
                        concat!("layernorm_", $suffix),
                        rows_cfg(m, 256),
                        [&*x, &null, w, b, out, &h32, &eps,]
                    ),
                    Source::Attn { kc, vc, scale, window, alibi } if prefill => {
                        // ALiBi (BLOOM) keeps every row on the tiled kernel.
                        let lead = if alibi == 0 { lead } else { 0 };
                        if lead > 0 {
                            let cfg = attention_dec_cfg(lead as u32, nh32);
                            launch!(
                                self,
                                attention_dec_entry($suffix, c.head_dim),
                                cfg,
                                [
                                    &*qkv, &*seq, &*pos, &*seq_off, kc, vc, out, &nh32, &nkv32,
                                    &d32, &scale, &window,
                                ]
                            )?;
                        }
                        // Rows [lead, m) on the tiled kernel, through views from row `lead`
                        // (within the m rows each buffer holds).
                        let rest = m - lead;
                        if rest == 0 {
                            Ok(())
                        } else {
                            let (tile_cfg, tr) = tile_cfg_for(rest);
                            let (q, sq, ps, o) = (
                                qkv.slice(lead * q_row..),
                                seq.slice(lead..),
                                pos.slice(lead..),
                                out.slice(lead * o_row..),
                            );
                            let rest32 = rest as u32;
                            launch!(
                                self,
                                // The entry point holding d / 32 values per lane in the fewest
                                // registers.
                                match c.head_dim {
                                    0..=64 => concat!("attention_prefill_tile_", $suffix, "_v2"),
                                    65..=128 => concat!("attention_prefill_tile_", $suffix, "_v4"),
                                    _ => concat!("attention_prefill_tile_", $suffix, "_v8"),
                                },
                                tile_cfg,
                                [
                                    &q, &sq, &ps, &*seq_off, &*pre, kc, vc, &o, &nh32, &nkv32,
                                    &d32, &scale, &window, &alibi, &rest32, &tr,
                                ]
                            )
                        }
                    }
                    Source::Attn { kc, vc, scale, window, alibi: 0 } if dec => launch!(
                        self,
                        attention_dec_entry($suffix, c.head_dim),
                        dec_cfg,
                        [
                            &*qkv, &*seq, &*pos, &*seq_off, kc, vc, out, &nh32, &nkv32, &d32,
                            &scale, &window,
                        ]
                    ),
                    Source::Attn { kc, vc, scale, window, alibi } => launch!(
                        self,
                        concat!("attention_", $suffix),
                        attn_cfg,
                        [
                            &*qkv, &*seq, &*pos, &*seq_off, kc, vc, out, &nh32, &nkv32, &d32,
                            &scale, &window, &alibi,
                        ]
                    ),
                    Source::Swiglu => launch!(
                        self,
                        if gu_half {
                            concat!("swiglu_", $suffix, "_h")
                        } else {
                            concat!("swiglu_", $suffix)
                        },
                        row_quads_cfg(m, c.ffn),
                        [&*gu, out, &m32, &f32_,]
                    ),
                    Source::Gelu(_) if gu_half => {
                        Err(GpuError::invalid("GELU over a 16-bit gate/up matrix"))
                    }
                    Source::Gelu(b) => launch!(
                        self,
                        concat!("gelu_", $suffix),
                        grid((m * c.ffn) as u64, sms),
                        [&*gu, b, out, &m32, &f32_,]
                    ),
                    Source::SwigluAcc(_) => {
                        Err(GpuError::invalid("SwiGLU from int32 accumulators outside W8A8"))
                    }
                }
            }};
        }
        match act {
            Act::Float(Dense::F32(a)) => float_stage!("f32", &*a),
            Act::Float(Dense::F16(a)) => float_stage!("f16", &*a),
            Act::Float(Dense::Bf16(a)) => float_stage!("bf16", &*a),
            Act::W8A16 { xin, .. } => {
                let buf = find(xin, k, "f16 input")?;
                float_stage!("f16", buf.as_cudarc())
            }
            Act::Int8 { qin, acc, sx, tmp, slot } => {
                let q = find(qin, k, "int8 input")?.as_cudarc();
                if self.scheme == GpuScheme::W8A8 {
                    match src {
                        Source::Norm(w) => launch!(
                            self,
                            "rmsnorm_q8",
                            warp_rows_cfg(m),
                            [&*x, w, q, &*sx, &m32, &h32, &eps]
                        ),
                        Source::Swiglu => {
                            launch!(self, "swiglu_q8", rows_cfg(m, 256), [&*gu, q, &*sx, &f32_])
                        }
                        Source::LayerNorm(w, b) => launch!(
                            self,
                            "layernorm_q8",
                            rows_cfg(m, 256),
                            [&*x, w, b, q, &*sx, &h32, &eps]
                        ),
                        Source::Gelu(b) => {
                            launch!(self, "gelu_q8", rows_cfg(m, 256), [&*gu, b, q, &*sx, &f32_])
                        }
                        Source::SwigluAcc(lin) => {
                            let Weight::I8(wq) = &lin.w else {
                                return Err(GpuError::invalid(format!(
                                    "{}: int8 weights expected",
                                    lin.name
                                )));
                            };
                            let ab = find(acc, 2 * c.ffn, "int32 accumulator")?.as_cudarc();
                            // One warp per row: reads m·2f i32 accumulators (the gate/up GEMM's
                            // output, just enqueued) and 2f weight scales, writes m·f codes and
                            // m row scales (sx: the input scales on entry).
                            launch!(
                                self,
                                // The row in registers where it fits (one read of the
                                // accumulators), else read twice.
                                if c.ffn.is_multiple_of(4) && c.ffn <= 2048 {
                                    "swiglu_q8_acc_r16"
                                } else {
                                    "swiglu_q8_acc"
                                },
                                warp_rows_cfg(m),
                                [ab, wq.scales().as_cudarc(), q, &*sx, &m32, &f32_]
                            )
                        }
                        Source::Attn { .. } => {
                            float_stage!("f32", &*tmp)?;
                            launch!(
                                self,
                                "quant_rows",
                                warp_rows_cfg(m),
                                [&*tmp, q, &*sx, &m32, &k32]
                            )
                        }
                    }
                } else {
                    float_stage!("f32", &*tmp)?;
                    self.stream.memset_zeros(slot).map_err(|e| {
                        GpuError::driver("cuMemsetD8", self.ordinal(), "absmax slot", e)
                    })?;
                    let n_real = (real * k) as u64;
                    let n_all = (m * k) as u64;
                    launch!(self, "absmax_all", grid(n_real, sms), [&*tmp, &n_real, &*slot])?;
                    launch!(
                        self,
                        "quant_global",
                        grid(n_all, sms),
                        [&*tmp, &n_all, &m32, &*slot, q, &*sx]
                    )
                }
            }
        }
    }

    /// Runs one linear layer on the prepared input, writing or accumulating its f32 output.
    pub(super) fn linear(&self, sc: &mut Scratch, lin: &GpuLinear, out: Out) -> Result<()> {
        let m = sc.m;
        let (n, k) = (lin.n, lin.k);
        let sms = self.dev.info().multiprocessors;
        let s = &self.stream;
        let add = matches!(out, Out::Residual);
        if matches!(out, Out::Acc) && self.scheme != GpuScheme::W8A8 {
            return Err(GpuError::invalid(format!("{}: int32 output outside W8A8", lin.name)));
        }
        let Scratch { x, gu, gu_half, qkv, act, .. } = sc;
        if matches!(out, Out::Gu) {
            *gu_half = false;
        }
        // A cuBLAS gate/up GEMM of 16-bit inputs writes 16-bit output for SwiGLU
        // (GpuOptions::half_gate_up); BLOOM's GELU reads f32.
        let half_out = |ty: InType| {
            matches!(out, Out::Gu) && self.half_gate_up && self.bloom.is_none() && ty != InType::F32
        };
        let y: &mut CudaSlice<f32> = match out {
            Out::Qkv => qkv,
            Out::Gu | Out::Acc => gu,
            Out::Residual => x,
        };
        if y.len() < m * n {
            return Err(GpuError::invalid(format!("{}: output buffer too small", lin.name)));
        }
        let (yp, _g) = y.device_ptr(s);
        // Issue 16: passes of 5–32 rows with the W16 tile take the batched bandwidth GEMV
        // (weights read once for all rows) when the weights and activations suit it.
        let w16 = match (&lin.w, &*act) {
            (Weight::I8(q), Act::W8A16 { xin, .. }) => self
                .w16_batched_tile(WeightTy::I8, m, k)
                .map(|mt| -> Result<_> {
                    let xb = find(xin, k, "f16 input")?;
                    let (wp, _gw) = q.codes().as_cudarc().device_ptr(s);
                    let (sp, _gs) = q.scales().as_cudarc().device_ptr(s);
                    let (xp, _gx) = xb.as_cudarc().device_ptr(s);
                    Ok((WeightTy::I8, mt, (wp, sp, xp)))
                })
                .transpose()?,
            (Weight::Dense(w), Act::Float(a)) if w.ty() == InType::F16 && a.ty() == InType::F16 => {
                let ty = WeightTy::Dense(InType::F16);
                self.w16_batched_tile(ty, m, k).map(|mt| (ty, mt, (w.ptr(s), 0, a.ptr(s))))
            }
            _ => None,
        };
        if let Some((ty, mt, (wp, sp, xp))) = w16 {
            // SAFETY: w holds n·k weights of `ty` (int8: n scales), x ≥ m·k f16 (W8A16: exactly
            // m·k; float scratch: m·max K), y ≥ m·n f32 (checked above); w16_batched_tile
            // checked the shapes; whole allocations, so aligned.
            return unsafe { self.w16_batched(ty, mt, (wp, sp, xp, yp), (m, n, k), add) };
        }
        match (&lin.w, &mut *act) {
            (Weight::Dense(w), Act::Float(a))
                if self.gemv_fits(w.ty(), m, k) && a.ty() == w.ty() =>
            {
                let (wp, xp) = (w.ptr(s), a.ptr(s));
                // SAFETY: w holds n·k elements of its type, a ≥ m·k of the same type (scratch
                // sized m·max K), y ≥ m·n f32 (checked above); k is a multiple of the 16-byte
                // vector width (gemv_fits) and every buffer is a whole allocation (aligned).
                unsafe { self.gemv(w.ty().into(), wp, 0, xp, yp, (m, n, k), add) }
            }
            (Weight::I8(q), Act::W8A16 { xin, .. })
                if self.gemv && m <= W8A16_GEMV_MAX_M && k.is_multiple_of(16) =>
            {
                let xb = find(xin, k, "f16 input")?;
                let (wp, _gw) = q.codes().as_cudarc().device_ptr(s);
                let (sp, _gs) = q.scales().as_cudarc().device_ptr(s);
                let (xp, _gx) = xb.as_cudarc().device_ptr(s);
                // SAFETY: the codes hold n·k int8 and the scales n f32 (quantized so), xb
                // exactly m·k f16, y ≥ m·n f32 (checked above); k % 16 == 0 (checked).
                unsafe { self.gemv(GemvWeight::I8, wp, sp, xp, yp, (m, n, k), add) }
            }
            (Weight::Dense(w), Act::Float(a)) => {
                let oty = if half_out(w.ty()) { w.ty() } else { InType::F32 };
                *gu_half = oty != InType::F32;
                // SAFETY: w holds n·k elements of its type (loaded so), a holds ≥ m·k of the
                // same type (scratch sized m·max K), y holds ≥ m·n f32 (checked above), so at
                // least m·n elements of a 16-bit output type.
                unsafe {
                    self.blas.gemm(
                        &lin.name,
                        w.ty(),
                        (w.ptr(s), a.ptr(s)),
                        (yp, oty),
                        (m, n, k),
                        n,
                        add,
                    )
                }
            }
            (Weight::I8(q), Act::W8A16 { xin, yout }) => {
                let xb = find(xin, k, "f16 input")?;
                if m <= W8A16_GEMV_MAX_M {
                    let yb = find_mut(yout, n, "f16 output")?;
                    self.dev.w8a16::<f16>(
                        q.codes(),
                        q.scales(),
                        xb,
                        None,
                        yb,
                        GemmShape::new(m, n, k),
                    )?;
                    let len = (m * n) as u64;
                    let addi = i32::from(add);
                    let ybr = &*yb;
                    // widen reads m·n halves and writes/adds m·n f32 (y holds ≥ m·n).
                    launch!(self, "widen_f16", grid(len, sms), [ybr.as_cudarc(), &*y, &len, &addi])
                } else {
                    let Some(wt) = self.wtmp.as_ref() else {
                        return Err(GpuError::invalid("W8A16 staging buffer missing"));
                    };
                    let (n32, k32) = (n as u32, k as u32);
                    let wtr = wt;
                    // dequant writes n·k halves; the staging buffer holds the largest n·k.
                    launch!(
                        self,
                        "dequant_weight_f16",
                        grid((n * k) as u64, sms),
                        [q.codes().as_cudarc(), q.scales().as_cudarc(), wtr, &n32, &k32,]
                    )?;
                    let (wp, _gw) = wt.device_ptr(s);
                    let (xp, _gx) = xb.as_cudarc().device_ptr(s);
                    let oty = if half_out(InType::F16) { InType::F16 } else { InType::F32 };
                    *gu_half = oty != InType::F32;
                    // SAFETY: wt holds ≥ n·k f16 (just written), xb exactly m·k f16, y ≥ m·n
                    // f32 (so ≥ m·n f16).
                    unsafe {
                        self.blas.gemm(
                            &lin.name,
                            InType::F16,
                            (wp, xp),
                            (yp, oty),
                            (m, n, k),
                            n,
                            add,
                        )
                    }
                }
            }
            (Weight::I8(q), Act::Int8 { qin, acc, sx, .. }) => {
                let xb = find(qin, k, "int8 input")?;
                let ab = find_mut(acc, n, "int32 accumulator")?;
                self.dev.gemm_i8(xb, q.codes(), ab, GemmShape::new(m, n, k))?;
                if matches!(out, Out::Acc) {
                    // W8A8 gate/up: `swiglu_q8_acc` dequantizes the accumulators itself.
                    return Ok(());
                }
                let (m32, n32, addi) = (m as u32, n as u32, i32::from(add));
                let abr = &*ab;
                // dequant_out reads m·n i32, m scales, n scales; writes y rows of stride n.
                launch!(
                    self,
                    "dequant_out",
                    row_quads_cfg(m, n),
                    [abr.as_cudarc(), &*sx, q.scales().as_cudarc(), &*y, &m32, &n32, &n32, &addi,]
                )
            }
            _ => Err(GpuError::invalid(format!(
                "{}: weight format does not match the scheme",
                lin.name
            ))),
        }
    }

    /// Whether the decode GEMV takes a dense product of `m` rows and inner size `k` in `ty`.
    pub(super) fn gemv_fits(&self, ty: InType, m: usize, k: usize) -> bool {
        let epv = if ty == InType::F32 { 4 } else { 8 };
        self.gemv && m <= GEMV_DENSE_MAX_M && k.is_multiple_of(epv)
    }

    /// `y[m, n] (+)= scale[n] · W[n, :] · x[m, :]` with the decode GEMV kernels (`scale` 0: 1).
    ///
    /// # Safety
    /// `w` holds n·k elements of `ty` (int8 codes for [`GemvWeight::I8`], then `scale` holds n f32),
    /// `x` holds m·k elements of the matching activation type (f16 for int8 weights, else
    /// `ty`), `y` holds m·n f32; all three 16-byte aligned and `k` a multiple of the 16-byte
    /// vector width of `ty`.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn gemv(
        &self,
        ty: GemvWeight,
        w: u64,
        scale: u64,
        x: u64,
        y: u64,
        (m, n, k): (usize, usize, usize),
        add: bool,
    ) -> Result<()> {
        let mt: u32 = match m {
            1 => 1,
            2 => 2,
            3 | 4 => 4,
            _ => 8,
        };
        let name: &'static str = match (ty, mt) {
            (GemvWeight::I8, 1) => "gemv_i8_f16_m1",
            (GemvWeight::I8, 2) => "gemv_i8_f16_m2",
            (GemvWeight::I8, 4) => "gemv_i8_f16_m4",
            (GemvWeight::I8, _) => "gemv_i8_f16_m8",
            (GemvWeight::F16, 1) => "gemv_f16_f16_m1",
            (GemvWeight::F16, 2) => "gemv_f16_f16_m2",
            (GemvWeight::F16, 4) => "gemv_f16_f16_m4",
            (GemvWeight::F16, _) => "gemv_f16_f16_m8",
            (GemvWeight::Bf16, 1) => "gemv_bf16_bf16_m1",
            (GemvWeight::Bf16, 2) => "gemv_bf16_bf16_m2",
            (GemvWeight::Bf16, 4) => "gemv_bf16_bf16_m4",
            (GemvWeight::Bf16, _) => "gemv_bf16_bf16_m8",
            (GemvWeight::F32, 1) => "gemv_f32_f32_m1",
            (GemvWeight::F32, 2) => "gemv_f32_f32_m2",
            (GemvWeight::F32, 4) => "gemv_f32_f32_m4",
            (GemvWeight::F32, _) => "gemv_f32_f32_m8",
        };
        let (m32, n32, k32, addi) = (m as u32, n as u32, k as u32, i32::from(add));
        // GV_WARPS (8) warps × GV_ROWS (2) output rows per block; M in tiles of `mt`.
        let cfg = LaunchConfig {
            grid_dim: (n32.div_ceil(16), m32.div_ceil(mt), 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        // The kernel bounds-checks n < N and m < M; the caller guarantees the sizes above.
        launch!(self, name, cfg, [&w, &scale, &x, &y, &m32, &n32, &k32, &n32, &addi])
    }
}

#[derive(Clone, Copy)]
pub(super) enum Source<'a> {
    Norm(&'a CudaSlice<f32>),
    /// BLOOM's LayerNorm: weight and bias.
    LayerNorm(&'a CudaSlice<f32>, &'a CudaSlice<f32>),
    Attn {
        kc: &'a cudarc::driver::CudaView<'a, f32>,
        vc: &'a cudarc::driver::CudaView<'a, f32>,
        scale: f32,
        window: u32,
        /// Device address of one ALiBi slope per head (BLOOM), 0 for none.
        alibi: u64,
    },
    Swiglu,
    /// BLOOM's GELU over the up projection's output (row stride ffn), with its bias.
    Gelu(&'a CudaSlice<f32>),
    /// W8A8's SwiGLU from the int32 accumulators of this gate/up layer (no f32 gate/up matrix).
    SwigluAcc(&'a GpuLinear),
}

#[derive(Clone, Copy)]
pub(super) enum Out {
    /// W8A8 gate/up: leave the int32 accumulators for [`Source::SwigluAcc`] (no dequantization).
    Acc,
    Qkv,
    Gu,
    Residual,
}
