// Part of the eai-quant CUDA module, the pipelined fused single pass (cp.async ring of tiles). The files are concatenated in the order
// of `source()` in src/cuda/kernels.rs (quant.cu holds the spec and the shared helpers).
// ------------------------------------------------------------------------------------------
// Pipelined fused single pass (the fast path for contiguous groups whose byte length is a
// multiple of 16): a persistent block streams "tiles" of R whole groups through a ring of S
// shared-memory stages with cp.async, so the loads of the next S-1 tiles are in flight while
// one tile is reduced and quantized. A tile is contiguous in global memory; 16-byte chunks are
// copied with coalesced cp.async and placed at slot g·GS + v (GS ≥ LV pads small groups so
// that the team reads below are free of bank conflicts). A team of TS lanes (power of two; a
// whole block at most) owns a group: it reads its 16-byte vectors from shared memory for the
// statistics, reduces min/max with shuffles (and shared memory across warps), forms the
// parameters, then reads the vectors again and writes the codes.

struct TileArgs {
    u64 G;           // groups
    u64 L;           // elements per group
    u32 LV;          // 16-byte vectors per group
    u32 GS;          // shared-memory slots per group (≥ LV)
    u32 R;           // groups per tile
    u32 TS;          // lanes per team
    u32 lv_m, lv_s;  // division magic for / LV
    u32 stage_vecs;  // slots per stage (R · GS)
    u32 unused;
};

__device__ __forceinline__ u32 smem_u32(const void* p) {
    u32 a;
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
    return a;
}
__device__ __forceinline__ void cp_async16(u32 dst, const void* src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Unpack one 16-byte vector (4 f32 or 8 f16/bf16) to floats.
template <class T> struct Unpack;
template <> struct Unpack<F32> {
    static __device__ __forceinline__ void run(uint4 a, float* v) {
        v[0] = __uint_as_float(a.x); v[1] = __uint_as_float(a.y);
        v[2] = __uint_as_float(a.z); v[3] = __uint_as_float(a.w);
    }
};
template <> struct Unpack<F16> {
    static __device__ __forceinline__ void run(uint4 a, float* v) { Vec8Half<F16>::unpack(a, v); }
};
template <> struct Unpack<BF16> {
    static __device__ __forceinline__ void run(uint4 a, float* v) { Vec8Half<BF16>::unpack(a, v); }
};

// min/max over a team of TS lanes (TS a power of two). Every thread of the block must call it
// with the same TS (it synchronises the block when TS > 32).
__device__ __forceinline__ void team_minmax(float& mn, float& mx, float& nan, u32 TS,
                                            float* red_mn, float* red_mx, float* red_nan) {
    const u32 wl = TS < 32 ? TS : 32;
    for (u32 off = wl >> 1; off > 0; off >>= 1) {
        mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, off));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
        nan = __fadd_rn(nan, __shfl_xor_sync(0xffffffffu, nan, off));
    }
    if (TS > 32) {
        const u32 warp = threadIdx.x >> 5;
        if ((threadIdx.x & 31) == 0) { red_mn[warp] = mn; red_mx[warp] = mx; red_nan[warp] = nan; }
        __syncthreads();
        const u32 wpt = TS >> 5;
        const u32 w0 = warp & ~(wpt - 1);
        mn = red_mn[w0];
        mx = red_mx[w0];
        nan = red_nan[w0];
        for (u32 w = 1; w < wpt; ++w) {
            mn = fminf(mn, red_mn[w0 + w]);
            mx = fmaxf(mx, red_mx[w0 + w]);
            nan = __fadd_rn(nan, red_nan[w0 + w]);
        }
        __syncthreads();
    }
}

