//! Training, evaluation and prediction through the CLI.

use crate::*;

fn metrics(dir: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("metrics.json")).expect("metrics.json");
    serde_json::from_str(&text).expect("json")
}

#[test]
#[allow(clippy::result_large_err)]
fn two_stage_train_eval_predict_round_trip() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    let o = s.run(&["train", "pipeline.yaml", "--out", "run"]);
    ok(&o);
    let out = stdout(&o);
    assert!(
        out.contains("conditional P(conversion|click)  reached click"),
        "{out}"
    );
    assert!(out.contains("test (best epoch 6)"), "{out}");
    let run = s.path("run");
    for f in [
        "pipeline.yaml",
        "encoders.json",
        "weights.safetensors",
        "metrics.json",
        "manifest.json",
    ] {
        assert!(run.join(f).exists(), "{f}");
    }

    // metrics.json: each split is a list of stages in funnel order with both blocks.
    let m = metrics(&run);
    let test = m["test"].as_array().expect("test stages");
    assert_eq!(test.len(), 2);
    assert_eq!(test[0]["name"], "click");
    assert_eq!(test[1]["name"], "conversion");
    let cum = &test[1]["cumulative"];
    let cond = &test[1]["conditional"];
    assert_eq!(cum["rows"], 1500);
    // The conditional block of stage 2 is computed on the rows that reached stage 1.
    assert_eq!(cond["rows"], test[0]["cumulative"]["positives"]);
    assert_eq!(cum["positives"], cond["positives"]);
    assert!(
        test[0]["cumulative"]["auc"].as_f64().unwrap() > 0.85,
        "{}",
        test[0]
    );
    assert!(cum["auc"].as_f64().unwrap() > 0.7, "{cum}");
    assert!(cond["logloss"].as_f64().unwrap() > 0.0);
    assert_eq!(m["history"].as_array().unwrap().len(), 6);
    assert_eq!(m["valid"].as_array().unwrap().len(), 2);

    // eval on the test file reproduces the test metrics printed by train.
    let e = s.run(&["eval", "--run", "run", "--data", "test.csv"]);
    ok(&e);
    let auc = format!("{:.4}", cum["auc"].as_f64().unwrap());
    assert!(stdout(&e).contains(&auc), "{} lacks {auc}", stdout(&e));

    // predict twice (CSV and Parquet) and from a copy of the run directory: same numbers.
    ok(&s.run(&[
        "predict", "--run", "run", "--data", "test.csv", "--out", "a.csv",
    ]));
    let copy = s.path("copy");
    std::fs::create_dir(&copy).unwrap();
    // The files (the tensorboard folder is for a tracker, not for predict).
    for f in std::fs::read_dir(&run).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            std::fs::copy(&f, copy.join(f.file_name().unwrap())).unwrap();
        }
    }
    ok(&s.run(&[
        "predict", "--run", "copy", "--data", "test.csv", "--out", "b.csv",
    ]));
    ok(&s.run(&[
        "predict",
        "--run",
        "run",
        "--data",
        "test.csv",
        "--out",
        "c.parquet",
    ]));
    let a = std::fs::read_to_string(s.path("a.csv")).unwrap();
    assert_eq!(a, std::fs::read_to_string(s.path("b.csv")).unwrap());
    // The Parquet output holds the same numbers as the CSV output.
    let pq = funnel::source::Frame::read(
        &funnel::config::FileSource {
            path: s.path("c.parquet"),
            format: funnel::config::FileFormat::Parquet,
            csv: funnel::config::CsvOptions {
                separator: b',',
                header: true,
                null_values: vec![],
                trim_whitespace: false,
            },
        },
        None,
    )
    .unwrap();
    let mut from_parquet = Vec::new();
    pq.visit_f64("conversion_cumulative", |_, v| {
        from_parquet.push(v.unwrap());
        Ok(())
    })
    .unwrap();
    let from_csv: Vec<f64> = a
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap().parse().unwrap())
        .collect();
    assert_eq!(from_parquet.len(), 1500);
    for (p, c) in from_parquet.iter().zip(&from_csv) {
        assert!((p - c).abs() <= 1e-12 * c.abs().max(1e-300), "{p} vs {c}");
    }
    let mut lines = a.lines();
    assert_eq!(
        lines.next().unwrap(),
        "click_conditional,click_cumulative,conversion_conditional,conversion_cumulative"
    );
    assert_eq!(lines.clone().count(), 1500);
    for l in lines {
        let v: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
        // p1 = q1, p2 = q1 * q2, all probabilities.
        assert!((v[0] - v[1]).abs() < 1e-12);
        assert!((v[3] - v[1] * v[2]).abs() < 1e-9, "{l}");
        assert!(v.iter().all(|&p| (0.0..=1.0).contains(&p)));
    }
}

