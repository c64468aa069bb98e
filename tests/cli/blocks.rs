//! Blocks on the chain driven from YAML: bottoms, DCN and FM towers, field groups, bucketed
//! numerics and learned loss weights.

use crate::*;

/// The boundaries of `count` quantile buckets by brute-force counting, independent of the
/// implementation's sort. With r buckets left over m values left (at first `count` and all), a
/// value on more than m/r of them is a mass point: boundaries at it and at the next larger
/// value, and it leaves the values with one bucket; repeated until none is found. The other
/// values give value v as boundary i when ⌊i·m/r⌋ of them lie below it and more lie at or below
/// it, for i = 1..r. The minimum and repeats are left out.
fn brute_force_boundaries(values: &[f64], count: usize) -> Vec<f64> {
    let lowest = values.iter().copied().fold(f64::INFINITY, f64::min);
    let mut rest: Vec<f64> = values.to_vec();
    let mut left = count;
    let mut out: Vec<f64> = Vec::new();
    loop {
        let on = |v: f64| rest.iter().filter(|&&x| x == v).count();
        let mut masses: Vec<f64> = rest
            .iter()
            .copied()
            .filter(|&v| left > 1 && on(v) * left > rest.len())
            .collect();
        masses.sort_by(f64::total_cmp);
        masses.dedup();
        if masses.is_empty() {
            break;
        }
        for &m in &masses {
            out.push(m);
            if let Some(next) = values
                .iter()
                .copied()
                .filter(|&x| x > m)
                .min_by(f64::total_cmp)
            {
                out.push(next);
            }
            left = (left - 1).max(1);
        }
        rest.retain(|v| !masses.contains(v));
    }
    for i in 1..left {
        let rank = i * rest.len() / left;
        let v = rest
            .iter()
            .copied()
            .find(|&v| {
                let below = rest.iter().filter(|&&x| x < v).count();
                let at_or_below = rest.iter().filter(|&&x| x <= v).count();
                below <= rank && rank < at_or_below
            })
            .expect("an order statistic");
        out.push(v);
    }
    out.sort_by(f64::total_cmp);
    out.dedup();
    out.retain(|&v| v > lowest);
    out
}

/// Bucketed numerics train from YAML, the boundaries in encoders.json are the brute-force
/// quantiles of the training rows, each bucket table has its rows, and the run reloads for eval
/// and predict.
#[test]
fn quantile_buckets_train_with_brute_force_boundaries() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    s.without_valid_split();
    s.edit(
        "pipeline.yaml",
        "    - name: age\n",
        "    - { name: age, transform: quantile_buckets, buckets: 8, also_raw: true }\n",
    );
    s.edit(
        "pipeline.yaml",
        "    - name: hours-per-week\n",
        "    - { name: hours-per-week, transform: quantile_buckets, dim: 3 }\n",
    );
    s.edit("pipeline.yaml", "epochs: 6", "epochs: 2");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));

    let column = |name: &str| -> Vec<f64> {
        s.csv_column("train.csv", name)
            .iter()
            .map(|v| v.parse().expect(name))
            .collect()
    };
    let encoders: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.path("run/encoders.json")).expect("encoders"),
    )
    .expect("json");
    let boundaries = |name: &str| -> Vec<f64> {
        let n = encoders["numeric"]
            .as_array()
            .expect("numeric")
            .iter()
            .find(|n| n["name"] == name)
            .expect(name);
        serde_json::from_value(n["boundaries"].clone()).expect("boundaries")
    };
    let age = boundaries("age");
    assert_eq!(age, brute_force_boundaries(&column("age"), 8));
    assert_eq!(age.len(), 7, "{age:?}");
    let hours = boundaries("hours-per-week");
    assert_eq!(hours, brute_force_boundaries(&column("hours-per-week"), 32));
    // A plain numeric has no boundaries.
    let gain = &encoders["numeric"][1];
    assert_eq!(gain["name"], "capital-gain");
    assert!(gain.get("boundaries").is_none());

    // Tables: 3 reserved rows plus one per bucket. The towers read 5 categorical embeddings
    // of width 4, age's bucket (4) and hours' (3), then age's raw value and capital gain.
    let header: serde_json::Value = serde_json::from_str(&s.weights_header("run")).expect("json");
    let shape = |key: &str| header[key]["shape"].clone();
    assert_eq!(shape("embeddings.age"), serde_json::json!([11, 4]));
    let hours_rows = 3 + hours.len() + 1;
    assert_eq!(
        shape("embeddings.hours-per-week"),
        serde_json::json!([hours_rows, 3])
    );
    assert_eq!(shape("towers.click.0.weight"), serde_json::json!([16, 29]));
    ok(&s.run(&["eval", "--run", "run", "--data", "test.csv"]));
    ok(&s.run(&[
        "predict", "--run", "run", "--data", "test.csv", "--out", "p.csv",
    ]));
}

