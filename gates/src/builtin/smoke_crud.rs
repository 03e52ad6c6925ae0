//! The `smoke-crud` gate, and its settings: it writes, and removes what it creates on
//! every way out (see [`RecordGuard`](super::cleanup::RecordGuard)).

use std::sync::Arc;

use async_trait::async_trait;
use odoo_rpc::{Client, Domain, Op};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::cleanup::create_guarded;
use super::common::{budget, human, odoo_failure, random_label, Connection};
use super::steps::{finish, Steps};
use crate::settings::invalid;
use crate::{Gate, GateContext, Result, Verdict};

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

/// Settings of a `smoke-crud` gate: create a record, read it back, write it, read it
/// back, delete it, check it is gone. The record is always deleted, also when a step
/// fails or the check is cancelled by its timeout.
///
/// ```toml
/// model = "res.partner"              # default
/// field = "name"                     # default: a char field the gate writes and reads back
/// values = { is_company = false }    # default {}: other values the model needs on create
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeCrudSettings {
    /// Model to create, read, write and delete a record of.
    #[serde(default = "default_model")]
    pub model: String,
    /// A text (`char`) field of `model`: set on create, changed by the write, compared on
    /// each read.
    #[serde(default = "default_field")]
    pub field: String,
    /// Further values for `create` (required fields of the model, say).
    #[serde(default)]
    pub values: serde_json::Map<String, serde_json::Value>,
}

impl Default for SmokeCrudSettings {
    fn default() -> Self {
        SmokeCrudSettings {
            model: default_model(),
            field: default_field(),
            values: serde_json::Map::new(),
        }
    }
}

fn default_model() -> String {
    "res.partner".to_owned()
}

fn default_field() -> String {
    "name".to_owned()
}

impl SmokeCrudSettings {
    /// Checks the values the types let through.
    pub(crate) fn validate(&self, gate: &str) -> Result<()> {
        if self.model.trim().is_empty() {
            return invalid(gate, "model", "must not be empty".into());
        }
        if self.field.trim().is_empty() {
            return invalid(gate, "field", "must not be empty".into());
        }
        if self.values.contains_key(&self.field) {
            return invalid(
                gate,
                "values",
                format!("must not set `{}`: the gate writes that field", self.field),
            );
        }
        Ok(())
    }
}
