//! A working stack from nothing: the stack file ([`render_stack_file`]) and the proxy's
//! configuration that matches it ([`proxy_files`]).
//!
//! The proxy files are derived from a loaded [`StackConfig`], never from the options
//! that wrote it, so `odoo-bluegreen init` (write both) and `odoo-bluegreen proxy-config`
//! (print them for an existing stack file) give the same files. Every generated
//! configuration marks responses with the slot that answered
//! ([`SLOT_HEADER`](crate::verify::SLOT_HEADER)), so the switch is verified with any
//! image, the official Odoo image among them.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::config::{ProxyDriver, StackConfig};
use crate::error::{Error, Result};
use crate::slot::Slot;
use crate::switch::haproxy::{render_config, HaproxySite};
use crate::switch::nginx::{render_main_conf, NginxSwitch};
use crate::switch::traefik::TraefikSwitch;
use crate::switch::{Backend, ProxyKind};

/// What `init` asks for.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The stack's name (containers `<stack>-blue`, `<stack>-green`).
    pub stack: String,
    /// The proxy in front of the slots.
    pub proxy: ProxyKind,
    /// The image the first `deploy` runs.
    pub image: String,
    /// Where the proxy listens (the public URL is `http://<listen>`).
    pub listen: SocketAddr,
    /// The blue slot's host port (on 127.0.0.1).
    pub blue_port: u16,
    /// The green slot's host port (on 127.0.0.1).
    pub green_port: u16,
}

/// One file of the proxy's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyFile {
    /// What it is (`haproxy.cfg`, `nginx main configuration`, ...).
    pub what: &'static str,
    /// Where the stack file says it lives (`None`: the stack file does not name it;
    /// HAProxy without `[proxy.haproxy] config`).
    pub path: Option<PathBuf>,
    /// Its text.
    pub text: String,
}

/// The files of [`render_stack_file`]'s proxy, relative to the stack file's directory.
#[must_use]
pub fn relative_paths(kind: ProxyKind, stack: &str) -> Vec<(&'static str, String)> {
    match kind {
        ProxyKind::Haproxy => vec![
            ("admin_socket", "haproxy/admin.sock".to_owned()),
            ("config", "haproxy/haproxy.cfg".to_owned()),
        ],
        ProxyKind::Nginx => vec![
            ("prefix", "nginx".to_owned()),
            ("conf", "nginx/nginx.conf".to_owned()),
            ("managed_file", format!("nginx/{stack}-upstreams.conf")),
            ("state_dir", "nginx/state".to_owned()),
            ("pid_file", "nginx/nginx.pid".to_owned()),
        ],
        ProxyKind::Traefik => vec![
            ("dynamic_file", format!("traefik/dynamic/{stack}.toml")),
            ("static", "traefik/traefik.toml".to_owned()),
        ],
    }
}

