//! The names and values `init` writes: the `--stages` arguments, usable names made from
//! column names, YAML scalars that read back as the same text, and yes/no words.

use std::fmt::Write as _;

use crate::config::usable_name;
use crate::error::{Error, Result};

/// One stage as asked: `name`, `name=column` or `name=column:positive|positive`.
#[derive(Debug, Clone, PartialEq)]
pub struct StageArg {
    pub name: String,
    pub column: String,
    pub positive: Vec<String>,
}

impl StageArg {
    pub fn parse(text: &str) -> Result<StageArg> {
        let (name, rest) = text.split_once('=').unwrap_or((text, text));
        let (column, positive) = match rest.split_once(':') {
            Some((c, p)) => (c, p.split('|').map(str::to_string).collect()),
            None => (rest, Vec::new()),
        };
        if name.is_empty() || column.is_empty() {
            return Err(Error::Usage(format!(
                "--stages {text}: write `name`, `name=column` or `name=column:positive|positive`"
            )));
        }
        // The rule `validate` applies to `stages[i].name` (config::check::check_name).
        if !usable_name(name) {
            return Err(Error::Usage(format!(
                "--stages {text}: stage name {name:?} is not usable\n  hint: names may hold letters, digits, `_` and `-`; name the stage and give its column: `--stages {}={column}`",
                name_for(name)
            )));
        }
        Ok(StageArg {
            name: name.to_string(),
            column: column.to_string(),
            positive,
        })
    }
}

/// A usable name made from a column name: every other character becomes `_`.
pub(super) fn name_for(column: &str) -> String {
    let n: String = column
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if n.chars().all(|c| c == '_') {
        format!("f{n}")
    } else {
        n
    }
}

/// `s` as a YAML scalar that reads back as the string `s`: plain when that is safe, else
/// double-quoted with escapes (`#`, `: `, a leading `-`, `@`, `[`, `{`, `true`, `null`,
/// `123`, control characters and the rest of YAML's syntax are all safe inside quotes).
pub(super) fn yq(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_alphanumeric() || "_-./".contains(c))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "nan" | "inf"
        );
    if plain {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || c == '\u{feff}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A two-valued label's positive value when both values are yes/no words (`yes`/`no`,
/// `true`/`false`, `Y`/`N`, `t`/`f`, any case): the "yes" one, whichever is rarer.
pub(super) fn yes_of(values: &[(String, usize)]) -> Option<String> {
    let word = |v: &str| match v.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "t" => Some(true),
        "no" | "n" | "false" | "f" => Some(false),
        _ => None,
    };
    match values {
        [(a, _), (b, _)] => match (word(a), word(b)) {
            (Some(true), Some(false)) => Some(a.clone()),
            (Some(false), Some(true)) => Some(b.clone()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_arguments() {
        assert_eq!(
            StageArg::parse("click").unwrap(),
            StageArg {
                name: "click".into(),
                column: "click".into(),
                positive: vec![]
            }
        );
        assert_eq!(
            StageArg::parse("buy=Y:>50K|>50K.").unwrap(),
            StageArg {
                name: "buy".into(),
                column: "Y".into(),
                positive: vec![">50K".into(), ">50K.".into()]
            }
        );
        assert!(StageArg::parse("=Y").is_err());
    }
}
