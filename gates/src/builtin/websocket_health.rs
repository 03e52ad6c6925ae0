//! The `websocket-health` gate, and its settings: a real websocket upgrade of
//! `/websocket` on the port that serves websockets, then a clean close.
//!
//! `/websocket/health` is a plain HTTP route every HTTP worker answers, so it passes
//! while Odoo's real-time side is dead: in prefork mode (`--workers`) websockets are
//! served by a separate evented (gevent) process on `gevent_port` (8072), and the HTTP
//! port answers an upgrade with a 500 ("Couldn't bind the websocket. Is the connection
//! opened on the evented port?"). A release whose gevent process crashed at start serves
//! pages and no live updates; only an upgrade on the real-time port catches it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::common::{budget, chain, excerpt, http_get, human, millis, Connection};
use crate::settings::{check_probe, default_probe_warn_ms};
use crate::{Gate, GateContext, Result, Verdict};

/// RFC 6455's GUID for `Sec-WebSocket-Accept`.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The most bytes read of an answer's head, and of frames before the close.
const MAX_READ: usize = 64 * 1024;

/// Checks the real-time side: a websocket upgrade of `path` (`/websocket`) on the
/// target's `realtime_url` (prefork mode) or else its `url`, answered `101 Switching
/// Protocols` with the right `Sec-WebSocket-Accept`, and a close answered with a close.
///
/// | outcome | when |
/// |---|---|
/// | `Pass` | upgraded and closed cleanly |
/// | `Warn` | a pass slower than `warn_ms`; an `https` target, where only `/websocket/health` is checked (no upgrade over TLS yet) |
/// | `Fail` | nothing listens on the port (the real-time process is dead), a 500 (the HTTP port of a prefork Odoo: give the target a `realtime_url`), a 404 (the database is unreachable, which `/web/health` tells, or no bus route), any other answer, no close |
/// | `Err` | only when no time is left before the deadline |
///
/// Values: `elapsed_ms`, `http_status` (0 when nothing answered), `port`.
#[derive(Debug, Clone)]
pub struct WebsocketHealthGate {
    name: String,
    connection: Arc<Connection>,
    path: String,
    warn_after: Duration,
}

impl WebsocketHealthGate {
    /// A gate named `name` checking `connection`'s target.
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        connection: Arc<Connection>,
        settings: &WebsocketHealthSettings,
    ) -> Self {
        WebsocketHealthGate {
            name: name.into(),
            connection,
            path: settings.path.clone(),
            warn_after: Duration::from_millis(settings.warn_ms),
        }
    }

    /// Which port this is, for messages.
    fn port_role(&self) -> &'static str {
        if self.connection.has_realtime_port() {
            "the real-time port"
        } else {
            "the HTTP port"
        }
    }
}

/// What one upgrade attempt found.
enum Attempt {
    /// Nothing accepted the connection (refused, unreachable, timed out).
    NoConnection(String),
    /// Upgraded; the close was answered (`true`) or not (`false`, with why).
    Upgraded { clean: CloseResult },
    /// Another answer than 101.
    Status { code: u16, body: Vec<u8> },
    /// The answer was not HTTP.
    Garbled(String),
}

/// Whether the close handshake completed, or why not.
type CloseResult = std::result::Result<(), String>;

#[derive(Deserialize)]
struct HealthBody {
    #[serde(default)]
    status: String,
    #[serde(default)]
    db_server_status: Option<bool>,
}

#[async_trait]
impl Gate for WebsocketHealthGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, cx: &GateContext) -> Result<Verdict> {
        let budget = budget(cx, &self.name)?;
        let base = self.connection.websocket_url().clone();
        let Some(host) = base.host_str().map(str::to_owned) else {
            return Ok(Verdict::fail(format!("{base} has no host")));
        };
        let port = base.port_or_known_default().unwrap_or(80);
        let at = format!("{host}:{port}");
        if base.scheme() == "https" {
            return self.route_check_over_tls(budget, &at).await;
        }
        let path = format!("{}{}", base.path().trim_end_matches('/'), self.path);
        let started = Instant::now();
        let deadline = started + budget;
        let attempt = upgrade(&host, port, &path, deadline).await;
        let elapsed = started.elapsed();
        let role = self.port_role();
        let (verdict, status) = match attempt {
            Attempt::Upgraded { clean: Ok(()) } if elapsed >= self.warn_after => (
                Verdict::warn(format!(
                    "websocket upgrade on {at} ({role}): 101 and a clean close, but slow: {} (warn_ms {})",
                    human(elapsed),
                    self.warn_after.as_millis()
                )),
                101,
            ),
            Attempt::Upgraded { clean: Ok(()) } => (
                Verdict::pass(format!(
                    "websocket upgrade on {at} ({role}): 101 and a clean close in {}",
                    human(elapsed)
                )),
                101,
            ),
            Attempt::Upgraded { clean: Err(why) } => (
                Verdict::fail(format!(
                    "websocket upgrade on {at} ({role}) answered 101, then {why}"
                )),
                101,
            ),
            Attempt::NoConnection(why) => {
                let hint = if self.connection.has_realtime_port() {
                    ": the real-time (evented, gevent) process is not running"
                } else {
                    ""
                };
                (
                    Verdict::fail(format!(
                        "nothing answers a websocket on {at} ({role}): {why}{hint}"
                    )),
                    0,
                )
            }
            Attempt::Status { code: 500, body } if !self.connection.has_realtime_port() => (
                Verdict::fail(format!(
                    "a websocket upgrade on {at} ({role}) answers 500: an Odoo in prefork mode (--workers) serves websockets only on its real-time port (gevent_port, 8072 by default); give the target its realtime_url ({})",
                    excerpt(&body)
                )),
                500,
            ),
            Attempt::Status { code: 404, body } => {
                (self.explain_404(cx, &at, role, &body).await, 404)
            }
            Attempt::Status { code, body } => (
                Verdict::fail(format!(
                    "a websocket upgrade on {at} ({role}) answers http {code}, not 101: {}",
                    excerpt(&body)
                )),
                code,
            ),
            Attempt::Garbled(why) => (
                Verdict::fail(format!(
                    "a websocket upgrade on {at} ({role}) got no HTTP answer: {why}"
                )),
                0,
            ),
        };
        Ok(verdict
            .with_value("elapsed_ms", millis(elapsed))
            .with_value("http_status", f64::from(status))
            .with_value("port", f64::from(port)))
    }
}

