//! The deployment history: one append-only JSON Lines file per stack.
//!
//! # On disk
//!
//! `<dir>/<stack>.jsonl`, one [`DeploymentRecord`] per line, in the order they were
//! appended. Every append takes an exclusive advisory lock (`flock` through
//! `fd-lock`) on the file, writes the whole line with one `write` on a descriptor
//! opened with `O_APPEND`, and `fsync`s it. Readers take a shared lock.
//!
//! # Crashes
//!
//! A writer killed in the middle of a write can leave a last line without its
//! terminating `\n` (a *torn tail*). Readers ignore it, so it never hides or corrupts
//! an earlier record. The next append, holding the exclusive lock (so no writer is
//! mid-write), cuts the file back to its last `\n` before writing, so the new record
//! starts on a line of its own; the cut bytes are logged with `tracing::warn!`.
//! A complete line that is not a valid record (edited by hand, disk corruption) is
//! skipped with a warning and reported by [`History::check`].

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

pub use deploy_core::DeployStatus;
use deploy_core::DeploymentOutcome;

use crate::environment::Environment;
use crate::error::{Error, Result};
use crate::names;

/// Longest accepted stack name.
const MAX_STACK_LEN: usize = 100;

/// One line of the deployment history: a [`DeploymentOutcome`] and when it was
/// recorded.
///
/// Serialized as one flat JSON object per line: the timestamp (UTC RFC 3339 with
/// milliseconds) beside the outcome's fields (its duration as `duration_ms`). No field
/// may hold a secret. The outcome's fields read through the record (`record.release`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeploymentRecord {
    /// When this happened (UTC).
    #[serde(with = "crate::serde_util::rfc3339")]
    #[schemars(with = "chrono::DateTime<chrono::Utc>")]
    pub timestamp: DateTime<Utc>,
    /// What happened.
    #[serde(flatten)]
    pub outcome: DeploymentOutcome,
}

impl std::ops::Deref for DeploymentRecord {
    type Target = DeploymentOutcome;

    fn deref(&self) -> &DeploymentOutcome {
        &self.outcome
    }
}

impl std::ops::DerefMut for DeploymentRecord {
    fn deref_mut(&mut self) -> &mut DeploymentOutcome {
        &mut self.outcome
    }
}

impl DeploymentRecord {
    /// A record stamped now, without duration, gate summary, backup or git sha.
    #[must_use]
    pub fn new(
        stack: impl Into<String>,
        release: impl Into<String>,
        environment: Environment,
        status: DeployStatus,
        operator: impl Into<String>,
    ) -> Self {
        Self::from_outcome(
            DeploymentOutcome::new(stack, release, environment, status).with_operator(operator),
            Utc::now(),
        )
    }

    /// The record of a [`DeploymentOutcome`] reported through
    /// [`DeploymentRecorder`](deploy_core::DeploymentRecorder), stamped `timestamp`.
    /// An empty operator becomes `unknown`.
    #[must_use]
    pub fn from_outcome(mut outcome: DeploymentOutcome, timestamp: DateTime<Utc>) -> Self {
        if outcome.operator.trim().is_empty() {
            "unknown".clone_into(&mut outcome.operator);
        }
        DeploymentRecord { timestamp, outcome }
    }

    /// Sets the timestamp.
    #[must_use]
    pub fn at(mut self, timestamp: DateTime<Utc>) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// Sets the duration.
    #[must_use]
    pub fn with_duration(mut self, duration: Duration) -> Self {
        self.outcome.duration = Some(duration);
        self
    }

    /// Sets the gate summary.
    #[must_use]
    pub fn with_gate_summary(mut self, summary: serde_json::Value) -> Self {
        self.outcome.gate_summary = Some(summary);
        self
    }

    /// Sets the pre-deploy backup id.
    #[must_use]
    pub fn with_backup(mut self, backup_id: impl Into<String>) -> Self {
        self.outcome.backup_id = Some(backup_id.into());
        self
    }

    /// Sets the git sha.
    #[must_use]
    pub fn with_git_sha(mut self, sha: impl Into<String>) -> Self {
        self.outcome.git_sha = Some(sha.into());
        self
    }

