//! Interrupts: every command stops at SIGINT, SIGTERM or SIGHUP in its longest phase, exits
//! 128 + the signal, and leaves what it was writing whole or absent, without temporary files;
//! a second signal ends training at once with the last checkpoint kept; a run killed before its
//! first checkpoint is started over by `train` and by `train --resume`.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::*;

/// Files whose names mark an atomic write's temporary file, anywhere under `dir`.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = e.path();
        if path.is_dir() {
            found.extend(temporaries(&path));
        } else if e.file_name().to_string_lossy().contains(".tmp-") {
            found.push(path);
        }
    }
    found
}

/// Read a child's stderr until the testing hook says it paused; what was read.
fn paused(err: &mut impl BufRead) -> String {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = err.read_line(&mut line).expect("read stderr");
        seen.push_str(&line);
        assert!(n > 0, "ended before pausing:\n{seen}");
        if line.starts_with("testing: paused in") {
            return seen;
        }
    }
}

/// Run `args` paused in `phase` (the testing hook), send `sig` once it is there, and return
/// the exit code, stderr and the seconds from the signal to the exit.
fn interrupt(s: &Scratch, args: &[&str], phase: &str, sig: &str) -> (Option<i32>, String, f64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(args)
        .current_dir(s.dir.path())
        .env("FUNNEL_TESTING_PAUSE", phase)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn funnel");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = paused(&mut err);
    signal(&child, sig);
    let at = Instant::now();
    let status = child.wait().expect("wait");
    let secs = at.elapsed().as_secs_f64();
    err.read_to_string(&mut seen).expect("read stderr");
    (status.code(), seen, secs)
}

/// Each command, in its longest phase (reading its data, or writing its output), under each
/// signal: stopped within two seconds (its pause there is ten), with the signal's exit code
/// and name, nothing written and no temporary file left. `train` stopped while it writes its
/// run's files leaves a folder that a new `train --out` takes.
#[test]
fn every_command_stops_in_its_longest_phase() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "done"]));
    let spec = repo().join("pipelines/generate/two-stage.yaml");
    let spec = spec.to_str().expect("utf-8");
    let cases: [(&[&str], &str, &str); 10] = [
        (&["validate", "pipeline.yaml"], "read", "INT"),
        (&["train", "pipeline.yaml", "--out", "new"], "read", "TERM"),
        // Writing the run's files before the first step: not a cooperative phase.
        (&["train", "pipeline.yaml", "--out", "new2"], "write", "INT"),
        (
            &["eval", "--run", "done", "--data", "test.csv"],
            "read",
            "INT",
        ),
        (
            &[
                "predict", "--run", "done", "--data", "test.csv", "--out", "p.csv",
            ],
            "write",
            "INT",
        ),
        (
            &["init", "train.csv", "--stages", "sex", "--out", "p.yaml"],
            "write",
            "HUP",
        ),
        (&["report", "done", "--out", "r.html"], "write", "INT"),
        (
            &["generate", spec, "--rows", "1000", "--out", "g.csv"],
            "write",
            "TERM",
        ),
        (
            &["compare", "pipeline.yaml", "--seeds", "1", "--out", "cmp"],
            "read",
            "INT",
        ),
        (
            &["eval", "--run", "done", "--split", "test"],
            "read",
            "TERM",
        ),
    ];
    for (args, phase, sig) in cases {
        let (code, err, secs) = interrupt(&s, args, phase, sig);
        let (number, name) = match sig {
            "INT" => (2, "SIGINT"),
            "TERM" => (15, "SIGTERM"),
            _ => (1, "SIGHUP"),
        };
        assert_eq!(code, Some(128 + number), "{args:?}: {err}");
        assert!(err.contains(&format!("interrupted by {name}")), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        // The pause is ten seconds: an exit within two is one that did not wait for it.
        assert!(secs < 2.0, "{args:?} took {secs:.1} s to stop");
        assert_eq!(temporaries(s.dir.path()), Vec::<PathBuf>::new(), "{args:?}");
    }
    for written in [
        "new",
        "p.csv",
        "p.yaml",
        "r.html",
        "g.csv",
        "cmp/compare.md",
    ] {
        assert!(!s.path(written).exists(), "{written} was written");
    }
    // Stopped writing its first file: nothing of a run is left (a lock file nobody holds),
    // and the folder takes a new run.
    assert!(!s.path("new2/pipeline.yaml").exists());
    ok(&s.run(&["train", "pipeline.yaml", "--out", "new2"]));
}

/// A signal while a finished run's last files (metrics, pages, manifest) are written only
/// asks: the run is completed, then the command exits 130, and the run reads back.
#[test]
fn a_signal_while_a_run_finishes_leaves_it_whole() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    let (code, err, _) = interrupt(
        &s,
        &["train", "pipeline.yaml", "--out", "run"],
        "finish",
        "INT",
    );
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("its output is whole"), "{err}");
    assert!(s.path("run/manifest.json").exists());
    ok(&s.run(&["eval", "--run", "run", "--split", "test"]));
}

