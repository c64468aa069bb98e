//! What a run and a cache trust: resume and compare's cache keyed by the data's content (an
//! edit that keeps size and modification time is still seen), compare's outputs written under
//! the rules of every output, and weights with a NaN or an infinity refused at every load.

use std::os::unix::fs::symlink;

use crate::*;

/// Swap the click labels (column `Y`, `>50K` and `<=50K`) of the first two data rows that
/// differ in it: other labels, the same bytes in all (the two labels' lengths swap places),
/// the same encoders (Y is not a feature); the modification time is put back.
fn swap_labels_in_place(path: &Path) {
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .expect("mtime");
    let text = std::fs::read_to_string(path).expect("csv");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let high = lines
        .iter()
        .position(|l| l.ends_with(" >50K"))
        .expect(">50K");
    let low = lines
        .iter()
        .position(|l| l.ends_with(" <=50K"))
        .expect("<=50K");
    lines[high] = lines[high].replace(" >50K", " <=50K");
    lines[low] = lines[low].replace(" <=50K", " >50K");
    let edited = lines.join("\n") + "\n";
    assert_eq!(edited.len(), text.len());
    std::fs::write(path, edited).expect("write");
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(modified))
        .expect("set mtime");
}

/// `train --resume` refuses data edited in place since the run started, naming the file and
/// both hashes; the same data restored resumes.
#[test]
fn resume_refuses_data_edited_in_place() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    s.stopped("r");
    let original = std::fs::read(s.path("train.csv")).expect("csv");
    swap_labels_in_place(&s.path("train.csv"));
    let err = s.refused(&["train", "--resume", "r"]);
    assert!(
        err.contains("cannot resume: the data changed since the run started")
            && err.contains("train.csv (train split) changed: it was")
            && err.contains("restore the data the run was started on"),
        "{err}"
    );
    std::fs::write(s.path("train.csv"), original).expect("restore");
    ok(&s.run(&["train", "--resume", "r"]));
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.path("r/manifest.json")).expect("manifest"),
    )
    .expect("json");
    assert_eq!(manifest["data"][0]["split"], "train");
    assert_eq!(
        manifest["data"][0]["sha256"].as_str(),
        Some(
            funnel::fsutil::sha256_file(&s.path("train.csv"))
                .expect("hash")
                .as_str()
        )
    );
}

/// compare's cache is keyed by content: after an in-place edit that keeps size and
/// modification time, every run is trained again, and the table is the new data's.
#[test]
fn compare_retrains_after_an_edit_in_place() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    s.edit("pipeline.yaml", "epochs: 6", "epochs: 2");
    let args = ["compare", "pipeline.yaml", "--seeds", "1", "--out", "cmp"];
    ok(&s.run(&args));
    let again = s.run(&args);
    ok(&again);
    assert!(stderr(&again).contains("finished before, read back"));
    swap_labels_in_place(&s.path("train.csv"));
    let edited = s.run(&args);
    ok(&edited);
    assert!(
        !stderr(&edited).contains("read back"),
        "{}",
        stderr(&edited)
    );
    let runs = std::fs::read_dir(s.path("cmp/runs")).expect("runs").count();
    assert_eq!(runs, 2, "a new run beside the old data's");
}

/// compare's tables follow the rules of every output: never through a link, never over a
/// FIFO or a folder, never over files an earlier compare did not write (without --force), and
/// all checked before any run is trained. An earlier compare's tables are replaced.
#[test]
fn compare_outputs_are_guarded() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    s.edit("pipeline.yaml", "epochs: 6", "epochs: 1");
    let args = |out: &'static str| ["compare", "pipeline.yaml", "--seeds", "1", "--out", out];
    std::fs::create_dir(s.path("a")).expect("dir");
    s.write("precious.md", "keep me");
    symlink(s.path("precious.md"), s.path("a/compare.md")).expect("link");
    let err = s.refused(&args("a"));
    assert!(err.contains("compare.md: is a symbolic link"), "{err}");
    assert!(!s.path("a/runs").exists(), "refused before training");
    assert_eq!(
        std::fs::read_to_string(s.path("precious.md")).expect("kept"),
        "keep me"
    );

    std::fs::create_dir(s.path("b")).expect("dir");
    let fifo = std::process::Command::new("mkfifo")
        .arg(s.path("b/compare.csv"))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());
    let err = s.refused(&args("b"));
    assert!(
        err.contains("compare.csv: exists and is not a regular file"),
        "{err}"
    );

    std::fs::create_dir(s.path("c")).expect("dir");
    s.write("c/compare.md", "my notes");
    let err = s.refused(&args("c"));
    assert!(
        err.contains("compare.md: exists") && err.contains("--force"),
        "{err}"
    );
    ok(&s.run(&[
        "compare",
        "pipeline.yaml",
        "--seeds",
        "1",
        "--out",
        "c",
        "--force",
    ]));
    // Now the folder holds a compare's tables: a repeat replaces them without --force.
    ok(&s.run(&args("c")));
    s.write("file", "x");
    let err = s.refused(&args("file"));
    assert!(err.contains("exists and is not a folder"), "{err}");
}

