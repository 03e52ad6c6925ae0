//! The deployment history: concurrent writers (threads and processes), torn lines,
//! the plain log format and the figures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use deploy_rollback::history::{figures, parse_plain_log, to_plain_log};
use deploy_rollback::{DeployStatus, DeploymentRecord, Environment, Error, History, HistoryFilter};

const CHILD_ENV: &str = "DEPLOY_ROLLBACK_TEST_HISTORY_CHILD";

/// A record large enough (about 12 KiB) that unsynchronised writers would interleave.
fn big_record(writer: &str, i: usize) -> DeploymentRecord {
    DeploymentRecord::new(
        "shop",
        format!("r{i}"),
        Environment::Production,
        DeployStatus::Started,
        writer,
    )
    .with_gate_summary(
        serde_json::json!({ "writer": writer, "i": i, "padding": "x".repeat(12 * 1024) }),
    )
}

/// Checks every record is intact and each writer's records are in its own order.
fn assert_intact(history: &History, writers: &[String], per_writer: usize) {
    let check = history.check("shop").unwrap();
    assert_eq!(check.torn_tail_bytes, 0);
    assert!(
        check.invalid_lines.is_empty(),
        "interleaved lines: {:?}",
        check.invalid_lines
    );
    let records = history.read_stack("shop").unwrap();
    assert_eq!(records.len(), writers.len() * per_writer);
    let mut next: HashMap<&str, usize> = HashMap::new();
    for r in &records {
        let summary = r.gate_summary.as_ref().unwrap();
        assert_eq!(summary["writer"], r.operator.as_str());
        assert_eq!(summary["padding"].as_str().unwrap().len(), 12 * 1024);
        let i = summary["i"].as_u64().unwrap() as usize;
        let expected = next
            .entry(writers.iter().find(|w| **w == r.operator).unwrap())
            .or_insert(0);
        assert_eq!(i, *expected, "writer {} out of order", r.operator);
        *expected += 1;
    }
    assert!(next.values().all(|&n| n == per_writer));
}

#[test]
fn concurrent_appends_from_threads_are_all_readable() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path()).unwrap();
    let writers: Vec<String> = (0..8).map(|t| format!("thread{t}")).collect();
    std::thread::scope(|s| {
        for w in &writers {
            let history = history.clone();
            s.spawn(move || {
                for i in 0..40 {
                    history.append(&big_record(w, i)).unwrap();
                }
            });
        }
    });
    assert_intact(&history, &writers, 40);
}

/// Not a test of its own: the child process of
/// `concurrent_appends_from_processes_are_all_readable` (does nothing unless spawned by it).
#[test]
fn child_process_history_appender() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.split('|');
    let (dir, writer, n) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let history = History::open(dir).unwrap();
    for i in 0..n.parse().unwrap() {
        history.append(&big_record(writer, i)).unwrap();
    }
}

#[test]
fn concurrent_appends_from_processes_are_all_readable() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path()).unwrap();
    let per_writer = 40;
    let procs: Vec<String> = (0..4).map(|p| format!("process{p}")).collect();
    let children: Vec<_> = procs
        .iter()
        .map(|w| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "child_process_history_appender",
                    "--test-threads=1",
                    "-q",
                ])
                .env(
                    CHILD_ENV,
                    format!("{}|{w}|{per_writer}", dir.path().display()),
                )
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // This process writes at the same time, from two threads.
    let threads: Vec<String> = (0..2).map(|t| format!("parent{t}")).collect();
    std::thread::scope(|s| {
        for w in &threads {
            let history = history.clone();
            s.spawn(move || {
                for i in 0..per_writer {
                    history.append(&big_record(w, i)).unwrap();
                }
            });
        }
    });
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a child appender failed");
    }
    let all: Vec<String> = procs.into_iter().chain(threads).collect();
    assert_intact(&history, &all, per_writer);
}

