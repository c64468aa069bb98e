#!/usr/bin/env bash
# Check that TensorBoard's own reader parses a run's event file, and that every scalar it reads
# equals metrics.json. Installs `tensorboard` into a throwaway virtual environment (PyPI), so it
# is not part of CI; run it after changing `src/track.rs`:
#   scripts/check-tensorboard.sh [RUN_DIR]
# Without RUN_DIR it trains pipelines/esmm.yaml into a temporary directory first.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run=${1:-}
if [ -z "$run" ]; then
  cargo build --release --quiet
  run="$tmp/run"
  ./target/release/funnel train pipelines/esmm.yaml --out "$run" --no-report >/dev/null
fi
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet tensorboard
"$tmp/venv/bin/python" - "$run" <<'PY'
import json, math, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

run = sys.argv[1]
acc = EventAccumulator(f"{run}/tensorboard")
acc.Reload()
tags = acc.Tags()["scalars"]
m = json.load(open(f"{run}/metrics.json"))
checked = 0
def same(tag, step, want):
    global checked
    got = {e.step: e.value for e in acc.Scalars(tag)}
    assert step in got, f"{tag}: no step {step} in {sorted(got)}"
    # simple_value is a float32.
    assert math.isclose(got[step], want, rel_tol=1e-6, abs_tol=1e-7), f"{tag}@{step}: {got[step]} vs {want}"
    checked += 1
for h in m["history"]:
    same("loss/train/total", h["epoch"], h["train_loss"])
    for l in h["train_stage_loss"]:
        same(f"loss/train/{l['stage']}", h["epoch"], l["loss"])
    for s in h.get("valid") or []:
        for space in ("cumulative", "conditional"):
            if s[space]["auc"] is not None:
                same(f"auc/valid/{s['name']}/{space}", h["epoch"], s[space]["auc"])
            same(f"logloss/valid/{s['name']}/{space}", h["epoch"], s[space]["logloss"])
for s in m.get("test") or []:
    for space in ("cumulative", "conditional"):
        same(f"auc/test/{s['name']}/{space}", m["best_epoch"], s[space]["auc"])
print(f"TensorBoard read {len(tags)} scalar tags; {checked} values equal metrics.json")
PY
