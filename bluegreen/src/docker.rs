//! Slots as containers on a real Docker engine (through bollard).
//!
//! Every read goes to Docker ([`DockerSlots::state`] lists containers by the stack label
//! and inspects them); nothing is remembered between calls. Every step is idempotent:
//! starting a running slot, stopping a stopped one and removing a missing one succeed and
//! say so; creating a slot whose container already exists with the same labels reuses it.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, EndpointSettings,
    HealthStatusEnum, HostConfig, Mount as DockerMount, MountType, NetworkingConfig, PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, PushImageOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder, TagImageOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use secrecy::ExposeSecret;
use tracing::{debug, info, warn};

use crate::error::{Error, Result, StartFailure};
use crate::registry::{
    ImageOutcome, ImageProblem, ImageRef, ProgressFn, PullPolicy, PullProgress, RegistryCredentials,
};
use crate::slot::{
    container_name, ContainerInfo, ContainerStatus, HealthStatus, MountSource, Slot, SlotSpec,
    SlotState, LABEL_HTTP_PORT, LABEL_IMAGE, LABEL_REALTIME_PORT, LABEL_RELEASE, LABEL_SLOT,
    LABEL_STACK,
};

/// How a one-off container ended ([`DockerSlots::run_one_off`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneOff {
    /// Its exit status (`None` when the engine did not say).
    pub exit_code: Option<i64>,
    /// Killed at the timeout.
    pub timed_out: bool,
    /// How many log lines it wrote.
    pub lines: usize,
    /// From its start to its end.
    pub elapsed: Duration,
}

/// The loopback address every slot port is published on.
pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// How long and how often to poll a slot's health URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyOptions {
    /// Give up after this long.
    pub timeout: Duration,
    /// Pause between attempts.
    pub interval: Duration,
    /// Timeout of each request.
    pub request_timeout: Duration,
}

impl Default for ReadyOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            interval: Duration::from_millis(100),
            request_timeout: Duration::from_secs(2),
        }
    }
}

/// What [`DockerSlots::create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    /// A new container was created.
    Created,
    /// A container with that name and the same labels existed and is reused.
    Reused,
}

/// What [`DockerSlots::start`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    /// The container was started.
    Started,
    /// It was already running (Docker's 304).
    AlreadyRunning,
}

/// What [`DockerSlots::stop`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// The container was stopped.
    Stopped,
    /// It was not running (Docker's 304).
    AlreadyStopped,
}

/// What [`DockerSlots::remove`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// The container was removed.
    Removed,
    /// There was no such container (Docker's 404).
    AlreadyGone,
}

/// The slots of any number of stacks on one Docker engine.
#[derive(Debug, Clone)]
pub struct DockerSlots {
    docker: Docker,
    log_tail: usize,
}

impl DockerSlots {
    /// Connects to the local engine (`DOCKER_HOST` or the default unix socket) and
    /// negotiates the API version with it (older engines speak older versions).
    ///
    /// # Errors
    /// [`Error::DockerUnavailable`] when the engine cannot be reached.
    pub async fn connect() -> Result<Self> {
        let docker = Docker::connect_with_local_defaults().map_err(unavailable)?;
        Self::negotiate(docker).await
    }

    /// Connects to the engine listening on a unix socket.
    ///
    /// # Errors
    /// [`Error::DockerUnavailable`] when the engine cannot be reached.
    pub async fn connect_socket(path: &Path) -> Result<Self> {
        let path = path.to_string_lossy();
        let docker = Docker::connect_with_socket(&path, 120, bollard::API_DEFAULT_VERSION)
            .map_err(unavailable)?;
        Self::negotiate(docker).await
    }

    async fn negotiate(docker: Docker) -> Result<Self> {
        let docker = docker.negotiate_version().await.map_err(unavailable)?;
        Ok(Self {
            docker,
            log_tail: 50,
        })
    }

    /// How many log lines errors carry (default 50).
    #[must_use]
    pub fn with_log_tail(mut self, lines: usize) -> Self {
        self.log_tail = lines;
        self
    }

