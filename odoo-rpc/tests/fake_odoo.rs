//! Scenario tests against the fake Odoo (`odoo_fixtures::FakeOdoo`): every
//! client call and every error path, for each Odoo version (16 to 19) and each
//! protocol that version speaks (web and jsonrpc everywhere, with a password
//! and, for jsonrpc, with an API key too; JSON-2 on 19).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use odoo_fixtures::{ErrorKind, FakeOdoo, Fault, OdooVersion, RecordedRequest};
use odoo_rpc::value::{Many2One, OdooOption};
use odoo_rpc::{Client, Domain, Error, Op, Protocol, RetryPolicy, SearchOptions};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Map, Value};

const DB: &str = "demo";
const LOGIN: &str = "admin";
const PASSWORD: &str = "pw-Qx73-never-printed";
const API_KEY: &str = "key-Vb52-never-printed";
const SECRETS: [&str; 2] = [PASSWORD, API_KEY];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Credential {
    Password,
    ApiKey,
}

/// One version × protocol × credential combination.
#[derive(Clone, Copy, Debug)]
struct Combo {
    version: OdooVersion,
    protocol: Protocol,
    credential: Credential,
}

impl fmt::Display for Combo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "odoo {} over {} with {:?}",
            self.version, self.protocol, self.credential
        )
    }
}

fn combos() -> Vec<Combo> {
    let mut all = Vec::new();
    for version in OdooVersion::ALL {
        let mut add = |protocol, credential| {
            all.push(Combo {
                version,
                protocol,
                credential,
            });
        };
        add(Protocol::Web, Credential::Password);
        add(Protocol::JsonRpc, Credential::Password);
        add(Protocol::JsonRpc, Credential::ApiKey);
        if version.major() >= 19 {
            add(Protocol::Json2, Credential::ApiKey);
        }
    }
    all
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(10),
    }
}

async fn fake(version: OdooVersion) -> FakeOdoo {
    FakeOdoo::builder()
        .version(version)
        .database(DB)
        .user(LOGIN, PASSWORD)
        .api_key(LOGIN, API_KEY)
        .synthetic_model("bench.record", 2_345)
        .start()
        .await
        .expect("the fake Odoo starts")
}

fn client_with(fake: &FakeOdoo, combo: Combo, secret: &str) -> Client {
    let builder = Client::builder(fake.uri())
        .database(DB)
        .login(LOGIN)
        .protocol(combo.protocol)
        .timeout(Duration::from_secs(10))
        .retry(fast_retry());
    match combo.credential {
        Credential::Password => builder.password(SecretString::from(secret.to_owned())),
        Credential::ApiKey => builder.api_key(SecretString::from(secret.to_owned())),
    }
    .build()
    .unwrap()
}

fn client(fake: &FakeOdoo, combo: Combo) -> Client {
    let secret = match combo.credential {
        Credential::Password => PASSWORD,
        Credential::ApiKey => API_KEY,
    };
    client_with(fake, combo, secret)
}

/// Runs `test` for every combination, each on a fresh fake (kept running
/// until the test's future is done).
async fn for_each_combo<F, Fut>(test: F)
where
    F: Fn(Combo, Arc<FakeOdoo>, Client) -> Fut,
    Fut: Future<Output = ()>,
{
    for combo in combos() {
        let fake = Arc::new(fake(combo.version).await);
        let client = client(&fake, combo);
        test(combo, Arc::clone(&fake), client).await;
        drop(fake);
    }
}

/// Asserts that no secret shows in the Debug and Display forms.
fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows a secret: {text}");
    }
}

fn assert_error_hides_secrets(combo: Combo, client: &Client, error: &Error) {
    assert_no_secret(&format!("{combo}: error"), &format!("{error:?} / {error}"));
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        assert_no_secret(&format!("{combo}: cause"), &format!("{cause:?} / {cause}"));
        source = cause.source();
    }
    assert_no_secret(&format!("{combo}: client"), &format!("{client:?}"));
}

