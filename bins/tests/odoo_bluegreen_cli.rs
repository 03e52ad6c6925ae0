//! `odoo-bluegreen` as a pipeline runs it: the real binary, the real Docker engine, a
//! real HAProxy, the locally built fake Odoo image. Exit codes, JSON on stdout, the lock
//! and its holder, and `kill -9` of a deploy at each step followed by `status` and a
//! repairing `deploy`.
//!
//! The harness is deploy-bluegreen's own (`bluegreen/tests/util`), shared rather than
//! copied: it starts HAProxy on a loopback port in a temp dir, writes the stack file and
//! removes the stack's containers when a test ends, even when it fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use deploy_test_support as util;
use util::describe;

/// Stdout as JSON, checked against the schema of its kind (an error, a status, a plan,
/// an operation's report, a prune's report), as `schemas/` documents them.
fn json(output: &std::process::Output) -> serde_json::Value {
    let value = util::stdout_json(output);
    let has = |key: &str| value.get(key).is_some();
    let schema = if has("error") && has("exit_code") {
        "error"
    } else if has("health") && has("proxy") {
        "status"
    } else if has("stages") && has("target") {
        "deploy-plan"
    } else if has("operation") && has("result") {
        "operation-report"
    } else if has("decisions") {
        "prune"
    } else {
        panic!("output of no documented kind: {value:#}")
    };
    util::assert_schema(schema, &value);
    value
}

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use deploy_bluegreen::Slot;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use util::{fake_image, ProxyChoice, StackOptions, TestStack};

const BIN: &str = env!("CARGO_BIN_EXE_odoo-bluegreen");

/// Runs the binary to completion (at most 120 s).
async fn cli(config: &Path, args: &[&str]) -> Output {
    cli_env(config, args, &[]).await
}

