//! The test harness of deploy-bluegreen and the odoo-deploy binaries: real Docker, real
//! nginx, real HAProxy, each test with its own names, ports and temp directories,
//! cleaned up even when it fails. A dev-dependency only; it is not published.
//!
//! A missing component fails the test with a message saying how to get it; nothing is
//! skipped.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::new_without_default,
    dead_code,
    missing_docs,
    unreachable_pub
)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use deploy_bluegreen::docker::DockerSlots;
use deploy_bluegreen::slot::LABEL_STACK;
use deploy_bluegreen::switch::haproxy::{render_config, HaproxySite, HaproxySwitch};
use deploy_bluegreen::switch::nginx::{render_main_conf, NginxMode, NginxOptions, NginxSwitch};
use deploy_bluegreen::switch::Backend;
use deploy_bluegreen::Slot;
use tempfile::TempDir;

/// The workspace root (bluegreen's parent).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A random name prefix for this test's Docker objects: `bgt-<8 hex>`.
pub fn unique_prefix() -> String {
    format!("bgt-{:08x}", fastrand::u32(..))
}

/// A free port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn require_binary(name: &str, how: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(found, "{name} is missing: {how}");
}

pub fn require_nginx() {
    require_binary(
        "nginx",
        "run scripts/ensure-proxies.sh as root (it installs Debian's nginx: apt-get install nginx)",
    );
}

pub fn require_haproxy() {
    require_binary(
        "haproxy",
        "run scripts/ensure-proxies.sh as root (it installs Debian's haproxy: apt-get install haproxy)",
    );
}

/// Connects to the local Docker engine or fails saying how to get one.
pub async fn docker() -> DockerSlots {
    match DockerSlots::connect().await {
        Ok(docker) => docker,
        Err(e) => panic!(
            "the Docker engine is not reachable ({e}): install Docker Engine (apt-get install docker.io) and start it (dockerd, or service docker start)"
        ),
    }
}

/// The locally built fake Odoo image, built once per test binary by
/// scripts/build-fake-image.sh (which is itself a no-op when the image is current).
/// `BLUEGREEN_TEST_IMAGE=<tag>` uses an image built beforehand instead.
pub fn fake_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            if let Ok(tag) = std::env::var("BLUEGREEN_TEST_IMAGE") {
                return tag;
            }
            let script = workspace_root().join("scripts/build-fake-image.sh");
            let output = Command::new("bash")
                .arg(&script)
                .current_dir(workspace_root())
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            assert!(
                output.status.success(),
                "{} failed ({}):\n{}",
                script.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        })
        .clone()
}

/// Removes every container of a stack when dropped (also when the test panics).
pub struct StackGuard {
    pub stack: String,
}

impl StackGuard {
    pub fn new() -> Self {
        Self {
            stack: unique_prefix(),
        }
    }
}

impl Drop for StackGuard {
    fn drop(&mut self) {
        self.remove_containers();
        // Volumes and networks the test named after its stack.
        for (kind, list) in [
            ("volume", ["volume", "ls", "-q"]),
            ("network", ["network", "ls", "-q"]),
        ] {
            let listed = Command::new("docker")
                .args(list)
                .args(["--filter", &format!("name={}", self.stack)])
                .output();
            if let Ok(out) = listed {
                for name in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("docker").args([kind, "rm", name]).output();
                }
            }
        }
    }
}

impl StackGuard {
    fn remove_containers(&self) {
        // The docker CLI, synchronously: Drop cannot await, and this runs while unwinding.
        let ids = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label={LABEL_STACK}={}", self.stack),
            ])
            .output();
        if let Ok(out) = ids {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rm", "-f", "-v"])
                    .args(&ids)
                    .output();
            }
        }
    }
}