/// Bucket settings are refused where they do not apply or make no sense, at their key.
#[test]
fn bucket_settings_are_checked() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    s.edit(
        "pipeline.yaml",
        "    - name: age\n",
        "    - { name: age, buckets: 8 }\n",
    );
    let err = s.refused(&["validate", "pipeline.yaml"]);
    assert!(
        err.contains(
            "`features.numeric[0].buckets`: `buckets` applies to `transform: quantile_buckets` only"
        ),
        "{err}"
    );
    s.edit(
        "pipeline.yaml",
        "{ name: age, buckets: 8 }",
        "{ name: age, transform: quantile_buckets, buckets: 1 }",
    );
    let err = s.refused(&["validate", "pipeline.yaml"]);
    assert!(
        err.contains("`features.numeric[0].buckets`: buckets must be between 2 and 65536, got 1"),
        "{err}"
    );
}

/// Bottoms between the embeddings and the towers train from YAML alone with any preset, print
/// both spaces, and save their parameters; `experts` belongs to `mmoe`.
#[test]
fn bottoms_train_from_yaml_alone() {
    for (bottom, key) in [
        ("{ kind: shared_bottom, hidden: [8] }", "bottom.0.weight"),
        (
            "{ kind: mmoe, experts: 3, hidden: [8] }",
            "bottom.gates.conversion.weight",
        ),
        (
            "{ kind: ple, hidden: [8] }",
            "bottom.1.experts.conversion.0.0.weight",
        ),
        (
            "{ kind: stage_groups, groups: [[click], [conversion]], hidden: [8] }",
            "bottom.1.0.weight",
        ),
    ] {
        for preset in ["esmm", "aitm"] {
            let s = Scratch::new();
            s.adult_model(&format!("model: {{ preset: {preset}, bottom: {bottom} }}"));
            let o = s.run(&["train", "pipeline.yaml", "--out", "run"]);
            ok(&o);
            let out = stdout(&o);
            assert!(
                out.contains("conditional P(conversion|click)  reached click"),
                "{out}"
            );
            let header = s.weights_header("run");
            assert!(header.contains(key), "{preset}/{bottom}: {header}");
            ok(&s.run(&["eval", "--run", "run", "--data", "test.csv"]));
        }
    }
    let s = Scratch::new();
    s.adult_model("model: { bottom: { kind: shared_bottom, experts: 4 } }");
    let err = s.refused(&["validate", "pipeline.yaml"]);
    assert!(
        err.contains("`model.bottom.experts`: `experts` applies to `mmoe` only"),
        "{err}"
    );
}

/// `stage_groups` names every stage in exactly one group, by name, and only with that kind.
#[test]
fn stage_groups_name_every_stage_once() {
    for (bottom, at, says) in [
        (
            "{ kind: stage_groups }",
            "`model.bottom`",
            "`kind: stage_groups` needs `groups`",
        ),
        (
            "{ kind: stage_groups, groups: [[click], [buy]] }",
            "`model.bottom.groups[1][0]`",
            "`buy` is not a stage",
        ),
        (
            "{ kind: stage_groups, groups: [[click, conversion], [click]] }",
            "`model.bottom.groups[1][0]`",
            "stage `click` is in two groups",
        ),
        (
            "{ kind: stage_groups, groups: [[conversion]] }",
            "`model.bottom.groups`",
            "stage `click` is in no group",
        ),
        (
            "{ kind: stage_groups, groups: [[click], []] }",
            "`model.bottom.groups[1]`",
            "a group needs a stage",
        ),
        (
            "{ kind: mmoe, groups: [[click], [conversion]] }",
            "`model.bottom.groups`",
            "`groups` applies to `stage_groups` only",
        ),
    ] {
        let s = Scratch::new();
        s.adult_model(&format!("model: {{ bottom: {bottom} }}"));
        let err = s.refused(&["validate", "pipeline.yaml"]);
        assert!(err.contains(&format!("{at}: {says}")), "{bottom}: {err}");
    }
}

/// Uncertainty weighting trains from YAML alone and saves its learned log-variances, which moved
/// from their start at 0.
#[test]
fn uncertainty_weighting_learns_log_variances() {
    let s = Scratch::new();
    s.adult_model("model: { loss_weighting: uncertainty }");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    let header = s.weights_header("run");
    assert!(header.contains("loss_weighting.log_variance"), "{header}");
    let learned = s.weights_tensor("run", "loss_weighting.log_variance");
    assert_eq!(learned.len(), 2);
    assert!(learned.iter().all(|v| v.abs() > 1e-3), "{learned:?}");
    ok(&s.run(&["eval", "--run", "run", "--data", "test.csv"]));
}

