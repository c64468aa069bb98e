#!/usr/bin/env bash
# A training file larger than the run's memory budget (issue 22; BENCHMARKS.md "Larger than
# memory"): ROWS rows (default 60M) of the reference spec in Parquet, the reference model
# (pipelines/bench/reference.yaml) under `train.memory_budget: 2GiB`, encoded into the cache a
# range of row groups at a time (`funnel encode`) and trained one epoch from it a window of
# blocks at a time (`train.shuffle`). Prints each step's wall time and peak resident memory
# (/usr/bin/time -v), the file's size, and the run's training throughput; then, on the first
# SMALL rows (default 4M), the same model trained from memory with a full shuffle and from the
# cache with blocks, side by side (training samples/s and loading time of each: the memory side
# reads and encodes the file with polars every run, the cache side opens the encoded entry).
#   ROWS=60000000 benches/larger-than-memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-60000000}
SMALL=${SMALL:-4000000}
cargo build --release -q
bin=$PWD/target/release/funnel
mkdir -p data/synthetic
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for n in "$ROWS" "$SMALL"; do
  f=data/synthetic/reference-$n.parquet
  [ -f "$f" ] || "$bin" generate pipelines/generate/reference.yaml --rows "$n" --out "$f" > /dev/null
done
# The reference pipeline on a file of its own, with small validation-free test split (2%: the
# test split is still loaded whole), the budget and block shuffling.
pipeline() { # FILE OUT_DIR SHUFFLE
  mkdir -p "$2"
  sed -e "s#../../data/synthetic/reference.parquet#$PWD/$1#" -e "s#fraction: 0.1#fraction: 0.02#" \
    pipelines/bench/reference.yaml > "$2/p.yaml"
  printf '  memory_budget: 2GiB\n' >> "$2/p.yaml"
  [ -z "$3" ] || printf '  shuffle: { block_rows: 16384, buffer_rows: 262144 }\n' >> "$2/p.yaml"
}
measure() { # LABEL COMMAND...
  /usr/bin/time -v "${@:2}" > "$work/out" 2> "$work/err" || { cat "$work/err"; exit 1; }
  grep -E "^data:|rows/s|samples/s" "$work/err" "$work/out" | sed 's/^[^:]*://' | head -5 || true
  awk -v l="$1" '/Maximum resident/ {rss=$6} /Elapsed \(wall/ {wall=$8} END {printf "%s: wall %s, peak resident %.0f MiB\n", l, wall, rss/1024}' "$work/err"
}
big=data/synthetic/reference-$ROWS.parquet
echo "file: $big, $(du -m "$big" | cut -f1) MiB, $ROWS rows"
pipeline "$big" "$work/big" blocks
mkdir "$work/big/.funnel-cache"
measure "encode $ROWS rows" "$bin" encode "$work/big/p.yaml"
echo "cache: $(du -sm "$work/big/.funnel-cache" | cut -f1) MiB"
measure "train $ROWS rows from the cache" "$bin" train "$work/big/p.yaml" --out "$work/big/run" --no-report
python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print('training samples/s', round(m['timing']['train_samples_per_s'])); print('test', [(s['name'], round(s['cumulative']['auc'],4)) for s in m['test']])" "$work/big/run/metrics.json"
rm -rf "$work/big/.funnel-cache"
small=data/synthetic/reference-$SMALL.parquet
pipeline "$small" "$work/memory" ""
pipeline "$small" "$work/disk" blocks
measure "read and encode $SMALL rows in memory (validate)" "$bin" validate "$work/memory/p.yaml"
mkdir "$work/disk/.funnel-cache"
measure "encode $SMALL rows into the cache (streamed)" "$bin" encode "$work/disk/p.yaml"
for side in memory disk memory disk; do
  "$bin" train "$work/$side/p.yaml" --out "$work/$side/run-$RANDOM" --no-report > /dev/null 2>&1
done
python3 - "$work" <<'PY'
import glob, json, sys
for side in ("memory", "disk"):
    t = [json.load(open(f))["timing"] for f in sorted(glob.glob(f"{sys.argv[1]}/{side}/run-*/metrics.json"))]
    speed = ", ".join(format(x["train_samples_per_s"], ",.0f") for x in t)
    load = ", ".join(format(x["read_s"] + x["encode_s"], ".2f") for x in t)
    print(f"{side}: training samples/s {speed}; loading (read + encode) s {load}")
PY
