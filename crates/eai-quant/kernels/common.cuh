// eai-quant CUDA kernels: shared helpers.
//
// Compiled at run time by NVRTC (never with fast math: --fmad=false, IEEE division and square
// root), so every float operation below rounds exactly like the CPU reference. No headers are
// included: half-precision conversions use PTX `cvt` directly (round to nearest even).

typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char i8;
typedef unsigned char u8;

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

// Element types: raw storage type plus exact widening / RNE narrowing to f32.
struct F32 {
    typedef float raw;
    static __device__ __forceinline__ float to_f32(float v) { return v; }
    static __device__ __forceinline__ float from_f32(float v) { return v; }
};
// The 16-bit types (struct F16, struct BF16), TY their PTX name: exact widening, RNE narrowing;
// pack2(lo, hi): both rounded to nearest even, `lo` in bits 0..15 (one cvt for the pair);
// min2 / max2: NaN-propagating min / max of two packed pairs.
#define EAI_HALF_TYPE(NAME, TY)                                                                  \
    struct NAME {                                                                                \
        typedef u16 raw;                                                                         \
        static __device__ __forceinline__ float to_f32(u16 v) { return TY##_to_f32(v); }         \
        static __device__ __forceinline__ u16 from_f32(float v) { return f32_to_##TY(v); }       \
        static __device__ __forceinline__ u32 pack2(float lo, float hi) {                        \
            u32 r;                                                                               \
            asm("cvt.rn." #TY "x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));                \
            return r;                                                                            \
        }                                                                                        \
        static __device__ __forceinline__ u32 min2(u32 a, u32 b) {                               \
            u32 r;                                                                               \
            asm("min.NaN." #TY "x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));                     \
            return r;                                                                            \
        }                                                                                        \
        static __device__ __forceinline__ u32 max2(u32 a, u32 b) {                               \
            u32 r;                                                                               \
            asm("max.NaN." #TY "x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));                     \
            return r;                                                                            \
        }                                                                                        \
    };
EAI_HALF_TYPE(F16, f16)
EAI_HALF_TYPE(BF16, bf16)

// 8 consecutive elements as f32, through 16-byte loads. `p` must be 16-byte aligned.
template <class T> struct Vec8;
template <> struct Vec8<F32> {
    static __device__ __forceinline__ void load(const float* p, float v[8]) {
        float4 a = __ldcs(reinterpret_cast<const float4*>(p));
        float4 b = __ldcs(reinterpret_cast<const float4*>(p) + 1);
        v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
        v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
    }
    static __device__ __forceinline__ void load_cached(const float* p, float v[8]) {
        float4 a = __ldg(reinterpret_cast<const float4*>(p));
        float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
        v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
        v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
    }
    static __device__ __forceinline__ void store(float* p, const float v[8]) {
        __stcs(reinterpret_cast<float4*>(p), make_float4(v[0], v[1], v[2], v[3]));
        __stcs(reinterpret_cast<float4*>(p) + 1, make_float4(v[4], v[5], v[6], v[7]));
    }
};
template <class H> struct Vec8Half {
    static __device__ __forceinline__ void unpack(uint4 a, float v[8]) {
        u32 w[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            v[2 * i] = H::to_f32((u16)(w[i] & 0xffffu));
            v[2 * i + 1] = H::to_f32((u16)(w[i] >> 16));
        }
    }
    static __device__ __forceinline__ void load(const u16* p, float v[8]) {
        unpack(__ldcs(reinterpret_cast<const uint4*>(p)), v);
    }
    static __device__ __forceinline__ void load_cached(const u16* p, float v[8]) {
        unpack(__ldg(reinterpret_cast<const uint4*>(p)), v);
    }
    static __device__ __forceinline__ void store(u16* p, const float v[8]) {
        u32 w[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) w[i] = H::pack2(v[2 * i], v[2 * i + 1]);
        __stcs(reinterpret_cast<uint4*>(p), make_uint4(w[0], w[1], w[2], w[3]));
    }
};
template <> struct Vec8<F16> : Vec8Half<F16> {};
template <> struct Vec8<BF16> : Vec8Half<BF16> {};

// 4 consecutive elements as f32 ("quad"): one 16-byte (f32) or 8-byte (16-bit) access. Lanes
// of a warp that touch consecutive quads make fully coalesced requests.
template <class T> struct Vec4;
template <> struct Vec4<F32> {
    static __device__ __forceinline__ void load(const float* p, float v[4]) {
        float4 a = __ldcs(reinterpret_cast<const float4*>(p));
        v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
    }
    static __device__ __forceinline__ void load_cached(const float* p, float v[4]) {
        float4 a = __ldg(reinterpret_cast<const float4*>(p));
        v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
    }
    static __device__ __forceinline__ void store(float* p, const float v[4]) {
        __stcs(reinterpret_cast<float4*>(p), make_float4(v[0], v[1], v[2], v[3]));
    }
};
template <class H> struct Vec4Half {
    static __device__ __forceinline__ void unpack(uint2 a, float v[4]) {
        v[0] = H::to_f32((u16)(a.x & 0xffffu));
        v[1] = H::to_f32((u16)(a.x >> 16));
        v[2] = H::to_f32((u16)(a.y & 0xffffu));
        v[3] = H::to_f32((u16)(a.y >> 16));
    }
    static __device__ __forceinline__ void load(const u16* p, float v[4]) {
        unpack(__ldcs(reinterpret_cast<const uint2*>(p)), v);
    }
    static __device__ __forceinline__ void load_cached(const u16* p, float v[4]) {
        unpack(__ldg(reinterpret_cast<const uint2*>(p)), v);
    }
    static __device__ __forceinline__ void store(u16* p, const float v[4]) {
        const u32 a = (u32)H::from_f32(v[0]) | ((u32)H::from_f32(v[1]) << 16);
        const u32 b = (u32)H::from_f32(v[2]) | ((u32)H::from_f32(v[3]) << 16);
        __stcs(reinterpret_cast<uint2*>(p), make_uint2(a, b));
    }
};
template <> struct Vec4<F16> : Vec4Half<F16> {};
template <> struct Vec4<BF16> : Vec4Half<BF16> {};

__device__ __forceinline__ u64 global_thread() {
    return (u64)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ u64 global_threads() { return (u64)gridDim.x * blockDim.x; }