/// The ORM method a recorded request called, whatever the protocol.
fn called_method(request: &RecordedRequest) -> Option<String> {
    let path = request.path.as_str();
    if let Some(rest) = path
        .strip_prefix("/web/dataset/call_kw/")
        .or_else(|| path.strip_prefix("/json/2/"))
    {
        return rest.rsplit('/').next().map(str::to_owned);
    }
    if path == "/jsonrpc" {
        let body = request.body_json()?;
        let params = &body["params"];
        if params["service"] == "object" && params["method"] == "execute_kw" {
            return params["args"][4].as_str().map(str::to_owned);
        }
    }
    None
}

fn count_calls(fake: &FakeOdoo, method: &str) -> usize {
    fake.received_requests()
        .iter()
        .filter(|r| called_method(r).as_deref() == Some(method))
        .count()
}

fn count_path(fake: &FakeOdoo, path: &str) -> usize {
    fake.received_requests()
        .iter()
        .filter(|r| r.path == path)
        .count()
}

#[derive(Debug, Deserialize)]
struct Partner {
    id: i64,
    name: String,
    email: OdooOption<String>,
    parent_id: OdooOption<Many2One>,
    is_company: bool,
}

fn values(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

#[tokio::test]
async fn every_call_on_every_version_and_protocol() {
    for_each_combo(|combo, fake, client| async move {
        // unauthenticated routes
        let version = client.version().await.unwrap();
        assert_eq!(version.major, combo.version.major(), "{combo}");
        assert_eq!(version.server_version, combo.version.to_string(), "{combo}");
        let health = client.health().await.unwrap();
        assert!(health.is_pass(), "{combo}: {health:?}");
        assert_eq!(health.http_status, 200);
        let health = client.health_with_db().await.unwrap();
        assert!(health.is_pass(), "{combo}: {health:?}");
        if combo.version.major() >= 17 {
            assert_eq!(health.db_server_status, Some(true), "{combo}");
        }
        assert_eq!(
            client.list_databases().await.unwrap(),
            vec![DB.to_owned()],
            "{combo}"
        );

        // login
        assert_eq!(client.authenticate().await.unwrap(), 2, "{combo}");
        assert_eq!(client.protocol(), combo.protocol);

        // create, read back, write, count, unlink
        let parent = client
            .create(
                "res.partner",
                values(&[("name", json!("Parent Co")), ("is_company", json!(true))]),
            )
            .await
            .unwrap();
        let child = client
            .create(
                "res.partner",
                values(&[
                    ("name", json!("Child")),
                    ("parent_id", json!(parent)),
                    ("email", json!("c@example.com")),
                ]),
            )
            .await
            .unwrap();
        let many = client
            .create_many(
                "res.partner",
                [json!({"name": "Many 1"}), json!({"name": "Many 2"})],
            )
            .await
            .unwrap();
        assert_eq!(many.len(), 2, "{combo}");
        assert!(many[0] < many[1]);

        let rows: Vec<Partner> = client
            .read(
                "res.partner",
                &[parent, child],
                &["name", "email", "parent_id", "is_company"],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "{combo}");
        let (p, c) = (&rows[0], &rows[1]);
        assert_eq!(
            (p.id, p.name.as_str(), p.is_company),
            (parent, "Parent Co", true),
            "{combo}"
        );
        assert_eq!(p.email.0, None, "{combo}: an empty char field reads false");
        assert_eq!(p.parent_id.0, None, "{combo}");
        assert_eq!(c.email.as_deref(), Some("c@example.com"));
        let c_parent = c.parent_id.0.as_ref().unwrap();
        assert_eq!(
            (c_parent.id, c_parent.name.as_deref()),
            (parent, Some("Parent Co")),
            "{combo}"
        );
        assert!(!c.is_company);

        let found = client
            .search(
                "res.partner",
                &Domain::leaf("name", Op::ILike, "many"),
                &SearchOptions::default().order("id desc"),
            )
            .await
            .unwrap();
        assert_eq!(found, vec![many[1], many[0]], "{combo}");
        let found = client
            .search(
                "res.partner",
                &Domain::leaf("name", Op::ILike, "many"),
                &SearchOptions::default().limit(1).offset(1).order("id asc"),
            )
            .await
            .unwrap();
        assert_eq!(found, vec![many[1]], "{combo}");

        let companies: Vec<Partner> = client
            .search_read(
                "res.partner",
                &Domain::leaf("is_company", Op::Eq, true).and(Domain::leaf("id", Op::Eq, parent)),
                &["name", "email", "parent_id", "is_company"],
                &SearchOptions::default().limit(5),
            )
            .await
            .unwrap();
        assert_eq!(companies.len(), 1, "{combo}");
        assert_eq!(companies[0].id, parent);

        let or_domain = Domain::leaf("id", Op::Eq, parent).or(Domain::leaf("id", Op::Eq, child));
        assert_eq!(
            client
                .search_count("res.partner", &or_domain)
                .await
                .unwrap(),
            2,
            "{combo}"
        );
        assert_eq!(
            client
                .search_count(
                    "res.partner",
                    &Domain::leaf("id", Op::In, vec![parent, child]).not()
                )
                .await
                .unwrap(),
            client
                .search_count("res.partner", &Domain::new())
                .await
                .unwrap()
                - 2,
            "{combo}"
        );

        assert!(
            client
                .write("res.partner", &[child], json!({"name": "Renamed"}))
                .await
                .unwrap(),
            "{combo}"
        );
        let rows: Vec<Value> = client
            .read("res.partner", &[child], &["name"])
            .await
            .unwrap();
        assert_eq!(rows[0]["name"], "Renamed", "{combo}");

        assert!(
            client.unlink("res.partner", &many).await.unwrap(),
            "{combo}"
        );
        // like Odoo, `read` drops records that no longer exist
        let gone: Vec<Value> = client.read("res.partner", &many, &["name"]).await.unwrap();
        assert!(gone.is_empty(), "{combo}: {gone:?}");

        let fields = client
            .fields_get("res.partner", &["type", "string"])
            .await
            .unwrap();
        assert_eq!(
            fields["name"].field_type.as_deref(),
            Some("char"),
            "{combo}"
        );
        assert_eq!(
            fields["parent_id"].field_type.as_deref(),
            Some("many2one"),
            "{combo}"
        );

        // generic call_kw: positional where the protocol allows it, named on JSON-2
        let count = if combo.protocol == Protocol::Json2 {
            client
                .call_kw(
                    "res.partner",
                    "search_count",
                    vec![],
                    values(&[("domain", json!([["id", "=", parent]]))]),
                )
                .await
                .unwrap()
        } else {
            client
                .call_kw(
                    "res.partner",
                    "search_count",
                    vec![json!([["id", "=", parent]])],
                    Map::new(),
                )
                .await
                .unwrap()
        };
        assert_eq!(count, json!(1), "{combo}");

        // a per-call context reaches the server
        let french = client.with_context(values(&[("lang", json!("fr_FR"))]));
        french
            .search_count("res.partner", &Domain::new())
            .await
            .unwrap();
        let last = fake.received_requests().pop().unwrap();
        let body = last.body_json().unwrap();
        let context = match combo.protocol {
            Protocol::Web => body["params"]["kwargs"]["context"].clone(),
            Protocol::JsonRpc => body["params"]["args"][6]["context"].clone(),
            _ => body["context"].clone(),
        };
        assert_eq!(context, json!({"lang": "fr_FR"}), "{combo}");
    })
    .await;
}

#[tokio::test]
async fn auto_detects_the_protocol_from_the_version() {
    for version in OdooVersion::ALL {
        let fake = fake(version).await;
        for credential in [Credential::Password, Credential::ApiKey] {
            let combo = Combo {
                version,
                protocol: Protocol::Auto,
                credential,
            };
            let client = client(&fake, combo);
            let expected = match (credential, version.major() >= 19) {
                (Credential::ApiKey, true) => Protocol::Json2,
                (Credential::Password, true) => Protocol::Web,
                _ => Protocol::JsonRpc,
            };
            let users = client
                .search_count("res.users", &Domain::new())
                .await
                .unwrap();
            assert!(users >= 1, "{combo}");
            assert_eq!(client.protocol(), expected, "{combo}");
            assert_eq!(client.authenticate().await.unwrap(), 2, "{combo}");
        }
    }
}

#[tokio::test]
async fn wrong_password_or_api_key_is_access_denied() {
    for combo in combos() {
        let fake = fake(combo.version).await;
        let client = client_with(&fake, combo, "wrong-secret");
        let err = client.authenticate().await.unwrap_err();
        assert!(
            matches!(err, Error::AccessDenied { .. }),
            "{combo}: {err:?}"
        );
        assert!(err.is_server());
        assert_error_hides_secrets(combo, &client, &err);
        let err = client
            .search("res.partner", &Domain::new(), &SearchOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::AccessDenied { .. }),
            "{combo}: {err:?}"
        );
        assert_error_hides_secrets(combo, &client, &err);
    }
}