/// The stack file `init` writes: every key with its meaning, the optional ones
/// commented out with their default, no secret in it (the Odoo login is a commented
/// reference to an environment variable).
///
/// # Errors
/// [`Error::Config`] for a stack name that is not letters, digits, `_`, `.`, `-`, or
/// equal ports.
pub fn render_stack_file(options: &InitOptions) -> Result<String> {
    let stack = &options.stack;
    let name_ok = !stack.is_empty()
        && stack
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !name_ok {
        return Err(Error::Config {
            field: "stack".to_owned(),
            reason: format!("{stack:?}: letters, digits, `_`, `.`, `-` only"),
        });
    }
    if options.blue_port == options.green_port
        || options.blue_port == 0
        || options.green_port == 0
        || options.listen.port() == options.blue_port
        || options.listen.port() == options.green_port
    {
        return Err(Error::Config {
            field: "ports".to_owned(),
            reason: format!(
                "the proxy ({}) and the slots (blue {}, green {}) need three different fixed ports",
                options.listen.port(),
                options.blue_port,
                options.green_port
            ),
        });
    }
    let paths = relative_paths(options.proxy, stack);
    let path = |key: &str| {
        paths
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    };
    let proxy_table = match options.proxy {
        ProxyKind::Haproxy => format!(
            "[proxy.haproxy]\n\
# The admin socket of `stats socket <path> level admin` in haproxy.cfg: switches use the\n\
# runtime API (`set server ... state ready|drain`, `set weight`), no reload. HAProxy\n\
# forgets runtime changes when it restarts: restart it only between deploys.\n\
admin_socket = \"{}\"\n\
# The haproxy.cfg HAProxy runs (written by `odoo-bluegreen init`, printed again by\n\
# `odoo-bluegreen proxy-config`): `status` and `deploy --dry-run` read it to tell whether\n\
# responses carry X-Deploy-Slot before any slot serves. Optional.\n\
config = \"{}\"\n",
            path("admin_socket"),
            path("config")
        ),
        ProxyKind::Nginx => format!(
            "[proxy.nginx]\n\
# binary = \"nginx\"                # default \"nginx\" from PATH\n\
prefix = \"{}\"                     # nginx -p\n\
conf = \"{}\"            # nginx -c: includes managed_file at http level\n\
managed_file = \"{}\"   # owned and rewritten by the switch\n\
# Reload-free: nginx reads marker files in state_dir on each request, so a switch\n\
# closes no connection. \"reload\" rewrites upstreams and reloads (loses keep-alive\n\
# requests).\n\
mode = \"state-file\"\n\
state_dir = \"{}\"            # readable by nginx's worker user\n\
pid_file = \"{}\"        # lets a drain watch old workers exit\n\
# name = \"odoo\"                   # prefix of upstream and variable names\n\
# keepalive = 32                  # idle upstream connections per worker\n\
# upstream_directives = []        # extra lines in every upstream block\n\
# drain_grace = \"2s\"              # how long a state-file drain waits\n",
            path("prefix"),
            path("conf"),
            path("managed_file"),
            path("state_dir"),
            path("pid_file")
        ),
        ProxyKind::Traefik => format!(
            "[proxy.traefik]\n\
# The dynamic file the switch owns and replaces atomically. Traefik's file provider\n\
# must watch its directory (see {}: `[providers.file] directory = ... watch = true`).\n\
dynamic_file = \"{}\"\n\
# name = \"odoo\"                   # prefix of router and service names\n\
# entry_points = []               # default: all\n\
# drain_grace = \"2s\"              # Traefik does not tell when requests are done\n",
            path("static"),
            path("dynamic_file")
        ),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "# The stack file of `{stack}`, written by `odoo-bluegreen init`.\n\
#\n\
#   odoo-bluegreen --config stack.toml deploy --dry-run   # what a deploy would do\n\
#   odoo-bluegreen --config stack.toml deploy             # the image below\n\
#   odoo-bluegreen --config stack.toml status\n\
#   odoo-bluegreen --config stack.toml rollback\n\
#\n\
# Every key is shown with its meaning; the commented-out ones are optional, with their\n\
# default (bluegreen/examples/stack.toml documents them all). Relative paths are taken\n\
# from this file's directory. Secrets are never written here: {{ env = \"VAR\" }} names an\n\
# environment variable, {{ file = \"PATH\" }} a file.\n\
\n\
# Containers `{stack}-blue` and `{stack}-green`, labelled com.deployment.stack={stack}.\n\
stack = \"{stack}\"\n\
\n\
# Recorded with every deployment: dev | staging | uat | production (prod, stg, test ...\n\
# are accepted and stored by these names).\n\
environment = \"production\"\n\
\n\
# The image `deploy` runs when --image is not given; it must be on the Docker engine.\n\
# The release label defaults to the image's tag.\n\
image = \"{image}\"\n\
\n\
# The lock file, journal and pause state of the stack.\n\
state_dir = \".odoo-bluegreen\"\n\
\n\
# Where deployment outcomes are recorded (what `rollback` and `odoo-rollback previous`\n\
# read). Optional.\n\
history_dir = \"history\"\n\
\n\
[slots]\n\
# The container's command after the image's entrypoint; {{release}}, {{slot}}, {{stack}}\n\
# are replaced. Default: the image's own. For the official Odoo image, e.g.:\n\
# args = [\"--db-filter\", \"^{stack}$\", \"--proxy-mode\", \"--workers\", \"4\"]\n\
container_http_port = 8069       # Odoo's HTTP port inside the container\n\
# container_realtime_port = 8072 # default: none (/websocket on the HTTP port)\n\
health_path = \"/web/health\"      # polled on the slot's port until it answers 200\n\
ready_timeout = \"120s\"           # then the release is refused, with its logs\n\
stop_grace = \"30s\"               # SIGTERM, then SIGKILL after this\n\
# network = \"{stack}\"            # a user-defined Docker network (to reach PostgreSQL)\n\
# env = {{ HOST = \"db\", USER = \"odoo\" }}\n\
# secret_env = {{ PASSWORD = {{ env = \"ODOO_DB_PASSWORD\" }} }}\n\
# volumes = [{{ source = \"{stack}-filestore\", target = \"/var/lib/odoo\" }}]\n\
# Fixed host ports on 127.0.0.1: the proxy's configuration below points at them.\n\
blue = {{ http_port = {blue} }}\n\
green = {{ http_port = {green} }}\n\
\n\
# How the gates log in (for gates that need a session). Optional.\n\
# [odoo]\n\
# database = \"{stack}\"\n\
# login = \"admin\"\n\
# password = {{ env = \"ODOO_PASSWORD\" }}\n\
\n\
[proxy]\n\
# The public URL through the proxy: the switch is verified there (each response\n\
# carries X-Deploy-Slot, set by the generated proxy configuration, or the image's\n\
# X-Odoo-Release), and the `proxy` gate target is it.\n\
kind = \"{kind}\"\n\
url = \"http://{listen}\"\n\
\n\
{proxy_table}\n\
[deploy]\n\
rollback_window = \"15m\"          # the old slot keeps running this long for an instant rollback\n\
drain_timeout = \"30s\"            # requests in flight on the old slot may take this long\n\
verify_release = true            # check through the proxy who answers after each switch\n\
# verify_timeout = \"10s\"\n\
# verify_consecutive = 20\n\
# keep_failed = false            # keep a failed release's container for `docker logs`\n\
# pull = \"missing\"              # pull the image when the engine lacks it; \"always\", \"never\"\n\
# notify_wait = \"5s\"             # how long the end of an operation waits for [[notify]]\n\
\n\
# Who hears of deploys and rollbacks (best effort: never blocks or fails them).\n\
# [[notify]]\n\
# name = \"team\"\n\
# kind = \"slack\"                 # slack | teams | webhook\n\
# url = {{ env = \"SLACK_WEBHOOK_URL\" }}\n\
# events = [\"started\", \"succeeded\", \"failed\", \"rolled_back\"]\n\
\n\
# Gate plans (the gates.toml format of deploy-gates). Before the switch, against the\n\
# new slot directly: if they fail, nothing is switched.\n\
[gates.pre_switch.run]\n\
mode = \"wait-until\"\n\
interval = \"2s\"\n\
timeout = \"3m\"\n\
\n\
[[gates.pre_switch.gates]]\n\
name = \"health\"\n\
kind = \"health\"\n\
\n\
# After the switch, through the proxy: if they fail, traffic goes back at once.\n\
[gates.post_switch.run]\n\
mode = \"wait-until\"\n\
interval = \"2s\"\n\
timeout = \"1m\"\n\
\n\
[[gates.post_switch.gates]]\n\
name = \"health\"\n\
kind = \"health\"\n\
\n\
[[gates.post_switch.gates]]\n\
name = \"health-time\"\n\
kind = \"response-time\"\n\
routes = [\"/web/health\"]\n\
warn_ms = 1500\n\
fail_ms = 5000\n",
        image = options.image,
        blue = options.blue_port,
        green = options.green_port,
        kind = options.proxy.as_str(),
        listen = options.listen,
    );
    Ok(out)
}

