#!/usr/bin/env bash
# Host emulation of attention.cu (no GPU): each block's threads run as std::threads with real
# barriers for __syncthreads/__syncwarp and a shuffle buffer, against a naive double reference
# (f32 kernels; the bf16 tensor-core forward through mma.cuh's emulation; masks, GQA, strided q/out and
# cache-prefix k/v). A logic check, not a GPU test:
# it cannot see races that host scheduling hides, timing, or register/shared-memory limits.
# The sm_90a wgmma paths are not emulated (the emulation compiles the mma.sync fallback of the same kernels).
# Usage: kernels/src/test/cuda/emulate/run.sh [bwd | decode]   (g++ 12+, C++20)
#   no argument: the forwards and the SIMT backward; bwd: the tensor-core forward, delta and backward (bf16);
#   decode: the paged decode (bf16).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); cuda=$here/../../../main/cuda; tmp=$(mktemp -d)
cp "$here/tensor.cuh" "$here/mma.cuh" "$cuda/codes.cuh" "$here/harness.cpp" "$tmp/"
sed -e 's/asm volatile("mov.u32 %0, %%dynamic_smem_size;" : "=r"(have));/have = emu_dyn_smem;/' "$cuda/attention.cu" > "$tmp/attention.cu"
g++ -std=c++20 -O1 -w -o "$tmp/harness" "$tmp/harness.cpp" -lpthread
"$tmp/harness" "$@"
