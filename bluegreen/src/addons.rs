//! Which addons a release changed: a checksum of each addon folder, computed as
//! click-odoo-update and OCA's `module_auto_update` compute it, so that the checksums the
//! toolkit stores in `ir_config_parameter` (`module_auto_update.installed_checksums`) are
//! the ones those tools store and read.
//!
//! The checksum of an addon is one SHA-1 over its files in `os.walk` order (a folder's
//! files by name, then its subfolders by name), each file fed as its path relative to
//! the addon and then its bytes; files matching an exclusion pattern (`fnmatch`, whose
//! `*` also crosses `/`) are left out, and so are, when languages are kept, the `.po`
//! files of `i18n/` and `i18n_extra/` of the others.
//!
//! [`addon_checksums_in_tar`] reads the addons from a tar stream, as the Docker API gives
//! a created container's folder (see [`crate::docker::DockerSlots::image_addons`]);
//! [`addon_checksums_in_dir`] reads them from a folder.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The key of `ir_config_parameter` that holds the checksums, as JSON `{module: sha1}`.
pub const CHECKSUMS_KEY: &str = "module_auto_update.installed_checksums";

/// click-odoo-update's default exclusions (`module_auto_update.exclude_patterns`).
pub const DEFAULT_EXCLUDES: [&str; 6] = [
    "*.pyc",
    "*.pyo",
    "i18n/*.pot",
    "i18n_extra/*.pot",
    "static/*",
    "tests/*",
];

/// What to leave out of a checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumRules {
    /// `fnmatch` patterns on the path relative to the addon.
    pub excludes: Vec<String>,
    /// The languages whose `.po` files count (the database's active ones, e.g. `fr`,
    /// `fr_BE`); the `.po` files of others are left out. Empty: every `.po` counts.
    pub keep_langs: Vec<String>,
}

impl Default for ChecksumRules {
    fn default() -> Self {
        Self {
            excludes: DEFAULT_EXCLUDES.iter().map(|p| (*p).to_owned()).collect(),
            keep_langs: Vec::new(),
        }
    }
}

/// Python's `fnmatch.fnmatch` for `*` and `?` (no `[...]` classes): `*` matches any run
/// of characters, `/` included.
#[must_use]
pub fn fnmatch(name: &str, pattern: &str) -> bool {
    let (n, p): (Vec<char>, Vec<char>) = (name.chars().collect(), pattern.chars().collect());
    let (mut i, mut j) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while i < n.len() {
        if j < p.len() && (p[j] == '?' || p[j] == n[i]) {
            i += 1;
            j += 1;
        } else if j < p.len() && p[j] == '*' {
            star = Some(j);
            mark = i;
            j += 1;
        } else if let Some(s) = star {
            j = s + 1;
            mark += 1;
            i = mark;
        } else {
            return false;
        }
    }
    while j < p.len() && p[j] == '*' {
        j += 1;
    }
    j == p.len()
}

impl ChecksumRules {
    /// Whether the file at `relpath` (relative to the addon) counts: not excluded, and
    /// when languages are kept, not a `.po` of `i18n/` or `i18n_extra/` of another
    /// language (compared by the language's first part: `fr_BE` keeps `fr.po`).
    #[must_use]
    pub fn counts(&self, relpath: &str) -> bool {
        if self.excludes.iter().any(|p| fnmatch(relpath, p)) {
            return false;
        }
        if self.keep_langs.is_empty() {
            return true;
        }
        let Some((dir, file)) = relpath.rsplit_once('/') else {
            return true;
        };
        let Some(stem) = file.strip_suffix(".po") else {
            return true;
        };
        if dir != "i18n" && dir != "i18n_extra" {
            return true;
        }
        let language = |code: &str| code.split('_').next().unwrap_or(code).to_owned();
        self.keep_langs
            .iter()
            .any(|l| language(l) == language(stem))
    }
}

/// The files of one addon: relative path to bytes.
type Files = BTreeMap<String, Vec<u8>>;

