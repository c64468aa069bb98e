#!/usr/bin/env bash
# The encoded-data cache against reading the files (BENCHMARKS.md "the encoded-data cache"):
# PIPELINE (default pipelines/synthetic-history-sum.yaml, on the 1M generated rows of
# pipelines/generate/history.yaml) trained for one epoch REPS times (default 3), each time first
# from the files (no .funnel-cache/ beside the pipeline), then from the cache `funnel encode`
# built; per run the seconds spent reading and encoding, the training samples/s and the peak
# resident memory of the whole run (/usr/bin/time -f %M).
#   REPS=3 benches/cache.sh [PIPELINE]
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
P=${1:-pipelines/synthetic-history-sum.yaml}
cargo build --release -q
mkdir -p data/synthetic
if [ ! -f data/synthetic/history.parquet ]; then
  target/release/funnel generate pipelines/generate/history.yaml --rows 1000000 --out data/synthetic/history.parquet
fi
cache="$(dirname "$P")/.funnel-cache"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rm -rf "$cache"
target/release/funnel encode "$P" > /dev/null
mv "$cache" "$out/cache"
run() {
  rm -rf "$out/run"
  /usr/bin/time -f %M -o "$out/peak" target/release/funnel train "$P" --out "$out/run" --set train.epochs=1 > /dev/null 2>&1
  python3 - "$1" "$out/run/metrics.json" "$(cat "$out/peak")" <<'PY'
import json, sys
t = json.load(open(sys.argv[2]))["timing"]
print(f"{sys.argv[1]:>6}: read + encode {t['read_s'] + t['encode_s']:.2f} s, "
      f"{t['train_samples_per_s']:,.0f} training samples/s, peak {int(sys.argv[3]):,} KB")
PY
}
for _ in $(seq "$REPS"); do
  run files
  mv "$out/cache" "$cache"
  run cache
  mv "$cache" "$out/cache"
done
