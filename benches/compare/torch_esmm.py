"""funnel's reference model in plain PyTorch on its fastest CPU path: nn.Embedding(sparse=True)
with SparseAdam for the tables, Adam for the towers, the same log-space ESMM loss."""

import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from reference_data import arguments, load

args = arguments([("--warmup", 5)])
torch.set_num_threads(args.threads)
torch.manual_seed(0)

cat, num, click, conversion = load(args.data, args.rows)
C, X = torch.from_numpy(cat), torch.from_numpy(num)
Y1, Y2 = torch.from_numpy(click), torch.from_numpy(conversion)


def tower():
    return nn.Sequential(nn.Linear(132, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 1))


class Esmm(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.ModuleList(nn.Embedding(args.vocab, 16, sparse=True) for _ in range(8))
        for e in self.emb:
            nn.init.normal_(e.weight, std=0.01)
        self.click, self.conversion = tower(), tower()

    def forward(self, c, x):
        h = torch.cat([e(c[:, i]) for i, e in enumerate(self.emb)] + [x], 1)
        return self.click(h).squeeze(1), self.conversion(h).squeeze(1)


def log1mexp(x):
    return torch.where(x > -0.6931471805599453, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


model = Esmm()
sparse = torch.optim.SparseAdam(list(model.emb.parameters()), lr=1e-3)
dense = torch.optim.Adam(list(model.click.parameters()) + list(model.conversion.parameters()), lr=1e-3)
steps = len(C) // args.batch


def step(i):
    s = slice(i * args.batch, (i + 1) * args.batch)
    a, b = model(C[s], X[s])
    lp1 = F.logsigmoid(a)
    lp2 = (lp1 + F.logsigmoid(b)).clamp(max=-1e-7)
    y1, y2 = Y1[s], Y2[s]
    loss = -(y1 * lp1 + (1 - y1) * F.logsigmoid(-a)).mean() - (y2 * lp2 + (1 - y2) * log1mexp(lp2)).mean()
    sparse.zero_grad()
    dense.zero_grad()
    loss.backward()
    sparse.step()
    dense.step()


for i in range(args.warmup):
    step(i)
t0 = time.perf_counter()
for i in range(args.warmup, steps):
    step(i)
dt = time.perf_counter() - t0
n = (steps - args.warmup) * args.batch
print(json.dumps({"impl": "pytorch", "samples_per_s": n / dt, "samples": n, "seconds": dt}))
