//! The stack file: one Odoo installation's slots, proxy, gate plans and deployment
//! settings, in TOML.
//!
//! [`StackConfig::load`] parses and validates it in one go; relative paths are taken from
//! the file's directory. Unknown keys are errors. Durations are humantime strings
//! (`"500ms"`, `"30s"`, `"15m"`). A complete, commented example is
//! `bluegreen/examples/stack.toml`.
//!
//! ```toml
//! stack = "shop"                  # required: containers <stack>-blue / <stack>-green, labels, lock
//! environment = "production"      # dev | staging | uat | production (default production)
//! image = "odoo:17.0"             # default image of deploy and canary (--image overrides)
//! state_dir = "/var/lib/odoo-bluegreen"   # lock file and journal (default: .odoo-bluegreen/ next to the file)
//! history_dir = "/var/lib/odoo-deploy/history"   # optional: where deployments are recorded
//!
//! [slots]
//! args = ["--db-filter", "^shop$"]  # the container's command; {release}, {slot}, {stack} are replaced
//! container_http_port = 8069        # default 8069
//! container_realtime_port = 8072    # omit when the image serves /websocket on its HTTP port
//! health_path = "/web/health"       # readiness, polled on the published HTTP port
//! ready_timeout = "120s"            # default 60s
//! stop_grace = "30s"                # SIGTERM, then SIGKILL after this (default 30s)
//! network = "odoo"                  # optional user-defined network (to reach PostgreSQL)
//! memory_mb = 4096                  # optional
//! cpus = 2.0                        # optional
//! env = { HOST = "db", USER = "odoo" }
//! secret_env = { PASSWORD = { env = "ODOO_DB_PASSWORD" } }   # { env = .. } | { file = .. }
//! volumes = [{ source = "shop-filestore", target = "/var/lib/odoo" }]  # volume name or absolute path
//! blue = { http_port = 18069, realtime_port = 18072 }    # fixed host ports on 127.0.0.1
//! green = { http_port = 28069, realtime_port = 28072 }
//!
//! [odoo]                           # how the gates the orchestrator adds log in (optional)
//! database = "shop"
//! login = "admin"
//! password = { env = "ODOO_PASSWORD" }
//!
//! [proxy]
//! kind = "haproxy"                 # nginx | haproxy | traefik
//! url = "http://127.0.0.1:8080"    # the public URL through the proxy
//! haproxy = { admin_socket = "/run/haproxy/admin.sock" }
//!
//! [deploy]
//! rollback_window = "15m"          # keep the old slot running this long; "0s" | "keep"
//! drain_timeout = "30s"
//! keep_failed = false              # keep a refused slot's container (stopped) for inspection
//! verify_release = true            # check X-Odoo-Release through the proxy after a switch
//! notify_wait = "5s"               # how long the end of an operation waits for [[notify]]
//!
//! [gates]
//! pre_switch = "gates/pre-switch.toml"     # run against the new slot directly
//! post_switch = "gates/post-switch.toml"   # run through the proxy after the switch
//!
//! [backup]                         # optional: the binary's pre-deploy backup
//! store = "/var/backups/odoo"      # the backup store (deploy-rollback's layout)
//! database_url = { env = "SHOP_BACKUP_DB_URL" }   # postgres://user[:password]@host[:port]/db
//! data_dir = "/var/lib/odoo"       # optional: also archive <data_dir>/filestore/<db>/
//! pg_bin = "/usr/lib/postgresql/16/bin"   # optional: where pg_dump and pg_restore are
//! required = true                  # default true: a failed backup refuses the deploy
//!
//! [update]                         # optional: Odoo's module update during each deploy
//! strategy = "maintenance"         # default: the proxy answers 503 and the old release is
//!                                  # stopped while the update runs; "online": it serves meanwhile
//! modules = "changed"              # "changed" (default) | "all" | ["shop", "shop_sale"]
//! install = []                     # new modules to install (-i)
//! timeout = "30m"                  # default 30m; killed, undone and refused after it
//! lock_wait = "60s"                # default 60s: a session waiting this long on a lock
//!                                  # kills the update (undone, refused); "0s": never
//! addons_path = "/mnt/extra-addons"   # where the image's addons are (default)
//! # command = ["odoo", "-d", "{db}", "-i", "{install}", "-u", "{modules}", "--stop-after-init", "--no-http", "--workers", "0"]
//! # The database is [backup]'s, which is required: a failed update restores it.
//!
//! [[notify]]                       # optional, repeatable: who hears of deploys and rollbacks
//! name = "team"                    # unique; reports name it
//! kind = "slack"                   # slack (incoming webhook) | teams (Workflows) | webhook
//! url = { env = "SLACK_WEBHOOK_URL" }   # a secret (env or file): never printed
//! # events = ["started", "succeeded", "failed", "rolled_back"]   # default: every notice
//!
//! [[hooks]]                        # optional, repeatable: a command run during each deploy
//! name = "freeze-window"           # unique; shown in progress, the report and the history
//! at = "before_start"              # before_start | before_switch | after_switch | finish
//! command = ["/usr/local/bin/check-freeze", "--stack", "shop"]
//! timeout = "2m"                   # default 5m; killed and failed after it
//! ```
//!
//! A hook runs under the stack's lock with `ODOO_DEPLOY_STACK`, `ODOO_DEPLOY_ENVIRONMENT`,
//! `ODOO_DEPLOY_RELEASE`, `ODOO_DEPLOY_IMAGE`, `ODOO_DEPLOY_GIT_SHA`, `ODOO_DEPLOY_LIVE_RELEASE`,
//! `ODOO_DEPLOY_OPERATOR`, `ODOO_DEPLOY_STAGE` (and at `finish`, `ODOO_DEPLOY_STATUS`) in
//! its environment. Exit 0 lets the deploy go on; exit 1 refuses it, with the hook's last
//! line on stderr as the reason; any other exit, a signal, a timeout or a command that
//! cannot be run fails it. See [`crate::hook`].
//!
//! # Gate plans and their targets
//!
//! `pre_switch` and `post_switch` are `gates.toml` plans (see `deploy_gates::plan`),
//! given as a path or inline as a table (`[gates.post_switch.run]`,
//! `[[gates.post_switch.gates]]`). The orchestrator points three target names at the
//! stack, whatever URL the plan writes for them:
//!
//! | target name | URL used |
//! |---|---|
//! | `slot` ([`TARGET_SLOT`]) | the slot being brought in, directly on its published port |
//! | `proxy` ([`TARGET_PROXY`]) | `proxy.url`: what users reach |
//! | `previous` ([`TARGET_PREVIOUS`]) | the slot that served before, directly |
//!
//! Other targets are used as written. A plan without `[[targets]]` gets one: `slot` for
//! the pre-switch plan, `proxy` for the post-switch plan, logging in as `[odoo]` says.
//! The post-switch plan's `[run]` (`mode = "wait-until"`, `stable_for`) is the
//! verification window after the switch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use deploy_core::url::Url;
use deploy_core::{Environment, EventSink, SecretRef, Target};
use deploy_gates::Plan;
use secrecy::SecretString;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::slot::{Limits, Mount, MountSource, PublishedPort, Slot, SlotSpec, ODOO_HTTP_PORT};
use crate::switch::haproxy::HaproxySwitch;
use crate::switch::nginx::{NginxMode, NginxOptions, NginxSwitch};
use crate::switch::traefik::{TraefikOptions, TraefikSwitch};
use crate::switch::{Backend, ProxyKind, TrafficSwitch};
use crate::ContainerInfo;

