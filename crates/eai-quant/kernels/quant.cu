// Quantization and dequantization kernels. They reproduce `eai_quant::kernel::{group_params,
// quantize_value, dequantize_value}` bit for bit (contract: docs/quant.md §2): every float
// operation below is one correctly rounded IEEE f32 operation (__fadd_rn, __fmul_rn, __fdiv_rn;
// the module is compiled with --fmad=false), ties are broken exactly as on the CPU, and the
// float→int conversion saturates with NaN → 0 (PTX cvt.rni / cvt.rzi).

// Spec fields the kernels need, flattened (mirrors `QSpecArgs` in src/cuda/quant.rs).
struct QSpec {
    float d;          // divisor D of the scale rule
    float eps;        // lower bound under ClampToEps
    float min_pos;    // smallest positive (subnormal) value of the scale dtype
    int qmin;
    int qmax;
    int zp_sym;       // symmetric zero point
    int asym;         // 1: asymmetric mapping
    int apply;        // 0 MulReciprocal, 1 MulReciprocalUnrounded, 2 MulRatio, 3 Divide
    int away;         // 1: ties away from zero, 0: ties to even
    int dtype;        // scale dtype: 0 f32, 1 f16, 2 bf16
    int zero_scale;   // 1: ZeroRange::ZeroScale, 0: ClampToEps
    int saturate;     // 1: NonFinite::Saturate, 0: Reject
};

__device__ __forceinline__ bool is_finite_f(float x) { return fabsf(x) <= 3.40282346638528859812e+38f; }

__device__ __forceinline__ float round_to_dtype(float s, int dtype) {
    if (dtype == 1) return f16_to_f32(f32_to_f16(s));
    if (dtype == 2) return bf16_to_f32(f32_to_bf16(s));
    return s;
}

// round() of the contract, as a float (no saturation).
__device__ __forceinline__ float qround(float v, int away) { return away ? roundf(v) : rintf(v); }

// group_params: returns false when the scale is not representable (value left in *scale).
__device__ __forceinline__ bool group_params(float mn, float mx, const QSpec& s, float* scale,
                                             int* zp, float* inv) {
    if (mn > mx) { mn = 0.0f; mx = 0.0f; }  // RangeStats::finish: nothing finite
    const float lo = fminf(mn, 0.0f);
    const float hi = fmaxf(mx, 0.0f);
    const bool zero_range = hi == lo;
    const float amax = fmaxf(-lo, hi);
    float se = s.asym ? __fdiv_rn(__fsub_rn(hi, lo), s.d) : __fdiv_rn(amax, s.d);
    if (!s.zero_scale) se = fmaxf(se, s.eps);
    if (!is_finite_f(se)) { *scale = se; *zp = 0; *inv = 0.0f; return false; }
    if (s.zero_scale && zero_range) {
        *scale = 0.0f;
        *inv = 0.0f;
        *zp = s.asym ? s.qmin : s.zp_sym;
        return true;
    }
    float sc = round_to_dtype(se, s.dtype);
    if (!is_finite_f(sc)) { *scale = sc; *zp = 0; *inv = 0.0f; return false; }
    if (sc == 0.0f) sc = s.min_pos;  // kernel::group_params: 0 -> smallest subnormal
    if (s.asym) {
        const float z = __fsub_rn((float)s.qmin, qround(__fdiv_rn(lo, sc), s.away));
        const int zi = __float2int_rz(z);
        *zp = max(s.qmin, min(s.qmax, zi));
    } else {
        *zp = s.zp_sym;
    }
    if (s.apply == 1) *inv = __fdiv_rn(1.0f, se);
    else if (s.apply == 2) *inv = amax > 0.0f ? __fdiv_rn(s.d, amax) : __fdiv_rn(1.0f, sc);
    else *inv = __fdiv_rn(1.0f, sc);
    *scale = sc;
    return true;
}

// quantize_value.
__device__ __forceinline__ int quant1(float x, float scale, float inv, int zp, const QSpec& s) {
    if (scale == 0.0f) return zp;
    const float v = s.apply == 3 ? __fdiv_rn(x, scale) : __fmul_rn(x, inv);
    int r = s.away ? __float2int_rz(roundf(v)) : __float2int_rn(v);
    r = max(-1024, min(1024, r));  // never changes the clamped result; avoids overflow
    return max(s.qmin, min(s.qmax, r + zp));
}