/// Builds `FROM <fake image>` with `addons` copied to /mnt/extra-addons, tagged `tag`.
pub fn fake_image_with_addons(addons: &Path, tag: &str) {
    let context = tempfile::tempdir().unwrap();
    let copy = Command::new("cp")
        .arg("-r")
        .arg(addons)
        .arg(context.path().join("addons"))
        .status()
        .unwrap();
    assert!(copy.success());
    std::fs::write(
        context.path().join("Dockerfile"),
        format!("FROM {}\nCOPY addons /mnt/extra-addons\n", fake_image()),
    )
    .unwrap();
    let out = Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(context.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
}

/// The arguments that run the fake Odoo in the test image on port 8069.
pub fn fake_args(release: &str) -> Vec<String> {
    [
        "--listen",
        "0.0.0.0:8069",
        "--odoo-version",
        "17.0",
        "--db",
        "demo",
        "--user",
        "admin",
        "--password-env",
        "ODOO_PASSWORD",
        "--release",
        release,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// The fake Odoo (odoo-fixtures), in process on a free loopback port, reporting
/// `release` in its `X-Odoo-Release` header. Requests are not recorded (load tests).
pub struct ReleaseServer {
    fake: odoo_fixtures::FakeOdoo,
    pub addr: SocketAddr,
}

impl ReleaseServer {
    pub async fn start(release: &str) -> Self {
        let fake = odoo_fixtures::FakeOdoo::builder()
            .release(release)
            .record_requests(false)
            // No websocket front: plain HTTP load, as the switch benchmark measured it.
            .websocket(false)
            .start()
            .await
            .unwrap_or_else(|e| panic!("the fake Odoo did not start: {e}"));
        let addr = fake.address();
        Self { fake, addr }
    }

    pub fn backend(&self, slot: Slot) -> Backend {
        Backend::single_port(slot, self.addr)
    }
}

fn world_readable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    // nginx workers run as `nobody` when the master runs as root: they must reach the
    // state directory for the `-f` marker tests.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Which nginx procedure a test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NginxKind {
    Reload,
    StateFile,
}

/// An nginx of its own: config, pid, logs and temp paths in a temp dir, listening on a
/// free loopback port, `daemon off` as a child of the test. Stopped when dropped.
pub struct NginxProc {
    pub dir: TempDir,
    pub listen: SocketAddr,
    pub options: NginxOptions,
    child: std::process::Child,
}

impl NginxProc {
    /// Writes the configuration for `blue`/`green` with `active` serving, checks it and
    /// starts nginx; returns it with a switch driving it.
    pub async fn start(
        kind: NginxKind,
        blue: &Backend,
        green: &Backend,
        active: Slot,
    ) -> (Self, NginxSwitch) {
        require_nginx();
        let dir = tempfile::Builder::new()
            .prefix("bgt-nginx-")
            .tempdir()
            .unwrap();
        world_readable(dir.path());
        let prefix = dir.path().to_path_buf();
        let mode = match kind {
            NginxKind::Reload => NginxMode::Reload,
            NginxKind::StateFile => NginxMode::StateFile {
                state_dir: prefix.join("state"),
            },
        };
        let mut options = NginxOptions::new(
            &prefix,
            &prefix.join("nginx.conf"),
            &prefix.join("upstreams.conf"),
            mode,
        );
        options.pid_file = Some(prefix.join("nginx.pid"));
        let listen = loopback(free_port());
        std::fs::write(&options.main_conf, render_main_conf(listen, &options)).unwrap();
        let switch = NginxSwitch::new(options.clone());
        switch.install(blue, green, active).await.unwrap();
        if let Err(e) = switch.check().await {
            panic!(
                "nginx -t refused the generated configuration: {e}\n--- nginx.conf\n{}\n--- upstreams.conf\n{}",
                std::fs::read_to_string(&options.main_conf).unwrap_or_default(),
                std::fs::read_to_string(&options.managed_file).unwrap_or_default()
            );
        }
        let child = Command::new("nginx")
            .args(["-p", &prefix.display().to_string()])
            .args(["-c", &options.main_conf.display().to_string()])
            .args(["-e", "stderr", "-g", "daemon off;"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(prefix.join("stderr.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nginx: {e}"));
        let proc = Self {
            dir,
            listen,
            options,
            child,
        };
        proc.wait_listening().await;
        (proc, switch)
    }

    async fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if tokio::net::TcpStream::connect(self.listen).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "nginx did not listen on {} within 10 s:\n{}",
            self.listen,
            self.logs()
        );
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.listen)
    }

    /// Everything a person needs when a test fails: the config written and nginx's logs.
    pub fn logs(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- upstreams.conf\n{}\n--- error.log\n{}\n--- stderr\n{}",
            read("upstreams.conf"),
            read("error.log"),
            read("stderr.log")
        )
    }
}

