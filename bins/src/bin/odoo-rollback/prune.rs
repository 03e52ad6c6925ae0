//! `prune`: old backups removed by retention policy.

use super::*;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("policy").required(true).multiple(true).args(["keep_last", "keep_daily", "keep_weekly"])))]
pub(crate) struct PruneArgs {
    /// The backup store.
    #[arg(long, value_name = "DIR")]
    pub(crate) store: PathBuf,
    /// Keep the newest N backups of each database.
    #[arg(long, value_name = "N", conflicts_with_all = ["keep_daily", "keep_weekly"])]
    pub(crate) keep_last: Option<usize>,
    /// Keep the newest backup of each of the last N days.
    #[arg(long, value_name = "N")]
    pub(crate) keep_daily: Option<usize>,
    /// Keep the newest backup of each of the last N ISO weeks.
    #[arg(long, value_name = "N")]
    pub(crate) keep_weekly: Option<usize>,
    /// The history: keeps the pre-deploy backups of current and in-progress releases.
    #[arg(long, value_name = "DIR")]
    pub(crate) history: Option<PathBuf>,
    /// Also remove partial backups (left by killed runs) older than this.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub(crate) partials_older_than: Duration,
    /// Show what would be removed; remove nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

pub(crate) fn prune(out: &Output, args: &PruneArgs) -> Result<(), Failure> {
    existing_dir("--store", &args.store)?;
    let store = BackupStore::open(&args.store)?;
    let policy = match args.keep_last {
        Some(n) => RetentionPolicy::last(n),
        None => RetentionPolicy::generations(
            args.keep_daily.unwrap_or_default(),
            args.keep_weekly.unwrap_or_default(),
        ),
    };
    let protected = protected_ids(args.history.as_deref())?;
    let now = SystemTime::now();
    let (report, partials) = if args.dry_run {
        let decisions = store.plan_prune(&policy, &protected)?;
        let partials = store.stale_partials(args.partials_older_than, now)?;
        let removed = decisions
            .iter()
            .filter(|d| !d.is_kept())
            .map(|d| d.id.clone())
            .collect();
        (PruneReport { decisions, removed }, partials)
    } else {
        let report = store.prune(&policy, &protected)?;
        let partials = store.remove_stale_partials(args.partials_older_than, now)?;
        (report, partials)
    };
    if out.json {
        return out.json(serde_json::to_value(odoo_deploy::output::PruneOutput {
            report,
            dry_run: args.dry_run,
            protected: protected.to_vec(),
            stale_partials: partials.iter().map(|p| p.display().to_string()).collect(),
        }));
    }
    out.text(&prune_text(&report.decisions, &partials, args.dry_run))
}

/// The backup ids the history at `history` protects from pruning (none without one).
pub(crate) fn protected_ids(history: Option<&Path>) -> Result<Vec<String>, Failure> {
    match history {
        Some(dir) => {
            existing_dir("--history", dir)?;
            Ok(History::open(dir)?.protected_backups()?)
        }
        None => Ok(Vec::new()),
    }
}

pub(crate) fn keep_reasons(d: &RetentionDecision) -> String {
    d.keep
        .iter()
        .filter_map(|k| serde_json::to_value(k).ok())
        .map(|v| {
            let rule = v.get("rule").and_then(Value::as_str).unwrap_or("kept");
            match (v.get("day"), v.get("year"), v.get("week")) {
                (Some(day), _, _) => format!("{rule} {}", day.as_str().unwrap_or_default()),
                (_, Some(year), Some(week)) => format!("{rule} {year}-W{week:0>2}"),
                _ => rule.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn prune_text(
    decisions: &[RetentionDecision],
    partials: &[PathBuf],
    dry_run: bool,
) -> String {
    let remove = if dry_run { "would remove" } else { "removed" };
    let mut rows = vec![["ACTION", "BACKUP", "DATABASE", "TAKEN", "WHY"]
        .map(str::to_owned)
        .to_vec()];
    for d in decisions {
        rows.push(vec![
            if d.is_kept() { "keep" } else { remove }.to_owned(),
            d.id.clone(),
            d.database.clone(),
            time(d.created_at),
            if d.is_kept() {
                keep_reasons(d)
            } else {
                "not kept by any rule".to_owned()
            },
        ]);
    }
    let mut text = if decisions.is_empty() {
        "no complete backups\n".to_owned()
    } else {
        columns(&rows)
    };
    for p in partials {
        text.push_str(&format!("{remove} partial {}\n", p.display()));
    }
    let removed = decisions.iter().filter(|d| !d.is_kept()).count();
    text.push_str(&format!(
        "{}{} kept, {removed} {remove}\n",
        if dry_run { "dry run: " } else { "" },
        decisions.len() - removed
    ));
    text
}
