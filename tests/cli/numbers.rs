//! Numbers that must not mislead: an unscaled extreme input refused with its feature, value
//! and row; a missing value filled with the median; statistics only where the seeds support
//! them and differences only between runs scored on the same rows; quoted CSV fields after a
//! separator's space; one row numbering for everything the tool writes.

use crate::*;

/// Replace the value of CSV column `col` (0-based) on data row `row` (1-based) of a scratch
/// file.
fn set_cell(s: &Scratch, file: &str, row: usize, col: usize, value: &str) {
    s.edit_line(file, row + 1, |l| {
        let mut cells: Vec<&str> = l.split(',').collect();
        cells[col] = value;
        cells.join(",")
    });
}

/// `transform: none` with a value of 1e38 (adult's `age`, data row 7) is refused, naming the
/// feature's column, the row and the value. Standardised, with three such values in training,
/// it trains, and rows missing the feature are filled with the training median exactly (the
/// mean would be about 3e34).
#[test]
fn an_extreme_raw_input_is_refused_and_the_fill_is_the_median() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    s.without_valid_split();
    for row in [7, 20, 33] {
        set_cell(&s, "train.csv", row, 0, " 1e38");
    }
    s.edit(
        "pipeline.yaml",
        "    - name: age\n",
        "    - name: age\n      transform: none\n",
    );
    let err = s.refused(&["validate", "pipeline.yaml"]);
    assert!(
        err.contains("column `age`")
            && err.contains("row 7")
            && err.contains("1e38")
            && err.contains("`transform: none`")
            && err.contains("use `transform: standardize`"),
        "{err}"
    );
    s.edit("pipeline.yaml", "transform: none", "transform: standardize");
    // Two rows lose their age.
    set_cell(&s, "train.csv", 8, 0, " ?");
    set_cell(&s, "train.csv", 9, 0, " ?");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "r"]));
    let enc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.path("r/encoders.json")).expect("encoders"),
    )
    .expect("json");
    let age = &enc["numeric"][0];
    assert_eq!(
        (age["name"].as_str(), age["missing"].as_str()),
        (Some("age"), Some("median"))
    );
    // The median of the column's values, by brute force over the file.
    let mut ages: Vec<f64> = s
        .csv_column("train.csv", "age")
        .iter()
        .filter(|v| *v != "?")
        .map(|v| v.parse().expect("age"))
        .collect();
    ages.sort_by(f64::total_cmp);
    let n = ages.len();
    let median = if n % 2 == 1 {
        ages[n / 2]
    } else {
        (ages[n / 2 - 1] + ages[n / 2]) / 2.0
    };
    assert_eq!(age["fill"].as_f64(), Some(median));
    assert!(median < 100.0);
}

/// One seed: no spread, interval or test; two: a spread, no interval or test; each says so.
/// A pipeline scored on other test rows gets no difference or test, and a note says why.
#[test]
fn compare_prints_only_statistics_its_seeds_and_rows_support() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    s.edit("pipeline.yaml", "epochs: 6", "epochs: 1");
    let o = s.run(&["compare", "pipeline.yaml", "--seeds", "1", "--out", "one"]);
    ok(&o);
    let md = stdout(&o);
    assert!(md.contains("(one seed: no spread)"), "{md}");
    assert!(md.contains("– (needs 3 seeds)"), "{md}");
    assert!(
        md.contains("Note: with 1 seed(s) there is no standard deviation, no interval and no test"),
        "{md}"
    );
    let o = s.run(&["compare", "pipeline.yaml", "--seeds", "2", "--out", "two"]);
    ok(&o);
    let md = stdout(&o);
    assert!(md.contains(" ± ") && !md.contains("no spread"), "{md}");
    assert!(
        md.contains("Note: with 2 seed(s) there is no interval and no test"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("two/compare.json")).expect("json"))
            .expect("json");
    assert!(json["pipelines"][0]["summary"][0]["ci95"].is_null());

    // Another test file (adult's next 1500 rows) for the second pipeline.
    let text = std::fs::read_to_string(repo().join("data/adult/adult.test")).expect("adult");
    let lines: Vec<&str> = text.lines().collect();
    let other = [&lines[..1], &lines[1501..3001]].concat().join("\n") + "\n";
    s.write("other-test.csv", &other);
    let o = s.run(&[
        "compare",
        "pipeline.yaml",
        "pipeline.yaml@data.test.path=other-test.csv",
        "--seeds",
        "3",
        "--out",
        "rows",
    ]);
    ok(&o);
    let md = stdout(&o);
    assert!(md.contains("– (other rows: not compared)"), "{md}");
    assert!(
        md.contains("scored on other test rows than `slice`"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("rows/compare.json")).expect("json"))
            .expect("json");
    assert_eq!(json["pipelines"][1]["same_rows"], false);
    assert!(json["pipelines"][1]["against_first"][0].is_null());
    assert!(json["pipelines"][0]["summary"][0]["ci95"].is_array());
}

/// `a, "Pri""vate"` under `trim_whitespace` is the category `Pri"vate`, as a CSV parser reads
/// `a,"Pri""vate"`, and a quoted header name loses its quotes the same way.
#[test]
fn quoted_fields_after_a_space_are_read_as_quoted() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    // Forty rows, so that the training split (the validation split is carved at random) has
    // the value.
    for row in 1..=40 {
        set_cell(&s, "train.csv", row, 1, " \"Pri\"\"vate\"");
    }
    s.edit("train.csv", "age, workclass,", "age, \"workclass\",");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "r"]));
    let enc = std::fs::read_to_string(s.path("r/encoders.json")).expect("encoders");
    assert!(enc.contains(r#""Pri\"vate""#), "the token is Pri\"vate");
    assert!(!enc.contains(r#""\"Pri"#), "quotes kept");
}

/// Every row number funnel writes counts data rows from 1: generate's `row_id` and
/// `predict --split`'s `row` agree on every row, so a join shifts nothing.
#[test]
fn row_numbers_agree_everywhere() {
    let s = Scratch::new();
    let spec = repo().join("pipelines/generate/two-stage.yaml");
    s.generate(spec.to_str().expect("utf-8"), 3000, None, "g.csv");
    assert_eq!(s.csv_column("g.csv", "row_id")[0], "1");
    let yaml = std::fs::read_to_string(repo().join("pipelines/synthetic-two-stage.yaml"))
        .expect("pipeline")
        .replace("../data/synthetic/two-stage.parquet", "g.csv")
        .replace("epochs: 6", "epochs: 1");
    s.write("p.yaml", &yaml);
    ok(&s.run(&["train", "p.yaml", "--out", "r"]));
    ok(&s.run(&[
        "predict", "--run", "r", "--split", "test", "--keep", "row_id", "--out", "t.csv",
    ]));
    let (rows, ids) = (
        s.csv_column("t.csv", "row"),
        s.csv_column("t.csv", "row_id"),
    );
    assert_eq!(rows.len(), 600);
    assert_eq!(rows, ids);
}
