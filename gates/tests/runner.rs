//! Runner semantics with scripted gates, on tokio's paused clock: every duration below
//! is virtual time, advanced automatically when all tasks wait; nothing measures the
//! wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deploy_core::{EventKind, NullSink};
use deploy_gates::testing::Step;
use deploy_gates::{
    Error, Extensions, FailureReason, Gate, GateContext, GateEntry, GateStatus, Mode, Result,
    RunResult, RunSettings, Runner, Scope, Verdict,
};
use tokio::time::Instant;
use util::{run, scripted, secs, wait_until};

// ---------------------------------------------------------------- concurrency

#[tokio::test(start_paused = true)]
async fn gates_run_concurrently() {
    let start = Instant::now();
    let mut gates = Vec::new();
    let mut entries = Vec::new();
    for i in 0..8 {
        let (gate, entry) = scripted(&format!("g{i}"), [Step::pass().after(secs(1))]);
        gates.push(gate);
        entries.push(entry);
    }
    let (report, _) = run(RunSettings::default(), entries).await;

    assert_eq!(report.result, RunResult::Passed);
    // Eight one-second checks took one second of (virtual) time, not eight.
    assert_eq!(start.elapsed(), secs(1));
    assert_eq!(report.elapsed_ms, 1000);
    for gate in &gates {
        let calls = gate.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].started, start, "every gate started at once");
        assert_eq!(calls[0].finished, Some(start + secs(1)));
    }
    for gate in &report.gates {
        assert_eq!(gate.last.as_ref().unwrap().duration_ms, 1000);
        assert_eq!(gate.max_duration_ms, 1000);
    }
}

// ---------------------------------------------------------------- per-gate timeout

#[tokio::test(start_paused = true)]
async fn a_check_past_its_timeout_is_an_error_not_a_fail() {
    let start = Instant::now();
    let (slow, slow_entry) = scripted("slow", [Step::pass().after(secs(60))]);
    let (_, fast_entry) = scripted("fast", [Step::pass().after(secs(1))]);
    let (report, _) = run(
        RunSettings::default(),
        vec![slow_entry.with_timeout(secs(2)), fast_entry],
    )
    .await;

    assert_eq!(start.elapsed(), secs(2));
    let slow_report = report.gate("slow").unwrap();
    let last = slow_report.last.as_ref().unwrap();
    assert_eq!(last.status, GateStatus::Error);
    assert!(
        last.message.contains("timed out after 2s"),
        "{}",
        last.message
    );
    assert_eq!(last.duration_ms, 2000);
    assert_eq!(slow_report.counts.error, 1);
    assert_eq!(slow_report.counts.fail, 0);
    assert_eq!(slow_report.timeout_ms, 2000);
    assert_eq!(slow.finished_count(), 0, "the check was cancelled");
    assert!(report.gate("fast").unwrap().passed());
    // One error is within the default consecutive_error_limit (4): not a failure, but
    // not a pass either.
    assert_eq!(report.result, RunResult::Inconclusive);
    assert!(report.failures.is_empty());
    assert_eq!(report.not_passed, ["slow"]);
}

#[tokio::test(start_paused = true)]
async fn the_runs_gate_timeout_is_the_default() {
    let (_, entry) = scripted("hangs", [Step::hang()]);
    let settings = RunSettings::default().with_gate_timeout(secs(3));
    let start = Instant::now();
    let (report, _) = run(settings, vec![entry.with_consecutive_error_limit(0)]).await;
    assert_eq!(start.elapsed(), secs(3));
    assert_eq!(report.result, RunResult::Failed);
    assert_eq!(
        report.failures[0].reason,
        FailureReason::ConsecutiveErrorLimit
    );
}