// Lean per-element paths of the pipelined kernel. Statistics: two min/max and one FMA per
// element; fma(x, 0, acc) turns acc into NaN iff some x is ±inf or NaN (which fminf/fmaxf
// would skip or absorb), so a group is known "clean" after its reduction and only dirty
// groups take the exact per-element rule. Codes of a clean group (finite multiplier, not
// Divide): v = x·inv clamped in float to the integer bounds [qmin − zp, qmax − zp] (rounding is
// monotone and the bounds are integers, so clamping first equals clamping the rounded value),
// rounded by the 1.5·2²³ magic addition whose low mantissa byte is then the code (+ zp), and
// four codes packed with byte permutes.
template <int N>
__device__ __forceinline__ void stats_lean(const float* v, float& mn, float& mx, float& nan) {
    // min/max trees over the vector (short dependency chains), then into the accumulators
    float a[N / 2], b[N / 2];
#pragma unroll
    for (int j = 0; j < N / 2; ++j) { a[j] = fminf(v[2 * j], v[2 * j + 1]); b[j] = fmaxf(v[2 * j], v[2 * j + 1]); }
#pragma unroll
    for (int w = N / 4; w > 0; w >>= 1) {
#pragma unroll
        for (int j = 0; j < w; ++j) { a[j] = fminf(a[j], a[j + w]); b[j] = fmaxf(b[j], b[j + w]); }
    }
    mn = fminf(mn, a[0]);
    mx = fmaxf(mx, b[0]);
    float n0 = fmaf(v[0], 0.0f, nan), n1 = v[1] * 0.0f;
#pragma unroll
    for (int j = 2; j < N; j += 2) { n0 = fmaf(v[j], 0.0f, n0); n1 = fmaf(v[j + 1], 0.0f, n1); }
    nan = __fadd_rn(n0, n1);
}
struct QLean {
    float inv, lo, hi;
    u32 zp;
    bool away;
};
// The lean form of a fast path (its clamp bounds as floats).
__device__ __forceinline__ QLean make_lean(const QFast& fq) {
    QLean fl;
    fl.inv = fq.inv;
    fl.lo = (float)fq.lo;
    fl.hi = (float)fq.hi;
    fl.zp = (u32)fq.zp;
    fl.away = fq.away;
    return fl;
}
template <bool AWAY>
__device__ __forceinline__ u32 qlean(float x, const QLean& f) {
    float v = __fmul_rn(x, f.inv);
    v = fminf(fmaxf(v, f.lo), f.hi);
    if (AWAY) {
        // ties away from zero: floor(|v| + (½ − 2⁻²⁵)) equals round-half-away(|v|) for every
        // f32 |v| ≤ 400 (checked exhaustively on the CPU); the floor is the addition of 1.5·2²³
        // rounded toward zero, and the sign is restored on the integer
        const float t = __fadd_rz(__fadd_rn(fabsf(v), 0.49999997f), 12582912.0f);
        const int m = __float_as_int(t) - 0x4B400000;
        return (u32)((v < 0.0f ? -m : m) + (int)f.zp);
    }
    const float t = __fadd_rn(v, 12582912.0f);
    return __float_as_uint(t) + f.zp;
}
__device__ __forceinline__ u32 pack4_lean(u32 a, u32 b, u32 c, u32 d) {
    return __byte_perm(__byte_perm(a, b, 0x0040), __byte_perm(c, d, 0x0040), 0x5410);
}
template <int N, bool AWAY>
__device__ __forceinline__ void store_codes_lean(u8* p, const float* v, const QLean& f) {
    const u32 a = pack4_lean(qlean<AWAY>(v[0], f), qlean<AWAY>(v[1], f), qlean<AWAY>(v[2], f),
                             qlean<AWAY>(v[3], f));
    if (N == 4) {
        __stcs(reinterpret_cast<u32*>(p), a);
    } else {
        const u32 b = pack4_lean(qlean<AWAY>(v[4 % N], f), qlean<AWAY>(v[5 % N], f),
                                 qlean<AWAY>(v[6 % N], f), qlean<AWAY>(v[7 % N], f));
        __stcs(reinterpret_cast<uint2*>(p), make_uint2(a, b));
    }
}

// Codes of a clean group from its vectors in shared memory (lane tl of TS).
template <class T, bool AWAY>
__device__ __forceinline__ void tile_codes_lean(const uint4* sg, u8* qg, u32 tl, u32 TS,
                                                const TileArgs& a, const QLean& fl) {
    const int W = Wide<T>::N;
#pragma unroll 2
    for (u32 v = tl; v < a.LV; v += TS) {
        float f[W];
        Unpack<T>::run(sg[v], f);
        store_codes_lean<W, AWAY>(qg + (u64)v * W, f, fl);
    }
}

