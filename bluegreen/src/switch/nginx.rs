//! nginx: the managed upstreams live in their own include file, written atomically and
//! checked with `nginx -t` before anything changes for traffic.
//!
//! Two modes ([`NginxMode`]):
//!
//! - **[`NginxMode::Reload`]**, the procedure Odoo runbooks use: each switch rewrites the
//!   upstream file, runs `nginx -t`, and reloads gracefully (`nginx -s reload`: the master
//!   starts new workers, old workers finish their requests). A refused check restores the
//!   previous file and reloads nothing. The reload closes every idle client keep-alive
//!   connection of the old workers, and a request a client sends on such a connection at
//!   that moment fails: this mode loses requests under keep-alive load.
//! - **[`NginxMode::StateFile`]** (recommended), reload-free: the upstream file declares
//!   one upstream group per slot (each with its keep-alive pool) and never changes on a
//!   switch. The server block picks the group per request with plain nginx directives:
//!   `split_clients` puts each request in one of 100 buckets, and
//!   `if (-f <state>/current/green-$bucket)` sends it to green when that marker file
//!   exists. A switch (or a canary weight) writes a new marker directory and swaps the
//!   `current` symlink with one atomic `rename`. No reload, so no connection is closed;
//!   the switch shows on the very next request; weights have 1 % steps; the upstream
//!   keep-alive pools are kept. It costs one `stat` per request and needs a reload only
//!   when a slot's address changes (so give the slots fixed host ports).
//!
//! # Measured
//!
//! `tests/zero_downtime.rs`, on this 2-core machine, debug build: 16 tasks, each with
//! its own keep-alive connection (reqwest), send `GET /web/health` back to back through
//! the proxy for about 2.5 s while the traffic is switched 3 times (blue → green → blue →
//! green); the backends are two fake Odoo servers (odoo-fixtures) reporting their
//! release in `X-Odoo-Release`. Three runs each, added up:
//!
//! | proxy, procedure              | requests sent | failed            | switch call → every new request on the new slot |
//! |-------------------------------|---------------|-------------------|-------------------------------------------------|
//! | nginx, [`NginxMode::Reload`]    | 40,645        | 39 (9, 25, 5)     | 125–180 ms                                      |
//! | nginx, [`NginxMode::StateFile`] | 37,537        | 0                 | 1–59 ms (the switch call itself: ~1–25 ms)      |
//! | HAProxy, runtime API          | 45,208        | 0                 | 6–19 ms (the switch call itself: ~1 ms)         |
//!
//! The reload's failures are all "connection closed before message completed" or
//! "connection reset by peer": requests sent on a keep-alive connection that an old
//! worker closed at that moment. At higher request rates the plain procedure loses
//! more (the issue measured tens per switch at tens of thousands of requests per second).
//!
//! # Recommendation
//!
//! Use [`NginxMode::StateFile`] with fixed host ports per slot. It reached zero failed
//! requests in every run, shows the switch on the next request, keeps nginx's upstream
//! keep-alive pools and canary weights (1 % steps), and needs nothing beyond Debian's
//! plain nginx. Its costs: one `stat` per request, a state directory the worker user can
//! read, and a (request-losing) reload when a slot's address changes. The other
//! reload-free ways weighed:
//! - per-request DNS (`resolver 127.0.0.1:<port> valid=1s`, a variable in `proxy_pass`,
//!   dnsmasq rewriting its hosts file on SIGHUP) also avoids the reload, but an A record
//!   carries no port, so the slots must sit on distinct loopback addresses with the same
//!   port; it gives up the upstream keep-alive pool (a new connection to Odoo per
//!   request), adds a daemon to run and watch, and a switch shows only after `valid`;
//! - `libnginx-mod-http-lua` (`balancer_by_lua` reading a shared dict) or
//!   `libnginx-mod-http-js` (`js_set` reading a file per request) can do the same without
//!   reload, at the price of an extra module and code running on every request;
//! - two fixed upstream servers toggled `backup`/`down` still need a reload.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Mutex;
use tracing::{info, warn};

use super::{
    normalize_weights, percent, shares, Backend, DrainReport, ProxyKind, SwitchMethod,
    SwitchReport, TrafficState, TrafficSwitch, MAINTENANCE_HEADER, MAINTENANCE_HEALTH,
    MAINTENANCE_PAGE,
};
use crate::error::{Error, Result};
use crate::fsutil::{read_optional, run_command, sync_dir, unique, write_atomic};
use crate::slot::Slot;
use crate::verify::SLOT_HEADER;

/// Number of request buckets in [`NginxMode::StateFile`]: weights have 1 % steps.
pub const BUCKETS: u8 = 100;