#[tokio::test(start_paused = true)]
async fn the_context_carries_name_target_attempt_and_deadline() {
    type Seen = (String, Option<String>, u32, Duration);
    struct Probe(std::sync::Mutex<Vec<Seen>>);
    #[async_trait]
    impl Gate for Probe {
        fn name(&self) -> &str {
            "probe"
        }
        async fn check(&self, cx: &GateContext) -> Result<Verdict> {
            self.0.lock().unwrap().push((
                cx.gate().to_owned(),
                cx.target().map(str::to_owned),
                cx.attempt(),
                cx.remaining(),
            ));
            Ok(Verdict::pass("ok"))
        }
    }
    let probe = Arc::new(Probe(std::sync::Mutex::new(Vec::new())));
    let entry = GateEntry::new(probe.clone())
        .with_target("green")
        .with_timeout(secs(7));
    let (report, _) = run(wait_until(10, 10, 60), vec![entry]).await;
    assert_eq!(report.result, RunResult::Passed);
    let seen = probe.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            ("probe".to_owned(), Some("green".to_owned()), 1, secs(7)),
            ("probe".to_owned(), Some("green".to_owned()), 2, secs(7)),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_capped_by_the_runs_timeout() {
    struct Remaining(std::sync::Mutex<Option<Duration>>);
    #[async_trait]
    impl Gate for Remaining {
        fn name(&self) -> &str {
            "remaining"
        }
        async fn check(&self, cx: &GateContext) -> Result<Verdict> {
            *self.0.lock().unwrap() = Some(cx.remaining());
            Ok(Verdict::pass("ok"))
        }
    }
    let gate = Arc::new(Remaining(std::sync::Mutex::new(None)));
    let settings = RunSettings::default().with_timeout(secs(4));
    let (_, _) = run(
        settings,
        vec![GateEntry::new(gate.clone()).with_timeout(secs(30))],
    )
    .await;
    assert_eq!(*gate.0.lock().unwrap(), Some(secs(4)));
}

// ---------------------------------------------------------------- wait-until, stable_for

#[tokio::test(start_paused = true)]
async fn wait_until_a_steady_gate_passes_after_stable_for() {
    let start = Instant::now();
    let (gate, entry) = scripted("steady", [Step::pass()]);
    let (report, events) = run(wait_until(10, 30, 600), vec![entry]).await;

    assert_eq!(report.result, RunResult::Passed);
    // All-pass rounds at 0s, 10s, 20s, 30s: stable for 30s at the fourth.
    assert_eq!(report.rounds, 4);
    assert_eq!(report.stable_ms, 30_000);
    assert_eq!(start.elapsed(), secs(30));
    let starts: Vec<Duration> = gate.calls().iter().map(|c| c.started - start).collect();
    assert_eq!(starts, [secs(0), secs(10), secs(20), secs(30)]);
    assert!(events
        .events()
        .iter()
        .any(|e| e.subject == "gates" && e.message.starts_with("all gates pass; stable for")));
}

#[tokio::test(start_paused = true)]
async fn wait_until_without_stable_for_passes_at_the_first_all_pass_round() {
    let (_, a) = scripted("a", [Step::fail(), Step::pass()]);
    let (_, b) = scripted("b", [Step::pass(), Step::inconclusive(), Step::pass()]);
    let (report, _) = run(wait_until(5, 0, 600), vec![a.with_failure_limit(10), b]).await;
    assert_eq!(report.result, RunResult::Passed);
    // Round 1: a fails. Round 2: b inconclusive. Round 3: both pass.
    assert_eq!(report.rounds, 3);
    assert_eq!(report.elapsed_ms, 10_000);
    assert_eq!(report.stable_ms, 0);
}

#[tokio::test(start_paused = true)]
async fn a_flapping_gate_never_passes() {
    let flapping = (0..100).map(|i| {
        if i % 2 == 0 {
            Step::pass()
        } else {
            Step::fail()
        }
    });
    let (gate, entry) = scripted("flappy", flapping);
    let (report, _) = run(
        wait_until(10, 20, 120),
        vec![entry.with_failure_limit(1000)],
    )
    .await;

    assert_eq!(report.result, RunResult::TimedOut);
    assert!(!report.passed());
    let counts = report.gate("flappy").unwrap().counts;
    assert!(counts.pass >= 6 && counts.fail >= 5, "{counts:?}");
    // Rounds at 0, 10, ..., 110; the next one (120) would start at the timeout.
    assert_eq!(report.rounds, 12);
    assert_eq!(gate.call_count(), 12);
}

#[tokio::test(start_paused = true)]
async fn a_flap_resets_the_stability_window() {
    let script = [
        Step::pass(), // 0s: window opens
        Step::pass(), // 10s
        Step::fail(), // 20s: window closes before reaching 20s of stability
        Step::pass(), // 30s: window opens again
        Step::pass(), // 40s
        Step::pass(), // 50s: stable for 20s
    ];
    let (_, entry) = scripted("blip", script);
    let start = Instant::now();
    let (report, _) = run(wait_until(10, 20, 600), vec![entry.with_failure_limit(5)]).await;
    assert_eq!(report.result, RunResult::Passed);
    assert_eq!(report.rounds, 6);
    assert_eq!(start.elapsed(), secs(50));
    assert_eq!(report.stable_ms, 20_000);
    assert_eq!(report.gate("blip").unwrap().counts.fail, 1);
}

#[tokio::test(start_paused = true)]
async fn a_round_longer_than_the_interval_is_followed_at_once() {
    let (gate, entry) = scripted(
        "slow",
        [Step::fail().after(secs(15)), Step::pass().after(secs(15))],
    );
    let start = Instant::now();
    let (report, _) = run(wait_until(10, 0, 600), vec![entry.with_failure_limit(1)]).await;
    assert_eq!(report.result, RunResult::Passed);
    let starts: Vec<Duration> = gate.calls().iter().map(|c| c.started - start).collect();
    assert_eq!(starts, [secs(0), secs(15)]);
}

// ---------------------------------------------------------------- failure_limit

#[tokio::test(start_paused = true)]
async fn the_default_failure_limit_fails_at_the_first_fail() {
    let (_, entry) = scripted("bad", [Step::fail().message("500 from /web/health")]);
    let (report, events) = run(wait_until(10, 0, 600), vec![entry]).await;
    assert_eq!(report.result, RunResult::Failed);
    assert_eq!(report.rounds, 1);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].gate, "bad");
    assert_eq!(report.failures[0].reason, FailureReason::FailureLimit);
    assert_eq!(report.failures[0].message, "500 from /web/health");
    assert!(events.events().iter().any(|e| e.kind == EventKind::Warning
        && e.subject == "gate bad"
        && e.message.contains("failure_limit 0")));
}

