//! Issue 16 on the GPU: the bandwidth tensor-core GEMV (`GemvTile::W16`, decode and batched)
//! against the CUDA-core layouts and the CPU reference, and the memory report by part.

use eai_model::cuda::{GpuModel, GpuScheme};
use eai_model::{F32Tensor, LoadOptions, Model, ModelConfig};

use super::{Tiny, compare, gpu, tiny_with};

/// A Qwen2-style random model whose shapes exercise the W16 GEMV's edges: 22 chunks of K per
/// row in the down projection (uneven over 8 warps), 48 rope units, an LM head of 6,007 rows
/// (376 units, the last one partial: more than one wave of 8-warp blocks on an H100/H200).
pub(crate) fn w16_model(tied: bool) -> (ModelConfig, Tiny) {
    let (cfg, mut src) = tiny_with(&format!(
        r#"{{ "architectures": ["Qwen2ForCausalLM"], "hidden_size": 512, "intermediate_size": 1408,
             "num_attention_heads": 8, "num_key_value_heads": 2, "num_hidden_layers": 2,
             "vocab_size": 6007, "rope_theta": 10000.0, "rms_norm_eps": 1e-6,
             "max_position_embeddings": 512, "tie_word_embeddings": {tied} }}"#
    ));
    if !tied {
        let e = src.t["model.embed_tokens.weight"].clone();
        let data = e.data.iter().rev().map(|v| v * 0.5).collect();
        src.t.insert("lm_head.weight".into(), F32Tensor { shape: e.shape, data });
    }
    (cfg, src)
}

