//! Loading a pipeline: the file read, parsed with every structural fault gathered
//! (`faults`), checked for meaning (`check`), and, with overrides, each fault blamed on the
//! override that set the value or placed in the file where the key is.

use std::path::Path;

use serde_yaml::Value;

use super::check::Checker;
use super::locate::Locator;
use super::overrides::Override;
use super::pipeline::Pipeline;
use crate::error::{Error, Result};

impl Pipeline {
    /// Read, parse and validate a pipeline file. Data files are not opened.
    pub fn load(file: &Path) -> Result<Pipeline> {
        let text = read_pipeline(file)?;
        Self::from_text(file, &text)
    }

    pub fn from_text(file: &Path, text: &str) -> Result<Pipeline> {
        let mut parsed = super::faults::parse_pipeline(file, text);
        let mut faults = std::mem::take(&mut parsed.faults);
        let raw = parsed.raw.take();
        let loc = Locator::new(file, text);
        let base = file.parent().unwrap_or(Path::new("."));
        // The checks of meaning run even after structural faults (on the document without the
        // faulty keys), so one load reports both kinds; such a pipeline is never returned.
        match raw.map(|raw| Checker::new(&loc, base).pipeline(raw, file)) {
            Some(Ok(p)) if faults.is_empty() => return Ok(p),
            Some(Err(e)) => {
                let all = match e {
                    Error::Several(all) => all,
                    e => vec![e],
                };
                // Checks beside a key set aside for its type judged the default that stood in.
                faults.extend(all.into_iter().filter(|e| match e {
                    Error::Config { spot, .. } => !parsed.shadowed(&spot.path),
                    _ => true,
                }));
            }
            _ => {}
        }
        // Top to bottom through the file.
        faults.sort_by_key(|e| match e {
            Error::Config { spot, .. } => (spot.line, spot.column),
            _ => (usize::MAX, usize::MAX),
        });
        crate::error::gather(faults)?;
        Err(Error::Internal(
            "a pipeline failed to load without a fault".into(),
        ))
    }
    /// Load a pipeline file with overrides applied. Errors point at the file where the key is
    /// in it, and say which override set the value.
    pub fn load_with(file: &Path, overrides: &[Override]) -> Result<Pipeline> {
        if overrides.is_empty() {
            return Pipeline::load(file);
        }
        let text = read_pipeline(file)?;
        let mut doc: Value = super::parse_yaml(file, &text)?;
        let mut set = Vec::new();
        for o in overrides {
            set.push((o.apply(&mut doc)?, o));
        }
        let merged = serde_yaml::to_string(&doc)
            .map_err(|e| Error::Internal(format!("cannot write the overridden pipeline: {e}")))?;
        let loc = Locator::new(file, &text);
        Pipeline::from_text(file, &merged).map_err(|e| match e {
            Error::Several(all) => {
                let mut all: Vec<Error> = all.into_iter().map(|e| in_file(e, &loc, &set)).collect();
                // The overrides' faults first, then the file's top to bottom (the lines were
                // the merged document's until now).
                all.sort_by_key(|e| match e {
                    Error::Config { spot, .. } => (1, spot.line, spot.column),
                    Error::Usage(_) => (0, 0, 0),
                    _ => (2, 0, 0),
                });
                Error::Several(all)
            }
            e => in_file(e, &loc, &set),
        })
    }
}

/// An error about the overridden document. A value an override set is blamed on the override
/// (the last one that set it or a key above it), not on a line of the file that does not hold
/// it; any other is placed in the file where the key is.
fn in_file(e: Error, loc: &Locator, set: &[(String, &Override)]) -> Error {
    match e {
        Error::Config {
            spot,
            message,
            hint,
        } => {
            let from = set.iter().rev().find(|(p, _)| {
                spot.path == *p
                    || spot.path.starts_with(&format!("{p}."))
                    || spot.path.starts_with(&format!("{p}["))
            });
            match from {
                Some((_, o)) => {
                    let replaced = loc
                        .exact(&spot.path)
                        .map(|(line, column)| {
                            format!(
                                " (it replaces the value at {}:{line}:{column})",
                                loc.file().display()
                            )
                        })
                        .unwrap_or_default();
                    Error::Usage(format!(
                        "{}: `{}`: {message}{replaced}{}",
                        o.shown(),
                        spot.path,
                        hint.map(|h| format!("\n  hint: {h}")).unwrap_or_default()
                    ))
                }
                None => Error::Config {
                    spot: loc.spot(&spot.path),
                    message,
                    hint,
                },
            }
        }
        other => other,
    }
}

/// A pipeline file's text; a missing file or one that is not text says what to give.
fn read_pipeline(file: &Path) -> Result<String> {
    std::fs::read_to_string(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Usage(format!(
            "{}: no such pipeline file\n  hint: give the path of a pipeline YAML file (pipelines/ holds examples; `funnel init DATA --stages ...` writes one)",
            file.display()
        )),
        std::io::ErrorKind::InvalidData => Error::Usage(format!(
            "{}: not a UTF-8 text file\n  hint: a pipeline is a YAML text file",
            file.display()
        )),
        _ => Error::io(file, e),
    })
}
