//! The `postgres` gate against a real PostgreSQL.
//!
//! The test command provides the cluster: `eval "$(scripts/ensure-postgres.sh)"` starts a
//! throwaway one on 127.0.0.1:55432 and exports `DEPLOY_TEST_PG`. Without it these tests
//! fail, saying so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use deploy_core::secrecy::SecretString;
use deploy_core::{NullSink, SecretRef};
use deploy_gates::builtin::PostgresGate;
use deploy_gates::{
    Error, Gate, GateContext, Outcome, Plan, PostgresSettings, Registry, RunResult, Runner, Scope,
    Verdict,
};
use tokio::net::TcpListener;

fn dsn() -> String {
    std::env::var("DEPLOY_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "DEPLOY_TEST_PG is not set: the postgres gate is tested against a real PostgreSQL. \
             Run `eval \"$(scripts/ensure-postgres.sh)\"` (it starts a throwaway cluster on \
             127.0.0.1:55432 and exports DEPLOY_TEST_PG), or export \
             DEPLOY_TEST_PG=postgres://USER@HOST:PORT/DB for one of your own"
        )
    })
}

fn settings(warn_percent: f64, fail_percent: f64) -> PostgresSettings {
    PostgresSettings {
        warn_percent,
        fail_percent,
        ..PostgresSettings::new(SecretRef::env("DEPLOY_TEST_PG"))
    }
}

fn gate(dsn: &str, settings: &PostgresSettings) -> PostgresGate {
    PostgresGate::new("postgres", &SecretString::from(dsn.to_owned()), settings).unwrap()
}

fn cx() -> GateContext {
    GateContext::new(Arc::new(NullSink)).with_timeout(Duration::from_secs(10))
}

async fn check(gate: &PostgresGate) -> Verdict {
    gate.check(&cx()).await.unwrap()
}

#[tokio::test]
async fn passes_and_reports_connections() {
    let gate = gate(
        &dsn(),
        &PostgresSettings::new(SecretRef::env("DEPLOY_TEST_PG")),
    );
    let first = check(&gate).await;
    assert_eq!(first.outcome, Outcome::Pass, "{first:?}");
    assert!(
        first.message.starts_with("SELECT 1 ok; "),
        "{}",
        first.message
    );
    let used = first.values["connections_used"];
    let max = first.values["max_connections"];
    assert!(used >= 1.0, "our own connection counts");
    assert!(max >= used);
    assert_eq!(first.values["connections_percent"], used * 100.0 / max);
    assert!(first.values.contains_key("connect_ms"));

    // The connection is kept for the next round.
    let second = check(&gate).await;
    assert_eq!(second.outcome, Outcome::Pass);
    assert!(!second.values.contains_key("connect_ms"), "{second:?}");
}

#[tokio::test]
async fn warns_and_fails_on_connection_usage() {
    // With thresholds this low, our own connection is enough.
    let warn = check(&gate(&dsn(), &settings(0.001, 100.0))).await;
    assert_eq!(warn.outcome, Outcome::Warn, "{warn:?}");
    assert!(
        warn.message.contains("reaches warn_percent 0.001"),
        "{}",
        warn.message
    );
    let fail = check(&gate(&dsn(), &settings(0.001, 0.002))).await;
    assert_eq!(fail.outcome, Outcome::Fail, "{fail:?}");
    assert!(
        fail.message.contains("reaches fail_percent 0.002"),
        "{}",
        fail.message
    );
}

#[tokio::test]
async fn fails_when_postgres_cannot_be_reached() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let closed = format!("postgres://odoo:hunter2@127.0.0.1:{port}/postgres");
    let verdict = check(&gate(&closed, &settings(80.0, 90.0))).await;
    assert_eq!(verdict.outcome, Outcome::Fail, "{verdict:?}");
    assert!(
        verdict
            .message
            .contains(&format!("cannot connect to PostgreSQL at 127.0.0.1:{port}")),
        "{}",
        verdict.message
    );
    assert!(!verdict.message.contains("hunter2"));

    // Reachable, but no such database.
    let mut url: url::Url = dsn().parse().unwrap();
    url.set_path("/surely_no_such_database");
    let verdict = check(&gate(url.as_str(), &settings(80.0, 90.0))).await;
    assert_eq!(verdict.outcome, Outcome::Fail, "{verdict:?}");
    assert!(
        verdict.message.contains("surely_no_such_database"),
        "{}",
        verdict.message
    );
}

#[tokio::test]
async fn cannot_run_without_time_or_a_valid_dsn() {
    let gate = gate(&dsn(), &settings(80.0, 90.0));
    let spent = GateContext::new(Arc::new(NullSink)).with_timeout(Duration::ZERO);
    assert!(
        matches!(gate.check(&spent).await, Err(Error::Check { message, .. }) if message.contains("no time left"))
    );

    let err = PostgresGate::new(
        "postgres",
        &SecretString::from("postgres://u:hunter2@h:notaport/db".to_owned()),
        &settings(80.0, 90.0),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidValue { scope: Scope::Gate(g), field, .. } if g == "postgres" && field == "dsn"),
        "{err:?}"
    );
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{:?}", gate).contains("hunter2"));
}

#[tokio::test]
async fn runs_from_a_plan_with_the_dsn_from_the_environment() {
    let _ = dsn();
    let plan: Plan = r#"
        [[targets]]
        name = "green"
        url = "http://127.0.0.1:8069"

        [[gates]]
        name = "postgres"
        kind = "postgres"
        dsn = { env = "DEPLOY_TEST_PG" }
    "#
    .parse()
    .unwrap();
    let runner = Runner::from_plan(&plan, &Registry::with_builtins(), &NullSink).unwrap();
    let report = runner.run(Arc::new(NullSink)).await;
    assert_eq!(report.result, RunResult::Passed, "{report:#?}");
    let values = &report
        .gate("postgres")
        .unwrap()
        .last
        .as_ref()
        .unwrap()
        .values;
    for name in ["connections_used", "max_connections", "connections_percent"] {
        assert!(values.contains_key(name), "{name}");
    }
}