#[tokio::test]
async fn unknown_model() {
    for_each_combo(|combo, _fake, client| async move {
        let err = client.search_count("no.such.model", &Domain::new()).await.unwrap_err();
        let expected = match combo.protocol {
            Protocol::Json2 => matches!(err, Error::NotFound { .. }),
            Protocol::JsonRpc => matches!(&err, Error::UserError { message, .. } if message.contains("doesn't exist")),
            _ if combo.version.major() >= 18 => matches!(err, Error::NotFound { .. }),
            _ => matches!(&err, Error::Server { name, .. } if name == "builtins.KeyError"),
        };
        assert!(expected, "{combo}: {err:?}");
        assert_error_hides_secrets(combo, &client, &err);
    })
    .await;
}

#[tokio::test]
async fn missing_record() {
    for_each_combo(|combo, _fake, client| async move {
        // Odoo's `read` silently drops missing records; `write` raises MissingError
        let rows: Vec<Value> = client
            .read("res.partner", &[999_999], &["name"])
            .await
            .unwrap();
        assert!(rows.is_empty(), "{combo}: {rows:?}");
        let err = client
            .write("res.partner", &[999_999], json!({"name": "x"}))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::MissingError { .. }),
            "{combo}: {err:?}"
        );
        assert!(err.is_server());
        assert_error_hides_secrets(combo, &client, &err);
    })
    .await;
}

