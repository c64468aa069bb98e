"""funnel's family in plain PyTorch: the twin each funnel pipeline is measured against
(benches/compare/run.sh). Same data, split and encoding (reference_data.Data), shapes, initial
scale (He-uniform hidden layers, Glorot-uniform heads and gates, N(0, 0.01^2) embedding rows and
attention maps), optimizers (Adam at 1e-3 for the dense parameters; row-wise Adagrad at 0.05 on
the embedding rows a batch touched, through nn.Embedding(sparse=True)), batch, threads and the
same log-space losses as the bench pipelines. Prints one JSON line: training samples/s over the
whole epochs (batch gathering included, as funnel's `train_samples_per_s`), inference rows/s
over every row of the file, and each stage's test AUC of the cumulative prediction and of the
conditional one on the rows that reached the parent, so a fast wrong twin shows.

Models, each the funnel preset or bottom of the same name (benches/compare/run.sh builds the
funnel pipelines):
- esmm: a tower (--hidden, ReLU) and a head per stage over the shared embeddings and numerics;
  the head's logit is the conditional q_k, the cumulative p_k = q_1 ... q_k (a sum of
  log-sigmoids) is supervised with the cumulative label on every row.
- aitm: the same towers, but each head predicts p_k itself; from stage 2 on, the parent's
  representation passes an info layer (dense, ReLU) and an attention unit over [own,
  transferred] (scores <W1 u, W2 u> / sqrt(d), softmax over the two, sum of W3 u) replaces the
  stage's representation; loss: binary cross-entropy of every p_k plus the calibrator
  0.6 * mean(max(p_k - p_(k-1), 0)).
- dcn: esmm with --cross DCN-v2 cross layers (x_(l+1) = x_0 * (W_l x_l + b_l) + x_l, W_l
  Glorot-uniform) before each tower's MLP.
- escm2_dr: ESCM2's doubly robust form as funnel's loss/terms.rs writes it: the first stage's
  cumulative cross-entropy; for each later stage k, 0.5 * [mean(e + o (l - e) w) +
  mean(o (l - e)^2 w)] with l the conditional cross-entropy of q_k, o whether the row reached
  the parent, w = min(1 / max(p_(k-1), 1e-6), 15) detached, e = softplus of an imputation tower
  like the stage's own (held fixed in the first mean, trained by the second), plus 0.5 * the
  cumulative cross-entropy of p_k on every row.
- shared_bottom, mmoe, ple: ESMM's loss and outputs over a bottom (--bottom-hidden wide): one
  MLP every stage reads; --experts MLPs mixed per stage by a softmax gate of the input; or
  PLE's levels of one expert per stage and one shared, gated per stage and, below the last
  level, for the shared path (own experts first, then shared, as funnel's ple.rs orders them)."""

import json
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from reference_data import Data, arguments, auc

args = arguments(
    extra=(("--epochs", 1), ("--seed", 42), ("--dim", 16), ("--experts", 4), ("--cross", 2), ("--eval-batch", 8192)),
    # --hidden: the towers; 128,64 by default, 64 over a bottom (benches/variant.sh's shapes).
    extra_text=(("--model", "esmm"), ("--hidden", None), ("--bottom-hidden", "128")),
)
torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
CALIBRATOR = 0.6
DENSE_LR, EMBEDDING_LR, EPS = 1e-3, 0.05, 1e-8


def widths(text):
    return [int(w) for w in text.split(",") if w]


def linear(inp, out, fan):
    """A dense layer drawn uniformly from +-sqrt(6 / fan), bias zero (funnel's linear.rs)."""
    layer = nn.Linear(inp, out)
    bound = math.sqrt(6.0 / fan)
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.zeros_(layer.bias)
    return layer


def mlp(inp, hidden):
    layers = []
    for h in hidden:
        layers += [linear(inp, h, inp), nn.ReLU()]
        inp = h
    return nn.Sequential(*layers)


