//! The client: builder, protocol selection, authentication, calls.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::field::Empty;
use tracing::Instrument;
use url::Url;

use crate::decode;
use crate::domain::{Domain, Op};
use crate::error::{Error, Result};
use crate::protocol::{decode_as, Args, Call, ServiceCall, Wire};
use crate::retry::{self, RetryPolicy};
use crate::transport::{HttpRequest, RawResponse, Transport};
use crate::types::{FieldInfo, Health, Protocol, SearchOptions, ServerVersion};

const X_ODOO_RELEASE: &str = "x-odoo-release";

/// Builds a [`Client`]; see [`Client::builder`].
pub struct ClientBuilder {
    base_url: String,
    database: Option<String>,
    login: Option<String>,
    password: Option<SecretString>,
    api_key: Option<SecretString>,
    protocol: Protocol,
    connect_timeout: Duration,
    timeout: Duration,
    max_response_bytes: u64,
    retry: RetryPolicy,
    ca_certificates: Vec<Vec<u8>>,
    user_agent: Option<String>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &redacted_url(&self.base_url))
            .field("database", &self.database)
            .field("login", &self.login)
            .field(
                "password",
                &self.password.as_ref().map(|_| crate::error::REDACTED),
            )
            .field(
                "api_key",
                &self.api_key.as_ref().map(|_| crate::error::REDACTED),
            )
            .field("protocol", &self.protocol)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("retry", &self.retry)
            .field("ca_certificates", &self.ca_certificates.len())
            .finish_non_exhaustive()
    }
}

/// The URL with any userinfo dropped (the builder rejects such URLs anyway).
fn redacted_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) => {
            let _ = url.set_password(None);
            let _ = url.set_username("");
            url.to_string()
        }
        Err(_) => "<invalid URL>".to_owned(),
    }
}

impl ClientBuilder {
    fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.to_owned(),
            database: None,
            login: None,
            password: None,
            api_key: None,
            protocol: Protocol::Auto,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_response_bytes: 256 * 1024 * 1024,
            retry: RetryPolicy::default(),
            ca_certificates: Vec::new(),
            user_agent: None,
        }
    }

    /// The database to use (required by the web and jsonrpc protocols; sent as
    /// `X-Odoo-Database` by JSON-2).
    #[must_use]
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// The user's login (required by the web and jsonrpc protocols).
    #[must_use]
    pub fn login(mut self, login: impl Into<String>) -> Self {
        self.login = Some(login.into());
        self
    }

    /// The user's password.
    #[must_use]
    pub fn password(mut self, password: SecretString) -> Self {
        self.password = Some(password);
        self
    }

    /// An API key (used instead of the password by jsonrpc, and by JSON-2).
    #[must_use]
    pub fn api_key(mut self, api_key: SecretString) -> Self {
        self.api_key = Some(api_key);
        self
    }

    /// The protocol; [`Protocol::Auto`] (the default) picks one from the server
    /// version and the credentials.
    #[must_use]
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// The time allowed to open a connection (default 10 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The time allowed for one HTTP exchange, from sending the request to the
    /// last byte of the answer (default 30 s). Each retry gets the full time
    /// again. Override per call with [`Client::with_timeout`].
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest response body accepted, in bytes (default 256 MiB); reading
    /// stops there with [`Error::TooLarge`].
    #[must_use]
    pub fn max_response_bytes(mut self, limit: u64) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// The retry policy for read-only calls (see [`crate::retry`]).
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Trusts an extra CA (PEM, one or more certificates) besides the built-in
    /// roots. TLS verification cannot be turned off.
    #[must_use]
    pub fn ca_certificate_pem(mut self, pem: &[u8]) -> Self {
        self.ca_certificates.push(pem.to_vec());
        self
    }

    /// The `User-Agent` header (default `odoo-rpc/<version>`).
    #[must_use]
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Builds the client. No request is sent yet.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the URL is not an `http`/`https` URL without
    /// credentials, query or fragment, a CA certificate is not valid PEM, a
    /// timeout or the size limit is zero, or the protocol cannot work with the
    /// credentials (web without a password, JSON-2 without an API key).
    pub fn build(self) -> Result<Client> {
        let url = Url::parse(self.base_url.trim())
            .map_err(|e| Error::config(format!("invalid base URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::config("the base URL must be http:// or https://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::config("the base URL has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::config(
                "credentials in the base URL are not supported: use login() and password()",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::config(
                "the base URL must not have a query or fragment",
            ));
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(Error::config("timeouts must be longer than zero"));
        }
        if self.max_response_bytes == 0 {
            return Err(Error::config("max_response_bytes must be at least 1"));
        }
        match self.protocol {
            Protocol::Web if self.password.is_none() && self.api_key.is_some() => {
                return Err(Error::config(
                    "the web protocol needs a password: Odoo refuses API keys on web logins",
                ))
            }
            Protocol::Json2 if self.api_key.is_none() => {
                return Err(Error::config("the json2 protocol needs an API key"))
            }
            _ => {}
        }
        let bearer = match &self.api_key {
            Some(key) => Some(sensitive_header(&format!(
                "bearer {}",
                key.expose_secret()
            ))?),
            None => None,
        };
        let database_header = match &self.database {
            Some(db) => Some(
                HeaderValue::from_str(db)
                    .map_err(|_| Error::config("the database name is not a valid header value"))?,
            ),
            None => None,
        };

        let mut http = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(50))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(
                self.user_agent
                    .clone()
                    .unwrap_or_else(|| concat!("odoo-rpc/", env!("CARGO_PKG_VERSION")).to_owned()),
            );
        for pem in &self.ca_certificates {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|_| Error::config("invalid CA certificate PEM"))?;
            if certificates.is_empty() {
                return Err(Error::config("the CA PEM holds no certificate"));
            }
            for certificate in certificates {
                http = http.add_root_certificate(certificate);
            }
        }
        let http = http
            .build()
            .map_err(|e| Error::config(format!("cannot build the HTTP client: {e}")))?;

        let base = url.as_str().trim_end_matches('/').to_owned();
        Ok(Client {
            inner: Arc::new(Inner {
                transport: Transport::new(http, base, self.max_response_bytes),
                base_url: url,
                database: self.database,
                login: self.login,
                password: self.password,
                api_key: self.api_key,
                bearer,
                database_header,
                configured: self.protocol,
                detected: tokio::sync::OnceCell::new(),
                retry: self.retry,
                session: Mutex::new(None),
                login_lock: tokio::sync::Mutex::new(()),
                generation: AtomicU64::new(0),
                next_id: AtomicU64::new(1),
            }),
            context: None,
            timeout: self.timeout,
        })
    }
}

