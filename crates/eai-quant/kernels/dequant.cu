// Part of the eai-quant CUDA module, the dequantize kernels. The files are concatenated in the order
// of `source()` in src/cuda/kernels.rs (quant.cu holds the spec and the shared helpers).
// ------------------------------------------------------------------------------------------
// Dequantize: helpers of the blocked kernel below. CS: streaming cache hints (ld.cs / st.cs)
// instead of the default ones.
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

// Blocked dequantize (session 7; the only dequantize kernel since session 8, when it beat the
// grid-strided batched kernel it replaced on every row, H100: per-channel → f32 0.885 → 0.908,
// the others by 0.005–0.02): each thread issues all U vectors' loads (codes, then each vector's
// scale and zero point) before the first store, so U loads are in flight per thread, and a
// warp's U vectors per step are CONSECUTIVE runs of 32 (vector c·32U + u·32 + lane of chunk c),
// so each warp reads and writes one contiguous span per step (32·U·W codes; 2 KiB of f32 output
// at U = 4). Streaming cache hints (ld.cs / st.cs).
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