template <class T, int S>
__device__ __forceinline__ void rows_tiles(const typename T::raw* __restrict__ x,
                                           u8* __restrict__ q, float* __restrict__ scales,
                                           int* __restrict__ zps, const TileArgs& a,
                                           const QSpec& s, u64* bad, u64* bad_scale) {
    extern __shared__ uint4 stage_mem[];
    __shared__ float red_mn[32], red_mx[32], red_nan[32];
    const int W = Wide<T>::N;
    const u32 tid = threadIdx.x, NT = blockDim.x;
    const u64 tiles = (a.G + a.R - 1) / a.R;
    const u64 stride = gridDim.x;
    const char* xb = reinterpret_cast<const char*>(x);
    const bool padded = a.GS != a.LV;
    auto issue = [&](u64 t, u32 st) {
        if (t < tiles) {
            const u64 g0 = t * a.R;
            const u64 left = a.G - g0;
            const u32 ng = left < (u64)a.R ? (u32)left : a.R;
            const u32 nch = ng * a.LV;
            const char* src = xb + g0 * a.L * sizeof(typename T::raw);
            const u32 base = smem_u32(stage_mem + (u64)st * a.stage_vecs);
            for (u32 c = tid; c < nch; c += NT) {
                u32 slot = c;
                if (padded) slot = c + fdiv(c, a.lv_m, a.lv_s) * (a.GS - a.LV);
                cp_async16(base + slot * 16u, src + (u64)c * 16u);
            }
        }
        cp_async_commit();
    };
    u64 t = blockIdx.x;
#pragma unroll
    for (int st = 0; st < S - 1; ++st) issue(t + (u64)st * stride, (u32)st);
    u32 cur = 0;  // stage of tile t
    const u32 TS = a.TS;
    const u32 teams = NT / TS;
    const u32 team = tid / TS, tl = tid & (TS - 1);
    for (; t < tiles; t += stride) {
        const u32 ahead = cur == 0 ? (u32)(S - 1) : cur - 1;  // (cur + S - 1) % S
        issue(t + (u64)(S - 1) * stride, ahead);
        cp_async_wait<S - 1>();
        __syncthreads();
        const uint4* sm = stage_mem + (u64)cur * a.stage_vecs;
        const u64 g0 = t * a.R;
        const u64 left = a.G - g0;
        const u32 ng = left < (u64)a.R ? (u32)left : a.R;
        for (u32 r0 = 0; r0 < ng; r0 += teams) {  // block-uniform
            const u32 gl = r0 + team;
            const bool active = gl < ng;
            const uint4* sg = sm + gl * a.GS;
            const u64 g = g0 + gl;
            const u64 base = g * a.L;
            float mn = __int_as_float(0x7f800000), mx = __int_as_float(0xff800000), nan = 0.0f;
            if (active) {
#pragma unroll 2
                for (u32 v = tl; v < a.LV; v += TS) {
                    float f[W];
                    Unpack<T>::run(sg[v], f);
                    stats_lean<W>(f, mn, mx, nan);
                }
            }
            team_minmax(mn, mx, nan, TS, red_mn, red_mx, red_nan);
            const bool clean = nan == nan;
            if (__syncthreads_or(!clean)) {
                // some group of this round holds ±inf/NaN: exact statistics (non-finite values
                // skipped, the first recorded under Reject) for every group of the round
                mn = __int_as_float(0x7f800000);
                mx = __int_as_float(0xff800000);
                if (active) {
                    for (u32 v = tl; v < a.LV; v += TS) {
                        float f[W];
                        Unpack<T>::run(sg[v], f);
                        minmax_updateN<W>(f, mn, mx, base + (u64)v * W, s, bad);
                    }
                }
                float dummy = 0.0f;
                team_minmax(mn, mx, dummy, TS, red_mn, red_mx, red_nan);
            }
            if (active) {
                float scale, inv;
                int zp;
                const QFast fq = group_params_out(mn, mx, s, g, tl == 0, scales, zps, bad_scale, scale, inv, zp);
                u8* qg = q + base;
                if (clean && fq.on) {
                    const QLean fl = make_lean(fq);
                    if (fl.away) tile_codes_lean<T, true>(sg, qg, tl, TS, a, fl);
                    else tile_codes_lean<T, false>(sg, qg, tl, TS, a, fl);
                } else {
                    for (u32 v = tl; v < a.LV; v += TS) {
                        float f[W];
                        Unpack<T>::run(sg[v], f);
                        store_codesN<W>(qg + (u64)v * W, f, fq, scale, inv, zp, s);
                    }
                }
            }
        }
        __syncthreads();  // stage `cur` is reloaded by the next iteration's issue
        cur = cur + 1 == (u32)S ? 0 : cur + 1;
    }
    cp_async_wait<0>();
}

// Min/max of the block (every thread calls it; red_*: 32 floats of shared memory each) merged
// into the ordered pair ord[0], ord[1] by thread 0 (nothing when no value was finite).
__device__ __forceinline__ void block_minmax_ord(float mn, float mx, float* red_mn, float* red_mx,
                                                 u32* ord) {
    shfl_minmax(mn, mx, 16);
    if ((threadIdx.x & 31) == 0) { red_mn[threadIdx.x >> 5] = mn; red_mx[threadIdx.x >> 5] = mx; }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (u32 w = 1; w < blockDim.x / 32; ++w) { mn = fminf(mn, red_mn[w]); mx = fmaxf(mx, red_mx[w]); }
        if (mn <= mx) {
            atomicMin(ord, f2ord(mn));
            atomicMax(ord + 1, f2ord(mx));
        }
    }
}

// Stats of a whole tensor (one group): grid-stride over quads, block reduction, one atomic
// pair per block.
template <class T>
__device__ __forceinline__ void stats_all(const typename T::raw* __restrict__ x, u64 n,
                                          u32* __restrict__ ord, const QSpec& s, u64* bad) {
    __shared__ float red_mn[32], red_mx[32];
    const int W = Wide<T>::N;
    float mn = __int_as_float(0x7f800000), mx = __int_as_float(0xff800000);
    const u64 nq = n / W, stride = global_threads();
    u64 qi = global_thread();
    for (; qi + stride < nq; qi += 2 * stride) {
        float a[W], b[W];
        Wide<T>::load(x + qi * W, a);
        Wide<T>::load(x + (qi + stride) * W, b);
        statsN<W>(a, mn, mx, qi * W, s, bad);
        statsN<W>(b, mn, mx, (qi + stride) * W, s, bad);
    }
    if (qi < nq) {
        float a[W];
        Wide<T>::load(x + qi * W, a);
        statsN<W>(a, mn, mx, qi * W, s, bad);
    }
    for (u64 i = nq * W + global_thread(); i < n; i += global_threads()) {
        minmax_update(T::to_f32(x[i]), mn, mx, i, s, bad);
    }
    block_minmax_ord(mn, mx, red_mn, red_mx, ord);
}

