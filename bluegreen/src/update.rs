//! Odoo's module update for a release: which modules it changed, a one-off container of
//! the new image running Odoo's own command line, and the check of the database
//! afterwards that does not trust Odoo's exit status.
//!
//! - [`plan`]: the installed modules whose addon checksum in the image (read without
//!   starting it, [`DockerSlots::image_addon_info`]) differs from the one stored at the
//!   last successful update ([`CHECKSUMS_KEY`] in `ir_config_parameter`, click-odoo's
//!   key), or all, or the named ones; with the reason for each. A first run with no
//!   stored checksums says so and updates every installed module.
//! - [`run`]: refuses a database that does not exist (Odoo would create it), runs the
//!   command in a one-off container of the slot's spec with a timeout, then reads
//!   `ir_module_module`: a module left `to upgrade`/`to install`/`to remove`, or a
//!   module of the update whose version is not the image's manifest's, fails the update
//!   whatever the exit status said. On success the image's checksums are stored and, on
//!   Odoo 16 and 17 (whose update never signals), the registry signal is bumped so that
//!   serving processes reload.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr as _;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, NoTls};
use tracing::{info, warn};

use crate::addons::CHECKSUMS_KEY;
use crate::docker::{DockerSlots, OneOff};
use crate::slot::SlotSpec;

/// Which modules a deploy updates (`modules` in the stack file's `[update]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ModuleSelection {
    /// `"changed"` (default) or `"all"`.
    Keyword(SelectionKeyword),
    /// The named modules (installed ones).
    Named(Vec<String>),
    /// The default: `changed`.
    #[default]
    #[serde(skip)]
    Default,
}

/// How an update runs beside the release that serves (`strategy` in `[update]`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum UpdateStrategy {
    /// The default, the safe in-place way: the proxy answers 503 (with `Retry-After`)
    /// and the release that served is stopped while the update runs, until the new
    /// release takes the traffic; a failure restores the pre-deploy backup and starts
    /// the release that served again.
    #[default]
    Maintenance,
    /// The release that served goes on serving during the update: for changes the team
    /// declares safe for the old code. A failure restores the pre-deploy backup, which
    /// drops what was written since it was taken.
    Online,
}

impl UpdateStrategy {
    /// `"maintenance"` or `"online"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Maintenance => "maintenance",
            Self::Online => "online",
        }
    }
}

/// `"changed"` or `"all"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SelectionKeyword {
    /// The installed modules whose checksum changed.
    Changed,
    /// Every installed module.
    All,
}

/// Why the update cannot run or did not work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// The database server cannot be reached or refused a query.
    #[error("database {db}: {source}")]
    Database {
        /// The database.
        db: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The database URL cannot be read (its text is never shown: it may hold a password).
    #[error("the database URL is not a PostgreSQL URL: {0}")]
    Url(String),
    /// The database does not exist: Odoo would silently create an empty one.
    #[error("database {db} does not exist on the server: Odoo would create it empty and initialize it; create or restore it first")]
    NoSuchDatabase {
        /// The database.
        db: String,
    },
    /// The selection names modules that are not installed.
    #[error("modules {modules:?} are not installed in {db}: name new modules in `install`, not `modules`")]
    NotInstalled {
        /// The database.
        db: String,
        /// The names.
        modules: Vec<String>,
    },
    /// Modules to install are not in the image.
    #[error("modules {modules:?} to install are not in the image's addons")]
    NotInImage {
        /// The names.
        modules: Vec<String>,
    },
    /// The engine could not run the one-off container.
    #[error("the update container: {0}")]
    Docker(#[from] crate::error::Error),
}

/// An `ir_module_module` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ModuleRow {
    /// Its technical name.
    pub name: String,
    /// Its state.
    pub state: String,
    /// The installed version (`latest_version`).
    pub latest_version: Option<String>,
}

impl ModuleRow {
    fn installed(&self) -> bool {
        matches!(self.state.as_str(), "installed" | "to upgrade")
    }
}

/// What an update will do, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct UpdatePlan {
    /// The modules to update (`-u`), sorted.
    pub update: Vec<String>,
    /// The modules to install (`-i`).
    pub install: Vec<String>,
    /// Why each module of `update` is in it.
    pub reasons: BTreeMap<String, String>,
    /// No checksums were stored: every installed module is updated.
    pub first_run: bool,
    /// The image's checksum of each addon (stored after a successful update).
    pub checksums: BTreeMap<String, String>,
    /// The full version of each addon of the image (`17.0.1.2`).
    pub versions: BTreeMap<String, String>,
}

impl UpdatePlan {
    /// Whether there is nothing to run.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.update.is_empty() && self.install.is_empty()
    }
}

