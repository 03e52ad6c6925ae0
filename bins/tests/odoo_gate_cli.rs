//! The `odoo-gate` binary: run, check and demo against the fake Odoo, every output
//! format, every exit code, and no secret anywhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deploy_test_support::{assert_exit, text};
use std::path::Path;
use std::process::Output;

use odoo_fixtures::{FakeOdoo, Fault, ModuleState};
use serde_json::Value;

/// The fake's admin password: must never show up in any output.
const SECRET: &str = "s3cret-Gate-pass-7f3a";
const API_KEY: &str = "api-key-9c1d-never-shown";

async fn fake() -> FakeOdoo {
    FakeOdoo::builder()
        .database("demo")
        .user("admin", SECRET)
        .api_key("admin", API_KEY)
        .module("sale", ModuleState::Installed)
        .release("r42")
        .start()
        .await
        .expect("start fake odoo")
}

/// Runs the binary with `env` set (and the environment otherwise clean of what could
/// change its behaviour).
async fn odoo_gate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_odoo-gate"));
    command
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env_remove("ODOO_URL")
        .env_remove("ODOO_DB")
        .env_remove("ODOO_USER")
        .env_remove("ODOO_PASSWORD");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().await.expect("run odoo-gate")
}

#[track_caller]
fn assert_no_secret(texts: &[&str]) {
    for text in texts {
        for secret in [SECRET, API_KEY, "hunter2"] {
            assert!(!text.contains(secret), "`{secret}` leaked:\n{text}");
        }
    }
}

/// Stdout as JSON: a gate report, checked against `schemas/gate-report.schema.json`.
fn json(out: &Output) -> Value {
    let value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{}", text(&out.stdout)));
    deploy_test_support::assert_schema("gate-report", &value);
    value
}

/// A plan for the fake at `url`, with `gates` appended.
fn plan(dir: &Path, url: &str, run: &str, gates: &str) -> std::path::PathBuf {
    let path = dir.join("gates.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[run]
{run}

[[targets]]
name = "green"
url = "{url}"
database = "demo"
login = "admin"
password = {{ env = "TEST_ODOO_PASSWORD" }}

{gates}
"#
        ),
    )
    .unwrap();
    path
}

const GOOD_GATES: &str = r#"
[[gates]]
name = "health"
kind = "health"
db_server_status = true

[[gates]]
name = "auth"
kind = "authentication"
depends_on = ["health"]

[[gates]]
name = "modules"
kind = "modules"
modules = ["sale"]
depends_on = ["auth"]

[[gates]]
name = "version"
kind = "version"
expected_release = "r42"
"#;

// ----- demo ------------------------------------------------------------------------

#[tokio::test]
async fn demo_runs_every_gate_and_says_what_it_left_out() {
    let out = odoo_gate(&["demo"], &[("DEPLOY_TEST_PG", "")]).await;
    assert_exit(&out, 0);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("STATUS  GATE"), "{stdout}");
    for gate in [
        "port",
        "health",
        "websocket",
        "login-page",
        "version",
        "database",
        "auth",
        "modules",
        "smoke",
        "filestore",
        "response-time",
        "sessions",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(gate)),
            "{gate} missing:\n{stdout}"
        );
    }
    assert!(stdout.contains("passed: 12 gates, 1 round"), "{stdout}");
    assert!(
        stdout.contains("not run: postgres: no DSN in DEPLOY_TEST_PG"),
        "{stdout}"
    );
    assert!(!stdout.contains('\x1b'), "no colour when piped");
    // Progress goes to stderr, one line per check when it is not a terminal.
    let stderr = text(&out.stderr);
    assert!(stderr.contains("odoo-gate: smoke: pass in"), "{stderr}");
}

