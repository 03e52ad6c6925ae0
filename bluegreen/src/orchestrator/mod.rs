//! The orchestrator: deploy, canary, rollback, switch and stop-idle on one stack, each
//! step derived from what Docker and the proxy say now.
//!
//! # A deploy
//!
//! 1. **lock** the stack ([`crate::lock`]): a second operation fails at once naming the
//!    holder; a lock left by a killed process is taken over and reported;
//! 2. **observe**: the slots' containers (Docker's labels) and the proxy's live routing;
//!    **repair** what an interrupted operation left (split traffic goes back to the
//!    older container, the slot that served before; a proxy pointing at a wrong
//!    address is re-pointed; nginx is reloaded when requests through it do not reach
//!    the slot its files name);
//! 3. **start** the idle slot with the new release (its old container, if any, is
//!    replaced) and wait until it answers its readiness path;
//! 4. run the **pre-switch** gate plan against the new slot directly. A failure stops
//!    the new slot (removes it, unless `keep_failed`), switches nothing, and the result
//!    is [`OperationResult::Refused`];
//! 5. **switch** (or, for a canary, set weights step by step), **verify** through the
//!    proxy that new requests reach the new release, and run the **post-switch** plan
//!    through the proxy (its `wait-until` window is the verification window). A failure
//!    switches traffic back to the old slot: [`OperationResult::RolledBack`];
//! 6. **drain** the old slot, **record** the outcome through the
//!    [`DeploymentRecorder`], release the lock;
//! 7. keep the old slot running for the **rollback window**, then take the lock again
//!    and stop it, if it is still the same container and still takes no traffic.
//!
//! # Crash safety
//!
//! Every step is idempotent and is decided from Docker and the proxy, never from a
//! local file: after a process is killed at any step, `status` reports the state as it
//! is and the next `deploy` or `rollback` goes on from there, leaving exactly one slot
//! serving. The [journal](crate::journal) records intent, for reporting only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use deploy_core::url::Url;
use deploy_core::{
    error_chain, BoxError, DeployStage, DeployStatus, Deployer, DeploymentOutcome,
    DeploymentRecorder, Event, EventSink, NoHistory, NullSink, RedeployMethod, RedeployReport,
    Release, ReleaseRef,
};
use deploy_gates::{GateFactory, Plan, Registry, Report, Runner};
use tracing::{info, warn};

use crate::backend::SlotBackend;
use crate::config::{
    backend_of, RollbackWindow, StackConfig, TARGET_PREVIOUS, TARGET_PROXY, TARGET_SLOT,
};
use crate::docker::{DockerSlots, ReadyOptions};
use crate::error::{Error, Result, StartFailure};
use crate::journal::{Journal, JournalEntry};
use crate::lock::{hostname, LockHolder, StackLock};
use crate::registry::{CredentialLookup, ImageOutcome, ImageProblem, ImageRef};
use crate::slot::{ContainerInfo, Slot, SlotState};
use crate::switch::{Backend, TrafficState, TrafficSwitch};
use crate::verify::{sample_releases, verify_release, Expected, VerifyOptions};

mod deploy;
mod gates;
mod maintenance;
mod reconcile;
mod report;
mod rollback;
mod stages;
mod status;

pub use report::{
    GateRun, MaintenanceRecord, Operation, OperationReport, OperationResult, ParseStepError,
    PulledImage, SlotRelease, Stage, Step, StepTiming, Timings,
};
pub use stages::{DeployPlan, PlannedStage};
pub use status::{ContainerSummary, SlotRole, SlotStatus, StackHealth, StatusReport};

/// Called at every [`Step`] of an operation, before the step's work.
///
/// The binary's test hook (`ODOO_BLUEGREEN_PAUSE_AT=<step>`) blocks there so that a test
/// can kill the process at that exact point. Implementations must not change the
/// stack; they may take time (the operation waits).
#[async_trait]
pub trait StepHook: Send + Sync {
    /// `operation` reached `step`.
    async fn reached(&self, operation: Operation, step: Step);
}

/// Builds the gate factory of one gate run (a fresh one each time, so that no
/// connection pool outlives the container it talked to).
pub type GatesFn = dyn Fn() -> Box<dyn GateFactory> + Send + Sync;

