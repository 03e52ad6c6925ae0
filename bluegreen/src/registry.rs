//! Images from a registry: which registry an image reference names, the credentials for
//! it, and what the engine said when a pull failed.
//!
//! Credentials never come from the command line. They are looked up, in this order:
//!
//! 1. `ODOO_DEPLOY_REGISTRY_USER` and `ODOO_DEPLOY_REGISTRY_PASSWORD` in the environment
//!    (both or neither), for the registry `ODOO_DEPLOY_REGISTRY` names, or for any
//!    registry when it is unset;
//! 2. `DOCKER_AUTH_CONFIG`: the text of a Docker `config.json`, as CI systems provide it;
//! 3. Docker's own `config.json` (`$DOCKER_CONFIG/config.json`, else
//!    `~/.docker/config.json`): the registry's credential helper (`credHelpers`), its
//!    `auths` entry (`auth` is base64 of `user:password`; or `username`/`password`; or an
//!    `identitytoken`), else the default store (`credsStore`). A helper is run as Docker
//!    runs it: `docker-credential-<name> get` with the server on stdin.
//!
//! None of them is an answer too: a public image needs none.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The registry of images named without one (`odoo:17.0`).
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The key Docker's `config.json` uses for [`DEFAULT_REGISTRY`].
pub const DEFAULT_REGISTRY_KEY: &str = "https://index.docker.io/v1/";
/// User name of the environment's credentials.
pub const ENV_USER: &str = "ODOO_DEPLOY_REGISTRY_USER";
/// Password (or token) of the environment's credentials.
pub const ENV_PASSWORD: &str = "ODOO_DEPLOY_REGISTRY_PASSWORD";
/// The registry the environment's credentials are for (a host, `host:port`); unset: any.
pub const ENV_REGISTRY: &str = "ODOO_DEPLOY_REGISTRY";
/// The text of a Docker `config.json`, as CI systems pass it.
pub const ENV_AUTH_CONFIG: &str = "DOCKER_AUTH_CONFIG";

/// An image reference split as Docker splits it: `[registry/]repository[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry host (`127.0.0.1:5000`, `ghcr.io`), [`DEFAULT_REGISTRY`] when the
    /// reference names none.
    pub registry: String,
    /// The repository inside it (`library/odoo` for `odoo`).
    pub repository: String,
    /// The tag; `latest` when the reference has neither tag nor digest.
    pub tag: Option<String>,
    /// The digest (`sha256:...`), when the reference pins one.
    pub digest: Option<String>,
    /// The reference as written, without the implied parts.
    pub name: String,
}

impl ImageRef {
    /// Splits `reference`.
    ///
    /// # Errors
    /// A message when it is empty, has spaces or upper-case letters in the repository,
    /// or an empty component.
    pub fn parse(reference: &str) -> Result<Self, String> {
        let reference = reference.trim();
        if reference.is_empty() {
            return Err("the image reference is empty".to_owned());
        }
        if reference.chars().any(char::is_whitespace) {
            return Err(format!("image reference {reference:?} contains a space"));
        }
        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => {
                if !digest.contains(':') {
                    return Err(format!(
                        "image reference {reference:?}: the digest must be algorithm:hex"
                    ));
                }
                (rest, Some(digest.to_owned()))
            }
            None => (reference, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_owned()),
            ),
            None => (rest, None),
        };
        if tag.as_deref() == Some("") {
            return Err(format!("image reference {reference:?} has an empty tag"));
        }
        let (registry, repository) = match path.split_once('/') {
            Some((first, repo))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), repo.to_owned())
            }
            _ => (DEFAULT_REGISTRY.to_owned(), path.to_owned()),
        };
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.is_empty() || repository.split('/').any(str::is_empty) {
            return Err(format!(
                "image reference {reference:?} has an empty path component"
            ));
        }
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!(
                "image reference {reference:?}: repository names are lower case"
            ));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_owned())
        } else {
            tag
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
            name: path.to_owned(),
        })
    }

    /// What Docker's pull API takes as `tag`: the digest when pinned, else the tag.
    #[must_use]
    pub fn tag_or_digest(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The keys Docker's `config.json` may file this registry's credentials under.
    #[must_use]
    pub fn config_keys(&self) -> Vec<String> {
        if self.registry == DEFAULT_REGISTRY {
            return vec![
                DEFAULT_REGISTRY_KEY.to_owned(),
                "index.docker.io".to_owned(),
                "docker.io".to_owned(),
                "registry-1.docker.io".to_owned(),
            ];
        }
        let host = &self.registry;
        vec![
            host.clone(),
            format!("https://{host}"),
            format!("http://{host}"),
            format!("https://{host}/v1/"),
            format!("https://{host}/v2/"),
        ]
    }

    /// The server address sent to the engine and to credential helpers.
    #[must_use]
    pub fn server_address(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            DEFAULT_REGISTRY_KEY.to_owned()
        } else {
            self.registry.clone()
        }
    }
}