#[test]
fn same_seed_same_metrics_other_seed_other_metrics() {
    let s = Scratch::new();
    // Dropout on, so the seeded masks are covered too.
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    s.edit(
        "pipeline.yaml",
        "hidden: [16] }",
        "hidden: [16], dropout: 0.2 }",
    );
    ok(&s.run(&["train", "pipeline.yaml", "--out", "a"]));
    ok(&s.run(&["train", "pipeline.yaml", "--out", "b"]));
    ok(&s.run(&["train", "pipeline.yaml", "--out", "c", "--seed", "7"]));
    // Everything but the wall-clock `timing` block is identical for the same seed.
    let read = |d: &str| {
        let mut m = metrics(&s.path(d));
        let timing = m
            .as_object_mut()
            .unwrap()
            .remove("timing")
            .expect("timing block");
        assert!(timing["train_samples_per_s"].as_f64().unwrap() > 0.0);
        serde_json::to_string(&m).unwrap()
    };
    assert_eq!(
        read("a"),
        read("b"),
        "same seed must give identical metrics.json"
    );
    assert_ne!(read("a"), read("c"), "another seed must give other metrics");
    let weights = |d: &str| std::fs::read(s.path(d).join("weights.safetensors")).unwrap();
    assert_eq!(weights("a"), weights("b"));
}

#[test]
fn one_two_and_three_stages_from_yaml_alone() {
    let buy = r#"  - name: buy
    label: { column: race, positive: [White], meaning: given_previous }
"#;
    for (stages, k) in [
        (CLICK.to_string(), 1),
        (format!("{CLICK}{CONVERSION}"), 2),
        (format!("{CLICK}{CONVERSION}{buy}"), 3),
    ] {
        let s = Scratch::new();
        s.adult_pipeline(&stages, "");
        ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
        let m = metrics(&s.path("run"));
        let test = m["test"].as_array().unwrap();
        assert_eq!(test.len(), k);
        // Each stage's cumulative positives are a subset of the previous stage's.
        for w in test.windows(2) {
            assert!(
                w[1]["cumulative"]["positives"].as_u64()
                    <= w[0]["cumulative"]["positives"].as_u64()
            );
            assert_eq!(w[1]["conditional"]["rows"], w[0]["cumulative"]["positives"]);
        }
        let p = s.run(&[
            "predict", "--run", "run", "--data", "test.csv", "--out", "p.csv",
        ]);
        ok(&p);
        let header = std::fs::read_to_string(s.path("p.csv")).unwrap();
        assert_eq!(header.lines().next().unwrap().split(',').count(), 2 * k);
    }
}

#[test]
fn early_stopping_restores_the_best_epoch() {
    let s = Scratch::new();
    // A learning rate this large makes validation worse after the first epochs.
    s.adult_pipeline(
        &format!("{CLICK}{CONVERSION}"),
        "  optimizer: { lr: 0.05 }\n  early_stopping: { monitor: click.cumulative.logloss, patience: 1 }\n",
    );
    s.edit("pipeline.yaml", "epochs: 6", "epochs: 12");
    let o = s.run(&["train", "pipeline.yaml", "--out", "run"]);
    ok(&o);
    let m = metrics(&s.path("run"));
    let best = m["best_epoch"].as_u64().unwrap() as usize;
    let history = m["history"].as_array().unwrap();
    assert!(history.len() < 12, "{}", stderr(&o));
    assert_eq!(
        history.len(),
        best + 1,
        "stops one epoch after the best with patience 1"
    );
    // The final validation metrics are the best epoch's, and eval on the test file agrees.
    assert_eq!(m["valid"], history[best - 1]["valid"]);
    // The test metrics come from the restored best weights: eval of the run agrees with them.
    let e = s.run(&["eval", "--run", "run", "--data", "test.csv"]);
    ok(&e);
    for stage in 0..2 {
        let auc = m["test"][stage]["cumulative"]["auc"].as_f64().unwrap();
        assert!(stdout(&e).contains(&format!("{auc:.4}")), "{}", stdout(&e));
    }
    let best_loss = history[best - 1]["valid"][0]["cumulative"]["logloss"]
        .as_f64()
        .unwrap();
    for h in history {
        assert!(h["valid"][0]["cumulative"]["logloss"].as_f64().unwrap() >= best_loss);
    }
}

#[test]
fn id_column_is_carried_and_unseen_categories_map_to_oov() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    s.edit(
        "pipeline.yaml",
        "  test:\n",
        "  id_column: fnlwgt\n  test:\n",
    );
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    s.write(
        "new.csv",
        "age, workclass, fnlwgt, education, occupation, relationship, sex, capital-gain, hours-per-week\n\
         39, Starship-crew, 77516, Bachelors, Adm-clerical, Not-in-family, Male, 2174, 40\n\
         50, ?, 83311, Bachelors, Exec-managerial, Husband, Male, 0, 13\n",
    );
    ok(&s.run(&[
        "predict", "--run", "run", "--data", "new.csv", "--out", "p.csv",
    ]));
    let p = std::fs::read_to_string(s.path("p.csv")).unwrap();
    let lines: Vec<&str> = p.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("fnlwgt,click_conditional"), "{p}");
    assert!(
        lines[1].starts_with("77516,") && lines[2].starts_with("83311,"),
        "{p}"
    );
}

