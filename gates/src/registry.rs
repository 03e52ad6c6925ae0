//! The [`Registry`]: turning a plan's [`GateSpec`]s into gates ([`GateFactory`],
//! [`BuildContext`], [`BuildFn`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use deploy_core::secrecy::SecretString;
use deploy_core::{EventSink, SecretRef, Target};

use crate::builtin::{
    AuthenticationGate, ConnectionCache, CoverageGate, DatabaseListedGate, FilestoreGate,
    HealthGate, LoginPageGate, ModulesGate, PostgresGate, ResponseTimeGate, SessionContinuityGate,
    SmokeCrudGate, TcpGate, VersionGate, WebsocketHealthGate,
};
use crate::{Error, Gate, GateKind, GateSettings, GateSpec, Result, Scope};

/// What a [`GateFactory`] gets besides the spec: the gate's target, the plan's other
/// targets (for gates that involve two, like `session-continuity`) and the event sink
/// (for warnings while resolving secrets).
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct BuildContext<'a> {
    /// The target the gate checks.
    pub target: &'a Target,
    /// Every target of the plan (empty when the gate is built outside a plan).
    pub targets: &'a [Target],
    /// Where to report (e.g. the plaintext-secret warning).
    pub events: &'a dyn EventSink,
}

impl<'a> BuildContext<'a> {
    /// A context for building a gate that checks `target`, with no other targets.
    #[must_use]
    pub fn new(target: &'a Target, events: &'a dyn EventSink) -> Self {
        BuildContext {
            target,
            targets: &[],
            events,
        }
    }

    /// Sets the plan's targets.
    #[must_use]
    pub fn with_targets(mut self, targets: &'a [Target]) -> Self {
        self.targets = targets;
        self
    }

    /// The target named `name`: the gate's own, or one of [`BuildContext::targets`].
    #[must_use]
    pub fn find_target(&self, name: &str) -> Option<&'a Target> {
        if self.target.name == name {
            return Some(self.target);
        }
        self.targets.iter().find(|target| target.name == name)
    }

    /// Resolves `secret`, found at `field` in `scope`, reporting to this context's sink.
    ///
    /// # Errors
    ///
    /// [`Error::Secret`] naming the scope and field (and, in its source, the variable or
    /// file; never the value).
    pub fn resolve_secret(
        &self,
        scope: Scope,
        field: &str,
        secret: &SecretRef,
    ) -> Result<SecretString> {
        secret.resolve(self.events).map_err(|source| Error::Secret {
            scope,
            field: field.to_owned(),
            source,
        })
    }
}

impl fmt::Debug for BuildContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildContext")
            .field("target", &self.target.name)
            .finish_non_exhaustive()
    }
}

