// nf4.cu: NF4 (bitsandbytes' 4-bit NormalFloat) weights, the CUDA side of dev.jomni.tensor.ops.Nf4Matmul.
//   W [N, K] packed as Nf4Weight documents: packed [N·K/2] u8, two codes per byte, element 2j in the HIGH
//   nibble; block b = 64 consecutive elements (K % 64 == 0: a block never crosses a row) scaled by
//   absmax[b] = f32(f32(ncode[qabs[b]] · nabs[b / 256]) + offset); w = f32(NF4[q] · absmax[b]), rounded to
//   the weight's dtype (wdt) and then to the compute dtype. Products without FMA contraction (__fmul_rn,
//   __fadd_rn) so the weights are the CPU reference's bits (CpuNf4Matmul).
//   nf4_dequantize_T(out, packed, qabs, nabs, ncode, offset, wdt, n):  out [n] of T, a thread per byte.
//   nf4_gemv_T_mM(y, x, packed, …, wdt, M, N, K):  y [M, N] = x [M, K] · Wᵀ for M ≤ MT ∈ {1, 2, 4, 8, 16}.
//     Decode, bandwidth-bound on the packed bytes: a block of 256 = 16 half-warps, each half-warp owns 2 rows
//     of W; per K tile of 512 the x tile sits in shared memory as f32 (padded: conflict-free float4 reads),
//     each lane reads one 16-byte chunk (32 weights, half a block) per row; f32 sums, reduced across the
//     half-warp by shuffles in a fixed order. Grid ceil(N / 32).
//   nf4_gemm_T(y, x, packed, …, wdt, M, N, K):  the same for any M, T ∈ {bf16, f16}: 64×64 output tiles,
//     K steps of 64 (one NF4 block per W row per step), W's tile dequantized into shared memory as T, wmma
//     16×16×16 on tensor cores, f32 accumulators; 4 warps, each 32×32. Grid (ceil(N/64), ceil(M/64)).
//   nf4_gemm_dx_T(dx, dy, packed, …, wdt, M, N, K):  dx [M, K] = dy [M, N] · W, same tiling over (m, k),
//     steps of 64 along n. Grid (K/64, ceil(M/64)).
//   nf4_gemv_{tc,tc8,tc2}_T_mb{1,2}(y, x, packed, qabs, nabs, ncode, offset, M, N, K, KS, KT):  the decode GEMV on
//     tensor cores for T ∈ {bf16, f16} (tc8, tc2: bf16), M ≤ 8·mb; see "decode GEMV on tensor cores" below.
//   nf4_gemm_{tc,tc2}_T, nf4_gemm_dx_{tc,tc2}_T(out, a, packed, …, wdt, M, N, K):  y = x·Wᵀ and dx = dy·W on mma.sync
//     with a cp.async ring, exact weights; see "GEMM on mma.sync" below. The launcher picks a variant by property.
//   Operands contiguous; packed 16-byte aligned (the launcher checks). Launcher: dev.jomni.cuda.CudaNf4Matmul.
#include <mma.h>
#include "mma.cuh"
#include "tensor.cuh"

using namespace nvcuda;

__constant__ float NF4[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};

/** v rounded to storage dtype dt (as a float). */
__device__ __forceinline__ float round_dt(int dt, float v) {
  switch (dt) {
    case DT_BF16: return __bfloat162float(__float2bfloat16_rn(v));
    case DT_F16: return __half2float(__float2half_rn(v));
    default: return v;
  }
}

template <typename T> __device__ __forceinline__ float to_f(T v);
template <> __device__ __forceinline__ float to_f<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <> __device__ __forceinline__ float to_f<__half>(__half v) { return __half2float(v); }
template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <typename T> __device__ __forceinline__ int dt_of();
template <> __device__ __forceinline__ int dt_of<float>() { return DT_F32; }
template <> __device__ __forceinline__ int dt_of<__nv_bfloat16>() { return DT_BF16; }
template <> __device__ __forceinline__ int dt_of<__half>() { return DT_F16; }

struct Nf4 {
  const uint8_t* packed;
  const uint8_t* qabs;
  const float* nabs;
  const float* ncode;
  float offset;
  int wdt;
  const float* lut;   // NF4 copied to shared memory: constant memory serializes the 16 distinct indices of a warp
  /** absmax of block b, as the CPU computes it (no FMA). */
  __device__ __forceinline__ float scale(long long b) const {
    return __fadd_rn(__fmul_rn(__ldg(ncode + __ldg(qabs + b)), __ldg(nabs + (b >> 8))), offset);
  }
  /** Code q of a block with scale s, rounded to wdt then to the compute dtype cdt. */
  __device__ __forceinline__ float weight(int q, float s, int cdt) const {
    return round_dt(cdt, round_dt(wdt, __fmul_rn(lut[q], s)));
  }
};

// ---------------------------------------------------------------- dequantize

template <typename T>
__device__ void dequantize(T* out, Nf4 w, long long n) {
  long long bytes = n >> 1;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < bytes; i += (long long)gridDim.x * blockDim.x) {
    int v = w.packed[i];
    float s = w.scale((2 * i) >> 6);
    out[2 * i] = from_f<T>(w.weight(v >> 4, s, dt_of<T>()));
    out[2 * i + 1] = from_f<T>(w.weight(v & 15, s, dt_of<T>()));
  }
}

#define NF4_ARGS const uint8_t *packed, const uint8_t *qabs, const float *nabs, const float *ncode, double offset, int wdt
// Every kernel's first lines: NF4's levels into shared memory (all blocks have at least 16 threads).
#define NF4_MAKE                                                \
  Nf4{packed, qabs, nabs, ncode, (float)offset, wdt, nf4_lut()}
__device__ __forceinline__ const float* nf4_lut() {
  __shared__ float lut[16];
  if (threadIdx.x < 16) lut[threadIdx.x] = NF4[threadIdx.x];
  __syncthreads();
  return lut;
}

extern "C" __global__ void nf4_dequantize_bf16(__nv_bfloat16* out, NF4_ARGS, long long n) { dequantize(out, NF4_MAKE, n); }
extern "C" __global__ void nf4_dequantize_f16(__half* out, NF4_ARGS, long long n) { dequantize(out, NF4_MAKE, n); }
extern "C" __global__ void nf4_dequantize_f32(float* out, NF4_ARGS, long long n) { dequantize(out, NF4_MAKE, n); }
extern "C" __global__ void nf4_dequantize_f64(double* out, NF4_ARGS, long long n) {
  Nf4 w = NF4_MAKE;
  long long bytes = n >> 1;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < bytes; i += (long long)gridDim.x * blockDim.x) {
    int v = w.packed[i];
    float s = w.scale((2 * i) >> 6);
    out[2 * i] = (double)w.weight(v >> 4, s, DT_F32);
    out[2 * i + 1] = (double)w.weight(v & 15, s, DT_F32);
  }
}

// ---------------------------------------------------------------- decode GEMV, M ≤ 16

constexpr int GEMV_THREADS = 256, GEMV_TILE = 512, GEMV_ROWS = 2;   // rows of W per half-warp
constexpr int GEMV_PAD = GEMV_TILE + GEMV_TILE / 32 * 4;             // 4 floats after every 32: lanes' chunks hit distinct banks

/** x's padded index in shared memory for column c of the tile. */
__device__ __forceinline__ int padded(int c) { return c + (c >> 5) * 4; }

