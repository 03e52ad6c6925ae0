//! The built-in Odoo gates against the fake Odoo: pass, warn, fail and could-not-run
//! paths, driven by the fake's fault injection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use deploy_core::{NullSink, RecordingSink, SecretRef, Target};
use deploy_gates::builtin::{
    wait_for_cleanups, AuthenticationGate, Connection, DatabaseListedGate, FilestoreGate,
    HealthGate, LoginPageGate, ModulesGate, ResponseTimeGate, SessionContinuityGate, SmokeCrudGate,
    VersionGate, WebsocketHealthGate,
};
use deploy_gates::standard::StandardPlan;
use deploy_gates::{
    BuildContext, DatabaseListedSettings, Error, FilestoreSettings, Gate, GateContext, GateEntry,
    GateStatus, HealthSettings, LoginPageSettings, ModulesSettings, Outcome, Registry,
    ResponseTimeSettings, RunResult, RunSettings, Runner, Scope, SmokeCrudSettings, Verdict,
    VersionSettings, WebsocketHealthSettings,
};
use odoo_fixtures::{ErrorKind, FakeOdoo, Fault, ModuleState, OdooVersion};
use tokio::net::TcpListener;

// ----- harness ---------------------------------------------------------------------

async fn fake() -> FakeOdoo {
    FakeOdoo::builder()
        .release("r1")
        .module("sale", ModuleState::Installed)
        .start()
        .await
        .expect("the fake Odoo starts")
}

fn target_at(name: &str, url: &str) -> Target {
    Target::new(name, url.parse().unwrap())
        .with_database("demo")
        .with_login("admin")
        .with_password(SecretRef::plain_allowed("admin"))
}

fn target(fake: &FakeOdoo) -> Target {
    target_at("green", &fake.uri())
}

fn connect(target: &Target) -> Arc<Connection> {
    Arc::new(Connection::for_target(target, &BuildContext::new(target, &NullSink)).unwrap())
}

fn conn(fake: &FakeOdoo) -> Arc<Connection> {
    connect(&target(fake))
}

/// A URL on which nothing listens.
async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn cx() -> GateContext {
    GateContext::new(Arc::new(NullSink)).with_timeout(Duration::from_secs(10))
}

async fn verdict(gate: &dyn Gate) -> Verdict {
    match gate.check(&cx()).await {
        Ok(verdict) => verdict,
        Err(err) => panic!("gate `{}` could not run: {err}", gate.name()),
    }
}

#[track_caller]
fn assert_outcome(verdict: &Verdict, outcome: Outcome, contains: &str) {
    assert_eq!(verdict.outcome, outcome, "{verdict:?}");
    assert!(
        verdict.message.contains(contains),
        "`{}` does not contain `{contains}`",
        verdict.message
    );
}

/// The check could not run: an `Error::Check` whose message contains `contains`.
async fn assert_cannot_run(gate: &dyn Gate, contains: &str) {
    match gate.check(&cx()).await {
        Err(Error::Check {
            gate: name,
            message,
            ..
        }) => {
            assert_eq!(name, gate.name());
            assert!(message.contains(contains), "`{message}` lacks `{contains}`");
        }
        other => panic!("expected Error::Check, got {other:?}"),
    }
}

/// Every gate, with no time left, reports that it could not run.
async fn assert_honours_deadline(gate: &dyn Gate) {
    let spent = GateContext::new(Arc::new(NullSink)).with_timeout(Duration::ZERO);
    match gate.check(&spent).await {
        Err(Error::Check { message, .. }) => assert!(message.contains("no time left"), "{message}"),
        other => panic!("expected Error::Check, got {other:?}"),
    }
}

// ----- health ------------------------------------------------------------------------

#[tokio::test]
async fn health_passes_warns_and_fails() {
    let fake = fake().await;
    let plain = HealthGate::new("health", conn(&fake), &HealthSettings::default());
    let v = verdict(&plain).await;
    assert_outcome(&v, Outcome::Pass, "pass in");
    assert_eq!(v.values["http_status"], 200.0);

    let with_db = HealthSettings {
        db_server_status: true,
        ..HealthSettings::default()
    };
    let db = HealthGate::new("health", conn(&fake), &with_db);
    let v = verdict(&db).await;
    assert_outcome(&v, Outcome::Pass, "database server up");
    assert_eq!(v.values["db_server_status"], 1.0);

    // Slow: Warn.
    fake.set_fault(Fault::Latency(Duration::from_millis(80)));
    let slow = HealthGate::new(
        "health",
        conn(&fake),
        &HealthSettings {
            warn_ms: 40,
            ..HealthSettings::default()
        },
    );
    assert_outcome(&verdict(&slow).await, Outcome::Warn, "slow");
    fake.clear_faults();

    // Failing health, and PostgreSQL down: Fail.
    fake.set_fault(Fault::HealthFailing(true));
    let v = verdict(&plain).await;
    assert_outcome(&v, Outcome::Fail, "status \"fail\" (http 500)");
    fake.clear_faults();
    fake.set_fault(Fault::DatabaseDown(true));
    assert_outcome(&verdict(&plain).await, Outcome::Pass, "pass");
    let v = verdict(&db).await;
    assert_outcome(&v, Outcome::Fail, "database server is down");
    assert_eq!(v.values["db_server_status"], 0.0);
    fake.clear_faults();

    // A proxy's error page instead of Odoo: Fail.
    fake.set_fault(Fault::ErrorRate {
        share: 1.0,
        kind: ErrorKind::HtmlBadGateway,
    });
    assert_outcome(&verdict(&plain).await, Outcome::Fail, "no health answer");
    fake.clear_faults();

    assert_honours_deadline(&plain).await;
}

