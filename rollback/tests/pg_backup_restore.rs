//! Backups and restores against the real PostgreSQL test cluster
//! (`scripts/ensure-postgres.sh` starts it and sets `DEPLOY_TEST_PG`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use deploy_rollback::backup::{ArtifactStorage, ArtifactWriter, BackupState};
use deploy_rollback::{
    restore, BackupRequest, BackupStore, Confirmation, Error, NoProgress, Phase, ProgressEvent,
    RestoreRequest,
};
use util::{admin, database_exists, fake_filestore, files_of, snapshot_of, tools, TestDb};

const CHILD_ENV: &str = "DEPLOY_ROLLBACK_TEST_CHILD";

fn no_progress() -> Arc<NoProgress> {
    Arc::new(NoProgress)
}

#[tokio::test]
async fn backup_change_restore_gives_back_the_backed_up_rows_and_filestore() {
    let db = TestDb::create().await;
    db.seed().await;
    let data_dir = tempfile::tempdir().unwrap();
    let filestore = fake_filestore(data_dir.path(), &db.name, 25);
    let store_dir = tempfile::tempdir().unwrap();
    let store = BackupStore::open(store_dir.path()).unwrap();

    let before_rows = db.snapshot().await;
    let before_files = files_of(&filestore);
    let events = Arc::new(Mutex::new(Vec::<ProgressEvent>::new()));
    let sink = events.clone();
    let request = BackupRequest::new(db.connection(), "17.0-r1")
        .with_data_dir(data_dir.path())
        .with_git_sha("abc123")
        .with_stack("shop")
        .with_tools(tools());
    let manifest = store
        .create(
            &request,
            Arc::new(move |e: ProgressEvent| sink.lock().unwrap().push(e)),
        )
        .await
        .unwrap();

    assert_eq!(manifest.database, db.name);
    assert_eq!(manifest.release, "17.0-r1");
    assert_eq!(manifest.git_sha.as_deref(), Some("abc123"));
    assert_eq!(manifest.toc.tables, 4, "toc: {:?}", manifest.toc);
    assert_eq!(manifest.toc.table_data, 4);
    assert_eq!(manifest.filestore.as_ref().unwrap().files, Some(25));
    assert_eq!(manifest.database_dump.sha256.len(), 64);
    let phases: Vec<Phase> = events.lock().unwrap().iter().map(|e| e.phase).collect();
    assert!(
        phases.contains(&Phase::Dump) && phases.contains(&Phase::VerifyDump),
        "{phases:?}"
    );
    let dump_done = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.phase == Phase::Dump)
        .map(|e| e.done)
        .max();
    assert_eq!(dump_done, Some(manifest.database_dump.size));
    // What is on disk: the complete directory only, with the manifest written last.
    let dir = store_dir.path().join(&manifest.id);
    for f in ["database.dump", "filestore.tar.gz", "manifest.json"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert_eq!(std::fs::read_dir(store_dir.path()).unwrap().count(), 1);
    assert_eq!(store.list().unwrap(), vec![manifest.clone()]);
    assert_eq!(
        store.verify(&manifest.id, no_progress()).await.unwrap(),
        manifest
    );

    // Change data and files after the backup.
    db.client()
        .await
        .batch_execute(
            "UPDATE res_partner SET name = name || ' (changed)' WHERE id % 10 = 0;
             DELETE FROM sale_order WHERE id % 7 = 0;
             INSERT INTO res_partner (name) VALUES ('created after the backup');
             UPDATE ir_module_module SET state = 'to upgrade' WHERE name = 'sale';",
        )
        .await
        .unwrap();
    std::fs::create_dir_all(filestore.join("ab")).unwrap();
    std::fs::write(filestore.join("ab").join("added-after-backup"), b"new file").unwrap();
    let first_file = before_files
        .keys()
        .find(|k| !k.ends_with('/'))
        .unwrap()
        .clone();
    std::fs::remove_file(filestore.join(&first_file)).unwrap();
    let changed_rows = db.snapshot().await;
    let changed_files = files_of(&filestore);
    assert_ne!(changed_rows, before_rows);
    assert_ne!(changed_files, before_files);

    // The confirmation is required and must name the live database.
    let wrong = RestoreRequest::new(
        admin(),
        &db.name,
        &manifest.id,
        Confirmation::new("postgres"),
    )
    .with_data_dir(data_dir.path())
    .with_tools(tools());
    let err = restore(&store, &wrong, no_progress()).await.unwrap_err();
    assert!(
        matches!(&err, Error::ConfirmationMismatch { expected, given } if *expected == db.name && given == "postgres"),
        "{err:?}"
    );
    assert_eq!(
        db.snapshot().await,
        changed_rows,
        "a refused restore must change nothing"
    );
    assert_eq!(util::databases_like(&db.name).await, vec![db.name.clone()]);

    // A session held open on the live database is terminated by the swap.
    let held = db.client().await;
    let request = RestoreRequest::new(
        admin(),
        &db.name,
        &manifest.id,
        Confirmation::new(db.name.clone()),
    )
    .with_data_dir(data_dir.path())
    .with_probe("SELECT count(*) FROM ir_module_module")
    .with_tools(tools());
    let outcome = restore(&store, &request, no_progress()).await.unwrap();

    assert_eq!(outcome.live_database, db.name);
    assert_eq!(outcome.verification.tables_expected, 4);
    assert_eq!(outcome.verification.tables_found, 4);
    assert_eq!(outcome.verification.probe_result.as_deref(), Some("3"));
    assert!(outcome.terminated_sessions >= 1, "{outcome:?}");
    assert!(
        held.simple_query("SELECT 1").await.is_err(),
        "the held session must be closed"
    );
    eprintln!("unavailability window: {:?}", outcome.unavailable);

    // The live database and filestore hold exactly what was backed up.
    assert_eq!(db.snapshot().await, before_rows);
    assert_eq!(files_of(&filestore), before_files);

    // The replaced ones are kept under their dated names with the changed data.
    let replaced = outcome.replaced_database.clone().unwrap();
    assert!(
        replaced.starts_with(&format!("{}_replaced_", db.name)),
        "{replaced}"
    );
    assert!(database_exists(&replaced).await);
    assert_eq!(snapshot_of(&replaced).await, changed_rows);
    let replaced_fs = outcome.replaced_filestore.clone().unwrap();
    assert_eq!(
        replaced_fs,
        data_dir.path().join("filestore").join(&replaced)
    );
    assert_eq!(files_of(&replaced_fs), changed_files);
    assert_eq!(outcome.live_filestore.as_deref(), Some(filestore.as_path()));
    // No restore database is left over: live and replaced only.
    assert_eq!(util::databases_like(&db.name).await, {
        let mut v = vec![db.name.clone(), replaced.clone()];
        v.sort();
        v
    });
    // The restored database takes connections (the replaced one too, for inspection).
    util::client(&replaced)
        .await
        .simple_query("SELECT 1")
        .await
        .unwrap();
}