/// A finished command's exit code, stdout and stderr, for a failing assertion.
pub fn describe(output: &std::process::Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Bytes of a command's output as text (invalid UTF-8 replaced).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fails the test unless `output` exited with `code`, showing its whole output.
#[track_caller]
pub fn assert_exit(output: &std::process::Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// A finished command's stdout as JSON, or a panic that shows the whole output.
pub fn stdout_json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", describe(output)))
}

/// Stops a proxy process: SIGTERM, then SIGKILL after 5 s. nginx's master stops its
/// workers on SIGTERM; SIGKILL alone would orphan them, still listening.
pub fn stop_gracefully(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for NginxProc {
    fn drop(&mut self) {
        stop_gracefully(&mut self.child);
    }
}

/// An HAProxy of its own, `-db` (foreground) as a child of the test, with its admin
/// socket in a temp dir. Killed when dropped.
pub struct HaproxyProc {
    pub dir: TempDir,
    pub listen: SocketAddr,
    pub socket: PathBuf,
    child: std::process::Child,
}

impl HaproxyProc {
    pub async fn start(blue: &Backend, green: &Backend, active: Slot) -> (Self, HaproxySwitch) {
        Self::start_edited(blue, green, active, |cfg| cfg).await
    }

    /// Like [`HaproxyProc::start`], with the generated configuration passed through
    /// `edit` first (to run an older or hand-written variant).
    pub async fn start_edited(
        blue: &Backend,
        green: &Backend,
        active: Slot,
        edit: impl FnOnce(String) -> String,
    ) -> (Self, HaproxySwitch) {
        require_haproxy();
        let dir = tempfile::Builder::new()
            .prefix("bgt-haproxy-")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("admin.sock");
        let listen = loopback(free_port());
        let site = HaproxySite::new(listen, &socket, *blue, *green, active);
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, edit(render_config(&site))).unwrap();
        // HAProxy will not start without the maintenance map (setup writes it empty).
        std::fs::write(&site.maintenance_map, "").unwrap();
        let check = Command::new("haproxy")
            .args(["-c", "-f"])
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "haproxy -c refused the generated configuration:\n{}\n--- haproxy.cfg\n{}",
            String::from_utf8_lossy(&check.stderr),
            std::fs::read_to_string(&cfg).unwrap_or_default()
        );
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&cfg)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start haproxy: {e}"));
        let proc = Self {
            dir,
            listen,
            socket: socket.clone(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if socket.exists() && tokio::net::TcpStream::connect(listen).await.is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "haproxy did not start within 10 s:\n{}",
                proc.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (proc, HaproxySwitch::new(&socket))
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.listen)
    }

    pub fn logs(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- haproxy.cfg\n{}\n--- stderr\n{}",
            read("haproxy.cfg"),
            read("stderr.log")
        )
    }
}

impl Drop for HaproxyProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a load run counted.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    pub sent: u64,
    pub failed: u64,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
    /// Responses per release label.
    pub releases: BTreeMap<String, u64>,
    /// Responses that were the proxy's maintenance page (503 with `X-Deploy-Maintenance`):
    /// not failures, counted apart.
    pub maintenance: u64,
    pub elapsed: Duration,
}

/// Keep-alive load through `url`: `tasks` tasks, each with its own client holding one
/// connection, sending `GET <url>/web/health` back to back until `during` finishes (and
/// at most `max_duration`, at most `max_per_task` requests each). A failure is a
/// transport error or a status other than 200.
pub async fn load_while<F, T>(
    url: &str,
    tasks: usize,
    max_duration: Duration,
    during: F,
) -> (LoadReport, T)
where
    F: std::future::Future<Output = T>,
{
    load_on(url, "/web/health", None, tasks, max_duration, during).await
}

