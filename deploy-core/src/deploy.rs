//! The traits through which deployment crates work together without depending on each
//! other: [`Deployer`] (implemented by the blue-green orchestrator, used by the
//! previous-release rollback strategy) and [`DeploymentRecorder`] (implemented by the
//! file-backed history in `deploy-rollback`, used by the orchestrator).
//!
//! Neither `deploy-bluegreen` nor `deploy-rollback` depends on the other; the binaries
//! wire an implementation of one into the other.
//!
//! ```
//! use deploy_core::{DeployStatus, DeploymentOutcome, Environment};
//!
//! let outcome = DeploymentOutcome::new("erp", "17.0-2026.11.22", Environment::Production, DeployStatus::Succeeded)
//!     .with_operator("ci")
//!     .with_duration(std::time::Duration::from_secs(42));
//! assert_eq!(outcome.status.as_str(), "succeeded");
//! ```

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::environment::Environment;
use crate::error::Error;
use crate::stage::StageRecord;

/// The error type the traits of this module return: the implementation's own error,
/// boxed, so that callers can report its whole cause chain without knowing its crate.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What happened to a deployment.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DeployStatus {
    /// The deployment began.
    Started,
    /// The release went live and passed its gates.
    Succeeded,
    /// The deployment failed (gates, migration, start-up); the previous release serves.
    Failed,
    /// The release was rolled back.
    RolledBack,
    /// The deployment never finished: its process was killed (or the machine stopped)
    /// after its `started` record. Written by the next operation on the stack, which
    /// finds the `started` record without an outcome while it holds the stack's lock.
    Interrupted,
}

impl DeployStatus {
    /// Every status.
    pub const ALL: [DeployStatus; 5] = [
        DeployStatus::Started,
        DeployStatus::Succeeded,
        DeployStatus::Failed,
        DeployStatus::RolledBack,
        DeployStatus::Interrupted,
    ];

    /// The canonical name: `started`, `succeeded`, `failed`, `rolled_back`,
    /// `interrupted`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            DeployStatus::Started => "started",
            DeployStatus::Succeeded => "succeeded",
            DeployStatus::Failed => "failed",
            DeployStatus::RolledBack => "rolled_back",
            DeployStatus::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for DeployStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DeployStatus {
    type Err = Error;

    /// Parses a status in any letter case. Besides the canonical names it accepts the
    /// spellings found in hand-kept logs: `success`, `ok`, `failure`, `rolled back`,
    /// `rolledback`, `rollback`, `rolled-back`, `start`, `killed`, `aborted`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownStatus`] for anything else.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "started" | "start" => Ok(DeployStatus::Started),
            "succeeded" | "success" | "ok" => Ok(DeployStatus::Succeeded),
            "failed" | "failure" => Ok(DeployStatus::Failed),
            "rolled_back" | "rolled back" | "rolledback" | "rollback" | "rolled-back" => {
                Ok(DeployStatus::RolledBack)
            }
            "interrupted" | "killed" | "aborted" => Ok(DeployStatus::Interrupted),
            _ => Err(Error::UnknownStatus {
                value: s.to_owned(),
            }),
        }
    }
}

/// A release to (re)deploy, as a deployment history knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRef {
    /// The stack (one Odoo installation).
    pub stack: String,
    /// The environment.
    pub environment: Environment,
    /// The release or version label.
    pub release: String,
    /// Its git sha, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_sha: Option<String>,
}

/// How a [`Deployer`] put a release back in service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RedeployMethod {
    /// The release was live already: nothing changed.
    AlreadyLive,
    /// Traffic was switched back to the release's slot, still running (warm).
    WarmSwitch,
    /// The release's stopped slot was started and gated, then traffic switched.
    Started,
}

/// What a [`Deployer`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RedeployReport {
    /// The release now live.
    pub release: String,
    /// How it went live.
    pub method: RedeployMethod,
    /// Whether traffic only had to be switched back to a warm slot (no start needed):
    /// `method == WarmSwitch`, kept for the JSON output's readers.
    pub warm_switch: bool,
    /// Anything else the deployer reports (slots, gate verdicts), for `--json` output
    /// only: callers decide from the typed fields.
    #[serde(default)]
    pub details: serde_json::Value,
}

impl RedeployReport {
    /// A report of `release` going live by `method`, with no details.
    #[must_use]
    pub fn new(release: impl Into<String>, method: RedeployMethod) -> Self {
        Self {
            release: release.into(),
            method,
            warm_switch: method == RedeployMethod::WarmSwitch,
            details: serde_json::Value::Null,
        }
    }

