//! The `odoo-rpc` binary against the fake Odoo: every command, every exit code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

use odoo_fixtures::{FakeOdoo, OdooVersion};
use serde_json::{json, Value};

const SECRET: &str = "s3cret-pass-xyz";

async fn fake(version: OdooVersion) -> FakeOdoo {
    FakeOdoo::builder()
        .version(version)
        .database("demo")
        .user("admin", SECRET)
        .api_key("admin", "api-key-0123456789")
        .release("blue")
        .start()
        .await
        .expect("start fake odoo")
}

/// Runs the binary with the connection settings in the environment, as a pipeline would.
async fn odoo_rpc(url: &str, password: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_odoo-rpc"))
        .args(args)
        .env("ODOO_URL", url)
        .env("ODOO_DB", "demo")
        .env("ODOO_USER", "admin")
        .env("ODOO_PASSWORD", password)
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("run odoo-rpc")
}

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not JSON ({err}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn assert_no_secret(out: &Output) {
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(!text.contains(SECRET), "the password leaked: {text}");
    }
}

#[tokio::test]
async fn every_command_works_on_every_version() {
    for version in [
        OdooVersion::V16,
        OdooVersion::V17,
        OdooVersion::V18,
        OdooVersion::V19,
    ] {
        let fake = fake(version).await;
        let url = fake.uri();

        let out = odoo_rpc(&url, SECRET, &["version"]).await;
        let v = stdout_json(&out);
        deploy_test_support::assert_schema("rpc-version", &v);
        assert_eq!(v["server_serie"], json!(version.to_string()), "{version}");
        assert_eq!(v["release"], json!("blue"));

        let out = odoo_rpc(&url, SECRET, &["health", "--db-status"]).await;
        let v = stdout_json(&out);
        deploy_test_support::assert_schema("rpc-health", &v);
        assert_eq!(v["status"], "pass");

        let out = odoo_rpc(&url, SECRET, &["db-list"]).await;
        assert_eq!(stdout_json(&out), json!(["demo"]));

        let out = odoo_rpc(&url, SECRET, &["login"]).await;
        assert_eq!(stdout_json(&out), json!(2));

        let out = odoo_rpc(
            &url,
            SECRET,
            &[
                "call",
                "res.partner",
                "create",
                r#"[{"name": "CLI Partner"}]"#,
            ],
        )
        .await;
        let id = stdout_json(&out).as_i64().expect("create returns an id");

        let out = odoo_rpc(
            &url,
            SECRET,
            &[
                "search-read",
                "res.partner",
                "--domain",
                r#"[["name", "=", "CLI Partner"]]"#,
                "--fields",
                "name",
                "--limit",
                "5",
            ],
        )
        .await;
        let rows = stdout_json(&out);
        assert_eq!(
            rows,
            json!([{"id": id, "name": "CLI Partner"}]),
            "{version}"
        );

        assert_no_secret(&out);
    }
}

#[tokio::test]
async fn search_read_without_limit_streams_the_whole_table_in_id_order() {
    let fake = fake(OdooVersion::V17).await;
    let rows: Vec<Value> = (0..2_500)
        .map(|i| json!({"name": format!("P{i}")}))
        .collect();
    let ids = fake.seed("demo", "res.partner", rows);
    let out = odoo_rpc(
        &fake.uri(),
        SECRET,
        &[
            "search-read",
            "res.partner",
            "--domain",
            r#"[["name", "like", "P"]]"#,
            "--fields",
            "name",
            "--page-size",
            "1000",
        ],
    )
    .await;
    let rows = stdout_json(&out);
    let got: Vec<i64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    let mut want = ids.clone();
    want.sort_unstable();
    // The seeded partners, plus any default partner whose name contains "P".
    assert!(
        want.iter().all(|id| got.contains(id)),
        "streamed rows miss seeded ones"
    );
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "rows are not in id order"
    );
}

#[tokio::test]
async fn exit_code_1_when_odoo_answers_with_an_error() {
    let fake = fake(OdooVersion::V17).await;
    let out = odoo_rpc(&fake.uri(), "wrong-password", &["login"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.to_lowercase().contains("access denied"), "{stderr}");

    let out = odoo_rpc(
        &fake.uri(),
        SECRET,
        &["call", "no.such.model", "search", "[[]]"],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_secret(&out);
}

#[tokio::test]
async fn exit_code_2_on_usage_errors() {
    let fake = fake(OdooVersion::V17).await;
    for args in [
        &["call", "res.partner", "search", "not json"][..],
        &["call", "res.partner", "search", "{}"][..],
        &["search-read", "res.partner", "--domain", "[\"broken"][..],
        &["no-such-command"][..],
        &["--timeout", "-1", "version"][..],
    ] {
        let out = odoo_rpc(&fake.uri(), SECRET, args).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_odoo-rpc"))
        .args(["--password-file", "/nonexistent/secret", "login"])
        .env("ODOO_URL", fake.uri())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn exit_code_3_when_the_server_is_unreachable() {
    // Bind then drop a listener: nothing listens on that loopback port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = odoo_rpc(&url, SECRET, &["--timeout", "2", "version"]).await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn password_file_is_read_and_never_printed() {
    let fake = fake(OdooVersion::V18).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("password");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_odoo-rpc"))
        .args(["--password-file", path.to_str().unwrap(), "login"])
        .env("ODOO_URL", fake.uri())
        .env("ODOO_DB", "demo")
        .env("ODOO_USER", "admin")
        .env("RUST_LOG", "trace")
        .output()
        .await
        .unwrap();
    assert_eq!(stdout_json(&out), json!(2));
    assert_no_secret(&out);
}

/// `res.partner.search_count` with the fake's API key (in `MY_KEY`), after `flags`.
async fn count_with_api_key(fake: &FakeOdoo, flags: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_odoo-rpc"))
        .args(flags)
        .args(["--api-key-env", "MY_KEY"])
        .args(["call", "res.partner", "search_count", "[]"])
        .args(["--kwargs", r#"{"domain": []}"#])
        .env("ODOO_URL", fake.uri())
        .env("ODOO_DB", "demo")
        .env("ODOO_USER", "admin")
        .env("MY_KEY", "api-key-0123456789")
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn api_key_selects_json2_on_odoo_19() {
    let fake = fake(OdooVersion::V19).await;
    let out = count_with_api_key(&fake, &[]).await;
    let count = stdout_json(&out);
    assert!(count.as_u64().is_some(), "{count}");
    let json2 = fake
        .received_requests()
        .iter()
        .filter(|r| r.path.starts_with("/json/2/"))
        .count();
    assert!(json2 > 0, "the call did not use JSON-2");
}

/// Seen on a real 18.0: `--protocol json2` got a 303 to the login page (18.0's own
/// `/json/<path>` route needs a session) and exited 3 with an HTML page.
#[tokio::test]
async fn forced_json2_before_odoo_19_is_a_configuration_error() {
    for version in [OdooVersion::V16, OdooVersion::V17, OdooVersion::V18] {
        let fake = fake(version).await;
        let out = count_with_api_key(&fake, &["--protocol", "json2"]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{version}: {stderr}");
        assert!(
            stderr.contains("the json2 protocol needs Odoo 19 or later"),
            "{version}: {stderr}"
        );
    }
}

#[tokio::test]
async fn health_exits_3_when_the_database_is_down() {
    let fake = fake(OdooVersion::V17).await;
    fake.set_fault(odoo_fixtures::Fault::DatabaseDown(true));
    let out = odoo_rpc(&fake.uri(), SECRET, &["health", "--db-status"]).await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["status"], "fail");
    assert_eq!(body["db_server_status"], false);
}