    /// Checks what the file format and the plain log need: a valid stack name, and
    /// release and operator without `|`, line breaks or other control characters.
    fn validate(&self) -> Result<()> {
        names::check("stack", &self.stack, MAX_STACK_LEN)?;
        check_label("release", &self.release)?;
        check_label("operator", &self.operator)
    }
}

/// Checks an operator name as the history stores it: non-empty, without `|`, line
/// breaks or other control characters. A binary checks `--operator` with it before it
/// starts anything.
///
/// # Errors
///
/// [`Error::InvalidInput`] naming the rule.
pub fn check_operator(operator: &str) -> Result<()> {
    check_label("operator", operator)
}

fn check_label(what: &'static str, value: &str) -> Result<()> {
    if value.trim().is_empty() || value.contains('|') || value.chars().any(char::is_control) {
        return Err(Error::InvalidInput {
            what,
            reason: format!("{value:?} must be non-empty, without '|' or control characters"),
        });
    }
    Ok(())
}

/// Which records [`History::list`] returns. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryFilter {
    /// Only this stack.
    pub stack: Option<String>,
    /// Only this environment.
    pub environment: Option<Environment>,
    /// Only this status.
    pub status: Option<DeployStatus>,
    /// Only records at or after this time.
    pub since: Option<DateTime<Utc>>,
}

impl HistoryFilter {
    fn matches(&self, r: &DeploymentRecord) -> bool {
        self.stack.as_ref().is_none_or(|s| *s == r.stack)
            && self.environment.is_none_or(|e| e == r.environment)
            && self.status.is_none_or(|s| s == r.status)
            && self.since.is_none_or(|t| r.timestamp >= t)
    }
}

/// What [`History::check`] found in one stack's file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct HistoryCheck {
    /// Valid records.
    pub records: usize,
    /// Bytes after the last `\n` (a write cut short by a crash); 0 when none.
    pub torn_tail_bytes: u64,
    /// 1-based numbers of complete lines that are not valid records.
    pub invalid_lines: Vec<usize>,
}

/// One deployment, assembled from its history records (see [`group_deployments`]).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Deployment {
    /// The stack.
    pub stack: String,
    /// The environment.
    pub environment: Environment,
    /// The release.
    pub release: String,
    /// When it started, if a `started` record exists.
    pub started_at: Option<DateTime<Utc>>,
    /// When it went live, if a `succeeded` record exists.
    pub succeeded_at: Option<DateTime<Utc>>,
    /// When it failed, if a `failed` record exists.
    pub failed_at: Option<DateTime<Utc>>,
    /// When it was rolled back, if a `rolled_back` record exists.
    pub rolled_back_at: Option<DateTime<Utc>>,
    /// When a later operation found it unfinished, if an `interrupted` record exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted_at: Option<DateTime<Utc>>,
    /// The `succeeded` record itself (carries the git sha).
    pub succeeded: Option<DeploymentRecord>,
    /// The pre-deploy backup named by any of its records.
    pub backup_id: Option<String>,
}

impl Deployment {
    /// The outcome so far: `rolled_back` beats `failed` beats `interrupted` beats
    /// `succeeded`; `started` means no outcome is recorded yet.
    #[must_use]
    pub fn outcome(&self) -> DeployStatus {
        if self.rolled_back_at.is_some() {
            DeployStatus::RolledBack
        } else if self.failed_at.is_some() {
            DeployStatus::Failed
        } else if self.interrupted_at.is_some() {
            DeployStatus::Interrupted
        } else if self.succeeded_at.is_some() {
            DeployStatus::Succeeded
        } else {
            DeployStatus::Started
        }
    }

    fn last_at(&self) -> Option<DateTime<Utc>> {
        [
            self.started_at,
            self.succeeded_at,
            self.failed_at,
            self.rolled_back_at,
            self.interrupted_at,
        ]
        .into_iter()
        .flatten()
        .max()
    }
}

