// eai-model CUDA kernels: the decoder's element-wise, normalisation, rope, attention and
// scoring kernels. The linear layers are cuBLAS (FP32/FP16/BF16) and eai-quant (INT8).
//
// Compiled at run time by NVRTC without fast math. No headers: half conversions use PTX `cvt`
// (round to nearest even), as eai-quant's kernels do. The residual stream, norms, rope,
// softmax and all accumulation are f32; `T` is the activation type fed to a GEMM.

typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char i8;

#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

__device__ __forceinline__ float f16_to_f32(u16 h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ u16 f32_to_f16(float f) {
    u16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
__device__ __forceinline__ float bf16_to_f32(u16 h) { return __uint_as_float(((u32)h) << 16); }
__device__ __forceinline__ u16 f32_to_bf16(float f) {
    u16 h;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

// An element type: conversions, and four consecutive elements loaded or stored at once
// (`p` aligned to four elements).
struct F32 {
    typedef float raw;
    static __device__ __forceinline__ float to_f32(float v) { return v; }
    static __device__ __forceinline__ float from_f32(float v) { return v; }
    static __device__ __forceinline__ float4 load4(const float* p) {
        return *reinterpret_cast<const float4*>(p);
    }
    static __device__ __forceinline__ void store4(float* p, float4 v) {
        *reinterpret_cast<float4*>(p) = v;
    }
};
template <class H>
struct Half16 {
    typedef u16 raw;
    static __device__ __forceinline__ float4 load4(const u16* p) {
        const uint2 u = *reinterpret_cast<const uint2*>(p);
        return make_float4(H::to_f32((u16)(u.x & 0xffffu)), H::to_f32((u16)(u.x >> 16)),
                           H::to_f32((u16)(u.y & 0xffffu)), H::to_f32((u16)(u.y >> 16)));
    }
    static __device__ __forceinline__ void store4(u16* p, float4 v) {
        uint2 u;
        u.x = (u32)H::from_f32(v.x) | ((u32)H::from_f32(v.y) << 16);
        u.y = (u32)H::from_f32(v.z) | ((u32)H::from_f32(v.w) << 16);
        *reinterpret_cast<uint2*>(p) = u;
    }
};
struct F16 : Half16<F16> {
    static __device__ __forceinline__ float to_f32(u16 v) { return f16_to_f32(v); }
    static __device__ __forceinline__ u16 from_f32(float v) { return f32_to_f16(v); }
};
struct BF16 : Half16<BF16> {
    static __device__ __forceinline__ float to_f32(u16 v) { return bf16_to_f32(v); }
    static __device__ __forceinline__ u16 from_f32(float v) { return f32_to_bf16(v); }
};

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Block-wide sum / max for blockDim.x a multiple of 32 and at most 1024. `red` holds 32 floats.
__device__ float block_sum(float v, float* red) {
    const u32 lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    const u32 nw = blockDim.x >> 5;
    float t = (threadIdx.x < nw) ? red[threadIdx.x] : 0.0f;
    if (warp == 0) t = warp_sum(t);
    if (threadIdx.x == 0) red[0] = t;
    __syncthreads();
    return red[0];
}
__device__ float block_max(float v, float* red) {
    const u32 lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    const u32 nw = blockDim.x >> 5;
    float t = (threadIdx.x < nw) ? red[threadIdx.x] : -INFINITY;
    if (warp == 0) t = warp_max(t);
    if (threadIdx.x == 0) red[0] = t;
    __syncthreads();
    return red[0];
}

// eai-quant's int8 spec (`QuantSpec::int8_activation_per_token`): symmetric −127..127,
// scale = max(amax / 127, FLT_EPSILON), inv = 1 / scale, q = clamp(rint(x · inv)).
__device__ __forceinline__ float q8_scale(float amax) {
    return fmaxf(amax / 127.0f, 1.1920929e-07f);
}
__device__ __forceinline__ i8 q8_code(float x, float inv) {
    float v = rintf(x * inv);
    v = fminf(fmaxf(v, -127.0f), 127.0f);
    return (i8)(int)v;
}

// ---------------------------------------------------------------------------------------------
// Embedding: x[r, :] = f32(table[ids[r], :]).
template <class T>
__device__ void embed_body(const typename T::raw* __restrict__ table, const u32* __restrict__ ids,
                           float* __restrict__ x, u32 rows, u32 h) {
    const u64 n = (u64)rows * h;
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (u64)gridDim.x * blockDim.x) {
        const u64 r = i / h, c = i % h;
        x[i] = T::to_f32(table[(u64)ids[r] * h + c]);
    }
}
#define EAI_EMBED(NAME, T)                                                                     \
    extern "C" __global__ void NAME(const T::raw* table, const u32* ids, float* x, u32 rows,  \
                                    u32 h) {                                                   \
        embed_body<T>(table, ids, x, rows, h);                                                 \
    }
EAI_EMBED(embed_f32, F32)
EAI_EMBED(embed_f16, F16)
EAI_EMBED(embed_bf16, BF16)

// ---------------------------------------------------------------------------------------------
// RMSNorm: y[r] = T(w · (x · 1/sqrt(mean(x²) + eps))); the input row is idx[r] when idx is
// non-null (gather of the scored positions). `rms_inv` is the block-per-row form (the int8 and
// decode kernels).
__device__ float rms_inv(const float* __restrict__ xr, u32 h, float eps, float* red) {
    float ss = 0.0f;
    for (u32 c = threadIdx.x; c < h; c += blockDim.x) ss += xr[c] * xr[c];
    ss = block_sum(ss, red);
    return 1.0f / sqrtf(ss / (float)h + eps);
}

// 1/sqrt(mean(x²) + eps) of a row of h, summed by one warp (lane `lane`): four columns per
// lane and step when h % 4 == 0, added in column order either way.
__device__ __forceinline__ float rms_inv_warp(const float* __restrict__ xr, u32 h, float eps,
                                              u32 lane) {
    float ss = 0.0f;
    if ((h & 3u) == 0) {
        for (u32 c = lane * 4; c < h; c += 128) {
            const float4 v = F32::load4(xr + c);
            ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        }
    } else {
        for (u32 c = lane; c < h; c += 32) ss += xr[c] * xr[c];
    }
    return 1.0f / sqrtf(warp_sum(ss) / (float)h + eps);
}

// One warp per row (blocks of 8 warps): a 576-wide row is 4.5 float4 loads per lane and one
// warp reduction, where a block per row spent its time in block-wide barriers (issue 14: 21 µs
// per 8,192 rows, 1.35 TB/s, in the session-9 HellaSwag profile).
template <class T>
__device__ void rmsnorm_body(const float* __restrict__ x, const u32* __restrict__ idx,
                             const float* __restrict__ w, typename T::raw* __restrict__ y, u32 rows,
                             u32 h, float eps) {
    const u32 r = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    const u32 lane = threadIdx.x & 31u;
    if (r >= rows) return;
    const u32 src = idx ? idx[r] : r;
    const float* xr = x + (u64)src * h;
    typename T::raw* yr = y + (u64)r * h;
    const float inv = rms_inv_warp(xr, h, eps, lane);
    if ((h & 3u) == 0) {
        for (u32 c = lane * 4; c < h; c += 128) {
            const float4 v = F32::load4(xr + c), g = F32::load4(w + c);
            T::store4(yr + c, make_float4(g.x * (v.x * inv), g.y * (v.y * inv), g.z * (v.z * inv),
                                          g.w * (v.w * inv)));
        }
    } else {
        for (u32 c = lane; c < h; c += 32) yr[c] = T::from_f32(w[c] * (xr[c] * inv));
    }
}
#define EAI_RMSNORM(NAME, T)                                                                   \
    extern "C" __global__ void NAME(const float* x, const u32* idx, const float* w, T::raw* y, \
                                    u32 rows, u32 h, float eps) {                              \
        rmsnorm_body<T>(x, idx, w, y, rows, h, eps);                                           \
    }
EAI_RMSNORM(rmsnorm_f32, F32)
EAI_RMSNORM(rmsnorm_f16, F16)
EAI_RMSNORM(rmsnorm_bf16, BF16)

// W8A8's per-token row kernels run one warp per row (blocks of 8 warps, `warp_rows_cfg`), as
// rmsnorm_body: a 576-wide row is 4.5 float4 loads per lane and warp reductions, where a block
// of 256 threads per row spent its time in block-wide barriers. Codes are written four at a
// time when the width is a multiple of 4 (then every row starts 16-byte aligned for f32 and
// int32 inputs, 4-byte aligned for the codes).
__device__ __forceinline__ void q8_store4(i8* q, float4 v, float qi) {
    *reinterpret_cast<char4*>(q) =
        make_char4(q8_code(v.x, qi), q8_code(v.y, qi), q8_code(v.z, qi), q8_code(v.w, qi));
}
__device__ __forceinline__ float abs_max4(float amax, float4 v) {
    return fmaxf(amax, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
}

// RMSNorm fused with per-token int8 quantization (W8A8): codes q[r, :], scale sx[r]; the row is
// normalized in rmsnorm_body's order (rms_inv_warp).
extern "C" __global__ void rmsnorm_q8(const float* __restrict__ x, const float* __restrict__ w,
                                      i8* __restrict__ q, float* __restrict__ sx, u32 rows, u32 h,
                                      float eps) {
    const u32 r = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    const u32 lane = threadIdx.x & 31u;
    if (r >= rows) return;
    const float* xr = x + (u64)r * h;
    i8* qr = q + (u64)r * h;
    const float inv = rms_inv_warp(xr, h, eps, lane);
    const bool v4 = (h & 3u) == 0;
    float amax = 0.0f;
    if (v4) {
        for (u32 c = lane * 4; c < h; c += 128) {
            const float4 v = F32::load4(xr + c), g = F32::load4(w + c);
            amax = abs_max4(amax, make_float4(g.x * (v.x * inv), g.y * (v.y * inv),
                                              g.z * (v.z * inv), g.w * (v.w * inv)));
        }
    } else {
        for (u32 c = lane; c < h; c += 32) amax = fmaxf(amax, fabsf(w[c] * (xr[c] * inv)));
    }
    const float s = q8_scale(warp_max(amax));
    const float qi = 1.0f / s;
    if (v4) {
        for (u32 c = lane * 4; c < h; c += 128) {
            const float4 v = F32::load4(xr + c), g = F32::load4(w + c);
            q8_store4(qr + c, make_float4(g.x * (v.x * inv), g.y * (v.y * inv), g.z * (v.z * inv),
                                          g.w * (v.w * inv)), qi);
        }
    } else {
        for (u32 c = lane; c < h; c += 32) qr[c] = q8_code(w[c] * (xr[c] * inv), qi);
    }
    if (lane == 0) sx[r] = s;
}

// ---------------------------------------------------------------------------------------------
// Per-token int8 quantization of an f32 matrix [rows, k] (one warp per row).
extern "C" __global__ void quant_rows(const float* __restrict__ x, i8* __restrict__ q,
                                      float* __restrict__ sx, u32 rows, u32 k) {
    const u32 r = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    const u32 lane = threadIdx.x & 31u;
    if (r >= rows) return;
    const float* xr = x + (u64)r * k;
    i8* qr = q + (u64)r * k;
    const bool v4 = (k & 3u) == 0;
    float amax = 0.0f;
    if (v4) {
        for (u32 c = lane * 4; c < k; c += 128) amax = abs_max4(amax, F32::load4(xr + c));
    } else {
        for (u32 c = lane; c < k; c += 32) amax = fmaxf(amax, fabsf(xr[c]));
    }
    const float s = q8_scale(warp_max(amax));
    const float qi = 1.0f / s;
    if (v4) {
        for (u32 c = lane * 4; c < k; c += 128) q8_store4(qr + c, F32::load4(xr + c), qi);
    } else {
        for (u32 c = lane; c < k; c += 32) qr[c] = q8_code(xr[c], qi);
    }
    if (lane == 0) sx[r] = s;
}

// Dynamic (per-tensor) activation quantization, pass 1: slot = max(slot, bits(|x|)) over the
// whole tensor (non-negative floats order like their bit patterns). The slot is zeroed first.
// Both passes read four elements at a time when n % 4 == 0 (x and q whole allocations).
extern "C" __global__ void absmax_all(const float* __restrict__ x, u64 n, u32* __restrict__ slot) {
    __shared__ float red[32];
    float m = 0.0f;
    const u64 t0 = (u64)blockIdx.x * blockDim.x + threadIdx.x, step = (u64)gridDim.x * blockDim.x;
    if ((n & 3u) == 0) {
        for (u64 i = t0; i < n / 4; i += step) {
            const float4 v = F32::load4(x + 4 * i);
            m = fmaxf(m, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
        }
    } else {
        for (u64 i = t0; i < n; i += step) m = fmaxf(m, fabsf(x[i]));
    }
    m = block_max(m, red);
    if (threadIdx.x == 0) atomicMax(slot, __float_as_uint(m));
}

// Pass 2: one scale for the tensor, codes for every element, sx[r] = that scale for each of the
// `rows` rows (no per-element division: the grid writes the row scales in a loop of its own).
extern "C" __global__ void quant_global(const float* __restrict__ x, u64 n, u32 rows,
                                        const u32* __restrict__ slot, i8* __restrict__ q,
                                        float* __restrict__ sx) {
    const float s = q8_scale(__uint_as_float(*slot));
    const float qi = 1.0f / s;
    const u64 t0 = (u64)blockIdx.x * blockDim.x + threadIdx.x, step = (u64)gridDim.x * blockDim.x;
    if ((n & 3u) == 0) {
        for (u64 i = t0; i < n / 4; i += step) {
            const float4 v = F32::load4(x + 4 * i);
            char4 c;
            c.x = q8_code(v.x, qi);
            c.y = q8_code(v.y, qi);
            c.z = q8_code(v.z, qi);
            c.w = q8_code(v.w, qi);
            reinterpret_cast<char4*>(q)[i] = c;
        }
    } else {
        for (u64 i = t0; i < n; i += step) q[i] = q8_code(x[i], qi);
    }
    for (u64 r = t0; r < rows; r += step) sx[r] = s;
}

// ---------------------------------------------------------------------------------------------
// INT8 GEMM epilogue: y = f32(acc) · (sx[m] · sw[n]) (eai-quant's order), written (add == 0)
// or added to y (add != 0; the residual stream). y has row stride ldy. Grid (rows, column
// blocks) as SwiGLU's: four columns per thread at a time, vector loads when n and ldy are
// multiples of 4.
extern "C" __global__ void dequant_out(const int* __restrict__ acc, const float* __restrict__ sx,
                                       const float* __restrict__ sw, float* __restrict__ y,
                                       u32 m, u32 n, u32 ldy, int add) {
    const u32 r = blockIdx.x;
    if (r >= m) return;
    const float s = sx[r];
    const int* a = acc + (u64)r * n;
    float* yr = y + (u64)r * ldy;
    const bool vec = (n & 3u) == 0 && (ldy & 3u) == 0;
    const u32 step = gridDim.y * blockDim.x * 4;
    for (u32 c = (blockIdx.y * blockDim.x + threadIdx.x) * 4; c < n; c += step) {
        if (vec) {
            const int4 v = *reinterpret_cast<const int4*>(a + c);
            const float4 w = F32::load4(sw + c);
            float4 o = make_float4((float)v.x * (s * w.x), (float)v.y * (s * w.y),
                                   (float)v.z * (s * w.z), (float)v.w * (s * w.w));
            if (add) {
                const float4 p = F32::load4(yr + c);
                o = make_float4(p.x + o.x, p.y + o.y, p.z + o.z, p.w + o.w);
            }
            F32::store4(yr + c, o);
        } else {
            for (u32 j = c; j < c + 4 && j < n; ++j) {
                const float v = (float)a[j] * (s * sw[j]);
                yr[j] = add ? yr[j] + v : v;
            }
        }
    }
}

// Half output of a W8A16 GEMV widened to f32, written or added (residual).
template <class T>
__device__ void widen_body(const typename T::raw* __restrict__ src, float* __restrict__ y, u64 n,
                           int add) {
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
        const float v = T::to_f32(src[i]);
        y[i] = add ? y[i] + v : v;
    }
}
extern "C" __global__ void widen_f16(const u16* src, float* y, u64 n, int add) {
    widen_body<F16>(src, y, n, add);
}

// W8A16 prefill: dequantize int8 weights to f16 (w = q · s[row]) for a cuBLAS f16 GEMM.
extern "C" __global__ void dequant_weight_f16(const i8* __restrict__ q, const float* __restrict__ s,
                                              u16* __restrict__ w, u32 n, u32 k) {
    const u64 total = (u64)n * k;
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (u64)gridDim.x * blockDim.x)
        w[i] = f32_to_f16((float)q[i] * s[i / k]);
}

// ---------------------------------------------------------------------------------------------
// Decode GEMV (M ≤ 16 rows): y[m, n] (= or +=) scale[n] · Σ_k W[n, k] · x[m, k], W row-major in
// its resident format (int8 codes with per-row f32 scales, or f16 / bf16 / f32), x in the
// scheme's activation type, f32 accumulation, f32 output of row stride ldy. One warp per
// GV_ROWS output rows, GV_WARPS warps per block, 16-byte weight vectors streamed past L1
// (ld.global.cs) GV_UNROLL at a time so enough bytes are in flight to saturate HBM; x is read
// through L1 (every warp of the block reads the same x). Requires K % (16 / sizeof(w)) == 0
// (16-byte aligned rows), which the host checks. int8 → f32 without I2F: the code's byte, sign
// flipped, is placed in the mantissa of 2^23 (`0x4B0000bb` = 2^23 + 128 + q) and the constant
// subtracted: exact, and on the FP32 pipe instead of the slower conversion unit.
#define GV_WARPS 8
#define GV_ROWS 2
#define GV_UNROLL 4

__device__ __forceinline__ void i8x4_f32(u32 w, float* f) {
    const u32 u = w ^ 0x80808080u;
    f[0] = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7540)) - 8388736.0f;
    f[1] = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7541)) - 8388736.0f;
    f[2] = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7542)) - 8388736.0f;
    f[3] = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7543)) - 8388736.0f;
}
__device__ __forceinline__ void h2_f32(u32 w, float* f) {
    f[0] = f16_to_f32((u16)(w & 0xffffu));
    f[1] = f16_to_f32((u16)(w >> 16));
}
__device__ __forceinline__ void bh2_f32(u32 w, float* f) {
    f[0] = __uint_as_float(w << 16);
    f[1] = __uint_as_float(w & 0xffff0000u);
}

