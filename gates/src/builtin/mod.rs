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
//! Each kind lives in its own file, named after it (`builtin/<kind>.rs`, the kind in
//! snake case: `websocket-health` is `websocket_health.rs`): the gate, its helpers,
//! its tests, and its settings struct (re-exported by [`crate::settings`]) with
//! their defaults and checks. `common.rs` (the shared [`Connection`] and helpers),
//! `cleanup.rs` (removal of created records) and `steps.rs` (the steps that
//! `smoke-crud` and `filestore` share) are not kinds.
//!
//! | kind | file | gate | settings | `Warn` when |
//! |---|---|---|---|---|
//! | `tcp` | `tcp.rs` | [`TcpGate`] | [`TcpSettings`](crate::TcpSettings) | never |
//! | `health` | `health.rs` | [`HealthGate`] | [`HealthSettings`](crate::HealthSettings) | slow answer; `db_server_status` asked but not reported |
//! | `websocket-health` | `websocket_health.rs` | [`WebsocketHealthGate`] | [`WebsocketHealthSettings`](crate::WebsocketHealthSettings) | slow upgrade; an `https` target (only `/websocket/health` is checked) |
//! | `login-page` | `login_page.rs` | [`LoginPageGate`] | [`LoginPageSettings`](crate::LoginPageSettings) | slow page; a 200 without a login form |
//! | `database-listed` | `database_listed.rs` | [`DatabaseListedGate`] | [`DatabaseListedSettings`](crate::DatabaseListedSettings) | never (a `list_db = False` server confirmed by a login passes) |
//! | `postgres` | `postgres.rs` | [`PostgresGate`] | [`PostgresSettings`](crate::PostgresSettings) | connections in use from `warn_percent` |
//! | `authentication` | `authentication.rs` | [`AuthenticationGate`] | [`AuthenticationSettings`](crate::AuthenticationSettings) | never |
//! | `version` | `version.rs` | [`VersionGate`] | [`VersionSettings`](crate::VersionSettings) | never (an unreported release is `Inconclusive`) |
//! | `modules` | `modules.rs` | [`ModulesGate`] | [`ModulesSettings`](crate::ModulesSettings) | never |
//! | `smoke-crud` | `smoke_crud.rs` | [`SmokeCrudGate`] | [`SmokeCrudSettings`](crate::SmokeCrudSettings) | never |
//! | `filestore` | `filestore.rs` | [`FilestoreGate`] | [`FilestoreSettings`](crate::FilestoreSettings) | never |
//! | `response-time` | `response_time.rs` | [`ResponseTimeGate`] | [`ResponseTimeSettings`](crate::ResponseTimeSettings) | p95 from `warn_ms`; some errors |
//! | `session-continuity` | `session_continuity.rs` | [`SessionContinuityGate`] | [`SessionContinuitySettings`](crate::SessionContinuitySettings) | both targets are the same server |
//! | `coverage` | `coverage.rs` | [`CoverageGate`] | [`CoverageSettings`](crate::CoverageSettings) | never (reads coverage.py's report; the target is not asked) |
//!
//! The Odoo gates of one target share a [`Connection`] (an `odoo-rpc` client and an HTTP
//! client): connection pools and the login are reused across gates and rounds.
//! `smoke-crud` and `filestore` remove what they create on every way out, cancellation
//! included; binaries wait for removals still running with [`wait_for_cleanups`].
//! No gate puts a password, API key, session id or DSN in a message, value or error.

pub(crate) mod authentication;
mod cleanup;
mod common;
pub(crate) mod coverage;
pub(crate) mod database_listed;
pub(crate) mod filestore;
pub(crate) mod health;
pub(crate) mod login_page;
pub(crate) mod modules;
pub(crate) mod postgres;
pub(crate) mod response_time;
pub(crate) mod session_continuity;
pub(crate) mod smoke_crud;
mod steps;
pub(crate) mod tcp;
pub(crate) mod version;
pub(crate) mod websocket_health;

pub use authentication::AuthenticationGate;
pub use cleanup::{pending_cleanups, wait_for_cleanups};
pub use common::Connection;
pub(crate) use common::ConnectionCache;
pub use coverage::{parse_report, CoverageFigures, CoverageGate};
pub use database_listed::DatabaseListedGate;
pub use filestore::FilestoreGate;
pub use health::HealthGate;
pub use login_page::LoginPageGate;
pub use modules::ModulesGate;
pub use postgres::PostgresGate;
pub use response_time::ResponseTimeGate;
pub use session_continuity::SessionContinuityGate;
pub use smoke_crud::SmokeCrudGate;
pub use tcp::TcpGate;
pub use version::VersionGate;
pub use websocket_health::WebsocketHealthGate;
