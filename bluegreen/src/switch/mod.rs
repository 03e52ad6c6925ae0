//! Moving traffic between the blue and green slots in a reverse proxy.
//!
//! [`TrafficSwitch`] is implemented for nginx ([`nginx::NginxSwitch`]), HAProxy
//! ([`haproxy::HaproxySwitch`]) and Traefik ([`traefik::TraefikSwitch`]). Each routes `/`
//! to a slot's HTTP port and `/websocket` (and `/longpolling/`) to its real-time port, as
//! Odoo's deployment documentation does.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::slot::Slot;

pub mod haproxy;
pub mod nginx;
pub mod traefik;

/// The response header the proxy adds to what it answers itself in maintenance
/// (`X-Deploy-Maintenance: on`): a client, a probe or the deploy's own check tells the
/// proxy's maintenance page from an Odoo that answers 503.
pub const MAINTENANCE_HEADER: &str = "X-Deploy-Maintenance";

/// The page the proxy answers in maintenance, with HTTP 503 and `Retry-After`. Plain
/// text for every proxy's configuration syntax: no quote, no `$`, no backslash.
pub const MAINTENANCE_PAGE: &str = "<!DOCTYPE html><html><head><meta charset=utf-8><title>Maintenance</title></head><body style=font-family:sans-serif;text-align:center;margin-top:15%><h1>Down for maintenance</h1><p>This Odoo is being updated and will be back in a few minutes.</p></body></html>";

/// What the proxy answers on the health path in maintenance (HTTP 200): the proxy is
/// up and means to serve again, so a load balancer in front keeps it.
pub const MAINTENANCE_HEALTH: &str = "{\"status\": \"maintenance\"}";

/// The `Retry-After` of the maintenance page, in seconds, unless configured.
pub const DEFAULT_RETRY_AFTER: u32 = 30;

/// Where one slot serves: its published HTTP and real-time addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Backend {
    /// The slot.
    pub slot: Slot,
    /// The HTTP address (Odoo's 8069, published on the host).
    pub http: SocketAddr,
    /// The real-time address (Odoo's 8072); the HTTP address when the slot serves
    /// `/websocket` on its HTTP port.
    pub realtime: SocketAddr,
}

impl Backend {
    /// A backend with separate HTTP and real-time addresses.
    #[must_use]
    pub fn new(slot: Slot, http: SocketAddr, realtime: SocketAddr) -> Self {
        Self {
            slot,
            http,
            realtime,
        }
    }

    /// A backend serving real-time traffic on its HTTP address too.
    #[must_use]
    pub fn single_port(slot: Slot, http: SocketAddr) -> Self {
        Self::new(slot, http, http)
    }
}

/// Which proxy a switch drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProxyKind {
    /// nginx.
    Nginx,
    /// HAProxy.
    Haproxy,
    /// Traefik.
    Traefik,
}

impl ProxyKind {
    /// `"nginx"`, `"haproxy"` or `"traefik"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::Haproxy => "haproxy",
            Self::Traefik => "traefik",
        }
    }
}

impl fmt::Display for ProxyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The administrative state of a slot in the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AdminState {
    /// Takes new requests according to its weight.
    Ready,
    /// Takes no new requests; requests and connections in flight finish.
    Drain,
    /// Out of rotation (HAProxy maintenance).
    Maint,
}

/// One slot as the proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendState {
    /// The slot.
    pub slot: Slot,
    /// The HTTP address the proxy has for it, when it has one.
    pub http: Option<SocketAddr>,
    /// The real-time address the proxy has for it, when it has one.
    pub realtime: Option<SocketAddr>,
    /// The share of new requests it receives, in percent (0 to 100).
    pub share: u8,
    /// Its administrative state.
    pub admin: AdminState,
    /// Whether the proxy's own health check considers it up (`None`: no health check,
    /// or the proxy does not expose it).
    pub healthy: Option<bool>,
}

