// index.cu: gathering, scattering, running sums, sorting and the f64/integer matrix product of the
//   CUDA backend. Values go through double, as in CpuBackend; index operands are I64 or I32.
//   gather(IndexArgs {shape, dim, n, out, x, index}): out[c] = x[c with c[dim] := index[c]], c over shape (out's);
//     index's strides are over out's shape (index_select: a stride along dim only). block 256,
//     grid-stride; n = numel(shape).
//   scatter_add(IndexArgs {shape, dim, columns, dst, src, index}): for every column (the coordinates of shape
//     other than dim), for j = 0, 1, ... along dim in order: dst[c with c[dim] := index[c, j]] += src[c, j].
//     One thread owns a column, so repeated indices add in index order with no atomics (index_add_
//     and scatter_add_). block 256, grid = ceil(columns / 256).
//   cumsum_rows(RowArgs {rows, n, reverse, x, out}): running sums along rows of n (from the end when reverse),
//     double accumulator; one thread per row, block 256, for short rows (n < 64).
//   cumsum_block(RowArgs): the same with a block of 256 per row (grid = rows), chunks of 256 scanned in
//     shared memory in a fixed order (sums grouped differently from the CPU's left-to-right, in double).
//   argsort_rows(RowArgs {rows, n, descending, x, out}): out[r, p] = the index of the element at position p of
//     row r's stable sort; NaN sorts as the largest and -0 below +0 (Java's Double.compare). Each
//     element counts the elements ordered before it (O(n^2) per row, tiled through shared memory):
//     rows here are short (E = 128 experts; a vocabulary row for sampling). block 256,
//     grid = rows * ceil(n / 256), block b taking row b / ceil(n / 256).
//   matmul_f64(MatmulArgs {batch, m, n, k, a, b, out}): out[p, i, j] = sum_q a[p, i, q] * b[p, q, j] in double;
//     strides [batch, row, col] in each operand. block 256, grid-stride over batch * m * n.
//   check_index(CheckArgs {shape, n, bound, index, error, op}): for the n elements of an I64/I32 index (any
//     strides), the first one met outside [0, bound) is written into *error (IndexError, below) with
//     the op's number, unless an earlier check already wrote it (the first failure in stream order is
//     kept; within one launch, whichever bad element a thread meets first). The host reads the record
//     at its next synchronisation (CudaDevice.await). block 256, grid-stride.
// Launcher: dev.jomni.cuda.CudaBackend. Reference: CpuBackend.
#include "tensor.cuh"

constexpr int THREADS = 256;

__device__ __forceinline__ void gather_body(const Shape& s, int dim, const Operand& out, const Operand& x, const Operand& index, long long n,
                                            long long bound) {
  const long long step = (long long)gridDim.x * THREADS;
  for (long long i = (long long)blockIdx.x * THREADS + threadIdx.x; i < n; i += step) {
    long long r = i, oo = 0, xo = 0, io = 0;
    for (int d = s.rank - 1; d >= 0; d--) {
      long long size = s.size[d], q = r / size, k = r - q * size;
      r = q;
      oo += k * out.stride[d];
      io += k * index.stride[d];
      if (d != dim) xo += k * x.stride[d];
    }
    long long at = load_index(index, io);
    // out of range: check_index has recorded it (raised at the next sync); reading there could fault the context
    store<double>(out, oo, at >= 0 && at < bound ? load<double>(x, xo + at * x.stride[dim]) : 0.0);
  }
}

__device__ __forceinline__ void scatter_add_body(const Shape& s, int dim, const Operand& dst, const Operand& src, const Operand& index,
                                                 long long columns, long long bound) {
  const long long col = (long long)blockIdx.x * THREADS + threadIdx.x;
  if (col >= columns) return;
  long long r = col, dbase = 0, sbase = 0, ibase = 0;
  for (int d = s.rank - 1; d >= 0; d--) {
    if (d == dim) continue;
    long long size = s.size[d], q = r / size, k = r - q * size;
    r = q;
    dbase += k * dst.stride[d];
    sbase += k * src.stride[d];
    ibase += k * index.stride[d];
  }
  const long long len = s.size[dim];
  for (long long j = 0; j < len; j++) {
    long long t = load_index(index, ibase + j * index.stride[dim]);
    if (t < 0 || t >= bound) continue;                // recorded by check_index, skipped here (no fault)
    long long o = dbase + t * dst.stride[dim];
    store<double>(dst, o, load<double>(dst, o) + load<double>(src, sbase + j * src.stride[dim]));
  }
}

