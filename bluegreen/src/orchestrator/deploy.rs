//! Deploy and canary: a new release into the idle slot, then traffic to it.

use deploy_core::StagePoint;

use crate::registry::{PullProgress, RegistryCredentials};

use super::*;

/// How many of a failed slot's last log lines are read for its report's excerpt.
const FAILED_SLOT_LOG_LINES: usize = 500;

impl Orchestrator {
    /// Deploys `request.release` to the idle slot and moves traffic to it, as the
    /// [module documentation](crate::orchestrator) describes.
    ///
    /// `Ok` carries the verdict: [`OperationResult::Succeeded`] (live and gated),
    /// [`OperationResult::Unchanged`] (it was already live; gated again),
    /// [`OperationResult::Refused`] (did not start or failed its pre-switch gates;
    /// nothing switched), [`OperationResult::RolledBack`] (failed after the switch;
    /// traffic is back on the old slot).
    ///
    /// # Errors
    /// [`Error::LockHeld`] at once when another operation runs; [`Error::Config`] for a
    /// bad request (canary steps); configuration errors of the gate plans or secrets;
    /// infrastructure failures (Docker, the proxy refusing a change such as
    /// [`Error::NginxConfigInvalid`]), after which traffic is on the old slot when it
    /// can be, and the new slot is stopped.
    pub async fn deploy(&self, request: &DeployRequest) -> Result<OperationReport> {
        request.validate()?;
        let operation = match request.rollout {
            Rollout::BlueGreen => Operation::Deploy,
            Rollout::Canary { .. } => Operation::Canary,
        };
        let lock = self.lock(operation)?;
        let mut run = self
            .begin(
                operation,
                Some(request.label()),
                Some(&request.release.image),
                &lock,
            )
            .await;
        self.step(&mut run, Step::Locked, "stack locked").await;
        self.close_unfinished(&mut run).await;
        run.report.release = Some(request.label().to_owned());
        run.report.backup_id.clone_from(&request.backup_id);
        self.record(&run, DeployStatus::Started, request).await;
        let result = self.deploy_locked(&mut run, request).await;
        // A maintenance window still open (the deploy did not reach its switch): the
        // database and the release that served are put back first.
        let result = match (result, self.end_maintenance(&mut run).await) {
            (result, Ok(())) => result,
            (Ok(_), Err(e)) => Err(e),
            (Err(e), Err(also)) => {
                self.warn(&mut run, also.to_string());
                Err(e)
            }
        };
        let status = match &result {
            Ok(_) => deploy_status(run.report.result),
            Err(e) => {
                self.record_error(&mut run, request, e).await;
                DeployStatus::Failed
            }
        };
        // The finish stages (a notification) run under the lock too, whatever the
        // outcome; they cannot change it.
        if let Err(e) = self
            .run_stages(&mut run, StagePoint::Finish, request, Some(status))
            .await
        {
            self.warn(&mut run, format!("a finish stage failed: {e}"));
        }
        let retire = match result {
            Ok(retire) => retire,
            Err(e) => {
                self.close_journal(&mut run, Some(&e)).await;
                return Err(e);
            }
        };
        self.close_journal(&mut run, None).await;
        drop(lock);
        if let Some(old) = retire {
            let window = request
                .rollback_window
                .unwrap_or(self.config.deploy.rollback_window);
            self.retire_after_window(&mut run, &old, window).await;
        }
        Ok(self.done(run).await)
    }

