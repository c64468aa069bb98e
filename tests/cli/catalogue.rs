//! The catalogue of bad input (docs/errors.md): every case runs the real CLI, must end with its
//! exit code and a message holding its key phrase, never a panic; the document is generated
//! from these runs and must match them exactly (`FUNNEL_BLESS=1 cargo test --release catalogue` rewrites
//! it after a deliberate change of wording).

use std::io::Write;

use crate::*;

struct Case {
    title: &'static str,
    /// Prepares the scratch folder (the adult slices and `pipeline.yaml` are there already).
    setup: Box<dyn Fn(&Scratch)>,
    args: &'static [&'static str],
    code: i32,
    /// A phrase the message must hold.
    expect: &'static str,
}

fn case(
    title: &'static str,
    args: &'static [&'static str],
    code: i32,
    expect: &'static str,
    setup: impl Fn(&Scratch) + 'static,
) -> Case {
    Case {
        title,
        setup: Box::new(setup),
        args,
        code,
        expect,
    }
}

const VALIDATE: &[&str] = &["validate", "pipeline.yaml"];
const TRAIN: &[&str] = &["train", "pipeline.yaml", "--out", "run"];
const EVAL: &[&str] = &["eval", "--run", "run", "--data", "test.csv"];
const PREDICT: &[&str] = &[
    "predict", "--run", "run", "--data", "test.csv", "--out", "p.csv",
];

fn edit(from: &'static str, to: &'static str) -> impl Fn(&Scratch) {
    move |s: &Scratch| {
        s.edit("pipeline.yaml", from, to);
    }
}

fn trained(s: &Scratch) {
    ok(&s.run(TRAIN));
}

