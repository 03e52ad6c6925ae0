//! `odoo-bluegreen`: blue-green deployments of one Odoo stack on Docker behind nginx,
//! HAProxy or Traefik.
//!
//! A thin binary over `deploy_bluegreen::Orchestrator`: read the stack file, build the
//! orchestrator (Docker, the proxy's switch, the built-in gates, the history, the
//! stages), run one command, print a table or JSON on stdout, progress on stderr, and
//! exit with the code of the result or of the error's class.
//!
//! | file | what |
//! |---|---|
//! | `main.rs` | the command line, the wiring, errors to exit codes |
//! | `deploy.rs` | `deploy` and `canary`, the pre-deploy backup stage, `--dry-run` |
//! | `status.rs` | `status` |
//! | `traffic.rs` | `switch`, `rollback`, `stop-idle`, `maintenance` |
//! | `render.rs` | the operation report and the deploy plan |
//! | `setup.rs` | `init`, `proxy-config` and `runbook` |
//! | `pause.rs` | the test hook that stops at a step |
//!
//! The pre-deploy backup is deploy-rollback's [`BackupStage`](deploy_rollback::BackupStage),
//! added to the orchestrator as a stage: deploy-bluegreen does not depend on
//! deploy-rollback; this binary wires the two together.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use deploy_bluegreen::config::RollbackWindow;
use deploy_bluegreen::orchestrator::{
    OperationReport, OperationResult, Orchestrator, RollbackRequest,
};
use deploy_bluegreen::{Error, Slot, StackConfig};
use deploy_core::{Classify, DeploymentRecorder, NoHistory};
use deploy_rollback::History;
use odoo_deploy::cli;

mod deploy;
mod pause;
mod render;
mod setup;
mod status;
mod traffic;

use odoo_deploy::progress::{Progress, Style};
use pause::PauseHook;

