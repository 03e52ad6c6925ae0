//! `odoo-rollback`: the ways back from a bad Odoo release.
//!
//! A thin binary over `deploy-rollback`: parse arguments, build the history, the backup
//! store, the restore or revert request (and, for `previous`, the blue-green
//! orchestrator as the `Deployer`), run one command with progress on stderr, print the
//! result (text or `--json`) on stdout, map the outcome to an exit code.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use clap::{ArgGroup, Args, Parser, Subcommand};
use deploy_bluegreen::orchestrator::Orchestrator;
use deploy_bluegreen::StackConfig;
use deploy_core::{Event, EventKind, EventSink};
use deploy_rollback::backup::{BackupState, PruneReport, RetentionDecision};
use deploy_rollback::git::GitIdentity;
use deploy_rollback::history::Figures;
use deploy_rollback::strategy::{
    execute_recorded, OutcomeDetail, PreviousRelease, RollbackContext, RollbackStrategy,
};
use deploy_rollback::{
    restore, BackupManifest, BackupRequest, BackupStore, Confirmation, DeployStatus, Deployer,
    DeployerError, DeploymentRecord, Environment, GitCredentials, GitRevertRequest, History,
    HistoryFilter, PgConnection, PgTools, RedeployReport, ReleaseRef, RestoreOutcome,
    RestoreRequest, RetentionPolicy, RevertOutcome, RollbackOutcome, RollbackPlan,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use odoo_deploy::cli;
use odoo_deploy::progress::Style;
use odoo_deploy::transfer::{bytes, human_duration, TransferProgress};
use secrecy::SecretString;
use serde_json::Value;

const AFTER_HELP: &str = "\
Exit codes:
  0  done (for --dry-run: the plan was computed and printed)
  1  refused: a dirty work tree, a diverged branch or unpushed local commits, a missing
     or wrong --confirm, nothing to roll back to (no good release, nothing to revert), a
     revert that conflicts, a restore whose verification or checksums failed (the live
     database is untouched), a redeploy refused by its gates
  2  configuration or usage error: a bad flag, an unset environment variable, an unknown
     backup id or commit, an invalid name, a stack file that does not load, missing
     client programs (pg_dump, pg_restore), refused database credentials
  3  infrastructure failure: pg_dump or pg_restore failed, a full disk, PostgreSQL or
     the git remote unreachable, a push rejected by the remote, a swap that failed
     part-way, Docker or the proxy failing during a redeploy

Output: text on stdout, or JSON with --json (errors too: {\"error\", \"exit_code\"}).
Progress goes to stderr: bars on a terminal, one line per step otherwise, nothing with
--quiet. Logs: RUST_LOG (default warn). No colour with NO_COLOR.

Secrets never come from the command line: a database URL (which may hold the password)
from the variable named by --db-url-env, a password from --password-env or
--password-file, a git token from --token-env. They appear in no output, log, manifest
or history record.";

/// The ways back from a bad Odoo release: pre-deploy backups and database restore,
/// git revert of the deploy branch, redeploy of the previous good release, and the
/// deployment history they rely on.
#[derive(Debug, Parser)]
#[command(name = "odoo-rollback", version, after_help = AFTER_HELP)]
struct Cli {
    /// Print the result as JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// No progress on stderr.
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Back up an Odoo database (pg_dump, custom format) and its filestore (tar.gz),
    /// verified with pg_restore --list and SHA-256 before it is offered for restore.
    #[command(after_help = AFTER_HELP)]
    Backup(BackupArgs),
    /// Restore a backup over a live database: into a new database and filestore,
    /// verified, then swapped in by renaming. Nothing is deleted: the replaced database
    /// and filestore are kept under dated names.
    #[command(after_help = AFTER_HELP)]
    Restore(RestoreArgs),
    /// Revert a merge (or a commit) on the deploy branch and push it (Odoo.sh rebuilds
    /// from the branch).
    #[command(after_help = AFTER_HELP)]
    Revert(RevertArgs),
    /// Redeploy the last good release from the history through the blue-green stack.
    #[command(after_help = AFTER_HELP)]
    Previous(PreviousArgs),
    /// List, filter, import and export the deployment history; figures from it.
    #[command(after_help = AFTER_HELP)]
    History(HistoryArgs),
    /// Remove old backups by retention policy; the newest backup of each database and
    /// the pre-deploy backups the history references are always kept.
    #[command(after_help = AFTER_HELP)]
    Prune(PruneArgs),
}

/// How to reach PostgreSQL.
#[derive(Debug, Args)]
struct PgArgs {
    /// Environment variable holding a postgres://user[:password]@host[:port][/db] URL.
    #[arg(long, value_name = "VAR", conflicts_with_all = ["host", "port", "user"])]
    db_url_env: Option<String>,
    /// Host name, IP address or Unix socket directory (without --db-url-env).
    #[arg(long, default_value = "localhost")]
    host: String,
    /// Port (without --db-url-env).
    #[arg(long, default_value_t = 5432)]
    port: u16,
    /// Role to connect as (required without --db-url-env).
    #[arg(long)]
    user: Option<String>,
    /// Environment variable holding the password.
    #[arg(long, value_name = "VAR", conflicts_with = "password_file")]
    password_env: Option<String>,
    /// File whose content (trailing newline trimmed) is the password.
    #[arg(long, value_name = "PATH")]
    password_file: Option<PathBuf>,
    /// Directory holding pg_dump and pg_restore [default: found on PATH].
    #[arg(long, value_name = "DIR")]
    pg_bin: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct BackupArgs {
    #[command(flatten)]
    pg: PgArgs,
    /// The database to back up [default: the URL's database].
    #[arg(long, value_name = "NAME")]
    db: Option<String>,
    /// The backup store (created when missing).
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// Odoo's data_dir: also archives <DIR>/filestore/<db>/.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The release live now, recorded in the manifest.
    #[arg(long, value_name = "LABEL", default_value = "unknown")]
    release: String,
    /// The git commit of that release.
    #[arg(long, value_name = "SHA")]
    git_sha: Option<String>,
    /// The stack, recorded in the manifest.
    #[arg(long, value_name = "NAME")]
    stack: Option<String>,
}

#[derive(Debug, Args)]
struct RestoreArgs {
    #[command(flatten)]
    pg: PgArgs,
    /// The backup store.
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// The backup id (as `backup` printed it).
    #[arg(long, value_name = "ID")]
    backup: String,
    /// The live database to replace.
    #[arg(long, value_name = "NAME")]
    db: String,
    /// The live database's name again, to confirm the replacement (asked for on a
    /// terminal when missing; refused otherwise).
    #[arg(long, value_name = "NAME")]
    confirm: Option<String>,
    /// The database to connect to for CREATE/ALTER DATABASE (never the live one).
    #[arg(long, value_name = "NAME", default_value = "postgres")]
    maintenance_db: String,
    /// Odoo's data_dir: also restores the filestore under <DIR>/filestore/.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// SQL run on the restored database before the swap; it must return a row.
    #[arg(long, value_name = "SQL")]
    probe: Option<String>,
    /// pg_restore --jobs.
    #[arg(long, value_name = "N")]
    jobs: Option<u32>,
    /// How long the swap may keep closing sessions of the live database.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    swap_timeout: Duration,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["merge", "commit"])))]
struct RevertArgs {
    /// The local clone (with a work tree).
    #[arg(long, value_name = "PATH")]
    repo: PathBuf,
    /// The deploy branch; HEAD must be on it.
    #[arg(long, value_name = "NAME")]
    branch: String,
    /// A merge commit to revert (keeping its first parent, like git revert -m 1).
    #[arg(long, value_name = "SHA")]
    merge: Option<String>,
    /// A plain commit to revert.
    #[arg(long, value_name = "SHA")]
    commit: Option<String>,
    /// For --merge: the parent to keep.
    #[arg(long, value_name = "N", requires = "merge")]
    mainline: Option<u32>,
    /// The remote to fetch from and push to.
    #[arg(long, value_name = "NAME", default_value = "origin")]
    remote: String,
    /// Show what would change; commit and push nothing.
    #[arg(long)]
    dry_run: bool,
    /// Environment variable holding an HTTPS token for the remote.
    #[arg(long, value_name = "VAR")]
    token_env: Option<String>,
    /// User name sent with the token (GitLab wants oauth2).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "x-access-token",
        requires = "token_env"
    )]
    token_user: String,
    /// Ask the SSH agent (SSH_AUTH_SOCK) for ssh:// remotes.
    #[arg(long)]
    ssh_agent: bool,
    /// Committer name [default: the repository's user.name].
    #[arg(long, value_name = "NAME", requires = "committer_email")]
    committer_name: Option<String>,
    /// Committer e-mail [default: the repository's user.email].
    #[arg(long, value_name = "EMAIL", requires = "committer_name")]
    committer_email: Option<String>,
}

#[derive(Debug, Args)]
struct PreviousArgs {
    /// The history directory [default: the stack file's history_dir].
    #[arg(long, value_name = "DIR")]
    history: Option<PathBuf>,
    /// The stack [default: the stack file's].
    #[arg(long, value_name = "NAME")]
    stack: Option<String>,
    /// The environment: dev, staging, uat, production [default: the stack file's].
    #[arg(long, value_name = "ENV", value_parser = parse_environment)]
    env: Option<Environment>,
    /// The blue-green stack file (odoo-bluegreen's); required unless --dry-run.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// The release being rolled back [default: the latest in the history].
    #[arg(long, value_name = "LABEL")]
    bad_release: Option<String>,
    /// Only resolve and print the release that would go live again.
    #[arg(long)]
    dry_run: bool,
    /// Who runs the rollback, for the history [default: $USER].
    #[arg(long, env = "ODOO_ROLLBACK_OPERATOR", value_name = "NAME")]
    operator: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("mode").args(["figures", "export_plain", "import_plain"])))]
struct HistoryArgs {
    /// The history directory.
    #[arg(long, value_name = "DIR")]
    history: PathBuf,
    /// Only this stack.
    #[arg(long, value_name = "NAME")]
    stack: Option<String>,
    /// Only this environment: dev, staging, uat, production.
    #[arg(long, value_name = "ENV", value_parser = parse_environment)]
    env: Option<Environment>,
    /// Only this status: started, succeeded, failed, rolled_back.
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    status: Option<DeployStatus>,
    /// Only records since: an RFC 3339 time, a date (YYYY-MM-DD, UTC) or an age (7d, 12h).
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    since: Option<DateTime<Utc>>,
    /// Print figures instead: success rate, mean time to roll back, start to live.
    #[arg(long)]
    figures: bool,
    /// Print the records as a plain `timestamp | stack | version | env | status |
    /// operator` log.
    #[arg(long, conflicts_with = "json")]
    export_plain: bool,
    /// Append the records of a plain log (FILE, or - for stdin); records already
    /// present are skipped.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["stack", "env", "status", "since"])]
    import_plain: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("policy").required(true).multiple(true).args(["keep_last", "keep_daily", "keep_weekly"])))]