/// DCN-v2 towers: cross layers before the MLP train from YAML, are saved under the tower, and
/// more than 8 are refused at the key.
#[test]
fn dcn_towers_train_and_save_their_cross_layers() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    s.edit(
        "pipeline.yaml",
        "tower: { hidden: [16] }",
        "tower: { hidden: [16], cross_layers: 2 }",
    );
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    let header = s.weights_header("run");
    for key in [
        "towers.click.cross.1.weight",
        "towers.conversion.cross.0.bias",
    ] {
        assert!(header.contains(key), "{key}: {header}");
    }
    s.edit("pipeline.yaml", "cross_layers: 2", "cross_layers: 9");
    let err = s.refused(&["validate", "pipeline.yaml"]);
    assert!(
        err.contains("`stages[0].tower.cross_layers`: at most 8 cross layers, got 9"),
        "{err}"
    );
}

/// DeepFM towers train from YAML; an FM over embeddings of different widths is refused at the
/// stage's key, naming the two features.
#[test]
fn fm_towers_train_and_need_one_embedding_width() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    s.edit(
        "pipeline.yaml",
        "tower: { hidden: [16] }",
        "tower: { hidden: [16], fm: true }",
    );
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    ok(&s.run(&["eval", "--run", "run", "--data", "test.csv"]));
    s.edit(
        "pipeline.yaml",
        "    - name: education\n",
        "    - name: education\n      dim: 3\n",
    );
    let err = s.refused(&["validate", "pipeline.yaml"]);
    assert!(
        err.contains("`stages[0].tower.fm`: an FM interaction needs every embedded feature at one width, but `workclass` has dim 4 and `education` has 3"),
        "{err}"
    );
}

/// Uncertainty weighting needs a loss on every stage: a stage weighted 0 is refused at its key.
#[test]
fn uncertainty_weighting_needs_every_stage_weighted() {
    let s = Scratch::new();
    s.adult_model("model: { loss_weighting: uncertainty }");
    s.edit(
        "pipeline.yaml",
        "meaning: given_previous }",
        "meaning: given_previous }\n    loss_weight: 0",
    );
    let err = s.refused(&["validate", "pipeline.yaml"]);
    assert!(
        err.contains("`stages[1].loss_weight`: uncertainty weighting"),
        "{err}"
    );
}

/// Field groups: grouped embeddings are summed, the run trains, reloads and predicts; a feature
/// that is not categorical, or in two groups, is refused at its key.
#[test]
fn field_groups_train_and_are_checked() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    s.edit(
        "pipeline.yaml",
        "  numeric:\n",
        "  groups:\n    - { name: person, features: [sex, relationship] }\n  numeric:\n",
    );
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    ok(&s.run(&[
        "predict", "--run", "run", "--data", "test.csv", "--out", "p.csv",
    ]));
    s.edit("pipeline.yaml", "[sex, relationship]", "[sex, age]");
    let err = s.refused(&["validate", "pipeline.yaml"]);
    assert!(
        err.contains("`features.groups[0].features[1]`: no categorical or multi-valued feature is named `age`"),
        "{err}"
    );
    s.edit(
        "pipeline.yaml",
        "[sex, age] }",
        "[sex, education] }\n    - { name: other, features: [education, workclass] }",
    );
    let err = s.refused(&["validate", "pipeline.yaml"]);
    assert!(
        err.contains("feature `education` is already in group `person`"),
        "{err}"
    );
}

/// GradNorm trains from YAML alone: metrics.json records each stage's weight per epoch, the
/// weights moved from 1 and sum to the stage count, and the resolved pipeline writes the
/// block's defaults. Its settings are checked at their keys.
#[test]
fn gradnorm_moves_the_stage_weights() {
    let s = Scratch::new();
    s.adult_model("model: { loss_weighting: gradnorm }");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.path("run/metrics.json")).expect("metrics"),
    )
    .expect("json");
    for epoch in m["history"].as_array().expect("history") {
        let w: Vec<f64> = epoch["train_stage_loss"]
            .as_array()
            .expect("stages")
            .iter()
            .map(|s| s["weight"].as_f64().expect("weight"))
            .collect();
        assert_eq!(w.len(), 2);
        assert!((w[0] + w[1] - 2.0).abs() < 1e-9, "{w:?}");
        assert!((w[0] - 1.0).abs() > 1e-3, "{w:?}");
    }
    let stored = std::fs::read_to_string(s.path("run/pipeline.yaml")).expect("stored");
    assert!(
        stored.contains("alpha: 1.5") && stored.contains("lr: 0.025"),
        "{stored}"
    );
    ok(&s.run(&["eval", "--run", "run", "--data", "test.csv"]));

    for (model, key, says) in [
        (
            "loss_weighting: gradnorm, gradnorm: { alpha: -1 }",
            "model.gradnorm.alpha",
            "alpha must be a number in [0, 100], got -1",
        ),
        (
            "gradnorm: { lr: 0.1 }",
            "model.gradnorm",
            "`model.gradnorm` holds settings of `loss_weighting: gradnorm`",
        ),
        (
            "loss_weighting: gradnorm, representation: per_stage_embeddings",
            "model.loss_weighting",
            "GradNorm balances the stages' gradients at the input they share, but `per_stage_embeddings` gives each stage its own",
        ),
    ] {
        s.adult_model(&format!("model: {{ {model} }}"));
        let err = s.refused(&["validate", "pipeline.yaml"]);
        assert!(err.contains(&format!("`{key}`: {says}")), "{err}");
    }
}

