//! The `postgres` gate and its settings.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use deploy_core::secrecy::{ExposeSecret, SecretString};
use deploy_core::SecretRef;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_postgres::{Client, Config, NoTls};

use super::common::{budget, human, millis};
use crate::settings::{invalid, opt_duration};
use crate::{Error, Gate, GateContext, Result, Scope, Verdict};

/// Client backends in use and the server's limit, in one round trip.
const CONNECTIONS: &str = "SELECT (SELECT count(*) FROM pg_stat_activity \
     WHERE backend_type = 'client backend')::int8, \
     current_setting('max_connections')::int8";

/// Checks PostgreSQL directly: it answers `SELECT 1`, and the client connections in use
/// (`pg_stat_activity`, client backends) stay below `max_connections` with room to
/// spare: Odoo workers, cron and a second slot all open connections, and a full server
/// refuses new ones.
///
/// The connection is opened on the first check and kept for the next rounds (it counts
/// as one of the connections in use); it is opened again when it broke. No TLS
/// (`NoTls`).
///
/// | outcome | when |
/// |---|---|
/// | `Pass` | `SELECT 1` answers and connections in use are below `warn_percent` of `max_connections` |
/// | `Warn` | from `warn_percent` (default 80%) |
/// | `Fail` | from `fail_percent` (default 90%); or no connection (refused, authentication failed, no answer within `connect_timeout`): reaching PostgreSQL is this gate's point |
/// | `Err` | connected, but a query failed or answered something unexpected |
///
/// Values: `connections_used`, `max_connections`, `connections_percent`,
/// `query_ms`, `connect_ms` (when it connected in this check).
pub struct PostgresGate {
    name: String,
    config: Config,
    secrets: Vec<SecretString>,
    warn_percent: f64,
    fail_percent: f64,
    connect_timeout: Duration,
    client: Mutex<Option<Client>>,
}

impl fmt::Debug for PostgresGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresGate")
            .field("name", &self.name)
            .field("hosts", &self.config.get_hosts())
            .field("ports", &self.config.get_ports())
            .field("user", &self.config.get_user())
            .field("dbname", &self.config.get_dbname())
            .field("warn_percent", &self.warn_percent)
            .field("fail_percent", &self.fail_percent)
            .finish_non_exhaustive()
    }
}

impl PostgresGate {
    /// Connect timeout when none is set.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

    /// A gate named `name` connecting with `dsn` (a `postgres://` URL or a `key=value`
    /// connection string), with the thresholds of `settings` (its `dsn` reference is
    /// not used: the caller resolved it into `dsn`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] (field `dsn`) when the DSN does not parse; the message
    /// never quotes it.
    pub fn new(
        name: impl Into<String>,
        dsn: &SecretString,
        settings: &PostgresSettings,
    ) -> Result<Self> {
        let name = name.into();
        let config: Config =
            dsn.expose_secret()
                .parse()
                .map_err(|err: tokio_postgres::Error| Error::InvalidValue {
                    scope: Scope::Gate(name.clone()),
                    field: "dsn".to_owned(),
                    reason: redact(&err.to_string(), &[dsn.expose_secret()]),
                })?;
        let mut secrets = vec![dsn.clone()];
        if let Some(password) = config.get_password() {
            if let Ok(password) = std::str::from_utf8(password) {
                if !password.is_empty() {
                    secrets.push(SecretString::from(password.to_owned()));
                }
            }
        }
        Ok(PostgresGate {
            name,
            config,
            secrets,
            warn_percent: settings.warn_percent,
            fail_percent: settings.fail_percent,
            connect_timeout: settings
                .connect_timeout
                .unwrap_or(Self::DEFAULT_CONNECT_TIMEOUT),
            client: Mutex::new(None),
        })
    }

    fn redact(&self, text: &str) -> String {
        let secrets: Vec<&str> = self.secrets.iter().map(|s| s.expose_secret()).collect();
        redact(text, &secrets)
    }

    fn server(&self) -> String {
        use tokio_postgres::config::Host;
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            #[cfg(unix)]
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!("{host}:{port}")
    }
}

/// `text` with every secret replaced by `[REDACTED]`.
fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret, "[REDACTED]")
        })
}

