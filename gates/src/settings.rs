//! Gate kinds and their kind-specific settings.
//!
//! Every `[[gates]]` entry has a `kind`; the keys of the entry other than the common
//! ones (`name`, `kind`, `target`, `timeout`, `failure_limit`, `consecutive_error_limit`,
//! `depends_on`) are that kind's settings, parsed into the matching struct here. Unknown
//! keys are errors, so a typo (`warn_msx`) does not silently fall back to a default.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use deploy_core::SecretRef;
use serde::{Deserialize, Deserializer, Serialize};

use crate::{Error, Result, Scope};

/// The kinds of gate a plan can name.
///
/// Every kind has a built-in implementation in [`crate::builtin`], which
/// [`Registry::with_builtins`](crate::Registry::with_builtins) builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum GateKind {
    /// `tcp`: a TCP connection to the target's host and port opens.
    Tcp,
    /// `health`: `GET /web/health` answers `{"status": "pass"}`.
    Health,
    /// `websocket-health`: a websocket upgrade of `/websocket` on the port that serves
    /// websockets (the target's `realtime_url` in prefork mode) answers 101 and closes
    /// cleanly.
    WebsocketHealth,
    /// `login-page`: `/web/login` answers 200 with a login form.
    LoginPage,
    /// `database-listed`: the database is in `/web/database/list` (or, with `list_db`
    /// off, accepts a login).
    DatabaseListed,
    /// `postgres`: PostgreSQL answers `SELECT 1` on a DSN and has connections to spare.
    Postgres,
    /// `authentication`: the target's login and password (or API key) authenticate.
    Authentication,
    /// `version`: the server reports the expected version and release.
    Version,
    /// `modules`: the listed modules are installed and no module is pending
    /// (`to install`, `to upgrade`, `to remove`).
    Modules,
    /// `smoke-crud`: a record can be created, read, written and deleted.
    SmokeCrud,
    /// `filestore`: an attachment with known content round-trips with the same checksum.
    Filestore,
    /// `response-time`: routes answer fast enough at a given concurrency.
    ResponseTime,
    /// `session-continuity`: a web session opened on another target is valid on this one
    /// (so a slot switch does not log users out).
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

    pub(crate) fn validate(&self, gate: &str) -> Result<()> {
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
            GateSettings::Health(s) => {
                if s.warn_ms == 0 {
                    return invalid("warn_ms", "must be above zero".into());
                }
            }
            GateSettings::WebsocketHealth(WebsocketHealthSettings { path, warn_ms })
            | GateSettings::LoginPage(LoginPageSettings { path, warn_ms }) => {
                if !path.starts_with('/') {
                    return invalid("path", format!("`{path}` must start with `/`"));
                }
                if *warn_ms == 0 {
                    return invalid("warn_ms", "must be above zero".into());
                }
            }
            GateSettings::Postgres(s) => {
                if !s.dsn.is_allowed() {
                    return Err(Error::PlaintextSecret {
                        scope: Scope::Gate(gate.to_owned()),
                        field: "dsn".into(),
                    });
                }
                check_percents(s.warn_percent, s.fail_percent).map_err(|(field, reason)| {
                    Error::InvalidValue {
                        scope: Scope::Gate(gate.to_owned()),
                        field: field.to_owned(),
                        reason,
                    }
                })?;
                if s.connect_timeout == Some(Duration::ZERO) {
                    return invalid("connect_timeout", "must be above zero".into());
                }
            }
            GateSettings::Modules(s) => {
                if let Some(empty) = s.modules.iter().find(|m| m.trim().is_empty()) {
                    return invalid("modules", format!("`{empty}` is not a module name"));
                }
            }
            GateSettings::SmokeCrud(s) => {
                if s.model.trim().is_empty() {
                    return invalid("model", "must not be empty".into());
                }
                if s.field.trim().is_empty() {
                    return invalid("field", "must not be empty".into());
                }
                if s.values.contains_key(&s.field) {
                    return invalid(
                        "values",
                        format!("must not set `{}`: the gate writes that field", s.field),
                    );
                }
            }
            GateSettings::Filestore(s) => {
                if s.size_bytes == 0 || s.size_bytes > FilestoreSettings::MAX_SIZE_BYTES {
                    return invalid(
                        "size_bytes",
                        format!(
                            "{} is not between 1 and {}",
                            s.size_bytes,
                            FilestoreSettings::MAX_SIZE_BYTES
                        ),
                    );
                }
            }
            GateSettings::SessionContinuity(s) => {
                if s.from_target.trim().is_empty() {
                    return invalid("from_target", "must name a target".into());
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
                if !(s.fail_error_percent >= 0.0 && s.fail_error_percent <= 100.0) {
                    return invalid(
                        "fail_error_percent",
                        format!("{} is not in [0, 100]", s.fail_error_percent),
                    );
                }
            }
            GateSettings::DatabaseListed(_)
            | GateSettings::Authentication(_)
            | GateSettings::Version(_) => {}
        }
        Ok(())
    }
}