/// Under `nohup` (SIGHUP ignored from the start) a hang-up does not stop a command; SIGINT
/// still does.
#[test]
fn an_ignored_hangup_stays_ignored() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    let mut child = Command::new("nohup")
        .arg(env!("CARGO_BIN_EXE_funnel"))
        .args(["validate", "pipeline.yaml"])
        .current_dir(s.dir.path())
        .env("FUNNEL_TESTING_PAUSE", "read")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nohup");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = paused(&mut err);
    signal(&child, "HUP");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "SIGHUP stopped it under nohup"
    );
    signal(&child, "INT");
    let status = child.wait().expect("wait");
    err.read_to_string(&mut seen).expect("read");
    assert_eq!(status.code(), Some(130), "{seen}");
}

/// A first SIGINT while a checkpoint is being written asks training to stop after it; a second
/// one ends the process at once: the checkpoint being written is removed, the one before it
/// stays, and the run resumes to the uninterrupted run's weights.
#[test]
fn a_second_interrupt_stops_training_at_once_and_keeps_the_last_checkpoint() {
    let s = Scratch::new();
    s.adult_pipeline(
        &format!("{CLICK}{CONVERSION}"),
        "  checkpoint_every_steps: 1\n",
    );
    ok(&s.run(&["train", "pipeline.yaml", "--out", "whole"]));
    let mut child = slow_child(&s, "run", 3000);
    wait_for("a second checkpoint write", || {
        s.path("run/checkpoint.safetensors").exists() && checkpoint_in_progress(&s, "run")
    });
    let kept = std::fs::read(s.path("run/checkpoint.safetensors")).expect("checkpoint");
    signal(&child, "INT");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the first signal only asks"
    );
    signal(&child, "INT");
    let at = Instant::now();
    let status = child.wait().expect("wait");
    assert!(at.elapsed().as_secs_f64() < 2.5, "it waited for the write");
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("a second signal: stopped at once"), "{err}");
    assert_eq!(
        temporaries(&s.path("run")),
        Vec::<PathBuf>::new(),
        "the checkpoint being written is removed"
    );
    assert!(std::fs::read(s.path("run/checkpoint.safetensors")).expect("kept") == kept);
    ok(&s.run(&["train", "--resume", "run"]));
    assert!(
        std::fs::read(s.path("run/weights.safetensors")).expect("weights")
            == std::fs::read(s.path("whole/weights.safetensors")).expect("weights")
    );
}

/// SIGKILL during the first checkpoint's write leaves run files without a checkpoint: `eval`
/// says the run has no weights and how to train it, `train --resume` starts it over from its
/// own pipeline.yaml, and so does `train --out` into the same folder; both end as the
/// uninterrupted run.
#[test]
fn a_run_killed_before_its_first_checkpoint_is_started_over() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "whole"]));
    for (run, again) in [
        ("a", vec!["train", "--resume", "a"]),
        ("b", vec!["train", "pipeline.yaml", "--out", "b"]),
    ] {
        let child = slow_child(&s, run, 5000);
        wait_for("the first checkpoint write", || {
            checkpoint_in_progress(&s, run)
        });
        signal(&child, "KILL");
        let mut child = child;
        child.wait().expect("wait");
        assert!(!s.path(run).join("checkpoint.safetensors").exists());
        let err = s.refused(&["eval", "--run", run, "--split", "test"]);
        assert!(
            err.contains("was stopped before its first checkpoint: it has no weights")
                && err.contains(&format!("funnel train --resume {run}")),
            "{err}"
        );
        let o = s.run(&again);
        ok(&o);
        assert!(stderr(&o).contains("notice:"), "{}", stderr(&o));
        assert!(stderr(&o).contains("start"), "{}", stderr(&o));
        assert!(
            std::fs::read(s.path(run).join("weights.safetensors")).expect("weights")
                == std::fs::read(s.path("whole/weights.safetensors")).expect("weights"),
            "{run}"
        );
        assert_eq!(temporaries(&s.path(run)), Vec::<PathBuf>::new());
    }
}

/// A run another live process trains is reported as such to `eval`, `predict`, `report`,
/// `train --resume` and a second `train --out`, not as an interrupted run to resume.
#[test]
fn a_run_in_training_is_reported_as_such() {
    let s = Scratch::new();
    s.adult_pipeline(
        &format!("{CLICK}{CONVERSION}"),
        "  checkpoint_every_steps: 1\n",
    );
    let mut child = slow_child(&s, "busy", 500);
    wait_for("a first checkpoint", || {
        s.path("busy/checkpoint.safetensors").exists()
    });
    let pid = format!("pid {}", child.id());
    for args in [
        vec!["eval", "--run", "busy", "--data", "test.csv"],
        vec![
            "predict", "--run", "busy", "--data", "test.csv", "--out", "p.csv",
        ],
        vec!["train", "--resume", "busy"],
        vec!["train", "pipeline.yaml", "--out", "busy"],
    ] {
        let err = s.refused(&args);
        assert!(
            err.contains("being trained by another funnel process") && err.contains(&pid),
            "{args:?}: {err}"
        );
        assert!(!err.contains("--resume busy`"), "{args:?}: {err}");
    }
    signal(&child, "KILL");
    child.wait().expect("wait");
}
