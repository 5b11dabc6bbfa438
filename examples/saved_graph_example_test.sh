#!/usr/bin/env bash
# CTest: the trainer's --save-graph file runs in fashion_mnist_inference --graph with the
# accuracy the trainer reported for it, and in the cnngraph program (tools/cli, beside the
# examples in the build tree, where it is built). Usage: saved_graph_example_test.sh
# BUILD_EXAMPLES_DIR SCRATCH_DIR [DATA_DIR]. Without the Fashion-MNIST files (Debian's
# dataset-fashion-mnist) it exits 77, which CTest reports as skipped.
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
"$bin/fashion_mnist_train" --data-dir "$data" --epochs 1 --train-images 640 --test-images 2000 \
  --batch-size 64 --checkpoint "$scratch/checkpoint.safetensors" --plot "$scratch/plot.png" \
  --save-graph "$scratch/trained.safetensors" | tee "$scratch/train.log"
"$bin/fashion_mnist_inference" --data-dir "$data" --graph "$scratch/trained.safetensors" \
  --test-images 2000 \
  | tee "$scratch/inference.log"
trained=$(sed -n 's/^final test accuracy: \([0-9.]*\)%$/\1/p' "$scratch/train.log")
inferred=$(sed -n 's/.*test accuracy \([0-9.]*\)%$/\1/p' "$scratch/inference.log")
echo "trainer: $trained%, saved graph: $inferred%"
if [[ -z "$trained" || "$trained" != "$inferred" ]]; then
  echo "the saved graph's accuracy differs from the trainer's"
  exit 1
fi
cli="$bin/../tools/cli/cnngraph"
if [[ -x "$cli" ]]; then
  "$cli" run "$scratch/trained.safetensors" --shape 1,28,28 --batch 2 | tee "$scratch/cli.log"
  grep -q "top-5" "$scratch/cli.log" || { echo "cnngraph run printed no top-5"; exit 1; }
else
  echo "no cnngraph program in this build: the runner part is left out"
fi