#[test]
fn validate_checks_files_without_training() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    let o = s.run(&["validate", "pipeline.yaml"]);
    ok(&o);
    assert!(
        stdout(&o).contains("2 stage(s) (click -> conversion)"),
        "{}",
        stdout(&o)
    );
    assert!(!s.path("runs").exists());
}

#[test]
fn gzip_csv_and_parquet_sources() {
    use funnel::source::{TableColumn, write_table};
    let s = Scratch::new();
    // gzip: the same slice, compressed; detected from the bytes.
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    let plain = std::fs::read(s.path("train.csv")).unwrap();
    let gz = std::process::Command::new("gzip")
        .arg("-c")
        .arg(s.path("train.csv"))
        .output()
        .expect("gzip");
    assert!(gz.status.success() && gz.stdout != plain);
    // Named like a plain CSV: gzip is recognised from the bytes, not the name.
    std::fs::write(s.path("packed.csv"), &gz.stdout).unwrap();
    let yaml = std::fs::read_to_string(s.path("pipeline.yaml"))
        .unwrap()
        .replace("path: train.csv", "path: packed.csv");
    s.write("gz.yaml", &yaml);
    ok(&s.run(&["train", "gz.yaml", "--out", "gz"]));
    ok(&s.run(&["train", "pipeline.yaml", "--out", "plain"]));
    let m = |d: &str| {
        let mut m = metrics(&s.path(d));
        let o = m.as_object_mut().unwrap();
        // The row digests hash the file's bytes (compressed or not) with the rows.
        for key in ["timing", "valid_rows"] {
            o.remove(key);
        }
        m
    };
    assert_eq!(m("gz"), m("plain"), "gzip must read the same rows");

    // Parquet with typed columns: numeric labels and features, text categories.
    let mut r = funnel::rng::Rng::stream(5, "parquet");
    let n = 400;
    let x: Vec<f64> = (0..n).map(|_| r.normal()).collect();
    let cat: Vec<Option<String>> = (0..n).map(|i| Some(format!("c{}", i % 7))).collect();
    let click: Vec<f64> = x
        .iter()
        .map(|&v| (v + 0.3 * r.normal() > 0.0) as u8 as f64)
        .collect();
    let buy: Vec<f64> = click
        .iter()
        .map(|&c| c * (r.uniform() < 0.4) as u8 as f64)
        .collect();
    let cols = |range: std::ops::Range<usize>| {
        vec![
            ("x".to_string(), TableColumn::F64(x[range.clone()].to_vec())),
            (
                "cat".to_string(),
                TableColumn::Str(cat[range.clone()].to_vec()),
            ),
            (
                "click".to_string(),
                TableColumn::F64(click[range.clone()].to_vec()),
            ),
            ("buy".to_string(), TableColumn::F64(buy[range].to_vec())),
        ]
    };
    write_table(&s.path("train.parquet"), cols(0..300)).unwrap();
    write_table(&s.path("test.parquet"), cols(300..400)).unwrap();
    s.write(
        "pq.yaml",
        "name: pq\ndata:\n  train: { path: train.parquet }\n  test: { path: test.parquet }\nfeatures:\n  categorical: [{ name: cat }]\n  numeric: [{ name: x }]\nstages:\n  - { name: click, label: { column: click } }\n  - { name: buy, label: { column: buy } }\ntrain: { epochs: 5, batch_size: 32 }\n",
    );
    ok(&s.run(&["train", "pq.yaml", "--out", "pq"]));
    let m = metrics(&s.path("pq"));
    assert_eq!(m["test"][0]["cumulative"]["rows"], 100);
    // x drives clicks almost deterministically: the model must find it.
    assert!(
        m["test"][0]["cumulative"]["auc"].as_f64().unwrap() > 0.9,
        "{}",
        m["test"][0]
    );
}

/// metrics.json reads back into the library's type unchanged, names each stage's parent (the
/// rows its conditional block uses) and records each stage's training loss per epoch.
#[test]
fn metrics_json_reads_back_and_names_parents() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    let text = std::fs::read_to_string(s.path("run/metrics.json")).expect("metrics.json");
    let m: funnel::metrics::RunMetrics = serde_json::from_str(&text).expect("reads back");
    let raw: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(serde_json::to_value(&m).expect("value"), raw);
    let test = m.test.expect("test split");
    assert_eq!(test[0].parent, None);
    assert_eq!(test[1].parent.as_deref(), Some("click"));
    let first = &m.history[0].train_stage_loss;
    let names: Vec<&str> = first.iter().map(|l| l.stage.as_str()).collect();
    assert_eq!(names, ["click", "conversion"]);
    // Both stages weigh 1, so the total is the sum of the stage terms (batch means of both).
    let sum: f64 = first.iter().map(|l| l.loss).sum();
    assert!(
        (sum - m.history[0].train_loss).abs() < 1e-4 * sum,
        "{sum} vs {}",
        m.history[0].train_loss
    );
}