    /// Both slots of `stack` as Docker reports them now: containers are found by the
    /// `com.deployment.stack` label and inspected.
    ///
    /// # Errors
    /// [`Error::Docker`] when listing or inspecting fails; [`Error::UnexpectedContainer`]
    /// when a labelled container's slot label is not `blue`/`green`, or two containers
    /// of the stack claim the same slot.
    pub async fn state(&self, stack: &str) -> Result<SlotState> {
        let filters: HashMap<&str, Vec<String>> =
            HashMap::from([("label", vec![format!("{LABEL_STACK}={stack}")])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| docker_error("list", stack, e))?;
        let mut state = SlotState {
            stack: stack.to_owned(),
            blue: None,
            green: None,
        };
        for summary in summaries {
            let Some(id) = summary.id else { continue };
            let info = match self.inspect_by_name(&id).await {
                Ok(Some(info)) => info,
                // Removed between the list and the inspect: it is gone.
                Ok(None) => continue,
                Err(e) => return Err(e),
            };
            let place = match info.slot {
                Slot::Blue => &mut state.blue,
                Slot::Green => &mut state.green,
            };
            if let Some(existing) = place {
                return Err(Error::UnexpectedContainer {
                    container: info.name.clone(),
                    field: "com.deployment.slot",
                    problem: format!(
                        "claims slot {} of stack {stack}, as {} does",
                        info.slot, existing.name
                    ),
                });
            }
            *place = Some(info);
        }
        Ok(state)
    }

    /// One slot's container, if it exists.
    ///
    /// # Errors
    /// [`Error::Docker`] when inspecting fails (other than 404);
    /// [`Error::UnexpectedContainer`] when its labels cannot be read.
    pub async fn inspect(&self, stack: &str, slot: Slot) -> Result<Option<ContainerInfo>> {
        self.inspect_by_name(&container_name(stack, slot)).await
    }

    async fn inspect_by_name(&self, name: &str) -> Result<Option<ContainerInfo>> {
        match self.docker.inspect_container(name, None).await {
            Ok(response) => container_info(response).map(Some),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(docker_error("inspect", name, e)),
        }
    }

    /// Creates the slot's container (not started). When a container with that name
    /// already exists (Docker's 409) and carries the same stack, slot, release and image
    /// labels, it is reused; otherwise it is left alone and [`Error::NameConflict`] says
    /// what is there.
    ///
    /// # Errors
    /// [`Error::NameConflict`]; [`Error::Docker`] for other refusals (missing image: 404).
    pub async fn create(&self, spec: &SlotSpec) -> Result<(CreateOutcome, ContainerInfo)> {
        let name = spec.container_name();
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        match self
            .docker
            .create_container(Some(options), create_body(spec))
            .await
        {
            Ok(response) => {
                for warning in &response.warnings {
                    warn!(container = %name, warning = %warning, "docker warning on create");
                }
                info!(container = %name, slot = %spec.slot, release = %spec.release, "slot created");
                let info = self.require(&spec.stack, spec.slot).await?;
                Ok((CreateOutcome::Created, info))
            }
            Err(e) if status_of(&e) == Some(409) => {
                let existing = self.require(&spec.stack, spec.slot).await?;
                if existing.stack == spec.stack
                    && existing.slot == spec.slot
                    && existing.release == spec.release
                    && existing.image == spec.image
                {
                    debug!(container = %name, "slot exists with the same labels; reused");
                    Ok((CreateOutcome::Reused, existing))
                } else {
                    Err(Error::NameConflict {
                        container: name,
                        expected_release: spec.release.clone(),
                        expected_image: spec.image.clone(),
                        found_labels: existing
                            .labels
                            .iter()
                            .filter(|(k, _)| k.starts_with("com.deployment."))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    })
                }
            }
            Err(e) => Err(docker_error("create", &name, e)),
        }
    }

    async fn require(&self, stack: &str, slot: Slot) -> Result<ContainerInfo> {
        self.inspect(stack, slot)
            .await?
            .ok_or_else(|| Error::SlotNotFound {
                stack: stack.to_owned(),
                slot,
            })
    }

    /// Starts the slot's container; a running one is left as it is.
    ///
    /// # Errors
    /// [`Error::SlotNotFound`] when it does not exist; [`Error::Docker`] when Docker
    /// refuses (a host port already allocated: 500).
    pub async fn start(&self, stack: &str, slot: Slot) -> Result<StartOutcome> {
        let name = container_name(stack, slot);
        let info = self.require(stack, slot).await?;
        if info.is_running() {
            return Ok(StartOutcome::AlreadyRunning);
        }
        // Docker answers 304 when it was started in between; bollard maps it to Ok.
        self.docker
            .start_container(&name, None)
            .await
            .map_err(|e| match status_of(&e) {
                Some(404) => Error::SlotNotFound {
                    stack: stack.to_owned(),
                    slot,
                },
                _ => docker_error("start", &name, e),
            })?;
        info!(container = %name, slot = %slot, "slot started");
        Ok(StartOutcome::Started)
    }

    /// Creates (or reuses), starts and waits until the slot answers 200 on its health
    /// path through its published HTTP port. Returns the container as running.
    ///
    /// # Errors
    /// [`Error::SlotFailedToStart`] with the container's last log lines when Docker
    /// refuses to start it, it exits, or its health URL does not answer in time;
    /// the errors of [`DockerSlots::create`].
    pub async fn launch(&self, spec: &SlotSpec, ready: &ReadyOptions) -> Result<ContainerInfo> {
        self.create(spec).await?;
        if let Err(e) = self.start(&spec.stack, spec.slot).await {
            return match e {
                Error::Docker {
                    status_code,
                    message,
                    ..
                } => Err(self
                    .failed(
                        spec,
                        StartFailure::StartRefused {
                            status_code,
                            message,
                        },
                    )
                    .await),
                other => Err(other),
            };
        }
        self.wait_slot_ready(&spec.stack, spec.slot, &spec.health_path, ready)
            .await
    }

    /// Polls the slot's health path through its published HTTP port until it answers
    /// 200, while checking that the container still runs.
    ///
    /// # Errors
    /// [`Error::SlotFailedToStart`] (with logs) when the container stops or the timeout
    /// passes; [`Error::SlotNotFound`]; [`Error::Docker`].
    pub async fn wait_slot_ready(
        &self,
        stack: &str,
        slot: Slot,
        health_path: &str,
        ready: &ReadyOptions,
    ) -> Result<ContainerInfo> {
        let started = Instant::now();
        let client = http_client(ready.request_timeout)?;
        let mut last;
        let spec_name = container_name(stack, slot);
        loop {
            let info = self.require(stack, slot).await?;
            if !info.is_running() {
                let error = self.container_error(&spec_name).await;
                return Err(self
                    .failed_named(
                        stack,
                        slot,
                        StartFailure::Exited {
                            exit_code: info.exit_code,
                            error,
                        },
                    )
                    .await);
            }
            let Some(http) = info.http else {
                return Err(Error::UnexpectedContainer {
                    container: info.name,
                    field: "NetworkSettings.Ports",
                    problem: "has no published HTTP port".to_owned(),
                });
            };
            let url = format!("http://{http}{health_path}");
            match client.get(&url).send().await {
                Ok(response) if response.status().as_u16() == 200 => {
                    info!(container = %info.name, elapsed_ms = started.elapsed().as_millis() as u64, "slot ready");
                    return Ok(info);
                }
                Ok(response) => last = format!("HTTP {}", response.status().as_u16()),
                Err(e) => last = format!("{e}"),
            }
            if started.elapsed() >= ready.timeout {
                return Err(self
                    .failed_named(
                        stack,
                        slot,
                        StartFailure::NotReady {
                            url,
                            waited: started.elapsed(),
                            last,
                        },
                    )
                    .await);
            }
            tokio::time::sleep(ready.interval).await;
        }
    }

    async fn container_error(&self, name: &str) -> Option<String> {
        let response = self.docker.inspect_container(name, None).await.ok()?;
        response.state?.error.filter(|e| !e.is_empty())
    }

    async fn failed(&self, spec: &SlotSpec, reason: StartFailure) -> Error {
        self.failed_named(&spec.stack, spec.slot, reason).await
    }

    async fn failed_named(&self, stack: &str, slot: Slot, reason: StartFailure) -> Error {
        let container = container_name(stack, slot);
        let logs = match self.logs(stack, slot, self.log_tail).await {
            Ok(logs) => logs,
            Err(e) => format!("<logs unavailable: {e}>"),
        };
        warn!(container = %container, reason = %reason, "slot failed to start");
        Error::SlotFailedToStart {
            slot,
            container,
            reason,
            logs,
        }
    }

    /// Stops the slot's container (SIGTERM, then SIGKILL after `grace`); a stopped one is
    /// left as it is.
    ///
    /// # Errors
    /// [`Error::SlotNotFound`] when it does not exist; [`Error::Docker`].
    pub async fn stop(&self, stack: &str, slot: Slot, grace: Duration) -> Result<StopOutcome> {
        let name = container_name(stack, slot);
        let info = self.require(stack, slot).await?;
        if !info.is_running() {
            return Ok(StopOutcome::AlreadyStopped);
        }
        let seconds = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::new().t(seconds).build();
        self.docker
            .stop_container(&name, Some(options))
            .await
            .map_err(|e| match status_of(&e) {
                Some(404) => Error::SlotNotFound {
                    stack: stack.to_owned(),
                    slot,
                },
                _ => docker_error("stop", &name, e),
            })?;
        info!(container = %name, slot = %slot, "slot stopped");
        Ok(StopOutcome::Stopped)
    }

    /// Removes the slot's container, running or not (its anonymous volumes too; named
    /// volumes and bind mounts stay). A missing container is not an error.
    ///
    /// # Errors
    /// [`Error::Docker`] for refusals other than 404.
    pub async fn remove(&self, stack: &str, slot: Slot) -> Result<RemoveOutcome> {
        let name = container_name(stack, slot);
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(&name, Some(options)).await {
            Ok(()) => {
                info!(container = %name, slot = %slot, "slot removed");
                Ok(RemoveOutcome::Removed)
            }
            Err(e) if status_of(&e) == Some(404) => Ok(RemoveOutcome::AlreadyGone),
            // 409 "removal already in progress": another caller is removing it.
            Err(e) if status_of(&e) == Some(409) => Ok(RemoveOutcome::AlreadyGone),
            Err(e) => Err(docker_error("remove", &name, e)),
        }
    }

    /// Makes sure the engine has `image`, pulling it as `policy` says, with
    /// `credentials` for its registry; `progress` sees the engine's pull lines, one per
    /// layer and status (and a download's bytes at most once a second per layer).
    ///
    /// # Errors
    /// [`Error::Image`] when it is not on the engine and cannot be pulled: the registry
    /// has no such repository or tag, refuses the credentials or wants some, cannot be
    /// reached; or `policy` is [`PullPolicy::Never`]. [`Error::Docker`] when the engine
    /// cannot be asked.
    pub async fn ensure_image(
        &self,
        image: &str,
        policy: PullPolicy,
        credentials: Option<&RegistryCredentials>,
        progress: &ProgressFn,
    ) -> Result<ImageOutcome> {
        match crate::backend::present_image(self, image, policy).await? {
            Some(id) => Ok(ImageOutcome::Present { id }),
            None => self.pull_image(image, credentials, progress).await,
        }
    }

    /// Pulls `image` from its registry with `credentials`, whether or not the engine has
    /// it; `progress` as for [`DockerSlots::ensure_image`].
    ///
    /// # Errors
    /// As [`DockerSlots::ensure_image`].
    pub async fn pull_image(
        &self,
        image: &str,
        credentials: Option<&RegistryCredentials>,
        progress: &ProgressFn,
    ) -> Result<ImageOutcome> {
        let reference = ImageRef::parse(image).map_err(|detail| Error::Image {
            image: image.to_owned(),
            problem: ImageProblem::NotFound,
            detail,
        })?;
        info!(image, registry = %reference.registry, credentials = ?credentials.map(RegistryCredentials::describe), "pulling the image");
        let options = CreateImageOptionsBuilder::new()
            .from_image(&reference.name)
            .tag(reference.tag_or_digest())
            .build();
        let mut stream = self.docker.create_image(
            Some(options),
            None,
            credentials.map(RegistryCredentials::to_docker),
        );
        let mut last: HashMap<String, (String, Instant)> = HashMap::new();
        while let Some(item) = stream.next().await {
            let line = match item {
                Ok(line) => line,
                Err(e) => {
                    let detail = match &e {
                        BollardError::DockerResponseServerError { message, .. } => message.clone(),
                        BollardError::DockerStreamError { error } => error.clone(),
                        other => other.to_string(),
                    };
                    warn!(image, %detail, "pull failed");
                    return Err(Error::Image {
                        image: image.to_owned(),
                        problem: ImageProblem::classify(&detail),
                        detail,
                    });
                }
            };
            if let Some(detail) = line.error_detail.as_ref().and_then(|d| d.message.clone()) {
                return Err(Error::Image {
                    image: image.to_owned(),
                    problem: ImageProblem::classify(&detail),
                    detail,
                });
            }
            let Some(status) = line.status else { continue };
            let bytes = line.progress_detail.as_ref().and_then(|p| {
                Some((
                    u64::try_from(p.current?).ok()?,
                    u64::try_from(p.total?).ok()?,
                ))
            });
            let key = line.id.clone().unwrap_or_default();
            let now = Instant::now();
            let show = match last.get(&key) {
                Some((seen, at)) if *seen == status => {
                    bytes.is_some() && now.duration_since(*at) >= Duration::from_secs(1)
                }
                _ => true,
            };
            if show {
                last.insert(key, (status.clone(), now));
                progress(&PullProgress {
                    layer: line.id,
                    status,
                    bytes,
                });
            }
        }
        let Some(id) = self.image_id(image).await? else {
            return Err(Error::Image {
                image: image.to_owned(),
                problem: ImageProblem::Failed,
                detail: "the engine ended the pull without error but does not have the image"
                    .to_owned(),
            });
        };
        let digest = self
            .docker
            .inspect_image(image)
            .await
            .ok()
            .and_then(|i| i.repo_digests)
            .and_then(|d| d.into_iter().find(|d| d.starts_with(&reference.name)))
            .and_then(|d| d.split_once('@').map(|(_, digest)| digest.to_owned()));
        info!(image, %id, digest = ?digest, "image pulled");
        Ok(ImageOutcome::Pulled { id, digest })
    }

    /// The checksum of every addon under `path` in `image` (`/mnt/extra-addons` in the
    /// official layout), read from the image itself: a container is created from it,
    /// never started, the folder streamed as a tar through the API, and the container
    /// removed again (also when reading fails).
    ///
    /// # Errors
    /// [`Error::Docker`] when the image is missing (404), the folder is not in it (404),
    /// or the archive cannot be read.
    pub async fn image_addons(
        &self,
        image: &str,
        path: &str,
        rules: &crate::addons::ChecksumRules,
    ) -> Result<BTreeMap<String, String>> {
        self.image_addon_info(image, path, rules)
            .await
            .map(|info| info.checksums)
    }

    /// As [`DockerSlots::image_addons`], with each addon's manifest version too.
    ///
    /// # Errors
    /// As [`DockerSlots::image_addons`]; a manifest that is not a Python literal.
    pub async fn image_addon_info(
        &self,
        image: &str,
        path: &str,
        rules: &crate::addons::ChecksumRules,
    ) -> Result<crate::update::ImageAddonInfo> {
        let name = format!("odoo-addons-{:08x}", fastrand_u32());
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            // Never started; an entrypoint is not needed, but some images have none.
            cmd: Some(vec!["true".to_owned()]),
            labels: Some(std::collections::HashMap::from([(
                "com.deployment.role".to_owned(),
                "addons-reader".to_owned(),
            )])),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| docker_error("create", image, e))?;
        let result = self.read_archive(&name, path).await;
        self.remove_quietly(&name, "addons reader").await;
        let tar = result?;
        crate::addons::addons_in_tar(tar.as_slice(), rules, &format!("{image}:{path}")).map_err(
            |e| Error::Docker {
                operation: "read archive",
                target: format!("{image}:{path}"),
                status_code: None,
                message: e.to_string(),
                source: Box::new(e),
            },
        )
    }

