// attention.cu: scaled dot-product attention, the CUDA side of dev.jomni.tensor.ops.ScaledDotProductAttention.
//   O = softmax(scale · Q Kᵀ + mask) V with grouped-query attention (query head h reads kv head h / (nh / nkv),
//   K and V never copied) and the described mask (AttentionMask: causal with `past`, key padding keyMask
//   bool [B, S], block-diagonal segment offsets). The simple version of issue 9 (SIMT f32 FMA, no tensor
//   cores) until issue 12's flash kernels replace it: tiles in shared memory, an online softmax, f32
//   accumulation (f64 in the _f64 variants), every sum in a fixed order (no atomics: bits do not depend on
//   scheduling).
//   Shapes: q, out, dout [B, nh, T, d]; k, v [B, nkv, S, d]; any strides with unit stride on d (q and out
//   are transposed views of [B, T, nh, d], k and v may be the first S rows of a larger cache); lse, delta
//   [B, nh, T] contiguous; dq [B, nh, T, d], dk, dv [B, nkv, S, d] (a null ptr: not wanted, skipped).
//   keymask: null or bool [B, S] (any strides); seg: null or int32 [nseg] = [0, o1, ..., T] (T = S).
//   Query i sees key j when lo(i) <= j < hi(i) (its segment, and j <= past + i when causal; row_range)
//   and keymask[b, j]; lo and hi do not decrease with i, so a tile of queries sees one key range and a
//   tile of keys one query range, and tiles outside them are skipped.
//
//   sdpa_fwd_{f32,f64}_d{64,128,256}: block per (b, h, tile of BQ queries), grid B·nh·ceil(T/BQ) (the
//     tiles of a (b, h) last to first: under a causal mask the long ones start first). For each tile of BK
//     keys (starting at a multiple of BK, as CpuScaledDotProductAttention's blocks): S = scale · Q Kᵀ
//     (masked to −∞), the running row max m and sum l rescaled by exp(m_old − m_new), P = exp(S − m) rounded
//     to the activation dtype before O += P V (as the CPU reference), l summing the unrounded P. Then
//     out = O / l and lse = m + log l, or out = 0 and lse = +∞ for a row that sees no key.
//   sdpa_bwd_delta_{f32,f64}: delta[b, h, i] = Σ_c dout · out, one warp per row, block 256.
//   sdpa_bwd_dq_{..}: block per (b, h, query tile) as forward: P = exp(scale · Q Kᵀ − lse),
//     dS = P ∘ (dO Vᵀ − delta), dq = scale · dS K, summed over the key tiles in order.
//   sdpa_bwd_dkv_{..}: block per (b, kv head, tile of BK keys), grid B·nkv·ceil(S/BK): dv = Σ Pᵀ dO,
//     dk = scale · Σ dSᵀ Q over the group's query heads in order and, for each, the query tiles that see
//     the key tile, in order.
//   Tiles: f32 d ≤ 64 and ≤ 128: BQ = BK = 64; f32 d ≤ 256: 32; f64 (d ≤ 128): 32. 256 threads as 16 × 16,
//   each holding a (BQ/16) × (BK/16) micro-tile of scores and a (rows/16) × (DMAX/16) one of the
//   accumulators. Dynamic shared memory: tiles of T with row stride d + 1 (no bank conflicts), sized by the
//   launcher with the formulas of *_smem below (the kernel traps if it was given less).
//   sdpa_fwd_tc_{bf16,f16}_d{64,128}[_q128][_mma]: the forward on tensor cores (FlashAttention-2), see "forward
//     on tensor cores" below; the launcher takes it for bf16/f16 with d 64 or 128 and 16-byte aligned rows.
//   sdpa_bwd_delta_tc_*, sdpa_bwd_tc_{dq,dkv}_*, sdpa_bwd_tc_split_sum_*: the backward on tensor cores, see
//     "backward on tensor cores" below; the launcher takes it where it takes the tensor-core forward.
// Launcher: dev.jomni.cuda.CudaScaledDotProductAttention. Reference: dev.jomni.tensor.cpu.CpuScaledDotProductAttention.
#include "tensor.cuh"
#include "mma.cuh"

constexpr int NT = 256;

struct SdpaArgs {        // 1040 bytes
  long long b, nh, nkv, t, s, d;
  long long past, nseg;  // nseg: entries of seg (segments + 1), 0 without segments
  double scale;
  int causal, act;       // act: the activation dtype (q's) the probabilities are rounded to
  Operand q, k, v, o, lse, dout, dq, dk, dv, keymask, seg, delta;
};
static_assert(sizeof(SdpaArgs) == 1040, "SdpaArgs layout (CudaScaledDotProductAttention writes it)");

template <typename T> __device__ __forceinline__ T inf_of();
template <> __device__ __forceinline__ float inf_of<float>() { return __int_as_float(0x7f800000); }
template <> __device__ __forceinline__ double inf_of<double>() { return __longlong_as_double(0x7ff0000000000000LL); }

__device__ __forceinline__ float ex(float x) { return expf(x); }
__device__ __forceinline__ double ex(double x) { return exp(x); }
__device__ __forceinline__ float lg(float x) { return logf(x); }
__device__ __forceinline__ double lg(double x) { return log(x); }

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

