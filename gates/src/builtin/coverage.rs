//! The `coverage` gate and its settings: the addons' test coverage from coverage.py's
//! report, against a threshold and against the previous run's figures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::settings::invalid;
use crate::{Error, Gate, GateContext, Result, Verdict};

/// Checks the test coverage written by coverage.py (`coverage xml`, Cobertura, or
/// `coverage json`; told apart by content) against a threshold and a baseline.
///
/// - `Fail` when the total is under [`CoverageSettings::threshold`] (default 80 %);
/// - `Fail` when a baseline file holds the previous run's figures and the total dropped
///   below them by more than [`CoverageSettings::tolerance`] points, or, with
///   [`CoverageSettings::per_module`], when a module (an addon) did: the message names
///   the modules that dropped, from and to;
/// - `Pass` otherwise, and the run's figures are written to the baseline (unless
///   [`CoverageSettings::update_baseline`] is off), so the next run compares with them.
///   A baseline that does not exist yet passes and is created.
///
/// `Err` when the report cannot be read or understood (the check could not run).
///
/// A file's module is the folder after the last `addons` folder of its path
/// (`addons`, `*-addons`, `*_addons`), else its first folder: `shop/models/order.py`
/// and `src/odoo-addons/shop/models/order.py` are both `shop`. The total is the
/// report's own (lines, plus branches when coverage.py measured them); per module it is
/// covered lines over lines.
///
/// ```no_run
/// use std::sync::Arc;
/// use deploy_core::NullSink;
/// use deploy_gates::{Gate, GateContext, builtin::CoverageGate, CoverageSettings};
///
/// # async fn demo() -> deploy_gates::Result<()> {
/// let settings = CoverageSettings::for_report("coverage.xml");
/// let gate = CoverageGate::new("coverage", &settings);
/// let verdict = gate.check(&GateContext::new(Arc::new(NullSink))).await?;
/// println!("{}", verdict.message);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CoverageGate {
    name: String,
    settings: CoverageSettings,
}

impl CoverageGate {
    /// A gate named `name` with `settings`.
    #[must_use]
    pub fn new(name: impl Into<String>, settings: &CoverageSettings) -> Self {
        Self {
            name: name.into(),
            settings: settings.clone(),
        }
    }
}

/// Settings of a `coverage` gate. Paths are relative to the working directory.
///
/// ```toml
/// report = "coverage.xml"           # coverage.py's `coverage xml` or `coverage json`
/// threshold = 80.0                  # default 80: the total, in percent, must reach it
/// baseline = ".coverage-baseline.json"   # optional: the previous run's figures
/// per_module = true                 # default false: each module must not drop either
/// tolerance = 0.5                   # default 0: points a figure may drop
/// update_baseline = true            # default true: a passing run writes its figures
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageSettings {
    /// The report file.
    pub report: PathBuf,
    /// The lowest total accepted, in percent.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// The file holding the previous run's figures (JSON: `{"total": 83.1, "modules":
    /// {"shop": 90.2}}`).
    #[serde(default)]
    pub baseline: Option<PathBuf>,
    /// Compare each module with its previous figure too.
    #[serde(default)]
    pub per_module: bool,
    /// How many percentage points a figure may drop before it counts as a drop.
    #[serde(default)]
    pub tolerance: f64,
    /// Write this run's figures to the baseline when it passes.
    #[serde(default = "yes")]
    pub update_baseline: bool,
}

fn default_threshold() -> f64 {
    80.0
}

fn yes() -> bool {
    true
}

impl CoverageSettings {
    /// The defaults for `report`: 80 %, no baseline.
    #[must_use]
    pub fn for_report(report: impl Into<PathBuf>) -> Self {
        Self {
            report: report.into(),
            threshold: default_threshold(),
            baseline: None,
            per_module: false,
            tolerance: 0.0,
            update_baseline: true,
        }
    }

