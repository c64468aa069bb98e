"""Load the reference benchmark data (written by `funnel generate`) the same way for every trainer."""

import argparse

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


def arguments(extra=(), extra_text=()):
    """The options every trainer script takes; `extra` adds (flag, default) integer options,
    `extra_text` (flag, default) text options."""
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--vocab", type=int, default=1_000_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=2048)
    for flag, default in extra:
        p.add_argument(flag, type=int, default=default)
    for flag, default in extra_text:
        p.add_argument(flag, default=default)
    return p.parse_args()
