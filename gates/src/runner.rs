//! The runner: evaluates gates concurrently, once or until they pass.
//!
//! # Semantics
//!
//! A **round** evaluates every gate once. Gates without dependencies start together;
//! a gate with `depends_on` starts as soon as all its dependencies *passed in that
//! round* (`Pass` or `Warn`); if one of them did not pass, the gate is not run and is
//! reported [`GateStatus::Skipped`], which is not a pass. Each check runs in its own
//! task with its own **timeout**: a check still running then is cancelled and counts as
//! an *error* ([`Error::Timeout`]: it could not run), not as a fail. A panicking check
//! is an error too ([`Error::Panicked`]).
//!
//! **Counting** (Argo Rollouts' analysis): every gate has a `failure_limit` (default 0)
//! and a `consecutive_error_limit` (default [`RunSettings::DEFAULT_CONSECUTIVE_ERROR_LIMIT`]
//! = 4, as in Argo). A gate *fails the plan* once its number of `Fail` verdicts over the
//! run exceeds `failure_limit`, or its number of errors in a row exceeds
//! `consecutive_error_limit` (any verdict resets that streak; skipped and cancelled
//! rounds leave it as it is). `Inconclusive` never counts as a pass and never fails the
//! plan by itself. When a gate fails the plan, the current round finishes (unless
//! `fail_fast`) and the run ends [`RunResult::Failed`].
//!
//! **fail_fast**: the first `Fail` verdict in a round (or an error that makes its gate
//! exceed `consecutive_error_limit`) cancels the rest of the round: running checks
//! are dropped and waiting gates are not started; both are reported
//! [`GateStatus::Cancelled`], which changes no counter.
//!
//! **[`Mode::Once`]**: one round, then
//!
//! | round | result |
//! |---|---|
//! | every gate `Pass`/`Warn` | [`RunResult::Passed`] |
//! | a gate exceeded a limit (e.g. a `Fail` with the default `failure_limit` 0) | [`RunResult::Failed`] |
//! | otherwise: an `Inconclusive`, an error within its limit, a tolerated `Fail`, a skip | [`RunResult::Inconclusive`] (not a pass) |
//! | the run's `timeout` reached during the round | [`RunResult::TimedOut`] |
//!
//! **[`Mode::WaitUntil`]** (Azure DevOps gates: sampling interval, timeout, minimum
//! success duration): rounds start every `interval` (measured from round start to round
//! start; a round longer than `interval` is followed at once by the next). When every
//! gate passes in the same round, a stability window opens at that round's start; the
//! run is [`RunResult::Passed`] at the first all-pass round that starts `stable_for` or
//! more after the window opened (with `stable_for = 0`, the first all-pass round). Any
//! round that is not all-pass — a gate that flaps — closes the window, and it opens
//! again at the next all-pass round. The run is [`RunResult::TimedOut`] when `timeout`
//! (from the start of the run) is reached during a round, or when the next round could
//! not start before it; [`RunResult::Failed`] as soon as a gate exceeds a limit.
//!
//! **Time** is tokio's clock ([`tokio::time::Instant`], `sleep_until`, `timeout_at`), so
//! tests with a paused clock (`#[tokio::test(start_paused = true)]`) run wait-until plans
//! of minutes in milliseconds, deterministically.
//!
//! **Events** go to the sink given to [`Runner::run`]: subject `"gates"` for the run
//! (started; progress at each wait-until round and while the stability window fills;
//! finished with `result`, `rounds`, `elapsed_ms`), subject `"gate NAME"` per gate and
//! round: started when its check starts (fields `round`, `target`), and exactly one
//! finished per round — also for skipped and cancelled gates — with fields `outcome`
//! (a [`GateStatus`] name), `elapsed_ms`, `round` and the verdict's values (the
//! runner's fields win a name clash). A `Warn` verdict, and a gate exceeding a limit,
//! also emit a warning.
//!
//! The runner must be polled inside a tokio runtime: it spawns one task per check.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deploy_core::{Event, EventSink};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::gate::{Extensions, Gate, GateContext, Outcome, Verdict};
use crate::report::{
    Counts, FailureReason, GateFailure, GateReport, GateResult, GateStatus, Report, RunResult,
    REPORT_SCHEMA_VERSION,
};
use crate::{graph, BuildContext, Error, GateFactory, GateSpec, Plan, Result, Scope};