#[tokio::test]
async fn restore_refuses_a_corrupted_backup_and_keeps_live_on_failed_verification() {
    let db = TestDb::create().await;
    db.seed().await;
    let store_dir = tempfile::tempdir().unwrap();
    let store = BackupStore::open(store_dir.path()).unwrap();
    let request = BackupRequest::new(db.connection(), "r1").with_tools(tools());
    let manifest = store.create(&request, no_progress()).await.unwrap();
    assert!(manifest.filestore.is_none());
    db.client()
        .await
        .batch_execute("DELETE FROM sale_order")
        .await
        .unwrap();
    let changed = db.snapshot().await;

    // A probe that fails: the swap does not happen, the restored database is kept.
    let failing = RestoreRequest::new(
        admin(),
        &db.name,
        &manifest.id,
        Confirmation::new(db.name.clone()),
    )
    .with_probe("SELECT count(*) FROM no_such_table")
    .with_tools(tools());
    let err = restore(&store, &failing, no_progress()).await.unwrap_err();
    let Error::VerificationFailed { database, reason } = &err else {
        panic!("expected VerificationFailed, got {err:?}");
    };
    assert!(
        database.starts_with(&format!("{}_restore_", db.name)),
        "{database}"
    );
    assert!(reason.contains("probe"), "{reason}");
    assert_eq!(db.snapshot().await, changed, "live must be untouched");
    assert!(
        database_exists(database).await,
        "the restored database is kept for inspection"
    );

    // Flip one byte of the dump: verify and restore refuse it.
    let dump = store_dir.path().join(&manifest.id).join("database.dump");
    let mut bytes = std::fs::read(&dump).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&dump, bytes).unwrap();
    let err = store.verify(&manifest.id, no_progress()).await.unwrap_err();
    assert!(
        matches!(&err, Error::ChecksumMismatch { artifact, .. } if artifact == "database.dump"),
        "{err:?}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await; // a new dated name
    let request = RestoreRequest::new(
        admin(),
        &db.name,
        &manifest.id,
        Confirmation::new(db.name.clone()),
    )
    .with_tools(tools());
    let err = restore(&store, &request, no_progress()).await.unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err:?}");
    assert_eq!(db.snapshot().await, changed);
}