    /// Checks the values the types let through.
    pub(crate) fn validate(&self, gate: &str) -> Result<()> {
        if self.report.as_os_str().is_empty() {
            return invalid(gate, "report", "must not be empty".into());
        }
        if !(0.0..=100.0).contains(&self.threshold) {
            return invalid(gate, "threshold", "must be between 0 and 100".into());
        }
        if !(0.0..=100.0).contains(&self.tolerance) {
            return invalid(gate, "tolerance", "must be between 0 and 100".into());
        }
        if self.per_module && self.baseline.is_none() {
            return invalid(
                gate,
                "per_module",
                "compares with a baseline: give `baseline` too".into(),
            );
        }
        Ok(())
    }
}

/// The figures of one report: the total and each module's, in percent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoverageFigures {
    /// The whole report.
    pub total: f64,
    /// Per module (addon).
    #[serde(default)]
    pub modules: BTreeMap<String, f64>,
}

/// The module a covered file belongs to (see [`CoverageGate`]).
fn module_of(path: &str) -> Option<String> {
    let parts: Vec<&str> = path
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let after_addons = parts
        .iter()
        .rposition(|p| *p == "addons" || p.ends_with("-addons") || p.ends_with("_addons"))
        .map_or(0, |i| i + 1);
    // A file at the top (`setup.py`) belongs to no module.
    (after_addons + 1 < parts.len()).then(|| parts[after_addons].to_owned())
}

fn percent(covered: u64, total: u64) -> f64 {
    if total == 0 {
        100.0
    } else {
        // Counts of lines: far below f64's exact range.
        #[allow(clippy::cast_precision_loss)]
        let p = covered as f64 * 100.0 / total as f64;
        p
    }
}

/// Adds up `(module, covered, lines)` per module.
fn per_module(files: impl Iterator<Item = (String, u64, u64)>) -> BTreeMap<String, f64> {
    let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (path, covered, lines) in files {
        if let Some(module) = module_of(&path) {
            let entry = counts.entry(module).or_default();
            entry.0 += covered;
            entry.1 += lines;
        }
    }
    counts
        .into_iter()
        .map(|(module, (covered, lines))| (module, percent(covered, lines)))
        .collect()
}

/// Reads coverage.py's JSON report (`coverage json`).
fn parse_json(text: &str) -> std::result::Result<CoverageFigures, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not coverage.py's JSON report: {e}"))?;
    let total = value["totals"]["percent_covered"]
        .as_f64()
        .ok_or("no totals.percent_covered: not coverage.py's JSON report")?;
    let files = value["files"]
        .as_object()
        .ok_or("no files: not coverage.py's JSON report")?;
    let modules = per_module(files.iter().map(|(path, file)| {
        let summary = &file["summary"];
        (
            path.clone(),
            summary["covered_lines"].as_u64().unwrap_or(0),
            summary["num_statements"].as_u64().unwrap_or(0),
        )
    }));
    Ok(CoverageFigures { total, modules })
}