#[test]
fn a_torn_last_line_is_ignored_and_repaired_by_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path()).unwrap();
    for i in 0..3 {
        history.append(&big_record("ci", i)).unwrap();
    }
    // A writer killed mid-write: half a record, no newline.
    let path = history.path_for("shop").unwrap();
    let line = serde_json::to_string(&big_record("ci", 3)).unwrap();
    let torn = &line[..line.len() / 2];
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(torn.as_bytes())
        .unwrap();

    let records = history.read_stack("shop").unwrap();
    assert_eq!(records.len(), 3, "earlier records must survive a torn tail");
    let check = history.check("shop").unwrap();
    assert_eq!(check.torn_tail_bytes, torn.len() as u64);
    assert!(check.invalid_lines.is_empty());

    // The next append cuts the torn bytes and its own record is readable.
    history.append(&big_record("ci", 3)).unwrap();
    let check = history.check("shop").unwrap();
    assert_eq!(
        (
            check.records,
            check.torn_tail_bytes,
            check.invalid_lines.len()
        ),
        (4, 0, 0)
    );
    let records = history.read_stack("shop").unwrap();
    assert_eq!(
        records
            .iter()
            .map(|r| r.release.as_str())
            .collect::<Vec<_>>(),
        ["r0", "r1", "r2", "r3"]
    );

    // A file that is nothing but a torn line.
    let lone = History::open(dir.path().join("lone")).unwrap();
    std::fs::write(lone.path_for("shop").unwrap(), &line[..10]).unwrap();
    assert!(lone.read_stack("shop").unwrap().is_empty());
    lone.append(&big_record("ci", 0)).unwrap();
    assert_eq!(lone.read_stack("shop").unwrap().len(), 1);
}

#[test]
fn an_invalid_complete_line_is_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path()).unwrap();
    history.append(&big_record("ci", 0)).unwrap();
    let path = history.path_for("shop").unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"not json\n")
        .unwrap();
    history.append(&big_record("ci", 1)).unwrap();
    let check = history.check("shop").unwrap();
    assert_eq!((check.records, check.invalid_lines.clone()), (2, vec![2]));
}

#[test]
fn records_that_cannot_be_stored_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path()).unwrap();
    let bad_stack =
        DeploymentRecord::new("../x", "r1", Environment::Dev, DeployStatus::Started, "ci");
    assert!(matches!(
        history.append(&bad_stack),
        Err(Error::InvalidName { kind: "stack", .. })
    ));
    let pipe = DeploymentRecord::new("shop", "r|1", Environment::Dev, DeployStatus::Started, "ci");
    assert!(matches!(
        history.append(&pipe),
        Err(Error::InvalidInput {
            what: "release",
            ..
        })
    ));
    assert!(history.stacks().unwrap().is_empty());
}

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, h, m, 0).unwrap()
}

fn rec(
    release: &str,
    env: Environment,
    status: DeployStatus,
    t: DateTime<Utc>,
) -> DeploymentRecord {
    DeploymentRecord::new("shop", release, env, status, "alice").at(t)
}

/// A known history of stack `shop` in production (plus one staging deployment).
fn known_history() -> Vec<DeploymentRecord> {
    use DeployStatus::*;
    use Environment::*;
    vec![
        rec("r1", Production, Started, at(10, 0)),
        rec("r1", Production, Succeeded, at(10, 5)),
        rec("r2", Production, Started, at(11, 0)),
        rec("r2", Production, Failed, at(11, 2)),
        rec("r2", Production, RolledBack, at(11, 10)),
        rec("r2b", Production, Started, at(11, 30)),
        rec("r2b", Production, Failed, at(11, 31)),
        rec("r3", Production, Started, at(12, 0)).with_backup("b3"),
        rec("r3", Production, Succeeded, at(12, 3)),
        rec("r4", Production, Started, at(13, 0)).with_backup("b4"),
        rec("r4", Production, Succeeded, at(13, 4)),
        rec("r4", Production, RolledBack, at(14, 0)),
        rec("r5", Production, Started, at(15, 0)).with_backup("b5"),
        rec("r9", Staging, Started, at(9, 0)).with_backup("s9"),
        rec("r9", Staging, Succeeded, at(9, 1)),
    ]
}

#[test]
fn figures_on_a_known_history() {
    let records: Vec<_> = known_history()
        .into_iter()
        .filter(|r| r.environment == Environment::Production)
        .collect();
    let f = figures(&records);
    assert_eq!(
        (
            f.deployments,
            f.succeeded,
            f.failed,
            f.rolled_back,
            f.in_progress
        ),
        (6, 2, 1, 2, 1)
    );
    assert_eq!(f.success_rate, Some(0.4));
    // r2: failed 11:02 -> rolled back 11:10 (8 min); r4: started 13:00 -> 14:00 (60 min).
    assert_eq!(f.mean_time_to_rollback, Some(Duration::from_secs(34 * 60)));
    // r1 5 min, r3 3 min, r4 4 min.
    assert_eq!(f.mean_start_to_live, Some(Duration::from_secs(4 * 60)));
    let json = serde_json::to_value(&f).unwrap();
    assert_eq!(json["mean_time_to_rollback_ms"], 34 * 60 * 1000);
    assert_eq!(figures(&[]).success_rate, None);
}

