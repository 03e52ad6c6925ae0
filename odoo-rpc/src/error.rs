//! The crate's error type.
//!
//! Errors fall in three families, which callers can tell apart without matching
//! every variant:
//!
//! - [`Error::is_transport`]: the exchange with the server failed or produced
//!   something that is not an Odoo answer (connection refused, timeout, an HTML
//!   page from a proxy, a truncated body, a body over the size limit);
//! - [`Error::is_server`]: Odoo answered with an error object (JSON-RPC `error`
//!   member or a JSON-2 error body); the variant is picked from the exception's
//!   `name` (`odoo.exceptions.AccessDenied`, ...);
//! - [`Error::Config`]: the client was built or called with invalid input.
//!
//! No variant ever holds a password, an API key or a session id: the client
//! scrubs them from every text it copies out of a response.

use std::time::Duration;

/// The result type used throughout this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when talking to Odoo.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client was configured or called with invalid input: a bad URL, missing
    /// credentials, a protocol that cannot work with the credentials given, an
    /// invalid model or method name, an invalid domain, or positional arguments
    /// on the JSON-2 protocol.
    #[error("invalid configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },

    /// No connection could be established (refused, DNS failure, TLS handshake
    /// failure, connect timeout).
    #[error("cannot connect to {url}")]
    Connect {
        /// The URL the request was for (never holds credentials).
        url: String,
        /// The underlying HTTP client error.
        #[source]
        source: reqwest::Error,
    },

    /// The server did not answer completely within the request timeout.
    #[error("no complete answer within {} ms", timeout.as_millis())]
    Timeout {
        /// The timeout that elapsed.
        timeout: Duration,
    },

    /// The HTTP exchange failed after the connection was made (connection reset,
    /// body cut short by the peer, HTTP protocol error).
    #[error("http exchange failed")]
    Transport {
        /// The underlying HTTP client error.
        #[source]
        source: reqwest::Error,
    },

    /// The server answered with an HTTP status that carries no Odoo error object
    /// (an HTML 404 for an unknown route, a proxy's 502 page, ...).
    #[error("http status {status}: {body_excerpt}")]
    HttpStatus {
        /// The HTTP status code.
        status: u16,
        /// The start of the body (at most 256 characters, tags stripped from HTML
        /// pages, secrets removed).
        body_excerpt: String,
    },

    /// The body could not be decoded: not JSON, cut short, or of an unexpected shape.
    #[error("undecodable response body (starts with: {body_excerpt})")]
    Decode {
        /// The start of the body (at most 256 characters, secrets removed).
        body_excerpt: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },

    /// The response body exceeded the configured maximum size; reading stopped at
    /// the limit.
    #[error("response body larger than {limit} bytes")]
    TooLarge {
        /// The configured limit in bytes.
        limit: u64,
    },

    /// The server's answer is valid JSON but breaks the protocol in a way the
    /// client cannot work with (no session cookie after a login, non-increasing
    /// ids while paging, an unparsable version).
    #[error("unexpected answer from the server: {message}")]
    Protocol {
        /// What was unexpected.
        message: String,
    },

    /// `odoo.exceptions.AccessDenied`: wrong login, password or API key, or an
    /// operation the server refuses outright (e.g. listing databases with
    /// `list_db = False`). Also a JSON-2 `401` and a refused login (`false` from
    /// `common.authenticate`, a web login that needs a second factor).
    #[error("access denied: {message}")]
    AccessDenied {
        /// The server's message.
        message: String,
    },

    /// `odoo.exceptions.AccessError`: the user lacks the rights for the operation.
    #[error("access error: {message}")]
    AccessError {
        /// The server's message.
        message: String,
    },

    /// `odoo.exceptions.UserError` or one of its subclasses meant for the user
    /// (`ValidationError`, `RedirectWarning`).
    #[error("{name}: {message}")]
    UserError {
        /// The exception's full name as sent by Odoo, e.g. `odoo.exceptions.ValidationError`.
        name: String,
        /// The server's message.
        message: String,
    },

    /// `odoo.exceptions.MissingError`: a record does not exist (any more).
    #[error("missing record: {message}")]
    MissingError {
        /// The server's message.
        message: String,
    },

    /// The web session expired or is unknown (JSON-RPC code 100,
    /// `odoo.http.SessionExpiredException`). The client re-authenticates once on
    /// its own before returning this.
    #[error("session expired: {message}")]
    SessionExpired {
        /// The server's message.
        message: String,
    },

    /// `werkzeug.exceptions.NotFound` inside a JSON answer (JSON-RPC code 404, a
    /// JSON-2 404): unknown model or method on Odoo 18+ and JSON-2.
    #[error("not found: {message}")]
    NotFound {
        /// The server's message.
        message: String,
    },

    /// Any other server-side exception (`builtins.KeyError`,
    /// `psycopg2.OperationalError`, `werkzeug.exceptions.UnprocessableEntity`, ...).
    #[error("odoo {}: {message}", display_name(name))]
    Server {
        /// The exception's full name (`data.name`), empty when the server sent none.
        name: String,
        /// The server's message (`data.message`, or the error's `message`).
        message: String,
        /// The JSON-RPC error code (200 on 16-18, 0 on 19, ...), or the HTTP
        /// status for JSON-2.
        code: i64,
        /// The server-side traceback when the server sent one.
        debug: Option<String>,
    },
}

