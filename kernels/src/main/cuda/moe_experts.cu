// moe_experts.cu: the CUDA side of dev.jomni.tensor.ops.MoeExperts (a sparse MoE's experts over stacked weights).
//   Shapes: N tokens, K choices, S = N·K slots (slot s = t·K + k), E experts, H hidden, I intermediate, M routed
//   slots (ids ≠ −1; known on the device only: the host never learns the per-expert counts).
//   Routing (int32 scratch, no host sync):
//     moe_hist   (RouteArgs; grid C = ceil(S/256), block 256): counts[c, e] = slots of chunk c routed to e
//                (integer shared-memory atomics: exact). An id outside [−1, E) is recorded in the device's
//                IndexError (raised at the next host sync, CudaDevice.await) and treated as −1.
//     moe_scan   (RouteArgs; grid 1, block 512, E ≤ 512): offsets[e] = Σ_{e'<e} count[e'] (offsets[E] = M),
//                tiles[e] = Σ_{e'<e} ceil(count[e'] / 64) (the SIMT row GEMMs' tile schedule), tilesTc[e] likewise
//                with 128 (the tensor-core row GEMM's), tiles16[e] with 16 (moe_gemm_rows_mma16's), and counts[c, e]
//                becomes where chunk c's first slot of expert e goes.
//     moe_scatter(RouteArgs; grid C, block 256): stable counting-sort scatter: sorted[p] = s, pos[s] = p (−1: none),
//                slots of one expert in increasing s (warp __match_any_sync ranks + per-warp counts), so every
//                later sum has a fixed order: results do not depend on scheduling.
//   Row GEMM, grouped by expert (moe_gemm_rows / _f64 / _bf16_tc / _mma / _decode; GemmArgs; grid (tiles bound,
//   ceil(n / tile)) or, for _mma and _decode, that many blocks in one dimension; block 256):
//     C[p, n] = α·Σ_q A(p, q)·B_e(q, n) for the rows p of each expert e, A(p, q) = a[row(p)·lda + q] with
//     row(p) = sorted[p] / K (gathered tokens) or p; B_e = b + e·strideB, B_e(q, n) = b_e[n·ldb + q] (transB, the
//     "x·Wᵀ" of a Linear) or b_e[q·ldb + n]. SIMT: 64×64×16 shared-memory tiles, 4×4 per thread, f32 (f64)
//     accumulation. _bf16_tc (bf16 A and B): 128×128 tiles, k steps of 32 double-buffered with cp.async, wmma
//     16×16×16 with f32 accumulation, 16-byte copies where rows are 16-byte aligned (element loads otherwise).
//     _mma (the default for bf16): the same tiles and loads, 4 cp.async stages, mma.sync m16n8k16 fed by ldmatrix.
//     _decode (≤ 512 slots, x·Wᵀ only): weight rows streamed once with 16-byte loads, f32 FMA (see its comment).
//     B may be NF4 (GemmArgs.nf4Packed ≠ 0) in _bf16_tc, _mma and _decode: codes decoded to bf16 on the way in.
//     A block finds its expert from the schedule GemmArgs.tiles points at (binary search); blocks past its E-th
//     entry exit, so the grid is the bound ceil(S/tile) + min(E, S) and needs no count from the host. Epilogues
//     (through a shared-memory stage; the wmma kernel's in two halves of 64 rows; 8 columns a thread without LoRA):
//       MODE_STORE:  c = α·acc (+ c when accumulate), then + LoRA (below); stored in c's dtype.
//       MODE_SWIGLU: the tile's columns are gate rows j and (the second half) the up rows I + j of b_e; gate and up are
//                    rounded to x's dtype (+ LoRA), optionally stored to gu [M, 2I], and
//                    h = round(round(silu(gate))·up) is stored to c [M, I]: CpuMoeExperts' rounding points.
//       LoRA (lora.ptr ≠ 0): v = round(round(v) + round(s·round(Σ_q lt[p, q]·lb_e[col, q]))), lb_e = lb + e·lbStride
//                    ([out, r] row-major): Linear + LoRA as the composition rounded it.
//   Weight-gradient GEMM (moe_gemm_wgrad / _f64; WgradArgs; grid (ceil(Nd/64), ceil(Md/64), E), block 256;
//   moe_gemm_wgrad_bf16_tc: grid (ceil(Md/128)·ceil(Nd/128), E), wmma, cp.async as the row GEMM; moe_gemm_wgrad_mma,
//   the default for bf16: that many blocks in one dimension, 4 stages, mma.sync):
//     C_e[m, n] = α·Σ_{p of e} scale(p)·A(p, m)·B(p, n) over expert e's rows in increasing p (experts without
//     rows write zeros), A(p, m) = a[rowA(p)·lda + m], scale(p) = weights[sorted[p]] or 1, B likewise. Each
//     output tile belongs to one block looping over its expert's rows: no atomics, the same bits every run.
//   moe_combine / _f64 (CombineArgs; grid N, block 256): out[t, j] = Σ over t's routed slots in (expert, k)
//     order — the reference's order — of round(round(y[pos, j])·w) accumulated in x's dtype (forward), or the
//     plain f32 (f64) sum of rows[pos, j] (backward's dx).
//   moe_swiglu_bwd / _f64 (SwigluBwdArgs; grid-stride over S·I): dgu[p, j] = w·g·up·silu'(gate),
//     dgu[p, I + j] = w·g·round(silu(gate)) for p < M (read from offsets[E]).
//   moe_dweights / _f64 (DwArgs; a warp per slot, 8 per block): dw[s] = Σ_j g[pos, j]·h[pos, j] (fixed shuffle
//     tree), 0 for a slot routed to no expert.
// Launcher: dev.jomni.cuda.CudaMoeExperts. Reference: dev.jomni.tensor.cpu.CpuMoeExperts.
#include <mma.h>
#include <type_traits>
#include "mma.cuh"
#include "tensor.cuh"

constexpr int THREADS = 256;
constexpr int BM = 64, BN = 64, BK = 16;        // SIMT GEMM tile: 256 threads × 4×4 outputs
constexpr int TBM = 128, TBN = 128, TBK = 32;   // tensor-core tiles: 8 warps of 64×32 outputs, k steps of 32
constexpr int MAX_EXPERTS = 512;
constexpr int MODE_SWIGLU = 1;                  // GemmArgs.mode; 0 is MODE_STORE

/** A contiguous buffer: device address (offset included) and DType code. */
struct Buf {
  long long ptr, dtype;
};

template <typename T>
__device__ __forceinline__ T ld(const Buf& b, long long i) {
  const char* p = (const char*)b.ptr;
  switch ((int)b.dtype) {
    case DT_F64: return (T)((const double*)p)[i];
    case DT_F32: return (T)((const float*)p)[i];
    case DT_BF16: return (T)__bfloat162float(((const __nv_bfloat16*)p)[i]);
    default: return (T)__half2float(((const __half*)p)[i]);
  }
}

template <typename T>
__device__ __forceinline__ void st(const Buf& b, long long i, T v) {
  char* p = (char*)b.ptr;
  switch ((int)b.dtype) {
    case DT_F64: ((double*)p)[i] = (double)v; break;
    case DT_F32: ((float*)p)[i] = (float)v; break;
    case DT_BF16: ((__nv_bfloat16*)p)[i] = __float2bfloat16_rn((float)v); break;
    default: ((__half*)p)[i] = __float2half_rn((float)v); break;
  }
}

/** v rounded to a storage dtype and back (what storing then loading would give). */
template <typename T>
__device__ __forceinline__ T round_to(long long dtype, T v) {
  switch ((int)dtype) {
    case DT_BF16: return (T)__bfloat162float(__float2bfloat16_rn((float)v));
    case DT_F16: return (T)__half2float(__float2half_rn((float)v));
    case DT_F32: return (T)(float)v;
    default: return v;
  }
}

template <typename T>
__device__ __forceinline__ T sigmoid(T x) { return (T)1 / ((T)1 + exp(-x)); }

using bf16 = __nv_bfloat16;

/** 8 consecutive elements of a bf16 or f32 buffer (16-byte aligned) as floats. */
__device__ __forceinline__ void load8f(const Buf& b, long long i, float (&v)[8]) {
  if (b.dtype == DT_BF16) {
    const uint4 u = *(const uint4*)((const bf16*)b.ptr + i);
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int q = 0; q < 4; q++) {
      const float2 f = __bfloat1622float2(*(const __nv_bfloat162*)&w[q]);
      v[2 * q] = f.x;
      v[2 * q + 1] = f.y;
    }
  } else {
    const float4 a = *(const float4*)((const float*)b.ptr + i), c = *(const float4*)((const float*)b.ptr + i + 4);
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = c.x; v[5] = c.y; v[6] = c.z; v[7] = c.w;
  }
}

/** 8 floats to a bf16 (rounded to nearest even) or f32 buffer (16-byte aligned). */
__device__ __forceinline__ void store8f(const Buf& b, long long i, const float (&v)[8]) {
  if (b.dtype == DT_BF16) {
    *(uint4*)((bf16*)b.ptr + i) = make_uint4(pack2<bf16>(v[0], v[1]), pack2<bf16>(v[2], v[3]), pack2<bf16>(v[4], v[5]), pack2<bf16>(v[6], v[7]));
  } else {
    *(float4*)((float*)b.ptr + i) = make_float4(v[0], v[1], v[2], v[3]);
    *(float4*)((float*)b.ptr + i + 4) = make_float4(v[4], v[5], v[6], v[7]);
  }
}


// ------------------------------------------------------------------------------------------ routing

struct IndexError {
  int flag, op;
  long long position, value, bound;
};

struct RouteArgs {        // 112 bytes
  long long slots, experts, chunks;
  Buf ids;                // [S] I64 or I32
  long long counts, offsets, tiles, sorted, pos;   // int*: [C, E], [E + 1], [E + 1], [S], [S]
  long long error, op;    // IndexError*, the op's number
  long long tilesTc;      // int* [E + 1]: the tile schedule of the tensor-core row GEMM's TBM-row tiles
  long long tiles16;      // int* [E + 1]: the schedule of 16-row tiles (moe_gemm_rows_mma16)
};
static_assert(sizeof(RouteArgs) == 112, "RouteArgs layout (CudaMoeExperts writes it)");

/** Slot s's expert, −1 for none; an id outside [−1, E) is recorded (first one wins) and treated as none. */
__device__ __forceinline__ int expert_of(const RouteArgs& p, long long s, bool record) {
  long long v = p.ids.dtype == DT_I32 ? (long long)((const int*)p.ids.ptr)[s] : ((const long long*)p.ids.ptr)[s];
  if (v >= -1 && v < p.experts) return (int)v;
  if (record) {
    IndexError* err = (IndexError*)p.error;
    if (atomicCAS(&err->flag, 0, 1) == 0) {
      err->op = (int)p.op;
      err->position = s;
      err->value = v;
      err->bound = p.experts;
    }
  }
  return -1;
}