#[tokio::test]
async fn health_warns_when_odoo_16_does_not_report_the_database() {
    let fake = FakeOdoo::builder()
        .version(OdooVersion::V16)
        .start()
        .await
        .unwrap();
    let gate = HealthGate::new(
        "health",
        conn(&fake),
        &HealthSettings {
            db_server_status: true,
            ..HealthSettings::default()
        },
    );
    assert_outcome(
        &verdict(&gate).await,
        Outcome::Warn,
        "did not report db_server_status",
    );
}

#[tokio::test]
async fn health_fails_on_a_dead_server() {
    let target = target_at("green", &dead_url().await);
    let gate = HealthGate::new("health", connect(&target), &HealthSettings::default());
    let v = verdict(&gate).await;
    assert_outcome(&v, Outcome::Fail, "no health answer: cannot connect");
    assert!(v.values.contains_key("elapsed_ms"));
}

// ----- websocket-health, login-page ---------------------------------------------------

#[tokio::test]
async fn websocket_health() {
    // A threaded Odoo (the fake's default) upgrades on its HTTP port.
    let fake = fake().await;
    let gate = WebsocketHealthGate::new("ws", conn(&fake), &WebsocketHealthSettings::default());
    let v = verdict(&gate).await;
    let port = fake.address().port();
    assert_outcome(
        &v,
        Outcome::Pass,
        &format!("websocket upgrade on 127.0.0.1:{port} (the HTTP port): 101 and a clean close"),
    );
    assert_eq!(v.values["http_status"], 101.0);
    assert_eq!(v.values["port"], f64::from(port));

    fake.set_fault(Fault::Latency(Duration::from_millis(80)));
    let slow = WebsocketHealthGate::new(
        "ws",
        conn(&fake),
        &WebsocketHealthSettings {
            warn_ms: 40,
            ..WebsocketHealthSettings::default()
        },
    );
    assert_outcome(&verdict(&slow).await, Outcome::Warn, "slow");
    fake.clear_faults();

    let missing = WebsocketHealthGate::new(
        "ws",
        conn(&fake),
        &WebsocketHealthSettings {
            path: "/longpolling/websocket".into(),
            ..WebsocketHealthSettings::default()
        },
    );
    assert_outcome(
        &verdict(&missing).await,
        Outcome::Fail,
        "answers 404: no bus route",
    );

    let dead = target_at("green", &dead_url().await);
    let gate = WebsocketHealthGate::new("ws", connect(&dead), &WebsocketHealthSettings::default());
    assert_outcome(
        &verdict(&gate).await,
        Outcome::Fail,
        "nothing answers a websocket on 127.0.0.1:",
    );
    assert_honours_deadline(&gate).await;
}

/// Seen on a real 18.0 in prefork mode: `/websocket/health` passed on the HTTP port
/// while the gevent process was stopped, and a release whose gevent process crashed at
/// start served pages and no live updates.
#[tokio::test]
async fn websocket_health_checks_the_real_time_port_of_a_prefork_odoo() {
    let fake = FakeOdoo::builder()
        .version(OdooVersion::V18)
        .prefork()
        .start()
        .await
        .unwrap();
    let realtime = fake.realtime_address().unwrap();
    let target = target(&fake).with_realtime_url(fake.realtime_uri().unwrap().parse().unwrap());
    let gate =
        WebsocketHealthGate::new("ws", connect(&target), &WebsocketHealthSettings::default());
    let at = format!("127.0.0.1:{}", realtime.port());
    assert_outcome(
        &verdict(&gate).await,
        Outcome::Pass,
        &format!("websocket upgrade on {at} (the real-time port): 101 and a clean close"),
    );

    // The evented process dies; the HTTP workers serve on, /websocket/health too.
    fake.set_fault(Fault::RealtimeDown(true));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let v = verdict(&gate).await;
    assert_outcome(
        &v,
        Outcome::Fail,
        &format!("nothing answers a websocket on {at} (the real-time port)"),
    );
    assert!(
        v.message
            .contains("the real-time (evented, gevent) process is not running"),
        "{}",
        v.message
    );
    assert_eq!(v.values["port"], f64::from(realtime.port()));
    let health = reqwest::get(format!("{}/websocket/health", fake.uri()))
        .await
        .unwrap();
    assert_eq!(
        health.status().as_u16(),
        200,
        "what the old gate checked still passes"
    );
    fake.clear_faults();

    // Pointed at the HTTP port of a prefork Odoo: the 500 is explained.
    let http_only =
        WebsocketHealthGate::new("ws", conn(&fake), &WebsocketHealthSettings::default());
    let v = verdict(&http_only).await;
    assert_outcome(
        &v,
        Outcome::Fail,
        "answers 500: an Odoo in prefork mode (--workers)",
    );
    assert!(v.message.contains("realtime_url"), "{}", v.message);

    // PostgreSQL down: no bus routes, and the gate says why.
    fake.set_fault(Fault::DatabaseDown(true));
    assert_outcome(
        &verdict(&gate).await,
        Outcome::Fail,
        "answers 404 because the database is unreachable",
    );
}

