//! Checking through the proxy that new requests reach the intended release.
//!
//! A response says who answered it in one of two headers: [`RELEASE_HEADER`], sent by
//! an image that knows its release (the fake's `--release`, an image of the project's),
//! or [`SLOT_HEADER`], set by the proxy itself in the configurations this crate
//! generates, so that a stock Odoo image can be verified too. The release header wins
//! when both are present (it names the code that ran, not only the container).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use crate::error::{Error, Result};
use crate::slot::Slot;

/// The response header carrying the release label of the slot that answered.
pub const RELEASE_HEADER: &str = "X-Odoo-Release";

/// The response header the generated proxy configurations set to the slot that
/// answered (`blue` or `green`).
pub const SLOT_HEADER: &str = "X-Deploy-Slot";

/// The label [`verify_release`] and [`sample_releases`] give a response that carries
/// neither [`RELEASE_HEADER`] nor [`SLOT_HEADER`].
pub const NO_RELEASE: &str = "<none>";

/// The label of a response that carries only the proxy's [`SLOT_HEADER`]: `slot green`.
#[must_use]
pub fn slot_label(slot: Slot) -> String {
    format!("slot {slot}")
}

/// Who answered a response, as [`verify_release`] and [`sample_releases`] label it: the
/// [`RELEASE_HEADER`]'s value, else [`slot_label`] of the [`SLOT_HEADER`], else
/// [`NO_RELEASE`]; `<error: HTTP 502>` for a server error (the proxy may mark its own
/// error pages with the slot it tried).
#[must_use]
pub fn answer_label(status: StatusCode, headers: &HeaderMap) -> String {
    if status.is_server_error() {
        return format!("<error: HTTP {}>", status.as_u16());
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Some(release) = header(RELEASE_HEADER) {
        return release.to_owned();
    }
    match header(SLOT_HEADER).and_then(|v| v.parse::<Slot>().ok()) {
        Some(slot) => slot_label(slot),
        None => NO_RELEASE.to_owned(),
    }
}

/// The answer a verification waits for: the release, or (from an image that does not
/// send its release) the slot it runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The release label (`X-Odoo-Release`).
    pub release: String,
    /// The slot the release runs in (`X-Deploy-Slot`); `None`: only the release header
    /// counts.
    pub slot: Option<Slot>,
}

impl Expected {
    /// Expects `release` in `slot`: either header will do.
    #[must_use]
    pub fn new(release: &str, slot: Slot) -> Self {
        Self {
            release: release.to_owned(),
            slot: Some(slot),
        }
    }

    /// Expects the release header `release` itself.
    #[must_use]
    pub fn release(release: &str) -> Self {
        Self {
            release: release.to_owned(),
            slot: None,
        }
    }

    /// Whether a response labelled `label` (by [`answer_label`]) came from it.
    #[must_use]
    pub fn matches(&self, label: &str) -> bool {
        label == self.release || self.slot.is_some_and(|slot| label == slot_label(slot))
    }
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.slot {
            Some(slot) => write!(f, "{} in slot {slot}", self.release),
            None => f.write_str(&self.release),
        }
    }
}

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
/// client until `options.consecutive` responses in a row come from `expected`: they
/// carry `X-Odoo-Release: <release>`, or no release header and the proxy's
/// `X-Deploy-Slot: <slot>`.
///
/// # Errors
/// [`Error::VerifyTimeout`] with every label seen when that does not happen within
/// `options.timeout`; [`Error::HttpClient`].
pub async fn verify_release(
    base_url: &str,
    expected: &Expected,
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
            Ok(response) => answer_label(response.status(), response.headers()),
            Err(e) => format!("<error: {}>", short_error(&e)),
        };
        if expected.matches(&label) {
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
                expected: expected.to_string(),
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
/// client and counts who answered (labels of [`answer_label`]: the release, `slot
/// green`, `<none>`, `<error: ...>`), most frequent first. What `status` shows as
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
            Ok(response) if response.status().is_success() => {
                answer_label(response.status(), response.headers())
            }
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

/// Whether responses through the proxy say who answered, as the switch's verification
/// needs ([`judge_marking`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marking {
    /// The proxy marks responses with the slot: every image can be verified.
    Slot,
    /// Only the image marks them (its `X-Odoo-Release`): verification holds while the
    /// new release's image sends it too.
    ReleaseOnly,
    /// Neither marks them: a verification after the switch cannot pass.
    Unmarked,
    /// Nothing answered and no configuration could be read: cannot tell yet (why).
    Unknown(String),
}

