#include "attention.cu"
#include <cstdio>
#include <random>
#include <string>
#include <algorithm>
alignas(16) unsigned char smem[300 * 1024];

typedef void (*Kern)(const SdpaArgs);
static void launch(Kern k, const SdpaArgs& p, long long grid, unsigned long long shm, int threads = NT) {
  emu_dyn_smem = (unsigned)shm;
  for (long long blk = 0; blk < grid; blk++) {
    std::barrier<> bb(threads); block_bar = &bb;
    std::vector<std::barrier<>*> wb; for (int w = 0; w < 8; w++) { warp_bar[w] = new std::barrier<>(32); }
    memset(smem, 0xFF, sizeof smem);   // poison shared memory (NaN floats)
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; t++) ts.emplace_back([&, t] { threadIdx.x = t; blockIdx.x = (unsigned)blk; k(p); });
    for (auto& t : ts) t.join();
    for (int w = 0; w < 8; w++) delete warp_bar[w];
  }
}

static Operand op(void* ptr, std::vector<long long> st, int dt) { Operand o{}; o.ptr = (char*)ptr; for (size_t i = 0; i < st.size(); i++) o.stride[i] = st[i]; o.dtype = dt; return o; }

struct Prob { int B, nh, nkv, T, S, d; bool causal; int past; bool padmask; std::vector<int> seg; };

static int fails = 0;
static void cmp(const char* what, const std::vector<float>& got, const std::vector<double>& ref, double bound) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); i++) {
    double e = std::fabs(got[i] - ref[i]);
    if (std::isinf(ref[i]) && got[i] == ref[i]) e = 0;
    if (std::isnan(e)) num = NAN; else if (!std::isnan(num)) num = std::max(num, e);
    if (!std::isinf(ref[i])) den = std::max(den, std::fabs(ref[i]));
  }
  double r = num / (den == 0 ? 1 : den);
  bool ok = r <= bound;
  if (!ok) fails++;
  printf("  %-4s rel err %.3e %s\n", what, r, ok ? "ok" : "FAIL");
}