const AFTER_HELP: &str = "\
Exit codes:
  0  done: deployed, switched, rolled back, stopped; `status`: the stack serves as it should
  1  refused or rolled back by gates: the new release did not start, failed its pre-switch
     gates (nothing was switched) or failed after the switch (traffic went back);
     `rollback` with nothing to roll back to
  2  configuration error: the stack file, a gate plan, a secret reference (also the
     pre-deploy backup's database URL), a flag, pg_dump not found
  3  infrastructure failure needing a person: Docker or the proxy failed or refused a
     change, another operation holds the stack's lock, a required pre-deploy backup
     failed (nothing was started); `status`: the stack is degraded

Output: a table on stdout, or JSON with --json (the operation's report, or the status);
progress on stderr (a spinner on a terminal; lines otherwise; nothing with --quiet).

Stages: a deploy runs, under the stack's lock, its stages in order: the stack file's
[[hooks]] and the pre-deploy backup before the new slot starts, the pre-switch gates,
the hooks before the switch, the switch and the post-switch gates, the hooks after it,
the record, the hooks at the end. `deploy --dry-run` lists them with their settings and
changes nothing; it exits 2 when it finds what would fail any deploy (a proxy that does
not mark responses with X-Deploy-Slot, with an image that sends no X-Odoo-Release). A hook that exits 1 refuses the deploy (exit 1); one that fails fails it.

Pre-deploy backup: with a [backup] table in the stack file (or --backup-store and
--backup-db-url-env), `deploy` and `canary` back up the database (pg_dump, custom format)
and its filestore into the store before the new slot starts, verified before it counts
as complete, with progress on stderr; its id is in the output and recorded with the
deploy's outcome in the history, so `odoo-rollback prune --history` keeps it while the
release is current. It is taken under the stack's lock: a deploy refused by the lock
takes none. A failed backup fails the deploy before anything is started (exit 3, or 2
for its configuration) unless [backup] says `required = false`; --no-backup skips it.

Every step is decided from Docker's containers and the proxy's live routing, never from
a local file: after a process was killed at any step, `status` shows what is, and the next
`deploy` or `rollback` goes on from there. The stack file is documented in
bluegreen/examples/stack.toml.";

/// Blue-green deployments of an Odoo stack: slots on Docker, traffic through nginx,
/// HAProxy or Traefik, gates before and after the switch.
#[derive(Debug, Parser)]
#[command(name = "odoo-bluegreen", version, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    /// The stack file.
    #[arg(
        long,
        short = 'c',
        env = "ODOO_BLUEGREEN_CONFIG",
        default_value = "stack.toml",
        global = true
    )]
    config: PathBuf,
    /// Print the report (or status) as JSON on stdout.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// No progress on stderr.
    #[arg(long, short = 'q', global = true)]
    pub(crate) quiet: bool,
    /// Who runs this (lock holder, journal, history); default: the CI's actor
    /// ($GITHUB_ACTOR, $GITLAB_USER_LOGIN, ...), else $USER, else $LOGNAME, else the user
    /// name of the process's uid.
    #[arg(long, env = "ODOO_BLUEGREEN_OPERATOR", global = true)]
    pub(crate) operator: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the stack as it is: slots, traffic, requests through the proxy, lock, last
    /// operation. Exits 3 when it does not serve as it should.
    Status,
    /// Deploy a release to the idle slot and switch all traffic to it.
    Deploy(deploy::DeployArgs),
    /// Deploy a release, moving traffic in weighted steps with gates at each.
    Canary {
        #[command(flatten)]
        deploy: deploy::DeployArgs,
        /// The new slot's share at each step, in percent, ending at 100.
        #[arg(long, value_delimiter = ',', default_value = "10,50,100")]
        steps: Vec<u8>,
    },
    /// Send all traffic to the other (running) slot, gated.
    Switch {
        /// The slot to switch to (default: the one not serving).
        #[arg(long)]
        to: Option<Slot>,
        /// Do not run the pre-switch gates.
        #[arg(long)]
        skip_gates: bool,
    },
    /// Send all traffic back to the slot that served before (started and gated first if
    /// it was stopped).
    Rollback {
        /// Also drain and stop the slot rolled back from.
        #[arg(long)]
        stop: bool,
        /// Switch code back even when the live release's deploy updated the database
        /// (the older release then runs on the newer schema); refused without it.
        #[arg(long)]
        code_only: bool,
    },
    /// Stop the slot that takes no traffic.
    StopIdle,
    /// Write a working stack: stack.toml and the proxy's configuration that matches it
    /// (refuses to overwrite files without --force).
    Init(setup::InitArgs),
    /// Print the proxy's configuration for the stack file (to start the proxy with, or
    /// to merge into a site's own), with all traffic on the slot serving now.
    ProxyConfig,
    /// Write the stack's deployment runbook in Markdown, from the stack file and its gate
    /// plans: the checklist, the gates, the procedure with this configuration, how to go
    /// back, what is watched, the incident steps and the Docker layout. No secret value.
    Runbook {
        /// Write it to this file instead of stdout.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Put the proxy into maintenance by hand (every request answered 503 with
    /// Retry-After and a small page, the health path 200), take it out, or show it.
    /// A deploy that could not put the database back leaves it on: repair the database
    /// first (`status` says how), then `maintenance off`.
    Maintenance {
        /// `on`, `off` or `status`.
        #[arg(value_enum)]
        state: traffic::MaintenanceArg,
    },
}

pub(crate) fn parse_window(text: &str) -> Result<RollbackWindow, String> {
    if text.trim() == "keep" {
        return Ok(RollbackWindow::Keep);
    }
    humantime::parse_duration(text.trim())
        .map(RollbackWindow::StopAfter)
        .map_err(|e| format!("{text:?} is not a duration or `keep` ({e})"))
}

fn main() -> ExitCode {
    let cli: Cli = match cli::parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    cli::init_tracing("error");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "odoo-bluegreen: error: cannot start the runtime: {e}"
            );
            return ExitCode::from(3);
        }
    };
    ExitCode::from(runtime.block_on(run(cli)))
}

