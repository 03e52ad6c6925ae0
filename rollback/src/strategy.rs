//! Rollback strategies behind one trait, and the rollback policy that picks one.
//!
//! | strategy | when | what it does |
//! |---|---|---|
//! | [`PreviousRelease`] | the new release is unhealthy (health, error rate) | redeploys the last good release from the history through a [`Deployer`] |
//! | [`DatabaseRestore`] | a migration failed or damaged data | restores the pre-deploy backup and swaps it in by renaming ([`crate::restore()`]) |
//! | [`GitRevert`] | the host builds from a branch (Odoo.sh) | reverts the merge on the deploy branch and pushes ([`crate::git`]) |
//!
//! A [`RollbackPolicy`] (TOML) maps what went wrong ([`Incident`]) to a
//! [`StrategyKind`]: the first matching rule wins.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::backup::{BackupStore, Progress};
use crate::deployer::{Deployer, RedeployReport};
use crate::environment::Environment;
use crate::error::{Error, Result};
use crate::git::{GitRevertRequest, RevertOutcome};
use crate::history::{DeployStatus, DeploymentRecord, History};
use crate::restore::{RestoreOutcome, RestoreRequest};

/// What a rollback is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackContext {
    /// The stack.
    pub stack: String,
    /// The environment.
    pub environment: Environment,
    /// Who runs the rollback (recorded in the history).
    pub operator: String,
    /// The release being rolled back; `None`: the latest release in the history.
    pub bad_release: Option<String>,
}

impl RollbackContext {
    /// A rollback of the latest release of `stack` in `environment`.
    #[must_use]
    pub fn new(
        stack: impl Into<String>,
        environment: Environment,
        operator: impl Into<String>,
    ) -> Self {
        RollbackContext {
            stack: stack.into(),
            environment,
            operator: operator.into(),
            bad_release: None,
        }
    }

    /// Names the release being rolled back.
    #[must_use]
    pub fn with_bad_release(mut self, release: impl Into<String>) -> Self {
        self.bad_release = Some(release.into());
        self
    }
}

/// What a strategy would do, for a person to read (or `--json`) before executing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RollbackPlan {
    /// The strategy's name.
    pub strategy: String,
    /// One line.
    pub summary: String,
    /// The steps, in order.
    pub steps: Vec<String>,
    /// The release that will be live afterwards, when known.
    pub target_release: Option<String>,
    /// Whether executing it replaces data (a database restore) and so needs a
    /// confirmation.
    pub destructive: bool,
}

/// What a strategy did, per kind.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutcomeDetail {
    /// [`PreviousRelease`]: the deployer's report.
    Redeployed(RedeployReport),
    /// [`DatabaseRestore`]: the restore's outcome.
    DatabaseRestored(RestoreOutcome),
    /// [`GitRevert`]: the revert's outcome.
    GitReverted(RevertOutcome),
}

/// The result of executing a strategy.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RollbackOutcome {
    /// The strategy's name.
    pub strategy: String,
    /// One line.
    pub summary: String,
    /// The release live afterwards, when known.
    pub live_release: Option<String>,
    /// How long it took.
    #[serde(rename = "duration_ms", with = "crate::serde_util::duration_ms_req")]
    #[schemars(with = "u64")]
    pub duration: Duration,
    /// The strategy's own report.
    pub detail: OutcomeDetail,
}

/// A way back from a bad release.
///
/// # Contract
///
/// - [`plan`](RollbackStrategy::plan) changes nothing anywhere: it reads the history,
///   the backup store or the repository (a git dry run) and says what `execute` would
///   do, or why it cannot (`Err`).
/// - [`execute`](RollbackStrategy::execute) does it. `Ok` means the rollback is done;
///   `Err` means it is not, with the system left as the error variant describes
///   (every strategy leaves the live system untouched when it fails before its final
///   step, and says so in its docs when it cannot).
/// - Neither writes the deployment history: [`execute_recorded`] does that around
///   `execute`. Neither prints; progress goes through `tracing` (and the
///   [`Progress`] of the strategies that take one).
#[async_trait]
pub trait RollbackStrategy: Send + Sync {
    /// A short stable name (`previous_release`, `database_restore`, `git_revert`).
    fn name(&self) -> &str;

