//! Bad input: a clear message naming the place, exit code 2, never a panic.

use crate::*;

fn pipeline_error(yaml: &str) -> String {
    let s = Scratch::new();
    s.adult_slice("adult.data", 50, "train.csv");
    s.adult_slice("adult.test", 50, "test.csv");
    s.write("p.yaml", yaml);
    s.refused(&["validate", "p.yaml"])
}

fn base() -> String {
    adult_yaml(&format!("{CLICK}{CONVERSION}"), "")
}

#[test]
fn unknown_key_names_line_column_path_and_fix() {
    let yaml = base().replace(
        "    tower: { hidden: [16] }\n  - name: conversion",
        "    towr: { hidden: [16] }\n  - name: conversion",
    );
    assert_eq!(
        pipeline_error(&yaml),
        "error: p.yaml:26:5: `stages[0].towr`: unknown field `towr`, expected one of `name`, `label`, `tower`, `loss_weight`, `truth`, `optional`\n  hint: did you mean `tower`? (the accepted keys are listed after `expected`)\n"
    );
    // Nothing close: the general advice.
    let yaml = base().replace(
        "    tower: { hidden: [16] }\n  - name: conversion",
        "    zzzzzz: 1\n  - name: conversion",
    );
    assert!(pipeline_error(&yaml).contains("hint: remove the key or fix its spelling"));
}

/// Every problem of a pipeline in one run: structural faults (an unknown key, a value of the
/// wrong type) and faults of meaning (a bad name, a width, a duplicate stage, a learning rate),
/// top to bottom, each at its own line, column and path; `train` refuses with the same list.
#[test]
fn every_problem_is_reported_in_one_run() {
    let yaml = base()
        .replace("name: slice", "name: my slice")
        .replace("    - name: sex\n", "    - name: sex\n      dim: 0\n")
        .replace(
            "    tower: { hidden: [16] }\n  - name: conversion",
            "    towr: { hidden: [16] }\n  - name: click",
        )
        .replace("epochs: 6", "epochs: two")
        .replace(
            "  threads: 2\n",
            "  threads: 2\n  sed: 3\n  optimizer: { lr: -1 }\n",
        );
    let s = Scratch::new();
    s.adult_slice("adult.data", 50, "train.csv");
    s.adult_slice("adult.test", 50, "test.csv");
    s.write("p.yaml", &yaml);
    let err = s.refused(&["validate", "p.yaml"]);
    let places: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix('[').and_then(|l| l.split_once("`: ")))
        .map(|(place, _)| place)
        .collect();
    assert!(err.starts_with("error: 7 problems found\n"), "{err}");
    assert_eq!(
        places,
        [
            "1/7] p.yaml:1:1: `name",
            "2/7] p.yaml:18:7: `features.categorical[4].dim",
            "3/7] p.yaml:27:5: `stages[0].towr",
            "4/7] p.yaml:28:5: `stages[1].name",
            "5/7] p.yaml:32:3: `train.epochs",
            "6/7] p.yaml:35:3: `train.sed",
            "7/7] p.yaml:36:16: `train.optimizer.lr",
        ],
        "{err}"
    );
    assert_eq!(s.refused(&["train", "p.yaml", "--out", "run"]), err);
    assert!(!s.path("run").exists());
}

/// Every missing column of every file, and a missing file, in one run.
#[test]
fn every_missing_column_and_file_is_reported_in_one_run() {
    let yaml = base()
        .replace("    - name: sex\n", "    - name: sexx\n")
        .replace("    - name: age\n", "    - name: agee\n")
        .replace("path: test.csv", "path: nope.csv");
    let err = pipeline_error(&yaml);
    assert!(err.starts_with("error: 2 problems found\n[1/2] "), "{err}");
    assert!(
        err.contains("train.csv: 2 columns not found: `sexx`, `agee`\n  hint: the file has columns: age, workclass"),
        "{err}"
    );
    assert!(
        err.contains("\n[2/2] ") && err.contains("nope.csv: file not found"),
        "{err}"
    );
}

#[test]
fn wrong_type_is_located() {
    let yaml = base().replace("epochs: 6", "epochs: two");
    assert_eq!(
        pipeline_error(&yaml),
        "error: p.yaml:31:11: `train.epochs`: invalid type: string \"two\", expected usize\n  hint: check the value's type against docs/pipeline.md\n"
    );
}

