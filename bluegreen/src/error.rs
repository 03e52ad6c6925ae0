//! The crate's one error type.
//!
//! Callers branch on variants and their fields (a Docker status code, the slot, the
//! proxy's stderr), never on the message text. Foreign error types (bollard's, reqwest's)
//! are kept as boxed sources so that they do not become part of this crate's API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::lock::LockHolder;
use crate::slot::Slot;

/// A boxed foreign error, kept as the `source` of a variant.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with this crate's [`enum@Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with slots, switches and verification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Docker engine could not be reached (socket missing, version negotiation failed).
    #[error("cannot reach the docker engine: {message}")]
    DockerUnavailable {
        /// What the client said.
        message: String,
        /// The client's error.
        #[source]
        source: BoxError,
    },

    /// The Docker engine answered an API call with an error, or the call failed in transit.
    #[error("docker {operation} {target}: {message}")]
    Docker {
        /// The API operation (`create`, `start`, `inspect`, ...).
        operation: &'static str,
        /// The container (or image) the call was about.
        target: String,
        /// Docker's HTTP status code, when the engine answered (404, 409, 500, ...).
        status_code: Option<u16>,
        /// Docker's message.
        message: String,
        /// The client's error.
        #[source]
        source: BoxError,
    },

    /// The release's image is not on the engine and could not be pulled, or its
    /// registry's credentials could not be read. Nothing was started.
    #[error("image {image}: {problem}: {detail}; {}", problem.fix())]
    Image {
        /// The image reference.
        image: String,
        /// Why.
        problem: crate::registry::ImageProblem,
        /// What the engine (or the credentials' source) said.
        detail: String,
    },

    /// A container with the slot's name exists but belongs to another stack, slot,
    /// release or image: it is not reused, and it is not removed either.
    #[error("container {container} exists with other labels (expected release {expected_release} of image {expected_image}, found {found_labels:?})")]
    NameConflict {
        /// The container name (`<stack>-<slot>`).
        container: String,
        /// The release label the caller asked for.
        expected_release: String,
        /// The image the caller asked for.
        expected_image: String,
        /// The `com.deployment.*` labels found on the existing container.
        found_labels: Vec<(String, String)>,
    },

    /// The slot has no container.
    #[error("slot {slot} of stack {stack} has no container")]
    SlotNotFound {
        /// The stack.
        stack: String,
        /// The slot.
        slot: Slot,
    },

    /// Docker returned a container without a field this crate needs, or with a value it
    /// cannot read (a missing port binding, a label that is not a slot name, ...).
    #[error("container {container}: {field} {problem}")]
    UnexpectedContainer {
        /// The container.
        container: String,
        /// The field (`State`, `NetworkSettings.Ports`, `com.deployment.slot`, ...).
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },

    /// A slot's container was started but did not become ready: it exited, or its health
    /// URL never answered 200 within the timeout. The container's last log lines are kept.
    #[error("slot {slot} ({container}) failed to start: {reason}; last log lines:\n{logs}")]
    SlotFailedToStart {
        /// The slot.
        slot: Slot,
        /// The container name.
        container: String,
        /// Why it is considered failed.
        reason: StartFailure,
        /// The container's last log lines (stdout and stderr, interleaved as Docker keeps them).
        logs: String,
    },

    /// A health URL did not answer 200 within the timeout.
    #[error("{url} not ready after {waited:?} ({attempts} attempts, last: {last})")]
    NotReady {
        /// The URL polled.
        url: String,
        /// How long it was polled.
        waited: Duration,
        /// How many requests were sent.
        attempts: u32,
        /// The last status code or transport error seen.
        last: String,
    },

    /// A file could not be read, written, renamed or synced.
    #[error("{operation} {path}: {cause}")]
    Io {
        /// What was being done (`write`, `rename`, `read`, ...).
        operation: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },

    /// A proxy's command (`nginx -s reload`, `kill -HUP`, ...) could not run or failed.
    #[error("{program} {args:?} failed ({status}): {stderr}")]
    ProxyCommand {
        /// The program.
        program: String,
        /// Its arguments.
        args: Vec<String>,
        /// Its exit status, or why it did not run.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },

    /// `nginx -t` refused the new configuration. The previous managed file was restored and
    /// nginx was not reloaded: traffic is untouched.
    #[error("nginx refused the new configuration in {file}: {stderr}")]
    NginxConfigInvalid {
        /// The managed file that was tried (and restored).
        file: PathBuf,
        /// nginx's stderr from `nginx -t`.
        stderr: String,
        /// The configuration text that was refused, for the person reading the error.
        rejected: String,
    },

    /// HAProxy's admin socket could not be reached or the exchange failed.
    #[error("haproxy admin socket {socket}: {cause}")]
    HaproxySocket {
        /// The socket path.
        socket: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },

    /// HAProxy answered a runtime API command with an error.
    #[error("haproxy refused `{command}`: {response}")]
    HaproxyCommand {
        /// The command sent.
        command: String,
        /// HAProxy's answer.
        response: String,
    },

    /// A proxy's live state could not be understood (an unexpected `show servers state`
    /// line, a state directory that does not look like ours, ...).
    #[error("cannot read the {proxy} state: {problem}")]
    ProxyState {
        /// `nginx`, `haproxy` or `traefik`.
        proxy: &'static str,
        /// What could not be read.
        problem: String,
    },

    /// A deploy left the proxy in maintenance on purpose: the database cannot be served
    /// by either release (an update that failed and could not be undone).
    #[error("{reason}")]
    MaintenanceHeld {
        /// What happened and what to do.
        reason: String,
    },

    /// The proxy cannot put the stack into maintenance.
    #[error("{proxy} cannot go into maintenance: {reason}")]
    MaintenanceUnsupported {
        /// Which proxy.
        proxy: crate::switch::ProxyKind,
        /// Why, with the fix when there is one.
        reason: String,
    },

    /// The weights given to `set_weights` are not usable (empty, both slots zero, a slot
    /// given twice, or a slot the switch does not manage).
    #[error("invalid weights: {reason}")]
    InvalidWeights {
        /// Why.
        reason: String,
    },

    /// The switch was asked to route to an address it cannot express (for example an
    /// address the proxy configuration was not set up with).
    #[error("backend {slot} at {addr} is not usable: {reason}")]
    InvalidBackend {
        /// The slot.
        slot: Slot,
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },

    /// A configuration file could not be generated (serialization failed).
    #[error("cannot render {what}: {message}")]
    Render {
        /// What was being rendered.
        what: &'static str,
        /// The serializer's message.
        message: String,
    },

    /// Verification through the proxy did not see enough consecutive responses from the
    /// intended release before the timeout.
    #[error(
        "{url}: {expected} not seen {needed} times in a row within {waited:?} (seen: {seen:?})"
    )]
    VerifyTimeout {
        /// The URL requested through the proxy.
        url: String,
        /// What was expected: the release (`X-Odoo-Release`) and its slot (`X-Deploy-Slot`).
        expected: String,
        /// How many consecutive matching responses were needed.
        needed: u32,
        /// How long it tried.
        waited: Duration,
        /// Each label seen (`<none>` for a missing header, `<error: ...>` for failures)
        /// with its count.
        seen: Vec<(String, u64)>,
    },

    /// An HTTP client could not be built.
    #[error("cannot build the http client: {cause}")]
    HttpClient {
        /// The client's error.
        cause: BoxError,
    },

    /// Another process holds the stack's lock: a deploy, rollback, canary or switch is
    /// under way. Nothing was changed.
    #[error("stack {stack} is locked by {} (lock file {})", describe_holder(holder.as_deref()), path.display())]
    LockHeld {
        /// The stack.
        stack: String,
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as it wrote itself into the lock file (`None` when the file
        /// could not be read in time).
        holder: Option<Box<LockHolder>>,
    },

    /// The stack file could not be parsed (TOML syntax, a wrong type, an unknown key).
    #[error("stack file {}: {message}", path.as_ref().map_or_else(|| "<inline>".to_owned(), |p| p.display().to_string()))]
    ConfigParse {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// The parser's message (with line and column).
        message: String,
    },

    /// A value of the stack configuration is not usable.
    #[error("stack configuration: {field}: {reason}")]
    Config {
        /// The field, as a TOML path (`slots.blue.http_port`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A gate plan of the stack could not be loaded or its gates could not be built
    /// (an invalid plan, a secret that does not resolve, a kind without factory).
    #[error("{plan} gate plan: {cause}")]
    Plan {
        /// `pre_switch` or `post_switch`.
        plan: &'static str,
        /// The gate crate's error.
        cause: deploy_gates::Error,
    },

    /// A secret of the stack configuration (a slot's secret environment variable) did
    /// not resolve. The error names where it comes from, never its value.
    #[error("stack configuration: {field}: {cause}")]
    Secret {
        /// The field (`slots.secret_env.PGPASSWORD`).
        field: String,
        /// Why it did not resolve.
        cause: deploy_core::Error,
    },

    /// A rollback found no slot to go back to: the slot that does not serve has no
    /// container.
    #[error("nothing to roll back to: slot {slot} of stack {stack} has no container")]
    NoPreviousSlot {
        /// The stack.
        stack: String,
        /// The slot that would have been switched to.
        slot: Slot,
    },

    /// A switch was asked to a slot whose container does not run.
    #[error("slot {slot} of stack {stack} is not running: deploy or roll back to start it")]
    SlotNotRunning {
        /// The stack.
        stack: String,
        /// The slot.
        slot: Slot,
    },

    /// A redeploy through the [`Deployer`](deploy_core::Deployer) trait was refused: the
    /// release did not start or did not pass its gates, and the release that served
    /// before still serves.
    #[error("release {release} was refused: {reason}")]
    Refused {
        /// The release asked for.
        release: String,
        /// Why (the operation report's reason).
        reason: String,
    },

    /// A [stage](deploy_core::DeployStage) of the deploy failed: nothing was started, or
    /// traffic went back to the old slot. Its class is the stage error's.
    #[error("stage {stage} failed")]
    Stage {
        /// The stage's name.
        stage: String,
        /// What went wrong (its message and causes).
        #[source]
        source: deploy_core::ClassifiedError,
    },

    /// No slot runs the release asked for (a redeploy needs the container, or an image
    /// to start one).
    #[error("no slot of stack {stack} runs release {release}")]
    ReleaseNotFound {
        /// The stack.
        stack: String,
        /// The release.
        release: String,
    },
}

fn describe_holder(holder: Option<&LockHolder>) -> String {
    holder.map_or_else(|| "another process".to_owned(), ToString::to_string)
}

/// Why a started slot is considered failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartFailure {
    /// The container stopped running.
    Exited {
        /// Its exit code, when Docker reports one.
        exit_code: Option<i64>,
        /// Docker's error text for the container, when any (e.g. an unknown entrypoint).
        error: Option<String>,
    },
    /// The container runs but its health URL did not answer 200 in time.
    NotReady {
        /// The URL polled.
        url: String,
        /// How long it was polled.
        waited: Duration,
        /// The last status code or transport error seen.
        last: String,
    },
    /// Docker refused to start it (port already allocated, missing image, ...).
    StartRefused {
        /// Docker's status code.
        status_code: Option<u16>,
        /// Docker's message.
        message: String,
    },
}

