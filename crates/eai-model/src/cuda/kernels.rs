//! Run-time compilation (NVRTC) of `kernels/model.cu`, cached once per process and
//! architecture, and loaded once per model into the device's context.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{CudaContext, CudaFunction, CudaModule};
use cudarc::nvrtc::{CompileOptions, Ptx};

use super::error::{GpuError, Result};

/// The kernel source: `model.cu` followed by the attention kernels of `attention.cu`, the
/// fused decode kernels of `decode.cu`, the bandwidth tensor-core GEMVs of `tw.cu` and BLOOM's
/// kernels of `bloom.cu`.
pub(crate) const SOURCE: &str = concat!(
    include_str!("../../kernels/model.cu"),
    "\n",
    include_str!("../../kernels/attention.cu"),
    "\n",
    include_str!("../../kernels/decode.cu"),
    "\n",
    include_str!("../../kernels/tw.cu"),
    "\n",
    include_str!("../../kernels/bloom.cu")
);

/// Weight-format suffixes of the fused decode GEMV family (`dg_<w>_<variant>`, decode.cu's
/// `EAI_DGEMV_SET`).
pub(crate) const DGEMV_WEIGHTS: &[&str] = &["i8", "f16", "bf16", "f32"];

/// Variants of the fused decode GEMV family per weight format (decode.cu's `EAI_DGEMV_SET`).
pub(crate) const DGEMV_VARIANTS: &[&str] = &[
    "nr_m1",
    "nr_m2",
    "nr_m4",
    "ns_m1",
    "ns_m2",
    "ns_m4",
    "np_m1",
    "np_m2",
    "np_m4",
    "xp_r1u8_m1",
    "xp_r1u8_m2",
    "xp_r1u8_m4",
    "xp_k4u2_m1",
    "xp_k4u2_m2",
    "xp_k4u2_m4",
];

/// Tensor-core int8 decode GEMVs (int8 weights only).
const DGEMV_TC: &[&str] = &[
    "dg_i8_xp_t8u4_m1",
    "dg_i8_xp_t8u4_m2",
    "dg_i8_xp_t8u4_m4",
    "dg_i8_tnr_m1",
    "dg_i8_tnr_m2",
    "dg_i8_tnr_m4",
    "dg_i8_tns_m1",
    "dg_i8_tns_m2",
    "dg_i8_tns_m4",
    "dg_i8_tnp_m1",
    "dg_i8_tnp_m2",
    "dg_i8_tnp_m4",
];

/// Weight formats of the bandwidth tensor-core GEMVs (`dg_<w>_w<variant>_m<MT>`, tw.cu's
/// `EAI_DGEMV_TW_SET`; issue 16).
pub(crate) const DGEMV_TW_WEIGHTS: &[&str] = &["i8", "f16"];

/// Their variants: norm + rope, norm + SwiGLU, norm + plain (LM head), plain.
pub(crate) const DGEMV_TW_VARIANTS: &[&str] = &["wnr", "wns", "wnp", "wxp"];

/// Row tiles of the batched plain W16 GEMVs (`dg_<w>_wxp_m<MT>`, `EAI_DGEMV_TWB`).
pub(crate) const DGEMV_TW_BATCHED: &[usize] = &[8, 16, 32];

/// Every fused decode GEMV entry point.
pub(crate) fn dgemv_names() -> Vec<String> {
    let tw = DGEMV_TW_WEIGHTS.iter().flat_map(|w| {
        DGEMV_TW_VARIANTS
            .iter()
            .flat_map(move |v| [1, 2, 4].map(move |m| format!("dg_{w}_{v}_m{m}")))
            .chain(DGEMV_TW_BATCHED.iter().map(move |m| format!("dg_{w}_wxp_m{m}")))
    });
    DGEMV_WEIGHTS
        .iter()
        .flat_map(|w| DGEMV_VARIANTS.iter().map(move |v| format!("dg_{w}_{v}")))
        .chain(DGEMV_TC.iter().map(|n| n.to_string()))
        .chain(tw)
        .collect()
}

