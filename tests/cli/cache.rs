//! The encoded-data cache through the CLI: `funnel encode` builds it, `train` and `compare`
//! read it while the data and the encoding settings stay the same, and a stale, corrupt or
//! half-built entry is never used.

use crate::*;

const SPEC: &str = "name: c\nseed: 4\nstages:\n  - { name: click, rate: 0.2 }\n  - { name: buy, rate: 0.3 }\ncategorical:\n  - { name: user, vocab: 100, zipf: 0.5, effects: { click: 0.8, buy: 0.5 } }\n  - { name: item, vocab: 300, zipf: 0.5, effects: { click: 0.5 } }\nnumeric:\n  - { name: price, normal: { mean: 3, std: 1 }, effects: { buy: 0.5 } }\nhistories:\n  - { name: seen, of: item, length: [0, 8], related: 0.2, groups: 300, per_match: { click: 0.5 } }\n";

/// A pipeline of every kind of encoded column: ids, a numeric, a history's tokens, labels and
/// truth; validation and test carved from the training file with the seed.
const PIPELINE: &str = "name: cached\ndata:\n  train: train.csv\n  valid: { split_from: train, fraction: 0.2 }\n  test: { split_from: train, fraction: 0.2 }\nfeatures:\n  embedding_dim: 4\n  categorical: [user, item]\n  numeric: [price]\n  sequences:\n    - { name: seen, target: item, max_len: 6 }\nstages:\n  - { name: click, label: click, truth: true_click, tower: { hidden: [8] } }\n  - { name: buy, label: buy, truth: true_buy, tower: { hidden: [8] } }\ntrain: { epochs: 2, batch_size: 256, threads: 2 }\n";

fn entries(s: &Scratch) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(s.path(".funnel-cache"))
        .expect("cache folder")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