#[tokio::test]
async fn demo_json_follows_the_report_schema() {
    let out = odoo_gate(&["demo", "--json", "--quiet"], &[("DEPLOY_TEST_PG", "")]).await;
    assert_exit(&out, 0);
    assert!(out.stderr.is_empty(), "quiet: {}", text(&out.stderr));
    let report = json(&out);
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["result"], "passed");
    assert_eq!(report["mode"], "once");
    assert_eq!(report["rounds"], 1);
    assert!(report["elapsed_ms"].is_u64());
    assert_eq!(report["failures"], serde_json::json!([]));
    let gates = report["gates"].as_array().unwrap();
    assert_eq!(gates.len(), 12);
    let kinds: Vec<&str> = gates.iter().map(|g| g["kind"].as_str().unwrap()).collect();
    for kind in [
        "tcp",
        "health",
        "websocket-health",
        "login-page",
        "database-listed",
        "authentication",
        "version",
        "modules",
        "smoke-crud",
        "filestore",
        "response-time",
        "session-continuity",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    for gate in gates {
        for key in [
            "name",
            "target",
            "kind",
            "depends_on",
            "timeout_ms",
            "failure_limit",
            "consecutive_error_limit",
            "last",
            "counts",
            "consecutive_errors",
            "total_duration_ms",
            "max_duration_ms",
        ] {
            assert!(gate.get(key).is_some(), "{key} in {gate}");
        }
        let last = &gate["last"];
        for key in ["round", "status", "message", "values", "duration_ms"] {
            assert!(last.get(key).is_some(), "{key} in {last}");
        }
    }
    let sessions = gates.iter().find(|g| g["name"] == "sessions").unwrap();
    assert_eq!(sessions["last"]["status"], "warn");
    let rt = gates.iter().find(|g| g["name"] == "response-time").unwrap();
    for value in ["avg_ms", "p50_ms", "p95_ms", "p99_ms", "errors"] {
        assert!(rt["last"]["values"][value].is_number(), "{value}");
    }
}

