//! `odoo-bluegreen`: blue-green deployments of one Odoo stack on Docker behind nginx,
//! HAProxy or Traefik.
//!
//! A thin binary over `deploy_bluegreen::Orchestrator`: read the stack file, build the
//! orchestrator (Docker, the proxy's switch, the built-in gates, the history), run one
//! command, print a table or JSON on stdout, progress on stderr, map to an exit code.
//!
//! `deploy` and `canary` first take the stack's pre-deploy backup (`[backup]`, or
//! `--backup-store` and `--backup-db-url-env`) with deploy-rollback's backup store, and
//! pass its id to the orchestrator, which records it with the deploy in the history.
//! This binary wires the two crates together: deploy-bluegreen does not depend on
//! deploy-rollback.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use deploy_bluegreen::config::{BackupConfig, RollbackWindow};
use deploy_bluegreen::lock::{lock_path, LockState, StackLock};
use deploy_bluegreen::orchestrator::{
    default_release, DeployRequest, Operation, OperationReport, OperationResult, Orchestrator,
    RollbackRequest, SlotRole, StackHealth, StatusReport, Step, StepHook, SwitchRequest,
};
use deploy_bluegreen::{Error, Slot, StackConfig};
use deploy_core::{DeploymentRecorder, Event, EventKind, EventSink, NoHistory, SecretRef};
use deploy_rollback::{BackupRequest, BackupStore, History, PgConnection, PgTools};
use indicatif::{ProgressBar, ProgressStyle};
use odoo_deploy::cli;
use odoo_deploy::progress::Style;
use odoo_deploy::transfer::{bytes, human_duration, TransferProgress};
use secrecy::ExposeSecret;

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

Pre-deploy backup: with a [backup] table in the stack file (or --backup-store and
--backup-db-url-env), `deploy` and `canary` first back up the database (pg_dump, custom
format) and its filestore into the store, verified before it counts as complete, with
progress on stderr; its id is in the output and recorded with the deploy in the history,
so `odoo-rollback prune --history` keeps it while the release is current. The backup is
taken before the orchestrator locks the stack (an operation already holding the lock is
refused first). A failed backup refuses the deploy (exit 3) unless [backup] says
`required = false`; --no-backup skips it.

Every step is decided from Docker's containers and the proxy's live routing, never from
a local file: after a process was killed at any step, `status` shows what is, and the next
`deploy` or `rollback` goes on from there. The stack file is documented in
bluegreen/examples/stack.toml.";

/// Blue-green deployments of an Odoo stack: slots on Docker, traffic through nginx,
/// HAProxy or Traefik, gates before and after the switch.
#[derive(Debug, Parser)]
#[command(name = "odoo-bluegreen", version, after_help = AFTER_HELP)]
struct Cli {
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
    json: bool,
    /// No progress on stderr.
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
    /// Who runs this (lock holder, journal, history); default: $USER, else $LOGNAME,
    /// else the user name of the process's uid.
    #[arg(long, env = "ODOO_BLUEGREEN_OPERATOR", global = true)]
    operator: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the stack as it is: slots, traffic, requests through the proxy, lock, last
    /// operation. Exits 3 when it does not serve as it should.
    Status,
    /// Deploy a release to the idle slot and switch all traffic to it.
    Deploy(DeployArgs),
    /// Deploy a release, moving traffic in weighted steps with gates at each.
    Canary {
        #[command(flatten)]
        deploy: DeployArgs,
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
    },
    /// Stop the slot that takes no traffic.
    StopIdle,
}

