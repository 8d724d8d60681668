//! Opening the device and loading a model's weights in its scheme's resident formats.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaStream, DeviceRepr, ValidAsZeroBits};
use eai_quant::QuantSpec;
use eai_quant::cuda::{CudaDevice, DeviceBuffer, DeviceQuantized};
use half::{bf16, f16};

use super::bloom;
use super::{
    Dense, GpuLayer, GpuLinear, GpuModel, GpuOptions, GpuScheme, ROPE_TABLE_MAX, Weight,
    WeightBytes,
};
use crate::config::ModelConfig;
use crate::cuda::blas::{Blas, InType};
use crate::cuda::error::{GpuError, Result};
use crate::cuda::kernels::Kernels;
use crate::source::WeightSource;

/// Opens CUDA device `ordinal` through eai-quant (library probes first: a missing driver or
/// toolkit is an error, never a panic) and checks that cuBLAS loads as well.
///
/// # Errors
/// [`GpuError::Cuda`] (no driver, no device, too old a GPU, NVRTC/cuBLASLt missing) or
/// [`GpuError::LibraryMissing`] for cuBLAS.
pub fn open_device(ordinal: usize) -> Result<Arc<CudaDevice>> {
    let dev = CudaDevice::open(ordinal)?;
    // SAFETY: only probes for the shared library with dlopen; runs none of its code.
    if !unsafe { cudarc::cublas::sys::is_culib_present() } {
        return Err(GpuError::LibraryMissing {
            library: "cublas",
            hint: "cuBLAS runs the FP32/FP16/BF16 linear layers",
        });
    }
    Ok(Arc::new(dev))
}

/// The stream eai-quant enqueues all its work on. eai-quant keeps it private, but every buffer
/// it allocates is bound to it; the model enqueues its own kernels and cuBLAS calls on the same
/// stream, so everything runs in submission order.
fn quant_stream(dev: &CudaDevice) -> Result<Arc<CudaStream>> {
    let anchor: DeviceBuffer<u8> = dev.zeros(1)?;
    Ok(anchor.as_cudarc().stream().clone())
}

/// Which part of [`WeightBytes`] the loader's dense and int8 matrices count towards (vectors
/// uploaded with [`Loader::upload`] — norms, biases, rope tables — are always `other`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Part {
    Embedding,
    Head,
    Layers,
}

pub(super) struct Loader<'a> {
    dev: &'a CudaDevice,
    stream: &'a Arc<CudaStream>,
    bytes: WeightBytes,
    part: Part,
}

impl Loader<'_> {
    pub(super) fn check_fits(&self, what: &str, bytes: u64) -> Result<()> {
        check_fits(self.stream, self.dev.info().ordinal, what, bytes)
    }

    pub(super) fn upload<T: DeviceRepr + ValidAsZeroBits + Copy>(
        &mut self,
        what: &str,
        data: &[T],
    ) -> Result<CudaSlice<T>> {
        let bytes = std::mem::size_of_val(data) as u64;
        self.check_fits(what, bytes)?;
        let s = self.stream.clone_htod(data).map_err(|e| {
            GpuError::driver("cuMemcpyHtoD", self.dev.info().ordinal, what.to_string(), e)
        })?;
        self.bytes.other += bytes;
        Ok(s)
    }

    /// Adds `bytes` of matrix values to the current part (and takes them off `other`, where
    /// [`Loader::upload`] put them).
    fn count_matrix(&mut self, bytes: u64) {
        self.bytes.other -= bytes;
        match self.part {
            Part::Embedding => self.bytes.embedding += bytes,
            Part::Head => self.bytes.lm_head += bytes,
            Part::Layers => self.bytes.layers += bytes,
        }
    }

    fn dense(&mut self, what: &str, data: &[f32], ty: InType) -> Result<Dense> {
        let d = match ty {
            InType::F32 => Dense::F32(self.upload(what, data)?),
            InType::F16 => {
                use rayon::prelude::*;
                let h: Vec<f16> = data.par_iter().map(|&v| f16::from_f32(v)).collect();
                Dense::F16(self.upload(what, &h)?)
            }
            InType::Bf16 => {
                use rayon::prelude::*;
                let h: Vec<bf16> = data.par_iter().map(|&v| bf16::from_f32(v)).collect();
                Dense::Bf16(self.upload(what, &h)?)
            }
        };
        self.count_matrix(d.bytes());
        Ok(d)
    }

    /// Quantizes on the device with eai-quant's int8 weight spec (bit-identical to the CPU
    /// quantizer the reference path uses).
    fn int8(&mut self, name: &str, data: &[f32], n: usize, k: usize) -> Result<DeviceQuantized> {
        self.check_fits(
            &format!("{name} (f32 staging for int8 quantization)"),
            5 * data.len() as u64,
        )?;
        let buf = self.dev.upload(data)?;
        let q = self.dev.quantize(name, &QuantSpec::int8_weight(), &buf, &[n, k])?;
        // The f32 staging copy `buf` is freed here; the model keeps the codes and the scales.
        drop(buf);
        let (codes, scales) = ((n * k) as u64, 4 * n as u64);
        match self.part {
            Part::Head => self.bytes.lm_head += codes + scales,
            Part::Embedding => self.bytes.embedding += codes + scales,
            Part::Layers => {
                self.bytes.layers += codes;
                self.bytes.scales += scales;
            }
        }
        Ok(q)
    }

    pub(super) fn linear(
        &mut self,
        name: String,
        data: Vec<f32>,
        n: usize,
        k: usize,
        scheme: GpuScheme,
    ) -> Result<GpuLinear> {
        let w = match scheme {
            GpuScheme::Fp32 | GpuScheme::Fp16 | GpuScheme::Bf16 => Weight::Dense(self.dense(
                &format!("{name} weights ({scheme})"),
                &data,
                scheme.float_type(),
            )?),
            _ => Weight::I8(Box::new(self.int8(&name, &data, n, k)?)),
        };
        Ok(GpuLinear { name, n, k, w })
    }
}

