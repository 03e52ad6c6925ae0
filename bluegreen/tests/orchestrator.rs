//! The orchestrator against the real Docker engine, a real HAProxy and a real nginx:
//! deploys, rollbacks, canaries, and every way a new release can fail.
//!
//! Each test has its own stack (random name, fixed free ports, its own proxy and state
//! directory). The proxy starts with all traffic on blue, which has no container: the
//! first deploy goes to green, the second to blue, and so on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use deploy_test_support as util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deploy_bluegreen::orchestrator::{
    DeployRequest, Operation, OperationResult, RollbackRequest, StackHealth, Stage, Step, StepHook,
    SwitchRequest,
};
use deploy_bluegreen::verify::{verify_release, Expected, VerifyOptions};
use deploy_bluegreen::{Error, Slot};
use deploy_gates::testing::{ScriptedGate, Step as ScriptStep};
use deploy_gates::{Gate, GateFactory, GateKind, Registry};
use tokio::sync::Notify;
use util::{fake_image, NginxKind, ProxyChoice, Recorder, StackOptions, TestStack};

fn image() -> String {
    fake_image()
}

async fn expect_release(stack: &TestStack, release: &str) {
    let options = VerifyOptions {
        consecutive: 10,
        timeout: Duration::from_secs(10),
        ..VerifyOptions::default()
    };
    if let Err(e) = verify_release(&stack.url(), &Expected::release(release), &options).await {
        panic!("through the proxy: {e}\n{}", stack.diagnostics());
    }
}