/// How a switch reaches nginx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NginxMode {
    /// Rewrite the upstream file, `nginx -t`, graceful reload (Odoo runbooks' way; loses
    /// requests racing the closing of idle keep-alive connections).
    Reload,
    /// Reload-free: nginx reads marker files in `state_dir` on each request.
    StateFile {
        /// The directory holding the `current` symlink and its marker directories;
        /// created by [`NginxSwitch::install`]. nginx's worker user must be able to
        /// read it (workers run as `nobody` or `www-data` when the master is root).
        state_dir: PathBuf,
    },
}

/// Where nginx and its files are, and how to drive it.
#[derive(Debug, Clone)]
pub struct NginxOptions {
    /// The nginx binary (`nginx`, found on `PATH`).
    pub binary: PathBuf,
    /// nginx's prefix (`-p`).
    pub prefix: PathBuf,
    /// The main configuration (`-c`), which includes [`NginxOptions::managed_file`] at
    /// `http` level and the routing of [`render_server`] in its `server`.
    pub main_conf: PathBuf,
    /// The include file this switch owns and rewrites.
    pub managed_file: PathBuf,
    /// The master's pid file (as in the `pid` directive), used to watch old workers
    /// finish after a reload.
    pub pid_file: Option<PathBuf>,
    /// Reload or reload-free.
    pub mode: NginxMode,
    /// Prefix of the upstream and variable names, so several stacks can share one nginx.
    pub name: String,
    /// Idle keep-alive connections kept per worker to each HTTP upstream.
    pub keepalive: u32,
    /// Extra directives put in every upstream block (e.g. `zone odoo 64k`).
    pub upstream_directives: Vec<String>,
    /// How long a drain waits when nginx cannot tell whether requests are still in
    /// flight (reload-free mode).
    pub drain_grace: Duration,
    /// Limit for each `nginx -t` / `nginx -s reload`.
    pub command_timeout: Duration,
    /// The path nginx answers itself in maintenance (200, `{"status": "maintenance"}`)
    /// instead of the 503 page: Odoo's `/web/health`.
    pub health_path: String,
    /// The maintenance page's `Retry-After`, in seconds.
    pub retry_after: u32,
}

impl NginxOptions {
    /// Options with defaults: `nginx` from `PATH`, names prefixed `odoo`, 32 keep-alive
    /// connections, 2 s drain grace, 30 s command limit.
    #[must_use]
    pub fn new(prefix: &Path, main_conf: &Path, managed_file: &Path, mode: NginxMode) -> Self {
        Self {
            binary: PathBuf::from("nginx"),
            prefix: prefix.to_path_buf(),
            main_conf: main_conf.to_path_buf(),
            managed_file: managed_file.to_path_buf(),
            pid_file: None,
            mode,
            name: "odoo".to_owned(),
            keepalive: 32,
            upstream_directives: Vec::new(),
            drain_grace: Duration::from_secs(2),
            command_timeout: Duration::from_secs(30),
            health_path: "/web/health".to_owned(),
            retry_after: super::DEFAULT_RETRY_AFTER,
        }
    }

    /// The flag file whose presence puts nginx into maintenance: `maintenance` in the
    /// state directory (reload-free mode), else beside the managed file
    /// (`<managed file>.maintenance`). nginx's worker user must be able to see it.
    #[must_use]
    pub fn maintenance_file(&self) -> PathBuf {
        match &self.mode {
            NginxMode::StateFile { state_dir } => state_dir.join("maintenance"),
            NginxMode::Reload => {
                let mut name = self.managed_file.clone().into_os_string();
                name.push(".maintenance");
                PathBuf::from(name)
            }
        }
    }

    fn base_args(&self) -> Vec<String> {
        vec![
            "-p".to_owned(),
            self.prefix.display().to_string(),
            "-c".to_owned(),
            self.main_conf.display().to_string(),
            "-e".to_owned(),
            "stderr".to_owned(),
        ]
    }
}

/// The headers of every proxied request. `Host` is the client's, or the address nginx
/// was reached on when the client sent none (HTTP/1.0): nginx drops a header whose value
/// is empty, and Odoo answers a request without `Host` with a 500.
fn proxy_headers(name: &str, indent: &str) -> String {
    [
        format!("proxy_set_header Host ${name}_upstream_host;"),
        "proxy_set_header X-Forwarded-Host $http_host;".to_owned(),
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;".to_owned(),
        "proxy_set_header X-Forwarded-Proto $scheme;".to_owned(),
        "proxy_set_header X-Real-IP $remote_addr;".to_owned(),
    ]
    .iter()
    .map(|line| format!("{indent}{line}\n"))
    .collect()
}

/// The response header naming the slot that answered (`${name}_served_by` is mapped
/// from `$upstream_addr` in the managed file). `always`: error pages carry it too, and
/// the verification counts a 5xx as no answer.
fn slot_header(name: &str, indent: &str) -> String {
    format!("{indent}add_header {SLOT_HEADER} ${name}_served_by always;\n")
}

