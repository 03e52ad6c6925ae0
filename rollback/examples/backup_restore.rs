//! A tiny driver over the backup and restore API, used by `scripts/bench-backup.sh`
//! (and a starting point for a CLI).
//!
//! ```text
//! backup_restore backup  --store DIR --url postgres://user@host:port/DB [--data-dir DIR] [--release R] [--pg-bin DIR]
//! backup_restore verify  --store DIR --id ID
//! backup_restore restore --store DIR --url postgres://user@host:port/postgres --live DB --id ID
//!                        [--data-dir DIR] [--jobs N] [--probe SQL] [--pg-bin DIR]
//! ```
//!
//! Prints one JSON object on stdout (with `seconds`, the wall time of the call). The
//! password, if any, comes from `PGPASSWORD`, never from the command line. `restore`
//! confirms with the `--live` name itself: this is a benchmark driver, a real CLI
//! asks for the name.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use deploy_rollback::{
    restore, BackupRequest, BackupStore, Confirmation, NoProgress, PgConnection, PgTools,
    RestoreRequest,
};
use secrecy::SecretString;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("usage: backup_restore backup|verify|restore --store DIR ...");
        return ExitCode::from(2);
    };
    let mut opts = HashMap::new();
    let mut it = rest.iter();
    while let Some(key) = it.next() {
        let Some(name) = key.strip_prefix("--") else {
            eprintln!("unexpected argument {key}");
            return ExitCode::from(2);
        };
        let Some(value) = it.next() else {
            eprintln!("--{name} needs a value");
            return ExitCode::from(2);
        };
        opts.insert(name.to_owned(), value.clone());
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(command, &opts)) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(&*e);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn opt<'a>(
    opts: &'a HashMap<String, String>,
    name: &str,
) -> Result<&'a str, Box<dyn std::error::Error>> {
    opts.get(name)
        .map(String::as_str)
        .ok_or_else(|| format!("--{name} is required").into())
}

fn connection(opts: &HashMap<String, String>) -> Result<PgConnection, Box<dyn std::error::Error>> {
    let mut conn = PgConnection::from_url(opt(opts, "url")?)?;
    if let Ok(p) = std::env::var("PGPASSWORD") {
        conn = conn.with_password(SecretString::from(p));
    }
    Ok(conn)
}

async fn run(
    command: &str,
    opts: &HashMap<String, String>,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let store = BackupStore::open(opt(opts, "store")?)?;
    let tools = opts.get("pg-bin").map(PgTools::in_dir).unwrap_or_default();
    let started = Instant::now();
    match command {
        "backup" => {
            let mut request = BackupRequest::new(
                connection(opts)?,
                opts.get("release").map_or("bench", String::as_str),
            )
            .with_tools(tools);
            if let Some(d) = opts.get("data-dir") {
                request = request.with_data_dir(d);
            }
            let manifest = store.create(&request, Arc::new(NoProgress)).await?;
            Ok(serde_json::json!({
                "seconds": started.elapsed().as_secs_f64(),
                "id": manifest.id,
                "dump_bytes": manifest.database_dump.size,
                "filestore_bytes": manifest.filestore.as_ref().map(|f| f.size),
                "toc": manifest.toc,
            }))
        }
        "verify" => {
            let manifest = store.verify(opt(opts, "id")?, Arc::new(NoProgress)).await?;
            Ok(
                serde_json::json!({ "seconds": started.elapsed().as_secs_f64(), "id": manifest.id, "bytes": manifest.size() }),
            )
        }
        "restore" => {
            let live = opt(opts, "live")?;
            let mut request = RestoreRequest::new(
                connection(opts)?,
                live,
                opt(opts, "id")?,
                Confirmation::new(live),
            )
            .with_tools(tools);
            if let Some(d) = opts.get("data-dir") {
                request = request.with_data_dir(d);
            }
            if let Some(j) = opts.get("jobs") {
                request = request.with_jobs(j.parse()?);
            }
            if let Some(p) = opts.get("probe") {
                request = request.with_probe(p);
            }
            let outcome = restore(&store, &request, Arc::new(NoProgress)).await?;
            let mut json = serde_json::to_value(&outcome)?;
            if let Some(obj) = json.as_object_mut() {
                obj.insert("seconds".to_owned(), started.elapsed().as_secs_f64().into());
            }
            Ok(json)
        }
        other => Err(format!("unknown command {other} (backup, verify, restore)").into()),
    }
}