struct PruneArgs {
    /// The backup store.
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// Keep the newest N backups of each database.
    #[arg(long, value_name = "N", conflicts_with_all = ["keep_daily", "keep_weekly"])]
    keep_last: Option<usize>,
    /// Keep the newest backup of each of the last N days.
    #[arg(long, value_name = "N")]
    keep_daily: Option<usize>,
    /// Keep the newest backup of each of the last N ISO weeks.
    #[arg(long, value_name = "N")]
    keep_weekly: Option<usize>,
    /// The history: keeps the pre-deploy backups of current and in-progress releases.
    #[arg(long, value_name = "DIR")]
    history: Option<PathBuf>,
    /// Also remove partial backups (left by killed runs) older than this.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration)]
    partials_older_than: Duration,
    /// Show what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
}

fn parse_environment(text: &str) -> Result<Environment, String> {
    text.parse().map_err(|e: deploy_core::Error| e.to_string())
}

fn parse_status(text: &str) -> Result<DeployStatus, String> {
    text.parse().map_err(|e: deploy_core::Error| e.to_string())
}

fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(t) = day.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc());
        }
    }
    let age = humantime::parse_duration(text).map_err(|_| {
        format!("{text:?} is not an RFC 3339 time, a date (YYYY-MM-DD) or an age (7d, 12h)")
    })?;
    chrono::TimeDelta::from_std(age)
        .ok()
        .and_then(|age| Utc::now().checked_sub_signed(age))
        .ok_or_else(|| format!("{text:?} is too far back"))
}

