//! Serving from Rust (`funnel::serve::Model`): a finished run's predictions equal `funnel
//! predict`'s, from several threads at once, for a whole table and for single rows.

use funnel::serve::{Model, Predictions, Value};
use polars::prelude::*;

use crate::*;

/// `funnel predict --run RUN --data DATA` written to Parquet and read back.
fn predicted(s: &Scratch, run: &str, data: &str) -> DataFrame {
    let out = format!("{run}-served-reference.parquet");
    ok(&s.run(&["predict", "--run", run, "--data", data, "--out", &out]));
    let file = std::fs::File::open(s.path(&out)).expect("predictions");
    ParquetReader::new(file).finish().expect("parquet")
}

/// One prediction column as f64 values.
fn values(df: &DataFrame, name: &str) -> Vec<f64> {
    df.column(name)
        .and_then(|c| c.f64().map(|v| v.into_no_null_iter().collect()))
        .expect("a float column")
}

/// The run `run` served from two threads, each scoring all of `data` (a CSV file of the
/// scratch folder) twice, gives exactly `funnel predict`'s probabilities (the same batches
/// through the same gather and blocks, its tables memory-mapped instead of loaded); its first
/// rows one at a time (batches of one) give them to 1e-6.
pub fn served_equals_predict(s: &Scratch, run: &str, data: &str) {
    let want = predicted(s, run, data);
    let rows = crate::export::first_rows(&s.path(data), usize::MAX);
    let model = Model::load(s.path(run)).expect("serve the run");
    let columns = model
        .columns()
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>();
    let served: Vec<Predictions> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let first = model.predict(&rows).expect("predict");
                    let second = model.predict(&rows).expect("predict again");
                    assert_eq!(first, second, "{run}: the same rows twice");
                    first
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect()
    });
    for got in &served {
        assert_eq!(got.rows(), want.height(), "{run}");
        let df = got.to_dataframe().expect("dataframe");
        assert_eq!(
            df.get_column_names(),
            want.get_column_names(),
            "{run}: predict writes the same columns"
        );
        for name in got.column_names() {
            let (got, want) = (values(&df, &name), values(&want, &name));
            if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
                panic!(
                    "{run}: {name}: row {i}: served {} vs predict {}",
                    got[i], want[i]
                );
            }
        }
    }
    for i in 0..5 {
        let row: Vec<(&str, Value)> = columns
            .iter()
            .map(|c| {
                let v = rows.column(c).expect("column").str().expect("text").get(i);
                (c.as_str(), Value::from(v))
            })
            .collect();
        let one = model.predict_row(&row).expect("one row");
        assert_eq!(one.rows(), 1);
        for name in one.column_names() {
            let (got, want) = (
                values(&one.to_dataframe().unwrap(), &name)[0],
                values(&want, &name)[i],
            );
            assert!(
                (got - want).abs() < 1e-6,
                "{run}: row {i} {name}: {got} vs {want}"
            );
        }
    }
}