    /// Says what [`execute`](RollbackStrategy::execute) would do, changing nothing.
    ///
    /// # Errors
    ///
    /// Why the strategy cannot run (no good release, backup missing, dirty tree, ...).
    async fn plan(&self, ctx: &RollbackContext) -> Result<RollbackPlan>;

    /// Rolls back.
    ///
    /// # Errors
    ///
    /// The strategy's errors; see each implementation.
    async fn execute(&self, ctx: &RollbackContext) -> Result<RollbackOutcome>;
}

/// Which strategy a policy rule picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StrategyKind {
    /// [`PreviousRelease`].
    PreviousRelease,
    /// [`DatabaseRestore`].
    DatabaseRestore,
    /// [`GitRevert`].
    GitRevert,
}

impl StrategyKind {
    /// The strategy's name, as [`RollbackStrategy::name`] returns it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            StrategyKind::PreviousRelease => "previous_release",
            StrategyKind::DatabaseRestore => "database_restore",
            StrategyKind::GitRevert => "git_revert",
        }
    }
}

// ---------------------------------------------------------------------------------
// Previous release

/// Redeploys the last good release (from the history) through a [`Deployer`].
///
/// The target is the latest deployment of the stack and environment that went live
/// and was not rolled back, skipping the bad release
/// ([`History::previous_good`]). Fails with [`Error::NoGoodRelease`] when there is
/// none, and with [`Error::Deployer`] when the deployer fails (the deployer's contract
/// keeps the current release serving then).
#[derive(Debug, Clone)]
pub struct PreviousRelease<D> {
    history: History,
    deployer: D,
}

impl<D: Deployer> PreviousRelease<D> {
    /// A strategy reading `history` and redeploying through `deployer`.
    #[must_use]
    pub fn new(history: History, deployer: D) -> Self {
        PreviousRelease { history, deployer }
    }

    async fn target(&self, ctx: &RollbackContext) -> Result<(String, DeploymentRecord)> {
        let history = self.history.clone();
        let c = ctx.clone();
        tokio::task::spawn_blocking(move || {
            let bad = match &c.bad_release {
                Some(b) => b.clone(),
                None => {
                    let latest = history.latest(&c.stack, c.environment)?.ok_or_else(|| {
                        Error::NoGoodRelease {
                            stack: c.stack.clone(),
                            environment: c.environment.to_string(),
                        }
                    })?;
                    // A second rollback in a row must not silently "redo" the first one
                    // (or walk further back): the good release is live already.
                    if latest.status == DeployStatus::RolledBack {
                        return Err(Error::AlreadyRolledBack {
                            stack: c.stack.clone(),
                            environment: c.environment.to_string(),
                            release: latest.outcome.release,
                        });
                    }
                    latest.outcome.release
                }
            };
            let good = history
                .previous_good(&c.stack, c.environment, &bad)?
                .ok_or_else(|| Error::NoGoodRelease {
                    stack: c.stack.clone(),
                    environment: c.environment.to_string(),
                })?;
            Ok((bad, good))
        })
        .await
        .map_err(Error::task)?
    }
}

#[async_trait]
impl<D: Deployer> RollbackStrategy for PreviousRelease<D> {
    fn name(&self) -> &str {
        StrategyKind::PreviousRelease.as_str()
    }