#[test]
fn last_good_listing_filters_and_protected_backups() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path()).unwrap();
    for r in known_history() {
        history.append(&r).unwrap();
    }
    history
        .append(
            &DeploymentRecord::new(
                "blog",
                "b1",
                Environment::Production,
                DeployStatus::Succeeded,
                "bob",
            )
            .at(at(8, 0)),
        )
        .unwrap();
    assert_eq!(history.stacks().unwrap(), ["blog", "shop"]);

    // r4 was rolled back and r5 is in progress: the last good release is r3.
    let good = history
        .last_good("shop", Environment::Production)
        .unwrap()
        .unwrap();
    assert_eq!((good.release.as_str(), good.timestamp), ("r3", at(12, 3)));
    let previous = history
        .previous_good("shop", Environment::Production, "r3")
        .unwrap()
        .unwrap();
    assert_eq!(previous.release, "r1");
    assert_eq!(
        history
            .last_good("shop", Environment::Staging)
            .unwrap()
            .unwrap()
            .release,
        "r9"
    );
    assert!(history
        .last_good("shop", Environment::Uat)
        .unwrap()
        .is_none());
    assert!(history
        .last_good("nothing", Environment::Production)
        .unwrap()
        .is_none());

    let failed = history
        .list(&HistoryFilter {
            stack: Some("shop".into()),
            status: Some(DeployStatus::Failed),
            ..HistoryFilter::default()
        })
        .unwrap();
    assert_eq!(
        failed
            .iter()
            .map(|r| r.release.as_str())
            .collect::<Vec<_>>(),
        ["r2", "r2b"]
    );
    let since = history
        .list(&HistoryFilter {
            environment: Some(Environment::Production),
            since: Some(at(13, 30)),
            ..HistoryFilter::default()
        })
        .unwrap();
    assert_eq!(since.len(), 2);
    assert_eq!(
        history.list(&HistoryFilter::default()).unwrap().len(),
        known_history().len() + 1
    );
    // Sorted by time across stacks.
    assert_eq!(
        history.list(&HistoryFilter::default()).unwrap()[0].stack,
        "blog"
    );

    // Current release r3 (b3), latest deployment r5 in progress (b5), staging r9 (s9).
    assert_eq!(history.protected_backups().unwrap(), ["b3", "b5", "s9"]);
    let f = history
        .figures(&HistoryFilter {
            stack: Some("shop".into()),
            environment: Some(Environment::Production),
            ..HistoryFilter::default()
        })
        .unwrap();
    assert_eq!(f.success_rate, Some(0.4));
}

#[test]
fn plain_log_export_import_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let a = History::open(dir.path().join("a")).unwrap();
    for r in known_history() {
        a.append(&r).unwrap();
    }
    let mut exported = Vec::new();
    let n = a
        .export_plain(&HistoryFilter::default(), &mut exported)
        .unwrap();
    assert_eq!(n, known_history().len());
    let text = String::from_utf8(exported).unwrap();
    assert!(
        text.starts_with("2025-03-01T09:00:00Z | shop | r9 | staging | started | alice\n"),
        "{text}"
    );
    assert!(text.contains("2025-03-01T11:10:00Z | shop | r2 | production | rolled_back | alice\n"));

    let b = History::open(dir.path().join("b")).unwrap();
    assert_eq!(b.import_plain(&text).unwrap(), known_history().len());
    assert_eq!(
        b.import_plain(&text).unwrap(),
        0,
        "importing twice appends nothing"
    );
    let mut again = Vec::new();
    b.export_plain(&HistoryFilter::default(), &mut again)
        .unwrap();
    assert_eq!(String::from_utf8(again).unwrap(), text);
    let f_a = a.figures(&HistoryFilter::default()).unwrap();
    assert_eq!(b.figures(&HistoryFilter::default()).unwrap(), f_a);
}

