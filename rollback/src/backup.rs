//! Pre-deploy backups: a `pg_dump` custom-format dump of the Odoo database, a tar.gz
//! of its filestore and a manifest with the SHA-256 of each artifact.
//!
//! # On disk
//!
//! ```text
//! <root>/
//!   20250301T100000Z-prod-3f2a/        a complete backup
//!     database.dump                    pg_dump --format=custom
//!     filestore.tar.gz                 <data_dir>/filestore/<db>/, paths relative to it
//!     manifest.json                    written last (BackupManifest)
//!   20250302T100000Z-prod-91bc.partial/  being written, or left by a failure
//! ```
//!
//! # Completeness
//!
//! A backup is written into `<id>.partial/`. Only after `pg_dump` exited successfully,
//! both artifacts are written and `fsync`ed, `pg_restore --list` has read the whole
//! dump's table of contents and the checksums are known, is `manifest.json` written
//! (and `fsync`ed), the directory `fsync`ed, and `<id>.partial/` renamed to `<id>/` (and
//! the store's directory `fsync`ed). A directory named without `.partial` therefore
//! always holds a manifest; [`BackupStore::list`] offers only those whose artifacts are
//! present with the recorded sizes, and [`BackupStore::verify`] recomputes the SHA-256.
//! A failure (pg_dump error, full disk) removes the `.partial` directory; a killed
//! process leaves it, and [`BackupStore::remove_stale_partials`] removes it later.
//!
//! # Streaming
//!
//! `pg_dump` writes to a pipe; its output is hashed and written in 256 KiB chunks on a
//! blocking thread, with at most 2 MiB in flight. The filestore is archived file by
//! file on another blocking thread at the same time. Memory use does not depend on
//! the size of the database or the filestore. Because `pg_dump` writes to a pipe
//! and not to a file it can seek in, the archive records no data offsets: a
//! single-job `pg_restore` (what [`crate::restore()`] runs by default) reads it
//! sequentially at full speed; with `--jobs`, each worker scans forward for its blocks.
//! A process killed mid-backup takes its `pg_dump` down with it (broken pipe).

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Datelike, NaiveDate, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::error::{Error, Result};
use crate::names;
use crate::pg::{self, PgConnection, PgTools};

/// The manifest's file name inside a backup directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The database dump's file name inside a backup directory.
pub const DUMP_FILE: &str = "database.dump";
/// The filestore archive's file name inside a backup directory.
pub const FILESTORE_FILE: &str = "filestore.tar.gz";
/// The manifest format written by this version.
pub const MANIFEST_FORMAT: u32 = 1;

const PARTIAL_SUFFIX: &str = ".partial";
const REMOVING_PREFIX: &str = ".removing-";
const CHUNK: usize = 256 * 1024;
const MAX_ID_LEN: usize = 120;

// ---------------------------------------------------------------------------------
// Artifact writers

/// A file being written by a backup. [`ArtifactWriter::finish`] must make the data
/// durable (flush and `fsync`); a backup is not complete before every artifact
/// finished.
pub trait ArtifactWriter: Write + Send {
    /// Flushes and syncs the artifact to stable storage.
    ///
    /// # Errors
    ///
    /// The I/O error of the flush or sync (for example a full disk).
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// Creates the files of a backup. The default, [`FsStorage`], writes plain files;
/// tests inject failures (a full disk) through their own implementation.
///
/// Contract: `create` makes a new file at `path` (which does not exist yet) and
/// returns its writer. Errors are returned as they are (`ENOSPC` stays `ENOSPC`).
pub trait ArtifactStorage: Send + Sync + fmt::Debug {
    /// Creates the file `path`.
    ///
    /// # Errors
    ///
    /// The I/O error of creating it.
    fn create(&self, path: &Path) -> io::Result<Box<dyn ArtifactWriter>>;
}

/// Plain files through `std::fs`, buffered by 1 MiB, `fsync`ed on finish.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsStorage;

struct FsWriter {
    inner: BufWriter<File>,
}

impl Write for FsWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl ArtifactWriter for FsWriter {
    fn finish(self: Box<Self>) -> io::Result<()> {
        let file = self
            .inner
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        file.sync_all()
    }
}

impl ArtifactStorage for FsStorage {
    fn create(&self, path: &Path) -> io::Result<Box<dyn ArtifactWriter>> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(Box::new(FsWriter {
            inner: BufWriter::with_capacity(1024 * 1024, file),
        }))
    }
}

/// Hashes and counts what goes through to the inner writer.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let written = buf.get(..n).unwrap_or_default();
        self.hasher.update(written);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

// ---------------------------------------------------------------------------------
// Progress

/// What a long operation is doing when it reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// `pg_dump` output written (bytes of the dump file).
    Dump,
    /// Filestore archived (bytes of files read; `total` is the filestore's size).
    Filestore,
    /// `pg_restore --list` reading the dump.
    VerifyDump,
    /// SHA-256 recomputed over the artifacts (bytes read; `total` is their size).
    Checksum,
    /// `pg_restore` loading the dump into the new database.
    RestoreDatabase,
    /// Filestore extracted (bytes of the archive read; `total` is its size).
    RestoreFilestore,
    /// Connections closed and databases and filestores renamed.
    Swap,
}