#[tokio::test]
async fn restore_without_a_live_database_just_puts_the_backup_in_place() {
    let db = TestDb::create().await;
    db.seed().await;
    let before = db.snapshot().await;
    let store_dir = tempfile::tempdir().unwrap();
    let store = BackupStore::open(store_dir.path()).unwrap();
    let manifest = store
        .create(
            &BackupRequest::new(db.connection(), "r1").with_tools(tools()),
            no_progress(),
        )
        .await
        .unwrap();
    util::client("postgres")
        .await
        .batch_execute(&format!("DROP DATABASE \"{}\" WITH (FORCE)", db.name))
        .await
        .unwrap();
    let request = RestoreRequest::new(
        admin(),
        &db.name,
        &manifest.id,
        Confirmation::new(db.name.clone()),
    )
    .with_tools(tools());
    let outcome = restore(&store, &request, no_progress()).await.unwrap();
    assert_eq!(outcome.replaced_database, None);
    assert_eq!(db.snapshot().await, before);
}

#[tokio::test]
async fn a_failing_pg_dump_leaves_nothing() {
    let store_dir = tempfile::tempdir().unwrap();
    let store = BackupStore::open(store_dir.path()).unwrap();
    let conn = admin().with_dbname(util::unique("rbt_missing"));
    let err = store
        .create(
            &BackupRequest::new(conn, "r1").with_tools(tools()),
            no_progress(),
        )
        .await
        .unwrap_err();
    let Error::CommandFailed {
        program,
        code,
        stderr,
    } = &err
    else {
        panic!("expected CommandFailed, got {err:?}");
    };
    assert_eq!(program, "pg_dump");
    assert_eq!(*code, Some(1));
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(store.list().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(store_dir.path()).unwrap().count(),
        0,
        "partial directory not removed"
    );
}

/// Not a test of its own: the child process of
/// `a_backup_killed_mid_way_is_not_offered` (does nothing unless spawned by it). It
/// starts a backup and, once `pg_dump` output flows, announces it and stalls until
/// the parent kills it with SIGKILL.
#[tokio::test]
async fn child_process_backup_until_killed() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (root, db) = spec.split_once('|').unwrap();
    let store = BackupStore::open(root).unwrap();
    let announced = AtomicBool::new(false);
    let progress = Arc::new(move |e: ProgressEvent| {
        if e.phase == Phase::Dump && e.done > 0 && !announced.swap(true, Ordering::SeqCst) {
            println!("DUMPING {}", e.done);
            std::io::stdout().flush().unwrap();
            // Hold the writer (and so pg_dump, blocked on its pipe) mid-way.
            std::thread::sleep(Duration::from_secs(600));
        }
    });
    let request = BackupRequest::new(admin().with_dbname(db), "r1").with_tools(tools());
    let result = store.create(&request, progress).await;
    panic!("the backup was expected to be killed, it ended with {result:?}");
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_backup_killed_mid_way_is_not_offered() {
    let db = TestDb::create().await;
    db.seed().await;
    db.seed_big(200_000).await;
    let store_dir = tempfile::tempdir().unwrap();
    let store = BackupStore::open(store_dir.path()).unwrap();

    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_process_backup_until_killed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                CHILD_ENV,
                format!("{}|{}", store_dir.path().display(), db.name),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("DUMPING") => break,
            Ok(_) => continue,
            Err(e) => panic!("the child backup never reported dump progress: {e}"),
        }
    }
    // The dump is on its way: kill the process that runs the backup (SIGKILL).
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert!(!status.success());

    let entries = store.scan().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].state, BackupState::Partial);
    assert!(entries[0].path.to_string_lossy().ends_with(".partial"));
    assert!(!entries[0].path.join("manifest.json").exists());
    assert!(
        store.list().unwrap().is_empty(),
        "a killed backup must not be offered"
    );
    let id = entries[0].id.clone();
    assert!(matches!(store.get(&id), Err(Error::BackupNotFound { .. })));
    let request = RestoreRequest::new(admin(), &db.name, &id, Confirmation::new(db.name.clone()))
        .with_tools(tools());
    let err = restore(&store, &request, no_progress()).await.unwrap_err();
    assert!(matches!(err, Error::BackupNotFound { .. }), "{err:?}");

    // Young partials are kept (a backup may still be running); stale ones are removed.
    assert!(store
        .remove_stale_partials(Duration::from_secs(3600), SystemTime::now())
        .unwrap()
        .is_empty());
    let removed = store
        .remove_stale_partials(
            Duration::from_secs(3600),
            SystemTime::now() + Duration::from_secs(7200),
        )
        .unwrap();
    assert_eq!(removed.len(), 1);
    assert!(store.scan().unwrap().is_empty());
}

