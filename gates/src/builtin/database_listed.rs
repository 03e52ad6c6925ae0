//! The `database-listed` gate and its settings.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use super::common::{budget, odoo_failure, Connection};
use crate::{Error, Gate, GateContext, Result, Scope, Verdict};

/// Checks that the database is listed (`/web/database/list`) and so reachable.
///
/// With `list_db = False` Odoo refuses to list databases (access denied). The gate then
/// authenticates against the database with the target's credentials instead: a login
/// that works proves the database exists and PostgreSQL serves it. That is a **`Pass`**
/// — disabling the list is the recommended production setting, not something to warn
/// about on every deployment — and the message says how the database was confirmed
/// (value `listed` is 0).
///
/// | outcome | when |
/// |---|---|
/// | `Pass` | the database is listed; or listing is disabled and a login into it works |
/// | `Fail` | not listed (an empty list means PostgreSQL is unreachable), or the fallback login fails with an Odoo error (database not found, PostgreSQL down) |
/// | `Inconclusive` | listing is disabled and the target has no credentials, or its login is refused: the database could not be confirmed |
/// | `Err` | no Odoo answer (connection refused, timeout, proxy error page) |
///
/// Values: `listed` (1/0), `databases` (how many are listed), `uid` (fallback).
#[derive(Debug, Clone)]
pub struct DatabaseListedGate {
    name: String,
    connection: Arc<Connection>,
    database: String,
}

impl DatabaseListedGate {
    /// A gate named `name` checking that `settings.database` (default: the target's) is
    /// listed on `connection`'s target.
    ///
    /// # Errors
    ///
    /// [`Error::MissingField`] (the target's `database`) when neither names a database.
    pub fn new(
        name: impl Into<String>,
        connection: Arc<Connection>,
        settings: &DatabaseListedSettings,
    ) -> Result<Self> {
        let database = settings
            .database
            .clone()
            .or_else(|| connection.database().map(str::to_owned))
            .ok_or_else(|| Error::MissingField {
                scope: Scope::Target(connection.target().to_owned()),
                field: "database".to_owned(),
            })?;
        Ok(DatabaseListedGate {
            name: name.into(),
            connection,
            database,
        })
    }

    async fn fallback(&self, client: &odoo_rpc::Client) -> Result<Verdict> {
        let db = &self.database;
        if !self.connection.can_authenticate() || self.connection.database() != Some(db) {
            return Ok(Verdict::inconclusive(format!(
                "database listing is disabled (list_db = False) and the target has no \
                 credentials for `{db}`: cannot confirm it"
            ))
            .with_value("listed", 0.0));
        }
        match client.authenticate().await {
            Ok(uid) => Ok(Verdict::pass(format!(
                "database listing is disabled (list_db = False); `{db}` confirmed by logging \
                 in (uid {uid})"
            ))
            .with_value("listed", 0.0)
            .with_value("uid", uid as f64)),
            Err(err @ odoo_rpc::Error::AccessDenied { .. }) => Ok(Verdict::inconclusive(format!(
                "database listing is disabled (list_db = False) and the login into `{db}` was \
                 refused ({err}): cannot confirm the database"
            ))
            .with_value("listed", 0.0)),
            Err(err) => odoo_failure(
                &self.name,
                &format!("listing is disabled; logging in to `{db}`"),
                err,
            )
            .map(|verdict| verdict.with_value("listed", 0.0)),
        }
    }
}

#[async_trait]
impl Gate for DatabaseListedGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, cx: &GateContext) -> Result<Verdict> {
        let client = self.connection.odoo().with_timeout(budget(cx, &self.name)?);
        let db = &self.database;
        let names = match client.list_databases().await {
            Ok(names) => names,
            Err(odoo_rpc::Error::AccessDenied { .. }) => return self.fallback(&client).await,
            Err(err) => return odoo_failure(&self.name, "listing databases", err),
        };
        let count = names.len() as f64;
        let verdict = if names.iter().any(|name| name == db) {
            Verdict::pass(format!("`{db}` listed ({} database(s))", names.len()))
                .with_value("listed", 1.0)
        } else if names.is_empty() {
            Verdict::fail(format!(
                "`{db}` not listed: the server lists no database at all (PostgreSQL unreachable?)"
            ))
            .with_value("listed", 0.0)
        } else {
            Verdict::fail(format!("`{db}` not listed (listed: {})", names.join(", ")))
                .with_value("listed", 0.0)
        };
        Ok(verdict.with_value("databases", count))
    }
}

/// Settings of a `database-listed` gate.
///
/// ```toml
/// database = "prod"   # default: the target's database
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseListedSettings {
    /// The database that must be listed, instead of the target's.
    #[serde(default)]
    pub database: Option<String>,
}