// Stats per channel of an (outer, channels, inner) layout: thread p = c·inner + j covers the
// outer range of its blockIdx.y slice, then one atomic pair per thread.
template <class T>
__device__ __forceinline__ void stats_channels(const typename T::raw* __restrict__ x, u64 outer,
                                               u64 channels, u64 inner, u32* __restrict__ ord,
                                               const QSpec& s, u64* bad) {
    const u64 ci = channels * inner;
    const u64 per = (outer + gridDim.y - 1) / gridDim.y;
    const u64 o0 = (u64)blockIdx.y * per;
    const u64 o1 = min(outer, o0 + per);
    for (u64 p = (u64)blockIdx.x * blockDim.x + threadIdx.x; p < ci; p += (u64)gridDim.x * blockDim.x) {
        float mn = __int_as_float(0x7f800000), mx = __int_as_float(0xff800000);
        for (u64 o = o0; o < o1; ++o) {
            const u64 i = o * ci + p;
            minmax_update(T::to_f32(x[i]), mn, mx, i, s, bad);
        }
        if (mn <= mx) {
            const u64 c = p / inner;
            atomicMin(ord + 2 * c, f2ord(mn));
            atomicMax(ord + 2 * c + 1, f2ord(mx));
        }
    }
}

// Parameters of every group from the ordered stats (initialised to min = 0xffffffff,
// max = 0: "nothing finite").
extern "C" __global__ void quant_params(const u32* __restrict__ ord, u64 G, QSpec s,
                                        float* __restrict__ scales, int* __restrict__ zps,
                                        float* __restrict__ invs, u64* bad_scale) {
    for (u64 g = global_thread(); g < G; g += global_threads()) {
        const u32 a = ord[2 * g], b = ord[2 * g + 1];
        float mn = __int_as_float(0x7f800000), mx = __int_as_float(0xff800000);
        if (a != 0xffffffffu) { mn = ord2f(a); mx = ord2f(b); }
        float scale, inv;
        int zp;
        const bool ok = group_params(mn, mx, s, &scale, &zp, &inv);
        scales[g] = scale;
        zps[g] = zp;
        invs[g] = inv;
        if (!ok) atomicMin(bad_scale, g);
    }
}

// Element-wise codes from per-group parameters; quads when inner % 4 == 0.
template <class T>
__device__ __forceinline__ void quant_apply(const typename T::raw* __restrict__ x, u64 n,
                                            GroupIndex gi, const float* __restrict__ scales,
                                            const int* __restrict__ zps,
                                            const float* __restrict__ invs, const QSpec& s,
                                            u8* __restrict__ q) {
    if ((gi.inner & 3) == 0) {
        const u64 nq = n / 4, stride = global_threads();
        for (u64 qi = global_thread(); qi < nq; qi += stride) {
            const u64 g = group_of(qi * 4, gi);
            const float sc = __ldg(scales + g), inv = __ldg(invs + g);
            const int zp = __ldg(zps + g);
            const QFast f = make_fast(sc, inv, zp, s);
            float t[4];
            Vec4<T>::load(x + qi * 4, t);
            __stcs(reinterpret_cast<u32*>(q + qi * 4), quant4(t, f, sc, inv, zp, s));
        }
    } else {
        for (u64 i = global_thread(); i < n; i += global_threads()) {
            const u64 g = group_of(i, gi);
            q[i] = (u8)(quant1(T::to_f32(x[i]), __ldg(scales + g), __ldg(invs + g), __ldg(zps + g), s) & 0xff);
        }
    }
}

// The outer rows a column kernel's block walks: its blockIdx.y slice of consecutive rows, or,
// `interleave`, rows blockIdx.y, + gridDim.y, … (so that the grid's blocks stream one window
// of consecutive rows at a time). Row k of the walk is first + k step, below end.
struct ColRows {
    u64 first, end, step;
};
__device__ __forceinline__ ColRows col_rows(u64 outer, u32 interleave) {
    if (interleave) return ColRows{(u64)blockIdx.y, outer, (u64)gridDim.y};
    const u64 per = (outer + gridDim.y - 1) / gridDim.y;
    const u64 o0 = (u64)blockIdx.y * per;
    return ColRows{o0, min(outer, o0 + per), 1};
}

