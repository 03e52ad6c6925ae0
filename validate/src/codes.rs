//! The check codes: stable identifiers, what each one means, at which level it runs and
//! the one-line fix a finding carries.
//!
//! A code never changes meaning once released; a new check gets a new code. The first
//! letter is the family: `M` manifest, `X` XML data, `A` access rules, `P` Python
//! sources, `G` git history, `S` secrets, `I` the install dry run.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How much a run checks, from a pre-push hook to a merge gate.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Each addon on its own: manifests, XML well-formedness and ids, access files,
    /// Python syntax and imports, secrets. About 10 ms per addon.
    Fast,
    /// Adds the checks across addons: dependencies, references, view models, access
    /// models and groups, and the version bump against a git revision.
    Comprehensive,
    /// Adds an install dry run: dependency order and the ids each data file needs at the
    /// moment it loads.
    Bulletproof,
}

impl Level {
    /// `fast`, `comprehensive` or `bulletproof`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Comprehensive => "comprehensive",
            Self::Bulletproof => "bulletproof",
        }
    }
}

impl std::str::FromStr for Level {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "fast" => Ok(Self::Fast),
            "comprehensive" => Ok(Self::Comprehensive),
            "bulletproof" => Ok(Self::Bulletproof),
            other => Err(format!(
                "unknown level `{other}`: fast, comprehensive or bulletproof"
            )),
        }
    }
}

/// Whether a finding fails the run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Fails the run.
    Error,
    /// Reported; the run still passes.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

/// The family a code belongs to (its first letter), one JUnit test case per addon and
/// family.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// `M`: `__manifest__.py`.
    Manifest,
    /// `X`: XML data files.
    Xml,
    /// `A`: `security/ir.model.access.csv`.
    Access,
    /// `P`: Python sources.
    Python,
    /// `G`: changes since a git revision.
    Git,
    /// `S`: hard-coded secrets.
    Secrets,
    /// `I`: the install dry run.
    Install,
}

impl Family {
    /// Every family, in report order.
    pub const ALL: [Family; 7] = [
        Self::Manifest,
        Self::Xml,
        Self::Access,
        Self::Python,
        Self::Git,
        Self::Secrets,
        Self::Install,
    ];

    /// The family's name in reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manifest => "manifest",
            Self::Xml => "xml",
            Self::Access => "access",
            Self::Python => "python",
            Self::Git => "git",
            Self::Secrets => "secrets",
            Self::Install => "install",
        }
    }

    /// The lowest level that runs this family's checks (the git checks run only with a
    /// revision to compare with).
    #[must_use]
    pub fn level(self) -> Level {
        match self {
            Self::Git => Level::Comprehensive,
            Self::Install => Level::Bulletproof,
            _ => Level::Fast,
        }
    }
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $name:literal, $severity:ident, $level:ident, $family:ident, $fix:literal;)+) => {
        /// A check code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $(
                #[doc = concat!("`", $code, "` ", $name, ": ", $fix)]
                $variant,
            )+
        }

        impl Code {
            /// Every code, in order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),+];

            /// The stable identifier (`M106`).
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code),+ }
            }

            /// A short name (`version-format`).
            #[must_use]
            pub fn name(self) -> &'static str {
                match self { $(Code::$variant => $name),+ }
            }

            /// Whether a finding of this code fails the run.
            #[must_use]
            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity),+ }
            }

            /// The lowest level that runs the check.
            #[must_use]
            pub fn level(self) -> Level {
                match self { $(Code::$variant => Level::$level),+ }
            }

            /// Its family.
            #[must_use]
            pub fn family(self) -> Family {
                match self { $(Code::$variant => Family::$family),+ }
            }

            /// What to do about a finding, in one line.
            #[must_use]
            pub fn fix(self) -> &'static str {
                match self { $(Code::$variant => $fix),+ }
            }
        }
    };
}

