//! Wire-level tests with plain wiremock mocks and raw TCP servers: the exact
//! requests each protocol sends, and the client's behavior on edge answers
//! (bodies without a length, cut-short bodies, cookie rotation, retries).
//! The scenario tests against the fake Odoo are in `fake_odoo.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use odoo_rpc::{Client, Domain, Error, Op, Protocol, RetryPolicy, SearchOptions};
use secrecy::SecretString;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const PASSWORD: &str = "pw-Sup3r-Secret-7781";
const API_KEY: &str = "key-0d4f9e8a-7c1b-Secret";

fn ok(result: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"jsonrpc": "2.0", "id": 1, "result": result}))
}

fn rpc_error(code: i64, name: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"jsonrpc": "2.0", "id": 1, "error": {
        "code": code, "message": "Odoo Server Error",
        "data": {"name": name, "debug": "Traceback", "message": message, "arguments": [message], "context": {}}}}))
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

fn client(server: &MockServer, protocol: Protocol) -> Client {
    let builder = Client::builder(server.uri())
        .database("demo")
        .login("admin")
        .protocol(protocol)
        .retry(fast_retry());
    match protocol {
        Protocol::Json2 => builder.api_key(SecretString::from(API_KEY)),
        _ => builder.password(SecretString::from(PASSWORD)),
    }
    .build()
    .unwrap()
}

async fn requests_to(server: &MockServer, route: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == route)
        .collect()
}

fn login_mock(session: &'static str) -> Mock {
    Mock::given(method("POST"))
        .and(path("/web/session/authenticate"))
        .respond_with(
            ok(json!({"uid": 2, "db": "demo", "username": "admin"})).append_header(
                "set-cookie",
                format!(
                    "session_id={session}; Expires=Sat, 21 Feb 2099 10:00:00 GMT; HttpOnly; Path=/"
                ),
            ),
        )
}