class Cross(nn.Module):
    """DCN-v2 cross layers: x_(l+1) = x_0 * (W_l x_l + b_l) + x_l (funnel's tower.rs)."""

    def __init__(self, width, layers):
        super().__init__()
        self.layers = nn.ModuleList(linear(width, width, 2 * width) for _ in range(layers))

    def forward(self, x0):
        x = x0
        for layer in self.layers:
            x = x0 * layer(x) + x
        return x


class Tower(nn.Module):
    def __init__(self, inp, hidden, cross=0):
        super().__init__()
        self.encoder = mlp(inp, hidden)
        if cross:
            self.encoder = nn.Sequential(Cross(inp, cross), self.encoder)
        width = hidden[-1] if hidden else inp
        self.head = linear(width, 1, width + 1)


class Embeddings(nn.Module):
    """One table per field, rows N(0, 0.01^2), the out-of-vocabulary row 0 zero."""

    def __init__(self, vocab, dim):
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(v, dim, sparse=True) for v in vocab)
        with torch.no_grad():
            for t in self.tables:
                t.weight.normal_(0.0, 0.01)
                t.weight[0].zero_()

    def forward(self, c, x):
        return torch.cat([t(c[:, i]) for i, t in enumerate(self.tables)] + [x], 1)


class RowwiseAdagrad:
    """Each touched row keeps one accumulator G += mean(g^2) and moves by lr * g / (sqrt(G) +
    eps) (funnel's `rowwise_adagrad`); rows a batch did not touch are not visited."""

    def __init__(self, tables, lr):
        self.tables, self.lr = list(tables), lr
        self.state = [torch.zeros(t.weight.shape[0]) for t in self.tables]

    @torch.no_grad()
    def step(self):
        for t, acc in zip(self.tables, self.state):
            g = t.weight.grad.coalesce()
            rows, values = g.indices()[0], g.values()
            acc.index_add_(0, rows, values.pow(2).mean(1))
            t.weight.index_add_(0, rows, values * (-self.lr / (acc[rows].sqrt() + EPS)).unsqueeze(1))
            t.weight.grad = None


class Esmm(nn.Module):
    cumulative_heads = False

    def __init__(self, inp, stages, hidden, cross=0, imputation=False):
        super().__init__()
        self.towers = nn.ModuleList(Tower(inp, hidden, cross) for _ in range(stages))
        # ESCM2-DR's imputation towers, one per stage after the first; read by the loss only.
        self.imputation = nn.ModuleList(Tower(inp, hidden) for _ in range(stages - 1)) if imputation else None
        self.imputed = None

    def forward(self, h):
        if self.imputation is not None and self.training:
            self.imputed = torch.cat([F.softplus(t.head(t.encoder(h))) for t in self.imputation], 1)
        return torch.cat([t.head(t.encoder(h)) for t in self.towers], 1)


class Aitm(nn.Module):
    cumulative_heads = True

    def __init__(self, inp, stages, hidden):
        super().__init__()
        self.towers = nn.ModuleList(Tower(inp, hidden) for _ in range(stages))
        d = hidden[-1]
        self.d = d
        self.info = nn.ModuleList(linear(d, d, d) for _ in range(stages - 1))
        # [W1' | W2' | W3'] per transfer: u @ maps gives the three maps of u at once.
        self.maps = nn.ParameterList(nn.Parameter(torch.randn(d, 3 * d) * 0.01) for _ in range(stages - 1))

    def forward(self, x):
        logits, parent = [], None
        for k, t in enumerate(self.towers):
            h = t.encoder(x)
            if k > 0:
                moved = F.relu(self.info[k - 1](parent))
                m = torch.stack([h, moved], 1) @ self.maps[k - 1]
                q, key, value = m.split(self.d, -1)
                weights = torch.softmax((q * key).sum(-1) / math.sqrt(self.d), 1)
                h = (weights.unsqueeze(-1) * value).sum(1)
            parent = h
            logits.append(t.head(h))
        return torch.cat(logits, 1)


