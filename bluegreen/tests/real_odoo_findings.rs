//! What real Odoo 18 containers showed, pinned against the real proxies, the real Docker
//! engine and the fake Odoo made as strict as Odoo (a 500 to a request without `Host`):
//!
//! - the generated HAProxy health checks keep the servers UP through a minute-long
//!   post-switch window under load, where the old `option httpchk GET` line marks them
//!   DOWN; nginx and HAProxy forward a Host-less client request with a Host;
//! - a refused deploy says before it replaces the rollback target, can be told to
//!   refuse instead, and never destroys a container it reused;
//! - `rollback` never switches to a release that did not pass its gates here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use deploy_test_support as util;

use std::time::{Duration, Instant};

use deploy_bluegreen::orchestrator::{
    DeployRequest, OperationResult, RollbackRequest, StackHealth, Stage,
};
use deploy_bluegreen::switch::{Backend, TrafficSwitch};
use deploy_bluegreen::Slot;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use util::{
    fake_image, load_while, warm_stack, HaproxyProc, NginxKind, NginxProc, ProxyChoice, Recorder,
    ReleaseServer, StackOptions, TestStack,
};

/// A post-switch plan whose wait-until window is one minute of passing health checks
/// through the proxy.
const MINUTE_WINDOW: &str = r#"
[gates.post_switch.run]
mode = "wait-until"
interval = "2s"
stable_for = "60s"
timeout = "120s"
[[gates.post_switch.gates]]
name = "health"
kind = "health"
"#;

