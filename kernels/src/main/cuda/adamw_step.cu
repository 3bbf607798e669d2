// adamw_step.cu: one fused AdamW update of a parameter in place, the CUDA side of dev.jomni.tensor.ops.AdamWStep
// (the class comment there has the formulas). All kernels take AdamWArgs by value:
//   adamw_torch(AdamWArgs {n, p, g, m, v}): torch's AdamW, f32 moments m, v [n]; 4 elements a thread (16-byte
//     vectors when every operand is aligned, else and for the last n % 4 one element at a time).
//   adamw_bnb32(AdamWArgs {n, p, g, m, v}): bitsandbytes' 32-bit two-state ADAM; as adamw_torch.
//   adamw_8bit_blockwise(AdamWArgs {n, p, g, m = codes1, v = codes2, absmax1, absmax2, qmap1, qmap2}):
//     bitsandbytes' kOptimizerStatic8bit2StateBlockwise (ADAM): a warp per quantization block of 256 elements,
//     8 a lane, vector loads and stores; dequantize, update, the block's new absmax by warp shuffles (max is
//     exact, so the order does not matter), the parameter step, re-quantize to the nearest code (ties to the
//     lower, as the reference) through a bucket table built per CUDA block in shared memory (see quantize).
//     Grid: 4 CUDA blocks of 8 warps per SM, each walking quantization blocks.
//   adamw_torch_v1, adamw_bnb32_v1, adamw_8bit_blockwise_v1: the first kernels (a thread per element; the 8-bit one
//     a CUDA block per quantization block with barriers and a binary search), the same arithmetic, kept to be
//     measured side by side (CudaAdamWStep picks by -Djomni.adamw.kernel).
//   p: f32 or bf16 (p_dtype: DT_ codes), g: f32 or bf16; arithmetic in f32 with explicitly rounded intrinsics
//   (__fmul_rn, __fadd_rn, ...) so that nvcc contracts nothing into FMAs: the bits equal the CPU reference's.
// Launcher: dev.jomni.cuda.CudaAdamWStep. Reference: dev.jomni.tensor.cpu.CpuAdamWStep.
// Host emulation: kernels/src/test/cuda/emulate/adamw.sh.
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

// ---- the default kernels: vector loads and stores, a warp per quantization block ----

/** Whether 4 consecutive elements of dtype at addr can move as one vector (16 bytes of f32, 8 of bf16). */
__device__ __forceinline__ bool aligned4(long long addr, int dtype) {
  return (addr & (dtype == DT_F32 ? 15 : 7)) == 0;
}

/** Elements e..e+3 (e a multiple of 4, aligned4) as f32. */
__device__ __forceinline__ void load4(long long addr, int dtype, long long e, float* out) {
  if (dtype == DT_F32) {
    const float4 v = ((const float4*)addr)[e >> 2];
    out[0] = v.x; out[1] = v.y; out[2] = v.z; out[3] = v.w;
  } else {                                               // bf16: the high half of an f32, exactly
    const uint2 u = ((const uint2*)addr)[e >> 2];
    out[0] = __uint_as_float(u.x << 16); out[1] = __uint_as_float(u.x & 0xFFFF0000u);
    out[2] = __uint_as_float(u.y << 16); out[3] = __uint_as_float(u.y & 0xFFFF0000u);
  }
}

__device__ __forceinline__ unsigned bf16_bits(float v) { return __bfloat16_as_ushort(__float2bfloat16_rn(v)); }

/** Stores elements e..e+3 (e a multiple of 4, aligned4); bf16 rounds to nearest even as store_f. */
__device__ __forceinline__ void store4(long long addr, int dtype, long long e, const float* in) {
  if (dtype == DT_F32) ((float4*)addr)[e >> 2] = make_float4(in[0], in[1], in[2], in[3]);
  else ((uint2*)addr)[e >> 2] = make_uint2(bf16_bits(in[0]) | bf16_bits(in[1]) << 16, bf16_bits(in[2]) | bf16_bits(in[3]) << 16);
}

