//! `funnel generate` and evaluation against the truth, through the CLI.

use crate::*;

const SPEC: &str = "name: t\nseed: 3\nselection_bias: 0.5\nnoise: 0.2\nstages:\n  - { name: click, rate: 0.2 }\n  - { name: buy, rate: 0.3 }\ncategorical:\n  - { name: user, vocab: 300, zipf: 0.8, effects: { click: 1.0, buy: 1.0 } }\n  - { name: item, vocab: 50, effects: { click: 1.0, buy: 0.8 } }\nnumeric:\n  - { name: price, normal: { mean: 3, std: 1 }, effects: { click: 0.5, buy: 0.8 } }\n";

const PIPELINE: &str = "name: syn\ndata:\n  train: { path: g.parquet }\n  valid: { split_from: train, fraction: 0.1 }\n  test: { split_from: train, fraction: 0.2 }\nfeatures:\n  categorical: [{ name: user }, { name: item }]\n  numeric: [{ name: price }]\nstages:\n  - { name: click, label: { column: click }, truth: true_click, tower: { hidden: [16] } }\n  - { name: buy, label: { column: buy }, truth: true_buy, tower: { hidden: [16] } }\ntrain: { epochs: 3, batch_size: 256 }\n";

/// Generate 20,000 rows of `spec.yaml` into `g.parquet`; the command must succeed.
fn generate_20k(s: &Scratch) -> std::process::Output {
    let g = s.run(&[
        "generate",
        "spec.yaml",
        "--rows",
        "20000",
        "--out",
        "g.parquet",
    ]);
    ok(&g);
    g
}

