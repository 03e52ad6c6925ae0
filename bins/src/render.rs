//! A gate [`Report`] as a terminal table, JSON, JUnit XML and a Markdown summary.
//!
//! - **Table** ([`table`]): one line per gate, for people; colours only when asked.
//! - **JSON** ([`json`]): the [`Report`] exactly as `deploy_gates::report` documents it
//!   (`schema_version` 1: field names and spellings are stable; a change that removes or
//!   renames anything bumps the version).
//! - **JUnit XML** ([`junit`]): one `<testcase>` per gate (`classname`
//!   `odoo-gate.TARGET.KIND`), with `<failure>` for `fail` and `inconclusive`, `<error>` for
//!   `error` and `cancelled`, `<skipped>` for `skipped`, never-evaluated and not-run gates.
//! - **Markdown** ([`markdown`]): a heading with the result and a table, for a CI job
//!   summary (`$GITHUB_STEP_SUMMARY`).
//!
//! Gates left out of a run by configuration (the demo's `postgres` without a DSN) are
//! passed as [`NotRun`] entries: the table, the JUnit file and the summary show them;
//! the JSON report does not (it reports what ran).

use std::fmt::Write as _;

use deploy_gates::{GateReport, GateStatus, Report, RunResult};

/// A gate that was not part of the run because of its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRun {
    /// The gate's name.
    pub gate: String,
    /// Why, and how to include it.
    pub reason: String,
}

/// The process exit code for a report: 0 when the run passed (warnings allowed), 1
/// otherwise (a gate failed, the plan timed out, or the run was inconclusive).
#[must_use]
pub fn exit_code(report: &Report) -> u8 {
    if report.passed() {
        0
    } else {
        1
    }
}

/// The status a gate ended with, or `None` when it was never evaluated.
fn status(gate: &GateReport) -> Option<GateStatus> {
    gate.last_status()
}

fn status_text(gate: &GateReport) -> &'static str {
    status(gate).map_or("-", GateStatus::as_str)
}

/// Milliseconds for people: `12 ms`, `1.25 s`.
fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.2} s", ms as f64 / 1000.0)
    }
}

fn last_ms(gate: &GateReport) -> u64 {
    gate.last.as_ref().map_or(0, |last| last.duration_ms)
}

fn message(gate: &GateReport) -> &str {
    gate.last
        .as_ref()
        .map_or("not evaluated", |last| last.message.as_str())
}

