//! The [`Gate`] trait and what a check returns.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deploy_core::{Event, EventSink};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::Result;

/// One check of a deployed system: "does `/web/health` answer", "can admin log in",
/// "is p95 below 2 s".
///
/// # Contract
///
/// - [`Gate::check`] is called once per round by the [`Runner`](crate::Runner),
///   concurrently with other gates' checks, possibly many times over a run (wait-until
///   mode). It must be safe to call again after any previous outcome.
/// - It returns `Ok(verdict)` when the check *ran*: [`Outcome::Pass`],
///   [`Outcome::Warn`] (passed, but worth a look), [`Outcome::Fail`] (the system is not
///   fit) or [`Outcome::Inconclusive`] (ran, but could not decide: never counted as a
///   pass). It returns `Err` when the check *could not run* (its own dependency
///   unreachable, a response it cannot interpret): errors count toward the gate's
///   `consecutive_error_limit`, not its `failure_limit`.
/// - It must be **cancellation safe**: the runner drops the future at any `.await` when
///   the gate's timeout elapses ([`Error::Timeout`](crate::Error::Timeout)), when
///   `fail_fast` cancels the round, or when the run's timeout is reached. Hold no state
///   that a drop would corrupt. [`GateContext::deadline`] says when that will happen, so
///   a gate can give its own I/O a shorter timeout and answer `Fail` instead.
/// - It must not print; it reports through [`GateContext::emit`] if at all. It must not
///   put secrets in messages, values or errors.
/// - The runner measures the duration and overwrites [`Verdict::duration`].
///
/// ```
/// use async_trait::async_trait;
/// use deploy_gates::{Gate, GateContext, Result, Verdict};
///
/// struct AlwaysFine;
///
/// #[async_trait]
/// impl Gate for AlwaysFine {
///     fn name(&self) -> &str {
///         "always-fine"
///     }
///
///     async fn check(&self, _cx: &GateContext) -> Result<Verdict> {
///         Ok(Verdict::pass("fine").with_value("answer", 42.0))
///     }
/// }
/// ```
#[async_trait]
pub trait Gate: Send + Sync {
    /// The gate's name: unique in a run, used by `depends_on`, events and reports.
    fn name(&self) -> &str;

    /// Runs the check once.
    ///
    /// # Errors
    ///
    /// `Err` means the check could not run at all (see the trait's contract); a check
    /// that ran and found a problem returns `Ok` with [`Outcome::Fail`].
    async fn check(&self, cx: &GateContext) -> Result<Verdict>;
}

/// What a check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Fit.
    Pass,
    /// Fit, with something a person should look at (counts as a pass).
    Warn,
    /// Not fit.
    Fail,
    /// The check ran but could not decide (e.g. not enough samples). Never a pass.
    Inconclusive,
}

impl Outcome {
    /// Whether this outcome lets the gate pass: [`Outcome::Pass`] and [`Outcome::Warn`].
    #[must_use]
    pub const fn is_pass(self) -> bool {
        matches!(self, Outcome::Pass | Outcome::Warn)
    }

    /// The lower-case name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
            Outcome::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of a check that ran: an [`Outcome`], a message, measured values and how
/// long it took.
///
/// ```
/// use deploy_gates::{Outcome, Verdict};
///
/// let verdict = Verdict::warn("p95 above 2000 ms").with_value("p95_ms", 2350.0);
/// assert_eq!(verdict.outcome, Outcome::Warn);
/// assert!(verdict.is_pass());
/// assert_eq!(verdict.values["p95_ms"], 2350.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// What the check concluded.
    pub outcome: Outcome,
    /// One line for a person, lower case, no secrets: `"200 ok in 12 ms"`.
    pub message: String,
    /// Measurements, by name with the unit as suffix: `p95_ms`, `status`, `disk_percent`.
    pub values: BTreeMap<String, f64>,
    /// How long the check took; set by the runner.
    pub duration: Duration,
}

impl Verdict {
    /// A verdict with this outcome and message, no values, zero duration.
    #[must_use]
    pub fn new(outcome: Outcome, message: impl Into<String>) -> Self {
        Verdict {
            outcome,
            message: message.into(),
            values: BTreeMap::new(),
            duration: Duration::ZERO,
        }
    }

    /// An [`Outcome::Pass`] verdict.
    #[must_use]
    pub fn pass(message: impl Into<String>) -> Self {
        Verdict::new(Outcome::Pass, message)
    }

    /// An [`Outcome::Warn`] verdict.
    #[must_use]
    pub fn warn(message: impl Into<String>) -> Self {
        Verdict::new(Outcome::Warn, message)
    }

    /// An [`Outcome::Fail`] verdict.
    #[must_use]
    pub fn fail(message: impl Into<String>) -> Self {
        Verdict::new(Outcome::Fail, message)
    }