/// Regularisation and schedules from YAML: L2 on touched embedding rows (global and per
/// feature), gradient-norm clipping and a warm-up-then-cosine schedule train, and each changes
/// the weights; bad values are refused at their key.
#[test]
fn l2_clipping_and_schedules_train_and_change_the_weights() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    s.edit("pipeline.yaml", "epochs: 6", "epochs: 2");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "plain"]));
    let plain = std::fs::read(s.path("plain/weights.safetensors")).expect("weights");
    for (i, set) in [
        "train.embedding_optimizer.l2=0.01",
        "features.categorical.education.l2=0.5",
        "train.clip_grad_norm=0.01",
        "train.lr_schedule={ kind: cosine, warmup_steps: 10, min_factor: 0.1 }",
        "train.lr_schedule={ kind: step, gamma: 0.1 }",
    ]
    .iter()
    .enumerate()
    {
        let out = format!("run{i}");
        ok(&s.run(&["train", "pipeline.yaml", "--out", &out, "--set", set]));
        let w = std::fs::read(s.path(&out).join("weights.safetensors")).expect("weights");
        assert!(w != plain, "{set} changed nothing");
    }
    for (set, says) in [
        (
            "train.clip_grad_norm=0",
            "clip_grad_norm must be a positive number",
        ),
        (
            "train.embedding_optimizer.l2=-1",
            "l2 must be a number in [0, 1e6)",
        ),
        (
            "train.lr_schedule={ kind: step, gamma: 2 }",
            "gamma must be in (0, 1]",
        ),
    ] {
        let err = s.refused(&["validate", "pipeline.yaml", "--set", set]);
        assert!(err.contains(says), "{err}");
    }
}

/// Warm start from an earlier run: dense tensors by key and shape, embedding rows by value (the
/// new vocabulary, fitted on other rows, puts values at other ids); with learning rates near 0
/// the new run's row for a value is the old run's row for it. A tower of another shape is left
/// as initialised and named.
#[test]
fn warm_start_moves_rows_by_value() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    s.edit("pipeline.yaml", "epochs: 6", "epochs: 1");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "old"]));
    // Other training rows: none with the most common education, so every other value's id
    // moves up in the new vocabulary.
    let text = std::fs::read_to_string(s.path("train.csv")).expect("train");
    let other: Vec<&str> = text.lines().filter(|l| !l.contains("HS-grad")).collect();
    s.write("train.csv", &(other.join("\n") + "\n"));
    let o = s.run(&[
        "train",
        "pipeline.yaml",
        "--out",
        "new",
        "--set",
        "train.warm_start=old",
        "--set",
        "train.optimizer.lr=1e-12",
        "--set",
        "train.embedding_optimizer.lr=1e-12",
        "--set",
        "stages.conversion.tower.hidden=[8]",
    ]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("warm start from"), "{err}");
    assert!(err.contains("towers.conversion.0.weight"), "{err}");
    let encoders = |run: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(s.path(run).join("encoders.json")).expect("enc"),
        )
        .expect("json")
    };
    let id_of = |enc: &serde_json::Value, feature: &str, value: &str| -> usize {
        let tokens = enc["categorical"]
            .as_array()
            .expect("categorical")
            .iter()
            .find(|e| e["name"] == feature)
            .expect("feature")["tokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .position(|t| t == value)
            .expect("value");
        3 + tokens
    };
    let (old_enc, new_enc) = (encoders("old"), encoders("new"));
    let mut moved = 0;
    for value in [
        "Bachelors",
        "Some-college",
        "Masters",
        "Doctorate",
        "Preschool",
    ] {
        let (a, b) = (
            id_of(&old_enc, "education", value),
            id_of(&new_enc, "education", value),
        );
        moved += usize::from(a != b);
        let old_w = s.weights_tensor("old", "embeddings.education");
        let new_w = s.weights_tensor("new", "embeddings.education");
        for d in 0..4 {
            assert!(
                (old_w[a * 4 + d] - new_w[b * 4 + d]).abs() < 1e-6,
                "{value}"
            );
        }
    }
    assert!(moved > 0, "every value kept its id: the test shows nothing");
}
