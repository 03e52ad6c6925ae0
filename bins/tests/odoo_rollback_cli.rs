//! The `odoo-rollback` binary against the real PostgreSQL test cluster and real git
//! repositories: backup, change, restore (with and without confirmation), history import,
//! export, filters and figures, prune, previous, revert (dry run, real, refused), usage
//! errors, exit codes, and no secret in any output.
//!
//! Needs the throwaway cluster of `scripts/ensure-postgres.sh`:
//! `eval "$(scripts/ensure-postgres.sh)" && cargo test -p odoo-deploy --test odoo_rollback_cli`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// deploy-bluegreen's own harness (real Docker, HAProxy, the fake Odoo image), shared
// rather than copied, for `previous` against a real blue-green stack.
use deploy_test_support as util;
use deploy_test_support::{assert_exit, text};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use deploy_bluegreen::orchestrator::{DeployRequest, Orchestrator};
use deploy_bluegreen::Slot;
use deploy_rollback::History;
use serde_json::Value;
use util::{fake_image, ProxyChoice, StackOptions, TestStack};

/// A database password: the test cluster trusts loopback connections, so it is sent
/// nowhere, but it is in the URL and the variables the binary reads, and must never
/// show up in any output.
const SECRET: &str = "pg-Secret-4e1b-never-shown";

// ---------------------------------------------------------------------------------
// PostgreSQL.

/// (user, host, port) of the test cluster.
fn pg_parts() -> (String, String, String) {
    let (user, host, port) = util::pg_server();
    (user, host, port.to_string())
}

/// The cluster's URL for database `db`.
fn url_for(db: &str) -> String {
    let (user, host, port) = pg_parts();
    format!("postgres://{user}@{host}:{port}/{db}")
}

/// The cluster's URL with [`SECRET`] as the password (ignored by trust authentication).
fn secret_url() -> String {
    let (user, host, port) = pg_parts();
    format!("postgres://{user}:{SECRET}@{host}:{port}/postgres")
}

/// Runs SQL with psql; returns its unaligned, tuples-only output.
fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(url_for(db))
        .args(["-c", sql])
        .output()
        .expect("run psql (Debian's postgresql-client)");
    assert!(
        out.status.success(),
        "psql on {db}: {sql}\n{}",
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_owned()
}

/// A database with a unique name; dropped (with the databases a restore created
/// beside it) when the test ends, even when it fails.
struct TestDb {
    name: String,
}

impl TestDb {
    fn new(prefix: &str) -> Self {
        let name = format!("{prefix}_{:08x}", fastrand::u32(..));
        psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        TestDb { name }
    }

    /// Databases named `<name>_replaced_<time>` or `<name>_restore_<time>`.
    fn siblings(&self, kind: &str) -> Vec<String> {
        psql(
            "postgres",
            &format!(
                "SELECT datname FROM pg_database WHERE datname LIKE '{}\\_{kind}\\_%' ORDER BY 1",
                self.name
            ),
        )
        .lines()
        .map(str::to_owned)
        .collect()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let mut names = vec![self.name.clone()];
        names.extend(self.siblings("replaced"));
        names.extend(self.siblings("restore"));
        for name in names {
            let _ = Command::new("psql")
                .args(["-X", "-q", "-d"])
                .arg(url_for("postgres"))
                .args([
                    "-c",
                    &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                ])
                .output();
        }
    }
}

/// Seeds an Odoo-like table and a filestore with one attachment.
fn seed(db: &TestDb, data_dir: &Path) {
    psql(
        &db.name,
        "CREATE TABLE res_partner (id serial PRIMARY KEY, name text NOT NULL);
         INSERT INTO res_partner (name) VALUES ('Azure Interior'), ('Deco Addict'), ('Gemini Furniture');",
    );
    let dir = data_dir.join("filestore").join(&db.name).join("3f");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("3f2a"), b"original attachment").unwrap();
}

fn partners(db: &str) -> String {
    psql(
        db,
        "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM res_partner",
    )
}

// ---------------------------------------------------------------------------------
// The binary.

fn odoo_rollback(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_odoo-rollback"));
    command
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("ODOO_ROLLBACK_OPERATOR")
        .env("NO_COLOR", "1");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run odoo-rollback")
}

#[track_caller]
fn assert_no_secret(out: &Output) {
    for stream in [text(&out.stdout), text(&out.stderr)] {
        assert!(!stream.contains(SECRET), "the secret leaked:\n{stream}");
    }
}

