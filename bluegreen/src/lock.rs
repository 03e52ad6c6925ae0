//! The stack lock: one operation that changes a stack (deploy, canary, rollback, switch,
//! stop-idle) at a time, across processes.
//!
//! The lock is an exclusive `flock` on `<state_dir>/<stack>.lock`. The holder writes who
//! it is into the file ([`LockHolder`]: pid, host, operator, operation, start time), so
//! that a second process is refused at once with a message naming the holder.
//!
//! The kernel releases a `flock` when its process dies, even by `kill -9`; the holder
//! record then stays behind in the file. The next process takes the lock as usual and
//! reports the record it found ([`StackLock::took_over`]): the lock was *stale*. Only
//! `flock` decides who holds the lock; the record is for people.
//!
//! The file is never deleted (deleting a lock file races with a process that opened it
//! and is about to lock it); releasing empties it.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rustix::fs::{flock, FlockOperation};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::{Error, Result};

/// Who holds (or held) a stack's lock, as written into the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LockHolder {
    /// The holder's process id.
    pub pid: u32,
    /// The host it runs on.
    pub host: String,
    /// Who started it (`--operator`, or the user name).
    pub operator: String,
    /// What it does (`deploy`, `rollback`, ...).
    pub operation: String,
    /// When it took the lock.
    pub started_at: DateTime<Utc>,
}

impl LockHolder {
    /// A holder record for this process on this host, starting now.
    #[must_use]
    pub fn current(operator: &str, operation: &str) -> Self {
        Self {
            pid: std::process::id(),
            host: hostname(),
            operator: operator.to_owned(),
            operation: operation.to_owned(),
            started_at: Utc::now(),
        }
    }

    /// Whether the holder process still runs: `Some(false)` when it runs on this host
    /// and no process has its pid, `None` when it runs on another host (cannot tell).
    #[must_use]
    pub fn is_alive(&self) -> Option<bool> {
        if self.host != hostname() {
            return None;
        }
        Some(pid_alive(self.pid))
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {} on {} ({} by {}, since {})",
            self.pid,
            self.host,
            self.operation,
            self.operator,
            self.started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }
}

/// This host's name (`uname -n`).
#[must_use]
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

fn pid_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    let Some(pid) = rustix::process::Pid::from_raw(raw) else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        // It exists but belongs to another user.
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// The path of a stack's lock file in `state_dir`.
#[must_use]
pub fn lock_path(state_dir: &Path, stack: &str) -> PathBuf {
    state_dir.join(format!("{stack}.lock"))
}

/// What the lock file says, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum LockState {
    /// Nobody holds it.
    Free,
    /// A live process holds it (or one on another host, which cannot be checked).
    Held {
        /// The holder.
        holder: LockHolder,
    },
    /// The record of a process that died without releasing it (killed): the next
    /// operation takes it over.
    Stale {
        /// The dead holder.
        holder: LockHolder,
    },
}

/// The held lock of one stack. Released when dropped (or with [`StackLock::release`]).
#[derive(Debug)]
pub struct StackLock {
    file: File,
    path: PathBuf,
    took_over: Option<LockHolder>,
}