/// How a deploy moves traffic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Rollout {
    /// All at once, after the pre-switch gates.
    #[default]
    BlueGreen,
    /// In weighted steps: the new slot's share in percent at each step (e.g. `[10, 50,
    /// 100]`), the post-switch gates evaluated at each. The last step must be 100.
    Canary {
        /// The shares, increasing, ending at 100.
        steps: Vec<u8>,
    },
}

/// What to deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployRequest {
    /// The release: its image (pulled from its registry when the engine lacks it, as
    /// the stack file's `[deploy] pull` says), its
    /// label as the version (`com.deployment.release`, the history's release) and its
    /// git commit (for the history). The same value reaches the stages, the history
    /// record and the report.
    pub release: Release,
    /// All at once or in steps.
    pub rollout: Rollout,
    /// Overrides the stack's rollback window.
    pub rollback_window: Option<RollbackWindow>,
    /// The id of a backup the caller took itself before this deploy. A backup stage
    /// (deploy-rollback's `BackupStage`, added with [`Orchestrator::with_stage`]) sets
    /// it instead. Recorded with the deploy's outcome, so that retention keeps it while
    /// this release is current, and shown in the report.
    pub backup_id: Option<String>,
    /// Refuse the deploy instead of replacing the idle slot when it holds the rollback
    /// target (a release that passed its gates here, running or stopped). By default
    /// the deploy replaces it, and says so in its progress and report first.
    pub keep_rollback_target: bool,
}

impl DeployRequest {
    /// A blue-green deploy of `image` as release `label`.
    #[must_use]
    pub fn new(image: &str, label: &str) -> Self {
        Self {
            release: Release::new(image).with_version(label),
            rollout: Rollout::BlueGreen,
            rollback_window: None,
            backup_id: None,
            keep_rollback_target: false,
        }
    }

    /// The release label (the version, else the image).
    #[must_use]
    pub fn label(&self) -> &str {
        self.release.label()
    }

    /// With the git commit the image was built from.
    #[must_use]
    pub fn with_git_sha(mut self, sha: &str) -> Self {
        self.release.git_sha = Some(sha.to_owned());
        self
    }

    /// A canary deploy with these steps.
    #[must_use]
    pub fn canary(mut self, steps: &[u8]) -> Self {
        self.rollout = Rollout::Canary {
            steps: steps.to_vec(),
        };
        self
    }

    /// With a rollback window other than the stack's.
    #[must_use]
    pub fn with_rollback_window(mut self, window: RollbackWindow) -> Self {
        self.rollback_window = Some(window);
        self
    }

    /// Records `backup_id` as this deploy's pre-deploy backup.
    #[must_use]
    pub fn with_backup(mut self, backup_id: &str) -> Self {
        self.backup_id = Some(backup_id.to_owned());
        self
    }

    /// Checks the request without touching anything (an empty image or release, canary
    /// steps that do not increase to 100, an empty backup id). [`Orchestrator::deploy`]
    /// checks it first; a caller that does work before the deploy (a backup) checks it
    /// earlier.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &str, reason: &str| Error::Config {
            field: field.to_owned(),
            reason: reason.to_owned(),
        };
        if self.release.image.trim().is_empty() {
            return Err(invalid("image", "must not be empty"));
        }
        if self
            .release
            .version
            .as_deref()
            .is_none_or(|v| v.trim().is_empty())
        {
            return Err(invalid("release", "must not be empty"));
        }
        if self
            .backup_id
            .as_deref()
            .is_some_and(|id| id.trim().is_empty())
        {
            return Err(invalid("backup_id", "must not be empty"));
        }
        if let Rollout::Canary { steps } = &self.rollout {
            if steps.is_empty() {
                return Err(invalid("steps", "give at least one step, e.g. 10,50,100"));
            }
            if steps.iter().any(|s| *s == 0 || *s > 100) {
                return Err(invalid("steps", "each step is a share from 1 to 100"));
            }
            if steps.windows(2).any(|w| w[0] >= w[1]) {
                return Err(invalid("steps", "steps must increase"));
            }
            if steps.last() != Some(&100) {
                return Err(invalid("steps", "the last step must be 100"));
            }
        }
        Ok(())
    }
}

/// The release label a deploy uses when none is given: the image's tag (`odoo:17.0-
/// 20240601` gives `17.0-20240601`), or the whole reference when it has no tag.
#[must_use]
pub fn default_release(image: &str) -> String {
    let name = image.rsplit('/').next().unwrap_or(image);
    let name = name.split('@').next().unwrap_or(name);
    match name.rsplit_once(':') {
        Some((_, tag)) if !tag.is_empty() => tag.to_owned(),
        _ => image.to_owned(),
    }
}

