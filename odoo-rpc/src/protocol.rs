//! The three wire protocols: how a call, a login and an answer look on each.
//!
//! - web: `POST /web/session/authenticate` `{db, login, password}` sets the
//!   `session_id` cookie (read from `Set-Cookie`, kept as a secret, sent back
//!   as a `Cookie` header, followed when the server rotates it); calls go to
//!   `/web/dataset/call_kw/<model>/<method>` with `{model, method, args, kwargs}`.
//!   A code-100 answer renews the login once (shared by concurrent calls) and
//!   repeats the call once.
//! - jsonrpc: `common.authenticate(db, login, secret, {})` gives the uid
//!   (`false`: [`Error::AccessDenied`]); calls are
//!   `object.execute_kw(db, uid, secret, model, method, args, kwargs)`.
//! - JSON-2: `POST /json/2/<model>/<method>` with `Authorization: bearer <key>`,
//!   `X-Odoo-Database`, and the method's arguments by name. The typed helpers
//!   name them (`domain`, `fields`, `limit`, `offset`, `order`, `ids`, `vals`,
//!   `vals_list`, `attributes`); `call_kw` must pass every argument in `kwargs`
//!   (record ids as `ids`): positional `args` are refused with [`Error::Config`]
//!   since their names are unknown.
//!
//! The context goes in `kwargs.context` (web, jsonrpc) or the body's `context`
//! (JSON-2).

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, COOKIE};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::{sensitive_header, Client, Session};
use crate::decode;
use crate::error::{Error, Result};
use crate::transport::{HttpRequest, RawResponse};
use crate::types::Protocol;
use crate::value::OdooOption;

const X_ODOO_DATABASE: HeaderName = HeaderName::from_static("x-odoo-database");

/// What a call sends: positional arguments for the classic protocols, each
/// with the parameter name JSON-2 needs (typed helpers), or only positional
/// (`call_kw`).
pub(crate) enum Args {
    Named(Vec<(&'static str, Value)>),
    Positional(Vec<Value>),
}

impl Serialize for Args {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        match self {
            Args::Positional(values) => values.serialize(serializer),
            Args::Named(named) => {
                let mut seq = serializer.serialize_seq(Some(named.len()))?;
                for (_, value) in named {
                    seq.serialize_element(value)?;
                }
                seq.end()
            }
        }
    }
}

pub(crate) struct Call<'a> {
    pub(crate) model: &'a str,
    pub(crate) method: &'a str,
    pub(crate) args: Args,
    pub(crate) kwargs: Map<String, Value>,
}

/// Which envelope an answer comes in.
#[derive(Clone, Copy)]
pub(crate) enum Wire {
    JsonRpc,
    Json2,
}

pub(crate) fn decode_as<T: DeserializeOwned>(wire: Wire, response: &RawResponse) -> Result<T> {
    match wire {
        Wire::JsonRpc => decode::jsonrpc(response.status, &response.headers, &response.body),
        Wire::Json2 => decode::json2(response.status, &response.headers, &response.body),
    }
}

#[derive(Serialize)]
pub(crate) struct RpcRequest<P> {
    pub(crate) jsonrpc: &'static str,
    pub(crate) method: &'static str,
    pub(crate) id: u64,
    pub(crate) params: P,
}

#[derive(Serialize)]
pub(crate) struct ServiceCall<A> {
    pub(crate) service: &'static str,
    pub(crate) method: &'static str,
    pub(crate) args: A,
}

#[derive(Serialize)]
pub(crate) struct CallKwParams<'a> {
    pub(crate) model: &'a str,
    pub(crate) method: &'a str,
    pub(crate) args: &'a Args,
    pub(crate) kwargs: &'a Map<String, Value>,
}

#[derive(Serialize)]
pub(crate) struct LoginParams<'a> {
    pub(crate) db: &'a str,
    pub(crate) login: &'a str,
    pub(crate) password: &'a str,
}

#[derive(Deserialize)]
pub(crate) struct SessionInfo {
    #[serde(default)]
    pub(crate) uid: OdooOption<i64>,
}

