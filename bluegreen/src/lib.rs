//! Blue-green deployments of Odoo: two slots on Docker, the traffic switch in nginx,
//! HAProxy or Traefik, and the orchestrator that moves a new release in only after its
//! gates pass and moves it back out in about a second.
//!
//! - [`orchestrator::Orchestrator`] runs `deploy`, `canary`, `rollback`, `switch`,
//!   `stop-idle` and `status` on one stack, described by a [`config::StackConfig`] (the
//!   TOML stack file; `examples/stack.toml` documents every field). Each step is
//!   decided from Docker's containers and the proxy's live routing; a second operation
//!   is refused at once by the stack [`lock`]; a process killed at any step leaves a
//!   state that `status` reports as it is and the next `deploy` or `rollback` repairs.
//!   Outcomes go to a `deploy_core::DeploymentRecorder`; the orchestrator is a
//!   `deploy_core::Deployer` for the rollback strategies.
//! - [`docker::DockerSlots`] creates, starts, inspects, stops and removes a stack's two
//!   slot containers (`<stack>-blue`, `<stack>-green`) on a real Docker engine. State is
//!   always read back from Docker's labels, never from a local file.
//! - [`switch::TrafficSwitch`] moves traffic between the slots: [`switch::nginx`],
//!   [`switch::haproxy`] (runtime API, no reload) and [`switch::traefik`] (dynamic file
//!   provider).
//!   For nginx, the reload-free [`switch::nginx::NginxMode::StateFile`] is the
//!   recommended mode: it lost no request under keep-alive load where the plain
//!   reload procedure did (numbers in [`switch::nginx`] and `BENCHMARKS.md`).
//! - [`verify::verify_release`] checks, through the proxy, that new requests reach the
//!   intended release (the `X-Odoo-Release` header).
//!
//! ```no_run
//! use std::path::Path;
//! use deploy_bluegreen::orchestrator::{DeployRequest, OperationResult, RollbackRequest};
//! use deploy_bluegreen::{Orchestrator, StackConfig};
//!
//! # async fn run() -> deploy_bluegreen::Result<()> {
//! let config = StackConfig::load(Path::new("/etc/odoo/shop.toml"))?;
//! let orchestrator = Orchestrator::connect(config).await?.with_operator("ci");
//!
//! let report = orchestrator
//!     .deploy(&DeployRequest::new("registry.example.com/shop/odoo:17.0-20240601", "17.0-20240601"))
//!     .await?;
//! match report.result {
//!     OperationResult::Succeeded => println!("{:?} serves the new release", report.serving),
//!     OperationResult::Refused => println!("refused, nothing switched: {:?}", report.reason),
//!     OperationResult::RolledBack => println!("failed after the switch, back: {:?}", report.reason),
//!     OperationResult::Unchanged => println!("already live"),
//! }
//!
//! // Later, if the release misbehaves: back to the previous slot, still warm.
//! orchestrator.rollback(&RollbackRequest::default()).await?;
//! println!("{:?}", orchestrator.status().await.health);
//! # Ok(()) }
//! ```
//!
//! The slots alone:
//!
//! ```no_run
//! use std::time::Duration;
//! use deploy_bluegreen::docker::{DockerSlots, ReadyOptions};
//! use deploy_bluegreen::slot::{Slot, SlotSpec};
//!
//! # async fn run() -> deploy_bluegreen::Result<()> {
//! let docker = DockerSlots::connect().await?;
//! let mut spec = SlotSpec::new("shop", Slot::Green, "odoo-fake:test", "2024-06-01");
//! spec.args = vec!["--listen".into(), "0.0.0.0:8069".into()];
//! spec.realtime = None;
//! let green = docker.launch(&spec, &ReadyOptions::default()).await?;
//! println!("green serves on {:?}", green.http);
//! let state = docker.state("shop").await?;
//! assert!(state.running().contains(&Slot::Green));
//! docker.stop("shop", Slot::Green, Duration::from_secs(10)).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod addons;
pub mod backend;
pub mod config;
pub mod docker;
pub mod error;
mod fsutil;
pub mod hook;
pub mod journal;
pub mod lock;
pub mod orchestrator;
pub mod registry;
pub mod runbook;
pub mod setup;
pub mod slot;
pub mod switch;
pub mod update;
pub mod verify;

pub use config::StackConfig;
pub use error::{Error, Result};
pub use orchestrator::{
    DeployRequest, Operation, OperationReport, OperationResult, Orchestrator, RollbackRequest,
    Rollout, StatusReport, Step, SwitchRequest,
};
pub use slot::{ContainerInfo, Slot, SlotSpec, SlotState};
pub use switch::{Backend, SwitchReport, TrafficState, TrafficSwitch};
