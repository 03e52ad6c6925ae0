//! The report's serialized schema.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use deploy_gates::testing::Step;
use deploy_gates::{Report, RunSettings, REPORT_SCHEMA_VERSION};
use serde_json::json;
use util::{run, scripted, secs};

#[tokio::test(start_paused = true)]
async fn report_json_schema_is_stable() {
    let (_, health) = scripted(
        "health",
        [Step::pass()
            .message("200 ok")
            .value("status", 200.0)
            .after(secs(1))],
    );
    let (_, smoke) = scripted("smoke", [Step::fail().message("create failed")]);
    let (_, after) = scripted("after", [Step::pass()]);
    let (report, _) = run(
        RunSettings::default(),
        vec![
            health.with_target("green").with_kind("health"),
            smoke,
            after.depends_on(["smoke"]),
        ],
    )
    .await;
    let value = serde_json::to_value(&report).unwrap();
    let expected = json!({
        "schema_version": REPORT_SCHEMA_VERSION,
        "result": "failed",
        "mode": "once",
        "rounds": 1,
        "elapsed_ms": 1000,
        "stable_ms": 0,
        "failures": [
            { "gate": "smoke", "reason": "failure-limit", "message": "create failed" }
        ],
        "not_passed": ["smoke", "after"],
        "gates": [
            {
                "name": "health",
                "target": "green",
                "kind": "health",
                "depends_on": [],
                "timeout_ms": 30000,
                "failure_limit": 0,
                "consecutive_error_limit": 4,
                "last": {
                    "round": 1,
                    "status": "pass",
                    "message": "200 ok",
                    "values": { "status": 200.0 },
                    "duration_ms": 1000
                },
                "counts": { "pass": 1, "warn": 0, "fail": 0, "error": 0,
                            "inconclusive": 0, "skipped": 0, "cancelled": 0 },
                "consecutive_errors": 0,
                "total_duration_ms": 1000,
                "max_duration_ms": 1000
            },
            {
                "name": "smoke",
                "target": null,
                "kind": null,
                "depends_on": [],
                "timeout_ms": 30000,
                "failure_limit": 0,
                "consecutive_error_limit": 4,
                "last": {
                    "round": 1,
                    "status": "fail",
                    "message": "create failed",
                    "values": {},
                    "duration_ms": 0
                },
                "counts": { "pass": 0, "warn": 0, "fail": 1, "error": 0,
                            "inconclusive": 0, "skipped": 0, "cancelled": 0 },
                "consecutive_errors": 0,
                "total_duration_ms": 0,
                "max_duration_ms": 0
            },
            {
                "name": "after",
                "target": null,
                "kind": null,
                "depends_on": ["smoke"],
                "timeout_ms": 30000,
                "failure_limit": 0,
                "consecutive_error_limit": 4,
                "last": {
                    "round": 1,
                    "status": "skipped",
                    "message": "skipped: dependency `smoke` did not pass (fail)",
                    "values": {},
                    "duration_ms": 0
                },
                "counts": { "pass": 0, "warn": 0, "fail": 0, "error": 0,
                            "inconclusive": 0, "skipped": 1, "cancelled": 0 },
                "consecutive_errors": 0,
                "total_duration_ms": 0,
                "max_duration_ms": 0
            }
        ]
    });
    assert_eq!(value, expected);

    // And back.
    let back: Report = serde_json::from_value(value).unwrap();
    assert_eq!(back, report);
}

#[tokio::test(start_paused = true)]
async fn result_spellings() {
    let (_, hang) = scripted("hang", [Step::hang()]);
    let (report, _) = run(RunSettings::default().with_timeout(secs(1)), vec![hang]).await;
    let value = serde_json::to_value(&report).unwrap();
    assert_eq!(value["result"], "timed-out");
    assert_eq!(value["gates"][0]["last"]["status"], "cancelled");

    let (_, unsure) = scripted("unsure", [Step::inconclusive()]);
    let (report, _) = run(
        RunSettings::default()
            .with_mode(deploy_gates::Mode::WaitUntil)
            .with_timeout(secs(1)),
        vec![unsure],
    )
    .await;
    let value = serde_json::to_value(&report).unwrap();
    assert_eq!(value["mode"], "wait-until");
    assert_eq!(value["gates"][0]["last"]["status"], "inconclusive");
}
