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
/// skipped test case per gate in `not_run`. The XML is written by `quick-junit`, which
/// escapes text and drops what XML 1.0 forbids (control characters, ANSI colours).
///
/// # Errors
/// Only if the XML writer fails, which writing to memory does not.
pub fn junit(report: &Report, not_run: &[NotRun]) -> Result<String, quick_junit::SerializeError> {
    use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new("odoo-gate");
    suite.add_properties([
        Property::new("result", report.result.to_string()),
        Property::new("mode", report.mode.to_string()),
        Property::new("rounds", report.rounds.to_string()),
    ]);
    suite.set_time(std::time::Duration::from_millis(report.elapsed_ms));
    for gate in &report.gates {
        let msg = message(gate);
        let values = values_text(gate);
        let body = if values.is_empty() {
            msg.to_owned()
        } else {
            format!("{msg}\n{values}")
        };
        let with_message = |mut status: TestCaseStatus, kind: Option<GateStatus>| {
            status.set_message(msg);
            if let Some(kind) = kind {
                status.set_type(kind.to_string());
                status.set_description(body.as_str());
            }
            status
        };
        let (status, out) = match status(gate) {
            Some(GateStatus::Pass) => (TestCaseStatus::success(), Some(body.clone())),
            Some(GateStatus::Warn) => (TestCaseStatus::success(), Some(format!("warning: {body}"))),
            Some(kind @ (GateStatus::Fail | GateStatus::Inconclusive)) => (
                with_message(
                    TestCaseStatus::non_success(NonSuccessKind::Failure),
                    Some(kind),
                ),
                None,
            ),
            Some(kind @ (GateStatus::Error | GateStatus::Cancelled)) => (
                with_message(
                    TestCaseStatus::non_success(NonSuccessKind::Error),
                    Some(kind),
                ),
                None,
            ),
            Some(GateStatus::Skipped) | None => {
                (with_message(TestCaseStatus::skipped(), None), None)
            }
        };
        let mut case = TestCase::new(gate.name.as_str(), status);
        case.set_classname(format!(
            "odoo-gate.{}.{}",
            gate.target.as_deref().unwrap_or("-"),
            gate.kind.as_deref().unwrap_or("gate")
        ));
        case.set_time(std::time::Duration::from_millis(last_ms(gate)));
        if let Some(out) = out {
            case.set_system_out(out);
        }
        suite.add_test_case(case);
    }
    for entry in not_run {
        let mut status = TestCaseStatus::skipped();
        status.set_message(format!("not run: {}", entry.reason));
        let mut case = TestCase::new(entry.gate.as_str(), status);
        case.set_classname("odoo-gate.not-run");
        case.set_time(std::time::Duration::ZERO);
        suite.add_test_case(case);
    }
    let mut junit = quick_junit::Report::new("odoo-gate");
    junit.set_time(std::time::Duration::from_millis(report.elapsed_ms));
    junit.add_test_suite(suite);
    junit.to_string()
}

/// Escapes text for a Markdown table cell: pipes, line breaks and HTML.
pub(crate) fn cell(text: &str) -> String {
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

    /// A report with one gate of `status` whose message is `message`.
    fn one_gate(status: &str, message: &str) -> Report {
        let gate = serde_json::json!({
            "name": "smoke <&> \"quoted\"", "target": "green", "kind": "smoke-crud",
            "depends_on": [], "timeout_ms": 30000, "failure_limit": 0,
            "consecutive_error_limit": 4,
            "last": { "round": 1, "status": status, "message": message,
                      "values": { "latency_ms": 12.5 }, "duration_ms": 1500 },
            "counts": { "pass": 0, "warn": 0, "fail": 1, "error": 0, "inconclusive": 0,
                        "skipped": 0, "cancelled": 0 },
            "consecutive_errors": 0, "total_duration_ms": 1500, "max_duration_ms": 1500
        });
        let report = serde_json::json!({
            "schema_version": 1, "result": "failed", "mode": "once", "rounds": 1,
            "elapsed_ms": 1600, "stable_ms": 0, "failures": [], "not_passed": [],
            "gates": [gate]
        });
        serde_json::from_value(report).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn junit_of_hostile_text_is_well_formed_and_reads_back() {
        // What an Odoo error can put in a message: markup, quotes, a NUL, a terminal
        // colour, a CDATA terminator.
        let message = "record <res.partner,7> & \"x\" ]]> \u{0}\u{1b}[31mred\u{1b}[0m";
        let not_run = [NotRun {
            gate: "postgres".to_owned(),
            reason: "no dsn <given> & skipped".to_owned(),
        }];
        let xml = junit(&one_gate("fail", message), &not_run).unwrap_or_else(|e| panic!("{e}"));
        let back = quick_junit::Report::deserialize_from_str(&xml)
            .unwrap_or_else(|e| panic!("{e}: {xml}"));
        assert_eq!((back.tests, back.failures, back.errors), (2, 1, 0), "{xml}");
        let suite = &back.test_suites[0];
        let case = &suite.test_cases[0];
        assert_eq!(case.name.as_str(), "smoke <&> \"quoted\"");
        assert_eq!(
            case.classname.as_ref().map(|c| c.as_str()),
            Some("odoo-gate.green.smoke-crud")
        );
        match &case.status {
            quick_junit::TestCaseStatus::NonSuccess {
                kind,
                message: Some(m),
                ty: Some(ty),
                description: Some(d),
                ..
            } => {
                assert_eq!(*kind, quick_junit::NonSuccessKind::Failure);
                assert_eq!(m.as_str(), "record <res.partner,7> & \"x\" ]]> red");
                assert_eq!(ty.as_str(), "fail");
                assert!(d.as_str().ends_with("latency_ms = 12.50"), "{}", d.as_str());
            }
            other => panic!("not a failure: {other:?}"),
        }
        match &suite.test_cases[1].status {
            quick_junit::TestCaseStatus::Skipped {
                message: Some(m), ..
            } => {
                assert_eq!(m.as_str(), "not run: no dsn <given> & skipped");
            }
            other => panic!("not skipped: {other:?}"),
        }
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
