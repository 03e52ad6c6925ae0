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
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use clap::{ArgGroup, Args, Parser, Subcommand};
use deploy_bluegreen::orchestrator::Orchestrator;
use deploy_bluegreen::StackConfig;
use deploy_core::{Classify, ErrorClass, SecretRef};
use deploy_rollback::backup::{BackupState, PruneReport, RetentionDecision};
use deploy_rollback::git::GitIdentity;
use deploy_rollback::history::Figures;
use deploy_rollback::strategy::{
    execute_recorded, OutcomeDetail, PreviousRelease, RollbackContext, RollbackStrategy,
};
use deploy_rollback::{
    BackupManifest, BackupRequest, BackupStore, Confirmation, DeployStatus, Deployer,
    DeployerError, DeploymentRecord, Environment, GitCredentials, GitRevertRequest, History,
    HistoryFilter, PgConnection, PgTools, RedeployMethod, RedeployReport, ReleaseRef,
    RestoreOutcome, RestoreRequest, RetentionPolicy, RevertOutcome, RollbackOutcome, RollbackPlan,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use odoo_deploy::cli;
use odoo_deploy::progress::Style;
use odoo_deploy::transfer::{bytes, human_duration, TransferProgress};
use secrecy::SecretString;
use serde_json::Value;

mod backup;
mod backups;
mod format;
mod history;
mod pg;
mod previous;
mod progress;
mod prune;
mod restore;
mod revert;

use backup::*;
use backups::*;
use format::*;
use history::*;
use pg::*;
use previous::*;
use progress::*;
use prune::*;
use restore::*;
use revert::*;

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
    /// List the backup store: id, database, release, size, verified, age, and whether
    /// the history protects it from `prune`; unfinished and invalid directories too.
    #[command(after_help = AFTER_HELP)]
    Backups(BackupsArgs),
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

/// Why a command did not succeed: a message and who must act on it (its exit code).
#[derive(Debug)]
enum Failure {
    /// Refused by this binary before anything changed (exit 1).
    Refused(String),
    /// A bad flag or configuration (exit 2).
    Usage(String),
    /// A local failure of this binary (exit 3).
    Infra(String),
    /// A library's error, with the class it gives itself.
    Classified {
        /// The error and its causes.
        message: String,
        /// Who must act.
        class: ErrorClass,
    },
}

impl<E> From<E> for Failure
where
    E: Classify + std::error::Error + 'static,
{
    fn from(e: E) -> Self {
        Failure::Classified {
            message: cli::error_chain(&e),
            class: e.class(),
        }
    }
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Refused(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Infra(_) => 3,
            Failure::Classified { class, .. } => class.exit_code(),
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::Refused(m)
            | Failure::Usage(m)
            | Failure::Infra(m)
            | Failure::Classified { message: m, .. } => m.clone(),
        }
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
        let value = odoo_deploy::output::ErrorOutput {
            error: message,
            exit_code: code,
            kind: Some(kind.to_owned()),
            holder: None,
            stage: None,
            backup_id: None,
        };
        let _ = writeln!(
            std::io::stdout(),
            "{}",
            serde_json::to_string(&value).unwrap_or_default()
        );
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
        Command::Backups(args) => backups(&out, &args),
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
        Command::Backups(args) => backups(out, &args),
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
