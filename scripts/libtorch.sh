#!/usr/bin/env bash
# Installs libtorch for the learned estimator into $LIBTORCH (scripts/env.sh), once.
#
# libtorch comes from the PyTorch wheel on PyPI, the version `tch` expects. That wheel is
# built for CUDA and its dependencies pull in about 4 GB of NVIDIA libraries; the estimator
# runs on the CPU, so only the CPU part is kept:
#   - the wheel's headers, libc10, libtorch_cpu and libgomp;
#   - the two CUDA libraries that libtorch_cpu names as needed (the CUDA runtime and CUPTI,
#     about 13 MB from their own wheels); nothing calls into them on a machine without a GPU;
#   - libtorch.so made anew as a CPU-only library that just needs libtorch_cpu (the wheel's
#     own also needs libtorch_cuda, which needs cuBLAS, cuDNN and the rest).
# The result is about 0.5 GB; `ldd` on the binary shows no other CUDA library
# (chrono-ml's test `libtorch_loads_without_cuda` checks it).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

CUDA_RUNTIME=nvidia-cuda-runtime==13.0.96
CUDA_CUPTI=nvidia-cuda-cupti==13.0.85

if [ -f "$LIBTORCH/build-version" ] && [ "$(cat "$LIBTORCH/build-version")" = "$TORCH_VERSION" ]; then
  exit 0
fi
echo "setup: installing libtorch $TORCH_VERSION (CPU) into $LIBTORCH: a 530 MB download, once per machine" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$work" \
  "torch==$TORCH_VERSION" "$CUDA_RUNTIME" "$CUDA_CUPTI"
rm -rf "$LIBTORCH.partial"
mkdir -p "$LIBTORCH.partial/lib"
unzip -q "$work"/torch-"$TORCH_VERSION"-*.whl \
  'torch/include/*' 'torch/lib/libc10.so' 'torch/lib/libtorch_cpu.so' 'torch/lib/libgomp.so.1' \
  -d "$work/torch"
mv "$work/torch/torch/include" "$LIBTORCH.partial/include"
mv "$work/torch/torch/lib/"* "$LIBTORCH.partial/lib/"
for wheel in "$work"/nvidia_cuda_runtime-*.whl "$work"/nvidia_cuda_cupti-*.whl; do
  unzip -q -o "$wheel" '*/lib/libcudart.so.*' '*/lib/libcupti.so.*' -d "$work/cuda" 2>/dev/null || true
done
find "$work/cuda" -name 'libcudart.so.*' -o -name 'libcupti.so.*' | while read -r lib; do
  cp "$lib" "$LIBTORCH.partial/lib/"
done
for needed in libcudart.so.13 libcupti.so.13; do
  [ -f "$LIBTORCH.partial/lib/$needed" ] || { echo "setup: $needed not found in the CUDA wheels" >&2; exit 1; }
done
# A CPU-only libtorch.so, as PyTorch's own CPU builds have it: it only needs libtorch_cpu.
echo 'void chronodb_libtorch_cpu_only(void) {}' > "$work/shim.c"
cc -shared -fPIC -o "$LIBTORCH.partial/lib/libtorch.so" "$work/shim.c" \
  -Wl,-soname,libtorch.so -Wl,--no-as-needed -L"$LIBTORCH.partial/lib" -ltorch_cpu \
  -Wl,-rpath,'$ORIGIN'
echo "$TORCH_VERSION" > "$LIBTORCH.partial/build-version"
rm -rf "$LIBTORCH"
mv "$LIBTORCH.partial" "$LIBTORCH"
echo "setup: libtorch installed ($(du -sh "$LIBTORCH" | cut -f1))" >&2
