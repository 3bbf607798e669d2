// softmax.cu: softmax and log-softmax over rows, the CUDA side of dev.jomni.tensor.ops.Softmax.
//   softmax_fwd / _f64 (SoftmaxArgs {rows, n, log, x, y}): per row of x [rows, n], m = max (NaN propagates),
//     s = Σ exp(x − m); y = exp(x − m) / s, or (log) y = (x − m) − log s. Computed in f32 (f64 for _f64),
//     x and y of any floating dtype (bf16, f16, f32; f64), y rounded once to its dtype.
//   softmax_bwd / _f64 (SoftmaxArgs {rows, n, log, dy, y, dx}): softmax dx = y·(dy − Σ dy·y);
//     log-softmax dx = dy − exp(y)·Σ dy; sums in f32 (f64).
//   Rows of n ≤ 1024 go to the _warp kernels (a warp per row, 8 rows per block of 256); longer rows to the
//   block kernels (a block of 256 per row). Sums in a fixed order (rows.cuh), no atomics.
//   Operands contiguous [rows, n] row-major.
// Launcher: dev.jomni.cuda.CudaSoftmax. Reference: dev.jomni.tensor.cpu.CpuSoftmax.
#include "rows.cuh"

struct SoftmaxArgs {      // 264 bytes
  long long rows, n;
  int log, pad;
  Operand a, b, c;        // forward: x, y, (unused); backward: dy, y, dx
};
static_assert(sizeof(SoftmaxArgs) == 264, "SoftmaxArgs layout (CudaSoftmax writes it)");

/** The row this thread's group owns and the thread's lane in it; false when past the last row. */
template <int GROUP>
__device__ __forceinline__ bool row_of(const SoftmaxArgs& p, long long& row, int& lane) {
  if (GROUP == WARP) {
    row = (long long)blockIdx.x * (ROW_BLOCK / WARP) + threadIdx.x / WARP;
    lane = threadIdx.x & (WARP - 1);
  } else {
    row = blockIdx.x;
    lane = threadIdx.x;
  }
  return row < p.rows;       // uniform over the group (a warp, or the block), so its reductions stay in step
}

template <int GROUP, typename T>
__device__ __forceinline__ void fwd(const SoftmaxArgs& p) {
  long long row;
  int lane;
  if (!row_of<GROUP>(p, row, lane)) return;
  const long long n = p.n, base = row * n;
  const Operand &x = p.a, &y = p.b;
  T m = -INFINITY;
  for (long long j = lane; j < n; j += GROUP) m = MaxOp()(m, load<T>(x, base + j));
  m = group_reduce<GROUP>(m, MaxOp());
  T s = 0;
  for (long long j = lane; j < n; j += GROUP) s += exp(load<T>(x, base + j) - m);
  s = group_reduce<GROUP>(s, SumOp());
  if (p.log) {
    const T ls = log(s);
    for (long long j = lane; j < n; j += GROUP) store<T>(y, base + j, (load<T>(x, base + j) - m) - ls);
  } else {
    for (long long j = lane; j < n; j += GROUP) store<T>(y, base + j, exp(load<T>(x, base + j) - m) / s);
  }
}

template <int GROUP, typename T>
__device__ __forceinline__ void bwd(const SoftmaxArgs& p) {
  long long row;
  int lane;
  if (!row_of<GROUP>(p, row, lane)) return;
  const long long n = p.n, base = row * n;
  const Operand &dy = p.a, &y = p.b, &dx = p.c;
  T s = 0;
  if (p.log)
    for (long long j = lane; j < n; j += GROUP) s += load<T>(dy, base + j);
  else
    for (long long j = lane; j < n; j += GROUP) s += load<T>(dy, base + j) * load<T>(y, base + j);
  s = group_reduce<GROUP>(s, SumOp());
  if (p.log)
    for (long long j = lane; j < n; j += GROUP) store<T>(dx, base + j, load<T>(dy, base + j) - exp(load<T>(y, base + j)) * s);
  else
    for (long long j = lane; j < n; j += GROUP) store<T>(dx, base + j, load<T>(y, base + j) * (load<T>(dy, base + j) - s));
}

extern "C" __global__ void __launch_bounds__(ROW_BLOCK) softmax_fwd(const SoftmaxArgs p) { fwd<ROW_BLOCK, float>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) softmax_fwd_f64(const SoftmaxArgs p) { fwd<ROW_BLOCK, double>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) softmax_fwd_warp(const SoftmaxArgs p) { fwd<WARP, float>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) softmax_fwd_warp_f64(const SoftmaxArgs p) { fwd<WARP, double>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) softmax_bwd(const SoftmaxArgs p) { bwd<ROW_BLOCK, float>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) softmax_bwd_f64(const SoftmaxArgs p) { bwd<ROW_BLOCK, double>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) softmax_bwd_warp(const SoftmaxArgs p) { bwd<WARP, float>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) softmax_bwd_warp_f64(const SoftmaxArgs p) { bwd<WARP, double>(p); }
