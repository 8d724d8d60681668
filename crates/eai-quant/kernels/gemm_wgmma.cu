// INT8 GEMM on Hopper tensor cores (wgmma) with the dequantize in its epilogue:
// y[m, n] = O(f32(sum_k x[m, k] * w[n, k]) * (sx[m] * sw[n]) (+ bias[n])), exactly the
// expression of dequant_body (gemm.cu), so the result is bit-identical to gemm_i8 followed by
// gemm_dequant: the int32 sum is exact on the tensor cores, and the epilogue rounds the same
// three (four with bias) operations in the same order, no FMA contraction.
//
// Compiled as its own NVRTC module for compute_90a only (wgmma, setmaxnreg and the
// arch-specific features need the "a" target), after common.cuh.
//
// Layout: X [M, K] and W [N, K] int8 row-major (both K-major, the only layout wgmma takes for
// 8-bit operands). Tile 128 x 256 outputs, K in steps of 128 bytes (one 128-byte swizzle row).
// Block = 3 warpgroups: WG0 and WG1 consume (64 rows x 256 columns each, wgmma m64n256k32,
// 128 int32 accumulators per thread), WG2 produces (one thread issues the TMA loads of both
// operands into a STAGES-deep ring of shared-memory stages guarded by mbarriers). Persistent:
// gridDim.x <= number of SMs, every block walks tiles t = blockIdx.x, + gridDim.x, ... in a
// grouped order (GROUP_M row tiles share each column band, for L2 reuse); the producer runs
// ahead into the next tile's stages while the consumers run the epilogue.
// The TMA boxes zero-fill outside [M or N, K], so ragged M, N and K tails add zeros; the
// epilogue masks rows >= M and columns >= N. Host-side requirements (src/cuda/wgmma.rs):
// K % 16 == 0 (TMA row stride), N % 2 == 0 (paired stores; the caller already has N % 4).

#define WG_BM 128
#define WG_BN 256
#define WG_BK 128
#define WG_STAGES 4
#define WG_GROUP_M 8
#define WG_A_BYTES (WG_BM * WG_BK)
#define WG_B_BYTES (WG_BN * WG_BK)
#define WG_STAGE_BYTES (WG_A_BYTES + WG_B_BYTES)
#define WG_THREADS 384

// An opaque CUtensorMap (128 bytes), passed by value as a __grid_constant__ parameter so its
// address can be handed to the TMA unit.
struct __align__(64) TmaDesc {
    u64 v[16];
};

__device__ __forceinline__ u32 wg_smem_addr(const void* p) {
    u32 r;
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(r) : "l"(p));
    return r;
}

__device__ __forceinline__ void wg_mbar_init(u32 bar, u32 count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}

__device__ __forceinline__ void wg_mbar_expect_tx(u32 bar, u32 bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes)
                 : "memory");
}

__device__ __forceinline__ void wg_mbar_arrive(u32 bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}

// Spins until the phase of `bar` with the given parity has completed.
__device__ __forceinline__ void wg_mbar_wait(u32 bar, u32 parity) {
    u32 done;
    do {
        asm volatile(
            "{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; "
            "selp.u32 %0, 1, 0, p; }"
            : "=r"(done)
            : "r"(bar), "r"(parity)
            : "memory");
    } while (!done);
}

// 2-D TMA load of one box (coordinates: c0 = byte along K, c1 = row) into shared memory,
// completing `bytes` of the transaction count of `bar`.
__device__ __forceinline__ void wg_tma_load(u32 dst, const TmaDesc* map, int c0, int c1, u32 bar) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
        " [%0], [%1, {%2, %3}], [%4];" ::"r"(dst),
        "l"(reinterpret_cast<u64>(map)), "r"(c0), "r"(c1), "r"(bar)
        : "memory");
}

// Shared-memory matrix descriptor of a K-major operand stored as TMA's 128-byte swizzle
// writes it: rows of 128 bytes, 8-row atoms of 1024 bytes (1024-byte aligned). Start address
// in 16-byte units (bits 0-13), leading byte offset unused for swizzled K-major (1),
// stride byte offset = 1024 bytes between 8-row atoms (bits 32-45), swizzle mode 1 = 128 B
// (bits 62-63). Advancing along K inside the 128-byte row adds bytes/16 to the start address.
__device__ __forceinline__ u64 wg_desc(u32 addr) {
    u64 d = (u64)((addr & 0x3FFFFu) >> 4);
    d |= (u64)1 << 16;
    d |= (u64)(1024 >> 4) << 32;
    d |= (u64)1 << 62;
    return d;
}

__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wg_commit() {
    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
}
template <int N> __device__ __forceinline__ void wg_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory");
}

// Keeps the compiler from moving accumulator reads or writes across the asynchronous MMA.
__device__ __forceinline__ void wg_pin(int (&d)[128]) {
#pragma unroll
    for (int i = 0; i < 128; ++i) asm volatile("" : "+r"(d[i])::"memory");
}

