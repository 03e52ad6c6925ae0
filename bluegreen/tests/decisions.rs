//! The orchestrator's decisions on an in-memory slot backend and proxy: reconcile after
//! an interrupted canary, a slot that does not start, a rollback that must not return
//! to a release that never passed, stages that refuse, and the stack's lock between two
//! deploys started together. No Docker, no proxy: milliseconds each, beside the
//! real-engine tests that show the same on Docker and HAProxy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeDelta, Utc};
use deploy_bluegreen::backend::SlotBackend;
use deploy_bluegreen::docker::{ReadyOptions, RemoveOutcome, StartOutcome, StopOutcome};
use deploy_bluegreen::error::StartFailure;
use deploy_bluegreen::orchestrator::{
    DeployRequest, OperationResult, Orchestrator, RollbackRequest, Stage, Step,
};
use deploy_bluegreen::registry::{
    ImageOutcome, ImageProblem, ProgressFn, PullProgress, RegistryCredentials,
};
use deploy_bluegreen::slot::{ContainerStatus, HealthStatus, SlotSpec};
use deploy_bluegreen::switch::{
    AdminState, Backend, BackendState, DrainReport, ProxyKind, SwitchMethod, SwitchReport,
    TrafficState, TrafficSwitch,
};
use deploy_bluegreen::{ContainerInfo, Error, Slot, SlotState, StackConfig};
use deploy_core::{
    BoxError, ClassifiedError, DeployStage, DeployStatus, DeploymentOutcome, DeploymentRecorder,
    Environment, StageContext, StageOutcome, StagePoint,
};

fn addr(slot: Slot) -> SocketAddr {
    match slot {
        Slot::Blue => "127.0.0.1:18069".parse().unwrap(),
        Slot::Green => "127.0.0.1:28069".parse().unwrap(),
    }
}

/// Containers in memory. An image named `broken` exits at once. Images under
/// `registry.test/` are not on the "engine" until pulled; `registry.test/missing:*`
/// cannot be pulled.
#[derive(Default)]
struct MemSlots {
    slots: Mutex<BTreeMap<Slot, ContainerInfo>>,
    next_id: AtomicUsize,
    launches: AtomicUsize,
    pulled: Mutex<Vec<String>>,
}

impl MemSlots {
    /// A running container of `release` in `slot`, created `age_secs` ago.
    fn put(&self, slot: Slot, release: &str, age_secs: i64) {
        let info = self.info(slot, &format!("odoo:{release}"), release, age_secs);
        self.slots.lock().unwrap().insert(slot, info);
    }

    fn info(&self, slot: Slot, image: &str, release: &str, age_secs: i64) -> ContainerInfo {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        ContainerInfo {
            id: format!("c{id}"),
            name: format!("shop-{slot}"),
            stack: "shop".to_owned(),
            slot,
            release: release.to_owned(),
            image: image.to_owned(),
            status: ContainerStatus::Running,
            created: Some(Utc::now() - TimeDelta::seconds(age_secs)),
            exit_code: None,
            health: HealthStatus::None,
            http: Some(addr(slot)),
            realtime: None,
            labels: BTreeMap::new(),
        }
    }

    fn release(&self, slot: Slot) -> Option<String> {
        self.slots
            .lock()
            .unwrap()
            .get(&slot)
            .map(|i| i.release.clone())
    }
}

#[async_trait]
impl SlotBackend for MemSlots {
    async fn image_id(&self, image: &str) -> deploy_bluegreen::Result<Option<String>> {
        let present = !image.starts_with("registry.test/")
            || self.pulled.lock().unwrap().iter().any(|i| i == image);
        Ok(present.then(|| format!("sha256:{image}")))
    }

