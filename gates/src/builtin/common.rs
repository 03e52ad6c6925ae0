//! What the Odoo gates share: a target's clients, time budgets, error sorting and
//! formatting.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use deploy_core::secrecy::SecretString;
use deploy_core::{SecretRef, Target};
use odoo_rpc::{Client, RetryPolicy};
use tokio::time::Instant;
use url::Url;

use crate::{BuildContext, Error, GateContext, Result, Scope, Verdict};

/// The clients the built-in Odoo gates use to reach one target: an [`odoo_rpc::Client`]
/// (JSON-RPC, login, ORM calls) and a plain HTTP client (pages and raw routes), both
/// with connection pools that live as long as the gates, so rounds reuse connections.
///
/// Built once per target by [`Registry::with_builtins`](crate::Registry::with_builtins)
/// and shared by every gate of that target: the gates of a plan log in once, not once
/// each. Build one yourself with [`Connection::for_target`] to create gates in code.
///
/// Neither client retries: a gate reports what one attempt found, and the runner's
/// `failure_limit`, `consecutive_error_limit` and wait-until mode decide what a bad
/// answer means. `Debug` never shows a secret.
pub struct Connection {
    target: String,
    url: Url,
    realtime_url: Option<Url>,
    database: Option<String>,
    login: Option<String>,
    password: Option<SecretString>,
    api_key: bool,
    odoo: Client,
    http: reqwest::Client,
}

impl Connection {
    /// How long opening a TCP connection may take (both clients).
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

    /// Per-request timeout of the clients; every check lowers it to its own deadline.
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

    /// The clients for `target`, resolving its password and API key through `cx`.
    /// Nothing is sent yet.
    ///
    /// # Errors
    ///
    /// [`Error::Secret`] when a secret reference does not resolve, [`Error::Client`]
    /// when the clients cannot be built (a URL or a credential the HTTP stack refuses).
    pub fn for_target(target: &Target, cx: &BuildContext<'_>) -> Result<Connection> {
        let scope = Scope::Target(target.name.clone());
        let password = target
            .password
            .as_ref()
            .map(|secret| cx.resolve_secret(scope.clone(), "password", secret))
            .transpose()?;
        let api_key = target
            .api_key
            .as_ref()
            .map(|secret| cx.resolve_secret(scope.clone(), "api_key", secret))
            .transpose()?;
        let client_error = |source: Box<dyn StdError + Send + Sync>| Error::Client {
            target: target.name.clone(),
            source,
        };
        let mut builder = Client::builder(target.url.as_str())
            .connect_timeout(Self::CONNECT_TIMEOUT)
            .timeout(Self::REQUEST_TIMEOUT)
            .retry(RetryPolicy::none())
            .user_agent(USER_AGENT);
        if let Some(database) = &target.database {
            builder = builder.database(database.clone());
        }
        if let Some(login) = &target.login {
            builder = builder.login(login.clone());
        }
        if let Some(password) = &password {
            builder = builder.password(password.clone());
        }
        let has_api_key = api_key.is_some();
        if let Some(api_key) = api_key {
            builder = builder.api_key(api_key);
        }
        let odoo = builder.build().map_err(|err| client_error(Box::new(err)))?;
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Self::CONNECT_TIMEOUT)
            .timeout(Self::REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|err| client_error(Box::new(err)))?;
        Ok(Connection {
            target: target.name.clone(),
            url: target.url.clone(),
            realtime_url: target.realtime_url.clone(),
            database: target.database.clone(),
            login: target.login.clone(),
            password,
            api_key: has_api_key,
            odoo,
            http,
        })
    }

    /// The target's name.
    #[must_use]
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The target's base URL.
    #[must_use]
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Where the target serves websockets: its `realtime_url`, else its base URL.
    #[must_use]
    pub fn websocket_url(&self) -> &Url {
        self.realtime_url.as_ref().unwrap_or(&self.url)
    }

    /// Whether websockets are served on a port of their own (prefork mode).
    #[must_use]
    pub fn has_realtime_port(&self) -> bool {
        self.realtime_url.is_some()
    }

    /// The target's database, if set.
    #[must_use]
    pub fn database(&self) -> Option<&str> {
        self.database.as_deref()
    }

    /// The target's login, if set.
    #[must_use]
    pub fn login(&self) -> Option<&str> {
        self.login.as_deref()
    }

    /// Whether the target has what authenticated calls need: a database, a login and a
    /// password or API key.
    #[must_use]
    pub fn can_authenticate(&self) -> bool {
        self.database.is_some() && self.login.is_some() && (self.password.is_some() || self.api_key)
    }

    /// The Odoo client.
    #[must_use]
    pub fn odoo(&self) -> &Client {
        &self.odoo
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn password(&self) -> Option<&SecretString> {
        self.password.as_ref()
    }

    /// The absolute URL of `path` (which starts with `/`) under the base URL, keeping a
    /// path prefix of the base URL.
    pub(crate) fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.url.as_str().trim_end_matches('/'))
    }

    /// Checks that the target can authenticate, for gates that need to.
    pub(crate) fn require_credentials(&self) -> Result<()> {
        let scope = Scope::Target(self.target.clone());
        let missing = |field: &str| Error::MissingField {
            scope: scope.clone(),
            field: field.to_owned(),
        };
        if self.database.is_none() {
            return Err(missing("database"));
        }
        if self.login.is_none() {
            return Err(missing("login"));
        }
        if self.password.is_none() && !self.api_key {
            return Err(missing("password"));
        }
        Ok(())
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("target", &self.target)
            .field("url", &self.url.as_str())
            .field("realtime_url", &self.realtime_url.as_ref().map(Url::as_str))
            .field("database", &self.database)
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("api_key", &self.api_key.then_some("[REDACTED]"))
            .finish_non_exhaustive()
    }
}