// ---------------------------------------------------------------------------------
// Failures and exit codes.

/// Why a command did not succeed; each maps to one exit code.
#[derive(Debug)]
enum Failure {
    /// Refused by this binary before anything changed (exit 1).
    Refused(String),
    /// A bad flag or configuration (exit 2).
    Usage(String),
    /// A local failure of this binary (exit 3).
    Infra(String),
    /// The library's error, mapped by variant.
    Rollback(deploy_rollback::Error),
    /// The orchestrator's error (connecting to the stack), mapped by variant.
    BlueGreen(deploy_bluegreen::Error),
}

impl From<deploy_rollback::Error> for Failure {
    fn from(e: deploy_rollback::Error) -> Self {
        Failure::Rollback(e)
    }
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Refused(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Infra(_) => 3,
            Failure::Rollback(e) => rollback_code(e),
            Failure::BlueGreen(e) => bluegreen_code(e),
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::Refused(m) | Failure::Usage(m) | Failure::Infra(m) => m.clone(),
            Failure::Rollback(e) => cli::error_chain(e),
            Failure::BlueGreen(e) => cli::error_chain(e),
        }
    }
}

/// The exit code of a `deploy-rollback` error, by variant and structured fields.
fn rollback_code(e: &deploy_rollback::Error) -> u8 {
    use deploy_rollback::Error as E;
    match e {
        E::ConfirmationMismatch { .. }
        | E::DirtyWorkTree { .. }
        | E::Diverged { .. }
        | E::UnpushedCommits { .. }
        | E::WrongBranch { .. }
        | E::NothingToRevert { .. }
        | E::RevertConflict { .. }
        | E::NoGoodRelease { .. }
        | E::AlreadyRolledBack { .. }
        | E::VerificationFailed { .. }
        | E::ChecksumMismatch { .. }
        | E::BackupInvalid { .. }
        | E::DatabaseExists { .. } => 1,
        E::InvalidName { .. }
        | E::InvalidInput { .. }
        | E::PlainLogParse { .. }
        | E::Policy { .. }
        | E::BackupNotFound { .. }
        | E::CommitNotFound { .. } => 2,
        E::CommandSpawn { source, .. }
            if matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            2
        }
        // Not a repository, or no committer identity configured.
        E::Git { op, .. } if *op == "open repository" || op.starts_with("committer identity") => 2,
        // SQLSTATE class 28: invalid authorization (wrong role or password).
        E::Postgres {
            code: Some(code), ..
        } if code.starts_with("28") => 2,
        E::Deployer { source, .. } => match source.downcast_ref::<deploy_bluegreen::Error>() {
            Some(e) => bluegreen_code(e),
            None => 3,
        },
        _ => 3,
    }
}

/// The exit code of a `deploy-bluegreen` error met while connecting or redeploying.
fn bluegreen_code(e: &deploy_bluegreen::Error) -> u8 {
    match e {
        e if e.is_refusal() => 1,
        e if e.is_config() => 2,
        _ => 3,
    }
}

fn report_failure(json: bool, failure: &Failure) -> ExitCode {
    let code = failure.code();
    let message = failure.message();
    let _ = writeln!(std::io::stderr(), "odoo-rollback: error: {message}");
    if json {
        let kind = match code {
            1 => "refused",
            2 => "usage",
            _ => "infrastructure",
        };
        let value = serde_json::json!({ "error": message, "kind": kind, "exit_code": code });
        let _ = writeln!(std::io::stdout(), "{value}");
    }
    ExitCode::from(code)
}

// ---------------------------------------------------------------------------------
// Main.

fn main() -> ExitCode {
    let cli: Cli = match cli::parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    cli::init_tracing("warn");
    let out = Output {
        json: cli.json,
        style: Style::detect(cli.quiet),
    };
    let result = match cli.command {
        // File work only: no runtime needed.
        Command::History(args) => history(&out, &args),
        Command::Prune(args) => prune(&out, &args),
        command => match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(run_async(&out, command)),
            Err(e) => Err(Failure::Infra(format!("cannot start the runtime: {e}"))),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report_failure(out.json, &failure),
    }
}

async fn run_async(out: &Output, command: Command) -> Result<(), Failure> {
    match command {
        Command::Backup(args) => backup(out, args).await,
        Command::Restore(args) => restore_cmd(out, args).await,
        Command::Revert(args) => revert(out, args).await,
        Command::Previous(args) => previous(out, args).await,
        Command::History(args) => history(out, &args),
        Command::Prune(args) => prune(out, &args),
    }
}

