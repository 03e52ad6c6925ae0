//! Every `--json` output of the binaries as a type, and the JSON Schema of each.
//!
//! The schema files in `schemas/` (at the workspace root) are generated from these types
//! by [`schemas`]; a test keeps them current (`UPDATE_SCHEMAS=1 cargo test -p odoo-deploy
//! --test json_schemas` rewrites them) and the binaries' tests validate their real
//! output against them. The schemas are strict: an object has exactly the properties its
//! schema names (`unevaluatedProperties: false`), so a field added without its schema
//! is caught.
//!
//! | schema | printed by |
//! |---|---|
//! | `gate-report` | `odoo-gate run --json`, `odoo-gate demo --json` |
//! | `validate-report` | `odoo-gate validate --json` |
//! | `operation-report` | `odoo-bluegreen deploy|canary|rollback|switch|stop-idle --json` |
//! | `status` | `odoo-bluegreen status --json` |
//! | `deploy-plan` | `odoo-bluegreen deploy --dry-run --json` |
//! | `init` | `odoo-bluegreen init --json` |
//! | `proxy-files` | `odoo-bluegreen proxy-config --json` |
//! | `history` | `odoo-rollback history --json` |
//! | `history-figures` | `odoo-rollback history --figures --json` |
//! | `history-import` | `odoo-rollback history --import-plain FILE --json` |
//! | `backup` | `odoo-rollback backup --json` |
//! | `backups` | `odoo-rollback backups --json` |
//! | `prune` | `odoo-rollback prune --json` |
//! | `restore` | `odoo-rollback restore --json` |
//! | `revert` | `odoo-rollback revert --json` |
//! | `previous-plan` | `odoo-rollback previous --dry-run --json` |
//! | `previous` | `odoo-rollback previous --json` |
//! | `rpc-version` | `odoo-rpc version` |
//! | `rpc-health` | `odoo-rpc health` |
//! | `error` | any of them with `--json`, when it fails |

use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema};
use serde::Serialize;

/// The error every binary prints on stdout with `--json` when it fails (its message is
/// on stderr too).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ErrorOutput {
    /// The error and its causes, in a sentence.
    pub error: String,
    /// The process's exit code (see each binary's `--help`).
    pub exit_code: u8,
    /// `odoo-rollback`: `refused`, `usage` or `infrastructure`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `odoo-bluegreen`: who holds the stack's lock, when that is the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<deploy_bluegreen::lock::LockHolder>,
    /// `odoo-bluegreen`: the stage that failed, when a stage did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// `odoo-bluegreen`: the pre-deploy backup taken before the failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
}

/// What `odoo-bluegreen init` wrote.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InitOutput {
    /// The stack file.
    pub stack_file: String,
    /// Every file written, the stack file first.
    pub written: Vec<String>,
}

/// One proxy file `odoo-bluegreen proxy-config` prints.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProxyFileOutput {
    /// What it is (`haproxy.cfg`, `nginx main file`, ...).
    pub what: String,
    /// Where the stack file says it goes (null: the site puts it where it wants).
    pub path: Option<String>,
    /// Its text.
    pub text: String,
}

/// What `odoo-bluegreen maintenance` found or left.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MaintenanceOutput {
    /// Whether the proxy is in maintenance (answers 503 itself) afterwards.
    pub maintenance: bool,
}

/// What `odoo-rollback history --import-plain` did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ImportOutput {
    /// How many records were added.
    pub imported: usize,
}

/// A backup `odoo-rollback backup` took.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BackupOutput {
    /// Its manifest.
    #[serde(flatten)]
    pub manifest: deploy_rollback::backup::BackupManifest,
    /// Its directory in the store.
    pub path: String,
}

/// The backup store, as `odoo-rollback backups` lists it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BackupsOutput {
    /// The store.
    pub store: String,
    /// Its backups, newest first; unfinished ones last.
    pub backups: Vec<ListedBackup>,
}

