//! Any text given as a pipeline file: an error or a pipeline, never a panic; and a pipeline's
//! resolved YAML (what a run directory stores) loads again.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("fuzz.yaml");
    if let Ok(p) = funnel::config::Pipeline::from_text(file, text) {
        let resolved = p.resolved_yaml().expect("a loaded pipeline resolves");
        funnel::config::Pipeline::from_text(file, &resolved)
            .expect("the resolved pipeline loads again");
    }
});