async fn run(cli: Cli) -> u8 {
    if let Command::Init(args) = &cli.command {
        return setup::init(&cli, args).await;
    }
    let config = match StackConfig::load(&cli.config) {
        Ok(config) => config,
        Err(e) => return fail(&cli, &e, None),
    };
    // Outcomes go to deploy-rollback's file-backed history (what `odoo-rollback
    // previous` reads) when the stack file names one.
    let history = match (&config.history_dir, &cli.command) {
        // `status` reads it too: what `rollback` would do depends on which releases
        // passed their gates; it does not create a missing directory.
        (Some(dir), Command::Status) if !dir.is_dir() => None,
        (Some(dir), _) => match History::open(dir) {
            Ok(history) => Some(history),
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "odoo-bluegreen: error: history_dir {}: {}",
                    dir.display(),
                    cli::error_chain(&e)
                );
                return e.class().exit_code().max(2);
            }
        },
        _ => None,
    };
    match &cli.command {
        Command::Init(_) => 2,
        Command::ProxyConfig => setup::proxy_config(&cli, &config).await,
        Command::Status => status::run(&cli, config, history).await,
        Command::Deploy(args) => deploy::run(&cli, config, history, args, None).await,
        Command::Canary { deploy, steps } => {
            deploy::run(&cli, config, history, deploy, Some(steps)).await
        }
        Command::Switch { to, skip_gates } => {
            traffic::run(
                &cli,
                config,
                history,
                traffic::Traffic::switch(*to, *skip_gates),
            )
            .await
        }
        Command::Rollback { stop, code_only } => {
            let request = RollbackRequest {
                stop: *stop,
                code_only: *code_only,
            };
            traffic::run(&cli, config, history, traffic::Traffic::Rollback(request)).await
        }
        Command::StopIdle => traffic::run(&cli, config, history, traffic::Traffic::StopIdle).await,
        Command::Maintenance { state } => traffic::maintenance(&cli, config, *state).await,
        Command::Runbook { output } => setup::runbook(&cli, &config, output.as_deref()),
    }
}

/// The orchestrator of `config`'s stack, recording to `history`, reporting to a
/// progress sink on stderr; or the exit code of why it cannot be built.
pub(crate) async fn connect(
    cli: &Cli,
    config: StackConfig,
    history: Option<History>,
) -> Result<(Orchestrator, Arc<Progress>), u8> {
    let operator = cli.operator.clone().unwrap_or_else(cli::default_operator);
    let recorder: Arc<dyn DeploymentRecorder> = match history {
        Some(history) => Arc::new(history),
        None => Arc::new(NoHistory),
    };
    let orchestrator = Orchestrator::connect(config)
        .await
        .map_err(|e| fail(cli, &e, None))?;
    let progress = Arc::new(Progress::new(Style::detect(cli.quiet), "odoo-bluegreen"));
    let mut orchestrator = orchestrator
        .with_operator(&operator)
        .with_recorder(recorder)
        .with_events(progress.clone());
    if let Some(hook) = PauseHook::from_env() {
        orchestrator = orchestrator.with_hook(Arc::new(hook));
    }
    Ok((orchestrator, progress))
}

/// Ends an operation: stops the progress, prints the report or the error, and returns
/// the exit code.
pub(crate) fn finish(cli: &Cli, progress: &Progress, result: Result<OperationReport, Error>) -> u8 {
    progress.finish();
    match result {
        Ok(report) => {
            render::print_report(cli, &report);
            match report.result {
                OperationResult::Succeeded | OperationResult::Unchanged => 0,
                OperationResult::Refused | OperationResult::RolledBack => 1,
            }
        }
        Err(e) => fail(cli, &e, progress.backup_id().as_deref()),
    }
}

/// Prints an error with its cause chain on stderr (and as JSON on stdout with
/// `--json`, with the lock's holder, the failed stage and the pre-deploy backup taken,
/// if any) and returns the exit code of its class.
pub(crate) fn fail(cli: &Cli, error: &Error, backup_id: Option<&str>) -> u8 {
    let code = error.class().exit_code();
    let message = cli::error_chain(error);
    let _ = writeln!(std::io::stderr(), "odoo-bluegreen: error: {message}");
    if let Some(id) = backup_id {
        let _ = writeln!(
            std::io::stderr(),
            "odoo-bluegreen: the pre-deploy backup {id} was taken before the failure"
        );
    }
    if cli.json {
        let mut value = odoo_deploy::output::ErrorOutput {
            error: message,
            exit_code: code,
            kind: None,
            holder: None,
            stage: None,
            backup_id: backup_id.map(str::to_owned),
        };
        match error {
            Error::LockHeld {
                holder: Some(holder),
                ..
            } => value.holder = Some((**holder).clone()),
            Error::Stage { stage, .. } => value.stage = Some(stage.as_str().to_owned()),
            _ => {}
        }
        let _ = writeln!(
            std::io::stdout(),
            "{}",
            serde_json::to_string(&value).unwrap_or_default()
        );
    }
    code
}