impl TrafficState {
    /// The state of a proxy that routes by weight alone (nginx, Traefik): each slot's
    /// share from `share_of`, its addresses from the `known` backends, ready when it
    /// has a share and drained when not, no health check of the proxy's own.
    pub(crate) fn from_shares(
        proxy: ProxyKind,
        known: &[Backend],
        share_of: impl Fn(Slot) -> u8,
    ) -> Self {
        let backends = Slot::ALL
            .into_iter()
            .map(|slot| {
                let known = known.iter().find(|b| b.slot == slot);
                let share = share_of(slot);
                BackendState {
                    slot,
                    http: known.map(|b| b.http),
                    realtime: known.map(|b| b.realtime),
                    share,
                    admin: if share > 0 {
                        AdminState::Ready
                    } else {
                        AdminState::Drain
                    },
                    healthy: None,
                }
            })
            .collect();
        Self { proxy, backends }
    }
}

/// The proxy's live routing between the slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficState {
    /// Which proxy.
    pub proxy: ProxyKind,
    /// The slots the proxy knows, blue first.
    pub backends: Vec<BackendState>,
}

impl TrafficState {
    /// The share of new requests going to `slot`, in percent.
    #[must_use]
    pub fn share(&self, slot: Slot) -> u8 {
        self.backends
            .iter()
            .find(|b| b.slot == slot)
            .map_or(0, |b| b.share)
    }

    /// The one slot receiving all new requests, or `None` when traffic is split (canary)
    /// or goes nowhere.
    #[must_use]
    pub fn serving(&self) -> Option<Slot> {
        Slot::ALL.into_iter().find(|s| self.share(*s) == 100)
    }

    /// One slot's state, if the proxy knows it.
    #[must_use]
    pub fn backend(&self, slot: Slot) -> Option<&BackendState> {
        self.backends.iter().find(|b| b.slot == slot)
    }
}

/// How a switch was carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchMethod {
    /// HAProxy's runtime API: no reload, no configuration file touched.
    RuntimeApi,
    /// The managed configuration file was rewritten, checked and the proxy reloaded.
    Reload,
    /// nginx's reload-free mode: the state directory nginx consults on each request was
    /// replaced atomically.
    StateFile,
    /// A file the proxy watches was replaced atomically (Traefik's file provider).
    WatchedFile,
    /// Nothing had to change.
    Unchanged,
}

/// What a switch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchReport {
    /// Which proxy.
    pub proxy: ProxyKind,
    /// The routing before.
    pub before: TrafficState,
    /// The routing after, as read back from the proxy.
    pub after: TrafficState,
    /// How it was done.
    pub method: SwitchMethod,
    /// How long the switch call took (the proxy may need a little longer before every
    /// new request follows: see [`crate::verify::verify_release`]).
    pub elapsed: Duration,
}

/// What a drain observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// The drained slot.
    pub slot: Slot,
    /// Connections or old processes still busy with the slot when the drain returned;
    /// `None` when the proxy cannot tell (then the drain waited its grace time).
    pub remaining: Option<u64>,
    /// How long it waited.
    pub waited: Duration,
}

/// Moves traffic between the blue and green slots of one stack in one proxy.
///
/// Contract, for every implementation:
/// - [`TrafficSwitch::active`] reads the proxy's live state (its runtime API, the files
///   it loaded or consults), never a copy kept by the switch.
/// - A switch returns only after the proxy accepted the change; new requests follow
///   within the proxy's own delay (instant for HAProxy and nginx's reload-free mode, the
///   reload for nginx's reload mode, the file watch for Traefik).
/// - A refused change leaves the previous routing in place and returns `Err`; a switch
///   never leaves traffic going nowhere.
/// - Requests in flight to the old slot are not cut: the old slot keeps its connections
///   until [`TrafficSwitch::drain`] has been waited for and the caller stops it.
/// - Switching to the state already in place is a successful no-op
///   ([`SwitchMethod::Unchanged`]).
/// - Implementations serialize their own calls; callers coordinate across processes.
/// - A switch does not check that the target slot is healthy: the caller does that
///   before (readiness, gates) and after ([`crate::verify::verify_release`]).
#[async_trait]
pub trait TrafficSwitch: Send + Sync {
    /// Which proxy this drives.
    fn kind(&self) -> ProxyKind;