#[test]
fn generated_funnel_trains_and_is_judged_against_the_truth() {
    let s = Scratch::new();
    s.write("spec.yaml", SPEC);
    let g = generate_20k(&s);
    assert!(
        stderr(&g).contains("wrote 20000 rows to g.parquet"),
        "{}",
        stderr(&g)
    );
    assert!(
        stderr(&g).contains("of `click` (target 30.0000%)"),
        "{}",
        stderr(&g)
    );
    s.write("p.yaml", PIPELINE);
    let o = s.run(&["train", "p.yaml", "--out", "run"]);
    ok(&o);
    let out = stdout(&o);
    assert!(
        out.contains("entire space against the true probabilities (4000 rows"),
        "{out}"
    );
    assert!(out.contains("oracle"), "{out}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("run/metrics.json")).unwrap())
            .unwrap();
    let t = &m["test"][1]["truth"];
    for pred in ["conditional", "cumulative"] {
        let b = &t[pred];
        let (model, oracle) = (
            b["auc_counterfactual"].as_f64().unwrap(),
            b["oracle_auc"].as_f64().unwrap(),
        );
        // The model learns something, and nothing beats the truth by more than noise.
        assert!(model > 0.6 && model < oracle + 0.01, "{pred}: {b}");
        assert!(b["spearman"].as_f64().unwrap() > 0.5, "{b}");
        assert_eq!(b["all_rows"]["rows"], 4000);
        assert!(b["all_rows"]["ece"].as_f64().unwrap() < 0.1, "{b}");
    }
    // The conditional block judged on the rows that reached the previous stage uses the labels.
    assert_eq!(
        t["conditional"]["reached_previous"]["rows"],
        m["test"][0]["cumulative"]["positives"]
    );
    // The report's truth block shows these numbers.
    let html = std::fs::read_to_string(s.path("run/report.html")).unwrap();
    let truth = html
        .split("id=\"truth-table\"")
        .nth(1)
        .expect("a truth table");
    let truth = truth.split("</table>").next().unwrap();
    for pred in ["conditional", "cumulative"] {
        let auc = t[pred]["auc_counterfactual"].as_f64().unwrap();
        let oracle = t[pred]["oracle_auc"].as_f64().unwrap();
        assert!(
            truth.contains(&format!("<td>{auc:.4}</td><td>{oracle:.4}</td>")),
            "{pred}: {truth}"
        );
    }

    // eval on a fresh generated file (another seed) prints the truth table too.
    ok(&s.run(&[
        "generate",
        "spec.yaml",
        "--rows",
        "3000",
        "--out",
        "h.csv",
        "--seed",
        "9",
    ]));
    let e = s.run(&["eval", "--run", "run", "--data", "h.csv"]);
    ok(&e);
    assert!(
        stdout(&e).contains("entire space against the true probabilities (3000 rows"),
        "{}",
        stdout(&e)
    );
}

fn spec_error(yaml: &str) -> String {
    let s = Scratch::new();
    s.write("spec.yaml", yaml);
    let o = s.run(&["generate", "spec.yaml", "--rows", "100", "--out", "g.csv"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!s.path("g.csv").exists());
    assert_eq!(
        std::fs::read_dir(s.dir.path()).unwrap().count(),
        1,
        "nothing half-written"
    );
    stderr(&o)
}

#[test]
fn bad_specs_are_located_and_write_nothing() {
    let err = spec_error(&SPEC.replace("rate: 0.2", "rate: 1.5"));
    assert_eq!(
        err,
        "error: spec.yaml:6:20: `stages[0].rate`: rate must be in (0, 1), got 1.5\n  hint: e.g. `rate: 0.04` for 4% of the rows that reached the previous stage\n"
    );
    let err = spec_error("name: t\nstages: []\n");
    assert!(
        err.contains("`stages`: a funnel needs at least one stage"),
        "{err}"
    );
    let err = spec_error(&SPEC.replace("vocab: 300", "vocab: 0"));
    assert!(
        err.contains("spec.yaml:9:19: `categorical[0].vocab`: vocab must be between 1"),
        "{err}"
    );
    let err = spec_error(&SPEC.replace("zipf: 0.8", "zipf: -1.0"));
    assert!(
        err.contains("`categorical[0].zipf`: zipf must be a finite number >= 0, got -1"),
        "{err}"
    );
    let err = spec_error(&SPEC.replace(
        "effects: { click: 1.0, buy: 0.8 }",
        "effects: { clik: 1.0 }",
    ));
    assert!(
        err.contains("`categorical[1].effects.clik`: no stage is named `clik`"),
        "{err}"
    );
    let err = spec_error(&SPEC.replace("noise: 0.2", "nois: 0.2"));
    assert!(err.contains("unknown field `nois`"), "{err}");
}

#[test]
fn missing_output_folder_is_an_error() {
    let s = Scratch::new();
    s.write("spec.yaml", SPEC);
    let o = s.run(&[
        "generate",
        "spec.yaml",
        "--rows",
        "100",
        "--out",
        "no/g.parquet",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("folder no does not exist"),
        "{}",
        stderr(&o)
    );
    assert!(!s.path("no").exists());
}

/// ESM²: a generated funnel where buy does not require cart trains with `optional: true`; buy's
/// conditional is judged on the rows that reached click, its second tower is saved, and an
/// optional last stage is refused at its key.
#[test]
fn optional_stage_generates_and_trains() {
    let s = Scratch::new();
    s.write(
        "spec.yaml",
        "name: t\nseed: 3\nselection_bias: 0.5\nstages:\n  - { name: click, rate: 0.3 }\n  - { name: cart, rate: 0.4, optional: true }\n  - { name: buy, rate: 0.5, rate_without: 0.1 }\ncategorical:\n  - { name: user, vocab: 300, zipf: 0.8, effects: { click: 1.0, cart: 0.8, buy: 1.0 } }\n",
    );
    let g = generate_20k(&s);
    assert!(
        stderr(&g).contains("of `click` (targets 50.0000% after `cart`, 10.0000% without)"),
        "{}",
        stderr(&g)
    );
    let pipeline = "name: esm2\ndata:\n  train: { path: g.parquet }\n  valid: { split_from: train, fraction: 0.1 }\n  test: { split_from: train, fraction: 0.2 }\nfeatures:\n  categorical: [{ name: user }]\nstages:\n  - { name: click, label: { column: click }, truth: true_click, tower: { hidden: [8] } }\n  - { name: cart, label: { column: cart }, truth: true_cart, tower: { hidden: [8] }, optional: true }\n  - { name: buy, label: { column: buy }, truth: true_buy, tower: { hidden: [8] } }\ntrain: { epochs: 2, batch_size: 256 }\n";
    s.write("p.yaml", pipeline);
    let o = s.run(&["train", "p.yaml", "--out", "run"]);
    ok(&o);
    let out = stdout(&o);
    assert!(
        out.contains("conditional P(buy|click)   reached click"),
        "{out}"
    );
    assert!(
        out.contains("conditional P(cart|click)  reached click"),
        "{out}"
    );
    // No buyer without a cart was dropped as inconsistent.
    assert!(!stderr(&o).contains("inconsistent"), "{}", stderr(&o));
    let header = s.weights_header("run");
    assert!(header.contains("branches.buy.0.weight"), "{header}");
    ok(&s.run(&[
        "predict",
        "--run",
        "run",
        "--data",
        "g.parquet",
        "--out",
        "p.csv",
    ]));
    let bad = pipeline.replace(
        "truth: true_buy, tower: { hidden: [8] } }",
        "truth: true_buy, tower: { hidden: [8] }, optional: true }",
    );
    s.write("bad.yaml", &bad);
    let err = s.refused(&["validate", "bad.yaml"]);
    assert!(
        err.contains("`stages[2].optional`: an optional stage needs a stage after it"),
        "{err}"
    );
}
