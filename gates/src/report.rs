//! The report of a run: what binaries render as a table, JSON, JUnit or Markdown.
//!
//! # Schema (version 1)
//!
//! [`Report`] serializes (with `serde_json`, say) to this shape. Field names and enum
//! spellings are stable within a [`Report::schema_version`]; a change that removes or
//! renames anything bumps it, adding a field does not. Durations are whole
//! milliseconds (`*_ms`, `u64`). Values are `f64` (non-finite values become `null` in
//! JSON).
//!
//! ```json
//! {
//!   "schema_version": 1,
//!   "result": "failed",            // "passed" | "failed" | "inconclusive" | "timed-out"
//!   "mode": "wait-until",          // "once" | "wait-until"
//!   "rounds": 3,
//!   "elapsed_ms": 20412,
//!   "stable_ms": 0,                // how long every gate had been passing at the end
//!   "failures": [                  // gates that failed the plan (result "failed")
//!     { "gate": "smoke", "reason": "failure-limit", "message": "create res.partner: access denied" }
//!   ],
//!   "not_passed": ["smoke"],       // gates whose last result is not a pass
//!   "gates": [                     // in plan order
//!     {
//!       "name": "health",
//!       "target": "green",         // or null
//!       "kind": "health",          // or null (gates added without a plan)
//!       "depends_on": [],
//!       "timeout_ms": 10000,
//!       "failure_limit": 0,
//!       "consecutive_error_limit": 4,
//!       "last": {                  // or null: never evaluated
//!         "round": 3,
//!         "status": "pass",        // pass | warn | fail | inconclusive | error | skipped | cancelled
//!         "message": "200 ok",
//!         "values": { "elapsed_ms": 12.0 },
//!         "duration_ms": 12
//!       },
//!       "counts": { "pass": 3, "warn": 0, "fail": 0, "error": 0,
//!                   "inconclusive": 0, "skipped": 0, "cancelled": 0 },
//!       "consecutive_errors": 0,
//!       "total_duration_ms": 40,   // sum over the checks that ran
//!       "max_duration_ms": 20
//!     }
//!   ]
//! }
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::runner::Mode;

/// The schema version [`Report`]s carry.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RunResult {
    /// Every gate passed (warnings allowed) in the same round — and, in wait-until
    /// mode, kept passing for `stable_for`.
    Passed,
    /// At least one gate exceeded its `failure_limit` or `consecutive_error_limit`; see
    /// [`Report::failures`].
    Failed,
    /// Once mode only: no gate failed the plan, but not every gate passed (an
    /// inconclusive verdict, an error or a tolerated fail, or a gate skipped because of
    /// one). Not a pass.
    Inconclusive,
    /// The run's `timeout` was reached before the gates passed (wait-until), or while
    /// checks were still running (both modes). Not a pass.
    TimedOut,
}

impl RunResult {
    /// Whether the run passed: only [`RunResult::Passed`].
    #[must_use]
    pub const fn is_passed(self) -> bool {
        matches!(self, RunResult::Passed)
    }

    /// The lower-case name as serialized.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            RunResult::Passed => "passed",
            RunResult::Failed => "failed",
            RunResult::Inconclusive => "inconclusive",
            RunResult::TimedOut => "timed-out",
        }
    }
}

impl fmt::Display for RunResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a gate failed the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FailureReason {
    /// Its number of `Fail` verdicts exceeded its `failure_limit`.
    FailureLimit,
    /// Its number of consecutive errors exceeded its `consecutive_error_limit`.
    ConsecutiveErrorLimit,
}

/// A gate that failed the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GateFailure {
    /// The gate.
    pub gate: String,
    /// Which limit it exceeded.
    pub reason: FailureReason,
    /// The message of the result that exceeded it.
    pub message: String,
}

/// What happened to a gate in one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GateStatus {
    /// Verdict `Pass`.
    Pass,
    /// Verdict `Warn` (a pass).
    Warn,
    /// Verdict `Fail`.
    Fail,
    /// Verdict `Inconclusive` (not a pass).
    Inconclusive,
    /// The check could not run: it returned `Err`, timed out or panicked.
    Error,
    /// Not run because a gate it depends on did not pass in this round.
    Skipped,
    /// Started or waiting, then cancelled: by `fail_fast` or by the run's timeout.
    Cancelled,
}

impl GateStatus {
    /// Whether this status lets the gate pass: [`GateStatus::Pass`] and [`GateStatus::Warn`].
    #[must_use]
    pub const fn is_pass(self) -> bool {
        matches!(self, GateStatus::Pass | GateStatus::Warn)
    }