// Element formats: EPV elements per 16-byte vector, unpacked to f32.
struct VI8 {
    enum { EPV = 16 };
    typedef i8 raw;
    static __device__ __forceinline__ void unpack(uint4 v, float* f) {
        i8x4_f32(v.x, f); i8x4_f32(v.y, f + 4); i8x4_f32(v.z, f + 8); i8x4_f32(v.w, f + 12);
    }
};
struct VF16 {
    enum { EPV = 8 };
    typedef u16 raw;
    static __device__ __forceinline__ void unpack(uint4 v, float* f) {
        h2_f32(v.x, f); h2_f32(v.y, f + 2); h2_f32(v.z, f + 4); h2_f32(v.w, f + 6);
    }
};
struct VBF16 {
    enum { EPV = 8 };
    typedef u16 raw;
    static __device__ __forceinline__ void unpack(uint4 v, float* f) {
        bh2_f32(v.x, f); bh2_f32(v.y, f + 2); bh2_f32(v.z, f + 4); bh2_f32(v.w, f + 6);
    }
};
struct VF32 {
    enum { EPV = 4 };
    typedef float raw;
    static __device__ __forceinline__ void unpack(uint4 v, float* f) {
        f[0] = __uint_as_float(v.x); f[1] = __uint_as_float(v.y);
        f[2] = __uint_as_float(v.z); f[3] = __uint_as_float(v.w);
    }
};