#[derive(Debug, clap::Args)]
struct DeployArgs {
    /// The image to run (default: the stack file's `image`). Nothing is pulled.
    #[arg(long)]
    image: Option<String>,
    /// The release label (default: the image's tag).
    #[arg(long)]
    release: Option<String>,
    /// The git commit, for the history.
    #[arg(long)]
    git_sha: Option<String>,
    /// Keep the old slot running this long (`0s`, `15m`) or `keep`; default: the stack
    /// file's `deploy.rollback_window`.
    #[arg(long, value_parser = parse_window)]
    rollback_window: Option<RollbackWindow>,
    /// Refuse (exit 1) instead of replacing the idle slot when it holds the rollback
    /// target (a release that passed its gates here). Without it the deploy replaces
    /// it and says so first.
    #[arg(long)]
    keep_rollback_target: bool,
    /// Take no pre-deploy backup this time, whatever the stack file's [backup] says.
    #[arg(long, conflicts_with_all = ["backup_store", "backup_db_url_env", "backup_data_dir"])]
    no_backup: bool,
    /// Take the pre-deploy backup into this store (default: [backup] store). Without
    /// [backup] in the stack file, give --backup-db-url-env too.
    #[arg(long, value_name = "DIR")]
    backup_store: Option<PathBuf>,
    /// Environment variable holding the postgres://user[:password]@host[:port]/db URL
    /// of the database to back up (default: [backup] database_url).
    #[arg(long, value_name = "VAR")]
    backup_db_url_env: Option<String>,
    /// Odoo's data_dir: the backup also archives <DIR>/filestore/<db>/ (default:
    /// [backup] data_dir).
    #[arg(long, value_name = "DIR")]
    backup_data_dir: Option<PathBuf>,
}

fn parse_window(text: &str) -> Result<RollbackWindow, String> {
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
    let config = match StackConfig::load(&cli.config) {
        Ok(config) => config,
        Err(e) => return fail(&cli, &e, None),
    };
    let operator = cli.operator.clone().unwrap_or_else(cli::default_operator);
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
                    "odoo-bluegreen: error: history_dir {}: {e}",
                    dir.display()
                );
                return 3;
            }
        },
        _ => None,
    };
    let recorder: Arc<dyn DeploymentRecorder> = match &history {
        Some(history) => Arc::new(history.clone()),
        None => Arc::new(NoHistory),
    };
    // A deploy's request and its pre-deploy backup are checked before anything runs.
    let planned = match &cli.command {
        Command::Deploy(args) => plan_deploy(&config, args, None).map(Some),
        Command::Canary { deploy, steps } => plan_deploy(&config, deploy, Some(steps)).map(Some),
        _ => Ok(None),
    };
    let mut planned = match planned {
        Ok(planned) => planned,
        Err(e) => return fail(&cli, &e, None),
    };
    let orchestrator = match Orchestrator::connect(config).await {
        Ok(o) => o,
        Err(e) => return fail(&cli, &e, None),
    };
    let mut orchestrator = orchestrator
        .with_operator(&operator)
        .with_recorder(recorder);
    if let Some(hook) = PauseHook::from_env() {
        orchestrator = orchestrator.with_hook(Arc::new(hook));
    }

    // The pre-deploy backup, before any other step (and before the progress spinner,
    // so that its bars have stderr to themselves).
    let mut backup_warning = None;
    if let Some(PlannedDeploy {
        request,
        backup: Some(backup),
    }) = &mut planned
    {
        match pre_deploy_backup(&cli, &orchestrator, backup, history.as_ref()).await {
            Ok(id) => request.backup_id = Some(id),
            Err(BackupFailure::Refused(e)) => return fail(&cli, &e, None),
            Err(BackupFailure::Failed { message, code }) if backup.required => {
                return fail_backup(&cli, &message, code);
            }
            Err(BackupFailure::Failed { message, .. }) => {
                let warning = format!(
                    "the pre-deploy backup failed and [backup] says required = false: \
                     deploying without one: {message}"
                );
                if !cli.quiet {
                    let _ = writeln!(std::io::stderr(), "odoo-bluegreen: warning: {warning}");
                }
                backup_warning = Some(warning);
            }
        }
    }
    let progress = Arc::new(Progress::new(!cli.quiet));
    let orchestrator = orchestrator.with_events(progress.clone());

    let result = match &cli.command {
        Command::Status => {
            let status = orchestrator.status().await;
            progress.finish();
            print_status(&cli, &status);
            return if status.health == StackHealth::Ok {
                0
            } else {
                3
            };
        }
        Command::Deploy(_) | Command::Canary { .. } => match &planned {
            Some(planned) => orchestrator.deploy(&planned.request).await,
            None => Err(Error::Config {
                field: "command".to_owned(),
                reason: "no deploy request was built".to_owned(),
            }),
        },
        Command::Switch { to, skip_gates } => {
            orchestrator
                .switch_traffic(&SwitchRequest {
                    to: *to,
                    skip_gates: *skip_gates,
                })
                .await
        }
        Command::Rollback { stop } => {
            orchestrator
                .rollback(&RollbackRequest { stop: *stop })
                .await
        }
        Command::StopIdle => orchestrator.stop_idle().await,
    };
    progress.finish();
    let backup_id = planned
        .as_ref()
        .and_then(|p| p.request.backup_id.as_deref());
    match result {
        Ok(mut report) => {
            report.warnings.extend(backup_warning);
            print_report(&cli, &report);
            match report.result {
                OperationResult::Succeeded | OperationResult::Unchanged => 0,
                OperationResult::Refused | OperationResult::RolledBack => 1,
            }
        }
        Err(e) => fail(&cli, &e, backup_id),
    }
}