extern "C" __global__ void __launch_bounds__(THREADS) moe_hist(const RouteArgs p) {
  __shared__ int cnt[MAX_EXPERTS];
  const int E = (int)p.experts;
  for (int e = threadIdx.x; e < E; e += THREADS) cnt[e] = 0;
  __syncthreads();
  const long long s = (long long)blockIdx.x * THREADS + threadIdx.x;
  if (s < p.slots) {
    int e = expert_of(p, s, true);
    if (e >= 0) atomicAdd(&cnt[e], 1);           // integer: exact in any order
  }
  __syncthreads();
  int* counts = (int*)p.counts + (long long)blockIdx.x * E;
  for (int e = threadIdx.x; e < E; e += THREADS) counts[e] = cnt[e];
}

extern "C" __global__ void __launch_bounds__(MAX_EXPERTS) moe_scan(const RouteArgs p) {
  __shared__ int rows[MAX_EXPERTS], tiles[MAX_EXPERTS], tilesTc[MAX_EXPERTS], tiles16[MAX_EXPERTS];
  const int E = (int)p.experts, e = threadIdx.x;
  int* counts = (int*)p.counts;
  constexpr int BATCH = 8;                            // loads in flight per thread: the chunk loops are latency bound
  int total = 0;
  if (e < E)
    for (long long c0 = 0; c0 < p.chunks; c0 += BATCH) {
      int v[BATCH];
#pragma unroll
      for (int q = 0; q < BATCH; q++) v[q] = c0 + q < p.chunks ? counts[(c0 + q) * E + e] : 0;
#pragma unroll
      for (int q = 0; q < BATCH; q++) total += v[q];
    }
  rows[e] = e < E ? total : 0;
  tiles[e] = e < E ? (total + BM - 1) / BM : 0;
  tilesTc[e] = e < E ? (total + TBM - 1) / TBM : 0;
  tiles16[e] = e < E ? (total + 15) / 16 : 0;
  __syncthreads();
  for (int d = 1; d < MAX_EXPERTS; d <<= 1) {        // inclusive Hillis-Steele scan (integers: exact)
    int r = e >= d ? rows[e - d] : 0, t = e >= d ? tiles[e - d] : 0, u = e >= d ? tilesTc[e - d] : 0,
        v = e >= d ? tiles16[e - d] : 0;
    __syncthreads();
    rows[e] += r;
    tiles[e] += t;
    tilesTc[e] += u;
    tiles16[e] += v;
    __syncthreads();
  }
  if (e < E) {
    const int start = rows[e] - total;
    ((int*)p.offsets)[e] = start;
    ((int*)p.tiles)[e] = tiles[e] - (total + BM - 1) / BM;
    ((int*)p.tilesTc)[e] = tilesTc[e] - (total + TBM - 1) / TBM;
    ((int*)p.tiles16)[e] = tiles16[e] - (total + 15) / 16;
    int at = start;                                  // where chunk c's first slot of expert e goes
    for (long long c0 = 0; c0 < p.chunks; c0 += BATCH) {
      int v[BATCH];
#pragma unroll
      for (int q = 0; q < BATCH; q++) v[q] = c0 + q < p.chunks ? counts[(c0 + q) * E + e] : 0;
#pragma unroll
      for (int q = 0; q < BATCH; q++)
        if (c0 + q < p.chunks) {
          counts[(c0 + q) * E + e] = at;
          at += v[q];
        }
    }
    if (e == E - 1) {
      ((int*)p.offsets)[E] = rows[e];
      ((int*)p.tiles)[E] = tiles[e];
      ((int*)p.tilesTc)[E] = tilesTc[e];
      ((int*)p.tiles16)[E] = tiles16[e];
    }
  }
}

extern "C" __global__ void __launch_bounds__(THREADS) moe_scatter(const RouteArgs p) {
  constexpr int WARPS = THREADS / 32;
  __shared__ int warpCount[WARPS][MAX_EXPERTS];
  const int E = (int)p.experts, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int i = threadIdx.x; i < WARPS * E; i += THREADS) warpCount[i / E][i % E] = 0;
  __syncthreads();
  const long long s = (long long)blockIdx.x * THREADS + threadIdx.x;
  const int e = s < p.slots ? expert_of(p, s, false) : -1;
  const unsigned same = __match_any_sync(0xffffffffu, e);
  const int rank = __popc(same & ((1u << lane) - 1));     // earlier lanes (slots) of this warp with expert e
  if (e >= 0 && lane == __ffs(same) - 1) warpCount[warp][e] = __popc(same);
  __syncthreads();
  if (s >= p.slots) return;
  if (e < 0) {
    ((int*)p.pos)[s] = -1;
    return;
  }
  int at = ((const int*)p.counts)[(long long)blockIdx.x * E + e] + rank;
  for (int w = 0; w < warp; w++) at += warpCount[w][e];
  ((int*)p.sorted)[at] = (int)s;
  ((int*)p.pos)[s] = at;
}

// ------------------------------------------------------------------------------------------ row GEMM

struct GemmArgs {         // 264 bytes
  long long n, kdim, experts, topk;
  long long offsets, tiles, sorted;      // int*
  Buf a;
  long long lda, gatherA;
  Buf b;
  long long ldb, strideB, transB;
  Buf c;
  long long ldc, accumulate, mode, inter, xdtype;
  double alpha;
  Buf gu;                                // SWIGLU: where the rounded gate ‖ up go ([M, 2I]; ptr 0: nowhere)
  Buf lt;                                // LoRA's x·Aᵀ [M, r] (ptr 0: no LoRA)
  Buf lb;                                // LoRA's B, [E, out, r]
  long long rank, lbStride;
  double lscale;
  long long nf4Packed;                   // NF4 B (tensor-core kernel only; 0: B is the bf16 b above): u8 codes,
  long long nf4Absmax, nf4Nested, nf4Code;   // u8 absmax codes, f32 nested absmax, f32 [256] map
  double nf4Offset;                      // of the flat weight b_e is rows e·strideB / ldb.. of (ldb = its columns)
};
static_assert(sizeof(GemmArgs) == 304, "GemmArgs layout (CudaMoeExperts writes it)");

/** The expert whose tile range holds tile ti: the last e with tiles[e] ≤ ti (empty experts have equal bounds). */
__device__ __forceinline__ int expert_of_tile(const int* tiles, int experts, int ti) {
  int lo = 0, hi = experts;            // tiles[lo] ≤ ti < tiles[hi]
  while (hi - lo > 1) {
    int mid = (lo + hi) >> 1;
    if (tiles[mid] <= ti) lo = mid; else hi = mid;
  }
  return lo;
}

template <typename T>
__device__ __forceinline__ T lora_term(const GemmArgs& g, int e, long long p, long long col) {
  T u = 0;
  const long long lb0 = (long long)e * g.lbStride + col * g.rank, lt0 = p * g.rank;
  for (long long q = 0; q < g.rank; q++) u += ld<T>(g.lt, lt0 + q) * ld<T>(g.lb, lb0 + q);
  return round_to<T>(g.xdtype, (T)g.lscale * round_to<T>(g.xdtype, u));
}

/** A row-GEMM block's place: its expert, first row and row count, first output column. */
struct RowTile {
  int e, rows;
  long long row0, n0;
};

/** The TM×TN tile of block (blockIdx.x, blockIdx.y), or e = −1 past the last expert's tiles. g.tiles is the
 *  schedule of TM-row tiles (RouteArgs.tiles for the SIMT kernel's BM, tilesTc for TBM). */
template <int TM, int TN>
__device__ __forceinline__ RowTile row_tile(const GemmArgs& g, int ti = blockIdx.x, int cj = blockIdx.y) {
  const int* tiles = (const int*)g.tiles;
  const int* offsets = (const int*)g.offsets;
  const int E = (int)g.experts;
  RowTile t;
  t.n0 = (long long)cj * (g.mode == MODE_SWIGLU ? TN / 2 : TN);   // in output columns (I for SWIGLU)
  if (ti >= tiles[E]) {                               // the same for every thread: the whole block exits
    t.e = -1;
    return t;
  }
  __shared__ int schedule[MAX_EXPERTS + 1];          // one coalesced read, then the search in shared memory
  for (int i = threadIdx.x; i <= E; i += blockDim.x) schedule[i] = tiles[i];
  __syncthreads();
  t.e = expert_of_tile(schedule, E, ti);
  t.row0 = offsets[t.e] + (long long)(ti - tiles[t.e]) * TM;
  t.rows = (int)min((long long)TM, (long long)offsets[t.e + 1] - t.row0);
  return t;
}

/** The real column of b_e behind virtual column c of a TN-wide tile (SWIGLU: TN/2 gate columns, then their
 *  TN/2 up columns); −1: none. */
template <int TN = BN>
__device__ __forceinline__ long long b_column(const GemmArgs& g, long long n0, int c) {
  if (g.mode == MODE_SWIGLU) {
    long long j = n0 + (c % (TN / 2));
    return j < g.inter ? (c < TN / 2 ? j : g.inter + j) : -1;
  }
  return n0 + c < g.n ? n0 + c : -1;
}

/** The epilogue: SM rows (tile rows mBase ..) of a TN-wide tile's accumulators staged in Cs[m·ldcs + c]
 *  (shared), written as GemmArgs.mode says. */
/** Whether the epilogue can go 8 columns at a time: no LoRA, c (and gu) bf16 or f32, 16-byte aligned rows. */
__device__ __forceinline__ bool epilogue_vec(const GemmArgs& g) {
  auto ok = [](const Buf& b) { return (b.dtype == DT_BF16 || b.dtype == DT_F32) && (b.ptr & 15) == 0; };
  if (g.lt.ptr != 0 || !ok(g.c) || g.ldc % 8 != 0) return false;
  return g.mode == MODE_SWIGLU ? g.inter % 8 == 0 && (g.gu.ptr == 0 || ok(g.gu)) : g.n % 8 == 0;
}