/// The `naive` preset trains from YAML alone and is evaluated both ways like every model.
#[test]
fn naive_preset_trains_and_prints_both_spaces() {
    let s = Scratch::new();
    s.adult_model("model: { preset: naive }");
    let o = s.run(&["train", "pipeline.yaml", "--out", "run"]);
    ok(&o);
    let out = stdout(&o);
    assert!(
        out.contains("cumulative  P(conversion)        all rows"),
        "{out}"
    );
    assert!(
        out.contains("conditional P(conversion|click)  reached click"),
        "{out}"
    );
    let stored = std::fs::read_to_string(s.path("run/pipeline.yaml")).expect("stored");
    assert!(stored.contains("preset: naive"), "{stored}");
}

/// Every model preset trains from YAML alone on the same data and prints both spaces; presets
/// whose logits are cumulative also report order violations, the others never do.
#[test]
fn every_preset_trains_from_yaml_alone() {
    for (preset, cumulative) in [
        ("esmm", false),
        ("naive", false),
        ("independent", false),
        ("division", true),
        ("aitm", true),
        ("escm2_ips", false),
        ("escm2_dr", false),
    ] {
        let s = Scratch::new();
        s.adult_model(&format!("model: {{ preset: {preset} }}"));
        let o = s.run(&["train", "pipeline.yaml", "--out", "run"]);
        ok(&o);
        let out = stdout(&o);
        let test = out.split("test (best epoch").nth(1).expect("test table");
        assert!(
            test.contains("cumulative  P(conversion)        all rows"),
            "{preset}: {out}"
        );
        assert!(
            test.contains("conditional P(conversion|click)  reached click"),
            "{preset}: {out}"
        );
        assert_eq!(
            test.contains("order violations"),
            cumulative,
            "{preset}: {out}"
        );
        let m = metrics(&s.path("run"));
        let conversion = &m["test"][1];
        assert_eq!(
            conversion["order_violations"].is_number(),
            cumulative,
            "{preset}"
        );
        let auc = conversion["cumulative"]["auc"].as_f64().expect("auc");
        assert!(auc > 0.6, "{preset}: conversion cumulative AUC {auc}");
    }
}

/// Settings of one preset under another preset are refused, at their key.
#[test]
fn preset_settings_belong_to_their_preset() {
    let s = Scratch::new();
    s.adult_model("model: { preset: esmm, aitm: { calibrator: 0.6 } }");
    let err = s.refused(&["validate", "pipeline.yaml"]);
    assert!(
        err.contains(
            "`model.aitm`: `model.aitm` holds settings of `aitm`, but the preset is `esmm`"
        ),
        "{err}"
    );
    assert!(
        err.contains("hint: remove `model.aitm`, or set the preset to `aitm`"),
        "{err}"
    );
    // A key of the other ESCM² variant is refused at the key.
    s.adult_model("model: { preset: escm2_ips, escm2: { imputation_weight: 2 } }");
    let err = s.refused(&["validate", "pipeline.yaml"]);
    assert!(
        err.contains(
            "`model.escm2.imputation_weight`: `imputation_weight` does not apply to `escm2_ips`"
        ),
        "{err}"
    );
}

/// ESMM-NS: one set of tables per stage, saved under the stage's name; the run reloads for
/// eval and predict.
#[test]
fn per_stage_embeddings_train_save_and_reload() {
    let s = Scratch::new();
    s.adult_model("model: { representation: per_stage_embeddings }");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    let header = s.weights_header("run");
    for key in [
        "embeddings.click.workclass",
        "embeddings.conversion.workclass",
    ] {
        assert!(header.contains(key), "{key} missing from {header}");
    }
    assert!(!header.contains("\"embeddings.workclass\""), "{header}");
    ok(&s.run(&["eval", "--run", "run", "--data", "test.csv"]));
    ok(&s.run(&[
        "predict", "--run", "run", "--data", "test.csv", "--out", "p.csv",
    ]));
}

/// `independent` reads each stage's own column on every row: a funnel of "reached" columns
/// (0 wherever the parent was not reached) is refused at the stage, with the preset to use.
#[test]
fn independent_needs_columns_with_a_value_on_every_row() {
    let s = Scratch::new();
    s.adult_model("model: { preset: independent }");
    s.edit(
        "pipeline.yaml",
        "meaning: given_previous",
        "meaning: reached",
    );
    let err = s.refused(&["validate", "pipeline.yaml"]);
    assert!(err.contains("`stages[1].label.meaning`"), "{err}");
    assert!(err.contains("use `preset: division`"), "{err}");
}

