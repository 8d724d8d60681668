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