/** rows_epilogue without LoRA, 8 columns a thread (the same values: rounding at the same points). */
template <int SM, int TN>
__device__ __forceinline__ void rows_epilogue_vec(const GemmArgs& g, const RowTile& t, const float* Cs, int ldcs, int mBase) {
  const long long xdt = g.xdtype;
  if (g.mode == MODE_SWIGLU) {
    for (int idx = threadIdx.x; idx < SM * (TN / 16); idx += THREADS) {
      const int m = idx / (TN / 16), c = (idx % (TN / 16)) * 8;
      const long long j = t.n0 + c, p = t.row0 + mBase + m;
      if (mBase + m >= t.rows || j >= g.inter) continue;           // inter % 8 == 0: all 8 or none
      float gate[8], up[8], h[8];
#pragma unroll
      for (int q = 0; q < 8; q++) {
        gate[q] = round_to<float>(xdt, Cs[m * ldcs + c + q]);
        up[q] = round_to<float>(xdt, Cs[m * ldcs + c + q + TN / 2]);
        h[q] = round_to<float>(xdt, round_to<float>(xdt, gate[q] * sigmoid(gate[q])) * up[q]);
      }
      if (g.gu.ptr != 0) {
        store8f(g.gu, p * 2 * g.inter + j, gate);
        store8f(g.gu, p * 2 * g.inter + g.inter + j, up);
      }
      store8f(g.c, p * g.ldc + j, h);
    }
  } else {
    const float alpha = (float)g.alpha;
    for (int idx = threadIdx.x; idx < SM * (TN / 8); idx += THREADS) {
      const int m = idx / (TN / 8), c = (idx % (TN / 8)) * 8;
      const long long col = t.n0 + c, p = t.row0 + mBase + m;
      if (mBase + m >= t.rows || col >= g.n) continue;             // n % 8 == 0
      float v[8], o[8];
#pragma unroll
      for (int q = 0; q < 8; q++) v[q] = alpha * Cs[m * ldcs + c + q];
      if (g.accumulate) {
        load8f(g.c, p * g.ldc + col, o);
#pragma unroll
        for (int q = 0; q < 8; q++) v[q] += o[q];
      }
      store8f(g.c, p * g.ldc + col, v);
    }
  }
}

/** VEC: try rows_epilogue_vec (false where it would make the caller spill: the wmma kernel, its fragments live). */
template <typename T, int SM = BM, int TN = BN, bool VEC = true>
__device__ __forceinline__ void rows_epilogue(const GemmArgs& g, const RowTile& t, const T* Cs, int ldcs, int mBase = 0) {
  if constexpr (VEC && std::is_same<T, float>::value) {
    if (epilogue_vec(g)) {
      rows_epilogue_vec<SM, TN>(g, t, Cs, ldcs, mBase);
      return;
    }
  }
  const bool lora = g.lt.ptr != 0;
  if (g.mode == MODE_SWIGLU) {
    for (int idx = threadIdx.x; idx < SM * (TN / 2); idx += THREADS) {
      int m = idx / (TN / 2), c = idx % (TN / 2);
      long long j = t.n0 + c, p = t.row0 + mBase + m;
      if (mBase + m >= t.rows || j >= g.inter) continue;
      T gate = round_to<T>(g.xdtype, Cs[m * ldcs + c]), up = round_to<T>(g.xdtype, Cs[m * ldcs + c + TN / 2]);
      if (lora) {
        gate = round_to<T>(g.xdtype, gate + lora_term<T>(g, t.e, p, j));
        up = round_to<T>(g.xdtype, up + lora_term<T>(g, t.e, p, g.inter + j));
      }
      if (g.gu.ptr != 0) {
        st<T>(g.gu, p * 2 * g.inter + j, gate);
        st<T>(g.gu, p * 2 * g.inter + g.inter + j, up);
      }
      T act = round_to<T>(g.xdtype, gate * sigmoid(gate));
      st<T>(g.c, p * g.ldc + j, round_to<T>(g.xdtype, act * up));
    }
  } else {
    for (int idx = threadIdx.x; idx < SM * TN; idx += THREADS) {
      int m = idx / TN, c = idx % TN;
      long long col = t.n0 + c, p = t.row0 + mBase + m;
      if (mBase + m >= t.rows || col >= g.n) continue;
      T v = (T)g.alpha * Cs[m * ldcs + c];
      if (g.accumulate) v += ld<T>(g.c, p * g.ldc + col);
      if (lora) v = round_to<T>(g.xdtype, round_to<T>(g.xdtype, v) + lora_term<T>(g, t.e, p, col));
      st<T>(g.c, p * g.ldc + col, v);
    }
  }
}

/** This thread's 4 rows of A (load i: idx = tid + 256·i, m = idx / BK): element offsets of row(p)·lda, −1 past the rows. */
__device__ __forceinline__ void a_rows(const GemmArgs& g, const RowTile& t, long long arow[4]) {
  const int* sorted = (const int*)g.sorted;
  for (int i = 0; i < 4; i++) {
    int m = (threadIdx.x + THREADS * i) / BK;
    long long p = t.row0 + m;
    arow[i] = m < t.rows ? (g.gatherA ? (long long)(sorted[p] / g.topk) : p) * g.lda : -1;
  }
}

/** This thread's 4 columns of B (load i: transB c = idx / BK, else c = idx % BN), −1 past the columns. */
__device__ __forceinline__ void b_cols(const GemmArgs& g, const RowTile& t, long long bcol[4]) {
  for (int i = 0; i < 4; i++) {
    int idx = threadIdx.x + THREADS * i;
    bcol[i] = b_column(g, t.n0, g.transB ? idx / BK : idx % BN);
  }
}

// SIMT: 64×64×16 tiles in the compute type, each thread 4×4 outputs (rows ty + 16i, columns tx + 16j).
template <typename T>
__device__ __forceinline__ void gemm_rows(const GemmArgs& g) {
  constexpr int STAGE = (2 * BK * BM > BM * (BN + 1)) ? 2 * BK * BM : BM * (BN + 1);
  __shared__ __align__(16) T smem[STAGE];
  T (*As)[BM] = (T(*)[BM])smem;                     // [BK][BM]: A's tile, k-major
  T (*Bs)[BN] = (T(*)[BN])(smem + BK * BM);         // [BK][BN]
  const RowTile t = row_tile<BM, BN>(g);
  if (t.e < 0) return;                               // past the last expert's tiles: the whole block exits
  const long long bBase = (long long)t.e * g.strideB;
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  long long arow[4], bcol[4];
  a_rows(g, t, arow);
  b_cols(g, t, bcol);

  T acc[4][4];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) acc[i][j] = 0;
  for (long long k0 = 0; k0 < g.kdim; k0 += BK) {
    for (int i = 0; i < 4; i++) {
      int idx = tid + THREADS * i, m = idx / BK, kk = idx % BK;
      long long q = k0 + kk;
      As[kk][m] = arow[i] >= 0 && q < g.kdim ? ld<T>(g.a, arow[i] + q) : (T)0;
    }
    for (int i = 0; i < 4; i++) {
      int idx = tid + THREADS * i;
      if (g.transB) {                                // b_e[col·ldb + q]: consecutive threads walk q
        int c = idx / BK, kk = idx % BK;
        long long q = k0 + kk;
        Bs[kk][c] = bcol[i] >= 0 && q < g.kdim ? ld<T>(g.b, bBase + bcol[i] * g.ldb + q) : (T)0;
      } else {                                       // b_e[q·ldb + col]: consecutive threads walk col
        int kk = idx / BN, c = idx % BN;
        long long q = k0 + kk;
        Bs[kk][c] = bcol[i] >= 0 && q < g.kdim ? ld<T>(g.b, bBase + q * g.ldb + bcol[i]) : (T)0;
      }
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; kk++) {
      T av[4], bv[4];
      for (int i = 0; i < 4; i++) av[i] = As[kk][ty + 16 * i];
      for (int j = 0; j < 4; j++) bv[j] = Bs[kk][tx + 16 * j];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
  T* Cs = smem;                                      // [BM][BN + 1], over the operand tiles (all reads done)
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) Cs[(ty + 16 * i) * (BN + 1) + tx + 16 * j] = acc[i][j];
  __syncthreads();
  rows_epilogue<T>(g, t, Cs, BN + 1);
}

// ------------------------------------------------------------------------------------------ tensor cores

// Operand tiles padded by 8 bf16 (16 bytes: wmma's ldm a multiple of 8, rows 16-byte aligned for cp.async, and
// consecutive rows shifted by 4 banks); f32 staging rows padded by 4.
constexpr int LDK = TBK + 8;                     // 40: [m][k] and [n][k] tiles
constexpr int LDN = TBN + 8;                     // 136: [k][n] and [k][m] tiles
constexpr int LDCS = TBN + 4;                    // 132: f32 staging, half a tile (TBM / 2 rows) at a time
constexpr int STAGE_BYTES = (TBM / 2) * LDCS * 4;
static_assert(TBM == 128 && TBN == 128 && THREADS == 256, "8 warps as 2 × 4 of 64×32 outputs; 2 16-byte chunks per thread per tile");


/** 8 elements into dst: one cp.async when vec (all 8 in range or none), else element by element (ok(j): in range). */
template <typename Ok, typename Src>
__device__ __forceinline__ void load8(bf16* dst, bool vec, bool valid, const bf16* src, const bf16* base, Ok ok, Src at) {
  if (vec) {
    cp_async16(dst, valid ? src : base, valid ? 16 : 0);   // src-size 0 writes zeros
  } else {
    const bf16 zero = __float2bfloat16_rn(0.f);
#pragma unroll
    for (int j = 0; j < 8; j++) dst[j] = ok(j) ? base[at(j)] : zero;
  }
}

/** The warp's 4×2 accumulator fragments (rows 64·wm + 16i, columns 32·wn + 16j) through shared memory into the
 *  epilogue, half the tile (64 rows) at a time: the whole f32 tile would need 66 KiB (static limit 48). */
template <typename Acc, typename Epi>
__device__ __forceinline__ void tc_epilogue(Acc (&acc)[4][2], float* Cs, int wm, int wn, Epi epi) {
  using namespace nvcuda;
  for (int half = 0; half < 2; half++) {
    if (wm == half)
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++) wmma::store_matrix_sync(Cs + 16 * i * LDCS + 32 * wn + 16 * j, acc[i][j], LDCS, wmma::mem_row_major);
    __syncthreads();
    epi(half * (TBM / 2));
    __syncthreads();
  }
}

// NF4 expert weights (GemmArgs.nf4Packed ≠ 0), Nf4Weight's layout: codes two a byte, element 2j in the HIGH
// nibble; block b = 64 consecutive elements of the flat weight scaled by absmax[b] = f32(f32(map[qabs[b]] ·
// nested[b / 256]) + offset); w = bf16(f32(NF4[q] · absmax)), no FMA contraction: the bits of CpuNf4's dequantize,
// so the GEMMs see exactly the weights the reference dequantizes. A chunk is 8 elements of one row of the flat
// weight (flat index a multiple of 8: one 32-bit word of codes, one block): fetched into registers a step ahead,
// decoded into the bf16 tile after the step's multiply-adds, so the loads' latency hides behind the math.
__constant__ float NF4_LEVELS[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};

/** NF4's levels and the absmax map in shared memory (constant memory would serialize a warp's distinct indices). */
struct Nf4Tables {
  float level[16], map[256];
};

