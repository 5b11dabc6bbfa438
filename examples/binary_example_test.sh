#!/usr/bin/env bash
# CTest: the trainer's --binary network trains a few batches, saves its checkpoint and its
# inference graph, and the saved graph runs in fashion_mnist_inference --graph with the
# accuracy the trainer reported, while --weights refuses the binary checkpoint. Usage: binary_example_test.sh BUILD_EXAMPLES_DIR SCRATCH_DIR
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
  --batch-size 64 --checkpoint "$scratch/checkpoint.safetensors" \
  --plot "$scratch/plot.png" --save-graph "$scratch/trained.safetensors" | tee "$scratch/train.log"
grep -q "training the binary reference network" "$scratch/train.log"
[[ -s "$scratch/checkpoint.safetensors" ]] || { echo "no checkpoint written"; exit 1; }
"$bin/fashion_mnist_inference" --data-dir "$data" --graph "$scratch/trained.safetensors" \
  | tee "$scratch/inference.log"
trained=$(sed -n 's/^final test accuracy: \([0-9.]*\)%$/\1/p' "$scratch/train.log")
inferred=$(sed -n 's/.*test accuracy \([0-9.]*\)%$/\1/p' "$scratch/inference.log")
echo "trainer: $trained%, saved graph: $inferred%"
if [[ -z "$trained" || "$trained" != "$inferred" ]]; then
  echo "the saved binary graph's accuracy differs from the trainer's"
  exit 1
fi
# The float network's --weights path refuses the binary checkpoint, naming --graph.
if "$bin/fashion_mnist_inference" --data-dir "$data" --weights "$scratch/checkpoint.safetensors" \
  2>"$scratch/refused.log"; then
  echo "fashion_mnist_inference ran the float network on a binary checkpoint"
  exit 1
fi
grep -q -- "--graph" "$scratch/refused.log" || { cat "$scratch/refused.log"; exit 1; }