__device__ __forceinline__ void minmax_update(float v, float& mn, float& mx, u64 flat,
                                              const QSpec& s, u64* bad) {
    if (is_finite_f(v)) {
        mn = fminf(mn, v);
        mx = fmaxf(mx, v);
    } else if (!s.saturate) {
        atomicMin(bad, flat);
    }
}

__device__ __forceinline__ u32 pack4(int a, int b, int c, int d) {
    return (u32)(a & 0xff) | ((u32)(b & 0xff) << 8) | ((u32)(c & 0xff) << 16) |
           ((u32)(d & 0xff) << 24);
}

// ------------------------------------------------------------------------------------------
// Fused single pass for contiguous groups (per-token, per-channel on axis 0, per-group,
// per-tensor of one small group): statistics, scale, and codes of a group in one kernel; the
// group's first 4·8·TS elements stay in registers between the reduction and the quantization.
// A "team" of TS lanes (TS a power of two ≤ 32, within one warp) owns one group at a time.
// VEC: group length L % 8 == 0 (16-byte/8-element accesses), else scalar accesses.

#define CACHE_CHUNKS 4

template <class T, bool VEC>
__device__ __forceinline__ void rows_team(const typename T::raw* __restrict__ x,
                                          u8* __restrict__ q, float* __restrict__ scales,
                                          int* __restrict__ zps, u64 G, u64 L, u32 TS,
                                          const QSpec& s, u64* bad, u64* bad_scale) {
    const u32 tlane = threadIdx.x & (TS - 1);
    const u64 teams_per_block = blockDim.x / TS;
    const u64 team = (u64)blockIdx.x * teams_per_block + threadIdx.x / TS;
    const u64 nteams = (u64)gridDim.x * teams_per_block;
    const u64 iters = (G + nteams - 1) / nteams;
    for (u64 it = 0; it < iters; ++it) {
        const u64 g = team + it * nteams;
        const bool active = g < G;
        const u64 base = g * L;
        const typename T::raw* xg = x + base;
        float mn = __int_as_float(0x7f800000), mx = __int_as_float(0xff800000);
        float cache[CACHE_CHUNKS][8];
        if (VEC) {
            const u64 nv = L / 8;
#pragma unroll
            for (int c = 0; c < CACHE_CHUNKS; ++c) {
                const u64 ch = tlane + (u64)c * TS;
                if (active && ch < nv) {
                    Vec8<T>::load(xg + ch * 8, cache[c]);
#pragma unroll
                    for (int j = 0; j < 8; ++j) minmax_update(cache[c][j], mn, mx, base + ch * 8 + j, s, bad);
                }
            }
            for (u64 ch = tlane + (u64)CACHE_CHUNKS * TS; active && ch < nv; ch += TS) {
                float t[8];
                Vec8<T>::load_cached(xg + ch * 8, t);
#pragma unroll
                for (int j = 0; j < 8; ++j) minmax_update(t[j], mn, mx, base + ch * 8 + j, s, bad);
            }
        } else {
            for (u64 i = tlane; active && i < L; i += TS) {
                minmax_update(T::to_f32(xg[i]), mn, mx, base + i, s, bad);
            }
        }
        for (u32 off = TS >> 1; off > 0; off >>= 1) {
            mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, off));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
        }
        float scale, inv;
        int zp;
        const bool ok = group_params(mn, mx, s, &scale, &zp, &inv);
        if (!active) continue;
        if (tlane == 0) {
            scales[g] = scale;
            zps[g] = zp;
            if (!ok) atomicMin(bad_scale, g);
        }
        u8* qg = q + base;
        if (VEC) {
            const u64 nv = L / 8;
#pragma unroll
            for (int c = 0; c < CACHE_CHUNKS; ++c) {
                const u64 ch = tlane + (u64)c * TS;
                if (ch < nv) {
                    const float* t = cache[c];
                    const u32 lo = pack4(quant1(t[0], scale, inv, zp, s), quant1(t[1], scale, inv, zp, s),
                                         quant1(t[2], scale, inv, zp, s), quant1(t[3], scale, inv, zp, s));
                    const u32 hi = pack4(quant1(t[4], scale, inv, zp, s), quant1(t[5], scale, inv, zp, s),
                                         quant1(t[6], scale, inv, zp, s), quant1(t[7], scale, inv, zp, s));
                    __stcs(reinterpret_cast<uint2*>(qg + ch * 8), make_uint2(lo, hi));
                }
            }
            for (u64 ch = tlane + (u64)CACHE_CHUNKS * TS; ch < nv; ch += TS) {
                float t[8];
                Vec8<T>::load_cached(xg + ch * 8, t);
                const u32 lo = pack4(quant1(t[0], scale, inv, zp, s), quant1(t[1], scale, inv, zp, s),
                                     quant1(t[2], scale, inv, zp, s), quant1(t[3], scale, inv, zp, s));
                const u32 hi = pack4(quant1(t[4], scale, inv, zp, s), quant1(t[5], scale, inv, zp, s),
                                     quant1(t[6], scale, inv, zp, s), quant1(t[7], scale, inv, zp, s));
                __stcs(reinterpret_cast<uint2*>(qg + ch * 8), make_uint2(lo, hi));
            }
        } else {
            for (u64 i = tlane; i < L; i += TS) {
                qg[i] = (u8)(quant1(T::to_f32(xg[i]), scale, inv, zp, s) & 0xff);
            }
        }
    }
}

