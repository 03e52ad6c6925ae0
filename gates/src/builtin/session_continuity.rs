//! The `session-continuity` gate and its settings.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deploy_core::secrecy::{ExposeSecret, SecretString};
use reqwest::header::{HeaderValue, COOKIE, SET_COOKIE};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::common::{budget, chain, could_not_run, excerpt, human, millis, Connection};
use crate::settings::invalid;
use crate::{Error, Gate, GateContext, Result, Scope, Verdict};

/// Checks that a web session opened on one target (the live slot) is valid on another
/// (the gate's target, the slot traffic is about to switch to).
///
/// Odoo keeps web sessions in the filestore's `sessions/` folder unless a shared session
/// store is configured: two slots that do not share it log every user out when traffic
/// switches. The gate logs in on `from_target` through `/web/session/authenticate` (with
/// that target's login and password: web logins refuse API keys), sends the
/// `session_id` cookie to the gate's target's `/web/session/get_session_info`, and logs
/// out again on `from_target`. The cookie is never shown.
///
/// | outcome | when |
/// |---|---|
/// | `Pass` | the target knows the session, for the same user |
/// | `Warn` | it does, but both targets are the same server and database: the check proves nothing about a switch |
/// | `Fail` | the target answers "session expired" (users would be logged out on switch), another user, or another Odoo error |
/// | `Err` | the session could not be opened on `from_target` (refused login, no answer), or no answer from the target |
///
/// A check cancelled by its timeout leaves its session on `from_target` to expire
/// there. Values: `uid`, `login_ms`, `check_ms`.
#[derive(Debug, Clone)]
pub struct SessionContinuityGate {
    name: String,
    from: Arc<Connection>,
    to: Arc<Connection>,
}

impl SessionContinuityGate {
    /// A gate named `name` opening sessions on `from`'s target and checking them on
    /// `to`'s.
    ///
    /// # Errors
    ///
    /// [`Error::MissingField`] when `from`'s target has no database, login or password.
    pub fn new(
        name: impl Into<String>,
        from: Arc<Connection>,
        to: Arc<Connection>,
    ) -> Result<Self> {
        let missing = |field: &str| Error::MissingField {
            scope: Scope::Target(from.target().to_owned()),
            field: field.to_owned(),
        };
        if from.database().is_none() {
            return Err(missing("database"));
        }
        if from.login().is_none() {
            return Err(missing("login"));
        }
        if from.password().is_none() {
            return Err(missing("password"));
        }
        Ok(SessionContinuityGate {
            name: name.into(),
            from,
            to,
        })
    }

    fn same_server(&self) -> bool {
        self.from.url() == self.to.url()
            && (self.to.database().is_none() || self.from.database() == self.to.database())
    }
}

/// What can go wrong in a hand-made JSON-RPC call.
#[derive(Debug, thiserror::Error)]
enum RpcError {
    #[error("no answer")]
    Transport(#[source] reqwest::Error),
    #[error("http {status}: {excerpt}")]
    Status { status: u16, excerpt: String },
    #[error("not a JSON-RPC answer: {excerpt}")]
    Decode { excerpt: String },
    #[error("odoo {name}: {message}")]
    Odoo {
        code: i64,
        name: String,
        message: String,
    },
}

impl RpcError {
    fn is_session_expired(&self) -> bool {
        matches!(self, RpcError::Odoo { code, name, .. }
            if *code == 100 || name.ends_with("SessionExpiredException"))
    }
}

/// POSTs a JSON-RPC `call` with `params`, optionally with the session cookie; returns
/// the result (null when absent) and the `session_id` the answer sets, if any.
async fn rpc(
    http: &reqwest::Client,
    url: &str,
    params: Value,
    session: Option<&SecretString>,
    timeout: Duration,
) -> std::result::Result<(Value, Option<SecretString>), RpcError> {
    let body = json!({"jsonrpc": "2.0", "method": "call", "params": params, "id": 1});
    let mut request = http.post(url).timeout(timeout).json(&body);
    if let Some(session) = session {
        let mut cookie = HeaderValue::from_str(&format!("session_id={}", session.expose_secret()))
            .map_err(|_| RpcError::Decode {
                excerpt: "a session id that is not a valid cookie".to_owned(),
            })?;
        cookie.set_sensitive(true);
        request = request.header(COOKIE, cookie);
    }
    let response = request.send().await.map_err(RpcError::Transport)?;
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| {
            let pair = value.split(';').next()?.trim();
            pair.strip_prefix("session_id=")
                .filter(|id| !id.is_empty())
                .map(|id| SecretString::from(id.to_owned()))
        });
    let bytes = response.bytes().await.map_err(RpcError::Transport)?;
    let answer: Value = match serde_json::from_slice(&bytes) {
        Ok(answer) => answer,
        Err(_) if status != 200 => {
            return Err(RpcError::Status {
                status,
                excerpt: excerpt(&bytes),
            })
        }
        Err(_) => {
            return Err(RpcError::Decode {
                excerpt: excerpt(&bytes),
            })
        }
    };
    if let Some(error) = answer.get("error") {
        let data = error.get("data");
        let text =
            |value: Option<&Value>| value.and_then(Value::as_str).unwrap_or_default().to_owned();
        return Err(RpcError::Odoo {
            code: error
                .get("code")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
            name: text(data.and_then(|d| d.get("name"))),
            message: match text(data.and_then(|d| d.get("message"))) {
                message if message.is_empty() => text(error.get("message")),
                message => message,
            },
        });
    }
    if status != 200 {
        return Err(RpcError::Status {
            status,
            excerpt: excerpt(&bytes),
        });
    }
    Ok((answer.get("result").cloned().unwrap_or(Value::Null), cookie))
}

