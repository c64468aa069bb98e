#!/usr/bin/env bash
# Same numbers from two funnel binaries (e.g. the previous main and a refactor): every shipped
# pipeline (pipelines/*.yaml) trained by both, then `weights.safetensors` compared byte for byte
# and `metrics.json` compared with its timing block removed. The synthetic pipelines read
# generated data; it is generated here (by B, SAME_ROWS rows, 200k by default) into a scratch
# folder and passed with --set. Exits 1 naming every pipeline whose output moved.
#
#   benches/same.sh A_BINARY B_BINARY [PIPELINE...]
set -euo pipefail
cd "$(dirname "$0")/.."
A=$(realpath "$1") B=$(realpath "$2")
shift 2
rows=${SAME_ROWS:-200000}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pipelines=("$@")
[ ${#pipelines[@]} -gt 0 ] || pipelines=(pipelines/*.yaml)
strip() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); d.pop('timing',None); print(json.dumps(d,sort_keys=True,indent=1))" "$1"; }
moved=()
for p in "${pipelines[@]}"; do
  name=$(basename "$p" .yaml)
  set_args=()
  data=$(sed -n 's/^  train: { path: \.\.\/data\/synthetic\/\([a-z0-9-]*\)\.parquet }.*/\1/p' "$p")
  if [ -n "$data" ]; then
    gen="$out/$data.parquet"
    [ -f "$gen" ] || "$B" generate "pipelines/generate/$data.yaml" --rows "$rows" --out "$gen" > /dev/null 2>&1
    set_args=(--set "data.train.path=$gen")
  fi
  for side in a b; do
    bin=$A
    [ "$side" = b ] && bin=$B
    "$bin" train "$p" "${set_args[@]}" --no-report --out "$out/$name-$side" > "$out/$name-$side.log" 2>&1 \
      || { echo "$name: $side failed"; tail -3 "$out/$name-$side.log"; }
  done
  weights=same
  cmp -s "$out/$name-a/weights.safetensors" "$out/$name-b/weights.safetensors" || weights=differ
  diff <(strip "$out/$name-a/metrics.json") <(strip "$out/$name-b/metrics.json") > "$out/$name.diff" || true
  if [ "$weights" = same ] && [ ! -s "$out/$name.diff" ]; then
    echo "same   $name"
  else
    echo "MOVED  $name (weights $weights; metrics.json lines that differ below, if any)"
    head -20 "$out/$name.diff"
    moved+=("$name")
  fi
done
[ ${#moved[@]} -eq 0 ] || { echo "moved: ${moved[*]}"; exit 1; }
