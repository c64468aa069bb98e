"""torch-rechub's AITM as its users run it (SparseFeature + AITM + MTLTrainer, Adam), on the
reference data: per-task bottoms 128-64 with the info gate and attention between them, and an
output layer per task, so the shape matches funnel's `aitm` preset on the reference pipeline
(towers 128-64 -> 1). torch-rechub's AITM has no calibrator. Times one training epoch
(`train_one_epoch`), excluding validation."""

import json
import tempfile
import time

import numpy as np
import torch
from torch_rechub.basic.features import SparseFeature
from torch_rechub.models.multi_task import AITM
from torch_rechub.trainers import MTLTrainer
from torch_rechub.utils.data import DataGenerator

from reference_data import FIELDS, arguments, load

args = arguments()
torch.set_num_threads(args.threads)
torch.manual_seed(0)

cat, _num, click, conversion = load(args.data, args.rows)
features = [SparseFeature(f, args.vocab, embed_dim=16) for f in FIELDS]
x = {f: cat[:, i] for i, f in enumerate(FIELDS)}
# AITM predicts each step's cumulative probability: click, then click and conversion.
y = np.stack([click, conversion], 1)
val = {f: v[:2048] for f, v in x.items()}
dg = DataGenerator(x, y)
train_dl, _val_dl, _test_dl = dg.generate_dataloader(x_val=val, y_val=y[:2048], x_test=val, y_test=y[:2048], batch_size=args.batch)
model = AITM(features, 2, bottom_params={"dims": [128, 64]}, tower_params_list=[{"dims": []}, {"dims": []}])
with tempfile.TemporaryDirectory() as d:
    trainer = MTLTrainer(model, task_types=["classification"] * 2, optimizer_params={"lr": 1e-3, "weight_decay": 1e-5}, n_epoch=1, device="cpu", model_path=d)
    t0 = time.perf_counter()
    trainer.train_one_epoch(train_dl)
    dt = time.perf_counter() - t0
n = len(cat)
print(json.dumps({"impl": "torch-rechub-aitm", "samples_per_s": n / dt, "samples": n, "seconds": dt}))