/// The checksum of one addon's files, in `os.walk` order.
#[must_use]
pub fn addon_checksum(files: &Files, rules: &ChecksumRules) -> String {
    // os.walk: a folder's files (sorted) before its subfolders (sorted), depth first.
    fn walk(prefix: &str, files: &Files, rules: &ChecksumRules, hash: &mut sha1_smol::Sha1) {
        let mut here: Vec<&String> = Vec::new();
        let mut subdirs: Vec<String> = Vec::new();
        for path in files.keys() {
            let Some(rest) = path.strip_prefix(prefix) else {
                continue;
            };
            match rest.split_once('/') {
                None => here.push(path),
                Some((dir, _)) => {
                    if subdirs.last().map(String::as_str) != Some(dir)
                        && !subdirs.iter().any(|d| d == dir)
                    {
                        subdirs.push(dir.to_owned());
                    }
                }
            }
        }
        here.sort();
        for path in here {
            if rules.counts(path) {
                hash.update(path.as_bytes());
                if let Some(bytes) = files.get(path) {
                    hash.update(bytes);
                }
            }
        }
        subdirs.sort();
        for dir in subdirs {
            walk(&format!("{prefix}{dir}/"), files, rules, hash);
        }
    }
    let mut hash = sha1_smol::Sha1::new();
    walk("", files, rules, &mut hash);
    hash.digest().to_string()
}

/// Why addons could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading addons from {source_name}: {message}")]
pub struct AddonsError {
    /// The folder or the tar stream's origin.
    pub source_name: String,
    /// What went wrong.
    pub message: String,
}

/// Groups files by addon: an addon is a folder directly under a root that has a
/// `__manifest__.py`. `entries` are paths relative to the root.
fn by_addon(entries: Vec<(String, Vec<u8>)>) -> BTreeMap<String, Files> {
    let mut addons: BTreeMap<String, Files> = BTreeMap::new();
    for (path, bytes) in entries {
        if let Some((addon, rel)) = path.split_once('/') {
            if !rel.is_empty() {
                addons
                    .entry(addon.to_owned())
                    .or_default()
                    .insert(rel.to_owned(), bytes);
            }
        }
    }
    addons.retain(|_, files| files.contains_key("__manifest__.py"));
    addons
}

/// The checksum of every addon in a tar of an addons folder (as the Docker API's
/// archive of `/mnt/extra-addons` holds it: entries under `extra-addons/`).
///
/// # Errors
/// [`AddonsError`] when the tar cannot be read.
pub fn addon_checksums_in_tar(
    tar: impl Read,
    rules: &ChecksumRules,
    origin: &str,
) -> Result<BTreeMap<String, String>, AddonsError> {
    addons_in_tar(tar, rules, origin).map(|info| info.checksums)
}

/// The checksum and the manifest's version (as written: `1.2`, or `17.0.1.2`; `1.0`
/// when it has none, as Odoo reads it) of every addon in a tar of an addons folder.
///
/// # Errors
/// [`AddonsError`] when the tar cannot be read or a manifest is not a Python literal.
pub fn addons_in_tar(
    tar: impl Read,
    rules: &ChecksumRules,
    origin: &str,
) -> Result<crate::update::ImageAddonInfo, AddonsError> {
    let fail = |message: String| AddonsError {
        source_name: origin.to_owned(),
        message,
    };
    let mut archive = tar::Archive::new(tar);
    let mut entries = Vec::new();
    for entry in archive.entries().map_err(|e| fail(e.to_string()))? {
        let mut entry = entry.map_err(|e| fail(e.to_string()))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| fail(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        // The archive's top folder is the one asked for (`extra-addons/`).
        let Some((_, rel)) = path.trim_start_matches("./").split_once('/') else {
            continue;
        };
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| fail(format!("{path}: {e}")))?;
        entries.push((rel.to_owned(), bytes));
    }
    let addons = by_addon(entries);
    let mut info = crate::update::ImageAddonInfo::default();
    for (name, files) in &addons {
        info.checksums
            .insert(name.clone(), addon_checksum(files, rules));
        let manifest = files
            .get("__manifest__.py")
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let version = deploy_core::manifest::manifest_version(&manifest)
            .map_err(|e| fail(format!("{name}/__manifest__.py: {e}")))?
            .unwrap_or_else(|| "1.0".to_owned());
        info.versions.insert(name.clone(), version);
    }
    Ok(info)
}

/// The checksum of every addon in the folder `root`.
///
/// # Errors
/// [`AddonsError`] when a file cannot be read.
pub fn addon_checksums_in_dir(
    root: &Path,
    rules: &ChecksumRules,
) -> Result<BTreeMap<String, String>, AddonsError> {
    fn collect(dir: &Path, rel: &str, out: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let kind = entry.file_type()?;
            if kind.is_dir() {
                collect(&entry.path(), &path, out)?;
            } else if kind.is_file() {
                out.push((path, std::fs::read(entry.path())?));
            }
        }
        Ok(())
    }
    let mut entries = Vec::new();
    collect(root, "", &mut entries).map_err(|e| AddonsError {
        source_name: root.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(by_addon(entries)
        .iter()
        .map(|(name, files)| (name.clone(), addon_checksum(files, rules)))
        .collect())
}

/// Why each installed module is to be updated: its checksum differs from the stored one,
/// or none is stored (a first run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The stored checksum differs.
    Changed {
        /// The stored checksum.
        stored: String,
        /// The image's.
        current: String,
    },
    /// No checksum is stored for it.
    NotStored,
}