// One 256-thread block per group (long rows, L ≥ 2048): block-wide reduction through shared
// memory; up to 4·8·256 = 8192 elements stay in registers.
template <class T, bool VEC>
__device__ __forceinline__ void rows_block(const typename T::raw* __restrict__ x,
                                           u8* __restrict__ q, float* __restrict__ scales,
                                           int* __restrict__ zps, u64 G, u64 L, const QSpec& s,
                                           u64* bad, u64* bad_scale) {
    __shared__ float red_mn[32], red_mx[32];
    const u32 tid = threadIdx.x, nt = blockDim.x;
    for (u64 g = blockIdx.x; g < G; g += gridDim.x) {
        const u64 base = g * L;
        const typename T::raw* xg = x + base;
        float mn = __int_as_float(0x7f800000), mx = __int_as_float(0xff800000);
        float cache[CACHE_CHUNKS][8];
        const u64 nv = L / 8;
        if (VEC) {
#pragma unroll
            for (int c = 0; c < CACHE_CHUNKS; ++c) {
                const u64 ch = tid + (u64)c * nt;
                if (ch < nv) {
                    Vec8<T>::load(xg + ch * 8, cache[c]);
#pragma unroll
                    for (int j = 0; j < 8; ++j) minmax_update(cache[c][j], mn, mx, base + ch * 8 + j, s, bad);
                }
            }
            for (u64 ch = tid + (u64)CACHE_CHUNKS * nt; ch < nv; ch += nt) {
                float t[8];
                Vec8<T>::load_cached(xg + ch * 8, t);
#pragma unroll
                for (int j = 0; j < 8; ++j) minmax_update(t[j], mn, mx, base + ch * 8 + j, s, bad);
            }
        } else {
            for (u64 i = tid; i < L; i += nt) minmax_update(T::to_f32(xg[i]), mn, mx, base + i, s, bad);
        }
        for (u32 off = 16; off > 0; off >>= 1) {
            mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, off));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
        }
        if ((tid & 31) == 0) { red_mn[tid >> 5] = mn; red_mx[tid >> 5] = mx; }
        __syncthreads();
        mn = red_mn[0];
        mx = red_mx[0];
        for (u32 w = 1; w < nt / 32; ++w) { mn = fminf(mn, red_mn[w]); mx = fmaxf(mx, red_mx[w]); }
        __syncthreads();  // red_* are reused by the next group
        float scale, inv;
        int zp;
        const bool ok = group_params(mn, mx, s, &scale, &zp, &inv);
        if (tid == 0) {
            scales[g] = scale;
            zps[g] = zp;
            if (!ok) atomicMin(bad_scale, g);
        }
        u8* qg = q + base;
        if (VEC) {
#pragma unroll
            for (int c = 0; c < CACHE_CHUNKS; ++c) {
                const u64 ch = tid + (u64)c * nt;
                if (ch < nv) {
                    const float* t = cache[c];
                    const u32 lo = pack4(quant1(t[0], scale, inv, zp, s), quant1(t[1], scale, inv, zp, s),
                                         quant1(t[2], scale, inv, zp, s), quant1(t[3], scale, inv, zp, s));
                    const u32 hi = pack4(quant1(t[4], scale, inv, zp, s), quant1(t[5], scale, inv, zp, s),
                                         quant1(t[6], scale, inv, zp, s), quant1(t[7], scale, inv, zp, s));
                    __stcs(reinterpret_cast<uint2*>(qg + ch * 8), make_uint2(lo, hi));
                }
            }
            for (u64 ch = tid + (u64)CACHE_CHUNKS * nt; ch < nv; ch += nt) {
                float t[8];
                Vec8<T>::load_cached(xg + ch * 8, t);
                const u32 lo = pack4(quant1(t[0], scale, inv, zp, s), quant1(t[1], scale, inv, zp, s),
                                     quant1(t[2], scale, inv, zp, s), quant1(t[3], scale, inv, zp, s));
                const u32 hi = pack4(quant1(t[4], scale, inv, zp, s), quant1(t[5], scale, inv, zp, s),
                                     quant1(t[6], scale, inv, zp, s), quant1(t[7], scale, inv, zp, s));
                __stcs(reinterpret_cast<uint2*>(qg + ch * 8), make_uint2(lo, hi));
            }
        } else {
            for (u64 i = tid; i < L; i += nt) qg[i] = (u8)(quant1(T::to_f32(xg[i]), scale, inv, zp, s) & 0xff);
        }
    }
}