impl Client {
    pub(crate) async fn web_login(&self) -> Result<Session> {
        let (db, login, password) = self.credentials(Protocol::Web)?;
        let params = LoginParams {
            db,
            login,
            password: password.expose_secret(),
        };
        let (info, headers) = self
            .post_jsonrpc::<SessionInfo, _>("/web/session/authenticate", &params, &[], true)
            .await?;
        let uid = info.uid.0.ok_or_else(|| Error::AccessDenied {
            message: "the login needs a second factor (2FA); use an API key with jsonrpc or json2"
                .to_owned(),
        })?;
        let session_id = decode::session_cookie(&headers)
            .ok_or_else(|| Error::protocol("the login answer set no session_id cookie"))?;
        Ok(Session {
            generation: self.inner.generation.fetch_add(1, Ordering::Relaxed) + 1,
            uid,
            cookie: Some(cookie(session_id)?),
        })
    }

    pub(crate) async fn jsonrpc_login(&self) -> Result<Session> {
        let (db, login, secret) = self.credentials(Protocol::JsonRpc)?;
        let params = ServiceCall {
            service: "common",
            method: "authenticate",
            args: (db, login, secret.expose_secret(), Map::new()),
        };
        let (uid, _) = self
            .post_jsonrpc::<OdooOption<i64>, _>("/jsonrpc", &params, &[], true)
            .await?;
        let uid = uid.0.ok_or_else(|| Error::AccessDenied {
            message: "wrong login, password or API key".to_owned(),
        })?;
        Ok(Session {
            generation: self.inner.generation.fetch_add(1, Ordering::Relaxed) + 1,
            uid,
            cookie: None,
        })
    }

    /// JSON-2 has no login: `res.users.context_get` tells the key's uid.
    pub(crate) async fn json2_uid(&self) -> Result<i64> {
        let call = Call {
            model: "res.users",
            method: "context_get",
            args: Args::Named(Vec::new()),
            kwargs: Map::new(),
        };
        let context: Map<String, Value> = self.json2_call(&call, true, decode_as).await?;
        context
            .get("uid")
            .and_then(Value::as_i64)
            .ok_or_else(|| Error::protocol("res.users.context_get answered no uid"))
    }

    pub(crate) fn rpc_body<P: Serialize>(&self, params: P) -> Result<Vec<u8>> {
        let request = RpcRequest {
            jsonrpc: "2.0",
            method: "call",
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            params,
        };
        serde_json::to_vec(&request)
            .map_err(|e| Error::config(format!("the request cannot be serialized: {e}")))
    }

    /// POSTs a JSON-RPC request without a session and decodes the answer; also
    /// returns the headers (for cookies and the release label).
    pub(crate) async fn post_jsonrpc<T: DeserializeOwned, P: Serialize>(
        &self,
        path: &str,
        params: &P,
        extra_headers: &[(HeaderName, HeaderValue)],
        retry: bool,
    ) -> Result<(T, HeaderMap)> {
        let body = self.rpc_body(params)?;
        let mut headers = HeaderMap::new();
        for (name, value) in extra_headers {
            headers.insert(name.clone(), value.clone());
        }
        let request = HttpRequest {
            method: Method::POST,
            path,
            headers,
            body: Some(&body),
        };
        let response = self
            .inner
            .transport
            .execute(&request, self.timeout, self.retry_policy(retry))
            .await?;
        let value = decode::jsonrpc(response.status, &response.headers, &response.body)?;
        Ok((value, response.headers))
    }

    pub(crate) async fn web_call<R>(
        &self,
        call: &Call<'_>,
        read_only: bool,
        decode: &impl Fn(Wire, &RawResponse) -> Result<R>,
    ) -> Result<R> {
        let path = format!("/web/dataset/call_kw/{}/{}", call.model, call.method);
        let body = self.rpc_body(CallKwParams {
            model: call.model,
            method: call.method,
            args: &call.args,
            kwargs: &call.kwargs,
        })?;
        let mut session = self.session().await?;
        let mut renewed = false;
        loop {
            let mut headers = HeaderMap::new();
            if let Some((_, cookie)) = &session.cookie {
                headers.insert(COOKIE, cookie.clone());
            }
            let request = HttpRequest {
                method: Method::POST,
                path: &path,
                headers,
                body: Some(&body),
            };
            let response = self
                .inner
                .transport
                .execute(&request, self.timeout, self.retry_policy(read_only))
                .await?;
            self.follow_cookie_rotation(&session, &response.headers)?;
            match decode(Wire::JsonRpc, &response) {
                Err(Error::SessionExpired { .. }) if !renewed => {
                    session = self.renew_session(&session).await?;
                    renewed = true;
                }
                result => return result,
            }
        }
    }