/// The installed modules whose checksum in `current` (the image's) differs from
/// `stored` (the database's), with why; modules not in `current` (Odoo's own, or
/// missing) are not compared.
#[must_use]
pub fn changed_modules(
    installed: &[String],
    stored: &BTreeMap<String, String>,
    current: &BTreeMap<String, String>,
) -> BTreeMap<String, Change> {
    installed
        .iter()
        .filter_map(|module| {
            let now = current.get(module)?;
            match stored.get(module) {
                Some(before) if before == now => None,
                Some(before) => Some((
                    module.clone(),
                    Change::Changed {
                        stored: before.clone(),
                        current: now.clone(),
                    },
                )),
                None => Some((module.clone(), Change::NotStored)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_matches_as_python_does() {
        assert!(fnmatch("static/src/js/a.js", "static/*"));
        assert!(fnmatch("models/x.pyc", "*.pyc"));
        assert!(fnmatch("i18n/fr.po", "i18n*/*.po"));
        assert!(!fnmatch("views/a.xml", "static/*"));
        assert!(fnmatch("a", "?"));
        assert!(!fnmatch("ab", "?"));
    }

    #[test]
    fn the_checksum_follows_os_walk_order_and_the_exclusions() {
        let files = |list: &[(&str, &str)]| -> Files {
            list.iter()
                .map(|(p, b)| ((*p).to_owned(), b.as_bytes().to_vec()))
                .collect()
        };
        let base = files(&[
            ("__manifest__.py", "{'name': 'x'}"),
            ("models/a.py", "class A: pass"),
            ("z.py", "z"),
        ]);
        // os.walk feeds z.py (a file of the top folder) before models/a.py.
        let mut expected = sha1_smol::Sha1::new();
        for (path, bytes) in [
            ("__manifest__.py", "{'name': 'x'}"),
            ("z.py", "z"),
            ("models/a.py", "class A: pass"),
        ] {
            expected.update(path.as_bytes());
            expected.update(bytes.as_bytes());
        }
        let rules = ChecksumRules::default();
        assert_eq!(addon_checksum(&base, &rules), expected.digest().to_string());
        // Excluded files and other languages' translations do not move it.
        let mut noisy = base.clone();
        noisy.insert("static/src/app.js".to_owned(), b"x".to_vec());
        noisy.insert("models/a.pyc".to_owned(), b"x".to_vec());
        noisy.insert("tests/test_a.py".to_owned(), b"x".to_vec());
        assert_eq!(
            addon_checksum(&noisy, &rules),
            addon_checksum(&base, &rules)
        );
        let french = ChecksumRules {
            keep_langs: vec!["fr".to_owned()],
            ..ChecksumRules::default()
        };
        let mut translated = base.clone();
        translated.insert("i18n/fr.po".to_owned(), b"msgid".to_vec());
        assert_ne!(
            addon_checksum(&translated, &french),
            addon_checksum(&base, &french)
        );
        let mut edited = base;
        edited.insert("models/a.py".to_owned(), b"class A: x = 1".to_vec());
        assert_ne!(
            addon_checksum(&edited, &rules),
            addon_checksum(&noisy, &rules)
        );
    }

    #[test]
    fn changed_modules_are_the_installed_ones_whose_checksum_moved() {
        let map = |list: &[(&str, &str)]| -> BTreeMap<String, String> {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let installed = vec![
            "shop".to_owned(),
            "sale_x".to_owned(),
            "new_one".to_owned(),
            "base".to_owned(),
        ];
        let stored = map(&[("shop", "a"), ("sale_x", "b")]);
        let current = map(&[
            ("shop", "a"),
            ("sale_x", "c"),
            ("new_one", "d"),
            ("uninstalled", "e"),
        ]);
        let changed = changed_modules(&installed, &stored, &current);
        assert_eq!(changed.keys().collect::<Vec<_>>(), ["new_one", "sale_x"]);
        assert_eq!(changed["new_one"], Change::NotStored);
    }
}
