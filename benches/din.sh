#!/usr/bin/env bash
# DIN against sum pooling of the same history (docs/models.md "DIN"): the generated funnel whose
# truth depends on history-target matches (pipelines/generate/history.yaml, 1M rows), the history
# summed with a table of its own (synthetic-history-sum.yaml, the reference), pooled by DIN with
# its default ReLU unit (synthetic-history.yaml), and by the authors' sigmoid unit, under seeds
# 1..SEEDS (default 5). Prints the table, the paired differences and each one's median training
# throughput (samples/s), and the truth's own AUC: the ceiling.
#   SEEDS=5 benches/din.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-5}
cargo build --release -q
mkdir -p data/synthetic
if [ ! -f data/synthetic/history.parquet ]; then
  target/release/funnel generate pipelines/generate/history.yaml --rows 1000000 --out data/synthetic/history.parquet
fi
out=$(mktemp -d)
target/release/funnel compare pipelines/synthetic-history-sum.yaml pipelines/synthetic-history.yaml \
  pipelines/synthetic-history.yaml@model.din.activation=sigmoid --seeds "$SEEDS" --out "$out" > /dev/null
sed -n '1,8p' "$out/compare.md"
grep -A6 "Difference of the mean" "$out/compare.md"
python3 - "$out/runs" <<'PY'
import glob, json, statistics, sys
speeds = {}
for f in glob.glob(sys.argv[1] + "/*/metrics.json"):
    name = f.split("/")[-2].rsplit("-seed", 1)[0]
    speeds.setdefault(name, []).append(json.load(open(f))["timing"]["train_samples_per_s"])
for name, v in sorted(speeds.items()):
    print(f"{name}: median {statistics.median(v):,.0f} training samples/s over {len(v)} runs")
# The ceiling: the truth's own AUC against the counterfactual labels, conversion given click
# over all rows, on seed 1's test rows (each seed carves its own, so it moves a little).
f = sorted(glob.glob(sys.argv[1] + "/*/metrics.json"))[0]
truth = json.load(open(f))["test"][1]["truth"]["conditional"]
print(f"oracle: P(conversion|click) AUC vs counterfactual labels {truth['oracle_auc']:.4f}")
PY
rm -rf "$out"