__device__ __forceinline__ void cumsum_body(const Operand& x, const Operand& out, long long rows, long long n, int reverse) {
  const long long row = (long long)blockIdx.x * THREADS + threadIdx.x;
  if (row >= rows) return;
  double acc = 0;
  for (long long j = 0; j < n; j++) {
    long long at = reverse ? n - 1 - j : j;
    acc += load<double>(x, row * x.stride[0] + at * x.stride[1]);
    store<double>(out, row * out.stride[0] + at * out.stride[1], acc);
  }
}

// A block of THREADS per row: the row in chunks of THREADS, each scanned in shared memory (a fixed
// Hillis-Steele tree) and offset by the running total of the chunks before it.
__device__ __forceinline__ void cumsum_block_body(const Operand& x, const Operand& out, long long n, int reverse) {
  __shared__ double buf[THREADS];
  const long long row = blockIdx.x;
  double carry = 0;
  for (long long t0 = 0; t0 < n; t0 += THREADS) {
    const long long j = t0 + threadIdx.x, at = reverse ? n - 1 - j : j;
    buf[threadIdx.x] = j < n ? load<double>(x, row * x.stride[0] + at * x.stride[1]) : 0;
    __syncthreads();
    for (int off = 1; off < THREADS; off <<= 1) {
      double add = threadIdx.x >= off ? buf[threadIdx.x - off] : 0;
      __syncthreads();
      buf[threadIdx.x] += add;
      __syncthreads();
    }
    if (j < n) store<double>(out, row * out.stride[0] + at * out.stride[1], carry + buf[threadIdx.x]);
    carry += buf[THREADS - 1];
    __syncthreads();
  }
}

// A key whose unsigned order is Double.compare's order (all NaNs equal and largest).
__device__ __forceinline__ unsigned long long order_key(double v, bool descending) {
  unsigned long long bits = (unsigned long long)__double_as_longlong(v), key;
  if (v != v) key = 0xFFFFFFFFFFFFFFFFULL;
  else key = (bits >> 63) ? ~bits : bits | 0x8000000000000000ULL;
  return descending ? ~key : key;
}

__device__ __forceinline__ void argsort_body(const Operand& x, const Operand& out, long long rows, long long n, int descending) {
  __shared__ unsigned long long tile[THREADS];
  const long long tiles = (n + THREADS - 1) / THREADS;
  const long long row = blockIdx.x / tiles;
  const long long i = (blockIdx.x % tiles) * THREADS + threadIdx.x;
  const bool mine = i < n;
  const unsigned long long key = mine ? order_key(load<double>(x, row * x.stride[0] + i * x.stride[1]), descending) : 0;
  long long before = 0;  // elements that sort before element i: smaller keys, and equal keys earlier in the row
  for (long long t0 = 0; t0 < n; t0 += THREADS) {
    long long j = t0 + threadIdx.x;
    tile[threadIdx.x] = j < n ? order_key(load<double>(x, row * x.stride[0] + j * x.stride[1]), descending) : 0;
    __syncthreads();
    if (mine) {
      long long count = n - t0 < THREADS ? n - t0 : THREADS;
      for (long long u = 0; u < count; u++) {
        unsigned long long k = tile[u];
        before += k < key || (k == key && t0 + u < i);
      }
    }
    __syncthreads();
  }
  if (mine) store<double>(out, row * out.stride[0] + before * out.stride[1], (double)i);
}

