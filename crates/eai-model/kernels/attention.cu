// Attention kernels of eai-model (appended to model.cu by src/cuda/kernels.rs; uses its
// element types, warp reductions and typedefs): the generation attention (one query row per
// block) and the scoring attention over shared prefixes (tiles of query rows sharing their
// keys).

// ---------------------------------------------------------------------------------------------
// Causal attention, one block of ATT_WARPS warps per (query row, head): the row in blockIdx.x
// (a packed generation prefill has tens of thousands of rows, beyond gridDim.y's 65,535), the
// head in blockIdx.y. Each warp runs an online softmax over its share of the visible keys
// (lanes split the head dimension, d/32 values per lane, d ≤ 256), then the warps are merged.
// Keys of sequence s at cache slots seq_off[s] + j, j ≤ pos (and pos − j < window when
// window > 0). With `alibi` non-null (BLOOM) the score of key j gains alibi[head] · (j − pos),
// as the CPU reference adds it. ATT_WARPS matches `ATT_WARPS` in src/cuda/model.rs (the block
// size).
#define ATT_WARPS 8
#define ATT_MAXV 8

// The end of the generation attention kernels (attention_body, attention_dec_body): merges the
// NW warps' online-softmax states (running max m, sum l, and acc — this lane's `per` values of
// the head dimension) and writes the block's output row o[0, d) = Σ_w acc_w·e^(m_w − M) /
// Σ_w l_w·e^(m_w − M), M = max_w m_w (warps that saw no key weigh 0).
template <class T, int NW, int V>
__device__ __forceinline__ void attn_merge_warps(float m, float l, const float* acc, u32 per,
                                                 u32 d, typename T::raw* __restrict__ o) {
    __shared__ float sm_m[NW], sm_l[NW];
    __shared__ float sm_acc[NW][V * 32];
    const u32 lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    if (lane == 0) {
        sm_m[warp] = m;
        sm_l[warp] = l;
    }
#pragma unroll
    for (u32 i = 0; i < V; ++i)
        if (i < per) sm_acc[warp][i * 32 + lane] = acc[i];
    __syncthreads();
    float gm = -INFINITY;
#pragma unroll
    for (u32 w = 0; w < NW; ++w) gm = fmaxf(gm, sm_m[w]);
    float gl = 0.0f;
    float f[NW];
#pragma unroll
    for (u32 w = 0; w < NW; ++w) {
        f[w] = (sm_m[w] == -INFINITY) ? 0.0f : expf(sm_m[w] - gm);
        gl += sm_l[w] * f[w];
    }
    for (u32 c = threadIdx.x; c < d; c += blockDim.x) {
        float a = 0.0f;
#pragma unroll
        for (u32 w = 0; w < NW; ++w) a += sm_acc[w][c] * f[w];
        o[c] = T::from_f32(a / gl);
    }
}

// The start of the generation attention kernels for query row r, head `head`: a padding row
// (seq < 0) gets a zero output row o[0, d) and false; otherwise the lane's d/32 query values go
// to q (the rest 0), acc is zeroed, and `at` gets the position, the kv head, the first visible
// key (sliding window) and the sequence's first cache slot. V ≥ d / 32 bounds the values per
// lane (the arrays' length).
struct AttnRow {
    u32 p, kvh, first;
    u64 base;
};
template <class T, int V>
__device__ __forceinline__ bool attn_row(const float* __restrict__ qkv, const int* __restrict__ seq,
                                         const int* __restrict__ pos,
                                         const u32* __restrict__ seq_off, u32 r, u32 head, u32 nh,
                                         u32 nkv, u32 d, u32 window, typename T::raw* o,
                                         float* q, float* acc, AttnRow& at) {
    const u32 lane = threadIdx.x & 31u, per = d >> 5;
    const int s = seq[r];
    if (s < 0) {
        for (u32 c = threadIdx.x; c < d; c += blockDim.x) o[c] = T::from_f32(0.0f);
        return false;
    }
    at.p = (u32)pos[r];
    at.kvh = head / (nh / nkv);
    const float* qrow = qkv + (u64)r * (nh + 2 * nkv) * d + (u64)head * d;
#pragma unroll
    for (u32 i = 0; i < V; ++i) {
        q[i] = (i < per) ? qrow[i * 32 + lane] : 0.0f;
        acc[i] = 0.0f;
    }
    at.first = (window > 0 && at.p + 1 > window) ? at.p + 1 - window : 0;
    at.base = (u64)seq_off[s];
    return true;
}