impl StackLock {
    /// Takes the stack's lock without waiting, writing `holder` into the lock file.
    ///
    /// # Errors
    /// [`Error::LockHeld`] naming the holder when another process holds it;
    /// [`Error::Io`] when the state directory or the lock file cannot be used.
    pub fn acquire(state_dir: &Path, stack: &str, holder: &LockHolder) -> Result<StackLock> {
        std::fs::create_dir_all(state_dir).map_err(|e| Error::io("create", state_dir, e))?;
        let path = lock_path(state_dir, stack);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                return Err(Error::LockHeld {
                    stack: stack.to_owned(),
                    holder: read_holder_settled(&mut file).map(Box::new),
                    path,
                });
            }
            Err(e) => return Err(Error::io("flock", &path, e.into())),
        }
        let took_over = read_record(&mut file).ok().flatten();
        if let Some(previous) = &took_over {
            warn!(stack, previous = %previous, "took over a stale stack lock");
        }
        let record = serde_json::to_vec(holder).map_err(|e| Error::Render {
            what: "lock holder",
            message: e.to_string(),
        })?;
        let write = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&record)?;
            file.sync_data()
        };
        write(&mut file).map_err(|e| Error::io("write", &path, e))?;
        info!(stack, pid = holder.pid, operation = %holder.operation, "stack lock taken");
        Ok(StackLock {
            file,
            path,
            took_over,
        })
    }

    /// The record of a previous holder that died without releasing the lock, when this
    /// acquisition took a stale lock over.
    #[must_use]
    pub fn took_over(&self) -> Option<&LockHolder> {
        self.took_over.as_ref()
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Empties the lock file and releases the lock.
    pub fn release(self) {
        // Drop does the work.
    }

    /// What the lock file of `stack` says now, without taking the lock: free, held by
    /// a live process, or left by a dead one.
    ///
    /// # Errors
    /// [`Error::Io`] when the file exists but cannot be read.
    pub fn inspect(state_dir: &Path, stack: &str) -> Result<LockState> {
        let path = lock_path(state_dir, stack);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LockState::Free),
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        let holder = read_record(&mut file).map_err(|e| Error::io("read", &path, e))?;
        Ok(match holder {
            None => LockState::Free,
            Some(holder) if holder.is_alive() == Some(false) => LockState::Stale { holder },
            Some(holder) => LockState::Held { holder },
        })
    }
}

impl Drop for StackLock {
    fn drop(&mut self) {
        if let Err(e) = self.file.set_len(0) {
            warn!(path = %self.path.display(), error = %e, "cannot empty the lock file");
        }
        let _ = flock(&self.file, FlockOperation::Unlock);
    }
}

/// The holder record, `None` when the file is empty. An unreadable record (torn by a
/// crash in the middle of writing it) reads as `None` too.
fn read_record(file: &mut File) -> std::io::Result<Option<LockHolder>> {
    file.seek(SeekFrom::Start(0))?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    Ok(serde_json::from_str(&text).ok())
}

/// The holder of a lock someone else holds: it may be writing its record this very
/// moment, so an empty file is read again a few times (at most 200 ms).
fn read_holder_settled(file: &mut File) -> Option<LockHolder> {
    for _ in 0..20 {
        if let Ok(Some(holder)) = read_record(file) {
            return Some(holder);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_named_then_the_lock_is_free_again() {
        let dir = tempfile::tempdir().unwrap();
        let first =
            StackLock::acquire(dir.path(), "shop", &LockHolder::current("ci", "deploy")).unwrap();
        assert!(first.took_over().is_none());
        match StackLock::inspect(dir.path(), "shop").unwrap() {
            LockState::Held { holder } => assert_eq!(holder.pid, std::process::id()),
            other => panic!("{other:?}"),
        }
        let err = StackLock::acquire(dir.path(), "shop", &LockHolder::current("bob", "rollback"))
            .unwrap_err();
        match &err {
            Error::LockHeld { stack, holder, .. } => {
                assert_eq!(stack, "shop");
                let holder = holder.as_ref().unwrap();
                assert_eq!(holder.operator, "ci");
                assert_eq!(holder.operation, "deploy");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("deploy by ci"), "{err}");
        first.release();
        assert_eq!(
            StackLock::inspect(dir.path(), "shop").unwrap(),
            LockState::Free
        );
        let again = StackLock::acquire(dir.path(), "shop", &LockHolder::current("bob", "rollback"))
            .unwrap();
        assert!(again.took_over().is_none());
    }

    #[test]
    fn a_record_left_by_a_dead_process_is_stale_and_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut dead = LockHolder::current("ci", "deploy");
        // Pids are below 2^22 on Linux: this one cannot exist.
        dead.pid = 4_194_304 + 17;
        std::fs::write(
            lock_path(dir.path(), "shop"),
            serde_json::to_vec(&dead).unwrap(),
        )
        .unwrap();
        assert_eq!(
            StackLock::inspect(dir.path(), "shop").unwrap(),
            LockState::Stale {
                holder: dead.clone()
            }
        );
        let lock =
            StackLock::acquire(dir.path(), "shop", &LockHolder::current("bob", "deploy")).unwrap();
        assert_eq!(lock.took_over(), Some(&dead));
    }
}