#[tokio::test(start_paused = true)]
async fn failure_limit_counts_fails_over_the_run() {
    // Fails are counted in total, not in a row: passes in between do not reset them.
    let script = [
        Step::fail(),
        Step::pass(),
        Step::fail(),
        Step::pass(),
        Step::fail(),
    ];
    let (_, entry) = scripted("sometimes", script);
    let (report, _) = run(wait_until(10, 60, 600), vec![entry.with_failure_limit(2)]).await;
    assert_eq!(report.result, RunResult::Failed);
    assert_eq!(report.rounds, 5, "the third fail exceeds the limit of 2");
    let gate = report.gate("sometimes").unwrap();
    assert_eq!(gate.counts.fail, 3);
    assert_eq!(gate.counts.pass, 2);
    assert_eq!(report.failures[0].reason, FailureReason::FailureLimit);
}

#[tokio::test(start_paused = true)]
async fn a_tolerated_fail_in_once_mode_is_inconclusive() {
    let (_, entry) = scripted("tolerated", [Step::fail()]);
    let (report, _) = run(RunSettings::default(), vec![entry.with_failure_limit(1)]).await;
    assert_eq!(report.result, RunResult::Inconclusive);
    assert!(report.failures.is_empty());
}

#[tokio::test(start_paused = true)]
async fn failing_round_finishes_before_the_run_ends_without_fail_fast() {
    let (_, bad) = scripted("bad", [Step::fail().after(secs(1))]);
    let (slow, slow_entry) = scripted("slow", [Step::pass().after(secs(5))]);
    let start = Instant::now();
    let (report, _) = run(RunSettings::default(), vec![bad, slow_entry]).await;
    assert_eq!(report.result, RunResult::Failed);
    assert_eq!(start.elapsed(), secs(5));
    assert_eq!(slow.finished_count(), 1);
    assert!(report.gate("slow").unwrap().passed());
}

// ---------------------------------------------------------------- consecutive_error_limit

#[tokio::test(start_paused = true)]
async fn consecutive_errors_reset_on_any_verdict() {
    let script = [
        Step::error(),
        Step::error(),
        Step::fail(), // a verdict: resets the streak (and is tolerated by failure_limit)
        Step::error(),
        Step::error(),
        Step::error(), // third in a row > 2
    ];
    let (_, entry) = scripted("shaky", script);
    let (report, _) = run(
        wait_until(10, 0, 600),
        vec![entry.with_consecutive_error_limit(2).with_failure_limit(5)],
    )
    .await;
    assert_eq!(report.result, RunResult::Failed);
    assert_eq!(report.rounds, 6);
    let gate = report.gate("shaky").unwrap();
    assert_eq!(gate.counts.error, 5);
    assert_eq!(gate.consecutive_errors, 3);
    assert_eq!(
        report.failures[0].reason,
        FailureReason::ConsecutiveErrorLimit
    );
}

