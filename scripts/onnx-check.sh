#!/usr/bin/env bash
# ONNX Runtime on funnel's exported models (not in CI: it downloads onnx, onnxruntime and numpy
# from PyPI into a throwaway virtual environment). Each adult pipeline trains one epoch, is
# exported, checked by onnx.checker, encoded from its sidecar alone by scripts/onnx_check.py
# and run by ONNX Runtime on the adult test file; every output must match `funnel predict`'s
# within 1e-5. Prints one JSON line per model with ONNX Runtime's median latency (one thread)
# for one row and for 1,024 rows.
#
#   scripts/onnx-check.sh [PIPELINE...]      (default: every adult pipeline)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
funnel=target/release/funnel
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet onnx onnxruntime numpy
pipelines=("$@")
if [ ${#pipelines[@]} -eq 0 ]; then
    pipelines=(esmm esmm-ns aitm division escm2-dr escm2-ips esmm-dcn esmm-fm esmm-buckets
        esmm-groups esmm-uncertainty esmm-gradnorm shared-bottom mmoe ple naive independent)
fi
for p in "${pipelines[@]}"; do
    run="$work/$p"
    "$funnel" train "pipelines/$p.yaml" --out "$run" --set train.epochs=1 --no-report >/dev/null 2>&1
    "$funnel" export "$run" --out "$work/$p.onnx" 2>/dev/null
    "$funnel" predict --run "$run" --data data/adult/adult.test --out "$work/$p.csv" 2>/dev/null
    "$work/venv/bin/python" scripts/onnx_check.py "$work/$p.onnx" data/adult/adult.test "$work/$p.csv"
done