// The statistics of column vector p into the groups' ordered min/max words: one atomic pair
// per element's channel (inner == 1) or one for the vector's group (inner % W == 0).
template <int W>
__device__ __forceinline__ void stats_cols_out(const float* mn, const float* mx, u64 p, u64 inner,
                                               u32* __restrict__ ord) {
    if (inner == 1) {
#pragma unroll
        for (int j = 0; j < W; ++j) {
            if (mn[j] <= mx[j]) {
                const u64 c = p * W + j;
                atomicMin(ord + 2 * c, f2ord(mn[j]));
                atomicMax(ord + 2 * c + 1, f2ord(mx[j]));
            }
        }
    } else {
        float a = mn[0], b = mx[0];
#pragma unroll
        for (int j = 1; j < W; ++j) { a = fminf(a, mn[j]); b = fmaxf(b, mx[j]); }
        if (a <= b) {
            const u64 c = (p * W) / inner;
            atomicMin(ord + 2 * c, f2ord(a));
            atomicMax(ord + 2 * c + 1, f2ord(b));
        }
    }
}

// Packed column statistics of a 16-bit column vector (session 15): NaN-propagating min / max
// of the raw element pairs (one instruction per pair, the register row kernels' RegStatsHalf)
// instead of a finiteness test, a branch and two f32 operations per element. Returns whether
// every element was finite (then mn / mx are the 8 columns' exact min / max: widening is exact
// and monotone); a NaN or an infinity leaves a non-finite min or max in its column, and the
// caller redoes the rows with the exact rule (skip non-finite values, record the first).
template <class T>
__device__ __forceinline__ bool stats_cols_packed(const typename T::raw* __restrict__ col, u64 row,
                                                  const ColRows& rs, float* mn, float* mx) {
    const int U = 8;  // rows in flight: the host launches 2 blocks per SM for this kernel
    const u32 pinf = T::from_f32(__int_as_float(0x7f800000));
    const u32 ninf = T::from_f32(__int_as_float(0xff800000));
    u32 lo[4], hi[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) { lo[k] = pinf | (pinf << 16); hi[k] = ninf | (ninf << 16); }
    u64 o = rs.first;
    for (; o + (U - 1) * rs.step < rs.end; o += U * rs.step) {
        uint4 r[U];
#pragma unroll
        for (int u = 0; u < U; ++u) r[u] = __ldcs(reinterpret_cast<const uint4*>(col + (o + u * rs.step) * row));
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const u32 w[4] = {r[u].x, r[u].y, r[u].z, r[u].w};
#pragma unroll
            for (int k = 0; k < 4; ++k) { lo[k] = T::min2(lo[k], w[k]); hi[k] = T::max2(hi[k], w[k]); }
        }
    }
    for (; o < rs.end; o += rs.step) {
        const uint4 r = __ldcs(reinterpret_cast<const uint4*>(col + o * row));
        const u32 w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
        for (int k = 0; k < 4; ++k) { lo[k] = T::min2(lo[k], w[k]); hi[k] = T::max2(hi[k], w[k]); }
    }
    bool finite = true;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
        mn[2 * k] = T::to_f32((u16)(lo[k] & 0xffffu));
        mn[2 * k + 1] = T::to_f32((u16)(lo[k] >> 16));
        mx[2 * k] = T::to_f32((u16)(hi[k] & 0xffffu));
        mx[2 * k + 1] = T::to_f32((u16)(hi[k] >> 16));
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) finite = finite && is_finite_f(mn[j]) && is_finite_f(mx[j]);
    return finite;
}

// Column statistics for per-channel groups on an inner axis, (outer, channels, inner) with
// inner == 1 and channels % W == 0 (one group per element of a 16-byte column vector) or
// inner % W == 0 (one group per vector): a thread owns one 16-byte column vector and walks its
// block's rows (col_rows) with 4 independent loads in flight; warps read whole 512-byte row
// segments (coalesced). One atomic pair per group and thread at the end.
template <class T>
__device__ __forceinline__ void stats_cols(const typename T::raw* __restrict__ x, u64 outer,
                                           u64 channels, u64 inner, u32* __restrict__ ord,
                                           const QSpec& s, u64* bad, u32 interleave) {
    const int W = Wide<T>::N;
    // the exact per-element loop: 2 rows in flight from 16-bit inputs, where it is only the
    // fallback of the packed loop (and 4 would spill at 64 registers)
    const int U = W == 8 ? 2 : 4;
    const u64 row = channels * inner;
    const u64 nvec = row / W;
    const u64 p = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= nvec) return;
    const ColRows rs = col_rows(outer, interleave);
    float mn[W], mx[W];
    const typename T::raw* col = x + p * W;
    // 16-bit inputs: packed statistics first; a thread whose columns saw a NaN or an infinity
    // redoes its rows with the exact per-element rule below
    if constexpr (W == 8) {
        if (stats_cols_packed<T>(col, row, rs, mn, mx)) {
            stats_cols_out<W>(mn, mx, p, inner, ord);
            return;
        }
    }
