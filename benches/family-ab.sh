#!/usr/bin/env bash
# Interleaved A/B of two funnel binaries across the family (BENCHMARKS.md, "2026-12-05 (later)"):
# ESMM, AITM, ESCM2-DR, ESMM over MMoE and over PLE on the five-stage funnel (pipelines/bench/five-stage.yaml),
# and AITM, MMoE, PLE on the reference data (benches/compare/run.sh's variants of
# pipelines/bench/reference.yaml). Prints each pipeline's median training samples/s for A and
# B, the ratio of medians and the median of paired ratios.
#
#   benches/family-ab.sh A_BINARY B_BINARY [REPS]      # REPS=3 by default
set -euo pipefail
cd "$(dirname "$0")/.."
A=$(realpath "$1") B=$(realpath "$2") REPS=${3:-3}
five=data/synthetic/five-stage-1m.parquet ref=data/synthetic/reference.parquet
mkdir -p data/synthetic
[ -f "$five" ] || "$B" generate pipelines/generate/five-stage.yaml --rows 1000000 --out "$five"
[ -f "$ref" ] || "$B" generate pipelines/generate/reference.yaml --rows 2000000 --out "$ref"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
. benches/variant.sh
five_stage=pipelines/bench/five-stage.yaml reference=pipelines/bench/reference.yaml
variant "$out/esmm5.yaml" "$five_stage" esmm
variant "$out/aitm5.yaml" "$five_stage" aitm
variant "$out/escm2_dr5.yaml" "$five_stage" escm2_dr
variant "$out/mmoe5.yaml" "$five_stage" mmoe
variant "$out/ple5.yaml" "$five_stage" ple
variant "$out/ref-aitm.yaml" "$reference" aitm
variant "$out/ref-mmoe.yaml" "$reference" mmoe
variant "$out/ref-ple.yaml" "$reference" ple
names=(esmm5 aitm5 escm2_dr5 mmoe5 ple5 ref-aitm ref-mmoe ref-ple)
for rep in $(seq "$REPS"); do
  for p in "${names[@]}"; do
    for side in a b; do
      bin=$A
      [ "$side" = b ] && bin=$B
      "$bin" train "$out/$p.yaml" --no-report --out "$out/run-$p-$side-$rep" > /dev/null 2>&1
      python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['timing']['train_samples_per_s'])" \
        "$out/run-$p-$side-$rep/metrics.json" >> "$out/$p-$side"
    done
  done
  echo "rep $rep done" >&2
done
python3 - "$out" "$REPS" "${names[@]}" <<'PY'
import statistics as st, sys
d, n, names = sys.argv[1], sys.argv[2], sys.argv[3:]
print(f"| pipeline (median of {n} interleaved reps) | A samples/s | B samples/s | B / A (medians) | B / A (paired) |")
print("| --- | --- | --- | --- | --- |")
for p in names:
    a = [float(x) for x in open(f"{d}/{p}-a")]
    b = [float(x) for x in open(f"{d}/{p}-b")]
    print(f"| {p} | {st.median(a):,.0f} | {st.median(b):,.0f} | {st.median(b) / st.median(a):.2f} | {st.median(y / x for x, y in zip(a, b)):.2f} |")
PY
