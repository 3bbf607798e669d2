// codes.cuh: the numbers the Java side passes to the kernels to name an op, a dtype or an element-wise
//   kind. Each constant PREFIX_NAME equals the `code` of the Java constant NAME:
//     DT_      dev.jomni.tensor.DType.code          UNARY_   dev.jomni.tensor.UnaryOp.code
//     BINARY_  dev.jomni.tensor.BinaryOp.code       REDUCE_  dev.jomni.tensor.ReduceOp.code
//     EW_      dev.jomni.cuda.CudaBackend's FILL, COPY, ... (elementwise.cu's kinds)
//   dev.jomni.cuda.CodesTest (CPU, in CI) parses this file and fails when a constant is missing on either
//   side or a number differs, so an op added in Java without its kernel case (or renumbered) is caught
//   there, not as a wrong result on the GPU. Keep one `NAME = number` per entry.
#pragma once

enum DTypeCode {
  DT_F64 = 0, DT_F32 = 1, DT_BF16 = 2, DT_F16 = 3, DT_I64 = 4, DT_I32 = 5, DT_U8 = 6, DT_BOOL = 7
};

enum UnaryCode {
  UNARY_NEG = 0, UNARY_EXP = 1, UNARY_LOG = 2, UNARY_SQRT = 3, UNARY_RSQRT = 4, UNARY_TANH = 5, UNARY_SIGMOID = 6,
  UNARY_SILU = 7, UNARY_GELU_ERF = 8, UNARY_GELU_TANH = 9, UNARY_RELU = 10, UNARY_ABS = 11, UNARY_SIGN = 12,
  UNARY_AFFINE = 13, UNARY_POW = 14, UNARY_CLAMP = 15, UNARY_INSIDE = 16, UNARY_SILU_GRAD = 17,
  UNARY_GELU_ERF_GRAD = 18, UNARY_GELU_TANH_GRAD = 19
};

enum BinaryCode {
  BINARY_ADD = 0, BINARY_SUB = 1, BINARY_MUL = 2, BINARY_DIV = 3, BINARY_POW = 4, BINARY_MAXIMUM = 5,
  BINARY_MINIMUM = 6, BINARY_EQ = 7, BINARY_NE = 8, BINARY_LT = 9, BINARY_LE = 10, BINARY_GT = 11, BINARY_GE = 12,
  BINARY_AND = 13, BINARY_OR = 14
};

enum ReduceCode { REDUCE_SUM = 0, REDUCE_MAX = 1, REDUCE_MIN = 2, REDUCE_ARGMAX = 3, REDUCE_ARGMIN = 4 };

enum EwKind { EW_FILL = 0, EW_COPY = 1, EW_RAWCOPY = 2, EW_UNARY = 3, EW_BINARY = 4, EW_WHERE = 5 };
