//! Git revert: undo a merge (or a named commit) on the deploy branch and push it, for
//! hosts that build from a branch (Odoo.sh).
//!
//! # Steps ([`revert`])
//!
//! 1. Open the local clone; HEAD must be on the deploy branch ([`Error::WrongBranch`]).
//! 2. Refuse a dirty work tree: modified, staged, deleted or untracked files
//!    ([`Error::DirtyWorkTree`] lists them; ignored files do not count).
//! 3. Fetch the branch from the remote. Local and remote each with commits the other
//!    lacks: [`Error::Diverged`]. Local commits the remote lacks:
//!    [`Error::UnpushedCommits`] (a push would publish them). Remote ahead only: the
//!    local branch is fast-forwarded first.
//! 4. Compute the revert in memory, like `git revert -m 1` for a merge (mainline parent
//!    1 unless told otherwise) or `git revert` for a plain commit; conflicts give
//!    [`Error::RevertConflict`] and change nothing.
//! 5. With `dry_run`, stop here and return the files and the diffstat.
//! 6. Commit with git's message (`Revert "<summary>"` / `This reverts commit <sha>.`),
//!    update the work tree, push the branch. A rejected or failed push resets the local
//!    branch to where it was, so the call can be retried.
//!
//! # Credentials
//!
//! Asked for by the remote only: the SSH agent for `ssh://` remotes, a token from an
//! environment variable for `https://` remotes ([`GitCredentials`]). The token is held
//! as a `SecretString` and given to libgit2 only; remote URLs (which may embed
//! credentials) are never logged.
//!
//! All of this is blocking (libgit2); [`revert_blocking`] runs it on tokio's blocking
//! pool.

use std::path::PathBuf;

use git2::{CredentialType, Oid, Repository, Status, StatusOptions};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::error::{Error, Result};

/// Where credentials for the remote come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitCredentials {
    /// Ask the SSH agent (`SSH_AUTH_SOCK`) for `ssh://` remotes.
    pub ssh_agent: bool,
    /// Environment variable holding an HTTPS token (read when the remote asks for a
    /// user name and password).
    pub token_env: Option<String>,
    /// User name sent with the token. Default `x-access-token` (GitHub ignores it;
    /// GitLab wants `oauth2`).
    pub token_user: String,
}

impl Default for GitCredentials {
    /// The SSH agent, and a token in `ODOO_DEPLOY_GIT_TOKEN`.
    fn default() -> Self {
        GitCredentials {
            ssh_agent: true,
            token_env: Some("ODOO_DEPLOY_GIT_TOKEN".to_owned()),
            token_user: "x-access-token".to_owned(),
        }
    }
}

/// The committer of the revert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitIdentity {
    /// Name.
    pub name: String,
    /// E-mail address.
    pub email: String,
}

/// What to revert, where.
#[derive(Debug, Clone)]
pub struct GitRevertRequest {
    /// The local clone (with a work tree).
    pub repo: PathBuf,
    /// The remote to fetch from and push to. Default `origin`.
    pub remote: String,
    /// The deploy branch (for example `production`).
    pub branch: String,
    /// The commit to revert: any revision git understands (`HEAD`, a sha, a tag).
    pub commit: String,
    /// For a merge commit, the parent to keep (git's `-m`). `None`: 1.
    pub mainline: Option<u32>,
    /// Only compute and report what would change: no commit, no push.
    pub dry_run: bool,
    /// Committer; `None` uses the repository's `user.name` and `user.email`.
    pub identity: Option<GitIdentity>,
    /// Credentials for fetch and push.
    pub credentials: GitCredentials,
}

impl GitRevertRequest {
    /// Revert `commit` on `branch` of the clone at `repo`, remote `origin`.
    #[must_use]
    pub fn new(
        repo: impl Into<PathBuf>,
        branch: impl Into<String>,
        commit: impl Into<String>,
    ) -> Self {
        GitRevertRequest {
            repo: repo.into(),
            remote: "origin".to_owned(),
            branch: branch.into(),
            commit: commit.into(),
            mainline: None,
            dry_run: false,
            identity: None,
            credentials: GitCredentials::default(),
        }
    }

