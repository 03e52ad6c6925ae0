//! The pre-deploy backup as a [`DeployStage`]: the orchestrator runs it under the
//! stack's lock, before the new release starts, so that two deploys started together
//! never both back up (the second is refused by the lock first).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use deploy_core::{
    ClassifiedError, Classify, DeployStage, Event, SecretRef, StageContext, StageOutcome,
    StagePoint,
};
use secrecy::ExposeSecret;
use tracing::warn;

use crate::backup::{BackupRequest, BackupStore, Phase, Progress, ProgressEvent};
use crate::history::History;
use crate::pg::{PgConnection, PgTools};

/// Backs up the stack's database (and its filestore) into a [`BackupStore`] before the
/// new release starts; the backup's id goes with the deploy into the history, so that
/// retention keeps it while the release is current.
///
/// The backup is labelled with the release serving when the deploy began (`unknown`
/// when none serves) and, when the history's last good deployment is that release, its
/// git sha.
///
/// A failed backup fails the deploy (nothing is started) unless the stage is
/// [optional](BackupStage::required): then the deploy goes on without one and says so
/// in its warnings.
///
/// ```
/// use deploy_core::{DeployStage, SecretRef, StagePoint};
/// use deploy_rollback::BackupStage;
///
/// let stage = BackupStage::new("/var/backups/odoo", SecretRef::env("ODOO_BACKUP_DB_URL"))
///     .with_data_dir("/var/lib/odoo");
/// assert_eq!(stage.point(), StagePoint::BeforeStart);
/// assert!(stage
///     .settings()
///     .contains(&("database_url".to_owned(), "environment variable `ODOO_BACKUP_DB_URL`".to_owned())));
/// ```
pub struct BackupStage {
    store: PathBuf,
    database_url: SecretRef,
    data_dir: Option<PathBuf>,
    pg_bin: Option<PathBuf>,
    required: bool,
    history: Option<History>,
    progress: Option<Arc<dyn Progress>>,
}

impl std::fmt::Debug for BackupStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupStage")
            .field("store", &self.store)
            .field("database_url", &self.database_url.describe())
            .field("data_dir", &self.data_dir)
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

impl BackupStage {
    /// A required backup of the database `database_url` names (a
    /// `postgres://user[:password]@host[:port]/db` URL) into the store at `store`.
    #[must_use]
    pub fn new(store: impl Into<PathBuf>, database_url: SecretRef) -> Self {
        Self {
            store: store.into(),
            database_url,
            data_dir: None,
            pg_bin: None,
            required: true,
            history: None,
            progress: None,
        }
    }

    /// Also archives Odoo's filestore, `<data_dir>/filestore/<db>/`.
    #[must_use]
    pub fn with_data_dir(mut self, data_dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(data_dir.into());
        self
    }

    /// Runs `pg_dump` and `pg_restore` from this directory.
    #[must_use]
    pub fn with_pg_bin(mut self, dir: impl Into<PathBuf>) -> Self {
        self.pg_bin = Some(dir.into());
        self
    }

    /// Whether a failed backup fails the deploy (the default) or only warns.
    #[must_use]
    pub fn required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    /// Reads the live release's git sha from `history`.
    #[must_use]
    pub fn with_history(mut self, history: History) -> Self {
        self.history = Some(history);
        self
    }

