//! HTTP exchanges: one shared `reqwest::Client` (connection pool), a timeout
//! over the whole exchange, a body size limit enforced while streaming, and
//! retries of transient failures for the calls that allow them.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::Method;

use crate::decode;
use crate::error::{Error, Result};
use crate::retry::RetryPolicy;

/// One HTTP request to the server, relative to the base URL.
pub(crate) struct HttpRequest<'a> {
    pub(crate) method: Method,
    /// Path (and query) starting with `/`.
    pub(crate) path: &'a str,
    /// Extra headers (session cookie, bearer token, database).
    pub(crate) headers: HeaderMap,
    /// A JSON body, for `POST`.
    pub(crate) body: Option<&'a [u8]>,
}

/// A complete answer, body read up to the size limit.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

pub(crate) struct Transport {
    http: reqwest::Client,
    /// The base URL without a trailing slash.
    base: String,
    max_response_bytes: u64,
}

impl Transport {
    pub(crate) fn new(http: reqwest::Client, base: String, max_response_bytes: u64) -> Self {
        Self {
            http,
            base,
            max_response_bytes,
        }
    }

    /// Sends the request, retrying transient failures with `retry` when given
    /// (the caller decides whether the call is safe to repeat).
    ///
    /// Returns the last answer whatever its status: deciding what a status means
    /// is the decoder's job.
    pub(crate) async fn execute(
        &self,
        request: &HttpRequest<'_>,
        timeout: Duration,
        retry: Option<&RetryPolicy>,
    ) -> Result<RawResponse> {
        let mut retries = 0u32;
        loop {
            let result = self.send_once(request, timeout).await;
            let transient = match &result {
                Ok(response) => decode::is_transient_status(response.status, &response.headers),
                Err(e) => matches!(e, Error::Connect { .. } | Error::Transport { .. }),
            };
            match retry {
                Some(policy) if transient && retries < policy.max_retries => {
                    let delay = policy.delay(retries);
                    tracing::debug!(
                        path = request.path,
                        retry = retries + 1,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        failure = match &result {
                            Ok(response) => format!("http {}", response.status),
                            Err(e) => e.kind().to_owned(),
                        },
                        "retrying a transient failure"
                    );
                    tokio::time::sleep(delay).await;
                    retries += 1;
                }
                _ => return result,
            }
        }
    }

    async fn send_once(&self, request: &HttpRequest<'_>, timeout: Duration) -> Result<RawResponse> {
        let url = format!("{}{}", self.base, request.path);
        let mut builder = self
            .http
            .request(request.method.clone(), &url)
            .headers(request.headers.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(body) = request.body {
            builder = builder
                .header(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/json; charset=utf-8"),
                )
                .body(body.to_vec());
        }
        let exchange = async {
            let response = builder
                .send()
                .await
                .map_err(|e| map_reqwest(e, &url, timeout))?;
            self.read(response, &url, timeout).await
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout { timeout }),
        }
    }

    /// Reads the body chunk by chunk, stopping as soon as it passes the limit.
    async fn read(
        &self,
        mut response: reqwest::Response,
        url: &str,
        timeout: Duration,
    ) -> Result<RawResponse> {
        let limit = self.max_response_bytes;
        let too_large = || Error::TooLarge { limit };
        let announced = response.content_length();
        if announced.is_some_and(|len| len > limit) {
            return Err(too_large());
        }
        let status = response.status().as_u16();
        let headers = std::mem::take(response.headers_mut());
        let capacity = announced.unwrap_or(8 * 1024).min(limit);
        let mut body = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| map_reqwest(e, url, timeout))?
        {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }
}

fn map_reqwest(error: reqwest::Error, url: &str, timeout: Duration) -> Error {
    if error.is_connect() {
        Error::Connect {
            url: url.to_owned(),
            source: error,
        }
    } else if error.is_timeout() {
        Error::Timeout { timeout }
    } else {
        Error::Transport { source: error }
    }
}
