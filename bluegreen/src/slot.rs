//! The crate's own view of slots and their containers: what to start ([`SlotSpec`]) and
//! what Docker says is there ([`ContainerInfo`], [`SlotState`]). No bollard type appears
//! here; `docker.rs` translates.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Label holding the stack name.
pub const LABEL_STACK: &str = "com.deployment.stack";
/// Label holding the slot (`blue` or `green`).
pub const LABEL_SLOT: &str = "com.deployment.slot";
/// Label holding the release label.
pub const LABEL_RELEASE: &str = "com.deployment.release";
/// Label holding the image reference the slot was created from.
pub const LABEL_IMAGE: &str = "com.deployment.image";

/// Label holding the container port that serves HTTP (so that state read back from Docker
/// knows which published port is which).
pub const LABEL_HTTP_PORT: &str = "com.deployment.http-port";
/// Label holding the container port that serves real-time traffic, when separate.
pub const LABEL_REALTIME_PORT: &str = "com.deployment.realtime-port";

/// Odoo's HTTP port inside the container.
pub const ODOO_HTTP_PORT: u16 = 8069;
/// Odoo's real-time (websocket, longpolling) port inside the container.
pub const ODOO_REALTIME_PORT: u16 = 8072;

/// One of the two slots of a stack: the toolkit's one slot type, from `deploy-core`.
pub use deploy_core::Slot;

/// The container name of a slot: `<stack>-<slot>`.
#[must_use]
pub fn container_name(stack: &str, slot: Slot) -> String {
    format!("{stack}-{slot}")
}

/// Where a mount comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A named Docker volume (created by Docker on first use).
    Volume(String),
    /// A host directory.
    Bind(PathBuf),
}

/// A volume or bind mount, typically the filestore and session store shared by both slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it comes from.
    pub source: MountSource,
    /// The path inside the container (e.g. `/var/lib/odoo`).
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// Resource limits of a slot's container.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
    /// CPU limit in CPUs (e.g. `1.5`).
    pub cpus: Option<f64>,
}

/// A container port published on `127.0.0.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedPort {
    /// The port inside the container.
    pub container_port: u16,
    /// The host port on `127.0.0.1`; `0` lets Docker choose one (read back with
    /// [`ContainerInfo::http`] / [`ContainerInfo::realtime`]).
    pub host_port: u16,
}

/// Everything needed to create one slot's container.
#[derive(Debug, Clone)]
pub struct SlotSpec {
    /// The stack name; containers are named `<stack>-<slot>` and labelled with it.
    pub stack: String,
    /// Which slot.
    pub slot: Slot,
    /// The image reference (must exist locally; nothing is pulled).
    pub image: String,
    /// The release label (`com.deployment.release`).
    pub release: String,
    /// Arguments given to the image's entrypoint (Docker's `Cmd`); empty keeps the image's.
    pub args: Vec<String>,
    /// Plain environment variables.
    pub env: BTreeMap<String, String>,
    /// Secret environment variables (passwords): never logged, never shown by `Debug`.
    pub secret_env: BTreeMap<String, SecretString>,
    /// Volumes and bind mounts.
    pub mounts: Vec<Mount>,
    /// A user-defined Docker network to attach to (`None`: Docker's default bridge).
    pub network: Option<String>,
    /// Resource limits.
    pub limits: Limits,
    /// The HTTP port (Odoo's 8069) and where to publish it.
    pub http: PublishedPort,
    /// The real-time port (Odoo's 8072), when the image serves one separately.
    pub realtime: Option<PublishedPort>,
    /// The path polled for readiness (`/web/health`).
    pub health_path: String,
}

impl SlotSpec {
    /// A spec with Odoo's defaults: HTTP 8069 and real-time 8072 published on ephemeral
    /// loopback ports, `/web/health` as readiness path, no env, mounts, network or limits.
    #[must_use]
    pub fn new(stack: &str, slot: Slot, image: &str, release: &str) -> Self {
        Self {
            stack: stack.to_owned(),
            slot,
            image: image.to_owned(),
            release: release.to_owned(),
            args: Vec::new(),
            env: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            mounts: Vec::new(),
            network: None,
            limits: Limits::default(),
            http: PublishedPort {
                container_port: ODOO_HTTP_PORT,
                host_port: 0,
            },
            realtime: Some(PublishedPort {
                container_port: ODOO_REALTIME_PORT,
                host_port: 0,
            }),
            health_path: "/web/health".to_owned(),
        }
    }

    /// The container name, `<stack>-<slot>`.
    #[must_use]
    pub fn container_name(&self) -> String {
        container_name(&self.stack, self.slot)
    }
}

/// The lifecycle state Docker reports for a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    /// Created, never started.
    Created,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Restarting.
    Restarting,
    /// Being removed.
    Removing,
    /// Exited (stopped).
    Exited,
    /// Dead.
    Dead,
    /// Anything Docker may add later.
    Unknown,
}

/// The container's Docker health check result, when the image defines one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// The image has no health check.
    None,
    /// Still within the start period.
    Starting,
    /// Healthy.
    Healthy,
    /// Unhealthy.
    Unhealthy,
}

/// What Docker says about one slot's container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerInfo {
    /// Docker's container id.
    pub id: String,
    /// The container name (without Docker's leading `/`).
    pub name: String,
    /// The stack label.
    pub stack: String,
    /// The slot label.
    pub slot: Slot,
    /// The release label.
    pub release: String,
    /// The image label (the reference the slot was created from).
    pub image: String,
    /// The lifecycle state.
    pub status: ContainerStatus,
    /// When Docker created the container (`None` when Docker's date cannot be read).
    /// The older of two slots is the release that served before the other was started.
    pub created: Option<DateTime<Utc>>,
    /// The exit code, when exited.
    pub exit_code: Option<i64>,
    /// Docker's health check result.
    pub health: HealthStatus,
    /// The published HTTP address on the host, when running and published.
    pub http: Option<SocketAddr>,
    /// The published real-time address on the host, when running and published.
    pub realtime: Option<SocketAddr>,
    /// All labels of the container.
    pub labels: BTreeMap<String, String>,
}

impl ContainerInfo {
    /// Whether the container is running.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.status == ContainerStatus::Running
    }
}

/// Both slots of a stack as Docker reports them now.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotState {
    /// The stack.
    pub stack: String,
    /// The blue slot's container, if any.
    pub blue: Option<ContainerInfo>,
    /// The green slot's container, if any.
    pub green: Option<ContainerInfo>,
}

impl SlotState {
    /// One slot's container, if any.
    #[must_use]
    pub fn get(&self, slot: Slot) -> Option<&ContainerInfo> {
        match slot {
            Slot::Blue => self.blue.as_ref(),
            Slot::Green => self.green.as_ref(),
        }
    }

    /// The slots whose container is running.
    #[must_use]
    pub fn running(&self) -> Vec<Slot> {
        Slot::ALL
            .into_iter()
            .filter(|s| self.get(*s).is_some_and(ContainerInfo::is_running))
            .collect()
    }
}