// Loads n (a multiple of X::EPV) x values at p (16-byte aligned) as f32.
template <class X, int N>
__device__ __forceinline__ void load_x(const typename X::raw* p, float* f) {
    const uint4* v = reinterpret_cast<const uint4*>(p);
#pragma unroll
    for (int i = 0; i < N / X::EPV; ++i) X::unpack(v[i], f + i * X::EPV);
}

// The CUDA-core GEMVs' step (gemv_body here, dgemv_body and dgemv_bk_body in decode.cu): U
// 16-byte vectors of each of R weight rows — row r at w + rows[r]·K, absent when rows[r] ≥ N —
// from k = k0 + u·step, streamed past L1 (ld.global.cs); zeros past K and for absent rows.
template <class W, int U, int R>
__device__ __forceinline__ void gemv_load_w(const typename W::raw* __restrict__ w,
                                            const u32* rows, u32 N, u32 K, u32 k0, u32 step,
                                            uint4 (*wv)[R]) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
        const u32 kk = k0 + u * step;
#pragma unroll
        for (int r = 0; r < R; ++r) {
            if (kk < K && rows[r] < N)
                wv[u][r] = __ldcs(reinterpret_cast<const uint4*>(w + (u64)rows[r] * K + kk));
            else
                wv[u][r] = make_uint4(0u, 0u, 0u, 0u);
        }
    }
}
// … and its products: for each loaded step u with k = k0 + u·step < K, the R rows' vectors
// unpacked once and multiplied into acc[r][i] (element order, one fmaf each) against the E
// activations of batch rows m0 + i < M (i < MT; row i at x + (xr + i)·K).
template <class W, class X, int MT, int U, int R>
__device__ __forceinline__ void gemv_fma(const uint4 (*wv)[R],
                                         const typename X::raw* __restrict__ x, u32 xr, u32 m0,
                                         u32 M, u32 K, u32 k0, u32 step, float (*acc)[MT]) {
    const int E = W::EPV;
#pragma unroll
    for (int u = 0; u < U; ++u) {
        const u32 kk = k0 + u * step;
        if (kk >= K) break;
        float wf[R][E];
#pragma unroll
        for (int r = 0; r < R; ++r) W::unpack(wv[u][r], wf[r]);
#pragma unroll
        for (int i = 0; i < MT; ++i) {
            if (m0 + i < M) {
                float xv[E];
                load_x<X, E>(x + (u64)(xr + i) * K + kk, xv);
#pragma unroll
                for (int r = 0; r < R; ++r) {
                    float a = acc[r][i];
#pragma unroll
                    for (int j = 0; j < E; ++j) a = fmaf(wf[r][j], xv[j], a);
                    acc[r][i] = a;
                }
            }
        }
    }
}