/// One progress report: `done` bytes (or steps) of `total`, when the total is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressEvent {
    /// The phase.
    pub phase: Phase,
    /// Bytes done so far in this phase.
    pub done: u64,
    /// The phase's total, when known in advance.
    pub total: Option<u64>,
}

/// Receives progress reports (a binary draws a progress bar from them).
///
/// Called often (every 256 KiB of a dump) from async tasks and blocking threads:
/// it must return quickly and must not block.
pub trait Progress: Send + Sync {
    /// One report.
    fn update(&self, event: ProgressEvent);
}

impl<F: Fn(ProgressEvent) + Send + Sync> Progress for F {
    fn update(&self, event: ProgressEvent) {
        self(event);
    }
}

impl fmt::Debug for dyn Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Progress")
    }
}

/// Ignores progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&self, _event: ProgressEvent) {}
}

// ---------------------------------------------------------------------------------
// Manifest

/// One artifact of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ArtifactInfo {
    /// File name inside the backup directory.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
    /// For the filestore archive: the number of files archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
}

/// What `pg_restore --list` read from the dump when the backup was verified.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TocSummary {
    /// Entries in the table of contents.
    pub entries: usize,
    /// `TABLE` entries.
    pub tables: usize,
    /// `TABLE DATA` entries.
    pub table_data: usize,
    /// The server version the dump was taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dumped_from: Option<String>,
    /// The `pg_dump` version that wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dumped_by: Option<String>,
}

impl TocSummary {
    /// Reads `pg_restore --list` output.
    #[must_use]
    pub fn parse(listing: &str) -> Self {
        let mut toc = TocSummary::default();
        for line in listing.lines() {
            let line = line.trim();
            if let Some(comment) = line.strip_prefix(';') {
                let comment = comment.trim();
                if let Some(v) = comment.strip_prefix("Dumped from database version:") {
                    toc.dumped_from = Some(v.trim().to_owned());
                } else if let Some(v) = comment.strip_prefix("Dumped by pg_dump version:") {
                    toc.dumped_by = Some(v.trim().to_owned());
                }
                continue;
            }
            if line.is_empty() {
                continue;
            }
            toc.entries += 1;
            // "<dumpid>; <tableoid> <oid> <DESC...> <schema> <name> <owner>"
            let mut words = line.split_whitespace().skip(3);
            if words.next() == Some("TABLE") {
                if words.next() == Some("DATA") {
                    toc.table_data += 1;
                } else {
                    toc.tables += 1;
                }
            }
        }
        toc
    }
}

/// The manifest of a complete backup (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BackupManifest {
    /// Manifest format version ([`MANIFEST_FORMAT`]).
    pub format: u32,
    /// The backup id, also the directory's name.
    pub id: String,
    /// The database that was dumped.
    pub database: String,
    /// The stack, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// The release that was live when the backup was taken.
    pub release: String,
    /// Its git sha, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_sha: Option<String>,
    /// When the backup started (UTC).
    #[serde(with = "crate::serde_util::rfc3339")]
    #[schemars(with = "chrono::DateTime<chrono::Utc>")]
    pub created_at: DateTime<Utc>,
    /// When it was complete (UTC).
    #[serde(with = "crate::serde_util::rfc3339")]
    #[schemars(with = "chrono::DateTime<chrono::Utc>")]
    pub completed_at: DateTime<Utc>,
    /// The `pg_dump --format=custom` dump.
    pub database_dump: ArtifactInfo,
    /// The filestore archive; `None` when the backup was taken without a data dir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filestore: Option<ArtifactInfo>,
    /// What `pg_restore --list` found in the dump.
    pub toc: TocSummary,
}

impl BackupManifest {
    /// The artifacts: the dump, then the filestore archive when present.
    pub fn artifacts(&self) -> impl Iterator<Item = &ArtifactInfo> {
        std::iter::once(&self.database_dump).chain(self.filestore.as_ref())
    }

    /// Total size of the artifacts in bytes.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.artifacts().map(|a| a.size).sum()
    }
}

// ---------------------------------------------------------------------------------
// Requests and entries

/// What to back up.
#[derive(Debug, Clone)]
pub struct BackupRequest {
    /// Connection to the Odoo database (its `dbname` is the database dumped).
    pub connection: PgConnection,
    /// Odoo's `data_dir`; the filestore `<data_dir>/filestore/<db>/` is archived.
    /// `None`: no filestore archive (database only).
    pub data_dir: Option<PathBuf>,
    /// The release live now (recorded in the manifest).
    pub release: String,
    /// The git sha of that release.
    pub git_sha: Option<String>,
    /// The stack.
    pub stack: Option<String>,
    /// Where `pg_dump` and `pg_restore` are.
    pub tools: PgTools,
}

