// Host emulation harness for adamw_step.cu (see adamw.sh).
#include "tensor.cuh"
#include <random>
#include <string>
#undef __shared__
#define __shared__ static                               // one copy for all the emulated threads of a block
#undef __launch_bounds__
#define __launch_bounds__(...)
using std::isfinite; using std::signbit;
struct float2 { float x, y; };
struct float4 { float x, y, z, w; };
struct uint2 { unsigned x, y; };
inline float2 make_float2(float a, float b) { return {a, b}; }
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
inline uint2 make_uint2(unsigned a, unsigned b) { return {a, b}; }
inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.b; }
inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
inline float __fsub_rn(float a, float b) { volatile float r = a - b; return r; }
inline float __fdiv_rn(float a, float b) { volatile float r = a / b; return r; }
inline float __fsqrt_rn(float a) { volatile float r = sqrtf(a); return r; }
#include "adamw_step.cu"

typedef void (*Kern)(const AdamWArgs);
static void launch(Kern k, const AdamWArgs& a, long long grid, int threads) {
  gridDim = {(unsigned)grid, 1, 1}; blockDim = {(unsigned)threads, 1, 1};
  for (long long blk = 0; blk < grid; blk++) {
    std::barrier<> bb(threads); block_bar = &bb;
    for (int w = 0; w < 8; w++) warp_bar[w] = new std::barrier<>(32);
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; t++) ts.emplace_back([&, t] { threadIdx.x = t; blockIdx.x = (unsigned)blk; k(a); });
    for (auto& t : ts) t.join();
    for (int w = 0; w < 8; w++) delete warp_bar[w];
  }
}