#pragma unroll
    for (int j = 0; j < W; ++j) { mn[j] = __int_as_float(0x7f800000); mx[j] = __int_as_float(0xff800000); }
    u64 o = rs.first;
    for (; o + (U - 1) * rs.step < rs.end; o += U * rs.step) {
        float v[U][W];
#pragma unroll
        for (int u = 0; u < U; ++u) Wide<T>::load(col + (o + u * rs.step) * row, v[u]);
#pragma unroll
        for (int u = 0; u < U; ++u) {
#pragma unroll
            for (int j = 0; j < W; ++j) {
                const float e = v[u][j];
                if (is_finite_f(e)) { mn[j] = fminf(mn[j], e); mx[j] = fmaxf(mx[j], e); }
                else if (!s.saturate) atomicMin(bad, (o + u * rs.step) * row + p * W + j);
            }
        }
    }
    for (; o < rs.end; o += rs.step) {
        float v[W];
        Wide<T>::load(col + o * row, v);
#pragma unroll
        for (int j = 0; j < W; ++j) {
            const float e = v[j];
            if (is_finite_f(e)) { mn[j] = fminf(mn[j], e); mx[j] = fmaxf(mx[j], e); }
            else if (!s.saturate) atomicMin(bad, o * row + p * W + j);
        }
    }
    stats_cols_out<W>(mn, mx, p, inner, ord);
}

// The parameters of the W consecutive groups g .. g + W - 1 (g a multiple of W): 16-byte loads.
template <int W>
__device__ __forceinline__ void load_group_params(const float* __restrict__ scales,
                                                  const float* __restrict__ invs,
                                                  const int* __restrict__ zps, u64 g, float* scv,
                                                  float* invv, int* zpv) {
#pragma unroll
    for (int j = 0; j < W; j += 4) {
        const float4 a4 = __ldg(reinterpret_cast<const float4*>(scales + g + j));
        const float4 b4 = __ldg(reinterpret_cast<const float4*>(invs + g + j));
        const int4 c4 = __ldg(reinterpret_cast<const int4*>(zps + g + j));
        scv[j] = a4.x; scv[j + 1] = a4.y; scv[j + 2] = a4.z; scv[j + 3] = a4.w;
        invv[j] = b4.x; invv[j + 1] = b4.y; invv[j + 2] = b4.z; invv[j + 3] = b4.w;
        zpv[j] = c4.x; zpv[j + 1] = c4.y; zpv[j + 2] = c4.z; zpv[j + 3] = c4.w;
    }
}

// The W codes of v, element j in group j's parameters, stored as one 4- or 8-byte streaming
// write at q.
template <int W>
__device__ __forceinline__ void store_codes_groups(u8* __restrict__ q, const float* v,
                                                   const float* scv, const float* invv,
                                                   const int* zpv, const QSpec& s) {
    int c[W];
#pragma unroll
    for (int j = 0; j < W; ++j) {
        const float sc = scv[j], inv = invv[j];
        const int zp = zpv[j];
        const QFast f = make_fast(sc, inv, zp, s);
        c[j] = (f.on && is_finite_f(v[j])) ? qfast(v[j], f) : quant1(v[j], sc, inv, zp, s);
    }
    if (W == 4) {
        __stcs(reinterpret_cast<u32*>(q), pack4(c[0], c[1], c[2], c[3]));
    } else {
        __stcs(reinterpret_cast<uint2*>(q),
               make_uint2(pack4(c[0], c[1], c[2], c[3]), pack4(c[4 % W], c[5 % W], c[6 % W], c[7 % W])));
    }
}

// Codes for per-channel groups on the last axis ((outer, channels), inner == 1, channels % W
// == 0) in stats_cols' layout (session 15): a thread owns one 16-byte column vector (W
// consecutive channels), loads their parameters once and walks its blockIdx.y slice of the
// outer index with 4 loads in flight; a warp reads 512 contiguous bytes per row and writes
// 32 W contiguous code bytes. quant_apply_vec loads the W parameter triples again for every
// vector (96 bytes of parameters per 16 bytes of bf16 input). The codes are the same
// expression (store_codes_groups), so the same bits.
template <class T>
__device__ __forceinline__ void quant_apply_cols(const typename T::raw* __restrict__ x, u64 outer,
                                                 u64 channels, const float* __restrict__ scales,
                                                 const int* __restrict__ zps,
                                                 const float* __restrict__ invs, const QSpec& s,
                                                 u8* __restrict__ q, u32 interleave) {
    const int W = Wide<T>::N;
    const int U = W == 8 ? 2 : 4;  // 16-bit: 2 rows in flight (4 would spill at 64 registers)
    const u64 p = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= channels / W) return;
    const ColRows rs = col_rows(outer, interleave);
    const u64 c0 = p * W;
    float scv[W], invv[W];
    int zpv[W];
    load_group_params<W>(scales, invs, zps, c0, scv, invv, zpv);
    u64 o = rs.first;
    for (; o + (U - 1) * rs.step < rs.end; o += U * rs.step) {
        float v[U][W];
#pragma unroll
        for (int u = 0; u < U; ++u) Wide<T>::load(x + (o + u * rs.step) * channels + c0, v[u]);
#pragma unroll
        for (int u = 0; u < U; ++u) {
            store_codes_groups<W>(q + (o + u * rs.step) * channels + c0, v[u], scv, invv, zpv, s);
        }
    }
    for (; o < rs.end; o += rs.step) {
        float v[W];
        Wide<T>::load(x + o * channels + c0, v);
        store_codes_groups<W>(q + o * channels + c0, v, scv, invv, zpv, s);
    }
}