/// Renders the `server { ... }` block routing `/websocket` and `/longpolling/` to the
/// real-time upstream (HTTP/1.1 with the `Upgrade`/`Connection` headers, as Odoo's
/// deployment documentation does) and `/` to the HTTP upstream (HTTP/1.1 with upstream
/// keep-alive), every response marked with the slot that answered (`X-Deploy-Slot`).
/// Written once at setup, inside the main configuration's `http` block.
#[must_use]
pub fn render_server(listen: SocketAddr, options: &NginxOptions) -> String {
    let n = &options.name;
    let mut out = String::new();
    let _ = writeln!(out, "    server {{");
    let _ = writeln!(out, "        listen {listen};");
    let _ = writeln!(out, "        proxy_read_timeout 720s;");
    let _ = writeln!(out, "        proxy_connect_timeout 5s;");
    let _ = writeln!(out, "        proxy_send_timeout 720s;");
    let (http_pool, realtime_pool) = match &options.mode {
        NginxMode::Reload => (format!("{n}_http"), format!("{n}_realtime")),
        NginxMode::StateFile { state_dir } => {
            let _ = writeln!(
                out,
                "        # reload-free switch: the slot is chosen per request from marker files"
            );
            let _ = writeln!(out, "        set ${n}_slot blue;");
            let _ = writeln!(
                out,
                "        if (-f {}/current/green-${n}_bucket) {{ set ${n}_slot green; }}",
                state_dir.display()
            );
            (
                format!("{n}_${{{n}_slot}}_http"),
                format!("{n}_${{{n}_slot}}_realtime"),
            )
        }
    };
    // Maintenance: a flag file checked per request (no reload to go in or out); nginx
    // answers itself, the health path with 200 so that a load balancer keeps it.
    let _ = writeln!(out, "        set ${n}_maintenance \"\";");
    let _ = writeln!(
        out,
        "        if (-f {}) {{ set ${n}_maintenance on; }}",
        options.maintenance_file().display()
    );
    let _ = writeln!(out, "        location = /__{n}_maintenance {{");
    let _ = writeln!(out, "            internal;");
    let _ = writeln!(
        out,
        "            default_type \"text/html; charset=utf-8\";"
    );
    let _ = writeln!(
        out,
        "            add_header Retry-After {} always;",
        options.retry_after
    );
    let _ = writeln!(
        out,
        "            add_header {MAINTENANCE_HEADER} on always;"
    );
    let _ = writeln!(out, "            return 503 '{MAINTENANCE_PAGE}\\n';");
    let _ = writeln!(out, "        }}");
    let _ = writeln!(out, "        location = /__{n}_maintenance_health {{");
    let _ = writeln!(out, "            internal;");
    let _ = writeln!(out, "            default_type application/json;");
    let _ = writeln!(
        out,
        "            add_header {MAINTENANCE_HEADER} on always;"
    );
    let _ = writeln!(out, "            return 200 '{MAINTENANCE_HEALTH}\\n';");
    let _ = writeln!(out, "        }}");
    let maintenance = |target: &str| {
        format!("            if (${n}_maintenance) {{ rewrite ^ /__{n}_{target} last; }}\n")
    };
    for path in ["/websocket", "/longpolling/"] {
        let _ = writeln!(out, "        location {path} {{");
        out.push_str(&maintenance("maintenance"));
        let _ = writeln!(out, "            proxy_pass http://{realtime_pool};");
        let _ = writeln!(out, "            proxy_http_version 1.1;");
        let _ = writeln!(out, "            proxy_set_header Upgrade $http_upgrade;");
        let _ = writeln!(
            out,
            "            proxy_set_header Connection ${n}_connection_upgrade;"
        );
        out.push_str(&proxy_headers(n, "            "));
        out.push_str(&slot_header(n, "            "));
        let _ = writeln!(out, "        }}");
    }
    let health = options.health_path.trim();
    let mut locations = vec![("/", "maintenance")];
    if health.starts_with('/') && health != "/" && !health.contains(char::is_whitespace) {
        locations.insert(0, (health, "maintenance_health"));
    }
    for (path, target) in locations {
        if path == "/" {
            let _ = writeln!(out, "        location / {{");
        } else {
            let _ = writeln!(out, "        location = {path} {{");
        }
        out.push_str(&maintenance(target));
        let _ = writeln!(out, "            proxy_pass http://{http_pool};");
        let _ = writeln!(out, "            proxy_http_version 1.1;");
        let _ = writeln!(out, "            proxy_set_header Connection \"\";");
        let _ = writeln!(out, "            proxy_redirect off;");
        out.push_str(&proxy_headers(n, "            "));
        out.push_str(&slot_header(n, "            "));
        let _ = writeln!(out, "        }}");
    }
    let _ = writeln!(out, "    }}");
    out
}

