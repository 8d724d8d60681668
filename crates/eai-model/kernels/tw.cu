// eai-model's bandwidth tensor-core GEMVs (issue 16), appended after decode.cu (same NVRTC
// module: DecArgs, dgemv_epilogue, norm_rows_to_smem and i8pair_f16x2 in scope).

// ---------------------------------------------------------------------------------------------
// Bandwidth GEMV on tensor cores with the weights as the A operand (issue 16, `GemvTile::W16`;
// int8 or f16 weights, f16 activations, sm_80+). A work unit is 16 weight rows — plain: 16
// consecutive rows; SwiGLU: gate rows c…c+7 and up rows f+c…f+c+7; rope: first-half rows
// i…i+7 of one head and their partners i+d/2… — so that rows g and g + 8 of the mma's A
// operand are the pair one epilogue needs, and they land in the same thread. A persistent grid
// of blocks of 8 warps (4 where that puts every unit in one wave) works through the units one
// at a time (the norm-fused variants normalize their batch rows into shared memory once per
// block, as dgemv_body does); the warps stride K in chunks of 4 × 16 bytes per row: lane (g = lane / 4, t = lane % 4) loads
// the 16 bytes at chunk·4·EPV + t·EPV of rows g and g + 8 and the activations at the same k,
// U chunks in flight per warp (2·U 16-byte weight loads per thread, unconditional from clamped
// addresses; chunks past K skipped by a warp-uniform test). Each `mma.sync.m16n8k16` takes
// 16 rows × 16 k of weights as A and the activations as B (n = batch row; MT ≤ 4 of the 8
// columns used); within a 16-byte vector the k order is permuted alike for both operands (as
// in dgemv_tc_body), so the dot products are unchanged: products exact (f16 × f16 into f32),
// sums f32. int8 → f16 as in dgemv_tc_body (one byte permute and one f16x2 subtract per two
// weights); f16 weights go to the mma as loaded. Warp partials are added across the warps
// in shared memory in warp order, then warp 0 runs dgemv_epilogue on (row g, row g + 8) ×
// (batch rows 2t, 2t + 1): deterministic, another summation order than the CUDA-core layouts.
// The partials alternate between two buffers, so one barrier per unit suffices (a warp writes
// a buffer again two units later, after the barrier warp 0 reaches only once it has read it).
// Per weight byte about half the instructions of dgemv_tc_body (16 rows per mma instead of 8,
// one activation load per weight load instead of two) and a quarter of the CUDA-core GEMV's.
// Dynamic shared memory: the 2 × 4 KB of warp partials, then (norm variants) MT × K f16 rows.
#define TW_PART_BYTES 8192
template <class W> struct TWF;
template <> struct TWF<VI8> {
    enum { MMAS = 4, XV = 2 };
    // A fragment of mma j from row g's (lo) and row g + 8's (hi) 16-byte vectors: physical k
    // 4j…4j+3 of each, as logical k {2t, 2t+1} (a0, a1) and {2t+8, 2t+9} (a2, a3).
    static __device__ __forceinline__ void frag(const uint4& lo, const uint4& hi, int j, u32* a) {
        const u32 l = (j == 0 ? lo.x : j == 1 ? lo.y : j == 2 ? lo.z : lo.w) ^ 0x80808080u;
        const u32 h = (j == 0 ? hi.x : j == 1 ? hi.y : j == 2 ? hi.z : hi.w) ^ 0x80808080u;
        a[0] = i8pair_f16x2(l, 0x4140u);
        a[1] = i8pair_f16x2(h, 0x4140u);
        a[2] = i8pair_f16x2(l, 0x4342u);
        a[3] = i8pair_f16x2(h, 0x4342u);
    }
};
template <> struct TWF<VF16> {
    enum { MMAS = 2, XV = 1 };
    static __device__ __forceinline__ void frag(const uint4& lo, const uint4& hi, int j, u32* a) {
        a[0] = j == 0 ? lo.x : lo.z;
        a[1] = j == 0 ? hi.x : hi.z;
        a[2] = j == 0 ? lo.y : lo.w;
        a[3] = j == 0 ? hi.y : hi.w;
    }
};
template <int EPI>
__device__ __forceinline__ u32 tw_units(const DecArgs& a) {
    return EPI == EPI_PLAIN ? (a.N + 15u) / 16u : (EPI == EPI_ROPE ? a.N / 16u : a.f / 8u);
}
template <int EPI>
__device__ __forceinline__ void tw_rows(const DecArgs& a, u32 unit, u32 g, u32* rows) {
    if (EPI == EPI_PLAIN) {
        rows[0] = unit * 16u + g;
        rows[1] = rows[0] + 8u;
    } else if (EPI == EPI_SWIGLU) {
        rows[0] = unit * 8u + g;
        rows[1] = a.f + rows[0];
    } else {
        const u32 half = a.d >> 1, per = half >> 3;
        rows[0] = (unit / per) * a.d + (unit % per) * 8u + g;
        rows[1] = rows[0] + half;
    }
}
// NB column groups of 8 batch rows (NB > 1: batched plain GEMVs of up to 8·NB rows, e.g. the
// unfused decode steps of 5–32 sequences): every weight fragment feeds NB mma calls, so the
// weights are read once for all the batch rows.
template <class W, int MT, int U, int PRO, int EPI, int NB>
__device__ __forceinline__ void dgemv_tw_body(const DecArgs& a) {
#if __CUDA_ARCH__ >= 800
    static_assert(NB == 1 || (PRO == PRO_GLOBAL && EPI == EPI_PLAIN), "batched: plain only");
    static_assert(MT <= 8 * NB, "MT batch rows in NB groups of 8");
    typedef TWF<W> F;
    typedef typename W::raw wraw;
    extern __shared__ __align__(16) unsigned char dsm[];
    __shared__ float red[32];
    float4* part = reinterpret_cast<float4*>(dsm);  // [2 buffers][≤ 8 warps][32 lanes][NB]
    const u32 E = W::EPV;
    const u32 M = a.M, N = a.N, K = a.K;
    const u32 m0 = blockIdx.y * MT;
    const u32 lane = threadIdx.x & 31u, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const u32 g = lane >> 2, t = lane & 3u;
    const u32 total = tw_units<EPI>(a);
    const u32 nch = K / (4u * E);
    const wraw* w = reinterpret_cast<const wraw*>(a.w);
    // This thread's B column of group nb is batch row m0 + 8·nb + g; columns past the tile or M
    // read row m0 (their outputs are never written).
    u32 xr[NB];
#pragma unroll
    for (int nb = 0; nb < NB; ++nb) {
        const u32 rr = 8u * nb + g;
        xr[nb] = (rr < (u32)MT && m0 + rr < M) ? rr : 0u;
    }
    const u16* xs[NB];
    // The first unit's first chunks, prefetched into L2 before waiting on the kernel before.
    if (blockIdx.x < total) {
        u32 rows[2];
        tw_rows<EPI>(a, blockIdx.x, g, rows);
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const u32 c = warp + nw * u;
#pragma unroll
            for (int r = 0; r < 2; ++r)
                if (c < nch && rows[r] < N)
                    asm volatile("prefetch.global.L2 [%0];" ::"l"(
                        w + (u64)rows[r] * K + (u64)c * 4u * E + t * E));
        }
    }
    pdl_wait();
    if (PRO == PRO_NORM) {
        // Every block normalizes its MT rows into shared memory (after the partials).
        u16* sx = reinterpret_cast<u16*>(dsm + TW_PART_BYTES);
        norm_rows_to_smem<F16, MT>(a, m0, sx, red);
        xs[0] = sx + (u64)xr[0] * K + t * E;
    } else {
#pragma unroll
        for (int nb = 0; nb < NB; ++nb)
            xs[nb] = reinterpret_cast<const u16*>(a.x) + (u64)(m0 + xr[nb]) * K + t * E;
    }
    u32 buf = 0;
    for (u32 unit = blockIdx.x; unit < total; unit += gridDim.x, buf ^= 256u * NB) {
        u32 rows[2];
        tw_rows<EPI>(a, unit, g, rows);
        const wraw* wl = w + (u64)(rows[0] < N ? rows[0] : 0u) * K + t * E;
        const wraw* wh = w + (u64)(rows[1] < N ? rows[1] : 0u) * K + t * E;
        float c[NB][4];
#pragma unroll
        for (int nb = 0; nb < NB; ++nb) c[nb][0] = c[nb][1] = c[nb][2] = c[nb][3] = 0.0f;
        // The loop bound and the chunk test are warp-uniform (mma.sync needs the whole warp).
        for (u32 cb = warp; cb < nch; cb += nw * U) {
            uint4 vl[U], vh[U], xv[U][NB][F::XV];
#pragma unroll
            for (int u = 0; u < U; ++u) {
                const u32 ch = cb + nw * u;
                const u64 off = (u64)(ch < nch ? ch : cb) * (4u * E);
                vl[u] = __ldcs(reinterpret_cast<const uint4*>(wl + off));
                vh[u] = __ldcs(reinterpret_cast<const uint4*>(wh + off));
#pragma unroll
                for (int nb = 0; nb < NB; ++nb)
#pragma unroll
                    for (int v = 0; v < F::XV; ++v)
                        xv[u][nb][v] = reinterpret_cast<const uint4*>(xs[nb] + off)[v];
            }
#pragma unroll
            for (int u = 0; u < U; ++u) {
                if (cb + nw * u < nch) {
#pragma unroll
                    for (int j = 0; j < F::MMAS; ++j) {
                        u32 af[4];
                        F::frag(vl[u], vh[u], j, af);
#pragma unroll
                        for (int nb = 0; nb < NB; ++nb) {
                            // Activation words 2j, 2j + 1 of this group's 16-byte vectors.
                            const uint4& x0 = xv[u][nb][(2 * j) / 4];
                            const u32 b0 = (2 * j) % 4 == 0 ? x0.x : x0.z;
                            const u32 b1 = (2 * j) % 4 == 0 ? x0.y : x0.w;
                            asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                                "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                                : "+f"(c[nb][0]), "+f"(c[nb][1]), "+f"(c[nb][2]), "+f"(c[nb][3])
                                : "r"(af[0]), "r"(af[1]), "r"(af[2]), "r"(af[3]), "r"(b0),
                                  "r"(b1));
                        }
                    }
                }
            }
        }
        // c[nb][0], c[nb][1]: row g, batch rows 8nb + 2t, 8nb + 2t + 1; c[nb][2], c[nb][3]: row
        // g + 8, the same batch rows.