// d (+)= A[64 x 32] * B[256 x 32]^T, int8 x int8 -> int32; scale_d = 0 overwrites d.
__device__ __forceinline__ void wg_mma(int (&d)[128], u64 da, u64 db, int scale_d) {
    asm volatile(
        "{\n .reg .pred p;\n setp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k32.s32.s8.s8 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
        "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
        "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
        "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
        "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, "
        "%128, %129, p;\n}\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]),
          "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]),
          "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]),
          "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]),
          "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]),
          "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]),
          "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]),
          "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63]),
          "+r"(d[64]), "+r"(d[65]), "+r"(d[66]), "+r"(d[67]), "+r"(d[68]), "+r"(d[69]), "+r"(d[70]), "+r"(d[71]),
          "+r"(d[72]), "+r"(d[73]), "+r"(d[74]), "+r"(d[75]), "+r"(d[76]), "+r"(d[77]), "+r"(d[78]), "+r"(d[79]),
          "+r"(d[80]), "+r"(d[81]), "+r"(d[82]), "+r"(d[83]), "+r"(d[84]), "+r"(d[85]), "+r"(d[86]), "+r"(d[87]),
          "+r"(d[88]), "+r"(d[89]), "+r"(d[90]), "+r"(d[91]), "+r"(d[92]), "+r"(d[93]), "+r"(d[94]), "+r"(d[95]),
          "+r"(d[96]), "+r"(d[97]), "+r"(d[98]), "+r"(d[99]), "+r"(d[100]), "+r"(d[101]), "+r"(d[102]), "+r"(d[103]),
          "+r"(d[104]), "+r"(d[105]), "+r"(d[106]), "+r"(d[107]), "+r"(d[108]), "+r"(d[109]), "+r"(d[110]), "+r"(d[111]),
          "+r"(d[112]), "+r"(d[113]), "+r"(d[114]), "+r"(d[115]), "+r"(d[116]), "+r"(d[117]), "+r"(d[118]), "+r"(d[119]),
          "+r"(d[120]), "+r"(d[121]), "+r"(d[122]), "+r"(d[123]), "+r"(d[124]), "+r"(d[125]), "+r"(d[126]), "+r"(d[127])
        : "l"(da), "l"(db), "r"(scale_d));
}

template <class O> struct WgPair;
template <> struct WgPair<F32> {
    static __device__ __forceinline__ void store(float* p, float a, float b) {
        *reinterpret_cast<float2*>(p) = make_float2(a, b);
    }
};
template <class H> struct WgPairHalf {
    static __device__ __forceinline__ void store(u16* p, float a, float b) {
        *reinterpret_cast<u32*>(p) = H::pack2(a, b);
    }
};
template <> struct WgPair<F16> : WgPairHalf<F16> {};
template <> struct WgPair<BF16> : WgPairHalf<BF16> {};

// Tile t of the grouped order: GROUP_M row tiles walk each column band before the next band.
template <u32 GROUP = WG_GROUP_M>
__device__ __forceinline__ void wg_tile(u32 t, u32 tiles_m, u32 tiles_n, u32& tm, u32& tn) {
    const u32 per_group = GROUP * tiles_n;
    const u32 g = t / per_group;
    const u32 first = g * GROUP;
    const u32 rows = min(tiles_m - first, GROUP);
    const u32 r = t - g * per_group;
    tm = first + r % rows;
    tn = r / rows;
}

// Epilogue of one consumer warpgroup: dequantizes its 64 x 256 block of int32 sums (rows
// row0.., columns col0..) from registers to global memory, masking rows >= M and columns >= N.
// Register i = 4 j + 2 h + c holds row 16 warp + lane / 4 + 8 h, column 8 j + 2 (lane % 4) + c.
template <class O>
__device__ __forceinline__ void wg_epilogue(const int (&acc)[128], const float* __restrict__ sx,
                                            const float* __restrict__ sw,
                                            const float* __restrict__ bias,
                                            typename O::raw* __restrict__ y, u32 M, u32 N,
                                            u32 row0, u32 col0) {
    const u32 lane = threadIdx.x & 31u;
    const u32 warp = (threadIdx.x >> 5) & 3u;
    const u32 r0 = row0 + warp * 16 + (lane >> 2);
    const u32 r1 = r0 + 8;
    const float rs0 = r0 < M ? __ldg(sx + r0) : 0.0f;
    const float rs1 = r1 < M ? __ldg(sx + r1) : 0.0f;
    const u32 c0 = col0 + 2 * (lane & 3u);
#pragma unroll
    for (int j = 0; j < WG_BN / 8; ++j) {
        const u32 c = c0 + 8 * j;
        if (c < N) {
            const float2 cs = __ldg(reinterpret_cast<const float2*>(sw + c));
            float2 b = make_float2(0.0f, 0.0f);
            if (bias != 0) b = __ldg(reinterpret_cast<const float2*>(bias + c));
            if (r0 < M) {
                float v0 = __fmul_rn(__int2float_rn(acc[4 * j]), __fmul_rn(rs0, cs.x));
                float v1 = __fmul_rn(__int2float_rn(acc[4 * j + 1]), __fmul_rn(rs0, cs.y));
                if (bias != 0) {
                    v0 = __fadd_rn(v0, b.x);
                    v1 = __fadd_rn(v1, b.y);
                }
                WgPair<O>::store(y + (u64)r0 * N + c, v0, v1);
            }
            if (r1 < M) {
                float v0 = __fmul_rn(__int2float_rn(acc[4 * j + 2]), __fmul_rn(rs1, cs.x));
                float v1 = __fmul_rn(__int2float_rn(acc[4 * j + 3]), __fmul_rn(rs1, cs.y));
                if (bias != 0) {
                    v0 = __fadd_rn(v0, b.x);
                    v1 = __fadd_rn(v1, b.y);
                }
                WgPair<O>::store(y + (u64)r1 * N + c, v0, v1);
            }
        }
    }
}

