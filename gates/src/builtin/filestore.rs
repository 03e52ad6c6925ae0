//! The `filestore` gate, and its settings: it writes an attachment, and removes it on
//! every way out (see [`RecordGuard`](super::cleanup::RecordGuard)).

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use odoo_rpc::Client;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::cleanup::create_guarded;
use super::common::{budget, human, odoo_failure, random_label, Connection};
use super::steps::{finish, Steps};
use crate::settings::invalid;
use crate::{Gate, GateContext, Result, Verdict};

/// Checks the filestore end to end: creates an `ir.attachment` with `size_bytes` of
/// known content (base64 `datas`), reads back `datas`, `checksum` and `file_size`,
/// compares them with the content and its SHA-1 (the `checksum` Odoo computes and names
/// the file by), and deletes the attachment — also on failure or cancellation, like
/// [`SmokeCrudGate`](super::SmokeCrudGate).
///
/// A `datas` that reads back empty means Odoo has the row but not the file: the
/// filestore volume is missing or not shared between the workers.
///
/// | outcome | when |
/// |---|---|
/// | `Pass` | the content, checksum and size read back as written, and the attachment is deleted |
/// | `Fail` | different content, checksum or size, no content, an Odoo error at any step |
/// | `Err` | no Odoo answer at some step |
///
/// Values: `size_bytes`, `create_ms`, `read_ms`, `unlink_ms`.
#[derive(Debug, Clone)]
pub struct FilestoreGate {
    name: String,
    connection: Arc<Connection>,
    size: usize,
}

const ATTACHMENT: &str = "ir.attachment";

impl FilestoreGate {
    /// A gate named `name` working on `connection`'s target.
    ///
    /// # Errors
    ///
    /// [`Error::MissingField`](crate::Error::MissingField) when the target cannot
    /// authenticate; [`Error::InvalidValue`](crate::Error::InvalidValue) when
    /// `size_bytes` does not fit in memory.
    pub fn new(
        name: impl Into<String>,
        connection: Arc<Connection>,
        settings: &FilestoreSettings,
    ) -> Result<Self> {
        connection.require_credentials()?;
        let name = name.into();
        let size =
            usize::try_from(settings.size_bytes).map_err(|_| crate::Error::InvalidValue {
                scope: crate::Scope::Gate(name.clone()),
                field: "size_bytes".to_owned(),
                reason: format!("{} does not fit in memory", settings.size_bytes),
            })?;
        Ok(FilestoreGate {
            name,
            connection,
            size,
        })
    }

    /// `size` bytes: a header naming the check, then a pattern drawn from `seed`.
    fn content(&self, label: &str, seed: u64) -> Vec<u8> {
        let mut content = format!("odoo-gate filestore check {label}\n").into_bytes();
        let mut rng = fastrand::Rng::with_seed(seed);
        while content.len() < self.size {
            content.push(rng.alphanumeric() as u8);
        }
        content.truncate(self.size);
        content
    }