/// How a rollback goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RollbackRequest {
    /// Drain and stop the slot rolled back from (default: it stays running, drained,
    /// for inspection; the next deploy replaces it).
    pub stop: bool,
    /// Switch code back even when the live release's deploy updated the database (the
    /// older release then runs on the newer schema). Without it such a rollback is
    /// refused, with the way back that keeps code and database together.
    pub code_only: bool,
}

/// A manual switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SwitchRequest {
    /// The slot to send all traffic to (default: the one not serving).
    pub to: Option<Slot>,
    /// Skip the pre-switch gates.
    pub skip_gates: bool,
}

/// The slots' and the proxy's state, as read at the start of an operation.
#[derive(Debug, Clone)]
struct Observed {
    slots: SlotState,
    traffic: TrafficState,
}

/// Where the plan target names point during a gate run: the slots' HTTP ports and,
/// when the stack publishes one, their real-time ports (where the websocket gate goes).
#[derive(Debug, Clone, Default)]
struct PlanUrls {
    slot: Option<Url>,
    previous: Option<Url>,
    slot_realtime: Option<Url>,
    previous_realtime: Option<Url>,
}

impl PlanUrls {
    /// The URLs of `slot` (the slot gated) and `previous` (the one serving before).
    fn of(slot: Option<&ContainerInfo>, previous: Option<&ContainerInfo>) -> Self {
        Self {
            slot: slot.and_then(|i| url_of(i.http)),
            previous: previous.and_then(|i| url_of(i.http)),
            slot_realtime: slot.and_then(realtime_url_of),
            previous_realtime: previous.and_then(realtime_url_of),
        }
    }
}

/// The real-time port's URL of a container that publishes one apart from HTTP.
fn realtime_url_of(info: &ContainerInfo) -> Option<Url> {
    info.realtime
        .filter(|r| Some(*r) != info.http)
        .and_then(|r| url_of(Some(r)))
}

/// One operation under way.
struct Run {
    operation: Operation,
    started: Instant,
    report: OperationReport,
    /// `None` once the journal entry is closed (the lock is released).
    journal: Option<JournalEntry>,
    /// Whether reconciling found split traffic and put all of it on one slot.
    split_repaired: bool,
    /// The slot whose running container this deploy reused instead of creating one: a
    /// refusal leaves it as it was, since this operation did not make it.
    reused: Option<Slot>,
    /// The operation before this one died in its module update: the pre-deploy backup
    /// it had taken (`Some(None)`: it had none), for the update stage to repair from.
    interrupted_update: Option<Option<String>>,
    /// The maintenance window this deploy offers its stages.
    maintenance: Option<Arc<maintenance::MaintenanceWindow>>,
}

/// What a verification through the proxy found.
enum Verdict {
    Passed,
    Failed { stage: Stage, reason: String },
}

/// Drives one stack: its two slots on Docker and its proxy.
///
/// ```no_run
/// use deploy_bluegreen::config::StackConfig;
/// use deploy_bluegreen::orchestrator::{DeployRequest, Orchestrator};
///
/// # async fn run() -> deploy_bluegreen::Result<()> {
/// let config = StackConfig::load(std::path::Path::new("/etc/odoo/stack.toml"))?;
/// let orchestrator = Orchestrator::connect(config).await?.with_operator("ci");
/// let report = orchestrator
///     .deploy(&DeployRequest::new("registry.example.com/odoo:17.0-20240601", "17.0-20240601"))
///     .await?;
/// println!("{}: {:?} now serves", report.result, report.serving);
/// # Ok(()) }
/// ```
pub struct Orchestrator {
    config: Arc<StackConfig>,
    docker: Arc<dyn SlotBackend>,
    switch: Arc<dyn TrafficSwitch>,
    gates: Arc<GatesFn>,
    recorder: Arc<dyn DeploymentRecorder>,
    events: Arc<dyn EventSink>,
    /// `[[notify]]`: its deploy stages are in `stages`; rollbacks and switches announce
    /// through it after they release the lock.
    notify: Option<deploy_notify::NotifyStages>,
    hook: Option<Arc<dyn StepHook>>,
    stages: Vec<Arc<dyn DeployStage>>,
    operator: String,
    journal: Journal,
    credentials: CredentialLookup,
}