template <typename T>
__device__ __forceinline__ T warp_max(T v) {
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/** The keys query i may see: [lo, hi) (AttentionMask.keyRanges). */
__device__ __forceinline__ void row_range(const SdpaArgs& p, long long i, int& lo, int& hi) {
  long long a = 0, e = p.s;
  if (p.nseg > 0) {                                   // the segment g with seg[g] <= i < seg[g + 1]
    const int* seg = (const int*)p.seg.ptr;
    long long g0 = 0, g1 = p.nseg - 1;
    while (g1 - g0 > 1) {
      long long mid = (g0 + g1) >> 1;
      if (seg[mid] <= i) g0 = mid; else g1 = mid;
    }
    a = seg[g0];
    e = seg[g0 + 1];
  }
  if (p.causal) e = min(e, p.past + i + 1);
  if (e < a) e = a;
  lo = (int)a;
  hi = (int)e;
}

/** Key j of batch row b is a token (keymask true, or no keymask). */
__device__ __forceinline__ bool key_ok(const SdpaArgs& p, long long b, long long j) {
  if (p.keymask.ptr == nullptr) return true;
  return ((const unsigned char*)p.keymask.ptr)[b * p.keymask.stride[0] + j * p.keymask.stride[1]] != 0;
}

/** dst[r, c] (row stride ld) ← x[b, h, r0 + r, c] for r < n, 0 for n <= r < rows; c < d. */
template <typename T>
__device__ __forceinline__ void load_tile(T* dst, int ld, const Operand& x, long long b, long long h, long long r0, int n,
                                          int rows, int d) {
  const long long base = b * x.stride[0] + h * x.stride[1];
  for (int e = threadIdx.x; e < rows * d; e += NT) {
    const int r = e / d, c = e - r * d;
    dst[r * ld + c] = r < n ? load<T>(x, base + (r0 + r) * x.stride[2] + c) : (T)0;
  }
}

/** Traps (a launch error, not a silent overrun) when the launcher gave less dynamic shared memory than the layout needs. */
__device__ __forceinline__ void check_smem(unsigned long long need) {
  unsigned int have;
  asm volatile("mov.u32 %0, %%dynamic_smem_size;" : "=r"(have));
  if (need > have) __trap();
}

// Shared-memory sizes: CudaScaledDotProductAttention.smemBytes computes the same.
template <typename T, int BQ, int BK>
__host__ __device__ constexpr unsigned long long fwd_smem(int d) {
  return sizeof(T) * ((unsigned long long)(BQ + 2 * BK) * (d + 1) + BQ * (BK + 1) + 3 * BQ) + 4ull * (2 * BQ + BK);
}
template <typename T, int BQ, int BK>
__host__ __device__ constexpr unsigned long long bwd_smem(int d) {   // dq and dkv kernels alike
  return sizeof(T) * ((unsigned long long)(2 * BQ + 2 * BK) * (d + 1) + BQ * (BK + 1) + 2 * BQ) + 4ull * (2 * BQ + BK + 2);
}

// ---------------------------------------------------------------- forward

template <typename T, int BQ, int BK, int DMAX>
__device__ __forceinline__ void fwd(const SdpaArgs& p) {
  constexpr int RI = BQ / 16, RJ = BK / 16, RC = DMAX / 16;
  const int d = (int)p.d, ld = d + 1, t = (int)p.t, s = (int)p.s;
  const T inf = inf_of<T>(), scale = (T)p.scale;
  const long long tiles = ((long long)t + BQ - 1) / BQ, blk = blockIdx.x;
  const int tile = (int)(tiles - 1 - blk % tiles);
  const long long h = (blk / tiles) % p.nh, b = blk / tiles / p.nh, kvh = h / (p.nh / p.nkv);
  const int i0 = tile * BQ, nq = min(BQ, t - i0);

  extern __shared__ __align__(1024) unsigned char smem[];
  check_smem(fwd_smem<T, BQ, BK>(d));
  T* qs = (T*)smem;              // [BQ][ld]
  T* ks = qs + BQ * ld;          // [BK][ld]
  T* vs = ks + BK * ld;          // [BK][ld]
  T* ss = vs + BK * ld;          // [BQ][BK + 1]: scores, then probabilities
  T* mrow = ss + BQ * (BK + 1);  // running max
  T* lrow = mrow + BQ;           // running sum
  T* arow = lrow + BQ;           // this tile's rescale factor
  int* lo = (int*)(arow + BQ);
  int* hi = lo + BQ;
  int* kval = hi + BQ;           // [BK] key is inside S and a token
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4, lane = tid & 31, warp = tid >> 5;

  load_tile(qs, ld, p.q, b, h, i0, nq, BQ, d);
  for (int r = tid; r < BQ; r += NT) {
    int a = 0, e = 0;
    if (r < nq) row_range(p, i0 + r, a, e);
    lo[r] = a;
    hi[r] = e;
    mrow[r] = -inf;
    lrow[r] = 0;
  }
  __syncthreads();
  const int spanLo = lo[0], spanHi = hi[nq - 1];  // lo, hi do not decrease with i

  T o[RI][RC];
#pragma unroll
  for (int i = 0; i < RI; i++)
#pragma unroll
    for (int c = 0; c < RC; c++) o[i][c] = 0;

  for (int j0 = spanLo / BK * BK; j0 < spanHi; j0 += BK) {
    const int nk = min(BK, s - j0);
    __syncthreads();                                // the previous tile's reads are done
    load_tile(ks, ld, p.k, b, kvh, j0, nk, BK, d);
    load_tile(vs, ld, p.v, b, kvh, j0, nk, BK, d);  // rows past nk are 0: 0 · P stays 0
    for (int c = tid; c < BK; c += NT) kval[c] = c < nk && key_ok(p, b, j0 + c);
    __syncthreads();

    T sc[RI][RJ];
#pragma unroll
    for (int i = 0; i < RI; i++)
#pragma unroll
      for (int j = 0; j < RJ; j++) sc[i][j] = 0;
    for (int c = 0; c < d; c++) {
      T qr[RI], kr[RJ];
#pragma unroll
      for (int i = 0; i < RI; i++) qr[i] = qs[(ty + 16 * i) * ld + c];
#pragma unroll
      for (int j = 0; j < RJ; j++) kr[j] = ks[(tx + 16 * j) * ld + c];
#pragma unroll
      for (int i = 0; i < RI; i++)
#pragma unroll
        for (int j = 0; j < RJ; j++) sc[i][j] += qr[i] * kr[j];
    }
#pragma unroll
    for (int i = 0; i < RI; i++) {
      const int row = ty + 16 * i;
#pragma unroll
      for (int j = 0; j < RJ; j++) {
        const int col = tx + 16 * j, jj = j0 + col;
        const bool vis = kval[col] && jj >= lo[row] && jj < hi[row];
        ss[row * (BK + 1) + col] = vis ? sc[i][j] * scale : -inf;
      }
    }
    __syncthreads();

    for (int r = warp; r < BQ; r += NT / 32) {       // a warp per row: max, exp, sum
      T* sr = ss + r * (BK + 1);
      T mt = -inf;
      for (int c = lane; c < BK; c += 32) mt = max(mt, sr[c]);
      mt = warp_max(mt);
      const T mold = mrow[r], mnew = max(mold, mt);
      T sum = 0, alpha = 1;
      if (mnew != -inf) {                            // warp-uniform
        alpha = ex(mold - mnew);                     // 0 while nothing was summed (mold = −∞)
        for (int c = lane; c < BK; c += 32) {
          const T e = ex(sr[c] - mnew);              // masked: exp(−∞) = 0
          sum += e;
          sr[c] = round_to<T>(p.act, e);             // P meets V in the activation dtype
        }
        sum = warp_sum(sum);
      } else {
        for (int c = lane; c < BK; c += 32) sr[c] = 0;
      }
      __syncwarp();
      if (lane == 0) {
        mrow[r] = mnew;
        lrow[r] = lrow[r] * alpha + sum;
        arow[r] = alpha;
      }
    }
    __syncthreads();

#pragma unroll
    for (int i = 0; i < RI; i++) {
      const T a = arow[ty + 16 * i];
#pragma unroll
      for (int c = 0; c < RC; c++) o[i][c] *= a;
    }
    for (int kk = 0; kk < nk; kk++) {
      T pr[RI];
#pragma unroll
      for (int i = 0; i < RI; i++) pr[i] = ss[(ty + 16 * i) * (BK + 1) + kk];
#pragma unroll
      for (int c = 0; c < RC; c++) {
        const T vv = vs[kk * ld + min(tx + 16 * c, d - 1)];   // columns past d: unused, never stored
#pragma unroll
        for (int i = 0; i < RI; i++) o[i][c] += pr[i] * vv;
      }
    }
  }
  __syncthreads();

#pragma unroll
  for (int i = 0; i < RI; i++) {
    const int row = ty + 16 * i;
    if (row >= nq) continue;
    const T l = lrow[row], inv = l == 0 ? (T)0 : (T)1 / l;
    const long long at = b * p.o.stride[0] + h * p.o.stride[1] + (long long)(i0 + row) * p.o.stride[2];
#pragma unroll
    for (int c = 0; c < RC; c++) {
      const int col = tx + 16 * c;
      if (col < d) store<T>(p.o, at + col, o[i][c] * inv);
    }
  }
  for (int r = tid; r < nq; r += NT) {
    const T l = lrow[r];
    store<T>(p.lse, b * p.lse.stride[0] + h * p.lse.stride[1] + (long long)(i0 + r) * p.lse.stride[2],
             l == 0 ? inf : mrow[r] + lg(l));
  }
}

// ---------------------------------------------------------------- backward

/** delta[row] = Σ_c dout · out over row (b, h, i) = blockIdx · 8 + warp. */
template <typename T>
__device__ __forceinline__ void bwd_delta(const SdpaArgs& p) {
  const long long row = (long long)blockIdx.x * (NT / 32) + (threadIdx.x >> 5), rows = p.b * p.nh * p.t;
  if (row >= rows) return;
  const long long i = row % p.t, h = row / p.t % p.nh, b = row / p.t / p.nh;
  const long long ao = b * p.o.stride[0] + h * p.o.stride[1] + i * p.o.stride[2];
  const long long ag = b * p.dout.stride[0] + h * p.dout.stride[1] + i * p.dout.stride[2];
  T sum = 0;
  for (int c = threadIdx.x & 31; c < p.d; c += 32) sum += load<T>(p.dout, ag + c) * load<T>(p.o, ao + c);
  sum = warp_sum(sum);
  if ((threadIdx.x & 31) == 0) store<T>(p.delta, row, sum);
}

template <typename T, int BQ, int BK, int DMAX>
__device__ __forceinline__ void bwd_dq(const SdpaArgs& p) {
  constexpr int RI = BQ / 16, RJ = BK / 16, RC = DMAX / 16;
  const int d = (int)p.d, ld = d + 1, t = (int)p.t, s = (int)p.s;
  const T inf = inf_of<T>(), scale = (T)p.scale;
  const long long tiles = ((long long)t + BQ - 1) / BQ, blk = blockIdx.x;
  const int tile = (int)(tiles - 1 - blk % tiles);
  const long long h = (blk / tiles) % p.nh, b = blk / tiles / p.nh, kvh = h / (p.nh / p.nkv);
  const int i0 = tile * BQ, nq = min(BQ, t - i0);

  extern __shared__ __align__(1024) unsigned char smem[];
  check_smem(bwd_smem<T, BQ, BK>(d));
  T* qs = (T*)smem;              // [BQ][ld]
  T* gs = qs + BQ * ld;          // [BQ][ld] dout
  T* ks = gs + BQ * ld;          // [BK][ld]
  T* vs = ks + BK * ld;          // [BK][ld]
  T* dss = vs + BK * ld;         // [BQ][BK + 1] dS
  T* lrow = dss + BQ * (BK + 1); // lse
  T* drow = lrow + BQ;           // delta
  int* lo = (int*)(drow + BQ);
  int* hi = lo + BQ;
  int* kval = hi + BQ;
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;

  load_tile(qs, ld, p.q, b, h, i0, nq, BQ, d);
  load_tile(gs, ld, p.dout, b, h, i0, nq, BQ, d);
  for (int r = tid; r < BQ; r += NT) {
    int a = 0, e = 0;
    T l = inf, dd = 0;
    if (r < nq) {
      row_range(p, i0 + r, a, e);
      l = load<T>(p.lse, b * p.lse.stride[0] + h * p.lse.stride[1] + (long long)(i0 + r) * p.lse.stride[2]);
      dd = load<T>(p.delta, (b * p.nh + h) * p.t + i0 + r);
    }
    lo[r] = a;
    hi[r] = e;
    lrow[r] = l;
    drow[r] = dd;
  }
  __syncthreads();
  const int spanLo = lo[0], spanHi = hi[nq - 1];

  T acc[RI][RC];
#pragma unroll
  for (int i = 0; i < RI; i++)
#pragma unroll
    for (int c = 0; c < RC; c++) acc[i][c] = 0;

  for (int j0 = spanLo / BK * BK; j0 < spanHi; j0 += BK) {
    const int nk = min(BK, s - j0);
    __syncthreads();
    load_tile(ks, ld, p.k, b, kvh, j0, nk, BK, d);
    load_tile(vs, ld, p.v, b, kvh, j0, nk, BK, d);
    for (int c = tid; c < BK; c += NT) kval[c] = c < nk && key_ok(p, b, j0 + c);
    __syncthreads();

    T sc[RI][RJ], dp[RI][RJ];
#pragma unroll
    for (int i = 0; i < RI; i++)
#pragma unroll
      for (int j = 0; j < RJ; j++) sc[i][j] = dp[i][j] = 0;
    for (int c = 0; c < d; c++) {
      T qr[RI], gr[RI], kr[RJ], vr[RJ];
#pragma unroll
      for (int i = 0; i < RI; i++) {
        qr[i] = qs[(ty + 16 * i) * ld + c];
        gr[i] = gs[(ty + 16 * i) * ld + c];
      }
#pragma unroll
      for (int j = 0; j < RJ; j++) {
        kr[j] = ks[(tx + 16 * j) * ld + c];
        vr[j] = vs[(tx + 16 * j) * ld + c];
      }
#pragma unroll
      for (int i = 0; i < RI; i++)
#pragma unroll
        for (int j = 0; j < RJ; j++) {
          sc[i][j] += qr[i] * kr[j];
          dp[i][j] += gr[i] * vr[j];
        }
    }
#pragma unroll
    for (int i = 0; i < RI; i++) {
      const int row = ty + 16 * i;
      const T l = lrow[row], dd = drow[row];
#pragma unroll
      for (int j = 0; j < RJ; j++) {
        const int col = tx + 16 * j, jj = j0 + col;
        const bool vis = kval[col] && jj >= lo[row] && jj < hi[row] && l != inf;
        dss[row * (BK + 1) + col] = vis ? ex(sc[i][j] * scale - l) * (dp[i][j] - dd) : (T)0;
      }
    }
    __syncthreads();
    for (int kk = 0; kk < nk; kk++) {
      T dr[RI];
#pragma unroll
      for (int i = 0; i < RI; i++) dr[i] = dss[(ty + 16 * i) * (BK + 1) + kk];
#pragma unroll
      for (int c = 0; c < RC; c++) {
        const T kv = ks[kk * ld + min(tx + 16 * c, d - 1)];
#pragma unroll
        for (int i = 0; i < RI; i++) acc[i][c] += dr[i] * kv;
      }
    }
  }

#pragma unroll
  for (int i = 0; i < RI; i++) {
    const int row = ty + 16 * i;
    if (row >= nq) continue;
    const long long at = b * p.dq.stride[0] + h * p.dq.stride[1] + (long long)(i0 + row) * p.dq.stride[2];
#pragma unroll
    for (int c = 0; c < RC; c++) {
      const int col = tx + 16 * c;
      if (col < d) store<T>(p.dq, at + col, acc[i][c] * scale);
    }
  }
}

template <typename T, int BQ, int BK, int DMAX>
__device__ __forceinline__ void bwd_dkv(const SdpaArgs& p) {
  constexpr int RJ = BK / 16, RI = BQ / 16, RC = DMAX / 16;   // rows here are keys (ty), columns queries (tx)
  static_assert(BQ == BK, "bwd_smem sizes ps [BK][BQ + 1] as [BQ][BK + 1]");
  const int d = (int)p.d, ld = d + 1, t = (int)p.t, s = (int)p.s;
  const T inf = inf_of<T>(), scale = (T)p.scale;
  const long long tiles = ((long long)s + BK - 1) / BK, blk = blockIdx.x;
  const int tile = (int)(blk % tiles);
  const long long kvh = (blk / tiles) % p.nkv, b = blk / tiles / p.nkv, group = p.nh / p.nkv;
  const int j0 = tile * BK, nk = min(BK, s - j0);
  const bool wantK = p.dk.ptr != nullptr, wantV = p.dv.ptr != nullptr;

  extern __shared__ __align__(1024) unsigned char smem[];
  check_smem(bwd_smem<T, BQ, BK>(d));
  T* ks = (T*)smem;              // [BK][ld]
  T* vs = ks + BK * ld;          // [BK][ld]
  T* qs = vs + BK * ld;          // [BQ][ld]
  T* gs = qs + BQ * ld;          // [BQ][ld] dout
  T* ps = gs + BQ * ld;          // [BK][BQ + 1]: P, then dS (as BQ * (BK + 1) in bwd_smem: BQ = BK here)
  T* lrow = ps + BK * (BQ + 1);
  T* drow = lrow + BQ;
  int* lo = (int*)(drow + BQ);
  int* hi = lo + BQ;
  int* kval = hi + BQ;
  int* qspan = kval + BK;        // [2] the queries that see some key of this tile
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;

  load_tile(ks, ld, p.k, b, kvh, j0, nk, BK, d);
  load_tile(vs, ld, p.v, b, kvh, j0, nk, BK, d);
  for (int c = tid; c < BK; c += NT) kval[c] = c < nk && key_ok(p, b, j0 + c);
  if (tid == 0) {   // first i with hi(i) > j0, first i with lo(i) >= j0 + nk (both monotone in i)
    int a, e, x0 = 0, x1 = t;
    while (x0 < x1) {
      const int mid = (x0 + x1) >> 1;
      row_range(p, mid, a, e);
      if (e > j0) x1 = mid; else x0 = mid + 1;
    }
    qspan[0] = x0;
    x1 = t;
    while (x0 < x1) {
      const int mid = (x0 + x1) >> 1;
      row_range(p, mid, a, e);
      if (a >= j0 + nk) x1 = mid; else x0 = mid + 1;
    }
    qspan[1] = x0;
  }
  __syncthreads();
  const int qa = qspan[0], qb = qspan[1];

  T dk[RJ][RC], dv[RJ][RC];
#pragma unroll
  for (int a = 0; a < RJ; a++)
#pragma unroll
    for (int c = 0; c < RC; c++) dk[a][c] = dv[a][c] = 0;

  for (long long hh = 0; hh < group; hh++) {
    const long long h = kvh * group + hh;
    for (int i0 = qa; i0 < qb; i0 += BQ) {
      const int nq = min(BQ, t - i0);
      __syncthreads();
      load_tile(qs, ld, p.q, b, h, i0, nq, BQ, d);
      load_tile(gs, ld, p.dout, b, h, i0, nq, BQ, d);
      for (int r = tid; r < BQ; r += NT) {
        int a = 0, e = 0;
        T l = inf, dd = 0;
        if (r < nq) {
          row_range(p, i0 + r, a, e);
          l = load<T>(p.lse, b * p.lse.stride[0] + h * p.lse.stride[1] + (long long)(i0 + r) * p.lse.stride[2]);
          dd = load<T>(p.delta, (b * p.nh + h) * p.t + i0 + r);
        }
        lo[r] = a;
        hi[r] = e;
        lrow[r] = l;
        drow[r] = dd;
      }
      __syncthreads();

      T sc[RJ][RI], dp[RJ][RI];
#pragma unroll
      for (int a = 0; a < RJ; a++)
#pragma unroll
        for (int i = 0; i < RI; i++) sc[a][i] = dp[a][i] = 0;
      for (int c = 0; c < d; c++) {
        T kr[RJ], vr[RJ], qr[RI], gr[RI];
#pragma unroll
        for (int a = 0; a < RJ; a++) {
          kr[a] = ks[(ty + 16 * a) * ld + c];
          vr[a] = vs[(ty + 16 * a) * ld + c];
        }
#pragma unroll
        for (int i = 0; i < RI; i++) {
          qr[i] = qs[(tx + 16 * i) * ld + c];
          gr[i] = gs[(tx + 16 * i) * ld + c];
        }
#pragma unroll
        for (int a = 0; a < RJ; a++)
#pragma unroll
          for (int i = 0; i < RI; i++) {
            sc[a][i] += kr[a] * qr[i];
            dp[a][i] += vr[a] * gr[i];
          }
      }
#pragma unroll
      for (int a = 0; a < RJ; a++) {
        const int key = ty + 16 * a, jj = j0 + key;
#pragma unroll
        for (int i = 0; i < RI; i++) {
          const int qi = tx + 16 * i;
          const T l = lrow[qi];
          const bool vis = kval[key] && jj >= lo[qi] && jj < hi[qi] && l != inf;
          const T pp = vis ? ex(sc[a][i] * scale - l) : (T)0;
          sc[a][i] = pp;
          dp[a][i] = pp * (dp[a][i] - drow[qi]);   // dS
          ps[key * (BQ + 1) + qi] = pp;
        }
      }
      __syncthreads();
      if (wantV)
        for (int qq = 0; qq < nq; qq++) {
          T pr[RJ];
#pragma unroll
          for (int a = 0; a < RJ; a++) pr[a] = ps[(ty + 16 * a) * (BQ + 1) + qq];
#pragma unroll
          for (int c = 0; c < RC; c++) {
            const T g = gs[qq * ld + min(tx + 16 * c, d - 1)];
#pragma unroll
            for (int a = 0; a < RJ; a++) dv[a][c] += pr[a] * g;
          }
        }
      if (wantK) {
        __syncthreads();
#pragma unroll
        for (int a = 0; a < RJ; a++)
#pragma unroll
          for (int i = 0; i < RI; i++) ps[(ty + 16 * a) * (BQ + 1) + tx + 16 * i] = dp[a][i];
        __syncthreads();
        for (int qq = 0; qq < nq; qq++) {
          T dr[RJ];
#pragma unroll
          for (int a = 0; a < RJ; a++) dr[a] = ps[(ty + 16 * a) * (BQ + 1) + qq];
#pragma unroll
          for (int c = 0; c < RC; c++) {
            const T qv = qs[qq * ld + min(tx + 16 * c, d - 1)];
#pragma unroll
            for (int a = 0; a < RJ; a++) dk[a][c] += dr[a] * qv;
          }
        }
      }
    }
  }

#pragma unroll
  for (int a = 0; a < RJ; a++) {
    const int key = ty + 16 * a;
    if (key >= nk) continue;
#pragma unroll
    for (int c = 0; c < RC; c++) {
      const int col = tx + 16 * c;
      if (col >= d) continue;
      if (wantK) store<T>(p.dk, b * p.dk.stride[0] + kvh * p.dk.stride[1] + (long long)(j0 + key) * p.dk.stride[2] + col, dk[a][c] * scale);
      if (wantV) store<T>(p.dv, b * p.dv.stride[0] + kvh * p.dv.stride[1] + (long long)(j0 + key) * p.dv.stride[2] + col, dv[a][c]);
    }
  }
}

#define SDPA_KERNELS(SUFFIX, T, BQ, BK, DMAX)                                                                      \
  extern "C" __global__ void __launch_bounds__(NT) sdpa_fwd_##SUFFIX(const SdpaArgs p) { fwd<T, BQ, BK, DMAX>(p); }       \
  extern "C" __global__ void __launch_bounds__(NT) sdpa_bwd_dq_##SUFFIX(const SdpaArgs p) { bwd_dq<T, BQ, BK, DMAX>(p); } \
  extern "C" __global__ void __launch_bounds__(NT) sdpa_bwd_dkv_##SUFFIX(const SdpaArgs p) { bwd_dkv<T, BQ, BK, DMAX>(p); }

SDPA_KERNELS(f32_d64, float, 64, 64, 64)
SDPA_KERNELS(f32_d128, float, 64, 64, 128)
SDPA_KERNELS(f32_d256, float, 32, 32, 256)
SDPA_KERNELS(f64_d64, double, 32, 32, 64)
SDPA_KERNELS(f64_d128, double, 32, 32, 128)

extern "C" __global__ void __launch_bounds__(NT) sdpa_bwd_delta_f32(const SdpaArgs p) { bwd_delta<float>(p); }
extern "C" __global__ void __launch_bounds__(NT) sdpa_bwd_delta_f64(const SdpaArgs p) { bwd_delta<double>(p); }

// ---------------------------------------------------------------- forward on tensor cores
// FlashAttention-2's forward for bf16/f16, d ∈ {64, 128}: block per (b, h, tile of BQ = 64 or 128 queries: the
// _q128 kernels), grid as the SIMT forward (tiles last to first), BQ / 16 warps, warp w owning query rows
// 16w..16w+15 of the tile (on sm_90a the warps form warpgroups of 64 rows). Q is staged once in shared memory;
// K and V tiles of FBK = 64 keys (starting at multiples of 64, as the CPU reference's blocks, so the running max
// the probabilities are rounded against is the same) stream through two shared-memory stages with cp.async:
// tile it + 1 loads while tile it is computed. Per tile: S = Q Kᵀ (abt: wgmma from shared memory on sm_90a,
// else mma.sync m16n8k16 with ldmatrix; f32 accumulators), masked to −∞ (only when the tile crosses a mask
// boundary, the end of S, or a keyMask is given); the running max m (per row, log2 domain) and each lane's
// partial running sum l (the unrounded probabilities; the 4 lanes of a row are summed at the end) rescale by
// 2^(m_old − m_new), P = 2^(scale · log2 e · S − m) (one FFMA and ex2 each); P is rounded to the activation
// dtype in registers, where the score accumulators already have the A-fragment layout, and O += P V (pb:
// wgmma with P in registers and V by descriptor on sm_90a, else mma.sync with ldmatrix.trans). Key tiles
// outside [lo(first row), hi(last row)) are never loaded, and tiles whose keys are all padding are skipped
// (__syncthreads_or over the keyMask bits: skipping them changes no bit, P would be 0 there).
// Shared memory, swizzled in 16-byte chunks (swz: blocks of 64 columns, chunk c of row r at c ^ (r % 8):
// wgmma's 128-byte swizzle, ldmatrix and cp.async without bank conflicts, 1024-byte aligned): Q [BQ][d], K and
// V [2][64][d], key flags [2][64] bytes (flash_smem). Rows of q, k, v and out must start 16-byte aligned (the
// launcher checks: pointers and strides of B, heads and rows multiples of 8 elements). Rows past T or S are
// zero-filled (cp.async with 0 source bytes). Every kernel also exists as _mma: mma.sync alone.

constexpr int FBQ = 64, FBK = 64, FNT = 128;

// sm_90a machine code takes wgmma for the products with both operands in shared memory (abt) and those with
// probabilities in registers (pb); other targets, or -DATTN_NO_WGMMA (-DATTN_NO_WGMMA_PV for pb alone), mma.sync.
#if defined(__CUDA_ARCH_FEAT_SM90_ALL) && !defined(ATTN_NO_WGMMA)
#define SDPA_WGMMA 1
#else
#define SDPA_WGMMA 0
#endif

__host__ __device__ constexpr unsigned long long flash_smem(int d, int bq = FBQ) {
  return 2ull * ((unsigned long long)bq * d + 4ull * FBK * d) + 2ull * FBK;
}

/** Element offset of (row, col) in a swizzled [R rows][D] tile; col a multiple of 8 (a 16-byte chunk). The tile is
 *  stored as D / 64 column blocks of [R][64] (128-byte rows), chunk c of row r at c ^ (r % 8) within its block: the
 *  layout wgmma reads as K-major with 128-byte swizzle (8-row groups 1024 bytes apart), and conflict-free for
 *  ldmatrix and cp.async. */
template <int D, int R>
__device__ __forceinline__ int swz(int row, int col) {
  return (col >> 6) * (R * 64) + row * 64 + ((((col >> 3) ^ row) & 7) << 3);
}

/** dst ← ROWS rows of D 2-byte elements from base (row stride ld elements), rows >= n zero-filled. */
template <int D, int ROWS, int THREADS = FNT>
__device__ __forceinline__ void tile_async(uint16_t* dst, const char* base, long long ld, int n) {
  constexpr int CH = D / 8;
  for (int e = threadIdx.x; e < ROWS * CH; e += THREADS) {
    const int r = e / CH, c = e - r * CH;
    const char* src = r < n ? base + 2 * ((long long)r * ld + c * 8) : base;
    cp_async16(dst + swz<D, ROWS>(r, c * 8), src, r < n ? 16 : 0);
  }
}

/** ldmatrix addresses (element offsets in a swizzled [rows][D] tile) for lane l:
 *  a_at: the A fragment of rows r..r+15, k columns c..c+15;
 *  bn_at: two B fragments (n rows n..n+15 stored as [n][k], k columns c..c+15), b0 b1 of n-tile n, then of n + 8;
 *  bt_at: two B fragments stored as [k][n] (k rows k..k+15, n columns c..c+15) with ldsm_x4_trans. */
template <int D, int R> __device__ __forceinline__ int a_at(int r, int c, int l) { return swz<D, R>(r + (l & 7) + ((l >> 3) & 1) * 8, c + (l >> 4) * 8); }
template <int D, int R> __device__ __forceinline__ int bn_at(int n, int c, int l) { return swz<D, R>(n + (l & 7) + (l >> 4) * 8, c + ((l >> 3) & 1) * 8); }
template <int D, int R> __device__ __forceinline__ int bt_at(int k, int c, int l) { return swz<D, R>(k + (l & 7) + ((l >> 3) & 1) * 8, c + (l >> 4) * 8); }

template <int D, int BQ>
__host__ __device__ constexpr unsigned long long bwd_dkv_smem(int bk = FBK) {   // K, V [bk][D]; Q, dO [2][BQ][D]; 4 × [2][BQ] 4-byte; flags [bk]
  return 2ull * (2ull * bk * D + 4ull * BQ * D) + 4ull * 8 * BQ + bk;
}
template <int D>
__host__ __device__ constexpr unsigned long long bwd_dq_smem(int bq = FBQ) {    // Q, dO [bq][D]; K, V [2][FBK][D]; flags [2][FBK]
  return 2ull * (2ull * bq * D + 4ull * FBK * D) + 2ull * FBK;
}

/** acc [16 rows][N] += A (rows ar..ar+15 of the AR-row tile a) · Bᵀ where B is the first N rows of the BR-row tile bm
 *  (stored [n][k]), over k = 0..D; mma.sync with ldmatrix, each warp alone. */
template <typename E, int D, int N, int AR, int BR>
__device__ __forceinline__ void mma_abt(float (&acc)[N / 8][4], const uint16_t* a, int ar, const uint16_t* bm, int lane) {
#pragma unroll
  for (int kc = 0; kc < D / 16; kc++) {
    uint32_t af[4];
    ldsm_x4(af, a + a_at<D, AR>(ar, kc * 16, lane));
#pragma unroll
    for (int np = 0; np < N / 16; np++) {
      uint32_t bf[4];
      ldsm_x4(bf, bm + bn_at<D, BR>(np * 16, kc * 16, lane));
      mma16816<E>(acc[2 * np], af, bf[0], bf[1]);
      mma16816<E>(acc[2 * np + 1], af, bf[2], bf[3]);
    }
  }
}

/** As mma_abt, the rows of a warp (ar = 16 · warp) in the accumulator layout mma.sync gives; on sm_90a one wgmma per
 *  16 k for the warpgroup's 64 rows (A and B read from shared memory by descriptors, no ldmatrix), the warps of a
 *  warpgroup all calling it. Shared memory that cp.async wrote must have passed fence_proxy_async and a barrier. */
template <typename E, int D, int N, int AR, int BR, bool WG>
__device__ __forceinline__ void abt(float (&acc)[N / 8][4], const uint16_t* a, int ar, const uint16_t* bm, int lane) {
#if SDPA_WGMMA
  if constexpr (WG) {
  static_assert(AR % 64 == 0, "a warpgroup's 64 rows");
  const uint16_t* a0 = a + (ar & ~63) * 64;
  wgmma_fence(acc);
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++)
    wgmma_k16<E, N>(acc, smem_desc_sw128(a0 + (kk >> 2) * AR * 64 + (kk & 3) * 16), smem_desc_sw128(bm + (kk >> 2) * BR * 64 + (kk & 3) * 16));
  wgmma_commit();
  wgmma_wait0(acc);
  return;
  }
#endif
  mma_abt<E, D, N, AR, BR>(acc, a, ar, bm, lane);
}

