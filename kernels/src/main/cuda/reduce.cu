// reduce.cu: reductions along the last axis, x: [rows, n] (any strides) -> out: [rows].
//   op: dev.jomni.tensor.ReduceOp code (codes.cuh). SUM accumulates in double; MAX/MIN give NaN when the row holds
//   one; ARGMAX/ARGMIN give the first maximum (minimum), or the first NaN, as CpuBackend.reduce.
//   The result does not depend on scheduling: every thread reads a fixed set of elements and partials
//   are combined in a fixed tree (no atomics).
//   reduce_block(ReduceArgs {op, rows, n, x, out}): one block of 256 threads per row (grid = rows, up to 2^31 - 1).
//   reduce_thread(ReduceArgs): one thread per row, for short rows (n < 64); block 256,
//     grid = ceil(rows / 256).
//   x.stride[0] is the row stride and x.stride[1] the element stride; out.stride[0] the row stride.
// Launcher: dev.jomni.cuda.CudaBackend.reduce. Reference: CpuBackend.reduce.
#include "tensor.cuh"

constexpr int THREADS = 256;

struct Best {            // a candidate of MAX/MIN/ARG*: its value and index in the row
  double v;
  long long i;
};

// The better of two candidates: a NaN beats any number (the earliest NaN first), then the larger
// (smaller for MIN) value, ties to the lower index: the CPU's "first" regardless of combine order.
__device__ __forceinline__ Best better(Best p, Best q, bool largest) {
  bool pn = p.v != p.v, qn = q.v != q.v;
  if (pn || qn) {
    if (pn && qn) return p.i <= q.i ? p : q;
    return pn ? p : q;
  }
  if (p.v == q.v) return p.i <= q.i ? p : q;
  return (largest ? p.v > q.v : p.v < q.v) ? p : q;
}

__device__ __forceinline__ void write(int op, const Operand& out, long long row, double sum, Best b) {
  long long o = row * out.stride[0];
  if (op == REDUCE_SUM) store<double>(out, o, sum);
  else if (op == REDUCE_MAX || op == REDUCE_MIN) store<double>(out, o, b.v);
  else store<double>(out, o, (double)b.i);
}

__device__ __forceinline__ void reduce_block_body(int op, const Operand& x, const Operand& out, long long rows, long long n) {
  __shared__ double sums[THREADS];
  __shared__ Best bests[THREADS];
  const long long row = blockIdx.x;
  const bool largest = op == REDUCE_MAX || op == REDUCE_ARGMAX;
  double sum = 0;
  Best b = {0, -1};
  for (long long j = threadIdx.x; j < n; j += THREADS) {
    double v = load<double>(x, row * x.stride[0] + j * x.stride[1]);
    if (op == REDUCE_SUM) sum += v;
    else {
      Best c = {v, j};
      b = b.i < 0 ? c : better(b, c, largest);
    }
  }
  sums[threadIdx.x] = sum;
  bests[threadIdx.x] = b;
  __syncthreads();
  for (int w = THREADS / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) {
      if (op == REDUCE_SUM) sums[threadIdx.x] += sums[threadIdx.x + w];
      else {
        Best p = bests[threadIdx.x], q = bests[threadIdx.x + w];
        bests[threadIdx.x] = q.i < 0 ? p : (p.i < 0 ? q : better(p, q, largest));
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) write(op, out, row, sums[0], bests[0]);
}

__device__ __forceinline__ void reduce_thread_body(int op, const Operand& x, const Operand& out, long long rows, long long n) {
  const long long row = (long long)blockIdx.x * THREADS + threadIdx.x;
  if (row >= rows) return;
  const bool largest = op == REDUCE_MAX || op == REDUCE_ARGMAX;
  double sum = 0;
  Best b = {0, -1};
  for (long long j = 0; j < n; j++) {
    double v = load<double>(x, row * x.stride[0] + j * x.stride[1]);
    if (op == REDUCE_SUM) sum += v;
    else {
      Best c = {v, j};
      b = b.i < 0 ? c : better(b, c, largest);
    }
  }
  write(op, out, row, sum, b);
}

// One struct parameter: a launch's cost grows with the number of parameters (dev.jomni.cuda.Launch).
struct ReduceArgs {       // 184 bytes
  int op;
  long long rows, n;
  Operand x, out;
};
static_assert(sizeof(ReduceArgs) == 184, "ReduceArgs layout (Launch writes it)");

extern "C" __global__ void __launch_bounds__(THREADS) reduce_block(const ReduceArgs p) {
  reduce_block_body(p.op, p.x, p.out, p.rows, p.n);
}

extern "C" __global__ void __launch_bounds__(THREADS) reduce_thread(const ReduceArgs p) {
  reduce_thread_body(p.op, p.x, p.out, p.rows, p.n);
}
