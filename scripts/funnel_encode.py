"""A server's encoder for a model `funnel export` wrote: raw values of a text file turned into
the ONNX graph's inputs from the sidecar JSON alone, by the rules of docs/export.md. Standard
library only.

    python funnel_encode.py MODEL.onnx.json DATA.csv     # the inputs as JSON, on stdout

It covers categorical (vocabulary or hashed), bucketed and numeric features read from a text
file with a header; multi-valued features and histories follow the same rules and are left to
`funnel::serve::Model::encode`. Differences from funnel's own reader: Python's `csv` unquotes
before trimming, `float` accepts a few spellings funnel refuses (`1_000`), and `missing: error`
is not enforced. A test (tests/cli/export.rs) checks its output equals the Rust encoder's.
"""

import bisect
import csv
import json
import math
import sys

PAD, OOV, MISSING, FIRST = 0, 1, 2, 3


def fnv1a(text):
    h = 0xCBF29CE484222325
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def canonical_int(t):
    """The integer whose decimal text is exactly `t` (optionally followed by `.0...`)."""
    if "." in t:
        whole, zeros = t.split(".", 1)
        if not zeros or set(zeros) != {"0"}:
            return None
        t = whole
    digits = t[1:] if t.startswith("-") else t
    if not digits or len(digits) > 19 or not digits.isdigit() or not digits.isascii():
        return None
    if digits[0] == "0" and (len(digits) > 1 or t.startswith("-")):
        return None
    v = int(t)
    return v if -(2**63) <= v < 2**63 else None


class Categorical:
    def __init__(self, enc):
        self.buckets = enc.get("hash_buckets")
        tokens = enc.get("tokens", [])
        ints = [canonical_int(t) for t in tokens]
        self.ints = all(i is not None for i in ints)
        keys = ints if self.ints else tokens
        self.index = {k: FIRST + i for i, k in enumerate(keys)}

    def encode(self, v):
        if v is None:
            return MISSING
        if self.buckets is not None:
            return FIRST + fnv1a(v) % self.buckets
        key = canonical_int(v) if self.ints else v
        return self.index.get(key, OOV)


def number(v):
    if v is None:
        return None
    x = float(v)
    return x if math.isfinite(x) else None


def numeric_value(enc, x):
    if x is None:
        t = enc["fill"]
    elif enc["transform"] == "log1p":
        t = math.copysign(math.log1p(abs(x)), x)
    else:
        t = x
    return (t - enc["shift"]) / enc["scale"]


def bucket(enc, x):
    if x is None:
        return MISSING
    return FIRST + bisect.bisect_right(enc["boundaries"], x)


def encode(sidecar, path):
    """The graph's inputs for every row of the text file at `path`, by the sidecar's rules:
    each id input a list of ints, `numeric` a list of rows (lists of floats; the graph takes
    them as float32)."""
    inputs = sidecar["inputs"]
    if inputs["bags"] or inputs["sequences"]:
        sys.exit("this reference encoder reads categorical, bucketed and numeric features only")
    text = sidecar["text"]
    nulls = set(text["null_values"])

    def clean(v):
        if text["trim_whitespace"]:
            v = v.strip(" \t")
        return None if v in nulls else v

    if text["format"] != "csv" or not text["header"]:
        sys.exit("this reference encoder reads text files with a header row")
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f, delimiter=text["separator"]) if r]
    header = [h.strip(" \t") if text["trim_whitespace"] else h for h in rows[0]]
    rows = rows[1:]
    at = {name: i for i, name in enumerate(header)}
    enc = sidecar["encoders"]
    categorical = {c["name"]: Categorical(c) for c in enc["categorical"]}
    numeric = {n["name"]: n for n in enc["numeric"]}
    feed = {}
    for spec in inputs["ids"]:
        col = at[spec["column"]]
        values = [clean(r[col]) for r in rows]
        if spec["kind"] == "categorical":
            c = categorical[spec["feature"]]
            ids = [c.encode(v) for v in values]
        else:
            n = numeric[spec["feature"]]
            ids = [bucket(n, number(v)) for v in values]
        feed[spec["input"]] = ids
    if inputs["numeric"] is not None:
        cols = [(numeric[c["feature"]], at[c["column"]]) for c in inputs["numeric"]["columns"]]
        feed[inputs["numeric"]["input"]] = [
            [numeric_value(n, number(clean(r[col]))) for n, col in cols] for r in rows
        ]
    return feed, len(rows)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        sidecar = json.load(f)
    inputs, rows = encode(sidecar, sys.argv[2])
    json.dump({"rows": rows, "inputs": inputs}, sys.stdout)
