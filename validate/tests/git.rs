//! The version checks against a git revision, on real repositories: files changed
//! without a version bump (G501), a bump that drops a field without a migration (G502).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use deploy_validate::{validate, Error, Level, Options, Severity};

const MANIFEST: &str = "{\n    'name': 'Shop',\n    'version': '17.0.1.0.0',\n    'license': 'LGPL-3',\n    'depends': ['base'],\n}\n";
const MODEL: &str = "from odoo import fields, models\n\n\nclass Item(models.Model):\n    _name = 'shop.item'\n    _description = 'Item'\n\n    name = fields.Char()\n    price = fields.Float()\n";

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// A repository with `addons/shop` (and `addons/other`) committed; returns the commit.
fn repository(root: &Path) -> (git2::Repository, String) {
    let repo = git2::Repository::init(root).unwrap();
    write(root, "addons/shop/__manifest__.py", MANIFEST);
    write(root, "addons/shop/__init__.py", "from . import models\n");
    write(
        root,
        "addons/shop/models/__init__.py",
        "from . import item\n",
    );
    write(root, "addons/shop/models/item.py", MODEL);
    write(root, "addons/shop/README.rst", "Shop\n");
    write(
        root,
        "addons/other/__manifest__.py",
        &MANIFEST.replace("'Shop'", "'Other'"),
    );
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let signature = git2::Signature::now("Dev", "dev@example.invalid").unwrap();
    let commit = repo
        .commit(
            Some("HEAD"),
            &signature,
            &signature,
            "shop 1.0.0",
            &tree,
            &[],
        )
        .unwrap();
    drop(tree);
    (repo, commit.to_string())
}

fn run(root: &Path, since: &str) -> Result<Vec<(String, String, u32, Severity)>, Error> {
    let mut options = Options::new(Level::Comprehensive, "17.0");
    options.since = Some(since.to_owned());
    let report = validate(&[root.join("addons")], &options)?;
    Ok(report
        .findings
        .into_iter()
        .map(|f| (f.code, f.file, f.line, f.severity))
        .collect())
}

#[test]
fn nothing_changed_is_nothing_to_bump() {
    let dir = tempfile::tempdir().unwrap();
    let (_repo, head) = repository(dir.path());
    assert_eq!(run(dir.path(), &head).unwrap(), []);
    assert_eq!(run(dir.path(), "HEAD").unwrap(), []);
}

#[test]
fn a_change_without_a_bump_is_an_error_on_the_version_line() {
    let dir = tempfile::tempdir().unwrap();
    let (_repo, head) = repository(dir.path());
    write(dir.path(), "addons/shop/README.rst", "Shop, changed\n");
    let found = run(dir.path(), &head).unwrap();
    assert_eq!(
        found,
        [(
            "G501".to_owned(),
            "shop/__manifest__.py".to_owned(),
            3,
            Severity::Error
        )]
    );
    // A new file, not yet added to git, is a change too; the other addon is untouched.
    write(dir.path(), "addons/shop/README.rst", "Shop\n");
    write(dir.path(), "addons/shop/data/new.xml", "<odoo/>\n");
    assert_eq!(run(dir.path(), &head).unwrap().len(), 1);
}

#[test]
fn a_bump_that_drops_a_field_wants_a_migration() {
    let dir = tempfile::tempdir().unwrap();
    let (_repo, head) = repository(dir.path());
    write(
        dir.path(),
        "addons/shop/__manifest__.py",
        &MANIFEST.replace("17.0.1.0.0", "17.0.1.1.0"),
    );
    write(
        dir.path(),
        "addons/shop/models/item.py",
        &MODEL.replace("price = fields.Float()", "list_price = fields.Float()"),
    );
    let found = run(dir.path(), &head).unwrap();
    assert_eq!(
        found,
        [(
            "G502".to_owned(),
            "shop/__manifest__.py".to_owned(),
            3,
            Severity::Warning
        )]
    );
    let mut options = Options::new(Level::Comprehensive, "17.0");
    options.since = Some(head.clone());
    let report = validate(&[dir.path().join("addons")], &options).unwrap();
    assert!(report.passed(), "a warning does not fail the run");
    assert!(report.findings[0].message.contains("shop.item.price"));

    write(
        dir.path(),
        "addons/shop/migrations/17.0.1.1.0/pre-migrate.py",
        "def migrate(cr, version):\n    cr.execute('ALTER TABLE shop_item RENAME price TO list_price')\n",
    );
    assert_eq!(run(dir.path(), &head).unwrap(), []);
}

#[test]
fn an_addon_new_since_the_revision_has_nothing_to_compare() {
    let dir = tempfile::tempdir().unwrap();
    let (_repo, head) = repository(dir.path());
    write(
        dir.path(),
        "addons/fresh/__manifest__.py",
        &MANIFEST.replace("'Shop'", "'Fresh'"),
    );
    assert_eq!(run(dir.path(), &head).unwrap(), []);
}

#[test]
fn a_revision_that_does_not_resolve_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let _ = repository(dir.path());
    let err = run(dir.path(), "v9.9.9").unwrap_err();
    assert!(matches!(err, Error::Git(_)), "{err}");
    assert!(err.to_string().contains("v9.9.9"), "{err}");
}

#[test]
fn outside_a_repository_since_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "addons/shop/__manifest__.py", MANIFEST);
    let err = run(dir.path(), "HEAD").unwrap_err();
    assert!(matches!(err, Error::Git(_)), "{err}");
}