#[track_caller]
/// Stdout as JSON, checked against `schemas/<schema>.schema.json`.
fn json_as(out: &Output, schema: &str) -> Value {
    let value = json(out);
    deploy_test_support::assert_schema(schema, &value);
    value
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The complete backups (and partial directories) in a store.
fn store_entries(store: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Takes a backup with the binary (URL with the secret in `ODR_PG_URL`); returns its id.
fn take_backup(db: &TestDb, store: &Path, data_dir: Option<&Path>, release: &str) -> String {
    let url = secret_url();
    let mut args = vec![
        "backup",
        "--json",
        "--db-url-env",
        "ODR_PG_URL",
        "--db",
        &db.name,
        "--store",
        s(store),
        "--release",
        release,
        "--stack",
        "shop",
    ];
    if let Some(dir) = data_dir {
        args.extend(["--data-dir", s(dir)]);
    }
    let out = odoo_rollback(&args, &[("ODR_PG_URL", &url)]);
    assert_exit(&out, 0);
    assert_no_secret(&out);
    let manifest = json_as(&out, "backup");
    assert_eq!(manifest["database"], db.name.as_str());
    assert_eq!(manifest["release"], release);
    manifest["id"].as_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------------
// Backup and restore.

#[test]
fn backup_change_restore_gives_back_the_backed_up_rows_and_filestore() {
    let db = TestDb::new("odr_restore");
    let tmp = tempfile::tempdir().unwrap();
    let (store, data) = (tmp.path().join("store"), tmp.path().join("data"));
    seed(&db, &data);
    let before = partners(&db.name);
    let id = take_backup(&db, &store, Some(&data), "17.0.1");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(store.join(&id).join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["filestore"]["files"], 1);
    assert_eq!(manifest["stack"], "shop");
    assert!(
        !std::fs::read_to_string(store.join(&id).join("manifest.json"))
            .unwrap()
            .contains(SECRET)
    );

    // The release damages data.
    psql(
        &db.name,
        "DELETE FROM res_partner WHERE id = 2; INSERT INTO res_partner (name) VALUES ('Broken');",
    );
    let attachment = data.join("filestore").join(&db.name).join("3f/3f2a");
    std::fs::write(&attachment, b"damaged").unwrap();
    let damaged = partners(&db.name);
    assert_ne!(damaged, before);

    let url = secret_url();
    let env = [("ODR_PG_URL", url.as_str())];
    let restore = |extra: &[&str]| {
        let mut args = vec![
            "restore",
            "--db-url-env",
            "ODR_PG_URL",
            "--store",
            s(&store),
            "--backup",
            &id,
            "--db",
            &db.name,
            "--data-dir",
            s(&data),
        ];
        args.extend(extra);
        odoo_rollback(&args, &env)
    };

    // Without --confirm (and no terminal to ask on): refused, nothing changed.
    let out = restore(&[]);
    assert_exit(&out, 1);
    assert_no_secret(&out);
    assert!(
        text(&out.stderr).contains(&format!("--confirm {}", db.name)),
        "{}",
        text(&out.stderr)
    );
    // With a wrong confirmation: refused, nothing changed; the error as JSON too.
    let out = restore(&["--confirm", "prod", "--json"]);
    assert_exit(&out, 1);
    assert_no_secret(&out);
    let error = json_as(&out, "error");
    assert_eq!(error["exit_code"], 1);
    assert_eq!(error["kind"], "refused");
    assert_eq!(partners(&db.name), damaged);
    assert_eq!(std::fs::read(&attachment).unwrap(), b"damaged");
    assert!(db.siblings("restore").is_empty() && db.siblings("replaced").is_empty());

    // Confirmed: the backed-up rows and filestore are back, the damaged ones kept.
    let out = restore(&[
        "--confirm",
        &db.name,
        "--probe",
        "SELECT count(*) FROM res_partner",
        "--json",
    ]);
    assert_exit(&out, 0);
    assert_no_secret(&out);
    let outcome = json_as(&out, "restore");
    assert_eq!(outcome["live_database"], db.name.as_str());
    assert_eq!(outcome["backup_id"], id.as_str());
    assert!(outcome["unavailable_ms"].is_u64());
    assert_eq!(outcome["verification"]["probe_result"], "3");
    assert_eq!(partners(&db.name), before);
    assert_eq!(std::fs::read(&attachment).unwrap(), b"original attachment");
    let replaced = db.siblings("replaced");
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    assert_eq!(outcome["replaced_database"], replaced[0].as_str());
    assert_eq!(partners(&replaced[0]), damaged);
    let kept_fs = PathBuf::from(outcome["replaced_filestore"].as_str().unwrap());
    assert_eq!(std::fs::read(kept_fs.join("3f/3f2a")).unwrap(), b"damaged");
}

#[test]
fn backup_text_output_and_restore_text_name_the_window_and_the_kept_names() {
    let db = TestDb::new("odr_text");
    let tmp = tempfile::tempdir().unwrap();
    let (store, data) = (tmp.path().join("store"), tmp.path().join("data"));
    seed(&db, &data);
    let (user, host, port) = pg_parts();
    // Connection by parts, the password from a variable; debug logs on.
    let out = odoo_rollback(
        &[
            "backup",
            "--host",
            &host,
            "--port",
            &port,
            "--user",
            &user,
            "--password-env",
            "ODR_PW",
            "--db",
            &db.name,
            "--store",
            s(&store),
            "--data-dir",
            s(&data),
            "--release",
            "17.0.4",
            "--git-sha",
            "0123456789abcdef",
        ],
        &[("ODR_PW", SECRET), ("RUST_LOG", "debug")],
    );
    assert_exit(&out, 0);
    assert_no_secret(&out);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("backup "), "{stdout}");
    assert!(
        stdout.contains("release    17.0.4 (git 0123456789ab)"),
        "{stdout}"
    );
    assert!(stdout.contains("1 files"), "{stdout}");
    // Progress went to stderr, one line per step (not a terminal).
    let stderr = text(&out.stderr);
    assert!(stderr.contains("pg_dump"), "{stderr}");
    let id = stdout
        .split_whitespace()
        .nth(1)
        .expect("backup ID complete")
        .to_owned();

    let out = odoo_rollback(
        &[
            "restore",
            "--host",
            &host,
            "--port",
            &port,
            "--user",
            &user,
            "--password-env",
            "ODR_PW",
            "--store",
            s(&store),
            "--backup",
            &id,
            "--db",
            &db.name,
            "--confirm",
            &db.name,
            "--data-dir",
            s(&data),
            "--quiet",
        ],
        &[("ODR_PW", SECRET)],
    );
    assert_exit(&out, 0);
    assert_no_secret(&out);
    assert!(out.stderr.is_empty(), "--quiet: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let replaced = db.siblings("replaced");
    assert_eq!(replaced.len(), 1);
    assert!(stdout.contains("unavailable"), "{stdout}");
    assert!(
        stdout.contains(&format!("database {}", replaced[0])),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("filestore/{}", replaced[0])),
        "{stdout}"
    );
}

#[test]
fn a_failed_backup_exits_3_leaves_nothing_and_shows_no_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let url = secret_url();
    let out = odoo_rollback(
        &[
            "backup",
            "--db-url-env",
            "ODR_PG_URL",
            "--db",
            "odr_no_such_database",
            "--store",
            s(&store),
        ],
        &[("ODR_PG_URL", &url), ("RUST_LOG", "debug")],
    );
    assert_exit(&out, 3);
    assert_no_secret(&out);
    assert!(
        text(&out.stderr).contains("pg_dump failed"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        store_entries(&store).is_empty(),
        "{:?}",
        store_entries(&store)
    );
}

// ---------------------------------------------------------------------------------
// Prune.

#[test]
fn prune_dry_run_changes_nothing_and_the_history_protects_pre_deploy_backups() {
    let db = TestDb::new("odr_prune");
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    psql(
        &db.name,
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1);",
    );
    let ids: Vec<String> = ["r1", "r2", "r3"]
        .iter()
        .map(|r| take_backup(&db, &store, None, r))
        .collect();
    // A partial directory left by a killed backup three days ago.
    let partial = store.join("20200101T000000Z-killed-0000.partial");
    std::fs::create_dir(&partial).unwrap();
    let touched = Command::new("touch")
        .args(["-d", "3 days ago"])
        .arg(&partial)
        .status()
        .unwrap();
    assert!(touched.success());
    // The history names the first backup as the pre-deploy backup of the live release.
    let history = tmp.path().join("history");
    std::fs::create_dir(&history).unwrap();
    std::fs::write(
        history.join("shop.jsonl"),
        format!(
            "{{\"timestamp\":\"2025-03-01T10:00:00.000Z\",\"stack\":\"shop\",\"release\":\"r1\",\
             \"environment\":\"production\",\"status\":\"succeeded\",\"operator\":\"ci\",\
             \"backup_id\":\"{}\"}}\n",
            ids[0]
        ),
    )
    .unwrap();
    let before = store_entries(&store);

    // `backups` lists what `backup` made, newest first, with what protects it.
    let out = odoo_rollback(
        &[
            "backups",
            "--store",
            s(&store),
            "--history",
            s(&history),
            "--json",
        ],
        &[],
    );
    assert_exit(&out, 0);
    let listing = json_as(&out, "backups");
    let listed = listing["backups"].as_array().unwrap();
    assert_eq!(
        listed.len(),
        4,
        "three backups and the partial: {listing:#}"
    );
    let complete: Vec<&Value> = listed.iter().filter(|b| b["state"] == "complete").collect();
    assert_eq!(
        complete
            .iter()
            .map(|b| b["release"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["r3", "r2", "r1"],
        "{listing:#}"
    );
    for b in &complete {
        assert_eq!(b["database"], db.name.as_str());
        assert_eq!(b["verified"], true);
        assert!(b["size_bytes"].as_u64().unwrap() > 0);
        assert!(b["age_seconds"].as_i64().unwrap() >= 0);
        assert_eq!(b["protected"], b["id"] == ids[0].as_str(), "{b:#}");
    }
    assert!(
        listed
            .iter()
            .any(|b| b["state"] == "partial" && b["verified"] == false),
        "{listing:#}"
    );
    let out = odoo_rollback(
        &["backups", "--store", s(&store), "--history", s(&history)],
        &[],
    );
    assert_exit(&out, 0);
    let table = text(&out.stdout);
    for needle in [
        "BACKUP",
        "VERIFIED",
        "PROTECTED",
        "yes (history)",
        "no (partial)",
        "3 complete backup(s)",
    ] {
        assert!(table.contains(needle), "{needle:?} in:\n{table}");
    }
    assert_eq!(store_entries(&store), before, "listing changed nothing");

    let out = odoo_rollback(
        &[
            "prune",
            "--store",
            s(&store),
            "--keep-last",
            "1",
            "--dry-run",
            "--json",
        ],
        &[],
    );
    assert_exit(&out, 0);
    let plan = json_as(&out, "prune");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["decisions"].as_array().unwrap().len(), 3);
    let mut removed: Vec<&str> = plan["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    removed.sort_unstable();
    let mut expected = [ids[0].as_str(), ids[1].as_str()];
    expected.sort_unstable();
    assert_eq!(removed, expected);
    assert_eq!(plan["stale_partials"].as_array().unwrap().len(), 1);
    assert_eq!(store_entries(&store), before, "a dry run removed something");

    let out = odoo_rollback(
        &[
            "prune",
            "--store",
            s(&store),
            "--keep-last",
            "1",
            "--history",
            s(&history),
            "--dry-run",
        ],
        &[],
    );
    assert_exit(&out, 0);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("would remove"), "{stdout}");
    assert!(stdout.contains("protected"), "{stdout}");
    assert!(
        stdout.contains("dry run: 2 kept, 1 would remove"),
        "{stdout}"
    );
    assert_eq!(store_entries(&store), before, "a dry run removed something");

    let out = odoo_rollback(
        &[
            "prune",
            "--store",
            s(&store),
            "--keep-last",
            "1",
            "--history",
            s(&history),
            "--json",
        ],
        &[],
    );
    assert_exit(&out, 0);
    let report = json_as(&out, "prune");
    assert_eq!(report["removed"], serde_json::json!([ids[1]]));
    let kept = report["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == ids[0].as_str())
        .unwrap()
        .clone();
    assert_eq!(kept["keep"][0]["rule"], "protected");
    let mut left = vec![ids[0].clone(), ids[2].clone()];
    left.sort();
    assert_eq!(store_entries(&store), left, "the partial is gone too");
}

// ---------------------------------------------------------------------------------
// History and previous.

const PLAIN_LOG: &str = "\
timestamp | stack | version | env | status | operator
2025-03-01 10:00:00 | shop | 17.0.1 | production | started | ci
2025-03-01 10:05:00 | shop | 17.0.1 | prod | succeeded | ci
2025-03-02 10:00:00 | shop | 17.0.2 | production | started | ci
2025-03-02 10:04:00 | shop | 17.0.2 | production | failed | ci
2025-03-02 10:06:00 | shop | 17.0.2 | production | rolled back | alice
2025-03-03 09:00:00 | shop | 17.0.3 | production | started | ci
2025-03-03 09:02:00 | shop | 17.0.3 | production | succeeded | ci
2025-03-03 09:00:00 | crm | 1.0 | stg | success | bob
";

fn imported_history(tmp: &Path) -> PathBuf {
    let history = tmp.join("history");
    let log = tmp.join("deploys.log");
    std::fs::write(&log, PLAIN_LOG).unwrap();
    let out = odoo_rollback(
        &[
            "history",
            "--history",
            s(&history),
            "--import-plain",
            s(&log),
            "--json",
        ],
        &[],
    );
    assert_exit(&out, 0);
    assert_eq!(json_as(&out, "history-import")["imported"], 8);
    history
}

#[test]
fn history_import_export_filters_and_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let history = imported_history(tmp.path());
    let h = s(&history);

    // Importing again adds nothing.
    let log = tmp.path().join("deploys.log");
    let out = odoo_rollback(&["history", "--history", h, "--import-plain", s(&log)], &[]);
    assert_exit(&out, 0);
    assert_eq!(
        text(&out.stdout).trim(),
        format!("imported 0 records into {h}")
    );

    let list = |extra: &[&str]| {
        let mut args = vec!["history", "--history", h, "--json"];
        args.extend(extra);
        let out = odoo_rollback(&args, &[]);
        assert_exit(&out, 0);
        json_as(&out, "history").as_array().unwrap().clone()
    };
    assert_eq!(list(&[]).len(), 8);
    let failed = list(&["--stack", "shop", "--status", "failed"]);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["release"], "17.0.2");
    assert_eq!(failed[0]["timestamp"], "2025-03-02T10:04:00.000Z");
    // The log wrote `prod` and `stg`: stored as `production` and `staging`, and the
    // filter takes either spelling.
    assert_eq!(list(&["--env", "staging"]).len(), 1);
    assert_eq!(list(&["--env", "stg"]).len(), 1);
    let production = list(&["--env", "prod"]);
    assert_eq!(production.len(), 7);
    assert!(production.iter().all(|r| r["environment"] == "production"));
    assert_eq!(list(&["--since", "2025-03-03"]).len(), 3);
    assert_eq!(
        list(&["--since", "2025-03-02T10:05:00Z", "--stack", "shop"]).len(),
        3
    );

    // A torn last line (a writer killed mid-write) is ignored.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(history.join("shop.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut file, b"{\"timestamp\":\"2025-03-04T").unwrap();
    drop(file);
    assert_eq!(list(&["--stack", "shop"]).len(), 7);

    let out = odoo_rollback(&["history", "--history", h], &[]);
    assert_exit(&out, 0);
    let table = text(&out.stdout);
    assert!(table.starts_with("TIMESTAMP"), "{table}");
    assert!(table.contains("rolled_back"), "{table}");
    assert!(!table.contains("\x1b["), "NO_COLOR: {table}");

    let out = odoo_rollback(&["history", "--history", h, "--export-plain"], &[]);
    assert_exit(&out, 0);
    let plain = text(&out.stdout);
    assert_eq!(plain.lines().count(), 8, "{plain}");
    assert!(
        plain.contains("2025-03-02T10:06:00Z | shop | 17.0.2 | production | rolled_back | alice\n")
    );
    assert!(plain.contains("2025-03-03T09:00:00Z | crm | 1.0 | staging | succeeded | bob\n"));

    let out = odoo_rollback(&["history", "--history", h, "--figures", "--json"], &[]);
    assert_exit(&out, 0);
    let figures = json_as(&out, "history-figures");
    assert_eq!(figures["deployments"], 4);
    assert_eq!(figures["succeeded"], 3);
    assert_eq!(figures["rolled_back"], 1);
    assert_eq!(figures["success_rate"], 0.75);
    assert_eq!(figures["mean_time_to_rollback_ms"], 120_000);
    assert_eq!(figures["mean_start_to_live_ms"], 210_000);

    let out = odoo_rollback(
        &["history", "--history", h, "--figures", "--stack", "shop"],
        &[],
    );
    assert_exit(&out, 0);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("success rate            66.7 %"),
        "{stdout}"
    );
    assert!(
        stdout.contains("mean time to roll back  2m 00s"),
        "{stdout}"
    );
}