template <typename T, int MT>
__device__ void gemv(T* y, const T* x, Nf4 w, int M, int N, int K) {
  __shared__ __align__(16) float xs[MT * GEMV_PAD];
  const int lane = threadIdx.x & 15, half = threadIdx.x >> 4;            // 16 half-warps
  const int row0 = (blockIdx.x * (GEMV_THREADS / 16) + half) * GEMV_ROWS;
  float acc[GEMV_ROWS][MT];
#pragma unroll
  for (int r = 0; r < GEMV_ROWS; r++)
#pragma unroll
    for (int m = 0; m < MT; m++) acc[r][m] = 0.f;
  for (int k0 = 0; k0 < K; k0 += GEMV_TILE) {
    const int len = min(GEMV_TILE, K - k0);                                // a multiple of 64
    __syncthreads();
    for (int i = threadIdx.x; i < M * len; i += GEMV_THREADS) {
      int m = i / len, c = i - m * len;
      xs[m * GEMV_PAD + padded(c)] = to_f(x[(long long)m * K + k0 + c]);
    }
    __syncthreads();
    if (32 * lane < len) {
#pragma unroll
      for (int r = 0; r < GEMV_ROWS; r++) {
        int n = row0 + r;
        if (n >= N) break;
        long long e = (long long)n * K + k0 + 32 * lane;                   // first of this lane's 32 weights
        uint4 chunk = __ldg(reinterpret_cast<const uint4*>(w.packed + (e >> 1)));
        float s = w.scale(e >> 6);
        const uint32_t word[4] = {chunk.x, chunk.y, chunk.z, chunk.w};
#pragma unroll
        for (int q = 0; q < 4; q++) {                                        // 8 weights per 32-bit word
          float wv[8];
#pragma unroll
          for (int b = 0; b < 4; b++) {
            int byte = (word[q] >> (8 * b)) & 0xff;                          // little-endian: byte b of the word
            wv[2 * b] = w.weight(byte >> 4, s, dt_of<T>());
            wv[2 * b + 1] = w.weight(byte & 15, s, dt_of<T>());
          }
          const int c = padded(32 * lane + 8 * q);
#pragma unroll
          for (int m = 0; m < MT; m++) {
            if (m < M) {
              float4 a = *reinterpret_cast<const float4*>(xs + m * GEMV_PAD + c);
              float4 b = *reinterpret_cast<const float4*>(xs + m * GEMV_PAD + c + 4);
              acc[r][m] += a.x * wv[0] + a.y * wv[1] + a.z * wv[2] + a.w * wv[3]
                         + b.x * wv[4] + b.y * wv[5] + b.z * wv[6] + b.w * wv[7];
            }
          }
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < GEMV_ROWS; r++)
#pragma unroll
    for (int m = 0; m < MT; m++) {
      float v = acc[r][m];
#pragma unroll
      for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);   // within the half-warp
      acc[r][m] = v;
    }
  if (lane == 0)
#pragma unroll
    for (int r = 0; r < GEMV_ROWS; r++) {
      int n = row0 + r;
      if (n < N)
#pragma unroll
        for (int m = 0; m < MT; m++)
          if (m < M) y[(long long)m * N + n] = from_f<T>(acc[r][m]);
    }
}

#define GEMV(T, NAME, MT) \
  extern "C" __global__ void __launch_bounds__(GEMV_THREADS) nf4_gemv_##NAME##_m##MT(T* y, const T* x, NF4_ARGS, int M, int N, int K) { \
    gemv<T, MT>(y, x, NF4_MAKE, M, N, K); }
#define GEMV_ALL(T, NAME) GEMV(T, NAME, 1) GEMV(T, NAME, 2) GEMV(T, NAME, 4) GEMV(T, NAME, 8) GEMV(T, NAME, 16)
GEMV_ALL(__nv_bfloat16, bf16)
GEMV_ALL(__half, f16)
GEMV_ALL(float, f32)

// ---------------------------------------------------------------- decode GEMV on tensor cores, M ≤ 16

// y[M, N] = x[M, K] · Wᵀ, T ∈ {bf16, f16}, bandwidth-bound on the packed bytes. W's rows are the A operand of
// mma m16n8k16 (16 rows × 16 k), x the B operand (k × 8 columns, a column per row of x: M ≤ 8·MB), f32
// accumulators. A warp's unit is 16 rows × one NF4 block (64 k): lane (g, t) reads 8 bytes (16 codes, k 16t..16t+15
// of the block) of rows g and g+8 (one 8-byte load each), so every mma's k lies in one block and the block's scale
// multiplies its f32 partial sums once: acc += absmax · Σ x·CODE[q]. The codes become bf16/f16 pairs through a
// 256-entry byte → (CODE[hi], CODE[lo]) table in shared memory, replicated 32 times so lane l always reads bank l
// (no conflicts). The weights are thus s·round(CODE[q]) rather than the CPU's round(CODE[q]·s): both within 2^-9
// relative of CODE[q]·s, not bit-identical (bitsandbytes' own GEMV rounds differently again).
//   Blocks of 8 warps, persistent (grid-stride over items of 16·8/KS rows); the KS warps of an item's row tile split
//   K (their partial sums added in shared memory in a fixed order). x is staged in shared memory per tile of KT
//   columns (rows padded by 8 elements: conflict-free 16-byte reads). A warp loads U blocks of its rows at once
//   (2U loads in flight) before it decodes them.
namespace gtc {
constexpr int THREADS = 256, WARPS = 8, TABLE_BYTES = 256 * 32 * 4, NCODE_BYTES = 256 * 4;
}

template <typename T>
__device__ __forceinline__ uint32_t code_pair(int byte) { return pack2<T>(NF4[byte >> 4], NF4[byte & 15]); }

template <typename T, int MB, int U, bool EARLY_SCALES>
__device__ void gemv_tc(T* y, const T* x, const uint8_t* packed, const uint8_t* qabs, const float* nabs, const float* ncode_g,
                        float offset, int M, int N, int K, int KS, int KT) {
  extern __shared__ __align__(128) uint8_t smem[];
  uint32_t* tbl = reinterpret_cast<uint32_t*>(smem);                                   // [256 bytes][32 lanes]
  float* ncode = reinterpret_cast<float*>(smem + gtc::TABLE_BYTES);                    // the absmax codes' map
  T* xs = reinterpret_cast<T*>(smem + gtc::TABLE_BYTES + gtc::NCODE_BYTES);            // [M][KT + 8]
  const int XS = KT + 8;
  float* red = reinterpret_cast<float*>(xs + (long long)M * XS);                        // [WARPS][16][8·MB] (KS > 1)
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  for (int i = tid; i < 256 * 32; i += gtc::THREADS) tbl[i] = code_pair<T>(i >> 5);
  for (int i = tid; i < 256; i += gtc::THREADS) ncode[i] = ncode_g[i];
  const uint32_t* tl = tbl + lane;
  const int tiles = gtc::WARPS / KS, rows_per_item = 16 * tiles;
  const int wtile = warp / KS, ks = warp % KS;
  const int items = (N + rows_per_item - 1) / rows_per_item, KB = K >> 6;
  int staged = -1;
  for (int item = blockIdx.x; item < items; item += gridDim.x) {
    const int n0 = item * rows_per_item + 16 * wtile + g, n1 = n0 + 8;                 // this lane's two rows
    const bool ok0 = n0 < N, ok1 = n1 < N;
    const uint8_t* p0 = packed + (long long)n0 * (K >> 1) + 8 * t;
    const uint8_t* p1 = packed + (long long)n1 * (K >> 1) + 8 * t;
    float acc[MB][4];
#pragma unroll
    for (int mb = 0; mb < MB; mb++)
#pragma unroll
      for (int i = 0; i < 4; i++) acc[mb][i] = 0.f;
    for (int k0 = 0; k0 < K; k0 += KT) {
      const int len = min(KT, K - k0), blocks = len >> 6;
      if (k0 != staged) {                                                              // x[:, k0 : k0 + len] → xs
        __syncthreads();
        const int chunks = len >> 3;
        for (int i = tid; i < M * chunks; i += gtc::THREADS) {
          const int m = i / chunks, c = (i - m * chunks) << 3;
          *reinterpret_cast<uint4*>(xs + m * XS + c) = __ldg(reinterpret_cast<const uint4*>(x + (long long)m * K + k0 + c));
        }
        __syncthreads();
        staged = k0;
      }
      const int per = (blocks + KS - 1) / KS, b0 = ks * per, b1 = min(blocks, b0 + per);
      for (int bb = b0; bb < b1; bb += U) {
        uint2 c0[U], c1[U];
        int q0[U], q1[U];                                                              // absmax codes and nested absmax
        float a0[U], a1[U];
#pragma unroll
        for (int u = 0; u < U; u++) {                                                  // 2U loads in flight
          const bool in = bb + u < b1;
          const long long at = (long long)(k0 >> 1) + 32 * (bb + u);
          c0[u] = in && ok0 ? __ldg(reinterpret_cast<const uint2*>(p0 + at)) : make_uint2(0, 0);
          c1[u] = in && ok1 ? __ldg(reinterpret_cast<const uint2*>(p1 + at)) : make_uint2(0, 0);
          if (EARLY_SCALES) {                                                          // with the codes, not after them
            const long long i0 = (long long)n0 * KB + (k0 >> 6) + bb + u, i1 = i0 + 8LL * KB;
            q0[u] = in && ok0 ? __ldg(qabs + i0) : 0;
            q1[u] = in && ok1 ? __ldg(qabs + i1) : 0;
            a0[u] = in && ok0 ? __ldg(nabs + (i0 >> 8)) : 0.f;
            a1[u] = in && ok1 ? __ldg(nabs + (i1 >> 8)) : 0.f;
          }
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
          const int b = bb + u;
          if (b >= b1) break;
          const int kb = (k0 >> 6) + b;                                                // the block within the row
          float s0, s1;
          if (EARLY_SCALES) {
            s0 = ok0 ? __fadd_rn(__fmul_rn(ncode[q0[u]], a0[u]), offset) : 0.f;
            s1 = ok1 ? __fadd_rn(__fmul_rn(ncode[q1[u]], a1[u]), offset) : 0.f;
          } else {                                                                     // loads after the break: serialized
            s0 = ok0 ? __fadd_rn(__fmul_rn(ncode[__ldg(qabs + (long long)n0 * KB + kb)], __ldg(nabs + (((long long)n0 * KB + kb) >> 8))), offset) : 0.f;
            s1 = ok1 ? __fadd_rn(__fmul_rn(ncode[__ldg(qabs + (long long)n1 * KB + kb)], __ldg(nabs + (((long long)n1 * KB + kb) >> 8))), offset) : 0.f;
          }
          uint32_t xf[MB][8];                                                          // x[m][16t .. 16t+15] of the block
#pragma unroll
          for (int mb = 0; mb < MB; mb++) {
            const int m = 8 * mb + g;
            if (m < M) {
              const uint4* xp = reinterpret_cast<const uint4*>(xs + m * XS + 64 * b + 16 * t);
              const uint4 lo = xp[0], hi = xp[1];
              xf[mb][0] = lo.x; xf[mb][1] = lo.y; xf[mb][2] = lo.z; xf[mb][3] = lo.w;
              xf[mb][4] = hi.x; xf[mb][5] = hi.y; xf[mb][6] = hi.z; xf[mb][7] = hi.w;
            } else {
#pragma unroll
              for (int i = 0; i < 8; i++) xf[mb][i] = 0u;
            }
          }
          float d[MB][4];
#pragma unroll
          for (int mb = 0; mb < MB; mb++)
#pragma unroll
            for (int i = 0; i < 4; i++) d[mb][i] = 0.f;
#pragma unroll
          for (int j = 0; j < 4; j++) {                                                // bytes 2j, 2j+1: k 16t+4j .. +3
            const uint32_t w0 = j < 2 ? c0[u].x : c0[u].y, w1 = j < 2 ? c1[u].x : c1[u].y;
            const int sh = (j & 1) * 16;
            const uint32_t a[4] = {tl[((w0 >> sh) & 0xff) << 5], tl[((w1 >> sh) & 0xff) << 5],
                                   tl[((w0 >> (sh + 8)) & 0xff) << 5], tl[((w1 >> (sh + 8)) & 0xff) << 5]};
#pragma unroll
            for (int mb = 0; mb < MB; mb++) mma16816<T>(d[mb], a, xf[mb][2 * j], xf[mb][2 * j + 1]);
          }
#pragma unroll
          for (int mb = 0; mb < MB; mb++) {
            acc[mb][0] = fmaf(s0, d[mb][0], acc[mb][0]);
            acc[mb][1] = fmaf(s0, d[mb][1], acc[mb][1]);
            acc[mb][2] = fmaf(s1, d[mb][2], acc[mb][2]);
            acc[mb][3] = fmaf(s1, d[mb][3], acc[mb][3]);
          }
        }
      }
    }
    // acc[mb][0..1]: row n0, x rows m = 8mb + 2t, +1; acc[mb][2..3]: row n1.
    if (KS == 1) {
#pragma unroll
      for (int mb = 0; mb < MB; mb++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
          const int m = 8 * mb + 2 * t + (i & 1), n = i < 2 ? n0 : n1;
          if (m < M && n < N) y[(long long)m * N + n] = from_f<T>(acc[mb][i]);
        }
    } else {
      float* r = red + warp * (16 * 8 * MB);                                           // [16 rows][8·MB]
#pragma unroll
      for (int mb = 0; mb < MB; mb++)
#pragma unroll
        for (int i = 0; i < 4; i++) r[(g + (i < 2 ? 0 : 8)) * 8 * MB + 8 * mb + 2 * t + (i & 1)] = acc[mb][i];
      __syncthreads();
      const int item0 = item * rows_per_item;
      for (int i = tid; i < rows_per_item * M; i += gtc::THREADS) {
        const int rl = i / M, m = i - rl * M, n = item0 + rl;
        const int tile = rl >> 4, row = rl & 15;
        float v = 0.f;
        for (int k = 0; k < KS; k++) v += red[(tile * KS + k) * (16 * 8 * MB) + row * 8 * MB + m];
        if (n < N) y[(long long)m * N + n] = from_f<T>(v);
      }
      __syncthreads();
    }
  }
}

#define GEMV_TC(T, NAME, MB, U, EARLY, MINB, V)                                                                           \
  extern "C" __global__ void __launch_bounds__(gtc::THREADS, MINB) nf4_gemv_##V##_##NAME##_mb##MB(                          \
      T* y, const T* x, const uint8_t* packed, const uint8_t* qabs, const float* nabs, const float* ncode, double offset, \
      int M, int N, int K, int KS, int KT) {                                                                          \
    gemv_tc<T, MB, U, EARLY>(y, x, packed, qabs, nabs, ncode, (float)offset, M, N, K, KS, KT); }
