//! Criterion benches: one ESMM training step against vocabulary, depth and batch size; predict;
//! exact AUC; the GEMM yardstick; batch assembly; ingestion (read + encode).
//! Run with `cargo bench`; none of this runs in `cargo test`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

use funnel::config::Pipeline;
use funnel::data::Dataset;
use funnel::features::Encoders;
use funnel::model::FunnelModel;
use funnel::optim::DenseOptimizer;
use funnel::rng::Rng;
use funnel::train::step::{Path, step};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FIELDS: usize = 8;
const NUMERIC: usize = 4;
const BATCH: usize = 2048;

fn pipeline(stages: usize) -> Pipeline {
    let cats: String = (0..FIELDS)
        .map(|f| format!("    - {{ name: f{f}, dim: 16 }}\n"))
        .collect();
    let nums: String = (0..NUMERIC)
        .map(|j| format!("    - {{ name: n{j} }}\n"))
        .collect();
    let st: String = (0..stages)
        .map(|k| {
            format!(
                "  - {{ name: s{k}, label: {{ column: y{k} }}, tower: {{ hidden: [128, 64] }} }}\n"
            )
        })
        .collect();
    let yaml = format!(
        "name: bench\ndata:\n  train: {{ path: none.csv }}\nfeatures:\n  categorical:\n{cats}  numeric:\n{nums}stages:\n{st}train: {{ batch_size: {BATCH} }}\n"
    );
    Pipeline::from_text(std::path::Path::new("bench.yaml"), &yaml).expect("bench pipeline")
}

