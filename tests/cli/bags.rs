//! Multi-valued features through the CLI: a funnel whose truth lives only in each row's tags.

use crate::*;

/// A splitmix64 step: the fixture's own generator, so the data never changes.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49eb_133b_a2cb);
    z ^ (z >> 31)
}

fn uniform(state: &mut u64) -> f64 {
    (next(state) >> 11) as f64 / (1u64 << 53) as f64
}

/// `rows` rows of `user` (noise: 40 values), `tags` (0 to 6 of 24 tags, `tag:weight` when
/// `weighted`; about one row in eight has none) and the labels. Clicks are likely with `t0` or
/// `t1` and unlikely with `t2`; conversions after a click are likely with `t3`. The user says
/// nothing, so a model without the tags has nothing to learn.
fn tagged_csv(rows: usize, seed: u64, weighted: bool) -> String {
    let mut st = seed;
    let mut out = String::from("user,tags,click,buy\n");
    for _ in 0..rows {
        let user = next(&mut st) % 40;
        let n = (next(&mut st) % 7) as usize;
        let mut tags: Vec<u64> = (0..n).map(|_| next(&mut st) % 24).collect();
        tags.dedup();
        let has = |t: u64| tags.contains(&t);
        let logit = -1.2 + 2.5 * (has(0) as u8 as f64) + 2.0 * (has(1) as u8 as f64)
            - 2.5 * (has(2) as u8 as f64);
        let click = uniform(&mut st) < 1.0 / (1.0 + (-logit).exp());
        let buy = click && uniform(&mut st) < if has(3) { 0.8 } else { 0.1 };
        let cell: Vec<String> = tags
            .iter()
            .map(|t| match weighted {
                true => format!("t{t}:1"),
                false => format!("t{t}"),
            })
            .collect();
        out += &format!("u{user},{},{},{}\n", cell.join("|"), click as u8, buy as u8);
    }
    out
}

fn pipeline(features: &str) -> String {
    format!(
        r#"name: tags
data:
  train: train.csv
  valid: {{ split_from: train, fraction: 0.2 }}
  test: test.csv
features:
  embedding_dim: 8
  categorical: [user]
{features}stages:
  - {{ name: click, label: click, tower: {{ hidden: [16] }} }}
  - {{ name: buy, label: buy, tower: {{ hidden: [16] }} }}
train:
  epochs: 4
  batch_size: 128
  threads: 2
"#
    )
}

/// Tags pooled by sum, mean and max all learn what only the tags say (click AUC well above the
/// tagless model's, near the truth's), inline weights read, truncation is counted and reported
/// per split, and the run evaluates and predicts from its saved vocabulary; the same model on
/// the user alone stays near chance. The true probabilities' own test AUCs, computed by a short
/// Python copy of `tagged_csv` with an exact rank AUC, are 0.738 (click, all rows) and 0.739
/// (buy given click, clicked rows): the ceiling no model can pass.
#[test]
fn multi_valued_tags_train_evaluate_and_predict() {
    let s = Scratch::new();
    s.write("train.csv", &tagged_csv(5000, 1, false));
    s.write("test.csv", &tagged_csv(2000, 2, false));
    s.write("tagless.yaml", &pipeline(""));
    ok(&s.run(&["train", "tagless.yaml", "--out", "tagless"]));
    let chance = s.test_auc("tagless", 0, "cumulative");
    for pooling in ["sum", "mean", "max"] {
        s.write(
            "pipeline.yaml",
            &pipeline(&format!(
                "  multi_valued:\n    - {{ name: tags, pooling: {pooling}, max_len: 5 }}\n"
            )),
        );
        let o = s.run(&["train", "pipeline.yaml", "--out", pooling]);
        ok(&o);
        let click = s.test_auc(pooling, 0, "cumulative");
        let buy = s.test_auc(pooling, 1, "conditional");
        assert!(
            click > 0.70 && click > chance + 0.15,
            "{pooling}: click AUC {click} (tagless {chance}, truth 0.738)"
        );
        assert!(
            buy > 0.68,
            "{pooling}: conditional buy AUC {buy} (truth 0.739)"
        );
        // Rows of 6 tags are cut to 5, in every split, and said so.
        let err = stderr(&o);
        for split in ["train", "valid", "test"] {
            assert!(
                err.contains(&format!("warning: {split}: feature `tags`: "))
                    && err.contains("tokens; their first 5 were kept (`max_len`)"),
                "{split}: {err}"
            );
        }
        let e = s.run(&["eval", "--run", pooling, "--data", "test.csv"]);
        ok(&e);
        assert!(
            stdout(&e).contains(&format!("{click:.4}")),
            "{}",
            stdout(&e)
        );
        let out = format!("{pooling}.csv");
        ok(&s.run(&[
            "predict", "--run", pooling, "--data", "test.csv", "--out", &out,
        ]));
        let p = std::fs::read_to_string(s.path(&out)).expect("predictions");
        assert_eq!(p.lines().count(), 2001);
        crate::serve::served_equals_predict(&s, pooling, "test.csv");
        // A served row's tags as a list are the same tags as the file's `a|b` text.
        use funnel::serve::{Model, Value};
        let model = Model::load(s.path(pooling)).expect("serve");
        let row = |tags: Value| {
            model
                .predict_row(&[("user", "u3".into()), ("tags", tags)])
                .expect("a row with tags")
        };
        let listed = row(Value::List(vec!["t0".into(), "t3".into()]));
        assert_eq!(listed, row("t0|t3".into()), "{pooling}");
        assert_ne!(
            listed,
            row(Value::List(Vec::new())),
            "{pooling}: tags matter"
        );
    }
    assert!(chance < 0.6, "tagless click AUC {chance}");

    // Inline weights: the same tags written `tag:1` train to the same metrics as unweighted
    // sum pooling.
    s.write("train.csv", &tagged_csv(5000, 1, true));
    s.write("test.csv", &tagged_csv(2000, 2, true));
    s.write(
        "weighted.yaml",
        &pipeline(
            "  multi_valued:\n    - { name: tags, pooling: sum, max_len: 5, weight_separator: \":\" }\n",
        ),
    );
    ok(&s.run(&["train", "weighted.yaml", "--out", "weighted"]));
    let weighted = s.test_auc("weighted", 0, "cumulative");
    assert_eq!(weighted, s.test_auc("sum", 0, "cumulative"));
}