#[tokio::test(start_paused = true)]
async fn the_default_consecutive_error_limit_is_four() {
    let (_, entry) = scripted("down", [Step::error()]);
    let (report, _) = run(wait_until(10, 0, 600), vec![entry]).await;
    assert_eq!(report.result, RunResult::Failed);
    assert_eq!(
        report.rounds, 5,
        "four errors in a row are tolerated, the fifth is not"
    );
    assert_eq!(report.gate("down").unwrap().consecutive_error_limit, 4);
}

#[tokio::test(start_paused = true)]
async fn errors_then_pass_is_a_pass() {
    let (_, entry) = scripted("booting", [Step::error(), Step::error(), Step::pass()]);
    let (report, _) = run(wait_until(10, 0, 600), vec![entry]).await;
    assert_eq!(report.result, RunResult::Passed);
    assert_eq!(report.gate("booting").unwrap().consecutive_errors, 0);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_check_is_an_error() {
    struct Panics;
    #[async_trait]
    impl Gate for Panics {
        fn name(&self) -> &str {
            "panics"
        }
        async fn check(&self, _cx: &GateContext) -> Result<Verdict> {
            panic!("boom");
        }
    }
    let (report, _) = run(
        RunSettings::default(),
        vec![GateEntry::new(Arc::new(Panics)).with_consecutive_error_limit(0)],
    )
    .await;
    assert_eq!(report.result, RunResult::Failed);
    let last = report.gate("panics").unwrap().last.clone().unwrap();
    assert_eq!(last.status, GateStatus::Error);
    assert!(last.message.contains("panicked"), "{}", last.message);
}

// ---------------------------------------------------------------- inconclusive

#[tokio::test(start_paused = true)]
async fn inconclusive_is_not_a_pass_in_once_mode() {
    let (_, a) = scripted("a", [Step::pass()]);
    let (_, b) = scripted("b", [Step::inconclusive().message("too few samples")]);
    let (report, _) = run(RunSettings::default(), vec![a, b]).await;
    assert_eq!(report.result, RunResult::Inconclusive);
    assert!(!report.passed());
    assert!(report.failures.is_empty());
    assert_eq!(report.not_passed, ["b"]);
}

#[tokio::test(start_paused = true)]
async fn inconclusive_never_passes_wait_until() {
    let (_, entry) = scripted("unsure", [Step::inconclusive()]);
    let (report, _) = run(wait_until(10, 0, 60), vec![entry]).await;
    assert_eq!(report.result, RunResult::TimedOut);
    let gate = report.gate("unsure").unwrap();
    assert_eq!(gate.counts.inconclusive, report.rounds);
    assert_eq!(gate.counts.fail, 0);
    assert!(
        report.failures.is_empty(),
        "inconclusive never fails the plan by itself"
    );
}

#[tokio::test(start_paused = true)]
async fn warnings_pass() {
    let (_, entry) = scripted("slowish", [Step::warn().value("p95_ms", 2500.0)]);
    let (report, events) = run(RunSettings::default(), vec![entry]).await;
    assert_eq!(report.result, RunResult::Passed);
    assert_eq!(report.warnings().count(), 1);
    let gate = report.gate("slowish").unwrap();
    assert_eq!(gate.last.as_ref().unwrap().values["p95_ms"], 2500.0);
    assert!(events
        .events()
        .iter()
        .any(|e| e.kind == EventKind::Warning && e.subject == "gate slowish"));
}

// ---------------------------------------------------------------- dependencies

#[tokio::test(start_paused = true)]
async fn a_gate_is_skipped_when_its_dependency_fails() {
    let (_, auth) = scripted("auth", [Step::fail().message("access denied")]);
    let (smoke, smoke_entry) = scripted("smoke", [Step::pass()]);
    let (report, _) = run(
        RunSettings::default(),
        vec![auth, smoke_entry.depends_on(["auth"])],
    )
    .await;
    assert_eq!(report.result, RunResult::Failed);
    assert_eq!(smoke.call_count(), 0, "smoke never ran");
    let last = report.gate("smoke").unwrap().last.clone().unwrap();
    assert_eq!(last.status, GateStatus::Skipped);
    assert_eq!(
        last.message,
        "skipped: dependency `auth` did not pass (fail)"
    );
    assert_eq!(report.gate("smoke").unwrap().counts.skipped, 1);
    assert_eq!(report.not_passed, ["auth", "smoke"]);
    // Only auth failed the plan; smoke is reported, not blamed.
    assert_eq!(report.failures.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn skips_cascade_and_errors_block_dependents() {
    let (_, a) = scripted("a", [Step::error()]);
    let (b_gate, b) = scripted("b", [Step::pass()]);
    let (c_gate, c) = scripted("c", [Step::pass()]);
    let (report, _) = run(
        RunSettings::default(),
        vec![a, b.depends_on(["a"]), c.depends_on(["b"])],
    )
    .await;
    assert_eq!(report.result, RunResult::Inconclusive);
    assert_eq!(b_gate.call_count() + c_gate.call_count(), 0);
    let c_last = report.gate("c").unwrap().last.clone().unwrap();
    assert_eq!(c_last.status, GateStatus::Skipped);
    assert_eq!(
        c_last.message,
        "skipped: dependency `b` did not pass (skipped)"
    );
}

#[tokio::test(start_paused = true)]
async fn dependents_start_when_their_dependencies_pass() {
    let start = Instant::now();
    let (_, auth) = scripted("auth", [Step::pass().after(secs(2))]);
    let (_, modules) = scripted("modules", [Step::warn().after(secs(1))]);
    let (smoke, smoke_entry) = scripted("smoke", [Step::pass().after(secs(1))]);
    let (free, free_entry) = scripted("free", [Step::pass()]);
    let (report, _) = run(
        RunSettings::default(),
        vec![
            smoke_entry.depends_on(["auth", "modules"]),
            auth,
            modules.depends_on(["auth"]),
            free_entry,
        ],
    )
    .await;
    assert_eq!(report.result, RunResult::Passed);
    // auth 0→2s, modules 2→3s (a warning still lets dependents run), smoke 3→4s.
    assert_eq!(smoke.calls()[0].started - start, secs(3));
    assert_eq!(start.elapsed(), secs(4));
    assert_eq!(
        free.calls()[0].started,
        start,
        "gates without dependencies start at once"
    );
    // The report keeps the order the gates were given in.
    let names: Vec<&str> = report.gates.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["smoke", "auth", "modules", "free"]);
}

#[tokio::test(start_paused = true)]
async fn dependencies_are_evaluated_per_round() {
    let (_, auth) = scripted("auth", [Step::fail(), Step::pass()]);
    let (smoke, smoke_entry) = scripted("smoke", [Step::pass()]);
    let (report, _) = run(
        wait_until(10, 0, 600),
        vec![auth.with_failure_limit(3), smoke_entry.depends_on(["auth"])],
    )
    .await;
    assert_eq!(report.result, RunResult::Passed);
    assert_eq!(report.rounds, 2);
    let calls = smoke.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].attempt, 2, "skipped in round 1, ran in round 2");
    let counts = report.gate("smoke").unwrap().counts;
    assert_eq!((counts.skipped, counts.pass), (1, 1));
}

