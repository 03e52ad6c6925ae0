//! The deploy as a pipeline: the orchestrator's own steps and the [`DeployStage`]s
//! plugged in between them, all run while the stack's lock is held.

use deploy_core::{
    DeployStage, Release, StageContext, StageOutcome, StagePoint, StageRecord, StageResult,
    StageVerdict,
};
use serde::Serialize;

use super::*;

/// One entry of a deploy's pipeline, as `deploy --dry-run` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PlannedStage {
    /// Where it runs: a [`StagePoint`], or the orchestrator's own step between them
    /// (`start`, `pre_switch`, `switch`, `post_switch`, `record`).
    pub at: String,
    /// Its name.
    pub name: String,
    /// Whether the orchestrator runs it itself (a step) or it was plugged in (a stage).
    pub builtin: bool,
    /// Its settings (never a secret value), in order; an object in JSON.
    #[serde(serialize_with = "as_map")]
    #[schemars(with = "std::collections::BTreeMap<String, String>")]
    pub settings: Vec<(String, String)>,
}

/// What a deploy would do, without doing it: the stages in order, and where it would
/// go as read from Docker and the proxy now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct DeployPlan {
    /// The stack.
    pub stack: String,
    /// The release and image to deploy.
    pub release: String,
    /// The image.
    pub image: String,
    /// The slot taking all traffic now, if Docker and the proxy could be read and one does.
    pub serving: Option<Slot>,
    /// The slot the release would start in.
    pub target: Option<Slot>,
    /// What could not be read (the plan is then given without slots).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    /// The pipeline, in order.
    pub stages: Vec<PlannedStage>,
    /// What would make the deploy fail whatever the release does, with the fix (e.g. a
    /// proxy that does not mark responses with the slot, for an image that does not
    /// send its release).
    pub problems: Vec<String>,
    /// What the operator should know (the verification relies on the image's header).
    pub notes: Vec<String>,
}

impl Orchestrator {
    /// Adds `stage` to every deploy, at its [point](DeployStage::point); stages at the
    /// same point run in the order they were added.
    #[must_use]
    pub fn with_stage(mut self, stage: Arc<dyn DeployStage>) -> Self {
        self.stages.push(stage);
        self
    }

    /// The stages added with [`Orchestrator::with_stage`].
    #[must_use]
    pub fn stages(&self) -> &[Arc<dyn DeployStage>] {
        &self.stages
    }