template <class O>
__device__ __forceinline__ void wgmma_gemm_body(const TmaDesc* tx, const TmaDesc* tw,
                                                const float* __restrict__ sx,
                                                const float* __restrict__ sw,
                                                const float* __restrict__ bias,
                                                typename O::raw* __restrict__ y, u32 M, u32 N,
                                                u32 K) {
    extern __shared__ __align__(1024) unsigned char wg_smem[];
    __shared__ __align__(8) u64 full_bar[WG_STAGES];
    __shared__ __align__(8) u64 empty_bar[WG_STAGES];
    // the host asks for STAGES * STAGE_BYTES + 1024 bytes: room to align the ring to 1024
    const u32 ring = (wg_smem_addr(wg_smem) + 1023u) & ~1023u;
    const u32 full0 = wg_smem_addr(full_bar);
    const u32 empty0 = wg_smem_addr(empty_bar);
    const u32 tiles_m = (M + WG_BM - 1) / WG_BM;
    const u32 tiles_n = (N + WG_BN - 1) / WG_BN;
    const u32 tiles = tiles_m * tiles_n;
    const u32 ktiles = (K + WG_BK - 1) / WG_BK;
    const u32 wg = threadIdx.x >> 7;

    if (threadIdx.x == 0) {
#pragma unroll
        for (int s = 0; s < WG_STAGES; ++s) {
            wg_mbar_init(full0 + 8 * s, 1);   // the producer's arrive + the TMA bytes
            wg_mbar_init(empty0 + 8 * s, 8);  // one arrive per consumer warp
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();

    if (wg == 2) {
        // producer warpgroup: gives registers to the consumers, one thread issues the loads
        asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
        if (threadIdx.x == 256) {
            asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<u64>(tx)) : "memory");
            asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<u64>(tw)) : "memory");
            u32 s = 0, phase = 0;
            for (u32 t = blockIdx.x; t < tiles; t += gridDim.x) {
                u32 tm, tn;
                wg_tile(t, tiles_m, tiles_n, tm, tn);
                for (u32 kt = 0; kt < ktiles; ++kt) {
                    // the first pass over the ring finds every stage free (parity 1 of a
                    // fresh barrier counts as complete)
                    wg_mbar_wait(empty0 + 8 * s, phase ^ 1u);
                    const u32 a = ring + s * WG_STAGE_BYTES;
                    wg_mbar_expect_tx(full0 + 8 * s, WG_STAGE_BYTES);
                    wg_tma_load(a, tx, (int)(kt * WG_BK), (int)(tm * WG_BM), full0 + 8 * s);
                    wg_tma_load(a + WG_A_BYTES, tw, (int)(kt * WG_BK), (int)(tn * WG_BN),
                                full0 + 8 * s);
                    if (++s == WG_STAGES) {
                        s = 0;
                        phase ^= 1u;
                    }
                }
            }
        }
        return;
    }

    // consumer warpgroups 0 and 1: rows wg * 64 .. wg * 64 + 63 of each 128 x 256 tile
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
    const u32 lane = threadIdx.x & 31u;
    int acc[128];
#pragma unroll
    for (int i = 0; i < 128; ++i) acc[i] = 0;
    u32 s = 0, phase = 0;
    for (u32 t = blockIdx.x; t < tiles; t += gridDim.x) {
        u32 tm, tn;
        wg_tile(t, tiles_m, tiles_n, tm, tn);
        u32 prev = 0;
        for (u32 kt = 0; kt < ktiles; ++kt) {
            wg_mbar_wait(full0 + 8 * s, phase);
            const u32 a = ring + s * WG_STAGE_BYTES + wg * (64 * WG_BK);
            const u64 da = wg_desc(a);
            const u64 db = wg_desc(ring + s * WG_STAGE_BYTES + WG_A_BYTES);
            wg_pin(acc);
            wg_fence();
#pragma unroll
            for (int kk = 0; kk < WG_BK / 32; ++kk) {
                // 32 bytes of K = 2 units of 16 bytes in the descriptors' start address
                wg_mma(acc, da + 2 * kk, db + 2 * kk, (kt != 0 || kk != 0) ? 1 : 0);
            }
            wg_commit();
            wg_pin(acc);
            // the previous stage's MMAs are done once at most this one's group is pending
            wg_wait<1>();
            if (kt > 0 && lane == 0) wg_mbar_arrive(empty0 + 8 * prev);
            prev = s;
            if (++s == WG_STAGES) {
                s = 0;
                phase ^= 1u;
            }
        }
        wg_wait<0>();
        wg_pin(acc);
        if (ktiles > 0 && lane == 0) wg_mbar_arrive(empty0 + 8 * prev);

        wg_epilogue<O>(acc, sx, sw, bias, y, M, N, tm * WG_BM + wg * 64, tn * WG_BN);
    }
}

