//! The `tcp` gate and its settings.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use deploy_core::Target;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::time::Instant;
use url::Host;

use crate::settings::{invalid, opt_duration};
use crate::{Error, Gate, GateContext, Result, Scope, Verdict};

/// Checks that a TCP connection to a host and port opens.
///
/// `Pass` when it does, with the time it took as `connect_ms`; `Fail` when the
/// connection is refused, the name does not resolve, or nothing answers within the
/// connect timeout (default [`TcpGate::DEFAULT_CONNECT_TIMEOUT`], never beyond the
/// check's deadline). It never returns `Err`: not reaching the port *is* the finding.
///
/// ```no_run
/// use std::sync::Arc;
/// use deploy_core::NullSink;
/// use deploy_gates::{Gate, GateContext, builtin::TcpGate};
///
/// # async fn demo() -> deploy_gates::Result<()> {
/// let gate = TcpGate::new("odoo-port", "127.0.0.1", 8069)?;
/// let verdict = gate.check(&GateContext::new(Arc::new(NullSink))).await?;
/// assert!(verdict.is_pass(), "{}", verdict.message);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TcpGate {
    name: String,
    host: Host<String>,
    port: u16,
    connect_timeout: Duration,
}

impl TcpGate {
    /// Connect timeout when none is set.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

    /// A gate named `name` that connects to `host` (a name, an IPv4 address, or an IPv6
    /// address with or without brackets) on `port`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] (field `host`) when `host` is not a valid host.
    pub fn new(name: impl Into<String>, host: &str, port: u16) -> Result<TcpGate> {
        let name = name.into();
        let host = match host.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => Host::Ipv4(ip),
            Ok(IpAddr::V6(ip)) => Host::Ipv6(ip),
            Err(_) => Host::parse(host).map_err(|err| Error::InvalidValue {
                scope: Scope::Gate(name.clone()),
                field: "host".to_owned(),
                reason: format!("`{host}`: {err}"),
            })?,
        };
        Ok(TcpGate {
            name,
            host,
            port,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
        })
    }

    /// A gate that connects to `target`'s URL host and port (or `settings.port`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] (scope: the target, field `url`) when the URL has no host,
    /// or no port and no default port for its scheme.
    pub fn for_target(
        name: impl Into<String>,
        target: &Target,
        settings: &TcpSettings,
    ) -> Result<TcpGate> {
        let invalid = |reason: &str| Error::InvalidValue {
            scope: Scope::Target(target.name.clone()),
            field: "url".to_owned(),
            reason: format!("`{}` {reason}", target.url),
        };
        let host = target
            .url
            .host()
            .ok_or_else(|| invalid("has no host"))?
            .to_owned();
        let port = settings
            .port
            .or_else(|| target.url.port_or_known_default())
            .ok_or_else(|| invalid("has no port"))?;
        Ok(TcpGate {
            name: name.into(),
            host,
            port,
            connect_timeout: settings
                .connect_timeout
                .unwrap_or(Self::DEFAULT_CONNECT_TIMEOUT),
        })
    }

    /// Sets the connect timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// `host:port` (IPv6 in brackets).
    #[must_use]
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    async fn connect(&self) -> std::io::Result<TcpStream> {
        match &self.host {
            Host::Domain(domain) => TcpStream::connect((domain.as_str(), self.port)).await,
            Host::Ipv4(ip) => TcpStream::connect(SocketAddr::new(IpAddr::V4(*ip), self.port)).await,
            Host::Ipv6(ip) => TcpStream::connect(SocketAddr::new(IpAddr::V6(*ip), self.port)).await,
        }
    }
}

#[async_trait]
impl Gate for TcpGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, cx: &GateContext) -> Result<Verdict> {
        let limit = self.connect_timeout.min(cx.remaining());
        let start = Instant::now();
        let attempt = tokio::time::timeout(limit, self.connect()).await;
        let elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
        let address = self.address();
        let verdict = match attempt {
            Ok(Ok(_stream)) => {
                Verdict::pass(format!("connected to {address} in {}", Ms(elapsed_ms)))
            }
            Ok(Err(err)) => Verdict::fail(format!("cannot connect to {address}: {err}")),
            Err(_elapsed) => Verdict::fail(format!(
                "no connection to {address} within {}",
                humantime::format_duration(limit)
            )),
        };
        Ok(verdict.with_value("connect_ms", elapsed_ms))
    }
}

struct Ms(f64);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} ms", self.0)
    }
}

/// Settings of a `tcp` gate.
///
/// ```toml
/// port = 8072             # default: the target URL's port (or 80/443 from its scheme)
/// connect_timeout = "3s"  # default 5s, and never beyond the gate's own timeout
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpSettings {
    /// Port to connect to instead of the target URL's.
    #[serde(default)]
    pub port: Option<u16>,
    /// How long a connection attempt may take before the verdict is `Fail`.
    #[serde(default, deserialize_with = "opt_duration")]
    pub connect_timeout: Option<Duration>,
}

impl TcpSettings {
    /// Checks the values the types let through.
    pub(crate) fn validate(&self, gate: &str) -> Result<()> {
        if self.port == Some(0) {
            return invalid(gate, "port", "must be between 1 and 65535".into());
        }
        if self.connect_timeout == Some(Duration::ZERO) {
            return invalid(gate, "connect_timeout", "must be above zero".into());
        }
        Ok(())
    }
}