/// A pre-switch plan that checks health and login against the new slot directly.
const PRE_HEALTH: &str = r#"
[gates.pre_switch.run]
mode = "once"
[[gates.pre_switch.gates]]
name = "health"
kind = "health"
[[gates.pre_switch.gates]]
name = "login"
kind = "authentication"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_blue_to_green_then_rollback_then_cold_rollback() {
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let recorder = Recorder::new();
    let options = StackOptions {
        deploy: Some("rollback_window = \"keep\"\ndrain_timeout = \"1s\"".to_owned()),
        gates: format!(
            "{PRE_HEALTH}\n[gates.post_switch.run]\nmode = \"once\"\n[[gates.post_switch.gates]]\nname = \"version\"\nkind = \"version\"\nexpected_version = \"17.0\"\n"
        ),
        ..StackOptions::default()
    };
    let orchestrator = stack.orchestrator(&options, recorder.clone()).await;

    // First release: nothing runs yet, the proxy points at blue; it goes to green.
    let first = orchestrator
        .deploy(&DeployRequest::new(&image(), "r1"))
        .await
        .unwrap();
    assert_eq!(first.result, OperationResult::Succeeded, "{first:#?}");
    assert_eq!(first.serving, Some(Slot::Green));
    expect_release(&stack, "r1").await;

    // Second release: green -> blue, with both plans run and the old slot kept warm.
    let second = orchestrator
        .deploy(&DeployRequest::new(&image(), "r2"))
        .await
        .unwrap();
    assert_eq!(second.result, OperationResult::Succeeded, "{second:#?}");
    assert_eq!(second.from.as_ref().unwrap().slot, Slot::Green);
    assert_eq!(second.to.as_ref().unwrap().slot, Slot::Blue);
    assert_eq!(second.serving, Some(Slot::Blue));
    let plans: Vec<&str> = second.gates.iter().map(|g| g.plan.as_str()).collect();
    assert_eq!(plans, ["pre_switch", "post_switch"]);
    assert!(second.gates.iter().all(|g| g.passed));
    let steps: Vec<Step> = second.steps.iter().map(|s| s.step).collect();
    for step in [
        Step::Locked,
        Step::Observed,
        Step::Starting,
        Step::Started,
        Step::PreGates,
        Step::Switching,
        Step::Switched,
        Step::Verified,
        Step::PostGates,
        Step::Draining,
        Step::Drained,
        Step::Recorded,
        Step::Done,
    ] {
        assert!(steps.contains(&step), "{step} missing from {steps:?}");
    }
    expect_release(&stack, "r2").await;
    assert_eq!(
        stack.container_state(Slot::Green).as_deref(),
        Some("running")
    );
    eprintln!("deploy timings: {:?}", second.timings);

    let status = orchestrator.status().await;
    assert_eq!(status.health, StackHealth::Ok, "{status:#?}");
    assert_eq!(status.serving, Some(Slot::Blue));
    assert_eq!(status.live_release.as_deref(), Some("r2"));
    assert!(!status.interrupted);

    // Rollback to the warm green slot.
    let rollback = orchestrator
        .rollback(&RollbackRequest::default())
        .await
        .unwrap();
    assert_eq!(rollback.result, OperationResult::Succeeded, "{rollback:#?}");
    assert_eq!(rollback.serving, Some(Slot::Green));
    assert!(rollback.timings.container_start.is_zero());
    expect_release(&stack, "r1").await;
    eprintln!("warm rollback took {:?}", rollback.timings.total);

    // Forward again with a manual switch (gated), stop the idle slot, then a cold
    // rollback starts and gates it first.
    let switched = orchestrator
        .switch_traffic(&SwitchRequest::default())
        .await
        .unwrap();
    assert_eq!(switched.result, OperationResult::Succeeded, "{switched:#?}");
    assert_eq!(switched.serving, Some(Slot::Blue));
    let stopped = orchestrator.stop_idle().await.unwrap();
    assert_eq!(stopped.stopped, Some(Slot::Green));
    assert_eq!(
        stack.container_state(Slot::Green).as_deref(),
        Some("exited")
    );
    let cold = orchestrator
        .rollback(&RollbackRequest {
            stop: true,
            code_only: false,
        })
        .await
        .unwrap();
    assert_eq!(cold.result, OperationResult::Succeeded, "{cold:#?}");
    assert_eq!(cold.serving, Some(Slot::Green));
    assert!(!cold.timings.container_start.is_zero());
    assert_eq!(cold.gates.len(), 1, "the stopped slot is gated first");
    assert_eq!(cold.stopped, Some(Slot::Blue));
    expect_release(&stack, "r1").await;

    assert_eq!(
        recorder.statuses(),
        [
            ("r1", "started"),
            ("r1", "succeeded"),
            ("r2", "started"),
            ("r2", "succeeded"),
            ("r2", "rolled_back"),
            ("r2", "succeeded"),
            ("r2", "rolled_back"),
        ]
        .map(|(r, s)| (r.to_owned(), s.to_owned()))
    );
}

/// A gate factory whose `health` gates pass `passes` times (over all builds), then fail.
fn health_fails_after(passes: usize) -> impl Fn() -> Box<dyn GateFactory> + Send + Sync {
    let builds = Arc::new(AtomicUsize::new(0));
    move || {
        let builds = Arc::clone(&builds);
        let mut registry = Registry::with_builtins();
        registry.register(GateKind::Health, move |spec, _cx| {
            let n = builds.fetch_add(1, Ordering::SeqCst);
            let step = if n < passes {
                ScriptStep::pass()
            } else {
                ScriptStep::fail().message("health degraded under canary traffic")
            };
            Ok(Arc::new(ScriptedGate::new(&spec.name, [step])) as Arc<dyn Gate>)
        });
        Box::new(registry) as Box<dyn GateFactory>
    }
}

