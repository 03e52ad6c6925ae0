//! What the orchestrator's operations report: the steps, the verdict, the gates, the
//! timings. Everything serializes (durations as whole milliseconds, `*_ms`) for
//! `--json` output.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use deploy_core::{Slot, StageRecord};

/// An operation that changes a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// A blue-green deploy of a new release.
    Deploy,
    /// A deploy that moves traffic in weighted steps.
    Canary,
    /// Back to the slot that served before.
    Rollback,
    /// All traffic to the other (running) slot.
    Switch,
    /// Stop the slot that takes no traffic.
    StopIdle,
    /// A release put back in service for the rollback strategy (`Deployer`).
    Redeploy,
}

impl Operation {
    /// The name used in reports, the journal and the lock file.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Canary => "canary",
            Self::Rollback => "rollback",
            Self::Switch => "switch",
            Self::StopIdle => "stop-idle",
            Self::Redeploy => "redeploy",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named point of an operation. Each is reported as an event, written to the
/// journal, and offered to the [`StepHook`](super::StepHook) (the binary's test hook
/// stops the process there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// The stack lock is held.
    Locked,
    /// Docker's containers and the proxy's routing have been read.
    Observed,
    /// A state left by an interrupted operation was repaired.
    Repaired,
    /// One of the deploy's [stages](deploy_core::DeployStage) runs (the pre-deploy
    /// backup, a hook).
    Stage,
    /// The release's image is being pulled from its registry (it was not on the engine).
    Pulling,
    /// The release's image is on the engine.
    Pulled,
    /// The new slot's container is being created and started.
    Starting,
    /// The new slot answers on its readiness path.
    Started,
    /// The pre-switch gates are running against the new slot.
    PreGates,
    /// Traffic is being switched.
    Switching,
    /// The proxy accepted the switch.
    Switched,
    /// Requests through the proxy reach the intended release.
    Verified,
    /// The post-switch gates are running through the proxy.
    PostGates,
    /// A canary step's weights are set.
    CanaryStep,
    /// Traffic is being switched back after a failed verification.
    SwitchingBack,
    /// Traffic is back on the slot that served before.
    SwitchedBack,
    /// A slot that failed is being stopped (or removed).
    Cleanup,
    /// The old slot is being drained.
    Draining,
    /// The old slot takes no more requests.
    Drained,
    /// The outcome was recorded.
    Recorded,
    /// The old slot is kept running for the rollback window.
    Window,
    /// The old slot was stopped.
    Retired,
    /// The operation ended.
    Done,
}

impl Step {
    /// Every step, in the order a deploy reaches them.
    pub const ALL: [Step; 23] = [
        Step::Locked,
        Step::Observed,
        Step::Repaired,
        Step::Pulling,
        Step::Pulled,
        Step::Stage,
        Step::Starting,
        Step::Started,
        Step::PreGates,
        Step::Switching,
        Step::Switched,
        Step::Verified,
        Step::PostGates,
        Step::CanaryStep,
        Step::SwitchingBack,
        Step::SwitchedBack,
        Step::Cleanup,
        Step::Draining,
        Step::Drained,
        Step::Recorded,
        Step::Window,
        Step::Retired,
        Step::Done,
    ];

    /// The kebab-case name (`pre-gates`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Locked => "locked",
            Self::Observed => "observed",
            Self::Repaired => "repaired",
            Self::Pulling => "pulling",
            Self::Pulled => "pulled",
            Self::Stage => "stage",
            Self::Starting => "starting",
            Self::Started => "started",
            Self::PreGates => "pre-gates",
            Self::Switching => "switching",
            Self::Switched => "switched",
            Self::Verified => "verified",
            Self::PostGates => "post-gates",
            Self::CanaryStep => "canary-step",
            Self::SwitchingBack => "switching-back",
            Self::SwitchedBack => "switched-back",
            Self::Cleanup => "cleanup",
            Self::Draining => "draining",
            Self::Drained => "drained",
            Self::Recorded => "recorded",
            Self::Window => "window",
            Self::Retired => "retired",
            Self::Done => "done",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not a step name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a step name: {0:?}")]
pub struct ParseStepError(pub String);

impl FromStr for Step {
    type Err = ParseStepError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Step::ALL
            .into_iter()
            .find(|step| step.as_str() == s)
            .ok_or_else(|| ParseStepError(s.to_owned()))
    }
}