/// Gate plan target name pointed at the slot being brought in (directly).
pub const TARGET_SLOT: &str = "slot";
/// Gate plan target name pointed at the proxy's public URL.
pub const TARGET_PROXY: &str = "proxy";
/// Gate plan target name pointed at the slot that served before (directly).
pub const TARGET_PREVIOUS: &str = "previous";

/// A parsed and validated stack file.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// The stack name: containers are `<stack>-blue` and `<stack>-green`.
    pub stack: String,
    /// The environment recorded with each deployment.
    pub environment: Environment,
    /// The default image of `deploy` and `canary`.
    pub image: Option<String>,
    /// Where the lock file and the journal live.
    pub state_dir: PathBuf,
    /// Where deployments are recorded (the binary wires a history there).
    pub history_dir: Option<PathBuf>,
    /// How slots are created.
    pub slots: SlotsConfig,
    /// How the gates the orchestrator adds log in.
    pub odoo: OdooLogin,
    /// The proxy.
    pub proxy: ProxyConfig,
    /// Deployment settings.
    pub deploy: DeploySettings,
    /// Gates run against the new slot directly, before the switch.
    pub pre_switch: Option<Plan>,
    /// Gates run through the proxy after the switch (the verification window).
    pub post_switch: Option<Plan>,
    /// The backup taken before each deploy and canary (`[backup]`).
    pub backup: Option<BackupConfig>,
    /// Odoo's module update during each deploy (`[update]`).
    pub update: Option<UpdateConfig>,
    /// Commands run at points of each deploy (`[[hooks]]`), in file order.
    pub hooks: Vec<HookConfig>,
    /// Where deploys and rollbacks are announced (`[[notify]]`): Slack, Teams or a
    /// webhook, best effort (see `deploy_notify`).
    pub notify: Vec<deploy_notify::ChannelSpec>,
    /// How long the end of an operation waits for its notifications (`[deploy]
    /// notify_wait`, default 5 s); those still under way are reported and not waited for.
    pub notify_wait: Duration,
    /// The file it was read from.
    pub path: Option<PathBuf>,
}

/// One `[[hooks]]` entry: a command run at a point of each deploy (see
/// [`crate::hook::HookStage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookConfig {
    /// Its name, unique in the stack file.
    pub name: String,
    /// Where it runs.
    pub at: deploy_core::StagePoint,
    /// The program and its arguments (no shell).
    pub command: Vec<String>,
    /// How long it may run.
    pub timeout: Duration,
}

/// Odoo's module update during each deploy (`[update]`): see
/// [`crate::update::UpdateStage`]. It updates the database of `[backup]`, whose
/// pre-deploy backup is restored when the update fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateConfig {
    /// How the update runs beside the release that serves.
    pub strategy: crate::update::UpdateStrategy,
    /// Which modules.
    pub modules: crate::update::ModuleSelection,
    /// New modules to install.
    pub install: Vec<String>,
    /// The command (`None`: Odoo's default, see [`crate::update::UpdateSettings`]).
    pub command: Option<Vec<String>>,
    /// How long it may run.
    pub timeout: Duration,
    /// The lock-wait watchdog's limit (`None`: `"0s"`, no watchdog); see
    /// [`crate::update::UpdateSettings::lock_wait`].
    pub lock_wait: Option<Duration>,
    /// Where the image's addons are.
    pub addons_path: String,
}

/// The pre-deploy backup (`[backup]`): what `odoo-bluegreen deploy` and `canary` back up
/// before they start, and whether a failed backup stops them.
///
/// Plain data: this crate does not take backups (it does not depend on
/// deploy-rollback). The binary takes the backup before it calls
/// [`Orchestrator::deploy`](crate::orchestrator::Orchestrator::deploy) and passes its id
/// in [`DeployRequest::backup_id`](crate::orchestrator::DeployRequest::backup_id).
#[derive(Debug, Clone)]
pub struct BackupConfig {
    /// The backup store's directory (created when missing).
    pub store: PathBuf,
    /// The database to back up, as a `postgres://user[:password]@host[:port]/db` URL.
    /// It may hold a password, so it is a secret reference, resolved only when the
    /// backup is taken and never logged.
    pub database_url: SecretRef,
    /// Odoo's `data_dir`: `<data_dir>/filestore/<db>/` is archived too. `None`: the
    /// database only.
    pub data_dir: Option<PathBuf>,
    /// The directory holding `pg_dump` and `pg_restore` (`None`: found on `PATH`).
    pub pg_bin: Option<PathBuf>,
    /// Whether a failed backup refuses the deploy (default) or only warns.
    pub required: bool,
}

/// How both slots' containers are made.
#[derive(Debug, Clone)]
pub struct SlotsConfig {
    /// The container's command (Docker's `Cmd`); `{release}`, `{slot}` and `{stack}`
    /// are replaced.
    pub args: Vec<String>,
    /// Plain environment variables (`{release}`, `{slot}`, `{stack}` replaced).
    pub env: BTreeMap<String, String>,
    /// Secret environment variables, resolved when a slot is created.
    pub secret_env: BTreeMap<String, SecretRef>,
    /// Volumes and bind mounts shared by both slots (filestore, sessions).
    pub volumes: Vec<Mount>,
    /// A user-defined Docker network.
    pub network: Option<String>,
    /// Resource limits.
    pub limits: Limits,
    /// Odoo's HTTP port inside the container.
    pub container_http_port: u16,
    /// Odoo's real-time port inside the container, when separate.
    pub container_realtime_port: Option<u16>,
    /// The readiness path.
    pub health_path: String,
    /// How long a new slot may take to answer on its readiness path.
    pub ready_timeout: Duration,
    /// SIGTERM-to-SIGKILL grace when a slot is stopped.
    pub stop_grace: Duration,
    /// The blue slot's host ports.
    pub blue: SlotPorts,
    /// The green slot's host ports.
    pub green: SlotPorts,
}

/// The host ports (on 127.0.0.1) of one slot. `0` lets Docker choose a free port at
/// each start; the proxy is then re-pointed at each switch (nginx needs a reload for
/// that, which loses requests under keep-alive load: prefer fixed ports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotPorts {
    /// The published HTTP port.
    pub http_port: u16,
    /// The published real-time port (when the container has one).
    #[serde(default)]
    pub realtime_port: Option<u16>,
}

/// The login of the gate targets the orchestrator adds.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OdooLogin {
    /// The database.
    #[serde(default)]
    pub database: Option<String>,
    /// The login.
    #[serde(default)]
    pub login: Option<String>,
    /// The password reference.
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// The API key reference.
    #[serde(default)]
    pub api_key: Option<SecretRef>,
}

/// The proxy in front of the slots.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The public URL through the proxy.
    pub url: Url,
    /// Which proxy, and how to drive it.
    pub driver: ProxyDriver,
}

/// Which proxy, and its settings.
#[derive(Debug, Clone)]
pub enum ProxyDriver {
    /// nginx.
    Nginx(NginxOptions),
    /// HAProxy through its admin socket.
    Haproxy {
        /// The admin socket (`stats socket ... level admin`).
        admin_socket: PathBuf,
        /// The `haproxy.cfg` HAProxy runs, when the stack file names it: `status` and
        /// `deploy --dry-run` read it to tell whether responses are marked with the
        /// slot before any slot serves.
        config: Option<PathBuf>,
    },
    /// Traefik through its dynamic file.
    Traefik(TraefikOptions),
}

