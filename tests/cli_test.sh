#!/usr/bin/env bash
# CTest cases of the cnngraph program (docs/cli.md) on the build tree's binary:
#   cli_test.sh CASE CNNGRAPH CLI_CHECK FILES_DIR [ONNX_MODELS_DIR PYTHON]
# FILES_DIR holds what `cli_check make` wrote (the fixture CliFiles); ONNX_MODELS_DIR what
# tests/onnx/make_models.py wrote (the fixture OnnxModels); PYTHON has onnx and numpy.
set -uo pipefail
case_name="$1"
cnngraph="$2"
check="$3"
files="$4"
onnx="${5:-}"
python="${6:-python3}"
scratch="$files/$case_name"
rm -rf "$scratch"
mkdir -p "$scratch"
failures=0

# expect RC WORDS COMMAND...: the command exits with RC and its output contains WORDS.
expect() {
  local want="$1" words="$2"
  shift 2
  local output rc
  output="$("$@" 2>&1)"
  rc=$?
  if [[ "$rc" != "$want" || "$output" != *"$words"* ]]; then
    echo "FAILED: $* exited $rc (expected $want) and printed:"
    echo "$output"
    echo "(expected it to contain: $words)"
    failures=$((failures + 1))
  else
    echo "ok: $* -> $rc"
  fi
}