/// How long [`Runner::run`] waits, after the gates, for the removal of records that
/// cancelled or failed checks left (a removal retries for about half a minute).
pub const CLEANUP_WAIT: Duration = Duration::from_secs(40);

/// Whether a run evaluates the gates once or until they pass.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// `"once"`: a single round.
    #[default]
    Once,
    /// `"wait-until"`: rounds every `interval` until every gate passes for `stable_for`,
    /// or `timeout`.
    WaitUntil,
}

impl Mode {
    /// The name used in plans and reports.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Once => "once",
            Mode::WaitUntil => "wait-until",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run goes: mode, timing, and the defaults of per-gate settings. The `[run]`
/// table of a plan.
///
/// ```
/// use std::time::Duration;
/// use deploy_gates::{Mode, RunSettings};
///
/// let settings = RunSettings::default()
///     .with_mode(Mode::WaitUntil)
///     .with_interval(Duration::from_secs(5))
///     .with_stable_for(Duration::from_secs(30));
/// assert_eq!(settings.timeout, Duration::from_secs(300));
/// assert_eq!(settings.consecutive_error_limit, 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSettings {
    /// Once or wait-until. Default [`Mode::Once`].
    pub mode: Mode,
    /// Wait-until: time between the starts of two rounds. Default 10 s.
    pub interval: Duration,
    /// Time after which the run gives up ([`RunResult::TimedOut`]). Default 5 min.
    pub timeout: Duration,
    /// Wait-until: how long every gate must keep passing. Default 0.
    pub stable_for: Duration,
    /// Cancel the rest of a round at its first failure. Default false.
    pub fail_fast: bool,
    /// Check timeout of gates that set none. Default 30 s.
    pub gate_timeout: Duration,
    /// `failure_limit` of gates that set none. Default 0.
    pub failure_limit: u32,
    /// `consecutive_error_limit` of gates that set none. Default 4.
    pub consecutive_error_limit: u32,
}

impl RunSettings {
    /// Default `interval`.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
    /// Default `timeout`.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
    /// Default `gate_timeout`.
    pub const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default `failure_limit`: the first `Fail` fails the plan.
    pub const DEFAULT_FAILURE_LIMIT: u32 = 0;
    /// Default `consecutive_error_limit`: the fifth error in a row fails the plan
    /// (Argo Rollouts' default).
    pub const DEFAULT_CONSECUTIVE_ERROR_LIMIT: u32 = 4;

    /// Sets the mode.
    #[must_use]
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the interval.
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the run's timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the stability duration.
    #[must_use]
    pub fn with_stable_for(mut self, stable_for: Duration) -> Self {
        self.stable_for = stable_for;
        self
    }

    /// Sets fail-fast.
    #[must_use]
    pub fn with_fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// Sets the default check timeout.
    #[must_use]
    pub fn with_gate_timeout(mut self, gate_timeout: Duration) -> Self {
        self.gate_timeout = gate_timeout;
        self
    }

    /// Sets the default failure limit.
    #[must_use]
    pub fn with_failure_limit(mut self, failure_limit: u32) -> Self {
        self.failure_limit = failure_limit;
        self
    }

    /// Sets the default consecutive error limit.
    #[must_use]
    pub fn with_consecutive_error_limit(mut self, limit: u32) -> Self {
        self.consecutive_error_limit = limit;
        self
    }

