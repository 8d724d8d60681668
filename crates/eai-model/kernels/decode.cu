// eai-model fused decode kernels (session 3), appended to model.cu (same NVRTC module, its
// helpers in scope). A decode pass of at most 4 rows runs 5 kernels per layer instead of 9:
//
//   qkv GEMV   ← RMSNorm fused into the x load;  q/k/v bias + rope + KV-cache write fused into
//                the epilogue (each warp computes the rope pair of rows i and i + d/2)
//   attention  (decode kernel: 8 warps per (head, row), 4 keys in flight per warp)
//   o GEMV     + residual add
//   gate/up    ← RMSNorm fused into the x load;  SwiGLU fused into the epilogue (each warp
//                computes gate row c and up row f + c and writes the activation)
//   down GEMV  + residual add
//
// and the LM head runs the final RMSNorm in its x load, followed by an argmax-only kernel for
// greedy steps. The fused kernels compute exactly the expressions of the unfused ones
// (rmsnorm_body, rope_qkv, swiglu_body), in the same order, so only the GEMV's own
// accumulation order differs from the session-2 path.

#define PRO_GLOBAL 0
#define PRO_NORM 1
#define EPI_PLAIN 0
#define EPI_ROPE 1
#define EPI_SWIGLU 2

// Programmatic dependent launch (sm_90+; issue 16). The fused decode layers' kernels (and a
// graph step's LM head) are launched with CUDA's programmatic stream serialization
// (`GpuOptions::pdl`): a kernel may start while the one before it in the stream is running. Each of these
// kernels lets its successor launch as soon as all its blocks run (`pdl_trigger`, at entry),
// touches only its constant inputs — weights, prefetched into L2 — before `pdl_wait`, which
// returns once every kernel before it has finished and its writes are visible, and reads or
// writes activations, caches and row tables only after it. So the next projection's first
// weight bytes stream during the previous kernel's last wave, the launch gap and the decode
// attention, instead of after them. Launched the ordinary way (or before sm_90) both are
// no-ops.
__device__ __forceinline__ void pdl_trigger() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_wait() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Kernel arguments (one struct: the Rust side mirrors it with #[repr(C)], pointers as u64).
struct DecArgs {
    const void* w;          // weights [N][K] in the resident format
    const float* scale;     // per-row scale (int8) or null
    const void* x;          // PRO_GLOBAL: activations [M][K] of type X; PRO_NORM: f32 residual
    const float* nw;        // PRO_NORM: norm weight [K]
    const u32* xidx;        // PRO_NORM: residual row of output row m (null: m)
    float* y;               // EPI_PLAIN: f32 out [M][ldy]; EPI_ROPE: the qkv rows (q part)
    void* act;              // EPI_SWIGLU: activation out [M][f] of type X
    const float* bias;      // EPI_ROPE: q/k/v bias or null
    const int* seq;         // EPI_ROPE: sequence of row m (< 0: padding)
    const int* pos;         // EPI_ROPE: position of row m
    const u32* seq_off;     // EPI_ROPE: first cache slot of sequence s
    const float* cos_t;     // EPI_ROPE: rope tables [table_len][d/2]
    const float* sin_t;
    const float* inv_freq;  // EPI_ROPE: [d/2], for positions past the table
    float* kc;              // EPI_ROPE: this layer's K cache [slot][nkv][d]
    float* vc;              // EPI_ROPE: this layer's V cache
    u32 M, N, K, ldy;
    int add;                // EPI_PLAIN: y += instead of y =
    float eps;              // PRO_NORM
    u32 table_len, nh, nkv, d, f;
};

// Scalar conversion of an activation element type (the vector types of model.cu).
template <class X> struct XS;
template <> struct XS<VF16> { typedef F16 S; };
template <> struct XS<VBF16> { typedef BF16 S; };
template <> struct XS<VF32> { typedef F32 S; };

// The norm-fused GEMVs' prologue: batch rows m0 … m0 + MT − 1 (residual rows xidx[m], or m)
// RMS-normalized as rmsnorm_body does each element (g · (x · inv)), rounded to T, into shared
// memory sx[MT][K]; the block synchronizes after. Latency, not bytes, is its cost (a row is
// 14 KiB of f32 at 7B shapes, read from L2 at the start of a kernel). When K % 4 == 0 the sum
// of squares takes one round trip for rows up to NORM_V · 1,024 columns: 256 slots (slot s
// holds the float4 at columns 4s + 1,024j) each sum their j in order, the slots of each group of
// 32 are added by warp_sum, and the 8 groups in order — the same order for blocks of 4 or 8
// warps (a thread takes slots t, t + blockDim.x, …) and any MT, so a row gets the same bits in
// every fused kernel. The loads also pull the row and the norm weight into L1, where the second
// pass (after the one barrier) reads them back to normalize. Another order than rmsnorm_body's
// (one warp's sum), so fused and unfused layers agree to rounding (session 12's prologue was
// warp 0 alone summing the row, ~4 dependent round trips at K = 3,584, before that barrier).
// Rows with K % 4 != 0 keep that prologue.
#define NORM_V 4
template <class T, int MT>
__device__ __forceinline__ void norm_rows_to_smem(const DecArgs& a, u32 m0,
                                                  typename T::raw* sx, float* red) {
    __shared__ float nsum[MT][8];
    const float* xf = reinterpret_cast<const float*>(a.x);
    const u32 K = a.K;
    const u32 lane = threadIdx.x & 31u;
    if ((K & 3u) == 0) {
#pragma unroll
        for (int i = 0; i < MT; ++i) {
            if (m0 + i >= a.M) break;
            const float* xrow = xf + (u64)(a.xidx ? a.xidx[m0 + i] : m0 + i) * K;
            for (u32 s = threadIdx.x; s < 256; s += blockDim.x) {  // warp-uniform
                float ss = 0.0f;
                for (u32 base = 4u * s; base < K; base += NORM_V * 1024) {
                    float4 v[NORM_V];
#pragma unroll
                    for (int j = 0; j < NORM_V; ++j) {
                        const u32 c = base + j * 1024;
                        if (c < K) {
                            v[j] = F32::load4(xrow + c);
                            if (i == 0) asm volatile("prefetch.global.L1 [%0];" ::"l"(a.nw + c));
                        }
                    }
#pragma unroll
                    for (int j = 0; j < NORM_V; ++j)
                        if (base + j * 1024 < K)
                            ss += v[j].x * v[j].x + v[j].y * v[j].y + v[j].z * v[j].z +
                                  v[j].w * v[j].w;
                }
                ss = warp_sum(ss);
                if (lane == 0) nsum[i][s >> 5] = ss;
            }
        }
        __syncthreads();
#pragma unroll
        for (int i = 0; i < MT; ++i) {
            if (m0 + i >= a.M) break;
            const float* xrow = xf + (u64)(a.xidx ? a.xidx[m0 + i] : m0 + i) * K;
            typename T::raw* srow = sx + (u64)i * K;
            float tot = 0.0f;
#pragma unroll
            for (int w = 0; w < 8; ++w) tot += nsum[i][w];
            const float inv = 1.0f / sqrtf(tot / (float)K + a.eps);
            for (u32 s = threadIdx.x; s < 256; s += blockDim.x) {
                for (u32 base = 4u * s; base < K; base += NORM_V * 1024) {
                    float4 v[NORM_V], g[NORM_V];
#pragma unroll
                    for (int j = 0; j < NORM_V; ++j) {
                        const u32 c = base + j * 1024;
                        if (c < K) {
                            v[j] = F32::load4(xrow + c);
                            g[j] = F32::load4(a.nw + c);
                        }
                    }
#pragma unroll
                    for (int j = 0; j < NORM_V; ++j) {
                        const u32 c = base + j * 1024;
                        if (c < K)
                            T::store4(srow + c,
                                      make_float4(g[j].x * (v[j].x * inv), g[j].y * (v[j].y * inv),
                                                  g[j].z * (v[j].z * inv), g[j].w * (v[j].w * inv)));
                    }
                }
            }
        }
    } else {
#pragma unroll
        for (int i = 0; i < MT; ++i) {
            if (m0 + i >= a.M) break;
            const float* xrow = xf + (u64)(a.xidx ? a.xidx[m0 + i] : m0 + i) * K;
            if (threadIdx.x < 32) {
                const float r = rms_inv_warp(xrow, K, a.eps, threadIdx.x);
                if (threadIdx.x == 0) red[i] = r;  // one slot per row: no barrier after the read
            }
            __syncthreads();
            const float inv = red[i];
            typename T::raw* srow = sx + (u64)i * K;
            for (u32 c = threadIdx.x; c < K; c += blockDim.x)
                srow[c] = T::from_f32(a.nw[c] * (xrow[c] * inv));
        }
    }
    __syncthreads();
}

// Output rows of work unit `unit`: R consecutive rows (plain), the rope pair (i, i + d/2) of
// one head, or the gate/up pair (c, f + c).
template <int R, int EPI>
__device__ __forceinline__ void unit_rows(const DecArgs& a, u32 unit, u32* rows) {
    if (EPI == EPI_PLAIN) {
#pragma unroll
        for (int r = 0; r < R; ++r) rows[r] = unit * R + r;
    } else if (EPI == EPI_ROPE) {
        const u32 half = a.d >> 1;
        rows[0] = (unit / half) * a.d + unit % half;
        rows[1] = rows[0] + half;
    } else {
        rows[0] = unit;
        rows[1] = a.f + unit;
    }
}

// Lane 0's epilogue of one unit (rope_qkv's / swiglu_body's / the plain GEMV's expressions);
// `pre`, when given, holds the rows' weight scales, loaded before the unit's products.
template <class X, int MT, int R, int EPI>
__device__ __forceinline__ void dgemv_epilogue(const DecArgs& a, const u32* rows, u32 unit,
                                               float (*acc)[MT], u32 m0,
                                               const float* pre = nullptr) {
    typedef typename X::raw xraw;
    typedef typename XS<X>::S XT;
    const u32 M = a.M, N = a.N;
    float sc[R];
#pragma unroll
    for (int r = 0; r < R; ++r)
        sc[r] = pre ? pre[r] : (a.scale && rows[r] < N) ? a.scale[rows[r]] : 1.0f;
    if (EPI == EPI_PLAIN) {
#pragma unroll
        for (int r = 0; r < R; ++r) {
            if (rows[r] >= N) break;
#pragma unroll
            for (int i = 0; i < MT; ++i) {
                if (m0 + i < M) {
                    float* yp = a.y + (u64)(m0 + i) * a.ldy + rows[r];
                    const float v = acc[r][i] * sc[r];
                    *yp = a.add ? *yp + v : v;
                }
            }
        }
    } else if (EPI == EPI_SWIGLU) {
        xraw* out = reinterpret_cast<xraw*>(a.act);
#pragma unroll
        for (int i = 0; i < MT; ++i) {
            if (m0 + i < M) {
                const float g = acc[0][i] * sc[0];
                const float u = acc[1][i] * sc[1];
                out[(u64)(m0 + i) * a.f + unit] = XT::from_f32(silu_mul(g, u));
            }
        }
    } else {
        const u32 d = a.d, half = d >> 1;
        const u32 head = rows[0] / d, ii = rows[0] % d;
        const u32 nkv = a.nkv;
#pragma unroll
        for (int i = 0; i < MT; ++i) {
            const u32 m = m0 + i;
            if (m >= M) break;
            float x0 = acc[0][i] * sc[0], x1 = acc[1][i] * sc[1];
            if (a.bias) {
                x0 += a.bias[rows[0]];
                x1 += a.bias[rows[1]];
            }
            const int s = a.seq[m];
            const u32 p = (u32)a.pos[m];
            if (head < a.nh + nkv) {
                float c, sn;
                if (p < a.table_len) {
                    c = a.cos_t[(u64)p * half + ii];
                    sn = a.sin_t[(u64)p * half + ii];
                } else {
                    const float ang = (float)p * a.inv_freq[ii];
                    c = cosf(ang);
                    sn = sinf(ang);
                }
                const float y0 = x0 * c - x1 * sn;
                const float y1 = x0 * sn + x1 * c;
                if (head < a.nh) {
                    float* row = a.y + (u64)m * a.ldy;
                    row[rows[0]] = y0;
                    row[rows[1]] = y1;
                } else if (s >= 0) {
                    const u64 slot = (u64)a.seq_off[s] + p;
                    float* dst = a.kc + (slot * nkv + (head - a.nh)) * d;
                    dst[ii] = y0;
                    dst[ii + half] = y1;
                }
            } else if (s >= 0) {
                const u64 slot = (u64)a.seq_off[s] + p;
                const u32 j = rows[0] - (a.nh + nkv) * d;
                float* dst = a.vc + slot * nkv * d;
                dst[j] = x0;
                dst[j + half] = x1;
            }
        }
    }
}

// Each warp works through units unit, unit + gridDim.x·warps, ... (the norm-fused kernels run a
// grid of at most a few blocks per SM, so each block normalizes its rows once; the plain ones
// one unit per warp). Before `pdl_wait` (and so while a block normalizes), the first unit's
// weight vectors are prefetched into L2.
template <class W, class X, int MT, int R, int U, int PRO, int EPI>
__device__ __forceinline__ void dgemv_body(const DecArgs& a) {
    typedef typename X::raw xraw;
    typedef typename XS<X>::S XT;
    extern __shared__ __align__(16) unsigned char dsm[];
    __shared__ float red[32];
    const int E = W::EPV;
    const u32 M = a.M, N = a.N, K = a.K;
    const u32 m0 = blockIdx.y * MT;
    const u32 lane = threadIdx.x & 31u;
    const u32 warps = blockDim.x >> 5;
    const u32 total = (EPI == EPI_PLAIN) ? (N + R - 1) / R : (EPI == EPI_ROPE ? N / 2 : a.f);
    const u32 stride = gridDim.x * warps;
    u32 unit = blockIdx.x * warps + (threadIdx.x >> 5);
    const typename W::raw* w = reinterpret_cast<const typename W::raw*>(a.w);
    const u32 step = 32u * E;
    const xraw* xs;
    if (unit < total) {
        u32 rows[R];
        unit_rows<R, EPI>(a, unit, rows);
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const u32 kk = lane * E + u * step;
#pragma unroll
            for (int r = 0; r < R; ++r)
                if (kk < K && rows[r] < N)
                    asm volatile("prefetch.global.L2 [%0];" ::"l"(w + (u64)rows[r] * K + kk));
        }
    }
    pdl_wait();
    if (PRO == PRO_NORM) {
        // Every block normalizes its MT rows into shared memory, rounded to X.
        xraw* sx = reinterpret_cast<xraw*>(dsm);
        norm_rows_to_smem<XT, MT>(a, m0, sx, red);
        xs = sx;
    } else {
        xs = reinterpret_cast<const xraw*>(a.x) + (u64)m0 * K;
    }
    for (; unit < total; unit += stride) {
        u32 rows[R];
        unit_rows<R, EPI>(a, unit, rows);
        // The rows' scales (weights: nothing before writes them) load with the unit's first
        // weight vectors, not after its reduction.
        float sc[R];
#pragma unroll
        for (int r = 0; r < R; ++r) sc[r] = (a.scale && rows[r] < N) ? a.scale[rows[r]] : 1.0f;
        float acc[R][MT];
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
            for (int i = 0; i < MT; ++i) acc[r][i] = 0.0f;
        for (u32 k0 = lane * E; k0 < K; k0 += step * U) {
            uint4 wv[U][R];
            gemv_load_w<W, U, R>(w, rows, N, K, k0, step, wv);
            gemv_fma<W, X, MT, U, R>(wv, xs, 0u, m0, M, K, k0, step, acc);
        }
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
            for (int i = 0; i < MT; ++i) acc[r][i] = warp_sum(acc[r][i]);
        if (lane == 0) dgemv_epilogue<X, MT, R, EPI>(a, rows, unit, acc, m0, sc);
    }
}

