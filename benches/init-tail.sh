#!/usr/bin/env bash
# `funnel init`'s long-tail settings on the project's long-tailed synthetic funnel
# (docs/tuning.md "What funnel init writes"): init's pipeline, the same without its
# `min_count: 5, l2: 1.0e-4`, and the shipped pipeline tuned by hand, under seeds 1..SEEDS
# (default 5), all scored on the same test rows (init's test share set to the shipped 0.2).
#   SEEDS=5 benches/init-tail.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-5}
cargo build --release -q
mkdir -p data/synthetic
# A file of its own: the shipped pipeline's own `two-stage.parquet` may hold 1M rows.
DATA=$PWD/data/synthetic/two-stage-200k.parquet
if [ ! -f "$DATA" ]; then
  target/release/funnel generate pipelines/generate/two-stage.yaml --rows 200000 --out "$DATA"
fi
out=$(mktemp -d)
target/release/funnel init "$DATA" --stages click,conversion --out "$out/init.yaml" 2> /dev/null
sed -e 's/test: { split_from: train, fraction: 0.1 }/test: { split_from: train, fraction: 0.2 }/' \
    -e 's/^name: .*/name: init/' "$out/init.yaml" > "$out/init-tail.yaml"
sed -e 's/, min_count: 5, l2: 1.0e-4//' -e 's/^name: .*/name: init-without-tail-defaults/' \
    "$out/init-tail.yaml" > "$out/init-plain.yaml"
P=pipelines/synthetic-two-stage.yaml
target/release/funnel compare "$P@data.train.path=$DATA@features.categorical[0].min_count=5@features.categorical[1].min_count=5@train.embedding_optimizer.l2=1e-4" \
  "$out/init-tail.yaml" "$out/init-plain.yaml" --seeds "$SEEDS" --out "$out/compare" > /dev/null
sed -n '1,8p' "$out/compare/compare.md"
grep -A6 "Difference of the mean" "$out/compare/compare.md"
# The tail settings against init's pipeline without them, paired over the seeds (runs reused).
target/release/funnel compare "$out/init-plain.yaml" "$out/init-tail.yaml" --seeds "$SEEDS" --out "$out/compare" --force > /dev/null
grep -A5 "Difference of the mean" "$out/compare/compare.md"
rm -rf "$out"
