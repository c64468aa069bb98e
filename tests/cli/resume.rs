//! Checkpoints and resume: an interrupted run, resumed, ends byte-identical to an uninterrupted
//! one (weights, and metrics.json apart from timing); signals and a kill during a checkpoint
//! write lose nothing; run directories are locked and never overwritten.

use crate::*;

/// The adult slice with dropout, early stopping (its counters cross the interruption) and, in
/// `model`, whatever else the checkpoint must carry. 2400 training rows in batches of 128: 19
/// steps per epoch.
fn pipeline(s: &Scratch, model: &str) {
    s.adult_model(model);
    s.edit(
        "pipeline.yaml",
        "epochs: 6",
        "epochs: 4\n  early_stopping: { monitor: conversion.cumulative.auc, patience: 3 }",
    );
    s.edit(
        "pipeline.yaml",
        "tower: { hidden: [16] }",
        "tower: { hidden: [16], dropout: 0.2 }",
    );
}

const STEPS_PER_EPOCH: usize = 19;

/// metrics.json without its timing block.
fn metrics(s: &Scratch, run: &str) -> serde_json::Value {
    let mut m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.path(run).join("metrics.json")).expect("metrics"),
    )
    .expect("json");
    m.as_object_mut().expect("object").remove("timing");
    m
}

fn weights(s: &Scratch, run: &str) -> Vec<u8> {
    std::fs::read(s.path(run).join("weights.safetensors")).expect("weights")
}

/// Stopped after a step in the middle of an epoch and exactly at an epoch's end, then resumed:
/// the same bytes and metrics as one uninterrupted run. For ESMM on the separable step, and
/// for GradNorm and lazy Adam over an MMoE bottom (their state is in the checkpoint too).
#[test]
fn resumed_runs_equal_uninterrupted_runs() {
    for model in [
        "model: { preset: esmm }",
        "model: { loss_weighting: gradnorm, bottom: { kind: mmoe, experts: 2, hidden: [8] } }",
    ] {
        let s = Scratch::new();
        pipeline(&s, model);
        if model.contains("gradnorm") {
            s.edit(
                "pipeline.yaml",
                "  threads: 2\n",
                "  threads: 2\n  embedding_optimizer: { kind: lazy_adam, lr: 0.01 }\n",
            );
        }
        ok(&s.run(&["train", "pipeline.yaml", "--out", "whole"]));
        for (run, at) in [("mid", 7), ("boundary", 2 * STEPS_PER_EPOCH)] {
            let o = s.run(&[
                "train",
                "pipeline.yaml",
                "--out",
                run,
                "--stop-at-step",
                &at.to_string(),
            ]);
            assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
            let err = stderr(&o);
            assert!(
                err.contains(&format!("continue with: funnel train --resume {run}")),
                "{err}"
            );
            assert!(!s.path(run).join("manifest.json").exists());
            // An unfinished run is refused by eval, with the way to continue it.
            let refused = s.refused(&["eval", "--run", run, "--data", "test.csv"]);
            assert!(refused.contains("funnel train --resume"), "{refused}");
            let o = s.run(&["train", "--resume", run]);
            ok(&o);
            assert!(stderr(&o).contains("resuming"), "{}", stderr(&o));
            assert!(weights(&s, run) == weights(&s, "whole"), "{model}: {run}");
            assert_eq!(metrics(&s, run), metrics(&s, "whole"), "{model}: {run}");
            assert!(!s.path(run).join("checkpoint.safetensors").exists());
        }
    }
}

/// SIGTERM and SIGINT finish the step, write a checkpoint, say how to resume and exit 143 or
/// 130; SIGKILL in the middle of a checkpoint write leaves the previous checkpoint, its
/// temporary file and a stale lock, and the run resumes past all three. Each resumed run equals
/// the uninterrupted one.
#[test]
fn signals_and_a_kill_during_a_checkpoint_write_lose_nothing() {
    let s = Scratch::new();
    pipeline(&s, "model: { preset: esmm }");
    s.edit(
        "pipeline.yaml",
        "  threads: 2\n",
        "  threads: 2\n  checkpoint_every_steps: 1\n",
    );
    ok(&s.run(&["train", "pipeline.yaml", "--out", "whole"]));
    for (run, name, code) in [("term", "TERM", 143), ("int", "INT", 130)] {
        let child = slow_child(&s, run, 50);
        wait_for("a first checkpoint", || {
            s.path(run).join("checkpoint.safetensors").exists()
        });
        signal(&child, name);
        let o = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(code), "{err}");
        assert!(err.contains(&format!("interrupted by SIG{name}")), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        ok(&s.run(&["train", "--resume", run]));
        assert!(weights(&s, run) == weights(&s, "whole"), "{run}");
        assert_eq!(metrics(&s, run), metrics(&s, "whole"), "{run}");
    }

    let mut child = slow_child(&s, "kill", 300);
    wait_for("a second checkpoint write", || {
        s.path("kill").join("checkpoint.safetensors").exists() && checkpoint_in_progress(&s, "kill")
    });
    signal(&child, "KILL");
    child.wait().expect("wait");
    assert!(
        checkpoint_in_progress(&s, "kill"),
        "the kill came after the rename"
    );
    assert!(
        s.path("kill").join(".lock").exists(),
        "a killed writer leaves its lock"
    );
    ok(&s.run(&["train", "--resume", "kill"]));
    assert!(!checkpoint_in_progress(&s, "kill"));
    assert!(!s.path("kill").join(".lock").exists());
    assert!(weights(&s, "kill") == weights(&s, "whole"));
    assert_eq!(metrics(&s, "kill"), metrics(&s, "whole"));
}