/// A deploy or canary, checked, with the pre-deploy backup to take first.
struct PlannedDeploy {
    request: DeployRequest,
    backup: Option<BackupConfig>,
}

/// Builds and checks the request and decides the backup, before anything runs.
fn plan_deploy(
    config: &StackConfig,
    args: &DeployArgs,
    steps: Option<&Vec<u8>>,
) -> Result<PlannedDeploy, Error> {
    let request = deploy_request(config, args, steps)?;
    request.validate()?;
    Ok(PlannedDeploy {
        request,
        backup: backup_config(config.backup.as_ref(), args)?,
    })
}

/// The stack file's `[backup]` with the command line's overrides, or `None` for no
/// backup (none configured, or `--no-backup`).
fn backup_config(
    stack_file: Option<&BackupConfig>,
    args: &DeployArgs,
) -> Result<Option<BackupConfig>, Error> {
    if args.no_backup {
        return Ok(None);
    }
    let mut backup = match (stack_file, &args.backup_store, &args.backup_db_url_env) {
        (Some(backup), _, _) => backup.clone(),
        (None, Some(store), Some(var)) => BackupConfig {
            store: store.clone(),
            database_url: SecretRef::env(var.as_str()),
            data_dir: None,
            pg_bin: None,
            required: true,
        },
        (None, None, None) if args.backup_data_dir.is_none() => return Ok(None),
        (None, _, _) => {
            return Err(Error::Config {
                field: "--backup-store".to_owned(),
                reason: "without a [backup] table in the stack file, a pre-deploy backup \
                         needs both --backup-store DIR and --backup-db-url-env VAR"
                    .to_owned(),
            })
        }
    };
    if let Some(store) = &args.backup_store {
        backup.store.clone_from(store);
    }
    if let Some(var) = &args.backup_db_url_env {
        backup.database_url = SecretRef::env(var.as_str());
    }
    if let Some(dir) = &args.backup_data_dir {
        backup.data_dir = Some(dir.clone());
    }
    Ok(Some(backup))
}

fn deploy_request(
    config: &StackConfig,
    args: &DeployArgs,
    steps: Option<&Vec<u8>>,
) -> Result<DeployRequest, Error> {
    let image = args
        .image
        .clone()
        .or_else(|| config.image.clone())
        .ok_or_else(|| Error::Config {
            field: "image".to_owned(),
            reason: "give --image or set `image` in the stack file".to_owned(),
        })?;
    let release = args
        .release
        .clone()
        .unwrap_or_else(|| default_release(&image));
    let mut request = DeployRequest::new(&image, &release);
    if let Some(steps) = steps {
        request = request.canary(steps);
    }
    request.git_sha.clone_from(&args.git_sha);
    request.rollback_window = args.rollback_window;
    request.keep_rollback_target = args.keep_rollback_target;
    Ok(request)
}

/// Prints an error with its cause chain on stderr (and as JSON on stdout with
/// `--json`, with the pre-deploy backup taken, if any) and returns its exit code.
fn fail(cli: &Cli, error: &Error, backup_id: Option<&str>) -> u8 {
    let code = if error.is_refusal() {
        1
    } else if error.is_config() {
        2
    } else {
        3
    };
    let message = cli::error_chain(error);
    let _ = writeln!(std::io::stderr(), "odoo-bluegreen: error: {message}");
    if let Some(id) = backup_id {
        let _ = writeln!(
            std::io::stderr(),
            "odoo-bluegreen: the pre-deploy backup {id} was taken before the failure"
        );
    }
    if cli.json {
        let mut value = serde_json::json!({ "error": message, "exit_code": code });
        if let Error::LockHeld {
            holder: Some(holder),
            ..
        } = error
        {
            value["holder"] = serde_json::to_value(holder).unwrap_or_default();
        }
        if let Some(id) = backup_id {
            value["backup_id"] = serde_json::Value::from(id);
        }
        let _ = writeln!(std::io::stdout(), "{value}");
    }
    code
}

