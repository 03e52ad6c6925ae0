//! The gates that ask Odoo about its state: `database-listed`, `version`,
//! `authentication`, `modules`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use odoo_rpc::{Domain, Op, SearchOptions};
use serde::Deserialize;
use tokio::time::Instant;

use super::common::{budget, human, millis, odoo_failure, Connection};
use crate::{
    DatabaseListedSettings, Error, Gate, GateContext, ModulesSettings, Result, Scope, Verdict,
    VersionSettings,
};

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

/// Checks the server's version and release.
///
/// `expected_version` matches `server_serie` or `server_version` exactly (`"17.0"`,
/// `"saas~17.1"`), or the major version when it is a bare number (`"17"`).
/// `expected_release` matches the release label the deployment reports in the
/// `X-Odoo-Release` response header (the project's images set it).
///
/// | outcome | when |
/// |---|---|
/// | `Pass` | every expectation set matches (with none set: the server reports a version) |
/// | `Fail` | a version or release differs; Odoo answers with an error |
/// | `Inconclusive` | `expected_release` is set but the server reports no release label |
/// | `Err` | no Odoo answer |
///
/// Values: `major`, `protocol_version`.
#[derive(Debug, Clone)]
pub struct VersionGate {
    name: String,
    connection: Arc<Connection>,
    expected_version: Option<String>,
    expected_release: Option<String>,
}

impl VersionGate {
    /// A gate named `name` checking `connection`'s target.
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        connection: Arc<Connection>,
        settings: &VersionSettings,
    ) -> Self {
        VersionGate {
            name: name.into(),
            connection,
            expected_version: settings.expected_version.clone(),
            expected_release: settings.expected_release.clone(),
        }
    }
}

fn version_matches(expected: &str, version: &odoo_rpc::ServerVersion) -> bool {
    let expected = expected.trim();
    expected == version.server_serie
        || expected == version.server_version
        || expected
            .parse::<u8>()
            .is_ok_and(|major| major == version.major)
}

#[async_trait]
impl Gate for VersionGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, cx: &GateContext) -> Result<Verdict> {
        let client = self.connection.odoo().with_timeout(budget(cx, &self.name)?);
        let version = match client.version().await {
            Ok(version) => version,
            Err(err) => return odoo_failure(&self.name, "reading the version", err),
        };
        let release = version.release.as_deref();
        let found = match release {
            Some(release) => format!(
                "{} (serie {}), release `{release}`",
                version.server_version, version.server_serie
            ),
            None => format!(
                "{} (serie {})",
                version.server_version, version.server_serie
            ),
        };
        let verdict = match (&self.expected_version, &self.expected_release, release) {
            (Some(expected), _, _) if !version_matches(expected, &version) => {
                Verdict::fail(format!("version {found}, expected {expected}"))
            }
            (_, Some(expected), Some(release)) if release != expected => Verdict::fail(format!(
                "release `{release}` deployed, expected `{expected}` (version {})",
                version.server_version
            )),
            (_, Some(expected), None) => Verdict::inconclusive(format!(
                "version {found}, but the server reports no release label (no X-Odoo-Release \
                 header): cannot confirm `{expected}`"
            )),
            _ => Verdict::pass(found),
        };
        Ok(verdict
            .with_value("major", f64::from(version.major))
            .with_value("protocol_version", version.protocol_version as f64))
    }
}

/// Checks that the target's login and password (or API key) authenticate.
///
/// | outcome | when |
/// |---|---|
/// | `Pass` | a fresh login returns a uid |
/// | `Fail` | the login is refused (wrong credentials, a second factor required), or Odoo answers with another error (database not found, PostgreSQL down) |
/// | `Err` | no Odoo answer (the `health` and `tcp` gates report reachability) |
///
/// Values: `uid`, `elapsed_ms`.
#[derive(Debug, Clone)]
pub struct AuthenticationGate {
    name: String,
    connection: Arc<Connection>,
}

impl AuthenticationGate {
    /// A gate named `name` logging in to `connection`'s target.
    ///
    /// # Errors
    ///
    /// [`Error::MissingField`] when the target has no database, login, or password or
    /// API key.
    pub fn new(name: impl Into<String>, connection: Arc<Connection>) -> Result<Self> {
        connection.require_credentials()?;
        Ok(AuthenticationGate {
            name: name.into(),
            connection,
        })
    }
}

#[async_trait]
impl Gate for AuthenticationGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, cx: &GateContext) -> Result<Verdict> {
        let client = self.connection.odoo().with_timeout(budget(cx, &self.name)?);
        let login = self.connection.login().unwrap_or_default();
        let db = self.connection.database().unwrap_or_default();
        let start = Instant::now();
        match client.authenticate().await {
            Ok(uid) => Ok(Verdict::pass(format!(
                "`{login}` logged in to `{db}` as uid {uid} over {} in {}",
                client.protocol(),
                human(start.elapsed())
            ))
            .with_value("uid", uid as f64)
            .with_value("elapsed_ms", millis(start.elapsed()))),
            Err(err) => odoo_failure(&self.name, &format!("login of `{login}` to `{db}`"), err),
        }
    }
}