// ---- the reference: a port of dev.jomni.tensor.cpu.CpuAdamWStep and AdamWStep.dynamicMap ----
static std::vector<float> dynamic_map(bool sgn) {
  std::vector<float> data;
  for (int i = 0; i < 7; i++) {
    int items = sgn ? (1 << i) + 1 : (1 << (i + 1)) + 1;
    std::vector<float> bnd(items);
    float st = (1.f - 0.1f) / (items - 1);
    int half = items / 2;
    for (int j = 0; j < items; j++) bnd[j] = j < half ? 0.1f + st * j : 1.f - st * (items - 1 - j);
    float scale = (float)std::pow(10.0, -6 + i);
    for (int j = 0; j + 1 < items; j++) {
      float mean = (bnd[j] + bnd[j + 1]) / 2.f;
      data.push_back(scale * mean);
      if (sgn) data.push_back(-scale * mean);
    }
  }
  data.push_back(0.f); data.push_back(1.f);
  if (data.size() != 256) abort();
  std::sort(data.begin(), data.end());
  return data;
}
static int ref_quantize(const std::vector<float>& code, float x) {
  int lo = 0, hi = (int)code.size() - 1;
  if (!(x > code[lo])) return lo;
  if (x >= code[hi]) return hi;
  while (hi - lo > 1) { int mid = (unsigned)(lo + hi) >> 1; if (code[mid] <= x) lo = mid; else hi = mid; }
  float midpoint = (code[lo] + code[hi]) * 0.5f;
  return x > midpoint ? hi : lo;
}
struct Hyper { float beta1, beta2, eps, lr, wd, stepSize, correction; };
static float rd(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }
static void ref_torch(std::vector<float>& pv, const std::vector<float>& gv, std::vector<float>& m, std::vector<float>& v, const Hyper& h, bool bf16) {
  float b1 = h.beta1, b2 = h.beta2, decay = 1.f - h.lr * h.wd;
  for (size_t j = 0; j < gv.size(); j++) {
    float s1 = m[j], s2 = v[j], gj = gv[j], pj = pv[j];
    if (h.wd != 0.f) pj = pj * decay;
    s1 = s1 + (1.f - b1) * (gj - s1);
    s2 = s2 * b2 + (1.f - b2) * gj * gj;
    float denom = sqrtf(s2) / h.correction + h.eps;
    pv[j] = pj - h.stepSize * (s1 / denom);
    m[j] = s1; v[j] = s2;
    if (bf16) pv[j] = rd(pv[j]);
  }
}
static void ref_bnb32(std::vector<float>& pv, const std::vector<float>& gv, std::vector<float>& m, std::vector<float>& v, const Hyper& h, bool bf16) {
  float b1 = h.beta1, b2 = h.beta2, lr = h.lr, wd = h.wd;
  for (size_t j = 0; j < gv.size(); j++) {
    float s1 = m[j], s2 = v[j];
    s1 = s1 * b1 + (1.f - b1) * gv[j];
    s2 = s2 * b2 + (1.f - b2) * (gv[j] * gv[j]);
    pv[j] = pv[j] + h.stepSize * (s1 / (sqrtf(s2) + h.eps * h.correction));
    if (wd > 0.f) pv[j] = pv[j] * (1.f - lr * wd);
    m[j] = s1; v[j] = s2;
    if (bf16) pv[j] = rd(pv[j]);
  }
}
static void ref_8bit(std::vector<float>& pv, const std::vector<float>& gv, std::vector<uint8_t>& c1, std::vector<uint8_t>& c2,
                     std::vector<float>& a1, std::vector<float>& a2, const std::vector<float>& sgn, const std::vector<float>& uns, const Hyper& h, bool bf16) {
  float b1 = h.beta1, b2 = h.beta2, lr = h.lr, wd = h.wd, stepSize = h.stepSize, correction2 = h.correction;
  const int block = 256; float s1[256], s2[256]; bool finite[256];
  int n = (int)gv.size();
  for (int b = 0, lo = 0; lo < n; b++, lo += block) {
    int len = std::min(block, n - lo);
    float abs1 = a1[b], abs2 = a2[b], max1 = 0.f, max2 = 0.f;
    for (int j = 0; j < len; j++) {
      float gj = gv[lo + j];
      finite[j] = std::isfinite(gj);
      if (finite[j]) {
        s2[j] = uns[c2[lo + j]] * abs2;
        s2[j] = s2[j] * b2 + (1.f - b2) * gj * gj;
        s1[j] = sgn[c1[lo + j]] * abs1;
        s1[j] = s1[j] * b1 + (1.f - b1) * gj;
      } else { s1[j] = 0.f; s2[j] = 0.f; }
      max1 = std::max(max1, std::fabs(s1[j]));       // NaN-free here: the inputs do not overflow
      max2 = std::max(max2, std::fabs(s2[j]));
    }
    a1[b] = max1; a2[b] = max2;
    for (int j = 0; j < len; j++) {
      if (!finite[j]) continue;
      int at = lo + j;
      pv[at] = pv[at] + stepSize * (s1[j] / (sqrtf(s2[j]) + correction2 * h.eps));
      if (wd > 0.f) pv[at] = pv[at] * (1.f - lr * wd);
    }
    for (int j = 0; j < len; j++) {
      int q1 = ref_quantize(sgn, max1 == 0.f ? 0.f : s1[j] / max1);
      if (max1 != 0.f && std::signbit(sgn[q1]) != std::signbit(s1[j])) q1 += s1[j] > 0.f ? 1 : -1;
      int q2 = ref_quantize(uns, max2 == 0.f ? 0.f : s2[j] / max2);
      c1[lo + j] = (uint8_t)q1; c2[lo + j] = (uint8_t)q2;
    }
  }
  if (bf16) for (auto& x : pv) x = rd(x);
}

// ---- device-side buffers: a parameter or gradient of f32 or bf16 at an element offset (misaligned when odd) ----
struct Buf {
  int dtype; size_t off; std::vector<float> f; std::vector<__nv_bfloat16> b;
  Buf(const std::vector<float>& x, int dt, size_t offset) : dtype(dt), off(offset) {
    if (dt == DT_F32) { f.assign(x.size() + offset + 8, NAN); std::copy(x.begin(), x.end(), f.begin() + offset); }
    else { b.assign(x.size() + offset + 8, __nv_bfloat16{0x7FC0}); for (size_t i = 0; i < x.size(); i++) b[offset + i] = __float2bfloat16_rn(x[i]); }
  }
  long long addr() { return dtype == DT_F32 ? (long long)(f.data() + off) : (long long)(b.data() + off); }
  float at(size_t i) const { return dtype == DT_F32 ? f[off + i] : __bfloat162float(b[off + i]); }
};