/// Groups records into deployments.
///
/// Records are taken in timestamp order (stable, so file order breaks ties). Within a
/// (stack, environment, release), a `started` record opens a new deployment; a
/// `succeeded`, `failed` or `rolled_back` record joins the latest open deployment that
/// has no such record yet, or opens one of its own (as imported logs without `started`
/// lines do); an `interrupted` record joins the latest one that has no outcome at all.
#[must_use]
pub fn group_deployments(records: &[DeploymentRecord]) -> Vec<Deployment> {
    let mut sorted: Vec<&DeploymentRecord> = records.iter().collect();
    sorted.sort_by_key(|r| r.timestamp);
    let mut out: Vec<Deployment> = Vec::new();
    let mut open: HashMap<(&str, Environment, &str), usize> = HashMap::new();
    for r in sorted {
        let key = (r.stack.as_str(), r.environment, r.release.as_str());
        let current = open.get(&key).copied().filter(|&i| {
            out.get(i).is_some_and(|d| match r.status {
                DeployStatus::Started => false,
                DeployStatus::Succeeded => {
                    d.succeeded_at.is_none() && d.failed_at.is_none() && d.rolled_back_at.is_none()
                }
                DeployStatus::Failed => d.failed_at.is_none() && d.rolled_back_at.is_none(),
                DeployStatus::RolledBack => d.rolled_back_at.is_none(),
                DeployStatus::Interrupted => d.outcome() == DeployStatus::Started,
            })
        });
        let index = match current {
            Some(i) => i,
            None => {
                out.push(Deployment {
                    stack: r.stack.clone(),
                    environment: r.environment,
                    release: r.release.clone(),
                    started_at: None,
                    succeeded_at: None,
                    failed_at: None,
                    rolled_back_at: None,
                    interrupted_at: None,
                    succeeded: None,
                    backup_id: None,
                });
                open.insert(key, out.len() - 1);
                out.len() - 1
            }
        };
        if let Some(d) = out.get_mut(index) {
            if d.backup_id.is_none() {
                d.backup_id.clone_from(&r.backup_id);
            }
            match r.status {
                DeployStatus::Started => d.started_at = Some(r.timestamp),
                DeployStatus::Succeeded => {
                    d.succeeded_at = Some(r.timestamp);
                    d.succeeded = Some(r.clone());
                }
                DeployStatus::Failed => d.failed_at = Some(r.timestamp),
                DeployStatus::RolledBack => d.rolled_back_at = Some(r.timestamp),
                DeployStatus::Interrupted => d.interrupted_at = Some(r.timestamp),
            }
        }
    }
    out
}

/// Figures derived from a history (see [`figures`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Figures {
    /// Deployments seen (see [`group_deployments`]).
    pub deployments: usize,
    /// Deployments whose outcome is `succeeded`.
    pub succeeded: usize,
    /// Deployments whose outcome is `failed`.
    pub failed: usize,
    /// Deployments whose outcome is `rolled_back`.
    pub rolled_back: usize,
    /// Deployments whose process died before they finished (`interrupted`).
    #[serde(default)]
    pub interrupted: usize,
    /// Deployments with no outcome yet.
    pub in_progress: usize,
    /// `succeeded / (succeeded + failed + rolled_back + interrupted)`; `None` when no
    /// deployment has an outcome.
    pub success_rate: Option<f64>,
    /// Mean time from the trouble to the `rolled_back` record: from the `failed` record
    /// when there is one, else from the `started` record. `None` when nothing was
    /// rolled back (or no start is known).
    #[serde(
        rename = "mean_time_to_rollback_ms",
        with = "crate::serde_util::duration_ms"
    )]
    #[schemars(with = "Option<u64>")]
    pub mean_time_to_rollback: Option<Duration>,
    /// Mean time from `started` to `succeeded` (a `succeeded` record without a
    /// `started` one counts with its own `duration_ms`, when set).
    #[serde(
        rename = "mean_start_to_live_ms",
        with = "crate::serde_util::duration_ms"
    )]
    #[schemars(with = "Option<u64>")]
    pub mean_start_to_live: Option<Duration>,
}

