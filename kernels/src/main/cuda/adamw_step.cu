// adamw_step.cu: one fused AdamW update of a parameter in place, the CUDA side of dev.jomni.tensor.ops.AdamWStep
// (the class comment there has the formulas). All kernels take AdamWArgs by value:
//   adamw_torch(AdamWArgs {n, p, g, m, v}): torch's AdamW, f32 moments m, v [n]; a thread per element.
//   adamw_bnb32(AdamWArgs {n, p, g, m, v}): bitsandbytes' 32-bit two-state ADAM; a thread per element.
//   adamw_8bit_blockwise(AdamWArgs {n, p, g, m = codes1, v = codes2, absmax1, absmax2, qmap1, qmap2}):
//     bitsandbytes' kOptimizerStatic8bit2StateBlockwise (ADAM): blocks of 256 threads, each walking quantization
//     blocks of 256 elements (a thread per element; the two 256-entry codes loaded into shared memory once per
//     CUDA block): dequantize, update, the block's new absmax (max is exact, so the reduction order does not
//     matter), the parameter step, re-quantize by binary search over the code in shared memory (ties to the
//     lower code, as the reference). Grid: up to 8 blocks per SM.
//   p: f32 or bf16 (p_dtype: DT_ codes), g: f32 or bf16; arithmetic in f32 with explicitly rounded intrinsics
//   (__fmul_rn, __fadd_rn, ...) so that nvcc contracts nothing into FMAs: the bits equal the CPU reference's.
// Launcher: dev.jomni.cuda.CudaAdamWStep. Reference: dev.jomni.tensor.cpu.CpuAdamWStep.
#include "tensor.cuh"

constexpr int BLOCK = 256;

struct AdamWArgs {        // 136 bytes
  long long n;
  long long p, g, m, v, absmax1, absmax2, qmap1, qmap2;   // device addresses (first element)
  int p_dtype, g_dtype;
  double beta1, beta2, eps, lr, weight_decay, step_size, correction;   // f32 values, widened exactly
};
static_assert(sizeof(AdamWArgs) == 136, "AdamWArgs layout (CudaAdamWStep writes it)");

__device__ __forceinline__ float load_f(long long addr, int dtype, long long i) {
  return dtype == DT_F32 ? ((const float*)addr)[i] : __bfloat162float(((const __nv_bfloat16*)addr)[i]);
}

__device__ __forceinline__ void store_f(long long addr, int dtype, long long i, float v) {
  if (dtype == DT_F32) ((float*)addr)[i] = v;
  else ((__nv_bfloat16*)addr)[i] = __float2bfloat16_rn(v);
}

extern "C" __global__ void adamw_torch(const AdamWArgs a) {
  const float b1 = (float)a.beta1, b2 = (float)a.beta2, eps = (float)a.eps, lr = (float)a.lr, wd = (float)a.weight_decay;
  const float step = (float)a.step_size, c2 = (float)a.correction;
  const float decay = __fsub_rn(1.f, __fmul_rn(lr, wd)), one_b1 = __fsub_rn(1.f, b1), one_b2 = __fsub_rn(1.f, b2);
  float* m = (float*)a.m;
  float* v = (float*)a.v;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < a.n; i += (long long)gridDim.x * blockDim.x) {
    float g = load_f(a.g, a.g_dtype, i), p = load_f(a.p, a.p_dtype, i), s1 = m[i], s2 = v[i];
    if (wd != 0.f) p = __fmul_rn(p, decay);
    s1 = __fadd_rn(s1, __fmul_rn(one_b1, __fsub_rn(g, s1)));
    s2 = __fadd_rn(__fmul_rn(s2, b2), __fmul_rn(__fmul_rn(one_b2, g), g));
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(s2), c2), eps);
    p = __fsub_rn(p, __fmul_rn(step, __fdiv_rn(s1, denom)));
    m[i] = s1;
    v[i] = s2;
    store_f(a.p, a.p_dtype, i, p);
  }
}

extern "C" __global__ void adamw_bnb32(const AdamWArgs a) {
  const float b1 = (float)a.beta1, b2 = (float)a.beta2, eps = (float)a.eps, lr = (float)a.lr, wd = (float)a.weight_decay;
  const float step = (float)a.step_size, c2 = (float)a.correction;
  const float decay = __fsub_rn(1.f, __fmul_rn(lr, wd)), one_b1 = __fsub_rn(1.f, b1), one_b2 = __fsub_rn(1.f, b2);
  const float eps_c2 = __fmul_rn(eps, c2);
  float* m = (float*)a.m;
  float* v = (float*)a.v;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < a.n; i += (long long)gridDim.x * blockDim.x) {
    float g = load_f(a.g, a.g_dtype, i), p = load_f(a.p, a.p_dtype, i);
    float s1 = __fadd_rn(__fmul_rn(m[i], b1), __fmul_rn(one_b1, g));
    float s2 = __fadd_rn(__fmul_rn(v[i], b2), __fmul_rn(one_b2, __fmul_rn(g, g)));
    p = __fadd_rn(p, __fmul_rn(step, __fdiv_rn(s1, __fadd_rn(__fsqrt_rn(s2), eps_c2))));
    if (wd > 0.f) p = __fmul_rn(p, decay);
    m[i] = s1;
    v[i] = s2;
    store_f(a.p, a.p_dtype, i, p);
  }
}

