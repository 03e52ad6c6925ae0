//! `backup`: a verified backup of a database and its filestore.

use super::*;

#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    #[command(flatten)]
    pub(crate) pg: PgArgs,
    /// The database to back up [default: the URL's database].
    #[arg(long, value_name = "NAME")]
    pub(crate) db: Option<String>,
    /// The backup store (created when missing).
    #[arg(long, value_name = "DIR")]
    pub(crate) store: PathBuf,
    /// Odoo's data_dir: also archives <DIR>/filestore/<db>/.
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// The release live now, recorded in the manifest.
    #[arg(long, value_name = "LABEL", default_value = "unknown")]
    pub(crate) release: String,
    /// The git commit of that release.
    #[arg(long, value_name = "SHA")]
    pub(crate) git_sha: Option<String>,
    /// The stack, recorded in the manifest.
    #[arg(long, value_name = "NAME")]
    pub(crate) stack: Option<String>,
}

pub(crate) async fn backup(out: &Output, args: BackupArgs) -> Result<(), Failure> {
    let conn = args.pg.connection(args.db.as_deref())?;
    let store = BackupStore::open(&args.store)?;
    let mut request = BackupRequest::new(conn, &args.release).with_tools(args.pg.tools());
    if let Some(dir) = &args.data_dir {
        request = request.with_data_dir(dir);
    }
    if let Some(sha) = &args.git_sha {
        request = request.with_git_sha(sha);
    }
    if let Some(stack) = &args.stack {
        request = request.with_stack(stack);
    }
    out.note(&format!(
        "backing up database {} into {}",
        request.connection.dbname,
        args.store.display()
    ));
    let progress = Arc::new(TransferProgress::new(out.style, "odoo-rollback"));
    let result = store.create(&request, progress.clone()).await;
    progress.finish();
    let manifest = result?;
    let path = store.backup_dir(&manifest.id);
    if out.json {
        return out.json(serde_json::to_value(odoo_deploy::output::BackupOutput {
            manifest,
            path: path.display().to_string(),
        }));
    }
    out.text(&backup_text(&manifest, &path))
}

pub(crate) fn backup_text(m: &BackupManifest, path: &Path) -> String {
    let mut rows = vec![vec!["database".to_owned(), m.database.clone()]];
    let mut release = m.release.clone();
    if let Some(sha) = &m.git_sha {
        release.push_str(&format!(" (git {})", short_sha(sha)));
    }
    rows.push(vec!["release".to_owned(), release]);
    if let Some(stack) = &m.stack {
        rows.push(vec!["stack".to_owned(), stack.clone()]);
    }
    rows.push(vec![
        "dump".to_owned(),
        format!(
            "{}  sha256 {}",
            bytes(m.database_dump.size),
            m.database_dump.sha256
        ),
    ]);
    match &m.filestore {
        Some(f) => rows.push(vec![
            "filestore".to_owned(),
            format!(
                "{}, {} files  sha256 {}",
                bytes(f.size),
                f.files.unwrap_or_default(),
                f.sha256
            ),
        ]),
        None => rows.push(vec![
            "filestore".to_owned(),
            "not included (no --data-dir)".to_owned(),
        ]),
    }
    rows.push(vec![
        "verified".to_owned(),
        format!(
            "pg_restore --list: {} entries, {} tables",
            m.toc.entries, m.toc.tables
        ),
    ]);
    let took = (m.completed_at - m.created_at).to_std().unwrap_or_default();
    rows.push(vec![
        "taken".to_owned(),
        format!("{} in {}", time(m.created_at), human_duration(took)),
    ]);
    rows.push(vec!["path".to_owned(), path.display().to_string()]);
    let mut text = format!("backup {} complete\n", m.id);
    for line in columns(&rows).lines() {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    text
}