impl BackupRequest {
    /// A database-only backup of `connection.dbname`, labelled with `release`.
    #[must_use]
    pub fn new(connection: PgConnection, release: impl Into<String>) -> Self {
        BackupRequest {
            connection,
            data_dir: None,
            release: release.into(),
            git_sha: None,
            stack: None,
            tools: PgTools::default(),
        }
    }

    /// Also archives `<data_dir>/filestore/<db>/`.
    #[must_use]
    pub fn with_data_dir(mut self, data_dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(data_dir.into());
        self
    }

    /// Records the git sha.
    #[must_use]
    pub fn with_git_sha(mut self, sha: impl Into<String>) -> Self {
        self.git_sha = Some(sha.into());
        self
    }

    /// Records the stack.
    #[must_use]
    pub fn with_stack(mut self, stack: impl Into<String>) -> Self {
        self.stack = Some(stack.into());
        self
    }

    /// Uses the client programs in `tools`.
    #[must_use]
    pub fn with_tools(mut self, tools: PgTools) -> Self {
        self.tools = tools;
        self
    }
}

/// The state of one directory in the store (see [`BackupStore::scan`]).
#[derive(Debug, Clone, PartialEq)]
pub enum BackupState {
    /// A complete backup whose artifacts are present with their recorded sizes.
    Complete(Box<BackupManifest>),
    /// A `.partial` directory: being written, or left by a killed process.
    Partial,
    /// A backup being removed by a prune (or left by an interrupted one).
    Removing,
    /// A directory that claims to be a backup but is not valid (nothing offers it).
    Invalid {
        /// What is wrong.
        reason: String,
    },
}

/// One directory of the store.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupEntry {
    /// The backup id (the directory name without `.partial`).
    pub id: String,
    /// The directory.
    pub path: PathBuf,
    /// Newest modification time of the directory and its files.
    pub modified: Option<SystemTime>,
    /// Its state.
    pub state: BackupState,
}

// ---------------------------------------------------------------------------------
// Retention

/// Which backups [`BackupStore::prune`] keeps, per database. The rules add up: a
/// backup is kept when any rule keeps it. The newest complete backup of each database
/// and the protected ids are always kept, even with every count at 0.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(default)]
pub struct RetentionPolicy {
    /// Keep the newest N backups.
    pub keep_last: usize,
    /// Keep the newest backup of each of the last N days (UTC) that have backups.
    pub keep_daily: usize,
    /// Keep the newest backup of each of the last N ISO weeks that have backups.
    pub keep_weekly: usize,
}

impl RetentionPolicy {
    /// Keep the last `n` backups.
    #[must_use]
    pub fn last(n: usize) -> Self {
        RetentionPolicy {
            keep_last: n,
            ..RetentionPolicy::default()
        }
    }

    /// Keep `daily` daily and `weekly` weekly generations (for example 7 and 4).
    #[must_use]
    pub fn generations(daily: usize, weekly: usize) -> Self {
        RetentionPolicy {
            keep_last: 0,
            keep_daily: daily,
            keep_weekly: weekly,
        }
    }
}

/// Why a backup is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum KeepReason {
    /// The newest complete backup of its database.
    Newest,
    /// Named by the caller (the pre-deploy backup of a current release).
    Protected,
    /// Among the last `keep_last`.
    Last,
    /// The newest of its day.
    Daily {
        /// The day (UTC).
        day: NaiveDate,
    },
    /// The newest of its ISO week.
    Weekly {
        /// ISO year.
        year: i32,
        /// ISO week number.
        week: u32,
    },
}

/// The retention verdict on one backup.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RetentionDecision {
    /// The backup id.
    pub id: String,
    /// Its database.
    pub database: String,
    /// When it was taken.
    #[serde(with = "crate::serde_util::rfc3339")]
    #[schemars(with = "chrono::DateTime<chrono::Utc>")]
    pub created_at: DateTime<Utc>,
    /// Why it is kept; empty means it is removed.
    pub keep: Vec<KeepReason>,
}

impl RetentionDecision {
    /// Whether it is kept.
    #[must_use]
    pub fn is_kept(&self) -> bool {
        !self.keep.is_empty()
    }
}

/// Applies a retention policy to complete backups. Pure: nothing is removed.
/// Decisions come newest first, per database in name order.
#[must_use]
pub fn plan_retention(
    backups: &[BackupManifest],
    policy: &RetentionPolicy,
    protected: &[String],
) -> Vec<RetentionDecision> {
    let protected: HashSet<&str> = protected.iter().map(String::as_str).collect();
    let mut databases: Vec<&str> = backups.iter().map(|b| b.database.as_str()).collect();
    databases.sort_unstable();
    databases.dedup();
    let mut out = Vec::new();
    for db in databases {
        let mut group: Vec<&BackupManifest> = backups.iter().filter(|b| b.database == db).collect();
        group.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        let mut days: Vec<NaiveDate> = Vec::new();
        let mut weeks: Vec<(i32, u32)> = Vec::new();
        for (i, b) in group.iter().enumerate() {
            let mut keep = Vec::new();
            if i == 0 {
                keep.push(KeepReason::Newest);
            }
            if protected.contains(b.id.as_str()) {
                keep.push(KeepReason::Protected);
            }
            if i < policy.keep_last {
                keep.push(KeepReason::Last);
            }
            let day = b.created_at.date_naive();
            if !days.contains(&day) {
                days.push(day);
                if days.len() <= policy.keep_daily {
                    keep.push(KeepReason::Daily { day });
                }
            }
            let iso = b.created_at.iso_week();
            let week = (iso.year(), iso.week());
            if !weeks.contains(&week) {
                weeks.push(week);
                if weeks.len() <= policy.keep_weekly {
                    keep.push(KeepReason::Weekly {
                        year: week.0,
                        week: week.1,
                    });
                }
            }
            out.push(RetentionDecision {
                id: b.id.clone(),
                database: b.database.clone(),
                created_at: b.created_at,
                keep,
            });
        }
    }
    out
}

