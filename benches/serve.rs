//! Serving latency of `funnel::serve::Model` on a finished run, one thread: one row given as
//! named values (`predict_row`) and 1,024 rows of a DataFrame (`predict`), raw text in and
//! probabilities out (encoding included), and the encoding of the 1,024 rows alone (`encode`),
//! beside ONNX Runtime's numbers for the same model from scripts/onnx-check.sh (which runs the
//! encoded rows only).
//!
//!     FUNNEL_SERVE_RUN=DIR FUNNEL_SERVE_DATA=FILE.csv cargo bench --bench serve
//!
//! Without the two variables it says so and measures nothing; none of this runs in `cargo test`.

use criterion::{Criterion, criterion_group, criterion_main};
use polars::prelude::*;

use funnel::serve::{Model, Value};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Every column of a CSV file as text, names trimmed (the adult header has spaces).
fn raw_table(path: &str) -> DataFrame {
    let mut df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .map_parse_options(|o| o.with_missing_is_null(false))
        .try_into_reader_with_file_path(Some(path.into()))
        .expect("csv reader")
        .finish()
        .expect("csv");
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.trim().to_string())
        .collect();
    df.set_column_names(&names).expect("names");
    df
}

fn serve(c: &mut Criterion) {
    // What a service's `main` does first (docs/export.md): without it candle reads
    // /proc/cpuinfo on every matrix product (AITM's single row: 337 µs instead of 75).
    funnel::runtime::init();
    let (Ok(run), Ok(data)) = (
        std::env::var("FUNNEL_SERVE_RUN"),
        std::env::var("FUNNEL_SERVE_DATA"),
    ) else {
        eprintln!(
            "serve bench: set FUNNEL_SERVE_RUN (a run directory) and FUNNEL_SERVE_DATA (a CSV file of its features)"
        );
        return;
    };
    let pool = funnel::runtime::pool(1).expect("thread pool");
    let model = Model::load(&run).expect("a finished run");
    let rows = raw_table(&data).head(Some(1024));
    let columns: Vec<String> = model.columns().iter().map(|c| c.to_string()).collect();
    let first: Vec<(String, Value)> = columns
        .iter()
        .map(|c| {
            let v = rows.column(c).expect("column").str().expect("text").get(0);
            (c.clone(), Value::from(v))
        })
        .collect();
    let row: Vec<(&str, Value)> = first.iter().map(|(c, v)| (c.as_str(), v.clone())).collect();
    let mut g = c.benchmark_group("serve");
    g.bench_function("one_row", |b| {
        b.iter(|| pool.install(|| model.predict_row(&row).expect("one row")))
    });
    g.sample_size(30);
    g.bench_function("rows_1024", |b| {
        b.iter(|| pool.install(|| model.predict(&rows).expect("1024 rows")))
    });
    // The text encoding alone (what `predict` spends before the model), to split its cost.
    g.bench_function("encode_1024", |b| {
        b.iter(|| pool.install(|| model.encode(&rows).expect("1024 rows")))
    });
    g.finish();
}

criterion_group!(benches, serve);
criterion_main!(benches);
