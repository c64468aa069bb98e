//! The comparison as text: its cells (mean ± sd, intervals, differences), what they leave out
//! and why, and the files compare writes (Markdown, CSV, JSON, HTML).

use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::Comparison;
use super::stats::{MIN_FOR_INTERVAL, MIN_FOR_SPREAD};

/// The files a compare writes into its `--out`.
pub const OUTPUTS: [&str; 4] = ["compare.md", "compare.csv", "compare.json", "compare.html"];

impl Comparison {
    /// The rows with the highest mean of metric `j` (every compared metric is an AUC): all
    /// that tie at the top; none with fewer than two rows to compare.
    pub fn best(&self, j: usize) -> Vec<usize> {
        let means: Vec<(usize, f64)> = self
            .pipelines
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((i, r.summary[j].as_ref()?.mean)))
            .collect();
        if means.len() < 2 {
            return Vec::new();
        }
        let top = means.iter().map(|m| m.1).fold(f64::NEG_INFINITY, f64::max);
        means
            .into_iter()
            .filter(|m| m.1 >= top - 1e-12)
            .map(|m| m.0)
            .collect()
    }

    /// Cells of the three tables: mean ± sd, the 95% interval, the difference from the first
    /// pipeline with its p-value. A best cell starts with `*`.
    pub fn cells(&self) -> [Vec<Vec<String>>; 3] {
        let mut tables: [Vec<Vec<String>>; 3] = Default::default();
        let best: Vec<Vec<usize>> = (0..self.metrics.len()).map(|j| self.best(j)).collect();
        for (i, r) in self.pipelines.iter().enumerate() {
            let mut rows = [
                vec![r.name.clone()],
                vec![r.name.clone()],
                vec![r.name.clone()],
            ];
            for j in 0..self.metrics.len() {
                let best = if best[j].contains(&i) { "*" } else { "" };
                let (mean, ci) = match &r.summary[j] {
                    Some(s) => (
                        match s.sd {
                            Some(sd) => format!("{best}{:.4} ± {sd:.4}", s.mean),
                            None => format!("{best}{:.4} (one seed: no spread)", s.mean),
                        },
                        s.ci95.map_or_else(
                            || format!("– (needs {MIN_FOR_INTERVAL} seeds)"),
                            |(lo, hi)| format!("[{lo:.4}, {hi:.4}]"),
                        ),
                    ),
                    None => ("–".into(), "–".into()),
                };
                let diff = match &r.against_first[j] {
                    Some(p) => match p.p {
                        Some(pv) => format!("{} (p {})", signed(p.diff), p_value(pv)),
                        None => format!("{} (the same in every seed: no test)", signed(p.diff)),
                    },
                    None if i == 0 => "reference".into(),
                    None if !r.same_rows => "– (other rows: not compared)".into(),
                    None if r.summary[j]
                        .as_ref()
                        .is_some_and(|s| s.n < MIN_FOR_INTERVAL) =>
                    {
                        format!("– (needs {MIN_FOR_INTERVAL} seeds)")
                    }
                    None => "–".into(),
                };
                rows[0].push(mean);
                rows[1].push(ci);
                rows[2].push(diff);
            }
            for (t, row) in tables.iter_mut().zip(rows) {
                t.push(row);
            }
        }
        tables
    }

    pub fn header(&self) -> Vec<String> {
        std::iter::once("pipeline".to_string())
            .chain(self.metrics.iter().map(|m| m.label.clone()))
            .collect()
    }

    /// The tables as Markdown, with what they are.
    pub fn markdown(&self) -> String {
        let [means, cis, diffs] = self.cells();
        let mut s = format!(
            "AUC on the {} split over seeds {} ({} runs per pipeline). Mean ± sample standard deviation; the best mean per column in bold.\n\n",
            self.split,
            seed_list(&self.seeds),
            self.seeds.len()
        );
        // A `|` inside a cell (`P(conversion|click)`) would end it.
        let cell = |c: &str| c.replace('|', "\\|");
        let table = |s: &mut String, rows: &[Vec<String>]| {
            let header: Vec<String> = self.header().iter().map(|h| cell(h)).collect();
            let _ = writeln!(s, "| {} |", header.join(" | "));
            let _ = writeln!(s, "|{}", " --- |".repeat(header.len()));
            for r in rows {
                let cells: Vec<String> = r
                    .iter()
                    .map(|c| match c.strip_prefix('*') {
                        Some(b) => format!("**{}**", cell(b)),
                        None => cell(c),
                    })
                    .collect();
                let _ = writeln!(s, "| {} |", cells.join(" | "));
            }
        };
        table(&mut s, &means);
        s.push_str("\n95% interval of the mean (Student's t over seeds):\n\n");
        table(&mut s, &cis);
        let _ = write!(
            s,
            "\nDifference of the mean from `{}`, with the p-value of a {}:\n\n",
            self.pipelines.first().map_or("", |r| r.name.as_str()),
            self.test
        );
        table(&mut s, &diffs);
        for note in self.notes() {
            let _ = write!(s, "\n{note}\n");
        }
        s
    }

    /// What the tables leave out, and why: statistics that too few seeds cannot support, and
    /// differences between pipelines scored on different rows.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let n = self.seeds.len();
        if n < MIN_FOR_INTERVAL {
            let spread = if n < MIN_FOR_SPREAD {
                "no standard deviation, "
            } else {
                ""
            };
            notes.push(format!(
                "Note: with {n} seed(s) there is {spread}no interval and no test: a standard deviation needs {MIN_FOR_SPREAD} seeds, an interval or a t-test {MIN_FOR_INTERVAL} (with 2, t(0.975, 1) = 12.71 spreads the interval over 9 standard deviations each side). Run with `--seeds 5`."
            ));
        }
        let other: Vec<String> = self
            .pipelines
            .iter()
            .filter(|r| !r.same_rows)
            .map(|r| format!("`{}`", r.name))
            .collect();
        if !other.is_empty() {
            notes.push(format!(
                "Note: {} scored on other {} rows than `{}` (another file, other rows kept, or other labels): no difference or test is given, as it would mix the models' gap with the rows' own.",
                other.join(", "),
                self.split,
                self.pipelines.first().map_or("", |r| r.name.as_str()),
            ));
        }
        notes
    }

    /// One line per pipeline and metric: the statistics and every seed's value.
    pub fn csv(&self) -> String {
        let mut s = String::from("pipeline,metric,n,mean,sd,ci95_low,ci95_high,diff_vs_first,t,p");
        for seed in &self.seeds {
            let _ = write!(s, ",seed_{seed}");
        }
        s.push('\n');
        let num = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
        for r in &self.pipelines {
            for (j, m) in self.metrics.iter().enumerate() {
                let sm = r.summary[j].as_ref();
                let pt = r.against_first[j].as_ref();
                let _ = write!(
                    s,
                    "{},{},{},{},{},{},{},{},{},{}",
                    csv_field(&r.name),
                    csv_field(&m.id),
                    sm.map_or(0, |s| s.n),
                    num(sm.map(|s| s.mean)),
                    num(sm.and_then(|s| s.sd)),
                    num(sm.and_then(|s| s.ci95).map(|c| c.0)),
                    num(sm.and_then(|s| s.ci95).map(|c| c.1)),
                    num(pt.map(|p| p.diff)),
                    num(pt.and_then(|p| p.t)),
                    num(pt.and_then(|p| p.p)),
                );
                for v in &r.values[j] {
                    let _ = write!(s, ",{}", num(*v));
                }
                s.push('\n');
            }
        }
        s
    }

    /// Write compare.md, compare.csv, compare.json and compare.html into `dir`.
    pub fn write(&self, dir: &Path) -> crate::error::Result<Vec<PathBuf>> {
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
        let [md, csv, js, html] = OUTPUTS;
        let files = [
            (md, self.markdown()),
            (csv, self.csv()),
            (js, json),
            (html, super::page::render(self)),
        ];
        let mut written = Vec::new();
        for (name, text) in files {
            let path = dir.join(name);
            crate::fsutil::write_atomic(&path, text.as_bytes())?;
            written.push(path);
        }
        Ok(written)
    }
}

/// A p-value as printed after `p`: `= 0.0314`, or `< 0.0001`.
pub fn p_value(p: f64) -> String {
    if p < 1e-4 {
        "< 0.0001".into()
    } else {
        format!("= {p:.4}")
    }
}

/// A difference with its sign, four decimals; one that rounds to zero has none.
fn signed(d: f64) -> String {
    let s = format!("{d:+.4}");
    if s == "+0.0000" || s == "-0.0000" {
        "0.0000".into()
    } else {
        s
    }
}

fn seed_list(seeds: &[u64]) -> String {
    match seeds {
        [] => String::new(),
        [one] => one.to_string(),
        [first, .., last] if (*last - *first) as usize + 1 == seeds.len() => {
            format!("{first}–{last}")
        }
        _ => seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