    async fn pull_image(
        &self,
        image: &str,
        _credentials: Option<&RegistryCredentials>,
        progress: &ProgressFn,
    ) -> deploy_bluegreen::Result<ImageOutcome> {
        if image.starts_with("registry.test/missing") {
            return Err(Error::Image {
                image: image.to_owned(),
                problem: ImageProblem::NotFound,
                detail: format!("manifest for {image} not found: manifest unknown"),
            });
        }
        progress(&PullProgress {
            layer: Some("5093ef6d056d".to_owned()),
            status: "Pull complete".to_owned(),
            bytes: None,
        });
        self.pulled.lock().unwrap().push(image.to_owned());
        Ok(ImageOutcome::Pulled {
            id: format!("sha256:{image}"),
            digest: Some("sha256:7b32".to_owned()),
        })
    }

    async fn state(&self, stack: &str) -> deploy_bluegreen::Result<SlotState> {
        let slots = self.slots.lock().unwrap();
        Ok(SlotState {
            stack: stack.to_owned(),
            blue: slots.get(&Slot::Blue).cloned(),
            green: slots.get(&Slot::Green).cloned(),
        })
    }

    async fn inspect(
        &self,
        _stack: &str,
        slot: Slot,
    ) -> deploy_bluegreen::Result<Option<ContainerInfo>> {
        Ok(self.slots.lock().unwrap().get(&slot).cloned())
    }

    async fn launch(
        &self,
        spec: &SlotSpec,
        _ready: &ReadyOptions,
    ) -> deploy_bluegreen::Result<ContainerInfo> {
        self.launches.fetch_add(1, Ordering::Relaxed);
        let mut info = self.info(spec.slot, &spec.image, &spec.release, 0);
        if spec.image == "broken" {
            info.status = ContainerStatus::Exited;
            info.exit_code = Some(1);
            self.slots.lock().unwrap().insert(spec.slot, info);
            return Err(Error::SlotFailedToStart {
                slot: spec.slot,
                container: format!("shop-{}", spec.slot),
                reason: StartFailure::Exited {
                    exit_code: Some(1),
                    error: None,
                },
                logs: "ERROR shop odoo.modules.loading: KeyError: 'x_field'\n".to_owned(),
            });
        }
        self.slots.lock().unwrap().insert(spec.slot, info.clone());
        Ok(info)
    }

    async fn start(&self, _stack: &str, slot: Slot) -> deploy_bluegreen::Result<StartOutcome> {
        let mut slots = self.slots.lock().unwrap();
        let info = slots.get_mut(&slot).ok_or(Error::SlotNotFound {
            stack: "shop".to_owned(),
            slot,
        })?;
        info.status = ContainerStatus::Running;
        Ok(StartOutcome::Started)
    }

    async fn wait_slot_ready(
        &self,
        _stack: &str,
        slot: Slot,
        _health_path: &str,
        _ready: &ReadyOptions,
    ) -> deploy_bluegreen::Result<ContainerInfo> {
        self.slots
            .lock()
            .unwrap()
            .get(&slot)
            .cloned()
            .ok_or(Error::SlotNotFound {
                stack: "shop".to_owned(),
                slot,
            })
    }

    async fn stop(
        &self,
        _stack: &str,
        slot: Slot,
        _grace: Duration,
    ) -> deploy_bluegreen::Result<StopOutcome> {
        if let Some(info) = self.slots.lock().unwrap().get_mut(&slot) {
            info.status = ContainerStatus::Exited;
        }
        Ok(StopOutcome::Stopped)
    }

    async fn remove(&self, _stack: &str, slot: Slot) -> deploy_bluegreen::Result<RemoveOutcome> {
        Ok(match self.slots.lock().unwrap().remove(&slot) {
            Some(_) => RemoveOutcome::Removed,
            None => RemoveOutcome::AlreadyGone,
        })
    }

    async fn logs(
        &self,
        _stack: &str,
        _slot: Slot,
        _tail: usize,
    ) -> deploy_bluegreen::Result<String> {
        Ok(String::new())
    }
}

/// A proxy in memory: weights per slot.
#[derive(Default)]
struct MemProxy {
    weights: Mutex<BTreeMap<Slot, (Backend, u8)>>,
    changes: AtomicUsize,
}

impl MemProxy {
    fn set(&self, weights: &[(Slot, u8)]) {
        let mut map = self.weights.lock().unwrap();
        for (slot, weight) in weights {
            map.insert(
                *slot,
                (Backend::new(*slot, addr(*slot), addr(*slot)), *weight),
            );
        }
    }