#[tokio::test]
async fn login_page() {
    let fake = fake().await;
    let gate = LoginPageGate::new("login", conn(&fake), &LoginPageSettings::default());
    let v = verdict(&gate).await;
    assert_outcome(&v, Outcome::Pass, "login form in");
    assert!(v.values["bytes"] > 0.0);

    // A 200 without a form (here: a JSON route) is suspicious, not fatal.
    let no_form = LoginPageGate::new(
        "login",
        conn(&fake),
        &LoginPageSettings {
            path: "/web/health".into(),
            ..LoginPageSettings::default()
        },
    );
    assert_outcome(&verdict(&no_form).await, Outcome::Warn, "no login form");

    fake.set_fault(Fault::Latency(Duration::from_millis(80)));
    let slow = LoginPageGate::new(
        "login",
        conn(&fake),
        &LoginPageSettings {
            warn_ms: 40,
            ..LoginPageSettings::default()
        },
    );
    assert_outcome(&verdict(&slow).await, Outcome::Warn, "slow");
    fake.clear_faults();

    // PostgreSQL down: Odoo sends the browser to the database selector.
    fake.set_fault(Fault::DatabaseDown(true));
    assert_outcome(
        &verdict(&gate).await,
        Outcome::Fail,
        "redirected to /web/database/selector: no database chosen",
    );
    fake.clear_faults();

    fake.set_fault(Fault::ErrorRate {
        share: 1.0,
        kind: ErrorKind::Http500,
    });
    assert_outcome(&verdict(&gate).await, Outcome::Fail, "http 500");
    fake.clear_faults();
    assert_honours_deadline(&gate).await;
}

#[tokio::test]
async fn login_page_fails_with_several_databases_and_no_dbfilter() {
    let fake = FakeOdoo::builder()
        .database("one")
        .database("two")
        .start()
        .await
        .unwrap();
    let gate = LoginPageGate::new("login", conn(&fake), &LoginPageSettings::default());
    assert_outcome(&verdict(&gate).await, Outcome::Fail, "http 303");
}

// ----- database-listed ----------------------------------------------------------------

#[tokio::test]
async fn database_listed() {
    let fake = fake().await;
    let gate =
        DatabaseListedGate::new("db", conn(&fake), &DatabaseListedSettings::default()).unwrap();
    let v = verdict(&gate).await;
    assert_outcome(&v, Outcome::Pass, "`demo` listed (1 database(s))");
    assert_eq!(v.values["listed"], 1.0);

    let other = DatabaseListedGate::new(
        "db",
        conn(&fake),
        &DatabaseListedSettings {
            database: Some("prod".into()),
        },
    )
    .unwrap();
    assert_outcome(
        &verdict(&other).await,
        Outcome::Fail,
        "`prod` not listed (listed: demo)",
    );

    fake.set_fault(Fault::DatabaseDown(true));
    assert_outcome(
        &verdict(&gate).await,
        Outcome::Fail,
        "lists no database at all",
    );
    fake.clear_faults();

    let dead = target_at("green", &dead_url().await);
    let gate =
        DatabaseListedGate::new("db", connect(&dead), &DatabaseListedSettings::default()).unwrap();
    assert_cannot_run(&gate, "listing databases: cannot connect").await;
    assert_honours_deadline(&gate).await;

    // Without a database to look for, the gate cannot be built.
    let bare = Target::new("bare", fake.uri().parse().unwrap());
    let err = DatabaseListedGate::new("db", connect(&bare), &DatabaseListedSettings::default())
        .unwrap_err();
    assert!(
        matches!(&err, Error::MissingField { scope: Scope::Target(t), field } if t == "bare" && field == "database"),
        "{err:?}"
    );
}

#[tokio::test]
async fn database_listed_falls_back_to_a_login_when_list_db_is_off() {
    let fake = FakeOdoo::builder().list_db(false).start().await.unwrap();
    let gate =
        DatabaseListedGate::new("db", conn(&fake), &DatabaseListedSettings::default()).unwrap();
    let v = verdict(&gate).await;
    assert_outcome(
        &v,
        Outcome::Pass,
        "listing is disabled (list_db = False); `demo` confirmed by logging in (uid 2)",
    );
    assert_eq!(v.values["listed"], 0.0);
    assert_eq!(v.values["uid"], 2.0);

    // Without credentials, or with refused ones, the database cannot be confirmed.
    let anonymous = Target::new("green", fake.uri().parse().unwrap()).with_database("demo");
    let gate = DatabaseListedGate::new(
        "db",
        connect(&anonymous),
        &DatabaseListedSettings::default(),
    )
    .unwrap();
    assert_outcome(
        &verdict(&gate).await,
        Outcome::Inconclusive,
        "has no credentials",
    );
    let wrong = target(&fake).with_password(SecretRef::plain_allowed("wrong"));
    let gate =
        DatabaseListedGate::new("db", connect(&wrong), &DatabaseListedSettings::default()).unwrap();
    assert_outcome(&verdict(&gate).await, Outcome::Inconclusive, "was refused");

    // PostgreSQL down: the login fails with Odoo's error.
    fake.set_fault(Fault::DatabaseDown(true));
    let gate =
        DatabaseListedGate::new("db", conn(&fake), &DatabaseListedSettings::default()).unwrap();
    assert_outcome(&verdict(&gate).await, Outcome::Fail, "logging in to `demo`");
}