__device__ __forceinline__ void nf4_tables(const GemmArgs& g, Nf4Tables& tb) {
  for (int i = threadIdx.x; i < 256; i += THREADS) tb.map[i] = ((const float*)g.nf4Code)[i];
  if (threadIdx.x < 16) tb.level[threadIdx.x] = NF4_LEVELS[threadIdx.x];
  __syncthreads();
}

/** One chunk's codes and block scale parts, in registers between fetch and decode. */
struct Nf4Chunk {
  uint32_t codes;
  float nested;
  int qabs;
  bool ok;
};

/** The chunk at flat element index at (a multiple of 8), or zeros where !ok. */
__device__ __forceinline__ Nf4Chunk nf4_fetch(const GemmArgs& g, long long at, bool ok) {
  Nf4Chunk c;
  c.ok = ok;
  c.codes = 0;
  c.nested = 0.f;
  c.qabs = 0;
  if (ok) {
    const long long b = at >> 6;
    c.codes = __ldg((const uint32_t*)((const uint8_t*)g.nf4Packed + (at >> 1)));
    c.qabs = __ldg((const uint8_t*)g.nf4Absmax + b);
    c.nested = __ldg((const float*)g.nf4Nested + (b >> 8));
  }
  return c;
}

/** The chunk's 8 bf16 weights into dst (16 bytes, shared memory). */
__device__ __forceinline__ void nf4_decode(const Nf4Chunk& c, const Nf4Tables& tb, float offset, bf16* dst) {
  uint4 v = make_uint4(0, 0, 0, 0);
  if (c.ok) {
    const float s = __fadd_rn(__fmul_rn(tb.map[c.qabs], c.nested), offset);
    uint32_t w[4];
#pragma unroll
    for (int j = 0; j < 4; j++) {                      // byte j: elements 2j (high nibble) and 2j + 1
      const uint32_t byte = (c.codes >> (8 * j)) & 0xffu;
      w[j] = pack2<bf16>(__fmul_rn(tb.level[byte >> 4], s), __fmul_rn(tb.level[byte & 15u], s));
    }
    v = make_uint4(w[0], w[1], w[2], w[3]);
  }
  *(uint4*)dst = v;
}

// Row GEMM on tensor cores (bf16 A and B, f32 accumulation): 128×128 output tiles, k steps of 32 double-buffered
// with cp.async; warp w holds rows 64·(w / 4), columns 32·(w % 4) as 4×2 wmma 16×16×16 fragments. A tile [m][k];
// B tile [n][k] (TRANS: B(q, n) = b_e[n·ldb + q], wmma col_major) or [k][n] (wmma row_major). Each thread
// copies 2 chunks of 8 per operand per step; operands whose rows are not 16-byte aligned (odd lda, ldb, kdim or
// n) load element by element instead, the same tiles. NF4: B's chunks come from the codes instead (nf4_fetch a step
// ahead, nf4_decode after the step's multiply-adds); the launcher guarantees ldb = the weight's columns, a multiple
// of 64, and n % 8 = 0 when !TRANS.
template <bool TRANS, bool NF4>
__device__ __forceinline__ void gemm_rows_tc_body(const GemmArgs& g, const RowTile& t, unsigned char* smem, const Nf4Tables* tb) {
  using namespace nvcuda;
  constexpr int A_ST = TBM * LDK, B_ST = (TBN * LDK > TBK * LDN) ? TBN * LDK : TBK * LDN;
  bf16* As = (bf16*)smem;                            // [2][A_ST]
  bf16* Bs = As + 2 * A_ST;                          // [2][B_ST]
  const bf16* a = (const bf16*)g.a.ptr;
  const bf16* b = (const bf16*)g.b.ptr + (long long)t.e * g.strideB;
  const long long bFlat = (long long)t.e * g.strideB;   // NF4: expert e's first element of the flat weight
  const int* sorted = (const int*)g.sorted;
  const int tid = threadIdx.x, warp = tid >> 5, wm = warp >> 2, wn = warp & 3;
  const bool vecA = (g.a.ptr & 15) == 0 && g.lda % 8 == 0 && g.kdim % 8 == 0;
  const bool vecB = (g.b.ptr & 15) == 0 && g.strideB % 8 == 0 && g.ldb % 8 == 0 &&
                    (TRANS ? g.kdim % 8 == 0 : (g.n % 8 == 0 && g.mode != MODE_SWIGLU));
  long long arow[2], bcol[2];                        // chunk c = tid + 256·i: A row m = c / 4, columns (c % 4)·8 ..
#pragma unroll
  for (int i = 0; i < 2; i++) {
    const int c = tid + THREADS * i, m = c >> 2;
    const long long p = t.row0 + m;
    arow[i] = m < t.rows ? (g.gatherA ? (long long)(sorted[p] / g.topk) : p) * g.lda : -1;
    bcol[i] = TRANS ? b_column<TBN>(g, t.n0, m) : 0;
  }
  auto load = [&](int stage, long long k0) {
    bf16* as = As + stage * A_ST;
    bf16* bs = Bs + stage * B_ST;
#pragma unroll
    for (int i = 0; i < 2; i++) {
      const int c = tid + THREADS * i;
      {
        const int m = c >> 2, kc = (c & 3) * 8;
        const long long q = k0 + kc, r = arow[i];
        load8(as + m * LDK + kc, vecA, r >= 0 && q < g.kdim, a + r + q, a,
              [&](int j) { return r >= 0 && q + j < g.kdim; }, [&](int j) { return r + q + j; });
      }
      if (NF4) {
        // B's chunks: nf4_fetch / nf4_decode below
      } else if (TRANS) {
        const int n = c >> 2, kc = (c & 3) * 8;
        const long long q = k0 + kc, col = bcol[i];
        load8(bs + n * LDK + kc, vecB, col >= 0 && q < g.kdim, b + col * g.ldb + q, b,
              [&](int j) { return col >= 0 && q + j < g.kdim; }, [&](int j) { return col * g.ldb + q + j; });
      } else {
        const int kk = c >> 4, nc = (c & 15) * 8;
        const long long q = k0 + kk;
        load8(bs + kk * LDN + nc, vecB, q < g.kdim && t.n0 + nc < g.n, b + q * g.ldb + t.n0 + nc, b,
              [&](int j) { return q < g.kdim && b_column<TBN>(g, t.n0, nc + j) >= 0; },
              [&](int j) { return q * g.ldb + b_column<TBN>(g, t.n0, nc + j); });
      }
    }
  };

  // NF4 chunk i of a step at k0: TRANS, row bcol[i] of b_e, k columns k0 + (c % 4)·8 ..; else k row k0 + c / 16,
  // columns n0 + (c % 16)·8 ..; decoded to where load8 would have put it
  auto nf4At = [&](int i, long long k0, long long& at) -> bool {
    const int c = tid + THREADS * i;
    if (TRANS) {
      const long long q = k0 + (c & 3) * 8;
      at = bFlat + bcol[i] * g.ldb + q;
      return bcol[i] >= 0 && q < g.kdim;
    }
    const long long q = k0 + (c >> 4), col = t.n0 + (c & 15) * 8;
    at = bFlat + q * g.ldb + col;
    return q < g.kdim && col < g.n;
  };
  auto nf4Fetch = [&](Nf4Chunk (&ch)[2], long long k0) {
#pragma unroll
    for (int i = 0; i < 2; i++) {
      long long at = 0;
      const bool ok = nf4At(i, k0, at);
      ch[i] = nf4_fetch(g, at, ok);
    }
  };
  auto nf4Put = [&](const Nf4Chunk (&ch)[2], int stage) {
    bf16* bs = Bs + stage * B_ST;
#pragma unroll
    for (int i = 0; i < 2; i++) {
      const int c = tid + THREADS * i;
      nf4_decode(ch[i], *tb, (float)g.nf4Offset, TRANS ? bs + (c >> 2) * LDK + (c & 3) * 8 : bs + (c >> 4) * LDN + (c & 15) * 8);
    }
  };

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4][2];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.f);
  const long long steps = (g.kdim + TBK - 1) / TBK;
  Nf4Chunk next[2];
  if (steps > 0) {
    load(0, 0);
    if (NF4) {
      nf4Fetch(next, 0);
      nf4Put(next, 0);
    }
  }
  cp_async_commit();
  for (long long ks = 0; ks < steps; ks++) {
    if (ks + 1 < steps) {                            // the next step's tiles into the other buffer, in flight
      load((int)((ks + 1) & 1), (ks + 1) * TBK);
      if (NF4) nf4Fetch(next, (ks + 1) * TBK);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const bf16* as = As + (ks & 1) * A_ST;
    const bf16* bs = Bs + (ks & 1) * B_ST;
#pragma unroll
    for (int kk = 0; kk < TBK; kk += 16) {
      using Layout = typename std::conditional<TRANS, wmma::col_major, wmma::row_major>::type;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, Layout> fb[2];
      for (int j = 0; j < 2; j++) {
        const int n = 32 * wn + 16 * j;
        if (TRANS) wmma::load_matrix_sync(fb[j], bs + n * LDK + kk, LDK);
        else wmma::load_matrix_sync(fb[j], bs + kk * LDN + n, LDN);
      }
#pragma unroll
      for (int i = 0; i < 4; i++) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
        wmma::load_matrix_sync(fa, as + (64 * wm + 16 * i) * LDK + kk, LDK);
        for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa, fb[j], acc[i][j]);
      }
    }
    if (NF4 && ks + 1 < steps) nf4Put(next, (int)((ks + 1) & 1));   // that buffer's last reader was step ks − 1
    __syncthreads();                                 // this buffer is refilled two steps on
  }
  float* Cs = (float*)smem;                          // over the operand tiles: all reads done, no copy in flight
  tc_epilogue(acc, Cs, wm, wn, [&](int mBase) { rows_epilogue<float, TBM / 2, TBN, false>(g, t, Cs, LDCS, mBase); });
}

__device__ __forceinline__ void gemm_rows_tc(const GemmArgs& g) {
  constexpr int OPERANDS = 2 * (TBM * LDK + (TBN * LDK > TBK * LDN ? TBN * LDK : TBK * LDN)) * 2;
  constexpr int BYTES = OPERANDS > STAGE_BYTES ? OPERANDS : STAGE_BYTES;
  static_assert(BYTES <= 48 * 1024, "static shared memory");
  __shared__ __align__(128) unsigned char smem[BYTES];
  __shared__ Nf4Tables tb;
  const RowTile t = row_tile<TBM, TBN>(g);
  if (t.e < 0) return;
  if (g.nf4Packed != 0) {
    nf4_tables(g, tb);
    if (g.transB) gemm_rows_tc_body<true, true>(g, t, smem, &tb);
    else gemm_rows_tc_body<false, true>(g, t, smem, &tb);
  } else if (g.transB) {
    gemm_rows_tc_body<true, false>(g, t, smem, nullptr);
  } else {
    gemm_rows_tc_body<false, false>(g, t, smem, nullptr);
  }
}