    /// The proxy's live routing.
    ///
    /// # Errors
    /// When the proxy cannot be asked or its answer cannot be read.
    async fn active(&self) -> Result<TrafficState>;

    /// Sends every new request to `target` (share 100), the other slot getting none.
    ///
    /// The default sets the weights `[(target, 100)]`, which is what every proxy here
    /// does.
    ///
    /// # Errors
    /// When the proxy refuses the change (then routing is as before) or cannot be reached.
    async fn switch_to(&self, target: &Backend) -> Result<SwitchReport> {
        self.set_weights(&[(*target, 100)]).await
    }

    /// Splits new requests between the slots by weight (canary). Weights are relative
    /// (`[(blue, 90), (green, 10)]` sends 10 % to green); a slot that is not listed gets
    /// none. A weight of 0 drains that slot.
    ///
    /// # Errors
    /// [`Error::InvalidWeights`] when the list is empty, names a slot twice or every
    /// weight is 0; otherwise as [`TrafficSwitch::switch_to`].
    async fn set_weights(&self, weights: &[(Backend, u8)]) -> Result<SwitchReport>;

    /// Makes sure `slot` takes no new requests and waits, at most `timeout`, until the
    /// requests it is serving have finished (as far as the proxy can tell).
    ///
    /// # Errors
    /// [`Error::InvalidWeights`] when draining it would leave no slot taking traffic;
    /// when the proxy cannot be asked.
    async fn drain(&self, slot: Slot, timeout: Duration) -> Result<DrainReport>;

    /// Makes the proxy apply again the routing this switch last wrote, for when the
    /// proxy may not have loaded it: a process killed between writing nginx's upstream
    /// file and reloading nginx leaves a file that says one thing while nginx does
    /// another. The orchestrator calls it when requests through the proxy do not reach
    /// the slot [`TrafficSwitch::active`] names.
    ///
    /// The default does nothing: HAProxy's runtime API and Traefik's watched file have
    /// no such gap.
    ///
    /// # Errors
    /// When the proxy refuses or cannot be reached.
    async fn reapply(&self) -> Result<()> {
        Ok(())
    }

    /// Turns maintenance on or off. On, the proxy answers every request itself with
    /// HTTP 503, `Retry-After` and [`MAINTENANCE_PAGE`], except the health path, which
    /// it answers with 200 and [`MAINTENANCE_HEALTH`]; both carry
    /// [`MAINTENANCE_HEADER`]. The routing between the slots is kept as it is, and it
    /// takes effect when maintenance ends. No reload: nginx checks a flag file per
    /// request, HAProxy a map changed through its admin socket. Turning on what is on
    /// (or off what is off) is a no-op.
    ///
    /// The default refuses: [`Error::MaintenanceUnsupported`] (Traefik).
    ///
    /// # Errors
    /// The proxy cannot do maintenance (its configuration predates it: write it again
    /// with `odoo-bluegreen setup` or `proxy-config`), or cannot be reached.
    async fn set_maintenance(&self, on: bool) -> Result<()> {
        let _ = on;
        Err(Error::MaintenanceUnsupported {
            proxy: self.kind(),
            reason: "it has no way to answer requests itself".to_owned(),
        })
    }

    /// Whether maintenance is on, as the proxy has it. The default: never.
    ///
    /// # Errors
    /// When the proxy cannot be asked.
    async fn maintenance(&self) -> Result<bool> {
        Ok(false)
    }
}