    /// With details for `--json` output.
    #[must_use]
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// Puts a release back in service.
///
/// Implemented by the blue-green orchestrator: when the release's slot is still warm,
/// traffic is switched back to it; when it is stopped, it is started and gated first,
/// then traffic is switched.
///
/// # Contract
///
/// - Called by the previous-release rollback strategy with the last good release from
///   the history, once per rollback; the caller does not retry it.
/// - `Ok` means the release is live and serving traffic. `Err` means it is not: the
///   implementation leaves the currently live release serving if it can.
/// - It must not touch databases or backups (a database restore is another strategy),
///   write to the deployment history (the caller records the rollback), or print:
///   it reports through `tracing`, events and the returned report.
#[async_trait]
pub trait Deployer: Send + Sync {
    /// Makes `release` the live release.
    ///
    /// # Errors
    ///
    /// Whatever prevented the release from going live.
    async fn redeploy(&self, release: &ReleaseRef) -> Result<RedeployReport, BoxError>;
}

/// One step of a deployment's life, as the orchestrator reports it to a
/// [`DeploymentRecorder`]. It carries no timestamp: the recorder stamps it when it
/// records it. No field may hold a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeploymentOutcome {
    /// The stack.
    pub stack: String,
    /// The release or version label.
    pub release: String,
    /// The environment.
    pub environment: Environment,
    /// What happened.
    pub status: DeployStatus,
    /// Who (or which pipeline) did it.
    pub operator: String,
    /// How long the step took, when known (`duration_ms` in JSON).
    #[serde(
        rename = "duration_ms",
        default,
        skip_serializing_if = "Option::is_none",
        with = "duration_ms"
    )]
    #[schemars(with = "Option<u64>")]
    pub duration: Option<Duration>,
    /// The gates' verdicts, e.g. a gate runner's JSON report or a short text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_summary: Option<serde_json::Value>,
    /// The backup taken before this deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// The git commit deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_sha: Option<String>,
    /// Why a deploy was refused, failed or rolled back, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The [stages](crate::DeployStage) the deploy ran, in order, with what they did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageRecord>,
}

impl DeploymentOutcome {
    /// An outcome with an empty operator and no duration, gate summary, backup or sha.
    #[must_use]
    pub fn new(
        stack: impl Into<String>,
        release: impl Into<String>,
        environment: Environment,
        status: DeployStatus,
    ) -> Self {
        DeploymentOutcome {
            stack: stack.into(),
            release: release.into(),
            environment,
            status,
            operator: String::new(),
            duration: None,
            gate_summary: None,
            backup_id: None,
            git_sha: None,
            reason: None,
            stages: Vec::new(),
        }
    }

    /// Sets who did it.
    #[must_use]
    pub fn with_operator(mut self, operator: impl Into<String>) -> Self {
        self.operator = operator.into();
        self
    }

    /// Sets how long it took.
    #[must_use]
    pub fn with_duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// Sets the gates' verdicts.
    #[must_use]
    pub fn with_gate_summary(mut self, summary: serde_json::Value) -> Self {
        self.gate_summary = Some(summary);
        self
    }

    /// Sets the pre-deploy backup's id.
    #[must_use]
    pub fn with_backup(mut self, backup_id: impl Into<String>) -> Self {
        self.backup_id = Some(backup_id.into());
        self
    }

    /// Sets the git commit deployed.
    #[must_use]
    pub fn with_git_sha(mut self, sha: impl Into<String>) -> Self {
        self.git_sha = Some(sha.into());
        self
    }

    /// Sets why it was refused, failed or rolled back.
    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the stages it ran.
    #[must_use]
    pub fn with_stages(mut self, stages: Vec<StageRecord>) -> Self {
        self.stages = stages;
        self
    }
}

/// `Option<Duration>` as whole milliseconds.
mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option)]
    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

/// Where deployment outcomes go: a history that `last_good` and the figures read later.
///
/// # Contract
///
/// - Called by the orchestrator at each step of a deployment (started, then succeeded,
///   failed or rolled back), in order, from one task at a time per deployment; other
///   processes may record other deployments concurrently, and the implementation must
///   keep every record whole.
/// - `Ok` means the outcome is durably recorded. An `Err` does not undo the deployment:
///   the orchestrator reports it and goes on.
/// - It must not print and must not store secrets.
#[async_trait]
pub trait DeploymentRecorder: Send + Sync {
    /// Records one outcome, stamped with the current time.
    ///
    /// # Errors
    ///
    /// Whatever prevented the record from being stored (I/O, a full disk, a lock).
    async fn record(&self, outcome: &DeploymentOutcome) -> Result<(), BoxError>;

    /// The deployments of `stack` in `environment` whose `started` record has no outcome
    /// yet, oldest first, as that `started` outcome. The orchestrator asks while it holds
    /// the stack's lock, so none of them can still be running: it records each one as
    /// [`DeployStatus::Interrupted`].
    ///
    /// The default knows of none (a recorder that keeps no history).
    ///
    /// # Errors
    ///
    /// Whatever prevented the history from being read.
    async fn unfinished(
        &self,
        _stack: &str,
        _environment: Environment,
    ) -> Result<Vec<DeploymentOutcome>, BoxError> {
        Ok(Vec::new())
    }

