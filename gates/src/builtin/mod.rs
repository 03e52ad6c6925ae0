//! Built-in gates: one per [`GateKind`](crate::GateKind), built from a plan by
//! [`Registry::with_builtins`](crate::Registry::with_builtins).
//!
//! What each gate checks, and what its outcomes mean, is in its own docs. They follow one
//! rule for `Err` ("the check could not run") against `Fail` ("the system is not fit"):
//!
//! - gates whose point is reachability — [`TcpGate`], [`HealthGate`],
//!   [`WebsocketHealthGate`], [`LoginPageGate`], and [`PostgresGate`] for its
//!   connection — answer a dead server with **`Fail`**: that is their finding;
//! - the other Odoo gates answer **`Fail`** when Odoo answered with an error (access
//!   denied, validation error, PostgreSQL down, session expired...) and **`Err`** when
//!   no Odoo answer came (connection refused, timeout, a proxy's HTML error page): the
//!   reachability gates report that, and a plan makes these gates `depends_on` them;
//! - every gate gives its I/O the time left until its deadline
//!   ([`GateContext::remaining`](crate::GateContext::remaining)), so it can answer
//!   before the runner cancels it.
//!
//! | kind | gate | `Warn` when |
//! |---|---|---|
//! | `tcp` | [`TcpGate`] | never |
//! | `health` | [`HealthGate`] | slow answer; `db_server_status` asked but not reported |
//! | `websocket-health` | [`WebsocketHealthGate`] | slow upgrade; an `https` target (only `/websocket/health` is checked) |
//! | `login-page` | [`LoginPageGate`] | slow page; a 200 without a login form |
//! | `database-listed` | [`DatabaseListedGate`] | never (a `list_db = False` server confirmed by a login passes) |
//! | `postgres` | [`PostgresGate`] | connections in use from `warn_percent` |
//! | `authentication` | [`AuthenticationGate`] | never |
//! | `version` | [`VersionGate`] | never (an unreported release is `Inconclusive`) |
//! | `modules` | [`ModulesGate`] | never |
//! | `smoke-crud` | [`SmokeCrudGate`] | never |
//! | `filestore` | [`FilestoreGate`] | never |
//! | `response-time` | [`ResponseTimeGate`] | p95 from `warn_ms`; some errors |
//! | `session-continuity` | [`SessionContinuityGate`] | both targets are the same server |
//!
//! The Odoo gates of one target share a [`Connection`] (an `odoo-rpc` client and an HTTP
//! client): connection pools and the login are reused across gates and rounds.
//! `smoke-crud` and `filestore` remove what they create on every way out, cancellation
//! included; binaries wait for removals still running with [`wait_for_cleanups`].
//! No gate puts a password, API key, session id or DSN in a message, value or error.

mod cleanup;
mod common;
mod health;
mod odoo;
mod pages;
mod postgres;
mod records;
mod response_time;
mod session;
mod tcp;
mod websocket;

pub use cleanup::{pending_cleanups, wait_for_cleanups};
pub use common::Connection;
pub(crate) use common::ConnectionCache;
pub use health::HealthGate;
pub use odoo::{AuthenticationGate, DatabaseListedGate, ModulesGate, VersionGate};
pub use pages::LoginPageGate;
pub use postgres::PostgresGate;
pub use records::{FilestoreGate, SmokeCrudGate};
pub use response_time::ResponseTimeGate;
pub use session::SessionContinuityGate;
pub use tcp::TcpGate;
pub use websocket::WebsocketHealthGate;
