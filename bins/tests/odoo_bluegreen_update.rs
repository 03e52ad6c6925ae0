//! Module updates inside `odoo-bluegreen deploy` (`[update] strategy = "online"`): the
//! real Docker engine, HAProxy and PostgreSQL, the slots being the fake Odoo image serving
//! its records from the test cluster (reached through its Unix socket, mounted into the
//! containers: no network), three images of the same addons: 1.0, then 1.1 (a new column
//! and a migration), then 1.2 whose migration fails, then 1.3 whose update hangs and
//! whose deploy is killed with SIGKILL.
//!
//! And `strategy = "maintenance"` (the default) behind nginx: the proxy answers 503
//! while the update runs and the old release is stopped, under a JSON-RPC load; a failed
//! update, a failure before the switch and a failure after it each put the database and
//! the old release back. Behind HAProxy, a migration that fails in the second of three
//! modules (the first already committed at its new version) is undone whole.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

use deploy_bluegreen::Slot;
use deploy_test_support as util;
use serde_json::Value;
use util::{describe, ProxyChoice, TestStack};

const BIN: &str = env!("CARGO_BIN_EXE_odoo-bluegreen");

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Removes the test's images, also when an assertion fails.
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        for tag in &self.0 {
            let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
        }
    }
}

fn deploy(config: &Path, image: &str, url: &str, extra: &[&str]) -> (Output, Value) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(["deploy", "--image", image, "--json"])
        .args(extra)
        .env("BGT_UPDATE_DB_URL", url)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, value)
}