pub(crate) fn sensitive_header(value: &str) -> Result<HeaderValue> {
    let mut header = HeaderValue::from_str(value)
        .map_err(|_| Error::config("a credential holds characters not allowed in HTTP headers"))?;
    header.set_sensitive(true);
    Ok(header)
}

/// An authenticated login: the uid, and for the web protocol the session cookie.
pub(crate) struct Session {
    /// Bumped by every login, so that concurrent calls that saw the same expired
    /// session renew it once.
    pub(crate) generation: u64,
    pub(crate) uid: i64,
    /// `session_id` and the ready `Cookie` header (web protocol only).
    pub(crate) cookie: Option<(SecretString, HeaderValue)>,
}

pub(crate) struct Inner {
    pub(crate) transport: Transport,
    pub(crate) base_url: Url,
    pub(crate) database: Option<String>,
    pub(crate) login: Option<String>,
    pub(crate) password: Option<SecretString>,
    pub(crate) api_key: Option<SecretString>,
    /// `bearer <api key>`, marked sensitive.
    pub(crate) bearer: Option<HeaderValue>,
    pub(crate) database_header: Option<HeaderValue>,
    pub(crate) configured: Protocol,
    pub(crate) detected: tokio::sync::OnceCell<Protocol>,
    pub(crate) retry: RetryPolicy,
    /// The current login; read without waiting, replaced under `login_lock`.
    pub(crate) session: Mutex<Option<Arc<Session>>>,
    /// Held while logging in: one login at a time.
    pub(crate) login_lock: tokio::sync::Mutex<()>,
    pub(crate) generation: AtomicU64,
    pub(crate) next_id: AtomicU64,
}

/// An async Odoo client speaking the web (session), jsonrpc or JSON-2 protocol
/// behind one API.
///
/// Cheap to clone: clones share the connection pool, the detected protocol and
/// the login. [`Client::with_context`] and [`Client::with_timeout`] return such
/// clones with per-call settings. `Debug` never shows a secret.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
    pub(crate) context: Option<Arc<Map<String, Value>>>,
    pub(crate) timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("Client")
            .field("base_url", &inner.base_url.as_str())
            .field("database", &inner.database)
            .field("login", &inner.login)
            .field(
                "password",
                &inner.password.as_ref().map(|_| crate::error::REDACTED),
            )
            .field(
                "api_key",
                &inner.api_key.as_ref().map(|_| crate::error::REDACTED),
            )
            .field("protocol", &self.protocol())
            .field("timeout", &self.timeout)
            .field("retry", &inner.retry)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct RawVersion {
    #[serde(default)]
    server_version: String,
    #[serde(default)]
    server_version_info: Vec<Value>,
    #[serde(default)]
    server_serie: String,
    #[serde(default)]
    protocol_version: i64,
}

/// `create` answers an id for one record and a list for several; accept both.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdOrIds {
    One(i64),
    Many(Vec<i64>),
}

/// The count and the last id of a page of records, read without decoding them.
struct PageIds {
    count: usize,
    last: Option<i64>,
}