/** torch's AdamW on one element, the operations of adamw_torch_v1. */
struct TorchStep {
  float b2, eps, step, c2, decay, one_b1, one_b2;
  bool wd;
  __device__ explicit TorchStep(const AdamWArgs& a) {
    const float b1 = (float)a.beta1, lr = (float)a.lr, w = (float)a.weight_decay;
    b2 = (float)a.beta2; eps = (float)a.eps; step = (float)a.step_size; c2 = (float)a.correction;
    decay = __fsub_rn(1.f, __fmul_rn(lr, w)); one_b1 = __fsub_rn(1.f, b1); one_b2 = __fsub_rn(1.f, b2); wd = w != 0.f;
  }
  __device__ __forceinline__ void operator()(float& p, float g, float& s1, float& s2) const {
    if (wd) p = __fmul_rn(p, decay);
    s1 = __fadd_rn(s1, __fmul_rn(one_b1, __fsub_rn(g, s1)));
    s2 = __fadd_rn(__fmul_rn(s2, b2), __fmul_rn(__fmul_rn(one_b2, g), g));
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(s2), c2), eps);
    p = __fsub_rn(p, __fmul_rn(step, __fdiv_rn(s1, denom)));
  }
};

/** bitsandbytes' 32-bit update on one element, the operations of adamw_bnb32_v1. */
struct Bnb32Step {
  float b1, b2, step, decay, one_b1, one_b2, eps_c2;
  bool wd;
  __device__ explicit Bnb32Step(const AdamWArgs& a) {
    const float lr = (float)a.lr, w = (float)a.weight_decay;
    b1 = (float)a.beta1; b2 = (float)a.beta2; step = (float)a.step_size;
    decay = __fsub_rn(1.f, __fmul_rn(lr, w)); one_b1 = __fsub_rn(1.f, b1); one_b2 = __fsub_rn(1.f, b2);
    eps_c2 = __fmul_rn((float)a.eps, (float)a.correction); wd = w > 0.f;
  }
  __device__ __forceinline__ void operator()(float& p, float g, float& s1, float& s2) const {
    s1 = __fadd_rn(__fmul_rn(s1, b1), __fmul_rn(one_b1, g));
    s2 = __fadd_rn(__fmul_rn(s2, b2), __fmul_rn(one_b2, __fmul_rn(g, g)));
    p = __fadd_rn(p, __fmul_rn(step, __fdiv_rn(s1, __fadd_rn(__fsqrt_rn(s2), eps_c2))));
    if (wd) p = __fmul_rn(p, decay);
  }
};

/** The f32-state kernels' body: 4 elements a thread per grid-stride step (vectors when aligned), then the tail. */
template <class Step>
__device__ __forceinline__ void adamw_f32(const AdamWArgs& a, const Step& step) {
  float* m = (float*)a.m;
  float* v = (float*)a.v;
  const long long stride = (long long)gridDim.x * blockDim.x, first = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  const bool vec = aligned4(a.p, a.p_dtype) && aligned4(a.g, a.g_dtype) && ((a.m | a.v) & 15) == 0;
  const long long quads = vec ? a.n >> 2 : 0;
  for (long long q = first; q < quads; q += stride) {
    float p[4], g[4];
    load4(a.p, a.p_dtype, q << 2, p);
    load4(a.g, a.g_dtype, q << 2, g);
    float4 s1 = ((const float4*)m)[q], s2 = ((const float4*)v)[q];
    step(p[0], g[0], s1.x, s2.x);
    step(p[1], g[1], s1.y, s2.y);
    step(p[2], g[2], s1.z, s2.z);
    step(p[3], g[3], s1.w, s2.w);
    ((float4*)m)[q] = s1;
    ((float4*)v)[q] = s2;
    store4(a.p, a.p_dtype, q << 2, p);
  }
  for (long long i = (quads << 2) + first; i < a.n; i += stride) {
    float p = load_f(a.p, a.p_dtype, i), s1 = m[i], s2 = v[i];
    step(p, load_f(a.g, a.g_dtype, i), s1, s2);
    m[i] = s1;
    v[i] = s2;
    store_f(a.p, a.p_dtype, i, p);
  }
}

// 6 CUDA blocks per SM (40 registers, no spills; 8 would spill): CudaAdamWStep launches one wave of them.
extern "C" __global__ void __launch_bounds__(BLOCK, 6) adamw_torch(const AdamWArgs a) { adamw_f32(a, TorchStep(a)); }