template <class W, class X, int MT>
__device__ __forceinline__ void gemv_body(const typename W::raw* __restrict__ w,
                                          const float* __restrict__ scale,
                                          const typename X::raw* __restrict__ x,
                                          float* __restrict__ y, u32 M, u32 N, u32 K, u32 ldy,
                                          int add) {
    const int E = W::EPV;
    const u32 lane = threadIdx.x & 31u;
    const u32 n0 = (blockIdx.x * GV_WARPS + (threadIdx.x >> 5)) * GV_ROWS;
    if (n0 >= N) return;
    const u32 m0 = blockIdx.y * MT;
    float acc[GV_ROWS][MT];
#pragma unroll
    for (int r = 0; r < GV_ROWS; ++r)
#pragma unroll
        for (int i = 0; i < MT; ++i) acc[r][i] = 0.0f;
    const u32 step = 32u * E;
    u32 rows[GV_ROWS];
#pragma unroll
    for (int r = 0; r < GV_ROWS; ++r) rows[r] = n0 + r;
    for (u32 k0 = lane * E; k0 < K; k0 += step * GV_UNROLL) {
        uint4 wv[GV_UNROLL][GV_ROWS];
        gemv_load_w<W, GV_UNROLL, GV_ROWS>(w, rows, N, K, k0, step, wv);
        gemv_fma<W, X, MT, GV_UNROLL, GV_ROWS>(wv, x, m0, m0, M, K, k0, step, acc);
    }
#pragma unroll
    for (int r = 0; r < GV_ROWS; ++r) {
#pragma unroll
        for (int i = 0; i < MT; ++i) acc[r][i] = warp_sum(acc[r][i]);
    }
    if (lane == 0) {
#pragma unroll
        for (int r = 0; r < GV_ROWS; ++r) {
            const u32 n = n0 + r;
            if (n >= N) break;
            const float s = scale ? scale[n] : 1.0f;
#pragma unroll
            for (int i = 0; i < MT; ++i) {
                if (m0 + i < M) {
                    float* yp = y + (u64)(m0 + i) * ldy + n;
                    const float v = acc[r][i] * s;
                    *yp = add ? *yp + v : v;
                }
            }
        }
    }
}
#define EAI_GEMV(NAME, W, X, MT)                                                               \
    extern "C" __global__ void __launch_bounds__(GV_WARPS * 32)                                \
        NAME(const W::raw* w, const float* scale, const X::raw* x, float* y, u32 M, u32 N,     \
             u32 K, u32 ldy, int add) {                                                        \
        gemv_body<W, X, MT>(w, scale, x, y, M, N, K, ldy, add);                                \
    }
