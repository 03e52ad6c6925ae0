//! Database restore: restore a backup into a new database and a new filestore beside
//! the live ones, verify, then swap by renaming.
//!
//! # Steps
//!
//! 1. The [`Confirmation`] must equal the live database's name; nothing else runs
//!    before it is checked.
//! 2. The backup's SHA-256 checksums are recomputed ([`BackupStore::verify`]).
//! 3. `CREATE DATABASE <live>_restore_<ts> TEMPLATE template0` with the live
//!    database's encoding and collation, then `pg_restore --no-owner --exit-on-error`
//!    into it (connection parameters in the environment, never on the command line).
//!    When `pg_restore` fails, the half-restored database is dropped (it was created by
//!    this call and holds nothing else) and the live database is untouched.
//! 4. The filestore archive is extracted to `<data_dir>/filestore/<live>_restore_<ts>`
//!    and given the owner of the live filestore.
//! 5. Verification: the restored database has at least as many tables as the dump's
//!    table of contents lists, and the optional probe query succeeds and returns a
//!    row. A failure stops here: the live database is untouched and the restored one
//!    is kept for inspection ([`Error::VerificationFailed`]).
//! 6. The swap, timed as the *unavailability window*: `ALTER DATABASE <live> WITH
//!    ALLOW_CONNECTIONS false`, terminate its sessions (`pg_terminate_backend` over
//!    `pg_stat_activity`), `ALTER DATABASE <live> RENAME TO <live>_replaced_<ts>`, rename
//!    the filestores (`<live>` to `<live>_replaced_<ts>`, the restored one to `<live>`),
//!    `ALTER DATABASE <live>_restore_<ts> RENAME TO <live>`. Renames that find sessions
//!    still present (SQLSTATE 55006) terminate them again and retry until
//!    [`RestoreRequest::swap_timeout`].
//!
//! Nothing is deleted: the replaced database and filestore keep their data under their
//! dated names (connections to the replaced database are allowed again afterwards, so
//! it can be inspected). `<ts>` is `YYYYMMDDTHHMMSSZ` (UTC), so the live database's
//! name may be at most 37 bytes long.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;

use crate::backup::{BackupManifest, BackupStore, Phase, Progress, ProgressEvent, ProgressReader};
use crate::error::{Error, Result};
use crate::names::{self, quote_ident};
use crate::pg::{self, PgConnection, PgTools};

/// SQLSTATE `object_in_use`: the database is being accessed by other users.
const OBJECT_IN_USE: &str = "55006";

/// The typed confirmation a destructive restore needs: it must equal the name of the
/// live database that will be replaced (as a person types it at a prompt or passes
/// `--confirm NAME`).
///
/// ```
/// use deploy_rollback::Confirmation;
///
/// assert!(Confirmation::new("prod").confirms("prod"));
/// assert!(!Confirmation::new("Prod").confirms("prod"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation(String);

impl Confirmation {
    /// What was typed.
    #[must_use]
    pub fn new(typed: impl Into<String>) -> Self {
        Confirmation(typed.into())
    }

    /// Whether it names `database` exactly.
    #[must_use]
    pub fn confirms(&self, database: &str) -> bool {
        self.0 == database
    }

    /// What was typed.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What to restore, where.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// A maintenance connection to the server (its `dbname` is the database connected
    /// to for `CREATE`/`ALTER DATABASE`, usually `postgres`; never the live one). The
    /// role needs `CREATEDB` and the right to terminate the live database's sessions.
    pub connection: PgConnection,
    /// The live database to replace.
    pub live_database: String,
    /// The backup to restore.
    pub backup_id: String,
    /// Odoo's `data_dir`; the filestore is restored under `<data_dir>/filestore/`.
    /// `None`: database only.
    pub data_dir: Option<PathBuf>,
    /// An SQL query run on the restored database before the swap; it must succeed and
    /// return at least one row (for example `SELECT count(*) FROM ir_module_module`).
    pub probe: Option<String>,
    /// Must equal `live_database`.
    pub confirmation: Confirmation,
    /// Where `pg_restore` is.
    pub tools: PgTools,
    /// `pg_restore --jobs`; `None` restores in one job.
    pub jobs: Option<u32>,
    /// How long the swap keeps terminating sessions and retrying a rename that finds
    /// the database in use. Default 10 s.
    pub swap_timeout: Duration,
}

