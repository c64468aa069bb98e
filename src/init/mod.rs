//! `funnel init`: a starter pipeline written from a data file. Each column is profiled (type,
//! distinct values, missing share, spread), the stages' label columns are read as the user
//! named them, and every other column becomes a feature with a default suited to it. The
//! pipeline comes with comments saying what was guessed and why.

mod bags;
mod labels;
mod profile;
mod words;

use std::fmt::Write as _;
use std::path::Path;

use crate::config::usable_name;
use crate::config::{CsvOptions, FileFormat, FileSource, format_from_extension};
use crate::error::{Error, Result};
use crate::source::Frame;
use profile::{RARE, profile, short, sniff};
pub use words::StageArg;
use words::{name_for, yq};

/// A categorical with more distinct values than this is hashed.
const HASH_ABOVE: usize = 100_000;
/// A categorical with at least this many distinct values, of which at least `TAIL_SHARE` are
/// rare (seen fewer than `RARE` times), has a long tail.
const TAIL_DISTINCT: usize = 100;
const TAIL_SHARE: f64 = 0.5;
/// Values treated as missing in a CSV.
const NULLS: [&str; 5] = ["", "?", "NA", "null", "NULL"];

/// A starter pipeline for `data` (written as `data_ref` in the YAML) with `stages`; returns the
/// YAML and the lines that say what was guessed.
pub fn starter(data: &Path, data_ref: &str, stages: &[StageArg]) -> Result<(String, Vec<String>)> {
    let format = format_from_extension(data).unwrap_or(FileFormat::Csv);
    let mut notes = Vec::new();
    // The separator, and whether cells are written `a, b` (UCI style, needing trimming), from
    // the first lines.
    let (separator, trim) = match format {
        FileFormat::Csv => sniff(data)?,
        FileFormat::Parquet => (b',', false),
    };
    let csv = CsvOptions {
        separator,
        header: true,
        null_values: NULLS.iter().map(|s| s.to_string()).collect(),
        trim_whitespace: trim,
    };
    let frame = Frame::read(
        &FileSource {
            path: data.to_path_buf(),
            format,
            csv,
        },
        None,
    )?;
    if frame.is_empty() {
        return Err(Error::data(data, "the file has a header but no rows to profile")
            .with_hint(format!(
                "init guesses each column's type from its values; give a file with data rows (the header has {} column(s): {})",
                frame.column_names().len(),
                frame.column_names().join(", ")
            )));
    }
    let names = frame.column_names();
    // Columns `true_<label>` (as `funnel generate` writes) are the stages' truth, never
    // features.
    let truth: Vec<Option<String>> = stages
        .iter()
        .map(|s| Some(format!("true_{}", s.column)).filter(|t| names.contains(t)))
        .collect();
    let mut labels: Vec<&str> = stages.iter().map(|s| s.column.as_str()).collect();
    labels.extend(truth.iter().flatten().map(String::as_str));
    for (k, s) in stages.iter().enumerate() {
        if stages[..k].iter().any(|t| t.name == s.name) {
            return Err(Error::Usage(format!(
                "--stages: stage `{}` is given twice\n  hint: give each stage its own name: `--stages first={},second=OTHER_COLUMN`",
                s.name, s.column
            )));
        }
        if !names.contains(&s.column) {
            return Err(Error::data_at(
                data,
                &s.column,
                None,
                "no such column for a stage's label",
            )
            .with_hint(format!("the file has columns: {}", names.join(", "))));
        }
    }
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Starter pipeline written by `funnel init` from {data_ref}."
    );
    let _ = writeln!(
        y,
        "# Every key is documented in docs/pipeline.md; check the guesses marked below."
    );
    let stem = data.file_stem().and_then(|s| s.to_str()).unwrap_or("data");
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let _ = writeln!(
        y,
        "name: {}\n\ndata:\n  train:\n    path: {}",
        yq(&name),
        yq(data_ref)
    );
    let fmt = if format == FileFormat::Parquet {
        "parquet"
    } else {
        "csv"
    };
    let _ = writeln!(y, "    format: {fmt}");
    if format == FileFormat::Csv {
        let nulls: Vec<String> = NULLS.iter().map(|n| format!("{n:?}")).collect();
        let sep = match separator {
            b'\t' => "\\t".to_string(),
            b => (b as char).to_string(),
        };
        let _ = writeln!(
            y,
            "    csv: {{ separator: \"{sep}\", header: true, trim_whitespace: {trim}, null_values: [{}] }}",
            nulls.join(", ")
        );
        if separator != b',' {
            notes.push(format!(
                "CSV separator: {sep:?} (the most frequent of , ; tab | in the header)"
            ));
        }
        if trim {
            notes.push("CSV cells are written `a, b`: `trim_whitespace: true`".to_string());
        }
    }
    let _ = writeln!(
        y,
        "  # Carved from the training file with the seed; give `path:` to use files of your own."
    );
    let _ = writeln!(y, "  valid: {{ split_from: train, fraction: 0.1 }}");
    let _ = writeln!(y, "  test: {{ split_from: train, fraction: 0.1 }}");

    let (mut cats, mut nums, mut lists) = (String::new(), String::new(), String::new());
    let mut bucketed: Vec<&str> = Vec::new();
    // Categorical columns with a long tail of rare values, and the share of rows in it.
    let mut tailed: Vec<String> = Vec::new();
    // Columns with two values, besides the stages' own: labels of stages not asked for?
    let mut two_valued: Vec<&str> = Vec::new();
    // Features written (comments about left-out columns do not count), and their names.
    let mut declared: Vec<String> = Vec::new();
    // `{ name: N }`, or `{ name: N, column: "C" }` when the column's name is not a usable one
    // (a space, `.`, `:`, `#`...), N then being made unique.
    let mut feature = |col: &str| -> String {
        if usable_name(col) && !declared.iter().any(|d| d == col) {
            declared.push(col.to_string());
            // Usable names can still be YAML words or signs (`true`, `null`, `-`).
            return format!("name: {}", yq(col));
        }
        let base = name_for(col);
        let mut n = base.clone();
        let mut i = 2;
        while declared.contains(&n) || names.iter().any(|c| *c == n && c != col) {
            n = format!("{base}_{i}");
            i += 1;
        }
        declared.push(n.clone());
        format!("name: {n}, column: {}", yq(col))
    };
    let stage_labels = labels::stage_labels(data, &frame, stages, &truth, &mut notes)?;
    let reached: Vec<&[u8]> = stage_labels.iter().map(|l| l.reached.as_slice()).collect();
    for col in names.iter().filter(|c| !labels.contains(&c.as_str())) {
        if let Some(b) = bags::bag_profile(&frame, col, separator)? {
            let mut keys = String::new();
            if b.text {
                let _ = write!(keys, ", separator: {}", yq(bags::SEPARATOR));
            }
            if b.weighted {
                keys += ", weight_separator: \":\", pooling: sum";
            }
            let _ = writeln!(
                lists,
                "    - {{ {}{keys} }}   # {:.1} tokens a row (at most {}), {} distinct tokens, {:.1}% empty",
                feature(col),
                b.mean_len,
                b.max_len,
                b.distinct,
                100.0 * b.empty as f64 / b.rows.max(1) as f64
            );
            notes.push(format!(
                "`{col}`: token lists: multi-valued, {}",
                if b.weighted {
                    "its `token:weight` pairs read as weights, sum pooling"
                } else {
                    "mean pooling"
                }
            ));
            continue;
        }
        let p = profile(&frame, col)?;
        if p.distinct == 2 {
            two_valued.push(col.as_str());
        }
        let share = 100.0 * p.missing as f64 / p.rows as f64;
        let miss = if p.missing > 0 {
            format!(", {share:.1}% missing")
        } else {
            String::new()
        };
        if p.distinct == p.rows && (!p.numeric || p.integer) {
            notes.push(format!("`{col}`: every value distinct: an id, left out (set `data.id_column: {col}` to carry it into predictions)"));
            let _ = writeln!(
                cats,
                "    # `{col}` left out: every value is distinct (an id)."
            );
            continue;
        }
        if let Some((k, evidence)) = labels::leak(&frame, col, p.numeric, &reached)?.first() {
            let stage = &stages[*k].name;
            notes.push(format!("`{col}`: left out: it gives stage `{stage}` away ({evidence}); a column written after the outcome leaks it (declare it with `allow_leak: true` if its value is known before)"));
            let _ = writeln!(
                cats,
                "    # `{col}` left out: it gives stage `{stage}` away on its own (a column written after the outcome?)."
            );
            continue;
        }
        // Integer ids are categories: unsigned Parquet columns, or names that say `id`.
        let lower = col.to_ascii_lowercase();
        let id_like = p.integer
            && (frame.is_unsigned(col)
                || lower == "id"
                || lower.ends_with("_id")
                || lower.ends_with("-id"));
        if id_like {
            notes.push(format!(
                "`{col}`: integer ids (unsigned, or named as an id): categorical"
            ));
        }
        if p.numeric && !id_like && (p.distinct > 20 || !p.integer) {
            // Quantile buckets: an embedding per interval learns any shape of effect, and a
            // heavy tail or a spike at zero needs no transform (on adult this beat standardised
            // inputs by 0.007-0.008 AUC, docs/models.md).
            let heavy = p.min >= 0.0 && p.max > 100.0 * p.median.max(1.0);
            let _ = writeln!(
                nums,
                "    - {{ {}, transform: quantile_buckets }}   # {} distinct, {} to {}, median {}{miss}{}",
                feature(col),
                p.distinct,
                short(p.min),
                short(p.max),
                short(p.median),
                if heavy {
                    "; heavy tail (`log1p` if standardised)"
                } else {
                    ""
                }
            );
            bucketed.push(col.as_str());
            continue;
        }
        // A long tail of rare values (ids seen once or twice) is memorised in an epoch: rare
        // values share the out-of-vocabulary row and touched rows get a small L2, the
        // combination docs/tuning.md measured best.
        let long_tail = p.distinct >= TAIL_DISTINCT && p.tail >= TAIL_SHARE;
        let tail_note = if long_tail {
            tailed.push(format!("`{col}`"));
            format!(
                "; long tail: {:.0}% of its values are seen fewer than {RARE} times ({:.0}% of rows)",
                100.0 * p.tail,
                100.0 * p.tail_rows
            )
        } else {
            String::new()
        };
        if p.distinct > HASH_ABOVE {
            let buckets = (p.distinct / 10).max(1024);
            let l2 = if long_tail { ", l2: 1.0e-4" } else { "" };
            let _ = writeln!(
                cats,
                "    - {{ {}, hash_buckets: {buckets}{l2} }}   # {} distinct{miss}{tail_note}",
                feature(col),
                p.distinct
            );
            notes.push(format!(
                "`{col}`: {} distinct values: hashed into {buckets} buckets",
                p.distinct
            ));
        } else {
            let tail = if long_tail {
                format!(", min_count: {RARE}, l2: 1.0e-4")
            } else {
                String::new()
            };
            let _ = writeln!(
                cats,
                "    - {{ {}{tail} }}   # {} distinct{miss}{tail_note}",
                feature(col),
                p.distinct
            );
        }
    }
    if !tailed.is_empty() {
        notes.push(format!(
            "long-tailed ids {}: `min_count: {RARE}` and `l2: 1.0e-4` (rare values share one row; docs/tuning.md)",
            tailed.join(", ")
        ));
    }
    if declared.is_empty() {
        let kept: Vec<&str> = stages.iter().map(|s| s.column.as_str()).collect();
        return Err(Error::data(
            data,
            format!(
                "no column is left to be a feature: the file's columns are the stages' labels ({}){}",
                kept.join(", "),
                if names.len() > kept.len() {
                    " and ids (every value distinct, left out)"
                } else {
                    ""
                }
            ),
        )
        .with_hint("a funnel model needs at least one feature column besides the labels; add one to the file, then run `funnel init` again"));
    }
    if !two_valued.is_empty() {
        notes.push(format!(
            "columns with two values, kept as features but possibly stages' labels: {} (a label used as a feature leaks; list it in --stages if it is one)",
            two_valued.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    if !bucketed.is_empty() {
        notes.push(format!(
            "numeric {}: 32 quantile buckets each (an embedding per interval; `transform: standardize` is faster)",
            bucketed.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    let _ = writeln!(
        y,
        "\nfeatures:\n  embedding_dim: 8\n  categorical:\n{}  numeric:\n{}{}",
        if cats.is_empty() {
            "    []\n".into()
        } else {
            cats
        },
        if nums.is_empty() {
            "    []\n".to_string()
        } else {
            nums
        },
        if lists.is_empty() {
            String::new()
        } else {
            format!("  multi_valued:\n{lists}")
        }
    );
    let _ = writeln!(y, "stages:");
    for (s, label) in stages.iter().zip(&stage_labels) {
        let _ = writeln!(
            y,
            "  - name: {}\n    label: {}\n    tower: {{ hidden: [64, 32] }}",
            s.name, label.yaml
        );
        if let Some(t) = &label.truth {
            let _ = writeln!(y, "    truth: {}", yq(t));
        }
    }
    let last = stages.last().map(|s| s.name.as_str()).unwrap_or_default();
    let _ = writeln!(
        y,
        "\nmodel:\n  preset: esmm\n\ntrain:\n  epochs: 10\n  batch_size: 512\n  seed: 42\n  early_stopping: {{ monitor: {last}.cumulative.auc, patience: 2 }}\n\ninconsistent_rows: drop"
    );
    Ok((y, notes))
}
