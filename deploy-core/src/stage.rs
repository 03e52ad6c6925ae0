//! The stage seam: what a deploy runs besides starting a slot and switching traffic.
//!
//! A deploy is an ordered pipeline run by the orchestrator while it holds the stack's
//! lock. Its own steps (start the new slot, the pre-switch gates, the switch, the
//! post-switch gates, record the outcome) are fixed; [`DeployStage`]s plug in at four
//! [`StagePoint`]s between them: a pre-deploy backup before the new slot starts, a
//! database update there too, a watch window after the switch, a notification at the
//! end. A stage reports progress through the [`EventSink`] it is given, can refuse the
//! deploy (a [`StageVerdict::Refuse`]) or fail it (a [`ClassifiedError`]), and what it
//! produced (a backup id, a summary, details) reaches the history record and the
//! operation report through its [`StageOutcome`].
//!
//! ```
//! use deploy_core::{
//!     async_trait, DeployStage, Environment, NullSink, Release, StageContext, ClassifiedError,
//!     StageOutcome, StagePoint, StageVerdict,
//! };
//!
//! /// Refuses deploys on Fridays (here: always, for the example).
//! struct FreezeWindow;
//!
//! #[async_trait]
//! impl DeployStage for FreezeWindow {
//!     fn name(&self) -> &str {
//!         "freeze-window"
//!     }
//!     fn point(&self) -> StagePoint {
//!         StagePoint::BeforeStart
//!     }
//!     async fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, ClassifiedError> {
//!         Ok(StageOutcome::refuse(format!("{} is frozen", ctx.stack)))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), ClassifiedError> {
//! let release = Release::new("odoo:17.0-r2").with_version("r2");
//! let ctx = StageContext::new("shop", Environment::Production, &release, &NullSink);
//! let outcome = FreezeWindow.run(&ctx).await?;
//! assert_eq!(outcome.verdict, StageVerdict::Refuse("shop is frozen".to_owned()));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::deploy::DeployStatus;
use crate::environment::Environment;
use crate::error::{ClassifiedError, Error};
use crate::event::EventSink;
use crate::release::Release;

/// Where in a deploy a [`DeployStage`] runs.
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
pub enum StagePoint {
    /// After the stack is locked and its state read, before the idle slot's old
    /// container is removed and the new release starts: the pre-deploy backup, the
    /// database update. A refusal here leaves everything as it was.
    BeforeStart,
    /// After the new slot passed its pre-switch gates, before traffic moves. A refusal
    /// stops the new slot; nothing was switched.
    BeforeSwitch,
    /// After traffic moved and the post-switch gates passed, before the old slot
    /// drains: a watch window. A refusal switches traffic back (rolled back).
    AfterSwitch,
    /// After the outcome is recorded: a notification. It cannot change the outcome: a
    /// refusal or an error here is reported as a warning.
    Finish,
}

impl StagePoint {
    /// Every point, in the order a deploy reaches them.
    pub const ALL: [StagePoint; 4] = [
        StagePoint::BeforeStart,
        StagePoint::BeforeSwitch,
        StagePoint::AfterSwitch,
        StagePoint::Finish,
    ];

    /// `before_start`, `before_switch`, `after_switch` or `finish`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            StagePoint::BeforeStart => "before_start",
            StagePoint::BeforeSwitch => "before_switch",
            StagePoint::AfterSwitch => "after_switch",
            StagePoint::Finish => "finish",
        }
    }
}

impl fmt::Display for StagePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StagePoint {
    type Err = Error;

    /// Parses a point's name; `-` may stand for `_`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownStagePoint`] for anything else.
    fn from_str(s: &str) -> Result<Self, Error> {
        let wanted = s.trim().replace('-', "_");
        StagePoint::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(&wanted))
            .ok_or_else(|| Error::UnknownStagePoint {
                value: s.to_owned(),
            })
    }
}

