//! Defects a hostile but realistic user found, each fixed and kept fixed: panics on exotic
//! input, silent wrong results, misleading messages, unbounded sizes, overwritten files.

use crate::*;

fn exotic(s: &Scratch, numeric: &str) {
    let data = repo().join("tests/data/exotic-types.parquet");
    s.write(
        "exotic.yaml",
        &format!(
            "name: exotic\ndata:\n  train: {{ path: {} }}\n  valid: {{ split_from: train, fraction: 0.25 }}\nfeatures:\n  categorical: [{{ name: x }}]\n  numeric: [{numeric}]\nstages:\n  - {{ name: click, label: {{ column: y }} }}\ntrain: {{ epochs: 1, batch_size: 8 }}\n",
            data.display()
        ),
    );
}

/// A Parquet file with decimal, dictionary, timestamp and list columns (common in Spark and
/// pandas output) trains, evaluates and predicts when the pipeline does not read them, and is
/// refused with the column and its type when it does; its list column is refused by any feature
/// but a multi-valued one, which trains on it. No panic either way.
#[test]
fn parquet_columns_of_unread_types_are_ignored_or_refused_by_name() {
    let s = Scratch::new();
    exotic(&s, "{ name: x, column: x }");
    // `x` as both: a categorical and a numeric feature need distinct names.
    s.edit(
        "exotic.yaml",
        "{ name: x, column: x }",
        "{ name: x_value, column: x }",
    );
    let data = repo().join("tests/data/exotic-types.parquet");
    let data = data.to_str().expect("utf-8 path");
    ok(&s.run(&["validate", "exotic.yaml"]));
    ok(&s.run(&["train", "exotic.yaml", "--out", "run"]));
    ok(&s.run(&["eval", "--run", "run", "--data", data]));
    ok(&s.run(&["predict", "--run", "run", "--data", data, "--out", "p.csv"]));
    for (column, kind) in [
        ("money", "Decimal(10, 3)"),
        ("colour", "Dictionary"),
        ("when", "Timestamp"),
    ] {
        exotic(&s, &format!("{{ name: v, column: {column} }}"));
        let err = s.refused(&["train", "exotic.yaml", "--out", column]);
        assert!(
            err.contains(&format!(
                "column `{column}`: the column's Parquet type ({kind}"
            )),
            "{err}"
        );
        assert!(
            err.contains("write it as float64, int64, boolean or string"),
            "{err}"
        );
    }
    exotic(&s, "{ name: v, column: tags }");
    let err = s.refused(&["train", "exotic.yaml", "--out", "tags"]);
    assert!(
        err.contains(
            "column `tags`: the column holds lists, which only a multi-valued feature reads\n  hint: declare it under `features.multi_valued`"
        ),
        "{err}"
    );
    s.edit(
        "exotic.yaml",
        "numeric: [{ name: v, column: tags }]",
        "multi_valued: [{ name: v, column: tags }]",
    );
    ok(&s.run(&["train", "exotic.yaml", "--out", "tags"]));
}

/// Integer ids written as floats (pandas writes an id column with a missing value as
/// float64: `3.0`) match the vocabulary fitted on the integers; ids never seen in training on
/// more than 5% of rows are reported at eval and predict.
#[test]
fn integral_float_ids_match_and_unseen_ids_are_reported() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    s.edit(
        "pipeline.yaml",
        "    - name: sex\n",
        "    - name: sex\n    - name: education-num\n",
    );
    s.edit("pipeline.yaml", "epochs: 6", "epochs: 1");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    let text = std::fs::read_to_string(s.path("test.csv")).expect("test");
    let col = text
        .lines()
        .next()
        .expect("header")
        .split(',')
        .position(|h| h.trim() == "education-num")
        .expect("column");
    let rewrite = |f: &dyn Fn(&str) -> String| -> String {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
            if i > 0 {
                cells[col] = f(cells[col].trim());
            }
            out.push(cells.join(","));
        }
        out.join("\n") + "\n"
    };
    s.write("floats.csv", &rewrite(&|v| format!("{v}.0")));
    let plain = s.run(&["eval", "--run", "run", "--data", "test.csv"]);
    let floats = s.run(&["eval", "--run", "run", "--data", "floats.csv"]);
    ok(&floats);
    assert_eq!(
        stdout(&plain).lines().skip(1).collect::<Vec<_>>(),
        stdout(&floats).lines().skip(1).collect::<Vec<_>>()
    );
    assert!(
        !stderr(&floats).contains("unseen in training"),
        "{}",
        stderr(&floats)
    );
    // Shifted ids: 1..16 become 101..116, unseen.
    s.write("shifted.csv", &rewrite(&|v| format!("1{v:0>2}")));
    for args in [
        vec!["eval", "--run", "run", "--data", "shifted.csv"],
        vec![
            "predict",
            "--run",
            "run",
            "--data",
            "shifted.csv",
            "--out",
            "p.csv",
        ],
    ] {
        let o = s.run(&args);
        ok(&o);
        assert!(
            stderr(&o).contains("warning: feature `education-num` (column `education-num`): 1500 of 1500 rows (100.0%) have values unseen in training"),
            "{}",
            stderr(&o)
        );
    }
}