// ----- authentication -----------------------------------------------------------------

#[tokio::test]
async fn authentication() {
    let fake = fake().await;
    let gate = AuthenticationGate::new("auth", conn(&fake)).unwrap();
    let v = verdict(&gate).await;
    assert_outcome(
        &v,
        Outcome::Pass,
        "`admin` logged in to `demo` as uid 2 over jsonrpc",
    );
    assert_eq!(v.values["uid"], 2.0);

    let wrong = target(&fake).with_password(SecretRef::plain_allowed("hunter2"));
    let gate = AuthenticationGate::new("auth", connect(&wrong)).unwrap();
    let v = verdict(&gate).await;
    assert_outcome(
        &v,
        Outcome::Fail,
        "login of `admin` to `demo`: access denied",
    );
    assert!(!v.message.contains("hunter2"));

    fake.set_fault(Fault::DatabaseDown(true));
    let gate = AuthenticationGate::new("auth", conn(&fake)).unwrap();
    assert_outcome(&verdict(&gate).await, Outcome::Fail, "OperationalError");
    fake.clear_faults();

    let dead = target_at("green", &dead_url().await);
    let gate = AuthenticationGate::new("auth", connect(&dead)).unwrap();
    assert_cannot_run(&gate, "login of `admin` to `demo`: cannot connect").await;
    assert_honours_deadline(&gate).await;

    let nobody = Target::new("green", fake.uri().parse().unwrap()).with_database("demo");
    let err = AuthenticationGate::new("auth", connect(&nobody)).unwrap_err();
    assert!(
        matches!(&err, Error::MissingField { field, .. } if field == "login"),
        "{err:?}"
    );
}

#[tokio::test]
async fn authentication_with_an_api_key_on_odoo_19() {
    let fake = FakeOdoo::builder()
        .version(OdooVersion::V19)
        .api_key("admin", "the-key")
        .start()
        .await
        .unwrap();
    let target = Target::new("green", fake.uri().parse().unwrap())
        .with_database("demo")
        .with_login("admin")
        .with_api_key(SecretRef::plain_allowed("the-key"));
    let gate = AuthenticationGate::new("auth", connect(&target)).unwrap();
    let v = verdict(&gate).await;
    assert_outcome(&v, Outcome::Pass, "uid 2 over json2");
    assert!(!v.message.contains("the-key"));
}

// ----- version ------------------------------------------------------------------------

#[tokio::test]
async fn version() {
    let fake = fake().await;
    let expect = |version: Option<&str>, release: Option<&str>| VersionSettings {
        expected_version: version.map(str::to_owned),
        expected_release: release.map(str::to_owned),
    };
    let gate = VersionGate::new("version", conn(&fake), &expect(Some("17.0"), Some("r1")));
    let v = verdict(&gate).await;
    assert_outcome(&v, Outcome::Pass, "17.0 (serie 17.0), release `r1`");
    assert_eq!(v.values["major"], 17.0);
    let gate = VersionGate::new("version", conn(&fake), &expect(Some("17"), None));
    assert_outcome(&verdict(&gate).await, Outcome::Pass, "17.0");

    let gate = VersionGate::new("version", conn(&fake), &expect(Some("16.0"), None));
    assert_outcome(&verdict(&gate).await, Outcome::Fail, "expected 16.0");
    let gate = VersionGate::new("version", conn(&fake), &expect(None, Some("r2")));
    assert_outcome(
        &verdict(&gate).await,
        Outcome::Fail,
        "release `r1` deployed, expected `r2`",
    );

    // A server that reports no release cannot confirm one.
    let unlabelled = FakeOdoo::builder().start().await.unwrap();
    let gate = VersionGate::new("version", conn(&unlabelled), &expect(None, Some("r1")));
    assert_outcome(
        &verdict(&gate).await,
        Outcome::Inconclusive,
        "no X-Odoo-Release header",
    );
    let gate = VersionGate::new("version", conn(&unlabelled), &expect(None, None));
    assert_outcome(&verdict(&gate).await, Outcome::Pass, "17.0");

    let dead = target_at("green", &dead_url().await);
    let gate = VersionGate::new("version", connect(&dead), &expect(None, None));
    assert_cannot_run(&gate, "reading the version: cannot connect").await;
    assert_honours_deadline(&gate).await;
}

// ----- modules ------------------------------------------------------------------------