impl std::fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orchestrator")
            .field("stack", &self.config.stack)
            .field("proxy", &self.switch.kind())
            .field("operator", &self.operator)
            .finish_non_exhaustive()
    }
}

impl Orchestrator {
    /// An orchestrator for `config`'s stack on `docker`, switching traffic with
    /// `switch`. Gates are the built-in ones, nothing is recorded, events are dropped,
    /// the operator is `deploy-bluegreen`, and the stack file's `[[hooks]]` are the
    /// only stages: see the `with_*` methods.
    #[must_use]
    pub fn new(config: StackConfig, docker: DockerSlots, switch: Arc<dyn TrafficSwitch>) -> Self {
        Self::with_backend(config, Arc::new(docker), switch)
    }

    /// As [`Orchestrator::new`], with the slots run by `backend` instead of Docker (a
    /// test's in-memory engine).
    #[must_use]
    pub fn with_backend(
        config: StackConfig,
        backend: Arc<dyn SlotBackend>,
        switch: Arc<dyn TrafficSwitch>,
    ) -> Self {
        let docker = backend;
        let journal = Journal::new(&config.state_dir, &config.stack);
        let mut stages: Vec<Arc<dyn DeployStage>> = config
            .hooks
            .iter()
            .map(|hook| Arc::new(crate::hook::HookStage::new(hook.clone())) as Arc<dyn DeployStage>)
            .collect();
        let notify = (!config.notify.is_empty()).then(|| {
            deploy_notify::NotifyStages::new(
                config.notify.clone(),
                deploy_notify::Policy::default(),
                config.notify_wait,
            )
        });
        if let Some(notify) = &notify {
            // The team hears of the deploy before anything else runs, and of its
            // outcome after every other finish stage.
            stages.insert(0, notify.started());
            stages.push(notify.finished());
        }
        Self {
            config: Arc::new(config),
            docker,
            switch,
            gates: Arc::new(|| Box::new(Registry::with_builtins()) as Box<dyn GateFactory>),
            recorder: Arc::new(NoHistory),
            events: Arc::new(NullSink),
            hook: None,
            stages,
            notify,
            operator: "deploy-bluegreen".to_owned(),
            journal,
            credentials: CredentialLookup::from_process(),
        }
    }

    /// Connects to the local Docker engine and builds the proxy's switch from `config`.
    ///
    /// # Errors
    /// [`Error::DockerUnavailable`].
    pub async fn connect(config: StackConfig) -> Result<Self> {
        let docker = DockerSlots::connect().await?;
        let switch = config.proxy.build_switch();
        Ok(Self::new(config, docker, switch))
    }

    /// Builds gates with `gates` (called once per gate run).
    #[must_use]
    pub fn with_gates<F>(mut self, gates: F) -> Self
    where
        F: Fn() -> Box<dyn GateFactory> + Send + Sync + 'static,
    {
        self.gates = Arc::new(gates);
        self
    }

    /// Records outcomes with `recorder`.
    #[must_use]
    pub fn with_recorder(mut self, recorder: Arc<dyn DeploymentRecorder>) -> Self {
        self.recorder = recorder;
        self
    }

    /// Reports progress (and the gate runner's events) to `events`.
    #[must_use]
    pub fn with_events(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = events;
        self
    }