#[async_trait]
impl Gate for PostgresGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, cx: &GateContext) -> Result<Verdict> {
        let deadline = Instant::now() + budget(cx, &self.name)?;
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_some_and(Client::is_closed) {
            *slot = None;
        }
        let mut connect_ms = None;
        if slot.is_none() {
            let limit = self
                .connect_timeout
                .min(deadline.saturating_duration_since(Instant::now()));
            let start = Instant::now();
            match tokio::time::timeout(limit, self.config.connect(NoTls)).await {
                Ok(Ok((client, connection))) => {
                    let gate = self.name.clone();
                    tokio::spawn(async move {
                        if let Err(err) = connection.await {
                            tracing::debug!(gate, error = %err, "postgres connection ended");
                        }
                    });
                    connect_ms = Some(millis(start.elapsed()));
                    *slot = Some(client);
                }
                Ok(Err(err)) => {
                    return Ok(Verdict::fail(format!(
                        "cannot connect to PostgreSQL at {}: {}",
                        self.server(),
                        self.redact(&super::common::chain(&err))
                    )))
                }
                Err(_elapsed) => {
                    return Ok(Verdict::fail(format!(
                        "no connection to PostgreSQL at {} within {}",
                        self.server(),
                        human(limit)
                    )))
                }
            }
        }
        let Some(client) = slot.as_ref() else {
            return Err(Error::check(&self.name, "no connection"));
        };

        let start = Instant::now();
        let queries = async {
            client.simple_query("SELECT 1").await?;
            client.query_one(CONNECTIONS, &[]).await
        };
        let row = match tokio::time::timeout_at(deadline, queries).await {
            Ok(Ok(row)) => row,
            Ok(Err(err)) => {
                *slot = None;
                return Err(Error::check(
                    &self.name,
                    format!(
                        "querying PostgreSQL: {}",
                        self.redact(&super::common::chain(&err))
                    ),
                ));
            }
            Err(_elapsed) => {
                *slot = None;
                return Err(Error::check(
                    &self.name,
                    "PostgreSQL did not answer the queries before the gate's deadline",
                ));
            }
        };
        let query_ms = millis(start.elapsed());
        let (used, max): (i64, i64) = match (row.try_get(0), row.try_get(1)) {
            (Ok(used), Ok(max)) => (used, max),
            _ => {
                return Err(Error::check(
                    &self.name,
                    "unexpected answer to the connection count query",
                ))
            }
        };
        if max <= 0 {
            return Err(Error::check(
                &self.name,
                format!("max_connections is {max}"),
            ));
        }
        let percent = used as f64 * 100.0 / max as f64;
        let usage = format!("SELECT 1 ok; {used} of {max} connections in use ({percent:.1}%)");
        let verdict = if percent >= self.fail_percent {
            Verdict::fail(format!(
                "{usage}: reaches fail_percent {}",
                self.fail_percent
            ))
        } else if percent >= self.warn_percent {
            Verdict::warn(format!(
                "{usage}: reaches warn_percent {}",
                self.warn_percent
            ))
        } else {
            Verdict::pass(usage)
        };
        let mut verdict = verdict
            .with_value("connections_used", used as f64)
            .with_value("max_connections", max as f64)
            .with_value("connections_percent", percent)
            .with_value("query_ms", query_ms);
        if let Some(connect_ms) = connect_ms {
            verdict = verdict.with_value("connect_ms", connect_ms);
        }
        Ok(verdict)
    }
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

    /// Checks the values the types let through (and that the DSN is not plaintext).
    pub(crate) fn validate(&self, gate: &str) -> Result<()> {
        if !self.dsn.is_allowed() {
            return Err(Error::PlaintextSecret {
                scope: Scope::Gate(gate.to_owned()),
                field: "dsn".into(),
            });
        }
        check_percents(self.warn_percent, self.fail_percent).map_err(|(field, reason)| {
            Error::InvalidValue {
                scope: Scope::Gate(gate.to_owned()),
                field: field.to_owned(),
                reason,
            }
        })?;
        if self.connect_timeout == Some(Duration::ZERO) {
            return invalid(gate, "connect_timeout", "must be above zero".into());
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

fn default_warn_percent() -> f64 {
    80.0
}

fn default_fail_percent() -> f64 {
    90.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_every_secret() {
        assert_eq!(
            redact(
                "password hunter2 in postgres://u:hunter2@h",
                &["hunter2", ""]
            ),
            "password [REDACTED] in postgres://u:[REDACTED]@h"
        );
    }
}