    fn shares(&self) -> Vec<(Slot, u8)> {
        let state = self.state();
        state.backends.iter().map(|b| (b.slot, b.share)).collect()
    }

    fn state(&self) -> TrafficState {
        let map = self.weights.lock().unwrap();
        let total: u32 = map.values().map(|(_, w)| u32::from(*w)).sum();
        let backends = Slot::ALL
            .into_iter()
            .map(|slot| {
                let entry = map.get(&slot);
                let weight = entry.map_or(0, |(_, w)| u32::from(*w));
                let share = (weight * 100)
                    .checked_div(total)
                    .map_or(0, |s| u8::try_from(s).unwrap());
                BackendState {
                    slot,
                    http: entry.map(|(b, _)| b.http),
                    realtime: entry.map(|(b, _)| b.realtime),
                    share,
                    admin: if share > 0 {
                        AdminState::Ready
                    } else {
                        AdminState::Drain
                    },
                    healthy: None,
                }
            })
            .collect();
        TrafficState {
            proxy: ProxyKind::Haproxy,
            backends,
        }
    }
}

#[async_trait]
impl TrafficSwitch for MemProxy {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Haproxy
    }

    async fn active(&self) -> deploy_bluegreen::Result<TrafficState> {
        Ok(self.state())
    }

    async fn set_weights(
        &self,
        weights: &[(Backend, u8)],
    ) -> deploy_bluegreen::Result<SwitchReport> {
        let before = self.state();
        {
            let mut map = self.weights.lock().unwrap();
            for slot in Slot::ALL {
                if let Some(entry) = map.get_mut(&slot) {
                    entry.1 = 0;
                }
            }
            for (backend, weight) in weights {
                map.insert(backend.slot, (*backend, *weight));
            }
        }
        self.changes.fetch_add(1, Ordering::Relaxed);
        Ok(SwitchReport {
            proxy: ProxyKind::Haproxy,
            before,
            after: self.state(),
            method: SwitchMethod::RuntimeApi,
            elapsed: Duration::ZERO,
        })
    }

    async fn drain(&self, slot: Slot, _timeout: Duration) -> deploy_bluegreen::Result<DrainReport> {
        Ok(DrainReport {
            slot,
            remaining: Some(0),
            waited: Duration::ZERO,
        })
    }
}

/// Outcomes in memory; a release passed when it has a `succeeded` record.
#[derive(Default)]
struct MemHistory {
    outcomes: Mutex<Vec<DeploymentOutcome>>,
}

impl MemHistory {
    fn statuses(&self) -> Vec<(String, DeployStatus)> {
        self.outcomes
            .lock()
            .unwrap()
            .iter()
            .map(|o| (o.release.clone(), o.status))
            .collect()
    }
}

impl MemHistory {
    /// Records that `release` went live and passed in stack `shop`.
    async fn passed(&self, release: &str) {
        self.record(&DeploymentOutcome::new(
            "shop",
            release,
            Environment::Production,
            DeployStatus::Succeeded,
        ))
        .await
        .unwrap();
    }
}

#[async_trait]
impl DeploymentRecorder for MemHistory {
    async fn record(&self, outcome: &DeploymentOutcome) -> Result<(), BoxError> {
        self.outcomes.lock().unwrap().push(outcome.clone());
        Ok(())
    }

