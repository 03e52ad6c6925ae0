//! The error type of `deploy-gates`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::GateKind;

/// Where in a plan a configuration error is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// The `[run]` table.
    Run,
    /// The `[[targets]]` entry with this name.
    Target(String),
    /// The `[[gates]]` entry with this name.
    Gate(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Run => f.write_str("[run]"),
            Scope::Target(name) => write!(f, "target `{name}`"),
            Scope::Gate(name) => write!(f, "gate `{name}`"),
        }
    }
}

/// Everything that can go wrong in `deploy-gates`.
///
/// Three families:
/// - **configuration errors** (plan loading, runner construction, see
///   [`Error::is_config`]): each names the section, the gate and the field;
/// - **build errors** ([`Error::NoFactory`], [`Error::Secret`], [`Error::Client`], and
///   [`Error::MissingField`] / [`Error::InvalidValue`] for a target that lacks what a gate
///   needs) while turning a plan into gates;
/// - **check errors** ([`Error::Timeout`], [`Error::Check`], [`Error::Panicked`]): a gate
///   *could not run*. A gate that ran and found a problem returns a
///   [`Verdict`](crate::Verdict) with [`Outcome::Fail`](crate::Outcome::Fail) instead.
///
/// No message contains a secret value, and none quotes plan source lines (which could
/// hold one).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The plan file could not be read.
    #[error("cannot read plan `{}`", path.display())]
    ReadPlan {
        /// Path of the plan file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The plan is not valid TOML, or does not have the plan's shape (unknown key, wrong
    /// type, missing `name`/`kind`).
    #[error("{}line {line}, column {column}: {message}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    ParsePlan {
        /// Path of the plan file, when it was loaded from one.
        path: Option<PathBuf>,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong (the TOML parser's message, without the source line).
        message: String,
    },

    /// The plan (or runner) has no gates.
    #[error("no gates: a plan needs at least one [[gates]] entry")]
    NoGates,

    /// Two gates have the same name.
    #[error("duplicate gate name `{name}`")]
    DuplicateGate {
        /// The name used twice.
        name: String,
    },

    /// Two targets have the same name.
    #[error("duplicate target name `{name}`")]
    DuplicateTarget {
        /// The name used twice.
        name: String,
    },

    /// A gate's `kind` is not one of the known kinds.
    #[error(
        "gate `{gate}`: unknown kind `{kind}` (known kinds: {})",
        GateKind::known_list()
    )]
    UnknownKind {
        /// The gate.
        gate: String,
        /// The kind that was given.
        kind: String,
    },

    /// A gate's `target` names no `[[targets]]` entry.
    #[error("gate `{gate}`: unknown target `{target}`")]
    UnknownTarget {
        /// The gate.
        gate: String,
        /// The target name that was given.
        target: String,
    },

    /// A gate's `depends_on` names a gate that does not exist.
    #[error("gate `{gate}`: depends_on names unknown gate `{dependency}`")]
    UnknownDependency {
        /// The gate.
        gate: String,
        /// The unknown gate name.
        dependency: String,
    },

    /// Gates depend on each other in a cycle.
    #[error("dependency cycle: {}", cycle.join(" -> "))]
    DependencyCycle {
        /// The gates on the cycle, the first repeated at the end (`a -> b -> a`).
        cycle: Vec<String>,
    },

    /// A required field is missing.
    #[error("{scope}: missing `{field}`")]
    MissingField {
        /// Where.
        scope: Scope,
        /// The field.
        field: String,
    },

    /// A duration field is not a humantime duration such as `"30s"` or `"500ms"`.
    #[error("{scope}: `{field}` = \"{value}\" is not a duration (write e.g. \"30s\", \"500ms\", \"2m\")")]
    InvalidDuration {
        /// Where.
        scope: Scope,
        /// The field.
        field: String,
        /// The text that was given.
        value: String,
        /// The parser's error.
        #[source]
        source: Box<humantime::DurationError>,
    },

    /// A field has a value outside what it accepts (a zero interval, `warn_ms` above
    /// `fail_ms`, a URL that is not http(s), ...).
    #[error("{scope}: invalid `{field}`: {reason}")]
    InvalidValue {
        /// Where.
        scope: Scope,
        /// The field.
        field: String,
        /// Why it is invalid.
        reason: String,
    },

    /// A gate's kind-specific settings do not fit its kind (unknown key, wrong type).
    #[error("gate `{gate}`: invalid {kind} settings: {message}")]
    InvalidSettings {
        /// The gate.
        gate: String,
        /// Its kind.
        kind: GateKind,
        /// What is wrong, naming the key (e.g. ``unknown field `warn_msx` ``).
        message: String,
    },

    /// A secret is written as plaintext without `allow_plaintext = true` next to it.
    #[error("{scope}: `{field}` is a plaintext secret; use {{ env = \"VAR\" }} or {{ file = \"PATH\" }}, or add allow_plaintext = true")]
    PlaintextSecret {
        /// Where.
        scope: Scope,
        /// The field.
        field: String,
    },

    /// No factory is registered for a gate's kind (the built-in needs a client that
    /// is not wired in, or a custom registry leaves it out).
    #[error("gate `{gate}`: no factory for kind `{kind}`")]
    NoFactory {
        /// The gate.
        gate: String,
        /// Its kind.
        kind: GateKind,
    },

    /// A secret a gate needs could not be resolved.
    #[error("{scope}: cannot resolve `{field}`")]
    Secret {
        /// Where the secret reference is.
        scope: Scope,
        /// The field holding it.
        field: String,
        /// Why (names the variable or file, never the value).
        #[source]
        source: deploy_core::Error,
    },

    /// A target's clients could not be built from its settings (an URL or a credential
    /// the HTTP stack refuses).
    #[error("target `{target}`: cannot build its odoo client")]
    Client {
        /// The target.
        target: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A check did not finish within its timeout; it was cancelled. Counts as an error
    /// (the check could not run), not as a fail.
    #[error("gate `{gate}`: check timed out after {}", humantime::format_duration(*timeout))]
    Timeout {
        /// The gate.
        gate: String,
        /// The timeout that elapsed.
        timeout: Duration,
    },

    /// A check could not run (connection to a dependency it needs, bad response it
    /// cannot interpret, ...). Gates build this with [`Error::check`].
    #[error("gate `{gate}`: {message}")]
    Check {
        /// The gate.
        gate: String,
        /// What went wrong, lower case.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// A check panicked. The runner catches it and treats it as an error result.
    #[error("gate `{gate}`: the check panicked")]
    Panicked {
        /// The gate.
        gate: String,
    },
}

impl Error {
    /// A [`Error::Check`] without a source.
    #[must_use]
    pub fn check(gate: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Check {
            gate: gate.into(),
            message: message.into(),
            source: None,
        }
    }

    /// A [`Error::Check`] with an underlying error.
    #[must_use]
    pub fn check_with_source(
        gate: impl Into<String>,
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Check {
            gate: gate.into(),
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// Whether this is a configuration error: the plan or the runner's gate list is
    /// invalid, and nothing was run.
    #[must_use]
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            Error::ReadPlan { .. }
                | Error::ParsePlan { .. }
                | Error::NoGates
                | Error::DuplicateGate { .. }
                | Error::DuplicateTarget { .. }
                | Error::UnknownKind { .. }
                | Error::UnknownTarget { .. }
                | Error::UnknownDependency { .. }
                | Error::DependencyCycle { .. }
                | Error::MissingField { .. }
                | Error::InvalidDuration { .. }
                | Error::InvalidValue { .. }
                | Error::InvalidSettings { .. }
                | Error::PlaintextSecret { .. }
        )
    }
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl deploy_core::Classify for Error {
    /// A plan, a gate's settings or a secret that is wrong is a configuration error
    /// (exit 2); a check that timed out, failed to run or panicked, and a client that
    /// could not be built, are infrastructure (exit 3). A failed gate is not an error at
    /// all: it is a verdict in the report.
    fn class(&self) -> deploy_core::ErrorClass {
        match self {
            Error::Client { .. }
            | Error::Timeout { .. }
            | Error::Check { .. }
            | Error::Panicked { .. } => deploy_core::ErrorClass::Infrastructure,
            _ => deploy_core::ErrorClass::Config,
        }
    }
}