    /// Sends the dump's and the archive's byte counts to `progress` (a progress bar);
    /// without it, each phase is announced as an event.
    #[must_use]
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    async fn take(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, ClassifiedError> {
        let url = self
            .database_url
            .resolve(ctx.events)
            .map_err(|e| ClassifiedError::config(Described("database_url", e.into())))?;
        let connection = PgConnection::from_url(url.expose_secret()).map_err(|e| {
            ClassifiedError::new(
                e.class(),
                Described(
                    "database_url",
                    format!("{} ({e})", self.database_url.describe()).into(),
                ),
            )
        })?;
        let live = ctx.live.map(|l| l.label().to_owned());
        let release = live.clone().unwrap_or_else(|| "unknown".to_owned());
        let tools = self
            .pg_bin
            .as_ref()
            .map_or_else(PgTools::default, PgTools::in_dir);
        let mut request = BackupRequest::new(connection, &release)
            .with_stack(ctx.stack)
            .with_tools(tools);
        if let Some(dir) = &self.data_dir {
            request = request.with_data_dir(dir);
        }
        if let Some(sha) = self.live_sha(ctx, live.as_deref()).await {
            request = request.with_git_sha(sha);
        }
        let store = BackupStore::open(&self.store).map_err(ClassifiedError::classified)?;
        ctx.events.emit(&Event::progress(
            "backup",
            format!(
                "pre-deploy backup of database {} (release {release}) into {}",
                request.connection.dbname,
                self.store.display()
            ),
        ));
        // Each phase is announced as an event when it begins (the dump, the filestore,
        // the verification), and the byte counts go to the progress bar, if any.
        let (tx, mut phases) = tokio::sync::mpsc::unbounded_channel();
        let progress = Arc::new(PhaseEvents {
            seen: Mutex::new(Vec::new()),
            tx,
            inner: self.progress.clone(),
        });
        let create = store.create(&request, progress);
        tokio::pin!(create);
        let result = loop {
            tokio::select! {
                result = &mut create => break result,
                Some(phase) = phases.recv() => {
                    ctx.events.emit(&Event::progress("backup", phase_text(phase)).with_field("phase", phase_name(phase)));
                }
            }
        };
        let manifest = result.map_err(ClassifiedError::classified)?;
        let took = (manifest.completed_at - manifest.created_at)
            .to_std()
            .unwrap_or_default();
        let contents = if manifest.filestore.is_some() {
            "database and filestore"
        } else {
            "database only"
        };
        let summary = format!(
            "pre-deploy backup {} complete ({}, {contents}) in {:.1} s",
            manifest.id,
            crate::backup::human_size(manifest.size()),
            took.as_secs_f64()
        );
        ctx.events.emit(
            &Event::finished("backup", summary.clone())
                .with_field("backup_id", manifest.id.as_str()),
        );
        Ok(StageOutcome::proceed()
            .with_backup(manifest.id.as_str())
            .with_summary(summary)
            .with_details(serde_json::json!({
                "backup_id": manifest.id,
                "bytes": manifest.size(),
                "filestore": manifest.filestore.is_some(),
                "dir": store.backup_dir(&manifest.id),
                "release": release,
            })))
    }

    async fn live_sha(&self, ctx: &StageContext<'_>, live: Option<&str>) -> Option<String> {
        let history = self.history.clone()?;
        let live = live?.to_owned();
        let (stack, environment) = (ctx.stack.to_owned(), ctx.environment);
        let good = tokio::task::spawn_blocking(move || history.last_good(&stack, environment))
            .await
            .ok()?;
        match good {
            Ok(Some(good)) if good.release == live => good.outcome.git_sha,
            Ok(_) => None,
            Err(e) => {
                warn!(error = %e, "cannot read the history for the live release's git sha");
                None
            }
        }
    }
}

#[async_trait]
impl DeployStage for BackupStage {
    fn name(&self) -> &str {
        "backup"
    }

    fn point(&self) -> StagePoint {
        StagePoint::BeforeStart
    }

    fn settings(&self) -> Vec<(String, String)> {
        let mut settings = vec![
            ("store".to_owned(), self.store.display().to_string()),
            ("database_url".to_owned(), self.database_url.describe()),
        ];
        if let Some(dir) = &self.data_dir {
            settings.push(("data_dir".to_owned(), dir.display().to_string()));
        }
        if let Some(dir) = &self.pg_bin {
            settings.push(("pg_bin".to_owned(), dir.display().to_string()));
        }
        settings.push(("required".to_owned(), self.required.to_string()));
        settings
    }

    async fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, ClassifiedError> {
        match self.take(ctx).await {
            Ok(outcome) => Ok(outcome),
            Err(e) if !self.required => {
                let message = format!(
                    "the pre-deploy backup failed and it is not required (required = false): deploying without one: {}",
                    deploy_core::error_chain(&e)
                );
                ctx.events.emit(&Event::warning("backup", message.clone()));
                Ok(StageOutcome::proceed()
                    .with_summary("no backup: it failed and is not required")
                    .with_warning(message))
            }
            Err(e) => Err(e),
        }
    }
}

/// An error with the setting it concerns in front of its message.
#[derive(Debug)]
struct Described(&'static str, deploy_core::BoxError);

impl std::fmt::Display for Described {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0, self.1)
    }
}

impl std::error::Error for Described {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.1.source()
    }
}