/// Overwrite the first value of `key` in a safetensors file with `value`.
fn poison(path: &Path, key: &str, value: f32) {
    let mut bytes = std::fs::read(path).expect("weights");
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).expect("json");
    let at = 8 + len + header[key]["data_offsets"][0].as_u64().expect("offset") as usize;
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    std::fs::write(path, bytes).expect("write");
}

/// A NaN in tensor `key` of a finished run's weights, its manifest updated to match (as a
/// careless repair would leave it).
fn poison_finished(run: &Path, key: &str) {
    let weights = run.join("weights.safetensors");
    poison(&weights, key, f32::NAN);
    let manifest = run.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    let mut m: serde_json::Value = serde_json::from_str(&text).expect("json");
    m["weights_sha256"] = funnel::fsutil::sha256_file(&weights).expect("hash").into();
    std::fs::write(&manifest, m.to_string()).expect("write");
}

/// One NaN (or infinity) in a weights or checkpoint file is refused, naming the tensor and the
/// run, by eval, predict, a warm start, report (as by compare's cache, which reads a run the
/// same way) and a resume, even when the manifest was updated to match (as a careless repair
/// would).
#[test]
fn non_finite_weights_are_refused_at_every_load() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "done"]));
    let key = "towers.click.1.bias";
    assert!(
        s.weights_header("done").contains(key),
        "{}",
        s.weights_header("done")
    );
    poison_finished(&s.path("done"), key);
    let named = |err: &str| {
        assert!(
            err.contains("run directory done")
                && err.contains(&format!("weights.safetensors: tensor `{key}` holds NaN")),
            "{err}"
        );
    };
    named(&s.refused(&["eval", "--run", "done", "--data", "test.csv"]));
    named(&s.refused(&[
        "predict", "--run", "done", "--data", "test.csv", "--out", "p.csv",
    ]));
    assert!(!s.path("p.csv").exists());
    named(&s.refused(&[
        "train",
        "pipeline.yaml",
        "--out",
        "warm",
        "--set",
        "train.warm_start=done",
    ]));
    // report reads the run's numbers without its model, and so does compare's cache.
    named(&s.refused(&["report", "done", "--out", "r.html"]));

    s.stopped("half");
    poison(
        &s.path("half/checkpoint.safetensors"),
        &format!("params.{key}"),
        f32::INFINITY,
    );
    let err = s.refused(&["train", "--resume", "half"]);
    assert!(
        err.contains("run directory half")
            && err.contains(&format!(
                "checkpoint.safetensors: tensor `params.{key}` holds inf"
            )),
        "{err}"
    );
}

/// compare reads a cached run without loading its model: a NaN put into its weights (the
/// manifest updated to match) is refused there too, naming the tensor and the run.
#[test]
fn compare_refuses_a_cached_run_with_a_nan_weight() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    s.edit("pipeline.yaml", "epochs: 6", "epochs: 1");
    let args = ["compare", "pipeline.yaml", "--seeds", "1", "--out", "cmp"];
    ok(&s.run(&args));
    let run = std::fs::read_dir(s.path("cmp/runs"))
        .expect("runs")
        .flatten()
        .next()
        .expect("a run")
        .path();
    poison_finished(&run, "towers.click.1.bias");
    let err = s.refused(&args);
    assert!(
        err.contains("weights.safetensors: tensor `towers.click.1.bias` holds NaN"),
        "{err}"
    );
}
