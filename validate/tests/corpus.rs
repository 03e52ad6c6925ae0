//! The corpus of `fixtures/addons-corpus`: one case per check code, each an addons
//! folder with one known defect, and a clean set. Each case's `expected.txt` names its
//! level and its findings (`CODE addon/file:line`); the run must find exactly those.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use deploy_validate::{validate, Level, Options};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/addons-corpus")
}

/// The level and the sorted findings a case declares.
fn expected(case: &Path) -> (Level, Vec<String>) {
    let text = std::fs::read_to_string(case.join("expected.txt"))
        .unwrap_or_else(|e| panic!("{}: {e}", case.display()));
    let mut level = None;
    let mut findings = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("# level:") {
            level = Some(
                rest.trim()
                    .parse::<Level>()
                    .unwrap_or_else(|e| panic!("{}: {e}", case.display())),
            );
        } else if !line.is_empty() && !line.starts_with('#') {
            findings.push(line.to_owned());
        }
    }
    findings.sort();
    let level = level.unwrap_or_else(|| panic!("{}: no `# level:` line", case.display()));
    (level, findings)
}

fn found(case: &Path, level: Level) -> Vec<String> {
    let report = validate(&[case.to_path_buf()], &Options::new(level, "17.0"))
        .unwrap_or_else(|e| panic!("{}: {e}", case.display()));
    let mut findings: Vec<String> = report
        .findings
        .iter()
        .map(|f| format!("{} {}:{}", f.code, f.file, f.line))
        .collect();
    findings.sort();
    findings
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap_or_else(|e| panic!("{}: {e}", corpus().display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join("expected.txt").is_file())
        .collect();
    cases.sort();
    cases
}

#[test]
fn every_case_finds_exactly_its_defects() {
    let cases = cases();
    assert!(cases.len() >= 29, "{} cases", cases.len());
    let mut wrong = Vec::new();
    for case in &cases {
        let (level, expected) = expected(case);
        let found = found(case, level);
        if found != expected {
            wrong.push(format!(
                "{} at {}:\n  expected {expected:#?}\n  found    {found:#?}",
                case.file_name().unwrap_or_default().to_string_lossy(),
                level.as_str()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_code_but_the_git_ones_has_a_case() {
    let mut covered = std::collections::BTreeSet::new();
    for case in cases() {
        covered.extend(
            expected(&case)
                .1
                .iter()
                .filter_map(|f| f.split(' ').next().map(str::to_owned)),
        );
    }
    let missing: Vec<&str> = deploy_validate::Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !c.starts_with('G') && !covered.contains(*c))
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a corpus case: {missing:?}"
    );
}

#[test]
fn a_defect_found_at_a_level_is_found_at_every_higher_one() {
    for case in cases() {
        let (level, expected) = expected(&case);
        for higher in [Level::Comprehensive, Level::Bulletproof] {
            if higher <= level {
                continue;
            }
            let found = found(&case, higher);
            let missing: Vec<&String> = expected.iter().filter(|f| !found.contains(f)).collect();
            assert!(
                missing.is_empty(),
                "{} at {}: {missing:?} no longer found",
                case.display(),
                higher.as_str()
            );
        }
    }
}
