//! `history`: list, filter, import and export the deployment history; figures.

use super::*;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("mode").args(["figures", "export_plain", "import_plain"])))]
pub(crate) struct HistoryArgs {
    /// The history directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) history: PathBuf,
    /// Only this stack.
    #[arg(long, value_name = "NAME")]
    pub(crate) stack: Option<String>,
    /// Only this environment: dev, staging, uat, production.
    #[arg(long, value_name = "ENV", value_parser = parse_environment)]
    pub(crate) env: Option<Environment>,
    /// Only this status: started, succeeded, failed, rolled_back.
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    pub(crate) status: Option<DeployStatus>,
    /// Only records since: an RFC 3339 time, a date (YYYY-MM-DD, UTC) or an age (7d, 12h).
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub(crate) since: Option<DateTime<Utc>>,
    /// Print figures instead: success rate, mean time to roll back, start to live.
    #[arg(long)]
    pub(crate) figures: bool,
    /// Print the records as a plain `timestamp | stack | version | env | status |
    /// operator` log.
    #[arg(long, conflicts_with = "json")]
    pub(crate) export_plain: bool,
    /// Append the records of a plain log (FILE, or - for stdin); records already
    /// present are skipped.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["stack", "env", "status", "since"])]
    pub(crate) import_plain: Option<PathBuf>,
}

pub(crate) fn history(out: &Output, args: &HistoryArgs) -> Result<(), Failure> {
    if let Some(file) = &args.import_plain {
        let text = if file.as_os_str() == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text)
                .map_err(|e| Failure::Usage(format!("--import-plain -: {e}")))?;
            text
        } else {
            std::fs::read_to_string(file)
                .map_err(|e| Failure::Usage(format!("--import-plain {}: {e}", file.display())))?
        };
        let history = History::open(&args.history)?;
        let imported = history.import_plain(&text)?;
        if out.json {
            return out.json(serde_json::to_value(odoo_deploy::output::ImportOutput {
                imported,
            }));
        }
        return out.text(&format!(
            "imported {imported} record{} into {}\n",
            if imported == 1 { "" } else { "s" },
            args.history.display()
        ));
    }
    existing_dir("--history", &args.history)?;
    let history = History::open(&args.history)?;
    let filter = HistoryFilter {
        stack: args.stack.clone(),
        environment: args.env,
        status: args.status,
        since: args.since,
    };
    if args.export_plain {
        let mut buffer = Vec::new();
        history.export_plain(&filter, &mut buffer)?;
        return out.text(&String::from_utf8_lossy(&buffer));
    }
    if args.figures {
        let figures = history.figures(&filter)?;
        if out.json {
            return out.json(serde_json::to_value(&figures));
        }
        return out.text(&figures_text(&figures));
    }
    let records = history.list(&filter)?;
    if out.json {
        return out.json(serde_json::to_value(&records));
    }
    out.text(&records_text(&records))
}

pub(crate) fn records_text(records: &[DeploymentRecord]) -> String {
    if records.is_empty() {
        return "no records\n".to_owned();
    }
    let colour = cli::colour_stdout();
    let mut rows = vec![[
        "TIMESTAMP",
        "STACK",
        "ENV",
        "RELEASE",
        "STATUS",
        "OPERATOR",
        "DURATION",
        "BACKUP",
    ]
    .map(str::to_owned)
    .to_vec()];
    for r in records {
        rows.push(vec![
            time(r.timestamp),
            r.stack.clone(),
            r.environment.to_string(),
            r.release.clone(),
            r.status.to_string(),
            r.operator.clone(),
            r.duration.map_or_else(|| "-".to_owned(), human_duration),
            r.backup_id.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    let text = columns(&rows);
    if !colour {
        return text;
    }
    // Colour the status column once aligned: the codes take no width.
    let mut coloured = String::new();
    for (line, record) in text
        .lines()
        .zip(std::iter::once(None).chain(records.iter().map(Some)))
    {
        let painted = record.and_then(|r| {
            let code = match r.status {
                DeployStatus::Succeeded => "32",
                DeployStatus::Failed => "31",
                DeployStatus::RolledBack => "33",
                DeployStatus::Interrupted => "35",
                DeployStatus::Started => return None,
            };
            let status = r.status.as_str();
            let at = line.find(&format!("  {status}  "))? + 2;
            Some(format!(
                "{}\x1b[{code}m{status}\x1b[0m{}",
                line.get(..at)?,
                line.get(at + status.len()..)?
            ))
        });
        coloured.push_str(painted.as_deref().unwrap_or(line));
        coloured.push('\n');
    }
    coloured
}

pub(crate) fn figures_text(f: &Figures) -> String {
    let rate = f
        .success_rate
        .map_or_else(|| "-".to_owned(), |r| format!("{:.1} %", r * 100.0));
    let opt = |d: Option<Duration>| d.map_or_else(|| "-".to_owned(), human_duration);
    let rows = vec![
        vec!["deployments".to_owned(), f.deployments.to_string()],
        vec!["succeeded".to_owned(), f.succeeded.to_string()],
        vec!["failed".to_owned(), f.failed.to_string()],
        vec!["rolled back".to_owned(), f.rolled_back.to_string()],
        vec!["interrupted".to_owned(), f.interrupted.to_string()],
        vec!["in progress".to_owned(), f.in_progress.to_string()],
        vec!["success rate".to_owned(), rate],
        vec![
            "mean time to roll back".to_owned(),
            opt(f.mean_time_to_rollback),
        ],
        vec!["mean start to live".to_owned(), opt(f.mean_start_to_live)],
    ];
    columns(&rows)
}
