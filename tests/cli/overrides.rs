//! `--set KEY=VALUE`: overrides validated like the file, recorded in the resolved pipeline.

use crate::*;

/// Overrides change what trains (epochs, a stage's tower found by its name, a key the file
/// leaves out) and land in the run's pipeline.yaml; a bad value is refused at the file's spot
/// for that key, naming the override; a bad path says why.
#[test]
fn set_overrides_keys_and_is_checked_like_the_file() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    ok(&s.run(&[
        "train",
        "pipeline.yaml",
        "--out",
        "run",
        "--set",
        "train.epochs=2",
        "--set",
        "stages.conversion.tower.hidden=[8, 4]",
        "--set",
        "model.loss_weighting=uncertainty",
    ]));
    let stored = std::fs::read_to_string(s.path("run/pipeline.yaml")).expect("stored");
    assert!(stored.contains("epochs: 2"), "{stored}");
    assert!(stored.contains("loss_weighting: uncertainty"), "{stored}");
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.path("run/metrics.json")).expect("metrics"),
    )
    .expect("json");
    assert_eq!(m["epochs_run"], 2);
    let header = s.weights_header("run");
    // Two hidden layers and the head for conversion, one and the head for click.
    assert!(header.contains("towers.conversion.2.weight"), "{header}");
    assert!(!header.contains("towers.click.2.weight"), "{header}");
    // The file is unchanged.
    let file = std::fs::read_to_string(s.path("pipeline.yaml")).expect("file");
    assert!(file.contains("epochs: 6"));

    let err = s.refused(&["validate", "pipeline.yaml", "--set", "train.epochs=0"]);
    assert!(
        err.contains("pipeline.yaml:31:3: `train.epochs`: epochs must be at least 1 (set by `--set train.epochs=0`)"),
        "{err}"
    );
    let err = s.refused(&[
        "validate",
        "pipeline.yaml",
        "--set",
        "stages.buy.loss_weight=2",
    ]);
    assert!(
        err.contains("--set stages.buy.loss_weight=2: `stages` has no item named `buy`"),
        "{err}"
    );
    let err = s.refused(&["validate", "pipeline.yaml", "--set", "train.epoch=3"]);
    assert!(err.contains("did you mean `epochs`?"), "{err}");
}

/// The short forms: a source as its path, features as names, a 0/1 label as its column. They
/// train; the resolved pipeline writes the long forms; a wrong short form names what is
/// expected; long forms keep their own errors.
#[test]
fn short_forms_train_and_resolve_to_long_forms() {
    let s = Scratch::new();
    let rows: String = (0..60)
        .map(|i| {
            format!(
                "{},{},{}.5,{},{}\n",
                i,
                ["a", "b", "c"][i % 3],
                i % 7,
                (i % 2 == 0) as u8,
                (i % 4 == 0) as u8
            )
        })
        .collect();
    s.write("t.csv", &format!("id,x,n,click,buy\n{rows}"));
    s.write(
        "p.yaml",
        "name: short\ndata:\n  train: t.csv\n  valid: { split_from: train, fraction: 0.25 }\nfeatures:\n  categorical: [x]\n  numeric: [n]\nstages:\n  - { name: click, label: click }\n  - { name: buy, label: buy }\ntrain: { epochs: 1 }\n",
    );
    ok(&s.run(&["train", "p.yaml", "--out", "run"]));
    let stored = std::fs::read_to_string(s.path("run/pipeline.yaml")).expect("stored");
    assert!(stored.contains("- name: x"), "{stored}");
    assert!(stored.contains("column: buy"), "{stored}");
    assert!(stored.contains("t.csv"), "{stored}");
    // The stored long forms load again.
    ok(&s.run(&["eval", "--run", "run", "--data", "t.csv"]));

    s.edit("p.yaml", "label: buy }", "label: 7 }");
    let err = s.refused(&["validate", "p.yaml"]);
    assert!(
        err.contains("`stages[1].label`: invalid type: integer `7`, expected a 0/1 column's name, or a block of keys"),
        "{err}"
    );
    s.edit("p.yaml", "label: 7 }", "label: { colum: buy } }");
    let err = s.refused(&["validate", "p.yaml"]);
    assert!(
        err.contains("unknown field `colum`") && err.contains("did you mean `column`?"),
        "{err}"
    );
}
