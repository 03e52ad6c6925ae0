//! Turning a plan's [`GateSpec`]s into gates.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use deploy_core::secrecy::SecretString;
use deploy_core::{EventSink, SecretRef, Target};

use crate::builtin::TcpGate;
use crate::{Error, Gate, GateKind, GateSettings, GateSpec, Result, Scope};

/// What a [`GateFactory`] gets besides the spec: the gate's target and the event sink
/// (for warnings while resolving secrets).
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct BuildContext<'a> {
    /// The target the gate checks.
    pub target: &'a Target,
    /// Where to report (e.g. the plaintext-secret warning).
    pub events: &'a dyn EventSink,
}

impl<'a> BuildContext<'a> {
    /// A context for building a gate that checks `target`.
    #[must_use]
    pub fn new(target: &'a Target, events: &'a dyn EventSink) -> Self {
        BuildContext { target, events }
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
/// [`Registry::with_builtins`] knows the built-in kinds that need no Odoo client (today:
/// `tcp`). Binaries register the Odoo kinds, or their own build functions, on top.
///
/// ```
/// use std::sync::Arc;
/// use deploy_gates::testing::{ScriptedGate, Step};
/// use deploy_gates::{Gate, GateKind, Registry};
///
/// let mut registry = Registry::with_builtins();
/// registry.register(GateKind::Health, |spec, _cx| {
///     Ok(Arc::new(ScriptedGate::new(&spec.name, [Step::pass()])) as Arc<dyn Gate>)
/// });
/// assert!(registry.supports(GateKind::Tcp));
/// assert!(registry.supports(GateKind::Health));
/// assert!(!registry.supports(GateKind::Modules));
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

    /// A registry with the built-in kinds that need no Odoo client: `tcp` ([`TcpGate`]).
    #[must_use]
    pub fn with_builtins() -> Self {
        let mut registry = Registry::new();
        registry.register(GateKind::Tcp, build_tcp);
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
        other => Err(Error::InvalidSettings {
            gate: spec.name.clone(),
            kind: GateKind::Tcp,
            message: format!("expected tcp settings, got {} settings", other.kind()),
        }),
    }
}