#[test]
fn encoded_cache_is_reused_and_never_trusted_when_stale_or_corrupt() {
    let s = Scratch::new();
    s.write("spec.yaml", SPEC);
    s.generate("spec.yaml", 6000, None, "train.csv");
    s.write("p.yaml", PIPELINE);

    // Without the cache folder nothing is cached.
    let o = s.run(&["train", "p.yaml", "--out", "plain"]);
    ok(&o);
    assert!(!stderr(&o).contains("cache"), "{}", stderr(&o));
    assert!(!s.path(".funnel-cache").exists());

    // `encode` builds the entry; `train` reads it, to the same metrics and weights.
    let e = s.run(&["encode", "p.yaml"]);
    ok(&e);
    assert!(
        stderr(&e).contains("data: encoded and cached in"),
        "{}",
        stderr(&e)
    );
    assert!(
        stdout(&e).contains("encoded train 3600 rows, valid 1200, test 1200"),
        "{}",
        stdout(&e)
    );
    let o = s.run(&["train", "p.yaml", "--out", "cached"]);
    ok(&o);
    assert!(
        stderr(&o).contains("data: read from the encoded cache"),
        "{}",
        stderr(&o)
    );
    assert_eq!(s.metrics("cached")["test"], s.metrics("plain")["test"]);
    assert_eq!(s.weights("cached"), s.weights("plain"));
    // The run records the same data (the files' full SHA-256, kept in the entry) and encoders.
    let manifest = |run: &str| -> serde_json::Value {
        let text =
            std::fs::read_to_string(s.path(&format!("{run}/manifest.json"))).expect("manifest");
        serde_json::from_str::<serde_json::Value>(&text).expect("json")["data"].clone()
    };
    assert_eq!(manifest("cached"), manifest("plain"));
    let encoders =
        |run: &str| std::fs::read(s.path(&format!("{run}/encoders.json"))).expect("encoders");
    assert_eq!(encoders("cached"), encoders("plain"));
    let [entry] = entries(&s).try_into().expect("one entry");

    // Another seed carves other splits: an entry of its own beside the first.
    let o = s.run(&["train", "p.yaml", "--set", "train.seed=7", "--out", "seed7"]);
    ok(&o);
    assert!(
        stderr(&o).contains("data: encoded and cached in"),
        "{}",
        stderr(&o)
    );
    assert_eq!(entries(&s).len(), 2);
    // A tower's width is not part of the encoding: the entry is read.
    let o = s.run(&[
        "train",
        "p.yaml",
        "--set",
        "stages[0].tower.hidden=[4]",
        "--out",
        "narrow",
    ]);
    ok(&o);
    assert!(
        stderr(&o).contains("read from the encoded cache"),
        "{}",
        stderr(&o)
    );

    // A damaged array: reported, encoded again, the entry rewritten; the same metrics.
    let array = entry.join("train.cat.0.u32");
    let mut bytes = std::fs::read(&array).expect("array");
    bytes[0] ^= 1;
    std::fs::write(&array, bytes).expect("write");
    let o = s.run(&["train", "p.yaml", "--out", "repaired"]);
    ok(&o);
    assert!(
        stderr(&o)
            .contains("cannot be used (`train.cat.0.u32` does not match its hash); encoding again")
            && stderr(&o).contains("data: encoded and cached in"),
        "{}",
        stderr(&o)
    );
    assert_eq!(s.metrics("repaired")["test"], s.metrics("plain")["test"]);
    ok(&s.run(&["train", "p.yaml", "--out", "again"]));
    assert_eq!(s.metrics("again")["test"], s.metrics("plain")["test"]);

    // An entry without its header (a build that died before renaming leaves only a temporary
    // folder; this is worse) is not used either.
    std::fs::remove_file(entry.join("header.json")).expect("remove");
    std::fs::create_dir(s.path(".funnel-cache/0123456789abcdef.tmp-1")).expect("tmp");
    let o = s.run(&["train", "p.yaml", "--out", "headless"]);
    ok(&o);
    assert!(stderr(&o).contains("`header.json`"), "{}", stderr(&o));
    assert_eq!(s.metrics("headless")["test"], s.metrics("plain")["test"]);

    // New data in the file: the entries of the old data are stale, never read, and removed.
    std::fs::remove_file(s.path("train.csv")).expect("remove");
    s.generate("spec.yaml", 6000, Some(11), "train.csv");
    let o = s.run(&["train", "p.yaml", "--out", "new-data"]);
    ok(&o);
    assert!(
        stderr(&o).contains("data: encoded and cached in"),
        "{}",
        stderr(&o)
    );
    assert_ne!(s.metrics("new-data")["test"], s.metrics("plain")["test"]);
    let left: Vec<_> = entries(&s)
        .into_iter()
        .filter(|e| !e.to_string_lossy().contains(".tmp-"))
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");

    // An entry that cannot be written (here a file stands where its folder goes) costs the
    // run nothing but the cache: it trains from the files, and says so.
    std::fs::remove_dir_all(&left[0]).expect("remove");
    std::fs::write(&left[0], "not a folder").expect("write");
    let o = s.run(&["train", "p.yaml", "--out", "unwritable"]);
    ok(&o);
    assert!(
        stderr(&o).contains("warning: the encoded cache was not written (")
            && stderr(&o).contains("the run goes on from the files"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        s.metrics("unwritable")["test"],
        s.metrics("new-data")["test"]
    );
    std::fs::remove_file(&left[0]).expect("remove");

    // compare reads the entries of its seeds (encoded beforehand) and says so.
    for seed in ["train.seed=1", "train.seed=2"] {
        ok(&s.run(&["encode", "p.yaml", "--set", seed]));
    }
    let o = s.run(&["compare", "p.yaml", "--seeds", "2", "--out", "cmp"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("read from the encoded cache"), "{err}");
}

/// A block-shuffled run whose data is cached trains from the entry's files a window at a time
/// and scores its validation and test rows from them, and says so: the same metrics and weights
/// as the same run from memory (no cache folder), and as that run stopped mid-epoch and resumed
/// (from the same cache). A full shuffle is another order: other weights.
#[test]
fn block_shuffled_runs_train_from_the_cache_as_from_memory() {
    let s = Scratch::new();
    s.write("spec.yaml", SPEC);
    s.generate("spec.yaml", 6000, None, "train.csv");
    s.write("p.yaml", PIPELINE);
    // 3600 training rows: blocks of 100, windows of 7 blocks; batches of 256 run across them.
    let blocks = "train.shuffle={block_rows: 100, buffer_rows: 750}";
    let train = |out: &str, more: &[&str]| {
        let mut args = vec!["train", "p.yaml", "--set", blocks, "--out", out];
        args.extend_from_slice(more);
        s.run(&args)
    };
    let o = train("memory", &[]);
    ok(&o);
    assert!(!stderr(&o).contains("cache"), "{}", stderr(&o));
    ok(&s.run(&["encode", "p.yaml"]));
    let o = train("disk", &[]);
    ok(&o);
    assert!(
        stderr(&o).contains(
            "training rows read from the cache 700 at a time (`train.shuffle`: windows of 7 blocks of 100 rows), validation and test rows 262144 at a time"
        ),
        "{}",
        stderr(&o)
    );
    // Validation (every epoch) and test scored from disk, truth included: the same metrics.
    assert_eq!(s.metrics("disk")["test"], s.metrics("memory")["test"]);
    assert_eq!(s.metrics("disk")["history"], s.metrics("memory")["history"]);
    assert_eq!(s.weights("disk"), s.weights("memory"));
    let o = train("stopped", &["--stop-at-step", "20"]);
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    // The resumed run reads the cache the run read (its pipeline file now lies in the run
    // folder, beside no cache), from another working folder too: never the files whole.
    let o = funnel(&s.path("stopped"), &["train", "--resume", "."]);
    ok(&o);
    assert!(
        stderr(&o).contains("data: read from the encoded cache")
            && stderr(&o).contains("training rows read from the cache 700 at a time"),
        "{}",
        stderr(&o)
    );
    assert_eq!(s.weights("stopped"), s.weights("memory"));
    ok(&s.run(&["train", "p.yaml", "--out", "full"]));
    assert_ne!(s.weights("full"), s.weights("memory"));
}

/// A Parquet training file is encoded into the cache a range of row groups at a time, and says
/// so; runs from that entry, loaded or read from disk a window at a time, train to the metrics
/// and weights of the same run from the file without a cache, group AUC included. The history
/// is a multi-valued feature here (streamed sequences are checked against the in-memory entry
/// in `data::stream`'s unit tests).
#[test]
fn a_parquet_file_is_encoded_streamed_to_the_runs_of_the_file() {
    let s = Scratch::new();
    s.write("spec.yaml", SPEC);
    s.generate("spec.yaml", 5000, None, "train.parquet");
    let pipeline = PIPELINE.replace("train.csv", "train.parquet").replace(
        "  sequences:\n    - { name: seen, target: item, max_len: 6 }\n",
        "  multi_valued:\n    - { name: seen, max_len: 6, pooling: mean }\n",
    );
    let pipeline = pipeline.replace("features:\n", "  group_column: user\nfeatures:\n");
    s.write("p.yaml", &pipeline);
    std::fs::create_dir(s.path("plain")).expect("folder");
    s.write(
        "plain/p.yaml",
        &pipeline.replace("train.parquet", "../train.parquet"),
    );
    let blocks = "train.shuffle={block_rows: 100, buffer_rows: 500}";
    for (run, set) in [("full", "train.seed=42"), ("blocks", blocks)] {
        ok(&s.run(&[
            "train",
            "plain/p.yaml",
            "--set",
            set,
            "--out",
            &format!("plain-{run}"),
        ]));
    }
    let e = s.run(&["encode", "p.yaml"]);
    ok(&e);
    assert!(
        stderr(&e).contains("data: encoded a range of row groups at a time"),
        "{}",
        stderr(&e)
    );
    for (run, set) in [("full", "train.seed=42"), ("blocks", blocks)] {
        let o = s.run(&["train", "p.yaml", "--set", set, "--out", run]);
        ok(&o);
        assert!(
            stderr(&o).contains("data: read from the encoded cache"),
            "{}",
            stderr(&o)
        );
        assert_eq!(
            s.metrics(run)["test"],
            s.metrics(&format!("plain-{run}"))["test"]
        );
        assert!(s.metrics(run)["test"][1]["cumulative"]["gauc"].is_f64());
        assert_eq!(s.weights(run), s.weights(&format!("plain-{run}")));
    }
}
