//! Telling the team what a deploy did: Slack (incoming webhook), Microsoft Teams
//! (Workflows, an Adaptive Card) and a generic JSON webhook (Alertmanager's webhook
//! payload, version 4), for deploys started, succeeded, refused, failed, rolled back or
//! inconclusive, alerts and backup failures.
//!
//! Delivery is best effort and bounded: a notification never blocks or fails the work it
//! reports. [`Notifier::post`] returns at once; each channel gets a bounded number of
//! attempts within a time budget ([`Policy`]): `429` waits what `Retry-After` says when
//! the budget allows it, `5xx` and network errors retry with a backoff, other `4xx`
//! (Slack's `404 no_service` for a removed webhook, `403`, `410`) are permanent and not
//! retried. What happened to each delivery is a [`Delivery`], for the operation's report
//! to carry as a warning. Webhook URLs are secrets: they are never logged or reported.
//!
//! ```no_run
//! use deploy_core::SecretRef;
//! use deploy_notify::{ChannelSpec, Notice, NoticeKind, Notifier, Policy};
//!
//! # async fn run() -> Result<(), deploy_notify::Error> {
//! let specs = vec![ChannelSpec::slack("team", SecretRef::env("SLACK_WEBHOOK_URL"))];
//! let notifier = Notifier::from_specs(&specs, Policy::default(), &deploy_core::NullSink)?;
//! let notice = Notice::new(NoticeKind::Succeeded, "shop", "release 17.0-42 serves")
//!     .with_releases(Some("17.0-41"), Some("17.0-42"));
//! let pending = notifier.post(&notice);
//! // ... the deploy goes on; at its end:
//! for delivery in pending.wait(std::time::Duration::from_secs(5)).await {
//!     if !delivery.delivered() {
//!         eprintln!("notification not delivered: {}", delivery.describe());
//!     }
//! }
//! # Ok(()) }
//! ```

mod channel;
mod payload;
mod stage;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use deploy_core::{EventSink, SecretRef};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use channel::{Answer, Channel, HttpChannel};
pub use stage::NotifyStages;

/// Why a notifier could not be built (a delivery never errors: see [`Delivery`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A channel's URL secret did not resolve.
    #[error("notify channel {name}: {source}")]
    Secret {
        /// The channel.
        name: String,
        /// Why (never the value).
        #[source]
        source: deploy_core::Error,
    },
    /// A channel's URL is not an http(s) URL (the value is not repeated).
    #[error("notify channel {name}: the URL in {source_name} is not an http or https URL")]
    Url {
        /// The channel.
        name: String,
        /// Where the URL comes from (`env SLACK_WEBHOOK_URL`).
        source_name: String,
    },
    /// The HTTP client could not be built.
    #[error("notify: HTTP client: {0}")]
    Client(String),
}

/// What a notice reports.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A deploy began.
    Started,
    /// A deploy ended with the new release serving.
    Succeeded,
    /// A deploy was refused (a gate, a stage, a failed update): the old release serves.
    Refused,
    /// A deploy failed (an error): look at the report.
    Failed,
    /// Traffic went back to the previous release.
    RolledBack,
    /// A watch window ended without enough data to decide.
    Inconclusive,
    /// A watch rule fired.
    Alert,
    /// A backup failed.
    BackupFailed,
}

impl NoticeKind {
    /// Every kind.
    pub const ALL: [NoticeKind; 8] = [
        Self::Started,
        Self::Succeeded,
        Self::Refused,
        Self::Failed,
        Self::RolledBack,
        Self::Inconclusive,
        Self::Alert,
        Self::BackupFailed,
    ];

    /// The kind's name (`rolled_back`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Succeeded => "succeeded",
            Self::Refused => "refused",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
            Self::Inconclusive => "inconclusive",
            Self::Alert => "alert",
            Self::BackupFailed => "backup_failed",
        }
    }

    /// How much it matters: `info`, `warning` or `critical`.
    #[must_use]
    pub fn severity(self) -> &'static str {
        match self {
            Self::Started | Self::Succeeded => "info",
            Self::Refused | Self::Inconclusive | Self::Alert => "warning",
            Self::Failed | Self::RolledBack | Self::BackupFailed => "critical",
        }
    }

    /// A title for people: `Deploy rolled back`.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Self::Started => "Deploy started",
            Self::Succeeded => "Deploy succeeded",
            Self::Refused => "Deploy refused",
            Self::Failed => "Deploy failed",
            Self::RolledBack => "Deploy rolled back",
            Self::Inconclusive => "Deploy inconclusive",
            Self::Alert => "Alert",
            Self::BackupFailed => "Backup failed",
        }
    }
}

