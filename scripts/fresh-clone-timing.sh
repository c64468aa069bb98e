#!/usr/bin/env bash
# Time the README's two set-up commands on a fresh clone of this repository (its committed
# HEAD), in a temporary directory with its own target folder. Keep the machine otherwise idle.
#   scripts/fresh-clone-timing.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone -q "$repo" "$tmp/funnel"
cd "$tmp/funnel"
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
t() { /usr/bin/time -f "%e s wall, %U s user, %S s sys" "$@"; }
echo "cargo run --release -- train pipelines/esmm.yaml:"
t cargo run --release -- train pipelines/esmm.yaml 2>&1 >/dev/null | grep -E "Finished|wall"
echo "cargo test --release:"
t cargo test --release 2>&1 >/dev/null | grep -E "Finished|test result: ok. [1-9]|wall"
ls -la target/release/funnel | awk '{print "release binary: " $5 " bytes"}'
