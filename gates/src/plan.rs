//! Gate plans: the `gates.toml` format.
//!
//! A plan names the targets to check, the gates to run against them, and how to run
//! them. [`Plan::load`] / [`Plan::from_toml`] parse and validate it in one go: a plan
//! that loads is one the runner can run (given a factory for its kinds).
//!
//! # Format
//!
//! ```toml
//! [run]                          # optional; every key has a default
//! mode = "wait-until"            # "once" (default): one round | "wait-until": until stable
//! interval = "10s"               # wait-until: between round starts (default "10s")
//! timeout = "5m"                 # give up after this, from the start (default "5m")
//! stable_for = "1m"              # wait-until: all gates must keep passing this long (default "0s")
//! fail_fast = false              # first Fail cancels the rest of its round (default false)
//! gate_timeout = "30s"           # check timeout of gates that set none (default "30s")
//! failure_limit = 0              # default of gates' failure_limit (default 0)
//! consecutive_error_limit = 4    # default of gates' consecutive_error_limit (default 4)
//!
//! [[targets]]                    # at least one when there are gates
//! name = "green"                 # required, unique
//! url = "http://127.0.0.1:8069"  # required, http or https: the Odoo base URL
//! database = "prod"              # optional
//! login = "admin"                # optional
//! password = { env = "ODOO_PASSWORD" }           # optional: { env = .. } | { file = .. }
//! api_key = { file = "/run/secrets/odoo_key" }   #   | { plain = "..", allow_plaintext = true }
//! realtime_url = "http://127.0.0.1:8072"  # optional: the real-time (gevent) port of a
//!                                # prefork Odoo (--workers), where websockets are served
//!
//! [[gates]]                      # at least one
//! name = "port"                  # required, unique: used by depends_on and reports
//! kind = "tcp"                   # required: see below
//! target = "green"               # required unless the plan has exactly one target
//! timeout = "5s"                 # check timeout (default: [run] gate_timeout)
//! failure_limit = 30             # Fail verdicts tolerated before the plan fails (default: [run])
//! consecutive_error_limit = 4    # errors in a row tolerated (default: [run])
//! depends_on = []                # gates that must pass first in the same round
//! # ...and the kind's own settings, e.g. for tcp:
//! port = 8072
//! ```
//!
//! Durations are humantime strings: `"500ms"`, `"30s"`, `"2m"`, `"1h 30m"`.
//! Unknown keys anywhere are errors.
//!
//! # Kinds and their settings
//!
//! | kind | settings (defaults) |
//! |---|---|
//! | `tcp` | `port` (URL's), `connect_timeout` (`"5s"`) |
//! | `health` | `db_server_status` (`false`), `warn_ms` (`2000`) |
//! | `websocket-health` | `path` (`"/websocket"`, upgraded on the target's `realtime_url`, else `url`), `warn_ms` (`2000`) |
//! | `login-page` | `path` (`"/web/login"`), `warn_ms` (`2000`) |
//! | `database-listed` | `database` (target's) |
//! | `postgres` | `dsn` (required secret reference), `warn_percent` (`80`), `fail_percent` (`90`), `connect_timeout` (`"5s"`) |
//! | `authentication` | none (uses the target's login and password / api_key) |
//! | `version` | `expected_version`, `expected_release` (both optional) |
//! | `modules` | `modules` (`[]`: only check that no module is pending) |
//! | `smoke-crud` | `model` (`"res.partner"`), `field` (`"name"`), `values` (`{}`) |
//! | `filestore` | `size_bytes` (`4096`) |
//! | `response-time` | `routes` (`["/web/login"]`), `requests` (`20`), `concurrency` (`4`), `warn_ms` (`2000`), `fail_ms` (`5000`), `fail_error_percent` (`10`) |
//! | `session-continuity` | `from_target` (required: another target's name) |
//!
//! Each row is a struct in [`crate::settings`]; see there for what each field does, and
//! [`crate::builtin`] for what each kind checks and when it passes, warns, fails or
//! errs.
//!
//! # Validation
//!
//! Every error names where it is ([`Scope`]) and the field:
//!
//! | problem | error |
//! |---|---|
//! | not TOML, wrong type, unknown key in `[run]`/`[[targets]]`, missing `name`/`kind` | [`Error::ParsePlan`] (line, column; never the source line, which could hold a secret) |
//! | no `[[gates]]` | [`Error::NoGates`] |
//! | two gates / targets with one name | [`Error::DuplicateGate`] / [`Error::DuplicateTarget`] |
//! | `kind` not in the table above | [`Error::UnknownKind`] |
//! | `target` (or a session-continuity gate's `from_target`) names no target | [`Error::UnknownTarget`] |
//! | no `target` and not exactly one target | [`Error::MissingField`] |
//! | `depends_on` names no gate | [`Error::UnknownDependency`] |
//! | gates depend on each other in a cycle | [`Error::DependencyCycle`] |
//! | a duration that does not parse | [`Error::InvalidDuration`] |
//! | a zero duration, a bad URL, `warn_ms > fail_ms`, ... | [`Error::InvalidValue`] |
//! | unknown key or wrong type in a kind's settings | [`Error::InvalidSettings`] |
//! | `{ plain = .. }` without `allow_plaintext = true` | [`Error::PlaintextSecret`] |
//!
//! A complete example is `gates/examples/gates.toml` in the repository.
//!
//! ```
//! use std::time::Duration;
//! use deploy_gates::{GateKind, GateSettings, Mode, Plan};
//!
//! let plan: Plan = r#"
//!     [run]
//!     mode = "wait-until"
//!     stable_for = "30s"
//!
//!     [[targets]]
//!     name = "green"
//!     url = "http://127.0.0.1:8069"
//!
//!     [[gates]]
//!     name = "port"
//!     kind = "tcp"
//!     failure_limit = 10
//!
//!     [[gates]]
//!     name = "login"
//!     kind = "response-time"
//!     depends_on = ["port"]
//!     warn_ms = 1500
//! "#
//! .parse()?;
//!
//! assert_eq!(plan.run.mode, Mode::WaitUntil);
//! assert_eq!(plan.run.stable_for, Duration::from_secs(30));
//! let login = plan.gate("login").unwrap();
//! assert_eq!(login.target, "green"); // the only target
//! assert_eq!(login.kind(), GateKind::ResponseTime);
//! match &login.settings {
//!     GateSettings::ResponseTime(s) => assert_eq!((s.warn_ms, s.fail_ms), (1500, 5000)),
//!     other => unreachable!("{other:?}"),
//! }
//! # Ok::<(), deploy_gates::Error>(())
//! ```

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use deploy_core::{SecretRef, Target};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};
use url::Url;

