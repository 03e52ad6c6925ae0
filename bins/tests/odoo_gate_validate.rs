//! `odoo-gate validate` over the addons corpus: every output format, every exit code,
//! the secrets baseline round trip, and no secret value in any output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deploy_test_support::{assert_exit, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn corpus(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/addons-corpus")
        .join(case)
}

fn validate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_odoo-gate"))
        .arg("validate")
        .args(args)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run odoo-gate validate")
}

/// `validate CASE ARGS... --json --junit F --summary F`: the output, the JUnit file
/// and the Markdown summary.
fn validate_in_every_format(case: &Path, args: &[&str]) -> (Output, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let summary = dir.path().join("summary.md");
    let mut all = vec![case.to_str().unwrap()];
    all.extend_from_slice(args);
    all.extend([
        "--json",
        "--junit",
        junit.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
    ]);
    let out = validate(&all);
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    (out, read(&junit), read(&summary))
}

fn json(out: &Output) -> Value {
    let value: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{}", text(&out.stdout)));
    deploy_test_support::assert_schema("validate-report", &value);
    value
}

/// The secret values the corpus' s601 case writes (as its files have them): none may
/// be printed.
fn corpus_secrets() -> Vec<String> {
    let root = corpus("s601_secrets/shop_connector");
    let values = [
        ("models/shop_connector.py", "MIIEpAIBAAKCAQEALpyXrQfS"),
        ("models/shop_connector.py", "AKIA70TXSL8RHBPY0Q6U"),
        ("models/shop_connector.py", "Tr0ub4dor&3xQ"),
        ("data/connector_data.xml", "Kx9#mQ2vL7pzR4"),
        ("data/connector_data.xml", "Vq7!sLp2Zr8wNe"),
        (
            "static/src/js/supplier_portal.js",
            "1b0e8f16982f04cfc56843619aa15d29",
        ),
        (
            "static/src/js/supplier_portal.js",
            "AIza8s0Rc3VgTg9VaZEoBFUhIiJyqGNSOvQmIQb",
        ),
        (
            "tools/fetch_vendor_addons.sh",
            "ghp_O2R8UziJdi0Y4mj4TIJZ9RnvIh4TOetAfG82",
        ),
    ];
    for (rel, value) in values {
        let body = std::fs::read_to_string(root.join(rel)).unwrap();
        assert!(
            body.contains(value),
            "{rel} no longer holds {value}: update the test"
        );
    }
    values.iter().map(|(_, v)| (*v).to_owned()).collect()
}

#[test]
fn the_clean_set_passes_at_every_level_in_every_format() {
    for level in ["fast", "comprehensive", "bulletproof"] {
        let out = validate(&[corpus("clean").to_str().unwrap(), "--level", level]);
        assert_exit(&out, 0);
        let stdout = text(&out.stdout);
        assert!(stdout.contains("validate: pass: 0 errors"), "{stdout}");
        assert!(stdout.contains("shop_base"), "{stdout}");
    }
    let (out, xml, markdown) =
        validate_in_every_format(&corpus("clean"), &["--level", "bulletproof"]);
    assert_exit(&out, 0);
    let report = json(&out);
    assert_eq!(report["result"], "pass");
    assert_eq!(report["addons"].as_array().unwrap().len(), 3);
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    // Three addons, six families each (no git without --since).
    assert_eq!(parsed.tests, 18, "{xml}");
    assert_eq!(parsed.failures, 0, "{xml}");
    assert!(
        markdown.starts_with("### ✅ odoo-gate validate: pass"),
        "{markdown}"
    );
}

#[test]
fn a_defect_fails_with_its_code_file_and_line_in_every_format() {
    let case = corpus("x203_unresolved_ref");
    let out = validate(&[case.to_str().unwrap()]);
    assert_exit(&out, 1);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("X203 xml-ref-unresolved")
            && stdout.contains("course_session/views/course_session_views.xml:32")
            && stdout.contains("fix: "),
        "{stdout}"
    );
    let (out, xml, markdown) = validate_in_every_format(&case, &[]);
    assert_exit(&out, 1);
    let report = json(&out);
    assert_eq!(report["result"], "fail");
    assert_eq!(report["errors"], 1);
    let finding = &report["findings"][0];
    assert_eq!(finding["code"], "X203");
    assert_eq!(finding["line"], 32);
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(parsed.failures, 1, "{xml}");
    assert!(
        xml.contains("classname=\"odoo-gate.validate.course_session\""),
        "{xml}"
    );
    assert!(
        markdown.contains("`X203`")
            && markdown.contains("`course_session/views/course_session_views.xml:32`"),
        "{markdown}"
    );
    // Found at comprehensive, not at fast: the reference needs the index.
    let out = validate(&[case.to_str().unwrap(), "--level", "fast"]);
    assert_exit(&out, 0);
}

#[test]
fn secrets_are_never_printed_and_a_written_baseline_acknowledges_them() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = corpus_secrets();
    let case = corpus("s601_secrets");
    let table = validate(&[case.to_str().unwrap(), "--level", "fast"]);
    assert_exit(&table, 1);
    let (json_out, xml, markdown) = validate_in_every_format(&case, &[]);
    assert_exit(&json_out, 1);
    assert_eq!(json(&json_out)["errors"], 8);
    let baseline = dir.path().join("secrets.baseline");
    let written = validate(&[
        case.to_str().unwrap(),
        "--write-secrets-baseline",
        baseline.to_str().unwrap(),
    ]);
    assert_exit(&written, 0);
    let baseline_text = std::fs::read_to_string(&baseline).unwrap();
    assert_eq!(
        baseline_text
            .lines()
            .filter(|l| l.starts_with("S601 "))
            .count(),
        8
    );
    let with = validate(&[
        case.to_str().unwrap(),
        "--secrets-baseline",
        baseline.to_str().unwrap(),
    ]);
    assert_exit(&with, 0);
    assert!(text(&with.stdout).contains("8 secrets acknowledged by the baseline"));
    let outputs = [
        text(&table.stdout),
        text(&table.stderr),
        text(&json_out.stdout),
        xml,
        markdown,
        text(&written.stderr),
        baseline_text,
        text(&with.stdout),
    ];
    for output in &outputs {
        for secret in &secrets {
            assert!(
                !output.contains(secret.as_str()),
                "`{secret}` leaked:\n{output}"
            );
        }
    }
}

#[test]
fn usage_errors_exit_2_and_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let out = validate(&[dir.path().join("nope").to_str().unwrap()]);
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("nope"), "{}", text(&out.stderr));
    let out = validate(&[dir.path().to_str().unwrap()]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("no addon"),
        "{}",
        text(&out.stderr)
    );
    let out = validate(&[corpus("clean").to_str().unwrap(), "--level", "paranoid"]);
    assert_exit(&out, 2);
    let out = validate(&[
        corpus("clean").to_str().unwrap(),
        "--since",
        "no-such-revision",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("no-such-revision"),
        "{}",
        text(&out.stderr)
    );
    let bad = dir.path().join("bad.baseline");
    std::fs::write(&bad, "not a baseline line\n").unwrap();
    let out = validate(&[
        corpus("s601_secrets").to_str().unwrap(),
        "--secrets-baseline",
        bad.to_str().unwrap(),
    ]);
    assert_exit(&out, 2);
    let out = validate(&[
        corpus("clean").to_str().unwrap(),
        "--junit",
        dir.path().join("no/such/dir/junit.xml").to_str().unwrap(),
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("--junit"),
        "{}",
        text(&out.stderr)
    );
}