/// Deploys `w1` (no post-switch plan), then `w2` with the one-minute window while four
/// keep-alive clients load the proxy; returns the load's count and the report.
async fn deploy_through_a_minute_under_load(
    stack: &TestStack,
) -> (
    util::LoadReport,
    deploy_bluegreen::orchestrator::OperationReport,
) {
    let recorder = Recorder::new();
    let quick = stack
        .orchestrator(&StackOptions::default(), recorder.clone())
        .await;
    let first = quick
        .deploy(&DeployRequest::new(&fake_image(), "w1"))
        .await
        .unwrap();
    assert_eq!(
        first.result,
        OperationResult::Succeeded,
        "{first:#?}\n{}",
        stack.diagnostics()
    );
    let watched = stack
        .orchestrator(
            &StackOptions {
                gates: MINUTE_WINDOW.to_owned(),
                ..StackOptions::default()
            },
            recorder,
        )
        .await;
    let (load, report) = load_while(
        &stack.url(),
        4,
        Duration::from_secs(150),
        watched.deploy(&DeployRequest::new(&fake_image(), "w2")),
    )
    .await;
    (load, report.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_checks_keep_a_strict_odoo_up_through_a_minute_under_load() {
    let haproxy = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let nginx = TestStack::start(ProxyChoice::Nginx(NginxKind::StateFile), Slot::Blue).await;
    let ((h_load, h_report), (n_load, n_report)) = tokio::join!(
        deploy_through_a_minute_under_load(&haproxy),
        deploy_through_a_minute_under_load(&nginx)
    );
    for (name, stack, load, report) in [
        ("haproxy", &haproxy, &h_load, &h_report),
        ("nginx", &nginx, &n_load, &n_report),
    ] {
        eprintln!(
            "STRICT-ODOO {name}: sent {} failed {} in {:.1?}; errors {:?}",
            load.sent, load.failed, load.elapsed, load.errors
        );
        assert_eq!(
            report.result,
            OperationResult::Succeeded,
            "{name}: {report:#?}\n{}",
            stack.diagnostics()
        );
        assert!(
            load.elapsed >= Duration::from_secs(60),
            "{name}: the window lasted a minute: {load:?}"
        );
        assert!(load.sent > 100, "{name}: {load:?}");
        assert_eq!(
            load.failed,
            0,
            "{name}: no failed request: {load:?}\n{}",
            stack.diagnostics()
        );
    }
    // HAProxy's own checks still find both servers UP after the minute.
    let switch = haproxy
        .config(&StackOptions::default())
        .proxy
        .build_switch();
    let state = switch.active().await.unwrap();
    for slot in Slot::ALL {
        assert_eq!(
            state.backend(slot).and_then(|b| b.healthy),
            Some(true),
            "slot {slot} is UP in HAProxy: {state:?}\n{}",
            haproxy.diagnostics()
        );
    }
}

/// Whether HAProxy's checks find the server of `slot` UP.
async fn haproxy_up(switch: &dyn TrafficSwitch, slot: Slot) -> Option<bool> {
    switch
        .active()
        .await
        .unwrap()
        .backend(slot)
        .and_then(|b| b.healthy)
}

/// The old check line, as `render_config` wrote it before.
fn todays_check_line(cfg: String) -> String {
    let mut out = String::new();
    for line in cfg.lines() {
        if line.trim_start().starts_with("http-check send ") {
            continue;
        }
        if line.trim() == "option httpchk" {
            out.push_str("    option httpchk GET /web/health\n");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todays_check_line_marks_a_strict_odoo_down_and_the_generated_one_does_not() {
    let fake = ReleaseServer::start("s1").await;
    let blue = fake.backend(Slot::Blue);
    let green = Backend::single_port(Slot::Green, util::loopback(util::free_port()));
    let (old, old_switch) =
        HaproxyProc::start_edited(&blue, &green, Slot::Blue, todays_check_line).await;
    let (new, new_switch) = HaproxyProc::start(&blue, &green, Slot::Blue).await;
    assert!(
        std::fs::read_to_string(old.dir.path().join("haproxy.cfg"))
            .unwrap()
            .contains("option httpchk GET /web/health"),
        "{}",
        old.logs()
    );
    // inter 2s, fall 3: DOWN within about six seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    while haproxy_up(&old_switch, Slot::Blue).await == Some(true) {
        assert!(
            Instant::now() < deadline,
            "the old check line did not mark the strict fake DOWN within 20 s:\n{}",
            old.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(haproxy_up(&old_switch, Slot::Blue).await, Some(false));
    let answer = reqwest::get(format!("{}/web/health", old.url()))
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 503, "the site is down");
    // The generated checks ran as long and found it UP.
    assert_eq!(
        haproxy_up(&new_switch, Slot::Blue).await,
        Some(true),
        "{}",
        new.logs()
    );
    let answer = reqwest::get(format!("{}/web/health", new.url()))
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
}

/// The status line of one raw HTTP/1.0 request without a Host header through `addr`.
async fn host_less_request(addr: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /web/health HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_proxies_forward_a_host_less_client_request_with_a_host() {
    let fake = ReleaseServer::start("h1").await;
    let blue = fake.backend(Slot::Blue);
    let green = Backend::single_port(Slot::Green, util::loopback(util::free_port()));
    assert!(
        host_less_request(fake.addr).await.contains(" 500 "),
        "the fake is strict"
    );
    let (haproxy, _) = HaproxyProc::start(&blue, &green, Slot::Blue).await;
    let line = host_less_request(haproxy.listen).await;
    assert!(
        line.contains(" 200 "),
        "haproxy: {line}\n{}",
        haproxy.logs()
    );
    for kind in [NginxKind::StateFile, NginxKind::Reload] {
        let (nginx, _) = NginxProc::start(kind, &blue, &green, Slot::Blue).await;
        let line = host_less_request(nginx.listen).await;
        assert!(
            line.contains(" 200 "),
            "nginx {kind:?}: {line}\n{}",
            nginx.logs()
        );
    }
}

/// A pre-switch plan no release of the fake passes.
const REFUSING_PRE_SWITCH: &str = r#"
[gates.pre_switch.run]
mode = "once"
[[gates.pre_switch.gates]]
name = "version"
kind = "version"
expected_version = "99.0"
"#;

fn container_id(stack: &TestStack, slot: Slot) -> Option<String> {
    let out = std::process::Command::new("docker")
        .args(["inspect", "-f", "{{.Id}}"])
        .arg(format!("{}-{slot}", stack.stack()))
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_says_before_it_replaces_the_rollback_target_or_refuses_to() {
    let (stack, recorder, options) = warm_stack(["r1", "r2"]).await;
    // r1 is warm on green, r2 serves from blue.
    let warm_id = container_id(&stack, Slot::Green).unwrap();

    // Told to keep it: refused, nothing touched, and the warm rollback still works.
    let orchestrator = stack.orchestrator(&options, recorder.clone()).await;
    let mut keep = DeployRequest::new(&fake_image(), "r3");
    keep.keep_rollback_target = true;
    let report = orchestrator.deploy(&keep).await.unwrap();
    assert_eq!(report.result, OperationResult::Refused, "{report:#?}");
    assert_eq!(report.stage, Some(Stage::Start));
    assert!(
        report
            .reason
            .as_deref()
            .unwrap()
            .contains("rollback target"),
        "{report:#?}"
    );
    assert_eq!(
        container_id(&stack, Slot::Green).as_deref(),
        Some(warm_id.as_str())
    );
    assert_eq!(report.replaced, None);

    // Not told: a release that does not start replaces it, and the report said so
    // before (the warning precedes the start step).
    let broken = StackOptions {
        extra_args: vec!["--no-such-flag".to_owned()],
        ..options.clone()
    };
    let orchestrator = stack.orchestrator(&broken, recorder.clone()).await;
    let events = std::sync::Arc::new(deploy_core::RecordingSink::default());
    let orchestrator = orchestrator.with_events(events.clone());
    let report = orchestrator
        .deploy(&DeployRequest::new(&fake_image(), "r3"))
        .await
        .unwrap();
    assert_eq!(report.result, OperationResult::Refused, "{report:#?}");
    let replaced = report.replaced.clone().unwrap();
    assert_eq!(
        (replaced.slot, replaced.release.as_str()),
        (Slot::Green, "r1")
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("replacing slot green's release r1")),
        "{report:#?}"
    );
    let messages: Vec<String> = events.events().iter().map(|e| e.message.clone()).collect();
    let warned = messages
        .iter()
        .position(|m| m.contains("replacing slot green's release r1"))
        .unwrap_or_else(|| panic!("{messages:#?}"));
    let starting = messages
        .iter()
        .position(|m| m.starts_with("starting slot green"))
        .unwrap_or_else(|| panic!("{messages:#?}"));
    assert!(warned < starting, "said before it happened: {messages:#?}");

    // Now nothing runs to roll back to: the documented refusal.
    let err = orchestrator
        .rollback(&RollbackRequest::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, deploy_bluegreen::Error::NoPreviousSlot { .. }) && err.is_refusal(),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_container_survives_its_refusal() {
    let (stack, recorder, options) = warm_stack(["r1", "r2"]).await;
    let warm_id = container_id(&stack, Slot::Green).unwrap();
    // Deploying r1 again reuses its running container; its pre-switch gates refuse it.
    let refusing = StackOptions {
        gates: REFUSING_PRE_SWITCH.to_owned(),
        ..options
    };
    let orchestrator = stack.orchestrator(&refusing, recorder).await;
    let report = orchestrator
        .deploy(&DeployRequest::new(&fake_image(), "r1"))
        .await
        .unwrap();
    assert_eq!(report.result, OperationResult::Refused, "{report:#?}");
    assert_eq!(report.stage, Some(Stage::PreGates));
    assert_eq!(
        container_id(&stack, Slot::Green).as_deref(),
        Some(warm_id.as_str()),
        "the reused container is the same one: {report:#?}"
    );
    assert_eq!(
        stack.container_state(Slot::Green).as_deref(),
        Some("running")
    );
    assert!(
        report.warnings.iter().any(|w| w.contains("left as it was")),
        "{report:#?}"
    );
    // And it is still the warm way back.
    let back = orchestrator
        .rollback(&RollbackRequest::default())
        .await
        .unwrap();
    assert_eq!(back.result, OperationResult::Succeeded, "{back:#?}");
    assert_eq!(back.serving, Some(Slot::Green));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_never_switches_to_a_release_that_did_not_pass_here() {
    let (stack, recorder, options) = warm_stack(["r1", "r2"]).await;
    // A deploy of r3 whose pre-switch gates refuse it, kept stopped for inspection.
    let refusing = StackOptions {
        deploy: Some("rollback_window = \"keep\"\nkeep_failed = true".to_owned()),
        gates: REFUSING_PRE_SWITCH.to_owned(),
        ..options.clone()
    };
    let orchestrator = stack.orchestrator(&refusing, recorder.clone()).await;
    let report = orchestrator
        .deploy(&DeployRequest::new(&fake_image(), "r3"))
        .await
        .unwrap();
    assert_eq!(report.result, OperationResult::Refused, "{report:#?}");
    assert_eq!(
        stack.container_state(Slot::Green).as_deref(),
        Some("exited")
    );

    // `status` does not offer r3 as the way back.
    let status = orchestrator.status().await;
    assert_eq!(status.health, StackHealth::Ok, "{status:#?}");
    assert!(
        status
            .notes
            .iter()
            .any(|n| n.contains("r3, which never passed its gates")),
        "{status:#?}"
    );
    assert!(
        !status
            .notes
            .iter()
            .any(|n| n.contains("switches back to it")),
        "{status:#?}"
    );

    // `rollback` leaves traffic on r2, which served before the refused deploy.
    let plain = stack.orchestrator(&options, recorder).await;
    let back = plain.rollback(&RollbackRequest::default()).await.unwrap();
    assert_eq!(back.result, OperationResult::Unchanged, "{back:#?}");
    assert_eq!(back.serving, Some(Slot::Blue));
    assert!(
        back.reason
            .as_deref()
            .unwrap()
            .contains("nothing to roll back to"),
        "{back:#?}"
    );
    assert_eq!(
        stack.container_state(Slot::Green).as_deref(),
        Some("exited")
    );
    let status = plain.status().await;
    assert_eq!(status.live_release.as_deref(), Some("r2"), "{status:#?}");
}