/// Computes success rate, mean time to roll back and mean time from start to live.
#[must_use]
pub fn figures(records: &[DeploymentRecord]) -> Figures {
    let deployments = group_deployments(records);
    let mut f = Figures {
        deployments: deployments.len(),
        ..Figures::default()
    };
    let mut to_rollback = Vec::new();
    let mut to_live = Vec::new();
    for d in &deployments {
        match d.outcome() {
            DeployStatus::Succeeded => f.succeeded += 1,
            DeployStatus::Failed => f.failed += 1,
            DeployStatus::RolledBack => f.rolled_back += 1,
            DeployStatus::Interrupted => f.interrupted += 1,
            DeployStatus::Started => f.in_progress += 1,
        }
        if let Some(rb) = d.rolled_back_at {
            if let Some(from) = d.failed_at.or(d.started_at) {
                to_rollback.push(rb - from);
            }
        }
        match (d.started_at, d.succeeded_at) {
            (Some(start), Some(live)) => to_live.push(live - start),
            (None, Some(_)) => {
                if let Some(dur) = d.succeeded.as_ref().and_then(|r| r.duration) {
                    if let Ok(dur) = chrono::TimeDelta::from_std(dur) {
                        to_live.push(dur);
                    }
                }
            }
            _ => {}
        }
    }
    let decided = f.succeeded + f.failed + f.rolled_back + f.interrupted;
    if decided > 0 {
        f.success_rate = Some(f.succeeded as f64 / decided as f64);
    }
    f.mean_time_to_rollback = mean(&to_rollback);
    f.mean_start_to_live = mean(&to_live);
    f
}

fn mean(deltas: &[chrono::TimeDelta]) -> Option<Duration> {
    if deltas.is_empty() {
        return None;
    }
    let total_ms: i128 = deltas
        .iter()
        .map(|d| i128::from(d.num_milliseconds().max(0)))
        .sum();
    let mean_ms = total_ms / deltas.len() as i128;
    u64::try_from(mean_ms).ok().map(Duration::from_millis)
}

/// The history store: a directory with one `<stack>.jsonl` file per stack.
///
/// Cheap to clone; holds no open file between calls. Every method does blocking file
/// I/O (small files, one `fsync` per append): call it from `spawn_blocking` in async
/// code that must not stall.
#[derive(Debug, Clone)]
pub struct History {
    dir: PathBuf,
}

impl History {
    /// Opens (and creates when missing) the history directory.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the directory cannot be created.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        Ok(History { dir })
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds a stack's history.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] when the stack name is not a safe file name.
    pub fn path_for(&self, stack: &str) -> Result<PathBuf> {
        names::check("stack", stack, MAX_STACK_LEN)?;
        Ok(self.dir.join(format!("{stack}.jsonl")))
    }

    /// Appends one record to its stack's file (see the module docs for the locking
    /// and crash guarantees). Returns once the line is on disk (`fsync`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] / [`Error::InvalidInput`] for a record that cannot be
    /// stored (bad stack name, `|` or line breaks in release or operator);
    /// [`Error::Io`] when the file cannot be opened, locked, repaired or written.
    pub fn append(&self, record: &DeploymentRecord) -> Result<()> {
        record.validate()?;
        let path = self.path_for(&record.stack)?;
        let mut line = serde_json::to_vec(record).map_err(|e| Error::InvalidInput {
            what: "history record",
            reason: e.to_string(),
        })?;
        line.push(b'\n');
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        let mut lock = fd_lock::RwLock::new(file);
        let mut guard = lock.write().map_err(|e| Error::io("lock", &path, e))?;
        let file: &mut File = &mut guard;
        repair_torn_tail(file, &path)?;
        // One write of the whole line; `write_all` only loops on a short write, which
        // the exclusive lock keeps from interleaving with other writers.
        file.write_all(&line)
            .map_err(|e| Error::io("write", &path, e))?;
        file.sync_data().map_err(|e| Error::io("fsync", &path, e))?;
        tracing::debug!(stack = %record.stack, status = %record.status, release = %record.release, "history record appended");
        Ok(())
    }

    /// Every valid record of one stack, in file order. A torn tail and invalid lines
    /// are skipped (see [`History::check`]). A stack without a file has no records.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] for a bad stack name; [`Error::Io`] when the file
    /// cannot be read.
    pub fn read_stack(&self, stack: &str) -> Result<Vec<DeploymentRecord>> {
        Ok(self.scan(stack)?.0)
    }

    /// Reports the state of one stack's file: valid records, torn tail, invalid lines.
    ///
    /// # Errors
    ///
    /// As [`History::read_stack`].
    pub fn check(&self, stack: &str) -> Result<HistoryCheck> {
        Ok(self.scan(stack)?.1)
    }