static int fails = 0;
static void check(const std::string& what, long long diff, const std::string& detail = "") {
  if (diff) fails++;
  printf("%-78s %s%s\n", what.c_str(), diff ? "FAIL " : "ok", diff ? (std::to_string(diff) + " differ " + detail).c_str() : "");
}
static long long bits_diff(const std::vector<float>& a, const std::vector<float>& b) {
  long long d = 0; for (size_t i = 0; i < a.size(); i++) if (__float_as_uint(a[i]) != __float_as_uint(b[i])) d++; return d;
}
static std::vector<float> gradient(std::mt19937& rng, int n, bool special) {
  std::normal_distribution<float> nd; std::vector<float> g(n);
  for (auto& x : g) { float a = nd(rng), b = nd(rng); x = a * std::exp(b); }
  if (special) {
    for (int i = 256; i < std::min(n, 512); i++) g[i] = 0.f;
    for (int i = 7; i < n; i += 997) g[i] = i % 2 == 0 ? NAN : INFINITY;
  }
  return g;
}
static Hyper hyper(bool torch, int step) {
  float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, lr = 1e-3f * (1 + step), wd = 0.01f;
  float c1 = 1.f - (float)std::pow(b1, step), c2 = (float)std::sqrt(1.f - (float)std::pow(b2, step));
  return torch ? Hyper{b1, b2, eps, lr, wd, (float)(lr / (1 - std::pow(b1, step))), (float)std::sqrt(1 - std::pow(b2, step))}
               : Hyper{b1, b2, eps, lr, wd, -lr * c2 / c1, c2};
}
static AdamWArgs args(long long n, long long p, long long g, long long m, long long v, int pdt, int gdt, const Hyper& h) {
  AdamWArgs a{}; a.n = n; a.p = p; a.g = g; a.m = m; a.v = v; a.p_dtype = pdt; a.g_dtype = gdt;
  a.beta1 = h.beta1; a.beta2 = h.beta2; a.eps = h.eps; a.lr = h.lr; a.weight_decay = h.wd; a.step_size = h.stepSize; a.correction = h.correction;
  return a;
}

