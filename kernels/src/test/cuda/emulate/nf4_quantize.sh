#!/usr/bin/env bash
# Host emulation of nf4_quantize.cu (no GPU): the three kernels with each block's threads as std::threads (see run.sh),
# driven by Nf4QuantizeCheck.java, which compares every part with the Java host quantizer (Nf4Weight.quantize on the
# CPU) byte for byte. A logic check (lanes, shuffles, tails, the grid-stride loops, the exact-sum test), not a GPU test.
# Usage: kernels/src/test/cuda/emulate/nf4_quantize.sh   (g++ 12+, C++20; JAVA_HOME a JDK 25; the tensor module compiled:
#   mvn -B -q -o -pl tensor compile)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); cuda=$here/../../../main/cuda; root=$here/../../../../..; tmp=$(mktemp -d)
cp "$here/tensor.cuh" "$cuda/codes.cuh" "$cuda/nf4_quantize.cu" "$here/nf4_quantize_harness.cpp" "$tmp/"
g++ -std=c++20 -O1 -w -o "$tmp/harness" "$tmp/nf4_quantize_harness.cpp" -lpthread
"${JAVA_HOME:?a JDK 25}/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp "$root/tensor/target/classes" \
    "$here/Nf4QuantizeCheck.java" "$tmp/harness" 2>&1 | grep -v "WARNING: Using incubator modules"
