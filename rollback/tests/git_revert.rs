//! Git revert against real repositories: a bare remote and a clone with a merge
//! commit, built with the `git` command line in a temp dir.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use deploy_rollback::git::{revert, ChangeKind};
use deploy_rollback::{Error, GitRevertRequest};

/// Runs git with no user or system configuration; panics with its stderr on failure.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .unwrap_or_else(|e| panic!("cannot run git (install it: apt-get install git): {e}"));
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

struct Repos {
    _tmp: tempfile::TempDir,
    remote: PathBuf,
    clone: PathBuf,
    other: PathBuf,
    /// The tree of `production` before the merge.
    pre_merge_tree: String,
    merge: String,
    merge_parent: String,
}

/// remote.git (bare, branch production) <- other (seeds it) ; clone (the deploy clone).
/// production: "initial" -> "config" -> merge of feature ("Merge branch 'feature'").
fn repos() -> Repos {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote.git");
    let other = tmp.path().join("other");
    let clone = tmp.path().join("clone");
    std::fs::create_dir_all(&remote).unwrap();
    git(&remote, &["init", "-q", "--bare", "-b", "production"]);
    std::fs::create_dir_all(&other).unwrap();
    git(&other, &["init", "-q", "-b", "production"]);
    std::fs::create_dir_all(other.join("addons/shop")).unwrap();
    std::fs::write(
        other.join("addons/shop/__manifest__.py"),
        "{'name': 'Shop', 'version': '17.0.1.0'}\n",
    )
    .unwrap();
    std::fs::write(other.join("odoo.conf"), "[options]\nworkers = 4\n").unwrap();
    git(&other, &["add", "-A"]);
    git(&other, &["commit", "-q", "-m", "initial"]);
    std::fs::write(
        other.join("odoo.conf"),
        "[options]\nworkers = 4\nlimit_time_real = 120\n",
    )
    .unwrap();
    git(&other, &["commit", "-q", "-am", "config"]);
    let pre_merge_tree = git(&other, &["rev-parse", "HEAD^{tree}"]);
    git(&other, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(
        other.join("addons/shop/__manifest__.py"),
        "{'name': 'Shop', 'version': '17.0.2.0'}\n",
    )
    .unwrap();
    std::fs::write(
        other.join("addons/shop/models.py"),
        "from odoo import models\n\n\nclass Shop(models.Model):\n    _name = 'shop'\n",
    )
    .unwrap();
    git(&other, &["add", "-A"]);
    git(&other, &["commit", "-q", "-m", "shop 2.0"]);
    git(&other, &["checkout", "-q", "production"]);
    git(
        &other,
        &[
            "merge",
            "-q",
            "--no-ff",
            "feature",
            "-m",
            "Merge branch 'feature'",
        ],
    );
    let merge = git(&other, &["rev-parse", "HEAD"]);
    let merge_parent = git(&other, &["rev-parse", "HEAD^1"]);
    git(
        &other,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    git(&other, &["push", "-q", "origin", "production"]);
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "-b",
            "production",
            remote.to_str().unwrap(),
            "clone",
        ],
    );
    git(&clone, &["config", "user.name", "Deploy Bot"]);
    git(&clone, &["config", "user.email", "deploy@example.com"]);
    Repos {
        _tmp: tmp,
        remote,
        clone,
        other,
        pre_merge_tree,
        merge,
        merge_parent,
    }
}

#[test]
fn reverting_the_merge_pushes_the_pre_merge_tree() {
    let r = repos();
    let outcome = revert(&GitRevertRequest::new(&r.clone, "production", "HEAD")).unwrap();
    assert!(outcome.pushed && !outcome.dry_run);
    assert_eq!(outcome.reverted, r.merge);
    assert_eq!(outcome.mainline, Some(1));
    assert_eq!(
        outcome.message,
        format!(
            "Revert \"Merge branch 'feature'\"\n\nThis reverts commit {}, reversing\nchanges made to {}.\n",
            r.merge, r.merge_parent
        )
    );
    // The remote's branch now has the pre-merge tree, on top of the merge.
    assert_eq!(
        git(&r.remote, &["rev-parse", "production^{tree}"]),
        r.pre_merge_tree
    );
    assert_eq!(
        git(&r.remote, &["rev-parse", "production"]),
        outcome.revert_commit.clone().unwrap()
    );
    assert_eq!(git(&r.remote, &["rev-parse", "production^"]), r.merge);
    assert_eq!(
        git(
            &r.remote,
            &["log", "-1", "--format=%an <%ae>", "production"]
        ),
        "Deploy Bot <deploy@example.com>"
    );
    // The clone's work tree follows and is clean.
    assert_eq!(git(&r.clone, &["status", "--porcelain"]), "");
    assert_eq!(
        std::fs::read_to_string(r.clone.join("addons/shop/__manifest__.py")).unwrap(),
        "{'name': 'Shop', 'version': '17.0.1.0'}\n"
    );
    assert!(!r.clone.join("addons/shop/models.py").exists());
    // git itself agrees the branch is in sync.
    git(&r.clone, &["fetch", "-q"]);
    assert_eq!(
        git(&r.clone, &["rev-parse", "HEAD"]),
        git(&r.clone, &["rev-parse", "origin/production"])
    );

    // Reverting the same merge again changes nothing.
    let err = revert(&GitRevertRequest::new(&r.clone, "production", &r.merge)).unwrap_err();
    assert!(matches!(err, Error::NothingToRevert { .. }), "{err:?}");
}