use crate::runner::{Mode, RunSettings};
use crate::settings::{GateKind, GateSettings};
use crate::{graph, Error, Result, Scope};

/// A parsed and validated gate plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The `[run]` table, defaults filled in.
    pub run: RunSettings,
    /// The `[[targets]]`, in file order.
    pub targets: Vec<Target>,
    /// The `[[gates]]`, in file order (the order of reports).
    pub gates: Vec<GateSpec>,
}

/// One `[[gates]]` entry, with defaults from `[run]` filled in and its target resolved
/// to a name that exists in [`Plan::targets`].
#[derive(Debug, Clone, PartialEq)]
pub struct GateSpec {
    /// Unique name.
    pub name: String,
    /// Name of the target it checks.
    pub target: String,
    /// Check timeout.
    pub timeout: Duration,
    /// `Fail` verdicts tolerated over the run before the plan fails.
    pub failure_limit: u32,
    /// Errors in a row tolerated before the plan fails.
    pub consecutive_error_limit: u32,
    /// Gates that must pass first in the same round.
    pub depends_on: Vec<String>,
    /// The kind and its settings.
    pub settings: GateSettings,
}

impl GateSpec {
    /// A spec with the [`RunSettings`] defaults: timeout, failure limit, consecutive
    /// error limit, and no dependencies.
    ///
    /// ```
    /// use deploy_gates::{GateSettings, GateSpec, HealthSettings};
    ///
    /// let spec = GateSpec::new("health", "green", GateSettings::Health(HealthSettings::default()))
    ///     .depends_on(["port"]);
    /// assert_eq!(spec.depends_on, ["port"]);
    /// ```
    #[must_use]
    pub fn new(name: impl Into<String>, target: impl Into<String>, settings: GateSettings) -> Self {
        GateSpec {
            name: name.into(),
            target: target.into(),
            timeout: RunSettings::DEFAULT_GATE_TIMEOUT,
            failure_limit: RunSettings::DEFAULT_FAILURE_LIMIT,
            consecutive_error_limit: RunSettings::DEFAULT_CONSECUTIVE_ERROR_LIMIT,
            depends_on: Vec::new(),
            settings,
        }
    }