impl RestoreRequest {
    /// A database-only restore of `backup_id` over `live_database`.
    #[must_use]
    pub fn new(
        connection: PgConnection,
        live_database: impl Into<String>,
        backup_id: impl Into<String>,
        confirmation: Confirmation,
    ) -> Self {
        RestoreRequest {
            connection,
            live_database: live_database.into(),
            backup_id: backup_id.into(),
            data_dir: None,
            probe: None,
            confirmation,
            tools: PgTools::default(),
            jobs: None,
            swap_timeout: Duration::from_secs(10),
        }
    }

    /// Also restores the filestore under `<data_dir>/filestore/`.
    #[must_use]
    pub fn with_data_dir(mut self, data_dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(data_dir.into());
        self
    }

    /// Runs `probe` on the restored database before the swap.
    #[must_use]
    pub fn with_probe(mut self, probe: impl Into<String>) -> Self {
        self.probe = Some(probe.into());
        self
    }

    /// Uses the client programs in `tools`.
    #[must_use]
    pub fn with_tools(mut self, tools: PgTools) -> Self {
        self.tools = tools;
        self
    }

    /// Restores with `pg_restore --jobs N`.
    #[must_use]
    pub fn with_jobs(mut self, jobs: u32) -> Self {
        self.jobs = Some(jobs);
        self
    }
}

/// What verification found in the restored database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Verification {
    /// `TABLE` entries in the dump's table of contents.
    pub tables_expected: usize,
    /// Tables found in the restored database (outside the system schemas).
    pub tables_found: usize,
    /// The probe's first column of its first row, as text (`None` without a probe or
    /// for SQL NULL).
    pub probe_result: Option<String>,
}

/// The result of a restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RestoreOutcome {
    /// The live database (now holding the backup's data).
    pub live_database: String,
    /// The backup restored.
    pub backup_id: String,
    /// The former live database's new name; `None` when there was no live database.
    pub replaced_database: Option<String>,
    /// The live filestore (now the backup's), when a filestore was restored.
    pub live_filestore: Option<PathBuf>,
    /// Where the former live filestore is kept, when there was one.
    pub replaced_filestore: Option<PathBuf>,
    /// Sessions terminated on the live database during the swap.
    pub terminated_sessions: i64,
    /// From `ALLOW_CONNECTIONS false` to the restored database carrying the live name:
    /// the time the live database could not be used.
    #[serde(rename = "unavailable_ms", with = "crate::serde_util::duration_ms_req")]
    #[schemars(with = "u64")]
    pub unavailable: Duration,
    /// From `CREATE DATABASE` to the end of verification (the live database is in
    /// service meanwhile).
    #[serde(rename = "restore_ms", with = "crate::serde_util::duration_ms_req")]
    #[schemars(with = "u64")]
    pub restore_duration: Duration,
    /// What verification found.
    pub verification: Verification,
}

