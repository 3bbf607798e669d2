// cross_entropy.cu: per-row cross-entropy, the CUDA side of dev.jomni.tensor.ops.CrossEntropy.
//   ce_fwd / _f64 (CeArgs {n, c, ignore, logits, targets, lse, rowLoss, -, error, op}): per row i of
//     logits [n, c], m = max (NaN propagates), lse_i = m + log Σ exp(x − m) (log 0 = −∞ when m = −∞),
//     rowLoss_i = lse_i − x[i, t_i]; both 0 where t_i = ignore.
//   ce_bwd / _f64 (CeArgs {n, c, ignore, logits, targets, lse, scale, dLogits, error, op}):
//     dLogits[i, j] = (exp(x_ij − lse_i) − [j = t_i])·scale on valid rows, 0 on ignored ones; scale [] is
//     read here, on the device (dLoss / #valid: no host read).
//   A target outside [0, c) that is not ignore is recorded in the deferred index error (rows.cuh; raised
//   naming the op, position and value at the host's next synchronisation) and its row's outputs are NaN;
//   the logits are never read at it, so the context does not fault.
//   Statistics in f32 (f64 for _f64); logits and dLogits any floating dtype, targets I64 (or I32), all
//   contiguous. Rows of c ≤ 1024 go to the _warp kernels (a warp per row, 8 rows per block of 256),
//   longer rows to a block of 256 per row; fixed-order sums (rows.cuh).
// Launcher: dev.jomni.cuda.CudaCrossEntropy. Reference: dev.jomni.tensor.cpu.CpuCrossEntropy.
#include "rows.cuh"

struct CeArgs {           // 440 bytes
  long long n, c, ignore;
  Operand logits, targets, a, b, d;   // forward: lse, rowLoss, (unused); backward: lse, scale, dLogits
  IndexError* error;
  int op, pad;
};
static_assert(sizeof(CeArgs) == 440, "CeArgs layout (CudaCrossEntropy writes it)");

template <int GROUP>
__device__ __forceinline__ bool row_of(long long rows, long long& row, int& lane) {
  row = GROUP == WARP ? (long long)blockIdx.x * (ROW_BLOCK / WARP) + threadIdx.x / WARP : (long long)blockIdx.x;
  lane = GROUP == WARP ? threadIdx.x & (WARP - 1) : threadIdx.x;
  return row < rows;         // uniform over the group, so its reductions stay in step
}

/** The row's target, or −1 after recording it where it is out of range and not ignore (also −1 for ignore). */
__device__ __forceinline__ long long target_of(const CeArgs& p, long long row, int lane, bool& ignored) {
  const long long t = load_index(p.targets, row);
  ignored = t == p.ignore;
  if (ignored) return -1;
  if (t < 0 || t >= p.c) {
    if (lane == 0) record_index_error(p.error, p.op, row, t, p.c);
    return -1;
  }
  return t;
}

template <int GROUP, typename T>
__device__ __forceinline__ void fwd(const CeArgs& p) {
  long long row;
  int lane;
  if (!row_of<GROUP>(p.n, row, lane)) return;
  const Operand &x = p.logits, &lse = p.a, &loss = p.b;
  bool ignored;
  const long long t = target_of(p, row, lane, ignored);
  if (t < 0) {
    if (lane == 0) {
      const T v = ignored ? (T)0 : (T)NAN;
      store<T>(lse, row, v);
      store<T>(loss, row, v);
    }
    return;
  }
  const long long c = p.c, base = row * c;
  T m = -INFINITY;
  for (long long j = lane; j < c; j += GROUP) m = MaxOp()(m, load<T>(x, base + j));
  m = group_reduce<GROUP>(m, MaxOp());
  T s = 0;
  if (m != -INFINITY)                                 // uniform: every thread has the same m
    for (long long j = lane; j < c; j += GROUP) s += exp(load<T>(x, base + j) - m);
  s = group_reduce<GROUP>(s, SumOp());
  if (lane == 0) {
    const T l = m + log(s);
    store<T>(lse, row, l);
    store<T>(loss, row, l - load<T>(x, base + t));
  }
}

template <int GROUP, typename T>
__device__ __forceinline__ void bwd(const CeArgs& p) {
  long long row;
  int lane;
  if (!row_of<GROUP>(p.n, row, lane)) return;
  const Operand &x = p.logits, &lse = p.a, &scale = p.b, &dx = p.d;
  const long long c = p.c, base = row * c;
  bool ignored;
  const long long t = target_of(p, row, lane, ignored);
  if (t < 0) {
    const T v = ignored ? (T)0 : (T)NAN;
    for (long long j = lane; j < c; j += GROUP) store<T>(dx, base + j, v);
    return;
  }
  const T k = load<T>(scale, 0), l = load<T>(lse, row);
  for (long long j = lane; j < c; j += GROUP) {
    const T e = exp(load<T>(x, base + j) - l);
    store<T>(dx, base + j, (j == t ? e - (T)1 : e) * k);
  }
}

extern "C" __global__ void __launch_bounds__(ROW_BLOCK) ce_fwd(const CeArgs p) { fwd<ROW_BLOCK, float>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) ce_fwd_f64(const CeArgs p) { fwd<ROW_BLOCK, double>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) ce_fwd_warp(const CeArgs p) { fwd<WARP, float>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) ce_fwd_warp_f64(const CeArgs p) { fwd<WARP, double>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) ce_bwd(const CeArgs p) { bwd<ROW_BLOCK, float>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) ce_bwd_f64(const CeArgs p) { bwd<ROW_BLOCK, double>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) ce_bwd_warp(const CeArgs p) { bwd<WARP, float>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) ce_bwd_warp_f64(const CeArgs p) { bwd<WARP, double>(p); }