// ------------------------------------------------------------------------------------------
// Two-pass path for groups that are not contiguous or too large for one block (per-tensor,
// per-channel on an inner axis): (1) min/max per group with order-preserving integer atomics,
// (2) one thread per group forms the parameters, (3) an element-wise pass writes the codes.

__device__ __forceinline__ u32 f2ord(float f) {
    const u32 u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float ord2f(u32 u) {
    return __uint_as_float((u & 0x80000000u) ? (u & 0x7fffffffu) : ~u);
}

// Group of element i in an (outer, channels, inner) layout.
__device__ __forceinline__ u64 group_of(u64 i, u64 inner, u64 channels) {
    return (i / inner) % channels;
}

// Stats of a whole tensor (one group): grid-stride, block reduction, one atomic pair per block.
template <class T>
__device__ __forceinline__ void stats_all(const typename T::raw* __restrict__ x, u64 n,
                                          u32* __restrict__ ord, const QSpec& s, u64* bad) {
    __shared__ float red_mn[32], red_mx[32];
    float mn = __int_as_float(0x7f800000), mx = __int_as_float(0xff800000);
    const u64 nv = n / 8;
    for (u64 v = global_thread(); v < nv; v += global_threads()) {
        float t[8];
        Vec8<T>::load(x + v * 8, t);
#pragma unroll
        for (int j = 0; j < 8; ++j) minmax_update(t[j], mn, mx, v * 8 + j, s, bad);
    }
    for (u64 i = nv * 8 + global_thread(); i < n; i += global_threads()) {
        minmax_update(T::to_f32(x[i]), mn, mx, i, s, bad);
    }
    for (u32 off = 16; off > 0; off >>= 1) {
        mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, off));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    }
    if ((threadIdx.x & 31) == 0) { red_mn[threadIdx.x >> 5] = mn; red_mx[threadIdx.x >> 5] = mx; }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (u32 w = 1; w < blockDim.x / 32; ++w) { mn = fminf(mn, red_mn[w]); mx = fmaxf(mx, red_mx[w]); }
        mn = fminf(mn, red_mn[0]);
        mx = fmaxf(mx, red_mx[0]);
        if (mn <= mx) {
            atomicMin(ord, f2ord(mn));
            atomicMax(ord + 1, f2ord(mx));
        }
    }
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