    async fn has_passed(
        &self,
        _stack: &str,
        _environment: Environment,
        release: &str,
    ) -> Result<Option<bool>, BoxError> {
        Ok(Some(self.outcomes.lock().unwrap().iter().any(|o| {
            o.release == release && o.status == DeployStatus::Succeeded
        })))
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    slots: Arc<MemSlots>,
    proxy: Arc<MemProxy>,
    history: Arc<MemHistory>,
    orchestrator: Orchestrator,
}

fn fixture(stages: Vec<Arc<dyn DeployStage>>) -> Fixture {
    fixture_with(stages, "")
}

/// As [`fixture`], with `extra` appended to the stack file (`{dir}` is the fixture's
/// directory).
fn fixture_with(stages: Vec<Arc<dyn DeployStage>>, extra: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
        stack = "shop"
        [slots]
        blue = {{ http_port = 18069 }}
        green = {{ http_port = 28069 }}
        [proxy]
        kind = "haproxy"
        url = "http://127.0.0.1:1"
        haproxy = {{ admin_socket = "admin.sock" }}
        [deploy]
        rollback_window = "0s"
        verify_release = false
        notify_wait = "3s"
        {}
    "#,
        extra.replace("{dir}", &dir.path().display().to_string())
    );
    let config = StackConfig::from_toml(&text, dir.path()).unwrap();
    let slots = Arc::new(MemSlots::default());
    let proxy = Arc::new(MemProxy::default());
    let history = Arc::new(MemHistory::default());
    let mut orchestrator = Orchestrator::with_backend(config, slots.clone(), proxy.clone())
        .with_recorder(history.clone())
        .with_operator("tester");
    for stage in stages {
        orchestrator = orchestrator.with_stage(stage);
    }
    Fixture {
        _dir: dir,
        slots,
        proxy,
        history,
        orchestrator,
    }
}

#[tokio::test]
async fn split_traffic_goes_back_to_the_older_container_before_the_deploy() {
    let f = fixture(Vec::new());
    // An interrupted canary: r1 (older) and r2 both running, traffic split.
    f.slots.put(Slot::Blue, "r1", 600);
    f.slots.put(Slot::Green, "r2", 60);
    f.proxy.set(&[(Slot::Blue, 50), (Slot::Green, 50)]);
    let report = f
        .orchestrator
        .deploy(&DeployRequest::new("odoo:r3", "r3"))
        .await
        .unwrap();
    assert_eq!(report.result, OperationResult::Succeeded, "{report:#?}");
    assert!(
        report.repairs[0].contains("traffic was split (blue 50 %, green 50 %)")
            && report.repairs[0].contains("slot blue (r1), the one that served before"),
        "{:?}",
        report.repairs
    );
    // r3 replaced r2 (which never passed) in green, and takes all traffic; blue keeps r1.
    assert_eq!(f.slots.release(Slot::Green).as_deref(), Some("r3"));
    assert_eq!(f.slots.release(Slot::Blue).as_deref(), Some("r1"));
    assert_eq!(f.proxy.shares(), [(Slot::Blue, 0), (Slot::Green, 100)]);
    assert!(report.replaced.is_none(), "r2 was no rollback target");
}

#[tokio::test]
async fn a_slot_that_does_not_start_is_removed_and_nothing_switches() {
    let f = fixture(Vec::new());
    f.slots.put(Slot::Blue, "r1", 600);
    f.proxy.set(&[(Slot::Blue, 100)]);
    let changes = f.proxy.changes.load(Ordering::Relaxed);
    let report = f
        .orchestrator
        .deploy(&DeployRequest::new("broken", "r2"))
        .await
        .unwrap();
    assert_eq!(report.result, OperationResult::Refused);
    assert_eq!(report.stage, Some(Stage::Start));
    assert!(
        report.slot_logs.as_deref().unwrap().contains("KeyError"),
        "{report:#?}"
    );
    assert_eq!(
        f.slots.release(Slot::Green),
        None,
        "the failed container is removed"
    );
    assert_eq!(
        f.proxy.changes.load(Ordering::Relaxed),
        changes,
        "no switch"
    );
    assert_eq!(
        f.history.statuses(),
        [
            ("r2".to_owned(), DeployStatus::Started),
            ("r2".to_owned(), DeployStatus::Failed)
        ]
    );
}