/** The index of the code value nearest to x (code ascending, 256 values); ties to the lower; NaN gives 0. */
__device__ __forceinline__ int quantize(const float* code, float x) {
  int lo = 0, hi = 255;
  if (!(x > code[lo])) return lo;
  if (x >= code[hi]) return hi;
  while (hi - lo > 1) {
    const int mid = (lo + hi) >> 1;
    if (code[mid] <= x) lo = mid;
    else hi = mid;
  }
  const float midpoint = __fmul_rn(__fadd_rn(code[lo], code[hi]), 0.5f);
  return x > midpoint ? hi : lo;
}

/** The maximum over the block's 256 threads of v (every thread gets it). */
__device__ __forceinline__ float block_max(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  float r = scratch[0];
  for (int w = 1; w < BLOCK / 32; w++) r = fmaxf(r, scratch[w]);
  return r;
}

extern "C" __global__ void __launch_bounds__(BLOCK) adamw_8bit_blockwise(const AdamWArgs a) {
  __shared__ float q1[256], q2[256], scratch1[BLOCK / 32], scratch2[BLOCK / 32];
  const int t = threadIdx.x;
  q1[t] = ((const float*)a.qmap1)[t];                  // the codes once per CUDA block, for all its quantization blocks
  q2[t] = ((const float*)a.qmap2)[t];
  unsigned char* c1 = (unsigned char*)a.m;
  unsigned char* c2 = (unsigned char*)a.v;
  float* absmax1 = (float*)a.absmax1;
  float* absmax2 = (float*)a.absmax2;
  const float b1 = (float)a.beta1, b2 = (float)a.beta2, eps = (float)a.eps, lr = (float)a.lr, wd = (float)a.weight_decay;
  const float step = (float)a.step_size, correction2 = (float)a.correction;
  const long long blocks = (a.n + BLOCK - 1) / BLOCK;
  __syncthreads();                                       // the codes are in shared memory
  for (long long block = blockIdx.x; block < blocks; block += gridDim.x) {   // uniform per CUDA block: barriers are safe
    const long long i = block * BLOCK + t;
    const bool in = i < a.n;
    const float abs1 = absmax1[block], abs2 = absmax2[block];
    const float g = in ? load_f(a.g, a.g_dtype, i) : 0.f;
    const bool finite = in && isfinite(g);
    float s1 = 0.f, s2 = 0.f;
    if (finite) {
      s2 = __fmul_rn(q2[c2[i]], abs2);
      s2 = __fadd_rn(__fmul_rn(s2, b2), __fmul_rn(__fmul_rn(__fsub_rn(1.f, b2), g), g));
      s1 = __fmul_rn(q1[c1[i]], abs1);
      s1 = __fadd_rn(__fmul_rn(s1, b1), __fmul_rn(__fsub_rn(1.f, b1), g));
    }
    const float max1 = block_max(fabsf(s1), scratch1), max2 = block_max(fabsf(s2), scratch2);
    if (t == 0) {                                        // every thread read the old absmax before block_max's barrier
      absmax1[block] = max1;
      absmax2[block] = max2;
    }
    if (finite) {
      float p = load_f(a.p, a.p_dtype, i);
      p = __fadd_rn(p, __fmul_rn(step, __fdiv_rn(s1, __fadd_rn(__fsqrt_rn(s2), __fmul_rn(correction2, eps)))));
      if (wd > 0.f) p = __fmul_rn(p, __fsub_rn(1.f, __fmul_rn(lr, wd)));
      store_f(a.p, a.p_dtype, i, p);
    }
    if (in) {
      int k1 = quantize(q1, max1 == 0.f ? 0.f : __fdiv_rn(s1, max1));
      // keep the first moment's sign: a code of the other sign moves one step towards it
      if (max1 != 0.f && (signbit(q1[k1]) != 0) != (signbit(s1) != 0)) k1 += s1 > 0.f ? 1 : -1;
      const int k2 = quantize(q2, max2 == 0.f ? 0.f : __fdiv_rn(s2, max2));
      c1[i] = (unsigned char)k1;
      c2[i] = (unsigned char)k2;
    }
    __syncthreads();                                     // scratch is reused by the next block's maxima
  }
}