impl<'de> Deserialize<'de> for PageIds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct IdOnly {
            id: i64,
        }

        struct PageVisitor;

        impl<'de> serde::de::Visitor<'de> for PageVisitor {
            type Value = PageIds;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of records with an id")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<PageIds, A::Error> {
                let mut page = PageIds {
                    count: 0,
                    last: None,
                };
                while let Some(record) = seq.next_element::<IdOnly>()? {
                    page.count += 1;
                    page.last = Some(record.id);
                }
                Ok(page)
            }
        }

        deserializer.deserialize_seq(PageVisitor)
    }
}

fn check_name(kind: &str, name: &str, extra: &[char]) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c));
    if valid {
        Ok(())
    } else {
        Err(Error::config(format!("invalid {kind} name {name:?}")))
    }
}

fn object(kind: &str, value: impl Serialize) -> Result<Value> {
    match serde_json::to_value(value) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(Error::config(format!(
            "{kind} must serialize to a JSON object"
        ))),
        Err(e) => Err(Error::config(format!("{kind} cannot be serialized: {e}"))),
    }
}

fn ids_value(ids: &[i64]) -> Value {
    Value::Array(ids.iter().map(|&id| Value::from(id)).collect())
}

fn fields_value<S: AsRef<str>>(fields: &[S]) -> Value {
    Value::Array(
        fields
            .iter()
            .map(|f| Value::String(f.as_ref().to_owned()))
            .collect(),
    )
}

impl Client {
    /// Starts building a client for the server at `base_url` (e.g.
    /// `"https://odoo.example.com"`; a path prefix is kept).
    pub fn builder(base_url: impl AsRef<str>) -> ClientBuilder {
        ClientBuilder::new(base_url.as_ref())
    }

    /// A clone that sends `context` with every call, merged over this client's
    /// context (keys in `context` win; a `context` passed in a call's kwargs
    /// wins over both).
    #[must_use]
    pub fn with_context(&self, context: Map<String, Value>) -> Client {
        let mut merged = self.context.as_deref().cloned().unwrap_or_default();
        merged.extend(context);
        Client {
            inner: Arc::clone(&self.inner),
            context: Some(Arc::new(merged)),
            timeout: self.timeout,
        }
    }

