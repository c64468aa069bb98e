//! Encoding a frame's splits: one parallel task per column reads it once, fits its encoder on
//! the training rows when asked, and encodes it for every split.

use std::sync::Mutex;

use rayon::prelude::*;

use super::clock::Clock;
use super::{Dataset, Split, StageLabels};
use crate::config::Pipeline;
use crate::error::{Error, Result};
use crate::features::{
    BagParts, CategoricalEncoder, Encoders, NumericColumns, NumericEncoder, Routing, encode_bags,
};
use crate::source::{Column, Frame};

/// Whether a frame's encoders are fitted on its first split, or were fitted before.
#[derive(Clone, Copy)]
pub(super) enum Encoding<'a> {
    Fit,
    Use(&'a Encoders),
}

/// One column's work: each runs as a parallel task that reads its column, encodes it for
/// every split, and drops it.
enum Job {
    Cat(usize),
    Num(usize),
    Bag(usize),
    Truth(usize),
    Group,
}

enum Done {
    Cat(Option<CategoricalEncoder>, Vec<Vec<u32>>),
    Num(Option<NumericEncoder>, NumericColumns),
    Bag(Option<CategoricalEncoder>, BagParts),
    Truth(Vec<Vec<f64>>),
    Group(Vec<Vec<u32>>),
}

/// Encode the splits of one frame (each a list of rows with its labels), reading each column
/// once; with `Encoding::Fit` the encoders are fitted on the first split in the same pass and
/// returned. Groups are numbered by `groups` when given (one numbering per split, carried over
/// the ranges of a file encoded a range at a time), else afresh.
pub(super) fn encode_frame(
    frame: &Frame,
    splits: Vec<(Split, StageLabels)>,
    encoding: Encoding<'_>,
    p: &Pipeline,
    clock: &Clock,
    groups: Option<&Mutex<Vec<GroupIds>>>,
) -> Result<(Option<Encoders>, Vec<Dataset>)> {
    let keeps: Vec<&[u32]> = splits.iter().map(|(_, l)| l.keep.as_slice()).collect();
    let routing = Routing::new(frame.len(), &keeps);
    let labelled = splits.iter().all(|(_, l)| !l.reached.is_empty());
    let truth: Vec<&str> = match labelled {
        true => p.stages.iter().filter_map(|s| s.truth.as_deref()).collect(),
        false => Vec::new(),
    };
    let mut jobs: Vec<Job> = (0..p.categorical.len()).map(Job::Cat).collect();
    jobs.extend((0..p.numeric.len()).map(Job::Num));
    jobs.extend((0..p.multi_valued.len()).map(Job::Bag));
    jobs.extend((0..truth.len()).map(Job::Truth));
    if labelled && p.group_column.is_some() {
        jobs.push(Job::Group);
    }
    let run = |job: &Job| -> Result<Done> {
        Ok(match *job {
            Job::Cat(f) => {
                let spec = &p.categorical[f];
                let col = frame.column(&spec.column)?;
                match encoding {
                    Encoding::Fit => {
                        let (enc, out) = CategoricalEncoder::fit_encode(spec, &col, &routing)?;
                        Done::Cat(Some(enc), out)
                    }
                    Encoding::Use(e) => {
                        Done::Cat(None, e.categorical[f].encode_column(&col, &routing)?)
                    }
                }
            }
            Job::Num(j) => {
                let spec = &p.numeric[j];
                let col = frame.column(&spec.column)?;
                let values = spec.feeds_value();
                match encoding {
                    Encoding::Fit => {
                        let enc = NumericEncoder::fit(spec, &col, &routing)?;
                        let out = enc.encode_column(&col, &routing, values)?;
                        Done::Num(Some(enc), out)
                    }
                    Encoding::Use(e) => {
                        Done::Num(None, e.numeric[j].encode_column(&col, &routing, values)?)
                    }
                }
            }
            Job::Bag(m) => {
                let spec = &p.multi_valued[m];
                let col = frame.column(&spec.vocabulary.column)?;
                let weights = spec.weight_column().map(|c| frame.column(c)).transpose()?;
                let fitted = match encoding {
                    Encoding::Fit => None,
                    Encoding::Use(e) => Some(&e.multi_valued[m]),
                };
                let (enc, parts) = encode_bags(spec, &col, weights.as_ref(), &routing, fitted)?;
                Done::Bag(enc, parts)
            }
            Job::Truth(t) => Done::Truth(read_truth(&frame.column(truth[t])?, &routing)?),
            Job::Group => {
                let col = frame.column(p.group_column.as_deref().unwrap_or_default())?;
                let out = match groups {
                    Some(seen) => {
                        let mut seen = seen
                            .lock()
                            .map_err(|_| Error::Internal("group numbering poisoned".into()))?;
                        read_groups(&col, &routing, &mut seen)?
                    }
                    None => {
                        let mut seen = vec![GroupIds::default(); routing.parts()];
                        read_groups(&col, &routing, &mut seen)?
                    }
                };
                Done::Group(out)
            }
        })
    };
    let done = jobs
        .par_iter()
        .map(|job| clock.busy(|| run(job)))
        .collect::<Result<Vec<Done>>>()?;

    let parts = splits.len();
    let mut fitted = Encoders {
        categorical: Vec::new(),
        numeric: Vec::new(),
        multi_valued: Vec::new(),
    };
    let mut cat = vec![Vec::new(); parts];
    // Bucketed numerics' ids follow the categorical features' (`Pipeline::embedded_fields`).
    let mut bucket_ids = vec![Vec::new(); parts];
    let mut num = vec![Vec::new(); parts];
    let mut bags = vec![Vec::new(); parts];
    let mut truncated = vec![Vec::new(); parts];
    let mut truths = vec![Vec::new(); parts];
    let mut groups = vec![Vec::new(); parts];
    for d in done {
        match d {
            Done::Cat(enc, out) => {
                fitted.categorical.extend(enc);
                for (c, o) in cat.iter_mut().zip(out) {
                    c.push(o);
                }
            }
            Done::Num(enc, out) => {
                fitted.numeric.extend(enc);
                for (c, o) in bucket_ids.iter_mut().zip(out.ids.into_iter().flatten()) {
                    c.push(o);
                }
                for (c, o) in num.iter_mut().zip(out.values.into_iter().flatten()) {
                    c.push(o);
                }
            }
            Done::Bag(enc, out) => {
                fitted.multi_valued.extend(enc);
                for (c, o) in bags.iter_mut().zip(out.bags) {
                    c.push(o);
                }
                for (c, o) in truncated.iter_mut().zip(out.truncated) {
                    c.push(o);
                }
            }
            Done::Truth(out) => {
                for (c, o) in truths.iter_mut().zip(out) {
                    c.push(o);
                }
            }
            Done::Group(out) => groups = out,
        }
    }
    for (c, b) in cat.iter_mut().zip(bucket_ids) {
        c.extend(b);
    }
    // Behaviour histories, after the categorical encoders they read are fitted: each token
    // encoded with its target's vocabulary. Their bag columns follow the multi-valued ones'.
    let sequences = p
        .sequences
        .par_iter()
        .map(|s| {
            clock.busy(|| {
                let target = match encoding {
                    Encoding::Fit => &fitted.categorical[s.target],
                    Encoding::Use(e) => &e.categorical[s.target],
                };
                let col = frame.column(&s.tokens.vocabulary.column)?;
                Ok(encode_bags(&s.tokens, &col, None, &routing, Some(target))?.1)
            })
        })
        .collect::<Result<Vec<BagParts>>>()?;
    for out in sequences {
        for (c, o) in bags.iter_mut().zip(out.bags) {
            c.push(o);
        }
        for (c, o) in truncated.iter_mut().zip(out.truncated) {
            c.push(o);
        }
    }
    let encoders = match encoding {
        Encoding::Fit => Some(fitted),
        Encoding::Use(_) => None,
    };
    let datasets = splits
        .into_iter()
        .zip(cat.into_iter().zip(num))
        .zip(truths.into_iter().zip(groups))
        .zip(bags.into_iter().zip(truncated))
        .map(
            |((((name, labels), (cat, num)), (truth, groups)), (bags, truncated))| Dataset {
                split: name,
                file: frame.file().to_path_buf(),
                rows: labels.keep.len(),
                cat,
                num,
                bags,
                truncated,
                reached: labels.reached,
                own: labels.own,
                truth,
                groups,
                dropped: labels.dropped,
            },
        )
        .collect();
    Ok((encoders, datasets))
}

