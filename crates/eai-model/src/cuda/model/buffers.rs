//! Device buffers: allocation with the out-of-memory check, activation scratch per row
//! count, the KV cache, host↔device copies.

use cudarc::driver::{CudaSlice, DeviceRepr, ValidAsZeroBits};
use eai_quant::cuda::{DeviceBuffer, DeviceScalar};
use half::f16;

use super::decode::WeightTy;
use super::load::check_fits;
use super::{Act, Dense, GpuModel, GpuScheme, SCRATCH_CACHE, Scratch, W8A16_GEMV_MAX_M};
use crate::cuda::blas::InType;
use crate::cuda::error::{GpuError, Result};

impl GpuModel {
    pub(super) fn alloc<T: DeviceRepr + ValidAsZeroBits>(
        &self,
        what: &str,
        len: usize,
    ) -> Result<CudaSlice<T>> {
        let bytes = (len.max(1) * std::mem::size_of::<T>()) as u64;
        check_fits(&self.stream, self.ordinal(), what, bytes)?;
        self.stream
            .alloc_zeros::<T>(len.max(1))
            .map_err(|e| GpuError::driver("cuMemAlloc", self.ordinal(), what.to_string(), e))
    }

    fn dbuf<T: DeviceScalar>(&self, what: &str, len: usize) -> Result<DeviceBuffer<T>> {
        let bytes = (len.max(1) * std::mem::size_of::<T>()) as u64;
        check_fits(&self.stream, self.ordinal(), what, bytes)?;
        Ok(self.dev.zeros(len)?)
    }

    pub(super) fn dense_buf(&self, what: &str, ty: InType, len: usize) -> Result<Dense> {
        Ok(match ty {
            InType::F32 => Dense::F32(self.alloc(what, len)?),
            InType::F16 => Dense::F16(self.alloc(what, len)?),
            InType::Bf16 => Dense::Bf16(self.alloc(what, len)?),
        })
    }

    pub(super) fn new_scratch(&self, m: usize) -> Result<Scratch> {
        let c = &self.cfg;
        let (h, d, nh, nkv, f) = (c.hidden, c.head_dim, c.n_heads, c.n_kv_heads, c.ffn);
        let wq = (nh + 2 * nkv) * d;
        let kmax = h.max(nh * d).max(f);
        let what = |s: &str| format!("activations `{s}` for {m} rows");
        let mut bytes = (m * (4 * 4 + 4 * (h + wq + 2 * f))) as u64;
        let mut ks = vec![h, nh * d, f];
        ks.dedup();
        ks.sort_unstable();
        ks.dedup();
        // The gate/up GEMM's width (BLOOM: the up projection alone).
        let gu_n = self.layers.first().map_or(2 * f, |l| l.gate_up.n);
        let mut ns = vec![wq, h, gu_n];
        ns.sort_unstable();
        ns.dedup();
        let act = match self.scheme {
            GpuScheme::Fp32 | GpuScheme::Fp16 | GpuScheme::Bf16 => {
                let a = self.dense_buf(&what("gemm input"), self.scheme.float_type(), m * kmax)?;
                bytes += a.bytes();
                Act::Float(a)
            }
            GpuScheme::W8A16 => {
                let mut xin = Vec::new();
                for &k in &ks {
                    xin.push((k, self.dbuf::<f16>(&what("f16 gemm input"), m * k)?));
                    bytes += 2 * (m * k) as u64;
                }
                let mut yout = Vec::new();
                if m <= W8A16_GEMV_MAX_M {
                    for &n in &ns {
                        yout.push((n, self.dbuf::<f16>(&what("f16 gemv output"), m * n)?));
                        bytes += 2 * (m * n) as u64;
                    }
                }
                Act::W8A16 { xin, yout }
            }
            GpuScheme::W8A8 | GpuScheme::Dynamic => {
                let mut qin = Vec::new();
                for &k in &ks {
                    qin.push((k, self.dbuf::<i8>(&what("int8 gemm input"), m * k)?));
                    bytes += (m * k) as u64;
                }
                let mut acc = Vec::new();
                for &n in &ns {
                    acc.push((n, self.dbuf::<i32>(&what("int32 accumulator"), m * n)?));
                    bytes += 4 * (m * n) as u64;
                }
                bytes += 4 * (m + m * kmax + 1) as u64;
                Act::Int8 {
                    qin,
                    acc,
                    sx: self.alloc(&what("token scales"), m)?,
                    tmp: self.alloc(&what("f32 staging"), m * kmax)?,
                    slot: self.alloc("absmax slot", 1)?,
                }
            }
        };
        Ok(Scratch {
            m,
            ids: self.alloc(&what("token ids"), m)?,
            seq: self.alloc(&what("sequence ids"), m)?,
            pos: self.alloc(&what("positions"), m)?,
            seq_off: self.alloc(&what("sequence offsets"), m)?,
            pre: self.alloc(&what("shared-prefix descriptors"), 2 * m)?,
            prefill: false,
            lead: 0,
            gu_half: false,
            x: self.alloc(&what("residual stream"), m * h)?,
            qkv: self.alloc(&what("qkv"), m * wq)?,
            gu: self.alloc(&what("gate/up"), m * 2 * f)?,
            act,
            bytes,
        })
    }

