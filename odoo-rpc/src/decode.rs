//! Decoding of Odoo's answers: pure functions over (status, headers, body bytes).
//!
//! Nothing here does I/O, so every shape a server or a proxy can send is unit
//! tested below: JSON-RPC envelopes with and without `result`, error objects with
//! full, partial or no `data`, the codes 200 (16-18), 0 (19), 100 (session
//! expired) and 404, JSON-2 error bodies, HTML pages from Odoo or a proxy, and
//! truncated bodies.
//!
//! The success path decodes the envelope straight from the bytes into the
//! caller's type (no intermediate `serde_json::Value`); only error objects go
//! through `Value`.

use std::fmt;
use std::marker::PhantomData;

use reqwest::header::{HeaderMap, SET_COOKIE};
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::types::Health;

/// Appended to an excerpt that was cut short.
pub(crate) const ELLIPSIS: &str = "…";

/// Maximum length of a body excerpt, in characters, ellipsis included.
pub(crate) const EXCERPT_CHARS: usize = 256;

/// How many bytes of a body are looked at to build an excerpt.
const EXCERPT_SCAN_BYTES: usize = 16 * 1024;

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// Decodes a JSON-RPC 2.0 answer (`/jsonrpc`, `/web/...` JSON routes).
///
/// - HTTP 2xx with `result`: the result, decoded into `T`;
/// - HTTP 2xx without `result` (Odoo's answer for a `None` return): `T` decoded from `null`;
/// - an `error` member, whatever the HTTP status: the matching server variant;
/// - another HTTP status: [`Error::HttpStatus`];
/// - anything undecodable: [`Error::Decode`].
pub(crate) fn jsonrpc<T: DeserializeOwned>(
    status: u16,
    _headers: &HeaderMap,
    body: &[u8],
) -> Result<T> {
    if !is_success(status) {
        return Err(match serde_json::from_slice::<Envelope<IgnoredAny>>(body) {
            Ok(Envelope {
                error: Some(error), ..
            }) => rpc_error(&error),
            _ => http_status(status, body),
        });
    }
    let envelope: Envelope<T> = serde_json::from_slice(body).map_err(|e| decode_error(body, e))?;
    if let Some(error) = envelope.error {
        return Err(rpc_error(&error));
    }
    match envelope.result {
        Some(result) => Ok(result),
        None => T::deserialize(Value::Null).map_err(|e| decode_error(body, e)),
    }
}

/// Decodes an answer of Odoo 19's JSON-2 API (`/json/2/<model>/<method>`).
///
/// - HTTP 2xx: the raw body (no envelope) decoded into `T`;
/// - another status with a JSON error body (`{"name", "message", ...}`): the
///   matching server variant, the HTTP status as `code`;
/// - another status without one (HTML 404 for an unknown database, a proxy page):
///   [`Error::HttpStatus`].
pub(crate) fn json2<T: DeserializeOwned>(
    status: u16,
    _headers: &HeaderMap,
    body: &[u8],
) -> Result<T> {
    if is_success(status) {
        return serde_json::from_slice(body).map_err(|e| decode_error(body, e));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) if map.contains_key("name") || map.contains_key("message") => {
            let name = str_field(&map, "name");
            let message = message_of(&map).unwrap_or_default();
            let debug = map.get("debug").and_then(Value::as_str).map(str::to_owned);
            Err(classify(
                name,
                message,
                i64::from(status),
                debug,
                Wire::Json2,
            ))
        }
        _ => Err(http_status(status, body)),
    }
}

#[derive(Deserialize)]
struct HealthBody {
    status: String,
    #[serde(default)]
    db_server_status: Option<bool>,
}