// Element-wise codes from per-group parameters through 16-byte input vectors, two in flight
// per thread: either every vector lies in one group (inner % W == 0) or its W elements belong
// to W consecutive groups (inner == 1, channels % W == 0).
template <class T>
__device__ __forceinline__ void quant_apply_vec_one(const typename T::raw* __restrict__ x,
                                                    u64 vi, const GroupIndex& gi,
                                                    const float* __restrict__ scales,
                                                    const int* __restrict__ zps,
                                                    const float* __restrict__ invs,
                                                    const QSpec& s, u8* __restrict__ q,
                                                    const float* v) {
    const int W = Wide<T>::N;
    const u64 e = vi * W;
    const u64 g = group_of(e, gi);
    if (gi.inner != 1) {
        const float sc = __ldg(scales + g), inv = __ldg(invs + g);
        const int zp = __ldg(zps + g);
        const QFast f = make_fast(sc, inv, zp, s);
        store_codesN<W>(q + e, v, f, sc, inv, zp, s);
    } else {
        // W consecutive groups starting at g (a multiple of W): 16-byte parameter loads
        float scv[W], invv[W];
        int zpv[W];
        load_group_params<W>(scales, invs, zps, g, scv, invv, zpv);
        store_codes_groups<W>(q + e, v, scv, invv, zpv, s);
    }
}

template <class T>
__device__ __forceinline__ void quant_apply_vec(const typename T::raw* __restrict__ x, u64 n,
                                                GroupIndex gi, const float* __restrict__ scales,
                                                const int* __restrict__ zps,
                                                const float* __restrict__ invs, const QSpec& s,
                                                u8* __restrict__ q) {
    const int W = Wide<T>::N;
    const u64 nv = n / W, stride = global_threads();
    u64 vi = global_thread();
    for (; vi + stride < nv; vi += 2 * stride) {
        float a[W], b[W];
        Wide<T>::load(x + vi * W, a);
        Wide<T>::load(x + (vi + stride) * W, b);
        quant_apply_vec_one<T>(x, vi, gi, scales, zps, invs, s, q, a);
        quant_apply_vec_one<T>(x, vi + stride, gi, scales, zps, invs, s, q, b);
    }
    if (vi < nv) {
        float a[W];
        Wide<T>::load(x + vi * W, a);
        quant_apply_vec_one<T>(x, vi, gi, scales, zps, invs, s, q, a);
    }
}

// Dequantize: y = ((q - zp) as f32) * scale, rounded once to the output type. The code is
// widened with the magic-number trick (exact; no int→float conversion unit). Vectors of W codes
// (W = 4 for f32 output: 16-byte stores; W = 8 for 16-bit output: 8-byte code loads and
// 16-byte stores), two independent vectors per step.
template <class O> struct DeqOut;
template <> struct DeqOut<F32> {
    enum { W = 4 };
    static __device__ __forceinline__ void store(float* p, const float* v) { Vec4<F32>::store(p, v); }
};
template <class H> struct DeqOutHalf {
    enum { W = 8 };
    static __device__ __forceinline__ void store(u16* p, const float* v) { Vec8<H>::store(p, v); }
};
template <> struct DeqOut<F16> : DeqOutHalf<F16> {};
template <> struct DeqOut<BF16> : DeqOutHalf<BF16> {};

template <int W>
__device__ __forceinline__ void load_codes(const u8* p, u32* w) {
    if (W == 4) {
        w[0] = __ldcs(reinterpret_cast<const u32*>(p));
    } else {
        const uint2 a = __ldcs(reinterpret_cast<const uint2*>(p));
        w[0] = a.x;
        w[1] = a.y;
    }
}

template <class O>
__device__ __forceinline__ void dequant_vec(const u8* __restrict__ q, int is_signed, u64 e,
                                            const GroupIndex& gi, const float* __restrict__ scales,
                                            const int* __restrict__ zps,
                                            typename O::raw* __restrict__ y) {
    const int W = DeqOut<O>::W;
    const u64 g = group_of(e, gi);
    const float sc = __ldg(scales + g);
    const int zp = __ldg(zps + g);
    u32 w[W / 4];
    load_codes<W>(q + e, w);
    // code byte b (biased by 128 when signed) permuted into the mantissa of 2^23, minus
    // 2^23 + bias + zp: exactly code − zp (|·| ≤ 383), without the int→float unit
    const u32 flip = is_signed ? 0x80808080u : 0u;
    const float off = __int_as_float(0x4B000000 + (is_signed ? 128 : 0) + zp);
    float t[W];
#pragma unroll
    for (int i = 0; i < W / 4; ++i) {
        const u32 b = w[i] ^ flip;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const float c = __fsub_rn(__uint_as_float(__byte_perm(b, 0x4B000000u, 0x7540 + j)), off);
            t[4 * i + j] = __fmul_rn(c, sc);
        }
    }
    DeqOut<O>::store(y + e, t);
}