/// An artifact storage that fails with ENOSPC once `limit` bytes were written in all,
/// as a full disk does (writes are accepted up to the limit, then refused).
#[derive(Debug)]
struct FullDisk {
    limit: u64,
    written: Arc<AtomicU64>,
}

struct FullDiskWriter {
    file: std::fs::File,
    limit: u64,
    written: Arc<AtomicU64>,
}

impl Write for FullDiskWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let before = self.written.load(Ordering::SeqCst);
        let room = self.limit.saturating_sub(before);
        if room == 0 {
            return Err(std::io::Error::from_raw_os_error(28));
        }
        let n = buf.len().min(usize::try_from(room).unwrap());
        let n = self.file.write(&buf[..n])?;
        self.written.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl ArtifactWriter for FullDiskWriter {
    fn finish(self: Box<Self>) -> std::io::Result<()> {
        self.file.sync_all()
    }
}

impl ArtifactStorage for FullDisk {
    fn create(&self, path: &Path) -> std::io::Result<Box<dyn ArtifactWriter>> {
        Ok(Box::new(FullDiskWriter {
            file: std::fs::File::create_new(path)?,
            limit: self.limit,
            written: self.written.clone(),
        }))
    }
}

fn assert_nothing_offered(store: &BackupStore, root: &Path) {
    assert!(
        store.list().unwrap().is_empty(),
        "a failed backup must not be offered"
    );
    for entry in std::fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        assert!(
            !entry.path().join("manifest.json").exists(),
            "{} looks complete",
            entry.path().display()
        );
    }
}

#[tokio::test]
async fn a_backup_failing_on_a_full_disk_is_not_offered_injected_enospc() {
    let db = TestDb::create().await;
    db.seed().await;
    db.seed_big(100_000).await;
    let data_dir = tempfile::tempdir().unwrap();
    fake_filestore(data_dir.path(), &db.name, 10);
    let store_dir = tempfile::tempdir().unwrap();
    let store = BackupStore::open(store_dir.path())
        .unwrap()
        .with_storage(Arc::new(FullDisk {
            limit: 1024 * 1024,
            written: Arc::new(AtomicU64::new(0)),
        }));
    let request = BackupRequest::new(db.connection(), "r1")
        .with_data_dir(data_dir.path())
        .with_tools(tools());
    let err = store.create(&request, no_progress()).await.unwrap_err();
    assert!(err.is_storage_full(), "expected ENOSPC, got {err:?}");
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert_nothing_offered(&store, store_dir.path());
    assert_eq!(
        std::fs::read_dir(store_dir.path()).unwrap().count(),
        0,
        "partial directory not removed"
    );
}

