// elementwise.cu: the CUDA backend's element-wise primitives over strided operands (stride 0 broadcasts).
//   ew_f32 / ew_f64(EwArgs {kind, op, a, b, n, shape, out, x, y, c}): for each of the n elements of shape
//   (row-major linear index i decomposed into coordinates, one offset per operand from its strides):
//     FILL     out = a
//     COPY     out = x                       (converted through the compute type)
//     RAWCOPY  out = x                       (same dtype, bits copied)
//     UNARY    out = unary(op, x, a, b)      (op: dev.jomni.tensor.UnaryOp code, codes.cuh)
//     BINARY   out = binary(op, x, y)        (op: dev.jomni.tensor.BinaryOp code, codes.cuh)
//     WHERE    out = c != 0 ? x : y
//   ew_flat_f32 / ew_flat_f64(FlatArgs {kind, op, a, b, n, out, x, y, c}): the same over one axis (what a
//   contiguous op merges to): operands are {pointer, stride, dtype}, out's stride 1; fewer bytes to pass.
//   Computed in float (ew_f32) when no operand is f64/i64/i32, else in double (ew_f64); stored with the
//   CPU reference's rounding (tensor.cuh). out may alias x or y element for element (dst += src).
//   Launch: block 256, grid-stride loop; grid = min(ceil(n / 256), 8 * SMs). dst += src where dst's
//   elements overlap is add_into_ordered, below.
// Launcher: dev.jomni.cuda.CudaBackend (fill, copy, unary, binary, where, addInto). Reference: CpuBackend.
#include "tensor.cuh"

__device__ __forceinline__ float m_exp(float x) { return expf(x); }
__device__ __forceinline__ double m_exp(double x) { return exp(x); }
__device__ __forceinline__ float m_log(float x) { return logf(x); }
__device__ __forceinline__ double m_log(double x) { return log(x); }
__device__ __forceinline__ float m_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double m_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float m_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double m_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float m_erf(float x) { return erff(x); }
__device__ __forceinline__ double m_erf(double x) { return erf(x); }
__device__ __forceinline__ float m_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double m_pow(double x, double y) { return pow(x, y); }
__device__ __forceinline__ float m_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double m_abs(double x) { return fabs(x); }

template <typename T> __device__ __forceinline__ bool is_nan(T x) { return x != x; }

template <typename T> __device__ __forceinline__ T sigmoid(T x) {   // no overflow either side
  return x >= (T)0 ? (T)1 / ((T)1 + m_exp(-x)) : m_exp(x) / ((T)1 + m_exp(x));
}

// Java's Math.max / Math.min: NaN wins.
template <typename T> __device__ __forceinline__ T j_max(T x, T y) { return is_nan(x) || is_nan(y) ? (x != x ? x : y) : (x > y ? x : y); }
template <typename T> __device__ __forceinline__ T j_min(T x, T y) { return is_nan(x) || is_nan(y) ? (x != x ? x : y) : (x < y ? x : y); }

