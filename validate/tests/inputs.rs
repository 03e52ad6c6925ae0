//! Bad input: what cannot be checked is an error naming the path; what is broken in an
//! addon is a finding, never a crash or a silent pass.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use deploy_validate::{validate, Baseline, Error, Level, Options};

const MANIFEST: &str = "{'name': 'Shop', 'version': '17.0.1.0.0', 'license': 'LGPL-3', 'depends': ['base'], 'data': ['views/a.xml']}\n";

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

fn codes(root: &Path, level: Level) -> Vec<(String, String, u32)> {
    let report = validate(&[root.to_path_buf()], &Options::new(level, "17.0")).unwrap();
    report
        .findings
        .into_iter()
        .map(|f| (f.code, f.file, f.line))
        .collect()
}

#[test]
fn a_path_that_is_not_a_folder_or_holds_no_addon_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = validate(&[&missing], &Options::new(Level::Fast, "17.0")).unwrap_err();
    assert!(matches!(err, Error::NotAFolder { .. }));
    assert!(err.to_string().contains("nope"), "{err}");
    write(dir.path(), "README.md", b"no addons here\n");
    let err = validate(
        &[dir.path().to_path_buf()],
        &Options::new(Level::Fast, "17.0"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::NoAddons { .. }), "{err}");
    let err = validate(
        &[dir.path().to_path_buf()],
        &Options::new(Level::Fast, "seventeen"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Series(_)), "{err}");
}

#[test]
fn files_that_are_not_utf8_are_findings_on_their_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "shop/__manifest__.py", MANIFEST.as_bytes());
    write(
        dir.path(),
        "shop/views/a.xml",
        b"<odoo>\n<!-- caf\xe9 -->\n</odoo>\n",
    );
    write(dir.path(), "shop/models.py", b"# ok\nname = '\xff'\n");
    assert_eq!(
        codes(dir.path(), Level::Fast),
        [
            ("P401".to_owned(), "shop/models.py".to_owned(), 2),
            ("X201".to_owned(), "shop/views/a.xml".to_owned(), 2),
        ]
    );
    write(dir.path(), "shop/__manifest__.py", b"{'name': '\xe9'}\n");
    let found = codes(dir.path(), Level::Fast);
    assert!(found.contains(&("M102".to_owned(), "shop/__manifest__.py".to_owned(), 1)));
}

#[test]
fn an_empty_or_truncated_file_is_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "shop/__manifest__.py", b"");
    write(
        dir.path(),
        "other/__manifest__.py",
        b"{'name': 'Other',\n 'depends': [\n",
    );
    write(dir.path(), "third/__manifest__.py", MANIFEST.as_bytes());
    write(
        dir.path(),
        "third/views/a.xml",
        b"<odoo>\n  <record id=\"a\" model=\"ir.ui.view\">\n",
    );
    let found = codes(dir.path(), Level::Bulletproof);
    let found: Vec<(&str, &str)> = found
        .iter()
        .map(|(c, f, _)| (c.as_str(), f.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("M102", "other/__manifest__.py"),
            ("M102", "shop/__manifest__.py"),
            ("X201", "third/views/a.xml"),
        ]
    );
}

#[test]
fn a_baseline_acknowledges_a_secret_by_file_and_value_not_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("addons");
    write(
        &root,
        "shop/__manifest__.py",
        MANIFEST.replace(", 'data': ['views/a.xml']", "").as_bytes(),
    );
    write(
        &root,
        "shop/tools/sync.py",
        b"import os\nSMTP_PASSWORD = 'Qz7!vR2#mK9p'\n",
    );
    let first = validate(&[&root], &Options::new(Level::Fast, "17.0")).unwrap();
    assert_eq!(first.findings.len(), 1);
    assert!(!first.findings[0].message.contains("Qz7!vR2#mK9p"));
    let baseline = dir.path().join("secrets.baseline");
    std::fs::write(&baseline, Baseline::render(&first.findings)).unwrap();
    let mut options = Options::new(Level::Fast, "17.0");
    options.secrets_baseline = Some(baseline.clone());

    // The same secret two lines further down: still acknowledged.
    write(
        &root,
        "shop/tools/sync.py",
        b"import os\n\n\nSMTP_PASSWORD = 'Qz7!vR2#mK9p'\n",
    );
    let moved = validate(&[&root], &options).unwrap();
    assert!(moved.passed(), "{:?}", moved.findings);
    assert_eq!(moved.acknowledged, 1);

    // A new secret is not.
    write(
        &root,
        "shop/tools/sync.py",
        b"SMTP_PASSWORD = 'Pw9#kL2!xV7q'\n",
    );
    let changed = validate(&[&root], &options).unwrap();
    assert!(!changed.passed());
    assert_eq!(changed.acknowledged, 0);

    std::fs::write(&baseline, "S601 only-two-words\n").unwrap();
    let err = validate(&[root], &options).unwrap_err();
    assert!(matches!(err, Error::Baseline { line: 1, .. }), "{err}");
}

#[test]
fn addons_on_the_addons_path_satisfy_references_but_are_not_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("mine");
    let theirs = dir.path().join("theirs");
    write(&mine, "shop/__manifest__.py", b"{'name': 'Shop', 'version': '17.0.1.0.0', 'license': 'LGPL-3', 'depends': ['sale'], 'data': ['views/a.xml']}\n");
    write(&mine, "shop/views/a.xml", b"<odoo>\n  <record id=\"v\" model=\"ir.ui.view\">\n    <field name=\"model\">sale.order</field>\n    <field name=\"inherit_id\" ref=\"sale.view_order_form\"/>\n  </record>\n</odoo>\n");
    // `sale` as another repository has it: a short version (not checked), a model, a view.
    write(
        &theirs,
        "sale/__manifest__.py",
        b"{'name': 'Sales', 'version': '1.2', 'depends': ['mail'], 'data': ['views/sale.xml']}\n",
    );
    write(&theirs, "sale/__init__.py", b"from . import models\n");
    write(
        &theirs,
        "sale/models.py",
        b"from odoo import models\n\n\nclass SaleOrder(models.Model):\n    _name = 'sale.order'\n",
    );
    write(&theirs, "sale/views/sale.xml", b"<odoo>\n  <record id=\"view_order_form\" model=\"ir.ui.view\">\n    <field name=\"model\">sale.order</field>\n  </record>\n</odoo>\n");
    let without = validate(&[&mine], &Options::new(Level::Bulletproof, "17.0")).unwrap();
    let codes: Vec<&str> = without.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(codes, ["M109"], "{:?}", without.findings);
    let mut options = Options::new(Level::Bulletproof, "17.0");
    options.addons_path.push(theirs.clone());
    let with = validate(&[&mine], &options).unwrap();
    assert!(with.passed(), "{:?}", with.findings);
    assert_eq!(with.addons.len(), 1, "only the checked addons are reported");

    // Now the reference is wrong, and the sources say so.
    write(&mine, "shop/views/a.xml", b"<odoo>\n  <record id=\"v\" model=\"ir.ui.view\">\n    <field name=\"model\">sale.order</field>\n    <field name=\"inherit_id\" ref=\"sale.view_order_tree\"/>\n  </record>\n</odoo>\n");
    let wrong = validate(&[mine], &options).unwrap();
    let found: Vec<(&str, u32)> = wrong
        .findings
        .iter()
        .map(|f| (f.code.as_str(), f.line))
        .collect();
    assert_eq!(found, [("X203", 4)]);
}
