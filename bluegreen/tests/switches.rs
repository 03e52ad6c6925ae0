//! The traffic switches against a real nginx and a real HAProxy (started by the harness
//! on loopback ports in temp dirs), and Traefik's files checked against its schema.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use deploy_test_support as util;

use std::time::Duration;

use deploy_bluegreen::switch::haproxy::HaproxySwitch;
use deploy_bluegreen::switch::nginx::{NginxOptions, NginxSwitch};
use deploy_bluegreen::switch::traefik::{TraefikOptions, TraefikSwitch};
use deploy_bluegreen::switch::{AdminState, Backend, SwitchMethod, TrafficSwitch};
use deploy_bluegreen::verify::{verify_release, Expected, VerifyOptions};
use deploy_bluegreen::{Error, Slot};
use util::{HaproxyProc, NginxKind, NginxProc, ReleaseServer};

fn verify_options() -> VerifyOptions {
    VerifyOptions {
        consecutive: 20,
        timeout: Duration::from_secs(10),
        ..VerifyOptions::default()
    }
}

async fn expect_release(url: &str, release: &str, logs: impl Fn() -> String) -> Duration {
    match verify_release(url, &Expected::release(release), &verify_options()).await {
        Ok(report) => report.latency,
        Err(e) => panic!("through {url}: {e}\n{}", logs()),
    }
}

