//! Static checks of Odoo addons before any server starts: the first tier of a deployment
//! process, for a pre-push hook and a merge gate.
//!
//! [`validate`] reads addons folders (each a folder of addons, or one addon) and reports
//! [`Finding`]s, each with a stable [`Code`], the file and line, and a one-line fix:
//!
//! - the manifest (`M1xx`): a Python literal as Odoo reads it (never run), its required
//!   keys and their types, a `<serie>.x.y.z` version of the target series, a licence
//!   Odoo knows, dependencies on the addons path, and every listed file present;
//! - the XML data (`X2xx`): well-formed, ids unique in the module, references that
//!   resolve in the module or its dependencies, views of models that exist, demo files
//!   under `demo` only;
//! - `ir.model.access.csv` (`A3xx`): its header, models, groups and permissions;
//! - the Python sources (`P4xx`): they parse, model files are imported, imports exist;
//! - the version against a git revision (`G5xx`): bumped when files changed, a
//!   migration when a field went away;
//! - hard-coded secrets (`S601`), with a baseline of acknowledged findings;
//! - an install dry run (`I7xx`): dependency order and cycles, and every id a data file
//!   needs already loaded at the point of the install where it loads.
//!
//! Three [`Level`]s: `fast` (each addon alone), `comprehensive` (across addons, and git),
//! `bulletproof` (the install dry run). Nothing here runs Python or needs a server.
//!
//! ```
//! use deploy_validate::{validate, Level, Options};
//!
//! let dir = tempfile::tempdir()?;
//! let addon = dir.path().join("shop");
//! std::fs::create_dir(&addon)?;
//! std::fs::write(addon.join("__init__.py"), "")?;
//! std::fs::write(
//!     addon.join("__manifest__.py"),
//!     "{'name': 'Shop', 'version': '17.0.1.0.0', 'license': 'LGPL-3', 'depends': ['sale']}\n",
//! )?;
//! let report = validate(&[dir.path()], &Options::new(Level::Comprehensive, "17.0"))?;
//! assert!(!report.passed());
//! assert_eq!(report.findings[0].code, "M109"); // `sale` is not on the addons path
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod access;
mod addon;
pub mod codes;
mod cross;
mod git;
mod manifest;
mod python;
mod secrets;
mod text;
mod xml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use codes::{Code, Family, Level, Severity};

/// Why a run could not check anything (as opposed to findings in what it checked).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A path given does not exist or is not a folder.
    #[error("{}: not a folder of addons or an addon", path.display())]
    NotAFolder {
        /// The path.
        path: PathBuf,
    },
    /// The paths hold no addon at all.
    #[error("no addon (a folder with __manifest__.py) in {paths}")]
    NoAddons {
        /// The paths, comma-separated.
        paths: String,
    },
    /// A file or folder could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The target series is not `MAJOR.MINOR`.
    #[error("target series `{0}` is not MAJOR.MINOR (e.g. 17.0)")]
    Series(String),
    /// The git revision to compare with cannot be read.
    #[error("git: {0}")]
    Git(String),
    /// The secrets baseline file does not read.
    #[error("{}: line {line}: {message}", path.display())]
    Baseline {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// What to check and against what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// How much.
    pub level: Level,
    /// The Odoo series the addons target (`17.0`).
    pub series: String,
    /// Further addons folders that satisfy dependencies and references but are not
    /// checked themselves (Odoo's own addons, OCA repositories).
    pub addons_path: Vec<PathBuf>,
    /// A git revision to compare with (the version-bump checks), comprehensive and up.
    pub since: Option<String>,
    /// A file of acknowledged secrets findings (see [`Baseline`]).
    pub secrets_baseline: Option<PathBuf>,
}

