#!/usr/bin/env bash
# Side by side (BENCHMARKS.md): funnel, its plain-PyTorch twin (torch_family.py: same data,
# split, shapes, initial scale, optimizers, losses, batch and threads) and torch-rechub's version
# where one exists, interleaved (funnel, twin, rechub, funnel, ...), medians. Each trainer's
# test AUC is printed beside its speed, so a fast wrong twin shows; prediction throughput over
# every row of the file too: funnel's is the whole `funnel predict` command (reading the file,
# encoding, writing the predictions), the twin's its forward passes over rows already in memory.
# The run starts with the GEMM yardstick of candle and of PyTorch.
#
#   benches/compare/run.sh                     # ESMM on the reference data (2 stages, 1M ids)
#   MODEL=all STAGES=5 benches/compare/run.sh  # every member on the five-stage funnel
#   MODEL=mmoe VOCAB=10000 benches/compare/run.sh
#
# MODEL: esmm, aitm, escm2_dr, dcn, shared_bottom, mmoe, ple (benches/variant.sh), or all.
# STAGES: 2 (the reference data, pipelines/bench/reference.yaml, VOCAB ids per field: 1000000
# by default) or 5 (the five-stage funnel, pipelines/bench/five-stage.yaml; its vocabulary is its
# generator's). REPS=3,
# THREADS=2 (every trainer), RECHUB_ROWS=20480 (torch-rechub trains on the first this many
# training rows: its dense Adam over full tables is slow), TWIN_ROWS (all by default),
# YARDSTICK=0 skips the GEMM yardstick.
#
# It installs what it needs into benches/compare/.venv; tests and CI never need it.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${REPS:-3} MODEL=${MODEL:-esmm} STAGES=${STAGES:-2} VOCAB=${VOCAB:-1000000}
THREADS=${THREADS:-2} RECHUB_ROWS=${RECHUB_ROWS:-20480} TWIN_ROWS=${TWIN_ROWS:-} YARDSTICK=${YARDSTICK:-1}
VENV=benches/compare/.venv
PY=$PWD/$VENV/bin/python
FUNNEL=$PWD/target/release/funnel

if [ ! -x "$PY" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r benches/compare/requirements.txt
fi
cargo build --release -q
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p data/synthetic
case "$STAGES" in
  2)
    spec=reference bench=pipelines/bench/reference.yaml data=$PWD/data/synthetic/reference.parquet
    if [ "$VOCAB" != 1000000 ]; then
      data=$PWD/data/synthetic/reference-v$VOCAB.parquet
    fi
    if [ ! -f "$data" ]; then
      sed -e "s/vocab: 1000000/vocab: $VOCAB/" pipelines/generate/reference.yaml > "$out/generate.yaml"
      "$FUNNEL" generate "$out/generate.yaml" --rows 2000000 --out "$data"
    fi
    ;;
  5)
    spec=five-stage bench=pipelines/bench/five-stage.yaml data=$PWD/data/synthetic/five-stage-1m.parquet
    [ -f "$data" ] || "$FUNNEL" generate pipelines/generate/five-stage.yaml --rows 1000000 --out "$data"
    ;;
  *) echo "STAGES is 2 or 5" >&2; exit 2 ;;
esac
models=$MODEL
[ "$MODEL" = all ] && models="esmm aitm escm2_dr dcn shared_bottom mmoe ple"
. benches/variant.sh
for m in $models; do
  variant "$out/$m.yaml" "$bench" "$m" "$data"
  sed -i -e "s/threads: 2/threads: $THREADS/" "$out/$m.yaml"
done

if [ "$YARDSTICK" = 1 ]; then
  echo "GEMM yardstick, 2048x132x128: candle in a 2-thread pool (its matmul, as funnel runs it, splits this product over both), PyTorch on 2:" >&2
  cargo bench -q --bench train -- gemm 2>/dev/null | grep -E "time:|thrpt:" >&2 || true
  "$PY" - <<'PY' >&2
import time, torch
torch.set_num_threads(2)
x, w = torch.randn(2048, 132), torch.randn(132, 128)
for _ in range(200): x @ w
runs = []
for _ in range(7):
    t0 = time.perf_counter()
    for _ in range(500): x @ w
    runs.append((time.perf_counter() - t0) / 500)
t = sorted(runs)[3]
print(f"  PyTorch {torch.__version__}: {t * 1e6:.0f} µs, {2 * 2048 * 132 * 128 / t / 1e9:.0f} GFLOP/s")
PY
fi

