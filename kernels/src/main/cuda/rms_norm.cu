// rms_norm.cu: RMSNorm over the last axis, the CUDA side of dev.jomni.tensor.ops.RmsNorm.
//   rms_norm_fwd / rms_norm_fwd_f64(RmsArgs {rows, n, eps, x, w, y, rstd}): per row of x [rows, n]
//     r = rsqrt(mean(x²) + eps) (stored in rstd [rows], f32; f64 for the _f64 variant), y = w · cast_x(x · r)
//     (x·r rounded to x's dtype first, as transformers' hidden.to(input_dtype) * weight and CpuRmsNorm).
//     x, w, y any floating dtype (bf16, f16, f32 in rms_norm_fwd; f64 in _f64); statistics in float (double).
//     One block of 256 per row: each thread sums a strided share of the row, partials added in a fixed
//     tree in shared memory (no atomics: bits do not depend on scheduling).
//   rms_norm_bwd_dx / _f64(RmsArgs {rows, n, 0, dy, w, dx, rstd, x}): dx = r·g − x·r³·mean(g·x), g = dy·w;
//     one block per row as above.
//   rms_norm_bwd_dw / _f64(RmsArgs {rows, n, 0, dy, x, dw, rstd}): dw[j] = Σ_rows dy · cast_x(x · r), one
//     thread per column walking the rows in order; block 256, grid = ceil(n / 256).
//   Operands contiguous: x, y, dy, dx [rows, n] row-major, w, dw [n], rstd [rows].
// Launcher: dev.jomni.cuda.CudaRmsNorm. Reference: dev.jomni.tensor.cpu.CpuRmsNorm.
#include "tensor.cuh"

constexpr int THREADS = 256;

struct RmsArgs {          // 424 bytes
  long long rows, n;
  double eps;
  Operand a, b, c, d, e;  // forward: x, w, y, rstd, (unused); dx: dy, w, dx, rstd, x; dw: dy, x, dw, rstd, (unused)
};
static_assert(sizeof(RmsArgs) == 424, "RmsArgs layout (CudaRmsNorm writes it)");

/** v rounded to a storage dtype and back (what storing then loading would give). */
template <typename T>
__device__ __forceinline__ T round_to(int dtype, T v) {
  switch (dtype) {
    case DT_BF16: return (T)__bfloat162float(__float2bfloat16_rn((float)v));
    case DT_F16: return (T)__half2float(__float2half_rn((float)v));
    case DT_F32: return (T)(float)v;
    default: return v;
  }
}

/** The sum over the block of each thread's v, in a fixed tree; every thread gets it. */
template <typename T>
__device__ __forceinline__ T block_sum(T v) {
  __shared__ T partial[THREADS];
  partial[threadIdx.x] = v;
  __syncthreads();
  for (int w = THREADS / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) partial[threadIdx.x] += partial[threadIdx.x + w];
    __syncthreads();
  }
  T s = partial[0];
  __syncthreads();
  return s;
}

template <typename T>
__device__ __forceinline__ void fwd(const RmsArgs& p) {
  const long long row = blockIdx.x, n = p.n;
  const Operand &x = p.a, &w = p.b, &y = p.c, &rstd = p.d;
  T ss = 0;
  for (long long j = threadIdx.x; j < n; j += THREADS) {
    T v = load<T>(x, row * n + j);
    ss += v * v;
  }
  ss = block_sum(ss);
  T r = (T)1 / sqrt(ss / (T)n + (T)p.eps);
  for (long long j = threadIdx.x; j < n; j += THREADS)
    store<T>(y, row * n + j, load<T>(w, j) * round_to<T>(x.dtype, load<T>(x, row * n + j) * r));
  if (threadIdx.x == 0) store<T>(rstd, row, r);
}

template <typename T>
__device__ __forceinline__ void bwd_dx(const RmsArgs& p) {
  const long long row = blockIdx.x, n = p.n;
  const Operand &dy = p.a, &w = p.b, &dx = p.c, &rstd = p.d, &x = p.e;
  T dot = 0;
  for (long long j = threadIdx.x; j < n; j += THREADS) dot += load<T>(dy, row * n + j) * load<T>(w, j) * load<T>(x, row * n + j);
  dot = block_sum(dot);
  const T r = load<T>(rstd, row), coef = r * r * r * dot / (T)n;
  for (long long j = threadIdx.x; j < n; j += THREADS)
    store<T>(dx, row * n + j, r * load<T>(dy, row * n + j) * load<T>(w, j) - load<T>(x, row * n + j) * coef);
}

template <typename T>
__device__ __forceinline__ void bwd_dw(const RmsArgs& p) {
  const long long j = (long long)blockIdx.x * THREADS + threadIdx.x, n = p.n;
  if (j >= n) return;
  const Operand &dy = p.a, &x = p.b, &dw = p.c, &rstd = p.d;
  T acc = 0;
  for (long long row = 0; row < p.rows; row++)
    acc += load<T>(dy, row * n + j) * round_to<T>(x.dtype, load<T>(x, row * n + j) * load<T>(rstd, row));
  store<T>(dw, j, acc);
}

extern "C" __global__ void __launch_bounds__(THREADS) rms_norm_fwd(const RmsArgs p) { fwd<float>(p); }
extern "C" __global__ void __launch_bounds__(THREADS) rms_norm_fwd_f64(const RmsArgs p) { fwd<double>(p); }
extern "C" __global__ void __launch_bounds__(THREADS) rms_norm_bwd_dx(const RmsArgs p) { bwd_dx<float>(p); }
extern "C" __global__ void __launch_bounds__(THREADS) rms_norm_bwd_dx_f64(const RmsArgs p) { bwd_dx<double>(p); }
extern "C" __global__ void __launch_bounds__(THREADS) rms_norm_bwd_dw(const RmsArgs p) { bwd_dw<float>(p); }
extern "C" __global__ void __launch_bounds__(THREADS) rms_norm_bwd_dw_f64(const RmsArgs p) { bwd_dw<double>(p); }