    /// The locked part of a deploy; returns the old slot to stop after the rollback
    /// window.
    pub(super) async fn deploy_locked(
        &self,
        run: &mut Run,
        request: &DeployRequest,
    ) -> Result<Option<ContainerInfo>> {
        // A module update whose deploy was killed goes on in its container, holding its
        // locks (the pre-deploy backup would wait on them): it goes first.
        match self.docker.remove_stale_one_offs(&self.config.stack).await {
            Ok(removed) => {
                for name in removed {
                    self.repaired(
                        run,
                        format!("removed {name}, the update container an interrupted deploy left running"),
                    )
                    .await;
                }
            }
            Err(e) => self.warn(
                run,
                format!("cannot look for one-off containers left running: {e}"),
            ),
        }
        let mut observed = self.observe().await?;
        self.step(run, Step::Observed, "read docker and the proxy")
            .await;
        let live = self.reconcile(run, &mut observed).await?;
        let target = live.other();
        let live_info = observed.slots.get(live).cloned();
        let live_running = live_info.clone().filter(ContainerInfo::is_running);
        run.report.from = live_info.as_ref().map(slot_release);
        run.report.serving = Some(live);
        let window = Arc::new(super::maintenance::MaintenanceWindow::new(
            self,
            live_info.clone(),
            matches!(request.rollout, Rollout::Canary { .. }),
        ));
        if self.switch.maintenance().await.unwrap_or(false) {
            window.adopt();
            self.warn(
                run,
                "the proxy is in maintenance (an interrupted deploy left it on, or it was set by hand): this deploy ends it when the new release serves, or after starting the release that served again".to_owned(),
            );
        }
        run.maintenance = Some(window);
        if let Some(entry) = run.journal.as_mut() {
            entry.from = Some(live);
            entry.to = Some(target);
        }

        if let Some(info) = &live_running {
            if info.release == request.label() && info.image == request.release.image {
                let idle = observed
                    .slots
                    .get(target)
                    .cloned()
                    .filter(ContainerInfo::is_running);
                return self.confirm_live(run, info, idle.as_ref(), request).await;
            }
        } else {
            let message = match &live_info {
                Some(info) => format!(
                    "slot {live} ({}) takes the traffic but its container is {:?}: requests fail until the switch",
                    info.release, info.status
                ),
                None => format!("no release serves yet (slot {live} has no container)"),
            };
            self.warn(run, message);
        }

        // Decide what becomes of the idle slot's container before any stage runs, so
        // that a deploy that must be refused takes no backup first.
        let mut replace = None;
        if let Some(existing) = observed.slots.get(target).cloned() {
            let reuse = existing.is_running()
                && existing.release == request.label()
                && existing.image == request.release.image;
            if reuse {
                run.reused = Some(target);
            } else {
                let passed = self.passed_here(run, &existing.release).await;
                let fallback = Fallback::of(passed, &existing, live_info.as_ref());
                let is_target = fallback == Fallback::Proven && live_running.is_some();
                if is_target && request.keep_rollback_target {
                    let reason = format!(
                        "slot {target} holds release {}, the rollback target, and the deploy was told to keep it; deploy without --keep-rollback-target to replace it",
                        existing.release
                    );
                    return self
                        .refuse_deploy(run, request, Stage::Start, reason, None)
                        .await;
                }
                replace = Some((existing, is_target));
            }
        }

        // The image before anything else: one that cannot be had fails the deploy
        // before a backup is taken or a container is touched.
        if run.reused.is_none() {
            self.ensure_image(run, &request.release.image).await?;
        }

        if let Some(reason) = self
            .run_stages(run, StagePoint::BeforeStart, request, None)
            .await?
        {
            return self
                .refuse_deploy(run, request, Stage::BeforeStart, reason, None)
                .await;
        }

        if let Some((existing, is_target)) = replace {
            if is_target {
                self.warn(
                    run,
                    format!(
                        "replacing slot {target}'s release {} ({}), the rollback target: until {} passes its gates there is no other release to roll back to (--keep-rollback-target refuses instead)",
                        existing.release,
                        if existing.is_running() { "running, warm" } else { "stopped" },
                        request.label()
                    ),
                );
                run.report.replaced = Some(slot_release(&existing));
            }
            self.docker.remove(&self.config.stack, target).await?;
            info!(slot = %target, release = %existing.release, "previous container of the idle slot removed");
        }
        let wanted = SlotRelease {
            slot: target,
            release: request.label().to_owned(),
            image: request.release.image.clone(),
        };
        run.report.to = Some(wanted);
        self.step(
            run,
            Step::Starting,
            format!("starting slot {target} with release {}", request.label()),
        )
        .await;
        let spec = self.config.slot_spec(
            target,
            &request.release.image,
            request.label(),
            &*self.events,
        )?;
        let ready = self.ready_options(self.config.slots.ready_timeout);
        let started = Instant::now();
        let launched = self.docker.launch(&spec, &ready).await;
        run.report.timings.container_start = started.elapsed();
        let new = match launched {
            Ok(info) => info,
            Err(Error::SlotFailedToStart { reason, logs, .. })
                if !matches!(reason, StartFailure::StartRefused { .. }) =>
            {
                run.report.slot_logs = Some(log_excerpt(&logs));
                let reason = format!("slot {target} did not start: {reason}");
                return self
                    .refuse_deploy(run, request, Stage::Start, reason, Some(target))
                    .await;
            }
            Err(e) => {
                self.cleanup(run, target).await;
                return Err(e);
            }
        };
        run.report.to = Some(slot_release(&new));
        self.step(
            run,
            Step::Started,
            format!("slot {target} answers at {}", display_addr(new.http)),
        )
        .await;

        // The checks of the started slot before traffic moves: a refusal or an error
        // of either stops it, and nothing is switched.
        let urls = PlanUrls::of(Some(&new), live_running.as_ref());
        for stage in [Stage::PreGates, Stage::BeforeSwitch] {
            let verdict = match stage {
                Stage::PreGates => self.pre_switch_gates(run, target, &urls).await,
                _ => {
                    self.run_stages(run, StagePoint::BeforeSwitch, request, None)
                        .await
                }
            };
            match verdict {
                Ok(None) => {}
                Ok(Some(reason)) => {
                    return self
                        .refuse_deploy(run, request, stage, reason, Some(target))
                        .await;
                }
                Err(e) => {
                    self.cleanup(run, target).await;
                    return Err(e);
                }
            }
        }

        let steps = match &request.rollout {
            Rollout::BlueGreen => vec![100],
            Rollout::Canary { steps } => {
                if self.config.post_switch.is_none() {
                    self.warn(
                        run,
                        "canary without post-switch gates: nothing is evaluated between the steps, which follow each other at once".to_owned(),
                    );
                }
                steps.clone()
            }
        };
        match self
            .bring_in(run, &new, live_running.as_ref(), &steps, &urls, true)
            .await?
        {
            Verdict::Passed => {}
            Verdict::Failed { stage, reason } => {
                // Without a previous slot to go back to, the new release keeps the
                // traffic: refused, not rolled back.
                run.report.result = if live_running.is_some() {
                    OperationResult::RolledBack
                } else {
                    OperationResult::Refused
                };
                run.report.stage = Some(stage);
                run.report.reason = Some(reason);
                self.record_result(run, request).await;
                return Ok(None);
            }
        }
        let after = self
            .run_stages(run, StagePoint::AfterSwitch, request, None)
            .await;
        let after_failed = match after {
            Ok(None) => None,
            Ok(Some(reason)) => Some((reason, None)),
            Err(e) => Some((error_chain(&e), Some(e))),
        };
        if let Some((reason, error)) = after_failed {
            // The release took the traffic and then a stage said no: traffic goes back
            // to the old slot (when one runs), as after failed post-switch gates.
            self.warn(run, reason.clone());
            match &live_running {
                Some(old) => {
                    self.go_back(run, old, new.slot, true).await?;
                    run.report.result = OperationResult::RolledBack;
                }
                None => {
                    self.warn(
                        run,
                        format!(
                            "no previous slot runs: traffic stays on slot {} ({})",
                            new.slot, new.release
                        ),
                    );
                    run.report.result = OperationResult::Refused;
                }
            }
            if let Some(e) = error {
                return Err(e);
            }
            run.report.stage = Some(Stage::AfterSwitch);
            run.report.reason = Some(reason);
            self.record_result(run, request).await;
            return Ok(None);
        }
        if let Some(old) = &live_running {
            self.drain(run, old.slot).await;
        }
        self.record_result(run, request).await;
        self.step(run, Step::Recorded, "outcome recorded").await;
        Ok(live_running)
    }

