//! Shared by the ingestion targets: write the input to a file and prepare a pipeline on it.

use std::path::PathBuf;

/// A file of this process for the fuzz input (one per target and process).
pub fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("funnel-fuzz-{}-{name}", std::process::id()))
}

/// Read, label, fit and encode `file` with a pipeline over columns a (categorical), b
/// (numeric) and y, z (two 0/1 stages), with a carved validation split: an error or splits,
/// never a panic.
pub fn prepare(file: &std::path::Path, format: &str) {
    let yaml = format!(
        "name: fuzz\ndata:\n  train: {{ path: {}, format: {format} }}\n  valid: {{ split_from: train, fraction: 0.3 }}\nfeatures:\n  categorical: [{{ name: a }}]\n  numeric: [{{ name: b }}, {{ name: q, column: b, transform: quantile_buckets, buckets: 4 }}]\nstages:\n  - {{ name: y, label: {{ column: y }} }}\n  - {{ name: z, label: {{ column: z }} }}\n",
        file.display()
    );
    let p = funnel::config::Pipeline::from_text(std::path::Path::new("fuzz.yaml"), &yaml)
        .expect("the fuzz pipeline is valid");
    let _ = funnel::data::prepare(&p);
}