/// A multi-valued feature's settings are checked at their keys, and it joins a field group.
#[test]
fn multi_valued_settings_are_checked() {
    let s = Scratch::new();
    s.write("train.csv", &tagged_csv(50, 1, false));
    s.write("test.csv", &tagged_csv(50, 2, false));
    for (features, want) in [
        (
            "  multi_valued:\n    - { name: tags, pooling: max, weight_separator: \":\" }\n",
            "`features.multi_valued[0].pooling`: `max` pooling takes no weights",
        ),
        (
            "  multi_valued:\n    - { name: tags, max_len: 0 }\n",
            "`features.multi_valued[0].max_len`: max_len must be between 1 and",
        ),
        (
            "  multi_valued:\n    - { name: tags, weight_separator: \"|\" }\n",
            "`features.multi_valued[0].weight_separator`: the weight separator \"|\" is empty or the token separator",
        ),
        (
            "  multi_valued:\n    - { name: tags, pool: sum }\n",
            "unknown field `pool`",
        ),
        (
            "  multi_valued:\n    - { name: user }\n",
            "feature `user` is declared twice",
        ),
    ] {
        s.write("pipeline.yaml", &pipeline(features));
        let err = s.refused(&["validate", "pipeline.yaml"]);
        assert!(err.contains(want), "{features}: {err}");
    }
    // A group may sum a categorical feature and a multi-valued one of the same width.
    s.write(
        "pipeline.yaml",
        &pipeline(
            "  multi_valued: [tags]\n  groups:\n    - { name: who, features: [user, tags] }\n",
        ),
    );
    ok(&s.run(&["train", "pipeline.yaml", "--out", "grouped"]));
}

/// `init` declares a column of token lists as a multi-valued feature (`tag:weight` pairs as
/// weights), and the pipeline it writes trains.
#[test]
fn init_declares_token_lists_as_multi_valued() {
    let s = Scratch::new();
    for (weighted, want) in [
        (false, "    - { name: tags, separator: \"|\" }   # "),
        (
            true,
            "    - { name: tags, separator: \"|\", weight_separator: \":\", pooling: sum }   # ",
        ),
    ] {
        s.write("train.csv", &tagged_csv(3000, 1, weighted));
        let o = s.run(&[
            "init",
            "train.csv",
            "--stages",
            "click,buy",
            "--out",
            "p.yaml",
            "--force",
        ]);
        ok(&o);
        let yaml = std::fs::read_to_string(s.path("p.yaml")).expect("pipeline");
        assert!(
            yaml.contains("  multi_valued:\n") && yaml.contains(want),
            "{yaml}"
        );
        assert!(yaml.contains("{ name: user }"), "{yaml}");
        let run = format!("run-{weighted}");
        ok(&s.run(&["train", "p.yaml", "--out", &run, "--set", "train.epochs=1"]));
    }
}
