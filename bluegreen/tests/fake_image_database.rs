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

/// Builds `FROM <fake image>` with `addons` copied to /mnt/extra-addons, tagged `tag`.
fn image_with_addons(addons: &Path, tag: &str) {
    let context = tempfile::tempdir().unwrap();
    let copy = Command::new("cp")
        .arg("-r")
        .arg(addons)
        .arg(context.path().join("addons"))
        .status()
        .unwrap();
    assert!(copy.success());
    std::fs::write(
        context.path().join("Dockerfile"),
        format!(
            "FROM {}\nCOPY addons /mnt/extra-addons\n",
            util::fake_image()
        ),
    )
    .unwrap();
    let out = Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(context.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
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
