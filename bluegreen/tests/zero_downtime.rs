//! Zero downtime, measured with keep-alive clients as browsers and Odoo clients are:
//! 16 tasks, each with its own keep-alive connection, send requests back to back through
//! the proxy while the traffic is switched 3 times (blue -> green -> blue -> green).
//! Every failed request (transport error or a status other than 200) is counted.
//!
//! HAProxy's runtime API and nginx's reload-free mode must lose nothing. nginx's plain
//! reload procedure is measured and printed, not asserted: it loses requests racing the
//! closing of idle keep-alive connections, which is why it is not the recommended mode.
//! Run with `--nocapture` to see the numbers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use deploy_test_support as util;

use std::time::{Duration, Instant};

use deploy_bluegreen::switch::{Backend, TrafficSwitch};
use deploy_bluegreen::verify::{verify_release, Expected, VerifyOptions};
use deploy_bluegreen::Slot;
use util::{load_while, HaproxyProc, LoadReport, NginxKind, NginxProc, ReleaseServer};

const TASKS: usize = 16;
const SWITCHES: usize = 3;
/// Load before the first switch, between switches and after the last one.
const SETTLE: Duration = Duration::from_millis(500);
/// Hard bound on one run's load.
const MAX_LOAD: Duration = Duration::from_secs(20);

struct Run {
    report: LoadReport,
    latencies: Vec<Duration>,
}

/// Switches `SWITCHES` times under load, verifying each switch through the proxy.
async fn switch_under_load(
    url: &str,
    switch: &dyn TrafficSwitch,
    blue: Backend,
    green: Backend,
) -> Run {
    let sequence = async {
        let mut latencies = Vec::new();
        tokio::time::sleep(SETTLE).await;
        for i in 0..SWITCHES {
            let (target, release) = if i % 2 == 0 {
                (green, "green")
            } else {
                (blue, "blue")
            };
            let started = Instant::now();
            switch.switch_to(&target).await.unwrap();
            let switched = started.elapsed();
            let options = VerifyOptions {
                consecutive: 20,
                timeout: Duration::from_secs(10),
                interval: Duration::ZERO,
                ..VerifyOptions::default()
            };
            let verified = verify_release(url, &Expected::release(release), &options)
                .await
                .unwrap();
            // From the switch call until the first of 20 consecutive new-slot answers.
            latencies.push(switched + verified.latency);
            tokio::time::sleep(SETTLE).await;
        }
        latencies
    };
    let (report, latencies) = load_while(url, TASKS, MAX_LOAD, sequence).await;
    Run { report, latencies }
}

fn print_run(name: &str, run: &Run) {
    eprintln!(
        "ZERO-DOWNTIME {name}: sent {} failed {} in {:.1?} ({:.0} req/s); switch-to-visible {:?}; errors {:?}; releases {:?}",
        run.report.sent,
        run.report.failed,
        run.report.elapsed,
        run.report.sent as f64 / run.report.elapsed.as_secs_f64(),
        run.latencies,
        run.report.errors,
        run.report.releases,
    );
}

fn assert_saw_both(run: &Run) {
    assert!(
        run.report.releases.get("blue").copied().unwrap_or(0) > 0,
        "{:?}",
        run.report.releases
    );
    assert!(
        run.report.releases.get("green").copied().unwrap_or(0) > 0,
        "{:?}",
        run.report.releases
    );
}