// Row GEMM on mma.sync (bf16 A and B, f32 accumulation), the default for bf16: the same 128×128 tiles, k steps of
// 32 and loads (cp.async, or NF4 decode) as the wmma kernel above, MSTAGES of them in flight (dynamic shared
// memory, MMA_SMEM bytes), fragments by ldmatrix (.trans for a [k][n] B tile) and mma.sync m16n8k16; warp w
// holds rows 64·(w / 4), columns 32·(w % 4) as 4×4 m16n8 accumulators. The whole f32 tile is staged for the
// epilogue at once. Grid: one dimension, block = row tile · columns + column tile, so the blocks of one row
// tile (its gathered A rows) run together and an expert's row tiles close behind (its weights): both from L2.
constexpr int MSTAGES = 4;
constexpr int M_A_ST = TBM * LDK, M_B_ST = (TBN * LDK > TBK * LDN) ? TBN * LDK : TBK * LDN, M_STAGE = M_A_ST + M_B_ST;
constexpr int MMA_SMEM = MSTAGES * M_STAGE * 2;                        // 81920 bytes
constexpr int LDCF = TBN + 4;                                           // f32 staging rows of the whole tile
static_assert(TBM * LDCF * 4 <= MMA_SMEM, "the f32 tile fits over the operand stages");