model="$files/classifier.safetensors"
features="$files/features.safetensors"
case "$case_name" in
  Help)
    expect 0 "commands:" "$cnngraph" --help
    expect 0 "--precision" "$cnngraph" run --help
    expect 0 "--per-layer" "$cnngraph" bench --help
    expect 0 "Graph::describe" "$cnngraph" describe --help
    expect 0 "saved graph" "$cnngraph" convert --help
    expect 2 "usage: cnngraph" "$cnngraph"
    ;;
  RunWritesWhatTheLibraryComputes)
    expect 0 "output result 0: (2, 5)" "$cnngraph" run "$model" --device reference \
      --input "$files/input.npy" --output "$scratch/out.npy"
    expect 0 "equal to the library's" "$check" compare "$model" "$files/input.npy" \
      "$scratch/out.npy" nchw
    # A 4-D output in both layouts, from inputs in both layouts.
    for layout in nchw nhwc; do
      input="$files/input.npy"
      [[ "$layout" == nhwc ]] && input="$files/input_nhwc.npy"
      expect 0 "(2, " "$cnngraph" run "$features" --device reference --layout "$layout" \
        --input "$input" --output "$scratch/features_$layout.npy"
      expect 0 "equal to the library's" "$check" compare "$features" "$input" \
        "$scratch/features_$layout.npy" "$layout"
    done
    # float16 input files are read (the values then differ by float16's rounding).
    expect 0 "output result 0: (2, 5)" "$cnngraph" run "$model" --device reference \
      --input "$files/input_f16.npy" --output "$scratch/out_f16.npy"
    expect 0 "largest difference" "$check" same "$scratch/out.npy" "$scratch/out_f16.npy" 1e-2
    ;;
  RunOnRandomInputPrintsTheTop5)
    expect 0 "top-5 of image 0:" "$cnngraph" run "$model" --shape 3,8,8 --batch 3
    expect 0 "input n3h8w8c3" "$cnngraph" run "$model" --shape 8,8,3 --layout nhwc --batch 3 \
      --device cpu --precision bf16
    ;;
  Describe)
    expect 0 "convolution" "$cnngraph" describe "$model" --shape 3,8,8
    expect 0 "memory" "$cnngraph" describe "$model" --shape 3,8,8
    expect 0 "not compiled" "$cnngraph" describe "$model"
    expect 0 "digraph" "$cnngraph" describe "$model" --dot
    ;;
  Bench)
    expect 0 "images/s" "$cnngraph" bench "$model" --shape 3,8,8 --batch 2 --warmup 1 \
      --iterations 3
    expect 0 "cold start" "$cnngraph" bench "$model" --shape 3,8,8 --iterations 2 \
      --device reference
    expect 0 "(sum)" "$cnngraph" bench "$model" --shape 3,8,8 --per-layer --iterations 3 \
      --warmup 0
    ;;
  Onnx)
    # The model's own numpy reference (make_models.py) and the program agree, in (N, K) and
    # in NCHW.
    for name in lenet conv_relu_pool; do
      expect 0 "output y" "$cnngraph" run "$onnx/$name.onnx" --device reference \
        --input "$onnx/$name.input.npy" --output "$scratch/$name.npy"
      expect 0 "largest difference" "$check" same "$scratch/$name.npy" \
        "$onnx/$name.expected.npy" 1e-4
    done
    # Convolutions and pools with ONNX pads convert; the saved graph computes what the ONNX
    # model does, bit for bit.
    for name in lenet conv_relu_pool; do
      expect 0 "--shape" "$cnngraph" convert "$onnx/$name.onnx" "$scratch/$name.safetensors"
      expect 0 "wrote" "$cnngraph" run "$scratch/$name.safetensors" --device reference \
        --input "$onnx/$name.input.npy" --output "$scratch/$name.saved.npy"
      expect 0 "largest difference 0 " "$check" same "$scratch/$name.npy" \
        "$scratch/$name.saved.npy"
    done
    # A model of fully connected layers converts; the saved graph computes what the ONNX
    # model does, bit for bit.
    "$python" "$(dirname "$0")/cli_onnx_model.py" "$scratch" || exit 1
    expect 0 "--shape 12" "$cnngraph" convert "$scratch/mlp.onnx" "$scratch/mlp.safetensors"
    expect 0 "wrote" "$cnngraph" run "$scratch/mlp.onnx" --device reference \
      --input "$scratch/mlp.input.npy" --output "$scratch/mlp.npy"
    expect 0 "largest difference" "$check" same "$scratch/mlp.npy" "$scratch/mlp.expected.npy" 1e-5
    expect 0 "wrote" "$cnngraph" run "$scratch/mlp.safetensors" --device reference \
      --input "$scratch/mlp.input.npy" --output "$scratch/mlp.saved.npy"
    expect 0 "largest difference 0 " "$check" same "$scratch/mlp.npy" "$scratch/mlp.saved.npy"
    expect 0 "top-5" "$cnngraph" run "$scratch/mlp.safetensors" --shape 12 --batch 2
    expect 0 "top-5" "$cnngraph" run "$onnx/lenet.onnx" --batch 4
    expect 0 "images/s" "$cnngraph" bench "$onnx/lenet.onnx" --iterations 2 --warmup 0
    expect 0 "fully_connected" "$cnngraph" describe "$onnx/lenet.onnx"
    expect 1 "the model's input 'x' is n2h28w28c1" "$cnngraph" run "$onnx/lenet.onnx" \
      --input "$files/input.npy"
    expect 1 "unsupported parts" "$cnngraph" run "$onnx/unsupported.onnx"
    expect 1 "malformed.onnx" "$cnngraph" run "$onnx/malformed.onnx"
    expect 1 "is a saved graph already" "$cnngraph" convert "$model" "$scratch/x.safetensors"
    ;;
  Errors)
    expect 1 "no such file" "$cnngraph" run "$files/absent.safetensors" --shape 3,8,8
    expect 1 "not_a_model.txt" "$cnngraph" run "$files/not_a_model.txt" --shape 3,8,8
    expect 1 "neither a saved graph" "$cnngraph" run "$files/binary.bin" --shape 3,8,8
    expect 1 "truncated.npy: not a usable .npy file" "$cnngraph" run "$model" \
      --input "$files/truncated.npy"
    expect 1 "no such file" "$cnngraph" run "$model" --input "$files/absent.npy"
    expect 1 "4 dimensions" "$cnngraph" run "$model" --input "$files/three_dims.npy"
    expect 1 "5 feature channels" "$cnngraph" run "$model" --input "$files/wrong_channels.npy"
    expect 2 "does not record its input size" "$cnngraph" run "$model"
    expect 2 "unknown command" "$cnngraph" frobnicate
    expect 2 "--device must be" "$cnngraph" run "$model" --device gpu
    expect 2 "--precision must be" "$cnngraph" run "$model" --precision f64
    expect 2 "--layout must be" "$cnngraph" run "$model" --layout chwn
    expect 2 "--batch must be" "$cnngraph" run "$model" --shape 3,8,8 --batch 0
    expect 2 "failed to parse" "$cnngraph" run "$model" --shape 3,8,8 --batch many
    expect 2 "--shape" "$cnngraph" run "$model" --shape 3,x,8
    expect 2 "no-such-option" "$cnngraph" run "$model" --no-such-option
    expect 2 "no MODEL" "$cnngraph" bench
    expect 2 "unexpected argument" "$cnngraph" describe "$model" extra
    expect 2 "--iterations must be" "$cnngraph" bench "$model" --shape 3,8,8 --iterations 0
    expect 2 "convert takes" "$cnngraph" convert "$model"
    expect 2 "not used with it" "$cnngraph" run "$model" --input "$files/input.npy" --batch 2
    ;;
  *)
    echo "unknown case $case_name"
    exit 2
    ;;
esac
if ((failures > 0)); then
  echo "$failures check(s) failed"
  exit 1
fi
