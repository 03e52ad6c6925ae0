//! `odoo-bluegreen init` and `proxy-config` as a new user runs them: init a stack for
//! HAProxy and for nginx, start the real proxy with the generated files as they are,
//! deploy the fake image run as a stock Odoo image (it sends no `X-Odoo-Release`) twice,
//! and the switch is verified through the proxy's `X-Deploy-Slot`. The same stack with a
//! hand-written proxy file that does not mark responses is refused by `deploy --dry-run`
//! (exit 2, with the fix) before anything starts. And the image from a real registry
//! (Debian's docker-registry on loopback, with users): `deploy` pulls it, and refused
//! credentials or an unknown tag exit 2 naming the image before anything starts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use deploy_test_support as util;
use util::describe;

/// Stdout as JSON, checked against `schemas/<schema>.schema.json`.
fn json_as(output: &Output, schema: &str) -> Value {
    let value = util::stdout_json(output);
    util::assert_schema(schema, &value);
    value
}

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use util::{fake_image, free_port, StackGuard};

const BIN: &str = env!("CARGO_BIN_EXE_odoo-bluegreen");

/// A proxy started from the generated files, killed when dropped.
struct ProxyChild {
    child: Child,
    logs: PathBuf,
}

impl Drop for ProxyChild {
    fn drop(&mut self) {
        util::stop_gracefully(&mut self.child);
    }
}

impl ProxyChild {
    fn logs(&self) -> String {
        std::fs::read_to_string(&self.logs).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Haproxy,
    Nginx,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Haproxy => "haproxy",
            Self::Nginx => "nginx",
        }
    }

    /// The file that carries the slot header, and the proxy started on it.
    fn config_file(self, dir: &Path) -> PathBuf {
        match self {
            Self::Haproxy => dir.join("haproxy/haproxy.cfg"),
            Self::Nginx => dir.join("nginx/nginx.conf"),
        }
    }

    fn start(self, dir: &Path, listen: u16) -> ProxyChild {
        let logs = dir.join(format!("{}-stderr.log", self.name()));
        let mut command = match self {
            Self::Haproxy => {
                util::require_haproxy();
                let mut c = Command::new("haproxy");
                c.arg("-db").arg("-f").arg(self.config_file(dir));
                c
            }
            Self::Nginx => {
                util::require_nginx();
                let mut c = Command::new("nginx");
                c.arg("-p")
                    .arg(dir.join("nginx"))
                    .arg("-c")
                    .arg(self.config_file(dir))
                    .args(["-e", "stderr", "-g", "daemon off;"]);
                c
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&logs).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.name()));
        let proxy = ProxyChild { child, logs };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", listen)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{} did not listen on {listen} with the generated files:\n{}",
                self.name(),
                proxy.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        proxy
    }
}

fn run(args: &[&str]) -> Output {
    run_with(args, &[])
}

