//! Rollback, manual switch, stop-idle, and the `Deployer` the rollback strategy calls.

use super::*;

impl Orchestrator {
    /// Sends all traffic back to the slot that served before. When it still runs, this
    /// is a readiness probe, a switch and a verification (about a second); when it was
    /// stopped, it is started and its pre-switch gates run first. The slot rolled back
    /// from stays running, drained (unless `request.stop`), and the release it ran is
    /// recorded as rolled back.
    ///
    /// # Errors
    /// [`Error::LockHeld`]; [`Error::NoPreviousSlot`] when the other slot has no
    /// container; infrastructure failures (including a previous slot that no longer
    /// answers, and a verification that fails after the switch).
    pub async fn rollback(&self, request: &RollbackRequest) -> Result<OperationReport> {
        let (lock, mut run) = self.start_locked(Operation::Rollback, None).await?;
        let result = self
            .rollback_locked(&mut run, request.stop, request.code_only, None, true)
            .await;
        let report = self.finish_locked(lock, run, result).await?;
        Ok(self.announce_rollback(report).await)
    }

    /// Tells the `[[notify]]` channels that traffic went back, once the lock is
    /// released (a notification never delays the switch); deliveries not made become
    /// warnings of the report.
    async fn announce_rollback(&self, mut report: OperationReport) -> OperationReport {
        let Some(notify) = &self.notify else {
            return report;
        };
        if report.result != OperationResult::Succeeded {
            return report;
        }
        let from = report.from.as_ref().map(|r| r.release.as_str());
        let to = report.to.as_ref().map(|r| r.release.as_str());
        let summary = format!(
            "traffic is back on {}{}",
            to.unwrap_or("the previous release"),
            from.map_or(String::new(), |f| format!(" (from {f})"))
        );
        let notice = deploy_notify::Notice::new(
            deploy_notify::NoticeKind::RolledBack,
            &self.config.stack,
            summary,
        )
        .with_releases(from, to)
        .with_operator(self.operator.clone())
        .with_fact("Environment", self.config.environment.as_str());
        report
            .warnings
            .extend(notify.announce(&notice, &*self.events).await);
        report
    }

