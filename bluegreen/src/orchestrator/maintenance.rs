//! The maintenance window a deploy offers its stages ([`deploy_core::Maintenance`]): the
//! proxy answering 503 and the release that served stopped, for a module update that
//! must not run beside serving workers and crons. The stage opens it; the deploy closes
//! it, after its switch or after putting the database and the old release back.

use std::sync::Mutex;

use deploy_core::{ClassifiedError, DatabaseRestorer, Event, EventSink, Maintenance};

use crate::switch::MAINTENANCE_HEADER;

use super::*;

/// How long the deploy waits for the proxy to answer with its maintenance page.
const SHOWN_WITHIN: Duration = Duration::from_secs(5);

/// One deploy's maintenance window.
pub(super) struct MaintenanceWindow {
    switch: Arc<dyn TrafficSwitch>,
    docker: Arc<dyn SlotBackend>,
    events: Arc<dyn EventSink>,
    stack: String,
    proxy_url: String,
    /// The container serving when the deploy began: stopped when the window opens.
    serving: Option<ContainerInfo>,
    stop_grace: Duration,
    canary: bool,
    state: Mutex<WindowState>,
}

#[derive(Default)]
struct WindowState {
    /// When the current opening began.
    opened_at: Option<Instant>,
    /// The time of the earlier openings.
    earlier: Duration,
    opened: u32,
    reason: Option<String>,
    stopped: Option<Slot>,
    restore: Option<(Arc<dyn DatabaseRestorer>, String)>,
    restored: Option<String>,
    held: Option<String>,
    /// A stage entered it (an adopted window is open without that).
    entered: bool,
}