impl std::fmt::Display for StartFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exited { exit_code, error } => {
                write!(f, "container exited")?;
                if let Some(code) = exit_code {
                    write!(f, " with code {code}")?;
                }
                if let Some(error) = error.as_deref().filter(|e| !e.is_empty()) {
                    write!(f, " ({error})")?;
                }
                Ok(())
            }
            Self::NotReady { url, waited, last } => {
                write!(f, "{url} not ready after {waited:?} (last: {last})")
            }
            Self::StartRefused {
                status_code,
                message,
            } => match status_code {
                Some(code) => write!(f, "docker refused to start it ({code}): {message}"),
                None => write!(f, "docker refused to start it: {message}"),
            },
        }
    }
}

impl deploy_core::Classify for Error {
    /// [`ErrorClass::Refused`](deploy_core::ErrorClass::Refused) for
    /// [refusals](Error::is_refusal), `Config` for [configuration](Error::is_config)
    /// errors, a failed stage's own class, else `Infrastructure`.
    fn class(&self) -> deploy_core::ErrorClass {
        use deploy_core::ErrorClass;
        match self {
            Self::Stage { source, .. } => source.class(),
            e if e.is_refusal() => ErrorClass::Refused,
            e if e.is_config() => ErrorClass::Config,
            _ => ErrorClass::Infrastructure,
        }
    }
}

impl Error {
    /// Whether the error is in the configuration (the stack file, a gate plan, a secret
    /// reference): fixing a file fixes it, and nothing was changed.
    #[must_use]
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            Self::ConfigParse { .. }
                | Self::Config { .. }
                | Self::Plan { .. }
                | Self::Secret { .. }
                | Self::MaintenanceUnsupported { .. }
        ) || matches!(self, Self::Image { problem, .. } if problem.is_config())
    }

    /// Whether the operation was refused with nothing changed, as a verdict rather than a
    /// failure: nothing to roll back to ([`Error::NoPreviousSlot`]), a release that is
    /// not there ([`Error::ReleaseNotFound`]), a redeploy its gates refused
    /// ([`Error::Refused`]). The binaries exit 1 for these.
    #[must_use]
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::NoPreviousSlot { .. } | Self::ReleaseNotFound { .. } | Self::Refused { .. }
        )
    }

    /// Docker's HTTP status code, for [`Error::Docker`].
    #[must_use]
    pub fn docker_status(&self) -> Option<u16> {
        match self {
            Self::Docker { status_code, .. } => *status_code,
            _ => None,
        }
    }

    pub(crate) fn io(
        operation: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            operation,
            path: path.into(),
            cause: source,
        }
    }
}
