//! The crate's error type.
//!
//! Callers branch on variants and their fields, never on message text. Foreign error
//! types (PostgreSQL, libgit2) stay behind this crate: their text is kept as a source
//! (`ForeignError`) and the fields a caller may need (SQLSTATE code, git error class)
//! are copied out.

use std::path::PathBuf;
use std::time::Duration;

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error of a foreign library (PostgreSQL client, libgit2, TOML parser), kept
/// opaque so that those crates' types never appear in this crate's API.
pub type ForeignError = deploy_core::BoxError;

/// Everything that can go wrong in `deploy-rollback`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file system operation failed.
    ///
    /// A full disk shows as `source.raw_os_error() == Some(28)` (`ENOSPC`),
    /// see [`Error::is_storage_full`].
    #[error("{op} {path}: {cause}")]
    Io {
        /// What was being done (`"create"`, `"write"`, `"rename"`, ...).
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },

    /// A name that ends up in a file name or an SQL identifier is not acceptable.
    ///
    /// Stack names, database names and backup ids use `[A-Za-z0-9_.-]`, do not
    /// start with `.` or `-`, and are at most `max_len` bytes long.
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidName {
        /// What the name is for (`"stack"`, `"database"`, `"backup id"`).
        kind: &'static str,
        /// The offending value.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// An input value is not acceptable (a malformed URL, an unknown status, ...).
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// Which input.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// A line of a plain `timestamp | stack | version | env | status | operator` log
    /// could not be parsed.
    #[error("plain log line {line}: {reason}")]
    PlainLogParse {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// An external program could not be started (not installed, not executable).
    #[error("cannot start {program}: {cause}")]
    CommandSpawn {
        /// The program (`"pg_dump"`, `"pg_restore"`).
        program: String,
        /// The underlying error.
        cause: std::io::Error,
    },

    /// An external program exited unsuccessfully (or was killed by a signal).
    #[error("{program} failed ({}): {stderr}", exit_description(*.code))]
    CommandFailed {
        /// The program (`"pg_dump"`, `"pg_restore"`).
        program: String,
        /// Its exit code; `None` when it was killed by a signal.
        code: Option<i32>,
        /// The end of its standard error (at most 64 KiB).
        stderr: String,
    },

    /// No backup with this id exists in the store (or it is not complete).
    #[error("backup {id} not found")]
    BackupNotFound {
        /// The requested id.
        id: String,
    },

    /// A backup's manifest cannot be read or does not describe its directory.
    #[error("backup {id} is invalid: {reason}")]
    BackupInvalid {
        /// The backup id.
        id: String,
        /// What is wrong.
        reason: String,
    },

    /// An artifact's SHA-256 or size differs from the one its manifest records.
    #[error("backup {id}: {artifact} does not match its manifest (expected sha256 {expected}, size {expected_size}; found {actual}, size {actual_size})")]
    ChecksumMismatch {
        /// The backup id.
        id: String,
        /// The artifact's file name.
        artifact: String,
        /// The SHA-256 recorded in the manifest (hex).
        expected: String,
        /// The SHA-256 computed now (hex).
        actual: String,
        /// The size recorded in the manifest.
        expected_size: u64,
        /// The size found now.
        actual_size: u64,
    },

    /// A PostgreSQL statement or connection failed.
    #[error("postgresql: {op}: {cause}")]
    Postgres {
        /// What was being done (`"connect"`, `"rename database"`, ...).
        op: &'static str,
        /// The SQLSTATE code when the server answered with an error (`"55006"`
        /// object in use, `"42P04"` duplicate database, ...).
        code: Option<String>,
        /// The client library's error.
        cause: ForeignError,
    },

    /// A database that must not exist yet already exists.
    #[error("database {name} already exists")]
    DatabaseExists {
        /// The database name.
        name: String,
    },

    /// The confirmation given for a destructive operation does not name the database
    /// it would replace.
    #[error("confirmation {given:?} does not name the live database {expected:?}")]
    ConfirmationMismatch {
        /// The database name that must be typed.
        expected: String,
        /// What was given.
        given: String,
    },

    /// A restored database did not pass verification; the swap did not happen and the
    /// restored database is kept for inspection.
    #[error("restored database {database} failed verification: {reason}")]
    VerificationFailed {
        /// The restored (not swapped in) database.
        database: String,
        /// What failed.
        reason: String,
    },

    /// The rename swap failed part-way. `live_present` tells whether a database of the
    /// live name exists now (the crate renames the replaced one back when it can).
    #[error("swap of {live} failed after {step}: {reason}")]
    SwapFailed {
        /// The live database name.
        live: String,
        /// The last step that succeeded.
        step: &'static str,
        /// What failed.
        reason: String,
        /// Whether a database named `live` exists after the failure.
        live_present: bool,
    },

    /// A libgit2 operation failed.
    #[error("git: {op}: {cause}")]
    Git {
        /// What was being done (`"open"`, `"fetch"`, `"push"`, ...).
        op: &'static str,
        /// libgit2's error class and code, for example `"Net/Auth"`.
        class: String,
        /// The underlying error.
        cause: ForeignError,
    },

    /// The work tree has uncommitted changes or untracked files.
    #[error("work tree is dirty: {}", paths.join(", "))]
    DirtyWorkTree {
        /// The paths that are modified, staged, deleted or untracked.
        paths: Vec<String>,
    },

    /// The local and the remote branch each have commits the other lacks.
    #[error("branch {branch} has diverged from {remote}: {ahead} local and {behind} remote commits not shared")]
    Diverged {
        /// The branch.
        branch: String,
        /// The remote name.
        remote: String,
        /// Commits only on the local branch.
        ahead: usize,
        /// Commits only on the remote branch.
        behind: usize,
    },

    /// The local branch has commits the remote lacks; pushing a revert would publish
    /// them too, so the revert is refused.
    #[error("branch {branch} has {ahead} local commits not pushed to {remote}")]
    UnpushedCommits {
        /// The branch.
        branch: String,
        /// The remote name.
        remote: String,
        /// Commits only on the local branch.
        ahead: usize,
    },

    /// Reverting the commit changes nothing (it was reverted already).
    #[error("reverting {commit} changes nothing")]
    NothingToRevert {
        /// The commit.
        commit: String,
    },

    /// HEAD is not on the branch the revert must happen on.
    #[error("HEAD is on {actual}, not on {expected}")]
    WrongBranch {
        /// The deploy branch.
        expected: String,
        /// What HEAD points to.
        actual: String,
    },

    /// The commit to revert cannot be found, or is not on the deploy branch.
    #[error("commit {spec} {reason}")]
    CommitNotFound {
        /// The revision that was asked for.
        spec: String,
        /// `"does not exist"` or `"is not on branch ..."`.
        reason: String,
    },

    /// Reverting the commit conflicts with later changes.
    #[error("reverting {commit} conflicts in {}", paths.join(", "))]
    RevertConflict {
        /// The commit being reverted.
        commit: String,
        /// The conflicting paths.
        paths: Vec<String>,
    },

    /// The remote refused the pushed reference.
    #[error("push of {reference} rejected: {message}")]
    PushRejected {
        /// The reference (`refs/heads/production`).
        reference: String,
        /// The remote's message.
        message: String,
    },

    /// The history holds no good release to go back to.
    #[error("no good release of {stack} in {environment} to roll back to")]
    NoGoodRelease {
        /// The stack.
        stack: String,
        /// The environment.
        environment: String,
    },

    /// The latest deployment was already rolled back, so the release to go back to is
    /// live already; rolling back further needs the bad release named explicitly.
    #[error(
        "the latest deployment of {stack} in {environment} ({release}) was already rolled back; \
         name the release to replace to roll back further"
    )]
    AlreadyRolledBack {
        /// The stack.
        stack: String,
        /// The environment.
        environment: String,
        /// The release that was rolled back.
        release: String,
    },

    /// The [`Deployer`](crate::Deployer) failed to redeploy a release.
    #[error("redeploying {release} failed: {source}")]
    Deployer {
        /// The release that was being redeployed.
        release: String,
        /// The deployer's error.
        #[source]
        source: ForeignError,
    },

    /// A rollback policy (TOML) could not be parsed.
    #[error("rollback policy: {cause}")]
    Policy {
        /// The parser's error.
        cause: ForeignError,
    },

    /// A blocking task could not be joined (it panicked or the runtime shut down).
    #[error("background task failed: {reason}")]
    Task {
        /// The join error's text.
        reason: String,
    },

    /// An operation did not finish in time.
    #[error("{op} timed out after {after:?}")]
    Timeout {
        /// What was being done.
        op: &'static str,
        /// How long it was given.
        after: Duration,
    },
}