/// A run directory is new or empty: a finished run, an unfinished one (pointed to --resume),
/// or other files (`--out .` beside the pipeline) are refused, as are resuming a finished run
/// or a folder without a checkpoint, and writing a run that another live process holds.
#[test]
fn run_directories_are_never_overwritten_and_are_locked() {
    let s = Scratch::new();
    pipeline(&s, "model: { preset: esmm }");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "done"]));
    let err = s.refused(&["train", "pipeline.yaml", "--out", "done"]);
    assert!(err.contains("already holds a finished run"), "{err}");
    let err = s.refused(&["train", "pipeline.yaml", "--out", "."]);
    assert!(err.contains("already holds other files"), "{err}");
    let before = std::fs::read_to_string(s.path("pipeline.yaml")).expect("pipeline");
    assert!(before.contains("name: slice"));
    let err = s.refused(&["train", "--resume", "done"]);
    assert!(err.contains("the run is finished"), "{err}");
    // A finished run that lost its manifest is not a run stopped before its first checkpoint:
    // its weights and metrics are never deleted to start it over.
    std::fs::create_dir(s.path("copy")).expect("dir");
    for e in std::fs::read_dir(s.path("done")).expect("done").flatten() {
        if e.path().is_file() && e.file_name() != "manifest.json" {
            std::fs::copy(e.path(), s.path("copy").join(e.file_name())).expect("copy");
        }
    }
    let err = s.refused(&["train", "pipeline.yaml", "--out", "copy"]);
    assert!(err.contains("already holds other files"), "{err}");
    assert!(s.path("copy/weights.safetensors").exists() && s.path("copy/metrics.json").exists());
    let err = s.refused(&["train", "--resume", "."]);
    assert!(err.contains("holds no run to resume"), "{err}");

    s.stopped("half");
    let err = s.refused(&["train", "pipeline.yaml", "--out", "half"]);
    assert!(
        err.contains("already holds an unfinished run") && err.contains("--resume half"),
        "{err}"
    );
    // A lock held by a live process (this test, with its own id in the file) refuses the
    // resume; a lock file nobody holds (a killed writer's, even with a live process's id in
    // it, as after the id was reused) does not.
    let lock = std::fs::File::create(s.path("half/.lock")).expect("lock");
    std::io::Write::write_all(&mut &lock, format!("{}\n", std::process::id()).as_bytes())
        .expect("pid");
    lock.try_lock().expect("flock");
    let err = s.refused(&["train", "--resume", "half"]);
    assert!(
        err.contains(&format!(
            "is being trained by another funnel process (pid {})",
            std::process::id()
        )),
        "{err}"
    );
    drop(lock);
    assert!(
        s.path("half/.lock").exists(),
        "the file stays; nobody holds it"
    );
    ok(&s.run(&["train", "--resume", "half"]));
    assert!(!s.path("half/.lock").exists());
}

/// Each state a run directory can be in, given to each command that reads runs, is named as
/// such with what to do: an unfinished run to `report` (resume it), a pipeline.yaml edited
/// after the run started to `train --resume` (before any data is read), a missing folder or
/// one that holds no run to `eval` and `report`, a file given as a run.
#[test]
fn every_run_state_is_named_with_what_to_do() {
    let s = Scratch::new();
    pipeline(&s, "model: { preset: esmm }");
    s.stopped("half");
    let err = s.refused(&["report", "half"]);
    assert!(
        err.contains("the run is unfinished") && err.contains("funnel train --resume half"),
        "{err}"
    );
    s.edit("half/pipeline.yaml", "epochs: 4", "epochs: 3");
    let err = s.refused(&["train", "--resume", "half"]);
    assert!(
        err.contains("pipeline.yaml was edited after the run started")
            && !err.contains("data: train"),
        "{err}"
    );
    for args in [
        vec!["eval", "--run", "nowhere", "--data", "test.csv"],
        vec!["report", "nowhere"],
    ] {
        let err = s.refused(&args);
        assert!(
            err.contains("does not exist or is empty"),
            "{args:?}: {err}"
        );
    }
    std::fs::create_dir(s.path("other")).expect("dir");
    s.write("other/notes.txt", "x");
    for args in [
        vec!["eval", "--run", "other", "--data", "test.csv"],
        vec!["report", "other"],
    ] {
        let err = s.refused(&args);
        assert!(err.contains("holds no run"), "{args:?}: {err}");
    }
    let err = s.refused(&["eval", "--run", "test.csv", "--data", "test.csv"]);
    assert!(
        err.contains("is not a directory") && err.contains("hint:"),
        "{err}"
    );
}