/// Pipelines and run directories written before presets existed say `head: cumulative_product`:
/// they still validate, as ESMM, and the resolved pipeline says `preset: esmm`.
#[test]
fn older_head_spelling_still_loads() {
    let s = Scratch::new();
    s.adult_model("model: { head: cumulative_product, representation: shared_embeddings }");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    let stored = std::fs::read_to_string(s.path("run/pipeline.yaml")).expect("stored");
    assert!(
        stored.contains("preset: esmm") && !stored.contains(" head:"),
        "{stored}"
    );
    ok(&s.run(&["eval", "--run", "run", "--data", "test.csv"]));
}

/// `eval --json` prints the same blocks as metrics.json's `test` for the same data, parsed by
/// `RunMetrics`'s own types.
#[test]
fn eval_json_equals_the_run_metrics() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    let o = s.run(&["eval", "--run", "run", "--data", "test.csv", "--json"]);
    ok(&o);
    let printed: Vec<funnel::metrics::StageMetrics> =
        serde_json::from_str(&stdout(&o)).expect("eval --json is JSON");
    let m: funnel::metrics::RunMetrics = serde_json::from_str(
        &std::fs::read_to_string(s.path("run/metrics.json")).expect("metrics"),
    )
    .expect("metrics.json");
    assert_eq!(Some(printed), m.test);
}

/// `predict` copies the id column and `--keep` columns unchanged: from Parquet with their
/// types (integers stay integers), before the prediction columns; a kept column that would
/// collide with a prediction column is refused.
#[test]
fn predict_keeps_columns_with_their_types() {
    use funnel::source::{TableColumn, write_table};
    let s = Scratch::new();
    let n = 40;
    write_table(
        &s.path("t.parquet"),
        vec![
            (
                "id".into(),
                TableColumn::I32((0..n).map(|i| 1000 + i).collect()),
            ),
            (
                "x".into(),
                TableColumn::Str(
                    (0..n)
                        .map(|i| Some(["a", "b"][i as usize % 2].into()))
                        .collect(),
                ),
            ),
            (
                "n".into(),
                TableColumn::F64((0..n).map(|i| i as f64 / 4.0).collect()),
            ),
            (
                "click".into(),
                TableColumn::I32((0..n).map(|i| i % 2).collect()),
            ),
        ],
    )
    .expect("parquet");
    s.write(
        "p.yaml",
        "name: keep\ndata:\n  train: t.parquet\n  id_column: id\nfeatures:\n  categorical: [x]\n  numeric: [n]\nstages:\n  - { name: click, label: click }\ntrain: { epochs: 1 }\n",
    );
    ok(&s.run(&["train", "p.yaml", "--out", "run"]));
    ok(&s.run(&[
        "predict",
        "--run",
        "run",
        "--data",
        "t.parquet",
        "--out",
        "p.parquet",
        "--keep",
        "n,x",
    ]));
    let src = funnel::config::FileSource {
        path: s.path("p.parquet"),
        format: funnel::config::FileFormat::Parquet,
        csv: funnel::config::CsvOptions {
            separator: b',',
            header: true,
            null_values: vec![],
            trim_whitespace: false,
        },
    };
    let frame = funnel::source::Frame::read(&src, None).expect("read back");
    assert_eq!(
        frame.column_names(),
        ["id", "n", "x", "click_conditional", "click_cumulative"]
    );
    assert!(frame.column("id").expect("id").is_integer());
    assert!(frame.is_numeric("n").expect("n") && !frame.column("n").expect("n").is_integer());
    assert!(!frame.is_numeric("x").expect("x"));
    ok(&s.run(&[
        "predict",
        "--run",
        "run",
        "--data",
        "t.parquet",
        "--out",
        "p.csv",
    ]));
    let text = std::fs::read_to_string(s.path("p.csv")).expect("csv");
    assert!(
        text.lines().nth(1).expect("row").starts_with("1000,"),
        "{text}"
    );
    let err = s.refused(&[
        "predict",
        "--run",
        "run",
        "--data",
        "t.parquet",
        "--out",
        "q.csv",
        "--keep",
        "click_cumulative",
    ]);
    assert!(
        err.contains("the output has a prediction column of that name"),
        "{err}"
    );
}