#[tokio::test]
async fn list_db_off_is_access_denied() {
    for version in OdooVersion::ALL {
        let fake = FakeOdoo::builder()
            .version(version)
            .list_db(false)
            .start()
            .await
            .unwrap();
        let client = Client::builder(fake.uri()).build().unwrap();
        let err = client.list_databases().await.unwrap_err();
        assert!(
            matches!(err, Error::AccessDenied { .. }),
            "{version}: {err:?}"
        );
    }
}

#[tokio::test]
async fn expired_sessions_cause_a_single_reauthentication() {
    for_each_combo(|combo, fake, client| async move {
        client.authenticate().await.unwrap();
        let logins_before = count_path(&fake, "/web/session/authenticate");
        fake.expire_sessions();
        let calls = (0..10).map(|i| {
            let client = client.clone();
            async move {
                client
                    .search(
                        "res.partner",
                        &Domain::new(),
                        &SearchOptions::default().limit(i + 1),
                    )
                    .await
            }
        });
        for result in futures_util::future::join_all(calls).await {
            assert!(!result.unwrap().is_empty(), "{combo}");
        }
        let logins = count_path(&fake, "/web/session/authenticate") - logins_before;
        let expected = usize::from(combo.protocol == Protocol::Web);
        assert_eq!(
            logins, expected,
            "{combo}: re-logins after expiry (before: {logins_before})"
        );
    })
    .await;
}

#[tokio::test]
async fn health_failing_and_database_down() {
    for_each_combo(|combo, fake, client| async move {
        client.authenticate().await.unwrap();
        fake.set_fault(Fault::HealthFailing(true));
        let health = client.health().await.unwrap();
        assert_eq!(
            (health.status.as_str(), health.http_status),
            ("fail", 500),
            "{combo}"
        );
        assert!(!health.is_pass());
        fake.clear_faults();

        fake.set_fault(Fault::DatabaseDown(true));
        let health = client.health_with_db().await.unwrap();
        if combo.version.major() >= 17 {
            assert_eq!(health.db_server_status, Some(false), "{combo}");
            assert_eq!(health.http_status, 500, "{combo}");
            assert!(!health.is_pass());
        }
        assert_eq!(
            client.list_databases().await.unwrap(),
            Vec::<String>::new(),
            "{combo}"
        );
        let err = client
            .search_count("res.partner", &Domain::new())
            .await
            .unwrap_err();
        assert!(err.is_server(), "{combo}: {err:?}");
        // the JSON-RPC code is 200 up to 18 and 0 on 19; JSON-2 sends HTTP 500
        let expected_code = match (combo.protocol, combo.version.major()) {
            (Protocol::Json2, _) => 500,
            (_, 19) => 0,
            _ => 200,
        };
        assert!(
            matches!(&err, Error::Server { name, code, .. }
                if name == "psycopg2.OperationalError" && *code == expected_code),
            "{combo}: {err:?}"
        );
        fake.clear_faults();
        assert!(
            client
                .search_count("res.partner", &Domain::new())
                .await
                .unwrap()
                > 0
        );
    })
    .await;
}

