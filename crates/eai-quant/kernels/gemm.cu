// Dequantization epilogue of the INT8 GEMM and the weight-only (W8A16) GEMV/GEMM.

// y[m, n] = f32(acc[m, n]) * (sx[m] * sw[n]) (+ bias[n]), rounded once to the output type.
// acc is the exact int32 result of cuBLASLt; N % 4 == 0 (checked on the host).
template <class O>
__device__ __forceinline__ void dequant_body(const int* __restrict__ acc,
                                             const float* __restrict__ sx,
                                             const float* __restrict__ sw,
                                             const float* __restrict__ bias,
                                             typename O::raw* __restrict__ y, u32 M, u32 N) {
    const u64 total4 = (u64)M * N / 4;
    for (u64 q = global_thread(); q < total4; q += global_threads()) {
        const u64 e = q * 4;
        const u32 m = (u32)(e / N);
        const u32 n = (u32)(e - (u64)m * N);
        const int4 a = __ldcs(reinterpret_cast<const int4*>(acc + e));
        const float4 s = __ldg(reinterpret_cast<const float4*>(sw + n));
        const float rs = __ldg(sx + m);
        float v[4];
        v[0] = __fmul_rn(__int2float_rn(a.x), __fmul_rn(rs, s.x));
        v[1] = __fmul_rn(__int2float_rn(a.y), __fmul_rn(rs, s.y));
        v[2] = __fmul_rn(__int2float_rn(a.z), __fmul_rn(rs, s.z));
        v[3] = __fmul_rn(__int2float_rn(a.w), __fmul_rn(rs, s.w));
        if (bias != 0) {
            const float4 b = __ldg(reinterpret_cast<const float4*>(bias + n));
            v[0] = __fadd_rn(v[0], b.x);
            v[1] = __fadd_rn(v[1], b.y);
            v[2] = __fadd_rn(v[2], b.z);
            v[3] = __fadd_rn(v[3], b.w);
        }
#pragma unroll
        for (int j = 0; j < 4; ++j) y[e + j] = O::from_f32(v[j]);
    }
}

// 8 outputs per thread-step (N % 8 == 0): two 16-byte accumulator loads, one 16-byte (16-bit
// output) or two 16-byte (f32) stores; the row index comes from a division magic of N.
template <class O>
__device__ __forceinline__ void dequant8_body(const int* __restrict__ acc,
                                              const float* __restrict__ sx,
                                              const float* __restrict__ sw,
                                              const float* __restrict__ bias,
                                              typename O::raw* __restrict__ y, u32 M, u32 N,
                                              u32 nm, u32 ns) {
    const u64 total8 = (u64)M * N / 8;
    const bool small = (u64)M * N < 0xffffffffull;
    for (u64 q = global_thread(); q < total8; q += global_threads()) {
        const u64 e = q * 8;
        const u32 m = small ? (u32)(((u64)__umulhi(nm, (u32)e) + (u32)e) >> ns) : (u32)(e / N);
        const u32 n = (u32)(e - (u64)m * N);
        const int4 a0 = __ldcs(reinterpret_cast<const int4*>(acc + e));
        const int4 a1 = __ldcs(reinterpret_cast<const int4*>(acc + e + 4));
        const float4 s0 = __ldg(reinterpret_cast<const float4*>(sw + n));
        const float4 s1 = __ldg(reinterpret_cast<const float4*>(sw + n + 4));
        const float rs = __ldg(sx + m);
        float v[8];
        v[0] = __fmul_rn(__int2float_rn(a0.x), __fmul_rn(rs, s0.x));
        v[1] = __fmul_rn(__int2float_rn(a0.y), __fmul_rn(rs, s0.y));
        v[2] = __fmul_rn(__int2float_rn(a0.z), __fmul_rn(rs, s0.z));
        v[3] = __fmul_rn(__int2float_rn(a0.w), __fmul_rn(rs, s0.w));
        v[4] = __fmul_rn(__int2float_rn(a1.x), __fmul_rn(rs, s1.x));
        v[5] = __fmul_rn(__int2float_rn(a1.y), __fmul_rn(rs, s1.y));
        v[6] = __fmul_rn(__int2float_rn(a1.z), __fmul_rn(rs, s1.z));
        v[7] = __fmul_rn(__int2float_rn(a1.w), __fmul_rn(rs, s1.w));
        if (bias != 0) {
            const float4 b0 = __ldg(reinterpret_cast<const float4*>(bias + n));
            const float4 b1 = __ldg(reinterpret_cast<const float4*>(bias + n + 4));
            v[0] = __fadd_rn(v[0], b0.x); v[1] = __fadd_rn(v[1], b0.y);
            v[2] = __fadd_rn(v[2], b0.z); v[3] = __fadd_rn(v[3], b0.w);
            v[4] = __fadd_rn(v[4], b1.x); v[5] = __fadd_rn(v[5], b1.y);
            v[6] = __fadd_rn(v[6], b1.z); v[7] = __fadd_rn(v[7], b1.w);
        }
        Vec8<O>::store(y + e, v);
    }
}