/// Renders a complete standalone `nginx.conf` for one stack whose every path (pid,
/// error log, temp directories) is under `options.prefix`: what the tests run, and a
/// starting point for a site's own configuration.
#[must_use]
pub fn render_main_conf(listen: SocketAddr, options: &NginxOptions) -> String {
    let prefix = options.prefix.display();
    let pid = options.pid_file.as_ref().map_or_else(
        || format!("{prefix}/nginx.pid"),
        |p| p.display().to_string(),
    );
    format!(
        "# generated by deploy-bluegreen\n\
worker_processes 2;\n\
pid {pid};\n\
error_log {prefix}/error.log warn;\n\
events {{ worker_connections 1024; }}\n\
http {{\n\
\x20   access_log off;\n\
\x20   client_body_temp_path {prefix}/client_body;\n\
\x20   proxy_temp_path {prefix}/proxy;\n\
\x20   fastcgi_temp_path {prefix}/fastcgi;\n\
\x20   uwsgi_temp_path {prefix}/uwsgi;\n\
\x20   scgi_temp_path {prefix}/scgi;\n\
\x20   keepalive_timeout 65s;\n\
\x20   include {managed};\n\
{server}}}\n",
        managed = options.managed_file.display(),
        server = render_server(listen, options),
    )
}

/// Drives one nginx.
#[derive(Debug)]
pub struct NginxSwitch {
    options: NginxOptions,
    lock: Mutex<()>,
}

/// The slots' addresses and weights as written in the managed file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Managed {
    backends: Vec<Backend>,
    /// Reload mode: the weight of each slot in the upstreams (absent: 0).
    weights: Vec<(Slot, u8)>,
}

impl NginxSwitch {
    /// A switch for the nginx described by `options`.
    #[must_use]
    pub fn new(options: NginxOptions) -> Self {
        Self {
            options,
            lock: Mutex::new(()),
        }
    }

    /// The options.
    #[must_use]
    pub fn options(&self) -> &NginxOptions {
        &self.options
    }

    /// Writes the managed file (and, reload-free, the state directory) for a first start:
    /// both slots' addresses, all traffic to `active`. Neither checks nor reloads nginx
    /// (it may not run yet); call [`NginxSwitch::check`] and start or reload it after.
    ///
    /// # Errors
    /// [`Error::Io`] when a file cannot be written.
    pub async fn install(&self, blue: &Backend, green: &Backend, active: Slot) -> Result<()> {
        write_atomic(
            &self.options.managed_file,
            self.render_install(blue, green, active).as_bytes(),
        )
        .await?;
        if let NginxMode::StateFile { state_dir } = &self.options.mode {
            let green_share = if active == Slot::Green { 100 } else { 0 };
            write_state_dir(state_dir, green_share).await?;
        }
        Ok(())
    }

    /// The managed file [`NginxSwitch::install`] writes: both slots' addresses, all
    /// traffic to `active`.
    #[must_use]
    pub fn render_install(&self, blue: &Backend, green: &Backend, active: Slot) -> String {
        self.render(&Managed {
            backends: vec![*blue, *green],
            weights: vec![(active, 100)],
        })
    }

    /// Runs `nginx -t` on the main configuration.
    ///
    /// # Errors
    /// [`Error::NginxConfigInvalid`] with nginx's stderr when refused;
    /// [`Error::ProxyCommand`] when nginx cannot run.
    pub async fn check(&self) -> Result<()> {
        let mut args = self.options.base_args();
        args.insert(0, "-t".to_owned());
        let output = run_command(&self.options.binary, &args, self.options.command_timeout).await?;
        if output.success {
            Ok(())
        } else {
            let rejected = read_optional(&self.options.managed_file)
                .await?
                .unwrap_or_default();
            Err(Error::NginxConfigInvalid {
                file: self.options.managed_file.clone(),
                stderr: output.stderr,
                rejected,
            })
        }
    }

    /// Reloads nginx gracefully (`nginx -s reload`: SIGHUP to the master; old workers
    /// finish their requests).
    ///
    /// # Errors
    /// [`Error::ProxyCommand`] when nginx cannot be signalled.
    pub async fn reload(&self) -> Result<()> {
        let mut args = self.options.base_args();
        args.splice(0..0, ["-s".to_owned(), "reload".to_owned()]);
        let output = run_command(&self.options.binary, &args, self.options.command_timeout).await?;
        if output.success {
            Ok(())
        } else {
            Err(Error::ProxyCommand {
                program: self.options.binary.display().to_string(),
                args,
                status: output.status,
                stderr: output.stderr,
            })
        }
    }

