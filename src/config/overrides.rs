//! Command-line overrides of pipeline keys (`--set train.epochs=3`, `--set
//! stages.conversion.tower.hidden=[32]`): applied to the file's YAML before validation, so an
//! override is checked like the file and recorded in the resolved pipeline. A path's segments
//! are keys, `[i]` indices, or, in a list of named items (stages, features), an item's name.

use serde_yaml::Value;

use crate::error::{Error, Result};

/// One `--set` argument.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The argument as given, for messages.
    pub text: String,
    /// Where it was given: `None` for `--set`, or the `compare` argument
    /// (`esmm.yaml@model.preset=naive`) it is part of.
    origin: Option<String>,
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

/// How an override is named in messages: `--set KEY=VALUE`, or `@KEY=VALUE` of a compare
/// argument.
fn shown(text: &str, origin: Option<&str>) -> String {
    match origin {
        None => format!("--set {text}"),
        Some(arg) => format!("`@{text}` (in the compare argument `{arg}`)"),
    }
}

const FORM: &str =
    "write KEY.PATH=VALUE, e.g. `train.epochs=3` or `stages.conversion.tower.hidden=[32]`";

fn usage(shown: &str, why: &str, hint: &str) -> Error {
    Error::Usage(format!("{shown}: {why}\n  hint: {hint}"))
}

impl Override {
    /// Parse a `--set` argument `a.b[1].c=VALUE`; the value is read as YAML (`3`, `[32, 16]`,
    /// `true`, `text`).
    pub fn parse(text: &str) -> Result<Override> {
        Self::parse_from(text, None)
    }

    /// Parse an override that is part of the compare argument `arg` (`FILE@KEY=VALUE`).
    pub fn parse_in(text: &str, arg: &str) -> Result<Override> {
        Self::parse_from(text, Some(arg))
    }

    fn parse_from(text: &str, origin: Option<&str>) -> Result<Override> {
        let me = shown(text, origin);
        let (path, value) = text
            .split_once('=')
            .ok_or_else(|| usage(&me, "no `=` between the key and the value", FORM))?;
        if path.trim().is_empty() {
            return Err(usage(&me, "no key before `=`", FORM));
        }
        let segments = segments(path).map_err(|why| usage(&me, &why, FORM))?;
        let value: Value = serde_yaml::from_str(value).map_err(|e| {
            usage(
                &me,
                &format!("the value is not YAML: {e}"),
                "quote text with YAML's signs in it (`x=\"a: b\"`); a list is `[1, 2]`",
            )
        })?;
        Ok(Override {
            text: text.to_string(),
            origin: origin.map(str::to_string),
            segments,
            value,
        })
    }

    /// How messages name this override.
    pub fn shown(&self) -> String {
        shown(&self.text, self.origin.as_deref())
    }

    /// The dotted YAML path this override sets, with indices resolved in `doc`.
    pub(super) fn apply(&self, doc: &mut Value) -> Result<String> {
        let mut node = doc;
        let mut path = String::new();
        for seg in &self.segments {
            node = match (seg, node) {
                (Segment::Key(k), Value::Sequence(items)) => {
                    // An item `{ name: k, ... }`, or `k` alone (a feature's short form).
                    let name = |it: &Value| {
                        it.get("name")
                            .and_then(Value::as_str)
                            .or_else(|| it.as_str())
                            .map(str::to_string)
                    };
                    let Some(i) = items.iter().position(|it| name(it).as_deref() == Some(k)) else {
                        let known: Vec<String> = items.iter().filter_map(name).collect();
                        return Err(usage(
                            &self.shown(),
                            &format!("`{path}` has no item named `{k}`"),
                            &if known.is_empty() {
                                format!(
                                    "`{path}` has no named items; use an index, e.g. `{path}[0]`"
                                )
                            } else {
                                format!(
                                    "its items are named {}; or use an index, e.g. `{path}[0]`",
                                    known
                                        .iter()
                                        .map(|n| format!("`{n}`"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            },
                        ));
                    };
                    path.push_str(&format!("[{i}]"));
                    // A short form is written out so a key can be set under it.
                    if let Some(n) = items[i].as_str().map(str::to_string) {
                        let mut m = serde_yaml::Mapping::new();
                        m.insert(Value::String("name".into()), Value::String(n));
                        items[i] = Value::Mapping(m);
                    }
                    &mut items[i]
                }
                (Segment::Key(k), node) => {
                    if node.is_null() {
                        *node = Value::Mapping(Default::default());
                    }
                    let Value::Mapping(map) = node else {
                        return Err(usage(
                            &self.shown(),
                            &format!(
                                "`{path}` is not a block of keys: it holds a value, so it has no key `{k}`"
                            ),
                            &format!("set `{path}` itself: `{path}=VALUE`"),
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
                        usage(
                            &self.shown(),
                            &format!("`{path}`: the list has {len} items"),
                            &if len == 0 {
                                "the list is empty: set the whole list instead".to_string()
                            } else {
                                format!("indices run from 0 to {}; an item can also be named (`stages.NAME.KEY=VALUE`)", len - 1)
                            },
                        )
                    })?
                }
                (Segment::Index(i), _) => {
                    return Err(usage(
                        &self.shown(),
                        &format!("`{path}` is not a list, so it has no item [{i}]"),
                        FORM,
                    ));
                }
            };
        }
        *node = self.value.clone();
        Ok(path)
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