/// What [`BackupStore::prune`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PruneReport {
    /// The verdict on every complete backup.
    pub decisions: Vec<RetentionDecision>,
    /// The ids removed.
    pub removed: Vec<String>,
}

// ---------------------------------------------------------------------------------
// The store

/// A directory of backups.
///
/// ```no_run
/// use std::sync::Arc;
/// use deploy_rollback::{BackupRequest, BackupStore, NoProgress, PgConnection};
///
/// # async fn run() -> deploy_rollback::Result<()> {
/// let store = BackupStore::open("/var/backups/odoo")?;
/// let conn = PgConnection::from_url("postgres://odoo@127.0.0.1:5432/prod")?;
/// let request = BackupRequest::new(conn, "17.0-2025.03.01").with_data_dir("/var/lib/odoo");
/// let manifest = store.create(&request, Arc::new(NoProgress)).await?;
/// println!("backup {} ({} bytes)", manifest.id, manifest.size());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct BackupStore {
    root: PathBuf,
    storage: Arc<dyn ArtifactStorage>,
}

impl BackupStore {
    /// Opens (and creates when missing) a store writing plain files.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the directory cannot be created.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| Error::io("create directory", &root, e))?;
        Ok(BackupStore {
            root,
            storage: Arc::new(FsStorage),
        })
    }

    /// Writes artifacts through `storage` instead of plain files (tests inject a full
    /// disk this way).
    #[must_use]
    pub fn with_storage(mut self, storage: Arc<dyn ArtifactStorage>) -> Self {
        self.storage = storage;
        self
    }

    /// The store's directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a complete backup.
    #[must_use]
    pub fn backup_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// The path of one artifact of a backup.
    #[must_use]
    pub fn artifact_path(&self, manifest: &BackupManifest, artifact: &ArtifactInfo) -> PathBuf {
        self.root.join(&manifest.id).join(&artifact.file)
    }

    /// Takes a backup: dump, filestore archive, `pg_restore --list`, checksums,
    /// manifest, atomic rename (see the module docs). Returns the manifest of the
    /// complete backup.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] for an unusable database or stack name;
    /// [`Error::CommandSpawn`]/[`Error::CommandFailed`] when `pg_dump` or
    /// `pg_restore --list` cannot run or fail; [`Error::Io`] for file errors (a full
    /// disk: [`Error::is_storage_full`]). On every error the `.partial` directory is
    /// removed and no backup is offered.
    pub async fn create(
        &self,
        request: &BackupRequest,
        progress: Arc<dyn Progress>,
    ) -> Result<BackupManifest> {
        let db = request.connection.dbname.clone();
        pg::check_db_name(&db)?;
        if let Some(stack) = &request.stack {
            names::check("stack", stack, 100)?;
        }
        // Millisecond precision, as the manifest stores it.
        let created_at = Utc::now().trunc_subsecs(3);
        let id = format!(
            "{}-{}-{:04x}",
            names::stamp(created_at),
            db,
            fastrand::u16(..)
        );
        let partial = self.root.join(format!("{id}{PARTIAL_SUFFIX}"));
        std::fs::create_dir(&partial).map_err(|e| Error::io("create directory", &partial, e))?;
        tracing::info!(backup = %id, database = %db, "backup started");
        let started = std::time::Instant::now();
        match self
            .fill(&id, &partial, request, created_at, progress)
            .await
        {
            Ok(manifest) => {
                tracing::info!(
                    backup = %id,
                    database = %db,
                    bytes = manifest.size(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "backup complete"
                );
                Ok(manifest)
            }
            Err(e) => {
                tracing::warn!(backup = %id, database = %db, error = %e, "backup failed; removing its partial directory");
                let dir = partial.clone();
                let removed =
                    tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir)).await;
                if let Ok(Err(rm)) | Err(rm) = removed.map_err(|j| io::Error::other(j.to_string()))
                {
                    tracing::warn!(path = %partial.display(), error = %rm, "could not remove partial backup");
                }
                Err(e)
            }
        }
    }

    async fn fill(
        &self,
        id: &str,
        partial: &Path,
        request: &BackupRequest,
        created_at: DateTime<Utc>,
        progress: Arc<dyn Progress>,
    ) -> Result<BackupManifest> {
        // 0: nothing failed yet; 1: the dump failed first; 2: the filestore did.
        let failed_first = Arc::new(AtomicU8::new(0));
        let dump_path = partial.join(DUMP_FILE);
        let dump = async {
            let r = self
                .dump(
                    request,
                    dump_path.clone(),
                    progress.clone(),
                    failed_first.clone(),
                )
                .await;
            if r.is_err() {
                let _ = failed_first.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst);
            }
            r
        };
        let filestore = async {
            let Some(data_dir) = &request.data_dir else {
                return Ok(None);
            };
            let src = data_dir.join("filestore").join(&request.connection.dbname);
            let dest = partial.join(FILESTORE_FILE);
            let storage = self.storage.clone();
            let progress = progress.clone();
            let flag = failed_first.clone();
            let r = tokio::task::spawn_blocking(move || {
                archive_filestore(&*storage, &src, &dest, &*progress, &flag)
            })
            .await
            .map_err(Error::task)
            .and_then(|r| r);
            if r.is_err() {
                let _ = failed_first.compare_exchange(0, 2, Ordering::SeqCst, Ordering::SeqCst);
            }
            r.map(Some)
        };
        let (dump, filestore) = tokio::join!(dump, filestore);
        let (database_dump, filestore) = match (dump, filestore) {
            (Ok(d), Ok(f)) => (d, f),
            (Err(e), Ok(_)) | (Ok(_), Err(e)) => return Err(e),
            (Err(d), Err(f)) => {
                return Err(if failed_first.load(Ordering::SeqCst) == 2 {
                    f
                } else {
                    d
                });
            }
        };

        progress.update(ProgressEvent {
            phase: Phase::VerifyDump,
            done: 0,
            total: Some(database_dump.size),
        });
        let mut list = tokio::process::Command::new(request.tools.program("pg_restore"));
        list.arg("--list").arg(&dump_path).kill_on_drop(true);
        let listing = pg::run(list, "pg_restore").await?;
        let toc = TocSummary::parse(&listing);
        progress.update(ProgressEvent {
            phase: Phase::VerifyDump,
            done: database_dump.size,
            total: Some(database_dump.size),
        });

        let manifest = BackupManifest {
            format: MANIFEST_FORMAT,
            id: id.to_owned(),
            database: request.connection.dbname.clone(),
            stack: request.stack.clone(),
            release: request.release.clone(),
            git_sha: request.git_sha.clone(),
            created_at,
            completed_at: Utc::now().trunc_subsecs(3),
            database_dump,
            filestore,
            toc,
        };
        let storage = self.storage.clone();
        let root = self.root.clone();
        let partial = partial.to_owned();
        let m = manifest.clone();
        tokio::task::spawn_blocking(move || publish(&*storage, &root, &partial, &m))
            .await
            .map_err(Error::task)??;
        Ok(manifest)
    }

    async fn dump(
        &self,
        request: &BackupRequest,
        path: PathBuf,
        progress: Arc<dyn Progress>,
        failed_first: Arc<AtomicU8>,
    ) -> Result<ArtifactInfo> {
        let mut cmd = request
            .connection
            .command(&request.tools.program("pg_dump"));
        cmd.arg("--format=custom")
            .arg("--no-password")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| Error::CommandSpawn {
            program: "pg_dump".to_owned(),
            cause: e,
        })?;
        let stderr = child.stderr.take();
        let stderr_task = tokio::spawn(async move {
            match stderr {
                Some(s) => pg::read_tail(s).await,
                None => String::new(),
            }
        });
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
        let storage = self.storage.clone();
        let writer_path = path.clone();
        let writer = tokio::task::spawn_blocking(move || -> Result<(u64, String)> {
            let p = &writer_path;
            let mut out = storage.create(p).map_err(|e| Error::io("create", p, e))?;
            let mut hasher = Sha256::new();
            let mut done = 0u64;
            while let Some(chunk) = rx.blocking_recv() {
                out.write_all(&chunk)
                    .map_err(|e| Error::io("write", p, e))?;
                hasher.update(&chunk);
                done += chunk.len() as u64;
                progress.update(ProgressEvent {
                    phase: Phase::Dump,
                    done,
                    total: None,
                });
            }
            out.finish().map_err(|e| Error::io("sync", p, e))?;
            Ok((done, hex(&hasher.finalize())))
        });

        let mut read_error = None;
        if let Some(mut stdout) = child.stdout.take() {
            let mut buf = vec![0u8; CHUNK];
            loop {
                if failed_first.load(Ordering::SeqCst) != 0 {
                    break;
                }
                match stdout.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => {
                        let chunk = buf.get(..n).unwrap_or_default().to_vec();
                        if tx.send(chunk).await.is_err() {
                            break; // the writer failed; its error is returned below
                        }
                    }
                    Err(e) => {
                        read_error = Some(Error::io("read pg_dump output", &path, e));
                        break;
                    }
                }
            }
        }
        drop(tx);
        let written = writer.await.map_err(Error::task)?;
        let aborted =
            written.is_err() || read_error.is_some() || failed_first.load(Ordering::SeqCst) != 0;
        if aborted {
            // Best effort: it may have exited already.
            let _ = child.start_kill();
        }
        let status = child.wait().await.map_err(|e| Error::CommandSpawn {
            program: "pg_dump".to_owned(),
            cause: e,
        })?;
        let stderr = stderr_task.await.unwrap_or_default();
        if let Some(e) = read_error {
            return Err(e);
        }
        let (size, sha256) = written?;
        if failed_first.load(Ordering::SeqCst) != 0 {
            return Err(Error::Task {
                reason: "dump stopped because the filestore archive failed".to_owned(),
            });
        }
        if !status.success() {
            return Err(Error::CommandFailed {
                program: "pg_dump".to_owned(),
                code: status.code(),
                stderr,
            });
        }
        Ok(ArtifactInfo {
            file: DUMP_FILE.to_owned(),
            size,
            sha256,
            files: None,
        })
    }

    /// Every directory of the store with its state, sorted by id.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the store's directory cannot be listed.
    pub fn scan(&self) -> Result<Vec<BackupEntry>> {
        let entries =
            std::fs::read_dir(&self.root).map_err(|e| Error::io("list", &self.root, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", &self.root, e))?;
            let path = entry.path();
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let modified = newest_mtime(&path);
            let (id, state) = if let Some(id) = name.strip_suffix(PARTIAL_SUFFIX) {
                (id.to_owned(), BackupState::Partial)
            } else if let Some(id) = name.strip_prefix(REMOVING_PREFIX) {
                (id.to_owned(), BackupState::Removing)
            } else if name.starts_with('.') {
                continue;
            } else {
                let state = match load_complete(&path, &name) {
                    Ok(m) => BackupState::Complete(Box::new(m)),
                    Err(reason) => BackupState::Invalid { reason },
                };
                (name, state)
            };
            out.push(BackupEntry {
                id,
                path,
                modified,
                state,
            });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// The complete backups (manifest valid, artifacts present with their recorded
    /// sizes), oldest first. Partial and invalid directories are never offered.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the store's directory cannot be listed.
    pub fn list(&self) -> Result<Vec<BackupManifest>> {
        let mut out: Vec<BackupManifest> = self
            .scan()?
            .into_iter()
            .filter_map(|e| match e.state {
                BackupState::Complete(m) => Some(*m),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// The manifest of a complete backup (sizes checked, checksums not recomputed).
    ///
    /// # Errors
    ///
    /// [`Error::BackupNotFound`] when no complete backup has this id (a `.partial` one
    /// is not found either); [`Error::BackupInvalid`] when its directory exists but is
    /// not a valid backup.
    pub fn get(&self, id: &str) -> Result<BackupManifest> {
        names::check("backup id", id, MAX_ID_LEN)?;
        let path = self.root.join(id);
        if !path.is_dir() {
            return Err(Error::BackupNotFound { id: id.to_owned() });
        }
        load_complete(&path, id).map_err(|reason| Error::BackupInvalid {
            id: id.to_owned(),
            reason,
        })
    }

    /// Recomputes the SHA-256 of every artifact of a backup and compares it with the
    /// manifest. Returns the manifest when everything matches.
    ///
    /// # Errors
    ///
    /// As [`BackupStore::get`]; [`Error::ChecksumMismatch`] naming the first artifact
    /// that differs; [`Error::Io`] when an artifact cannot be read.
    pub async fn verify(&self, id: &str, progress: Arc<dyn Progress>) -> Result<BackupManifest> {
        let manifest = self.get(id)?;
        let dir = self.root.join(id);
        let m = manifest.clone();
        tokio::task::spawn_blocking(move || verify_checksums(&dir, &m, &*progress))
            .await
            .map_err(Error::task)??;
        Ok(manifest)
    }

    /// What [`BackupStore::prune`] would keep and remove, without removing anything.
    ///
    /// # Errors
    ///
    /// As [`BackupStore::list`].
    pub fn plan_prune(
        &self,
        policy: &RetentionPolicy,
        protected: &[String],
    ) -> Result<Vec<RetentionDecision>> {
        Ok(plan_retention(&self.list()?, policy, protected))
    }

    /// Removes the complete backups that `policy` does not keep. `protected` ids (for
    /// example [`History::protected_backups`](crate::History::protected_backups)) and
    /// the newest backup of each database are always kept. A removed backup is first
    /// renamed to a hidden `.removing-<id>` directory, so it stops being offered
    /// atomically even if the removal is interrupted.
    ///
    /// # Errors
    ///
    /// As [`BackupStore::list`]; [`Error::Io`] when a removal fails (backups removed
    /// before it stay removed).
    pub fn prune(&self, policy: &RetentionPolicy, protected: &[String]) -> Result<PruneReport> {
        let decisions = self.plan_prune(policy, protected)?;
        let mut removed = Vec::new();
        for d in decisions.iter().filter(|d| !d.is_kept()) {
            let from = self.root.join(&d.id);
            let to = self.root.join(format!("{REMOVING_PREFIX}{}", d.id));
            std::fs::rename(&from, &to).map_err(|e| Error::io("rename", &from, e))?;
            std::fs::remove_dir_all(&to).map_err(|e| Error::io("remove", &to, e))?;
            tracing::info!(backup = %d.id, "backup removed by retention");
            removed.push(d.id.clone());
        }
        Ok(PruneReport { decisions, removed })
    }

    /// The directories [`BackupStore::remove_stale_partials`] would remove: `.partial`
    /// directories last modified more than `older_than` before `now` (left by killed
    /// backups), and leftovers of interrupted prunes. A dry run lists these.
    ///
    /// # Errors
    ///
    /// As [`BackupStore::scan`].
    pub fn stale_partials(&self, older_than: Duration, now: SystemTime) -> Result<Vec<PathBuf>> {
        Ok(self
            .scan()?
            .into_iter()
            .filter(|entry| match entry.state {
                BackupState::Removing => true,
                BackupState::Partial => entry
                    .modified
                    .is_some_and(|m| now.duration_since(m).is_ok_and(|age| age > older_than)),
                _ => false,
            })
            .map(|entry| entry.path)
            .collect())
    }

    /// Removes the [stale partials](BackupStore::stale_partials). Returns the
    /// directories removed. Choose `older_than` well above the longest backup.
    ///
    /// # Errors
    ///
    /// As [`BackupStore::scan`]; [`Error::Io`] when a removal fails.
    pub fn remove_stale_partials(
        &self,
        older_than: Duration,
        now: SystemTime,
    ) -> Result<Vec<PathBuf>> {
        let stale = self.stale_partials(older_than, now)?;
        for path in &stale {
            std::fs::remove_dir_all(path).map_err(|e| Error::io("remove", path, e))?;
            tracing::info!(path = %path.display(), "stale partial backup removed");
        }
        Ok(stale)
    }
}

/// A size for people: `512 B`, `1.5 KiB`, `3.2 GiB` (binary units, one decimal).
///
/// ```
/// use deploy_rollback::backup::human_size;
///
/// assert_eq!(human_size(512), "512 B");
/// assert_eq!(human_size(1536), "1.5 KiB");
/// assert_eq!(human_size(3 * 1024 * 1024 * 1024), "3.0 GiB");
/// ```
#[must_use]
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sync_dir(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync directory", path, e))
}

/// Writes the manifest last, syncs, and renames `<id>.partial` to `<id>`.
fn publish(
    storage: &dyn ArtifactStorage,
    root: &Path,
    partial: &Path,
    manifest: &BackupManifest,
) -> Result<()> {
    let path = partial.join(MANIFEST_FILE);
    let json = serde_json::to_vec_pretty(manifest).map_err(|e| Error::InvalidInput {
        what: "backup manifest",
        reason: e.to_string(),
    })?;
    let mut out = storage
        .create(&path)
        .map_err(|e| Error::io("create", &path, e))?;
    out.write_all(&json)
        .map_err(|e| Error::io("write", &path, e))?;
    out.finish().map_err(|e| Error::io("sync", &path, e))?;
    sync_dir(partial)?;
    let done = root.join(&manifest.id);
    std::fs::rename(partial, &done).map_err(|e| Error::io("rename", partial, e))?;
    sync_dir(root)
}

/// Loads and checks a complete backup's manifest; `Err` carries the reason it is not.
fn load_complete(dir: &Path, id: &str) -> std::result::Result<BackupManifest, String> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {MANIFEST_FILE}: {e}"))?;
    let manifest: BackupManifest =
        serde_json::from_slice(&bytes).map_err(|e| format!("bad {MANIFEST_FILE}: {e}"))?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(format!("unknown manifest format {}", manifest.format));
    }
    if manifest.id != id {
        return Err(format!("manifest names backup {:?}", manifest.id));
    }
    for a in manifest.artifacts() {
        if a.file.contains('/') || a.file.starts_with('.') {
            return Err(format!("bad artifact file name {:?}", a.file));
        }
        let size = std::fs::metadata(dir.join(&a.file))
            .map_err(|e| format!("artifact {}: {e}", a.file))?
            .len();
        if size != a.size {
            return Err(format!(
                "artifact {} is {size} bytes, manifest says {}",
                a.file, a.size
            ));
        }
    }
    Ok(manifest)
}

fn verify_checksums(dir: &Path, manifest: &BackupManifest, progress: &dyn Progress) -> Result<()> {
    let total = manifest.size();
    let mut done = 0u64;
    for a in manifest.artifacts() {
        let path = dir.join(&a.file);
        let mut file = File::open(&path).map_err(|e| Error::io("open", &path, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut size = 0u64;
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| Error::io("read", &path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(buf.get(..n).unwrap_or_default());
            size += n as u64;
            done += n as u64;
            progress.update(ProgressEvent {
                phase: Phase::Checksum,
                done,
                total: Some(total),
            });
        }
        let actual = hex(&hasher.finalize());
        if actual != a.sha256 || size != a.size {
            return Err(Error::ChecksumMismatch {
                id: manifest.id.clone(),
                artifact: a.file.clone(),
                expected: a.sha256.clone(),
                actual,
                expected_size: a.size,
                actual_size: size,
            });
        }
    }
    Ok(())
}

fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if let Ok(m) = entry.metadata().and_then(|m| m.modified()) {
                newest = Some(newest.map_or(m, |n| n.max(m)));
            }
        }
    }
    newest
}

/// Counts bytes read and reports progress every MiB.
pub(crate) struct ProgressReader<'a, R> {
    pub(crate) inner: R,
    pub(crate) done: &'a mut u64,
    pub(crate) reported: u64,
    pub(crate) total: u64,
    pub(crate) phase: Phase,
    pub(crate) progress: &'a dyn Progress,
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        *self.done += n as u64;
        if *self.done - self.reported >= 1024 * 1024 {
            self.reported = *self.done;
            self.progress.update(ProgressEvent {
                phase: self.phase,
                done: *self.done,
                total: Some(self.total),
            });
        }
        Ok(n)
    }
}