/// How an operation ended (errors that need a person are `Err`, not a result).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OperationResult {
    /// Done: the release is live and passed its gates (or the rollback, switch, stop
    /// happened).
    Succeeded,
    /// Nothing had to change (the release was already live and passed its gates; the
    /// idle slot was already stopped).
    Unchanged,
    /// Refused: the new slot did not start or failed its pre-switch gates, and no
    /// traffic moved; the old slot serves as before. (Also a first deploy failing after
    /// its switch, when no previous slot exists to go back to: the warnings say so.)
    Refused,
    /// Traffic moved, the verification through the proxy failed, and traffic went back
    /// to the slot that served before.
    RolledBack,
}

impl OperationResult {
    /// The kebab-case name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Unchanged => "unchanged",
            Self::Refused => "refused",
            Self::RolledBack => "rolled-back",
        }
    }

    /// Whether the operation did what it was asked.
    #[must_use]
    pub const fn is_success(self) -> bool {
        matches!(self, Self::Succeeded | Self::Unchanged)
    }
}

impl fmt::Display for OperationResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an operation was refused or rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// The new slot did not start (exited, or never answered its readiness path).
    Start,
    /// The pre-switch gates did not pass.
    PreGates,
    /// Requests through the proxy did not reach the new release.
    Verify,
    /// The post-switch gates did not pass.
    PostGates,
    /// A canary step's gates did not pass.
    Canary,
    /// A stage before the new slot starts refused or failed (nothing was started).
    BeforeStart,
    /// A stage before the switch refused or failed (the new slot was stopped).
    BeforeSwitch,
    /// A stage after the switch refused or failed (traffic went back).
    AfterSwitch,
    /// A rollback would put older code on a database the live release updated.
    Database,
}

/// One slot and the release it runs, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SlotRelease {
    /// The slot.
    pub slot: Slot,
    /// Its release label.
    pub release: String,
    /// Its image.
    pub image: String,
}

/// When a step was reached, from the start of the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepTiming {
    /// The step.
    pub step: Step,
    /// Milliseconds since the operation started.
    pub at_ms: u64,
}

/// A gate run, summarized (the whole report is in `report`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GateRun {
    /// `pre_switch` or `post_switch`.
    pub plan: String,
    /// The traffic share of the new slot when it ran (canary), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<u8>,
    /// Whether it passed.
    pub passed: bool,
    /// The runner's report.
    pub report: deploy_gates::Report,
}

/// Where the time of an operation went.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Timings {
    /// The whole operation, until it returned.
    #[serde(rename = "total_ms", with = "millis")]
    #[schemars(with = "u64")]
    pub total: Duration,
    /// Pulling the release's image from its registry (zero when the engine had it).
    #[serde(rename = "image_pull_ms", with = "millis", default)]
    #[schemars(with = "u64")]
    pub image_pull: Duration,
    /// Creating and starting the new slot until it answered its readiness path.
    #[serde(rename = "container_start_ms", with = "millis")]
    #[schemars(with = "u64")]
    pub container_start: Duration,
    /// Gate runs (pre-switch, post-switch, canary steps).
    #[serde(rename = "gates_ms", with = "millis")]
    #[schemars(with = "u64")]
    pub gates: Duration,
    /// The switch call(s) to the proxy.
    #[serde(rename = "switch_ms", with = "millis")]
    #[schemars(with = "u64")]
    pub switch: Duration,
    /// From the switch call until requests through the proxy reached the new release.
    #[serde(rename = "switch_visible_ms", with = "millis")]
    #[schemars(with = "u64")]
    pub switch_visible: Duration,
    /// Waiting for the old slot's requests to finish.
    #[serde(rename = "drain_ms", with = "millis")]
    #[schemars(with = "u64")]
    pub drain: Duration,
    /// Waiting out the rollback window.
    #[serde(rename = "window_ms", with = "millis")]
    #[schemars(with = "u64")]
    pub window: Duration,
    /// Everything else: locking, reading Docker and the proxy, the journal, stopping
    /// containers, verification requests, recording: the orchestration's own cost.
    #[serde(rename = "overhead_ms", with = "millis")]
    #[schemars(with = "u64")]
    pub overhead: Duration,
}

