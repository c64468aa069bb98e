//! `init` on odd files: whatever it writes, `validate` accepts; what it cannot write a working
//! pipeline for, it refuses, naming the file, the column and what to do.

use crate::*;

/// `rows` rows of `country,age,income,click,buy` drawn from a fixed sequence: clicks about one
/// row in three, buys only after a click.
fn base_rows(rows: usize) -> Vec<[String; 5]> {
    let mut x: u64 = 12345;
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x >> 33
    };
    let countries = ["DE", "FR", "US", "JP", "BR"];
    (0..rows)
        .map(|_| {
            let click = next() % 3 == 0;
            let buy = click && next() % 4 == 0;
            [
                countries[(next() % 5) as usize].to_string(),
                (18 + next() % 60).to_string(),
                format!("{}.{:02}", 100 + next() % 900, next() % 100),
                u8::from(click).to_string(),
                u8::from(buy).to_string(),
            ]
        })
        .collect()
}

/// A CSV with `header` and the base rows, each row passed through `edit`.
fn csv(s: &Scratch, name: &str, header: &str, edit: impl Fn(usize, &mut Vec<String>)) {
    let mut text = format!("{header}\n");
    for (i, row) in base_rows(300).into_iter().enumerate() {
        let mut cells = row.to_vec();
        edit(i, &mut cells);
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    s.write(name, &text);
}

const HEADER: &str = "country,age,income,click,buy";

/// `init` then `validate` (which must accept what init wrote); init's stderr.
fn init_validates(s: &Scratch, file: &str, stages: &str) -> String {
    init_declares(s, file, stages, "")
}

/// `init_validates`, and validate's summary holds `features` (e.g. `1 categorical and 2
/// numeric feature(s)`: every column that is not a stage's label declared, whatever its name).
fn init_declares(s: &Scratch, file: &str, stages: &str, features: &str) -> String {
    let o = s.run(&[
        "init", file, "--stages", stages, "--out", "p.yaml", "--force",
    ]);
    ok(&o);
    let v = s.run(&["validate", "p.yaml"]);
    assert!(
        v.status.success(),
        "{file}: init wrote a pipeline validate rejects:\n{}\n{}",
        std::fs::read_to_string(s.path("p.yaml")).unwrap_or_default(),
        stderr(&v)
    );
    assert!(
        stdout(&v).contains(features),
        "{file}: not every column is declared:\n{}",
        stdout(&v)
    );
    stderr(&o)
}

/// Columns and files whose names are YAML syntax or not usable as names are quoted, or read
/// through `column:` under a usable name; the pipeline validates and trains.
#[test]
fn odd_names_are_written_so_that_they_validate() {
    let s = Scratch::new();
    for (i, odd) in [
        "-",
        "a: b",
        "#x",
        "first name",
        "a.b",
        "true",
        "null",
        "[x]",
    ]
    .into_iter()
    .enumerate()
    {
        let file = format!("odd{i}.csv");
        let header = HEADER.replace("country", &format!("\"{odd}\""));
        csv(&s, &file, &header, |_, _| {});
        init_declares(
            &s,
            &file,
            "click,buy",
            "1 categorical and 2 numeric feature(s)",
        );
    }
    csv(&s, "my data #1.csv", HEADER, |_, _| {});
    init_validates(&s, "my data #1.csv", "click,buy");
    ok(&s.run(&["train", "p.yaml", "--out", "r", "--set", "train.epochs=1"]));
    // A byte-order mark and CRLF line ends read like the plain file.
    let plain = std::fs::read_to_string(s.path("my data #1.csv")).expect("csv");
    s.write("bom.csv", &format!("\u{feff}{plain}"));
    init_validates(&s, "bom.csv", "click,buy");
    s.write("crlf.csv", &plain.replace('\n', "\r\n"));
    init_validates(&s, "crlf.csv", "click,buy");
    // Constant columns are features like any other.
    csv(&s, "constant.csv", HEADER, |_, r| {
        r[0] = "DE".into();
        r[2] = "1.00".into();
    });
    init_validates(&s, "constant.csv", "click,buy");
}

/// A yes/no label is read with `yes` as the event whichever value is rarer.
#[test]
fn yes_no_labels_keep_yes_as_the_event() {
    let s = Scratch::new();
    csv(&s, "yes.csv", HEADER, |_, r| {
        // `yes` on most rows: the rarer value is `no`.
        r[3] = if r[3] == "1" { "no" } else { "yes" }.into();
        r[4] = "0".into();
    });
    init_validates(&s, "yes.csv", "click");
    let yaml = std::fs::read_to_string(s.path("p.yaml")).expect("pipeline");
    assert!(
        yaml.contains("positive: [yes]") || yaml.contains("positive: [\"yes\"]"),
        "{yaml}"
    );
}

/// What init cannot make a working pipeline of is refused with the file, the column and what
/// to do: no feature left, a label with missing values, a label of three values, a header
/// without rows, Latin-1 bytes, a repeated header name, unusable or repeated stage names.
#[test]
fn files_init_cannot_describe_are_refused_with_a_way_forward() {
    let s = Scratch::new();
    csv(&s, "labels-only.csv", "click,buy,x,y,z", |_, r| {
        r.truncate(2);
        r[0] = (r[1].len() % 2).to_string();
        r[1] = "0".into();
    });
    let text = std::fs::read_to_string(s.path("labels-only.csv")).expect("csv");
    let two: String = text
        .lines()
        .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
        .collect::<Vec<_>>()
        .join("\n");
    s.write("labels-only.csv", &(two + "\n"));
    let err = s.refused(&["init", "labels-only.csv", "--stages", "click,buy"]);
    assert!(err.contains("no column is left to be a feature"), "{err}");

    csv(&s, "missing.csv", HEADER, |i, r| {
        if i == 2 {
            r[3] = String::new();
        }
    });
    let err = s.refused(&["init", "missing.csv", "--stages", "click,buy"]);
    assert!(
        err.contains("column `click`, row 3") && err.contains("has no label"),
        "{err}"
    );

    csv(&s, "three.csv", HEADER, |i, r| {
        r[3] = ["a", "b", "c"][i % 3].into()
    });
    let err = s.refused(&["init", "three.csv", "--stages", "click"]);
    assert!(
        err.contains("3 distinct values") && err.contains("--stages click=click:"),
        "{err}"
    );

    s.write("header.csv", &format!("{HEADER}\n"));
    let err = s.refused(&["init", "header.csv", "--stages", "click"]);
    assert!(
        err.contains("no rows to profile") && err.contains("hint:"),
        "{err}"
    );

    csv(&s, "latin1.csv", HEADER, |_, _| {});
    let mut bytes = std::fs::read(s.path("latin1.csv")).expect("csv");
    let at = bytes.iter().position(|&b| b == b'\n').expect("header") + 2;
    bytes[at] = 0xE7;
    std::fs::write(s.path("latin1.csv"), bytes).expect("write");
    let err = s.refused(&["init", "latin1.csv", "--stages", "click"]);
    assert!(
        err.contains("column `country`, row 1")
            && err.contains("byte 0xE7 is not UTF-8")
            && err.contains("iconv"),
        "{err}"
    );

    csv(&s, "dup.csv", "country,country,income,click,buy", |_, _| {});
    let err = s.refused(&["init", "dup.csv", "--stages", "click"]);
    assert!(
        err.contains("column `country`") && err.contains("more than once"),
        "{err}"
    );

    csv(&s, "base.csv", HEADER, |_, _| {});
    let err = s.refused(&["init", "base.csv", "--stages", "my click=click"]);
    assert!(
        err.contains("is not usable") && err.contains("my_click=click"),
        "{err}"
    );
    let err = s.refused(&["init", "base.csv", "--stages", "click,click"]);
    assert!(err.contains("stage `click` is given twice"), "{err}");
}

/// A column whose values are mostly rare (Zipf-distributed users and items) gets `min_count: 5`
/// and a small embedding L2, saying why; a short-tailed column (category, device) does not; the
/// pipeline validates.
#[test]
fn long_tailed_ids_get_min_count_and_l2() {
    let s = Scratch::new();
    let spec = repo().join("pipelines/generate/two-stage.yaml");
    s.generate(spec.to_str().expect("utf-8"), 20000, None, "two.parquet");
    let o = s.run(&[
        "init",
        "two.parquet",
        "--stages",
        "click,conversion",
        "--out",
        "p.yaml",
    ]);
    ok(&o);
    let yaml = std::fs::read_to_string(s.path("p.yaml")).expect("pipeline");
    let line = |name: &str| {
        yaml.lines()
            .find(|l| l.contains(&format!("{{ name: {name}")))
            .unwrap_or_else(|| panic!("{name} in {yaml}"))
            .to_string()
    };
    for tailed in ["user", "item"] {
        let l = line(tailed);
        assert!(
            l.contains(&format!("{{ name: {tailed}, min_count: 5, l2: 1.0e-4 }}"))
                && l.contains("long tail: "),
            "{l}"
        );
    }
    for short in ["category", "device"] {
        assert!(!line(short).contains("min_count"), "{}", line(short));
    }
    assert!(
        stderr(&o).contains("long-tailed ids `user`, `item`: `min_count: 5` and `l2: 1.0e-4`"),
        "{}",
        stderr(&o)
    );
    ok(&s.run(&["validate", "p.yaml"]));
}