class Gate(nn.Module):
    def __init__(self, inp, experts):
        super().__init__()
        self.layer = linear(inp, experts, inp + experts)

    def forward(self, x, outs):
        g = torch.softmax(self.layer(x), 1)
        return torch.bmm(g.unsqueeze(1), torch.stack(outs, 1)).squeeze(1)


class OverBottom(nn.Module):
    """ESMM's towers, each over its stage's output of a bottom."""

    cumulative_heads = False

    def __init__(self, inp, stages, hidden, kind, bottom, experts):
        super().__init__()
        self.kind, self.stages = kind, stages
        w = bottom[-1]
        if kind == "shared_bottom":
            self.bottom = mlp(inp, bottom)
        elif kind == "mmoe":
            self.experts = nn.ModuleList(mlp(inp, bottom) for _ in range(experts))
            self.gates = nn.ModuleList(Gate(inp, experts) for _ in range(stages))
        else:  # ple: 1 expert per stage and 1 shared, 2 levels
            self.levels = nn.ModuleList()
            for level in range(2):
                i = inp if level == 0 else w
                m = nn.Module()
                m.shared = mlp(i, bottom)
                m.own = nn.ModuleList(mlp(i, bottom) for _ in range(stages))
                m.gates = nn.ModuleList(Gate(i, 2) for _ in range(stages))
                m.shared_gate = Gate(i, stages + 1) if level == 0 else None
                self.levels.append(m)
        self.towers = nn.ModuleList(Tower(w, hidden) for _ in range(stages))

    def bottoms(self, x):
        if self.kind == "shared_bottom":
            return [self.bottom(x)] * self.stages
        if self.kind == "mmoe":
            outs = [e(x) for e in self.experts]
            return [g(x, outs) for g in self.gates]
        stage_in, shared_in = [x] * self.stages, x
        for m in self.levels:
            shared = m.shared(shared_in)
            own = [e(i) for e, i in zip(m.own, stage_in)]
            nxt = [g(i, [o, shared]) for g, i, o in zip(m.gates, stage_in, own)]
            if m.shared_gate is not None:
                shared_in = m.shared_gate(shared_in, own + [shared])
            stage_in = nxt
        return stage_in

    def forward(self, x):
        return torch.cat([t.head(t.encoder(b)) for t, b in zip(self.towers, self.bottoms(x))], 1)