#[test]
fn previous_resolves_the_last_good_release_and_needs_a_stack_to_redeploy() {
    let tmp = tempfile::tempdir().unwrap();
    let history = imported_history(tmp.path());
    let h = s(&history);

    let out = odoo_rollback(
        &[
            "previous",
            "--history",
            h,
            "--stack",
            "shop",
            "--env",
            "production",
            "--dry-run",
            "--json",
        ],
        &[],
    );
    assert_exit(&out, 0);
    let plan = json_as(&out, "previous-plan");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["strategy"], "previous_release");
    // 17.0.3 is live (the latest); 17.0.2 was rolled back; 17.0.1 is the one to go to.
    assert_eq!(plan["target_release"], "17.0.1");

    let out = odoo_rollback(
        &[
            "previous",
            "--history",
            h,
            "--stack",
            "shop",
            "--env",
            "production",
            "--bad-release",
            "17.0.2",
            "--dry-run",
        ],
        &[],
    );
    assert_exit(&out, 0);
    assert!(
        text(&out.stdout).contains("target    17.0.3"),
        "{}",
        text(&out.stdout)
    );

    // The real run needs the blue-green stack: a usage error naming --config, nothing
    // recorded.
    let records_before = std::fs::read_to_string(history.join("shop.jsonl")).unwrap();
    let out = odoo_rollback(
        &[
            "previous",
            "--history",
            h,
            "--stack",
            "shop",
            "--env",
            "production",
        ],
        &[],
    );
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--config") && stderr.contains("17.0.1"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(history.join("shop.jsonl")).unwrap(),
        records_before
    );

    // Nothing to roll back to.
    let out = odoo_rollback(
        &[
            "previous",
            "--history",
            h,
            "--stack",
            "crm",
            "--env",
            "production",
            "--dry-run",
            "--json",
        ],
        &[],
    );
    assert_exit(&out, 1);
    assert_eq!(json_as(&out, "error")["exit_code"], 1);
    assert!(
        text(&out.stderr).contains("no good release"),
        "{}",
        text(&out.stderr)
    );

    // A stack file that does not load.
    let config = tmp.path().join("stack.toml");
    std::fs::write(&config, "this is not = [toml").unwrap();
    let out = odoo_rollback(
        &[
            "previous",
            "--history",
            h,
            "--stack",
            "shop",
            "--env",
            "production",
            "--config",
            s(&config),
        ],
        &[],
    );
    assert_exit(&out, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_switches_a_blue_green_stack_back_to_the_last_good_release() {
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let history_dir = stack.dir.path().join("history");
    let options = StackOptions {
        // The old slot stays warm: going back is a switch.
        deploy: Some("rollback_window = \"keep\"\ndrain_timeout = \"1s\"".to_owned()),
        history_dir: Some(history_dir.clone()),
        ..StackOptions::default()
    };
    let config = stack.write_config(&options);
    let image = fake_image();
    let history = History::open(&history_dir).unwrap();
    let orchestrator = Orchestrator::connect(stack.config(&options))
        .await
        .unwrap()
        .with_recorder(Arc::new(history.clone()))
        .with_operator("ci");
    for release in ["r1", "r2"] {
        let report = orchestrator
            .deploy(&DeployRequest::new(&image, release))
            .await
            .unwrap_or_else(|e| panic!("deploy {release}: {e}\n{}", stack.diagnostics()));
        assert!(
            report.result.is_success(),
            "deploy {release}: {report:?}\n{}",
            stack.diagnostics()
        );
    }
    assert_eq!(
        orchestrator.status().await.live_release.as_deref(),
        Some("r2")
    );

    let run = |args: Vec<String>| async move {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            odoo_rollback(&args, &[])
        })
        .await
        .unwrap()
    };
    let config = s(&config).to_owned();
    let args = |extra: &[&str]| {
        let mut args = vec!["previous".to_owned(), "--config".to_owned(), config.clone()];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    };

    // Stack, environment and history come from the stack file.
    let out = run(args(&["--dry-run", "--json"])).await;
    assert_exit(&out, 0);
    assert_eq!(json_as(&out, "previous-plan")["target_release"], "r1");
    assert_eq!(
        orchestrator.status().await.live_release.as_deref(),
        Some("r2")
    );

    let out = run(args(&["--json", "--operator", "oncall"])).await;
    if out.status.code() != Some(0) {
        panic!(
            "previous failed:\n{}\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr),
            stack.diagnostics()
        );
    }
    let outcome = json_as(&out, "previous");
    assert_eq!(outcome["strategy"], "previous_release");
    assert_eq!(outcome["live_release"], "r1");
    assert_eq!(outcome["detail"]["kind"], "redeployed");
    assert_eq!(outcome["detail"]["warm_switch"], true);
    assert_eq!(
        orchestrator.status().await.live_release.as_deref(),
        Some("r1")
    );

    // The rollback is recorded: r2 is rolled back, r1 is the good release again.
    let last = history.read_stack(stack.stack()).unwrap().pop().unwrap();
    assert_eq!(
        (
            last.release.as_str(),
            last.status.as_str(),
            last.operator.as_str()
        ),
        ("r2", "rolled_back", "oncall")
    );
    let good = history
        .last_good(stack.stack(), deploy_rollback::Environment::Staging)
        .unwrap()
        .unwrap();
    assert_eq!(good.release, "r1");
}

