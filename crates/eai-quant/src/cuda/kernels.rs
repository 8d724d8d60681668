//! Run-time compilation of the embedded CUDA C kernels (NVRTC), cached once per process.
//!
//! The `.cu` files under `kernels/` are embedded with `include_str!` and concatenated into one
//! translation unit. It is compiled to PTX the first time any device needs it, for that device's
//! virtual architecture (`compute_XY`); the PTX is kept in a process-wide cache keyed by the
//! architecture, so opening a second device of the same kind does not compile again. Loading the
//! PTX into a context (where the driver JIT-compiles it to machine code) happens once per
//! [`CudaDevice`](super::CudaDevice).
//!
//! Compiler flags: no fast math. `--fmad=false` keeps every `a*b+c` written in the source as two
//! correctly rounded operations (kernels that want a fused multiply-add call `fmaf` explicitly),
//! `--prec-div=true --prec-sqrt=true --ftz=false` keep division, square root and subnormals IEEE,
//! so the quantization arithmetic rounds exactly like the CPU reference.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use cudarc::nvrtc::{CompileOptions, Ptx};

use super::error::{CudaError, Result};

/// Name of the compiled module (for error messages).
pub(crate) const MODULE_NAME: &str = "eai_quant.cu";

/// The full kernel source: the shared header followed by each kernel file.
pub(crate) fn source() -> String {
    [
        include_str!("../../kernels/common.cuh"),
        include_str!("../../kernels/cast.cu"),
        include_str!("../../kernels/gemm.cu"),
        include_str!("../../kernels/quant.cu"),
        include_str!("../../kernels/quant_pipelined.cu"),
        include_str!("../../kernels/quant_rows.cu"),
        include_str!("../../kernels/dequant.cu"),
        include_str!("../../kernels/quant_entry.cu"),
        include_str!("../../kernels/quant_coop.cu"),
        include_str!("../../kernels/util.cu"),
    ]
    .join("\n")
}

/// Name of the Hopper-only module of the int8 wgmma GEMM (for error messages).
pub(crate) const WGMMA_MODULE_NAME: &str = "eai_quant_wgmma.cu";

/// Virtual architecture of the wgmma module: `wgmma`, `setmaxnreg` and the TMA tensor loads
/// need the arch-specific Hopper target, which runs on compute capability 9.0 only.
pub(crate) const WGMMA_ARCH: &str = "compute_90a";

/// Source of the wgmma module: the shared header and `gemm_wgmma.cu` only, so that the other
/// kernels stay compiled for the portable `compute_XY` targets.
pub(crate) fn wgmma_source() -> String {
    [include_str!("../../kernels/common.cuh"), include_str!("../../kernels/gemm_wgmma.cu")]
        .join("\n")
}

/// Entry points of the wgmma module: v1 (one CTA per tile), v2 and v3 (clusters of 2 and 4 CTAs
/// sharing W's tile through TMA multicast), v4 (v2 with the epilogue stored by the TMA unit from
/// shared memory).
pub(crate) const WGMMA_ENTRY_POINTS: &[&str] = &[
    "gemm_wgmma_f32",
    "gemm_wgmma_f16",
    "gemm_wgmma_bf16",
    "gemm_wgmma2_f32",
    "gemm_wgmma2_f16",
    "gemm_wgmma2_bf16",
    "gemm_wgmma3_f32",
    "gemm_wgmma3_f16",
    "gemm_wgmma3_bf16",
    "gemm_wgmma4_f32",
    "gemm_wgmma4_f16",
    "gemm_wgmma4_bf16",
];

