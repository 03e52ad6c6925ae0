//! An async Odoo client (16.0 to 19.0) speaking three protocols behind one API.
//!
//! | protocol | routes | credentials |
//! |---|---|---|
//! | [`Protocol::Web`] | `/web/session/authenticate`, `/web/dataset/call_kw/<model>/<method>` with the `session_id` cookie | password |
//! | [`Protocol::JsonRpc`] | `/jsonrpc`: `common.authenticate`, `object.execute_kw` | password or API key |
//! | [`Protocol::Json2`] (19+) | `/json/2/<model>/<method>`, `Authorization: bearer` | API key |
//!
//! [`Protocol::Auto`] (the default) asks the server version once and picks:
//! an API key on 19+ gives JSON-2, an API key before 19 jsonrpc, a password on
//! 19+ the web session, a password on 16-18 jsonrpc.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use odoo_rpc::{Client, Domain, Op, SearchOptions};
//! use secrecy::SecretString;
//! use serde::Deserialize;
//!
//! #[derive(Debug, Deserialize)]
//! struct Partner {
//!     id: i64,
//!     name: String,
//!     email: odoo_rpc::value::OdooOption<String>,
//! }
//!
//! # async fn run() -> odoo_rpc::Result<()> {
//! let client = Client::builder("https://odoo.example.com")
//!     .database("prod")
//!     .login("admin")
//!     .api_key(SecretString::from("..."))
//!     .build()?;
//!
//! let companies = Domain::leaf("is_company", Op::Eq, true);
//! let partners: Vec<Partner> = client
//!     .search_read("res.partner", &companies, &["name", "email"], &SearchOptions::default().limit(5))
//!     .await?;
//! println!("{partners:?}");
//!
//! // every record of a large table, 1000 at a time, with flat memory
//! let mut all = Box::pin(client.search_read_stream::<Partner>(
//!     "res.partner",
//!     Domain::new(),
//!     vec!["name".into(), "email".into()],
//!     1000,
//! ));
//! while let Some(partner) = all.next().await {
//!     let _partner = partner?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Errors are one [`Error`] enum: server-side exceptions by kind
//! ([`Error::AccessDenied`], [`Error::UserError`], ...; [`Error::is_server`])
//! apart from transport failures ([`Error::is_transport`]). Reads are retried on
//! transient failures, writes never ([`retry`]); an expired web session is
//! renewed once, shared by concurrent calls. Passwords, API keys and session ids
//! are [`secrecy::SecretString`]s and never appear in `Debug` output, logs or
//! errors. TLS certificates are always verified.
//!
//! Each call runs in a `tracing` span `odoo_rpc` with the fields `protocol`,
//! `model`, `method`, `elapsed_ms` and `outcome`.

#![deny(missing_docs)]

mod client;
mod decode;
pub mod domain;
mod error;
mod protocol;
pub mod retry;
mod stream;
mod transport;
mod types;
pub mod value;

pub use client::{Client, ClientBuilder};
pub use domain::{Domain, Op};
pub use error::{Error, Result};
pub use retry::RetryPolicy;
pub use types::{FieldInfo, Health, Protocol, SearchOptions, ServerVersion};
pub use value::{Many2One, OdooOption, X2ManyCommand};
