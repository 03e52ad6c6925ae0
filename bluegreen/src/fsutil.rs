//! Atomic file replacement and small process helpers shared by the switches.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::error::{Error, Result};

/// Writes `contents` to `path` atomically: a temporary file in the same directory is
/// written and fsynced, renamed over `path`, and the directory is fsynced. A reader
/// (nginx, Traefik) sees the old file or the new one, never a mix.
pub(crate) async fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let path = path.to_path_buf();
    let contents = contents.to_vec();
    tokio::task::spawn_blocking(move || write_atomic_blocking(&path, &contents))
        .await
        .map_err(|e| Error::io("write", PathBuf::new(), std::io::Error::other(e)))?
}

fn write_atomic_blocking(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = parent(path);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "managed".to_owned());
    let tmp = dir.join(format!(
        ".{file_name}.tmp-{}-{}",
        std::process::id(),
        unique()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        file.write_all(contents)
            .map_err(|e| Error::io("write", &tmp, e))?;
        file.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Fsyncs a directory so that a rename in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync", dir, e))
}

pub(crate) fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Reads a file, `None` when it does not exist.
pub(crate) async fn read_optional(path: &Path) -> Result<Option<String>> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// A number unique within this process.
pub(crate) fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What a finished command printed.
#[derive(Debug)]
pub(crate) struct CommandOutput {
    pub(crate) success: bool,
    pub(crate) status: String,
    pub(crate) stderr: String,
}

/// Runs a short command (nginx -t, nginx -s reload) with a time limit, capturing stderr.
pub(crate) async fn run_command(
    program: &Path,
    args: &[String],
    limit: Duration,
) -> Result<CommandOutput> {
    let failed = |status: String, stderr: String| Error::ProxyCommand {
        program: program.display().to_string(),
        args: args.to_vec(),
        status,
        stderr,
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed(format!("cannot run: {e}"), String::new()))?;
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .map_err(|_| failed(format!("timed out after {limit:?}"), String::new()))?
        .map_err(|e| failed(format!("wait failed: {e}"), String::new()))?;
    Ok(CommandOutput {
        success: output.status.success(),
        status: output.status.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}