// ---------------------------------------------------------------------------------
// Git revert.

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.invalid",
            "-c",
            "init.defaultBranch=production",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_owned()
}

struct Repos {
    _tmp: tempfile::TempDir,
    remote: PathBuf,
    clone: PathBuf,
    merge: String,
    pre_merge_tree: String,
}

/// A bare remote and a clone whose `production` branch ends with a merge of `feature`.
fn repos() -> Repos {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote.git");
    let clone = tmp.path().join("clone");
    git(
        tmp.path(),
        &["init", "--bare", "-b", "production", s(&remote)],
    );
    git(tmp.path(), &["clone", s(&remote), s(&clone)]);
    git(&clone, &["config", "user.name", "Release Bot"]);
    git(&clone, &["config", "user.email", "release@example.invalid"]);
    git(&clone, &["checkout", "-B", "production"]);
    std::fs::write(clone.join("__manifest__.py"), "{'version': '17.0.1'}\n").unwrap();
    std::fs::write(clone.join("models.py"), "class Partner:\n    pass\n").unwrap();
    git(&clone, &["add", "."]);
    git(&clone, &["commit", "-m", "base"]);
    git(&clone, &["push", "-u", "origin", "production"]);
    git(&clone, &["checkout", "-b", "feature"]);
    std::fs::write(clone.join("__manifest__.py"), "{'version': '17.0.2'}\n").unwrap();
    std::fs::write(clone.join("wizard.py"), "class Wizard:\n    pass\n").unwrap();
    git(&clone, &["add", "."]);
    git(&clone, &["commit", "-m", "feature: the wizard"]);
    git(&clone, &["checkout", "production"]);
    git(
        &clone,
        &[
            "merge",
            "--no-ff",
            "feature",
            "-m",
            "Merge branch 'feature' into production",
        ],
    );
    git(&clone, &["push", "origin", "production"]);
    let merge = git(&clone, &["rev-parse", "HEAD"]);
    let pre_merge_tree = git(&clone, &["rev-parse", "HEAD^1^{tree}"]);
    Repos {
        _tmp: tmp,
        remote,
        clone,
        merge,
        pre_merge_tree,
    }
}

