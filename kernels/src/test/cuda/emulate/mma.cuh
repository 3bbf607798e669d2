// host emulation of kernels/src/main/cuda/mma.cuh (same functions, same fragment layouts): each lane
// publishes its registers or row address in a per-warp buffer, the warp meets at a barrier, and every lane
// gathers what the hardware would hand it. cp.async copies are queued per thread and performed only by the
// cp_async_wait that retires their group, so a read before its wait sees the poisoned shared memory.
#pragma once
#include <cstdint>
#include <cstring>
#include <cmath>
#include <vector>

inline uint32_t emu_reg[8][32][8];
inline const uint16_t* emu_row[8][32];

inline float emu_bf(uint32_t h16) { uint32_t u = h16 << 16; float f; memcpy(&f, &u, 4); return f; }

template <typename E>
inline void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  static_assert(sizeof(E) == 2, "bf16 only in the emulation");
  const int w = threadIdx.x >> 5, l = threadIdx.x & 31, g = l >> 2, t = l & 3;
  for (int i = 0; i < 4; i++) emu_reg[w][l][i] = a[i];
  emu_reg[w][l][4] = b0;
  emu_reg[w][l][5] = b1;
  __syncwarp();
  auto half = [](uint32_t r, int k) { return emu_bf(k & 1 ? r >> 16 : r & 0xFFFF); };
  auto A = [&](int row, int k) { return half(emu_reg[w][(row & 7) * 4 + ((k & 7) >> 1)][(row >> 3) + 2 * (k >> 3)], k); };
  auto B = [&](int k, int n) { return half(emu_reg[w][n * 4 + ((k & 7) >> 1)][4 + (k >> 3)], k); };
  float d[4];
  for (int e = 0; e < 4; e++) {
    const int row = g + 8 * (e >> 1), col = 2 * t + (e & 1);
    float s = c[e];
    for (int k = 0; k < 16; k++) s += A(row, k) * B(k, col);
    d[e] = s;
  }
  __syncwarp();
  for (int e = 0; e < 4; e++) c[e] = d[e];
}

inline void emu_ldsm(uint32_t (&r)[4], const void* p, bool trans) {
  const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
  emu_row[w][l] = (const uint16_t*)p;
  __syncwarp();
  for (int i = 0; i < 4; i++) {
    if (!trans) {
      const uint16_t* row = emu_row[w][8 * i + (l >> 2)];
      r[i] = row[2 * (l & 3)] | ((uint32_t)row[2 * (l & 3) + 1] << 16);
    } else {
      const uint16_t *ra = emu_row[w][8 * i + 2 * (l & 3)], *rb = emu_row[w][8 * i + 2 * (l & 3) + 1];
      r[i] = ra[l >> 2] | ((uint32_t)rb[l >> 2] << 16);
    }
  }
  __syncwarp();
}
inline void ldsm_x4(uint32_t (&r)[4], const void* p) { emu_ldsm(r, p, false); }
inline void ldsm_x4_trans(uint32_t (&r)[4], const void* p) { emu_ldsm(r, p, true); }

struct EmuCopy { void* dst; const void* src; int bytes; };
inline thread_local std::vector<EmuCopy> emu_open;
inline thread_local std::vector<std::vector<EmuCopy>> emu_groups;
inline void cp_async16(void* dst, const void* src, int bytes) {
  if (((uintptr_t)dst | (uintptr_t)src) & 15) { fprintf(stderr, "cp.async misaligned\n"); abort(); }
  emu_open.push_back({dst, src, bytes});
}
inline void cp_async_commit() { emu_groups.push_back(emu_open); emu_open.clear(); }
template <int N> inline void cp_async_wait() {
  while ((int)emu_groups.size() > N) {
    for (auto& c : emu_groups.front()) {
      memcpy(c.dst, c.src, c.bytes);                        // src-size bytes, the rest of the 16 zero-filled
      memset((char*)c.dst + c.bytes, 0, 16 - c.bytes);
    }
    emu_groups.erase(emu_groups.begin());
  }
}

template <typename E> inline uint32_t pack2(float lo, float hi) {
  return __float2bfloat16_rn(lo).b | ((uint32_t)__float2bfloat16_rn(hi).b << 16);
}

struct float2 { float x, y; };
inline float2 make_float2(float x, float y) { return {x, y}; }
template <typename E> inline float2 unpack2(uint32_t v) { return {emu_bf(v & 0xFFFF), emu_bf(v >> 16)}; }
inline float exp2_ftz(float x) { float y = std::exp2(x); return y < 0x1p-126f ? 0.f : y; }
inline void fence_proxy_async() {}
struct uint4 { uint32_t x, y, z, w; };
struct uint2 { uint32_t x, y; };