// tc: 4 blocks per lane in flight, their scales' loads issued with the codes; tc8, tc2: 8, 2 blocks; tcs: as tc but
// each block's scale loaded after its codes (one more round trip per block: 0.097 ms for the lm_head on the H200).
// MINB: blocks per SM the registers must allow (3 where it costs no spills).
GEMV_TC(__nv_bfloat16, bf16, 1, 4, true, 3, tc) GEMV_TC(__nv_bfloat16, bf16, 2, 4, true, 2, tc)
GEMV_TC(__half, f16, 1, 4, true, 3, tc) GEMV_TC(__half, f16, 2, 4, true, 2, tc)
GEMV_TC(__nv_bfloat16, bf16, 1, 8, true, 2, tc8) GEMV_TC(__nv_bfloat16, bf16, 2, 8, true, 2, tc8)
GEMV_TC(__nv_bfloat16, bf16, 1, 2, true, 3, tc2) GEMV_TC(__nv_bfloat16, bf16, 2, 2, true, 3, tc2)
GEMV_TC(__nv_bfloat16, bf16, 1, 4, false, 3, tcs) GEMV_TC(__nv_bfloat16, bf16, 2, 4, false, 3, tcs)

// The same GEMV, software-pipelined (variants tcp, tcp2): a warp's next U blocks (codes and scales) are loaded
// before it decodes the current ones, and the first U blocks of an item's k-tile before x is staged, so the staging,
// the code table's construction and the first loads overlap (one round trip instead of three for small weights).
template <int U>
struct Nf4Blocks {                       // U blocks of a lane's two rows: 8 code bytes, absmax code, nested absmax
  uint2 c0[U], c1[U];
  int q0[U], q1[U];
  float a0[U], a1[U];
};

