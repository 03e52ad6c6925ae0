//! `odoo-gate`: check a deployed Odoo before and after a release.
//!
//! A thin binary over `deploy-gates`: parse arguments, build a plan (from a file, from
//! flags, or against an in-process fake Odoo), run it with progress on stderr, print
//! the report (table or JSON, plus JUnit and Markdown files), map the result to an exit
//! code.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use deploy_core::{SecretRef, Target};
use deploy_gates::standard::StandardPlan;
use deploy_gates::{Plan, Registry, Report, RunSettings, Runner};
use deploy_validate::{Baseline, Level, Options};
use odoo_deploy::cli;
use odoo_deploy::progress::{Progress, Style};
use odoo_deploy::render::{self, NotRun};
use odoo_deploy::validation;
use odoo_fixtures::{FakeOdoo, ModuleState, OdooVersion};

const AFTER_HELP: &str = "\
Exit codes:
  0  every gate passed (warnings allowed)
  1  a gate failed, the plan timed out, or the run was inconclusive (a check that
     could not decide, or could not run, is never a pass)
  2  configuration or usage error: a bad flag, an invalid plan, a secret that does not
     resolve, a target that lacks what a gate needs, an output file that cannot be written

Output: a table on stdout (coloured on a terminal; no colour with NO_COLOR or when
piped), or with --json the report as JSON (schema_version 1, documented in the
deploy_gates::report module: stable field names, additions only). --junit FILE writes
JUnit XML (one testcase per gate); --summary FILE appends a Markdown summary (pass
\"$GITHUB_STEP_SUMMARY\" in GitHub Actions). Progress goes to stderr: a spinner on a
terminal, one line per check otherwise. Logs: RUST_LOG (default warn).

Secrets come from environment variables or files, never from the command line, and never
appear in any output.";

/// Check a deployed Odoo: health, database, login, version, modules, CRUD, filestore,
/// response time, session continuity, PostgreSQL; and addons before they are deployed.
#[derive(Debug, Parser)]
#[command(name = "odoo-gate", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct OutputArgs {
    /// Print the report as JSON on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Write the report as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Append the report as a Markdown summary to FILE.
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gates of a plan file (see gates/examples/gates.toml).
    #[command(after_help = AFTER_HELP)]
    Run {
        /// The plan: targets, gates, thresholds and modes.
        #[arg(long, value_name = "FILE")]
        plan: PathBuf,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Run the standard gates against one Odoo, without a plan file.
    ///
    /// Port, health, websocket, login page and version; with --db and --user also the
    /// database, login and modules gates. --comprehensive adds smoke CRUD, filestore and
    /// response time, and session continuity with --session-from-url.
    #[command(after_help = AFTER_HELP)]
    Check(Box<CheckArgs>),
    Validate(ValidateArgs),
    /// Run every gate against a fake Odoo started in this process.
    ///
    /// The full default plan at work in one command: nothing to install, nothing to
    /// configure. PostgreSQL is checked too when a DSN is given.
    #[command(after_help = AFTER_HELP)]
    Demo {
        /// The Odoo version the fake impersonates: 16.0, 17.0, 18.0 or 19.0.
        #[arg(long, value_name = "VERSION", default_value = "17.0")]
        odoo_version: String,
        /// Environment variable holding a PostgreSQL DSN for the postgres gate.
        #[arg(long, value_name = "VAR", default_value = "DEPLOY_TEST_PG")]
        postgres_dsn_env: String,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// Check addons before any server starts: manifests, XML data, access rules, Python
/// sources, version bumps, hard-coded secrets, an install dry run.
///
/// PATH is a folder of addons or one addon; every addon under it is checked. Levels:
/// `fast` checks each addon alone (a pre-push hook), `comprehensive` adds the checks
/// across addons and, with --since, the version bump (a merge gate), `bulletproof`
/// adds an install dry run (dependency order, ids loaded before use). Each finding has
/// a stable code (the codes are listed in the README), its file and line, and a fix.
#[derive(Debug, Args)]
#[command(after_help = VALIDATE_AFTER_HELP)]
struct ValidateArgs {
    /// Folders of addons, or addons.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// fast, comprehensive or bulletproof.
    #[arg(long, value_name = "LEVEL", default_value = "comprehensive")]
    level: Level,
    /// The series the addons target (their versions start with it).
    #[arg(long, value_name = "SERIES", default_value = "17.0")]
    odoo_version: String,
    /// Further addons folders that satisfy dependencies and references, not checked
    /// (Odoo's own addons, other repositories); repeat, or separate with commas.
    #[arg(long = "addons-path", value_name = "DIR", value_delimiter = ',')]
    addons_path: Vec<PathBuf>,
    /// Compare with this git revision: an addon whose files changed must have a new
    /// version, and a dropped field a migration (comprehensive and bulletproof).
    #[arg(long, value_name = "REV")]
    since: Option<String>,
    /// Acknowledged secrets findings (`S601 FILE FINGERPRINT # why` per line).
    #[arg(long, value_name = "FILE")]
    secrets_baseline: Option<PathBuf>,
    /// Write every secrets finding of this run to FILE as a baseline, then check with it
    /// (review the file before you commit it).
    #[arg(long, value_name = "FILE", conflicts_with = "secrets_baseline")]
    write_secrets_baseline: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

const VALIDATE_AFTER_HELP: &str = "\
Exit codes:
  0  no error found (warnings allowed)
  1  at least one error
  2  configuration or usage error: a PATH that is not a folder, no addon in the paths, a
     git revision that does not resolve, a baseline that does not read, an output file
     that cannot be written

Output: the findings and a line per addon on stdout, or with --json the report as JSON
(schema schemas/validate-report.schema.json); --junit FILE writes JUnit XML (a test case
per addon and family of checks); --summary FILE appends a Markdown summary. A secret's
value is never printed: a finding names its kind, length and fingerprint.";

#[derive(Debug, Args)]
struct CheckArgs {
    /// Base URL of the Odoo server.
    #[arg(long, env = "ODOO_URL")]
    url: String,
    /// The real-time (gevent) port's URL of an Odoo in prefork mode (--workers), e.g.
    /// http://127.0.0.1:8072: the websocket gate upgrades there [default: --url].
    #[arg(long, value_name = "URL")]
    realtime_url: Option<String>,
    /// Database name (enables the database, login and modules gates with --user).
    #[arg(long, env = "ODOO_DB")]
    db: Option<String>,
    /// Login of the user the checks act as.
    #[arg(long, env = "ODOO_USER")]
    user: Option<String>,
    /// Environment variable holding the password [default: ODOO_PASSWORD, unless
    /// --api-key-env is given].
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
    /// Environment variable holding an API key (used instead of the password where the
    /// protocol allows).
    #[arg(long, value_name = "VAR")]
    api_key_env: Option<String>,
    /// A module that must be installed; repeat for several.
    #[arg(long = "module", value_name = "NAME")]
    modules: Vec<String>,
    /// Also run the gates that write or load the server.
    #[arg(long)]
    comprehensive: bool,
    /// The live Odoo whose sessions must stay valid on --url (comprehensive only; same
    /// database and credentials).
    #[arg(long, value_name = "URL")]
    session_from_url: Option<String>,
    /// Environment variable holding a PostgreSQL DSN: adds the postgres gate.
    #[arg(long, value_name = "VAR")]
    postgres_dsn_env: Option<String>,
    /// The version the server must report (17.0, saas~17.1, 17).
    #[arg(long, value_name = "VERSION")]
    expect_version: Option<String>,
    /// The release label the server must report (X-Odoo-Release).
    #[arg(long, value_name = "LABEL")]
    expect_release: Option<String>,
    /// Give up after this long.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Timeout of each check.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    gate_timeout: Duration,
    #[command(flatten)]
    output: OutputArgs,
}

/// The environment variable the demo's fake admin password is passed in.
const DEMO_PASSWORD_ENV: &str = "ODOO_GATE_DEMO_PASSWORD";
/// The demo's release label.
const DEMO_RELEASE: &str = "demo-green";

/// A configuration or usage error (exit code 2), with its whole cause chain.
struct Usage(String);

impl Usage {
    fn from_error(err: &(dyn std::error::Error + 'static)) -> Usage {
        Usage(cli::error_chain(err))
    }
}

fn main() -> ExitCode {
    let cli: Cli = match cli::parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    cli::init_tracing("warn");
    if matches!(cli.command, Command::Demo { .. }) {
        // The fake's admin password reaches the plan the way real ones do: by reference
        // to an environment variable. Set before any thread exists.
        std::env::set_var(DEMO_PASSWORD_ENV, "admin");
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return usage(Usage::from_error(&err)),
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => usage(err),
    }
}

fn usage(err: Usage) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "odoo-gate: error: {}", err.0);
    ExitCode::from(2)
}

async fn run(cli: Cli) -> Result<u8, Usage> {
    match cli.command {
        Command::Run { plan, output } => {
            let plan = Plan::load(&plan).map_err(|err| Usage::from_error(&err))?;
            execute(&plan, &[], &output).await
        }
        Command::Check(args) => {
            let plan = check_plan(&args)?;
            execute(&plan, &[], &args.output).await
        }
        Command::Demo {
            odoo_version,
            postgres_dsn_env,
            output,
        } => demo(&odoo_version, &postgres_dsn_env, &output).await,
        Command::Validate(args) => validate(&args),
    }
}

fn parse_url(flag: &str, url: &str) -> Result<deploy_core::url::Url, Usage> {
    url.parse()
        .map_err(|err| Usage(format!("{flag} `{url}` is not a URL: {err}")))
}

/// The target of `check`, named `name`, at `url`.
fn check_target(args: &CheckArgs, name: &str, url: &str, flag: &str) -> Result<Target, Usage> {
    let mut target = Target::new(name, parse_url(flag, url)?);
    if let Some(db) = &args.db {
        target = target.with_database(db);
    }
    if let Some(user) = &args.user {
        target = target.with_login(user);
    }
    if let Some(var) = &args.api_key_env {
        target = target.with_api_key(SecretRef::env(var));
    }
    match (&args.password_env, &args.api_key_env) {
        (Some(var), _) => target = target.with_password(SecretRef::env(var)),
        (None, None) if args.user.is_some() => {
            target = target.with_password(SecretRef::env("ODOO_PASSWORD"));
        }
        _ => {}
    }
    Ok(target)
}

fn check_plan(args: &CheckArgs) -> Result<Plan, Usage> {
    let mut target = check_target(args, "odoo", &args.url, "--url")?;
    if let Some(realtime) = &args.realtime_url {
        target = target.with_realtime_url(parse_url("--realtime-url", realtime)?);
    }
    let run = RunSettings::default()
        .with_timeout(args.timeout)
        .with_gate_timeout(args.gate_timeout);
    let mut plan = StandardPlan::new(target)
        .modules(args.modules.iter().cloned())
        .comprehensive(args.comprehensive)
        .run_settings(run);
    if let Some(url) = &args.session_from_url {
        plan = plan.session_from(check_target(args, "live", url, "--session-from-url")?);
    }
    if let Some(var) = &args.postgres_dsn_env {
        plan = plan.postgres(SecretRef::env(var));
    }
    if let Some(version) = &args.expect_version {
        plan = plan.expected_version(version);
    }
    if let Some(release) = &args.expect_release {
        plan = plan.expected_release(release);
    }
    plan.build().map_err(|err| Usage::from_error(&err))
}

async fn demo(version: &str, postgres_env: &str, output: &OutputArgs) -> Result<u8, Usage> {
    let version: OdooVersion = version
        .parse()
        .map_err(|err| Usage(format!("--odoo-version `{version}`: {err}")))?;
    let fake = FakeOdoo::builder()
        .version(version)
        .database("demo")
        .user("admin", "admin")
        .module("sale", ModuleState::Installed)
        .release(DEMO_RELEASE)
        .record_requests(false)
        .start()
        .await
        .map_err(|err| Usage::from_error(&err))?;
    let url = parse_url("the fake's URL", &fake.uri())?;
    let target = |name: &str| {
        Target::new(name, url.clone())
            .with_database("demo")
            .with_login("admin")
            .with_password(SecretRef::env(DEMO_PASSWORD_ENV))
    };
    let mut plan = StandardPlan::new(target("green"))
        .modules(["sale"])
        .expected_version(version.to_string())
        .expected_release(DEMO_RELEASE)
        .comprehensive(true)
        // One fake plays both slots: the gate runs, and says the check proves nothing.
        .session_from(target("blue"));
    let mut not_run = Vec::new();
    if std::env::var_os(postgres_env).is_some_and(|dsn| !dsn.is_empty()) {
        plan = plan.postgres(SecretRef::env(postgres_env));
    } else {
        not_run.push(NotRun {
            gate: "postgres".to_owned(),
            reason: format!(
                "no DSN in {postgres_env}: export it (e.g. `eval \"$(scripts/ensure-postgres.sh)\"`) \
                 or pass --postgres-dsn-env VAR"
            ),
        });
    }
    let plan = plan.build().map_err(|err| Usage::from_error(&err))?;
    if !output.quiet {
        let _ = writeln!(
            std::io::stderr(),
            "odoo-gate: demo: fake Odoo {version} (database demo, release {DEMO_RELEASE}) \
             listening on {} in this process",
            fake.uri()
        );
    }
    let code = execute(&plan, &not_run, output).await;
    drop(fake);
    code
}

/// Runs `plan` and writes every requested output; returns the exit code.
async fn execute(plan: &Plan, not_run: &[NotRun], output: &OutputArgs) -> Result<u8, Usage> {
    let progress = Arc::new(Progress::new(Style::detect(output.quiet), "odoo-gate"));
    let runner =
        Runner::from_plan(plan, &Registry::with_builtins(), &*progress).map_err(|err| {
            progress.finish();
            Usage::from_error(&err)
        })?;
    // The runner waits for the removal of records its checks left before it returns.
    let report = runner.run(progress.clone()).await;
    progress.finish();
    if !output.json {
        for entry in not_run {
            progress.line(&format!(
                "odoo-gate: not run: {}: {}",
                entry.gate, entry.reason
            ));
        }
    }
    write_outputs(&report, not_run, output)?;
    Ok(render::exit_code(&report))
}

fn write_outputs(report: &Report, not_run: &[NotRun], output: &OutputArgs) -> Result<(), Usage> {
    let stdout_text = if output.json {
        render::json(report).map_err(|err| Usage::from_error(&err))?
    } else {
        let colour = cli::colour_stdout();
        render::table(report, not_run, colour)
    };
    emit(
        output,
        &stdout_text,
        || render::junit(report, not_run),
        || render::markdown(report, not_run),
    )
}

/// Prints `stdout_text`, writes the JUnit file and appends the Markdown summary when
/// asked (each made only then).
fn emit(
    output: &OutputArgs,
    stdout_text: &str,
    junit: impl FnOnce() -> Result<String, quick_junit::SerializeError>,
    markdown: impl FnOnce() -> String,
) -> Result<(), Usage> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(stdout_text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|err| Usage(format!("writing the report to stdout: {err}")))?;
    if let Some(path) = &output.junit {
        let xml = junit().map_err(|err| Usage(format!("--junit {}: {err}", path.display())))?;
        std::fs::write(path, xml).map_err(|err| file_error("--junit", path, &err))?;
    }
    if let Some(path) = &output.summary {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|err| file_error("--summary", path, &err))?;
        file.write_all(markdown().as_bytes())
            .map_err(|err| file_error("--summary", path, &err))?;
    }
    Ok(())
}

/// `odoo-gate validate`: runs the checks and writes every requested output.
fn validate(args: &ValidateArgs) -> Result<u8, Usage> {
    let mut options = Options::new(args.level, &args.odoo_version);
    options.addons_path.clone_from(&args.addons_path);
    options.since.clone_from(&args.since);
    options.secrets_baseline.clone_from(&args.secrets_baseline);
    if let Some(path) = &args.write_secrets_baseline {
        let all = deploy_validate::validate(&args.paths, &options)
            .map_err(|err| Usage::from_error(&err))?;
        let secrets: Vec<_> = all
            .findings
            .into_iter()
            .filter(|f| f.fingerprint.is_some())
            .collect();
        std::fs::write(path, Baseline::render(&secrets))
            .map_err(|err| file_error("--write-secrets-baseline", path, &err))?;
        if !args.output.quiet {
            let _ = writeln!(
                std::io::stderr(),
                "odoo-gate: wrote {} secrets finding(s) to {}: review it before committing it",
                secrets.len(),
                path.display()
            );
        }
        options.secrets_baseline = Some(path.clone());
    }
    let report =
        deploy_validate::validate(&args.paths, &options).map_err(|err| Usage::from_error(&err))?;
    let output = &args.output;
    let stdout_text = if output.json {
        validation::json(&report).map_err(|err| Usage::from_error(&err))?
    } else {
        validation::table(&report, cli::colour_stdout())
    };
    emit(
        output,
        &stdout_text,
        || validation::junit(&report),
        || validation::markdown(&report),
    )?;
    Ok(validation::exit_code(&report))
}

fn file_error(flag: &str, path: &Path, err: &std::io::Error) -> Usage {
    Usage(format!("{flag} {}: {err}", path.display()))
}