template <int BQ, int BK>
static void run(const Prob& P, Kern fwd, Kern dq, Kern dkv, const char* name) {
  printf("%s B%d nh%d nkv%d T%d S%d d%d causal%d past%d pad%d seg%zu\n", name, P.B, P.nh, P.nkv, P.T, P.S, P.d, P.causal, P.past, P.padmask, P.seg.size());
  std::mt19937 rng(42); std::normal_distribution<float> nd;
  int B = P.B, nh = P.nh, nkv = P.nkv, T = P.T, S = P.S, d = P.d, cap = S + 5, g = nh / nkv;
  // q, dout as [B, T, nh, d] (transposed views), k, v as cache [B, nkv, cap, d]
  std::vector<float> q(B * T * nh * d), go(B * T * nh * d), k(B * nkv * cap * d), v(B * nkv * cap * d);
  for (auto* a : {&q, &go, &k, &v}) for (auto& x : *a) x = nd(rng);
  std::vector<unsigned char> km(B * S, 1);
  if (P.padmask) for (int j = 0; j < std::min(S, P.past + 5); j++) km[(B - 1) * S + j] = 0;   // last batch row: left padding
  auto Q = [&](int b, int h, int i, int c) { return (double)q[((b * T + i) * nh + h) * d + c]; };
  auto G = [&](int b, int h, int i, int c) { return (double)go[((b * T + i) * nh + h) * d + c]; };
  auto K = [&](int b, int h, int j, int c) { return (double)k[((b * nkv + h) * cap + j) * d + c]; };
  auto V = [&](int b, int h, int j, int c) { return (double)v[((b * nkv + h) * cap + j) * d + c]; };
  double scale = 1 / std::sqrt((double)d);
  auto visible = [&](int b, int i, int j) {
    int lo = 0, hi = S;
    if (!P.seg.empty()) { int gg = 0; while (P.seg[gg + 1] <= i) gg++; lo = P.seg[gg]; hi = P.seg[gg + 1]; }
    if (P.causal) hi = std::min(hi, P.past + i + 1);
    return j >= lo && j < hi && km[b * S + j];
  };
  // reference
  std::vector<double> ro(B * nh * T * d, 0), rl(B * nh * T), rdq(B * nh * T * d, 0), rdk(B * nkv * S * d, 0), rdv(B * nkv * S * d, 0);
  for (int b = 0; b < B; b++) for (int h = 0; h < nh; h++) for (int i = 0; i < T; i++) {
    int kh = h / g; std::vector<double> s(S, -INFINITY); double m = -INFINITY;
    for (int j = 0; j < S; j++) if (visible(b, i, j)) { double x = 0; for (int c = 0; c < d; c++) x += Q(b, h, i, c) * K(b, kh, j, c); s[j] = x * scale; m = std::max(m, s[j]); }
    size_t row = ((size_t)(b * nh + h) * T + i);
    if (m == -INFINITY) { rl[row] = INFINITY; continue; }
    double l = 0; for (int j = 0; j < S; j++) if (s[j] > -INFINITY) l += std::exp(s[j] - m);
    rl[row] = m + std::log(l);
    std::vector<double> pr(S, 0);
    for (int j = 0; j < S; j++) if (s[j] > -INFINITY) pr[j] = std::exp(s[j] - rl[row]);
    for (int c = 0; c < d; c++) { double x = 0; for (int j = 0; j < S; j++) x += pr[j] * V(b, kh, j, c); ro[row * d + c] = x; }
    double D = 0; for (int c = 0; c < d; c++) D += G(b, h, i, c) * ro[row * d + c];
    for (int j = 0; j < S; j++) if (pr[j] != 0) {
      double dp = 0; for (int c = 0; c < d; c++) dp += G(b, h, i, c) * V(b, kh, j, c);
      double ds = pr[j] * (dp - D);
      for (int c = 0; c < d; c++) {
        rdq[row * d + c] += scale * ds * K(b, kh, j, c);
        rdk[((size_t)(b * nkv + kh) * S + j) * d + c] += scale * ds * Q(b, h, i, c);
        rdv[((size_t)(b * nkv + kh) * S + j) * d + c] += pr[j] * G(b, h, i, c);
      }
    }
  }
  // kernels
  std::vector<float> o(B * T * nh * d, NAN), lse(B * nh * T, NAN), dqv(B * nh * T * d, NAN), dkv_(B * nkv * S * d, NAN), dvv(B * nkv * S * d, NAN), delta(B * nh * T, NAN);
  std::vector<int> seg(P.seg);
  SdpaArgs p{};
  p.b = B; p.nh = nh; p.nkv = nkv; p.t = T; p.s = S; p.d = d; p.past = P.past; p.nseg = seg.size(); p.scale = scale; p.causal = P.causal; p.act = DT_F32;
  std::vector<long long> tq = {(long long)T * nh * d, d, (long long)nh * d, 1}, tk = {(long long)nkv * cap * d, (long long)cap * d, d, 1};
  p.q = op(q.data(), tq, DT_F32); p.k = op(k.data(), tk, DT_F32); p.v = op(v.data(), tk, DT_F32);
  p.o = op(o.data(), tq, DT_F32); p.lse = op(lse.data(), {(long long)nh * T, T, 1}, DT_F32);
  p.dout = op(go.data(), tq, DT_F32);
  p.keymask = P.padmask ? op(km.data(), {S, 1}, DT_BOOL) : op(nullptr, {1}, DT_F32);
  p.seg = seg.empty() ? op(nullptr, {1}, DT_F32) : op(seg.data(), {1}, DT_I32);
  p.delta = op(delta.data(), {1}, DT_F32);
  p.dq = op(nullptr, {1}, DT_F32); p.dk = p.dq; p.dv = p.dq;
  launch(fwd, p, (long long)B * nh * ((T + BQ - 1) / BQ), fwd_smem<float, BQ, BK>(d));
  // out back to [B, nh, T, d]
  std::vector<float> oc(B * nh * T * d);
  for (int b = 0; b < B; b++) for (int h = 0; h < nh; h++) for (int i = 0; i < T; i++) for (int c = 0; c < d; c++) oc[(((size_t)b * nh + h) * T + i) * d + c] = o[((b * T + i) * nh + h) * d + c];
  cmp("out", oc, ro, 1e-5);
  cmp("lse", lse, rl, 1e-5);
  launch(sdpa_bwd_delta_f32, p, (B * nh * T + 7) / 8, 0);
  p.dq = op(dqv.data(), {(long long)nh * T * d, (long long)T * d, d, 1}, DT_F32);
  launch(dq, p, (long long)B * nh * ((T + BQ - 1) / BQ), bwd_smem<float, BQ, BK>(d));
  p.dq = op(nullptr, {1}, DT_F32);
  std::vector<long long> tg = {(long long)nkv * S * d, (long long)S * d, d, 1};
  p.dk = op(dkv_.data(), tg, DT_F32); p.dv = op(dvv.data(), tg, DT_F32);
  launch(dkv, p, (long long)B * nkv * ((S + BK - 1) / BK), bwd_smem<float, BQ, BK>(d));
  cmp("dq", dqv, rdq, 1e-5); cmp("dk", dkv_, rdk, 1e-5); cmp("dv", dvv, rdv, 1e-5);
}

