"""An exported funnel model in ONNX Runtime: the graph checked by `onnx.checker`, a text file's
rows encoded from the sidecar alone (funnel_encode.py, the rules of docs/export.md),
every output compared with `funnel predict`'s file, and the session's latency measured.

    python onnx_check.py MODEL.onnx DATA.csv PREDICTIONS.csv

Prints one line of JSON. Needs onnx, onnxruntime and numpy (scripts/onnx-check.sh installs them
into a throwaway virtual environment).
"""

import csv
import json
import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from funnel_encode import encode  # noqa: E402

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
    lists, n = encode(sidecar, data_path)
    feed = {
        name: np.array(v, dtype=np.int64 if name.startswith("ids.") else np.float32)
        for name, v in lists.items()
    }
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