impl std::str::FromStr for NoticeKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown notice `{text}`: one of {}",
                    Self::ALL.map(NoticeKind::as_str).join(", ")
                )
            })
    }
}

/// One thing to tell the team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Notice {
    /// What happened.
    pub kind: NoticeKind,
    /// The stack.
    pub stack: String,
    /// One line: what happened and what to do.
    pub summary: String,
    /// The release that served before.
    pub from_release: Option<String>,
    /// The release the operation brought (or tried to).
    pub to_release: Option<String>,
    /// Who ran it.
    pub operator: Option<String>,
    /// Further facts, in order (`("duration", "42 s")`).
    pub facts: Vec<(String, String)>,
    /// When.
    pub at: DateTime<Utc>,
}

impl Notice {
    /// A notice of `kind` about `stack`, now.
    #[must_use]
    pub fn new(kind: NoticeKind, stack: impl Into<String>, summary: impl Into<String>) -> Self {
        Self {
            kind,
            stack: stack.into(),
            summary: summary.into(),
            from_release: None,
            to_release: None,
            operator: None,
            facts: Vec::new(),
            at: Utc::now(),
        }
    }

    /// With the releases before and after.
    #[must_use]
    pub fn with_releases(mut self, from: Option<&str>, to: Option<&str>) -> Self {
        self.from_release = from.map(str::to_owned);
        self.to_release = to.map(str::to_owned);
        self
    }

    /// With the operator.
    #[must_use]
    pub fn with_operator(mut self, operator: impl Into<String>) -> Self {
        self.operator = Some(operator.into());
        self
    }

    /// With one more fact.
    #[must_use]
    pub fn with_fact(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.facts.push((name.into(), value.into()));
        self
    }

    /// The facts a message shows: stack, releases, operator, then the others.
    #[must_use]
    pub fn all_facts(&self) -> Vec<(String, String)> {
        let mut facts = vec![("Stack".to_owned(), self.stack.clone())];
        if let Some(from) = &self.from_release {
            facts.push(("From".to_owned(), from.clone()));
        }
        if let Some(to) = &self.to_release {
            facts.push(("To".to_owned(), to.clone()));
        }
        if let Some(operator) = &self.operator {
            facts.push(("Operator".to_owned(), operator.clone()));
        }
        facts.extend(self.facts.iter().cloned());
        facts
    }
}

/// Which service a channel posts to, and so the payload it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// Slack's incoming webhook: `{"text": ..., "blocks": [...]}`.
    Slack,
    /// A Microsoft Teams Workflows webhook: a message with an Adaptive Card.
    Teams,
    /// Any JSON receiver: Alertmanager's webhook payload (version 4).
    Webhook,
}

impl ChannelKind {
    /// `slack`, `teams` or `webhook`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Teams => "teams",
            Self::Webhook => "webhook",
        }
    }
}

/// A channel as a stack file declares it (`[[notify]]`).
///
/// ```toml
/// [[notify]]
/// name = "team"                             # how reports name it
/// kind = "slack"                            # slack | teams | webhook
/// url = { env = "SLACK_WEBHOOK_URL" }       # a secret: env or file
/// events = ["started", "succeeded", "refused", "failed", "rolled_back"]   # default: all
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    /// How reports name the channel.
    pub name: String,
    /// The service.
    pub kind: ChannelKind,
    /// The webhook URL (a secret).
    pub url: SecretRef,
    /// The notices it gets (default: every kind).
    #[serde(default)]
    pub events: Option<Vec<NoticeKind>>,
}

impl ChannelSpec {
    /// A Slack channel for every kind of notice.
    #[must_use]
    pub fn slack(name: impl Into<String>, url: SecretRef) -> Self {
        Self::new(name, ChannelKind::Slack, url)
    }

    /// A channel of `kind` for every kind of notice.
    #[must_use]
    pub fn new(name: impl Into<String>, kind: ChannelKind, url: SecretRef) -> Self {
        Self {
            name: name.into(),
            kind,
            url,
            events: None,
        }
    }

    /// Whether it gets notices of `kind`.
    #[must_use]
    pub fn wants(&self, kind: NoticeKind) -> bool {
        self.events
            .as_ref()
            .is_none_or(|events| events.contains(&kind))
    }
}