    async fn plan(&self, ctx: &RollbackContext) -> Result<RollbackPlan> {
        let (bad, good) = self.target(ctx).await?;
        Ok(RollbackPlan {
            strategy: self.name().to_owned(),
            summary: format!("redeploy {} (last good) in place of {bad}", good.release),
            steps: vec![
                format!(
                    "redeploy release {} of {} in {} (live since {})",
                    good.release,
                    ctx.stack,
                    ctx.environment,
                    good.timestamp
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
                "a warm slot is switched back; a stopped one is started and gated first".to_owned(),
            ],
            target_release: Some(good.outcome.release),
            destructive: false,
        })
    }

    async fn execute(&self, ctx: &RollbackContext) -> Result<RollbackOutcome> {
        let started = Instant::now();
        let (bad, good) = self.target(ctx).await?;
        let release = crate::deployer::release_ref(&good);
        tracing::info!(stack = %ctx.stack, environment = %ctx.environment, release = %release.release, bad = %bad, "redeploying the previous release");
        let report = self
            .deployer
            .redeploy(&release)
            .await
            .map_err(|source| Error::Deployer {
                release: release.release.clone(),
                source,
            })?;
        Ok(RollbackOutcome {
            strategy: self.name().to_owned(),
            summary: format!("{} is live again in place of {bad}", report.release),
            live_release: Some(report.release.clone()),
            duration: started.elapsed(),
            detail: OutcomeDetail::Redeployed(report),
        })
    }
}

// ---------------------------------------------------------------------------------
// Database restore

/// Restores a backup over the live database and filestore ([`crate::restore()`]):
/// destructive, so the request carries the [`Confirmation`](crate::Confirmation).
#[derive(Debug, Clone)]
pub struct DatabaseRestore {
    store: BackupStore,
    request: RestoreRequest,
    progress: Arc<dyn Progress>,
}

impl DatabaseRestore {
    /// A strategy restoring `request.backup_id` from `store`.
    #[must_use]
    pub fn new(store: BackupStore, request: RestoreRequest, progress: Arc<dyn Progress>) -> Self {
        DatabaseRestore {
            store,
            request,
            progress,
        }
    }
}

#[async_trait]
impl RollbackStrategy for DatabaseRestore {
    fn name(&self) -> &str {
        StrategyKind::DatabaseRestore.as_str()
    }

    async fn plan(&self, _ctx: &RollbackContext) -> Result<RollbackPlan> {
        let m = self.store.get(&self.request.backup_id)?;
        let live = &self.request.live_database;
        let mut steps = vec![
            format!(
                "verify the SHA-256 of backup {} ({} bytes, taken {})",
                m.id,
                m.size(),
                m.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            format!(
                "restore database {} into {live}_restore_<timestamp>",
                m.database
            ),
        ];
        if self.request.data_dir.is_some() && m.filestore.is_some() {
            steps.push("extract the filestore beside the live one".to_owned());
        }
        steps.push(match &self.request.probe {
            Some(p) => format!("verify the restored tables and run the probe {p:?}"),
            None => "verify the restored tables".to_owned(),
        });
        steps.push(format!(
            "close connections to {live}, rename it to {live}_replaced_<timestamp> and the restored one to {live} (nothing is deleted)"
        ));
        Ok(RollbackPlan {
            strategy: self.name().to_owned(),
            summary: format!(
                "restore backup {} (release {}) over {live}",
                m.id, m.release
            ),
            steps,
            target_release: Some(m.release),
            destructive: true,
        })
    }

    async fn execute(&self, _ctx: &RollbackContext) -> Result<RollbackOutcome> {
        let started = Instant::now();
        let outcome =
            crate::restore::restore(&self.store, &self.request, self.progress.clone()).await?;
        let release = self.store.get(&outcome.backup_id).ok().map(|m| m.release);
        Ok(RollbackOutcome {
            strategy: self.name().to_owned(),
            summary: format!(
                "{} restored from backup {} (unavailable {} ms)",
                outcome.live_database,
                outcome.backup_id,
                outcome.unavailable.as_millis()
            ),
            live_release: release,
            duration: started.elapsed(),
            detail: OutcomeDetail::DatabaseRestored(outcome),
        })
    }
}

// ---------------------------------------------------------------------------------
// Git revert

/// Reverts the merge on the deploy branch and pushes ([`crate::git::revert`]); `plan`
/// is its dry run.
#[derive(Debug, Clone)]
pub struct GitRevert {
    request: GitRevertRequest,
}

impl GitRevert {
    /// A strategy running `request` (its `dry_run` flag is ignored: `plan` is the dry
    /// run, `execute` the real one).
    #[must_use]
    pub fn new(request: GitRevertRequest) -> Self {
        GitRevert { request }
    }
}

#[async_trait]
impl RollbackStrategy for GitRevert {
    fn name(&self) -> &str {
        StrategyKind::GitRevert.as_str()
    }