    /// Adds dependencies.
    #[must_use]
    pub fn depends_on<I, S>(mut self, gates: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.depends_on.extend(gates.into_iter().map(Into::into));
        self
    }

    /// Sets the check timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The gate's kind.
    #[must_use]
    pub fn kind(&self) -> GateKind {
        self.settings.kind()
    }
}

impl Plan {
    /// A plan built in code (e.g. [`crate::standard`]), validated like a loaded one: run
    /// settings, unique non-empty names, targets that exist, usable settings values, and
    /// dependencies without cycles.
    ///
    /// # Errors
    ///
    /// The configuration errors listed in the [module docs](self) that apply to values
    /// rather than to TOML syntax.
    pub fn new(run: RunSettings, targets: Vec<Target>, gates: Vec<GateSpec>) -> Result<Plan> {
        run.validate()?;
        if gates.is_empty() {
            return Err(Error::NoGates);
        }
        let mut seen = HashSet::new();
        for target in &targets {
            if target.name.trim().is_empty() {
                return Err(Error::InvalidValue {
                    scope: Scope::Target(target.name.clone()),
                    field: "name".to_owned(),
                    reason: "must not be empty".to_owned(),
                });
            }
            if !seen.insert(target.name.as_str()) {
                return Err(Error::DuplicateTarget {
                    name: target.name.clone(),
                });
            }
        }
        for gate in &gates {
            if gate.name.trim().is_empty() {
                return Err(Error::InvalidValue {
                    scope: Scope::Gate(gate.name.clone()),
                    field: "name".to_owned(),
                    reason: "must not be empty".to_owned(),
                });
            }
            if !targets.iter().any(|t| t.name == gate.target) {
                return Err(Error::UnknownTarget {
                    gate: gate.name.clone(),
                    target: gate.target.clone(),
                });
            }
            if gate.timeout.is_zero() {
                return Err(Error::InvalidValue {
                    scope: Scope::Gate(gate.name.clone()),
                    field: "timeout".to_owned(),
                    reason: "must be above zero".to_owned(),
                });
            }
            gate.settings.validate(&gate.name)?;
            check_references(&gate.name, &gate.settings, &targets)?;
        }
        let graph: Vec<(&str, &[String])> = gates
            .iter()
            .map(|g| (g.name.as_str(), g.depends_on.as_slice()))
            .collect();
        graph::resolve(&graph)?;
        Ok(Plan {
            run,
            targets,
            gates,
        })
    }

    /// Reads and validates the plan at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::ReadPlan`] when the file cannot be read; otherwise as
    /// [`Plan::from_toml`], with the path in [`Error::ParsePlan`].
    pub fn load(path: &Path) -> Result<Plan> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadPlan {
            path: path.to_owned(),
            source,
        })?;
        parse(&text, Some(path))
    }

    /// Parses and validates a plan.
    ///
    /// # Errors
    ///
    /// Any configuration error listed in the [module docs](self).
    pub fn from_toml(text: &str) -> Result<Plan> {
        parse(text, None)
    }

    /// The target named `name`.
    #[must_use]
    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|target| target.name == name)
    }

    /// The gate named `name`.
    #[must_use]
    pub fn gate(&self, name: &str) -> Option<&GateSpec> {
        self.gates.iter().find(|gate| gate.name == name)
    }
}

impl FromStr for Plan {
    type Err = Error;