#[test]
fn revert_dry_run_changes_nothing_and_the_real_one_pushes_the_pre_merge_tree() {
    let r = repos();
    let out = odoo_rollback(
        &[
            "revert",
            "--repo",
            s(&r.clone),
            "--branch",
            "production",
            "--merge",
            &r.merge,
            "--dry-run",
            "--json",
        ],
        &[],
    );
    assert_exit(&out, 0);
    let plan = json_as(&out, "revert");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["pushed"], false);
    assert_eq!(plan["mainline"], 1);
    assert!(plan["revert_commit"].is_null());
    assert_eq!(plan["diffstat"]["files_changed"], 2);
    let mut paths: Vec<&str> = plan["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    paths.sort_unstable();
    assert_eq!(paths, ["__manifest__.py", "wizard.py"]);
    assert_eq!(git(&r.remote, &["rev-parse", "production"]), r.merge);
    assert_eq!(git(&r.clone, &["rev-parse", "HEAD"]), r.merge);

    let out = odoo_rollback(
        &[
            "revert",
            "--repo",
            s(&r.clone),
            "--branch",
            "production",
            "--merge",
            &r.merge,
        ],
        &[],
    );
    assert_exit(&out, 0);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("pushed"), "{stdout}");
    assert!(
        stdout.contains("Revert \"Merge branch 'feature' into production\""),
        "{stdout}"
    );
    // The remote's branch has the pre-merge tree, on top of the merge.
    assert_eq!(
        git(&r.remote, &["rev-parse", "production^{tree}"]),
        r.pre_merge_tree
    );
    assert_eq!(git(&r.remote, &["rev-parse", "production^"]), r.merge);

    // Reverting it again changes nothing: refused.
    let out = odoo_rollback(
        &[
            "revert",
            "--repo",
            s(&r.clone),
            "--branch",
            "production",
            "--merge",
            &r.merge,
        ],
        &[],
    );
    assert_exit(&out, 1);
}