/// Every entry point the module must export.
pub(crate) const ENTRY_POINTS: &[&str] = &[
    "embed_f32",
    "embed_f16",
    "embed_bf16",
    "rmsnorm_f32",
    "rmsnorm_f16",
    "rmsnorm_bf16",
    "rmsnorm_q8",
    "quant_rows",
    "absmax_all",
    "quant_global",
    "dequant_out",
    "widen_f16",
    "dequant_weight_f16",
    "rope_qkv",
    "attention_f32",
    "attention_f16",
    "attention_bf16",
    "attention_prefill_tile_f32_v2",
    "attention_prefill_tile_f32_v4",
    "attention_prefill_tile_f32_v8",
    "attention_prefill_tile_f16_v2",
    "attention_prefill_tile_f16_v4",
    "attention_prefill_tile_f16_v8",
    "attention_prefill_tile_bf16_v2",
    "attention_prefill_tile_bf16_v4",
    "attention_prefill_tile_bf16_v8",
    "swiglu_f32",
    "swiglu_f16",
    "swiglu_bf16",
    "swiglu_f16_h",
    "swiglu_bf16_h",
    "swiglu_q8",
    "swiglu_q8_acc",
    "swiglu_q8_acc_r16",
    "row_stats",
    "gather_logits",
    "gemv_i8_f16_m1",
    "gemv_i8_f16_m2",
    "gemv_i8_f16_m4",
    "gemv_i8_f16_m8",
    "gemv_f16_f16_m1",
    "gemv_f16_f16_m2",
    "gemv_f16_f16_m4",
    "gemv_f16_f16_m8",
    "gemv_bf16_bf16_m1",
    "gemv_bf16_bf16_m2",
    "gemv_bf16_bf16_m4",
    "gemv_bf16_bf16_m8",
    "gemv_f32_f32_m1",
    "gemv_f32_f32_m2",
    "gemv_f32_f32_m4",
    "gemv_f32_f32_m8",
    "attention_dec_f32_v2",
    "attention_dec_f32_v4",
    "attention_dec_f32_v8",
    "attention_dec_f16_v2",
    "attention_dec_f16_v4",
    "attention_dec_f16_v8",
    "attention_dec_bf16_v2",
    "attention_dec_bf16_v4",
    "attention_dec_bf16_v8",
    "argmax_rows",
    "layernorm_f32",
    "layernorm_f16",
    "layernorm_bf16",
    "layernorm_q8",
    "bias_kv",
    "gelu_f32",
    "gelu_f16",
    "gelu_bf16",
    "gelu_q8",
    "add_bias",
];

/// NVRTC options: no fast math, IEEE division/sqrt, no flush-to-zero.
pub(crate) fn options(arch: &str) -> CompileOptions {
    CompileOptions {
        ftz: Some(false),
        prec_sqrt: Some(true),
        prec_div: Some(true),
        use_fast_math: Some(false),
        options: vec![format!("--gpu-architecture={arch}"), "--std=c++17".to_string()],
        name: Some("eai_model.cu".to_string()),
        ..Default::default()
    }
}

type Cache = Mutex<HashMap<String, std::result::Result<String, String>>>;

fn cache() -> &'static Cache {
    static C: OnceLock<Cache> = OnceLock::new();
    C.get_or_init(|| Mutex::new(HashMap::new()))
}

/// PTX for `arch` (e.g. `compute_90`), compiled on first use. The caller has checked that NVRTC
/// loads (cudarc panics otherwise).
pub(crate) fn ptx_for(arch: &str) -> Result<Ptx> {
    let mut map = cache().lock().unwrap_or_else(|p| p.into_inner());
    let entry = map.entry(arch.to_string()).or_insert_with(|| {
        cudarc::nvrtc::compile_ptx_with_opts(SOURCE, options(arch)).map(|p| p.to_src()).map_err(
            |e| match e {
                cudarc::nvrtc::CompileError::CompileError { log, .. } => {
                    log.to_string_lossy().into_owned()
                }
                other => format!("{other:?}"),
            },
        )
    });
    match entry {
        Ok(src) => Ok(Ptx::from_src(src.clone())),
        Err(log) => Err(GpuError::Compile { arch: arch.to_string(), log: log.clone() }),
    }
}