// ---------------------------------------------------------------------------------------------
// v2: the same block (tile, ring, warpgroups, epilogue) in clusters of 2 CTAs along M that
// share W's tile through TMA multicast. The two CTAs of a cluster compute the vertically
// adjacent tiles (2 ct_m + rank, tn) of one 256 x 256 cluster tile, so they need the same
// 256 x 128-byte W box per stage: each CTA's producer loads its own 128-row X box and one
// 128-row half of the W box (rows rank * 128..), multicast into the same offset of both CTAs'
// rings. Per stage and SM that is 16 + 16 KiB out of L2 instead of 16 + 32: at int8 rates the
// v1 mainloop moves ~48 KiB per ~1000 tensor-core clocks per SM, about the L2's bandwidth.
// Barriers: full[s] (count 1: the own producer's arrive.expect_tx of the whole stage, 48 KiB,
// of which 16 KiB come from the peer's multicast, which may land before that expect_tx: the
// phase cannot complete without the own arrival); empty[s] (count 16: every consumer warp of
// BOTH CTAs arrives, lane 0 on the own barrier, lane 1 on the peer's through mapa, since the
// producer's multicast overwrites the stage in both). Both CTAs walk the same cluster tiles and
// k-steps, so every phase sees exactly 16 arrivals. A cluster barrier after the barrier init
// (no remote arrive or multicast before the peer's barriers exist) and before exit (no remote
// arrive into an exited CTA). v3: the same with clusters of 4 (each CTA loads a 64-row quarter
// of W's box; empty[s] counts the 32 consumer warps of the cluster, lane i arriving in CTA i). Ragged edges: a CTA whose tile row (or W half) lies wholly
// outside the matrix loads a clamped in-range box instead; rows >= M and columns >= N are
// masked in the epilogue, so those sums are never stored.
#define WG2_CLUSTER 2
#define WG3_CLUSTER 4

__device__ __forceinline__ u32 wg_cluster_rank() {
    u32 r;
    asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
    return r;
}

// The shared::cluster address of the same shared variable in CTA `rank` of the cluster.
__device__ __forceinline__ u32 wg_mapa(u32 addr, u32 rank) {
    u32 r;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(r) : "r"(addr), "r"(rank));
    return r;
}

// Arrive on an mbarrier of another CTA of the cluster (CUTLASS's ClusterBarrier::arrive(cta):
// the default .release.cta semantics; an explicit .release.cluster costs a MEMBAR.ALL.GPU per
// arrival, which would also wait for the previous epilogue's stores).
__device__ __forceinline__ void wg_mbar_arrive_cluster(u32 cluster_addr) {
    asm volatile("mbarrier.arrive.shared::cluster.b64 _, [%0];" ::"r"(cluster_addr) : "memory");
}

__device__ __forceinline__ void wg_cluster_sync() {
    asm volatile("barrier.cluster.arrive.release;\n\tbarrier.cluster.wait.acquire;" ::: "memory");
}

// 2-D TMA load of one box multicast to the CTAs of `mask`: the same shared offset `dst` and
// the mbarrier at the same offset `bar` in each of them.
__device__ __forceinline__ void wg_tma_load_mc(u32 dst, const TmaDesc* map, int c0, int c1,
                                               u32 bar, unsigned short mask) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
        ".multicast::cluster [%0], [%1, {%2, %3}], [%4], %5;" ::"r"(dst),
        "l"(reinterpret_cast<u64>(map)), "r"(c0), "r"(c1), "r"(bar), "h"(mask)
        : "memory");
}