/// The proxy configuration that matches `config`, with all traffic on `active`: HAProxy's
/// whole `haproxy.cfg`; nginx's main file and its managed include; Traefik's dynamic file
/// and a static configuration to start from.
///
/// # Errors
/// [`Error::Config`] when the proxy URL is not `http://<ip>:<port>` (the proxy must
/// listen there) or a slot has no fixed port; [`Error::Render`] from Traefik's file.
pub fn proxy_files(config: &StackConfig, active: Slot) -> Result<Vec<ProxyFile>> {
    let listen = listen_addr(config)?;
    let backend = |slot: Slot| -> Result<Backend> {
        config
            .configured_backend(slot)
            .ok_or_else(|| Error::Config {
                field: format!("slots.{slot}.http_port"),
                reason: "a generated proxy configuration needs a fixed port for each slot"
                    .to_owned(),
            })
    };
    let (blue, green) = (backend(Slot::Blue)?, backend(Slot::Green)?);
    let health = Some(config.slots.health_path.clone());
    Ok(match &config.proxy.driver {
        ProxyDriver::Haproxy {
            admin_socket,
            config: file,
        } => {
            let mut site = HaproxySite::new(listen, &absolute(admin_socket), blue, green, active);
            site.health_path = health;
            // The maintenance map beside the configuration when the stack file names it
            // (a socket's directory may be a tmpfs, and HAProxy will not start without it).
            if let Some(file) = file {
                site.maintenance_map =
                    crate::switch::haproxy::maintenance_map_beside(&absolute(file));
            }
            vec![
                ProxyFile {
                    what: "haproxy.cfg",
                    path: file.clone(),
                    text: render_config(&site),
                },
                ProxyFile {
                    what: "haproxy maintenance map (empty; rewritten by the switch)",
                    path: Some(site.maintenance_map.clone()),
                    text: String::new(),
                },
            ]
        }
        ProxyDriver::Nginx(options) => {
            let mut options = options.clone();
            options.prefix = absolute(&options.prefix);
            options.managed_file = absolute(&options.managed_file);
            options.pid_file = options.pid_file.as_deref().map(absolute);
            if let crate::switch::nginx::NginxMode::StateFile { state_dir } = &mut options.mode {
                *state_dir = absolute(state_dir);
            }
            let switch = NginxSwitch::new(options.clone());
            vec![
                ProxyFile {
                    what: "nginx main configuration",
                    path: Some(options.main_conf.clone()),
                    text: render_main_conf(listen, &options),
                },
                ProxyFile {
                    what: "nginx managed include (rewritten by the switch)",
                    path: Some(options.managed_file.clone()),
                    text: switch.render_install(&blue, &green, active),
                },
            ]
        }
        ProxyDriver::Traefik(options) => {
            let switch = TraefikSwitch::new(options.clone());
            let dir = absolute(options.file.parent().unwrap_or_else(|| Path::new(".")));
            let static_path = dir
                .parent()
                .map(|p| p.join("traefik.toml"))
                .unwrap_or_else(|| dir.join("traefik.toml"));
            let entry_points = if options.entry_points.is_empty() {
                vec!["web".to_owned()]
            } else {
                options.entry_points.clone()
            };
            let mut static_text = String::from(
                "# Traefik's static configuration for this stack, written by odoo-bluegreen:\n\
# start Traefik with `traefik --configFile=<this file>`.\n",
            );
            for name in &entry_points {
                let _ = write!(
                    static_text,
                    "[entryPoints.{name}]\naddress = \"{listen}\"\n\n"
                );
            }
            let _ = write!(
                static_text,
                "[providers.file]\n# The switch replaces its dynamic file atomically: watch the directory.\ndirectory = \"{}\"\nwatch = true\n",
                dir.display()
            );
            vec![
                ProxyFile {
                    what: "traefik dynamic file (rewritten by the switch)",
                    path: Some(options.file.clone()),
                    text: switch.render_install(&blue, &green, active)?,
                },
                ProxyFile {
                    what: "traefik static configuration",
                    path: Some(static_path),
                    text: static_text,
                },
            ]
        }
    })
}