    /// Only report what would change.
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Uses another remote.
    #[must_use]
    pub fn with_remote(mut self, remote: impl Into<String>) -> Self {
        self.remote = remote.into();
        self
    }

    /// Commits as `identity`.
    #[must_use]
    pub fn with_identity(mut self, name: impl Into<String>, email: impl Into<String>) -> Self {
        self.identity = Some(GitIdentity {
            name: name.into(),
            email: email.into(),
        });
        self
    }

    /// Uses `credentials`.
    #[must_use]
    pub fn with_credentials(mut self, credentials: GitCredentials) -> Self {
        self.credentials = credentials;
        self
    }
}

/// How a file changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Created by the revert.
    Added,
    /// Removed by the revert.
    Deleted,
    /// Changed by the revert.
    Modified,
    /// Renamed (or otherwise changed in type).
    Other,
}

/// One file the revert changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct FileChange {
    /// Path in the repository.
    pub path: String,
    /// How it changes.
    pub kind: ChangeKind,
    /// Lines added.
    pub insertions: usize,
    /// Lines removed.
    pub deletions: usize,
}

/// Totals over the changed files (`git diff --stat`'s last line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct DiffStat {
    /// Files changed.
    pub files_changed: usize,
    /// Lines added.
    pub insertions: usize,
    /// Lines removed.
    pub deletions: usize,
}

/// The result of [`revert`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RevertOutcome {
    /// The deploy branch.
    pub branch: String,
    /// The remote.
    pub remote: String,
    /// The reverted commit (full sha).
    pub reverted: String,
    /// Its summary line.
    pub reverted_summary: String,
    /// The mainline parent used (merges only).
    pub mainline: Option<u32>,
    /// The commit the revert applies on top of.
    pub base: String,
    /// The revert commit; `None` in a dry run.
    pub revert_commit: Option<String>,
    /// The commit message (used, or that would be used).
    pub message: String,
    /// The files that change.
    pub files: Vec<FileChange>,
    /// Totals.
    pub diffstat: DiffStat,
    /// Whether the branch was pushed.
    pub pushed: bool,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

fn g(op: &'static str) -> impl Fn(git2::Error) -> Error {
    move |e| Error::git(op, e)
}

