//! `switch`, `rollback` and `stop-idle`: traffic between the two running slots, and the
//! idle one stopped; `maintenance`: the proxy's 503 page on or off.

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

/// `maintenance on|off|status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum MaintenanceArg {
    /// Every request gets the 503 page.
    On,
    /// The proxy routes to the slots again.
    Off,
    /// Show whether it is on.
    Status,
}

/// Runs `maintenance`: exit 0 with the state after, or the error's code.
pub(crate) async fn maintenance(cli: &Cli, config: StackConfig, arg: MaintenanceArg) -> u8 {
    use std::io::Write as _;
    let switch = config.proxy.build_switch();
    let result = match arg {
        MaintenanceArg::Status => switch.maintenance().await,
        MaintenanceArg::On | MaintenanceArg::Off => {
            let operator = cli
                .operator
                .clone()
                .unwrap_or_else(odoo_deploy::cli::default_operator);
            let orchestrator =
                match deploy_bluegreen::orchestrator::Orchestrator::connect(config).await {
                    Ok(o) => o.with_operator(&operator),
                    Err(e) => return crate::fail(cli, &e, None),
                };
            orchestrator
                .set_maintenance(arg == MaintenanceArg::On)
                .await
        }
    };
    match result {
        Ok(on) => {
            if cli.json {
                crate::render::print_json(
                    "maintenance",
                    &odoo_deploy::output::MaintenanceOutput { maintenance: on },
                );
            } else {
                let _ = writeln!(
                    std::io::stdout(),
                    "maintenance: {}",
                    if on {
                        "on (the proxy answers 503)"
                    } else {
                        "off"
                    }
                );
            }
            0
        }
        Err(e) => crate::fail(cli, &e, None),
    }
}
