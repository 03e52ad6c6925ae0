//! The `health` gate and its settings.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::time::Instant;

use super::common::{budget, chain, human, millis, Connection};
use crate::settings::{default_probe_warn_ms, invalid};
use crate::{Gate, GateContext, Result, Verdict};

/// Checks `GET /web/health` (optionally `?db_server_status=1`).
///
/// | outcome | when |
/// |---|---|
/// | `Pass` | HTTP 200 and `{"status": "pass"}` (and `db_server_status: true` when asked) |
/// | `Warn` | a pass slower than `warn_ms`; or `db_server_status` asked but not reported (Odoo 16 ignores the parameter) |
/// | `Fail` | `"fail"`, `db_server_status: false`, any other answer, no answer (refused, timeout, a proxy's error page) |
/// | `Err` | only when no time is left before the deadline: a dead server is the finding here |
///
/// Values: `elapsed_ms`, `http_status` (when an answer came), `db_server_status` (1 or
/// 0, when reported).
#[derive(Debug, Clone)]
pub struct HealthGate {
    name: String,
    connection: Arc<Connection>,
    db_server_status: bool,
    warn_after: Duration,
}

impl HealthGate {
    /// A gate named `name` checking `connection`'s target.
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        connection: Arc<Connection>,
        settings: &HealthSettings,
    ) -> Self {
        HealthGate {
            name: name.into(),
            connection,
            db_server_status: settings.db_server_status,
            warn_after: Duration::from_millis(settings.warn_ms),
        }
    }
}

#[async_trait]
impl Gate for HealthGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, cx: &GateContext) -> Result<Verdict> {
        let client = self.connection.odoo().with_timeout(budget(cx, &self.name)?);
        let start = Instant::now();
        let answer = if self.db_server_status {
            client.health_with_db().await
        } else {
            client.health().await
        };
        let elapsed = start.elapsed();
        let health = match answer {
            Ok(health) => health,
            Err(err) => {
                return Ok(Verdict::fail(format!("no health answer: {}", chain(&err)))
                    .with_value("elapsed_ms", millis(elapsed)))
            }
        };
        let mut values = vec![
            ("elapsed_ms", millis(elapsed)),
            ("http_status", f64::from(health.http_status)),
        ];
        if let Some(up) = health.db_server_status {
            values.push(("db_server_status", if up { 1.0 } else { 0.0 }));
        }
        let verdict = if health.db_server_status == Some(false) {
            Verdict::fail(format!(
                "the database server is down (db_server_status false, http {})",
                health.http_status
            ))
        } else if health.status != "pass" || health.http_status != 200 {
            Verdict::fail(format!(
                "status \"{}\" (http {})",
                health.status, health.http_status
            ))
        } else if self.db_server_status && health.db_server_status.is_none() {
            Verdict::warn(
                "pass, but the server did not report db_server_status (Odoo 16 ignores it): \
                 the database server was not checked",
            )
        } else if elapsed >= self.warn_after {
            Verdict::warn(format!(
                "pass, but slow: {} (warn_ms {})",
                human(elapsed),
                self.warn_after.as_millis()
            ))
        } else if self.db_server_status {
            Verdict::pass(format!("pass, database server up, in {}", human(elapsed)))
        } else {
            Verdict::pass(format!("pass in {}", human(elapsed)))
        };
        Ok(values.into_iter().fold(verdict, |verdict, (name, value)| {
            verdict.with_value(name, value)
        }))
    }
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

impl HealthSettings {
    /// Checks the values the types let through.
    pub(crate) fn validate(&self, gate: &str) -> Result<()> {
        if self.warn_ms == 0 {
            return invalid(gate, "warn_ms", "must be above zero".into());
        }
        Ok(())
    }
}