/** The tensor-core forward (bf16) against the naive double reference on bf16-representable inputs. */
static void run_tc(const Prob& P, Kern fwd, const char* name, Kern dq = nullptr, Kern dkv = nullptr, unsigned long long dkvSmem = 0) {
  printf("%s (tensor cores, bf16) B%d nh%d nkv%d T%d S%d d%d causal%d past%d pad%d seg%zu\n", name, P.B, P.nh, P.nkv, P.T, P.S, P.d, P.causal, P.past, P.padmask, P.seg.size());
  std::mt19937 rng(7); std::normal_distribution<float> nd;
  int B = P.B, nh = P.nh, nkv = P.nkv, T = P.T, S = P.S, d = P.d, cap = S + 8, g = nh / nkv;
  std::vector<__nv_bfloat16> q(B * T * nh * d), k(B * nkv * cap * d), v(B * nkv * cap * d), go(B * T * nh * d);
  for (auto* a : {&q, &k, &v, &go}) for (auto& x : *a) x = __float2bfloat16_rn(nd(rng));
  std::vector<unsigned char> km(B * S, 1);
  if (P.padmask) for (int j = 0; j < std::min(S, P.past + 5); j++) km[(B - 1) * S + j] = 0;
  if (P.padmask && S > 140) for (int j = 64; j < 128; j++) km[j] = 0;   // batch row 0: a whole key tile of padding
  auto Q = [&](int b, int h, int i, int c) { return (double)__bfloat162float(q[((b * T + i) * nh + h) * d + c]); };
  auto K = [&](int b, int h, int j, int c) { return (double)__bfloat162float(k[((b * nkv + h) * cap + j) * d + c]); };
  auto V = [&](int b, int h, int j, int c) { return (double)__bfloat162float(v[((b * nkv + h) * cap + j) * d + c]); };
  auto G = [&](int b, int h, int i, int c) { return (double)__bfloat162float(go[((b * T + i) * nh + h) * d + c]); };
  double scale = 1 / std::sqrt((double)d);
  auto visible = [&](int b, int i, int j) {
    int lo = 0, hi = S;
    if (!P.seg.empty()) { int gg = 0; while (P.seg[gg + 1] <= i) gg++; lo = P.seg[gg]; hi = P.seg[gg + 1]; }
    if (P.causal) hi = std::min(hi, P.past + i + 1);
    return j >= lo && j < hi && km[b * S + j];
  };
  std::vector<double> ro(B * nh * T * d, 0), rl(B * nh * T), rdq(B * nh * T * d, 0), rdk(B * nkv * S * d, 0), rdv(B * nkv * S * d, 0);
  for (int b = 0; b < B; b++) for (int h = 0; h < nh; h++) for (int i = 0; i < T; i++) {
    int kh = h / g; std::vector<double> sc(S, -INFINITY); double m = -INFINITY;
    for (int j = 0; j < S; j++) if (visible(b, i, j)) { double x = 0; for (int c = 0; c < d; c++) x += Q(b, h, i, c) * K(b, kh, j, c); sc[j] = x * scale; m = std::max(m, sc[j]); }
    size_t row = ((size_t)(b * nh + h) * T + i);
    if (m == -INFINITY) { rl[row] = INFINITY; continue; }
    double l = 0; for (int j = 0; j < S; j++) if (sc[j] > -INFINITY) l += std::exp(sc[j] - m);
    rl[row] = m + std::log(l);
    for (int c = 0; c < d; c++) { double x = 0; for (int j = 0; j < S; j++) if (sc[j] > -INFINITY) x += std::exp(sc[j] - rl[row]) * V(b, kh, j, c); ro[row * d + c] = x; }
    if (!dq) continue;
    double D = 0; for (int c = 0; c < d; c++) D += G(b, h, i, c) * ro[row * d + c];
    for (int j = 0; j < S; j++) if (sc[j] > -INFINITY) {
      double pr = std::exp(sc[j] - rl[row]), dp = 0; for (int c = 0; c < d; c++) dp += G(b, h, i, c) * V(b, kh, j, c);
      double ds = pr * (dp - D);
      for (int c = 0; c < d; c++) {
        rdq[row * d + c] += scale * ds * K(b, kh, j, c);
        rdk[((size_t)(b * nkv + kh) * S + j) * d + c] += scale * ds * Q(b, h, i, c);
        rdv[((size_t)(b * nkv + kh) * S + j) * d + c] += pr * G(b, h, i, c);
      }
    }
  }
  std::vector<__nv_bfloat16> o(B * T * nh * d, __nv_bfloat16{0x7FC0});   // NaN poison
  std::vector<float> lse(B * nh * T, NAN);
  std::vector<int> seg(P.seg);
  SdpaArgs p{};
  p.b = B; p.nh = nh; p.nkv = nkv; p.t = T; p.s = S; p.d = d; p.past = P.past; p.nseg = seg.size(); p.scale = scale; p.causal = P.causal; p.act = DT_BF16;
  std::vector<long long> tq = {(long long)T * nh * d, d, (long long)nh * d, 1}, tk = {(long long)nkv * cap * d, (long long)cap * d, d, 1};
  p.q = op(q.data(), tq, DT_BF16); p.k = op(k.data(), tk, DT_BF16); p.v = op(v.data(), tk, DT_BF16);
  p.o = op(o.data(), tq, DT_BF16); p.lse = op(lse.data(), {(long long)nh * T, T, 1}, DT_F32);
  p.keymask = P.padmask ? op(km.data(), {S, 1}, DT_BOOL) : op(nullptr, {1}, DT_F32);
  p.seg = seg.empty() ? op(nullptr, {1}, DT_F32) : op(seg.data(), {1}, DT_I32);
  p.dout = p.dq = p.dk = p.dv = p.delta = op(nullptr, {1}, DT_F32);
  launch(fwd, p, (long long)B * nh * ((T + FBQ - 1) / FBQ), flash_smem(d), FNT);
  std::vector<float> oc(B * nh * T * d);
  for (int b = 0; b < B; b++) for (int h = 0; h < nh; h++) for (int i = 0; i < T; i++) for (int c = 0; c < d; c++) oc[(((size_t)b * nh + h) * T + i) * d + c] = __bfloat162float(o[((b * T + i) * nh + h) * d + c]);
  cmp("out", oc, ro, 1e-2);
  cmp("lse", lse, rl, 1e-4);
  if (!dq) return;
  std::vector<float> delta(B * nh * T, NAN);
  p.dout = op(go.data(), tq, DT_BF16);
  p.delta = op(delta.data(), {1}, DT_F32);
  launch(sdpa_bwd_delta_f32, p, (B * nh * T + 7) / 8, 0);
  {   // the tensor-core rows' delta (16-byte loads) against the f32 one
    std::vector<float> delta2(B * nh * T, NAN), ref(delta.begin(), delta.end());
    std::vector<double> refd(ref.begin(), ref.end());
    SdpaArgs p2 = p;
    p2.delta = op(delta2.data(), {1}, DT_F32);
    launch(d == 64 ? sdpa_bwd_delta_tc_bf16_d64 : sdpa_bwd_delta_tc_bf16_d128, p2, ((long long)B * nh * T * (d / 8) + NT - 1) / NT, 0);
    cmp("dlt", delta2, refd, 1e-5);
  }
  const __nv_bfloat16 nan{0x7FC0};
  std::vector<__nv_bfloat16> gq(B * nh * T * d, nan), gk(B * nkv * S * d, nan), gv(B * nkv * S * d, nan);
  p.dq = op(gq.data(), {(long long)nh * T * d, (long long)T * d, d, 1}, DT_BF16);
  launch(dq, p, (long long)B * nh * ((T + FBQ - 1) / FBQ), d == 64 ? bwd_dq_smem<64>() : bwd_dq_smem<128>(), FNT);
  std::vector<long long> tgk = {(long long)nkv * S * d, (long long)S * d, d, 1};
  p.dq = op(nullptr, {1}, DT_F32);
  p.dk = op(gk.data(), tgk, DT_BF16); p.dv = op(gv.data(), tgk, DT_BF16);
  launch(dkv, p, (long long)B * nkv * ((S + FBK - 1) / FBK), dkvSmem, FNT);
  auto f = [](const std::vector<__nv_bfloat16>& x) { std::vector<float> r(x.size()); for (size_t i = 0; i < x.size(); i++) r[i] = __bfloat162float(x[i]); return r; };
  cmp("dq", f(gq), rdq, 2e-2); cmp("dk", f(gk), rdk, 2e-2); cmp("dv", f(gv), rdv, 2e-2);
}