/// Reverts a commit on the deploy branch and pushes it (see the module docs).
///
/// Blocking: call [`revert_blocking`] from async code.
///
/// # Errors
///
/// [`Error::WrongBranch`], [`Error::DirtyWorkTree`], [`Error::Diverged`],
/// [`Error::UnpushedCommits`], [`Error::CommitNotFound`] (unknown, or not on the
/// branch), [`Error::RevertConflict`], [`Error::NothingToRevert`],
/// [`Error::PushRejected`], [`Error::InvalidInput`] (a bare repository, `mainline` for a
/// commit that is not a merge, a missing remote branch) and [`Error::Git`] for
/// libgit2 failures (class `Net/Auth` for a failed authentication).
pub fn revert(request: &GitRevertRequest) -> Result<RevertOutcome> {
    let repo = Repository::open(&request.repo).map_err(g("open repository"))?;
    if repo.is_bare() {
        return Err(Error::InvalidInput {
            what: "repository",
            reason: "a bare repository has no work tree to revert in".to_owned(),
        });
    }
    let branch = request.branch.as_str();
    let local_ref = format!("refs/heads/{branch}");
    let head = repo.head().map_err(g("read HEAD"))?;
    if head.name().ok() != Some(local_ref.as_str()) {
        return Err(Error::WrongBranch {
            expected: branch.to_owned(),
            actual: head.shorthand().unwrap_or("(detached HEAD)").to_owned(),
        });
    }
    let local_oid = head.target().ok_or_else(|| Error::InvalidInput {
        what: "branch",
        reason: format!("{branch} has no commit"),
    })?;
    drop(head);

    let dirty = dirty_paths(&repo)?;
    if !dirty.is_empty() {
        return Err(Error::DirtyWorkTree { paths: dirty });
    }

    // Fetch the remote branch.
    let mut remote = repo
        .find_remote(&request.remote)
        .map_err(g("find remote"))?;
    let tracking = format!("refs/remotes/{}/{branch}", request.remote);
    let refspec = format!("+{local_ref}:{tracking}");
    let mut fetch = git2::FetchOptions::new();
    fetch.remote_callbacks(callbacks(&request.credentials));
    remote
        .fetch(&[refspec.as_str()], Some(&mut fetch), None)
        .map_err(g("fetch"))?;
    let remote_oid = repo
        .refname_to_id(&tracking)
        .map_err(|_| Error::InvalidInput {
            what: "remote branch",
            reason: format!("{} has no branch {branch}", request.remote),
        })?;
    let (ahead, behind) = repo
        .graph_ahead_behind(local_oid, remote_oid)
        .map_err(g("compare with remote"))?;
    if ahead > 0 && behind > 0 {
        return Err(Error::Diverged {
            branch: branch.to_owned(),
            remote: request.remote.clone(),
            ahead,
            behind,
        });
    }
    if ahead > 0 {
        return Err(Error::UnpushedCommits {
            branch: branch.to_owned(),
            remote: request.remote.clone(),
            ahead,
        });
    }
    let base_oid = remote_oid;

    // The commit to revert, which must be on the branch.
    let target = repo
        .revparse_single(&request.commit)
        .and_then(|o| o.peel_to_commit())
        .map_err(|_| Error::CommitNotFound {
            spec: request.commit.clone(),
            reason: "does not exist".to_owned(),
        })?;
    let on_branch = target.id() == base_oid
        || repo
            .graph_descendant_of(base_oid, target.id())
            .map_err(g("walk history"))?;
    if !on_branch {
        return Err(Error::CommitNotFound {
            spec: request.commit.clone(),
            reason: format!("is not on branch {branch}"),
        });
    }
    let is_merge = target.parent_count() > 1;
    let mainline = match (is_merge, request.mainline) {
        (true, m) => Some(m.unwrap_or(1)),
        (false, None) => None,
        (false, Some(_)) => {
            return Err(Error::InvalidInput {
                what: "mainline",
                reason: format!("{} is not a merge commit", target.id()),
            })
        }
    };
    let base = repo.find_commit(base_oid).map_err(g("read base commit"))?;
    let mut index = repo
        .revert_commit(&target, &base, mainline.unwrap_or(0), None)
        .map_err(g("revert"))?;
    if index.has_conflicts() {
        let mut paths: Vec<String> = index
            .conflicts()
            .map_err(g("read conflicts"))?
            .filter_map(|c| c.ok())
            .filter_map(|c| c.our.or(c.their).or(c.ancestor))
            .map(|e| String::from_utf8_lossy(&e.path).into_owned())
            .collect();
        paths.sort();
        paths.dedup();
        return Err(Error::RevertConflict {
            commit: target.id().to_string(),
            paths,
        });
    }
    let tree_oid = index.write_tree_to(&repo).map_err(g("write tree"))?;
    let base_tree = base.tree().map_err(g("read base tree"))?;
    if tree_oid == base_tree.id() {
        return Err(Error::NothingToRevert {
            commit: target.id().to_string(),
        });
    }
    let tree = repo.find_tree(tree_oid).map_err(g("read tree"))?;
    let (files, diffstat) = diff_summary(&repo, &base_tree, &tree)?;

    let summary = String::from_utf8_lossy(target.summary_bytes().unwrap_or_default()).into_owned();
    let message = match mainline {
        Some(m) => {
            let parent = target
                .parent_id(m.saturating_sub(1) as usize)
                .map_err(|_| Error::InvalidInput {
                    what: "mainline",
                    reason: format!("{} has no parent {m}", target.id()),
                })?;
            format!(
                "Revert \"{summary}\"\n\nThis reverts commit {}, reversing\nchanges made to {parent}.\n",
                target.id()
            )
        }
        None => format!(
            "Revert \"{summary}\"\n\nThis reverts commit {}.\n",
            target.id()
        ),
    };
    let mut outcome = RevertOutcome {
        branch: branch.to_owned(),
        remote: request.remote.clone(),
        reverted: target.id().to_string(),
        reverted_summary: summary,
        mainline,
        base: base_oid.to_string(),
        revert_commit: None,
        message,
        files,
        diffstat,
        pushed: false,
        dry_run: request.dry_run,
    };
    if request.dry_run {
        tracing::info!(branch, commit = %outcome.reverted, files = outcome.diffstat.files_changed, "git revert dry run");
        return Ok(outcome);
    }

    // Fast-forward to the remote when behind, then commit on top.
    if behind > 0 {
        move_branch(
            &repo,
            &local_ref,
            base_oid,
            "fast-forward to remote before revert",
        )?;
    }
    let signature = match &request.identity {
        Some(id) => git2::Signature::now(&id.name, &id.email),
        None => repo.signature(),
    }
    .map_err(g(
        "committer identity (set user.name and user.email, or pass an identity)",
    ))?;
    let commit_oid = repo
        .commit(
            Some("HEAD"),
            &signature,
            &signature,
            &outcome.message,
            &tree,
            &[&base],
        )
        .map_err(g("commit"))?;
    repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .map_err(g("update work tree"))?;
    outcome.revert_commit = Some(commit_oid.to_string());

    // Push; on failure put the branch back where it was so the call can be retried.
    let pushed = push(&mut remote, &local_ref, &request.credentials);
    if let Err(e) = pushed {
        tracing::warn!(branch, error = %e, "push failed; resetting the local branch");
        if let Err(reset) = move_branch(
            &repo,
            &local_ref,
            local_oid,
            "undo revert after failed push",
        ) {
            tracing::error!(branch, error = %reset, "could not reset the local branch after a failed push");
        }
        return Err(e);
    }
    // Keep the remote-tracking branch in step with what was pushed.
    if let Err(e) = repo.reference(&tracking, commit_oid, true, "pushed revert") {
        tracing::debug!(error = %e, "could not update the remote-tracking branch");
    }
    outcome.pushed = true;
    tracing::info!(branch, commit = %outcome.reverted, revert = %commit_oid, "reverted and pushed");
    Ok(outcome)
}