EAI_GEMV(gemv_i8_f16_m1, VI8, VF16, 1)
EAI_GEMV(gemv_i8_f16_m2, VI8, VF16, 2)
EAI_GEMV(gemv_i8_f16_m4, VI8, VF16, 4)
EAI_GEMV(gemv_i8_f16_m8, VI8, VF16, 8)
EAI_GEMV(gemv_f16_f16_m1, VF16, VF16, 1)
EAI_GEMV(gemv_f16_f16_m2, VF16, VF16, 2)
EAI_GEMV(gemv_f16_f16_m4, VF16, VF16, 4)
EAI_GEMV(gemv_f16_f16_m8, VF16, VF16, 8)
EAI_GEMV(gemv_bf16_bf16_m1, VBF16, VBF16, 1)
EAI_GEMV(gemv_bf16_bf16_m2, VBF16, VBF16, 2)
EAI_GEMV(gemv_bf16_bf16_m4, VBF16, VBF16, 4)
EAI_GEMV(gemv_bf16_bf16_m8, VBF16, VBF16, 8)
EAI_GEMV(gemv_f32_f32_m1, VF32, VF32, 1)
EAI_GEMV(gemv_f32_f32_m2, VF32, VF32, 2)
EAI_GEMV(gemv_f32_f32_m4, VF32, VF32, 4)
EAI_GEMV(gemv_f32_f32_m8, VF32, VF32, 8)

