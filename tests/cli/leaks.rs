//! Features that cannot lie: a column written after the outcome is refused before training,
//! a column mostly one value keeps its signal under quantile buckets, and a feature that is
//! constant once fitted is reported.

use crate::*;

/// An e-mail funnel (visit → conversion) as a new user brings it: `spend` is positive exactly
/// when a conversion happened (written after the outcome), `opens` is a real signal, `zeros`
/// is mostly zero with a few real values, `plan` is one value on every row.
fn email_csv(rows: usize) -> String {
    let mut st = 7u64;
    let mut next = move || {
        st = st
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (st >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut out = String::from("opens,spend,zeros,plan,visit,conversion\n");
    for _ in 0..rows {
        let opens = (next() * 10.0).floor();
        let visit = next() < 0.2 + 0.05 * opens;
        let conversion = visit && next() < 0.1 + 0.03 * opens;
        let spend = if conversion {
            format!("{:.2}", 5.0 + 95.0 * next())
        } else {
            "0".into()
        };
        let zeros = if next() < 0.05 {
            format!("{:.1}", 1.0 + 9.0 * next())
        } else {
            "0".into()
        };
        out += &format!(
            "{opens},{spend},{zeros},basic,{},{}\n",
            visit as u8, conversion as u8
        );
    }
    out
}

fn email_yaml(spend: &str) -> String {
    format!(
        r#"name: email
data:
  train: train.csv
  valid: {{ split_from: train, fraction: 0.2 }}
features:
  categorical: [plan]
  numeric:
    - opens
    - {spend}
    - {{ name: zeros, transform: quantile_buckets }}
stages:
  - {{ name: visit, label: visit }}
  - {{ name: conversion, label: conversion }}
train: {{ epochs: 1, batch_size: 256 }}
"#
    )
}

/// `spend` is refused at validate and train, naming the feature, the stage it gives away and
/// the evidence; as buckets (its zeros a bucket of their own) it is refused the same way;
/// `allow_leak: true` lets it through. The bucketed `zeros` column (95% zeros) is not constant,
/// the constant `plan` is reported in the output and in metrics.json.
#[test]
fn a_feature_written_after_the_outcome_is_refused() {
    let s = Scratch::new();
    s.write("train.csv", &email_csv(8000));
    s.write("p.yaml", &email_yaml("spend"));
    for args in [
        &["validate", "p.yaml"][..],
        &["train", "p.yaml", "--out", "run"],
    ] {
        let err = s.refused(args);
        assert!(
            err.contains(
                "feature `spend` (column `spend`) leaks the label of stage `conversion`: on its own it ranks the rows that reached the stage above the others with AUC 1.0000"
            ) && err.contains("hint: remove the feature, or mark it `allow_leak: true`"),
            "{err}"
        );
        assert!(!err.contains("`opens`"), "{err}");
    }
    s.write(
        "p.yaml",
        &email_yaml("{ name: spend, transform: quantile_buckets }"),
    );
    let err = s.refused(&["validate", "p.yaml"]);
    assert!(
        err.contains("feature `spend` (column `spend`) leaks the label of stage `conversion`"),
        "{err}"
    );
    s.write("p.yaml", &email_yaml("{ name: spend, allow_leak: true }"));
    let o = s.run(&["train", "p.yaml", "--out", "run"]);
    ok(&o);
    let err = stderr(&o);
    assert!(
        err.contains("warning: train: feature `plan` is constant once fitted"),
        "{err}"
    );
    assert!(!err.contains("feature `zeros` is constant"), "{err}");
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.path("run/metrics.json")).expect("metrics"),
    )
    .expect("json");
    let warnings = m["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap_or("")
            .contains("feature `plan` is constant")),
        "{warnings:?}"
    );
    // The zeros keep a bucket of their own and the 5% non-zero values the rest.
    let enc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.path("run/encoders.json")).expect("encoders"),
    )
    .expect("json");
    let zeros = enc["numeric"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "zeros")
        .expect("zeros");
    let b = zeros["boundaries"].as_array().expect("boundaries");
    assert!(b.len() > 20, "{b:?}");
    // The first boundary is the smallest non-zero value: the zeros alone below it.
    assert!(b[0].as_f64().unwrap() >= 1.0, "{b:?}");
}

/// `init` leaves a column that gives a stage away out of the pipeline it writes, saying why,
/// and the pipeline it writes passes the leak check.
#[test]
fn init_leaves_a_leaking_column_out() {
    let s = Scratch::new();
    s.write("train.csv", &email_csv(8000));
    let o = s.run(&[
        "init",
        "train.csv",
        "--stages",
        "visit,conversion",
        "--out",
        "p.yaml",
    ]);
    ok(&o);
    let yaml = std::fs::read_to_string(s.path("p.yaml")).expect("pipeline");
    assert!(
        yaml.contains("# `spend` left out: it gives stage `conversion` away on its own"),
        "{yaml}"
    );
    assert!(!yaml.contains("name: spend"), "{yaml}");
    assert!(yaml.contains("name: opens"), "{yaml}");
    assert!(
        stderr(&o)
            .contains("`spend`: left out: it gives stage `conversion` away (on its own it ranks"),
        "{}",
        stderr(&o)
    );
    ok(&s.run(&["validate", "p.yaml"]));
}