#pragma unroll
        for (int nb = 0; nb < NB; ++nb)
            part[buf + (warp * 32u + lane) * NB + nb] =
                make_float4(c[nb][0], c[nb][1], c[nb][2], c[nb][3]);
        __syncthreads();
        if (warp == 0) {
#pragma unroll
            for (int nb = 0; nb < NB; ++nb) {
                if (8u * nb + 2u * t < (u32)MT) {
                    float4 s = part[buf + lane * NB + nb];
                    for (u32 wi = 1; wi < nw; ++wi) {
                        const float4 p = part[buf + (wi * 32 + lane) * NB + nb];
                        s.x += p.x;
                        s.y += p.y;
                        s.z += p.z;
                        s.w += p.w;
                    }
                    DecArgs b = a;
                    b.M = M < m0 + MT ? M : m0 + MT;
                    float acc[2][2] = {{s.x, s.y}, {s.z, s.w}};
                    // SwiGLU writes column c + g of its output: the gate row.
                    const u32 col = (EPI == EPI_SWIGLU) ? rows[0] : unit;
                    dgemv_epilogue<VF16, 2, 2, EPI>(b, rows, col, acc, m0 + 8u * nb + 2u * t);
                }
            }
        }
    }
#else
    __trap();
#endif
}
#define EAI_DGEMV_TW(NAME, W, MT, PRO, EPI)                                                    \
    extern "C" __global__ void __launch_bounds__(256, 2) NAME(const DecArgs a) {               \
        pdl_trigger();                                                                         \
        dgemv_tw_body<W, MT, 4, PRO, EPI, 1>(a);                                               \
    }