#[tokio::test]
async fn latency_beyond_the_per_call_timeout() {
    for_each_combo(|combo, fake, client| async move {
        client.authenticate().await.unwrap();
        fake.set_fault(Fault::Latency(Duration::from_millis(300)));
        let err = client
            .with_timeout(Duration::from_millis(50))
            .search_count("res.partner", &Domain::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Timeout { timeout } if timeout == Duration::from_millis(50)),
            "{combo}: {err:?}"
        );
        // the client's own timeout still allows the slow answer
        assert!(
            client
                .search_count("res.partner", &Domain::new())
                .await
                .unwrap()
                > 0,
            "{combo}"
        );
        fake.clear_faults();
    })
    .await;
}

#[tokio::test]
async fn error_pages_are_retried_on_reads_only() {
    for_each_combo(|combo, fake, client| async move {
        client.authenticate().await.unwrap();
        for (kind, status) in [(ErrorKind::Http500, 500), (ErrorKind::HtmlBadGateway, 502)] {
            fake.set_fault(Fault::ErrorRate { share: 1.0, kind });
            let reads = count_calls(&fake, "search_read");
            let err = client
                .search_read::<Value>(
                    "res.partner",
                    &Domain::new(),
                    &["name"],
                    &SearchOptions::default(),
                )
                .await
                .unwrap_err();
            assert!(
                matches!(err, Error::HttpStatus { status: s, .. } if s == status),
                "{combo}: {err:?}"
            );
            assert!(err.is_transport());
            assert_error_hides_secrets(combo, &client, &err);
            assert_eq!(
                count_calls(&fake, "search_read") - reads,
                3,
                "{combo}: 1 try + 2 retries"
            );

            let creates = count_calls(&fake, "create");
            let err = client
                .create("res.partner", json!({"name": "never twice"}))
                .await
                .unwrap_err();
            assert!(
                matches!(err, Error::HttpStatus { status: s, .. } if s == status),
                "{combo}: {err:?}"
            );
            assert_eq!(
                count_calls(&fake, "create") - creates,
                1,
                "{combo}: create is not retried"
            );

            let writes = count_calls(&fake, "write");
            let _ = client
                .write("res.partner", &[3], json!({"name": "x"}))
                .await
                .unwrap_err();
            assert_eq!(
                count_calls(&fake, "write") - writes,
                1,
                "{combo}: write is not retried"
            );
            fake.clear_faults();
        }
        // a share of failures is absorbed by the retries of a read
        fake.set_fault(Fault::ErrorRate {
            share: 0.3,
            kind: ErrorKind::HtmlBadGateway,
        });
        let patient = client.clone();
        let mut ok = 0;
        for _ in 0..20 {
            if patient
                .search_count("res.partner", &Domain::new())
                .await
                .is_ok()
            {
                ok += 1;
            }
        }
        assert!(
            ok >= 15,
            "{combo}: only {ok}/20 reads got through 30% of 502s with 2 retries"
        );
        fake.clear_faults();
    })
    .await;
}

#[tokio::test]
async fn response_size_limit() {
    for combo in combos() {
        let fake = fake(combo.version).await;
        let client = Client::builder(fake.uri())
            .database(DB)
            .login(LOGIN)
            .protocol(combo.protocol)
            .max_response_bytes(4 * 1024);
        let client = match combo.credential {
            Credential::Password => client.password(SecretString::from(PASSWORD)),
            Credential::ApiKey => client.api_key(SecretString::from(API_KEY)),
        }
        .build()
        .unwrap();
        let small = client
            .search_count("bench.record", &Domain::new())
            .await
            .unwrap();
        assert_eq!(small, 2_345, "{combo}");
        let err = client
            .search_read::<Value>(
                "bench.record",
                &Domain::new(),
                &[],
                &SearchOptions::default().limit(1000),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::TooLarge { limit: 4096 }),
            "{combo}: {err:?}"
        );
    }
}