impl ProxyConfig {
    /// The proxy kind.
    #[must_use]
    pub fn kind(&self) -> ProxyKind {
        match self.driver {
            ProxyDriver::Nginx(_) => ProxyKind::Nginx,
            ProxyDriver::Haproxy { .. } => ProxyKind::Haproxy,
            ProxyDriver::Traefik(_) => ProxyKind::Traefik,
        }
    }

    /// Whether the proxy's own configuration marks responses with the slot that
    /// answered ([`SLOT_HEADER`](crate::verify::SLOT_HEADER)), read from the file the
    /// stack file names: nginx's main configuration, HAProxy's `config`; Traefik's
    /// dynamic file is written by the switch and always does. `None` when there is no
    /// file to read (HAProxy without `config`) or it cannot be read.
    #[must_use]
    pub fn configured_marking(&self) -> Option<bool> {
        let file = match &self.driver {
            ProxyDriver::Nginx(options) => &options.main_conf,
            ProxyDriver::Haproxy { config, .. } => config.as_ref()?,
            ProxyDriver::Traefik(_) => return Some(true),
        };
        let text = std::fs::read_to_string(file).ok()?;
        let header = crate::verify::SLOT_HEADER.to_ascii_lowercase();
        Some(text.lines().any(|line| {
            let line = line.trim_start();
            !line.starts_with('#') && line.to_ascii_lowercase().contains(&header)
        }))
    }

    /// The exact change that makes this proxy mark responses with the slot that
    /// answered, for a configuration written by hand.
    #[must_use]
    pub fn marking_fix(&self) -> String {
        let header = crate::verify::SLOT_HEADER;
        match &self.driver {
            ProxyDriver::Haproxy { .. } => format!(
                "add `http-response set-header {header} %[srv_name]` to the backends {} and {} of haproxy.cfg and reload HAProxy (`odoo-bluegreen proxy-config` prints the whole file)",
                crate::switch::haproxy::HTTP_BACKEND,
                crate::switch::haproxy::REALTIME_BACKEND
            ),
            ProxyDriver::Nginx(options) => format!(
                "add `add_header {header} ${}_served_by always;` to every location of the server block that proxies to the slots (the managed file {} maps the variable) and reload nginx (`odoo-bluegreen proxy-config` prints the server block)",
                options.name,
                options.managed_file.display()
            ),
            ProxyDriver::Traefik(options) => format!(
                "let Traefik load the dynamic file {} again (its routers mark responses while one slot takes all traffic)",
                options.file.display()
            ),
        }
    }

    /// A switch driving this proxy.
    #[must_use]
    pub fn build_switch(&self) -> Arc<dyn TrafficSwitch> {
        match &self.driver {
            ProxyDriver::Nginx(options) => Arc::new(NginxSwitch::new(options.clone())),
            ProxyDriver::Haproxy { admin_socket, .. } => Arc::new(HaproxySwitch::new(admin_socket)),
            ProxyDriver::Traefik(options) => Arc::new(TraefikSwitch::new(options.clone())),
        }
    }
}

/// How long the slot that served before is kept running after a deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackWindow {
    /// Stop it after this long (zero: as soon as it is drained).
    StopAfter(Duration),
    /// Never stop it (`stop-idle` does, or the next deploy replaces it).
    Keep,
}

impl std::fmt::Display for RollbackWindow {
    /// `keep`, or the duration as the stack file writes it (`15m`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Keep => f.write_str("keep"),
            Self::StopAfter(wait) => write!(f, "{}", humantime::format_duration(*wait)),
        }
    }
}

/// How deployments go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploySettings {
    /// How long the old slot keeps running after a deploy.
    pub rollback_window: RollbackWindow,
    /// How long a drain waits for requests in flight to the old slot.
    pub drain_timeout: Duration,
    /// Keep (stopped) the container of a slot that failed to start or failed its gates,
    /// for inspection; otherwise it is removed.
    pub keep_failed: bool,
    /// After each switch, check through the proxy that new requests reach the intended
    /// release (its `X-Odoo-Release` header).
    pub verify_release: bool,
    /// How long that check may take.
    pub verify_timeout: Duration,
    /// How many responses in a row must carry the release.
    pub verify_consecutive: u32,
    /// When the release's image is pulled from its registry.
    pub pull: crate::registry::PullPolicy,
}

impl Default for DeploySettings {
    fn default() -> Self {
        Self {
            rollback_window: RollbackWindow::StopAfter(Duration::from_secs(15 * 60)),
            drain_timeout: Duration::from_secs(30),
            keep_failed: false,
            verify_release: true,
            verify_timeout: Duration::from_secs(10),
            verify_consecutive: 20,
            pull: crate::registry::PullPolicy::Missing,
        }
    }
}

impl StackConfig {
    /// Reads and validates the stack file at `path`.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be read; [`Error::ConfigParse`], [`Error::Config`],
    /// [`Error::Plan`] when it is not valid.
    pub fn load(path: &Path) -> Result<StackConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        let base = crate::fsutil::parent(path);
        let mut config = parse(&text, &base, Some(path))?;
        config.path = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses and validates a stack file's text; relative paths are taken from
    /// `base_dir`.
    ///
    /// # Errors
    /// As [`StackConfig::load`].
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<StackConfig> {
        parse(text, base_dir, None)
    }

    /// The host ports of `slot`.
    #[must_use]
    pub fn ports(&self, slot: Slot) -> SlotPorts {
        match slot {
            Slot::Blue => self.slots.blue,
            Slot::Green => self.slots.green,
        }
    }

    /// The backend of `slot` at its fixed host ports (`None` when its HTTP port is
    /// chosen by Docker at each start).
    #[must_use]
    pub fn configured_backend(&self, slot: Slot) -> Option<Backend> {
        let ports = self.ports(slot);
        if ports.http_port == 0 {
            return None;
        }
        let http = std::net::SocketAddr::from(([127, 0, 0, 1], ports.http_port));
        let realtime = match (self.slots.container_realtime_port, ports.realtime_port) {
            (Some(_), Some(port)) if port != 0 => {
                std::net::SocketAddr::from(([127, 0, 0, 1], port))
            }
            _ => http,
        };
        Some(Backend::new(slot, http, realtime))
    }

    /// The container spec of `slot` running `image` as `release`; secrets are resolved
    /// now (a plaintext secret emits its warning on `events`).
    ///
    /// # Errors
    /// [`Error::Secret`] when a secret does not resolve.
    pub fn slot_spec(
        &self,
        slot: Slot,
        image: &str,
        release: &str,
        events: &dyn EventSink,
    ) -> Result<SlotSpec> {
        let fill = |text: &str| {
            text.replace("{release}", release)
                .replace("{slot}", slot.as_str())
                .replace("{stack}", &self.stack)
        };
        let mut spec = SlotSpec::new(&self.stack, slot, image, release);
        spec.args = self.slots.args.iter().map(|a| fill(a)).collect();
        spec.env = self
            .slots
            .env
            .iter()
            .map(|(k, v)| (k.clone(), fill(v)))
            .collect();
        for (name, secret) in &self.slots.secret_env {
            let value: SecretString = secret.resolve(events).map_err(|source| Error::Secret {
                field: format!("slots.secret_env.{name}"),
                cause: source,
            })?;
            spec.secret_env.insert(name.clone(), value);
        }
        spec.mounts = self.slots.volumes.clone();
        spec.network = self.slots.network.clone();
        spec.limits = self.slots.limits;
        let ports = self.ports(slot);
        spec.http = PublishedPort {
            container_port: self.slots.container_http_port,
            host_port: ports.http_port,
        };
        spec.realtime = self
            .slots
            .container_realtime_port
            .map(|container_port| PublishedPort {
                container_port,
                host_port: ports.realtime_port.unwrap_or(0),
            });
        spec.health_path = self.slots.health_path.clone();
        Ok(spec)
    }

