//! The `tcp` gate against real loopback sockets, and through a plan and the runner.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use deploy_core::{NullSink, RecordingSink, SecretRef, Target};
use deploy_gates::builtin::TcpGate;
use deploy_gates::testing::{ScriptedGate, Step};
use deploy_gates::{
    BuildContext, Error, Gate, GateContext, GateFactory, GateKind, Outcome, Plan, Registry,
    RunResult, Runner, Scope, TcpSettings,
};
use tokio::net::TcpListener;

fn cx() -> GateContext {
    GateContext::new(Arc::new(NullSink)).with_timeout(Duration::from_secs(10))
}

/// A port on which nothing listens: bound, then released.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

#[tokio::test]
async fn passes_against_a_listening_socket() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let gate = TcpGate::new("port", "127.0.0.1", port).unwrap();
    assert_eq!(gate.address(), format!("127.0.0.1:{port}"));
    let verdict = gate.check(&cx()).await.unwrap();
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
    assert!(verdict
        .message
        .starts_with(&format!("connected to 127.0.0.1:{port} in ")));
    assert!(verdict.values["connect_ms"] >= 0.0);
}

#[tokio::test]
async fn fails_against_a_closed_port() {
    let port = closed_port().await;
    let gate = TcpGate::new("port", "127.0.0.1", port).unwrap();
    let verdict = gate.check(&cx()).await.unwrap();
    assert_eq!(verdict.outcome, Outcome::Fail);
    assert!(
        verdict
            .message
            .starts_with(&format!("cannot connect to 127.0.0.1:{port}")),
        "{}",
        verdict.message
    );
    assert!(verdict.values.contains_key("connect_ms"));
}

#[tokio::test]
async fn ipv6_loopback() {
    let Ok(listener) = TcpListener::bind("[::1]:0").await else {
        // No IPv6 on this machine: the address formatting is still checked.
        let gate = TcpGate::new("v6", "::1", 8069).unwrap();
        assert_eq!(gate.address(), "[::1]:8069");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let gate = TcpGate::new("v6", "[::1]", port).unwrap();
    assert_eq!(gate.address(), format!("[::1]:{port}"));
    assert_eq!(gate.check(&cx()).await.unwrap().outcome, Outcome::Pass);
}

#[test]
fn host_port_from_the_target() {
    let target = Target::new("green", "https://odoo.example.com/".parse().unwrap());
    let gate = TcpGate::for_target("port", &target, &TcpSettings::default()).unwrap();
    assert_eq!(gate.address(), "odoo.example.com:443");
    let gate = TcpGate::for_target(
        "lp",
        &target,
        &TcpSettings {
            port: Some(8072),
            connect_timeout: None,
        },
    )
    .unwrap();
    assert_eq!(gate.port(), 8072);
    assert_eq!(gate.name(), "lp");

    let no_host = Target::new("odd", "unix:/run/odoo.sock".parse().unwrap());
    let err = TcpGate::for_target("port", &no_host, &TcpSettings::default()).unwrap_err();
    assert!(
        matches!(err, Error::InvalidValue { scope: Scope::Target(t), field, .. } if t == "odd" && field == "url")
    );

    assert!(matches!(
        TcpGate::new("bad", "exa mple", 1),
        Err(Error::InvalidValue { field, .. }) if field == "host"
    ));
}

#[tokio::test]
async fn a_plan_of_tcp_gates_runs_with_the_builtin_registry() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = listener.local_addr().unwrap().port();
    let closed = closed_port().await;
    let text = format!(
        r#"
        [[targets]]
        name = "local"
        url = "http://127.0.0.1:{open}"

        [[gates]]
        name = "open"
        kind = "tcp"

        [[gates]]
        name = "closed"
        kind = "tcp"
        port = {closed}
        connect_timeout = "2s"
        "#
    );
    let plan: Plan = text.parse().unwrap();
    let events = Arc::new(RecordingSink::new());
    let runner = Runner::from_plan(&plan, &Registry::with_builtins(), &*events).unwrap();
    let report = runner.run(events.clone()).await;

    assert_eq!(report.result, RunResult::Failed);
    assert!(report.gate("open").unwrap().passed());
    let closed_report = report.gate("closed").unwrap();
    assert_eq!(closed_report.kind.as_deref(), Some("tcp"));
    assert_eq!(closed_report.target.as_deref(), Some("local"));
    assert_eq!(report.failures[0].gate, "closed");
}

#[test]
fn kinds_without_a_factory_are_reported() {
    let plan: Plan = r#"
        [[targets]]
        name = "t"
        url = "http://127.0.0.1:8069"

        [[gates]]
        name = "port"
        kind = "tcp"

        [[gates]]
        name = "health"
        kind = "health"
        "#
    .parse()
    .unwrap();
    let mut registry = Registry::new();
    registry.register(GateKind::Tcp, |spec, cx| {
        Ok(Arc::new(TcpGate::for_target(
            &spec.name,
            cx.target,
            &TcpSettings::default(),
        )?) as Arc<dyn Gate>)
    });
    let err = Runner::from_plan(&plan, &registry, &NullSink).unwrap_err();
    assert!(matches!(err, Error::NoFactory { gate, kind: GateKind::Health } if gate == "health"));

    registry.register(GateKind::Health, |spec, cx| {
        assert_eq!(cx.target.name, "t");
        Ok(Arc::new(ScriptedGate::new(&spec.name, [Step::pass()])) as Arc<dyn Gate>)
    });
    let runner = Runner::from_plan(&plan, &registry, &NullSink).unwrap();
    assert_eq!(runner.gate_names().collect::<Vec<_>>(), ["port", "health"]);
    assert_eq!(
        registry.kinds().collect::<Vec<_>>(),
        [GateKind::Tcp, GateKind::Health]
    );
    let empty = Registry::new();
    assert!(matches!(
        empty.build(
            &plan.gates[0],
            &BuildContext::new(&plan.targets[0], &NullSink)
        ),
        Err(Error::NoFactory { .. })
    ));
}

#[test]
fn build_context_resolves_secrets_with_context() {
    let target = Target::new("t", "http://h".parse().unwrap());
    let events = RecordingSink::new();
    let cx = BuildContext::new(&target, &events);
    let err = cx
        .resolve_secret(
            Scope::Target("t".into()),
            "password",
            &SecretRef::env("DEPLOY_GATES_TEST_SURELY_UNSET"),
        )
        .unwrap_err();
    match &err {
        Error::Secret {
            scope,
            field,
            source,
        } => {
            assert_eq!(scope, &Scope::Target("t".into()));
            assert_eq!(field, "password");
            assert!(
                matches!(source, deploy_core::Error::SecretEnvMissing { var } if var == "DEPLOY_GATES_TEST_SURELY_UNSET")
            );
        }
        other => panic!("{other:?}"),
    }
    use deploy_core::secrecy::ExposeSecret;
    let value = cx
        .resolve_secret(
            Scope::Target("t".into()),
            "password",
            &SecretRef::plain_allowed("pw"),
        )
        .unwrap();
    assert_eq!(value.expose_secret(), "pw");
    assert_eq!(events.len(), 1, "plaintext warning");
}