/// [`revert`] on tokio's blocking pool.
///
/// # Errors
///
/// As [`revert`]; [`Error::Task`] when the blocking task cannot be joined.
pub async fn revert_blocking(request: GitRevertRequest) -> Result<RevertOutcome> {
    tokio::task::spawn_blocking(move || revert(&request))
        .await
        .map_err(Error::task)?
}

fn dirty_paths(repo: &Repository) -> Result<Vec<String>> {
    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(false);
    let statuses = repo.statuses(Some(&mut opts)).map_err(g("read status"))?;
    let mut paths: Vec<String> = statuses
        .iter()
        .filter(|s| s.status() != Status::CURRENT && !s.status().contains(Status::IGNORED))
        .map(|s| String::from_utf8_lossy(s.path_bytes()).into_owned())
        .collect();
    paths.sort();
    Ok(paths)
}

fn move_branch(repo: &Repository, local_ref: &str, to: Oid, why: &str) -> Result<()> {
    let commit = repo.find_commit(to).map_err(g("read commit"))?;
    repo.reference(local_ref, to, true, why)
        .map_err(g("update branch"))?;
    repo.checkout_tree(
        commit.as_object(),
        Some(git2::build::CheckoutBuilder::new().force()),
    )
    .map_err(g("update work tree"))?;
    repo.set_head(local_ref).map_err(g("update HEAD"))?;
    Ok(())
}

