#!/usr/bin/env bash
# Host emulation of nf4.cu's tensor-core kernels (no GPU): the GEMV variants (tc, tc8, tc2, tcs, tcp, tcp2, tca; bf16,
# split-K included) and the mma.sync GEMM / dx variants (tc, tcs, tcw) run with each block's threads as std::threads
# (see run.sh and mma.cuh here), against a double reference over the exactly dequantized weights. A logic check
# (fragment layouts, swizzles, cp.async stages, tails), not a GPU test: no timing, races or register limits.
# Usage: kernels/src/test/cuda/emulate/nf4.sh   (g++ 12+, C++20)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); cuda=$here/../../../main/cuda; tmp=$(mktemp -d)
cp "$here/tensor.cuh" "$here/mma.cuh" "$cuda/codes.cuh" "$here/nf4_harness.cpp" "$tmp/"
# without wmma (no host emulation): the "fused dequant GEMM (tensor cores)" section and its include
sed -e '/^#include <mma.h>/d' -e '/^using namespace nvcuda;/d' \
    -e '/^\/\/ -* fused dequant GEMM (tensor cores)/,/^\/\/ -* GEMM on mma.sync/{/GEMM on mma.sync/!d}' "$cuda/nf4.cu" > "$tmp/nf4.cu"
g++ -std=c++20 -O1 -w -o "$tmp/harness" "$tmp/nf4_harness.cpp" -lpthread
"$tmp/harness"