/// Builds gates from specs: how a binary turns a [`Plan`](crate::Plan) into
/// `Arc<dyn Gate>`s (see [`Runner::from_plan`](crate::Runner::from_plan)).
///
/// # Contract
///
/// `build` is called once per `[[gates]]` entry, before anything runs. It returns a
/// gate whose [`Gate::name`] is `spec.name`, configured from `spec.settings` and
/// `cx.target`; it may resolve secrets (errors: [`Error::Secret`]) and create clients,
/// but must not contact the target (checks do that). A kind it cannot build is
/// [`Error::NoFactory`].
pub trait GateFactory: Send + Sync {
    /// Builds the gate `spec` describes.
    ///
    /// # Errors
    ///
    /// [`Error::NoFactory`] for a kind it does not build, [`Error::Secret`] for a secret
    /// that does not resolve, [`Error::InvalidValue`] for settings it cannot use.
    fn build(&self, spec: &GateSpec, cx: &BuildContext<'_>) -> Result<Arc<dyn Gate>>;
}

/// A function that builds gates of one kind, as registered in a [`Registry`].
pub type BuildFn = dyn Fn(&GateSpec, &BuildContext<'_>) -> Result<Arc<dyn Gate>> + Send + Sync;

/// A [`GateFactory`] with one build function per [`GateKind`].
///
/// [`Registry::with_builtins`] builds every kind with the gates of
/// [`crate::builtin`]; [`Registry::register`] replaces a kind's build function (with a
/// test double, or a gate of your own).
///
/// ```
/// use std::sync::Arc;
/// use deploy_gates::testing::{ScriptedGate, Step};
/// use deploy_gates::{Gate, GateKind, Registry};
///
/// let mut registry = Registry::with_builtins();
/// assert!(GateKind::ALL.into_iter().all(|kind| registry.supports(kind)));
/// registry.register(GateKind::Health, |spec, _cx| {
///     Ok(Arc::new(ScriptedGate::new(&spec.name, [Step::pass()])) as Arc<dyn Gate>)
/// });
/// assert!(!Registry::new().supports(GateKind::Modules));
/// ```
#[derive(Default)]
pub struct Registry {
    builders: BTreeMap<GateKind, Box<BuildFn>>,
}

impl Registry {
    /// A registry that builds nothing.
    #[must_use]
    pub fn new() -> Self {
        Registry::default()
    }

    /// A registry that builds every [`GateKind`] with the built-in gates.
    ///
    /// The Odoo gates of one target share one
    /// [`Connection`](crate::builtin::Connection) (built on first use,
    /// resolving the target's secrets), so a plan's gates reuse connection pools and the
    /// login. Building a gate checks that its target has what it needs (a database, a
    /// login, a password...) and returns a configuration error otherwise; nothing is sent
    /// before the first check.
    #[must_use]
    pub fn with_builtins() -> Self {
        let connections = Arc::new(ConnectionCache::default());
        let mut registry = Registry::new();
        registry.register(GateKind::Tcp, build_tcp);
        registry.register(GateKind::Postgres, build_postgres);
        registry.register(GateKind::Coverage, build_coverage);
        for kind in GateKind::ALL {
            if matches!(
                kind,
                GateKind::Tcp | GateKind::Postgres | GateKind::Coverage
            ) {
                continue;
            }
            let connections = Arc::clone(&connections);
            registry.register(kind, move |spec, cx| build_odoo(spec, cx, &connections));
        }
        registry
    }

    /// Registers (or replaces) the build function of `kind`.
    pub fn register<F>(&mut self, kind: GateKind, build: F) -> &mut Self
    where
        F: Fn(&GateSpec, &BuildContext<'_>) -> Result<Arc<dyn Gate>> + Send + Sync + 'static,
    {
        self.builders.insert(kind, Box::new(build));
        self
    }

    /// Whether `kind` has a build function.
    #[must_use]
    pub fn supports(&self, kind: GateKind) -> bool {
        self.builders.contains_key(&kind)
    }

    /// The kinds with a build function.
    pub fn kinds(&self) -> impl Iterator<Item = GateKind> + '_ {
        self.builders.keys().copied()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.builders.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl GateFactory for Registry {
    fn build(&self, spec: &GateSpec, cx: &BuildContext<'_>) -> Result<Arc<dyn Gate>> {
        let kind = spec.kind();
        let build = self.builders.get(&kind).ok_or_else(|| Error::NoFactory {
            gate: spec.name.clone(),
            kind,
        })?;
        build(spec, cx)
    }
}

fn build_tcp(spec: &GateSpec, cx: &BuildContext<'_>) -> Result<Arc<dyn Gate>> {
    match &spec.settings {
        GateSettings::Tcp(settings) => Ok(Arc::new(TcpGate::for_target(
            &spec.name, cx.target, settings,
        )?)),
        other => Err(wrong_settings(spec, GateKind::Tcp, other)),
    }
}

fn build_coverage(spec: &GateSpec, _cx: &BuildContext<'_>) -> Result<Arc<dyn Gate>> {
    match &spec.settings {
        GateSettings::Coverage(settings) => Ok(Arc::new(CoverageGate::new(&spec.name, settings))),
        other => Err(wrong_settings(spec, GateKind::Coverage, other)),
    }
}

fn build_postgres(spec: &GateSpec, cx: &BuildContext<'_>) -> Result<Arc<dyn Gate>> {
    match &spec.settings {
        GateSettings::Postgres(settings) => {
            let dsn = cx.resolve_secret(Scope::Gate(spec.name.clone()), "dsn", &settings.dsn)?;
            Ok(Arc::new(PostgresGate::new(&spec.name, &dsn, settings)?))
        }
        other => Err(wrong_settings(spec, GateKind::Postgres, other)),
    }
}

/// Builds the gates that talk to Odoo, on the target's shared [`Connection`].
fn build_odoo(
    spec: &GateSpec,
    cx: &BuildContext<'_>,
    connections: &ConnectionCache,
) -> Result<Arc<dyn Gate>> {
    let connection = connections.get(cx.target, cx)?;
    let name = spec.name.as_str();
    Ok(match &spec.settings {
        GateSettings::Health(s) => Arc::new(HealthGate::new(name, connection, s)),
        GateSettings::WebsocketHealth(s) => Arc::new(WebsocketHealthGate::new(name, connection, s)),
        GateSettings::LoginPage(s) => Arc::new(LoginPageGate::new(name, connection, s)),
        GateSettings::DatabaseListed(s) => Arc::new(DatabaseListedGate::new(name, connection, s)?),
        GateSettings::Authentication(_) => Arc::new(AuthenticationGate::new(name, connection)?),
        GateSettings::Version(s) => Arc::new(VersionGate::new(name, connection, s)),
        GateSettings::Modules(s) => Arc::new(ModulesGate::new(name, connection, s)?),
        GateSettings::SmokeCrud(s) => Arc::new(SmokeCrudGate::new(name, connection, s)?),
        GateSettings::Filestore(s) => Arc::new(FilestoreGate::new(name, connection, s)?),
        GateSettings::ResponseTime(s) => Arc::new(ResponseTimeGate::new(name, connection, s)),
        GateSettings::SessionContinuity(s) => {
            let from = cx
                .find_target(&s.from_target)
                .ok_or_else(|| Error::UnknownTarget {
                    gate: spec.name.clone(),
                    target: s.from_target.clone(),
                })?;
            let from = connections.get(from, cx)?;
            Arc::new(SessionContinuityGate::new(name, from, connection)?)
        }
        other @ (GateSettings::Tcp(_) | GateSettings::Postgres(_) | GateSettings::Coverage(_)) => {
            return Err(wrong_settings(spec, spec.kind(), other))
        }
    })
}

fn wrong_settings(spec: &GateSpec, kind: GateKind, settings: &GateSettings) -> Error {
    Error::InvalidSettings {
        gate: spec.name.clone(),
        kind,
        message: format!("expected {kind} settings, got {} settings", settings.kind()),
    }
}