#[tokio::test]
async fn rollback_does_not_return_to_a_release_that_never_passed() {
    let f = fixture(Vec::new());
    // r1 went live and passed; r2 sits idle, newer, never passed (a refused deploy
    // kept for inspection, or one killed before its gates).
    f.history.passed("r1").await;
    f.slots.put(Slot::Blue, "r1", 600);
    f.slots.put(Slot::Green, "r2", 60);
    f.proxy.set(&[(Slot::Blue, 100), (Slot::Green, 0)]);
    let report = f
        .orchestrator
        .rollback(&RollbackRequest::default())
        .await
        .unwrap();
    assert_eq!(report.result, OperationResult::Unchanged, "{report:#?}");
    assert!(
        report
            .reason
            .as_deref()
            .unwrap()
            .contains("never passed its gates"),
        "{report:#?}"
    );
    assert_eq!(f.proxy.shares(), [(Slot::Blue, 100), (Slot::Green, 0)]);
}

/// A stage that counts its runs, waits, then proceeds or refuses.
struct Counting {
    point: StagePoint,
    runs: AtomicUsize,
    wait: Duration,
    refuse: bool,
}

#[async_trait]
impl DeployStage for Counting {
    fn name(&self) -> &str {
        "counting"
    }

    fn point(&self) -> StagePoint {
        self.point
    }

    async fn run(&self, _ctx: &StageContext<'_>) -> Result<StageOutcome, ClassifiedError> {
        self.runs.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.wait).await;
        Ok(if self.refuse {
            StageOutcome::refuse("not now")
        } else {
            StageOutcome::proceed().with_backup("b-1")
        })
    }
}

