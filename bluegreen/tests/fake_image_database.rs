//! The fake Odoo image does the database work as the official image does: a one-off
//! container given `odoo -d DB -i/-u ... --stop-after-init`, the database server named by
//! HOST, PORT and USER in its environment, the addons mounted at /mnt/extra-addons; the
//! container's exit status is Odoo's (255 when a module failed). The engine, the image
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
