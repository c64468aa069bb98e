#!/usr/bin/env bash
# Adult with the features `funnel init` declares, under the peers' protocol (embedding 16,
# towers 128-64, batch 2048, 10 epochs, no early stopping, test on adult.test): `funnel compare`
# over seeds 1..SEEDS (default 5). Prints compare's table of click AUCs.
#   SEEDS=5 benches/adult-init.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-5}
cargo build --release -q
out=$(mktemp -d)
target/release/funnel init "$PWD/data/adult/adult.data" --stages 'click=Y:>50K|>50K.' --out "$out/init.yaml" 2> /dev/null
sed -e "s|test: { split_from: train, fraction: 0.1 }|test: { path: \"$PWD/data/adult/adult.test\", format: csv, csv: { separator: \",\", header: true, trim_whitespace: true, null_values: [\"\", \"?\", \"NA\", \"null\", \"NULL\"] } }|" \
    -e 's/embedding_dim: 8/embedding_dim: 16/' \
    -e 's/hidden: \[64, 32\]/hidden: [128, 64]/' \
    -e 's/batch_size: 512/batch_size: 2048/' \
    -e '/early_stopping/d' "$out/init.yaml" > "$out/adult.yaml"
target/release/funnel compare "$out/adult.yaml" --seeds "$SEEDS" --out "$out/compare" | head -6
rm -rf "$out"
