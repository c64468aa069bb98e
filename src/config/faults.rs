//! Reading a pipeline's YAML into its raw structs with every structural fault reported at once:
//! serde stops at the first unknown key or mistyped value, so each is recorded, its key set
//! aside, and the document read again, until it reads or a fault cannot be set aside.

use std::path::Path;

use serde_yaml::Value;

use super::locate::Locator;
use super::overrides::Segment;
use super::raw::RawPipeline;
use crate::error::Error;

/// At most this many structural faults are reported from one file.
const MAX_FAULTS: usize = 50;

/// A pipeline file's text read into its raw structs.
pub struct Parsed {
    /// The structs, when the text (or, after faults, the text without the faulty keys) reads.
    pub raw: Option<RawPipeline>,
    /// Every structural fault found, each at its spot in the text; empty when it read as is.
    pub faults: Vec<Error>,
    /// Keys set aside for a value of the wrong type or an unknown variant: their defaults
    /// stood in, so a check of meaning about them or a sibling says nothing reliable.
    pub mistyped: Vec<String>,
}

impl Parsed {
    /// Whether a check of meaning at `path` may stem from a default that stood in for a
    /// mistyped key: the path is that key's mapping, or another key of it.
    /// A key at the document's top shadows nothing (its siblings are whole sections); a
    /// mistyped `data.valid` also shadows the early-stopping check, which asks for it.
    pub fn shadowed(&self, path: &str) -> bool {
        let parent = |p: &str| p.rsplit_once('.').map(|(a, _)| a.to_string());
        self.mistyped.iter().any(|k| {
            let Some(mapping) = parent(k) else {
                return false;
            };
            path == mapping
                || parent(path).as_deref() == Some(mapping.as_str())
                || (k == "data.valid" && path.starts_with("train.early_stopping"))
        })
    }
}

/// Parse a pipeline file's text, finding every structural fault. After faults, the document
/// without the faulty keys is returned too, so the checks of meaning can still report theirs
/// (never to be used as a pipeline).
pub fn parse_pipeline(file: &Path, text: &str) -> Parsed {
    let first = match super::parse_yaml::<RawPipeline>(file, text) {
        Ok(raw) => {
            return Parsed {
                raw: Some(raw),
                faults: Vec::new(),
                mistyped: Vec::new(),
            };
        }
        Err(e) => at_key(e),
    };
    let mut parsed = Parsed {
        raw: None,
        faults: Vec::new(),
        mistyped: Vec::new(),
    };
    // A document that is not YAML at all has no keys to set aside.
    let Ok(mut doc) = serde_yaml::from_str::<Value>(text) else {
        parsed.faults.push(first);
        return parsed;
    };
    let loc = Locator::new(file, text);
    let mut removed: Vec<String> = Vec::new();
    let mut fault = first;
    while parsed.faults.len() < MAX_FAULTS {
        let aside = set_aside(&fault);
        let unknown =
            matches!(&fault, Error::Config { message, .. } if message.starts_with("unknown field"));
        parsed.faults.push(fault);
        let Some(path) = aside else { break };
        if !remove(&mut doc, &path) {
            break;
        }
        if !unknown {
            parsed.mistyped.push(path.clone());
        }
        removed.push(path);
        let Ok(again) = serde_yaml::to_string(&doc) else {
            break;
        };
        fault = match super::parse_yaml::<RawPipeline>(file, &again) {
            Ok(raw) => {
                parsed.raw = Some(raw);
                break;
            }
            Err(Error::Config {
                spot,
                message,
                hint,
            }) => {
                // A required key set aside is missing now: that is the first fault again.
                if let Some(key) = quoted(&message, "missing field `")
                    && removed.contains(&join(&spot.path, key))
                {
                    break;
                }
                // Placed in the file as given (the document read again is serde's own text).
                let Error::Config {
                    spot,
                    message,
                    hint,
                } = at_key(Error::Config {
                    spot,
                    message,
                    hint,
                })
                else {
                    break;
                };
                Error::Config {
                    spot: loc.spot(&spot.path),
                    message,
                    hint,
                }
            }
            Err(_) => break,
        };
    }
    parsed
}

/// A fault about an unknown key, with the key's own path (serde gives its mapping's).
fn at_key(fault: Error) -> Error {
    match fault {
        Error::Config {
            mut spot,
            message,
            hint,
        } => {
            if let Some(key) = quoted(&message, "unknown field `") {
                spot.path = join(&spot.path, key);
            }
            Error::Config {
                spot,
                message,
                hint,
            }
        }
        other => other,
    }
}

/// The YAML path of the key to set aside for a fault (placed by `at_key`), if it can be: an
/// unknown key itself, or a key whose value has the wrong type or an unknown variant.
fn set_aside(fault: &Error) -> Option<String> {
    let Error::Config { spot, message, .. } = fault else {
        return None;
    };
    let faulty = [
        "unknown field",
        "invalid type",
        "invalid value",
        "unknown variant",
        "invalid length",
    ]
    .iter()
    .any(|m| message.starts_with(m));
    (faulty && spot.path != ".").then(|| spot.path.clone())
}