    /// Runs the pre-switch plan against the started slot: the failing gates' reason, or
    /// `None` when they passed (or there is no plan, which is warned about).
    async fn pre_switch_gates(
        &self,
        run: &mut Run,
        target: Slot,
        urls: &PlanUrls,
    ) -> Result<Option<String>> {
        let Some(plan) = &self.config.pre_switch else {
            self.warn(
                run,
                "no pre-switch gates configured: the new slot was only checked for readiness"
                    .to_owned(),
            );
            return Ok(None);
        };
        self.step(
            run,
            Step::PreGates,
            format!("pre-switch gates against slot {target}"),
        )
        .await;
        self.run_plan(run, "pre_switch", plan, urls, None).await
    }

    /// The release asked for is already live (a deploy interrupted after its switch, or
    /// a repeated deploy): verify it and run the post-switch gates again; on failure go
    /// back to the idle slot when it runs.
    pub(super) async fn confirm_live(
        &self,
        run: &mut Run,
        live: &ContainerInfo,
        idle: Option<&ContainerInfo>,
        request: &DeployRequest,
    ) -> Result<Option<ContainerInfo>> {
        run.report.to = Some(slot_release(live));
        run.report.from = idle.map(slot_release);
        let urls = PlanUrls::of(Some(live), idle);
        let verdict = self.verify_and_gate(run, live, &urls, None).await?;
        match verdict {
            Verdict::Passed => {
                run.report.result = OperationResult::Unchanged;
                run.report.reason = Some(format!(
                    "release {} already serves from slot {}; verified again",
                    live.release, live.slot
                ));
                if let Some(old) = idle {
                    self.drain(run, old.slot).await;
                }
                self.record_result(run, request).await;
                self.step(run, Step::Recorded, "outcome recorded").await;
                Ok(idle.cloned())
            }
            Verdict::Failed { stage, reason } => {
                run.report.stage = Some(stage);
                run.report.reason = Some(reason);
                match idle {
                    Some(old) => {
                        self.switch_back(run, old, live.slot, true).await?;
                        run.report.result = OperationResult::RolledBack;
                    }
                    None => {
                        run.report.result = OperationResult::Refused;
                        self.warn(
                            run,
                            format!(
                                "no other slot runs: traffic stays on slot {} ({})",
                                live.slot, live.release
                            ),
                        );
                    }
                }
                self.record_result(run, request).await;
                Ok(None)
            }
        }
    }