    /// Calls `hook` at every step.
    #[must_use]
    pub fn with_hook(mut self, hook: Arc<dyn StepHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Looks up registry credentials in `lookup` instead of the process's environment
    /// and home directory (see [`crate::registry`]).
    #[must_use]
    pub fn with_credentials(mut self, lookup: CredentialLookup) -> Self {
        self.credentials = lookup;
        self
    }

    /// Names who runs the operations (lock holder, journal, history).
    #[must_use]
    pub fn with_operator(mut self, operator: &str) -> Self {
        operator.clone_into(&mut self.operator);
        self
    }

    /// The stack configuration.
    #[must_use]
    pub fn config(&self) -> &StackConfig {
        &self.config
    }

    /// The traffic switch.
    #[must_use]
    pub fn switch(&self) -> &Arc<dyn TrafficSwitch> {
        &self.switch
    }

    /// The journal.
    #[must_use]
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    // -----------------------------------------------------------------------------
    // Bookkeeping: lock, journal, events, hook, history.

    fn lock(&self, operation: Operation) -> Result<StackLock> {
        StackLock::acquire(
            &self.config.state_dir,
            &self.config.stack,
            &LockHolder::current(&self.operator, operation.as_str()),
        )
    }

    async fn begin(
        &self,
        operation: Operation,
        release: Option<&str>,
        image: Option<&str>,
        lock: &StackLock,
    ) -> Run {
        // A previous operation that died in its module update (its lock is ours now):
        // its backup is what repairs the database.
        let interrupted_update = match self.journal.read().await {
            Ok(Some(previous))
                if !previous.finished && previous.stage.as_deref() == Some("update") =>
            {
                Some(previous.backup_id)
            }
            _ => None,
        };
        let now = Utc::now();
        let mut run = Run {
            operation,
            started: Instant::now(),
            report: OperationReport::new(operation, &self.config.stack),
            split_repaired: false,
            reused: None,
            interrupted_update,
            maintenance: None,
            journal: Some(JournalEntry {
                operation,
                release: release.map(str::to_owned),
                image: image.map(str::to_owned),
                from: None,
                to: None,
                step: Step::Locked,
                stage: None,
                backup_id: None,
                pid: std::process::id(),
                host: hostname(),
                operator: self.operator.clone(),
                started_at: now,
                updated_at: now,
                finished: false,
                result: None,
                error: None,
            }),
        };
        let mut event = Event::started(
            operation.as_str(),
            format!("{operation} on stack {}", self.config.stack),
        )
        .with_field("stack", self.config.stack.as_str())
        .with_field("operator", self.operator.as_str());
        if let Some(release) = release {
            event = event.with_field("release", release);
        }
        self.events.emit(&event);
        if let Some(previous) = lock.took_over() {
            let message =
                format!("took over the stack lock left by {previous}, which no longer runs");
            warn!(stack = %self.config.stack, "{message}");
            self.events
                .emit(&Event::warning(operation.as_str(), message.clone()));
            run.report.repairs.push(message);
        }
        run
    }

    async fn step(&self, run: &mut Run, step: Step, message: impl Into<String>) {
        let message = message.into();
        let at = run.started.elapsed();
        run.report.steps.push(StepTiming {
            step,
            at_ms: millis(at),
        });
        if let Some(entry) = run.journal.as_mut() {
            entry.step = step;
            if step != Step::Stage {
                entry.stage = None;
            }
            entry.backup_id.clone_from(&run.report.backup_id);
            entry.updated_at = Utc::now();
            if let Err(e) = self.journal.write(entry).await {
                warn!(error = %e, "cannot write the journal");
            }
        }
        info!(stack = %self.config.stack, operation = %run.operation, step = %step, elapsed_ms = millis(at), "{message}");
        self.events.emit(
            &Event::progress(run.operation.as_str(), message)
                .with_field("step", step.as_str())
                .with_field("elapsed_ms", millis(at)),
        );
        if let Some(hook) = &self.hook {
            hook.reached(run.operation, step).await;
        }
    }

    async fn close_journal(&self, run: &mut Run, error: Option<&Error>) {
        if let Some(mut entry) = run.journal.take() {
            entry.finished = true;
            entry.updated_at = Utc::now();
            match error {
                Some(e) => entry.error = Some(e.to_string()),
                None => entry.result = Some(run.report.result),
            }
            if let Err(e) = self.journal.write(&entry).await {
                warn!(error = %e, "cannot write the journal");
            }
        }
        if let Some(e) = error {
            self.events.emit(
                &Event::finished(run.operation.as_str(), format!("failed: {e}"))
                    .with_field("result", "error"),
            );
        }
    }

    async fn done(&self, mut run: Run) -> OperationReport {
        self.step(&mut run, Step::Done, "finished").await;
        let t = &mut run.report.timings;
        t.total = run.started.elapsed();
        t.overhead = t
            .total
            .saturating_sub(t.image_pull)
            .saturating_sub(t.container_start)
            .saturating_sub(t.gates)
            .saturating_sub(t.drain)
            .saturating_sub(t.window);
        let mut event = Event::finished(
            run.operation.as_str(),
            format!("{} in {} ms", run.report.result, millis(t.total)),
        )
        .with_field("result", run.report.result.as_str())
        .with_field("total_ms", millis(t.total));
        if let Some(serving) = run.report.serving {
            event = event.with_field("serving", serving.as_str());
        }
        self.events.emit(&event);
        run.report
    }

    fn warn(&self, run: &mut Run, message: String) {
        warn!(stack = %self.config.stack, "{message}");
        self.events
            .emit(&Event::warning(run.operation.as_str(), message.clone()));
        run.report.warnings.push(message);
    }

    /// Records as interrupted the deployments of this stack that the history still has
    /// as started: called under the stack's lock, so none of them can still run (their
    /// process was killed or the machine stopped).
    async fn close_unfinished(&self, run: &mut Run) {
        let (stack, environment) = (&self.config.stack, self.config.environment);
        let unfinished = match self.recorder.unfinished(stack, environment).await {
            Ok(unfinished) => unfinished,
            Err(e) => {
                self.warn(
                    run,
                    format!("cannot read the history for unfinished deploys: {e}"),
                );
                return;
            }
        };
        for started in unfinished {
            let outcome = DeploymentOutcome {
                status: DeployStatus::Interrupted,
                duration: None,
                gate_summary: None,
                ..started
            };
            match self.recorder.record(&outcome).await {
                Ok(()) => {
                    self.repaired(
                        run,
                        format!(
                            "the deploy of {} by {} never finished (its process died): recorded as interrupted",
                            outcome.release, outcome.operator
                        ),
                    )
                    .await;
                }
                Err(e) => self.warn(
                    run,
                    format!(
                        "cannot record the unfinished deploy of {} as interrupted: {e}",
                        outcome.release
                    ),
                ),
            }
        }
    }

    /// Whether `release` passed its gates in this stack, as the history says (`None`:
    /// no history, or it cannot be read, which is warned about).
    async fn passed_here(&self, run: &mut Run, release: &str) -> Option<bool> {
        match self
            .recorder
            .has_passed(&self.config.stack, self.config.environment, release)
            .await
        {
            Ok(passed) => passed,
            Err(e) => {
                self.warn(
                    run,
                    format!("cannot read the history of release {release}: {e}"),
                );
                None
            }
        }
    }

    fn refuse(&self, run: &mut Run, stage: Stage, reason: String) {
        run.report.result = OperationResult::Refused;
        run.report.stage = Some(stage);
        self.events.emit(
            &Event::warning(run.operation.as_str(), format!("refused: {reason}"))
                .with_field("stage", format!("{stage:?}").to_lowercase()),
        );
        run.report.reason = Some(reason);
    }

    async fn stop_quietly(&self, run: &mut Run, slot: Slot) {
        if let Err(e) = self
            .docker
            .stop(&self.config.stack, slot, self.config.slots.stop_grace)
            .await
        {
            self.warn(run, format!("stopping slot {slot}: {e}"));
        }
    }

    /// Records the deploy's result (succeeded, failed, rolled back) from its report;
    /// returns the status recorded.
    async fn record_result(&self, run: &Run, request: &DeployRequest) -> DeployStatus {
        let status = deploy_status(run.report.result);
        self.record(run, status, request).await;
        status
    }

    /// Records a deploy that failed with `error`.
    async fn record_error(&self, run: &mut Run, request: &DeployRequest, error: &Error) {
        let message = error_chain(error);
        self.warn(run, format!("failed: {message}"));
        run.report.reason = Some(message);
        self.record(run, DeployStatus::Failed, request).await;
    }

    async fn record(&self, run: &Run, status: DeployStatus, request: &DeployRequest) {
        self.record_outcome(
            run,
            request.label(),
            status,
            request.release.git_sha.as_deref(),
            run.report.backup_id.as_deref(),
        )
        .await;
    }

    /// Refuses the deploy at `stage` for `reason`, stops `started` (the slot this
    /// deploy started, if any) and records the refusal.
    async fn refuse_deploy(
        &self,
        run: &mut Run,
        request: &DeployRequest,
        stage: Stage,
        reason: String,
        started: Option<Slot>,
    ) -> Result<Option<ContainerInfo>> {
        self.refuse(run, stage, reason);
        if let Some(slot) = started {
            self.cleanup(run, slot).await;
        }
        self.record_result(run, request).await;
        Ok(None)
    }

    async fn record_outcome(
        &self,
        run: &Run,
        release: &str,
        status: DeployStatus,
        git_sha: Option<&str>,
        backup_id: Option<&str>,
    ) {
        let mut outcome = DeploymentOutcome::new(
            self.config.stack.as_str(),
            release,
            self.config.environment,
            status,
        )
        .with_operator(self.operator.as_str());
        if status != DeployStatus::Started {
            outcome = outcome.with_duration(run.started.elapsed());
            if !run.report.gates.is_empty() {
                outcome = outcome.with_gate_summary(serde_json::Value::Array(
                    run.report
                        .gates
                        .iter()
                        .map(|g| {
                            serde_json::json!({
                                "plan": g.plan,
                                "share": g.share,
                                "result": g.report.result,
                                "failures": g.report.failures,
                            })
                        })
                        .collect(),
                ));
            }
        }
        if let Some(sha) = git_sha {
            outcome = outcome.with_git_sha(sha);
        }
        if let Some(id) = backup_id {
            outcome = outcome.with_backup(id);
        }
        if status != DeployStatus::Started {
            if let Some(reason) = run
                .report
                .reason
                .as_deref()
                .filter(|_| status != DeployStatus::Succeeded)
            {
                outcome = outcome.with_reason(reason);
            }
            outcome = outcome.with_stages(run.report.stages.clone());
        }
        if let Err(e) = self.recorder.record(&outcome).await {
            warn!(stack = %self.config.stack, error = %e, "cannot record the deployment outcome");
            self.events.emit(&Event::warning(
                "history",
                format!("cannot record {status} of {release}: {e}"),
            ));
        }
    }

    fn ready_options(&self, timeout: Duration) -> ReadyOptions {
        ReadyOptions {
            timeout,
            ..ReadyOptions::default()
        }
    }

    fn verify_options(&self) -> VerifyOptions {
        VerifyOptions {
            path: self.config.slots.health_path.clone(),
            consecutive: self.config.deploy.verify_consecutive,
            timeout: self.config.deploy.verify_timeout,
            ..VerifyOptions::default()
        }
    }
}

/// The history's status of a deploy that ended with `result`.
fn deploy_status(result: OperationResult) -> DeployStatus {
    match result {
        OperationResult::Succeeded | OperationResult::Unchanged => DeployStatus::Succeeded,
        OperationResult::Refused => DeployStatus::Failed,
        OperationResult::RolledBack => DeployStatus::RolledBack,
    }
}

/// What `rollback` may do with the slot that does not serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fallback {
    /// Its release passed its gates here (or, with no history, its container is older
    /// than the live one: it served before): `rollback` returns to it.
    Proven,
    /// The history has no pass of its release here (an interrupted or refused deploy):
    /// it never served, so `rollback` leaves traffic on the live release.
    NeverPassed,
    /// No history to ask, and its container is newer than the live one: it may never
    /// have served, so `rollback` gates it before switching to it.
    Unproven,
}

