"""Writes exotic-types.parquet: columns of types funnel does not read (decimal, dictionary,
timestamp, list) beside ones it does. Run with pyarrow installed (benches/compare/.venv has it):
    benches/compare/.venv/bin/python tests/data/exotic-types.py
"""
import datetime, decimal, os
import pyarrow as pa, pyarrow.parquet as pq

n = 40
table = pa.table({
    "x": pa.array([i % 5 for i in range(n)], pa.int64()),
    "y": pa.array([int(i % 3 == 0) for i in range(n)], pa.int64()),
    "money": pa.array([decimal.Decimal(f"{i}.125") for i in range(n)], pa.decimal128(10, 3)),
    "colour": pa.array(["red", "blue"] * (n // 2)).dictionary_encode(),
    "when": pa.array([datetime.datetime(2026, 1, 1 + i % 28) for i in range(n)], pa.timestamp("ms")),
    "tags": pa.array([[i, i + 1] for i in range(n)], pa.list_(pa.int64())),
})
pq.write_table(table, os.path.join(os.path.dirname(os.path.abspath(__file__)), "exotic-types.parquet"))
