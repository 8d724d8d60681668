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

__device__ __forceinline__ bool finite4(const float v[4]) {
    return is_finite_f(v[0]) & is_finite_f(v[1]) & is_finite_f(v[2]) & is_finite_f(v[3]);
}

// Statistics of 4 values: all finite (the common case) → min/max trees; otherwise the exact
// per-element rule (non-finite values skipped, first one recorded under Reject).
__device__ __forceinline__ void stats4(const float v[4], float& mn, float& mx, u64 flat,
                                       const QSpec& s, u64* bad) {
    if (finite4(v)) {
        mn = fminf(mn, fminf(fminf(v[0], v[1]), fminf(v[2], v[3])));
        mx = fmaxf(mx, fmaxf(fmaxf(v[0], v[1]), fmaxf(v[2], v[3])));
    } else {
#pragma unroll
        for (int j = 0; j < 4; ++j) minmax_update(v[j], mn, mx, flat + j, s, bad);
    }
}

__device__ __forceinline__ u32 pack4(int a, int b, int c, int d) {
    return (u32)(a & 0xff) | ((u32)(b & 0xff) << 8) | ((u32)(c & 0xff) << 16) |
           ((u32)(d & 0xff) << 24);
}

// Fast path of quantize_value for finite x when the multiplier is finite and x enters code
// space by multiplication (ties-away is derived from the ties-to-even result): v = x·inv is one f32 multiply,
// rounded to an integer by the magic-number addition (exact RNE for |v| ≤ 2²²; the clamp to
// ±2²² never changes a code since every code is within 255 of the zero point), then clamped
// in integers. Bit-identical to quant1 on these inputs, at full-rate ALU throughput.
struct QFast {
    float inv;
    int lo, hi, zp;  // clamp bounds relative to the zero point
    bool on;
    bool away;       // ties away from zero instead of to even
};
__device__ __forceinline__ QFast make_fast(float scale, float inv, int zp, const QSpec& s) {
    QFast f;
    f.inv = inv;
    f.zp = zp;
    f.lo = s.qmin - zp;
    f.hi = s.qmax - zp;
    f.on = s.apply != 3 && scale != 0.0f && is_finite_f(inv);
    f.away = s.away != 0;
    return f;
}
__device__ __forceinline__ int qfast(float x, const QFast& f) {
    float v = __fmul_rn(x, f.inv);
    v = fminf(fmaxf(v, -4194304.0f), 4194304.0f);
    const float t = __fadd_rn(v, 12582912.0f);
    int r = __float_as_int(t) - 0x4B400000;
    if (f.away) {
        // RNE and ties-away differ only on exact halves rounded toward zero: d = v - rne(v) is
        // exact, and ±0.5 marks a tie.
        const float d = __fsub_rn(v, __fsub_rn(t, 12582912.0f));
        r += (int)((d == 0.5f) & (v > 0.0f)) - (int)((d == -0.5f) & (v < 0.0f));
    }
    return min(max(r, f.lo), f.hi) + f.zp;
}

__device__ __forceinline__ u32 quant4(const float v[4], const QFast& f, float scale, float inv,
                                      int zp, const QSpec& s) {
    if (f.on && finite4(v)) {
        return pack4(qfast(v[0], f), qfast(v[1], f), qfast(v[2], f), qfast(v[3], f));
    }
    return pack4(quant1(v[0], scale, inv, zp, s), quant1(v[1], scale, inv, zp, s),
                 quant1(v[2], scale, inv, zp, s), quant1(v[3], scale, inv, zp, s));
}

// 16-byte input vectors: 4 f32 or 8 f16/bf16 elements; W codes stored as one 4- or 8-byte word.
template <class T> struct Wide;
template <> struct Wide<F32> {
    enum { N = 4 };
    static __device__ __forceinline__ void load(const float* p, float* v) { Vec4<F32>::load(p, v); }
    static __device__ __forceinline__ void load_cached(const float* p, float* v) { Vec4<F32>::load_cached(p, v); }
};
template <class H> struct WideHalf {
    enum { N = 8 };
    static __device__ __forceinline__ void load(const u16* p, float* v) { Vec8<H>::load(p, v); }
    static __device__ __forceinline__ void load_cached(const u16* p, float* v) { Vec8<H>::load_cached(p, v); }
};
template <> struct Wide<F16> : WideHalf<F16> {};
template <> struct Wide<BF16> : WideHalf<BF16> {};

template <int N>
__device__ __forceinline__ void statsN(const float* v, float& mn, float& mx, u64 flat,
                                       const QSpec& s, u64* bad) {
#pragma unroll
    for (int j = 0; j < N; j += 4) stats4(v + j, mn, mx, flat + j, s, bad);
}
template <int N>
__device__ __forceinline__ void store_codesN(u8* p, const float* v, const QFast& f, float scale,
                                             float inv, int zp, const QSpec& s) {
    if (N == 4) {
        __stcs(reinterpret_cast<u32*>(p), quant4(v, f, scale, inv, zp, s));
    } else {
        const u32 a = quant4(v, f, scale, inv, zp, s);
        const u32 b = quant4(v + 4, f, scale, inv, zp, s);
        __stcs(reinterpret_cast<uint2*>(p), make_uint2(a, b));
    }
}

// ------------------------------------------------------------------------------------------
// Fused single pass for contiguous groups (per-token, per-channel on axis 0, per-group, small
// per-tensor): statistics, scale and codes of a group in one kernel; a lane's first vectors
// stay in registers between the reduction and the quantization. A "team" of TS lanes (TS a
// power of two ≤ 32, within one warp) owns one group at a time and reads consecutive 16-byte
// vectors (coalesced). VEC: group length L % W == 0 (W = 4 for f32, 8 for 16-bit), else
// scalar accesses.

#define TEAM_REGS 32   // cached floats per lane in the team kernel
#define BLOCK_REGS 32  // cached floats per thread in the block kernel

__device__ __forceinline__ u32 team_mask(u32 TS) {
    if (TS >= 32) return 0xffffffffu;
    const u32 lane = threadIdx.x & 31u;
    return ((1u << TS) - 1u) << (lane & ~(TS - 1u));
}

template <class T, bool VEC>
__device__ __forceinline__ void rows_team(const typename T::raw* __restrict__ x,
                                          u8* __restrict__ q, float* __restrict__ scales,
                                          int* __restrict__ zps, u64 G, u64 L, u32 TS,
                                          const QSpec& s, u64* bad, u64* bad_scale) {
    const int W = Wide<T>::N;
    const int CQ = TEAM_REGS / W;
    const u32 tlane = threadIdx.x & (TS - 1);
    const u32 mask = team_mask(TS);
    const u64 teams_per_block = blockDim.x / TS;
    const u64 team = (u64)blockIdx.x * teams_per_block + threadIdx.x / TS;
    const u64 nteams = (u64)gridDim.x * teams_per_block;
    const u64 nv = L / W;
    float c[CQ][W];
    for (u64 g = team; g < G; g += nteams) {  // team-uniform loop
        const u64 base = g * L;
        const typename T::raw* xg = x + base;
        float mn = __int_as_float(0x7f800000), mx = __int_as_float(0xff800000);
        if (VEC) {
#pragma unroll
            for (int k = 0; k < CQ; ++k) {
                const u64 vi = tlane + (u64)k * TS;
                if (vi < nv) Wide<T>::load(xg + vi * W, c[k]);
            }
#pragma unroll
            for (int k = 0; k < CQ; ++k) {
                const u64 vi = tlane + (u64)k * TS;
                if (vi < nv) statsN<W>(c[k], mn, mx, base + vi * W, s, bad);
            }
            for (u64 vi = tlane + (u64)CQ * TS; vi < nv; vi += TS) {
                float t[W];
                Wide<T>::load_cached(xg + vi * W, t);
                statsN<W>(t, mn, mx, base + vi * W, s, bad);
            }
        } else {
            for (u64 i = tlane; i < L; i += TS) minmax_update(T::to_f32(xg[i]), mn, mx, base + i, s, bad);
        }
        for (u32 off = TS >> 1; off > 0; off >>= 1) {
            mn = fminf(mn, __shfl_xor_sync(mask, mn, off));
            mx = fmaxf(mx, __shfl_xor_sync(mask, mx, off));
        }
        float scale, inv;
        int zp;
        const bool ok = group_params(mn, mx, s, &scale, &zp, &inv);
        if (tlane == 0) {
            scales[g] = scale;
            zps[g] = zp;
            if (!ok) atomicMin(bad_scale, g);
        }
        const QFast f = make_fast(scale, inv, zp, s);
        u8* qg = q + base;
        if (VEC) {
#pragma unroll
            for (int k = 0; k < CQ; ++k) {
                const u64 vi = tlane + (u64)k * TS;
                if (vi < nv) store_codesN<W>(qg + vi * W, c[k], f, scale, inv, zp, s);
            }
            for (u64 vi = tlane + (u64)CQ * TS; vi < nv; vi += TS) {
                float t[W];
                Wide<T>::load_cached(xg + vi * W, t);
                store_codesN<W>(qg + vi * W, t, f, scale, inv, zp, s);
            }
        } else {
            for (u64 i = tlane; i < L; i += TS) {
                qg[i] = (u8)(quant1(T::to_f32(xg[i]), scale, inv, zp, s) & 0xff);
            }
        }
    }
}