template <typename T, int MB, int U>
__device__ void gemv_tcp(T* y, const T* x, const uint8_t* packed, const uint8_t* qabs, const float* nabs, const float* ncode_g,
                         float offset, int M, int N, int K, int KS, int KT) {
  extern __shared__ __align__(128) uint8_t smem[];
  uint32_t* tbl = reinterpret_cast<uint32_t*>(smem);
  float* ncode = reinterpret_cast<float*>(smem + gtc::TABLE_BYTES);
  T* xs = reinterpret_cast<T*>(smem + gtc::TABLE_BYTES + gtc::NCODE_BYTES);
  const int XS = KT + 8;
  float* red = reinterpret_cast<float*>(xs + (long long)M * XS);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const uint32_t* tl = tbl + lane;
  const int tiles = gtc::WARPS / KS, rows_per_item = 16 * tiles;
  const int wtile = warp / KS, ks = warp % KS;
  const int items = (N + rows_per_item - 1) / rows_per_item, KB = K >> 6;
  bool built = false;
  int staged = -1;
  for (int item = blockIdx.x; item < items; item += gridDim.x) {
    const int n0 = item * rows_per_item + 16 * wtile + g, n1 = n0 + 8;
    const bool ok0 = n0 < N, ok1 = n1 < N;
    const uint8_t* p0 = packed + (long long)n0 * (K >> 1) + 8 * t;
    const uint8_t* p1 = packed + (long long)n1 * (K >> 1) + 8 * t;
    auto fetch = [&](Nf4Blocks<U>& B, int k0, int bb, int b1) {
#pragma unroll
      for (int u = 0; u < U; u++) {
        const bool in = bb + u < b1;
        const long long at = (long long)(k0 >> 1) + 32 * (bb + u);
        const long long i0 = (long long)n0 * KB + (k0 >> 6) + bb + u, i1 = i0 + 8LL * KB;
        B.c0[u] = in && ok0 ? __ldg(reinterpret_cast<const uint2*>(p0 + at)) : make_uint2(0, 0);
        B.c1[u] = in && ok1 ? __ldg(reinterpret_cast<const uint2*>(p1 + at)) : make_uint2(0, 0);
        B.q0[u] = in && ok0 ? __ldg(qabs + i0) : 0;
        B.q1[u] = in && ok1 ? __ldg(qabs + i1) : 0;
        B.a0[u] = in && ok0 ? __ldg(nabs + (i0 >> 8)) : 0.f;
        B.a1[u] = in && ok1 ? __ldg(nabs + (i1 >> 8)) : 0.f;
      }
    };
    float acc[MB][4];
#pragma unroll
    for (int mb = 0; mb < MB; mb++)
#pragma unroll
      for (int i = 0; i < 4; i++) acc[mb][i] = 0.f;
    for (int k0 = 0; k0 < K; k0 += KT) {
      const int len = min(KT, K - k0), blocks = len >> 6;
      const int per = (blocks + KS - 1) / KS, b0 = ks * per, b1 = min(blocks, b0 + per);
      Nf4Blocks<U> cur;
      if (b0 < b1) fetch(cur, k0, b0, b1);                                               // in flight during the staging
      if (k0 != staged) {
        __syncthreads();
        if (!built) {
          for (int i = tid; i < 256 * 32; i += gtc::THREADS) tbl[i] = code_pair<T>(i >> 5);
          for (int i = tid; i < 256; i += gtc::THREADS) ncode[i] = ncode_g[i];
          built = true;
        }
        const int chunks = len >> 3;
        for (int i = tid; i < M * chunks; i += gtc::THREADS) {
          const int m = i / chunks, c = (i - m * chunks) << 3;
          *reinterpret_cast<uint4*>(xs + m * XS + c) = __ldg(reinterpret_cast<const uint4*>(x + (long long)m * K + k0 + c));
        }
        __syncthreads();
        staged = k0;
      }
      for (int bb = b0; bb < b1; bb += U) {
        Nf4Blocks<U> nxt;
        const bool more = bb + U < b1;
        if (more) fetch(nxt, k0, bb + U, b1);
#pragma unroll
        for (int u = 0; u < U; u++) {
          const int b = bb + u;
          if (b >= b1) break;
          const float s0 = ok0 ? __fadd_rn(__fmul_rn(ncode[cur.q0[u]], cur.a0[u]), offset) : 0.f;
          const float s1 = ok1 ? __fadd_rn(__fmul_rn(ncode[cur.q1[u]], cur.a1[u]), offset) : 0.f;
          uint32_t xf[MB][8];
#pragma unroll
          for (int mb = 0; mb < MB; mb++) {
            const int m = 8 * mb + g;
            if (m < M) {
              const uint4* xp = reinterpret_cast<const uint4*>(xs + m * XS + 64 * b + 16 * t);
              const uint4 lo = xp[0], hi = xp[1];
              xf[mb][0] = lo.x; xf[mb][1] = lo.y; xf[mb][2] = lo.z; xf[mb][3] = lo.w;
              xf[mb][4] = hi.x; xf[mb][5] = hi.y; xf[mb][6] = hi.z; xf[mb][7] = hi.w;
            } else {
#pragma unroll
              for (int i = 0; i < 8; i++) xf[mb][i] = 0u;
            }
          }
          float d[MB][4];
#pragma unroll
          for (int mb = 0; mb < MB; mb++)
#pragma unroll
            for (int i = 0; i < 4; i++) d[mb][i] = 0.f;
#pragma unroll
          for (int j = 0; j < 4; j++) {
            const uint32_t w0 = j < 2 ? cur.c0[u].x : cur.c0[u].y, w1 = j < 2 ? cur.c1[u].x : cur.c1[u].y;
            const int sh = (j & 1) * 16;
            const uint32_t a[4] = {tl[((w0 >> sh) & 0xff) << 5], tl[((w1 >> sh) & 0xff) << 5],
                                   tl[((w0 >> (sh + 8)) & 0xff) << 5], tl[((w1 >> (sh + 8)) & 0xff) << 5]};
#pragma unroll
            for (int mb = 0; mb < MB; mb++) mma16816<T>(d[mb], a, xf[mb][2 * j], xf[mb][2 * j + 1]);
          }
#pragma unroll
          for (int mb = 0; mb < MB; mb++) {
            acc[mb][0] = fmaf(s0, d[mb][0], acc[mb][0]);
            acc[mb][1] = fmaf(s0, d[mb][1], acc[mb][1]);
            acc[mb][2] = fmaf(s1, d[mb][2], acc[mb][2]);
            acc[mb][3] = fmaf(s1, d[mb][3], acc[mb][3]);
          }
        }
        if (more) cur = nxt;
      }
    }
    if (KS == 1) {
#pragma unroll
      for (int mb = 0; mb < MB; mb++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
          const int m = 8 * mb + 2 * t + (i & 1), n = i < 2 ? n0 : n1;
          if (m < M && n < N) y[(long long)m * N + n] = from_f<T>(acc[mb][i]);
        }
    } else {
      float* r = red + warp * (16 * 8 * MB);
#pragma unroll
      for (int mb = 0; mb < MB; mb++)
#pragma unroll
        for (int i = 0; i < 4; i++) r[(g + (i < 2 ? 0 : 8)) * 8 * MB + 8 * mb + 2 * t + (i & 1)] = acc[mb][i];
      __syncthreads();
      const int item0 = item * rows_per_item;
      for (int i = tid; i < rows_per_item * M; i += gtc::THREADS) {
        const int rl = i / M, m = i - rl * M, n = item0 + rl;
        const int tile = rl >> 4, row = rl & 15;
        float v = 0.f;
        for (int k = 0; k < KS; k++) v += red[(tile * KS + k) * (16 * 8 * MB) + row * 8 * MB + m];
        if (n < N) y[(long long)m * N + n] = from_f<T>(v);
      }
      __syncthreads();
    }
  }
}