template <bool TRANS, bool NF4, int TM>
__device__ __forceinline__ void gemm_rows_mma_body(const GemmArgs& g, const RowTile& t, bf16* smem, const Nf4Tables* tb) {
  static_assert(TM == TBM || TM == 16, "128-row tiles (8 warps of 64×32) or 16-row tiles (8 warps of 16×16)");
  constexpr int A_ST = TM * LDK, STAGE = A_ST + M_B_ST, A_CHUNKS = TM * TBK / 8;   // A: TM rows of 32, 8 a chunk
  const bf16* a = (const bf16*)g.a.ptr;
  const bf16* b = (const bf16*)g.b.ptr + (long long)t.e * g.strideB;
  const long long bFlat = (long long)t.e * g.strideB;
  const int* sorted = (const int*)g.sorted;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wm = warp >> 2, wn = warp & 3;
  const bool vecA = (g.a.ptr & 15) == 0 && g.lda % 8 == 0 && g.kdim % 8 == 0;
  const bool vecB = (g.b.ptr & 15) == 0 && g.strideB % 8 == 0 && g.ldb % 8 == 0 &&
                    (TRANS ? g.kdim % 8 == 0 : (g.n % 8 == 0 && g.mode != MODE_SWIGLU));
  long long arow[2], bcol[2];                        // chunk c = tid + 256·i: A row m = c / 4, columns (c % 4)·8 ..
#pragma unroll
  for (int i = 0; i < 2; i++) {
    const int c = tid + THREADS * i, m = c >> 2;
    const long long p = t.row0 + m;
    arow[i] = c < A_CHUNKS && m < t.rows ? (g.gatherA ? (long long)(sorted[p] / g.topk) : p) * g.lda : -1;
    bcol[i] = TRANS ? b_column<TBN>(g, t.n0, m) : 0;
  }
  auto load = [&](int stage, long long k0) {
    bf16* as = smem + stage * STAGE;
    bf16* bs = as + A_ST;
#pragma unroll
    for (int i = 0; i < 2; i++) {
      const int c = tid + THREADS * i;
      if (c < A_CHUNKS) {
        const int m = c >> 2, kc = (c & 3) * 8;
        const long long q = k0 + kc, r = arow[i];
        load8(as + m * LDK + kc, vecA, r >= 0 && q < g.kdim, a + r + q, a,
              [&](int j) { return r >= 0 && q + j < g.kdim; }, [&](int j) { return r + q + j; });
      }
      if (NF4) {
      } else if (TRANS) {
        const int n = c >> 2, kc = (c & 3) * 8;
        const long long q = k0 + kc, col = bcol[i];
        load8(bs + n * LDK + kc, vecB, col >= 0 && q < g.kdim, b + col * g.ldb + q, b,
              [&](int j) { return col >= 0 && q + j < g.kdim; }, [&](int j) { return col * g.ldb + q + j; });
      } else {
        const int kk = c >> 4, nc = (c & 15) * 8;
        const long long q = k0 + kk;
        load8(bs + kk * LDN + nc, vecB, q < g.kdim && t.n0 + nc < g.n, b + q * g.ldb + t.n0 + nc, b,
              [&](int j) { return q < g.kdim && b_column<TBN>(g, t.n0, nc + j) >= 0; },
              [&](int j) { return q * g.ldb + b_column<TBN>(g, t.n0, nc + j); });
      }
    }
  };
  auto nf4Fetch = [&](Nf4Chunk (&ch)[2], long long k0) {
#pragma unroll
    for (int i = 0; i < 2; i++) {
      const int c = tid + THREADS * i;
      long long at;
      bool ok;
      if (TRANS) {
        const long long q = k0 + (c & 3) * 8;
        at = bFlat + bcol[i] * g.ldb + q;
        ok = bcol[i] >= 0 && q < g.kdim;
      } else {
        const long long q = k0 + (c >> 4), col = t.n0 + (c & 15) * 8;
        at = bFlat + q * g.ldb + col;
        ok = q < g.kdim && col < g.n;
      }
      ch[i] = nf4_fetch(g, at, ok);
    }
  };
  auto nf4Put = [&](const Nf4Chunk (&ch)[2], int stage) {
    bf16* bs = smem + stage * STAGE + A_ST;
#pragma unroll
    for (int i = 0; i < 2; i++) {
      const int c = tid + THREADS * i;
      nf4_decode(ch[i], *tb, (float)g.nf4Offset, TRANS ? bs + (c >> 2) * LDK + (c & 3) * 8 : bs + (c >> 4) * LDN + (c & 15) * 8);
    }
  };

  constexpr int MI = TM == TBM ? 4 : 1, NJ = TM == TBM ? 4 : 2;   // m16 and n8 blocks per warp
  float acc[MI][NJ][4];
#pragma unroll
  for (int i = 0; i < MI; i++)
#pragma unroll
    for (int j = 0; j < NJ; j++)
#pragma unroll
      for (int v = 0; v < 4; v++) acc[i][j][v] = 0.f;
  const int steps = (int)((g.kdim + TBK - 1) / TBK);
  Nf4Chunk next[2];
#pragma unroll
  for (int s = 0; s < MSTAGES - 1; s++) {            // the first MSTAGES − 1 steps in flight
    if (s < steps) {
      load(s, (long long)s * TBK);
      if (NF4) {
        nf4Fetch(next, (long long)s * TBK);
        nf4Put(next, s);
      }
    }
    cp_async_commit();
  }
  for (int ks = 0; ks < steps; ks++) {
    cp_async_wait<MSTAGES - 2>();                    // step ks's group has landed (one group per step, empty ones too)
    __syncthreads();                                 // … for every thread; and step ks − 1's stage is free
    const int nxt = ks + MSTAGES - 1;
    if (nxt < steps) {
      load(nxt % MSTAGES, (long long)nxt * TBK);
      if (NF4) nf4Fetch(next, (long long)nxt * TBK);
    }
    cp_async_commit();
    const bf16* as = smem + (ks % MSTAGES) * STAGE;
    const bf16* bs = as + A_ST;
    const int mw = TM == TBM ? 64 * wm : 0, nw = TM == TBM ? 32 * wn : 16 * warp;   // the warp's first row and column
#pragma unroll
    for (int kk = 0; kk < TBK; kk += 16) {
      uint32_t af[MI][4], bfr[NJ][2];
#pragma unroll
      for (int i = 0; i < MI; i++) ldsm_x4(af[i], as + (mw + 16 * i + (lane & 15)) * LDK + kk + (lane >> 4) * 8);
#pragma unroll
      for (int p = 0; p < NJ / 2; p++) {             // n8 blocks 2p, 2p + 1
        uint32_t r[4];
        if (TRANS) ldsm_x4(r, bs + (nw + 16 * p + (lane & 7) + ((lane >> 4) << 3)) * LDK + kk + ((lane >> 3) & 1) * 8);
        else ldsm_x4_trans(r, bs + (kk + (lane & 7) + ((lane >> 3) & 1) * 8) * LDN + nw + 16 * p + (lane >> 4) * 8);
        bfr[2 * p][0] = r[0];
        bfr[2 * p][1] = r[1];
        bfr[2 * p + 1][0] = r[2];
        bfr[2 * p + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NJ; j++) mma16816<bf16>(acc[i][j], af[i], bfr[j][0], bfr[j][1]);
    }
    if (NF4 && nxt < steps) nf4Put(next, nxt % MSTAGES);   // that stage's last reader was step ks − 1
  }
  cp_async_wait<0>();
  __syncthreads();                                   // all reads of the stages done: the f32 tile goes over them
  float* Cs = (float*)smem;
  const int gr = lane >> 2, tc = (lane & 3) * 2;
  const int mw = TM == TBM ? 64 * wm : 0, nw = TM == TBM ? 32 * wn : 16 * warp;
#pragma unroll
  for (int i = 0; i < MI; i++)
#pragma unroll
    for (int j = 0; j < NJ; j++) {
      const int r = mw + 16 * i + gr, c = nw + 8 * j + tc;
      *(float2*)(Cs + r * LDCF + c) = make_float2(acc[i][j][0], acc[i][j][1]);
      *(float2*)(Cs + (r + 8) * LDCF + c) = make_float2(acc[i][j][2], acc[i][j][3]);
    }
  __syncthreads();
  rows_epilogue<float, TM, TBN>(g, t, Cs, LDCF, 0);
}

/** Grid: (row tiles bound) · columns blocks, columns = the launch's column tiles (GemmArgs has no room left: the
 *  count is recomputed from n, mode and inter as the launcher does). */
extern "C" __global__ void __launch_bounds__(THREADS, 2) moe_gemm_rows_mma(const GemmArgs g) {
  extern __shared__ __align__(128) unsigned char dsmem[];
  __shared__ Nf4Tables tb;
  const int columns = (int)(g.mode == MODE_SWIGLU ? (g.inter + TBN / 2 - 1) / (TBN / 2) : (g.n + TBN - 1) / TBN);
  const RowTile t = row_tile<TBM, TBN>(g, blockIdx.x / columns, blockIdx.x % columns);
  if (t.e < 0) return;
  bf16* smem = (bf16*)dsmem;
  if (g.nf4Packed != 0) {
    nf4_tables(g, tb);
    if (g.transB) gemm_rows_mma_body<true, true, TBM>(g, t, smem, &tb);
    else gemm_rows_mma_body<false, true, TBM>(g, t, smem, &tb);
  } else if (g.transB) {
    gemm_rows_mma_body<true, false, TBM>(g, t, smem, nullptr);
  } else {
    gemm_rows_mma_body<false, false, TBM>(g, t, smem, nullptr);
  }
}

// Decode on tensor cores (moe_gemm_rows_mma16, a variant of the decode kernel below: -Djomni.moe.decode=mma16):
// the mma kernel with 16-row tiles (RouteArgs.tiles16), 8 warps of 16×16 outputs, so an expert with a few rows
// costs one m16 block per column tile while its weights stream through the same 4 cp.async (or NF4) stages.
constexpr int MMA16_SMEM = MSTAGES * (16 * LDK + M_B_ST) * 2;          // 46080 bytes (+ static: opted in)
static_assert(16 * LDCF * 4 <= MMA16_SMEM, "mma16's f32 tile fits over its stages");

extern "C" __global__ void __launch_bounds__(THREADS) moe_gemm_rows_mma16(const GemmArgs g) {
  extern __shared__ __align__(128) unsigned char dsmem[];
  __shared__ Nf4Tables tb;
  const int columns = (int)(g.mode == MODE_SWIGLU ? (g.inter + TBN / 2 - 1) / (TBN / 2) : (g.n + TBN - 1) / TBN);
  const RowTile t = row_tile<16, TBN>(g, blockIdx.x / columns, blockIdx.x % columns);
  if (t.e < 0) return;
  bf16* smem = (bf16*)dsmem;
  if (g.nf4Packed != 0) {
    nf4_tables(g, tb);
    if (g.transB) gemm_rows_mma_body<true, true, 16>(g, t, smem, &tb);
    else gemm_rows_mma_body<false, true, 16>(g, t, smem, &tb);
  } else if (g.transB) {
    gemm_rows_mma_body<true, false, 16>(g, t, smem, nullptr);
  } else {
    gemm_rows_mma_body<false, false, 16>(g, t, smem, nullptr);
  }
}

// Decode (few routed slots): moe_gemm_rows_decode streams each selected expert's weight rows once, bandwidth-bound.
// TRANS B only (x·Wᵀ: a weight row is K contiguous elements), bf16 A with 16-byte rows, bf16 or NF4 B. Grid: one
// dimension of (ceil(S/64) + min(E, S)) · columns blocks (row tile · columns + column slice of DEC_COLS; SWIGLU: DEC_COLS/2
// gate and their up columns), the 64-row tile schedule (RouteArgs.tiles); block 256 = 8 warps × 4 columns. The tile's rows go DEC_ROWS at a time into shared memory
// (dynamic: DEC_ROWS·K bf16); lane l walks k = 8l + 256i of its warp's 4 weight rows (16-byte loads, or one 32-bit
// code word), f32 products and sums (bf16 products are exact in f32, as on tensor cores), reduced over the warp in a
// fixed butterfly; then the row GEMMs' epilogue.
constexpr int DEC_ROWS = 8, DEC_COLS = 32;

/** A chunk's 8 weights as floats: bf16(level · scale), as nf4_decode stores them. */
__device__ __forceinline__ void nf4_decode8(const Nf4Chunk& c, const Nf4Tables& tb, float offset, float (&w)[8]) {
  const float s = __fadd_rn(__fmul_rn(tb.map[c.qabs], c.nested), offset);
#pragma unroll
  for (int j = 0; j < 4; j++) {
    const uint32_t byte = (c.codes >> (8 * j)) & 0xffu;
    w[2 * j] = c.ok ? __bfloat162float(__float2bfloat16_rn(__fmul_rn(tb.level[byte >> 4], s))) : 0.f;
    w[2 * j + 1] = c.ok ? __bfloat162float(__float2bfloat16_rn(__fmul_rn(tb.level[byte & 15u], s))) : 0.f;
  }
}

template <bool NF4>
__device__ __forceinline__ void gemm_rows_decode_body(const GemmArgs& g, const RowTile& t, bf16* xs, float (*Cs)[DEC_COLS + 1],
                                                      const Nf4Tables* tb) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int* sorted = (const int*)g.sorted;
  const bf16* a = (const bf16*)g.a.ptr;
  const bf16* b = (const bf16*)g.b.ptr + (long long)t.e * g.strideB;
  const long long K = g.kdim, bFlat = (long long)t.e * g.strideB, chunks = K / 8;
  long long col[4];
#pragma unroll
  for (int c = 0; c < 4; c++) col[c] = b_column<DEC_COLS>(g, t.n0, 4 * warp + c);
  for (int m0 = 0; m0 < t.rows; m0 += DEC_ROWS) {
    const int nr = min(DEC_ROWS, t.rows - m0);
    __syncthreads();                                 // the last group's xs and Cs are read
    for (long long idx = threadIdx.x; idx < nr * chunks; idx += THREADS) {
      const int r = (int)(idx / chunks);
      const long long k = (idx - r * chunks) * 8, p = t.row0 + m0 + r;
      const long long row = g.gatherA ? (long long)(sorted[p] / g.topk) : p;
      *(uint4*)(xs + r * K + k) = *(const uint4*)(a + row * g.lda + k);
    }
    __syncthreads();
    float acc[DEC_ROWS][4];
#pragma unroll
    for (int r = 0; r < DEC_ROWS; r++)
#pragma unroll
      for (int c = 0; c < 4; c++) acc[r][c] = 0.f;
#pragma unroll 2
    for (long long k = 8 * lane; k < K; k += 256) {
      float w[4][8];
#pragma unroll
      for (int c = 0; c < 4; c++) {
        if (NF4) {
          nf4_decode8(nf4_fetch(g, bFlat + col[c] * g.ldb + k, col[c] >= 0), *tb, (float)g.nf4Offset, w[c]);
        } else {
          const uint4 u = col[c] >= 0 ? __ldg((const uint4*)(b + col[c] * g.ldb + k)) : make_uint4(0, 0, 0, 0);
          const uint32_t q4[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
          for (int q = 0; q < 4; q++) {
            const float2 f = __bfloat1622float2(*(const __nv_bfloat162*)&q4[q]);
            w[c][2 * q] = f.x;
            w[c][2 * q + 1] = f.y;
          }
        }
      }
#pragma unroll
      for (int r = 0; r < DEC_ROWS; r++) {
        if (r >= nr) break;
        const uint4 u = *(const uint4*)(xs + r * K + k);
        const uint32_t q4[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int q = 0; q < 4; q++) {
          const float2 f = __bfloat1622float2(*(const __nv_bfloat162*)&q4[q]);
#pragma unroll
          for (int c = 0; c < 4; c++) acc[r][c] = fmaf(f.x, w[c][2 * q], fmaf(f.y, w[c][2 * q + 1], acc[r][c]));
        }
      }
    }
#pragma unroll
    for (int r = 0; r < DEC_ROWS; r++)
#pragma unroll
      for (int c = 0; c < 4; c++) {
        float v = acc[r][c];
#pragma unroll
        for (int d = 16; d > 0; d >>= 1) v += __shfl_xor_sync(0xffffffffu, v, d);
        if (lane == 0) Cs[r][4 * warp + c] = v;
      }
    __syncthreads();
    rows_epilogue<float, DEC_ROWS, DEC_COLS>(g, t, &Cs[0][0], DEC_COLS + 1, m0);
  }
}

extern "C" __global__ void __launch_bounds__(THREADS) moe_gemm_rows_decode(const GemmArgs g) {
  extern __shared__ __align__(128) unsigned char dsmem[];
  __shared__ float Cs[DEC_ROWS][DEC_COLS + 1];
  __shared__ Nf4Tables tb;
  const int columns = (int)(g.mode == MODE_SWIGLU ? (g.inter + DEC_COLS / 2 - 1) / (DEC_COLS / 2) : (g.n + DEC_COLS - 1) / DEC_COLS);
  const RowTile t = row_tile<BM, DEC_COLS>(g, blockIdx.x / columns, blockIdx.x % columns);
  if (t.e < 0) return;
  if (g.nf4Packed != 0) {
    nf4_tables(g, tb);
    gemm_rows_decode_body<true>(g, t, (bf16*)dsmem, Cs, &tb);
  } else {
    gemm_rows_decode_body<false>(g, t, (bf16*)dsmem, Cs, nullptr);
  }
}

extern "C" __global__ void __launch_bounds__(THREADS, 2) moe_gemm_rows(const GemmArgs g) { gemm_rows<float>(g); }
extern "C" __global__ void __launch_bounds__(THREADS) moe_gemm_rows_f64(const GemmArgs g) { gemm_rows<double>(g); }
extern "C" __global__ void __launch_bounds__(THREADS, 2) moe_gemm_rows_bf16_tc(const GemmArgs g) { gemm_rows_tc(g); }

// ------------------------------------------------------------------------------------------ weight-gradient GEMM

struct WgradArgs {        // 144 bytes
  long long md, nd, topk;
  long long offsets, sorted;             // int*
  Buf a;
  long long lda, gatherA;
  Buf b;
  long long ldb, gatherB;
  Buf scale;                             // routing weights [S] (ptr 0: no scaling)
  Buf c;                                 // [E, md, nd]
  double alpha;
};
static_assert(sizeof(WgradArgs) == 144, "WgradArgs layout (CudaMoeExperts writes it)");

template <typename T>
__device__ __forceinline__ void gemm_wgrad(const WgradArgs& g) {
  __shared__ __align__(16) T As[BK][BM];
  __shared__ __align__(16) T Bs[BK][BN];
  const int* offsets = (const int*)g.offsets;
  const int* sorted = (const int*)g.sorted;
  const int e = blockIdx.z, tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const long long m0 = (long long)blockIdx.y * BM, n0 = (long long)blockIdx.x * BN;
  const long long p0 = offsets[e], p1 = offsets[e + 1];
  T acc[4][4];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) acc[i][j] = 0;
  for (long long k0 = p0; k0 < p1; k0 += BK) {
    for (int i = 0; i < 4; i++) {                     // idx = tid + 256·i: kk = idx / 64 (a row p), m = idx % 64
      int idx = tid + THREADS * i, kk = idx / BM, m = idx % BM;
      long long p = k0 + kk, col = m0 + m;
      T v = 0;
      if (p < p1 && col < g.md) {
        long long s = sorted[p], row = g.gatherA ? s / g.topk : p;
        v = ld<T>(g.a, row * g.lda + col);
        if (g.scale.ptr != 0) v *= ld<T>(g.scale, s);
      }
      As[kk][m] = v;
    }
    for (int i = 0; i < 4; i++) {
      int idx = tid + THREADS * i, kk = idx / BN, c = idx % BN;
      long long p = k0 + kk, col = n0 + c;
      T v = 0;
      if (p < p1 && col < g.nd) {
        long long row = g.gatherB ? (long long)sorted[p] / g.topk : p;
        v = ld<T>(g.b, row * g.ldb + col);
      }
      Bs[kk][c] = v;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; kk++) {
      T av[4], bv[4];
      for (int i = 0; i < 4; i++) av[i] = As[kk][ty + 16 * i];
      for (int j = 0; j < 4; j++) bv[j] = Bs[kk][tx + 16 * j];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
  const long long base = (long long)e * g.md * g.nd;
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) {
      long long m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
      if (m < g.md && n < g.nd) st<T>(g.c, base + m * g.nd + n, (T)g.alpha * acc[i][j]);
    }
}

extern "C" __global__ void __launch_bounds__(THREADS) moe_gemm_wgrad(const WgradArgs g) { gemm_wgrad<float>(g); }
extern "C" __global__ void __launch_bounds__(THREADS) moe_gemm_wgrad_f64(const WgradArgs g) { gemm_wgrad<double>(g); }

// Weight gradient on tensor cores (bf16 A and B, f32 accumulation): grid (tilesM·tilesN, E), block 256; block
// (x, e) owns expert e's 128×128 output tile x (row-major over tiles, so an expert's tiles run together and share
// its rows in L2) and walks the expert's rows p in increasing order, 32 a step, double-buffered with cp.async:
// one block per output element, the same order on every run. A tile [p][m], B tile [p][n] (wmma: A col_major,
// B row_major). Scaled: after a step's A rows land, each is multiplied by its slot's routing weight in shared
// memory and rounded to bf16 (the reference keeps w·dy in f32: a relative 2^-9 per element, inside bf16 bounds).
__device__ __forceinline__ void gemm_wgrad_tc(const WgradArgs& g) {
  using namespace nvcuda;
  constexpr int ST = TBK * LDN;                      // one operand tile: [32][136]
  constexpr int BYTES = 4 * ST * 2 > STAGE_BYTES ? 4 * ST * 2 : STAGE_BYTES;
  static_assert(BYTES <= 48 * 1024, "static shared memory");
  __shared__ __align__(128) unsigned char smem[BYTES];
  __shared__ float scale[2][TBK];
  bf16* As = (bf16*)smem;                            // [2][ST]
  bf16* Bs = As + 2 * ST;                            // [2][ST]
  const int* offsets = (const int*)g.offsets;
  const int* sorted = (const int*)g.sorted;
  const bf16* a = (const bf16*)g.a.ptr;
  const bf16* b = (const bf16*)g.b.ptr;
  const long long tilesN = (g.nd + TBN - 1) / TBN;
  const long long m0 = (long long)(blockIdx.x / tilesN) * TBM, n0 = (long long)(blockIdx.x % tilesN) * TBN;
  const int e = blockIdx.y, tid = threadIdx.x, warp = tid >> 5, wm = warp >> 2, wn = warp & 3;
  const long long p0 = offsets[e], p1 = offsets[e + 1];
  const bool scaled = g.scale.ptr != 0;
  const bool vecA = (g.a.ptr & 15) == 0 && g.lda % 8 == 0 && g.md % 8 == 0;
  const bool vecB = (g.b.ptr & 15) == 0 && g.ldb % 8 == 0 && g.nd % 8 == 0;
  auto load = [&](int stage, long long k0) {
    bf16* as = As + stage * ST;
    bf16* bs = Bs + stage * ST;
#pragma unroll
    for (int i = 0; i < 2; i++) {                    // chunk c: row kk = c / 16, columns (c % 16)·8 ..
      const int c = tid + THREADS * i, kk = c >> 4, ch = (c & 15) * 8;
      const long long p = k0 + kk;
      const bool row = p < p1;
      const long long s = row ? sorted[p] : 0;
      const long long ra = (g.gatherA ? s / g.topk : p) * g.lda + m0 + ch, rb = (g.gatherB ? s / g.topk : p) * g.ldb + n0 + ch;
      load8(as + kk * LDN + ch, vecA, row && m0 + ch < g.md, a + ra, a,
            [&](int j) { return row && m0 + ch + j < g.md; }, [&](int j) { return ra + j; });
      load8(bs + kk * LDN + ch, vecB, row && n0 + ch < g.nd, b + rb, b,
            [&](int j) { return row && n0 + ch + j < g.nd; }, [&](int j) { return rb + j; });
    }
    if (scaled && tid < TBK) {
      const long long p = k0 + tid;
      scale[stage][tid] = p < p1 ? ld<float>(g.scale, sorted[p]) : 0.f;
    }
  };

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4][2];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.f);
  const long long steps = (p1 - p0 + TBK - 1) / TBK;
  if (steps > 0) load(0, p0);
  cp_async_commit();
  for (long long ks = 0; ks < steps; ks++) {
    if (ks + 1 < steps) {
      load((int)((ks + 1) & 1), p0 + (ks + 1) * TBK);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    bf16* as = As + (ks & 1) * ST;
    const bf16* bs = Bs + (ks & 1) * ST;
    if (scaled) {                                    // A rows × their routing weights, 2 columns a thread at a time
      const float* sc = scale[ks & 1];
      for (int idx = tid; idx < TBK * TBM / 2; idx += THREADS) {
        const int kk = idx / (TBM / 2), m = 2 * (idx % (TBM / 2));
        __nv_bfloat162* v = (__nv_bfloat162*)(as + kk * LDN + m);
        const float2 f = __bfloat1622float2(*v);
        *v = __floats2bfloat162_rn(f.x * sc[kk], f.y * sc[kk]);
      }
      __syncthreads();
    }
#pragma unroll
    for (int kk = 0; kk < TBK; kk += 16) {
      wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> fb[2];
      for (int j = 0; j < 2; j++) wmma::load_matrix_sync(fb[j], bs + kk * LDN + 32 * wn + 16 * j, LDN);
#pragma unroll
      for (int i = 0; i < 4; i++) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::col_major> fa;   // (m, p) at as[p·LDN + m]
        wmma::load_matrix_sync(fa, as + kk * LDN + 64 * wm + 16 * i, LDN);
        for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa, fb[j], acc[i][j]);
      }
    }
    __syncthreads();
  }
  float* Cs = (float*)smem;
  const long long base = (long long)e * g.md * g.nd;
  tc_epilogue(acc, Cs, wm, wn, [&](int mBase) {
    for (int idx = tid; idx < (TBM / 2) * TBN; idx += THREADS) {   // experts without rows: zeros
      const int m = idx / TBN, c = idx % TBN;
      const long long row = m0 + mBase + m, col = n0 + c;
      if (row < g.md && col < g.nd) st<float>(g.c, base + row * g.nd + col, (float)g.alpha * Cs[m * LDCS + c]);
    }
  });
}