/// Prints a failed required pre-deploy backup (nothing was started) and returns `code`.
fn fail_backup(cli: &Cli, message: &str, code: u8) -> u8 {
    let message = format!(
        "the pre-deploy backup failed, so the deploy was refused before anything was \
         started (--no-backup deploys without one): {message}"
    );
    let _ = writeln!(std::io::stderr(), "odoo-bluegreen: error: {message}");
    if cli.json {
        let value = serde_json::json!({ "error": message, "exit_code": code, "stage": "backup" });
        let _ = writeln!(std::io::stdout(), "{value}");
    }
    code
}

// ---------------------------------------------------------------------------------
// The pre-deploy backup.

/// Why no pre-deploy backup was taken.
enum BackupFailure {
    /// Another operation holds the stack's lock: the deploy would be refused anyway,
    /// so no backup is started (whatever `required` says).
    Refused(Error),
    /// The backup could not be configured (exit 2) or failed (exit 3).
    Failed {
        /// The error and its causes (never the database URL).
        message: String,
        /// 2 or 3.
        code: u8,
    },
}

/// Takes the pre-deploy backup with deploy-rollback's store, progress on stderr;
/// returns its id. The manifest is labelled with the release serving now (read from
/// Docker and the proxy) and, when the history's last good deployment is that
/// release, its git sha.
async fn pre_deploy_backup(
    cli: &Cli,
    orchestrator: &Orchestrator,
    backup: &BackupConfig,
    history: Option<&History>,
) -> Result<String, BackupFailure> {
    let config = orchestrator.config();
    // The orchestrator takes the lock only when it starts; a deploy it would refuse at
    // once must not take a backup first.
    if let Ok(LockState::Held { holder }) = StackLock::inspect(&config.state_dir, &config.stack) {
        return Err(BackupFailure::Refused(Error::LockHeld {
            stack: config.stack.clone(),
            path: lock_path(&config.state_dir, &config.stack),
            holder: Some(Box::new(holder)),
        }));
    }
    let style = Style::detect(cli.quiet);
    let note = |text: &str| {
        if style != Style::Off {
            let _ = writeln!(std::io::stderr(), "odoo-bluegreen: {text}");
        }
    };
    let url = backup
        .database_url
        .resolve(&StderrWarnings { quiet: cli.quiet })
        .map_err(|e| BackupFailure::Failed {
            message: format!("[backup] database_url: {}", cli::error_chain(&e)),
            code: 2,
        })?;
    let connection =
        PgConnection::from_url(url.expose_secret()).map_err(|e| BackupFailure::Failed {
            message: format!(
                "[backup] database_url ({}): {}",
                backup.database_url.describe(),
                cli::error_chain(&e)
            ),
            code: 2,
        })?;
    let live = match orchestrator.live_release().await {
        Ok(live) => live.map(|l| l.release),
        Err(e) => {
            note(&format!(
                "cannot read which release is live ({}); the backup is labelled unknown",
                cli::error_chain(&e)
            ));
            None
        }
    };
    let release = live.clone().unwrap_or_else(|| "unknown".to_owned());
    let mut request = BackupRequest::new(connection, &release)
        .with_stack(&config.stack)
        .with_tools(
            backup
                .pg_bin
                .as_ref()
                .map_or_else(PgTools::default, PgTools::in_dir),
        );
    if let Some(dir) = &backup.data_dir {
        request = request.with_data_dir(dir);
    }
    let good = history.and_then(|h| {
        h.last_good(&config.stack, config.environment)
            .ok()
            .flatten()
    });
    if let Some(sha) = good
        .filter(|g| live.as_deref() == Some(g.release.as_str()))
        .and_then(|g| g.git_sha)
    {
        request = request.with_git_sha(sha);
    }
    let store = BackupStore::open(&backup.store).map_err(|e| failed(&e))?;
    note(&format!(
        "pre-deploy backup of database {} (release {release}) into {}",
        request.connection.dbname,
        backup.store.display()
    ));
    let progress = Arc::new(TransferProgress::new(style, "odoo-bluegreen"));
    let result = store.create(&request, progress.clone()).await;
    progress.finish();
    let manifest = result.map_err(|e| failed(&e))?;
    let took = (manifest.completed_at - manifest.created_at)
        .to_std()
        .unwrap_or_default();
    note(&format!(
        "pre-deploy backup {} complete: {}{} in {}, at {}",
        manifest.id,
        bytes(manifest.size()),
        if manifest.filestore.is_some() {
            " (database and filestore)"
        } else {
            " (database only)"
        },
        human_duration(took),
        store.backup_dir(&manifest.id).display()
    ));
    Ok(manifest.id)
}