#define GEMV_TCP(T, NAME, MB, U, MINB, V)                                                                             \
  extern "C" __global__ void __launch_bounds__(gtc::THREADS, MINB) nf4_gemv_##V##_##NAME##_mb##MB(                    \
      T* y, const T* x, const uint8_t* packed, const uint8_t* qabs, const float* nabs, const float* ncode, double offset, \
      int M, int N, int K, int KS, int KT) {                                                                          \
    gemv_tcp<T, MB, U>(y, x, packed, qabs, nabs, ncode, (float)offset, M, N, K, KS, KT); }
// tcp: 4 blocks per lane decoded while the next 4 load; tcp2: 2 and 2.
GEMV_TCP(__nv_bfloat16, bf16, 1, 4, 2, tcp) GEMV_TCP(__nv_bfloat16, bf16, 2, 4, 1, tcp)
GEMV_TCP(__nv_bfloat16, bf16, 1, 2, 3, tcp2) GEMV_TCP(__nv_bfloat16, bf16, 2, 2, 2, tcp2)

// The same GEMV with the codes brought by cp.async (variant tca): each warp streams its 16 rows through a ring of
// gtc::ST stages of U = 4 blocks (16 rows × 128 bytes, 16-byte chunks XOR-swizzled by row: conflict-free 8-byte
// reads), ST − 1 stages in flight without holding registers; its rows' absmax codes (16·K/64 contiguous bytes)
// arrive by cp.async too, with the first stage. One item per block (not persistent): a block's table and x staging
// overlap the other blocks' streams. K ≤ 8192 (the absmax span fits its slot); x staged per tile of KT columns.
namespace gtc {
constexpr int ST = 3, STAGE_BYTES = 16 * 128, QSPAN_BYTES = 2048;
constexpr int WARP_BYTES = ST * STAGE_BYTES + QSPAN_BYTES;
}

template <typename T, int MB>
__device__ void gemv_tca(T* y, const T* x, const uint8_t* packed, const uint8_t* qabs, const float* nabs, const float* ncode_g,
                         float offset, int M, int N, int K, int KS, int KT) {
  constexpr int U = 4;
  extern __shared__ __align__(128) uint8_t smem[];
  uint32_t* tbl = reinterpret_cast<uint32_t*>(smem);
  float* ncode = reinterpret_cast<float*>(smem + gtc::TABLE_BYTES);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  uint8_t* ring = smem + gtc::TABLE_BYTES + gtc::NCODE_BYTES + warp * gtc::WARP_BYTES;  // this warp's stages
  uint8_t* qspan = ring + gtc::ST * gtc::STAGE_BYTES;                                    // its rows' absmax codes
  T* xs = reinterpret_cast<T*>(smem + gtc::TABLE_BYTES + gtc::NCODE_BYTES + gtc::WARPS * gtc::WARP_BYTES);
  const int XS = KT + 8;
  float* red = reinterpret_cast<float*>(xs + (long long)M * XS);
  const uint32_t* tl = tbl + lane;
  const int tiles = gtc::WARPS / KS, rows_per_item = 16 * tiles;
  const int wtile = warp / KS, ks = warp % KS, KB = K >> 6;
  const int item = blockIdx.x, r0 = item * rows_per_item + 16 * wtile;                  // the warp's first row
  const int n0 = r0 + g, n1 = n0 + 8;
  const bool ok0 = n0 < N, ok1 = n1 < N;
  // cp.async of stage st ← blocks [bb, bb + U) of the warp's 16 rows, k-tile at k0 (blocks past b1 or rows past N: 0)
  auto issue = [&](int st, int k0, int bb, int b1) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int c = lane + 32 * i, r = c >> 3, ch = c & 7;
      const bool ok = r0 + r < N && bb + (ch >> 1) < b1;
      const uint8_t* src = packed + (long long)(r0 + r) * (K >> 1) + (k0 >> 1) + 32 * bb + 16 * ch;
      cp_async16(ring + st * gtc::STAGE_BYTES + r * 128 + ((ch ^ (r & 7)) << 4), ok ? src : packed, ok ? 16 : 0);
    }
  };
  {                                                                                      // the absmax codes' span
    const long long start = (long long)r0 * KB, end = (long long)N * KB;
    for (int j = lane; j < KB; j += 32) {                                                // 16·KB bytes = KB chunks
      const long long at = start + 16LL * j;
      const int bytes = (int)max(0LL, min(16LL, end - at));
      cp_async16(qspan + 16 * j, bytes > 0 ? qabs + at : qabs, bytes);
    }
  }
  float acc[MB][4];
#pragma unroll
  for (int mb = 0; mb < MB; mb++)