extern "C" __global__ void __launch_bounds__(THREADS, 2) moe_gemm_wgrad_bf16_tc(const WgradArgs g) { gemm_wgrad_tc(g); }

// Weight gradient on mma.sync (the default for bf16 A and B): the tiles, loads, row order and scaling of the wmma
// kernel above, MSTAGES steps in flight (dynamic shared memory, WGRAD_SMEM bytes), fragments by ldmatrix.trans from
// the [p][m] and [p][n] tiles, 4×4 m16n8 accumulators per warp (rows 64·(w / 4), columns 32·(w % 4)). Grid: one
// dimension, block = e · tiles + tile (an expert's tiles together: its rows come from L2).
constexpr int W_ST = TBK * LDN, W_STAGE = 2 * W_ST;
constexpr int WGRAD_SMEM = MSTAGES * W_STAGE * 2;                       // 69632 bytes
static_assert(TBM * LDCF * 4 <= WGRAD_SMEM, "the f32 tile fits over the operand stages");

extern "C" __global__ void __launch_bounds__(THREADS, 2) moe_gemm_wgrad_mma(const WgradArgs g) {
  extern __shared__ __align__(128) unsigned char dsmem[];
  __shared__ float scale[MSTAGES][TBK];
  bf16* smem = (bf16*)dsmem;
  const int* offsets = (const int*)g.offsets;
  const int* sorted = (const int*)g.sorted;
  const bf16* a = (const bf16*)g.a.ptr;
  const bf16* b = (const bf16*)g.b.ptr;
  const long long tilesN = (g.nd + TBN - 1) / TBN, tiles = ((g.md + TBM - 1) / TBM) * tilesN;
  const int e = (int)(blockIdx.x / tiles), tile = (int)(blockIdx.x % tiles);
  const long long m0 = (long long)(tile / tilesN) * TBM, n0 = (long long)(tile % tilesN) * TBN;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wm = warp >> 2, wn = warp & 3;
  const long long p0 = offsets[e], p1 = offsets[e + 1];
  const bool scaled = g.scale.ptr != 0;
  const bool vecA = (g.a.ptr & 15) == 0 && g.lda % 8 == 0 && g.md % 8 == 0;
  const bool vecB = (g.b.ptr & 15) == 0 && g.ldb % 8 == 0 && g.nd % 8 == 0;
  auto load = [&](int stage, long long k0) {
    bf16* as = smem + stage * W_STAGE;
    bf16* bs = as + W_ST;
#pragma unroll
    for (int i = 0; i < 2; i++) {                    // chunk c: row kk = c / 16, columns (c % 16)·8 ..
      const int c = tid + THREADS * i, kk = c >> 4, ch = (c & 15) * 8;
      const long long p = k0 + kk;
      const bool row = p < p1;
      const long long s = row ? sorted[p] : 0;
      const long long ra = (g.gatherA ? s / g.topk : p) * g.lda + m0 + ch, rb = (g.gatherB ? s / g.topk : p) * g.ldb + n0 + ch;
      load8(as + kk * LDN + ch, vecA, row && m0 + ch < g.md, a + ra, a,
            [&](int j) { return row && m0 + ch + j < g.md; }, [&](int j) { return ra + j; });
      load8(bs + kk * LDN + ch, vecB, row && n0 + ch < g.nd, b + rb, b,
            [&](int j) { return row && n0 + ch + j < g.nd; }, [&](int j) { return rb + j; });
    }
    if (scaled && tid < TBK) {
      const long long p = k0 + tid;
      scale[stage][tid] = p < p1 ? ld<float>(g.scale, sorted[p]) : 0.f;
    }
  };

  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
      for (int v = 0; v < 4; v++) acc[i][j][v] = 0.f;
  const int steps = (int)((p1 - p0 + TBK - 1) / TBK);
#pragma unroll
  for (int s = 0; s < MSTAGES - 1; s++) {
    if (s < steps) load(s, p0 + (long long)s * TBK);
    cp_async_commit();
  }
  for (int ks = 0; ks < steps; ks++) {
    cp_async_wait<MSTAGES - 2>();
    __syncthreads();
    const int nxt = ks + MSTAGES - 1;
    if (nxt < steps) load(nxt % MSTAGES, p0 + (long long)nxt * TBK);
    cp_async_commit();
    bf16* as = smem + (ks % MSTAGES) * W_STAGE;
    const bf16* bs = as + W_ST;
    if (scaled) {                                    // A rows × their routing weights, rounded to bf16 (as the wmma kernel)
      const float* sc = scale[ks % MSTAGES];
      for (int idx = tid; idx < TBK * TBM / 2; idx += THREADS) {
        const int kk = idx / (TBM / 2), m = 2 * (idx % (TBM / 2));
        __nv_bfloat162* v = (__nv_bfloat162*)(as + kk * LDN + m);
        const float2 f = __bfloat1622float2(*v);
        *v = __floats2bfloat162_rn(f.x * sc[kk], f.y * sc[kk]);
      }
      __syncthreads();
    }
#pragma unroll
    for (int kk = 0; kk < TBK; kk += 16) {
      uint32_t af[4][4], bfr[4][2];
#pragma unroll
      for (int i = 0; i < 4; i++)                    // (m, p) at as[p·LDN + m]: matrices (m +0/+8) × (p +0/+8)
        ldsm_x4_trans(af[i], as + (kk + (lane & 7) + ((lane >> 4) << 3)) * LDN + 64 * wm + 16 * i + ((lane >> 3) & 1) * 8);
#pragma unroll
      for (int q = 0; q < 2; q++) {
        uint32_t r[4];
        ldsm_x4_trans(r, bs + (kk + (lane & 7) + ((lane >> 3) & 1) * 8) * LDN + 32 * wn + 16 * q + (lane >> 4) * 8);
        bfr[2 * q][0] = r[0];
        bfr[2 * q][1] = r[1];
        bfr[2 * q + 1][0] = r[2];
        bfr[2 * q + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) mma16816<bf16>(acc[i][j], af[i], bfr[j][0], bfr[j][1]);
    }
  }
  cp_async_wait<0>();
  __syncthreads();
  float* Cs = (float*)smem;
  const int gr = lane >> 2, tc = (lane & 3) * 2;
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int r = 64 * wm + 16 * i + gr, c = 32 * wn + 8 * j + tc;
      *(float2*)(Cs + r * LDCF + c) = make_float2(acc[i][j][0], acc[i][j][1]);
      *(float2*)(Cs + (r + 8) * LDCF + c) = make_float2(acc[i][j][2], acc[i][j][3]);
    }
  __syncthreads();
  const long long base = (long long)e * g.md * g.nd;
  if ((g.c.dtype == DT_BF16 || g.c.dtype == DT_F32) && (g.c.ptr & 15) == 0 && g.nd % 8 == 0) {   // 8 columns a thread
    for (int idx = tid; idx < TBM * TBN / 8; idx += THREADS) {
      const int m = idx / (TBN / 8), c = (idx % (TBN / 8)) * 8;
      const long long row = m0 + m, col = n0 + c;
      if (row >= g.md || col >= g.nd) continue;
      float v[8];
#pragma unroll
      for (int q = 0; q < 8; q++) v[q] = (float)g.alpha * Cs[m * LDCF + c + q];
      store8f(g.c, base + row * g.nd + col, v);
    }
    return;
  }
  for (int idx = tid; idx < TBM * TBN; idx += THREADS) {   // experts without rows: zeros
    const int m = idx / TBN, c = idx % TBN;
    const long long row = m0 + m, col = n0 + c;
    if (row < g.md && col < g.nd) st<float>(g.c, base + row * g.nd + col, (float)g.alpha * Cs[m * LDCF + c]);
  }
}

