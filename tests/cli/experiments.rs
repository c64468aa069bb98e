//! The experiment commands on small data: the run report `train` writes, `funnel report`, and
//! `funnel compare` with its tables, statistics and cache.

use crate::*;

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

/// `train` writes report.html: every chart, drawn from the run's own numbers, nothing fetched.
#[test]
fn train_writes_a_self_contained_report_with_the_runs_numbers() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    let out = s.run(&["train", "pipeline.yaml", "--out", "run"]);
    ok(&out);
    assert!(stdout(&out).ends_with("run directory: run\nreport: run/report.html\n"));
    let html = std::fs::read_to_string(s.path("run/report.html")).expect("report");
    for id in [
        "id=\"loss\"",
        "id=\"auc-cumulative\"",
        "id=\"auc-conditional\"",
        "id=\"reliability-click-cumulative\"",
        "id=\"reliability-conversion-conditional\"",
        "id=\"funnel\"",
        "id=\"metrics-table\"",
        "id=\"timing\"",
    ] {
        assert!(html.contains(id), "no {id}");
    }
    // Nothing is fetched when the page opens.
    for fetch in ["<script", "src=", "href=\"http", "@import", "url("] {
        assert!(!html.contains(fetch), "the page holds {fetch}");
    }
    // The test AUC and ECE in the page are metrics.json's.
    let m = json(&s.path("run/metrics.json"));
    let conv = &m["test"][1];
    let auc = conv["conditional"]["auc"].as_f64().expect("auc");
    let ece = conv["conditional"]["calibration"]["ece"]
        .as_f64()
        .expect("ece");
    assert!(
        html.contains(&format!("<td>{auc:.4}</td>")),
        "AUC {auc:.4} not in the page"
    );
    assert!(
        html.contains(&format!(
            "P(conversion|click) on rows that reached click: ECE {ece:.4}"
        )),
        "ECE {ece:.4} not in a reliability chart's title"
    );
    // One point per bin in each reliability chart, one per epoch in the loss chart's series.
    let bins = conv["conditional"]["calibration"]["bins"]
        .as_array()
        .expect("bins");
    assert_eq!(bins.len(), 10);
    let epochs = m["history"].as_array().expect("history").len();
    let loss = html
        .split("id=\"loss\"")
        .nth(1)
        .expect("loss")
        .split("</svg>")
        .next()
        .unwrap();
    assert_eq!(
        loss.matches("<circle").count(),
        epochs * 4,
        "2 stages × training and validation"
    );
    // Reliability bins by hand: rows add up, and ECE is their weighted gap.
    let rows: u64 = bins.iter().map(|b| b["rows"].as_u64().unwrap()).sum();
    assert_eq!(rows, conv["conditional"]["rows"].as_u64().unwrap());
    let gap: f64 = bins
        .iter()
        .map(|b| {
            b["rows"].as_f64().unwrap() / rows as f64
                * (b["mean_pred"].as_f64().unwrap() - b["rate"].as_f64().unwrap()).abs()
        })
        .sum();
    assert!((gap - ece).abs() < 1e-12);

    // `funnel report` draws the same page again, elsewhere; an existing file needs --force.
    ok(&s.run(&["report", "run", "--out", "again.html"]));
    assert_eq!(std::fs::read_to_string(s.path("again.html")).unwrap(), html);
    let err = s.refused(&["report", "run", "--out", "again.html"]);
    assert!(err.contains("--force"), "{err}");
    ok(&s.run(&["report", "run", "--out", "again.html", "--force"]));
    let err = s.refused(&["report", "nowhere"]);
    assert!(
        err.contains("run directory nowhere: does not exist or is empty"),
        "{err}"
    );

    // --no-report: no page.
    ok(&s.run(&["train", "pipeline.yaml", "--out", "quiet", "--no-report"]));
    assert!(!s.path("quiet/report.html").exists());
}

