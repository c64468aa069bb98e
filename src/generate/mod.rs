//! `funnel generate`: synthetic funnels with known ground truth, written in chunks.

mod draws;
mod history;
mod spec;
mod world;

pub use spec::{ROW_ID, Spec};
pub use world::World;

use std::path::Path;

use rayon::prelude::*;

use crate::error::Result;
use crate::numerics::sigmoid;
use crate::source::{TableColumn, TableWriter};

/// Rows generated (and written) per chunk.
pub const CHUNK_ROWS: usize = 1 << 17;

/// What a generated file holds, for the summary line and tests.
pub struct Summary {
    pub rows: u64,
    /// Rows that reached each stage.
    pub reached: Vec<u64>,
}

/// Rows `start .. start + len` of the spec's output, as named columns: `row_id`, features, then
/// per stage the 0/1 label and `true_<stage>` (the true conditional probability, for every
/// row).
pub fn chunk(
    spec: &Spec,
    world: &World,
    start: u64,
    len: usize,
) -> (Vec<(String, TableColumn)>, Vec<u64>) {
    let k = spec.stages();
    let mut ids: Vec<Vec<u32>> = vec![Vec::with_capacity(len); spec.categorical.len()];
    let mut values: Vec<Vec<f64>> = vec![Vec::with_capacity(len); spec.numeric.len()];
    let mut histories: Vec<Vec<Vec<i64>>> = vec![Vec::with_capacity(len); spec.histories.len()];
    let mut labels: Vec<Vec<i32>> = vec![Vec::with_capacity(len); k];
    let mut truth: Vec<Vec<f64>> = vec![Vec::with_capacity(len); k];
    let mut reached_count = vec![0u64; k];
    let mut rng = world.rows_at(start);
    let mut row = world.new_row();
    for _ in 0..len {
        world.row(&mut rng, &mut row);
        for (col, &id) in ids.iter_mut().zip(&row.ids) {
            col.push(id);
        }
        for (col, &x) in values.iter_mut().zip(&row.values) {
            col.push(x);
        }
        for (col, h) in histories.iter_mut().zip(&row.histories) {
            col.push(h.iter().map(|&t| i64::from(t)).collect());
        }
        for s in 0..k {
            let q = sigmoid(world.intercepts[s] + row.signal[s]);
            let parent = spec.parent(s).is_none_or(|p| labels[p].last() == Some(&1));
            // After an optional stage: the conditional given it, or given it was skipped; the
            // truth written is the conditional given the parent, mixing the two.
            let (q_row, q_true) = match world.skip_intercepts[s] {
                Some(b) => {
                    let q_skip = sigmoid(b + row.signal[s]);
                    let via = truth[s - 1].last().copied().unwrap_or(0.0);
                    let took = labels[s - 1].last() == Some(&1);
                    (
                        if took { q } else { q_skip },
                        via * q + (1.0 - via) * q_skip,
                    )
                }
                None => (q, q),
            };
            let reached = parent && row.uniforms[s] < q_row;
            labels[s].push(reached as i32);
            truth[s].push(q_true);
            reached_count[s] += reached as u64;
        }
    }
    let mut cols = vec![(
        ROW_ID.to_string(),
        // The row's number in the file, from 1 (header not counted), as every row number
        // funnel prints or writes.
        TableColumn::U64((start + 1..=start + len as u64).collect()),
    )];
    for (c, v) in spec.categorical.iter().zip(ids) {
        cols.push((c.name.clone(), TableColumn::U32(v)));
    }
    for (n, v) in spec.numeric.iter().zip(values) {
        cols.push((n.name.clone(), TableColumn::F64(v)));
    }
    for (h, v) in spec.histories.iter().zip(histories) {
        cols.push((h.name.clone(), TableColumn::ListI64(v)));
    }
    for ((name, l), t) in spec.stage_names.iter().zip(labels).zip(truth) {
        cols.push((name.clone(), TableColumn::I32(l)));
        cols.push((format!("true_{name}"), TableColumn::F64(t)));
    }
    (cols, reached_count)
}