/// Encode one labelled frame (after its labels were read and checked) with fitted encoders.
pub fn encode_split(
    name: Split,
    frame: &Frame,
    labels: StageLabels,
    encoders: &Encoders,
    p: &Pipeline,
) -> Result<Dataset> {
    let (_, mut d) = encode_frame(
        frame,
        vec![(name, labels)],
        Encoding::Use(encoders),
        p,
        &Clock::new(),
        None,
    )?;
    d.pop()
        .ok_or_else(|| Error::Internal("no encoded split".into()))
}

/// Encode every row of a frame without labels (for prediction).
pub fn encode_unlabelled(frame: &Frame, encoders: &Encoders, p: &Pipeline) -> Result<Dataset> {
    let all = StageLabels {
        reached: Vec::new(),
        own: Vec::new(),
        keep: (0..frame.len() as u32).collect(),
        dropped: Vec::new(),
    };
    encode_split(Split::Predict, frame, all, encoders, p)
}

/// A truth column's probabilities for every part; each must lie in [0, 1].
fn read_truth(col: &Column<'_>, routing: &Routing) -> Result<Vec<Vec<f64>>> {
    let mut out = routing.outputs();
    col.visit_f64(|i, v| {
        let Some(part) = routing.part(i) else {
            return Ok(());
        };
        match v {
            Some(x) if (0.0..=1.0).contains(&x) => {
                out[part].push(x);
                Ok(())
            }
            _ => Err(col.error(Some(i), format!("truth value {v:?} is not a probability"))),
        }
    })?;
    Ok(out)
}

/// A part's groups numbered so far (in order of first appearance).
pub(super) type GroupIds = std::collections::HashMap<String, u32>;

/// Each row's group for every part: the index of its value among the part's distinct values
/// (missing values form one group), numbered by `seen` (one numbering per part, carried over
/// from the ranges of the file read before, so a file read a range at a time is numbered as
/// a whole).
fn read_groups(
    col: &Column<'_>,
    routing: &Routing,
    seen: &mut [GroupIds],
) -> Result<Vec<Vec<u32>>> {
    let mut out = routing.outputs();
    col.visit_str(|i, v| {
        if let Some(part) = routing.part(i) {
            let map = &mut seen[part];
            let next = map.len() as u32;
            let g = *map.entry(v.unwrap_or_default().to_string()).or_insert(next);
            out[part].push(g);
        }
        Ok(())
    })?;
    Ok(out)
}