/** adamw_8bit_blockwise (and _v1) over 5 steps against the reference; off: element offset of p and g (odd: scalar path). */
static void run8(int n, int pdt, int gdt, size_t off, long long grid) {
  std::mt19937 rng(n * 7 + pdt * 3 + gdt + off);
  std::normal_distribution<float> nd;
  std::vector<float> sgn = dynamic_map(true), uns = dynamic_map(false), p0(n);
  for (auto& x : p0) x = nd(rng);
  if (pdt == DT_BF16) for (auto& x : p0) x = rd(x);
  int blocks = (n + 255) / 256;
  std::vector<float> pr = p0, a1r(blocks, 0.f), a2r(blocks, 0.f);
  std::vector<uint8_t> c1r(n, 127), c2r(n, 0);
  Buf pk(p0, pdt, off), pv1(p0, pdt, off);
  std::vector<uint8_t> c1k(n + 8, 127), c2k(n + 8, 0), c1v(n + 8, 127), c2v(n + 8, 0);
  std::vector<float> a1k(blocks, 0.f), a2k(blocks, 0.f), a1v(blocks, 0.f), a2v(blocks, 0.f);
  size_t coff = off % 2 ? 1 : 0;                          // codes misaligned with the parameter too
  if (coff) { c1k.insert(c1k.begin(), 0); c2k.insert(c2k.begin(), 0); }
  for (int step = 1; step <= 5; step++) {
    std::vector<float> g = gradient(rng, n, step > 1);
    if (gdt == DT_BF16) for (auto& x : g) x = rd(x);
    Hyper h = hyper(false, step);
    ref_8bit(pr, g, c1r, c2r, a1r, a2r, sgn, uns, h, pdt == DT_BF16);
    Buf gk(g, gdt, off);
    AdamWArgs a = args(n, pk.addr(), gk.addr(), (long long)(c1k.data() + coff), (long long)(c2k.data() + coff), pdt, gdt, h);
    a.absmax1 = (long long)a1k.data(); a.absmax2 = (long long)a2k.data(); a.qmap1 = (long long)sgn.data(); a.qmap2 = (long long)uns.data();
    launch(adamw_8bit_blockwise, a, grid, BLOCK);
    AdamWArgs b = args(n, pv1.addr(), gk.addr(), (long long)c1v.data(), (long long)c2v.data(), pdt, gdt, h);
    b.absmax1 = (long long)a1v.data(); b.absmax2 = (long long)a2v.data(); b.qmap1 = a.qmap1; b.qmap2 = a.qmap2;
    launch(adamw_8bit_blockwise_v1, b, std::min<long long>(blocks, 5), BLOCK);
  }
  std::vector<float> pgot(n), pv1got(n);
  for (int i = 0; i < n; i++) { pgot[i] = pk.at(i); pv1got[i] = pv1.at(i); }
  long long d1 = 0, d2 = 0, v1 = 0, v2 = 0, moved = 0, guard = 0;
  for (int i = 0; i < n; i++) {
    d1 += c1k[coff + i] != c1r[i]; d2 += c2k[coff + i] != c2r[i];
    v1 += c1v[i] != c1r[i]; v2 += c2v[i] != c2r[i]; moved += c1r[i] != 127;
  }
  for (int i = n; i < n + 8; i++) guard += c1k[coff + i] != 127 || c2k[coff + i] != 0;
  std::string at = "8bit n=" + std::to_string(n) + (pdt == DT_F32 ? " p f32" : " p bf16") + (gdt == DT_F32 ? " g f32" : " g bf16")
                   + " offset " + std::to_string(off) + " grid " + std::to_string(grid);
  check(at + ": p", bits_diff(pgot, pr));
  check(at + ": codes1, codes2", d1 + d2);
  check(at + ": absmax1, absmax2", bits_diff(a1k, a1r) + bits_diff(a2k, a2r));
  check(at + ": v1 p, codes, absmax", bits_diff(pv1got, pr) + v1 + v2 + bits_diff(a1v, a1r) + bits_diff(a2v, a2r));
  check(at + ": codes beyond n untouched", guard);
  if (moved == 0) { fails++; printf("  FAIL: the first moment never moved off zero\n"); }
}

/** adamw_torch / adamw_bnb32 (and _v1) over 5 steps against the reference. */
static void run32(bool torch, int n, int pdt, size_t off, long long grid) {
  std::mt19937 rng(n * 11 + pdt + off + torch);
  std::normal_distribution<float> nd;
  std::vector<float> p0(n);
  for (auto& x : p0) x = nd(rng);
  if (pdt == DT_BF16) for (auto& x : p0) x = rd(x);
  std::vector<float> pr = p0, mr(n, 0.f), vr(n, 0.f), mk(n + 8, 0.f), vk(n + 8, 0.f), m1(n, 0.f), w1(n, 0.f);
  Buf pk(p0, pdt, off), pv1(p0, pdt, off);
  for (int step = 1; step <= 5; step++) {
    std::vector<float> g = gradient(rng, n, false);
    Hyper h = hyper(torch, step);
    (torch ? ref_torch : ref_bnb32)(pr, g, mr, vr, h, pdt == DT_BF16);
    Buf gk(g, DT_F32, off);
    AdamWArgs a = args(n, pk.addr(), gk.addr(), (long long)(mk.data() + off % 4), (long long)(vk.data() + off % 4), pdt, DT_F32, h);
    launch(torch ? adamw_torch : adamw_bnb32, a, grid, BLOCK);
    AdamWArgs b = args(n, pv1.addr(), gk.addr(), (long long)m1.data(), (long long)w1.data(), pdt, DT_F32, h);
    launch(torch ? adamw_torch_v1 : adamw_bnb32_v1, b, grid, BLOCK);
  }
  std::vector<float> pgot(n), pv1got(n), mg(mk.begin() + off % 4, mk.begin() + off % 4 + n), vg(vk.begin() + off % 4, vk.begin() + off % 4 + n);
  for (int i = 0; i < n; i++) { pgot[i] = pk.at(i); pv1got[i] = pv1.at(i); }
  std::string at = std::string(torch ? "torch" : "bnb32") + " n=" + std::to_string(n) + (pdt == DT_F32 ? " p f32" : " p bf16")
                   + " offset " + std::to_string(off) + " grid " + std::to_string(grid);
  check(at + ": p, m, v", bits_diff(pgot, pr) + bits_diff(mg, mr) + bits_diff(vg, vr));
  check(at + ": v1 p, m, v", bits_diff(pv1got, pr) + bits_diff(m1, mr) + bits_diff(w1, vr));
}

