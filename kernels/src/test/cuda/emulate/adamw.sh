#!/usr/bin/env bash
# Host emulation of adamw_step.cu (no GPU): each block's threads run as std::threads with real barriers for
# __syncthreads and the warp shuffles (see run.sh), the kernels against a C++ port of CpuAdamWStep (the same f32
# operations in the same order) and the default kernels against the _v1 ones, expecting equal bits; and the
# table-driven quantize against quantize_v1's binary search around every code, midpoint and bucket edge and over
# a sweep of [-1, 1]. A logic check (tails, alignment fallbacks, the grid-stride walk, the tables), not a GPU
# test: no timing, races or register limits.
# Usage: kernels/src/test/cuda/emulate/adamw.sh   (g++ 12+, C++20)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); cuda=$here/../../../main/cuda; tmp=$(mktemp -d)
cp "$here/tensor.cuh" "$cuda/codes.cuh" "$here/adamw_harness.cpp" "$cuda/adamw_step.cu" "$tmp/"
g++ -std=c++20 -O1 -w -o "$tmp/harness" "$tmp/adamw_harness.cpp" -lpthread
"$tmp/harness" "$@"