const USER_AGENT: &str = concat!("odoo-deploy-gates/", env!("CARGO_PKG_VERSION"));

/// One [`Connection`] per target, shared by the gates a [`Registry`](crate::Registry)
/// builds. Keyed by everything that makes two connections differ (never by a secret's
/// value).
#[derive(Default)]
pub(crate) struct ConnectionCache {
    map: Mutex<HashMap<String, Arc<Connection>>>,
}

impl ConnectionCache {
    pub(crate) fn get(&self, target: &Target, cx: &BuildContext<'_>) -> Result<Arc<Connection>> {
        let describe = |secret: &Option<SecretRef>| {
            secret
                .as_ref()
                .map_or_else(String::new, SecretRef::describe)
        };
        let key = format!(
            "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
            target.name,
            target.url,
            target
                .realtime_url
                .as_ref()
                .map_or_else(String::new, Url::to_string),
            target.database.as_deref().unwrap_or_default(),
            target.login.as_deref().unwrap_or_default(),
            describe(&target.password),
            describe(&target.api_key),
        );
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(connection) = map.get(&key) {
            return Ok(Arc::clone(connection));
        }
        let connection = Arc::new(Connection::for_target(target, cx)?);
        map.insert(key, Arc::clone(&connection));
        Ok(connection)
    }
}

/// The time a check may spend on I/O: what is left until its deadline, less a small
/// margin so that the gate can still answer with a verdict before the runner cancels it.
pub(crate) fn budget(cx: &GateContext, gate: &str) -> Result<Duration> {
    let remaining = cx.remaining();
    let margin = (remaining / 20).min(Duration::from_millis(250));
    let budget = remaining.saturating_sub(margin);
    if budget < Duration::from_millis(1) {
        return Err(Error::check(
            gate,
            "no time left before the gate's deadline",
        ));
    }
    Ok(budget)
}

/// The error and its sources, joined with `": "` (repeated texts left out).
pub(crate) fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// Sorts a failed Odoo call: when Odoo answered with an error (an exception, a database
/// it cannot reach, an expired session), that is a finding and the verdict is `Fail`;
/// when no Odoo answer came (connection refused, timeout, a proxy's error page) or the
/// client was misused, the check could not run and the result is `Err`.
pub(crate) fn odoo_failure(gate: &str, what: &str, err: odoo_rpc::Error) -> Result<Verdict> {
    if err.is_server() {
        Ok(Verdict::fail(format!("{what}: {err}")))
    } else {
        Err(could_not_run(gate, what, err))
    }
}

/// An [`Error::Check`] for `err`, with its cause chain in the message (reports show
/// only the message).
pub(crate) fn could_not_run(
    gate: &str,
    what: &str,
    err: impl StdError + Send + Sync + 'static,
) -> Error {
    let message = format!("{what}: {}", chain(&err));
    Error::check_with_source(gate, message, err)
}

/// Milliseconds as `f64`, for verdict values.
pub(crate) fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A duration for messages: `12.3 ms`, `1.25 s`.
pub(crate) fn human(duration: Duration) -> String {
    let ms = millis(duration);
    if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", duration.as_secs_f64())
    }
}

/// What a plain HTTP request got.
pub(crate) struct HttpAnswer {
    pub status: u16,
    pub location: Option<String>,
    pub body: Vec<u8>,
    pub elapsed: Duration,
}

/// `GET url`, reading at most `max_body` bytes of the body, within `timeout`.
pub(crate) async fn http_get(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
    max_body: usize,
) -> std::result::Result<HttpAnswer, reqwest::Error> {
    let start = Instant::now();
    let mut response = http.get(url).timeout(timeout).send().await?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while body.len() < max_body {
        match response.chunk().await? {
            Some(chunk) => body.extend_from_slice(&chunk),
            None => break,
        }
    }
    body.truncate(max_body);
    Ok(HttpAnswer {
        status,
        location,
        body,
        elapsed: start.elapsed(),
    })
}

/// The first characters of a body, on one line, for messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut short: String = one_line.chars().take(120).collect();
    if one_line.chars().count() > 120 {
        short.push('…');
    }
    short
}

/// A random lower-case hex label, to tell this check's records from others'.
pub(crate) fn random_label() -> String {
    format!("{:016x}", fastrand::u64(..))
}
