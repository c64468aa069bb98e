//! Command-line overrides of pipeline keys (`--set train.epochs=3`, `--set
//! stages.conversion.tower.hidden=[32]`): applied to the file's YAML before validation, so an
//! override is checked like the file and recorded in the resolved pipeline. A path's segments
//! are keys, `[i]` indices, or, in a list of named items (stages, features), an item's name.

use std::path::Path;

use serde_yaml::Value;

use super::locate::Locator;
use super::pipeline::Pipeline;
use crate::error::{Error, Result};

/// One `--set` argument.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The argument as given, for messages.
    pub text: String,
    segments: Vec<Segment>,
    value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Segment {
    Key(String),
    Index(usize),
}

/// The segments of a path `a.b[1].c`: keys and `[i]` indices; why not, when it is not one.
pub(super) fn segments(path: &str) -> std::result::Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if !key.is_empty() {
            segments.push(Segment::Key(key.to_string()));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let (index, after) = inner
                .split_once(']')
                .ok_or_else(|| "a `[` without its `]`".to_string())?;
            let i = index
                .parse()
                .map_err(|_| format!("`[{index}]` is not an index"))?;
            segments.push(Segment::Index(i));
            rest = after;
        }
        if !rest.is_empty() || (key.is_empty() && part.is_empty()) {
            return Err(format!("`{part}` is not a key"));
        }
    }
    Ok(segments)
}

fn usage(text: &str, why: &str) -> Error {
    Error::Usage(format!(
        "--set {text}: {why}\n  hint: write `--set KEY.PATH=VALUE`, e.g. `--set train.epochs=3` or `--set stages.conversion.tower.hidden=[32]`"
    ))
}

impl Override {
    /// Parse `a.b[1].c=VALUE`; the value is read as YAML (`3`, `[32, 16]`, `true`, `text`).
    pub fn parse(text: &str) -> Result<Override> {
        let (path, value) = text
            .split_once('=')
            .ok_or_else(|| usage(text, "no `=` between the key and the value"))?;
        if path.trim().is_empty() {
            return Err(usage(text, "no key before `=`"));
        }
        let segments = segments(path).map_err(|why| usage(text, &why))?;
        let value: Value = serde_yaml::from_str(value)
            .map_err(|e| usage(text, &format!("the value is not YAML: {e}")))?;
        Ok(Override {
            text: text.to_string(),
            segments,
            value,
        })
    }

    /// The dotted YAML path this override sets, with indices resolved in `doc`.
    fn apply(&self, doc: &mut Value) -> Result<String> {
        let mut node = doc;
        let mut path = String::new();
        for seg in &self.segments {
            node = match (seg, node) {
                (Segment::Key(k), Value::Sequence(items)) => {
                    let i = items
                        .iter()
                        .position(|it| it.get("name").and_then(Value::as_str) == Some(k))
                        .ok_or_else(|| {
                            usage(&self.text, &format!("`{path}` has no item named `{k}`"))
                        })?;
                    path.push_str(&format!("[{i}]"));
                    &mut items[i]
                }
                (Segment::Key(k), node) => {
                    if node.is_null() {
                        *node = Value::Mapping(Default::default());
                    }
                    let Value::Mapping(map) = node else {
                        return Err(usage(
                            &self.text,
                            &format!("`{path}` is not a block of keys"),
                        ));
                    };
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    map.entry(Value::String(k.clone())).or_insert(Value::Null)
                }
                (Segment::Index(i), Value::Sequence(items)) => {
                    let len = items.len();
                    path.push_str(&format!("[{i}]"));
                    items.get_mut(*i).ok_or_else(|| {
                        usage(&self.text, &format!("`{path}`: the list has {len} items"))
                    })?
                }
                (Segment::Index(_), _) => {
                    return Err(usage(&self.text, &format!("`{path}` is not a list")));
                }
            };
        }
        *node = self.value.clone();
        Ok(path)
    }
}

impl Pipeline {
    /// Load a pipeline file with overrides applied. Errors point at the file where the key is
    /// in it, and say which override set the value.
    pub fn load_with(file: &Path, overrides: &[Override]) -> Result<Pipeline> {
        if overrides.is_empty() {
            return Pipeline::load(file);
        }
        let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
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
                Error::Several(all.into_iter().map(|e| in_file(e, &loc, &set)).collect())
            }
            e => in_file(e, &loc, &set),
        })
    }
}

/// An error about the overridden document, placed in the file (where the key is in it) and
/// naming the override that set the value.
fn in_file(e: Error, loc: &Locator, set: &[(String, &Override)]) -> Error {
    match e {
        Error::Config {
            spot,
            message,
            hint,
        } => {
            let from = set.iter().find(|(p, _)| {
                spot.path == *p
                    || spot.path.starts_with(&format!("{p}."))
                    || spot.path.starts_with(&format!("{p}["))
            });
            let message = match from {
                Some((_, o)) => format!("{message} (set by `--set {}`)", o.text),
                None => message,
            };
            Error::Config {
                spot: loc.spot(&spot.path),
                message,
                hint,
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn paths_keys_indices_and_names() {
        let mut d = doc(
            "train: { epochs: 5 }\nstages:\n  - { name: click, tower: { hidden: [8] } }\n  - { name: buy }\n",
        );
        let set = |d: &mut Value, s: &str| Override::parse(s).unwrap().apply(d).unwrap();
        assert_eq!(set(&mut d, "train.epochs=3"), "train.epochs");
        assert_eq!(
            set(&mut d, "stages.buy.tower.hidden=[32, 16]"),
            "stages[1].tower.hidden"
        );
        assert_eq!(
            set(&mut d, "stages[0].loss_weight=0.5"),
            "stages[0].loss_weight"
        );
        assert_eq!(set(&mut d, "model.preset=aitm"), "model.preset");
        assert_eq!(
            d,
            doc(
                "train: { epochs: 3 }\nstages:\n  - { name: click, tower: { hidden: [8] }, loss_weight: 0.5 }\n  - { name: buy, tower: { hidden: [32, 16] } }\nmodel: { preset: aitm }\n"
            )
        );
    }

    #[test]
    fn bad_overrides_say_why() {
        let msg = |s: &str| {
            let mut d = doc("stages: [{ name: click }]\ntrain: { epochs: 1 }\n");
            match Override::parse(s) {
                Ok(o) => o.apply(&mut d).unwrap_err().to_string(),
                Err(e) => e.to_string(),
            }
        };
        assert!(msg("train.epochs").contains("no `=`"));
        assert!(msg("=3").contains("no key before `=`"));
        assert!(msg("stages.buy.loss_weight=1").contains("`stages` has no item named `buy`"));
        assert!(msg("stages[3].name=x").contains("the list has 1 items"));
        assert!(msg("train.epochs.x=1").contains("`train.epochs` is not a block of keys"));
        assert!(msg("a..b=1").contains("is not a key"));
    }
}