// Element-wise codes from per-group parameters; 8 elements per step when inner % 8 == 0.
template <class T>
__device__ __forceinline__ void quant_apply(const typename T::raw* __restrict__ x, u64 n,
                                            u64 inner, u64 channels,
                                            const float* __restrict__ scales,
                                            const int* __restrict__ zps,
                                            const float* __restrict__ invs, const QSpec& s,
                                            u8* __restrict__ q) {
    if ((inner & 7) == 0) {
        const u64 nv = n / 8;
        for (u64 v = global_thread(); v < nv; v += global_threads()) {
            const u64 g = group_of(v * 8, inner, channels);
            const float sc = __ldg(scales + g), inv = __ldg(invs + g);
            const int zp = __ldg(zps + g);
            float t[8];
            Vec8<T>::load(x + v * 8, t);
            const u32 lo = pack4(quant1(t[0], sc, inv, zp, s), quant1(t[1], sc, inv, zp, s),
                                 quant1(t[2], sc, inv, zp, s), quant1(t[3], sc, inv, zp, s));
            const u32 hi = pack4(quant1(t[4], sc, inv, zp, s), quant1(t[5], sc, inv, zp, s),
                                 quant1(t[6], sc, inv, zp, s), quant1(t[7], sc, inv, zp, s));
            __stcs(reinterpret_cast<uint2*>(q + v * 8), make_uint2(lo, hi));
        }
    } else {
        for (u64 i = global_thread(); i < n; i += global_threads()) {
            const u64 g = group_of(i, inner, channels);
            q[i] = (u8)(quant1(T::to_f32(x[i]), __ldg(scales + g), __ldg(invs + g), __ldg(zps + g), s) & 0xff);
        }
    }
}

// Dequantize: y = ((q - zp) as f32) * scale, rounded once to the output type.
template <class O>
__device__ __forceinline__ void dequant_body(const u8* __restrict__ q, int is_signed, u64 n,
                                             u64 inner, u64 channels,
                                             const float* __restrict__ scales,
                                             const int* __restrict__ zps,
                                             typename O::raw* __restrict__ y) {
    if ((inner & 7) == 0) {
        const u64 nv = n / 8;
        for (u64 v = global_thread(); v < nv; v += global_threads()) {
            const u64 g = group_of(v * 8, inner, channels);
            const float sc = __ldg(scales + g);
            const int zp = __ldg(zps + g);
            const uint2 c = __ldcs(reinterpret_cast<const uint2*>(q + v * 8));
            float t[8];
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                const u32 w = j < 4 ? c.x : c.y;
                const u32 b = (w >> (8 * (j & 3))) & 0xffu;
                const int code = is_signed ? (int)(signed char)b : (int)b;
                t[j] = __fmul_rn(__int2float_rn(code - zp), sc);
            }
            Vec8<O>::store(y + v * 8, t);
        }
    } else {
        for (u64 i = global_thread(); i < n; i += global_threads()) {
            const u64 g = group_of(i, inner, channels);
            const int code = is_signed ? (int)(signed char)q[i] : (int)q[i];
            y[i] = O::from_f32(__fmul_rn(__int2float_rn(code - __ldg(zps + g)), __ldg(scales + g)));
        }
    }
}

#define EAI_QUANT_KERNELS(SUF, T)                                                                \
    extern "C" __global__ void quant_rows_team_##SUF(const T::raw* __restrict__ x, u8* q,         \
                                                     float* scales, int* zps, u64 G, u64 L,      \
                                                     u32 TS, QSpec s, u64* bad, u64* bad_scale) { \
        if ((L & 7) == 0) rows_team<T, true>(x, q, scales, zps, G, L, TS, s, bad, bad_scale);    \
        else rows_team<T, false>(x, q, scales, zps, G, L, TS, s, bad, bad_scale);                \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        quant_rows_block_##SUF(const T::raw* __restrict__ x, u8* q, float* scales, int* zps,     \
                               u64 G, u64 L, QSpec s, u64* bad, u64* bad_scale) {                \
        if ((L & 7) == 0) rows_block<T, true>(x, q, scales, zps, G, L, s, bad, bad_scale);       \
        else rows_block<T, false>(x, q, scales, zps, G, L, s, bad, bad_scale);                   \
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
    extern "C" __global__ void quant_apply_##SUF(const T::raw* __restrict__ x, u64 n, u64 inner, \
                                                 u64 channels, const float* scales,              \
                                                 const int* zps, const float* invs, QSpec s,     \
                                                 u8* q) {                                        \
        quant_apply<T>(x, n, inner, channels, scales, zps, invs, s, q);                          \
    }                                                                                            \
    extern "C" __global__ void dequant_##SUF(const u8* __restrict__ q, int is_signed, u64 n,     \
                                             u64 inner, u64 channels, const float* scales,       \
                                             const int* zps, T::raw* y) {                        \
        dequant_body<T>(q, is_signed, n, inner, channels, scales, zps, y);                       \
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
    }
}