extern "C" __global__ void __launch_bounds__(BLOCK, 6) adamw_bnb32(const AdamWArgs a) { adamw_f32(a, Bnb32Step(a)); }

// Quantization without a search: x's sign, exponent and top QM mantissa bits name a bucket (|x| below 2^-QE share
// one), and a table gives, per bucket, the largest code index k with code[k] <= every x of the bucket. From there
// x's index is found by walking up while code[k+1] <= x (at 2^QM buckets an octave the dynamic maps' codes are
// about a bucket apart or more, so the walk is 0 or 1 steps), then one compare with the midpoint: the same index
// as quantize_v1's binary search for any ascending code, whatever the table's resolution.
constexpr int QE = 22, QM = 6, QH = (QE << QM) + 1;    // QH magnitude buckets per sign, 1.0 and above the last
constexpr int QBASE = (127 - QE) << QM;                 // the magnitude bucket of 2^-QE

/** One 256-entry code in shared memory, with the tables quantize reads. */
struct QuantMap {
  float code[256];
  float2 next[256];              // next[k] = {code[k+1], (code[k] + code[k+1])·0.5 as quantize_v1 rounds it}, k < 255
  unsigned sign[8];              // bit k: signbit(code[k])
  unsigned char lower[2 * QH];   // by bucket: the largest k <= 254 with code[k] <= the bucket's lowest value, else 0
};

/** x's bucket, ascending with x: negative x in [0, QH), non-negative in [QH, 2 QH). */
__device__ __forceinline__ int bucket(float x) {
  const unsigned u = __float_as_uint(x);
  const int b = min(max((int)((u & 0x7FFFFFFFu) >> (23 - QM)) - QBASE, 0), QH - 1);
  return (u >> 31) ? QH - 1 - b : QH + b;
}

/** The lowest value of bucket K (−∞ for the one of the most negative values). */
__device__ __forceinline__ float bucket_lowest(int K) {
  if (K >= QH) return K == QH ? 0.f : __uint_as_float((unsigned)(K - QH + QBASE) << (23 - QM));
  const int b = QH - 1 - K;
  return b == QH - 1 ? __uint_as_float(0xFF800000u) : -__uint_as_float(((unsigned)(b + 1 + QBASE) << (23 - QM)) - 1u);
}

/** Loads a code (ascending) and builds its tables; all BLOCK threads; the caller synchronizes before use. */
__device__ __forceinline__ void build_map(QuantMap& q, const float* src) {
  const int t = threadIdx.x;
  q.code[t] = src[t];
  __syncthreads();
  if (t < 255) q.next[t] = make_float2(q.code[t + 1], __fmul_rn(__fadd_rn(q.code[t], q.code[t + 1]), 0.5f));
  if (t < 8) {
    unsigned bits = 0;
    for (int j = 0; j < 32; j++) bits |= (signbit(q.code[32 * t + j]) ? 1u : 0u) << j;
    q.sign[t] = bits;
  }
  constexpr int PER = (2 * QH + BLOCK - 1) / BLOCK;      // consecutive buckets a thread
  const int k0 = t * PER, k1 = min(k0 + PER, 2 * QH);
  if (k0 >= k1) return;
  float x = bucket_lowest(k0);
  int lo = 0, hi = 256;                                  // the largest k with code[k] <= x, else 0
  while (hi - lo > 1) {
    const int mid = (lo + hi) >> 1;
    if (q.code[mid] <= x) lo = mid;
    else hi = mid;
  }
  lo = min(lo, 254);
  for (int K = k0; K < k1; K++) {                        // lowest values ascend with K: lo only moves up
    x = bucket_lowest(K);
    while (lo < 254 && q.code[lo + 1] <= x) lo++;
    q.lower[K] = (unsigned char)lo;
  }
}

/** quantize_v1(q.code, x): the nearest code's index, ties to the lower; NaN gives 0. */
__device__ __forceinline__ int quantize(const QuantMap& q, float first, float last, float x) {
  if (!(x > first)) return 0;
  if (x >= last) return 255;
  int k = q.lower[bucket(x)];                            // code[k] <= x (or k = 0: code[0] < x)
  float2 e = q.next[k];
  while (e.x <= x) e = q.next[++k];                      // stops below 255: code[255] > x
  return x > e.y ? k + 1 : k;
}