/// `.csv.gz` output is gzip-compressed CSV (the system's gzip reads it back to the plain CSV
/// output); `.parquet.gz` is refused.
#[test]
fn csv_gz_output_is_gzip() {
    let s = Scratch::new();
    s.adult_pipeline(CLICK, "");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    ok(&s.run(&[
        "predict", "--run", "run", "--data", "test.csv", "--out", "p.csv",
    ]));
    ok(&s.run(&[
        "predict", "--run", "run", "--data", "test.csv", "--out", "p.csv.gz",
    ]));
    let o = std::process::Command::new("gzip")
        .args(["-dc", "p.csv.gz"])
        .current_dir(s.dir.path())
        .output()
        .expect("gzip");
    assert!(o.status.success());
    assert_eq!(o.stdout, std::fs::read(s.path("p.csv")).expect("csv"));
    let err = s.refused(&[
        "predict",
        "--run",
        "run",
        "--data",
        "test.csv",
        "--out",
        "p.parquet.gz",
    ]);
    assert!(
        err.contains("Parquet is compressed inside the file"),
        "{err}"
    );
}

/// Group AUC with `data.group_column`: printed in its own column, stored in metrics.json, and
/// equal to a brute-force pair count per group over `predict`'s output (click, all rows).
#[test]
fn group_auc_matches_a_brute_force_count() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    s.edit(
        "pipeline.yaml",
        "  test:\n",
        "  group_column: education\n  test:\n",
    );
    let o = s.run(&["train", "pipeline.yaml", "--out", "run"]);
    ok(&o);
    assert!(stdout(&o).contains("GAUC") || stderr(&o).contains("GAUC"));
    let m: funnel::metrics::RunMetrics = serde_json::from_str(
        &std::fs::read_to_string(s.path("run/metrics.json")).expect("metrics"),
    )
    .expect("metrics");
    let stored = m.test.expect("test")[0].cumulative.gauc.expect("gauc");
    ok(&s.run(&[
        "predict", "--run", "run", "--data", "test.csv", "--out", "p.csv",
    ]));
    let preds: Vec<f64> = s
        .csv_column("p.csv", "click_cumulative")
        .iter()
        .map(|v| v.parse().expect("number"))
        .collect();
    let rows: Vec<(String, u8)> = s
        .csv_column("test.csv", "education")
        .into_iter()
        .zip(s.csv_column("test.csv", "Y"))
        .map(|(g, y)| (g, y.starts_with('>') as u8))
        .collect();
    let mut groups: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    groups.sort();
    groups.dedup();
    let (mut num, mut den) = (0.0, 0.0);
    for g in groups {
        let idx: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].0 == g).collect();
        let (mut wins, mut pairs) = (0.0, 0.0);
        for &i in &idx {
            for &j in &idx {
                if rows[i].1 == 1 && rows[j].1 == 0 {
                    pairs += 1.0;
                    wins += if preds[i] > preds[j] {
                        1.0
                    } else if preds[i] == preds[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        if pairs > 0.0 {
            num += idx.len() as f64 * wins / pairs;
            den += idx.len() as f64;
        }
    }
    // The written predictions are rounded to f64 text of f32-derived values: a close match.
    assert!(
        (stored - num / den).abs() < 1e-6,
        "{stored} vs {}",
        num / den
    );
}

/// `eval --split test` and `predict --split test` find a run's carved test split again (the
/// run's seed, the unchanged training file): eval prints exactly the test metrics `train`
/// wrote, and predict writes those rows with their row numbers and the same probabilities as a
/// prediction over the whole file. A changed training file is refused.
#[test]
fn a_runs_carved_split_is_evaluated_and_predicted_again() {
    let s = Scratch::new();
    s.adult_slice("adult.data", 3000, "train.csv");
    let yaml = adult_yaml(&format!("{CLICK}{CONVERSION}"), "").replace(
        "  test:\n    path: test.csv\n    csv: { trim_whitespace: true, null_values: [\"?\"] }\n",
        "  test: { split_from: train, fraction: 0.25 }\n",
    );
    assert!(yaml.contains("fraction: 0.25"), "{yaml}");
    s.write("pipeline.yaml", &yaml);
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("run/metrics.json")).unwrap())
            .unwrap();
    let e = s.run(&["eval", "--run", "run", "--split", "test", "--json"]);
    ok(&e);
    let again: serde_json::Value = serde_json::from_str(&stdout(&e)).unwrap();
    assert_eq!(again, metrics["test"]);
    let table = s.run(&["eval", "--run", "run", "--split", "test"]);
    assert!(
        stdout(&table).contains("the run's test split (750 rows)"),
        "{}",
        stdout(&table)
    );

    ok(&s.run(&[
        "predict", "--run", "run", "--split", "test", "--out", "t.csv",
    ]));
    ok(&s.run(&[
        "predict",
        "--run",
        "run",
        "--data",
        "train.csv",
        "--out",
        "all.csv",
    ]));
    let rows = s.csv_column("t.csv", "row");
    assert_eq!(rows.len(), 750);
    let part = s.csv_column("t.csv", "conversion_cumulative");
    let all = s.csv_column("all.csv", "conversion_cumulative");
    for (r, v) in rows.iter().zip(&part) {
        let i: usize = r.parse().unwrap();
        assert_eq!(v, &all[i - 1], "row {i}");
    }
    // The output may not replace the training file.
    let err = s.refused(&[
        "predict",
        "--run",
        "run",
        "--split",
        "test",
        "--out",
        "train.csv",
        "--force",
    ]);
    assert!(err.contains("train.csv"), "{err}");
    // Another training file: the split cannot be carved again.
    let text = std::fs::read_to_string(s.path("train.csv")).unwrap();
    s.write("train.csv", &text.replacen("39,", "40,", 1));
    let err = s.refused(&["eval", "--run", "run", "--split", "test"]);
    assert!(
        err.contains("the training file is not the one the run was trained on"),
        "{err}"
    );
    let err = s.refused(&[
        "eval",
        "--run",
        "run",
        "--split",
        "test",
        "--data",
        "train.csv",
    ]);
    assert!(err.contains("cannot be used with"), "{err}");
    let err = s.refused(&[
        "predict", "--run", "run", "--split", "test", "--keep", "row", "--out", "k.csv",
    ]);
    assert!(err.contains("--split writes a `row` column"), "{err}");

    // A test split of its own file: read as it is, after the same check.
    let s = Scratch::new();
    s.adult_pipeline(CLICK, "");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    let e = s.run(&["eval", "--run", "run", "--split", "test", "--json"]);
    ok(&e);
    let again: serde_json::Value = serde_json::from_str(&stdout(&e)).unwrap();
    let trained: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("run/metrics.json")).unwrap())
            .unwrap();
    assert_eq!(again, trained["test"]);
    let err = s.refused(&[
        "predict", "--run", "run", "--split", "test", "--out", "test.csv", "--force",
    ]);
    assert!(err.contains("test.csv"), "{err}");
    let text = std::fs::read_to_string(s.path("test.csv")).unwrap();
    s.write("test.csv", &format!("{text}\n"));
    let err = s.refused(&["eval", "--run", "run", "--split", "test"]);
    assert!(
        err.contains("the test file is not the one the run was evaluated on"),
        "{err}"
    );
}