    /// Moves traffic to `new` in `steps` (shares of the new slot; `[100]` for
    /// blue-green), verifying and gating each. On a failed verification, switches back
    /// to `old` (when there is one) and returns the failure.
    pub(super) async fn bring_in(
        &self,
        run: &mut Run,
        new: &ContainerInfo,
        old: Option<&ContainerInfo>,
        steps: &[u8],
        urls: &PlanUrls,
        cleanup_on_failure: bool,
    ) -> Result<Verdict> {
        let new_backend = self.backend(new)?;
        let old_backend = old.map(|o| self.backend(o)).transpose()?;
        let mut moved = false;
        for &share in steps {
            let result: Result<Verdict> = async {
                match old_backend {
                    Some(old_backend) if share < 100 => {
                        self.step(
                            run,
                            Step::CanaryStep,
                            format!("{share} % of new requests to slot {}", new.slot),
                        )
                        .await;
                        let started = Instant::now();
                        self.switch
                            .set_weights(&[(old_backend, 100 - share), (new_backend, share)])
                            .await?;
                        run.report.timings.switch += started.elapsed();
                        Ok(match &self.config.post_switch {
                            Some(plan) => {
                                self.step(
                                    run,
                                    Step::PostGates,
                                    format!("post-switch gates at {share} %"),
                                )
                                .await;
                                match self
                                    .run_plan(run, "post_switch", plan, urls, Some(share))
                                    .await?
                                {
                                    None => Verdict::Passed,
                                    Some(reason) => Verdict::Failed {
                                        stage: Stage::Canary,
                                        reason: format!("at {share} %: {reason}"),
                                    },
                                }
                            }
                            None => Verdict::Passed,
                        })
                    }
                    _ => {
                        self.step(
                            run,
                            Step::Switching,
                            format!("all new requests to slot {}", new.slot),
                        )
                        .await;
                        let started = Instant::now();
                        self.switch.switch_to(&new_backend).await?;
                        run.report.timings.switch += started.elapsed();
                        self.step(run, Step::Switched, "the proxy accepted the switch")
                            .await;
                        self.leave_maintenance(run).await?;
                        self.verify_and_gate(run, new, urls, Some(started)).await
                    }
                }
            }
            .await;
            match result {
                Ok(Verdict::Passed) => moved = true,
                Ok(Verdict::Failed { stage, reason }) => {
                    self.warn(run, format!("verification failed: {reason}"));
                    match old {
                        Some(old) => {
                            self.go_back(run, old, new.slot, cleanup_on_failure).await?;
                        }
                        None => {
                            run.report.serving = Some(new.slot);
                            self.warn(
                                run,
                                format!(
                                    "no previous slot runs: traffic stays on slot {} ({})",
                                    new.slot, new.release
                                ),
                            );
                        }
                    }
                    return Ok(Verdict::Failed { stage, reason });
                }
                Err(e) => {
                    // The proxy refused or failed: a refused change leaves the routing
                    // as it was; after an earlier step moved traffic, put it back.
                    if let (true, Some(old)) = (moved, old) {
                        if let Err(back) = self.switch_back(run, old, new.slot, false).await {
                            self.warn(run, format!("switching back failed too: {back}"));
                        }
                    }
                    if cleanup_on_failure {
                        self.cleanup(run, new.slot).await;
                    }
                    return Err(e);
                }
            }
        }
        run.report.serving = Some(new.slot);
        Ok(Verdict::Passed)
    }

