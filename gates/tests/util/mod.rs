//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use deploy_core::{EventSink, RecordingSink};
use deploy_gates::testing::{ScriptedGate, Step};
use deploy_gates::{GateEntry, Report, RunSettings, Runner};

/// A scripted gate and the entry that runs it.
pub fn scripted(
    name: &str,
    script: impl IntoIterator<Item = Step>,
) -> (Arc<ScriptedGate>, GateEntry) {
    let gate = Arc::new(ScriptedGate::new(name, script));
    let entry = GateEntry::new(gate.clone());
    (gate, entry)
}

/// Builds a runner (panicking on configuration errors) and runs it with a recording sink.
pub async fn run(settings: RunSettings, entries: Vec<GateEntry>) -> (Report, Arc<RecordingSink>) {
    let runner = Runner::new(settings, entries).expect("valid runner");
    let events = Arc::new(RecordingSink::new());
    let sink: Arc<dyn EventSink> = events.clone();
    let report = runner.run(sink).await;
    (report, events)
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn wait_until(interval: u64, stable_for: u64, timeout: u64) -> RunSettings {
    RunSettings::default()
        .with_mode(deploy_gates::Mode::WaitUntil)
        .with_interval(secs(interval))
        .with_stable_for(secs(stable_for))
        .with_timeout(secs(timeout))
}
