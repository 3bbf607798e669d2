// swiglu.cu: SwiGLU's gating, the CUDA side of dev.jomni.tensor.ops.Swiglu.
//   swiglu_fwd (SwigluArgs {rows, n, gate, up, out}): out = cast(silu(gate))·up, silu(g) = g·σ(g).
//   swiglu_bwd (SwigluArgs {rows, n, gate, up, dout, dgate, dup, hasDgate, hasDup}): where asked for,
//     dgate = cast(dout·up)·cast(silu'(gate)), silu'(g) = σ(g)(1 + g(1 − σ(g))); dup = dout·cast(silu(gate)).
//   cast = rounding to the dtype, where gate.silu().mul(up) and its autograd round. Computed in f64 (UnaryOp's
//   formulas, σ without overflow either side), so the results equal the CPU reference's except where its
//   Math.exp and CUDA's exp differ in the last double bit; the kernel is memory-bound, f64 costs nothing.
//   gate, up, dgate, dup [rows, n] with unit column stride and any row stride (the halves of one
//   [rows, 2I] gate_up need no copy); out, dout contiguous [rows, n]. A thread per element, grid-stride,
//   block 256.
// Launcher: dev.jomni.cuda.CudaSwiglu. Reference: dev.jomni.tensor.cpu.CpuSwiglu.
#include "rows.cuh"

struct SwigluArgs {       // 424 bytes
  long long rows, n;
  Operand gate, up, out, dgate, dup;   // forward: gate, up, out; backward: gate, up, dout, dgate, dup
  int hasDgate, hasDup;
};
static_assert(sizeof(SwigluArgs) == 424, "SwigluArgs layout (CudaSwiglu writes it)");

__device__ __forceinline__ double sigmoid(double x) {
  return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
}

extern "C" __global__ void __launch_bounds__(ROW_BLOCK) swiglu_fwd(const SwigluArgs p) {
  const long long n = p.n, total = p.rows * n, step = (long long)gridDim.x * blockDim.x;
  const int type = p.gate.dtype;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
    const long long row = i / n, j = i - row * n;
    const double g = load<double>(p.gate, row * p.gate.stride[0] + j), u = load<double>(p.up, row * p.up.stride[0] + j);
    store<double>(p.out, row * p.out.stride[0] + j, round_to<double>(type, g * sigmoid(g)) * u);
  }
}

extern "C" __global__ void __launch_bounds__(ROW_BLOCK) swiglu_bwd(const SwigluArgs p) {
  const long long n = p.n, total = p.rows * n, step = (long long)gridDim.x * blockDim.x;
  const int type = p.gate.dtype;
  const Operand &dout = p.out;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
    const long long row = i / n, j = i - row * n;
    const double d = load<double>(dout, row * dout.stride[0] + j), g = load<double>(p.gate, row * p.gate.stride[0] + j);
    const double s = sigmoid(g);
    if (p.hasDgate) {
      const double u = load<double>(p.up, row * p.up.stride[0] + j);
      store<double>(p.dgate, row * p.dgate.stride[0] + j, round_to<double>(type, d * u) * round_to<double>(type, s * (1 + g * (1 - s))));
    }
    if (p.hasDup) store<double>(p.dup, row * p.dup.stride[0] + j, d * round_to<double>(type, g * s));
  }
}