codes! {
    ManifestMissing = "M101", "manifest-missing", Error, Fast, Manifest,
        "add a __manifest__.py (rename __openerp__.py), or move the folder off the addons path";
    ManifestSyntax = "M102", "manifest-syntax", Error, Fast, Manifest,
        "write the manifest as one Python literal: a dict of strings, lists, booleans and numbers, no names or calls";
    ManifestNotDict = "M103", "manifest-not-dict", Error, Fast, Manifest,
        "make the manifest a single dict literal: { 'name': ..., ... }";
    ManifestKeyMissing = "M104", "manifest-key-missing", Error, Fast, Manifest,
        "add the key: every addon states name, version, license and depends";
    ManifestKeyType = "M105", "manifest-key-type", Error, Fast, Manifest,
        "give the key the type Odoo expects (depends, data, demo: lists of strings; installable, application: booleans)";
    VersionFormat = "M106", "version-format", Error, Fast, Manifest,
        "write the version as <serie>.x.y.z, e.g. 17.0.1.0.0";
    VersionSerie = "M107", "version-serie", Error, Fast, Manifest,
        "start the version with the target series (port the addon, or check it against its own series)";
    LicenseUnknown = "M108", "license-unknown", Error, Fast, Manifest,
        "use a licence Odoo knows: LGPL-3, AGPL-3, GPL-3, OPL-1, OEEL-1, Other proprietary, ...";
    DependencyMissing = "M109", "dependency-missing", Error, Comprehensive, Manifest,
        "add the addon's folder to the addons path (--addons-path), or remove the dependency";
    ManifestFileMissing = "M110", "manifest-file-missing", Error, Fast, Manifest,
        "add the file, or remove it from the manifest";
    XmlSyntax = "X201", "xml-syntax", Error, Fast, Xml,
        "make the file well-formed XML";
    XmlDuplicateId = "X202", "xml-duplicate-id", Error, Fast, Xml,
        "give each record its own id: the second one silently overwrites the first";
    XmlRefUnresolved = "X203", "xml-ref-unresolved", Error, Comprehensive, Xml,
        "define the id, fix its spelling, or prefix it with the module that defines it";
    XmlRefNotDependency = "X204", "xml-ref-not-dependency", Error, Comprehensive, Xml,
        "add the referenced module to depends";
    ViewModelUnknown = "X205", "view-model-unknown", Error, Comprehensive, Xml,
        "fix the model name, or depend on the module that defines it";
    DataDemoMixup = "X206", "data-demo-mixup", Error, Fast, Xml,
        "list demo files under 'demo' and data files under 'data'";
    AccessHeader = "A301", "access-header", Error, Fast, Access,
        "use the header id,name,model_id:id,group_id:id,perm_read,perm_write,perm_create,perm_unlink";
    AccessModelUnknown = "A302", "access-model-unknown", Error, Comprehensive, Access,
        "name the model as model_<name with dots as underscores>, of this module or a dependency";
    AccessGroupUnresolved = "A303", "access-group-unresolved", Error, Comprehensive, Access,
        "define the group, fix its id, or depend on the module that defines it";
    AccessPermValue = "A304", "access-perm-value", Error, Fast, Access,
        "write each perm_* column as 0 or 1";
    PythonSyntax = "P401", "python-syntax", Error, Fast, Python,
        "fix the syntax: Odoo cannot import the addon";
    ModelNotImported = "P402", "model-not-imported", Error, Fast, Python,
        "import the file from its package's __init__.py, or the model never loads";
    ImportMissing = "P403", "import-missing", Error, Fast, Python,
        "add the module the import names, or remove the import";
    VersionNotBumped = "G501", "version-not-bumped", Error, Comprehensive, Git,
        "bump the manifest version: the update and Odoo.sh decide on it";
    MigrationMissing = "G502", "migration-missing", Warning, Comprehensive, Git,
        "add migrations/<version>/ with a script that moves the dropped or renamed field's data";
    SecretHardcoded = "S601", "secret-hardcoded", Error, Fast, Secrets,
        "read the secret from the environment or a file outside the addon, rotate it, or acknowledge it in the baseline";
    InstallOrder = "I701", "install-order", Error, Bulletproof, Install,
        "break the dependency cycle, or make the dependency installable";
    InstallLoadOrder = "I702", "install-load-order", Error, Bulletproof, Install,
        "list the file that defines the id earlier in 'data', or define the record before it is used";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Code {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Code::ALL
            .iter()
            .copied()
            .find(|code| code.as_str() == text || code.name() == text)
            .ok_or_else(|| format!("unknown check code `{text}`"))
    }
}