    fn render(&self, managed: &Managed) -> String {
        let n = &self.options.name;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# managed by deploy-bluegreen: rewritten on every change, do not edit"
        );
        for b in &managed.backends {
            let _ = writeln!(
                out,
                "# backend {} http={} realtime={}",
                b.slot, b.http, b.realtime
            );
        }
        let _ = writeln!(
            out,
            "map $http_upgrade ${n}_connection_upgrade {{\n    default upgrade;\n    ''      close;\n}}"
        );
        let _ = writeln!(
            out,
            "map $host ${n}_upstream_host {{\n    default $host;\n    ''      $server_addr;\n}}"
        );
        // The slot that answered, from the upstream address nginx used: the server
        // block of [`render_server`] sends it as `X-Deploy-Slot`.
        let _ = writeln!(
            out,
            "map $upstream_addr ${n}_served_by {{\n    default none;"
        );
        let mut mapped = Vec::new();
        for b in &managed.backends {
            for addr in [b.http, b.realtime] {
                if !mapped.contains(&addr) {
                    mapped.push(addr);
                    let _ = writeln!(out, "    {addr} {};", b.slot);
                }
            }
        }
        let _ = writeln!(out, "}}");
        let extra: String = self
            .options
            .upstream_directives
            .iter()
            .map(|d| format!("    {};\n", d.trim_end_matches(';')))
            .collect();
        let keepalive = self.options.keepalive;
        match &self.options.mode {
            NginxMode::Reload => {
                for (kind, realtime) in [("http", false), ("realtime", true)] {
                    let _ = writeln!(out, "upstream {n}_{kind} {{");
                    for (slot, weight) in &managed.weights {
                        if *weight == 0 {
                            continue;
                        }
                        if let Some(b) = managed.backends.iter().find(|b| b.slot == *slot) {
                            let addr = if realtime { b.realtime } else { b.http };
                            let _ =
                                writeln!(out, "    server {addr} weight={weight}; # slot={slot}");
                        }
                    }
                    out.push_str(&extra);
                    if !realtime && keepalive > 0 {
                        let _ = writeln!(out, "    keepalive {keepalive};");
                    }
                    let _ = writeln!(out, "}}");
                }
            }
            NginxMode::StateFile { .. } => {
                for b in &managed.backends {
                    for (kind, addr) in [("http", b.http), ("realtime", b.realtime)] {
                        let _ = writeln!(out, "upstream {n}_{}_{kind} {{", b.slot);
                        let _ = writeln!(out, "    server {addr}; # slot={}", b.slot);
                        out.push_str(&extra);
                        if kind == "http" && keepalive > 0 {
                            let _ = writeln!(out, "    keepalive {keepalive};");
                        }
                        let _ = writeln!(out, "}}");
                    }
                }
                let _ = writeln!(out, "split_clients \"${{request_id}}\" ${n}_bucket {{");
                for bucket in 0..BUCKETS {
                    let _ = writeln!(out, "    1% {bucket};");
                }
                let _ = writeln!(out, "}}");
            }
        }
        out
    }

    async fn read_managed(&self) -> Result<Managed> {
        let path = &self.options.managed_file;
        let text = read_optional(path)
            .await?
            .ok_or_else(|| Error::ProxyState {
                proxy: "nginx",
                problem: format!("{} does not exist (run install first)", path.display()),
            })?;
        parse_managed(&text, &self.options.name)
    }

    async fn read_state(&self) -> Result<TrafficState> {
        let managed = self.read_managed().await?;
        let green_share = match &self.options.mode {
            NginxMode::Reload => {
                let total: u32 = managed.weights.iter().map(|(_, w)| u32::from(*w)).sum();
                let green: u32 = managed
                    .weights
                    .iter()
                    .filter(|(s, _)| *s == Slot::Green)
                    .map(|(_, w)| u32::from(*w))
                    .sum();
                if total == 0 {
                    return Err(Error::ProxyState {
                        proxy: "nginx",
                        problem: "the managed upstream has no server".to_owned(),
                    });
                }
                percent(green, total)
            }
            NginxMode::StateFile { state_dir } => read_state_dir(state_dir).await?,
        };
        Ok(TrafficState::from_shares(
            ProxyKind::Nginx,
            &managed.backends,
            |slot| {
                if slot == Slot::Green {
                    green_share
                } else {
                    100 - green_share
                }
            },
        ))
    }

    /// Writes `managed`, checks it and reloads; restores the previous file when refused.
    async fn replace_config(&self, managed: &Managed) -> Result<bool> {
        let path = &self.options.managed_file;
        let previous = read_optional(path).await?;
        let next = self.render(managed);
        if previous.as_deref() == Some(next.as_str()) {
            return Ok(false);
        }
        write_atomic(path, next.as_bytes()).await?;
        let restore = || async {
            let restored = match &previous {
                Some(text) => write_atomic(path, text.as_bytes()).await,
                None => tokio::fs::remove_file(path)
                    .await
                    .map_err(|e| Error::io("remove", path, e)),
            };
            if let Err(e) = restored {
                warn!(file = %path.display(), error = %e, "cannot restore the previous nginx upstream file");
            }
        };
        if let Err(e) = self.check().await {
            restore().await;
            if let Error::NginxConfigInvalid { file, stderr, .. } = e {
                return Err(Error::NginxConfigInvalid {
                    file,
                    stderr,
                    rejected: next,
                });
            }
            return Err(e);
        }
        if let Err(e) = self.reload().await {
            restore().await;
            return Err(e);
        }
        Ok(true)
    }

    async fn apply(&self, weights: &[(Backend, u8)]) -> Result<SwitchReport> {
        let weights = normalize_weights(weights)?;
        let _guard = self.lock.lock().await;
        let started = Instant::now();
        let before = self.read_state().await?;
        let mut managed = self.read_managed().await?;
        for (backend, _) in &weights {
            match managed.backends.iter_mut().find(|b| b.slot == backend.slot) {
                Some(known) => *known = *backend,
                None => managed.backends.push(*backend),
            }
        }
        managed.backends.sort_by_key(|b| b.slot);
        let shares = shares(&weights);
        let green_share = shares
            .iter()
            .find(|(s, _)| *s == Slot::Green)
            .map_or(0, |(_, share)| *share);
        let method = match &self.options.mode {
            NginxMode::Reload => {
                managed.weights = weights.iter().map(|(b, w)| (b.slot, *w)).collect();
                if self.replace_config(&managed).await? {
                    SwitchMethod::Reload
                } else {
                    SwitchMethod::Unchanged
                }
            }
            NginxMode::StateFile { state_dir } => {
                // Addresses rarely change (fixed host ports per slot); when they do, the
                // upstreams need a reload before the marker files can point at them.
                let reloaded = self.replace_config(&managed).await?;
                if before.share(Slot::Green) == green_share && !reloaded {
                    SwitchMethod::Unchanged
                } else {
                    write_state_dir(state_dir, green_share).await?;
                    SwitchMethod::StateFile
                }
            }
        };
        let after = self.read_state().await?;
        info!(
            proxy = "nginx",
            ?method,
            green_share,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "traffic switched"
        );
        Ok(SwitchReport {
            proxy: ProxyKind::Nginx,
            before,
            after,
            method,
            elapsed: started.elapsed(),
        })
    }

    /// Old worker processes still finishing requests after a reload (children of the
    /// master titled "shutting down"), `None` when the master's pid is unknown.
    async fn shutting_down_workers(&self) -> Option<u64> {
        let pid_file = self.options.pid_file.as_ref()?;
        let master: u32 = tokio::fs::read_to_string(pid_file)
            .await
            .ok()?
            .trim()
            .parse()
            .ok()?;
        tokio::task::spawn_blocking(move || count_shutting_down(master))
            .await
            .ok()?
    }
}