/// The loaded kernel functions.
#[derive(Debug)]
pub(crate) struct Kernels {
    _module: Arc<CudaModule>,
    funcs: HashMap<String, CudaFunction>,
}

impl Kernels {
    pub(crate) fn load(ctx: &Arc<CudaContext>, arch: &str, ordinal: usize) -> Result<Self> {
        let ptx = ptx_for(arch)?;
        let module = ctx
            .load_module(ptx)
            .map_err(|e| GpuError::driver("cuModuleLoadData", ordinal, "eai-model kernels", e))?;
        let mut funcs = HashMap::new();
        let names = ENTRY_POINTS.iter().map(|s| s.to_string()).chain(dgemv_names());
        for name in names {
            let f = module
                .load_function(&name)
                .map_err(|e| GpuError::driver("cuModuleGetFunction", ordinal, name.clone(), e))?;
            funcs.insert(name, f);
        }
        Ok(Kernels { _module: module, funcs })
    }

    pub(crate) fn get(&self, name: &str) -> Result<&CudaFunction> {
        self.funcs.get(name).ok_or_else(|| GpuError::Unsupported {
            model: "<kernels>".into(),
            reason: format!("kernel `{name}` missing from the compiled module"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_point_is_defined() {
        for name in ENTRY_POINTS {
            let direct = SOURCE.contains(&format!("void {name}("));
            let by_macro = SOURCE.contains(&format!("({name},"));
            assert!(direct || by_macro, "kernel `{name}` is not defined in model.cu");
        }
        // The fused decode GEMVs are pasted together by EAI_DGEMV_SET(W, X, <weight>).
        for w in DGEMV_WEIGHTS {
            assert!(SOURCE.contains(&format!(", {w})\n")), "no EAI_DGEMV_SET for {w}");
        }
        for v in DGEMV_VARIANTS {
            assert!(SOURCE.contains(&format!("dg_##WN##_{v},")), "no dgemv variant {v}");
        }
        for w in DGEMV_TW_WEIGHTS {
            assert!(SOURCE.contains(&format!(", {w})\n")), "no EAI_DGEMV_TW_SET for {w}");
        }
        for v in DGEMV_TW_VARIANTS {
            for m in [1, 2, 4] {
                let n = format!("dg_##WN##_{v}_m{m},");
                assert!(SOURCE.contains(&n), "no tensor-core GEMV variant {v}_m{m}");
            }
        }
        for m in DGEMV_TW_BATCHED {
            let n = format!("EAI_DGEMV_TWB(dg_##WN##_wxp_m{m}, W, {})", m / 8);
            assert!(SOURCE.contains(&n), "no batched tensor-core GEMV m{m}");
        }
    }

    #[test]
    fn options_have_no_fast_math() {
        let o = options("compute_90");
        assert_eq!(o.use_fast_math, Some(false));
        assert_eq!(o.ftz, Some(false));
        assert!(o.options.iter().any(|s| s.contains("compute_90")));
    }

    /// Compiles the kernels when NVRTC is installed (no GPU needed), else skips.
    #[test]
    fn nvrtc_compiles_the_kernels() {
        // SAFETY: only probes for the shared library with dlopen; runs none of its code.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            eprintln!("skipped nvrtc_compiles_the_kernels: NVRTC library not found");
            return;
        }
        for arch in ["compute_80", "compute_90"] {
            let ptx = ptx_for(arch).unwrap_or_else(|e| panic!("{e}"));
            let src = ptx.to_src();
            let names = ENTRY_POINTS.iter().map(|s| s.to_string()).chain(dgemv_names());
            for name in names {
                assert!(src.contains(&format!(".entry {name}(")), "{name} missing in PTX");
            }
        }
    }
}