pub(super) fn check_fits(
    stream: &CudaStream,
    ordinal: usize,
    what: &str,
    bytes: u64,
) -> Result<()> {
    stream
        .context()
        .bind_to_thread()
        .map_err(|e| GpuError::driver("cuCtxSetCurrent", ordinal, what.to_string(), e))?;
    let (free, total) = cudarc::driver::result::mem_get_info()
        .map_err(|e| GpuError::driver("cuMemGetInfo", ordinal, what.to_string(), e))?;
    if bytes > free as u64 {
        return Err(oom(ordinal, what, bytes, free as u64, total as u64));
    }
    Ok(())
}

fn oom(ordinal: usize, what: &str, bytes: u64, free: u64, total: u64) -> GpuError {
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    GpuError::OutOfMemory {
        ordinal,
        what: what.to_string(),
        needed_mib: mib(bytes),
        free_mib: mib(free),
        total_mib: mib(total),
    }
}

impl GpuModel {
    /// Loads the model from `src` (Hugging Face tensor names, as every [`WeightSource`] hands
    /// them out) onto `dev`, converting every projection to `scheme`. Q/K/V and gate/up are
    /// concatenated into one matrix each, so a block runs four GEMMs. BLOOM checkpoints
    /// (`transformer.h.N…`, fused `query_key_value`) load too: see `bloom.rs` in this module.
    ///
    /// # Errors
    /// Missing or mis-shaped tensors ([`GpuError::Model`]), a shape the kernels do not support
    /// (head dimension not a multiple of 32 or above 256; BLOOM with
    /// `apply_residual_connection_post_layernorm`), [`GpuError::OutOfMemory`] naming the
    /// tensor that did not fit, or any CUDA error.
    pub fn load(
        dev: Arc<CudaDevice>,
        src: &dyn WeightSource,
        cfg: ModelConfig,
        scheme: GpuScheme,
    ) -> Result<Self> {
        Self::load_with(dev, src, cfg, GpuOptions::new(scheme))
    }