fn display_name(name: &str) -> &str {
    if name.is_empty() {
        "server error"
    } else {
        name
    }
}

impl Error {
    /// Whether the exchange failed below Odoo's error reporting: connection,
    /// timeout, HTTP status without an Odoo error object, undecodable body, body
    /// too large, or a protocol violation.
    #[must_use]
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. }
                | Self::Timeout { .. }
                | Self::Transport { .. }
                | Self::HttpStatus { .. }
                | Self::Decode { .. }
                | Self::TooLarge { .. }
                | Self::Protocol { .. }
        )
    }

    /// Whether the call was refused before anything was sent, for a mistake of the
    /// caller's: an invalid URL or client setting, an invalid model or method name, an
    /// invalid domain, positional arguments on the JSON-2 protocol.
    #[must_use]
    pub fn is_config(&self) -> bool {
        matches!(self, Self::Config { .. })
    }

    /// Whether Odoo answered with an error object (JSON-RPC `error` or a JSON-2
    /// error body), whatever its kind.
    #[must_use]
    pub fn is_server(&self) -> bool {
        matches!(
            self,
            Self::AccessDenied { .. }
                | Self::AccessError { .. }
                | Self::UserError { .. }
                | Self::MissingError { .. }
                | Self::SessionExpired { .. }
                | Self::NotFound { .. }
                | Self::Server { .. }
        )
    }

    /// A short, stable, snake_case name of the variant (`"access_denied"`,
    /// `"timeout"`, ...), used in tracing fields and handy for metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Config { .. } => "config",
            Self::Connect { .. } => "connect",
            Self::Timeout { .. } => "timeout",
            Self::Transport { .. } => "transport",
            Self::HttpStatus { .. } => "http_status",
            Self::Decode { .. } => "decode",
            Self::TooLarge { .. } => "too_large",
            Self::Protocol { .. } => "protocol",
            Self::AccessDenied { .. } => "access_denied",
            Self::AccessError { .. } => "access_error",
            Self::UserError { .. } => "user_error",
            Self::MissingError { .. } => "missing_error",
            Self::SessionExpired { .. } => "session_expired",
            Self::NotFound { .. } => "not_found",
            Self::Server { .. } => "server",
        }
    }

    /// The HTTP status of an [`Error::HttpStatus`], else `None`.
    #[must_use]
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::HttpStatus { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::Config {
            message: message.into(),
        }
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Self::Protocol {
            message: message.into(),
        }
    }

    /// Replaces every occurrence of the given secrets in the texts this error
    /// copied from a response, and masks a secret's prefix left at the end of a
    /// truncated excerpt.
    pub(crate) fn redact(mut self, secrets: &[&str]) -> Self {
        let secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
        if secrets.is_empty() {
            return self;
        }
        match &mut self {
            Self::HttpStatus { body_excerpt, .. } => redact_excerpt(body_excerpt, &secrets),
            Self::Decode {
                body_excerpt,
                source,
            } => {
                redact_excerpt(body_excerpt, &secrets);
                let text = source.to_string();
                if secrets.iter().any(|s| text.contains(s)) {
                    *source = <serde_json::Error as serde::de::Error>::custom(redact_text(
                        &text, &secrets,
                    ));
                }
            }
            Self::Protocol { message }
            | Self::AccessDenied { message }
            | Self::AccessError { message }
            | Self::UserError { message, .. }
            | Self::MissingError { message }
            | Self::SessionExpired { message }
            | Self::NotFound { message } => redact_in_place(message, &secrets),
            Self::Server { message, debug, .. } => {
                redact_in_place(message, &secrets);
                if let Some(debug) = debug {
                    redact_in_place(debug, &secrets);
                }
            }
            Self::Config { .. }
            | Self::Connect { .. }
            | Self::Timeout { .. }
            | Self::Transport { .. }
            | Self::TooLarge { .. } => {}
        }
        self
    }
}