/// Every kernel entry point the module must export (checked when the module is loaded).
pub(crate) const ENTRY_POINTS: &[&str] = &[
    "cast_f32_f16",
    "cast_f32_bf16",
    "cast_f16_f32",
    "cast_bf16_f32",
    "cast_f16_bf16",
    "cast_bf16_f16",
    "gemm_dequant_f32",
    "gemm_dequant_f16",
    "gemm_dequant_bf16",
    "w8a16_f16_m1",
    "w8a16_f16_m2",
    "w8a16_f16_m4",
    "w8a16_f16_m8",
    "w8a16_bf16_m1",
    "w8a16_bf16_m2",
    "w8a16_bf16_m4",
    "w8a16_bf16_m8",
    "quant_rows_team_f32",
    "quant_rows_block_f32",
    "quant_stats_all_f32",
    "quant_stats_channels_f32",
    "quant_apply_f32",
    "quant_rows_team_f16",
    "quant_rows_block_f16",
    "quant_stats_all_f16",
    "quant_stats_channels_f16",
    "quant_apply_f16",
    "quant_rows_team_bf16",
    "quant_rows_block_bf16",
    "quant_stats_all_bf16",
    "quant_stats_channels_bf16",
    "quant_apply_bf16",
    "quant_rows_tiles2_f32",
    "quant_rows_tiles3_f32",
    "quant_rows_tiles4_f32",
    "quant_stats_cols_f32",
    "quant_apply_vec_f32",
    "quant_apply_cols_f32",
    "quant_rows_tiles2_f16",
    "quant_rows_tiles3_f16",
    "quant_rows_tiles4_f16",
    "quant_stats_cols_f16",
    "quant_apply_vec_f16",
    "quant_apply_cols_f16",
    "quant_rows_tiles2_bf16",
    "quant_rows_tiles3_bf16",
    "quant_rows_tiles4_bf16",
    "quant_stats_cols_bf16",
    "quant_apply_vec_bf16",
    "quant_apply_cols_bf16",
    "w8a16_f16_m1_r1u2",
    "w8a16_f16_m1_r2u1",
    "w8a16_f16_m1_r4u1",
    "w8a16_f16_m1_r1u8",
    "w8a16_f16_m1_r2u2",
    "w8a16_f16_m1_r2u4",
    "w8a16_f16_m1_r2u8",
    "w8a16_f16_m1_r4u2",
    "w8a16_f16_m1_r4u4",
    "w8a16_bf16_m1_r1u2",
    "w8a16_bf16_m1_r2u1",
    "w8a16_bf16_m1_r4u1",
    "w8a16_bf16_m1_r1u8",
    "w8a16_bf16_m1_r2u2",
    "w8a16_bf16_m1_r2u4",
    "w8a16_bf16_m1_r2u8",
    "w8a16_bf16_m1_r4u2",
    "w8a16_bf16_m1_r4u4",
    "gemm_dequant8_f32",
    "gemm_dequant8_f16",
    "gemm_dequant8_bf16",
    "quant_params",
    "quant_init",
    "quant_rows_reg1_f32",
    "quant_rows_reg2_f32",
    "quant_rows_reg4_f32",
    "quant_rows_reg8_f32",
    "quant_rows_reg16_f32",
    "quant_rows_split4x4_f32",
    "quant_rows_regc4_f32",
    "quant_rows_split4x4cs_f32",
    "quant_rows_regc2cs_f32",
    "dequant_4b_f32",
    "quant_rows_reg1_f16",
    "quant_rows_reg2_f16",
    "quant_rows_reg4_f16",
    "quant_rows_reg8_f16",
    "quant_rows_reg16_f16",
    "quant_rows_split4x4_f16",
    "quant_rows_regc4_f16",
    "quant_rows_split4x4cs_f16",
    "quant_rows_regc2cs_f16",
    "dequant_4b_f16",
    "quant_rows_reg1_bf16",
    "quant_rows_reg2_bf16",
    "quant_rows_reg4_bf16",
    "quant_rows_reg8_bf16",
    "quant_rows_reg16_bf16",
    "quant_rows_split4x4_bf16",
    "quant_rows_regc4_bf16",
    "quant_rows_split4x4cs_bf16",
    "quant_rows_regc2cs_bf16",
    "dequant_4b_bf16",
    "quant_tensor_coop_f32",
    "quant_tensor_coop_f16",
    "quant_tensor_coop_bf16",
    "fill_uniform_f32",
    "fill_random_u32",
    "probe_16_4",
    "probe_16_8",
    "probe_16_16",
    "probe_8_16",
    "probe_4_16",
    "probeb_16_4",
    "probeb_16_8",
    "probeb_16_16",
    "probe_16_0",
    "probeb_8_16",
    "probeb_4_16",
];

/// Compile options used for every build of a module.
fn options_named(arch: &str, module: &str) -> CompileOptions {
    CompileOptions {
        ftz: Some(false),
        prec_sqrt: Some(true),
        prec_div: Some(true),
        fmad: Some(false),
        use_fast_math: Some(false),
        options: vec![format!("--gpu-architecture={arch}"), "--std=c++17".to_string()],
        name: Some(module.to_string()),
        ..Default::default()
    }
}