// ---------------------------------------------------------------------------------------------
// Rope (NeoX / rotate-half pairs i, i + d/2) on the q and k heads of the packed qkv rows, bias
// added first; rotated q stays in place, rotated k and v go to the sequence's cache slot.
// qkv row: [q heads | k heads | v heads], each head d wide. Cache layout per layer:
// [token slot][kv head][d]; sequence s occupies slots seq_off[s] .. . Rows with seq < 0 are
// padding and are skipped.
extern "C" __global__ void rope_qkv(float* __restrict__ qkv, const float* __restrict__ bias,
                                    const int* __restrict__ seq, const int* __restrict__ pos,
                                    const u32* __restrict__ seq_off,
                                    const float* __restrict__ cos_t, const float* __restrict__ sin_t,
                                    const float* __restrict__ inv_freq, u32 table_len,
                                    float* __restrict__ kc, float* __restrict__ vc, u32 nh,
                                    u32 nkv, u32 d) {
    const u32 r = blockIdx.x;
    const int s = seq[r];
    if (s < 0) return;
    const u32 p = (u32)pos[r];
    const u32 half = d >> 1;
    const u32 width = (nh + 2 * nkv) * d;
    float* row = qkv + (u64)r * width;
    const u64 slot = (u64)seq_off[s] + p;
    const u32 rot = (nh + nkv) * half;
    for (u32 t = threadIdx.x; t < rot + nkv * d; t += blockDim.x) {
        if (t < rot) {
            const u32 head = t / half, i = t % half;
            const u32 c0 = head * d + i, c1 = c0 + half;
            float x0 = row[c0], x1 = row[c1];
            if (bias) {
                x0 += bias[c0];
                x1 += bias[c1];
            }
            float c, sn;
            if (p < table_len) {
                c = cos_t[(u64)p * half + i];
                sn = sin_t[(u64)p * half + i];
            } else {
                const float a = (float)p * inv_freq[i];
                c = cosf(a);
                sn = sinf(a);
            }
            const float y0 = x0 * c - x1 * sn;
            const float y1 = x0 * sn + x1 * c;
            if (head < nh) {
                row[c0] = y0;
                row[c1] = y1;
            } else {
                const u32 kh = head - nh;
                float* dst = kc + (slot * nkv + kh) * d;
                dst[i] = y0;
                dst[i + half] = y1;
            }
        } else {
            const u32 j = t - rot;
            const u32 c = (nh + nkv) * d + j;
            float v = row[c];
            if (bias) v += bias[c];
            vc[slot * nkv * d + j] = v;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SwiGLU: out[r, c] = T(silu(gate) · up), gate = gu[r, c], up = gu[r, f + c].
__device__ __forceinline__ float silu_mul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

// Grid (rows, column blocks): each thread four consecutive columns of one row at a time, loaded and
// stored four at a time when f % 4 == 0 (no 64-bit division per element). The gate/up matrix
// `G` is f32 or, after a GEMM writing 16-bit output (`GpuOptions::half_gate_up`), the
// activation type itself: half the bytes read.
template <class T, class G>
__device__ void swiglu_body(const typename G::raw* __restrict__ gu, typename T::raw* __restrict__ out,
                            u32 rows, u32 f) {
    const u32 r = blockIdx.x;
    if (r >= rows) return;
    const typename G::raw* g = gu + (u64)r * 2 * f;
    typename T::raw* o = out + (u64)r * f;
    const u64 step = (u64)gridDim.y * blockDim.x * 4;
    for (u64 c = ((u64)blockIdx.y * blockDim.x + threadIdx.x) * 4; c < f; c += step) {
        if ((f & 3u) == 0) {
            const float4 a = G::load4(g + c), b = G::load4(g + f + c);
            T::store4(o + c, make_float4(silu_mul(a.x, b.x), silu_mul(a.y, b.y),
                                         silu_mul(a.z, b.z), silu_mul(a.w, b.w)));
        } else {
            for (u64 j = c; j < c + 4 && j < f; ++j)
                o[j] = T::from_f32(silu_mul(G::to_f32(g[j]), G::to_f32(g[f + j])));
        }
    }
}
#define EAI_SWIGLU(NAME, T, G)                                                                 \
    extern "C" __global__ void NAME(const G::raw* gu, T::raw* out, u32 rows, u32 f) {          \
        swiglu_body<T, G>(gu, out, rows, f);                                                   \
    }
EAI_SWIGLU(swiglu_f32, F32, F32)
EAI_SWIGLU(swiglu_f16, F16, F32)
EAI_SWIGLU(swiglu_bf16, BF16, F32)
EAI_SWIGLU(swiglu_f16_h, F16, F16)
EAI_SWIGLU(swiglu_bf16_h, BF16, BF16)

// SwiGLU fused with per-token int8 quantization (one block per row).
extern "C" __global__ void swiglu_q8(const float* __restrict__ gu, i8* __restrict__ q,
                                     float* __restrict__ sx, u32 f) {
    __shared__ float red[32];
    const u32 r = blockIdx.x;
    const float* g = gu + (u64)r * 2 * f;
    float amax = 0.0f;
    for (u32 c = threadIdx.x; c < f; c += blockDim.x) amax = fmaxf(amax, fabsf(silu_mul(g[c], g[f + c])));
    amax = block_max(amax, red);
    const float s = q8_scale(amax);
    const float qi = 1.0f / s;
    for (u32 c = threadIdx.x; c < f; c += blockDim.x) q[(u64)r * f + c] = q8_code(silu_mul(g[c], g[f + c]), qi);
    if (threadIdx.x == 0) sx[r] = s;
}

// SwiGLU fused with per-token int8 quantization, reading the gate/up INT8 GEMM's int32
// accumulators directly (W8A8), one warp per row: g = f32(acc) · (sx[r] · sw[c]), exactly
// `dequant_out`'s value, so the codes equal dequant_out + swiglu_q8's without the f32 gate/up
// matrix written and read back. sx[r] holds the row's input scale on entry and its output scale
// on return (every lane reads it before the warp's reduction, lane 0 writes it after).
__device__ __forceinline__ float4 swiglu_acc4(const int* a, const float* sw, u32 f, u32 c,
                                              float s_in) {
    const int4 ga = *reinterpret_cast<const int4*>(a + c);
    const int4 ua = *reinterpret_cast<const int4*>(a + f + c);
    const float4 wg = F32::load4(sw + c), wu = F32::load4(sw + f + c);
    return make_float4(silu_mul((float)ga.x * (s_in * wg.x), (float)ua.x * (s_in * wu.x)),
                       silu_mul((float)ga.y * (s_in * wg.y), (float)ua.y * (s_in * wu.y)),
                       silu_mul((float)ga.z * (s_in * wg.z), (float)ua.z * (s_in * wu.z)),
                       silu_mul((float)ga.w * (s_in * wg.w), (float)ua.w * (s_in * wu.w)));
}
// The row's SwiGLU values: held in registers (NC float4 per lane, f ≤ 128·NC, f % 4 == 0), so
// the accumulators are read once for the absmax and the codes (ncu, ARC-Easy W8A8 on an H100:
// reading them twice made this kernel 81 µs per 8,192-row pass of FFN 1,536, 3× SwiGLU's from
// 16-bit gate/up); NC = 0: any width, the accumulators read again for the codes.
template <int NC>
__device__ __forceinline__ void swiglu_q8_acc_body(const int* __restrict__ acc,
                                                   const float* __restrict__ sw,
                                                   i8* __restrict__ q, float* __restrict__ sx,
                                                   u32 rows, u32 f) {
    const u32 r = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    const u32 lane = threadIdx.x & 31u;
    if (r >= rows) return;
    const int* a = acc + (u64)r * 2 * f;
    i8* qr = q + (u64)r * f;
    const float s_in = sx[r];
    float amax = 0.0f;
    if (NC > 0) {
        float4 v[NC > 0 ? NC : 1];
#pragma unroll
        for (int i = 0; i < NC; ++i) {
            const u32 c = lane * 4 + (u32)i * 128;
            v[i] = c < f ? swiglu_acc4(a, sw, f, c, s_in) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            amax = abs_max4(amax, v[i]);
        }
        const float s = q8_scale(warp_max(amax));
        const float qi = 1.0f / s;
#pragma unroll
        for (int i = 0; i < NC; ++i) {
            const u32 c = lane * 4 + (u32)i * 128;
            if (c < f) q8_store4(qr + c, v[i], qi);
        }
        if (lane == 0) sx[r] = s;
        return;
    }
    const bool v4 = (f & 3u) == 0;
    if (v4) {
        for (u32 c = lane * 4; c < f; c += 128) amax = abs_max4(amax, swiglu_acc4(a, sw, f, c, s_in));
    } else {
        for (u32 c = lane; c < f; c += 32) {
            const float g = (float)a[c] * (s_in * sw[c]), u = (float)a[f + c] * (s_in * sw[f + c]);
            amax = fmaxf(amax, fabsf(silu_mul(g, u)));
        }
    }
    const float s = q8_scale(warp_max(amax));
    const float qi = 1.0f / s;
    if (v4) {
        for (u32 c = lane * 4; c < f; c += 128) q8_store4(qr + c, swiglu_acc4(a, sw, f, c, s_in), qi);
    } else {
        for (u32 c = lane; c < f; c += 32) {
            const float g = (float)a[c] * (s_in * sw[c]), u = (float)a[f + c] * (s_in * sw[f + c]);
            qr[c] = q8_code(silu_mul(g, u), qi);
        }
    }
    if (lane == 0) sx[r] = s;
}
#define EAI_SWIGLU_Q8_ACC(NAME, NC)                                                            \
    extern "C" __global__ void NAME(const int* acc, const float* sw, i8* q, float* sx, u32 rows, \
                                    u32 f) {                                                   \
        swiglu_q8_acc_body<NC>(acc, sw, q, sx, rows, f);                                       \
    }
EAI_SWIGLU_Q8_ACC(swiglu_q8_acc, 0)
EAI_SWIGLU_Q8_ACC(swiglu_q8_acc_r16, 16)

// ---------------------------------------------------------------------------------------------
// Block argmax of each thread's (m, mi) — first index among equal values, NaN never wins (it
// compares false): warp shuffles, then thread 0 folds the warps' winners in warp order. The
// result is valid in thread 0 only; red / redi hold ≥ 32 entries of shared memory.
__device__ __forceinline__ void block_argmax(float& m, u32& mi, float* red, u32* redi) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float om = __shfl_xor_sync(0xffffffffu, m, o);
        const u32 oi = __shfl_xor_sync(0xffffffffu, mi, o);
        if (om > m || (om == m && oi < mi)) {
            m = om;
            mi = oi;
        }
    }
    const u32 lane = threadIdx.x & 31u, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0) {
        red[warp] = m;
        redi[warp] = mi;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        m = red[0];
        mi = redi[0];
        for (u32 w = 1; w < nw; ++w)
            if (red[w] > m || (red[w] == m && redi[w] < mi)) {
                m = red[w];
                mi = redi[w];
            }
    }
}