/// How hard a delivery tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Attempts at most (default 3).
    pub attempts: u32,
    /// Each attempt's timeout (default 5 s).
    pub attempt_timeout: Duration,
    /// The whole delivery's budget, waits included (default 15 s): a `Retry-After`
    /// beyond it gives up at once.
    pub budget: Duration,
    /// The first backoff after a `5xx` or a network error, doubled each time
    /// (default 500 ms).
    pub backoff: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            attempts: 3,
            attempt_timeout: Duration::from_secs(5),
            budget: Duration::from_secs(15),
            backoff: Duration::from_millis(500),
        }
    }
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// The service took it (2xx).
    Delivered,
    /// The service refused it for good (`404 no_service`, `403`, `410`, `400`): not
    /// retried; the channel needs fixing.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The start of the service's answer (Slack says why: `no_service`).
        answer: String,
    },
    /// Every attempt allowed failed, or the budget ran out.
    GaveUp {
        /// The last failure.
        reason: String,
    },
    /// Still under way when the operation stopped waiting for it.
    Pending,
}

/// What happened to one notice on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Delivery {
    /// The channel's name.
    pub channel: String,
    /// Its service.
    pub kind: ChannelKind,
    /// The notice.
    pub notice: NoticeKind,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Attempts made.
    pub attempts: u32,
    /// How long it took, waits included.
    pub elapsed_ms: u64,
}

impl Delivery {
    /// Whether the service took it.
    #[must_use]
    pub fn delivered(&self) -> bool {
        self.outcome == Outcome::Delivered
    }

    /// One line for a report's warnings (no URL).
    #[must_use]
    pub fn describe(&self) -> String {
        let what = format!(
            "{} notice `{}` to {} ({})",
            match self.outcome {
                Outcome::Delivered => "delivered",
                _ => "not delivered:",
            },
            self.notice.as_str(),
            self.channel,
            self.kind.as_str()
        );
        match &self.outcome {
            Outcome::Delivered => what,
            Outcome::Rejected { status, answer } => format!(
                "{what}: refused with HTTP {status} {answer:?} (not retried: fix the channel)"
            ),
            Outcome::GaveUp { reason } => {
                format!(
                    "{what}: gave up after {} attempt(s): {reason}",
                    self.attempts
                )
            }
            Outcome::Pending => format!(
                "{what}: still trying after {} ms, not waited for",
                self.elapsed_ms
            ),
        }
    }
}

/// Sends notices to the channels that want them.
#[derive(Clone)]
pub struct Notifier {
    channels: Arc<Vec<(ChannelSpec, Arc<dyn Channel>)>>,
    policy: Policy,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field(
                "channels",
                &self
                    .channels
                    .iter()
                    .map(|(spec, _)| format!("{} ({})", spec.name, spec.kind.as_str()))
                    .collect::<Vec<_>>(),
            )
            .field("policy", &self.policy)
            .finish()
    }
}

impl Notifier {
    /// A notifier over channels already built (tests, other transports).
    #[must_use]
    pub fn new(channels: Vec<(ChannelSpec, Arc<dyn Channel>)>, policy: Policy) -> Self {
        Self {
            channels: Arc::new(channels),
            policy,
        }
    }

