//! Plan parsing and every validation error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use deploy_core::SecretRef;
use deploy_gates::{
    Error, GateKind, GateSettings, Mode, Plan, ResponseTimeSettings, RunSettings, Scope,
    TcpSettings,
};

const EXAMPLE: &str = include_str!("../examples/gates.toml");

const TARGET: &str = r#"
[[targets]]
name = "green"
url = "http://127.0.0.1:8069"
"#;

/// A plan with one target and `gates` appended.
fn with_target(rest: &str) -> Result<Plan, Error> {
    Plan::from_toml(&format!("{TARGET}\n{rest}"))
}

fn gate(kind: &str, extra: &str) -> Result<Plan, Error> {
    with_target(&format!(
        "[[gates]]\nname = \"g\"\nkind = \"{kind}\"\n{extra}\n"
    ))
}

#[test]
fn the_example_plan_parses() {
    let plan = Plan::from_toml(EXAMPLE).unwrap();
    assert_eq!(plan.run.mode, Mode::WaitUntil);
    assert_eq!(plan.run.interval, Duration::from_secs(10));
    assert_eq!(plan.run.timeout, Duration::from_secs(600));
    assert_eq!(plan.run.stable_for, Duration::from_secs(60));
    assert!(!plan.run.fail_fast);
    assert_eq!(plan.targets.len(), 2);
    let green = plan.target("green").unwrap();
    assert_eq!(green.database.as_deref(), Some("prod"));
    assert_eq!(green.password, Some(SecretRef::env("ODOO_PASSWORD")));
    assert_eq!(
        green.api_key,
        Some(SecretRef::file("/run/secrets/odoo_api_key"))
    );

    // Every kind appears in the example.
    for kind in GateKind::ALL {
        assert!(
            plan.gates.iter().any(|g| g.kind() == kind),
            "no {kind} gate in the example"
        );
    }

    let port = plan.gate("port").unwrap();
    assert_eq!(port.timeout, Duration::from_secs(5));
    assert_eq!(port.failure_limit, 30);
    assert_eq!(port.consecutive_error_limit, 4);
    assert_eq!(
        port.settings,
        GateSettings::Tcp(TcpSettings {
            port: None,
            connect_timeout: Some(Duration::from_secs(2)),
        })
    );
    let smoke = plan.gate("smoke").unwrap();
    assert_eq!(smoke.depends_on, ["auth"]);
    assert_eq!(smoke.consecutive_error_limit, 2);
    assert_eq!(smoke.timeout, Duration::from_secs(30), "[run] gate_timeout");
    match &plan.gate("response-time").unwrap().settings {
        GateSettings::ResponseTime(s) => {
            assert_eq!(
                *s,
                ResponseTimeSettings {
                    routes: vec!["/web/login".into(), "/web/health".into()],
                    requests: 40,
                    concurrency: 4,
                    warn_ms: 2000,
                    fail_ms: 5000,
                    fail_error_percent: 10.0,
                }
            );
        }
        other => panic!("{other:?}"),
    }
    match &plan.gate("postgres").unwrap().settings {
        GateSettings::Postgres(s) => {
            assert_eq!(s.dsn, SecretRef::env("PG_DSN"));
            assert_eq!((s.warn_percent, s.fail_percent), (80.0, 90.0));
        }
        other => panic!("{other:?}"),
    }
    match &plan.gate("modules").unwrap().settings {
        GateSettings::Modules(s) => assert_eq!(s.modules, ["base", "web", "sale"]),
        other => panic!("{other:?}"),
    }
    match &plan.gate("filestore").unwrap().settings {
        GateSettings::Filestore(s) => assert_eq!(s.size_bytes, 4096),
        other => panic!("{other:?}"),
    }
    match &plan.gate("smoke").unwrap().settings {
        GateSettings::SmokeCrud(s) => {
            assert_eq!(
                (s.model.as_str(), s.field.as_str()),
                ("res.partner", "name")
            );
            assert_eq!(s.values["is_company"], serde_json::json!(false));
        }
        other => panic!("{other:?}"),
    }
    let sessions = plan.gate("blue-sessions").unwrap();
    assert_eq!(sessions.target, "green");
    match &sessions.settings {
        GateSettings::SessionContinuity(s) => assert_eq!(s.from_target, "blue"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn defaults_fill_in() {
    let plan = gate("health", "").unwrap();
    assert_eq!(plan.run, RunSettings::default());
    let g = &plan.gates[0];
    assert_eq!(g.target, "green", "the only target is the default");
    assert_eq!(g.timeout, RunSettings::DEFAULT_GATE_TIMEOUT);
    assert_eq!(g.failure_limit, 0);
    assert_eq!(g.consecutive_error_limit, 4);
    assert!(g.depends_on.is_empty());
    assert_eq!(g.settings, GateSettings::Health(Default::default()));

    let plan = gate("response-time", "").unwrap();
    assert_eq!(
        plan.gates[0].settings,
        GateSettings::ResponseTime(ResponseTimeSettings::default())
    );
}

#[test]
fn run_defaults_apply_to_gates() {
    let plan = with_target(
        r#"
        [run]
        gate_timeout = "7s"
        failure_limit = 3
        consecutive_error_limit = 1

        [[gates]]
        name = "a"
        kind = "health"

        [[gates]]
        name = "b"
        kind = "health"
        timeout = "1s"
        failure_limit = 0
        consecutive_error_limit = 9
        "#,
    )
    .unwrap();
    let a = plan.gate("a").unwrap();
    assert_eq!(
        (a.timeout, a.failure_limit, a.consecutive_error_limit),
        (Duration::from_secs(7), 3, 1)
    );
    let b = plan.gate("b").unwrap();
    assert_eq!(
        (b.timeout, b.failure_limit, b.consecutive_error_limit),
        (Duration::from_secs(1), 0, 9)
    );
}

#[test]
fn load_reads_a_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gates.toml");
    std::fs::write(&path, EXAMPLE).unwrap();
    assert_eq!(
        Plan::load(&path).unwrap(),
        Plan::from_toml(EXAMPLE).unwrap()
    );

    std::fs::write(&path, "[run]\nmode = \"sometimes\"\n").unwrap();
    match Plan::load(&path).unwrap_err() {
        Error::ParsePlan {
            path: Some(p),
            line,
            ..
        } => {
            assert_eq!(p, path);
            assert_eq!(line, 2);
        }
        other => panic!("{other:?}"),
    }

    let missing = dir.path().join("absent.toml");
    match Plan::load(&missing).unwrap_err() {
        Error::ReadPlan { path, source } => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- errors

#[test]
fn syntax_errors_have_a_position() {
    let err = Plan::from_toml("[run]\nmode = \n").unwrap_err();
    match &err {
        Error::ParsePlan {
            path: None,
            line,
            column,
            message,
        } => {
            assert_eq!(*line, 2);
            assert!(*column >= 7, "{column}");
            assert!(!message.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().starts_with("line 2, column"), "{err}");
    assert!(err.is_config());
}

#[test]
fn unknown_keys_are_errors() {
    let err = Plan::from_toml("[run]\nintervall = \"5s\"\n").unwrap_err();
    assert!(
        matches!(&err, Error::ParsePlan { message, .. } if message.contains("intervall")),
        "{err}"
    );
    let err = Plan::from_toml("[runn]\n").unwrap_err();
    assert!(
        matches!(&err, Error::ParsePlan { message, .. } if message.contains("runn")),
        "{err}"
    );
    let err = Plan::from_toml(
        "[[targets]]\nname = \"a\"\nurl = \"http://h\"\ndb = \"x\"\n[[gates]]\nname = \"g\"\nkind = \"tcp\"\n",
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::ParsePlan { line: 4, message, .. } if message.contains("db")),
        "{err}"
    );
}

#[test]
fn unknown_mode() {
    let err = with_target("[run]\nmode = \"forever\"\n[[gates]]\nname = \"g\"\nkind = \"tcp\"")
        .unwrap_err();
    assert!(
        matches!(&err, Error::ParsePlan { message, .. } if message.contains("forever")),
        "{err}"
    );
}

#[test]
fn no_gates() {
    assert!(matches!(with_target("").unwrap_err(), Error::NoGates));
    assert!(matches!(Plan::from_toml("").unwrap_err(), Error::NoGates));
}

#[test]
fn missing_name_or_kind() {
    let err = with_target("[[gates]]\nkind = \"tcp\"\n").unwrap_err();
    assert!(
        matches!(&err, Error::ParsePlan { message, .. } if message.contains("name")),
        "{err}"
    );
    let err = with_target("[[gates]]\nname = \"g\"\n").unwrap_err();
    assert!(
        matches!(&err, Error::ParsePlan { message, .. } if message.contains("kind")),
        "{err}"
    );
}

#[test]
fn duplicate_gate_names() {
    let err = with_target(
        "[[gates]]\nname = \"g\"\nkind = \"tcp\"\n[[gates]]\nname = \"g\"\nkind = \"health\"\n",
    )
    .unwrap_err();
    assert!(matches!(err, Error::DuplicateGate { name } if name == "g"));
}

#[test]
fn duplicate_target_names() {
    let err = Plan::from_toml(&format!(
        "{TARGET}{TARGET}[[gates]]\nname = \"g\"\nkind = \"tcp\"\n"
    ))
    .unwrap_err();
    assert!(matches!(err, Error::DuplicateTarget { name } if name == "green"));
}

#[test]
fn empty_names() {
    let err = with_target("[[gates]]\nname = \"\"\nkind = \"tcp\"\n").unwrap_err();
    assert!(matches!(err, Error::InvalidValue { field, .. } if field == "name"));
}

#[test]
fn unknown_kind() {
    let err = gate("ping", "").unwrap_err();
    assert!(matches!(&err, Error::UnknownKind { gate, kind } if gate == "g" && kind == "ping"));
    assert!(
        err.to_string().contains("known kinds: tcp, health"),
        "{err}"
    );
}

#[test]
fn unknown_target() {
    let err = gate("tcp", "target = \"purple\"").unwrap_err();
    assert!(
        matches!(err, Error::UnknownTarget { gate, target } if gate == "g" && target == "purple")
    );
}

#[test]
fn target_required_when_ambiguous() {
    let two = format!(
        "{TARGET}\n[[targets]]\nname = \"blue\"\nurl = \"http://127.0.0.1:8169\"\n[[gates]]\nname = \"g\"\nkind = \"tcp\"\n"
    );
    let err = Plan::from_toml(&two).unwrap_err();
    assert!(
        matches!(err, Error::MissingField { scope: Scope::Gate(g), field } if g == "g" && field == "target")
    );
    let none = "[[gates]]\nname = \"g\"\nkind = \"tcp\"\n";
    assert!(matches!(
        Plan::from_toml(none).unwrap_err(),
        Error::MissingField { .. }
    ));
}

#[test]
fn unknown_dependency() {
    let err = gate("tcp", "depends_on = [\"auth\"]").unwrap_err();
    assert!(
        matches!(err, Error::UnknownDependency { gate, dependency } if gate == "g" && dependency == "auth")
    );
}

#[test]
fn dependency_cycles() {
    let err = with_target(
        r#"
        [[gates]]
        name = "a"
        kind = "tcp"
        depends_on = ["c"]
        [[gates]]
        name = "b"
        kind = "tcp"
        depends_on = ["a"]
        [[gates]]
        name = "c"
        kind = "tcp"
        depends_on = ["b"]
        "#,
    )
    .unwrap_err();
    match &err {
        Error::DependencyCycle { cycle } => assert_eq!(cycle, &["a", "c", "b", "a"]),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.to_string(), "dependency cycle: a -> c -> b -> a");
    let err = gate("tcp", "depends_on = [\"g\"]").unwrap_err();
    assert!(matches!(err, Error::DependencyCycle { cycle } if cycle == ["g", "g"]));
}

#[test]
fn bad_durations_name_scope_and_field() {
    let err =
        with_target("[run]\ninterval = \"ten seconds\"\n[[gates]]\nname = \"g\"\nkind = \"tcp\"")
            .unwrap_err();
    match &err {
        Error::InvalidDuration {
            scope: Scope::Run,
            field,
            value,
            ..
        } => {
            assert_eq!(field, "interval");
            assert_eq!(value, "ten seconds");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("[run]: `interval` = \"ten seconds\" is not a duration"),
        "{err}"
    );

    let err = gate("tcp", "timeout = \"5 parsecs\"").unwrap_err();
    assert!(matches!(
        &err,
        Error::InvalidDuration { scope: Scope::Gate(g), field, .. } if g == "g" && field == "timeout"
    ));
    assert!(err.to_string().starts_with("gate `g`: `timeout`"), "{err}");

    // A number without a unit is refused at parse time, saying what to write.
    let err = gate("tcp", "timeout = 30").unwrap_err();
    assert!(
        matches!(&err, Error::ParsePlan { message, .. } if message.contains("\"30s\"")),
        "{err}"
    );

    // Settings durations too.
    let err = gate("tcp", "connect_timeout = \"soon\"").unwrap_err();
    assert!(
        matches!(
            &err,
            Error::InvalidSettings { gate, kind: GateKind::Tcp, message } if gate == "g" && message.contains("connect_timeout")
        ),
        "{err}"
    );
}

#[test]
fn zero_durations_are_invalid_except_stable_for() {
    for field in ["interval", "timeout", "gate_timeout"] {
        let err = with_target(&format!(
            "[run]\n{field} = \"0s\"\n[[gates]]\nname = \"g\"\nkind = \"tcp\""
        ))
        .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidValue { scope: Scope::Run, field: f, .. } if f == field),
            "{err}"
        );
    }
    let plan =
        with_target("[run]\nstable_for = \"0s\"\n[[gates]]\nname = \"g\"\nkind = \"tcp\"").unwrap();
    assert_eq!(plan.run.stable_for, Duration::ZERO);
    let err = gate("tcp", "timeout = \"0ms\"").unwrap_err();
    assert!(
        matches!(err, Error::InvalidValue { scope: Scope::Gate(_), field, .. } if field == "timeout")
    );
}

#[test]
fn bad_target_urls() {
    for url in ["not a url", "ftp://127.0.0.1/", "unix:/run/odoo.sock"] {
        let text = format!(
            "[[targets]]\nname = \"t\"\nurl = \"{url}\"\n[[gates]]\nname = \"g\"\nkind = \"tcp\"\n"
        );
        let err = Plan::from_toml(&text).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidValue { scope: Scope::Target(t), field, .. } if t == "t" && field == "url"),
            "{url}: {err}"
        );
    }
}

#[test]
fn invalid_kind_settings() {
    let err = gate("response-time", "warn_msx = 100").unwrap_err();
    match &err {
        Error::InvalidSettings {
            gate,
            kind,
            message,
        } => {
            assert_eq!(gate, "g");
            assert_eq!(*kind, GateKind::ResponseTime);
            assert!(message.contains("unknown field `warn_msx`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let err = gate("response-time", "requests = \"many\"").unwrap_err();
    assert!(
        matches!(&err, Error::InvalidSettings { message, .. } if message.contains("requests")),
        "{err}"
    );
    // Settings of another kind are unknown keys for this one.
    let err = gate("health", "modules = [\"sale\"]").unwrap_err();
    assert!(
        matches!(
            &err,
            Error::InvalidSettings {
                kind: GateKind::Health,
                ..
            }
        ),
        "{err}"
    );
    // Required settings.
    let err = gate("session-continuity", "").unwrap_err();
    assert!(
        matches!(&err, Error::InvalidSettings { message, .. } if message.contains("from_target")),
        "{err}"
    );
    // ...naming a target that exists.
    let err = gate("session-continuity", "from_target = \"blue\"").unwrap_err();
    assert!(
        matches!(&err, Error::UnknownTarget { gate, target } if gate == "g" && target == "blue"),
        "{err}"
    );
    // A modules gate without modules only checks that none is pending.
    match &gate("modules", "").unwrap().gates[0].settings {
        GateSettings::Modules(s) => assert!(s.modules.is_empty()),
        other => panic!("{other:?}"),
    }
    let err = gate("postgres", "").unwrap_err();
    assert!(
        matches!(&err, Error::InvalidSettings { message, .. } if message.contains("dsn")),
        "{err}"
    );
}

#[test]
fn invalid_setting_values() {
    let cases = [
        ("response-time", "warn_ms = 6000\nfail_ms = 5000", "warn_ms"),
        ("response-time", "requests = 0", "requests"),
        ("response-time", "concurrency = 0", "concurrency"),
        ("response-time", "routes = []", "routes"),
        ("response-time", "routes = [\"web/login\"]", "routes"),
        (
            "response-time",
            "fail_error_percent = 101",
            "fail_error_percent",
        ),
        ("filestore", "size_bytes = 0", "size_bytes"),
        ("filestore", "size_bytes = 99999999999", "size_bytes"),
        (
            "postgres",
            "dsn = { env = \"X\" }\nwarn_percent = 95",
            "warn_percent",
        ),
        (
            "postgres",
            "dsn = { env = \"X\" }\nfail_percent = 120",
            "fail_percent",
        ),
        ("modules", "modules = [\" \"]", "modules"),
        ("smoke-crud", "model = \"\"", "model"),
        ("smoke-crud", "values = { name = \"x\" }", "values"),
        ("health", "warn_ms = 0", "warn_ms"),
        ("login-page", "path = \"web\"", "path"),
        ("tcp", "port = 0", "port"),
    ];
    for (kind, extra, expected) in cases {
        let err = gate(kind, extra).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidValue { scope: Scope::Gate(g), field, .. } if g == "g" && field == expected),
            "{kind} {extra}: {err}"
        );
    }
}

#[test]
fn plaintext_secrets_need_the_opt_in() {
    let target = |password: &str| {
        format!("[[targets]]\nname = \"t\"\nurl = \"http://h\"\npassword = {password}\n[[gates]]\nname = \"g\"\nkind = \"tcp\"\n")
    };
    let err = Plan::from_toml(&target("{ plain = \"hunter2\" }")).unwrap_err();
    assert!(matches!(
        &err,
        Error::PlaintextSecret { scope: Scope::Target(t), field } if t == "t" && field == "password"
    ));
    assert!(!err.to_string().contains("hunter2"));

    let plan = Plan::from_toml(&target("{ plain = \"hunter2\", allow_plaintext = true }")).unwrap();
    assert!(plan.targets[0].password.as_ref().unwrap().is_plaintext());

    // A bare string is refused at parse time, and the error does not quote it.
    let err = Plan::from_toml(&target("\"hunter2\"")).unwrap_err();
    assert!(matches!(&err, Error::ParsePlan { line: 4, .. }), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");

    let err = gate(
        "postgres",
        "dsn = { plain = \"postgres://u:hunter2@db/x\" }",
    )
    .unwrap_err();
    assert!(matches!(
        &err,
        Error::PlaintextSecret { scope: Scope::Gate(g), field } if g == "g" && field == "dsn"
    ));
}

#[test]
fn every_validation_error_is_a_config_error() {
    let errors = [
        Plan::from_toml("x = ").unwrap_err(),
        with_target("").unwrap_err(),
        gate("ping", "").unwrap_err(),
        gate("tcp", "target = \"x\"").unwrap_err(),
        gate("tcp", "depends_on = [\"x\"]").unwrap_err(),
        gate("tcp", "depends_on = [\"g\"]").unwrap_err(),
        gate("tcp", "timeout = \"x\"").unwrap_err(),
        gate("tcp", "bogus = 1").unwrap_err(),
        gate("postgres", "dsn = { plain = \"x\" }").unwrap_err(),
    ];
    for err in errors {
        assert!(err.is_config(), "{err:?}");
    }
}