/// SIGINT while `generate` writes a large file: it stops before the next chunk, removes its
/// temporary file, writes nothing at `--out`, and exits 130.
#[test]
fn interrupted_generate_leaves_nothing_behind() {
    let s = Scratch::new();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args([
            "generate",
            repo()
                .join("pipelines/generate/two-stage.yaml")
                .to_str()
                .expect("path"),
            "--rows",
            "200000000",
            "--out",
            "big.parquet",
        ])
        .current_dir(s.dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let temporary = || {
        std::fs::read_dir(s.dir.path())
            .expect("dir")
            .flatten()
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".big.parquet.tmp-")
            })
    };
    wait_for("the temporary file", temporary);
    signal(&child, "INT");
    let o = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted by SIGINT: stopped at once; nothing half-written was left"),
        "{err}"
    );
    assert!(!temporary(), "the temporary file is left");
    assert!(!s.path("big.parquet").exists());
}

/// Files the Parquet fuzzer found (`docs/fuzzing.md`): malformed metadata that panicked inside
/// polars, a page header whose claim made polars' reservation abort the process, and metadata
/// announcing more rows than a column holds, which indexed past the end. All are refused as
/// malformed, naming the file.
#[test]
fn fuzzer_findings_are_refused_as_malformed() {
    let s = Scratch::new();
    for (file, says) in [
        (
            "fuzz-parquet-thrift-bool.parquet",
            "the file is malformed (the reader failed: thrift bool field)",
        ),
        (
            // A page header claiming -46 values: polars' decoder would reserve about 2^61 bytes
            // for it, and the failed allocation would abort the process.
            "fuzz-parquet-page-negative-values.parquet",
            "column `y`: the file is malformed: a page of row group 2 claims a negative number of values (-46)",
        ),
        (
            "fuzz-parquet-short-column.parquet",
            "the file is malformed: it announces 30 rows, the column holds 0",
        ),
    ] {
        std::fs::copy(repo().join("tests/data").join(file), s.path("in.parquet")).expect("copy");
        s.write(
            "p.yaml",
            "name: f\ndata:\n  train: { path: in.parquet }\n  valid: { split_from: train, fraction: 0.3 }\nfeatures:\n  categorical: [a]\n  numeric: [b]\nstages:\n  - { name: y, label: y }\n  - { name: z, label: z }\n",
        );
        let err = s.refused(&["train", "p.yaml", "--out", "run"]);
        assert!(err.contains(says), "{file}: {err}");
    }
}

/// A standard output closed by its reader (`funnel train ... | head -1`) neither panics nor
/// stops the command: the run is written whole, and compare's tables too.
#[test]
fn a_closed_standard_output_does_not_stop_a_command() {
    let s = Scratch::new();
    s.adult_pipeline(CLICK, "");
    s.edit("pipeline.yaml", "epochs: 6", "epochs: 1");
    let closed = || {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        writer
    };
    for args in [
        &["train", "pipeline.yaml", "--out", "run"][..],
        &["compare", "pipeline.yaml", "--seeds", "1", "--out", "cmp"],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_funnel"))
            .args(args)
            .current_dir(s.dir.path())
            .stdout(closed())
            .output()
            .expect("run funnel");
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
    assert!(s.path("run/manifest.json").exists());
    assert!(s.path("cmp/compare.md").exists());
}
