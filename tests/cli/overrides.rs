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
        err.contains("--set train.epochs=0: `train.epochs`: epochs must be at least 1 (it replaces the value at pipeline.yaml:31:3)"),
        "{err}"
    );
    // A key only the override writes is blamed on the override alone, not on a line of the
    // file; the last of two overrides of one key is the one in effect, and the one named.
    let err = s.refused(&["validate", "pipeline.yaml", "--set", "train.epoch=3"]);
    assert!(
        err.starts_with("error: --set train.epoch=3: `train.epoch`: unknown field `epoch`")
            && !err.contains("pipeline.yaml:"),
        "{err}"
    );
    let err = s.refused(&[
        "validate",
        "pipeline.yaml",
        "--set",
        "train.epochs=5",
        "--set",
        "train.epochs=0",
    ]);
    assert!(
        err.contains("--set train.epochs=0: `train.epochs`"),
        "{err}"
    );
    // compare's own overrides are named as written there.
    let err = s.refused(&["compare", "pipeline.yaml@train.epochs=0", "--seeds", "1"]);
    assert!(
        err.contains("`@train.epochs=0` (in the compare argument `pipeline.yaml@train.epochs=0`)"),
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

/// `funnel init` writes a pipeline that trains unchanged: on the adult slice with named positive
/// values (the second stage found to count only after the first), and on generated data (0/1
/// labels, truth columns, the row id left out, unsigned ids categorical).
#[test]
fn init_writes_pipelines_that_train_unchanged() {
    let s = Scratch::new();
    s.adult_slice("adult.data", 3000, "adult.csv");
    let o = s.run(&[
        "init",
        "adult.csv",
        "--stages",
        "click=Y:>50K,conversion=marital-status:Never-married",
        "--out",
        "adult.yaml",
    ]);
    ok(&o);
    let err = stderr(&o);
    assert!(
        err.contains("`meaning: given_previous`") && err.contains("trim_whitespace"),
        "{err}"
    );
    let yaml = std::fs::read_to_string(s.path("adult.yaml")).expect("yaml");
    assert!(
        yaml.contains("name: capital-gain, transform: quantile_buckets }   # ")
            && yaml.contains("heavy tail"),
        "{yaml}"
    );
    assert!(err.contains("32 quantile buckets each"), "{err}");
    assert!(
        err.contains(
            "columns with two values, kept as features but possibly stages' labels: `sex`"
        ),
        "{err}"
    );
    ok(&s.run(&["train", "adult.yaml", "--out", "run-adult"]));
    // The same rows with `;` between cells, gzip-compressed: the separator is found through
    // the compression, and the pipeline trains.
    let text = std::fs::read_to_string(s.path("adult.csv")).expect("csv");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, text.replace(", ", "; ").as_bytes()).expect("gzip");
    std::fs::write(s.path("semi.csv.gz"), gz.finish().expect("gzip")).expect("write");
    let o = s.run(&[
        "init",
        "semi.csv.gz",
        "--stages",
        "click=Y:>50K,conversion=marital-status:Never-married",
        "--out",
        "semi.yaml",
    ]);
    ok(&o);
    let yaml = std::fs::read_to_string(s.path("semi.yaml")).expect("yaml");
    assert!(
        yaml.contains("separator: \";\", header: true, trim_whitespace: true"),
        "{yaml}"
    );
    ok(&s.run(&["train", "semi.yaml", "--out", "run-semi"]));
    // Refuses to overwrite what it wrote.
    let err = s.refused(&[
        "init",
        "adult.csv",
        "--stages",
        "click=Y:>50K",
        "--out",
        "adult.yaml",
    ]);
    assert!(err.contains("exists"), "{err}");

    ok(&s.run(&[
        "generate",
        repo()
            .join("pipelines/generate/two-stage.yaml")
            .to_str()
            .expect("path"),
        "--rows",
        "5000",
        "--out",
        "gen.parquet",
    ]));
    ok(&s.run(&[
        "init",
        "gen.parquet",
        "--stages",
        "click,conversion",
        "--out",
        "gen.yaml",
    ]));
    let yaml = std::fs::read_to_string(s.path("gen.yaml")).expect("yaml");
    assert!(
        yaml.contains("truth: true_click") && yaml.contains("- { name: user"),
        "{yaml}"
    );
    assert!(yaml.contains("`row_id` left out"), "{yaml}");
    ok(&s.run(&["train", "gen.yaml", "--out", "run-gen"]));
    let err = s.refused(&[
        "init",
        "gen.parquet",
        "--stages",
        "click=nope",
        "--out",
        "x.yaml",
    ]);
    assert!(err.contains("no such column for a stage's label"), "{err}");
}

/// 0/1 labels written as `1.0`/`0.0` read as they do in training: a conversion without a click
/// shows the stage counts only after its parent.
#[test]
fn init_reads_float_written_labels_like_training() {
    let s = Scratch::new();
    let mut text = String::from("u,click,conversion\n");
    for i in 0..40 {
        let (c, v) = match i % 4 {
            0 => ("1.0", "1.0"),
            1 => ("0.0", "1.0"),
            _ => ("0.0", "0.0"),
        };
        text.push_str(&format!("u{},{c},{v}\n", i % 7));
    }
    s.write("f.csv", &text);
    let o = s.run(&[
        "init",
        "f.csv",
        "--stages",
        "click,conversion",
        "--out",
        "f.yaml",
    ]);
    ok(&o);
    let yaml = std::fs::read_to_string(s.path("f.yaml")).expect("yaml");
    assert!(yaml.contains("meaning: given_previous"), "{yaml}");
    ok(&s.run(&["validate", "f.yaml"]));
}
