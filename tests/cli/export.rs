//! `funnel export`: every shipped pipeline, trained one epoch, exports to ONNX, and the
//! exported graph run by tract on the encoded rows gives the served probabilities (which equal
//! `funnel predict`'s, `serve.rs`) within 1e-5.

use std::path::Path;

use funnel::serve::{Encoded, Model};
use polars::prelude::*;
use tract_onnx::prelude::*;

use crate::*;

/// The first `n` rows of a data file, every column as it is stored, as a server would receive
/// the raw values (CSV as text, an empty cell the empty text: funnel's null markers say what is
/// missing; column names trimmed, as the adult header is read).
pub fn first_rows(path: &Path, n: usize) -> DataFrame {
    let mut df = match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => ParquetReader::new(std::fs::File::open(path).expect("parquet file"))
            .finish()
            .expect("parquet"),
        _ => CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .map_parse_options(|o| o.with_missing_is_null(false))
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .expect("csv reader")
            .finish()
            .expect("csv"),
    };
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|c| c.trim().to_string())
        .collect();
    df.set_column_names(&names).expect("names");
    df.head(Some(n))
}

/// The graph at `path` run by tract on `x`: each output's values, in output order.
fn run_onnx(path: &Path, x: &Encoded) -> Vec<Vec<f32>> {
    let mut model = tract_onnx::onnx()
        .model_for_path(path)
        .expect("tract reads the model");
    let mut inputs: TVec<TValue> = TVec::new();
    for (i, (_, ids)) in x.ids.iter().enumerate() {
        let fact = InferenceFact::dt_shape(i64::datum_type(), tvec!(x.rows));
        model.set_input_fact(i, fact).expect("ids fact");
        inputs.push(Tensor::from_shape(&[x.rows], ids).expect("ids").into());
    }
    for b in &x.bags {
        let shape = [x.rows, b.width];
        let fact = InferenceFact::dt_shape(i64::datum_type(), tvec!(shape[0], shape[1]));
        model
            .set_input_fact(inputs.len(), fact)
            .expect("tokens fact");
        inputs.push(
            Tensor::from_shape(&shape, &b.tokens)
                .expect("tokens")
                .into(),
        );
        if b.weights_input.is_some() {
            let fact = InferenceFact::dt_shape(f32::datum_type(), tvec!(shape[0], shape[1]));
            model
                .set_input_fact(inputs.len(), fact)
                .expect("weights fact");
            inputs.push(
                Tensor::from_shape(&shape, &b.weights)
                    .expect("weights")
                    .into(),
            );
        }
    }
    if x.numeric_columns > 0 {
        let shape = [x.rows, x.numeric_columns];
        let fact = InferenceFact::dt_shape(f32::datum_type(), tvec!(shape[0], shape[1]));
        model
            .set_input_fact(inputs.len(), fact)
            .expect("numeric fact");
        inputs.push(
            Tensor::from_shape(&shape, &x.numeric)
                .expect("numeric")
                .into(),
        );
    }
    let plan = model
        .into_optimized()
        .expect("tract optimises the model")
        .into_runnable()
        .expect("runnable");
    let outputs = plan.run(inputs).expect("tract runs the model");
    outputs
        .iter()
        .map(|t| {
            t.to_array_view::<f32>()
                .expect("f32 output")
                .iter()
                .copied()
                .collect()
        })
        .collect()
}

/// The run `run` of the scratch folder, exported to `onnx`, run by tract on the first 2,000
/// rows of its training file: every stage's conditional and cumulative probability within
/// 1e-5 of the served model's. Returns the served model and its predictions.
pub fn tract_agrees(
    s: &Scratch,
    run: &str,
    out: &str,
    file: &str,
) -> (Model, funnel::serve::Predictions) {
    let model = Model::load(s.path(run)).expect("serve");
    let rows = first_rows(&model.pipeline().train_source.path, 2000);
    let want = model.predict(&rows).expect("served predictions");
    let got = run_onnx(&s.path(out), &model.encode(&rows).expect("encode"));
    assert_eq!(got.len(), 2 * want.stages().len(), "{file}: outputs");
    for (k, name) in want.column_names().iter().enumerate() {
        let served = if k % 2 == 0 {
            want.conditional(k / 2)
        } else {
            want.cumulative(k / 2)
        };
        assert_eq!(got[k].len(), served.len(), "{file} {name}");
        let worst = got[k]
            .iter()
            .zip(served)
            .map(|(&a, &b)| (a as f64 - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-5, "{file} {name}: differs by {worst}");
    }
    (model, want)
}

/// The repository's pipelines beside the data each reads, in the scratch folder: the shipped
/// files linked, and what the pipelines' "First:" comments make (generated funnels, prepared
/// logs) made small: 20,000 generated rows, the shipped Taobao head and PaddleRec sample.
fn shipped_pipelines(s: &Scratch) -> Vec<std::path::PathBuf> {
    let repo = repo();
    std::fs::create_dir_all(s.path("pipelines/generate")).expect("pipelines");
    std::fs::create_dir_all(s.path("data/synthetic")).expect("synthetic");
    std::fs::create_dir_all(s.path("data/taobao")).expect("taobao");
    for d in ["adult", "aliexpress"] {
        std::os::unix::fs::symlink(repo.join("data").join(d), s.path(&format!("data/{d}")))
            .expect("link");
    }
    std::fs::create_dir_all(s.path("data/ali-ccp")).expect("ali-ccp");
    for f in std::fs::read_dir(repo.join("data/ali-ccp")).expect("ali-ccp") {
        let f = f.expect("entry").path();
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        std::os::unix::fs::symlink(&f, s.path(&format!("data/ali-ccp/{name}"))).expect("link");
    }
    let mut pipelines = Vec::new();
    for sub in ["pipelines", "pipelines/generate"] {
        for e in std::fs::read_dir(repo.join(sub)).expect("pipelines") {
            let path = e.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let to = s.path(sub).join(path.file_name().unwrap());
                std::fs::copy(&path, &to).expect("copy");
                if sub == "pipelines" {
                    pipelines.push(to);
                }
            }
        }
    }
    for e in std::fs::read_dir(s.path("pipelines/generate")).expect("specs") {
        let spec = e.expect("entry").path();
        let stem = spec.file_stem().unwrap().to_string_lossy().to_string();
        s.generate(
            spec.to_str().unwrap(),
            20_000,
            Some(1),
            &format!("data/synthetic/{stem}.parquet"),
        );
    }
    ok(&s.run(&[
        "prepare",
        "taobao",
        "--log",
        repo.join("data/taobao/UserBehavior_head4321.csv")
            .to_str()
            .unwrap(),
        "--out",
        "data/taobao/pairs.parquet",
    ]));
    ok(&s.run(&[
        "prepare",
        "paddlerec-esmm",
        "--input",
        repo.join("data/ali-ccp/paddlerec_esmm_train_small.txt")
            .to_str()
            .unwrap(),
        "--out",
        "data/ali-ccp/train.parquet",
    ]));
    pipelines.sort();
    pipelines
}