#[test]
fn dry_run_reports_files_and_diffstat_and_changes_nothing() {
    let r = repos();
    let remote_before = git(&r.remote, &["rev-parse", "production"]);
    let outcome =
        revert(&GitRevertRequest::new(&r.clone, "production", "HEAD").dry_run(true)).unwrap();
    assert!(outcome.dry_run && !outcome.pushed);
    assert_eq!(outcome.revert_commit, None);
    let files: Vec<(&str, ChangeKind, usize, usize)> = outcome
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.kind, f.insertions, f.deletions))
        .collect();
    assert_eq!(
        files,
        vec![
            ("addons/shop/__manifest__.py", ChangeKind::Modified, 1, 1),
            ("addons/shop/models.py", ChangeKind::Deleted, 0, 5),
        ]
    );
    assert_eq!(
        (
            outcome.diffstat.files_changed,
            outcome.diffstat.insertions,
            outcome.diffstat.deletions
        ),
        (2, 1, 6)
    );
    assert_eq!(git(&r.remote, &["rev-parse", "production"]), remote_before);
    assert_eq!(git(&r.clone, &["rev-parse", "HEAD"]), remote_before);
    assert_eq!(git(&r.clone, &["status", "--porcelain"]), "");
}

#[test]
fn a_named_plain_commit_is_reverted_like_git_revert() {
    let r = repos();
    let config = git(&r.clone, &["rev-parse", "HEAD^1"]); // "config"
    let outcome = revert(&GitRevertRequest::new(&r.clone, "production", &config)).unwrap();
    assert_eq!(outcome.mainline, None);
    assert_eq!(
        outcome.message,
        format!("Revert \"config\"\n\nThis reverts commit {config}.\n")
    );
    assert_eq!(
        git(&r.remote, &["show", "production:odoo.conf"]),
        "[options]\nworkers = 4"
    );
    // The merge's changes stay.
    assert_eq!(
        git(
            &r.remote,
            &["show", "production:addons/shop/__manifest__.py"]
        ),
        "{'name': 'Shop', 'version': '17.0.2.0'}"
    );
}

#[test]
fn a_dirty_work_tree_is_refused_with_its_paths() {
    let r = repos();
    std::fs::write(r.clone.join("odoo.conf"), "edited by hand\n").unwrap();
    std::fs::write(r.clone.join("notes.txt"), "untracked\n").unwrap();
    let err = revert(&GitRevertRequest::new(&r.clone, "production", "HEAD")).unwrap_err();
    let Error::DirtyWorkTree { paths } = &err else {
        panic!("expected DirtyWorkTree, got {err:?}");
    };
    assert_eq!(paths, &vec!["notes.txt".to_owned(), "odoo.conf".to_owned()]);
    // Ignored files do not count.
    git(&r.clone, &["checkout", "-q", "--", "odoo.conf"]);
    std::fs::remove_file(r.clone.join("notes.txt")).unwrap();
    std::fs::write(r.clone.join(".git/info/exclude"), "*.log\n").unwrap();
    std::fs::write(r.clone.join("odoo.log"), "ignored\n").unwrap();
    revert(&GitRevertRequest::new(&r.clone, "production", "HEAD").dry_run(true)).unwrap();
}

#[test]
fn a_diverged_branch_is_refused() {
    let r = repos();
    // Someone pushes a commit; meanwhile the clone has a local commit.
    std::fs::write(r.other.join("README.md"), "pushed by someone else\n").unwrap();
    git(&r.other, &["add", "-A"]);
    git(&r.other, &["commit", "-q", "-m", "remote work"]);
    git(&r.other, &["push", "-q", "origin", "production"]);
    std::fs::write(r.clone.join("LOCAL.md"), "local only\n").unwrap();
    git(&r.clone, &["add", "-A"]);
    git(&r.clone, &["commit", "-q", "-m", "local work"]);
    let remote_before = git(&r.remote, &["rev-parse", "production"]);
    let err = revert(&GitRevertRequest::new(&r.clone, "production", &r.merge)).unwrap_err();
    assert!(
        matches!(&err, Error::Diverged { branch, remote, ahead: 1, behind: 1 } if branch == "production" && remote == "origin"),
        "{err:?}"
    );
    assert_eq!(git(&r.remote, &["rev-parse", "production"]), remote_before);
}

