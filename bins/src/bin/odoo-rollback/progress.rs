//! Progress of backups and restores on stderr.

use super::*;

/// A spinner (terminal) or a line (otherwise) while something without measurable
/// progress runs.
pub(crate) fn spinner(out: &Output, text: &str) -> Option<ProgressBar> {
    match out.style {
        Style::Spinner => {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
                bar.set_style(style);
            }
            bar.set_message(text.to_owned());
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        }
        Style::Lines => {
            out.note(&format!("{text}..."));
            None
        }
        Style::Off => None,
    }
}

/// Shows the orchestrator's events while it redeploys: a spinner with the latest
/// event on a terminal, and a line per step, finished check and warning.
pub(crate) struct StepProgress {
    style: Style,
    bar: Option<ProgressBar>,
    started: Instant,
}

impl StepProgress {
    pub(crate) fn new(style: Style) -> Self {
        let bar = (style == Style::Spinner).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(template) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
                bar.set_style(template);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        StepProgress {
            style,
            bar,
            started: Instant::now(),
        }
    }

    pub(crate) fn line(&self, text: &str) {
        let line = format!(
            "odoo-rollback: [{:6.1}s] {text}",
            self.started.elapsed().as_secs_f64()
        );
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

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl EventSink for StepProgress {
    fn emit(&self, event: &Event) {
        if self.style == Style::Off {
            return;
        }
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{}: {}", event.subject, event.message));
        }
        // Checks starting and rounds going by only move the spinner.
        let quiet = match event.kind {
            EventKind::Started => event.subject.starts_with("gate "),
            EventKind::Progress => event.subject == "gates",
            _ => false,
        };
        if !quiet {
            let marker = if event.kind == EventKind::Warning {
                "warning: "
            } else {
                ""
            };
            self.line(&format!("{}: {marker}{}", event.subject, event.message));
        }
    }
}
