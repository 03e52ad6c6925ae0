//! An addon validation [`Report`] (`odoo-gate validate`) as a terminal table, JSON, JUnit
//! XML and a Markdown summary, the way [`crate::render`] shows a gate report.
//!
//! - **Table** ([`table`]): one line per finding (`SEVERITY CODE LOCATION MESSAGE`, the
//!   fix under it), then one line per addon and the summary.
//! - **JSON** ([`json`]): the [`Report`] as `deploy_validate` documents it (schema
//!   `validate-report`, `schema_version` 1).
//! - **JUnit XML** ([`junit`]): one `<testcase>` per addon and family of checks
//!   (`classname` `odoo-gate.validate.ADDON`), `<failure>` when it has an error, its
//!   findings in the body; warnings go to `system-out`.
//! - **Markdown** ([`markdown`]): a heading with the result, the counts, and a table of
//!   the findings with `file:line`.

use std::fmt::Write as _;

use deploy_validate::{Finding, Report, Severity};

use crate::render::cell;

/// 0 when no error was found (warnings allowed), 1 otherwise.
#[must_use]
pub fn exit_code(report: &Report) -> u8 {
    u8::from(!report.passed())
}

/// `validate: fail: 3 errors, 1 warning in 12 addons (comprehensive, 17.0, 84 ms)`.
#[must_use]
pub fn summary_line(report: &Report) -> String {
    let plural = |n: u32, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut line = format!(
        "validate: {}: {}, {} in {} ({}, {}, {} ms)",
        if report.passed() { "pass" } else { "fail" },
        plural(report.errors, "error"),
        plural(report.warnings, "warning"),
        plural(
            u32::try_from(report.addons.len()).unwrap_or(u32::MAX),
            "addon"
        ),
        report.level.as_str(),
        report.series,
        report.elapsed_ms
    );
    if report.acknowledged > 0 {
        let _ = write!(
            line,
            "; {} acknowledged by the baseline",
            plural(report.acknowledged, "secret")
        );
    }
    line
}

fn location(finding: &Finding) -> String {
    format!("{}:{}", finding.file, finding.line)
}

/// The findings, then the addons and a summary line; with `colour`, the summary is
/// coloured with ANSI escapes.
#[must_use]
pub fn table(report: &Report, colour: bool) -> String {
    let paint = |text: &str, code: &str| {
        if colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    };
    let mut out = String::new();
    if !report.findings.is_empty() {
        let mut table = crate::table::Table::new(&["SEVERITY", "CODE", "LOCATION", "MESSAGE"]);
        for finding in &report.findings {
            table.row([
                finding.severity.as_str().to_owned(),
                format!("{} {}", finding.code, finding.name),
                location(finding),
                format!("{}\nfix: {}", finding.message, finding.fix),
            ]);
        }
        for line in table.render_lines() {
            let _ = writeln!(out, "{line}");
        }
        out.push('\n');
    }
    let mut addons = crate::table::Table::new(&["ADDON", "VERSION", "ERRORS", "WARNINGS"]);
    addons.align_right(2);
    addons.align_right(3);
    for addon in &report.addons {
        addons.row([
            addon.name.clone(),
            addon.version.clone().unwrap_or_else(|| "-".to_owned()),
            addon.errors.to_string(),
            addon.warnings.to_string(),
        ]);
    }
    out.push_str(&addons.render());
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let summary = summary_line(report);
    let _ = writeln!(
        out,
        "{}",
        paint(&summary, if report.passed() { "1;32" } else { "1;31" })
    );
    out
}

/// The report as pretty-printed JSON (the documented schema), with a trailing newline.
///
/// # Errors
/// Only if serialization fails, which a [`Report`] never does in practice.
pub fn json(report: &Report) -> serde_json::Result<String> {
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    Ok(text)
}

fn finding_text(finding: &Finding) -> String {
    format!(
        "{} {} {} {}: {} (fix: {})",
        finding.severity.as_str(),
        finding.code,
        location(finding),
        finding.name,
        finding.message,
        finding.fix
    )
}

/// The report as JUnit XML: a test suite `odoo-gate validate`, a test case per addon
/// and family of checks that ran.
///
/// # Errors
/// Only if the XML writer fails, which writing to memory does not.
pub fn junit(report: &Report) -> Result<String, quick_junit::SerializeError> {
    use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new("odoo-gate validate");
    suite.add_properties([
        Property::new("result", if report.passed() { "pass" } else { "fail" }),
        Property::new("level", report.level.as_str()),
        Property::new("series", report.series.as_str()),
    ]);
    suite.set_time(std::time::Duration::from_millis(report.elapsed_ms));
    for addon in &report.addons {
        for family in &report.families {
            let findings: Vec<&Finding> = report.findings_of(&addon.name, *family).collect();
            let errors: Vec<&&Finding> = findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .collect();
            let body = findings
                .iter()
                .map(|f| finding_text(f))
                .collect::<Vec<_>>()
                .join("\n");
            let status = if let Some(first) = errors.first() {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(format!(
                    "{} error(s); first: {} {}: {}",
                    errors.len(),
                    first.code,
                    location(first),
                    first.message
                ));
                status.set_type(first.code.as_str());
                status.set_description(body.as_str());
                status
            } else {
                TestCaseStatus::success()
            };
            let mut case = TestCase::new(family.as_str(), status);
            case.set_classname(format!("odoo-gate.validate.{}", addon.name));
            if errors.is_empty() && !body.is_empty() {
                case.set_system_out(body);
            }
            suite.add_test_case(case);
        }
    }
    let mut junit = quick_junit::Report::new("odoo-gate");
    junit.set_time(std::time::Duration::from_millis(report.elapsed_ms));
    junit.add_test_suite(suite);
    junit.to_string()
}

/// The report as a Markdown job summary.
#[must_use]
pub fn markdown(report: &Report) -> String {
    let mut out = format!(
        "### {} odoo-gate validate: {}\n\n{}\n\n",
        if report.passed() { "✅" } else { "❌" },
        if report.passed() { "pass" } else { "fail" },
        cell(&summary_line(report))
    );
    if report.findings.is_empty() {
        out.push_str("No finding.\n");
        return out;
    }
    out.push_str("| | code | location | message | fix |\n|---|---|---|---|---|\n");
    for finding in &report.findings {
        let _ = writeln!(
            out,
            "| {} | `{}` {} | `{}` | {} | {} |",
            match finding.severity {
                Severity::Error => "❌",
                Severity::Warning => "⚠️",
            },
            finding.code,
            cell(&finding.name),
            cell(&location(finding)),
            cell(&finding.message),
            cell(&finding.fix)
        );
    }
    out
}
