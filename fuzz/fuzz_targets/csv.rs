//! Any bytes after a CSV header `a,b,y,z`: read, labelled, encoded, or refused; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let file = common::scratch("input.csv");
    let mut bytes = b"a,b,y,z\n".to_vec();
    bytes.extend_from_slice(data);
    std::fs::write(&file, bytes).expect("write the fuzz input");
    common::prepare(&file, "csv");
});