fn exit_description(code: Option<i32>) -> String {
    match code {
        Some(code) => format!("exit code {code}"),
        None => "killed by a signal".to_owned(),
    }
}

impl deploy_core::Classify for Error {
    /// Refused (exit 1): a verdict about the state found (a dirty work tree, a diverged
    /// branch, nothing to roll back to, a backup that fails its checks, a confirmation
    /// that does not match). Configuration (exit 2): a bad name or input, a policy file,
    /// a backup or commit that does not exist, a program not found, a repository that
    /// is not one, a wrong database role or password. A failed redeploy has the class
    /// its deployer gave it. Everything else is infrastructure (exit 3).
    fn class(&self) -> deploy_core::ErrorClass {
        use deploy_core::ErrorClass;
        match self {
            Error::ConfirmationMismatch { .. }
            | Error::DirtyWorkTree { .. }
            | Error::Diverged { .. }
            | Error::UnpushedCommits { .. }
            | Error::WrongBranch { .. }
            | Error::NothingToRevert { .. }
            | Error::RevertConflict { .. }
            | Error::NoGoodRelease { .. }
            | Error::AlreadyRolledBack { .. }
            | Error::VerificationFailed { .. }
            | Error::ChecksumMismatch { .. }
            | Error::BackupInvalid { .. }
            | Error::DatabaseExists { .. } => ErrorClass::Refused,
            Error::InvalidName { .. }
            | Error::InvalidInput { .. }
            | Error::PlainLogParse { .. }
            | Error::Policy { .. }
            | Error::BackupNotFound { .. }
            | Error::CommitNotFound { .. } => ErrorClass::Config,
            Error::CommandSpawn { cause, .. }
                if matches!(
                    cause.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                ) =>
            {
                ErrorClass::Config
            }
            // Not a repository, or no committer identity configured.
            Error::Git { op, .. }
                if *op == "open repository" || op.starts_with("committer identity") =>
            {
                ErrorClass::Config
            }
            // SQLSTATE class 28: invalid authorization (wrong role or password).
            Error::Postgres {
                code: Some(code), ..
            } if code.starts_with("28") => ErrorClass::Config,
            Error::Deployer { source, .. } => {
                deploy_core::class_of(&**source).unwrap_or(ErrorClass::Infrastructure)
            }
            _ => ErrorClass::Infrastructure,
        }
    }
}

impl Error {
    /// Whether this is a write that failed because the disk (or quota) is full.
    #[must_use]
    pub fn is_storage_full(&self) -> bool {
        match self {
            Error::Io { cause, .. } => {
                cause.raw_os_error() == Some(28)
                    || cause.kind() == std::io::ErrorKind::StorageFull
                    || cause.kind() == std::io::ErrorKind::QuotaExceeded
            }
            _ => false,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            cause: source,
        }
    }

    pub(crate) fn pg(op: &'static str, source: tokio_postgres::Error) -> Self {
        Error::Postgres {
            op,
            code: source.code().map(|c| c.code().to_owned()),
            cause: Box::new(source),
        }
    }

    pub(crate) fn git(op: &'static str, source: git2::Error) -> Self {
        Error::Git {
            op,
            class: format!("{:?}/{:?}", source.class(), source.code()),
            cause: Box::new(source),
        }
    }

    pub(crate) fn task(err: tokio::task::JoinError) -> Self {
        Error::Task {
            reason: err.to_string(),
        }
    }
}