/// Decides what to update from the database's modules and stored checksums and the
/// image's addons.
///
/// # Errors
/// [`UpdateError::NotInstalled`] for named modules that are not installed;
/// [`UpdateError::NotInImage`] for modules to install that the image lacks.
pub fn plan(
    db: &str,
    selection: &ModuleSelection,
    install: &[String],
    modules: &[ModuleRow],
    stored: Option<&BTreeMap<String, String>>,
    image: &ImageAddonInfo,
) -> Result<UpdatePlan, UpdateError> {
    let installed: Vec<String> = modules
        .iter()
        .filter(|m| m.installed())
        .map(|m| m.name.clone())
        .collect();
    let mut reasons = BTreeMap::new();
    let mut first_run = false;
    match selection {
        ModuleSelection::Named(names) => {
            let missing: Vec<String> = names
                .iter()
                .filter(|n| !installed.contains(n))
                .cloned()
                .collect();
            if !missing.is_empty() {
                return Err(UpdateError::NotInstalled {
                    db: db.to_owned(),
                    modules: missing,
                });
            }
            for name in names {
                reasons.insert(name.clone(), "named in the stack file".to_owned());
            }
        }
        ModuleSelection::Keyword(SelectionKeyword::All) => {
            for name in &installed {
                reasons.insert(name.clone(), "modules = \"all\"".to_owned());
            }
        }
        ModuleSelection::Keyword(SelectionKeyword::Changed) | ModuleSelection::Default => {
            match stored {
                None => {
                    first_run = true;
                    for name in &installed {
                        reasons.insert(
                            name.clone(),
                            format!("no checksums stored ({CHECKSUMS_KEY}): first update, every installed module"),
                        );
                    }
                }
                Some(stored) => {
                    let changed =
                        crate::addons::changed_modules(&installed, stored, &image.checksums);
                    for (name, change) in changed {
                        let reason = match change {
                            crate::addons::Change::Changed { stored, current } => {
                                format!("checksum {} -> {}", short(&stored), short(&current))
                            }
                            crate::addons::Change::NotStored => {
                                "no checksum stored for it".to_owned()
                            }
                        };
                        reasons.insert(name, reason);
                    }
                    // A module whose database version is not the image's (updated by
                    // hand, or a failed update) is updated too.
                    let full = full_versions(image, modules);
                    for row in modules.iter().filter(|m| m.installed()) {
                        if let (Some(code), Some(db_version)) =
                            (full.get(&row.name), &row.latest_version)
                        {
                            if code != db_version && !reasons.contains_key(&row.name) {
                                reasons.insert(
                                    row.name.clone(),
                                    format!("database at {db_version}, image at {code}"),
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    let missing: Vec<String> = install
        .iter()
        .filter(|m| !image.checksums.contains_key(*m))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(UpdateError::NotInImage { modules: missing });
    }
    let install: Vec<String> = install
        .iter()
        .filter(|m| !installed.contains(m))
        .cloned()
        .collect();
    Ok(UpdatePlan {
        update: reasons.keys().cloned().collect(),
        install,
        reasons,
        first_run,
        checksums: image.checksums.clone(),
        versions: full_versions(image, modules),
    })
}

/// The image's manifest versions with the database's series in front, as Odoo stores
/// them (`1.1` is `17.0.1.1` on 17.0).
fn full_versions(image: &ImageAddonInfo, modules: &[ModuleRow]) -> BTreeMap<String, String> {
    let Some(serie) = series(modules) else {
        return image.versions.clone();
    };
    image
        .versions
        .iter()
        .map(|(name, v)| (name.clone(), deploy_core::manifest::full_version(v, &serie)))
        .collect()
}

fn short(checksum: &str) -> &str {
    checksum.get(..10).unwrap_or(checksum)
}

/// What the image's addons are: checksums and manifest versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageAddonInfo {
    /// The checksum of each addon folder.
    pub checksums: BTreeMap<String, String>,
    /// The version of each addon's manifest, as written (`1.1` or `17.0.1.1`).
    pub versions: BTreeMap<String, String>,
}

/// How an update is run.
#[derive(Debug, Clone)]
pub struct UpdateSettings {
    /// The command, with `{db}`, `{modules}` and `{install}` replaced; arguments that
    /// are exactly `-u {modules}` or `-i {install}` with nothing to put in are left out.
    pub command: Vec<String>,
    /// Killed after this long.
    pub timeout: Duration,
    /// The lock-wait watchdog: when a session of the database has waited this long on a
    /// lock while the update runs (the update behind a lock the serving release holds,
    /// or the serving release's requests behind the update's), the update is killed
    /// and fails, naming who waited on whom. `None`: no watchdog.
    pub lock_wait: Option<Duration>,
}

impl Default for UpdateSettings {
    fn default() -> Self {
        Self {
            command: [
                "odoo",
                "-d",
                "{db}",
                "-i",
                "{install}",
                "-u",
                "{modules}",
                "--stop-after-init",
                "--no-http",
                "--workers",
                "0",
            ]
            .map(str::to_owned)
            .to_vec(),
            timeout: Duration::from_secs(1800),
            lock_wait: Some(Duration::from_secs(60)),
        }
    }
}

impl UpdateSettings {
    /// The command for `db` and `plan`.
    #[must_use]
    pub fn command_for(&self, db: &str, plan: &UpdatePlan) -> Vec<String> {
        let update = plan.update.join(",");
        let install = plan.install.join(",");
        let mut out = Vec::new();
        let mut args = self.command.iter().peekable();
        while let Some(arg) = args.next() {
            let next = args.peek().map(|s| s.as_str());
            if matches!(
                (arg.as_str(), next),
                ("-u", Some("{modules}")) | ("-i", Some("{install}"))
            ) {
                let value = if arg == "-u" { &update } else { &install };
                args.next();
                if !value.is_empty() {
                    out.push(arg.clone());
                    out.push(value.clone());
                }
                continue;
            }
            out.push(
                arg.replace("{db}", db)
                    .replace("{modules}", &update)
                    .replace("{install}", &install),
            );
        }
        out
    }
}

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct UpdateOutcome {
    /// The command run.
    pub command: Vec<String>,
    /// Its exit status (`None`: killed, or the engine did not say).
    pub exit_code: Option<i64>,
    /// Killed at the timeout.
    pub timed_out: bool,
    /// Its time, in milliseconds.
    pub elapsed_ms: u64,
    /// The database's modules afterwards.
    pub modules: Vec<ModuleRow>,
    /// Why the update failed although it may have exited 0: modules left in a
    /// transient state, versions that are not the image's; empty on success.
    pub problems: Vec<String>,
    /// The registry signal was bumped (Odoo 16 and 17).
    pub signal_bumped: bool,
    /// The checksums were stored.
    pub checksums_stored: bool,
}

impl UpdateOutcome {
    /// Whether the database is updated as the image expects.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The driver's settings of `url`, and the database it names.
fn parse_url(url: &SecretString) -> Result<(tokio_postgres::Config, String), UpdateError> {
    let config = tokio_postgres::Config::from_str(url.expose_secret())
        .map_err(|e| UpdateError::Url(e.to_string()))?;
    let db = config.get_dbname().unwrap_or_default().to_owned();
    Ok((config, db))
}

/// Connects with `config`; errors name `db`.
async fn open(config: &tokio_postgres::Config, db: &str) -> Result<Client, UpdateError> {
    let (client, connection) =
        config
            .connect(NoTls)
            .await
            .map_err(|source| UpdateError::Database {
                db: db.to_owned(),
                source,
            })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "database connection closed");
        }
    });
    Ok(client)
}

/// A connection to the database at `url` (`postgres://user:password@host:port/db`).
///
/// # Errors
/// [`UpdateError::Url`] for a URL that is not one; [`UpdateError::Database`].
pub async fn connect(url: &SecretString) -> Result<(Client, String), UpdateError> {
    let (config, db) = parse_url(url)?;
    let client = open(&config, &db).await?;
    Ok((client, db))
}

/// Whether `db` exists, asked through the server's `postgres` database.
///
/// # Errors
/// [`UpdateError::Url`]; [`UpdateError::Database`] when the server cannot be reached.
pub async fn database_exists(url: &SecretString) -> Result<bool, UpdateError> {
    let (mut config, db) = parse_url(url)?;
    config.dbname("postgres");
    let client = open(&config, &db).await?;
    let row = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
        .await
        .map_err(|source| UpdateError::Database { db, source })?;
    Ok(row.is_some())
}

/// The database's `ir_module_module` rows.
///
/// # Errors
/// [`UpdateError::Database`].
pub async fn read_modules(client: &Client, db: &str) -> Result<Vec<ModuleRow>, UpdateError> {
    let rows = client
        .query(
            "SELECT name, state, latest_version FROM ir_module_module ORDER BY name",
            &[],
        )
        .await
        .map_err(|source| UpdateError::Database {
            db: db.to_owned(),
            source,
        })?;
    Ok(rows
        .iter()
        .map(|row| ModuleRow {
            name: row.get(0),
            state: row.get::<_, Option<String>>(1).unwrap_or_default(),
            latest_version: row.get(2),
        })
        .collect())
}

/// The checksums stored at the last successful update, `None` when none are.
///
/// # Errors
/// [`UpdateError::Database`]. A stored value that is not a JSON object counts as none
/// (logged).
pub async fn stored_checksums(
    client: &Client,
    db: &str,
) -> Result<Option<BTreeMap<String, String>>, UpdateError> {
    let row = client
        .query_opt(
            "SELECT value FROM ir_config_parameter WHERE key = $1",
            &[&CHECKSUMS_KEY],
        )
        .await
        .map_err(|source| UpdateError::Database {
            db: db.to_owned(),
            source,
        })?;
    let Some(row) = row else { return Ok(None) };
    let text: String = row.get(0);
    match serde_json::from_str::<BTreeMap<String, String>>(&text) {
        Ok(map) => Ok(Some(map)),
        Err(e) => {
            warn!(db, error = %e, "the stored addon checksums are not a JSON object: treated as none");
            Ok(None)
        }
    }
}

/// The Odoo series of the database (`17.0`), from `base`'s installed version.
fn series(modules: &[ModuleRow]) -> Option<String> {
    let base = modules.iter().find(|m| m.name == "base")?;
    let version = base.latest_version.as_deref()?;
    let mut parts = version.split('.');
    Some(format!("{}.{}", parts.next()?, parts.next()?))
}

/// The problems of the database after an update of `plan`.
#[must_use]
pub fn check_modules(modules: &[ModuleRow], plan: &UpdatePlan) -> Vec<String> {
    let mut problems = Vec::new();
    for row in modules {
        if row.state.starts_with("to ") {
            problems.push(format!(
                "module {} is left '{}': the update did not finish it",
                row.name, row.state
            ));
        }
    }
    let touched: BTreeSet<&String> = plan.update.iter().chain(&plan.install).collect();
    for name in touched {
        let Some(row) = modules.iter().find(|m| &m.name == name) else {
            problems.push(format!("module {name} is not in the database"));
            continue;
        };
        if !row.installed() && !row.state.starts_with("to ") {
            problems.push(format!("module {name} is '{}', not installed", row.state));
            continue;
        }
        if let Some(code) = plan.versions.get(name) {
            if row.latest_version.as_deref() != Some(code.as_str()) {
                problems.push(format!(
                    "module {name} is at {} in the database, the image has {code}",
                    row.latest_version.as_deref().unwrap_or("no version")
                ));
            }
        }
    }
    problems
}

/// Runs `plan` on the database at `url` in a one-off container of `spec`, checks the
/// result, and on success stores the checksums and makes the serving processes notice.
/// Each log line of the update goes to `on_line`.
///
/// # Errors
/// [`UpdateError::NoSuchDatabase`] before anything runs; [`UpdateError::Docker`] when the
/// container cannot run (a command missing from the image); [`UpdateError::Database`]
/// when the database cannot be read afterwards. A failed update is not an error: see
/// [`UpdateOutcome::problems`].
pub async fn run(
    docker: &DockerSlots,
    spec: &SlotSpec,
    url: &SecretString,
    settings: &UpdateSettings,
    plan: &UpdatePlan,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<UpdateOutcome, UpdateError> {
    let (_, db) = parse_url(url)?;
    if !database_exists(url).await? {
        return Err(UpdateError::NoSuchDatabase { db });
    }
    let command = settings.command_for(&db, plan);
    info!(db = %db, command = ?command, "module update starting");
    let started = std::time::Instant::now();
    let watched = async {
        match settings.lock_wait {
            Some(limit) => lock_watch(url, &db, limit).await,
            None => std::future::pending().await,
        }
    };
    let (one_off, blocked) = tokio::select! {
        one_off = docker.run_one_off(spec, &command, settings.timeout, on_line) => (one_off?, None),
        blocked = watched => {
            // The update's container is killed and removed (dropping the run leaves
            // it behind).
            if let Err(e) = docker.remove_stale_one_offs(&spec.stack).await {
                warn!(error = %e, "cannot remove the update's container after the lock wait");
            }
            (
                OneOff {
                    exit_code: None,
                    timed_out: false,
                    lines: 0,
                    elapsed: started.elapsed(),
                },
                Some(blocked),
            )
        }
    };
    let (client, _) = connect(url).await?;
    let modules = read_modules(&client, &db).await?;
    let mut problems = check_modules(&modules, plan);
    if let Some(blocked) = blocked {
        problems.insert(0, blocked);
    } else if one_off.timed_out {
        problems.insert(
            0,
            format!(
                "the update was killed after {} s (timeout)",
                settings.timeout.as_secs()
            ),
        );
    } else if one_off.exit_code != Some(0) {
        let hint = match one_off.exit_code {
            Some(127) => " (the command is not in the image: check [update] command)",
            Some(126) => " (the command cannot be run in the image: check [update] command)",
            Some(137) => " (killed: SIGKILL, the out-of-memory killer or a person)",
            _ => "",
        };
        problems.insert(
            0,
            format!(
                "the update exited with status {}{hint}",
                one_off
                    .exit_code
                    .map_or_else(|| "unknown".to_owned(), |c| c.to_string())
            ),
        );
    }
    let mut outcome = UpdateOutcome {
        command,
        exit_code: one_off.exit_code,
        timed_out: one_off.timed_out,
        elapsed_ms: u64::try_from(one_off.elapsed.as_millis()).unwrap_or(u64::MAX),
        modules,
        problems,
        signal_bumped: false,
        checksums_stored: false,
    };
    if !outcome.succeeded() {
        warn!(db = %db, problems = ?outcome.problems, "module update failed");
        return Ok(outcome);
    }
    let db_error = |source| UpdateError::Database {
        db: db.clone(),
        source,
    };
    let checksums = serde_json::to_string(&plan.checksums).unwrap_or_else(|_| "{}".to_owned());
    client
        .execute(
            "INSERT INTO ir_config_parameter (key, value, create_uid, create_date, write_uid, write_date) \
             VALUES ($1, $2, 1, now() AT TIME ZONE 'UTC', 1, now() AT TIME ZONE 'UTC') \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, write_date = EXCLUDED.write_date",
            &[&CHECKSUMS_KEY, &checksums],
        )
        .await
        .map_err(db_error)?;
    outcome.checksums_stored = true;
    // 16 and 17 never signal an update made by another process: serving processes keep
    // their registry until told. 18 and 19 bump it themselves.
    if matches!(series(&outcome.modules).as_deref(), Some("16.0" | "17.0")) {
        client
            .batch_execute("SELECT nextval('base_registry_signaling')")
            .await
            .map_err(db_error)?;
        outcome.signal_bumped = true;
    }
    info!(db = %db, modules = ?plan.update, elapsed_ms = outcome.elapsed_ms, "module update done");
    Ok(outcome)
}

/// How long ago a backup was taken, from the UTC stamp its id begins with
/// (`20250301T101500Z-...`); `None` for an id without one.
fn backup_age(backup_id: &str) -> Option<Duration> {
    let stamp = backup_id.get(..16)?;
    let at = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").ok()?;
    (chrono::Utc::now().naive_utc() - at).to_std().ok()
}

/// Waits until a session of `db` has waited on a lock for `limit` without a pause
/// (watching every second), and says who waited on whom. Never returns while nobody
/// waits that long, nor when the database cannot be watched (a warning, once).
async fn lock_watch(url: &SecretString, db: &str, limit: Duration) -> String {
    let client = match connect(url).await {
        Ok((client, _)) => client,
        Err(e) => {
            warn!(db = %db, error = %e, "the lock-wait watchdog cannot connect: no watchdog");
            return std::future::pending().await;
        }
    };
    // pid -> when it was first seen waiting.
    let mut waiting: BTreeMap<i32, std::time::Instant> = BTreeMap::new();
    let query = "SELECT w.pid, coalesce(w.application_name, ''), left(coalesce(w.query, ''), 120),                  b.pid, coalesce(b.application_name, ''), coalesce(b.state, ''), left(coalesce(b.query, ''), 120)                  FROM pg_stat_activity w                  CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocker(pid)                  JOIN pg_stat_activity b ON b.pid = blocker.pid                  WHERE w.datname = $1 AND w.wait_event_type = 'Lock' AND w.pid <> pg_backend_pid()";
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    loop {
        interval.tick().await;
        let rows = match client.query(query, &[&db]).await {
            Ok(rows) => rows,
            Err(e) => {
                warn!(db = %db, error = %e, "the lock-wait watchdog cannot read pg_stat_activity: no watchdog");
                return std::future::pending().await;
            }
        };
        let now = std::time::Instant::now();
        let pids: BTreeSet<i32> = rows.iter().map(|r| r.get::<_, i32>(0)).collect();
        waiting.retain(|pid, _| pids.contains(pid));
        for pid in &pids {
            waiting.entry(*pid).or_insert(now);
        }
        let Some((&pid, since)) = waiting
            .iter()
            .find(|(_, since)| now.duration_since(**since) >= limit)
        else {
            continue;
        };
        let blockers: Vec<String> = rows
            .iter()
            .filter(|r| r.get::<_, i32>(0) == pid)
            .map(|r| {
                format!(
                    "pid {} ({}{}, {:?})",
                    r.get::<_, i32>(3),
                    r.get::<_, String>(5),
                    Some(r.get::<_, String>(4))
                        .filter(|a| !a.is_empty())
                        .map(|a| format!(", {a}"))
                        .unwrap_or_default(),
                    r.get::<_, String>(6)
                )
            })
            .collect();
        let waiter = rows
            .iter()
            .find(|r| r.get::<_, i32>(0) == pid)
            .map(|r| r.get::<_, String>(2))
            .unwrap_or_default();
        let message = format!(
            "the update was killed by the lock-wait watchdog: pid {pid} ({waiter:?}) waited {} s on a lock held by {}; the serving release and the update get in each other's way: use strategy \"maintenance\", or stop what holds the lock",
            now.duration_since(*since).as_secs(),
            blockers.join(", ")
        );
        warn!(db = %db, "{message}");
        return message;
    }
}

/// How many of the update's last log lines the stage keeps for its report.
const LOG_TAIL: usize = 60;

/// Builds the one-off container's spec for an image and release: the slot's
/// environment, mounts, network and limits from the stack file.
pub type SpecFn = dyn Fn(&str, &str) -> crate::Result<SlotSpec> + Send + Sync;

/// The module update as a deploy stage, at [`StagePoint::BeforeStart`] after the
/// pre-deploy backup: it plans the update from the new image and the database, runs it
/// in a one-off container, and checks the database, in one of two
/// [strategies](UpdateStrategy):
///
/// - `maintenance` (the default): before the update it opens the deploy's
///   [maintenance window](deploy_core::Maintenance) (the proxy answers 503, the release
///   that served stops), and the deploy leaves it after the switch. If the new release
///   does not end up serving (its start, its gates, the checks after the switch fail),
///   the deploy restores the pre-deploy backup and starts the release that served again.
/// - `online`: the release that served goes on serving meanwhile, for changes the team
///   declares safe for the old code.
///
/// An update that fails is undone before the deploy is refused: the pre-deploy backup
/// is restored over the live database ([`DatabaseRestorer`]), so neither release serves
/// a half-updated database; without a backup to restore, the stage fails (exit 3)
/// saying the database may be mixed, and in maintenance the window stays open. Nothing
/// to update: it says so, opens nothing, and the deploy goes on.
///
/// [`StagePoint::BeforeStart`]: deploy_core::StagePoint::BeforeStart
/// [`DatabaseRestorer`]: deploy_core::DatabaseRestorer
pub struct UpdateStage {
    docker: DockerSlots,
    spec: std::sync::Arc<SpecFn>,
    database_url: deploy_core::SecretRef,
    selection: ModuleSelection,
    install: Vec<String>,
    settings: UpdateSettings,
    addons_path: String,
    rules: crate::addons::ChecksumRules,
    restorer: Option<std::sync::Arc<dyn deploy_core::DatabaseRestorer>>,
    strategy: UpdateStrategy,
}

impl std::fmt::Debug for UpdateStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateStage")
            .field("database_url", &self.database_url.describe())
            .field("strategy", &self.strategy)
            .field("selection", &self.selection)
            .field("install", &self.install)
            .field("command", &self.settings.command)
            .finish_non_exhaustive()
    }
}

impl UpdateStage {
    /// An update of the database at `database_url`, its one-off container built by
    /// `spec`; the changed modules, Odoo's default command, a 30-minute timeout, the
    /// addons at `/mnt/extra-addons`, and no restorer (see [`UpdateStage::with_restorer`]).
    #[must_use]
    pub fn new(
        docker: DockerSlots,
        spec: std::sync::Arc<SpecFn>,
        database_url: deploy_core::SecretRef,
    ) -> Self {
        Self {
            docker,
            spec,
            database_url,
            selection: ModuleSelection::Default,
            install: Vec::new(),
            settings: UpdateSettings::default(),
            addons_path: "/mnt/extra-addons".to_owned(),
            rules: crate::addons::ChecksumRules::default(),
            restorer: None,
            strategy: UpdateStrategy::Maintenance,
        }
    }

    /// How the update runs beside the release that serves (default: maintenance).
    #[must_use]
    pub fn with_strategy(mut self, strategy: UpdateStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Which modules to update, and which to install.
    #[must_use]
    pub fn with_modules(mut self, selection: ModuleSelection, install: Vec<String>) -> Self {
        self.selection = selection;
        self.install = install;
        self
    }

    /// The command and timeout.
    #[must_use]
    pub fn with_settings(mut self, settings: UpdateSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Where the image's addons are.
    #[must_use]
    pub fn with_addons_path(mut self, path: impl Into<String>) -> Self {
        self.addons_path = path.into();
        self
    }

    /// What puts the pre-deploy backup back when the update fails.
    #[must_use]
    pub fn with_restorer(
        mut self,
        restorer: std::sync::Arc<dyn deploy_core::DatabaseRestorer>,
    ) -> Self {
        self.restorer = Some(restorer);
        self
    }

    async fn prepare(
        &self,
        url: &SecretString,
        image: &str,
    ) -> Result<(String, UpdatePlan), UpdateError> {
        let (_, db) = parse_url(url)?;
        if !database_exists(url).await? {
            return Err(UpdateError::NoSuchDatabase { db });
        }
        let (client, _) = connect(url).await?;
        let modules = read_modules(&client, &db).await?;
        let stored = stored_checksums(&client, &db).await?;
        let info = self
            .docker
            .image_addon_info(image, &self.addons_path, &self.rules)
            .await?;
        let plan = plan(
            &db,
            &self.selection,
            &self.install,
            &modules,
            stored.as_ref(),
            &info,
        )?;
        Ok((db, plan))
    }
}

fn classify(error: UpdateError) -> deploy_core::ClassifiedError {
    match error {
        UpdateError::Url(_)
        | UpdateError::NoSuchDatabase { .. }
        | UpdateError::NotInstalled { .. }
        | UpdateError::NotInImage { .. } => deploy_core::ClassifiedError::config(error),
        UpdateError::Database { .. } | UpdateError::Docker(_) => {
            deploy_core::ClassifiedError::infrastructure(error)
        }
    }
}

#[async_trait::async_trait]
impl deploy_core::DeployStage for UpdateStage {
    fn name(&self) -> &str {
        "update"
    }

    fn point(&self) -> deploy_core::StagePoint {
        deploy_core::StagePoint::BeforeStart
    }

    fn settings(&self) -> Vec<(String, String)> {
        let modules = match &self.selection {
            ModuleSelection::Named(names) => names.join(","),
            ModuleSelection::Keyword(SelectionKeyword::All) => "all".to_owned(),
            _ => "changed".to_owned(),
        };
        vec![
            ("strategy".to_owned(), self.strategy.as_str().to_owned()),
            ("modules".to_owned(), modules),
            ("install".to_owned(), self.install.join(",")),
            ("database_url".to_owned(), self.database_url.describe()),
            ("command".to_owned(), self.settings.command.join(" ")),
            (
                "timeout".to_owned(),
                format!("{}s", self.settings.timeout.as_secs()),
            ),
            (
                "lock_wait".to_owned(),
                self.settings
                    .lock_wait
                    .map_or_else(|| "off".to_owned(), |d| format!("{}s", d.as_secs())),
            ),
            (
                "on_failure".to_owned(),
                if self.restorer.is_some() {
                    "restore the pre-deploy backup, refuse the deploy".to_owned()
                } else {
                    "fail the deploy (no restorer)".to_owned()
                },
            ),
        ]
    }

    async fn preview(&self, ctx: &deploy_core::StageContext<'_>) -> Vec<(String, String)> {
        let url = match self.database_url.resolve(ctx.events) {
            Ok(url) => url,
            Err(e) => return vec![("would_update".to_owned(), format!("cannot tell: {e}"))],
        };
        match self.prepare(&url, ctx.release.image.as_str()).await {
            Ok((_, plan)) if plan.is_empty() => {
                vec![(
                    "would_update".to_owned(),
                    "nothing: no module changed".to_owned(),
                )]
            }
            Ok((_, plan)) => {
                let mut pairs: Vec<(String, String)> = plan
                    .reasons
                    .iter()
                    .map(|(module, why)| (format!("would_update {module}"), why.clone()))
                    .collect();
                if !plan.install.is_empty() {
                    pairs.push(("would_install".to_owned(), plan.install.join(", ")));
                }
                if plan.first_run {
                    pairs.push((
                        "first_run".to_owned(),
                        "no checksums stored: every installed module".to_owned(),
                    ));
                }
                pairs
            }
            Err(e) => vec![("would_update".to_owned(), format!("cannot tell: {e}"))],
        }
    }

    async fn run(
        &self,
        ctx: &deploy_core::StageContext<'_>,
    ) -> Result<deploy_core::StageOutcome, deploy_core::ClassifiedError> {
        use deploy_core::{ClassifiedError, Event, StageOutcome};
        let url = self
            .database_url
            .resolve(ctx.events)
            .map_err(ClassifiedError::config)?;
        let image = ctx.release.image.as_str();
        // A database left half updated (an update killed with its deploy) is put back
        // from that deploy's pre-deploy backup before anything else.
        let mut restore_from = ctx.backup_id;
        let (client, db) = connect(&url).await.map_err(classify)?;
        let pending: Vec<String> = read_modules(&client, &db)
            .await
            .map_err(classify)?
            .into_iter()
            .filter(|m| m.state.starts_with("to "))
            .map(|m| format!("{} '{}'", m.name, m.state))
            .collect();
        drop(client);
        if !pending.is_empty() {
            let (Some(restorer), Some(repair)) = (&self.restorer, ctx.repair_backup_id) else {
                return Err(ClassifiedError::infrastructure(format!(
                    "database {db} is partly updated ({}): an earlier update did not finish; restore a backup taken before it (odoo-rollback restore) before deploying",
                    pending.join(", ")
                )));
            };
            self.open_window(ctx, "repair of a partly updated database")
                .await?;
            ctx.events.emit(&Event::warning(
                "update",
                format!(
                    "database {db} is partly updated ({}) by an interrupted deploy: restoring its pre-deploy backup {repair}",
                    pending.join(", ")
                ),
            ));
            restorer.restore(repair).await.map_err(|e| {
                ClassifiedError::infrastructure(format!(
                    "database {db} is partly updated by an interrupted deploy and restoring its backup {repair} failed: {}",
                    deploy_core::error_chain(&e)
                ))
            })?;
            // This deploy's own backup is of the half-updated database: a failure now
            // goes back to the repaired one.
            restore_from = Some(repair);
        }
        let (db, plan) = self.prepare(&url, image).await.map_err(classify)?;
        let reasons: Vec<String> = plan
            .reasons
            .iter()
            .map(|(m, why)| format!("{m} ({why})"))
            .collect();
        if plan.is_empty() {
            return Ok(StageOutcome::proceed()
                .with_summary("no module changed: nothing to update")
                .with_details(serde_json::json!({ "plan": plan })));
        }
        if plan.first_run {
            ctx.events.emit(&Event::warning(
                "update",
                format!(
                    "no checksums stored in {db}: the first update updates every installed module"
                ),
            ));
        }
        self.open_window(
            ctx,
            &format!(
                "module update of {}",
                plan.update
                    .iter()
                    .chain(&plan.install)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .await?;
        ctx.events.emit(&Event::started(
            "update",
            format!(
                "updating {}{} in {db}",
                reasons.join(", "),
                if plan.install.is_empty() {
                    String::new()
                } else {
                    format!("; installing {}", plan.install.join(", "))
                }
            ),
        ));
        let spec = (self.spec)(image, ctx.release.label()).map_err(ClassifiedError::config)?;
        let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        let events = ctx.events;
        let outcome = run(
            &self.docker,
            &spec,
            &url,
            &self.settings,
            &plan,
            &mut |line| {
                if tail.len() == LOG_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line.to_owned());
                events.emit(&Event::progress("update", line.to_owned()));
            },
        )
        .await
        .map_err(classify)?;
        let details = serde_json::json!({
            "strategy": self.strategy,
            "plan": plan,
            "outcome": outcome,
            "log_tail": tail,
        });
        let window = ctx
            .maintenance
            .filter(|_| self.strategy == UpdateStrategy::Maintenance);
        if outcome.succeeded() {
            let mut warnings = Vec::new();
            if let Some(window) = window {
                // The old release cannot serve this database: if the new one does not
                // end up serving it, the deploy restores the backup before the old one
                // runs again.
                match (&self.restorer, restore_from) {
                    (Some(restorer), Some(backup)) => window.restore_with(restorer.clone(), backup),
                    _ => warnings.push(
                        "no pre-deploy backup: if the new release fails now, the database cannot be put back and maintenance stays on".to_owned(),
                    ),
                }
            }
            ctx.events.emit(&Event::finished(
                "update",
                format!(
                    "{} modules updated in {:.1} s",
                    plan.update.len() + plan.install.len(),
                    outcome.elapsed_ms as f64 / 1000.0
                ),
            ));
            let mut done = StageOutcome::proceed()
                .with_summary(format!(
                    "updated {} in {:.1} s ({})",
                    plan.update.join(", "),
                    outcome.elapsed_ms as f64 / 1000.0,
                    self.strategy.as_str()
                ))
                .with_details(details);
            done.warnings = warnings;
            return Ok(done);
        }
        let problems = outcome.problems.join("; ");
        let (Some(restorer), Some(backup)) = (&self.restorer, restore_from) else {
            let reason = format!(
                "the module update failed ({problems}) and there is no pre-deploy backup to restore: database {db} may be partly updated; restore it before serving it (odoo-rollback restore)"
            );
            if let Some(window) = window {
                window.hold(&reason);
            }
            return Err(ClassifiedError::infrastructure(reason));
        };
        ctx.events.emit(&Event::warning(
            "update",
            format!(
                "the module update failed ({problems}): restoring the pre-deploy backup {backup}"
            ),
        ));
        match restorer.restore(backup).await {
            Ok(summary) => {
                // Online, the release that served went on writing since the backup:
                // the restore takes that back.
                let dropped = match (self.strategy, backup_age(backup)) {
                    (UpdateStrategy::Online, Some(age)) => format!(
                        "; it drops what was written in the {} s since the backup",
                        age.as_secs()
                    ),
                    _ => String::new(),
                };
                Ok(StageOutcome::refuse(format!(
                    "the module update failed: {problems}; {summary}{dropped}, the release that served goes on serving"
                ))
                .with_details(details))
            }
            Err(e) => {
                let reason = format!(
                    "the module update failed ({problems}) and restoring the pre-deploy backup {backup} failed too: {}; database {db} may be partly updated",
                    deploy_core::error_chain(&e)
                );
                if let Some(window) = window {
                    window.hold(&reason);
                }
                Err(ClassifiedError::infrastructure(reason))
            }
        }
    }
}

impl UpdateStage {
    /// In maintenance, opens the deploy's maintenance window (once): the proxy answers
    /// 503 and the release that served stops. Nothing for `online`.
    async fn open_window(
        &self,
        ctx: &deploy_core::StageContext<'_>,
        reason: &str,
    ) -> Result<(), deploy_core::ClassifiedError> {
        if self.strategy != UpdateStrategy::Maintenance {
            return Ok(());
        }
        let window = ctx.maintenance.ok_or_else(|| {
            deploy_core::ClassifiedError::config(
                "strategy \"maintenance\" needs the deploy's maintenance window, and this deploy offers none",
            )
        })?;
        window.enter(reason).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, state: &str, version: &str) -> ModuleRow {
        ModuleRow {
            name: name.into(),
            state: state.into(),
            latest_version: Some(version.into()),
        }
    }

    fn image() -> ImageAddonInfo {
        ImageAddonInfo {
            checksums: BTreeMap::from([
                ("shop".to_owned(), "aaaa".to_owned()),
                ("sale_x".to_owned(), "bbbb".to_owned()),
                ("new_mod".to_owned(), "cccc".to_owned()),
            ]),
            versions: BTreeMap::from([
                ("shop".to_owned(), "1.1".to_owned()),
                ("sale_x".to_owned(), "17.0.1.0".to_owned()),
                ("new_mod".to_owned(), "1.0".to_owned()),
            ]),
        }
    }

    fn modules() -> Vec<ModuleRow> {
        vec![
            row("base", "installed", "17.0.1.3"),
            row("shop", "installed", "17.0.1.0"),
            row("sale_x", "installed", "17.0.1.0"),
            row("new_mod", "uninstalled", "17.0.1.0"),
        ]
    }

    #[test]
    fn changed_modules_are_those_whose_checksum_or_version_moved() {
        let stored = BTreeMap::from([
            ("shop".to_owned(), "aaaa".to_owned()),
            ("sale_x".to_owned(), "old!".to_owned()),
        ]);
        let plan = plan(
            "db",
            &ModuleSelection::Default,
            &[],
            &modules(),
            Some(&stored),
            &image(),
        )
        .unwrap();
        // sale_x: its checksum moved; shop: same checksum but the database is behind.
        assert_eq!(plan.update, ["sale_x", "shop"]);
        assert!(plan.reasons["sale_x"].starts_with("checksum old! ->"));
        assert_eq!(
            plan.reasons["shop"],
            "database at 17.0.1.0, image at 17.0.1.1"
        );
        assert!(!plan.first_run);
    }

    #[test]
    fn a_first_run_updates_every_installed_module_and_says_so() {
        let plan = plan(
            "db",
            &ModuleSelection::Default,
            &[],
            &modules(),
            None,
            &image(),
        )
        .unwrap();
        assert!(plan.first_run);
        assert_eq!(plan.update, ["base", "sale_x", "shop"]);
        assert!(plan.reasons["base"].contains("first update"));
    }

    #[test]
    fn named_modules_must_be_installed_and_new_ones_must_be_in_the_image() {
        let named = ModuleSelection::Named(vec!["new_mod".into()]);
        let err = plan("db", &named, &[], &modules(), None, &image()).unwrap_err();
        assert!(
            err.to_string().contains("name new modules in `install`"),
            "{err}"
        );
        let err = plan(
            "db",
            &ModuleSelection::Keyword(SelectionKeyword::All),
            &["nowhere".into()],
            &modules(),
            None,
            &image(),
        )
        .unwrap_err();
        assert!(matches!(err, UpdateError::NotInImage { .. }), "{err}");
        let ok = plan(
            "db",
            &ModuleSelection::Named(vec!["shop".into()]),
            &["new_mod".into()],
            &modules(),
            None,
            &image(),
        )
        .unwrap();
        assert_eq!(
            (ok.update.as_slice(), ok.install.as_slice()),
            (&["shop".to_owned()][..], &["new_mod".to_owned()][..])
        );
    }

    #[test]
    fn the_command_leaves_out_empty_module_lists() {
        let settings = UpdateSettings::default();
        let mut plan = plan(
            "db",
            &ModuleSelection::Default,
            &[],
            &modules(),
            None,
            &image(),
        )
        .unwrap();
        assert_eq!(
            settings.command_for("shop", &plan).join(" "),
            "odoo -d shop -u base,sale_x,shop --stop-after-init --no-http --workers 0"
        );
        plan.install = vec!["new_mod".into()];
        assert!(settings
            .command_for("shop", &plan)
            .join(" ")
            .contains("-i new_mod -u base"));
    }

    #[test]
    fn a_backups_age_comes_from_its_id() {
        let id = format!(
            "{}-shop-00ff",
            (chrono::Utc::now() - chrono::Duration::seconds(90)).format("%Y%m%dT%H%M%SZ")
        );
        let age = backup_age(&id).unwrap().as_secs();
        assert!((89..=92).contains(&age), "{age}");
        assert_eq!(backup_age("manual-backup"), None);
        assert_eq!(backup_age(""), None);
    }

    #[test]
    fn exit_0_is_not_trusted_alone() {
        let plan = plan(
            "db",
            &ModuleSelection::Named(vec!["shop".into()]),
            &[],
            &modules(),
            None,
            &image(),
        )
        .unwrap();
        let after = vec![
            row("base", "installed", "17.0.1.3"),
            row("shop", "to upgrade", "17.0.1.0"),
        ];
        let problems = check_modules(&after, &plan);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("left 'to upgrade'"));
        assert!(problems[1].contains("the image has 17.0.1.1"));
        let after = vec![
            row("base", "installed", "17.0.1.3"),
            row("shop", "installed", "17.0.1.1"),
        ];
        assert!(check_modules(&after, &plan).is_empty());
    }

    #[test]
    fn selections_read_from_toml() {
        #[derive(Deserialize)]
        struct S {
            modules: ModuleSelection,
        }
        let read = |text: &str| toml::from_str::<S>(text).map(|s| s.modules);
        assert_eq!(
            read("modules = \"changed\"").unwrap(),
            ModuleSelection::Keyword(SelectionKeyword::Changed)
        );
        assert_eq!(
            read("modules = \"all\"").unwrap(),
            ModuleSelection::Keyword(SelectionKeyword::All)
        );
        assert_eq!(
            read("modules = [\"a\", \"b\"]").unwrap(),
            ModuleSelection::Named(vec!["a".into(), "b".into()])
        );
        assert!(read("modules = \"some\"").is_err());
    }
}
