#!/usr/bin/env bash
# CTest: the trainer's --binary network trains a few batches and saves its checkpoint and its
# inference graph, and fashion_mnist_inference --weights refuses the binary checkpoint. (The
# --graph path is saved_graph_example_test.sh's, on the float network; evaluating all 10,000
# test images twice more would double this test's time under the sanitizers.) Usage: binary_example_test.sh BUILD_EXAMPLES_DIR SCRATCH_DIR
# [DATA_DIR]. Without the Fashion-MNIST files it exits 77 (skipped).
set -euo pipefail
bin="$1"
scratch="$2"
data="${3:-/usr/share/datasets/fashion-mnist}"
if [[ ! -f "$data/train-images-idx3-ubyte.gz" || ! -f "$data/t10k-images-idx3-ubyte.gz" ]]; then
  echo "skipped: no Fashion-MNIST in $data (install dataset-fashion-mnist)"
  exit 77
fi
rm -rf "$scratch"
mkdir -p "$scratch"
"$bin/fashion_mnist_train" --binary --data-dir "$data" --epochs 1 --train-images 256 \
  --test-images 500 --batch-size 64 --checkpoint "$scratch/checkpoint.safetensors" \
  --plot "$scratch/plot.png" --save-graph "$scratch/trained.safetensors" | tee "$scratch/train.log"
grep -q "training the binary reference network" "$scratch/train.log"
[[ -s "$scratch/checkpoint.safetensors" ]] || { echo "no checkpoint written"; exit 1; }
[[ -s "$scratch/trained.safetensors" ]] || { echo "no saved graph written"; exit 1; }
# The float network's --weights path refuses the binary checkpoint, naming --graph.
if "$bin/fashion_mnist_inference" --data-dir "$data" --weights "$scratch/checkpoint.safetensors" \
  2>"$scratch/refused.log"; then
  echo "fashion_mnist_inference ran the float network on a binary checkpoint"
  exit 1
fi
grep -q -- "--graph" "$scratch/refused.log" || { cat "$scratch/refused.log"; exit 1; }