fn diff_summary(
    repo: &Repository,
    from: &git2::Tree<'_>,
    to: &git2::Tree<'_>,
) -> Result<(Vec<FileChange>, DiffStat)> {
    let diff = repo
        .diff_tree_to_tree(Some(from), Some(to), None)
        .map_err(g("diff"))?;
    let mut files = Vec::new();
    let mut total = DiffStat::default();
    for (i, delta) in diff.deltas().enumerate() {
        let kind = match delta.status() {
            git2::Delta::Added => ChangeKind::Added,
            git2::Delta::Deleted => ChangeKind::Deleted,
            git2::Delta::Modified => ChangeKind::Modified,
            _ => ChangeKind::Other,
        };
        let path = delta
            .new_file()
            .path()
            .or_else(|| delta.old_file().path())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (insertions, deletions) = match git2::Patch::from_diff(&diff, i).map_err(g("diff"))? {
            Some(patch) => {
                let (_, adds, dels) = patch.line_stats().map_err(g("diff"))?;
                (adds, dels)
            }
            None => (0, 0), // binary
        };
        total.files_changed += 1;
        total.insertions += insertions;
        total.deletions += deletions;
        files.push(FileChange {
            path,
            kind,
            insertions,
            deletions,
        });
    }
    Ok((files, total))
}

fn callbacks<'a>(creds: &GitCredentials) -> git2::RemoteCallbacks<'a> {
    let token: Option<SecretString> = creds
        .token_env
        .as_ref()
        .and_then(|var| std::env::var(var).ok())
        .filter(|t| !t.is_empty())
        .map(SecretString::from);
    let token_user = creds.token_user.clone();
    let ssh_agent = creds.ssh_agent;
    let mut attempts = 0u32;
    let mut cb = git2::RemoteCallbacks::new();
    cb.credentials(move |_url, username, allowed| {
        // libgit2 asks again after a refused credential: stop instead of looping.
        attempts += 1;
        if attempts > 3 {
            return Err(git2::Error::new(
                git2::ErrorCode::Auth,
                git2::ErrorClass::Net,
                "the remote refused the credentials",
            ));
        }
        if allowed.contains(CredentialType::SSH_KEY) && ssh_agent {
            return git2::Cred::ssh_key_from_agent(username.unwrap_or("git"));
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            if let Some(t) = &token {
                return git2::Cred::userpass_plaintext(username.unwrap_or(&token_user), t.expose_secret());
            }
        }
        if allowed.contains(CredentialType::USERNAME) {
            return git2::Cred::username(username.unwrap_or("git"));
        }
        if allowed.contains(CredentialType::DEFAULT) {
            return git2::Cred::default();
        }
        Err(git2::Error::new(
            git2::ErrorCode::Auth,
            git2::ErrorClass::Net,
            "no credentials: start an SSH agent for ssh remotes, or set the token variable for https remotes",
        ))
    });
    cb
}

fn push(remote: &mut git2::Remote<'_>, local_ref: &str, creds: &GitCredentials) -> Result<()> {
    let mut rejected: Option<(String, String)> = None;
    {
        let mut cb = callbacks(creds);
        cb.push_update_reference(|refname, status| {
            if let Some(msg) = status {
                rejected = Some((refname.to_owned(), msg.to_owned()));
            }
            Ok(())
        });
        let mut opts = git2::PushOptions::new();
        opts.remote_callbacks(cb);
        let spec = format!("{local_ref}:{local_ref}");
        remote
            .push(&[spec.as_str()], Some(&mut opts))
            .map_err(g("push"))?;
    }
    match rejected {
        Some((reference, message)) => Err(Error::PushRejected { reference, message }),
        None => Ok(()),
    }
}