// One 128-thread block per group (rows of ≥ 1024 elements): block-wide reduction through
// shared memory; the first BLOCK_REGS·128 elements of the row (4096) stay in registers.
template <class T>
__device__ __forceinline__ void load_row_head(const typename T::raw* __restrict__ xg, u64 nv,
                                              u32 tid, u32 nt, float (*c)[Wide<T>::N]) {
    const int W = Wide<T>::N;
    const int CQ = BLOCK_REGS / W;
#pragma unroll
    for (int k = 0; k < CQ; ++k) {
        const u64 vi = tid + (u64)k * nt;
        if (vi < nv) Wide<T>::load(xg + vi * W, c[k]);
    }
}

template <class T, bool VEC>
__device__ __forceinline__ void rows_block(const typename T::raw* __restrict__ x,
                                           u8* __restrict__ q, float* __restrict__ scales,
                                           int* __restrict__ zps, u64 G, u64 L, const QSpec& s,
                                           u64* bad, u64* bad_scale) {
    const int W = Wide<T>::N;
    const int CQ = BLOCK_REGS / W;
    __shared__ float red_mn[32], red_mx[32];
    const u32 tid = threadIdx.x, nt = blockDim.x;
    const u64 nv = L / W;
    float c[CQ][W];
    for (u64 g = blockIdx.x; g < G; g += gridDim.x) {
        const u64 base = g * L;
        const typename T::raw* xg = x + base;
        if (VEC) load_row_head<T>(xg, nv, tid, nt, c);
        float mn = __int_as_float(0x7f800000), mx = __int_as_float(0xff800000);
        if (VEC) {
#pragma unroll
            for (int k = 0; k < CQ; ++k) {
                const u64 vi = tid + (u64)k * nt;
                if (vi < nv) statsN<W>(c[k], mn, mx, base + vi * W, s, bad);
            }
            for (u64 vi = tid + (u64)CQ * nt; vi < nv; vi += nt) {
                float t[W];
                Wide<T>::load_cached(xg + vi * W, t);
                statsN<W>(t, mn, mx, base + vi * W, s, bad);
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
        const QFast f = make_fast(scale, inv, zp, s);
        u8* qg = q + base;
        if (VEC) {
#pragma unroll
            for (int k = 0; k < CQ; ++k) {
                const u64 vi = tid + (u64)k * nt;
                if (vi < nv) store_codesN<W>(qg + vi * W, c[k], f, scale, inv, zp, s);
            }
            for (u64 vi = tid + (u64)CQ * nt; vi < nv; vi += nt) {
                float t[W];
                Wide<T>::load_cached(xg + vi * W, t);
                store_codesN<W>(qg + vi * W, t, f, scale, inv, zp, s);
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

// Group of element i: (i / inner) % channels, with division by invariant integers
// (multiply-high) when the element count fits in 32 bits.
struct GroupIndex {
    u64 inner, channels;
    u32 m1, s1, m2, s2;  // magic multipliers / shifts for inner and channels (0: use `/`)
    int fast;            // 1: n < 2^32 and the magics are valid
    int modulo;          // 0: (i / inner) < channels always (no modulo needed)
};
__device__ __forceinline__ u32 fdiv(u32 n, u32 m, u32 sh) {
    return (u32)(((u64)__umulhi(m, n) + n) >> sh);
}
__device__ __forceinline__ u64 group_of(u64 i, const GroupIndex& gi) {
    if (gi.channels == 1) return 0;
    if (gi.fast) {
        const u32 t = fdiv((u32)i, gi.m1, gi.s1);
        if (!gi.modulo) return t;
        return t - fdiv(t, gi.m2, gi.s2) * (u32)gi.channels;
    }
    const u64 t = i / gi.inner;
    return gi.modulo ? t % gi.channels : t;
}

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
#pragma unroll
                        for (int j = 0; j < W; ++j) minmax_update(f[j], mn, mx, base + (u64)v * W + j, s, bad);
                    }
                }
                float dummy = 0.0f;
                team_minmax(mn, mx, dummy, TS, red_mn, red_mx, red_nan);
            }
            if (active) {
                float scale, inv;
                int zp;
                const bool ok = group_params(mn, mx, s, &scale, &zp, &inv);
                if (tl == 0) {
                    scales[g] = scale;
                    zps[g] = zp;
                    if (!ok) atomicMin(bad_scale, g);
                }
                const QFast fq = make_fast(scale, inv, zp, s);
                u8* qg = q + base;
                if (clean && fq.on) {
                    QLean fl;
                    fl.inv = inv;
                    fl.lo = (float)fq.lo;
                    fl.hi = (float)fq.hi;
                    fl.zp = (u32)zp;
                    fl.away = fq.away;
                    if (fl.away) {
#pragma unroll 2
                        for (u32 v = tl; v < a.LV; v += TS) {
                            float f[W];
                            Unpack<T>::run(sg[v], f);
                            store_codes_lean<W, true>(qg + (u64)v * W, f, fl);
                        }
                    } else {
#pragma unroll 2
                        for (u32 v = tl; v < a.LV; v += TS) {
                            float f[W];
                            Unpack<T>::run(sg[v], f);
                            store_codes_lean<W, false>(qg + (u64)v * W, f, fl);
                        }
                    }
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
    for (u32 off = 16; off > 0; off >>= 1) {
        mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, off));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    }
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

// Column statistics for per-channel groups on an inner axis, (outer, channels, inner) with
// inner == 1 and channels % W == 0 (one group per element of a 16-byte column vector) or
// inner % W == 0 (one group per vector): a thread owns one 16-byte column vector and walks its
// blockIdx.y slice of the outer index with 4 independent loads in flight; warps read whole
// 512-byte row segments (coalesced). One atomic pair per group and thread at the end.
template <class T>
__device__ __forceinline__ void stats_cols(const typename T::raw* __restrict__ x, u64 outer,
                                           u64 channels, u64 inner, u32* __restrict__ ord,
                                           const QSpec& s, u64* bad) {
    const int W = Wide<T>::N;
    const int U = 4;
    const u64 row = channels * inner;
    const u64 nvec = row / W;
    const u64 p = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= nvec) return;
    const u64 per = (outer + gridDim.y - 1) / gridDim.y;
    const u64 o0 = (u64)blockIdx.y * per;
    const u64 o1 = min(outer, o0 + per);
    float mn[W], mx[W];
#pragma unroll
    for (int j = 0; j < W; ++j) { mn[j] = __int_as_float(0x7f800000); mx[j] = __int_as_float(0xff800000); }
    const typename T::raw* col = x + p * W;
    u64 o = o0;
    for (; o + U <= o1; o += U) {
        float v[U][W];
#pragma unroll
        for (int u = 0; u < U; ++u) Wide<T>::load(col + (o + u) * row, v[u]);
#pragma unroll
        for (int u = 0; u < U; ++u) {
#pragma unroll
            for (int j = 0; j < W; ++j) {
                const float e = v[u][j];
                if (is_finite_f(e)) { mn[j] = fminf(mn[j], e); mx[j] = fmaxf(mx[j], e); }
                else if (!s.saturate) atomicMin(bad, (o + u) * row + p * W + j);
            }
        }
    }
    for (; o < o1; ++o) {
        float v[W];
        Wide<T>::load(col + o * row, v);
#pragma unroll
        for (int j = 0; j < W; ++j) {
            const float e = v[j];
            if (is_finite_f(e)) { mn[j] = fminf(mn[j], e); mx[j] = fmaxf(mx[j], e); }
            else if (!s.saturate) atomicMin(bad, o * row + p * W + j);
        }
    }
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
#pragma unroll
        for (int j = 0; j < W; j += 4) {
            const float4 a4 = __ldg(reinterpret_cast<const float4*>(scales + g + j));
            const float4 b4 = __ldg(reinterpret_cast<const float4*>(invs + g + j));
            const int4 c4 = __ldg(reinterpret_cast<const int4*>(zps + g + j));
            scv[j] = a4.x; scv[j + 1] = a4.y; scv[j + 2] = a4.z; scv[j + 3] = a4.w;
            invv[j] = b4.x; invv[j + 1] = b4.y; invv[j + 2] = b4.z; invv[j + 3] = b4.w;
            zpv[j] = c4.x; zpv[j + 1] = c4.y; zpv[j + 2] = c4.z; zpv[j + 3] = c4.w;
        }
        int c[W];
#pragma unroll
        for (int j = 0; j < W; ++j) {
            const float sc = scv[j], inv = invv[j];
            const int zp = zpv[j];
            const QFast f = make_fast(sc, inv, zp, s);
            c[j] = (f.on && is_finite_f(v[j])) ? qfast(v[j], f) : quant1(v[j], sc, inv, zp, s);
        }
        if (W == 4) {
            __stcs(reinterpret_cast<u32*>(q + e), pack4(c[0], c[1], c[2], c[3]));
        } else {
            __stcs(reinterpret_cast<uint2*>(q + e),
                   make_uint2(pack4(c[0], c[1], c[2], c[3]), pack4(c[4 % W], c[5 % W], c[6 % W], c[7 % W])));
        }
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

template <class O>
__device__ __forceinline__ void dequant_body(const u8* __restrict__ q, int is_signed, u64 n,
                                             GroupIndex gi, const float* __restrict__ scales,
                                             const int* __restrict__ zps,
                                             typename O::raw* __restrict__ y) {
    const int W = DeqOut<O>::W;
    if (gi.inner % W == 0) {
        const u64 nv = n / W, stride = global_threads();
        u64 vi = global_thread();
        for (; vi + 3 * stride < nv; vi += 4 * stride) {
#pragma unroll
            for (int u = 0; u < 4; ++u) dequant_vec<O>(q, is_signed, (vi + u * stride) * W, gi, scales, zps, y);
        }
        for (; vi < nv; vi += stride) dequant_vec<O>(q, is_signed, vi * W, gi, scales, zps, y);
    } else {
        for (u64 i = global_thread(); i < n; i += global_threads()) {
            const u64 g = group_of(i, gi);
            const int code = is_signed ? (int)(signed char)q[i] : (int)q[i];
            y[i] = O::from_f32(__fmul_rn(__int2float_rn(code - __ldg(zps + g)), __ldg(scales + g)));
        }
    }
}

#define EAI_QUANT_KERNELS(SUF, T)                                                                \
    extern "C" __global__ void quant_rows_team_##SUF(const T::raw* __restrict__ x, u8* q,         \
                                                     float* scales, int* zps, u64 G, u64 L,      \
                                                     u32 TS, QSpec s, u64* bad, u64* bad_scale) { \
        if (L % Wide<T>::N == 0) rows_team<T, true>(x, q, scales, zps, G, L, TS, s, bad, bad_scale); \
        else rows_team<T, false>(x, q, scales, zps, G, L, TS, s, bad, bad_scale);                \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(128)                                            \
        quant_rows_block_##SUF(const T::raw* __restrict__ x, u8* q, float* scales, int* zps,     \
                               u64 G, u64 L, QSpec s, u64* bad, u64* bad_scale) {                \
        if (L % Wide<T>::N == 0) rows_block<T, true>(x, q, scales, zps, G, L, s, bad, bad_scale); \
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
    extern "C" __global__ void quant_apply_##SUF(const T::raw* __restrict__ x, u64 n,            \
                                                 GroupIndex gi, const float* scales,             \
                                                 const int* zps, const float* invs, QSpec s,     \
                                                 u8* q) {                                        \
        quant_apply<T>(x, n, gi, scales, zps, invs, s, q);                                       \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        quant_rows_tiles2_##SUF(const T::raw* __restrict__ x, u8* q, float* scales, int* zps,    \
                                TileArgs a, QSpec s, u64* bad, u64* bad_scale) {                 \
        rows_tiles<T, 2>(x, q, scales, zps, a, s, bad, bad_scale);                               \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        quant_rows_tiles3_##SUF(const T::raw* __restrict__ x, u8* q, float* scales, int* zps,    \
                                TileArgs a, QSpec s, u64* bad, u64* bad_scale) {                 \
        rows_tiles<T, 3>(x, q, scales, zps, a, s, bad, bad_scale);                               \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        quant_rows_tiles4_##SUF(const T::raw* __restrict__ x, u8* q, float* scales, int* zps,    \
                                TileArgs a, QSpec s, u64* bad, u64* bad_scale) {                 \
        rows_tiles<T, 4>(x, q, scales, zps, a, s, bad, bad_scale);                               \
    }                                                                                            \
    extern "C" __global__ void quant_stats_cols_##SUF(const T::raw* __restrict__ x, u64 outer,   \
                                                      u64 channels, u64 inner, u32* ord,         \
                                                      QSpec s, u64* bad) {                       \
        stats_cols<T>(x, outer, channels, inner, ord, s, bad);                                   \
    }                                                                                            \
    extern "C" __global__ void quant_apply_vec_##SUF(const T::raw* __restrict__ x, u64 n,        \
                                                     GroupIndex gi, const float* scales,         \
                                                     const int* zps, const float* invs, QSpec s, \
                                                     u8* q) {                                    \
        quant_apply_vec<T>(x, n, gi, scales, zps, invs, s, q);                                   \
    }                                                                                            \
    extern "C" __global__ void dequant_##SUF(const u8* __restrict__ q, int is_signed, u64 n,     \
                                             GroupIndex gi, const float* scales, const int* zps, \
                                             T::raw* y) {                                        \
        dequant_body<T>(q, is_signed, n, gi, scales, zps, y);                                    \
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

// ------------------------------------------------------------------------------------------
// Register-resident row quantizer (session 3): the fast path for contiguous groups of at most
// 32·V 16-byte vectors. A team of TS lanes (a power of two within one warp) owns one group;
// each lane issues all V of its 16-byte loads at once (lane tl holds vectors tl + k·TS, so a
// team reads whole 32-byte sectors and a warp of TS = 32 reads 512 contiguous bytes per load),
// keeps them in registers, reduces min/max with NaN-propagating min/max (packed bf16x2/f16x2
// for 16-bit inputs: one instruction per two elements), votes across the warp whether any
// value was ±inf/NaN (then the warp redoes the exact per-element rule for its groups), forms
// the parameters, and writes the codes from the same registers. No shared memory and no block
// barrier: warps stream independently, so many groups per SM are in flight.

struct RegArgs {
    u64 G;       // groups
    u64 L;       // elements per group
    u32 LV;      // 16-byte vectors per group (≤ 32·V)
    u32 TS;      // lanes per team (power of two ≤ 32, TS·V ≥ LV)
    u32 log_ts;  // log2(TS)
    u32 unused;
};

__device__ __forceinline__ float fmin_nan(float a, float b) {
    float r;
    asm("min.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
}
__device__ __forceinline__ float fmax_nan(float a, float b) {
    float r;
    asm("max.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
}

// Lane statistics over V vectors: min and max (NaN if any element is NaN, ±inf kept), so the
// lane is "dirty" iff one of them is not finite.
template <class T> struct RegStats;
template <> struct RegStats<F32> {
    template <int V>
    static __device__ __forceinline__ void run(const uint4* r, float& mn, float& mx) {
#pragma unroll
        for (int k = 0; k < V; ++k) {
            const float a = __uint_as_float(r[k].x), b = __uint_as_float(r[k].y);
            const float c = __uint_as_float(r[k].z), d = __uint_as_float(r[k].w);
            const float lo = fmin_nan(fmin_nan(a, b), fmin_nan(c, d));
            const float hi = fmax_nan(fmax_nan(a, b), fmax_nan(c, d));
            mn = k == 0 ? lo : fmin_nan(mn, lo);
            mx = k == 0 ? hi : fmax_nan(mx, hi);
        }
    }
};
template <class H> struct HalfMinMax;
template <> struct HalfMinMax<F16> {
    static __device__ __forceinline__ u32 mn(u32 a, u32 b) {
        u32 r;
        asm("min.NaN.f16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
        return r;
    }
    static __device__ __forceinline__ u32 mx(u32 a, u32 b) {
        u32 r;
        asm("max.NaN.f16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
        return r;
    }
};
template <> struct HalfMinMax<BF16> {
    static __device__ __forceinline__ u32 mn(u32 a, u32 b) {
        u32 r;
        asm("min.NaN.bf16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
        return r;
    }
    static __device__ __forceinline__ u32 mx(u32 a, u32 b) {
        u32 r;
        asm("max.NaN.bf16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
        return r;
    }
};
template <class H> struct RegStatsHalf {
    template <int V>
    static __device__ __forceinline__ void run(const uint4* r, float& mn, float& mx) {
        typedef HalfMinMax<H> M;
        u32 lo = 0, hi = 0;
#pragma unroll
        for (int k = 0; k < V; ++k) {
            const u32 l = M::mn(M::mn(r[k].x, r[k].y), M::mn(r[k].z, r[k].w));
            const u32 h = M::mx(M::mx(r[k].x, r[k].y), M::mx(r[k].z, r[k].w));
            lo = k == 0 ? l : M::mn(lo, l);
            hi = k == 0 ? h : M::mx(hi, h);
        }
        // widening is exact and monotone; a NaN half stays NaN through fmin_nan/fmax_nan
        mn = fmin_nan(H::to_f32((u16)(lo & 0xffffu)), H::to_f32((u16)(lo >> 16)));
        mx = fmax_nan(H::to_f32((u16)(hi & 0xffffu)), H::to_f32((u16)(hi >> 16)));
    }
};
template <> struct RegStats<F16> : RegStatsHalf<F16> {};
template <> struct RegStats<BF16> : RegStatsHalf<BF16> {};

template <class T, int V, bool AWAY>
__device__ __forceinline__ void reg_store_lean(const uint4* r, u8* qg, u32 tl, const RegArgs& a,
                                               const QLean& fl) {
    const int W = Wide<T>::N;
#pragma unroll
    for (int k = 0; k < V; ++k) {
        const u32 vi = tl + (u32)k * a.TS;
        if (vi < a.LV) {
            float f[W];
            Unpack<T>::run(r[k], f);
            store_codes_lean<W, AWAY>(qg + (u64)vi * W, f, fl);
        }
    }
}

// Statistics, parameters and codes of the group of each team from the V vectors every lane
// holds in registers (warp-uniform call: votes and shuffles involve all 32 lanes).
template <class T, int V>
__device__ __forceinline__ void reg_group(const uint4* r, u64 g, bool act, u32 tl,
                                          const RegArgs& a, u8* __restrict__ q,
                                          float* __restrict__ scales, int* __restrict__ zps,
                                          const QSpec& s, u64* bad, u64* bad_scale) {
    const int W = Wide<T>::N;
    float mn, mx;
    RegStats<T>::template run<V>(r, mn, mx);
    const bool dirty = !(is_finite_f(mn) & is_finite_f(mx));
    const bool any_dirty = __any_sync(0xffffffffu, dirty);
    if (any_dirty) {
        // exact statistics: non-finite values skipped, the first recorded under Reject
        mn = __int_as_float(0x7f800000);
        mx = __int_as_float(0xff800000);
        if (act) {
#pragma unroll
            for (int k = 0; k < V; ++k) {
                const u32 vi = tl + (u32)k * a.TS;
                if (vi < a.LV) {
                    float f[W];
                    Unpack<T>::run(r[k], f);
#pragma unroll
                    for (int j = 0; j < W; ++j) minmax_update(f[j], mn, mx, g * a.L + (u64)vi * W + j, s, bad);
                }
            }
        }
    }
    for (u32 off = a.TS >> 1; off > 0; off >>= 1) {
        mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, off));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    }
    if (act) {
        float scale, inv;
        int zp;
        const bool ok = group_params(mn, mx, s, &scale, &zp, &inv);
        if (tl == 0) {
            scales[g] = scale;
            zps[g] = zp;
            if (!ok) atomicMin(bad_scale, g);
        }
        const QFast fq = make_fast(scale, inv, zp, s);
        u8* qg = q + g * a.L;
        if (!any_dirty && fq.on) {
            QLean fl;
            fl.inv = inv;
            fl.lo = (float)fq.lo;
            fl.hi = (float)fq.hi;
            fl.zp = (u32)zp;
            fl.away = fq.away;
            if (fl.away) reg_store_lean<T, V, true>(r, qg, tl, a, fl);
            else reg_store_lean<T, V, false>(r, qg, tl, a, fl);
        } else {
#pragma unroll
            for (int k = 0; k < V; ++k) {
                const u32 vi = tl + (u32)k * a.TS;
                if (vi < a.LV) {
                    float f[W];
                    Unpack<T>::run(r[k], f);
                    store_codesN<W>(qg + (u64)vi * W, f, fq, scale, inv, zp, s);
                }
            }
        }
    }
}

// A 16-byte input load: through the non-coherent path (__ldg, the default), or with the
// streaming hint (ld.global.cs: evict-first, as the traffic probes that reach 0.96–0.98 of copy
// load; session 7 variant, selected by Tuning::quant_load_streaming, GPU figures pending).
template <bool CS>
__device__ __forceinline__ uint4 ld16(const uint4* p) {
    return CS ? __ldcs(p) : __ldg(p);
}

// The V vectors lane tl of a team holds of group g (a duplicate of a valid vector where
// tl + k·TS ≥ LV: duplicates are neutral for min/max; zeros when the team has no group).
template <int V, bool CS = false>
__device__ __forceinline__ void reg_load(const uint4* __restrict__ xv, u64 g, bool act, u32 tl,
                                         u32 fallback, const RegArgs& a, uint4* r) {
    const uint4* src = xv + g * a.LV;
#pragma unroll
    for (int k = 0; k < V; ++k) {
        const u32 vi = tl + (u32)k * a.TS;
        r[k] = act ? ld16<CS>(src + (vi < a.LV ? vi : fallback)) : make_uint4(0u, 0u, 0u, 0u);
    }
}

template <class T, int V, bool CS = false>
__device__ __forceinline__ void rows_reg(const typename T::raw* __restrict__ x,
                                         u8* __restrict__ q, float* __restrict__ scales,
                                         int* __restrict__ zps, const RegArgs& a,
                                         const QSpec& s, u64* bad, u64* bad_scale) {
    const u32 lane = threadIdx.x & 31u;
    const u32 team = lane >> a.log_ts, tl = lane & (a.TS - 1u);
    const u32 tpw = 32u >> a.log_ts;
    const u64 warp = ((u64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const u64 nwarps = ((u64)gridDim.x * blockDim.x) >> 5;
    const uint4* xv = reinterpret_cast<const uint4*>(x);
    const u32 fallback = tl < a.LV ? tl : 0u;  // a valid vector of the group (duplicates are
                                               // neutral for min/max)
    for (u64 gb = warp * tpw; gb < a.G; gb += nwarps * tpw) {  // warp-uniform
        const u64 g = gb + team;
        const bool act = g < a.G;
        const uint4* src = xv + g * a.LV;
        uint4 r[V];
#pragma unroll
        for (int k = 0; k < V; ++k) {
            const u32 vi = tl + (u32)k * a.TS;
            r[k] = act ? ld16<CS>(src + (vi < a.LV ? vi : fallback)) : make_uint4(0u, 0u, 0u, 0u);
        }
        reg_group<T, V>(r, g, act, tl, a, q, scales, zps, s, bad, bad_scale);
    }
}

// ------------------------------------------------------------------------------------------
// Paired small-group quantizer (session 3, round 2) for groups of LV 16-byte vectors, LV even
// (GGML Q8_0's 32 elements from 16-bit inputs: LV = 4; from f32 it would be LV = 8). A team of 2 lanes
// owns 2 consecutive groups (lane tl holds vectors tl + 2k of the pair's 2·LV, so group j's R =
// LV/2 vectors are r[j·R .. j·R + R)), a warp 32 groups. Each lane reduces both groups over its
// half, one shuffle pair swaps halves so lane tl ends with group tl's min/max, each lane forms
// the parameters of ONE group (the in-warp kernel forms each group's parameters in every lane
// of its team), writes its scale and zero point (32 consecutive groups per warp), and three
// shuffles give it the other group's parameters. Instantiated for LV = 4 (the H200 sweep of
// round 2: faster than 2-lane teams of the in-warp kernel from bf16, level from f16, slower
// from f32 with LV = 8, which therefore keeps the in-warp kernel).
template <class T, int LV, bool CS = false>
__device__ __forceinline__ void rows_pair(const typename T::raw* __restrict__ x,
                                          u8* __restrict__ q, float* __restrict__ scales,
                                          int* __restrict__ zps, const RegArgs& a,
                                          const QSpec& s, u64* bad, u64* bad_scale) {
    const int W = Wide<T>::N;
    const int R = LV / 2;
    const u32 lane = threadIdx.x & 31u;
    const u32 tl = lane & 1u;
    const u64 warp = ((u64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const u64 nwarps = ((u64)gridDim.x * blockDim.x) >> 5;
    const uint4* xv = reinterpret_cast<const uint4*>(x);
    const u64 step = nwarps * 32u;
    for (u64 gb = warp * 32u; gb < a.G; gb += step) {  // warp-uniform
        const u64 g0 = gb + (lane & ~1u);  // the pair: groups g0 and g0 + 1
        uint4 r[LV];
#pragma unroll
        for (int k = 0; k < LV; ++k)
            r[k] = g0 + k / R < a.G ? ld16<CS>(xv + g0 * LV + tl + 2 * k) : make_uint4(0u, 0u, 0u, 0u);
        float mn[2], mx[2];
        RegStats<T>::template run<R>(r, mn[0], mx[0]);
        RegStats<T>::template run<R>(r + R, mn[1], mx[1]);
        const bool dirty = !(is_finite_f(mn[0]) & is_finite_f(mx[0]) & is_finite_f(mn[1]) & is_finite_f(mx[1]));
        const bool any_dirty = __any_sync(0xffffffffu, dirty);
        if (any_dirty) {
            // exact statistics: non-finite values skipped, the first recorded under Reject
#pragma unroll
            for (int j = 0; j < 2; ++j) {
                mn[j] = __int_as_float(0x7f800000);
                mx[j] = __int_as_float(0xff800000);
                if (g0 + j < a.G) {
#pragma unroll
                    for (int k = 0; k < R; ++k) {
                        const u32 vi = tl + 2u * (u32)k;
                        float f[W];
                        Unpack<T>::run(r[j * R + k], f);
#pragma unroll
                        for (int e = 0; e < W; ++e)
                            minmax_update(f[e], mn[j], mx[j], (g0 + j) * a.L + (u64)vi * W + e, s, bad);
                    }
                }
            }
        }
        // swap halves: lane tl keeps group tl's partial and receives its partner's
        const float smn = tl ? mn[0] : mn[1], smx = tl ? mx[0] : mx[1];
        const float gmn = fminf(tl ? mn[1] : mn[0], __shfl_xor_sync(0xffffffffu, smn, 1));
        const float gmx = fmaxf(tl ? mx[1] : mx[0], __shfl_xor_sync(0xffffffffu, smx, 1));
        float scale, inv;
        int zp;
        const bool ok = group_params(gmn, gmx, s, &scale, &zp, &inv);
        const u64 g = g0 + tl;
        if (g < a.G) {
            scales[g] = scale;
            zps[g] = zp;
            if (!ok) atomicMin(bad_scale, g);
        }
        const float o_scale = __shfl_xor_sync(0xffffffffu, scale, 1);
        const float o_inv = __shfl_xor_sync(0xffffffffu, inv, 1);
        const int o_zp = __shfl_xor_sync(0xffffffffu, zp, 1);
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            if (g0 + j < a.G) {
                const bool own = (u32)j == tl;
                const float sc = own ? scale : o_scale, iv = own ? inv : o_inv;
                const int z = own ? zp : o_zp;
                const QFast fq = make_fast(sc, iv, z, s);
                u8* qg = q + (g0 + j) * a.L;
                if (!any_dirty && fq.on) {
                    QLean fl;
                    fl.inv = iv;
                    fl.lo = (float)fq.lo;
                    fl.hi = (float)fq.hi;
                    fl.zp = (u32)z;
                    fl.away = fq.away;
                    // a.TS = 2: vector k of the group's R is tl + 2k
                    if (fl.away) reg_store_lean<T, R, true>(r + j * R, qg, tl, a, fl);
                    else reg_store_lean<T, R, false>(r + j * R, qg, tl, a, fl);
                } else {
#pragma unroll
                    for (int k = 0; k < R; ++k) {
                        const u32 vi = tl + 2u * (u32)k;
                        float f[W];
                        Unpack<T>::run(r[j * R + k], f);
                        store_codesN<W>(qg + (u64)vi * W, f, fq, sc, iv, z, s);
                    }
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Contiguous small-group quantizer (session 7, GPU figures pending) for groups of LV = TS·V
// 16-byte vectors (GGML Q8_0's 32 elements: LV = 8 from f32, 4 from f16/bf16). Lane tl of a
// team holds the V CONSECUTIVE vectors tl·V .. tl·V + V of its group (the in-warp kernel's lane
// holds vectors tl + k·TS), so its codes are V·W consecutive bytes written by ONE 8- or 16-byte
// store (two for 32 bytes) and a warp's codes are one contiguous run of 32·V·W bytes. Every
// Q8_0 kernel measured so far wrote its codes as 16-byte pieces at a 32-byte stride per store
// instruction (TS·W code bytes per team and instruction: half of each 32-byte sector), the only
// kernels that do; this variant tests whether those half-sector stores are what holds Q8_0 at
// 0.59–0.75 of copy. Loads become 16 bytes at a 16·V-byte stride per instruction, the other
// halves of each sector following in the next instruction (L1 serves them). Statistics,
// parameters and the exact slow paths are the in-warp kernel's, element for element.
template <int NWORDS>
__device__ __forceinline__ void store_words_cs(u8* p, const u32* w) {
    if (NWORDS % 4 == 0) {
#pragma unroll
        for (int i = 0; i < NWORDS; i += 4)
            __stcs(reinterpret_cast<uint4*>(p) + i / 4, make_uint4(w[i], w[i + 1], w[i + 2], w[i + 3]));
    } else if (NWORDS == 2) {
        __stcs(reinterpret_cast<uint2*>(p), make_uint2(w[0], w[1]));
    } else {
#pragma unroll
        for (int i = 0; i < NWORDS; ++i) __stcs(reinterpret_cast<u32*>(p) + i, w[i]);
    }
}

template <class T, int V, bool AWAY>
__device__ __forceinline__ void regc_store_lean(const uint4* r, u8* qv, const QLean& fl) {
    const int W = Wide<T>::N;
    const int NWORDS = V * W / 4;
    u32 w[NWORDS];
#pragma unroll
    for (int k = 0; k < V; ++k) {
        float f[W];
        Unpack<T>::run(r[k], f);
#pragma unroll
        for (int j = 0; j < W; j += 4)
            w[(k * W + j) / 4] = pack4_lean(qlean<AWAY>(f[j], fl), qlean<AWAY>(f[j + 1], fl),
                                            qlean<AWAY>(f[j + 2], fl), qlean<AWAY>(f[j + 3], fl));
    }
    store_words_cs<NWORDS>(qv, w);
}

template <class T, int V, bool CS = false>
__device__ __forceinline__ void rows_regc(const typename T::raw* __restrict__ x,
                                          u8* __restrict__ q, float* __restrict__ scales,
                                          int* __restrict__ zps, const RegArgs& a,
                                          const QSpec& s, u64* bad, u64* bad_scale) {
    const int W = Wide<T>::N;
    const u32 lane = threadIdx.x & 31u;
    const u32 team = lane >> a.log_ts, tl = lane & (a.TS - 1u);
    const u32 tpw = 32u >> a.log_ts;
    const u64 warp = ((u64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const u64 nwarps = ((u64)gridDim.x * blockDim.x) >> 5;
    const uint4* xv = reinterpret_cast<const uint4*>(x);
    for (u64 gb = warp * tpw; gb < a.G; gb += nwarps * tpw) {  // warp-uniform
        const u64 g = gb + team;
        const bool act = g < a.G;
        const uint4* src = xv + g * a.LV + (u64)tl * V;
        uint4 r[V];
#pragma unroll
        for (int k = 0; k < V; ++k) r[k] = act ? ld16<CS>(src + k) : make_uint4(0u, 0u, 0u, 0u);
        float mn, mx;
        RegStats<T>::template run<V>(r, mn, mx);
        const bool dirty = !(is_finite_f(mn) & is_finite_f(mx));
        const bool any_dirty = __any_sync(0xffffffffu, dirty);
        if (any_dirty) {
            mn = __int_as_float(0x7f800000);
            mx = __int_as_float(0xff800000);
            if (act) {
#pragma unroll
                for (int k = 0; k < V; ++k) {
                    const u32 vi = tl * V + (u32)k;
                    float f[W];
                    Unpack<T>::run(r[k], f);
#pragma unroll
                    for (int j = 0; j < W; ++j) minmax_update(f[j], mn, mx, g * a.L + (u64)vi * W + j, s, bad);
                }
            }
        }
        for (u32 off = a.TS >> 1; off > 0; off >>= 1) {
            mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, off));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
        }
        if (act) {
            float scale, inv;
            int zp;
            const bool ok = group_params(mn, mx, s, &scale, &zp, &inv);
            if (tl == 0) {
                scales[g] = scale;
                zps[g] = zp;
                if (!ok) atomicMin(bad_scale, g);
            }
            const QFast fq = make_fast(scale, inv, zp, s);
            u8* qv = q + g * a.L + (u64)tl * V * W;
            if (!any_dirty && fq.on) {
                QLean fl;
                fl.inv = inv;
                fl.lo = (float)fq.lo;
                fl.hi = (float)fq.hi;
                fl.zp = (u32)zp;
                fl.away = fq.away;
                if (fl.away) regc_store_lean<T, V, true>(r, qv, fl);
                else regc_store_lean<T, V, false>(r, qv, fl);
            } else {
#pragma unroll
                for (int k = 0; k < V; ++k) {
                    float f[W];
                    Unpack<T>::run(r[k], f);
                    store_codesN<W>(qv + (u64)k * W, f, fq, scale, inv, zp, s);
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Split register row quantizer (session 3, round 2): a team of NW whole warps owns one group
// (TS = 32·NW lanes, lane tl = 32·(warp in team) + lane holds vectors tl + k·TS, k < V), so a
// 4096-element 16-bit row needs V = 4 vectors per lane with NW = 4 instead of 16 with one warp:
// a quarter of the registers, four times the resident warps. Each warp reduces its share like
// the in-warp kernel (packed NaN-propagating min/max, warp vote, exact rule for dirty warps),
// the NW partial min/max meet in shared memory behind a named barrier of the team's NW warps
// (double-buffered slots: one barrier per group), and the loads of the team's next group are
// issued before the current one is reduced (software pipeline in registers). Requires
// blockDim.x = 256 (8 warps: 8 / NW teams per block, barrier ids 1..8 / NW). Instantiated for
// NW = 4 only: the round-2 H200 sweep had NW = 2 level with one warp and NW = 8 far slower.
template <class T, int V, int NW, bool CS = false>
__device__ __forceinline__ void rows_split(const typename T::raw* __restrict__ x,
                                           u8* __restrict__ q, float* __restrict__ scales,
                                           int* __restrict__ zps, const RegArgs& a,
                                           const QSpec& s, u64* bad, u64* bad_scale) {
    __shared__ float red[2][8][2];
    const int W = Wide<T>::N;
    const u32 lane = threadIdx.x & 31u;
    const u32 wib = threadIdx.x >> 5;  // warp in block
    const u32 tib = wib / NW;          // team in block
    const u32 w0 = tib * NW;           // first warp of the team
    const u32 tl = (wib - w0) * 32u + lane;
    const u32 tpb = (blockDim.x >> 5) / NW;
    const u64 step = (u64)gridDim.x * tpb;
    const uint4* xv = reinterpret_cast<const uint4*>(x);
    const u32 fallback = tl < a.LV ? tl : 0u;
    u64 g = (u64)blockIdx.x * tpb + tib;
    uint4 r[V];
    reg_load<V, CS>(xv, g, g < a.G, tl, fallback, a, r);
    u32 buf = 0;
    for (; g < a.G; g += step, buf ^= 1u) {  // team-uniform
        uint4 nx[V];
        reg_load<V, CS>(xv, g + step, g + step < a.G, tl, fallback, a, nx);
        float mn, mx;
        RegStats<T>::template run<V>(r, mn, mx);
        const bool dirty = !(is_finite_f(mn) & is_finite_f(mx));
        const bool any_dirty = __any_sync(0xffffffffu, dirty);
        if (any_dirty) {
            mn = __int_as_float(0x7f800000);
            mx = __int_as_float(0xff800000);
#pragma unroll
            for (int k = 0; k < V; ++k) {
                const u32 vi = tl + (u32)k * a.TS;
                if (vi < a.LV) {
                    float f[W];
                    Unpack<T>::run(r[k], f);
#pragma unroll
                    for (int j = 0; j < W; ++j) minmax_update(f[j], mn, mx, g * a.L + (u64)vi * W + j, s, bad);
                }
            }
        }
#pragma unroll
        for (u32 off = 16; off > 0; off >>= 1) {
            mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, off));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
        }
        if (lane == 0) {
            red[buf][wib][0] = mn;
            red[buf][wib][1] = mx;
        }
        asm volatile("bar.sync %0, %1;" : : "r"(tib + 1u), "r"(NW * 32) : "memory");
        mn = red[buf][w0][0];
        mx = red[buf][w0][1];
#pragma unroll
        for (int w = 1; w < NW; ++w) {
            mn = fminf(mn, red[buf][w0 + w][0]);
            mx = fmaxf(mx, red[buf][w0 + w][1]);
        }
        float scale, inv;
        int zp;
        const bool ok = group_params(mn, mx, s, &scale, &zp, &inv);
        if (tl == 0) {
            scales[g] = scale;
            zps[g] = zp;
            if (!ok) atomicMin(bad_scale, g);
        }
        const QFast fq = make_fast(scale, inv, zp, s);
        u8* qg = q + g * a.L;
        if (!any_dirty && fq.on) {  // this warp's values are all finite
            QLean fl;
            fl.inv = inv;
            fl.lo = (float)fq.lo;
            fl.hi = (float)fq.hi;
            fl.zp = (u32)zp;
            fl.away = fq.away;
            if (fl.away) reg_store_lean<T, V, true>(r, qg, tl, a, fl);
            else reg_store_lean<T, V, false>(r, qg, tl, a, fl);
        } else {
#pragma unroll
            for (int k = 0; k < V; ++k) {
                const u32 vi = tl + (u32)k * a.TS;
                if (vi < a.LV) {
                    float f[W];
                    Unpack<T>::run(r[k], f);
                    store_codesN<W>(qg + (u64)vi * W, f, fq, scale, inv, zp, s);
                }
            }
        }
#pragma unroll
        for (int k = 0; k < V; ++k) r[k] = nx[k];
    }
}

// ------------------------------------------------------------------------------------------
// Dequantize, session 3: U vectors per thread and step with every load (codes, then each
// vector's scale and zero point) issued before the first store, so U loads are in flight per
// thread (the compiler cannot hoist loads above stores that may alias them). CS: streaming
// cache hints (ld.cs / st.cs) instead of the default ones.
template <bool CS>
__device__ __forceinline__ void st16(void* p, uint4 v) {
    if (CS) __stcs(reinterpret_cast<uint4*>(p), v);
    else *reinterpret_cast<uint4*>(p) = v;
}
template <class O> struct DeqPack;
template <> struct DeqPack<F32> {
    // 4 floats → one 16-byte store
    template <bool CS>
    static __device__ __forceinline__ void store(float* p, const float* t) {
        st16<CS>(p, make_uint4(__float_as_uint(t[0]), __float_as_uint(t[1]), __float_as_uint(t[2]),
                               __float_as_uint(t[3])));
    }
};
template <class H> struct DeqPackHalf {
    // 8 values → one 16-byte store (each rounded once, to nearest even)
    template <bool CS>
    static __device__ __forceinline__ void store(u16* p, const float* t) {
        st16<CS>(p, make_uint4(H::pack2(t[0], t[1]), H::pack2(t[2], t[3]), H::pack2(t[4], t[5]),
                               H::pack2(t[6], t[7])));
    }
};
template <> struct DeqPack<F16> : DeqPackHalf<F16> {};
template <> struct DeqPack<BF16> : DeqPackHalf<BF16> {};

template <int W, bool CS>
__device__ __forceinline__ void load_codes2(const u8* p, u32* w) {
    if (W == 4) {
        w[0] = CS ? __ldcs(reinterpret_cast<const u32*>(p)) : __ldg(reinterpret_cast<const u32*>(p));
    } else {
        const uint2 a = CS ? __ldcs(reinterpret_cast<const uint2*>(p)) : __ldg(reinterpret_cast<const uint2*>(p));
        w[0] = a.x;
        w[1] = a.y;
    }
}

template <class O, int U, bool CS>
__device__ __forceinline__ void dequant_batched(const u8* __restrict__ q, int is_signed, u64 n,
                                                GroupIndex gi, const float* __restrict__ scales,
                                                const int* __restrict__ zps, int zp_uniform,
                                                int zp_value, typename O::raw* __restrict__ y) {
    const int W = DeqOut<O>::W;
    if (gi.inner % W != 0) {
        for (u64 i = global_thread(); i < n; i += global_threads()) {
            const u64 g = group_of(i, gi);
            const int code = is_signed ? (int)(signed char)q[i] : (int)q[i];
            y[i] = O::from_f32(__fmul_rn(__int2float_rn(code - __ldg(zps + g)), __ldg(scales + g)));
        }
        return;
    }
    const u32 flip = is_signed ? 0x80808080u : 0u;
    const int bias = 0x4B000000 + (is_signed ? 128 : 0);
    const u64 nv = n / W, stride = global_threads();
    u64 vi = global_thread();
    for (; vi + (U - 1) * stride < nv; vi += U * stride) {
        u32 w[U][W / 4];
        float sc[U];
        int zp[U];
#pragma unroll
        for (int u = 0; u < U; ++u) load_codes2<W, CS>(q + (vi + u * stride) * W, w[u]);
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const u64 g = group_of((vi + u * stride) * W, gi);
            sc[u] = __ldg(scales + g);
            zp[u] = zp_uniform ? zp_value : __ldg(zps + g);  // symmetric specs: one zero point
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const float off = __int_as_float(bias + zp[u]);
            float t[W];
#pragma unroll
            for (int i = 0; i < W / 4; ++i) {
                const u32 b = w[u][i] ^ flip;
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const float c = __fsub_rn(__uint_as_float(__byte_perm(b, 0x4B000000u, 0x7540 + j)), off);
                    t[4 * i + j] = __fmul_rn(c, sc[u]);
                }
            }
            DeqPack<O>::template store<CS>(y + (vi + u * stride) * W, t);
        }
    }
    for (; vi < nv; vi += stride) dequant_vec<O>(q, is_signed, vi * W, gi, scales, zps, y);
}

// Blocked dequantize (session 7 variant, GPU figures pending): the same per-vector work as
// dequant_batched, but a warp's U vectors per step are CONSECUTIVE runs of 32 (vector
// c·32U + u·32 + lane of chunk c), so each warp reads and writes one contiguous span per step
// (32·U·W codes; 2 KiB of f32 output at U = 4) instead of U spans a whole grid apart. The traffic
// probes, which use the strided pattern, reach 0.932 of the driver's copy at 1:1 and 0.865 at
// the 1:4 mix of dequantize → f32, where the dequantize kernels sit; this tests whether the
// pattern, not the arithmetic, is the remaining gap.
template <class O, int U, bool CS>
__device__ __forceinline__ void dequant_blocked(const u8* __restrict__ q, int is_signed, u64 n,
                                                GroupIndex gi, const float* __restrict__ scales,
                                                const int* __restrict__ zps, int zp_uniform,
                                                int zp_value, typename O::raw* __restrict__ y) {
    const int W = DeqOut<O>::W;
    if (gi.inner % W != 0) {
        for (u64 i = global_thread(); i < n; i += global_threads()) {
            const u64 g = group_of(i, gi);
            const int code = is_signed ? (int)(signed char)q[i] : (int)q[i];
            y[i] = O::from_f32(__fmul_rn(__int2float_rn(code - __ldg(zps + g)), __ldg(scales + g)));
        }
        return;
    }
    const u32 flip = is_signed ? 0x80808080u : 0u;
    const int bias = 0x4B000000 + (is_signed ? 128 : 0);
    const u64 nv = n / W;
    const u64 chunk = 32u * U;
    const u64 full = nv / chunk;  // whole chunks
    const u32 lane = threadIdx.x & 31u;
    const u64 warp = ((u64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const u64 nwarps = ((u64)gridDim.x * blockDim.x) >> 5;
    for (u64 c = warp; c < full; c += nwarps) {
        const u64 v0 = c * chunk + lane;
        u32 w[U][W / 4];
        float sc[U];
        int zp[U];
#pragma unroll
        for (int u = 0; u < U; ++u) load_codes2<W, CS>(q + (v0 + u * 32u) * W, w[u]);
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const u64 g = group_of((v0 + u * 32u) * W, gi);
            sc[u] = __ldg(scales + g);
            zp[u] = zp_uniform ? zp_value : __ldg(zps + g);
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const float off = __int_as_float(bias + zp[u]);
            float t[W];
#pragma unroll
            for (int i = 0; i < W / 4; ++i) {
                const u32 b = w[u][i] ^ flip;
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const float cv = __fsub_rn(__uint_as_float(__byte_perm(b, 0x4B000000u, 0x7540 + j)), off);
                    t[4 * i + j] = __fmul_rn(cv, sc[u]);
                }
            }
            DeqPack<O>::template store<CS>(y + (v0 + u * 32u) * W, t);
        }
    }
    for (u64 vi = full * chunk + global_thread(); vi < nv; vi += global_threads())
        dequant_vec<O>(q, is_signed, vi * W, gi, scales, zps, y);
}

#define EAI_QUANT_KERNELS3(SUF, T)                                                               \
    EAI_REG_KERNEL(SUF, T, 1)                                                                    \
    EAI_REG_KERNEL(SUF, T, 2)                                                                    \
    EAI_REG_KERNEL(SUF, T, 4)                                                                    \
    EAI_REG_KERNEL(SUF, T, 8)                                                                    \
    EAI_REG_KERNEL(SUF, T, 16)                                                                   \
    EAI_SPLIT_KERNEL(SUF, T, 4, 4)                                                               \
    EAI_PAIR_KERNEL(SUF, T, 4)                                                                   \
    EAI_REGC_KERNEL(SUF, T, 2)                                                                   \
    EAI_REGC_KERNEL(SUF, T, 4)                                                                   \
    EAI_CS_KERNELS(SUF, T)                                                                       \
    EAI_DEQ_KERNEL(SUF, T, 4, true, 4s)                                                          \
    EAI_DEQ_KERNEL(SUF, T, 8, true, 8s)                                                          \
    EAI_DEQ_KERNEL(SUF, T, 4, false, 4w)                                                         \
    EAI_DEQ_KERNEL(SUF, T, 8, false, 8w)                                                         \
    EAI_DEQB_KERNEL(SUF, T)
#define EAI_REG_KERNEL(SUF, T, V)                                                                \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        quant_rows_reg##V##_##SUF(const T::raw* __restrict__ x, u8* q, float* scales, int* zps,  \
                                  RegArgs a, QSpec s, u64* bad, u64* bad_scale) {                \
        rows_reg<T, V>(x, q, scales, zps, a, s, bad, bad_scale);                                 \
    }
#define EAI_PAIR_KERNEL(SUF, T, LV)                                                              \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        quant_rows_pair##LV##_##SUF(const T::raw* __restrict__ x, u8* q, float* scales,          \
                                    int* zps, RegArgs a, QSpec s, u64* bad, u64* bad_scale) {    \
        rows_pair<T, LV>(x, q, scales, zps, a, s, bad, bad_scale);                               \
    }
#define EAI_REGC_KERNEL(SUF, T, V)                                                               \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        quant_rows_regc##V##_##SUF(const T::raw* __restrict__ x, u8* q, float* scales, int* zps, \
                                   RegArgs a, QSpec s, u64* bad, u64* bad_scale) {               \
        rows_regc<T, V>(x, q, scales, zps, a, s, bad, bad_scale);                                \
    }
// Streaming-load twins (ld16<true>) of the register kernels the defaults pick for the bars'
// shapes: split4x4 (4096-element 16-bit rows), reg4 (group-128), reg2 (Q8_0 from f32), pair4
// (Q8_0 from 16-bit), regc2/regc4 (the contiguous small-group kernel).
#define EAI_CS_KERNELS(SUF, T)                                                                   \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        quant_rows_split4x4cs_##SUF(const T::raw* __restrict__ x, u8* q, float* scales,          \
                                    int* zps, RegArgs a, QSpec s, u64* bad, u64* bad_scale) {    \
        rows_split<T, 4, 4, true>(x, q, scales, zps, a, s, bad, bad_scale);                      \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        quant_rows_reg4cs_##SUF(const T::raw* __restrict__ x, u8* q, float* scales, int* zps,    \
                                RegArgs a, QSpec s, u64* bad, u64* bad_scale) {                  \
        rows_reg<T, 4, true>(x, q, scales, zps, a, s, bad, bad_scale);                           \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        quant_rows_reg2cs_##SUF(const T::raw* __restrict__ x, u8* q, float* scales, int* zps,    \
                                RegArgs a, QSpec s, u64* bad, u64* bad_scale) {                  \
        rows_reg<T, 2, true>(x, q, scales, zps, a, s, bad, bad_scale);                           \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        quant_rows_pair4cs_##SUF(const T::raw* __restrict__ x, u8* q, float* scales, int* zps,   \
                                 RegArgs a, QSpec s, u64* bad, u64* bad_scale) {                 \
        rows_pair<T, 4, true>(x, q, scales, zps, a, s, bad, bad_scale);                          \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        quant_rows_regc2cs_##SUF(const T::raw* __restrict__ x, u8* q, float* scales, int* zps,   \
                                 RegArgs a, QSpec s, u64* bad, u64* bad_scale) {                 \
        rows_regc<T, 2, true>(x, q, scales, zps, a, s, bad, bad_scale);                          \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        quant_rows_regc4cs_##SUF(const T::raw* __restrict__ x, u8* q, float* scales, int* zps,   \
                                 RegArgs a, QSpec s, u64* bad, u64* bad_scale) {                 \
        rows_regc<T, 4, true>(x, q, scales, zps, a, s, bad, bad_scale);                          \
    }
#define EAI_SPLIT_KERNEL(SUF, T, NW, V)                                                          \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        quant_rows_split##NW##x##V##_##SUF(const T::raw* __restrict__ x, u8* q, float* scales,   \
                                           int* zps, RegArgs a, QSpec s, u64* bad,               \
                                           u64* bad_scale) {                                     \
        rows_split<T, V, NW>(x, q, scales, zps, a, s, bad, bad_scale);                           \
    }
#define EAI_DEQB_KERNEL(SUF, T)                                                                  \
    extern "C" __global__ void dequant_4b_##SUF(const u8* __restrict__ q, int is_signed, u64 n,   \
                                                GroupIndex gi, const float* scales,              \
                                                const int* zps, int zp_uniform, int zp_value,    \
                                                T::raw* y) {                                     \
        dequant_blocked<T, 4, true>(q, is_signed, n, gi, scales, zps, zp_uniform, zp_value, y);  \
    }
#define EAI_DEQ_KERNEL(SUF, T, U, CS, TAG)                                                       \
    extern "C" __global__ void dequant_##TAG##_##SUF(const u8* __restrict__ q, int is_signed,    \
                                                     u64 n, GroupIndex gi, const float* scales,  \
                                                     const int* zps, int zp_uniform,             \
                                                     int zp_value, T::raw* y) {                  \
        dequant_batched<T, U, CS>(q, is_signed, n, gi, scales, zps, zp_uniform, zp_value, y);    \
    }
EAI_QUANT_KERNELS3(f32, F32)
EAI_QUANT_KERNELS3(f16, F16)
EAI_QUANT_KERNELS3(bf16, BF16)

// ------------------------------------------------------------------------------------------
// One pass over memory for a per-tensor group whose input fits in the blocks' shared memory
// (cooperative launch, so every block is resident): block b copies its slice of 16-byte vectors
// into shared memory with cp.async, reduces min/max, publishes them with one atomic pair, waits
// at a grid-wide barrier, forms the parameters from the global min/max, and writes the codes
// from its shared-memory copy. The input is read from memory once and no second kernel runs.
__device__ __forceinline__ u32 ld_acquire_u32(const u32* p) {
    u32 v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void grid_barrier(u32* count) {
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        atomicAdd(count, 1u);
        while (ld_acquire_u32(count) < gridDim.x) asm volatile("nanosleep.u32 32;");
        __threadfence();
    }
    __syncthreads();
}

template <class T>
__device__ __forceinline__ void tensor_coop(const typename T::raw* __restrict__ x, u64 nv,
                                            u64 chunk, u8* __restrict__ q,
                                            float* __restrict__ scales, int* __restrict__ zps,
                                            u32* ord, const QSpec& s, u64* bad, u64* bad_scale,
                                            u32* barrier) {
    extern __shared__ uint4 stage_mem[];
    __shared__ float red_mn[32], red_mx[32];
    __shared__ u32 glob[2];
    const int W = Wide<T>::N;
    const u32 tid = threadIdx.x, NT = blockDim.x;
    const u64 v0 = (u64)blockIdx.x * chunk;
    const u64 v1 = min(nv, v0 + chunk);
    const u32 cnt = v0 < v1 ? (u32)(v1 - v0) : 0u;
    const uint4* xv = reinterpret_cast<const uint4*>(x) + v0;
    const u32 base = smem_u32(stage_mem);
    for (u32 c = tid; c < cnt; c += NT) cp_async16(base + c * 16u, xv + c);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    float mn = __int_as_float(0x7f800000), mx = __int_as_float(0xff800000);
    for (u32 c = tid; c < cnt; c += NT) {
        float lo, hi;
        RegStats<T>::template run<1>(stage_mem + c, lo, hi);
        mn = fmin_nan(mn, lo);
        mx = fmax_nan(mx, hi);
    }
    const bool dirty = tid < cnt && !(is_finite_f(mn) & is_finite_f(mx));
    const bool bdirty = __syncthreads_or(dirty) != 0;
    if (bdirty) {
        mn = __int_as_float(0x7f800000);
        mx = __int_as_float(0xff800000);
        for (u32 c = tid; c < cnt; c += NT) {
            float f[W];
            Unpack<T>::run(stage_mem[c], f);
#pragma unroll
            for (int j = 0; j < W; ++j) minmax_update(f[j], mn, mx, (v0 + c) * W + j, s, bad);
        }
    }
    for (u32 off = 16; off > 0; off >>= 1) {
        mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, off));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    }
    if ((tid & 31) == 0) { red_mn[tid >> 5] = mn; red_mx[tid >> 5] = mx; }
    __syncthreads();
    if (tid == 0) {
        for (u32 w = 1; w < NT / 32; ++w) { mn = fminf(mn, red_mn[w]); mx = fmaxf(mx, red_mx[w]); }
        if (mn <= mx) {
            atomicMin(ord, f2ord(mn));
            atomicMax(ord + 1, f2ord(mx));
        }
    }
    grid_barrier(barrier);
    if (tid == 0) {
        glob[0] = ld_acquire_u32(ord);
        glob[1] = ld_acquire_u32(ord + 1);
    }
    __syncthreads();
    float gmn = __int_as_float(0x7f800000), gmx = __int_as_float(0xff800000);
    if (glob[0] != 0xffffffffu) { gmn = ord2f(glob[0]); gmx = ord2f(glob[1]); }
    float scale, inv;
    int zp;
    const bool ok = group_params(gmn, gmx, s, &scale, &zp, &inv);
    if (blockIdx.x == 0 && tid == 0) {
        scales[0] = scale;
        zps[0] = zp;
        if (!ok) atomicMin(bad_scale, 0ull);
    }
    const QFast fq = make_fast(scale, inv, zp, s);
    u8* qb = q + v0 * W;
    if (!bdirty && fq.on) {
        QLean fl;
        fl.inv = inv;
        fl.lo = (float)fq.lo;
        fl.hi = (float)fq.hi;
        fl.zp = (u32)zp;
        fl.away = fq.away;
        for (u32 c = tid; c < cnt; c += NT) {
            float f[W];
            Unpack<T>::run(stage_mem[c], f);
            if (fl.away) store_codes_lean<W, true>(qb + (u64)c * W, f, fl);
            else store_codes_lean<W, false>(qb + (u64)c * W, f, fl);
        }
    } else {
        for (u32 c = tid; c < cnt; c += NT) {
            float f[W];
            Unpack<T>::run(stage_mem[c], f);
            store_codesN<W>(qb + (u64)c * W, f, fq, scale, inv, zp, s);
        }
    }
}

#define EAI_COOP_KERNEL(SUF, T)                                                                  \
    extern "C" __global__ void __launch_bounds__(1024)                                           \
        quant_tensor_coop_##SUF(const T::raw* __restrict__ x, u64 nv, u64 chunk, u8* q,          \
                                float* scales, int* zps, u32* ord, QSpec s, u64* bad,            \
                                u64* bad_scale, u32* barrier) {                                  \
        tensor_coop<T>(x, nv, chunk, q, scales, zps, ord, s, bad, bad_scale, barrier);           \
    }
EAI_COOP_KERNEL(f32, F32)
EAI_COOP_KERNEL(f16, F16)
EAI_COOP_KERNEL(bf16, BF16)