#pragma unroll
    for (int i = 0; i < 4; i++) acc[mb][i] = 0.f;
  for (int k0 = 0; k0 < K; k0 += KT) {
    const int len = min(KT, K - k0), blocks = len >> 6;
    const int per = (blocks + KS - 1) / KS, b0 = ks * per, b1 = min(blocks, b0 + per);
    const int batches = b1 > b0 ? (b1 - b0 + U - 1) / U : 0;
#pragma unroll
    for (int i = 0; i < gtc::ST - 1; i++) {                                              // ST − 1 stages ahead
      if (i < batches) issue(i, k0, b0 + U * i, b1);
      cp_async_commit();
    }
    __syncthreads();                                                                     // the previous tile's readers
    if (k0 == 0) {
      for (int i = tid; i < 256 * 32; i += gtc::THREADS) tbl[i] = code_pair<T>(i >> 5);
      for (int i = tid; i < 256; i += gtc::THREADS) ncode[i] = ncode_g[i];
    }
    const int chunks = len >> 3;
    for (int i = tid; i < M * chunks; i += gtc::THREADS) {
      const int m = i / chunks, c = (i - m * chunks) << 3;
      *reinterpret_cast<uint4*>(xs + m * XS + c) = __ldg(reinterpret_cast<const uint4*>(x + (long long)m * K + k0 + c));
    }
    __syncthreads();
    for (int i = 0; i < batches; i++) {
      if (i + gtc::ST - 1 < batches) issue((i + gtc::ST - 1) % gtc::ST, k0, b0 + U * (i + gtc::ST - 1), b1);
      cp_async_commit();
      cp_async_wait<gtc::ST - 1>();                                                      // batch i (and the span) landed
      __syncwarp();                                                                      // lanes read each other's copies
      const uint8_t* st = ring + (i % gtc::ST) * gtc::STAGE_BYTES;
      const int bb = b0 + U * i;
#pragma unroll
      for (int u = 0; u < U; u++) {
        const int b = bb + u;
        if (b >= b1) break;
        const int kb = (k0 >> 6) + b;
        const int off = (((2 * u + (t >> 1)) ^ (g & 7)) << 4) + 8 * (t & 1);
        const uint2 c0 = *reinterpret_cast<const uint2*>(st + g * 128 + off);
        const uint2 c1 = *reinterpret_cast<const uint2*>(st + (g + 8) * 128 + off);
        const float s0 = ok0 ? __fadd_rn(__fmul_rn(ncode[qspan[g * KB + kb]], __ldg(nabs + (((long long)n0 * KB + kb) >> 8))), offset) : 0.f;
        const float s1 = ok1 ? __fadd_rn(__fmul_rn(ncode[qspan[(g + 8) * KB + kb]], __ldg(nabs + (((long long)n1 * KB + kb) >> 8))), offset) : 0.f;
        uint32_t xf[MB][8];
#pragma unroll
        for (int mb = 0; mb < MB; mb++) {
          const int m = 8 * mb + g;
          if (m < M) {
            const uint4* xp = reinterpret_cast<const uint4*>(xs + m * XS + 64 * b + 16 * t);
            const uint4 lo = xp[0], hi = xp[1];
            xf[mb][0] = lo.x; xf[mb][1] = lo.y; xf[mb][2] = lo.z; xf[mb][3] = lo.w;
            xf[mb][4] = hi.x; xf[mb][5] = hi.y; xf[mb][6] = hi.z; xf[mb][7] = hi.w;
          } else {
#pragma unroll
            for (int j = 0; j < 8; j++) xf[mb][j] = 0u;
          }
        }
        float d[MB][4];
#pragma unroll
        for (int mb = 0; mb < MB; mb++)
#pragma unroll
          for (int j = 0; j < 4; j++) d[mb][j] = 0.f;
#pragma unroll
        for (int j = 0; j < 4; j++) {
          const uint32_t w0 = j < 2 ? c0.x : c0.y, w1 = j < 2 ? c1.x : c1.y;
          const int sh = (j & 1) * 16;
          const uint32_t a[4] = {tl[((w0 >> sh) & 0xff) << 5], tl[((w1 >> sh) & 0xff) << 5],
                                 tl[((w0 >> (sh + 8)) & 0xff) << 5], tl[((w1 >> (sh + 8)) & 0xff) << 5]};
#pragma unroll
          for (int mb = 0; mb < MB; mb++) mma16816<T>(d[mb], a, xf[mb][2 * j], xf[mb][2 * j + 1]);
        }
#pragma unroll
        for (int mb = 0; mb < MB; mb++) {
          acc[mb][0] = fmaf(s0, d[mb][0], acc[mb][0]);
          acc[mb][1] = fmaf(s0, d[mb][1], acc[mb][1]);
          acc[mb][2] = fmaf(s1, d[mb][2], acc[mb][2]);
          acc[mb][3] = fmaf(s1, d[mb][3], acc[mb][3]);
        }
      }
      __syncwarp();                                                                      // stage i % ST free to refill
    }
    cp_async_wait<0>();
  }
  if (KS == 1) {
#pragma unroll
    for (int mb = 0; mb < MB; mb++)
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const int m = 8 * mb + 2 * t + (i & 1), n = i < 2 ? n0 : n1;
        if (m < M && n < N) y[(long long)m * N + n] = from_f<T>(acc[mb][i]);
      }
  } else {
    float* r = red + warp * (16 * 8 * MB);
#pragma unroll
    for (int mb = 0; mb < MB; mb++)
#pragma unroll
      for (int i = 0; i < 4; i++) r[(g + (i < 2 ? 0 : 8)) * 8 * MB + 8 * mb + 2 * t + (i & 1)] = acc[mb][i];
    __syncthreads();
    const int item0 = item * rows_per_item;
    for (int i = tid; i < rows_per_item * M; i += gtc::THREADS) {
      const int rl = i / M, m = i - rl * M, n = item0 + rl;
      const int tile = rl >> 4, row = rl & 15;
      float v = 0.f;
      for (int k = 0; k < KS; k++) v += red[(tile * KS + k) * (16 * 8 * MB) + row * 8 * MB + m];
      if (n < N) y[(long long)m * N + n] = from_f<T>(v);
    }
  }
}

#define GEMV_TCA(T, NAME, MB, MINB)                                                                                   \
  extern "C" __global__ void __launch_bounds__(gtc::THREADS, MINB) nf4_gemv_tca_##NAME##_mb##MB(                      \
      T* y, const T* x, const uint8_t* packed, const uint8_t* qabs, const float* nabs, const float* ncode, double offset, \
      int M, int N, int K, int KS, int KT) {                                                                          \
    gemv_tca<T, MB>(y, x, packed, qabs, nabs, ncode, (float)offset, M, N, K, KS, KT); }
GEMV_TCA(__nv_bfloat16, bf16, 1, 2) GEMV_TCA(__nv_bfloat16, bf16, 2, 2)

// ---------------------------------------------------------------- fused dequant GEMM (tensor cores): wmma, the fallback for shapes
// the mma.sync kernels do not take (dx with N not a multiple of 8 or dy not 16-byte aligned, f16 dx) and the variant wmma

constexpr int TM = 64, TN = 64, TK = 64, LD = TK + 8, GEMM_THREADS = 128;   // LD: a multiple of 8, rows 16-byte aligned

/**
 * Ws[r][0, 64) ← W[n0 + r, k0 : k0 + 64) dequantized, for r < 64 (zeros past N): each thread one 16-byte
 * chunk (32 weights) of one row, rows spaced by 64·LD elements in shared memory.
 */
template <typename T>
__device__ __forceinline__ void load_w_tile(T* ws, Nf4 w, int n0, int k0, int N, int K) {
  const int r = threadIdx.x >> 1, part = threadIdx.x & 1;      // 128 threads: 64 rows × 2 halves
  const int n = n0 + r;
  T* dst = ws + r * LD + 32 * part;
  if (n >= N) {
#pragma unroll
    for (int j = 0; j < 32; j++) dst[j] = from_f<T>(0.f);
    return;
  }
  long long e = (long long)n * K + k0 + 32 * part;
  uint4 chunk = __ldg(reinterpret_cast<const uint4*>(w.packed + (e >> 1)));
  float s = w.scale(e >> 6);
  const uint32_t word[4] = {chunk.x, chunk.y, chunk.z, chunk.w};
#pragma unroll
  for (int q = 0; q < 4; q++)
#pragma unroll
    for (int b = 0; b < 4; b++) {
      int byte = (word[q] >> (8 * b)) & 0xff;
      dst[8 * q + 2 * b] = from_f<T>(w.weight(byte >> 4, s, dt_of<T>()));
      dst[8 * q + 2 * b + 1] = from_f<T>(w.weight(byte & 15, s, dt_of<T>()));
    }
}

/** The 64×64 f32 accumulators of 4 warps (each 32×32 as 2×2 fragments) stored through shared memory to out [rows, ld]. */
template <typename T>
__device__ __forceinline__ void store_tile(T* out, long long ld, int rows, int cols, int m0, int c0,
                                           wmma::fragment<wmma::accumulator, 16, 16, 16, float> (&acc)[2][2], float* cs) {
  const int warp = threadIdx.x >> 5, wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
  __syncthreads();
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 2; j++) wmma::store_matrix_sync(cs + (wm + 16 * i) * TN + wn + 16 * j, acc[i][j], TN, wmma::mem_row_major);
  __syncthreads();
  for (int i = threadIdx.x; i < TM * TN; i += GEMM_THREADS) {
    int r = i / TN, c = i - r * TN;
    if (m0 + r < rows && c0 + c < cols) out[(long long)(m0 + r) * ld + c0 + c] = from_f<T>(cs[i]);
  }
}

template <typename T>
__device__ void gemm(T* y, const T* x, Nf4 w, int M, int N, int K) {
  __shared__ __align__(32) T xs[TM * LD];
  __shared__ __align__(32) T ws[TN * LD];
  __shared__ __align__(32) float cs[TM * TN];
  const int n0 = blockIdx.x * TN, m0 = blockIdx.y * TM;
  const int warp = threadIdx.x >> 5, wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.f);
  for (int k0 = 0; k0 < K; k0 += TK) {
    __syncthreads();
    for (int i = threadIdx.x; i < TM * (TK / 8); i += GEMM_THREADS) {     // x tile: 16-byte rows chunks (K % 64 == 0)
      int r = i >> 3, c = (i & 7) * 8;
      uint4 v = m0 + r < M ? *reinterpret_cast<const uint4*>(x + (long long)(m0 + r) * K + k0 + c) : make_uint4(0, 0, 0, 0);
      *reinterpret_cast<uint4*>(xs + r * LD + c) = v;
    }
    load_w_tile(ws, w, n0, k0, N, K);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < TK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b[2];   // ws[n][k]: Wᵀ column-major
#pragma unroll
      for (int i = 0; i < 2; i++) wmma::load_matrix_sync(a[i], xs + (wm + 16 * i) * LD + kk, LD);
#pragma unroll
      for (int j = 0; j < 2; j++) wmma::load_matrix_sync(b[j], ws + (wn + 16 * j) * LD + kk, LD);
#pragma unroll
      for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
  }
  store_tile(y, N, M, N, m0, n0, acc, cs);
}

