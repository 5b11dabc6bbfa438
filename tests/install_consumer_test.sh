#!/usr/bin/env bash
# Installs the built library into a temporary prefix, then configures, builds and runs
# tests/consumer against it: once as a CPU-only user (whose program must not need any CUDA
# library) and, where the CUDA backend was built, once with the cuda component.
# Usage: install_consumer_test.sh BUILD_DIR WORK_DIR HAS_CUDA CXX_COMPILER GENERATOR
#        [EXTRA_CMAKE_ARGS...]
set -euo pipefail
build=$1 work=$2 has_cuda=$3 cxx=$4 generator=$5
shift 5
source_dir="$(cd "$(dirname "$0")" && pwd)/consumer"
prefix="$work/prefix"
fail() { echo "FAIL: $*" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" ||
  { cat "$work/install.log"; fail "cmake --install $build"; }

# The core's exported targets name no CUDA library, by target or by path.
targets=$(find "$prefix" -name 'cnngraphTargets*.cmake')
[ -n "$targets" ] || fail "no cnngraphTargets*.cmake under $prefix"
if grep -Ei 'cuda|cudnn|cublas' $targets; then fail "the core's exported targets mention CUDA"; fi

configure_and_build() {  # NAME [ARGS...]
  local name=$1
  shift
  cmake -S "$source_dir" -B "$work/$name" -G "$generator" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_PREFIX_PATH="$prefix" "$@" >"$work/$name.configure.log" 2>&1
}
cuda_libraries='libcudart|libcublas|libcudnn'

# The CPU-only user: builds with the compiler's default standard, runs, needs no CUDA.
configure_and_build cpu "$@" || { cat "$work/cpu.configure.log"; fail "configuring the consumer"; }
cmake --build "$work/cpu" >"$work/cpu.build.log" 2>&1 ||
  { tail -40 "$work/cpu.build.log"; fail "building the consumer"; }
if readelf -d "$work/cpu/consumer" | grep NEEDED | grep -E "$cuda_libraries"; then
  fail "the CPU-only consumer links a CUDA library"
fi
output=$("$work/cpu/consumer") || fail "the consumer failed: $output"
echo "$output"
if [ "$has_cuda" = ON ]; then
  grep -q 'link cnngraph::cuda' <<<"$output" ||
    fail "Device::cuda() without the cuda component does not say to link cnngraph::cuda"
fi

# Nor does it link protobuf or ONNX; the user of the onnx component gets the importer.
if readelf -d "$work/cpu/consumer" | grep NEEDED | grep -E 'libprotobuf|libonnx'; then
  fail "the CPU-only consumer links protobuf or ONNX"
fi
if [ "${CNNGRAPH_HAS_ONNX:-OFF}" = ON ]; then
  configure_and_build onnx -DCONSUMER_WITH_ONNX=ON "$@" ||
    { cat "$work/onnx.configure.log"; fail "configuring the consumer with COMPONENTS onnx"; }
  cmake --build "$work/onnx" >"$work/onnx.build.log" 2>&1 ||
    { tail -40 "$work/onnx.build.log"; fail "building the consumer with cnngraph::onnx"; }
  output=$("$work/onnx/onnx_consumer") || fail "the ONNX consumer failed: $output"
  echo "$output"
elif configure_and_build onnx -DCONSUMER_WITH_ONNX=ON "$@"; then
  fail "find_package(cnngraph COMPONENTS onnx) succeeded without the ONNX importer"
fi

if [ "$has_cuda" != ON ]; then
  # A package without the CUDA backend refuses the component at configure time.
  if configure_and_build cuda -DCONSUMER_WITH_CUDA=ON "$@"; then
    fail "find_package(cnngraph COMPONENTS cuda) succeeded without the CUDA backend"
  fi
  echo "PASS (no CUDA backend in this build)"
  exit 0
fi

# The user who asks for the CUDA backend gets it.
configure_and_build cuda -DCONSUMER_WITH_CUDA=ON "$@" ||
  { cat "$work/cuda.configure.log"; fail "configuring the consumer with COMPONENTS cuda"; }
cmake --build "$work/cuda" >"$work/cuda.build.log" 2>&1 ||
  { tail -40 "$work/cuda.build.log"; fail "building the consumer with cnngraph::cuda"; }
readelf -d "$work/cuda/consumer" | grep NEEDED | grep -q libcudart ||
  fail "the consumer of cnngraph::cuda does not link libcudart"
# It runs where the CUDA libraries can be loaded (a GPU is not needed).
if ! ldd "$work/cuda/consumer" | grep -q 'not found'; then
  output=$("$work/cuda/consumer") || fail "the CUDA consumer failed: $output"
  echo "$output"
  if grep -q 'link cnngraph::cuda' <<<"$output"; then
    fail "linking cnngraph::cuda did not give the program the CUDA backend"
  fi
fi
echo PASS