// ---------------------------------------------------------------------------------------------
// v4: v2's cluster / multicast mainloop (clusters of 2 along M, W's box shared) with the
// epilogue written through shared memory and stored by the TMA unit, so that the consumers go
// back to the next tile's MMAs as soon as their dequantized values are in shared memory instead
// of issuing 64 scattered global stores each. Each consumer warpgroup owns a 32 KiB staging
// buffer (its 64 rows of the tile: 64 x 256 f16/bf16 in one pass, 64 x 256 f32 in two passes of
// 128 columns) laid out as four TMA boxes of 64 rows x 128 bytes in the 128-byte swizzle (box b
// at byte 8192 b, 16-byte chunk c of row r at chunk c ^ (r % 8): the warp's stores hit every
// bank once). Per pass: the warpgroup's leader (its thread 0, the only thread that issues or
// waits on its bulk groups) waits until the previous store has read the buffer
// (cp.async.bulk.wait_group.read 0; normally long done, a whole mainloop ago), named barrier
// 1 + wg (128 threads), every thread writes its values (dequant_body's expression, unchanged),
// fence.proxy.async.shared::cta (generic-proxy writes visible to the TMA unit), the same named
// barrier, then the leader issues the in-range boxes (cp.async.bulk.tensor ... bulk_group; TMA
// clips rows >= M and columns >= N itself) and commits the group without waiting for it. The
// ring drops to 3 stages of 48 KiB to make room: 144 + 64 KiB + 1 KiB of alignment = 209 KiB.
// A 16-bit output needs its row stride, 2 N bytes, to be a multiple of 16 for a tensor map:
// where N % 8 != 0 the host passes tma_y = 0 and the epilogue is v2's (registers to global).
#define WG4_CLUSTER 2
#define WG4_STAGES 3
#define WG4_OUT_BYTES 32768
#define WG4_BOX_BYTES 8192

__device__ __forceinline__ void wg_tma_store(const TmaDesc* map, int c0, int c1, u32 src) {
    asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%1, %2}], [%3];" ::"l"(
                     reinterpret_cast<u64>(map)),
                 "r"(c0), "r"(c1), "r"(src)
                 : "memory");
}
__device__ __forceinline__ void wg_bulk_commit() {
    asm volatile("cp.async.bulk.commit_group;" ::: "memory");
}
// The TMA unit has finished reading the shared memory of every committed bulk group.
__device__ __forceinline__ void wg_bulk_wait_read0() {
    asm volatile("cp.async.bulk.wait_group.read 0;" ::: "memory");
}
// Every committed bulk group has completed (its global writes performed).
__device__ __forceinline__ void wg_bulk_wait0() {
    asm volatile("cp.async.bulk.wait_group 0;" ::: "memory");
}
__device__ __forceinline__ void wg_fence_proxy_async_smem() {
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}
__device__ __forceinline__ void wg_named_sync(u32 id, u32 threads) {
    asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(threads) : "memory");
}

// Staging layout of one output type: PASSES over the 256 columns, BOX_COLS columns (128 bytes)
// per box, four boxes per pass; put() stores the pair (a, b) of row rl (0..63 of the
// warpgroup), register pair jj of the pass (columns 8 jj + 2 q, + 1 of the pass), q = lane % 4.
template <class O> struct Wg4Out;
template <> struct Wg4Out<F32> {
    static constexpr int PASSES = 2;
    static constexpr int BOX_COLS = 32;
    static __device__ __forceinline__ void put(u32 buf, u32 rl, u32 jj, u32 q, float a, float b) {
        // byte 4 (8 (jj % 4) + 2 q) of the row in box jj / 4
        const u32 chunk = 2u * (jj & 3u) + (q >> 1);
        const u32 addr =
            buf + (jj >> 2) * WG4_BOX_BYTES + rl * 128u + ((chunk ^ (rl & 7u)) << 4) + 8u * (q & 1u);
        asm volatile("st.shared.v2.f32 [%0], {%1, %2};" ::"r"(addr), "f"(a), "f"(b) : "memory");
    }
};
template <class H> struct Wg4OutHalf {
    static constexpr int PASSES = 1;
    static constexpr int BOX_COLS = 64;
    static __device__ __forceinline__ void put(u32 buf, u32 rl, u32 jj, u32 q, float a, float b) {
        // byte 2 (8 (jj % 8) + 2 q) of the row in box jj / 8
        const u32 addr =
            buf + (jj >> 3) * WG4_BOX_BYTES + rl * 128u + (((jj & 7u) ^ (rl & 7u)) << 4) + 4u * q;
        asm volatile("st.shared.u32 [%0], %1;" ::"r"(addr), "r"(H::pack2(a, b)) : "memory");
    }
};
template <> struct Wg4Out<F16> : Wg4OutHalf<F16> {};
template <> struct Wg4Out<BF16> : Wg4OutHalf<BF16> {};