    async fn plan(&self, _ctx: &RollbackContext) -> Result<RollbackPlan> {
        let dry = crate::git::revert_blocking(self.request.clone().dry_run(true)).await?;
        let mut steps = vec![format!(
            "revert {} \"{}\" on {} (mainline {})",
            dry.reverted,
            dry.reverted_summary,
            dry.branch,
            dry.mainline
                .map_or_else(|| "-".to_owned(), |m| m.to_string())
        )];
        steps.extend(dry.files.iter().map(|f| {
            format!(
                "{:?} {} (+{} -{})",
                f.kind, f.path, f.insertions, f.deletions
            )
            .to_lowercase()
        }));
        steps.push(format!(
            "commit and push to {}/{} ({} files, +{} -{})",
            dry.remote,
            dry.branch,
            dry.diffstat.files_changed,
            dry.diffstat.insertions,
            dry.diffstat.deletions
        ));
        Ok(RollbackPlan {
            strategy: self.name().to_owned(),
            summary: format!("revert \"{}\" on {}", dry.reverted_summary, dry.branch),
            steps,
            target_release: None,
            destructive: false,
        })
    }

    async fn execute(&self, _ctx: &RollbackContext) -> Result<RollbackOutcome> {
        let started = Instant::now();
        let outcome = crate::git::revert_blocking(self.request.clone().dry_run(false)).await?;
        Ok(RollbackOutcome {
            strategy: self.name().to_owned(),
            summary: format!(
                "reverted \"{}\" on {} and pushed",
                outcome.reverted_summary, outcome.branch
            ),
            live_release: None,
            duration: started.elapsed(),
            detail: OutcomeDetail::GitReverted(outcome),
        })
    }
}

/// Executes a strategy and, when it succeeds, appends a `rolled_back` record for the
/// bad release (the context's, or the latest in the history) with the rollback's
/// duration and a gate summary naming the strategy.
///
/// # Errors
///
/// The strategy's errors (nothing is recorded then); the history's errors when the
/// record cannot be appended (the rollback itself has happened).
pub async fn execute_recorded(
    strategy: &dyn RollbackStrategy,
    ctx: &RollbackContext,
    history: &History,
) -> Result<RollbackOutcome> {
    let outcome = strategy.execute(ctx).await?;
    let history = history.clone();
    let c = ctx.clone();
    let summary = serde_json::json!({
        "strategy": outcome.strategy,
        "summary": outcome.summary,
        "live_release": outcome.live_release,
    });
    let duration = outcome.duration;
    tokio::task::spawn_blocking(move || -> Result<()> {
        let latest = history.latest(&c.stack, c.environment)?;
        let bad = c
            .bad_release
            .clone()
            .or_else(|| latest.as_ref().map(|r| r.release.clone()));
        let Some(bad) = bad else {
            return Ok(());
        };
        let git_sha = latest
            .filter(|r| r.release == bad)
            .and_then(|r| r.outcome.git_sha);
        let mut record = DeploymentRecord::new(
            &c.stack,
            bad,
            c.environment,
            DeployStatus::RolledBack,
            &c.operator,
        )
        .with_duration(duration)
        .with_gate_summary(summary);
        record.git_sha = git_sha;
        history.append(&record)
    })
    .await
    .map_err(Error::task)??;
    Ok(outcome)
}

// ---------------------------------------------------------------------------------
// Policy

/// A trigger condition of a policy rule (TOML key `when`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "when", rename_all = "snake_case")]
pub enum Condition {
    /// The health check fails.
    HealthFailing,
    /// The share of failed requests is above `above` (0.0 to 1.0).
    ErrorRate {
        /// The threshold.
        above: f64,
    },
    /// A database migration (module update) failed.
    MigrationFailed,
    /// The stack is deployed by pushing an Odoo.sh branch (optionally: this branch).
    OdooShBranch {
        /// Only this branch; `None`: any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        branch: Option<String>,
    },
    /// Always matches (a catch-all last rule).
    Always,
}

/// One rule: when `condition` holds, use `strategy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PolicyRule {
    /// The condition (flattened: `when = "..."` plus its fields).
    #[serde(flatten)]
    pub condition: Condition,
    /// The strategy.
    pub strategy: StrategyKind,
}

/// What went wrong, as the gates and the deployment saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Incident {
    /// The health check fails.
    pub health_failing: bool,
    /// The observed share of failed requests.
    pub error_rate: Option<f64>,
    /// A migration failed.
    pub migration_failed: bool,
    /// The Odoo.sh branch the stack deploys from, when it is an Odoo.sh stack.
    pub odoo_sh_branch: Option<String>,
}