// Batched plain W16 GEMVs: MT = 8 · NB rows, 2 chunks in flight per warp (the NB activation
// vectors per chunk take the registers the decode kernels give to 4 chunks).
#define EAI_DGEMV_TWB(NAME, W, NB)                                                             \
    extern "C" __global__ void __launch_bounds__(256, 2) NAME(const DecArgs a) {               \
        pdl_trigger();                                                                         \
        dgemv_tw_body<W, 8 * NB, 2, PRO_GLOBAL, EPI_PLAIN, NB>(a);                             \
    }
// Naming: dg_<weight>_w<pro><epi>_m<MT> (pro/epi as for EAI_DGEMV_SET).
#define EAI_DGEMV_TW_SET(W, WN)                                                                \
    EAI_DGEMV_TW(dg_##WN##_wnr_m1, W, 1, PRO_NORM, EPI_ROPE)                                   \
    EAI_DGEMV_TW(dg_##WN##_wnr_m2, W, 2, PRO_NORM, EPI_ROPE)                                   \
    EAI_DGEMV_TW(dg_##WN##_wnr_m4, W, 4, PRO_NORM, EPI_ROPE)                                   \
    EAI_DGEMV_TW(dg_##WN##_wns_m1, W, 1, PRO_NORM, EPI_SWIGLU)                                 \
    EAI_DGEMV_TW(dg_##WN##_wns_m2, W, 2, PRO_NORM, EPI_SWIGLU)                                 \
    EAI_DGEMV_TW(dg_##WN##_wns_m4, W, 4, PRO_NORM, EPI_SWIGLU)                                 \
    EAI_DGEMV_TW(dg_##WN##_wnp_m1, W, 1, PRO_NORM, EPI_PLAIN)                                  \
    EAI_DGEMV_TW(dg_##WN##_wnp_m2, W, 2, PRO_NORM, EPI_PLAIN)                                  \
    EAI_DGEMV_TW(dg_##WN##_wnp_m4, W, 4, PRO_NORM, EPI_PLAIN)                                  \
    EAI_DGEMV_TW(dg_##WN##_wxp_m1, W, 1, PRO_GLOBAL, EPI_PLAIN)                                \
    EAI_DGEMV_TW(dg_##WN##_wxp_m2, W, 2, PRO_GLOBAL, EPI_PLAIN)                                \
    EAI_DGEMV_TW(dg_##WN##_wxp_m4, W, 4, PRO_GLOBAL, EPI_PLAIN)                                \
    EAI_DGEMV_TWB(dg_##WN##_wxp_m8, W, 1)                                                      \
    EAI_DGEMV_TWB(dg_##WN##_wxp_m16, W, 2)                                                     \
    EAI_DGEMV_TWB(dg_##WN##_wxp_m32, W, 4)
EAI_DGEMV_TW_SET(VI8, i8)
EAI_DGEMV_TW_SET(VF16, f16)