template <class T>
__device__ void attention_body(const float* __restrict__ qkv, const int* __restrict__ seq,
                               const int* __restrict__ pos, const u32* __restrict__ seq_off,
                               const float* __restrict__ kc, const float* __restrict__ vc,
                               typename T::raw* __restrict__ out, u32 nh, u32 nkv, u32 d,
                               float scale, u32 window, const float* __restrict__ alibi) {
    const u32 r = blockIdx.x, head = blockIdx.y;
    const u32 lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    const u32 per = d >> 5;  // values per lane
    typename T::raw* o = out + (u64)r * nh * d + (u64)head * d;
    float q[ATT_MAXV], acc[ATT_MAXV];
    AttnRow at;
    if (!attn_row<T, ATT_MAXV>(qkv, seq, pos, seq_off, r, head, nh, nkv, d, window, o, q, acc,
                               at))
        return;
    const u32 p = at.p, kvh = at.kvh, first = at.first;
    const u64 base = at.base;
    float m = -INFINITY, l = 0.0f;
    for (u32 j = first + warp; j <= p; j += ATT_WARPS) {
        const float* kr = kc + ((base + j) * nkv + kvh) * d;
        float dot = 0.0f;
#pragma unroll
        for (u32 i = 0; i < ATT_MAXV; ++i)
            if (i < per) dot += q[i] * kr[i * 32 + lane];
        dot = warp_sum(dot) * scale;
        if (alibi) dot += alibi[head] * ((float)j - (float)p);
        const float mn = fmaxf(m, dot);
        const float corr = expf(m - mn);
        const float e = expf(dot - mn);
        l = l * corr + e;
        const float* vr = vc + ((base + j) * nkv + kvh) * d;
#pragma unroll
        for (u32 i = 0; i < ATT_MAXV; ++i)
            if (i < per) acc[i] = acc[i] * corr + e * vr[i * 32 + lane];
        m = mn;
    }
    attn_merge_warps<T, ATT_WARPS, ATT_MAXV>(m, l, acc, per, d, o);
}
#define EAI_ATTN(NAME, T)                                                                      \
    extern "C" __global__ void NAME(const float* qkv, const int* seq, const int* pos,         \
                                    const u32* seq_off, const float* kc, const float* vc,      \
                                    T::raw* out, u32 nh, u32 nkv, u32 d, float scale,          \
                                    u32 window, const float* alibi) {                          \
        attention_body<T>(qkv, seq, pos, seq_off, kc, vc, out, nh, nkv, d, scale, window,      \
                          alibi);                                                              \
    }
EAI_ATTN(attention_f32, F32)
EAI_ATTN(attention_f16, F16)
EAI_ATTN(attention_bf16, BF16)