impl Fallback {
    fn of(passed: Option<bool>, idle: &ContainerInfo, live: Option<&ContainerInfo>) -> Self {
        match passed {
            Some(true) => Self::Proven,
            Some(false) => Self::NeverPassed,
            None => match (idle.created, live.and_then(|l| l.created)) {
                (Some(idle), Some(live)) if idle < live => Self::Proven,
                _ => Self::Unproven,
            },
        }
    }
}

/// What a report keeps of a failed slot's log: the last [`LOG_EXCERPT_TAIL`] lines, and
/// before them at most [`LOG_EXCERPT_ERRORS`] lines that look like errors (Odoo's
/// `ERROR`/`CRITICAL` records, Python tracebacks, panics), with a line saying how many
/// were left out.
#[must_use]
pub fn log_excerpt(logs: &str) -> String {
    let lines: Vec<&str> = logs.lines().collect();
    let tail_start = lines.len().saturating_sub(LOG_EXCERPT_TAIL);
    let (head, tail) = lines.split_at(tail_start);
    let errors: Vec<&str> = head
        .iter()
        .copied()
        .filter(|line| looks_like_error(line))
        .collect();
    let kept_errors = &errors[errors.len().saturating_sub(LOG_EXCERPT_ERRORS)..];
    let left_out = head.len() - kept_errors.len();
    let mut out = String::new();
    if !kept_errors.is_empty() {
        out.push_str("[error lines before the last lines]\n");
        for line in kept_errors {
            out.push_str(line);
            out.push('\n');
        }
    }
    if left_out > 0 {
        out.push_str(&format!("[... {left_out} lines left out ...]\n"));
    }
    for line in tail {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The last lines a [`log_excerpt`] keeps.
pub const LOG_EXCERPT_TAIL: usize = 20;
/// The earlier error lines a [`log_excerpt`] keeps at most.
pub const LOG_EXCERPT_ERRORS: usize = 10;

fn looks_like_error(line: &str) -> bool {
    [
        " ERROR ",
        " CRITICAL ",
        "Traceback (most recent call last)",
        "Error: ",
        "panicked at",
        "FATAL",
    ]
    .iter()
    .any(|needle| line.contains(needle))
}

fn slot_release(info: &ContainerInfo) -> SlotRelease {
    SlotRelease {
        slot: info.slot,
        release: info.release.clone(),
        image: info.image.clone(),
    }
}

fn url_of(addr: Option<SocketAddr>) -> Option<Url> {
    addr.and_then(|a| Url::parse(&format!("http://{a}")).ok())
}

fn display_addr(addr: Option<SocketAddr>) -> String {
    addr.map_or_else(|| "?".to_owned(), |a| a.to_string())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn describe_sample(sample: &[(String, u64)]) -> String {
    sample
        .iter()
        .map(|(label, n)| format!("{label} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The operations' futures can be spawned on a multi-threaded runtime.
#[allow(dead_code)]
fn futures_are_send(orchestrator: &Orchestrator) {
    fn send<T: Send>(_: T) {}
    let request = DeployRequest::new("image", "release");
    send(orchestrator.deploy(&request));
    send(orchestrator.rollback(&RollbackRequest::default()));
    send(orchestrator.switch_traffic(&SwitchRequest::default()));
    send(orchestrator.stop_idle());
    send(orchestrator.status());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_excerpt_keeps_the_last_lines_and_the_errors_before_them() {
        let mut logs = String::new();
        for i in 0..100 {
            if i == 7 {
                logs.push_str("2025-03-01 10:00:07,000 1 ERROR demo odoo.modules.loading: module shop: KeyError\n");
            } else {
                logs.push_str(&format!(
                    "2025-03-01 10:00:00,000 1 INFO demo werkzeug: line {i}\n"
                ));
            }
        }
        let excerpt = log_excerpt(&logs);
        let lines: Vec<&str> = excerpt.lines().collect();
        assert!(
            lines.len() <= LOG_EXCERPT_TAIL + LOG_EXCERPT_ERRORS + 2,
            "{excerpt}"
        );
        assert!(
            excerpt.contains("ERROR demo odoo.modules.loading"),
            "{excerpt}"
        );
        assert!(excerpt.contains("[... 79 lines left out ...]"), "{excerpt}");
        assert!(lines.last().unwrap().ends_with("line 99"), "{excerpt}");
        assert!(!excerpt.contains("line 79\n"), "{excerpt}");
        assert_eq!(log_excerpt("one\ntwo\n"), "one\ntwo\n");
    }

    #[test]
    fn default_release_is_the_tag() {
        assert_eq!(default_release("odoo:17.0-20240601"), "17.0-20240601");
        assert_eq!(default_release("registry:5000/team/odoo:r2"), "r2");
        assert_eq!(
            default_release("registry:5000/team/odoo"),
            "registry:5000/team/odoo"
        );
        assert_eq!(default_release("odoo:r3@sha256:abc"), "r3");
    }

    #[test]
    fn the_backup_id_goes_with_the_request() {
        let request = DeployRequest::new("i", "r").with_backup("20250301T101500Z-shop-00ff");
        assert_eq!(
            request.backup_id.as_deref(),
            Some("20250301T101500Z-shop-00ff")
        );
        assert!(request.validate().is_ok());
        assert!(DeployRequest::new("i", "r").backup_id.is_none());
        let empty = DeployRequest::new("i", "r").with_backup(" ");
        assert!(
            matches!(empty.validate(), Err(Error::Config { ref field, .. }) if field == "backup_id")
        );
    }

    #[test]
    fn canary_steps_are_validated() {
        let ok = DeployRequest::new("i", "r").canary(&[10, 50, 100]);
        assert!(ok.validate().is_ok());
        for steps in [
            &[][..],
            &[10, 50][..],
            &[50, 10, 100][..],
            &[0, 100][..],
            &[10, 10, 100][..],
        ] {
            let request = DeployRequest::new("i", "r").canary(steps);
            assert!(
                matches!(request.validate(), Err(Error::Config { ref field, .. }) if field == "steps"),
                "{steps:?}"
            );
        }
    }
}