def log1mexp(x):
    """ln(1 - e^x) for x < 0, accurate at both ends."""
    return torch.where(x > -0.6931471805599453, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def log_probs(model, z):
    """ln p_k and ln(1 - p_k) of the cumulative probabilities, from the logits."""
    if model.cumulative_heads:
        return F.logsigmoid(z), F.logsigmoid(-z)
    lp = torch.cumsum(F.logsigmoid(z), 1).clamp(max=-1e-7)
    return lp, log1mexp(lp)


def escm2_dr_loss(model, z, y):
    lp, lq = log_probs(model, z)
    cumulative = -(y * lp + (1 - y) * lq).mean(0)
    # The conditional cross-entropy of q_k (k >= 2) on every row; o masks it to the parent's.
    cond = -(y[:, 1:] * F.logsigmoid(z[:, 1:]) + (1 - y[:, 1:]) * F.logsigmoid(-z[:, 1:]))
    o = y[:, :-1]
    w = torch.clamp(1.0 / torch.clamp(lp[:, :-1].detach().exp(), min=1e-6), max=15.0)
    e = model.imputed
    dr = (e.detach() + (cond - e.detach()) * o * w).mean(0) + ((cond.detach() - e) ** 2 * o * w).mean(0)
    return cumulative[0] + (0.5 * dr + 0.5 * cumulative[1:]).sum()


def loss_of(model, z, y):
    if getattr(model, "imputation", None) is not None:
        return escm2_dr_loss(model, z, y)
    lp, lq = log_probs(model, z)
    loss = -(y * lp + (1 - y) * lq).mean(0).sum()
    if model.cumulative_heads and z.shape[1] > 1:
        p = torch.sigmoid(z)
        loss = loss + CALIBRATOR * F.relu(p[:, 1:] - p[:, :-1]).mean(0).sum()
    return loss


data = Data(args.spec, args.data, seed=args.seed, test_rows=args.test_rows)
stages, inp = len(data.stages), len(data.fields) * args.dim + len(data.numeric)
BOTTOMS = ("shared_bottom", "mmoe", "ple")
hidden = widths(args.hidden or ("64" if args.model in BOTTOMS else "128,64"))
if args.model in ("esmm", "dcn", "escm2_dr"):
    net = Esmm(inp, stages, hidden, args.cross if args.model == "dcn" else 0, args.model == "escm2_dr")
elif args.model == "aitm":
    net = Aitm(inp, stages, hidden)
else:
    net = OverBottom(inp, stages, hidden, args.model, widths(args.bottom_hidden), args.experts)
emb = Embeddings(data.vocab, args.dim)
sparse = RowwiseAdagrad(emb.tables, EMBEDDING_LR)
dense = torch.optim.Adam(net.parameters(), lr=DENSE_LR)

C, X, Y = (torch.from_numpy(a) for a in data.training(args.rows))
net.train()
n = len(C)
shuffle = torch.Generator().manual_seed(args.seed)
t0 = time.perf_counter()
for epoch in range(args.epochs):
    order = torch.randperm(n, generator=shuffle)
    for s in range(0, n, args.batch):
        rows = order[s : s + args.batch]
        loss = loss_of(net, net(emb(C[rows], X[rows])), Y[rows])
        dense.zero_grad(set_to_none=True)
        loss.backward()
        dense.step()
        sparse.step()
train_s = time.perf_counter() - t0


@torch.inference_mode()
def predict(c, x):
    """Cumulative and conditional probabilities of every row, in evaluation batches."""
    net.eval()
    c, x = torch.from_numpy(c), torch.from_numpy(x)
    cum, cond = [], []
    for s in range(0, len(c), args.eval_batch):
        z = net(emb(c[s : s + args.eval_batch], x[s : s + args.eval_batch]))
        # Unclamped ln p_k (the training loss clamps below 0 for ln(1 - p)); a cumulative head's
        # conditional is p_k / p_(k-1) clipped at 1, as funnel reports it.
        lp = F.logsigmoid(z) if net.cumulative_heads else torch.cumsum(F.logsigmoid(z), 1)
        cum.append(lp.exp())
        parent = torch.cat([torch.zeros_like(lp[:, :1]), lp[:, :-1]], 1)
        cond.append((lp - parent).clamp(max=0).exp())
    return torch.cat(cum).numpy(), torch.cat(cond).numpy()


cat_all, num_all, _ = data.all
t0 = time.perf_counter()
predict(cat_all, num_all)
predict_s = time.perf_counter() - t0
cum, cond = predict(data.test[0], data.test[1])
y = data.test[2]
metrics = {}
for k, name in enumerate(data.stages):
    metrics[f"{name}.cumulative.auc"] = auc(y[:, k], cum[:, k])
    reached = y[:, k - 1] > 0 if k > 0 else np.ones(len(y), dtype=bool)
    metrics[f"{name}.conditional.auc"] = auc(y[reached, k], cond[reached, k])
print(
    json.dumps(
        {
            "impl": f"pytorch-{args.model}",
            "samples_per_s": n * args.epochs / train_s,
            "predict_rows_per_s": len(cat_all) / predict_s,
            "samples": n * args.epochs,
            "seconds": train_s,
            "stages": data.stages,
            "test": metrics,
        }
    )
)