/// As [`load_while`], with what a user's browser sends: JSON-RPC calls
/// (`POST /web/webclient/version_info`), which the proxy's maintenance answers with its
/// 503 page (counted in [`LoadReport::maintenance`], not as failures).
pub async fn load_jsonrpc_while<F, T>(
    url: &str,
    tasks: usize,
    max_duration: Duration,
    during: F,
) -> (LoadReport, T)
where
    F: std::future::Future<Output = T>,
{
    let body = r#"{"jsonrpc": "2.0", "method": "call", "params": {}, "id": 1}"#;
    load_on(
        url,
        "/web/webclient/version_info",
        Some(body),
        tasks,
        max_duration,
        during,
    )
    .await
}

async fn load_on<F, T>(
    url: &str,
    path: &str,
    body: Option<&'static str>,
    tasks: usize,
    max_duration: Duration,
    during: F,
) -> (LoadReport, T)
where
    F: std::future::Future<Output = T>,
{
    const MAX_PER_TASK: u64 = 500_000;
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let stop = stop.clone();
        let sent = sent.clone();
        let url = format!("{url}{path}");
        handles.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(5))
                .no_proxy()
                .build()
                .unwrap();
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            let mut releases: BTreeMap<String, u64> = BTreeMap::new();
            let mut failed = 0u64;
            let mut maintenance = 0u64;
            let mut count = 0u64;
            while !stop.load(Ordering::Relaxed)
                && count < MAX_PER_TASK
                && started.elapsed() < max_duration
            {
                count += 1;
                sent.fetch_add(1, Ordering::Relaxed);
                let request = match body {
                    Some(body) => client
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .body(body),
                    None => client.get(&url),
                };
                match request.send().await {
                    Ok(response)
                        if response.status().as_u16() == 503
                            && response
                                .headers()
                                .contains_key(deploy_bluegreen::switch::MAINTENANCE_HEADER) =>
                    {
                        let _ = response.bytes().await;
                        maintenance += 1;
                    }
                    Ok(response) if response.status().as_u16() == 200 => {
                        let release = response
                            .headers()
                            .get("X-Odoo-Release")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("<none>")
                            .to_owned();
                        // Read the body so the connection goes back to the pool.
                        let _ = response.bytes().await;
                        *releases.entry(release).or_insert(0) += 1;
                    }
                    Ok(response) => {
                        failed += 1;
                        *errors
                            .entry(format!("HTTP {}", response.status().as_u16()))
                            .or_insert(0) += 1;
                    }
                    Err(e) => {
                        failed += 1;
                        let kind = if e.is_timeout() {
                            "timeout".to_owned()
                        } else if e.is_connect() {
                            "connect".to_owned()
                        } else {
                            let mut source: Option<&dyn std::error::Error> = Some(&e);
                            let mut last = String::new();
                            while let Some(s) = source {
                                last = s.to_string();
                                source = s.source();
                            }
                            last
                        };
                        *errors.entry(kind).or_insert(0) += 1;
                    }
                }
            }
            (count, failed, errors, releases, maintenance)
        }));
    }
    let result = during.await;
    stop.store(true, Ordering::Relaxed);
    let mut report = LoadReport::default();
    for handle in handles {
        let (count, failed, errors, releases, maintenance) = handle.await.unwrap();
        report.sent += count;
        report.failed += failed;
        report.maintenance += maintenance;
        for (k, v) in errors {
            *report.errors.entry(k).or_insert(0) += v;
        }
        for (k, v) in releases {
            *report.releases.entry(k).or_insert(0) += v;
        }
    }
    report.elapsed = started.elapsed();
    (report, result)
}

// ---------------------------------------------------------------------------------
// Whole stacks for the orchestrator tests: two fixed slot ports, a real proxy routing to
// them, a state directory, and the TOML stack file that describes it all.