fn modules(names: &[&str]) -> ModulesSettings {
    ModulesSettings {
        modules: names.iter().map(|n| (*n).to_owned()).collect(),
    }
}

#[tokio::test]
async fn modules_installed_and_pending() {
    let fake = fake().await;
    let gate =
        ModulesGate::new("modules", conn(&fake), &modules(&["base", "web", "sale"])).unwrap();
    let v = verdict(&gate).await;
    assert_outcome(
        &v,
        Outcome::Pass,
        "base, web, sale installed; no module pending",
    );
    assert_eq!(v.values["installed"], 3.0);
    assert_eq!(v.values["pending"], 0.0);

    // A named module not installed.
    let gate_stock =
        ModulesGate::new("modules", conn(&fake), &modules(&["sale", "stock"])).unwrap();
    let v = verdict(&gate_stock).await;
    assert_outcome(&v, Outcome::Fail, "not installed: stock (not found)");
    assert_eq!(v.values["not_installed"], 1.0);

    // An upgrade that did not run, and other pending modules.
    fake.set_module_state("demo", "sale", ModuleState::ToUpgrade);
    fake.set_module_state("demo", "account", ModuleState::ToInstall);
    fake.set_module_state("demo", "crm", ModuleState::ToRemove);
    let v = verdict(&gate).await;
    // sale is installed, with its update pending: said so, with the fix, and not
    // called "not installed".
    assert_outcome(
        &v,
        Outcome::Fail,
        "1 installed with an update pending (to upgrade): sale; finish the update (odoo -u sale)",
    );
    assert!(!v.message.contains("not installed:"), "{}", v.message);
    assert_eq!(v.values["not_installed"], 0.0);
    assert!(
        v.message
            .contains("1 marked for installation, not installed yet (to install): account"),
        "{}",
        v.message
    );
    assert_eq!(v.values["pending"], 3.0);
    assert_eq!(v.values["to_upgrade"], 1.0);
    assert_eq!(v.values["to_install"], 1.0);
    assert_eq!(v.values["to_remove"], 1.0);
    // Without named modules, only the pending check.
    let pending_only =
        ModulesGate::new("modules", conn(&fake), &ModulesSettings::default()).unwrap();
    assert_outcome(
        &verdict(&pending_only).await,
        Outcome::Fail,
        "1 installed and marked for removal (to remove): crm",
    );
    for module in ["sale", "account", "crm"] {
        fake.set_module_state("demo", module, ModuleState::Installed);
    }
    assert_outcome(
        &verdict(&pending_only).await,
        Outcome::Pass,
        "no module pending",
    );

    fake.set_fault(Fault::DatabaseDown(true));
    assert_outcome(
        &verdict(&gate).await,
        Outcome::Fail,
        "reading ir.module.module",
    );
    fake.clear_faults();

    let dead = target_at("green", &dead_url().await);
    let gate = ModulesGate::new("modules", connect(&dead), &modules(&["base"])).unwrap();
    assert_cannot_run(&gate, "cannot connect").await;
    assert_honours_deadline(&gate).await;
}

#[tokio::test]
async fn modules_survive_expired_web_sessions() {
    // Odoo 19 with a password: the web protocol, whose session can expire.
    let fake = FakeOdoo::builder()
        .version(OdooVersion::V19)
        .start()
        .await
        .unwrap();
    let gate = ModulesGate::new("modules", conn(&fake), &modules(&["base"])).unwrap();
    assert_outcome(&verdict(&gate).await, Outcome::Pass, "no module pending");
    fake.expire_sessions();
    assert_outcome(&verdict(&gate).await, Outcome::Pass, "no module pending");
    let logins = fake
        .received_requests()
        .iter()
        .filter(|r| r.path == "/web/session/authenticate")
        .count();
    assert_eq!(logins, 2, "one login, and one after the sessions expired");
}

// ----- smoke-crud ---------------------------------------------------------------------

fn smoke_left(fake: &FakeOdoo) -> Vec<serde_json::Value> {
    fake.records("demo", "res.partner")
        .into_iter()
        .filter(|r| {
            r.get("name")
                .and_then(|n| n.as_str())
                .is_some_and(|n| n.starts_with("odoo-gate smoke"))
        })
        .collect()
}

fn attachments_left(fake: &FakeOdoo) -> usize {
    fake.records("demo", "ir.attachment")
        .into_iter()
        .filter(|r| {
            r.get("name")
                .and_then(|n| n.as_str())
                .is_some_and(|n| n.starts_with("odoo-gate-filestore"))
        })
        .count()
}

fn methods(fake: &FakeOdoo) -> Vec<String> {
    fake.received_requests()
        .iter()
        .filter_map(|r| r.body_json())
        .filter_map(|body| {
            let args = body.pointer("/params/args")?.as_array()?.clone();
            args.get(4)?.as_str().map(str::to_owned)
        })
        .collect()
}

