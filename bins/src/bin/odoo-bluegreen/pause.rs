//! The test hook: `ODOO_BLUEGREEN_PAUSE_AT` stops the process at a step.

use std::io::Write;
use std::time::Duration;

use deploy_bluegreen::orchestrator::{Operation, Step, StepHook};

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