    fn from_str(text: &str) -> Result<Plan> {
        Plan::from_toml(text)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    #[serde(default)]
    run: RawRun,
    #[serde(default)]
    targets: Vec<RawTarget>,
    #[serde(default)]
    gates: Vec<RawGate>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRun {
    mode: Option<Mode>,
    interval: Option<RawDuration>,
    timeout: Option<RawDuration>,
    stable_for: Option<RawDuration>,
    fail_fast: Option<bool>,
    gate_timeout: Option<RawDuration>,
    failure_limit: Option<u32>,
    consecutive_error_limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: String,
    url: String,
    database: Option<String>,
    login: Option<String>,
    password: Option<SecretRef>,
    api_key: Option<SecretRef>,
    realtime_url: Option<String>,
}

#[derive(Deserialize)]
struct RawGate {
    name: String,
    kind: String,
    target: Option<String>,
    timeout: Option<RawDuration>,
    failure_limit: Option<u32>,
    consecutive_error_limit: Option<u32>,
    #[serde(default)]
    depends_on: Vec<String>,
    /// Everything else: the kind's settings.
    #[serde(flatten)]
    settings: toml::Table,
}

/// A duration as written (checked later, so the error can name gate and field).
struct RawDuration(String);

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string with a unit, e.g. \"30s\" or \"500ms\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<RawDuration, E> {
                Ok(RawDuration(v.to_owned()))
            }
        }
        deserializer.deserialize_str(V)
    }
}

fn duration(
    scope: &Scope,
    field: &str,
    raw: Option<RawDuration>,
    default: Duration,
) -> Result<Duration> {
    let Some(RawDuration(text)) = raw else {
        return Ok(default);
    };
    let value = humantime::parse_duration(&text).map_err(|source| Error::InvalidDuration {
        scope: scope.clone(),
        field: field.to_owned(),
        value: text.clone(),
        source: Box::new(source),
    })?;
    if value.is_zero() && field != "stable_for" {
        return Err(Error::InvalidValue {
            scope: scope.clone(),
            field: field.to_owned(),
            reason: format!("\"{text}\" must be above zero"),
        });
    }
    Ok(value)
}

fn parse(text: &str, path: Option<&Path>) -> Result<Plan> {
    let raw: RawPlan = toml::from_str(text).map_err(|err| parse_error(text, path, &err))?;
    let run = run_settings(raw.run)?;
    let targets = targets(raw.targets)?;
    let gates = gates(raw.gates, &run, &targets)?;
    Ok(Plan {
        run,
        targets,
        gates,
    })
}

fn parse_error(text: &str, path: Option<&Path>, err: &toml::de::Error) -> Error {
    let offset = err.span().map_or(0, |span| span.start);
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Error::ParsePlan {
        path: path.map(PathBuf::from),
        line,
        column,
        message: err.message().trim().to_owned(),
    }
}

fn run_settings(raw: RawRun) -> Result<RunSettings> {
    let defaults = RunSettings::default();
    let scope = Scope::Run;
    Ok(RunSettings {
        mode: raw.mode.unwrap_or(defaults.mode),
        interval: duration(&scope, "interval", raw.interval, defaults.interval)?,
        timeout: duration(&scope, "timeout", raw.timeout, defaults.timeout)?,
        stable_for: duration(&scope, "stable_for", raw.stable_for, defaults.stable_for)?,
        fail_fast: raw.fail_fast.unwrap_or(defaults.fail_fast),
        gate_timeout: duration(
            &scope,
            "gate_timeout",
            raw.gate_timeout,
            defaults.gate_timeout,
        )?,
        failure_limit: raw.failure_limit.unwrap_or(defaults.failure_limit),
        consecutive_error_limit: raw
            .consecutive_error_limit
            .unwrap_or(defaults.consecutive_error_limit),
    })
}