#[tokio::test]
async fn demo_checks_postgres_when_given_a_dsn() {
    let dsn = std::env::var("DEPLOY_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "DEPLOY_TEST_PG is not set: run `eval \"$(scripts/ensure-postgres.sh)\"` first (a \
             throwaway PostgreSQL on 127.0.0.1:55432)"
        )
    });
    let out = odoo_gate(&["demo", "--json", "-q"], &[("DEPLOY_TEST_PG", &dsn)]).await;
    assert_exit(&out, 0);
    let report = json(&out);
    let postgres = report["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "postgres")
        .expect("a postgres gate");
    assert_eq!(postgres["last"]["status"], "pass", "{postgres}");
    assert!(
        postgres["last"]["values"]["max_connections"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

// ----- run -----------------------------------------------------------------------------

#[tokio::test]
async fn run_passes_and_writes_junit_and_summary() {
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let path = plan(dir.path(), &fake.uri(), "", GOOD_GATES);
    let junit = dir.path().join("junit.xml");
    let summary = dir.path().join("summary.md");
    let args = [
        "run",
        "--plan",
        path.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
    ];
    let out = odoo_gate(&args, &[("TEST_ODOO_PASSWORD", SECRET)]).await;
    assert_exit(&out, 0);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    let junit_report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(
        (
            junit_report.tests,
            junit_report.failures,
            junit_report.errors
        ),
        (4, 0, 0),
        "{xml}"
    );
    let cases = &junit_report.test_suites[0].test_cases;
    assert_eq!(cases.len(), 4);
    let auth = cases.iter().find(|c| c.name.as_str() == "auth").unwrap();
    assert_eq!(
        auth.classname.as_ref().map(|c| c.as_str()),
        Some("odoo-gate.green.authentication")
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("### ✅ odoo-gate: passed"), "{md}");
    assert!(
        md.contains("| ✅ | `modules` | green | modules | pass |"),
        "{md}"
    );

    // The summary is appended to (a CI job summary collects several steps).
    let out = odoo_gate(&args, &[("TEST_ODOO_PASSWORD", SECRET)]).await;
    assert_exit(&out, 0);
    let md = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(md.matches("### ✅ odoo-gate: passed").count(), 2);
    assert_no_secret(&[&text(&out.stdout), &text(&out.stderr), &xml, &md]);
}

#[tokio::test]
async fn run_fails_with_exit_1_and_reports_the_failure_everywhere() {
    let fake = fake().await;
    fake.set_module_state("demo", "sale", ModuleState::ToUpgrade);
    let dir = tempfile::tempdir().unwrap();
    let path = plan(dir.path(), &fake.uri(), "", GOOD_GATES);
    let junit = dir.path().join("junit.xml");
    let summary = dir.path().join("summary.md");
    let out = odoo_gate(
        &[
            "run",
            "--plan",
            path.to_str().unwrap(),
            "--json",
            "--junit",
            junit.to_str().unwrap(),
            "--summary",
            summary.to_str().unwrap(),
        ],
        &[("TEST_ODOO_PASSWORD", SECRET)],
    )
    .await;
    assert_exit(&out, 1);
    let report = json(&out);
    assert_eq!(report["result"], "failed");
    assert_eq!(report["failures"][0]["gate"], "modules");
    assert_eq!(report["failures"][0]["reason"], "failure-limit");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let junit_report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(
        (junit_report.failures, junit_report.errors),
        (1, 0),
        "{xml}"
    );
    let failed = junit_report.test_suites[0]
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "modules")
        .unwrap();
    match &failed.status {
        quick_junit::TestCaseStatus::NonSuccess {
            message: Some(message),
            ty: Some(ty),
            ..
        } => {
            assert_eq!(ty.as_str(), "fail");
            assert_eq!(
                message.as_str(),
                "1 installed with an update pending (to upgrade): sale; finish the update (odoo -u sale)"
            );
        }
        other => panic!("modules is not a failure: {other:?}\n{xml}"),
    }
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("### ❌ odoo-gate: failed"), "{md}");
    assert!(md.contains("| ❌ | `modules` |"), "{md}");

    // A wrong password: a fail, and still no secret anywhere.
    let out = odoo_gate(
        &[
            "run",
            "--plan",
            path.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
        &[("TEST_ODOO_PASSWORD", "hunter2")],
    )
    .await;
    assert_exit(&out, 1);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("access denied"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_no_secret(&[&stdout, &text(&out.stderr), &xml]);
}

#[tokio::test]
async fn a_timed_out_plan_exits_1() {
    // Wait-until mode with a health check that keeps failing (tolerated by its
    // failure_limit): the plan gives up at its timeout.
    let fake = fake().await;
    fake.set_fault(Fault::HealthFailing(true));
    let dir = tempfile::tempdir().unwrap();
    let run =
        "mode = \"wait-until\"\ninterval = \"100ms\"\ntimeout = \"500ms\"\nfailure_limit = 100";
    let path = plan(dir.path(), &fake.uri(), run, GOOD_GATES);
    let out = odoo_gate(
        &["run", "--plan", path.to_str().unwrap(), "--json", "-q"],
        &[("TEST_ODOO_PASSWORD", SECRET)],
    )
    .await;
    assert_exit(&out, 1);
    let report = json(&out);
    assert_eq!(report["result"], "timed-out");
    assert!(report["rounds"].as_u64().unwrap() >= 2);
    let health = &report["gates"][0];
    assert_eq!(health["last"]["status"], "fail", "{health}");
    assert_eq!(report["gates"][1]["last"]["status"], "skipped");
}

#[tokio::test]
async fn configuration_errors_exit_2() {
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fake.uri();
    let secret_env = [("TEST_ODOO_PASSWORD", SECRET)];

    // An unknown key in the plan: named with its line, the source line not quoted.
    let path = plan(dir.path(), &url, "bogus = 1", GOOD_GATES);
    let out = odoo_gate(&["run", "--plan", path.to_str().unwrap()], &secret_env).await;
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("odoo-gate: error: "), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(out.stdout.is_empty());

    // A secret that does not resolve.
    let path = plan(dir.path(), &url, "", GOOD_GATES);
    let out = odoo_gate(&["run", "--plan", path.to_str().unwrap()], &[]).await;
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("secret environment variable `TEST_ODOO_PASSWORD` is not set"),
        "{}",
        text(&out.stderr)
    );

    // A plaintext secret without the opt-in: refused, and not quoted.
    let path = dir.path().join("plain.toml");
    std::fs::write(
        &path,
        format!(
            "[[targets]]\nname = \"t\"\nurl = \"{url}\"\npassword = {{ plain = \"{SECRET}\" }}\n\n[[gates]]\nname = \"h\"\nkind = \"health\"\n"
        ),
    )
    .unwrap();
    let out = odoo_gate(&["run", "--plan", path.to_str().unwrap()], &[]).await;
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("plaintext secret"),
        "{}",
        text(&out.stderr)
    );
    assert_no_secret(&[&text(&out.stdout), &text(&out.stderr)]);

    // A missing plan, a bad flag, an output file that cannot be written.
    let out = odoo_gate(&["run", "--plan", "/surely/not/here.toml"], &[]).await;
    assert_exit(&out, 2);
    let out = odoo_gate(&["run", "--plam", "x"], &[]).await;
    assert_exit(&out, 2);
    let out = odoo_gate(&["check"], &[]).await;
    assert_exit(&out, 2);
    let path = plan(dir.path(), &url, "", GOOD_GATES);
    let out = odoo_gate(
        &[
            "run",
            "--plan",
            path.to_str().unwrap(),
            "-q",
            "--junit",
            "/surely/not/here/junit.xml",
        ],
        &secret_env,
    )
    .await;
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("--junit /surely/not/here/junit.xml"),
        "{}",
        text(&out.stderr)
    );

    // A target that lacks what a gate needs.
    let path = dir.path().join("nologin.toml");
    std::fs::write(
        &path,
        format!("[[targets]]\nname = \"t\"\nurl = \"{url}\"\n\n[[gates]]\nname = \"a\"\nkind = \"authentication\"\n"),
    )
    .unwrap();
    let out = odoo_gate(&["run", "--plan", path.to_str().unwrap()], &[]).await;
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("target `t`: missing `database`"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn help_documents_the_exit_codes() {
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["check", "--help"],
        &["demo", "--help"],
    ] {
        let out = odoo_gate(args, &[]).await;
        assert_exit(&out, 0);
        let help = text(&out.stdout);
        assert!(help.contains("Exit codes:"), "{args:?}: {help}");
        assert!(help.contains("2  configuration or usage error"), "{help}");
    }
}

// ----- check ---------------------------------------------------------------------------

#[tokio::test]
async fn check_runs_the_standard_set() {
    let fake = fake().await;
    let url = fake.uri();
    let env = [("ODOO_PASSWORD", SECRET)];
    let base = ["check", "--url", &url, "--db", "demo", "--user", "admin"];

    let mut args = base.to_vec();
    args.extend([
        "--module",
        "sale",
        "--expect-release",
        "r42",
        "--json",
        "-q",
    ]);
    let out = odoo_gate(&args, &env).await;
    assert_exit(&out, 0);
    let report = json(&out);
    let names: Vec<&str> = report["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "port",
            "health",
            "websocket",
            "login-page",
            "version",
            "database",
            "auth",
            "modules"
        ]
    );

    // A module that is not installed: exit 1.
    let mut args = base.to_vec();
    args.extend(["--module", "stock"]);
    let out = odoo_gate(&args, &env).await;
    assert_exit(&out, 1);
    assert!(text(&out.stdout).contains("not installed: stock (not found)"));

    // Comprehensive, with an API key instead of the password, against a slot that does
    // not share sessions with the live one: users would be logged out.
    let live = fake_other().await;
    let live_url = live.uri();
    let mut args = base.to_vec();
    args.extend([
        "--comprehensive",
        "--password-env",
        "GATE_PW",
        "--session-from-url",
        &live_url,
    ]);
    let out = odoo_gate(&args, &[("GATE_PW", SECRET)]).await;
    assert_exit(&out, 1);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("users would be logged out on switch"),
        "{stdout}"
    );
    for gate in ["smoke", "filestore", "response-time", "sessions"] {
        assert!(stdout.contains(gate), "{gate}: {stdout}");
    }
    assert_no_secret(&[&stdout, &text(&out.stderr)]);

    let mut args = base.to_vec();
    args.extend(["--api-key-env", "GATE_KEY", "--json", "-q"]);
    let out = odoo_gate(&args, &[("GATE_KEY", API_KEY)]).await;
    assert_exit(&out, 0);
    assert_no_secret(&[&text(&out.stdout), &text(&out.stderr)]);

    // Without a database and user: only the probes.
    let out = odoo_gate(&["check", "--url", &url, "--json", "-q"], &[]).await;
    assert_exit(&out, 0);
    assert_eq!(json(&out)["gates"].as_array().unwrap().len(), 5);
}