    fn scan(&self, stack: &str) -> Result<(Vec<DeploymentRecord>, HistoryCheck)> {
        let path = self.path_for(stack)?;
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Vec::new(), HistoryCheck::default()))
            }
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        let lock = fd_lock::RwLock::new(file);
        let guard = lock.read().map_err(|e| Error::io("lock", &path, e))?;
        let mut bytes = Vec::new();
        (&*guard)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("read", &path, e))?;
        drop(guard);

        let mut check = HistoryCheck::default();
        let complete = match bytes.iter().rposition(|&b| b == b'\n') {
            Some(last) => {
                check.torn_tail_bytes = (bytes.len() - last - 1) as u64;
                bytes.get(..=last).unwrap_or_default()
            }
            None => {
                check.torn_tail_bytes = bytes.len() as u64;
                &[]
            }
        };
        let mut records = Vec::new();
        for (i, line) in complete.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<DeploymentRecord>(line) {
                Ok(r) => records.push(r),
                Err(e) => {
                    tracing::warn!(path = %path.display(), line = i + 1, error = %e, "skipping invalid history line");
                    check.invalid_lines.push(i + 1);
                }
            }
        }
        if check.torn_tail_bytes > 0 {
            tracing::warn!(path = %path.display(), bytes = check.torn_tail_bytes, "ignoring torn last line of history");
        }
        check.records = records.len();
        Ok((records, check))
    }

    /// The stacks that have a history file, sorted.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the directory cannot be listed.
    pub fn stacks(&self) -> Result<Vec<String>> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::io("list", &self.dir, e))?;
        let mut stacks = BTreeSet::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", &self.dir, e))?;
            let name = entry.file_name();
            if let Some(stack) = name.to_str().and_then(|n| n.strip_suffix(".jsonl")) {
                if names::check("stack", stack, MAX_STACK_LEN).is_ok() {
                    stacks.insert(stack.to_owned());
                }
            }
        }
        Ok(stacks.into_iter().collect())
    }

    /// The records matching `filter`, across stacks, sorted by timestamp (stable).
    ///
    /// # Errors
    ///
    /// As [`History::read_stack`].
    pub fn list(&self, filter: &HistoryFilter) -> Result<Vec<DeploymentRecord>> {
        let stacks = match &filter.stack {
            Some(s) => vec![s.clone()],
            None => self.stacks()?,
        };
        let mut out = Vec::new();
        for stack in stacks {
            out.extend(
                self.read_stack(&stack)?
                    .into_iter()
                    .filter(|r| filter.matches(r)),
            );
        }
        out.sort_by_key(|r| r.timestamp);
        Ok(out)
    }

    /// The `succeeded` record of the latest deployment of `stack` in `environment`
    /// that went live and was not rolled back (nor marked failed afterwards).
    ///
    /// # Errors
    ///
    /// As [`History::read_stack`].
    pub fn last_good(
        &self,
        stack: &str,
        environment: Environment,
    ) -> Result<Option<DeploymentRecord>> {
        self.last_good_excluding(stack, environment, None)
    }

    /// Like [`History::last_good`], skipping deployments of `bad_release`: the release
    /// to go back to when `bad_release` is live and misbehaving.
    ///
    /// # Errors
    ///
    /// As [`History::read_stack`].
    pub fn previous_good(
        &self,
        stack: &str,
        environment: Environment,
        bad_release: &str,
    ) -> Result<Option<DeploymentRecord>> {
        self.last_good_excluding(stack, environment, Some(bad_release))
    }

    fn last_good_excluding(
        &self,
        stack: &str,
        environment: Environment,
        exclude: Option<&str>,
    ) -> Result<Option<DeploymentRecord>> {
        let records: Vec<_> = self
            .read_stack(stack)?
            .into_iter()
            .filter(|r| r.environment == environment)
            .collect();
        let good = group_deployments(&records)
            .into_iter()
            .filter(|d| d.outcome() == DeployStatus::Succeeded)
            .filter(|d| exclude.is_none_or(|bad| d.release != bad))
            .max_by_key(|d| d.last_at());
        Ok(good.and_then(|d| d.succeeded))
    }

    /// The backups that retention must keep: for every stack and environment, the
    /// pre-deploy backup of the last good deployment (the current release) and of the
    /// latest deployment (one in progress, or a failed one not yet rolled back).
    /// Pass them to [`BackupStore::prune`](crate::BackupStore::prune).
    ///
    /// # Errors
    ///
    /// As [`History::list`].
    pub fn protected_backups(&self) -> Result<Vec<String>> {
        let mut out = BTreeSet::new();
        for stack in self.stacks()? {
            let records = self.read_stack(&stack)?;
            for env in Environment::ALL {
                let of_env: Vec<_> = records
                    .iter()
                    .filter(|r| r.environment == env)
                    .cloned()
                    .collect();
                let deployments = group_deployments(&of_env);
                let latest = deployments.iter().max_by_key(|d| d.last_at());
                let good = deployments
                    .iter()
                    .filter(|d| d.outcome() == DeployStatus::Succeeded)
                    .max_by_key(|d| d.last_at());
                out.extend(
                    latest
                        .into_iter()
                        .chain(good)
                        .filter_map(|d| d.backup_id.clone()),
                );
            }
        }
        Ok(out.into_iter().collect())
    }

    /// The deployments of `stack` in `environment` that have a `started` record and no
    /// outcome, oldest first, as their `started` record's outcome (operator, backup and
    /// git sha kept, status still `started`).
    ///
    /// # Errors
    ///
    /// As [`History::read_stack`].
    pub fn unfinished(
        &self,
        stack: &str,
        environment: Environment,
    ) -> Result<Vec<DeploymentOutcome>> {
        let records: Vec<_> = self
            .read_stack(stack)?
            .into_iter()
            .filter(|r| r.environment == environment)
            .collect();
        let mut open: Vec<(DateTime<Utc>, DeploymentOutcome)> = Vec::new();
        for d in group_deployments(&records) {
            if d.outcome() != DeployStatus::Started {
                continue;
            }
            let Some(started_at) = d.started_at else {
                continue;
            };
            let started = records
                .iter()
                .find(|r| {
                    r.status == DeployStatus::Started
                        && r.timestamp == started_at
                        && r.release == d.release
                })
                .map(|r| r.outcome.clone());
            if let Some(outcome) = started {
                open.push((started_at, outcome));
            }
        }
        open.sort_by_key(|(at, _)| *at);
        Ok(open.into_iter().map(|(_, o)| o).collect())
    }

    /// Whether `release` ever went live in `stack` and `environment` and passed its
    /// gates: a deployment of it has a `succeeded` record.
    ///
    /// # Errors
    ///
    /// As [`History::read_stack`].
    pub fn has_passed(&self, stack: &str, environment: Environment, release: &str) -> Result<bool> {
        Ok(self.read_stack(stack)?.iter().any(|r| {
            r.environment == environment
                && r.release == release
                && r.status == DeployStatus::Succeeded
        }))
    }

    /// The latest record of `stack` in `environment`, whatever its status.
    ///
    /// # Errors
    ///
    /// As [`History::read_stack`].
    pub fn latest(
        &self,
        stack: &str,
        environment: Environment,
    ) -> Result<Option<DeploymentRecord>> {
        Ok(self
            .read_stack(stack)?
            .into_iter()
            .filter(|r| r.environment == environment)
            .max_by_key(|r| r.timestamp))
    }

    /// Figures over the records matching `filter` (see [`figures`]).
    ///
    /// # Errors
    ///
    /// As [`History::list`].
    pub fn figures(&self, filter: &HistoryFilter) -> Result<Figures> {
        Ok(figures(&self.list(filter)?))
    }

    /// Writes the records matching `filter` as a plain log (see [`to_plain_log`]).
    /// Returns the number of lines written.
    ///
    /// # Errors
    ///
    /// As [`History::list`]; [`Error::Io`] when `out` fails.
    pub fn export_plain(&self, filter: &HistoryFilter, out: &mut dyn Write) -> Result<usize> {
        let records = self.list(filter)?;
        out.write_all(to_plain_log(&records).as_bytes())
            .map_err(|e| Error::io("write", "plain log", e))?;
        Ok(records.len())
    }

    /// Imports a plain log (see [`parse_plain_log`]) by appending its records.
    /// A record already present (same timestamp to the second, stack, release,
    /// environment, status and operator) is skipped, so importing twice is harmless.
    /// Returns the number of records appended.
    ///
    /// # Errors
    ///
    /// [`Error::PlainLogParse`] for a bad line (nothing is appended then); the errors
    /// of [`History::append`].
    pub fn import_plain(&self, text: &str) -> Result<usize> {
        let records = parse_plain_log(text)?;
        let mut existing: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut appended = 0;
        for r in records {
            if !existing.contains_key(&r.stack) {
                let keys = self.read_stack(&r.stack)?.iter().map(plain_key).collect();
                existing.insert(r.stack.clone(), keys);
            }
            let key = plain_key(&r);
            let seen = existing
                .get_mut(&r.stack)
                .is_some_and(|keys| !keys.insert(key));
            if !seen {
                self.append(&r)?;
                appended += 1;
            }
        }
        Ok(appended)
    }
}