    /// Checks that the durations are usable.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] (scope [`Scope::Run`]) for a zero `interval`, `timeout`
    /// or `gate_timeout`.
    pub fn validate(&self) -> Result<()> {
        for (field, value) in [
            ("interval", self.interval),
            ("timeout", self.timeout),
            ("gate_timeout", self.gate_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::InvalidValue {
                    scope: Scope::Run,
                    field: field.to_owned(),
                    reason: "must be above zero".to_owned(),
                });
            }
        }
        Ok(())
    }
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            mode: Mode::Once,
            interval: Self::DEFAULT_INTERVAL,
            timeout: Self::DEFAULT_TIMEOUT,
            stable_for: Duration::ZERO,
            fail_fast: false,
            gate_timeout: Self::DEFAULT_GATE_TIMEOUT,
            failure_limit: Self::DEFAULT_FAILURE_LIMIT,
            consecutive_error_limit: Self::DEFAULT_CONSECUTIVE_ERROR_LIMIT,
        }
    }
}

/// A gate as the runner sees it: the gate plus its per-gate settings. Settings left
/// unset take the run's defaults.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use deploy_gates::testing::{ScriptedGate, Step};
/// use deploy_gates::GateEntry;
///
/// let entry = GateEntry::new(Arc::new(ScriptedGate::new("smoke", [Step::pass()])))
///     .with_timeout(Duration::from_secs(5))
///     .depends_on(["auth"]);
/// assert_eq!(entry.name(), "smoke");
/// ```
#[derive(Clone)]
pub struct GateEntry {
    gate: Arc<dyn Gate>,
    name: String,
    target: Option<String>,
    kind: Option<String>,
    timeout: Option<Duration>,
    failure_limit: Option<u32>,
    consecutive_error_limit: Option<u32>,
    depends_on: Vec<String>,
}

impl GateEntry {
    /// An entry for `gate`, named [`Gate::name`], with the run's defaults.
    #[must_use]
    pub fn new(gate: Arc<dyn Gate>) -> Self {
        GateEntry {
            name: gate.name().to_owned(),
            gate,
            target: None,
            kind: None,
            timeout: None,
            failure_limit: None,
            consecutive_error_limit: None,
            depends_on: Vec::new(),
        }
    }

    /// An entry for `gate` with everything else from `spec` (its name included).
    #[must_use]
    pub fn from_spec(spec: &GateSpec, gate: Arc<dyn Gate>) -> Self {
        GateEntry {
            gate,
            name: spec.name.clone(),
            target: Some(spec.target.clone()),
            kind: Some(spec.kind().as_str().to_owned()),
            timeout: Some(spec.timeout),
            failure_limit: Some(spec.failure_limit),
            consecutive_error_limit: Some(spec.consecutive_error_limit),
            depends_on: spec.depends_on.clone(),
        }
    }

    /// The name the runner, dependencies and the report use.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the target label (reported, and passed in [`GateContext::target`]).
    #[must_use]
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Sets the kind label (reported).
    #[must_use]
    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Sets the check timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the failure limit.
    #[must_use]
    pub fn with_failure_limit(mut self, limit: u32) -> Self {
        self.failure_limit = Some(limit);
        self
    }

    /// Sets the consecutive error limit.
    #[must_use]
    pub fn with_consecutive_error_limit(mut self, limit: u32) -> Self {
        self.consecutive_error_limit = Some(limit);
        self
    }

    /// Adds dependencies: this gate runs in a round only after these passed in it.
    #[must_use]
    pub fn depends_on<I, S>(mut self, gates: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.depends_on.extend(gates.into_iter().map(Into::into));
        self
    }
}

impl fmt::Debug for GateEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GateEntry")
            .field("name", &self.name)
            .field("target", &self.target)
            .field("kind", &self.kind)
            .field("timeout", &self.timeout)
            .field("failure_limit", &self.failure_limit)
            .field("consecutive_error_limit", &self.consecutive_error_limit)
            .field("depends_on", &self.depends_on)
            .finish_non_exhaustive()
    }
}

struct Resolved {
    gate: Arc<dyn Gate>,
    name: String,
    target: Option<String>,
    kind: Option<String>,
    timeout: Duration,
    failure_limit: u32,
    consecutive_error_limit: u32,
    depends_on: Vec<String>,
    deps: Vec<usize>,
}

