//! `restore`: a backup over a live database, verified, swapped in by renaming.

use super::*;

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    #[command(flatten)]
    pub(crate) pg: PgArgs,
    /// The backup store.
    #[arg(long, value_name = "DIR")]
    pub(crate) store: PathBuf,
    /// The backup id (as `backup` printed it).
    #[arg(long, value_name = "ID")]
    pub(crate) backup: String,
    /// The live database to replace.
    #[arg(long, value_name = "NAME")]
    pub(crate) db: String,
    /// The live database's name again, to confirm the replacement (asked for on a
    /// terminal when missing; refused otherwise).
    #[arg(long, value_name = "NAME")]
    pub(crate) confirm: Option<String>,
    /// The database to connect to for CREATE/ALTER DATABASE (never the live one).
    #[arg(long, value_name = "NAME", default_value = "postgres")]
    pub(crate) maintenance_db: String,
    /// Odoo's data_dir: also restores the filestore under <DIR>/filestore/.
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// SQL run on the restored database before the swap; it must return a row.
    #[arg(long, value_name = "SQL")]
    pub(crate) probe: Option<String>,
    /// pg_restore --jobs.
    #[arg(long, value_name = "N")]
    pub(crate) jobs: Option<u32>,
    /// How long the swap may keep closing sessions of the live database.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) swap_timeout: Duration,
}

pub(crate) async fn restore_cmd(out: &Output, args: RestoreArgs) -> Result<(), Failure> {
    existing_dir("--store", &args.store)?;
    let conn = args.pg.connection(Some(&args.maintenance_db))?;
    let store = BackupStore::open(&args.store)?;
    let confirmation = match &args.confirm {
        Some(typed) => typed.clone(),
        None => prompt_confirmation(out, &store, &args)?,
    };
    let mut request = RestoreRequest::new(
        conn,
        &args.db,
        &args.backup,
        Confirmation::new(confirmation),
    )
    .with_tools(args.pg.tools());
    request.swap_timeout = args.swap_timeout;
    if let Some(dir) = &args.data_dir {
        request = request.with_data_dir(dir);
    }
    if let Some(probe) = &args.probe {
        request = request.with_probe(probe);
    }
    if let Some(jobs) = args.jobs {
        request = request.with_jobs(jobs);
    }
    out.note(&format!(
        "restoring backup {} over database {}",
        args.backup, args.db
    ));
    let progress = Arc::new(TransferProgress::new(out.style, "odoo-rollback"));
    let result = deploy_rollback::restore(&store, &request, progress.clone()).await;
    progress.finish();
    let outcome = result?;
    if out.json {
        return out.json(serde_json::to_value(&outcome));
    }
    out.text(&restore_text(&outcome))
}

/// Asks for the live database's name on a terminal; refuses without one.
pub(crate) fn prompt_confirmation(
    out: &Output,
    store: &BackupStore,
    args: &RestoreArgs,
) -> Result<String, Failure> {
    let refused = || {
        Failure::Refused(format!(
            "restoring replaces database {db} (it is kept as {db}_replaced_<time>): \
             confirm with --confirm {db}",
            db = args.db
        ))
    };
    if out.json || !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(refused());
    }
    let manifest = store.get(&args.backup)?;
    let _ = write!(
        std::io::stderr(),
        "Restore backup {} (database {}, release {}, taken {}) over the live database {}?\n\
         The live database is kept under a dated name. Type its name to confirm: ",
        manifest.id,
        manifest.database,
        manifest.release,
        time(manifest.created_at),
        args.db
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Infra(format!("reading the confirmation: {e}")))?;
    let typed = line.trim();
    if typed.is_empty() {
        return Err(refused());
    }
    Ok(typed.to_owned())
}

pub(crate) fn restore_text(o: &RestoreOutcome) -> String {
    let mut rows = vec![
        vec![
            "unavailable".to_owned(),
            format!(
                "{} (the rename swap; {} session{} closed)",
                human_duration(o.unavailable),
                o.terminated_sessions,
                if o.terminated_sessions == 1 { "" } else { "s" }
            ),
        ],
        vec![
            "restore".to_owned(),
            format!(
                "{} (the live database served meanwhile)",
                human_duration(o.restore_duration)
            ),
        ],
    ];
    let v = &o.verification;
    let mut verified = format!("{}/{} tables", v.tables_found, v.tables_expected);
    if let Some(probe) = &v.probe_result {
        verified.push_str(&format!("; probe returned {probe}"));
    }
    rows.push(vec!["verified".to_owned(), verified]);
    if let Some(fs) = &o.live_filestore {
        rows.push(vec!["filestore".to_owned(), fs.display().to_string()]);
    }
    rows.push(vec![
        "kept".to_owned(),
        match &o.replaced_database {
            Some(db) => format!("database {db}"),
            None => format!("no database {} existed before", o.live_database),
        },
    ]);
    if let Some(fs) = &o.replaced_filestore {
        rows.push(vec![String::new(), format!("filestore {}", fs.display())]);
    }
    let mut text = format!(
        "restored backup {} over database {}\n",
        o.backup_id, o.live_database
    );
    for line in columns(&rows).lines() {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    text
}