    /// What [`Orchestrator::deploy`] would run for `request`, in order, with each
    /// step's and stage's settings. Changes nothing: it takes no lock and only reads
    /// Docker and the proxy (to say which slot the release would start in).
    ///
    /// # Errors
    /// [`Error::Config`] for a bad request.
    pub async fn plan(&self, request: &DeployRequest) -> Result<DeployPlan> {
        request.validate()?;
        // The slot the deploy would start in: the other one than the live slot, decided
        // as the deploy decides it (split traffic: the one that served before), without
        // repairing anything.
        let (serving, target, unreadable) = match self.observe().await {
            Ok(observed) => {
                let serving = observed.traffic.serving();
                let live = serving.unwrap_or_else(|| super::reconcile::choose_keeper(&observed));
                (serving, Some(live.other()), None)
            }
            Err(e) => (None, None, Some(error_chain(&e))),
        };
        let mut stages = Vec::new();
        let builtin = |at: &str, name: &str, settings: Vec<(String, String)>| PlannedStage {
            at: at.to_owned(),
            name: name.to_owned(),
            builtin: true,
            settings,
        };
        let added = |point: StagePoint| {
            self.stages
                .iter()
                .filter(move |s| s.point() == point)
                .map(move |s| PlannedStage {
                    at: point.as_str().to_owned(),
                    name: s.name().to_owned(),
                    builtin: false,
                    settings: s.settings(),
                })
        };
        let pair = |k: &str, v: String| (k.to_owned(), v);
        let mut problems = Vec::new();
        let image = self.plan_image(request, &mut problems).await;
        stages.push(builtin(
            "image",
            "the release's image on the engine",
            image.into_iter().map(|(k, v)| pair(k, v)).collect(),
        ));
        let mut before_start: Vec<PlannedStage> = added(StagePoint::BeforeStart).collect();
        let previews = self.previews(request, StagePoint::BeforeStart).await;
        for (planned, preview) in before_start.iter_mut().zip(previews) {
            planned.settings.extend(preview);
        }
        stages.extend(before_start);
        stages.push(builtin(
            "start",
            "start the new slot",
            vec![
                pair(
                    "slot",
                    target.map_or_else(|| "?".to_owned(), |t| t.to_string()),
                ),
                pair("image", request.release.image.clone()),
                pair("release", request.label().to_owned()),
                pair(
                    "ready_timeout",
                    humantime::format_duration(self.config.slots.ready_timeout).to_string(),
                ),
            ],
        ));
        stages.push(builtin(
            "pre_switch",
            "pre-switch gates",
            vec![pair("plan", describe_plan(self.config.pre_switch.as_ref()))],
        ));
        stages.extend(added(StagePoint::BeforeSwitch));
        let rollout = match &request.rollout {
            Rollout::BlueGreen => "all at once".to_owned(),
            Rollout::Canary { steps } => format!(
                "canary {}",
                steps
                    .iter()
                    .map(|s| format!("{s} %"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        stages.push(builtin(
            "switch",
            "switch traffic",
            vec![
                pair("proxy", self.switch.kind().to_string()),
                pair("rollout", rollout),
                pair(
                    "verify_release",
                    self.config.deploy.verify_release.to_string(),
                ),
            ],
        ));
        stages.push(builtin(
            "post_switch",
            "post-switch gates",
            vec![pair(
                "plan",
                describe_plan(self.config.post_switch.as_ref()),
            )],
        ));
        stages.extend(added(StagePoint::AfterSwitch));
        let window = request
            .rollback_window
            .unwrap_or(self.config.deploy.rollback_window);
        stages.push(builtin(
            "record",
            "drain the old slot and record the outcome",
            vec![
                pair(
                    "drain_timeout",
                    humantime::format_duration(self.config.deploy.drain_timeout).to_string(),
                ),
                pair("rollback_window", window.to_string()),
            ],
        ));
        stages.extend(added(StagePoint::Finish));
        let mut notes = Vec::new();
        match self.check_marking().await {
            (crate::verify::Marking::Unmarked, Some(message)) => problems.push(message),
            (_, Some(message)) => notes.push(message),
            (_, None) => {}
        }
        Ok(DeployPlan {
            stack: self.config.stack.clone(),
            release: request.label().to_owned(),
            image: request.release.image.clone(),
            serving,
            target,
            unreadable,
            stages,
            problems,
            notes,
        })
    }

    /// The image stage's settings for the plan: whether the engine has it, and if not,
    /// where it would be pulled from with which credentials (read, not used: the
    /// registry is not asked).
    async fn plan_image(
        &self,
        request: &DeployRequest,
        problems: &mut Vec<String>,
    ) -> Vec<(&'static str, String)> {
        let image = request.release.image.as_str();
        let policy = self.config.deploy.pull;
        let mut settings = vec![
            ("image", image.to_owned()),
            ("pull", policy.as_str().to_owned()),
        ];
        let reference = match crate::registry::ImageRef::parse(image) {
            Ok(reference) => reference,
            Err(e) => {
                problems.push(format!("image {image}: {e}"));
                return settings;
            }
        };
        let present = match self.docker.image_id(image).await {
            Ok(id) => id,
            Err(e) => {
                settings.push(("on_engine", format!("unknown ({e})")));
                return settings;
            }
        };
        settings.push((
            "on_engine",
            if present.is_some() { "yes" } else { "no" }.to_owned(),
        ));
        if present.is_some() && policy != crate::registry::PullPolicy::Always {
            return settings;
        }
        if policy == crate::registry::PullPolicy::Never {
            problems.push(format!(
                "image {image} is not on the engine and the stack file says pull = \"never\": build or load it, or set pull = \"missing\" in [deploy]"
            ));
            return settings;
        }
        settings.push(("registry", reference.registry.clone()));
        match self.credentials.credentials_for(&reference) {
            Ok(Some(found)) => settings.push(("credentials", found.describe())),
            Ok(None) => {
                settings.push(("credentials", "none (a public image needs none)".to_owned()))
            }
            Err(e) => problems.push(format!("image {image}: {e}")),
        }
        settings
    }

    /// Each stage's [`preview`](DeployStage::preview) at `point`, in order.
    async fn previews(
        &self,
        request: &DeployRequest,
        point: StagePoint,
    ) -> Vec<Vec<(String, String)>> {
        let mut previews = Vec::new();
        for stage in self.stages.iter().filter(|s| s.point() == point) {
            let ctx = StageContext {
                stack: &self.config.stack,
                environment: self.config.environment,
                release: &request.release,
                live: None,
                operator: &self.operator,
                status: None,
                backup_id: None,
                repair_backup_id: None,
                events: &*self.events,
                maintenance: None,
            };
            previews.push(stage.preview(&ctx).await);
        }
        previews
    }

    /// Runs the stages at `point` in order. Returns the first refusal's reason (the
    /// later stages do not run), or an [`Error::Stage`] for the first that fails; at
    /// [`StagePoint::Finish`] both are warnings and every stage runs.
    pub(super) async fn run_stages(
        &self,
        run: &mut Run,
        point: StagePoint,
        request: &DeployRequest,
        status: Option<DeployStatus>,
    ) -> Result<Option<String>> {
        let live = run
            .report
            .from
            .as_ref()
            .map(|from| Release::new(from.image.as_str()).with_version(from.release.as_str()));
        for stage in self.stages.iter().filter(|s| s.point() == point) {
            let name = stage.name().to_owned();
            if let Some(entry) = run.journal.as_mut() {
                entry.stage = Some(name.clone());
            }
            self.step(run, Step::Stage, format!("stage {name} ({point})"))
                .await;
            let backup_id = run.report.backup_id.clone();
            let repair = run.interrupted_update.clone().flatten();
            let ctx = StageContext {
                stack: &self.config.stack,
                environment: self.config.environment,
                release: &request.release,
                live: live.as_ref(),
                operator: &self.operator,
                status,
                backup_id: backup_id.as_deref(),
                repair_backup_id: repair.as_deref(),
                events: &*self.events,
                maintenance: run
                    .maintenance
                    .as_deref()
                    .map(|m| m as &dyn deploy_core::Maintenance),
            };
            let started = Instant::now();
            let result = stage.run(&ctx).await;
            let record =
                |result: StageResult, summary: Option<String>, outcome: Option<&StageOutcome>| {
                    StageRecord {
                        name: name.clone(),
                        point,
                        result,
                        summary,
                        backup_id: outcome.and_then(|o| o.backup_id.clone()),
                        duration_ms: millis(started.elapsed()),
                        details: outcome.map_or(serde_json::Value::Null, |o| o.details.clone()),
                    }
                };
            match result {
                Ok(outcome) => {
                    for warning in &outcome.warnings {
                        self.warn(run, format!("stage {name}: {warning}"));
                    }
                    if let Some(id) = &outcome.backup_id {
                        run.report.backup_id = Some(id.clone());
                    }
                    match &outcome.verdict {
                        StageVerdict::Proceed => {
                            run.report.stages.push(record(
                                StageResult::Passed,
                                outcome.summary.clone(),
                                Some(&outcome),
                            ));
                        }
                        StageVerdict::Refuse(reason) => {
                            run.report.stages.push(record(
                                StageResult::Refused,
                                Some(reason.clone()),
                                Some(&outcome),
                            ));
                            let reason = format!("stage {name} refused the deploy: {reason}");
                            if point == StagePoint::Finish {
                                self.warn(run, reason);
                            } else {
                                return Ok(Some(reason));
                            }
                        }
                    }
                }
                Err(e) => {
                    run.report
                        .stages
                        .push(record(StageResult::Failed, Some(e.to_string()), None));
                    if point == StagePoint::Finish {
                        self.warn(run, format!("stage {name} failed: {e}"));
                    } else {
                        return Err(Error::Stage {
                            stage: name,
                            source: e,
                        });
                    }
                }
            }
        }
        Ok(None)
    }
}

fn as_map<S: serde::Serializer>(
    pairs: &[(String, String)],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
}

fn describe_plan(plan: Option<&Plan>) -> String {
    match plan {
        None => "none".to_owned(),
        Some(plan) => {
            let names: Vec<&str> = plan.gates.iter().map(|g| g.name.as_str()).collect();
            format!("{} gates: {}", names.len(), names.join(", "))
        }
    }
}
