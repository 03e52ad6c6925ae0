//! Posting a notice over HTTP, and what the service's answer means for a retry.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use crate::{payload, ChannelKind, Notice};

/// What one attempt got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 2xx.
    Accepted,
    /// 429, with its `Retry-After` when it sent one (in seconds).
    RateLimited {
        /// How long the service asks to wait.
        retry_after: Option<Duration>,
    },
    /// Worth another attempt: 5xx, 408, a timeout, a connection error.
    Transient {
        /// What failed (never the URL).
        reason: String,
    },
    /// Not worth another attempt: the other 4xx.
    Permanent {
        /// The status.
        status: u16,
        /// The start of the body.
        answer: String,
    },
}

/// Where notices go: one attempt per call.
#[async_trait]
pub trait Channel: Send + Sync {
    /// Posts `notice` once.
    async fn send(&self, notice: &Notice) -> Answer;
}

/// A webhook over HTTP(S): the payload of its [`ChannelKind`], POSTed as JSON.
pub struct HttpChannel {
    client: reqwest::Client,
    kind: ChannelKind,
    url: SecretString,
}

impl std::fmt::Debug for HttpChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpChannel")
            .field("kind", &self.kind)
            .field("url", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

impl HttpChannel {
    /// A channel posting to `url`; `None` when it is not an http(s) URL.
    #[must_use]
    pub fn new(client: reqwest::Client, kind: ChannelKind, url: &SecretString) -> Option<Self> {
        let parsed = url::Url::parse(url.expose_secret()).ok()?;
        matches!(parsed.scheme(), "http" | "https").then(|| Self {
            client,
            kind,
            url: url.clone(),
        })
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare for webhooks: one second then).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    Some(
        value
            .trim()
            .parse::<u64>()
            .map_or(Duration::from_secs(1), Duration::from_secs),
    )
}

#[async_trait]
impl Channel for HttpChannel {
    async fn send(&self, notice: &Notice) -> Answer {
        let body = payload::render(self.kind, notice);
        let response = self
            .client
            .post(self.url.expose_secret())
            .json(&body)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(err) => {
                let kind = if err.is_timeout() {
                    "timed out"
                } else if err.is_connect() {
                    "could not connect"
                } else {
                    "request failed"
                };
                return Answer::Transient {
                    reason: format!("{kind}: {}", err.without_url()),
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Answer::Accepted;
        }
        if status.as_u16() == 429 {
            return Answer::RateLimited {
                retry_after: retry_after(response.headers()),
            };
        }
        let text = response.text().await.unwrap_or_default();
        let answer: String = text.trim().chars().take(200).collect();
        if status.is_server_error() || status.as_u16() == 408 {
            Answer::Transient {
                reason: format!("HTTP {} {answer:?}", status.as_u16()),
            }
        } else {
            Answer::Permanent {
                status: status.as_u16(),
                answer,
            }
        }
    }
}