/** acc [16][D] += A · B, A held as accumulator-layout probabilities x [16 rows][16·KK] (packed to E), B [16·KK][D]
 *  the first rows of the BR-row tile bm, read with bt_at. */
template <typename E, int D, int KK, int BR>
__device__ __forceinline__ void mma_pb(float (&acc)[D / 8][4], const uint32_t (&x)[2 * KK][2], const uint16_t* bm, int lane) {
#pragma unroll
  for (int kk = 0; kk < KK; kk++) {
    const uint32_t pa[4] = {x[2 * kk][0], x[2 * kk][1], x[2 * kk + 1][0], x[2 * kk + 1][1]};
#pragma unroll
    for (int dp = 0; dp < D / 16; dp++) {
      uint32_t bf[4];
      ldsm_x4_trans(bf, bm + bt_at<D, BR>(kk * 16, dp * 16, lane));
      mma16816<E>(acc[2 * dp], pa, bf[0], bf[1]);
      mma16816<E>(acc[2 * dp + 1], pa, bf[2], bf[3]);
    }
  }
}

/** As mma_pb; on sm_90a one wgmma per 16 k for the warpgroup (each warp's probabilities as its A rows, B = bm read
 *  MN-major by descriptor: 8-row groups 1024 bytes apart, the blocks of 64 columns BR · 128 bytes apart). */