impl WebsocketHealthGate {
    /// A 404 to the upgrade: Odoo serves no bus route while its database is down, so
    /// ask `/web/health` about the database before blaming the version or the proxy.
    async fn explain_404(&self, cx: &GateContext, at: &str, role: &str, body: &[u8]) -> Verdict {
        let url = self.connection.endpoint("/web/health?db_server_status=1");
        let health = match budget(cx, &self.name) {
            Ok(left) => http_get(self.connection.http(), &url, left, 4096)
                .await
                .ok(),
            Err(_) => None,
        };
        let parsed = health
            .as_ref()
            .and_then(|h| serde_json::from_slice::<HealthBody>(&h.body).ok());
        match parsed {
            Some(HealthBody {
                db_server_status: Some(false),
                ..
            }) => Verdict::fail(format!(
                "a websocket upgrade on {at} ({role}) answers 404 because the database is unreachable: /web/health reports db_server_status false, and Odoo serves no bus route without its database"
            )),
            Some(h) if h.status != "pass" => Verdict::fail(format!(
                "a websocket upgrade on {at} ({role}) answers 404, and /web/health reports \"{}\"",
                h.status
            )),
            _ => Verdict::fail(format!(
                "a websocket upgrade on {at} ({role}) answers 404: no bus route (Odoo before 16, or a proxy that sends /websocket elsewhere): {}",
                excerpt(body)
            )),
        }
    }

    /// An `https` target: no upgrade over TLS yet, so `GET /websocket/health` through
    /// the HTTP client, as a warning at best.
    async fn route_check_over_tls(&self, budget: Duration, at: &str) -> Result<Verdict> {
        let url = format!(
            "{}/websocket/health",
            self.connection
                .websocket_url()
                .as_str()
                .trim_end_matches('/')
        );
        let verdict = match http_get(self.connection.http(), &url, budget, 4096).await {
            Ok(answer) => {
                let pass = answer.status == 200
                    && serde_json::from_slice::<HealthBody>(&answer.body)
                        .is_ok_and(|h| h.status == "pass");
                if pass {
                    Verdict::warn(format!(
                        "{at} is https: the websocket upgrade is not checked over TLS, only /websocket/health, which passed; give realtime_url the plain-HTTP real-time port to check the upgrade"
                    ))
                } else {
                    Verdict::fail(format!(
                        "/websocket/health on {at} answers http {}: {}",
                        answer.status,
                        excerpt(&answer.body)
                    ))
                }
            }
            Err(err) => Verdict::fail(format!(
                "no answer from /websocket/health on {at}: {}",
                chain(&err)
            )),
        };
        Ok(verdict)
    }
}

/// `Sec-WebSocket-Accept` for `key`.
fn accept_for(key: &str) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WEBSOCKET_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes())
}

/// One upgrade and close, within `deadline`.
async fn upgrade(host: &str, port: u16, path: &str, deadline: Instant) -> Attempt {
    let connected = timeout_at(deadline, TcpStream::connect((host, port))).await;
    let mut stream = match connected {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Attempt::NoConnection(e.to_string()),
        Err(_) => return Attempt::NoConnection("connection timed out".to_owned()),
    };
    let nonce: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    let key = base64::engine::general_purpose::STANDARD.encode(nonce);
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://{authority}\r\nUser-Agent: odoo-deploy-gates\r\n\r\n"
    );
    if let Err(e) = timeout_at(deadline, stream.write_all(request.as_bytes()))
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
    {
        return Attempt::Garbled(format!("sending the upgrade: {e}"));
    }
    let (head, rest) = match read_head(&mut stream, deadline).await {
        Ok(read) => read,
        Err(why) => return Attempt::Garbled(why),
    };
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let Some(code) = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
    else {
        return Attempt::Garbled(format!("status line {status_line:?}"));
    };
    if code != 101 {
        return Attempt::Status { code, body: rest };
    }
    let accept = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("sec-websocket-accept"))
        .map(|(_, value)| value.trim().to_owned());
    if accept.as_deref() != Some(accept_for(&key).as_str()) {
        return Attempt::Upgraded {
            clean: Err(format!(
                "a wrong Sec-WebSocket-Accept ({})",
                accept.as_deref().unwrap_or("none")
            )),
        };
    }
    Attempt::Upgraded {
        clean: close(&mut stream, rest, deadline).await,
    }
}