/// Restores a backup over a live database (see the module docs for the steps).
///
/// # Errors
///
/// [`Error::ConfirmationMismatch`] when the confirmation does not name the live
/// database (checked first); [`Error::InvalidName`]/[`Error::InvalidInput`] for bad
/// names (a live name longer than 37 bytes, a maintenance connection to the live
/// database); the errors of [`BackupStore::verify`]; [`Error::DatabaseExists`] when
/// the dated names are taken (two restores within one second); [`Error::Postgres`],
/// [`Error::CommandFailed`] (`pg_restore`), [`Error::Io`] (filestore);
/// [`Error::VerificationFailed`] (live untouched); [`Error::SwapFailed`] when a
/// rename failed part-way (the crate renames back what it can).
pub async fn restore(
    store: &BackupStore,
    request: &RestoreRequest,
    progress: Arc<dyn Progress>,
) -> Result<RestoreOutcome> {
    let live = request.live_database.as_str();
    if !request.confirmation.confirms(live) {
        return Err(Error::ConfirmationMismatch {
            expected: live.to_owned(),
            given: request.confirmation.as_str().to_owned(),
        });
    }
    pg::check_db_name(live)?;
    if request.connection.dbname == live {
        return Err(Error::InvalidInput {
            what: "maintenance connection",
            reason: format!(
                "must connect to another database than the live {live:?} (for example postgres)"
            ),
        });
    }
    let ts = names::stamp(Utc::now());
    let new_db = format!("{live}_restore_{ts}");
    let replaced_db = format!("{live}_replaced_{ts}");
    pg::check_db_name(&new_db)?;
    pg::check_db_name(&replaced_db)?;

    let manifest = store.verify(&request.backup_id, progress.clone()).await?;
    let admin = request.connection.connect().await?;
    for name in [&new_db, &replaced_db] {
        if database_exists(&admin, name).await? {
            return Err(Error::DatabaseExists { name: name.clone() });
        }
    }
    let live_settings = admin
        .query_opt(
            "SELECT pg_encoding_to_char(encoding), datcollate::text, datctype::text FROM pg_database WHERE datname = $1",
            &[&live],
        )
        .await
        .map_err(|e| Error::pg("read live database settings", e))?;

    let restore_started = Instant::now();
    let mut create = format!(
        "CREATE DATABASE {} TEMPLATE template0",
        quote_ident(&new_db)
    );
    if let Some(row) = &live_settings {
        let (enc, collate, ctype): (String, String, String) = (
            row.try_get(0)
                .map_err(|e| Error::pg("read live database settings", e))?,
            row.try_get(1)
                .map_err(|e| Error::pg("read live database settings", e))?,
            row.try_get(2)
                .map_err(|e| Error::pg("read live database settings", e))?,
        );
        create.push_str(&format!(
            " ENCODING {} LC_COLLATE {} LC_CTYPE {}",
            quote_literal(&enc),
            quote_literal(&collate),
            quote_literal(&ctype)
        ));
    }
    admin
        .batch_execute(&create)
        .await
        .map_err(|e| Error::pg("create database", e))?;
    tracing::info!(database = %new_db, backup = %manifest.id, "restoring into a new database");

    progress.update(ProgressEvent {
        phase: Phase::RestoreDatabase,
        done: 0,
        total: Some(manifest.database_dump.size),
    });
    let dump_path = store.artifact_path(&manifest, &manifest.database_dump);
    let mut cmd = request
        .connection
        .with_dbname(new_db.clone())
        .command(&request.tools.program("pg_restore"));
    cmd.arg("--no-owner")
        .arg("--exit-on-error")
        .arg(format!("--dbname={new_db}"));
    if let Some(jobs) = request.jobs {
        cmd.arg(format!("--jobs={jobs}"));
    }
    cmd.arg(&dump_path);
    if let Err(e) = pg::run(cmd, "pg_restore").await {
        tracing::warn!(database = %new_db, error = %e, "pg_restore failed; dropping the half-restored database");
        if let Err(drop_err) = admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {}", quote_ident(&new_db)))
            .await
        {
            tracing::warn!(database = %new_db, error = %drop_err, "could not drop the half-restored database");
        }
        return Err(e);
    }
    progress.update(ProgressEvent {
        phase: Phase::RestoreDatabase,
        done: manifest.database_dump.size,
        total: Some(manifest.database_dump.size),
    });

    // Filestore beside the live one.
    let filestores = match (&request.data_dir, &manifest.filestore) {
        (Some(data_dir), Some(_)) => {
            let root = data_dir.join("filestore");
            let restored = root.join(&new_db);
            let live_dir = root.join(live);
            let archive = store
                .backup_dir(&manifest.id)
                .join(crate::backup::FILESTORE_FILE);
            let (r, l, p) = (restored.clone(), live_dir.clone(), progress.clone());
            tokio::task::spawn_blocking(move || extract_filestore(&archive, &r, &l, &*p))
                .await
                .map_err(Error::task)??;
            Some((restored, live_dir, root.join(&replaced_db)))
        }
        (Some(_), None) => {
            tracing::warn!(backup = %manifest.id, "the backup has no filestore archive; restoring the database only");
            None
        }
        _ => None,
    };

    let verification = verify_restored(request, &new_db, &manifest).await?;
    let restore_duration = restore_started.elapsed();

    // The swap.
    progress.update(ProgressEvent {
        phase: Phase::Swap,
        done: 0,
        total: Some(1),
    });
    let swap = Swap {
        admin: &admin,
        live,
        new_db: &new_db,
        replaced_db: &replaced_db,
        timeout: request.swap_timeout,
    };
    let live_exists = live_settings.is_some();
    let (unavailable, terminated) = swap.run(live_exists, filestores.as_ref()).await?;
    progress.update(ProgressEvent {
        phase: Phase::Swap,
        done: 1,
        total: Some(1),
    });
    tracing::info!(
        database = %live,
        backup = %manifest.id,
        replaced = %replaced_db,
        unavailable_ms = unavailable.as_millis() as u64,
        "restore swapped in"
    );
    let (live_filestore, replaced_filestore) = match filestores {
        Some((_, live_dir, replaced_dir)) => {
            let replaced = replaced_dir.exists().then_some(replaced_dir);
            (Some(live_dir), replaced)
        }
        None => (None, None),
    };
    Ok(RestoreOutcome {
        live_database: live.to_owned(),
        backup_id: manifest.id.clone(),
        replaced_database: live_exists.then_some(replaced_db),
        live_filestore,
        replaced_filestore,
        terminated_sessions: terminated,
        unavailable,
        restore_duration,
        verification,
    })
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

async fn database_exists(client: &tokio_postgres::Client, name: &str) -> Result<bool> {
    let row = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(|e| Error::pg("look up database", e))?;
    Ok(row.is_some())
}

async fn verify_restored(
    request: &RestoreRequest,
    new_db: &str,
    manifest: &BackupManifest,
) -> Result<Verification> {
    let client = request.connection.with_dbname(new_db).connect().await?;
    let found: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg_toast%'",
            &[],
        )
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| Error::pg("count restored tables", e))?;
    let tables_found = usize::try_from(found).unwrap_or_default();
    let failed = |reason: String| Error::VerificationFailed {
        database: new_db.to_owned(),
        reason,
    };
    if tables_found < manifest.toc.tables {
        return Err(failed(format!(
            "{tables_found} tables restored, the dump lists {}",
            manifest.toc.tables
        )));
    }
    let mut probe_result = None;
    if let Some(probe) = &request.probe {
        let messages = client
            .simple_query(probe)
            .await
            .map_err(|e| failed(format!("probe query failed: {e}")))?;
        let row = messages.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        });
        match row {
            Some(row) => probe_result = row.get(0).map(str::to_owned),
            None => return Err(failed("probe query returned no row".to_owned())),
        }
    }
    drop(client);
    Ok(Verification {
        tables_expected: manifest.toc.tables,
        tables_found,
        probe_result,
    })
}

