"""Ali-CCP's shape, generated: 20 single-valued fields and 4 multi-valued fields of 10 to 50
tokens (a user's recent categories, shops, brands, items), with click and buy labels that depend
on both, written as Parquet with list columns (benches/compare/bags.sh reads it with funnel and
with its PyTorch twin, torch_bags.py). Ids are written as 0-based integers; both trainers fit
their own vocabularies.

usage: bags_data.py OUT.parquet ROWS [SEED]"""

import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SINGLE = [1000] * 10 + [100_000] * 10
BAGS = [10_000, 50_000, 50_000, 200_000]


def zipf_ids(rng, vocab, n, a=1.1):
    """Ids in [0, vocab) with a Zipf-like long tail (rank r drawn with weight r^-a)."""
    ranks = np.arange(1, vocab + 1, dtype=np.float64) ** -a
    return rng.choice(vocab, size=n, p=ranks / ranks.sum()).astype(np.int64)


def main():
    out, rows = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(int(sys.argv[3]) if len(sys.argv) > 3 else 7)
    columns, click_logit, buy_logit = {}, np.full(rows, -3.0), np.full(rows, -2.0)
    for i, vocab in enumerate(SINGLE):
        ids = zipf_ids(rng, vocab, rows)
        columns[f"s{i}"] = ids
        if i < 6:
            effect = rng.normal(0.0, 0.6, vocab)
            click_logit += effect[ids]
            buy_logit += 0.5 * rng.normal(0.0, 0.6, vocab)[ids]
    for j, vocab in enumerate(BAGS):
        lengths = rng.integers(10, 51, rows)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        tokens = zipf_ids(rng, vocab, int(offsets[-1]))
        effect = rng.normal(0.0, 1.0, vocab)
        # The mean effect of a row's tokens moves both stages.
        mean = np.add.reduceat(effect[tokens], offsets[:-1]) / lengths
        click_logit += 1.5 * mean
        buy_logit += 1.0 * mean
        columns[f"m{j}"] = pa.ListArray.from_arrays(pa.array(offsets), pa.array(tokens))
    click = rng.random(rows) < 1.0 / (1.0 + np.exp(-click_logit))
    buy = click & (rng.random(rows) < 1.0 / (1.0 + np.exp(-buy_logit)))
    columns["click"] = click.astype(np.int64)
    columns["buy"] = buy.astype(np.int64)
    table = pa.table({k: (v if isinstance(v, pa.Array) else pa.array(v)) for k, v in columns.items()})
    pq.write_table(table, out, row_group_size=100_000)
    print(f"wrote {out}: {rows} rows, click {click.mean():.3f}, buy {buy.mean():.4f}")


main()