    async fn read_archive(&self, container: &str, path: &str) -> Result<Vec<u8>> {
        let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::new()
            .path(path)
            .build();
        let mut stream = self
            .docker
            .download_from_container(container, Some(options));
        let mut tar = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| docker_error("archive", &format!("{container}:{path}"), e))?;
            tar.extend_from_slice(&chunk);
        }
        Ok(tar)
    }

    /// Runs `command` once in a container of `spec`'s image with the slot's environment,
    /// mounts, network and limits (Odoo's `odoo -d DB -u ... --stop-after-init`), no port
    /// published, and waits for it to exit. Each log line (stdout and stderr, in order)
    /// goes to `on_line` as it comes. After `timeout` the container is killed
    /// ([`OneOff::timed_out`]). The container is removed afterwards, whatever happened.
    ///
    /// # Errors
    /// [`Error::Docker`] when the engine refuses to create or start it (a command that
    /// is not in the image: 400 or 500 with the runtime's message) or cannot be asked.
    pub async fn run_one_off(
        &self,
        spec: &SlotSpec,
        command: &[String],
        timeout: Duration,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<OneOff> {
        let name = format!("{}-oneoff-{:08x}", spec.stack, fastrand_u32());
        let mut body = create_body(spec);
        body.cmd = Some(command.to_vec());
        body.exposed_ports = None;
        body.labels = Some(HashMap::from([
            ("com.deployment.role".to_owned(), "one-off".to_owned()),
            ("com.deployment.oneoff.stack".to_owned(), spec.stack.clone()),
        ]));
        if let Some(host) = body.host_config.as_mut() {
            host.port_bindings = None;
        }
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| docker_error("create", &name, e))?;
        let result = self.follow_one_off(&name, timeout, on_line).await;
        self.remove_quietly(&name, "one-off container").await;
        result
    }

    /// Removes the one-off containers of `stack` left behind (an update whose deploy
    /// was killed goes on running, holding its locks); returns their names.
    ///
    /// # Errors
    /// [`Error::Docker`] when the engine cannot list them.
    pub async fn remove_stale_one_offs(&self, stack: &str) -> Result<Vec<String>> {
        let filters: HashMap<&str, Vec<String>> = HashMap::from([(
            "label",
            vec![format!("com.deployment.oneoff.stack={stack}")],
        )]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| docker_error("list", stack, e))?;
        let mut removed = Vec::new();
        for summary in summaries {
            let Some(name) = summary
                .names
                .and_then(|n| n.into_iter().next())
                .map(|n| n.trim_start_matches('/').to_owned())
            else {
                continue;
            };
            self.remove_quietly(&name, "stale one-off container").await;
            warn!(container = %name, "a one-off container of an earlier operation was still there: removed");
            removed.push(name);
        }
        Ok(removed)
    }

    /// Removes a helper container, whatever state it is in; a failure is logged.
    async fn remove_quietly(&self, name: &str, what: &str) {
        let removed = self
            .docker
            .remove_container(
                name,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await;
        if let Err(e) = removed {
            warn!(container = %name, error = %e, "cannot remove the {what}");
        }
    }

    async fn follow_one_off(
        &self,
        name: &str,
        timeout: Duration,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<OneOff> {
        let started = Instant::now();
        self.docker
            .start_container(
                name,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(|e| docker_error("start", name, e))?;
        info!(container = %name, "one-off container started");
        let options = LogsOptionsBuilder::new()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .build();
        let mut logs = self.docker.logs(name, Some(options));
        let mut partial = String::new();
        let mut lines = 0usize;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut timed_out = false;
        loop {
            match tokio::time::timeout_at(deadline, logs.next()).await {
                Err(_) => {
                    timed_out = true;
                    break;
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    warn!(container = %name, error = %e, "the one-off's log stream ended");
                    break;
                }
                Ok(Some(Ok(chunk))) => {
                    partial.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                    while let Some(end) = partial.find('\n') {
                        let line: String = partial.drain(..=end).collect();
                        on_line(line.trim_end_matches(['\n', '\r']));
                        lines += 1;
                    }
                }
            }
        }
        if !partial.is_empty() {
            on_line(partial.trim_end_matches(['\n', '\r']));
            lines += 1;
        }
        if timed_out {
            warn!(container = %name, timeout_s = timeout.as_secs_f64(), "one-off timed out: killed");
            if let Err(e) = self
                .docker
                .kill_container(
                    name,
                    None::<bollard::query_parameters::KillContainerOptions>,
                )
                .await
            {
                warn!(container = %name, error = %e, "cannot kill the one-off container");
            }
        }
        let exit_code = match self.docker.inspect_container(name, None).await {
            Ok(inspect) => inspect.state.and_then(|s| s.exit_code),
            Err(e) => return Err(docker_error("inspect", name, e)),
        };
        Ok(OneOff {
            exit_code,
            timed_out,
            lines,
            elapsed: started.elapsed(),
        })
    }

    /// The engine's id of `image`, or `None` when it does not have it.
    ///
    /// # Errors
    /// [`Error::Docker`] when the engine cannot be asked.
    pub async fn image_id(&self, image: &str) -> Result<Option<String>> {
        match self.docker.inspect_image(image).await {
            Ok(inspect) => Ok(Some(inspect.id.unwrap_or_default())),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(docker_error("inspect image", image, e)),
        }
    }

    /// Tags `source` (an image on the engine) as `target` (`registry/repository:tag`).
    ///
    /// # Errors
    /// [`Error::Image`] when `target` is not an image reference; [`Error::Docker`] when
    /// the engine refuses (no such `source`: 404).
    pub async fn tag_image(&self, source: &str, target: &str) -> Result<()> {
        let reference = ImageRef::parse(target).map_err(|detail| Error::Image {
            image: target.to_owned(),
            problem: ImageProblem::NotFound,
            detail,
        })?;
        let options = TagImageOptionsBuilder::new()
            .repo(&reference.name)
            .tag(reference.tag.as_deref().unwrap_or("latest"))
            .build();
        self.docker
            .tag_image(source, Some(options))
            .await
            .map_err(|e| docker_error("tag image", source, e))
    }

    /// Pushes `image` (`registry/repository:tag`, on the engine) to its registry.
    ///
    /// # Errors
    /// [`Error::Image`] when the registry refuses it, wants credentials or cannot be
    /// reached.
    pub async fn push_image(
        &self,
        image: &str,
        credentials: Option<&RegistryCredentials>,
    ) -> Result<()> {
        let reference = ImageRef::parse(image).map_err(|detail| Error::Image {
            image: image.to_owned(),
            problem: ImageProblem::NotFound,
            detail,
        })?;
        let options = PushImageOptionsBuilder::new()
            .tag(reference.tag.as_deref().unwrap_or("latest"))
            .build();
        let mut stream = self.docker.push_image(
            &reference.name,
            Some(options),
            credentials.map(RegistryCredentials::to_docker),
        );
        while let Some(item) = stream.next().await {
            let failure = match item {
                Ok(line) => line.error_detail.and_then(|d| d.message),
                Err(BollardError::DockerStreamError { error }) => Some(error),
                Err(BollardError::DockerResponseServerError { message, .. }) => Some(message),
                Err(other) => Some(other.to_string()),
            };
            if let Some(detail) = failure {
                return Err(Error::Image {
                    image: image.to_owned(),
                    problem: ImageProblem::classify(&detail),
                    detail,
                });
            }
        }
        debug!(image, "image pushed");
        Ok(())
    }

    /// Removes the engine's `image` tag (the layers stay while another tag uses them).
    /// A missing image is not an error: `false` says there was none.
    ///
    /// # Errors
    /// [`Error::Docker`] when the engine refuses (a container uses it: 409).
    pub async fn remove_image(&self, image: &str) -> Result<bool> {
        match self
            .docker
            .remove_image(
                image,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if status_of(&e) == Some(404) => Ok(false),
            Err(e) => Err(docker_error("remove image", image, e)),
        }
    }

    /// The slot's last `tail` log lines, stdout and stderr.
    ///
    /// # Errors
    /// [`Error::SlotNotFound`]; [`Error::Docker`].
    pub async fn logs(&self, stack: &str, slot: Slot, tail: usize) -> Result<String> {
        let name = container_name(stack, slot);
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail(&tail.to_string())
            .build();
        let mut stream = self.docker.logs(&name, Some(options));
        let mut text = String::new();
        // Bounded: `tail` lines of a non-following stream.
        while let Some(item) = stream.next().await {
            match item {
                Ok(output) => text.push_str(&String::from_utf8_lossy(output.as_ref())),
                Err(e) if status_of(&e) == Some(404) => {
                    return Err(Error::SlotNotFound {
                        stack: stack.to_owned(),
                        slot,
                    })
                }
                Err(e) => return Err(docker_error("logs", &name, e)),
            }
        }
        Ok(text)
    }
}

/// Polls `url` until it answers 200 or `options.timeout` passes; returns how long it took.
///
/// # Errors
/// [`Error::NotReady`] on timeout; [`Error::HttpClient`] when no client can be built.
pub async fn wait_ready(url: &str, options: &ReadyOptions) -> Result<Duration> {
    let started = Instant::now();
    let client = http_client(options.request_timeout)?;
    let mut attempts = 0u32;
    let mut last;
    loop {
        attempts += 1;
        match client.get(url).send().await {
            Ok(response) if response.status().as_u16() == 200 => return Ok(started.elapsed()),
            Ok(response) => last = format!("HTTP {}", response.status().as_u16()),
            Err(e) => last = format!("{e}"),
        }
        if started.elapsed() >= options.timeout {
            return Err(Error::NotReady {
                url: url.to_owned(),
                waited: started.elapsed(),
                attempts,
                last,
            });
        }
        tokio::time::sleep(options.interval).await;
    }
}

fn http_client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| Error::HttpClient { cause: Box::new(e) })
}

