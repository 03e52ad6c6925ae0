//! The gates that write: `smoke-crud` and `filestore`. Both remove what they create on
//! every way out (see [`RecordGuard`]).

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use odoo_rpc::{Client, Domain, Op};
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::cleanup::{create_guarded, RecordGuard};
use super::common::{budget, human, millis, odoo_failure, random_label, Connection};
use crate::{FilestoreSettings, Gate, GateContext, Result, SmokeCrudSettings, Verdict};

/// Timings of the steps of a check, as verdict values.
#[derive(Default)]
struct Steps {
    values: Vec<(&'static str, f64)>,
}

impl Steps {
    fn time(&mut self, name: &'static str, since: Instant) {
        self.values.push((name, millis(since.elapsed())));
    }

    fn onto(self, verdict: Verdict) -> Verdict {
        self.values
            .into_iter()
            .fold(verdict, |verdict, (name, value)| {
                verdict.with_value(name, value)
            })
    }
}

/// Ends a check that created a record: removes it now, and words the verdict.
///
/// `middle` is what the steps between create and remove concluded. The removal happens
/// whatever it says; when the removal fails, the guard keeps the record for background
/// removal and the message says so.
async fn finish(
    gate: &str,
    client: &Client,
    mut guard: RecordGuard,
    what: &str,
    middle: Result<Verdict>,
    steps: &mut Steps,
) -> Result<Verdict> {
    let start = Instant::now();
    let removal = guard.remove(client).await;
    steps.time("unlink_ms", start);
    match (middle, removal) {
        (Ok(verdict), Ok(())) => Ok(verdict),
        (Ok(verdict), Err(err)) if verdict.is_pass() => {
            odoo_failure(gate, &format!("unlink {what}"), err)
        }
        (Ok(verdict), Err(err)) => Ok(Verdict {
            message: format!(
                "{}; removal failed ({err}), retrying in the background",
                verdict.message
            ),
            ..verdict
        }),
        (Err(err), _) => Err(err),
    }
}

/// Checks that the application can write: creates a record of `model` with a random
/// value in `field`, reads it back, writes a new value, reads it back, deletes it and
/// checks it is gone.
///
/// The record is removed on every way out: right away after a failed step, and from a
/// background task when the check is cancelled by its timeout (or the removal itself
/// failed), retried for about half a minute ([`wait_for_cleanups`](super::wait_for_cleanups)).
///
/// | outcome | when |
/// |---|---|
/// | `Pass` | every step worked and the record is gone |
/// | `Fail` | a step answered with an Odoo error (access rights, validation, PostgreSQL down...), a read returned another value, the record survived its deletion |
/// | `Err` | no Odoo answer at some step (the record is still removed) |
///
/// Values: `record_id`, `create_ms`, `read_ms`, `write_ms`, `unlink_ms`.
#[derive(Debug, Clone)]
pub struct SmokeCrudGate {
    name: String,
    connection: Arc<Connection>,
    model: String,
    field: String,
    values: Map<String, Value>,
}

impl SmokeCrudGate {
    /// A gate named `name` working on `connection`'s target.
    ///
    /// # Errors
    ///
    /// [`Error::MissingField`](crate::Error::MissingField) when the target cannot
    /// authenticate (no database, login, or password or API key).
    pub fn new(
        name: impl Into<String>,
        connection: Arc<Connection>,
        settings: &SmokeCrudSettings,
    ) -> Result<Self> {
        connection.require_credentials()?;
        Ok(SmokeCrudGate {
            name: name.into(),
            connection,
            model: settings.model.clone(),
            field: settings.field.clone(),
            values: settings.values.clone(),
        })
    }

