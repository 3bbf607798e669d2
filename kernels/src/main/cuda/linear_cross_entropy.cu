// linear_cross_entropy.cu: the per-chunk kernels of the fused linear cross-entropy, the CUDA side of
//   dev.jomni.tensor.ops.LinearCrossEntropy. The launcher (CudaLinearCrossEntropy) walks token chunks × vocabulary
//   chunks on the host (shapes only), computes each logit chunk x [len, width] = hidden_chunk · W_chunkᵀ with
//   cuBLASLt (f32 output and accumulation; f64 for f64), and calls:
//   lce_online / _f64 (LceArgs {len, width, v0, ignore, vocab, logits, targets, m, s, picked}): per token row i
//     of the chunk whose target is not ignore: the online log-sum-exp over vocabulary chunks in order,
//     next = max(m_i, max_j x_ij); s_i ← s_i·exp(m_i − next) + Σ_j exp(x_ij − next); m_i ← next (skipped while
//     next = −∞); picked_i = x_{i, t_i − v0} when t_i falls in [v0, v0 + width). m, s, picked are the
//     running statistics [len] (f32; f64), initialised −∞, 0, 0 by the launcher.
//   lce_finish / _f64 (LceArgs {n, -, -, ignore, vocab, -, targets, m → lse, s, picked → rowLoss, error, op}):
//     per token, lse = m + log s, rowLoss = lse − picked (in place of m and picked); 0, 0 where t = ignore; a
//     target outside [0, vocab) that is not ignore is recorded in the deferred index error (rows.cuh) and
//     gives NaN. A thread per token.
//   lce_grad / _f64 (LceArgs {len, width, v0, ignore, vocab, logits, targets, lse, scale, g, error, op}):
//     g_ij = (exp(x_ij − lse_i) − [v0 + j = t_i])·scale, 0 on ignored rows (NaN on a recorded bad target);
//     scale [] read on the device; g of the inputs' dtype (bf16 for bf16, the operand of the gradient
//     products), or the logit chunk itself (f32, f64: in place).
//   Row kernels: a block of 256 per token row of the chunk, fixed-order sums (rows.cuh). Logit chunk
//   [len, width] row-major; targets, m, s, picked, lse offset to the chunk's first token by the launcher.
// Launcher: dev.jomni.cuda.CudaLinearCrossEntropy. Reference: dev.jomni.tensor.cpu.CpuLinearCrossEntropy.
#include "rows.cuh"

struct LceArgs {          // 456 bytes
  long long len, width, v0, ignore, vocab;
  Operand logits, targets, a, b, c;   // online: m, s, picked; finish: m/lse, s, picked/rowLoss; grad: lse, scale, g
  IndexError* error;
  int op, pad;
};
static_assert(sizeof(LceArgs) == 456, "LceArgs layout (CudaLinearCrossEntropy writes it)");

template <typename T>
__device__ __forceinline__ void online(const LceArgs& p) {
  const long long row = blockIdx.x, width = p.width, base = row * width;
  const long long t = load_index(p.targets, row);
  if (t == p.ignore) return;                          // uniform over the block
  const Operand &x = p.logits, &m = p.a, &s = p.b, &picked = p.c;
  const T old = load<T>(m, row);                      // read by every thread before thread 0 writes it
  T chunkMax = -INFINITY;
  for (long long j = threadIdx.x; j < width; j += ROW_BLOCK) chunkMax = MaxOp()(chunkMax, load<T>(x, base + j));
  const T next = MaxOp()(old, group_reduce<ROW_BLOCK>(chunkMax, MaxOp()));
  if (threadIdx.x == 0 && t >= p.v0 && t < p.v0 + width) store<T>(picked, row, load<T>(x, base + t - p.v0));
  if (next == -INFINITY) return;                      // all −∞ so far: nothing to add (uniform)
  T sum = 0;
  for (long long j = threadIdx.x; j < width; j += ROW_BLOCK) sum += exp(load<T>(x, base + j) - next);
  sum = group_reduce<ROW_BLOCK>(sum, SumOp());
  if (threadIdx.x == 0) {
    store<T>(s, row, load<T>(s, row) * exp(old - next) + sum);
    store<T>(m, row, next);
  }
}

template <typename T>
__device__ __forceinline__ void finish(const LceArgs& p) {
  const long long row = (long long)blockIdx.x * ROW_BLOCK + threadIdx.x;
  if (row >= p.len) return;
  const Operand &m = p.a, &s = p.b, &picked = p.c;
  const long long t = load_index(p.targets, row);
  if (t == p.ignore) {
    store<T>(m, row, 0);
    store<T>(picked, row, 0);
  } else if (t < 0 || t >= p.vocab) {
    record_index_error(p.error, p.op, row, t, p.vocab);
    store<T>(m, row, NAN);
    store<T>(picked, row, NAN);
  } else {
    const T lse = load<T>(m, row) + log(load<T>(s, row));
    store<T>(picked, row, lse - load<T>(picked, row));
    store<T>(m, row, lse);
  }
}

template <typename T>
__device__ __forceinline__ void grad(const LceArgs& p) {
  const long long row = blockIdx.x, width = p.width, base = row * width;
  const Operand &x = p.logits, &lse = p.a, &scale = p.b, &g = p.c;
  const long long t = load_index(p.targets, row);
  if (t == p.ignore || t < 0 || t >= p.vocab) {
    if (t != p.ignore && threadIdx.x == 0) record_index_error(p.error, p.op, row, t, p.vocab);
    const T v = t == p.ignore ? (T)0 : (T)NAN;
    for (long long j = threadIdx.x; j < width; j += ROW_BLOCK) store<T>(g, base + j, v);
    return;
  }
  const T k = load<T>(scale, 0), l = load<T>(lse, row);
  const long long hit = t - p.v0;                     // the target's column in this chunk (may be outside it)
  for (long long j = threadIdx.x; j < width; j += ROW_BLOCK) {
    const T e = exp(load<T>(x, base + j) - l);
    store<T>(g, base + j, (j == hit ? e - (T)1 : e) * k);   // g may be x itself: this element was read above
  }
}

extern "C" __global__ void __launch_bounds__(ROW_BLOCK) lce_online(const LceArgs p) { online<float>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) lce_online_f64(const LceArgs p) { online<double>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) lce_finish(const LceArgs p) { finish<float>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) lce_finish_f64(const LceArgs p) { finish<double>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) lce_grad(const LceArgs p) { grad<float>(p); }
extern "C" __global__ void __launch_bounds__(ROW_BLOCK) lce_grad_f64(const LceArgs p) { grad<double>(p); }
