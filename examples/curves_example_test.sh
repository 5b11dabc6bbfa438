#!/usr/bin/env bash
# CTest: the trainer writes its curves as CSV beside the chart (one row per epoch, the
# documented columns), the chart as a valid PNG where the build has PLplot (HAS_PLPLOT ON),
# and, with stderr not a terminal, plain progress lines with the elapsed time and the time
# left. Usage: curves_example_test.sh BUILD_EXAMPLES_DIR SCRATCH_DIR HAS_PLPLOT [DATA_DIR].
# Without the Fashion-MNIST files (Debian's dataset-fashion-mnist) it exits 77 (skipped).
set -euo pipefail
bin="$1"
scratch="$2"
has_plplot="$3"
data="${4:-/usr/share/datasets/fashion-mnist}"
if [[ ! -f "$data/train-images-idx3-ubyte.gz" || ! -f "$data/t10k-images-idx3-ubyte.gz" ]]; then
  echo "skipped: no Fashion-MNIST in $data (install dataset-fashion-mnist)"
  exit 77
fi
rm -rf "$scratch"
mkdir -p "$scratch"
fail() { echo "FAIL: $*"; exit 1; }
"$bin/fashion_mnist_train" --data-dir "$data" --epochs 2 --train-images 128 --test-images 200 \
  --batch-size 64 --checkpoint "$scratch/checkpoint.safetensors" --plot "$scratch/chart.png" \
  >"$scratch/stdout.log" 2>"$scratch/stderr.log" ||
  { cat "$scratch/stdout.log" "$scratch/stderr.log"; fail "the trainer failed"; }
cat "$scratch/stdout.log" "$scratch/stderr.log"

csv="$scratch/chart.csv"
[[ -f "$csv" ]] || fail "no $csv"
header="epoch,train_loss,train_accuracy,test_loss,test_accuracy,learning_rate,seconds,images_per_second"
[[ "$(head -1 "$csv")" == "$header" ]] || fail "header: $(head -1 "$csv")"
[[ "$(wc -l <"$csv")" -eq 3 ]] || fail "expected the header and 2 rows"
awk -F, 'NR > 1 && (NF != 8 || $1 != NR - 1 || $5 < 0 || $5 > 100 || $2 <= 0) { bad = 1 }
         END { exit bad }' "$csv" || fail "a row is malformed"
# The last row's test accuracy is the one the trainer reports.
final=$(sed -n 's/^final test accuracy: \([0-9.]*\)%$/\1/p' "$scratch/stdout.log")
last=$(tail -1 "$csv" | awk -F, '{ printf "%.2f", $5 }')
[[ -n "$final" && "$final" == "$last" ]] || fail "CSV's last test accuracy $last, trainer's $final"

if [[ "$has_plplot" == "ON" ]]; then
  [[ "$(head -c 8 "$scratch/chart.png" | od -An -tx1 | tr -d ' \n')" == "89504e470d0a1a0a" ]] ||
    fail "chart.png is not a PNG"
  grep -q "saved the chart" "$scratch/stdout.log" || fail "the trainer did not name its chart"
else
  [[ ! -e "$scratch/chart.png" ]] || fail "a chart without PLplot"
  grep -q "no chart written" "$scratch/stdout.log" || fail "the trainer did not say there is no chart"
fi

# stderr is a file here: plain lines, no carriage returns, a line at each epoch's end.
if grep -q $'\r' "$scratch/stderr.log"; then fail "carriage returns in a non-terminal log"; fi
for epoch in 1 2; do
  grep -Eq "^epoch $epoch: 2/2 \(100%\) .*elapsed [0-9]+:[0-9]{2}, left 0:00$" \
    "$scratch/stderr.log" || fail "no plain end-of-epoch line for epoch $epoch"
done
echo "curves, chart and progress lines as expected"
