//! Issue 16 on the GPU: programmatic dependent launch of the fused decode kernels
//! (`GpuOptions::pdl`, sm_90+) changes when each kernel starts, never what it computes.

use eai_model::ModelConfig;
use eai_model::cuda::{GemvTile, GpuModel, GpuOptions, GpuScheme};

use super::{gpu, tiny, w16_gpu_model};

/// Logits of generation passes of 1–4 rows with every GEMV layout, and greedy tokens of graph
/// and eager decode (1 and 3 prompts), are the same bits with PDL on and off — on the tiny
/// model (kernels of a few microseconds, so each overlaps its predecessor for most of its
/// run), on the W16 test model (wider rows, an LM head of several waves) and on synthetic
/// SmolLM2-135M shapes (30 layers: 150 dependent launches per step); each PDL run twice.
#[test]
fn pdl_decode_gives_the_same_bits() {
    let Some(dev) = gpu("pdl_decode_gives_the_same_bits") else { return };
    let smol = ModelConfig::from_hf_json(
        include_str!("fixtures/smollm2_135m_shapes.json"),
        "SmolLM2-135M config.json",
    )
    .unwrap();
    for scheme in [GpuScheme::Fp32, GpuScheme::Fp16, GpuScheme::W8A16] {
        let opts = GpuOptions::new(scheme);
        let (cfg, src) = tiny();
        let tiny_m = GpuModel::load_with(dev.clone(), &src, cfg, opts).unwrap();
        let (cfg, src) = w16_gpu_model(true);
        let w16_m = GpuModel::load_with(dev.clone(), &src, cfg, opts).unwrap();
        let smol_m = GpuModel::synthetic_with(dev.clone(), smol.clone(), opts, 11).unwrap();
        for (name, mut g) in [("tiny", tiny_m), ("w16 model", w16_m), ("smol shapes", smol_m)] {
            if !g.set_pdl(true) {
                eprintln!("skipped pdl_decode_gives_the_same_bits: PDL needs sm_90+");
                return;
            }
            let vocab = g.config().vocab;
            let at = |i: u32, mul: u32| (i * mul + 17) % vocab as u32;
            for len in [1usize, 2, 3, 4] {
                let ids: Vec<u32> = (0..len as u32).map(|i| at(i, 61)).collect();
                for t in GemvTile::ALL {
                    g.set_gemv_tile(t);
                    g.set_pdl(false);
                    let off = g.generation_logits_for(&ids).unwrap();
                    for run in 0..2 {
                        g.set_pdl(true);
                        let on = g.generation_logits_for(&ids).unwrap();
                        assert!(on == off, "{scheme} {name} rows {len} {t:?} run {run}: logits");
                    }
                }
            }
            g.set_gemv_tile(GemvTile::Auto);
            let prompts: Vec<Vec<u32>> =
                (0..3u32).map(|p| (0..(5 + 4 * p)).map(|i| at(i + 31 * p, 7)).collect()).collect();
            let refs: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
            for batch in [1usize, 3] {
                for graph in [true, false] {
                    g.set_cuda_graph(graph);
                    let n = vec![24usize; batch];
                    g.set_pdl(false);
                    let (want, _, _) =
                        g.generate_greedy(&refs[..batch], &n, &[], vocab, |_, _| false).unwrap();
                    for run in 0..2 {
                        g.set_pdl(true);
                        let (got, _, _) = g
                            .generate_greedy(&refs[..batch], &n, &[], vocab, |_, _| false)
                            .unwrap();
                        assert_eq!(
                            got, want,
                            "{scheme} {name} batch {batch} graph {graph} run {run}: tokens"
                        );
                    }
                }
            }
            eprintln!("{scheme} {name}: PDL on = off (logits, rows 1-4, every tile; tokens)");
        }
    }
}