// Scoring: per logits row, log Σ exp and the first argmax (over the first `limit` columns), in
// one pass over the row (the row is read from memory once: a scoring chunk's logits do not fit
// in L2). Each thread keeps the running maximum m of its columns and s = Σ exp(v − m) in f64
// (each term exp(v − m) ≤ 1 in f32, the sum rescaled by exp(m_old − m_new) when m grows), then
// the block merges the threads' (m, s) pairs: lse = M + log Σ s_t·exp(m_t − M). A NaN or +inf
// logit makes the sum NaN (the caller rejects non-finite scores), as the CPU engine's does.
extern "C" __global__ void row_stats(const float* __restrict__ logits, u32 vocab, u32 limit,
                                     double* __restrict__ lse, u32* __restrict__ amax_idx) {
    __shared__ float red[32];
    __shared__ u32 redi[32];
    __shared__ float redm[32];
    __shared__ double redd[32];
    const u32 r = blockIdx.x;
    const float* row = logits + (u64)r * vocab;
    float am = -INFINITY, m = -INFINITY;
    u32 ami = 0xffffffffu;
    double sum = 0.0;
    for (u32 c = threadIdx.x; c < vocab; c += blockDim.x) {
        const float v = row[c];
        if (c < limit && (v > am || (v == am && c < ami))) {
            am = v;
            ami = c;
        }
        if (v > m) {
            if (m != -INFINITY) sum *= exp((double)m - (double)v);
            m = v;
        }
        sum += (v == -INFINITY) ? 0.0 : (double)expf(v - m);
    }
    // block argmax (ties: lower index)
    block_argmax(am, ami, red, redi);
    const u32 lane = threadIdx.x & 31u, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    // merge the running (m, sum) pairs: warps first, then the block
    const float wm = warp_max(m);
    // (a thread with m = -inf holds sum 0, or NaN after a NaN logit: kept as it is)
    double ws = (m == -INFINITY) ? sum : sum * exp((double)m - (double)wm);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) ws += __shfl_xor_sync(0xffffffffu, ws, o);
    if (lane == 0) {
        redm[warp] = wm;
        redd[warp] = ws;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        float g = redm[0];
        for (u32 w = 1; w < nw; ++w) g = fmaxf(g, redm[w]);
        double t = 0.0;
        for (u32 w = 0; w < nw; ++w)
            t += (redm[w] == -INFINITY) ? redd[w] : redd[w] * exp((double)redm[w] - (double)g);
        lse[r] = log(t) + (double)g;
        amax_idx[r] = ami;  // block_argmax's result (thread 0)
    }
}

// picks[i] = logits[rows[i], targets[i]].
extern "C" __global__ void gather_logits(const float* __restrict__ logits, u32 vocab,
                                         const u32* __restrict__ rows,
                                         const u32* __restrict__ targets, u32 n,
                                         float* __restrict__ picks) {
    const u32 i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) picks[i] = (targets[i] < vocab) ? logits[(u64)rows[i] * vocab + targets[i]] : -INFINITY;
}
