"""An exported funnel model in ONNX Runtime: the graph checked by `onnx.checker`, a text file's
rows encoded from the sidecar alone (the reference encoder below, the rules of docs/export.md),
every output compared with `funnel predict`'s file, and the session's latency measured.

    python onnx_check.py MODEL.onnx DATA.csv PREDICTIONS.csv

Prints one line of JSON. Needs onnx, onnxruntime and numpy (scripts/onnx-check.sh installs them
into a throwaway virtual environment). The reference encoder covers categorical, bucketed and
numeric features read from a text file; multi-valued features and histories follow the same
rules and are left to `funnel::serve::Model::encode`.
"""

import bisect
import csv
import json
import math
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort

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
    """The graph's inputs for every row of the text file at `path`, by the sidecar's rules."""
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
        feed[spec["input"]] = np.array(ids, dtype=np.int64)
    if inputs["numeric"] is not None:
        cols = inputs["numeric"]["columns"]
        m = np.empty((len(rows), len(cols)), dtype=np.float32)
        for j, spec in enumerate(cols):
            n, col = numeric[spec["feature"]], at[spec["column"]]
            m[:, j] = [numeric_value(n, number(clean(r[col]))) for r in rows]
        feed[inputs["numeric"]["input"]] = m
    return feed, len(rows)


def median_ms(run, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    times.sort()
    return 1000 * times[len(times) // 2]


def main(model_path, data_path, predictions_path):
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    with open(model_path + ".json") as f:
        sidecar = json.load(f)
    feed, n = encode(sidecar, data_path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, feed)))
    with open(predictions_path, newline="") as f:
        reader = csv.DictReader(f)
        want = {name: [] for name in names}
        for row in reader:
            for name in names:
                want[name].append(float(row[name]))
    worst = max(
        float(np.max(np.abs(outputs[name].astype(np.float64) - np.array(want[name]))))
        for name in names
    )
    one = {k: v[:1] for k, v in feed.items()}
    batch = {k: v[:1024] for k, v in feed.items()}
    result = {
        "model": model_path.rsplit("/", 1)[-1],
        "rows": n,
        "opset": model.opset_import[0].version,
        "max_abs_diff_vs_predict": worst,
        "ort": ort.__version__,
        "latency_ms_1_row": round(median_ms(lambda: session.run(None, one), 2000), 4),
        "latency_ms_1024_rows": round(median_ms(lambda: session.run(None, batch), 200), 3),
    }
    print(json.dumps(result))
    if worst > 1e-5:
        sys.exit(f"ONNX Runtime differs from funnel predict by {worst}")


if __name__ == "__main__":
    main(*sys.argv[1:])
