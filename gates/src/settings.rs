//! Gate kinds and their kind-specific settings.
//!
//! Every `[[gates]]` entry has a `kind`; the keys of the entry other than the common
//! ones (`name`, `kind`, `target`, `timeout`, `failure_limit`, `consecutive_error_limit`,
//! `depends_on`) are that kind's settings, parsed into the matching struct here. Unknown
//! keys are errors, so a typo (`warn_msx`) does not silently fall back to a default.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use deploy_core::SecretRef;
use serde::{Deserialize, Deserializer, Serialize};

use crate::{Error, Result, Scope};

/// The kinds of gate a plan can name.
///
/// Only [`GateKind::Tcp`] has a built-in implementation in this crate today; the others
/// need the Odoo client and are built by a [`GateFactory`](crate::GateFactory) registered
/// for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum GateKind {
    /// `tcp`: a TCP connection to the target's host and port opens.
    Tcp,
    /// `health`: `GET /web/health` answers `{"status": "pass"}`.
    Health,
    /// `websocket-health`: the websocket route (`/websocket`) accepts an upgrade.
    WebsocketHealth,
    /// `login-page`: `/web/login` renders.
    LoginPage,
    /// `database-listed`: the database is in `/web/database/list`.
    DatabaseListed,
    /// `postgres`: PostgreSQL answers on a DSN.
    Postgres,
    /// `authentication`: the target's login and password (or API key) authenticate.
    Authentication,
    /// `version`: the server reports the expected version and release.
    Version,
    /// `modules`: the listed modules are installed with no pending upgrade.
    Modules,
    /// `smoke-crud`: a record can be created, read, written and deleted.
    SmokeCrud,
    /// `filestore`: an attachment round-trips, and the filestore's disk has room.
    Filestore,
    /// `response-time`: routes answer fast enough at a given concurrency.
    ResponseTime,
    /// `session-continuity`: a web session survives (e.g. a slot switch).
    SessionContinuity,
}

impl GateKind {
    /// Every kind, in documentation order.
    pub const ALL: [GateKind; 13] = [
        GateKind::Tcp,
        GateKind::Health,
        GateKind::WebsocketHealth,
        GateKind::LoginPage,
        GateKind::DatabaseListed,
        GateKind::Postgres,
        GateKind::Authentication,
        GateKind::Version,
        GateKind::Modules,
        GateKind::SmokeCrud,
        GateKind::Filestore,
        GateKind::ResponseTime,
        GateKind::SessionContinuity,
    ];

