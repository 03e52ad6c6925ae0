//! `revert`: a git revert of the deploy branch, pushed.

use super::*;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["merge", "commit"])))]
pub(crate) struct RevertArgs {
    /// The local clone (with a work tree).
    #[arg(long, value_name = "PATH")]
    pub(crate) repo: PathBuf,
    /// The deploy branch; HEAD must be on it.
    #[arg(long, value_name = "NAME")]
    pub(crate) branch: String,
    /// A merge commit to revert (keeping its first parent, like git revert -m 1).
    #[arg(long, value_name = "SHA")]
    pub(crate) merge: Option<String>,
    /// A plain commit to revert.
    #[arg(long, value_name = "SHA")]
    pub(crate) commit: Option<String>,
    /// For --merge: the parent to keep.
    #[arg(long, value_name = "N", requires = "merge")]
    pub(crate) mainline: Option<u32>,
    /// The remote to fetch from and push to.
    #[arg(long, value_name = "NAME", default_value = "origin")]
    pub(crate) remote: String,
    /// Show what would change; commit and push nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Environment variable holding an HTTPS token for the remote.
    #[arg(long, value_name = "VAR")]
    pub(crate) token_env: Option<String>,
    /// User name sent with the token (GitLab wants oauth2).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "x-access-token",
        requires = "token_env"
    )]
    pub(crate) token_user: String,
    /// Ask the SSH agent (SSH_AUTH_SOCK) for ssh:// remotes.
    #[arg(long)]
    pub(crate) ssh_agent: bool,
    /// Committer name [default: the repository's user.name].
    #[arg(long, value_name = "NAME", requires = "committer_email")]
    pub(crate) committer_name: Option<String>,
    /// Committer e-mail [default: the repository's user.email].
    #[arg(long, value_name = "EMAIL", requires = "committer_name")]
    pub(crate) committer_email: Option<String>,
}

pub(crate) async fn revert(out: &Output, args: RevertArgs) -> Result<(), Failure> {
    let (commit, mainline) = match (&args.merge, &args.commit) {
        (Some(merge), None) => (merge.clone(), Some(args.mainline.unwrap_or(1))),
        (None, Some(commit)) => (commit.clone(), None),
        _ => {
            return Err(Failure::Usage(
                "give exactly one of --merge SHA and --commit SHA".to_owned(),
            ))
        }
    };
    if let Some(var) = &args.token_env {
        // Checked here so that a missing token is a usage error, not a failed push.
        flag_secret("--token-env", &SecretRef::env(var))?;
    }
    let credentials = GitCredentials {
        ssh_agent: args.ssh_agent,
        token_env: args.token_env.clone(),
        token_user: args.token_user.clone(),
    };
    let mut request = GitRevertRequest::new(&args.repo, &args.branch, &commit)
        .with_remote(&args.remote)
        .with_credentials(credentials)
        .dry_run(args.dry_run);
    request.mainline = mainline;
    if let (Some(name), Some(email)) = (&args.committer_name, &args.committer_email) {
        request.identity = Some(GitIdentity {
            name: name.clone(),
            email: email.clone(),
        });
    }
    let what = if args.dry_run {
        format!(
            "computing the revert of {commit} on {} (dry run: fetch only)",
            args.branch
        )
    } else {
        format!(
            "reverting {commit} on {}: fetch, commit, push to {}",
            args.branch, args.remote
        )
    };
    let bar = spinner(out, &what);
    let result = deploy_rollback::revert_blocking(request).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let outcome = result?;
    if out.json {
        return out.json(serde_json::to_value(&outcome));
    }
    out.text(&revert_text(&outcome))
}

pub(crate) fn revert_text(o: &RevertOutcome) -> String {
    let mainline = o
        .mainline
        .map_or_else(String::new, |m| format!(" (merge, keeping parent {m})"));
    let mut text = if o.dry_run {
        format!(
            "dry run: would revert {} \"{}\"{mainline} on {}/{}; nothing committed or pushed\n",
            short_sha(&o.reverted),
            o.reverted_summary,
            o.remote,
            o.branch
        )
    } else {
        format!(
            "reverted {} \"{}\"{mainline} on {}/{}: commit {}{}\n",
            short_sha(&o.reverted),
            o.reverted_summary,
            o.remote,
            o.branch,
            o.revert_commit.as_deref().map_or("-", short_sha),
            if o.pushed { ", pushed" } else { ", not pushed" }
        )
    };
    let mut rows = vec![vec![
        "base".to_owned(),
        short_sha(&o.base).to_owned(),
        String::new(),
    ]];
    for f in &o.files {
        let kind = serde_json::to_value(f.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        rows.push(vec![
            kind,
            f.path.clone(),
            format!("+{} -{}", f.insertions, f.deletions),
        ]);
    }
    for line in columns(&rows).lines() {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    let d = &o.diffstat;
    text.push_str(&format!(
        "  {} file{} changed, {} insertion{}(+), {} deletion{}(-)\n",
        d.files_changed,
        if d.files_changed == 1 { "" } else { "s" },
        d.insertions,
        if d.insertions == 1 { "" } else { "s" },
        d.deletions,
        if d.deletions == 1 { "" } else { "s" },
    ));
    text.push_str("  message:\n");
    for line in o.message.lines() {
        text.push_str("    ");
        text.push_str(line);
        text.push('\n');
    }
    text
}