#[test]
fn revert_refuses_a_dirty_tree_and_a_diverged_branch() {
    let r = repos();
    std::fs::write(
        r.clone.join("models.py"),
        "class Partner:\n    edited = True\n",
    )
    .unwrap();
    let out = odoo_rollback(
        &[
            "revert",
            "--repo",
            s(&r.clone),
            "--branch",
            "production",
            "--merge",
            &r.merge,
        ],
        &[],
    );
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("dirty") && stderr.contains("models.py"),
        "{stderr}"
    );
    assert_eq!(git(&r.remote, &["rev-parse", "production"]), r.merge);
    git(&r.clone, &["checkout", "--", "models.py"]);

    // Someone else pushed; a local commit was made meanwhile.
    let other = r.clone.parent().unwrap().join("other");
    git(
        r.clone.parent().unwrap(),
        &["clone", s(&r.remote), s(&other)],
    );
    std::fs::write(other.join("hotfix.py"), "x = 1\n").unwrap();
    git(&other, &["add", "."]);
    git(&other, &["commit", "-m", "hotfix"]);
    git(&other, &["push", "origin", "production"]);
    std::fs::write(r.clone.join("local.py"), "y = 2\n").unwrap();
    git(&r.clone, &["add", "."]);
    git(&r.clone, &["commit", "-m", "local work"]);
    let pushed = git(&r.remote, &["rev-parse", "production"]);
    let out = odoo_rollback(
        &[
            "revert",
            "--repo",
            s(&r.clone),
            "--branch",
            "production",
            "--merge",
            &r.merge,
            "--json",
        ],
        &[],
    );
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("diverged"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(json_as(&out, "error")["exit_code"], 1);
    assert_eq!(git(&r.remote, &["rev-parse", "production"]), pushed);

    // An unknown commit is a usage error.
    let out = odoo_rollback(
        &[
            "revert",
            "--repo",
            s(&other),
            "--branch",
            "production",
            "--commit",
            "0123456789012345678901234567890123456789",
        ],
        &[],
    );
    assert_exit(&out, 2);
}

