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
//   Operands contiguous; packed 16-byte aligned (the launcher checks). Launcher: dev.jomni.cuda.CudaNf4Matmul.
#include <mma.h>
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

// ---------------------------------------------------------------- fused dequant GEMM (tensor cores)

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