/// Every shipped pipeline trains one epoch on its data and exports; tract runs the graph on
/// the first 2,000 rows of its training file and gives every stage's conditional and
/// cumulative probability within 1e-5 of the served model's; the sidecar names every input.
#[test]
fn every_shipped_pipeline_exports_and_tract_agrees() {
    let s = Scratch::new();
    let mut exported = Vec::new();
    for pipeline in shipped_pipelines(&s) {
        let file = pipeline.file_name().unwrap().to_string_lossy().to_string();
        let run = file.trim_end_matches(".yaml").to_string();
        let o = s.run(&[
            "train",
            pipeline.to_str().unwrap(),
            "--out",
            &run,
            "--set",
            "train.epochs=1",
        ]);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        let out = format!("{run}.onnx");
        let e = s.run(&["export", &run, "--out", &out]);
        ok(&e);
        let (model, want) = tract_agrees(&s, &run, &out, &file);
        let sidecar: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(s.path(&format!("{out}.json"))).expect("sidecar"),
        )
        .expect("sidecar JSON");
        let inputs = sidecar["inputs"]["ids"].as_array().expect("ids").len()
            + sidecar["inputs"]["bags"].as_array().expect("bags").len();
        assert_eq!(inputs, model.pipeline().embedded_fields().len(), "{file}");
        assert_eq!(
            sidecar["stages"].as_array().unwrap().len(),
            want.stages().len()
        );
        // A Parquet file's values are read as written: no text rules for an encoder to apply.
        let parquet = model.pipeline().train_source.format == funnel::config::FileFormat::Parquet;
        assert_eq!(
            sidecar["text"]["format"],
            if parquet { "parquet" } else { "csv" }
        );
        if parquet {
            assert_eq!(
                sidecar["text"]["null_values"],
                serde_json::json!([]),
                "{file}"
            );
            assert_eq!(sidecar["text"]["trim_whitespace"], false, "{file}");
        }
        exported.push(file);
    }
    // Each file of pipelines/ (30 when this was written) trained and exported.
    assert!(exported.len() >= 30, "exported only {exported:?}");
}

/// The Python reference encoder (scripts/funnel_encode.py, standard library only) reads the
/// sidecar and a text file and gives the graph's inputs exactly as the Rust encoder does: a
/// vocabulary, a hashed feature, a bucketed numeric fed raw too, log1p and plain numerics,
/// null markers and unseen values. Skipped, saying so, where no `python3` is installed.
#[test]
fn the_python_reference_encoder_matches_the_rust_one() {
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output();
    if !python.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: no python3 on this machine (the reference encoder needs Python 3)");
        return;
    }
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    s.edit(
        "pipeline.yaml",
        "    - name: sex\n",
        "    - { name: sex, hash_buckets: 7 }\n",
    );
    s.edit(
        "pipeline.yaml",
        "    - name: age\n",
        "    - { name: age, transform: quantile_buckets, buckets: 8, also_raw: true }\n",
    );
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    ok(&s.run(&["export", "run", "--out", "m.onnx"]));
    let o = std::process::Command::new("python3")
        .arg(repo().join("scripts/funnel_encode.py"))
        .args([s.path("m.onnx.json"), s.path("test.csv")])
        .output()
        .expect("python3 runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let py: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON inputs");
    let model = Model::load(s.path("run")).expect("serve");
    let x = model
        .encode(&first_rows(&s.path("test.csv"), usize::MAX))
        .expect("encode");
    assert_eq!(py["rows"], x.rows);
    assert_eq!(
        x.ids.len(),
        6,
        "five categorical features and the bucketed age"
    );
    for (name, ids) in &x.ids {
        let got: Vec<i64> = serde_json::from_value(py["inputs"][name].clone()).expect(name);
        assert_eq!(&got, ids, "{name}");
    }
    let rows: Vec<Vec<f64>> =
        serde_json::from_value(py["inputs"]["numeric"].clone()).expect("numeric");
    let got: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    assert_eq!(
        x.numeric_columns, 3,
        "age fed raw too, capital-gain, hours-per-week"
    );
    assert_eq!(got, x.numeric, "numeric");
}