impl Options {
    /// `level` against `series`, nothing else.
    #[must_use]
    pub fn new(level: Level, series: impl Into<String>) -> Self {
        Self {
            level,
            series: series.into(),
            addons_path: Vec::new(),
            since: None,
            secrets_baseline: None,
        }
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// The check code (`M106`).
    pub code: String,
    /// The code's short name (`version-format`).
    pub name: String,
    /// Whether it fails the run.
    pub severity: Severity,
    /// The addon it is in.
    pub addon: String,
    /// The file, from the addon's parent folder (`shop/views/item.xml`).
    pub file: String,
    /// The 1-based line.
    pub line: u32,
    /// What is wrong, with the names involved (never a secret's value).
    pub message: String,
    /// What to do about it, in one line.
    pub fix: String,
    /// For secrets: the fingerprint a baseline acknowledges it by.
    pub fingerprint: Option<String>,
}

impl Finding {
    pub(crate) fn new(
        code: Code,
        addon: &str,
        file: impl Into<String>,
        line: u32,
        message: impl Into<String>,
    ) -> Self {
        Self {
            code: code.as_str().to_owned(),
            name: code.name().to_owned(),
            severity: code.severity(),
            addon: addon.to_owned(),
            file: file.into(),
            line,
            message: message.into(),
            fix: code.fix().to_owned(),
            fingerprint: None,
        }
    }

    /// The code, when it is one this version knows.
    #[must_use]
    pub fn code(&self) -> Option<Code> {
        self.code.parse().ok()
    }
}

/// One addon checked, and what was found in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AddonResult {
    /// Its technical name (its folder's name).
    pub name: String,
    /// Its folder.
    pub path: String,
    /// Its version as the manifest says, when it says.
    pub version: Option<String>,
    /// Error findings.
    pub errors: u32,
    /// Warning findings.
    pub warnings: u32,
}

/// The verdict of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No error (warnings allowed).
    Pass,
    /// At least one error.
    Fail,
}

/// The report of a run (`odoo-gate validate --json`, schema version 1: field names are
/// stable, additions only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// 1.
    pub schema_version: u32,
    /// `pass` or `fail`.
    pub result: Verdict,
    /// The level run.
    pub level: Level,
    /// The target series.
    pub series: String,
    /// The git revision compared with, if any.
    pub since: Option<String>,
    /// The families of checks that ran.
    pub families: Vec<Family>,
    /// The addons checked, by name.
    pub addons: Vec<AddonResult>,
    /// Every finding, by addon, file and line.
    pub findings: Vec<Finding>,
    /// Error findings.
    pub errors: u32,
    /// Warning findings.
    pub warnings: u32,
    /// Secrets findings the baseline acknowledged (not in `findings`).
    pub acknowledged: u32,
    /// How long the run took.
    pub elapsed_ms: u64,
}

impl Report {
    /// Whether the run found no error.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.result == Verdict::Pass
    }

    /// The findings of one addon and family, for a test case per pair.
    pub fn findings_of<'a>(
        &'a self,
        addon: &'a str,
        family: Family,
    ) -> impl Iterator<Item = &'a Finding> + 'a {
        self.findings
            .iter()
            .filter(move |f| f.addon == addon && f.code().map(Code::family) == Some(family))
    }
}

/// Acknowledged secrets findings: one per line, `S601 <file> <fingerprint>` and an
/// optional comment after `#`; blank lines and `#` lines are ignored.
///
/// ```text
/// # A test key of the payment sandbox, not a live one.
/// S601 shop_payment/tests/test_provider.py 5f0c2a7e91d4b3c8
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    entries: BTreeMap<(String, String), String>,
}

impl Baseline {
    /// Reads a baseline file.
    ///
    /// # Errors
    /// The file cannot be read, or a line is not `S601 FILE FINGERPRINT`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut entries = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let (content, comment) = line.split_once('#').unwrap_or((line, ""));
            let words: Vec<&str> = content.split_whitespace().collect();
            match words.as_slice() {
                [] => {}
                [code, file, fingerprint] if *code == Code::SecretHardcoded.as_str() => {
                    entries.insert(
                        ((*file).to_owned(), (*fingerprint).to_owned()),
                        comment.trim().to_owned(),
                    );
                }
                _ => {
                    return Err(Error::Baseline {
                        path: path.to_path_buf(),
                        line: index + 1,
                        message: "expected `S601 FILE FINGERPRINT [# why]`".to_owned(),
                    })
                }
            }
        }
        Ok(Self { entries })
    }

    /// Whether it acknowledges `finding`.
    #[must_use]
    pub fn acknowledges(&self, finding: &Finding) -> bool {
        finding.fingerprint.as_ref().is_some_and(|fingerprint| {
            self.entries
                .contains_key(&(finding.file.clone(), fingerprint.clone()))
        })
    }

    /// The baseline text acknowledging `findings`' secrets (for `--write-secrets-baseline`).
    #[must_use]
    pub fn render(findings: &[Finding]) -> String {
        let mut text = String::from(
            "# Acknowledged secrets findings of `odoo-gate validate` (one per line:\n\
             # S601 FILE FINGERPRINT # why). Remove a line to be told again.\n",
        );
        for finding in findings {
            if let Some(fingerprint) = &finding.fingerprint {
                text.push_str(&format!(
                    "S601 {} {fingerprint} # line {}: {}\n",
                    finding.file, finding.line, finding.message
                ));
            }
        }
        text
    }
}