impl MaintenanceWindow {
    pub(super) fn new(
        orchestrator: &Orchestrator,
        serving: Option<ContainerInfo>,
        canary: bool,
    ) -> Self {
        Self {
            switch: orchestrator.switch.clone(),
            docker: orchestrator.docker.clone(),
            events: orchestrator.events.clone(),
            stack: orchestrator.config.stack.clone(),
            proxy_url: orchestrator.config.proxy.url.to_string(),
            serving,
            stop_grace: orchestrator.config.slots.stop_grace,
            canary,
            state: Mutex::new(WindowState::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, WindowState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes over a maintenance the proxy was left in (a deploy killed in its window, or
    /// `maintenance on` by hand): this deploy closes it as its own, and starts the
    /// release that served when it does not end up serving itself.
    pub(super) fn adopt(&self) {
        let mut state = self.state();
        state.reason = Some("maintenance found on when the deploy began".to_owned());
        state.opened_at = Some(Instant::now());
        state.opened += 1;
        state.stopped = self
            .serving
            .as_ref()
            .filter(|s| !s.is_running())
            .map(|s| s.slot);
    }

    /// Whether the database must be put back before the release that served runs again.
    pub(super) fn must_restore(&self) -> bool {
        self.state().restore.is_some()
    }

    /// The container that served before, when the window stopped it.
    pub(super) fn stopped(&self) -> Option<ContainerInfo> {
        let stopped = self.state().stopped;
        self.serving.clone().filter(|s| Some(s.slot) == stopped)
    }

    /// Why the window must stay open, if a stage said so.
    pub(super) fn held(&self) -> Option<String> {
        self.state().held.clone()
    }

    /// The record for the report, once a stage opened the window.
    pub(super) fn record(&self) -> Option<MaintenanceRecord> {
        let state = self.state();
        let reason = state.reason.clone()?;
        Some(MaintenanceRecord {
            reason,
            window: state.earlier + state.opened_at.map_or(Duration::ZERO, |at| at.elapsed()),
            opened: state.opened,
            stopped: state.stopped,
            restored: state.restored.clone(),
            held: state.held.clone(),
        })
    }

    /// Puts the proxy into maintenance and checks through it that it shows.
    async fn proxy_on(&self) -> Result<()> {
        self.switch.set_maintenance(true).await?;
        if let Err(e) = self.shown().await {
            if let Err(off) = self.switch.set_maintenance(false).await {
                warn!(error = %off, "leaving maintenance after it did not show");
            }
            return Err(e);
        }
        let mut state = self.state();
        state.opened_at = Some(Instant::now());
        state.opened += 1;
        Ok(())
    }

    /// Waits until a request through the proxy gets the maintenance page.
    async fn shown(&self) -> Result<()> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| Error::ProxyState {
                proxy: "maintenance",
                problem: format!("no HTTP client: {e}"),
            })?;
        let deadline = Instant::now() + SHOWN_WITHIN;
        let mut last = String::from("no answer");
        while Instant::now() < deadline {
            match client.get(&self.proxy_url).send().await {
                Ok(response)
                    if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE
                        && response.headers().contains_key(MAINTENANCE_HEADER) =>
                {
                    return Ok(());
                }
                Ok(response) => last = format!("HTTP {}", response.status().as_u16()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Error::ProxyState {
            proxy: self.switch.kind().as_str(),
            problem: format!(
                "maintenance is set but {} does not answer with the maintenance page within {} s (last answer: {last})",
                self.proxy_url,
                SHOWN_WITHIN.as_secs()
            ),
        })
    }

    /// Takes the proxy out of maintenance (the routing it had comes back).
    pub(super) async fn close(&self) -> Result<()> {
        if self.state().opened_at.is_none() {
            return Ok(());
        }
        self.switch.set_maintenance(false).await?;
        let mut state = self.state();
        if let Some(at) = state.opened_at.take() {
            state.earlier += at.elapsed();
        }
        let window = state.earlier;
        drop(state);
        info!(stack = %self.stack, window_ms = millis(window), "maintenance left");
        self.events.emit(&Event::finished(
            "maintenance",
            format!("maintenance left after {:.1} s", window.as_secs_f64()),
        ));
        Ok(())
    }

    /// Opens the window again (after a failure past the switch), without stopping
    /// anything: the caller stops the failed release.
    pub(super) async fn reopen(&self) -> Result<()> {
        if self.state().opened_at.is_some() {
            return Ok(());
        }
        self.proxy_on().await
    }

    /// Restores the database registered with [`Maintenance::restore_with`], once.
    pub(super) async fn restore(&self) -> std::result::Result<(), String> {
        let Some((restorer, backup)) = self.state().restore.take() else {
            return Ok(());
        };
        self.events.emit(&Event::warning(
            "maintenance",
            format!("restoring the pre-deploy backup {backup} before the release that served runs again"),
        ));
        match restorer.restore(&backup).await {
            Ok(summary) => {
                self.state().restored = Some(summary);
                Ok(())
            }
            Err(e) => {
                let reason = format!(
                    "restoring the pre-deploy backup {backup} failed ({}): the database holds the new release's update, which the old release must not serve",
                    deploy_core::error_chain(&e)
                );
                self.state().held = Some(reason.clone());
                Err(reason)
            }
        }
    }
}

fn classify(error: Error) -> ClassifiedError {
    if error.is_config() {
        ClassifiedError::config(error)
    } else {
        ClassifiedError::infrastructure(error)
    }
}

#[async_trait]
impl Maintenance for MaintenanceWindow {
    async fn enter(&self, reason: &str) -> std::result::Result<(), ClassifiedError> {
        let adopted = {
            let state = self.state();
            if state.entered {
                return Ok(());
            }
            state.opened_at.is_some()
        };
        if self.canary {
            return Err(ClassifiedError::config(
                "a canary keeps the release that served beside the new one, and an update in maintenance stops it: deploy without --canary, or use [update] strategy = \"online\"",
            ));
        }
        if !adopted {
            self.events.emit(&Event::started(
                "maintenance",
                format!("maintenance for the {reason}: the proxy answers 503"),
            ));
            self.proxy_on().await.map_err(classify)?;
        }
        {
            let mut state = self.state();
            state.reason = Some(reason.to_owned());
            state.entered = true;
        }
        if let Some(serving) = self.serving.clone().filter(ContainerInfo::is_running) {
            // Its workers and crons must not touch the database while it changes.
            if let Err(e) = self
                .docker
                .stop(&self.stack, serving.slot, self.stop_grace)
                .await
            {
                let _ = self.close().await;
                return Err(ClassifiedError::infrastructure(format!(
                    "stopping slot {} ({}) for maintenance: {}",
                    serving.slot,
                    serving.release,
                    deploy_core::error_chain(&e)
                )));
            }
            self.state().stopped = Some(serving.slot);
            self.events.emit(&Event::progress(
                "maintenance",
                format!(
                    "slot {} ({}) stopped: nothing serves until the new release does",
                    serving.slot, serving.release
                ),
            ));
        }
        Ok(())
    }

    fn restore_with(&self, restorer: Arc<dyn DatabaseRestorer>, backup_id: &str) {
        self.state().restore = Some((restorer, backup_id.to_owned()));
    }

    fn hold(&self, reason: &str) {
        self.state().held = Some(reason.to_owned());
    }

    fn is_open(&self) -> bool {
        self.state().opened_at.is_some()
    }
}

impl Orchestrator {
    /// After the switch to the new release: leaves maintenance, so that the checks
    /// through the proxy reach it. Nothing when no window is open.
    pub(super) async fn leave_maintenance(&self, run: &mut Run) -> Result<()> {
        let Some(window) = run.maintenance.clone() else {
            return Ok(());
        };
        if !window.is_open() {
            return Ok(());
        }
        window.close().await?;
        run.report.maintenance = window.record();
        Ok(())
    }

    /// When the deploy ends with the window still open (the update, the new slot's
    /// start or its gates failed before the switch): puts the database back when the
    /// update changed it, starts the release that served again, and leaves maintenance.
    /// A database that cannot be put back keeps the window open and fails the deploy.
    pub(super) async fn end_maintenance(&self, run: &mut Run) -> Result<()> {
        let Some(window) = run.maintenance.clone() else {
            return Ok(());
        };
        let result = self.reinstate(run, &window).await;
        run.report.maintenance = window.record();
        result
    }

    /// Puts the database and the release that served back, then leaves maintenance.
    async fn reinstate(&self, run: &mut Run, window: &MaintenanceWindow) -> Result<()> {
        if !window.is_open() {
            return Ok(());
        }
        if let Err(reason) = window.restore().await {
            return Err(self.hold_maintenance(run, reason));
        }
        if let Some(reason) = window.held() {
            return Err(self.hold_maintenance(run, reason));
        }
        if let Some(old) = window.stopped() {
            self.docker.start(&self.config.stack, old.slot).await?;
            let ready = self.ready_options(self.config.slots.ready_timeout);
            self.docker
                .wait_slot_ready(
                    &self.config.stack,
                    old.slot,
                    &self.config.slots.health_path,
                    &ready,
                )
                .await?;
            self.switch.switch_to(&self.backend(&old)?).await?;
            run.report.serving = Some(old.slot);
            self.step(
                run,
                Step::SwitchedBack,
                format!("slot {} ({}) runs again", old.slot, old.release),
            )
            .await;
        }
        window.close().await
    }

    fn hold_maintenance(&self, run: &mut Run, reason: String) -> Error {
        let message = format!(
            "maintenance stays on: {reason}; restore a backup taken before this deploy (odoo-rollback restore), then `odoo-bluegreen maintenance off`"
        );
        self.warn(run, message.clone());
        Error::MaintenanceHeld { reason: message }
    }

    /// After the new release took the traffic and then failed (its verification, its
    /// post-switch gates, an after-switch stage) following an update in maintenance:
    /// the old release cannot serve the updated database, so the way back is through
    /// maintenance again: the proxy answers 503, the failed slot stops, the pre-deploy
    /// backup is restored, the old release starts and takes the traffic.
    pub(super) async fn back_through_maintenance(
        &self,
        run: &mut Run,
        failed: Slot,
        cleanup: bool,
    ) -> Result<()> {
        let Some(window) = run.maintenance.clone() else {
            return Ok(());
        };
        self.warn(
            run,
            "the new release updated the database in maintenance: going back through maintenance (503) to restore the pre-deploy backup before the old release serves".to_owned(),
        );
        window.reopen().await?;
        if cleanup {
            self.cleanup(run, failed).await;
        } else if let Err(e) = self
            .docker
            .stop(&self.config.stack, failed, self.config.slots.stop_grace)
            .await
        {
            self.warn(run, format!("stopping slot {failed}: {e}"));
        }
        let result = self.reinstate(run, &window).await;
        run.report.maintenance = window.record();
        result
    }
}
