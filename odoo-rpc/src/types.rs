//! Plain data types of the client's API: protocols, options and answers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Error;

/// The wire protocol the client speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Pick one from the server version and the credentials, once, on first
    /// use: Odoo 19+ with an API key: [`Protocol::Json2`]; an API key before 19:
    /// [`Protocol::JsonRpc`]; a password on 19+: [`Protocol::Web`]; a password on
    /// 16-18: [`Protocol::JsonRpc`].
    #[default]
    Auto,
    /// The web client's protocol: `/web/session/authenticate` then
    /// `/web/dataset/call_kw/<model>/<method>` with the session cookie. Needs a
    /// password (API keys are refused by web logins).
    Web,
    /// The stateless external API: `/jsonrpc` with `common.authenticate` and
    /// `object.execute_kw`; a password or an API key.
    JsonRpc,
    /// Odoo 19's JSON-2 API: `/json/2/<model>/<method>` with
    /// `Authorization: bearer <api key>`. Needs an API key.
    Json2,
}

impl Protocol {
    /// The lower-case name: `auto`, `web`, `jsonrpc`, `json2`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Web => "web",
            Self::JsonRpc => "jsonrpc",
            Self::Json2 => "json2",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = Error;

    /// Parses `auto`, `web`, `jsonrpc` (or `json-rpc`) and `json2` (or `json-2`),
    /// case-insensitively.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for any other text.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "web" => Ok(Self::Web),
            "jsonrpc" | "json-rpc" => Ok(Self::JsonRpc),
            "json2" | "json-2" => Ok(Self::Json2),
            other => Err(Error::config(format!(
                "unknown protocol {other:?} (expected auto, web, jsonrpc or json2)"
            ))),
        }
    }
}

/// What the server says about its version (`common.version` /
/// `/web/webclient/version_info`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerVersion {
    /// E.g. `"17.0"`, `"saas~17.1"`, `"19.0+e"`.
    pub server_version: String,
    /// E.g. `[17, 0, 0, "final", 0, ""]`.
    pub server_version_info: Vec<Value>,
    /// E.g. `"17.0"`.
    pub server_serie: String,
    /// The RPC protocol version (1).
    pub protocol_version: i64,
    /// The major version (16, 17, ...), read from the fields above.
    pub major: u8,
    /// The `X-Odoo-Release` response header, when a deployment sets one.
    pub release: Option<String>,
}

/// The answer of `GET /web/health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `"pass"` when healthy, `"fail"` otherwise.
    pub status: String,
    /// Whether PostgreSQL answered, when asked with [`crate::Client::health_with_db`].
    pub db_server_status: Option<bool>,
    /// The HTTP status of the answer (200, or 500 when the database is down).
    pub http_status: u16,
}

impl Health {
    /// Whether the status is `"pass"` and, when checked, the database is up.
    #[must_use]
    pub fn is_pass(&self) -> bool {
        self.status == "pass" && self.db_server_status != Some(false)
    }
}

/// One field's description from `fields_get`. Only the attributes asked for are
/// present, so everything is optional; attributes without a field here are kept
/// in `extra`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldInfo {
    /// The field type: `char`, `many2one`, `datetime`, ...
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub field_type: Option<String>,
    /// The label.
    #[serde(
        default,
        deserialize_with = "crate::value::option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub string: Option<String>,
    /// Whether the field is required.
    #[serde(default)]
    pub required: bool,
    /// Whether the field is read-only.
    #[serde(default)]
    pub readonly: bool,
    /// The comodel of a relational field.
    #[serde(
        default,
        deserialize_with = "crate::value::option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub relation: Option<String>,
    /// The choices of a selection field, as sent (`[[value, label], ...]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Value>,
    /// Every other attribute (`help`, `store`, `searchable`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `limit`, `offset` and `order` for `search` and `search_read`.
///
/// ```
/// use odoo_rpc::SearchOptions;
/// let options = SearchOptions::default().limit(10).offset(20).order("name asc, id desc");
/// assert_eq!(options.limit, Some(10));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SearchOptions {
    /// Maximum number of records (none: all).
    pub limit: Option<u64>,
    /// Number of records to skip.
    pub offset: Option<u64>,
    /// An SQL-like order: `"name asc, id desc"`.
    pub order: Option<String>,
}

impl SearchOptions {
    /// Sets the maximum number of records.
    #[must_use]
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Sets the number of records to skip.
    #[must_use]
    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// Sets the order, e.g. `"id asc"`.
    #[must_use]
    pub fn order(mut self, order: impl Into<String>) -> Self {
        self.order = Some(order.into());
        self
    }

    pub(crate) fn insert_into(&self, kwargs: &mut Map<String, Value>) {
        if let Some(limit) = self.limit {
            kwargs.insert("limit".into(), limit.into());
        }
        if let Some(offset) = self.offset {
            kwargs.insert("offset".into(), offset.into());
        }
        if let Some(order) = &self.order {
            kwargs.insert("order".into(), order.as_str().into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_round_trip() {
        for p in [
            Protocol::Auto,
            Protocol::Web,
            Protocol::JsonRpc,
            Protocol::Json2,
        ] {
            assert_eq!(p.to_string().parse::<Protocol>().unwrap(), p);
        }
        assert!(matches!(
            "xmlrpc".parse::<Protocol>(),
            Err(Error::Config { .. })
        ));
    }

    #[test]
    fn field_info_is_lenient() {
        let fields: std::collections::BTreeMap<String, FieldInfo> = serde_json::from_str(
            r#"{"name":{"type":"char","string":"Name","required":true,"readonly":false,"help":"The name"},
                "parent_id":{"type":"many2one","string":"Parent","relation":"res.partner"},
                "state":{"type":"selection","selection":[["draft","Draft"],["done","Done"]]},
                "only_string":{"string":"Label"}}"#,
        )
        .unwrap();
        assert_eq!(fields["name"].field_type.as_deref(), Some("char"));
        assert!(fields["name"].required);
        assert_eq!(fields["name"].extra["help"], "The name");
        assert_eq!(fields["parent_id"].relation.as_deref(), Some("res.partner"));
        assert!(fields["state"].selection.is_some());
        assert_eq!(fields["only_string"].field_type, None);
    }
}