#define EAI_DEQUANT8(NAME, O)                                                                  \
    extern "C" __global__ void NAME(const int* __restrict__ acc, const float* __restrict__ sx,  \
                                    const float* __restrict__ sw,                               \
                                    const float* __restrict__ bias, O::raw* __restrict__ y,     \
                                    u32 M, u32 N, u32 nm, u32 ns) {                             \
        dequant8_body<O>(acc, sx, sw, bias, y, M, N, nm, ns);                                   \
    }
EAI_DEQUANT8(gemm_dequant8_f32, F32)
EAI_DEQUANT8(gemm_dequant8_f16, F16)
EAI_DEQUANT8(gemm_dequant8_bf16, BF16)

#define EAI_DEQUANT(NAME, O)                                                                   \
    extern "C" __global__ void NAME(const int* __restrict__ acc, const float* __restrict__ sx,  \
                                    const float* __restrict__ sw,                               \
                                    const float* __restrict__ bias, O::raw* __restrict__ y,     \
                                    u32 M, u32 N) {                                             \
        dequant_body<O>(acc, sx, sw, bias, y, M, N);                                            \
    }
EAI_DEQUANT(gemm_dequant_f32, F32)
EAI_DEQUANT(gemm_dequant_f16, F16)
EAI_DEQUANT(gemm_dequant_bf16, BF16)

// Weight-only INT8: y[m, n] = sw[n] * sum_k f32(w[n, k]) * x[m, k] (+ bias[n]), f32 accumulation.
// One warp per R output features, MT tokens per warp (weights are read once per MT tokens,
// activations are widened once per R rows). With K % 16 == 0 every lane streams 16-byte
// weight vectors, U·R of them in flight. Codes become floats without the (quarter-rate)
// int→float unit: byte-permute the biased code into the mantissa of 2^23 and subtract
// 2^23 + 128 (exact). Every lane accumulates its vectors in increasing k whatever R and U are,
// so all variants give the same bits.
__device__ __forceinline__ void i8x4_to_f32(u32 w, float* f) {
    const u32 t = w ^ 0x80808080u;
    f[0] = __fsub_rn(__uint_as_float(__byte_perm(t, 0x4B000000u, 0x7540)), 8388736.0f);
    f[1] = __fsub_rn(__uint_as_float(__byte_perm(t, 0x4B000000u, 0x7541)), 8388736.0f);
    f[2] = __fsub_rn(__uint_as_float(__byte_perm(t, 0x4B000000u, 0x7542)), 8388736.0f);
    f[3] = __fsub_rn(__uint_as_float(__byte_perm(t, 0x4B000000u, 0x7543)), 8388736.0f);
}

template <class T, int MT, int R, int U>
__device__ __forceinline__ void w8a16_body(const i8* __restrict__ w,
                                           const float* __restrict__ sw,
                                           const typename T::raw* __restrict__ x,
                                           const float* __restrict__ bias,
                                           typename T::raw* __restrict__ y, u32 M, u32 N,
                                           u32 K) {
    const u32 lane = threadIdx.x & 31u;
    const u32 n0 = (blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5)) * R;
    if (n0 >= N) return;
    const u32 m0 = blockIdx.y * MT;
    float acc[R][MT];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int i = 0; i < MT; ++i) acc[r][i] = 0.0f;
    if ((K & 15u) == 0) {
        for (u32 k0 = lane * 16; k0 < K; k0 += 32 * 16 * U) {
            uint4 wv[U][R];
#pragma unroll
            for (int u = 0; u < U; ++u) {
                const u32 kk = k0 + u * 512;
#pragma unroll
                for (int r = 0; r < R; ++r) {
                    if (kk < K && n0 + r < N)
                        wv[u][r] = __ldcs(reinterpret_cast<const uint4*>(w + (u64)(n0 + r) * K + kk));
                    else
                        wv[u][r] = make_uint4(0, 0, 0, 0);
                }
            }
#pragma unroll
            for (int u = 0; u < U; ++u) {
                const u32 kk = k0 + u * 512;
                if (kk < K) {
#pragma unroll
                    for (int i = 0; i < MT; ++i) {
                        if (m0 + i < M) {
                            const typename T::raw* xr = x + (u64)(m0 + i) * K + kk;
                            float xv[16];
                            Vec8<T>::load_cached(xr, xv);
                            Vec8<T>::load_cached(xr + 8, xv + 8);
#pragma unroll
                            for (int r = 0; r < R; ++r) {
                                float wf[16];
                                i8x4_to_f32(wv[u][r].x, wf);
                                i8x4_to_f32(wv[u][r].y, wf + 4);
                                i8x4_to_f32(wv[u][r].z, wf + 8);
                                i8x4_to_f32(wv[u][r].w, wf + 12);
                                float a = acc[r][i];
#pragma unroll
                                for (int j = 0; j < 16; ++j) a = fmaf(wf[j], xv[j], a);
                                acc[r][i] = a;
                            }
                        }
                    }
                }
            }
        }
    } else {
        for (u32 k = lane; k < K; k += 32) {
#pragma unroll
            for (int i = 0; i < MT; ++i) {
                if (m0 + i < M) {
                    const float xv = T::to_f32(x[(u64)(m0 + i) * K + k]);
#pragma unroll
                    for (int r = 0; r < R; ++r) {
                        if (n0 + r < N) acc[r][i] = fmaf((float)(int)w[(u64)(n0 + r) * K + k], xv, acc[r][i]);
                    }
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int i = 0; i < MT; ++i) {
            float a = acc[r][i];
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) a += __shfl_xor_sync(0xffffffffu, a, off);
            acc[r][i] = a;
        }
    }
    if (lane == 0) {
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const u32 n = n0 + r;
            if (n >= N) break;
            const float s = sw[n];
            const float b = bias != 0 ? bias[n] : 0.0f;
#pragma unroll
            for (int i = 0; i < MT; ++i) {
                if (m0 + i < M) y[(u64)(m0 + i) * N + n] = T::from_f32(__fadd_rn(__fmul_rn(acc[r][i], s), b));
            }
        }
    }
}