    /// Whether `release` ever went live in `stack` and `environment` and passed its
    /// gates there (a `succeeded` record): `Some(false)` when the history has none,
    /// `None` when this recorder cannot tell (it keeps no history). A rollback never
    /// switches to a release the history says never passed.
    ///
    /// The default cannot tell.
    ///
    /// # Errors
    ///
    /// Whatever prevented the history from being read.
    async fn has_passed(
        &self,
        _stack: &str,
        _environment: Environment,
        _release: &str,
    ) -> Result<Option<bool>, BoxError> {
        Ok(None)
    }

    /// What the deploy that made `release` live in `stack` and `environment` changed in
    /// the database (its `update` stage passed and updated or installed modules), from
    /// its latest `succeeded` record: a rollback from that release switches code back
    /// onto a schema the older code may not know. `None`: nothing changed, or this
    /// recorder cannot tell (the default).
    ///
    /// # Errors
    ///
    /// Whatever prevented the history from being read.
    async fn database_change(
        &self,
        _stack: &str,
        _environment: Environment,
        _release: &str,
    ) -> Result<Option<DatabaseChange>, BoxError> {
        Ok(None)
    }
}

/// What a deploy changed in the database ([`DeploymentRecorder::database_change`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseChange {
    /// The modules updated or installed.
    pub modules: Vec<String>,
    /// The pre-deploy backup taken before the change: the database as the older release
    /// knew it.
    pub backup_id: Option<String>,
}

impl DatabaseChange {
    /// Reads it from a deploy's stages: an `update` stage that passed with modules in its
    /// plan (`details.plan.update` and `details.plan.install`).
    #[must_use]
    pub fn from_stages(stages: &[crate::StageRecord], backup_id: Option<&str>) -> Option<Self> {
        let update = stages
            .iter()
            .find(|s| s.name == "update" && s.result == crate::StageResult::Passed)?;
        let plan = &update.details["plan"];
        let modules: Vec<String> = ["update", "install"]
            .iter()
            .filter_map(|k| plan[k].as_array())
            .flatten()
            .filter_map(|m| m.as_str().map(str::to_owned))
            .collect();
        (!modules.is_empty()).then(|| Self {
            modules,
            backup_id: backup_id.map(str::to_owned),
        })
    }
}

/// A recorder that drops every outcome, for callers that keep no history.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHistory;

#[async_trait]
impl DeploymentRecorder for NoHistory {
    async fn record(&self, _outcome: &DeploymentOutcome) -> Result<(), BoxError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_parses_hand_kept_spellings() {
        for (text, want) in [
            ("SUCCESS", DeployStatus::Succeeded),
            ("rolled back", DeployStatus::RolledBack),
            ("failure", DeployStatus::Failed),
            ("started", DeployStatus::Started),
            ("killed", DeployStatus::Interrupted),
        ] {
            assert_eq!(text.parse::<DeployStatus>().unwrap(), want);
        }
        assert!(matches!(
            "maybe".parse::<DeployStatus>(),
            Err(Error::UnknownStatus { value }) if value == "maybe"
        ));
        for status in DeployStatus::ALL {
            assert_eq!(status.as_str().parse::<DeployStatus>().unwrap(), status);
        }
    }

    #[test]
    fn outcome_serializes_with_snake_case_status() {
        let outcome =
            DeploymentOutcome::new("erp", "r1", Environment::Staging, DeployStatus::RolledBack);
        let json = serde_json::to_value(&outcome).unwrap();
        assert_eq!(json["status"], "rolled_back");
        assert_eq!(json["environment"], "staging");
    }

    #[test]
    fn a_database_change_is_an_update_stage_that_passed_with_modules() {
        let stage = |name: &str, result: crate::StageResult, details: serde_json::Value| {
            crate::StageRecord {
                name: name.to_owned(),
                point: crate::StagePoint::BeforeStart,
                result,
                summary: None,
                backup_id: None,
                duration_ms: 1,
                details,
            }
        };
        let plan = serde_json::json!({"plan": {"update": ["shop"], "install": ["shop_loyalty"]}});
        let passed = [
            stage(
                "backup",
                crate::StageResult::Passed,
                serde_json::Value::Null,
            ),
            stage("update", crate::StageResult::Passed, plan.clone()),
        ];
        let change = DatabaseChange::from_stages(&passed, Some("b1")).unwrap();
        assert_eq!(change.modules, ["shop", "shop_loyalty"]);
        assert_eq!(change.backup_id.as_deref(), Some("b1"));
        let refused = [stage("update", crate::StageResult::Refused, plan)];
        assert!(DatabaseChange::from_stages(&refused, None).is_none());
        let nothing = [stage(
            "update",
            crate::StageResult::Passed,
            serde_json::json!({"plan": {"update": [], "install": []}}),
        )];
        assert!(DatabaseChange::from_stages(&nothing, None).is_none());
    }
}
