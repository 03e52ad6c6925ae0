//! `switch`, `rollback` and `stop-idle`: traffic between the two running slots, and the
//! idle one stopped.

use deploy_bluegreen::orchestrator::{RollbackRequest, SwitchRequest};
use deploy_bluegreen::{Slot, StackConfig};

use crate::{connect, finish, Cli};

/// What to do with traffic.
pub(crate) enum Traffic {
    /// `switch [--to SLOT] [--skip-gates]`.
    Switch(SwitchRequest),
    /// `rollback [--stop]`.
    Rollback(RollbackRequest),
    /// `stop-idle`.
    StopIdle,
}

impl Traffic {
    /// `switch`'s request.
    pub(crate) fn switch(to: Option<Slot>, skip_gates: bool) -> Self {
        Self::Switch(SwitchRequest { to, skip_gates })
    }
}

/// Runs one of the traffic commands.
pub(crate) async fn run(
    cli: &Cli,
    config: StackConfig,
    history: Option<deploy_rollback::History>,
    traffic: Traffic,
) -> u8 {
    let (orchestrator, progress) = match connect(cli, config, history).await {
        Ok(connected) => connected,
        Err(code) => return code,
    };
    let result = match traffic {
        Traffic::Switch(request) => orchestrator.switch_traffic(&request).await,
        Traffic::Rollback(request) => orchestrator.rollback(&request).await,
        Traffic::StopIdle => orchestrator.stop_idle().await,
    };
    finish(cli, &progress, result)
}
