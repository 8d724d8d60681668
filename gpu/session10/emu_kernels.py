"""Host emulation of model.cu's `quant_global` and `dequant_out` (session 10, no device time
left to run them on a GPU): their text is compiled as C++ with a shim for CUDA's built-ins, each
launched over every (block, thread) in turn, and compared bit for bit with a plain reference —
four-at-a-time and scalar paths (k, n not multiples of 4), row strides ldy = n, n + 4, n + 1,
write and add, grids of 1 block to more blocks than work. Neither kernel uses shared memory or
warp operations, so running threads one after another is faithful. Run from the repo root:

    python3 gpu/session10/emu_kernels.py   # needs g++; prints "bad 0" when all match
"""
import os
import subprocess
import sys
import tempfile

src = open("crates/eai-model/kernels/model.cu").read()


def grab(start, end_marker="\n}\n"):
    i = src.index(start)
    j = src.index(end_marker, i) + len(end_marker)
    return src[i:j]


parts = [
    grab("__device__ __forceinline__ float q8_scale"),
    grab("__device__ __forceinline__ i8 q8_code"),
    grab("struct F32 {", "\n};\n"),
    grab('extern "C" __global__ void quant_global'),
    grab('extern "C" __global__ void dequant_out'),
]
SHIM = r"""
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <vector>
typedef unsigned short u16; typedef unsigned int u32; typedef unsigned long long u64; typedef signed char i8;
struct dim3_ { u32 x = 0, y = 0, z = 0; };
static dim3_ blockIdx, threadIdx, blockDim, gridDim;
#define __device__
#define __global__
#define __forceinline__ inline
#define __restrict__
struct float4 { float x, y, z, w; }; struct int4 { int x, y, z, w; }; struct char4 { signed char x, y, z, w; };
static inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
static inline float __uint_as_float(u32 u) { float f; memcpy(&f, &u, 4); return f; }
static inline u32 __float_as_uint(float f) { u32 u; memcpy(&u, &f, 4); return u; }
"""
MAIN = r"""
template <class F> void launch(u32 gx, u32 gy, u32 bx, F f) {
  gridDim.x = gx; gridDim.y = gy; blockDim.x = bx;
  for (u32 y = 0; y < gy; y++) for (u32 x = 0; x < gx; x++) for (u32 t = 0; t < bx; t++) {
    blockIdx.x = x; blockIdx.y = y; threadIdx.x = t; f(); } }
int main() { int bad = 0; srand(7);
  for (u32 k : {576u, 322u, 7u}) for (u32 m : {1u, 5u, 33u}) {
    u64 n = (u64)m * k; std::vector<float> x(n); for (auto& v : x) v = (rand() / (float)RAND_MAX - 0.5f) * 8;
    float amax = 0; for (auto v : x) amax = fmaxf(amax, fabsf(v)); u32 slot = __float_as_uint(amax);
    for (u32 blocks : {1u, 3u, 1000u}) {
      std::vector<i8> q(n + 8, 99); std::vector<float> sx(m, -1);
      launch(blocks, 1, 256, [&] { quant_global(x.data(), n, m, &slot, q.data(), sx.data()); });
      float s = q8_scale(amax), qi = 1.0f / s;
      for (u64 i = 0; i < n; i++) if (q[i] != q8_code(x[i], qi)) { bad++; printf("quant_global k=%u m=%u\n", k, m); break; }
      for (u32 r = 0; r < m; r++) if (sx[r] != s) { bad++; break; }
      if (q[n] != 99) bad++;
    } }
  for (u32 n : {576u, 322u, 7u, 3072u}) for (u32 m : {1u, 5u, 33u}) for (u32 ldy : {n, n + 4, n + 1}) for (int add : {0, 1}) {
    std::vector<int> acc((u64)m * n); for (auto& v : acc) v = rand() % 200001 - 100000;
    std::vector<float> sx(m), sw(n); for (auto& v : sx) v = rand() / (float)RAND_MAX; for (auto& v : sw) v = rand() / (float)RAND_MAX;
    std::vector<float> y((u64)m * ldy + 4); for (auto& v : y) v = rand() / (float)RAND_MAX;
    std::vector<float> want = y;
    for (u32 r = 0; r < m; r++) for (u32 c = 0; c < n; c++) { float v = (float)acc[(u64)r * n + c] * (sx[r] * sw[c]);
      float* o = &want[(u64)r * ldy + c]; *o = add ? *o + v : v; }
    for (u32 gy : {(n + 511) / 512, 1u}) { std::vector<float> yy = y;
      launch(m, gy, 128, [&] { dequant_out(acc.data(), sx.data(), sw.data(), yy.data(), m, n, ldy, add); });
      if (memcmp(yy.data(), want.data(), want.size() * 4)) { bad++; printf("dequant_out n=%u m=%u ldy=%u add=%d\n", n, m, ldy, add); } } }
  printf("bad %d\n", bad); return bad != 0; }
"""
code = SHIM + "\n".join(p.replace('extern "C" ', "") for p in parts) + MAIN
with tempfile.TemporaryDirectory() as d:
    cpp, exe = os.path.join(d, "emu.cpp"), os.path.join(d, "emu")
    open(cpp, "w").write(code)
    subprocess.run(["g++", "-O1", "-std=c++17", cpp, "-o", exe], check=True)
    sys.exit(subprocess.run([exe]).returncode)