/// Checks a warn/fail pair of percentages: both in (0, 100], warn not above fail.
fn check_percents(warn: f64, fail: f64) -> std::result::Result<(), (&'static str, String)> {
    for (field, value) in [("warn_percent", warn), ("fail_percent", fail)] {
        if !(value > 0.0 && value <= 100.0) {
            return Err((field, format!("{value} is not in (0, 100]")));
        }
    }
    if warn > fail {
        return Err((
            "warn_percent",
            format!("{warn} is above fail_percent ({fail})"),
        ));
    }
    Ok(())
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
/// warn_ms = 2000            # default 2000: Warn when the answer took this long or longer
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    /// Ask `/web/health?db_server_status=1`, which also checks PostgreSQL (Odoo 17+).
    #[serde(default)]
    pub db_server_status: bool,
    /// A passing answer slower than this (milliseconds) is a `Warn`.
    #[serde(default = "default_probe_warn_ms")]
    pub warn_ms: u64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            db_server_status: false,
            warn_ms: default_probe_warn_ms(),
        }
    }
}

fn default_probe_warn_ms() -> u64 {
    2000
}

/// Settings of a `websocket-health` gate.
///
/// ```toml
/// path = "/websocket"   # default: the bus's websocket route, upgraded
/// warn_ms = 2000               # default 2000: Warn when the answer took this long or longer
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebsocketHealthSettings {
    /// The websocket route to upgrade (under the target's `realtime_url`, else its
    /// `url`).
    #[serde(default = "default_websocket_path")]
    pub path: String,
    /// A passing answer slower than this (milliseconds) is a `Warn`.
    #[serde(default = "default_probe_warn_ms")]
    pub warn_ms: u64,
}

impl Default for WebsocketHealthSettings {
    fn default() -> Self {
        WebsocketHealthSettings {
            path: default_websocket_path(),
            warn_ms: default_probe_warn_ms(),
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
/// warn_ms = 2000        # default 2000: Warn when the page took this long or longer
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginPageSettings {
    /// The login route.
    #[serde(default = "default_login_path")]
    pub path: String,
    /// A page slower than this (milliseconds) is a `Warn`.
    #[serde(default = "default_probe_warn_ms")]
    pub warn_ms: u64,
}

impl Default for LoginPageSettings {
    fn default() -> Self {
        LoginPageSettings {
            path: default_login_path(),
            warn_ms: default_probe_warn_ms(),
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
/// warn_percent = 80          # default 80: Warn when this share of max_connections is in use
/// fail_percent = 90          # default 90: Fail from this share on
/// connect_timeout = "5s"     # default 5s, and never beyond the gate's own timeout
/// ```
/// The connection is made without TLS (`NoTls`): point the DSN at a PostgreSQL reachable
/// on a private network or loopback.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSettings {
    /// Connection string, e.g. `postgres://odoo:...@db:5432/postgres`.
    pub dsn: SecretRef,
    /// Connections in use (percent of `max_connections`) from which the verdict is `Warn`.
    #[serde(default = "default_warn_percent")]
    pub warn_percent: f64,
    /// Connections in use (percent of `max_connections`) from which the verdict is `Fail`.
    #[serde(default = "default_fail_percent")]
    pub fail_percent: f64,
    /// How long connecting may take.
    #[serde(default, deserialize_with = "opt_duration")]
    pub connect_timeout: Option<Duration>,
}

impl PostgresSettings {
    /// Settings with the default thresholds for `dsn`.
    #[must_use]
    pub fn new(dsn: SecretRef) -> Self {
        PostgresSettings {
            dsn,
            warn_percent: default_warn_percent(),
            fail_percent: default_fail_percent(),
            connect_timeout: None,
        }
    }
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
/// modules = ["sale", "stock"]   # default []: only check that no module is pending
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModulesSettings {
    /// Modules that must be `installed`. Whatever this lists, no module of the database
    /// may be `to install`, `to upgrade` or `to remove`.
    #[serde(default)]
    pub modules: Vec<String>,
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

fn default_warn_percent() -> f64 {
    80.0
}

fn default_fail_percent() -> f64 {
    90.0
}

/// Settings of a `response-time` gate: `requests` GET requests spread over `routes`
/// (round robin), `concurrency` at a time; the 95th percentile and the error share
/// decide.
///
/// ```toml
/// routes = ["/web/login", "/web/health"]   # default ["/web/login"]
/// requests = 20                            # default 20
/// concurrency = 4                          # default 4
/// warn_ms = 2000                           # default 2000: Warn when p95 >= this
/// fail_ms = 5000                           # default 5000: Fail when p95 >= this
/// fail_error_percent = 10                  # default 10: Fail when this share of requests
///                                          # erred (any error at all is a Warn)
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
    /// Share of requests (percent) that erred (HTTP 4xx/5xx, no answer) from which the
    /// verdict is `Fail`; 0 fails on any error.
    #[serde(default = "default_fail_error_percent")]
    pub fail_error_percent: f64,
}

impl Default for ResponseTimeSettings {
    fn default() -> Self {
        ResponseTimeSettings {
            routes: default_routes(),
            requests: default_requests(),
            concurrency: default_concurrency(),
            warn_ms: default_warn_ms(),
            fail_ms: default_fail_ms(),
            fail_error_percent: default_fail_error_percent(),
        }
    }
}

fn default_fail_error_percent() -> f64 {
    10.0
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

/// Settings of a `session-continuity` gate: it opens a web session on `from_target`
/// (the live slot, with that target's login and password) and checks that the gate's own
/// target accepts it.
///
/// ```toml
/// from_target = "blue"   # required: the name of another [[targets]] entry
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionContinuitySettings {
    /// The target on which the session is opened.
    pub from_target: String,
}

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