struct Swap<'a> {
    admin: &'a tokio_postgres::Client,
    live: &'a str,
    new_db: &'a str,
    replaced_db: &'a str,
    timeout: Duration,
}

impl Swap<'_> {
    /// Returns the unavailability window and the number of sessions terminated.
    async fn run(
        &self,
        live_exists: bool,
        filestores: Option<&(PathBuf, PathBuf, PathBuf)>,
    ) -> Result<(Duration, i64)> {
        let deadline = Instant::now() + self.timeout;
        let started = Instant::now();
        let mut terminated = 0;
        if live_exists {
            self.exec(
                "block new connections",
                &format!(
                    "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
                    quote_ident(self.live)
                ),
            )
            .await?;
            match self.rename(self.live, self.replaced_db, deadline).await {
                Ok(n) => terminated += n,
                Err(e) => {
                    self.allow(self.live).await;
                    return Err(self.failed("block new connections", &e, true));
                }
            }
        }
        if let Some((restored, live_dir, replaced_dir)) = filestores {
            if let Err(e) = swap_dirs(restored, live_dir, replaced_dir) {
                // Put the database back where it was.
                if live_exists {
                    self.rename_back().await;
                }
                return Err(self.failed(
                    if live_exists {
                        "rename live database"
                    } else {
                        "start"
                    },
                    &e,
                    live_exists,
                ));
            }
        }
        match self.rename(self.new_db, self.live, deadline).await {
            Ok(n) => terminated += n,
            Err(e) => {
                if let Some((restored, live_dir, replaced_dir)) = filestores {
                    undo_dirs(restored, live_dir, replaced_dir);
                }
                if live_exists {
                    self.rename_back().await;
                }
                return Err(self.failed("rename live database and filestore", &e, live_exists));
            }
        }
        let unavailable = started.elapsed();
        if live_exists {
            self.allow(self.replaced_db).await;
        }
        Ok((unavailable, terminated))
    }

    fn failed(&self, step: &'static str, e: &Error, live_present: bool) -> Error {
        Error::SwapFailed {
            live: self.live.to_owned(),
            step,
            reason: e.to_string(),
            live_present,
        }
    }

    async fn exec(&self, op: &'static str, sql: &str) -> Result<()> {
        self.admin
            .batch_execute(sql)
            .await
            .map_err(|e| Error::pg(op, e))
    }

    async fn allow(&self, db: &str) {
        let sql = format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS true",
            quote_ident(db)
        );
        if let Err(e) = self.admin.batch_execute(&sql).await {
            tracing::warn!(database = %db, error = %e, "could not allow connections again");
        }
    }

    async fn rename_back(&self) {
        let sql = format!(
            "ALTER DATABASE {} RENAME TO {}",
            quote_ident(self.replaced_db),
            quote_ident(self.live)
        );
        match self.admin.batch_execute(&sql).await {
            Ok(()) => self.allow(self.live).await,
            Err(e) => {
                tracing::error!(database = %self.replaced_db, live = %self.live, error = %e, "could not rename the replaced database back")
            }
        }
    }

    async fn terminate(&self, db: &str) -> Result<i64> {
        self.admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&db],
            )
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|e| Error::pg("terminate sessions", e))
    }

    /// Terminates `from`'s sessions and renames it, retrying while it is in use.
    async fn rename(&self, from: &str, to: &str, deadline: Instant) -> Result<i64> {
        let sql = format!(
            "ALTER DATABASE {} RENAME TO {}",
            quote_ident(from),
            quote_ident(to)
        );
        let mut terminated = 0;
        loop {
            terminated += self.terminate(from).await?;
            match self.admin.batch_execute(&sql).await {
                Ok(()) => return Ok(terminated),
                Err(e)
                    if e.code().is_some_and(|c| c.code() == OBJECT_IN_USE)
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => return Err(Error::pg("rename database", e)),
            }
        }
    }
}