    /// Builds the channels of `specs`, resolving their URLs.
    ///
    /// # Errors
    /// A URL secret that does not resolve or is not an http(s) URL; the HTTP client
    /// cannot be built.
    pub fn from_specs(
        specs: &[ChannelSpec],
        policy: Policy,
        events: &dyn EventSink,
    ) -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .timeout(policy.attempt_timeout)
            .connect_timeout(policy.attempt_timeout)
            .user_agent(concat!("odoo-deploy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Client(e.to_string()))?;
        let mut channels: Vec<(ChannelSpec, Arc<dyn Channel>)> = Vec::new();
        for spec in specs {
            let url = spec.url.resolve(events).map_err(|source| Error::Secret {
                name: spec.name.clone(),
                source,
            })?;
            let channel =
                HttpChannel::new(client.clone(), spec.kind, &url).ok_or_else(|| Error::Url {
                    name: spec.name.clone(),
                    source_name: spec.url.describe(),
                })?;
            channels.push((spec.clone(), Arc::new(channel)));
        }
        Ok(Self::new(channels, policy))
    }

    /// Whether no channel is configured.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// Starts delivering `notice` to every channel that wants it, each in its own task,
    /// and returns at once.
    #[must_use]
    pub fn post(&self, notice: &Notice) -> Pending {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (spec, channel) in self.channels.iter() {
            if !spec.wants(notice.kind) {
                continue;
            }
            let channel = channel.clone();
            let (name, kind, notice_kind) = (spec.name.clone(), spec.kind, notice.kind);
            let spec = spec.clone();
            let notice = notice.clone();
            let policy = self.policy;
            let task =
                tokio::spawn(async move { deliver(&*channel, &spec, &notice, policy).await });
            tasks.push((name, kind, notice_kind, task));
        }
        Pending { tasks, started }
    }

    /// Delivers `notice` and waits for every channel (at most the policy's budget).
    pub async fn send(&self, notice: &Notice) -> Vec<Delivery> {
        self.post(notice)
            .wait(self.policy.budget + Duration::from_secs(1))
            .await
    }
}

/// Deliveries under way.
#[derive(Debug)]
pub struct Pending {
    tasks: Vec<(
        String,
        ChannelKind,
        NoticeKind,
        tokio::task::JoinHandle<Delivery>,
    )>,
    started: Instant,
}

impl Pending {
    /// Waits for the deliveries, at most `grace` in all; those still running are
    /// reported [`Outcome::Pending`] and go on in the background.
    pub async fn wait(self, grace: Duration) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + grace;
        let mut done = Vec::new();
        for (channel, kind, notice, task) in self.tasks {
            let elapsed = || u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(delivery)) => done.push(delivery),
                Ok(Err(join)) => done.push(Delivery {
                    channel,
                    kind,
                    notice,
                    outcome: Outcome::GaveUp {
                        reason: format!("the delivery task ended: {join}"),
                    },
                    attempts: 0,
                    elapsed_ms: elapsed(),
                }),
                Err(_) => done.push(Delivery {
                    channel,
                    kind,
                    notice,
                    outcome: Outcome::Pending,
                    attempts: 0,
                    elapsed_ms: elapsed(),
                }),
            }
        }
        done
    }
}

/// One notice to one channel under `policy`.
async fn deliver(
    channel: &dyn Channel,
    spec: &ChannelSpec,
    notice: &Notice,
    policy: Policy,
) -> Delivery {
    let started = tokio::time::Instant::now();
    let deadline = started + policy.budget;
    let mut attempts = 0;
    let mut backoff = policy.backoff;
    let outcome = loop {
        attempts += 1;
        let attempt = tokio::time::timeout_at(deadline, channel.send(notice)).await;
        let wait = match attempt {
            Err(_) => {
                break Outcome::GaveUp {
                    reason: format!("no answer within the {} s budget", policy.budget.as_secs()),
                }
            }
            Ok(channel::Answer::Accepted) => break Outcome::Delivered,
            Ok(channel::Answer::Permanent { status, answer }) => {
                break Outcome::Rejected { status, answer }
            }
            Ok(channel::Answer::RateLimited { retry_after }) => {
                let wait = retry_after.unwrap_or(Duration::from_secs(1));
                if tokio::time::Instant::now() + wait >= deadline {
                    break Outcome::GaveUp {
                        reason: format!(
                            "rate limited (HTTP 429), Retry-After {} s is past the {} s budget",
                            wait.as_secs(),
                            policy.budget.as_secs()
                        ),
                    };
                }
                (wait, "rate limited (HTTP 429)".to_owned())
            }
            Ok(channel::Answer::Transient { reason }) => {
                let wait = backoff;
                backoff *= 2;
                (wait, reason)
            }
        };
        let (wait, reason) = wait;
        if attempts >= policy.attempts {
            break Outcome::GaveUp { reason };
        }
        if tokio::time::Instant::now() + wait >= deadline {
            break Outcome::GaveUp {
                reason: format!(
                    "{reason}; no time left in the {} s budget",
                    policy.budget.as_secs()
                ),
            };
        }
        tracing::debug!(channel = %spec.name, %reason, wait_ms = wait.as_millis() as u64, "notification retry");
        tokio::time::sleep(wait).await;
    };
    if outcome != Outcome::Delivered {
        tracing::warn!(channel = %spec.name, notice = notice.kind.as_str(), ?outcome, "notification not delivered");
    }
    Delivery {
        channel: spec.name.clone(),
        kind: spec.kind,
        notice: notice.kind,
        outcome,
        attempts,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}