    /// A gate target named `name` at `url`, logging in as `[odoo]` says.
    #[must_use]
    pub fn target(&self, name: &str, url: Url) -> Target {
        Target {
            name: name.to_owned(),
            url,
            database: self.odoo.database.clone(),
            login: self.odoo.login.clone(),
            password: self.odoo.password.clone(),
            api_key: self.odoo.api_key.clone(),
            realtime_url: None,
        }
    }
}

/// Where a running container serves, as a proxy backend.
#[must_use]
pub fn backend_of(info: &ContainerInfo) -> Option<Backend> {
    let http = info.http?;
    Some(Backend::new(info.slot, http, info.realtime.unwrap_or(http)))
}

// ---------------------------------------------------------------------------------
// Parsing.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStack {
    stack: String,
    #[serde(default)]
    environment: Option<Environment>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    state_dir: Option<PathBuf>,
    #[serde(default)]
    history_dir: Option<PathBuf>,
    slots: RawSlots,
    #[serde(default)]
    odoo: OdooLogin,
    proxy: RawProxy,
    #[serde(default)]
    deploy: RawDeploy,
    #[serde(default)]
    gates: RawGates,
    #[serde(default)]
    backup: Option<RawBackup>,
    #[serde(default)]
    update: Option<RawUpdate>,
    #[serde(default)]
    hooks: Vec<RawHook>,
    #[serde(default)]
    notify: Vec<deploy_notify::ChannelSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpdate {
    #[serde(default)]
    strategy: Option<String>,
    #[serde(default)]
    modules: Option<crate::update::ModuleSelection>,
    #[serde(default)]
    install: Vec<String>,
    #[serde(default)]
    command: Option<Vec<String>>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    lock_wait: Option<String>,
    #[serde(default)]
    addons_path: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHook {
    name: String,
    at: String,
    command: Vec<String>,
    #[serde(default)]
    timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackup {
    store: PathBuf,
    database_url: SecretRef,
    #[serde(default)]
    data_dir: Option<PathBuf>,
    #[serde(default)]
    pg_bin: Option<PathBuf>,
    #[serde(default)]
    required: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlots {
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    secret_env: BTreeMap<String, SecretRef>,
    #[serde(default)]
    volumes: Vec<RawVolume>,
    #[serde(default)]
    network: Option<String>,
    #[serde(default)]
    memory_mb: Option<u64>,
    #[serde(default)]
    cpus: Option<f64>,
    #[serde(default)]
    container_http_port: Option<u16>,
    #[serde(default)]
    container_realtime_port: Option<u16>,
    #[serde(default)]
    health_path: Option<String>,
    #[serde(default)]
    ready_timeout: Option<String>,
    #[serde(default)]
    stop_grace: Option<String>,
    blue: SlotPorts,
    green: SlotPorts,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVolume {
    source: String,
    target: String,
    #[serde(default)]
    read_only: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProxy {
    kind: String,
    url: String,
    #[serde(default)]
    nginx: Option<RawNginx>,
    #[serde(default)]
    haproxy: Option<RawHaproxy>,
    #[serde(default)]
    traefik: Option<RawTraefik>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNginx {
    #[serde(default)]
    binary: Option<PathBuf>,
    prefix: PathBuf,
    conf: PathBuf,
    managed_file: PathBuf,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    state_dir: Option<PathBuf>,
    #[serde(default)]
    pid_file: Option<PathBuf>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    keepalive: Option<u32>,
    #[serde(default)]
    upstream_directives: Vec<String>,
    #[serde(default)]
    drain_grace: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHaproxy {
    admin_socket: PathBuf,
    #[serde(default)]
    config: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTraefik {
    dynamic_file: PathBuf,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    entry_points: Vec<String>,
    #[serde(default)]
    drain_grace: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDeploy {
    #[serde(default)]
    rollback_window: Option<String>,
    #[serde(default)]
    drain_timeout: Option<String>,
    #[serde(default)]
    keep_failed: Option<bool>,
    #[serde(default)]
    verify_release: Option<bool>,
    #[serde(default)]
    verify_timeout: Option<String>,
    #[serde(default)]
    verify_consecutive: Option<u32>,
    #[serde(default)]
    pull: Option<String>,
    #[serde(default)]
    notify_wait: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGates {
    #[serde(default)]
    pre_switch: Option<PlanSource>,
    #[serde(default)]
    post_switch: Option<PlanSource>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PlanSource {
    Path(PathBuf),
    Inline(toml::Table),
}

fn config_error(field: &str, reason: impl Into<String>) -> Error {
    Error::Config {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

fn duration(field: &str, raw: Option<&str>, default: Duration) -> Result<Duration> {
    match raw {
        None => Ok(default),
        Some(text) => humantime::parse_duration(text.trim())
            .map_err(|e| config_error(field, format!("{text:?} is not a duration ({e})"))),
    }
}

fn resolve_path(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

fn parse(text: &str, base: &Path, path: Option<&Path>) -> Result<StackConfig> {
    let raw: RawStack = toml::from_str(text).map_err(|e| Error::ConfigParse {
        path: path.map(Path::to_path_buf),
        message: e.to_string(),
    })?;
    validate_stack_name(&raw.stack)?;
    let slots = slots(raw.slots, base)?;
    let proxy = proxy(raw.proxy, base)?;
    let deploy = deploy(&raw.deploy)?;
    let notify_wait = duration(
        "deploy.notify_wait",
        raw.deploy.notify_wait.as_deref(),
        Duration::from_secs(5),
    )?;
    let mut config = StackConfig {
        stack: raw.stack,
        environment: raw.environment.unwrap_or(Environment::Production),
        image: raw.image.filter(|i| !i.trim().is_empty()),
        state_dir: raw
            .state_dir
            .map_or_else(|| base.join(".odoo-bluegreen"), |d| resolve_path(base, &d)),
        history_dir: raw.history_dir.map(|d| resolve_path(base, &d)),
        slots,
        odoo: raw.odoo,
        proxy,
        deploy,
        pre_switch: None,
        post_switch: None,
        backup: raw.backup.map(|b| backup(b, base)).transpose()?,
        update: raw.update.map(update).transpose()?,
        hooks: hooks(raw.hooks)?,
        notify_wait,
        notify: notify(raw.notify)?,
        path: None,
    };
    for (field, secret) in [
        ("odoo.password", config.odoo.password.as_ref()),
        ("odoo.api_key", config.odoo.api_key.as_ref()),
    ] {
        if secret.is_some_and(|s| !s.is_allowed()) {
            return Err(plaintext(field));
        }
    }
    if config.update.is_some() && config.backup.is_none() {
        return Err(config_error(
            "update",
            "needs [backup]: the update runs on its database, and a failed update restores its pre-deploy backup",
        ));
    }
    if config.update.as_ref().is_some_and(|u| {
        u.strategy == crate::update::UpdateStrategy::Maintenance
            && config.proxy.kind() == crate::switch::ProxyKind::Traefik
    }) {
        return Err(config_error(
            "update.strategy",
            "\"maintenance\" (the default) needs a proxy that answers 503 itself, and Traefik has no such response without a service behind it: use nginx or HAProxy, or strategy = \"online\"",
        ));
    }
    if let Some(backup) = &config.backup {
        if !backup.database_url.is_allowed() {
            return Err(plaintext("backup.database_url"));
        }
    }
    for (name, secret) in &config.slots.secret_env {
        if !secret.is_allowed() {
            return Err(plaintext(&format!("slots.secret_env.{name}")));
        }
    }
    config.pre_switch = raw
        .gates
        .pre_switch
        .map(|source| load_plan(&config, "pre_switch", TARGET_SLOT, source, base))
        .transpose()?;
    config.post_switch = raw
        .gates
        .post_switch
        .map(|source| load_plan(&config, "post_switch", TARGET_PROXY, source, base))
        .transpose()?;
    Ok(config)
}

fn plaintext(field: &str) -> Error {
    config_error(
        field,
        "a plaintext secret needs `allow_plaintext = true` next to it; prefer { env = \"VAR\" } or { file = \"PATH\" }",
    )
}

fn validate_stack_name(stack: &str) -> Result<()> {
    let ok = !stack.is_empty()
        && stack.len() <= 60
        && stack
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && stack
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(config_error(
            "stack",
            format!("{stack:?} is not a usable name (letters, digits, `_`, `.`, `-`; at most 60; starting with a letter or digit)"),
        ))
    }
}

fn slots(raw: RawSlots, base: &Path) -> Result<SlotsConfig> {
    if raw.blue.http_port != 0 && raw.blue.http_port == raw.green.http_port {
        return Err(config_error(
            "slots.green.http_port",
            format!("{} is blue's port too", raw.green.http_port),
        ));
    }
    let volumes = raw
        .volumes
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            if !v.target.starts_with('/') {
                return Err(config_error(
                    &format!("slots.volumes[{i}].target"),
                    format!("{:?} is not an absolute path in the container", v.target),
                ));
            }
            let source = if v.source.starts_with('/') || v.source.starts_with('.') {
                MountSource::Bind(resolve_path(base, Path::new(&v.source)))
            } else if v.source.is_empty() {
                return Err(config_error(
                    &format!("slots.volumes[{i}].source"),
                    "must not be empty",
                ));
            } else {
                MountSource::Volume(v.source)
            };
            Ok(Mount {
                source,
                target: v.target,
                read_only: v.read_only,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some(cpus) = raw.cpus {
        if !(cpus.is_finite() && cpus > 0.0) {
            return Err(config_error("slots.cpus", "must be above 0"));
        }
    }
    let health_path = raw.health_path.unwrap_or_else(|| "/web/health".to_owned());
    if !health_path.starts_with('/') {
        return Err(config_error("slots.health_path", "must start with `/`"));
    }
    Ok(SlotsConfig {
        args: raw.args,
        env: raw.env,
        secret_env: raw.secret_env,
        volumes,
        network: raw.network.filter(|n| !n.is_empty()),
        limits: Limits {
            memory_bytes: raw.memory_mb.map(|mb| mb.saturating_mul(1024 * 1024)),
            cpus: raw.cpus,
        },
        container_http_port: raw.container_http_port.unwrap_or(ODOO_HTTP_PORT),
        container_realtime_port: raw.container_realtime_port.filter(|p| *p != 0),
        health_path,
        ready_timeout: duration(
            "slots.ready_timeout",
            raw.ready_timeout.as_deref(),
            Duration::from_secs(60),
        )?,
        stop_grace: duration(
            "slots.stop_grace",
            raw.stop_grace.as_deref(),
            Duration::from_secs(30),
        )?,
        blue: raw.blue,
        green: raw.green,
    })
}

fn proxy(raw: RawProxy, base: &Path) -> Result<ProxyConfig> {
    let url: Url = raw
        .url
        .parse()
        .map_err(|e| config_error("proxy.url", format!("{:?} is not a URL ({e})", raw.url)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(config_error("proxy.url", "must be http or https"));
    }
    let missing = |kind: &str| {
        config_error(
            &format!("proxy.{kind}"),
            format!("kind = \"{kind}\" needs a [proxy.{kind}] table"),
        )
    };
    let driver = match raw.kind.as_str() {
        "nginx" => {
            let n = raw.nginx.ok_or_else(|| missing("nginx"))?;
            let mode = match n.mode.as_deref().unwrap_or("state-file") {
                "reload" => NginxMode::Reload,
                "state-file" => NginxMode::StateFile {
                    state_dir: resolve_path(
                        base,
                        &n.state_dir.ok_or_else(|| {
                            config_error(
                                "proxy.nginx.state_dir",
                                "mode = \"state-file\" needs a state_dir nginx's workers can read",
                            )
                        })?,
                    ),
                },
                other => {
                    return Err(config_error(
                        "proxy.nginx.mode",
                        format!("{other:?} is not reload or state-file"),
                    ))
                }
            };
            let mut options = NginxOptions::new(
                &resolve_path(base, &n.prefix),
                &resolve_path(base, &n.conf),
                &resolve_path(base, &n.managed_file),
                mode,
            );
            if let Some(binary) = n.binary {
                options.binary = binary;
            }
            options.pid_file = n.pid_file.map(|p| resolve_path(base, &p));
            if let Some(name) = n.name {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(config_error(
                        "proxy.nginx.name",
                        "letters, digits and `_` only (it prefixes nginx variable names)",
                    ));
                }
                options.name = name;
            }
            if let Some(keepalive) = n.keepalive {
                options.keepalive = keepalive;
            }
            options.upstream_directives = n.upstream_directives;
            options.drain_grace = duration(
                "proxy.nginx.drain_grace",
                n.drain_grace.as_deref(),
                options.drain_grace,
            )?;
            ProxyDriver::Nginx(options)
        }
        "haproxy" => {
            let h = raw.haproxy.ok_or_else(|| missing("haproxy"))?;
            ProxyDriver::Haproxy {
                admin_socket: resolve_path(base, &h.admin_socket),
                config: h.config.as_deref().map(|c| resolve_path(base, c)),
            }
        }
        "traefik" => {
            let t = raw.traefik.ok_or_else(|| missing("traefik"))?;
            let mut options = TraefikOptions::new(&resolve_path(base, &t.dynamic_file));
            if let Some(name) = t.name {
                options.name = name;
            }
            options.entry_points = t.entry_points;
            options.drain_grace = duration(
                "proxy.traefik.drain_grace",
                t.drain_grace.as_deref(),
                options.drain_grace,
            )?;
            ProxyDriver::Traefik(options)
        }
        other => {
            return Err(config_error(
                "proxy.kind",
                format!("{other:?} is not nginx, haproxy or traefik"),
            ))
        }
    };
    Ok(ProxyConfig { url, driver })
}

fn deploy(raw: &RawDeploy) -> Result<DeploySettings> {
    let defaults = DeploySettings::default();
    let rollback_window = match raw.rollback_window.as_deref().map(str::trim) {
        None => defaults.rollback_window,
        Some("keep") => RollbackWindow::Keep,
        Some(text) => RollbackWindow::StopAfter(duration(
            "deploy.rollback_window",
            Some(text),
            Duration::ZERO,
        )?),
    };
    let verify_consecutive = raw
        .verify_consecutive
        .unwrap_or(defaults.verify_consecutive);
    if verify_consecutive == 0 {
        return Err(config_error(
            "deploy.verify_consecutive",
            "must be at least 1",
        ));
    }
    Ok(DeploySettings {
        rollback_window,
        drain_timeout: duration(
            "deploy.drain_timeout",
            raw.drain_timeout.as_deref(),
            defaults.drain_timeout,
        )?,
        keep_failed: raw.keep_failed.unwrap_or(defaults.keep_failed),
        verify_release: raw.verify_release.unwrap_or(defaults.verify_release),
        verify_timeout: duration(
            "deploy.verify_timeout",
            raw.verify_timeout.as_deref(),
            defaults.verify_timeout,
        )?,
        verify_consecutive,
        pull: match raw.pull.as_deref().map(str::trim) {
            None | Some("missing") => crate::registry::PullPolicy::Missing,
            Some("always") => crate::registry::PullPolicy::Always,
            Some("never") => crate::registry::PullPolicy::Never,
            Some(other) => {
                return Err(config_error(
                    "deploy.pull",
                    format!("{other:?} is not \"missing\", \"always\" or \"never\""),
                ))
            }
        },
    })
}

fn notify(raw: Vec<deploy_notify::ChannelSpec>) -> Result<Vec<deploy_notify::ChannelSpec>> {
    for (i, spec) in raw.iter().enumerate() {
        if spec.name.trim().is_empty() {
            return Err(config_error(&format!("notify[{i}].name"), "is empty"));
        }
        if raw[..i].iter().any(|other| other.name == spec.name) {
            return Err(config_error(
                &format!("notify[{i}].name"),
                format!("another channel is named {:?}", spec.name),
            ));
        }
        if !spec.url.is_allowed() {
            return Err(plaintext(&format!("notify[{i}].url")));
        }
    }
    Ok(raw)
}

fn hooks(raw: Vec<RawHook>) -> Result<Vec<HookConfig>> {
    let mut hooks: Vec<HookConfig> = Vec::new();
    for (i, hook) in raw.into_iter().enumerate() {
        let field = |name: &str| format!("hooks[{i}].{name}");
        let name = hook.name.trim().to_owned();
        if name.is_empty() || name.chars().any(|c| c.is_control() || c == '|') {
            return Err(config_error(
                &field("name"),
                "give a name without control characters or '|'",
            ));
        }
        if hooks.iter().any(|h| h.name == name) {
            return Err(config_error(
                &field("name"),
                format!("another hook is named {name:?}"),
            ));
        }
        let at = hook
            .at
            .parse()
            .map_err(|e: deploy_core::Error| config_error(&field("at"), e.to_string()))?;
        if hook
            .command
            .first()
            .is_none_or(|program| program.trim().is_empty())
        {
            return Err(config_error(
                &field("command"),
                "give the program and its arguments, e.g. [\"/usr/local/bin/notify\", \"--stack\", \"shop\"]",
            ));
        }
        let timeout = match hook.timeout.as_deref() {
            None => Duration::from_secs(300),
            Some(text) => humantime::parse_duration(text.trim())
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    config_error(
                        &field("timeout"),
                        format!("{text:?} is not a duration above zero, e.g. \"2m\""),
                    )
                })?,
        };
        hooks.push(HookConfig {
            name,
            at,
            command: hook.command,
            timeout,
        });
    }
    Ok(hooks)
}

fn update(raw: RawUpdate) -> Result<UpdateConfig> {
    let strategy = match raw.strategy.as_deref().unwrap_or("maintenance") {
        "maintenance" => crate::update::UpdateStrategy::Maintenance,
        "online" => crate::update::UpdateStrategy::Online,
        "clone" => {
            return Err(config_error(
                "update.strategy",
                "\"clone\" is not supported yet: \"maintenance\" (the default: the proxy answers 503 while the update runs) and \"online\" (the old release serves meanwhile) are",
            ))
        }
        other => {
            return Err(config_error(
                "update.strategy",
                format!("{other:?}: expected \"maintenance\" or \"online\""),
            ))
        }
    };
    if raw.command.as_ref().is_some_and(Vec::is_empty) {
        return Err(config_error("update.command", "must not be empty"));
    }
    Ok(UpdateConfig {
        strategy,
        modules: raw.modules.unwrap_or_default(),
        install: raw.install,
        command: raw.command,
        timeout: duration(
            "update.timeout",
            raw.timeout.as_deref(),
            Duration::from_secs(1800),
        )?,
        lock_wait: Some(duration(
            "update.lock_wait",
            raw.lock_wait.as_deref(),
            Duration::from_secs(60),
        )?)
        .filter(|d| !d.is_zero()),
        addons_path: raw
            .addons_path
            .unwrap_or_else(|| "/mnt/extra-addons".to_owned()),
    })
}

fn backup(raw: RawBackup, base: &Path) -> Result<BackupConfig> {
    let nonempty = |field: &str, path: &Path| {
        if path.as_os_str().is_empty() {
            Err(config_error(field, "must not be empty"))
        } else {
            Ok(resolve_path(base, path))
        }
    };
    Ok(BackupConfig {
        store: nonempty("backup.store", &raw.store)?,
        database_url: raw.database_url,
        data_dir: raw
            .data_dir
            .map(|d| nonempty("backup.data_dir", &d))
            .transpose()?,
        pg_bin: raw
            .pg_bin
            .map(|d| nonempty("backup.pg_bin", &d))
            .transpose()?,
        required: raw.required.unwrap_or(true),
    })
}

/// Reads a plan (file or inline table); a plan without targets gets one named
/// `default_target`, logging in as `[odoo]` says.
fn load_plan(
    config: &StackConfig,
    which: &'static str,
    default_target: &str,
    source: PlanSource,
    base: &Path,
) -> Result<Plan> {
    let mut table = match source {
        PlanSource::Inline(table) => table,
        PlanSource::Path(path) => {
            let path = resolve_path(base, &path);
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
            text.parse::<toml::Table>()
                .map_err(|e| Error::ConfigParse {
                    path: Some(path.clone()),
                    message: e.to_string(),
                })?
        }
    };
    let injected = !table.contains_key("targets");
    if injected {
        let mut target = toml::Table::new();
        target.insert("name".into(), toml::Value::String(default_target.into()));
        target.insert(
            "url".into(),
            toml::Value::String("http://127.0.0.1:8069".into()),
        );
        table.insert(
            "targets".into(),
            toml::Value::Array(vec![toml::Value::Table(target)]),
        );
    }
    let text = toml::to_string(&table).map_err(|e| Error::Render {
        what: "gate plan",
        message: e.to_string(),
    })?;
    let mut plan = Plan::from_toml(&text).map_err(|source| Error::Plan {
        plan: which,
        cause: source,
    })?;
    if injected {
        let url = plan
            .targets
            .first()
            .map(|t| t.url.clone())
            .unwrap_or_else(|| config.proxy.url.clone());
        plan.targets = vec![config.target(default_target, url)];
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        stack = "shop"
        [slots]
        blue = { http_port = 18069 }
        green = { http_port = 28069 }
        [proxy]
        kind = "haproxy"
        url = "http://127.0.0.1:8080"
        haproxy = { admin_socket = "run/admin.sock" }
    "#;

    #[test]
    fn minimal_file_gets_defaults_and_relative_paths() {
        let config = StackConfig::from_toml(MINIMAL, Path::new("/etc/odoo")).unwrap();
        assert_eq!(config.stack, "shop");
        assert_eq!(config.environment, Environment::Production);
        assert_eq!(config.state_dir, Path::new("/etc/odoo/.odoo-bluegreen"));
        assert_eq!(config.deploy, DeploySettings::default());
        match &config.proxy.driver {
            ProxyDriver::Haproxy { admin_socket, .. } => {
                assert_eq!(admin_socket, Path::new("/etc/odoo/run/admin.sock"));
            }
            other => panic!("{other:?}"),
        }
        let backend = config.configured_backend(Slot::Green).unwrap();
        assert_eq!(backend.http.port(), 28069);
        assert_eq!(backend.realtime, backend.http);
        assert!(config.pre_switch.is_none());
    }

    #[test]
    fn slot_spec_fills_placeholders_and_ports() {
        let text = MINIMAL.replace(
            "[slots]",
            "[slots]\nargs = [\"--release\", \"{release}\"]\nenv = { SLOT = \"{stack}-{slot}\" }\ncontainer_realtime_port = 8072",
        )
        .replace("blue = { http_port = 18069 }", "blue = { http_port = 18069, realtime_port = 18072 }");
        let config = StackConfig::from_toml(&text, Path::new("/x")).unwrap();
        let spec = config
            .slot_spec(Slot::Blue, "img:1", "r1", &deploy_core::NullSink)
            .unwrap();
        assert_eq!(spec.args, ["--release", "r1"]);
        assert_eq!(spec.env["SLOT"], "shop-blue");
        assert_eq!(spec.http.host_port, 18069);
        assert_eq!(spec.realtime.unwrap().host_port, 18072);
        assert_eq!(
            config
                .configured_backend(Slot::Blue)
                .unwrap()
                .realtime
                .port(),
            18072
        );
    }

    #[test]
    fn plans_get_a_default_target_with_the_stack_login() {
        let text = format!(
            "{MINIMAL}\n[odoo]\ndatabase = \"demo\"\nlogin = \"admin\"\npassword = {{ env = \"ODOO_PASSWORD\" }}\n\
             [gates.pre_switch]\n[[gates.pre_switch.gates]]\nname = \"health\"\nkind = \"health\"\n"
        );
        let config = StackConfig::from_toml(&text, Path::new("/x")).unwrap();
        let plan = config.pre_switch.unwrap();
        assert_eq!(plan.targets.len(), 1);
        assert_eq!(plan.targets[0].name, TARGET_SLOT);
        assert_eq!(plan.targets[0].database.as_deref(), Some("demo"));
        assert_eq!(plan.gates[0].target, TARGET_SLOT);
    }

    #[test]
    fn hooks_parse_in_order_and_bad_ones_name_their_field() {
        let text = format!(
            "{MINIMAL}\n[[hooks]]\nname = \"freeze\"\nat = \"before-start\"\ncommand = [\"/bin/check\", \"shop\"]\n\
             [[hooks]]\nname = \"notify\"\nat = \"finish\"\ncommand = [\"/bin/notify\"]\ntimeout = \"20s\"\n"
        );
        let config = StackConfig::from_toml(&text, Path::new("/etc/odoo")).unwrap();
        let names: Vec<&str> = config.hooks.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["freeze", "notify"]);
        assert_eq!(config.hooks[0].at, deploy_core::StagePoint::BeforeStart);
        assert_eq!(config.hooks[0].timeout, Duration::from_secs(300));
        assert_eq!(config.hooks[1].timeout, Duration::from_secs(20));
        for (hook, field) in [
            (
                "name = \"a\"\nat = \"later\"\ncommand = [\"/bin/x\"]",
                "hooks[0].at",
            ),
            (
                "name = \"a\"\nat = \"finish\"\ncommand = []",
                "hooks[0].command",
            ),
            (
                "name = \"\"\nat = \"finish\"\ncommand = [\"/bin/x\"]",
                "hooks[0].name",
            ),
            (
                "name = \"a\"\nat = \"finish\"\ncommand = [\"/bin/x\"]\ntimeout = \"0s\"",
                "hooks[0].timeout",
            ),
        ] {
            let text = format!("{MINIMAL}\n[[hooks]]\n{hook}\n");
            match StackConfig::from_toml(&text, Path::new("/etc/odoo")) {
                Err(Error::Config { field: got, .. }) => assert_eq!(got, field, "{hook}"),
                other => panic!("{hook}: {other:?}"),
            }
        }
        let twice = format!(
            "{MINIMAL}\n[[hooks]]\nname = \"a\"\nat = \"finish\"\ncommand = [\"/bin/x\"]\n\
             [[hooks]]\nname = \"a\"\nat = \"finish\"\ncommand = [\"/bin/y\"]\n"
        );
        assert!(matches!(
            StackConfig::from_toml(&twice, Path::new("/etc/odoo")),
            Err(Error::Config { field, .. }) if field == "hooks[1].name"
        ));
    }

    #[test]
    fn the_pull_policy_is_one_of_three_words() {
        let base = "stack = \"shop\"\n[slots]\nblue = { http_port = 18069 }\ngreen = { http_port = 28069 }\n[proxy]\nkind = \"haproxy\"\nurl = \"http://127.0.0.1:1\"\nhaproxy = { admin_socket = \"a.sock\" }\n";
        let dir = Path::new("/tmp");
        let with = |pull: &str| {
            StackConfig::from_toml(&format!("{base}[deploy]\npull = \"{pull}\"\n"), dir)
        };
        assert_eq!(
            with("always").map(|c| c.deploy.pull).ok(),
            Some(crate::registry::PullPolicy::Always)
        );
        assert_eq!(
            StackConfig::from_toml(base, dir)
                .map(|c| c.deploy.pull)
                .ok(),
            Some(crate::registry::PullPolicy::Missing)
        );
        assert!(matches!(
            with("sometimes"),
            Err(Error::Config { field, .. }) if field == "deploy.pull"
        ));
    }

    #[test]
    fn the_update_table_needs_a_backup_and_a_supported_strategy() {
        let backup = "[backup]\nstore = \"b\"\ndatabase_url = { env = \"DB_URL\" }\n";
        let load =
            |extra: &str| StackConfig::from_toml(&format!("{MINIMAL}\n{extra}"), Path::new("/etc"));
        let config = load(&format!(
            "{backup}[update]\nstrategy = \"online\"\nmodules = [\"shop\"]\ninstall = [\"shop_loyalty\"]\ntimeout = \"5m\"\n"
        ))
        .unwrap();
        let update = config.update.unwrap();
        assert_eq!(
            update.modules,
            crate::update::ModuleSelection::Named(vec!["shop".into()])
        );
        assert_eq!(update.install, ["shop_loyalty"]);
        assert_eq!(update.timeout, Duration::from_secs(300));
        assert_eq!(update.addons_path, "/mnt/extra-addons");
        let field = |result: Result<StackConfig>| match result {
            Err(Error::Config { field, reason }) => format!("{field}: {reason}"),
            other => panic!("{other:?}"),
        };
        assert!(
            field(load("[update]\nstrategy = \"online\"\n")).starts_with("update: needs [backup]")
        );
        assert!(
            field(load(&format!("{backup}[update]\nstrategy = \"clone\"\n")))
                .contains("not supported yet")
        );
        assert!(
            field(load(&format!("{backup}[update]\nstrategy = \"fast\"\n")))
                .starts_with("update.strategy")
        );
        assert_eq!(
            load(&format!("{backup}[update]\n"))
                .unwrap()
                .update
                .unwrap()
                .strategy,
            crate::update::UpdateStrategy::Maintenance,
            "maintenance is the default"
        );
        assert!(field(load(&format!(
            "{backup}[update]\nstrategy = \"online\"\ncommand = []\n"
        )))
        .starts_with("update.command"));

        // Traefik cannot answer 503 by itself: maintenance (the default) is refused
        // when the file loads, online is not.
        let traefik = MINIMAL
            .replace("kind = \"haproxy\"", "kind = \"traefik\"")
            .replace(
                "haproxy = { admin_socket = \"run/admin.sock\" }",
                "traefik = { dynamic_file = \"dynamic/odoo.toml\" }",
            );
        let on_traefik = |extra: &str| {
            StackConfig::from_toml(&format!("{traefik}\n{backup}{extra}"), Path::new("/etc"))
        };
        assert!(on_traefik("").is_ok(), "{:?}", on_traefik("").err());
        let refused = field(on_traefik("[update]\n"));
        assert!(
            refused.starts_with("update.strategy") && refused.contains("Traefik"),
            "{refused}"
        );
        assert!(on_traefik("[update]\nstrategy = \"online\"\n").is_ok());
    }

    #[test]
    fn the_example_stack_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/stack.toml");
        let config = StackConfig::load(&path).unwrap();
        assert_eq!(config.stack, "shop");
        assert_eq!(config.hooks.len(), 1);
        assert_eq!(config.hooks[0].name, "change-freeze");
        assert!(config.update.is_some());
        assert_eq!(config.proxy.kind(), ProxyKind::Haproxy);
        assert_eq!(config.slots.container_realtime_port, Some(8072));
        assert_eq!(
            config
                .configured_backend(Slot::Green)
                .unwrap()
                .realtime
                .port(),
            28072
        );
        assert_eq!(config.slots.volumes.len(), 2);
        assert_eq!(config.slots.limits.memory_bytes, Some(4096 * 1024 * 1024));
        assert_eq!(
            config.deploy.rollback_window,
            RollbackWindow::StopAfter(Duration::from_secs(15 * 60))
        );
        let pre = config.pre_switch.unwrap();
        assert_eq!(pre.targets[0].name, TARGET_SLOT);
        assert_eq!(pre.targets[0].login.as_deref(), Some("admin"));
        assert_eq!(pre.gates.len(), 3);
        let post = config.post_switch.unwrap();
        assert_eq!(post.targets[0].name, TARGET_PROXY);
        assert_eq!(post.run.stable_for, Duration::from_secs(60));
        let spec = StackConfig::load(&path)
            .unwrap()
            .slots
            .env
            .get("ODOO_RELEASE")
            .cloned();
        assert_eq!(spec.as_deref(), Some("{release}"));
        let backup = config.backup.unwrap();
        assert_eq!(backup.store, Path::new("/var/backups/odoo/shop"));
        assert_eq!(backup.data_dir.as_deref(), Some(Path::new("/var/lib/odoo")));
        assert!(backup.pg_bin.is_none());
        assert!(backup.required);
    }

    #[test]
    fn backup_table_resolves_paths_and_keeps_the_url_secret() {
        assert!(StackConfig::from_toml(MINIMAL, Path::new("/x"))
            .unwrap()
            .backup
            .is_none());
        let text = format!(
            "{MINIMAL}\n[backup]\nstore = \"backups\"\ndatabase_url = {{ env = \"SHOP_DB_URL\" }}\n\
             data_dir = \"odoo-data\"\npg_bin = \"/usr/lib/postgresql/16/bin\"\nrequired = false\n"
        );
        let backup = StackConfig::from_toml(&text, Path::new("/etc/odoo"))
            .unwrap()
            .backup
            .unwrap();
        assert_eq!(backup.store, Path::new("/etc/odoo/backups"));
        assert_eq!(
            backup.data_dir.as_deref(),
            Some(Path::new("/etc/odoo/odoo-data"))
        );
        assert_eq!(
            backup.pg_bin.as_deref(),
            Some(Path::new("/usr/lib/postgresql/16/bin"))
        );
        assert!(!backup.required);
        assert!(format!("{backup:?}").contains("SHOP_DB_URL"));

        let plain = format!(
            "{MINIMAL}\n[backup]\nstore = \"b\"\ndatabase_url = {{ plain = \"postgres://u:pw@h/db\" }}\n"
        );
        match StackConfig::from_toml(&plain, Path::new("/x")) {
            Err(Error::Config { field, .. }) => assert_eq!(field, "backup.database_url"),
            other => panic!("{other:?}"),
        }
        let allowed = plain.replace("db\" }", "db\", allow_plaintext = true }");
        let backup = StackConfig::from_toml(&allowed, Path::new("/x"))
            .unwrap()
            .backup
            .unwrap();
        assert!(backup.required);
        assert!(!format!("{backup:?}").contains("pw"), "{backup:?}");
        let empty =
            format!("{MINIMAL}\n[backup]\nstore = \"\"\ndatabase_url = {{ env = \"V\" }}\n");
        match StackConfig::from_toml(&empty, Path::new("/x")) {
            Err(Error::Config { field, .. }) => assert_eq!(field, "backup.store"),
            other => panic!("{other:?}"),
        }
        for missing in [
            format!("{MINIMAL}\n[backup]\nstore = \"b\"\n"),
            format!("{MINIMAL}\n[backup]\ndatabase_url = {{ env = \"V\" }}\n"),
            format!(
                "{MINIMAL}\n[backup]\nstore = \"b\"\ndatabase_url = {{ env = \"V\" }}\nkeep = 3\n"
            ),
        ] {
            assert!(
                matches!(
                    StackConfig::from_toml(&missing, Path::new("/x")),
                    Err(Error::ConfigParse { .. })
                ),
                "{missing}"
            );
        }
    }

    #[test]
    fn mistakes_name_the_field() {
        let cases = [
            (MINIMAL.replace("\"shop\"", "\"a b\""), "stack"),
            (MINIMAL.replace("28069", "18069"), "slots.green.http_port"),
            (
                MINIMAL.replace("\"haproxy\"\n", "\"caddy\"\n"),
                "proxy.kind",
            ),
            (
                format!("{MINIMAL}\n[deploy]\nrollback_window = \"soon\"\n"),
                "deploy.rollback_window",
            ),
        ];
        for (text, field) in cases {
            match StackConfig::from_toml(&text, Path::new("/x")) {
                Err(Error::Config { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        assert!(matches!(
            StackConfig::from_toml(&format!("{MINIMAL}\nsurprise = 1\n"), Path::new("/x")),
            Err(Error::ConfigParse { .. })
        ));
        let keep = StackConfig::from_toml(
            &format!("{MINIMAL}\n[deploy]\nrollback_window = \"keep\"\n"),
            Path::new("/x"),
        )
        .unwrap();
        assert_eq!(keep.deploy.rollback_window, RollbackWindow::Keep);
    }
}