#[tokio::test]
async fn web_login_then_call_kw_with_the_cookie() {
    let server = MockServer::start().await;
    login_mock("abc123").mount(&server).await;
    Mock::given(method("POST"))
        .and(path("/web/dataset/call_kw/res.partner/search_read"))
        .and(header("cookie", "session_id=abc123"))
        .respond_with(ok(json!([{"id": 1, "name": "A"}])))
        .mount(&server)
        .await;
    let client = client(&server, Protocol::Web);
    let rows: Vec<Value> = client
        .search_read(
            "res.partner",
            &Domain::leaf("is_company", Op::Eq, true),
            &["name"],
            &SearchOptions::default().limit(5).order("name"),
        )
        .await
        .unwrap();
    assert_eq!(rows, vec![json!({"id": 1, "name": "A"})]);

    let login = &requests_to(&server, "/web/session/authenticate").await[0];
    let body: Value = login.body_json().unwrap();
    assert_eq!(
        body["params"],
        json!({"db": "demo", "login": "admin", "password": PASSWORD})
    );
    assert_eq!(body["jsonrpc"], "2.0");
    let call = &requests_to(&server, "/web/dataset/call_kw/res.partner/search_read").await[0];
    let body: Value = call.body_json().unwrap();
    assert_eq!(
        body["params"],
        json!({"model": "res.partner", "method": "search_read",
               "args": [[["is_company", "=", true]]],
               "kwargs": {"fields": ["name"], "limit": 5, "order": "name"}})
    );
    assert!(call.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
}

#[tokio::test]
async fn web_follows_cookie_rotation() {
    let server = MockServer::start().await;
    login_mock("first").mount(&server).await;
    Mock::given(path("/web/dataset/call_kw/res.partner/search_count"))
        .and(header("cookie", "session_id=first"))
        .respond_with(
            ok(json!(1)).append_header("set-cookie", "session_id=second; HttpOnly; Path=/"),
        )
        .mount(&server)
        .await;
    Mock::given(path("/web/dataset/call_kw/res.partner/search_count"))
        .and(header("cookie", "session_id=second"))
        .respond_with(ok(json!(2)))
        .mount(&server)
        .await;
    let client = client(&server, Protocol::Web);
    assert_eq!(
        client
            .search_count("res.partner", &Domain::new())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        client
            .search_count("res.partner", &Domain::new())
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        requests_to(&server, "/web/session/authenticate")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn web_login_without_cookie_or_with_2fa() {
    let server = MockServer::start().await;
    Mock::given(path("/web/session/authenticate"))
        .respond_with(ok(json!({"uid": 2})))
        .mount(&server)
        .await;
    let err = client(&server, Protocol::Web)
        .authenticate()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");

    let server = MockServer::start().await;
    Mock::given(path("/web/session/authenticate"))
        .respond_with(ok(json!({"uid": null})).append_header("set-cookie", "session_id=x; Path=/"))
        .mount(&server)
        .await;
    let err = client(&server, Protocol::Web)
        .authenticate()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AccessDenied { .. }), "{err:?}");
}

/// A tiny web session server: logins hand out `s1`, `s2`, ...; calls with
/// anything but the newest session answer code 100.
struct Sessions {
    logins: AtomicUsize,
    valid: Mutex<Option<String>>,
}

#[tokio::test]
async fn concurrent_expired_calls_log_in_once() {
    let server = MockServer::start().await;
    let state = Arc::new(Sessions {
        logins: AtomicUsize::new(0),
        valid: Mutex::new(None),
    });
    let s = Arc::clone(&state);
    Mock::given(path("/web/session/authenticate"))
        .respond_with(move |_: &Request| {
            let n = s.logins.fetch_add(1, Ordering::SeqCst) + 1;
            let id = format!("s{n}");
            *s.valid.lock().unwrap() = Some(id.clone());
            ok(json!({"uid": 2})).append_header("set-cookie", format!("session_id={id}; Path=/"))
        })
        .mount(&server)
        .await;
    let s = Arc::clone(&state);
    Mock::given(path("/web/dataset/call_kw/res.partner/search"))
        .respond_with(move |r: &Request| {
            let cookie = r
                .headers
                .get("cookie")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let valid = s.valid.lock().unwrap().clone();
            if valid.is_some_and(|v| cookie == format!("session_id={v}")) {
                ok(json!([1])).set_delay(Duration::from_millis(20))
            } else {
                rpc_error(100, "odoo.http.SessionExpiredException", "Session expired")
                    .set_delay(Duration::from_millis(20))
            }
        })
        .mount(&server)
        .await;
    let client = client(&server, Protocol::Web);
    client.authenticate().await.unwrap();
    assert_eq!(state.logins.load(Ordering::SeqCst), 1);
    *state.valid.lock().unwrap() = None; // every session expires

    let calls = (0..10).map(|_| {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .search("res.partner", &Domain::new(), &SearchOptions::default())
                .await
        })
    });
    for call in futures_util::future::join_all(calls).await {
        assert_eq!(call.unwrap().unwrap(), vec![1]);
    }
    assert_eq!(
        state.logins.load(Ordering::SeqCst),
        2,
        "exactly one re-login"
    );
    assert_eq!(
        requests_to(&server, "/web/session/authenticate")
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn session_expired_twice_is_returned() {
    let server = MockServer::start().await;
    login_mock("s").mount(&server).await;
    Mock::given(path("/web/dataset/call_kw/res.partner/write"))
        .respond_with(rpc_error(
            100,
            "odoo.http.SessionExpiredException",
            "Session expired",
        ))
        .mount(&server)
        .await;
    let err = client(&server, Protocol::Web)
        .write("res.partner", &[1], json!({"name": "x"}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SessionExpired { .. }), "{err:?}");
    // one login, one renewal; two attempts of the write
    assert_eq!(
        requests_to(&server, "/web/session/authenticate")
            .await
            .len(),
        2
    );
    assert_eq!(
        requests_to(&server, "/web/dataset/call_kw/res.partner/write")
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn jsonrpc_authenticate_and_execute_kw() {
    let server = MockServer::start().await;
    Mock::given(path("/jsonrpc"))
        .and(body_partial_json(
            json!({"params": {"service": "common", "method": "authenticate"}}),
        ))
        .respond_with(ok(json!(2)))
        .mount(&server)
        .await;
    Mock::given(path("/jsonrpc"))
        .and(body_partial_json(
            json!({"params": {"service": "object", "method": "execute_kw"}}),
        ))
        .respond_with(ok(json!(true)))
        .mount(&server)
        .await;
    let client = client(&server, Protocol::JsonRpc);
    let mut values = Map::new();
    values.insert("name".into(), json!("B"));
    assert!(client
        .with_context(Map::from_iter([("lang".to_owned(), json!("fr_FR"))]))
        .write("res.partner", &[7, 8], values)
        .await
        .unwrap());
    let requests = requests_to(&server, "/jsonrpc").await;
    assert_eq!(requests.len(), 2);
    let auth: Value = requests[0].body_json().unwrap();
    assert_eq!(
        auth["params"]["args"],
        json!(["demo", "admin", PASSWORD, {}])
    );
    let call: Value = requests[1].body_json().unwrap();
    assert_eq!(
        call["params"]["args"],
        json!(["demo", 2, PASSWORD, "res.partner", "write", [[7, 8], {"name": "B"}], {"context": {"lang": "fr_FR"}}])
    );
}

#[tokio::test]
async fn jsonrpc_false_uid_is_access_denied() {
    let server = MockServer::start().await;
    Mock::given(path("/jsonrpc"))
        .respond_with(ok(json!(false)))
        .mount(&server)
        .await;
    let client = client(&server, Protocol::JsonRpc);
    let err = client.authenticate().await.unwrap_err();
    assert!(matches!(err, Error::AccessDenied { .. }), "{err:?}");
    let err = client
        .search("res.partner", &Domain::new(), &SearchOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AccessDenied { .. }), "{err:?}");
    for text in [format!("{err:?}"), format!("{err}"), format!("{client:?}")] {
        assert!(!text.contains(PASSWORD), "{text}");
    }
}

#[tokio::test]
async fn json2_named_arguments_and_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header(
            "authorization",
            format!("bearer {API_KEY}").as_str(),
        ))
        .and(header("x-odoo-database", "demo"))
        .respond_with(|r: &Request| {
            let body = match r.url.path() {
                "/json/2/res.partner/search_read" => json!([{"id": 3}]),
                "/json/2/res.partner/read" => json!([{"id": 3}]),
                "/json/2/res.partner/search" => json!([3]),
                "/json/2/res.partner/search_count" => json!(1),
                "/json/2/res.partner/create" => json!([11, 12]),
                "/json/2/res.partner/write" | "/json/2/res.partner/unlink" => json!(true),
                "/json/2/res.partner/fields_get" => json!({"name": {"type": "char"}}),
                "/json/2/res.users/context_get" => json!({"lang": "en_US", "tz": false, "uid": 2}),
                "/json/2/res.partner/name_search" => json!([[3, "A"]]),
                _ => return ResponseTemplate::new(404).set_body_string("<html>nope</html>"),
            };
            ResponseTemplate::new(200).set_body_json(body)
        })
        .mount(&server)
        .await;
    let client = client(&server, Protocol::Json2);
    let d = Domain::leaf("name", Op::ILike, "a");
    client
        .search_read::<Value>(
            "res.partner",
            &d,
            &["name"],
            &SearchOptions::default().limit(2).offset(1),
        )
        .await
        .unwrap();
    client
        .read::<Value>("res.partner", &[3], &["name"])
        .await
        .unwrap();
    client
        .search("res.partner", &d, &SearchOptions::default())
        .await
        .unwrap();
    client.search_count("res.partner", &d).await.unwrap();
    assert_eq!(
        client
            .create_many("res.partner", [json!({"name": "x"}), json!({"name": "y"})])
            .await
            .unwrap(),
        vec![11, 12]
    );
    assert_eq!(
        client
            .create("res.partner", json!({"name": "x"}))
            .await
            .unwrap(),
        11
    );
    client
        .write("res.partner", &[3], json!({"name": "z"}))
        .await
        .unwrap();
    client.unlink("res.partner", &[3]).await.unwrap();
    client.fields_get("res.partner", &["type"]).await.unwrap();
    assert_eq!(client.authenticate().await.unwrap(), 2);
    let mut kwargs = Map::new();
    kwargs.insert("name".into(), json!("A"));
    client
        .call_kw("res.partner", "name_search", vec![], kwargs)
        .await
        .unwrap();
    let err = client
        .call_kw("res.partner", "name_search", vec![json!("A")], Map::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");

    let bodies: Vec<(String, Value)> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| (r.url.path().to_owned(), r.body_json().unwrap()))
        .collect();
    let expected = [
        (
            "/json/2/res.partner/search_read",
            json!({"domain": [["name", "ilike", "a"]], "fields": ["name"], "limit": 2, "offset": 1}),
        ),
        (
            "/json/2/res.partner/read",
            json!({"ids": [3], "fields": ["name"]}),
        ),
        (
            "/json/2/res.partner/search",
            json!({"domain": [["name", "ilike", "a"]]}),
        ),
        (
            "/json/2/res.partner/search_count",
            json!({"domain": [["name", "ilike", "a"]]}),
        ),
        (
            "/json/2/res.partner/create",
            json!({"vals_list": [{"name": "x"}, {"name": "y"}]}),
        ),
        (
            "/json/2/res.partner/create",
            json!({"vals_list": [{"name": "x"}]}),
        ),
        (
            "/json/2/res.partner/write",
            json!({"ids": [3], "vals": {"name": "z"}}),
        ),
        ("/json/2/res.partner/unlink", json!({"ids": [3]})),
        (
            "/json/2/res.partner/fields_get",
            json!({"attributes": ["type"]}),
        ),
        ("/json/2/res.users/context_get", json!({})),
        ("/json/2/res.partner/name_search", json!({"name": "A"})),
    ];
    assert_eq!(bodies.len(), expected.len());
    for ((path, body), (want_path, want_body)) in bodies.iter().zip(expected) {
        assert_eq!((path.as_str(), body), (want_path, &want_body));
    }
}