async fn nginx_run(kind: NginxKind) -> Run {
    let blue_server = ReleaseServer::start("blue").await;
    let green_server = ReleaseServer::start("green").await;
    let (blue, green) = (
        blue_server.backend(Slot::Blue),
        green_server.backend(Slot::Green),
    );
    let (nginx, switch) = NginxProc::start(kind, &blue, &green, Slot::Blue).await;
    let run = switch_under_load(&nginx.url(), &switch, blue, green).await;
    print_run(&format!("nginx {kind:?}"), &run);
    assert_saw_both(&run);
    if kind == NginxKind::StateFile {
        assert_eq!(
            run.report.failed,
            0,
            "reload-free nginx lost requests: {:?}\n{}",
            run.report.errors,
            nginx.logs()
        );
    }
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_state_file_mode_loses_no_request() {
    nginx_run(NginxKind::StateFile).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_plain_reload_is_measured() {
    // A measurement, not an assertion: the count is printed.
    nginx_run(NginxKind::Reload).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_runtime_api_loses_no_request() {
    let blue_server = ReleaseServer::start("blue").await;
    let green_server = ReleaseServer::start("green").await;
    let (blue, green) = (
        blue_server.backend(Slot::Blue),
        green_server.backend(Slot::Green),
    );
    let (haproxy, switch) = HaproxyProc::start(&blue, &green, Slot::Blue).await;
    let run = switch_under_load(&haproxy.url(), &switch, blue, green).await;
    print_run("haproxy runtime-api", &run);
    assert_saw_both(&run);
    assert_eq!(
        run.report.failed,
        0,
        "haproxy lost requests: {:?}\n{}",
        run.report.errors,
        haproxy.logs()
    );
}

/// A whole deploy (a container started, gates, switch, drain) and a rollback by the
/// orchestrator, under keep-alive load through the proxy: not one request may fail.
async fn deploy_and_rollback_under_load(choice: util::ProxyChoice) {
    use deploy_bluegreen::orchestrator::{DeployRequest, OperationResult, RollbackRequest};
    use util::{fake_image, Recorder, StackOptions, TestStack};

    let stack = TestStack::start(choice, Slot::Blue).await;
    let options = StackOptions {
        deploy: Some("rollback_window = \"keep\"\ndrain_timeout = \"1s\"".to_owned()),
        gates:
            "[gates.pre_switch]\n[[gates.pre_switch.gates]]\nname = \"health\"\nkind = \"health\"\n"
                .to_owned(),
        ..StackOptions::default()
    };
    let orchestrator = stack.orchestrator(&options, Recorder::new()).await;
    let first = orchestrator
        .deploy(&DeployRequest::new(&fake_image(), "z1"))
        .await
        .unwrap();
    assert_eq!(first.result, OperationResult::Succeeded, "{first:#?}");

    let sequence = async {
        tokio::time::sleep(SETTLE).await;
        let deploy = orchestrator
            .deploy(&DeployRequest::new(&fake_image(), "z2"))
            .await
            .unwrap();
        tokio::time::sleep(SETTLE).await;
        let rollback = orchestrator
            .rollback(&RollbackRequest::default())
            .await
            .unwrap();
        tokio::time::sleep(SETTLE).await;
        (deploy, rollback)
    };
    let (report, (deploy, rollback)) = load_while(&stack.url(), 32, MAX_LOAD, sequence).await;
    eprintln!(
        "ZERO-DOWNTIME orchestrated {choice:?}: sent {} failed {} in {:.1?}; deploy {:?} rollback {:?}; errors {:?}; releases {:?}",
        report.sent,
        report.failed,
        report.elapsed,
        deploy.timings.total,
        rollback.timings.total,
        report.errors,
        report.releases
    );
    assert_eq!(deploy.result, OperationResult::Succeeded, "{deploy:#?}");
    assert_eq!(rollback.result, OperationResult::Succeeded, "{rollback:#?}");
    for release in ["z1", "z2"] {
        assert!(
            report.releases.get(release).copied().unwrap_or(0) > 0,
            "{release} never answered: {:?}",
            report.releases
        );
    }
    assert_eq!(
        report.failed,
        0,
        "requests failed during the deploy or the rollback: {:?}\n{}",
        report.errors,
        stack.diagnostics()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orchestrated_deploy_and_rollback_lose_no_request_through_haproxy() {
    deploy_and_rollback_under_load(util::ProxyChoice::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orchestrated_deploy_and_rollback_lose_no_request_through_nginx_state_file() {
    deploy_and_rollback_under_load(util::ProxyChoice::Nginx(NginxKind::StateFile)).await;
}