use deploy_bluegreen::config::StackConfig;
use deploy_bluegreen::orchestrator::Orchestrator;
use deploy_core::{BoxError, DeploymentOutcome, DeploymentRecorder};

/// Which proxy a test stack runs behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyChoice {
    Haproxy,
    Nginx(NginxKind),
}

/// The proxy process of a test stack.
pub enum ProxyProc {
    Haproxy(HaproxyProc),
    Nginx(Box<NginxProc>),
}

impl ProxyProc {
    pub fn url(&self) -> String {
        match self {
            Self::Haproxy(p) => p.url(),
            Self::Nginx(p) => p.url(),
        }
    }

    pub fn logs(&self) -> String {
        match self {
            Self::Haproxy(p) => p.logs(),
            Self::Nginx(p) => p.logs(),
        }
    }
}

/// What varies between the test stacks' files.
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// Extra container arguments (after the fake's usual ones).
    pub extra_args: Vec<String>,
    /// Lines inside `[deploy]` (default: rollback window 0s, drain 1s).
    pub deploy: Option<String>,
    /// TOML appended at the end (`[gates.pre_switch]` tables and the like).
    pub gates: String,
    /// The `history_dir`, if any.
    pub history_dir: Option<PathBuf>,
    /// Run the fake without `--release`: it sends no `X-Odoo-Release`, as a stock Odoo
    /// image does not.
    pub no_release_header: bool,
}

/// A stack of the fake Odoo image behind a real proxy, on fixed free ports, with its
/// state in a temp dir. Its containers are removed when it is dropped.
pub struct TestStack {
    pub guard: StackGuard,
    pub dir: TempDir,
    pub proxy: ProxyProc,
    pub choice: ProxyChoice,
    pub blue_port: u16,
    pub green_port: u16,
    haproxy_socket: Option<PathBuf>,
    nginx_options: Option<NginxOptions>,
}

impl TestStack {
    /// Starts the proxy with all traffic on `active` (which has no container yet).
    pub async fn start(choice: ProxyChoice, active: Slot) -> Self {
        let guard = StackGuard::new();
        let dir = tempfile::Builder::new()
            .prefix("bgt-stack-")
            .tempdir()
            .unwrap();
        let (blue_port, green_port) = (free_port(), free_port());
        let blue = Backend::single_port(Slot::Blue, loopback(blue_port));
        let green = Backend::single_port(Slot::Green, loopback(green_port));
        let (proxy, haproxy_socket, nginx_options) = match choice {
            ProxyChoice::Haproxy => {
                let (proc, _switch) = HaproxyProc::start(&blue, &green, active).await;
                let socket = proc.socket.clone();
                (ProxyProc::Haproxy(proc), Some(socket), None)
            }
            ProxyChoice::Nginx(kind) => {
                let (proc, _switch) = NginxProc::start(kind, &blue, &green, active).await;
                let options = proc.options.clone();
                (ProxyProc::Nginx(Box::new(proc)), None, Some(options))
            }
        };
        Self {
            guard,
            dir,
            proxy,
            choice,
            blue_port,
            green_port,
            haproxy_socket,
            nginx_options,
        }
    }

    pub fn stack(&self) -> &str {
        &self.guard.stack
    }