// Epilogue of one consumer warpgroup through its staging buffer `buf` and the TMA store of Y
// (map `ty`, boxes of BOX_COLS x 64). Rows row0.. and columns col0.. of the output; the values
// are exactly wg_epilogue's. `leader`: this warpgroup's thread 0; `bar`: its named barrier.
template <class O>
__device__ __forceinline__ void wg4_epilogue(const int (&acc)[128], const float* __restrict__ sx,
                                             const float* __restrict__ sw,
                                             const float* __restrict__ bias, const TmaDesc* ty,
                                             u32 buf, u32 M, u32 N, u32 row0, u32 col0,
                                             bool leader, u32 bar) {
    typedef Wg4Out<O> S;
    constexpr int JP = (WG_BN / 8) / S::PASSES;  // register pairs per pass
    const u32 lane = threadIdx.x & 31u;
    const u32 warp = (threadIdx.x >> 5) & 3u;
    const u32 q = lane & 3u;
    const u32 rl0 = warp * 16 + (lane >> 2);
    const u32 rl1 = rl0 + 8;
    const float rs0 = row0 + rl0 < M ? __ldg(sx + row0 + rl0) : 0.0f;
    const float rs1 = row0 + rl1 < M ? __ldg(sx + row0 + rl1) : 0.0f;
#pragma unroll
    for (int h = 0; h < S::PASSES; ++h) {
        // the buffer is free once the previous store (last pass or last tile) has read it
        if (leader) wg_bulk_wait_read0();
        wg_named_sync(bar, 128);
#pragma unroll
        for (int jj = 0; jj < JP; ++jj) {
            const int j = h * JP + jj;
            const u32 c = col0 + 8 * j + 2 * q;
            float2 cs = make_float2(0.0f, 0.0f);
            float2 b = make_float2(0.0f, 0.0f);
            if (c < N) {
                cs = __ldg(reinterpret_cast<const float2*>(sw + c));
                if (bias != 0) b = __ldg(reinterpret_cast<const float2*>(bias + c));
            }
            // rows >= M and columns >= N are staged too (finite values) and clipped by the TMA
            float v0 = __fmul_rn(__int2float_rn(acc[4 * j]), __fmul_rn(rs0, cs.x));
            float v1 = __fmul_rn(__int2float_rn(acc[4 * j + 1]), __fmul_rn(rs0, cs.y));
            float v2 = __fmul_rn(__int2float_rn(acc[4 * j + 2]), __fmul_rn(rs1, cs.x));
            float v3 = __fmul_rn(__int2float_rn(acc[4 * j + 3]), __fmul_rn(rs1, cs.y));
            if (bias != 0) {
                v0 = __fadd_rn(v0, b.x);
                v1 = __fadd_rn(v1, b.y);
                v2 = __fadd_rn(v2, b.x);
                v3 = __fadd_rn(v3, b.y);
            }
            S::put(buf, rl0, (u32)jj, q, v0, v1);
            S::put(buf, rl1, (u32)jj, q, v2, v3);
        }
        wg_fence_proxy_async_smem();
        wg_named_sync(bar, 128);
        if (leader && row0 < M) {
#pragma unroll
            for (int bx = 0; bx < 4; ++bx) {
                const u32 c = col0 + (u32)(h * JP * 8 + bx * S::BOX_COLS);
                if (c < N) wg_tma_store(ty, (int)c, (int)row0, buf + bx * WG4_BOX_BYTES);
            }
            wg_bulk_commit();
        }
    }
}

