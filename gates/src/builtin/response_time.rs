//! The `response-time` gate and its settings.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::common::{budget, chain, human, millis, Connection};
use crate::settings::invalid;
use crate::{Error, Gate, GateContext, Result, Verdict};

/// Measures how fast the target answers: `requests` `GET`s spread round robin over
/// `routes`, `concurrency` in flight at a time, over the gate's connection pool.
///
/// A request counts as an error when it gets HTTP 4xx/5xx, no answer, or could not be
/// sent before the gate's deadline. Latencies are measured from sending to the last byte
/// of the body, over every request sent (a timed-out request counts with the time it
/// was given); percentiles are nearest-rank.
///
/// | outcome | when |
/// |---|---|
/// | `Pass` | p95 below `warn_ms` and no error |
/// | `Warn` | p95 at or above `warn_ms`, or some errors (fewer than `fail_error_percent`) |
/// | `Fail` | p95 at or above `fail_ms`, or errors at or above `fail_error_percent` of the requests |
/// | `Err` | not a single request got an HTTP answer (nothing to measure: `health` and `tcp` report reachability) |
///
/// Values: `requests`, `errors`, `errors_percent`, `avg_ms`, `p50_ms`, `p95_ms`,
/// `p99_ms`, `max_ms`, `concurrency`.
#[derive(Debug, Clone)]
pub struct ResponseTimeGate {
    name: String,
    connection: Arc<Connection>,
    routes: Vec<String>,
    requests: u32,
    concurrency: u32,
    warn: Duration,
    fail: Duration,
    fail_error_percent: f64,
}

impl ResponseTimeGate {
    /// A gate named `name` measuring `connection`'s target.
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        connection: Arc<Connection>,
        settings: &ResponseTimeSettings,
    ) -> Self {
        ResponseTimeGate {
            name: name.into(),
            connection,
            routes: settings.routes.clone(),
            requests: settings.requests,
            concurrency: settings.concurrency.max(1),
            warn: Duration::from_millis(settings.warn_ms),
            fail: Duration::from_millis(settings.fail_ms),
            fail_error_percent: settings.fail_error_percent,
        }
    }
}

/// What one request got.
enum Sample {
    Answered { status: u16, elapsed: Duration },
    Failed { error: String, elapsed: Duration },
    NotSent,
}

async fn one_request(http: &reqwest::Client, url: &str, timeout: Duration) -> Sample {
    let start = Instant::now();
    let result = async {
        let mut response = http.get(url).timeout(timeout).send().await?;
        while response.chunk().await?.is_some() {}
        Ok::<u16, reqwest::Error>(response.status().as_u16())
    }
    .await;
    let elapsed = start.elapsed();
    match result {
        Ok(status) => Sample::Answered { status, elapsed },
        Err(err) => Sample::Failed {
            error: chain(&err),
            elapsed,
        },
    }
}

/// The nearest-rank percentile `p` (0-100) of sorted `values`.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[async_trait]
impl Gate for ResponseTimeGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, cx: &GateContext) -> Result<Verdict> {
        let deadline = Instant::now() + budget(cx, &self.name)?;
        let urls: Arc<Vec<String>> = Arc::new(
            self.routes
                .iter()
                .map(|route| self.connection.endpoint(route))
                .collect(),
        );
        let next = Arc::new(AtomicU32::new(0));
        let total = self.requests;
        // Dropping the set (the runner cancelling the check) aborts every worker.
        let mut workers = JoinSet::new();
        for _ in 0..self.concurrency.min(total) {
            let http = self.connection.http().clone();
            let urls = Arc::clone(&urls);
            let next = Arc::clone(&next);
            workers.spawn(async move {
                let mut samples = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= total {
                        break;
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        samples.push(Sample::NotSent);
                        continue;
                    }
                    let url = &urls[index as usize % urls.len()];
                    samples.push(one_request(&http, url, deadline - now).await);
                }
                samples
            });
        }
        let mut samples = Vec::with_capacity(total as usize);
        while let Some(joined) = workers.join_next().await {
            match joined {
                Ok(mut done) => samples.append(&mut done),
                Err(err) => {
                    return Err(Error::check_with_source(
                        &self.name,
                        "a request worker stopped",
                        err,
                    ))
                }
            }
        }

        let mut latencies = Vec::with_capacity(samples.len());
        let (mut answered, mut errors, mut not_sent) = (0u32, 0u32, 0u32);
        let mut first_error: Option<String> = None;
        for sample in &samples {
            match sample {
                Sample::Answered { status, elapsed } => {
                    answered += 1;
                    latencies.push(*elapsed);
                    if *status >= 400 {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("http {status}"));
                    }
                }
                Sample::Failed { error, elapsed } => {
                    errors += 1;
                    latencies.push(*elapsed);
                    first_error.get_or_insert_with(|| error.clone());
                }
                Sample::NotSent => {
                    errors += 1;
                    not_sent += 1;
                }
            }
        }
        if answered == 0 {
            return Err(Error::check(
                &self.name,
                format!(
                    "none of {total} requests got an answer: {}",
                    first_error.as_deref().unwrap_or("out of time")
                ),
            ));
        }
        latencies.sort_unstable();
        let sum: Duration = latencies.iter().sum();
        let avg = sum / u32::try_from(latencies.len()).unwrap_or(u32::MAX).max(1);
        let p50 = percentile(&latencies, 50.0);
        let p95 = percentile(&latencies, 95.0);
        let p99 = percentile(&latencies, 99.0);
        let max = latencies.last().copied().unwrap_or_default();
        let errors_percent = f64::from(errors) * 100.0 / f64::from(total.max(1));

        let mut summary = format!(
            "{total} requests, {} at a time: p95 {}, p50 {}, avg {}, {errors} error(s)",
            self.concurrency.min(total),
            human(p95),
            human(p50),
            human(avg)
        );
        if let Some(first) = &first_error {
            summary.push_str(&format!(" (first: {first})"));
        }
        if not_sent > 0 {
            summary.push_str(&format!("; {not_sent} not sent before the gate's deadline"));
        }
        let verdict = if errors > 0 && errors_percent >= self.fail_error_percent {
            Verdict::fail(format!(
                "{summary}: {errors_percent:.1}% errors reach fail_error_percent {}",
                self.fail_error_percent
            ))
        } else if p95 >= self.fail {
            Verdict::fail(format!(
                "{summary}: p95 reaches fail_ms {}",
                self.fail.as_millis()
            ))
        } else if p95 >= self.warn {
            Verdict::warn(format!(
                "{summary}: p95 reaches warn_ms {}",
                self.warn.as_millis()
            ))
        } else if errors > 0 {
            Verdict::warn(summary)
        } else {
            Verdict::pass(summary)
        };
        Ok(verdict
            .with_value("requests", f64::from(total))
            .with_value("errors", f64::from(errors))
            .with_value("errors_percent", errors_percent)
            .with_value("avg_ms", millis(avg))
            .with_value("p50_ms", millis(p50))
            .with_value("p95_ms", millis(p95))
            .with_value("p99_ms", millis(p99))
            .with_value("max_ms", millis(max))
            .with_value("concurrency", f64::from(self.concurrency.min(total))))
    }
}

