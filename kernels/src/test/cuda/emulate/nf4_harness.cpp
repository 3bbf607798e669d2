// Host emulation harness for nf4.cu's tensor-core kernels (see nf4.sh).
#include "tensor.cuh"
#include "mma.cuh"
#undef __launch_bounds__
#define __launch_bounds__(...)
#define __constant__
struct float4 { float x, y, z, w; };
inline uint2 make_uint2(unsigned a, unsigned b) { return {a, b}; }
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }
template <typename T> inline T __ldg(const T* p) { return *p; }
inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
#include "nf4.cu"
#include <random>
#include <string>
alignas(128) unsigned char smem[240 * 1024];

template <typename F>
static void launch(F kernel, long long grid, int threads = 256) {
  for (long long blk = 0; blk < grid; blk++) {
    std::barrier<> bb(threads); block_bar = &bb;
    for (int w = 0; w < 8; w++) warp_bar[w] = new std::barrier<>(32);
    memset(smem, 0xFF, sizeof smem);                                     // poisoned shared memory
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; t++)
      ts.emplace_back([&, t] { threadIdx.x = t; blockIdx.x = (unsigned)blk; gridDim.x = (unsigned)grid; blockDim.x = threads; kernel(); });
    for (auto& t : ts) t.join();
    for (int w = 0; w < 8; w++) delete warp_bar[w];
  }
}

struct W {
  int N, K; std::vector<uint8_t> packed, qabs; std::vector<float> nabs, ncode, deq; float offset = 0.02f;
  W(int n, int k, std::mt19937& rng) : N(n), K(k) {
    long long e = (long long)n * k, blocks = e / 64;
    packed.resize(e / 2 + 16); qabs.resize(blocks); nabs.resize((blocks + 255) / 256); ncode.resize(256); deq.resize(e);
    for (auto& b : packed) b = rng() & 0xff;
    for (auto& b : qabs) b = rng() & 0xff;
    std::uniform_real_distribution<float> u(0.5f, 1.5f);
    for (auto& v : nabs) v = 0.01f * u(rng);
    for (int i = 0; i < 256; i++) ncode[i] = (i - 127.5f) / 128.f;
    for (long long i = 0; i < e; i++) {
      long long b = i >> 6;
      const float s = __fadd_rn(__fmul_rn(ncode[qabs[b]], nabs[b >> 8]), offset);
      const int byte = packed[i >> 1], q = (i & 1) ? byte & 15 : byte >> 4;
      deq[i] = __bfloat162float(__float2bfloat16_rn(__fmul_rn(NF4[q], s)));
    }
  }
};
static std::vector<__nv_bfloat16> rnd(long long n, std::mt19937& rng) {
  std::normal_distribution<float> nd; std::vector<__nv_bfloat16> v(n + 8);
  for (auto& x : v) x = __float2bfloat16_rn(nd(rng));
  return v;
}
static int fails = 0;
static void cmp(const std::string& what, const std::vector<__nv_bfloat16>& got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); i++) {
    const double e = std::fabs(__bfloat162float(got[i]) - ref[i]);
    num = std::isnan(e) || std::isnan(num) ? NAN : std::max(num, e);
    den = std::max(den, std::fabs(ref[i]));
  }
  const double r = num / den;
  const bool ok = r < 1.6e-2;
  if (!ok) fails++;
  printf("%-58s rel err %.3e %s\n", what.c_str(), r, ok ? "ok" : "FAIL");
}
static std::vector<double> ref_fwd(const W& w, const std::vector<__nv_bfloat16>& x, int M) {
  std::vector<double> y((size_t)M * w.N);
  for (int m = 0; m < M; m++)
    for (int n = 0; n < w.N; n++) {
      double s = 0;
      for (int k = 0; k < w.K; k++) s += (double)__bfloat162float(x[(size_t)m * w.K + k]) * w.deq[(size_t)n * w.K + k];
      y[(size_t)m * w.N + n] = s;
    }
  return y;
}
static std::vector<double> ref_dx(const W& w, const std::vector<__nv_bfloat16>& dy, int M) {
  std::vector<double> dx((size_t)M * w.K, 0.0);
  for (int m = 0; m < M; m++)
    for (int n = 0; n < w.N; n++) {
      const double g = __bfloat162float(dy[(size_t)m * w.N + n]);
      for (int k = 0; k < w.K; k++) dx[(size_t)m * w.K + k] += g * w.deq[(size_t)n * w.K + k];
    }
  return dx;
}
typedef void (*Gemv)(__nv_bfloat16*, const __nv_bfloat16*, const uint8_t*, const uint8_t*, const float*, const float*, double, int, int, int, int, int);
typedef void (*Gemm)(__nv_bfloat16*, const __nv_bfloat16*, const uint8_t*, const uint8_t*, const float*, const float*, double, int, int, int, int);

