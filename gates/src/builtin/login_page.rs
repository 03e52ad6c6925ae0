//! The `login-page` gate, and its settings: a plain `GET` of the login route.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::common::{budget, chain, excerpt, http_get, human, millis, Connection};
use crate::settings::{check_probe, default_probe_warn_ms};
use crate::{Gate, GateContext, Result, Verdict};

/// Bodies are read up to this size: a login page is a few kB.
const MAX_BODY: usize = 256 * 1024;

/// Checks that the login page renders: `GET /web/login` answers 200 with a login form.
///
/// The request carries no `?db=` (Odoo answers that with a redirect that sets the
/// session's database): on a server with several databases and no `dbfilter`, the page
/// redirects to the database selector, and the gate fails, as a user's browser would.
///
/// | outcome | when |
/// |---|---|
/// | `Pass` | HTTP 200 with a login form (`name="login"` and `name="password"` inputs) |
/// | `Warn` | HTTP 200 without a recognisable form (a customised page?); a page slower than `warn_ms` |
/// | `Fail` | a redirect (to `/web/database/selector` when no database is chosen or PostgreSQL is down), any other status, no answer |
/// | `Err` | only when no time is left before the deadline |
///
/// Values: `elapsed_ms`, `http_status`, `bytes`.
#[derive(Debug, Clone)]
pub struct LoginPageGate {
    name: String,
    connection: Arc<Connection>,
    path: String,
    warn_after: Duration,
}

impl LoginPageGate {
    /// A gate named `name` checking `connection`'s target.
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        connection: Arc<Connection>,
        settings: &LoginPageSettings,
    ) -> Self {
        LoginPageGate {
            name: name.into(),
            connection,
            path: settings.path.clone(),
            warn_after: Duration::from_millis(settings.warn_ms),
        }
    }
}

#[async_trait]
impl Gate for LoginPageGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, cx: &GateContext) -> Result<Verdict> {
        let url = self.connection.endpoint(&self.path);
        let answer = match http_get(
            self.connection.http(),
            &url,
            budget(cx, &self.name)?,
            MAX_BODY,
        )
        .await
        {
            Ok(answer) => answer,
            Err(err) => {
                return Ok(Verdict::fail(format!(
                    "no answer from {}: {}",
                    self.path,
                    chain(&err)
                )))
            }
        };
        let page = String::from_utf8_lossy(&answer.body);
        let has_form = page.contains("name=\"login\"") && page.contains("name=\"password\"");
        let verdict = match answer.status {
            200 if !has_form => Verdict::warn(format!(
                "http 200, but the page has no login form (customised?): {}",
                excerpt(&answer.body)
            )),
            200 if answer.elapsed >= self.warn_after => Verdict::warn(format!(
                "login form, but slow: {} (warn_ms {})",
                human(answer.elapsed),
                self.warn_after.as_millis()
            )),
            200 => Verdict::pass(format!("login form in {}", human(answer.elapsed))),
            code @ 300..=399 => {
                let location = answer.location.as_deref().unwrap_or("nowhere");
                let hint = if location.contains("/web/database/selector") {
                    ": no database chosen (several databases and no dbfilter, or PostgreSQL down)"
                } else {
                    ""
                };
                Verdict::fail(format!("http {code}: redirected to {location}{hint}"))
            }
            code => Verdict::fail(format!("http {code}: {}", excerpt(&answer.body))),
        };
        Ok(verdict
            .with_value("elapsed_ms", millis(answer.elapsed))
            .with_value("http_status", f64::from(answer.status))
            .with_value("bytes", answer.body.len() as f64))
    }
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

impl LoginPageSettings {
    /// Checks the values the types let through.
    pub(crate) fn validate(&self, gate: &str) -> Result<()> {
        check_probe(gate, &self.path, self.warn_ms)
    }
}