/// What a deploy's maintenance window was: while it was open the proxy answered 503
/// and no release served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MaintenanceRecord {
    /// What opened it (`module update of shop, sale`).
    pub reason: String,
    /// How long the proxy answered 503, in all (a failure after the switch opens it
    /// again to put the database back).
    #[serde(rename = "window_ms", with = "millis")]
    #[schemars(with = "u64")]
    pub window: Duration,
    /// How many times it was opened.
    pub opened: u32,
    /// The slot whose container was stopped while it was open (the release that
    /// served).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Slot>,
    /// The database restore done before the release that served ran again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored: Option<String>,
    /// Why it is still open when the deploy ended (the database cannot be served):
    /// `odoo-bluegreen maintenance off` closes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
}

/// An image the deploy pulled from its registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PulledImage {
    /// The image reference.
    pub image: String,
    /// The engine's image id.
    pub id: String,
    /// The repository digest the registry served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OperationReport {
    /// The operation.
    pub operation: Operation,
    /// The stack.
    pub stack: String,
    /// How it ended.
    pub result: OperationResult,
    /// Where it was refused or rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// Why, in a sentence (the failing gates, the start failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The release the operation was about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// The pre-deploy backup recorded with a deploy (see
    /// [`DeployRequest::backup_id`](super::DeployRequest::backup_id)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// The image this deploy pulled (none when the engine had it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled: Option<PulledImage>,
    /// The slot that served before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<SlotRelease>,
    /// The slot the operation moved (or tried to move) traffic to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<SlotRelease>,
    /// The slot serving all traffic at the end.
    pub serving: Option<Slot>,
    /// The slot stopped at the end (after the rollback window, or the idle one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Slot>,
    /// The rollback target this deploy removed to make room for the new release: the
    /// idle slot's container, of a release that had passed its gates here. Said in the
    /// progress before it was removed; until the new release passes its gates there is
    /// no other release to roll back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<SlotRelease>,
    /// States left by interrupted operations that were repaired first.
    pub repairs: Vec<String>,
    /// Things a person should know that did not stop the operation.
    pub warnings: Vec<String>,
    /// The gate runs, in order.
    pub gates: Vec<GateRun>,
    /// The deploy's [stages](deploy_core::DeployStage), in the order they ran, with
    /// what they did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageRecord>,
    /// An excerpt of the failed slot's log: its last lines and the error lines before
    /// them (see [`log_excerpt`](super::log_excerpt)), taken when it did not start or
    /// failed its gates, before the container is stopped or removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_logs: Option<String>,
    /// The maintenance window, when a stage opened one (a module update in
    /// maintenance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<MaintenanceRecord>,
    /// When each step was reached.
    pub steps: Vec<StepTiming>,
    /// Where the time went.
    pub timings: Timings,
}

impl OperationReport {
    pub(crate) fn new(operation: Operation, stack: &str) -> Self {
        Self {
            operation,
            stack: stack.to_owned(),
            result: OperationResult::Succeeded,
            stage: None,
            reason: None,
            release: None,
            backup_id: None,
            pulled: None,
            from: None,
            to: None,
            serving: None,
            stopped: None,
            replaced: None,
            repairs: Vec::new(),
            warnings: Vec::new(),
            gates: Vec::new(),
            stages: Vec::new(),
            slot_logs: None,
            maintenance: None,
            steps: Vec::new(),
            timings: Timings::default(),
        }
    }
}

pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_trip_by_name() {
        for step in Step::ALL {
            assert_eq!(step.as_str().parse::<Step>().unwrap(), step);
            assert_eq!(
                serde_json::to_value(step).unwrap(),
                serde_json::Value::String(step.as_str().to_owned())
            );
        }
        assert!("nope".parse::<Step>().is_err());
    }
}