/// live -> replaced (when live exists), restored -> live.
fn swap_dirs(restored: &Path, live: &Path, replaced: &Path) -> Result<()> {
    if live.exists() {
        std::fs::rename(live, replaced).map_err(|e| Error::io("rename", live, e))?;
    }
    if let Err(e) = std::fs::rename(restored, live) {
        if replaced.exists() {
            let _ = std::fs::rename(replaced, live);
        }
        return Err(Error::io("rename", restored, e));
    }
    Ok(())
}

fn undo_dirs(restored: &Path, live: &Path, replaced: &Path) {
    if let Err(e) = std::fs::rename(live, restored) {
        tracing::error!(path = %live.display(), error = %e, "could not move the restored filestore back");
        return;
    }
    if replaced.exists() {
        if let Err(e) = std::fs::rename(replaced, live) {
            tracing::error!(path = %replaced.display(), error = %e, "could not move the live filestore back");
        }
    }
}

/// Extracts the filestore archive into `dest` (which must not exist) and gives it the
/// owner of `owner_of` (the live filestore, else its parent).
fn extract_filestore(
    archive: &Path,
    dest: &Path,
    owner_of: &Path,
    progress: &dyn Progress,
) -> Result<()> {
    if dest.exists() {
        return Err(Error::io(
            "create",
            dest,
            std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        ));
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
    }
    std::fs::create_dir(dest).map_err(|e| Error::io("create directory", dest, e))?;
    let result = (|| {
        let file = std::fs::File::open(archive).map_err(|e| Error::io("open", archive, e))?;
        let total = file.metadata().map(|m| m.len()).unwrap_or_default();
        let mut done = 0u64;
        let reader = ProgressReader {
            inner: file,
            done: &mut done,
            reported: 0,
            total,
            phase: Phase::RestoreFilestore,
            progress,
        };
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(
            reader,
        )));
        tar.set_preserve_permissions(true);
        tar.set_preserve_mtime(true);
        tar.set_overwrite(false);
        tar.unpack(dest)
            .map_err(|e| Error::io("extract", dest, e))?;
        copy_owner(dest, owner_of)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(dest);
    }
    progress.update(ProgressEvent {
        phase: Phase::RestoreFilestore,
        done: 1,
        total: Some(1),
    });
    result
}

