//! Self-contained HTML pages (the run report here; the compare page in `compare`): one file each, styles inline,
//! charts as inline SVG, nothing fetched when the page is opened.

mod axis;
pub mod report;
pub mod svg;

use std::fmt::Write;

/// Text made safe for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}td.best{font-weight:bold;background:#eef6ee}
.charts{display:flex;flex-wrap:wrap;gap:12px}
svg.chart{border:1px solid #e4e4e4;background:#fff}svg .title{font-size:13px;font-weight:600}
svg .tick,svg .legend{font-size:11px}svg .label{font-size:12px}svg .grid{stroke:#eee}
svg .axes{fill:none;stroke:#999}pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:.85em}
.note{color:#555;font-size:.9em}";

/// A page under construction: sections of HTML appended in order.
pub struct Page {
    title: String,
    body: String,
}

impl Page {
    pub fn new(title: &str) -> Page {
        Page {
            title: title.to_string(),
            body: format!("<h1>{}</h1>\n", escape(title)),
        }
    }

    pub fn heading(&mut self, text: &str, id: &str) {
        let _ = writeln!(
            self.body,
            r#"<h2 id="section-{}">{}</h2>"#,
            escape(id),
            escape(text)
        );
    }

    /// A paragraph of plain text.
    pub fn note(&mut self, text: &str) {
        let _ = writeln!(self.body, r#"<p class="note">{}</p>"#, escape(text));
    }

    /// Charts side by side (each an `<svg>` from `svg`).
    pub fn charts(&mut self, charts: &[String]) {
        self.body.push_str("<div class=\"charts\">");
        for c in charts {
            self.body.push_str(c);
        }
        self.body.push_str("</div>\n");
    }

    /// A table; the first `left` columns are text (left-aligned). Cells are plain text, or
    /// marked best (bold) with a leading `*`.
    pub fn table(&mut self, id: &str, header: &[String], rows: &[Vec<String>], left: usize) {
        let _ = write!(self.body, r#"<table id="{}"><tr>"#, escape(id));
        for (i, h) in header.iter().enumerate() {
            let class = if i < left { r#" class="l""# } else { "" };
            let _ = write!(self.body, "<th{class}>{}</th>", escape(h));
        }
        self.body.push_str("</tr>");
        for row in rows {
            self.body.push_str("<tr>");
            for (i, cell) in row.iter().enumerate() {
                let (class, text) = match cell.strip_prefix('*') {
                    Some(t) => (r#" class="best""#, t),
                    None if i < left => (r#" class="l""#, cell.as_str()),
                    None => ("", cell.as_str()),
                };
                let _ = write!(self.body, "<td{class}>{}</td>", escape(text));
            }
            self.body.push_str("</tr>");
        }
        self.body.push_str("</table>\n");
    }

    /// Preformatted text (the resolved pipeline), folded under `summary` until opened.
    pub fn folded(&mut self, summary: &str, text: &str) {
        let _ = writeln!(
            self.body,
            "<details><summary>{}</summary><pre>{}</pre></details>",
            escape(summary),
            escape(text)
        );
    }

    pub fn finish(self) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n{}</body></html>\n",
            escape(&self.title),
            self.body
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_text_and_mark_best_cells() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let mut p = Page::new("run <1>");
        p.table(
            "t",
            &["model".into(), "AUC".into()],
            &[
                vec!["esmm".into(), "*0.9".into()],
                vec!["naive".into(), "0.8".into()],
            ],
            1,
        );
        let html = p.finish();
        assert!(
            html.starts_with("<!DOCTYPE html>") && html.contains("<title>run &lt;1&gt;</title>")
        );
        assert!(html.contains(r#"<td class="best">0.9</td>"#));
        assert!(html.contains(r#"<td class="l">naive</td><td>0.8</td>"#));
        assert!(!html.contains("<script") && !html.contains("src="));
    }
}