/// The pipelines for the public data sets' samples (data/ali-ccp, data/aliexpress) train from
/// the repository as shipped and score every test row both ways (the samples are too small for
/// their AUCs to mean anything).
#[test]
fn public_data_pipelines_train_on_their_samples() {
    let s = Scratch::new();
    for (name, test_rows) in [("ali-ccp", 50), ("aliexpress", 20)] {
        let pipeline = repo().join(format!("pipelines/{name}.yaml"));
        let o = s.run(&["train", pipeline.to_str().expect("utf-8"), "--out", name]);
        ok(&o);
        let m = metrics(&s.path(name));
        assert_eq!(m["test"][0]["cumulative"]["rows"], test_rows, "{name}");
        // The second stage's conditional block is scored on the rows that clicked.
        assert_eq!(
            m["test"][1]["conditional"]["rows"], m["test"][0]["cumulative"]["positives"],
            "{name}"
        );
    }
}

/// Train the shipped `pipelines/<name>.yaml` on `data` (a scratch file) with `sets` overrides
/// into the run directory `<name>`; its metrics.
fn train_shipped(s: &Scratch, name: &str, data: &str, sets: &[&str]) -> serde_json::Value {
    let pipeline = repo().join(format!("pipelines/{name}.yaml"));
    let train = format!("data.train={}", s.path(data).display());
    let mut args = vec!["train", pipeline.to_str().expect("utf-8"), "--set", &train];
    for set in sets {
        args.extend(["--set", set]);
    }
    args.extend(["--out", name]);
    ok(&s.run(&args));
    metrics(&s.path(name))
}

/// `funnel prepare taobao` turns the shipped log sample into user-item pairs with behaviour
/// sequences, says how many pairs break the funnel's order, and the shipped pipelines train on
/// them with their splits carved by time: the histories averaged, and pooled by DIN against
/// the candidate item and category.
#[test]
fn taobao_log_prepares_and_trains() {
    let s = Scratch::new();
    let log = repo().join("data/taobao/UserBehavior_head4321.csv");
    let o = s.run(&[
        "prepare",
        "taobao",
        "--log",
        log.to_str().expect("utf-8"),
        "--out",
        "pairs.parquet",
    ]);
    ok(&o);
    assert!(
        stderr(&o).contains("wrote 3329 user-item pairs of 43 users (4321 events)")
            && stderr(&o).contains("out of order: 59 pair(s) bought without a cart or favourite, 190 carted or favoured without a view"),
        "{}",
        stderr(&o)
    );
    for name in ["taobao", "taobao-din"] {
        let m = train_shipped(&s, name, "pairs.parquet", &[]);
        // The latest 10% of 3,329 pairs (a share takes at most what it asks).
        let rows = m["test"][0]["cumulative"]["rows"].as_u64().expect("rows");
        assert!((300..=333).contains(&rows), "{name}: {rows}");
    }
    // The DIN run trained an activation unit per history (keys in the weights file's header);
    // the other pools its histories as multi-valued features and has none.
    let has_unit = |run: &str, key: &str| String::from_utf8_lossy(&s.weights(run)).contains(key);
    for key in ["din.hist_items.0.weight", "din.hist_categories.2.weight"] {
        assert!(has_unit("taobao-din", key), "{key}");
        assert!(!has_unit("taobao", key), "{key}");
    }
}

