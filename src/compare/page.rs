//! The compare page (`compare.html`): the comparison's tables and, per metric, each pipeline's
//! mean with its 95% interval as a chart.

use super::Comparison;
use crate::html::Page;
use crate::html::svg::{Bar, bar_chart};

pub fn render(c: &Comparison) -> String {
    let mut page = Page::new("funnel compare");
    let names: Vec<&str> = c.pipelines.iter().map(|r| r.name.as_str()).collect();
    page.note(&format!(
        "{} pipeline(s) ({}), each trained under seeds {:?}; AUC on the {} split. Mean ± sample standard deviation over seeds, the best mean per column in bold.",
        names.len(),
        names.join(", "),
        c.seeds,
        c.split
    ));
    let [means, cis, diffs] = c.cells();
    let header = c.header();
    page.heading("Mean ± standard deviation", "means");
    page.table("means", &header, &means, 1);
    page.heading("95% interval of the mean (Student's t)", "intervals");
    page.table("intervals", &header, &cis, 1);
    page.heading(
        &format!(
            "Difference from {} ({})",
            names.first().copied().unwrap_or(""),
            c.test
        ),
        "differences",
    );
    page.table("differences", &header, &diffs, 1);
    for note in c.notes() {
        page.note(&note);
    }
    page.heading("Means with their 95% intervals", "charts");
    let charts: Vec<String> = c
        .metrics
        .iter()
        .enumerate()
        .map(|(j, m)| {
            let bars: Vec<Bar> = c
                .pipelines
                .iter()
                .filter_map(|r| {
                    let s = r.summary[j].as_ref()?;
                    Some(Bar {
                        group: r.name.clone(),
                        series: 0,
                        value: s.mean,
                        interval: s.ci95,
                    })
                })
                .collect();
            bar_chart(
                &format!("chart-{}", m.id),
                &m.label,
                "AUC",
                &["mean, with its 95% interval".into()],
                &bars,
                false,
            )
        })
        .collect();
    page.charts(&charts);
    page.heading("Runs", "runs");
    let rows: Vec<Vec<String>> = c
        .pipelines
        .iter()
        .flat_map(|r| {
            r.runs.iter().zip(&c.seeds).map(move |(d, s)| {
                vec![
                    r.name.clone(),
                    r.file.display().to_string(),
                    s.to_string(),
                    d.display().to_string(),
                ]
            })
        })
        .collect();
    page.table(
        "runs",
        &["pipeline", "file", "seed", "run directory"].map(String::from),
        &rows,
        4,
    );
    page.finish()
}