    /// A clone whose calls use `timeout` per HTTP exchange.
    #[must_use]
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client {
            inner: Arc::clone(&self.inner),
            context: self.context.clone(),
            timeout,
        }
    }

    /// The protocol in use: the configured one, or once [`Protocol::Auto`] has
    /// been resolved (on the first authenticated call), the detected one.
    /// [`Protocol::Auto`] before that.
    #[must_use]
    pub fn protocol(&self) -> Protocol {
        match self.inner.configured {
            Protocol::Auto => self.inner.detected.get().copied().unwrap_or(Protocol::Auto),
            configured => configured,
        }
    }

    /// The base URL.
    #[must_use]
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// The configured database.
    #[must_use]
    pub fn database(&self) -> Option<&str> {
        self.inner.database.as_deref()
    }

    /// The per-call context, if any.
    #[must_use]
    pub fn context(&self) -> Option<&Map<String, Value>> {
        self.context.as_deref()
    }

    // ----- unauthenticated routes -------------------------------------------

    /// The server version: `/web/webclient/version_info`, falling back to
    /// `/jsonrpc` `common.version` when that route is missing or fails. Retried
    /// on transient failures.
    ///
    /// # Errors
    ///
    /// Transport errors, or [`Error::Protocol`] when no major version can be read.
    pub async fn version(&self) -> Result<ServerVersion> {
        self.traced("", "version", async {
            let web = self
                .post_jsonrpc::<RawVersion, _>(
                    "/web/webclient/version_info",
                    &Map::new(),
                    &[],
                    true,
                )
                .await;
            let (raw, headers) = match web {
                Ok(answer) => answer,
                Err(e) if !is_network_failure(&e) => {
                    tracing::debug!(
                        error = e.kind(),
                        "version_info failed, trying common.version"
                    );
                    let params = ServiceCall {
                        service: "common",
                        method: "version",
                        args: [(); 0],
                    };
                    self.post_jsonrpc::<RawVersion, _>("/jsonrpc", &params, &[], true)
                        .await?
                }
                Err(e) => return Err(e),
            };
            let major = decode::major_version(
                &raw.server_version_info,
                &raw.server_serie,
                &raw.server_version,
            )
            .ok_or_else(|| {
                Error::protocol(format!(
                    "cannot read a major version from {:?}",
                    raw.server_version
                ))
            })?;
            Ok(ServerVersion {
                server_version: raw.server_version,
                server_version_info: raw.server_version_info,
                server_serie: raw.server_serie,
                protocol_version: raw.protocol_version,
                major,
                release: headers
                    .get(X_ODOO_RELEASE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            })
        })
        .await
    }

    /// `GET /web/health`. A `{"status": "fail"}` answer (with HTTP 500) is an
    /// `Ok` [`Health`]; check [`Health::is_pass`].
    ///
    /// # Errors
    ///
    /// Transport errors, [`Error::HttpStatus`] for a non-health answer.
    pub async fn health(&self) -> Result<Health> {
        self.traced("", "health", self.get_health("/web/health"))
            .await
    }

    /// `GET /web/health?db_server_status=1`: also checks that PostgreSQL answers
    /// (Odoo 17+; older servers ignore the parameter and `db_server_status` is `None`).
    ///
    /// # Errors
    ///
    /// As [`Client::health`].
    pub async fn health_with_db(&self) -> Result<Health> {
        self.traced(
            "",
            "health",
            self.get_health("/web/health?db_server_status=1"),
        )
        .await
    }

    async fn get_health(&self, path: &str) -> Result<Health> {
        let request = HttpRequest {
            method: Method::GET,
            path,
            headers: HeaderMap::new(),
            body: None,
        };
        let response = self
            .inner
            .transport
            .execute(&request, self.timeout, Some(&self.inner.retry))
            .await?;
        decode::health(response.status, &response.headers, &response.body)
    }

    /// The databases the server lists (`/web/database/list`; empty when
    /// PostgreSQL is unreachable).
    ///
    /// # Errors
    ///
    /// [`Error::AccessDenied`] when the server has `list_db = False`; transport errors.
    pub async fn list_databases(&self) -> Result<Vec<String>> {
        self.traced("", "list_databases", async {
            self.post_jsonrpc("/web/database/list", &Map::new(), &[], true)
                .await
                .map(|(list, _)| list)
        })
        .await
    }

    // ----- authentication -----------------------------------------------------

    /// Logs in now and returns the uid: a new web session (web), a
    /// `common.authenticate` (jsonrpc), or `res.users.context_get` with the API
    /// key (JSON-2). Calls log in by themselves when needed; this is for
    /// checking credentials up front.
    ///
    /// # Errors
    ///
    /// [`Error::AccessDenied`] for a wrong login, password or API key (and for a
    /// web login that needs a second factor); [`Error::Config`] for missing
    /// credentials; transport errors.
    pub async fn authenticate(&self) -> Result<i64> {
        self.traced("res.users", "authenticate", async {
            match self.resolve_protocol().await? {
                Protocol::Json2 => self.json2_uid().await,
                _ => {
                    let _guard = self.inner.login_lock.lock().await;
                    Ok(self.login_locked().await?.uid)
                }
            }
        })
        .await
    }

    /// The current login, logging in when there is none.
    pub(crate) async fn session(&self) -> Result<Arc<Session>> {
        if let Some(session) = self.current_session() {
            return Ok(session);
        }
        let _guard = self.inner.login_lock.lock().await;
        if let Some(session) = self.current_session() {
            return Ok(session);
        }
        self.login_locked().await
    }

    /// A login newer than `stale`: the one another call made meanwhile, or a new one.
    pub(crate) async fn renew_session(&self, stale: &Session) -> Result<Arc<Session>> {
        let _guard = self.inner.login_lock.lock().await;
        if let Some(current) = self.current_session() {
            if current.generation != stale.generation {
                return Ok(current);
            }
        }
        tracing::debug!("web session expired, logging in again");
        self.login_locked().await
    }

    pub(crate) fn current_session(&self) -> Option<Arc<Session>> {
        self.inner
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn store_session(&self, session: Option<Arc<Session>>) {
        *self
            .inner
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = session;
    }

    /// Logs in; the caller holds `login_lock`.
    async fn login_locked(&self) -> Result<Arc<Session>> {
        let result = match self.resolve_protocol().await? {
            Protocol::Web => self.web_login().await,
            _ => self.jsonrpc_login().await,
        };
        match result {
            Ok(session) => {
                let session = Arc::new(session);
                self.store_session(Some(Arc::clone(&session)));
                Ok(session)
            }
            Err(e) => {
                self.store_session(None);
                Err(e)
            }
        }
    }

    pub(crate) fn credentials(&self, protocol: Protocol) -> Result<(&str, &str, &SecretString)> {
        let database =
            self.inner.database.as_deref().ok_or_else(|| {
                Error::config(format!("the {protocol} protocol needs a database"))
            })?;
        let login = self
            .inner
            .login
            .as_deref()
            .ok_or_else(|| Error::config(format!("the {protocol} protocol needs a login")))?;
        let secret = match protocol {
            Protocol::Web => self.inner.password.as_ref(),
            _ => self.inner.api_key.as_ref().or(self.inner.password.as_ref()),
        }
        .ok_or_else(|| {
            Error::config(format!(
                "the {protocol} protocol needs a password{}",
                if protocol == Protocol::Web {
                    ""
                } else {
                    " or an API key"
                }
            ))
        })?;
        Ok((database, login, secret))
    }

    /// Picks the protocol once for [`Protocol::Auto`].
    async fn resolve_protocol(&self) -> Result<Protocol> {
        if self.inner.configured != Protocol::Auto {
            return Ok(self.inner.configured);
        }
        let protocol = self
            .inner
            .detected
            .get_or_try_init(|| async {
                let version = self.version().await?;
                let protocol = choose_protocol(
                    version.major,
                    self.inner.api_key.is_some(),
                    self.inner.password.is_some(),
                )?;
                tracing::debug!(major = version.major, %protocol, "protocol detected");
                Ok::<_, Error>(protocol)
            })
            .await?;
        tracing::Span::current().record("protocol", protocol.as_str());
        Ok(*protocol)
    }

    // ----- calls -------------------------------------------------------------------

    /// Calls `model.method(*args, **kwargs)` and returns the raw result.
    ///
    /// With JSON-2 every argument is named: pass them all in `kwargs` (record
    /// methods take the record ids as `"ids"`) and leave `args` empty; positional
    /// arguments are refused there, since their names are unknown. The typed
    /// helpers ([`Client::search_read`], ...) know the names and work everywhere.
    ///
    /// Retried on transient failures only when `method` is in
    /// [`crate::retry::READ_ONLY_METHODS`].
    ///
    /// # Errors
    ///
    /// Server errors ([`Error::AccessDenied`], [`Error::UserError`], ...),
    /// transport errors, [`Error::Config`] for an invalid model or method name or
    /// for positional arguments on JSON-2.
    pub async fn call_kw(
        &self,
        model: &str,
        method: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<Value> {
        self.call_kw_as(model, method, args, kwargs).await
    }

    /// [`Client::call_kw`] decoding the result straight into `T`.
    ///
    /// # Errors
    ///
    /// As [`Client::call_kw`], plus [`Error::Decode`] when the result is not a `T`.
    pub async fn call_kw_as<T: DeserializeOwned>(
        &self,
        model: &str,
        method: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<T> {
        let call = Call {
            model,
            method,
            args: Args::Positional(args),
            kwargs,
        };
        self.invoke(call, decode_as).await
    }

    /// Ids of the records matching `domain`.
    ///
    /// # Errors
    ///
    /// As [`Client::call_kw`].
    pub async fn search(
        &self,
        model: &str,
        domain: &Domain,
        options: &SearchOptions,
    ) -> Result<Vec<i64>> {
        let mut kwargs = Map::new();
        options.insert_into(&mut kwargs);
        let call = Call {
            model,
            method: "search",
            args: Args::Named(vec![("domain", domain.to_value())]),
            kwargs,
        };
        self.invoke(call, decode_as).await
    }

    /// The records matching `domain`, decoded into `T` (empty `fields`: all
    /// fields). For large tables, [`Client::search_read_stream`] keeps memory flat.
    ///
    /// # Errors
    ///
    /// As [`Client::call_kw`], plus [`Error::Decode`] when a record is not a `T`.
    pub async fn search_read<T: DeserializeOwned>(
        &self,
        model: &str,
        domain: &Domain,
        fields: &[&str],
        options: &SearchOptions,
    ) -> Result<Vec<T>> {
        let mut kwargs = Map::new();
        if !fields.is_empty() {
            kwargs.insert("fields".into(), fields_value(fields));
        }
        options.insert_into(&mut kwargs);
        let call = Call {
            model,
            method: "search_read",
            args: Args::Named(vec![("domain", domain.to_value())]),
            kwargs,
        };
        self.invoke(call, decode_as).await
    }

    /// Streams every record matching `domain`, `page_size` at a time, paging by
    /// id: each page is `domain AND id > last_id`, ordered `id asc`, and the
    /// stream ends after a short page. Only one page is held in memory, and a
    /// page is fetched only when the previous one has been consumed.
    ///
    /// Records created during the scan with a higher id are included; the
    /// order of the records is by id whatever the model's default order.
    ///
    /// The stream yields an error and ends when a page fails (after retries);
    /// [`Error::Config`] when `page_size` is 0, [`Error::Protocol`] when the
    /// server returns ids out of order.
    pub fn search_read_stream<T>(
        &self,
        model: &str,
        domain: Domain,
        fields: Vec<String>,
        page_size: usize,
    ) -> impl futures_core::Stream<Item = Result<T>> + Send + 'static
    where
        T: DeserializeOwned + Send + 'static,
    {
        crate::stream::search_read_stream(self.clone(), model.to_owned(), domain, fields, page_size)
    }

    /// One page of [`Client::search_read_stream`]: the records, the page's size
    /// and its last id.
    pub(crate) async fn search_read_page<T: DeserializeOwned>(
        &self,
        model: &str,
        domain: &Domain,
        fields: &[String],
        after: Option<i64>,
        page_size: usize,
    ) -> Result<(Vec<T>, usize, Option<i64>)> {
        let domain = match after {
            Some(last) => domain.clone().and(Domain::leaf("id", Op::Gt, last)),
            None => domain.clone(),
        };
        let mut kwargs = Map::new();
        if !fields.is_empty() {
            kwargs.insert("fields".into(), fields_value(fields));
        }
        kwargs.insert("limit".into(), Value::from(page_size));
        kwargs.insert("order".into(), Value::from("id asc"));
        let call = Call {
            model,
            method: "search_read",
            args: Args::Named(vec![("domain", domain.to_value())]),
            kwargs,
        };
        self.invoke(call, |wire, response| {
            let ids: PageIds = decode_as(wire, response)?;
            let records: Vec<T> = decode_as(wire, response)?;
            Ok((records, ids.count, ids.last))
        })
        .await
    }

    /// Reads `fields` of the records `ids` (empty `fields`: all fields).
    ///
    /// Odoo returns only the records that exist: an id that does not (deleted, never
    /// created) is left out of the result without an error, so compare the ids you get
    /// back with those you asked for. (`write` and `unlink` do raise
    /// [`Error::MissingError`] for a missing record.)
    ///
    /// # Errors
    ///
    /// As [`Client::search_read`]; [`Error::AccessError`] for records the user may not
    /// read.
    pub async fn read<T: DeserializeOwned>(
        &self,
        model: &str,
        ids: &[i64],
        fields: &[&str],
    ) -> Result<Vec<T>> {
        let mut kwargs = Map::new();
        if !fields.is_empty() {
            kwargs.insert("fields".into(), fields_value(fields));
        }
        let call = Call {
            model,
            method: "read",
            args: Args::Named(vec![("ids", ids_value(ids))]),
            kwargs,
        };
        self.invoke(call, decode_as).await
    }

    /// How many records match `domain`.
    ///
    /// # Errors
    ///
    /// As [`Client::call_kw`].
    pub async fn search_count(&self, model: &str, domain: &Domain) -> Result<u64> {
        let call = Call {
            model,
            method: "search_count",
            args: Args::Named(vec![("domain", domain.to_value())]),
            kwargs: Map::new(),
        };
        self.invoke(call, decode_as).await
    }

    /// Creates one record and returns its id. `values` must serialize to a JSON
    /// object (a `serde_json::Map` or a `#[derive(Serialize)]` struct). Never retried.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `values` is not an object; as [`Client::call_kw`].
    pub async fn create(&self, model: &str, values: impl Serialize) -> Result<i64> {
        let ids = self.create_many(model, [values]).await?;
        ids.first()
            .copied()
            .ok_or_else(|| Error::protocol("create answered no id"))
    }

    /// Creates several records in one call and returns their ids, in order.
    /// Never retried.
    ///
    /// # Errors
    ///
    /// As [`Client::create`].
    pub async fn create_many<V: Serialize>(
        &self,
        model: &str,
        values: impl IntoIterator<Item = V>,
    ) -> Result<Vec<i64>> {
        let vals_list = values
            .into_iter()
            .map(|v| object("create values", v))
            .collect::<Result<Vec<_>>>()?;
        let call = Call {
            model,
            method: "create",
            args: Args::Named(vec![("vals_list", Value::Array(vals_list))]),
            kwargs: Map::new(),
        };
        let ids: IdOrIds = self.invoke(call, decode_as).await?;
        Ok(match ids {
            IdOrIds::One(id) => vec![id],
            IdOrIds::Many(ids) => ids,
        })
    }

    /// Writes `values` on the records `ids`. Never retried.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `values` is not an object; [`Error::MissingError`] when a
    /// record does not exist; as [`Client::call_kw`].
    pub async fn write(&self, model: &str, ids: &[i64], values: impl Serialize) -> Result<bool> {
        let values = object("write values", values)?;
        let call = Call {
            model,
            method: "write",
            args: Args::Named(vec![("ids", ids_value(ids)), ("vals", values)]),
            kwargs: Map::new(),
        };
        self.invoke(call, decode_as).await
    }

    /// Deletes the records `ids`. Never retried.
    ///
    /// # Errors
    ///
    /// [`Error::MissingError`] when a record does not exist; as [`Client::call_kw`].
    pub async fn unlink(&self, model: &str, ids: &[i64]) -> Result<bool> {
        let call = Call {
            model,
            method: "unlink",
            args: Args::Named(vec![("ids", ids_value(ids))]),
            kwargs: Map::new(),
        };
        self.invoke(call, decode_as).await
    }

    /// The model's fields, with the given attributes (empty: all attributes).
    ///
    /// # Errors
    ///
    /// As [`Client::call_kw`].
    pub async fn fields_get(
        &self,
        model: &str,
        attributes: &[&str],
    ) -> Result<BTreeMap<String, FieldInfo>> {
        let mut kwargs = Map::new();
        if !attributes.is_empty() {
            kwargs.insert("attributes".into(), fields_value(attributes));
        }
        let call = Call {
            model,
            method: "fields_get",
            args: Args::Named(Vec::new()),
            kwargs,
        };
        self.invoke(call, decode_as).await
    }

    // ----- plumbing ------------------------------------------------------------

    /// Runs `future` in a span with the call's fields, scrubbing secrets from
    /// its error.
    async fn traced<T>(
        &self,
        model: &str,
        method: &str,
        future: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let span = tracing::info_span!(
            "odoo_rpc",
            protocol = Empty,
            model,
            method,
            elapsed_ms = Empty,
            outcome = Empty,
        );
        if self.protocol() != Protocol::Auto {
            span.record("protocol", self.protocol().as_str());
        }
        let start = Instant::now();
        let result = future
            .instrument(span.clone())
            .await
            .map_err(|e| self.redact(e));
        span.record(
            "elapsed_ms",
            u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        );
        span.record(
            "outcome",
            match &result {
                Ok(_) => "ok",
                Err(e) => e.kind(),
            },
        );
        if let Err(e) = &result {
            span.in_scope(|| tracing::debug!(error = %e, "odoo call failed"));
        }
        result
    }

    fn redact(&self, error: Error) -> Error {
        let session = self.current_session();
        let mut secrets: Vec<&str> = Vec::with_capacity(3);
        if let Some(password) = &self.inner.password {
            secrets.push(password.expose_secret());
        }
        if let Some(key) = &self.inner.api_key {
            secrets.push(key.expose_secret());
        }
        if let Some((session_id, _)) = session.as_ref().and_then(|s| s.cookie.as_ref()) {
            secrets.push(session_id.expose_secret());
        }
        error.redact(&secrets)
    }

    /// The kwargs with the client's context merged under the caller's.
    fn with_call_context(&self, mut kwargs: Map<String, Value>) -> Map<String, Value> {
        if let Some(context) = &self.context {
            let merged = match kwargs.remove("context") {
                Some(Value::Object(own)) => {
                    let mut merged = (**context).clone();
                    merged.extend(own);
                    merged
                }
                _ => (**context).clone(),
            };
            kwargs.insert("context".into(), Value::Object(merged));
        }
        kwargs
    }

    async fn invoke<R>(
        &self,
        call: Call<'_>,
        decode: impl Fn(Wire, &RawResponse) -> Result<R>,
    ) -> Result<R> {
        self.traced(call.model, call.method, async {
            check_name("model", call.model, &['.'])?;
            check_name("method", call.method, &[])?;
            let call = Call {
                kwargs: self.with_call_context(call.kwargs),
                ..call
            };
            let read_only = retry::is_read_only(call.method);
            match self.resolve_protocol().await? {
                Protocol::Web => self.web_call(&call, read_only, &decode).await,
                Protocol::Json2 => self.json2_call(&call, read_only, &decode).await,
                Protocol::JsonRpc | Protocol::Auto => {
                    self.jsonrpc_call(&call, read_only, &decode).await
                }
            }
        })
        .await
    }

    pub(crate) fn retry_policy(&self, read_only: bool) -> Option<&RetryPolicy> {
        read_only.then_some(&self.inner.retry)
    }
}

/// Failures where trying another route of the same server is pointless.
fn is_network_failure(error: &Error) -> bool {
    matches!(
        error,
        Error::Connect { .. }
            | Error::Timeout { .. }
            | Error::Transport { .. }
            | Error::TooLarge { .. }
    )
}

/// The protocol rule of [`Protocol::Auto`].
fn choose_protocol(major: u8, api_key: bool, password: bool) -> Result<Protocol> {
    match (api_key, password) {
        (true, _) if major >= 19 => Ok(Protocol::Json2),
        (true, _) => Ok(Protocol::JsonRpc),
        (false, true) if major >= 19 => Ok(Protocol::Web),
        (false, true) => Ok(Protocol::JsonRpc),
        (false, false) => Err(Error::config(
            "authenticated calls need a password or an API key",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_and_its_futures_are_send() {
        fn send_sync<T: Send + Sync + Clone + 'static>() {}
        fn send<T: Send>(_: &T) {}
        send_sync::<Client>();
        let client = Client::builder("http://127.0.0.1:1").build().unwrap();
        let domain = Domain::new();
        let options = SearchOptions::default();
        send(&client.search("res.partner", &domain, &options));
        send(&client.search_read::<Value>("res.partner", &domain, &[], &options));
        send(&client.call_kw("res.partner", "read", vec![], Map::new()));
        send(&client.authenticate());
        send(&client.version());
    }

    #[test]
    fn auto_protocol_rule() {
        assert_eq!(choose_protocol(19, true, false).unwrap(), Protocol::Json2);
        assert_eq!(choose_protocol(19, true, true).unwrap(), Protocol::Json2);
        assert_eq!(choose_protocol(20, true, false).unwrap(), Protocol::Json2);
        assert_eq!(choose_protocol(18, true, false).unwrap(), Protocol::JsonRpc);
        assert_eq!(choose_protocol(16, true, true).unwrap(), Protocol::JsonRpc);
        assert_eq!(choose_protocol(19, false, true).unwrap(), Protocol::Web);
        for major in [16, 17, 18] {
            assert_eq!(
                choose_protocol(major, false, true).unwrap(),
                Protocol::JsonRpc
            );
        }
        assert!(matches!(
            choose_protocol(17, false, false),
            Err(Error::Config { .. })
        ));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("model", "res.partner", &['.']).is_ok());
        assert!(check_name("method", "search_read", &[]).is_ok());
        for bad in ["", "res/partner", "a b", "x?y=1", "../etc", "é"] {
            assert!(check_name("model", bad, &['.']).is_err(), "{bad}");
        }
        assert!(check_name("method", "a.b", &[]).is_err());
    }

    #[test]
    fn builder_validation() {
        let ok = Client::builder("http://127.0.0.1:8069/").build().unwrap();
        assert_eq!(ok.inner.transport_base_for_tests(), "http://127.0.0.1:8069");
        let prefixed = Client::builder("https://example.com/odoo/")
            .build()
            .unwrap();
        assert_eq!(
            prefixed.inner.transport_base_for_tests(),
            "https://example.com/odoo"
        );
        for bad in [
            "not a url",
            "ftp://example.com",
            "http://user:pw@example.com",
            "http://example.com/?db=x",
            "http://example.com/#x",
            "unix:/tmp/x",
        ] {
            let err = Client::builder(bad).build().unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{bad}: {err:?}");
            assert!(!format!("{err:?}").contains("pw"));
        }
        let err = Client::builder("http://x")
            .protocol(Protocol::Web)
            .api_key(SecretString::from("k"))
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }));
        let err = Client::builder("http://x")
            .protocol(Protocol::Json2)
            .password(SecretString::from("p"))
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }));
        let err = Client::builder("http://x")
            .ca_certificate_pem(b"garbage")
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }));
        let err = Client::builder("http://x")
            .timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }));
        let err = Client::builder("http://x")
            .api_key(SecretString::from("bad\nkey"))
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }));
        assert!(!format!("{err}").contains("bad\nkey"));
    }

    #[test]
    fn debug_hides_secrets() {
        let builder = Client::builder("http://127.0.0.1:1")
            .database("demo")
            .login("admin")
            .password(SecretString::from("pass-SECRET-1"))
            .api_key(SecretString::from("key-SECRET-2"));
        let text = format!("{builder:?}");
        assert!(!text.contains("SECRET"), "{text}");
        let client = builder.build().unwrap();
        let text = format!("{client:?}");
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("REDACTED"));
    }

    #[test]
    fn context_merging() {
        let client = Client::builder("http://x").build().unwrap();
        let mut a = Map::new();
        a.insert("lang".into(), "fr_FR".into());
        a.insert("tz".into(), "UTC".into());
        let mut b = Map::new();
        b.insert("lang".into(), "nl_BE".into());
        let c = client.with_context(a).with_context(b);
        assert_eq!(c.context().unwrap()["lang"], "nl_BE");
        assert_eq!(c.context().unwrap()["tz"], "UTC");
        let mut kwargs = Map::new();
        kwargs.insert(
            "context".into(),
            serde_json::json!({"tz": "Europe/Brussels"}),
        );
        let merged = c.with_call_context(kwargs);
        assert_eq!(
            merged["context"],
            serde_json::json!({"lang": "nl_BE", "tz": "Europe/Brussels"})
        );
        // no context: kwargs untouched
        assert!(client.with_call_context(Map::new()).is_empty());
    }

    #[test]
    fn page_ids() {
        let page: PageIds =
            serde_json::from_str(r#"[{"id":1,"x":[1,2]},{"name":"a","id":5}]"#).unwrap();
        assert_eq!((page.count, page.last), (2, Some(5)));
        let page: PageIds = serde_json::from_str("[]").unwrap();
        assert_eq!((page.count, page.last), (0, None));
        assert!(serde_json::from_str::<PageIds>(r#"[{"name":"no id"}]"#).is_err());
    }

    #[test]
    fn args_serialize_positionally() {
        let args = Args::Named(vec![
            ("ids", serde_json::json!([1])),
            ("vals", serde_json::json!({"a": 1})),
        ]);
        assert_eq!(
            serde_json::to_value(&args).unwrap(),
            serde_json::json!([[1], {"a": 1}])
        );
    }

    impl Inner {
        fn transport_base_for_tests(&self) -> String {
            self.base_url.as_str().trim_end_matches('/').to_owned()
        }
    }
}