/// One line: `passed: 12 gates, 1 round, 95 ms (1 warning)`.
#[must_use]
pub fn summary_line(report: &Report) -> String {
    let warnings = report.warnings().count();
    let mut line = format!(
        "{}: {} gate{}, {} round{}, {}",
        report.result,
        report.gates.len(),
        plural(report.gates.len()),
        report.rounds,
        plural(report.rounds as usize),
        duration(report.elapsed_ms)
    );
    if warnings > 0 {
        let _ = write!(line, " ({warnings} warning{})", plural(warnings));
    }
    if !report.not_passed.is_empty() && report.result != RunResult::Passed {
        let _ = write!(line, "; not passed: {}", report.not_passed.join(", "));
    }
    line
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The readable table: `STATUS GATE TARGET KIND TIME MESSAGE`, then the not-run gates
/// and a summary line. With `colour`, statuses are coloured with ANSI escapes.
#[must_use]
pub fn table(report: &Report, not_run: &[NotRun], colour: bool) -> String {
    let rows: Vec<[String; 6]> = report
        .gates
        .iter()
        .map(|gate| {
            [
                status_text(gate).to_owned(),
                gate.name.clone(),
                gate.target.clone().unwrap_or_default(),
                gate.kind.clone().unwrap_or_default(),
                duration(last_ms(gate)),
                message(gate).to_owned(),
            ]
        })
        .collect();
    let mut table =
        crate::table::Table::new(&["STATUS", "GATE", "TARGET", "KIND", "TIME", "MESSAGE"]);
    table.align_right(4);
    for row in &rows {
        table.row(row.iter().cloned());
    }
    // Colour after the layout: the status is each line's first column.
    let paint = |line: &str, width: usize, code: Option<&str>| match code {
        Some(code) if line.len() >= width && line.is_char_boundary(width) => {
            format!("\x1b[{code}m{}\x1b[0m{}", &line[..width], &line[width..])
        }
        _ => line.to_owned(),
    };
    let lines = table.render_lines();
    let mut out = String::new();
    if let Some(header) = lines.first() {
        let _ = writeln!(
            out,
            "{}",
            paint(header, "STATUS".len(), colour.then_some("1"))
        );
    }
    for ((gate, row), line) in report.gates.iter().zip(&rows).zip(lines.iter().skip(1)) {
        let code = colour.then(|| match status(gate) {
            Some(GateStatus::Pass) => "32",
            Some(GateStatus::Warn) => "33",
            Some(GateStatus::Fail | GateStatus::Error) => "31",
            Some(GateStatus::Inconclusive) => "35",
            Some(GateStatus::Skipped | GateStatus::Cancelled) | None => "2",
        });
        let _ = writeln!(out, "{}", paint(line, row[0].len(), code));
    }
    for skipped in not_run {
        let _ = writeln!(out, "not run: {}: {}", skipped.gate, skipped.reason);
    }
    let summary = summary_line(report);
    let summary = if colour {
        let code = match report.result {
            RunResult::Passed => "1;32",
            _ => "1;31",
        };
        format!("\x1b[{code}m{summary}\x1b[0m")
    } else {
        summary
    };
    let _ = writeln!(out, "{summary}");
    out
}

/// The report as pretty-printed JSON (the documented schema), with a trailing newline.
///
/// # Errors
///
/// Only if serialization fails, which a [`Report`] never does in practice.
pub fn json(report: &Report) -> serde_json::Result<String> {
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    Ok(text)
}

/// Escapes text for XML attributes and content, dropping characters XML 1.0 forbids.
#[must_use]
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn values_text(gate: &GateReport) -> String {
    gate.last
        .as_ref()
        .map(|last| {
            last.values
                .iter()
                .map(|(name, value)| format!("{name} = {}", number(*value)))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// A value without useless decimals: `2`, `12.35`.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// The report as JUnit XML: one test suite `odoo-gate`, one test case per gate, plus a
/// skipped test case per gate in `not_run`.
#[must_use]
pub fn junit(report: &Report, not_run: &[NotRun]) -> String {
    let (mut failures, mut errors, mut skipped) = (0usize, 0usize, not_run.len());
    let mut cases = String::new();
    for gate in &report.gates {
        let classname = format!(
            "odoo-gate.{}.{}",
            gate.target.as_deref().unwrap_or("-"),
            gate.kind.as_deref().unwrap_or("gate")
        );
        let time = last_ms(gate) as f64 / 1000.0;
        let _ = write!(
            cases,
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{time:.3}\">",
            xml_escape(&gate.name),
            xml_escape(&classname)
        );
        let msg = xml_escape(message(gate));
        let values = xml_escape(&values_text(gate));
        let body = if values.is_empty() {
            msg.clone()
        } else {
            format!("{msg}\n{values}")
        };
        match status(gate) {
            Some(GateStatus::Pass) => {
                let _ = write!(cases, "\n      <system-out>{body}</system-out>\n    ");
            }
            Some(GateStatus::Warn) => {
                let _ = write!(
                    cases,
                    "\n      <system-out>warning: {body}</system-out>\n    "
                );
            }
            Some(status @ (GateStatus::Fail | GateStatus::Inconclusive)) => {
                failures += 1;
                let _ = write!(
                    cases,
                    "\n      <failure type=\"{status}\" message=\"{msg}\">{body}</failure>\n    "
                );
            }
            Some(status @ (GateStatus::Error | GateStatus::Cancelled)) => {
                errors += 1;
                let _ = write!(
                    cases,
                    "\n      <error type=\"{status}\" message=\"{msg}\">{body}</error>\n    "
                );
            }
            Some(GateStatus::Skipped) | None => {
                skipped += 1;
                let _ = write!(cases, "\n      <skipped message=\"{msg}\"/>\n    ");
            }
        }
        cases.push_str("</testcase>\n");
    }
    for entry in not_run {
        let _ = writeln!(
            cases,
            "    <testcase name=\"{}\" classname=\"odoo-gate.not-run\" time=\"0.000\">\n      <skipped message=\"not run: {}\"/>\n    </testcase>",
            xml_escape(&entry.gate),
            xml_escape(&entry.reason)
        );
    }
    let tests = report.gates.len() + not_run.len();
    let time = report.elapsed_ms as f64 / 1000.0;
    let counts = format!(
        "tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\""
    );
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites name=\"odoo-gate\" {counts}>\n  \
         <testsuite name=\"odoo-gate\" {counts}>\n    \
         <properties>\n      \
         <property name=\"result\" value=\"{}\"/>\n      \
         <property name=\"mode\" value=\"{}\"/>\n      \
         <property name=\"rounds\" value=\"{}\"/>\n    \
         </properties>\n{cases}  </testsuite>\n</testsuites>\n",
        report.result, report.mode, report.rounds
    )
}

/// Escapes text for a Markdown table cell: pipes, line breaks and HTML.
fn cell(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// The report as a Markdown job summary: a heading with the result, a line of counts, a
/// table of the gates, the not-run gates, and the measured values in a collapsed block.
#[must_use]
pub fn markdown(report: &Report, not_run: &[NotRun]) -> String {
    let icon = |status: Option<GateStatus>| match status {
        Some(GateStatus::Pass) => "✅",
        Some(GateStatus::Warn) => "⚠️",
        Some(GateStatus::Fail | GateStatus::Error) => "❌",
        Some(GateStatus::Inconclusive) => "❔",
        Some(GateStatus::Skipped | GateStatus::Cancelled) | None => "⏭️",
    };
    let mut out = format!(
        "### {} odoo-gate: {}\n\n{}\n\n| | gate | target | kind | status | time | message |\n|---|---|---|---|---|---|---|\n",
        if report.passed() { "✅" } else { "❌" },
        report.result,
        cell(&summary_line(report))
    );
    for gate in &report.gates {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} | {} | {} |",
            icon(status(gate)),
            cell(&gate.name),
            cell(gate.target.as_deref().unwrap_or("")),
            cell(gate.kind.as_deref().unwrap_or("")),
            status_text(gate),
            duration(last_ms(gate)),
            cell(message(gate))
        );
    }
    if !not_run.is_empty() {
        out.push('\n');
        for entry in not_run {
            let _ = writeln!(
                out,
                "- not run: `{}`: {}",
                cell(&entry.gate),
                cell(&entry.reason)
            );
        }
    }
    let measured: Vec<&GateReport> = report
        .gates
        .iter()
        .filter(|gate| {
            gate.last
                .as_ref()
                .is_some_and(|last| !last.values.is_empty())
        })
        .collect();
    if !measured.is_empty() {
        out.push_str(
            "\n<details><summary>measured values</summary>\n\n| gate | values |\n|---|---|\n",
        );
        for gate in measured {
            let values = values_text(gate).replace('\n', ", ");
            let _ = writeln!(out, "| `{}` | {} |", cell(&gate.name), cell(&values));
        }
        out.push_str("\n</details>\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escaping() {
        assert_eq!(
            xml_escape("a<b & \"c\" 'd'>\u{1}\n"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\u{fffd}\n"
        );
    }

    #[test]
    fn markdown_cells() {
        assert_eq!(cell("a|b\n<c>"), "a\\|b &lt;c&gt;");
    }

    #[test]
    fn numbers() {
        assert_eq!(number(2.0), "2");
        assert_eq!(number(12.345), "12.35");
    }
}