/// One backup of the store.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ListedBackup {
    /// Its id.
    pub id: String,
    /// `complete` (verified when it was taken: pg_restore --list and the checksums),
    /// `partial` (left by a run that did not finish), `removing`, `invalid`.
    pub state: BackupListingState,
    /// The database it holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The stack it was taken for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// The release that was live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Its artifacts' size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Whether it was verified when taken.
    pub verified: bool,
    /// When it was taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// Its age.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<i64>,
    /// Whether the history protects it from `prune` (a current release's pre-deploy
    /// backup).
    pub protected: bool,
    /// What is wrong with an invalid one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The state of a listed backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackupListingState {
    /// Finished and verified.
    Complete,
    /// Left by a run that did not finish.
    Partial,
    /// Being removed (or a removal was interrupted).
    Removing,
    /// Its manifest or artifacts are wrong.
    Invalid,
}

/// What `odoo-rollback prune` removed or would remove.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PruneOutput {
    /// The decision for every backup, and what was removed.
    #[serde(flatten)]
    pub report: deploy_rollback::backup::PruneReport,
    /// Whether nothing was removed (`--dry-run`).
    pub dry_run: bool,
    /// The backups the history protects.
    pub protected: Vec<String>,
    /// Directories of unfinished backups removed (or that would be).
    pub stale_partials: Vec<String>,
}

/// The plan of `odoo-rollback previous --dry-run`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PreviousPlanOutput {
    /// The plan.
    #[serde(flatten)]
    pub plan: deploy_rollback::strategy::RollbackPlan,
    /// Always true: nothing was changed.
    pub dry_run: bool,
}

/// `odoo-rpc version`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RpcVersion {
    /// `server_version` as the server reports it (`17.0`, `saas~17.2+e`).
    pub server_version: String,
    /// `server_version_info`: `[major, minor, micro, level, serial, edition]`.
    pub server_version_info: Vec<serde_json::Value>,
    /// The series (`17.0`).
    pub server_serie: String,
    /// The RPC protocol version.
    pub protocol_version: i64,
    /// The release label (`17.0`), when the server gives one.
    pub release: Option<String>,
}

/// `odoo-rpc health`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RpcHealth {
    /// `pass` when healthy.
    pub status: String,
    /// With `--db-status`: the database server's state.
    pub db_server_status: Option<bool>,
    /// The HTTP status of `/web/health`.
    pub http_status: u16,
}

/// One documented output: its schema's file name and how to make it.
#[derive(Debug, Clone, Copy)]
pub struct Documented {
    /// The file's stem: `schemas/<name>.schema.json`.
    pub name: &'static str,
    /// Who prints it.
    pub printed_by: &'static str,
    schema: fn() -> Schema,
}

impl Documented {
    /// The schema, strict (see the module documentation), with its `$id` and `title`.
    #[must_use]
    pub fn schema(&self) -> serde_json::Value {
        let mut value = (self.schema)().to_value();
        close_objects(&mut value);
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "$id".to_owned(),
                format!(
                    "https://odoo-deploy.invalid/schemas/{}.schema.json",
                    self.name
                )
                .into(),
            );
            map.insert(
                "description".to_owned(),
                format!(
                    "{}. Printed by {}.",
                    map.get("description")
                        .and_then(|d| d.as_str())
                        .unwrap_or(self.name)
                        .trim_end_matches('.'),
                    self.printed_by
                )
                .into(),
            );
        }
        value
    }

    /// The schema as the file holds it: pretty JSON and a newline.
    #[must_use]
    pub fn file_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.schema()).unwrap_or_default();
        text.push('\n');
        text
    }
}

macro_rules! documented {
    ($name:literal, $by:literal, $ty:ty) => {
        Documented {
            name: $name,
            printed_by: $by,
            schema: || schemars::schema_for!($ty),
        }
    };
}