__device__ __forceinline__ bool code_negative(const QuantMap& q, int k) { return (q.sign[k >> 5] >> (k & 31)) & 1u; }

constexpr int WARPS = BLOCK / 32;

// A warp per quantization block of 256 elements, lane l holding elements l·4 .. l·4+3 and 128 + l·4 .. 128 + l·4+3
// (so each vector load of the warp is contiguous); the block's absmax by shuffles. 4 CUDA blocks per SM (64
// registers), each building the code tables once.
extern "C" __global__ void __launch_bounds__(BLOCK, 4) adamw_8bit_blockwise(const AdamWArgs a) {
  __shared__ QuantMap map1, map2;
  build_map(map1, (const float*)a.qmap1);
  build_map(map2, (const float*)a.qmap2);
  __syncthreads();
  unsigned char* c1 = (unsigned char*)a.m;
  unsigned char* c2 = (unsigned char*)a.v;
  float* absmax1 = (float*)a.absmax1;
  float* absmax2 = (float*)a.absmax2;
  const float b1 = (float)a.beta1, b2 = (float)a.beta2, lr = (float)a.lr, wd = (float)a.weight_decay;
  const float step = (float)a.step_size, one_b1 = __fsub_rn(1.f, b1), one_b2 = __fsub_rn(1.f, b2);
  const float eps_c2 = __fmul_rn((float)a.correction, (float)a.eps), decay = __fsub_rn(1.f, __fmul_rn(lr, wd));
  const float first1 = map1.code[0], last1 = map1.code[255], first2 = map2.code[0], last2 = map2.code[255];
  const int lane = threadIdx.x & 31;
  const long long blocks = (a.n + BLOCK - 1) / BLOCK;
  const bool vec = aligned4(a.p, a.p_dtype) && aligned4(a.g, a.g_dtype) && ((a.m | a.v) & 3) == 0;
  for (long long block = blockIdx.x * (long long)WARPS + (threadIdx.x >> 5); block < blocks;
       block += (long long)gridDim.x * WARPS) {          // uniform per warp: the shuffles see all 32 lanes
    const long long base = block * BLOCK;
    const bool full = vec && base + BLOCK <= a.n;
    float p[8], g[8];
    unsigned w1[2], w2[2];                               // the 8 codes of each moment, 4 a word
    unsigned in = 0xFFu;                                 // bit j: element j exists
    if (full) {
      for (int h = 0; h < 2; h++) {
        const long long e = base + h * 128 + lane * 4;
        load4(a.g, a.g_dtype, e, g + 4 * h);
        load4(a.p, a.p_dtype, e, p + 4 * h);
        w1[h] = *(const unsigned*)(c1 + e);
        w2[h] = *(const unsigned*)(c2 + e);
      }
    } else {
      in = 0;
      for (int h = 0; h < 2; h++) {
        w1[h] = w2[h] = 0;
        for (int k = 0; k < 4; k++) {
          const int j = 4 * h + k;
          const long long i = base + h * 128 + lane * 4 + k;
          g[j] = p[j] = 0.f;
          if (i < a.n) {
            in |= 1u << j;
            g[j] = load_f(a.g, a.g_dtype, i);
            p[j] = load_f(a.p, a.p_dtype, i);
            w1[h] |= (unsigned)c1[i] << 8 * k;
            w2[h] |= (unsigned)c2[i] << 8 * k;
          }
        }
      }
    }
    const float abs1 = absmax1[block], abs2 = absmax2[block];
    float s1[8], s2[8], max1 = 0.f, max2 = 0.f;
    unsigned finite = 0;                                 // bit j: element j exists and its gradient is finite
#pragma unroll
    for (int j = 0; j < 8; j++) {
      s1[j] = s2[j] = 0.f;
      if (((in >> j) & 1u) && isfinite(g[j])) {
        finite |= 1u << j;
        const int k = 8 * (j & 3);
        s2[j] = __fmul_rn(map2.code[(w2[j >> 2] >> k) & 0xFFu], abs2);
        s2[j] = __fadd_rn(__fmul_rn(s2[j], b2), __fmul_rn(__fmul_rn(one_b2, g[j]), g[j]));
        s1[j] = __fmul_rn(map1.code[(w1[j >> 2] >> k) & 0xFFu], abs1);
        s1[j] = __fadd_rn(__fmul_rn(s1[j], b1), __fmul_rn(one_b1, g[j]));
      }
      max1 = fmaxf(max1, fabsf(s1[j]));
      max2 = fmaxf(max2, fabsf(s2[j]));
    }
    for (int o = 16; o > 0; o >>= 1) {                   // max is exact: the order does not matter
      max1 = fmaxf(max1, __shfl_xor_sync(0xFFFFFFFFu, max1, o));
      max2 = fmaxf(max2, __shfl_xor_sync(0xFFFFFFFFu, max2, o));
    }
    if (lane == 0) {                                     // the whole warp read the old absmax above
      absmax1[block] = max1;
      absmax2[block] = max2;
    }
#pragma unroll
    for (int j = 0; j < 8; j++) {
      if ((finite >> j) & 1u) {
        p[j] = __fadd_rn(p[j], __fmul_rn(step, __fdiv_rn(s1[j], __fadd_rn(__fsqrt_rn(s2[j]), eps_c2))));
        if (wd > 0.f) p[j] = __fmul_rn(p[j], decay);
      }
      int k1 = quantize(map1, first1, last1, max1 == 0.f ? 0.f : __fdiv_rn(s1[j], max1));
      // keep the first moment's sign: a code of the other sign moves one step towards it
      if (max1 != 0.f && code_negative(map1, k1) != (signbit(s1[j]) != 0)) k1 += s1[j] > 0.f ? 1 : -1;
      const int k2 = quantize(map2, first2, last2, max2 == 0.f ? 0.f : __fdiv_rn(s2[j], max2));
      const int k = 8 * (j & 3);
      w1[j >> 2] = (w1[j >> 2] & ~(0xFFu << k)) | (unsigned)k1 << k;
      w2[j >> 2] = (w2[j >> 2] & ~(0xFFu << k)) | (unsigned)k2 << k;
    }
    if (full) {                                          // every parameter rewritten, as the reference stores them all
      for (int h = 0; h < 2; h++) {
        const long long e = base + h * 128 + lane * 4;
        store4(a.p, a.p_dtype, e, p + 4 * h);
        *(unsigned*)(c1 + e) = w1[h];
        *(unsigned*)(c2 + e) = w2[h];
      }
    } else {
      for (int j = 0; j < 8; j++) {
        if (!((in >> j) & 1u)) continue;
        const long long i = base + (j >> 2) * 128 + lane * 4 + (j & 3);
        store_f(a.p, a.p_dtype, i, p[j]);
        c1[i] = (unsigned char)(w1[j >> 2] >> 8 * (j & 3));
        c2[i] = (unsigned char)(w2[j >> 2] >> 8 * (j & 3));
      }
    }
  }
}

