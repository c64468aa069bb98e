"""The PyTorch twin of pipelines/bench/bags.yaml (benches/compare/bags.sh): ESMM over 20
single-valued fields (nn.Embedding) and 4 token bags (nn.EmbeddingBag, mode "mean", offsets,
no padding), all sparse=True and updated by SparseAdam (lr 1e-3, funnel's lazy Adam); towers
128-64 (He-uniform, Glorot-uniform heads) by Adam at 1e-3; embedding rows N(0, 0.01^2); batch
2048; the same log-space ESMM loss (the cumulative p_k = q_1 ... q_k as a sum of log-sigmoids,
supervised on every row). Vocabularies are fitted on the training rows, unseen ids map to row
0; the test rows are funnel's own (TEST_ROWS: `funnel predict --split test`'s output, whose `row`
column numbers them from 1), or a seeded 10% without it. Prints one JSON line: training samples/s over the epoch
(batch assembly included, as funnel's `train_samples_per_s`) and each stage's test AUC, so a
fast wrong twin shows.

usage: torch_bags.py DATA.parquet THREADS [TEST_ROWS.parquet]"""

import json
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.nn as nn
import torch.nn.functional as F

from reference_data import auc

path, threads = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(42)
DIM, BATCH, LR = 16, 2048, 1e-3
t = pq.read_table(path)
n = t.num_rows
order = np.random.default_rng(42).permutation(n)
if len(sys.argv) > 3:
    test = np.sort(pq.read_table(sys.argv[3], columns=["row"]).column("row").to_numpy().astype(np.int64) - 1)
    is_test = np.zeros(n, dtype=bool)
    is_test[test] = True
    train = order[~is_test[order]]
else:
    n_test = int(round(n * 0.1))
    test, train = np.sort(order[:n_test]), order[n_test:]
in_train = np.zeros(n, dtype=bool)
in_train[train] = True


def vocabulary(values, fit):
    """1-based ids of a vocabulary fitted on `fit` (0: unseen)."""
    keys, inverse = np.unique(values[fit], return_inverse=True)
    ids = np.zeros(len(values), dtype=np.int64)
    pos = np.clip(np.searchsorted(keys, values), 0, len(keys) - 1)
    ids[:] = np.where(keys[pos] == values, pos + 1, 0)
    return ids, len(keys) + 1


singles = [c for c in t.column_names if c.startswith("s")]
bags = [c for c in t.column_names if c.startswith("m")]
cat, vocab = [], []
for c in singles:
    ids, v = vocabulary(t.column(c).to_numpy(), in_train)
    cat.append(ids)
    vocab.append(v)
cat = np.stack(cat, 1)
bag_ids, bag_offsets, bag_vocab = [], [], []
for c in bags:
    col = t.column(c).combine_chunks()
    offsets = col.offsets.to_numpy().astype(np.int64)
    values = col.values.to_numpy()
    row_of = np.repeat(np.arange(n), np.diff(offsets))
    ids, v = vocabulary(values, in_train[row_of])
    bag_ids.append(torch.from_numpy(ids))
    bag_offsets.append(torch.from_numpy(offsets))
    bag_vocab.append(v)
reached = np.stack([t.column(c).to_numpy().astype(bool) for c in ("click", "buy")], 1)
labels = np.logical_and.accumulate(reached, axis=1).astype(np.float32)


def rows_of(j, rows):
    """Bag j's ids and offsets for `rows` (a batch: its own offsets from 0)."""
    starts, ends = bag_offsets[j][rows], bag_offsets[j][rows + 1]
    lengths = ends - starts
    offsets = torch.zeros(len(rows), dtype=torch.int64)
    offsets[1:] = torch.cumsum(lengths, 0)[:-1]
    idx = torch.repeat_interleave(starts - offsets, lengths) + torch.arange(int(lengths.sum()))
    return bag_ids[j][idx], offsets


def he(layer):
    nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
    nn.init.zeros_(layer.bias)
    return layer


class Tower(nn.Module):
    def __init__(self, inp):
        super().__init__()
        self.mlp = nn.Sequential(he(nn.Linear(inp, 128)), nn.ReLU(), he(nn.Linear(128, 64)), nn.ReLU())
        self.head = nn.Linear(64, 1)
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        return self.head(self.mlp(x)).squeeze(1)


tables = nn.ModuleList(nn.Embedding(v, DIM, sparse=True) for v in vocab)
bag_tables = nn.ModuleList(nn.EmbeddingBag(v, DIM, mode="mean", sparse=True) for v in bag_vocab)
with torch.no_grad():
    for e in list(tables) + list(bag_tables):
        e.weight.normal_(0.0, 0.01)
towers = nn.ModuleList(Tower(DIM * (len(singles) + len(bags))) for _ in range(2))
sparse = torch.optim.SparseAdam(list(tables.parameters()) + list(bag_tables.parameters()), lr=LR)
dense = torch.optim.Adam(towers.parameters(), lr=LR)
C, Y = torch.from_numpy(cat), torch.from_numpy(labels)


def forward(rows):
    parts = [e(C[rows, i]) for i, e in enumerate(tables)]
    for j, e in enumerate(bag_tables):
        ids, offsets = rows_of(j, rows)
        parts.append(e(ids, offsets))
    x = torch.cat(parts, 1)
    return torch.stack([tw(x) for tw in towers], 1)


def log1mexp(x):
    return torch.where(x > -0.6931471805599453, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


train_rows = torch.from_numpy(train)
shuffle = torch.Generator().manual_seed(42)
t0 = time.perf_counter()
perm = train_rows[torch.randperm(len(train_rows), generator=shuffle)]
for s in range(0, len(perm), BATCH):
    rows = perm[s : s + BATCH]
    z = forward(rows)
    lp = torch.cumsum(F.logsigmoid(z), 1).clamp(max=-1e-7)
    y = Y[rows]
    loss = -(y * lp + (1 - y) * log1mexp(lp)).mean(0).sum()
    dense.zero_grad(set_to_none=True)
    sparse.zero_grad(set_to_none=True)
    loss.backward()
    dense.step()
    sparse.step()
train_s = time.perf_counter() - t0

with torch.inference_mode():
    test_rows = torch.from_numpy(test)
    z = torch.cat([forward(test_rows[s : s + 8192]) for s in range(0, len(test_rows), 8192)])
    lp = torch.cumsum(F.logsigmoid(z), 1).exp().numpy()
    q = torch.sigmoid(z).numpy()
y = labels[test]
clicked = y[:, 0] == 1
print(json.dumps({
    "trainer": "torch",
    "train_samples_per_s": len(train) / train_s,
    "click_auc": auc(y[:, 0], lp[:, 0]),
    "buy_auc": auc(y[:, 1], lp[:, 1]),
    "buy_given_click_auc": auc(y[clicked, 1], q[clicked, 1]),
}))
