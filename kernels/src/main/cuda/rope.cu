// rope.cu: half-split rotary position embedding, the CUDA side of dev.jomni.tensor.ops.Rope.
//   rope_fwd / _f64 (RopeArgs {total, h, t, d, tableBatch, transpose = 0, x, cos, sin, out}): with p = d/2,
//     out[j] = x[j]·cos[j] − x[j+p]·sin[j] (j < p), x[j]·cos[j] + x[j−p]·sin[j] (j ≥ p);
//     transpose = 1 (backward, x = dy, out = dx): dx[j] = dy[j]·cos[j] + dy[j+p]·sin[j+p] (j < p),
//     dy[j]·cos[j] − dy[j−p]·sin[j−p] (j ≥ p).
//   Each product and the sum rounded to the dtype (transformers computes in x's dtype, no upcast): the
//   arithmetic is f32 (f64) with explicit _rn intrinsics, so no multiply-add is fused and the result is
//   bit-identical to the CPU reference (a product or sum of two bf16/f32 values rounds the same either way).
//   x, out [B, h, T, d] contiguous; cos, sin [tableBatch, T, d] with tableBatch = B or 1 (shared).
//   A thread per element, grid-stride, block 256.
// Launcher: dev.jomni.cuda.CudaRope. Reference: dev.jomni.tensor.cpu.CpuRope.
#include "rows.cuh"

struct RopeArgs {         // 368 bytes
  long long total, h, t, d, tableBatch;
  int transpose, pad;
  Operand x, cos, sin, out;
};
static_assert(sizeof(RopeArgs) == 368, "RopeArgs layout (CudaRope writes it)");

__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }

template <typename T>
__device__ __forceinline__ void rotate(const RopeArgs& p) {
  const long long d = p.d, half = d / 2, step = (long long)gridDim.x * blockDim.x;
  const int type = p.out.dtype;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < p.total; i += step) {
    const long long row = i / d, j = i - row * d;                 // row = (b, h, t)
    const long long b = row / (p.h * p.t), ti = row % p.t;
    const long long table = ((p.tableBatch == 1 ? 0 : b) * p.t + ti) * d;
    const bool low = j < half;
    const long long partner = low ? j + half : j - half;
    const T v = load<T>(p.x, i), w = load<T>(p.x, row * d + partner);
    // forward: sin at j, −partner in the low half; transpose: sin at the partner, −partner in the high half
    const T s = load<T>(p.sin, table + (p.transpose ? partner : j));
    const bool negative = p.transpose ? !low : low;
    const T rot = round_to<T>(type, mul_rn(negative ? -w : w, s));
    const T prod = round_to<T>(type, mul_rn(v, load<T>(p.cos, table + j)));
    store<T>(p.out, i, add_rn(prod, rot));
  }
}

extern "C" __global__ void __launch_bounds__(ROW_BLOCK) rope_fwd(const RopeArgs p) { rotate<float>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) rope_fwd_f64(const RopeArgs p) { rotate<double>(p); }