template <typename E, int D, int KK, int BR, bool WG>
__device__ __forceinline__ void pb(float (&acc)[D / 8][4], uint32_t (&x)[2 * KK][2], const uint16_t* bm, int lane) {
#if SDPA_WGMMA && !defined(ATTN_NO_WGMMA_PV)
  if constexpr (WG) {
  wgmma_fence(acc);
#pragma unroll
  for (int kk = 0; kk < KK; kk++) {
    const uint32_t pa[4] = {x[2 * kk][0], x[2 * kk][1], x[2 * kk + 1][0], x[2 * kk + 1][1]};
    wgmma_rs_k16<E, D>(acc, pa, smem_desc_sw128(bm + kk * 16 * 64, BR * 128));
  }
  wgmma_commit();
  wgmma_wait0(acc);
#pragma unroll
  for (int j = 0; j < 2 * KK; j++) asm volatile("" : "+r"(x[j][0]), "+r"(x[j][1])::"memory");   // A registers held until done
  return;
  }
#endif
  mma_pb<E, D, KK, BR>(acc, x, bm, lane);
}

template <typename E, int D, int BQ, bool WG>
__device__ __forceinline__ void fwd_tc(const SdpaArgs& p) {
  constexpr int NJ = FBK / 8, ND = D / 8, THREADS = BQ * 2;   // a warp per 16 query rows
  const int t = (int)p.t, s = (int)p.s;
  const long long tiles = ((long long)t + BQ - 1) / BQ, blk = blockIdx.x;
  const int tile = (int)(tiles - 1 - blk % tiles);
  const long long h = (blk / tiles) % p.nh, b = blk / tiles / p.nh, kvh = h / (p.nh / p.nkv);
  const int i0 = tile * BQ, nq = min(BQ, t - i0);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, tg = lane & 3;
  const float inf = __int_as_float(0x7f800000);

  extern __shared__ __align__(1024) unsigned char smem[];
  check_smem(flash_smem(D, BQ));
  uint16_t* qs = (uint16_t*)smem;                         // [BQ][D]
  uint16_t* ks = qs + BQ * D;                             // [2][FBK][D]
  uint16_t* vs = ks + 2 * FBK * D;                        // [2][FBK][D]
  unsigned char* kval = (unsigned char*)(vs + 2 * FBK * D);  // [2][FBK] key is inside S and a token

  // This lane's rows r0 = 16 warp + g and r0 + 8 (rows past nq take the last row's range: computed, never stored).
  const int r0 = warp * 16 + g, r1 = r0 + 8;
  int lo0, hi0, lo1, hi1, spanLo, minHi, maxLo, spanHi;
  row_range(p, i0 + min(r0, nq - 1), lo0, hi0);
  row_range(p, i0 + min(r1, nq - 1), lo1, hi1);
  row_range(p, i0, spanLo, minHi);                        // lo and hi do not decrease with i
  row_range(p, i0 + nq - 1, maxLo, spanHi);
  const int jFirst = spanLo / FBK * FBK;
  const int nTiles = spanHi > jFirst ? (spanHi - jFirst + FBK - 1) / FBK : 0;

  const char* qb = p.q.ptr + 2 * (b * p.q.stride[0] + h * p.q.stride[1] + (long long)i0 * p.q.stride[2]);
  const char* kb = p.k.ptr + 2 * (b * p.k.stride[0] + kvh * p.k.stride[1]);
  const char* vb = p.v.ptr + 2 * (b * p.v.stride[0] + kvh * p.v.stride[1]);
  auto issue = [&](int it) {                              // key tile it into stage it % 2; this thread's key flag
    const int j0 = jFirst + it * FBK, nk = min(FBK, s - j0), st = it & 1;
    tile_async<D, FBK, THREADS>(ks + st * FBK * D, kb + 2 * (long long)j0 * p.k.stride[2], p.k.stride[2], nk);
    tile_async<D, FBK, THREADS>(vs + st * FBK * D, vb + 2 * (long long)j0 * p.v.stride[2], p.v.stride[2], nk);
    cp_async_commit();
    bool ok = false;
    if (tid < FBK) {
      ok = tid < nk && key_ok(p, b, j0 + tid);
      kval[st * FBK + tid] = ok;
    }
    return ok;
  };

  float o[ND][4];
#pragma unroll
  for (int n = 0; n < ND; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0;
  float m0 = -inf, m1 = -inf, l0 = 0, l1 = 0;             // running max (log2 domain) and this lane's partial sums

  if (nTiles > 0) {
    tile_async<D, BQ, THREADS>(qs, qb, p.q.stride[2], nq);
    cp_async_commit();
    bool okCur = issue(0);
    const float c2 = (float)(p.scale * 1.4426950408889634);   // scale · log2 e

    for (int it = 0; it < nTiles; it++) {
      const int j0 = jFirst + it * FBK, st = it & 1;
      cp_async_wait<0>();
      fence_proxy_async();                                // the landed tile visible to wgmma's reads                                 // tile it is in (the only group in flight)
      const int any = __syncthreads_or(okCur);            // and every warp is done with tile it − 1's stage
      if (it + 1 < nTiles) okCur = issue(it + 1);
      if (!any) continue;                                 // block-uniform: every key of this tile is padding
      const uint16_t* kst = ks + st * FBK * D;
      const uint16_t* vst = vs + st * FBK * D;
      const unsigned char* kv = kval + st * FBK;

      float sc[NJ][4];                                    // S [16 rows][FBK keys] of this warp
#pragma unroll
      for (int j = 0; j < NJ; j++) sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0;
      abt<E, D, FBK, BQ, FBK, WG>(sc, qs, warp * 16, kst, lane);

      const bool needMask = p.keymask.ptr != nullptr || j0 + FBK > s || j0 < maxLo || j0 + FBK > minHi;
      float mx0 = -inf, mx1 = -inf;                       // maxima of the raw scores (c2 > 0 keeps the order)
#pragma unroll
      for (int j = 0; j < NJ; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          float x = sc[j][e];
          if (needMask) {
            const int col = 8 * j + 2 * tg + (e & 1), jj = j0 + col;
            const bool vis = kv[col] && (e < 2 ? jj >= lo0 && jj < hi0 : jj >= lo1 && jj < hi1);
            x = vis ? x : -inf;
          }
          sc[j][e] = x;
          if (e < 2) mx0 = fmaxf(mx0, x); else mx1 = fmaxf(mx1, x);
        }
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
      const float mn0 = fmaxf(m0, mx0 * c2), mn1 = fmaxf(m1, mx1 * c2);
      const float base0 = mn0 == -inf ? 0.f : mn0, base1 = mn1 == -inf ? 0.f : mn1;   // no key yet: P = 0, not NaN
      const float a0 = exp2_ftz(m0 - base0), a1 = exp2_ftz(m1 - base1);             // 0 while nothing was summed
      m0 = mn0;
      m1 = mn1;
      float sum0 = 0, sum1 = 0;
#pragma unroll
      for (int j = 0; j < NJ; j++) {                      // P = 2^(c2 · S − m): one FFMA and one ex2 each
        sc[j][0] = exp2_ftz(fmaf(sc[j][0], c2, -base0));
        sc[j][1] = exp2_ftz(fmaf(sc[j][1], c2, -base0));
        sc[j][2] = exp2_ftz(fmaf(sc[j][2], c2, -base1));
        sc[j][3] = exp2_ftz(fmaf(sc[j][3], c2, -base1));
        sum0 += sc[j][0] + sc[j][1];
        sum1 += sc[j][2] + sc[j][3];
      }
      l0 = l0 * a0 + sum0;
      l1 = l1 * a1 + sum1;
#pragma unroll
      for (int n = 0; n < ND; n++) {
        o[n][0] *= a0;
        o[n][1] *= a0;
        o[n][2] *= a1;
        o[n][3] *= a1;
      }
      uint32_t pp[NJ][2];   // P meets V in the activation dtype (as the CPU reference rounds it), the sums above kept f32
#pragma unroll
      for (int j = 0; j < NJ; j++) {
        pp[j][0] = pack2<E>(sc[j][0], sc[j][1]);
        pp[j][1] = pack2<E>(sc[j][2], sc[j][3]);
      }
      pb<E, D, FBK / 16, FBK, WG>(o, pp, vst, lane);
    }
  }

  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  const float inv0 = l0 == 0 ? 0.f : 1.f / l0, inv1 = l1 == 0 ? 0.f : 1.f / l1;   // sees no key: out 0
  const long long ob = b * p.o.stride[0] + h * p.o.stride[1];
#pragma unroll
  for (int n = 0; n < ND; n++) {
    const int col = 8 * n + 2 * tg;
    if (r0 < nq) *(uint32_t*)(p.o.ptr + 2 * (ob + (long long)(i0 + r0) * p.o.stride[2] + col)) = pack2<E>(o[n][0] * inv0, o[n][1] * inv0);
    if (r1 < nq) *(uint32_t*)(p.o.ptr + 2 * (ob + (long long)(i0 + r1) * p.o.stride[2] + col)) = pack2<E>(o[n][2] * inv1, o[n][3] * inv1);
  }
  if (tg == 0) {
    const long long lb = b * p.lse.stride[0] + h * p.lse.stride[1];
    const float ln2 = 0.6931471805599453f;
    if (r0 < nq) store<float>(p.lse, lb + (long long)(i0 + r0) * p.lse.stride[2], l0 == 0 ? inf : m0 * ln2 + logf(l0));
    if (r1 < nq) store<float>(p.lse, lb + (long long)(i0 + r1) * p.lse.stride[2], l1 == 0 ? inf : m1 * ln2 + logf(l1));
  }
}

// Each kernel also as _mma: mma.sync alone (no wgmma), to compare and to fall back on (-Djomni.attention.variant=mma).
#define SDPA_TC_KERNEL(SUFFIX, E, D)                                                                                              \
  extern "C" __global__ void __launch_bounds__(FNT) sdpa_fwd_tc_##SUFFIX(const SdpaArgs p) { fwd_tc<E, D, FBQ, true>(p); }           \
  extern "C" __global__ void __launch_bounds__(2 * FNT) sdpa_fwd_tc_##SUFFIX##_q128(const SdpaArgs p) { fwd_tc<E, D, 128, true>(p); } \
  extern "C" __global__ void __launch_bounds__(FNT) sdpa_fwd_tc_##SUFFIX##_mma(const SdpaArgs p) { fwd_tc<E, D, FBQ, false>(p); }     \
  extern "C" __global__ void __launch_bounds__(2 * FNT) sdpa_fwd_tc_##SUFFIX##_q128_mma(const SdpaArgs p) { fwd_tc<E, D, 128, false>(p); }

SDPA_TC_KERNEL(bf16_d64, __nv_bfloat16, 64)
SDPA_TC_KERNEL(bf16_d128, __nv_bfloat16, 128)
SDPA_TC_KERNEL(f16_d64, __half, 64)
SDPA_TC_KERNEL(f16_d128, __half, 128)

// ---------------------------------------------------------------- backward on tensor cores
// FlashAttention-2's backward for bf16/f16, d ∈ {64, 128}, from the forward's lse and delta = rowsum(dO ∘ O)
// (sdpa_bwd_delta_tc_*: 16-byte loads, d / 8 threads per row; sdpa_bwd_delta_f32 for unaligned rows), with
// the probabilities recomputed as P = exp2(scale · log2 e · Q Kᵀ − log2 e · lse). Two kernels, no atomics (every
// sum in a fixed order); their products by abt (Sᵀ, dPᵀ, S, dP) and pb (dV, dK, dQ), wgmma on sm_90a:
//   sdpa_bwd_tc_dkv_{E}_d{D}[_b64|_mma]: BQ = 64 query rows at d 64 and in _b64 (d 128), else 32. Block per (b, kv head, tile of FBK = 64 keys), 4 warps, warp w owning
//     keys 16w..16w+15. K and V stay in shared memory; the query tiles of BQ rows that see the key tile (from
//     the first query whose range ends past the tile to the first whose range starts after it), for each
//     query head of the group in order, stream Q and dO through two cp.async stages with their lse, delta
//     and key ranges. Per query tile, in each warp: Sᵀ = K Qᵀ (16 keys × BQ queries), Pᵀ = exp2(...)
//     (masked to 0 when the tile crosses a mask boundary or a keyMask is given; query rows past the span
//     carry lse = +∞ so P = 0), dV += Pᵀ dO with Pᵀ rounded to E as an A fragment, dPᵀ = V dOᵀ,
//     dSᵀ = Pᵀ ∘ (dPᵀ − delta), dK += dSᵀ Q (dSᵀ rounded to E); at the end dK · scale and dV are stored.
//     With a grid of y > 1 splits (GQA with few kv heads: more blocks, shorter ones under a causal mask), split y
//     takes the group's heads [y · group / splits, ...) and stores f32 partials to dk, dv [splits · B, nkv, S, D];
//     sdpa_bwd_tc_split_sum_{E} then sums them in split order into the E gradients.
//   sdpa_bwd_tc_dq_{E}_d{D}[_q128][_mma]: block per (b, h, tile of 64 or 128 queries), as the forward (tiles last to first,
//     key tiles from multiples of 64, two cp.async stages of K and V, padding tiles skipped): S = Q Kᵀ,
//     P = exp2(...), dP = dO Vᵀ, dS = P ∘ (dP − delta), dQ += dS K; dQ · scale stored.
// Shared memory as the forward's (16-byte chunks swizzled), sized by bwd_dkv_smem / bwd_dq_smem; rows of q, k,
// v, dout, dq, dk and dv start 16-byte aligned (the launcher checks).

/** delta[row] = Σ_c dout · out over 16-byte aligned E rows of D elements: 8 per thread, D / 8 threads per row. */
template <typename E, int D>
__device__ __forceinline__ void bwd_delta_tc(const SdpaArgs& p) {
  constexpr int TPR = D / 8;
  const long long row = ((long long)blockIdx.x * NT + threadIdx.x) / TPR, rows = p.b * p.nh * p.t;
  const int c = (threadIdx.x % TPR) * 8;
  float sum = 0;
  if (row < rows) {
    const long long i = row % p.t, h = row / p.t % p.nh, b = row / p.t / p.nh;
    const uint4 o = *(const uint4*)(p.o.ptr + 2 * (b * p.o.stride[0] + h * p.o.stride[1] + i * p.o.stride[2] + c));
    const uint4 g = *(const uint4*)(p.dout.ptr + 2 * (b * p.dout.stride[0] + h * p.dout.stride[1] + i * p.dout.stride[2] + c));
    const uint32_t ow[4] = {o.x, o.y, o.z, o.w}, gw[4] = {g.x, g.y, g.z, g.w};
#pragma unroll
    for (int w = 0; w < 4; w++) {
      const float2 a = unpack2<E>(ow[w]), e = unpack2<E>(gw[w]);
      sum += a.x * e.x + a.y * e.y;
    }
  }
#pragma unroll
  for (int o = TPR / 2; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (row < rows && threadIdx.x % TPR == 0) ((float*)p.delta.ptr)[row] = sum;
}

#define SDPA_TC_DELTA(SUFFIX, E, D) \
  extern "C" __global__ void __launch_bounds__(NT) sdpa_bwd_delta_tc_##SUFFIX(const SdpaArgs p) { bwd_delta_tc<E, D>(p); }
SDPA_TC_DELTA(bf16_d64, __nv_bfloat16, 64)
SDPA_TC_DELTA(bf16_d128, __nv_bfloat16, 128)
SDPA_TC_DELTA(f16_d64, __half, 64)
SDPA_TC_DELTA(f16_d128, __half, 128)

/** The queries that see some key of [j0, j0 + nk): [qa, qb) (row_range's lo and hi do not decrease with i). */
__device__ __forceinline__ void query_span(const SdpaArgs& p, int j0, int nk, int& qa, int& qb) {
  int a, e, x0 = 0, x1 = (int)p.t;
  while (x0 < x1) {                                  // first i with hi(i) > j0
    const int mid = (x0 + x1) >> 1;
    row_range(p, mid, a, e);
    if (e > j0) x1 = mid; else x0 = mid + 1;
  }
  qa = x0;
  x1 = (int)p.t;
  while (x0 < x1) {                                  // first i with lo(i) >= j0 + nk
    const int mid = (x0 + x1) >> 1;
    row_range(p, mid, a, e);
    if (a >= j0 + nk) x1 = mid; else x0 = mid + 1;
  }
  qb = x0;
}

/** Stores the accumulators [16 rows r0 = 16 w + g and r0 + 8][D] · mul into x[b, hh, base + row] for rows < n: as E pairs,
 *  or as f32 pairs when x is f32 (the dK/dV partials of a split group). */
template <typename E, int D>
__device__ __forceinline__ void store_rows(const Operand& x, long long b, long long hh, int base, int r0, int n, const float (&acc)[D / 8][4], float mul) {
  const int tg = threadIdx.x & 3;
  const long long at = b * x.stride[0] + hh * x.stride[1];
  const bool f32 = x.dtype == DT_F32;
#pragma unroll
  for (int c = 0; c < D / 8; c++) {
    const int col = 8 * c + 2 * tg;
#pragma unroll
    for (int half = 0; half < 2; half++) {
      if (r0 + 8 * half >= n) continue;
      const long long off = at + (long long)(base + r0 + 8 * half) * x.stride[2] + col;
      const float lo = acc[c][2 * half] * mul, hi = acc[c][2 * half + 1] * mul;
      if (f32) *(float2*)(x.ptr + 4 * off) = make_float2(lo, hi);
      else *(uint32_t*)(x.ptr + 2 * off) = pack2<E>(lo, hi);
    }
  }
}

template <typename E, int D, int BQ, int BK, bool WG>
__device__ __forceinline__ void bwd_dkv_tc(const SdpaArgs& p) {
  constexpr int NQ = BQ / 8, ND = D / 8, THREADS = BK * 2;   // a warp per 16 keys
  const int s = (int)p.s;
  const long long tiles = (p.s + BK - 1) / BK, blk = blockIdx.x;
  const int tile = (int)(blk % tiles);
  const long long kvh = (blk / tiles) % p.nkv, b = blk / tiles / p.nkv, group = p.nh / p.nkv;
  const int j0 = tile * BK, nk = min(BK, s - j0);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, tg = lane & 3;
  const bool wantK = p.dk.ptr != nullptr, wantV = p.dv.ptr != nullptr;
  const float inf = __int_as_float(0x7f800000), log2e = 1.4426950408889634f;

  extern __shared__ __align__(1024) unsigned char smem[];
  check_smem(bwd_dkv_smem<D, BQ>(BK));
  uint16_t* ks = (uint16_t*)smem;                         // [BK][D]
  uint16_t* vs = ks + BK * D;                            // [BK][D]
  uint16_t* qs = vs + BK * D;                            // [2][BQ][D]
  uint16_t* gs = qs + 2 * BQ * D;                         // [2][BQ][D] dout
  float* l2s = (float*)(gs + 2 * BQ * D);                 // [2][BQ] log2 e · lse (+∞: the row sees nothing here)
  float* dls = l2s + 2 * BQ;                              // [2][BQ] delta
  int* los = (int*)(dls + 2 * BQ);                        // [2][BQ] key range of the row
  int* his = los + 2 * BQ;
  unsigned char* kval = (unsigned char*)(his + 2 * BQ);   // [BK] key is inside S and a token

  // split y of gridDim.y takes the group's heads [y · hs, (y + 1) · hs) (the launcher's split divides the group)
  const long long hs = group / gridDim.y, h0 = kvh * group + blockIdx.y * hs;
  int qa, qb;
  query_span(p, j0, nk, qa, qb);
  const int nQt = qb > qa ? (qb - qa + BQ - 1) / BQ : 0;
  const int total = (int)hs * nQt;

  tile_async<D, BK, THREADS>(ks, p.k.ptr + 2 * (b * p.k.stride[0] + kvh * p.k.stride[1] + (long long)j0 * p.k.stride[2]), p.k.stride[2], nk);
  tile_async<D, BK, THREADS>(vs, p.v.ptr + 2 * (b * p.v.stride[0] + kvh * p.v.stride[1] + (long long)j0 * p.v.stride[2]), p.v.stride[2], nk);
  if (tid < BK) kval[tid] = tid < nk && key_ok(p, b, j0 + tid);
  auto issue = [&](int it) {                              // query tile it (head h0 + it / nQt) into stage it % 2
    const long long h = h0 + it / nQt;
    const int i0 = qa + (it % nQt) * BQ, nq = min(BQ, qb - i0), st = it & 1;
    tile_async<D, BQ, THREADS>(qs + st * BQ * D, p.q.ptr + 2 * (b * p.q.stride[0] + h * p.q.stride[1] + (long long)i0 * p.q.stride[2]), p.q.stride[2], nq);
    tile_async<D, BQ, THREADS>(gs + st * BQ * D, p.dout.ptr + 2 * (b * p.dout.stride[0] + h * p.dout.stride[1] + (long long)i0 * p.dout.stride[2]), p.dout.stride[2], nq);
    cp_async_commit();
    for (int r = tid; r < BQ; r += THREADS) {
      int lo = 0, hi = 0;
      float l2 = inf, dd = 0;
      if (r < nq) {
        row_range(p, i0 + r, lo, hi);
        l2 = load<float>(p.lse, b * p.lse.stride[0] + h * p.lse.stride[1] + (long long)(i0 + r) * p.lse.stride[2]) * log2e;
        dd = load<float>(p.delta, (b * p.nh + h) * p.t + i0 + r);
      }
      l2s[st * BQ + r] = l2;
      dls[st * BQ + r] = dd;
      los[st * BQ + r] = lo;
      his[st * BQ + r] = hi;
    }
  };

  float dk[ND][4], dv[ND][4];
#pragma unroll
  for (int n = 0; n < ND; n++)
#pragma unroll
    for (int e = 0; e < 4; e++) dk[n][e] = dv[n][e] = 0;
  const float c2 = (float)(p.scale * 1.4426950408889634);
  const int kw = warp * 16, key0 = kw + g, key1 = key0 + 8;   // this lane's key rows in the tile

  if (total > 0) {
    issue(0);
    for (int it = 0; it < total; it++) {
      const int st = it & 1, nq = min(BQ, qb - (qa + (it % nQt) * BQ));
      cp_async_wait<0>();
      fence_proxy_async();                                // the landed tile visible to wgmma's reads
      __syncthreads();                                    // stage st is in, and every warp is done with the other
      if (it + 1 < total) issue(it + 1);
      const uint16_t* qst = qs + st * BQ * D;
      const uint16_t* gst = gs + st * BQ * D;
      const float* l2 = l2s + st * BQ;
      const float* dl = dls + st * BQ;
      const int* lo = los + st * BQ;
      const int* hi = his + st * BQ;
      // every key of the tile visible to every row < nq (rows past nq have lse = +∞: P = 0)
      const bool needMask = p.keymask.ptr != nullptr || lo[nq - 1] > j0 || hi[0] < j0 + BK;

      float sc[NQ][4];                                    // Sᵀ [16 keys][BQ queries], then Pᵀ
#pragma unroll
      for (int j = 0; j < NQ; j++) sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0;
      abt<E, D, BQ, BK, BQ, WG>(sc, ks, kw, qst, lane);
      uint32_t pp[NQ][2];                                 // Pᵀ rounded to E: A fragments for dV, and dS's P
#pragma unroll
      for (int j = 0; j < NQ; j++) {
        float x[4];
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int col = 8 * j + 2 * tg + (e & 1), key = e < 2 ? key0 : key1, jj = j0 + key;
          x[e] = exp2_ftz(fmaf(sc[j][e], c2, -l2[col]));
          if (needMask && !(kval[key] && jj >= lo[col] && jj < hi[col])) x[e] = 0;
        }
        pp[j][0] = pack2<E>(x[0], x[1]);
        pp[j][1] = pack2<E>(x[2], x[3]);
      }
      if (wantV) pb<E, D, BQ / 16, BQ, WG>(dv, pp, gst, lane);
      if (wantK) {
        float dp[NQ][4];                                  // dPᵀ = V dOᵀ, then dSᵀ
#pragma unroll
        for (int j = 0; j < NQ; j++) dp[j][0] = dp[j][1] = dp[j][2] = dp[j][3] = 0;
        abt<E, D, BQ, BK, BQ, WG>(dp, vs, kw, gst, lane);
#pragma unroll
        for (int j = 0; j < NQ; j++) {
          const int col = 8 * j + 2 * tg;
          const float d0 = dl[col], d1 = dl[col + 1];
          const float2 p0 = unpack2<E>(pp[j][0]), p1 = unpack2<E>(pp[j][1]);
          pp[j][0] = pack2<E>(p0.x * (dp[j][0] - d0), p0.y * (dp[j][1] - d1));
          pp[j][1] = pack2<E>(p1.x * (dp[j][2] - d0), p1.y * (dp[j][3] - d1));
        }
        pb<E, D, BQ / 16, BQ, WG>(dk, pp, qst, lane);
      }
    }
  }
  const long long bo = blockIdx.y * p.b + b;              // a split's partials: batch row y · B + b of the f32 scratch
  if (wantK) store_rows<E, D>(p.dk, bo, kvh, j0, key0, nk, dk, (float)p.scale);
  if (wantV) store_rows<E, D>(p.dv, bo, kvh, j0, key0, nk, dv, 1.f);
}

/** The split group's dK or dV: dst[b, h, j, c] = Σ_y src[y · B + b, h, j, c] in order y = 0, 1, ... (f32), rounded to E. */
struct SplitSumArgs {
  long long b, heads, rows, d, splits;
  Operand src, dst;
};

template <typename E>
__device__ __forceinline__ void split_sum(const SplitSumArgs& a) {
  const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x, pairs = a.d / 2;
  if (e >= a.b * a.heads * a.rows * pairs) return;
  const long long c = 2 * (e % pairs), r = e / pairs, j = r % a.rows, h = r / a.rows % a.heads, b = r / a.rows / a.heads;
  float lo = 0, hi = 0;
  for (long long y = 0; y < a.splits; y++) {
    const float2 v = *(const float2*)(a.src.ptr + 4 * ((y * a.b + b) * a.src.stride[0] + h * a.src.stride[1] + j * a.src.stride[2] + c));
    lo += v.x;
    hi += v.y;
  }
  *(uint32_t*)(a.dst.ptr + 2 * (b * a.dst.stride[0] + h * a.dst.stride[1] + j * a.dst.stride[2] + c)) = pack2<E>(lo, hi);
}

extern "C" __global__ void __launch_bounds__(NT) sdpa_bwd_tc_split_sum_bf16(const SplitSumArgs a) { split_sum<__nv_bfloat16>(a); }
extern "C" __global__ void __launch_bounds__(NT) sdpa_bwd_tc_split_sum_f16(const SplitSumArgs a) { split_sum<__half>(a); }

template <typename E, int D, int BQ, bool WG>
__device__ __forceinline__ void bwd_dq_tc(const SdpaArgs& p) {
  constexpr int NJ = FBK / 8, ND = D / 8, THREADS = BQ * 2;   // a warp per 16 query rows
  const int t = (int)p.t, s = (int)p.s;
  const long long tiles = ((long long)t + BQ - 1) / BQ, blk = blockIdx.x;
  const int tile = (int)(tiles - 1 - blk % tiles);
  const long long h = (blk / tiles) % p.nh, b = blk / tiles / p.nh, kvh = h / (p.nh / p.nkv);
  const int i0 = tile * BQ, nq = min(BQ, t - i0);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, tg = lane & 3;
  const float inf = __int_as_float(0x7f800000), log2e = 1.4426950408889634f;

  extern __shared__ __align__(1024) unsigned char smem[];
  check_smem(bwd_dq_smem<D>(BQ));
  uint16_t* qs = (uint16_t*)smem;                         // [BQ][D]
  uint16_t* gs = qs + BQ * D;                             // [BQ][D] dout
  uint16_t* ks = gs + BQ * D;                             // [2][FBK][D]
  uint16_t* vs = ks + 2 * FBK * D;                        // [2][FBK][D]
  unsigned char* kval = (unsigned char*)(vs + 2 * FBK * D);  // [2][FBK]

  const int r0 = warp * 16 + g, r1 = r0 + 8;
  int lo0, hi0, lo1, hi1, spanLo, minHi, maxLo, spanHi;
  row_range(p, i0 + min(r0, nq - 1), lo0, hi0);
  row_range(p, i0 + min(r1, nq - 1), lo1, hi1);
  row_range(p, i0, spanLo, minHi);
  row_range(p, i0 + nq - 1, maxLo, spanHi);
  const int jFirst = spanLo / FBK * FBK;
  const int nTiles = spanHi > jFirst ? (spanHi - jFirst + FBK - 1) / FBK : 0;
  const long long lb = b * p.lse.stride[0] + h * p.lse.stride[1], db = (b * p.nh + h) * p.t;
  // log2 e · lse and delta of this lane's rows (past nq: lse = +∞, so P = 0)
  const float l20 = r0 < nq ? load<float>(p.lse, lb + (long long)(i0 + r0) * p.lse.stride[2]) * log2e : inf;
  const float l21 = r1 < nq ? load<float>(p.lse, lb + (long long)(i0 + r1) * p.lse.stride[2]) * log2e : inf;
  const float d0 = r0 < nq ? load<float>(p.delta, db + i0 + r0) : 0.f;
  const float d1 = r1 < nq ? load<float>(p.delta, db + i0 + r1) : 0.f;

  const char* kb = p.k.ptr + 2 * (b * p.k.stride[0] + kvh * p.k.stride[1]);
  const char* vb = p.v.ptr + 2 * (b * p.v.stride[0] + kvh * p.v.stride[1]);
  auto issue = [&](int it) {
    const int j0 = jFirst + it * FBK, nk = min(FBK, s - j0), st = it & 1;
    tile_async<D, FBK, THREADS>(ks + st * FBK * D, kb + 2 * (long long)j0 * p.k.stride[2], p.k.stride[2], nk);
    tile_async<D, FBK, THREADS>(vs + st * FBK * D, vb + 2 * (long long)j0 * p.v.stride[2], p.v.stride[2], nk);
    cp_async_commit();
    bool ok = false;
    if (tid < FBK) {
      ok = tid < nk && key_ok(p, b, j0 + tid);
      kval[st * FBK + tid] = ok;
    }
    return ok;
  };

  float dq[ND][4];
#pragma unroll
  for (int n = 0; n < ND; n++) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0;
  const float c2 = (float)(p.scale * 1.4426950408889634);

  if (nTiles > 0) {
    tile_async<D, BQ, THREADS>(qs, p.q.ptr + 2 * (b * p.q.stride[0] + h * p.q.stride[1] + (long long)i0 * p.q.stride[2]), p.q.stride[2], nq);
    tile_async<D, BQ, THREADS>(gs, p.dout.ptr + 2 * (b * p.dout.stride[0] + h * p.dout.stride[1] + (long long)i0 * p.dout.stride[2]), p.dout.stride[2], nq);
    cp_async_commit();
    bool okCur = issue(0);
    for (int it = 0; it < nTiles; it++) {
      const int j0 = jFirst + it * FBK, st = it & 1;
      cp_async_wait<0>();
      fence_proxy_async();                                // the landed tile visible to wgmma's reads
      const int any = __syncthreads_or(okCur);
      if (it + 1 < nTiles) okCur = issue(it + 1);
      if (!any) continue;                                 // block-uniform: every key of this tile is padding
      const uint16_t* kst = ks + st * FBK * D;
      const uint16_t* vst = vs + st * FBK * D;
      const unsigned char* kv = kval + st * FBK;

      float sc[NJ][4];                                    // S [16 rows][FBK keys], then P
#pragma unroll
      for (int j = 0; j < NJ; j++) sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0;
      abt<E, D, FBK, BQ, FBK, WG>(sc, qs, warp * 16, kst, lane);
      const bool needMask = p.keymask.ptr != nullptr || j0 + FBK > s || j0 < maxLo || j0 + FBK > minHi;
#pragma unroll
      for (int j = 0; j < NJ; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int col = 8 * j + 2 * tg + (e & 1), jj = j0 + col;
          float x = exp2_ftz(fmaf(sc[j][e], c2, e < 2 ? -l20 : -l21));
          if (needMask && !(kv[col] && (e < 2 ? jj >= lo0 && jj < hi0 : jj >= lo1 && jj < hi1))) x = 0;
          sc[j][e] = x;
        }
      float dp[NJ][4];                                    // dP = dO Vᵀ
#pragma unroll
      for (int j = 0; j < NJ; j++) dp[j][0] = dp[j][1] = dp[j][2] = dp[j][3] = 0;
      abt<E, D, FBK, BQ, FBK, WG>(dp, gs, warp * 16, vst, lane);
      uint32_t ds[NJ][2];                                 // dS = P ∘ (dP − delta), rounded to E
#pragma unroll
      for (int j = 0; j < NJ; j++) {
        ds[j][0] = pack2<E>(sc[j][0] * (dp[j][0] - d0), sc[j][1] * (dp[j][1] - d0));
        ds[j][1] = pack2<E>(sc[j][2] * (dp[j][2] - d1), sc[j][3] * (dp[j][3] - d1));
      }
      pb<E, D, FBK / 16, FBK, WG>(dq, ds, kst, lane);
    }
  }
  store_rows<E, D>(p.dq, b, h, i0, r0, nq, dq, (float)p.scale);
}

#define SDPA_TC_BWD_KERNELS(SUFFIX, E, D, BQ)                                                                                          \
  extern "C" __global__ void __launch_bounds__(FNT) sdpa_bwd_tc_dq_##SUFFIX(const SdpaArgs p) { bwd_dq_tc<E, D, FBQ, true>(p); }              \
  extern "C" __global__ void __launch_bounds__(2 * FNT) sdpa_bwd_tc_dq_##SUFFIX##_q128(const SdpaArgs p) { bwd_dq_tc<E, D, 128, true>(p); }    \
  extern "C" __global__ void __launch_bounds__(FNT) sdpa_bwd_tc_dkv_##SUFFIX(const SdpaArgs p) { bwd_dkv_tc<E, D, BQ, FBK, true>(p); }        \
  extern "C" __global__ void __launch_bounds__(FNT) sdpa_bwd_tc_dq_##SUFFIX##_mma(const SdpaArgs p) { bwd_dq_tc<E, D, FBQ, false>(p); }       \
  extern "C" __global__ void __launch_bounds__(2 * FNT) sdpa_bwd_tc_dq_##SUFFIX##_q128_mma(const SdpaArgs p) { bwd_dq_tc<E, D, 128, false>(p); } \
  extern "C" __global__ void __launch_bounds__(FNT) sdpa_bwd_tc_dkv_##SUFFIX##_mma(const SdpaArgs p) { bwd_dkv_tc<E, D, BQ, FBK, false>(p); }

SDPA_TC_BWD_KERNELS(bf16_d64, __nv_bfloat16, 64, 64)
SDPA_TC_BWD_KERNELS(bf16_d128, __nv_bfloat16, 128, 32)
SDPA_TC_BWD_KERNELS(f16_d64, __half, 64, 64)
SDPA_TC_BWD_KERNELS(f16_d128, __half, 128, 32)
// d 128 with 64-row query tiles in dK/dV (more registers, fewer and larger wgmma steps)
extern "C" __global__ void __launch_bounds__(FNT) sdpa_bwd_tc_dkv_bf16_d128_b64(const SdpaArgs p) { bwd_dkv_tc<__nv_bfloat16, 128, 64, FBK, true>(p); }
extern "C" __global__ void __launch_bounds__(FNT) sdpa_bwd_tc_dkv_f16_d128_b64(const SdpaArgs p) { bwd_dkv_tc<__half, 128, 64, FBK, true>(p); }

// ---------------------------------------------------------------- decode over a paged cache
// ScaledDotProductAttention.Kernels.decode ("flash decoding"): one query per (b, head) over the first lens[b]
// tokens of sequence b, token j at row j % bs of block table[b, j / bs] of the caches k, v [blocks, nkv, bs, d].
//   sdpa_decode_{E}_d{D}_g{G}: block per (b, kv head, chunk of DCH = 256 tokens, G query heads of the group),
//     grid (B · nkv, ceil(maxBlocks · bs / DCH), group / G), 4 warps. Each warp takes 32 tokens at a time, a
//     lane per token for the scores (its K row by 16-byte loads, the G queries from shared memory, pre-scaled
//     by scale · log2 e), an online softmax per head (running max by warp shuffles, each lane's partial sum),
//     then a lane per D/32 columns for O += P V over those 32 tokens. The warps' (m, l, O) merge in order
//     into the chunk's f32 partials pm [B, nh, chunks, 2] (log2-domain max, sum) and po [B, nh, chunks, D].
//   sdpa_decode_combine_{E}_d{D}: block per (b, head): the chunks merged in order, out = O / l, lse = ln of
//     the sum (+∞ and out 0 for an empty sequence). f32 throughout, probabilities not rounded.
constexpr int DNT = 128, DCH = 256;

/** sdpa_decode's dynamic shared memory (f32): queries [G][D], probabilities [4][32][G], warp maxima and sums [2][4][G], outputs [4][G][D]. */
__host__ __device__ constexpr unsigned long long decode_smem(int g, int d) {
  return 4ull * ((unsigned long long)g * d + (DNT / 32) * 32ull * g + 2ull * (DNT / 32) * g + (DNT / 32) * (unsigned long long)g * d);
}

struct DecodeArgs {
  long long b, nh, nkv, bs, maxBlocks, chunks;
  double scale;
  Operand q, k, v, table, lens, pm, po, out, lse;
};

template <typename E, int D, int G>
__device__ __forceinline__ void decode_chunk(const DecodeArgs& p) {
  constexpr int NW = DNT / 32, CPL = D / 32;   // warps; columns per lane in the P V phase
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const long long b = blockIdx.x / p.nkv, g = blockIdx.x % p.nkv, group = p.nh / p.nkv;
  const long long h0 = g * group + (long long)blockIdx.z * G;   // this block's first query head
  const int len = ((const int*)p.lens.ptr)[b], j0 = blockIdx.y * DCH, j1 = min(len, j0 + DCH);
  const int* table = (const int*)p.table.ptr + b * p.maxBlocks;
  const float inf = __int_as_float(0x7f800000);

  extern __shared__ __align__(1024) unsigned char smem[];
  check_smem(decode_smem(G, D));
  float (*qs)[D] = (float (*)[D])smem;                    // [G][D] queries · scale · log2 e
  float (*ps)[32][G] = (float (*)[32][G])(qs + G);        // [NW][32][G] a warp's probabilities of its 32 tokens
  float (*wm)[G] = (float (*)[G])(ps + NW);               // [NW][G] the warps' maxima,
  float (*wl)[G] = wm + NW;                               // sums
  float (*wo)[G][D] = (float (*)[G][D])(wl + NW);         // and outputs [NW][G][D]
  const float c2 = (float)(p.scale * 1.4426950408889634);
  for (int e = threadIdx.x; e < G * D; e += DNT) {
    const int hh = e / D, c = e % D;
    qs[hh][c] = load<float>(p.q, b * p.q.stride[0] + (h0 + hh) * p.q.stride[1] + c) * c2;
  }
  __syncthreads();

  float m[G], l[G], o[G][CPL];
#pragma unroll
  for (int hh = 0; hh < G; hh++) {
    m[hh] = -inf;
    l[hh] = 0;
#pragma unroll
    for (int x = 0; x < CPL; x++) o[hh][x] = 0;
  }
  const int bs = (int)p.bs;
  const long long ks0 = p.k.stride[0], ks1 = p.k.stride[1], ks2 = p.k.stride[2];
  const long long vs0 = p.v.stride[0], vs1 = p.v.stride[1], vs2 = p.v.stride[2];
  for (int base = j0 + 32 * warp; base < j1; base += 32 * NW) {
    const int j = base + lane;
    float s[G];
#pragma unroll
    for (int hh = 0; hh < G; hh++) s[hh] = 0;
    if (j < j1) {
      const char* kr = p.k.ptr + 2 * (table[j / bs] * ks0 + g * ks1 + (long long)(j % bs) * ks2);   // K row of token j
#pragma unroll 4
      for (int c = 0; c < D; c += 8) {
        const uint4 w = *(const uint4*)(kr + 2 * c);
        const uint32_t ws[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int x = 0; x < 4; x++) {
          const float2 kv = unpack2<E>(ws[x]);
#pragma unroll
          for (int hh = 0; hh < G; hh++) s[hh] += qs[hh][c + 2 * x] * kv.x + qs[hh][c + 2 * x + 1] * kv.y;
        }
      }
    }
    float alpha[G];
#pragma unroll
    for (int hh = 0; hh < G; hh++) {
      const float x = j < j1 ? s[hh] : -inf;
      const float mn = fmaxf(m[hh], warp_max(x));           // finite: token base < j1 is in range
      alpha[hh] = exp2_ftz(m[hh] - mn);
      m[hh] = mn;
      const float pr = exp2_ftz(x - mn);
      l[hh] = l[hh] * alpha[hh] + pr;
      ps[warp][lane][hh] = pr;
#pragma unroll
      for (int x2 = 0; x2 < CPL; x2++) o[hh][x2] *= alpha[hh];
    }
    __syncwarp();
    const int n = min(32, j1 - base);
    for (int kk = 0; kk < n; kk++) {
      const int jv = base + kk;
      const char* vr = p.v.ptr + 2 * (table[jv / bs] * vs0 + g * vs1 + (long long)(jv % bs) * vs2 + lane * CPL);
      float v[CPL];
      if constexpr (CPL == 4) {
        const uint2 w = *(const uint2*)vr;
        const float2 a = unpack2<E>(w.x), c = unpack2<E>(w.y);
        v[0] = a.x; v[1] = a.y; v[2] = c.x; v[3] = c.y;
      } else {
        const float2 a = unpack2<E>(*(const uint32_t*)vr);
        v[0] = a.x; v[1] = a.y;
      }
#pragma unroll
      for (int hh = 0; hh < G; hh++) {
        const float pr = ps[warp][kk][hh];
#pragma unroll
        for (int x = 0; x < CPL; x++) o[hh][x] += pr * v[x];
      }
    }
    __syncwarp();
  }
  // the warps' partials, merged in warp order
#pragma unroll
  for (int hh = 0; hh < G; hh++) {
    const float ls = warp_sum(l[hh]);
    if (lane == 0) {
      wm[warp][hh] = m[hh];
      wl[warp][hh] = ls;
    }
#pragma unroll
    for (int x = 0; x < CPL; x++) wo[warp][hh][lane * CPL + x] = o[hh][x];
  }
  __syncthreads();
  const long long pb = ((b * p.nh + h0) * p.chunks + blockIdx.y);   // partial index of head h0
  for (int e = threadIdx.x; e < G * D; e += DNT) {
    const int hh = e / D, c = e % D;
    float mm = -inf;
    for (int w = 0; w < NW; w++) mm = fmaxf(mm, wm[w][hh]);
    float oo = 0, ll = 0;
    if (mm != -inf)
      for (int w = 0; w < NW; w++) {
        const float a = exp2_ftz(wm[w][hh] - mm);
        oo += wo[w][hh][c] * a;
        ll += wl[w][hh] * a;
      }
    const long long at = pb + (long long)hh * p.chunks;
    ((float*)p.po.ptr)[at * D + c] = oo;
    if (c == 0) {
      ((float*)p.pm.ptr)[2 * at] = mm;
      ((float*)p.pm.ptr)[2 * at + 1] = ll;
    }
  }
}

template <typename E, int D>
__device__ __forceinline__ void decode_combine(const DecodeArgs& p) {
  const long long bh = blockIdx.x, b = bh / p.nh, h = bh % p.nh;
  const float* pm = (const float*)p.pm.ptr + 2 * bh * p.chunks;
  const float* po = (const float*)p.po.ptr + bh * p.chunks * D;
  const float inf = __int_as_float(0x7f800000);
  float mm = -inf;
  for (long long c = 0; c < p.chunks; c++) mm = fmaxf(mm, pm[2 * c]);
  for (int c = threadIdx.x; c < D; c += blockDim.x) {
    float oo = 0, ll = 0;
    if (mm != -inf)
      for (long long x = 0; x < p.chunks; x++) {
        const float a = exp2_ftz(pm[2 * x] - mm);
        oo += po[x * D + c] * a;
        ll += pm[2 * x + 1] * a;
      }
    const float r = ll == 0 ? 0.f : oo / ll;
    store<float>(p.out, b * p.out.stride[0] + h * p.out.stride[1] + c, r);
    if (c == 0) store<float>(p.lse, b * p.lse.stride[0] + h * p.lse.stride[1], ll == 0 ? inf : (mm + log2f(ll)) * 0.6931471805599453f);
  }
}

#define SDPA_DECODE(SUFFIX, E, D)                                                                                           \
  extern "C" __global__ void __launch_bounds__(DNT) sdpa_decode_##SUFFIX##_g1(const DecodeArgs p) { decode_chunk<E, D, 1>(p); } \
  extern "C" __global__ void __launch_bounds__(DNT) sdpa_decode_##SUFFIX##_g2(const DecodeArgs p) { decode_chunk<E, D, 2>(p); } \
  extern "C" __global__ void __launch_bounds__(DNT) sdpa_decode_##SUFFIX##_g4(const DecodeArgs p) { decode_chunk<E, D, 4>(p); } \
  extern "C" __global__ void __launch_bounds__(DNT) sdpa_decode_##SUFFIX##_g8(const DecodeArgs p) { decode_chunk<E, D, 8>(p); } \
  extern "C" __global__ void __launch_bounds__(DNT) sdpa_decode_combine_##SUFFIX(const DecodeArgs p) { decode_combine<E, D>(p); }

SDPA_DECODE(bf16_d64, __nv_bfloat16, 64)
SDPA_DECODE(bf16_d128, __nv_bfloat16, 128)
SDPA_DECODE(f16_d64, __half, 64)
SDPA_DECODE(f16_d128, __half, 128)
