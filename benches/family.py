#!/usr/bin/env python3
"""The model family side by side, with the release binary (python3 standard library only).

    benches/family.py bias [--rows 1000000] [--seed 42]   # entire-space table of docs/models.md
    benches/family.py speed [--reps 5] [--blocks]          # each preset's (or block's) throughput
    benches/family.py adult                                # every adult pipeline's test metrics
    benches/family.py esm2                                 # ESM² against ESMM on click -> buy
    benches/family.py calibrator                           # AITM's order violations, λ 0.6 and 0

`bias` trains every preset on generated two-stage data with strong selection bias
(pipelines/generate/biased-two-stage.yaml) and prints, from each run's metrics.json, how its
conversion predictions compare with the true probabilities over ALL rows (test split).
`speed` runs the reference benchmark (pipelines/bench/reference.yaml) once per preset per
repetition, presets interleaved, and prints median training samples/s and the ratio to esmm.
"""
import argparse, json, os, re, statistics, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "funnel")
PRESETS = ["esmm", "esmm_ns", "naive", "division", "aitm", "escm2_ips", "escm2_dr"]
# Blocks of part 2, on esmm: `speed --blocks` measures these instead.
BLOCKS = {
    "shared_bottom": "  bottom: { kind: shared_bottom, hidden: [128] }",
    "mmoe": "  bottom: { kind: mmoe, experts: 4, hidden: [128] }",
    "ple": "  bottom: { kind: ple, hidden: [128] }",
    "uncertainty": "  loss_weighting: uncertainty",
    "gradnorm": "  loss_weighting: gradnorm",
}