/// Credentials for one registry. `Debug` shows the user and where they came from, never
/// the password or token.
#[derive(Clone)]
pub struct RegistryCredentials {
    /// The registry they are for, as sent to the engine.
    pub server: String,
    /// The user name (absent with an identity token).
    pub username: Option<String>,
    /// The password or access token.
    pub password: Option<SecretString>,
    /// An OAuth identity token (from `docker login` against registries that issue one).
    pub identity_token: Option<SecretString>,
    /// Where they were found (`environment ODOO_DEPLOY_REGISTRY_USER`, a file, a helper).
    pub source: String,
}

impl fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryCredentials")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field(
                "identity_token",
                &self.identity_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("source", &self.source)
            .finish()
    }
}

impl RegistryCredentials {
    /// What the engine's API takes (bollard's type); the secrets leave their wrappers
    /// only here, for the request header.
    #[must_use]
    pub fn to_docker(&self) -> bollard::auth::DockerCredentials {
        bollard::auth::DockerCredentials {
            username: self.username.clone(),
            password: self.password.as_ref().map(|p| p.expose_secret().to_owned()),
            serveraddress: Some(self.server.clone()),
            identitytoken: self
                .identity_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            ..Default::default()
        }
    }

    /// One line for reports: the user and the source, no secret.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.username {
            Some(user) => format!("user {user} from {}", self.source),
            None => format!("an identity token from {}", self.source),
        }
    }
}

/// Why credentials could not be read (a config file that does not parse, a helper that
/// fails, half of the environment's pair).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("registry credentials from {source_name}: {problem}")]
pub struct CredentialsError {
    /// Where they were looked up.
    pub source_name: String,
    /// What is wrong, with the fix.
    pub problem: String,
}

/// Where credentials are looked up: the environment and the home directory, so that a
/// test (or an embedding program) can give others than the process's own.
#[derive(Debug, Clone, Default)]
pub struct CredentialLookup {
    vars: BTreeMap<String, String>,
    home: Option<PathBuf>,
}