fn count_shutting_down(master: u32) -> Option<u64> {
    let mut count = 0;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": the comm may contain spaces, so split after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(master) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("shutting down") {
            count += 1;
        }
    }
    Some(count)
}

#[async_trait]
impl TrafficSwitch for NginxSwitch {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Nginx
    }

    async fn active(&self) -> Result<TrafficState> {
        self.read_state().await
    }

    async fn set_weights(&self, weights: &[(Backend, u8)]) -> Result<SwitchReport> {
        self.apply(weights).await
    }

    async fn drain(&self, slot: Slot, timeout: Duration) -> Result<DrainReport> {
        let started = Instant::now();
        let state = self.read_state().await?;
        if state.share(slot) > 0 {
            let managed = self.read_managed().await?;
            let other = managed
                .backends
                .iter()
                .find(|b| b.slot == slot.other())
                .copied()
                .ok_or_else(|| Error::InvalidWeights {
                    reason: format!("{slot} is the only slot nginx knows; switch first"),
                })?;
            self.apply(&[(other, 100)]).await?;
        }
        match self.options.mode {
            NginxMode::Reload => loop {
                // Old workers exit when their last request is done: bounded by `timeout`.
                let remaining = self.shutting_down_workers().await;
                match remaining {
                    Some(0) => {
                        return Ok(DrainReport {
                            slot,
                            remaining,
                            waited: started.elapsed(),
                        })
                    }
                    None => {
                        tokio::time::sleep(self.options.drain_grace.min(timeout)).await;
                        return Ok(DrainReport {
                            slot,
                            remaining: None,
                            waited: started.elapsed(),
                        });
                    }
                    Some(_) if started.elapsed() >= timeout => {
                        return Ok(DrainReport {
                            slot,
                            remaining,
                            waited: started.elapsed(),
                        })
                    }
                    Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            },
            NginxMode::StateFile { .. } => {
                tokio::time::sleep(self.options.drain_grace.min(timeout)).await;
                Ok(DrainReport {
                    slot,
                    remaining: None,
                    waited: started.elapsed(),
                })
            }
        }
    }

    /// Checks the configuration and reloads nginx, so that it runs the upstream file
    /// as written (in the reload-free mode too: the marker files are read per request,
    /// but the upstream addresses only at a reload).
    async fn reapply(&self) -> Result<()> {
        let _guard = self.lock.lock().await;
        self.check().await?;
        self.reload().await?;
        warn!(
            proxy = "nginx",
            file = %self.options.managed_file.display(),
            "nginx reloaded to apply its upstream file"
        );
        Ok(())
    }

    /// Writes or removes [`NginxOptions::maintenance_file`]; nginx sees it on the next
    /// request. Refused when the main configuration does not check that file (written
    /// before maintenance existed).
    async fn set_maintenance(&self, on: bool) -> Result<()> {
        let _guard = self.lock.lock().await;
        let flag = self.options.maintenance_file();
        let conf = read_optional(&self.options.main_conf)
            .await?
            .unwrap_or_default();
        if on && !conf.contains(&flag.display().to_string()) {
            return Err(Error::MaintenanceUnsupported {
                proxy: ProxyKind::Nginx,
                reason: format!(
                    "{} does not check the flag file {} (it was written before maintenance existed): write its server block again (`odoo-bluegreen proxy-config` prints it) and reload nginx",
                    self.options.main_conf.display(),
                    flag.display()
                ),
            });
        }
        if on {
            write_atomic(
                &flag,
                b"maintenance: nginx answers 503 while this file exists\n",
            )
            .await?;
        } else {
            match tokio::fs::remove_file(&flag).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(Error::io("remove", &flag, e)),
            }
        }
        if !on {
            sync_dir(&crate::fsutil::parent(&flag))?;
        }
        info!(proxy = "nginx", on, flag = %flag.display(), "maintenance set");
        Ok(())
    }

    async fn maintenance(&self) -> Result<bool> {
        let flag = self.options.maintenance_file();
        match tokio::fs::symlink_metadata(&flag).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("stat", &flag, e)),
        }
    }
}