fn targets(raw: Vec<RawTarget>) -> Result<Vec<Target>> {
    let mut seen = HashSet::new();
    let mut targets = Vec::with_capacity(raw.len());
    for raw in raw {
        let scope = Scope::Target(raw.name.clone());
        if raw.name.trim().is_empty() {
            return Err(Error::InvalidValue {
                scope,
                field: "name".to_owned(),
                reason: "must not be empty".to_owned(),
            });
        }
        if !seen.insert(raw.name.clone()) {
            return Err(Error::DuplicateTarget { name: raw.name });
        }
        let invalid_url = |reason: String| Error::InvalidValue {
            scope: scope.clone(),
            field: "url".to_owned(),
            reason,
        };
        let url =
            Url::parse(&raw.url).map_err(|err| invalid_url(format!("`{}`: {err}", raw.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid_url(format!(
                "`{}`: the scheme must be http or https",
                raw.url
            )));
        }
        if url.host().is_none() {
            return Err(invalid_url(format!("`{}` has no host", raw.url)));
        }
        let realtime_url = match &raw.realtime_url {
            Some(text) => {
                let parsed = Url::parse(text)
                    .map_err(|err| invalid_url(format!("realtime_url `{text}`: {err}")))?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                    return Err(invalid_url(format!(
                        "realtime_url `{text}`: give http(s)://host:port"
                    )));
                }
                Some(parsed)
            }
            None => None,
        };
        for (field, secret) in [("password", &raw.password), ("api_key", &raw.api_key)] {
            if secret.as_ref().is_some_and(|s| !s.is_allowed()) {
                return Err(Error::PlaintextSecret {
                    scope: scope.clone(),
                    field: field.to_owned(),
                });
            }
        }
        targets.push(Target {
            name: raw.name,
            url,
            database: raw.database,
            login: raw.login,
            password: raw.password,
            api_key: raw.api_key,
            realtime_url,
        });
    }
    Ok(targets)
}

/// Checks that settings naming a target (`from_target`) name one of `targets`.
fn check_references(gate: &str, settings: &GateSettings, targets: &[Target]) -> Result<()> {
    if let GateSettings::SessionContinuity(s) = settings {
        if !targets.iter().any(|t| t.name == s.from_target) {
            return Err(Error::UnknownTarget {
                gate: gate.to_owned(),
                target: s.from_target.clone(),
            });
        }
    }
    Ok(())
}

fn gates(raw: Vec<RawGate>, run: &RunSettings, targets: &[Target]) -> Result<Vec<GateSpec>> {
    if raw.is_empty() {
        return Err(Error::NoGates);
    }
    let mut seen = HashSet::new();
    let mut gates = Vec::with_capacity(raw.len());
    for raw in raw {
        let scope = Scope::Gate(raw.name.clone());
        if raw.name.trim().is_empty() {
            return Err(Error::InvalidValue {
                scope,
                field: "name".to_owned(),
                reason: "must not be empty".to_owned(),
            });
        }
        if !seen.insert(raw.name.clone()) {
            return Err(Error::DuplicateGate { name: raw.name });
        }
        let kind = GateKind::from_name(&raw.kind).ok_or_else(|| Error::UnknownKind {
            gate: raw.name.clone(),
            kind: raw.kind.clone(),
        })?;
        let target = match (raw.target, targets) {
            (Some(target), _) => {
                if !targets.iter().any(|t| t.name == target) {
                    return Err(Error::UnknownTarget {
                        gate: raw.name,
                        target,
                    });
                }
                target
            }
            (None, [only]) => only.name.clone(),
            (None, _) => {
                return Err(Error::MissingField {
                    scope,
                    field: "target".to_owned(),
                })
            }
        };
        let timeout = duration(&scope, "timeout", raw.timeout, run.gate_timeout)?;
        let settings = GateSettings::parse(&raw.name, kind, raw.settings)?;
        check_references(&raw.name, &settings, targets)?;
        gates.push(GateSpec {
            name: raw.name,
            target,
            timeout,
            failure_limit: raw.failure_limit.unwrap_or(run.failure_limit),
            consecutive_error_limit: raw
                .consecutive_error_limit
                .unwrap_or(run.consecutive_error_limit),
            depends_on: raw.depends_on,
            settings,
        });
    }
    let graph: Vec<(&str, &[String])> = gates
        .iter()
        .map(|g| (g.name.as_str(), g.depends_on.as_slice()))
        .collect();
    graph::resolve(&graph)?;
    Ok(gates)
}
