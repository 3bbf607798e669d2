// nf4_quantize.cu: NF4 quantization with double quantization (bitsandbytes' quantize_4bit, nf4, blocks of 64,
//   compress_statistics), the CUDA side of dev.jomni.tensor.ops.Nf4Weight.quantize. Bit-identical to the CPU
//   reference (Nf4Weight.Builder): the same f32 operations in the same order, no FMA contraction (__fmul_rn,
//   __fdiv_rn), Java's NaN rules for max and clamp (a NaN anywhere in a block makes its max NaN). Three kernels,
//   with a host step between the second and third (the mean of the block absmax, Nf4Weight.quantize):
//   nf4_quantize_blocks_T(packed, amax, w, n, vec):  w [n] of T ∈ {bf16, f16, f32, f64} (f64 rounded to f32 first,
//     n % 64 == 0) → amax [n/64] f32 = max |w| over each block of 64, packed [n/2] u8 = the nearest NF4 level of
//     clamp(w · (1/max(amax, 1e-38)), −1, 1) (bucketize over the f32 midpoints, a tie to the lower level), element
//     2j in the high nibble. 8 lanes per block of 64, each 8 consecutive elements (16-byte loads when vec), the max by
//     3 shuffles; each lane writes its 4 packed bytes as one u32. Grid-stride over warps of 4 blocks.
//   nf4_absmax_stats(stats, amax, blocks):  stats f64 [2] = (Σ amax in double, the lowest exponent e such that 2^e is
//     a set bit of some finite nonzero amax, 2^31 − 1 when none), one block of 1024, each thread a strided double sum,
//     then a fixed-order tree. The host takes the sum as the CPU's sequential one only when it is exact in any order
//     (Nf4Weight.exactInAnyOrder), else sums amax itself.
//   nf4_quantize_absmax(qabs, nabs, amax, map, offset, blocks):  one warp per nested block c of 256: nabs[c] =
//     max |amax − offset| (f32), qabs[b] = bucketize(clamp((amax[b] − offset) · (1/max(nabs[c], 1e-38)), −1, 1)) over
//     the f32 midpoints of the 256-entry dynamic map, by the CPU's binary search.
//   Operands contiguous; packed 4-byte aligned (an allocation of its own); w 16-byte aligned when vec.
//   Launcher: dev.jomni.cuda.CudaNf4Quantize. Reference: dev.jomni.tensor.ops.Nf4Weight.Builder.
#include "tensor.cuh"

__constant__ float NF4Q[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};

constexpr int Q_THREADS = 256, STATS_THREADS = 1024;   // one block sums: as many loads in flight as it can hold

/** Java's Math.max(a, b) for floats: NaN when either is. */
__device__ __forceinline__ float jmax(float a, float b) { return a != a ? a : b != b ? b : fmaxf(a, b); }

/** Java's Math.max(-1f, Math.min(1f, v)): NaN stays NaN. */
__device__ __forceinline__ float jclamp(float v) { return v > 1.f ? 1.f : v < -1.f ? -1.f : v; }

/** 1 / Math.max(m, 1e-38f) in f32, correctly rounded (1e-38f is subnormal: no flush to zero here). */
__device__ __forceinline__ float inverse(float m) { return __fdiv_rn(1.f, m < 1e-38f ? 1e-38f : m); }

template <typename T> __device__ __forceinline__ float q_to_f(T v);
template <> __device__ __forceinline__ float q_to_f<float>(float v) { return v; }
template <> __device__ __forceinline__ float q_to_f<double>(double v) { return __double2float_rn(v); }
template <> __device__ __forceinline__ float q_to_f<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <> __device__ __forceinline__ float q_to_f<__half>(__half v) { return __half2float(v); }

// ---------------------------------------------------------------- blocks of 64

template <typename T>
__device__ void quantize_blocks(uint8_t* packed, float* amax, const T* w, long long n, int vec) {
  __shared__ float bounds[15];
  if (threadIdx.x < 15) bounds[threadIdx.x] = __fdiv_rn(__fadd_rn(NF4Q[threadIdx.x], NF4Q[threadIdx.x + 1]), 2.f);
  __syncthreads();
  const long long groups = n >> 3;                                   // 8 elements a lane; n % 64 == 0: whole blocks
  const int lane = threadIdx.x & 31;
  const long long warps = (long long)gridDim.x * (Q_THREADS / 32);
  // Every lane of a warp runs the same iterations (the shuffles need all 32); lanes past the end carry zeros.
  for (long long g0 = (blockIdx.x * (long long)Q_THREADS + threadIdx.x - lane); g0 < groups; g0 += warps * 32) {
    const long long g = g0 + lane;
    const bool live = g < groups;
    float v[8];
    if (live && vec) {
      constexpr int PER = 16 / sizeof(T);                            // elements per 16-byte load
      const uint4* p = reinterpret_cast<const uint4*>(w + 8 * g);
#pragma unroll
      for (int c = 0; c < 8 / PER; c++) {
        uint4 u = p[c];
        const T* e = reinterpret_cast<const T*>(&u);
#pragma unroll
        for (int j = 0; j < PER; j++) v[c * PER + j] = q_to_f(e[j]);
      }
    } else {
#pragma unroll
      for (int j = 0; j < 8; j++) v[j] = live ? q_to_f(w[8 * g + j]) : 0.f;
    }
    float m = 0.f;
#pragma unroll
    for (int j = 0; j < 8; j++) m = jmax(m, fabsf(v[j]));
#pragma unroll
    for (int o = 1; o < 8; o <<= 1) m = jmax(m, __shfl_xor_sync(0xffffffffu, m, o));   // the block's 8 lanes
    if (!live) continue;
    if ((lane & 7) == 0) amax[g >> 3] = m;
    const float inv = inverse(m);
    unsigned word = 0;
#pragma unroll
    for (int j = 0; j < 8; j++) {
      const float s = jclamp(__fmul_rn(v[j], inv));
      int q = 0;
#pragma unroll
      for (int i = 0; i < 15; i++) q += bounds[i] < s ? 1 : 0;
      word |= (unsigned)q << ((j >> 1) * 8 + (j & 1 ? 0 : 4));      // byte j/2 = q[2j'] << 4 | q[2j'+1]
    }
    reinterpret_cast<unsigned*>(packed)[g] = word;
  }
}

