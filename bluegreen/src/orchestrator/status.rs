//! `status`: the stack as it is, read from Docker, the proxy and requests through it,
//! with what the lock file and the journal say about operations under way or killed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{describe_sample, slot_release, Fallback, Orchestrator, SlotRelease};
use crate::config::backend_of;
use crate::journal::JournalEntry;
use crate::lock::{LockState, StackLock};
use crate::slot::{ContainerInfo, ContainerStatus, Slot, SlotState};
use crate::switch::{AdminState, ProxyKind, TrafficState};
use crate::verify::{
    judge_marking, sample_releases, Expected, Marking, NO_RELEASE, RELEASE_HEADER, SLOT_HEADER,
};

/// Whether the stack serves as it should.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StackHealth {
    /// Exactly one slot takes all traffic, its container runs and answers, and requests
    /// through the proxy reach its release.
    Ok,
    /// Something in [`StatusReport::problems`] needs a repairing deploy or rollback, or
    /// a person.
    Degraded,
}

/// What a slot is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SlotRole {
    /// It takes all traffic.
    Live,
    /// It takes part of the traffic (a canary, or an interrupted switch).
    Partial,
    /// It runs and takes no traffic (the previous release kept for a rollback, or a new
    /// one not switched to yet).
    Idle,
    /// Its container exists and does not run.
    Stopped,
    /// It has no container.
    Absent,
}

/// A container, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContainerSummary {
    /// The container name.
    pub name: String,
    /// The first 12 characters of its id.
    pub id: String,
    /// Docker's lifecycle state.
    pub status: ContainerStatus,
    /// Its release label.
    pub release: String,
    /// Its image.
    pub image: String,
    /// Where it publishes HTTP on the host.
    pub http: Option<SocketAddr>,
    /// When Docker created it.
    pub created: Option<DateTime<Utc>>,
}

/// One slot, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SlotStatus {
    /// The slot.
    pub slot: Slot,
    /// What it does.
    pub role: SlotRole,
    /// Its share of new requests in the proxy (`None` when the proxy could not be read).
    pub share: Option<u8>,
    /// Its administrative state in the proxy.
    pub admin: Option<AdminState>,
    /// The address the proxy sends its traffic to.
    pub proxy_address: Option<SocketAddr>,
    /// Its container.
    pub container: Option<ContainerSummary>,
    /// Whether its readiness path answers 200 on its published port (`None`: not
    /// running).
    pub answers: Option<bool>,
}

/// The stack as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StatusReport {
    /// The stack.
    pub stack: String,
    /// The proxy kind.
    pub proxy: ProxyKind,
    /// The proxy's public URL.
    pub proxy_url: String,
    /// Whether it serves as it should.
    pub health: StackHealth,
    /// The slot taking all traffic, if one does.
    pub serving: Option<Slot>,
    /// That slot's release.
    pub live_release: Option<String>,
    /// Both slots, blue first.
    pub slots: Vec<SlotStatus>,
    /// Release labels of responses to a few requests through the proxy, most frequent
    /// first.
    pub through_proxy: Vec<(String, u64)>,
    /// The lock: free, held by a running operation, or left by a killed one.
    pub lock: Option<LockState>,
    /// The journal's last entry.
    pub last_operation: Option<JournalEntry>,
    /// Whether that operation was interrupted (its process died before it finished).
    pub interrupted: bool,
    /// What keeps the stack from serving as it should.
    pub problems: Vec<String>,
    /// What a person should know (operations under way or interrupted, an idle slot
    /// still running).
    pub notes: Vec<String>,
    /// Whether the proxy is in maintenance (answering 503 itself); `None` when it
    /// cannot tell (Traefik has none; a configuration written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<bool>,
}

impl Orchestrator {
    /// The slot taking all traffic and its release, read from Docker and the proxy
    /// (`None` when no slot takes all of it, or it has no container). Quick, changes
    /// nothing, takes no lock: a caller labels a pre-deploy backup with it.
    ///
    /// # Errors
    /// [`Error::DockerUnavailable`](crate::Error::DockerUnavailable) and the like when
    /// Docker cannot be read; the proxy's errors when its routing cannot be read.
    pub async fn live_release(&self) -> crate::Result<Option<SlotRelease>> {
        let observed = self.observe().await?;
        Ok(observed
            .traffic
            .serving()
            .and_then(|slot| observed.slots.get(slot))
            .map(slot_release))
    }