/// Evaluates a set of gates; see the [module docs](self) for the semantics.
///
/// ```
/// use std::sync::Arc;
/// use deploy_core::NullSink;
/// use deploy_gates::testing::{ScriptedGate, Step};
/// use deploy_gates::{GateEntry, RunResult, RunSettings, Runner};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> deploy_gates::Result<()> {
/// let runner = Runner::new(
///     RunSettings::default(),
///     vec![
///         GateEntry::new(Arc::new(ScriptedGate::new("auth", [Step::pass()]))),
///         GateEntry::new(Arc::new(ScriptedGate::new("smoke", [Step::warn()]))).depends_on(["auth"]),
///     ],
/// )?;
/// let report = runner.run(Arc::new(NullSink)).await;
/// assert_eq!(report.result, RunResult::Passed);
/// assert_eq!(report.warnings().count(), 1);
/// # Ok(())
/// # }
/// ```
pub struct Runner {
    settings: RunSettings,
    gates: Vec<Resolved>,
    extensions: Arc<Extensions>,
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("settings", &self.settings)
            .field(
                "gates",
                &self
                    .gates
                    .iter()
                    .map(|g| g.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// A runner for `gates` (reported in this order) with `settings`.
    ///
    /// # Errors
    ///
    /// Configuration errors: [`Error::NoGates`], [`Error::DuplicateGate`],
    /// [`Error::UnknownDependency`], [`Error::DependencyCycle`], and
    /// [`Error::InvalidValue`] for an empty name or a zero duration.
    pub fn new(settings: RunSettings, gates: Vec<GateEntry>) -> Result<Runner> {
        settings.validate()?;
        if gates.is_empty() {
            return Err(Error::NoGates);
        }
        for entry in &gates {
            if entry.name.is_empty() {
                return Err(Error::InvalidValue {
                    scope: Scope::Gate(String::new()),
                    field: "name".to_owned(),
                    reason: "must not be empty".to_owned(),
                });
            }
            if entry.timeout == Some(Duration::ZERO) {
                return Err(Error::InvalidValue {
                    scope: Scope::Gate(entry.name.clone()),
                    field: "timeout".to_owned(),
                    reason: "must be above zero".to_owned(),
                });
            }
        }
        let graph: Vec<(&str, &[String])> = gates
            .iter()
            .map(|g| (g.name.as_str(), g.depends_on.as_slice()))
            .collect();
        let deps = graph::resolve(&graph)?;
        let gates = gates
            .into_iter()
            .zip(deps)
            .map(|(entry, deps)| Resolved {
                timeout: entry.timeout.unwrap_or(settings.gate_timeout),
                failure_limit: entry.failure_limit.unwrap_or(settings.failure_limit),
                consecutive_error_limit: entry
                    .consecutive_error_limit
                    .unwrap_or(settings.consecutive_error_limit),
                gate: entry.gate,
                name: entry.name,
                target: entry.target,
                kind: entry.kind,
                depends_on: entry.depends_on,
                deps,
            })
            .collect();
        Ok(Runner {
            settings,
            gates,
            extensions: Arc::new(Extensions::new()),
        })
    }

    /// A runner for a [`Plan`]: builds every gate with `factory` (which may resolve
    /// secrets, reporting to `events`), in plan order, with the plan's `[run]` settings.
    ///
    /// # Errors
    ///
    /// What `factory` returns ([`Error::NoFactory`], [`Error::Secret`], ...), and the
    /// errors of [`Runner::new`].
    pub fn from_plan(
        plan: &Plan,
        factory: &dyn GateFactory,
        events: &dyn EventSink,
    ) -> Result<Runner> {
        let mut entries = Vec::with_capacity(plan.gates.len());
        for spec in &plan.gates {
            let target = plan
                .target(&spec.target)
                .ok_or_else(|| Error::UnknownTarget {
                    gate: spec.name.clone(),
                    target: spec.target.clone(),
                })?;
            let cx = BuildContext::new(target, events).with_targets(&plan.targets);
            let gate = factory.build(spec, &cx)?;
            entries.push(GateEntry::from_spec(spec, gate));
        }
        Runner::new(plan.run.clone(), entries)
    }

    /// Shares `extensions` with every check ([`GateContext::extension`]).
    #[must_use]
    pub fn with_extensions(mut self, extensions: Extensions) -> Self {
        self.extensions = Arc::new(extensions);
        self
    }

    /// The run settings.
    #[must_use]
    pub fn settings(&self) -> &RunSettings {
        &self.settings
    }

    /// The gate names, in order.
    pub fn gate_names(&self) -> impl Iterator<Item = &str> {
        self.gates.iter().map(|g| g.name.as_str())
    }

    /// Runs the gates and reports how it went. Never fails: checks that could not run
    /// are part of the report. Can be called again for a fresh run.
    ///
    /// Must be polled inside a tokio runtime. Dropping the future cancels every check.
    pub async fn run(&self, events: Arc<dyn EventSink>) -> Report {
        let start = Instant::now();
        let deadline = start + self.settings.timeout;
        let mut states: Vec<GateState> = self.gates.iter().map(|_| GateState::default()).collect();
        let mut round: u32 = 0;
        let mut streak_start: Option<Instant> = None;
        let mut stable: Duration;
        events.emit(
            &Event::started(
                "gates",
                format!(
                    "evaluating {} gates ({})",
                    self.gates.len(),
                    self.settings.mode
                ),
            )
            .with_field("gates", self.gates.len())
            .with_field("mode", self.settings.mode.as_str()),
        );

        let result = loop {
            round = round.saturating_add(1);
            let round_start = Instant::now();
            if self.settings.mode == Mode::WaitUntil {
                events.emit(
                    &Event::progress("gates", format!("round {round}")).with_field("round", round),
                );
            }
            let timed_out = self.run_round(round, deadline, &mut states, &events).await;

            let all_pass = states.iter().all(|s| {
                s.last
                    .as_ref()
                    .is_some_and(|l| l.round == round && l.status.is_pass())
            });
            if all_pass {
                let since = *streak_start.get_or_insert(round_start);
                stable = round_start.saturating_duration_since(since);
            } else {
                streak_start = None;
                stable = Duration::ZERO;
            }

            if states.iter().any(|s| s.failure.is_some()) {
                break RunResult::Failed;
            }
            if timed_out {
                break RunResult::TimedOut;
            }
            match self.settings.mode {
                Mode::Once => {
                    break if all_pass {
                        RunResult::Passed
                    } else {
                        RunResult::Inconclusive
                    };
                }
                Mode::WaitUntil => {
                    if all_pass && stable >= self.settings.stable_for {
                        break RunResult::Passed;
                    }
                    if all_pass {
                        events.emit(
                            &Event::progress(
                                "gates",
                                format!(
                                    "all gates pass; stable for {} of {}",
                                    humantime::format_duration(stable),
                                    humantime::format_duration(self.settings.stable_for)
                                ),
                            )
                            .with_field("stable_ms", millis(stable))
                            .with_field("round", round),
                        );
                    }
                    let next = round_start + self.settings.interval;
                    if next >= deadline {
                        break RunResult::TimedOut;
                    }
                    tokio::time::sleep_until(next).await;
                }
            }
        };

        let elapsed = start.elapsed();
        let report = self.report(result, round, elapsed, stable, states);
        self.wait_for_cleanups(&events).await;
        events.emit(
            &Event::finished("gates", result.as_str())
                .with_field("result", result.as_str())
                .with_field("rounds", round)
                .with_field("elapsed_ms", millis(elapsed)),
        );
        report
    }

    /// Waits (at most [`CLEANUP_WAIT`]) for the removal of records that cancelled or
    /// failed checks left (`smoke-crud`, `filestore`), so that no caller, however soon
    /// it exits, leaves a test record behind. The wait is not counted in the report's
    /// `elapsed_ms`.
    async fn wait_for_cleanups(&self, events: &Arc<dyn EventSink>) {
        if crate::builtin::pending_cleanups() == 0 {
            return;
        }
        events.emit(&Event::progress(
            "gates",
            "waiting for the removal of records left by cancelled checks",
        ));
        let left = crate::builtin::wait_for_cleanups(CLEANUP_WAIT).await;
        if left > 0 {
            tracing::warn!(left, "record removals still running after the gates");
            events.emit(&Event::warning(
                "gates",
                format!("{left} removal(s) of records left by checks still running; the log names the records"),
            ));
        }
    }

    /// Runs one round; returns whether the run's deadline was reached during it.
    async fn run_round(
        &self,
        round: u32,
        deadline: Instant,
        states: &mut [GateState],
        events: &Arc<dyn EventSink>,
    ) -> bool {
        let mut round = Round {
            runner: self,
            number: round,
            deadline,
            phase: vec![Phase::Waiting; self.gates.len()],
            started_at: vec![None; self.gates.len()],
            tasks: JoinSet::new(),
            ids: HashMap::new(),
            events,
        };
        round.schedule(states);

        let mut timed_out = false;
        let mut cancel_reason: Option<String> = None;
        while !round.tasks.is_empty() {
            let joined = tokio::select! {
                biased;
                joined = round.tasks.join_next_with_id() => joined,
                () = tokio::time::sleep_until(deadline) => {
                    timed_out = true;
                    cancel_reason = Some("cancelled: the run's timeout was reached".to_owned());
                    break;
                }
            };
            let Some(joined) = joined else { break };
            let (index, result, elapsed) = match joined {
                Ok((id, done)) => {
                    round.ids.remove(&id);
                    done
                }
                Err(err) => {
                    // Only panics get here: tasks are aborted only after the loop.
                    let Some(index) = round.ids.remove(&err.id()) else {
                        continue;
                    };
                    let elapsed = round.started_at[index].map_or(Duration::ZERO, |t| t.elapsed());
                    let gate = self.gates[index].name.clone();
                    (index, Err(Error::Panicked { gate }), elapsed)
                }
            };
            let status = round.finish(index, result, elapsed, &mut states[index]);
            if self.settings.fail_fast
                && (status == GateStatus::Fail || states[index].failure.is_some())
            {
                cancel_reason = Some(format!(
                    "cancelled: fail_fast after gate `{}` {}",
                    self.gates[index].name,
                    if status == GateStatus::Fail {
                        "failed"
                    } else {
                        "exceeded its consecutive error limit"
                    }
                ));
                break;
            }
            round.schedule(states);
        }

        if let Some(reason) = cancel_reason {
            round.tasks.abort_all();
            round.cancel_rest(&reason, states);
        }
        timed_out
    }

    fn report(
        &self,
        result: RunResult,
        rounds: u32,
        elapsed: Duration,
        stable: Duration,
        states: Vec<GateState>,
    ) -> Report {
        let mut failures = Vec::new();
        let mut not_passed = Vec::new();
        let mut gates = Vec::with_capacity(self.gates.len());
        for (entry, state) in self.gates.iter().zip(states) {
            if let Some(failure) = state.failure {
                failures.push(failure);
            }
            let report = GateReport {
                name: entry.name.clone(),
                target: entry.target.clone(),
                kind: entry.kind.clone(),
                depends_on: entry.depends_on.clone(),
                timeout_ms: millis(entry.timeout),
                failure_limit: entry.failure_limit,
                consecutive_error_limit: entry.consecutive_error_limit,
                last: state.last,
                counts: state.counts,
                consecutive_errors: state.consecutive_errors,
                total_duration_ms: millis(state.total_duration),
                max_duration_ms: millis(state.max_duration),
            };
            if !report.passed() {
                not_passed.push(entry.name.clone());
            }
            gates.push(report);
        }
        Report {
            schema_version: REPORT_SCHEMA_VERSION,
            result,
            mode: self.settings.mode,
            rounds,
            elapsed_ms: millis(elapsed),
            stable_ms: millis(stable),
            failures,
            not_passed,
            gates,
        }
    }
}

/// Where a gate is in the current round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Running,
    Passed,
    NotPassed,
}

type TaskOutput = (usize, Result<Verdict>, Duration);

struct Round<'a> {
    runner: &'a Runner,
    number: u32,
    deadline: Instant,
    phase: Vec<Phase>,
    started_at: Vec<Option<Instant>>,
    tasks: JoinSet<TaskOutput>,
    ids: HashMap<tokio::task::Id, usize>,
    events: &'a Arc<dyn EventSink>,
}

