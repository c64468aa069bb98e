//! Charts as inline SVG: line charts (a series per stage), reliability diagrams, and grouped
//! bars with optional interval whiskers. Hand-written rather than drawn by a plotting crate: the
//! charts are lines, points and bars, and this keeps the build (two cores) and the page (no
//! script, no font) as they are. Every mark carries its value in a `<title>` (a tooltip) and in
//! `data-value`, so a reader, or a test in a browser, can check the numbers behind it.

use std::fmt::Write;

use super::axis::{Axis, short, tick};
use super::escape;

/// Width and height of every chart, in CSS pixels.
const W: f64 = 560.0;
const H: f64 = 300.0;
/// Margins: left (tick labels), right, top (title), bottom (axis label).
const ML: f64 = 64.0;
const MR: f64 = 16.0;
const MT: f64 = 30.0;
const MB: f64 = 44.0;

/// Colours of series, in order (distinguishable in print and for common colour blindness).
const COLOURS: [&str; 8] = [
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442",
];

pub fn colour(i: usize) -> &'static str {
    COLOURS[i % COLOURS.len()]
}

/// One line of a line chart.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
    pub colour: &'static str,
}

/// Height of one legend row, drawn under the plot so it never hides a line.
const LEGEND_ROW: f64 = 16.0;

/// The frame of a chart: the box, grid, ticks, title and axis labels, with room under it for
/// `legend_rows` legend entries.
#[allow(clippy::too_many_arguments)]
fn frame(
    out: &mut String,
    id: &str,
    title: &str,
    xl: &str,
    yl: &str,
    x: &Axis,
    y: &Axis,
    legend_rows: usize,
) {
    let height = match legend_rows {
        0 => H,
        n => H + LEGEND_ROW * n as f64 + 8.0,
    };
    let _ = write!(
        out,
        r#"<svg class="chart" id="{}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" width="{W}" height="{height}" role="img" aria-label="{}">"#,
        escape(id),
        escape(title)
    );
    let _ = write!(
        out,
        r#"<text x="{}" y="18" class="title">{}</text>"#,
        ML,
        escape(title)
    );
    let (x0, x1, y0, y1) = (ML, W - MR, H - MB, MT);
    for &t in &y.ticks {
        let py = y.at(t, y0, y1);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{x0}" x2="{x1}" y1="{py:.1}" y2="{py:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            x0 - 6.0,
            py + 4.0,
            tick(t, y.step)
        );
    }
    for &t in &x.ticks {
        let px = x.at(t, x0, x1);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{px:.1}" x2="{px:.1}" y1="{y0}" y2="{y1}"/><text class="tick" x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            y0 + 16.0,
            tick(t, x.step)
        );
    }
    let _ = write!(
        out,
        r#"<rect class="axes" x="{x0}" y="{y1}" width="{}" height="{}"/><text class="label" x="{:.1}" y="{}" text-anchor="middle">{}</text><text class="label" transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        x1 - x0,
        y0 - y1,
        (x0 + x1) / 2.0,
        H - 8.0,
        escape(xl),
        (y0 + y1) / 2.0,
        escape(yl)
    );
}

/// A legend under the plot area, an entry per row.
fn legend(out: &mut String, entries: &[(&str, &str, bool)]) {
    for (i, (name, colour, dashed)) in entries.iter().enumerate() {
        let y = H + 6.0 + i as f64 * LEGEND_ROW;
        let x = ML;
        let dash = if *dashed {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<line x1="{x}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{colour}" stroke-width="2"{dash}/><text class="legend" x="{:.1}" y="{:.1}">{}</text>"#,
            x + 20.0,
            x + 26.0,
            y + 4.0,
            escape(name)
        );
    }
}