// The cluster kernels v2 .. v4 in one body: CL CTAs per cluster along M sharing W's tile
// through TMA multicast (v2: 2, v3: 4, v4: 2), STAGES ring stages, and the epilogue EPI: 0
// registers to global (v2, v3), 1 v4's staging and TMA stores (where tma_y == 0, a 16-bit
// output whose row stride a tensor map cannot take, EPI 0's). Session 15 measured a v5 here
// (EPI 2: two 8 KiB slots per warpgroup, one box per pass, which left room for a 4th stage):
// bit-exact but 9-12 % slower than v4 at 4096^3 (more barrier and MIO stalls), so removed.
template <class O, int CL, int STAGES, int EPI>
__device__ __forceinline__ void wg_cluster_gemm(const TmaDesc* tx, const TmaDesc* tw,
                                                const TmaDesc* ty, const float* __restrict__ sx,
                                                const float* __restrict__ sw,
                                                const float* __restrict__ bias,
                                                typename O::raw* __restrict__ y, u32 M, u32 N,
                                                u32 K, u32 tma_y) {
    extern __shared__ __align__(1024) unsigned char wg_smem[];
    __shared__ __align__(8) u64 full_bar[STAGES];
    __shared__ __align__(8) u64 empty_bar[STAGES];
    // the ring's offset is the same in every CTA (same kernel, same static shared layout); v4's
    // staging follows it (1024-aligned: the 128-byte swizzle atom)
    const u32 ring = (wg_smem_addr(wg_smem) + 1023u) & ~1023u;
    const u32 full0 = wg_smem_addr(full_bar);
    const u32 empty0 = wg_smem_addr(empty_bar);
    const u32 rank = wg_cluster_rank();
    constexpr u32 GROUP = WG_GROUP_M / CL;  // cluster rows per group: 8 tile rows
    constexpr u32 B_PART = WG_B_BYTES / CL;
    const u32 cluster = blockIdx.x / CL;
    const u32 clusters = gridDim.x / CL;
    const u32 tiles_m = (M + WG_BM - 1) / WG_BM;
    const u32 tiles_n = (N + WG_BN - 1) / WG_BN;
    const u32 ctiles_m = (tiles_m + CL - 1) / CL;
    const u32 ctiles = ctiles_m * tiles_n;
    const u32 ktiles = (K + WG_BK - 1) / WG_BK;
    const u32 wg = threadIdx.x >> 7;

    if (threadIdx.x == 0) {
#pragma unroll
        for (int s = 0; s < STAGES; ++s) {
            wg_mbar_init(full0 + 8 * s, 1);        // own producer + 48 KiB of TMA
            wg_mbar_init(empty0 + 8 * s, 8 * CL);  // every consumer warp of the cluster
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    wg_cluster_sync();

    if (wg == 2) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
        if (threadIdx.x == 256) {
            asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<u64>(tx)) : "memory");
            asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<u64>(tw)) : "memory");
            u32 s = 0, phase = 0;
            for (u32 t = cluster; t < ctiles; t += clusters) {
                u32 ctm, tn;
                wg_tile<GROUP>(t, ctiles_m, tiles_n, ctm, tn);
                // clamped into the matrix: a wholly outside box is never asked of the TMA unit
                const u32 tm = min(ctm * CL + rank, tiles_m - 1);
                u32 wrow = tn * WG_BN + rank * (WG_BN / CL);
                if (wrow >= N) wrow = tn * WG_BN;
                for (u32 kt = 0; kt < ktiles; ++kt) {
                    wg_mbar_wait(empty0 + 8 * s, phase ^ 1u);
                    const u32 a = ring + s * WG_STAGE_BYTES;
                    wg_mbar_expect_tx(full0 + 8 * s, WG_STAGE_BYTES);
                    wg_tma_load(a, tx, (int)(kt * WG_BK), (int)(tm * WG_BM), full0 + 8 * s);
                    wg_tma_load_mc(a + WG_A_BYTES + rank * B_PART, tw, (int)(kt * WG_BK),
                                   (int)wrow, full0 + 8 * s, (unsigned short)((1u << CL) - 1u));
                    if (++s == STAGES) {
                        s = 0;
                        phase ^= 1u;
                    }
                }
            }
        }
        __syncwarp();
    } else {
        asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
        const u32 lane = threadIdx.x & 31u;
        const bool leader = (threadIdx.x & 127u) == 0;
        // v4: a 32 KiB buffer per warpgroup
        const u32 buf = ring + STAGES * WG_STAGE_BYTES + wg * WG4_OUT_BYTES;
        if (EPI > 0 && leader && tma_y) {
            asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<u64>(ty)) : "memory");
        }
        // lane i < CL releases a stage in CTA i of the cluster (whose multicast fills a part
        // of it in every CTA), through its shared::cluster address
        const u32 empty_cl = wg_mapa(empty0, lane < (u32)CL ? lane : 0u);
        int acc[128];
#pragma unroll
        for (int i = 0; i < 128; ++i) acc[i] = 0;
        u32 s = 0, phase = 0;
        for (u32 t = cluster; t < ctiles; t += clusters) {
            u32 ctm, tn;
            wg_tile<GROUP>(t, ctiles_m, tiles_n, ctm, tn);
            const u32 tm = ctm * CL + rank;
            u32 prev = 0;
            for (u32 kt = 0; kt < ktiles; ++kt) {
                wg_mbar_wait(full0 + 8 * s, phase);
                const u64 da = wg_desc(ring + s * WG_STAGE_BYTES + wg * (64 * WG_BK));
                const u64 db = wg_desc(ring + s * WG_STAGE_BYTES + WG_A_BYTES);
                wg_pin(acc);
                wg_fence();
#pragma unroll
                for (int kk = 0; kk < WG_BK / 32; ++kk) {
                    // 32 bytes of K = 2 units of 16 bytes in the descriptors' start address
                    wg_mma(acc, da + 2 * kk, db + 2 * kk, (kt != 0 || kk != 0) ? 1 : 0);
                }
                wg_commit();
                wg_pin(acc);
                // the previous stage's MMAs are done once at most this one's group is pending
                wg_wait<1>();
                if (kt > 0 && lane < (u32)CL) wg_mbar_arrive_cluster(empty_cl + 8 * prev);
                prev = s;
                if (++s == STAGES) {
                    s = 0;
                    phase ^= 1u;
                }
            }
            wg_wait<0>();
            wg_pin(acc);
            if (ktiles > 0 && lane < (u32)CL) wg_mbar_arrive_cluster(empty_cl + 8 * prev);
            // a tile row beyond M (tiles_m not a multiple of CL) is masked whole by the epilogue
            const u32 row0 = tm * WG_BM + wg * 64;
            if (EPI == 1 && tma_y) {
                wg4_epilogue<O>(acc, sx, sw, bias, ty, buf, M, N, row0, tn * WG_BN, leader,
                                1u + wg);
            } else {
                wg_epilogue<O>(acc, sx, sw, bias, y, M, N, row0, tn * WG_BN);
            }
        }
        // the last stores' shared-memory reads (and global writes) are done before exit
        if (EPI > 0 && leader) wg_bulk_wait0();
    }
    // no CTA leaves while its peer may still arrive on its barriers
    wg_cluster_sync();
}