async fn fake_other() -> FakeOdoo {
    FakeOdoo::builder()
        .database("demo")
        .user("admin", SECRET)
        .start()
        .await
        .expect("start the second fake")
}

/// A prefork Odoo whose real-time process died: the HTTP port serves, `check` with
/// `--realtime-url` fails on the websocket gate and names the port it checked.
#[tokio::test]
async fn check_upgrades_on_the_realtime_port_of_a_prefork_odoo() {
    let fake = FakeOdoo::builder().prefork().start().await.unwrap();
    let url = fake.uri();
    let realtime = fake.realtime_uri().unwrap();
    let args = [
        "check",
        "--url",
        url.as_str(),
        "--realtime-url",
        realtime.as_str(),
        "--json",
    ];
    let out = odoo_gate(&args, &[]).await;
    assert_exit(&out, 0);
    fake.set_fault(Fault::RealtimeDown(true));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let out = odoo_gate(&args, &[]).await;
    assert_exit(&out, 1);
    let report = json(&out);
    let websocket = report["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "websocket")
        .unwrap();
    let port = fake.realtime_address().unwrap().port();
    let message = websocket.to_string();
    assert!(
        message.contains(&format!("127.0.0.1:{port} (the real-time port)"))
            && message.contains("gevent"),
        "{websocket:#}"
    );
}
