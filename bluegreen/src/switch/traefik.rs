//! Traefik through its file provider: the switch owns one dynamic configuration file
//! (TOML) and replaces it atomically; Traefik watches it and applies it without restart.
//!
//! The file holds, for a stack named `odoo`:
//! - routers `odoo-http` (`PathPrefix(`/`)`) and `odoo-realtime`
//!   (`PathPrefix(`/websocket`) || PathPrefix(`/longpolling/`)`, higher priority);
//! - weighted services `odoo-http` and `odoo-realtime` whose `weighted.services` name the
//!   slots' services with their weights (slots without traffic are left out);
//! - load-balancer services `odoo-blue-http`, `odoo-green-http`, `odoo-blue-realtime`,
//!   `odoo-green-realtime`, one server each, with a health check on the HTTP ones;
//! - while one slot takes all traffic, a `headers` middleware `odoo-slot-<slot>` on both
//!   routers that marks every response `X-Deploy-Slot: <slot>` (Traefik cannot tell
//!   which weighted service answered, so a canary split is unmarked).
//!
//! Traefik proxies websockets without extra settings. Point the provider at the file's
//! directory (`[providers.file] directory = ... watch = true`): a watched directory sees
//! the atomic rename, a watched single file may not.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tracing::info;

use super::{
    normalize_weights, percent, Backend, DrainReport, ProxyKind, SwitchMethod, SwitchReport,
    TrafficState, TrafficSwitch,
};
use crate::error::{Error, Result};
use crate::fsutil::{read_optional, write_atomic};
use crate::slot::Slot;
use crate::verify::SLOT_HEADER;

/// Traefik's dynamic configuration, as far as this switch writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicConfig {
    /// The `http` section.
    pub http: HttpConfig,
}

/// `[http]`: routers and services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpConfig {
    /// `[http.routers.<name>]`.
    pub routers: BTreeMap<String, Router>,
    /// `[http.services.<name>]`.
    pub services: BTreeMap<String, Service>,
    /// `[http.middlewares.<name>]`: the slot markers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub middlewares: BTreeMap<String, Middleware>,
}

/// A middleware, as far as this switch writes one: a `headers` middleware.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Middleware {
    /// `headers`: headers added to requests or responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<HeadersMiddleware>,
}

/// `headers` middleware settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadersMiddleware {
    /// `customResponseHeaders`: set on every response.
    #[serde(rename = "customResponseHeaders", default)]
    pub custom_response_headers: BTreeMap<String, String>,
}

/// A router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Router {
    /// The rule, e.g. ``PathPrefix(`/websocket`)``.
    pub rule: String,
    /// The service it sends to.
    pub service: String,
    /// The entry points it listens on (none: all).
    #[serde(rename = "entryPoints", default, skip_serializing_if = "Vec::is_empty")]
    pub entry_points: Vec<String>,
    /// Its priority (higher wins).
    pub priority: i64,
    /// The middlewares it applies, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub middlewares: Vec<String>,
}

/// A service: weighted or a load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// Weighted round robin over other services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weighted: Option<Weighted>,
    /// A load balancer over servers.
    #[serde(
        rename = "loadBalancer",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub load_balancer: Option<LoadBalancer>,
}

/// `weighted`: the services and their weights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weighted {
    /// The weighted services.
    pub services: Vec<WeightedService>,
}

/// One entry of `weighted.services`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedService {
    /// The service name.
    pub name: String,
    /// Its weight.
    pub weight: u32,
}

/// `loadBalancer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancer {
    /// The servers.
    pub servers: Vec<Server>,
    /// Forward the client's `Host` header (Odoo's dbfilter may use it).
    #[serde(rename = "passHostHeader")]
    pub pass_host_header: bool,
    /// An active health check.
    #[serde(
        rename = "healthCheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub health_check: Option<HealthCheck>,
}

/// One server of a load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    /// Its URL, `http://127.0.0.1:8069`.
    pub url: String,
}

/// `loadBalancer.healthCheck`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// The path requested.
    pub path: String,
    /// Time between checks (Traefik duration: `2s`).
    pub interval: String,
    /// Time limit of a check.
    pub timeout: String,
}

/// Where the dynamic file is and how it is named.
#[derive(Debug, Clone)]
pub struct TraefikOptions {
    /// The dynamic configuration file this switch owns.
    pub file: PathBuf,
    /// Prefix of the router and service names.
    pub name: String,
    /// The entry points the routers listen on (empty: all).
    pub entry_points: Vec<String>,
    /// Health check path of the HTTP services (`None`: no check).
    pub health_path: Option<String>,
    /// How long a drain waits (Traefik does not tell when requests are done).
    pub drain_grace: Duration,
}