#[tokio::test]
async fn dead_server_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    for combo in combos() {
        let client = Client::builder(format!("http://{address}"))
            .database(DB)
            .login(LOGIN)
            .password(SecretString::from(PASSWORD))
            .api_key(SecretString::from(API_KEY))
            .protocol(combo.protocol)
            .retry(fast_retry())
            .build()
            .unwrap();
        for err in [
            client.version().await.unwrap_err(),
            client.health().await.unwrap_err(),
            client.authenticate().await.unwrap_err(),
            client
                .search_count("res.partner", &Domain::new())
                .await
                .unwrap_err(),
            client
                .create("res.partner", json!({"name": "x"}))
                .await
                .unwrap_err(),
        ] {
            assert!(matches!(err, Error::Connect { .. }), "{combo}: {err:?}");
            assert!(err.is_transport());
            assert_error_hides_secrets(combo, &client, &err);
        }
    }
}

#[derive(Debug, Deserialize)]
struct BenchRecord {
    id: i64,
}

#[tokio::test]
async fn streaming_pages_by_id() {
    for_each_combo(|combo, fake, client| async move {
        let pages_before = count_calls(&fake, "search_read");
        let records: Vec<BenchRecord> = client
            .search_read_stream("bench.record", Domain::new(), vec!["id".into()], 500)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(records.len(), 2_345, "{combo}");
        assert!(
            records.windows(2).all(|w| w[0].id < w[1].id),
            "{combo}: ids increase"
        );
        // 4 full pages and a short one
        assert_eq!(
            count_calls(&fake, "search_read") - pages_before,
            5,
            "{combo}"
        );

        // a filter, and a total that is a multiple of the page size: one empty page ends it
        let pages_before = count_calls(&fake, "search_read");
        let filtered = client.search_read_stream::<Value>(
            "bench.record",
            Domain::leaf("id", Op::Le, 1000),
            vec![],
            250,
        );
        let count = filtered
            .try_fold(0usize, |n, _| async move { Ok(n + 1) })
            .await
            .unwrap();
        assert_eq!(count, 1000, "{combo}");
        assert_eq!(
            count_calls(&fake, "search_read") - pages_before,
            5,
            "{combo}"
        );

        // pages are fetched lazily: taking 3 records asks for one page
        let pages_before = count_calls(&fake, "search_read");
        let first: Vec<Result<BenchRecord, Error>> = client
            .search_read_stream("bench.record", Domain::new(), vec!["id".into()], 100)
            .take(3)
            .collect()
            .await;
        assert_eq!(first.len(), 3);
        assert_eq!(
            count_calls(&fake, "search_read") - pages_before,
            1,
            "{combo}"
        );

        // errors end the stream
        let mut failing = Box::pin(client.search_read_stream::<Value>(
            "no.such.model",
            Domain::new(),
            vec![],
            10,
        ));
        assert!(failing.next().await.unwrap().is_err(), "{combo}");
        assert!(failing.next().await.is_none());
        let mut zero =
            Box::pin(client.search_read_stream::<Value>("bench.record", Domain::new(), vec![], 0));
        assert!(matches!(zero.next().await, Some(Err(Error::Config { .. }))));
    })
    .await;
}