/// Judges a sample of [`sample_releases`] through the proxy, and what the proxy's own
/// configuration says (`configured`: `Some(true)` when it sets [`SLOT_HEADER`], `None`
/// when it could not be read). An answer from a slot is what counts; the configuration
/// decides only when nothing answered (before the first deploy).
#[must_use]
pub fn judge_marking(sample: &[(String, u64)], configured: Option<bool>) -> Marking {
    let answered: Vec<&str> = sample
        .iter()
        .map(|(label, _)| label.as_str())
        .filter(|label| !label.starts_with("<error"))
        .collect();
    if answered.iter().any(|l| l.starts_with("slot ")) {
        Marking::Slot
    } else if answered.iter().any(|l| *l != NO_RELEASE) {
        Marking::ReleaseOnly
    } else if !answered.is_empty() {
        Marking::Unmarked
    } else {
        match configured {
            Some(true) => Marking::Slot,
            Some(false) => Marking::Unmarked,
            None => Marking::Unknown(
                "no slot answered through the proxy and its configuration file is not known"
                    .to_owned(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn sample(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
        pairs.iter().map(|(l, n)| ((*l).to_owned(), *n)).collect()
    }

    #[test]
    fn the_release_header_wins_and_the_slot_header_stands_in_for_it() {
        let mut headers = HeaderMap::new();
        assert_eq!(answer_label(StatusCode::OK, &headers), NO_RELEASE);
        headers.insert(SLOT_HEADER, HeaderValue::from_static("green"));
        assert_eq!(answer_label(StatusCode::OK, &headers), "slot green");
        headers.insert(RELEASE_HEADER, HeaderValue::from_static("r2"));
        assert_eq!(answer_label(StatusCode::OK, &headers), "r2");
        assert_eq!(
            answer_label(StatusCode::BAD_GATEWAY, &headers),
            "<error: HTTP 502>",
            "nginx marks its own 502 page with the slot it tried"
        );
        let mut odd = HeaderMap::new();
        odd.insert(SLOT_HEADER, HeaderValue::from_static("none"));
        assert_eq!(answer_label(StatusCode::OK, &odd), NO_RELEASE);

        let expected = Expected::new("r2", Slot::Green);
        assert!(expected.matches("r2"));
        assert!(expected.matches("slot green"));
        assert!(!expected.matches("slot blue"));
        assert!(!expected.matches("r1"));
        assert!(!expected.matches(NO_RELEASE));
        assert!(!Expected::release("r2").matches("slot green"));
    }

    #[test]
    fn marking_is_judged_from_answers_first_then_the_configuration() {
        assert_eq!(
            judge_marking(&sample(&[("slot blue", 3)]), Some(false)),
            Marking::Slot
        );
        assert_eq!(
            judge_marking(&sample(&[(NO_RELEASE, 3)]), Some(true)),
            Marking::Unmarked,
            "what answered counts more than what a file seems to say"
        );
        assert_eq!(judge_marking(&[], Some(true)), Marking::Slot);
        assert_eq!(
            judge_marking(&sample(&[("r1", 3)]), None),
            Marking::ReleaseOnly
        );
        assert_eq!(
            judge_marking(&sample(&[(NO_RELEASE, 3)]), None),
            Marking::Unmarked
        );
        assert_eq!(
            judge_marking(&sample(&[("<error: HTTP 503>", 3)]), Some(false)),
            Marking::Unmarked
        );
        assert!(matches!(
            judge_marking(&sample(&[("<error: connect>", 3)]), None),
            Marking::Unknown(_)
        ));
    }
}