/// Every `--json` output, as the table in the module documentation lists them.
#[must_use]
pub fn schemas() -> Vec<Documented> {
    use deploy_bluegreen::orchestrator::{DeployPlan, OperationReport, StatusReport};
    use deploy_rollback::git::RevertOutcome;
    use deploy_rollback::history::{DeploymentRecord, Figures};
    use deploy_rollback::restore::RestoreOutcome;
    use deploy_rollback::strategy::RollbackOutcome;
    vec![
        documented!(
            "gate-report",
            "odoo-gate run --json and odoo-gate demo --json",
            deploy_gates::Report
        ),
        documented!(
            "validate-report",
            "odoo-gate validate --json",
            deploy_validate::Report
        ),
        documented!(
            "operation-report",
            "odoo-bluegreen deploy, canary, rollback, switch and stop-idle with --json",
            OperationReport
        ),
        documented!("status", "odoo-bluegreen status --json", StatusReport),
        documented!(
            "deploy-plan",
            "odoo-bluegreen deploy --dry-run --json",
            DeployPlan
        ),
        documented!("init", "odoo-bluegreen init --json", InitOutput),
        documented!(
            "maintenance",
            "odoo-bluegreen maintenance on|off|status --json",
            MaintenanceOutput
        ),
        documented!(
            "proxy-files",
            "odoo-bluegreen proxy-config --json",
            Vec<ProxyFileOutput>
        ),
        documented!(
            "history",
            "odoo-rollback history --json",
            Vec<DeploymentRecord>
        ),
        documented!(
            "history-figures",
            "odoo-rollback history --figures --json",
            Figures
        ),
        documented!(
            "history-import",
            "odoo-rollback history --import-plain FILE --json",
            ImportOutput
        ),
        documented!("backup", "odoo-rollback backup --json", BackupOutput),
        documented!("backups", "odoo-rollback backups --json", BackupsOutput),
        documented!("prune", "odoo-rollback prune --json", PruneOutput),
        documented!("restore", "odoo-rollback restore --json", RestoreOutcome),
        documented!("revert", "odoo-rollback revert --json", RevertOutcome),
        documented!(
            "previous-plan",
            "odoo-rollback previous --dry-run --json",
            PreviousPlanOutput
        ),
        documented!("previous", "odoo-rollback previous --json", RollbackOutcome),
        documented!("rpc-version", "odoo-rpc version", RpcVersion),
        documented!("rpc-health", "odoo-rpc health", RpcHealth),
        documented!(
            "error",
            "every binary with --json when it fails",
            ErrorOutput
        ),
    ]
}

/// Closes every object schema that lists its properties: `unevaluatedProperties: false`,
/// which also sees the properties a `$ref` beside them brings (an internally tagged
/// enum's variant is its tag plus a referenced struct). A definition referenced that way
/// stays open itself, since the tag is not among its properties; the variant that refers
/// to it is closed. Maps keep their `additionalProperties` schema.
fn close_objects(value: &mut serde_json::Value) {
    let mut composed = std::collections::BTreeSet::new();
    find_composed(value, &mut composed);
    if let Some(defs) = value.get_mut("$defs").and_then(|d| d.as_object_mut()) {
        for (name, def) in defs.iter_mut() {
            close(def, !composed.contains(name));
        }
    }
    close(value, true);
}

/// The definitions a `$ref` beside `properties` refers to.
fn find_composed(value: &serde_json::Value, found: &mut std::collections::BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            if map.contains_key("properties") {
                if let Some(target) = map.get("$ref").and_then(|r| r.as_str()) {
                    if let Some(name) = target.strip_prefix("#/$defs/") {
                        found.insert(name.to_owned());
                    }
                }
            }
            map.values().for_each(|child| find_composed(child, found));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| find_composed(i, found)),
        _ => {}
    }
}

/// Closes `value` (when `this_one`) and every object schema inside it but `$defs`.
fn close(value: &mut serde_json::Value, this_one: bool) {
    match value {
        serde_json::Value::Object(map) => {
            if this_one
                && map.contains_key("properties")
                && !map.contains_key("additionalProperties")
            {
                map.insert("unevaluatedProperties".to_owned(), false.into());
            }
            for (key, child) in map.iter_mut() {
                if key != "$defs" {
                    close(child, true);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| close(i, true)),
        _ => {}
    }
}