    /// An [`Outcome::Inconclusive`] verdict.
    #[must_use]
    pub fn inconclusive(message: impl Into<String>) -> Self {
        Verdict::new(Outcome::Inconclusive, message)
    }

    /// Adds (or replaces) a measured value.
    #[must_use]
    pub fn with_value(mut self, name: impl Into<String>, value: f64) -> Self {
        self.values.insert(name.into(), value);
        self
    }

    /// Sets the duration.
    #[must_use]
    pub fn with_duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// Whether the outcome is a pass ([`Outcome::is_pass`]).
    #[must_use]
    pub fn is_pass(&self) -> bool {
        self.outcome.is_pass()
    }
}

/// Typed values shared with every check of a run, keyed by type (an HTTP client, a
/// session store...). Set with [`Runner::with_extensions`](crate::Runner::with_extensions),
/// read with [`GateContext::extension`].
///
/// ```
/// use deploy_gates::Extensions;
///
/// #[derive(Debug, PartialEq)]
/// struct Region(&'static str);
///
/// let mut extensions = Extensions::new();
/// extensions.insert(Region("eu"));
/// assert_eq!(extensions.get::<Region>(), Some(&Region("eu")));
/// assert_eq!(extensions.get::<String>(), None);
/// ```
#[derive(Clone, Default)]
pub struct Extensions {
    map: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Extensions {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Extensions::default()
    }

    /// Stores `value`, replacing any earlier value of the same type.
    pub fn insert<T: Any + Send + Sync>(&mut self, value: T) {
        self.map.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`, if one was stored.
    #[must_use]
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.map
            .get(&TypeId::of::<T>())
            .and_then(|value| value.downcast_ref::<T>())
    }

    /// How many values are stored.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no value is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions")
            .field("len", &self.map.len())
            .finish()
    }
}

/// What a check knows about the run it is part of.
///
/// The runner builds one per check. Gates tested on their own build one with
/// [`GateContext::new`] and the `with_*` methods.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use deploy_core::NullSink;
/// use deploy_gates::GateContext;
///
/// let cx = GateContext::new(Arc::new(NullSink))
///     .with_gate("health")
///     .with_target("green")
///     .with_timeout(Duration::from_secs(5));
/// assert_eq!(cx.attempt(), 1);
/// assert!(cx.remaining() <= Duration::from_secs(5));
/// ```
#[derive(Clone)]
pub struct GateContext {
    events: Arc<dyn EventSink>,
    gate: String,
    target: Option<String>,
    attempt: u32,
    deadline: Instant,
    extensions: Arc<Extensions>,
}

impl GateContext {
    /// Deadline of a context built with [`GateContext::new`]: 30 s from then.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// A context reporting to `events`: no gate name, no target, attempt 1, deadline
    /// [`GateContext::DEFAULT_TIMEOUT`] from now, no extensions.
    #[must_use]
    pub fn new(events: Arc<dyn EventSink>) -> Self {
        GateContext {
            events,
            gate: String::new(),
            target: None,
            attempt: 1,
            deadline: Instant::now() + Self::DEFAULT_TIMEOUT,
            extensions: Arc::new(Extensions::new()),
        }
    }

    /// Sets the gate name.
    #[must_use]
    pub fn with_gate(mut self, gate: impl Into<String>) -> Self {
        self.gate = gate.into();
        self
    }

    /// Sets the target label.
    #[must_use]
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Sets the attempt (round) number, 1-based.
    #[must_use]
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// Sets the deadline.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets the deadline to `timeout` from now.
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.with_deadline(Instant::now() + timeout)
    }

    /// Sets the shared extensions.
    #[must_use]
    pub fn with_extensions(mut self, extensions: Arc<Extensions>) -> Self {
        self.extensions = extensions;
        self
    }

    /// The sink to report progress to.
    #[must_use]
    pub fn events(&self) -> &dyn EventSink {
        &*self.events
    }

    /// Emits `event` on the run's sink.
    pub fn emit(&self, event: &Event) {
        self.events.emit(event);
    }

    /// The name of the gate being checked (empty when not set).
    #[must_use]
    pub fn gate(&self) -> &str {
        &self.gate
    }

    /// The name of the target the gate checks, if it has one.
    #[must_use]
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// Which round of the run this is, from 1.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// When the runner will cancel this check (the gate's timeout, or the run's
    /// timeout if that comes first). Uses tokio's clock, so paused-time tests see it
    /// move with virtual time.
    #[must_use]
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Time left until [`GateContext::deadline`] (zero once passed).
    #[must_use]
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The shared value of type `T`, if the run has one.
    #[must_use]
    pub fn extension<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.extensions.get::<T>()
    }
}

impl fmt::Debug for GateContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GateContext")
            .field("gate", &self.gate)
            .field("target", &self.target)
            .field("attempt", &self.attempt)
            .field("deadline", &self.deadline)
            .field("extensions", &self.extensions)
            .finish_non_exhaustive()
    }
}