fn counting(point: StagePoint, wait: Duration, refuse: bool) -> Arc<Counting> {
    Arc::new(Counting {
        point,
        runs: AtomicUsize::new(0),
        wait,
        refuse,
    })
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_fails_the_deploy_before_any_stage_or_container() {
    let stage = counting(StagePoint::BeforeStart, Duration::ZERO, false);
    let f = fixture(vec![stage.clone()]);
    f.slots.put(Slot::Blue, "r1", 600);
    f.slots.put(Slot::Green, "r0", 900);
    f.proxy.set(&[(Slot::Blue, 100), (Slot::Green, 0)]);
    let changes = f.proxy.changes.load(Ordering::Relaxed);
    let err = f
        .orchestrator
        .deploy(&DeployRequest::new("registry.test/missing:r2", "r2"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Image { problem: ImageProblem::NotFound, image, .. } if image == "registry.test/missing:r2"),
        "{err:?}"
    );
    assert!(err.is_config(), "exit 2: {err}");
    assert!(
        err.to_string().contains("registry.test/missing:r2"),
        "{err}"
    );
    assert_eq!(stage.runs.load(Ordering::Relaxed), 0, "no backup stage ran");
    assert_eq!(f.slots.launches.load(Ordering::Relaxed), 0);
    assert_eq!(f.slots.release(Slot::Green).as_deref(), Some("r0"));
    assert_eq!(f.proxy.changes.load(Ordering::Relaxed), changes);
    assert_eq!(
        f.history.statuses().last().map(|s| s.1),
        Some(DeployStatus::Failed)
    );

    // One the registry has is pulled, then started.
    let report = f
        .orchestrator
        .deploy(&DeployRequest::new("registry.test/shop:r2", "r2"))
        .await
        .unwrap();
    assert_eq!(report.result, OperationResult::Succeeded, "{report:#?}");
    let pulled = report.pulled.as_ref().expect("the report names the pull");
    assert_eq!(pulled.digest.as_deref(), Some("sha256:7b32"));
    let steps: Vec<Step> = report.steps.iter().map(|s| s.step).collect();
    let at = |step| steps.iter().position(|s| *s == step).unwrap();
    assert!(at(Step::Pulling) < at(Step::Pulled) && at(Step::Pulled) < at(Step::Stage));
    assert_eq!(stage.runs.load(Ordering::Relaxed), 1);

    // Already on the engine: no pull at all.
    let again = f
        .orchestrator
        .deploy(&DeployRequest::new("registry.test/shop:r3", "r3"))
        .await
        .unwrap();
    assert!(again.pulled.is_some());
    let present = f
        .orchestrator
        .deploy(&DeployRequest::new("odoo:r4", "r4"))
        .await
        .unwrap();
    assert!(present.pulled.is_none());
    assert!(!present.steps.iter().any(|s| s.step == Step::Pulling));
}

#[tokio::test]
async fn a_stage_that_refuses_before_the_start_leaves_everything_as_it_was() {
    let stage = counting(StagePoint::BeforeStart, Duration::ZERO, true);
    let f = fixture(vec![stage.clone()]);
    f.slots.put(Slot::Blue, "r1", 600);
    f.slots.put(Slot::Green, "r0", 900);
    f.proxy.set(&[(Slot::Blue, 100), (Slot::Green, 0)]);
    let report = f
        .orchestrator
        .deploy(&DeployRequest::new("odoo:r2", "r2"))
        .await
        .unwrap();
    assert_eq!(report.result, OperationResult::Refused);
    assert_eq!(report.stage, Some(Stage::BeforeStart));
    assert_eq!(stage.runs.load(Ordering::Relaxed), 1);
    assert_eq!(f.slots.launches.load(Ordering::Relaxed), 0);
    assert_eq!(
        f.slots.release(Slot::Green).as_deref(),
        Some("r0"),
        "the idle slot's old container is not removed before the stages said yes"
    );
    assert!(report.replaced.is_none());
}

#[tokio::test]
async fn of_two_deploys_started_together_one_runs_its_stages_and_the_other_is_refused_by_the_lock()
{
    let stage = counting(StagePoint::BeforeStart, Duration::from_millis(300), false);
    let f = fixture(vec![stage.clone()]);
    f.slots.put(Slot::Blue, "r1", 600);
    f.proxy.set(&[(Slot::Blue, 100)]);
    let (first, second) = (
        DeployRequest::new("odoo:r2", "r2"),
        DeployRequest::new("odoo:r3", "r3"),
    );
    let (a, b) = tokio::join!(
        f.orchestrator.deploy(&first),
        f.orchestrator.deploy(&second)
    );
    let (won, lost) = match (a, b) {
        (Ok(report), Err(e)) | (Err(e), Ok(report)) => (report, e),
        (a, b) => panic!("one deploy must win and one be refused: {a:?} {b:?}"),
    };
    assert!(
        matches!(
            lost,
            Error::LockHeld {
                holder: Some(_),
                ..
            }
        ),
        "{lost}"
    );
    assert_eq!(
        stage.runs.load(Ordering::Relaxed),
        1,
        "one backup stage ran"
    );
    assert_eq!(won.result, OperationResult::Succeeded);
    assert_eq!(won.backup_id.as_deref(), Some("b-1"));
    assert_eq!(won.stages.len(), 1);
}

#[tokio::test]
async fn deploys_and_rollbacks_are_announced_and_a_channel_that_refuses_only_warns() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    // The on-call webhook was removed: Slack-style 404 no_service.
    let oncall = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_string("no_service"))
        .mount(&oncall)
        .await;
    let urls = tempfile::tempdir().unwrap();
    let url_file = |name: &str, server: &MockServer| {
        let path = urls.path().join(name);
        std::fs::write(&path, format!("{}/hooks/SECRET-{name}", server.uri())).unwrap();
        path.display().to_string()
    };
    let extra = format!(
        "[[notify]]\nname = \"team\"\nkind = \"slack\"\nurl = {{ file = {:?} }}\n\
         [[notify]]\nname = \"oncall\"\nkind = \"webhook\"\nurl = {{ file = {:?} }}\nevents = [\"failed\", \"rolled_back\"]\n",
        url_file("slack", &slack),
        url_file("oncall", &oncall)
    );
    let f = fixture_with(Vec::new(), &extra);
    let report = deploy_r2_over_r1(&f).await;
    assert_eq!(report.result, OperationResult::Succeeded, "{report:#?}");
    let names: Vec<&str> = report.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["notify started", "notify"], "{report:#?}");
    assert!(
        !report.warnings.iter().any(|w| w.contains("notice")),
        "every notice was delivered: {:?}",
        report.warnings
    );
    let bodies = |requests: Vec<wiremock::Request>| -> Vec<serde_json::Value> {
        requests
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    };
    let sent = bodies(slack.received_requests().await.unwrap());
    let headers: Vec<&str> = sent
        .iter()
        .map(|b| b["blocks"][0]["text"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        headers,
        ["Deploy started: shop", "Deploy succeeded: shop"],
        "{sent:#?}"
    );
    assert!(
        oncall.received_requests().await.unwrap().is_empty(),
        "not its events"
    );

    let report = f
        .orchestrator
        .rollback(&RollbackRequest::default())
        .await
        .unwrap();
    assert_eq!(report.result, OperationResult::Succeeded, "{report:#?}");
    let sent = bodies(slack.received_requests().await.unwrap());
    assert_eq!(sent.len(), 3);
    assert_eq!(
        sent[2]["blocks"][0]["text"]["text"],
        "Deploy rolled back: shop"
    );
    assert!(
        sent[2]["text"]
            .as_str()
            .unwrap()
            .contains("traffic is back on r1"),
        "{:#}",
        sent[2]
    );
    let oncall_sent = bodies(oncall.received_requests().await.unwrap());
    assert_eq!(oncall_sent.len(), 1, "a 404 is not retried");
    assert_eq!(
        oncall_sent[0]["alerts"][0]["labels"]["alertname"],
        "OdooDeployRolledBack"
    );
    // The rollback happened; the refused notification is a warning, without its URL.
    let warnings = report.warnings.join("\n");
    assert!(
        warnings.contains("oncall") && warnings.contains("404") && warnings.contains("no_service"),
        "{warnings}"
    );
    assert!(!warnings.contains("SECRET-"), "{warnings}");
}