    /// The lower-case name as serialized.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            GateStatus::Pass => "pass",
            GateStatus::Warn => "warn",
            GateStatus::Fail => "fail",
            GateStatus::Inconclusive => "inconclusive",
            GateStatus::Error => "error",
            GateStatus::Skipped => "skipped",
            GateStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for GateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many times each status happened to a gate over a run.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Counts {
    /// `Pass` verdicts.
    pub pass: u32,
    /// `Warn` verdicts.
    pub warn: u32,
    /// `Fail` verdicts.
    pub fail: u32,
    /// Checks that could not run.
    pub error: u32,
    /// `Inconclusive` verdicts.
    pub inconclusive: u32,
    /// Rounds skipped because of a dependency.
    pub skipped: u32,
    /// Rounds cancelled.
    pub cancelled: u32,
}

impl Counts {
    pub(crate) fn add(&mut self, status: GateStatus) {
        let slot = match status {
            GateStatus::Pass => &mut self.pass,
            GateStatus::Warn => &mut self.warn,
            GateStatus::Fail => &mut self.fail,
            GateStatus::Error => &mut self.error,
            GateStatus::Inconclusive => &mut self.inconclusive,
            GateStatus::Skipped => &mut self.skipped,
            GateStatus::Cancelled => &mut self.cancelled,
        };
        *slot = slot.saturating_add(1);
    }

    /// Checks that ran (every status but skipped and cancelled).
    #[must_use]
    pub fn checks(&self) -> u32 {
        self.pass
            .saturating_add(self.warn)
            .saturating_add(self.fail)
            .saturating_add(self.error)
            .saturating_add(self.inconclusive)
    }
}

/// A gate's result in one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GateResult {
    /// The round, from 1.
    pub round: u32,
    /// What happened.
    pub status: GateStatus,
    /// The verdict's message, the error, or why it was skipped or cancelled.
    pub message: String,
    /// The verdict's values (empty for errors, skips and cancellations).
    pub values: BTreeMap<String, f64>,
    /// How long the check took (zero for skips; the time until cancellation otherwise).
    pub duration_ms: u64,
}

/// One gate's part of a [`Report`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GateReport {
    /// The gate's name.
    pub name: String,
    /// The target it checks, if known.
    pub target: Option<String>,
    /// Its kind (`"health"`, ...), if known.
    pub kind: Option<String>,
    /// The gates it depends on.
    pub depends_on: Vec<String>,
    /// Its check timeout.
    pub timeout_ms: u64,
    /// Its failure limit.
    pub failure_limit: u32,
    /// Its consecutive error limit.
    pub consecutive_error_limit: u32,
    /// Its result in the last round it took part in; `None` if it never did.
    pub last: Option<GateResult>,
    /// How often each status happened.
    pub counts: Counts,
    /// Errors in a row at the end of the run.
    pub consecutive_errors: u32,
    /// Sum of the durations of the checks that ran.
    pub total_duration_ms: u64,
    /// Longest check.
    pub max_duration_ms: u64,
}

impl GateReport {
    /// Whether the gate's last result is a pass.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.last.as_ref().is_some_and(|last| last.status.is_pass())
    }

    /// The status of the last result, if any.
    #[must_use]
    pub fn last_status(&self) -> Option<GateStatus> {
        self.last.as_ref().map(|last| last.status)
    }
}

/// The result of a [`Runner::run`](crate::Runner::run). See the
/// [module docs](crate::report) for the serialized schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Report {
    /// [`REPORT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// How the run ended.
    pub result: RunResult,
    /// The mode it ran in.
    pub mode: Mode,
    /// Rounds started.
    pub rounds: u32,
    /// Time from start to end of the run.
    pub elapsed_ms: u64,
    /// How long every gate had been passing at the end (from the start of the first
    /// round of the current all-pass streak to the start of the last round); 0 when the
    /// last round was not all-pass.
    pub stable_ms: u64,
    /// The gates that failed the plan, in plan order (non-empty iff `result` is
    /// `failed`).
    pub failures: Vec<GateFailure>,
    /// The gates whose last result is not a pass, in plan order.
    pub not_passed: Vec<String>,
    /// Every gate, in the order given to the runner (plan order).
    pub gates: Vec<GateReport>,
}

impl Report {
    /// Whether the run passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.result.is_passed()
    }

    /// The report of gate `name`.
    #[must_use]
    pub fn gate(&self, name: &str) -> Option<&GateReport> {
        self.gates.iter().find(|gate| gate.name == name)
    }

    /// The gates whose last result is a warning.
    pub fn warnings(&self) -> impl Iterator<Item = &GateReport> {
        self.gates
            .iter()
            .filter(|gate| gate.last_status() == Some(GateStatus::Warn))
    }
}