#[cfg(unix)]
fn copy_owner(dest: &Path, owner_of: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let reference = if owner_of.exists() {
        owner_of.to_owned()
    } else {
        match owner_of.parent() {
            Some(p) => p.to_owned(),
            None => return Ok(()),
        }
    };
    let Ok(meta) = std::fs::metadata(&reference) else {
        return Ok(());
    };
    let (uid, gid) = (meta.uid(), meta.gid());
    let mine = std::fs::metadata(dest).map_err(|e| Error::io("stat", dest, e))?;
    if mine.uid() == uid && mine.gid() == gid {
        return Ok(());
    }
    let mut stack = vec![dest.to_owned()];
    while let Some(path) = stack.pop() {
        std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
            .map_err(|e| Error::io("chown", &path, e))?;
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            for entry in std::fs::read_dir(&path).map_err(|e| Error::io("list", &path, e))? {
                stack.push(entry.map_err(|e| Error::io("list", &path, e))?.path());
            }
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn copy_owner(_dest: &Path, _owner_of: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_quoted() {
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn swap_dirs_moves_and_keeps() {
        let tmp = tempfile::tempdir().unwrap();
        let (restored, live, replaced) = (
            tmp.path().join("new"),
            tmp.path().join("live"),
            tmp.path().join("old"),
        );
        std::fs::create_dir(&restored).unwrap();
        std::fs::write(restored.join("f"), "new").unwrap();
        std::fs::create_dir(&live).unwrap();
        std::fs::write(live.join("f"), "old").unwrap();
        swap_dirs(&restored, &live, &replaced).unwrap();
        assert_eq!(std::fs::read_to_string(live.join("f")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(replaced.join("f")).unwrap(), "old");
        undo_dirs(&restored, &live, &replaced);
        assert_eq!(std::fs::read_to_string(live.join("f")).unwrap(), "old");
        assert_eq!(std::fs::read_to_string(restored.join("f")).unwrap(), "new");
    }
}