/// What a stage is told about the deploy it is part of.
#[derive(Clone, Copy)]
pub struct StageContext<'a> {
    /// The stack.
    pub stack: &'a str,
    /// The stack's environment.
    pub environment: Environment,
    /// The release being deployed.
    pub release: &'a Release,
    /// The release serving when the deploy began, if any.
    pub live: Option<&'a Release>,
    /// Who runs the deploy.
    pub operator: &'a str,
    /// For [`StagePoint::Finish`]: the outcome recorded.
    pub status: Option<DeployStatus>,
    /// The pre-deploy backup an earlier stage of this deploy took, if any: what a
    /// stage that changes the database restores when it fails.
    pub backup_id: Option<&'a str>,
    /// The pre-deploy backup of an earlier deploy whose process died while a stage
    /// changed the database (its module update): what repairs a database it left half
    /// done. `None` when there was no such deploy, or it had no backup.
    pub repair_backup_id: Option<&'a str>,
    /// Where the stage reports progress (the deploy's own event sink).
    pub events: &'a dyn EventSink,
    /// The deploy's maintenance window, for a stage that must keep the database still
    /// (a module update in maintenance): `None` outside a deploy (a preview) or when
    /// the orchestrator offers none.
    pub maintenance: Option<&'a dyn Maintenance>,
}

impl fmt::Debug for StageContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StageContext")
            .field("stack", &self.stack)
            .field("environment", &self.environment)
            .field("release", &self.release)
            .field("live", &self.live)
            .field("operator", &self.operator)
            .field("status", &self.status)
            .field("backup_id", &self.backup_id)
            .field("repair_backup_id", &self.repair_backup_id)
            .field("maintenance", &self.maintenance.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a> StageContext<'a> {
    /// A context with no live release, an empty operator and no status.
    #[must_use]
    pub fn new(
        stack: &'a str,
        environment: Environment,
        release: &'a Release,
        events: &'a dyn EventSink,
    ) -> Self {
        Self {
            stack,
            environment,
            release,
            live: None,
            operator: "",
            status: None,
            backup_id: None,
            repair_backup_id: None,
            events,
            maintenance: None,
        }
    }
}

/// Whether the deploy goes on after a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageVerdict {
    /// Go on.
    Proceed,
    /// Stop the deploy: the reason, in a sentence, for the report and the history.
    Refuse(String),
}

/// What a stage did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageOutcome {
    /// Go on, or refuse.
    pub verdict: StageVerdict,
    /// One line for the report and the history, e.g. `backup 20250301T101500Z-shop-00ff
    /// (412 MiB)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The backup this stage took, which the history records with the deploy (so that
    /// retention keeps it while the release is current).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// Anything else, for `--json` output (no secrets).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
    /// Things a person should know that did not stop the deploy (the report's
    /// warnings), e.g. an optional backup that failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl StageOutcome {
    /// Go on, with nothing to report.
    #[must_use]
    pub fn proceed() -> Self {
        Self {
            verdict: StageVerdict::Proceed,
            summary: None,
            backup_id: None,
            details: serde_json::Value::Null,
            warnings: Vec::new(),
        }
    }

    /// Refuse the deploy for `reason`.
    #[must_use]
    pub fn refuse(reason: impl Into<String>) -> Self {
        Self {
            verdict: StageVerdict::Refuse(reason.into()),
            ..Self::proceed()
        }
    }

    /// With a one-line summary.
    #[must_use]
    pub fn with_summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = Some(summary.into());
        self
    }

    /// With the id of the backup the stage took.
    #[must_use]
    pub fn with_backup(mut self, backup_id: impl Into<String>) -> Self {
        self.backup_id = Some(backup_id.into());
        self
    }

    /// With a warning for the report.
    #[must_use]
    pub fn with_warning(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    /// With details for `--json` output.
    #[must_use]
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// How a stage ended, as the report and the history keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StageResult {
    /// It let the deploy go on.
    Passed,
    /// It refused the deploy.
    Refused,
    /// It failed (an error).
    Failed,
}

impl StageResult {
    /// `passed`, `refused` or `failed`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            StageResult::Passed => "passed",
            StageResult::Refused => "refused",
            StageResult::Failed => "failed",
        }
    }
}

impl fmt::Display for StageResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stage a deploy ran, as its report and its history record keep it. No field
/// holds a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StageRecord {
    /// The stage's name.
    pub name: String,
    /// Where it ran.
    pub point: StagePoint,
    /// How it ended.
    pub result: StageResult,
    /// Its summary line, its refusal's reason or its error's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The backup it took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
    /// Its details, for `--json` output.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