    /// Whether the verification after the next switch can tell who answers through the
    /// proxy: a few requests through it, then the proxy's configuration file. With
    /// `Some`, what to tell the operator, with the fix; whether it is a problem (the
    /// verification cannot pass) or a note.
    pub async fn check_marking(&self) -> (Marking, Option<String>) {
        let config = self.config();
        let sample = sample_releases(
            config.proxy.url.as_str(),
            &config.slots.health_path,
            3,
            Duration::from_secs(2),
        )
        .await
        .unwrap_or_default();
        let marking = judge_marking(&sample, config.proxy.configured_marking());
        let message = self.marking_message(&marking);
        (marking, message)
    }

    /// What to say about `marking` (nothing when the proxy marks the slot, or the
    /// verification is off).
    fn marking_message(&self, marking: &Marking) -> Option<String> {
        let config = self.config();
        if !config.deploy.verify_release {
            return None;
        }
        let fix = config.proxy.marking_fix();
        match marking {
            Marking::Slot => None,
            Marking::ReleaseOnly => Some(format!(
                "responses through the proxy carry the image's {RELEASE_HEADER} but no {SLOT_HEADER} from the proxy: the next switch is verified only if the new image sends {RELEASE_HEADER} too; to verify any image, {fix}"
            )),
            Marking::Unmarked => Some(format!(
                "responses through the proxy carry neither {SLOT_HEADER} (set by the proxy) nor {RELEASE_HEADER} (set by the image): the verification after the next switch cannot pass, and the deploy would be rolled back; fix: {fix}, or set verify_release = false in [deploy]"
            )),
            Marking::Unknown(why) => Some(format!(
                "cannot tell whether responses through the proxy say which slot answered ({why}); the generated configurations set {SLOT_HEADER}; name HAProxy's configuration file as [proxy.haproxy] config to have it checked"
            )),
        }
    }