/// Decodes `GET /web/health[?db_server_status=1]`.
///
/// A JSON health body is an answer whatever the status (Odoo sends
/// `{"status": "fail", "db_server_status": false}` with HTTP 500 when PostgreSQL
/// is down). Anything else is [`Error::HttpStatus`] (or [`Error::Decode`] for a
/// 2xx that is not a health body).
pub(crate) fn health(status: u16, _headers: &HeaderMap, body: &[u8]) -> Result<Health> {
    match serde_json::from_slice::<HealthBody>(body) {
        Ok(parsed) => Ok(Health {
            status: parsed.status,
            db_server_status: parsed.db_server_status,
            http_status: status,
        }),
        Err(e) if is_success(status) => Err(decode_error(body, e)),
        Err(_) => Err(http_status(status, body)),
    }
}

/// The value of the last non-empty `session_id` cookie set by the response.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .rev()
        .find_map(|cookie| {
            let pair = cookie.split(';').next()?;
            let (name, value) = pair.split_once('=')?;
            let value = value.trim().trim_matches('"');
            (name.trim() == "session_id" && !value.is_empty()).then_some(value)
        })
}

/// Whether a response is a transient failure worth retrying for a read-only
/// call: a gateway error (502/503/504), or a 500 that is not a JSON error body
/// (a crashed worker's HTML page; a JSON 500 is a deterministic Odoo exception).
pub(crate) fn is_transient_status(status: u16, headers: &HeaderMap) -> bool {
    match status {
        502..=504 => true,
        500 => !headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("json")),
        _ => false,
    }
}

// ----- envelope -----------------------------------------------------------

/// A JSON-RPC answer: `result` decoded straight into `T`, `error` kept as a
/// `Value` (errors are rare and irregular). Only a JSON object is accepted.
struct Envelope<T> {
    result: Option<T>,
    error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum EnvelopeKey {
    Result,
    Error,
    #[serde(other)]
    Other,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Envelope<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvelopeVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for EnvelopeVisitor<T> {
            type Value = Envelope<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC response object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut envelope = Envelope {
                    result: None,
                    error: None,
                };
                while let Some(key) = map.next_key::<EnvelopeKey>()? {
                    match key {
                        EnvelopeKey::Result => envelope.result = Some(map.next_value()?),
                        EnvelopeKey::Error => {
                            envelope.error = match map.next_value::<Value>()? {
                                Value::Null => None,
                                error => Some(error),
                            }
                        }
                        EnvelopeKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(envelope)
            }
        }

        deserializer.deserialize_map(EnvelopeVisitor(PhantomData))
    }
}

// ----- errors ---------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wire {
    JsonRpc,
    Json2,
}

fn str_field<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> &'a str {
    map.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `message`, else the first of `arguments` when it is a string.