/// Checks the addons in `paths` (folders of addons, or addons) at `options.level`.
///
/// # Errors
/// A path that is not a folder, no addon anywhere, an unreadable file, a bad target
/// series, a git revision that does not resolve, a baseline that does not read. Problems
/// in the addons themselves are findings, not errors.
pub fn validate<P: AsRef<Path>>(paths: &[P], options: &Options) -> Result<Report, Error> {
    let started = Instant::now();
    let paths: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
    let series = parse_series(&options.series)?;
    let baseline = match &options.secrets_baseline {
        Some(path) => Baseline::load(path)?,
        None => Baseline::default(),
    };
    let mut findings = Vec::new();
    let discovered = addon::discover(&paths, &options.addons_path, &mut findings)?;
    if !discovered.iter().any(|a| a.checked) && findings.is_empty() {
        return Err(Error::NoAddons {
            paths: paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let mut addons = Vec::new();
    for found in discovered {
        addons.push(addon::read(found, &series, &mut findings)?);
    }
    let index = cross::Index::new(&addons);
    if options.level >= Level::Comprehensive {
        cross::check(&index, &mut findings);
        if let Some(revision) = &options.since {
            git::check(&addons, revision, &mut findings)?;
        }
    }
    if options.level >= Level::Bulletproof {
        cross::install(&index, &mut findings);
    }
    findings.retain(|f| f.code().is_some_and(|code| code.level() <= options.level));
    let before = findings.len();
    findings.retain(|f| !baseline.acknowledges(f));
    let acknowledged = u32::try_from(before - findings.len()).unwrap_or(u32::MAX);
    findings.sort_by(|a, b| {
        (&a.addon, &a.file, a.line, &a.code).cmp(&(&b.addon, &b.file, b.line, &b.code))
    });
    findings.dedup();
    let count = |severity: Severity, addon: Option<&str>| {
        let n = findings
            .iter()
            .filter(|f| f.severity == severity && addon.is_none_or(|a| a == f.addon))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    let results = addons
        .iter()
        .filter(|a| a.checked)
        .map(|a| AddonResult {
            name: a.name.clone(),
            path: a.dir.display().to_string(),
            version: a.version.as_ref().map(|(v, _)| v.clone()),
            errors: count(Severity::Error, Some(&a.name)),
            warnings: count(Severity::Warning, Some(&a.name)),
        })
        .collect();
    let errors = count(Severity::Error, None);
    let families = Family::ALL
        .into_iter()
        .filter(|f| f.level() <= options.level && (*f != Family::Git || options.since.is_some()))
        .collect();
    Ok(Report {
        schema_version: 1,
        result: if errors == 0 {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        level: options.level,
        series: options.series.clone(),
        since: options.since.clone(),
        families,
        addons: results,
        warnings: count(Severity::Warning, None),
        errors,
        findings,
        acknowledged,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// `17.0` as (17, 0); `saas~17.2` as (17, 2).
fn parse_series(series: &str) -> Result<(u32, u32), Error> {
    let bare = series.trim_start_matches("saas~");
    bare.split_once('.')
        .and_then(|(major, minor)| Some((major.parse().ok()?, minor.parse().ok()?)))
        .ok_or_else(|| Error::Series(series.to_owned()))
}
