//! PaddleRec's encoding of Ali-CCP (its ESMM and ESCM² examples' `small.txt`): one impression
//! a line, `sample_id,click,ctcvr,` then `field_id:feature_id` tokens of every field, the
//! multi-valued ones repeated. Written with `ali_ccp`'s schema and columns (each behaviour
//! entry weighing 1), so `pipelines/ali-ccp-raw.yaml` reads either; `ctcvr` (click and
//! purchase) becomes `buy`.

use std::io::BufRead;
use std::path::Path;

use super::ali_ccp::{AliCcpSummary, CHUNK, Row, Rows};
use crate::error::{Error, Result};
use crate::source::TableWriter;

/// Convert `input` into `out` (Parquet or CSV by extension).
pub fn paddlerec_esmm(input: &Path, out: &Path) -> Result<AliCcpSummary> {
    let mut summary = AliCcpSummary::empty(1);
    let reader = std::io::BufReader::with_capacity(1 << 20, crate::source::open_text(input)?);
    let mut w = TableWriter::create(out)?;
    let mut rows = Rows::default();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| Error::io(input, e))?;
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let n = i + 1;
        summary.read += 1;
        let mut fields = line.split(',');
        let (Some(id), Some(click), Some(ctcvr)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(
                Error::data(input, format!("line {n} has fewer than 3 fields"))
                    .with_hint("a line is `sample_id,click,ctcvr,field:feature,...`"),
            );
        };
        let flag = |v: &str, name: &str| match v.trim() {
            "0" => Ok(0i64),
            "1" => Ok(1i64),
            other => Err(Error::data_at(
                input,
                name,
                Some(n),
                format!("{other:?} is not 0 or 1"),
            )),
        };
        let (click, buy) = (flag(click, "click")?, flag(ctcvr, "ctcvr")?);
        summary.buy_without_click += (buy == 1 && click == 0) as usize;
        let mut row = Row::default();
        for token in fields.filter(|t| !t.trim().is_empty()) {
            let parsed = token
                .trim()
                .rsplit_once(':')
                .and_then(|(f, id)| id.parse::<i64>().ok().map(|id| (f, id)));
            let Some((field, feature)) = parsed else {
                return Err(Error::data(
                    input,
                    format!("line {n}: token {token:?} is not `field_id:feature_id`"),
                ));
            };
            row.put(field, feature, 1.0, &mut summary);
        }
        rows.push(id.trim(), click, buy, row);
        summary.rows += 1;
        if rows.len() == CHUNK {
            w.write(std::mem::take(&mut rows).columns())?;
        }
    }
    if rows.len() > 0 || summary.rows == 0 {
        w.write(rows.columns())?;
    }
    w.finish()?;
    Ok(summary)
}