/// Hash-bucket encoders give tables of exactly `vocab` rows without fitting data.
fn encoders(vocab: usize) -> Encoders {
    let cats: Vec<String> = (0..FIELDS)
        .map(|f| format!(r#"{{"name":"f{f}","column":"f{f}","hash_buckets":{vocab}}}"#))
        .collect();
    let nums: Vec<String> = (0..NUMERIC)
        .map(|j| format!(r#"{{"name":"n{j}","column":"n{j}","transform":"standardize","missing":"mean","shift":0.0,"scale":1.0,"fill":0.0}}"#))
        .collect();
    Encoders::from_json(&format!(
        r#"{{"categorical":[{}],"numeric":[{}]}}"#,
        cats.join(","),
        nums.join(",")
    ))
    .expect("bench encoders")
}

/// Zipf-like ids (rank = floor(u^-1.5)) scattered over the table, labels at ~30% / ~10%.
fn dataset(vocab: usize, rows: usize, stages: usize) -> Dataset {
    let mut r = Rng::stream(1, "bench");
    let mut id = || {
        let rank = (r.uniform().max(1e-12).powf(-1.5) as u64).min(vocab as u64 - 4);
        3 + (rank.wrapping_mul(2_654_435_761) % (vocab as u64 - 3)) as u32
    };
    let cat = (0..FIELDS)
        .map(|_| (0..rows).map(|_| id()).collect())
        .collect();
    let mut r = Rng::stream(2, "bench");
    let num = (0..NUMERIC)
        .map(|_| (0..rows).map(|_| r.normal() as f32).collect())
        .collect();
    let mut reached: Vec<Vec<u8>> = Vec::new();
    for k in 0..stages {
        let col = (0..rows)
            .map(|i| {
                let prev = if k == 0 { 1 } else { reached[k - 1][i] };
                prev & (r.uniform() < 0.3) as u8
            })
            .collect();
        reached.push(col);
    }
    Dataset {
        split: funnel::data::Split::Train,
        file: "bench".into(),
        rows,
        cat,
        num,
        bags: Vec::new(),
        truncated: Vec::new(),
        reached,
        own: Vec::new(),
        truth: Vec::new(),
        groups: Vec::new(),
        dropped: vec![0; stages],
    }
}

/// One training step per iteration, on a worker of a 2-thread pool as in `funnel train`. The
/// model is built once, and only when the benchmark is selected (criterion calls the closure once
/// per sample).
fn bench_steps(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    pool: &rayon::ThreadPool,
    id: BenchmarkId,
    stages: usize,
    vocab: usize,
    batch: usize,
) {
    let mut state = None;
    let mut i = 0;
    g.bench_function(id, |b| {
        let (model, dense, d, drop, path) = state.get_or_insert_with(|| {
            let p = pipeline(stages);
            let model = FunnelModel::new(&p, &encoders(vocab)).expect("model");
            let dense =
                DenseOptimizer::new(model.params().vars(), &p.train.optimizer).expect("opt");
            let path = Path::for_model(&model);
            (
                model,
                dense,
                dataset(vocab, batch * 8, stages),
                Rng::stream(3, "dropout"),
                path,
            )
        });
        b.iter(|| {
            let start = (i % 8) * batch;
            i += 1;
            let rows = d.batch_range(start, start + batch);
            pool.install(|| {
                step(
                    model,
                    dense,
                    &rows,
                    drop,
                    *path,
                    None,
                    &funnel::collective::Single,
                )
                .expect("step")
            })
        })
    });
}

fn train_step(c: &mut Criterion) {
    funnel::runtime::init();
    let pool = funnel::runtime::pool(2).expect("thread pool");
    let mut g = c.benchmark_group("train_step_vocab");
    g.sample_size(20);
    for vocab in [10_000usize, 100_000, 1_000_000, 10_000_000] {
        bench_steps(
            &mut g,
            &pool,
            BenchmarkId::new("two_stage", vocab),
            2,
            vocab,
            BATCH,
        );
    }
    g.finish();
    let mut g = c.benchmark_group("train_step_depth");
    g.sample_size(20);
    for stages in 2..=6 {
        bench_steps(
            &mut g,
            &pool,
            BenchmarkId::new("vocab_100k", stages),
            stages,
            100_000,
            BATCH,
        );
    }
    g.finish();
    let mut g = c.benchmark_group("train_step_batch");
    g.sample_size(20);
    for batch in [256usize, 512, 1024, 2048, 4096, 8192] {
        g.throughput(criterion::Throughput::Elements(batch as u64));
        let id = BenchmarkId::new("two_stage_vocab_100k", batch);
        bench_steps(&mut g, &pool, id, 2, 100_000, batch);
    }
    g.finish();
}

// The sink returns the crate's `Result`, whose error carries a path and a hint.
#[allow(clippy::result_large_err)]
fn predict(c: &mut Criterion) {
    let pool = funnel::runtime::pool(2).expect("thread pool");
    let p = pipeline(2);
    let model = FunnelModel::new(&p, &encoders(100_000)).expect("model");
    let d = dataset(100_000, 200_000, 2);
    let mut g = c.benchmark_group("predict");
    g.sample_size(10);
    g.bench_function("two_stage_200k_rows", |b| {
        b.iter(|| {
            pool.install(|| {
                let mut n = 0;
                funnel::scoring::score(&model, &d, 8192, |_, logits| {
                    n += logits.len();
                    Ok(())
                })
                .expect("predict");
                n
            })
        })
    });
    g.finish();
}

fn auc(c: &mut Criterion) {
    let mut r = Rng::stream(4, "auc");
    let mut g = c.benchmark_group("auc_exact");
    g.sample_size(10);
    for n in [1_000_000usize, 10_000_000] {
        let scores: Vec<f64> = (0..n).map(|_| r.uniform()).collect();
        let labels: Vec<u8> = (0..n).map(|_| (r.uniform() < 0.1) as u8).collect();
        g.bench_function(BenchmarkId::new("rows", n), |b| {
            b.iter(|| funnel::metrics::auc(&scores, &labels))
        });
    }
    g.finish();
}

/// The machine's GEMM rate on the towers' first-layer shape (2048 x 132 x 128, as candle runs it
/// inside a 2-thread pool): the yardstick for "percent of GEMM peak".
fn gemm(c: &mut Criterion) {
    funnel::runtime::init();
    let pool = funnel::runtime::pool(2).expect("thread pool");
    let dev = candle_core::Device::Cpu;
    let mut r = Rng::stream(5, "gemm");
    let mut t = |m: usize, n: usize| {
        let v: Vec<f32> = (0..m * n).map(|_| r.normal() as f32).collect();
        candle_core::Tensor::from_vec(v, (m, n), &dev).expect("tensor")
    };
    let (x, w) = (t(BATCH, 132), t(132, 128));
    let mut g = c.benchmark_group("gemm");
    g.throughput(criterion::Throughput::Elements(
        (2 * BATCH * 132 * 128) as u64,
    ));
    g.bench_function("2048x132x128_flops", |b| {
        b.iter(|| pool.install(|| x.matmul(&w).expect("matmul")))
    });
    g.finish();
}

/// Assembling a shuffled training batch from 1.8M encoded rows (random gathers per column).
fn batch_assembly(c: &mut Criterion) {
    let rows = 1_800_000;
    let d = dataset(1_000_000, rows, 2);
    let order = Rng::stream(6, "order").permutation(rows);
    let mut i = 0;
    c.bench_function("batch/shuffled_2048_of_1.8M", |b| {
        b.iter(|| {
            let start = (i * BATCH) % (rows - BATCH);
            i += 1;
            d.batch(&order[start..start + BATCH])
        })
    });
}

/// Ingestion (read + encode, `data::prepare`) of 1M rows of the reference data, from Parquet
/// and from CSV: the data the reference benchmark trains on, written by the generator.
fn ingest(c: &mut Criterion) {
    funnel::runtime::init();
    let pool = funnel::runtime::pool(2).expect("thread pool");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = funnel::generate::Spec::load(&root.join("pipelines/generate/reference.yaml"))
        .expect("reference spec");
    let pipeline_text = std::fs::read_to_string(root.join("pipelines/bench/reference.yaml"))
        .expect("reference pipeline");
    let rows = 1_000_000u64;
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Elements(rows));
    for ext in ["parquet", "csv"] {
        let data = dir.path().join(format!("reference.{ext}"));
        pool.install(|| funnel::generate::generate(&spec, rows, &data, 131_072).expect("generate"));
        let text = pipeline_text.replace(
            "../../data/synthetic/reference.parquet",
            &data.display().to_string(),
        );
        let yaml = dir.path().join(format!("{ext}.yaml"));
        std::fs::write(&yaml, text).expect("write pipeline");
        let p = Pipeline::load(&yaml).expect("pipeline");
        g.bench_function(BenchmarkId::new("reference_1M_rows", ext), |b| {
            b.iter(|| pool.install(|| funnel::data::prepare(&p).expect("prepare")))
        });
    }
    g.finish();
}

/// The data fingerprint (`data::DataFingerprint`): SHA-256 of a 256 MiB file in the page
/// cache, as `prepare` hashes every data file beside reading it. Bytes per second, so the cost
/// of a 1 GB file is 1 GB over the measured rate.
fn fingerprint(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data.bin");
    let mut r = funnel::rng::Rng::stream(3, "fingerprint-bench");
    let bytes: Vec<u8> = (0..256usize << 20).map(|_| r.below(256) as u8).collect();
    std::fs::write(&path, &bytes).expect("write");
    let mut g = c.benchmark_group("fingerprint");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Bytes(bytes.len() as u64));
    g.bench_function("sha256_file_256MiB", |b| {
        b.iter(|| funnel::fsutil::sha256_file(&path).expect("hash"))
    });
    g.finish();
}

/// The metrics' side of evaluation: every stage's probabilities of 200k scored rows (two stages,
/// in batches of 8192, as `eval` pushes them) into the accumulators, then the exact metrics.
fn metrics(c: &mut Criterion) {
    let p = pipeline(2);
    let mut r = Rng::stream(6, "metrics");
    let rows = 200_000;
    let logits: Vec<f32> = (0..rows * 2).map(|_| (2.0 * r.normal()) as f32).collect();
    let click: Vec<u8> = (0..rows).map(|_| (r.uniform() < 0.2) as u8).collect();
    let buy: Vec<u8> = click
        .iter()
        .map(|&c| c & (r.uniform() < 0.1) as u8)
        .collect();
    let reached = vec![click, buy];
    let names = vec!["s0".to_string(), "s1".to_string()];
    let mut g = c.benchmark_group("metrics");
    g.sample_size(10);
    g.bench_function("push_finish_200k_rows_two_stages", |b| {
        b.iter(|| {
            let mut acc = funnel::metrics::StageAccumulators::new(2, false);
            for (i, chunk) in logits.chunks(8192 * 2).enumerate() {
                let start = i * 8192;
                acc.push(
                    &p.funnel,
                    start..start + chunk.len() / 2,
                    chunk,
                    &reached,
                    None,
                )
                .unwrap();
            }
            acc.finish(&p.funnel, &names).unwrap()
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    train_step,
    predict,
    metrics,
    auc,
    gemm,
    batch_assembly,
    ingest,
    fingerprint
);
criterion_main!(benches);
