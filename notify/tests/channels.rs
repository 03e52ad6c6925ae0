//! Deliveries to Slack, Teams and webhook receivers played by wiremock servers on
//! loopback: the payloads, `429` with `Retry-After`, Slack's `404 no_service`, `5xx`
//! retried, a server that never answers, and no URL in anything reported.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use deploy_core::{NullSink, SecretRef};
use deploy_notify::{ChannelKind, ChannelSpec, Notice, NoticeKind, Notifier, Outcome, Policy};
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const HOOK: &str = "/services/T000/B000/SECRETTOKEN123";

fn notice(kind: NoticeKind) -> Notice {
    Notice::new(kind, "shop", "release 17.0-42 serves; the gates passed")
        .with_releases(Some("17.0-41"), Some("17.0-42"))
        .with_operator("ci")
        .with_fact("Duration", "42 s")
}

/// A notifier with one channel of `kind` at `server`, its URL read from a file (as a
/// secret is), under `policy`.
fn notifier(
    server: &MockServer,
    kind: ChannelKind,
    policy: Policy,
) -> (Notifier, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("url");
    std::fs::write(&file, format!("{}{HOOK}\n", server.uri())).unwrap();
    let spec = ChannelSpec::new("team", kind, SecretRef::file(&file));
    (
        Notifier::from_specs(&[spec], policy, &NullSink).unwrap(),
        dir,
    )
}

async fn body(server: &MockServer) -> Value {
    let requests = server.received_requests().await.unwrap();
    serde_json::from_slice(&requests.last().unwrap().body).unwrap()
}

#[tokio::test]
async fn slack_gets_text_and_blocks() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    let (notifier, _dir) = notifier(&server, ChannelKind::Slack, Policy::default());
    let deliveries = notifier.send(&notice(NoticeKind::Succeeded)).await;
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].delivered(), "{:?}", deliveries[0]);
    let body = body(&server).await;
    assert!(body["text"]
        .as_str()
        .unwrap()
        .contains("Deploy succeeded: shop: release 17.0-42 serves"));
    assert_eq!(body["blocks"][0]["type"], "header");
    assert_eq!(body["blocks"][0]["text"]["text"], "Deploy succeeded: shop");
    let fields = body["blocks"][2]["fields"].to_string();
    assert!(
        fields.contains("*From*\\n17.0-41") && fields.contains("*Operator*\\nci"),
        "{fields}"
    );
}

#[tokio::test]
async fn teams_gets_an_adaptive_card_and_202_is_delivered() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    let (notifier, _dir) = notifier(&server, ChannelKind::Teams, Policy::default());
    let deliveries = notifier.send(&notice(NoticeKind::RolledBack)).await;
    assert!(deliveries[0].delivered(), "{:?}", deliveries[0]);
    let body = body(&server).await;
    assert_eq!(body["type"], "message");
    let attachment = &body["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(attachment["content"]["type"], "AdaptiveCard");
    assert_eq!(attachment["content"]["version"], "1.4");
    assert_eq!(
        attachment["content"]["body"][0]["text"],
        "Deploy rolled back: shop"
    );
    assert_eq!(attachment["content"]["body"][2]["type"], "FactSet");
}

#[tokio::test]
async fn a_webhook_gets_alertmanagers_payload() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let (notifier, _dir) = notifier(&server, ChannelKind::Webhook, Policy::default());
    notifier.send(&notice(NoticeKind::RolledBack)).await;
    let body = body(&server).await;
    assert_eq!(body["version"], "4");
    assert_eq!(body["status"], "firing");
    let alert = &body["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "OdooDeployRolledBack");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["stack"], "shop");
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    assert!(alert["annotations"]["description"]
        .as_str()
        .unwrap()
        .contains("From: 17.0-41"));
    notifier.send(&notice(NoticeKind::Succeeded)).await;
    assert_eq!(body_of_last(&server).await["status"], "resolved");
}

async fn body_of_last(server: &MockServer) -> Value {
    body(server).await
}

#[tokio::test]
async fn a_429_waits_what_retry_after_says_then_delivers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .with_priority(2)
        .mount(&server)
        .await;
    let (notifier, _dir) = notifier(&server, ChannelKind::Slack, Policy::default());
    let started = Instant::now();
    let deliveries = notifier.send(&notice(NoticeKind::Started)).await;
    assert!(deliveries[0].delivered(), "{:?}", deliveries[0]);
    assert_eq!(deliveries[0].attempts, 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
}

#[tokio::test]
async fn a_retry_after_past_the_budget_gives_up_at_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "120"))
        .mount(&server)
        .await;
    let policy = Policy {
        budget: Duration::from_secs(5),
        ..Policy::default()
    };
    let (notifier, _dir) = notifier(&server, ChannelKind::Slack, policy);
    let started = Instant::now();
    let deliveries = notifier.send(&notice(NoticeKind::Started)).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(deliveries[0].attempts, 1);
    let Outcome::GaveUp { reason } = &deliveries[0].outcome else {
        panic!("{:?}", deliveries[0])
    };
    assert!(reason.contains("Retry-After 120 s"), "{reason}");
}