    pub(super) async fn rollback_locked(
        &self,
        run: &mut Run,
        stop: bool,
        code_only: bool,
        expected_release: Option<&str>,
        record: bool,
    ) -> Result<()> {
        let mut observed = self.observe().await?;
        self.step(run, Step::Observed, "read docker and the proxy")
            .await;
        let live = self.reconcile(run, &mut observed).await?;
        let live_info = observed.slots.get(live).cloned();
        run.report.serving = Some(live);
        if run.split_repaired && expected_release.is_none() {
            // An interrupted switch or canary left traffic split; putting all of it
            // back on the slot that served before is the rollback.
            run.report.to = live_info.as_ref().map(slot_release);
            run.report.release = live_info.as_ref().map(|i| i.release.clone());
            run.report.reason = Some(format!(
                "traffic was split; all of it is back on slot {live}, the slot that served before"
            ));
            return Ok(());
        }
        if let (Some(expected), Some(info)) = (expected_release, &live_info) {
            if info.release == expected && info.is_running() {
                run.report.result = OperationResult::Unchanged;
                run.report.release = Some(info.release.clone());
                run.report.to = Some(slot_release(info));
                run.report.reason = Some(format!("release {expected} already serves"));
                return Ok(());
            }
        }
        let previous = live.other();
        let previous_info =
            observed
                .slots
                .get(previous)
                .cloned()
                .ok_or_else(|| Error::NoPreviousSlot {
                    stack: self.config.stack.clone(),
                    slot: previous,
                })?;
        // The way back is to the release that served before. A release the history
        // says never passed its gates here (a deploy killed or refused before its
        // switch) never served: there is nothing to go back to while the live one runs.
        let mut gate_first = false;
        match expected_release {
            Some(expected) => {
                if previous_info.release != expected {
                    return Err(Error::ReleaseNotFound {
                        stack: self.config.stack.clone(),
                        release: expected.to_owned(),
                    });
                }
            }
            None => {
                let passed = self.passed_here(run, &previous_info.release).await;
                let live_running = live_info.as_ref().filter(|i| i.is_running());
                match Fallback::of(passed, &previous_info, live_info.as_ref()) {
                    Fallback::Proven => {}
                    Fallback::NeverPassed if live_running.is_some() => {
                        let live_release = live_running.map(|i| i.release.clone());
                        run.report.result = OperationResult::Unchanged;
                        run.report.to = live_running.map(slot_release);
                        run.report.release.clone_from(&live_release);
                        run.report.reason = Some(format!(
                            "release {} still serves from slot {live}; slot {previous} holds release {}, which never passed its gates in this stack (an interrupted or refused deploy), so there is nothing to roll back to: traffic stays where it is",
                            live_release.unwrap_or_default(),
                            previous_info.release
                        ));
                        return Ok(());
                    }
                    Fallback::NeverPassed | Fallback::Unproven => {
                        gate_first = true;
                        self.warn(
                            run,
                            format!(
                                "slot {previous} ({}) is not known to have passed its gates in this stack: it is gated before traffic moves to it",
                                previous_info.release
                            ),
                        );
                    }
                }
            }
        }
        // Code and database go back together: a live release whose deploy updated the
        // database is not switched away from by code alone.
        if let Some(live) = live_info
            .as_ref()
            .filter(|i| i.release != previous_info.release)
        {
            match self
                .recorder
                .database_change(&self.config.stack, self.config.environment, &live.release)
                .await
            {
                Ok(Some(change)) if !code_only => {
                    run.report.from = Some(slot_release(live));
                    run.report.release = Some(live.release.clone());
                    let restore = change.backup_id.as_deref().map_or_else(
                        || "restore the database as it was before that deploy".to_owned(),
                        |id| format!("restore its pre-deploy backup {id} (odoo-rollback restore --backup {id}) and then roll back"),
                    );
                    self.refuse(
                        run,
                        Stage::Database,
                        format!(
                            "release {} updated the database when it was deployed ({}): release {} would run on that schema; {restore}, or roll back with --code-only if the older code is known to work on it",
                            live.release,
                            change.modules.join(", "),
                            previous_info.release
                        ),
                    );
                    return Ok(());
                }
                Ok(Some(change)) => self.warn(
                    run,
                    format!(
                        "--code-only: release {} runs on the database release {} updated ({})",
                        previous_info.release,
                        live.release,
                        change.modules.join(", ")
                    ),
                ),
                Ok(None) => {}
                Err(e) => self.warn(
                    run,
                    format!(
                        "cannot tell from the history whether release {} changed the database: {e}",
                        live.release
                    ),
                ),
            }
        }
        run.report.from = live_info.as_ref().map(slot_release);
        run.report.to = Some(slot_release(&previous_info));
        run.report.release = Some(previous_info.release.clone());
        if let Some(entry) = run.journal.as_mut() {
            entry.from = Some(live);
            entry.to = Some(previous);
            entry.release = Some(previous_info.release.clone());
            entry.image = Some(previous_info.image.clone());
        }
        let stack = &self.config.stack;
        let warm = previous_info.is_running();
        let target = if warm {
            // Warm: one readiness probe, it may have died since.
            let ready =
                self.ready_options(self.config.slots.ready_timeout.min(Duration::from_secs(10)));
            self.docker
                .wait_slot_ready(stack, previous, &self.config.slots.health_path, &ready)
                .await?
        } else {
            self.step(
                run,
                Step::Starting,
                format!(
                    "starting stopped slot {previous} ({})",
                    previous_info.release
                ),
            )
            .await;
            let started = Instant::now();
            let ready = self.ready_options(self.config.slots.ready_timeout);
            let result = async {
                self.docker.start(stack, previous).await?;
                self.docker
                    .wait_slot_ready(stack, previous, &self.config.slots.health_path, &ready)
                    .await
            }
            .await;
            run.report.timings.container_start = started.elapsed();
            let info = match result {
                Ok(info) => info,
                Err(Error::SlotFailedToStart { reason, logs, .. }) => {
                    run.report.slot_logs = Some(log_excerpt(&logs));
                    self.refuse(
                        run,
                        Stage::Start,
                        format!("slot {previous} did not start: {reason}"),
                    );
                    self.stop_quietly(run, previous).await;
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            self.step(run, Step::Started, format!("slot {previous} answers"))
                .await;
            info
        };
        // A slot started cold, or one not known to have passed, is gated first.
        if !warm || gate_first {
            match &self.config.pre_switch {
                Some(plan) => {
                    self.step(
                        run,
                        Step::PreGates,
                        format!("pre-switch gates against slot {previous}"),
                    )
                    .await;
                    let urls = PlanUrls::of(
                        Some(&target),
                        live_info.as_ref().filter(|i| i.is_running()),
                    );
                    if let Some(reason) =
                        self.run_plan(run, "pre_switch", plan, &urls, None).await?
                    {
                        self.refuse(run, Stage::PreGates, reason);
                        if !warm {
                            self.stop_quietly(run, previous).await;
                        }
                        return Ok(());
                    }
                }
                None if gate_first => self.warn(
                    run,
                    format!("no pre-switch gates configured: slot {previous} was only checked for readiness"),
                ),
                None => {}
            }
        }
        let backend = self.backend(&target)?;
        self.step(
            run,
            Step::Switching,
            format!("all new requests to slot {previous} ({})", target.release),
        )
        .await;
        let started = Instant::now();
        self.switch.switch_to(&backend).await?;
        run.report.timings.switch += started.elapsed();
        run.report.serving = Some(previous);
        self.step(run, Step::Switched, "the proxy accepted the switch")
            .await;
        if self.config.deploy.verify_release {
            let verify_started = Instant::now();
            let report = verify_release(
                self.config.proxy.url.as_str(),
                &Expected::new(&target.release, target.slot),
                &self.verify_options(),
            )
            .await?;
            run.report.timings.switch_visible =
                verify_started.duration_since(started) + report.latency;
            self.step(
                run,
                Step::Verified,
                format!(
                    "requests through the proxy reach release {}",
                    target.release
                ),
            )
            .await;
        }
        if record {
            if let Some(bad) = &live_info {
                self.record_outcome(run, &bad.release, DeployStatus::RolledBack, None, None)
                    .await;
                self.step(run, Step::Recorded, "rollback recorded").await;
            }
        }
        if stop {
            if let Some(bad) = live_info.filter(ContainerInfo::is_running) {
                self.drain(run, bad.slot).await;
                match self
                    .docker
                    .stop(stack, bad.slot, self.config.slots.stop_grace)
                    .await
                {
                    Ok(_) => run.report.stopped = Some(bad.slot),
                    Err(e) => self.warn(run, format!("stopping slot {}: {e}", bad.slot)),
                }
            }
        }
        Ok(())
    }

    /// Sends all traffic to the other slot (or `request.to`), which must be running:
    /// pre-switch gates against it (unless skipped), switch, verification and
    /// post-switch gates through the proxy (switching back on failure), then a drain of
    /// the slot that served.
    ///
    /// # Errors
    /// [`Error::LockHeld`]; [`Error::SlotNotRunning`]; configuration errors of the
    /// plans; infrastructure failures.
    pub async fn switch_traffic(&self, request: &SwitchRequest) -> Result<OperationReport> {
        let (lock, mut run) = self.start_locked(Operation::Switch, None).await?;
        let result = self.switch_locked(&mut run, request).await;
        self.finish_locked(lock, run, result).await
    }

    pub(super) async fn switch_locked(&self, run: &mut Run, request: &SwitchRequest) -> Result<()> {
        let mut observed = self.observe().await?;
        self.step(run, Step::Observed, "read docker and the proxy")
            .await;
        let live = self.reconcile(run, &mut observed).await?;
        run.report.serving = Some(live);
        let target = request.to.unwrap_or(live.other());
        let live_info = observed.slots.get(live).cloned();
        run.report.from = live_info.as_ref().map(slot_release);
        if target == live {
            run.report.result = OperationResult::Unchanged;
            run.report.to = run.report.from.clone();
            run.report.reason = Some(format!("slot {live} already serves"));
            return Ok(());
        }
        let info = observed
            .slots
            .get(target)
            .filter(|i| i.is_running())
            .cloned()
            .ok_or_else(|| Error::SlotNotRunning {
                stack: self.config.stack.clone(),
                slot: target,
            })?;
        run.report.to = Some(slot_release(&info));
        run.report.release = Some(info.release.clone());
        let ready = self.ready_options(Duration::from_secs(10));
        let info = self
            .docker
            .wait_slot_ready(
                &self.config.stack,
                target,
                &self.config.slots.health_path,
                &ready,
            )
            .await?;
        let live_running = live_info.filter(ContainerInfo::is_running);
        let urls = PlanUrls::of(Some(&info), live_running.as_ref());
        if let (Some(plan), false) = (&self.config.pre_switch, request.skip_gates) {
            self.step(
                run,
                Step::PreGates,
                format!("pre-switch gates against slot {target}"),
            )
            .await;
            if let Some(reason) = self.run_plan(run, "pre_switch", plan, &urls, None).await? {
                self.refuse(run, Stage::PreGates, reason);
                return Ok(());
            }
        }
        match self
            .bring_in(run, &info, live_running.as_ref(), &[100], &urls, false)
            .await?
        {
            Verdict::Passed => {}
            Verdict::Failed { stage, reason } => {
                run.report.result = if live_running.is_some() {
                    OperationResult::RolledBack
                } else {
                    OperationResult::Refused
                };
                run.report.stage = Some(stage);
                run.report.reason = Some(reason);
                return Ok(());
            }
        }
        if let Some(old) = &live_running {
            self.drain(run, old.slot).await;
        }
        self.record_outcome(run, &info.release, DeployStatus::Succeeded, None, None)
            .await;
        Ok(())
    }

    /// Stops the slot that takes no traffic (the old release kept for a rollback).
    ///
    /// # Errors
    /// [`Error::LockHeld`]; infrastructure failures.
    pub async fn stop_idle(&self) -> Result<OperationReport> {
        let (lock, mut run) = self.start_locked(Operation::StopIdle, None).await?;
        let result = self.stop_idle_locked(&mut run).await;
        self.finish_locked(lock, run, result).await
    }

    pub(super) async fn stop_idle_locked(&self, run: &mut Run) -> Result<()> {
        let mut observed = self.observe().await?;
        self.step(run, Step::Observed, "read docker and the proxy")
            .await;
        let live = self.reconcile(run, &mut observed).await?;
        run.report.serving = Some(live);
        let idle = live.other();
        match observed.slots.get(idle).filter(|i| i.is_running()) {
            Some(info) => {
                run.report.from = Some(slot_release(info));
                self.docker
                    .stop(&self.config.stack, idle, self.config.slots.stop_grace)
                    .await?;
                run.report.stopped = Some(idle);
                self.step(run, Step::Retired, format!("slot {idle} stopped"))
                    .await;
            }
            None => {
                run.report.result = OperationResult::Unchanged;
                run.report.reason = Some(format!("slot {idle} does not run"));
            }
        }
        Ok(())
    }

    /// Takes the lock and opens the journal entry of an operation.
    pub(super) async fn start_locked(
        &self,
        operation: Operation,
        release: Option<&str>,
    ) -> Result<(StackLock, Run)> {
        let lock = self.lock(operation)?;
        let mut run = self.begin(operation, release, None, &lock).await;
        self.step(&mut run, Step::Locked, "stack locked").await;
        self.close_unfinished(&mut run).await;
        Ok((lock, run))
    }

    /// Closes the journal entry and releases the lock.
    pub(super) async fn finish_locked(
        &self,
        lock: StackLock,
        mut run: Run,
        result: Result<()>,
    ) -> Result<OperationReport> {
        if let Err(e) = result {
            self.close_journal(&mut run, Some(&e)).await;
            return Err(e);
        }
        self.close_journal(&mut run, None).await;
        drop(lock);
        Ok(self.done(run).await)
    }
}

#[async_trait]
impl Deployer for Orchestrator {
    /// Puts `release` back in service: when the slot not serving runs it, traffic is
    /// switched back to it (warm); when that slot is stopped, it is started and gated
    /// first. Nothing is recorded (the caller records the rollback).
    ///
    /// Its errors are boxed [`ClassifiedError`](deploy_core::ClassifiedError)s around
    /// this crate's [`Error`], so that the caller finds their class with
    /// [`deploy_core::class_of`].
    async fn redeploy(
        &self,
        release: &ReleaseRef,
    ) -> std::result::Result<RedeployReport, BoxError> {
        self.redeploy_release(release)
            .await
            .map_err(|e| Box::new(deploy_core::ClassifiedError::classified(e)) as BoxError)
    }
}

impl Orchestrator {
    async fn redeploy_release(&self, release: &ReleaseRef) -> Result<RedeployReport> {
        if release.stack != self.config.stack {
            return Err(Error::ReleaseNotFound {
                stack: release.stack.clone(),
                release: release.release.clone(),
            });
        }
        let (lock, mut run) = self
            .start_locked(Operation::Redeploy, Some(&release.release))
            .await?;
        let result = self
            .rollback_locked(&mut run, false, false, Some(&release.release), false)
            .await;
        let report = self.finish_locked(lock, run, result).await?;
        if !report.result.is_success() {
            return Err(Error::Refused {
                release: release.release.clone(),
                reason: report
                    .reason
                    .clone()
                    .unwrap_or_else(|| "its gates did not pass".to_owned()),
            });
        }
        let method = if report.result == OperationResult::Unchanged {
            RedeployMethod::AlreadyLive
        } else if report.timings.container_start.is_zero() {
            RedeployMethod::WarmSwitch
        } else {
            RedeployMethod::Started
        };
        let details = serde_json::to_value(&report).unwrap_or(serde_json::Value::Null);
        Ok(RedeployReport::new(release.release.as_str(), method).with_details(details))
    }
}