fn parse_managed(text: &str, name: &str) -> Result<Managed> {
    let bad = |problem: String| Error::ProxyState {
        proxy: "nginx",
        problem,
    };
    let mut backends = Vec::new();
    let mut weights = Vec::new();
    let mut upstream: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# backend ") {
            let mut parts = rest.split_whitespace();
            let slot: Slot = parts
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad(format!("bad backend line {line:?}")))?;
            let mut http = None;
            let mut realtime = None;
            for part in parts {
                if let Some(v) = part.strip_prefix("http=") {
                    http = v.parse().ok();
                } else if let Some(v) = part.strip_prefix("realtime=") {
                    realtime = v.parse().ok();
                }
            }
            match (http, realtime) {
                (Some(http), Some(realtime)) => backends.push(Backend::new(slot, http, realtime)),
                _ => return Err(bad(format!("bad backend line {line:?}"))),
            }
        } else if let Some(rest) = line.strip_prefix("upstream ") {
            upstream = rest.split_whitespace().next().map(str::to_owned);
        } else if line.starts_with("server ")
            && upstream.as_deref() == Some(&format!("{name}_http"))
        {
            let slot = line
                .rsplit_once("# slot=")
                .and_then(|(_, s)| s.trim().parse::<Slot>().ok())
                .ok_or_else(|| bad(format!("server line without slot: {line:?}")))?;
            let weight = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("weight="))
                .and_then(|w| w.trim_end_matches(';').parse::<u8>().ok())
                .unwrap_or(1);
            weights.push((slot, weight));
        } else if line == "}" {
            upstream = None;
        }
    }
    if backends.is_empty() {
        return Err(bad("the managed file names no backend".to_owned()));
    }
    Ok(Managed { backends, weights })
}

/// Points `<state_dir>/current` at the marker directory `share-<green_share>` (holding
/// `green-<bucket>` for the first `green_share` buckets) with one atomic rename. Marker
/// directories are built once (in a temporary directory renamed into place) and kept, so
/// a switch is a symlink swap and a request resolving through the previous target never
/// sees a half-removed directory.
async fn write_state_dir(state_dir: &Path, green_share: u8) -> Result<()> {
    let state_dir = state_dir.to_path_buf();
    tokio::task::spawn_blocking(move || write_state_dir_blocking(&state_dir, green_share))
        .await
        .map_err(|e| Error::io("write", PathBuf::new(), std::io::Error::other(e)))?
}

