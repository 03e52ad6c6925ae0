//! Deployment history, pre-deploy backups and rollback strategies for Odoo.
//!
//! Odoo teams know three ways back from a bad release; this crate makes each of them
//! safe and fast, and keeps the record that says which release was good:
//!
//! | module | what it holds |
//! |---|---|
//! | [`history`] | [`History`]: one append-only JSON Lines file per stack, safe against concurrent writers and torn writes; [`History::last_good`], filters, the plain `timestamp \| stack \| version \| env \| status \| operator` log, [`history::figures`] (success rate, mean time to roll back, time from start to live) |
//! | [`backup`] | [`BackupStore`]: `pg_dump --format=custom` plus a tar.gz of the filestore plus a manifest with SHA-256, streamed, published atomically only once verified; retention ([`RetentionPolicy`]) |
//! | [`restore`](mod@restore) | [`restore()`]: into a new database and filestore, verify, swap by renaming (nothing deleted); the unavailability window is measured |
//! | [`git`] | [`git::revert`]: revert a merge on the deploy branch and push (Odoo.sh) |
//! | [`strategy`] | the [`RollbackStrategy`] trait, its three implementations, and the TOML [`RollbackPolicy`] mapping incidents to strategies |
//! | [`deployer`] | the [`Deployer`] trait (from `deploy-core`) the blue-green orchestrator implements |
//!
//! Everything talks to real things: PostgreSQL through its own client programs
//! (`pg_dump`, `pg_restore`) and `tokio-postgres`, git through libgit2. Secrets
//! (database password, git token) are `SecretString`s that reach only the child
//! process's environment or libgit2; they never appear in a log, an error, a manifest
//! or the history.
//!
//! # Example
//!
//! ```
//! use deploy_rollback::{DeployStatus, DeploymentRecord, Environment, History};
//!
//! let dir = tempfile::tempdir()?;
//! let history = History::open(dir.path())?;
//! let env = Environment::Production;
//! for (release, status) in [
//!     ("17.0.1", DeployStatus::Started),
//!     ("17.0.1", DeployStatus::Succeeded),
//!     ("17.0.2", DeployStatus::Started),
//!     ("17.0.2", DeployStatus::Failed),
//! ] {
//!     history.append(&DeploymentRecord::new("shop", release, env, status, "ci").with_backup("b-1"))?;
//! }
//! let good = history.last_good("shop", env)?.expect("a good release");
//! assert_eq!(good.release, "17.0.1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A backup before a deploy, and a restore after a failed migration:
//!
//! ```no_run
//! use std::sync::Arc;
//! use deploy_rollback::{
//!     restore, BackupRequest, BackupStore, Confirmation, NoProgress, PgConnection, RestoreRequest,
//! };
//!
//! # async fn run() -> deploy_rollback::Result<()> {
//! let store = BackupStore::open("/var/backups/odoo")?;
//! let prod = PgConnection::from_url("postgres://odoo@127.0.0.1:5432/prod")?;
//! let backup = store
//!     .create(&BackupRequest::new(prod.clone(), "17.0.1").with_data_dir("/var/lib/odoo"), Arc::new(NoProgress))
//!     .await?;
//! // ... the deploy's migration fails ...
//! let request = RestoreRequest::new(prod.with_dbname("postgres"), "prod", &backup.id, Confirmation::new("prod"))
//!     .with_data_dir("/var/lib/odoo")
//!     .with_probe("SELECT count(*) FROM ir_module_module");
//! let outcome = restore(&store, &request, Arc::new(NoProgress)).await?;
//! println!("prod was unavailable for {:?}; the old one is {:?}", outcome.unavailable, outcome.replaced_database);
//! # Ok(()) }
//! ```
//!
//! # Driving it from a CLI
//!
//! The `odoo-rollback` subcommands map onto this API:
//!
//! | subcommand | calls |
//! |---|---|
//! | `backup` | [`BackupStore::open`], [`BackupStore::create`] with a [`Progress`] that draws the bar ([`Phase`] says what is running); record the id with [`DeploymentRecord::with_backup`] |
//! | `restore` | [`restore()`] with a [`RestoreRequest`]; the [`Confirmation`] comes from `--confirm NAME` or a prompt; [`RestoreOutcome`] serializes for `--json` |
//! | `revert` | [`git::revert`] (or [`revert_blocking`]) with [`GitRevertRequest::dry_run`] for `--dry-run` |
//! | `previous` | [`strategy::PreviousRelease`] over a [`Deployer`], run through [`strategy::execute_recorded`] |
//! | `history` | [`History::list`] with a [`HistoryFilter`], [`History::figures`], [`History::export_plain`], [`History::import_plain`], [`History::check`] |
//! | `prune` | [`BackupStore::prune`] (or [`BackupStore::plan_prune`] for a dry run) with [`History::protected_backups`], then [`BackupStore::remove_stale_partials`] |
//!
//! Every plan, outcome, report, manifest and figure derives `Serialize` (durations
//! as `*_ms`). [`Error`] variants carry the fields an exit code needs: a refused
//! confirmation ([`Error::ConfirmationMismatch`]), a refused precondition
//! ([`Error::DirtyWorkTree`], [`Error::Diverged`], [`Error::NoGoodRelease`]), a failed
//! tool ([`Error::CommandFailed`]) or a full disk ([`Error::is_storage_full`]).
//!
//! # Tests
//!
//! The integration tests need the throwaway PostgreSQL cluster that
//! `scripts/ensure-postgres.sh` starts (`eval "$(scripts/ensure-postgres.sh)"` sets
//! `DEPLOY_TEST_PG`); without it they fail and say so.
#![deny(missing_docs)]

pub mod backup;
pub mod deployer;
mod environment;
mod error;
pub mod git;
pub mod history;
mod names;
mod pg;
pub mod restore;
mod serde_util;
mod stage;
pub mod strategy;

pub use backup::{
    BackupManifest, BackupRequest, BackupStore, NoProgress, Phase, Progress, ProgressEvent,
    RetentionPolicy,
};
pub use deployer::{
    release_ref, Deployer, DeployerError, RedeployMethod, RedeployReport, ReleaseRef,
};
pub use environment::Environment;
pub use error::{Error, ForeignError, Result};
pub use git::{revert_blocking, GitCredentials, GitRevertRequest, RevertOutcome};
pub use history::{DeployStatus, DeploymentRecord, History, HistoryFilter};
pub use pg::{PgConnection, PgTools};
pub use restore::{restore, Confirmation, RestoreOutcome, RestoreRequest};
pub use stage::{BackupRestorer, BackupStage};
pub use strategy::{RollbackOutcome, RollbackPlan, RollbackPolicy, RollbackStrategy};