/// `compare`: every pipeline under every seed; tables with each seed's value from its run,
/// statistics that hold by hand, and a cache that makes a repeat instant and retrains a lost
/// run to the same numbers.
#[test]
fn compare_tabulates_seeds_and_caches_runs() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    let esmm = std::fs::read_to_string(s.path("pipeline.yaml")).unwrap();
    s.write("esmm.yaml", &esmm.replace("epochs: 6", "epochs: 2"));
    s.write(
        "naive.yaml",
        &esmm
            .replace("name: slice", "name: naive")
            .replace("epochs: 6", "epochs: 2")
            .replace(
                "train:\n  epochs",
                "model: { preset: naive }\ntrain:\n  epochs",
            ),
    );
    let out = s.run(&[
        "compare",
        "esmm.yaml",
        "naive.yaml",
        "--seeds",
        "3",
        "--out",
        "cmp",
    ]);
    ok(&out);
    let c = json(&s.path("cmp/compare.json"));
    assert_eq!(c["seeds"], serde_json::json!([1, 2, 3]));
    assert_eq!(c["split"], "test");
    let ids: Vec<&str> = c["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "click.cumulative.auc",
            "conversion.cumulative.auc",
            "conversion.conditional.auc"
        ]
    );
    let rows = c["pipelines"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        for (seed, dir) in r["runs"].as_array().unwrap().iter().enumerate() {
            // Each value is its run's test AUC, and the run used its seed.
            let dir = s.path(dir.as_str().unwrap());
            let m = json(&dir.join("metrics.json"));
            let p = std::fs::read_to_string(dir.join("pipeline.yaml")).unwrap();
            assert!(p.contains(&format!("seed: {}", seed + 1)), "{p}");
            assert_eq!(
                r["values"][2][seed].as_f64(),
                m["test"][1]["conditional"]["auc"].as_f64()
            );
            assert!(dir.join("report.html").exists());
            assert!(dir.join("tensorboard/events.out.tfevents.funnel").exists());
        }
    }
    // Mean and sample sd by hand; the paired t statistic from the differences.
    let v = |r: usize, j: usize| -> Vec<f64> {
        rows[r]["values"][j]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let (a, b) = (v(1, 2), v(0, 2));
    let mean = a.iter().sum::<f64>() / 3.0;
    let sd = (a.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    let sm = &rows[1]["summary"][2];
    assert!((sm["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert!((sm["sd"].as_f64().unwrap() - sd).abs() < 1e-12);
    // 95% interval: t(0.975, 2) = 4.302652729749464 (scipy.stats.t.ppf).
    let half = 4.302_652_729_749_464 * sd / 3f64.sqrt();
    assert!((sm["ci95"][1].as_f64().unwrap() - (mean + half)).abs() < 1e-9);
    let d: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
    let dm = d.iter().sum::<f64>() / 3.0;
    let ds = (d.iter().map(|x| (x - dm).powi(2)).sum::<f64>() / 2.0).sqrt();
    let t = &rows[1]["against_first"][2];
    assert!((t["diff"].as_f64().unwrap() - dm).abs() < 1e-12);
    assert!((t["t"].as_f64().unwrap() - dm / (ds / 3f64.sqrt())).abs() < 1e-9);
    assert!(rows[0]["against_first"][2].is_null());

    // The tables: Markdown with both rows and the test named, CSV with a line per pipeline
    // and metric, HTML with the tables and a chart per metric.
    let md = std::fs::read_to_string(s.path("cmp/compare.md")).unwrap();
    assert_eq!(md, stdout(&out).split("wrote ").next().unwrap());
    assert!(md.contains("| slice |") && md.contains("| naive |") && md.contains("paired t-test"));
    assert_eq!(
        md.matches("**").count(),
        3 * 2,
        "one bold cell (two `**`) per column, in the means table only"
    );
    let csv = std::fs::read_to_string(s.path("cmp/compare.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 3);
    assert!(csv.starts_with(
        "pipeline,metric,n,mean,sd,ci95_low,ci95_high,diff_vs_first,t,p,seed_1,seed_2,seed_3\n"
    ));
    let html = std::fs::read_to_string(s.path("cmp/compare.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 3);
    assert!(!html.contains("<script"));

    // A repeat reads every run back.
    let again = s.run(&[
        "compare",
        "esmm.yaml",
        "naive.yaml",
        "--seeds",
        "3",
        "--out",
        "cmp",
    ]);
    ok(&again);
    assert_eq!(
        stderr(&again).matches("finished before, read back").count(),
        6,
        "{}",
        stderr(&again)
    );
    assert_eq!(json(&s.path("cmp/compare.json")), c);
    // A run lost from the cache (stopped before its checkpoint) is trained again, to the same
    // numbers: the seed fixes everything.
    let lost = s.path(rows[1]["runs"][0].as_str().unwrap());
    for f in [
        "manifest.json",
        "metrics.json",
        "weights.safetensors",
        "report.html",
    ] {
        std::fs::remove_file(lost.join(f)).unwrap();
    }
    let third = s.run(&[
        "compare",
        "esmm.yaml",
        "naive.yaml",
        "--seeds",
        "3",
        "--out",
        "cmp",
    ]);
    ok(&third);
    assert_eq!(
        stderr(&third).matches("read back").count(),
        5,
        "{}",
        stderr(&third)
    );
    assert_eq!(json(&s.path("cmp/compare.json")), c);
    // A cached run whose metrics were edited is refused, not tabulated.
    let m = lost.join("metrics.json");
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(&m, text.replacen("\"auc\": 0.", "\"auc\": 0.9", 1)).unwrap();
    let err = s.refused(&[
        "compare",
        "esmm.yaml",
        "naive.yaml",
        "--seeds",
        "3",
        "--out",
        "cmp",
    ]);
    assert!(
        err.contains("metrics.json does not match the run's manifest"),
        "{err}"
    );
    std::fs::write(&m, text).unwrap();
    // An edited pipeline is a new run.
    s.edit("naive.yaml", "epochs: 2", "epochs: 1");
    let fourth = s.run(&[
        "compare",
        "esmm.yaml",
        "naive.yaml",
        "--seeds",
        "3",
        "--out",
        "cmp",
    ]);
    ok(&fourth);
    assert_eq!(
        stderr(&fourth).matches("read back").count(),
        3,
        "{}",
        stderr(&fourth)
    );
}

/// Pipelines of different funnels cannot be compared.
#[test]
fn compare_refuses_pipelines_of_different_stages() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    let two = std::fs::read_to_string(s.path("pipeline.yaml")).unwrap();
    s.adult_pipeline(CLICK, "");
    s.write("two.yaml", &two);
    let err = s.refused(&["compare", "two.yaml", "pipeline.yaml", "--seeds", "1"]);
    assert!(
        err.contains("compare argument `pipeline.yaml` (pipeline.yaml): its stages click differ from the first pipeline's (click -> conversion)")
            && err.contains("hint: compare pipelines of one funnel"),
        "{err}"
    );
    let err = s.refused(&["compare", "two.yaml", "--seeds", "1000000000000"]);
    assert!(
        err.contains("--seeds 1000000000000: must be between 1 and 1000") && err.contains("hint:"),
        "{err}"
    );
    // Nothing is created for a compare refused before its first run.
    assert!(!s.path("compare").exists());
}

/// A compare whose run was interrupted (a checkpoint, no manifest) resumes that run from its
/// checkpoint, to the numbers an uninterrupted compare gave.
#[test]
fn an_interrupted_compare_run_resumes_to_the_same_numbers() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    ok(&s.run(&["compare", "pipeline.yaml", "--seeds", "1", "--out", "cmp"]));
    let first = json(&s.path("cmp/compare.json"));
    let dir = first["pipelines"][0]["runs"][0]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_dir_all(s.path(&dir)).unwrap();
    // The same run (seed 1), stopped after step 20 as Ctrl-C stops it.
    let stopped = s.run(&[
        "train",
        "pipeline.yaml",
        "--seed",
        "1",
        "--out",
        &dir,
        "--stop-at-step",
        "20",
    ]);
    assert_eq!(stopped.status.code(), Some(130), "{}", stderr(&stopped));
    assert!(s.path(&dir).join("checkpoint.safetensors").exists());
    assert!(!s.path(&dir).join("manifest.json").exists());
    let again = s.run(&["compare", "pipeline.yaml", "--seeds", "1", "--out", "cmp"]);
    ok(&again);
    assert!(
        stderr(&again).contains("resuming slice seed 1"),
        "{}",
        stderr(&again)
    );
    assert_eq!(json(&s.path("cmp/compare.json")), first);
}
