"""Load the reference benchmark data (written by `funnel generate`) the same way for every trainer."""

import numpy as np
import pyarrow.parquet as pq

FIELDS = [f"f{i}" for i in range(8)]
NUMERIC = [f"n{i}" for i in range(4)]


def load(path, rows):
    t = pq.read_table(path).slice(0, rows)
    cat = np.stack([t.column(c).to_numpy().astype(np.int64) for c in FIELDS], 1)
    num = np.stack([t.column(c).to_numpy() for c in NUMERIC], 1).astype(np.float32)
    num = (num - num.mean(0)) / num.std(0)
    # Generated labels mean "reached the stage": conversion is already the cumulative label.
    click = t.column("click").to_numpy().astype(np.float32)
    conversion = t.column("conversion").to_numpy().astype(np.float32)
    return cat, num, click, conversion
