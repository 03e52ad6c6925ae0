//! Our addon checksums are click-odoo-contrib's (the ones it and OCA's
//! `module_auto_update` store in `module_auto_update.installed_checksums`): the same
//! addon trees hashed by its own Python code (`click_odoo_contrib._addon_hash`, from PyPI,
//! run unchanged by the python of `DEPLOY_TEST_PYTHON`, which scripts/test.sh sets) and by
//! ours give the same digests, with the default exclusions and with kept languages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use deploy_bluegreen::addons::{addon_checksums_in_dir, ChecksumRules, DEFAULT_EXCLUDES};

fn python() -> String {
    std::env::var("DEPLOY_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "DEPLOY_TEST_PYTHON is not set: this test runs click-odoo-contrib's own checksum; \
             scripts/test.sh installs it into target/pyclients and sets the variable \
             (or: DEPLOY_TEST_PYTHON=target/pyclients/bin/python after `bash -c '. scripts/lib.sh; py_clients_ensure'`)"
        )
    })
}

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn theirs(addon: &Path, keep_langs: &[&str]) -> String {
    let script = "import json, sys\nfrom click_odoo_contrib._addon_hash import addon_hash\nprint(addon_hash(sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])))";
    let excludes = serde_json::to_string(&DEFAULT_EXCLUDES).unwrap();
    let langs = serde_json::to_string(keep_langs).unwrap();
    let out = Command::new(python())
        .args(["-c", script])
        .arg(addon)
        .args([&excludes, &langs])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "click-odoo-contrib's addon_hash failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn our_checksums_are_click_odoo_contribs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let files: [(&str, &[u8]); 14] = [
        (
            "shop/__manifest__.py",
            b"{'name': 'Shop', 'version': '17.0.1.0.0'}",
        ),
        ("shop/__init__.py", b"from . import models\n"),
        (
            "shop/z_last.py",
            b"# a file of the top folder after the folders' names\n",
        ),
        ("shop/models/__init__.py", b""),
        (
            "shop/models/shop.py",
            "class Shop: name = 'caf\u{e9}'\n".as_bytes(),
        ),
        ("shop/models/shop.pyc", b"\x00\x01binary"),
        ("shop/views/a/b/deep.xml", b"<odoo/>"),
        ("shop/static/src/shop.js", b"console.log(1)"),
        ("shop/tests/test_shop.py", b"def test(): pass"),
        ("shop/i18n/shop.pot", b"msgid \"\""),
        ("shop/i18n/fr.po", b"msgid \"a\"\nmsgstr \"b\""),
        ("shop/i18n/fr_BE.po", b"msgid \"a\"\nmsgstr \"c\""),
        ("shop/i18n/de.po", b"msgid \"a\"\nmsgstr \"d\""),
        ("shop/i18n_extra/nl.po", b"msgid \"a\"\nmsgstr \"e\""),
    ];
    for (path, bytes) in files {
        write(root, path, bytes);
    }
    write(root, "empty_addon/__manifest__.py", b"{}");
    for keep in [&[][..], &["fr_BE"][..], &["de", "nl_NL"][..]] {
        let rules = ChecksumRules {
            keep_langs: keep.iter().map(|l| (*l).to_owned()).collect(),
            ..ChecksumRules::default()
        };
        let ours = addon_checksums_in_dir(root, &rules).unwrap();
        for addon in ["shop", "empty_addon"] {
            assert_eq!(
                ours[addon],
                theirs(&root.join(addon), keep),
                "{addon} with keep_langs {keep:?}"
            );
        }
    }
}
