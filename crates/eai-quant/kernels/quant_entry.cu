// Part of the eai-quant CUDA module, the extern "C" entry points of the templates above (quant.cu .. dequant.cu). The files are concatenated in the order
// of `source()` in src/cuda/kernels.rs (quant.cu holds the spec and the shared helpers).
#define EAI_QUANT_KERNELS3(SUF, T)                                                               \
    EAI_REG_KERNEL(SUF, T, 1)                                                                    \
    EAI_REG_KERNEL(SUF, T, 2)                                                                    \
    EAI_REG_KERNEL(SUF, T, 4)                                                                    \
    EAI_REG_KERNEL(SUF, T, 8)                                                                    \
    EAI_REG_KERNEL(SUF, T, 16)                                                                   \
    EAI_SPLIT_KERNEL(SUF, T, 4, 4)                                                               \
    EAI_REGC_KERNEL(SUF, T, 4)                                                                   \
    EAI_CS_KERNELS(SUF, T)                                                                       \
    EAI_DEQB_KERNEL(SUF, T)
#define EAI_REG_KERNEL(SUF, T, V)                                                                \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        quant_rows_reg##V##_##SUF(const T::raw* __restrict__ x, u8* q, float* scales, int* zps,  \
                                  RegArgs a, QSpec s, u64* bad, u64* bad_scale) {                \
        rows_reg<T, V>(x, q, scales, zps, a, s, bad, bad_scale);                                 \
    }
#define EAI_REGC_KERNEL(SUF, T, V)                                                               \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        quant_rows_regc##V##_##SUF(const T::raw* __restrict__ x, u8* q, float* scales, int* zps, \
                                   RegArgs a, QSpec s, u64* bad, u64* bad_scale) {               \
        rows_reg<T, V, true>(x, q, scales, zps, a, s, bad, bad_scale);                           \
    }
// Streaming-load (ld16<true>) variants the measured defaults pick (plan::row_kernel):
// split4x4cs (f16/bf16 rows of 257..512 vectors) and regc2cs (Q8_0-sized groups from f16).
#define EAI_CS_KERNELS(SUF, T)                                                                   \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        quant_rows_split4x4cs_##SUF(const T::raw* __restrict__ x, u8* q, float* scales,          \
                                    int* zps, RegArgs a, QSpec s, u64* bad, u64* bad_scale) {    \
        rows_split<T, 4, 4, true>(x, q, scales, zps, a, s, bad, bad_scale);                      \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        quant_rows_regc2cs_##SUF(const T::raw* __restrict__ x, u8* q, float* scales, int* zps,   \
                                 RegArgs a, QSpec s, u64* bad, u64* bad_scale) {                 \
        rows_reg<T, 2, true, true>(x, q, scales, zps, a, s, bad, bad_scale);                     \
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
EAI_QUANT_KERNELS3(f32, F32)
EAI_QUANT_KERNELS3(f16, F16)
EAI_QUANT_KERNELS3(bf16, BF16)