#[async_trait]
impl Gate for SessionContinuityGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, cx: &GateContext) -> Result<Verdict> {
        let deadline = Instant::now() + budget(cx, &self.name)?;
        let left = || {
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        };
        let (from, to) = (self.from.target(), self.to.target());
        let Some(password) = self.from.password() else {
            return Err(Error::check(
                &self.name,
                format!("target `{from}` has no password"),
            ));
        };

        // 1. A session on `from`, as a user's browser gets one.
        let start = Instant::now();
        let params = json!({
            "db": self.from.database().unwrap_or_default(),
            "login": self.from.login().unwrap_or_default(),
            "password": password.expose_secret(),
        });
        let opened = rpc(
            self.from.http(),
            &self.from.endpoint("/web/session/authenticate"),
            params,
            None,
            left(),
        )
        .await;
        let login_ms = millis(start.elapsed());
        let (info, session) = match opened {
            Ok((info, Some(session))) => (info, session),
            Ok((_, None)) => {
                return Err(Error::check(
                    &self.name,
                    format!("the login on `{from}` set no session cookie"),
                ))
            }
            Err(err) => {
                return Err(could_not_run(
                    &self.name,
                    &format!("opening a web session on `{from}`"),
                    err,
                ))
            }
        };
        let Some(uid) = info.get("uid").and_then(Value::as_i64) else {
            return Err(Error::check(
                &self.name,
                format!("the login on `{from}` returned no uid (a second factor required?)"),
            ));
        };

        // 2. The same cookie on `to`.
        let start = Instant::now();
        let answer = rpc(
            self.to.http(),
            &self.to.endpoint("/web/session/get_session_info"),
            json!({}),
            Some(&session),
            left(),
        )
        .await;
        let check_ms = millis(start.elapsed());

        // 3. Log out on `from` (best effort: the session would expire anyway).
        if let Err(err) = rpc(
            self.from.http(),
            &self.from.endpoint("/web/session/destroy"),
            json!({}),
            Some(&session),
            left(),
        )
        .await
        {
            tracing::debug!(gate = %self.name, target = from, error = %chain(&err), "logout failed");
        }

        let verdict = match answer {
            Ok((info, _)) => match info.get("uid").and_then(Value::as_i64) {
                Some(seen) if seen == uid && self.same_server() => Verdict::warn(format!(
                    "`{to}` accepts the session opened on `{from}`, but both are the same server \
                     and database: this proves nothing about a switch between slots"
                )),
                Some(seen) if seen == uid => Verdict::pass(format!(
                    "a session opened on `{from}` is valid on `{to}` (uid {uid}, checked in {})",
                    human(start.elapsed())
                )),
                other => Verdict::fail(format!(
                    "a session opened on `{from}` for uid {uid} is uid {} on `{to}`: the slots \
                     disagree on who is logged in",
                    other.map_or_else(|| "none".to_owned(), |seen| seen.to_string())
                )),
            },
            Err(err) if err.is_session_expired() => Verdict::fail(format!(
                "a session opened on `{from}` is unknown to `{to}` (session expired): users \
                 would be logged out on switch; share Odoo's session store between the slots"
            )),
            Err(err @ RpcError::Odoo { .. }) => {
                Verdict::fail(format!("checking the session on `{to}`: {err}"))
            }
            Err(err) => {
                return Err(could_not_run(
                    &self.name,
                    &format!("checking the session on `{to}`"),
                    err,
                ))
            }
        };
        Ok(verdict
            .with_value("uid", uid as f64)
            .with_value("login_ms", login_ms)
            .with_value("check_ms", check_ms))
    }
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

impl SessionContinuitySettings {
    /// Checks the values the types let through.
    pub(crate) fn validate(&self, gate: &str) -> Result<()> {
        if self.from_target.trim().is_empty() {
            return invalid(gate, "from_target", "must name a target".into());
        }
        Ok(())
    }
}