// ---------------------------------------------------------------------------------
// Usage errors.

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = s(tmp.path());
    let url = secret_url();
    // (arguments, environment, what stderr must say)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (vec![], vec![], "Usage"),
        (
            vec!["backup", "--store", dir],
            vec![],
            "no database connection",
        ),
        (
            vec![
                "backup",
                "--store",
                dir,
                "--db-url-env",
                "ODR_UNSET_VARIABLE",
            ],
            vec![],
            "ODR_UNSET_VARIABLE",
        ),
        (
            vec!["backup", "--store", dir, "--db-url-env", "ODR_BAD_URL"],
            vec![(
                "ODR_BAD_URL",
                "mysql://root:pg-Secret-4e1b-never-shown@db/x",
            )],
            "postgres url",
        ),
        (
            vec![
                "restore",
                "--db-url-env",
                "ODR_PG_URL",
                "--store",
                dir,
                "--backup",
                "../etc",
                "--db",
                "odr_x",
                "--confirm",
                "odr_x",
            ],
            vec![("ODR_PG_URL", url.as_str())],
            "invalid backup id",
        ),
        (
            vec![
                "restore",
                "--db-url-env",
                "ODR_PG_URL",
                "--store",
                dir,
                "--backup",
                "20250101T000000Z-odr_x-0000",
                "--db",
                "odr_x",
                "--confirm",
                "odr_x",
            ],
            vec![("ODR_PG_URL", url.as_str())],
            "not found",
        ),
        (
            vec![
                "revert",
                "--repo",
                dir,
                "--branch",
                "production",
                "--merge",
                "a",
                "--commit",
                "b",
            ],
            vec![],
            "cannot be used with",
        ),
        (
            vec![
                "revert",
                "--repo",
                dir,
                "--branch",
                "production",
                "--merge",
                "HEAD",
            ],
            vec![],
            "open repository",
        ),
        (
            vec![
                "revert",
                "--repo",
                dir,
                "--branch",
                "production",
                "--merge",
                "HEAD",
                "--token-env",
                "ODR_UNSET_TOKEN",
            ],
            vec![],
            "ODR_UNSET_TOKEN",
        ),
        (vec!["prune", "--store", dir], vec![], "--keep-last"),
        (
            vec![
                "prune",
                "--store",
                dir,
                "--keep-last",
                "1",
                "--keep-daily",
                "7",
            ],
            vec![],
            "cannot be used with",
        ),
        (
            vec!["history", "--history", "/nonexistent/odr-history"],
            vec![],
            "no such directory",
        ),
        (
            vec!["history", "--history", dir, "--since", "the day before"],
            vec![],
            "--since",
        ),
        // `prod` is an accepted name for production now; an unknown one is refused.
        (
            vec!["history", "--history", dir, "--env", "moon"],
            vec![],
            "moon",
        ),
        (
            vec!["previous", "--history", dir, "--stack", "shop"],
            vec![],
            "--env",
        ),
        (
            vec![
                "previous",
                "--history",
                dir,
                "--stack",
                "shop",
                "--env",
                "production",
                "--operator",
                "a|b",
                "--dry-run",
            ],
            vec![],
            "--operator",
        ),
    ];
    for (args, env, needle) in cases {
        let out = odoo_rollback(&args, &env);
        assert_eq!(
            out.status.code(),
            Some(2),
            "odoo-rollback {args:?}\nstdout:\n{}\nstderr:\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert_no_secret(&out);
        assert!(
            text(&out.stderr).contains(needle),
            "odoo-rollback {args:?}: stderr lacks {needle:?}:\n{}",
            text(&out.stderr)
        );
    }

    // Help documents every exit code.
    let out = odoo_rollback(&["backup", "--help"], &[]);
    assert_exit(&out, 0);
    let help = text(&out.stdout);
    for code in [
        "0  done",
        "1  refused",
        "2  configuration or usage",
        "3  infrastructure",
    ] {
        assert!(help.contains(code), "{help}");
    }
}