fn cases() -> Vec<Case> {
    let exotic = repo().join("tests/data/exotic-types.parquet");
    vec![
        case(
            "YAML: a tab in the indentation",
            VALIDATE,
            2,
            "indented with a tab",
            edit("  epochs: 6", "\tepochs: 6"),
        ),
        case(
            "YAML: bad indentation",
            VALIDATE,
            2,
            "pipeline.yaml:",
            edit("  batch_size: 128", "    batch_size: 128"),
        ),
        case(
            "Unknown key, one letter off",
            VALIDATE,
            2,
            "did you mean `epochs`?",
            edit("  epochs: 6", "  epoch: 6"),
        ),
        case(
            "Unknown value, one letter off",
            VALIDATE,
            2,
            "did you mean `relu`?",
            edit(
                "tower: { hidden: [16] }\n  - name: conversion",
                "tower: { hidden: [16], activation: relux }\n  - name: conversion",
            ),
        ),
        case(
            "Several problems at once: all are reported, top to bottom",
            VALIDATE,
            2,
            "3 problems found",
            |s: &Scratch| {
                s.edit("pipeline.yaml", "  epochs: 6", "  epoch: 6");
                s.edit("pipeline.yaml", "  batch_size: 128", "  batch_size: lots");
                s.edit("pipeline.yaml", "  - name: conversion", "  - name: click");
            },
        ),
        case(
            "Wrong type",
            VALIDATE,
            2,
            "`train.epochs`",
            edit("  epochs: 6", "  epochs: six"),
        ),
        case("Empty stage list", VALIDATE, 2, "stages", |s: &Scratch| {
            let text = std::fs::read_to_string(s.path("pipeline.yaml")).expect("read");
            let (head, tail) = text.split_once("stages:\n").expect("stages");
            let tail = &tail[tail.find("train:").expect("train")..];
            s.write("pipeline.yaml", &format!("{head}stages: []\n{tail}"));
        }),
        case(
            "Duplicate stage names",
            VALIDATE,
            2,
            "`stages[1].name`",
            edit("  - name: conversion", "  - name: click"),
        ),
        case(
            "The first stage counted after a parent it does not have",
            VALIDATE,
            2,
            "`stages[0].label.meaning`",
            edit(
                "negative: [\"<=50K\", \"<=50K.\"] }",
                "negative: [\"<=50K\", \"<=50K.\"], meaning: given_previous }",
            ),
        ),
        case(
            "Name with a space",
            VALIDATE,
            2,
            "is not usable",
            edit("  - name: conversion", "  - name: con version"),
        ),
        case(
            "Learning rate out of range",
            VALIDATE,
            2,
            "`lr` must be in (0, 1000], got 1000000000000000000000000000000",
            edit("  threads: 2", "  threads: 2\n  optimizer: { lr: 1e30 }"),
        ),
        case(
            "Hidden layer of 4e12 units",
            VALIDATE,
            2,
            "between 1 and 65536",
            edit(
                "tower: { hidden: [16] }\n  - name: conversion",
                "tower: { hidden: [4000000000000] }\n  - name: conversion",
            ),
        ),
        case(
            "Embedding width of 1e11",
            VALIDATE,
            2,
            "embedding_dim must be between 1 and 4096",
            edit("embedding_dim: 4", "embedding_dim: 100000000000"),
        ),
        case(
            "100000 threads",
            VALIDATE,
            2,
            "threads must be at most 1024",
            edit("  threads: 2", "  threads: 100000"),
        ),
        case(
            "A label used as a feature",
            VALIDATE,
            2,
            "the model would read the answer",
            edit("    - name: sex\n", "    - name: sex\n    - name: Y\n"),
        ),
        case(
            "Validation split equal to the test split",
            VALIDATE,
            2,
            "the validation split equals the test split",
            edit(
                "  valid: { split_from: train, fraction: 0.2 }",
                "  valid: { path: test.csv, csv: { trim_whitespace: true, null_values: [\"?\"] } }",
            ),
        ),
        case(
            "Missing data file",
            TRAIN,
            2,
            "file not found",
            |s: &Scratch| std::fs::remove_file(s.path("train.csv")).expect("rm"),
        ),
        case(
            "Missing column",
            TRAIN,
            2,
            "column `occupation`: column not found",
            |s: &Scratch| {
                let text = std::fs::read_to_string(s.path("train.csv")).expect("read");
                s.write("train.csv", &text.replace("occupation", "job"));
            },
        ),
        case(
            "Empty file",
            TRAIN,
            2,
            "the file is empty",
            |s: &Scratch| {
                s.write("train.csv", "");
            },
        ),
        case(
            "Header and no rows",
            TRAIN,
            2,
            "the training split has no usable rows",
            |s: &Scratch| {
                s.adult_slice("adult.data", 0, "train.csv");
            },
        ),
        case(
            "CSV row with too few fields",
            TRAIN,
            2,
            "row 41: 3 field(s) where the header has 15 (line 42)",
            |s: &Scratch| s.edit_line("train.csv", 42, |_| "39, State-gov, 77516".into()),
        ),
        case(
            "CSV row with too many fields",
            TRAIN,
            2,
            "row 41: 16 field(s) where the header has 15",
            |s: &Scratch| s.edit_line("train.csv", 42, |l| format!("{l}, extra")),
        ),
        case(
            "CSV quote never closed",
            TRAIN,
            2,
            "a quote opened on line 42 is never closed",
            |s: &Scratch| s.edit_line("train.csv", 42, |l| format!("\"{l}")),
        ),
        case(
            "CSV blank line between rows",
            TRAIN,
            2,
            "a blank line (line 42) lies between records",
            |s: &Scratch| s.edit_line("train.csv", 42, |l| format!("\n{l}")),
        ),
        case(
            "CSV: quoted separators and doubled quotes inside quotes (accepted)",
            TRAIN,
            0,
            "data: train 2400 rows",
            |s: &Scratch| {
                s.edit_line("train.csv", 42, |l| {
                    l.replacen(" Private,", "\"Private, \"\"really\"\"\",", 1)
                })
            },
        ),
        case(
            "CSV with CRLF line endings (accepted)",
            TRAIN,
            0,
            "data: train 2400 rows",
            |s: &Scratch| {
                let text = std::fs::read_to_string(s.path("train.csv")).expect("read");
                s.write("train.csv", &text.replace('\n', "\r\n"));
            },
        ),
        case(
            "CSV with a UTF-8 byte-order mark (accepted)",
            TRAIN,
            0,
            "data: train 2400 rows",
            |s: &Scratch| {
                let text = std::fs::read_to_string(s.path("train.csv")).expect("read");
                s.write("train.csv", &format!("\u{feff}{text}"));
            },
        ),
        case(
            "CSV ending with a blank line, as UCI's adult.data does (accepted)",
            TRAIN,
            0,
            "data: train 2400 rows",
            |s: &Scratch| {
                let text = std::fs::read_to_string(s.path("train.csv")).expect("read");
                s.write("train.csv", &format!("{text}\n"));
            },
        ),
        case(
            "Truncated gzip",
            TRAIN,
            2,
            "train.csv.gz: cannot read",
            |s: &Scratch| {
                let text = std::fs::read(s.path("train.csv")).expect("read");
                let mut gz = flate2_like_gzip(&text);
                gz.truncate(gz.len() / 2);
                std::fs::write(s.path("train.csv.gz"), gz).expect("write");
                s.edit("pipeline.yaml", "path: train.csv", "path: train.csv.gz");
            },
        ),
        case(
            "A .gz file that is not gzip",
            TRAIN,
            2,
            "train.csv.gz",
            |s: &Scratch| {
                std::fs::write(s.path("train.csv.gz"), b"\x1f\x8bnot really gzip").expect("write");
                s.edit("pipeline.yaml", "path: train.csv", "path: train.csv.gz");
            },
        ),
        case(
            "Truncated Parquet",
            TRAIN,
            2,
            "train.parquet: cannot read",
            move |s: &Scratch| {
                let bytes = std::fs::read(&exotic).expect("parquet");
                std::fs::write(s.path("train.parquet"), &bytes[..bytes.len() / 2]).expect("write");
                s.edit(
                    "pipeline.yaml",
                    "path: train.csv\n    csv: { trim_whitespace: true, null_values: [\"?\"] }",
                    "path: train.parquet",
                );
            },
        ),
        case(
            "A Parquet file with malformed metadata (found by the fuzzer: polars' decoder panics on it)",
            TRAIN,
            2,
            "the file is malformed",
            |s: &Scratch| {
                let bytes =
                    std::fs::read(repo().join("tests/data/fuzz-parquet-thrift-bool.parquet"))
                        .expect("crash file");
                std::fs::write(s.path("train.parquet"), bytes).expect("write");
                s.edit(
                    "pipeline.yaml",
                    "path: train.csv\n    csv: { trim_whitespace: true, null_values: [\"?\"] }",
                    "path: train.parquet",
                );
            },
        ),
        case(
            "Label value outside the declared ones",
            TRAIN,
            2,
            "row 41: label value \"maybe\" is neither positive",
            |s: &Scratch| {
                s.edit_line("train.csv", 42, |l| {
                    l.replace("<=50K", "maybe").replace(">50K", "maybe")
                })
            },
        ),
        case(
            "validate checks the data as train would (a label value outside the declared ones)",
            VALIDATE,
            2,
            "row 41: label value \"maybe\" is neither positive",
            |s: &Scratch| {
                s.edit_line("train.csv", 42, |l| {
                    l.replace("<=50K", "maybe").replace(">50K", "maybe")
                })
            },
        ),
        case(
            "Funnel row that converted without clicking, under `inconsistent_rows: error`",
            TRAIN,
            2,
            "the row reached stage `conversion` without reaching `click`",
            |s: &Scratch| {
                s.edit("pipeline.yaml", "given_previous }", "reached }");
                s.write(
                    "pipeline.yaml",
                    &(std::fs::read_to_string(s.path("pipeline.yaml")).expect("read")
                        + "inconsistent_rows: error\n"),
                );
            },
        ),
        case(
            "Every row dropped as inconsistent: an empty split",
            TRAIN,
            2,
            "no usable rows",
            |s: &Scratch| {
                s.edit(
                    "pipeline.yaml",
                    "positive: [\">50K\", \">50K.\"], negative: [\"<=50K\", \"<=50K.\"] }",
                    "positive: [nobody], negative: [\">50K\", \">50K.\", \"<=50K\", \"<=50K.\"] }",
                );
                s.edit("pipeline.yaml", "positive: [Never-married], meaning: given_previous }", "positive: [Never-married, Married-civ-spouse, Divorced, Separated, Widowed, Married-spouse-absent, Married-AF-spouse], meaning: reached }");
            },
        ),
        case(
            "A stage with no positive rows in training (a warning)",
            TRAIN,
            0,
            "stage `conversion` has no positive rows",
            |s: &Scratch| {
                s.edit(
                    "pipeline.yaml",
                    "positive: [Never-married]",
                    "positive: [Never-ever]",
                );
            },
        ),
        case(
            "NaN in a numeric column under `missing: error`",
            TRAIN,
            2,
            "column `age`, row 41: non-finite value NaN",
            |s: &Scratch| {
                s.edit(
                    "pipeline.yaml",
                    "    - name: age\n",
                    "    - { name: age, missing: error }\n",
                );
                s.edit_line("train.csv", 42, |l| {
                    let (_, rest) = l.split_once(',').expect("fields");
                    format!("NaN,{rest}")
                })
            },
        ),
        case(
            "Inf in a numeric column under `missing: error`",
            TRAIN,
            2,
            "non-finite value inf",
            |s: &Scratch| {
                s.edit(
                    "pipeline.yaml",
                    "    - name: age\n",
                    "    - { name: age, missing: error }\n",
                );
                s.edit_line("train.csv", 42, |l| {
                    let (_, rest) = l.split_once(',').expect("fields");
                    format!("inf,{rest}")
                })
            },
        ),
        case(
            "A categorical feature with extreme cardinality (a warning)",
            TRAIN,
            0,
            "consider|hash_buckets",
            |s: &Scratch| {
                s.edit(
                    "pipeline.yaml",
                    "    - name: sex\n",
                    "    - name: sex\n    - name: fnlwgt\n",
                );
            },
        ),
        case(
            "A Parquet column of a type funnel does not read (decimal)",
            &["train", "exotic.yaml", "--out", "run"],
            2,
            "Parquet type (Decimal(10, 3))",
            move |s: &Scratch| {
                s.write("exotic.yaml", &format!("name: e\ndata:\n  train: {{ path: {} }}\nfeatures:\n  numeric: [{{ name: money }}]\nstages:\n  - {{ name: click, label: {{ column: y }} }}\n", repo().join("tests/data/exotic-types.parquet").display()));
            },
        ),
        case(
            "Training that diverges",
            TRAIN,
            2,
            "training diverged",
            edit(
                "  threads: 2",
                "  threads: 2\n  optimizer: { lr: 100 }\n  embedding_optimizer: { lr: 1000 }",
            ),
        ),
        case(
            "A run too big for the memory budget",
            TRAIN,
            2,
            "more than `train.memory_budget`",
            edit("  threads: 2", "  threads: 2\n  memory_budget: 1MiB"),
        ),
        case(
            "Unseen categories at predict time (a warning)",
            PREDICT,
            0,
            "have values unseen in training",
            |s: &Scratch| {
                trained(s);
                let text = std::fs::read_to_string(s.path("test.csv")).expect("read");
                s.write(
                    "test.csv",
                    &text
                        .replace("Private", "Privately")
                        .replace("Self-emp", "Own")
                        .replace("gov", "state"),
                );
            },
        ),
        case(
            "A missing column at predict time",
            PREDICT,
            2,
            "column `education`: column not found",
            |s: &Scratch| {
                trained(s);
                let text = std::fs::read_to_string(s.path("test.csv")).expect("read");
                s.write("test.csv", &text.replace("education,", "schooling,"));
            },
        ),
        case(
            "predict --out onto an existing file, without --force",
            PREDICT,
            2,
            "exists",
            |s: &Scratch| {
                trained(s);
                s.write("p.csv", "precious\n");
            },
        ),
        case(
            "export --out whose sidecar exists, without --force",
            &["export", "run", "--out", "model.onnx"],
            2,
            "exists",
            |s: &Scratch| {
                trained(s);
                s.write("model.onnx.json", "{}\n");
            },
        ),
        case(
            "export of a directory that holds no run",
            &["export", "nothing", "--out", "model.onnx"],
            2,
            "does not exist or is empty",
            |_: &Scratch| {},
        ),
        case(
            "predict --out onto its own input",
            &[
                "predict", "--run", "run", "--data", "test.csv", "--out", "test.csv", "--force",
            ],
            2,
            "is an input of this command",
            trained,
        ),
        case(
            "predict --out onto a symbolic link",
            PREDICT,
            2,
            "is a symbolic link",
            |s: &Scratch| {
                trained(s);
                std::os::unix::fs::symlink(s.path("test.csv"), s.path("p.csv")).expect("symlink");
            },
        ),
        case(
            "predict --out onto a device",
            &[
                "predict",
                "--run",
                "run",
                "--data",
                "test.csv",
                "--out",
                "/dev/null",
                "--force",
            ],
            2,
            "exists and is not a regular file",
            trained,
        ),
        case(
            "predict --out into a run directory",
            &[
                "predict",
                "--run",
                "run",
                "--data",
                "test.csv",
                "--out",
                "run/p.csv",
            ],
            2,
            "lies inside the run directory",
            trained,
        ),
        case(
            "A run directory whose pipeline was swapped",
            EVAL,
            2,
            "pipeline.yaml does not match the run's manifest",
            |s: &Scratch| {
                trained(s);
                let text = std::fs::read_to_string(s.path("run/pipeline.yaml")).expect("read");
                s.write("run/pipeline.yaml", &text.replace("epochs: 6", "epochs: 7"));
            },
        ),
        case(
            "A truncated weights file",
            EVAL,
            2,
            "weights.safetensors does not match the run's manifest",
            |s: &Scratch| {
                trained(s);
                let bytes = std::fs::read(s.path("run/weights.safetensors")).expect("read");
                std::fs::write(s.path("run/weights.safetensors"), &bytes[..bytes.len() / 2])
                    .expect("write");
            },
        ),
        case(
            "An unfinished run given to eval",
            EVAL,
            2,
            "continue it with `funnel train --resume run`",
            |s: &Scratch| s.stopped("run"),
        ),
        case(
            "A run directory that already exists",
            TRAIN,
            2,
            "already holds a finished run",
            trained,
        ),
        case(
            "train --out . beside the pipeline",
            &["train", "pipeline.yaml", "--out", "."],
            2,
            "already holds other files",
            |_: &Scratch| {},
        ),
        case(
            "An output folder that cannot be written",
            &["train", "pipeline.yaml", "--out", "/proc/funnel-run"],
            2,
            "/proc/funnel-run",
            |_: &Scratch| {},
        ),
        case(
            "Training data edited in place (same size and time) before a resume",
            &["train", "--resume", "run"],
            2,
            "cannot resume: the data changed since the run started",
            |s: &Scratch| {
                s.stopped("run");
                let path = s.path("train.csv");
                let modified = std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .expect("mtime");
                let text = std::fs::read_to_string(&path).expect("read");
                // Two rows' labels swap: the same bytes in all, other data.
                let text = text
                    .replacen(" <=50K\n", " >5XXK\n", 1)
                    .replacen(" >50K\n", " <=50K\n", 1)
                    .replacen(" >5XXK\n", " >50K\n", 1);
                s.write("train.csv", &text);
                std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(modified))
                    .expect("mtime");
            },
        ),
        case(
            "pipeline.yaml edited in an unfinished run",
            &["train", "--resume", "run"],
            2,
            "pipeline.yaml was edited after the run started",
            |s: &Scratch| {
                s.stopped("run");
                s.edit("run/pipeline.yaml", "epochs: 6", "epochs: 5");
            },
        ),
        case(
            "A NaN in the weights of a finished run (its manifest updated to match)",
            EVAL,
            2,
            "holds NaN",
            |s: &Scratch| {
                trained(s);
                let path = s.path("run/weights.safetensors");
                let mut bytes = std::fs::read(&path).expect("read");
                let len = u64::from_le_bytes(bytes[..8].try_into().expect("8")) as usize;
                let at = bytes.len() - 4;
                bytes[at..].copy_from_slice(&f32::NAN.to_le_bytes());
                assert!(at > 8 + len);
                std::fs::write(&path, &bytes).expect("write");
                let manifest = std::fs::read_to_string(s.path("run/manifest.json")).expect("read");
                let mut m: serde_json::Value = serde_json::from_str(&manifest).expect("json");
                m["weights_sha256"] = funnel::fsutil::sha256_bytes(&bytes).into();
                s.write("run/manifest.json", &m.to_string());
            },
        ),
        case(
            "An unscaled numeric value far outside a network's range",
            VALIDATE,
            2,
            "is far outside what it can use",
            |s: &Scratch| {
                s.edit(
                    "pipeline.yaml",
                    "    - name: age\n",
                    "    - name: age\n      transform: none\n",
                );
                s.edit_line("train.csv", 5, |l| {
                    format!("1e38{}", &l[l.find(',').expect(",")..])
                });
            },
        ),
        case(
            "A byte that is not UTF-8 (a Latin-1 file)",
            VALIDATE,
            2,
            "is not UTF-8 text",
            |s: &Scratch| {
                let mut bytes = std::fs::read(s.path("train.csv")).expect("read");
                let at = bytes.iter().position(|&b| b == b'\n').expect("header") + 5;
                bytes[at] = 0xE9;
                std::fs::write(s.path("train.csv"), bytes).expect("write");
            },
        ),
        case(
            "A header that names a column twice",
            VALIDATE,
            2,
            "the header names this column more than once",
            |s: &Scratch| s.edit_line("train.csv", 1, |l| l.replacen("fnlwgt", "age", 1)),
        ),
        case(
            "An unknown key given with --set",
            &["validate", "pipeline.yaml", "--set", "train.epoch=3"],
            2,
            "--set train.epoch=3: `train.epoch`: unknown field",
            |_: &Scratch| {},
        ),
        case(
            "A shuffle buffer smaller than one block",
            &[
                "validate",
                "pipeline.yaml",
                "--set",
                "train.shuffle={block_rows: 4096, buffer_rows: 1000}",
            ],
            2,
            "buffer_rows (1000) must hold at least one block of 4096 rows",
            |_: &Scratch| {},
        ),
        case(
            "compare --out whose compare.md is a link",
            &["compare", "pipeline.yaml", "--seeds", "1", "--out", "cmp"],
            2,
            "is a symbolic link",
            |s: &Scratch| {
                std::fs::create_dir(s.path("cmp")).expect("dir");
                std::os::unix::fs::symlink(s.path("pipeline.yaml"), s.path("cmp/compare.md"))
                    .expect("link");
            },
        ),
        case(
            "report on an unfinished run",
            &["report", "run"],
            2,
            "finish it with `funnel train --resume run`",
            |s: &Scratch| s.stopped("run"),
        ),
        case(
            "eval --data of a file that does not exist",
            &["eval", "--run", "run", "--data", "nosuch.csv"],
            2,
            "the path is relative to the current directory",
            trained,
        ),
        case(
            "init of a file with only the stages' labels",
            &[
                "init",
                "labels.csv",
                "--stages",
                "click,buy",
                "--out",
                "p.yaml",
            ],
            2,
            "no column is left to be a feature",
            |s: &Scratch| {
                s.write("labels.csv", "click,buy\n1,0\n0,0\n1,1\n");
            },
        ),
    ]
}