    /// Keeps the session cookie the server rotated during a call.
    pub(crate) fn follow_cookie_rotation(&self, used: &Session, headers: &HeaderMap) -> Result<()> {
        let Some(new_id) = decode::session_cookie(headers) else {
            return Ok(());
        };
        let mut current = self
            .inner
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(session) = current.as_ref() {
            let same = session
                .cookie
                .as_ref()
                .is_some_and(|(id, _)| id.expose_secret() == new_id);
            if session.generation == used.generation && !same {
                *current = Some(Arc::new(Session {
                    generation: session.generation,
                    uid: session.uid,
                    cookie: Some(cookie(new_id)?),
                }));
            }
        }
        Ok(())
    }

    pub(crate) async fn jsonrpc_call<R>(
        &self,
        call: &Call<'_>,
        read_only: bool,
        decode: &impl Fn(Wire, &RawResponse) -> Result<R>,
    ) -> Result<R> {
        let session = self.session().await?;
        let (db, _, secret) = self.credentials(Protocol::JsonRpc)?;
        let body = self.rpc_body(ServiceCall {
            service: "object",
            method: "execute_kw",
            args: (
                db,
                session.uid,
                secret.expose_secret(),
                call.model,
                call.method,
                &call.args,
                &call.kwargs,
            ),
        })?;
        let request = HttpRequest {
            method: Method::POST,
            path: "/jsonrpc",
            headers: HeaderMap::new(),
            body: Some(&body),
        };
        let response = self
            .inner
            .transport
            .execute(&request, self.timeout, self.retry_policy(read_only))
            .await?;
        decode(Wire::JsonRpc, &response)
    }

    pub(crate) async fn json2_call<R>(
        &self,
        call: &Call<'_>,
        read_only: bool,
        decode: impl Fn(Wire, &RawResponse) -> Result<R>,
    ) -> Result<R> {
        let bearer = self
            .inner
            .bearer
            .clone()
            .ok_or_else(|| Error::config("the json2 protocol needs an API key"))?;
        let mut body = Map::new();
        match &call.args {
            Args::Named(named) => {
                for (name, value) in named {
                    body.insert((*name).to_owned(), value.clone());
                }
            }
            Args::Positional(args) if args.is_empty() => {}
            Args::Positional(_) => return Err(Error::config(
                "json2 takes named arguments only: pass them in kwargs (record ids as \"ids\") \
                     and leave args empty",
            )),
        }
        for (name, value) in &call.kwargs {
            body.insert(name.clone(), value.clone());
        }
        let body = serde_json::to_vec(&body)
            .map_err(|e| Error::config(format!("the request cannot be serialized: {e}")))?;
        let path = format!("/json/2/{}/{}", call.model, call.method);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, bearer);
        if let Some(db) = &self.inner.database_header {
            headers.insert(X_ODOO_DATABASE, db.clone());
        }
        let request = HttpRequest {
            method: Method::POST,
            path: &path,
            headers,
            body: Some(&body),
        };
        let response = self
            .inner
            .transport
            .execute(&request, self.timeout, self.retry_policy(read_only))
            .await?;
        let result = decode(Wire::Json2, &response);
        // A server without JSON-2 answers a 404 (16, 17) or, on 18, whose own
        // `/json/<path>` route needs a session, a redirect to the login page: both
        // deserve a clearer error than the HTML page.
        let no_json2 = match &result {
            Err(Error::HttpStatus { status: 404, .. }) => true,
            Err(Error::HttpStatus { status, .. }) => {
                (300..400).contains(status) && redirects_to_login(&response.headers)
            }
            _ => false,
        };
        if no_json2 {
            if let Ok(version) = self.version().await {
                if version.major < 19 {
                    return Err(Error::config(format!(
                        "the json2 protocol needs Odoo 19 or later; the server runs {}",
                        version.server_version
                    )));
                }
            }
        }
        result
    }
}

/// Whether a redirect's `Location` is Odoo's login page (`/web/login?redirect=...`).
fn redirects_to_login(headers: &HeaderMap) -> bool {
    headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|location| {
            let path = location.split('?').next().unwrap_or_default();
            path.ends_with("/web/login")
        })
}

fn cookie(session_id: &str) -> Result<(SecretString, HeaderValue)> {
    let header = sensitive_header(&format!("session_id={session_id}"))?;
    Ok((SecretString::from(session_id.to_owned()), header))
}
