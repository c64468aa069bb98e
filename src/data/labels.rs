//! Stage labels: reading each stage's column, turning it into "reached this stage" flags, and
//! finding rows that reached a stage without its parent.

use crate::config::{InconsistentRows, LabelMeaning, Pipeline, StageSpec};
use crate::error::{Error, Result};
use crate::source::Frame;

/// "Reached" flags of every stage for the rows of one frame, plus the rows to keep.
pub struct StageLabels {
    /// reached[k][i] is 1 when row i reached stage k (so also every stage before it).
    pub reached: Vec<Vec<u8>>,
    /// own[k][i]: stage k's own column as written, for the kept rows; filled only when the
    /// funnel reads it (the `independent` preset) and some stage's column is `given_previous`
    /// (otherwise it equals `reached`).
    pub own: Vec<Vec<u8>>,
    /// Rows that passed the consistency check, in file order.
    pub keep: Vec<u32>,
    /// Rows dropped as inconsistent, per stage where the inconsistency first shows.
    pub dropped: Vec<usize>,
}

impl StageLabels {
    pub fn dropped_total(&self) -> usize {
        self.dropped.iter().sum()
    }
}

/// A 0/1 label written as text: `1`, `1.0`, `true` or `True` is positive, `0`, `0.0`, `false` or
/// `False` negative, anything else neither.
pub fn binary_text(v: &str) -> Option<bool> {
    match v {
        "1" | "1.0" | "true" | "True" => Some(true),
        "0" | "0.0" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The positive flag of one stage's column for each row.
fn stage_flags(frame: &Frame, stage: &StageSpec) -> Result<Vec<u8>> {
    let l = &stage.label;
    let mut flags = Vec::with_capacity(frame.len());
    let missing = |i: usize| {
        frame
            .error_at(
                &l.column,
                i,
                format!("stage `{}` has no label here", stage.name),
            )
            .with_hint("every row needs a label for every stage; drop such rows beforehand")
    };
    let not_binary = |i: usize, v: &dyn std::fmt::Debug| {
        frame
            .error_at(&l.column, i, format!("label value {v:?} is not 0 or 1"))
            .with_hint(
                "declare which values count as positive: `label: {column: ..., positive: [...]}`",
            )
    };
    let Some(pos) = &l.positive else {
        // A 0/1 column: numbers are read as numbers (no text formatting), text as text.
        if frame.is_numeric(&l.column)? {
            frame.visit_f64(&l.column, |i, v| {
                match v {
                    Some(1.0) => flags.push(1),
                    Some(0.0) => flags.push(0),
                    Some(x) => return Err(not_binary(i, &x)),
                    None => return Err(missing(i)),
                }
                Ok(())
            })?;
        } else {
            frame.visit_str(&l.column, |i, v| {
                let Some(v) = v else {
                    return Err(missing(i));
                };
                match binary_text(v) {
                    Some(yes) => flags.push(u8::from(yes)),
                    None => return Err(not_binary(i, &v)),
                }
                Ok(())
            })?;
        }
        return Ok(flags);
    };
    if frame.is_numeric(&l.column)? {
        // Declared values of a numeric column are compared as numbers ("1" matches 1.0).
        let parse = |list: &[String]| -> Result<Vec<f64>> {
            list.iter()
                .map(|v| {
                    v.trim().parse::<f64>().map_err(|_| {
                        Error::data_at(frame.file(), &l.column, None, format!("the column holds numbers, but the declared label value {v:?} is not one"))
                            .with_hint("declare numeric label values, e.g. `positive: [\"1\"]`")
                    })
                })
                .collect()
        };
        let pos = parse(pos)?;
        let neg = l.negative.as_deref().map(parse).transpose()?;
        frame.visit_f64(&l.column, |i, v| {
            let Some(v) = v else {
                return Err(missing(i));
            };
            if pos.contains(&v) {
                flags.push(1);
            } else if neg.as_ref().is_some_and(|n| !n.contains(&v)) {
                return Err(frame
                    .error_at(
                        &l.column,
                        i,
                        format!("label value {v} is neither positive {pos:?} nor negative {neg:?}"),
                    )
                    .with_hint("add the value to `positive` or `negative` of the stage's label"));
            } else {
                flags.push(0);
            }
            Ok(())
        })?;
        return Ok(flags);
    }
    frame.visit_str(&l.column, |i, v| {
        let Some(v) = v else {
            return Err(missing(i));
        };
        let flag =
            if pos.iter().any(|p| p == v) {
                1
            } else {
                match &l.negative {
                    Some(neg) if !neg.iter().any(|n| n == v) => {
                        return Err(frame.error_at(&l.column, i, format!(
                            "label value {v:?} is neither positive {pos:?} nor negative {neg:?}"
                        ),
                    )
                    .with_hint("add the value to `positive` or `negative` of the stage's label"));
                    }
                    _ => 0,
                }
            };
        flags.push(flag);
        Ok(())
    })?;
    Ok(flags)
}

/// Read every stage's label for `rows` of a frame (all rows when `None`; ascending) and apply
/// the consistency policy. The first inconsistent row in file order is the one reported.
pub fn read_labels(frame: &Frame, rows: Option<&[u32]>, p: &Pipeline) -> Result<StageLabels> {
    LabelFlags::read(frame, &p.stages)?.select(frame, rows, p)
}

/// Every stage's positive flag for every row of a frame, read once and then selected for each
/// split carved from that frame.
pub struct LabelFlags {
    flags: Vec<Vec<u8>>,
}

impl LabelFlags {
    pub fn read(frame: &Frame, stages: &[StageSpec]) -> Result<Self> {
        let flags = stages
            .iter()
            .map(|s| stage_flags(frame, s))
            .collect::<Result<_>>()?;
        Ok(LabelFlags { flags })
    }

    /// The "reached" labels of `rows` (all rows when `None`), by the pipeline's funnel and
    /// consistency policy.
    pub fn select(&self, frame: &Frame, rows: Option<&[u32]>, p: &Pipeline) -> Result<StageLabels> {
        let (stages, funnel, policy) = (&p.stages, &p.funnel, p.inconsistent_rows);
        let all: Vec<u32>;
        let rows = match rows {
            Some(r) => r,
            None => {
                all = (0..frame.len() as u32).collect();
                &all
            }
        };
        let flags = &self.flags;
        let k = stages.len();
        let mut reached: Vec<Vec<u8>> = vec![Vec::with_capacity(rows.len()); k];
        let mut keep = Vec::with_capacity(rows.len());
        let mut dropped = vec![0; k];
        let keep_own = funnel.uses_own_labels()
            && stages
                .iter()
                .any(|s| s.label.meaning == LabelMeaning::GivenPrevious);
        let mut own: Vec<Vec<u8>> = match keep_own {
            true => vec![Vec::with_capacity(rows.len()); k],
            false => Vec::new(),
        };
        let mut row = vec![0u8; k];
        'rows: for &i in rows {
            let i = i as usize;
            for (s, stage) in stages.iter().enumerate() {
                let f = flags[s][i];
                row[s] = match (funnel.parent(s), stage.label.meaning) {
                    (None, _) => f,
                    (Some(p), LabelMeaning::GivenPrevious) => f & row[p],
                    (Some(p), LabelMeaning::Reached) => {
                        if f == 1 && row[p] == 0 {
                            if policy == InconsistentRows::Error {
                                return Err(frame.error_at(&stage.label.column, i, format!(
                                        "the row reached stage `{}` without reaching `{}`",
                                        stage.name,
                                        stages[p].name
                                    ),
                                )
                                .with_hint(
                                    "fix the logs, set `inconsistent_rows: drop`, or use `meaning: given_previous` if the column records an outcome that only counts after the parent stage",
                                ));
                            }
                            dropped[s] += 1;
                            continue 'rows;
                        }
                        f
                    }
                };
            }
            keep.push(i as u32);
            for (r, &v) in reached.iter_mut().zip(&row) {
                r.push(v);
            }
            for (o, f) in own.iter_mut().zip(flags) {
                o.push(f[i]);
            }
        }
        Ok(StageLabels {
            reached,
            own,
            keep,
            dropped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FileFormat, FileSource};
    use proptest::prelude::*;

    /// The labels of a 0/1 CSV of three `reached` stages a -> b -> c under `policy`.
    fn labels(rows: &[[u8; 3]], policy: &str) -> Result<StageLabels> {
        let d = tempfile::tempdir().unwrap();
        let csv = d.path().join("l.csv");
        let text: String = rows
            .iter()
            .map(|r| format!("{},{},{}\n", r[0], r[1], r[2]))
            .collect();
        std::fs::write(&csv, format!("a,b,c\n{text}")).unwrap();
        // The feature's column `x` is not in the file: labels are read without it.
        let yaml = format!(
            "name: t\ndata:\n  train: {{ path: l.csv }}\nfeatures:\n  numeric: [{{ name: x }}]\nstages:\n  - {{ name: a, label: {{ column: a }} }}\n  - {{ name: b, label: {{ column: b }} }}\n  - {{ name: c, label: {{ column: c }} }}\ninconsistent_rows: {policy}\n"
        );
        let p = Pipeline::from_text(&d.path().join("t.yaml"), &yaml).unwrap();
        let src = FileSource {
            format: FileFormat::Csv,
            ..p.train_source.clone()
        };
        let frame = Frame::read(&FileSource { path: csv, ..src }, None).unwrap();
        read_labels(&frame, None, &p)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Under `drop`, the kept rows are exactly the monotone ones (reaching a stage implies
        /// reaching its parent), each dropped row is counted at the first stage it reached
        /// without its parent, and the flags of kept rows are the file's. Under `error`, a file
        /// is refused exactly when some row is not monotone, naming the first such row.
        #[test]
        fn consistency_rules(rows in proptest::collection::vec(proptest::array::uniform3(0u8..2), 1..30)) {
            let first_bad = |r: &[u8; 3]| (1..3).find(|&k| r[k] == 1 && r[k - 1] == 0);
            let l = labels(&rows, "drop").unwrap();
            let keep: Vec<u32> = (0..rows.len() as u32)
                .filter(|&i| first_bad(&rows[i as usize]).is_none())
                .collect();
            prop_assert_eq!(&l.keep, &keep);
            let mut dropped = vec![0usize; 3];
            for r in &rows {
                if let Some(k) = first_bad(r) {
                    dropped[k] += 1;
                }
            }
            prop_assert_eq!(&l.dropped, &dropped);
            for (j, &i) in keep.iter().enumerate() {
                for (k, &flag) in rows[i as usize].iter().enumerate() {
                    prop_assert_eq!(l.reached[k][j], flag);
                }
            }
            match (labels(&rows, "error"), rows.iter().position(|r| first_bad(r).is_some())) {
                (Ok(_), None) => {}
                (Err(e), Some(i)) => {
                    let row = format!("row {}", i + 1);
                    prop_assert!(e.to_string().contains(&row), "{}", e);
                }
                (got, want) => prop_assert!(false, "{:?} vs first bad row {:?}", got.is_ok(), want),
            }
        }
    }
}
