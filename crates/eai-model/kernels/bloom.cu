// ---------------------------------------------------------------------------------------------
// BLOOM's kernels (appended to model.cu, whose helpers they use): LayerNorm with bias (the
// word-embeddings norm, the two per block and ln_f), q/k/v bias + KV-cache write without rope
// (ALiBi is applied in the attention kernels), GELU (tanh form) with the up-projection's bias,
// and the bias add after the o and down projections (whose residual add the GEMM fused).

// LayerNorm statistics of one row: mean and 1 / sqrt(biased variance + eps), two passes in f32
// (as the CPU reference: mean first, then the mean of squared deviations).
__device__ float2 ln_stats(const float* xr, u32 h, float eps, float* red) {
    float s = 0.0f;
    for (u32 c = threadIdx.x; c < h; c += blockDim.x) s += xr[c];
    const float mean = block_sum(s, red) / (float)h;
    float v = 0.0f;
    for (u32 c = threadIdx.x; c < h; c += blockDim.x) {
        const float t = xr[c] - mean;
        v += t * t;
    }
    const float var = block_sum(v, red) / (float)h;
    return make_float2(mean, 1.0f / sqrtf(var + eps));
}

// y[r] = T((x − mean) · inv · w + b), one block per output row; the input row is idx[r] when idx
// is non-null (the scored positions). In place (y == x, idx null) is allowed: every thread
// writes only the columns it read last, after both reductions.
template <class T>
__device__ void layernorm_body(const float* x, const u32* __restrict__ idx,
                               const float* __restrict__ w, const float* __restrict__ b,
                               typename T::raw* y, u32 h, float eps) {
    __shared__ float red[32];
    const u32 r = blockIdx.x;
    const u32 src = idx ? idx[r] : r;
    const float* xr = x + (u64)src * h;
    const float2 st = ln_stats(xr, h, eps, red);
    for (u32 c = threadIdx.x; c < h; c += blockDim.x)
        y[(u64)r * h + c] = T::from_f32((xr[c] - st.x) * st.y * w[c] + b[c]);
}
#define EAI_LAYERNORM(NAME, T)                                                                 \
    extern "C" __global__ void NAME(const float* x, const u32* idx, const float* w,           \
                                    const float* b, T::raw* y, u32 h, float eps) {             \
        layernorm_body<T>(x, idx, w, b, y, h, eps);                                            \
    }
EAI_LAYERNORM(layernorm_f32, F32)
EAI_LAYERNORM(layernorm_f16, F16)
EAI_LAYERNORM(layernorm_bf16, BF16)

// LayerNorm fused with per-token int8 quantization (W8A8): codes q[r, :], scale sx[r].
extern "C" __global__ void layernorm_q8(const float* __restrict__ x, const float* __restrict__ w,
                                        const float* __restrict__ b, i8* __restrict__ q,
                                        float* __restrict__ sx, u32 h, float eps) {
    __shared__ float red[32];
    const u32 r = blockIdx.x;
    const float* xr = x + (u64)r * h;
    const float2 st = ln_stats(xr, h, eps, red);
    float amax = 0.0f;
    for (u32 c = threadIdx.x; c < h; c += blockDim.x)
        amax = fmaxf(amax, fabsf((xr[c] - st.x) * st.y * w[c] + b[c]));
    amax = block_max(amax, red);
    const float s = q8_scale(amax);
    const float qi = 1.0f / s;
    for (u32 c = threadIdx.x; c < h; c += blockDim.x)
        q[(u64)r * h + c] = q8_code((xr[c] - st.x) * st.y * w[c] + b[c], qi);
    if (threadIdx.x == 0) sx[r] = s;
}

// The fused qkv rows ([q heads | k heads | v heads], nh = nkv for BLOOM) get their bias; q stays
// in place, k and v go to the sequence's cache slot (layout as rope_qkv). One block per row;
// rows with seq < 0 are padding and are skipped.
extern "C" __global__ void bias_kv(float* __restrict__ qkv, const float* __restrict__ bias,
                                   const int* __restrict__ seq, const int* __restrict__ pos,
                                   const u32* __restrict__ seq_off, float* __restrict__ kc,
                                   float* __restrict__ vc, u32 nh, u32 nkv, u32 d) {
    const u32 r = blockIdx.x;
    const int s = seq[r];
    if (s < 0) return;
    const u64 slot = (u64)seq_off[s] + (u32)pos[r];
    const u32 nq = nh * d, nk = nkv * d;
    float* row = qkv + (u64)r * (nq + 2 * nk);
    for (u32 c = threadIdx.x; c < nq + 2 * nk; c += blockDim.x) {
        float v = row[c];
        if (bias) v += bias[c];
        if (c < nq) {
            row[c] = v;
        } else if (c < nq + nk) {
            kc[slot * nk + (c - nq)] = v;
        } else {
            vc[slot * nk + (c - nq - nk)] = v;
        }
    }
}

// BLOOM's GELU (`bloom_gelu_forward`, the tanh form with transformers' constants).
__device__ __forceinline__ float bloom_gelu(float x) {
    return x * 0.5f * (1.0f + tanhf(0.79788456f * x * (1.0f + 0.044715f * x * x)));
}

// out[r, c] = T(gelu(u[r, c] + b[c])) for the up projection's output u (row stride f).
template <class T>
__device__ void gelu_body(const float* __restrict__ u, const float* __restrict__ b,
                          typename T::raw* __restrict__ out, u32 rows, u32 f) {
    const u64 n = (u64)rows * f;
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x)
        out[i] = T::from_f32(bloom_gelu(u[i] + b[i % f]));
}
#define EAI_GELU(NAME, T)                                                                      \
    extern "C" __global__ void NAME(const float* u, const float* b, T::raw* out, u32 rows,     \
                                    u32 f) {                                                   \
        gelu_body<T>(u, b, out, rows, f);                                                      \
    }
EAI_GELU(gelu_f32, F32)
EAI_GELU(gelu_f16, F16)
EAI_GELU(gelu_bf16, BF16)

// GELU fused with per-token int8 quantization (one block per row).
extern "C" __global__ void gelu_q8(const float* __restrict__ u, const float* __restrict__ b,
                                   i8* __restrict__ q, float* __restrict__ sx, u32 f) {
    __shared__ float red[32];
    const u32 r = blockIdx.x;
    const float* ur = u + (u64)r * f;
    float amax = 0.0f;
    for (u32 c = threadIdx.x; c < f; c += blockDim.x) amax = fmaxf(amax, fabsf(bloom_gelu(ur[c] + b[c])));
    amax = block_max(amax, red);
    const float s = q8_scale(amax);
    const float qi = 1.0f / s;
    for (u32 c = threadIdx.x; c < f; c += blockDim.x) q[(u64)r * f + c] = q8_code(bloom_gelu(ur[c] + b[c]), qi);
    if (threadIdx.x == 0) sx[r] = s;
}

// y[r, c] += b[c] over rows × n (the o / down projections' bias, after the fused residual add).
extern "C" __global__ void add_bias(float* __restrict__ y, const float* __restrict__ b, u32 rows,
                                    u32 n) {
    const u64 total = (u64)rows * n;
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (u64)gridDim.x * blockDim.x)
        y[i] += b[i % n];
}