/// Sends each phase once, when it begins, and every report to the progress bar.
struct PhaseEvents {
    seen: Mutex<Vec<Phase>>,
    tx: tokio::sync::mpsc::UnboundedSender<Phase>,
    inner: Option<Arc<dyn Progress>>,
}

impl Progress for PhaseEvents {
    fn update(&self, event: ProgressEvent) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if !seen.contains(&event.phase) {
            seen.push(event.phase);
            // The receiver is gone only once the backup has returned.
            let _ = self.tx.send(event.phase);
        }
        drop(seen);
        if let Some(inner) = &self.inner {
            inner.update(event);
        }
    }
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Dump => "dump",
        Phase::Filestore => "filestore",
        Phase::VerifyDump => "verify_dump",
        Phase::Checksum => "checksum",
        Phase::RestoreDatabase => "restore_database",
        Phase::RestoreFilestore => "restore_filestore",
        Phase::Swap => "swap",
    }
}

fn phase_text(phase: Phase) -> &'static str {
    match phase {
        Phase::Dump => "dumping the database (pg_dump)",
        Phase::Filestore => "archiving the filestore",
        Phase::VerifyDump => "verifying the dump (pg_restore --list)",
        Phase::Checksum => "checking the artifacts' checksums",
        Phase::RestoreDatabase => "restoring the database",
        Phase::RestoreFilestore => "restoring the filestore",
        Phase::Swap => "swapping the databases",
    }
}

/// Restores a backup of the store over the stack's live database with the rename swap
/// ([`restore`](crate::restore)): the [`deploy_core::DatabaseRestorer`] a failed module
/// update calls, so that no release serves a half-updated database. The live database
/// is the one of `database_url` (the pre-deploy backup's); the swap connects to the
/// server's `postgres` database.
pub struct BackupRestorer {
    store: PathBuf,
    database_url: SecretRef,
    data_dir: Option<PathBuf>,
    pg_bin: Option<PathBuf>,
}

impl std::fmt::Debug for BackupRestorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupRestorer")
            .field("store", &self.store)
            .field("database_url", &self.database_url.describe())
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl BackupRestorer {
    /// Restores from `store` over the database of `database_url`.
    #[must_use]
    pub fn new(store: impl Into<PathBuf>, database_url: SecretRef) -> Self {
        Self {
            store: store.into(),
            database_url,
            data_dir: None,
            pg_bin: None,
        }
    }

    /// Also restores the filestore under `<data_dir>/filestore/`.
    #[must_use]
    pub fn with_data_dir(mut self, data_dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(data_dir.into());
        self
    }

    /// Uses the client programs in `dir`.
    #[must_use]
    pub fn with_pg_bin(mut self, dir: impl Into<PathBuf>) -> Self {
        self.pg_bin = Some(dir.into());
        self
    }
}

#[async_trait]
impl deploy_core::DatabaseRestorer for BackupRestorer {
    async fn restore(&self, backup_id: &str) -> Result<String, ClassifiedError> {
        let url = self
            .database_url
            .resolve(&deploy_core::NullSink)
            .map_err(|e| ClassifiedError::config(Described("database_url", e.into())))?;
        let live = PgConnection::from_url(url.expose_secret())
            .map_err(|e| ClassifiedError::new(e.class(), e))?;
        let database = live.dbname.clone();
        let maintenance = live.with_dbname("postgres");
        let tools = self
            .pg_bin
            .as_ref()
            .map_or_else(PgTools::default, PgTools::in_dir);
        let mut request = crate::RestoreRequest::new(
            maintenance,
            &database,
            backup_id,
            crate::Confirmation::new(&database),
        )
        .with_tools(tools)
        .with_probe("SELECT count(*) FROM ir_module_module");
        if let Some(dir) = &self.data_dir {
            request = request.with_data_dir(dir);
        }
        let store = crate::BackupStore::open(&self.store)
            .map_err(|e| ClassifiedError::new(e.class(), e))?;
        let outcome = crate::restore(&store, &request, Arc::new(crate::backup::NoProgress))
            .await
            .map_err(|e| ClassifiedError::new(e.class(), e))?;
        Ok(format!(
            "backup {backup_id} restored over {database}{}",
            outcome
                .replaced_database
                .as_deref()
                .map(|old| format!(" (the updated database is kept as {old})"))
                .unwrap_or_default()
        ))
    }
}