// ---------------------------------------------------------------- fail-fast

#[tokio::test(start_paused = true)]
async fn fail_fast_cancels_the_rest_of_the_round() {
    let start = Instant::now();
    let (_, bad) = scripted("bad", [Step::fail().after(secs(1))]);
    let (slow, slow_entry) = scripted("slow", [Step::pass().after(secs(10))]);
    let (after, after_entry) = scripted("after-slow", [Step::pass()]);
    let (report, events) = run(
        RunSettings::default().with_fail_fast(true),
        vec![bad, slow_entry, after_entry.depends_on(["slow"])],
    )
    .await;
    assert_eq!(report.result, RunResult::Failed);
    assert_eq!(start.elapsed(), secs(1));
    assert_eq!(slow.call_count(), 1);
    assert_eq!(slow.finished_count(), 0, "the running check was dropped");
    assert_eq!(after.call_count(), 0, "the waiting gate never started");
    for name in ["slow", "after-slow"] {
        let gate = report.gate(name).unwrap();
        let last = gate.last.clone().unwrap();
        assert_eq!(last.status, GateStatus::Cancelled);
        assert_eq!(last.message, "cancelled: fail_fast after gate `bad` failed");
        assert_eq!(gate.counts.cancelled, 1);
        assert_eq!(gate.counts.checks(), 0);
    }
    assert_eq!(
        report
            .gate("slow")
            .unwrap()
            .last
            .as_ref()
            .unwrap()
            .duration_ms,
        1000
    );
    assert!(events.events().iter().any(|e| e.subject == "gate slow"
        && e.field("outcome")
            .is_some_and(|o| o.to_string() == "cancelled")));
}