    async fn compare(
        &self,
        client: &Client,
        id: i64,
        content: &[u8],
        steps: &mut Steps,
    ) -> Result<Verdict> {
        let start = Instant::now();
        let rows: Vec<Map<String, Value>> = match client
            .read(ATTACHMENT, &[id], &["datas", "checksum", "file_size"])
            .await
        {
            Ok(rows) => rows,
            Err(err) => return odoo_failure(&self.name, &format!("read {ATTACHMENT} {id}"), err),
        };
        steps.time("read_ms", start);
        let Some(row) = rows.first() else {
            return Ok(Verdict::fail(format!(
                "read {ATTACHMENT} {id} returned nothing"
            )));
        };
        let expected_sum = sha1_smol::Sha1::from(content).digest().to_string();
        let datas = match row.get("datas") {
            Some(Value::String(datas)) if !datas.is_empty() => datas,
            _ => {
                return Ok(Verdict::fail(format!(
                    "{ATTACHMENT} {id} reads back without content: the file is missing from \
                     the filestore (volume not mounted or not shared between workers?)"
                )))
            }
        };
        let decoded = match base64::engine::general_purpose::STANDARD.decode(datas.trim()) {
            Ok(decoded) => decoded,
            Err(err) => {
                return Ok(Verdict::fail(format!(
                    "{ATTACHMENT} {id}: datas is not base64 ({err})"
                )))
            }
        };
        if decoded != content {
            return Ok(Verdict::fail(format!(
                "{ATTACHMENT} {id}: content differs (read {} bytes with sha1 {}, wrote {} bytes \
                 with sha1 {expected_sum})",
                decoded.len(),
                sha1_smol::Sha1::from(&decoded).digest(),
                content.len()
            )));
        }
        match row.get("checksum") {
            Some(Value::String(sum)) if *sum == expected_sum => {}
            Some(other) => {
                return Ok(Verdict::fail(format!(
                    "{ATTACHMENT} {id}: checksum {other}, expected {expected_sum}"
                )))
            }
            None => {
                return Ok(Verdict::fail(format!(
                    "{ATTACHMENT} {id}: no checksum read back"
                )))
            }
        }
        if let Some(size) = row.get("file_size").and_then(Value::as_u64) {
            if size != content.len() as u64 {
                return Ok(Verdict::fail(format!(
                    "{ATTACHMENT} {id}: file_size {size}, expected {}",
                    content.len()
                )));
            }
        }
        Ok(Verdict::pass(format!("sha1 {expected_sum}")))
    }
}

#[async_trait]
impl Gate for FilestoreGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, cx: &GateContext) -> Result<Verdict> {
        let started = Instant::now();
        let client = self.connection.odoo().with_timeout(budget(cx, &self.name)?);
        let label = random_label();
        let content = self.content(&label, fastrand::u64(..));
        let datas = base64::engine::general_purpose::STANDARD.encode(&content);
        let values = json!({
            "name": format!("odoo-gate-filestore-{label}.txt"),
            "datas": datas,
            "mimetype": "text/plain",
        });
        let mut steps = Steps::default();
        let start = Instant::now();
        let guard = match create_guarded(&client, &self.name, ATTACHMENT, values).await {
            Ok(guard) => guard,
            Err(err) => return odoo_failure(&self.name, &format!("create {ATTACHMENT}"), err),
        };
        let id = guard.id();
        steps.time("create_ms", start);

        let middle = self.compare(&client, id, &content, &mut steps).await;
        let verdict = finish(
            &self.name,
            &client,
            guard,
            &format!("{ATTACHMENT} {id}"),
            middle,
            &mut steps,
        )
        .await?;
        let verdict = if verdict.is_pass() {
            Verdict::pass(format!(
                "{} bytes written, read back with the same checksum ({}) and deleted in {}",
                content.len(),
                verdict.message.trim_start_matches("sha1 "),
                human(started.elapsed())
            ))
        } else {
            verdict
        };
        Ok(steps
            .onto(verdict)
            .with_value("size_bytes", content.len() as f64))
    }
}

/// Settings of a `filestore` gate: create an `ir.attachment` with `size_bytes` of known
/// content, read it back, compare the content and its SHA-1 checksum (Odoo's `checksum`
/// field), delete it.
///
/// ```toml
/// size_bytes = 4096   # default 4096, at most 16 MiB
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilestoreSettings {
    /// Size of the attachment's content.
    #[serde(default = "default_size_bytes")]
    pub size_bytes: u64,
}

impl FilestoreSettings {
    /// The largest `size_bytes` accepted: 16 MiB.
    pub const MAX_SIZE_BYTES: u64 = 16 * 1024 * 1024;

    /// Checks the values the types let through.
    pub(crate) fn validate(&self, gate: &str) -> Result<()> {
        if self.size_bytes == 0 || self.size_bytes > FilestoreSettings::MAX_SIZE_BYTES {
            return invalid(
                gate,
                "size_bytes",
                format!(
                    "{} is not between 1 and {}",
                    self.size_bytes,
                    FilestoreSettings::MAX_SIZE_BYTES
                ),
            );
        }
        Ok(())
    }
}

impl Default for FilestoreSettings {
    fn default() -> Self {
        FilestoreSettings {
            size_bytes: default_size_bytes(),
        }
    }
}

fn default_size_bytes() -> u64 {
    4096
}
