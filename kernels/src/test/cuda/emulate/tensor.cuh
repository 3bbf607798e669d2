// host emulation shim for attention.cu
#pragma once
#include <cstdint>
#include <cstring>
#include <cmath>
#include <cstdlib>
#include <atomic>
#include <barrier>
#include <cstdio>
#include <thread>
#include <vector>
#include <algorithm>
#include "codes.cuh"
#define __device__
#define __host__
#define __global__
#define __forceinline__ inline
#define __launch_bounds__(x)
#define __shared__
#define __align__(n)
#define MAX_RANK 8
struct Shape { long long size[MAX_RANK]; int rank; int pad; };
struct Operand { char* ptr; long long stride[MAX_RANK]; int dtype; int pad; };
struct Dim { unsigned x, y, z; };
inline thread_local Dim threadIdx, blockIdx;
inline Dim gridDim{1, 1, 1}, blockDim{1, 1, 1};   // one split (blockIdx.y = 0)
inline unsigned emu_dyn_smem;


using std::min; using std::max;
inline void __trap() { fprintf(stderr, "TRAP\n"); abort(); }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline double __longlong_as_double(long long i) { double f; memcpy(&f, &i, 8); return f; }
struct __nv_bfloat16 { uint16_t b; };
struct __half { uint16_t b; };
inline float __bfloat162float(__nv_bfloat16 h) { uint32_t u = (uint32_t)h.b << 16; float f; memcpy(&f, &u, 4); return f; }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { uint32_t u; memcpy(&u, &f, 4); u += 0x7FFF + ((u >> 16) & 1); return {(uint16_t)(u >> 16)}; }
inline float __half2float(__half h) {                          // exact: IEEE binary16 widened
  const int e = (h.b >> 10) & 31, m = h.b & 1023;
  const float v = e == 0 ? std::ldexp((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : std::ldexp((float)(m | 1024), e - 25);
  return h.b & 0x8000 ? -v : v;
}
inline __half __float2half_rn(float f) { return {(uint16_t)f}; }
// block and warp barriers
inline std::barrier<>* block_bar;
inline std::barrier<>* warp_bar[8];
inline double warp_buf[8][32];
inline void __syncthreads() { block_bar->arrive_and_wait(); }
inline void __syncwarp() { warp_bar[threadIdx.x >> 5]->arrive_and_wait(); }
inline std::atomic<int> emu_or{0};
inline int __syncthreads_or(int pred) {
  if (pred) emu_or = 1;
  block_bar->arrive_and_wait();
  const int r = emu_or;
  block_bar->arrive_and_wait();
  if (threadIdx.x == 0) emu_or = 0;
  block_bar->arrive_and_wait();
  return r;
}
template <typename T> T __shfl_xor_sync(unsigned, T v, int o) {
  int w = threadIdx.x >> 5, l = threadIdx.x & 31;
  warp_buf[w][l] = (double)v; __syncwarp();
  T r = (T)warp_buf[w][l ^ o]; __syncwarp();
  return r;
}
template <typename T> inline T load(const Operand& o, long long off) {
  switch (o.dtype) {
    case DT_F64: return (T)((const double*)o.ptr)[off];
    case DT_F32: return (T)((const float*)o.ptr)[off];
    case DT_BF16: return (T)__bfloat162float(((const __nv_bfloat16*)o.ptr)[off]);
    case DT_I32: return (T)((const int*)o.ptr)[off];
    default: return (T)(((const unsigned char*)o.ptr)[off] != 0);
  }
}
template <typename T> inline void store(const Operand& o, long long off, T v) {
  switch (o.dtype) {
    case DT_F64: ((double*)o.ptr)[off] = (double)v; break;
    case DT_F32: ((float*)o.ptr)[off] = (float)v; break;
    case DT_BF16: ((__nv_bfloat16*)o.ptr)[off] = __float2bfloat16_rn((float)v); break;
    default: abort();
  }
}