/// One thing a deploy runs at a [`StagePoint`], while it holds the stack's lock.
///
/// # Contract
///
/// - Called by the orchestrator once per deploy that reaches its point, from one task,
///   in the order the stages were added; never for an operation that is not a deploy.
/// - `Ok` with [`StageVerdict::Proceed`] lets the deploy go on; with
///   [`StageVerdict::Refuse`] the deploy is refused (exit 1) and what the point's
///   documentation says is undone; `Err` fails it (exit 2 or 3 by the error's class).
///   At [`StagePoint::Finish`] neither can change the recorded outcome: both are
///   reported as warnings.
/// - It must not print and must not write to the deployment history (the orchestrator
///   records what it returns); it reports progress through `ctx.events`. It must not
///   take the stack's lock (it already runs under it).
#[async_trait]
pub trait DeployStage: Send + Sync {
    /// A short name, unique in a deploy: `backup`, `hook announce`.
    fn name(&self) -> &str;

    /// Where it runs.
    fn point(&self) -> StagePoint;

    /// Its settings, as `--dry-run` prints them: name and value pairs, never a secret
    /// (a secret is shown as where it comes from).
    fn settings(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Does the stage's work.
    ///
    /// # Errors
    ///
    /// A [`ClassifiedError`] whose class says who must act.
    async fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, ClassifiedError>;

    /// What it would do for this deploy, for `--dry-run`, found by reading only (the
    /// modules an update would run, and why): more name and value pairs after its
    /// settings. The default has nothing to add. It must change nothing; a failure to
    /// read is given as a pair, not an error.
    async fn preview(&self, _ctx: &StageContext<'_>) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// Puts a backup back over the stack's live database: what a stage that changed the
/// database (a module update) calls when it fails, so that no release serves a database
/// left half updated. Implemented by `deploy-rollback` (its restore with the rename
/// swap), wired by the binaries.
#[async_trait::async_trait]
pub trait DatabaseRestorer: Send + Sync + fmt::Debug {
    /// Restores `backup_id` over the live database; a one-line summary of what it did
    /// (the database and filestore replaced, where the former ones are kept).
    ///
    /// # Errors
    /// The restore failed: the live database is as the failed stage left it.
    async fn restore(&self, backup_id: &str) -> Result<String, crate::ClassifiedError>;
}

/// The maintenance window a deploy offers its stages, for changes that must not run
/// while a release serves: the proxy answers every request with HTTP 503 and a
/// `Retry-After` (its health path still answers), and the release that served is
/// stopped, so none of its workers or crons touches the database.
///
/// The deploy that offers it closes it: right after its switch to the new release, or,
/// when the deploy does not get that far, after putting back the database (see
/// [`Maintenance::restore_with`]) and starting the release that served again. A stage
/// only opens it, and says when it must stay open ([`Maintenance::hold`]).
#[async_trait::async_trait]
pub trait Maintenance: Send + Sync {
    /// Opens the window (once; later calls return at once): the proxy into
    /// maintenance, checked through the proxy, then the serving release stopped.
    /// `reason` is what the report and the events say it is for.
    ///
    /// # Errors
    /// The proxy cannot do maintenance or refused it, or the serving release cannot be
    /// stopped: the window is closed again before the error returns.
    async fn enter(&self, reason: &str) -> Result<(), crate::ClassifiedError>;

    /// What puts the database back if the new release does not end up serving (its
    /// start, its gates or the checks after the switch fail): the deploy restores
    /// `backup_id` with `restorer` before the release that served runs again.
    fn restore_with(&self, restorer: std::sync::Arc<dyn DatabaseRestorer>, backup_id: &str);

    /// Keeps the window open when the deploy ends, for the reason given: the database
    /// is not fit to be served by either release (an update that failed and could not
    /// be undone). A person closes it (`odoo-bluegreen maintenance off`).
    fn hold(&self, reason: &str);

    /// Whether the window is open.
    fn is_open(&self) -> bool;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_parse_and_order() {
        for point in StagePoint::ALL {
            assert_eq!(point.as_str().parse::<StagePoint>().unwrap(), point);
        }
        assert_eq!(
            "before-switch".parse::<StagePoint>().unwrap(),
            StagePoint::BeforeSwitch
        );
        assert!(matches!(
            "later".parse::<StagePoint>(),
            Err(Error::UnknownStagePoint { .. })
        ));
        assert!(StagePoint::BeforeStart < StagePoint::Finish);
    }

    #[test]
    fn outcomes_serialize_without_empty_parts() {
        let json = serde_json::to_value(StageOutcome::proceed().with_backup("b1")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"verdict": "proceed", "backup_id": "b1"})
        );
        let json = serde_json::to_value(StageOutcome::refuse("frozen")).unwrap();
        assert_eq!(json["verdict"], serde_json::json!({"refuse": "frozen"}));
    }
}