/// Gzip-compress `bytes` with the system's `gzip` (what users have); the test needs no crate.
fn flate2_like_gzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(bytes)
        .expect("write");
    child.wait_with_output().expect("gzip").stdout
}

/// What a user sees: stderr with the scratch folder and the repository written as `<dir>` and
/// `<repo>`, timing lines and per-epoch progress left out.
fn shown(s: &Scratch, err: &str) -> String {
    let dir = s.dir.path().display().to_string();
    let repo = repo().display().to_string();
    err.lines()
        .filter(|l| !l.starts_with("epoch ") && !l.starts_with("timing:"))
        .map(|l| l.replace(&dir, "<dir>").replace(&repo, "<repo>"))
        .map(|l| match l.starts_with("error: training diverged") {
            // Loss values depend on the CPU's float kernels: shown as <n>.
            true => numbers_hidden(&l),
            false => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn catalogue_of_bad_input_matches_docs_errors_md() {
    let mut doc = String::from(
        "# Bad input, catalogued\n\nGenerated by `tests/cli/catalogue.rs` from real runs of the CLI (`FUNNEL_BLESS=1 cargo test --release catalogue` rewrites it): each case's command, exit code and the message it prints on stderr (progress lines left out; `<dir>` is the folder the command ran in). Every case starts from the two-stage adult slice pipeline of the integration tests. Exit code 2 is anything the user can fix; 0 means the input is accepted, sometimes with a warning; 130 and 143 are interruptions (see the README). No input reaches a panic.\n",
    );
    let all = cases();
    assert!(all.len() >= 30, "{} cases", all.len());
    let mut failures = Vec::new();
    for (i, c) in all.iter().enumerate() {
        let s = Scratch::new();
        s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
        (c.setup)(&s);
        let o = s.run(c.args);
        let err = stderr(&o);
        let text = shown(&s, &err);
        if err.contains("panicked")
            || o.status.code() != Some(c.code)
            || !c.expect.split('|').any(|e| text.contains(e))
        {
            failures.push(format!(
                "{}: exit {:?} (want {}), expected {:?} in\n{text}",
                c.title,
                o.status.code(),
                c.code,
                c.expect
            ));
        }
        let shown_lines: Vec<&str> = text
            .lines()
            .filter(|l| {
                c.code != 0
                    || l.starts_with("warning")
                    || l.starts_with("  hint")
                    || l.starts_with("data:")
            })
            .collect();
        doc.push_str(&format!(
            "\n## {}. {}\n\n`funnel {}` → exit {}\n\n```\n{}\n```\n",
            i + 1,
            c.title,
            c.args.join(" "),
            c.code,
            shown_lines.join("\n")
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let path = repo().join("docs/errors.md");
    if std::env::var_os("FUNNEL_BLESS").is_some() {
        std::fs::write(&path, &doc).expect("write docs/errors.md");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == doc,
        "docs/errors.md is not what the CLI prints; rerun with FUNNEL_BLESS=1 after checking the change:\n{}",
        first_difference(&have, &doc)
    );
}

/// `line` with every number (digits, with a point or an exponent) written as `<n>`.
fn numbers_hidden(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars
                .peek()
                .is_some_and(|n| n.is_ascii_digit() || *n == '.' || *n == 'e' || *n == '-')
            {
                chars.next();
            }
            out.push_str("<n>");
        } else {
            out.push(c);
        }
    }
    out
}

fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}:\n  docs: {x}\n  runs: {y}", i + 1);
        }
    }
    format!(
        "lengths differ: {} vs {} lines",
        a.lines().count(),
        b.lines().count()
    )
}
