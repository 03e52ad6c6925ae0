//! `odoo-bluegreen runbook`: the example stack file's runbook, on stdout and into a file,
//! is the committed `bluegreen/examples/RUNBOOK.md`, and holds no secret value.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_odoo-bluegreen");

/// `odoo-bluegreen --config CONFIG runbook EXTRA...`.
fn runbook(config: &Path, extra: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("runbook")
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn the_runbook_command_writes_the_examples_runbook() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bluegreen/examples");
    let committed = std::fs::read_to_string(examples.join("RUNBOOK.md")).unwrap();
    let out = runbook(&examples.join("stack.toml"), &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("RUNBOOK.md");
    let out = runbook(
        &examples.join("stack.toml"),
        &["--output".as_ref(), file.as_os_str()],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), committed);
    // The example's secrets are named by where they come from.
    for named in [
        "`PASSWORD` is in environment variable `SHOP_DB_PASSWORD`",
        "password is in environment variable `ODOO_PASSWORD`",
        "database URL is in environment variable `SHOP_BACKUP_DB_URL`",
    ] {
        assert!(committed.contains(named), "{named}");
    }
    // A plaintext secret in a stack file is not shown either.
    let stack = std::fs::read_to_string(examples.join("stack.toml"))
        .unwrap()
        .replace(
            "secret_env = { PASSWORD = { env = \"SHOP_DB_PASSWORD\" } }",
            "secret_env = { PASSWORD = { plain = \"hunter2-secret\", allow_plaintext = true } }",
        );
    assert!(stack.contains("hunter2-secret"));
    let plain = tempfile::tempdir().unwrap();
    std::fs::write(plain.path().join("stack.toml"), stack).unwrap();
    let out = runbook(&plain.path().join("stack.toml"), &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("`PASSWORD` is in plaintext in the configuration"));
    // An unwritable output is an error naming the file.
    let out = runbook(
        &examples.join("stack.toml"),
        &["--output".as_ref(), "/nonexistent/dir/RUNBOOK.md".as_ref()],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dir/RUNBOOK.md"));
}
