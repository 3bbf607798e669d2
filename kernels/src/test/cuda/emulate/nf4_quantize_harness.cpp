// Host emulation harness for nf4_quantize.cu (see nf4_quantize.sh): the three kernels with each block's threads as
// std::threads, and the op's host step between them (Nf4Weight.quantize: the device sum when exact in any order,
// else the absmax summed in order). Reads a weight, writes every part, for Nf4QuantizeCheck.java to compare with the
// Java host quantizer.
//   harness DTYPE ROWS COLS GRID IN OUT:  DTYPE bf16 | f16 | f32 | f64; IN the raw little-endian elements; GRID the
//   blocks kernel's grid (small: the grid-stride loop wraps); the weight 16-byte aligned for even ROWS (the 16-byte loads),
//   one element past for odd ones (the scalar loads); OUT: packed, qabs (u8), nabs (f32), offset (f32), sum
//   path (u8: 1 device, 0 host).
#include "tensor.cuh"
#include <cfloat>
#include <fstream>
#include <string>
#define __constant__
#undef __shared__
#define __shared__ static   // blocks run one after another: a static is one block's shared memory
struct uint4 { unsigned x, y, z, w; };
inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
inline float __fsub_rn(float a, float b) { volatile float r = a - b; return r; }
inline float __fdiv_rn(float a, float b) { volatile float r = a / b; return r; }
inline float __double2float_rn(double d) { volatile float r = (float)d; return r; }
inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
inline int __ffs(unsigned x) { return __builtin_ffs((int)x); }
#include "nf4_quantize.cu"

template <typename F>
static void launch(F kernel, long long grid, int threads = Q_THREADS) {      // warp barriers for 8 warps: the shuffling kernels' 256
  gridDim.x = (unsigned)grid;
  blockDim.x = threads;
  for (long long blk = 0; blk < grid; blk++) {
    std::barrier<> bb(threads); block_bar = &bb;
    for (int w = 0; w < 8; w++) warp_bar[w] = new std::barrier<>(32);
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; t++)
      ts.emplace_back([&, t] { threadIdx.x = t; blockIdx.x = (unsigned)blk; kernel(); });
    for (auto& t : ts) t.join();
    for (int w = 0; w < 8; w++) delete warp_bar[w];
  }
}

// bitsandbytes' signed dynamic map as Nf4Weight.dynamicMap() gives it is read from the input's tail (256 floats).
int main(int argc, char** argv) {
  if (argc != 7) { fprintf(stderr, "usage: harness DTYPE ROWS COLS GRID IN OUT\n"); return 2; }
  const std::string dt = argv[1];
  const long long rows = atoll(argv[2]), cols = atoll(argv[3]), n = rows * cols, blocks = n / 64, nested = (blocks + 255) / 256;
  const long long grid = atoll(argv[4]);
  const int size = dt == "f64" ? 8 : dt == "f32" ? 4 : 2;
  std::ifstream in(argv[5], std::ios::binary);
  std::vector<char> w(n * size + 32);
  const uintptr_t base = ((uintptr_t)w.data() + 15) & ~(uintptr_t)15;
  char* wp = (char*)base + (rows % 2 ? size : 0);                     // odd rows: one element past 16 bytes (scalar loads)
  std::vector<float> map(256);
  in.read(wp, n * size);
  in.read((char*)map.data(), 256 * 4);
  if (!in) { fprintf(stderr, "short input\n"); return 2; }
  const int vec = ((uintptr_t)wp & 15) == 0;
  std::vector<uint8_t> packed(n / 2, 0xAB), qabs(blocks, 0xCD);
  std::vector<float> amax(blocks, NAN), nabs(nested, NAN);
  double stats[2] = {NAN, NAN};
  if (dt == "bf16") launch([&] { nf4_quantize_blocks_bf16(packed.data(), amax.data(), (const __nv_bfloat16*)wp, n, vec); }, grid);
  else if (dt == "f16") launch([&] { nf4_quantize_blocks_f16(packed.data(), amax.data(), (const __half*)wp, n, vec); }, grid);
  else if (dt == "f32") launch([&] { nf4_quantize_blocks_f32(packed.data(), amax.data(), (const float*)wp, n, vec); }, grid);
  else launch([&] { nf4_quantize_blocks_f64(packed.data(), amax.data(), (const double*)wp, n, vec); }, grid);
  launch([&] { nf4_absmax_stats(stats, amax.data(), blocks); }, 1, STATS_THREADS);
  // Nf4Weight.exactInAnyOrder, else Nf4Weight.sum: the host's sequential double sum.
  const int lowest = (int)stats[1];
  const bool exact = !std::isfinite(stats[0]) || stats[0] == 0 || (lowest < 0x7fffffff && stats[0] < std::ldexp(1.0, lowest + 52));
  double sum = stats[0];
  if (!exact) {
    sum = 0;
    for (float a : amax) sum += a;
  }
  volatile float offset = (float)(sum / (double)blocks);
  launch([&] { nf4_quantize_absmax(qabs.data(), nabs.data(), amax.data(), map.data(), (double)offset, blocks); }, std::min<long long>(4, (nested + 7) / 8));
  std::ofstream out(argv[6], std::ios::binary);
  out.write((const char*)packed.data(), packed.size());
  out.write((const char*)qabs.data(), qabs.size());
  out.write((const char*)nabs.data(), nabs.size() * 4);
  float o = offset;
  out.write((const char*)&o, 4);
  const uint8_t path = exact;
  out.write((const char*)&path, 1);
  return out ? 0 : 1;
}
