//! Progress on stderr (the orchestrator's and the gate runner's events) and the test
//! hook that pauses at a step.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use deploy_bluegreen::orchestrator::{Operation, Step, StepHook};
use deploy_core::{Event, EventKind, EventSink};
use indicatif::{ProgressBar, ProgressStyle};

/// Shows the orchestrator's and the gate runner's events on stderr: lines, plus a
/// spinner naming the current step on a terminal.
pub(crate) struct Progress {
    enabled: bool,
    started: Instant,
    bar: Mutex<Option<ProgressBar>>,
    /// The last `backup_id` an event carried (the pre-deploy backup stage's), kept
    /// even when nothing is shown, so that a failure can name the backup taken.
    backup_id: Mutex<Option<String>>,
}

impl Progress {
    pub(crate) fn new(enabled: bool) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self {
            enabled,
            started: Instant::now(),
            bar: Mutex::new(bar),
            backup_id: Mutex::new(None),
        }
    }

    fn line(&self, text: &str) {
        if !self.enabled {
            return;
        }
        let bar = self.bar.lock().unwrap_or_else(PoisonError::into_inner);
        match bar.as_ref() {
            Some(bar) => bar.suspend(|| {
                let _ = writeln!(std::io::stderr(), "{text}");
            }),
            None => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }

    /// The backup a stage reported taking, if any.
    pub(crate) fn backup_id(&self) -> Option<String> {
        self.backup_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = self
            .bar
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            bar.finish_and_clear();
        }
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
        if !self.enabled {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        // Gate checks: one line per finished check and per warning.
        if event.subject.starts_with("gate ") && event.kind == EventKind::Started {
            return;
        }
        if event.subject == "gates" && event.kind == EventKind::Progress {
            return;
        }
        let tag = match (event.field("step"), event.field("outcome")) {
            (Some(step), _) if event.kind == EventKind::Progress => format!(" [{step}]"),
            (_, Some(outcome)) => format!(" [{outcome}]"),
            _ => String::new(),
        };
        let marker = match event.kind {
            EventKind::Warning => "warning: ",
            _ => "",
        };
        self.line(&format!(
            "[{elapsed:6.1}s] {}{tag}: {marker}{}",
            event.subject, event.message
        ));
        if let Some(bar) = self
            .bar
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            bar.set_message(event.message.clone());
        }
    }
}

// ---------------------------------------------------------------------------------
// The test hook.

/// `ODOO_BLUEGREEN_PAUSE_AT=<step>`: the process stops at that step (printing
/// `odoo-bluegreen: paused at step <step>` on stderr) for up to
/// `ODOO_BLUEGREEN_PAUSE_SECS` seconds (default 600), so that a test can kill it there.
pub(crate) struct PauseHook {
    step: Step,
    limit: Duration,
}

impl PauseHook {
    pub(crate) fn from_env() -> Option<Self> {
        let step = std::env::var("ODOO_BLUEGREEN_PAUSE_AT")
            .ok()?
            .parse()
            .ok()?;
        let limit = std::env::var("ODOO_BLUEGREEN_PAUSE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(Duration::from_secs(600), Duration::from_secs);
        Some(Self { step, limit })
    }
}

#[deploy_gates::async_trait]
impl StepHook for PauseHook {
    async fn reached(&self, operation: Operation, step: Step) {
        if step == self.step {
            let _ = writeln!(
                std::io::stderr(),
                "odoo-bluegreen: paused at step {step} of {operation} (ODOO_BLUEGREEN_PAUSE_AT), pid {}",
                std::process::id()
            );
            tokio::time::sleep(self.limit).await;
        }
    }
}