#[test]
fn malformed_yaml_is_located() {
    let err = pipeline_error("name: x\n  data: [\n");
    assert!(err.starts_with("error: p.yaml:2:"), "{err}");
}

#[test]
fn label_used_as_feature_is_leakage() {
    let yaml = base().replace("    - name: sex\n", "    - name: marital-status\n");
    assert_eq!(
        pipeline_error(&yaml),
        "error: p.yaml:17:7: `features.categorical[4]`: column `marital-status` is the label of stage `conversion` and also a feature: the model would read the answer\n  hint: remove the feature\n"
    );
}

#[test]
fn valid_equal_to_test_is_refused() {
    let yaml = base().replace(
        "  valid: { split_from: train, fraction: 0.2 }\n",
        "  valid:\n    path: test.csv\n    csv: { trim_whitespace: true, null_values: [\"?\"] }\n",
    );
    let err = pipeline_error(&yaml);
    assert!(
        err.starts_with("error: p.yaml:9:3: `data.test`: the validation split equals the test split\n  hint: early stopping on the test rows"),
        "{err}"
    );
}

#[test]
fn semantic_checks_point_at_the_key() {
    let err = pipeline_error(&base().replace(
        "tower: { hidden: [16] }\n  - name: conversion",
        "tower: { hidden: [16], dropout: 1.5 }\n  - name: conversion",
    ));
    assert!(
        err.starts_with(
            "error: p.yaml:26:28: `stages[0].tower.dropout`: dropout must be in [0, 1), got 1.5"
        ),
        "{err}"
    );
    let err = pipeline_error(&base().replace("- name: conversion", "- name: click"));
    assert!(
        err.contains("`stages[1].name`: stage `click` is declared twice"),
        "{err}"
    );
    let err = pipeline_error(
        &base()
            .replace("stages:\n", "stages: []\n")
            .replace(CLICK, "")
            .replace(CONVERSION, ""),
    );
    assert!(
        err.contains("`stages`: a funnel needs at least one stage"),
        "{err}"
    );
}

#[test]
fn missing_file_and_missing_column() {
    let err = pipeline_error(&base().replace("path: test.csv", "path: nope.csv"));
    assert!(
        err.starts_with("error: ") && err.contains("nope.csv: file not found"),
        "{err}"
    );
    let err = pipeline_error(&base().replace("    - name: sex\n", "    - name: sexx\n"));
    assert!(err.contains("train.csv: column `sexx`: column not found\n  hint: the file has columns: age, workclass"), "{err}");
}

#[test]
fn label_values_outside_declared_ones_name_the_row() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    s.edit(
        "pipeline.yaml",
        r#"negative: ["<=50K", "<=50K."]"#,
        r#"negative: ["<=50K"]"#,
    );
    let err = s.refused(&["train", "pipeline.yaml", "--out", "run"]);
    assert!(
        err.contains("test.csv: column `Y`, row 1: label value \"<=50K.\" is neither positive"),
        "{err}"
    );
}

/// A hand-made 0/1 funnel: row 3 bought without clicking, row 4 has a NaN.
fn tiny(missing: &str, inconsistent: &str) -> Scratch {
    let s = Scratch::new();
    s.write(
        "t.csv",
        "id,x,n,click,buy\n1,a,0.5,1,1\n2,b,1.5,0,0\n3,a,2.5,0,1\n4,b,NaN,1,0\n5,a,1.0,1,0\n6,b,2.0,0,0\n",
    );
    s.write(
        "p.yaml",
        &format!(
            "name: tiny\ndata:\n  train: {{ path: t.csv }}\n  id_column: id\nfeatures:\n  categorical: [{{ name: x }}]\n  numeric: [{{ name: n, missing: {missing} }}]\nstages:\n  - {{ name: click, label: {{ column: click }} }}\n  - {{ name: buy, label: {{ column: buy }} }}\ntrain: {{ epochs: 1 }}\ninconsistent_rows: {inconsistent}\n"
        ),
    );
    s
}

#[test]
fn inconsistent_rows_are_dropped_and_reported_or_rejected() {
    let s = tiny("mean", "drop");
    let o = s.run(&["train", "p.yaml", "--out", "run"]);
    ok(&o);
    assert!(
        stderr(&o).contains(
            "warning: train: dropped 1 inconsistent row(s) that reached `buy` without `click`"
        ),
        "{}",
        stderr(&o)
    );
    let s = tiny("mean", "error");
    let err = s.refused(&["train", "p.yaml", "--out", "run"]);
    assert!(
        err.contains(
            "t.csv: column `buy`, row 3: the row reached stage `buy` without reaching `click`"
        ),
        "{err}"
    );
}