fn unavailable(e: BollardError) -> Error {
    Error::DockerUnavailable {
        message: e.to_string(),
        source: Box::new(e),
    }
}

fn status_of(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

fn docker_error(operation: &'static str, target: &str, e: BollardError) -> Error {
    let (status_code, message) = match &e {
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => (Some(*status_code), message.clone()),
        other => (None, other.to_string()),
    };
    Error::Docker {
        operation,
        target: target.to_owned(),
        status_code,
        message,
        source: Box::new(e),
    }
}

/// A random number for a throwaway container's name.
fn fastrand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    nanos ^ std::process::id().rotate_left(16)
}

fn port_key(port: u16) -> String {
    format!("{port}/tcp")
}

fn create_body(spec: &SlotSpec) -> ContainerCreateBody {
    let mut labels = HashMap::from([
        (LABEL_STACK.to_owned(), spec.stack.clone()),
        (LABEL_SLOT.to_owned(), spec.slot.as_str().to_owned()),
        (LABEL_RELEASE.to_owned(), spec.release.clone()),
        (LABEL_IMAGE.to_owned(), spec.image.clone()),
        (
            LABEL_HTTP_PORT.to_owned(),
            spec.http.container_port.to_string(),
        ),
    ]);
    if let Some(realtime) = spec.realtime {
        labels.insert(
            LABEL_REALTIME_PORT.to_owned(),
            realtime.container_port.to_string(),
        );
    }
    let env: Vec<String> = spec
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(
            spec.secret_env
                .iter()
                .map(|(k, v)| format!("{k}={}", v.expose_secret())),
        )
        .collect();
    let mut exposed = Vec::new();
    let mut bindings = HashMap::new();
    for port in std::iter::once(spec.http).chain(spec.realtime) {
        exposed.push(port_key(port.container_port));
        bindings.insert(
            port_key(port.container_port),
            Some(vec![PortBinding {
                host_ip: Some(LOOPBACK.to_string()),
                host_port: Some(if port.host_port == 0 {
                    String::new()
                } else {
                    port.host_port.to_string()
                }),
            }]),
        );
    }
    let mounts = spec
        .mounts
        .iter()
        .map(|m| {
            let (typ, source) = match &m.source {
                MountSource::Volume(name) => (MountType::VOLUME, name.clone()),
                MountSource::Bind(path) => (MountType::BIND, path.to_string_lossy().into_owned()),
            };
            DockerMount {
                target: Some(m.target.clone()),
                source: Some(source),
                typ: Some(typ),
                read_only: Some(m.read_only),
                ..Default::default()
            }
        })
        .collect();
    let host_config = HostConfig {
        port_bindings: Some(bindings),
        mounts: Some(mounts),
        memory: spec
            .limits
            .memory_bytes
            .map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
        nano_cpus: spec.limits.cpus.map(|c| (c * 1e9).round() as i64),
        network_mode: spec.network.clone(),
        ..Default::default()
    };
    let networking_config = spec.network.as_ref().map(|network| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            network.clone(),
            EndpointSettings::default(),
        )])),
    });
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: (!spec.args.is_empty()).then(|| spec.args.clone()),
        env: Some(env),
        labels: Some(labels),
        exposed_ports: Some(exposed),
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    }
}

