"""torch-rechub's models as its users run them (SparseFeature + the model + MTLTrainer, Adam),
in the shape of the funnel pipeline they are compared with (benches/compare/run.sh), on the same
encoded rows (reference_data.Data: tables as large as funnel's):

- `esmm` (two stages only): torch-rechub's ESMM, towers 128-64, the first 4 fields as the user
  side and the rest as the item side;
- `aitm`: per-task bottoms 128-64 with its info gate and attention, and an output layer per task
  (funnel's `aitm` preset, towers 128-64 -> 1); torch-rechub's AITM has no calibrator;
- `shared_bottom`, `mmoe`, `ple`: a 128-wide bottom (or 128-wide experts: 4 for MMoE; 1 shared
  and 1 per task on 2 levels for PLE), then a 64-wide tower and an output per task; these train
  the tasks independently, not as a funnel.

Every task is a cumulative label. The comparison is of speed: one training epoch
(`train_one_epoch`), excluding validation, is timed; torch-rechub reads categorical fields only."""

import json
import tempfile
import time

import numpy as np
import torch
from torch_rechub.basic.features import SparseFeature
from torch_rechub.models.multi_task import AITM, ESMM, MMOE, PLE, SharedBottom
from torch_rechub.trainers import MTLTrainer
from torch_rechub.utils.data import DataGenerator

from reference_data import Data, arguments

args = arguments(extra_text=(("--model", "mmoe"),))
torch.set_num_threads(args.threads)
torch.manual_seed(0)

data = Data(args.spec, args.data, test_rows=args.test_rows)
cat, _num, labels = data.training(args.rows)
stages = len(data.stages)
features = [SparseFeature(f, v, embed_dim=16) for f, v in zip(data.fields, data.vocab)]
x = {f: cat[:, i] for i, f in enumerate(data.fields)}
y = labels
tasks = ["classification"] * stages
towers = [{"dims": [64]}] * stages
if args.model == "esmm":
    if stages != 2:
        raise SystemExit("torch-rechub's ESMM has two tasks")
    # rechub's label order for ESMM: cvr, ctr, ctcvr.
    y = np.stack([labels[:, 1], labels[:, 0], labels[:, 1]], 1)
    tasks = ["classification"] * 3
    model = ESMM(features[:4], features[4:], cvr_params={"dims": [128, 64]}, ctr_params={"dims": [128, 64]})
elif args.model == "aitm":
    model = AITM(features, stages, bottom_params={"dims": [128, 64]}, tower_params_list=[{"dims": []}] * stages)
elif args.model == "shared_bottom":
    model = SharedBottom(features, tasks, bottom_params={"dims": [128]}, tower_params_list=towers)
elif args.model == "mmoe":
    model = MMOE(features, tasks, n_expert=4, expert_params={"dims": [128]}, tower_params_list=towers)
else:
    model = PLE(features, tasks, n_level=2, n_expert_specific=1, n_expert_shared=1, expert_params={"dims": [128]}, tower_params_list=towers)
val = {f: v[:2048] for f, v in x.items()}
dg = DataGenerator(x, y)
train_dl, _val_dl, _test_dl = dg.generate_dataloader(x_val=val, y_val=y[:2048], x_test=val, y_test=y[:2048], batch_size=args.batch)
with tempfile.TemporaryDirectory() as d:
    trainer = MTLTrainer(model, task_types=tasks, optimizer_params={"lr": 1e-3, "weight_decay": 1e-5}, n_epoch=1, device="cpu", model_path=d)
    t0 = time.perf_counter()
    trainer.train_one_epoch(train_dl)
    dt = time.perf_counter() - t0
n = len(cat)
print(json.dumps({"impl": f"torch-rechub-{args.model}", "samples_per_s": n / dt, "samples": n, "seconds": dt}))
