//! Retention: last N, daily and weekly generations, the newest and protected backups.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, TimeZone, Utc};
use deploy_rollback::backup::{
    plan_retention, ArtifactInfo, BackupState, KeepReason, TocSummary, MANIFEST_FORMAT,
};
use deploy_rollback::{BackupManifest, BackupStore, RetentionPolicy};

fn manifest(db: &str, at: DateTime<Utc>) -> BackupManifest {
    BackupManifest {
        format: MANIFEST_FORMAT,
        id: format!("{}-{db}-0000", at.format("%Y%m%dT%H%M%SZ")),
        database: db.to_owned(),
        stack: None,
        release: "r".to_owned(),
        git_sha: None,
        created_at: at,
        completed_at: at,
        database_dump: ArtifactInfo {
            file: "database.dump".to_owned(),
            size: 5,
            sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".to_owned(),
            files: None,
        },
        filestore: None,
        toc: TocSummary::default(),
    }
}

/// Writes a complete-looking backup (dump "hello" + manifest) into the store.
fn write_backup(root: &Path, m: &BackupManifest) {
    let dir = root.join(&m.id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("database.dump"), "hello").unwrap();
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec(m).unwrap()).unwrap();
}

fn day(d: u32, h: u32) -> DateTime<Utc> {
    // March 2025: the 3rd is a Monday (ISO week 10).
    Utc.with_ymd_and_hms(2025, 3, d, h, 0, 0).unwrap()
}

/// Backups at 02:00 every day from March 1 to March 28, plus 12:00 and 18:00 on the 28th.
fn month() -> Vec<BackupManifest> {
    let mut v: Vec<_> = (1..=28).map(|d| manifest("prod", day(d, 2))).collect();
    v.push(manifest("prod", day(28, 12)));
    v.push(manifest("prod", day(28, 18)));
    v
}

fn kept(decisions: &[deploy_rollback::backup::RetentionDecision]) -> Vec<DateTime<Utc>> {
    let mut k: Vec<_> = decisions
        .iter()
        .filter(|d| d.is_kept())
        .map(|d| d.created_at)
        .collect();
    k.sort();
    k
}

#[test]
fn daily_and_weekly_generations() {
    let decisions = plan_retention(&month(), &RetentionPolicy::generations(7, 4), &[]);
    assert_eq!(decisions.len(), 30);
    // 7 daily: the newest of March 22..28 (on the 28th the 18:00 one). 4 weekly: the
    // newest of ISO weeks 13 (24-30, the 28th 18:00), 12 (the 23rd), 11 (the 16th),
    // 10 (the 9th).
    let mut expected = vec![day(9, 2), day(16, 2)];
    expected.extend((22..=27).map(|d| day(d, 2)));
    expected.push(day(28, 18));
    assert_eq!(kept(&decisions), expected);
    let newest = decisions
        .iter()
        .find(|d| d.created_at == day(28, 18))
        .unwrap();
    assert_eq!(
        newest.keep,
        vec![
            KeepReason::Newest,
            KeepReason::Daily {
                day: day(28, 0).date_naive()
            },
            KeepReason::Weekly {
                year: 2025,
                week: 13
            }
        ]
    );
    let sunday = decisions
        .iter()
        .find(|d| d.created_at == day(16, 2))
        .unwrap();
    assert_eq!(
        sunday.keep,
        vec![KeepReason::Weekly {
            year: 2025,
            week: 11
        }]
    );
}

#[test]
fn keep_last_n() {
    let decisions = plan_retention(&month(), &RetentionPolicy::last(3), &[]);
    assert_eq!(kept(&decisions), vec![day(28, 2), day(28, 12), day(28, 18)]);
}

#[test]
fn the_newest_and_protected_backups_are_always_kept() {
    let backups = month();
    let protected = vec![backups[4].id.clone(), "not-a-backup".to_owned()];
    let decisions = plan_retention(&backups, &RetentionPolicy::default(), &protected);
    assert_eq!(kept(&decisions), vec![day(5, 2), day(28, 18)]);
    let old = decisions.iter().find(|d| d.id == backups[4].id).unwrap();
    assert_eq!(old.keep, vec![KeepReason::Protected]);
}

#[test]
fn each_database_keeps_its_own_newest() {
    let mut backups = month();
    backups.push(manifest("other", day(1, 3)));
    backups.push(manifest("other", day(2, 3)));
    let decisions = plan_retention(&backups, &RetentionPolicy::last(1), &[]);
    let other: Vec<_> = decisions
        .iter()
        .filter(|d| d.database == "other" && d.is_kept())
        .collect();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].created_at, day(2, 3));
    assert_eq!(
        decisions
            .iter()
            .filter(|d| d.database == "prod" && d.is_kept())
            .count(),
        1
    );
}

#[test]
fn prune_removes_on_disk_and_leaves_partial_and_invalid_directories_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let store = BackupStore::open(tmp.path()).unwrap();
    let backups = month();
    for m in &backups {
        write_backup(tmp.path(), m);
    }
    std::fs::create_dir(tmp.path().join("20250329T020000Z-prod-ffff.partial")).unwrap();
    std::fs::create_dir(tmp.path().join("not-a-backup")).unwrap();
    // A backup whose dump lost bytes is never offered (nor pruned).
    let damaged = manifest("prod", day(29, 2));
    write_backup(tmp.path(), &damaged);
    std::fs::write(tmp.path().join(&damaged.id).join("database.dump"), "hel").unwrap();
    assert_eq!(store.list().unwrap().len(), 30);
    let damaged_entry = store
        .scan()
        .unwrap()
        .into_iter()
        .find(|e| e.id == damaged.id)
        .unwrap();
    assert!(
        matches!(damaged_entry.state, BackupState::Invalid { .. }),
        "{damaged_entry:?}"
    );

    let protected = vec![backups[0].id.clone()];
    let plan = store
        .plan_prune(&RetentionPolicy::generations(7, 4), &protected)
        .unwrap();
    assert_eq!(plan.iter().filter(|d| d.is_kept()).count(), 10);
    assert_eq!(store.list().unwrap().len(), 30, "planning removes nothing");

    let report = store
        .prune(&RetentionPolicy::generations(7, 4), &protected)
        .unwrap();
    assert_eq!(report.removed.len(), 20);
    let left: Vec<_> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|m| m.created_at)
        .collect();
    assert_eq!(left.len(), 10);
    assert!(left.contains(&day(1, 2)), "the protected backup is kept");
    for id in &report.removed {
        assert!(!tmp.path().join(id).exists());
    }
    assert!(tmp
        .path()
        .join("20250329T020000Z-prod-ffff.partial")
        .exists());
    assert!(tmp.path().join("not-a-backup").exists());
    assert!(tmp.path().join(&damaged.id).exists());

    // Stale partials go; a leftover of an interrupted prune goes at once.
    std::fs::create_dir(tmp.path().join(".removing-20250101T000000Z-prod-0000")).unwrap();
    let removed = store
        .remove_stale_partials(Duration::from_secs(3600), SystemTime::now())
        .unwrap();
    assert_eq!(
        removed,
        vec![tmp.path().join(".removing-20250101T000000Z-prod-0000")]
    );
    let removed = store
        .remove_stale_partials(
            Duration::from_secs(3600),
            SystemTime::now() + Duration::from_secs(7200),
        )
        .unwrap();
    assert_eq!(
        removed,
        vec![tmp.path().join("20250329T020000Z-prod-ffff.partial")]
    );
    assert_eq!(store.list().unwrap().len(), 10);
}