// ---------------------------------------------------------------------------------------------
// Scoring (prefill) attention with shared prefixes, over tiles of query rows: one block of
// ATTT_WARPS warps per (tile of `tr` consecutive rows, kv head, part of ≤ 8 of its query heads).
// The rows of a tile that belong to one sequence (a run: most tiles hold one) share their keys:
// the block walks the run's visible keys in chunks of `ch` keys (ch = min(32, 4096 / d)),
// staging each chunk's K and V rows in shared memory once for all the run's rows and heads.
// Warp w holds the run's (row, head) pairs w + k·ATTT_WARPS, k < ATTT_PAIRS; per pair and chunk,
// lane j computes the score of key j (a full dot product, q from shared memory, each key's K
// values read once for all the warp's pairs), one online-softmax update, then the lanes (over
// the head dimension) accumulate the chunk's V rows; keys after the pair's position (or before
// its sliding window) weigh exactly 0, so a row's result does not depend on its tile (tiles of
// 4–16 rows matched the one-row-per-block kernel they replaced bit for bit on an H100).
//
// Key j (0 ≤ j ≤ pos) of sequence s lives at cache slot
//     pre[2s] + j        when j < pre[2s + 1]   (the shared prefix: another sequence's slots)
//     seq_off[s] + j     otherwise              (the sequence's own slots, as rope_qkv wrote)
// so a continuation packed after its context attends to the context's slots without a copy.
// d ≤ 256 and d % 32 == 0. The host keeps tr·nheads ≤ ATTT_WARPS·ATTT_PAIRS and the shared
// memory within its launch (`prefill_tile_cfg` in src/cuda/model.rs, which matches ATTT_WARPS
// and ATTT_PAIRS). Dynamic shared memory: (ch·(d + 4) + ch·d + tr·nheads·d) floats; static: the
// weights, ATTT_WARPS·ATTT_PAIRS·32 floats, and 3 words.
#define ATTT_WARPS 4
#define ATTT_PAIRS 8
template <class T, int V>
__device__ void attention_prefill_tile_body(
    const float* __restrict__ qkv, const int* __restrict__ seq, const int* __restrict__ pos,
    const u32* __restrict__ seq_off, const u32* __restrict__ pre, const float* __restrict__ kc,
    const float* __restrict__ vc, typename T::raw* __restrict__ out, u32 nh, u32 nkv, u32 d,
    float scale, u32 window, const float* __restrict__ alibi, u32 rows, u32 tr) {
    extern __shared__ float4 smem4[];
    __shared__ u32 run[3];  // run end (exclusive), first key, last key
    __shared__ __align__(16) float sw[ATTT_WARPS][ATTT_PAIRS][32];  // per warp: pair × key weights
    float* smem = (float*)smem4;
    const u32 kvh = blockIdx.y, part = blockIdx.z;
    const u32 lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    const u32 group = nh / nkv;
    const u32 head0 = kvh * group + part * 8;
    const u32 nheads = min(8u, group - part * 8);
    const u32 ch = min(32u, 4096u / d);
    const u32 ks = d + 4;  // padded K row stride (conflict-free 16-byte reads across lanes)
    float* sk = smem;
    float* sv = sk + ch * ks;
    float* sq = sv + ch * d;
    const u32 width = (nh + 2 * nkv) * d;
    const u32 per = d >> 5, d4 = d >> 2, hd = nheads * d;
    const u32 r_end = min(rows, blockIdx.x * tr + tr);
    for (u32 r0 = blockIdx.x * tr; r0 < r_end;) {
        __syncthreads();  // the previous run is done with `run` and sq
        if (threadIdx.x == 0) {
            const int s0 = seq[r0];
            u32 r1 = r0 + 1, lo = 0xffffffffu, hi = 0;
            while (r1 < r_end && seq[r1] == s0) ++r1;
            for (u32 r = r0; s0 >= 0 && r < r1; ++r) {
                const u32 p = (u32)pos[r];
                lo = min(lo, (window > 0 && p + 1 > window) ? p + 1 - window : 0u);
                hi = max(hi, p);
            }
            run[0] = r1;
            run[1] = lo;
            run[2] = hi;
        }
        __syncthreads();
        const u32 r1 = run[0], lo = run[1], hi = run[2];
        const int s = seq[r0];
        const u32 nrows = r1 - r0;
        if (s < 0) {
            for (u32 i = threadIdx.x; i < nrows * hd; i += blockDim.x)
                out[(u64)(r0 + i / hd) * nh * d + (u64)head0 * d + i % hd] = T::from_f32(0.0f);
            r0 = r1;
            continue;
        }
        for (u32 i = threadIdx.x; i < nrows * hd; i += blockDim.x)
            sq[i] = qkv[(u64)(r0 + i / hd) * width + (u64)head0 * d + i % hd];
        const u64 base = (u64)seq_off[s];
        const u32 plen = pre[2 * s + 1];
        const u64 pbase = (u64)pre[2 * s];
        const u32 npairs = nrows * nheads;
        float acc[ATTT_PAIRS][V], m[ATTT_PAIRS], l[ATTT_PAIRS];
        u32 pp[ATTT_PAIRS];
#pragma unroll
        for (u32 k = 0; k < ATTT_PAIRS; ++k) {
            const u32 pair = warp + k * ATTT_WARPS;
            pp[k] = (pair < npairs) ? (u32)pos[r0 + pair / nheads] : 0u;
            m[k] = -INFINITY;
            l[k] = 0.0f;
#pragma unroll
            for (u32 i = 0; i < V; ++i) acc[k][i] = 0.0f;
        }
        for (u32 j0 = lo; j0 <= hi; j0 += ch) {
            const u32 n = min(ch, hi + 1 - j0);
            __syncthreads();  // previous chunk consumed (and sq written, first time)
            for (u32 t = threadIdx.x; t < n * d4; t += blockDim.x) {
                const u32 kj = t / d4, c4 = t % d4;
                const u32 j = j0 + kj;
                const u64 slot = (j < plen) ? pbase + j : base + j;
                const u64 g = (slot * nkv + kvh) * d;
                *(float4*)(sk + kj * ks + 4 * c4) = *(const float4*)(kc + g + 4 * c4);
                *(float4*)(sv + kj * d + 4 * c4) = *(const float4*)(vc + g + 4 * c4);
            }
            __syncthreads();
            float dot[ATTT_PAIRS];
#pragma unroll
            for (u32 k = 0; k < ATTT_PAIRS; ++k) dot[k] = 0.0f;
            if (lane < n) {
                const float* kr = sk + lane * ks;
                for (u32 c = 0; c < d; c += 4) {
                    const float4 b = *(const float4*)(kr + c);
#pragma unroll
                    for (u32 k = 0; k < ATTT_PAIRS; ++k) {
                        if (warp + k * ATTT_WARPS < npairs) {
                            const float4 a = *(const float4*)(sq + (warp + k * ATTT_WARPS) * d + c);
                            dot[k] += a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
                        }
                    }
                }
            }
            float e[ATTT_PAIRS];
#pragma unroll
            for (u32 k = 0; k < ATTT_PAIRS; ++k) {
                e[k] = 0.0f;
                const u32 pair = warp + k * ATTT_WARPS;
                if (pair >= npairs) continue;  // warp-uniform
                const u32 j = j0 + lane;
                const bool seen = lane < n && j <= pp[k] && (window == 0 || j + window > pp[k]);
                float sc = -INFINITY;
                if (seen) {
                    sc = dot[k] * scale;
                    if (alibi) sc += alibi[head0 + pair % nheads] * ((float)j - (float)pp[k]);
                }
                const float cm = warp_max(sc);
                if (cm == -INFINITY) continue;  // no key of this chunk is visible to the pair
                const float mn = fmaxf(m[k], cm);
                const float corr = expf(m[k] - mn);
                e[k] = seen ? expf(sc - mn) : 0.0f;
                l[k] = l[k] * corr + warp_sum(e[k]);
#pragma unroll
                for (u32 i = 0; i < V; ++i) acc[k][i] *= corr;
                m[k] = mn;
            }
            // The weights go through shared memory (four keys' weights per 16-byte broadcast
            // read); per four keys the lanes read their V values once for every pair. Keys a
            // pair does not see have weight 0 and add nothing (every staged V row is a finite
            // value another row of the run attends to); keys past the chunk are not read.
#pragma unroll
            for (u32 k = 0; k < ATTT_PAIRS; ++k) sw[warp][k][lane] = e[k];
            __syncwarp();
            for (u32 kj = 0; kj < n; kj += 4) {
                float vr[4][V];
#pragma unroll
                for (u32 t = 0; t < 4; ++t)
#pragma unroll
                    for (u32 i = 0; i < V; ++i)
                        vr[t][i] = (kj + t < n && i < per) ? sv[(kj + t) * d + i * 32 + lane] : 0.0f;
#pragma unroll
                for (u32 k = 0; k < ATTT_PAIRS; ++k) {
                    const float4 w = *(const float4*)&sw[warp][k][kj];
#pragma unroll
                    for (u32 i = 0; i < V; ++i) {
                        if (i < per) {
                            acc[k][i] += w.x * vr[0][i];
                            acc[k][i] += w.y * vr[1][i];
                            acc[k][i] += w.z * vr[2][i];
                            acc[k][i] += w.w * vr[3][i];
                        }
                    }
                }
            }
            __syncwarp();  // the weights are read before the next chunk writes them
        }
#pragma unroll
        for (u32 k = 0; k < ATTT_PAIRS; ++k) {
            const u32 pair = warp + k * ATTT_WARPS;
            if (pair >= npairs) continue;
            typename T::raw* o =
                out + (u64)(r0 + pair / nheads) * nh * d + (u64)(head0 + pair % nheads) * d;
#pragma unroll
            for (u32 i = 0; i < V; ++i)
                if (i < per) o[i * 32 + lane] = T::from_f32(acc[k][i] / l[k]);
        }
        r0 = r1;
    }
}
#define EAI_ATTN_PREFILL_TILE(NAME, T, V, MINB)                                                \
    extern "C" __global__ void __launch_bounds__(ATTT_WARPS * 32, MINB)                        \
        NAME(const float* qkv, const int* seq, const int* pos, const u32* seq_off,             \
             const u32* pre, const float* kc, const float* vc, T::raw* out, u32 nh, u32 nkv,   \
             u32 d, float scale, u32 window, const float* alibi, u32 rows, u32 tr) {           \
        attention_prefill_tile_body<T, V>(qkv, seq, pos, seq_off, pre, kc, vc, out, nh, nkv,   \
                                          d, scale, window, alibi, rows, tr);                  \
    }