/// Generate `rows` rows into `out` (CSV or Parquet by extension). Chunks are drawn in parallel,
/// a few at a time, and written in order; the file appears only when complete.
pub fn generate(spec: &Spec, rows: u64, out: &Path, chunk_rows: usize) -> Result<Summary> {
    let world = World::build(spec);
    let mut writer = TableWriter::create(out)?;
    let mut reached = vec![0u64; spec.stages()];
    let starts: Vec<u64> = (0..rows).step_by(chunk_rows.max(1)).collect();
    let in_flight = rayon::current_num_threads().max(1) * 2;
    for group in starts.chunks(in_flight) {
        let chunks: Vec<_> = group
            .par_iter()
            .map(|&s| chunk(spec, &world, s, (rows - s).min(chunk_rows as u64) as usize))
            .collect();
        for (cols, counts) in chunks {
            writer.write(cols)?;
            for (r, c) in reached.iter_mut().zip(counts) {
                *r += c;
            }
        }
    }
    if rows == 0 {
        writer.write(chunk(spec, &world, 0, 0).0)?;
    }
    writer.finish()?;
    Ok(Summary { rows, reached })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn spec(yaml: &str) -> Spec {
        Spec::from_text(Path::new("spec.yaml"), yaml).unwrap()
    }

    fn two_stage(bias: f64) -> Spec {
        spec(&format!(
            "name: t\nseed: 5\nselection_bias: {bias}\nnoise: 0.2\nstages:\n  - {{ name: click, rate: 0.2 }}\n  - {{ name: buy, rate: 0.3 }}\ncategorical:\n  - {{ name: user, vocab: 5000, zipf: 0.6, effects: {{ click: 1.0, buy: 1.0 }} }}\n  - {{ name: item, vocab: 300, zipf: 0.8, effects: {{ click: 0.8, buy: 0.8 }} }}\nnumeric:\n  - {{ name: price, normal: {{ mean: 0, std: 1 }}, effects: {{ click: 0.5, buy: 0.5 }} }}\n"
        ))
    }

    /// A generated column by name.
    fn col<'a>(cols: &'a [(String, TableColumn)], name: &str) -> &'a TableColumn {
        &cols.iter().find(|(n, _)| n == name).expect("column").1
    }

    fn ints(c: &TableColumn) -> &[i32] {
        match c {
            TableColumn::I32(v) => v,
            _ => panic!("not an int column"),
        }
    }

    fn floats(c: &TableColumn) -> &[f64] {
        match c {
            TableColumn::F64(v) => v,
            _ => panic!("not a float column"),
        }
    }

    #[test]
    fn output_does_not_depend_on_chunk_size_or_threads() {
        let s = two_stage(0.5);
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, chunk: usize, threads: usize| {
            let path = dir.path().join(name);
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| generate(&s, 5_000, &path, chunk).unwrap());
            std::fs::read(path).unwrap()
        };
        let a = write("a.csv", 5_000, 1);
        assert_eq!(a, write("b.csv", 333, 2));
        assert_eq!(a, write("c.csv", 1, 2));
        let other = Spec {
            seed: 6,
            ..s.clone()
        };
        let d = dir.path().join("d.csv");
        generate(&other, 5_000, &d, 1000).unwrap();
        assert_ne!(a, std::fs::read(d).unwrap());
    }

    /// A sampling seed apart from the world's draws other rows of the same world: the same
    /// intercepts and so the same truth for the same features, other features and labels; the
    /// world seed makes another world. `row_id` numbers rows from 1 (the chunk's start + 1).
    #[test]
    fn sampling_seed_keeps_the_world() {
        let s = two_stage(0.5);
        let fresh = Spec {
            sample_seed: Some(99),
            ..s.clone()
        };
        let (a, b) = (World::build(&s), World::build(&fresh));
        assert_eq!(a.intercepts, b.intercepts);
        let (ca, _) = chunk(&s, &a, 10, 500);
        let (cb, _) = chunk(&fresh, &b, 10, 500);
        assert!(ints(col(&ca, "click")) != ints(col(&cb, "click")));
        match col(&ca, ROW_ID) {
            TableColumn::U64(ids) => assert_eq!(ids, &(11..=510).collect::<Vec<u64>>()),
            _ => panic!("row_id is not u64"),
        }
        let other = World::build(&Spec { seed: 6, ..s });
        assert_ne!(a.intercepts, other.intercepts);
    }

    #[test]
    fn labels_are_monotone_and_rates_hit_their_targets() {
        let s = two_stage(0.5);
        let world = World::build(&s);
        let n = 400_000;
        let (cols, reached) = chunk(&s, &world, 0, n);
        let click = ints(col(&cols, "click"));
        let buy = ints(col(&cols, "buy"));
        assert!(click.iter().zip(buy).all(|(c, b)| b <= c));
        assert_eq!(reached[0], click.iter().map(|&v| v as u64).sum::<u64>());
        let click_rate = reached[0] as f64 / n as f64;
        let buy_rate = reached[1] as f64 / reached[0] as f64;
        // 2% relative: about 4 and 2.6 standard errors of the sampling noise here.
        assert!(
            (click_rate / 0.2 - 1.0).abs() < 0.02,
            "click rate {click_rate}"
        );
        assert!((buy_rate / 0.3 - 1.0).abs() < 0.02, "buy rate {buy_rate}");
    }

    /// Mean true conditional probability of the second stage among rows that did and did not
    /// reach the first, and the standard error of their difference.
    fn reached_vs_unreached(bias: f64) -> (f64, f64, f64) {
        let s = two_stage(bias);
        let world = World::build(&s);
        let (cols, _) = chunk(&s, &world, 0, 300_000);
        let click = ints(col(&cols, "click"));
        let truth = floats(col(&cols, "true_buy"));
        let mut groups = [(0.0, 0.0, 0usize); 2];
        for (&c, &t) in click.iter().zip(truth) {
            let g = &mut groups[c as usize];
            g.0 += t;
            g.1 += t * t;
            g.2 += 1;
        }
        let stats = |(s, ss, n): (f64, f64, usize)| {
            let m = s / n as f64;
            (m, (ss / n as f64 - m * m) / n as f64)
        };
        let (m0, v0) = stats(groups[0]);
        let (m1, v1) = stats(groups[1]);
        (m1, m0, (v0 + v1).sqrt())
    }

    #[test]
    fn zero_selection_bias_means_reached_rows_are_representative() {
        let (reached, unreached, se) = reached_vs_unreached(0.0);
        assert!(
            (reached - unreached).abs() < 4.0 * se,
            "{reached} vs {unreached} (se {se})"
        );
        let (reached, unreached, se) = reached_vs_unreached(0.8);
        assert!(
            reached - unreached > 20.0 * se,
            "{reached} vs {unreached} (se {se})"
        );
    }

    /// An optional stage (ESM²): buy does not need cart. Rows buy with and without a cart, every
    /// buyer clicked, each branch's rate hits its target, and `true_buy` (the mixture given the
    /// click) averages to the observed buy rate among clicked rows.
    #[test]
    fn optional_stage_branches_hit_their_rates() {
        let s = spec(
            "name: t\nseed: 5\nselection_bias: 0.5\nstages:\n  - { name: click, rate: 0.3 }\n  - { name: cart, rate: 0.4, optional: true }\n  - { name: buy, rate: 0.5, rate_without: 0.1 }\ncategorical:\n  - { name: user, vocab: 5000, zipf: 0.6, effects: { click: 1.0, cart: 0.8, buy: 1.0 } }\n",
        );
        assert_eq!(s.parent(2), Some(0));
        let world = World::build(&s);
        let n = 300_000;
        let (cols, _) = chunk(&s, &world, 0, n);
        let (click, cart, buy) = (
            ints(col(&cols, "click")),
            ints(col(&cols, "cart")),
            ints(col(&cols, "buy")),
        );
        let true_buy = floats(col(&cols, "true_buy"));
        assert!(buy.iter().zip(click).all(|(b, c)| b <= c));
        let count = |f: &dyn Fn(usize) -> bool| (0..n).filter(|&i| f(i)).count() as f64;
        let carts = count(&|i| cart[i] == 1);
        let skipped = count(&|i| click[i] == 1 && cart[i] == 0);
        let via_rate = count(&|i| cart[i] == 1 && buy[i] == 1) / carts;
        let skip_rate = count(&|i| click[i] == 1 && cart[i] == 0 && buy[i] == 1) / skipped;
        assert!((via_rate - 0.5).abs() < 0.02, "{via_rate}");
        assert!((skip_rate - 0.1).abs() < 0.01, "{skip_rate}");
        let clicked: Vec<usize> = (0..n).filter(|&i| click[i] == 1).collect();
        let observed =
            clicked.iter().filter(|&&i| buy[i] == 1).count() as f64 / clicked.len() as f64;
        let truth = clicked.iter().map(|&i| true_buy[i]).sum::<f64>() / clicked.len() as f64;
        assert!((observed - truth).abs() < 0.01, "{observed} vs {truth}");
        // A rate_without without an optional stage before it is refused.
        assert!(Spec::from_text(Path::new("s.yaml"), "name: t\nstages:\n  - { name: a, rate: 0.5 }\n  - { name: b, rate: 0.5, rate_without: 0.1 }\n").is_err());
    }
}