#[tokio::test]
async fn auto_detects_from_the_version() {
    for (major, key, expected) in [
        (19, true, Protocol::Json2),
        (19, false, Protocol::Web),
        (17, true, Protocol::JsonRpc),
        (16, false, Protocol::JsonRpc),
    ] {
        let server = MockServer::start().await;
        Mock::given(path("/web/webclient/version_info"))
            .respond_with(ok(json!({"server_version": format!("{major}.0"),
                "server_version_info": [major, 0, 0, "final", 0, ""],
                "server_serie": format!("{major}.0"), "protocol_version": 1})))
            .mount(&server)
            .await;
        // everything else fails (without a 404, which makes JSON-2 probe the version)
        Mock::given(wiremock::matchers::any())
            .respond_with(
                ResponseTemplate::new(500)
                    .set_body_json(json!({"name": "builtins.Exception", "message": "no"})),
            )
            .with_priority(10)
            .mount(&server)
            .await;
        let builder = Client::builder(server.uri())
            .database("demo")
            .login("admin");
        let client = if key {
            builder.api_key(SecretString::from(API_KEY))
        } else {
            builder.password(SecretString::from(PASSWORD))
        }
        .build()
        .unwrap();
        assert_eq!(client.protocol(), Protocol::Auto);
        // the calls fail, the decision stays
        let _ = client.search_count("res.partner", &Domain::new()).await;
        let _ = client.search_count("res.partner", &Domain::new()).await;
        assert_eq!(client.protocol(), expected, "{major} key={key}");
        assert_eq!(
            requests_to(&server, "/web/webclient/version_info")
                .await
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn version_falls_back_to_common_version() {
    let server = MockServer::start().await;
    Mock::given(path("/web/webclient/version_info"))
        .respond_with(
            ResponseTemplate::new(404).set_body_string("<html><title>404 Not Found</title></html>"),
        )
        .mount(&server)
        .await;
    Mock::given(path("/jsonrpc"))
        .and(body_partial_json(json!({"params": {"service": "common", "method": "version"}})))
        .respond_with(ok(json!({"server_version": "saas~17.1", "server_version_info": ["saas~17", 1, 0, "final", 0, ""],
            "server_serie": "saas~17.1", "protocol_version": 1}))
            .append_header("x-odoo-release", "blue"))
        .mount(&server)
        .await;
    let v = Client::builder(server.uri())
        .build()
        .unwrap()
        .version()
        .await
        .unwrap();
    assert_eq!(v.major, 17);
    assert_eq!(v.server_version, "saas~17.1");
    assert_eq!(v.release.as_deref(), Some("blue"));
}

#[tokio::test]
async fn reads_are_retried_writes_are_not() {
    let server = MockServer::start().await;
    Mock::given(path("/jsonrpc"))
        .and(body_partial_json(
            json!({"params": {"method": "authenticate"}}),
        ))
        .respond_with(ok(json!(2)))
        .mount(&server)
        .await;
    Mock::given(path("/jsonrpc"))
        .and(body_partial_json(
            json!({"params": {"method": "execute_kw"}}),
        ))
        .respond_with(ResponseTemplate::new(502).set_body_raw(
            "<html><center><h1>502 Bad Gateway</h1></center></html>",
            "text/html",
        ))
        .mount(&server)
        .await;
    let client = client(&server, Protocol::JsonRpc);
    let err = client
        .search("res.partner", &Domain::new(), &SearchOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::HttpStatus { status: 502, .. }),
        "{err:?}"
    );
    let count = |requests: &[Request], m: &str| {
        requests
            .iter()
            .filter(|r| r.body_json::<Value>().unwrap()["params"]["args"][4] == m)
            .count()
    };
    let requests = requests_to(&server, "/jsonrpc").await;
    assert_eq!(count(&requests, "search"), 3, "1 try + 2 retries");

    let err = client
        .create("res.partner", json!({"name": "x"}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::HttpStatus { status: 502, .. }));
    let err = client
        .call_kw(
            "res.partner",
            "action_archive",
            vec![json!([1])],
            Map::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::HttpStatus { status: 502, .. }));
    let requests = requests_to(&server, "/jsonrpc").await;
    assert_eq!(count(&requests, "create"), 1, "create is never retried");
    assert_eq!(
        count(&requests, "action_archive"),
        1,
        "custom methods are never retried"
    );
    // a read through call_kw is retried
    let _ = client
        .call_kw("res.partner", "name_search", vec![json!("a")], Map::new())
        .await;
    let requests = requests_to(&server, "/jsonrpc").await;
    assert_eq!(count(&requests, "name_search"), 3);
}

#[tokio::test]
async fn json_500_is_an_odoo_error_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/json/2/res.partner/search"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({
            "name": "builtins.ZeroDivisionError", "message": "division by zero", "arguments": [], "context": {}, "debug": "tb"})))
        .mount(&server)
        .await;
    let client = client(&server, Protocol::Json2);
    let err = client
        .search("res.partner", &Domain::new(), &SearchOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Server { code: 500, name, .. } if name == "builtins.ZeroDivisionError"),
        "{err:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn timeouts() {
    let server = MockServer::start().await;
    Mock::given(path("/web/health"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "pass"}))
                .set_delay(Duration::from_millis(500)),
        )
        .mount(&server)
        .await;
    let client = Client::builder(server.uri())
        .timeout(Duration::from_secs(10))
        .retry(fast_retry())
        .build()
        .unwrap();
    let err = client
        .with_timeout(Duration::from_millis(50))
        .health()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout { timeout } if timeout == Duration::from_millis(50)),
        "{err:?}"
    );
    assert!(err.is_transport());
    // timeouts are not retried
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    // the original client keeps its own timeout
    assert_eq!(client.health().await.unwrap().status, "pass");
}