/// `deploy --image IMAGE --json` in the background, its output piped (to be killed, or
/// waited for).
fn spawn_deploy(config: &Path, image: &str, url: &str) -> std::process::Child {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(["deploy", "--image", image, "--json"])
        .env("BGT_UPDATE_DB_URL", url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (90 s at most) until the update of `release` has left `shop` 'to upgrade'.
fn wait_until_upgrading(db: &str, release: &str) {
    let state = || {
        util::psql(
            db,
            "SELECT state || ' ' || coalesce(latest_version, '-') FROM ir_module_module WHERE name = 'shop'",
        )
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while state() != "to upgrade 17.0.1.1" {
        assert!(
            std::time::Instant::now() < deadline,
            "the update of {release} did not start: {}",
            state()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `status --json`.
fn status_of(config: &Path) -> Value {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(["status", "--json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// The admin logs in to `db` through the stack's proxy (as uid 2).
async fn admin_logs_in_through(stack: &TestStack, db: &str) {
    let client = odoo_rpc::Client::builder(stack.url())
        .database(db)
        .login("admin")
        .password(secrecy::SecretString::from("admin"))
        .build()
        .unwrap();
    assert_eq!(client.authenticate().await.unwrap(), 2);
}

fn stage<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["stages"]
        .as_array()
        .and_then(|stages| stages.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no stage {name} in {report:#}"))
}

#[tokio::test]
async fn a_deploy_updates_the_changed_modules_and_a_failed_update_restores_the_backup() {
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let db = util::ScratchDb::new("bgt_update");
    let prefix = util::unique_prefix();
    let tags: Vec<String> = ["r1", "r2", "r3", "r4", "r5"]
        .iter()
        .map(|r| format!("{prefix}-shop:{r}"))
        .collect();
    let _images = Images(tags.clone());
    let two = format!("{}{}", column("x_shop_ref"), column("x_shop_level"));
    shop_image(&tags[0], "1.0", &column("x_shop_ref"), None);
    shop_image(
        &tags[1],
        "1.1",
        &two,
        Some((
            "shop/migrations/1.1/post-level.sql",
            "UPDATE res_partner SET x_shop_level = 'bronze';\n",
        )),
    );
    shop_image(
        &tags[2],
        "1.2",
        &format!("{two}[fail]\nstage = \"post\"\nmessage = \"KeyError: 'x_shop_tier'\"\n"),
        None,
    );
    shop_image(
        &tags[3],
        "1.3",
        &format!("{two}[fail]\nstage = \"post\"\nhang_seconds = 300\n"),
        None,
    );
    shop_image(
        &tags[4],
        "1.2",
        &format!("{two}{}", column("x_shop_tier")),
        None,
    );

    // Release 1's database, made as a site makes it: Odoo's -i in a one-off container.
    let init = util::odoo_one_off(&tags[0], &["-d", &db.0, "-i", "shop", "--stop-after-init"]);
    assert!(init.status.success(), "{}", describe(&init));

    let (config, _) = stack.write_pg_config(
        &db.0,
        "BGT_UPDATE_DB_URL",
        "[update]\nstrategy = \"online\"\ntimeout = \"2m\"\nlock_wait = \"3s\"\n",
    );
    let url = util::pg_url(&db.0);
    let version = |module: &str| {
        util::psql(
            &db.0,
            &format!("SELECT state || ' ' || coalesce(latest_version, '-') FROM ir_module_module WHERE name = '{module}'"),
        )
    };

    // The dry run lists the update after the backup, with its settings.
    let dry = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["deploy", "--image", &tags[0], "--dry-run", "--json"])
        .env("BGT_UPDATE_DB_URL", &url)
        .output()
        .unwrap();
    let plan: Value = serde_json::from_slice(&dry.stdout).unwrap_or(Value::Null);
    let names: Vec<&str> = plan["stages"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default();
    let backup_at = names.iter().position(|n| *n == "backup");
    let update_at = names.iter().position(|n| *n == "update");
    assert!(
        backup_at.is_some() && update_at > backup_at,
        "{}\n{plan:#}",
        describe(&dry)
    );
    // ... and the modules it would update, and why, read from the image and the database.
    let update_plan = &plan["stages"][update_at.unwrap()]["settings"];
    assert_eq!(
        update_plan["first_run"], "no checksums stored: every installed module",
        "{update_plan:#}"
    );
    assert!(
        update_plan["would_update shop"].is_string(),
        "{update_plan:#}"
    );

    // Release 1: no checksums stored yet, so the first update is of every installed
    // module, and it says so; they are stored afterwards.
    let (out, report) = deploy(&config, &tags[0], &url, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let update = stage(&report, "update");
    assert_eq!(update["result"], "passed", "{update:#}");
    assert_eq!(update["details"]["plan"]["first_run"], true, "{update:#}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no checksums stored"));
    assert_eq!(
        util::psql(&db.0, "SELECT count(*) FROM ir_config_parameter WHERE key = 'module_auto_update.installed_checksums'"),
        "1"
    );

    // Release 2 changes shop: only shop is updated, its migration runs, the new release
    // serves the new column.
    let dry = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["deploy", "--image", &tags[1], "--dry-run", "--json"])
        .env("BGT_UPDATE_DB_URL", &url)
        .output()
        .unwrap();
    let plan: Value = serde_json::from_slice(&dry.stdout).unwrap_or(Value::Null);
    let settings = plan["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "update"))
        .map(|s| s["settings"].clone())
        .unwrap_or_default();
    assert!(
        settings["would_update shop"]
            .as_str()
            .is_some_and(|why| why.starts_with("checksum ")),
        "{settings:#}"
    );
    assert!(settings.get("would_update base").is_none(), "{settings:#}");
    let (out, report) = deploy(&config, &tags[1], &url, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let update = stage(&report, "update");
    assert_eq!(
        update["details"]["plan"]["update"],
        serde_json::json!(["shop"]),
        "{update:#}"
    );
    assert_eq!(version("shop"), "installed 17.0.1.1");
    assert_eq!(
        util::psql(
            &db.0,
            "SELECT count(*) FROM res_partner WHERE x_shop_level = 'bronze'"
        ),
        util::psql(&db.0, "SELECT count(*) FROM res_partner")
    );
    assert_eq!(report["to"]["release"], "r2", "{report:#}");

    // Release 3's migration fails: the pre-deploy backup is restored, the deploy is
    // refused (exit 1), release 2 goes on serving a database at release 2.
    let (out, report) = deploy(&config, &tags[2], &url, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let update = stage(&report, "update");
    assert_eq!(update["result"], "refused", "{update:#}");
    let reason = update["summary"].as_str().unwrap_or_default();
    assert!(
        reason.contains("exited with status 255")
            && reason.contains("restored")
            && reason.contains("s since the backup"),
        "{update:#}"
    );
    assert!(
        update["details"]["log_tail"]
            .as_array()
            .is_some_and(|lines| lines
                .iter()
                .any(|l| l.as_str().is_some_and(|l| l.contains("KeyError")))),
        "the update's log is in the report: {update:#}"
    );
    assert_eq!(version("shop"), "installed 17.0.1.1");
    assert_eq!(
        util::psql(
            &db.0,
            "SELECT count(*) FROM ir_module_module WHERE state LIKE 'to %'"
        ),
        "0"
    );
    let status = status_of(&config);
    let serving = status.to_string();
    assert!(
        serving.contains("\"r2\""),
        "release 2 still serves: {status:#}"
    );
    // The release that served answers through the proxy on the restored database.
    admin_logs_in_through(&stack, &db.0).await;

    // A rollback from release 2 would put release 1's code on the database release 2
    // updated: refused (exit 1) with the way back that keeps them together...
    let rollback = |extra: &[&str]| {
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .args(["rollback", "--json"])
            .args(extra)
            .output()
            .unwrap();
        let value: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out, value)
    };
    let (out, refused) = rollback(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(refused["stage"], "database", "{refused:#}");
    let reason = refused["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("release r2 updated the database")
            && reason.contains("shop")
            && reason.contains("odoo-rollback restore --backup"),
        "{refused:#}"
    );
    // ... and done with --code-only, which says what it does.
    let (out, done) = rollback(&["--code-only"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(done["release"], "r1", "{done:#}");
    assert!(
        done["warnings"]
            .to_string()
            .contains("runs on the database release r2 updated"),
        "{done:#}"
    );

    // A session of the serving side holds a row of res_partner in a long transaction:
    // release 5's update waits on it to add its column (and the serving requests queue
    // behind the update). The watchdog kills the update after lock_wait (3 s), the backup
    // is restored, the deploy refused, naming who held the lock.
    let mut holder = util::psql_command(&db.0)
        .args([
            "-c",
            "BEGIN; SELECT id FROM res_partner ORDER BY id LIMIT 1 FOR UPDATE; SELECT pg_sleep(120); COMMIT;",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let (out, report) = deploy(&config, &tags[4], &url, &[]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(90),
        "the watchdog did not stop the wait"
    );
    let update = stage(&report, "update");
    let summary = update["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("lock-wait watchdog")
            && summary.contains("waited")
            && summary.contains("pg_sleep"),
        "{update:#}"
    );
    assert_eq!(version("shop"), "installed 17.0.1.1");

    // The deploy of release 4 is killed (SIGKILL) while its update runs: the database is
    // left with shop 'to upgrade' and the update's container goes on.
    let mut killed = spawn_deploy(&config, &tags[3], &url);
    wait_until_upgrading(&db.0, "release 4");
    killed.kill().unwrap();
    let _ = killed.wait();
    let status = status_of(&config);
    assert!(
        status["notes"]
            .to_string()
            .contains("killed during its module update"),
        "{status:#}"
    );
    // The next deploy repairs through that deploy's backup, then goes on: release 2's
    // image has nothing left to update.
    let (out, report) = deploy(&config, &tags[1], &url, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("partly updated") && stderr.contains("restoring its pre-deploy backup"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the update container an interrupted deploy left running"),
        "{stderr}"
    );
    assert_eq!(
        stage(&report, "update")["summary"],
        "no module changed: nothing to update"
    );
    assert_eq!(version("shop"), "installed 17.0.1.1");
    assert_eq!(report["to"]["release"], "r2", "{report:#}");
    let left = Command::new("docker")
        .args(["ps", "-aq", "--filter"])
        .arg(format!(
            "label=com.deployment.oneoff.stack={}",
            stack.stack()
        ))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "one-off containers left"
    );
}

/// The addons `shop` at `version`, with the columns its `__fake__.toml` declares and an
/// optional migration script, as an image of the fake Odoo.
fn shop_image(tag: &str, version: &str, decl: &str, migration: Option<(&str, &str)>) {
    let addons = tempfile::tempdir().unwrap();
    write(
        addons.path(),
        "shop/__manifest__.py",
        &format!(
            "{{'name': 'Shop', 'version': '{version}', 'depends': ['base'], 'license': 'LGPL-3'}}"
        ),
    );
    write(addons.path(), "shop/__fake__.toml", decl);
    if let Some((rel, sql)) = migration {
        write(addons.path(), rel, sql);
    }
    util::fake_image_with_addons(addons.path(), tag);
}

fn column(name: &str) -> String {
    format!("[[column]]\ntable = \"res_partner\"\nname = \"{name}\"\ntype = \"varchar\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_maintenance_strategy_answers_503_during_the_update_and_puts_everything_back_on_failure(
) {
    let stack = TestStack::start(ProxyChoice::Nginx(util::NginxKind::StateFile), Slot::Blue).await;
    let db = util::ScratchDb::new("bgt_maint");
    let prefix = util::unique_prefix();
    let tags: Vec<String> = ["m1", "m2", "m3", "m4", "m5"]
        .iter()
        .map(|r| format!("{prefix}-shop:{r}"))
        .collect();
    let _images = Images(tags.clone());
    let two = format!("{}{}", column("x_shop_ref"), column("x_shop_level"));
    shop_image(&tags[0], "1.0", &column("x_shop_ref"), None);
    shop_image(
        &tags[1],
        "1.1",
        &two,
        Some((
            "shop/migrations/1.1/post-level.sql",
            "UPDATE res_partner SET x_shop_level = 'bronze';\n",
        )),
    );
    shop_image(
        &tags[2],
        "1.2",
        &format!("{two}[fail]\nstage = \"post\"\nmessage = \"KeyError: 'x_shop_tier'\"\n"),
        None,
    );
    shop_image(
        &tags[3],
        "1.2",
        &format!("{two}{}", column("x_shop_tier")),
        None,
    );
    shop_image(
        &tags[4],
        "1.3",
        &format!("{two}[fail]\nstage = \"post\"\nhang_seconds = 300\n"),
        None,
    );
    let init = util::odoo_one_off(&tags[0], &["-d", &db.0, "-i", "shop", "--stop-after-init"]);
    assert!(init.status.success(), "{}", describe(&init));

    // No strategy: maintenance is the default.
    let (config, text) =
        stack.write_pg_config(&db.0, "BGT_UPDATE_DB_URL", "[update]\ntimeout = \"2m\"\n");
    // The same stack with a check that fails after the switch, or before it.
    let failing = |at: &str| {
        let path = stack.dir.path().join(format!("stack-{at}.toml"));
        std::fs::write(
            &path,
            format!("{text}\n[[hooks]]\nname = \"smoke\"\nat = \"{at}\"\ncommand = [\"false\"]\n"),
        )
        .unwrap();
        path
    };
    let url = util::pg_url(&db.0);
    let version = |module: &str| {
        util::psql(
            &db.0,
            &format!("SELECT state || ' ' || coalesce(latest_version, '-') FROM ir_module_module WHERE name = '{module}'"),
        )
    };
    let has_column = |name: &str| {
        util::psql(
            &db.0,
            &format!("SELECT count(*) FROM information_schema.columns WHERE table_name = 'res_partner' AND column_name = '{name}'"),
        ) == "1"
    };
    let status = || status_of(&config);
    let proxy_url = stack.url();
    let deploy_under_load = |config: std::path::PathBuf, image: String| {
        let url = url.clone();
        let proxy_url = proxy_url.clone();
        async move {
            util::load_jsonrpc_while(
                &proxy_url,
                4,
                std::time::Duration::from_secs(240),
                tokio::task::spawn_blocking(move || deploy(&config, &image, &url, &[])),
            )
            .await
        }
    };

    // Release 1, the first deploy: nothing served before, so nothing is stopped.
    let (out, report) = deploy(&config, &tags[0], &url, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(
        stage(&report, "update")["details"]["strategy"],
        "maintenance"
    );
    assert!(report["maintenance"]["window_ms"].is_u64(), "{report:#}");
    assert!(report["maintenance"].get("stopped").is_none(), "{report:#}");
    let first = report["to"]["slot"].as_str().unwrap().to_owned();

    // Release 2 under load: requests get the maintenance page while the update runs,
    // none fails any other way; the window is reported and the old slot was stopped.
    let (load, done) = deploy_under_load(config.clone(), tags[1].clone()).await;
    let (out, report) = done.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(load.failed, 0, "{load:?}");
    assert!(load.maintenance > 0, "{load:?}");
    let record = &report["maintenance"];
    assert_eq!(record["stopped"], first.as_str(), "{record:#}");
    assert_eq!(record["opened"], 1, "{record:#}");
    assert!(record["window_ms"].as_u64().unwrap() > 0, "{record:#}");
    assert_eq!(version("shop"), "installed 17.0.1.1");
    assert_eq!(report["to"]["release"], "m2", "{report:#}");
    assert_eq!(status()["maintenance"], false);
    let serving_m2 = report["to"]["slot"].as_str().unwrap().to_owned();

    // Release 3's migration fails: restored by the update stage, release 2 started
    // again, maintenance off; requests only ever saw release 2 or the maintenance page.
    let (load, done) = deploy_under_load(config.clone(), tags[2].clone()).await;
    let (out, report) = done.unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(load.failed, 0, "{load:?}");
    assert_eq!(load.releases.keys().collect::<Vec<_>>(), ["m2"], "{load:?}");
    assert_eq!(
        report["maintenance"]["stopped"],
        serving_m2.as_str(),
        "{report:#}"
    );
    assert_eq!(version("shop"), "installed 17.0.1.1");
    assert!(!has_column("x_shop_tier"));
    let now = status();
    assert_eq!(now["maintenance"], false, "{now:#}");
    assert_eq!(now["serving"], serving_m2.as_str(), "{now:#}");
    assert_eq!(now["health"], "ok", "{now:#}");

    // Release 4 updates fine but a check after the switch fails: back through
    // maintenance, the pre-deploy backup restored (the new column goes), release 2 again.
    let (out, report) = deploy(&failing("after_switch"), &tags[3], &url, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(report["result"], "rolled-back", "{report:#}");
    let record = &report["maintenance"];
    assert_eq!(record["opened"], 2, "{record:#}");
    assert!(record["restored"].is_string(), "{record:#}");
    assert_eq!(version("shop"), "installed 17.0.1.1");
    assert!(!has_column("x_shop_tier"));
    let now = status();
    assert_eq!(now["serving"], serving_m2.as_str(), "{now:#}");
    assert_eq!(now["maintenance"], false, "{now:#}");

    // ... and a check before the switch fails: the same, without a switch.
    let (out, report) = deploy(&failing("before_switch"), &tags[3], &url, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(report["result"], "refused", "{report:#}");
    assert_eq!(report["maintenance"]["opened"], 1, "{report:#}");
    assert!(report["maintenance"]["restored"].is_string(), "{report:#}");
    assert_eq!(version("shop"), "installed 17.0.1.1");
    assert!(!has_column("x_shop_tier"));
    assert_eq!(status()["serving"], serving_m2.as_str());

    // An update command the image does not have: its entrypoint cannot exec it (127);
    // the update fails, the backup is restored, release 2 runs again, maintenance ends.
    let missing = stack.dir.path().join("stack-missing.toml");
    std::fs::write(
        &missing,
        text.replace(
            "[update]\n",
            "[update]\ncommand = [\"odoo-missing\", \"-d\", \"{db}\", \"-u\", \"{modules}\"]\n",
        ),
    )
    .unwrap();
    let (out, report) = deploy(&missing, &tags[3], &url, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let update = stage(&report, "update");
    assert!(
        update["summary"]
            .as_str()
            .is_some_and(|s| s.contains("status 127 (the command is not in the image")),
        "{update:#}"
    );
    assert!(
        update["details"]["log_tail"]
            .to_string()
            .contains("exec: odoo-missing: not found"),
        "{update:#}"
    );
    assert_eq!(version("shop"), "installed 17.0.1.1");
    let now = status();
    assert_eq!(now["serving"], serving_m2.as_str(), "{now:#}");
    assert_eq!(now["maintenance"], false, "{now:#}");

    // The update's own container killed with SIGKILL (the OOM killer, an operator): exit
    // 137 fails it, the backup is restored, release 2 runs again.
    let running = spawn_deploy(&config, &tags[4], &url);
    wait_until_upgrading(&db.0, "release 5");
    let one_off = Command::new("docker")
        .args(["ps", "-q", "--filter"])
        .arg(format!(
            "label=com.deployment.oneoff.stack={}",
            stack.stack()
        ))
        .output()
        .unwrap();
    let id = String::from_utf8_lossy(&one_off.stdout).trim().to_owned();
    assert!(!id.is_empty(), "no update container");
    let kill = Command::new("docker").args(["kill", &id]).output().unwrap();
    assert!(kill.status.success(), "{}", describe(&kill));
    let out = running.wait_with_output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stage(&report, "update")["summary"]
            .as_str()
            .is_some_and(|s| s.contains("exited with status 137") && s.contains("restored")),
        "{report:#}"
    );
    assert_eq!(version("shop"), "installed 17.0.1.1");
    let now = status();
    assert_eq!(now["serving"], serving_m2.as_str(), "{now:#}");
    assert_eq!(now["maintenance"], false, "{now:#}");

    // The deploy itself killed (SIGKILL) during release 5's update: the proxy stays in
    // maintenance, release 2's slot stopped, the database half updated; `status` says so.
    let mut killed = spawn_deploy(&config, &tags[4], &url);
    wait_until_upgrading(&db.0, "release 5");
    killed.kill().unwrap();
    let _ = killed.wait();
    let now = status();
    assert_eq!(now["maintenance"], true, "{now:#}");
    assert_eq!(now["health"], "degraded", "{now:#}");
    assert!(
        now["notes"]
            .to_string()
            .contains("killed during its module update"),
        "{now:#}"
    );

    // Release 4 (without the failing check) takes the maintenance over, repairs the
    // database from the killed deploy's backup, updates it and serves it.
    let (out, report) = deploy(&config, &tags[3], &url, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the proxy is in maintenance") && stderr.contains("partly updated"),
        "{stderr}"
    );
    assert_eq!(status()["maintenance"], false);
    assert_eq!(version("shop"), "installed 17.0.1.2");
    assert!(has_column("x_shop_tier"));
    assert_eq!(report["to"]["release"], "m4", "{report:#}");

    // By hand: on, shown in status (a problem when no operation runs), off.
    let manual = |state: &str| {
        Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .args(["maintenance", state, "--json"])
            .output()
            .unwrap()
    };
    let on = manual("on");
    assert_eq!(on.status.code(), Some(0), "{}", describe(&on));
    let now = status();
    assert_eq!(now["maintenance"], true, "{now:#}");
    assert!(
        now["problems"].to_string().contains("maintenance off"),
        "{now:#}"
    );
    let off = manual("off");
    assert_eq!(off.status.code(), Some(0), "{}", describe(&off));
    assert_eq!(util::stdout_json(&off)["maintenance"], false);
}

/// Three addons that depend on each other (`shop_a` <- `shop_b` <- `shop_c`), each at
/// `version` with a column of its own (`x_a_<version>`...), `fail_b` making shop_b's
/// update fail in its `post` step, as an image of the fake Odoo.
fn three_addons_image(tag: &str, version: &str, fail_b: bool) {
    let addons = tempfile::tempdir().unwrap();
    let tag_of = |v: &str| v.replace('.', "_");
    for (name, depends) in [
        ("shop_a", "'base'"),
        ("shop_b", "'shop_a'"),
        ("shop_c", "'shop_b'"),
    ] {
        write(
            addons.path(),
            &format!("{name}/__manifest__.py"),
            &format!(
                "{{'name': '{name}', 'version': '{version}', 'depends': [{depends}], 'license': 'LGPL-3'}}"
            ),
        );
        let letter = &name[5..];
        let mut decl = column(&format!("x_{letter}_{}", tag_of(version)));
        if fail_b && name == "shop_b" {
            decl.push_str("[fail]\nstage = \"post\"\nmessage = \"KeyError: 'x_b_tier'\"\n");
        }
        write(addons.path(), &format!("{name}/__fake__.toml"), &decl);
    }
    util::fake_image_with_addons(addons.path(), tag);
}

#[tokio::test]
async fn a_migration_failing_in_the_second_of_three_modules_is_undone_whole() {
    // Odoo commits each module's update on its own: when shop_b fails, shop_a is already
    // at its new version, shop_c still at its old one. The maintenance strategy (behind
    // HAProxy) restores the backup, so that neither release ever serves that database.
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let db = util::ScratchDb::new("bgt_three");
    let prefix = util::unique_prefix();
    let tags: Vec<String> = ["r1", "r2"]
        .iter()
        .map(|r| format!("{prefix}-shop3:{r}"))
        .collect();
    let _images = Images(tags.clone());
    three_addons_image(&tags[0], "1.0", false);
    three_addons_image(&tags[1], "1.1", true);
    let init = util::odoo_one_off(
        &tags[0],
        &["-d", &db.0, "-i", "shop_c", "--stop-after-init"],
    );
    assert!(init.status.success(), "{}", describe(&init));
    let (config, _) =
        stack.write_pg_config(&db.0, "BGT_UPDATE_DB_URL", "[update]\ntimeout = \"2m\"\n");
    let url = util::pg_url(&db.0);
    let versions = || {
        util::psql(
            &db.0,
            "SELECT string_agg(name || '=' || state || '@' || latest_version, ' ' ORDER BY name) FROM ir_module_module WHERE name LIKE 'shop_%'",
        )
    };
    let (out, _) = deploy(&config, &tags[0], &url, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let before = versions();
    assert_eq!(
        before,
        "shop_a=installed@17.0.1.0 shop_b=installed@17.0.1.0 shop_c=installed@17.0.1.0"
    );

    let (out, report) = deploy(&config, &tags[1], &url, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let update = stage(&report, "update");
    assert_eq!(update["result"], "refused", "{update:#}");
    // The update's own log shows the mixed database it left: shop_a loaded, shop_b
    // failed, shop_c never reached.
    let log: Vec<String> = update["details"]["log_tail"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let at = |needle: &str| log.iter().position(|l| l.contains(needle));
    assert!(
        at("Module shop_a loaded").is_some()
            && at("KeyError: 'x_b_tier'") > at("Module shop_a loaded")
            && at("Loading module shop_c").is_none(),
        "{log:#?}"
    );
    assert!(
        update["summary"]
            .as_str()
            .is_some_and(|s| s.contains("restored")),
        "{update:#}"
    );
    // Restored whole: every module at 1.0, shop_a's new column gone with its version.
    assert_eq!(versions(), before);
    assert_eq!(
        util::psql(
            &db.0,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'res_partner' AND column_name IN ('x_a_1_1', 'x_b_1_1', 'x_c_1_1')"
        ),
        "0"
    );
    // Release 1 serves again, through the proxy, out of maintenance.
    // (The update stage restored the backup itself: the window only stopped the old
    // release, and was closed, not held.)
    let maintenance = report["maintenance"].clone();
    assert_eq!(maintenance["opened"], 1, "{maintenance:#}");
    assert!(maintenance["stopped"].is_string(), "{maintenance:#}");
    assert!(maintenance.get("held").is_none(), "{maintenance:#}");
    let status = status_of(&config);
    assert!(status.to_string().contains("\"r1\""), "{status:#}");
    admin_logs_in_through(&stack, &db.0).await;
}