template <typename T>
__device__ void gemm_dx(T* dx, const T* dy, Nf4 w, int M, int N, int K) {
  __shared__ __align__(32) T ds[TM * LD];    // dy [m][n]
  __shared__ __align__(32) T ws[TN * LD];    // W [n][k], row-major B
  __shared__ __align__(32) float cs[TM * TN];
  const int k0 = blockIdx.x * TN, m0 = blockIdx.y * TM;
  const int warp = threadIdx.x >> 5, wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.f);
  for (int n0 = 0; n0 < N; n0 += TK) {
    __syncthreads();
    for (int i = threadIdx.x; i < TM * TK; i += GEMM_THREADS) {             // element loads: N need not be a multiple of 8
      int r = i / TK, c = i - r * TK;
      ds[r * LD + c] = m0 + r < M && n0 + c < N ? dy[(long long)(m0 + r) * N + n0 + c] : from_f<T>(0.f);
    }
    load_w_tile(ws, w, n0, k0, N, K);                                        // rows n0.., columns k0..k0+64
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < TK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b[2];
#pragma unroll
      for (int i = 0; i < 2; i++) wmma::load_matrix_sync(a[i], ds + (wm + 16 * i) * LD + kk, LD);
#pragma unroll
      for (int j = 0; j < 2; j++) wmma::load_matrix_sync(b[j], ws + kk * LD + wn + 16 * j, LD);
#pragma unroll
      for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
  }
  store_tile(dx, K, M, K, m0, k0, acc, cs);
}

extern "C" __global__ void __launch_bounds__(GEMM_THREADS) nf4_gemm_bf16(__nv_bfloat16* y, const __nv_bfloat16* x, NF4_ARGS, int M, int N, int K) { gemm(y, x, NF4_MAKE, M, N, K); }
extern "C" __global__ void __launch_bounds__(GEMM_THREADS) nf4_gemm_f16(__half* y, const __half* x, NF4_ARGS, int M, int N, int K) { gemm(y, x, NF4_MAKE, M, N, K); }
extern "C" __global__ void __launch_bounds__(GEMM_THREADS) nf4_gemm_dx_bf16(__nv_bfloat16* dx, const __nv_bfloat16* dy, NF4_ARGS, int M, int N, int K) { gemm_dx(dx, dy, NF4_MAKE, M, N, K); }
extern "C" __global__ void __launch_bounds__(GEMM_THREADS) nf4_gemm_dx_f16(__half* dx, const __half* dy, NF4_ARGS, int M, int N, int K) { gemm_dx(dx, dy, NF4_MAKE, M, N, K); }

// ---------------------------------------------------------------- GEMM on mma.sync, cp.async pipelined

// y = x · Wᵀ ("fwd") and dx = dy · W ("dx") with exact weights (as Nf4::weight rounds them) on mma m16n8k16, f32
// accumulators. 128×128 output tiles, 8 warps of 64×32, reduction steps of 64. The 16-bit operand (x or dy) and the
// packed W tile travel by cp.async through a ring of S stages (rows of 128 bytes, XOR-swizzled by 16-byte chunk:
// ldmatrix without bank conflicts); at step kt each thread dequantizes 32 codes of step kt+1 into the other half of a
// double-buffered bf16/f16 W tile while the warps' mma consume step kt: one barrier per step.
//   fwd: the W tile is W[n0 : n0+128, k : k+64] (one block per row), B fragments by ldmatrix from Ws[n][k].
//   dx:  the W tile is W[n : n+64, k0 : k0+128] (two blocks per row), B fragments by ldmatrix.trans from Ws[n][k].
// Rows past M or N, columns past K are zero-filled (cp.async of 0 bytes, scale 0) and not stored. Grid: one block per
// BM×128 tile, ceil(M/BM)·ceil(cols/128), cols = N (fwd) or K (dx); 256 threads; gmm::smem(BM) bytes of dynamic shared
// memory.
namespace gmm {
constexpr int BN = 128, BK = 64, THREADS = 256, S = 4;
constexpr int P_BYTES = 4096, W_BYTES = 128 * 64 * 2;                            // per stage / buffer
/** Dynamic shared memory of a BM-row tile: S stages of x/dy and packed W, two dequantized W tiles, NF4's levels. */
constexpr int smem(int bm) { return S * (bm * BK * 2 + P_BYTES) + 2 * W_BYTES + 64; }
}

/** Byte offset of 16-byte chunk c of row r in a tile of 8-chunk (128-byte) rows, swizzled. */
__device__ __forceinline__ int swz8(int r, int c) { return r * 128 + ((c ^ (r & 7)) << 4); }
/** The same for 16-chunk (256-byte) rows: each half of the row swizzled as swz8. */
__device__ __forceinline__ int swz16(int r, int c) { return r * 256 + (((c & 8) | ((c & 7) ^ (r & 7))) << 4); }

/** 4 packed bytes (8 codes of one block, scale s) → 8 weights of T (one 16-byte chunk), exactly as Nf4::weight. */
template <typename T>
__device__ __forceinline__ uint4 decode8(uint32_t word, float s, int wdt, const float* lut) {
  const int cdt = dt_of<T>();
  uint32_t o[4];
#pragma unroll
  for (int b = 0; b < 4; b++) {
    const uint32_t byte = (word >> (8 * b)) & 0xff;
    float hi = __fmul_rn(lut[byte >> 4], s), lo = __fmul_rn(lut[byte & 15], s);
    if (wdt != cdt) { hi = round_dt(wdt, hi); lo = round_dt(wdt, lo); }          // f32 or the other 16-bit type first
    o[b] = pack2<T>(hi, lo);                                                       // element 2j (high nibble) low half
  }
  return make_uint4(o[0], o[1], o[2], o[3]);
}