/// Every path under `root` (relative, sorted, directories before their contents).
fn walk(root: &Path) -> io::Result<Vec<(PathBuf, std::fs::Metadata)>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut children: Vec<_> = std::fs::read_dir(root.join(&rel))?
            .collect::<io::Result<Vec<_>>>()?
            .into_iter()
            .map(|e| rel.join(e.file_name()))
            .collect();
        children.sort();
        let mut dirs = Vec::new();
        for child in children {
            let meta = match std::fs::symlink_metadata(root.join(&child)) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if meta.is_dir() {
                dirs.push(child.clone());
            }
            out.push((child, meta));
        }
        stack.extend(dirs.into_iter().rev());
    }
    Ok(out)
}

/// Archives `src` (the database's filestore) into `dest` as tar.gz, streamed.
/// A missing `src` gives an empty archive (a database without attachments).
fn archive_filestore(
    storage: &dyn ArtifactStorage,
    src: &Path,
    dest: &Path,
    progress: &dyn Progress,
    failed_first: &AtomicU8,
) -> Result<ArtifactInfo> {
    let entries = if src.is_dir() {
        walk(src).map_err(|e| Error::io("list", src, e))?
    } else {
        tracing::warn!(path = %src.display(), "no filestore directory; archiving an empty filestore");
        Vec::new()
    };
    let total: u64 = entries
        .iter()
        .filter(|(_, m)| m.is_file())
        .map(|(_, m)| m.len())
        .sum();
    let out = storage
        .create(dest)
        .map_err(|e| Error::io("create", dest, e))?;
    let hashing = HashingWriter {
        inner: out,
        hasher: Sha256::new(),
        bytes: 0,
    };
    let gz = flate2::write::GzEncoder::new(hashing, flate2::Compression::new(1));
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    let mut done = 0u64;
    let mut files = 0u64;
    let werr = |e: io::Error| Error::io("write", dest, e);
    for (rel, meta) in entries {
        if failed_first.load(Ordering::SeqCst) != 0 {
            return Err(Error::Task {
                reason: "filestore archive stopped because the dump failed".to_owned(),
            });
        }
        let path = src.join(&rel);
        if meta.is_dir() {
            tar.append_dir(&rel, &path).map_err(werr)?;
        } else if meta.is_file() {
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // removed meanwhile
                Err(e) => return Err(Error::io("open", &path, e)),
            };
            let mut header = tar::Header::new_gnu();
            header.set_metadata(&meta);
            let reader = ProgressReader {
                inner: file.take(meta.len()),
                done: &mut done,
                reported: 0,
                total,
                phase: Phase::Filestore,
                progress,
            };
            tar.append_data(&mut header, &rel, reader).map_err(werr)?;
            files += 1;
        } else {
            tar.append_path_with_name(&path, &rel).map_err(werr)?;
        }
    }
    let gz = tar.into_inner().map_err(werr)?;
    let hashing = gz.finish().map_err(werr)?;
    let HashingWriter {
        inner,
        hasher,
        bytes,
    } = hashing;
    inner.finish().map_err(|e| Error::io("sync", dest, e))?;
    progress.update(ProgressEvent {
        phase: Phase::Filestore,
        done,
        total: Some(total),
    });
    Ok(ArtifactInfo {
        file: FILESTORE_FILE.to_owned(),
        size: bytes,
        sha256: hex(&hasher.finalize()),
        files: Some(files),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toc_parse() {
        let listing = ";\n; Archive created at 2025-03-01 10:00:00 UTC\n;     dbname: x\n;     Dumped from database version: 15.18 (Debian 15.18-0+deb12u1)\n;     Dumped by pg_dump version: 15.18 (Debian 15.18-0+deb12u1)\n;\n\
215; 1259 16390 TABLE public res_partner postgres\n\
3340; 0 16390 TABLE DATA public res_partner postgres\n\
3190; 2606 16400 CONSTRAINT public res_partner res_partner_pkey postgres\n";
        let toc = TocSummary::parse(listing);
        assert_eq!((toc.entries, toc.tables, toc.table_data), (3, 1, 1));
        assert_eq!(
            toc.dumped_by.as_deref(),
            Some("15.18 (Debian 15.18-0+deb12u1)")
        );
    }
}