    /// After all traffic went to `new`: checks through the proxy that requests reach its
    /// release, then runs the post-switch plan.
    pub(super) async fn verify_and_gate(
        &self,
        run: &mut Run,
        new: &ContainerInfo,
        urls: &PlanUrls,
        switch_started: Option<Instant>,
    ) -> Result<Verdict> {
        if self.config.deploy.verify_release {
            let options = self.verify_options();
            let verify_started = Instant::now();
            let expected = Expected::new(&new.release, new.slot);
            match verify_release(self.config.proxy.url.as_str(), &expected, &options).await {
                Ok(report) => {
                    if let Some(started) = switch_started {
                        run.report.timings.switch_visible =
                            verify_started.duration_since(started) + report.latency;
                    }
                    self.step(
                        run,
                        Step::Verified,
                        format!(
                            "requests through the proxy reach release {} ({} of {} before it showed)",
                            new.release, report.mismatched, report.requests
                        ),
                    )
                    .await;
                }
                Err(Error::VerifyTimeout { seen, waited, .. }) => {
                    return Ok(Verdict::Failed {
                        stage: Stage::Verify,
                        reason: format!(
                            "requests through the proxy did not reach release {} within {waited:?} (seen: {})",
                            new.release,
                            seen.iter()
                                .map(|(label, n)| format!("{label} x{n}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(plan) = &self.config.post_switch {
            self.step(run, Step::PostGates, "post-switch gates through the proxy")
                .await;
            if let Some(reason) = self
                .run_plan(run, "post_switch", plan, urls, Some(100))
                .await?
            {
                return Ok(Verdict::Failed {
                    stage: Stage::PostGates,
                    reason,
                });
            }
        }
        Ok(Verdict::Passed)
    }

    /// Goes back to `old` after `failed` took the traffic and failed: through
    /// maintenance when this deploy updated the database in maintenance (the old release
    /// must not serve it), else by [`Orchestrator::switch_back`].
    pub(super) async fn go_back(
        &self,
        run: &mut Run,
        old: &ContainerInfo,
        failed: Slot,
        cleanup: bool,
    ) -> Result<()> {
        if run.maintenance.as_ref().is_some_and(|w| w.must_restore()) {
            self.back_through_maintenance(run, failed, cleanup).await?;
            self.verify_back(run, old, "going back").await;
            return Ok(());
        }
        if let Some(note) = self.online_update_kept(run) {
            self.warn(run, note);
        }
        self.switch_back(run, old, failed, cleanup).await
    }

    /// When this deploy updated the database online (a change declared safe for the old
    /// code) and the new release failed after the switch: the old release goes back onto
    /// the updated database, which is kept (restoring it would drop every write since
    /// the backup). Says so, with the modules and the backup that would undo it.
    fn online_update_kept(&self, run: &Run) -> Option<String> {
        let online = self
            .config
            .update
            .as_ref()
            .is_some_and(|u| u.strategy == crate::update::UpdateStrategy::Online);
        let update = run
            .report
            .stages
            .iter()
            .find(|s| s.name == "update" && s.result == deploy_core::StageResult::Passed)?;
        let plan = &update.details["plan"];
        let modules: Vec<&str> = ["update", "install"]
            .iter()
            .filter_map(|key| plan[*key].as_array())
            .flatten()
            .filter_map(|m| m.as_str())
            .collect();
        if !online || modules.is_empty() {
            return None;
        }
        let backup = run
            .report
            .backup_id
            .as_deref()
            .map_or_else(
                || "no pre-deploy backup was taken".to_owned(),
                |id| format!("restore the pre-deploy backup {id} (odoo-rollback restore --backup {id}) with the old release stopped"),
            );
        Some(format!(
            "the module update ran online ({}), declared safe for the old code: the old release goes back onto the updated database, which is kept with the writes made since; to undo the update too, {backup}",
            modules.join(", ")
        ))
    }

    /// Checks through the proxy that requests reach `old` again; a warning when not.
    async fn verify_back(&self, run: &mut Run, old: &ContainerInfo, after: &str) {
        if !self.config.deploy.verify_release {
            return;
        }
        if let Err(e) = verify_release(
            self.config.proxy.url.as_str(),
            &Expected::new(&old.release, old.slot),
            &self.verify_options(),
        )
        .await
        {
            self.warn(run, format!("after {after}: {e}"));
        }
    }

    /// Sends all traffic back to `old` after a failed verification of `failed`, checks it
    /// arrives, and stops the failed slot when `cleanup` says so.
    pub(super) async fn switch_back(
        &self,
        run: &mut Run,
        old: &ContainerInfo,
        failed: Slot,
        cleanup: bool,
    ) -> Result<()> {
        let backend = self.backend(old)?;
        self.step(
            run,
            Step::SwitchingBack,
            format!("all traffic back to slot {} ({})", old.slot, old.release),
        )
        .await;
        let started = Instant::now();
        self.switch.switch_to(&backend).await?;
        run.report.timings.switch += started.elapsed();
        run.report.serving = Some(old.slot);
        self.verify_back(run, old, "switching back").await;
        self.step(
            run,
            Step::SwitchedBack,
            format!("traffic is back on slot {}", old.slot),
        )
        .await;
        if cleanup {
            self.cleanup(run, failed).await;
        }
        Ok(())
    }

    /// Drains `slot` in the proxy (waiting at most the drain timeout).
    pub(super) async fn drain(&self, run: &mut Run, slot: Slot) {
        self.step(run, Step::Draining, format!("draining slot {slot}"))
            .await;
        let started = Instant::now();
        match self
            .switch
            .drain(slot, self.config.deploy.drain_timeout)
            .await
        {
            Ok(report) => {
                if let Some(remaining) = report.remaining.filter(|r| *r > 0) {
                    self.warn(
                        run,
                        format!("slot {slot} still had {remaining} connections when the drain timeout passed"),
                    );
                }
            }
            Err(e) => self.warn(run, format!("draining slot {slot}: {e}")),
        }
        run.report.timings.drain += started.elapsed();
        self.step(run, Step::Drained, format!("slot {slot} drained"))
            .await;
    }

    /// Stops a slot that failed (start, gates, verification): removed, or kept stopped
    /// for inspection when `keep_failed`.
    pub(super) async fn cleanup(&self, run: &mut Run, slot: Slot) {
        let stack = &self.config.stack;
        // The failed slot's own words, before its container goes: a start failure has
        // them already; a release that failed its gates gets them here.
        if run.report.slot_logs.is_none() {
            match self.docker.logs(stack, slot, FAILED_SLOT_LOG_LINES).await {
                Ok(logs) => run.report.slot_logs = Some(log_excerpt(&logs)),
                Err(e) => self.warn(run, format!("reading the logs of slot {slot}: {e}")),
            }
        }
        if run.reused == Some(slot) {
            // This deploy found the container running and did not create it: it is
            // left as it was (running, taking no traffic).
            self.warn(
                run,
                format!("slot {slot}'s container was already running before this deploy: left as it was, taking no traffic"),
            );
            return;
        }
        self.step(run, Step::Cleanup, format!("stopping slot {slot}"))
            .await;
        let result = if self.config.deploy.keep_failed {
            match self
                .docker
                .stop(stack, slot, self.config.slots.stop_grace)
                .await
            {
                Err(Error::SlotNotFound { .. }) => Ok(()),
                other => other.map(|_| ()),
            }
        } else {
            self.docker.remove(stack, slot).await.map(|_| ())
        };
        match result {
            Ok(()) => run.report.stopped = Some(slot),
            Err(e) => self.warn(run, format!("stopping slot {slot}: {e}")),
        }
    }

    /// After the lock was released: waits the rollback window, then (locked again)
    /// stops the old slot if it is still the same container and takes no traffic.
    pub(super) async fn retire_after_window(
        &self,
        run: &mut Run,
        old: &ContainerInfo,
        window: RollbackWindow,
    ) {
        let wait = match window {
            RollbackWindow::Keep => {
                self.warn(
                    run,
                    format!(
                        "slot {} ({}) keeps running (rollback window: keep); `stop-idle` stops it",
                        old.slot, old.release
                    ),
                );
                return;
            }
            RollbackWindow::StopAfter(wait) => wait,
        };
        if !wait.is_zero() {
            self.step(
                run,
                Step::Window,
                format!(
                    "slot {} ({}) stays running for {} for a fast rollback",
                    old.slot,
                    old.release,
                    humantime::format_duration(wait)
                ),
            )
            .await;
            let started = Instant::now();
            tokio::time::sleep(wait).await;
            run.report.timings.window = started.elapsed();
        }
        let lock = match self.lock(run.operation) {
            Ok(lock) => lock,
            Err(e) => {
                self.warn(run, format!("slot {} left running: {e}", old.slot));
                return;
            }
        };
        let stack = &self.config.stack;
        let (current, traffic) =
            tokio::join!(self.docker.inspect(stack, old.slot), self.switch.active());
        match (current, traffic) {
            (Ok(Some(current)), Ok(traffic))
                if current.id == old.id && current.is_running() && traffic.share(old.slot) == 0 =>
            {
                match self
                    .docker
                    .stop(stack, old.slot, self.config.slots.stop_grace)
                    .await
                {
                    Ok(_) => {
                        run.report.stopped = Some(old.slot);
                        self.step(
                            run,
                            Step::Retired,
                            format!("slot {} ({}) stopped", old.slot, old.release),
                        )
                        .await;
                    }
                    Err(e) => self.warn(run, format!("stopping slot {}: {e}", old.slot)),
                }
            }
            (Ok(Some(current)), Ok(_)) if current.id == old.id && !current.is_running() => {}
            (Ok(_), Ok(_)) => self.warn(
                run,
                format!(
                    "slot {} changed during the rollback window (a rollback or another deploy): left as it is",
                    old.slot
                ),
            ),
            (Err(e), _) | (_, Err(e)) => {
                self.warn(run, format!("slot {} left running: {e}", old.slot));
            }
        }
        drop(lock);
    }

    /// Makes sure the engine has the release's image, pulling it as the stack file's
    /// `[deploy] pull` says, with the registry's credentials from the environment or
    /// Docker's `config.json`; the engine's pull lines go to the events.
    pub(super) async fn ensure_image(&self, run: &mut Run, image: &str) -> Result<()> {
        let policy = self.config.deploy.pull;
        if crate::backend::present_image(&*self.docker, image, policy)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let image_error = |problem, detail: String| Error::Image {
            image: image.to_owned(),
            problem,
            detail,
        };
        let reference =
            ImageRef::parse(image).map_err(|detail| image_error(ImageProblem::NotFound, detail))?;
        let credentials = self
            .credentials
            .credentials_for(&reference)
            .map_err(|e| image_error(ImageProblem::BadCredentials, e.to_string()))?;
        let with = credentials.as_ref().map_or_else(
            || "no credentials".to_owned(),
            RegistryCredentials::describe,
        );
        self.step(
            run,
            Step::Pulling,
            format!("pulling {image} from {} ({with})", reference.registry),
        )
        .await;
        let events = Arc::clone(&self.events);
        let operation = run.operation.as_str();
        let label = image.to_owned();
        let progress = move |line: &PullProgress| {
            events.emit(
                &Event::progress(operation, format!("pulling {label}: {line}"))
                    .with_field("step", Step::Pulling.as_str()),
            );
        };
        let started = Instant::now();
        let outcome = self
            .docker
            .pull_image(image, credentials.as_ref(), &progress)
            .await;
        run.report.timings.image_pull = started.elapsed();
        let outcome = outcome?;
        let (id, digest) = match outcome {
            ImageOutcome::Pulled { id, digest } => (id, digest),
            ImageOutcome::Present { id } => (id, None),
        };
        self.step(
            run,
            Step::Pulled,
            format!(
                "pulled {image} ({}) in {:.1} s",
                digest.as_deref().unwrap_or(&id),
                run.report.timings.image_pull.as_secs_f64()
            ),
        )
        .await;
        run.report.pulled = Some(PulledImage {
            image: image.to_owned(),
            id,
            digest,
        });
        Ok(())
    }
}