    /// The name used in plans: `"tcp"`, `"websocket-health"`, ...
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            GateKind::Tcp => "tcp",
            GateKind::Health => "health",
            GateKind::WebsocketHealth => "websocket-health",
            GateKind::LoginPage => "login-page",
            GateKind::DatabaseListed => "database-listed",
            GateKind::Postgres => "postgres",
            GateKind::Authentication => "authentication",
            GateKind::Version => "version",
            GateKind::Modules => "modules",
            GateKind::SmokeCrud => "smoke-crud",
            GateKind::Filestore => "filestore",
            GateKind::ResponseTime => "response-time",
            GateKind::SessionContinuity => "session-continuity",
        }
    }

    /// The kind with this plan name, if any (exact, lower case).
    #[must_use]
    pub fn from_name(name: &str) -> Option<GateKind> {
        GateKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    pub(crate) fn known_list() -> String {
        GateKind::ALL
            .iter()
            .map(|kind| kind.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for GateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GateKind {
    type Err = UnknownGateKind;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        GateKind::from_name(s).ok_or_else(|| UnknownGateKind(s.to_owned()))
    }
}

/// The error of `GateKind::from_str`: the string that is not a kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown gate kind `{0}`")]
pub struct UnknownGateKind(pub String);

/// A gate's kind and its kind-specific settings, typed.
///
/// ```
/// use deploy_gates::{GateKind, GateSettings, ResponseTimeSettings};
///
/// let settings = GateSettings::ResponseTime(ResponseTimeSettings::default());
/// assert_eq!(settings.kind(), GateKind::ResponseTime);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum GateSettings {
    /// `kind = "tcp"`.
    Tcp(TcpSettings),
    /// `kind = "health"`.
    Health(HealthSettings),
    /// `kind = "websocket-health"`.
    WebsocketHealth(WebsocketHealthSettings),
    /// `kind = "login-page"`.
    LoginPage(LoginPageSettings),
    /// `kind = "database-listed"`.
    DatabaseListed(DatabaseListedSettings),
    /// `kind = "postgres"`.
    Postgres(PostgresSettings),
    /// `kind = "authentication"`.
    Authentication(AuthenticationSettings),
    /// `kind = "version"`.
    Version(VersionSettings),
    /// `kind = "modules"`.
    Modules(ModulesSettings),
    /// `kind = "smoke-crud"`.
    SmokeCrud(SmokeCrudSettings),
    /// `kind = "filestore"`.
    Filestore(FilestoreSettings),
    /// `kind = "response-time"`.
    ResponseTime(ResponseTimeSettings),
    /// `kind = "session-continuity"`.
    SessionContinuity(SessionContinuitySettings),
}

impl GateSettings {
    /// The kind these settings belong to.
    #[must_use]
    pub fn kind(&self) -> GateKind {
        match self {
            GateSettings::Tcp(_) => GateKind::Tcp,
            GateSettings::Health(_) => GateKind::Health,
            GateSettings::WebsocketHealth(_) => GateKind::WebsocketHealth,
            GateSettings::LoginPage(_) => GateKind::LoginPage,
            GateSettings::DatabaseListed(_) => GateKind::DatabaseListed,
            GateSettings::Postgres(_) => GateKind::Postgres,
            GateSettings::Authentication(_) => GateKind::Authentication,
            GateSettings::Version(_) => GateKind::Version,
            GateSettings::Modules(_) => GateKind::Modules,
            GateSettings::SmokeCrud(_) => GateKind::SmokeCrud,
            GateSettings::Filestore(_) => GateKind::Filestore,
            GateSettings::ResponseTime(_) => GateKind::ResponseTime,
            GateSettings::SessionContinuity(_) => GateKind::SessionContinuity,
        }
    }

    /// Parses the kind-specific keys of gate `gate` into the settings of `kind`, then
    /// checks their values.
    pub(crate) fn parse(gate: &str, kind: GateKind, table: toml::Table) -> Result<GateSettings> {
        fn de<T: serde::de::DeserializeOwned>(
            gate: &str,
            kind: GateKind,
            table: toml::Table,
        ) -> Result<T> {
            T::deserialize(table).map_err(|err| Error::InvalidSettings {
                gate: gate.to_owned(),
                kind,
                // toml appends "\nin `key`\n": keep it, on one line.
                message: err.to_string().trim().replace('\n', " "),
            })
        }
        let settings = match kind {
            GateKind::Tcp => GateSettings::Tcp(de(gate, kind, table)?),
            GateKind::Health => GateSettings::Health(de(gate, kind, table)?),
            GateKind::WebsocketHealth => GateSettings::WebsocketHealth(de(gate, kind, table)?),
            GateKind::LoginPage => GateSettings::LoginPage(de(gate, kind, table)?),
            GateKind::DatabaseListed => GateSettings::DatabaseListed(de(gate, kind, table)?),
            GateKind::Postgres => GateSettings::Postgres(de(gate, kind, table)?),
            GateKind::Authentication => GateSettings::Authentication(de(gate, kind, table)?),
            GateKind::Version => GateSettings::Version(de(gate, kind, table)?),
            GateKind::Modules => GateSettings::Modules(de(gate, kind, table)?),
            GateKind::SmokeCrud => GateSettings::SmokeCrud(de(gate, kind, table)?),
            GateKind::Filestore => GateSettings::Filestore(de(gate, kind, table)?),
            GateKind::ResponseTime => GateSettings::ResponseTime(de(gate, kind, table)?),
            GateKind::SessionContinuity => GateSettings::SessionContinuity(de(gate, kind, table)?),
        };
        settings.validate(gate)?;
        Ok(settings)
    }

    fn validate(&self, gate: &str) -> Result<()> {
        let invalid = |field: &str, reason: String| {
            Err(Error::InvalidValue {
                scope: Scope::Gate(gate.to_owned()),
                field: field.to_owned(),
                reason,
            })
        };
        match self {
            GateSettings::Tcp(s) => {
                if s.port == Some(0) {
                    return invalid("port", "must be between 1 and 65535".into());
                }
                if s.connect_timeout == Some(Duration::ZERO) {
                    return invalid("connect_timeout", "must be above zero".into());
                }
            }
            GateSettings::WebsocketHealth(WebsocketHealthSettings { path })
            | GateSettings::LoginPage(LoginPageSettings { path }) => {
                if !path.starts_with('/') {
                    return invalid("path", format!("`{path}` must start with `/`"));
                }
            }
            GateSettings::Postgres(s) => {
                if !s.dsn.is_allowed() {
                    return Err(Error::PlaintextSecret {
                        scope: Scope::Gate(gate.to_owned()),
                        field: "dsn".into(),
                    });
                }
            }
            GateSettings::Modules(s) => {
                if s.modules.is_empty() {
                    return invalid("modules", "must list at least one module".into());
                }
                if let Some(empty) = s.modules.iter().find(|m| m.trim().is_empty()) {
                    return invalid("modules", format!("`{empty}` is not a module name"));
                }
            }
            GateSettings::SmokeCrud(s) => {
                if s.model.trim().is_empty() {
                    return invalid("model", "must not be empty".into());
                }
            }
            GateSettings::Filestore(s) => {
                for (field, value) in [
                    ("warn_percent", s.warn_percent),
                    ("fail_percent", s.fail_percent),
                ] {
                    if !(value > 0.0 && value <= 100.0) {
                        return invalid(field, format!("{value} is not in (0, 100]"));
                    }
                }
                if s.warn_percent > s.fail_percent {
                    return invalid(
                        "warn_percent",
                        format!(
                            "{} is above fail_percent ({})",
                            s.warn_percent, s.fail_percent
                        ),
                    );
                }
            }
            GateSettings::ResponseTime(s) => {
                if s.routes.is_empty() {
                    return invalid("routes", "must list at least one route".into());
                }
                if let Some(route) = s.routes.iter().find(|r| !r.starts_with('/')) {
                    return invalid("routes", format!("`{route}` must start with `/`"));
                }
                if s.requests == 0 {
                    return invalid("requests", "must be at least 1".into());
                }
                if s.concurrency == 0 {
                    return invalid("concurrency", "must be at least 1".into());
                }
                if s.warn_ms > s.fail_ms {
                    return invalid(
                        "warn_ms",
                        format!("{} is above fail_ms ({})", s.warn_ms, s.fail_ms),
                    );
                }
            }
            GateSettings::Health(_)
            | GateSettings::DatabaseListed(_)
            | GateSettings::Authentication(_)
            | GateSettings::Version(_)
            | GateSettings::SessionContinuity(_) => {}
        }
        Ok(())
    }
}

/// Settings of a `tcp` gate.
///
/// ```toml
/// port = 8072             # default: the target URL's port (or 80/443 from its scheme)
/// connect_timeout = "3s"  # default 5s, and never beyond the gate's own timeout
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpSettings {
    /// Port to connect to instead of the target URL's.
    #[serde(default)]
    pub port: Option<u16>,
    /// How long a connection attempt may take before the verdict is `Fail`.
    #[serde(default, deserialize_with = "opt_duration")]
    pub connect_timeout: Option<Duration>,
}

/// Settings of a `health` gate.
///
/// ```toml
/// db_server_status = true   # default false: also ask Odoo to check its database server
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    /// Ask `/web/health?db_server_status=1`, which also checks PostgreSQL.
    #[serde(default)]
    pub db_server_status: bool,
}

