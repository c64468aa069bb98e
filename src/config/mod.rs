//! Pipeline configuration: strict YAML parsing with located errors, validation, and the validated
//! `Pipeline`. The only module that parses YAML; code outside it never sees the raw structs.

mod check;
mod choices;
mod locate;
mod pipeline;
pub mod raw;

pub use choices::*;
pub use locate::Locator;
pub use pipeline::*;

use std::path::Path;

use crate::error::{Error, Result, YamlSpot};

/// Parse YAML into a strict serde type, turning serde's message into a located, hinted error.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(file: &Path, text: &str) -> Result<T> {
    serde_yaml::from_str(text).map_err(|e| yaml_error(file, &e))
}

fn yaml_error(file: &Path, e: &serde_yaml::Error) -> Error {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((1, 1));
    let full = e.to_string();
    let body = match full.rfind(" at line ") {
        Some(cut) => &full[..cut],
        None => full.as_str(),
    };
    // serde_yaml prefixes the YAML path (`stages[0].label: ...`) when it knows it.
    let (path, message) = match body.split_once(": ") {
        Some((p, m)) if !p.is_empty() && !p.contains(' ') => (p.to_string(), m.to_string()),
        _ => (".".to_string(), body.to_string()),
    };
    let hint = if message.starts_with("unknown field") {
        "remove the key or fix its spelling; the accepted keys are listed after `expected`"
    } else if message.starts_with("missing field") {
        "add the key (docs/pipeline.md lists every key)"
    } else if message.starts_with("unknown variant") {
        "use one of the listed values"
    } else if message.starts_with("invalid type") {
        "check the value's type against docs/pipeline.md"
    } else {
        "check the YAML syntax around this spot"
    };
    Error::Config {
        spot: YamlSpot {
            file: file.to_path_buf(),
            line,
            column,
            path,
        },
        message,
        hint: Some(hint.into()),
    }
}
