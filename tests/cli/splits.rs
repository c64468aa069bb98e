//! Splits carved by time: the validation rows lie after the training rows and the test rows
//! after both, whether the cut is a share of the rows or a time, from dates or Unix seconds.

use crate::*;

/// 1200 rows over 12 days (100 a day, in shuffled order), a day's date and its Unix seconds, a
/// feature and two stages' labels.
fn daily_csv() -> String {
    let mut out = String::from("day,ts,x,click,buy\n");
    for i in 0..1200u64 {
        // A permutation of the rows, so that file order is not time order.
        let j = (i * 7919) % 1200;
        let day = 1 + j / 100;
        let x = j % 13;
        // Labels that no feature gives away (the leak check would refuse them).
        let h = j.wrapping_mul(2_654_435_761) >> 5;
        let click = (h % 3 == 0) as u8;
        let buy = (click == 1 && (h >> 3) % 2 == 0) as u8;
        out += &format!(
            "2017-11-{day:02},{},{x},{click},{buy}\n",
            1_509_494_400 + (day - 1) * 86_400
        );
    }
    out
}

fn yaml(valid: &str, test: &str) -> String {
    format!(
        "name: days\ndata:\n  train: days.csv\n  valid: {valid}\n  test: {test}\nfeatures:\n  categorical: [x]\nstages:\n  - {{ name: click, label: click }}\n  - {{ name: buy, label: buy }}\ntrain: {{ epochs: 1, batch_size: 64 }}\n"
    )
}

/// The times of the split's rows, as `predict --split` finds them again.
fn split_times(s: &Scratch, run: &str, split: &str, column: &str) -> Vec<f64> {
    let out = format!("{run}-{split}.csv");
    ok(&s.run(&[
        "predict", "--run", run, "--split", split, "--keep", column, "--out", &out,
    ]));
    s.csv_column(&out, column)
        .iter()
        .map(|t| funnel::times::parse_time(t).expect("a time"))
        .collect()
}