/// Settings of a `websocket-health` gate.
///
/// ```toml
/// path = "/websocket"   # default
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebsocketHealthSettings {
    /// The websocket route.
    #[serde(default = "default_websocket_path")]
    pub path: String,
}

impl Default for WebsocketHealthSettings {
    fn default() -> Self {
        WebsocketHealthSettings {
            path: default_websocket_path(),
        }
    }
}

fn default_websocket_path() -> String {
    "/websocket".to_owned()
}

/// Settings of a `login-page` gate.
///
/// ```toml
/// path = "/web/login"   # default
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginPageSettings {
    /// The login route.
    #[serde(default = "default_login_path")]
    pub path: String,
}

impl Default for LoginPageSettings {
    fn default() -> Self {
        LoginPageSettings {
            path: default_login_path(),
        }
    }
}

fn default_login_path() -> String {
    "/web/login".to_owned()
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

/// Settings of a `postgres` gate.
///
/// ```toml
/// dsn = { env = "PG_DSN" }   # required; a secret reference (it holds a password)
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSettings {
    /// Connection string, e.g. `postgres://odoo:...@db:5432/postgres`.
    pub dsn: SecretRef,
}

/// Settings of an `authentication` gate: none; it uses the target's `login` and
/// `password` or `api_key`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthenticationSettings {}

/// Settings of a `version` gate.
///
/// ```toml
/// expected_version = "17.0"         # server_serie must match (optional)
/// expected_release = "2025.01.1"    # X-Odoo-Release / release label must match (optional)
/// ```
/// With neither set, the gate passes when the server reports a version at all, and
/// records it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionSettings {
    /// Expected `server_serie`, e.g. `"17.0"` or `"saas~17.1"`.
    #[serde(default)]
    pub expected_version: Option<String>,
    /// Expected release label of the deployed build.
    #[serde(default)]
    pub expected_release: Option<String>,
}