/// Issue 16: the bandwidth tensor-core GEMV (`GemvTile::W16`: plain, norm + rope/KV write,
/// norm + SwiGLU, norm-fused LM head; int8 and f16 weights) against the CUDA-core warp-per-row
/// layout (R1U8) on the same model — generation passes of 1–4 rows (MT 1, 2, 4) within the
/// bound the other block-split layouts meet (FP16 0.03, W8A16 0.03) — and its batched plain
/// form (passes of 8–32 rows) against the other tiles' path there; both against the CPU
/// reference (f32 head); greedy tokens of 1, 3 and 12 prompts (graph and eager) equal to R1U8's.
#[test]
fn w16_decode_gemv_matches_the_cuda_core_path_and_the_cpu() {
    use eai_model::cuda::{GemvTile, GpuOptions};
    let Some(dev) = gpu("w16_decode_gemv_matches_the_cuda_core_path_and_the_cpu") else { return };
    let (cfg, src) = w16_model(true);
    let vocab = cfg.vocab;
    // (scheme, f16 table/head, int8 head, bound vs R1U8, bound vs CPU (f32-head runs only)).
    // W8A16 first: its batched W16 passes are the default for decode steps of 2–32 sequences,
    // and the FP16 8-row pass failed its bound on the H100 (2.5e-2, 2026-12-06), which stopped
    // the test before any W8A16 run.
    let runs = [
        (GpuScheme::W8A16, false, false, 0.03, Some(0.05)),
        (GpuScheme::W8A16, true, false, 0.03, None),
        (GpuScheme::W8A16, true, true, 0.03, None),
        // FP16 rows ≤ 4: 2.09e-2 at 3 rows on an H200 once RMSNorm summed each row in one warp
        // (1.70e-2 before, 2026-12-06): each path rounds its f16 inputs on its own.
        (GpuScheme::Fp16, true, false, 0.03f32, Some(0.05f32)),
    ];
    for (scheme, half, int8_head, vs_r1u8, vs_cpu) in runs {
        let opts = GpuOptions::new(scheme).half_head(half).int8_head(int8_head);
        let mut g = GpuModel::load_with(dev.clone(), &src, cfg.clone(), opts).unwrap();
        let label = format!("{scheme} half-head {half} int8-head {int8_head}");
        assert!(g.set_fused_decode(true), "{label}: fused decode off");
        let cpu = vs_cpu.map(|_| {
            Model::load(&src, cfg.clone(), LoadOptions::new(scheme.cpu_reference().unwrap()))
                .unwrap()
        });
        for len in [1usize, 2, 3, 4] {
            let ids: Vec<u32> = (0..len as u32).map(|i| (i * 613 + 29) % vocab as u32).collect();
            g.set_gemv_tile(GemvTile::R1U8);
            let want = g.generation_logits_for(&ids).unwrap();
            g.set_gemv_tile(GemvTile::W16);
            let got = g.generation_logits_for(&ids).unwrap();
            let d = compare(&got, &rows_array(&want));
            eprintln!("{label} rows {len}: W16 vs R1U8 max |Δ| {:.3e}", d.max_abs);
            assert!(d.max_abs <= vs_r1u8, "{label} rows {len}: W16 vs R1U8 {}", d.max_abs);
            assert_eq!(d.top1_agree, 1.0, "{label} rows {len}: top-1");
            if let (Some(bound), Some(cpu)) = (vs_cpu, &cpu) {
                let c = compare(&got, &cpu.logits_for(&ids).unwrap());
                eprintln!("{label} rows {len}: W16 vs CPU max |Δ| {:.3e}", c.max_abs);
                assert!(c.max_abs <= bound, "{label} rows {len}: W16 vs CPU {}", c.max_abs);
                assert!(c.top1_agree >= 0.75, "{label} rows {len}: top-1 {}", c.top1_agree);
            }
        }
        // Passes of 5–32 rows: the batched W16 GEMVs (layers and head) against the path the
        // other tiles take there (the CUDA-core GEMV up to 16 rows; FP16 cuBLAS; W8A16 above 16
        // rows: f16-dequantized weights and cuBLAS, hence the wider bound) and the CPU.
        for len in [8usize, 13, 20, 32] {
            let ids: Vec<u32> = (0..len as u32).map(|i| (i * 389 + 7) % vocab as u32).collect();
            g.set_gemv_tile(GemvTile::R1U8);
            let want = g.generation_logits_for(&ids).unwrap();
            g.set_gemv_tile(GemvTile::W16);
            let got = g.generation_logits_for(&ids).unwrap();
            let d = compare(&got, &rows_array(&want));
            // The other path is cuBLAS for FP16 (f16 inputs rounded where cuBLAS rounds them,
            // its own summation order): on the H100 (2026-12-06) the two FP16 paths were
            // 2.3e-2 and 2.6e-2 from the CPU at 8 rows and 2.5e-2 apart, so between them the
            // bound is the sum of their distances from the CPU, which the CPU bound guards.
            let bound = match scheme {
                GpuScheme::W8A16 if len > 16 => 0.06,
                GpuScheme::Fp16 => 0.05,
                _ => vs_r1u8,
            };
            eprintln!(
                "{label} rows {len}: batched W16 vs other tiles max |Δ| {:.3e}, top-1 {}",
                d.max_abs, d.top1_agree
            );
            // Both distances from the CPU printed before any bound is asserted.
            let vs_ref = cpu.as_ref().map(|cpu| {
                let c = compare(&got, &cpu.logits_for(&ids).unwrap());
                let o = compare(&want, &cpu.logits_for(&ids).unwrap());
                eprintln!(
                    "{label} rows {len}: vs CPU max |Δ| batched W16 {:.3e}, other tiles {:.3e}",
                    c.max_abs, o.max_abs
                );
                c.max_abs
            });
            assert!(d.max_abs <= bound, "{label} rows {len}: batched W16 {}", d.max_abs);
            assert!(d.top1_agree >= 0.9, "{label} rows {len}: top-1 {}", d.top1_agree);
            if let (Some(b), Some(c)) = (vs_cpu, vs_ref) {
                assert!(c <= b, "{label} rows {len}: batched W16 vs CPU {c}");
            }
        }
        // Greedy generation of 1, 3 and 12 prompts (12: decode steps of 12 rows, batched W16).
        let twelve: Vec<Vec<u32>> =
            (0..12u32).map(|i| vec![(i * 311 + 3) % vocab as u32, i + 1]).collect();
        for prompts in
            [vec![vec![5u32, 77, 1200]], vec![vec![9u32], vec![4000], vec![250, 31]], twelve]
        {
            let refs: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
            let n = vec![24usize; refs.len()];
            g.set_gemv_tile(GemvTile::R1U8);
            let (want, _, _) = g.generate_greedy(&refs, &n, &[], vocab, |_, _| false).unwrap();
            g.set_gemv_tile(GemvTile::W16);
            let mut runs = Vec::new();
            for graph in [true, false] {
                g.set_cuda_graph(graph);
                runs.push(g.generate_greedy(&refs, &n, &[], vocab, |_, _| false).unwrap().0);
            }
            g.set_cuda_graph(true);
            // Graph and eager replay the same kernels: the same tokens. Against R1U8 (another
            // summation order) a near-tie may flip one token and the rest of its sequence, so
            // ≥ 85 % of the tokens must agree (a wrong kernel agrees on almost none).
            assert_eq!(runs[0], runs[1], "{label} batch {}: W16 graph vs eager", refs.len());
            let total: usize = want.iter().map(Vec::len).sum();
            let same: usize = runs[0]
                .iter()
                .zip(&want)
                .map(|(a, b)| a.iter().zip(b).filter(|(x, y)| x == y).count())
                .sum();
            eprintln!("{label} batch {}: W16 tokens equal to R1U8's {same}/{total}", refs.len());
            assert!(same * 100 >= total * 85, "{label} batch {}: {same}/{total}", refs.len());
        }
    }
}