/// What modules pending in `state` mean, and what finishes them.
fn pending_problem(state: &str, names: &[&str]) -> String {
    let list = names.join(", ");
    let n = names.len();
    match state {
        "to upgrade" => format!(
            "{n} installed with an update pending ({state}): {list}; finish the update (odoo -u {})",
            names.join(",")
        ),
        "to install" => format!(
            "{n} marked for installation, not installed yet ({state}): {list}; finish it (odoo -i {})",
            names.join(",")
        ),
        "to remove" => format!(
            "{n} installed and marked for removal ({state}): {list}; finish or cancel the uninstallation"
        ),
        _ => format!("{n} {state}: {list}"),
    }
}

/// The states a deployed instance must not leave any module in.
const PENDING: [&str; 3] = ["to install", "to upgrade", "to remove"];

/// Checks the modules of the target's database: the named ones are `installed`, and no
/// module is `to install`, `to upgrade` or `to remove` (an update that did not run, or
/// ran halfway).
///
/// One `search_read` on `ir.module.module` for the named modules and the pending ones.
///
/// | outcome | when |
/// |---|---|
/// | `Pass` | every named module installed, no module pending |
/// | `Fail` | a named module missing or in another state, a module pending, Odoo answers with an error |
/// | `Err` | no Odoo answer |
///
/// Values: `installed` (named modules installed), `not_installed`, `pending`,
/// `to_install`, `to_upgrade`, `to_remove`.
#[derive(Debug, Clone)]
pub struct ModulesGate {
    name: String,
    connection: Arc<Connection>,
    modules: Vec<String>,
}

impl ModulesGate {
    /// A gate named `name` checking `connection`'s target.
    ///
    /// # Errors
    ///
    /// [`Error::MissingField`] when the target cannot authenticate (no database, login,
    /// or password or API key).
    pub fn new(
        name: impl Into<String>,
        connection: Arc<Connection>,
        settings: &ModulesSettings,
    ) -> Result<Self> {
        connection.require_credentials()?;
        Ok(ModulesGate {
            name: name.into(),
            connection,
            modules: settings.modules.clone(),
        })
    }
}

#[derive(Deserialize)]
struct ModuleRow {
    name: String,
    state: String,
}

#[async_trait]
impl Gate for ModulesGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, cx: &GateContext) -> Result<Verdict> {
        let client = self.connection.odoo().with_timeout(budget(cx, &self.name)?);
        let pending = Domain::leaf("state", Op::In, serde_json::json!(PENDING));
        let domain = if self.modules.is_empty() {
            pending
        } else {
            Domain::leaf("name", Op::In, serde_json::json!(self.modules)).or(pending)
        };
        let rows: Vec<ModuleRow> = match client
            .search_read(
                "ir.module.module",
                &domain,
                &["name", "state"],
                &SearchOptions::default().order("name asc"),
            )
            .await
        {
            Ok(rows) => rows,
            Err(err) => return odoo_failure(&self.name, "reading ir.module.module", err),
        };
        let states: BTreeMap<&str, &str> = rows
            .iter()
            .map(|row| (row.name.as_str(), row.state.as_str()))
            .collect();

        // A named module `to upgrade` or `to remove` is installed, with an operation
        // pending: it is reported with the pending ones, not as missing (the fix is to
        // finish the update, not to install it).
        let mut not_installed = Vec::new();
        for module in &self.modules {
            match states.get(module.as_str()) {
                Some(&"installed" | &"to upgrade" | &"to remove") => {}
                Some(state) => not_installed.push(format!("{module} ({state})")),
                None => not_installed.push(format!("{module} (not found)")),
            }
        }
        let mut by_state: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for row in &rows {
            if PENDING.contains(&row.state.as_str()) {
                by_state.entry(&row.state).or_default().push(&row.name);
            }
        }
        let count = |state: &str| by_state.get(state).map_or(0, Vec::len) as f64;
        let pending_total: usize = by_state.values().map(Vec::len).sum();
        let installed = self.modules.len() - not_installed.len();

        let mut problems = Vec::new();
        if !not_installed.is_empty() {
            problems.push(format!("not installed: {}", not_installed.join(", ")));
        }
        for (state, names) in &by_state {
            problems.push(pending_problem(state, names));
        }
        let verdict = if problems.is_empty() {
            let named = if self.modules.is_empty() {
                String::new()
            } else {
                format!("{} installed; ", self.modules.join(", "))
            };
            Verdict::pass(format!("{named}no module pending"))
        } else {
            Verdict::fail(problems.join("; "))
        };
        Ok(verdict
            .with_value("installed", installed as f64)
            .with_value("not_installed", not_installed.len() as f64)
            .with_value("pending", pending_total as f64)
            .with_value("to_install", count("to install"))
            .with_value("to_upgrade", count("to upgrade"))
            .with_value("to_remove", count("to remove")))
    }
}