#[test]
fn nan_in_numeric_column_rejected_when_declared() {
    let s = tiny("error", "drop");
    let err = s.refused(&["train", "p.yaml", "--out", "run"]);
    assert!(
        err.contains("t.csv: column `n`, row 4: non-finite value NaN"),
        "{err}"
    );
}

#[test]
fn text_in_numeric_column_names_the_row() {
    let s = tiny("mean", "drop");
    let csv = std::fs::read_to_string(s.path("t.csv")).unwrap();
    s.write("t.csv", &csv.replace("5,a,1.0,1,0", "5,a,lots,1,0"));
    let err = s.refused(&["train", "p.yaml", "--out", "run"]);
    assert!(
        err.contains("t.csv: column `n`, row 5: \"lots\" is not a number"),
        "{err}"
    );
}

#[test]
fn tampered_run_directory_is_refused() {
    let s = Scratch::new();
    s.adult_pipeline(CLICK, "");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    let enc = s.path("run/encoders.json");
    let text = std::fs::read_to_string(&enc)
        .unwrap()
        .replace("Bachelors", "Bachelor");
    std::fs::write(&enc, text).unwrap();
    let err = s.refused(&["eval", "--run", "run", "--data", "test.csv"]);
    assert!(
        err.contains("encoders.json does not match the run's manifest"),
        "{err}"
    );
    let err = s.refused(&["eval", "--run", "nowhere", "--data", "test.csv"]);
    assert!(
        err.contains("run directory nowhere: does not exist or is empty"),
        "{err}"
    );
}

#[test]
fn predict_names_a_missing_feature_column() {
    let s = Scratch::new();
    s.adult_pipeline(CLICK, "");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    s.write("new.csv", "age, workclass\n39, Private\n");
    let err = s.refused(&[
        "predict", "--run", "run", "--data", "new.csv", "--out", "p.csv",
    ]);
    assert!(
        err.contains("new.csv: 6 columns not found: `education`, `occupation`, `relationship`, `sex`, `capital-gain`, `hours-per-week`\n  hint: the file has columns: age, workclass"),
        "{err}"
    );
    let err = s.refused(&[
        "predict",
        "--run",
        "run",
        "--data",
        "test.csv",
        "--out",
        "no/such/p.csv",
    ]);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!s.path("no").exists());
}

#[test]
fn empty_training_split_is_an_error() {
    let s = Scratch::new();
    s.adult_pipeline(CLICK, "");
    s.adult_slice("adult.data", 0, "train.csv");
    let err = s.refused(&["train", "pipeline.yaml", "--out", "run"]);
    assert!(
        err.contains("train.csv: the training split has no usable rows"),
        "{err}"
    );
}

#[test]
fn column_roles_may_not_clash() {
    let yaml = base().replace("  test:\n", "  id_column: click_cumulative\n  test:\n");
    let err = pipeline_error(&yaml);
    assert!(err.contains("`data.id_column`: id column `click_cumulative` has the name of a prediction column of stage `click`"), "{err}");
    let yaml = base()
        .replace(
            "    tower: { hidden: [16] }\n  - name: conversion",
            "    tower: { hidden: [16] }\n    truth: Y\n  - name: conversion",
        )
        .replace(
            "meaning: given_previous }\n",
            "meaning: given_previous }\n    truth: marital-status\n",
        );
    let err = pipeline_error(&yaml);
    assert!(
        err.contains("`stages[0].truth`: truth column `Y` is also the label of stage `click`"),
        "{err}"
    );
    let yaml = base().replace(
        "    - name: workclass\n",
        "    - name: workclass\n      hash_buckets: 4000000000\n",
    );
    let err = pipeline_error(&yaml);
    assert!(
        err.contains("hash_buckets must be between 1 and 1073741824"),
        "{err}"
    );
}

#[test]
fn carved_valid_and_test_with_equal_fractions_are_disjoint_and_accepted() {
    let s = Scratch::new();
    s.adult_slice("adult.data", 50, "train.csv");
    let yaml = base().replace(
        "  test:\n    path: test.csv\n    csv: { trim_whitespace: true, null_values: [\"?\"] }\n",
        "  test: { split_from: train, fraction: 0.2 }\n",
    );
    s.write("p.yaml", &yaml);
    ok(&s.run(&["validate", "p.yaml"]));
}