#[tokio::test]
async fn slacks_404_no_service_is_permanent_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_string("no_service"))
        .mount(&server)
        .await;
    let (notifier, _dir) = notifier(&server, ChannelKind::Slack, Policy::default());
    let deliveries = notifier.send(&notice(NoticeKind::Failed)).await;
    assert_eq!(
        deliveries[0].outcome,
        Outcome::Rejected {
            status: 404,
            answer: "no_service".to_owned()
        }
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let line = deliveries[0].describe();
    assert!(
        line.contains("404") && line.contains("no_service") && line.contains("not retried"),
        "{line}"
    );
    assert!(!line.contains("SECRETTOKEN"), "{line}");
}

#[tokio::test]
async fn server_errors_are_retried_with_a_backoff() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("rollup_error"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&server)
        .await;
    let policy = Policy {
        backoff: Duration::from_millis(50),
        ..Policy::default()
    };
    let (notifier, _dir) = notifier(&server, ChannelKind::Webhook, policy);
    let deliveries = notifier.send(&notice(NoticeKind::Refused)).await;
    assert!(deliveries[0].delivered(), "{:?}", deliveries[0]);
    assert_eq!(deliveries[0].attempts, 3);
}

#[tokio::test]
async fn a_server_that_never_answers_neither_blocks_the_caller_nor_the_other_channels() {
    let silent = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&silent)
        .await;
    let fast = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&fast)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let url = |server: &MockServer, name: &str| {
        let file = dir.path().join(name);
        std::fs::write(&file, format!("{}{HOOK}", server.uri())).unwrap();
        SecretRef::file(file)
    };
    let policy = Policy {
        attempts: 2,
        attempt_timeout: Duration::from_millis(300),
        budget: Duration::from_secs(2),
        backoff: Duration::from_millis(100),
    };
    let notifier = Notifier::from_specs(
        &[
            ChannelSpec::new("silent", ChannelKind::Webhook, url(&silent, "silent")),
            ChannelSpec::new("team", ChannelKind::Slack, url(&fast, "fast")),
        ],
        policy,
        &NullSink,
    )
    .unwrap();
    let started = Instant::now();
    let pending = notifier.post(&notice(NoticeKind::RolledBack));
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "post returns at once"
    );
    // The operation stops waiting after 200 ms: the fast one is in, the silent one is
    // still trying and said so.
    let deliveries = pending.wait(Duration::from_millis(200)).await;
    assert!(started.elapsed() < Duration::from_millis(500));
    let by_name = |name: &str| deliveries.iter().find(|d| d.channel == name).unwrap();
    assert!(by_name("team").delivered());
    assert_eq!(by_name("silent").outcome, Outcome::Pending);
    // Waited for in full, it gives up within its budget.
    let started = Instant::now();
    let deliveries = notifier.send(&notice(NoticeKind::RolledBack)).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let silent_delivery = deliveries.iter().find(|d| d.channel == "silent").unwrap();
    let Outcome::GaveUp { reason } = &silent_delivery.outcome else {
        panic!("{silent_delivery:?}")
    };
    assert!(reason.contains("timed out"), "{reason}");
    assert!(
        !reason.contains("SECRETTOKEN") && !reason.contains("127.0.0.1"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_dead_server_gives_up_without_naming_the_url() {
    // A port nothing listens on, on loopback.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("url");
    std::fs::write(&file, format!("http://127.0.0.1:{port}{HOOK}")).unwrap();
    let policy = Policy {
        backoff: Duration::from_millis(20),
        ..Policy::default()
    };
    let notifier = Notifier::from_specs(
        &[ChannelSpec::new(
            "team",
            ChannelKind::Slack,
            SecretRef::file(&file),
        )],
        policy,
        &NullSink,
    )
    .unwrap();
    let deliveries = notifier.send(&notice(NoticeKind::Failed)).await;
    assert_eq!(deliveries[0].attempts, 3);
    let line = deliveries[0].describe();
    assert!(line.contains("could not connect"), "{line}");
    assert!(!line.contains("SECRETTOKEN"), "{line}");
    assert!(!format!("{notifier:?}").contains("SECRETTOKEN"));
}

#[tokio::test]
async fn a_channel_gets_only_the_notices_it_asks_for_and_bad_urls_are_refused() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("url");
    std::fs::write(&file, format!("{}{HOOK}", server.uri())).unwrap();
    let mut spec = ChannelSpec::new("oncall", ChannelKind::Webhook, SecretRef::file(&file));
    spec.events = Some(vec![NoticeKind::Failed, NoticeKind::RolledBack]);
    let notifier = Notifier::from_specs(&[spec], Policy::default(), &NullSink).unwrap();
    assert!(notifier
        .send(&notice(NoticeKind::Succeeded))
        .await
        .is_empty());
    assert_eq!(notifier.send(&notice(NoticeKind::Failed)).await.len(), 1);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);

    std::fs::write(&file, "hooks.slack.com/services/SECRETTOKEN123").unwrap();
    let err = Notifier::from_specs(
        &[ChannelSpec::new(
            "team",
            ChannelKind::Slack,
            SecretRef::file(&file),
        )],
        Policy::default(),
        &NullSink,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("not an http or https URL"),
        "{err}"
    );
    assert!(!err.to_string().contains("SECRETTOKEN"), "{err}");
    let err = Notifier::from_specs(
        &[ChannelSpec::new(
            "team",
            ChannelKind::Slack,
            SecretRef::env("DEPLOY_NOTIFY_TEST_SURELY_UNSET"),
        )],
        Policy::default(),
        &NullSink,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("DEPLOY_NOTIFY_TEST_SURELY_UNSET"),
        "{err}"
    );
}