// One entry point per output type and bound V ≥ d / 32 on the values per lane (registers per
// pair scale with V): v2 for d ≤ 64, v4 for d ≤ 128, v8 for d ≤ 256; MINB blocks per SM keep
// the registers within what each needs without spilling (ptxas -v, sm_90).
EAI_ATTN_PREFILL_TILE(attention_prefill_tile_f32_v2, F32, 2, 6)
EAI_ATTN_PREFILL_TILE(attention_prefill_tile_f32_v4, F32, 4, 4)
EAI_ATTN_PREFILL_TILE(attention_prefill_tile_f32_v8, F32, 8, 3)
EAI_ATTN_PREFILL_TILE(attention_prefill_tile_f16_v2, F16, 2, 6)
EAI_ATTN_PREFILL_TILE(attention_prefill_tile_f16_v4, F16, 4, 4)
EAI_ATTN_PREFILL_TILE(attention_prefill_tile_f16_v8, F16, 8, 3)
EAI_ATTN_PREFILL_TILE(attention_prefill_tile_bf16_v2, BF16, 2, 6)
EAI_ATTN_PREFILL_TILE(attention_prefill_tile_bf16_v4, BF16, 4, 4)
EAI_ATTN_PREFILL_TILE(attention_prefill_tile_bf16_v8, BF16, 8, 3)