    /// Reads the record's field and compares it.
    async fn read_back(
        &self,
        client: &Client,
        id: i64,
        expected: &str,
        step: &str,
    ) -> Result<Verdict> {
        let rows: Vec<Map<String, Value>> = match client
            .read(&self.model, &[id], &[self.field.as_str()])
            .await
        {
            Ok(rows) => rows,
            Err(err) => {
                return odoo_failure(&self.name, &format!("{step}: read {}", self.model), err)
            }
        };
        let found = rows.first().and_then(|row| row.get(&self.field));
        Ok(match found {
            Some(Value::String(value)) if value == expected => Verdict::pass("read back"),
            Some(other) => Verdict::fail(format!(
                "{step}: read {} {id} returned {} = {other}, expected \"{expected}\"",
                self.model, self.field
            )),
            None => Verdict::fail(format!(
                "{step}: read {} {id} returned no `{}`",
                self.model, self.field
            )),
        })
    }

    /// Read, write, read.
    async fn middle(
        &self,
        client: &Client,
        id: i64,
        first: &str,
        steps: &mut Steps,
    ) -> Result<Verdict> {
        let start = Instant::now();
        let verdict = self.read_back(client, id, first, "after create").await?;
        steps.time("read_ms", start);
        if !verdict.is_pass() {
            return Ok(verdict);
        }
        let second = format!("{first} (written)");
        let start = Instant::now();
        let mut values = Map::new();
        values.insert(self.field.clone(), Value::String(second.clone()));
        if let Err(err) = client.write(&self.model, &[id], values).await {
            return odoo_failure(&self.name, &format!("write {} {id}", self.model), err);
        }
        steps.time("write_ms", start);
        let verdict = self.read_back(client, id, &second, "after write").await?;
        if !verdict.is_pass() {
            return Ok(verdict);
        }
        Ok(Verdict::pass("created, read, written, read"))
    }
}

#[async_trait]
impl Gate for SmokeCrudGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, cx: &GateContext) -> Result<Verdict> {
        let started = Instant::now();
        let client = self.connection.odoo().with_timeout(budget(cx, &self.name)?);
        let model = &self.model;
        let first = format!("odoo-gate smoke {}", random_label());
        let mut values = self.values.clone();
        values.insert(self.field.clone(), Value::String(first.clone()));
        let mut steps = Steps::default();

        let start = Instant::now();
        let guard = match create_guarded(&client, &self.name, model, values).await {
            Ok(guard) => guard,
            Err(err) => return odoo_failure(&self.name, &format!("create {model}"), err),
        };
        let id = guard.id();
        steps.time("create_ms", start);
        tracing::debug!(gate = %self.name, model = %model, id, "smoke record created");

        let middle = self.middle(&client, id, &first, &mut steps).await;
        let verdict = finish(
            &self.name,
            &client,
            guard,
            &format!("{model} {id}"),
            middle,
            &mut steps,
        )
        .await?;
        if !verdict.is_pass() {
            return Ok(steps.onto(verdict).with_value("record_id", id as f64));
        }

        // Gone? (archived records count too: active_test off)
        let mut context = Map::new();
        context.insert("active_test".to_owned(), Value::Bool(false));
        let left = client
            .with_context(context)
            .search_count(model, &Domain::leaf("id", Op::Eq, id))
            .await;
        let verdict = match left {
            Ok(0) => Verdict::pass(format!(
                "created, read, written, read and deleted {model} {id} in {}",
                human(started.elapsed())
            )),
            Ok(_) => Verdict::fail(format!("{model} {id} is still there after unlink")),
            Err(err) => odoo_failure(
                &self.name,
                &format!("search {model} {id} after unlink"),
                err,
            )?,
        };
        Ok(steps.onto(verdict).with_value("record_id", id as f64))
    }
}

/// Checks the filestore end to end: creates an `ir.attachment` with `size_bytes` of
/// known content (base64 `datas`), reads back `datas`, `checksum` and `file_size`,
/// compares them with the content and its SHA-1 (the `checksum` Odoo computes and names
/// the file by), and deletes the attachment — also on failure or cancellation, like
/// [`SmokeCrudGate`].
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
