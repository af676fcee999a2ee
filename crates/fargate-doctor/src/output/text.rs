//! Human-readable output in the style of rustc and ruff.

use std::fmt::Write as _;

use crate::lint::Report;
use crate::rules::Severity;

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn sev(&self, s: Severity) -> String {
        let code = match s {
            Severity::Error => "1;31",
            Severity::Warning => "1;33",
            Severity::Note => "1;36",
        };
        self.paint(code, s.as_str())
    }
    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    fn blue(&self, s: &str) -> String {
        self.paint("1;34", s)
    }
}

pub fn render(report: &Report, color: bool) -> String {
    let st = Style { color };
    let mut out = String::new();
    for f in &report.findings {
        let _ = writeln!(
            out,
            "{}{} {}",
            st.sev(f.severity),
            st.bold(&format!("[{}]", f.code)),
            st.bold(&f.message)
        );
        let gutter = f.line.to_string().len();
        let pad = " ".repeat(gutter);
        let _ = writeln!(
            out,
            "{pad}{} {}:{}:{}",
            st.blue("-->"),
            f.file,
            f.line,
            f.column
        );
        if let Some(line) = report
            .sources
            .get(&f.file)
            .and_then(|s| s.lines().nth(f.line.saturating_sub(1)))
        {
            let _ = writeln!(out, "{pad} {}", st.blue("|"));
            let _ = writeln!(
                out,
                "{} {} {}",
                st.blue(&f.line.to_string()),
                st.blue("|"),
                line.trim_end()
            );
            let caret_pad: String = line
                .chars()
                .take(f.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = writeln!(
                out,
                "{pad} {} {caret_pad}{}",
                st.blue("|"),
                st.sev_caret(f.severity)
            );
        }
        let _ = writeln!(
            out,
            "{pad} {} {}: {}",
            st.blue("="),
            st.bold("help"),
            f.help
        );
        let _ = writeln!(out);
    }
    let (e, w, n) = super::counts(&report.findings);
    let plural = |n: usize, s: &str| {
        if n == 1 {
            format!("{n} {s}")
        } else {
            format!("{n} {s}s")
        }
    };
    if !report.errors.is_empty() {
        // Never "No problems found" when some files could not be checked.
        let _ = writeln!(
            out,
            "{} could not be checked (see the errors above); found {}, {} and {} in {}.",
            plural(report.errors.len(), "file"),
            plural(e, "error"),
            plural(w, "warning"),
            plural(n, "note"),
            plural(report.files_checked, "template")
        );
    } else if report.findings.is_empty() {
        let _ = writeln!(
            out,
            "No problems found in {}.",
            plural(report.files_checked, "template")
        );
    } else {
        let _ = writeln!(
            out,
            "Found {}, {} and {} in {}.",
            plural(e, "error"),
            plural(w, "warning"),
            plural(n, "note"),
            plural(report.files_checked, "template")
        );
    }
    out
}

impl Style {
    fn sev_caret(&self, s: Severity) -> String {
        let code = match s {
            Severity::Error => "1;31",
            Severity::Warning => "1;33",
            Severity::Note => "1;36",
        };
        self.paint(code, "^")
    }
}
