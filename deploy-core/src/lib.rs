//! Shared vocabulary of the odoo-deploy toolkit: slots, environments, releases,
//! targets, secret references and progress events.
//!
//! This crate does no I/O of its own: no async runtime, no HTTP client, no Docker
//! client. The only things it ever reads are the environment variable or file a
//! [`SecretRef`] names, when the caller asks it to resolve one.
//!
//! | type | what it names |
//! |---|---|
//! | [`Slot`] | `blue` / `green`, with [`Slot::other`] |
//! | [`Environment`] | `dev`, `staging`, `uat`, `production` |
//! | [`Release`] | an image reference, a git sha, a version label |
//! | [`Target`] | an Odoo instance: base URL, database, login, secret references |
//! | [`SecretRef`] | where a secret comes from: `{ env = .. }`, `{ file = .. }`, opted-in plaintext |
//! | [`Event`], [`EventSink`] | how libraries report progress without printing |
//! | [`Deployer`], [`DeploymentRecorder`] | how the orchestrator and the rollback crate work together |
//! | [`DeployStage`], [`StagePoint`] | what a deploy runs besides start and switch (a backup, a hook), under the stack's lock |
//! | [`ErrorClass`], [`Classify`] | who must act on an error, and the exit code it gives |
//!
//! All of them (de)serialize with lower-case names, so they can sit in TOML
//! configuration as they are.
//!
//! ```
//! use deploy_core::{Environment, Event, EventSink, RecordingSink, Slot};
//!
//! let live: Slot = "blue".parse()?;
//! let env: Environment = "production".parse()?;
//!
//! let events = RecordingSink::new();
//! events.emit(
//!     &Event::started(format!("slot {}", live.other()), "deploying")
//!         .with_field("environment", env.as_str()),
//! );
//! assert_eq!(events.events()[0].subject, "slot green");
//! # Ok::<(), deploy_core::Error>(())
//! ```
#![deny(missing_docs)]

mod deploy;
mod environment;
mod error;
mod event;
pub mod manifest;
mod release;
mod secret;
mod slot;
mod stage;
mod target;

pub use deploy::{
    BoxError, DatabaseChange, DeployStatus, Deployer, DeploymentOutcome, DeploymentRecorder,
    NoHistory, RedeployMethod, RedeployReport, ReleaseRef,
};
pub use environment::Environment;
pub use error::{class_of, error_chain, ClassifiedError, Classify, Error, ErrorClass, Result};
pub use event::{
    Event, EventKind, EventSink, FieldValue, NullSink, RecordingSink, TracingSink, VecSink,
};
pub use release::Release;
pub use secret::SecretRef;
pub use slot::Slot;
pub use stage::{
    DatabaseRestorer, DeployStage, Maintenance, StageContext, StageOutcome, StagePoint,
    StageRecord, StageResult, StageVerdict,
};
pub use target::Target;

/// Re-export of `async_trait`, with which [`DeployStage`], [`Deployer`] and
/// [`DeploymentRecorder`] are implemented.
pub use async_trait::async_trait;
/// Re-export of the `secrecy` crate, whose [`SecretString`](secrecy::SecretString)
/// resolved secrets are.
pub use secrecy;
/// Re-export of the `url` crate, whose [`Url`](url::Url) a [`Target`] holds.
pub use url;
