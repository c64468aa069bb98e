#!/usr/bin/env bash
# The HTML pages in a real browser: trains pipelines/esmm.yaml, runs a small compare, opens
# both pages in headless Chromium and checks their charts and numbers (scripts/browser/check.mjs),
# and saves screenshots. Installs Debian's chromium and, from npm, playwright-core (which
# drives it; no browser download) when missing. `.ci/run` calls it after the tests.
#   scripts/browser-check.sh [--update-docs]   # also copies the screenshots to docs/
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "browser check: installing Debian's chromium" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ||
      { echo "browser check: SKIPPED, chromium could not be installed" >&2; exit 0; }
  else
    echo "browser check: SKIPPED, chromium is missing and cannot be installed here (needs root and apt-get)" >&2
    exit 0
  fi
fi
if ! command -v node >/dev/null; then
  echo "browser check: SKIPPED, node is missing (playwright-core runs on it)" >&2
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund playwright-core@1 >/dev/null) ||
  { echo "browser check: SKIPPED, playwright-core could not be installed from npm" >&2; exit 0; }
cargo build --release --quiet
bin=$PWD/target/release/funnel
"$bin" train pipelines/esmm.yaml --out "$tmp/run" >/dev/null
"$bin" compare pipelines/esmm.yaml pipelines/naive.yaml --seeds 2 --set train.epochs=2 --out "$tmp/cmp" >/dev/null 2>&1
cp scripts/browser/check.mjs "$tmp/"
node "$tmp/check.mjs" "$tmp/run" "$tmp/cmp" "$tmp/shots"
if [ "${1:-}" = --update-docs ]; then
  cp "$tmp/shots/report.png" docs/report.png
  cp "$tmp/shots/compare.png" docs/compare.png
  echo "browser check: screenshots copied to docs/"
fi