template <typename T>
__device__ T unary(int op, T x, T a, T b) {
  const T SQRT_2_OVER_PI = (T)0.7978845608028654, INV_SQRT_2 = (T)0.7071067811865476, INV_SQRT_2PI = (T)0.3989422804014327;
  switch (op) {
    case UNARY_NEG: return -x;
    case UNARY_EXP: return m_exp(x);
    case UNARY_LOG: return m_log(x);
    case UNARY_SQRT: return m_sqrt(x);
    case UNARY_RSQRT: return (T)1 / m_sqrt(x);
    case UNARY_TANH: return m_tanh(x);
    case UNARY_SIGMOID: return sigmoid(x);
    case UNARY_SILU: return x * sigmoid(x);
    case UNARY_GELU_ERF: return (T)0.5 * x * ((T)1 + m_erf(x * INV_SQRT_2));
    case UNARY_GELU_TANH: return (T)0.5 * x * ((T)1 + m_tanh(SQRT_2_OVER_PI * (x + (T)0.044715 * x * x * x)));
    case UNARY_RELU: return x > (T)0 ? x : (is_nan(x) ? x : (T)0);         // NaN stays NaN
    case UNARY_ABS: return m_abs(x);
    case UNARY_SIGN: return x > (T)0 ? (T)1 : (x < (T)0 ? (T)-1 : x);      // keeps ±0 and NaN
    case UNARY_AFFINE: return a * x + b;
    case UNARY_POW: return m_pow(x, a);
    case UNARY_CLAMP: return j_min(j_max(x, a), b);
    case UNARY_INSIDE: return x >= a && x <= b ? (T)1 : (T)0;
    case UNARY_SILU_GRAD: { T s = sigmoid(x); return s * ((T)1 + x * ((T)1 - s)); }
    case UNARY_GELU_ERF_GRAD: return (T)0.5 * ((T)1 + m_erf(x * INV_SQRT_2)) + x * m_exp((T)-0.5 * x * x) * INV_SQRT_2PI;
    case UNARY_GELU_TANH_GRAD: {
      T u = SQRT_2_OVER_PI * (x + (T)0.044715 * x * x * x), t = m_tanh(u);
      return (T)0.5 * ((T)1 + t) + (T)0.5 * x * ((T)1 - t * t) * SQRT_2_OVER_PI * ((T)1 + (T)3 * (T)0.044715 * x * x);
    }
    default: return (T)NAN;                                        // a code without a case: visible, not silent
  }
}

template <typename T>
__device__ T binary(int op, T x, T y) {
  switch (op) {
    case BINARY_ADD: return x + y;
    case BINARY_SUB: return x - y;
    case BINARY_MUL: return x * y;
    case BINARY_DIV: return x / y;
    case BINARY_POW: return m_pow(x, y);
    case BINARY_MAXIMUM: return is_nan(x) || is_nan(y) ? (T)NAN : (x > y ? x : y);
    case BINARY_MINIMUM: return is_nan(x) || is_nan(y) ? (T)NAN : (x < y ? x : y);
    case BINARY_EQ: return x == y ? (T)1 : (T)0;
    case BINARY_NE: return x != y ? (T)1 : (T)0;
    case BINARY_LT: return x < y ? (T)1 : (T)0;
    case BINARY_LE: return x <= y ? (T)1 : (T)0;
    case BINARY_GT: return x > y ? (T)1 : (T)0;
    case BINARY_GE: return x >= y ? (T)1 : (T)0;
    case BINARY_AND: return x != (T)0 && y != (T)0 ? (T)1 : (T)0;
    case BINARY_OR: return x != (T)0 || y != (T)0 ? (T)1 : (T)0;
    default: return (T)NAN;
  }
}

__device__ __forceinline__ void raw_copy(const Operand& out, long long oo, const Operand& x, long long xo) {
  switch (dtype_bytes(out.dtype)) {
    case 8: ((long long*)out.ptr)[oo] = ((const long long*)x.ptr)[xo]; break;
    case 4: ((int*)out.ptr)[oo] = ((const int*)x.ptr)[xo]; break;
    case 2: ((short*)out.ptr)[oo] = ((const short*)x.ptr)[xo]; break;
    default: out.ptr[oo] = x.ptr[xo]; break;
  }
}

template <typename T>
__device__ __forceinline__ void ew(int kind, int op, const Shape& s, const Operand& out, const Operand& x, const Operand& y,
                                   const Operand& c, double a, double b, long long n) {
  const long long step = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    long long oo = 0, xo = 0, yo = 0, co = 0;
    if (s.rank == 1) {
      oo = i * out.stride[0]; xo = i * x.stride[0]; yo = i * y.stride[0]; co = i * c.stride[0];
    } else {
      long long r = i;
      for (int d = s.rank - 1; d >= 0; d--) {
        long long size = s.size[d], q = r / size, k = r - q * size;
        r = q;
        oo += k * out.stride[d]; xo += k * x.stride[d]; yo += k * y.stride[d]; co += k * c.stride[d];
      }
    }
    switch (kind) {
      case EW_FILL: store<T>(out, oo, (T)a); break;
      case EW_COPY: store<T>(out, oo, load<T>(x, xo)); break;
      case EW_RAWCOPY: raw_copy(out, oo, x, xo); break;
      case EW_UNARY: store<T>(out, oo, unary<T>(op, load<T>(x, xo), (T)a, (T)b)); break;
      case EW_BINARY: store<T>(out, oo, binary<T>(op, load<T>(x, xo), load<T>(y, yo))); break;
      case EW_WHERE: store<T>(out, oo, load<T>(c, co) != (T)0 ? load<T>(x, xo) : load<T>(y, yo)); break;
    }
  }
}