#[test]
fn unpushed_local_commits_are_refused() {
    let r = repos();
    std::fs::write(r.clone.join("LOCAL.md"), "local only\n").unwrap();
    git(&r.clone, &["add", "-A"]);
    git(&r.clone, &["commit", "-q", "-m", "local work"]);
    let err = revert(&GitRevertRequest::new(&r.clone, "production", &r.merge)).unwrap_err();
    assert!(
        matches!(err, Error::UnpushedCommits { ahead: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn a_clone_behind_the_remote_is_fast_forwarded_first() {
    let r = repos();
    std::fs::write(r.other.join("README.md"), "pushed by someone else\n").unwrap();
    git(&r.other, &["add", "-A"]);
    git(&r.other, &["commit", "-q", "-m", "remote work"]);
    git(&r.other, &["push", "-q", "origin", "production"]);
    let remote_tip = git(&r.remote, &["rev-parse", "production"]);
    let outcome = revert(&GitRevertRequest::new(&r.clone, "production", &r.merge)).unwrap();
    assert_eq!(outcome.base, remote_tip);
    assert_eq!(git(&r.remote, &["rev-parse", "production^"]), remote_tip);
    assert_eq!(
        git(&r.remote, &["show", "production:README.md"]),
        "pushed by someone else"
    );
    assert!(
        git(&r.remote, &["ls-tree", "-r", "--name-only", "production"])
            .lines()
            .all(|l| l != "addons/shop/models.py")
    );
}

#[test]
fn wrong_branch_and_unknown_commits_are_refused() {
    let r = repos();
    let err = revert(&GitRevertRequest::new(&r.clone, "staging", "HEAD")).unwrap_err();
    assert!(
        matches!(&err, Error::WrongBranch { expected, actual } if expected == "staging" && actual == "production"),
        "{err:?}"
    );
    let err = revert(&GitRevertRequest::new(
        &r.clone,
        "production",
        "no-such-rev",
    ))
    .unwrap_err();
    assert!(
        matches!(&err, Error::CommitNotFound { reason, .. } if reason == "does not exist"),
        "{err:?}"
    );
    // A commit that exists but is not on the branch.
    git(&r.other, &["checkout", "-q", "-b", "elsewhere"]);
    std::fs::write(r.other.join("x.txt"), "x\n").unwrap();
    git(&r.other, &["add", "-A"]);
    git(&r.other, &["commit", "-q", "-m", "elsewhere"]);
    git(&r.other, &["push", "-q", "origin", "elsewhere"]);
    git(&r.clone, &["fetch", "-q", "origin", "elsewhere"]);
    let elsewhere = git(&r.clone, &["rev-parse", "FETCH_HEAD"]);
    let err = revert(&GitRevertRequest::new(&r.clone, "production", &elsewhere)).unwrap_err();
    assert!(
        matches!(&err, Error::CommitNotFound { reason, .. } if reason.contains("not on branch")),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_git_revert_strategy_plans_with_a_dry_run_and_executes() {
    use deploy_rollback::strategy::{GitRevert, OutcomeDetail, RollbackContext};
    use deploy_rollback::{Environment, RollbackStrategy};

    let r = repos();
    let strategy = GitRevert::new(GitRevertRequest::new(&r.clone, "production", "HEAD"));
    let ctx = RollbackContext::new("shop", Environment::Production, "alice");
    let remote_before = git(&r.remote, &["rev-parse", "production"]);
    let plan = strategy.plan(&ctx).await.unwrap();
    assert_eq!(plan.strategy, "git_revert");
    assert_eq!(
        plan.summary,
        "revert \"Merge branch 'feature'\" on production"
    );
    assert!(
        plan.steps
            .iter()
            .any(|s| s == "deleted addons/shop/models.py (+0 -5)"),
        "{:?}",
        plan.steps
    );
    assert_eq!(
        git(&r.remote, &["rev-parse", "production"]),
        remote_before,
        "plan must not push"
    );
    let outcome = strategy.execute(&ctx).await.unwrap();
    let OutcomeDetail::GitReverted(revert) = &outcome.detail else {
        panic!("{outcome:?}");
    };
    assert!(revert.pushed);
    assert_eq!(
        git(&r.remote, &["rev-parse", "production^{tree}"]),
        r.pre_merge_tree
    );
}