/// Settings of a `response-time` gate: `requests` GET requests spread over `routes`
/// (round robin), `concurrency` at a time; the 95th percentile and the error share
/// decide.
///
/// ```toml
/// routes = ["/web/login", "/web/health"]   # default ["/web/login"]
/// requests = 20                            # default 20
/// concurrency = 4                          # default 4
/// warn_ms = 2000                           # default 2000: Warn when p95 >= this
/// fail_ms = 5000                           # default 5000: Fail when p95 >= this
/// fail_error_percent = 10                  # default 10: Fail when this share of requests
///                                          # erred (any error at all is a Warn)
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseTimeSettings {
    /// Routes to request, relative to the target URL.
    #[serde(default = "default_routes")]
    pub routes: Vec<String>,
    /// Number of requests in total.
    #[serde(default = "default_requests")]
    pub requests: u32,
    /// Requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// p95 (milliseconds) from which the verdict is `Warn`.
    #[serde(default = "default_warn_ms")]
    pub warn_ms: u64,
    /// p95 (milliseconds) from which the verdict is `Fail`.
    #[serde(default = "default_fail_ms")]
    pub fail_ms: u64,
    /// Share of requests (percent) that erred (HTTP 4xx/5xx, no answer) from which the
    /// verdict is `Fail`; 0 fails on any error.
    #[serde(default = "default_fail_error_percent")]
    pub fail_error_percent: f64,
}

impl Default for ResponseTimeSettings {
    fn default() -> Self {
        ResponseTimeSettings {
            routes: default_routes(),
            requests: default_requests(),
            concurrency: default_concurrency(),
            warn_ms: default_warn_ms(),
            fail_ms: default_fail_ms(),
            fail_error_percent: default_fail_error_percent(),
        }
    }
}

impl ResponseTimeSettings {
    /// Checks the values the types let through.
    pub(crate) fn validate(&self, gate: &str) -> Result<()> {
        if self.routes.is_empty() {
            return invalid(gate, "routes", "must list at least one route".into());
        }
        if let Some(route) = self.routes.iter().find(|r| !r.starts_with('/')) {
            return invalid(gate, "routes", format!("`{route}` must start with `/`"));
        }
        if self.requests == 0 {
            return invalid(gate, "requests", "must be at least 1".into());
        }
        if self.concurrency == 0 {
            return invalid(gate, "concurrency", "must be at least 1".into());
        }
        if self.warn_ms > self.fail_ms {
            return invalid(
                gate,
                "warn_ms",
                format!("{} is above fail_ms ({})", self.warn_ms, self.fail_ms),
            );
        }
        if !(self.fail_error_percent >= 0.0 && self.fail_error_percent <= 100.0) {
            return invalid(
                gate,
                "fail_error_percent",
                format!("{} is not in [0, 100]", self.fail_error_percent),
            );
        }
        Ok(())
    }
}

fn default_fail_error_percent() -> f64 {
    10.0
}

fn default_routes() -> Vec<String> {
    vec!["/web/login".to_owned()]
}

fn default_requests() -> u32 {
    20
}

fn default_concurrency() -> u32 {
    4
}

fn default_warn_ms() -> u64 {
    2000
}

fn default_fail_ms() -> u64 {
    5000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let ms = |n: u64| Duration::from_millis(n);
        let values: Vec<Duration> = (1..=20).map(ms).collect();
        assert_eq!(percentile(&values, 50.0), ms(10));
        assert_eq!(percentile(&values, 95.0), ms(19));
        assert_eq!(percentile(&values, 99.0), ms(20));
        assert_eq!(percentile(&[ms(7)], 95.0), ms(7));
        assert_eq!(percentile(&[], 95.0), Duration::ZERO);
    }
}
