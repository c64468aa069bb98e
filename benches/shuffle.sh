#!/usr/bin/env bash
# What block shuffling (`train.shuffle`, docs/pipeline.md) costs in test AUC against a full
# shuffle, on the generated two-stage funnel (pipelines/generate/two-stage.yaml, ROWS rows,
# default 500000) written three ways: in random order, sorted by `hour` (time of day: a weak
# effect on the click), and sorted by `user` (the hard case: a block holds few users, and a
# window of blocks few more). For each order, `funnel compare` runs the full shuffle, blocks of
# 1024 rows in windows of 16 (a window is 1/20 of the training rows, as a 2 GiB buffer is of a
# 40 GiB file) and blocks of 4096 in windows of one block, under seeds 1..SEEDS (default 3),
# 3 epochs each; the valid and test rows are carved at random from each file, so only the order
# of training differs. Prints each comparison's table and paired differences.
#   SEEDS=3 benches/shuffle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-3}
ROWS=${ROWS:-500000}
cargo build --release -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target/release/funnel generate pipelines/generate/two-stage.yaml --rows "$ROWS" --seed 3 --out "$work/random.csv" > /dev/null
# Sort on one column, keeping the header line (the generator writes plain comma-separated values).
sorted() {
  local col
  col=$(head -1 "$work/random.csv" | tr ',' '\n' | grep -nx "$1" | cut -d: -f1)
  { head -1 "$work/random.csv"; tail -n +2 "$work/random.csv" | sort -t, -k"$col","$col" -g -s; } > "$work/by-$1.csv"
}
sorted hour
sorted user
for order in random by-hour by-user; do
  echo "## rows in order: $order"
  base="pipelines/synthetic-two-stage.yaml@data.train.path=$work/$order.csv@train.epochs=3@train.early_stopping=null"
  target/release/funnel compare "$base" \
    "$base@train.shuffle={block_rows: 1024, buffer_rows: 16384}" \
    "$base@train.shuffle={block_rows: 4096, buffer_rows: 4096}" \
    --seeds "$SEEDS" --out "$work/$order" > /dev/null
  sed -n '1,8p' "$work/$order/compare.md"
  grep -A6 "Difference of the mean" "$work/$order/compare.md"
  echo
done
