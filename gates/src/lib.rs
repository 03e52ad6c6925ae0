//! Health gates for a deployed Odoo: the [`Gate`] trait, a concurrent [`Runner`] with
//! wait-until / stability / failure-limit semantics, and the `gates.toml` [`Plan`]
//! format.
//!
//! - A [`Gate`] checks one thing and returns a [`Verdict`] (`Pass`, `Warn`, `Fail`,
//!   `Inconclusive`), or `Err` when it could not run.
//! - A [`Runner`] evaluates gates concurrently, each with its own timeout, respecting
//!   `depends_on`, once or until they pass and stay passing ([`runner`] documents the
//!   semantics), and produces a serializable [`Report`] ([`report`] documents the
//!   schema). Progress goes to a [`deploy_core::EventSink`].
//! - A [`Plan`] is the TOML file ([`plan`] documents the format); a [`GateFactory`]
//!   (usually a [`Registry`], in `registry.rs`) turns its [`GateSpec`]s into gates.
//! - Built-in gates, one per [`GateKind`], live in [`builtin`] (which documents when each
//!   passes, warns, fails or errs), one file per kind (`builtin/tcp.rs`,
//!   `builtin/smoke_crud.rs`, ...) holding the gate and its settings; [`settings`] has
//!   the kinds and re-exports every kind's settings; [`standard`] builds the standard
//!   plan for a target without a file; [`testing`] has a scripted gate for tests.
//!
//! ```
//! use std::sync::Arc;
//! use deploy_core::RecordingSink;
//! use deploy_gates::testing::{ScriptedGate, Step};
//! use deploy_gates::{Gate, GateKind, Plan, Registry, RunResult, Runner};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> deploy_gates::Result<()> {
//! let plan: Plan = r#"
//!     [run]
//!     mode = "wait-until"
//!     interval = "5s"
//!     stable_for = "10s"
//!
//!     [[targets]]
//!     name = "green"
//!     url = "http://127.0.0.1:8069"
//!
//!     [[gates]]
//!     name = "health"
//!     kind = "health"
//!     failure_limit = 3
//! "#
//! .parse()?;
//!
//! // The binary registers real gates; here, one that fails once and then passes.
//! let mut registry = Registry::with_builtins();
//! registry.register(GateKind::Health, |spec, _cx| {
//!     Ok(Arc::new(ScriptedGate::new(&spec.name, [Step::fail(), Step::pass()])) as Arc<dyn Gate>)
//! });
//!
//! let events = Arc::new(RecordingSink::new());
//! let runner = Runner::from_plan(&plan, &registry, &*events)?;
//! let report = runner.run(events.clone()).await;
//! assert_eq!(report.result, RunResult::Passed);
//! assert_eq!(report.rounds, 4); // fail at 0s, pass at 5s, 10s, 15s: stable for 10s
//! assert_eq!(report.gate("health").unwrap().counts.fail, 1);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod builtin;
mod error;
mod gate;
mod graph;
pub mod plan;
mod registry;
pub mod report;
pub mod runner;
pub mod settings;
pub mod standard;
pub mod testing;

pub use error::{Error, Result, Scope};
pub use gate::{Extensions, Gate, GateContext, Outcome, Verdict};
pub use plan::{GateSpec, Plan};
pub use registry::{BuildContext, BuildFn, GateFactory, Registry};
pub use report::{
    Counts, FailureReason, GateFailure, GateReport, GateResult, GateStatus, Report, RunResult,
    REPORT_SCHEMA_VERSION,
};
pub use runner::{GateEntry, Mode, RunSettings, Runner, CLEANUP_WAIT};
pub use settings::{
    AuthenticationSettings, CoverageSettings, DatabaseListedSettings, FilestoreSettings, GateKind,
    GateSettings, HealthSettings, LoginPageSettings, ModulesSettings, PostgresSettings,
    ResponseTimeSettings, SessionContinuitySettings, SmokeCrudSettings, TcpSettings,
    UnknownGateKind, VersionSettings, WebsocketHealthSettings,
};

/// Re-export of `async_trait`, to implement [`Gate`] without a direct dependency.
pub use async_trait::async_trait;