// ---- the first kernels, kept for comparison (-Djomni.adamw.kernel=v1) ----

extern "C" __global__ void adamw_torch_v1(const AdamWArgs a) {
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

extern "C" __global__ void adamw_bnb32_v1(const AdamWArgs a) {
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
__device__ __forceinline__ int quantize_v1(const float* code, float x) {
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
__device__ __forceinline__ float block_max_v1(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  float r = scratch[0];
  for (int w = 1; w < BLOCK / 32; w++) r = fmaxf(r, scratch[w]);
  return r;
}

extern "C" __global__ void __launch_bounds__(BLOCK) adamw_8bit_blockwise_v1(const AdamWArgs a) {
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
    const float max1 = block_max_v1(fabsf(s1), scratch1), max2 = block_max_v1(fabsf(s2), scratch2);
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
      int k1 = quantize_v1(q1, max1 == 0.f ? 0.f : __fdiv_rn(s1, max1));
      // keep the first moment's sign: a code of the other sign moves one step towards it
      if (max1 != 0.f && (signbit(q1[k1]) != 0) != (signbit(s1) != 0)) k1 += s1 > 0.f ? 1 : -1;
      const int k2 = quantize_v1(q2, max2 == 0.f ? 0.f : __fdiv_rn(s2, max2));
      c1[i] = (unsigned char)k1;
      c2[i] = (unsigned char)k2;
    }
    __syncthreads();                                     // scratch is reused by the next block's maxima
  }
}