#[tokio::test]
async fn too_large_by_content_length() {
    let server = MockServer::start().await;
    Mock::given(path("/web/database/list"))
        .respond_with(ok(json!(vec!["x".repeat(100); 100])))
        .mount(&server)
        .await;
    let client = Client::builder(server.uri())
        .max_response_bytes(1000)
        .build()
        .unwrap();
    let err = client.list_databases().await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit: 1000 }), "{err:?}");
}

/// Serves one canned raw HTTP answer per connection.
async fn raw_server(answer: impl Fn() -> Vec<Vec<u8>> + Send + Sync + 'static) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut buf).await;
                for part in answer() {
                    if socket.write_all(&part).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn too_large_while_streaming_a_chunked_body() {
    let uri = raw_server(|| {
        let mut parts = vec![b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec()];
        let chunk = format!("{:x}\r\n{}\r\n", 1024, "a".repeat(1024));
        // endless: the client must stop on its own
        parts.extend(std::iter::repeat_n(chunk.into_bytes(), 10_000));
        parts
    })
    .await;
    let client = Client::builder(uri)
        .max_response_bytes(64 * 1024)
        .build()
        .unwrap();
    let err = client.health().await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit: 65536 }), "{err:?}");
}

#[tokio::test]
async fn body_cut_short_is_a_transport_error() {
    let uri = raw_server(|| {
        vec![b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"status\":".to_vec()]
    })
    .await;
    let client = Client::builder(uri)
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = client.health().await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.is_transport());
}