/// `funnel prepare ali-ccp` joins raw files in the real format (entries separated by bytes
/// 0x01, 0x02, 0x03) and the raw-file pipeline trains on the result, its behaviour fields as
/// weighted token bags; a sample keeps about its share, and the counts are printed.
#[test]
fn ali_ccp_raw_files_prepare_and_train() {
    let s = Scratch::new();
    let mut state = 5u64;
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    let entry = |f: &str, id: u64, v: f64| format!("{f}\u{2}{id}\u{3}{v}");
    let (mut common, mut skeleton) = (String::new(), String::new());
    for c in 0..200 {
        let mut es = vec![entry("101", c, 1.0), entry("121", next(5), 1.0)];
        for _ in 0..next(6) {
            es.push(entry("109_14", next(50), (1 + next(4)) as f64));
        }
        common += &format!("c{c},{},{}\n", es.len(), es.join("\u{1}"));
    }
    for i in 0..3000 {
        let c = next(200);
        let item = next(300);
        // Clicks depend on the position (field 301), buys after a click on items below 100.
        let position = next(3);
        let click = next(10) < [1, 4, 7][position as usize];
        let buy = click && item < 100 && next(3) == 0;
        let es = [entry("205", item, 1.0), entry("301", position, 1.0)];
        skeleton += &format!(
            "s{i},{},{},c{c},2,{}\n",
            click as u8,
            buy as u8,
            es.join("\u{1}")
        );
    }
    s.write("skeleton.csv", &skeleton);
    s.write("common.csv", &common);
    let prepare = |more: &[&str]| {
        let mut args = vec![
            "prepare",
            "ali-ccp",
            "--skeleton",
            "skeleton.csv",
            "--common",
            "common.csv",
        ];
        args.extend(more);
        let o = s.run(&args);
        ok(&o);
        o
    };
    let o = prepare(&["--out", "train.parquet"]);
    assert!(
        stderr(&o).contains("wrote 3000 of 3000 impressions to train.parquet")
            && stderr(&o).contains("0 bought without a click"),
        "{}",
        stderr(&o)
    );
    let m = train_shipped(
        &s,
        "ali-ccp-raw",
        "train.parquet",
        &["train.epochs=3", "train.batch_size=256"],
    );
    assert_eq!(m["test"][0]["cumulative"]["rows"], 300);
    let click = m["test"][0]["cumulative"]["auc"].as_f64().expect("auc");
    assert!(click > 0.6, "click AUC {click}");
    let o = prepare(&["--out", "sample.parquet", "--sample", "0.1"]);
    let kept: usize = stderr(&o)
        .split("wrote ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("rows kept");
    assert!((200..400).contains(&kept), "{kept}");
}

/// PaddleRec's encoding of Ali-CCP (the shipped 10-line sample) becomes the columns of the raw
/// files' preparer: every impression, the labels, a single-valued field's id and a behaviour
/// field's tokens as written in the first line.
#[test]
fn paddlerec_ali_ccp_sample_prepares() {
    let s = Scratch::new();
    let input = repo().join("data/ali-ccp/paddlerec_esmm_train_small.txt");
    let o = s.run(&[
        "prepare",
        "paddlerec-esmm",
        "--input",
        input.to_str().expect("utf-8"),
        "--out",
        "pr.csv",
    ]);
    ok(&o);
    assert!(
        stderr(&o).contains("wrote 10 impressions to pr.csv; 0 bought without a click"),
        "{}",
        stderr(&o)
    );
    let text = std::fs::read_to_string(s.path("pr.csv")).expect("csv");
    let first = text.lines().nth(1).expect("a row");
    // Line 1 of the sample: `1,1,1,210:1,...,101:12,...,150_14:18,150_14:19,...`.
    assert!(first.starts_with("1,1,1,12,"), "{first}");
    assert_eq!(
        s.csv_column("pr.csv", "click")
            .iter()
            .filter(|v| *v == "1")
            .count(),
        2
    );
    assert_eq!(
        s.csv_column("pr.csv", "buy")
            .iter()
            .filter(|v| *v == "1")
            .count(),
        1
    );
    let bag = s.csv_column("pr.csv", "150_14");
    assert!(bag[0].starts_with("18|19|20|"), "{}", bag[0]);
}