/// The text between `prefix` (ending in a backquote) and the next backquote.
fn quoted<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    message.strip_prefix(prefix)?.split('`').next()
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() || parent == "." {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Remove the key at a dotted path (`stages[1].tower.hiden`); false when the path does not lead
/// to a key of a mapping (a list item is not a key: its list cannot lose it without
/// renumbering).
fn remove(doc: &mut Value, path: &str) -> bool {
    let Ok(mut segments) = super::overrides::segments(path) else {
        return false;
    };
    let Some(Segment::Key(key)) = segments.pop() else {
        return false;
    };
    let mut node = doc;
    for segment in &segments {
        let next = match (segment, node) {
            (Segment::Key(k), Value::Mapping(m)) => m.get_mut(k.as_str()),
            (Segment::Index(i), Value::Sequence(items)) => items.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else {
            return false;
        };
        node = next;
    }
    match node {
        Value::Mapping(m) => m.remove(key.as_str()).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn keys_are_removed_at_their_path() {
        let mut d = doc("a: 1\nstages:\n  - { name: x, tower: { hiden: [8], dropout: 0.1 } }\n");
        assert!(remove(&mut d, "stages[0].tower.hiden"));
        assert_eq!(
            d,
            doc("a: 1\nstages:\n  - { name: x, tower: { dropout: 0.1 } }\n")
        );
        assert!(remove(&mut d, "a"));
        assert!(!remove(&mut d, "a"), "gone already");
        assert!(!remove(&mut d, "stages[3].name"), "no such item");
        assert!(!remove(&mut d, "stages[0]"), "an item is not a key");
    }

    fn paths(p: &Parsed) -> Vec<String> {
        p.faults
            .iter()
            .map(|e| match e {
                Error::Config { spot, .. } => {
                    format!("{}:{} {}", spot.line, spot.column, spot.path)
                }
                other => other.to_string(),
            })
            .collect()
    }

    const BASE: &str = "name: x\ndata: { train: a.csv }\nfeatures: { categorical: [u] }\nstages: [{ name: c, label: c }]\n";

    #[test]
    fn faults_are_set_aside_until_the_document_reads() {
        let text = format!("{BASE}train:\n  epoch: 3\n  seed: many\n  sed: 1\n");
        let p = parse_pipeline(Path::new("p.yaml"), &text);
        // In serde's order; `Pipeline::from_text` sorts them by place.
        let mut found = paths(&p);
        found.sort();
        assert_eq!(
            found,
            ["6:3 train.epoch", "7:3 train.seed", "8:3 train.sed"]
        );
        let raw = p.raw.expect("the rest reads");
        assert_eq!(raw.train.seed, crate::config::raw::RawTrain::default().seed);
        // A clean file: no faults, the structs as read.
        let p = parse_pipeline(Path::new("p.yaml"), BASE);
        assert!(p.faults.is_empty() && p.raw.is_some());
    }

    #[test]
    fn a_required_key_set_aside_ends_the_search() {
        // `stages` is required: once set aside, its absence is the same fault, not a new one.
        let text = BASE.replace("stages: [{ name: c, label: c }]", "stages: 3");
        let p = parse_pipeline(Path::new("p.yaml"), &text);
        assert_eq!(paths(&p), ["4:9 stages"]);
        assert!(p.raw.is_none());
        // Not YAML at all: the one syntax fault.
        let p = parse_pipeline(Path::new("p.yaml"), "name: [\n");
        assert_eq!(p.faults.len(), 1);
        assert!(p.raw.is_none());
    }

    #[test]
    fn checks_beside_a_mistyped_key_are_shadowed() {
        let p = Parsed {
            raw: None,
            faults: Vec::new(),
            mistyped: vec![
                "features.numeric[0].transform".into(),
                "model.preset".into(),
            ],
        };
        assert!(p.shadowed("features.numeric[0].buckets"));
        assert!(p.shadowed("features.numeric[0]"));
        assert!(p.shadowed("model.aitm"));
        assert!(!p.shadowed("features.numeric[1].buckets"));
        assert!(!p.shadowed("train.optimizer.lr"));
        assert!(
            !p.shadowed("model.aitm.heads"),
            "a key inside a sibling holds its own value"
        );
        let top = Parsed {
            raw: None,
            faults: Vec::new(),
            mistyped: vec!["inconsistent_rows".into(), "data.valid".into()],
        };
        assert!(
            !top.shadowed("name"),
            "a top-level key shadows no other section"
        );
        assert!(top.shadowed("train.early_stopping"));
    }

    #[test]
    fn fault_paths() {
        assert_eq!(
            quoted("unknown field `epoch`, expected", "unknown field `"),
            Some("epoch")
        );
        assert_eq!(join(".", "nmae"), "nmae");
        assert_eq!(join("train", "epoch"), "train.epoch");
    }
}
