//! `backups`: what the backup store holds.

use super::*;
use odoo_deploy::output::{BackupListingState as State, BackupsOutput, ListedBackup as Listed};

#[derive(Debug, Args)]
pub(crate) struct BackupsArgs {
    /// The backup store.
    #[arg(long, value_name = "DIR")]
    pub(crate) store: PathBuf,
    /// The history: marks the pre-deploy backups it protects from `prune`.
    #[arg(long, value_name = "DIR")]
    pub(crate) history: Option<PathBuf>,
}

pub(crate) fn backups(out: &Output, args: &BackupsArgs) -> Result<(), Failure> {
    existing_dir("--store", &args.store)?;
    let store = BackupStore::open(&args.store)?;
    let protected = protected_ids(args.history.as_deref())?;
    let now = Utc::now();
    let mut listed: Vec<Listed> = store
        .scan()?
        .into_iter()
        .map(|entry| {
            let is_protected = protected.contains(&entry.id);
            let mut row = Listed {
                id: entry.id,
                state: State::Complete,
                database: None,
                stack: None,
                release: None,
                size_bytes: None,
                verified: false,
                created_at: None,
                age_seconds: None,
                protected: is_protected,
                problem: None,
            };
            match entry.state {
                BackupState::Complete(m) => {
                    row.database = Some(m.database.clone());
                    row.stack.clone_from(&m.stack);
                    row.release = Some(m.release.clone());
                    row.size_bytes = Some(m.size());
                    row.verified = true;
                    row.created_at = Some(m.created_at);
                    row.age_seconds = Some((now - m.created_at).num_seconds());
                }
                BackupState::Partial => row.state = State::Partial,
                BackupState::Removing => row.state = State::Removing,
                BackupState::Invalid { reason } => {
                    row.state = State::Invalid;
                    row.problem = Some(reason);
                }
            }
            row
        })
        .collect();
    // Newest first; the unfinished ones (no time) last.
    listed.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
    if out.json {
        return out.json(serde_json::to_value(BackupsOutput {
            store: args.store.display().to_string(),
            backups: listed,
        }));
    }
    if listed.is_empty() {
        return out.text(&format!("no backups in {}\n", args.store.display()));
    }
    let mut rows = vec![[
        "BACKUP",
        "DATABASE",
        "RELEASE",
        "SIZE",
        "VERIFIED",
        "AGE",
        "PROTECTED",
    ]
    .map(str::to_owned)
    .to_vec()];
    for row in &listed {
        rows.push(vec![
            row.id.clone(),
            row.database.clone().unwrap_or_else(|| "-".to_owned()),
            row.release.clone().unwrap_or_else(|| "-".to_owned()),
            row.size_bytes.map_or_else(|| "-".to_owned(), bytes),
            match row.state {
                State::Complete => "yes".to_owned(),
                State::Partial => "no (partial)".to_owned(),
                State::Removing => "no (removing)".to_owned(),
                State::Invalid => "no (invalid)".to_owned(),
            },
            row.age_seconds.map_or_else(|| "-".to_owned(), age),
            if row.protected { "yes (history)" } else { "no" }.to_owned(),
        ]);
    }
    let complete = listed.iter().filter(|r| r.verified).count();
    let total: u64 = listed.iter().filter_map(|r| r.size_bytes).sum();
    let mut text = columns(&rows);
    text.push_str(&format!(
        "{complete} complete backup(s), {} in all; {} other director(ies)\n",
        bytes(total),
        listed.len() - complete
    ));
    out.text(&text)
}

/// `3d 4h`, `5h 12m`, `42m`, `10s`.
fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{s}s")
    }
}
