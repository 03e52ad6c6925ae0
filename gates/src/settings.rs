//! Gate kinds and their kind-specific settings.
//!
//! Every `[[gates]]` entry has a `kind`; the keys of the entry other than the common
//! ones (`name`, `kind`, `target`, `timeout`, `failure_limit`, `consecutive_error_limit`,
//! `depends_on`) are that kind's settings, parsed into the matching struct re-exported
//! here ([`TcpSettings`], [`HealthSettings`], ...). Unknown keys are errors, so a typo
//! (`warn_msx`) does not silently fall back to a default.
//!
//! This module holds [`GateKind`], [`GateSettings`] (parsing, and the dispatch of each
//! kind's checks of its values) and what several kinds share. Each settings struct,
//! with its defaults and its checks, lives with its gate in the kind's file of
//! [`crate::builtin`] (`builtin/tcp.rs`, `builtin/websocket_health.rs`, ...).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

pub use crate::builtin::authentication::AuthenticationSettings;
pub use crate::builtin::coverage::CoverageSettings;
pub use crate::builtin::database_listed::DatabaseListedSettings;
pub use crate::builtin::filestore::FilestoreSettings;
pub use crate::builtin::health::HealthSettings;
pub use crate::builtin::login_page::LoginPageSettings;
pub use crate::builtin::modules::ModulesSettings;
pub use crate::builtin::postgres::PostgresSettings;
pub use crate::builtin::response_time::ResponseTimeSettings;
pub use crate::builtin::session_continuity::SessionContinuitySettings;
pub use crate::builtin::smoke_crud::SmokeCrudSettings;
pub use crate::builtin::tcp::TcpSettings;
pub use crate::builtin::version::VersionSettings;
pub use crate::builtin::websocket_health::WebsocketHealthSettings;
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
    /// `coverage`: the addons' test coverage (coverage.py's report) reaches a threshold
    /// and did not drop below the previous run's.
    Coverage,
}

impl GateKind {
    /// Every kind, in documentation order.
    pub const ALL: [GateKind; 14] = [
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
        GateKind::Coverage,
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
            GateKind::Coverage => "coverage",
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
    /// `kind = "coverage"`.
    Coverage(CoverageSettings),
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
            GateSettings::Coverage(_) => GateKind::Coverage,
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
            GateKind::Coverage => GateSettings::Coverage(de(gate, kind, table)?),
        };
        settings.validate(gate)?;
        Ok(settings)
    }

    /// Checks the values of the settings, each kind with its own rules.
    pub(crate) fn validate(&self, gate: &str) -> Result<()> {
        match self {
            GateSettings::Tcp(s) => s.validate(gate),
            GateSettings::Health(s) => s.validate(gate),
            GateSettings::WebsocketHealth(s) => s.validate(gate),
            GateSettings::LoginPage(s) => s.validate(gate),
            GateSettings::Postgres(s) => s.validate(gate),
            GateSettings::Modules(s) => s.validate(gate),
            GateSettings::SmokeCrud(s) => s.validate(gate),
            GateSettings::Filestore(s) => s.validate(gate),
            GateSettings::SessionContinuity(s) => s.validate(gate),
            GateSettings::ResponseTime(s) => s.validate(gate),
            GateSettings::Coverage(s) => s.validate(gate),
            GateSettings::DatabaseListed(_)
            | GateSettings::Authentication(_)
            | GateSettings::Version(_) => Ok(()),
        }
    }
}

/// The error of gate `gate`'s setting `field`, whose value is not valid for `reason`.
pub(crate) fn invalid(gate: &str, field: &str, reason: String) -> Result<()> {
    Err(Error::InvalidValue {
        scope: Scope::Gate(gate.to_owned()),
        field: field.to_owned(),
        reason,
    })
}

/// Checks the `path` and `warn_ms` of a probe of one route (`websocket-health`,
/// `login-page`).
pub(crate) fn check_probe(gate: &str, path: &str, warn_ms: u64) -> Result<()> {
    if !path.starts_with('/') {
        return invalid(gate, "path", format!("`{path}` must start with `/`"));
    }
    if warn_ms == 0 {
        return invalid(gate, "warn_ms", "must be above zero".into());
    }
    Ok(())
}

/// The default `warn_ms` of the probes (`health`, `websocket-health`, `login-page`).
pub(crate) fn default_probe_warn_ms() -> u64 {
    2000
}

/// Deserializes an optional humantime duration (`"3s"`).
pub(crate) fn opt_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<Duration>, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map(Some).map_err(|err| {
        serde::de::Error::custom(format_args!(
            "`{text}` is not a duration ({err}); write e.g. \"30s\", \"500ms\""
        ))
    })
}