/// Reads a Cobertura report (`coverage xml`): the root's `line-rate` and
/// `branch-rate`, each `<class filename>`'s `<line hits>`.
fn parse_xml(text: &str) -> std::result::Result<CoverageFigures, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut total: Option<f64> = None;
    let mut file: Option<String> = None;
    let mut files: Vec<(String, u64, u64)> = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not a Cobertura XML report: {e}"))?;
        let (start, empty) = match &event {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            Event::End(e) if e.name().as_ref() == b"class" => {
                file = None;
                (None, false)
            }
            Event::Eof => break,
            _ => (None, false),
        };
        let Some(tag) = start else { continue };
        let attr = |name: &[u8]| -> Option<String> {
            tag.attributes()
                .flatten()
                .find(|a| a.key.as_ref() == name)
                .and_then(|a| {
                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .ok()
                        .map(|v| v.into_owned())
                })
        };
        match tag.name().as_ref() {
            b"coverage" => {
                let lines: f64 = attr(b"line-rate")
                    .and_then(|v| v.parse().ok())
                    .ok_or("the <coverage> element has no line-rate")?;
                let valid: f64 = attr(b"lines-valid")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0);
                let branches_valid: f64 = attr(b"branches-valid")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0);
                // coverage.py's own total counts lines and branches together.
                total = Some(if branches_valid > 0.0 {
                    let covered: f64 = attr(b"lines-covered")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(lines * valid);
                    let branches: f64 = attr(b"branches-covered")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0.0);
                    (covered + branches) * 100.0 / (valid + branches_valid)
                } else {
                    lines * 100.0
                });
            }
            b"class" if !empty => {
                let name = attr(b"filename").ok_or("a <class> element has no filename")?;
                files.push((name.clone(), 0, 0));
                file = Some(name);
            }
            b"line" if file.is_some() => {
                let hits: u64 = attr(b"hits").and_then(|v| v.parse().ok()).unwrap_or(0);
                if let Some(last) = files.last_mut() {
                    last.2 += 1;
                    if hits > 0 {
                        last.1 += 1;
                    }
                }
            }
            _ => {}
        }
    }
    let total = total.ok_or("no <coverage> element: not a Cobertura XML report")?;
    Ok(CoverageFigures {
        total,
        modules: per_module(files.into_iter()),
    })
}

/// Reads a report, XML or JSON by its first character.
///
/// # Errors
/// A message saying what the text is not.
pub fn parse_report(text: &str) -> std::result::Result<CoverageFigures, String> {
    match text.trim_start().chars().next() {
        Some('<') => parse_xml(text),
        Some('{') => parse_json(text),
        _ => Err("neither coverage.py's XML (Cobertura) nor its JSON report".to_owned()),
    }
}

async fn read_baseline(path: &Path) -> std::result::Result<Option<CoverageFigures>, String> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("baseline {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("baseline {}: {e}", path.display())),
    }
}

async fn write_baseline(path: &Path, figures: &CoverageFigures) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(figures).map_err(std::io::Error::other)?;
    text.push('\n');
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    tokio::fs::write(&tmp, text).await?;
    tokio::fs::rename(&tmp, path).await
}

