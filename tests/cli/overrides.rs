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
