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
// minmax_update of N consecutive elements, the first at index `flat`.
template <int N>
__device__ __forceinline__ void minmax_updateN(const float* v, float& mn, float& mx, u64 flat,
                                               const QSpec& s, u64* bad) {
#pragma unroll
    for (int j = 0; j < N; ++j) minmax_update(v[j], mn, mx, flat + j, s, bad);
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
        minmax_updateN<4>(v, mn, mx, flat, s, bad);
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
// Parameters of group g from its min/max (group_params); the group's leader thread stores its
// scale and zero point and flags a scale that is not representable. Returns the fast path.
__device__ __forceinline__ QFast group_params_out(float mn, float mx, const QSpec& s, u64 g,
                                                  bool leader, float* __restrict__ scales,
                                                  int* __restrict__ zps, u64* bad_scale,
                                                  float& scale, float& inv, int& zp) {
    const bool ok = group_params(mn, mx, s, &scale, &zp, &inv);
    if (leader) {
        scales[g] = scale;
        zps[g] = zp;
        if (!ok) atomicMin(bad_scale, g);
    }
    return make_fast(scale, inv, zp, s);
}

// min/max across aligned runs of 2·from lanes of the warp (butterfly over offsets from, ..., 1;
// from a power of two ≤ 16, or 0 for none). `mask`: the lanes taking part.
__device__ __forceinline__ void shfl_minmax(float& mn, float& mx, u32 from,
                                            u32 mask = 0xffffffffu) {
    for (u32 off = from; off > 0; off >>= 1) {
        mn = fminf(mn, __shfl_xor_sync(mask, mn, off));
        mx = fmaxf(mx, __shfl_xor_sync(mask, mx, off));
    }
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

// A group of the fused kernels below, lane i0 of the `step` lanes on it. VEC: vectors
// i0 + k·step (k < CQ) are loaded into c once, for the statistics and again for the codes; the
// rest is read twice (through the cache). Scalar accesses otherwise.
template <class T, int CQ>
__device__ __forceinline__ void load_row_head(const typename T::raw* __restrict__ xg, u64 nv,
                                              u32 i0, u32 step, float (*c)[Wide<T>::N]) {
    const int W = Wide<T>::N;
#pragma unroll
    for (int k = 0; k < CQ; ++k) {
        const u64 vi = i0 + (u64)k * step;
        if (vi < nv) Wide<T>::load(xg + vi * W, c[k]);
    }
}
// The lane's min/max of the group (elements base .. base + L of the tensor).
template <class T, bool VEC, int CQ>
__device__ __forceinline__ void row_stats(const typename T::raw* __restrict__ xg, u64 base, u64 L,
                                          u64 nv, u32 i0, u32 step, float (*c)[Wide<T>::N],
                                          float& mn, float& mx, const QSpec& s, u64* bad) {
    const int W = Wide<T>::N;
    mn = __int_as_float(0x7f800000);
    mx = __int_as_float(0xff800000);
    if (VEC) {
        load_row_head<T, CQ>(xg, nv, i0, step, c);
#pragma unroll
        for (int k = 0; k < CQ; ++k) {
            const u64 vi = i0 + (u64)k * step;
            if (vi < nv) statsN<W>(c[k], mn, mx, base + vi * W, s, bad);
        }
        for (u64 vi = i0 + (u64)CQ * step; vi < nv; vi += step) {
            float t[W];
            Wide<T>::load_cached(xg + vi * W, t);
            statsN<W>(t, mn, mx, base + vi * W, s, bad);
        }
    } else {
        for (u64 i = i0; i < L; i += step) minmax_update(T::to_f32(xg[i]), mn, mx, base + i, s, bad);
    }
}

// A team of TS lanes within one warp (BLOCK = false), or one 128-thread block (BLOCK = true,
// rows of ≥ 1024 elements: block-wide reduction through shared memory) per group; the first
// TEAM_REGS / BLOCK_REGS floats of each lane's share of a row (4096 elements of a block's)
// stay in registers. TS: unused with BLOCK.
template <class T, bool VEC, bool BLOCK>
__device__ __forceinline__ void rows_fused(const typename T::raw* __restrict__ x,
                                           u8* __restrict__ q, float* __restrict__ scales,
                                           int* __restrict__ zps, u64 G, u64 L, u32 TS,
                                           const QSpec& s, u64* bad, u64* bad_scale) {
    const int W = Wide<T>::N;
    const int CQ = (BLOCK ? BLOCK_REGS : TEAM_REGS) / W;
    __shared__ float red_mn[32], red_mx[32];
    const u32 i0 = BLOCK ? threadIdx.x : threadIdx.x & (TS - 1);  // lane on the group
    const u32 step = BLOCK ? blockDim.x : TS;                       // lanes on the group
    const u32 mask = BLOCK ? 0xffffffffu : team_mask(TS);
    const u64 teams_per_block = BLOCK ? 1 : blockDim.x / TS;
    const u64 nv = L / W;
    const u64 g0 = BLOCK ? (u64)blockIdx.x : (u64)blockIdx.x * teams_per_block + threadIdx.x / TS;
    const u64 gstep = (u64)gridDim.x * teams_per_block;
    float c[CQ][W];
    for (u64 g = g0; g < G; g += gstep) {  // team-uniform loop
        const u64 base = g * L;
        const typename T::raw* xg = x + base;
        float mn, mx;
        row_stats<T, VEC, CQ>(xg, base, L, nv, i0, step, c, mn, mx, s, bad);
        if (BLOCK) {
            shfl_minmax(mn, mx, 16);
            if ((i0 & 31) == 0) { red_mn[i0 >> 5] = mn; red_mx[i0 >> 5] = mx; }
            __syncthreads();
            mn = red_mn[0];
            mx = red_mx[0];
            for (u32 w = 1; w < step / 32; ++w) { mn = fminf(mn, red_mn[w]); mx = fmaxf(mx, red_mx[w]); }
            __syncthreads();  // red_* are reused by the next group
        } else {
            shfl_minmax(mn, mx, TS >> 1, mask);
        }
        float scale, inv;
        int zp;
        const QFast f = group_params_out(mn, mx, s, g, i0 == 0, scales, zps, bad_scale, scale, inv, zp);
        u8* qg = q + base;
        if (VEC) {
#pragma unroll
            for (int k = 0; k < CQ; ++k) {
                const u64 vi = i0 + (u64)k * step;
                if (vi < nv) store_codesN<W>(qg + vi * W, c[k], f, scale, inv, zp, s);
            }
            for (u64 vi = i0 + (u64)CQ * step; vi < nv; vi += step) {
                float t[W];
                Wide<T>::load_cached(xg + vi * W, t);
                store_codesN<W>(qg + vi * W, t, f, scale, inv, zp, s);
            }
        } else {
            for (u64 i = i0; i < L; i += step) qg[i] = (u8)(quant1(T::to_f32(xg[i]), scale, inv, zp, s) & 0xff);
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