/// Switches PostgreSQL off as soon as the fake has answered a `create` of the check.
fn database_down_after_create(fake: &Arc<FakeOdoo>) -> tokio::task::JoinHandle<()> {
    let fake = Arc::clone(fake);
    tokio::spawn(async move {
        loop {
            if methods(&fake).iter().any(|m| m == "create") {
                fake.set_fault(Fault::DatabaseDown(true));
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
}

#[tokio::test]
async fn smoke_crud_round_trip_leaves_nothing() {
    let fake = fake().await;
    let before = fake.records("demo", "res.partner").len();
    let gate = SmokeCrudGate::new("smoke", conn(&fake), &SmokeCrudSettings::default()).unwrap();
    let v = verdict(&gate).await;
    assert_outcome(
        &v,
        Outcome::Pass,
        "created, read, written, read and deleted res.partner",
    );
    for value in ["record_id", "create_ms", "read_ms", "write_ms", "unlink_ms"] {
        assert!(v.values.contains_key(value), "{value} in {:?}", v.values);
    }
    assert_eq!(fake.records("demo", "res.partner").len(), before);
    assert_eq!(
        methods(&fake),
        ["create", "read", "write", "read", "unlink", "search_count"]
    );
}

#[tokio::test]
async fn smoke_crud_fails_and_errs() {
    let fake = fake().await;
    let gate = SmokeCrudGate::new("smoke", conn(&fake), &SmokeCrudSettings::default()).unwrap();
    fake.set_fault(Fault::DatabaseDown(true));
    assert_outcome(
        &verdict(&gate).await,
        Outcome::Fail,
        "create res.partner: odoo psycopg2.OperationalError",
    );
    fake.clear_faults();

    let dead = target_at("green", &dead_url().await);
    let gate = SmokeCrudGate::new("smoke", connect(&dead), &SmokeCrudSettings::default()).unwrap();
    assert_cannot_run(&gate, "create res.partner: cannot connect").await;
    assert_honours_deadline(&gate).await;
}

#[tokio::test]
async fn smoke_crud_removes_its_record_after_a_midway_failure() {
    let fake = Arc::new(fake().await);
    // Each answer takes 250 ms, so the watcher switches PostgreSQL off while the
    // create's answer is on its way: the read that follows fails, and so does the
    // immediate removal.
    fake.set_fault(Fault::Latency(Duration::from_millis(250)));
    let watcher = database_down_after_create(&fake);
    let gate = SmokeCrudGate::new("smoke", conn(&fake), &SmokeCrudSettings::default()).unwrap();
    let v = verdict(&gate).await;
    watcher.await.unwrap();
    assert_outcome(&v, Outcome::Fail, "after create: read res.partner");
    assert!(
        v.message.contains("retrying in the background"),
        "{}",
        v.message
    );
    assert_eq!(
        smoke_left(&fake).len(),
        1,
        "the record waits for PostgreSQL"
    );

    // PostgreSQL is back: the background removal gets it.
    fake.clear_faults();
    assert_eq!(wait_for_cleanups(Duration::from_secs(20)).await, 0);
    assert!(smoke_left(&fake).is_empty(), "{:?}", smoke_left(&fake));
}

#[tokio::test]
async fn smoke_crud_removes_its_record_when_the_runner_cancels_it() {
    let fake = Arc::new(fake().await);
    fake.set_fault(Fault::Latency(Duration::from_millis(150)));
    let gate = SmokeCrudGate::new("smoke", conn(&fake), &SmokeCrudSettings::default()).unwrap();
    // version answers at about 150 ms, the login at 300, create at 450, read at 600,
    // write at 750: cancelled halfway.
    let runner = Runner::new(
        RunSettings::default(),
        vec![GateEntry::new(Arc::new(gate)).with_timeout(Duration::from_millis(650))],
    )
    .unwrap();
    let report = runner.run(Arc::new(NullSink)).await;
    let last = report.gate("smoke").unwrap().last.clone().unwrap();
    assert_eq!(last.status, GateStatus::Error, "{last:?}");
    assert!(last.message.contains("timed out"), "{}", last.message);
    assert!(methods(&fake).contains(&"create".to_owned()));

    // The runner itself waited for the removal: a caller that exits right after
    // `run` (odoo-bluegreen, odoo-rollback previous) leaves no record behind.
    assert!(smoke_left(&fake).is_empty(), "{:?}", smoke_left(&fake));
    assert!(
        methods(&fake).contains(&"unlink".to_owned()),
        "{:?}",
        methods(&fake)
    );
}

// ----- filestore ----------------------------------------------------------------------

#[tokio::test]
async fn filestore_round_trip() {
    let fake = fake().await;
    let gate = FilestoreGate::new(
        "filestore",
        conn(&fake),
        &FilestoreSettings { size_bytes: 10_000 },
    )
    .unwrap();
    let v = verdict(&gate).await;
    assert_outcome(
        &v,
        Outcome::Pass,
        "10000 bytes written, read back with the same checksum",
    );
    assert_eq!(v.values["size_bytes"], 10_000.0);
    assert_eq!(attachments_left(&fake), 0);
    assert_eq!(methods(&fake), ["create", "read", "unlink"]);
    // What was sent: base64 content and a name the gate can be recognised by.
    let create = fake
        .received_requests()
        .iter()
        .filter_map(|r| r.body_json())
        .find(|b| b.pointer("/params/args/4").and_then(|m| m.as_str()) == Some("create"))
        .unwrap();
    let values = create.pointer("/params/args/5/0/0").unwrap();
    assert!(values["datas"].as_str().unwrap().len() > 13_000);

    fake.set_fault(Fault::DatabaseDown(true));
    assert_outcome(&verdict(&gate).await, Outcome::Fail, "create ir.attachment");
    fake.clear_faults();

    let dead = target_at("green", &dead_url().await);
    let gate =
        FilestoreGate::new("filestore", connect(&dead), &FilestoreSettings::default()).unwrap();
    assert_cannot_run(&gate, "create ir.attachment: cannot connect").await;
    assert_honours_deadline(&gate).await;
}

#[tokio::test]
async fn filestore_removes_its_attachment_after_a_midway_failure() {
    let fake = Arc::new(fake().await);
    fake.set_fault(Fault::Latency(Duration::from_millis(250)));
    let watcher = database_down_after_create(&fake);
    let gate = FilestoreGate::new("filestore", conn(&fake), &FilestoreSettings::default()).unwrap();
    let v = verdict(&gate).await;
    watcher.await.unwrap();
    assert_outcome(&v, Outcome::Fail, "read ir.attachment");
    assert_eq!(attachments_left(&fake), 1);
    fake.clear_faults();
    assert_eq!(wait_for_cleanups(Duration::from_secs(20)).await, 0);
    assert_eq!(attachments_left(&fake), 0);
}

// ----- response-time ------------------------------------------------------------------

fn timing(routes: &[&str], warn_ms: u64, fail_ms: u64) -> ResponseTimeSettings {
    ResponseTimeSettings {
        routes: routes.iter().map(|r| (*r).to_owned()).collect(),
        requests: 12,
        concurrency: 3,
        warn_ms,
        fail_ms,
        ..ResponseTimeSettings::default()
    }
}

#[tokio::test]
async fn response_time() {
    let fake = fake().await;
    let gate = ResponseTimeGate::new(
        "rt",
        conn(&fake),
        &timing(&["/web/login", "/web/health"], 2000, 5000),
    );
    let v = verdict(&gate).await;
    assert_outcome(&v, Outcome::Pass, "12 requests, 3 at a time: p95");
    for value in [
        "avg_ms",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "max_ms",
        "errors",
        "errors_percent",
    ] {
        assert!(v.values.contains_key(value), "{value}");
    }
    assert_eq!(v.values["errors"], 0.0);
    let pages = fake
        .received_requests()
        .iter()
        .filter(|r| r.path == "/web/login")
        .count();
    assert_eq!(pages, 6, "round robin over the routes");

    // Slow: Warn, then Fail.
    fake.set_fault(Fault::Latency(Duration::from_millis(60)));
    let warn = ResponseTimeGate::new("rt", conn(&fake), &timing(&["/web/login"], 30, 10_000));
    assert_outcome(
        &verdict(&warn).await,
        Outcome::Warn,
        "p95 reaches warn_ms 30",
    );
    let fail = ResponseTimeGate::new("rt", conn(&fake), &timing(&["/web/login"], 10, 30));
    let v = verdict(&fail).await;
    assert_outcome(&v, Outcome::Fail, "p95 reaches fail_ms 30");
    assert!(v.values["p95_ms"] >= 60.0);
    fake.clear_faults();

    // Some errors: Warn; many: Fail.
    let mixed = ResponseTimeGate::new(
        "rt",
        conn(&fake),
        &ResponseTimeSettings {
            fail_error_percent: 60.0,
            ..timing(&["/web/login", "/no/such/route"], 2000, 5000)
        },
    );
    let v = verdict(&mixed).await;
    assert_outcome(&v, Outcome::Warn, "6 error(s) (first: http 404)");
    assert_eq!(v.values["errors_percent"], 50.0);
    fake.set_fault(Fault::ErrorRate {
        share: 1.0,
        kind: ErrorKind::Http500,
    });
    let v = verdict(&gate).await;
    assert_outcome(
        &v,
        Outcome::Fail,
        "100.0% errors reach fail_error_percent 10",
    );
    fake.clear_faults();

    let dead = target_at("green", &dead_url().await);
    let gate = ResponseTimeGate::new("rt", connect(&dead), &timing(&["/web/login"], 2000, 5000));
    assert_cannot_run(&gate, "none of 12 requests got an answer").await;
    assert_honours_deadline(&gate).await;
}

// ----- session-continuity -------------------------------------------------------------

#[tokio::test]
async fn session_continuity() {
    let fake = fake().await;
    let port = fake.address().port();
    let blue = target_at("blue", &format!("http://127.0.0.1:{port}"));
    // The same server under another name: a shared session store, as far as the gate
    // can tell.
    let green = target_at("green", &format!("http://localhost:{port}"));
    let gate = SessionContinuityGate::new("sessions", connect(&blue), connect(&green)).unwrap();
    let v = verdict(&gate).await;
    assert_outcome(
        &v,
        Outcome::Pass,
        "a session opened on `blue` is valid on `green` (uid 2",
    );
    let logouts = fake
        .received_requests()
        .iter()
        .filter(|r| r.path == "/web/session/destroy")
        .count();
    assert_eq!(logouts, 1, "the gate logs out again");
    // The cookie never shows.
    let cookies: Vec<String> = fake
        .received_requests()
        .iter()
        .filter_map(|r| r.header("cookie").map(str::to_owned))
        .collect();
    assert!(!cookies.is_empty());
    for cookie in &cookies {
        let id = cookie.trim_start_matches("session_id=");
        assert!(!v.message.contains(id));
    }

    // The very same target: nothing proven.
    let same = SessionContinuityGate::new("sessions", connect(&blue), connect(&blue)).unwrap();
    assert_outcome(
        &verdict(&same).await,
        Outcome::Warn,
        "same server and database",
    );

    // Two servers that do not share sessions: users would be logged out.
    let other = FakeOdoo::builder().start().await.unwrap();
    let apart = SessionContinuityGate::new(
        "sessions",
        connect(&blue),
        connect(&target_at("green", &other.uri())),
    )
    .unwrap();
    assert_outcome(
        &verdict(&apart).await,
        Outcome::Fail,
        "users would be logged out on switch",
    );

    // The session cannot be opened on the live side: the check could not run.
    let wrong = blue
        .clone()
        .with_password(SecretRef::plain_allowed("hunter2"));
    let gate = SessionContinuityGate::new("sessions", connect(&wrong), connect(&green)).unwrap();
    assert_cannot_run(
        &gate,
        "opening a web session on `blue`: odoo odoo.exceptions.AccessDenied",
    )
    .await;
    let dead = target_at("green", &dead_url().await);
    let gate = SessionContinuityGate::new("sessions", connect(&blue), connect(&dead)).unwrap();
    assert_cannot_run(&gate, "checking the session on `green`").await;
    assert_honours_deadline(&gate).await;

    // Web logins need a password.
    let key_only = Target::new("blue", fake.uri().parse().unwrap())
        .with_database("demo")
        .with_login("admin")
        .with_api_key(SecretRef::plain_allowed("k"));
    let err =
        SessionContinuityGate::new("sessions", connect(&key_only), connect(&green)).unwrap_err();
    assert!(
        matches!(&err, Error::MissingField { field, .. } if field == "password"),
        "{err:?}"
    );
}

// ----- plans through the registry -------------------------------------------------------

#[tokio::test]
async fn the_comprehensive_standard_plan_passes_against_the_fake() {
    let fake = fake().await;
    let port = fake.address().port();
    let green = target_at("green", &format!("http://127.0.0.1:{port}"));
    let blue = target_at("blue", &format!("http://localhost:{port}"));
    let plan = StandardPlan::new(green)
        .modules(["sale"])
        .expected_version("17.0")
        .expected_release("r1")
        .comprehensive(true)
        .session_from(blue)
        .build()
        .unwrap();
    let events = Arc::new(RecordingSink::new());
    let runner = Runner::from_plan(&plan, &Registry::with_builtins(), &*events).unwrap();
    let report = runner.run(events.clone()).await;
    let statuses: Vec<(String, GateStatus, String)> = report
        .gates
        .iter()
        .map(|g| {
            let last = g.last.clone().unwrap();
            (g.name.clone(), last.status, last.message)
        })
        .collect();
    assert_eq!(report.result, RunResult::Passed, "{statuses:#?}");
    assert!(
        statuses.iter().all(|(_, s, _)| *s == GateStatus::Pass),
        "{statuses:#?}"
    );
    assert_eq!(report.gates.len(), 12);
    assert!(smoke_left(&fake).is_empty());

    // The gates of the target share one login.
    let authenticate = fake
        .received_requests()
        .iter()
        .filter_map(|r| r.body_json())
        .filter(|b| b.pointer("/params/method").and_then(|m| m.as_str()) == Some("authenticate"))
        .count();
    assert_eq!(
        authenticate, 1,
        "auth logs in; modules, smoke and filestore reuse it"
    );
}

#[tokio::test]
async fn building_reports_what_a_target_lacks() {
    let plan: deploy_gates::Plan = r#"
        [[targets]]
        name = "green"
        url = "http://127.0.0.1:1"

        [[gates]]
        name = "auth"
        kind = "authentication"
    "#
    .parse()
    .unwrap();
    let err = Runner::from_plan(&plan, &Registry::with_builtins(), &NullSink).unwrap_err();
    assert!(
        matches!(&err, Error::MissingField { scope: Scope::Target(t), field } if t == "green" && field == "database"),
        "{err:?}"
    );

    let plan: deploy_gates::Plan = r#"
        [[targets]]
        name = "green"
        url = "http://127.0.0.1:1"
        database = "demo"
        login = "admin"
        password = { env = "DEPLOY_GATES_TEST_SURELY_UNSET_PASSWORD" }

        [[gates]]
        name = "health"
        kind = "health"
    "#
    .parse()
    .unwrap();
    let err = Runner::from_plan(&plan, &Registry::with_builtins(), &NullSink).unwrap_err();
    assert!(
        matches!(&err, Error::Secret { scope: Scope::Target(t), field, .. } if t == "green" && field == "password"),
        "{err:?}"
    );
}
