// tensor.cuh: what the CUDA backend's kernels share: strided operands of any of the tensor core's 8
//   dtypes, read into and written from a compute type (float or double) with the CPU reference's
//   conversions (CpuBackend.get/set: bf16/f16 round to nearest even through f32, integers truncate and
//   saturate as Java's casts do, NaN -> 0, bool is v != 0).
//   Shape and Operand are passed to kernels by value; their layout is written by dev.jomni.cuda.Launch.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "codes.cuh"

#define MAX_RANK 8

struct Shape {            // 72 bytes
  long long size[MAX_RANK];
  int rank;
  int pad;
};

struct Operand {          // 80 bytes; ptr already includes the tensor's offset
  char* ptr;
  long long stride[MAX_RANK];  // elements
  int dtype;
  int pad;
};

__device__ __forceinline__ long long java_i64(double v) {
  if (v != v) return 0;
  if (v >= 9.2233720368547758e18) return 0x7FFFFFFFFFFFFFFFLL;
  if (v <= -9.2233720368547758e18) return (long long)0x8000000000000000ULL;
  return (long long)v;
}

__device__ __forceinline__ int java_i32(double v) {
  if (v != v) return 0;
  if (v >= 2147483647.0) return 0x7FFFFFFF;
  if (v <= -2147483648.0) return (int)0x80000000;
  return (int)v;
}

template <typename T>
__device__ __forceinline__ T load(const Operand& o, long long off) {
  const char* p = o.ptr;
  switch (o.dtype) {
    case DT_F64: return (T)((const double*)p)[off];
    case DT_F32: return (T)((const float*)p)[off];
    case DT_BF16: return (T)__bfloat162float(((const __nv_bfloat16*)p)[off]);
    case DT_F16: return (T)__half2float(((const __half*)p)[off]);
    case DT_I64: return (T)((const long long*)p)[off];
    case DT_I32: return (T)((const int*)p)[off];
    case DT_U8: return (T)((const unsigned char*)p)[off];
    default: return (T)(((const unsigned char*)p)[off] != 0 ? 1 : 0);
  }
}

template <typename T>
__device__ __forceinline__ void store(const Operand& o, long long off, T v) {
  char* p = o.ptr;
  switch (o.dtype) {
    case DT_F64: ((double*)p)[off] = (double)v; break;
    case DT_F32: ((float*)p)[off] = (float)v; break;
    case DT_BF16: ((__nv_bfloat16*)p)[off] = __float2bfloat16_rn((float)v); break;
    case DT_F16: ((__half*)p)[off] = __float2half_rn((float)v); break;
    case DT_I64: ((long long*)p)[off] = java_i64((double)v); break;
    case DT_I32: ((int*)p)[off] = java_i32((double)v); break;
    case DT_U8: ((unsigned char*)p)[off] = (unsigned char)(java_i32((double)v) & 0xFF); break;
    default: ((unsigned char*)p)[off] = v != (T)0 ? 1 : 0; break;   // NaN != 0: true, as in Java
  }
}

/** An index element (I64 or I32). */
__device__ __forceinline__ long long load_index(const Operand& o, long long off) {
  return o.dtype == DT_I32 ? (long long)((const int*)o.ptr)[off] : ((const long long*)o.ptr)[off];
}

__device__ __forceinline__ int dtype_bytes(int dtype) {
  switch (dtype) {
    case DT_F64: case DT_I64: return 8;
    case DT_F32: case DT_I32: return 4;
    case DT_BF16: case DT_F16: return 2;
    default: return 1;
  }
}
