// Device-side random fills for benchmarks and tests (counter-based: value i depends only on
// (seed, i), so results do not depend on the launch configuration).

__device__ __forceinline__ u64 splitmix64(u64 z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// y[i] = lo + (hi - lo) * u, u uniform in [0, 1) with 24 random bits.
extern "C" __global__ void fill_uniform_f32(float* __restrict__ y, u64 n, u64 seed, float lo,
                                            float hi) {
    for (u64 i = global_thread(); i < n; i += global_threads()) {
        const u64 r = splitmix64(seed ^ (i * 0xD1B54A32D192ED03ull));
        const float u = (float)(u32)(r >> 40) * (1.0f / 16777216.0f);
        y[i] = __fadd_rn(lo, __fmul_rn(__fsub_rn(hi, lo), u));
    }
}

// Uniformly random bytes (int8 codes over the full -128..127 range).
extern "C" __global__ void fill_random_u32(u32* __restrict__ y, u64 n, u64 seed) {
    for (u64 i = global_thread(); i < n; i += global_threads()) {
        y[i] = (u32)(splitmix64(seed ^ (i * 0xD1B54A32D192ED03ull)) >> 16);
    }
}

// Traffic probes (session 3, round 3): the access pattern of a memory-bound kernel with none of
// its arithmetic. Item i reads RB bytes at in + i·RB and writes WB bytes at out + i·WB (lanes on
// consecutive items, 4 items per thread and step with all loads before the first store, like
// the batched dequantize kernel); the written words are a cheap function of the read ones so
// nothing is elided. The bench compares each probe with the copy: the ceiling of a given
// read:write mix on this device.
template <int B> struct ProbeIO;
template <> struct ProbeIO<4> {
    static __device__ __forceinline__ void ld(const u8* p, u32* w) { w[0] = __ldcs(reinterpret_cast<const u32*>(p)); }
    static __device__ __forceinline__ void st(u8* p, const u32* w) { __stcs(reinterpret_cast<u32*>(p), w[0]); }
};
template <> struct ProbeIO<8> {
    static __device__ __forceinline__ void ld(const u8* p, u32* w) {
        const uint2 a = __ldcs(reinterpret_cast<const uint2*>(p));
        w[0] = a.x; w[1] = a.y;
    }
    static __device__ __forceinline__ void st(u8* p, const u32* w) { __stcs(reinterpret_cast<uint2*>(p), make_uint2(w[0], w[1])); }
};
template <> struct ProbeIO<16> {
    static __device__ __forceinline__ void ld(const u8* p, u32* w) {
        const uint4 a = __ldcs(reinterpret_cast<const uint4*>(p));
        w[0] = a.x; w[1] = a.y; w[2] = a.z; w[3] = a.w;
    }
    static __device__ __forceinline__ void st(u8* p, const u32* w) { __stcs(reinterpret_cast<uint4*>(p), make_uint4(w[0], w[1], w[2], w[3])); }
};
// The WB bytes written for the RB bytes read: a cheap function of them, so nothing is elided.
template <int RB, int WB>
__device__ __forceinline__ void probe_mix(const u32* w, u32* o) {
#pragma unroll
    for (int k = 0; k < WB / 4; ++k) o[k] = 0u;
#pragma unroll
    for (int k = 0; k < (RB > WB ? RB : WB) / 4; ++k) o[k % (WB / 4)] ^= w[k % (RB / 4)] + (u32)k;
}
// Items i + u·d, u < 4: all four loads before the first store.
template <int RB, int WB>
__device__ __forceinline__ void probe_step4(const u8* __restrict__ in, u8* __restrict__ out, u64 i,
                                            u64 d) {
    u32 w[4][RB / 4];
#pragma unroll
    for (int u = 0; u < 4; ++u) ProbeIO<RB>::ld(in + (i + u * d) * RB, w[u]);
#pragma unroll
    for (int u = 0; u < 4; ++u) {
        u32 o[WB / 4];
        probe_mix<RB, WB>(w[u], o);
        ProbeIO<WB>::st(out + (i + u * d) * WB, o);
    }
}
// Item i alone.
template <int RB, int WB>
__device__ __forceinline__ void probe_one(const u8* __restrict__ in, u8* __restrict__ out, u64 i) {
    u32 w[RB / 4], o[WB / 4];
    ProbeIO<RB>::ld(in + i * RB, w);
    probe_mix<RB, WB>(w, o);
    ProbeIO<WB>::st(out + i * WB, o);
}
template <int RB, int WB>
__device__ __forceinline__ void probe_body(const u8* __restrict__ in, u8* __restrict__ out, u64 items) {
    const u64 stride = global_threads();
    u64 i = global_thread();
    for (; i + 3 * stride < items; i += 4 * stride) probe_step4<RB, WB>(in, out, i, stride);
    for (; i < items; i += stride) probe_one<RB, WB>(in, out, i);
}
// Blocked twin (session 7): a warp's 4 items per step are consecutive runs of 32 (one
// contiguous span per warp and step), the pattern of `dequant_4b`; the strided probe above is
// the pattern of the batched dequantize kernels.
template <int RB, int WB>
__device__ __forceinline__ void probeb_body(const u8* __restrict__ in, u8* __restrict__ out, u64 items) {
    const u32 lane = threadIdx.x & 31u;
    const u64 warp = global_thread() >> 5, nwarps = global_threads() >> 5;
    const u64 full = items / 128u;
    for (u64 c = warp; c < full; c += nwarps) probe_step4<RB, WB>(in, out, c * 128u + lane, 32u);
    for (u64 i = full * 128u + global_thread(); i < items; i += global_threads()) probe_one<RB, WB>(in, out, i);
}
#define EAI_PROBE(RB, WB)                                                                        \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        probe_##RB##_##WB(const u8* __restrict__ in, u8* __restrict__ out, u64 items) {          \
        probe_body<RB, WB>(in, out, items);                                                      \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        probeb_##RB##_##WB(const u8* __restrict__ in, u8* __restrict__ out, u64 items) {         \
        probeb_body<RB, WB>(in, out, items);                                                     \
    }
EAI_PROBE(16, 4)
EAI_PROBE(16, 8)
EAI_PROBE(16, 16)
EAI_PROBE(8, 16)
EAI_PROBE(4, 16)

// Read-only probe (session 15): the first pass of a two-pass quantizer, which reads its input
// and writes nothing per element. Item i reads 16 bytes at in + 16 i in the strided pattern of
// the probes above (4 items in flight per thread and step); each thread folds what it read into
// one word and writes that word once, at out + 4 t, so nothing is elided and the writes are
// one word per thread.
extern "C" __global__ void __launch_bounds__(256)
    probe_16_0(const u8* __restrict__ in, u8* __restrict__ out, u64 items) {
    const u64 stride = global_threads();
    u64 i = global_thread();
    u32 acc = 0u;
    for (; i + 3 * stride < items; i += 4 * stride) {
        u32 w[4][4];
#pragma unroll
        for (int u = 0; u < 4; ++u) ProbeIO<16>::ld(in + (i + u * stride) * 16, w[u]);
#pragma unroll
        for (int u = 0; u < 4; ++u) {
#pragma unroll
            for (int k = 0; k < 4; ++k) acc ^= w[u][k] + (u32)k;
        }
    }
    for (; i < items; i += stride) {
        u32 w[4];
        ProbeIO<16>::ld(in + i * 16, w);
#pragma unroll
        for (int k = 0; k < 4; ++k) acc ^= w[k] + (u32)k;
    }
    reinterpret_cast<u32*>(out)[global_thread()] = acc;
}
