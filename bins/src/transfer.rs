//! Progress of backups and restores on stderr, shared by `odoo-rollback backup|restore`
//! and the pre-deploy backup of `odoo-bluegreen deploy|canary`: one bar per phase of
//! deploy-rollback's [`Progress`] reports on a terminal (the dump and the filestore
//! archive side by side), a line when a phase starts and ends otherwise (CI logs),
//! nothing with `--quiet`. Also the size and duration formats their output uses.

use std::io::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use deploy_rollback::{Phase, Progress, ProgressEvent};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::Style;

/// Draws the library's progress reports on stderr: one bar per phase on a terminal, a
/// line when a phase starts and ends otherwise (prefixed with the program's name),
/// nothing with [`Style::Off`].
pub struct TransferProgress {
    style: Style,
    program: &'static str,
    multi: MultiProgress,
    created: Instant,
    phases: Mutex<Vec<PhaseState>>,
}

struct PhaseState {
    phase: Phase,
    bar: Option<ProgressBar>,
    started: Instant,
    /// The most bytes reported so far.
    done: u64,
    /// The largest total reported so far.
    total: u64,
    finished: bool,
}

fn phase_label(phase: Phase) -> &'static str {
    match phase {
        Phase::Dump => "pg_dump",
        Phase::Filestore => "filestore archive",
        Phase::VerifyDump => "pg_restore --list",
        Phase::Checksum => "sha-256 check",
        Phase::RestoreDatabase => "pg_restore",
        Phase::RestoreFilestore => "filestore extract",
        Phase::Swap => "rename swap",
    }
}

/// Phases that run beside another one (the dump and the filestore archive); every
/// other phase starts once the ones before it are over.
fn concurrent(phase: Phase) -> bool {
    matches!(phase, Phase::Dump | Phase::Filestore)
}

/// Phases whose progress is counted in bytes as they go.
fn streamed(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::Dump | Phase::Filestore | Phase::Checksum | Phase::RestoreFilestore
    )
}

impl std::fmt::Debug for TransferProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferProgress")
            .field("style", &self.style)
            .field("program", &self.program)
            .finish_non_exhaustive()
    }
}

impl TransferProgress {
    /// Progress in `style`; lines on stderr start with `program:`.
    #[must_use]
    pub fn new(style: Style, program: &'static str) -> Self {
        let target = if style == Style::Spinner {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        TransferProgress {
            style,
            program,
            multi: MultiProgress::with_draw_target(target),
            created: Instant::now(),
            phases: Mutex::new(Vec::new()),
        }
    }

    fn bar(&self, event: &ProgressEvent) -> ProgressBar {
        let label = phase_label(event.phase);
        let (bar, template) = match (streamed(event.phase), event.total) {
            (true, Some(total)) => (
                ProgressBar::new(total),
                "{prefix:>17} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {elapsed}",
            ),
            // The dump's end is only known when the next phase starts: no rate or
            // time that would go on counting after it.
            (true, None) => (
                ProgressBar::no_length(),
                "{spinner} {prefix:>17} {bytes} written",
            ),
            (false, _) => (
                ProgressBar::no_length(),
                "{spinner} {prefix:>17} {elapsed} {msg}",
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(label);
        if !streamed(event.phase) {
            if let Some(total) = event.total.filter(|_| event.phase != Phase::Swap) {
                bar.set_message(bytes(total));
            }
        }
        let bar = self.multi.add(bar);
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    fn close(&self, state: &mut PhaseState) {
        if state.finished {
            return;
        }
        state.finished = true;
        match &state.bar {
            Some(bar) => bar.finish(),
            None if self.style == Style::Lines => {
                // (A total of 1 is a bare "over" signal, not a size.)
                let size =
                    if streamed(state.phase) && (state.phase == Phase::Dump || state.total > 1) {
                        format!(", {}", bytes(state.done))
                    } else {
                        String::new()
                    };
                // The dump's end is only known when the next phase starts.
                let took = if state.phase == Phase::Dump {
                    "written".to_owned()
                } else {
                    human_duration(state.started.elapsed())
                };
                let _ = writeln!(
                    std::io::stderr(),
                    "{}: {} done ({took}{size})",
                    self.program,
                    phase_label(state.phase),
                );
            }
            None => {}
        }
    }

    /// Ends every bar still running (after success or failure).
    pub fn finish(&self) {
        let mut phases = self.phases.lock().unwrap_or_else(PoisonError::into_inner);
        for state in phases.iter_mut() {
            if !state.finished {
                state.finished = true;
                if let Some(bar) = &state.bar {
                    bar.abandon();
                }
            }
        }
    }
}

impl Progress for TransferProgress {
    fn update(&self, event: ProgressEvent) {
        if self.style == Style::Off {
            return;
        }
        let mut phases = self.phases.lock().unwrap_or_else(PoisonError::into_inner);
        let known = phases.iter().position(|s| s.phase == event.phase);
        let index = match known {
            Some(i) => i,
            None => {
                if !concurrent(event.phase) {
                    for state in phases.iter_mut() {
                        self.close(state);
                    }
                }
                if self.style == Style::Lines {
                    let _ = writeln!(
                        std::io::stderr(),
                        "{}: {}...",
                        self.program,
                        phase_label(event.phase)
                    );
                }
                let bar = (self.style == Style::Spinner).then(|| self.bar(&event));
                phases.push(PhaseState {
                    phase: event.phase,
                    bar,
                    // The dump and the archive start with the backup; their first
                    // report comes after their first chunk.
                    started: if concurrent(event.phase) {
                        self.created
                    } else {
                        Instant::now()
                    },
                    done: 0,
                    total: 0,
                    finished: false,
                });
                phases.len() - 1
            }
        };
        let Some(state) = phases.get_mut(index) else {
            return;
        };
        // A final report may count steps rather than bytes (1 of 1): it only says the
        // phase is over, so what was reported before is kept.
        let smaller_total = event.total.is_some_and(|t| t < state.total);
        if !smaller_total {
            state.done = state.done.max(event.done);
            state.total = state.total.max(event.total.unwrap_or_default());
        }
        if let Some(bar) = state.bar.as_ref().filter(|_| streamed(event.phase)) {
            if state.total > 0 {
                bar.set_length(state.total);
            }
            bar.set_position(if smaller_total {
                state.total
            } else {
                state.done
            });
        }
        if event.total.is_some_and(|total| event.done >= total) {
            self.close(state);
        }
    }
}

// ---------------------------------------------------------------------------------
// Formats.

/// A size for people: `512 B`, `1.5 KiB`, `3.2 GiB` (deploy-rollback's, so that the
/// backup stage's summary and the bars say sizes alike).
pub use deploy_rollback::backup::human_size as bytes;

/// A duration for people: `250 ms`, `1.25 s`, `3m 05s`, `2h 10m`.
#[must_use]
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        let secs = d.as_secs();
        if secs < 3600 {
            format!("{}m {:02}s", secs / 60, secs % 60)
        } else {
            format!("{}h {:02}m", secs / 3600, (secs % 3600) / 60)
        }
    }
}
