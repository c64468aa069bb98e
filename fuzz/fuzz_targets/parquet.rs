//! Any bytes as a Parquet file: read, labelled, encoded, or refused; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let file = common::scratch("input.parquet");
    std::fs::write(&file, data).expect("write the fuzz input");
    common::prepare(&file, "parquet");
});