#[test]
fn splits_carved_by_time_lie_after_the_training_rows() {
    let s = Scratch::new();
    s.write("days.csv", &daily_csv());
    let day = |d: u64| 1_509_494_400.0 + (d - 1) as f64 * 86_400.0;
    for (case, (valid, test, column, rows)) in [
        // The latest 10% (120 rows) and the 10% before: day 12 (day 11 would straddle the cut,
        // so it stays in the earlier split), and day 11 (day 10 likewise).
        (
            "{ split_from: train, time_column: day, fraction: 0.1 }",
            "{ split_from: train, time_column: day, fraction: 0.1 }",
            "day",
            (1000, 100, 100),
        ),
        // From dates (against a column of dates) and from Unix seconds (against seconds).
        (
            "{ split_from: train, time_column: day, from: \"2017-11-09\" }",
            "{ split_from: train, time_column: day, from: 2017-11-11 }",
            "day",
            (800, 200, 200),
        ),
        (
            "{ split_from: train, time_column: ts, from: 1510185600 }",
            "{ split_from: train, time_column: ts, from: \"2017-11-11 00:00:00\" }",
            "ts",
            (800, 200, 200),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let run = format!("run{case}");
        s.write("p.yaml", &yaml(valid, test));
        let o = s.run(&["train", "p.yaml", "--out", &run]);
        ok(&o);
        let (train, v, t) = rows;
        assert!(
            stderr(&o).contains(&format!("data: train {train} rows, valid {v}, test {t};")),
            "{valid}: {}",
            stderr(&o)
        );
        let valid_times = split_times(&s, &run, "valid", column);
        let test_times = split_times(&s, &run, "test", column);
        assert_eq!((valid_times.len(), test_times.len()), (v, t));
        let last_valid = valid_times.iter().copied().fold(f64::MIN, f64::max);
        let first_test = test_times.iter().copied().fold(f64::MAX, f64::min);
        assert!(last_valid < first_test, "{valid}");
        let first_valid = valid_times.iter().copied().fold(f64::MAX, f64::min);
        assert_eq!(first_valid, day(12 - (t + v) as u64 / 100 + 1), "{valid}");
    }
}

/// Carved-by-time settings are checked at their keys.
#[test]
fn time_split_settings_are_checked() {
    let s = Scratch::new();
    s.write("days.csv", &daily_csv());
    for (valid, test, want) in [
        (
            "{ split_from: train, fraction: 0.1 }",
            "{ split_from: train, time_column: day, fraction: 0.1 }",
            "`data.valid`: the test split is carved by time and the validation split is not",
        ),
        (
            "{ split_from: train, time_column: day, from: 2017-11-11 }",
            "{ split_from: train, time_column: day, from: 2017-11-09 }",
            "`data.test.from`: the test split starts before the validation split",
        ),
        (
            "{ split_from: train, time_column: day, from: yesterday }",
            "{ split_from: train, time_column: day, fraction: 0.1 }",
            "`data.valid.from`: \"yesterday\" is not a time",
        ),
        (
            "{ split_from: train, time_column: day }",
            "{ split_from: train, time_column: day, fraction: 0.1 }",
            "`data.valid`: `time_column` without `fraction` or `from`",
        ),
        (
            "{ split_from: train, time_column: day, fraction: 0.1 }",
            "{ split_from: train, time_column: ts, fraction: 0.1 }",
            "carved by `day` and the test split by `ts`",
        ),
    ] {
        s.write("p.yaml", &yaml(valid, test));
        let err = s.refused(&["validate", "p.yaml"]);
        assert!(err.contains(want), "{valid} / {test}: {err}");
    }
    // A row without a readable time is named.
    s.write("days.csv", &daily_csv().replacen("2017-11-", "2017-1x-", 1));
    s.write(
        "p.yaml",
        &yaml(
            "{ split_from: train, time_column: day, fraction: 0.1 }",
            "{ split_from: train, time_column: day, fraction: 0.1 }",
        ),
    );
    let err = s.refused(&["validate", "p.yaml"]);
    assert!(
        err.contains("column `day`, row 1: ") && err.contains("is not a time"),
        "{err}"
    );
}

/// A source of several files: the training file cut into parts under `day=*/` directories,
/// read through a glob and through the directory, trains to the very metrics of the whole file
/// (the parts are read in path order, which is the file's order); a bad cell is named by its
/// part and its row there; a part without a column is refused naming it.
#[test]
fn parts_in_directories_and_globs_read_as_one_file() {
    let s = Scratch::new();
    s.adult_pipeline(CLICK, "");
    s.edit("pipeline.yaml", "epochs: 6", "epochs: 2");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "whole"]));
    let text = std::fs::read_to_string(s.path("train.csv")).expect("csv");
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    let rows: Vec<&str> = lines.collect();
    for (k, chunk) in rows.chunks(rows.len().div_ceil(3)).enumerate() {
        let dir = s.path(&format!("parts/day={}", k + 1));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(
            dir.join("part-0.csv"),
            format!("{header}\n{}\n", chunk.join("\n")),
        )
        .expect("part");
    }
    std::fs::write(s.path("parts/_SUCCESS"), "").expect("marker");
    let auc = |run: &str| -> f64 {
        let m: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(s.path(&format!("{run}/metrics.json"))).expect("metrics"),
        )
        .expect("json");
        m["test"][0]["cumulative"]["auc"].as_f64().expect("auc")
    };
    for (source, run) in [
        ("parts/day=*/part-*.csv", "glob"),
        ("parts\n    format: csv", "dir"),
    ] {
        s.edit(
            "pipeline.yaml",
            "path: train.csv",
            &format!("path: {source}"),
        );
        ok(&s.run(&["train", "pipeline.yaml", "--out", run]));
        assert_eq!(auc(run), auc("whole"), "{source}");
        s.edit(
            "pipeline.yaml",
            &format!("path: {source}"),
            "path: train.csv",
        );
    }
    // A bad label in the second part, fourth data row: named there.
    s.edit(
        "pipeline.yaml",
        "path: train.csv",
        "path: parts/day=*/part-*.csv",
    );
    s.edit_line("parts/day=2/part-0.csv", 5, |l| {
        l.replace("<=50K", "maybe").replace(">50K", "maybe")
    });
    let err = s.refused(&["train", "pipeline.yaml", "--out", "bad"]);
    assert!(
        err.contains("parts/day=2/part-0.csv: column `Y`, row 4"),
        "{err}"
    );
    // A part without a feature's column.
    s.write("parts/day=3/part-1.csv", "a,Y\n1, >50K\n");
    let err = s.refused(&["validate", "pipeline.yaml"]);
    assert!(
        err.contains("parts/day=3/part-1.csv") && err.contains("not found"),
        "{err}"
    );
}