impl CredentialLookup {
    /// The process's environment and `$HOME`.
    #[must_use]
    pub fn from_process() -> Self {
        let names = [
            ENV_USER,
            ENV_PASSWORD,
            ENV_REGISTRY,
            ENV_AUTH_CONFIG,
            "DOCKER_CONFIG",
        ];
        let vars = names
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|v| ((*name).to_owned(), v)))
            .collect();
        Self {
            vars,
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }

    /// No environment and no home: only what [`CredentialLookup::var`] and
    /// [`CredentialLookup::home`] add.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// With an environment variable set.
    #[must_use]
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }

    /// With a home directory (its `.docker/config.json` is read).
    #[must_use]
    pub fn home(mut self, home: &Path) -> Self {
        self.home = Some(home.to_path_buf());
        self
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The Docker `config.json` this lookup reads.
    #[must_use]
    pub fn docker_config_path(&self) -> Option<PathBuf> {
        if let Some(dir) = self.get("DOCKER_CONFIG") {
            return Some(Path::new(dir).join("config.json"));
        }
        self.home.as_ref().map(|h| h.join(".docker/config.json"))
    }

    /// The credentials for `image`'s registry, or `None` when nothing names it.
    ///
    /// # Errors
    /// [`CredentialsError`] when a source that applies is broken: only one of the
    /// environment's pair is set, a `config.json` does not parse or has an `auth` that is
    /// not base64 of `user:password`, a credential helper cannot run or fails otherwise
    /// than with "credentials not found".
    pub fn credentials_for(
        &self,
        image: &ImageRef,
    ) -> Result<Option<RegistryCredentials>, CredentialsError> {
        if let Some(found) = self.environment_credentials(image)? {
            return Ok(Some(found));
        }
        if let Some(text) = self.get(ENV_AUTH_CONFIG) {
            let source = format!("environment {ENV_AUTH_CONFIG}");
            let config = parse_config(text, &source)?;
            if let Some(found) = config.lookup(image, &source)? {
                return Ok(Some(found));
            }
        }
        let Some(path) = self.docker_config_path() else {
            return Ok(None);
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(CredentialsError {
                    source_name: path.display().to_string(),
                    problem: format!("cannot be read: {e}"),
                })
            }
        };
        let source = path.display().to_string();
        parse_config(&text, &source)?.lookup(image, &source)
    }

    fn environment_credentials(
        &self,
        image: &ImageRef,
    ) -> Result<Option<RegistryCredentials>, CredentialsError> {
        let user = self.get(ENV_USER);
        let password = self.get(ENV_PASSWORD);
        let (user, password) = match (user, password) {
            (None, None) => return Ok(None),
            (Some(user), Some(password)) => (user, password),
            (Some(_), None) | (None, Some(_)) => {
                return Err(CredentialsError {
                    source_name: "the environment".to_owned(),
                    problem: format!("set both {ENV_USER} and {ENV_PASSWORD}, or neither"),
                })
            }
        };
        if let Some(registry) = self.get(ENV_REGISTRY) {
            let wanted = normalize_server(registry);
            if wanted != normalize_server(&image.registry)
                && !(image.registry == DEFAULT_REGISTRY
                    && image
                        .config_keys()
                        .iter()
                        .any(|k| normalize_server(k) == wanted))
            {
                return Ok(None);
            }
        }
        Ok(Some(RegistryCredentials {
            server: image.server_address(),
            username: Some(user.to_owned()),
            password: Some(SecretString::from(password.to_owned())),
            identity_token: None,
            source: format!("environment {ENV_USER}"),
        }))
    }
}

/// `https://host/v2/` and `host` name the same server.
fn normalize_server(server: &str) -> String {
    let s = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    s.split('/').next().unwrap_or(s).to_ascii_lowercase()
}

#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

fn parse_config(text: &str, source: &str) -> Result<DockerConfig, CredentialsError> {
    serde_json::from_str(text).map_err(|e| CredentialsError {
        source_name: source.to_owned(),
        problem: format!("is not a Docker config.json ({e})"),
    })
}

impl DockerConfig {
    fn lookup(
        &self,
        image: &ImageRef,
        source: &str,
    ) -> Result<Option<RegistryCredentials>, CredentialsError> {
        let keys = image.config_keys();
        let wanted: Vec<String> = keys.iter().map(|k| normalize_server(k)).collect();
        let matches = |key: &str| wanted.contains(&normalize_server(key));
        if let Some(helper) = self
            .cred_helpers
            .iter()
            .find(|(key, _)| matches(key))
            .map(|(_, helper)| helper)
        {
            return run_helper(helper, image);
        }
        if let Some((key, entry)) = self.auths.iter().find(|(key, _)| matches(key)) {
            if let Some(found) = entry.credentials(image, &format!("{source} (auths.{key})"))? {
                return Ok(Some(found));
            }
        }
        match &self.creds_store {
            Some(store) if !store.is_empty() => run_helper(store, image),
            _ => Ok(None),
        }
    }
}