    /// Reads the stack's state: containers, the proxy's routing, a few requests through
    /// the proxy, each running slot's readiness, the lock and the journal. Changes
    /// nothing and takes no lock; what cannot be read is reported as a problem.
    pub async fn status(&self) -> StatusReport {
        let config = self.config();
        let stack = config.stack.clone();
        let path = config.slots.health_path.clone();
        let (slots, traffic, sample) = tokio::join!(
            self.docker.state(&stack),
            self.switch.active(),
            sample_releases(config.proxy.url.as_str(), &path, 10, Duration::from_secs(2)),
        );
        let mut problems = Vec::new();
        let mut notes = Vec::new();
        let slots = slots
            .map_err(|e| problems.push(format!("cannot read docker: {e}")))
            .ok();
        let traffic = traffic
            .map_err(|e| problems.push(format!("cannot read the proxy's routing: {e}")))
            .ok();
        let through_proxy = sample
            .map_err(|e| problems.push(format!("cannot send requests through the proxy: {e}")))
            .unwrap_or_default();
        let answers = match &slots {
            Some(slots) => probe_slots(slots, &path).await,
            None => BTreeMap::new(),
        };
        let serving = traffic.as_ref().and_then(TrafficState::serving);
        let live = serving.and_then(|s| slots.as_ref().and_then(|st| st.get(s)));
        let live_release = live.map(|i| i.release.clone());

        if let Some(traffic) = &traffic {
            match serving {
                None => problems.push(format!(
                    "traffic is split ({}): no slot takes all of it; a deploy or rollback puts it on one",
                    Slot::ALL
                        .iter()
                        .map(|s| format!("{s} {} %", traffic.share(*s)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Some(slot) => match (slots.as_ref(), live) {
                    (None, _) => {}
                    (Some(_), None) => problems.push(format!(
                        "slot {slot} takes all traffic but has no container"
                    )),
                    (Some(_), Some(info)) if !info.is_running() => problems.push(format!(
                        "slot {slot} takes all traffic but its container is {:?}",
                        info.status
                    )),
                    (Some(_), Some(info)) => {
                        if answers.get(&slot) == Some(&false) {
                            problems.push(format!(
                                "slot {slot} ({}) does not answer on {path}",
                                info.release
                            ));
                        }
                        if let Some(want) = backend_of(info) {
                            let have = traffic.backend(slot).and_then(|b| b.http);
                            if have != Some(want.http) {
                                problems.push(format!(
                                    "the proxy sends slot {slot}'s traffic to {}, its container listens on {}",
                                    have.map_or_else(|| "nowhere".to_owned(), |a| a.to_string()),
                                    want.http
                                ));
                            }
                        }
                        let expected = Expected::new(&info.release, slot);
                        match judge_sample(&through_proxy, &expected) {
                            SampleVerdict::Matches | SampleVerdict::Empty => {}
                            // With verification on, the marking note below says it
                            // with the fix.
                            SampleVerdict::Unmarked if config.deploy.verify_release => {}
                            SampleVerdict::Unmarked => notes.push(format!(
                                "responses through the proxy carry neither {SLOT_HEADER} nor {RELEASE_HEADER}, so which release answers cannot be verified (the routing and slot {slot}'s own answer were checked)"
                            )),
                            SampleVerdict::Other => problems.push(format!(
                                "requests through the proxy reach {}, not only release {} of slot {slot}",
                                describe_sample(&through_proxy),
                                info.release
                            )),
                        }
                    }
                },
            }
        }

        if let Some(note) = self.marking_message(&judge_marking(
            &through_proxy,
            config.proxy.configured_marking(),
        )) {
            notes.push(note);
        }

        let lock = match StackLock::inspect(&config.state_dir, &stack) {
            Ok(lock) => Some(lock),
            Err(e) => {
                notes.push(format!("cannot read the lock file: {e}"));
                None
            }
        };
        match &lock {
            Some(LockState::Held { holder }) => {
                notes.push(format!("an operation is under way: {holder}"));
            }
            Some(LockState::Stale { holder }) => notes.push(format!(
                "the lock was left by {holder}, which no longer runs; the next operation takes it over"
            )),
            _ => {}
        }
        let maintenance = self.switch.maintenance().await.ok();
        if maintenance == Some(true) {
            if matches!(&lock, Some(LockState::Held { .. })) {
                notes.push(
                    "the proxy is in maintenance (503) for the operation under way".to_owned(),
                );
            } else {
                problems.push(
                    "the proxy is in maintenance: every request gets its 503 page; a deploy left it on because the database could not be served (see its report), or was killed in its update: repair the database, then `odoo-bluegreen maintenance off` (a deploy of a release also repairs and ends it)".to_owned(),
                );
            }
        }
        let last_operation = self.journal().read().await.unwrap_or_else(|e| {
            notes.push(format!("cannot read the journal: {e}"));
            None
        });
        let mut interrupted = false;
        if let Some(entry) = &last_operation {
            if !entry.finished {
                let holder_alive =
                    matches!(&lock, Some(LockState::Held { holder }) if holder.pid == entry.pid);
                if holder_alive {
                    notes.push(format!(
                        "{} of {} under way, at step {}",
                        entry.operation,
                        entry.release.as_deref().unwrap_or("the stack"),
                        entry.step
                    ));
                } else {
                    interrupted = true;
                    if entry.stage.as_deref() == Some("update") {
                        notes.push(format!(
                            "the {} was killed during its module update: database may be partly updated (modules left 'to upgrade'); the next deploy restores {} before it updates again",
                            entry.operation,
                            entry.backup_id.as_deref().map_or_else(
                                || "nothing (there was no pre-deploy backup): restore one by hand".to_owned(),
                                |id| format!("its pre-deploy backup {id}")
                            )
                        ));
                    }
                    notes.push(format!(
                        "the {} of {} started {} by {} (pid {}) was interrupted at step {}; the next deploy or rollback goes on from the state above",
                        entry.operation,
                        entry.release.as_deref().unwrap_or("the stack"),
                        entry.started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        entry.operator,
                        entry.pid,
                        entry.step
                    ));
                }
            }
        }

        // What `rollback` would do with the slot that does not serve, from the history.
        let idle_fallback = match (serving, slots.as_ref()) {
            (Some(live_slot), Some(state)) => match state.get(live_slot.other()) {
                Some(idle) => {
                    let passed = match self
                        .recorder
                        .has_passed(&stack, config.environment, &idle.release)
                        .await
                    {
                        Ok(passed) => passed,
                        Err(e) => {
                            notes.push(format!("cannot read the history: {e}"));
                            None
                        }
                    };
                    Some(Fallback::of(passed, idle, state.get(live_slot)))
                }
                None => None,
            },
            _ => None,
        };
        let live_label = live_release.clone().unwrap_or_default();
        let slot_statuses: Vec<SlotStatus> = Slot::ALL
            .into_iter()
            .map(|slot| {
                let info = slots.as_ref().and_then(|s| s.get(slot));
                let backend = traffic.as_ref().and_then(|t| t.backend(slot));
                let share = traffic.as_ref().map(|t| t.share(slot));
                let role = match (info, share) {
                    (None, _) => SlotRole::Absent,
                    (Some(i), _) if !i.is_running() => SlotRole::Stopped,
                    (Some(_), Some(100)) => SlotRole::Live,
                    (Some(_), Some(s)) if s > 0 => SlotRole::Partial,
                    (Some(_), _) => SlotRole::Idle,
                };
                if let (Some(i), Some(fallback), Some(live_slot)) = (info, idle_fallback, serving) {
                    if slot != live_slot {
                        if let Some(note) = idle_note(slot, i, role, fallback, &live_label) {
                            notes.push(note);
                        }
                    }
                }
                SlotStatus {
                    slot,
                    role,
                    share,
                    admin: backend.map(|b| b.admin),
                    proxy_address: backend.and_then(|b| b.http),
                    container: info.map(summary),
                    answers: answers.get(&slot).copied(),
                }
            })
            .collect();

        StatusReport {
            stack,
            proxy: config.proxy.kind(),
            proxy_url: config.proxy.url.to_string(),
            health: if problems.is_empty() {
                StackHealth::Ok
            } else {
                StackHealth::Degraded
            },
            serving,
            live_release,
            slots: slot_statuses,
            through_proxy,
            lock,
            last_operation,
            interrupted,
            problems,
            notes,
            maintenance,
        }
    }

    /// Turns the proxy's maintenance on or off by hand (`odoo-bluegreen maintenance`),
    /// under the stack's lock: a deploy under way keeps its own window. Returns the
    /// state read back from the proxy. Turning it off does not start a stopped slot or
    /// check the database: `status` first.
    ///
    /// # Errors
    /// [`Error::LockHeld`](crate::Error::LockHeld) while an operation runs; the proxy's
    /// [`Error::MaintenanceUnsupported`](crate::Error::MaintenanceUnsupported) or its
    /// failure.
    pub async fn set_maintenance(&self, on: bool) -> crate::Result<bool> {
        let _lock = StackLock::acquire(
            &self.config().state_dir,
            &self.config().stack,
            &crate::lock::LockHolder::current(&self.operator, "maintenance"),
        )?;
        self.switch.set_maintenance(on).await?;
        tracing::warn!(stack = %self.config().stack, on, operator = %self.operator, "maintenance set by hand");
        self.switch.maintenance().await
    }
}

/// What `status` says of the slot that does not serve: what `rollback` would do with it.
fn idle_note(
    slot: Slot,
    info: &ContainerInfo,
    role: SlotRole,
    fallback: Fallback,
    live: &str,
) -> Option<String> {
    let release = &info.release;
    match (fallback, role) {
        (Fallback::Proven, SlotRole::Idle) => Some(format!(
            "slot {slot} ({release}) runs without traffic: `rollback` switches back to it at once; `stop-idle` stops it"
        )),
        (Fallback::Proven, SlotRole::Stopped) => Some(format!(
            "slot {slot} ({release}) is stopped: `rollback` starts it and runs the pre-switch gates before switching to it"
        )),
        (Fallback::NeverPassed, SlotRole::Idle | SlotRole::Stopped) => Some(format!(
            "slot {slot} holds release {release}, which never passed its gates in this stack (an interrupted or refused deploy): `rollback` leaves traffic on {live}; the next `deploy` replaces it{}",
            if role == SlotRole::Idle { "; `stop-idle` stops it" } else { "" }
        )),
        (Fallback::Unproven, SlotRole::Idle | SlotRole::Stopped) => Some(format!(
            "slot {slot} ({release}) is newer than the live container and no history says it passed its gates: `rollback` runs the pre-switch gates against it before switching to it"
        )),
        _ => None,
    }
}

/// What the responses sampled through the proxy say about the live release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SampleVerdict {
    /// Every response carried the live release.
    Matches,
    /// No response was sampled.
    Empty,
    /// Every response succeeded without a release header: a stock image, which cannot
    /// be told apart, and is no fault.
    Unmarked,
    /// Some responses carried another release, failed, or came unmarked beside marked
    /// ones (something else answers too).
    Other,
}

fn judge_sample(sample: &[(String, u64)], live: &Expected) -> SampleVerdict {
    if sample.is_empty() {
        SampleVerdict::Empty
    } else if sample.iter().all(|(label, _)| live.matches(label)) {
        SampleVerdict::Matches
    } else if sample.iter().all(|(label, _)| label == NO_RELEASE) {
        SampleVerdict::Unmarked
    } else {
        SampleVerdict::Other
    }
}

fn summary(info: &ContainerInfo) -> ContainerSummary {
    ContainerSummary {
        name: info.name.clone(),
        id: info.id.chars().take(12).collect(),
        status: info.status,
        release: info.release.clone(),
        image: info.image.clone(),
        http: info.http,
        created: info.created,
    }
}

/// Whether each running slot answers 200 on `path` (one request, 2 s at most).
async fn probe_slots(slots: &SlotState, path: &str) -> BTreeMap<Slot, bool> {
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
    else {
        return BTreeMap::new();
    };
    let probe = |info: Option<&ContainerInfo>| {
        let url = info
            .filter(|i| i.is_running())
            .and_then(|i| i.http)
            .map(|addr| format!("http://{addr}{path}"));
        let client = client.clone();
        async move {
            match url {
                Some(url) => Some(
                    client
                        .get(&url)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().as_u16() == 200),
                ),
                None => None,
            }
        }
    };
    let (blue, green) = tokio::join!(probe(slots.get(Slot::Blue)), probe(slots.get(Slot::Green)));
    let mut out = BTreeMap::new();
    if let Some(ok) = blue {
        out.insert(Slot::Blue, ok);
    }
    if let Some(ok) = green {
        out.insert(Slot::Green, ok);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
        pairs.iter().map(|(l, n)| ((*l).to_owned(), *n)).collect()
    }

    #[test]
    fn a_stock_image_without_the_release_header_is_no_problem() {
        let r2 = Expected::new("r2", Slot::Green);
        assert_eq!(
            judge_sample(&sample(&[("r2", 10)]), &r2),
            SampleVerdict::Matches
        );
        assert_eq!(
            judge_sample(&sample(&[("r2", 4), ("slot green", 6)]), &r2),
            SampleVerdict::Matches,
            "the proxy's slot header stands in for the image's release"
        );
        assert_eq!(judge_sample(&[], &r2), SampleVerdict::Empty);
        assert_eq!(
            judge_sample(&sample(&[(NO_RELEASE, 10)]), &r2),
            SampleVerdict::Unmarked
        );
        for bad in [
            &[("r1", 3), ("r2", 7)][..],
            &[("<error: HTTP 503>", 10)][..],
            &[("r2", 5), (NO_RELEASE, 5)][..],
            &[("slot blue", 10)][..],
        ] {
            assert_eq!(
                judge_sample(&sample(bad), &r2),
                SampleVerdict::Other,
                "{bad:?}"
            );
        }
    }
}