/// Issue 16: `GpuMemory::weights` is the sum of its parts, each part is what the shapes say
/// (an untied W8A16 model: f16 embedding and head, int8 codes, f32 scales; the int8 head: codes
/// and scales; FP16: 2 bytes per projection weight), the captured decode step's buffers and the
/// W8A16 staging buffer (one per model, the largest projection in f16) are reported, and
/// `decode_read_bytes` grows by the f32 KV bytes of each context token.
#[test]
fn memory_report_adds_up_by_part() {
    use eai_model::cuda::GpuOptions;
    let Some(dev) = gpu("memory_report_adds_up_by_part") else { return };
    let (cfg, src) = w16_model(false);
    let (h, d, nh, nkv, f, v, l) =
        (cfg.hidden, cfg.head_dim, cfg.n_heads, cfg.n_kv_heads, cfg.ffn, cfg.vocab, cfg.n_layers);
    let wq = (nh + 2 * nkv) * d;
    let params = (l * (wq * h + h * nh * d + 2 * f * h + h * f)) as u64;
    let rows = (l * (wq + h + 2 * f + h)) as u64;
    for (scheme, int8_head) in
        [(GpuScheme::W8A16, false), (GpuScheme::W8A16, true), (GpuScheme::Fp16, false)]
    {
        let opts = GpuOptions::new(scheme).half_head(true).int8_head(int8_head);
        let mut g = GpuModel::load_with(dev.clone(), &src, cfg.clone(), opts).unwrap();
        let m = g.memory().unwrap();
        let p = m.weight_parts;
        eprintln!("{scheme} int8 head {int8_head}: {m:?}");
        assert_eq!(m.weights, p.total());
        assert_eq!(p.embedding, (2 * v * h) as u64, "{scheme}: f16 embedding");
        let head = if int8_head { (v * h + 4 * v) as u64 } else { (2 * v * h) as u64 };
        assert_eq!(p.lm_head, head, "{scheme} int8 head {int8_head}: head");
        let (layers, scales) =
            if scheme == GpuScheme::Fp16 { (2 * params, 0) } else { (params, 4 * rows) };
        assert_eq!((p.layers, p.scales), (layers, scales), "{scheme}: layers");
        // Norms (2 per layer + the final one), q/k/v biases, rope tables and frequencies.
        let tables = (512 * (d / 2) * 2 * 4) as u64;
        let rope = tables + (d / 2 * 4) as u64;
        let other = (4 * ((2 * l + 1) * h + l * wq)) as u64 + rope;
        assert_eq!(p.other, other, "{scheme}: norms, biases, rope");
        let (a, b) = (g.decode_read_bytes(0), g.decode_read_bytes(100));
        assert_eq!(b - a, (4 * 2 * l * 100 * nkv * d) as u64);
        // One embedding row and one rope-table row (cos and sin) instead of the tables.
        assert_eq!(
            a,
            layers + scales + head + (2 * h) as u64 + other - tables + (d / 2 * 8) as u64
        );
        // A greedy decode captures a graph step with buffers of its own.
        let (o, _, _) = g.generate_greedy(&[&[1, 2, 3]], &[4], &[], v, |_, _| false).unwrap();
        assert_eq!(o[0].len(), 4);
        let m = g.memory().unwrap();
        assert!(m.graph > 0 && m.kv_cache > 0, "{scheme}: {m:?}");
        // Scoring passes of 40 and 80 rows: W8A16 dequantizes into one staging buffer.
        for n in [40usize, 80] {
            let ids: Vec<u32> = (0..n as u32).map(|i| (i * 37 + 11) % v as u32).collect();
            g.logits_for(&ids).unwrap();
        }
        let m = g.memory().unwrap();
        let staging = if scheme == GpuScheme::W8A16 { (2 * 2 * f * h) as u64 } else { 0 };
        assert_eq!(m.staging, staging, "{scheme}: staging");
        g.release_buffers();
        let m = g.memory().unwrap();
        assert_eq!((m.kv_cache, m.scratch, m.graph, m.staging), (0, 0, 0, 0));
    }
}

/// Logit rows as the matrix `compare` takes.
fn rows_array(rows: &[Vec<f32>]) -> ndarray::Array2<f32> {
    let cols = rows.first().map_or(0, Vec::len);
    ndarray::Array2::from_shape_vec((rows.len(), cols), rows.iter().flatten().copied().collect())
        .unwrap()
}