// Entry points: (tensor map of X [M, K], tensor map of W [N, K], sx [M], sw [N], bias [N] or
// null, y [M, N], M, N, K); block WG_THREADS, dynamic shared memory
// WG_STAGES * WG_STAGE_BYTES + 1024, grid at most one block per SM (persistent).
#define EAI_WGMMA(NAME, O)                                                                    \
    extern "C" __global__ void __launch_bounds__(WG_THREADS, 1)                               \
        NAME(const __grid_constant__ TmaDesc tx, const __grid_constant__ TmaDesc tw,          \
             const float* __restrict__ sx, const float* __restrict__ sw,                      \
             const float* __restrict__ bias, O::raw* __restrict__ y, u32 M, u32 N, u32 K) {  \
        wgmma_gemm_body<O>(&tx, &tw, sx, sw, bias, y, M, N, K);                               \
    }
EAI_WGMMA(gemm_wgmma_f32, F32)
EAI_WGMMA(gemm_wgmma_f16, F16)
EAI_WGMMA(gemm_wgmma_bf16, BF16)

// v2 entry points: the same parameters (W's tensor map with boxes of WG_BN / 2 rows), grid a
// multiple of 2 (clusters of 2 along x), at most one cluster per 2 SMs (persistent).
#define EAI_WGMMA2(NAME, O)                                                                   \
    extern "C" __global__ void __cluster_dims__(WG2_CLUSTER, 1, 1)                            \
        __launch_bounds__(WG_THREADS, 1)                                                      \
        NAME(const __grid_constant__ TmaDesc tx, const __grid_constant__ TmaDesc tw,          \
             const float* __restrict__ sx, const float* __restrict__ sw,                      \
             const float* __restrict__ bias, O::raw* __restrict__ y, u32 M, u32 N, u32 K) {  \
        wg_cluster_gemm<O, WG2_CLUSTER, WG_STAGES, 0>(&tx, &tw, 0, sx, sw, bias, y, M, N, K, 0);                 \
    }
EAI_WGMMA2(gemm_wgmma2_f32, F32)
EAI_WGMMA2(gemm_wgmma2_f16, F16)
EAI_WGMMA2(gemm_wgmma2_bf16, BF16)

// v3 entry points: as v2 in clusters of 4 along M (W's map with boxes of WG_BN / 4 rows).
#define EAI_WGMMA3(NAME, O)                                                                   \
    extern "C" __global__ void __cluster_dims__(WG3_CLUSTER, 1, 1)                            \
        __launch_bounds__(WG_THREADS, 1)                                                      \
        NAME(const __grid_constant__ TmaDesc tx, const __grid_constant__ TmaDesc tw,          \
             const float* __restrict__ sx, const float* __restrict__ sw,                      \
             const float* __restrict__ bias, O::raw* __restrict__ y, u32 M, u32 N, u32 K) {  \
        wg_cluster_gemm<O, WG3_CLUSTER, WG_STAGES, 0>(&tx, &tw, 0, sx, sw, bias, y, M, N, K, 0);                 \
    }
EAI_WGMMA3(gemm_wgmma3_f32, F32)
EAI_WGMMA3(gemm_wgmma3_f16, F16)
EAI_WGMMA3(gemm_wgmma3_bf16, BF16)

// v4 entry points: (X map, W map (boxes of WG_BN / 2 rows), Y map (boxes of 128 bytes x 64
// rows, the output type, swizzle 128 B; unused where tma_y == 0), sx, sw, bias or null, y,
// M, N, K, tma_y); dynamic shared memory WG4_STAGES * WG_STAGE_BYTES + 2 * WG4_OUT_BYTES + 1024,
// grid a multiple of 2 (clusters of 2 along x), at most the co-resident clusters (persistent).
#define EAI_WGMMA4(NAME, O)                                                                   \
    extern "C" __global__ void __cluster_dims__(WG4_CLUSTER, 1, 1)                            \
        __launch_bounds__(WG_THREADS, 1)                                                      \
        NAME(const __grid_constant__ TmaDesc tx, const __grid_constant__ TmaDesc tw,          \
             const __grid_constant__ TmaDesc ty, const float* __restrict__ sx,                \
             const float* __restrict__ sw, const float* __restrict__ bias,                    \
             O::raw* __restrict__ y, u32 M, u32 N, u32 K, u32 tma_y) {                       \
        wg_cluster_gemm<O, WG4_CLUSTER, WG4_STAGES, 1>(&tx, &tw, &ty, sx, sw, bias, y, M, N, K, tma_y);                  \
    }
EAI_WGMMA4(gemm_wgmma4_f32, F32)
EAI_WGMMA4(gemm_wgmma4_f16, F16)
EAI_WGMMA4(gemm_wgmma4_bf16, BF16)

