//! The journal: what the last operation on a stack meant to do and how far it got.
//!
//! One JSON file per stack (`<state_dir>/<stack>.journal.json`), replaced atomically at
//! every step. It is for **reporting only**: `status` says "a deploy of r2 was killed at
//! step `switched`". No decision is ever taken from it; the orchestrator decides from
//! Docker's containers and the proxy's live routing, so a lost, stale or hand-edited
//! journal cannot mislead a deploy or a rollback.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil::{read_optional, write_atomic};
use crate::orchestrator::{Operation, OperationResult, Step};
use crate::slot::Slot;

/// The record of one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JournalEntry {
    /// The operation.
    pub operation: Operation,
    /// The release it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// The image it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The slot that served when it began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Slot>,
    /// The slot it moves traffic to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Slot>,
    /// The last step reached.
    pub step: Step,
    /// At [`Step::Stage`]: the stage running (`update`, `backup`, `hook ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The pre-deploy backup this operation took, once it has one: what repairs a
    /// database an interrupted update left half done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// The process that ran it.
    pub pid: u32,
    /// The host it ran on.
    pub host: String,
    /// Who ran it.
    pub operator: String,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// When the entry was last written.
    pub updated_at: DateTime<Utc>,
    /// Whether it ended (with a result or an error).
    pub finished: bool,
    /// Its result, when it ended with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<OperationResult>,
    /// The error it ended with, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The journal file of one stack.
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    /// The journal of `stack` in `state_dir`.
    #[must_use]
    pub fn new(state_dir: &Path, stack: &str) -> Self {
        Self {
            path: state_dir.join(format!("{stack}.journal.json")),
        }
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the entry atomically.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Render`].
    pub async fn write(&self, entry: &JournalEntry) -> Result<()> {
        let text = serde_json::to_vec_pretty(entry).map_err(|e| Error::Render {
            what: "journal",
            message: e.to_string(),
        })?;
        write_atomic(&self.path, &text).await
    }

    /// The last entry; `None` when there is none or it cannot be read (the journal
    /// only informs).
    ///
    /// # Errors
    /// [`Error::Io`] when the file exists but cannot be read.
    pub async fn read(&self) -> Result<Option<JournalEntry>> {
        Ok(read_optional(&self.path)
            .await?
            .and_then(|text| serde_json::from_str(&text).ok()))
    }
}