/// Where results go.
struct Output {
    json: bool,
    style: Style,
}

impl Output {
    fn text(&self, text: &str) -> Result<(), Failure> {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|e| Failure::Infra(format!("writing to stdout: {e}")))
    }

    fn json(&self, value: serde_json::Result<Value>) -> Result<(), Failure> {
        let value = value.map_err(|e| Failure::Infra(format!("rendering JSON: {e}")))?;
        let mut text = serde_json::to_string_pretty(&value)
            .map_err(|e| Failure::Infra(format!("rendering JSON: {e}")))?;
        text.push('\n');
        self.text(&text)
    }

    /// A progress line on stderr (not with --quiet).
    fn note(&self, text: &str) {
        if self.style != Style::Off {
            let _ = writeln!(std::io::stderr(), "odoo-rollback: {text}");
        }
    }
}

// ---------------------------------------------------------------------------------
// Secrets and connections.

/// The value of an environment variable named on the command line.
fn env_secret(flag: &str, var: &str) -> Result<SecretString, Failure> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Ok(SecretString::from(value)),
        Ok(_) => Err(Failure::Usage(format!(
            "environment variable {var} (named by {flag}) is empty"
        ))),
        Err(std::env::VarError::NotPresent) => Err(Failure::Usage(format!(
            "environment variable {var} (named by {flag}) is not set"
        ))),
        Err(std::env::VarError::NotUnicode(_)) => Err(Failure::Usage(format!(
            "environment variable {var} (named by {flag}) is not UTF-8"
        ))),
    }
}

fn file_secret(flag: &str, path: &Path) -> Result<SecretString, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("{flag} {}: {e}", path.display())))?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if text.is_empty() {
        return Err(Failure::Usage(format!(
            "{flag} {}: the file is empty",
            path.display()
        )));
    }
    Ok(SecretString::from(text.to_owned()))
}

impl PgArgs {
    /// The connection, to `db` when given (else the URL's database, else `postgres`).
    fn connection(&self, db: Option<&str>) -> Result<PgConnection, Failure> {
        let mut conn = match &self.db_url_env {
            Some(var) => {
                let url = env_secret("--db-url-env", var)?;
                PgConnection::from_url(secrecy::ExposeSecret::expose_secret(&url))?
            }
            None => {
                let user = self.user.as_deref().ok_or_else(|| {
                    Failure::Usage(
                        "no database connection: give --db-url-env VAR, or --user (with --host, \
                         --port and --password-env or --password-file)"
                            .to_owned(),
                    )
                })?;
                PgConnection::new(&self.host, self.port, user, "postgres")
            }
        };
        if let Some(db) = db {
            conn.dbname = db.to_owned();
        }
        if let Some(var) = &self.password_env {
            conn = conn.with_password(env_secret("--password-env", var)?);
        } else if let Some(path) = &self.password_file {
            conn = conn.with_password(file_secret("--password-file", path)?);
        }
        Ok(conn)
    }

    fn tools(&self) -> PgTools {
        self.pg_bin
            .as_ref()
            .map_or_else(PgTools::default, PgTools::in_dir)
    }
}

/// A directory that must exist already (read-only uses must not create a typo's
/// directory).
fn existing_dir(flag: &str, path: &Path) -> Result<(), Failure> {
    if path.is_dir() {
        Ok(())
    } else {
        Err(Failure::Usage(format!(
            "{flag} {}: no such directory",
            path.display()
        )))
    }
}

// ---------------------------------------------------------------------------------
// Progress of backups and restores.