// ------------------------------------------------------------------------------------------ combine

struct CombineArgs {      // 96 bytes
  long long h, topk, weighted;
  long long pos, ids;                    // int* pos [S]; ids as given
  long long idsDtype;
  Buf rows;                              // [M, H]: expert outputs (forward) or dx rows (backward)
  Buf weights;                           // [S]
  Buf out;                               // [N, H]
};
static_assert(sizeof(CombineArgs) == 96, "CombineArgs layout (CudaMoeExperts writes it)");

constexpr int MAX_TOPK = THREADS;

/** Whether rows and out are bf16 or f32, 16-byte aligned, with H a multiple of 8: combine's vector path. */
__device__ __forceinline__ bool combine_vec(const CombineArgs& c) {
  auto ok = [](const Buf& b) { return (b.dtype == DT_BF16 || b.dtype == DT_F32) && (b.ptr & 15) == 0; };
  return c.h % 8 == 0 && ok(c.rows) && ok(c.out);
}

template <typename T>
__device__ __forceinline__ void combine(const CombineArgs& c) {
  __shared__ int order[MAX_TOPK];      // positions of this token's routed slots, in (expert, k) order
  __shared__ int valid;
  const long long t = blockIdx.x;
  const int K = (int)c.topk;
  if (threadIdx.x == 0) valid = 0;
  __syncthreads();
  if (threadIdx.x < K) {
    const int* pos = (const int*)c.pos;
    const long long s = t * K + threadIdx.x;
    if (pos[s] >= 0) {
      // this slot's rank among the routed ones by (expert, slot): the reference's order (experts ascending)
      auto id = [&](long long q) {
        return c.idsDtype == DT_I32 ? (long long)((const int*)c.ids)[q] : ((const long long*)c.ids)[q];
      };
      long long me = id(s);
      int r = 0;
      for (int k = 0; k < K; k++) {
        long long q = t * K + k;
        if (pos[q] < 0) continue;
        long long o = id(q);
        if (o < me || (o == me && k < (int)threadIdx.x)) r++;
      }
      order[r] = (int)s;
      atomicAdd(&valid, 1);               // integer count: exact
    }
  }
  __syncthreads();
  const int n = valid;
  const int* pos = (const int*)c.pos;
  if (std::is_same<T, float>::value && combine_vec(c)) {   // 8 columns a thread, 16-byte loads and stores
    const long long dt = c.out.dtype;
    for (long long j0 = 8LL * threadIdx.x; j0 < c.h; j0 += 8LL * THREADS) {
      float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f}, v[8];
      for (int r = 0; r < n; r++) {
        const int s = order[r];
        load8f(c.rows, pos[s] * c.h + j0, v);
        if (c.weighted) {
          const float w = ld<float>(c.weights, s);
#pragma unroll
          for (int q = 0; q < 8; q++) acc[q] = round_to<float>(dt, acc[q] + round_to<float>(dt, v[q] * w));
        } else {
#pragma unroll
          for (int q = 0; q < 8; q++) acc[q] += v[q];
        }
      }
      store8f(c.out, t * c.h + j0, acc);
    }
    return;
  }
  for (long long j = threadIdx.x; j < c.h; j += THREADS) {
    T acc = 0;
    for (int r = 0; r < n; r++) {
      const int s = order[r];
      const long long p = pos[s];
      if (c.weighted) {
        const long long dt = c.out.dtype;
        acc = round_to<T>(dt, acc + round_to<T>(dt, ld<T>(c.rows, p * c.h + j) * ld<T>(c.weights, s)));
      } else {
        acc += ld<T>(c.rows, p * c.h + j);
      }
    }
    st<T>(c.out, t * c.h + j, acc);
  }
}

extern "C" __global__ void __launch_bounds__(THREADS) moe_combine(const CombineArgs c) { combine<float>(c); }
extern "C" __global__ void __launch_bounds__(THREADS) moe_combine_f64(const CombineArgs c) { combine<double>(c); }

// ------------------------------------------------------------------------------------------ backward element-wise

struct SwigluBwdArgs {    // 104 bytes
  long long slots, inter, routed, sorted, xdtype;   // routed: int* to offsets[E] = M
  Buf g;                                 // [M, I] ∂/∂h before the routing weight (compute type)
  Buf gu;                                // [M, 2I] the rounded gate ‖ up
  Buf weights;                           // [S]
  Buf dgu;                               // [M, 2I] out (compute type)
};
static_assert(sizeof(SwigluBwdArgs) == 104, "SwigluBwdArgs layout (CudaMoeExperts writes it)");

template <typename T>
__device__ __forceinline__ void swiglu_bwd(const SwigluBwdArgs& a) {
  const long long total = (long long)*(const int*)a.routed * a.inter;
  const long long step = (long long)gridDim.x * THREADS;
  for (long long i = (long long)blockIdx.x * THREADS + threadIdx.x; i < total; i += step) {
    const long long p = i / a.inter, j = i - p * a.inter;
    const T dh = ld<T>(a.weights, ((const int*)a.sorted)[p]) * ld<T>(a.g, i);
    const T gate = ld<T>(a.gu, p * 2 * a.inter + j), up = ld<T>(a.gu, p * 2 * a.inter + a.inter + j);
    const T s = sigmoid(gate);
    st<T>(a.dgu, p * 2 * a.inter + j, dh * up * (s * ((T)1 + gate * ((T)1 - s))));
    st<T>(a.dgu, p * 2 * a.inter + a.inter + j, dh * round_to<T>(a.xdtype, gate * s));
  }
}

extern "C" __global__ void __launch_bounds__(THREADS) moe_swiglu_bwd(const SwigluBwdArgs a) { swiglu_bwd<float>(a); }
extern "C" __global__ void __launch_bounds__(THREADS) moe_swiglu_bwd_f64(const SwigluBwdArgs a) { swiglu_bwd<double>(a); }

struct DwArgs {           // 72 bytes
  long long slots, inter, pos;
  Buf g, h, dw;                          // g [M, I], h [M, I], dw [S]
};
static_assert(sizeof(DwArgs) == 72, "DwArgs layout (CudaMoeExperts writes it)");

template <typename T>
__device__ __forceinline__ void dweights(const DwArgs& a) {
  const long long s = (long long)blockIdx.x * (THREADS / 32) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (s >= a.slots) return;                          // whole warps: the shuffles below see all 32 lanes
  const long long p = ((const int*)a.pos)[s];
  T sum = 0;
  if (p >= 0)
    for (long long j = lane; j < a.inter; j += 32) sum += ld<T>(a.g, p * a.inter + j) * ld<T>(a.h, p * a.inter + j);
  for (int d = 16; d > 0; d >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, d);
  if (lane == 0) st<T>(a.dw, s, sum);
}

extern "C" __global__ void __launch_bounds__(THREADS) moe_dweights(const DwArgs a) { dweights<float>(a); }
extern "C" __global__ void __launch_bounds__(THREADS) moe_dweights_f64(const DwArgs a) { dweights<double>(a); }