type PtxCache = Mutex<HashMap<(&'static str, String), std::result::Result<String, String>>>;

fn cache() -> &'static PtxCache {
    static CACHE: OnceLock<PtxCache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// PTX of the module for `arch` (e.g. `compute_90`), compiled on first use and cached for the
/// life of the process (failures are cached too, so a broken toolkit is reported once per call
/// without recompiling).
///
/// The caller must have checked that the NVRTC library is loadable (see
/// [`probe_library`](super::device)), because cudarc panics when it is not.
pub(crate) fn ptx_for(arch: &str) -> Result<Ptx> {
    compile_cached(MODULE_NAME, source, arch)
}

/// PTX of the wgmma module (for [`WGMMA_ARCH`]), compiled on first use and cached like
/// [`ptx_for`]. The same NVRTC precondition applies.
pub(crate) fn wgmma_ptx() -> Result<Ptx> {
    compile_cached(WGMMA_MODULE_NAME, wgmma_source, WGMMA_ARCH)
}

fn compile_cached(module: &'static str, src: fn() -> String, arch: &str) -> Result<Ptx> {
    let compile_error = |log: String| CudaError::Compile { module, arch: arch.to_string(), log };
    // A poisoned lock only means another thread panicked while compiling; the map itself is
    // still consistent (entries are inserted whole), so keep using it.
    let mut map = cache().lock().unwrap_or_else(|p| p.into_inner());
    let entry = map.entry((module, arch.to_string())).or_insert_with(|| {
        cudarc::nvrtc::compile_ptx_with_opts(src(), options_named(arch, module))
            .map(|ptx| ptx.to_src())
            .map_err(|e| match e {
                cudarc::nvrtc::CompileError::CompileError { log, .. } => {
                    log.to_string_lossy().into_owned()
                }
                other => format!("{other:?}"),
            })
    });
    match entry {
        Ok(src) => Ok(Ptx::from_src(src.clone())),
        Err(log) => Err(compile_error(log.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_holds_every_entry_point() {
        let src = source();
        for name in ENTRY_POINTS {
            // names made by token pasting (`quant_apply_##SUF`) appear with their base name
            let base = ["_f32", "_f16", "_bf16"]
                .iter()
                .find_map(|suf| name.strip_suffix(suf))
                .unwrap_or(name);
            // session-3 families pasted from a variant tag as well
            let family = (name.starts_with("quant_rows_reg")
                && src.contains("quant_rows_reg##V##_##SUF("))
                || (name.starts_with("quant_rows_split")
                    && src.contains("quant_rows_split##NW##x##V##_##SUF("))
                || (name.starts_with("quant_rows_tiles")
                    && src.contains("quant_rows_tiles##S##_##SUF("))
                || (name.starts_with("dequant_4b") && src.contains("dequant_4b_##SUF("))
                || (name.starts_with("probe_") && src.contains("probe_##RB##_##WB("))
                || (name.starts_with("probeb_") && src.contains("probeb_##RB##_##WB("));
            assert!(
                family
                    || src.contains(&format!("{name}("))
                    || src.contains(&format!("({name},"))
                    || src.contains(&format!("{base}_##SUF(")),
                "kernel `{name}` is not defined in the embedded source"
            );
        }
    }

    /// Compiles the module for Hopper when NVRTC is installed (no GPU needed); this catches
    /// CUDA C errors on machines without a GPU. Skips with a message otherwise.
    #[test]
    fn nvrtc_compiles_the_module() {
        if super::super::device::probe_library(super::super::device::Library::Nvrtc).is_err() {
            eprintln!("skipped nvrtc_compiles_the_module: NVRTC library not found");
            return;
        }
        for arch in ["compute_80", "compute_90"] {
            match ptx_for(arch) {
                Ok(ptx) => {
                    let src = ptx.to_src();
                    for name in ENTRY_POINTS {
                        assert!(src.contains(&format!(".entry {name}(")), "{name} missing in PTX");
                    }
                    if let Ok(dir) = std::env::var("EAI_DUMP_PTX") {
                        let _ = std::fs::write(format!("{dir}/eai_quant_{arch}.ptx"), &src);
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// The wgmma module compiles for `compute_90a` and exports its entry points (NVRTC only).
    #[test]
    fn nvrtc_compiles_the_wgmma_module() {
        if super::super::device::probe_library(super::super::device::Library::Nvrtc).is_err() {
            eprintln!("skipped nvrtc_compiles_the_wgmma_module: NVRTC library not found");
            return;
        }
        let src = wgmma_ptx().unwrap_or_else(|e| panic!("{e}")).to_src();
        assert!(src.contains(".target sm_90a"), "wgmma module not built for sm_90a");
        for name in WGMMA_ENTRY_POINTS {
            assert!(src.contains(&format!(".entry {name}(")), "{name} missing in PTX");
        }
        assert!(src.contains("wgmma.mma_async.sync.aligned.m64n256k32.s32.s8.s8"));
        assert!(src.contains("cp.async.bulk.tensor.2d"));
        assert!(src.contains(".multicast::cluster"), "v2 multicast load missing");
        assert!(src.contains(".reqnctapercluster 2, 1, 1"), "v2 cluster dims missing");
        assert!(src.contains(".reqnctapercluster 4, 1, 1"), "v3 cluster dims missing");
        assert!(
            src.contains("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group"),
            "v4 TMA store missing"
        );
        assert!(src.contains("cp.async.bulk.wait_group.read 0"), "v4 store wait missing");
        assert!(src.contains("fence.proxy.async.shared::cta"), "v4 proxy fence missing");
        // the portable module does not carry the wgmma kernels
        assert!(!source().contains("gemm_wgmma_f32"));
        if let Ok(dir) = std::env::var("EAI_DUMP_PTX") {
            let _ = std::fs::write(format!("{dir}/eai_quant_wgmma_{WGMMA_ARCH}.ptx"), &src);
        }
    }

    #[test]
    fn no_fast_math_in_options() {
        let built = format!("{:?}", options_named("compute_90", MODULE_NAME).options);
        assert!(built.contains("compute_90"));
        let opts = options_named("compute_90", MODULE_NAME);
        assert_eq!(opts.fmad, Some(false));
        assert_eq!(opts.use_fast_math, Some(false));
        assert_eq!(opts.ftz, Some(false));
    }
}
