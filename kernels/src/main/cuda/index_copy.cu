// index_copy.cu: IndexCopy.Kernels on CUDA: dst row index[i] <- src row i, bit for bit, for the writes of a
//   step's keys and values into a paged KV cache.
//   index_copy_u{16,4,2,1}(CopyArgs {rows, units, bound, dst, src, index}): rows of `units` units of U bytes
//     (the launcher picks the widest U dividing the row's bytes and both addresses); a thread per unit,
//     grid-stride over rows * units. A row whose index lies outside [0, bound) is skipped (check_index has
//     recorded it, raised at the next synchronisation). block 256.
// Launcher: dev.jomni.cuda.CudaIndexCopy. Reference: dev.jomni.tensor.cpu.CpuIndexCopy.
#include "tensor.cuh"

constexpr int THREADS = 256;

struct CopyArgs {         // 264 bytes
  long long rows, units, bound;
  Operand dst, src, index;
};
static_assert(sizeof(CopyArgs) == 264, "the layout Launch writes");

template <typename U>
__device__ __forceinline__ void index_copy_body(const CopyArgs& p) {
  const long long total = p.rows * p.units, step = (long long)gridDim.x * THREADS;
  for (long long e = (long long)blockIdx.x * THREADS + threadIdx.x; e < total; e += step) {
    const long long i = e / p.units, u = e - i * p.units;
    const long long at = load_index(p.index, i * p.index.stride[0]);
    if (at < 0 || at >= p.bound) continue;
    ((U*)p.dst.ptr)[at * p.units + u] = ((const U*)p.src.ptr)[e];
  }
}

extern "C" __global__ void __launch_bounds__(THREADS) index_copy_u16(const CopyArgs p) { index_copy_body<uint4>(p); }
extern "C" __global__ void __launch_bounds__(THREADS) index_copy_u4(const CopyArgs p) { index_copy_body<unsigned int>(p); }
extern "C" __global__ void __launch_bounds__(THREADS) index_copy_u2(const CopyArgs p) { index_copy_body<unsigned short>(p); }
extern "C" __global__ void __launch_bounds__(THREADS) index_copy_u1(const CopyArgs p) { index_copy_body<unsigned char>(p); }