/// A line chart of `series` (each point marked, with its value as a tooltip).
pub fn line_chart(id: &str, title: &str, xl: &str, yl: &str, series: &[Series]) -> String {
    let all = || series.iter().flat_map(|s| s.points.iter());
    let mut x = Axis::covering(all().map(|p| p.0), &[]);
    // Whole-number x values (epochs) get whole-number ticks.
    if x.step < 1.0 && all().all(|p| p.0.fract() == 0.0) {
        x = Axis::whole(x.lo.floor(), x.hi.ceil());
    }
    let y = Axis::covering(all().map(|p| p.1), &[]);
    let mut out = String::new();
    frame(&mut out, id, title, xl, yl, &x, &y, series.len());
    let (x0, x1, y0, y1) = (ML, W - MR, H - MB, MT);
    for s in series {
        let dash = if s.dashed {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        // A line per run of finite points: a missing value leaves a gap, not a bridge.
        for run in s
            .points
            .split(|p| !p.1.is_finite())
            .filter(|r| !r.is_empty())
        {
            let pts: Vec<String> = run
                .iter()
                .map(|&(a, b)| format!("{:.1},{:.1}", x.at(a, x0, x1), y.at(b, y0, y1)))
                .collect();
            let _ = write!(
                out,
                r#"<polyline class="series" data-series="{}" fill="none" stroke="{}" stroke-width="2"{dash} points="{}"/>"#,
                escape(&s.name),
                s.colour,
                pts.join(" ")
            );
        }
        for &(a, b) in s.points.iter().filter(|p| p.1.is_finite()) {
            let _ = write!(
                out,
                r#"<circle class="point" cx="{:.1}" cy="{:.1}" r="3" fill="{}" data-value="{b}"><title>{}: {} at {}</title></circle>"#,
                x.at(a, x0, x1),
                y.at(b, y0, y1),
                s.colour,
                escape(&s.name),
                b,
                short(a)
            );
        }
    }
    let entries: Vec<(&str, &str, bool)> = series
        .iter()
        .map(|s| (s.name.as_str(), s.colour, s.dashed))
        .collect();
    legend(&mut out, &entries);
    out.push_str("</svg>");
    out
}

/// A reliability diagram: each bin's mean prediction against its observed rate, and the
/// diagonal of perfect calibration. Both axes span the data (rare stages live near 0).
pub fn reliability_chart(id: &str, title: &str, bins: &[(f64, f64, usize)]) -> String {
    let values = bins.iter().flat_map(|b| [b.0, b.1]);
    let top = values.fold(0.0f64, f64::max).max(1e-6);
    let x = Axis::covering([0.0, top].into_iter(), &[]);
    let y = Axis::covering([0.0, top].into_iter(), &[]);
    let mut out = String::new();
    frame(
        &mut out,
        id,
        title,
        "mean prediction in bin",
        "observed rate in bin",
        &x,
        &y,
        0,
    );
    let (x0, x1, y0, y1) = (ML, W - MR, H - MB, MT);
    let hi = x.hi.min(y.hi);
    let _ = write!(
        out,
        r##"<line class="diagonal" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#888" stroke-dasharray="4 4"/>"##,
        x.at(0.0, x0, x1),
        y.at(0.0, y0, y1),
        x.at(hi, x0, x1),
        y.at(hi, y0, y1)
    );
    let pts: Vec<String> = bins
        .iter()
        .map(|b| format!("{:.1},{:.1}", x.at(b.0, x0, x1), y.at(b.1, y0, y1)))
        .collect();
    let _ = write!(
        out,
        r#"<polyline class="series" fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
        colour(0),
        pts.join(" ")
    );
    for &(p, r, n) in bins {
        let _ = write!(
            out,
            r#"<circle class="point" cx="{:.1}" cy="{:.1}" r="3.5" fill="{}" data-value="{r}"><title>{n} rows: mean prediction {}, observed rate {}</title></circle>"#,
            x.at(p, x0, x1),
            y.at(r, y0, y1),
            colour(0),
            short(p),
            short(r)
        );
    }
    out.push_str("</svg>");
    out
}

/// One bar of a grouped bar chart, with an optional interval drawn as a whisker.
pub struct Bar {
    pub group: String,
    pub series: usize,
    pub value: f64,
    pub interval: Option<(f64, f64)>,
}

/// Bars grouped along the x axis (one group per label), one colour per series; with
/// `from_zero` false the axis spans the values only, and each value is drawn as a point (with
/// its whisker), since a bar's length would no longer be its value.
pub fn bar_chart(
    id: &str,
    title: &str,
    yl: &str,
    series_names: &[String],
    bars: &[Bar],
    from_zero: bool,
) -> String {
    let groups: Vec<&str> = bars.iter().fold(Vec::new(), |mut g, b| {
        if !g.contains(&b.group.as_str()) {
            g.push(b.group.as_str());
        }
        g
    });
    let extent = bars
        .iter()
        .flat_map(|b| {
            [
                Some(b.value),
                b.interval.map(|i| i.0),
                b.interval.map(|i| i.1),
            ]
        })
        .flatten();
    let y = Axis::covering(extent, if from_zero { &[0.0] } else { &[] });
    let x = Axis {
        lo: 0.0,
        hi: groups.len().max(1) as f64,
        ticks: Vec::new(),
        step: 1.0,
    };
    let mut out = String::new();
    frame(&mut out, id, title, "", yl, &x, &y, series_names.len());
    let (x0, x1, y0, y1) = (ML, W - MR, H - MB, MT);
    let per = series_names.len().max(1) as f64;
    let slot = (x1 - x0) / groups.len().max(1) as f64;
    let width = slot * 0.8 / per;
    for (g, name) in groups.iter().enumerate() {
        let _ = write!(
            out,
            r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x0 + slot * (g as f64 + 0.5),
            y0 + 16.0,
            escape(name)
        );
    }
    let base = y.at(y.lo.max(0.0).min(y.hi), y0, y1);
    for b in bars {
        let g = groups.iter().position(|n| *n == b.group).unwrap_or(0) as f64;
        let left = x0 + slot * (g + 0.1) + width * b.series as f64;
        let top = y.at(b.value, y0, y1);
        let name = series_names.get(b.series).map_or("", String::as_str);
        let tip = format!(
            "<title>{} {}: {}</title>",
            escape(&b.group),
            escape(name),
            short(b.value)
        );
        if from_zero {
            let _ = write!(
                out,
                r#"<rect class="bar" x="{left:.1}" y="{:.1}" width="{width:.1}" height="{:.1}" fill="{}" data-value="{}">{tip}</rect>"#,
                top.min(base),
                (base - top).abs(),
                colour(b.series),
                b.value,
            );
        } else {
            // An axis that does not start at zero would make bar lengths lie: a point instead.
            let _ = write!(
                out,
                r#"<circle class="point" cx="{:.1}" cy="{top:.1}" r="5" fill="{}" data-value="{}">{tip}</circle>"#,
                left + width / 2.0,
                colour(b.series),
                b.value,
            );
        }
        if let Some((lo, hi)) = b.interval {
            let cx = left + width / 2.0;
            let _ = write!(
                out,
                r#"<line class="whisker" x1="{cx:.1}" x2="{cx:.1}" y1="{:.1}" y2="{:.1}" stroke="black"/>"#,
                y.at(lo, y0, y1),
                y.at(hi, y0, y1)
            );
        }
    }
    let entries: Vec<(&str, &str, bool)> = series_names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), colour(i), false))
        .collect();
    legend(&mut out, &entries);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_carry_their_values_and_escape_names() {
        let s = line_chart(
            "c",
            "AUC <valid>",
            "epoch",
            "AUC",
            &[Series {
                name: "a&b".into(),
                points: vec![(1.0, 0.5), (2.0, 0.75)],
                dashed: false,
                colour: colour(0),
            }],
        );
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(s.contains(r#"data-value="0.75""#));
        assert!(s.contains("AUC &lt;valid&gt;") && s.contains("a&amp;b"));
        assert_eq!(s.matches("<circle").count(), 2);
        let b = bar_chart(
            "b",
            "t",
            "rows",
            &["actual".into(), "predicted".into()],
            &[
                Bar {
                    group: "click".into(),
                    series: 0,
                    value: 10.0,
                    interval: None,
                },
                Bar {
                    group: "click".into(),
                    series: 1,
                    value: 12.5,
                    interval: Some((11.0, 14.0)),
                },
            ],
            true,
        );
        assert_eq!(b.matches("<rect class=\"bar\"").count(), 2);
        assert!(b.contains(r#"data-value="12.5""#) && b.contains("whisker"));
        let r = reliability_chart("r", "t", &[(0.1, 0.12, 5), (0.4, 0.35, 5)]);
        assert!(r.contains(r#"data-value="0.35""#) && r.contains("diagonal"));
    }
}