const POST_HEALTH: &str = r#"
[gates.post_switch.run]
mode = "once"
[[gates.post_switch.gates]]
name = "health"
kind = "health"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_moves_traffic_in_steps_and_switches_back_on_failure() {
    let stack = TestStack::start(ProxyChoice::Nginx(NginxKind::StateFile), Slot::Blue).await;
    let recorder = Recorder::new();
    let options = StackOptions {
        gates: POST_HEALTH.to_owned(),
        deploy: Some("rollback_window = \"keep\"\ndrain_timeout = \"1s\"".to_owned()),
        ..StackOptions::default()
    };
    // Pre-gates: none. Post gates: 1 (first deploy) + 3 (canary) pass, then fail.
    let orchestrator = stack
        .orchestrator(&options, recorder.clone())
        .await
        .with_gates(health_fails_after(4));
    orchestrator
        .deploy(&DeployRequest::new(&image(), "c1"))
        .await
        .unwrap();

    let canary = orchestrator
        .deploy(&DeployRequest::new(&image(), "c2").canary(&[10, 50, 100]))
        .await
        .unwrap();
    assert_eq!(canary.result, OperationResult::Succeeded, "{canary:#?}");
    assert_eq!(canary.serving, Some(Slot::Blue));
    let shares: Vec<Option<u8>> = canary.gates.iter().map(|g| g.share).collect();
    assert_eq!(shares, [Some(10), Some(50), Some(100)]);
    let canary_steps = canary
        .steps
        .iter()
        .filter(|s| s.step == Step::CanaryStep)
        .count();
    assert_eq!(canary_steps, 2, "10 % and 50 % are weighted steps");
    expect_release(&stack, "c2").await;

    // The next canary fails its gates at the first step: all traffic back to blue.
    let failed = orchestrator
        .deploy(&DeployRequest::new(&image(), "c3").canary(&[10, 50, 100]))
        .await
        .unwrap();
    assert_eq!(failed.result, OperationResult::RolledBack, "{failed:#?}");
    assert_eq!(failed.stage, Some(Stage::Canary));
    assert!(
        failed.reason.as_deref().unwrap().contains("at 10 %"),
        "{failed:#?}"
    );
    assert_eq!(failed.serving, Some(Slot::Blue));
    assert_eq!(
        orchestrator.switch().active().await.unwrap().serving(),
        Some(Slot::Blue)
    );
    expect_release(&stack, "c2").await;
    assert_eq!(
        stack.container_state(Slot::Green),
        None,
        "the failed slot is removed"
    );
    assert_eq!(
        recorder.statuses().last().unwrap(),
        &("c3".to_owned(), "rolled_back".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_does_not_start_is_refused_with_its_logs() {
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let recorder = Recorder::new();
    let good = stack
        .orchestrator(&StackOptions::default(), recorder.clone())
        .await;
    good.deploy(&DeployRequest::new(&image(), "ok"))
        .await
        .unwrap();
    let broken = StackOptions {
        extra_args: vec!["--no-such-flag".to_owned()],
        ..StackOptions::default()
    };
    let orchestrator = stack.orchestrator(&broken, recorder.clone()).await;
    let report = orchestrator
        .deploy(&DeployRequest::new(&image(), "broken"))
        .await
        .unwrap();
    assert_eq!(report.result, OperationResult::Refused, "{report:#?}");
    assert_eq!(report.stage, Some(Stage::Start));
    let logs = report.slot_logs.as_deref().unwrap();
    assert!(
        logs.contains("no-such-flag"),
        "the container's logs are kept: {logs}"
    );
    assert_eq!(report.serving, Some(Slot::Green));
    assert_eq!(stack.container_state(Slot::Blue), None, "removed");
    expect_release(&stack, "ok").await;
    assert_eq!(
        recorder.statuses().last().unwrap(),
        &("broken".to_owned(), "failed".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_failing_its_pre_switch_gates_is_stopped_and_kept_for_inspection() {
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let recorder = Recorder::new();
    let gates = r#"
[gates.pre_switch.run]
mode = "once"
[[gates.pre_switch.gates]]
name = "modules"
kind = "modules"
"#;
    let deploy =
        Some("rollback_window = \"0s\"\ndrain_timeout = \"1s\"\nkeep_failed = true".to_owned());
    let good = StackOptions {
        gates: gates.to_owned(),
        deploy: deploy.clone(),
        ..StackOptions::default()
    };
    stack
        .orchestrator(&good, recorder.clone())
        .await
        .deploy(&DeployRequest::new(&image(), "clean"))
        .await
        .unwrap();
    // The new release comes up with a module left "to upgrade".
    let pending = StackOptions {
        extra_args: vec!["--module".to_owned(), "sale=to upgrade".to_owned()],
        ..good
    };
    let report = stack
        .orchestrator(&pending, recorder.clone())
        .await
        .deploy(&DeployRequest::new(&image(), "pending"))
        .await
        .unwrap();
    assert_eq!(report.result, OperationResult::Refused, "{report:#?}");
    assert_eq!(report.stage, Some(Stage::PreGates));
    assert!(
        report.reason.as_deref().unwrap().contains("modules"),
        "{report:#?}"
    );
    assert!(!report.steps.iter().any(|s| s.step == Step::Switching));
    assert_eq!(report.serving, Some(Slot::Green));
    assert!(
        report
            .slot_logs
            .as_deref()
            .is_some_and(|logs| logs.contains("listening on")),
        "the failed slot's logs are in the report: {report:#?}"
    );
    assert_eq!(
        stack.container_state(Slot::Blue).as_deref(),
        Some("exited"),
        "kept, stopped, for inspection"
    );
    expect_release(&stack, "clean").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_failing_after_the_switch_is_switched_back_automatically() {
    let stack = TestStack::start(ProxyChoice::Nginx(NginxKind::StateFile), Slot::Blue).await;
    let recorder = Recorder::new();
    let options = StackOptions {
        gates: format!("{PRE_HEALTH}{POST_HEALTH}"),
        ..StackOptions::default()
    };
    // Pre-switch health passes against the slot; the post-switch health through the
    // proxy fails for the second release.
    let orchestrator = stack
        .orchestrator(&options, recorder.clone())
        .await
        .with_gates(health_fails_after(3));
    orchestrator
        .deploy(&DeployRequest::new(&image(), "good"))
        .await
        .unwrap();
    let report = orchestrator
        .deploy(&DeployRequest::new(&image(), "bad"))
        .await
        .unwrap();
    assert_eq!(report.result, OperationResult::RolledBack, "{report:#?}");
    assert_eq!(report.stage, Some(Stage::PostGates));
    let steps: Vec<Step> = report.steps.iter().map(|s| s.step).collect();
    assert!(steps.contains(&Step::Switched) && steps.contains(&Step::SwitchedBack));
    assert_eq!(report.serving, Some(Slot::Green));
    assert!(
        report
            .slot_logs
            .as_deref()
            .is_some_and(|logs| logs.contains("listening on")),
        "the failed slot's logs are in the report: {report:#?}"
    );
    expect_release(&stack, "good").await;
    assert_eq!(stack.container_state(Slot::Blue), None);
    assert_eq!(
        recorder.statuses().last().unwrap(),
        &("bad".to_owned(), "rolled_back".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_nginx_config_leaves_traffic_on_the_old_slot() {
    let stack = TestStack::start(ProxyChoice::Nginx(NginxKind::Reload), Slot::Blue).await;
    let recorder = Recorder::new();
    let orchestrator = stack
        .orchestrator(&StackOptions::default(), recorder.clone())
        .await;
    orchestrator
        .deploy(&DeployRequest::new(&image(), "v1"))
        .await
        .unwrap();
    expect_release(&stack, "v1").await;

    // The same stack, with an upstream directive nginx refuses.
    let mut config = stack.config(&StackOptions::default());
    if let deploy_bluegreen::config::ProxyDriver::Nginx(options) = &mut config.proxy.driver {
        options.upstream_directives = vec!["server odoo-slot.invalid:8069 backup".to_owned()];
    }
    let switch = config.proxy.build_switch();
    let broken = deploy_bluegreen::Orchestrator::new(config, util::docker().await, switch)
        .with_recorder(recorder.clone());
    let err = broken
        .deploy(&DeployRequest::new(&image(), "v2"))
        .await
        .unwrap_err();
    match &err {
        Error::NginxConfigInvalid { stderr, .. } => {
            assert!(stderr.contains("host not found"), "{stderr}");
        }
        other => panic!("expected NginxConfigInvalid, got {other:?}"),
    }
    assert_eq!(
        stack.container_state(Slot::Blue),
        None,
        "the new slot is removed"
    );
    expect_release(&stack, "v1").await;
    let status = orchestrator.status().await;
    assert_eq!(status.health, StackHealth::Ok, "{status:#?}");
    assert_eq!(status.serving, Some(Slot::Green));
    assert_eq!(
        recorder.statuses().last().unwrap(),
        &("v2".to_owned(), "failed".to_owned())
    );
}

/// Stops the operation at one step until released.
struct PauseAt {
    step: Step,
    reached: Notify,
    release: Notify,
}

#[async_trait::async_trait]
impl StepHook for PauseAt {
    async fn reached(&self, _operation: Operation, step: Step) {
        if step == self.step {
            self.reached.notify_one();
            self.release.notified().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_deploy_fails_at_once_naming_the_holder() {
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let recorder = Recorder::new();
    let hook = Arc::new(PauseAt {
        step: Step::Started,
        reached: Notify::new(),
        release: Notify::new(),
    });
    let first = Arc::new(
        stack
            .orchestrator(&StackOptions::default(), recorder.clone())
            .await
            .with_operator("alice")
            .with_hook(hook.clone()),
    );
    let running = {
        let first = Arc::clone(&first);
        tokio::spawn(async move { first.deploy(&DeployRequest::new(&image(), "a1")).await })
    };
    tokio::time::timeout(Duration::from_secs(60), hook.reached.notified())
        .await
        .expect("the first deploy reaches `started`");

    let second = stack
        .orchestrator(&StackOptions::default(), recorder.clone())
        .await
        .with_operator("bob");
    let started = std::time::Instant::now();
    let err = second
        .deploy(&DeployRequest::new(&image(), "b1"))
        .await
        .unwrap_err();
    let refused_in = started.elapsed();
    match &err {
        Error::LockHeld { holder, .. } => {
            let holder = holder.as_ref().unwrap();
            assert_eq!(holder.pid, std::process::id());
            assert_eq!(holder.operator, "alice");
            assert_eq!(holder.operation, "deploy");
        }
        other => panic!("expected LockHeld, got {other:?}"),
    }
    assert!(err.to_string().contains("deploy by alice"), "{err}");
    assert!(
        refused_in < Duration::from_secs(2),
        "refused at once: {refused_in:?}"
    );
    let status = second.status().await;
    assert!(
        status.notes.iter().any(|n| n.contains("under way")),
        "{status:#?}"
    );

    hook.release.notify_one();
    let report = running.await.unwrap().unwrap();
    assert_eq!(report.result, OperationResult::Succeeded);
    expect_release(&stack, "a1").await;
    assert!(
        !recorder.statuses().iter().any(|(r, _)| r == "b1"),
        "a refused deploy records nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_traffic_left_by_an_interrupted_canary_goes_back_to_the_older_slot() {
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let recorder = Recorder::new();
    let options = StackOptions {
        deploy: Some("rollback_window = \"keep\"\ndrain_timeout = \"1s\"".to_owned()),
        ..StackOptions::default()
    };
    let orchestrator = stack.orchestrator(&options, recorder.clone()).await;
    orchestrator
        .deploy(&DeployRequest::new(&image(), "s1"))
        .await
        .unwrap();
    // A canary of s2 killed at 50 %: s1 on green (older), s2 on blue, traffic split.
    let canary = orchestrator
        .deploy(&DeployRequest::new(&image(), "s2"))
        .await
        .unwrap();
    assert_eq!(canary.serving, Some(Slot::Blue));
    let blue = orchestrator
        .config()
        .configured_backend(Slot::Blue)
        .unwrap();
    let green = orchestrator
        .config()
        .configured_backend(Slot::Green)
        .unwrap();
    orchestrator
        .switch()
        .set_weights(&[(blue, 50), (green, 50)])
        .await
        .unwrap();
    let status = orchestrator.status().await;
    assert_eq!(status.health, StackHealth::Degraded);
    assert_eq!(status.serving, None);
    assert!(
        status.problems.iter().any(|p| p.contains("split")),
        "{status:#?}"
    );

    let report = orchestrator
        .deploy(&DeployRequest::new(&image(), "s3"))
        .await
        .unwrap();
    assert_eq!(report.result, OperationResult::Succeeded, "{report:#?}");
    assert!(
        report
            .repairs
            .iter()
            .any(|r| r.contains("split") && r.contains("green")),
        "{report:#?}"
    );
    // Green (s1, the older) kept the traffic; s3 replaced s2 on blue.
    assert_eq!(report.from.as_ref().unwrap().release, "s1");
    assert_eq!(report.serving, Some(Slot::Blue));
    expect_release(&stack, "s3").await;
    assert_eq!(orchestrator.status().await.health, StackHealth::Ok);

    // A rollback from a split is the repair itself: all traffic back on the older slot
    // (green, s1), not a switch on to the newer one.
    orchestrator
        .switch()
        .set_weights(&[(blue, 10), (green, 90)])
        .await
        .unwrap();
    let rollback = orchestrator
        .rollback(&RollbackRequest::default())
        .await
        .unwrap();
    assert_eq!(rollback.result, OperationResult::Succeeded, "{rollback:#?}");
    assert_eq!(rollback.serving, Some(Slot::Green), "{rollback:#?}");
    assert_eq!(rollback.to.as_ref().unwrap().release, "s1");
    expect_release(&stack, "s1").await;
}

/// The rollback strategy of deploy-rollback reaches the orchestrator through
/// deploy-core's `Deployer`: a warm previous release is switched back to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployer_trait_puts_a_previous_release_back() {
    use deploy_core::{Deployer, Environment, ReleaseRef};

    let (stack, recorder, options) = util::warm_stack(["d1", "d2"]).await;
    let orchestrator = stack.orchestrator(&options, recorder.clone()).await;
    let records = recorder.statuses().len();
    let release = |name: &str| ReleaseRef {
        stack: stack.stack().to_owned(),
        environment: Environment::Staging,
        release: name.to_owned(),
        git_sha: None,
    };
    let report = orchestrator.redeploy(&release("d1")).await.unwrap();
    assert_eq!(report.release, "d1");
    assert!(report.warm_switch, "{report:?}");
    assert_eq!(report.method, deploy_core::RedeployMethod::WarmSwitch);
    expect_release(&stack, "d1").await;
    // Already live: nothing to do.
    let again = orchestrator.redeploy(&release("d1")).await.unwrap();
    assert!(!again.warm_switch);
    assert_eq!(again.method, deploy_core::RedeployMethod::AlreadyLive);
    // A release no slot runs cannot be put back without an image.
    let missing = orchestrator.redeploy(&release("d0")).await.unwrap_err();
    assert!(
        matches!(
            missing
                .downcast_ref::<deploy_core::ClassifiedError>()
                .and_then(|e| e.downcast_ref::<deploy_bluegreen::Error>()),
            Some(deploy_bluegreen::Error::ReleaseNotFound { release, .. }) if release == "d0"
        ),
        "{missing}"
    );
    assert_eq!(
        deploy_core::class_of(&*missing),
        Some(deploy_core::ErrorClass::Refused),
        "a release that is not there is a refusal"
    );
    assert_eq!(
        recorder.statuses().len(),
        records,
        "the caller records a redeploy, not the orchestrator"
    );
}
