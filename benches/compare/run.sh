#!/usr/bin/env bash
# Side-by-side training throughput on the reference benchmark (BENCHMARKS.md): funnel, the same
# model in plain PyTorch (sparse embeddings + SparseAdam), and torch-rechub's ESMM, on the same
# generated data and 2 threads, interleaved (funnel, pytorch, rechub, funnel, ...), medians.
#
#   benches/compare/run.sh            # REPS=3 TORCH_ROWS=409600 RECHUB_ROWS=20480 by default
#   MODEL=aitm benches/compare/run.sh # funnel's `aitm` preset against torch-rechub's AITM
#   MODEL=mmoe benches/compare/run.sh # funnel's MMoE bottom against torch-rechub's MMOE (also
#                                     # shared_bottom, ple)
#
# It installs what it needs into benches/compare/.venv; tests and CI never need it.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${REPS:-3}
MODEL=${MODEL:-esmm}
TORCH_ROWS=${TORCH_ROWS:-409600}
RECHUB_ROWS=${RECHUB_ROWS:-20480}
VENV=benches/compare/.venv
DATA=data/synthetic/reference.parquet

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r benches/compare/requirements.txt
fi
cargo build --release -q
mkdir -p data/synthetic
[ -f "$DATA" ] || ./target/release/funnel generate pipelines/generate/reference.yaml --rows 2000000 --out "$DATA"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
PIPELINE=pipelines/bench/reference.yaml
RECHUB=rechub_esmm.py
if [ "$MODEL" = aitm ]; then
  # The reference pipeline with the preset swapped in (data path made absolute).
  PIPELINE=$out/reference-aitm.yaml
  sed -e "s|path: ../../data/|path: $PWD/data/|" -e 's/^train:$/model:\n  preset: aitm\ntrain:/' \
    pipelines/bench/reference.yaml > "$PIPELINE"
  RECHUB="rechub_mtl.py --model aitm"
elif [ "$MODEL" != esmm ]; then
  # ESMM on the bottom, 128 wide, with 64-wide towers: the shape of rechub_mtl.py.
  PIPELINE=$out/reference-$MODEL.yaml
  case "$MODEL" in
    shared_bottom) BOTTOM="{ kind: shared_bottom, hidden: [128] }" ;;
    mmoe) BOTTOM="{ kind: mmoe, experts: 4, hidden: [128] }" ;;
    ple) BOTTOM="{ kind: ple, experts: 1, shared_experts: 1, levels: 2, hidden: [128] }" ;;
    *) echo "MODEL is esmm, aitm, shared_bottom, mmoe or ple" >&2; exit 2 ;;
  esac
  sed -e "s|path: ../../data/|path: $PWD/data/|" -e "s/^train:\$/model:\n  bottom: $BOTTOM\ntrain:/" \
    -e 's/hidden: \[128, 64\]/hidden: [64]/' pipelines/bench/reference.yaml > "$PIPELINE"
  RECHUB="rechub_mtl.py --model $MODEL"
fi
for rep in $(seq "$REPS"); do
  ./target/release/funnel train "$PIPELINE" --out "$out/run$rep" > /dev/null 2>&1
  "$VENV/bin/python" -c "import json,sys; print(json.load(open(sys.argv[1]))['timing']['train_samples_per_s'])" \
    "$out/run$rep/metrics.json" >> "$out/funnel"
  if [ "$MODEL" = esmm ]; then
    (cd benches/compare && "../../$VENV/bin/python" torch_esmm.py --data "../../$DATA" --rows "$TORCH_ROWS") \
      | "$VENV/bin/python" -c "import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])['samples_per_s'])" >> "$out/pytorch"
  else
    echo nan >> "$out/pytorch"
  fi
  # shellcheck disable=SC2086 # RECHUB may carry the script's own option.
  (cd benches/compare && "../../$VENV/bin/python" $RECHUB --data "../../$DATA" --rows "$RECHUB_ROWS" 2>/dev/null) \
    | "$VENV/bin/python" -c "import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])['samples_per_s'])" >> "$out/rechub"
  echo "rep $rep: funnel $(tail -1 "$out/funnel"), pytorch $(tail -1 "$out/pytorch"), torch-rechub $(tail -1 "$out/rechub") samples/s" >&2
done

"$VENV/bin/python" - "$out" "$MODEL" <<'PY'
import math, statistics, sys
d, model = sys.argv[1], sys.argv[2]
read = lambda n: [float(x) for x in open(f"{d}/{n}")]
f, t, r = read("funnel"), read("pytorch"), read("rechub")
mf, mt, mr = statistics.median(f), statistics.median(t), statistics.median(r)
paired_t = statistics.median(a / b for a, b in zip(f, t))
paired_r = statistics.median(a / b for a, b in zip(f, r))
print("| trainer | samples/s (median of %d) | funnel / it (ratio of medians) | funnel / it (median of paired reps) |" % len(f))
print("| --- | --- | --- | --- |")
print(f"| funnel ({model}) | {mf:,.0f} | | |")
if not math.isnan(mt):
    print(f"| PyTorch, sparse embeddings + SparseAdam | {mt:,.0f} | {mf / mt:.2f}x | {paired_t:.2f}x |")
print(f"| torch-rechub {model.upper()} (MTLTrainer) | {mr:,.0f} | {mf / mr:.1f}x | {paired_r:.1f}x |")
PY
