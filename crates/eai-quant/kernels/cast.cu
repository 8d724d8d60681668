// FP32 / FP16 / BF16 casts on the device. Widening is exact; narrowing rounds to nearest even
// (PTX cvt.rn), NaN stays NaN, overflow goes to +-inf exactly like `half::{f16,bf16}::from_f32`.

template <class I, class O>
__device__ __forceinline__ void cast_body(const typename I::raw* __restrict__ x,
                                          typename O::raw* __restrict__ y, u64 n) {
    // Quads: consecutive lanes read and write consecutive 4-element vectors (fully coalesced
    // requests on both sides); two independent quads per step.
    const u64 nq = n / 4, stride = global_threads();
    u64 q = global_thread();
    for (; q + stride < nq; q += 2 * stride) {
        float a[4], b[4];
        Vec4<I>::load(x + q * 4, a);
        Vec4<I>::load(x + (q + stride) * 4, b);
        Vec4<O>::store(y + q * 4, a);
        Vec4<O>::store(y + (q + stride) * 4, b);
    }
    if (q < nq) {
        float a[4];
        Vec4<I>::load(x + q * 4, a);
        Vec4<O>::store(y + q * 4, a);
    }
    for (u64 i = nq * 4 + global_thread(); i < n; i += global_threads()) {
        y[i] = O::from_f32(I::to_f32(x[i]));
    }
}

#define EAI_CAST(NAME, I, O)                                                                     \
    extern "C" __global__ void NAME(const I::raw* __restrict__ x, O::raw* __restrict__ y, u64 n) { \
        cast_body<I, O>(x, y, n);                                                                \
    }
EAI_CAST(cast_f32_f16, F32, F16)
EAI_CAST(cast_f32_bf16, F32, BF16)
EAI_CAST(cast_f16_f32, F16, F32)
EAI_CAST(cast_bf16_f32, BF16, F32)
EAI_CAST(cast_f16_bf16, F16, BF16)
EAI_CAST(cast_bf16_f16, BF16, F16)