fn message_of(map: &serde_json::Map<String, Value>) -> Option<String> {
    if let Some(message) = map.get("message").and_then(Value::as_str) {
        if !message.is_empty() {
            return Some(message.to_owned());
        }
    }
    map.get("arguments")
        .and_then(Value::as_array)
        .and_then(|args| args.first())
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Maps a JSON-RPC `error` member, leniently: any of `code`, `message`, `data`
/// and `data`'s keys may be missing or of an odd type.
fn rpc_error(error: &Value) -> Error {
    let Some(object) = error.as_object() else {
        let message = match error {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        return classify("", message, 0, None, Wire::JsonRpc);
    };
    let code = match object.get("code") {
        Some(Value::Number(n)) => n.as_i64().unwrap_or_default(),
        Some(Value::String(s)) => s.trim().parse().unwrap_or_default(),
        _ => 0,
    };
    let top_message = object.get("message").and_then(Value::as_str);
    match object.get("data").and_then(Value::as_object) {
        Some(data) => {
            let message = message_of(data)
                .or_else(|| top_message.map(str::to_owned))
                .unwrap_or_default();
            let debug = data.get("debug").and_then(Value::as_str).map(str::to_owned);
            classify(str_field(data, "name"), message, code, debug, Wire::JsonRpc)
        }
        None => classify(
            "",
            top_message.unwrap_or_default().to_owned(),
            code,
            None,
            Wire::JsonRpc,
        ),
    }
}

/// Picks the variant from the exception's name, then from the code.
fn classify(name: &str, message: String, code: i64, debug: Option<String>, wire: Wire) -> Error {
    let short = name.rsplit('.').next().unwrap_or(name);
    match short {
        "AccessDenied" | "Unauthorized" => return Error::AccessDenied { message },
        "AccessError" | "Forbidden" => return Error::AccessError { message },
        "UserError" | "ValidationError" | "RedirectWarning" => {
            return Error::UserError {
                name: name.to_owned(),
                message,
            }
        }
        "MissingError" => return Error::MissingError { message },
        "SessionExpiredException" => return Error::SessionExpired { message },
        "NotFound" => return Error::NotFound { message },
        _ => {}
    }
    match (wire, code) {
        (Wire::JsonRpc, 100) => Error::SessionExpired { message },
        (_, 404) => Error::NotFound { message },
        (Wire::Json2, 401) => Error::AccessDenied { message },
        _ => Error::Server {
            name: name.to_owned(),
            message,
            code,
            debug,
        },
    }
}

fn http_status(status: u16, body: &[u8]) -> Error {
    Error::HttpStatus {
        status,
        body_excerpt: excerpt(body),
    }
}

fn decode_error(body: &[u8], source: serde_json::Error) -> Error {
    Error::Decode {
        body_excerpt: excerpt(body),
        source,
    }
}

// ----- excerpts ---------------------------------------------------------------

/// A short, single-line, human-readable start of a body: at most 256 characters,
/// HTML tags (and `<script>`/`<style>` contents) removed, whitespace collapsed.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let head = &body[..body.len().min(EXCERPT_SCAN_BYTES)];
    let text = String::from_utf8_lossy(head);
    let trimmed = text.trim_start();
    let text = if trimmed.starts_with('<') {
        strip_html(trimmed)
    } else {
        trimmed.to_owned()
    };
    let mut out = String::with_capacity(EXCERPT_CHARS.min(text.len()) + 4);
    let mut count = 0;
    let mut pending_space = false;
    let mut truncated = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        let needed = usize::from(pending_space) + 1;
        if count + needed > EXCERPT_CHARS - 1 {
            truncated = true;
            break;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
        count += needed;
    }
    if truncated || body.len() > head.len() {
        out.push_str(ELLIPSIS);
    }
    out
}

/// Text content of an HTML page, roughly: tags dropped, `script`/`style`
/// elements skipped, the common entities decoded.
fn strip_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len().min(1024));
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        out.push(' ');
        let after = &rest[lt + 1..];
        let Some(gt) = after.find('>') else {
            rest = "";
            break;
        };
        let tag = after[..gt]
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        rest = &after[gt + 1..];
        let closing = after.starts_with('/');
        if !closing && (tag == "script" || tag == "style") {
            let end = format!("</{tag}");
            rest = match find_ascii_case_insensitive(rest, &end) {
                Some(at) => &rest[at..],
                None => "",
            };
        }
    }
    out.push_str(rest);
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn find_ascii_case_insensitive(haystack: &str, needle: &str) -> Option<usize> {
    let hay = haystack.as_bytes();
    let needle = needle.as_bytes();
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (0..=hay.len() - needle.len()).find(|&i| hay[i..i + needle.len()].eq_ignore_ascii_case(needle))
}

// ----- version ----------------------------------------------------------------