/// AITM over one embedding store per stage, on text read by the training file's rules
/// (trimmed, `?` missing): served from two threads, it predicts what `predict` does. A
/// misspelt, repeated or absent feature is an error naming it; columns the model does not
/// read are ignored; values outside the vocabulary are reported.
#[test]
fn a_served_run_predicts_what_predict_does() {
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    let yaml = std::fs::read_to_string(s.path("pipeline.yaml")).expect("pipeline")
        + "model:\n  preset: aitm\n  representation: per_stage_embeddings\n";
    s.write("pipeline.yaml", &yaml);
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    served_equals_predict(&s, "run", "test.csv");

    let model = Model::load(s.path("run")).expect("serve");
    assert_eq!(model.stages(), ["click", "conversion"]);
    let mut row: Vec<(&str, Value)> = vec![
        ("workclass", "Private".into()),
        ("education", "Bachelors".into()),
        ("occupation", "?".into()),
        ("relationship", "Husband".into()),
        ("sex", "Male".into()),
        ("age", Value::Float(38.0)),
        ("capital-gain", Value::Int(0)),
        ("hours-per-week", Value::Missing),
        ("request", "ignored".into()),
    ];
    let p = model.predict_row(&row).expect("a row of named values");
    let (q, c) = (p.conditional(1)[0], p.cumulative(1)[0]);
    assert!(
        (0.0..=1.0).contains(&q) && c <= p.cumulative(0)[0] + 1e-12,
        "{q} {c}"
    );
    // "?" is the training file's null marker: the same as a missing value.
    row[2].1 = Value::Missing;
    assert_eq!(model.predict_row(&row).expect("missing"), p);

    row[0].1 = "Astronaut".into();
    let p = model.predict_row(&row).expect("unseen value");
    assert!(
        p.warnings().iter().any(|w| w.contains("workclass")),
        "{:?}",
        p.warnings()
    );
    row.remove(1);
    let e = model
        .predict_row(&row)
        .expect_err("no education")
        .to_string();
    assert!(e.contains("education") && e.contains("not found"), "{e}");
    row.push(("sex", "Female".into()));
    let e = model.predict_row(&row).expect_err("sex twice").to_string();
    assert!(e.contains("`sex` twice"), "{e}");
    let e = Model::load(s.path("nothing"))
        .err()
        .expect("no run")
        .to_string();
    assert!(e.contains("nothing"), "{e}");
}

/// A run's weights.safetensors is plain safetensors under readable keys: candle-nn's
/// `VarBuilder` maps it, and the ESMM model rebuilt from candle-nn's own `Embedding` and
/// `Linear` (`embeddings.<feature>`, `towers.<stage>.<layer>`, ReLU between) over the served
/// encoding of the rows gives the served probabilities: q_click = σ(z_click), p_conversion =
/// σ(z_click) σ(z_conversion).
#[test]
fn candle_nn_reads_a_runs_weights_by_key() {
    use candle_core::{DType, Device, Module, Tensor};
    use candle_nn::{Embedding, Linear, VarBuilder};
    let s = Scratch::new();
    s.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
    ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    let model = Model::load(s.path("run")).expect("serve");
    let rows = crate::export::first_rows(&s.path("test.csv"), 300);
    let want = model.predict(&rows).expect("predict");
    let x = model.encode(&rows).expect("encode");
    let dev = Device::Cpu;
    let weights = [s.path("run/weights.safetensors")];
    // SAFETY: the file is not modified while the map lives (this test owns the folder).
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&weights, DType::F32, &dev) }
        .expect("candle-nn maps the weights");
    let mut parts = Vec::new();
    for (input, ids) in &x.ids {
        let feature = input.trim_start_matches("ids.");
        let table = vb
            .pp("embeddings")
            .get_unchecked(feature)
            .expect("a table per feature");
        let dim = table.dim(1).expect("dim");
        let ids = Tensor::new(ids.as_slice(), &dev).expect("ids");
        parts.push(Embedding::new(table, dim).forward(&ids).expect("lookup"));
    }
    parts.push(Tensor::from_vec(x.numeric.clone(), (x.rows, x.numeric_columns), &dev).unwrap());
    let input = Tensor::cat(&parts, 1).expect("input rows");
    let linear = |key: &str, inp: usize, out: usize| -> Linear {
        candle_nn::linear(inp, out, vb.pp(key)).expect("a dense layer by key")
    };
    let width = input.dim(1).unwrap();
    let logit = |stage: &str| -> Vec<f64> {
        let h = linear(&format!("towers.{stage}.0"), width, 16)
            .forward(&input)
            .and_then(|h| h.relu())
            .expect("hidden");
        let z = linear(&format!("towers.{stage}.1"), 16, 1)
            .forward(&h)
            .expect("logit");
        z.flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|&v| v as f64)
            .collect()
    };
    let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
    let (click, conversion) = (logit("click"), logit("conversion"));
    for i in 0..x.rows {
        let q = sigmoid(click[i]);
        let p = q * sigmoid(conversion[i]);
        assert!(
            (q - want.conditional(0)[i]).abs() < 1e-6,
            "row {i}: click {q}"
        );
        assert!(
            (p - want.cumulative(1)[i]).abs() < 1e-6,
            "row {i}: conversion {p}"
        );
    }
}