/// blue -> green -> blue through nginx, verified by the release header the proxy returns.
async fn nginx_round_trip(kind: NginxKind) {
    let blue_server = ReleaseServer::start("blue-r1").await;
    let green_server = ReleaseServer::start("green-r2").await;
    let (blue, green) = (
        blue_server.backend(Slot::Blue),
        green_server.backend(Slot::Green),
    );
    let (nginx, switch) = NginxProc::start(kind, &blue, &green, Slot::Blue).await;
    let logs = || nginx.logs();

    assert_eq!(switch.active().await.unwrap().serving(), Some(Slot::Blue));
    expect_release(&nginx.url(), "blue-r1", logs).await;

    let report = switch.switch_to(&green).await.unwrap();
    let expected_method = match kind {
        NginxKind::Reload => SwitchMethod::Reload,
        NginxKind::StateFile => SwitchMethod::StateFile,
    };
    assert_eq!(report.method, expected_method);
    assert_eq!(report.before.serving(), Some(Slot::Blue));
    assert_eq!(report.after.serving(), Some(Slot::Green));
    let latency = expect_release(&nginx.url(), "green-r2", logs).await;
    eprintln!(
        "nginx {kind:?}: switch took {:?}, visible after {latency:?}",
        report.elapsed
    );

    // Switching to where traffic already goes changes nothing.
    let again = switch.switch_to(&green).await.unwrap();
    assert_eq!(again.method, SwitchMethod::Unchanged);

    switch.switch_to(&blue).await.unwrap();
    expect_release(&nginx.url(), "blue-r1", logs).await;
    assert_eq!(switch.active().await.unwrap().serving(), Some(Slot::Blue));

    // Canary: 30 % to green, read back and seen through nginx.
    let report = switch
        .set_weights(&[(blue, 70), (green, 30)])
        .await
        .unwrap();
    assert_eq!(report.after.share(Slot::Green), 30);
    assert_eq!(report.after.serving(), None);
    let client = reqwest::Client::new();
    let mut green_seen = 0;
    for _ in 0..400 {
        // The reload mode's known race (a connection an old worker accepted is closed
        // unanswered while it shuts down; see the module docs of `switch::nginx`) is not
        // what this loop measures: a few retries.
        let url = format!("{}/web/health", nginx.url());
        let mut attempt = 0;
        let response = loop {
            match client.get(&url).send().await {
                Ok(response) => break response,
                Err(e) if attempt < 5 => {
                    eprintln!("reload race, retrying: {e}");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{e}\n{}", nginx.logs()),
            }
        };
        if response.headers()["X-Odoo-Release"] == "green-r2" {
            green_seen += 1;
        }
    }
    assert!(
        (40..=220).contains(&green_seen),
        "about 30 % of 400 requests should reach green, saw {green_seen}\n{}",
        nginx.logs()
    );

    // Drain green: everything back to blue.
    let drained = switch
        .drain(Slot::Green, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(drained.slot, Slot::Green);
    let state = switch.active().await.unwrap();
    assert_eq!(state.serving(), Some(Slot::Blue));
    assert_eq!(state.backend(Slot::Green).unwrap().admin, AdminState::Drain);
    expect_release(&nginx.url(), "blue-r1", logs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_reload_mode_switches_blue_green_and_back() {
    nginx_round_trip(NginxKind::Reload).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_state_file_mode_switches_blue_green_and_back() {
    nginx_round_trip(NginxKind::StateFile).await;
}

/// A configuration nginx refuses (an upstream host that cannot be resolved) restores the
/// previous file, reloads nothing, and traffic stays where it was.
async fn nginx_refused(kind: NginxKind) {
    let blue_server = ReleaseServer::start("blue-ok").await;
    let green_server = ReleaseServer::start("green-new").await;
    let (blue, green) = (
        blue_server.backend(Slot::Blue),
        green_server.backend(Slot::Green),
    );
    let (nginx, good_switch) = NginxProc::start(kind, &blue, &green, Slot::Blue).await;
    let before = std::fs::read_to_string(&nginx.options.managed_file).unwrap();

    let mut bad: NginxOptions = nginx.options.clone();
    bad.upstream_directives = vec!["server odoo-slot.invalid:8069 backup".to_owned()];
    // A new green address forces a rewrite in the reload-free mode too.
    let moved_green = Backend::single_port(Slot::Green, util::loopback(util::free_port()));
    let target = if kind == NginxKind::StateFile {
        moved_green
    } else {
        green
    };
    let err = NginxSwitch::new(bad).switch_to(&target).await.unwrap_err();
    match &err {
        Error::NginxConfigInvalid {
            stderr,
            rejected,
            file,
        } => {
            assert!(
                stderr.contains("host not found"),
                "nginx's stderr is kept: {stderr}"
            );
            assert!(
                rejected.contains("odoo-slot.invalid"),
                "the refused text is kept"
            );
            assert_eq!(file, &nginx.options.managed_file);
        }
        other => panic!("expected NginxConfigInvalid, got {other:?}"),
    }
    let after = std::fs::read_to_string(&nginx.options.managed_file).unwrap();
    assert_eq!(after, before, "the previous upstream file is restored");
    assert_eq!(
        good_switch.active().await.unwrap().serving(),
        Some(Slot::Blue)
    );
    expect_release(&nginx.url(), "blue-ok", || nginx.logs()).await;
    good_switch.check().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_reload_mode_refused_config_leaves_traffic_untouched() {
    nginx_refused(NginxKind::Reload).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_state_file_mode_refused_config_leaves_traffic_untouched() {
    nginx_refused(NginxKind::StateFile).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_switches_through_the_runtime_api_and_reads_state_back() {
    let blue_server = ReleaseServer::start("blue-h1").await;
    let green_server = ReleaseServer::start("green-h2").await;
    let (blue, green) = (
        blue_server.backend(Slot::Blue),
        green_server.backend(Slot::Green),
    );
    let (haproxy, switch) = HaproxyProc::start(&blue, &green, Slot::Blue).await;
    let logs = || haproxy.logs();

    let state = switch.active().await.unwrap();
    assert_eq!(state.share(Slot::Blue), 100);
    assert_eq!(state.backend(Slot::Blue).unwrap().http, Some(blue.http));
    assert_eq!(state.backend(Slot::Green).unwrap().http, Some(green.http));
    expect_release(&haproxy.url(), "blue-h1", logs).await;

    let report = switch.switch_to(&green).await.unwrap();
    assert_eq!(report.method, SwitchMethod::RuntimeApi);
    assert_eq!(report.after.serving(), Some(Slot::Green));
    assert_eq!(
        report.after.backend(Slot::Blue).unwrap().admin,
        AdminState::Drain
    );
    assert_eq!(
        report.after.backend(Slot::Green).unwrap().admin,
        AdminState::Ready
    );
    let latency = expect_release(&haproxy.url(), "green-h2", logs).await;
    eprintln!(
        "haproxy: switch took {:?}, visible after {latency:?}",
        report.elapsed
    );

    // A fresh switch object reads the same live state from HAProxy (nothing is cached).
    let fresh = HaproxySwitch::new(&haproxy.socket);
    assert_eq!(fresh.active().await.unwrap(), report.after);
    let raw = fresh.command("show servers state odoo_http").await.unwrap();
    assert!(raw.contains(" green "), "{raw}");

    assert_eq!(
        switch.switch_to(&green).await.unwrap().method,
        SwitchMethod::Unchanged
    );
    switch.switch_to(&blue).await.unwrap();
    expect_release(&haproxy.url(), "blue-h1", logs).await;

    // Canary weights, read back.
    let report = switch
        .set_weights(&[(blue, 90), (green, 10)])
        .await
        .unwrap();
    assert_eq!(report.after.share(Slot::Blue), 90);
    assert_eq!(report.after.share(Slot::Green), 10);

    // Drain green: it takes no new requests and its sessions are counted down.
    let drained = switch
        .drain(Slot::Green, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(drained.remaining, Some(0));
    assert_eq!(switch.active().await.unwrap().serving(), Some(Slot::Blue));

    // Draining the only serving slot is refused.
    let err = switch
        .drain(Slot::Blue, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidWeights { .. }), "{err:?}");

    // A moved backend gets its new address through the runtime API.
    let green2 = ReleaseServer::start("green-h3").await;
    let moved = green2.backend(Slot::Green);
    switch.switch_to(&moved).await.unwrap();
    expect_release(&haproxy.url(), "green-h3", logs).await;
    assert_eq!(
        switch
            .active()
            .await
            .unwrap()
            .backend(Slot::Green)
            .unwrap()
            .http,
        Some(moved.http)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_refuses_invalid_weights() {
    let blue_server = ReleaseServer::start("b").await;
    let green_server = ReleaseServer::start("g").await;
    let (blue, green) = (
        blue_server.backend(Slot::Blue),
        green_server.backend(Slot::Green),
    );
    let (_haproxy, switch) = HaproxyProc::start(&blue, &green, Slot::Blue).await;
    let err = switch
        .set_weights(&[(blue, 0), (green, 0)])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidWeights { .. }));
    let err = switch.set_weights(&[]).await.unwrap_err();
    assert!(matches!(err, Error::InvalidWeights { .. }));
    assert_eq!(switch.active().await.unwrap().serving(), Some(Slot::Blue));
}

mod traefik_schema {
    //! Traefik's documented dynamic-configuration schema (file provider, HTTP part),
    //! for the keys this crate writes: what must be there, with which type.
    use toml::Value;

    fn rule_ok(rule: &str) -> bool {
        // Matchers joined by `||` / `&&`; each `PathPrefix(`/...`)`, `Path(`/...`)` or
        // `Host(`...`)` with backquoted arguments.
        rule.split("||")
            .flat_map(|part| part.split("&&"))
            .map(str::trim)
            .all(|m| {
                let Some((name, rest)) = m.split_once('(') else {
                    return false;
                };
                let Some(arg) = rest.strip_suffix(')') else {
                    return false;
                };
                let arg_ok = arg.len() >= 2
                    && arg.starts_with('`')
                    && arg.ends_with('`')
                    && !arg[1..arg.len() - 1].contains('`');
                let path_ok = name == "Host" || arg.trim_matches('`').starts_with('/');
                ["PathPrefix", "Path", "Host"].contains(&name) && arg_ok && path_ok
            })
    }

    fn duration_ok(v: &Value) -> bool {
        v.as_str().is_some_and(|s| {
            let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            !digits.is_empty()
                && digits.parse::<f64>().is_ok()
                && ["ms", "s", "m", "h"].contains(&&s[digits.len()..])
        })
    }

    /// Every problem found; empty when valid.
    pub fn check(doc: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        let Some(http) = doc.get("http").and_then(Value::as_table) else {
            return vec!["no [http] table".to_owned()];
        };
        for key in http.keys() {
            if !["routers", "services", "middlewares", "serversTransports"].contains(&key.as_str())
            {
                problems.push(format!("unknown key http.{key}"));
            }
        }
        let services = http
            .get("services")
            .and_then(Value::as_table)
            .cloned()
            .unwrap_or_default();
        let routers = http
            .get("routers")
            .and_then(Value::as_table)
            .cloned()
            .unwrap_or_default();
        for (name, router) in &routers {
            let Some(router) = router.as_table() else {
                problems.push(format!("router {name} is not a table"));
                continue;
            };
            for key in router.keys() {
                if ![
                    "rule",
                    "service",
                    "entryPoints",
                    "priority",
                    "middlewares",
                    "tls",
                    "ruleSyntax",
                ]
                .contains(&key.as_str())
                {
                    problems.push(format!("router {name}: unknown key {key}"));
                }
            }
            match router.get("rule").and_then(Value::as_str) {
                Some(rule) if rule_ok(rule) => {}
                Some(rule) => problems.push(format!("router {name}: bad rule {rule:?}")),
                None => problems.push(format!("router {name}: rule (string) is required")),
            }
            match router.get("service").and_then(Value::as_str) {
                Some(s) if services.contains_key(s) => {}
                Some(s) => problems.push(format!("router {name}: service {s} is not defined")),
                None => problems.push(format!("router {name}: service (string) is required")),
            }
            if let Some(eps) = router.get("entryPoints") {
                if !eps.as_array().is_some_and(|a| a.iter().all(Value::is_str)) {
                    problems.push(format!(
                        "router {name}: entryPoints must be a list of strings"
                    ));
                }
            }
            if let Some(p) = router.get("priority") {
                if !p.is_integer() {
                    problems.push(format!("router {name}: priority must be an integer"));
                }
            }
        }
        for (name, service) in &services {
            let Some(service) = service.as_table() else {
                problems.push(format!("service {name} is not a table"));
                continue;
            };
            let kinds: Vec<&String> = service.keys().collect();
            if kinds.len() != 1
                || !["loadBalancer", "weighted", "mirroring", "failover"]
                    .contains(&kinds[0].as_str())
            {
                problems.push(format!("service {name}: exactly one of loadBalancer, weighted, mirroring, failover; found {kinds:?}"));
                continue;
            }
            if let Some(weighted) = service.get("weighted") {
                match weighted.get("services").and_then(Value::as_array) {
                    Some(list) if !list.is_empty() => {
                        for entry in list {
                            match (entry.get("name").and_then(Value::as_str), entry.get("weight")) {
                                (Some(target), Some(w)) if w.as_integer().is_some_and(|w| w >= 0) => {
                                    if !services.contains_key(target) {
                                        problems.push(format!("service {name}: weighted service {target} is not defined"));
                                    }
                                }
                                _ => problems.push(format!("service {name}: weighted entries need name (string) and weight (integer >= 0)")),
                            }
                        }
                    }
                    _ => problems.push(format!(
                        "service {name}: weighted.services must be a non-empty list"
                    )),
                }
            }
            if let Some(lb) = service.get("loadBalancer") {
                match lb.get("servers").and_then(Value::as_array) {
                    Some(servers) if !servers.is_empty() => {
                        for server in servers {
                            let url = server.get("url").and_then(Value::as_str).unwrap_or("");
                            let parsed = url::Url::parse(url);
                            if !parsed.is_ok_and(|u| {
                                ["http", "https", "h2c"].contains(&u.scheme()) && u.port().is_some()
                            }) {
                                problems.push(format!(
                                    "service {name}: server url {url:?} is not http://host:port"
                                ));
                            }
                        }
                    }
                    _ => problems.push(format!(
                        "service {name}: loadBalancer.servers must be a non-empty list"
                    )),
                }
                if let Some(p) = lb.get("passHostHeader") {
                    if !p.is_bool() {
                        problems.push(format!("service {name}: passHostHeader must be a boolean"));
                    }
                }
                if let Some(hc) = lb.get("healthCheck") {
                    if !hc
                        .get("path")
                        .and_then(Value::as_str)
                        .is_some_and(|p| p.starts_with('/'))
                    {
                        problems.push(format!(
                            "service {name}: healthCheck.path must start with /"
                        ));
                    }
                    for key in ["interval", "timeout"] {
                        if let Some(v) = hc.get(key) {
                            if !duration_ok(v) {
                                problems.push(format!(
                                    "service {name}: healthCheck.{key} is not a duration"
                                ));
                            }
                        }
                    }
                }
            }
        }
        problems
    }

    #[test]
    fn the_checker_catches_mistakes() {
        let bad: Value = toml::from_str(
            r#"
            [http.routers.r]
            rule = "PathPrefix('/websocket')"
            service = "missing"
            priority = "high"
            [http.services.s.loadBalancer]
            servers = [{ url = "127.0.0.1" }]
            "#,
        )
        .unwrap();
        let problems = check(&bad);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(rule_ok(
            "PathPrefix(`/websocket`) || PathPrefix(`/longpolling/`)"
        ));
        assert!(!rule_ok("PathPrefix(`websocket`)"));
    }
}

#[tokio::test]
async fn traefik_files_follow_the_schema_and_the_switches() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("odoo.toml");
    let blue = Backend::new(Slot::Blue, util::loopback(18069), util::loopback(18072));
    let green = Backend::new(Slot::Green, util::loopback(28069), util::loopback(28072));
    let mut options = TraefikOptions::new(&file);
    options.entry_points = vec!["web".to_owned()];
    options.drain_grace = Duration::from_millis(10);
    let switch = TraefikSwitch::new(options);
    switch.install(&blue, &green, Slot::Blue).await.unwrap();

    let validate = || {
        let text = std::fs::read_to_string(&file).unwrap();
        let doc: toml::Value = toml::from_str(&text).unwrap();
        let problems = traefik_schema::check(&doc);
        assert!(
            problems.is_empty(),
            "{problems:#?}\n--- {}\n{text}",
            file.display()
        );
        doc
    };
    let doc = validate();
    assert_eq!(
        doc["http"]["routers"]["odoo-realtime"]["rule"].as_str(),
        Some("PathPrefix(`/websocket`) || PathPrefix(`/longpolling/`)")
    );
    assert_eq!(
        doc["http"]["services"]["odoo-green-realtime"]["loadBalancer"]["servers"][0]["url"]
            .as_str(),
        Some("http://127.0.0.1:28072")
    );
    assert_eq!(switch.active().await.unwrap().serving(), Some(Slot::Blue));

    let report = switch.switch_to(&green).await.unwrap();
    assert_eq!(report.method, SwitchMethod::WatchedFile);
    assert_eq!(report.after.serving(), Some(Slot::Green));
    let doc = validate();
    let weighted = doc["http"]["services"]["odoo-http"]["weighted"]["services"]
        .as_array()
        .unwrap();
    assert_eq!(weighted.len(), 1);
    assert_eq!(weighted[0]["name"].as_str(), Some("odoo-green-http"));

    let report = switch
        .set_weights(&[(blue, 90), (green, 10)])
        .await
        .unwrap();
    assert_eq!(report.after.share(Slot::Green), 10);
    validate();
    // Only this crate's temp file and the result are ever in the directory.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["odoo.toml".to_owned()]);

    switch
        .drain(Slot::Green, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(switch.active().await.unwrap().serving(), Some(Slot::Blue));
    validate();

    // A fresh switch reads the same state from the file Traefik watches.
    let fresh = TraefikSwitch::new(TraefikOptions::new(&file));
    assert_eq!(
        fresh.active().await.unwrap(),
        switch.active().await.unwrap()
    );
    assert_eq!(
        switch.switch_to(&blue).await.unwrap().method,
        SwitchMethod::Unchanged
    );
}

/// The real thing: blue and green are containers of the locally built fake Odoo image;
/// nginx (reload-free mode) and HAProxy switch between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_and_haproxy_switch_between_slot_containers() {
    use deploy_bluegreen::docker::ReadyOptions;
    use deploy_bluegreen::SlotSpec;
    use secrecy::SecretString;

    let guard = util::StackGuard::new();
    let docker = util::docker().await;
    let spec = |slot: Slot, release: &str| {
        let mut spec = SlotSpec::new(&guard.stack, slot, &util::fake_image(), release);
        spec.args = util::fake_args(release);
        spec.secret_env
            .insert("ODOO_PASSWORD".to_owned(), SecretString::from("admin"));
        spec.realtime = None;
        spec
    };
    let (blue_spec, green_spec) = (spec(Slot::Blue, "c-blue"), spec(Slot::Green, "c-green"));
    let ready = ReadyOptions::default();
    let (blue, green) = tokio::join!(
        docker.launch(&blue_spec, &ready),
        docker.launch(&green_spec, &ready)
    );
    let backend =
        |info: deploy_bluegreen::ContainerInfo| Backend::single_port(info.slot, info.http.unwrap());
    let (blue, green) = (backend(blue.unwrap()), backend(green.unwrap()));

    let (nginx, nginx_switch) =
        NginxProc::start(NginxKind::StateFile, &blue, &green, Slot::Blue).await;
    let (haproxy, haproxy_switch) = HaproxyProc::start(&blue, &green, Slot::Blue).await;
    let proxies: [(&str, String, &dyn TrafficSwitch); 2] = [
        ("nginx", nginx.url(), &nginx_switch),
        ("haproxy", haproxy.url(), &haproxy_switch),
    ];
    for (name, url, switch) in proxies {
        let logs = || format!("{name}:\n{}\n{}", nginx.logs(), haproxy.logs());
        expect_release(&url, "c-blue", logs).await;
        switch.switch_to(&green).await.unwrap();
        expect_release(&url, "c-green", logs).await;
        assert_eq!(switch.active().await.unwrap().serving(), Some(Slot::Green));
        switch.switch_to(&blue).await.unwrap();
        expect_release(&url, "c-blue", logs).await;
        assert_eq!(switch.active().await.unwrap().serving(), Some(Slot::Blue));
    }
}

/// Maintenance through `switch`: on, every request gets the proxy's own 503 page with
/// `Retry-After` (the health path 200), on a keep-alive connection opened before; a
/// switch made meanwhile shows when it ends; off, requests reach the slots again.
async fn maintenance_round_trip(
    url: &str,
    switch: &dyn TrafficSwitch,
    green: &Backend,
    logs: impl Fn() -> String,
) {
    use deploy_bluegreen::switch::{MAINTENANCE_HEADER, MAINTENANCE_PAGE};
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{url}{path}")).send();
    assert!(!switch.maintenance().await.unwrap());
    let before = get("/web/login").await.unwrap();
    assert_eq!(before.status(), 200, "{}", logs());
    assert!(before.headers().get(MAINTENANCE_HEADER).is_none());

    switch.set_maintenance(true).await.unwrap();
    switch.set_maintenance(true).await.unwrap();
    assert!(switch.maintenance().await.unwrap());
    for path in [
        "/web/login",
        "/web/dataset/call_kw/res.partner/read",
        "/websocket",
    ] {
        let response = get(path).await.unwrap();
        assert_eq!(response.status(), 503, "{path}: {}", logs());
        assert_eq!(response.headers()["retry-after"], "30", "{path}");
        assert_eq!(response.headers()[MAINTENANCE_HEADER], "on", "{path}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert_eq!(response.text().await.unwrap().trim_end(), MAINTENANCE_PAGE);
    }
    let health = get("/web/health").await.unwrap();
    assert_eq!(health.status(), 200, "{}", logs());
    assert_eq!(health.headers()[MAINTENANCE_HEADER], "on");
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["status"], "maintenance");

    // The routing changes underneath, and shows when maintenance ends.
    switch.switch_to(green).await.unwrap();
    assert_eq!(get("/web/login").await.unwrap().status(), 503);
    switch.set_maintenance(false).await.unwrap();
    switch.set_maintenance(false).await.unwrap();
    assert!(!switch.maintenance().await.unwrap());
    expect_release(url, "green-m2", &logs).await;
    let after = get("/web/health").await.unwrap();
    assert!(after.headers().get(MAINTENANCE_HEADER).is_none());
}

#[tokio::test]
async fn maintenance_in_nginx_and_haproxy_answers_503_with_retry_after_and_the_health_path() {
    let blue_server = ReleaseServer::start("blue-m1").await;
    let green_server = ReleaseServer::start("green-m2").await;
    let (blue, green) = (
        blue_server.backend(Slot::Blue),
        green_server.backend(Slot::Green),
    );
    for kind in [NginxKind::StateFile, NginxKind::Reload] {
        let (nginx, switch) = NginxProc::start(kind, &blue, &green, Slot::Blue).await;
        maintenance_round_trip(&nginx.url(), &switch, &green, || nginx.logs()).await;
    }
    let (haproxy, switch) = HaproxyProc::start(&blue, &green, Slot::Blue).await;
    maintenance_round_trip(&haproxy.url(), &switch, &green, || haproxy.logs()).await;
    // The map file follows, so that a reload keeps the state.
    let map = haproxy
        .dir
        .path()
        .join(deploy_bluegreen::switch::haproxy::MAINTENANCE_MAP);
    assert_eq!(std::fs::read_to_string(&map).unwrap(), "");
    switch.set_maintenance(true).await.unwrap();
    assert_eq!(std::fs::read_to_string(&map).unwrap(), "maintenance on\n");
    switch.set_maintenance(false).await.unwrap();
}

#[tokio::test]
async fn a_proxy_configured_before_maintenance_existed_refuses_it_with_the_fix() {
    let blue_server = ReleaseServer::start("blue-o1").await;
    let green_server = ReleaseServer::start("green-o2").await;
    let (blue, green) = (
        blue_server.backend(Slot::Blue),
        green_server.backend(Slot::Green),
    );
    let (haproxy, switch) = HaproxyProc::start_edited(&blue, &green, Slot::Blue, |cfg| {
        cfg.lines()
            .filter(|l| !l.contains("odoo_maintenance"))
            .map(|l| format!("{l}\n"))
            .collect()
    })
    .await;
    match switch.set_maintenance(true).await {
        Err(Error::MaintenanceUnsupported { reason, .. }) => {
            assert!(reason.contains("proxy-config"), "{reason}");
        }
        other => panic!("{other:?}\n{}", haproxy.logs()),
    }
    expect_release(&haproxy.url(), "blue-o1", || haproxy.logs()).await;

    let (nginx, switch) = NginxProc::start(NginxKind::StateFile, &blue, &green, Slot::Blue).await;
    let conf = std::fs::read_to_string(&nginx.options.main_conf).unwrap();
    let flag = nginx.options.maintenance_file().display().to_string();
    let old: String = conf
        .lines()
        .filter(|l| !l.contains(&flag))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&nginx.options.main_conf, old).unwrap();
    match switch.set_maintenance(true).await {
        Err(Error::MaintenanceUnsupported { reason, .. }) => {
            assert!(reason.contains("proxy-config"), "{reason}");
        }
        other => panic!("{other:?}\n{}", nginx.logs()),
    }
    assert!(!nginx.options.maintenance_file().exists());
}