#[test]
fn plain_logs_as_teams_keep_them() {
    let text = "timestamp | stack | version | env | status | operator\n\
                # deployments of 2024\n\
                \n\
                2024-05-01 10:00:00 | shop | 16.0.1 | Production | success | alice\n\
                2024-05-02T10:00:00+02:00 | shop | 16.0.2 | production | rolled back | bob\n";
    let records = parse_plain_log(text).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].status, DeployStatus::Succeeded);
    assert_eq!(records[1].status, DeployStatus::RolledBack);
    assert_eq!(
        records[1].timestamp,
        Utc.with_ymd_and_hms(2024, 5, 2, 8, 0, 0).unwrap()
    );
    assert_eq!(
        to_plain_log(&records),
        "2024-05-01T10:00:00Z | shop | 16.0.1 | production | succeeded | alice\n\
         2024-05-02T08:00:00Z | shop | 16.0.2 | production | rolled_back | bob\n"
    );
    // The names operators write are read, and stored canonically.
    let aliased = parse_plain_log(
        "2024-05-03 09:00 | shop | 16.0.3 | prod | ok | carol\n\
         2024-05-03 10:00 | shop | 16.0.3 | stg | ok | carol\n",
    )
    .unwrap();
    assert_eq!(aliased[0].environment, Environment::Production);
    assert_eq!(aliased[1].environment, Environment::Staging);
    assert!(to_plain_log(&aliased).contains("| production | succeeded | carol"));
    for (bad, line) in [
        ("2024-05-01 | shop | 1 | production | ok\n", 1),
        ("\n2024-05-01 10:00 | shop | 1 | moon | ok | a\n", 2),
        (
            "2024-05-01 10:00 | shop | 1 | production | deployed | a\n",
            1,
        ),
        ("soon | shop | 1 | production | ok | a\n", 1),
    ] {
        let err = parse_plain_log(bad).unwrap_err();
        assert!(
            matches!(err, Error::PlainLogParse { line: l, .. } if l == line),
            "{bad:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn the_history_records_outcomes_for_the_orchestrator() {
    use deploy_core::{DeploymentOutcome, DeploymentRecorder};

    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path()).unwrap();
    let recorder: &dyn DeploymentRecorder = &history;
    let before = chrono::SubsecRound::trunc_subsecs(Utc::now(), 3);
    recorder
        .record(
            &DeploymentOutcome::new("shop", "r1", Environment::Staging, DeployStatus::Started)
                .with_backup("b1"),
        )
        .await
        .unwrap();
    recorder
        .record(
            &DeploymentOutcome::new("shop", "r1", Environment::Staging, DeployStatus::Succeeded)
                .with_operator("ci")
                .with_duration(Duration::from_secs(42))
                .with_gate_summary(serde_json::json!({"health": "pass"})),
        )
        .await
        .unwrap();
    let records = history.read_stack("shop").unwrap();
    assert_eq!(records.len(), 2);
    assert!(records[0].timestamp >= before);
    assert_eq!(
        (
            records[0].operator.as_str(),
            records[0].backup_id.as_deref()
        ),
        ("unknown", Some("b1"))
    );
    assert_eq!(records[1].duration, Some(Duration::from_secs(42)));
    assert_eq!(
        history
            .last_good("shop", Environment::Staging)
            .unwrap()
            .unwrap()
            .release,
        "r1"
    );
    let bad = DeploymentOutcome::new("../x", "r1", Environment::Staging, DeployStatus::Started);
    assert!(recorder.record(&bad).await.is_err());
}

#[tokio::test]
async fn unfinished_deploys_are_found_and_closed_as_interrupted() {
    use deploy_core::DeploymentRecorder;

    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path()).unwrap();
    for r in known_history() {
        history.append(&r).unwrap();
    }
    let recorder: &dyn DeploymentRecorder = &history;
    // r5 started and never got an outcome; the staging r9 did.
    let open = recorder
        .unfinished("shop", Environment::Production)
        .await
        .unwrap();
    assert_eq!(open.len(), 1, "{open:#?}");
    assert_eq!(
        (
            open[0].release.as_str(),
            open[0].status,
            open[0].backup_id.as_deref()
        ),
        ("r5", DeployStatus::Started, Some("b5"))
    );
    assert!(recorder
        .unfinished("shop", Environment::Staging)
        .await
        .unwrap()
        .is_empty());

    let mut closed = open[0].clone();
    closed.status = DeployStatus::Interrupted;
    recorder.record(&closed).await.unwrap();
    assert!(recorder
        .unfinished("shop", Environment::Production)
        .await
        .unwrap()
        .is_empty());
    let f = history.figures(&HistoryFilter::default()).unwrap();
    assert_eq!((f.interrupted, f.in_progress), (1, 0), "{f:#?}");
    // Its backup stays protected: it is the latest deployment.
    assert!(history
        .protected_backups()
        .unwrap()
        .contains(&"b5".to_owned()));
    // The plain log carries the new status both ways.
    let plain = to_plain_log(&history.read_stack("shop").unwrap());
    assert!(plain.contains("| interrupted |"), "{plain}");
    assert_eq!(
        parse_plain_log(&plain).unwrap().last().unwrap().status,
        DeployStatus::Interrupted
    );

    // Which releases ever passed their gates here.
    for (release, env, passed) in [
        ("r1", Environment::Production, true),
        ("r2", Environment::Production, false),
        ("r4", Environment::Production, true),
        ("r5", Environment::Production, false),
        ("r9", Environment::Production, false),
        ("r9", Environment::Staging, true),
    ] {
        assert_eq!(
            recorder.has_passed("shop", env, release).await.unwrap(),
            Some(passed),
            "{release} in {env}"
        );
    }
}