/// The file-backed history as the orchestrator's recorder: each outcome is stamped now
/// and appended (on tokio's blocking pool) with [`History::append`]'s guarantees.
#[async_trait::async_trait]
impl deploy_core::DeploymentRecorder for History {
    async fn record(
        &self,
        outcome: &DeploymentOutcome,
    ) -> std::result::Result<(), deploy_core::BoxError> {
        let record = DeploymentRecord::from_outcome(outcome.clone(), Utc::now());
        let history = self.clone();
        tokio::task::spawn_blocking(move || history.append(&record))
            .await
            .map_err(Error::task)??;
        Ok(())
    }

    async fn unfinished(
        &self,
        stack: &str,
        environment: Environment,
    ) -> std::result::Result<Vec<DeploymentOutcome>, deploy_core::BoxError> {
        let history = self.clone();
        let stack = stack.to_owned();
        let unfinished =
            tokio::task::spawn_blocking(move || history.unfinished(&stack, environment))
                .await
                .map_err(Error::task)??;
        Ok(unfinished)
    }

    async fn has_passed(
        &self,
        stack: &str,
        environment: Environment,
        release: &str,
    ) -> std::result::Result<Option<bool>, deploy_core::BoxError> {
        let history = self.clone();
        let (stack, release) = (stack.to_owned(), release.to_owned());
        let passed =
            tokio::task::spawn_blocking(move || history.has_passed(&stack, environment, &release))
                .await
                .map_err(Error::task)??;
        Ok(Some(passed))
    }

