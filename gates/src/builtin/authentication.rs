//! The `authentication` gate and its settings (none).

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::time::Instant;

use super::common::{budget, human, millis, odoo_failure, Connection};
use crate::{Gate, GateContext, Result, Verdict};

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
    /// [`Error::MissingField`](crate::Error::MissingField) when the target has no
    /// database, login, or password or API key.
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

/// Settings of an `authentication` gate: none; it uses the target's `login` and
/// `password` or `api_key`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthenticationSettings {}