impl Round<'_> {
    /// Starts every waiting gate whose dependencies passed, and skips every waiting
    /// gate one of whose dependencies did not (repeatedly, as skips cascade).
    fn schedule(&mut self, states: &mut [GateState]) {
        let runner = self.runner;
        loop {
            let mut skipped_any = false;
            for index in 0..self.phase.len() {
                if self.phase[index] != Phase::Waiting {
                    continue;
                }
                let deps = &runner.gates[index].deps;
                if let Some(&blocker) = deps.iter().find(|&&d| self.phase[d] == Phase::NotPassed) {
                    let dependency = &runner.gates[blocker];
                    let why = states[blocker]
                        .last
                        .as_ref()
                        .map_or("not run", |l| l.status.as_str());
                    let message = format!(
                        "skipped: dependency `{}` did not pass ({why})",
                        dependency.name
                    );
                    self.phase[index] = Phase::NotPassed;
                    self.record_without_check(
                        index,
                        GateStatus::Skipped,
                        message,
                        Duration::ZERO,
                        states,
                    );
                    skipped_any = true;
                } else if deps.iter().all(|&d| self.phase[d] == Phase::Passed) {
                    self.spawn(index);
                }
            }
            if !skipped_any {
                break;
            }
        }
    }

    fn spawn(&mut self, index: usize) {
        let runner = self.runner;
        let entry = &runner.gates[index];
        let now = Instant::now();
        let gate_deadline = now + entry.timeout;
        let mut cx = GateContext::new(Arc::clone(self.events))
            .with_gate(entry.name.clone())
            .with_attempt(self.number)
            .with_deadline(gate_deadline.min(self.deadline))
            .with_extensions(Arc::clone(&runner.extensions));
        if let Some(target) = &entry.target {
            cx = cx.with_target(target.clone());
        }
        let mut event = Event::started(format!("gate {}", entry.name), "checking")
            .with_field("round", self.number);
        if let Some(target) = &entry.target {
            event = event.with_field("target", target.as_str());
        }
        self.events.emit(&event);

        let gate = Arc::clone(&entry.gate);
        let name = entry.name.clone();
        let timeout = entry.timeout;
        let handle = self.tasks.spawn(async move {
            let started = Instant::now();
            let result = match tokio::time::timeout_at(gate_deadline, gate.check(&cx)).await {
                Ok(result) => result,
                Err(_elapsed) => Err(Error::Timeout {
                    gate: name,
                    timeout,
                }),
            };
            (index, result, started.elapsed())
        });
        self.ids.insert(handle.id(), index);
        self.started_at[index] = Some(now);
        self.phase[index] = Phase::Running;
    }

    /// Records a finished check; returns its status.
    fn finish(
        &mut self,
        index: usize,
        result: Result<Verdict>,
        elapsed: Duration,
        state: &mut GateState,
    ) -> GateStatus {
        let runner = self.runner;
        let entry = &runner.gates[index];
        let (status, message, values) = match result {
            Ok(verdict) => (status_of(verdict.outcome), verdict.message, verdict.values),
            Err(err) => (GateStatus::Error, err.to_string(), BTreeMap::new()),
        };
        self.phase[index] = if status.is_pass() {
            Phase::Passed
        } else {
            Phase::NotPassed
        };
        let subject = format!("gate {}", entry.name);
        // The verdict's values first, so the runner's own fields win a name clash.
        let mut event = Event::finished(subject.clone(), message.clone());
        for (name, value) in &values {
            event = event.with_field(name.clone(), *value);
        }
        let event = event
            .with_field("outcome", status.as_str())
            .with_field("elapsed_ms", millis(elapsed))
            .with_field("round", self.number);
        self.events.emit(&event);
        if status == GateStatus::Warn {
            self.events
                .emit(&Event::warning(subject.clone(), message.clone()));
        }
        let was_failed = state.failure.is_some();
        state.record(entry, self.number, status, message, values, elapsed, true);
        if let (false, Some(failure)) = (was_failed, &state.failure) {
            let limit = match failure.reason {
                FailureReason::FailureLimit => format!("failure_limit {}", entry.failure_limit),
                FailureReason::ConsecutiveErrorLimit => {
                    format!("consecutive_error_limit {}", entry.consecutive_error_limit)
                }
            };
            self.events.emit(
                &Event::warning(subject, format!("exceeded its {limit}; the plan fails"))
                    .with_field("fails", state.counts.fail)
                    .with_field("consecutive_errors", state.consecutive_errors),
            );
        }
        status
    }

    fn record_without_check(
        &mut self,
        index: usize,
        status: GateStatus,
        message: String,
        elapsed: Duration,
        states: &mut [GateState],
    ) {
        let runner = self.runner;
        let entry = &runner.gates[index];
        self.events.emit(
            &Event::finished(format!("gate {}", entry.name), message.clone())
                .with_field("outcome", status.as_str())
                .with_field("elapsed_ms", millis(elapsed))
                .with_field("round", self.number),
        );
        states[index].record(
            entry,
            self.number,
            status,
            message,
            BTreeMap::new(),
            elapsed,
            false,
        );
    }

    /// Marks every gate still waiting or running as cancelled.
    fn cancel_rest(&mut self, reason: &str, states: &mut [GateState]) {
        for index in 0..self.phase.len() {
            if matches!(self.phase[index], Phase::Waiting | Phase::Running) {
                let elapsed = self.started_at[index].map_or(Duration::ZERO, |t| t.elapsed());
                self.phase[index] = Phase::NotPassed;
                self.record_without_check(
                    index,
                    GateStatus::Cancelled,
                    reason.to_owned(),
                    elapsed,
                    states,
                );
            }
        }
    }
}