/// The binary with `env` set and no registry credentials of the caller's environment.
fn run_with(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("ODOO_BLUEGREEN_OPERATOR", "ci")
        .env_remove("ODOO_BLUEGREEN_PAUSE_AT");
    for name in [
        "ODOO_DEPLOY_REGISTRY_USER",
        "ODOO_DEPLOY_REGISTRY_PASSWORD",
        "ODOO_DEPLOY_REGISTRY",
        "DOCKER_AUTH_CONFIG",
        "DOCKER_CONFIG",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.stdin(Stdio::null()).output().unwrap()
}

/// The status line and headers of one GET through the proxy.
fn http_head(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_owned()
}

struct Site {
    dir: tempfile::TempDir,
    guard: StackGuard,
    listen: u16,
}

impl Site {
    fn stack_file(&self) -> PathBuf {
        self.dir.path().join("stack.toml")
    }

    fn cli(&self, args: &[&str]) -> Output {
        self.cli_with(args, &[])
    }

    fn cli_with(&self, args: &[&str], env: &[(&str, &Path)]) -> Output {
        let config = self.stack_file().display().to_string();
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        run_with(&all, env)
    }
}

/// `init` into a fresh directory; the stack file's windows shortened for a test.
fn init(kind: Kind) -> Site {
    init_with_image(kind, &fake_image())
}

fn init_with_image(kind: Kind, image: &str) -> Site {
    let dir = tempfile::Builder::new()
        .prefix("bgt-init-")
        .tempdir()
        .unwrap();
    // nginx workers run as `nobody` when the master runs as root: they read the marker
    // files under this directory.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let guard = StackGuard::new();
    let (listen, blue, green) = (free_port(), free_port(), free_port());
    let listen_arg = format!("127.0.0.1:{listen}");
    let out = run(&[
        "init",
        "--stack",
        &guard.stack,
        "--proxy",
        kind.name(),
        "--image",
        image,
        "--dir",
        &dir.path().display().to_string(),
        "--listen",
        &listen_arg,
        "--blue-port",
        &blue.to_string(),
        "--green-port",
        &green.to_string(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let written = json_as(&out, "init");
    assert!(
        written["stack_file"]
            .as_str()
            .is_some_and(|f| f.ends_with("stack.toml")),
        "{written:#}"
    );
    let site = Site { dir, guard, listen };
    let text = std::fs::read_to_string(site.stack_file()).unwrap();
    let text = text
        .replace("rollback_window = \"15m\"", "rollback_window = \"0s\"")
        .replace("drain_timeout = \"30s\"", "drain_timeout = \"1s\"")
        .replace("stop_grace = \"30s\"", "stop_grace = \"2s\"");
    std::fs::write(site.stack_file(), text).unwrap();
    site
}

fn no_containers(site: &Site) {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter"])
        .arg(format!("label=com.deployment.stack={}", site.guard.stack))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "nothing was started"
    );
}

fn deploy_a_stock_image_verified_by_the_slot_header(kind: Kind) {
    let site = init(kind);
    // A second init refuses to overwrite what the first wrote.
    let again = run(&[
        "init",
        "--stack",
        &site.guard.stack,
        "--proxy",
        kind.name(),
        "--image",
        "x:1",
        "--dir",
        &site.dir.path().display().to_string(),
    ]);
    assert_eq!(again.status.code(), Some(2), "{}", describe(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exist"));

    let proxy = kind.start(site.dir.path(), site.listen);
    let plan = site.cli(&["deploy", "--release", "s1", "--dry-run", "--json"]);
    assert_eq!(plan.status.code(), Some(0), "{}", describe(&plan));
    assert_eq!(
        json_as(&plan, "deploy-plan")["problems"],
        Value::Array(vec![]),
        "{}",
        describe(&plan)
    );

    // The proxy starts with blue "serving" (no container yet): the first release goes
    // to green, the second back to blue.
    for (release, slot) in [("s1", "green"), ("s2", "blue")] {
        let out = site.cli(&["deploy", "--release", release, "--json"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}\n--- proxy\n{}",
            describe(&out),
            proxy.logs()
        );
        let report = json_as(&out, "operation-report");
        assert_eq!(report["result"], "succeeded", "{report:#}");
        assert_eq!(report["serving"], slot, "{report:#}");
        let verified = report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["step"] == "verified");
        assert!(verified, "the switch was verified: {report:#}");
    }
    // Through the proxy, every response names the slot; the image names no release.
    let head = http_head(site.listen, "/web/health").to_ascii_lowercase();
    assert!(head.contains("x-deploy-slot: blue"), "{head}");
    assert!(!head.contains("x-odoo-release"), "{head}");

    let status = site.cli(&["status", "--json"]);
    assert_eq!(status.status.code(), Some(0), "{}", describe(&status));
    let status = json_as(&status, "status");
    let notes = status["notes"].as_array().cloned().unwrap_or_default();
    assert!(
        !notes
            .iter()
            .any(|n| n.as_str().unwrap_or("").contains("X-Deploy-Slot")),
        "nothing to fix: {status:#}"
    );

    let files = site.cli(&["proxy-config", "--json"]);
    assert_eq!(files.status.code(), Some(0), "{}", describe(&files));
    assert!(!json_as(&files, "proxy-files")
        .as_array()
        .unwrap()
        .is_empty());

    // proxy-config prints the configuration the proxy runs, with traffic where it is.
    let printed = site.cli(&["proxy-config"]);
    assert_eq!(printed.status.code(), Some(0), "{}", describe(&printed));
    let printed = String::from_utf8_lossy(&printed.stdout);
    assert!(printed.contains("X-Deploy-Slot"), "{printed}");
    if let Kind::Haproxy = kind {
        assert!(
            printed
                .lines()
                .filter(|l| l.contains("server blue"))
                .all(|l| l.contains("weight 100"))
                && printed
                    .lines()
                    .filter(|l| l.contains("server green"))
                    .all(|l| l.contains("weight 0 ")),
            "blue serves, so the printed file gives it the traffic: {printed}"
        );
    }
}

fn a_hand_written_file_without_the_slot_header_is_refused_by_the_dry_run(kind: Kind) {
    let site = init(kind);
    let file = kind.config_file(site.dir.path());
    let text = std::fs::read_to_string(&file).unwrap();
    let stripped: String = text
        .lines()
        .filter(|l| !l.contains("X-Deploy-Slot"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(text, stripped, "the generated file marks the slot");
    std::fs::write(&file, stripped).unwrap();
    let _proxy = kind.start(site.dir.path(), site.listen);

    let plan = site.cli(&["deploy", "--release", "s1", "--dry-run"]);
    assert_eq!(plan.status.code(), Some(2), "{}", describe(&plan));
    let stdout = String::from_utf8_lossy(&plan.stdout);
    let fix = match kind {
        Kind::Haproxy => "http-response set-header X-Deploy-Slot %[srv_name]",
        Kind::Nginx => "add_header X-Deploy-Slot $odoo_served_by always;",
    };
    assert!(
        stdout.contains("problem") && stdout.contains(fix),
        "the exact fix: {}",
        describe(&plan)
    );
    no_containers(&site);
}

#[test]
fn haproxy_from_init_verifies_a_stock_image_through_the_slot_header() {
    deploy_a_stock_image_verified_by_the_slot_header(Kind::Haproxy);
}

#[test]
fn nginx_from_init_verifies_a_stock_image_through_the_slot_header() {
    deploy_a_stock_image_verified_by_the_slot_header(Kind::Nginx);
}

#[test]
fn haproxy_without_the_slot_header_is_flagged_before_anything_starts() {
    a_hand_written_file_without_the_slot_header_is_refused_by_the_dry_run(Kind::Haproxy);
}

#[test]
fn nginx_without_the_slot_header_is_flagged_before_anything_starts() {
    a_hand_written_file_without_the_slot_header_is_refused_by_the_dry_run(Kind::Nginx);
}

#[test]
fn a_deploy_pulls_its_image_from_a_registry_and_bad_credentials_or_tags_start_nothing() {
    let registry = util::RegistryProc::start("deployer", "s3cret");
    let repository = format!("{}/odoo", util::unique_prefix());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let image = runtime.block_on(registry.push_fake(&repository, "r1"));
    let site = init_with_image(Kind::Haproxy, &image);
    let _proxy = Kind::Haproxy.start(site.dir.path(), site.listen);
    let good = registry.docker_config("good", "deployer", "s3cret");
    let wrong = registry.docker_config("wrong", "deployer", "not-the-password");
    let none = site.dir.path().join("no-docker-config");

    // The dry run says the image would be pulled, from where, with whose credentials.
    let plan = site.cli_with(
        &["deploy", "--release", "p1", "--dry-run", "--json"],
        &[("DOCKER_CONFIG", &good)],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", describe(&plan));
    let plan = json_as(&plan, "deploy-plan");
    let image_stage = plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["at"] == "image")
        .cloned()
        .unwrap_or_default();
    let settings = &image_stage["settings"];
    assert_eq!(settings["on_engine"], "no", "{plan:#}");
    assert_eq!(settings["registry"], registry.host().as_str(), "{plan:#}");
    assert!(
        settings["credentials"]
            .as_str()
            .is_some_and(|c| c.starts_with("user deployer from ") && c.contains("good/config.json")),
        "{plan:#}"
    );

    // Refused credentials, none at all, an unknown tag: exit 2 naming the image, and
    // no container, no journal of a started slot.
    let unknown = format!("{}/{repository}:no-such-tag", registry.host());
    let cases: [(&str, &Path, &str, &str); 3] = [
        ("wrong credentials", &wrong, &image, "credentials refused"),
        ("no credentials", &none, &image, "credentials refused"),
        ("unknown tag", &good, &unknown, "not found"),
    ];
    for (case, config, reference, problem) in cases {
        let out = site.cli_with(
            &["deploy", "--image", reference, "--release", "p1", "--json"],
            &[("DOCKER_CONFIG", config)],
        );
        assert_eq!(out.status.code(), Some(2), "{case}: {}", describe(&out));
        assert_eq!(json_as(&out, "error")["exit_code"], 2);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("image {reference}: {problem}")),
            "{case}: the error names the image and why: {}",
            describe(&out)
        );
        assert!(
            !stderr.contains("s3cret") && !stderr.contains("not-the-password"),
            "{case}: no password in the output"
        );
        no_containers(&site);
    }

    // The right credentials from Docker's config.json: pulled, started, switched.
    let out = site.cli_with(
        &["deploy", "--release", "p1", "--json"],
        &[("DOCKER_CONFIG", &good)],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        describe(&out),
        registry.logs()
    );
    let report = json_as(&out, "operation-report");
    assert_eq!(report["result"], "succeeded", "{report:#}");
    assert_eq!(report["pulled"]["image"], image.as_str(), "{report:#}");
    assert!(
        report["pulled"]["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{report:#}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("pulling {image}")),
        "progress on stderr: {stderr}"
    );
    let runtime_check =
        runtime.block_on(async { util::docker().await.image_id(&image).await.unwrap() });
    assert!(runtime_check.is_some(), "the engine has the image now");

    // The engine has it now: the next deploy of the same image pulls nothing.
    let again = site.cli_with(
        &["deploy", "--release", "p2", "--json"],
        &[("DOCKER_CONFIG", &none)],
    );
    assert_eq!(again.status.code(), Some(0), "{}", describe(&again));
    assert!(
        json_as(&again, "operation-report").get("pulled").is_none(),
        "{}",
        describe(&again)
    );

    drop(site);
    runtime.block_on(async {
        let _ = util::docker().await.remove_image(&image).await;
    });
}
