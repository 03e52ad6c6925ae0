//! The version checks against a git revision: an addon whose files changed since then
//! must have a new manifest version (Odoo.sh and the update stage decide on it); a
//! bumped version that drops or renames a field should come with a migration script.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use git2::{DiffOptions, ObjectType, Repository, Tree, TreeWalkMode, TreeWalkResult};

use crate::addon::Addon;
use crate::manifest::{self, Lit};
use crate::{python, Code, Error, Finding};

fn git(err: &git2::Error) -> Error {
    Error::Git(err.message().to_owned())
}

fn blob_text(repo: &Repository, tree: &Tree<'_>, path: &Path) -> Option<String> {
    let entry = tree.get_path(path).ok()?;
    let blob = repo.find_blob(entry.id()).ok()?;
    Some(String::from_utf8_lossy(blob.content()).into_owned())
}

/// The fields per model of the addon's Python files at the revision.
fn fields_at(repo: &Repository, tree: &Tree<'_>, rel: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut fields: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let Ok(entry) = tree.get_path(rel) else {
        return fields;
    };
    let Ok(subtree) = repo.find_tree(entry.id()) else {
        return fields;
    };
    let _ = subtree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        let name = entry.name().unwrap_or_default();
        let path = format!("{dir}{name}");
        let loaded = !["tests/", "migrations/", "upgrades/", "static/"]
            .iter()
            .any(|d| path.starts_with(d));
        if entry.kind() == Some(ObjectType::Blob)
            && loaded
            && path.ends_with(".py")
            && name != "__manifest__.py"
        {
            if let Ok(blob) = repo.find_blob(entry.id()) {
                let text = String::from_utf8_lossy(blob.content());
                if let Ok(source) = python::parse(&text, &path) {
                    for model in &source.models {
                        if let Some(model_name) = model.model() {
                            fields
                                .entry(model_name.to_owned())
                                .or_default()
                                .extend(model.fields.iter().cloned());
                        }
                    }
                }
            }
        }
        TreeWalkResult::Ok
    });
    fields
}

/// G501 and G502 for every checked addon inside a git work tree.
pub(crate) fn check(
    addons: &[Addon],
    revision: &str,
    findings: &mut Vec<Finding>,
) -> Result<(), Error> {
    let Some(first) = addons.iter().find(|a| a.checked) else {
        return Ok(());
    };
    let repo = Repository::discover(&first.dir).map_err(|e| git(&e))?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| Error::Git("the repository has no work tree".to_owned()))?
        .canonicalize()
        .map_err(|source| Error::Io {
            path: first.dir.clone(),
            source,
        })?;
    let tree = repo
        .revparse_single(revision)
        .and_then(|object| object.peel_to_tree())
        .map_err(|e| Error::Git(format!("revision `{revision}`: {}", e.message())))?;
    for addon in addons.iter().filter(|a| a.checked) {
        let dir = addon.dir.canonicalize().map_err(|source| Error::Io {
            path: addon.dir.clone(),
            source,
        })?;
        let Ok(rel) = dir.strip_prefix(&workdir) else {
            continue;
        };
        let Some(old_text) = blob_text(&repo, &tree, &rel.join("__manifest__.py")) else {
            // New since the revision: nothing to compare with.
            continue;
        };
        let old_version = manifest::parse(&old_text).ok().and_then(|m| {
            m.get("version").and_then(|e| match &e.value {
                Lit::Str(v) => Some(v.clone()),
                _ => None,
            })
        });
        let Some((version, line)) = addon.version.clone() else {
            continue;
        };
        let mut options = DiffOptions::new();
        options
            .pathspec(rel)
            .include_untracked(true)
            .recurse_untracked_dirs(true);
        let diff = repo
            .diff_tree_to_workdir_with_index(Some(&tree), Some(&mut options))
            .map_err(|e| git(&e))?;
        let changed: Vec<String> = diff
            .deltas()
            .filter_map(|d| d.new_file().path().or_else(|| d.old_file().path()))
            .map(|p| p.strip_prefix(rel).unwrap_or(p).display().to_string())
            .collect();
        if changed.is_empty() {
            continue;
        }
        if old_version.as_deref() == Some(version.as_str()) {
            let shown: Vec<&str> = changed.iter().take(3).map(String::as_str).collect();
            findings.push(Finding::new(
                Code::VersionNotBumped,
                &addon.name,
                addon.file("__manifest__.py"),
                line,
                format!(
                    "{} file(s) changed since {revision} ({}{}) but the version is still {version}",
                    changed.len(),
                    shown.join(", "),
                    if changed.len() > shown.len() {
                        ", ..."
                    } else {
                        ""
                    }
                ),
            ));
            continue;
        }
        let before = fields_at(&repo, &tree, rel);
        let dropped: Vec<String> = before
            .iter()
            .flat_map(|(model, fields)| {
                fields
                    .iter()
                    .filter(move |field| {
                        !addon
                            .fields
                            .get(model)
                            .is_some_and(|now| now.contains(*field))
                    })
                    .map(move |field| format!("{model}.{field}"))
            })
            .collect();
        if dropped.is_empty() {
            continue;
        }
        let short = version.splitn(3, '.').nth(2).unwrap_or(&version).to_owned();
        let has_migration = [version.as_str(), short.as_str()]
            .iter()
            .any(|v| addon.dir.join("migrations").join(v).is_dir());
        if !has_migration {
            findings.push(Finding::new(
                Code::MigrationMissing,
                &addon.name,
                addon.file("__manifest__.py"),
                line,
                format!(
                    "version {version} drops {} (present at {revision}) and has no migrations/{version}/: their data is lost at the update",
                    dropped.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