impl Condition {
    /// Whether the incident meets this condition.
    #[must_use]
    pub fn matches(&self, incident: &Incident) -> bool {
        match self {
            Condition::HealthFailing => incident.health_failing,
            Condition::ErrorRate { above } => incident.error_rate.is_some_and(|r| r > *above),
            Condition::MigrationFailed => incident.migration_failed,
            Condition::OdooShBranch { branch } => match (&incident.odoo_sh_branch, branch) {
                (Some(actual), Some(wanted)) => actual == wanted,
                (Some(_), None) => true,
                (None, _) => false,
            },
            Condition::Always => true,
        }
    }
}

/// The rollback plan file: an ordered list of rules mapping trigger conditions to
/// strategies; the first matching rule wins.
///
/// ```
/// use deploy_rollback::strategy::{Incident, RollbackPolicy, StrategyKind};
///
/// let policy = RollbackPolicy::from_toml(r#"
///     [[rule]]
///     when = "odoo_sh_branch"
///     branch = "production"
///     strategy = "git_revert"
///
///     [[rule]]
///     when = "migration_failed"
///     strategy = "database_restore"
///
///     [[rule]]
///     when = "health_failing"
///     strategy = "previous_release"
///
///     [[rule]]
///     when = "error_rate"
///     above = 0.05
///     strategy = "previous_release"
/// "#)?;
/// let incident = Incident { error_rate: Some(0.2), ..Incident::default() };
/// assert_eq!(policy.choose(&incident), Some(StrategyKind::PreviousRelease));
/// assert_eq!(policy, RollbackPolicy::default());
/// # Ok::<(), deploy_rollback::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RollbackPolicy {
    /// The rules, in order (TOML: `[[rule]]` tables).
    #[serde(rename = "rule", default)]
    pub rules: Vec<PolicyRule>,
}

impl Default for RollbackPolicy {
    /// An Odoo.sh `production` branch: git revert; a failed migration: database
    /// restore; failing health or more than 5 % errors: previous release.
    fn default() -> Self {
        RollbackPolicy {
            rules: vec![
                PolicyRule {
                    condition: Condition::OdooShBranch {
                        branch: Some("production".to_owned()),
                    },
                    strategy: StrategyKind::GitRevert,
                },
                PolicyRule {
                    condition: Condition::MigrationFailed,
                    strategy: StrategyKind::DatabaseRestore,
                },
                PolicyRule {
                    condition: Condition::HealthFailing,
                    strategy: StrategyKind::PreviousRelease,
                },
                PolicyRule {
                    condition: Condition::ErrorRate { above: 0.05 },
                    strategy: StrategyKind::PreviousRelease,
                },
            ],
        }
    }
}

impl RollbackPolicy {
    /// Parses a policy from TOML.
    ///
    /// # Errors
    ///
    /// [`Error::Policy`] for invalid TOML, unknown conditions or strategies, or an
    /// error-rate threshold outside 0.0 to 1.0.
    pub fn from_toml(text: &str) -> Result<Self> {
        let policy: RollbackPolicy =
            toml::from_str(text).map_err(|e| Error::Policy { cause: Box::new(e) })?;
        for rule in &policy.rules {
            if let Condition::ErrorRate { above } = rule.condition {
                if !(0.0..=1.0).contains(&above) {
                    return Err(Error::Policy {
                        cause: format!("error_rate threshold {above} is not between 0.0 and 1.0")
                            .into(),
                    });
                }
            }
        }
        Ok(policy)
    }

    /// The strategy of the first rule the incident matches.
    #[must_use]
    pub fn choose(&self, incident: &Incident) -> Option<StrategyKind> {
        self.rules
            .iter()
            .find(|r| r.condition.matches(incident))
            .map(|r| r.strategy)
    }
}