// The pipelined kernel with an S-stage ring.
#define EAI_TILES_KERNEL(SUF, T, S)                                                              \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        quant_rows_tiles##S##_##SUF(const T::raw* __restrict__ x, u8* q, float* scales, int* zps, \
                                    TileArgs a, QSpec s, u64* bad, u64* bad_scale) {             \
        rows_tiles<T, S>(x, q, scales, zps, a, s, bad, bad_scale);                               \
    }
#define EAI_QUANT_KERNELS(SUF, T)                                                                \
    extern "C" __global__ void quant_rows_team_##SUF(const T::raw* __restrict__ x, u8* q,        \
                                                     float* scales, int* zps, u64 G, u64 L,      \
                                                     u32 TS, QSpec s, u64* bad, u64* bad_scale) { \
        if (L % Wide<T>::N == 0)                                                                 \
            rows_fused<T, true, false>(x, q, scales, zps, G, L, TS, s, bad, bad_scale);          \
        else                                                                                     \
            rows_fused<T, false, false>(x, q, scales, zps, G, L, TS, s, bad, bad_scale);         \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(128)                                            \
        quant_rows_block_##SUF(const T::raw* __restrict__ x, u8* q, float* scales, int* zps,     \
                               u64 G, u64 L, QSpec s, u64* bad, u64* bad_scale) {                \
        if (L % Wide<T>::N == 0)                                                                 \
            rows_fused<T, true, true>(x, q, scales, zps, G, L, 0, s, bad, bad_scale);            \
        else                                                                                     \
            rows_fused<T, false, true>(x, q, scales, zps, G, L, 0, s, bad, bad_scale);           \
    }                                                                                            \
    extern "C" __global__ void quant_stats_all_##SUF(const T::raw* __restrict__ x, u64 n,        \
                                                     u32* ord, QSpec s, u64* bad) {              \
        stats_all<T>(x, n, ord, s, bad);                                                         \
    }                                                                                            \
    extern "C" __global__ void quant_stats_channels_##SUF(const T::raw* __restrict__ x,          \
                                                          u64 outer, u64 channels, u64 inner,    \
                                                          u32* ord, QSpec s, u64* bad) {         \
        stats_channels<T>(x, outer, channels, inner, ord, s, bad);                               \
    }                                                                                            \
    extern "C" __global__ void quant_apply_##SUF(const T::raw* __restrict__ x, u64 n,            \
                                                 GroupIndex gi, const float* scales,             \
                                                 const int* zps, const float* invs, QSpec s,     \
                                                 u8* q) {                                        \
        quant_apply<T>(x, n, gi, scales, zps, invs, s, q);                                       \
    }                                                                                            \
    EAI_TILES_KERNEL(SUF, T, 2)                                                                  \
    EAI_TILES_KERNEL(SUF, T, 3)                                                                  \
    EAI_TILES_KERNEL(SUF, T, 4)                                                                  \
    extern "C" __global__ void __launch_bounds__(256, 4)                                         \
        quant_stats_cols_##SUF(const T::raw* __restrict__ x, u64 outer,                          \
                                                      u64 channels, u64 inner, u32* ord,         \
                                                      QSpec s, u64* bad, u32 interleave) {       \
        stats_cols<T>(x, outer, channels, inner, ord, s, bad, interleave);                       \
    }                                                                                            \
    extern "C" __global__ void quant_apply_vec_##SUF(const T::raw* __restrict__ x, u64 n,        \
                                                     GroupIndex gi, const float* scales,         \
                                                     const int* zps, const float* invs, QSpec s, \
                                                     u8* q) {                                    \
        quant_apply_vec<T>(x, n, gi, scales, zps, invs, s, q);                                   \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(256, 4)                                         \
        quant_apply_cols_##SUF(const T::raw* __restrict__ x, u64 outer,                          \
                                                      u64 channels, const float* scales,         \
                                                      const int* zps, const float* invs,         \
                                                      QSpec s, u8* q, u32 interleave) {          \
        quant_apply_cols<T>(x, outer, channels, scales, zps, invs, s, q, interleave);            \
    }
EAI_QUANT_KERNELS(f32, F32)
EAI_QUANT_KERNELS(f16, F16)
EAI_QUANT_KERNELS(bf16, BF16)

// Reset the two-pass statistics (min = 0xffffffff, max = 0 per group) and the error flags.
extern "C" __global__ void quant_init(u32* __restrict__ ord, u64 G, u64* __restrict__ flags) {
    for (u64 g = global_thread(); g < G; g += global_threads()) {
        ord[2 * g] = 0xffffffffu;
        ord[2 * g + 1] = 0u;
    }
    if (global_thread() == 0) {
        flags[0] = ~0ull;
        flags[1] = ~0ull;
        flags[2] = 0ull;  // grid-barrier counter of the one-pass per-tensor kernel
    }
}