/// A backup error, with its exit code: 2 when it is a matter of configuration (a bad
/// name, `pg_dump` not found), else 3.
fn failed(error: &deploy_rollback::Error) -> BackupFailure {
    use deploy_rollback::Error as E;
    let code = match error {
        E::InvalidName { .. } | E::InvalidInput { .. } => 2,
        E::CommandSpawn { source, .. }
            if matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            2
        }
        _ => 3,
    };
    BackupFailure::Failed {
        message: cli::error_chain(error),
        code,
    }
}

/// Shows warning events (a plaintext secret in use) on stderr while no progress
/// spinner runs.
struct StderrWarnings {
    quiet: bool,
}

impl EventSink for StderrWarnings {
    fn emit(&self, event: &Event) {
        if !self.quiet && event.kind == EventKind::Warning {
            let _ = writeln!(
                std::io::stderr(),
                "odoo-bluegreen: warning: {}: {}",
                event.subject,
                event.message
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// Output.

fn print_report(cli: &Cli, report: &OperationReport) {
    let mut out = std::io::stdout().lock();
    if cli.json {
        match serde_json::to_string_pretty(report) {
            Ok(text) => {
                let _ = writeln!(out, "{text}");
            }
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "odoo-bluegreen: cannot render the report: {e}"
                );
            }
        }
        return;
    }
    let about = match (report.operation, report.release.as_deref()) {
        (Operation::Rollback | Operation::Switch | Operation::Redeploy, Some(release)) => {
            format!(" to {release}")
        }
        (_, Some(release)) => format!(" of {release}"),
        (_, None) => String::new(),
    };
    let _ = writeln!(
        out,
        "{}{about} on stack {}: {}",
        report.operation, report.stack, report.result
    );
    if let Some(reason) = &report.reason {
        let _ = writeln!(out, "  reason    {reason}");
    }
    if let Some(id) = &report.backup_id {
        let _ = writeln!(out, "  backup    {id} (taken before the deploy)");
    }
    if let Some(serving) = report.serving {
        let serving_release = [&report.to, &report.from]
            .into_iter()
            .flatten()
            .find(|s| s.slot == serving)
            .map_or_else(String::new, |s| format!(" ({})", s.release));
        let _ = writeln!(out, "  serving   {serving}{serving_release}");
    }
    if let Some(from) = &report.from {
        let _ = writeln!(
            out,
            "  from      {} ({}, {})",
            from.slot, from.release, from.image
        );
    }
    if let Some(to) = &report.to {
        let _ = writeln!(
            out,
            "  to        {} ({}, {})",
            to.slot, to.release, to.image
        );
    }
    for run in &report.gates {
        let share = run.share.map_or_else(String::new, |s| format!(" at {s} %"));
        let _ = writeln!(
            out,
            "  gates     {}{share}: {}",
            run.plan,
            odoo_deploy::render::summary_line(&run.report)
        );
    }
    if let Some(stopped) = report.stopped {
        let _ = writeln!(out, "  stopped   {stopped}");
    }
    for repair in &report.repairs {
        let _ = writeln!(out, "  repaired  {repair}");
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "  warning   {warning}");
    }
    if let Some(logs) = &report.slot_logs {
        let _ = writeln!(out, "  last log lines of the failed slot:");
        for line in logs.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    let t = &report.timings;
    let parts: Vec<String> = [
        ("container start", t.container_start),
        ("gates", t.gates),
        ("drain", t.drain),
        ("rollback window", t.window),
        ("orchestration", t.overhead),
    ]
    .into_iter()
    .filter(|(_, d)| !d.is_zero())
    .map(|(name, d)| format!("{name} {}", ms(d)))
    .collect();
    let visible = if t.switch_visible.is_zero() {
        String::new()
    } else {
        format!(
            "; new requests reached the new slot {} after the switch call",
            ms(t.switch_visible)
        )
    };
    let _ = writeln!(
        out,
        "  time      {} total: {}{visible}",
        ms(t.total),
        parts.join(", ")
    );
}

fn ms(d: Duration) -> String {
    if d >= Duration::from_secs(10) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

fn print_status(cli: &Cli, status: &StatusReport) {
    let mut out = std::io::stdout().lock();
    if cli.json {
        match serde_json::to_string_pretty(status) {
            Ok(text) => {
                let _ = writeln!(out, "{text}");
            }
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "odoo-bluegreen: cannot render the status: {e}"
                );
            }
        }
        return;
    }
    let serving = match (status.serving, &status.live_release) {
        (Some(slot), Some(release)) => format!("{slot} serves {release}"),
        (Some(slot), None) => format!("{slot} takes the traffic"),
        (None, _) => "no slot takes all traffic".to_owned(),
    };
    let health = match status.health {
        StackHealth::Ok => "ok",
        StackHealth::Degraded => "DEGRADED",
    };
    let _ = writeln!(
        out,
        "stack {} ({} at {}): {health}, {serving}",
        status.stack, status.proxy, status.proxy_url
    );
    let _ = writeln!(
        out,
        "{:<6} {:<8} {:>5}  {:<8} {:<24} {:<22} {:<7}",
        "SLOT", "ROLE", "SHARE", "STATUS", "RELEASE", "ADDRESS", "ANSWERS"
    );
    for slot in &status.slots {
        let role = match slot.role {
            SlotRole::Live => "live",
            SlotRole::Partial => "partial",
            SlotRole::Idle => "idle",
            SlotRole::Stopped => "stopped",
            SlotRole::Absent => "absent",
        };
        let share = slot
            .share
            .map_or_else(|| "?".to_owned(), |s| format!("{s}%"));
        let (state, release, address) = match &slot.container {
            Some(c) => (
                format!("{:?}", c.status).to_lowercase(),
                c.release.clone(),
                c.http.map_or_else(|| "-".to_owned(), |a| a.to_string()),
            ),
            None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
        };
        let answers = match slot.answers {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        let _ = writeln!(
            out,
            "{:<6} {:<8} {:>5}  {:<8} {:<24} {:<22} {:<7}",
            slot.slot.as_str(),
            role,
            share,
            state,
            release,
            address,
            answers
        );
    }
    if !status.through_proxy.is_empty() {
        let seen: Vec<String> = status
            .through_proxy
            .iter()
            .map(|(label, n)| format!("{label} x{n}"))
            .collect();
        let _ = writeln!(out, "through the proxy: {}", seen.join(", "));
    }
    let lock = match &status.lock {
        Some(LockState::Free) => "free".to_owned(),
        Some(LockState::Held { holder }) => format!("held by {holder}"),
        Some(LockState::Stale { holder }) => format!("stale (left by {holder})"),
        None => "unknown".to_owned(),
    };
    let _ = writeln!(out, "lock: {lock}");
    if let Some(entry) = &status.last_operation {
        let outcome = match (&entry.result, &entry.error, entry.finished) {
            (Some(result), _, _) => result.to_string(),
            (_, Some(error), _) => format!("error: {error}"),
            (_, _, false) if status.interrupted => format!("interrupted at step {}", entry.step),
            _ => format!("under way, at step {}", entry.step),
        };
        let _ = writeln!(
            out,
            "last operation: {}{} by {}, started {}: {outcome}",
            entry.operation,
            match (entry.operation, entry.release.as_deref()) {
                (Operation::Rollback | Operation::Switch | Operation::Redeploy, Some(r)) => {
                    format!(" to {r}")
                }
                (_, Some(r)) => format!(" of {r}"),
                (_, None) => String::new(),
            },
            entry.operator,
            entry
                .started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    for problem in &status.problems {
        let _ = writeln!(out, "problem: {problem}");
    }
    for note in &status.notes {
        let _ = writeln!(out, "note: {note}");
    }
}

// ---------------------------------------------------------------------------------
// Progress on stderr.

/// Shows the orchestrator's and the gate runner's events on stderr: lines, plus a
/// spinner naming the current step on a terminal.
struct Progress {
    enabled: bool,
    started: Instant,
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress {
    fn new(enabled: bool) -> Self {
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

    fn finish(&self) {
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
struct PauseHook {
    step: Step,
    limit: Duration,
}

impl PauseHook {
    fn from_env() -> Option<Self> {
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