#[async_trait]
impl Gate for CoverageGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, _cx: &GateContext) -> Result<Verdict> {
        let s = &self.settings;
        let text = tokio::fs::read_to_string(&s.report).await.map_err(|e| {
            Error::check_with_source(
                &self.name,
                format!("cannot read the coverage report {}", s.report.display()),
                e,
            )
        })?;
        let figures = parse_report(&text).map_err(|message| {
            Error::check(&self.name, format!("{}: {message}", s.report.display()))
        })?;
        let mut problems = Vec::new();
        if figures.total + 1e-9 < s.threshold {
            problems.push(format!(
                "coverage {:.1} % is under the threshold of {:.1} %",
                figures.total, s.threshold
            ));
        }
        let baseline = match &s.baseline {
            Some(path) => read_baseline(path)
                .await
                .map_err(|message| Error::check(&self.name, message))?,
            None => None,
        };
        let mut baseline_total = None;
        if let Some(before) = &baseline {
            baseline_total = Some(before.total);
            if figures.total + s.tolerance + 1e-9 < before.total {
                problems.push(format!(
                    "coverage dropped from {:.1} % to {:.1} %",
                    before.total, figures.total
                ));
            }
            if s.per_module {
                let dropped: Vec<String> = before
                    .modules
                    .iter()
                    .filter_map(|(module, was)| {
                        let now = figures.modules.get(module).copied().unwrap_or(0.0);
                        (now + s.tolerance + 1e-9 < *was)
                            .then(|| format!("{module} {was:.1} → {now:.1} %"))
                    })
                    .collect();
                if !dropped.is_empty() {
                    problems.push(format!("modules that dropped: {}", dropped.join(", ")));
                }
            }
        }
        let mut verdict = if problems.is_empty() {
            let mut message = format!(
                "coverage {:.1} % (threshold {:.1} %)",
                figures.total, s.threshold
            );
            match (&s.baseline, baseline_total) {
                (Some(_), Some(before)) => {
                    message.push_str(&format!("; {before:.1} % before"));
                }
                (Some(_), None) => message.push_str("; no baseline yet: this run's becomes it"),
                _ => {}
            }
            Verdict::pass(message)
        } else {
            Verdict::fail(problems.join("; "))
        };
        verdict = verdict
            .with_value("coverage_percent", figures.total)
            .with_value("threshold_percent", s.threshold);
        if let Some(before) = baseline_total {
            verdict = verdict.with_value("baseline_percent", before);
        }
        if verdict.is_pass() && s.update_baseline {
            if let Some(path) = &s.baseline {
                write_baseline(path, &figures).await.map_err(|e| {
                    Error::check_with_source(
                        &self.name,
                        format!("cannot write the baseline {}", path.display()),
                        e,
                    )
                })?;
            }
        }
        Ok(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const XML_ABOVE: &str = r#"<?xml version="1.0" ?>
<coverage version="7.4.0" timestamp="1" lines-valid="10" lines-covered="9" line-rate="0.9" branches-covered="0" branches-valid="0" branch-rate="0" complexity="0">
	<sources><source>/src/addons</source></sources>
	<packages>
		<package name="shop.models" line-rate="0.9" branch-rate="0" complexity="0">
			<classes>
				<class name="order.py" filename="shop/models/order.py" complexity="0" line-rate="0.8333" branch-rate="0">
					<methods/>
					<lines>
						<line number="1" hits="1"/><line number="2" hits="1"/><line number="3" hits="1"/>
						<line number="4" hits="1"/><line number="5" hits="1"/><line number="6" hits="0"/>
					</lines>
				</class>
				<class name="partner.py" filename="src/odoo-addons/crm_x/models/partner.py" complexity="0" line-rate="1" branch-rate="0">
					<methods/>
					<lines><line number="1" hits="3"/><line number="2" hits="1"/><line number="3" hits="2"/><line number="4" hits="1"/></lines>
				</class>
			</classes>
		</package>
	</packages>
</coverage>
"#;

    const JSON_UNDER: &str = r#"{"meta": {"version": "7.4.0"}, "files": {
        "shop/models/order.py": {"summary": {"covered_lines": 6, "num_statements": 10, "percent_covered": 60.0}},
        "crm_x/models/partner.py": {"summary": {"covered_lines": 9, "num_statements": 10, "percent_covered": 90.0}}},
        "totals": {"covered_lines": 15, "num_statements": 20, "percent_covered": 75.0}}"#;

    const JSON_DROPPED: &str = r#"{"meta": {"version": "7.4.0"}, "files": {
        "shop/models/order.py": {"summary": {"covered_lines": 7, "num_statements": 10, "percent_covered": 70.0}},
        "crm_x/models/partner.py": {"summary": {"covered_lines": 10, "num_statements": 10, "percent_covered": 100.0}}},
        "totals": {"covered_lines": 17, "num_statements": 20, "percent_covered": 85.0}}"#;

    fn cx() -> GateContext {
        GateContext::new(Arc::new(deploy_core::NullSink))
    }

    async fn run(dir: &Path, report: &str, settings: impl Fn(&mut CoverageSettings)) -> Verdict {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("report-{n}"));
        std::fs::write(&path, report).unwrap();
        let mut s = CoverageSettings::for_report(&path);
        settings(&mut s);
        s.validate("coverage").unwrap();
        CoverageGate::new("coverage", &s)
            .check(&cx())
            .await
            .unwrap()
    }

    #[test]
    fn modules_are_the_folder_after_addons() {
        assert_eq!(module_of("shop/models/order.py").as_deref(), Some("shop"));
        assert_eq!(
            module_of("src/odoo-addons/shop/models/order.py").as_deref(),
            Some("shop")
        );
        assert_eq!(
            module_of("./addons/sale_x/__init__.py").as_deref(),
            Some("sale_x")
        );
        assert_eq!(module_of("setup.py"), None);
    }

    #[test]
    fn both_report_formats_are_read() {
        let xml = parse_report(XML_ABOVE).unwrap();
        assert!((xml.total - 90.0).abs() < 1e-6, "{xml:?}");
        assert!((xml.modules["shop"] - 500.0 / 6.0).abs() < 1e-6, "{xml:?}");
        assert!((xml.modules["crm_x"] - 100.0).abs() < 1e-6, "{xml:?}");
        let json = parse_report(JSON_UNDER).unwrap();
        assert!((json.total - 75.0).abs() < 1e-6);
        assert!((json.modules["shop"] - 60.0).abs() < 1e-6);
        assert!(parse_report("coverage: 80%").is_err());
        assert!(parse_report("<html></html>").is_err());
        assert!(parse_report("{\"totals\": {}}").is_err());
    }

    /// The three reports of the issue: above the threshold, under it, dropped below the
    /// baseline: pass, fail, fail.
    #[tokio::test]
    async fn above_passes_under_fails_and_a_drop_fails_naming_the_modules() {
        let dir = tempfile::tempdir().unwrap();
        let baseline = dir.path().join("baseline.json");
        let with_baseline = |s: &mut CoverageSettings| {
            s.baseline = Some(baseline.clone());
            s.per_module = true;
        };
        // Above: passes, and its figures become the baseline.
        let above = run(dir.path(), XML_ABOVE, with_baseline).await;
        assert!(above.is_pass(), "{}", above.message);
        assert!(
            above.message.contains("no baseline yet"),
            "{}",
            above.message
        );
        let stored: CoverageFigures =
            serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
        assert!((stored.total - 90.0).abs() < 1e-6);
        // Under the threshold: fails, and the baseline is kept.
        let under = run(dir.path(), JSON_UNDER, |_| {}).await;
        assert!(!under.is_pass());
        assert!(
            under
                .message
                .contains("75.0 % is under the threshold of 80.0 %"),
            "{}",
            under.message
        );
        // Above the threshold but below the baseline: fails, naming the module.
        let dropped = run(dir.path(), JSON_DROPPED, with_baseline).await;
        assert!(!dropped.is_pass());
        assert!(
            dropped.message.contains("dropped from 90.0 % to 85.0 %")
                && dropped.message.contains("shop 83.3 → 70.0 %")
                && !dropped.message.contains("crm_x"),
            "{}",
            dropped.message
        );
        let kept: CoverageFigures =
            serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
        assert_eq!(kept, stored, "a failed run does not lower the baseline");
        // Within a tolerance, the same drop passes.
        let tolerated = run(dir.path(), JSON_DROPPED, |s| {
            with_baseline(s);
            s.tolerance = 15.0;
        })
        .await;
        assert!(tolerated.is_pass(), "{}", tolerated.message);
    }

    #[tokio::test]
    async fn a_missing_or_unreadable_report_is_an_error_not_a_verdict() {
        let gate = CoverageGate::new(
            "coverage",
            &CoverageSettings::for_report("/nonexistent/coverage.xml"),
        );
        assert!(matches!(gate.check(&cx()).await, Err(Error::Check { .. })));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coverage.xml");
        std::fs::write(&path, "<coverage><broken").unwrap();
        let gate = CoverageGate::new("coverage", &CoverageSettings::for_report(&path));
        assert!(matches!(gate.check(&cx()).await, Err(Error::Check { .. })));
    }

    #[test]
    fn settings_are_checked() {
        let mut s = CoverageSettings::for_report("c.xml");
        s.threshold = 120.0;
        assert!(s.validate("g").is_err());
        let mut s = CoverageSettings::for_report("c.xml");
        s.per_module = true;
        assert!(s.validate("g").is_err());
    }
}
