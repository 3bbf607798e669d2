// add.cu: element-wise sum of two bf16 vectors. out[i] = bf16(float(a[i]) + float(b[i])), rounded to
//   nearest even: an fp32 add, then one rounding, exactly what the CPU reference does.
//   a, b, out: [n] bf16, contiguous (out may alias a or b).
//   Launch: block THREADS = 256. When out, a and b are all 16-byte aligned, each thread adds VECS = 2
//   16-byte vectors (8 bf16 each) and grid = max(1, ceil(n / (8 * THREADS * VECS))); the last n % 8
//   elements go one per thread. Otherwise (views at odd offsets) one element per thread and
//   grid = ceil(n / THREADS). The launcher computes the same alignment test.
// Launcher: dev.jomni.cuda.AddKernel. Reference: the plain Java loop in AddKernelTest.
// Benchmark: dev.jomni.bench.AddKernelBench (vs a device-to-device copy of the same bytes).
#include <cuda_bf16.h>
#include <stdint.h>

constexpr int THREADS = 256;
constexpr int VECS = 2;  // two loads of each input in flight per thread before the first use

__device__ __forceinline__ uint4 add8(uint4 x, uint4 y) {
  const __nv_bfloat162* a = reinterpret_cast<const __nv_bfloat162*>(&x);
  const __nv_bfloat162* b = reinterpret_cast<const __nv_bfloat162*>(&y);
  uint4 r;
  __nv_bfloat162* o = reinterpret_cast<__nv_bfloat162*>(&r);
#pragma unroll
  for (int j = 0; j < 4; j++) {
    float2 fa = __bfloat1622float2(a[j]);
    float2 fb = __bfloat1622float2(b[j]);
    o[j] = __floats2bfloat162_rn(fa.x + fb.x, fa.y + fb.y);
  }
  return r;
}

extern "C" __global__ void __launch_bounds__(THREADS)
add_bf16(__nv_bfloat16* out, const __nv_bfloat16* a, const __nv_bfloat16* b, long long n) {
  const bool aligned =
      ((reinterpret_cast<uintptr_t>(out) | reinterpret_cast<uintptr_t>(a) | reinterpret_cast<uintptr_t>(b)) & 15) == 0;
  const long long tid = (long long)blockIdx.x * THREADS + threadIdx.x;
  if (!aligned) {
    if (tid < n) out[tid] = __float2bfloat16_rn(__bfloat162float(a[tid]) + __bfloat162float(b[tid]));
    return;
  }
  const long long nvec = n / 8;
  const uint4* a4 = reinterpret_cast<const uint4*>(a);
  const uint4* b4 = reinterpret_cast<const uint4*>(b);
  uint4* o4 = reinterpret_cast<uint4*>(out);
  const long long base = (long long)blockIdx.x * THREADS * VECS + threadIdx.x;
  uint4 xa[VECS], xb[VECS];
#pragma unroll
  for (int v = 0; v < VECS; v++) {
    const long long i = base + (long long)v * THREADS;
    if (i < nvec) { xa[v] = a4[i]; xb[v] = b4[i]; }
  }
#pragma unroll
  for (int v = 0; v < VECS; v++) {
    const long long i = base + (long long)v * THREADS;
    if (i < nvec) o4[i] = add8(xa[v], xb[v]);
  }
  const long long t = nvec * 8 + tid;  // the tail: fewer than 8 elements, one per thread
  if (t < n) out[t] = __float2bfloat16_rn(__bfloat162float(a[t]) + __bfloat162float(b[t]));
}