impl TraefikOptions {
    /// Options with defaults: names prefixed `odoo`, all entry points, health check on
    /// `/web/health`, 2 s drain grace.
    #[must_use]
    pub fn new(file: &Path) -> Self {
        Self {
            file: file.to_path_buf(),
            name: "odoo".to_owned(),
            entry_points: Vec::new(),
            health_path: Some("/web/health".to_owned()),
            drain_grace: Duration::from_secs(2),
        }
    }
}

/// Drives Traefik through its dynamic file.
#[derive(Debug)]
pub struct TraefikSwitch {
    options: TraefikOptions,
    lock: Mutex<()>,
}

impl TraefikSwitch {
    /// A switch writing `options.file`.
    #[must_use]
    pub fn new(options: TraefikOptions) -> Self {
        Self {
            options,
            lock: Mutex::new(()),
        }
    }

    /// Writes the file for a first start: both slots, all traffic to `active`.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Render`].
    pub async fn install(&self, blue: &Backend, green: &Backend, active: Slot) -> Result<()> {
        let text = self.render_install(blue, green, active)?;
        write_atomic(&self.options.file, text.as_bytes()).await
    }

    /// The dynamic file [`TraefikSwitch::install`] writes.
    ///
    /// # Errors
    /// [`Error::Render`] when it cannot be serialized.
    pub fn render_install(&self, blue: &Backend, green: &Backend, active: Slot) -> Result<String> {
        Self::to_text(&self.render(&[*blue, *green], &[(active, 1)]))
    }

    fn to_text(config: &DynamicConfig) -> Result<String> {
        let text = toml::to_string(config).map_err(|e| Error::Render {
            what: "traefik dynamic configuration",
            message: e.to_string(),
        })?;
        Ok(format!(
            "# managed by deploy-bluegreen: rewritten on every switch, do not edit\n{text}"
        ))
    }

    /// The configuration the file holds now.
    ///
    /// # Errors
    /// [`Error::ProxyState`] when the file is missing or not a dynamic configuration.
    pub async fn read(&self) -> Result<DynamicConfig> {
        let path = &self.options.file;
        let text = read_optional(path)
            .await?
            .ok_or_else(|| Error::ProxyState {
                proxy: "traefik",
                problem: format!("{} does not exist (run install first)", path.display()),
            })?;
        toml::from_str(&text).map_err(|e| Error::ProxyState {
            proxy: "traefik",
            problem: format!("{}: {e}", path.display()),
        })
    }

    async fn write(&self, config: &DynamicConfig) -> Result<()> {
        write_atomic(&self.options.file, Self::to_text(config)?.as_bytes()).await
    }

    fn service_name(&self, slot: Option<Slot>, kind: &str) -> String {
        match slot {
            Some(slot) => format!("{}-{slot}-{kind}", self.options.name),
            None => format!("{}-{kind}", self.options.name),
        }
    }

    fn render(&self, backends: &[Backend], weights: &[(Slot, u8)]) -> DynamicConfig {
        let n = &self.options.name;
        // Traefik cannot say which weighted service answered, so responses are marked
        // with the slot only while one slot takes all traffic (the verification's
        // case); during a canary split they carry no slot header.
        let live: Vec<Slot> = weights
            .iter()
            .filter(|(_, w)| *w > 0)
            .map(|(slot, _)| *slot)
            .collect();
        let mut middlewares = BTreeMap::new();
        let marker = match live.as_slice() {
            [slot] => {
                let name = format!("{n}-slot-{slot}");
                middlewares.insert(
                    name.clone(),
                    Middleware {
                        headers: Some(HeadersMiddleware {
                            custom_response_headers: BTreeMap::from([(
                                SLOT_HEADER.to_owned(),
                                slot.to_string(),
                            )]),
                        }),
                    },
                );
                vec![name]
            }
            _ => Vec::new(),
        };
        let mut routers = BTreeMap::new();
        routers.insert(
            format!("{n}-http"),
            Router {
                rule: "PathPrefix(`/`)".to_owned(),
                service: self.service_name(None, "http"),
                entry_points: self.options.entry_points.clone(),
                priority: 1,
                middlewares: marker.clone(),
            },
        );
        routers.insert(
            format!("{n}-realtime"),
            Router {
                rule: "PathPrefix(`/websocket`) || PathPrefix(`/longpolling/`)".to_owned(),
                service: self.service_name(None, "realtime"),
                entry_points: self.options.entry_points.clone(),
                priority: 100,
                middlewares: marker,
            },
        );
        let mut services = BTreeMap::new();
        for kind in ["http", "realtime"] {
            let entries = weights
                .iter()
                .filter(|(_, w)| *w > 0)
                .map(|(slot, weight)| WeightedService {
                    name: self.service_name(Some(*slot), kind),
                    weight: u32::from(*weight),
                })
                .collect();
            services.insert(
                self.service_name(None, kind),
                Service {
                    weighted: Some(Weighted { services: entries }),
                    load_balancer: None,
                },
            );
            for backend in backends {
                let addr = if kind == "http" {
                    backend.http
                } else {
                    backend.realtime
                };
                let health_check = match (&self.options.health_path, kind) {
                    (Some(path), "http") => Some(HealthCheck {
                        path: path.clone(),
                        interval: "2s".to_owned(),
                        timeout: "1s".to_owned(),
                    }),
                    _ => None,
                };
                services.insert(
                    self.service_name(Some(backend.slot), kind),
                    Service {
                        weighted: None,
                        load_balancer: Some(LoadBalancer {
                            servers: vec![Server {
                                url: format!("http://{addr}"),
                            }],
                            pass_host_header: true,
                            health_check,
                        }),
                    },
                );
            }
        }
        DynamicConfig {
            http: HttpConfig {
                routers,
                services,
                middlewares,
            },
        }
    }

