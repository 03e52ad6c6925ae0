//! The fake Odoo image does the database work as the official image does: a one-off
//! container given `odoo -d DB -i/-u ... --stop-after-init`, the database server named by
//! HOST, PORT and USER in its environment, the addons mounted at /mnt/extra-addons; the
//! container's exit status is Odoo's (255 when a module failed); and without
//! `--stop-after-init` the same image serves that database over RPC. The engine, the image
//! and PostgreSQL are real; the container shares the host's network to reach the test
//! cluster on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use deploy_test_support as util;

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `docker run --rm --network host` of the fake image as a one-off container.
fn one_off(addons: &Path, args: &[&str]) -> Output {
    let (user, host, port) = util::pg_server();
    Command::new("docker")
        .args(["run", "--rm", "--network", "host"])
        .args(["-e", &format!("HOST={host}"), "-e", &format!("PORT={port}")])
        .args([
            "-e",
            &format!("USER={user}"),
            "-e",
            "PASSWORD=unused-with-trust",
        ])
        .arg("-v")
        .arg(format!("{}:/mnt/extra-addons:ro", addons.display()))
        .arg(util::fake_image())
        .args(["odoo", "--odoo-version", "17.0"])
        .args(args)
        .output()
        .unwrap()
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_one_off_container_of_the_image_installs_and_updates_modules_with_odoos_exit_status() {
    let addons = tempfile::tempdir().unwrap();
    let root = addons.path();
    write(
        root,
        "shop/__manifest__.py",
        "{'name': 'Shop', 'version': '1.0', 'depends': ['base'], 'license': 'LGPL-3'}",
    );
    write(
        root,
        "shop/__fake__.toml",
        "[[column]]\ntable = \"res_partner\"\nname = \"x_shop_ref\"\ntype = \"varchar\"\n",
    );
    let db = util::ScratchDb::new("fake_image");

    let out = one_off(
        root,
        &[
            "-d",
            &db.0,
            "-i",
            "shop",
            "--stop-after-init",
            "--no-http",
            "--workers",
            "0",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(
        util::psql(
            &db.0,
            "SELECT state || ' ' || latest_version FROM ir_module_module WHERE name = 'shop'"
        ),
        "installed 17.0.1.0"
    );
    assert_eq!(
        util::psql(&db.0, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'res_partner' AND column_name = 'x_shop_ref'"),
        "1"
    );
    // A failing update: the container exits 255, the module keeps its version.
    write(
        root,
        "shop/__manifest__.py",
        "{'name': 'Shop', 'version': '1.1', 'depends': ['base'], 'license': 'LGPL-3'}",
    );
    write(
        root,
        "shop/__fake__.toml",
        "[fail]\nstage = \"data\"\nmessage = \"ParseError: while parsing shop/views/shop.xml\"\n",
    );
    let out = one_off(root, &["-d", &db.0, "-u", "shop", "--stop-after-init"]);
    assert_eq!(out.status.code(), Some(255), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ParseError"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        util::psql(
            &db.0,
            "SELECT state || ' ' || latest_version FROM ir_module_module WHERE name = 'shop'"
        ),
        "installed 17.0.1.0"
    );
    // Fixed: the update goes through.
    std::fs::remove_file(root.join("shop/__fake__.toml")).unwrap();
    let out = one_off(root, &["-d", &db.0, "-u", "shop", "--stop-after-init"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(
        util::psql(
            &db.0,
            "SELECT latest_version FROM ir_module_module WHERE name = 'shop'"
        ),
        "17.0.1.1"
    );
}

fn image_with_addons(addons: &Path, tag: &str) {
    util::fake_image_with_addons(addons, tag);
}

#[tokio::test]
async fn the_checksums_read_from_an_image_are_those_of_its_addon_folders() {
    use deploy_bluegreen::addons::{addon_checksums_in_dir, ChecksumRules};
    let addons = tempfile::tempdir().unwrap();
    let root = addons.path();
    write(
        root,
        "shop/__manifest__.py",
        "{'name': 'Shop', 'version': '1.0'}",
    );
    write(root, "shop/models/shop.py", "class Shop: pass\n");
    write(root, "shop/static/src/shop.js", "console.log(1)\n");
    write(
        root,
        "shop_sale/__manifest__.py",
        "{'name': 'Shop sale', 'depends': ['shop']}",
    );
    write(root, "not_an_addon/README", "no manifest here\n");
    let tag = format!("{}-addons:test", util::unique_prefix());
    image_with_addons(root, &tag);
    let docker = util::docker().await;
    let rules = ChecksumRules::default();
    let from_image = docker.image_addons(&tag, "/mnt/extra-addons", &rules).await;
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
    let from_image = from_image.unwrap();
    let from_dir = addon_checksums_in_dir(root, &rules).unwrap();
    assert_eq!(from_image.keys().collect::<Vec<_>>(), ["shop", "shop_sale"]);
    assert_eq!(from_image, from_dir);
    // No container is left behind.
    let left = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            "label=com.deployment.role=addons-reader",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&left.stdout).trim().is_empty());
    // A missing image is an error naming it.
    let missing = docker
        .image_addons("no-such-image-for-addons:1", "/mnt/extra-addons", &rules)
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("no-such-image-for-addons:1"),
        "{missing}"
    );
}

/// A JSON-RPC `execute_kw` (or `common.login`) on a serving container.
async fn rpc(url: &str, service: &str, method: &str, args: serde_json::Value) -> serde_json::Value {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "method": "call", "id": 1,
        "params": {"service": service, "method": method, "args": args},
    });
    reqwest::Client::new()
        .post(format!("{url}/jsonrpc"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_image_serves_its_database_from_postgresql_with_the_official_environment() {
    let addons = tempfile::tempdir().unwrap();
    let root = addons.path();
    write(
        root,
        "shop/__manifest__.py",
        "{'name': 'Shop', 'version': '1.0', 'depends': ['base'], 'license': 'LGPL-3'}",
    );
    write(
        root,
        "shop/__fake__.toml",
        "[[column]]\ntable = \"res_partner\"\nname = \"x_shop_ref\"\ntype = \"varchar\"\n",
    );
    let db = util::ScratchDb::new("fake_image_serve");
    let (user, host, port) = util::pg_server();
    let http = util::free_port();
    let name = format!("fake-serve-{}", util::unique_prefix());
    // As a stack file runs the official image: HOST/PORT/USER, addons at
    // /mnt/extra-addons, `odoo -d DB -i MODS` (init, then serve).
    let out = Command::new("docker")
        .args(["run", "-d", "--name", &name, "--network", "host"])
        .args(["-e", &format!("HOST={host}"), "-e", &format!("PORT={port}")])
        .args([
            "-e",
            &format!("USER={user}"),
            "-e",
            "PASSWORD=unused-with-trust",
        ])
        .arg("-v")
        .arg(format!("{}:/mnt/extra-addons:ro", root.display()))
        .arg(util::fake_image())
        .args(["odoo", "--odoo-version", "17.0", "-d", &db.0, "-i", "shop"])
        .args([
            "--http-interface",
            "127.0.0.1",
            "--http-port",
            &http.to_string(),
        ])
        .args(["--max-cron-threads", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let remove = || {
        let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    };
    let url = format!("http://127.0.0.1:{http}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let login = loop {
        let answer = reqwest::Client::new()
            .post(format!("{url}/jsonrpc"))
            .json(&serde_json::json!({"jsonrpc": "2.0", "method": "call", "id": 1,
                "params": {"service": "common", "method": "login", "args": [db.0, "admin", "admin"]}}))
            .send()
            .await;
        if let Ok(answer) = answer {
            break answer.json::<serde_json::Value>().await.unwrap();
        }
        if std::time::Instant::now() > deadline {
            let logs = Command::new("docker")
                .args(["logs", &name])
                .output()
                .unwrap();
            remove();
            panic!("the container did not serve: {}", describe(&logs));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(login["result"], 2, "{login}");
    let created = rpc(
        &url,
        "object",
        "execute_kw",
        serde_json::json!([db.0, 2, "admin", "res.partner", "create", [{"name": "Served", "x_shop_ref": "S-1"}]]),
    )
    .await;
    remove();
    let id = created["result"]
        .as_i64()
        .unwrap_or_else(|| panic!("{created}"));
    assert_eq!(
        util::psql(
            &db.0,
            &format!("SELECT name || ' ' || x_shop_ref FROM res_partner WHERE id = {id}")
        ),
        "Served S-1"
    );
    assert_eq!(
        util::psql(
            &db.0,
            "SELECT state FROM ir_module_module WHERE name = 'shop'"
        ),
        "installed"
    );
}

/// `shop` and `shop_sale` at the versions given, with `shop`'s declaration.
fn shop_release(root: &Path, shop_version: &str, shop_decl: &str) {
    write(
        root,
        "shop/__manifest__.py",
        &format!("{{'name': 'Shop', 'version': '{shop_version}', 'depends': ['base'], 'license': 'LGPL-3'}}"),
    );
    write(root, "shop/__fake__.toml", shop_decl);
    write(
        root,
        "shop_sale/__manifest__.py",
        "{'name': 'Shop sale', 'version': '1.0', 'depends': ['shop'], 'license': 'LGPL-3'}",
    );
}

#[tokio::test]
async fn a_module_update_runs_in_a_one_off_container_and_is_checked_against_the_database() {
    use deploy_bluegreen::addons::ChecksumRules;
    use deploy_bluegreen::slot::{Slot, SlotSpec};
    use deploy_bluegreen::update::{self, ModuleSelection, UpdateError, UpdateSettings};

    let prefix = util::unique_prefix();
    let tags: Vec<String> = ["v1", "v2", "v3", "v4"]
        .iter()
        .map(|v| format!("{prefix}-update-{v}:test"))
        .collect();
    /// Removes the test's images, also when an assertion fails.
    struct Images(Vec<String>);
    impl Drop for Images {
        fn drop(&mut self) {
            for tag in &self.0 {
                let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
            }
        }
    }
    let _images = Images(tags.clone());
    let column = |name: &str| {
        format!("[[column]]\ntable = \"res_partner\"\nname = \"{name}\"\ntype = \"varchar\"\n")
    };
    for (tag, version, decl) in [
        (&tags[0], "1.0", column("x_shop_ref")),
        (
            &tags[1],
            "1.1",
            format!("{}{}", column("x_shop_ref"), column("x_shop_level")),
        ),
        (
            &tags[2],
            "1.2",
            "[fail]\nstage = \"post\"\nmessage = \"KeyError: 'x_shop_level'\"\n".to_owned(),
        ),
        (
            &tags[3],
            "1.2",
            "[fail]\nstage = \"post\"\nhang_seconds = 120\n".to_owned(),
        ),
    ] {
        let addons = tempfile::tempdir().unwrap();
        shop_release(addons.path(), version, &decl);
        if version == "1.1" {
            write(
                addons.path(),
                "shop/migrations/1.1/post-level.sql",
                "UPDATE res_partner SET x_shop_level = 'bronze';\n",
            );
        }
        image_with_addons(addons.path(), tag);
    }
    let docker = util::docker().await;
    let (user, host, port) = util::pg_server();
    let db = util::ScratchDb::new("fake_update");
    let url = secrecy::SecretString::from(format!("postgres://{user}@{host}:{port}/{}", db.0));
    let spec = |tag: &str| {
        let mut spec = SlotSpec::new(&prefix, Slot::Green, tag, "next");
        spec.network = Some("host".to_owned());
        spec.env.insert("HOST".into(), host.clone());
        spec.env.insert("PORT".into(), port.to_string());
        spec.env.insert("USER".into(), user.clone());
        spec
    };
    let rules = ChecksumRules::default();
    let settings = UpdateSettings::default();
    let mut log = Vec::<String>::new();

    // A database that does not exist is refused before anything runs.
    let info = docker
        .image_addon_info(&tags[0], "/mnt/extra-addons", &rules)
        .await
        .unwrap();
    let empty = update::plan(&db.0, &ModuleSelection::Default, &[], &[], None, &info).unwrap();
    let err = update::run(
        &docker,
        &spec(&tags[0]),
        &url,
        &settings,
        &empty,
        &mut |l| log.push(l.to_owned()),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, UpdateError::NoSuchDatabase { .. }), "{err}");

    // Release 1 installed (Odoo's own -i, as a one-off of the same image).
    let init = docker
        .run_one_off(
            &spec(&tags[0]),
            &["odoo", "-d", &db.0, "-i", "shop_sale", "--stop-after-init"].map(str::to_owned),
            std::time::Duration::from_secs(120),
            &mut |l| log.push(l.to_owned()),
        )
        .await
        .unwrap();
    assert_eq!(init.exit_code, Some(0), "{}", log.join("\n"));
    assert!(
        log.iter().any(|l| l.contains("Loading module shop_sale")),
        "the log is streamed: {log:?}"
    );

    // The first update has no stored checksums: every installed module, and it says so.
    let (client, _) = update::connect(&url).await.unwrap();
    let modules = update::read_modules(&client, &db.0).await.unwrap();
    let stored = update::stored_checksums(&client, &db.0).await.unwrap();
    assert!(stored.is_none());
    let first = update::plan(&db.0, &ModuleSelection::Default, &[], &modules, None, &info).unwrap();
    assert!(first.first_run);
    assert_eq!(first.update, ["base", "shop", "shop_sale", "web"]);
    let done = update::run(
        &docker,
        &spec(&tags[0]),
        &url,
        &settings,
        &first,
        &mut |_| {},
    )
    .await
    .unwrap();
    assert!(done.succeeded(), "{:?}", done.problems);
    assert!(
        done.checksums_stored && done.signal_bumped,
        "17.0 needs the signal bumped: {done:?}"
    );

    // Release 2 changes shop only: only shop is updated; its migration ran.
    let info2 = docker
        .image_addon_info(&tags[1], "/mnt/extra-addons", &rules)
        .await
        .unwrap();
    let modules = update::read_modules(&client, &db.0).await.unwrap();
    let stored = update::stored_checksums(&client, &db.0).await.unwrap();
    let second = update::plan(
        &db.0,
        &ModuleSelection::Default,
        &[],
        &modules,
        stored.as_ref(),
        &info2,
    )
    .unwrap();
    assert_eq!(second.update, ["shop"], "{:?}", second.reasons);
    assert!(
        second.reasons["shop"].starts_with("checksum "),
        "{:?}",
        second.reasons
    );
    let signal_before = util::psql(&db.0, "SELECT last_value FROM base_registry_signaling");
    let done = update::run(
        &docker,
        &spec(&tags[1]),
        &url,
        &settings,
        &second,
        &mut |_| {},
    )
    .await
    .unwrap();
    assert!(done.succeeded(), "{:?}", done.problems);
    assert_eq!(
        util::psql(
            &db.0,
            "SELECT latest_version FROM ir_module_module WHERE name = 'shop'"
        ),
        "17.0.1.1"
    );
    assert_eq!(
        util::psql(
            &db.0,
            "SELECT count(DISTINCT x_shop_level) FROM res_partner"
        ),
        "1"
    );
    assert_ne!(
        util::psql(&db.0, "SELECT last_value FROM base_registry_signaling"),
        signal_before
    );
    // Nothing changed since: nothing to update.
    let stored = update::stored_checksums(&client, &db.0).await.unwrap();
    let modules = update::read_modules(&client, &db.0).await.unwrap();
    let again = update::plan(
        &db.0,
        &ModuleSelection::Default,
        &[],
        &modules,
        stored.as_ref(),
        &info2,
    )
    .unwrap();
    assert!(again.is_empty(), "{:?}", again.reasons);

    // Release 3's migration fails: exit 255, the database keeps 1.1, the checksums stay
    // release 2's (the next deploy tries again).
    let info3 = docker
        .image_addon_info(&tags[2], "/mnt/extra-addons", &rules)
        .await
        .unwrap();
    let third = update::plan(
        &db.0,
        &ModuleSelection::Default,
        &[],
        &modules,
        stored.as_ref(),
        &info3,
    )
    .unwrap();
    let mut failed_log = Vec::new();
    let failed = update::run(
        &docker,
        &spec(&tags[2]),
        &url,
        &settings,
        &third,
        &mut |l| failed_log.push(l.to_owned()),
    )
    .await
    .unwrap();
    assert!(!failed.succeeded());
    assert_eq!(failed.exit_code, Some(255));
    assert!(
        failed.problems[0].contains("exited with status 255"),
        "{:?}",
        failed.problems
    );
    assert!(
        failed
            .problems
            .iter()
            .any(|p| p.contains("the image has 17.0.1.2")),
        "{:?}",
        failed.problems
    );
    assert!(
        failed_log.iter().any(|l| l.contains("KeyError")),
        "{failed_log:?}"
    );
    assert!(!failed.checksums_stored);
    assert_eq!(
        update::stored_checksums(&client, &db.0).await.unwrap(),
        stored
    );

    // Release 4 hangs: killed at the timeout, reported, no container left behind.
    let info4 = docker
        .image_addon_info(&tags[3], "/mnt/extra-addons", &rules)
        .await
        .unwrap();
    let fourth = update::plan(
        &db.0,
        &ModuleSelection::Default,
        &[],
        &modules,
        stored.as_ref(),
        &info4,
    )
    .unwrap();
    let short = UpdateSettings {
        timeout: std::time::Duration::from_secs(4),
        ..UpdateSettings::default()
    };
    let hung = update::run(&docker, &spec(&tags[3]), &url, &short, &fourth, &mut |_| {})
        .await
        .unwrap();
    assert!(hung.timed_out && !hung.succeeded(), "{hung:?}");
    assert!(
        hung.problems[0].contains("killed after 4 s"),
        "{:?}",
        hung.problems
    );
    assert!(
        hung.problems
            .iter()
            .any(|p| p.contains("left 'to upgrade'")),
        "a killed update leaves its states: {:?}",
        hung.problems
    );

    // A command the image does not know fails the update with the image's own message
    // (the official image's entrypoint, like the fake's, execs the command it is given).
    let missing = UpdateSettings {
        command: vec!["no-such-command".into()],
        ..UpdateSettings::default()
    };
    let mut missing_log = Vec::new();
    let refused = update::run(
        &docker,
        &spec(&tags[1]),
        &url,
        &missing,
        &second,
        &mut |l| missing_log.push(l.to_owned()),
    )
    .await
    .unwrap();
    let left = Command::new("docker")
        .args(["ps", "-aq", "--filter", "label=com.deployment.role=one-off"])
        .output()
        .unwrap();
    assert!(
        !refused.succeeded() && !refused.checksums_stored,
        "{refused:?}"
    );
    // As the official image: its entrypoint execs a first word that is not `odoo` or an
    // option, and bash's exec of a missing command exits 127.
    assert_eq!(refused.exit_code, Some(127), "{missing_log:?}");
    assert!(
        missing_log
            .iter()
            .any(|l| l.contains("exec: no-such-command: not found")),
        "{missing_log:?}"
    );
    assert!(
        refused.problems[0].contains("the command is not in the image"),
        "{refused:?}"
    );
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "one-off containers left"
    );
}