#[tokio::test]
async fn secrets_never_reach_requests_logs_or_urls_they_do_not_belong_to() {
    for_each_combo(|combo, fake, client| async move {
        client
            .search_count("res.partner", &Domain::new())
            .await
            .unwrap();
        for request in fake.received_requests() {
            assert_no_secret(&format!("{combo}: url"), &request.path);
            if let Some(query) = &request.query {
                assert_no_secret(&format!("{combo}: query"), query);
            }
            // JSON-2 sends the key only as a bearer header
            if combo.protocol == Protocol::Json2 {
                assert_no_secret(
                    &format!("{combo}: body"),
                    &String::from_utf8_lossy(&request.body),
                );
                assert_eq!(
                    request.header("authorization"),
                    Some(format!("bearer {API_KEY}").as_str())
                );
            }
            // web calls send the session cookie, never the password
            if request.path.starts_with("/web/dataset/call_kw") {
                assert_no_secret(
                    &format!("{combo}: body"),
                    &String::from_utf8_lossy(&request.body),
                );
                assert!(request.header("cookie").unwrap().starts_with("session_id="));
            }
        }
        assert_no_secret(&format!("{combo}: client"), &format!("{client:?}"));
    })
    .await;
}

#[derive(Debug, Deserialize)]
struct WithChildren {
    child_ids: Vec<i64>,
    #[serde(with = "odoo_rpc::value::datetime")]
    write_date: chrono::DateTime<chrono::Utc>,
}

#[tokio::test]
async fn x2many_commands_and_datetimes() {
    use odoo_rpc::X2ManyCommand;
    for_each_combo(|combo, _fake, client| async move {
        let parent = client
            .create(
                "res.partner",
                json!({"name": "Holding", "child_ids": [
                    X2ManyCommand::Create(json!({"name": "Sub 1"})),
                    X2ManyCommand::Create(json!({"name": "Sub 2"})),
                ]}),
            )
            .await
            .unwrap();
        let rows: Vec<WithChildren> = client
            .read("res.partner", &[parent], &["child_ids", "write_date"])
            .await
            .unwrap();
        assert_eq!(rows[0].child_ids.len(), 2, "{combo}");
        assert!(rows[0].write_date.timestamp() > 1_600_000_000, "{combo}");
        let (first, second) = (rows[0].child_ids[0], rows[0].child_ids[1]);

        let commands: Vec<X2ManyCommand> = vec![X2ManyCommand::Unlink(first)];
        client
            .write("res.partner", &[parent], json!({"child_ids": commands}))
            .await
            .unwrap();
        let rows: Vec<WithChildren> = client
            .read("res.partner", &[parent], &["child_ids", "write_date"])
            .await
            .unwrap();
        assert_eq!(rows[0].child_ids, vec![second], "{combo}");

        client
            .write(
                "res.partner",
                &[parent],
                json!({"child_ids": [X2ManyCommand::<Value>::Set(vec![first, second])]}),
            )
            .await
            .unwrap();
        let rows: Vec<WithChildren> = client
            .read("res.partner", &[parent], &["child_ids", "write_date"])
            .await
            .unwrap();
        let mut children = rows[0].child_ids.clone();
        children.sort_unstable();
        assert_eq!(children, vec![first, second], "{combo}");

        // a mismatched type is a decode error, not a silent None
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Wrong {
            name: OdooOption<i64>,
        }
        let err = client
            .read::<Wrong>("res.partner", &[parent], &["name"])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "{combo}: {err:?}");
    })
    .await;
}

#[tokio::test]
async fn json2_on_an_older_server_is_a_config_error() {
    for version in [OdooVersion::V16, OdooVersion::V17, OdooVersion::V18] {
        let fake = fake(version).await;
        let combo = Combo {
            version,
            protocol: Protocol::Json2,
            credential: Credential::ApiKey,
        };
        let err = client(&fake, combo)
            .search_count("res.partner", &Domain::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{combo}: {err:?}");
    }
}

#[tokio::test]
async fn sessions_that_time_out_are_renewed() {
    for version in OdooVersion::ALL {
        let fake = FakeOdoo::builder()
            .version(version)
            .database(DB)
            .user(LOGIN, PASSWORD)
            .session_lifetime(Duration::from_millis(200))
            .start()
            .await
            .unwrap();
        let combo = Combo {
            version,
            protocol: Protocol::Web,
            credential: Credential::Password,
        };
        let client = client(&fake, combo);
        assert!(
            client
                .search_count("res.partner", &Domain::new())
                .await
                .unwrap()
                > 0
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            client
                .search_count("res.partner", &Domain::new())
                .await
                .unwrap()
                > 0,
            "{combo}"
        );
        assert_eq!(count_path(&fake, "/web/session/authenticate"), 2, "{combo}");
    }
}