    async fn database_change(
        &self,
        stack: &str,
        environment: Environment,
        release: &str,
    ) -> std::result::Result<Option<deploy_core::DatabaseChange>, deploy_core::BoxError> {
        let history = self.clone();
        let (stack, release) = (stack.to_owned(), release.to_owned());
        let records = tokio::task::spawn_blocking(move || history.read_stack(&stack))
            .await
            .map_err(Error::task)??;
        Ok(records
            .iter()
            .filter(|r| {
                r.environment == environment
                    && r.release == release
                    && r.status == DeployStatus::Succeeded
            })
            .max_by_key(|r| r.timestamp)
            .and_then(|r| {
                deploy_core::DatabaseChange::from_stages(
                    &r.outcome.stages,
                    r.outcome.backup_id.as_deref(),
                )
            }))
    }
}

fn plain_key(r: &DeploymentRecord) -> String {
    format!(
        "{}|{}|{}|{}|{}|{}",
        r.timestamp.timestamp(),
        r.stack,
        r.release,
        r.environment,
        r.status,
        r.operator
    )
}

/// Cuts a torn tail (bytes after the last `\n`) off a file held under an exclusive lock.
fn repair_torn_tail(file: &mut File, path: &Path) -> Result<()> {
    let len = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))
        .and_then(|_| file.read_exact(&mut last))
        .map_err(|e| Error::io("read", path, e))?;
    if last[0] == b'\n' {
        return Ok(());
    }
    // Scan backwards for the last newline.
    let mut end = len;
    let mut keep = 0u64;
    let mut buf = vec![0u8; 8192];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = buf.get_mut(..(end - start) as usize).unwrap_or_default();
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(chunk))
            .map_err(|e| Error::io("read", path, e))?;
        if let Some(pos) = chunk.iter().rposition(|&b| b == b'\n') {
            keep = start + pos as u64 + 1;
            break;
        }
        end = start;
    }
    tracing::warn!(path = %path.display(), bytes = len - keep, "cutting a torn last line left by an interrupted write");
    file.set_len(keep)
        .map_err(|e| Error::io("truncate", path, e))?;
    file.sync_data().map_err(|e| Error::io("fsync", path, e))?;
    Ok(())
}