    pub fn url(&self) -> String {
        self.proxy.url()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The stack file's text.
    pub fn toml(&self, options: &StackOptions) -> String {
        let mut args = fake_args("{release}");
        if options.no_release_header {
            args.truncate(args.len() - 2);
        }
        args.extend(options.extra_args.iter().cloned());
        let args = args
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let proxy = match (&self.haproxy_socket, &self.nginx_options) {
            (Some(socket), _) => format!(
                "kind = \"haproxy\"\nurl = \"{}\"\nhaproxy = {{ admin_socket = {:?} }}\n",
                self.url(),
                socket.display().to_string()
            ),
            (None, Some(nginx)) => {
                let mode = match &nginx.mode {
                    NginxMode::Reload => "mode = \"reload\"".to_owned(),
                    NginxMode::StateFile { state_dir } => format!(
                        "mode = \"state-file\"\nstate_dir = {:?}",
                        state_dir.display().to_string()
                    ),
                };
                format!(
                    "kind = \"nginx\"\nurl = \"{}\"\n[proxy.nginx]\nprefix = {:?}\nconf = {:?}\nmanaged_file = {:?}\npid_file = {:?}\ndrain_grace = \"200ms\"\n{mode}\n",
                    self.url(),
                    nginx.prefix.display().to_string(),
                    nginx.main_conf.display().to_string(),
                    nginx.managed_file.display().to_string(),
                    nginx
                        .pid_file
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                )
            }
            (None, None) => unreachable!("a test stack has a proxy"),
        };
        let deploy = options
            .deploy
            .clone()
            .unwrap_or_else(|| "rollback_window = \"0s\"\ndrain_timeout = \"1s\"".to_owned());
        format!(
            r#"stack = "{stack}"
environment = "staging"
state_dir = {state:?}
{history}

[slots]
args = [{args}]
secret_env = {{ ODOO_PASSWORD = {{ plain = "admin", allow_plaintext = true }} }}
ready_timeout = "30s"
stop_grace = "2s"
blue = {{ http_port = {blue} }}
green = {{ http_port = {green} }}

[odoo]
database = "demo"
login = "admin"
password = {{ plain = "admin", allow_plaintext = true }}

[deploy]
{deploy}

[proxy]
{proxy}
{gates}
"#,
            stack = self.stack(),
            state = self.state_dir().display().to_string(),
            blue = self.blue_port,
            green = self.green_port,
            gates = options.gates,
            history = options
                .history_dir
                .as_ref()
                .map(|d| format!("history_dir = {:?}", d.display().to_string()))
                .unwrap_or_default(),
        )
    }

    /// A stack file whose slots serve `db` from the test cluster (the fake image with
    /// `-d db`, the cluster's socket mounted), with a pre-deploy backup of it (its URL in
    /// `$url_env`) and a history; `extra` is appended (an `[update]` table). Written as
    /// `stack.toml` in the stack's directory; returns its path and text.
    pub fn write_pg_config(&self, db: &str, url_env: &str, extra: &str) -> (PathBuf, String) {
        let pg_bin = std::env::var("DEPLOY_TEST_PG_BIN")
            .ok()
            .filter(|d| !d.is_empty())
            .map(|d| format!("pg_bin = {d:?}\n"))
            .unwrap_or_default();
        let options = StackOptions {
            extra_args: ["-d", db, "--max-cron-threads", "0"]
                .map(str::to_owned)
                .to_vec(),
            history_dir: Some(self.dir.path().join("history")),
            gates: format!(
                "[backup]\nstore = \"backups\"\ndatabase_url = {{ env = \"{url_env}\" }}\n{pg_bin}\n{extra}"
            ),
            ..StackOptions::default()
        };
        let text = with_pg_slots(&self.toml(&options), db);
        let path = self.dir.path().join("stack.toml");
        std::fs::write(&path, &text).unwrap();
        (path, text)
    }

    /// The stack file, written into the stack's directory; returns its path.
    pub fn write_config(&self, options: &StackOptions) -> PathBuf {
        let path = self.dir.path().join("stack.toml");
        std::fs::write(&path, self.toml(options)).unwrap();
        path
    }

    pub fn config(&self, options: &StackOptions) -> StackConfig {
        let text = self.toml(options);
        StackConfig::from_toml(&text, self.dir.path())
            .unwrap_or_else(|e| panic!("the test stack file is refused: {e}\n{text}"))
    }

    /// An orchestrator for this stack, recording into `recorder`.
    pub async fn orchestrator(
        &self,
        options: &StackOptions,
        recorder: Arc<Recorder>,
    ) -> Orchestrator {
        let config = self.config(options);
        let switch = config.proxy.build_switch();
        Orchestrator::new(config, docker().await, switch)
            .with_recorder(recorder)
            .with_operator("tester")
    }

    /// Docker's view of one slot (`None`: no container).
    pub fn container_state(&self, slot: Slot) -> Option<String> {
        let out = Command::new("docker")
            .args(["inspect", "-f", "{{.State.Status}}"])
            .arg(format!("{}-{slot}", self.stack()))
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Container logs of both slots and the proxy's logs, for failure messages.
    pub fn diagnostics(&self) -> String {
        let mut out = self.proxy.logs();
        for slot in Slot::ALL {
            let logs = Command::new("docker")
                .args(["logs", "--tail", "20"])
                .arg(format!("{}-{slot}", self.stack()))
                .output();
            if let Ok(logs) = logs {
                out.push_str(&format!(
                    "\n--- {slot} logs\n{}{}",
                    String::from_utf8_lossy(&logs.stdout),
                    String::from_utf8_lossy(&logs.stderr)
                ));
            }
        }
        out
    }
}

/// A stack behind HAProxy with the rollback window kept open, `releases` deployed one
/// after the other: the first runs idle and warm (green), the second is live (blue).
pub async fn warm_stack(releases: [&str; 2]) -> (TestStack, Arc<Recorder>, StackOptions) {
    let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
    let recorder = Recorder::new();
    let options = StackOptions {
        deploy: Some("rollback_window = \"keep\"\ndrain_timeout = \"1s\"".to_owned()),
        ..StackOptions::default()
    };
    let orchestrator = stack.orchestrator(&options, recorder.clone()).await;
    for release in releases {
        let report = orchestrator
            .deploy(&deploy_bluegreen::orchestrator::DeployRequest::new(
                &fake_image(),
                release,
            ))
            .await
            .unwrap();
        assert_eq!(
            report.result,
            deploy_bluegreen::orchestrator::OperationResult::Succeeded,
            "{report:#?}\n{}",
            stack.diagnostics()
        );
    }
    (stack, recorder, options)
}

/// A deployment history in memory.
#[derive(Debug, Default)]
pub struct Recorder {
    pub outcomes: std::sync::Mutex<Vec<DeploymentOutcome>>,
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// `(release, status)` of every record, in order.
    pub fn statuses(&self) -> Vec<(String, String)> {
        self.outcomes
            .lock()
            .unwrap()
            .iter()
            .map(|o| (o.release.clone(), o.status.as_str().to_owned()))
            .collect()
    }
}

#[async_trait::async_trait]
impl DeploymentRecorder for Recorder {
    async fn record(&self, outcome: &DeploymentOutcome) -> Result<(), BoxError> {
        self.outcomes.lock().unwrap().push(outcome.clone());
        Ok(())
    }

    /// A `started` outcome that is the last one of its release.
    async fn unfinished(
        &self,
        stack: &str,
        environment: deploy_core::Environment,
    ) -> Result<Vec<DeploymentOutcome>, BoxError> {
        let outcomes = self.outcomes.lock().unwrap();
        let mut out = Vec::new();
        for (i, o) in outcomes.iter().enumerate() {
            let later = outcomes.iter().skip(i + 1).any(|l| l.release == o.release);
            if o.stack == stack
                && o.environment == environment
                && o.status == deploy_core::DeployStatus::Started
                && !later
            {
                out.push(o.clone());
            }
        }
        Ok(out)
    }

    async fn has_passed(
        &self,
        stack: &str,
        environment: deploy_core::Environment,
        release: &str,
    ) -> Result<Option<bool>, BoxError> {
        Ok(Some(self.outcomes.lock().unwrap().iter().any(|o| {
            o.stack == stack
                && o.environment == environment
                && o.release == release
                && o.status == deploy_core::DeployStatus::Succeeded
        })))
    }
}

/// Debian's `docker-registry` (the distribution registry) on a free loopback port, with
/// htpasswd authentication and deletion enabled, storing in a temp dir. Killed when
/// dropped. The engine needs no TLS for it: 127.0.0.0/8 registries are insecure ones.
pub struct RegistryProc {
    pub dir: TempDir,
    pub port: u16,
    pub user: String,
    pub password: String,
    child: std::process::Child,
}

impl Drop for RegistryProc {
    fn drop(&mut self) {
        stop_gracefully(&mut self.child);
    }
}

pub fn require_registry() {
    require_binary(
        "docker-registry",
        "run scripts/ensure-registry.sh as root (it installs Debian's docker-registry and apache2-utils)",
    );
    require_binary(
        "htpasswd",
        "run scripts/ensure-registry.sh as root (htpasswd is in Debian's apache2-utils)",
    );
}

impl RegistryProc {
    /// Starts a registry that wants `user`/`password`.
    pub fn start(user: &str, password: &str) -> Self {
        require_registry();
        let dir = tempfile::Builder::new()
            .prefix("bgt-registry-")
            .tempdir()
            .unwrap();
        let htpasswd = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .unwrap();
        assert!(htpasswd.status.success(), "htpasswd failed: {htpasswd:?}");
        std::fs::write(dir.path().join("htpasswd"), &htpasswd.stdout).unwrap();
        let port = free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: test-registry\n    path: {htpasswd}\n",
            root = dir.path().join("data").display(),
            htpasswd = dir.path().join("htpasswd").display(),
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start docker-registry: {e}"));
        let registry = Self {
            dir,
            port,
            user: user.to_owned(),
            password: password.to_owned(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {port}:\n{}",
                registry.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        registry
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// A Docker config directory (for `DOCKER_CONFIG`) whose `config.json` holds
    /// `user`/`password` for this registry, as `docker login` writes it.
    pub fn docker_config(&self, name: &str, user: &str, password: &str) -> PathBuf {
        use base64::Engine as _;
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let config = serde_json::json!({ "auths": { self.host(): { "auth": auth } } });
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        dir
    }

    /// The registry's credentials, as the library takes them.
    pub fn credentials(&self) -> deploy_bluegreen::registry::RegistryCredentials {
        deploy_bluegreen::registry::RegistryCredentials {
            server: self.host(),
            username: Some(self.user.clone()),
            password: Some(self.password.clone().into()),
            identity_token: None,
            source: "the test".to_owned(),
        }
    }

    /// Pushes the locally built fake image as `<host>/<repository>:<tag>` and removes
    /// that tag from the engine again, so that a deploy of it must pull. Returns the
    /// reference.
    pub async fn push_fake(&self, repository: &str, tag: &str) -> String {
        let docker = docker().await;
        let reference = format!("{}/{repository}:{tag}", self.host());
        docker.tag_image(&fake_image(), &reference).await.unwrap();
        docker
            .push_image(&reference, Some(&self.credentials()))
            .await
            .unwrap_or_else(|e| panic!("push of {reference} failed: {e}\n{}", self.logs()));
        assert!(docker.remove_image(&reference).await.unwrap());
        assert!(docker.image_id(&reference).await.unwrap().is_none());
        reference
    }
}

/// Checks `value` against `schemas/<name>.schema.json` (the documented shape of a
/// `--json` output), failing with every violation and the value itself.
pub fn assert_schema(name: &str, value: &serde_json::Value) {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static VALIDATORS: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> =
        OnceLock::new();
    let validator = {
        let mut cache = VALIDATORS
            .get_or_init(|| Mutex::new(HashMap::new()))
            .lock()
            .unwrap();
        cache
            .entry(name.to_owned())
            .or_insert_with(|| {
                let path = workspace_root().join(format!("schemas/{name}.schema.json"));
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("no schema {}: {e}", path.display()));
                let schema: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
                Arc::new(
                    jsonschema::validator_for(&schema)
                        .unwrap_or_else(|e| panic!("{} is not a schema: {e}", path.display())),
                )
            })
            .clone()
    };
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "the output does not match schemas/{name}.schema.json:\n  {}\n{value:#}",
        errors.join("\n  ")
    );
}

pub mod pg;
pub use pg::{
    odoo_one_off, pg_container_args, pg_server, pg_socket_dir, pg_url, psql, psql_command,
    with_pg_slots, ScratchDb,
};