/// Validated weights: one entry per slot, blue first, in 0..=255, at least one non-zero.
pub(crate) fn normalize_weights(weights: &[(Backend, u8)]) -> Result<Vec<(Backend, u8)>> {
    if weights.is_empty() {
        return Err(Error::InvalidWeights {
            reason: "no backend given".to_owned(),
        });
    }
    let mut out: Vec<(Backend, u8)> = Vec::with_capacity(2);
    for (backend, weight) in weights {
        if out.iter().any(|(b, _)| b.slot == backend.slot) {
            return Err(Error::InvalidWeights {
                reason: format!("slot {} given twice", backend.slot),
            });
        }
        out.push((*backend, *weight));
    }
    if out.iter().all(|(_, w)| *w == 0) {
        return Err(Error::InvalidWeights {
            reason: "every weight is 0: traffic would go nowhere".to_owned(),
        });
    }
    out.sort_by_key(|(b, _)| b.slot);
    Ok(out)
}

/// `part` of `total` in percent, rounded; 0 when `total` is 0.
pub(crate) fn percent(part: u32, total: u32) -> u8 {
    (part * 100 + total / 2)
        .checked_div(total)
        .map_or(0, |p| u8::try_from(p.min(100)).unwrap_or(100))
}

/// Percent shares from relative weights; they add up to 100 exactly, and a non-zero
/// weight never rounds down to nothing (1 of 1000 is still a canary).
pub(crate) fn shares(weights: &[(Backend, u8)]) -> Vec<(Slot, u8)> {
    let total: u32 = weights.iter().map(|(_, w)| u32::from(*w)).sum();
    let mut out = Vec::with_capacity(weights.len());
    let mut given: u8 = 0;
    for (i, (backend, weight)) in weights.iter().enumerate() {
        let later_nonzero = weights.iter().skip(i + 1).filter(|(_, w)| *w > 0).count();
        let room = 100u8
            .saturating_sub(given)
            .saturating_sub(u8::try_from(later_nonzero).unwrap_or(100));
        let share = if *weight == 0 {
            0
        } else if later_nonzero == 0 {
            100u8.saturating_sub(given)
        } else {
            percent(u32::from(*weight), total).clamp(1, room.max(1))
        };
        given = given.saturating_add(share);
        out.push((backend.slot, share));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn backend(slot: Slot, port: u16) -> Backend {
        Backend::single_port(slot, SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
    }

    #[test]
    fn shares_add_up_to_100() {
        let b = backend(Slot::Blue, 1);
        let g = backend(Slot::Green, 2);
        assert_eq!(
            shares(&[(b, 90), (g, 10)]),
            vec![(Slot::Blue, 90), (Slot::Green, 10)]
        );
        assert_eq!(
            shares(&[(b, 1), (g, 2)]),
            vec![(Slot::Blue, 33), (Slot::Green, 67)]
        );
        assert_eq!(shares(&[(g, 5)]), vec![(Slot::Green, 100)]);
        assert_eq!(
            shares(&[(b, 0), (g, 5)]),
            vec![(Slot::Blue, 0), (Slot::Green, 100)]
        );
        assert_eq!(
            shares(&[(b, 255), (g, 1)]),
            vec![(Slot::Blue, 99), (Slot::Green, 1)]
        );
    }

    #[test]
    fn weights_are_validated() {
        let b = backend(Slot::Blue, 1);
        let g = backend(Slot::Green, 2);
        assert!(matches!(
            normalize_weights(&[]),
            Err(Error::InvalidWeights { .. })
        ));
        assert!(matches!(
            normalize_weights(&[(b, 1), (b, 2)]),
            Err(Error::InvalidWeights { .. })
        ));
        assert!(matches!(
            normalize_weights(&[(b, 0), (g, 0)]),
            Err(Error::InvalidWeights { .. })
        ));
        let ok = normalize_weights(&[(g, 1), (b, 3)]).unwrap();
        assert_eq!(ok[0].0.slot, Slot::Blue);
    }
}