// One struct parameter: a launch's cost grows with the number of parameters (dev.jomni.cuda.Launch).
struct EwArgs {           // 424 bytes
  int kind, op;
  double a, b;
  long long n;
  Shape s;
  Operand out, x, y, c;
};

struct FlatOperand {      // 24 bytes
  char* ptr;
  long long stride;
  int dtype, pad;
};

struct FlatArgs {         // 128 bytes
  int kind, op;
  double a, b;
  long long n;
  FlatOperand out, x, y, c;
};

extern "C" __global__ void __launch_bounds__(256) ew_f32(const EwArgs p) {
  ew<float>(p.kind, p.op, p.s, p.out, p.x, p.y, p.c, p.a, p.b, p.n);
}

extern "C" __global__ void __launch_bounds__(256) ew_f64(const EwArgs p) {
  ew<double>(p.kind, p.op, p.s, p.out, p.x, p.y, p.c, p.a, p.b, p.n);
}

__device__ __forceinline__ Operand flat(const FlatOperand& f) {
  Operand o;
  o.ptr = f.ptr;
  o.dtype = f.dtype;
  o.stride[0] = f.stride;
  return o;
}

template <typename T>
__device__ __forceinline__ void ew_flat(const FlatArgs& p) {
  Shape s;
  s.size[0] = p.n;
  s.rank = 1;
  ew<T>(p.kind, p.op, s, flat(p.out), flat(p.x), flat(p.y), flat(p.c), p.a, p.b, p.n);
}

extern "C" __global__ void __launch_bounds__(256) ew_flat_f32(const FlatArgs p) { ew_flat<float>(p); }

extern "C" __global__ void __launch_bounds__(256) ew_flat_f64(const FlatArgs p) { ew_flat<double>(p); }



// add_into_ordered(AddIntoArgs {shape, parallel, outer, inner, dst, src}): dst += src where dst's elements
//   overlap (sliding windows: conv2d's backward). The host orders the axes so that the first `parallel`
//   ones (outer = their element count) never reach a shared element; one thread per such slice walks the
//   other axes (inner elements) in row-major order, so elements that share a destination add up in the
//   CPU's order. Double arithmetic, rounded to dst's dtype at each step as CpuBackend.addInto.
//   Launch: block 256, grid = ceil(outer / 256).
struct AddIntoArgs {      // 256 bytes
  Shape s;
  int parallel;
  long long outer, inner;
  Operand dst, src;
};

extern "C" __global__ void __launch_bounds__(256) add_into_ordered(const AddIntoArgs p) {
  const long long slice = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (slice >= p.outer) return;
  long long r = slice, dbase = 0, sbase = 0;
  for (int d = p.parallel - 1; d >= 0; d--) {
    long long size = p.s.size[d], q = r / size, k = r - q * size;
    r = q;
    dbase += k * p.dst.stride[d];
    sbase += k * p.src.stride[d];
  }
  for (long long j = 0; j < p.inner; j++) {
    long long r2 = j, dofs = dbase, sofs = sbase;
    for (int d = p.s.rank - 1; d >= p.parallel; d--) {
      long long size = p.s.size[d], q = r2 / size, k = r2 - q * size;
      r2 = q;
      dofs += k * p.dst.stride[d];
      sofs += k * p.src.stride[d];
    }
    store<double>(p.dst, dofs, load<double>(p.dst, dofs) + load<double>(p.src, sofs));
  }
}

// dev.jomni.cuda.Launch writes these layouts field by field
static_assert(sizeof(Shape) == 72 && sizeof(Operand) == 80, "tensor.cuh layouts");
static_assert(sizeof(EwArgs) == 424 && sizeof(FlatArgs) == 128 && sizeof(AddIntoArgs) == 256, "elementwise.cu argument layouts");