/// Formats records as the plain log many teams keep, one per line:
/// `timestamp | stack | version | env | status | operator`, with an RFC 3339 UTC
/// timestamp (seconds) and the canonical status names.
#[must_use]
pub fn to_plain_log(records: &[DeploymentRecord]) -> String {
    let mut out = String::new();
    for r in records {
        out.push_str(&format!(
            "{} | {} | {} | {} | {} | {}\n",
            r.timestamp.to_rfc3339_opts(SecondsFormat::Secs, true),
            r.stack,
            r.release,
            r.environment,
            r.status,
            r.operator
        ));
    }
    out
}

/// Parses a plain `timestamp | stack | version | env | status | operator` log.
///
/// Blank lines, lines starting with `#` and a header line whose first field is
/// `timestamp` are skipped. Timestamps are RFC 3339, or `YYYY-MM-DD HH:MM:SS` /
/// `YYYY-MM-DDTHH:MM:SS` taken as UTC. Statuses as in [`DeployStatus`]'s `FromStr`.
///
/// # Errors
///
/// [`Error::PlainLogParse`] naming the first bad line.
pub fn parse_plain_log(text: &str) -> Result<Vec<DeploymentRecord>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        let bad = |reason: String| Error::PlainLogParse { line: n, reason };
        let [ts, stack, release, env, status, operator] = fields.as_slice() else {
            return Err(bad(format!(
                "expected 6 fields separated by '|', found {}",
                fields.len()
            )));
        };
        if ts.eq_ignore_ascii_case("timestamp") {
            continue;
        }
        let timestamp = parse_timestamp(ts).ok_or_else(|| bad(format!("bad timestamp {ts:?}")))?;
        let environment: Environment = env
            .parse()
            .map_err(|e: deploy_core::Error| bad(e.to_string()))?;
        let status: DeployStatus = status
            .parse()
            .map_err(|e: deploy_core::Error| bad(e.to_string()))?;
        let record =
            DeploymentRecord::new(*stack, *release, environment, status, *operator).at(timestamp);
        record.validate().map_err(|e| bad(e.to_string()))?;
        out.push(record);
    }
    Ok(out)
}

fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn record_json_shape() {
        let r = DeploymentRecord::new(
            "shop",
            "17.0.3",
            Environment::Production,
            DeployStatus::RolledBack,
            "ci",
        )
        .at(t("2025-03-01T10:00:00Z"))
        .with_duration(Duration::from_millis(1500));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["timestamp"], "2025-03-01T10:00:00.000Z");
        assert_eq!(json["status"], "rolled_back");
        assert_eq!(json["environment"], "production");
        assert_eq!(json["duration_ms"], 1500);
        assert!(json.get("backup_id").is_none());
        let back: DeploymentRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn validate_refuses_pipes_and_newlines() {
        let r = DeploymentRecord::new("shop", "a|b", Environment::Dev, DeployStatus::Started, "x");
        assert!(matches!(
            r.validate(),
            Err(Error::InvalidInput {
                what: "release",
                ..
            })
        ));
        let r = DeploymentRecord::new("shop", "a", Environment::Dev, DeployStatus::Started, "x\ny");
        assert!(matches!(
            r.validate(),
            Err(Error::InvalidInput {
                what: "operator",
                ..
            })
        ));
        let r = DeploymentRecord::new("../etc", "a", Environment::Dev, DeployStatus::Started, "x");
        assert!(matches!(
            r.validate(),
            Err(Error::InvalidName { kind: "stack", .. })
        ));
    }

    #[test]
    fn plain_log_timestamps() {
        assert_eq!(
            parse_timestamp("2025-01-02 03:04:05"),
            Some(t("2025-01-02T03:04:05Z"))
        );
        assert_eq!(
            parse_timestamp("2025-01-02T05:04:05+02:00"),
            Some(t("2025-01-02T03:04:05Z"))
        );
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
