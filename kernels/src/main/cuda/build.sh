#!/usr/bin/env bash
# Compiles every kernels/src/main/cuda/*.cu into OUT_DIR/NAME.fatbin (sm_80 and sm_90a machine code,
# compute_90 PTX for newer GPUs), called by Maven in generate-resources. A file is rebuilt only when
# it or a header beside it is newer than its fatbin. Without nvcc the build goes on without kernels.
# Quiet unless something happens: one line when kernels were compiled, one on a clean build when
# nvcc is missing, nvcc's own output when it fails.
# Usage: build.sh SRC_DIR OUT_DIR
set -euo pipefail
src=${1:?usage: build.sh SRC_DIR OUT_DIR}; out=${2:?usage: build.sh SRC_DIR OUT_DIR}
nvcc=${NVCC:-$(command -v nvcc || true)}
[ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
if [ -z "$nvcc" ]; then   # said on a clean build only (the output folder is new), not on every one
  [ -d "$out" ] || echo "[kernels] nvcc not found (PATH, NVCC, /usr/local/cuda/bin): CUDA kernels not built; the CUDA backend will be unavailable in this build." >&2
  mkdir -p "$out"
  exit 0
fi
mkdir -p "$out"
gencode=(-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90a,code=sm_90a -gencode arch=compute_90,code=compute_90)
built=0
for cu in "$src"/*.cu; do
  name=$(basename "$cu" .cu)
  fatbin="$out/$name.fatbin"
  if [ -f "$fatbin" ] && [ -z "$(find "$src" -maxdepth 1 \( -name "$name.cu" -o -name '*.cuh' \) -newer "$fatbin" -print -quit)" ]; then
    continue
  fi
  "$nvcc" -O3 -std=c++17 --threads 2 -fatbin "${gencode[@]}" -o "$fatbin.tmp" "$cu"
  mv "$fatbin.tmp" "$fatbin"
  built=$((built + 1))
done
if [ "$built" -gt 0 ]; then
  echo "[kernels] CUDA kernels built ($built of $(ls "$src"/*.cu | wc -l) files, $("$nvcc" --version | sed -n 's/.*\(release [0-9.]*\).*/\1/p'))"
fi
