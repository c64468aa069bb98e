#!/usr/bin/env bash
# Multi-valued features at Ali-CCP's shape: funnel (pipelines/bench/bags.yaml) against its
# PyTorch twin (nn.EmbeddingBag, sparse=True, SparseAdam: benches/compare/torch_bags.py), same
# Parquet file and the same training and test rows (funnel's split, handed to the twin), one
# epoch each, interleaved REPS times (default 3), THREADS threads (default 2).
# Prints one line per run: training samples/s and the test AUCs (the click and buy cumulative
# AUCs on all rows, and buy's conditional AUC on the clicked rows).
#   ROWS=500000 REPS=3 benches/compare/bags.sh
# It installs what it needs into benches/compare/.venv; tests and CI never need it.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${ROWS:-500000} REPS=${REPS:-3} THREADS=${THREADS:-2}
VENV=benches/compare/.venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r benches/compare/requirements.txt
fi
# One file per size: a file of another ROWS is never reused in its place.
DATA=data/synthetic/bags-$ROWS.parquet
mkdir -p data/synthetic
if [ ! -f "$DATA" ]; then
  "$VENV/bin/python" benches/compare/bags_data.py "$DATA" "$ROWS"
fi
cargo build --release -q
out=$(mktemp -d)
for rep in $(seq "$REPS"); do
  target/release/funnel train pipelines/bench/bags.yaml --out "$out/run$rep" --set "train.threads=$THREADS" \
    --set "data.train.path=$PWD/$DATA" > /dev/null 2>&1
  "$VENV/bin/python" - "$out/run$rep/metrics.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
t = {s["name"]: s for s in m["test"]}
print(json.dumps({
    "trainer": "funnel",
    "train_samples_per_s": m["timing"]["train_samples_per_s"],
    "click_auc": t["click"]["cumulative"]["auc"],
    "buy_auc": t["buy"]["cumulative"]["auc"],
    "buy_given_click_auc": t["buy"]["conditional"]["auc"],
}))
PY
  # The twin trains and tests on funnel's own split.
  target/release/funnel predict --run "$out/run$rep" --split test --out "$out/test$rep.parquet" > /dev/null 2>&1
  (cd benches/compare && .venv/bin/python torch_bags.py "../../$DATA" "$THREADS" "$out/test$rep.parquet")
done
rm -rf "$out"
