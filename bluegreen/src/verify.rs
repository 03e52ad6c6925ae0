//! Checking through the proxy that new requests reach the intended release.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The response header carrying the release label of the slot that answered.
pub const RELEASE_HEADER: &str = "X-Odoo-Release";

/// The label [`verify_release`] and [`sample_releases`] give a response that carries no
/// [`RELEASE_HEADER`].
pub const NO_RELEASE: &str = "<none>";

/// How [`verify_release`] probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// The path requested (`/web/health`).
    pub path: String,
    /// How many responses in a row must carry the release.
    pub consecutive: u32,
    /// Give up after this long.
    pub timeout: Duration,
    /// Pause between requests (zero: back to back).
    pub interval: Duration,
    /// Timeout of each request.
    pub request_timeout: Duration,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            path: "/web/health".to_owned(),
            consecutive: 20,
            timeout: Duration::from_secs(10),
            interval: Duration::from_millis(2),
            request_timeout: Duration::from_secs(2),
        }
    }
}

/// What [`verify_release`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// From the call until the first of the consecutive matching responses was sent:
    /// how long after the switch returned the proxy still routed elsewhere.
    pub latency: Duration,
    /// Requests sent in all.
    pub requests: u64,
    /// Responses that did not carry the release (other release, no header, errors).
    pub mismatched: u64,
}

/// Sends requests to `base_url` + `options.path` (through the proxy) on one keep-alive
/// client until `options.consecutive` responses in a row carry
/// `X-Odoo-Release: expected`.
///
/// # Errors
/// [`Error::VerifyTimeout`] with every label seen when that does not happen within
/// `options.timeout`; [`Error::HttpClient`].
pub async fn verify_release(
    base_url: &str,
    expected: &str,
    options: &VerifyOptions,
) -> Result<VerifyReport> {
    let client = reqwest::Client::builder()
        .timeout(options.request_timeout)
        .no_proxy()
        .build()
        .map_err(|e| Error::HttpClient { cause: Box::new(e) })?;
    let url = format!("{}{}", base_url.trim_end_matches('/'), options.path);
    let started = Instant::now();
    let mut streak_start: Option<Duration> = None;
    let mut streak: u32 = 0;
    let mut requests: u64 = 0;
    let mut mismatched: u64 = 0;
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    // Bounded by `options.timeout`.
    loop {
        let sent_at = started.elapsed();
        requests += 1;
        let label = match client.get(&url).send().await {
            Ok(response) => response
                .headers()
                .get(RELEASE_HEADER)
                .and_then(|v| v.to_str().ok())
                .map_or_else(|| NO_RELEASE.to_owned(), str::to_owned),
            Err(e) => format!("<error: {}>", short_error(&e)),
        };
        if label == expected {
            if streak == 0 {
                streak_start = Some(sent_at);
            }
            streak += 1;
            if streak >= options.consecutive.max(1) {
                return Ok(VerifyReport {
                    latency: streak_start.unwrap_or(sent_at),
                    requests,
                    mismatched,
                });
            }
        } else {
            streak = 0;
            mismatched += 1;
        }
        *seen.entry(label).or_insert(0) += 1;
        if started.elapsed() >= options.timeout {
            return Err(Error::VerifyTimeout {
                url,
                expected: expected.to_owned(),
                needed: options.consecutive,
                waited: started.elapsed(),
                seen: seen.into_iter().collect(),
            });
        }
        if !options.interval.is_zero() {
            tokio::time::sleep(options.interval).await;
        }
    }
}

/// Sends `count` requests to `base_url` + `path` (through the proxy) on one keep-alive
/// client and counts the release labels that answered (`<none>` for a response without
/// the header, `<error: ...>` for failures), most frequent first. What `status` shows as
/// "through the proxy".
///
/// # Errors
/// [`Error::HttpClient`] when no client can be built.
pub async fn sample_releases(
    base_url: &str,
    path: &str,
    count: u32,
    request_timeout: Duration,
) -> Result<Vec<(String, u64)>> {
    let client = reqwest::Client::builder()
        .timeout(request_timeout)
        .no_proxy()
        .build()
        .map_err(|e| Error::HttpClient { cause: Box::new(e) })?;
    let url = format!("{}{}", base_url.trim_end_matches('/'), path);
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for _ in 0..count {
        let label = match client.get(&url).send().await {
            Ok(response) if response.status().is_success() => response
                .headers()
                .get(RELEASE_HEADER)
                .and_then(|v| v.to_str().ok())
                .map_or_else(|| NO_RELEASE.to_owned(), str::to_owned),
            Ok(response) => format!("<error: HTTP {}>", response.status().as_u16()),
            Err(e) => format!("<error: {}>", short_error(&e)),
        };
        *seen.entry(label).or_insert(0) += 1;
    }
    let mut seen: Vec<(String, u64)> = seen.into_iter().collect();
    seen.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(seen)
}

fn short_error(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_status() {
        "status"
    } else {
        "transport"
    }
}