/// Where the proxy must listen: the proxy URL's address.
fn listen_addr(config: &StackConfig) -> Result<SocketAddr> {
    let url = &config.proxy.url;
    let bad = || {
        Error::Config {
        field: "proxy.url".to_owned(),
        reason: format!(
            "{url}: a generated proxy configuration listens on the URL's address, so it must be http://<ip>:<port>"
        ),
    }
    };
    let host = url.host_str().ok_or_else(bad)?;
    let ip: std::net::IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| bad())?;
    let port = url.port_or_known_default().ok_or_else(bad)?;
    Ok(SocketAddr::new(ip, port))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(proxy: ProxyKind) -> InitOptions {
        InitOptions {
            stack: "shop".to_owned(),
            proxy,
            image: "odoo:17.0".to_owned(),
            listen: "127.0.0.1:8080".parse().unwrap_or_else(|_| unreachable!()),
            blue_port: 18069,
            green_port: 28069,
        }
    }

    #[test]
    fn the_stack_file_loads_and_its_proxy_files_mark_the_slot() {
        for kind in [ProxyKind::Haproxy, ProxyKind::Nginx, ProxyKind::Traefik] {
            let text = render_stack_file(&options(kind)).unwrap_or_else(|e| panic!("{e}"));
            let config = StackConfig::from_toml(&text, Path::new("/srv/shop"))
                .unwrap_or_else(|e| panic!("{kind:?}: {e}\n{text}"));
            assert_eq!(config.proxy.kind(), kind);
            assert_eq!(config.proxy.url.as_str(), "http://127.0.0.1:8080/");
            let files = proxy_files(&config, Slot::Blue).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                files.iter().any(|f| f.text.contains("X-Deploy-Slot")),
                "{kind:?}: {files:#?}"
            );
            assert!(
                files
                    .iter()
                    .all(|f| f.path.as_ref().is_some_and(|p| p.starts_with("/srv/shop"))),
                "{kind:?}: every file sits beside the stack file: {files:#?}"
            );
        }
    }

    /// The keys Traefik v3's file provider documents for what the switch writes
    /// (https://www.schemastore.org/traefik-v3-file-provider.json: `httpRouter`,
    /// `httpService` (oneOf `loadBalancer`, `weighted`), `httpLoadBalancerService`,
    /// `httpWeightedService`, `headersMiddleware`); every object there has
    /// `additionalProperties: false`, so an unknown key is a schema error.
    fn check_traefik_dynamic(value: &toml::Value) -> Vec<String> {
        let mut errors = Vec::new();
        let table = |v: &toml::Value, at: &str, errors: &mut Vec<String>| {
            v.as_table().cloned().unwrap_or_else(|| {
                errors.push(format!("{at}: not a table"));
                toml::map::Map::new()
            })
        };
        let only = |t: &toml::map::Map<String, toml::Value>,
                    allowed: &[&str],
                    required: &[&str],
                    at: &str,
                    errors: &mut Vec<String>| {
            for key in t.keys() {
                if !allowed.contains(&key.as_str()) {
                    errors.push(format!("{at}.{key}: not in the schema"));
                }
            }
            for key in required {
                if !t.contains_key(*key) {
                    errors.push(format!("{at}: lacks required {key}"));
                }
            }
        };
        let root = table(value, "", &mut errors);
        only(&root, &["http", "tcp", "udp", "tls"], &[], "", &mut errors);
        let http = table(
            root.get("http").unwrap_or(&toml::Value::Boolean(false)),
            "http",
            &mut errors,
        );
        only(
            &http,
            &["routers", "services", "middlewares", "serversTransports"],
            &[],
            "http",
            &mut errors,
        );
        let services = http
            .get("services")
            .and_then(toml::Value::as_table)
            .cloned()
            .unwrap_or_default();
        if let Some(routers) = http.get("routers").and_then(toml::Value::as_table) {
            for (name, router) in routers {
                let at = format!("http.routers.{name}");
                let r = table(router, &at, &mut errors);
                only(
                    &r,
                    &[
                        "entryPoints",
                        "rule",
                        "ruleSyntax",
                        "priority",
                        "middlewares",
                        "service",
                        "tls",
                    ],
                    &["rule", "service"],
                    &at,
                    &mut errors,
                );
                if r.get("priority")
                    .and_then(toml::Value::as_integer)
                    .is_some_and(|p| p < 0)
                {
                    errors.push(format!("{at}.priority: minimum 0"));
                }
                let target = r.get("service").and_then(toml::Value::as_str).unwrap_or("");
                if !services.contains_key(target) {
                    errors.push(format!("{at}.service: {target} is not defined"));
                }
                for m in r
                    .get("middlewares")
                    .and_then(toml::Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let defined = http
                        .get("middlewares")
                        .and_then(|ms| ms.get(m.as_str().unwrap_or("")));
                    if defined.is_none() {
                        errors.push(format!("{at}.middlewares: {m} is not defined"));
                    }
                }
            }
        }
        for (name, service) in &services {
            let at = format!("http.services.{name}");
            let s = table(service, &at, &mut errors);
            if s.len() != 1 {
                errors.push(format!(
                    "{at}: exactly one of loadBalancer, weighted, mirroring, failover"
                ));
            }
            if let Some(lb) = s.get("loadBalancer") {
                let at = format!("{at}.loadBalancer");
                let lb = table(lb, &at, &mut errors);
                only(
                    &lb,
                    &[
                        "servers",
                        "sticky",
                        "healthCheck",
                        "passHostHeader",
                        "responseForwarding",
                        "serversTransport",
                    ],
                    &["servers"],
                    &at,
                    &mut errors,
                );
                let servers = lb
                    .get("servers")
                    .and_then(toml::Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if servers.is_empty() {
                    errors.push(format!("{at}.servers: minItems 1"));
                }
                for server in &servers {
                    only(
                        &table(server, &at, &mut errors),
                        &["url"],
                        &["url"],
                        &format!("{at}.servers[]"),
                        &mut errors,
                    );
                }
                if let Some(hc) = lb.get("healthCheck") {
                    only(
                        &table(hc, &at, &mut errors),
                        &[
                            "method",
                            "path",
                            "scheme",
                            "hostname",
                            "port",
                            "interval",
                            "timeout",
                            "headers",
                            "followRedirects",
                        ],
                        &[],
                        &format!("{at}.healthCheck"),
                        &mut errors,
                    );
                }
            } else if let Some(w) = s.get("weighted") {
                let at = format!("{at}.weighted");
                let w = table(w, &at, &mut errors);
                only(
                    &w,
                    &["services", "sticky", "healthCheck"],
                    &[],
                    &at,
                    &mut errors,
                );
                for entry in w
                    .get("services")
                    .and_then(toml::Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let e = table(entry, &at, &mut errors);
                    only(
                        &e,
                        &["name", "weight"],
                        &[],
                        &format!("{at}.services[]"),
                        &mut errors,
                    );
                    let target = e.get("name").and_then(toml::Value::as_str).unwrap_or("");
                    if !services.contains_key(target) {
                        errors.push(format!("{at}.services[]: {target} is not defined"));
                    }
                }
            }
        }
        if let Some(middlewares) = http.get("middlewares").and_then(toml::Value::as_table) {
            for (name, m) in middlewares {
                let at = format!("http.middlewares.{name}");
                let m = table(m, &at, &mut errors);
                only(&m, &["headers"], &[], &at, &mut errors);
                if let Some(h) = m.get("headers") {
                    let h = table(h, &at, &mut errors);
                    only(
                        &h,
                        &["customRequestHeaders", "customResponseHeaders"],
                        &[],
                        &format!("{at}.headers"),
                        &mut errors,
                    );
                }
            }
        }
        errors
    }

    #[test]
    fn traefiks_files_follow_its_documented_schema_and_mark_the_slot() {
        let text = render_stack_file(&options(ProxyKind::Traefik)).unwrap_or_default();
        let config =
            StackConfig::from_toml(&text, Path::new("/srv/shop")).unwrap_or_else(|e| panic!("{e}"));
        for active in Slot::ALL {
            let files = proxy_files(&config, active).unwrap_or_else(|e| panic!("{e}"));
            let dynamic = files
                .iter()
                .find(|f| f.what.contains("dynamic"))
                .map_or("", |f| f.text.as_str());
            let value: toml::Value =
                toml::from_str(dynamic).unwrap_or_else(|e| panic!("{e}\n{dynamic}"));
            let errors = check_traefik_dynamic(&value);
            assert!(errors.is_empty(), "{errors:#?}\n{dynamic}");
            let marker = &value["http"]["middlewares"][format!("odoo-slot-{active}")]["headers"]
                ["customResponseHeaders"]["X-Deploy-Slot"];
            assert_eq!(marker.as_str(), Some(active.as_str()), "{dynamic}");
            for router in ["odoo-http", "odoo-realtime"] {
                assert_eq!(
                    value["http"]["routers"][router]["middlewares"][0].as_str(),
                    Some(format!("odoo-slot-{active}").as_str())
                );
            }
            let static_file = files
                .iter()
                .find(|f| f.what.contains("static"))
                .map_or("", |f| f.text.as_str());
            let value: toml::Value = toml::from_str(static_file).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                value["entryPoints"]["web"]["address"].as_str(),
                Some("127.0.0.1:8080")
            );
            assert_eq!(value["providers"]["file"]["watch"].as_bool(), Some(true));
            assert_eq!(
                value["providers"]["file"]["directory"].as_str(),
                Some("/srv/shop/traefik/dynamic")
            );
        }
        // The check itself catches what Traefik would refuse.
        let bad: toml::Value = toml::from_str(
            "[http.routers.a]\nrule = \"PathPrefix(`/`)\"\nservice = \"nowhere\"\npriority = -1\nweight = 3\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            check_traefik_dynamic(&bad).len(),
            3,
            "{:#?}",
            check_traefik_dynamic(&bad)
        );
    }

    #[test]
    fn bad_names_and_ports_are_refused() {
        let mut bad = options(ProxyKind::Haproxy);
        bad.stack = "my shop".to_owned();
        assert!(render_stack_file(&bad).is_err());
        let mut bad = options(ProxyKind::Haproxy);
        bad.green_port = bad.blue_port;
        assert!(render_stack_file(&bad).is_err());
        let mut bad = options(ProxyKind::Haproxy);
        bad.blue_port = 8080;
        assert!(render_stack_file(&bad).is_err());
    }
}