// BOUNDS: the launch bounds. The one-row qkv GEMV (norm prologue, rope epilogue) takes
// (256, 3), so that its units (2,304 at Qwen2.5-7B shapes) stay in one wave of 3 blocks per SM
// (ptxas gave it 93 registers unbounded); the others (256) (forcing 4 blocks per SM spills).
#define EAI_DGEMV(NAME, W, X, MT, R, U, PRO, EPI, BOUNDS)                                      \
    extern "C" __global__ void __launch_bounds__ BOUNDS NAME(const DecArgs a) {                \
        pdl_trigger();                                                                         \
        dgemv_body<W, X, MT, R, U, PRO, EPI>(a);                                               \
    }
// Naming: dg_<weight>_<pro><epi>_r<R>u<U>_m<MT>; pro/epi: x = plain x load, n = fused norm;
// p = plain out, r = rope epilogue, s = SwiGLU epilogue.
#define EAI_DGEMV_SET(W, X, WN)                                                                \
    EAI_DGEMV(dg_##WN##_nr_m1, W, X, 1, 2, 4, PRO_NORM, EPI_ROPE, (256, 3))                    \
    EAI_DGEMV(dg_##WN##_nr_m2, W, X, 2, 2, 4, PRO_NORM, EPI_ROPE, (256))                       \
    EAI_DGEMV(dg_##WN##_nr_m4, W, X, 4, 2, 4, PRO_NORM, EPI_ROPE, (256))                       \
    EAI_DGEMV(dg_##WN##_ns_m1, W, X, 1, 2, 4, PRO_NORM, EPI_SWIGLU, (256))                     \
    EAI_DGEMV(dg_##WN##_ns_m2, W, X, 2, 2, 4, PRO_NORM, EPI_SWIGLU, (256))                     \
    EAI_DGEMV(dg_##WN##_ns_m4, W, X, 4, 2, 4, PRO_NORM, EPI_SWIGLU, (256))                     \
    EAI_DGEMV(dg_##WN##_np_m1, W, X, 1, 2, 4, PRO_NORM, EPI_PLAIN, (256))                      \
    EAI_DGEMV(dg_##WN##_np_m2, W, X, 2, 2, 4, PRO_NORM, EPI_PLAIN, (256))                      \
    EAI_DGEMV(dg_##WN##_np_m4, W, X, 4, 2, 4, PRO_NORM, EPI_PLAIN, (256))                      \
    EAI_DGEMV(dg_##WN##_xp_r1u8_m1, W, X, 1, 1, 8, PRO_GLOBAL, EPI_PLAIN, (256))               \
    EAI_DGEMV(dg_##WN##_xp_r1u8_m2, W, X, 2, 1, 8, PRO_GLOBAL, EPI_PLAIN, (256))               \
    EAI_DGEMV(dg_##WN##_xp_r1u8_m4, W, X, 4, 1, 8, PRO_GLOBAL, EPI_PLAIN, (256))
EAI_DGEMV_SET(VI8, VF16, i8)
EAI_DGEMV_SET(VF16, VF16, f16)
EAI_DGEMV_SET(VBF16, VBF16, bf16)
EAI_DGEMV_SET(VF32, VF32, f32)

// Block-split-K plain GEMV (session 3, W8A16 at 7B): one block of 256 threads per R output rows,
// the block's threads striding K together (thread t reads the 16-byte vectors at t·E,
// t·E + 256·E, …), U vectors per row in flight per thread; per-warp sums are added across the
// 8 warps in shared memory in warp order. Tall, narrow GEMVs (the down projection: 3,584 rows of
// 18,944) get N/R blocks of 8 warps instead of N/(4·R) blocks of 4 warps, i.e. several times the
// bytes in flight per SM. Deterministic, but another summation order than the warp-per-row
// layouts (each lane's vectors, then the warp, then the 8 warps).
template <class W, class X, int MT, int R, int U>
__device__ __forceinline__ void dgemv_bk_body(const DecArgs& a) {
    typedef typename X::raw xraw;
    __shared__ float part[8][R * MT];
    const int E = W::EPV;
    const u32 M = a.M, N = a.N, K = a.K;
    const u32 m0 = blockIdx.y * MT;
    const u32 lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    const u32 n0 = blockIdx.x * R;
    const typename W::raw* w = reinterpret_cast<const typename W::raw*>(a.w);
    const xraw* xs = reinterpret_cast<const xraw*>(a.x) + (u64)m0 * K;
    const u32 step = 256u * E;
    // The first step's weight vectors, prefetched into L2 before waiting on the kernel before.
#pragma unroll
    for (int u = 0; u < U; ++u) {
        const u32 kk = threadIdx.x * E + u * step;
#pragma unroll
        for (int r = 0; r < R; ++r)
            if (kk < K && n0 + r < N)
                asm volatile("prefetch.global.L2 [%0];" ::"l"(w + (u64)(n0 + r) * K + kk));
    }
    // The threads that finish an output load its scale (a weight) before the wait and, with
    // `add`, its old value after it, so neither load waits behind the reduction.
    float sc_o = 1.0f, old_o = 0.0f;
    const u32 on = n0 + threadIdx.x / MT, om = m0 + threadIdx.x % MT;
    const bool owner = threadIdx.x < R * MT && on < N && om < M;
    if (owner && a.scale) sc_o = a.scale[on];
    pdl_wait();
    if (owner && a.add) old_o = a.y[(u64)om * a.ldy + on];
    float acc[R][MT];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int i = 0; i < MT; ++i) acc[r][i] = 0.0f;
    u32 rows[R];
#pragma unroll
    for (int r = 0; r < R; ++r) rows[r] = n0 + r;
    for (u32 k0 = threadIdx.x * E; k0 < K; k0 += step * U) {
        uint4 wv[U][R];
        gemv_load_w<W, U, R>(w, rows, N, K, k0, step, wv);
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const u32 kk = k0 + u * step;
            if (kk >= K) break;
#pragma unroll
            for (int i = 0; i < MT; ++i) {
                if (m0 + i < M) {
                    float xv[E];
                    load_x<X, E>(xs + (u64)i * K + kk, xv);
#pragma unroll
                    for (int r = 0; r < R; ++r) {
                        float wf[E];
                        W::unpack(wv[u][r], wf);
                        float s = acc[r][i];
#pragma unroll
                        for (int j = 0; j < E; ++j) s = fmaf(wf[j], xv[j], s);
                        acc[r][i] = s;
                    }
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int i = 0; i < MT; ++i) {
            const float v = warp_sum(acc[r][i]);
            if (lane == 0) part[warp][r * MT + i] = v;
        }
    __syncthreads();
    if (owner) {
        float s = 0.0f;
#pragma unroll
        for (int wi = 0; wi < 8; ++wi) s += part[wi][threadIdx.x];
        const float v = s * sc_o;
        a.y[(u64)om * a.ldy + on] = a.add ? old_o + v : v;
    }
}
#define EAI_DGEMV_BK(NAME, W, X, MT, R, U)                                                     \
    extern "C" __global__ void __launch_bounds__(256) NAME(const DecArgs a) {                  \
        pdl_trigger();                                                                         \
        dgemv_bk_body<W, X, MT, R, U>(a);                                                      \
    }
#define EAI_DGEMV_BK_SET(W, X, WN)                                                             \
    EAI_DGEMV_BK(dg_##WN##_xp_k4u2_m1, W, X, 1, 4, 2)                                          \
    EAI_DGEMV_BK(dg_##WN##_xp_k4u2_m2, W, X, 2, 4, 2)                                          \
    EAI_DGEMV_BK(dg_##WN##_xp_k4u2_m4, W, X, 4, 4, 2)
EAI_DGEMV_BK_SET(VI8, VF16, i8)
EAI_DGEMV_BK_SET(VF16, VF16, f16)
EAI_DGEMV_BK_SET(VBF16, VBF16, bf16)
EAI_DGEMV_BK_SET(VF32, VF32, f32)

// Tensor-core int8 GEMV (W8A16 decode, sm_80+): one block of 8 warps per 8 output rows, the
// warps striding K together in 64-byte steps per row (U steps in flight per thread). Each
// `mma.sync.m16n8k16` (f16 inputs, f32 accumulation) takes the weights as its B operand (n =
// 8 output rows, k = 16) and the activations as A (m = batch rows; rows ≥ M and 8…15 zero), so
// the products are exact and the sums f32 as in the CUDA-core kernels, and int8 → f16 costs a
// byte permute into 0x64xx (1024 + unsigned byte) and one f16x2 subtract of 1152 per two
// weights — about a third of the CUDA-core kernels' instructions per weight byte. Thread
// (g = lane / 4, t = lane % 4) loads 16 weight bytes of row g at k = base + 16·t and the 16
// matching activations of batch row g; its 4 mma calls (j = 0…3) use bytes 4j…4j+3, which the
// fragment layout assigns to logical k {2t, 2t+1, 2t+8, 2t+9} of both operands alike — a
// permutation of k, so the dot products are unchanged. Warp partials are added across the 8
// warps in shared memory in warp order.
__device__ __forceinline__ u32 i8pair_f16x2(u32 u, u32 sel) {
    // u: four int8 codes with the sign bit flipped (unsigned byte = code + 128).
    u32 h = __byte_perm(u, 0x64646464u, sel), r;
    asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"(h), "r"(0x64806480u));
    return r;
}
// U steps of 64 int8 weights of row g (w) against 64 f16 activations of batch row g (x) from
// k = kb + 16t, accumulated by m16n8k16 into c0…c3: the inner step of both tensor-core int8
// GEMVs below. Loads are unconditional from clamped addresses (straight-line code keeps all U
// steps in flight) and zeroed after when out of range or when the row / batch row is absent.
template <int U>
__device__ __forceinline__ void tc_i8_steps(const i8* w, const u16* x, u32 K, u32 kb, u32 t,
                                            bool row_ok, bool x_ok, float& c0, float& c1,
                                            float& c2, float& c3) {
    const u32 zero = 0u;
    uint4 wv[U], xa[U], xb[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
        const u32 kk = kb + u * 64u + t * 16u;
        const u32 kc = kk < K ? kk : 0u;
        wv[u] = __ldcs(reinterpret_cast<const uint4*>(w + kc));
        xa[u] = *reinterpret_cast<const uint4*>(x + kc);
        xb[u] = *reinterpret_cast<const uint4*>(x + kc + 8);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
        const bool in = kb + u * 64u + t * 16u < K;
        if (!(in && row_ok)) wv[u] = make_uint4(0x80808080u, 0x80808080u, 0x80808080u, 0x80808080u);
        if (!(in && x_ok)) {
            xa[u] = make_uint4(0u, 0u, 0u, 0u);
            xb[u] = make_uint4(0u, 0u, 0u, 0u);
        }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
        const u32 ww[4] = {wv[u].x ^ 0x80808080u, wv[u].y ^ 0x80808080u,
                           wv[u].z ^ 0x80808080u, wv[u].w ^ 0x80808080u};
        const u32 xw[8] = {xa[u].x, xa[u].y, xa[u].z, xa[u].w,
                           xb[u].x, xb[u].y, xb[u].z, xb[u].w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const u32 b0 = i8pair_f16x2(ww[j], 0x4140u);
            const u32 b1 = i8pair_f16x2(ww[j], 0x4342u);
            asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                : "+f"(c0), "+f"(c1), "+f"(c2), "+f"(c3)
                : "r"(xw[2 * j]), "r"(zero), "r"(xw[2 * j + 1]), "r"(zero), "r"(b0), "r"(b1));
        }
    }
}
template <int MT, int U>
__device__ __forceinline__ void dgemv_tc_body(const DecArgs& a) {
#if __CUDA_ARCH__ >= 800
    __shared__ float part[8][8][8];
    const u32 M = a.M, N = a.N, K = a.K;
    const u32 m0 = blockIdx.y * MT;
    const u32 lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    const u32 g = lane >> 2, t = lane & 3u;
    const u32 n0 = blockIdx.x * 8u;
    const bool row_ok = n0 + g < N;
    const bool x_ok = g < (u32)MT && m0 + g < M;
    const i8* w = reinterpret_cast<const i8*>(a.w) + (u64)(row_ok ? n0 + g : 0) * K;
    const u16* x = reinterpret_cast<const u16*>(a.x) + (u64)(x_ok ? m0 + g : 0) * K;
    float c0 = 0.0f, c1 = 0.0f, c2 = 0.0f, c3 = 0.0f;
    // The loop bound is warp-uniform (mma.sync needs the whole warp); chunks past K load zeros.
    for (u32 kb = (warp * U) * 64u; kb < K; kb += 8u * U * 64u)
        tc_i8_steps<U>(w, x, K, kb, t, row_ok, x_ok, c0, c1, c2, c3);
    // c0, c1: batch row g, output rows 2t, 2t + 1 (c2, c3: batch rows ≥ 8, zero).
    part[warp][g][2 * t] = c0;
    part[warp][g][2 * t + 1] = c1;
    __syncthreads();
    if (threadIdx.x < 8u * MT) {
        const u32 i = threadIdx.x >> 3, r = threadIdx.x & 7u;
        const u32 n = n0 + r;
        if (n < N && m0 + i < M) {
            float s = 0.0f;
#pragma unroll
            for (int wi = 0; wi < 8; ++wi) s += part[wi][i][r];
            const float v = s * (a.scale ? a.scale[n] : 1.0f);
            float* yp = a.y + (u64)(m0 + i) * a.ldy + n;
            *yp = a.add ? *yp + v : v;
        }
    }
#else
    __trap();
#endif
}
#define EAI_DGEMV_TC(NAME, MT, U)                                                              \
    extern "C" __global__ void __launch_bounds__(256, 1) NAME(const DecArgs a) {                  \
        pdl_trigger();                                                                         \
        pdl_wait();                                                                            \
        dgemv_tc_body<MT, U>(a);                                                               \
    }
EAI_DGEMV_TC(dg_i8_xp_t8u4_m1, 1, 4)
EAI_DGEMV_TC(dg_i8_xp_t8u4_m2, 2, 4)
EAI_DGEMV_TC(dg_i8_xp_t8u4_m4, 4, 4)

// Tensor-core int8 GEMV with the fused RMSNorm prologue (the normalized rows in shared memory as
// f16, exactly as dgemv_body writes them) and the rope / SwiGLU / plain epilogues: each warp
// takes units of 8 weight rows — plain: 8 consecutive rows; SwiGLU: gate rows c…c+3 and up rows
// f+c…f+c+3; rope: first-half rows i…i+3 of one head and their partners i+d/2… — over the whole
// K in 64-byte steps (4 in flight), with the fragment layout of dgemv_tc_body (activations from
// shared memory). The 8 × MT results are gathered into lanes 0…3 (rows 2t, 2t+1), the partner
// rows (local r + 4) shuffled to lanes 0 and 1, which run dgemv_epilogue per pair.
template <int MT, int EPI>
__device__ __forceinline__ void tcn_rows(const DecArgs& a, u32 unit, u32 lr, u32* row) {
    if (EPI == EPI_PLAIN) {
        *row = unit * 8u + lr;
    } else if (EPI == EPI_SWIGLU) {
        *row = lr < 4u ? unit * 4u + lr : a.f + unit * 4u + (lr - 4u);
    } else {
        const u32 half = a.d >> 1, per_head = half >> 2;
        const u32 base = (unit / per_head) * a.d + (unit % per_head) * 4u;
        *row = lr < 4u ? base + lr : base + half + (lr - 4u);
    }
}
template <int MT, int EPI>
__device__ __forceinline__ void dgemv_tcn_body(const DecArgs& a) {
#if __CUDA_ARCH__ >= 800
    extern __shared__ __align__(16) unsigned char dsm[];
    __shared__ float red[32];
    const int U = 4;
    const u32 M = a.M, N = a.N, K = a.K;
    const u32 m0 = blockIdx.y * MT;
    const u32 lane = threadIdx.x & 31u;
    const u32 g = lane >> 2, t = lane & 3u;
    const u32 warps = blockDim.x >> 5;
    const u32 total = (EPI == EPI_PLAIN) ? (N + 7u) / 8u
                      : (EPI == EPI_ROPE) ? (N / 2u) / 4u : a.f / 4u;
    const u32 stride = gridDim.x * warps;
    u16* sx = reinterpret_cast<u16*>(dsm);
    norm_rows_to_smem<F16, MT>(a, m0, sx, red);
    const bool x_ok = g < (u32)MT && m0 + g < M;
    const u16* xs = sx + (u64)(x_ok ? g : 0u) * K;
    const i8* w = reinterpret_cast<const i8*>(a.w);
    for (u32 unit = blockIdx.x * warps + (threadIdx.x >> 5); unit < total; unit += stride) {
        u32 myrow;
        tcn_rows<MT, EPI>(a, unit, g, &myrow);
        const bool row_ok = myrow < N;
        const i8* wr = w + (u64)(row_ok ? myrow : 0u) * K;
        float c0 = 0.0f, c1 = 0.0f, c2 = 0.0f, c3 = 0.0f;
        for (u32 kb = 0; kb < K; kb += U * 64u)
            tc_i8_steps<U>(wr, xs, K, kb, t, row_ok, x_ok, c0, c1, c2, c3);
        // Lane 4i + t holds batch row i, local rows 2t, 2t + 1: gather into lanes 0…3.
        float acc0[MT], acc1[MT];
#pragma unroll
        for (int i = 0; i < MT; ++i) {
            acc0[i] = __shfl_sync(0xffffffffu, c0, 4 * i + (int)t);
            acc1[i] = __shfl_sync(0xffffffffu, c1, 4 * i + (int)t);
        }
        if (EPI == EPI_PLAIN) {
            if (lane < 4u) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    u32 rows[1];
                    tcn_rows<MT, EPI>(a, unit, 2u * t + e, rows);
                    float acc[1][MT];
#pragma unroll
                    for (int i = 0; i < MT; ++i) acc[0][i] = e ? acc1[i] : acc0[i];
                    dgemv_epilogue<VF16, MT, 1, EPI_PLAIN>(a, rows, unit, acc, m0);
                }
            }
        } else {
            // Partner rows (local r + 4) live in lane t + 2.
            float p0[MT], p1[MT];
#pragma unroll
            for (int i = 0; i < MT; ++i) {
                p0[i] = __shfl_down_sync(0xffffffffu, acc0[i], 2);
                p1[i] = __shfl_down_sync(0xffffffffu, acc1[i], 2);
            }
            if (lane < 2u) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const u32 lr = 2u * t + e;
                    u32 rows[2];
                    tcn_rows<MT, EPI>(a, unit, lr, &rows[0]);
                    tcn_rows<MT, EPI>(a, unit, lr + 4u, &rows[1]);
                    float acc[2][MT];
#pragma unroll
                    for (int i = 0; i < MT; ++i) {
                        acc[0][i] = e ? acc1[i] : acc0[i];
                        acc[1][i] = e ? p1[i] : p0[i];
                    }
                    // SwiGLU writes column `unit` of its epilogue: the gate row's column.
                    const u32 col = (EPI == EPI_SWIGLU) ? rows[0] : unit;
                    if (rows[0] < N && rows[1] < N)
                        dgemv_epilogue<VF16, MT, 2, EPI>(a, rows, col, acc, m0);
                }
            }
        }
    }
#else
    __trap();
#endif
}
#define EAI_DGEMV_TCN(NAME, MT, EPI)                                                           \
    extern "C" __global__ void __launch_bounds__(256, 1) NAME(const DecArgs a) {               \
        pdl_trigger();                                                                         \
        pdl_wait();                                                                            \
        dgemv_tcn_body<MT, EPI>(a);                                                            \
    }
EAI_DGEMV_TCN(dg_i8_tnr_m1, 1, EPI_ROPE)
EAI_DGEMV_TCN(dg_i8_tnr_m2, 2, EPI_ROPE)
EAI_DGEMV_TCN(dg_i8_tnr_m4, 4, EPI_ROPE)
EAI_DGEMV_TCN(dg_i8_tns_m1, 1, EPI_SWIGLU)
EAI_DGEMV_TCN(dg_i8_tns_m2, 2, EPI_SWIGLU)
EAI_DGEMV_TCN(dg_i8_tns_m4, 4, EPI_SWIGLU)
EAI_DGEMV_TCN(dg_i8_tnp_m1, 1, EPI_PLAIN)
EAI_DGEMV_TCN(dg_i8_tnp_m2, 2, EPI_PLAIN)
EAI_DGEMV_TCN(dg_i8_tnp_m4, 4, EPI_PLAIN)

// ---------------------------------------------------------------------------------------------
// Decode attention: as attention_body (one block per (head, row), online softmax, warps merged
// at the end) with ATTD_WARPS warps and ATTD_KEYS keys in flight per warp, each key's V row
// loaded with its K row: a step's loads are independent, so a short context costs one dependent
// round trip per ATTD_WARPS · ATTD_KEYS keys (64) instead of one per key, or two per 32 keys as
// the 8-warp kernel with V loaded after the scores did (9.8 µs per layer at batch 1 at 7B
// shapes, session 12). 16 warps at ≤ 64 registers keep 32 warps per SM, as 4 blocks of the
// 8-warp kernel did, for batched decode. The warps' key partition (warp w: keys first + 4w + 64i
// … + 3) does not depend on the batch, so a row gets the same bits alone or in any batch. V ≥
// d / 32 bounds the values per lane (entry points _v2, _v4, _v8, as the prefill tiles); _v8
// (d up to 256) needs more than 64 registers without spilling, so it runs one block per SM.
#define ATTD_WARPS 16
#define ATTD_KEYS 4
template <class T, int V>
__device__ void attention_dec_body(const float* __restrict__ qkv, const int* __restrict__ seq,
                                   const int* __restrict__ pos, const u32* __restrict__ seq_off,
                                   const float* __restrict__ kc, const float* __restrict__ vc,
                                   typename T::raw* __restrict__ out, u32 nh, u32 nkv, u32 d,
                                   float scale, u32 window) {
    const u32 head = blockIdx.x, r = blockIdx.y;
    const u32 lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    const u32 per = d >> 5;
    typename T::raw* o = out + (u64)r * nh * d + (u64)head * d;
    float q[V], acc[V];
    AttnRow at;
    if (!attn_row<T, V>(qkv, seq, pos, seq_off, r, head, nh, nkv, d, window, o, q, acc, at))
        return;
    const u32 p = at.p, kvh = at.kvh, first = at.first;
    const u64 base = at.base;
    const u64 stride = (u64)nkv * d;
    const float* kb = kc + (base * nkv + kvh) * d;
    const float* vb = vc + (base * nkv + kvh) * d;
    float m = -INFINITY, l = 0.0f;
    for (u32 j0 = first + warp * ATTD_KEYS; j0 <= p; j0 += ATTD_WARPS * ATTD_KEYS) {
        float kv[ATTD_KEYS][V], vv[ATTD_KEYS][V];
#pragma unroll
        for (int u = 0; u < ATTD_KEYS; ++u) {
#pragma unroll
            for (u32 i = 0; i < V; ++i) {
                const bool in = j0 + u <= p && i < per;
                const u64 at_ = (u64)(j0 + u) * stride + i * 32 + lane;
                kv[u][i] = in ? kb[at_] : 0.0f;
                vv[u][i] = in ? vb[at_] : 0.0f;
            }
        }
        float dot[ATTD_KEYS];
#pragma unroll
        for (int u = 0; u < ATTD_KEYS; ++u) {
            dot[u] = 0.0f;
            if (j0 + u <= p) {
#pragma unroll
                for (u32 i = 0; i < V; ++i)
                    if (i < per) dot[u] += q[i] * kv[u][i];
            }
        }
        float mn = m;
#pragma unroll
        for (int u = 0; u < ATTD_KEYS; ++u) {
            dot[u] = warp_sum(dot[u]) * scale;
            if (j0 + u <= p) mn = fmaxf(mn, dot[u]);
        }
        const float corr = expf(m - mn);
        float e[ATTD_KEYS];
        l *= corr;
#pragma unroll
        for (int u = 0; u < ATTD_KEYS; ++u) {
            e[u] = (j0 + u <= p) ? expf(dot[u] - mn) : 0.0f;
            l += e[u];
        }
#pragma unroll
        for (u32 i = 0; i < V; ++i) {
            if (i < per) {
                float a2 = acc[i] * corr;
#pragma unroll
                for (int u = 0; u < ATTD_KEYS; ++u)
                    if (j0 + u <= p) a2 += e[u] * vv[u][i];
                acc[i] = a2;
            }
        }
        m = mn;
    }
    attn_merge_warps<T, ATTD_WARPS, V>(m, l, acc, per, d, o);
}
#define EAI_ATTN_DEC(NAME, T, V, MINB)                                                         \
    extern "C" __global__ void __launch_bounds__(ATTD_WARPS * 32, MINB)                        \
        NAME(const float* qkv, const int* seq, const int* pos, const u32* seq_off,             \
             const float* kc, const float* vc, T::raw* out, u32 nh, u32 nkv, u32 d,            \
             float scale, u32 window) {                                                        \
        pdl_trigger();                                                                         \
        pdl_wait();                                                                            \
        attention_dec_body<T, V>(qkv, seq, pos, seq_off, kc, vc, out, nh, nkv, d, scale,       \
                                 window);                                                      \
    }
EAI_ATTN_DEC(attention_dec_f32_v2, F32, 2, 2)
EAI_ATTN_DEC(attention_dec_f32_v4, F32, 4, 2)
EAI_ATTN_DEC(attention_dec_f32_v8, F32, 8, 1)
EAI_ATTN_DEC(attention_dec_f16_v2, F16, 2, 2)
EAI_ATTN_DEC(attention_dec_f16_v4, F16, 4, 2)
EAI_ATTN_DEC(attention_dec_f16_v8, F16, 8, 1)
EAI_ATTN_DEC(attention_dec_bf16_v2, BF16, 2, 2)
EAI_ATTN_DEC(attention_dec_bf16_v4, BF16, 4, 2)
EAI_ATTN_DEC(attention_dec_bf16_v8, BF16, 8, 1)

// ---------------------------------------------------------------------------------------------
// Greedy step: the first argmax of each logits row over the first `limit` entries (what
// row_stats computes for amax_idx, without the f64 log Σ exp), spread over gridDim.x blocks per
// row (blockIdx.y). Each block folds its best (value, index) into slot[row] with one 64-bit
// atomicMax on (order-preserving bits of the value) << 32 | (~index), so equal values keep the
// lowest index; the last block to finish (count[row]) writes the index and resets slot and
// count to 0 for the next launch (both start zeroed). NaN never wins, as in row_stats.
__device__ __forceinline__ u64 argmax_key(float v, u32 i) {
    const u32 b = __float_as_uint(v);
    const u32 o = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
    return ((u64)o << 32) | (u64)(0xffffffffu - i);
}
extern "C" __global__ void argmax_rows(const float* __restrict__ logits, u32 vocab, u32 limit,
                                      u64* __restrict__ slot, u32* __restrict__ count,
                                      u32* __restrict__ amax_idx) {
    __shared__ float red[32];
    __shared__ u32 redi[32];
    const u32 row_i = blockIdx.y;
    const float* row = logits + (u64)row_i * vocab;
    const u32 n = limit < vocab ? limit : vocab;
    float m = -INFINITY;
    u32 mi = 0xffffffffu;
    for (u32 c = blockIdx.x * blockDim.x + threadIdx.x; c < n; c += gridDim.x * blockDim.x) {
        const float v = row[c];
        if (v > m || (v == m && c < mi)) {
            m = v;
            mi = c;
        }
    }
    block_argmax(m, mi, red, redi);
    if (threadIdx.x == 0) {
        if (mi != 0xffffffffu) atomicMax(&slot[row_i], argmax_key(m, mi));
        __threadfence();
        if (atomicAdd(&count[row_i], 1u) == gridDim.x - 1) {
            const u64 k = atomicExch(&slot[row_i], 0ull);
            amax_idx[row_i] = k == 0 ? 0xffffffffu : 0xffffffffu - (u32)(k & 0xffffffffu);
            count[row_i] = 0;
        }
    }
}
