//! Notifications as stages of a deploy: `notify started` when the deploy begins (it
//! posts and goes on at once) and `notify` when it ends (it posts the outcome and waits
//! a short grace for every delivery of the deploy, then reports what was not delivered
//! as warnings). Neither can refuse or fail a deploy.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use deploy_core::{
    ClassifiedError, DeployStage, DeployStatus, StageContext, StageOutcome, StagePoint,
};

use crate::{ChannelSpec, Delivery, Notice, NoticeKind, Notifier, Pending, Policy};

struct Shared {
    specs: Vec<ChannelSpec>,
    policy: Policy,
    grace: Duration,
    notifier: OnceLock<Result<Notifier, String>>,
    pending: Mutex<Vec<Pending>>,
}

impl Shared {
    fn notifier(&self, events: &dyn deploy_core::EventSink) -> Result<&Notifier, String> {
        self.notifier
            .get_or_init(|| {
                Notifier::from_specs(&self.specs, self.policy, events).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn settings(&self) -> Vec<(String, String)> {
        self.specs
            .iter()
            .map(|spec| {
                let events = spec.events.as_ref().map_or_else(
                    || "every notice".to_owned(),
                    |events| {
                        events
                            .iter()
                            .map(|e| e.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                );
                (
                    format!("channel {}", spec.name),
                    format!(
                        "{} ({}), url from {}",
                        spec.kind.as_str(),
                        events,
                        spec.url.describe()
                    ),
                )
            })
            .collect()
    }
}

/// The two stages over one set of channels: [`NotifyStages::started`] (at
/// [`StagePoint::BeforeStart`]) and [`NotifyStages::finished`] (at
/// [`StagePoint::Finish`]).
#[derive(Clone)]
pub struct NotifyStages {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for NotifyStages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyStages")
            .field("channels", &self.shared.specs.len())
            .finish_non_exhaustive()
    }
}

impl NotifyStages {
    /// Stages over `specs`; the finish stage waits at most `grace` for deliveries.
    #[must_use]
    pub fn new(specs: Vec<ChannelSpec>, policy: Policy, grace: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                specs,
                policy,
                grace,
                notifier: OnceLock::new(),
                pending: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Sends `notice` outside a deploy (a rollback, a switch) and waits at most the
    /// grace; the deliveries not made, as lines for a report's warnings.
    pub async fn announce(
        &self,
        notice: &Notice,
        events: &dyn deploy_core::EventSink,
    ) -> Vec<String> {
        match self.shared.notifier(events) {
            Ok(notifier) => notifier
                .post(notice)
                .wait(self.shared.grace)
                .await
                .iter()
                .filter(|d| !d.delivered())
                .map(Delivery::describe)
                .collect(),
            Err(reason) => vec![reason],
        }
    }

    /// The stage that posts `started`.
    #[must_use]
    pub fn started(&self) -> Arc<dyn DeployStage> {
        Arc::new(Stage {
            shared: self.shared.clone(),
            point: StagePoint::BeforeStart,
        })
    }

    /// The stage that posts the outcome and collects the deliveries.
    #[must_use]
    pub fn finished(&self) -> Arc<dyn DeployStage> {
        Arc::new(Stage {
            shared: self.shared.clone(),
            point: StagePoint::Finish,
        })
    }
}

struct Stage {
    shared: Arc<Shared>,
    point: StagePoint,
}

fn notice_for(ctx: &StageContext<'_>, kind: NoticeKind) -> Notice {
    let release = ctx.release.label().to_owned();
    let live = ctx.live.map(|l| l.label().to_owned());
    let summary = match kind {
        NoticeKind::Started => format!(
            "deploying {release}{}",
            live.as_ref()
                .map_or(String::new(), |l| format!(" over {l}"))
        ),
        NoticeKind::Succeeded => format!("{release} serves; its gates passed"),
        NoticeKind::RolledBack => format!(
            "{release} was rolled back{}",
            live.as_ref()
                .map_or(String::new(), |l| format!(": {l} serves again"))
        ),
        _ => format!(
            "the deploy of {release} did not complete{}: see its report",
            live.as_ref()
                .map_or(String::new(), |l| format!("; {l} serves"))
        ),
    };
    let mut notice = Notice::new(kind, ctx.stack, summary)
        .with_releases(live.as_deref(), Some(&release))
        .with_fact("Environment", ctx.environment.as_str())
        .with_fact("Image", ctx.release.image.clone());
    if !ctx.operator.is_empty() {
        notice = notice.with_operator(ctx.operator);
    }
    notice
}

fn kind_of(status: Option<DeployStatus>) -> NoticeKind {
    match status {
        Some(DeployStatus::Succeeded) => NoticeKind::Succeeded,
        Some(DeployStatus::RolledBack) => NoticeKind::RolledBack,
        _ => NoticeKind::Failed,
    }
}

fn outcome(deliveries: &[Delivery], summary_prefix: &str) -> StageOutcome {
    let delivered = deliveries.iter().filter(|d| d.delivered()).count();
    let mut outcome = StageOutcome::proceed()
        .with_summary(format!(
            "{summary_prefix}: {delivered} of {} deliveries made",
            deliveries.len()
        ))
        .with_details(serde_json::to_value(deliveries).unwrap_or_default());
    for delivery in deliveries.iter().filter(|d| !d.delivered()) {
        outcome = outcome.with_warning(delivery.describe());
    }
    outcome
}

#[async_trait]
impl DeployStage for Stage {
    fn name(&self) -> &str {
        match self.point {
            StagePoint::BeforeStart => "notify started",
            _ => "notify",
        }
    }

    fn point(&self) -> StagePoint {
        self.point
    }

    fn settings(&self) -> Vec<(String, String)> {
        self.shared.settings()
    }

    async fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, ClassifiedError> {
        let notifier = match self.shared.notifier(ctx.events) {
            Ok(notifier) => notifier,
            Err(reason) => {
                return Ok(StageOutcome::proceed()
                    .with_summary("no notification sent")
                    .with_warning(reason));
            }
        };
        if self.point == StagePoint::BeforeStart {
            let pending = notifier.post(&notice_for(ctx, NoticeKind::Started));
            if let Ok(mut all) = self.shared.pending.lock() {
                all.push(pending);
            }
            return Ok(StageOutcome::proceed().with_summary("started notice posted"));
        }
        let kind = kind_of(ctx.status);
        let finish = notifier.post(&notice_for(ctx, kind));
        let earlier: Vec<Pending> = self
            .shared
            .pending
            .lock()
            .map(|mut all| std::mem::take(&mut *all))
            .unwrap_or_default();
        let deadline = tokio::time::Instant::now() + self.shared.grace;
        let mut deliveries = Vec::new();
        for pending in earlier.into_iter().chain(std::iter::once(finish)) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            deliveries.extend(pending.wait(left).await);
        }
        Ok(outcome(&deliveries, &format!("{} notice", kind.as_str())))
    }
}