    /// As [`GpuModel::load`] with explicit [`GpuOptions`].
    ///
    /// # Errors
    /// As [`GpuModel::load`].
    pub fn load_with(
        dev: Arc<CudaDevice>,
        src: &dyn WeightSource,
        cfg: ModelConfig,
        opts: GpuOptions,
    ) -> Result<Self> {
        let name = src.source_name();
        cfg.validate(&name)?;
        let embed_name = bloom::embed_name(&cfg);
        let get = |t: &str, shape: &[usize]| -> Result<Vec<f32>> {
            // BLOOM: the original `bigscience` checkpoints name tensors without `transformer.`.
            let ten = match (src.tensor(t)?, t.strip_prefix("transformer.")) {
                (None, Some(bare)) => src.tensor(bare)?,
                (found, _) => found,
            };
            let ten = ten.ok_or_else(|| crate::Error::MissingTensor {
                tensor: t.into(),
                source_name: name.clone(),
            })?;
            if ten.shape != shape {
                return Err(crate::Error::ShapeMismatch {
                    tensor: t.into(),
                    expected: shape.to_vec(),
                    found: ten.shape,
                }
                .into());
            }
            Ok(ten.data)
        };
        Self::build(dev, cfg, opts, &name, |what| match what {
            Tensor::Embed { vocab, h } => get(embed_name, &[vocab, h]),
            Tensor::Head { vocab, h } => {
                if let Some(t) = src.tensor("lm_head.weight")? {
                    if t.shape != [vocab, h] {
                        return Err(crate::Error::ShapeMismatch {
                            tensor: "lm_head.weight".into(),
                            expected: vec![vocab, h],
                            found: t.shape,
                        }
                        .into());
                    }
                    Ok(t.data)
                } else {
                    Err(crate::Error::MissingTensor {
                        tensor: "lm_head.weight".into(),
                        source_name: name.clone(),
                    }
                    .into())
                }
            }
            Tensor::Norm(t, h) | Tensor::Bias(t, h) => get(&t, &[h]),
            Tensor::Matrix(t, r, c) => get(&t, &[r, c]),
        })
    }

    /// A model with `cfg`'s exact shapes and synthetic weights (uniform, variance-preserving
    /// scale, fixed `seed`), built on the host layer by layer: for speed and energy
    /// measurements at a scale whose real weights are not at hand (e.g. a 7B configuration).
    ///
    /// # Errors
    /// As [`GpuModel::load`].
    pub fn synthetic(
        dev: Arc<CudaDevice>,
        cfg: ModelConfig,
        scheme: GpuScheme,
        seed: u64,
    ) -> Result<Self> {
        Self::synthetic_with(dev, cfg, GpuOptions::new(scheme), seed)
    }

