//! Pipeline configuration: strict YAML parsing with located errors, validation, and the validated
//! `Pipeline`. The only module that parses YAML; code outside it never sees the raw structs.

mod check;
mod choices;
mod faults;
mod feature_specs;
mod load;
mod locate;
mod overrides;
mod pipeline;
pub mod raw;

pub use check::usable_name;
pub use choices::*;
pub use locate::Locator;
pub use overrides::Override;
pub use pipeline::*;

use std::path::Path;

use crate::error::{Error, Result, YamlSpot};

/// Parse YAML into a strict serde type, turning serde's message into a located, hinted error.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(file: &Path, text: &str) -> Result<T> {
    serde_yaml::from_str(text).map_err(|e| yaml_error(file, text, &e))
}

fn yaml_error(file: &Path, text: &str, e: &serde_yaml::Error) -> Error {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((1, 1));
    let full = e.to_string();
    let body = match full.rfind(" at line ") {
        Some(cut) => &full[..cut],
        None => full.as_str(),
    };
    // libyaml repeats the place inside its own text ("did not find expected ',' or '}' at line
    // 17 column 16, while parsing a flow mapping"): the spot says it already.
    let body = match body.find(" at line ").zip(body.find(", while ")) {
        Some((at, rest)) if at < rest => format!("{}{}", &body[..at], &body[rest..]),
        _ => body.to_string(),
    };
    let body = body.as_str();
    // serde_yaml prefixes the YAML path (`stages[0].label: ...`) when it knows it.
    let (path, message) = match body.split_once(": ") {
        Some((p, m)) if !p.is_empty() && !p.contains(' ') => (p.to_string(), m.to_string()),
        _ => (".".to_string(), body.to_string()),
    };
    let suggestion = suggest(&message);
    let tab = text
        .lines()
        .nth(line.saturating_sub(1))
        .is_some_and(|l| l.trim_end().starts_with([' ', '\t']) && l.contains('\t'));
    // A key indented further than the key above it continues that key's plain value: serde
    // then reports the value's type, but the fault is the indentation.
    let indent = |l: &str| l.len() - l.trim_start().len();
    let lines: Vec<&str> = text.lines().collect();
    let runs_on = message.starts_with("invalid type: string")
        && lines.get(line.saturating_sub(1)).is_some_and(|here| {
            lines[line..]
                .iter()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|next| indent(next) > indent(here) && here.contains(": "))
        });
    let hint = if let Some(s) = &suggestion {
        s.as_str()
    } else if runs_on {
        "the next line is indented further than this key, so YAML read it as part of this value: keys of one block must line up"
    } else if tab {
        "this line is indented with a tab: YAML allows only spaces for indentation"
    } else if full.contains("while parsing a flow") || message.contains("cannot start any token") {
        "a value holding `#`, `: `, `,`, `[`, `]`, `{`, `}`, or starting with `-`, `@`, `*`, `&`, `!`, must be quoted: `name: \"a: b\"`"
    } else if message.contains("mapping values are not allowed")
        || message.contains("did not find expected")
    {
        "check the indentation: keys of one block must line up, and a nested block is indented further than its key"
    } else if message.starts_with("unknown field") {
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

/// For serde's "unknown field `x`, expected one of `a`, `b`" (or "unknown variant"), a "did you
/// mean" hint naming the closest accepted spelling, when one is within two edits.
fn suggest(message: &str) -> Option<String> {
    let (kind, rest) = ["unknown field `", "unknown variant `"]
        .iter()
        .find_map(|k| message.strip_prefix(k).map(|r| (*k, r)))?;
    let (given, rest) = rest.split_once('`')?;
    let accepted: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let (best, d) = accepted
        .iter()
        .map(|a| (*a, edit_distance(given, a)))
        .min_by_key(|&(_, d)| d)?;
    let what = if kind.contains("field") {
        "key"
    } else {
        "value"
    };
    (d <= 2 && d < given.chars().count()).then(|| {
        format!("did you mean `{best}`? (the accepted {what}s are listed after `expected`)")
    })
}

/// Levenshtein distance between two strings, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (diag + usize::from(ca != cb)).min(up + 1).min(row[j] + 1);
            diag = up;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances_by_hand() {
        assert_eq!(edit_distance("epoch", "epochs"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("früh", "fruh"), 1);
    }

    #[test]
    fn suggestions_name_the_closest_key_or_value() {
        let m = "unknown field `epoch`, expected one of `epochs`, `batch_size`, `seed`";
        assert_eq!(
            suggest(m).as_deref(),
            Some("did you mean `epochs`? (the accepted keys are listed after `expected`)")
        );
        let m = "unknown variant `adamm`, expected `adam` or `adamw`";
        assert!(suggest(m).unwrap().starts_with("did you mean `adam`?"));
        assert_eq!(
            suggest("unknown field `zzzzzz`, expected `epochs` or `seed`"),
            None
        );
    }
}
