//! `odoo-bluegreen`: blue-green deployments of one Odoo stack on Docker behind nginx,
//! HAProxy or Traefik.
//!
//! A thin binary over `deploy_bluegreen::Orchestrator`: read the stack file, build the
//! orchestrator (Docker, the proxy's switch, the built-in gates, the history), run one
//! command, print a table or JSON on stdout, progress on stderr, map to an exit code.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use deploy_bluegreen::config::RollbackWindow;
use deploy_bluegreen::lock::LockState;
use deploy_bluegreen::orchestrator::{
    default_release, DeployRequest, Operation, OperationReport, OperationResult, Orchestrator,
    RollbackRequest, SlotRole, StackHealth, StatusReport, Step, StepHook, SwitchRequest,
};
use deploy_bluegreen::{Error, Slot, StackConfig};
use deploy_core::{DeploymentRecorder, Event, EventKind, EventSink, NoHistory};
use indicatif::{ProgressBar, ProgressStyle};
use odoo_deploy::cli;

const AFTER_HELP: &str = "\
Exit codes:
  0  done: deployed, switched, rolled back, stopped; `status`: the stack serves as it should
  1  refused or rolled back by gates: the new release did not start, failed its pre-switch
     gates (nothing was switched) or failed after the switch (traffic went back)
  2  configuration error: the stack file, a gate plan, a secret reference, a flag
  3  infrastructure failure needing a person: Docker or the proxy failed or refused a
     change, another operation holds the stack's lock; `status`: the stack is degraded

Output: a table on stdout, or JSON with --json (the operation's report, or the status);
progress on stderr (a spinner on a terminal; lines otherwise; nothing with --quiet).

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
    /// Who runs this (lock holder, journal, history); default: $USER.
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
        Err(e) => return fail(&cli, &e),
    };
    let progress = Arc::new(Progress::new(!cli.quiet));
    let operator = cli
        .operator
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned());
    // Outcomes go to deploy-rollback's file-backed history (what `odoo-rollback
    // previous` reads) when the stack file names one.
    let recorder: Arc<dyn DeploymentRecorder> = match (&config.history_dir, &cli.command) {
        (Some(dir), command) if !matches!(command, Command::Status) => {
            match deploy_rollback::History::open(dir) {
                Ok(history) => Arc::new(history),
                Err(e) => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "odoo-bluegreen: error: history_dir {}: {e}",
                        dir.display()
                    );
                    return 3;
                }
            }
        }
        _ => Arc::new(NoHistory),
    };
    let orchestrator = match Orchestrator::connect(config).await {
        Ok(o) => o,
        Err(e) => {
            progress.finish();
            return fail(&cli, &e);
        }
    };
    let mut orchestrator = orchestrator
        .with_operator(&operator)
        .with_recorder(recorder)
        .with_events(progress.clone());
    if let Some(hook) = PauseHook::from_env() {
        orchestrator = orchestrator.with_hook(Arc::new(hook));
    }

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
        Command::Deploy(args) => match deploy_request(&orchestrator, args, None) {
            Ok(request) => orchestrator.deploy(&request).await,
            Err(e) => Err(e),
        },
        Command::Canary { deploy, steps } => {
            match deploy_request(&orchestrator, deploy, Some(steps)) {
                Ok(request) => orchestrator.deploy(&request).await,
                Err(e) => Err(e),
            }
        }
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
    match result {
        Ok(report) => {
            print_report(&cli, &report);
            match report.result {
                OperationResult::Succeeded | OperationResult::Unchanged => 0,
                OperationResult::Refused | OperationResult::RolledBack => 1,
            }
        }
        Err(e) => fail(&cli, &e),
    }
}

fn deploy_request(
    orchestrator: &Orchestrator,
    args: &DeployArgs,
    steps: Option<&Vec<u8>>,
) -> Result<DeployRequest, Error> {
    let image = args
        .image
        .clone()
        .or_else(|| orchestrator.config().image.clone())
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
    Ok(request)
}

/// Prints an error with its cause chain on stderr (and as JSON on stdout with
/// `--json`) and returns its exit code.
fn fail(cli: &Cli, error: &Error) -> u8 {
    let code = if error.is_config() { 2 } else { 3 };
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    let _ = writeln!(std::io::stderr(), "odoo-bluegreen: error: {message}");
    if cli.json {
        let mut value = serde_json::json!({ "error": message, "exit_code": code });
        if let Error::LockHeld {
            holder: Some(holder),
            ..
        } = error
        {
            value["holder"] = serde_json::to_value(holder).unwrap_or_default();
        }
        let _ = writeln!(std::io::stdout(), "{value}");
    }
    code
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
    if let Some(logs) = &report.start_logs {
        let _ = writeln!(out, "  last log lines of the slot:");
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
