// Part of the eai-quant CUDA module, the cooperative one-pass per-tensor quantizer and its entry points. The files are concatenated in the order
// of `source()` in src/cuda/kernels.rs (quant.cu holds the spec and the shared helpers).
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
            minmax_updateN<W>(f, mn, mx, (v0 + c) * W, s, bad);
        }
    }
    block_minmax_ord(mn, mx, red_mn, red_mx, ord);
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
    const QFast fq = group_params_out(gmn, gmx, s, 0, blockIdx.x == 0 && tid == 0, scales, zps,
                                      bad_scale, scale, inv, zp);
    u8* qb = q + v0 * W;
    if (!bdirty && fq.on) {
        const QLean fl = make_lean(fq);
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
