// rows.cuh: what the row-wise coarse-op kernels share (softmax.cu, cross_entropy.cu, linear_cross_entropy.cu):
//   reductions over a group of threads that owns one row (a warp of 32, or a block of 256), in a fixed
//   order (xor butterfly in the warp, then the 8 warp results in order), so the bits do not depend on
//   scheduling and every thread of the group gets the same value; a max that propagates NaN (as Java's
//   Math.max does in the CPU references); rounding to a storage dtype; and the deferred index error
//   record (index.cu's IndexError, read by CudaDevice.await at the next synchronisation).
#pragma once
#include "tensor.cuh"

constexpr int ROW_BLOCK = 256;   // threads per block of the row kernels
constexpr int WARP = 32;

struct SumOp {
  template <typename T> __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};

/** max(a, b), NaN if either is NaN (Math.max). */
struct MaxOp {
  template <typename T> __device__ __forceinline__ T operator()(T a, T b) const {
    return (a != a || b != b) ? (a != a ? a : b) : (a > b ? a : b);
  }
};

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

/** op over the 32 lanes of a warp; every lane gets the same bits (a·b and b·a pair up identically). */
template <typename T, typename Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
  for (int m = WARP / 2; m > 0; m >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, m));
  return v;
}

/** op over a group of GROUP threads (WARP: the warp; ROW_BLOCK: the whole block); every thread gets it. */
template <int GROUP, typename T, typename Op>
__device__ __forceinline__ T group_reduce(T v, Op op) {
  v = warp_reduce(v, op);
  if (GROUP == WARP) return v;
  __shared__ T partial[ROW_BLOCK / WARP];
  const int warp = threadIdx.x / WARP;
  if ((threadIdx.x & (WARP - 1)) == 0) partial[warp] = v;
  __syncthreads();
  T r = partial[0];
  for (int w = 1; w < ROW_BLOCK / WARP; w++) r = op(r, partial[w]);
  __syncthreads();                                  // partial is reused by the next reduction
  return r;
}

// The deferred index-range error (index.cu's IndexError; CudaDevice reads these 32 bytes): flag 0 means none.
struct IndexError {
  int flag, op;
  long long position, value, bound;
};
static_assert(sizeof(IndexError) == 32, "CudaDevice.INDEX_ERROR_BYTES");

/** Records a bad index unless an earlier one was recorded (the first in stream order is reported). */
__device__ __forceinline__ void record_index_error(IndexError* e, int op, long long position, long long value, long long bound) {
  if (*(volatile int*)&e->flag) return;
  if (atomicCAS(&e->flag, 0, 1) == 0) {
    e->op = op;
    e->position = position;
    e->value = value;
    e->bound = bound;
  }
}