#define EAI_W8A16(NAME, T, MT, R, U)                                                            \
    extern "C" __global__ void __launch_bounds__(256)                                           \
        NAME(const i8* __restrict__ w, const float* __restrict__ sw,                            \
             const T::raw* __restrict__ x, const float* __restrict__ bias,                      \
             T::raw* __restrict__ y, u32 M, u32 N, u32 K) {                                      \
        w8a16_body<T, MT, R, U>(w, sw, x, bias, y, M, N, K);                                    \
    }
EAI_W8A16(w8a16_f16_m1, F16, 1, 1, 4)
EAI_W8A16(w8a16_f16_m2, F16, 2, 1, 4)
EAI_W8A16(w8a16_f16_m4, F16, 4, 1, 4)
EAI_W8A16(w8a16_f16_m8, F16, 8, 1, 4)
EAI_W8A16(w8a16_bf16_m1, BF16, 1, 1, 4)
EAI_W8A16(w8a16_bf16_m2, BF16, 2, 1, 4)
EAI_W8A16(w8a16_bf16_m4, BF16, 4, 1, 4)
EAI_W8A16(w8a16_bf16_m8, BF16, 8, 1, 4)
// decode (M = 1) variants: R rows per warp, U loads in flight per row and lane
EAI_W8A16(w8a16_f16_m1_r1u2, F16, 1, 1, 2)
EAI_W8A16(w8a16_f16_m1_r2u1, F16, 1, 2, 1)
EAI_W8A16(w8a16_f16_m1_r4u1, F16, 1, 4, 1)
EAI_W8A16(w8a16_f16_m1_r1u8, F16, 1, 1, 8)
EAI_W8A16(w8a16_f16_m1_r2u2, F16, 1, 2, 2)
EAI_W8A16(w8a16_f16_m1_r2u4, F16, 1, 2, 4)
EAI_W8A16(w8a16_f16_m1_r2u8, F16, 1, 2, 8)
EAI_W8A16(w8a16_f16_m1_r4u2, F16, 1, 4, 2)
EAI_W8A16(w8a16_f16_m1_r4u4, F16, 1, 4, 4)
EAI_W8A16(w8a16_bf16_m1_r1u2, BF16, 1, 1, 2)
EAI_W8A16(w8a16_bf16_m1_r2u1, BF16, 1, 2, 1)
EAI_W8A16(w8a16_bf16_m1_r4u1, BF16, 1, 4, 1)
EAI_W8A16(w8a16_bf16_m1_r1u8, BF16, 1, 1, 8)
EAI_W8A16(w8a16_bf16_m1_r2u2, BF16, 1, 2, 2)
EAI_W8A16(w8a16_bf16_m1_r2u4, BF16, 1, 2, 4)
EAI_W8A16(w8a16_bf16_m1_r2u8, BF16, 1, 2, 8)
EAI_W8A16(w8a16_bf16_m1_r4u2, BF16, 1, 4, 2)
EAI_W8A16(w8a16_bf16_m1_r4u4, BF16, 1, 4, 4)