__device__ __forceinline__ void matmul_body(const Operand& a, const Operand& b, const Operand& out, long long batch, long long m, long long n, long long k) {
  const long long total = batch * m * n, step = (long long)gridDim.x * THREADS;
  for (long long t = (long long)blockIdx.x * THREADS + threadIdx.x; t < total; t += step) {
    long long j = t % n, i = (t / n) % m, p = t / (n * m);
    double acc = 0;
    for (long long q = 0; q < k; q++)
      acc += load<double>(a, p * a.stride[0] + i * a.stride[1] + q * a.stride[2])
           * load<double>(b, p * b.stride[0] + q * b.stride[1] + j * b.stride[2]);
    store<double>(out, p * out.stride[0] + i * out.stride[1] + j * out.stride[2], acc);
  }
}

// One struct parameter each: a launch's cost grows with the number of parameters (dev.jomni.cuda.Launch).
struct IndexArgs {        // gather and scatter_add: 336 bytes
  Shape s;
  int dim;
  long long n;            // gather: elements; scatter_add: columns
  long long bound;        // x's (dst's) size along dim: indices outside [0, bound) are skipped
  Operand out, x, index;  // scatter_add: dst, src, index
};
struct RowArgs {          // cumsum_rows and argsort_rows: 184 bytes
  long long rows, n;
  int flag;               // reverse / descending
  Operand x, out;
};
struct MatmulArgs {       // 272 bytes
  long long batch, m, n, k;
  Operand a, b, out;
};
static_assert(sizeof(IndexArgs) == 336 && sizeof(RowArgs) == 184 && sizeof(MatmulArgs) == 272, "layouts Launch writes");

extern "C" __global__ void __launch_bounds__(THREADS) gather(const IndexArgs p) {
  gather_body(p.s, p.dim, p.out, p.x, p.index, p.n, p.bound);
}

extern "C" __global__ void __launch_bounds__(THREADS) scatter_add(const IndexArgs p) {
  scatter_add_body(p.s, p.dim, p.out, p.x, p.index, p.n, p.bound);
}

extern "C" __global__ void __launch_bounds__(THREADS) cumsum_rows(const RowArgs p) {
  cumsum_body(p.x, p.out, p.rows, p.n, p.flag);
}

extern "C" __global__ void __launch_bounds__(THREADS) cumsum_block(const RowArgs p) {
  cumsum_block_body(p.x, p.out, p.n, p.flag);
}

extern "C" __global__ void __launch_bounds__(THREADS) argsort_rows(const RowArgs p) {
  argsort_body(p.x, p.out, p.rows, p.n, p.flag);
}

extern "C" __global__ void __launch_bounds__(THREADS) matmul_f64(const MatmulArgs p) {
  matmul_body(p.a, p.b, p.out, p.batch, p.m, p.n, p.k);
}

// The deferred index-range error (CudaDevice reads these 32 bytes): flag 0 means none.
struct IndexError {
  int flag, op;
  long long position, value, bound;
};
struct CheckArgs {        // 184 bytes
  Shape s;
  long long n, bound;
  Operand index;
  IndexError* error;
  int op;
};
static_assert(sizeof(IndexError) == 32 && sizeof(CheckArgs) == 184, "layouts CudaDevice and Launch use");

extern "C" __global__ void __launch_bounds__(THREADS) check_index(const CheckArgs p) {
  if (*(volatile int*)&p.error->flag) return;       // an earlier op's error is the one to report
  const long long step = (long long)gridDim.x * THREADS;
  for (long long i = (long long)blockIdx.x * THREADS + threadIdx.x; i < p.n; i += step) {
    long long r = i, io = 0;
    for (int d = p.s.rank - 1; d >= 0; d--) {
      long long size = p.s.size[d], q = r / size, k = r - q * size;
      r = q;
      io += k * p.index.stride[d];
    }
    long long v = load_index(p.index, io);
    if (v < 0 || v >= p.bound) {
      if (atomicCAS(&p.error->flag, 0, 1) == 0) {
        p.error->op = p.op;
        p.error->position = i;
        p.error->value = v;
        p.error->bound = p.bound;
      }
      return;
    }
  }
}
