//! The tracing span of a call: its fields, and no secret in anything logged.
//! Alone in its test binary: tracing's callsite cache is process-wide, and
//! tests running in parallel without a subscriber would disturb it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use odoo_rpc::{Client, Domain, Protocol, SearchOptions};
use secrecy::SecretString;
use serde_json::{json, Value};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

const PASSWORD: &str = "pw-Sup3r-Secret-7781";

fn ok(result: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"jsonrpc": "2.0", "id": 1, "result": result}))
}

fn rpc_error(code: i64, name: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"jsonrpc": "2.0", "id": 1, "error": {
        "code": code, "message": "Odoo Server Error",
        "data": {"name": name, "debug": "Traceback", "message": message, "arguments": [message], "context": {}}}}))
}

fn login_mock(session: &'static str) -> Mock {
    Mock::given(path("/web/session/authenticate")).respond_with(
        ok(json!({"uid": 2, "db": "demo", "username": "admin"})).append_header(
            "set-cookie",
            format!("session_id={session}; HttpOnly; Path=/"),
        ),
    )
}

fn client(server: &MockServer, protocol: Protocol) -> Client {
    Client::builder(server.uri())
        .database("demo")
        .login("admin")
        .protocol(protocol)
        .password(SecretString::from(PASSWORD))
        .build()
        .unwrap()
}

/// Collects what the fmt subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn spans_carry_the_call_fields_and_no_secret() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    login_mock("cookie-value-Secret-99").mount(&server).await;
    Mock::given(path("/web/dataset/call_kw/res.partner/search_read"))
        .respond_with(ok(json!([])))
        .mount(&server)
        .await;
    Mock::given(path("/web/dataset/call_kw/res.partner/create"))
        .respond_with(rpc_error(200, "odoo.exceptions.ValidationError", "bad"))
        .mount(&server)
        .await;
    let client = client(&server, Protocol::Web);
    let _: Vec<Value> = client
        .search_read(
            "res.partner",
            &Domain::new(),
            &[],
            &SearchOptions::default(),
        )
        .await
        .unwrap();
    let _ = client
        .create("res.partner", json!({"name": "x"}))
        .await
        .unwrap_err();

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for needle in [
        "protocol=\"web\"",
        "model=\"res.partner\"",
        "method=\"search_read\"",
        "outcome=\"ok\"",
        "method=\"create\"",
        "outcome=\"user_error\"",
        "elapsed_ms=",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    for secret in [PASSWORD, "cookie-value-Secret-99"] {
        assert!(!text.contains(secret), "a secret reached the logs:\n{text}");
    }
}