    /// As [`GpuModel::synthetic`] with explicit [`GpuOptions`].
    ///
    /// # Errors
    /// As [`GpuModel::load`].
    pub fn synthetic_with(
        dev: Arc<CudaDevice>,
        cfg: ModelConfig,
        opts: GpuOptions,
        seed: u64,
    ) -> Result<Self> {
        let mut tensor = 0u64;
        let mut fill = move |len: usize, amp: f32| -> Vec<f32> {
            use rayon::prelude::*;
            tensor += 1;
            let mut v = vec![0f32; len];
            v.par_chunks_mut(1 << 16).enumerate().for_each(|(ci, chunk)| {
                let mut st = (seed ^ tensor.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                    .wrapping_add((ci as u64).wrapping_mul(0xD1B5_4A32_D192_ED03))
                    | 1;
                for x in chunk {
                    st ^= st << 13;
                    st ^= st >> 7;
                    st ^= st << 17;
                    *x = ((st >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * amp;
                }
            });
            v
        };
        Self::build(dev, cfg, opts, "<synthetic>", |what| {
            Ok(match what {
                Tensor::Embed { vocab, h } | Tensor::Head { vocab, h } => fill(vocab * h, 1.0),
                Tensor::Norm(_, h) => vec![1.0; h],
                Tensor::Bias(_, h) => fill(h, 0.1),
                Tensor::Matrix(_, r, c) => fill(r * c, (3.0 / c as f32).sqrt()),
            })
        })
    }

    fn build(
        dev: Arc<CudaDevice>,
        cfg: ModelConfig,
        opts: GpuOptions,
        model_name: &str,
        mut fetch: impl FnMut(Tensor) -> Result<Vec<f32>>,
    ) -> Result<Self> {
        let scheme = opts.scheme;
        let (h, d, nh, nkv, f) = (cfg.hidden, cfg.head_dim, cfg.n_heads, cfg.n_kv_heads, cfg.ffn);
        if let Some(reason) = opts.tile_error() {
            return Err(GpuError::Unsupported { model: model_name.to_string(), reason });
        }
        if let Some(reason) = bloom::unsupported(&cfg) {
            return Err(GpuError::Unsupported { model: model_name.to_string(), reason });
        }
        if d % 32 != 0 || d > 256 || nkv == 0 || nh % nkv != 0 {
            return Err(GpuError::Unsupported {
                model: model_name.to_string(),
                reason: format!(
                    "head_dim {d} (must be a multiple of 32, at most 256) / heads {nh}:{nkv}"
                ),
            });
        }
        if scheme.is_int8_act() || scheme == GpuScheme::W8A16 {
            for (what, v) in [("hidden", h), ("ffn", f), ("heads·head_dim", nh * d)] {
                if v % 16 != 0 {
                    return Err(GpuError::Unsupported {
                        model: model_name.to_string(),
                        reason: format!("{what} = {v} is not a multiple of 16 (int8 kernels)"),
                    });
                }
            }
        }
        let ordinal = dev.info().ordinal;
        dev.load_kernels()?;
        // A CUDA graph cannot capture the legacy default stream eai-quant opens devices on:
        // with graphs on, the model (and its eai-quant calls) get a stream of their own.
        let dev = if opts.cuda_graph { Arc::new(dev.on_new_stream()?) } else { dev };
        let stream = quant_stream(&dev)?;
        // SAFETY: only probes for the shared library with dlopen; runs none of its code.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(GpuError::LibraryMissing {
                library: "nvrtc",
                hint: "NVRTC compiles the model kernels",
            });
        }
        let kernels = Kernels::load(stream.context(), &dev.arch(), ordinal)?;
        let blas = Blas::new(&stream, ordinal)?;
        let mut ld = Loader {
            dev: &dev,
            stream: &stream,
            bytes: WeightBytes::default(),
            part: Part::Embedding,
        };
        let table_ty = opts.table_type();
        let tsize = |t: InType| if t == InType::F32 { 4 } else { 2 };
        ld.check_fits("model.embed_tokens.weight", (cfg.vocab * h * tsize(table_ty)) as u64)?;
        let embed_f32 = fetch(Tensor::Embed { vocab: cfg.vocab, h })?;
        let embed = ld.dense("model.embed_tokens.weight", &embed_f32, table_ty)?;
        let int8_head = opts.int8_head
            && matches!(opts.scheme, GpuScheme::W8A16 | GpuScheme::W8A8 | GpuScheme::Dynamic);
        if int8_head && !h.is_multiple_of(16) {
            return Err(GpuError::Unsupported {
                model: model_name.to_string(),
                reason: format!("int8 LM head needs a hidden size divisible by 16, not {h}"),
            });
        }
        let mut head_i8 = None;
        ld.part = Part::Head;
        if int8_head && cfg.tie_embeddings {
            head_i8 = Some(Box::new(ld.int8("lm_head (tied, int8)", &embed_f32, cfg.vocab, h)?));
        }
        drop(embed_f32);
        let head = if cfg.tie_embeddings {
            None
        } else if int8_head {
            let w = fetch(Tensor::Head { vocab: cfg.vocab, h })?;
            head_i8 = Some(Box::new(ld.int8("lm_head.weight (int8)", &w, cfg.vocab, h)?));
            None
        } else {
            ld.check_fits("lm_head.weight", (cfg.vocab * h * tsize(table_ty)) as u64)?;
            let w = fetch(Tensor::Head { vocab: cfg.vocab, h })?;
            Some(ld.dense("lm_head.weight", &w, table_ty)?)
        };
        let wq = (nh + 2 * nkv) * d;
        ld.part = Part::Layers;
        let mut layers = Vec::with_capacity(cfg.n_layers);
        let mut bloom_parts = None;
        if bloom::is_bloom(&cfg) {
            let (l, b) = bloom::load_layers(&mut ld, &cfg, scheme, &mut fetch)?;
            (layers, bloom_parts) = (l, Some(Box::new(b)));
        }
        // (BLOOM's blocks are loaded above.)
        for l in 0..if bloom_parts.is_some() { 0 } else { cfg.n_layers } {
            let p = format!("model.layers.{l}");
            let mut qkv = fetch(Tensor::Matrix(format!("{p}.self_attn.q_proj.weight"), nh * d, h))?;
            qkv.extend(fetch(Tensor::Matrix(format!("{p}.self_attn.k_proj.weight"), nkv * d, h))?);
            qkv.extend(fetch(Tensor::Matrix(format!("{p}.self_attn.v_proj.weight"), nkv * d, h))?);
            let qkv_bias = if cfg.qkv_bias {
                let mut b = fetch(Tensor::Bias(format!("{p}.self_attn.q_proj.bias"), nh * d))?;
                b.extend(fetch(Tensor::Bias(format!("{p}.self_attn.k_proj.bias"), nkv * d))?);
                b.extend(fetch(Tensor::Bias(format!("{p}.self_attn.v_proj.bias"), nkv * d))?);
                Some(ld.upload(&format!("{p}.self_attn.qkv bias"), &b)?)
            } else {
                None
            };
            let qkv = ld.linear(format!("{p}.self_attn.qkv"), qkv, wq, h, scheme)?;
            let o = fetch(Tensor::Matrix(format!("{p}.self_attn.o_proj.weight"), h, nh * d))?;
            let o = ld.linear(format!("{p}.self_attn.o_proj"), o, h, nh * d, scheme)?;
            let mut gu = fetch(Tensor::Matrix(format!("{p}.mlp.gate_proj.weight"), f, h))?;
            gu.extend(fetch(Tensor::Matrix(format!("{p}.mlp.up_proj.weight"), f, h))?);
            let gate_up = ld.linear(format!("{p}.mlp.gate_up"), gu, 2 * f, h, scheme)?;
            let down = fetch(Tensor::Matrix(format!("{p}.mlp.down_proj.weight"), h, f))?;
            let down = ld.linear(format!("{p}.mlp.down_proj"), down, h, f, scheme)?;
            let attn_norm = ld.upload(
                &format!("{p}.input_layernorm"),
                &fetch(Tensor::Norm(format!("{p}.input_layernorm.weight"), h))?,
            )?;
            let ffn_norm = ld.upload(
                &format!("{p}.post_attention_layernorm"),
                &fetch(Tensor::Norm(format!("{p}.post_attention_layernorm.weight"), h))?,
            )?;
            layers.push(GpuLayer { attn_norm, qkv, qkv_bias, o, ffn_norm, gate_up, down });
        }
        let norm_name = bloom::final_norm_name(&cfg);
        let norm = ld.upload(norm_name, &fetch(Tensor::Norm(norm_name.into(), h))?)?;
        // Rope tables exactly as the CPU reference computes them (f32 angle, f32 cos/sin).
        let inv = cfg.rope_inv_freq();
        let rope_len = cfg.max_position.clamp(1, ROPE_TABLE_MAX);
        let half = d / 2;
        let mut cos = vec![0f32; rope_len * half];
        let mut sin = vec![0f32; rope_len * half];
        for p in 0..rope_len {
            for (i, fr) in inv.iter().enumerate() {
                let a = p as f32 * fr;
                cos[p * half + i] = a.cos();
                sin[p * half + i] = a.sin();
            }
        }
        let rope_cos = ld.upload("rope cos table", &cos)?;
        let rope_sin = ld.upload("rope sin table", &sin)?;
        let inv_freq = ld.upload("rope inverse frequencies", &inv)?;
        let weight_bytes = ld.bytes;
        let wtmp_len = if scheme == GpuScheme::W8A16 {
            [wq * h, h * nh * d, 2 * f * h, h * f].into_iter().max().unwrap_or(0)
        } else {
            0
        };
        dev.synchronize()?;
        Ok(GpuModel {
            dev,
            stream,
            kernels,
            blas,
            cfg,
            scheme,
            embed,
            head,
            head_i8,
            layers,
            bloom: bloom_parts,
            norm,
            rope_cos,
            rope_sin,
            inv_freq,
            rope_len,
            kv: None,
            kv_tokens: 0,
            scratch: Vec::new(),
            head_scratch: None,
            weight_bytes,
            wtmp_len,
            wtmp: None,
            gemv: opts.decode_gemv,
            capturable: opts.cuda_graph,
            graph_on: opts.cuda_graph,
            graph: None,
            fused: opts.fused_decode,
            tile: opts.gemv_tile,
            tiled_attention: opts.tiled_attention,
            half_gate_up: opts.half_gate_up,
            pdl: opts.pdl,
        })
    }
}

/// What a weight fetcher is asked for.
pub(super) enum Tensor {
    Embed { vocab: usize, h: usize },
    Head { vocab: usize, h: usize },
    Norm(String, usize),
    Bias(String, usize),
    Matrix(String, usize, usize),
}