    fn backends_of(&self, config: &DynamicConfig) -> Vec<Backend> {
        let server = |slot: Slot, kind: &str| -> Option<SocketAddr> {
            let service = config
                .http
                .services
                .get(&self.service_name(Some(slot), kind))?;
            let url = &service.load_balancer.as_ref()?.servers.first()?.url;
            url.strip_prefix("http://")?
                .trim_end_matches('/')
                .parse()
                .ok()
        };
        Slot::ALL
            .into_iter()
            .filter_map(|slot| {
                let http = server(slot, "http")?;
                Some(Backend::new(
                    slot,
                    http,
                    server(slot, "realtime").unwrap_or(http),
                ))
            })
            .collect()
    }

    fn state_of(&self, config: &DynamicConfig) -> Result<TrafficState> {
        let weighted = config
            .http
            .services
            .get(&self.service_name(None, "http"))
            .and_then(|s| s.weighted.as_ref())
            .ok_or_else(|| Error::ProxyState {
                proxy: "traefik",
                problem: format!("no weighted service {}", self.service_name(None, "http")),
            })?;
        let weight_of = |slot: Slot| -> u32 {
            let name = self.service_name(Some(slot), "http");
            weighted
                .services
                .iter()
                .filter(|s| s.name == name)
                .map(|s| s.weight)
                .sum()
        };
        let total: u32 = Slot::ALL.into_iter().map(weight_of).sum();
        let known = self.backends_of(config);
        Ok(TrafficState::from_shares(
            ProxyKind::Traefik,
            &known,
            |slot| percent(weight_of(slot), total),
        ))
    }

    async fn apply(&self, weights: &[(Backend, u8)]) -> Result<SwitchReport> {
        let weights = normalize_weights(weights)?;
        let _guard = self.lock.lock().await;
        let started = Instant::now();
        let current = self.read().await?;
        let before = self.state_of(&current)?;
        let mut backends = self.backends_of(&current);
        for (backend, _) in &weights {
            match backends.iter_mut().find(|b| b.slot == backend.slot) {
                Some(known) => *known = *backend,
                None => backends.push(*backend),
            }
        }
        backends.sort_by_key(|b| b.slot);
        let slot_weights: Vec<(Slot, u8)> = weights.iter().map(|(b, w)| (b.slot, *w)).collect();
        let next = self.render(&backends, &slot_weights);
        let method = if next == current {
            SwitchMethod::Unchanged
        } else {
            self.write(&next).await?;
            SwitchMethod::WatchedFile
        };
        let after = self.state_of(&self.read().await?)?;
        info!(
            proxy = "traefik",
            ?method,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "traffic switched"
        );
        Ok(SwitchReport {
            proxy: ProxyKind::Traefik,
            before,
            after,
            method,
            elapsed: started.elapsed(),
        })
    }
}

#[async_trait]
impl TrafficSwitch for TraefikSwitch {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Traefik
    }

    async fn active(&self) -> Result<TrafficState> {
        let config = self.read().await?;
        self.state_of(&config)
    }

    async fn set_weights(&self, weights: &[(Backend, u8)]) -> Result<SwitchReport> {
        self.apply(weights).await
    }

    async fn drain(&self, slot: Slot, timeout: Duration) -> Result<DrainReport> {
        let started = Instant::now();
        let config = self.read().await?;
        let state = self.state_of(&config)?;
        if state.share(slot) > 0 {
            let other = self
                .backends_of(&config)
                .into_iter()
                .find(|b| b.slot == slot.other())
                .ok_or_else(|| Error::InvalidWeights {
                    reason: format!("{slot} is the only slot traefik knows; switch first"),
                })?;
            self.apply(&[(other, 100)]).await?;
        }
        tokio::time::sleep(self.options.drain_grace.min(timeout)).await;
        Ok(DrainReport {
            slot,
            remaining: None,
            waited: started.elapsed(),
        })
    }
}