fn container_info(response: ContainerInspectResponse) -> Result<ContainerInfo> {
    let name = response
        .name
        .as_deref()
        .map(|n| n.trim_start_matches('/').to_owned())
        .unwrap_or_default();
    let missing = |field: &'static str| Error::UnexpectedContainer {
        container: name.clone(),
        field,
        problem: "is missing".to_owned(),
    };
    let id = response.id.clone().ok_or_else(|| missing("Id"))?;
    let labels: BTreeMap<String, String> = response
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    let label = |key: &'static str| labels.get(key).cloned().ok_or_else(|| missing(key));
    let stack = label(LABEL_STACK)?;
    let slot_text = label(LABEL_SLOT)?;
    let slot: Slot = slot_text.parse().map_err(|_| Error::UnexpectedContainer {
        container: name.clone(),
        field: LABEL_SLOT,
        problem: format!("is {slot_text:?}, not blue or green"),
    })?;
    let release = label(LABEL_RELEASE)?;
    let image = label(LABEL_IMAGE)?;
    let state = response.state.as_ref().ok_or_else(|| missing("State"))?;
    let status = match state.status {
        Some(ContainerStateStatusEnum::CREATED) => ContainerStatus::Created,
        Some(ContainerStateStatusEnum::RUNNING) => ContainerStatus::Running,
        Some(ContainerStateStatusEnum::PAUSED) => ContainerStatus::Paused,
        Some(ContainerStateStatusEnum::RESTARTING) => ContainerStatus::Restarting,
        Some(ContainerStateStatusEnum::REMOVING) => ContainerStatus::Removing,
        Some(ContainerStateStatusEnum::EXITED) => ContainerStatus::Exited,
        Some(ContainerStateStatusEnum::DEAD) => ContainerStatus::Dead,
        _ => ContainerStatus::Unknown,
    };
    let exit_code = match status {
        ContainerStatus::Exited | ContainerStatus::Dead => state.exit_code,
        _ => None,
    };
    let health = match state.health.as_ref().and_then(|h| h.status) {
        Some(HealthStatusEnum::STARTING) => HealthStatus::Starting,
        Some(HealthStatusEnum::HEALTHY) => HealthStatus::Healthy,
        Some(HealthStatusEnum::UNHEALTHY) => HealthStatus::Unhealthy,
        _ => HealthStatus::None,
    };
    let ports = response
        .network_settings
        .as_ref()
        .and_then(|n| n.ports.clone())
        .unwrap_or_default();
    let port_label = |key: &'static str| -> Result<Option<u16>> {
        labels
            .get(key)
            .map(|v| {
                v.parse::<u16>().map_err(|_| Error::UnexpectedContainer {
                    container: name.clone(),
                    field: key,
                    problem: format!("is {v:?}, not a port"),
                })
            })
            .transpose()
    };
    let http_port = port_label(LABEL_HTTP_PORT)?.unwrap_or(crate::slot::ODOO_HTTP_PORT);
    let realtime_port = port_label(LABEL_REALTIME_PORT)?;
    let published = |container_port: u16| -> Option<SocketAddr> {
        let bindings = ports.get(&port_key(container_port))?.as_ref()?;
        bindings.iter().find_map(|b| {
            let ip: IpAddr = b.host_ip.as_deref()?.parse().ok()?;
            let port: u16 = b.host_port.as_deref()?.parse().ok()?;
            (ip == LOOPBACK && port != 0).then_some(SocketAddr::new(ip, port))
        })
    };
    let created = response
        .created
        .as_deref()
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map(|c| c.with_timezone(&chrono::Utc));
    Ok(ContainerInfo {
        id,
        name,
        stack,
        slot,
        release,
        image,
        status,
        created,
        exit_code,
        health,
        http: published(http_port),
        realtime: realtime_port.and_then(published),
        labels,
    })
}
