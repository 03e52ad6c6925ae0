//! Targets: an Odoo instance to check or deploy to.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::SecretRef;

/// An Odoo instance: where it answers, which database, and how to log in.
///
/// Holds secret *references*, never secrets: resolve them with
/// [`SecretRef::resolve`] when a connection is made.
///
/// In TOML (a `[[targets]]` entry of a gate plan):
/// ```toml
/// name = "green"
/// url = "http://127.0.0.1:8069"
/// database = "prod"
/// login = "admin"
/// password = { env = "ODOO_PASSWORD" }
/// api_key = { file = "/run/secrets/odoo_api_key" }
/// realtime_url = "http://127.0.0.1:8072"   # prefork mode (--workers): the gevent port
/// ```
///
/// ```
/// use deploy_core::{SecretRef, Target};
///
/// let target = Target::new("green", "http://127.0.0.1:8069".parse()?)
///     .with_database("prod")
///     .with_login("admin")
///     .with_password(SecretRef::env("ODOO_PASSWORD"));
/// assert_eq!(target.url.port(), Some(8069));
/// # Ok::<(), url::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Name gates and reports refer to, e.g. `"green"`.
    pub name: String,
    /// Base URL of the instance, e.g. `http://127.0.0.1:8069` (what `/web/health` hangs off).
    pub url: Url,
    /// Database name; `None` for single-database servers (`dbfilter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Login of the user the checks act as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// That user's password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// That user's API key (preferred over the password by clients that can use it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretRef>,
    /// Where websockets are served when that is not `url`: the real-time (evented,
    /// gevent) port of an Odoo in prefork mode (`--workers`, `gevent_port`, 8072 by
    /// default), whose HTTP port refuses websocket upgrades. `None`: `url` serves them
    /// (Odoo's threaded server, or a proxy routing `/websocket` itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_url: Option<Url>,
}

impl Target {
    /// A target with a name and a base URL and nothing else.
    #[must_use]
    pub fn new(name: impl Into<String>, url: Url) -> Self {
        Target {
            name: name.into(),
            url,
            database: None,
            login: None,
            password: None,
            api_key: None,
            realtime_url: None,
        }
    }

    /// Sets where websockets are served (see [`Target::realtime_url`]).
    #[must_use]
    pub fn with_realtime_url(mut self, url: Url) -> Self {
        self.realtime_url = Some(url);
        self
    }

    /// The base URL that serves websockets: [`Target::realtime_url`], else `url`.
    #[must_use]
    pub fn websocket_url(&self) -> &Url {
        self.realtime_url.as_ref().unwrap_or(&self.url)
    }

    /// Sets the database.
    #[must_use]
    pub fn with_database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// Sets the login.
    #[must_use]
    pub fn with_login(mut self, login: impl Into<String>) -> Self {
        self.login = Some(login.into());
        self
    }

    /// Sets the password reference.
    #[must_use]
    pub fn with_password(mut self, password: SecretRef) -> Self {
        self.password = Some(password);
        self
    }

    /// Sets the API key reference.
    #[must_use]
    pub fn with_api_key(mut self, api_key: SecretRef) -> Self {
        self.api_key = Some(api_key);
        self
    }

    /// The secret to log in with: the API key if there is one, else the password.
    #[must_use]
    pub fn credential(&self) -> Option<&SecretRef> {
        self.api_key.as_ref().or(self.password.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip() {
        let text = r#"
            name = "green"
            url = "http://127.0.0.1:8069"
            database = "prod"
            login = "admin"
            password = { env = "ODOO_PASSWORD" }
            api_key = { file = "/run/secrets/key" }
        "#;
        let target: Target = toml::from_str(text).unwrap();
        assert_eq!(
            target,
            Target::new("green", "http://127.0.0.1:8069".parse().unwrap())
                .with_database("prod")
                .with_login("admin")
                .with_password(SecretRef::env("ODOO_PASSWORD"))
                .with_api_key(SecretRef::file("/run/secrets/key"))
        );
        assert_eq!(
            target.credential(),
            Some(&SecretRef::file("/run/secrets/key"))
        );
        let again: Target = toml::from_str(&toml::to_string(&target).unwrap()).unwrap();
        assert_eq!(again, target);
    }

    #[test]
    fn minimal_and_invalid() {
        let target: Target = toml::from_str("name = \"a\"\nurl = \"http://h:1\"").unwrap();
        assert_eq!(target.credential(), None);
        assert!(toml::from_str::<Target>("name = \"a\"\nurl = \"not a url\"").is_err());
        assert!(toml::from_str::<Target>("name = \"a\"\nurl = \"http://h\"\nport = 1").is_err());
    }
}
