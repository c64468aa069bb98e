"""Load a benchmark data set (written by `funnel generate`) the same way for every trainer: the
columns of the funnel pipeline it is compared with, ids from a vocabulary of the training rows
(0 for a value the training rows never saw, as funnel's out-of-vocabulary id), numerics
standardised with the training rows' statistics, and the cumulative label of each stage."""

import argparse

import numpy as np
import pyarrow.parquet as pq

# The columns of pipelines/bench/reference.yaml and pipelines/bench/five-stage.yaml.
SPECS = {
    "reference": {
        "fields": [f"f{i}" for i in range(8)],
        "numeric": [f"n{i}" for i in range(4)],
        "stages": ["click", "conversion"],
        "test_fraction": 0.1,
    },
    "five-stage": {
        "fields": ["user", "channel", "card", "region"],
        "numeric": ["income", "age"],
        "stages": ["exposure", "click", "apply", "approve", "activate"],
        "test_fraction": 0.2,
    },
}
class Data:
    """Encoded training and test rows: `cat` (rows x fields, int64 ids, 1-based), `num` (rows x
    numerics, float32), `labels` (rows x stages, float32 cumulative), and `vocab` per field."""

    def __init__(self, spec, path, seed=42, test_rows=None):
        """`test_rows`: a file from `funnel predict --split test`, whose `row` column names the
        test rows of funnel's own split (the rest train); otherwise a seeded random split of
        the spec's test fraction."""
        s = SPECS[spec]
        t = pq.read_table(path, columns=s["fields"] + s["numeric"] + s["stages"])
        n = t.num_rows
        order = np.random.default_rng(seed).permutation(n)
        if test_rows is None:
            n_test = int(round(n * s["test_fraction"]))
            train, test = order[n_test:], order[:n_test]
        else:
            # funnel numbers rows from 1 (docs/generate.md).
            rows = pq.read_table(test_rows, columns=["row"]).column("row").to_numpy()
            test = np.sort(rows.astype(np.int64) - 1)
            in_test = np.zeros(n, dtype=bool)
            in_test[test] = True
            train = order[~in_test[order]]
        self.fields, self.numeric, self.stages = s["fields"], s["numeric"], s["stages"]
        cats, self.vocab = [], []
        for f in s["fields"]:
            col = t.column(f).to_numpy()
            keys, inverse = np.unique(col[train], return_inverse=True)
            ids = np.zeros(n, dtype=np.int64)
            ids[train] = inverse + 1
            pos = np.clip(np.searchsorted(keys, col[test]), 0, len(keys) - 1)
            ids[test] = np.where(keys[pos] == col[test], pos + 1, 0)
            cats.append(ids)
            self.vocab.append(len(keys) + 1)
        cat = np.stack(cats, 1)
        num = np.stack([t.column(c).to_numpy().astype(np.float64) for c in s["numeric"]], 1)
        mean, std = num[train].mean(0), num[train].std(0)
        num = ((num - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)
        # A stage's label means "reached it"; the cumulative label is the AND of stages 1..k.
        reached = np.stack([t.column(c).to_numpy().astype(bool) for c in s["stages"]], 1)
        labels = np.logical_and.accumulate(reached, axis=1).astype(np.float32)
        self.train = (cat[train], num[train], labels[train])
        self.test = (cat[test], num[test], labels[test])
        self.all = (cat, num, labels)

    def training(self, rows=None):
        """The training rows, or the first `rows` of them."""
        return tuple(a[:rows] for a in self.train)


def auc(labels, scores):
    """Exact ROC AUC: the rank statistic with tied scores given their average rank (what funnel's
    metrics compute); NaN when a class is empty."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    pos = int(labels.sum())
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average_rank = ends - (counts - 1) / 2.0
    ranks = average_rank[inverse]
    return float((ranks[labels].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def arguments(extra=(), extra_text=()):
    """The options every trainer script takes; `extra` adds (flag, default) integer options,
    `extra_text` (flag, default) text options."""
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--spec", choices=sorted(SPECS), default="reference")
    # Train on the first this many training rows (all by default); vocabularies and the test
    # rows stay those of the whole file, so tables have the size funnel's have.
    p.add_argument("--rows", type=int, default=None)
    # Funnel's test rows (`funnel predict --split test` output), so both score the same rows.
    p.add_argument("--test-rows", default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=2048)
    for flag, default in extra:
        p.add_argument(flag, type=int, default=default)
    for flag, default in extra_text:
        p.add_argument(flag, default=default)
    return p.parse_args()