pub(crate) const REDACTED: &str = "[REDACTED]";

fn redact_text(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        if out.contains(secret) {
            out = out.replace(secret, REDACTED);
        }
    }
    out
}

fn redact_in_place(text: &mut String, secrets: &[&str]) {
    if secrets.iter().any(|s| text.contains(s)) {
        *text = redact_text(text, secrets);
    }
}

/// Redacts whole secrets, then a secret's prefix (3 characters or more) that a
/// truncation left at the end of the excerpt.
fn redact_excerpt(excerpt: &mut String, secrets: &[&str]) {
    redact_in_place(excerpt, secrets);
    let (body, ellipsis) = match excerpt.strip_suffix(crate::decode::ELLIPSIS) {
        Some(body) => (body, true),
        None => return,
    };
    for secret in secrets {
        let mut cut = None;
        for (end, _) in secret.char_indices().skip(3) {
            if body.ends_with(&secret[..end]) {
                cut = Some(body.len() - end);
            }
        }
        if let Some(at) = cut {
            let mut out = body[..at].to_owned();
            out.push_str(REDACTED);
            if ellipsis {
                out.push_str(crate::decode::ELLIPSIS);
            }
            *excerpt = out;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_whole_secrets_everywhere() {
        let err = Error::Server {
            name: "builtins.Exception".into(),
            message: "bad password hunter2!".into(),
            code: 200,
            debug: Some("Traceback: hunter2".into()),
        }
        .redact(&["hunter2"]);
        let text = format!("{err:?} {err}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains(REDACTED));
    }

    #[test]
    fn redacts_a_secret_prefix_cut_by_truncation() {
        let mut excerpt = format!("abc s3cr{}", crate::decode::ELLIPSIS);
        redact_excerpt(&mut excerpt, &["s3cret-key"]);
        assert!(!excerpt.contains("s3cr"), "{excerpt}");
        assert!(excerpt.ends_with(crate::decode::ELLIPSIS));
    }

    #[test]
    fn redacts_decode_source() {
        let source = serde_json::from_str::<i64>("\"topsecret\"").unwrap_err();
        let err = Error::Decode {
            body_excerpt: "\"topsecret\"".into(),
            source,
        }
        .redact(&["topsecret"]);
        let text = format!("{err:?} {err} {}", std::error::Error::source(&err).unwrap());
        assert!(!text.contains("topsecret"), "{text}");
    }

    #[test]
    fn families() {
        assert!(Error::Timeout {
            timeout: Duration::from_secs(1)
        }
        .is_transport());
        assert!(Error::AccessDenied {
            message: String::new()
        }
        .is_server());
        let config = Error::config("x");
        assert!(!config.is_server() && !config.is_transport());
        assert_eq!(config.kind(), "config");
    }
}