/** The paged decode (bf16) against a double reference: shuffled block table, lengths across chunks, GQA. */
template <int D, int G>
static void run_decode(int B, int nh, int nkv, int bs, std::vector<int> lens, Kern chunk, Kern combine, const char* name) {
  printf("decode %s B%d nh%d nkv%d d%d bs%d\n", name, B, nh, nkv, D, bs);
  std::mt19937 rng(11); std::normal_distribution<float> nd;
  int maxLen = *std::max_element(lens.begin(), lens.end()), maxBlocks = (maxLen + bs - 1) / bs + 1, blocks = B * maxBlocks + 3;
  std::vector<int> perm(blocks); for (int i = 0; i < blocks; i++) perm[i] = i; std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<int> table(B * maxBlocks); for (int i = 0; i < B * maxBlocks; i++) table[i] = perm[i];
  std::vector<__nv_bfloat16> q(B * nh * D), k((size_t)blocks * nkv * bs * D), v(k.size());
  for (auto* a : {&q, &k, &v}) for (auto& x : *a) x = __float2bfloat16_rn(nd(rng));
  double scale = 1 / std::sqrt((double)D);
  std::vector<double> ro(B * nh * D, 0), rl(B * nh);
  auto at = [&](int b, int g, int j) { return ((size_t)(table[b * maxBlocks + j / bs] * nkv + g) * bs + j % bs) * D; };
  for (int b = 0; b < B; b++) for (int h = 0; h < nh; h++) {
    int g = h / (nh / nkv), n = lens[b]; std::vector<double> sc(n); double m = -INFINITY;
    for (int j = 0; j < n; j++) { double x = 0; for (int c = 0; c < D; c++) x += (double)__bfloat162float(q[(b * nh + h) * D + c]) * __bfloat162float(k[at(b, g, j) + c]); sc[j] = x * scale; m = std::max(m, sc[j]); }
    if (n == 0) { rl[b * nh + h] = INFINITY; continue; }
    double l = 0; for (int j = 0; j < n; j++) l += std::exp(sc[j] - m);
    rl[b * nh + h] = m + std::log(l);
    for (int c = 0; c < D; c++) { double x = 0; for (int j = 0; j < n; j++) x += std::exp(sc[j] - m) / l * __bfloat162float(v[at(b, g, j) + c]); ro[(b * nh + h) * D + c] = x; }
  }
  int chunks = (maxBlocks * bs + DCH - 1) / DCH;
  std::vector<float> pm((size_t)B * nh * chunks * 2, NAN), po((size_t)B * nh * chunks * D, NAN), out(B * nh * D, NAN), lse(B * nh, NAN);
  DecodeArgs p{};
  p.b = B; p.nh = nh; p.nkv = nkv; p.bs = bs; p.maxBlocks = maxBlocks; p.chunks = chunks; p.scale = scale;
  p.q = op(q.data(), {(long long)nh * D, D, D, 1}, DT_BF16);
  p.k = op(k.data(), {(long long)nkv * bs * D, (long long)bs * D, D, 1}, DT_BF16); p.v = op(v.data(), {(long long)nkv * bs * D, (long long)bs * D, D, 1}, DT_BF16);
  p.table = op(table.data(), {maxBlocks, 1}, DT_I32); p.lens = op(lens.data(), {1}, DT_I32);
  p.pm = op(pm.data(), {1}, DT_F32); p.po = op(po.data(), {1}, DT_F32);
  p.out = op(out.data(), {(long long)nh * D, D, D, 1}, DT_F32); p.lse = op(lse.data(), {nh, 1, 1}, DT_F32);
  typedef void (*DKern)(const DecodeArgs);
  auto go = [&](DKern kern, int gx, int gy, int gz, unsigned long long shm) {
    emu_dyn_smem = (unsigned)shm;
    for (int z = 0; z < gz; z++) for (int y = 0; y < gy; y++) for (int x = 0; x < gx; x++) {
      std::barrier<> bb(DNT); block_bar = &bb;
      for (int w = 0; w < 8; w++) warp_bar[w] = new std::barrier<>(32);
      memset(smem, 0xFF, sizeof smem);
      std::vector<std::thread> ts;
      for (int t = 0; t < DNT; t++) ts.emplace_back([&, t] { threadIdx.x = t; blockIdx.x = x; blockIdx.y = y; blockIdx.z = z; kern(p); });
      for (auto& t : ts) t.join();
      for (int w = 0; w < 8; w++) delete warp_bar[w];
    }
  };
  go((DKern)(void*)chunk, B * nkv, chunks, nh / nkv / G, decode_smem(G, D));
  go((DKern)(void*)combine, B * nh, 1, 1, 0);
  std::vector<double> rlf(rl);
  cmp("out", out, ro, 1e-2);
  cmp("lse", lse, rlf, 1e-4);
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "decode") {
    typedef void (*K2)(const SdpaArgs);
    run_decode<64, 4>(2, 8, 2, 16, {37, 300}, (K2)(void*)sdpa_decode_bf16_d64_g4, (K2)(void*)sdpa_decode_combine_bf16_d64, "GQA 4");
    run_decode<128, 8>(2, 8, 1, 64, {0, 513}, (K2)(void*)sdpa_decode_bf16_d128_g8, (K2)(void*)sdpa_decode_combine_bf16_d128, "MQA 8, an empty sequence");
    run_decode<128, 1>(1, 2, 2, 16, {1}, (K2)(void*)sdpa_decode_bf16_d128_g1, (K2)(void*)sdpa_decode_combine_bf16_d128, "MHA, one token");
    printf("%d failures\n", fails);
    return fails != 0;
  }
  if (argc > 1) {   // the tensor-core backward only
    run_tc({1, 4, 1, 70, 70, 64, true, 0, true, {}}, sdpa_fwd_tc_bf16_d64, "causal padded MQA", sdpa_bwd_tc_dq_bf16_d64, sdpa_bwd_tc_dkv_bf16_d64, bwd_dkv_smem<64, 64>());
    run_tc({1, 2, 2, 31, 100, 128, true, 69, false, {}}, sdpa_fwd_tc_bf16_d128, "prefill after cache", sdpa_bwd_tc_dq_bf16_d128, sdpa_bwd_tc_dkv_bf16_d128, bwd_dkv_smem<128, 32>());
    run_tc({1, 2, 1, 130, 200, 64, false, 0, true, {}}, sdpa_fwd_tc_bf16_d64, "bidirectional padded, a padding tile", sdpa_bwd_tc_dq_bf16_d64, sdpa_bwd_tc_dkv_bf16_d64, bwd_dkv_smem<64, 64>());
    run_tc({1, 2, 1, 130, 130, 128, false, 0, false, {0, 1, 60, 130}}, sdpa_fwd_tc_bf16_d128, "segments", sdpa_bwd_tc_dq_bf16_d128, sdpa_bwd_tc_dkv_bf16_d128, bwd_dkv_smem<128, 32>());
    run_tc({1, 4, 2, 200, 200, 64, true, 0, false, {0, 70, 200}}, sdpa_fwd_tc_bf16_d64, "causal segments GQA", sdpa_bwd_tc_dq_bf16_d64, sdpa_bwd_tc_dkv_bf16_d64, bwd_dkv_smem<64, 64>());
    printf("%d failures\n", fails);
    return fails != 0;
  }
  run_tc({1, 4, 1, 70, 70, 64, true, 0, true, {}}, sdpa_fwd_tc_bf16_d64, "causal padded MQA");
  run_tc({2, 2, 1, 1, 77, 128, true, 76, true, {}}, sdpa_fwd_tc_bf16_d128, "decode padded");
  run_tc({1, 2, 2, 31, 100, 128, true, 69, false, {}}, sdpa_fwd_tc_bf16_d128, "prefill after cache");
  run_tc({1, 2, 1, 130, 200, 64, false, 0, true, {}}, sdpa_fwd_tc_bf16_d64, "bidirectional padded, a padding tile");
  run_tc({1, 2, 1, 130, 130, 64, false, 0, false, {}}, sdpa_fwd_tc_bf16_d64, "bidirectional");
  run_tc({1, 2, 1, 130, 130, 128, false, 0, false, {0, 1, 60, 130}}, sdpa_fwd_tc_bf16_d128, "segments");
  run_tc({1, 2, 2, 200, 200, 64, true, 0, false, {0, 70, 200}}, sdpa_fwd_tc_bf16_d64, "causal segments");
  run_tc({1, 1, 1, 128, 256, 128, true, 128, false, {}}, sdpa_fwd_tc_bf16_d128, "causal, tile multiples");
  run<64, 64>({1, 4, 2, 70, 70, 16, true, 0, true, {}}, sdpa_fwd_f32_d64, sdpa_bwd_dq_f32_d64, sdpa_bwd_dkv_f32_d64, "causal padded GQA");
  run<64, 64>({2, 2, 1, 1, 77, 20, true, 76, true, {}}, sdpa_fwd_f32_d64, sdpa_bwd_dq_f32_d64, sdpa_bwd_dkv_f32_d64, "decode padded MQA");
  run<64, 64>({1, 2, 2, 31, 100, 80, true, 69, false, {}}, sdpa_fwd_f32_d128, sdpa_bwd_dq_f32_d128, sdpa_bwd_dkv_f32_d128, "prefill after cache d80");
  run<64, 64>({1, 2, 1, 130, 130, 8, false, 0, false, {0, 1, 60, 130}}, sdpa_fwd_f32_d64, sdpa_bwd_dq_f32_d64, sdpa_bwd_dkv_f32_d64, "segments");
  run<64, 64>({1, 2, 2, 130, 130, 8, true, 0, false, {0, 70, 130}}, sdpa_fwd_f32_d64, sdpa_bwd_dq_f32_d64, sdpa_bwd_dkv_f32_d64, "causal segments");
  run<32, 32>({1, 2, 1, 40, 75, 33, false, 0, true, {}}, sdpa_fwd_f32_d256, sdpa_bwd_dq_f32_d256, sdpa_bwd_dkv_f32_d256, "bidirectional padded d256 kernel");
  printf("%d failures\n", fails);
  return fails != 0;
}