/// Unmounts a tmpfs on drop.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test]
async fn a_backup_failing_on_a_full_disk_is_not_offered_tmpfs() {
    let mount_dir = tempfile::tempdir().unwrap();
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(mount_dir.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run mount: {e}"));
    assert!(
        out.status.success(),
        "this test mounts a 2 MiB tmpfs as a full disk and needs root (CAP_SYS_ADMIN): run the tests as root \
         (CI does); mount said: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _mount = Mount(mount_dir.path().to_owned());

    let db = TestDb::create().await;
    db.seed().await;
    db.seed_big(100_000).await;
    let data_dir = tempfile::tempdir().unwrap();
    fake_filestore(data_dir.path(), &db.name, 10);
    let root = mount_dir.path().join("backups");
    let store = BackupStore::open(&root).unwrap();
    let request = BackupRequest::new(db.connection(), "r1")
        .with_data_dir(data_dir.path())
        .with_tools(tools());
    let err = store.create(&request, no_progress()).await.unwrap_err();
    assert!(err.is_storage_full(), "expected ENOSPC, got {err:?}");
    assert_nothing_offered(&store, &root);
    assert_eq!(
        std::fs::read_dir(&root).unwrap().count(),
        0,
        "partial directory not removed"
    );

    // With room, the same request gives a complete backup.
    let big_enough = tempfile::tempdir().unwrap();
    let store = BackupStore::open(big_enough.path()).unwrap();
    let manifest = store.create(&request, no_progress()).await.unwrap();
    assert_eq!(store.list().unwrap(), vec![manifest]);
}

#[tokio::test]
async fn the_database_restore_strategy_plans_executes_and_records() {
    use deploy_rollback::strategy::{
        execute_recorded, DatabaseRestore, OutcomeDetail, RollbackContext,
    };
    use deploy_rollback::{DeployStatus, DeploymentRecord, Environment, History, RollbackStrategy};

    let db = TestDb::create().await;
    db.seed().await;
    let before = db.snapshot().await;
    let store_dir = tempfile::tempdir().unwrap();
    let store = BackupStore::open(store_dir.path()).unwrap();
    let manifest = store
        .create(
            &BackupRequest::new(db.connection(), "r1").with_tools(tools()),
            no_progress(),
        )
        .await
        .unwrap();
    let history_dir = tempfile::tempdir().unwrap();
    let history = History::open(history_dir.path()).unwrap();
    history
        .append(
            &DeploymentRecord::new(
                "shop",
                "r2",
                Environment::Production,
                DeployStatus::Started,
                "ci",
            )
            .with_backup(&manifest.id),
        )
        .unwrap();
    history
        .append(&DeploymentRecord::new(
            "shop",
            "r2",
            Environment::Production,
            DeployStatus::Failed,
            "ci",
        ))
        .unwrap();
    assert_eq!(
        history.protected_backups().unwrap(),
        vec![manifest.id.clone()]
    );
    db.client().await.batch_execute("DELETE FROM res_partner WHERE id > 10 AND id NOT IN (SELECT partner_id FROM sale_order)").await.unwrap();

    let request = RestoreRequest::new(
        admin(),
        &db.name,
        &manifest.id,
        Confirmation::new(db.name.clone()),
    )
    .with_tools(tools());
    let strategy = DatabaseRestore::new(store.clone(), request, no_progress());
    let ctx = RollbackContext::new("shop", Environment::Production, "alice");
    let plan = strategy.plan(&ctx).await.unwrap();
    assert!(plan.destructive);
    assert_eq!(plan.target_release.as_deref(), Some("r1"));
    let outcome = execute_recorded(&strategy, &ctx, &history).await.unwrap();
    let OutcomeDetail::DatabaseRestored(restored) = &outcome.detail else {
        panic!("{outcome:?}");
    };
    assert!(restored.replaced_database.is_some());
    assert_eq!(db.snapshot().await, before);
    let latest = history
        .latest("shop", Environment::Production)
        .unwrap()
        .unwrap();
    assert_eq!(
        (latest.release.as_str(), latest.status),
        ("r2", DeployStatus::RolledBack)
    );
    let figures = history
        .figures(&deploy_rollback::HistoryFilter::default())
        .unwrap();
    assert_eq!(figures.rolled_back, 1);
    assert!(figures.mean_time_to_rollback.is_some());
}