/// Release r1 passed and serves from blue; r2 is deployed.
async fn deploy_r2_over_r1(f: &Fixture) -> deploy_bluegreen::orchestrator::OperationReport {
    f.history.passed("r1").await;
    f.slots.put(Slot::Blue, "r1", 600);
    f.proxy.set(&[(Slot::Blue, 100)]);
    f.orchestrator
        .deploy(&DeployRequest::new("odoo:r2", "r2"))
        .await
        .unwrap()
}

/// A stage named `update` that reports it updated `shop` (as the module update stage's
/// details say it).
struct UpdatedShop;

#[async_trait]
impl DeployStage for UpdatedShop {
    fn name(&self) -> &str {
        "update"
    }

    fn point(&self) -> StagePoint {
        StagePoint::BeforeStart
    }

    async fn run(&self, _ctx: &StageContext<'_>) -> Result<StageOutcome, ClassifiedError> {
        Ok(StageOutcome::proceed()
            .with_summary("updated shop")
            .with_details(serde_json::json!({"plan": {"update": ["shop"], "install": []}})))
    }
}

#[tokio::test]
async fn an_online_update_then_a_failure_after_the_switch_goes_back_on_the_updated_database_and_says_so(
) {
    // strategy = "online": the change was declared safe for the old code. When the new
    // release fails after the switch, traffic goes back at once and the database stays
    // updated (a restore would drop every write since the backup): the report says so
    // and names the backup that would undo it.
    let backup = counting(StagePoint::BeforeStart, Duration::ZERO, false);
    let watch = counting(StagePoint::AfterSwitch, Duration::ZERO, true);
    let f = fixture_with(
        vec![backup, Arc::new(UpdatedShop), watch],
        "[backup]\nstore = \"{dir}/backups\"\ndatabase_url = { env = \"DECISIONS_DB_URL\" }\n[update]\nstrategy = \"online\"\n",
    );
    let report = deploy_r2_over_r1(&f).await;
    assert_eq!(report.result, OperationResult::RolledBack, "{report:#?}");
    assert_eq!(f.proxy.shares(), [(Slot::Blue, 100), (Slot::Green, 0)]);
    let note = report
        .warnings
        .iter()
        .find(|w| w.contains("ran online"))
        .unwrap_or_else(|| panic!("{:?}", report.warnings));
    assert!(
        note.contains("(shop)") && note.contains("kept") && note.contains("b-1"),
        "{note}"
    );
}