/// The major version from `server_version_info[0]` (`17` or `"saas~17"`), else
/// from the leading digits of `server_serie` or `server_version`.
pub(crate) fn major_version(info: &[Value], serie: &str, version: &str) -> Option<u8> {
    fn leading_number(text: &str) -> Option<u8> {
        let text = text.trim().trim_start_matches("saas~");
        let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }
    match info.first() {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
        Some(Value::String(s)) => leading_number(s),
        _ => None,
    }
    .or_else(|| leading_number(serie))
    .or_else(|| leading_number(version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use serde_json::json;

    fn no_headers() -> HeaderMap {
        HeaderMap::new()
    }

    fn rpc<T: DeserializeOwned>(status: u16, body: &str) -> Result<T> {
        jsonrpc(status, &no_headers(), body.as_bytes())
    }

    fn j2<T: DeserializeOwned>(status: u16, body: &str) -> Result<T> {
        json2(status, &no_headers(), body.as_bytes())
    }

    const NGINX_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
        <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n\
        </body>\r\n</html>\r\n";

    const WERKZEUG_404: &str = "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n\
        <h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you entered \
        the URL manually please check your spelling and try again.</p>\n";

    #[test]
    fn result_decodes_straight_into_the_type() {
        let ids: Vec<i64> = rpc(200, r#"{"jsonrpc":"2.0","id":1,"result":[1,2,3]}"#).unwrap();
        assert_eq!(ids, vec![1, 2, 3]);
        // `result` before `id`, unknown keys ignored
        let n: u64 = rpc(
            200,
            r#"{"result":7,"jsonrpc":"2.0","id":null,"x":{"y":[1]}}"#,
        )
        .unwrap();
        assert_eq!(n, 7);
    }

    #[test]
    fn missing_result_is_null() {
        let v: Value = rpc(200, r#"{"jsonrpc":"2.0","id":1}"#).unwrap();
        assert_eq!(v, Value::Null);
        let unit: Option<i64> = rpc(200, r#"{"jsonrpc":"2.0","id":1}"#).unwrap();
        assert_eq!(unit, None);
        // a type that cannot be null: decode error, no panic
        let err = rpc::<Vec<i64>>(200, r#"{"jsonrpc":"2.0","id":1}"#).unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "{err:?}");
        let explicit_null: Option<i64> =
            rpc(200, r#"{"jsonrpc":"2.0","id":1,"result":null}"#).unwrap();
        assert_eq!(explicit_null, None);
    }

    #[test]
    fn error_code_200_access_denied_16_to_18() {
        let body = r#"{"jsonrpc":"2.0","id":1,"error":{"code":200,"message":"Odoo Server Error",
            "data":{"name":"odoo.exceptions.AccessDenied","debug":"Traceback ...",
            "message":"Access Denied","arguments":["Access Denied"],"context":{}}}}"#;
        let err = rpc::<Value>(200, body).unwrap_err();
        assert!(
            matches!(&err, Error::AccessDenied { message } if message == "Access Denied"),
            "{err:?}"
        );
        assert!(err.is_server());
    }

    #[test]
    fn error_code_0_on_19_with_data_reordered() {
        let body = r#"{"jsonrpc":"2.0","id":1,"error":{"code":0,"message":"Odoo Server Error",
            "data":{"name":"odoo.exceptions.ValidationError","message":"Bad VAT","arguments":["Bad VAT"],
            "context":{},"debug":"Traceback"}}}"#;
        match rpc::<Value>(200, body).unwrap_err() {
            Error::UserError { name, message } => {
                assert_eq!(name, "odoo.exceptions.ValidationError");
                assert_eq!(message, "Bad VAT");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_code_100_is_session_expired() {
        let body = r#"{"jsonrpc":"2.0","id":1,"error":{"code":100,"message":"Odoo Session Expired",
            "data":{"name":"odoo.http.SessionExpiredException","debug":"","message":"Session expired",
            "arguments":["Session expired"],"context":{}}}}"#;
        assert!(matches!(
            rpc::<Value>(200, body).unwrap_err(),
            Error::SessionExpired { .. }
        ));
        // code alone is enough
        let bare =
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":100,"message":"Odoo Session Expired"}}"#;
        match rpc::<Value>(200, bare).unwrap_err() {
            Error::SessionExpired { message } => assert_eq!(message, "Odoo Session Expired"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_code_404_is_not_found() {
        let body = r#"{"jsonrpc":"2.0","id":1,"error":{"code":404,"message":"404: Not Found",
            "data":{"name":"werkzeug.exceptions.NotFound","debug":"","message":"404 Not Found: x",
            "arguments":[],"context":{}}}}"#;
        assert!(matches!(
            rpc::<Value>(200, body).unwrap_err(),
            Error::NotFound { .. }
        ));
        let bare = r#"{"jsonrpc":"2.0","id":1,"error":{"code":404,"message":"404: Not Found"}}"#;
        assert!(matches!(
            rpc::<Value>(200, bare).unwrap_err(),
            Error::NotFound { .. }
        ));
    }

    #[test]
    fn error_without_data_is_server_error() {
        let body = r#"{"jsonrpc":"2.0","id":1,"error":{"code":200,"message":"Odoo Server Error"}}"#;
        match rpc::<Value>(200, body).unwrap_err() {
            Error::Server {
                name,
                message,
                code,
                debug,
            } => {
                assert_eq!(name, "");
                assert_eq!(message, "Odoo Server Error");
                assert_eq!(code, 200);
                assert_eq!(debug, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_with_partial_data() {
        // name only: the top-level message is used
        let body = r#"{"error":{"code":200,"message":"Odoo Server Error","data":{"name":"builtins.KeyError"}}}"#;
        match rpc::<Value>(200, body).unwrap_err() {
            Error::Server { name, message, .. } => {
                assert_eq!(name, "builtins.KeyError");
                assert_eq!(message, "Odoo Server Error");
            }
            other => panic!("{other:?}"),
        }
        // message only in arguments
        let body = r#"{"error":{"code":200,"data":{"name":"odoo.exceptions.MissingError","arguments":["Record gone"]}}}"#;
        assert!(
            matches!(rpc::<Value>(200, body).unwrap_err(), Error::MissingError { message } if message == "Record gone")
        );
        // odd types everywhere
        let body =
            r#"{"error":{"code":"200","message":5,"data":{"name":7,"message":null,"debug":[]}}}"#;
        assert!(matches!(
            rpc::<Value>(200, body).unwrap_err(),
            Error::Server { code: 200, .. }
        ));
        // error is a bare string
        let body = r#"{"error":"boom"}"#;
        assert!(
            matches!(rpc::<Value>(200, body).unwrap_err(), Error::Server { message, .. } if message == "boom")
        );
        // error: null and a result: the result wins
        let v: i64 = rpc(200, r#"{"error":null,"result":3}"#).unwrap();
        assert_eq!(v, 3);
    }

    #[test]
    fn every_known_exception_name() {
        let cases = [
            ("odoo.exceptions.AccessDenied", "access_denied"),
            ("odoo.exceptions.AccessError", "access_error"),
            ("odoo.exceptions.UserError", "user_error"),
            ("odoo.exceptions.ValidationError", "user_error"),
            ("odoo.exceptions.RedirectWarning", "user_error"),
            ("odoo.exceptions.MissingError", "missing_error"),
            ("odoo.http.SessionExpiredException", "session_expired"),
            ("werkzeug.exceptions.NotFound", "not_found"),
            ("builtins.KeyError", "server"),
            ("psycopg2.OperationalError", "server"),
            ("builtins.Exception", "server"),
        ];
        for (name, kind) in cases {
            let body =
                json!({"jsonrpc":"2.0","id":1,"error":{"code":200,"message":"Odoo Server Error",
                "data":{"name":name,"message":"m","debug":"d","arguments":["m"],"context":{}}}})
                .to_string();
            assert_eq!(rpc::<Value>(200, &body).unwrap_err().kind(), kind, "{name}");
        }
    }

    #[test]
    fn server_error_keeps_debug() {
        let body = r#"{"error":{"code":200,"message":"Odoo Server Error","data":{"name":"psycopg2.OperationalError",
            "message":"connection refused","debug":"Traceback (most recent call last)"}}}"#;
        match rpc::<Value>(200, body).unwrap_err() {
            Error::Server { debug, .. } => {
                assert_eq!(debug.as_deref(), Some("Traceback (most recent call last)"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nginx_502_page() {
        let err = rpc::<Value>(502, NGINX_502).unwrap_err();
        match &err {
            Error::HttpStatus {
                status,
                body_excerpt,
            } => {
                assert_eq!(*status, 502);
                assert_eq!(body_excerpt, "502 Bad Gateway 502 Bad Gateway nginx/1.24.0");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.is_transport());
    }

    #[test]
    fn html_404_for_an_unknown_route() {
        match rpc::<Value>(404, WERKZEUG_404).unwrap_err() {
            Error::HttpStatus {
                status: 404,
                body_excerpt,
            } => {
                assert!(
                    body_excerpt.starts_with("404 Not Found Not Found The requested URL"),
                    "{body_excerpt}"
                );
                assert!(body_excerpt.chars().count() <= EXCERPT_CHARS);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn html_with_200_is_a_decode_error() {
        let err = rpc::<Value>(200, "<html><body>Login</body></html>").unwrap_err();
        assert!(
            matches!(&err, Error::Decode { body_excerpt, .. } if body_excerpt == "Login"),
            "{err:?}"
        );
    }

    #[test]
    fn truncated_json() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"result":[{"id":1,"name":"Acme"},{"id":2,"na"#,
            r#"{"jsonrpc":"2.0","id":1,"result":[1,2"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":200,"#,
            "",
            "{",
        ] {
            let err = rpc::<Value>(200, body).unwrap_err();
            assert!(matches!(err, Error::Decode { .. }), "{body}: {err:?}");
        }
    }

    #[test]
    fn not_an_object() {
        // a derived struct would accept a sequence; the envelope must not
        for body in ["[1, null]", "42", "\"x\"", "null"] {
            assert!(
                matches!(rpc::<Value>(200, body).unwrap_err(), Error::Decode { .. }),
                "{body}"
            );
        }
    }

    #[test]
    fn plain_400_bodies() {
        let err = rpc::<Value>(400, "Invalid JSON data").unwrap_err();
        assert!(
            matches!(&err, Error::HttpStatus { status: 400, body_excerpt } if body_excerpt == "Invalid JSON data")
        );
    }

    #[test]
    fn error_envelope_with_non_200_status() {
        let body = r#"{"jsonrpc":"2.0","id":1,"error":{"code":200,"data":{"name":"odoo.exceptions.AccessError","message":"no"}}}"#;
        assert!(matches!(
            rpc::<Value>(500, body).unwrap_err(),
            Error::AccessError { .. }
        ));
    }

    #[test]
    fn wrong_result_type() {
        let err = rpc::<Vec<i64>>(200, r#"{"result":["abc"]}"#).unwrap_err();
        assert!(matches!(err, Error::Decode { .. }));
        // authenticate's false is not a uid
        let err = rpc::<i64>(200, r#"{"result":false}"#).unwrap_err();
        assert!(matches!(err, Error::Decode { .. }));
    }

    #[test]
    fn false_values_and_many2one_pairs_in_records() {
        use crate::value::{Many2One, OdooOption};
        #[derive(Deserialize)]
        struct Partner {
            id: i64,
            email: OdooOption<String>,
            parent_id: OdooOption<Many2One>,
            company_id: OdooOption<Many2One>,
            is_company: bool,
        }
        let body = r#"{"jsonrpc":"2.0","id":1,"result":[
            {"id":7,"email":false,"parent_id":false,"company_id":[1,"My Company"],"is_company":false},
            {"id":8,"email":"a@b.c","parent_id":[7,"Acme"],"company_id":false,"is_company":true}]}"#;
        let rows: Vec<Partner> = rpc(200, body).unwrap();
        assert_eq!(rows[0].id, 7);
        assert_eq!(rows[0].email.0, None);
        assert_eq!(rows[0].parent_id.0, None);
        assert_eq!(
            rows[0]
                .company_id
                .0
                .as_ref()
                .map(|c| (c.id, c.name.as_deref())),
            Some((1, Some("My Company")))
        );
        assert!(!rows[0].is_company);
        assert_eq!(rows[1].email.0.as_deref(), Some("a@b.c"));
        assert_eq!(rows[1].parent_id.0.as_ref().map(|p| p.id), Some(7));
        assert!(rows[1].is_company);
    }

    #[test]
    fn json2_success_is_the_raw_value() {
        let rows: Vec<Value> = j2(200, r#"[{"id":25,"name":"x"}]"#).unwrap();
        assert_eq!(rows.len(), 1);
        let ids: Vec<i64> = j2(200, "[7]").unwrap();
        assert_eq!(ids, vec![7]);
        let none: Option<bool> = j2(200, "null").unwrap();
        assert_eq!(none, None);
        assert!(matches!(
            j2::<Vec<i64>>(200, "[1,").unwrap_err(),
            Error::Decode { .. }
        ));
    }

    fn json2_body(name: &str, message: &str) -> String {
        json!({"name": name, "message": message, "arguments": [message], "context": {}, "debug": "Traceback"})
            .to_string()
    }

    #[test]
    fn json2_status_codes() {
        let err = j2::<Value>(
            401,
            &json2_body("werkzeug.exceptions.Unauthorized", "Invalid apikey"),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::AccessDenied { message } if message == "Invalid apikey"),
            "{err:?}"
        );

        let err = j2::<Value>(
            403,
            &json2_body("odoo.exceptions.AccessError", "not allowed"),
        )
        .unwrap_err();
        assert!(matches!(err, Error::AccessError { .. }));
        let err = j2::<Value>(
            403,
            &json2_body("odoo.exceptions.AccessDenied", "Access Denied"),
        )
        .unwrap_err();
        assert!(matches!(err, Error::AccessDenied { .. }));

        let err = j2::<Value>(
            404,
            &json2_body(
                "werkzeug.exceptions.NotFound",
                "the model 'x' does not exist",
            ),
        )
        .unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }));
        let err = j2::<Value>(
            404,
            &json2_body("odoo.exceptions.MissingError", "Record does not exist"),
        )
        .unwrap_err();
        assert!(matches!(err, Error::MissingError { .. }));

        let err = j2::<Value>(
            422,
            &json2_body(
                "werkzeug.exceptions.UnprocessableEntity",
                "missing argument 'vals'",
            ),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Server { code: 422, name, .. } if name == "werkzeug.exceptions.UnprocessableEntity"),
            "{err:?}"
        );
        let err =
            j2::<Value>(422, &json2_body("odoo.exceptions.ValidationError", "bad")).unwrap_err();
        assert!(matches!(err, Error::UserError { .. }));

        let err = j2::<Value>(
            500,
            &json2_body("builtins.ZeroDivisionError", "division by zero"),
        )
        .unwrap_err();
        match err {
            Error::Server { code, debug, .. } => {
                assert_eq!(code, 500);
                assert_eq!(debug.as_deref(), Some("Traceback"));
            }
            other => panic!("{other:?}"),
        }
        let err = j2::<Value>(
            400,
            &json2_body(
                "werkzeug.exceptions.BadRequest",
                "could not parse the body as json",
            ),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Server { code: 400, .. }));
    }

    #[test]
    fn json2_html_404_and_proxy_pages() {
        let err = j2::<Value>(404, WERKZEUG_404).unwrap_err();
        assert!(
            matches!(err, Error::HttpStatus { status: 404, .. }),
            "{err:?}"
        );
        let err = j2::<Value>(502, NGINX_502).unwrap_err();
        assert!(matches!(err, Error::HttpStatus { status: 502, .. }));
        // 401 without a JSON body (a proxy's basic auth page) stays a status error
        let err = j2::<Value>(401, "<html>401 Authorization Required</html>").unwrap_err();
        assert!(matches!(err, Error::HttpStatus { status: 401, .. }));
        // a JSON 401 with an unknown name is still a denial
        let err = j2::<Value>(401, r#"{"message":"nope"}"#).unwrap_err();
        assert!(matches!(err, Error::AccessDenied { .. }));
    }

    #[test]
    fn health_bodies() {
        let h = health(200, &no_headers(), br#"{"status": "pass"}"#).unwrap();
        assert_eq!(
            (h.status.as_str(), h.db_server_status, h.http_status),
            ("pass", None, 200)
        );
        let h = health(
            200,
            &no_headers(),
            br#"{"status":"pass","db_server_status":true}"#,
        )
        .unwrap();
        assert_eq!(h.db_server_status, Some(true));
        let h = health(
            500,
            &no_headers(),
            br#"{"status":"fail","db_server_status":false}"#,
        )
        .unwrap();
        assert_eq!(
            (h.status.as_str(), h.db_server_status, h.http_status),
            ("fail", Some(false), 500)
        );
        assert!(!h.is_pass());
        let err = health(502, &no_headers(), NGINX_502.as_bytes()).unwrap_err();
        assert!(matches!(err, Error::HttpStatus { status: 502, .. }));
        let err = health(200, &no_headers(), b"ok").unwrap_err();
        assert!(matches!(err, Error::Decode { .. }));
    }

    #[test]
    fn session_cookie_extraction() {
        let mut headers = HeaderMap::new();
        assert_eq!(session_cookie(&headers), None);
        headers.append(
            SET_COOKIE,
            HeaderValue::from_static("tz=Europe/Brussels; Path=/"),
        );
        headers.append(
            SET_COOKIE,
            HeaderValue::from_static("session_id=0123456789abcdef0123456789abcdef01234567; Expires=Sat, 21 Feb 2026 10:00:00 GMT; Max-Age=604800; HttpOnly; Path=/"),
        );
        assert_eq!(
            session_cookie(&headers),
            Some("0123456789abcdef0123456789abcdef01234567")
        );
        // a deletion (empty value) does not count
        let mut headers = HeaderMap::new();
        headers.append(
            SET_COOKIE,
            HeaderValue::from_static("session_id=; Max-Age=0; Path=/"),
        );
        assert_eq!(session_cookie(&headers), None);
    }

    #[test]
    fn transient_statuses() {
        let html = HeaderMap::new();
        let mut json = HeaderMap::new();
        json.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(is_transient_status(502, &html));
        assert!(is_transient_status(503, &json));
        assert!(is_transient_status(504, &html));
        assert!(is_transient_status(500, &html));
        assert!(!is_transient_status(500, &json));
        assert!(!is_transient_status(404, &html));
        assert!(!is_transient_status(200, &html));
    }

    #[test]
    fn excerpts_are_short_and_single_line() {
        let long = "x".repeat(10_000);
        let e = excerpt(long.as_bytes());
        assert_eq!(e.chars().count(), EXCERPT_CHARS);
        assert!(e.ends_with(ELLIPSIS));
        let e = excerpt("a\n\n  b\r\n\tc".as_bytes());
        assert_eq!(e, "a b c");
        let e =
            excerpt(b"<style>body{}</style><script>var x = '<b>';</script><p>Hello &amp; bye</p>");
        assert_eq!(e, "Hello & bye");
        // invalid UTF-8 does not panic
        let e = excerpt(&[0xff, 0xfe, b'a']);
        assert!(e.ends_with('a'));
        // multi-byte characters at the cut
        let e = excerpt("é".repeat(1000).as_bytes());
        assert_eq!(e.chars().count(), EXCERPT_CHARS);
    }

    #[test]
    fn major_versions() {
        assert_eq!(
            major_version(&[json!(17), json!(0)], "17.0", "17.0"),
            Some(17)
        );
        assert_eq!(
            major_version(&[json!("saas~17"), json!(1)], "saas~17.1", "saas~17.1"),
            Some(17)
        );
        assert_eq!(major_version(&[], "19.0", "19.0+e"), Some(19));
        assert_eq!(major_version(&[], "", "16.0+e"), Some(16));
        assert_eq!(major_version(&[json!(null)], "", "x"), None);
    }
}