    pub(super) fn take_scratch(&mut self, m: usize) -> Result<Scratch> {
        // W8A16 prefill passes dequantize each projection into one f16 staging buffer of the
        // model's (formerly one per cached scratch shape: up to 6 × 271 MB at Qwen2.5-7B);
        // passes of 17–32 rows whose every projection takes the batched W16 GEMV (the default
        // tile for W8A16 decode steps) never do.
        let c = &self.cfg;
        let w16_all = [c.hidden, c.n_heads * c.head_dim, c.ffn]
            .iter()
            .all(|&k| self.w16_batched_tile(WeightTy::I8, m, k).is_some());
        let dequantizes = m > W8A16_GEMV_MAX_M && !w16_all;
        if self.scheme == GpuScheme::W8A16 && dequantizes && self.wtmp.is_none() {
            self.wtmp = Some(match self.alloc("W8A16 f16 weight staging", self.wtmp_len) {
                Err(e) if e.is_out_of_memory() && !self.scratch.is_empty() => {
                    self.scratch.clear();
                    self.alloc("W8A16 f16 weight staging", self.wtmp_len)?
                }
                r => r?,
            });
        }
        if let Some(i) = self.scratch.iter().position(|s| s.m == m) {
            return Ok(self.scratch.remove(i));
        }
        match self.new_scratch(m) {
            Ok(s) => Ok(s),
            Err(e) if e.is_out_of_memory() && !self.scratch.is_empty() => {
                self.scratch.clear();
                self.new_scratch(m)
            }
            Err(e) => Err(e),
        }
    }

    pub(super) fn put_scratch(&mut self, s: Scratch) {
        self.scratch.push(s);
        if self.scratch.len() > SCRATCH_CACHE {
            self.scratch.remove(0);
        }
    }

    /// Ensures the KV cache holds `tokens` slots per layer (contents are not kept on growth).
    pub(super) fn ensure_kv(&mut self, tokens: usize) -> Result<()> {
        if tokens <= self.kv_tokens && self.kv.is_some() {
            return Ok(());
        }
        let c = &self.cfg;
        let tokens = tokens.max(self.kv_tokens).next_multiple_of(256);
        let len = c.n_layers * 2 * tokens * c.n_kv_heads * c.head_dim;
        self.graph = None;
        self.kv = None;
        let what = format!("KV cache for {tokens} tokens ({} layers, f32)", c.n_layers);
        self.kv = Some(self.alloc::<f32>(&what, len)?);
        self.kv_tokens = tokens;
        Ok(())
    }

    pub(super) fn upload_into<T: DeviceRepr>(
        &self,
        host: &[T],
        dst: &mut CudaSlice<T>,
        what: &str,
    ) -> Result<()> {
        if host.is_empty() {
            return Ok(());
        }
        let mut view = dst.slice_mut(..host.len());
        self.stream
            .memcpy_htod(host, &mut view)
            .map_err(|e| GpuError::driver("cuMemcpyHtoD", self.ordinal(), what.to_string(), e))
    }

    pub(super) fn download<T: DeviceRepr + Default + Clone>(
        &self,
        src: &CudaSlice<T>,
        n: usize,
        what: &str,
    ) -> Result<Vec<T>> {
        let mut out = vec![T::default(); n];
        if n == 0 {
            return Ok(out);
        }
        self.stream
            .memcpy_dtoh(&src.slice(..n), &mut out)
            .map_err(|e| GpuError::driver("cuMemcpyDtoH", self.ordinal(), what.to_string(), e))?;
        self.stream.synchronize().map_err(|e| {
            GpuError::driver("cuStreamSynchronize", self.ordinal(), what.to_string(), e)
        })?;
        Ok(out)
    }
}