// BM rows of x/dy per tile (128 or 256), the 8 warps as WARPS_M × (8 / WARPS_M), each (BM / WARPS_M) × (128 / WN)
// = 64 × 32 (BM 128, 2 × 4) or 64 × 64 (BM 256, 4 × 2: half the dequantization and fewer ldmatrix per mma).
template <typename T, bool DX, bool SPLIT, int BM, int WARPS_M>
__device__ void gemm_tc(T* out, const T* a, const uint8_t* packed, const uint8_t* qabs, const float* nabs, const float* ncode,
                        float offset, int wdt, int M, int N, int K) {
  using namespace gmm;
  constexpr int WARPS_N = 8 / WARPS_M, MT = BM / WARPS_M / 16, NT = BN / WARPS_N / 8;   // m16 and n8 tiles per warp
  constexpr int A_BYTES = BM * BK * 2;
  extern __shared__ __align__(128) uint8_t smem[];
  uint8_t* as = smem;                                   // [S][BM rows][128 bytes] x or dy, swizzled
  uint8_t* ps = smem + S * A_BYTES;                     // [S][4096] packed W
  uint8_t* ws = ps + S * P_BYTES;                       // [2][W_BYTES] dequantized W
  float* lut = reinterpret_cast<float*>(ws + 2 * W_BYTES);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wm = warp / WARPS_N, wn = warp % WARPS_N;
  if (tid < 16) lut[tid] = NF4[tid];
  // fwd: out [M, N], a = x [M, K], reduction over K; dx: out [M, K], a = dy [M, N], reduction over N.
  const int cols = DX ? K : N, red = DX ? N : K, lda = red;
  const int tiles_c = (cols + BN - 1) / BN;                                           // a 1-D grid: blocks of a row of tiles adjacent
  const int m0 = (blockIdx.x / tiles_c) * BM, c0 = (blockIdx.x % tiles_c) * BN, steps = (red + BK - 1) / BK, KB = K >> 6;
  // this thread's packed chunk of the W tile: fwd row c0 + (tid >> 1), bytes 16·(tid & 1) of the step's block;
  // dx row (tid >> 2) of the step, bytes 16·(tid & 3) of columns c0 .. c0 + 128.
  const int pr = DX ? tid >> 2 : tid >> 1, pc = DX ? tid & 3 : tid & 1;
  auto w_row = [&](int kt) { return DX ? kt * BK + pr : c0 + pr; };
  auto w_col = [&](int kt) { return DX ? c0 + 32 * pc : kt * BK + 32 * pc; };       // first of the chunk's 32 codes
  auto w_ok = [&](int kt) { return w_row(kt) < N && w_col(kt) < K; };
  auto load = [&](int kt) {                                                         // cp.async of step kt into its stage
    const int st = kt % S;
#pragma unroll
    for (int i = 0; i < BM * 8 / THREADS; i++) {
      const int c = tid + THREADS * i, r = c >> 3, ch = c & 7;                      // BM rows × 8 chunks
      const int gr = m0 + r, gc = kt * BK + ch * 8;
      const bool ok = gr < M && gc < red;
      cp_async16(as + st * A_BYTES + swz8(r, ch), ok ? a + (long long)gr * lda + gc : a, ok ? 16 : 0);
    }
    const bool ok = w_ok(kt);
    cp_async16(ps + st * P_BYTES + tid * 16, ok ? packed + (((long long)w_row(kt) * K + w_col(kt)) >> 1) : packed, ok ? 16 : 0);
  };
  auto scale = [&](int kt) {                                                        // absmax of this thread's chunk
    if (!w_ok(kt)) return 0.f;
    const long long b = (long long)w_row(kt) * KB + (w_col(kt) >> 6);
    return __fadd_rn(__fmul_rn(__ldg(ncode + __ldg(qabs + b)), __ldg(nabs + (b >> 8))), offset);
  };
  auto packed_of = [&](int kt) { return *reinterpret_cast<const uint4*>(ps + (kt % S) * P_BYTES + tid * 16); };
  auto put = [&](int kt, int i, uint32_t word, float s) {                          // codes 8i.. of this thread's 32 → ws[kt & 1]
    uint8_t* dst = ws + (kt & 1) * W_BYTES;
    *reinterpret_cast<uint4*>(dst + (DX ? swz16(pr, 4 * pc + i) : swz8(pr, 4 * pc + i))) = decode8<T>(word, s, wdt, lut);
  };
  auto dequant = [&](int kt, float s) {                                             // packed stage of kt → ws[kt & 1]
    const uint4 v = packed_of(kt);
    put(kt, 0, v.x, s); put(kt, 1, v.y, s); put(kt, 2, v.z, s); put(kt, 3, v.w, s);
  };

  float acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; i++)
#pragma unroll
    for (int j = 0; j < NT; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;

#pragma unroll
  for (int kt = 0; kt < S - 1; kt++) {
    if (kt < steps) load(kt);
    cp_async_commit();
  }
  float s_next = scale(0);
  cp_async_wait<S - 2>();                                                           // step 0 landed (own chunks)
  __syncthreads();                                                                  // lut too
  dequant(0, s_next);
  s_next = steps > 1 ? scale(1) : 0.f;
  for (int kt = 0; kt < steps; kt++) {
    cp_async_wait<S - 3>();                                                         // step kt + 1 landed
    __syncthreads();                                                                // ws[kt & 1] written, stage kt-1 free
    if (kt + S - 1 < steps) load(kt + S - 1);
    cp_async_commit();
    const bool next = kt + 1 < steps;
    uint4 pv = make_uint4(0, 0, 0, 0);
    float s_cur = s_next;
    if (next) {
      if (SPLIT) pv = packed_of(kt + 1);                                            // decoded a word per kk below
      else dequant(kt + 1, s_cur);
      s_next = kt + 2 < steps ? scale(kt + 2) : 0.f;
    }
    const uint8_t* at = as + (kt % S) * A_BYTES;
    const uint8_t* wt = ws + (kt & 1) * W_BYTES;
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
      if (SPLIT && next) put(kt + 1, kk, kk == 0 ? pv.x : kk == 1 ? pv.y : kk == 2 ? pv.z : pv.w, s_cur);   // ALU work beside the mma
      uint32_t af[MT][4], bf[NT][2];
#pragma unroll
      for (int i = 0; i < MT; i++) ldsm_x4(af[i], at + swz8(16 * MT * wm + 16 * i + (lane & 15), 2 * kk + (lane >> 4)));
#pragma unroll
      for (int p = 0; p < NT / 2; p++) {
        uint32_t r[4];
        if (DX) {
          ldsm_x4_trans(r, wt + swz16(16 * kk + (lane & 7) + 8 * ((lane >> 3) & 1), NT * wn + 2 * p + (lane >> 4)));
        } else {
          ldsm_x4(r, wt + swz8(8 * NT * wn + 8 * (2 * p + (lane >> 4)) + (lane & 7), 2 * kk + ((lane >> 3) & 1)));
        }
        bf[2 * p][0] = r[0]; bf[2 * p][1] = r[1]; bf[2 * p + 1][0] = r[2]; bf[2 * p + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < MT; i++)
#pragma unroll
        for (int j = 0; j < NT; j++) mma16816<T>(acc[i][j], af[i], bf[j][0], bf[j][1]);
    }
  }
  cp_async_wait<0>();
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int i = 0; i < MT; i++)
#pragma unroll
    for (int j = 0; j < NT; j++) {
      const int c = c0 + 8 * NT * wn + 8 * j + 2 * t;
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const int r = m0 + 16 * MT * wm + 16 * i + g + 8 * h;
        if (r >= M) continue;
        T* o = out + (long long)r * cols + c;
        if (c + 1 < cols && (cols & 1) == 0) *reinterpret_cast<uint32_t*>(o) = pack2<T>(acc[i][j][2 * h], acc[i][j][2 * h + 1]);
        else {
          if (c < cols) o[0] = from_f<T>(acc[i][j][2 * h]);
          if (c + 1 < cols) o[1] = from_f<T>(acc[i][j][2 * h + 1]);
        }
      }
    }
}

#define GEMM_TC(T, NAME, MINB, SPLIT, BM, WARPS_M, V)                                                                \
  extern "C" __global__ void __launch_bounds__(gmm::THREADS, MINB) nf4_gemm_##V##_##NAME(                             \
      T* y, const T* x, NF4_ARGS, int M, int N, int K) {                                                              \
    gemm_tc<T, false, SPLIT, BM, WARPS_M>(y, x, packed, qabs, nabs, ncode, (float)offset, wdt, M, N, K); }            \
  extern "C" __global__ void __launch_bounds__(gmm::THREADS, MINB) nf4_gemm_dx_##V##_##NAME(                          \
      T* dx, const T* dy, NF4_ARGS, int M, int N, int K) {                                                            \
    gemm_tc<T, true, SPLIT, BM, WARPS_M>(dx, dy, packed, qabs, nabs, ncode, (float)offset, wdt, M, N, K); }
// tc: 128×128 tiles, 2 blocks per SM (128 registers), the next step's dequantization a word per kk between the mma;
// tcs: the same with the whole dequantization before the mma (H200, 4096×2048×4096: 244 TFLOP/s fwd, 240 dx);
// tcw: 256×128 tiles, warps of 64×64, 1 block per SM (gmm::smem(256) bytes), interleaved as tc.
GEMM_TC(__nv_bfloat16, bf16, 2, true, 128, 2, tc)
GEMM_TC(__half, f16, 2, true, 128, 2, tc)
GEMM_TC(__nv_bfloat16, bf16, 2, false, 128, 2, tcs)
GEMM_TC(__nv_bfloat16, bf16, 1, true, 256, 4, tcw)
