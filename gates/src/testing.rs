//! Test doubles: a gate that plays a script.
//!
//! Crates that orchestrate gates (deployments, rollbacks) test their logic with
//! [`ScriptedGate`] instead of a live system. It uses tokio's clock, so with a paused
//! clock its delays cost no real time.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::{Error, Gate, GateContext, Outcome, Result, Verdict};

#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Verdict(Outcome),
    Error,
    Hang,
}

/// One answer of a [`ScriptedGate`]: an outcome or an error, after an optional delay.
///
/// ```
/// use std::time::Duration;
/// use deploy_gates::testing::Step;
///
/// let slow_pass = Step::pass().after(Duration::from_secs(1));
/// let measured = Step::warn().message("p95 high").value("p95_ms", 2500.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    answer: Answer,
    delay: Duration,
    message: Option<String>,
    values: BTreeMap<String, f64>,
}

impl Step {
    fn new(answer: Answer) -> Self {
        Step {
            answer,
            delay: Duration::ZERO,
            message: None,
            values: BTreeMap::new(),
        }
    }

    /// Answers `Pass`.
    #[must_use]
    pub fn pass() -> Self {
        Step::new(Answer::Verdict(Outcome::Pass))
    }

    /// Answers `Warn`.
    #[must_use]
    pub fn warn() -> Self {
        Step::new(Answer::Verdict(Outcome::Warn))
    }

    /// Answers `Fail`.
    #[must_use]
    pub fn fail() -> Self {
        Step::new(Answer::Verdict(Outcome::Fail))
    }

    /// Answers `Inconclusive`.
    #[must_use]
    pub fn inconclusive() -> Self {
        Step::new(Answer::Verdict(Outcome::Inconclusive))
    }

    /// Answers with an outcome.
    #[must_use]
    pub fn outcome(outcome: Outcome) -> Self {
        Step::new(Answer::Verdict(outcome))
    }

    /// Returns `Err` ([`Error::Check`]): the check could not run.
    #[must_use]
    pub fn error() -> Self {
        Step::new(Answer::Error)
    }

    /// Never answers (until cancelled by a timeout).
    #[must_use]
    pub fn hang() -> Self {
        Step::new(Answer::Hang)
    }

    /// Waits `delay` (tokio time) before answering.
    #[must_use]
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets the verdict's (or error's) message.
    #[must_use]
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Adds a measured value to the verdict.
    #[must_use]
    pub fn value(mut self, name: impl Into<String>, value: f64) -> Self {
        self.values.insert(name.into(), value);
        self
    }
}

/// A record of one call to [`ScriptedGate::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// [`GateContext::attempt`] of the call.
    pub attempt: u32,
    /// When the call started (tokio clock).
    pub started: Instant,
    /// When it answered; `None` if it was cancelled (or is still running).
    pub finished: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<Call>,
}

/// A [`Gate`] that answers the `n`-th call with the `n`-th [`Step`] of its script, and
/// repeats the last step once the script is used up (an empty script always passes).
/// It records every call ([`ScriptedGate::calls`]).
///
/// ```
/// use std::sync::Arc;
/// use deploy_core::NullSink;
/// use deploy_gates::testing::{ScriptedGate, Step};
/// use deploy_gates::{Gate, GateContext, Outcome};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> deploy_gates::Result<()> {
/// let gate = ScriptedGate::new("flaky", [Step::fail(), Step::pass()]);
/// let cx = GateContext::new(Arc::new(NullSink));
/// assert_eq!(gate.check(&cx).await?.outcome, Outcome::Fail);
/// assert_eq!(gate.check(&cx).await?.outcome, Outcome::Pass);
/// assert_eq!(gate.check(&cx).await?.outcome, Outcome::Pass); // last step repeats
/// assert_eq!(gate.call_count(), 3);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ScriptedGate {
    name: String,
    script: Vec<Step>,
    state: Mutex<State>,
}

impl ScriptedGate {
    /// A gate named `name` playing `script`.
    #[must_use]
    pub fn new(name: impl Into<String>, script: impl IntoIterator<Item = Step>) -> Self {
        ScriptedGate {
            name: name.into(),
            script: script.into_iter().collect(),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every call so far, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// How many times `check` was called.
    #[must_use]
    pub fn call_count(&self) -> usize {
        self.lock().calls.len()
    }

    /// How many calls answered (were not cancelled).
    #[must_use]
    pub fn finished_count(&self) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.finished.is_some())
            .count()
    }
}

#[async_trait]
impl Gate for ScriptedGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, cx: &GateContext) -> Result<Verdict> {
        let (index, step) = {
            let mut state = self.lock();
            let index = state.calls.len();
            state.calls.push(Call {
                attempt: cx.attempt(),
                started: Instant::now(),
                finished: None,
            });
            let step = self
                .script
                .get(index)
                .or_else(|| self.script.last())
                .cloned()
                .unwrap_or_else(Step::pass);
            (index, step)
        };
        if !step.delay.is_zero() {
            tokio::time::sleep(step.delay).await;
        }
        if step.answer == Answer::Hang {
            std::future::pending::<()>().await;
        }
        if let Some(call) = self.lock().calls.get_mut(index) {
            call.finished = Some(Instant::now());
        }
        let message = step
            .message
            .unwrap_or_else(|| format!("scripted answer {}", index + 1));
        match step.answer {
            Answer::Verdict(outcome) => Ok(Verdict {
                outcome,
                message,
                values: step.values,
                duration: Duration::ZERO,
            }),
            Answer::Error | Answer::Hang => Err(Error::check(&self.name, message)),
        }
    }
}