fn write_state_dir_blocking(state_dir: &Path, green_share: u8) -> Result<()> {
    std::fs::create_dir_all(state_dir).map_err(|e| Error::io("create", state_dir, e))?;
    let green_share = green_share.min(BUCKETS);
    let name = format!("share-{green_share}");
    let dir = state_dir.join(&name);
    if !dir.is_dir() {
        let tmp = state_dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), unique()));
        std::fs::create_dir(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        for bucket in 0..green_share {
            let marker = tmp.join(format!("green-{bucket}"));
            std::fs::File::create(&marker).map_err(|e| Error::io("create", &marker, e))?;
        }
        sync_dir(&tmp)?;
        if let Err(e) = std::fs::rename(&tmp, &dir) {
            let _ = std::fs::remove_dir_all(&tmp);
            // Another switch built the same directory meanwhile: use that one.
            if !dir.is_dir() {
                return Err(Error::io("rename", &dir, e));
            }
        }
    }
    let current = state_dir.join("current");
    let link = state_dir.join(format!(".current.tmp-{}-{}", std::process::id(), unique()));
    std::os::unix::fs::symlink(&name, &link).map_err(|e| Error::io("symlink", &link, e))?;
    if let Err(e) = std::fs::rename(&link, &current) {
        let _ = std::fs::remove_file(&link);
        return Err(Error::io("rename", &current, e));
    }
    sync_dir(state_dir)
}

/// The green share nginx applies now: the number of `green-<bucket>` markers in the
/// directory `current` points at (0 when there is no `current`: nginx routes to blue).
async fn read_state_dir(state_dir: &Path) -> Result<u8> {
    let current = state_dir.join("current");
    let mut entries = match tokio::fs::read_dir(&current).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("read", &current, e)),
    };
    let mut count: u8 = 0;
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|e| Error::io("read", &current, e))?
    {
        let name = entry.file_name();
        let bucket = name
            .to_str()
            .and_then(|n| n.strip_prefix("green-"))
            .and_then(|b| b.parse::<u8>().ok());
        if bucket.is_some_and(|b| b < BUCKETS) {
            count = count.saturating_add(1);
        }
    }
    Ok(count.min(BUCKETS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(mode: NginxMode) -> NginxOptions {
        NginxOptions::new(
            Path::new("/tmp/p"),
            Path::new("/tmp/p/nginx.conf"),
            Path::new("/tmp/p/upstreams.conf"),
            mode,
        )
    }

    fn backends() -> (Backend, Backend) {
        (
            Backend::new(
                Slot::Blue,
                "127.0.0.1:8069".parse().unwrap(),
                "127.0.0.1:8072".parse().unwrap(),
            ),
            Backend::new(
                Slot::Green,
                "127.0.0.1:9069".parse().unwrap(),
                "127.0.0.1:9072".parse().unwrap(),
            ),
        )
    }

    #[test]
    fn reload_mode_round_trips() {
        let switch = NginxSwitch::new(options(NginxMode::Reload));
        let (blue, green) = backends();
        let managed = Managed {
            backends: vec![blue, green],
            weights: vec![(Slot::Blue, 90), (Slot::Green, 10)],
        };
        let text = switch.render(&managed);
        assert!(text.contains("server 127.0.0.1:8069 weight=90; # slot=blue"));
        assert!(text.contains("server 127.0.0.1:9072 weight=10; # slot=green"));
        assert!(text.contains("keepalive 32;"));
        assert_eq!(parse_managed(&text, "odoo").unwrap(), managed);
    }

    #[test]
    fn state_file_mode_renders_both_groups() {
        let mode = NginxMode::StateFile {
            state_dir: PathBuf::from("/tmp/p/state"),
        };
        let switch = NginxSwitch::new(options(mode.clone()));
        let (blue, green) = backends();
        let text = switch.render(&Managed {
            backends: vec![blue, green],
            weights: vec![],
        });
        assert!(text.contains("upstream odoo_green_http {"));
        assert!(text.contains("upstream odoo_blue_realtime {"));
        assert_eq!(text.matches("1% ").count(), 100);
        let server = render_server("127.0.0.1:8080".parse().unwrap(), &options(mode));
        assert!(server.contains("if (-f /tmp/p/state/current/green-$odoo_bucket)"));
        assert!(server.contains("proxy_pass http://odoo_${odoo_slot}_realtime;"));
        assert!(server.contains("proxy_set_header Upgrade $http_upgrade;"));
    }

    #[tokio::test]
    async fn state_dir_swaps_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        assert_eq!(read_state_dir(&state).await.unwrap(), 0);
        write_state_dir(&state, 100).await.unwrap();
        assert_eq!(read_state_dir(&state).await.unwrap(), 100);
        write_state_dir(&state, 10).await.unwrap();
        assert_eq!(read_state_dir(&state).await.unwrap(), 10);
        write_state_dir(&state, 0).await.unwrap();
        assert_eq!(read_state_dir(&state).await.unwrap(), 0);
        write_state_dir(&state, 100).await.unwrap();
        assert_eq!(read_state_dir(&state).await.unwrap(), 100);
        let mut names: Vec<String> = std::fs::read_dir(&state)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["current", "share-0", "share-10", "share-100"]);
        assert_eq!(
            std::fs::read_link(state.join("current")).unwrap(),
            Path::new("share-100")
        );
    }
}