async fn cli_env(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(BIN);
    command
        .arg("--config")
        .arg(config)
        .args(args)
        .env("ODOO_BLUEGREEN_OPERATOR", "ci")
        .env_remove("ODOO_BLUEGREEN_PAUSE_AT")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    match tokio::time::timeout(Duration::from_secs(120), command.output()).await {
        Ok(output) => output.unwrap(),
        Err(_) => panic!("odoo-bluegreen {args:?} did not finish within 120 s"),
    }
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

fn expect_code(output: &Output, expected: i32, stack: &TestStack) {
    assert_eq!(
        code(output),
        expected,
        "{}\n{}",
        describe(output),
        stack.diagnostics()
    );
}

const GATES: &str = r#"
[gates.pre_switch.run]
mode = "once"
[[gates.pre_switch.gates]]
name = "health"
kind = "health"
[[gates.pre_switch.gates]]
name = "login"
kind = "authentication"

[gates.post_switch.run]
mode = "once"
[[gates.post_switch.gates]]
name = "version"
kind = "version"
expected_version = "17.0"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_status_canary_and_rollback_through_the_cli() {
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let history_dir = stack.dir.path().join("history");
    let config = stack.write_config(&StackOptions {
        deploy: Some("rollback_window = \"keep\"\ndrain_timeout = \"1s\"".to_owned()),
        gates: GATES.to_owned(),
        history_dir: Some(history_dir.clone()),
        ..StackOptions::default()
    });
    let image = fake_image();

    let first = cli(
        &config,
        &["deploy", "--image", &image, "--release", "r1", "--json"],
    )
    .await;
    expect_code(&first, 0, &stack);
    let report = json(&first);
    assert_eq!(report["result"], "succeeded");
    assert_eq!(report["serving"], "green");
    assert!(
        String::from_utf8_lossy(&first.stderr).contains("[pre-gates]"),
        "progress on stderr:\n{}",
        describe(&first)
    );

    let second = cli(&config, &["deploy", "--image", &image, "--release", "r2"]).await;
    expect_code(&second, 0, &stack);
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(text.contains("deploy of r2 on stack"), "{text}");
    assert!(text.contains("serving   blue (r2)"), "{text}");

    let status = cli(&config, &["status", "--json"]).await;
    expect_code(&status, 0, &stack);
    let status = json(&status);
    assert_eq!(status["health"], "ok");
    assert_eq!(status["serving"], "blue");
    assert_eq!(status["live_release"], "r2");
    assert_eq!(status["slots"][1]["role"], "idle");
    assert_eq!(status["lock"]["state"], "free");
    let human = cli(&config, &["status"]).await;
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(human.contains("ok, blue serves r2"), "{human}");
    assert!(human.contains("through the proxy: r2 x10"), "{human}");

    let canary = cli(
        &config,
        &[
            "canary",
            "--image",
            &image,
            "--release",
            "r3",
            "--steps",
            "50,100",
            "--json",
        ],
    )
    .await;
    expect_code(&canary, 0, &stack);
    let canary = json(&canary);
    assert_eq!(canary["operation"], "canary");
    assert_eq!(canary["serving"], "green");
    let shares: Vec<&Value> = canary["gates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["plan"] == "post_switch")
        .map(|g| &g["share"])
        .collect();
    assert_eq!(shares, [&Value::from(50), &Value::from(100)]);

    let started = Instant::now();
    let rollback = cli(&config, &["rollback", "--json"]).await;
    let took = started.elapsed();
    expect_code(&rollback, 0, &stack);
    let rollback = json(&rollback);
    assert_eq!(rollback["serving"], "blue");
    assert_eq!(rollback["to"]["release"], "r2");
    eprintln!(
        "rollback command: {took:?} end to end, {} ms inside",
        rollback["timings"]["total_ms"]
    );
    let status = json(&cli(&config, &["status", "--json"]).await);
    assert_eq!(status["live_release"], "r2");

    // Every outcome went to deploy-rollback's history, which `odoo-rollback` reads.
    let records = history_records(&history_dir, stack.stack());
    let expected = [
        ("r1", "started"),
        ("r1", "succeeded"),
        ("r2", "started"),
        ("r2", "succeeded"),
        ("r3", "started"),
        ("r3", "succeeded"),
        ("r3", "rolled_back"),
    ]
    .map(|(r, s)| (r.to_owned(), s.to_owned(), "ci".to_owned()));
    assert_eq!(records, expected);
    let history = deploy_rollback::History::open(&history_dir).unwrap();
    let good = history
        .last_good(stack.stack(), deploy_core::Environment::Staging)
        .unwrap()
        .unwrap();
    assert_eq!(
        good.release, "r2",
        "the rolled-back r3 is not a good release"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_say_rolled_back_configuration_error_and_infrastructure_failure() {
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    // Only release `good` passes the post-switch check.
    let gates = GATES.replace("expected_version = \"17.0\"", "expected_release = \"good\"");
    let config = stack.write_config(&StackOptions {
        gates,
        ..StackOptions::default()
    });
    let image = fake_image();
    expect_code(
        &cli(&config, &["deploy", "--image", &image, "--release", "good"]).await,
        0,
        &stack,
    );

    // Exit 1: it passes its gates against the slot, fails through the proxy, and
    // traffic goes back.
    let bad = cli(
        &config,
        &["deploy", "--image", &image, "--release", "bad", "--json"],
    )
    .await;
    expect_code(&bad, 1, &stack);
    let report = json(&bad);
    assert_eq!(report["result"], "rolled-back");
    assert_eq!(report["stage"], "post-gates");
    assert_eq!(report["serving"], "green");
    let status = json(&cli(&config, &["status", "--json"]).await);
    assert_eq!(status["live_release"], "good");

    // Exit 2: configuration errors, nothing touched.
    let broken = stack.dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        std::fs::read_to_string(&config).unwrap() + "\nsurprise = true\n",
    )
    .unwrap();
    let out = cli(&broken, &["status"]).await;
    expect_code(&out, 2, &stack);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("surprise"),
        "{}",
        describe(&out)
    );
    expect_code(&cli(&config, &["deploy"]).await, 2, &stack);
    expect_code(
        &cli(&config, &["canary", "--image", &image, "--steps", "50,20"]).await,
        2,
        &stack,
    );
    expect_code(&cli(&config, &["deploy", "--bogus"]).await, 2, &stack);

    // Exit 3: the image does not exist on the engine.
    let missing = cli(
        &config,
        &[
            "deploy",
            "--image",
            "odoo-fake:no-such-tag",
            "--release",
            "x",
        ],
    )
    .await;
    expect_code(&missing, 3, &stack);
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no-such-tag"),
        "{}",
        describe(&missing)
    );
    let status = json(&cli(&config, &["status", "--json"]).await);
    assert_eq!(status["live_release"], "good");
    assert_eq!(status["health"], "ok");
}

/// A deploy running in the background, stopped at `step` by the test hook.
struct Paused {
    child: tokio::process::Child,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Paused {
    async fn start(config: &Path, args: &[&str], step: &str, operator: &str) -> Self {
        let mut child = tokio::process::Command::new(BIN)
            .arg("--config")
            .arg(config)
            .args(args)
            .env("ODOO_BLUEGREEN_OPERATOR", operator)
            .env("ODOO_BLUEGREEN_PAUSE_AT", step)
            .env("ODOO_BLUEGREEN_PAUSE_SECS", "120")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let marker = format!("paused at step {step} ");
        let collected = stderr.clone();
        let wait = async {
            while let Ok(Some(line)) = lines.next_line().await {
                let found = line.contains(&marker);
                collected.lock().unwrap().push_str(&(line + "\n"));
                if found {
                    return true;
                }
            }
            false
        };
        let reached = tokio::time::timeout(Duration::from_secs(90), wait).await;
        if reached != Ok(true) {
            let _ = child.start_kill();
            panic!(
                "the deploy did not pause at {step}:\n{}",
                stderr.lock().unwrap()
            );
        }
        // Keep draining stderr so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, stderr }
    }

    /// `kill -9`.
    async fn kill(mut self) {
        self.child.start_kill().unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_deploy_fails_at_once_naming_the_holder_and_a_killed_holder_is_taken_over() {
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let config = stack.write_config(&StackOptions::default());
    let image = fake_image();
    let first = Paused::start(
        &config,
        &["deploy", "--image", &image, "--release", "h1"],
        "observed",
        "alice",
    )
    .await;
    let pid = first.child.id().unwrap();

    let started = Instant::now();
    let second = cli(
        &config,
        &["deploy", "--image", &image, "--release", "h2", "--json"],
    )
    .await;
    let took = started.elapsed();
    expect_code(&second, 3, &stack);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("locked by pid {pid} on")) && stderr.contains("deploy by alice"),
        "the holder is named: {stderr}"
    );
    assert_eq!(json(&second)["holder"]["pid"], pid);
    assert!(
        took < Duration::from_secs(5),
        "refused at once, took {took:?}"
    );
    let status = json(&cli(&config, &["status", "--json"]).await);
    assert_eq!(status["lock"]["state"], "held");
    assert_eq!(status["lock"]["holder"]["operator"], "alice");
    eprintln!("{}", first.stderr.lock().unwrap());

    first.kill().await;
    let status = json(&cli(&config, &["status", "--json"]).await);
    assert_eq!(status["lock"]["state"], "stale", "{status:#}");
    assert_eq!(status["interrupted"], true);
    assert_eq!(status["last_operation"]["step"], "observed");

    let repaired = cli(
        &config,
        &["deploy", "--image", &image, "--release", "h1", "--json"],
    )
    .await;
    expect_code(&repaired, 0, &stack);
    let report = json(&repaired);
    let repairs = report["repairs"].to_string();
    assert!(
        repairs.contains("took over the stack lock") && repairs.contains(&format!("pid {pid}")),
        "{report:#}"
    );
    let status = json(&cli(&config, &["status", "--json"]).await);
    assert_eq!(status["lock"]["state"], "free");
    assert_eq!(status["live_release"], "h1");
}

/// Every step of a deploy at which the process can be killed, and whether traffic had
/// moved to the new release by then.
const KILL_POINTS: [(&str, bool); 13] = [
    ("locked", false),
    ("observed", false),
    ("starting", false),
    ("started", false),
    ("pre-gates", false),
    ("switching", false),
    ("switched", true),
    ("verified", true),
    ("post-gates", true),
    ("draining", true),
    ("drained", true),
    ("recorded", true),
    ("window", true),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_each_step_then_status_tells_the_truth_and_deploy_repairs() {
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let config = stack.write_config(&StackOptions {
        gates: GATES.to_owned(),
        ..StackOptions::default()
    });
    let image = fake_image();
    expect_code(
        &cli(&config, &["deploy", "--image", &image, "--release", "k0"]).await,
        0,
        &stack,
    );
    let mut live = "k0".to_owned();
    for (i, (step, switched)) in KILL_POINTS.into_iter().enumerate() {
        let release = format!("k{}", i + 1);
        let args = [
            "deploy",
            "--image",
            &image,
            "--release",
            &release,
            "--rollback-window",
            "1h",
        ];
        let paused = Paused::start(&config, &args, step, "ci").await;
        paused.kill().await;

        // `status` tells what is.
        let out = cli(&config, &["status", "--json"]).await;
        let status = json(&out);
        let context = format!("killed at {step}: {status:#}\n{}", stack.diagnostics());
        assert_eq!(status["health"], "ok", "{context}");
        assert_eq!(code(&out), 0, "{context}");
        let expected = if switched { &release } else { &live };
        assert_eq!(status["live_release"], expected.as_str(), "{context}");
        let through: Vec<&str> = status["through_proxy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| pair[0].as_str().unwrap())
            .collect();
        assert_eq!(
            through,
            [expected.as_str()],
            "one release serves: {context}"
        );
        if step == "window" {
            // The deploy had finished and released the lock; only the old slot's stop
            // was pending.
            assert_eq!(status["interrupted"], false, "{context}");
            assert_eq!(status["last_operation"]["result"], "succeeded", "{context}");
        } else {
            assert_eq!(status["interrupted"], true, "{context}");
            assert_eq!(status["last_operation"]["step"], step, "{context}");
            assert_eq!(status["lock"]["state"], "stale", "{context}");
        }

        // The next deploy of the same release finishes the job.
        let out = cli(
            &config,
            &[
                "deploy",
                "--image",
                &image,
                "--release",
                &release,
                "--rollback-window",
                "0s",
                "--json",
            ],
        )
        .await;
        expect_code(&out, 0, &stack);
        let report = json(&out);
        let expected_result = if switched { "unchanged" } else { "succeeded" };
        assert_eq!(
            report["result"], expected_result,
            "after {step}: {report:#}"
        );
        let status = json(&cli(&config, &["status", "--json"]).await);
        let context = format!("repaired after {step}: {status:#}");
        assert_eq!(status["health"], "ok", "{context}");
        assert_eq!(status["live_release"], release.as_str(), "{context}");
        assert_eq!(status["interrupted"], false, "{context}");
        assert_eq!(status["lock"]["state"], "free", "{context}");
        let roles: Vec<&str> = status["slots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["role"].as_str().unwrap())
            .collect();
        assert!(
            roles.contains(&"live") && !roles.contains(&"idle") && !roles.contains(&"partial"),
            "exactly one slot runs and serves: {context}"
        );
        live = release;
    }
}

/// `(release, status, extra(record))` of every history record of the stack.
fn history_rows<T>(
    history: &deploy_rollback::History,
    stack: &str,
    extra: impl Fn(&deploy_rollback::DeploymentRecord) -> T,
) -> Vec<(String, String, T)> {
    history
        .read_stack(stack)
        .unwrap()
        .iter()
        .map(|r| (r.release.clone(), r.status.as_str().to_owned(), extra(r)))
        .collect()
}

/// `(release, status, operator)` of every history record of the stack.
fn history_records(history_dir: &Path, stack: &str) -> Vec<(String, String, String)> {
    let history = deploy_rollback::History::open(history_dir).unwrap();
    history_rows(&history, stack, |r| r.operator.clone())
}

fn notes(status: &Value) -> Vec<String> {
    status["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

/// Seen with real Odoo 18 containers: with r2 live and r1 warm, a deploy of r3 killed
/// during its pre-switch gates left r3 running, ungated, in the idle slot; `rollback`
/// then moved traffic to r3 and `status` had suggested it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_killed_in_its_pre_switch_gates_is_never_rolled_back_to() {
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let history_dir = stack.dir.path().join("history");
    let config = stack.write_config(&StackOptions {
        deploy: Some("rollback_window = \"keep\"\ndrain_timeout = \"1s\"".to_owned()),
        gates: GATES.to_owned(),
        history_dir: Some(history_dir.clone()),
        ..StackOptions::default()
    });
    let image = fake_image();
    for release in ["r1", "r2"] {
        let out = cli(
            &config,
            &["deploy", "--image", &image, "--release", release],
        )
        .await;
        expect_code(&out, 0, &stack);
    }
    let paused = Paused::start(
        &config,
        &["deploy", "--image", &image, "--release", "r3"],
        "pre-gates",
        "ci",
    )
    .await;
    paused.kill().await;
    assert_eq!(
        stack.container_state(Slot::Green).as_deref(),
        Some("running")
    );

    let out = cli(&config, &["status", "--json"]).await;
    expect_code(&out, 0, &stack);
    let status = json(&out);
    assert_eq!(status["live_release"], "r2", "{status:#}");
    let said = notes(&status);
    assert!(
        said.iter()
            .any(|n| n.contains("r3, which never passed its gates")),
        "{said:#?}"
    );
    assert!(
        !said.iter().any(|n| n.contains("switches back to it")),
        "status never suggests rolling back to r3: {said:#?}"
    );

    let out = cli(&config, &["rollback", "--json"]).await;
    expect_code(&out, 0, &stack);
    let report = json(&out);
    assert_eq!(report["result"], "unchanged", "{report:#}");
    assert_eq!(report["serving"], "blue", "{report:#}");
    assert!(
        report["repairs"]
            .to_string()
            .contains("deploy of r3 by ci never finished"),
        "{report:#}"
    );
    let status = json(&cli(&config, &["status", "--json"]).await);
    assert_eq!(status["live_release"], "r2", "{status:#}");
    let through: Vec<&str> = status["through_proxy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[0].as_str().unwrap())
        .collect();
    assert_eq!(through, ["r2"], "{status:#}");

    let records = history_records(&history_dir, stack.stack());
    let r3: Vec<&str> = records
        .iter()
        .filter(|(release, _, _)| release == "r3")
        .map(|(_, status, _)| status.as_str())
        .collect();
    assert_eq!(r3, ["started", "interrupted"], "{records:#?}");
    // Closed once: a second operation finds nothing unfinished.
    expect_code(&cli(&config, &["rollback"]).await, 0, &stack);
    assert_eq!(
        history_records(&history_dir, stack.stack()).len(),
        records.len()
    );
}

/// Seen with real Odoo 18 containers: `status` exited 3 for every healthy stack whose
/// image sends no `X-Odoo-Release`, so monitoring on its exit code alarmed for ever. The
/// generated proxy configuration now names the slot that answered, which `status` shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exits_0_for_a_healthy_stack_whose_image_sends_no_release_header() {
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let history_dir = stack.dir.path().join("history");
    let config = stack.write_config(&StackOptions {
        deploy: Some(
            "rollback_window = \"0s\"\ndrain_timeout = \"1s\"\nverify_release = false".to_owned(),
        ),
        gates: GATES.to_owned(),
        history_dir: Some(history_dir.clone()),
        no_release_header: true,
        ..StackOptions::default()
    });
    // Run as cron does: no $USER, no $LOGNAME, no --operator.
    let out = tokio::process::Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args([
            "deploy",
            "--image",
            &fake_image(),
            "--release",
            "n1",
            "--json",
        ])
        .env_remove("USER")
        .env_remove("LOGNAME")
        .env_remove("ODOO_BLUEGREEN_OPERATOR")
        .envs(odoo_deploy::cli::CI_ACTOR_VARS.map(|v| (v, "")))
        .env_remove("ODOO_BLUEGREEN_PAUSE_AT")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    expect_code(&out, 0, &stack);
    let whoami = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let whoami = String::from_utf8_lossy(&whoami.stdout).trim().to_owned();
    let records = history_records(&history_dir, stack.stack());
    assert!(
        !records.is_empty() && records.iter().all(|(_, _, operator)| *operator == whoami),
        "the operator is the user name of the uid ({whoami}): {records:#?}"
    );

    let out = cli(&config, &["status", "--json"]).await;
    expect_code(&out, 0, &stack);
    let status = json(&out);
    assert_eq!(status["health"], "ok", "{status:#}");
    assert_eq!(status["problems"], Value::Array(vec![]), "{status:#}");
    // The image names no release, the generated HAProxy configuration names the slot.
    let through = status["through_proxy"].as_array().unwrap();
    let serving = format!("slot {}", status["serving"].as_str().unwrap());
    assert!(
        !through.is_empty() && through.iter().all(|pair| pair[0] == serving.as_str()),
        "{status:#}"
    );
    assert!(
        !notes(&status)
            .iter()
            .any(|n| n.contains("X-Odoo-Release") || n.contains("X-Deploy-Slot")),
        "nothing to say about verification: {status:#}"
    );

    // Nothing to roll back to: the documented 1, as in odoo-rollback.
    let out = cli(&config, &["rollback"]).await;
    expect_code(&out, 1, &stack);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to roll back to"),
        "{}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------------
// The pre-deploy backup, against the PostgreSQL test cluster of
// `scripts/ensure-postgres.sh` (`DEPLOY_TEST_PG`).

const ROLLBACK_BIN: &str = env!("CARGO_BIN_EXE_odoo-rollback");

/// A database password: the test cluster trusts loopback connections, so it is checked
/// by nobody, but it is in the URL the binary reads and must show up in no output.
const PG_SECRET: &str = "bg-Secret-7d2c-never-shown";

/// `(user, host, port)` of the test cluster.
fn pg_parts() -> (String, String, String) {
    let (user, host, port) = util::pg_server();
    (user, host, port.to_string())
}

/// The cluster's URL for database `db`, with [`PG_SECRET`] as the password when asked.
fn pg_url_for(db: &str, with_password: bool) -> String {
    let (user, host, port) = pg_parts();
    let password = if with_password {
        format!(":{PG_SECRET}")
    } else {
        String::new()
    };
    format!("postgres://{user}{password}@{host}:{port}/{db}")
}

/// Runs SQL with psql on `db`.
fn psql(db: &str, sql: &str) {
    let out = std::process::Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(pg_url_for(db, false))
        .args(["-c", sql])
        .output()
        .expect("run psql (Debian's postgresql-client)");
    assert!(
        out.status.success(),
        "psql on {db}: {sql}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A small database with a unique name, dropped when the test ends (even on failure).
struct TestDb {
    name: String,
}

impl TestDb {
    fn new() -> Self {
        let name = format!("bgt_backup_{:08x}", fastrand::u32(..));
        psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        psql(
            &name,
            "CREATE TABLE res_partner (id serial PRIMARY KEY, name text NOT NULL);
             INSERT INTO res_partner (name) VALUES ('Azure Interior'), ('Deco Addict');",
        );
        TestDb { name }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args(["-X", "-q", "-d"])
            .arg(pg_url_for("postgres", false))
            .args([
                "-c",
                &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// The names of the stack's containers, as Docker lists them (running or not).
fn stack_containers(stack: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(["ps", "-a", "--format", "{{.Names}}", "--filter"])
        .arg(format!("label=com.deployment.stack={stack}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn assert_no_secret(output: &Output) {
    let all = describe(output);
    assert!(!all.contains(PG_SECRET), "the password leaked:\n{all}");
}

/// `(release, status, backup_id)` of every history record of the stack.
fn backup_records(
    history: &deploy_rollback::History,
    stack: &str,
) -> Vec<(String, String, Option<String>)> {
    history_rows(history, stack, |r| r.backup_id.clone())
}

/// Runs `odoo-rollback prune --keep-last 0 --dry-run --json` on `store`; returns the
/// ids it would remove.
fn prune_dry_run(store: &Path, history: Option<&Path>) -> Vec<String> {
    let mut command = std::process::Command::new(ROLLBACK_BIN);
    command.args([
        "prune",
        "--keep-last",
        "0",
        "--dry-run",
        "--json",
        "--store",
    ]);
    command.arg(store);
    if let Some(history) = history {
        command.arg("--history").arg(history);
    }
    let out = command.output().unwrap();
    assert_eq!(code(&out), 0, "{}", describe(&out));
    json(&out)["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_takes_a_pre_deploy_backup_the_history_protects_and_a_failed_one_refuses_the_deploy()
{
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let db = TestDb::new();
    // Odoo's data_dir, with one attachment in the database's filestore.
    let attachments = stack
        .dir
        .path()
        .join("odoo-data/filestore")
        .join(&db.name)
        .join("3f");
    std::fs::create_dir_all(&attachments).unwrap();
    std::fs::write(attachments.join("3f0a9c"), b"an attachment").unwrap();
    let history_dir = stack.dir.path().join("history");
    let store_dir = stack.dir.path().join("backups");
    let pg_bin = std::env::var("DEPLOY_TEST_PG_BIN")
        .ok()
        .filter(|d| !d.is_empty())
        .map(|d| format!("pg_bin = {d:?}\n"))
        .unwrap_or_default();
    // Relative paths: from the stack file's directory.
    let config = stack.write_config(&StackOptions {
        history_dir: Some(history_dir.clone()),
        gates: format!(
            "[backup]\nstore = \"backups\"\ndatabase_url = {{ env = \"BGT_BACKUP_DB_URL\" }}\n\
             data_dir = \"odoo-data\"\n{pg_bin}"
        ),
        ..StackOptions::default()
    });
    let image = fake_image();
    let history = deploy_rollback::History::open(&history_dir).unwrap();
    let missing_db = pg_url_for(&format!("{}_missing", db.name), true);
    let real_db = pg_url_for(&db.name, true);

    // A database that does not exist: the deploy is refused with exit 3 before
    // anything is started, and no backup claims to be complete.
    let refused = cli_env(
        &config,
        &["deploy", "--image", &image, "--release", "b0", "--json"],
        &[("BGT_BACKUP_DB_URL", &missing_db)],
    )
    .await;
    expect_code(&refused, 3, &stack);
    assert_no_secret(&refused);
    let value = json(&refused);
    assert_eq!(value["stage"], "backup", "{value:#}");
    assert!(
        value["error"].as_str().unwrap().contains("does not exist"),
        "pg_dump's reason is shown: {value:#}"
    );
    assert_eq!(stack_containers(stack.stack()), Vec::<String>::new());
    let store = deploy_rollback::BackupStore::open(&store_dir).unwrap();
    assert_eq!(
        store.scan().unwrap(),
        Vec::new(),
        "no partial backup is left"
    );
    // The backup is a stage of the deploy: the history has the attempt, failed, with
    // the stage's error as its reason.
    let records = history.read_stack(stack.stack()).unwrap();
    let statuses: Vec<&str> = records.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["started", "failed"]);
    let failed = &records[1];
    assert!(
        failed
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("stage backup failed") && r.contains("does not exist")),
        "{failed:?}"
    );
    assert_eq!(failed.stages.len(), 1, "{failed:?}");
    assert_eq!(failed.stages[0].result.as_str(), "failed");
    assert!(!format!("{records:?}").contains(PG_SECRET));

    // --no-backup deploys without one.
    let skipped = cli_env(
        &config,
        &[
            "deploy",
            "--image",
            &image,
            "--release",
            "b0",
            "--no-backup",
        ],
        &[("BGT_BACKUP_DB_URL", &missing_db)],
    )
    .await;
    expect_code(&skipped, 0, &stack);
    let text = String::from_utf8_lossy(&skipped.stdout);
    assert!(!text.contains("backup"), "{text}");

    // The real database: a complete backup of the database and its filestore, its id in
    // the output and in every history record of the deploy.
    let deployed = cli_env(
        &config,
        &["deploy", "--image", &image, "--release", "b1"],
        &[("BGT_BACKUP_DB_URL", &real_db)],
    )
    .await;
    expect_code(&deployed, 0, &stack);
    assert_no_secret(&deployed);
    let text = String::from_utf8_lossy(&deployed.stdout);
    let id = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("backup "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("a backup line in the output:\n{}", describe(&deployed)))
        .to_owned();
    let stderr = String::from_utf8_lossy(&deployed.stderr);
    assert!(
        stderr.contains("pg_dump") && stderr.contains(&format!("pre-deploy backup {id} complete")),
        "backup progress on stderr:\n{stderr}"
    );
    let manifest = store.get(&id).unwrap();
    assert_eq!(manifest.database, db.name);
    assert_eq!(
        manifest.release, "b0",
        "labelled with the release live before"
    );
    assert_eq!(manifest.stack.as_deref(), Some(stack.stack()));
    assert_eq!(manifest.filestore.as_ref().and_then(|f| f.files), Some(1));
    assert!(manifest.toc.tables >= 1, "{manifest:?}");
    let with_id =
        |release: &str, status: &str| (release.to_owned(), status.to_owned(), Some(id.clone()));
    let without = |release: &str, status: &str| (release.to_owned(), status.to_owned(), None);
    // The started record is written when the lock is taken, before the backup stage
    // runs; the outcome carries the backup's id.
    assert_eq!(
        backup_records(&history, stack.stack()),
        [
            without("b0", "started"),
            without("b0", "failed"),
            without("b0", "started"),
            without("b0", "succeeded"),
            without("b1", "started"),
            with_id("b1", "succeeded"),
        ]
    );
    assert_eq!(history.protected_backups().unwrap(), vec![id.clone()]);

    // A newer backup of the same database (taken by hand): retention keeps it as the
    // newest, and keeps the pre-deploy backup of the current release only because the
    // history names it.
    let manual = std::process::Command::new(ROLLBACK_BIN)
        .args([
            "backup",
            "--quiet",
            "--json",
            "--db-url-env",
            "BGT_BACKUP_DB_URL",
            "--store",
        ])
        .arg(&store_dir)
        .env("BGT_BACKUP_DB_URL", &real_db)
        .args(
            std::env::var("DEPLOY_TEST_PG_BIN")
                .ok()
                .filter(|d| !d.is_empty())
                .map(|d| vec!["--pg-bin".to_owned(), d])
                .unwrap_or_default(),
        )
        .output()
        .unwrap();
    assert_eq!(code(&manual), 0, "{}", describe(&manual));
    assert_eq!(prune_dry_run(&store_dir, None), vec![id.clone()]);
    assert_eq!(
        prune_dry_run(&store_dir, Some(&history_dir)),
        Vec::<String>::new()
    );

    // A canary takes one too, reported in its JSON; the current release's backup is now
    // the one the history protects.
    let canary = cli_env(
        &config,
        &[
            "canary",
            "--image",
            &image,
            "--release",
            "b2",
            "--steps",
            "100",
            "--json",
        ],
        &[("BGT_BACKUP_DB_URL", &real_db)],
    )
    .await;
    expect_code(&canary, 0, &stack);
    assert_no_secret(&canary);
    let report = json(&canary);
    let canary_id = report["backup_id"].as_str().unwrap().to_owned();
    assert_ne!(canary_id, id);
    assert_eq!(store.get(&canary_id).unwrap().release, "b1");
    assert_eq!(history.protected_backups().unwrap(), [canary_id]);
}

// ---------------------------------------------------------------------------------
// The deploy as a pipeline of stages under the stack's lock: `[[hooks]]` that refuse
// or fail, `--dry-run`, the pre-deploy backup of two deploys started together, and the
// gates' test records.

/// A `[[hooks]]` entry running `script` with `/bin/sh -c`.
fn hook(name: &str, at: &str, script: &str) -> String {
    format!(
        "\n[[hooks]]\nname = {name:?}\nat = {at:?}\ncommand = [\"/bin/sh\", \"-c\", {script:?}]\ntimeout = \"30s\"\n"
    )
}

/// The stack's containers as `name id state`, sorted: what a refused deploy must leave
/// as it was.
fn container_ids(stack: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "-a",
            "--format",
            "{{.Names}} {{.ID}} {{.State}}",
            "--filter",
        ])
        .arg(format!("label=com.deployment.stack={stack}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// Which slot serves and each slot's share, as `status --json` reads them from the
/// proxy.
async fn traffic(config: &Path) -> Value {
    let out = cli(config, &["status", "--json"]).await;
    let status = json(&out);
    let shares: Vec<Value> = status["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| serde_json::json!([s["slot"], s["share"]]))
        .collect();
    serde_json::json!({ "serving": status["serving"], "shares": shares })
}

/// Checks the history's last record: release `s2`, `status`, a reason holding
/// `reason` and one stage that ended `stage`.
fn assert_last_record(
    history: &deploy_rollback::History,
    stack: &str,
    status: &str,
    reason: &str,
    stage: &str,
) {
    let record = history.read_stack(stack).unwrap().pop().unwrap();
    assert_eq!(
        (record.release.as_str(), record.status.as_str()),
        ("s2", status),
        "{record:?}"
    );
    assert!(
        record.reason.as_deref().is_some_and(|r| r.contains(reason)),
        "{record:?}"
    );
    assert_eq!(record.stages.len(), 1, "{record:?}");
    assert_eq!(record.stages[0].result.as_str(), stage, "{record:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_that_refuses_or_fails_shows_in_the_report_the_history_and_the_exit_code() {
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let history_dir = stack.dir.path().join("history");
    let history = deploy_rollback::History::open(&history_dir).unwrap();
    let base = StackOptions {
        history_dir: Some(history_dir.clone()),
        ..StackOptions::default()
    };
    let config = stack.write_config(&base);
    let image = fake_image();
    let first = cli(&config, &["deploy", "--image", &image, "--release", "s1"]).await;
    expect_code(&first, 0, &stack);
    let containers = container_ids(stack.stack());
    let serving = traffic(&config).await;
    assert_eq!(serving["serving"], "green", "{serving}");

    // A hook before the start that exits 1: refused (exit 1) with its reason, nothing
    // started or switched. It sees the deploy in its environment.
    let with_hooks = |hooks: String| {
        stack.write_config(&StackOptions {
            gates: hooks,
            ..base.clone()
        })
    };
    let config = with_hooks(hook(
        "freeze",
        "before_start",
        "test \"$ODOO_DEPLOY_RELEASE $ODOO_DEPLOY_LIVE_RELEASE $ODOO_DEPLOY_STAGE\" = 's2 s1 before_start' || exit 9; \
         echo 'change freeze until Monday' >&2; exit 1",
    ));
    // Deploys s2 with the stack file `config`: its JSON output, after checking the
    // exit code and, unless the switch happened, that nothing started or switched.
    let deploy_s2 = |config: std::path::PathBuf, code: i32, moved: bool| {
        let (stack, image, containers, serving) = (&stack, &image, &containers, &serving);
        async move {
            let out = cli(
                &config,
                &["deploy", "--image", image, "--release", "s2", "--json"],
            )
            .await;
            expect_code(&out, code, stack);
            if !moved {
                assert_eq!(&container_ids(stack.stack()), containers, "nothing started");
            }
            assert_eq!(&traffic(&config).await, serving, "traffic is on s1");
            json(&out)
        }
    };
    let report = deploy_s2(config, 1, false).await;
    assert_eq!(report["result"], "refused", "{report:#}");
    assert_eq!(report["stage"], "before-start", "{report:#}");
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains("stage hook freeze refused the deploy: change freeze until Monday"),
        "{report:#}"
    );
    assert_eq!(report["stages"][0]["name"], "hook freeze");
    assert_eq!(report["stages"][0]["result"], "refused");
    assert_last_record(
        &history,
        stack.stack(),
        "failed",
        "change freeze until Monday",
        "refused",
    );

    // A hook that fails (exit 7): the deploy fails (exit 3), the error names the
    // stage, nothing started or switched.
    let config = with_hooks(hook(
        "crash",
        "before_start",
        "echo 'cannot reach the change calendar' >&2; exit 7",
    ));
    let value = deploy_s2(config, 3, false).await;
    assert_eq!(value["stage"], "hook crash", "{value:#}");
    let error = value["error"].as_str().unwrap();
    assert!(
        error.contains("stage hook crash failed")
            && error.contains("exited with code 7: cannot reach the change calendar"),
        "{value:#}"
    );
    assert_last_record(
        &history,
        stack.stack(),
        "failed",
        "exited with code 7",
        "failed",
    );

    // A hook before the switch that refuses: the new slot started and passed its gates,
    // then is removed; traffic never moved.
    let config = with_hooks(hook(
        "smoke-script",
        "before_switch",
        "echo 'orders page broken' >&2; exit 1",
    ));
    let report = deploy_s2(config, 1, false).await;
    assert_eq!(report["stage"], "before-switch", "{report:#}");
    assert_eq!(
        report["stopped"], "blue",
        "the new slot was removed: {report:#}"
    );
    assert_last_record(
        &history,
        stack.stack(),
        "failed",
        "orders page broken",
        "refused",
    );

    // A hook after the switch that refuses: traffic goes back (rolled back, exit 1).
    let config = with_hooks(hook(
        "watch",
        "after_switch",
        "echo 'error rate 7 %' >&2; exit 1",
    ));
    let report = deploy_s2(config, 1, true).await;
    assert_eq!(report["result"], "rolled-back", "{report:#}");
    assert_eq!(report["stage"], "after-switch", "{report:#}");
    assert_last_record(
        &history,
        stack.stack(),
        "rolled_back",
        "error rate 7 %",
        "refused",
    );

    // A finish hook sees the outcome; it runs after the record, whatever it is.
    let log = stack.dir.path().join("notify.log");
    let config = with_hooks(hook(
        "notify",
        "finish",
        &format!(
            "echo \"$ODOO_DEPLOY_STATUS $ODOO_DEPLOY_RELEASE\" >> {}",
            log.display()
        ),
    ));
    let deployed = cli(&config, &["deploy", "--image", &image, "--release", "s3"]).await;
    expect_code(&deployed, 0, &stack);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "succeeded s3\n");
    let text = String::from_utf8_lossy(&deployed.stdout);
    assert!(
        text.contains("stage     hook notify (finish) passed"),
        "{text}"
    );
}

/// Everything a deploy could change: the containers, the proxy's routing, the history
/// file and the state directory (lock, journal).
async fn snapshot(stack: &TestStack, config: &Path, history_dir: &Path) -> Value {
    let mut files = Vec::new();
    for dir in [stack.state_dir(), history_dir.to_path_buf()] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                files.push(serde_json::json!([
                    path.display().to_string(),
                    std::fs::read_to_string(&path).unwrap_or_default()
                ]));
            }
        }
    }
    files.sort_by_key(ToString::to_string);
    serde_json::json!({
        "containers": container_ids(stack.stack()),
        "traffic": traffic(config).await,
        "files": files,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_dry_run_lists_the_stages_and_changes_nothing() {
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let history_dir = stack.dir.path().join("history");
    let base = StackOptions {
        history_dir: Some(history_dir.clone()),
        ..StackOptions::default()
    };
    let config = stack.write_config(&base);
    let image = fake_image();
    expect_code(
        &cli(&config, &["deploy", "--image", &image, "--release", "d1"]).await,
        0,
        &stack,
    );
    let config = stack.write_config(&StackOptions {
        gates: format!(
            "{GATES}\n[backup]\nstore = \"backups\"\ndatabase_url = {{ env = \"BGT_DRY_DB_URL\" }}\n{}",
            hook("notify", "finish", "exit 0")
        ),
        ..base.clone()
    });
    let before = snapshot(&stack, &config, &history_dir).await;

    let out = cli(
        &config,
        &["deploy", "--image", &image, "--release", "d2", "--dry-run"],
    )
    .await;
    expect_code(&out, 0, &stack);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("dry run, nothing was changed"), "{text}");
    assert!(
        text.contains("green serves; the release would start in blue"),
        "{text}"
    );
    assert!(
        text.contains("database_url = environment variable `BGT_DRY_DB_URL`"),
        "the backup's settings, the secret as its reference: {text}"
    );

    let out = cli(
        &config,
        &[
            "deploy",
            "--image",
            &image,
            "--release",
            "d2",
            "--dry-run",
            "--json",
        ],
    )
    .await;
    expect_code(&out, 0, &stack);
    let plan = json(&out);
    let names: Vec<&str> = plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "the release's image on the engine",
            "backup",
            "start the new slot",
            "pre-switch gates",
            "switch traffic",
            "post-switch gates",
            "drain the old slot and record the outcome",
            "hook notify",
        ],
        "{plan:#}"
    );
    assert_eq!(
        plan["stages"][0]["settings"]["on_engine"], "yes",
        "{plan:#}"
    );
    assert_eq!(plan["stages"][2]["settings"]["slot"], "blue", "{plan:#}");
    assert_eq!(
        plan["stages"][3]["settings"]["plan"], "2 gates: health, login",
        "{plan:#}"
    );
    assert_eq!(plan["target"], "blue");

    let after = snapshot(&stack, &config, &history_dir).await;
    assert_eq!(before, after, "the dry run changed something");
    assert!(
        !stack.dir.path().join("backups").exists(),
        "no backup store was made"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deploys_started_together_take_one_backup_and_the_other_is_refused_by_the_lock() {
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let db = TestDb::new();
    let history_dir = stack.dir.path().join("history");
    let store_dir = stack.dir.path().join("backups");
    let pg_bin = std::env::var("DEPLOY_TEST_PG_BIN")
        .ok()
        .filter(|d| !d.is_empty())
        .map(|d| format!("pg_bin = {d:?}\n"))
        .unwrap_or_default();
    let config = stack.write_config(&StackOptions {
        history_dir: Some(history_dir.clone()),
        gates: format!(
            "[backup]\nstore = \"backups\"\ndatabase_url = {{ env = \"BGT_BACKUP_DB_URL\" }}\n{pg_bin}"
        ),
        ..StackOptions::default()
    });
    let image = fake_image();
    let url = pg_url_for(&db.name, true);
    let env = [("BGT_BACKUP_DB_URL", url.as_str())];
    let first = ["deploy", "--image", &image, "--release", "r1", "--json"];
    let second = ["deploy", "--image", &image, "--release", "r2", "--json"];
    let (a, b) = tokio::join!(
        cli_env(&config, &first, &env),
        cli_env(&config, &second, &env)
    );
    let mut codes = [code(&a), code(&b)];
    codes.sort_unstable();
    assert_eq!(codes, [0, 3], "{}\n{}", describe(&a), describe(&b));
    let (won, lost) = if code(&a) == 0 { (&a, &b) } else { (&b, &a) };
    assert_no_secret(won);
    assert_no_secret(lost);
    let refusal = json(lost);
    assert_eq!(refusal["holder"]["operator"], "ci", "{refusal:#}");
    assert!(
        refusal["error"]
            .as_str()
            .unwrap()
            .contains("(deploy by ci, since"),
        "{refusal:#}"
    );
    let store = deploy_rollback::BackupStore::open(&store_dir).unwrap();
    let backups = store.scan().unwrap();
    assert_eq!(backups.len(), 1, "exactly one backup: {backups:?}");
    assert_eq!(
        json(won)["backup_id"].as_str(),
        Some(backups[0].id.as_str())
    );
    // The refused deploy wrote nothing: only the winner's records are there.
    let history = deploy_rollback::History::open(&history_dir).unwrap();
    let winner = json(won)["release"].as_str().unwrap().to_owned();
    assert_eq!(
        backup_records(&history, stack.stack()),
        [
            (winner.clone(), "started".to_owned(), None),
            (winner, "succeeded".to_owned(), Some(backups[0].id.clone())),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_leaves_no_smoke_record_behind_also_when_the_gate_timed_out() {
    use odoo_fixtures::{FakeOdoo, Fault};
    let fake = FakeOdoo::builder().start().await.unwrap();
    let smoke_left = || {
        fake.records("demo", "res.partner")
            .into_iter()
            .filter(|r| {
                r.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.starts_with("odoo-gate smoke"))
            })
            .count()
    };
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let plan = |timeout: &str| {
        format!(
            r#"
[gates.pre_switch.run]
mode = "once"
[[gates.pre_switch.targets]]
name = "erp"
url = "{}"
database = "demo"
login = "admin"
password = {{ env = "BGT_ERP_PASSWORD" }}
[[gates.pre_switch.gates]]
name = "smoke"
kind = "smoke-crud"
target = "erp"
timeout = "{timeout}"
"#,
            fake.uri()
        )
    };
    let env = [("BGT_ERP_PASSWORD", "admin")];
    let image = fake_image();
    // The `create` calls the fake received (`/jsonrpc` execute_kw or a web call).
    let creates = || {
        fake.received_requests()
            .iter()
            .filter_map(|r| r.body_json())
            .filter(|body| {
                body.pointer("/params/args/4").and_then(Value::as_str) == Some("create")
                    || body.pointer("/params/method").and_then(Value::as_str) == Some("create")
            })
            .count()
    };

    // A smoke gate that passes: its record is created and removed before the exit.
    let config = stack.write_config(&StackOptions {
        gates: plan("20s"),
        ..StackOptions::default()
    });
    let out = cli_env(
        &config,
        &["deploy", "--image", &image, "--release", "k1"],
        &env,
    )
    .await;
    expect_code(&out, 0, &stack);
    assert!(creates() > 0, "the gate created a record");
    assert_eq!(smoke_left(), 0);

    // Slow answers: the gate times out after its create; the deploy is refused, and the
    // record is still gone when the binary has exited.
    fake.set_fault(Fault::Latency(Duration::from_millis(150)));
    let config = stack.write_config(&StackOptions {
        gates: plan("650ms"),
        ..StackOptions::default()
    });
    let created = creates();
    let out = cli_env(
        &config,
        &["deploy", "--image", &image, "--release", "k2"],
        &env,
    )
    .await;
    expect_code(&out, 1, &stack);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("timed out"),
        "{}",
        describe(&out)
    );
    assert!(
        creates() > created,
        "the timed-out gate had created its record"
    );
    assert_eq!(smoke_left(), 0, "the record was removed before the exit");
}