/// Settings of a `modules` gate.
///
/// ```toml
/// modules = ["sale", "stock"]   # required, at least one
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModulesSettings {
    /// Modules that must be `installed` (not `to upgrade`, `to install`, ...).
    pub modules: Vec<String>,
}

/// Settings of a `smoke-crud` gate.
///
/// ```toml
/// model = "res.partner"   # default
/// cleanup = true          # default: delete the record afterwards
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeCrudSettings {
    /// Model to create, read, write and delete a record of.
    #[serde(default = "default_model")]
    pub model: String,
    /// Delete the record at the end.
    #[serde(default = "default_true")]
    pub cleanup: bool,
}

impl Default for SmokeCrudSettings {
    fn default() -> Self {
        SmokeCrudSettings {
            model: default_model(),
            cleanup: true,
        }
    }
}

fn default_model() -> String {
    "res.partner".to_owned()
}

fn default_true() -> bool {
    true
}

/// Settings of a `filestore` gate.
///
/// ```toml
/// path = "/var/lib/odoo/filestore"   # optional: check the disk holding it
/// warn_percent = 80                  # default 80: Warn at or above this disk usage
/// fail_percent = 90                  # default 90: Fail at or above this disk usage
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilestoreSettings {
    /// Local path of the filestore, when the gate runs where it is mounted.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Disk usage (percent) from which the verdict is `Warn`.
    #[serde(default = "default_warn_percent")]
    pub warn_percent: f64,
    /// Disk usage (percent) from which the verdict is `Fail`.
    #[serde(default = "default_fail_percent")]
    pub fail_percent: f64,
}

impl Default for FilestoreSettings {
    fn default() -> Self {
        FilestoreSettings {
            path: None,
            warn_percent: default_warn_percent(),
            fail_percent: default_fail_percent(),
        }
    }
}

fn default_warn_percent() -> f64 {
    80.0
}

fn default_fail_percent() -> f64 {
    90.0
}

/// Settings of a `response-time` gate: `requests` requests spread over `routes`,
/// `concurrency` at a time; the 95th percentile decides.
///
/// ```toml
/// routes = ["/web/login", "/web/health"]   # default ["/web/login"]
/// requests = 20                            # default 20
/// concurrency = 4                          # default 4
/// warn_ms = 2000                           # default 2000: Warn when p95 >= this
/// fail_ms = 5000                           # default 5000: Fail when p95 >= this
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseTimeSettings {
    /// Routes to request, relative to the target URL.
    #[serde(default = "default_routes")]
    pub routes: Vec<String>,
    /// Number of requests in total.
    #[serde(default = "default_requests")]
    pub requests: u32,
    /// Requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// p95 (milliseconds) from which the verdict is `Warn`.
    #[serde(default = "default_warn_ms")]
    pub warn_ms: u64,
    /// p95 (milliseconds) from which the verdict is `Fail`.
    #[serde(default = "default_fail_ms")]
    pub fail_ms: u64,
}

impl Default for ResponseTimeSettings {
    fn default() -> Self {
        ResponseTimeSettings {
            routes: default_routes(),
            requests: default_requests(),
            concurrency: default_concurrency(),
            warn_ms: default_warn_ms(),
            fail_ms: default_fail_ms(),
        }
    }
}

fn default_routes() -> Vec<String> {
    vec!["/web/login".to_owned()]
}

fn default_requests() -> u32 {
    20
}

fn default_concurrency() -> u32 {
    4
}

fn default_warn_ms() -> u64 {
    2000
}

fn default_fail_ms() -> u64 {
    5000
}

/// Settings of a `session-continuity` gate: none; it logs in with the target's
/// credentials and checks the session stays valid.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionContinuitySettings {}

/// Deserializes an optional humantime duration (`"3s"`).
fn opt_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<Duration>, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map(Some).map_err(|err| {
        serde::de::Error::custom(format_args!(
            "`{text}` is not a duration ({err}); write e.g. \"30s\", \"500ms\""
        ))
    })
}
