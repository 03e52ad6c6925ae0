//! Progress on stderr, the same for every binary: a spinner on a terminal, lines
//! otherwise (CI logs), nothing with `--quiet`.
//!
//! One [`Progress`] sink takes every library's events: the gate runner's (the spinner
//! counts the checks done and names those under way; in lines, one per finished check),
//! the orchestrator's and the stages' (one line per step, with the time since the start
//! and the step's name), and warnings (always a line).

use std::collections::BTreeSet;
use std::io::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use deploy_core::{Event, EventKind, EventSink, FieldValue};
use indicatif::{ProgressBar, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A spinner with the checks under way (stderr is a terminal).
    Spinner,
    /// One line per finished check and per warning (stderr is a file or a pipe).
    Lines,
    /// Nothing.
    Off,
}

impl Style {
    /// [`Style::Off`] when `quiet`, else [`Style::Spinner`] when stderr is a terminal,
    /// else [`Style::Lines`].
    #[must_use]
    pub fn detect(quiet: bool) -> Style {
        use std::io::IsTerminal as _;
        if quiet {
            Style::Off
        } else if std::io::stderr().is_terminal() {
            Style::Spinner
        } else {
            Style::Lines
        }
    }
}

#[derive(Default)]
struct State {
    total: usize,
    round: i64,
    done: usize,
    running: BTreeSet<String>,
}

/// An [`EventSink`] that shows events on stderr, each line starting with the program's
/// name.
pub struct Progress {
    style: Style,
    program: &'static str,
    bar: Option<ProgressBar>,
    state: Mutex<State>,
    started: Instant,
    backup_id: Mutex<Option<String>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("style", &self.style)
            .field("program", &self.program)
            .finish_non_exhaustive()
    }
}

impl Progress {
    /// Progress of `program` in `style`; a spinner starts ticking at once.
    #[must_use]
    pub fn new(style: Style, program: &'static str) -> Progress {
        let bar = (style == Style::Spinner).then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(template) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
                bar.set_style(template);
            }
            bar.set_message("starting");
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Progress {
            style,
            program,
            bar,
            state: Mutex::new(State::default()),
            started: Instant::now(),
            backup_id: Mutex::new(None),
        }
    }

    /// Stops the spinner and clears its line.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// The last `backup_id` an event carried (the pre-deploy backup stage's), kept also
    /// with [`Style::Off`], so that a failure can name the backup it took.
    #[must_use]
    pub fn backup_id(&self) -> Option<String> {
        self.backup_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Prints a line on stderr (`program: text`), above the spinner if there is one.
    pub fn line(&self, text: &str) {
        let line = format!("{}: {text}", self.program);
        match (&self.bar, self.style) {
            (_, Style::Off) => {}
            (Some(bar), _) => bar.suspend(|| {
                let _ = writeln!(std::io::stderr(), "{line}");
            }),
            (None, _) => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }

    fn refresh(&self, state: &State) {
        if let Some(bar) = &self.bar {
            let running: Vec<&str> = state.running.iter().map(String::as_str).collect();
            let round = if state.round > 1 {
                format!("round {} · ", state.round)
            } else {
                String::new()
            };
            bar.set_message(format!(
                "{round}{}/{} gates done{}",
                state.done,
                state.total,
                if running.is_empty() {
                    String::new()
                } else {
                    format!(" · checking {}", running.join(", "))
                }
            ));
        }
    }

    /// The gate runner's events: counted for the spinner, a line per finished check.
    fn gate_event(&self, event: &Event) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if event.subject == "gates" {
            if let (EventKind::Started, Some(total)) = (event.kind, int(event, "gates")) {
                state.total = usize::try_from(total).unwrap_or_default();
                state.done = 0;
                state.round = 0;
            }
        } else if let Some(gate) = event.subject.strip_prefix("gate ") {
            if let Some(round) = int(event, "round") {
                if round != state.round {
                    state.round = round;
                    state.done = 0;
                }
            }
            match event.kind {
                EventKind::Started => {
                    state.running.insert(gate.to_owned());
                }
                EventKind::Finished => {
                    state.running.remove(gate);
                    state.done += 1;
                    if self.style == Style::Lines {
                        let outcome = event
                            .field("outcome")
                            .map_or_else(String::new, ToString::to_string);
                        let elapsed = int(event, "elapsed_ms").unwrap_or_default();
                        self.line(&format!(
                            "{gate}: {outcome} in {elapsed} ms: {}",
                            event.message
                        ));
                    }
                }
                _ => {}
            }
        }
        self.refresh(&state);
    }

    /// An operation's events (the orchestrator, its stages): a line each, with the
    /// time since the start and the step, and the spinner's message.
    fn step_event(&self, event: &Event) {
        let tag = match (event.field("step"), event.field("outcome")) {
            (Some(step), _) if event.kind == EventKind::Progress => format!(" [{step}]"),
            (_, Some(outcome)) => format!(" [{outcome}]"),
            _ => String::new(),
        };
        self.line(&format!(
            "[{:6.1}s] {}{tag}: {}",
            self.started.elapsed().as_secs_f64(),
            event.subject,
            event.message
        ));
        if let Some(bar) = &self.bar {
            bar.set_message(event.message.clone());
        }
    }
}

fn int(event: &Event, name: &str) -> Option<i64> {
    match event.field(name) {
        Some(FieldValue::Int(value)) => Some(*value),
        _ => None,
    }
}

impl EventSink for Progress {
    fn emit(&self, event: &Event) {
        if let Some(id) = event.field("backup_id") {
            *self
                .backup_id
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(id.to_string());
        }
        if self.style == Style::Off {
            return;
        }
        if event.kind == EventKind::Warning {
            // A `Warn` verdict already shows in its check's line; a gate exceeding a
            // limit (fields `fails`, `consecutive_errors`) and other warnings do not.
            let verdict_echo = self.style == Style::Lines
                && event.subject.starts_with("gate ")
                && event.field("fails").is_none();
            if !verdict_echo {
                self.line(&format!("warning: {}: {}", event.subject, event.message));
            }
            return;
        }
        if event.subject == "gates" || event.subject.starts_with("gate ") {
            self.gate_event(event);
        } else {
            self.step_event(event);
        }
    }
}