# One JSON line per trainer and rep: {"model", "trainer", "samples_per_s", "predict_rows_per_s", "auc"}.
record() { echo "$1" >> "$out/results.jsonl"; }
last_json() { "$PY" -c "import sys; print(sys.stdin.read().splitlines()[-1])"; }
for rep in $(seq "$REPS"); do
  for m in $models; do
    run=$out/run-$m-$rep
    "$FUNNEL" train "$out/$m.yaml" --no-report --out "$run" > /dev/null 2>&1
    # funnel's test rows (every variant carves the same split), so every trainer scores them.
    [ -f "$out/test-rows.parquet" ] ||
      "$FUNNEL" predict --run "$run" --split test --out "$out/test-rows.parquet" > /dev/null 2>&1
    t0=$(date +%s.%N)
    "$FUNNEL" predict --run "$run" --data "$data" --out "$out/predictions.parquet" --force > /dev/null 2>&1
    t1=$(date +%s.%N)
    record "$("$PY" - "$run/metrics.json" "$m" "$t0" "$t1" "$data" <<'PY'
import json, sys
import pyarrow.parquet as pq
m = json.load(open(sys.argv[1]))
rows = pq.ParquetFile(sys.argv[5]).metadata.num_rows
print(json.dumps({"model": sys.argv[2], "trainer": "funnel",
                  "samples_per_s": m["timing"]["train_samples_per_s"],
                  "predict_rows_per_s": rows / (float(sys.argv[4]) - float(sys.argv[3])),
                  "auc": m["test"][-1]["cumulative"]["auc"]}))
PY
)"
    twin=$(cd benches/compare && "$PY" torch_family.py --spec "$spec" --data "$data" --model "$m" \
      --test-rows "$out/test-rows.parquet" \
      --threads "$THREADS" ${TWIN_ROWS:+--rows "$TWIN_ROWS"} | last_json)
    record "$("$PY" -c "import json,sys; t=json.loads(sys.argv[1]); print(json.dumps({'model': sys.argv[2], 'trainer': 'pytorch', 'samples_per_s': t['samples_per_s'], 'predict_rows_per_s': t['predict_rows_per_s'], 'auc': t['test'][t['stages'][-1] + '.cumulative.auc']}))" "$twin" "$m")"
    # torch-rechub's versions: none of DCN-v2 towers or ESCM2; its ESMM has two tasks.
    if [ "$m" != escm2_dr ] && [ "$m" != dcn ] && { [ "$m" != esmm ] || [ "$STAGES" = 2 ]; }; then
      rechub=$(cd benches/compare && "$PY" rechub_mtl.py --spec "$spec" --data "$data" --model "$m" \
        --test-rows "$out/test-rows.parquet" \
        --threads "$THREADS" --rows "$RECHUB_ROWS" 2>/dev/null | last_json)
      record "$("$PY" -c "import json,sys; t=json.loads(sys.argv[1]); print(json.dumps({'model': sys.argv[2], 'trainer': 'torch-rechub', 'samples_per_s': t['samples_per_s']}))" "$rechub" "$m")"
    fi
    echo "rep $rep, $m: $(grep "\"$m\"" "$out/results.jsonl" | tail -3 | tr '\n' ' ')" >&2
  done
done

"$PY" - "$out/results.jsonl" "$STAGES" "$VOCAB" "$THREADS" <<'PY'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
stages, vocab, threads = sys.argv[2], sys.argv[3], sys.argv[4]
where = f"{stages} stages" + (f", {int(vocab):,} ids per field" if stages == "2" else "")
print(f"{where}, {threads} threads; medians of {len([r for r in rows if r['trainer'] == 'funnel']) // len({r['model'] for r in rows})} interleaved reps; AUC: the last stage's cumulative prediction on the test rows")
print("| model | funnel samples/s | PyTorch twin | funnel / twin | torch-rechub | funnel / rechub | funnel AUC | twin AUC | funnel predict rows/s | twin predict rows/s |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
models = list(dict.fromkeys(r["model"] for r in rows))
for m in models:
    def med(trainer, key):
        v = [r[key] for r in rows if r["model"] == m and r["trainer"] == trainer]
        return st.median(v) if v else float("nan")
    f, t, r = med("funnel", "samples_per_s"), med("pytorch", "samples_per_s"), med("torch-rechub", "samples_per_s")
    rechub = f"{r:,.0f} | {f / r:.2f}x" if r == r else "- | -"
    print(f"| {m} | {f:,.0f} | {t:,.0f} | {f / t:.2f}x | {rechub} | {med('funnel', 'auc'):.4f} | {med('pytorch', 'auc'):.4f} "
          f"| {med('funnel', 'predict_rows_per_s'):,.0f} | {med('pytorch', 'predict_rows_per_s'):,.0f} |")
PY