#[tokio::test(start_paused = true)]
async fn fail_fast_in_wait_until_goes_on_with_the_next_round() {
    let (_, flaky) = scripted("flaky", [Step::fail().after(secs(1)), Step::pass()]);
    let (slow, slow_entry) = scripted("slow", [Step::pass().after(secs(5))]);
    let start = Instant::now();
    let (report, _) = run(
        wait_until(10, 0, 600).with_fail_fast(true),
        vec![flaky.with_failure_limit(1), slow_entry],
    )
    .await;
    assert_eq!(report.result, RunResult::Passed);
    assert_eq!(report.rounds, 2);
    assert_eq!(start.elapsed(), secs(15));
    let counts = report.gate("slow").unwrap().counts;
    assert_eq!((counts.cancelled, counts.pass), (1, 1));
    assert_eq!(slow.finished_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn without_fail_fast_errors_do_not_cancel() {
    let (_, err) = scripted("err", [Step::error()]);
    let (slow, slow_entry) = scripted("slow", [Step::pass().after(secs(3))]);
    let (report, _) = run(
        RunSettings::default().with_fail_fast(true),
        vec![err, slow_entry],
    )
    .await;
    // An error within its limit is not a failure: fail_fast does not fire.
    assert_eq!(slow.finished_count(), 1);
    assert_eq!(report.result, RunResult::Inconclusive);
}

// ---------------------------------------------------------------- overall timeout

#[tokio::test(start_paused = true)]
async fn the_runs_timeout_cancels_a_running_round() {
    let (gate, entry) = scripted("hangs", [Step::hang()]);
    let start = Instant::now();
    let (report, _) = run(
        RunSettings::default().with_timeout(secs(5)),
        vec![entry.with_timeout(secs(60))],
    )
    .await;
    assert_eq!(report.result, RunResult::TimedOut);
    assert_eq!(start.elapsed(), secs(5));
    assert_eq!(report.elapsed_ms, 5000);
    let last = report.gate("hangs").unwrap().last.clone().unwrap();
    assert_eq!(last.status, GateStatus::Cancelled);
    assert_eq!(last.message, "cancelled: the run's timeout was reached");
    assert_eq!(gate.finished_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn wait_until_gives_up_at_the_timeout() {
    let (_, entry) = scripted("never", [Step::fail()]);
    let start = Instant::now();
    let (report, events) = run(wait_until(10, 0, 45), vec![entry.with_failure_limit(100)]).await;
    assert_eq!(report.result, RunResult::TimedOut);
    // Rounds at 0, 10, 20, 30, 40; the next (50s) is past the 45s timeout.
    assert_eq!(report.rounds, 5);
    assert_eq!(start.elapsed(), secs(40));
    assert_eq!(report.not_passed, ["never"]);
    let finished = events.events().into_iter().last().unwrap();
    assert_eq!(finished.subject, "gates");
    assert_eq!(finished.kind, EventKind::Finished);
    assert_eq!(finished.message, "timed-out");
}

#[tokio::test(start_paused = true)]
async fn a_failure_wins_over_the_timeout() {
    let (_, bad) = scripted("bad", [Step::fail()]);
    let (_, hang) = scripted("hang", [Step::hang()]);
    let (report, _) = run(
        RunSettings::default().with_timeout(secs(5)),
        vec![bad, hang],
    )
    .await;
    assert_eq!(report.result, RunResult::Failed);
}

// ---------------------------------------------------------------- events, extensions, reuse

#[tokio::test(start_paused = true)]
async fn the_runner_reports_progress_through_the_sink() {
    let (_, a) = scripted("a", [Step::pass().after(secs(1)).value("elapsed_ms", 12.0)]);
    let (report, events) = run(wait_until(10, 0, 60), vec![a.with_target("green")]).await;
    assert!(report.passed());
    let events = events.events();
    let summary: Vec<(EventKind, &str)> = events
        .iter()
        .map(|e| (e.kind, e.subject.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (EventKind::Started, "gates"),
            (EventKind::Progress, "gates"),
            (EventKind::Started, "gate a"),
            (EventKind::Finished, "gate a"),
            (EventKind::Finished, "gates"),
        ]
    );
    let finished = &events[3];
    assert_eq!(finished.field("outcome").unwrap().to_string(), "pass");
    assert_eq!(finished.field("elapsed_ms").unwrap().to_string(), "1000");
    assert_eq!(events[2].field("target").unwrap().to_string(), "green");
}

#[tokio::test(start_paused = true)]
async fn every_gate_finishes_once_per_round_even_when_skipped() {
    let (_, auth) = scripted("auth", [Step::fail()]);
    let (_, smoke) = scripted("smoke", [Step::pass()]);
    let (_, events) = run(
        wait_until(10, 0, 25),
        vec![auth.with_failure_limit(10), smoke.depends_on(["auth"])],
    )
    .await;
    let events = events.events();
    for gate in ["gate auth", "gate smoke"] {
        let finished: Vec<String> = events
            .iter()
            .filter(|e| e.kind == EventKind::Finished && e.subject == gate)
            .map(|e| e.field("round").unwrap().to_string())
            .collect();
        assert_eq!(finished, ["1", "2", "3"], "{gate}");
    }
    assert!(events
        .iter()
        .all(|e| !(e.kind == EventKind::Started && e.subject == "gate smoke")));
}

#[tokio::test(start_paused = true)]
async fn extensions_reach_every_check() {
    #[derive(Debug)]
    struct Expected(&'static str);
    struct Reads;
    #[async_trait]
    impl Gate for Reads {
        fn name(&self) -> &str {
            "reads"
        }
        async fn check(&self, cx: &GateContext) -> Result<Verdict> {
            match cx.extension::<Expected>() {
                Some(Expected(label)) => Ok(Verdict::pass(*label)),
                None => Err(Error::check("reads", "no extension")),
            }
        }
    }
    let mut extensions = Extensions::new();
    extensions.insert(Expected("from the runner"));
    let runner = Runner::new(
        RunSettings::default(),
        vec![GateEntry::new(Arc::new(Reads))],
    )
    .unwrap()
    .with_extensions(extensions);
    let report = runner.run(Arc::new(NullSink)).await;
    assert_eq!(
        report.gates[0].last.as_ref().unwrap().message,
        "from the runner"
    );
}

#[tokio::test(start_paused = true)]
async fn a_runner_can_run_again() {
    let (_, entry) = scripted("toggle", [Step::fail(), Step::pass()]);
    let runner = Runner::new(RunSettings::default(), vec![entry]).unwrap();
    let first = runner.run(Arc::new(NullSink)).await;
    let second = runner.run(Arc::new(NullSink)).await;
    assert_eq!(first.result, RunResult::Failed);
    assert_eq!(second.result, RunResult::Passed);
    assert_eq!(second.gates[0].counts.fail, 0, "counters are per run");
}

// ---------------------------------------------------------------- configuration errors

#[test]
fn runner_rejects_bad_gate_lists() {
    let entry = |name: &str| scripted(name, [Step::pass()]).1;

    assert!(matches!(
        Runner::new(RunSettings::default(), vec![]),
        Err(Error::NoGates)
    ));
    assert!(matches!(
        Runner::new(RunSettings::default(), vec![entry("a"), entry("a")]),
        Err(Error::DuplicateGate { name }) if name == "a"
    ));
    assert!(matches!(
        Runner::new(RunSettings::default(), vec![entry("a").depends_on(["b"])]),
        Err(Error::UnknownDependency { gate, dependency }) if gate == "a" && dependency == "b"
    ));
    match Runner::new(
        RunSettings::default(),
        vec![entry("a").depends_on(["b"]), entry("b").depends_on(["a"])],
    ) {
        Err(Error::DependencyCycle { cycle }) => assert_eq!(cycle, ["a", "b", "a"]),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Runner::new(RunSettings::default(), vec![entry("a").with_timeout(Duration::ZERO)]),
        Err(Error::InvalidValue { scope: Scope::Gate(g), field, .. }) if g == "a" && field == "timeout"
    ));
    assert!(matches!(
        Runner::new(RunSettings::default().with_interval(Duration::ZERO), vec![entry("a")]),
        Err(Error::InvalidValue { scope: Scope::Run, field, .. }) if field == "interval"
    ));
    let err = Runner::new(RunSettings::default(), vec![]).unwrap_err();
    assert!(err.is_config());
    assert_eq!(RunSettings::default().mode, Mode::Once);
}
