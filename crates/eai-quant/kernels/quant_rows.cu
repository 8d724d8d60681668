// Part of the eai-quant CUDA module, the register-resident row quantizers (register, contiguous, split). The files are concatenated in the order
// of `source()` in src/cuda/kernels.rs (quant.cu holds the spec and the shared helpers).
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
template <class H> struct RegStatsHalf {
    template <int V>
    static __device__ __forceinline__ void run(const uint4* r, float& mn, float& mx) {
        u32 lo = 0, hi = 0;
#pragma unroll
        for (int k = 0; k < V; ++k) {
            const u32 l = H::min2(H::min2(r[k].x, r[k].y), H::min2(r[k].z, r[k].w));
            const u32 h = H::max2(H::max2(r[k].x, r[k].y), H::max2(r[k].z, r[k].w));
            lo = k == 0 ? l : H::min2(lo, l);
            hi = k == 0 ? h : H::max2(hi, h);
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

// ------------------------------------------------------------------------------------------
// Contiguous small-group quantizer (session 7; the default for Q8_0-sized groups since session
// 8, H100: 0.880–0.978 of copy against the in-warp kernel's 0.836–0.957) for groups of LV = TS·V
// 16-byte vectors (GGML Q8_0's 32 elements: LV = 8 from f32, 4 from f16/bf16). Lane tl of a
// team holds the V CONSECUTIVE vectors tl·V .. tl·V + V of its group (the in-warp kernel's lane
// holds vectors tl + k·TS), so its codes are V·W consecutive bytes written by ONE 8- or 16-byte
// store (two for 32 bytes) and a warp's codes are one contiguous run of 32·V·W bytes. Every
// Q8_0 kernel measured so far wrote its codes as 16-byte pieces at a 32-byte stride per store
// instruction (TS·W code bytes per team and instruction: half of each 32-byte sector), the only
// kernels that do; this variant tests whether those half-sector stores are what holds Q8_0 at
// 0.59–0.75 of copy. Loads become 16 bytes at a 16·V-byte stride per instruction, the other
// halves of each sector following in the next instruction (L1 serves them). Statistics,
// parameters and the exact slow paths are the in-warp kernel's, element for element: one
// template, rows_reg<T, V, true, CS> below.
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

// ------------------------------------------------------------------------------------------
// Shared by the in-warp, contiguous and split kernels.

// Index in its group of the k-th of the V vectors lane tl holds: tl + k·TS (in-warp and split
// kernels), or tl·V + k (CONSEC: the contiguous kernel, whose every vector is valid).
template <int V, bool CONSEC>
__device__ __forceinline__ u32 reg_vi(u32 tl, int k, const RegArgs& a) {
    return CONSEC ? tl * V + (u32)k : tl + (u32)k * a.TS;
}

// Statistics of the V vectors every lane holds in registers (warp-uniform call: the vote
// involves all 32 lanes). Returns whether any lane of the warp saw ±inf/NaN; then mn/mx are
// the exact statistics (non-finite values skipped, the first recorded under Reject).
template <class T, int V, bool CONSEC>
__device__ __forceinline__ bool reg_stats(const uint4* r, u64 g, bool act, u32 tl,
                                          const RegArgs& a, const QSpec& s, u64* bad, float& mn,
                                          float& mx) {
    const int W = Wide<T>::N;
    RegStats<T>::template run<V>(r, mn, mx);
    const bool dirty = !(is_finite_f(mn) & is_finite_f(mx));
    const bool any_dirty = __any_sync(0xffffffffu, dirty);
    if (any_dirty) {
        mn = __int_as_float(0x7f800000);
        mx = __int_as_float(0xff800000);
        if (act) {
#pragma unroll
            for (int k = 0; k < V; ++k) {
                const u32 vi = reg_vi<V, CONSEC>(tl, k, a);
                if (CONSEC || vi < a.LV) {
                    float f[W];
                    Unpack<T>::run(r[k], f);
                    minmax_updateN<W>(f, mn, mx, g * a.L + (u64)vi * W, s, bad);
                }
            }
        }
    }
    return any_dirty;
}

// Parameters and codes of group g from its min/max and the V vectors the lane holds.
template <class T, int V, bool CONSEC>
__device__ __forceinline__ void reg_codes(const uint4* r, u64 g, u32 tl, const RegArgs& a,
                                          bool any_dirty, float mn, float mx, u8* __restrict__ q,
                                          float* __restrict__ scales, int* __restrict__ zps,
                                          const QSpec& s, u64* bad_scale) {
    const int W = Wide<T>::N;
    float scale, inv;
    int zp;
    const QFast fq = group_params_out(mn, mx, s, g, tl == 0, scales, zps, bad_scale, scale, inv, zp);
    u8* qg = q + g * a.L;
    u8* qv = qg + (u64)tl * V * W;  // CONSEC: the lane's codes
    if (!any_dirty && fq.on) {
        const QLean fl = make_lean(fq);
        if (CONSEC) {
            if (fl.away) regc_store_lean<T, V, true>(r, qv, fl);
            else regc_store_lean<T, V, false>(r, qv, fl);
        } else {
            if (fl.away) reg_store_lean<T, V, true>(r, qg, tl, a, fl);
            else reg_store_lean<T, V, false>(r, qg, tl, a, fl);
        }
    } else {
#pragma unroll
        for (int k = 0; k < V; ++k) {
            const u32 vi = reg_vi<V, CONSEC>(tl, k, a);
            if (CONSEC || vi < a.LV) {
                float f[W];
                Unpack<T>::run(r[k], f);
                store_codesN<W>(CONSEC ? qv + (u64)k * W : qg + (u64)vi * W, f, fq, scale, inv, zp, s);
            }
        }
    }
}

// A 16-byte input load: through the non-coherent path (__ldg, the default), or with the
// streaming hint (ld.global.cs: evict-first, as the traffic probes that reach 0.96–0.98 of copy
// load). Which kernels load which way is measured (plan::row_kernel): streaming for the split
// kernel from 16-bit inputs and for regc2 (Q8_0 from f16), the default hint elsewhere.
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

// The V vectors lane tl holds of group g in the in-warp (CONSEC = false: reg_load) or the
// contiguous layout (CONSEC = true: vectors tl·V .. tl·V + V); zeros when the team has no group.
template <int V, bool CONSEC, bool CS>
__device__ __forceinline__ void reg_load_team(const uint4* __restrict__ xv, u64 g, bool act,
                                              u32 tl, u32 fallback, const RegArgs& a, uint4* r) {
    if (CONSEC) {
        const uint4* src = xv + g * a.LV + (u64)tl * V;
#pragma unroll
        for (int k = 0; k < V; ++k) r[k] = act ? ld16<CS>(src + k) : make_uint4(0u, 0u, 0u, 0u);
    } else {
        reg_load<V, CS>(xv, g, act, tl, fallback, a, r);
    }
}

// In-warp (CONSEC = false) and contiguous (CONSEC = true, below) row quantizers: teams of TS
// lanes within a warp, one group per team and step. (Session 14 measured a variant that issued
// the warp's next loads before reducing the current groups: slower on every group-128 row, its
// 64 registers costing more occupancy than the early loads gained; removed in session 15.)
template <class T, int V, bool CONSEC = false, bool CS = false>
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
    const u64 gstep = nwarps * tpw;
    for (u64 gb = warp * tpw; gb < a.G; gb += gstep) {  // warp-uniform
        const u64 g = gb + team;
        const bool act = g < a.G;
        uint4 r[V];
        reg_load_team<V, CONSEC, CS>(xv, g, act, tl, fallback, a, r);
        float mn, mx;
        const bool any_dirty = reg_stats<T, V, CONSEC>(r, g, act, tl, a, s, bad, mn, mx);
        shfl_minmax(mn, mx, a.TS >> 1);
        if (act) reg_codes<T, V, CONSEC>(r, g, tl, a, any_dirty, mn, mx, q, scales, zps, s, bad_scale);
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
        const bool any_dirty = reg_stats<T, V, false>(r, g, true, tl, a, s, bad, mn, mx);
        shfl_minmax(mn, mx, 16);
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
        // the lean codes only where this warp's values are all finite
        reg_codes<T, V, false>(r, g, tl, a, any_dirty, mn, mx, q, scales, zps, s, bad_scale);
#pragma unroll
        for (int k = 0; k < V; ++k) r[k] = nx[k];
    }
}
