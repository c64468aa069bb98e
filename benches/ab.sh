#!/usr/bin/env bash
# Interleaved A/B of two funnel binaries (e.g. the previous main and a change), on this machine:
# training throughput (samples/s from metrics.json) and evaluation time of the reference benchmark, and the throughput of the adult
# pipeline (whose wall time also counts reading, evaluation and however many epochs early
# stopping runs), A then B in every repetition; medians and the median of the paired ratios.
#
#   benches/ab.sh A_BINARY B_BINARY [REPS]      # REPS=5 by default
#   A_REPO=../old benches/ab.sh ../old/funnel target/release/funnel 7
#
# Each side reads the pipelines of its own checkout (A_REPO, B_REPO; default this one), so a
# change of pipeline syntax does not stop the comparison. Both use this checkout's
# data/synthetic/reference.parquet (BENCHMARKS.md says how to generate it).
set -euo pipefail
cd "$(dirname "$0")/.."
A=$(realpath "$1") B=$(realpath "$2") REPS=${3:-5}
A_REPO=$(realpath "${A_REPO:-.}") B_REPO=$(realpath "${B_REPO:-.}")
data=$(realpath -m data/synthetic/reference.parquet)
[ -f "$data" ] || "$B" generate pipelines/generate/reference.yaml --rows 2000000 --out "$data"
for repo in "$A_REPO" "$B_REPO"; do
  mkdir -p "$repo/data/synthetic"
  [ -e "$repo/data/synthetic/reference.parquet" ] || ln -s "$data" "$repo/data/synthetic/reference.parquet"
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rate() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['timing']['train_samples_per_s'])" "$1/metrics.json"; }
evals() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['timing']['evaluate_s'])" "$1/metrics.json"; }
for rep in $(seq "$REPS"); do
  for side in a b; do
    bin=$A repo=$A_REPO
    [ "$side" = b ] && bin=$B repo=$B_REPO
    "$bin" train "$repo/pipelines/bench/reference.yaml" --out "$out/ref-$side-$rep" > /dev/null 2>&1
    rate "$out/ref-$side-$rep" >> "$out/ref-$side"
    evals "$out/ref-$side-$rep" >> "$out/eval-$side"
    "$bin" train "$repo/pipelines/esmm.yaml" --out "$out/adult-$side-$rep" > /dev/null 2>&1
    rate "$out/adult-$side-$rep" >> "$out/adult-$side"
  done
  echo "rep $rep: reference $(tail -1 "$out/ref-a") vs $(tail -1 "$out/ref-b") samples/s; adult $(tail -1 "$out/adult-a") vs $(tail -1 "$out/adult-b") samples/s" >&2
done
python3 - "$out" "$REPS" <<'PY'
import statistics as st, sys
d, n = sys.argv[1], sys.argv[2]
read = lambda name: [float(x) for x in open(f"{d}/{name}")]
ra, rb, aa, ab = read("ref-a"), read("ref-b"), read("adult-a"), read("adult-b")
ea, eb = read("eval-a"), read("eval-b")
print(f"| measure (median of {n} interleaved reps) | A | B | B / A (ratio of medians) | B / A (median of paired reps) |")
print("| --- | --- | --- | --- | --- |")
print(f"| reference benchmark, training samples/s | {st.median(ra):,.0f} | {st.median(rb):,.0f} | {st.median(rb) / st.median(ra):.3f} | {st.median(b / a for a, b in zip(ra, rb)):.3f} |")
print(f"| reference benchmark, evaluation seconds (timing.evaluate_s) | {st.median(ea):.2f} | {st.median(eb):.2f} | {st.median(eb) / st.median(ea):.3f} | {st.median(b / a for a, b in zip(ea, eb)):.3f} |")
print(f"| adult pipeline, training samples/s | {st.median(aa):,.0f} | {st.median(ab):,.0f} | {st.median(ab) / st.median(aa):.3f} | {st.median(b / a for a, b in zip(aa, ab)):.3f} |")
PY