extern "C" __global__ void nf4_quantize_blocks_bf16(uint8_t* packed, float* amax, const __nv_bfloat16* w, long long n, int vec) {
  quantize_blocks(packed, amax, w, n, vec);
}
extern "C" __global__ void nf4_quantize_blocks_f16(uint8_t* packed, float* amax, const __half* w, long long n, int vec) {
  quantize_blocks(packed, amax, w, n, vec);
}
extern "C" __global__ void nf4_quantize_blocks_f32(uint8_t* packed, float* amax, const float* w, long long n, int vec) {
  quantize_blocks(packed, amax, w, n, vec);
}
extern "C" __global__ void nf4_quantize_blocks_f64(uint8_t* packed, float* amax, const double* w, long long n, int vec) {
  quantize_blocks(packed, amax, w, n, vec);
}

// ---------------------------------------------------------------- the mean's sum

/** The exponent of a's lowest set bit (a finite, > 0): a = mantissa · 2^(exponent − 150), or · 2^−149 when subnormal. */
__device__ __forceinline__ int lowest_bit(float a) {
  const unsigned bits = __float_as_uint(a), e = bits >> 23, mant = bits & 0x7fffffu;
  return e == 0 ? -149 + __ffs(mant) - 1 : (int)e - 150 + __ffs(mant | 0x800000u) - 1;
}

extern "C" __global__ void nf4_absmax_stats(double* stats, const float* amax, long long blocks) {
  __shared__ double sums[STATS_THREADS];
  __shared__ int lows[STATS_THREADS];
  double s = 0;
  int low = 0x7fffffff;
#pragma unroll 4
  for (long long b = threadIdx.x; b < blocks; b += STATS_THREADS) {
    const float a = amax[b];
    s += (double)a;
    if (a > 0.f && a < __int_as_float(0x7f800000)) low = min(low, lowest_bit(a));
  }
  sums[threadIdx.x] = s;
  lows[threadIdx.x] = low;
  __syncthreads();
  for (int h = STATS_THREADS / 2; h > 0; h >>= 1) {
    if (threadIdx.x < h) {
      sums[threadIdx.x] += sums[threadIdx.x + h];
      lows[threadIdx.x] = min(lows[threadIdx.x], lows[threadIdx.x + h]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    stats[0] = sums[0];
    stats[1] = (double)lows[0];
  }
}

// ---------------------------------------------------------------- nested blocks of 256

extern "C" __global__ void nf4_quantize_absmax(uint8_t* qabs, float* nabs, const float* amax, const float* map, double offset_d,
                                               long long blocks) {
  __shared__ float bounds[255];
  for (int i = threadIdx.x; i < 255; i += Q_THREADS) bounds[i] = __fdiv_rn(__fadd_rn(map[i], map[i + 1]), 2.f);
  __syncthreads();
  const float offset = (float)offset_d;                              // a float's value, passed as a double
  const int lane = threadIdx.x & 31;
  const long long nested = (blocks + 255) >> 8, warps = (long long)gridDim.x * (Q_THREADS / 32);
  for (long long c = blockIdx.x * (long long)(Q_THREADS / 32) + (threadIdx.x >> 5); c < nested; c += warps) {
    const long long from = c << 8;
    float d[8];
    float m = 0.f;
#pragma unroll
    for (int j = 0; j < 8; j++) {
      const long long b = from + lane + 32 * j;
      d[j] = b < blocks ? __fsub_rn(amax[b], offset) : 0.f;
      m = jmax(m, fabsf(d[j]));
    }
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) m = jmax(m, __shfl_xor_sync(0xffffffffu, m, o));
    if (lane == 0) nabs[c] = m;
    const float inv = inverse(m);
#pragma unroll
    for (int j = 0; j < 8; j++) {
      const long long b = from + lane + 32 * j;
      if (b >= blocks) continue;
      const float s = jclamp(__fmul_rn(d[j], inv));
      int lo = 0, hi = 255;                                          // Nf4Weight.bucket: the bounds strictly below s
      while (lo < hi) {
        const int mid = (lo + hi) >> 1;
        if (bounds[mid] < s) lo = mid + 1;
        else hi = mid;
      }
      qabs[b] = (uint8_t)lo;
    }
  }
}