/** quantize (the bucket tables) against quantize_v1 near every code, midpoint and bucket edge, and over a sweep. */
static QuantMap* built;
static void build_kernel(const AdamWArgs a) {
  __shared__ QuantMap m;
  build_map(m, (const float*)a.qmap1);
  __syncthreads();
  if (threadIdx.x == 0) *built = m;
}
static void quantize_sweep(bool sgn) {
  std::vector<float> code = dynamic_map(sgn);
  QuantMap* q = new QuantMap;
  built = q;
  AdamWArgs a{}; a.qmap1 = (long long)code.data();
  launch(build_kernel, a, 1, BLOCK);
  long long tested = 0, wrong = 0, walk[4] = {0, 0, 0, 0};
  auto test = [&](float x) {
    tested++;
    int k = quantize(*q, code[0], code[255], x);
    if (k != quantize_v1(code.data(), x) || k != ref_quantize(code, x)) { if (wrong++ < 5) printf("  x=%a: %d, v1 %d\n", x, k, quantize_v1(code.data(), x)); }
    if (x > code[0] && x < code[255]) {
      int lo = q->lower[bucket(x)], hi = lo; while (code[hi + 1] <= x) hi++;
      walk[std::min(hi - lo, 3)]++;
    }
  };
  auto around = [&](float c) { unsigned u = __float_as_uint(c); for (int d = -300; d <= 300; d++) test(__uint_as_float(u + d)); };
  for (int k = 0; k < 256; k++) around(code[k]);
  for (int k = 0; k < 255; k++) around(__fmul_rn(__fadd_rn(code[k], code[k + 1]), 0.5f));
  for (int K = 0; K < 2 * QH; K++) { float x = bucket_lowest(K); if (std::isfinite(x)) around(x); }
  for (float x : {0.f, -0.f, 1.f, -1.f, NAN, INFINITY, -INFINITY, 1e-30f, -1e-30f, 1e-45f}) test(x);
  for (unsigned u = 0; u <= 0x3F800000u; u += 61) { test(__uint_as_float(u)); test(__uint_as_float(u | 0x80000000u)); }
  printf("%-78s %s (%lld values; walk 0/1/2/3+ steps: %lld %lld %lld %lld)\n", (std::string("quantize, ") + (sgn ? "signed" : "unsigned") + " map").c_str(),
         wrong ? "FAIL" : "ok", tested, walk[0], walk[1], walk[2], walk[3]);
  if (wrong) fails++;
  delete q;
}

int main() {
  quantize_sweep(true);
  quantize_sweep(false);
  for (int n : {4096, 256 * 37 + 13, 100003}) run8(n, DT_F32, DT_F32, 0, 3);
  run8(256 * 9 + 1, DT_BF16, DT_F32, 0, 2);
  run8(256 * 9 + 1, DT_BF16, DT_BF16, 0, 2);
  run8(256 * 64 + 5, DT_F32, DT_BF16, 0, 4);
  run8(256 * 21 + 100, DT_F32, DT_F32, 1, 2);           // misaligned: every block by the scalar path
  run8(256 * 21 + 100, DT_BF16, DT_BF16, 3, 2);
  run8(100, DT_F32, DT_F32, 0, 1);                      // a single partial block
  for (bool torch : {true, false}) {
    for (int n : {1, 4095, 100003}) run32(torch, n, DT_F32, 0, 5);
    run32(torch, 1000, DT_BF16, 0, 3);
    run32(torch, 4099, DT_F32, 1, 3);                     // misaligned: the scalar loop
    run32(torch, 4099, DT_BF16, 2, 3);
  }
  printf(fails ? "%d FAILED\n" : "all ok\n", fails);
  return fails != 0;
}
