//! Reading the stack's state and repairing what an interrupted operation left.

use super::*;

impl Orchestrator {
    pub(super) async fn observe(&self) -> Result<Observed> {
        let (slots, traffic) =
            tokio::join!(self.docker.state(&self.config.stack), self.switch.active());
        Ok(Observed {
            slots: slots?,
            traffic: traffic?,
        })
    }

    /// Decides which slot is live from the proxy's routing, repairing what an
    /// interrupted operation may have left, so that exactly one slot takes all traffic.
    pub(super) async fn reconcile(&self, run: &mut Run, observed: &mut Observed) -> Result<Slot> {
        let live = match observed.traffic.serving() {
            Some(slot) => slot,
            None => {
                let keeper = choose_keeper(observed);
                let backend = self.backend_for_slot(observed, keeper)?;
                let shares = Slot::ALL
                    .iter()
                    .map(|s| format!("{s} {} %", observed.traffic.share(*s)))
                    .collect::<Vec<_>>()
                    .join(", ");
                self.switch.switch_to(&backend).await?;
                observed.traffic = self.switch.active().await?;
                let release = observed
                    .slots
                    .get(keeper)
                    .map_or_else(|| "no container".to_owned(), |i| i.release.clone());
                self.repaired(
                    run,
                    format!(
                        "traffic was split ({shares}), as an interrupted canary or switch leaves it: all of it goes to slot {keeper} ({release}), the one that served before"
                    ),
                )
                .await;
                run.split_repaired = true;
                keeper
            }
        };
        let Some(info) = observed.slots.get(live).filter(|i| i.is_running()).cloned() else {
            return Ok(live);
        };
        if let Some(want) = backend_of(&info) {
            let have = observed.traffic.backend(live).cloned();
            let have = have.as_ref();
            let http_ok = have.and_then(|b| b.http) == Some(want.http);
            let realtime_ok = have
                .and_then(|b| b.realtime)
                .is_none_or(|r| r == want.realtime);
            if !(http_ok && realtime_ok) {
                self.switch.switch_to(&want).await?;
                observed.traffic = self.switch.active().await?;
                self.repaired(
                    run,
                    format!(
                        "the proxy sent slot {live}'s traffic to {}, not to its container at {}: re-pointed",
                        have.and_then(|b| b.http).map_or_else(|| "nowhere".to_owned(), |a| a.to_string()),
                        want.http
                    ),
                )
                .await;
            }
        }
        if self.config.deploy.verify_release {
            self.check_through_proxy(run, &info).await;
        }
        Ok(live)
    }

    /// Requests through the proxy must reach the live slot's release; when they reach
    /// another one, the proxy did not load what its switch wrote (nginx killed between
    /// writing and reloading): reapply.
    pub(super) async fn check_through_proxy(&self, run: &mut Run, live: &ContainerInfo) {
        let url = self.config.proxy.url.as_str();
        let path = &self.config.slots.health_path;
        let sample = match sample_releases(url, path, 5, Duration::from_secs(2)).await {
            Ok(sample) => sample,
            Err(e) => {
                self.warn(
                    run,
                    format!("cannot sample releases through the proxy: {e}"),
                );
                return;
            }
        };
        let expected = Expected::new(&live.release, live.slot);
        let wrong = sample
            .iter()
            .any(|(label, _)| !expected.matches(label) && !label.starts_with('<'));
        if !wrong {
            return;
        }
        let seen = describe_sample(&sample);
        if let Err(e) = self.switch.reapply().await {
            self.warn(
                run,
                format!("requests through the proxy reach {seen}, not slot {}'s release {}; reapplying failed: {e}", live.slot, live.release),
            );
            return;
        }
        self.repaired(
            run,
            format!(
                "requests through the proxy reached {seen} while it was set to send them to slot {} ({}): the proxy applied its configuration again",
                live.slot, live.release
            ),
        )
        .await;
    }

    pub(super) async fn repaired(&self, run: &mut Run, message: String) {
        warn!(stack = %self.config.stack, "{message}");
        self.events.emit(
            &Event::warning(run.operation.as_str(), message.clone()).with_field("step", "repaired"),
        );
        run.report.repairs.push(message);
        self.step(run, Step::Repaired, "state repaired").await;
    }

    /// The address of `slot` for the proxy: its running container's, else its fixed
    /// ports, else what the proxy has.
    pub(super) fn backend_for_slot(&self, observed: &Observed, slot: Slot) -> Result<Backend> {
        if let Some(backend) = observed
            .slots
            .get(slot)
            .filter(|i| i.is_running())
            .and_then(backend_of)
        {
            return Ok(backend);
        }
        if let Some(backend) = self.config.configured_backend(slot) {
            return Ok(backend);
        }
        let known = observed.traffic.backend(slot);
        match known.and_then(|b| b.http) {
            Some(http) => Ok(Backend::new(
                slot,
                http,
                known.and_then(|b| b.realtime).unwrap_or(http),
            )),
            None => Err(Error::Config {
                field: format!("slots.{slot}.http_port"),
                reason: format!("slot {slot} has no running container, no fixed port and no address in the proxy"),
            }),
        }
    }

    pub(super) fn backend(&self, info: &ContainerInfo) -> Result<Backend> {
        backend_of(info).ok_or_else(|| Error::UnexpectedContainer {
            container: info.name.clone(),
            field: "NetworkSettings.Ports",
            problem: "has no published HTTP port on 127.0.0.1".to_owned(),
        })
    }
}

/// The slot to keep when traffic is split or goes nowhere: the older of two running
/// containers (a canary or a switch always brings in the newer one), else the one
/// running, else the one with the larger share, else blue.
pub(super) fn choose_keeper(observed: &Observed) -> Slot {
    let running: Vec<&ContainerInfo> = Slot::ALL
        .iter()
        .filter_map(|s| observed.slots.get(*s).filter(|i| i.is_running()))
        .collect();
    match running.as_slice() {
        [one] => one.slot,
        [a, b] => match (a.created, b.created) {
            (Some(ca), Some(cb)) if ca != cb => {
                if ca < cb {
                    a.slot
                } else {
                    b.slot
                }
            }
            _ => by_share(&observed.traffic),
        },
        _ => by_share(&observed.traffic),
    }
}

pub(super) fn by_share(traffic: &TrafficState) -> Slot {
    if traffic.share(Slot::Green) > traffic.share(Slot::Blue) {
        Slot::Green
    } else {
        Slot::Blue
    }
}