static void gemv(const char* name, Gemv mb1, Gemv mb2, int M, int K, int N, int KS, int KT, int grid, std::mt19937& rng) {
  if (std::string(name) == "tca") grid = (N + 16 * 8 / KS - 1) / (16 * 8 / KS);      // one item per block
  W w(N, K, rng);
  auto x = rnd((long long)M * K, rng);
  std::vector<__nv_bfloat16> y((size_t)M * N, __nv_bfloat16{0x7fc0});
  const int mb = M <= 8 ? 1 : 2;
  Gemv f = mb == 1 ? mb1 : mb2;
  launch([&] { f(y.data(), x.data(), w.packed.data(), w.qabs.data(), w.nabs.data(), w.ncode.data(), w.offset, M, N, K, KS, KT); }, grid);
  char what[160];
  snprintf(what, sizeof what, "gemv %-4s M=%d K=%d N=%d KS=%d KT=%d grid %d", name, M, K, N, KS, KT, grid);
  cmp(what, y, ref_fwd(w, x, M));
}
static void gemm(const char* name, Gemm fwd, Gemm dxk, int bm, int M, int K, int N, std::mt19937& rng) {
  W w(N, K, rng);
  auto x = rnd((long long)M * K, rng), dy = rnd((long long)M * N, rng);
  std::vector<__nv_bfloat16> y((size_t)M * N, __nv_bfloat16{0x7fc0}), dx((size_t)M * K, __nv_bfloat16{0x7fc0});
  const long long rows = (M + bm - 1) / bm;
  launch([&] { fwd(y.data(), x.data(), w.packed.data(), w.qabs.data(), w.nabs.data(), w.ncode.data(), w.offset, DT_BF16, M, N, K); }, rows * ((N + 127) / 128));
  char what[160];
  snprintf(what, sizeof what, "gemm %-4s M=%d K=%d N=%d y", name, M, K, N);
  cmp(what, y, ref_fwd(w, x, M));
  launch([&] { dxk(dx.data(), dy.data(), w.packed.data(), w.qabs.data(), w.nabs.data(), w.ncode.data(), w.offset, DT_BF16, M, N, K); }, rows * ((K + 127) / 128));
  snprintf(what, sizeof what, "gemm %-4s M=%d K=%d N=%d dx", name, M, K, N);
  cmp(what, dx, ref_dx(w, dy, M));
}

int main() {
  std::mt19937 rng(7);
  struct { const char* name; Gemv mb1, mb2; } gv[] = {
      {"tc", nf4_gemv_tc_bf16_mb1, nf4_gemv_tc_bf16_mb2}, {"tc8", nf4_gemv_tc8_bf16_mb1, nf4_gemv_tc8_bf16_mb2},
      {"tc2", nf4_gemv_tc2_bf16_mb1, nf4_gemv_tc2_bf16_mb2}, {"tcs", nf4_gemv_tcs_bf16_mb1, nf4_gemv_tcs_bf16_mb2},
      {"tcp", nf4_gemv_tcp_bf16_mb1, nf4_gemv_tcp_bf16_mb2}, {"tcp2", nf4_gemv_tcp2_bf16_mb1, nf4_gemv_tcp2_bf16_mb2},
      {"tca", nf4_gemv_tca_bf16_mb1, nf4_gemv_tca_bf16_mb2}};
  for (auto& v : gv) {
    gemv(v.name, v.mb1, v.mb2, 1, 640, 40, 1, 640, 1, rng);      // KS 1, one item of 128 rows (rows past N), 10 blocks
    gemv(v.name, v.mb1, v.mb2, 3, 192, 33, 2, 192, 2, rng);      // split-K 2, odd block count per warp
    gemv(v.name, v.mb1, v.mb2, 9, 256, 20, 4, 128, 1, rng);      // two k-tiles, mb 2, split-K 4
    gemv(v.name, v.mb1, v.mb2, 16, 1024, 24, 8, 512, 1, rng);    // split-K 8, two k-tiles, several batches
    gemv(v.name, v.mb1, v.mb2, 2, 576, 150, 1, 576, 1, rng);     // two items in one persistent block
    gemv(v.name, v.mb1, v.mb2, 4, 1984, 37, 1, 1984, 1, rng);    // 31 blocks a row: a partial last batch, rows past N
  }
  struct { const char* name; Gemm fwd, dx; int bm; } mv[] = {
      {"tc", nf4_gemm_tc_bf16, nf4_gemm_dx_tc_bf16, 128}, {"tcs", nf4_gemm_tcs_bf16, nf4_gemm_dx_tcs_bf16, 128},
      {"tcw", nf4_gemm_tcw_bf16, nf4_gemm_dx_tcw_bf16, 256}};
  for (auto& v : mv) {
    gemm(v.name, v.fwd, v.dx, v.bm, 130, 320, 136, rng);          // M, N tails; 5 steps fwd (ring wraps), 3 dx
    gemm(v.name, v.fwd, v.dx, v.bm, 40, 192, 56, rng);            // K % 128 != 0 for dx (one-block column tail)
  }
  printf(fails ? "%d FAILED\n" : "all ok\n", fails);
  return fails ? 1 : 0;
}