/// A spinner (terminal) or a line (otherwise) while something without measurable
/// progress runs.
fn spinner(out: &Output, text: &str) -> Option<ProgressBar> {
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
struct StepProgress {
    style: Style,
    bar: Option<ProgressBar>,
    started: Instant,
}

impl StepProgress {
    fn new(style: Style) -> Self {
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

    fn line(&self, text: &str) {
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

    fn finish(&self) {
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

// ---------------------------------------------------------------------------------
// Formatting.

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn short_sha(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Left-aligned columns separated by two spaces (the last one unpadded).
fn columns(rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            match widths.get_mut(i) {
                Some(width) => *width = (*width).max(w),
                None => widths.push(w),
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                line.push_str(cell);
            } else {
                let width = widths.get(i).copied().unwrap_or_default();
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------
// backup

async fn backup(out: &Output, args: BackupArgs) -> Result<(), Failure> {
    let conn = args.pg.connection(args.db.as_deref())?;
    let store = BackupStore::open(&args.store)?;
    let mut request = BackupRequest::new(conn, &args.release).with_tools(args.pg.tools());
    if let Some(dir) = &args.data_dir {
        request = request.with_data_dir(dir);
    }
    if let Some(sha) = &args.git_sha {
        request = request.with_git_sha(sha);
    }
    if let Some(stack) = &args.stack {
        request = request.with_stack(stack);
    }
    out.note(&format!(
        "backing up database {} into {}",
        request.connection.dbname,
        args.store.display()
    ));
    let progress = Arc::new(TransferProgress::new(out.style, "odoo-rollback"));
    let result = store.create(&request, progress.clone()).await;
    progress.finish();
    let manifest = result?;
    let path = store.backup_dir(&manifest.id);
    if out.json {
        let mut value = serde_json::to_value(&manifest);
        if let Ok(Value::Object(map)) = &mut value {
            map.insert("path".to_owned(), Value::String(path.display().to_string()));
        }
        return out.json(value);
    }
    out.text(&backup_text(&manifest, &path))
}

fn backup_text(m: &BackupManifest, path: &Path) -> String {
    let mut rows = vec![vec!["database".to_owned(), m.database.clone()]];
    let mut release = m.release.clone();
    if let Some(sha) = &m.git_sha {
        release.push_str(&format!(" (git {})", short_sha(sha)));
    }
    rows.push(vec!["release".to_owned(), release]);
    if let Some(stack) = &m.stack {
        rows.push(vec!["stack".to_owned(), stack.clone()]);
    }
    rows.push(vec![
        "dump".to_owned(),
        format!(
            "{}  sha256 {}",
            bytes(m.database_dump.size),
            m.database_dump.sha256
        ),
    ]);
    match &m.filestore {
        Some(f) => rows.push(vec![
            "filestore".to_owned(),
            format!(
                "{}, {} files  sha256 {}",
                bytes(f.size),
                f.files.unwrap_or_default(),
                f.sha256
            ),
        ]),
        None => rows.push(vec![
            "filestore".to_owned(),
            "not included (no --data-dir)".to_owned(),
        ]),
    }
    rows.push(vec![
        "verified".to_owned(),
        format!(
            "pg_restore --list: {} entries, {} tables",
            m.toc.entries, m.toc.tables
        ),
    ]);
    let took = (m.completed_at - m.created_at).to_std().unwrap_or_default();
    rows.push(vec![
        "taken".to_owned(),
        format!("{} in {}", time(m.created_at), human_duration(took)),
    ]);
    rows.push(vec!["path".to_owned(), path.display().to_string()]);
    let mut text = format!("backup {} complete\n", m.id);
    for line in columns(&rows).lines() {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    text
}

// ---------------------------------------------------------------------------------
// restore

async fn restore_cmd(out: &Output, args: RestoreArgs) -> Result<(), Failure> {
    existing_dir("--store", &args.store)?;
    let conn = args.pg.connection(Some(&args.maintenance_db))?;
    let store = BackupStore::open(&args.store)?;
    let confirmation = match &args.confirm {
        Some(typed) => typed.clone(),
        None => prompt_confirmation(out, &store, &args)?,
    };
    let mut request = RestoreRequest::new(
        conn,
        &args.db,
        &args.backup,
        Confirmation::new(confirmation),
    )
    .with_tools(args.pg.tools());
    request.swap_timeout = args.swap_timeout;
    if let Some(dir) = &args.data_dir {
        request = request.with_data_dir(dir);
    }
    if let Some(probe) = &args.probe {
        request = request.with_probe(probe);
    }
    if let Some(jobs) = args.jobs {
        request = request.with_jobs(jobs);
    }
    out.note(&format!(
        "restoring backup {} over database {}",
        args.backup, args.db
    ));
    let progress = Arc::new(TransferProgress::new(out.style, "odoo-rollback"));
    let result = restore(&store, &request, progress.clone()).await;
    progress.finish();
    let outcome = result?;
    if out.json {
        return out.json(serde_json::to_value(&outcome));
    }
    out.text(&restore_text(&outcome))
}

/// Asks for the live database's name on a terminal; refuses without one.
fn prompt_confirmation(
    out: &Output,
    store: &BackupStore,
    args: &RestoreArgs,
) -> Result<String, Failure> {
    let refused = || {
        Failure::Refused(format!(
            "restoring replaces database {db} (it is kept as {db}_replaced_<time>): \
             confirm with --confirm {db}",
            db = args.db
        ))
    };
    if out.json || !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(refused());
    }
    let manifest = store.get(&args.backup)?;
    let _ = write!(
        std::io::stderr(),
        "Restore backup {} (database {}, release {}, taken {}) over the live database {}?\n\
         The live database is kept under a dated name. Type its name to confirm: ",
        manifest.id,
        manifest.database,
        manifest.release,
        time(manifest.created_at),
        args.db
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Infra(format!("reading the confirmation: {e}")))?;
    let typed = line.trim();
    if typed.is_empty() {
        return Err(refused());
    }
    Ok(typed.to_owned())
}

fn restore_text(o: &RestoreOutcome) -> String {
    let mut rows = vec![
        vec![
            "unavailable".to_owned(),
            format!(
                "{} (the rename swap; {} session{} closed)",
                human_duration(o.unavailable),
                o.terminated_sessions,
                if o.terminated_sessions == 1 { "" } else { "s" }
            ),
        ],
        vec![
            "restore".to_owned(),
            format!(
                "{} (the live database served meanwhile)",
                human_duration(o.restore_duration)
            ),
        ],
    ];
    let v = &o.verification;
    let mut verified = format!("{}/{} tables", v.tables_found, v.tables_expected);
    if let Some(probe) = &v.probe_result {
        verified.push_str(&format!("; probe returned {probe}"));
    }
    rows.push(vec!["verified".to_owned(), verified]);
    if let Some(fs) = &o.live_filestore {
        rows.push(vec!["filestore".to_owned(), fs.display().to_string()]);
    }
    rows.push(vec![
        "kept".to_owned(),
        match &o.replaced_database {
            Some(db) => format!("database {db}"),
            None => format!("no database {} existed before", o.live_database),
        },
    ]);
    if let Some(fs) = &o.replaced_filestore {
        rows.push(vec![String::new(), format!("filestore {}", fs.display())]);
    }
    let mut text = format!(
        "restored backup {} over database {}\n",
        o.backup_id, o.live_database
    );
    for line in columns(&rows).lines() {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    text
}

// ---------------------------------------------------------------------------------
// revert

async fn revert(out: &Output, args: RevertArgs) -> Result<(), Failure> {
    let (commit, mainline) = match (&args.merge, &args.commit) {
        (Some(merge), None) => (merge.clone(), Some(args.mainline.unwrap_or(1))),
        (None, Some(commit)) => (commit.clone(), None),
        _ => {
            return Err(Failure::Usage(
                "give exactly one of --merge SHA and --commit SHA".to_owned(),
            ))
        }
    };
    if let Some(var) = &args.token_env {
        // Checked here so that a missing token is a usage error, not a failed push.
        env_secret("--token-env", var)?;
    }
    let credentials = GitCredentials {
        ssh_agent: args.ssh_agent,
        token_env: args.token_env.clone(),
        token_user: args.token_user.clone(),
    };
    let mut request = GitRevertRequest::new(&args.repo, &args.branch, &commit)
        .with_remote(&args.remote)
        .with_credentials(credentials)
        .dry_run(args.dry_run);
    request.mainline = mainline;
    if let (Some(name), Some(email)) = (&args.committer_name, &args.committer_email) {
        request.identity = Some(GitIdentity {
            name: name.clone(),
            email: email.clone(),
        });
    }
    let what = if args.dry_run {
        format!(
            "computing the revert of {commit} on {} (dry run: fetch only)",
            args.branch
        )
    } else {
        format!(
            "reverting {commit} on {}: fetch, commit, push to {}",
            args.branch, args.remote
        )
    };
    let bar = spinner(out, &what);
    let result = deploy_rollback::revert_blocking(request).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let outcome = result?;
    if out.json {
        return out.json(serde_json::to_value(&outcome));
    }
    out.text(&revert_text(&outcome))
}

fn revert_text(o: &RevertOutcome) -> String {
    let mainline = o
        .mainline
        .map_or_else(String::new, |m| format!(" (merge, keeping parent {m})"));
    let mut text = if o.dry_run {
        format!(
            "dry run: would revert {} \"{}\"{mainline} on {}/{}; nothing committed or pushed\n",
            short_sha(&o.reverted),
            o.reverted_summary,
            o.remote,
            o.branch
        )
    } else {
        format!(
            "reverted {} \"{}\"{mainline} on {}/{}: commit {}{}\n",
            short_sha(&o.reverted),
            o.reverted_summary,
            o.remote,
            o.branch,
            o.revert_commit.as_deref().map_or("-", short_sha),
            if o.pushed { ", pushed" } else { ", not pushed" }
        )
    };
    let mut rows = vec![vec![
        "base".to_owned(),
        short_sha(&o.base).to_owned(),
        String::new(),
    ]];
    for f in &o.files {
        let kind = serde_json::to_value(f.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        rows.push(vec![
            kind,
            f.path.clone(),
            format!("+{} -{}", f.insertions, f.deletions),
        ]);
    }
    for line in columns(&rows).lines() {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    let d = &o.diffstat;
    text.push_str(&format!(
        "  {} file{} changed, {} insertion{}(+), {} deletion{}(-)\n",
        d.files_changed,
        if d.files_changed == 1 { "" } else { "s" },
        d.insertions,
        if d.insertions == 1 { "" } else { "s" },
        d.deletions,
        if d.deletions == 1 { "" } else { "s" },
    ));
    text.push_str("  message:\n");
    for line in o.message.lines() {
        text.push_str("    ");
        text.push_str(line);
        text.push('\n');
    }
    text
}

// ---------------------------------------------------------------------------------
// previous

/// The deployer `previous` redeploys through: the blue-green orchestrator, or none
/// (a dry run only plans, which never calls it).
enum StackDeployer {
    PlanOnly,
    BlueGreen(Box<Orchestrator>),
}

#[async_trait]
impl Deployer for StackDeployer {
    async fn redeploy(&self, release: &ReleaseRef) -> Result<RedeployReport, DeployerError> {
        match self {
            StackDeployer::PlanOnly => {
                Err("no deployer: pass --config with a blue-green stack file".into())
            }
            StackDeployer::BlueGreen(orchestrator) => orchestrator.redeploy(release).await,
        }
    }
}

fn check_operator(operator: &str) -> Result<(), Failure> {
    if operator.trim().is_empty()
        || operator.contains('|')
        || operator.chars().any(char::is_control)
    {
        return Err(Failure::Usage(format!(
            "--operator {operator:?} must be non-empty, without '|' or control characters"
        )));
    }
    Ok(())
}

async fn previous(out: &Output, args: PreviousArgs) -> Result<(), Failure> {
    let config = match &args.config {
        Some(path) => Some(StackConfig::load(path).map_err(|e| {
            Failure::Usage(format!(
                "--config {}: {}",
                path.display(),
                cli::error_chain(&e)
            ))
        })?),
        None => None,
    };
    let stack = match (&args.stack, &config) {
        (Some(stack), Some(c)) if *stack != c.stack => {
            return Err(Failure::Usage(format!(
                "--stack {stack} does not match the stack file's stack {}",
                c.stack
            )))
        }
        (Some(stack), _) => stack.clone(),
        (None, Some(c)) => c.stack.clone(),
        (None, None) => return Err(Failure::Usage("give --stack NAME (or --config)".to_owned())),
    };
    let environment = match (args.env, &config) {
        (Some(env), Some(c)) if env != c.environment => {
            return Err(Failure::Usage(format!(
                "--env {env} does not match the stack file's environment {}",
                c.environment
            )))
        }
        (Some(env), _) => env,
        (None, Some(c)) => c.environment,
        (None, None) => return Err(Failure::Usage("give --env ENV (or --config)".to_owned())),
    };
    let history_dir = args
        .history
        .clone()
        .or_else(|| config.as_ref().and_then(|c| c.history_dir.clone()))
        .ok_or_else(|| {
            Failure::Usage("give --history DIR (or a stack file with history_dir)".to_owned())
        })?;
    existing_dir("--history", &history_dir)?;
    let history = History::open(&history_dir)?;
    let operator = args.operator.clone().unwrap_or_else(cli::default_operator);
    check_operator(&operator)?;
    let mut ctx = RollbackContext::new(&stack, environment, &operator);
    if let Some(bad) = &args.bad_release {
        ctx = ctx.with_bad_release(bad);
    }

    if args.dry_run {
        let strategy = PreviousRelease::new(history, StackDeployer::PlanOnly);
        let plan = strategy.plan(&ctx).await?;
        if out.json {
            let mut value = serde_json::to_value(&plan);
            if let Ok(Value::Object(map)) = &mut value {
                map.insert("dry_run".to_owned(), Value::Bool(true));
            }
            return out.json(value);
        }
        return out.text(&plan_text(&plan));
    }

    let Some(config) = config else {
        // Resolve the target first: "nothing to roll back to" is worth knowing either way.
        let strategy = PreviousRelease::new(history, StackDeployer::PlanOnly);
        let plan = strategy.plan(&ctx).await?;
        return Err(Failure::Usage(format!(
            "previous needs --config with a blue-green stack file to redeploy {} \
             (use --dry-run to only show the target)",
            plan.target_release
                .as_deref()
                .unwrap_or("the last good release")
        )));
    };
    let events = Arc::new(StepProgress::new(out.style));
    let orchestrator = match Orchestrator::connect(config).await {
        Ok(o) => o.with_operator(&operator).with_events(events.clone()),
        Err(e) => {
            events.finish();
            return Err(Failure::BlueGreen(e));
        }
    };
    let strategy = PreviousRelease::new(
        history.clone(),
        StackDeployer::BlueGreen(Box::new(orchestrator)),
    );
    let plan = strategy.plan(&ctx).await;
    if let Ok(plan) = &plan {
        events.line(&plan.summary);
    }
    let result = execute_recorded(&strategy, &ctx, &history).await;
    events.finish();
    let outcome = result?;
    if out.json {
        return out.json(serde_json::to_value(&outcome));
    }
    out.text(&outcome_text(&outcome))
}

fn plan_text(plan: &RollbackPlan) -> String {
    let mut text = format!("dry run: {}\n", plan.summary);
    if let Some(target) = &plan.target_release {
        text.push_str(&format!("  target    {target}\n"));
    }
    for step in &plan.steps {
        text.push_str(&format!("  step      {step}\n"));
    }
    text
}

fn outcome_text(o: &RollbackOutcome) -> String {
    let mut text = format!("{}\n", o.summary);
    if let Some(live) = &o.live_release {
        text.push_str(&format!("  live      {live}\n"));
    }
    if let OutcomeDetail::Redeployed(report) = &o.detail {
        // The orchestrator's own report says when there was nothing to do.
        let unchanged = report.details.get("result").and_then(Value::as_str) == Some("unchanged");
        let how = if report.warm_switch {
            "traffic switched back to the warm slot"
        } else if unchanged {
            "it was live already: nothing changed"
        } else {
            "its slot was started and gated, then traffic switched"
        };
        text.push_str(&format!("  how       {how}\n"));
    }
    text.push_str(&format!("  took      {}\n", human_duration(o.duration)));
    text
}

// ---------------------------------------------------------------------------------
// history

fn history(out: &Output, args: &HistoryArgs) -> Result<(), Failure> {
    if let Some(file) = &args.import_plain {
        let text = if file.as_os_str() == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text)
                .map_err(|e| Failure::Usage(format!("--import-plain -: {e}")))?;
            text
        } else {
            std::fs::read_to_string(file)
                .map_err(|e| Failure::Usage(format!("--import-plain {}: {e}", file.display())))?
        };
        let history = History::open(&args.history)?;
        let imported = history.import_plain(&text)?;
        if out.json {
            return out.json(Ok(serde_json::json!({ "imported": imported })));
        }
        return out.text(&format!(
            "imported {imported} record{} into {}\n",
            if imported == 1 { "" } else { "s" },
            args.history.display()
        ));
    }
    existing_dir("--history", &args.history)?;
    let history = History::open(&args.history)?;
    let filter = HistoryFilter {
        stack: args.stack.clone(),
        environment: args.env,
        status: args.status,
        since: args.since,
    };
    if args.export_plain {
        let mut buffer = Vec::new();
        history.export_plain(&filter, &mut buffer)?;
        return out.text(&String::from_utf8_lossy(&buffer));
    }
    if args.figures {
        let figures = history.figures(&filter)?;
        if out.json {
            return out.json(serde_json::to_value(&figures));
        }
        return out.text(&figures_text(&figures));
    }
    let records = history.list(&filter)?;
    if out.json {
        return out.json(serde_json::to_value(&records));
    }
    out.text(&records_text(&records))
}

fn records_text(records: &[DeploymentRecord]) -> String {
    if records.is_empty() {
        return "no records\n".to_owned();
    }
    let colour = cli::colour_stdout();
    let mut rows = vec![[
        "TIMESTAMP",
        "STACK",
        "ENV",
        "RELEASE",
        "STATUS",
        "OPERATOR",
        "DURATION",
        "BACKUP",
    ]
    .map(str::to_owned)
    .to_vec()];
    for r in records {
        rows.push(vec![
            time(r.timestamp),
            r.stack.clone(),
            r.environment.to_string(),
            r.release.clone(),
            r.status.to_string(),
            r.operator.clone(),
            r.duration.map_or_else(|| "-".to_owned(), human_duration),
            r.backup_id.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    let text = columns(&rows);
    if !colour {
        return text;
    }
    // Colour the status column once aligned: the codes take no width.
    let mut coloured = String::new();
    for (line, record) in text
        .lines()
        .zip(std::iter::once(None).chain(records.iter().map(Some)))
    {
        let painted = record.and_then(|r| {
            let code = match r.status {
                DeployStatus::Succeeded => "32",
                DeployStatus::Failed => "31",
                DeployStatus::RolledBack => "33",
                DeployStatus::Interrupted => "35",
                DeployStatus::Started => return None,
            };
            let status = r.status.as_str();
            let at = line.find(&format!("  {status}  "))? + 2;
            Some(format!(
                "{}\x1b[{code}m{status}\x1b[0m{}",
                line.get(..at)?,
                line.get(at + status.len()..)?
            ))
        });
        coloured.push_str(painted.as_deref().unwrap_or(line));
        coloured.push('\n');
    }
    coloured
}

fn figures_text(f: &Figures) -> String {
    let rate = f
        .success_rate
        .map_or_else(|| "-".to_owned(), |r| format!("{:.1} %", r * 100.0));
    let opt = |d: Option<Duration>| d.map_or_else(|| "-".to_owned(), human_duration);
    let rows = vec![
        vec!["deployments".to_owned(), f.deployments.to_string()],
        vec!["succeeded".to_owned(), f.succeeded.to_string()],
        vec!["failed".to_owned(), f.failed.to_string()],
        vec!["rolled back".to_owned(), f.rolled_back.to_string()],
        vec!["interrupted".to_owned(), f.interrupted.to_string()],
        vec!["in progress".to_owned(), f.in_progress.to_string()],
        vec!["success rate".to_owned(), rate],
        vec![
            "mean time to roll back".to_owned(),
            opt(f.mean_time_to_rollback),
        ],
        vec!["mean start to live".to_owned(), opt(f.mean_start_to_live)],
    ];
    columns(&rows)
}

// ---------------------------------------------------------------------------------
// prune

fn prune(out: &Output, args: &PruneArgs) -> Result<(), Failure> {
    existing_dir("--store", &args.store)?;
    let store = BackupStore::open(&args.store)?;
    let policy = match args.keep_last {
        Some(n) => RetentionPolicy::last(n),
        None => RetentionPolicy::generations(
            args.keep_daily.unwrap_or_default(),
            args.keep_weekly.unwrap_or_default(),
        ),
    };
    let protected = match &args.history {
        Some(dir) => {
            existing_dir("--history", dir)?;
            History::open(dir)?.protected_backups()?
        }
        None => Vec::new(),
    };
    let now = SystemTime::now();
    let (report, partials) = if args.dry_run {
        let decisions = store.plan_prune(&policy, &protected)?;
        let partials: Vec<PathBuf> = store
            .scan()?
            .into_iter()
            .filter(|e| match e.state {
                BackupState::Removing => true,
                BackupState::Partial => e.modified.is_some_and(|m| {
                    now.duration_since(m)
                        .is_ok_and(|age| age > args.partials_older_than)
                }),
                _ => false,
            })
            .map(|e| e.path)
            .collect();
        let removed = decisions
            .iter()
            .filter(|d| !d.is_kept())
            .map(|d| d.id.clone())
            .collect();
        (PruneReport { decisions, removed }, partials)
    } else {
        let report = store.prune(&policy, &protected)?;
        let partials = store.remove_stale_partials(args.partials_older_than, now)?;
        (report, partials)
    };
    if out.json {
        let value = serde_json::to_value(&report).map(|mut value| {
            if let Value::Object(map) = &mut value {
                map.insert("dry_run".to_owned(), Value::Bool(args.dry_run));
                map.insert("protected".to_owned(), serde_json::json!(protected));
                map.insert(
                    "stale_partials".to_owned(),
                    serde_json::json!(partials
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()),
                );
            }
            value
        });
        return out.json(value);
    }
    out.text(&prune_text(&report.decisions, &partials, args.dry_run))
}

fn keep_reasons(d: &RetentionDecision) -> String {
    d.keep
        .iter()
        .filter_map(|k| serde_json::to_value(k).ok())
        .map(|v| {
            let rule = v.get("rule").and_then(Value::as_str).unwrap_or("kept");
            match (v.get("day"), v.get("year"), v.get("week")) {
                (Some(day), _, _) => format!("{rule} {}", day.as_str().unwrap_or_default()),
                (_, Some(year), Some(week)) => format!("{rule} {year}-W{week:0>2}"),
                _ => rule.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn prune_text(decisions: &[RetentionDecision], partials: &[PathBuf], dry_run: bool) -> String {
    let remove = if dry_run { "would remove" } else { "removed" };
    let mut rows = vec![["ACTION", "BACKUP", "DATABASE", "TAKEN", "WHY"]
        .map(str::to_owned)
        .to_vec()];
    for d in decisions {
        rows.push(vec![
            if d.is_kept() { "keep" } else { remove }.to_owned(),
            d.id.clone(),
            d.database.clone(),
            time(d.created_at),
            if d.is_kept() {
                keep_reasons(d)
            } else {
                "not kept by any rule".to_owned()
            },
        ]);
    }
    let mut text = if decisions.is_empty() {
        "no complete backups\n".to_owned()
    } else {
        columns(&rows)
    };
    for p in partials {
        text.push_str(&format!("{remove} partial {}\n", p.display()));
    }
    let removed = decisions.iter().filter(|d| !d.is_kept()).count();
    text.push_str(&format!(
        "{}{} kept, {removed} {remove}\n",
        if dry_run { "dry run: " } else { "" },
        decisions.len() - removed
    ));
    text
}
