// fill.cu: fills and dtype conversions, one element per thread.
//   fill_f32(out: [n] f32, value, n), fill_bf16(out: [n] bf16, value, n): out[i] = value (bf16 rounded
//     to nearest even).
//   fill_uniform_f32 / fill_uniform_bf16(out: [n], n, seed, lo, hi): out[i] = lo + (hi - lo) * u(seed, i),
//     u in [0, 1) from a counter-based hash of (seed, i): any element is reproducible on the CPU
//     without generator state, and the result does not depend on the launch shape.
//   convert_f32_bf16(out: [n] bf16, in: [n] f32, n), convert_bf16_f32(out: [n] f32, in: [n] bf16, n):
//     round to nearest even, and exact widening.
//   Launch: block 256, grid = ceil(n / 256).
// Launchers: dev.jomni.cuda.FillKernel, dev.jomni.cuda.ConvertKernel. Reference: FillKernelTest.
#include <cuda_bf16.h>
#include <stdint.h>

// splitmix64's finaliser over seed + (i + 1) * golden ratio; the top 24 bits give u exactly in fp32.
__device__ __forceinline__ float uniform01(unsigned long long seed, long long i) {
  unsigned long long z = seed + (unsigned long long)(i + 1) * 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z = z ^ (z >> 31);
  return (float)(z >> 40) * 0x1.0p-24f;
}

extern "C" __global__ void fill_f32(float* out, float value, long long n) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = value;
}

extern "C" __global__ void fill_bf16(__nv_bfloat16* out, float value, long long n) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __float2bfloat16_rn(value);
}

extern "C" __global__ void fill_uniform_f32(float* out, long long n, unsigned long long seed, float lo, float hi) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = lo + (hi - lo) * uniform01(seed, i);
}

extern "C" __global__ void fill_uniform_bf16(__nv_bfloat16* out, long long n, unsigned long long seed, float lo, float hi) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __float2bfloat16_rn(lo + (hi - lo) * uniform01(seed, i));
}

extern "C" __global__ void convert_f32_bf16(__nv_bfloat16* out, const float* in, long long n) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __float2bfloat16_rn(in[i]);
}

extern "C" __global__ void convert_bf16_f32(float* out, const __nv_bfloat16* in, long long n) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __bfloat162float(in[i]);
}