/// Reads up to the end of the answer's head; returns it and the bytes after it.
async fn read_head(
    stream: &mut TcpStream,
    deadline: Instant,
) -> std::result::Result<(String, Vec<u8>), String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(buf.get(..end).unwrap_or_default()).into_owned();
            let rest = buf.get(end + 4..).unwrap_or_default().to_vec();
            return Ok((head, rest));
        }
        if buf.len() > MAX_READ {
            return Err("an answer head over 64 KiB".to_owned());
        }
        match timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) if buf.is_empty() => return Err("the connection closed at once".to_owned()),
            Ok(Ok(0)) => return Err("the connection closed inside the answer".to_owned()),
            Ok(Ok(n)) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("no answer before the deadline".to_owned()),
        }
    }
}

/// Sends a masked close (1000) and waits for the server's close frame.
async fn close(stream: &mut TcpStream, mut buf: Vec<u8>, deadline: Instant) -> CloseResult {
    let mask: [u8; 4] = std::array::from_fn(|_| fastrand::u8(..));
    let code = 1000u16.to_be_bytes();
    let mut frame = vec![0x88, 0x80 | 2];
    frame.extend_from_slice(&mask);
    frame.extend(code.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    timeout_at(deadline, stream.write_all(&frame))
        .await
        .map_err(|_| "sending the close timed out".to_owned())?
        .map_err(|e| format!("sending the close failed: {e}"))?;
    let mut chunk = [0u8; 4096];
    loop {
        // Frames the server sent first (bus messages) are skipped.
        while let Some((opcode, len)) = parse_frame(&buf) {
            if opcode == 0x8 {
                return Ok(());
            }
            buf.drain(..len);
        }
        if buf.len() > MAX_READ {
            return Err("over 64 KiB of frames and no close".to_owned());
        }
        match timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) => return Err("the connection closed without a close frame".to_owned()),
            Ok(Ok(n)) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Ok(Err(e)) => return Err(format!("reading the close failed: {e}")),
            Err(_) => return Err("no close frame before the deadline".to_owned()),
        }
    }
}

/// The opcode and total length of the first complete frame in `buf`.
fn parse_frame(buf: &[u8]) -> Option<(u8, usize)> {
    let first = *buf.first()?;
    let second = *buf.get(1)?;
    let masked = second & 0x80 != 0;
    let (len, mut at): (usize, usize) = match second & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (usize::try_from(u64::from_be_bytes(bytes)).ok()?, 10)
        }
        n => (usize::from(n), 2),
    };
    if masked {
        at += 4;
    }
    let total = at.checked_add(len)?;
    (buf.len() >= total).then_some((first & 0x0f, total))
}

/// Settings of a `websocket-health` gate.
///
/// ```toml
/// path = "/websocket"   # default: the bus's websocket route, upgraded
/// warn_ms = 2000               # default 2000: Warn when the answer took this long or longer
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebsocketHealthSettings {
    /// The websocket route to upgrade (under the target's `realtime_url`, else its
    /// `url`).
    #[serde(default = "default_websocket_path")]
    pub path: String,
    /// A passing answer slower than this (milliseconds) is a `Warn`.
    #[serde(default = "default_probe_warn_ms")]
    pub warn_ms: u64,
}

impl Default for WebsocketHealthSettings {
    fn default() -> Self {
        WebsocketHealthSettings {
            path: default_websocket_path(),
            warn_ms: default_probe_warn_ms(),
        }
    }
}

fn default_websocket_path() -> String {
    "/websocket".to_owned()
}

impl WebsocketHealthSettings {
    /// Checks the values the types let through.
    pub(crate) fn validate(&self, gate: &str) -> Result<()> {
        check_probe(gate, &self.path, self.warn_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_of_rfc_6455() {
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn frames_are_found_only_when_complete() {
        assert_eq!(parse_frame(&[0x88, 0x02, 0x03, 0xe8]), Some((0x8, 4)));
        assert_eq!(parse_frame(&[0x88, 0x02, 0x03]), None);
        assert_eq!(parse_frame(&[0x81, 0x01, b'x', 0x88, 0x00]), Some((0x1, 3)));
        let mut long = vec![0x82, 126, 0x01, 0x00];
        long.extend(std::iter::repeat_n(0u8, 256));
        assert_eq!(parse_frame(&long), Some((0x2, 260)));
        assert_eq!(parse_frame(&[]), None);
    }
}