#[tokio::test]
async fn truncated_json_with_a_matching_length_is_a_decode_error() {
    let uri = raw_server(|| {
        let body = r#"{"jsonrpc":"2.0","id":1,"result":["demo","#;
        vec![format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()]
    })
    .await;
    let err = Client::builder(uri)
        .build()
        .unwrap()
        .list_databases()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
}

#[tokio::test]
async fn dead_server_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = Client::builder(format!("http://{addr}"))
        .database("demo")
        .login("admin")
        .password(SecretString::from(PASSWORD))
        .retry(fast_retry())
        .build()
        .unwrap();
    let err = client.version().await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let err = client
        .search("res.partner", &Domain::new(), &SearchOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(!format!("{err:?}").contains(PASSWORD));
}

#[tokio::test]
async fn secrets_echoed_by_the_server_are_scrubbed() {
    let server = MockServer::start().await;
    Mock::given(path("/jsonrpc"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"jsonrpc": "2.0", "id": 1, "error": {"code": 200, "message": "Odoo Server Error",
                "data": {"name": "builtins.Exception", "message": format!("bad {PASSWORD}"), "debug": format!("args = ('demo', 2, '{PASSWORD}')")}}})),
        )
        .mount(&server)
        .await;
    let err = client(&server, Protocol::JsonRpc)
        .authenticate()
        .await
        .unwrap_err();
    let text = format!("{err:?} {err}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(text.contains("[REDACTED]"));

    let server = MockServer::start().await;
    Mock::given(path("/json/2/res.partner/search"))
        .respond_with(
            ResponseTemplate::new(502).set_body_string(format!("{}{API_KEY}", "x".repeat(250))),
        )
        .mount(&server)
        .await;
    let err = client(&server, Protocol::Json2)
        .search("res.partner", &Domain::new(), &SearchOptions::default())
        .await
        .unwrap_err();
    let text = format!("{err:?} {err}");
    assert!(!text.contains(&API_KEY[..6]), "{text}");
}

#[tokio::test]
async fn invalid_names_never_reach_the_server() {
    let server = MockServer::start().await;
    let client = client(&server, Protocol::JsonRpc);
    let err = client
        .call_kw("res.partner/../x", "read", vec![], Map::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }));
    let err = client
        .call_kw("res.partner", "read?x=1", vec![], Map::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }));
    let err = client
        .write("res.partner", &[1], json!([1, 2]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }));
    assert!(server.received_requests().await.unwrap().is_empty());
}