def run(*args):
    subprocess.run([BIN, *args], check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def with_preset(template, preset, data=None):
    text = open(os.path.join(ROOT, template)).read()
    base = os.path.dirname(os.path.join(ROOT, template))
    # Absolute data paths, so the temporary pipeline can live anywhere.
    text = re.sub(r"path: (\.\./[^ }]+)", lambda m: "path: " + os.path.normpath(os.path.join(base, m.group(1))), text)
    if data:
        text = re.sub(r"path: [^ }]+two-stage\.parquet", "path: " + data, text)
    # `esmm_ns` is ESMM with one set of embedding tables per stage; blocks sit on esmm.
    if preset == "esmm_ns":
        model = "  preset: esmm\n  representation: per_stage_embeddings"
    elif preset in BLOCKS:
        model = "  preset: esmm\n" + BLOCKS[preset]
    elif preset == "dcn":
        model = "  preset: esmm"
        text = text.replace("hidden: [128, 64] }", "hidden: [128, 64], cross_layers: 2 }")
    elif preset == "buckets":
        # Every numeric feature read as a 32-bucket embedding instead of its value.
        model = "  preset: esmm"
        text = re.sub(r"\{ name: (n\d) \}", r"{ name: \1, transform: quantile_buckets }", text)
    else:
        model = f"  preset: {preset}"
    if re.search(r"^model:", text, re.M):
        text = re.sub(r"(?m)^  preset: \w+", model, text)
    else:
        text = text.replace("\ntrain:\n", f"\nmodel:\n{model}\ntrain:\n", 1)
    return text


def train(text, out, tmp, name):
    path = os.path.join(tmp, f"{name}.yaml")
    open(path, "w").write(text)
    run("train", path, "--out", out)
    return json.load(open(os.path.join(out, "metrics.json")))


def generated(name, rows):
    """data/synthetic/<name>.parquet, generated from pipelines/generate/<name>.yaml when missing."""
    data = os.path.join(ROOT, "data", "synthetic", f"{name}.parquet")
    if not os.path.exists(data):
        run("generate", f"pipelines/generate/{name}.yaml", "--rows", str(rows), "--out", data)
    return data


def shipped(pipeline):
    """The text of pipelines/<pipeline>.yaml with its data paths made absolute."""
    return open(os.path.join(ROOT, "pipelines", f"{pipeline}.yaml")).read().replace("../data/", os.path.join(ROOT, "data") + "/")


def bias(args):
    data = generated("biased-two-stage", args.rows)
    f4 = lambda v: "-" if v is None else f"{v:.4f}"
    s4 = lambda v: "-" if v is None else f"{v:+.4f}"
    print("| preset | P(conversion\\|click), all rows: AUC vs counterfactual | Spearman vs truth | calibration bias (all rows) | bias (clicked rows) | P(conversion\\|click) AUC on clicked rows | P(conversion) AUC, all rows | order violations |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    oracle = None
    with tempfile.TemporaryDirectory() as tmp:
        for preset in PRESETS:
            text = with_preset("pipelines/synthetic-two-stage.yaml", preset, data)
            text = re.sub(r"(?m)^  seed: \d+", f"  seed: {args.seed}", text)
            m = train(text, os.path.join(tmp, preset), tmp, preset)
            conv = m["test"][1]
            t = conv["truth"]["conditional"]
            oracle = t["oracle_auc"]
            v = conv.get("order_violations")
            print(f"| {preset} | {f4(t['auc_counterfactual'])} | {f4(t['spearman'])} | {s4(t['all_rows']['bias'])} "
                  f"| {s4(t['reached_previous']['bias'])} | {f4(conv['conditional']['auc'])} | {f4(conv['cumulative']['auc'])} "
                  f"| {'-' if v is None else f'{100 * v:.2f}%'} |", flush=True)
    print(f"\nOracle (the true P(conversion|click) as prediction) AUC vs the same counterfactual labels: {f4(oracle)}")


ADULT = ["esmm", "esmm-ns", "naive", "independent", "division", "aitm", "escm2-ips", "escm2-dr",
         "shared-bottom", "mmoe", "ple", "esmm-dcn", "esmm-uncertainty", "esmm-fm", "esmm-groups",
         "esmm-gradnorm", "esmm-buckets"]


def adult(args):
    print("| pipeline | best epoch | click AUC | P(conversion) AUC, all rows | P(conversion\\|click) AUC, clicked rows | P(conversion) log loss | train samples/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ADULT:
            out = os.path.join(tmp, name)
            run("train", f"pipelines/{name}.yaml", "--out", out)
            m = json.load(open(os.path.join(out, "metrics.json")))
            click, conv = m["test"][0], m["test"][1]
            print(f"| `{name}.yaml` | {m['best_epoch']} | {click['cumulative']['auc']:.4f} | {conv['cumulative']['auc']:.4f} "
                  f"| {conv['conditional']['auc']:.4f} | {conv['cumulative']['logloss']:.4f} | {m['timing']['train_samples_per_s']:,.0f} |", flush=True)


def esm2(args):
    """ESM² against ESMM on click -> buy (the same file and settings without the cart stage)."""
    generated("esm2", 1_000_000)
    text = shipped("esm2")
    plain = "\n".join(l for l in text.split("\n") if "name: cart" not in l)
    print("| model | P(buy) AUC, all rows | P(buy) vs truth: AUC vs counterfactual / Spearman | P(buy\\|click) AUC on clicked rows | P(buy\\|click) vs truth, all rows: AUC vs counterfactual / Spearman / bias |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for name, t in [("ESM²", text), ("ESMM, click → buy", plain)]:
            m = train(t, os.path.join(tmp, str(len(name))), tmp, "esm2")
            buy = [st for st in m["test"] if st["name"] == "buy"][0]
            c, q = buy["truth"]["cumulative"], buy["truth"]["conditional"]
            print(f"| {name} | {buy['cumulative']['auc']:.4f} | {c['auc_counterfactual']:.4f} / {c['spearman']:.4f} | "
                  f"{buy['conditional']['auc']:.4f} | {q['auc_counterfactual']:.4f} / {q['spearman']:.4f} / {q['all_rows']['bias']:+.4f} |", flush=True)


def calibrator(args):
    """AITM on the five-stage funnel with the calibrator at 0.6 and off: order violations."""
    generated("five-stage", 1_000_000)
    text = shipped("aitm-5stage")
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for lam in ["0.6", "0"]:
            t = text.replace("calibrator: 0.6", f"calibrator: {lam}")
            runs[lam] = train(t, os.path.join(tmp, lam.replace(".", "_")), tmp, "aitm5")["test"]
    print("| stage | share of rows with p_k > p_parent, λ = 0.6 | λ = 0 | cumulative AUC, λ = 0.6 | λ = 0 |")
    print("| --- | --- | --- | --- | --- |")
    for a, b in zip(runs["0.6"][1:], runs["0"][1:]):
        print(f"| {a['name']} | {100 * a['order_violations']:.2f}% | {100 * b['order_violations']:.2f}% | "
              f"{a['cumulative']['auc']:.4f} | {b['cumulative']['auc']:.4f} |")


def speed(args):
    names = ["esmm", *BLOCKS, "dcn", "buckets"] if args.blocks else PRESETS
    rates = {p: [] for p in names}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for preset in names:
                m = train(with_preset("pipelines/bench/reference.yaml", preset), os.path.join(tmp, f"{preset}{rep}"), tmp, preset)
                rates[preset].append(m["timing"]["train_samples_per_s"])
            print(f"rep {rep + 1}: " + ", ".join(f"{p} {rates[p][-1]:,.0f}" for p in names), file=sys.stderr, flush=True)
    base = rates["esmm"]
    print(f"| preset | training samples/s (median of {args.reps}) | / esmm (ratio of medians) | / esmm (median of paired reps) |")
    print("| --- | --- | --- | --- |")
    for p in names:
        r = rates[p]
        print(f"| {p} | {statistics.median(r):,.0f} | {statistics.median(r) / statistics.median(base):.2f} | "
              f"{statistics.median(a / b for a, b in zip(r, base)):.2f} |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    b = sub.add_parser("bias")
    b.add_argument("--rows", type=int, default=1_000_000)
    b.add_argument("--seed", type=int, default=42)
    s = sub.add_parser("speed")
    s.add_argument("--reps", type=int, default=5)
    s.add_argument("--blocks", action="store_true", help="the part-2 blocks on esmm instead of the presets")
    sub.add_parser("adult")
    sub.add_parser("esm2")
    sub.add_parser("calibrator")
    a = ap.parse_args()
    {"bias": bias, "speed": speed, "adult": adult, "esm2": esm2, "calibrator": calibrator}[a.what](a)