impl AuthEntry {
    fn credentials(
        &self,
        image: &ImageRef,
        source: &str,
    ) -> Result<Option<RegistryCredentials>, CredentialsError> {
        let server = image.server_address();
        if let Some(auth) = self.auth.as_deref().filter(|a| !a.is_empty()) {
            let broken = |why: &str| CredentialsError {
                source_name: source.to_owned(),
                problem: format!(
                    "`auth` {why}: it must be base64 of user:password (docker login writes it)"
                ),
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| broken("is not base64"))?;
            let text = String::from_utf8(bytes).map_err(|_| broken("is not UTF-8"))?;
            let (user, password) = text.split_once(':').ok_or_else(|| broken("has no ':'"))?;
            return Ok(Some(RegistryCredentials {
                server,
                username: Some(user.to_owned()),
                password: Some(SecretString::from(password.to_owned())),
                identity_token: None,
                source: source.to_owned(),
            }));
        }
        if let Some(token) = self.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Some(RegistryCredentials {
                server,
                username: self.username.clone(),
                password: None,
                identity_token: Some(SecretString::from(token.to_owned())),
                source: source.to_owned(),
            }));
        }
        match (&self.username, &self.password) {
            (Some(user), Some(password)) => Ok(Some(RegistryCredentials {
                server,
                username: Some(user.clone()),
                password: Some(SecretString::from(password.clone())),
                identity_token: None,
                source: source.to_owned(),
            })),
            _ => Ok(None),
        }
    }
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-<helper> get` as Docker does.
fn run_helper(
    helper: &str,
    image: &ImageRef,
) -> Result<Option<RegistryCredentials>, CredentialsError> {
    let program = format!("docker-credential-{helper}");
    let failed = |problem: String| CredentialsError {
        source_name: program.clone(),
        problem,
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            failed(format!(
                "cannot be run ({e}): install it, or remove \"{helper}\" from Docker's config.json"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(image.server_address().as_bytes())
            .map_err(|e| failed(format!("cannot be given the server: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| failed(format!("did not finish: {e}")))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stdout).trim().to_owned()
            + String::from_utf8_lossy(&output.stderr).trim();
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(failed(format!("failed ({}): {said}", output.status)));
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout)
        .map_err(|e| failed(format!("answered something that is not its JSON ({e})")))?;
    let secret = SecretString::from(answer.secret);
    let (username, password, identity_token) = if answer.username == "<token>" {
        (None, None, Some(secret))
    } else {
        (Some(answer.username), Some(secret), None)
    };
    Ok(Some(RegistryCredentials {
        server: image.server_address(),
        username,
        password,
        identity_token,
        source: program,
    }))
}

/// When a deploy pulls the image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullPolicy {
    /// Only when the engine does not have it (the default).
    #[default]
    Missing,
    /// Every time (a moving tag such as `uat-latest`).
    Always,
    /// Never: an image that is not on the engine fails the deploy.
    Never,
}

impl PullPolicy {
    /// The stack file's spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Always => "always",
            Self::Never => "never",
        }
    }
}

/// Why an image could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageProblem {
    /// The registry has no such repository or tag (or the engine does not, with
    /// `pull = "never"`).
    NotFound,
    /// The registry refused the credentials, or wants some and none were found.
    Unauthorized,
    /// The credentials could not be read.
    BadCredentials,
    /// The registry could not be reached.
    Unreachable,
    /// Anything else the engine said.
    Failed,
}

impl ImageProblem {
    /// Reads the engine's message. Docker answers a pull's problems as text (in the
    /// response or the progress stream), so this is where they are told apart.
    #[must_use]
    pub fn classify(message: &str) -> Self {
        let m = message.to_ascii_lowercase();
        let has = |needle: &str| m.contains(needle);
        if has("unauthorized")
            || has("authentication required")
            || has("no basic auth credentials")
            || has("access denied")
            || has("denied:")
            || has("incorrect username or password")
        {
            Self::Unauthorized
        } else if has("manifest unknown")
            || has("not found")
            || has("name unknown")
            || has("no such image")
        {
            Self::NotFound
        } else if has("connection refused")
            || has("no such host")
            || has("i/o timeout")
            || has("dial tcp")
            || has("tls handshake")
            || has("server gave http response to https client")
        {
            Self::Unreachable
        } else {
            Self::Failed
        }
    }

    /// Whether fixing the stack file or the credentials fixes it (the binaries' exit 2):
    /// everything but an unreachable registry and the engine's other failures.
    #[must_use]
    pub fn is_config(self) -> bool {
        matches!(
            self,
            Self::NotFound | Self::Unauthorized | Self::BadCredentials
        )
    }

    /// The one-line fix an operator reads.
    #[must_use]
    pub fn fix(self) -> &'static str {
        match self {
            Self::NotFound => "check the image name and tag (is it pushed?)",
            Self::Unauthorized => "give the registry's credentials: docker login <registry>, or ODOO_DEPLOY_REGISTRY_USER and ODOO_DEPLOY_REGISTRY_PASSWORD",
            Self::BadCredentials => "fix the credentials' source named above",
            Self::Unreachable => "check that the registry runs and that this host reaches it",
            Self::Failed => "read the engine's message above",
        }
    }
}

impl fmt::Display for ImageProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotFound => "not found",
            Self::Unauthorized => "credentials refused",
            Self::BadCredentials => "credentials unreadable",
            Self::Unreachable => "registry unreachable",
            Self::Failed => "pull failed",
        })
    }
}

/// What the engine had or fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageOutcome {
    /// It was on the engine already.
    Present {
        /// Its image id.
        id: String,
    },
    /// It was pulled.
    Pulled {
        /// Its image id.
        id: String,
        /// The repository digest the registry served, when the engine reports one.
        digest: Option<String>,
    },
}

impl ImageOutcome {
    /// The image id.
    #[must_use]
    pub fn id(&self) -> &str {
        match self {
            Self::Present { id } | Self::Pulled { id, .. } => id,
        }
    }
}

/// What sees a pull's progress lines.
pub type ProgressFn = dyn Fn(&PullProgress) + Send + Sync;

/// One line of a pull's progress, as the engine streams it, per layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    /// The layer (a short id), or none for the image's own lines.
    pub layer: Option<String>,
    /// The engine's status (`Pulling fs layer`, `Downloading`, `Pull complete`, ...).
    pub status: String,
    /// Bytes done and in all, while a layer downloads or extracts.
    pub bytes: Option<(u64, u64)>,
}

impl fmt::Display for PullProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(layer) = &self.layer {
            write!(f, "{layer}: ")?;
        }
        f.write_str(&self.status)?;
        if let Some((done, total)) = self.bytes {
            if total > 0 {
                #[allow(clippy::cast_precision_loss)]
                let mb = |b: u64| b as f64 / 1_000_000.0;
                write!(f, " {:.1}/{:.1} MB", mb(done), mb(total))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn references_split_as_docker_splits_them() {
        let official = parse("odoo:17.0");
        assert_eq!(official.registry, DEFAULT_REGISTRY);
        assert_eq!(official.repository, "library/odoo");
        assert_eq!(official.tag.as_deref(), Some("17.0"));
        let local = parse("127.0.0.1:5000/team/odoo-shop:sha-1a2b3c");
        assert_eq!(local.registry, "127.0.0.1:5000");
        assert_eq!(local.repository, "team/odoo-shop");
        assert_eq!(local.name, "127.0.0.1:5000/team/odoo-shop");
        assert_eq!(local.tag_or_digest(), "sha-1a2b3c");
        let untagged = parse("localhost/shop");
        assert_eq!(untagged.registry, "localhost");
        assert_eq!(untagged.tag.as_deref(), Some("latest"));
        let pinned = parse("ghcr.io/acme/odoo@sha256:abc123");
        assert_eq!(pinned.tag, None);
        assert_eq!(pinned.tag_or_digest(), "sha256:abc123");
        let hub_user = parse("acme/odoo");
        assert_eq!(hub_user.repository, "acme/odoo");
        assert_eq!(hub_user.server_address(), DEFAULT_REGISTRY_KEY);
        for bad in ["", "odoo:", "Acme/Odoo", "a b", "x//y", "odoo@nodigest"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn environment_credentials_need_both_halves_and_the_named_registry() {
        let image = parse("127.0.0.1:5000/shop:r1");
        let both = CredentialLookup::empty()
            .var(ENV_USER, "ci")
            .var(ENV_PASSWORD, "pw");
        let found = both.credentials_for(&image).ok().flatten();
        assert_eq!(
            found.as_ref().and_then(|c| c.username.as_deref()),
            Some("ci")
        );
        let shown = format!("{found:?}");
        assert!(!shown.contains("pw\""), "{shown}");
        let half = CredentialLookup::empty().var(ENV_USER, "ci");
        assert!(half.credentials_for(&image).is_err());
        let elsewhere = both.clone().var(ENV_REGISTRY, "ghcr.io");
        assert!(matches!(elsewhere.credentials_for(&image), Ok(None)));
        let here = both.var(ENV_REGISTRY, "http://127.0.0.1:5000/");
        assert!(matches!(here.credentials_for(&image), Ok(Some(_))));
    }

    #[test]
    fn docker_config_auths_are_read_and_broken_ones_named() {
        let Ok(home) = tempfile::tempdir() else {
            panic!("no temp dir")
        };
        let dir = home.path().join(".docker");
        std::fs::create_dir_all(&dir).ok();
        let auth = base64::engine::general_purpose::STANDARD.encode("deployer:s3cret");
        std::fs::write(
            dir.join("config.json"),
            format!(r#"{{"auths": {{"http://127.0.0.1:5000": {{"auth": "{auth}"}}, "ghcr.io": {{"auth": "bm9jb2xvbg=="}}}}}}"#),
        )
        .ok();
        let lookup = CredentialLookup::empty().home(home.path());
        let found = lookup
            .credentials_for(&parse("127.0.0.1:5000/shop:r1"))
            .ok()
            .flatten();
        let Some(found) = found else {
            panic!("no credentials found")
        };
        assert_eq!(found.username.as_deref(), Some("deployer"));
        assert_eq!(
            found
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_owned()),
            Some("s3cret".to_owned())
        );
        assert!(
            found.describe().contains("config.json"),
            "{}",
            found.describe()
        );
        assert!(matches!(
            lookup.credentials_for(&parse("quay.io/x/y")),
            Ok(None)
        ));
        let broken = lookup.credentials_for(&parse("ghcr.io/acme/odoo:1"));
        assert!(
            matches!(&broken, Err(e) if e.problem.contains("no ':'")),
            "{broken:?}"
        );
        std::fs::write(dir.join("config.json"), "{not json").ok();
        assert!(lookup
            .credentials_for(&parse("127.0.0.1:5000/shop:r1"))
            .is_err());
    }

    #[test]
    fn a_missing_credential_helper_is_named() {
        let image = parse("127.0.0.1:5000/shop:r1");
        let lookup = CredentialLookup::empty().var(
            ENV_AUTH_CONFIG,
            r#"{"credHelpers": {"127.0.0.1:5000": "nonexistent-helper-for-test"}}"#,
        );
        let result = lookup.credentials_for(&image);
        assert!(
            matches!(&result, Err(e) if e.source_name == "docker-credential-nonexistent-helper-for-test"),
            "{result:?}"
        );
    }

    #[test]
    fn engine_messages_are_told_apart() {
        let cases = [
            ("manifest for 127.0.0.1:5000/shop:nope not found: manifest unknown: manifest unknown", ImageProblem::NotFound),
            ("Head \"http://127.0.0.1:5000/v2/shop/manifests/r1\": no basic auth credentials", ImageProblem::Unauthorized),
            ("unauthorized: authentication required", ImageProblem::Unauthorized),
            ("pull access denied for nosuch, repository does not exist or may require 'docker login': denied: requested access to the resource is denied", ImageProblem::Unauthorized),
            ("Get \"http://127.0.0.1:5999/v2/\": dial tcp 127.0.0.1:5999: connect: connection refused", ImageProblem::Unreachable),
            ("something else", ImageProblem::Failed),
        ];
        for (message, expected) in cases {
            assert_eq!(ImageProblem::classify(message), expected, "{message}");
        }
    }
}