fn status_of(outcome: Outcome) -> GateStatus {
    match outcome {
        Outcome::Pass => GateStatus::Pass,
        Outcome::Warn => GateStatus::Warn,
        Outcome::Fail => GateStatus::Fail,
        Outcome::Inconclusive => GateStatus::Inconclusive,
    }
}

/// A gate's counters over a run.
#[derive(Debug, Default)]
struct GateState {
    counts: Counts,
    consecutive_errors: u32,
    last: Option<GateResult>,
    total_duration: Duration,
    max_duration: Duration,
    failure: Option<GateFailure>,
}

impl GateState {
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        entry: &Resolved,
        round: u32,
        status: GateStatus,
        message: String,
        values: BTreeMap<String, f64>,
        elapsed: Duration,
        ran: bool,
    ) {
        self.counts.add(status);
        match status {
            GateStatus::Error => {
                self.consecutive_errors = self.consecutive_errors.saturating_add(1)
            }
            GateStatus::Pass | GateStatus::Warn | GateStatus::Fail | GateStatus::Inconclusive => {
                self.consecutive_errors = 0;
            }
            GateStatus::Skipped | GateStatus::Cancelled => {}
        }
        if ran {
            self.total_duration = self.total_duration.saturating_add(elapsed);
            self.max_duration = self.max_duration.max(elapsed);
        }
        if self.failure.is_none() {
            let reason = match status {
                GateStatus::Fail if self.counts.fail > entry.failure_limit => {
                    Some(FailureReason::FailureLimit)
                }
                GateStatus::Error if self.consecutive_errors > entry.consecutive_error_limit => {
                    Some(FailureReason::ConsecutiveErrorLimit)
                }
                _ => None,
            };
            if let Some(reason) = reason {
                self.failure = Some(GateFailure {
                    gate: entry.name.clone(),
                    reason,
                    message: message.clone(),
                });
            }
        }
        self.last = Some(GateResult {
            round,
            status,
            message,
            values,
            duration_ms: millis(elapsed),
        });
    }
}

/// Whole milliseconds, saturating.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
