//! Finding addons on the paths, and the checks each addon gets on its own (level
//! `fast`): its manifest, its XML and CSV files, its Python sources, its secrets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::manifest::{self, Lit, ManifestError};
use crate::{access, python, secrets, xml, Code, Error, Finding};

/// Licences Odoo's `ir.module.module` knows.
pub(crate) const LICENSES: [&str; 10] = [
    "GPL-2",
    "GPL-2 or any later version",
    "GPL-3",
    "GPL-3 or any later version",
    "AGPL-3",
    "LGPL-3",
    "Other OSI approved licence",
    "OEEL-1",
    "OPL-1",
    "Other proprietary",
];

/// Files larger than this are not read for secrets (media, dumps).
const MAX_SCANNED: u64 = 2 * 1024 * 1024;

/// An addon folder found on the paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    /// Under a checked path (else only on the addons path, for references).
    pub(crate) checked: bool,
}

/// A CSV row of `ir.model.access.csv` that loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccessRow {
    pub(crate) line: u32,
    pub(crate) model: String,
    pub(crate) group: String,
}

/// A data or demo file as the install loads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Load {
    /// From the addon's folder.
    pub(crate) rel: String,
    pub(crate) demo: bool,
    /// What it defines and refers to (an XML file's, or a CSV's `id` column).
    pub(crate) data: xml::DataFile,
    /// For `ir.model.access.csv`: its rows (the groups are also in `data.references`).
    pub(crate) access: Vec<AccessRow>,
}

/// An addon read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Addon {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) checked: bool,
    pub(crate) version: Option<(String, u32)>,
    pub(crate) depends: Vec<(String, u32)>,
    /// The line of the `depends` key (of the manifest's `{` when there is none).
    pub(crate) depends_line: u32,
    pub(crate) installable: bool,
    /// Data files, then demo files, in the manifest's order, those that exist.
    pub(crate) loads: Vec<Load>,
    /// Models a class of the addon defines or extends (`_name`, or a single `_inherit`).
    pub(crate) models: BTreeSet<String>,
    /// Models the addon defines (`_name`): Odoo gives each the id `model_<name>`.
    pub(crate) own_models: BTreeSet<String>,
    /// Fields per model class, for the migration check.
    pub(crate) fields: BTreeMap<String, BTreeSet<String>>,
}

impl Addon {
    pub(crate) fn file(&self, rel: &str) -> String {
        format!("{}/{rel}", self.name)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A file's text; `Err(line)` with the line of the first byte that is not UTF-8 (Odoo
/// reads addons' files as UTF-8).
fn read_text(path: &Path) -> Result<Result<String, u32>, Error> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    Ok(String::from_utf8(bytes).map_err(|err| {
        let valid = err.utf8_error().valid_up_to();
        let bytes = err.into_bytes();
        let line = bytes[..valid].iter().filter(|b| **b == b'\n').count() + 1;
        u32::try_from(line).unwrap_or(u32::MAX)
    }))
}

const NOT_UTF8: &str = "the file is not UTF-8";

fn folder_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn subfolders(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Every addon under `checked` (reported) and `extra` (for references only), the first
/// folder with a name winning as in Odoo. A folder that looks like an addon without a
/// manifest is an M101 finding.
pub(crate) fn discover(
    checked: &[PathBuf],
    extra: &[PathBuf],
    findings: &mut Vec<Finding>,
) -> Result<Vec<Found>, Error> {
    let mut found: Vec<Found> = Vec::new();
    let mut seen = BTreeSet::new();
    for (paths, is_checked) in [(checked, true), (extra, false)] {
        for path in paths {
            if !path.is_dir() {
                return Err(Error::NotAFolder { path: path.clone() });
            }
            let candidates = if path.join("__manifest__.py").is_file() {
                vec![path.clone()]
            } else {
                subfolders(path)?
            };
            for dir in candidates {
                let name = folder_name(&dir);
                if dir.join("__manifest__.py").is_file() {
                    if seen.insert(name.clone()) {
                        found.push(Found {
                            name,
                            dir,
                            checked: is_checked,
                        });
                    }
                } else if is_checked
                    && (dir.join("__init__.py").is_file() || dir.join("__openerp__.py").is_file())
                {
                    let old = dir.join("__openerp__.py").is_file();
                    findings.push(Finding::new(
                        Code::ManifestMissing,
                        &name,
                        format!("{name}/__manifest__.py"),
                        1,
                        if old {
                            format!("{name} has __openerp__.py, which Odoo no longer reads")
                        } else {
                            format!("{name} looks like an addon (it has __init__.py) but has no __manifest__.py: Odoo ignores it")
                        },
                    ));
                }
            }
        }
    }
    Ok(found)
}

/// Every file of an addon, relative to its folder, sorted (hidden folders, caches and
/// `node_modules` left out).
fn files_of(dir: &Path) -> Result<Vec<String>, Error> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).map_err(io(&current))? {
            let entry = entry.map_err(io(&current))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type().map_err(io(&path))?;
            if kind.is_dir() {
                if !name.starts_with('.') && name != "__pycache__" && name != "node_modules" {
                    stack.push(path);
                }
            } else if kind.is_file() {
                if let Ok(rel) = path.strip_prefix(dir) {
                    files.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
    }
    files.sort();
    Ok(files)
}

/// A glob of Odoo's asset paths: `*` within a folder, `**` across folders, `?`.
pub(crate) fn glob_match(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) if rest.first() == Some(&b'*') => {
                let rest = rest.get(1..).unwrap_or_default();
                let rest = rest.strip_prefix(b"/").unwrap_or(rest);
                (0..=s.len()).any(|i| go(rest, &s[i..]))
            }
            Some((b'*', rest)) => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != b'/')
                .any(|i| go(rest, &s[i..])),
            Some((b'?', rest)) => s.first().is_some_and(|c| *c != b'/') && go(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && go(rest, &s[1..]),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}

struct Reader<'a> {
    name: &'a str,
    findings: &'a mut Vec<Finding>,
}

impl Reader<'_> {
    fn add(&mut self, code: Code, rel: &str, line: u32, message: impl Into<String>) {
        self.findings.push(Finding::new(
            code,
            self.name,
            format!("{}/{rel}", self.name),
            line,
            message,
        ));
    }
}

fn string_list(value: &Lit) -> Option<Vec<(String, u32)>> {
    match value {
        Lit::List(items) => items
            .iter()
            .map(|item| item.value.as_str().map(|s| (s.to_owned(), item.line)))
            .collect(),
        _ => None,
    }
}

/// The manifest's checks; returns what the rest of the reading needs.
struct ManifestFacts {
    version: Option<(String, u32)>,
    depends: Vec<(String, u32)>,
    depends_line: u32,
    installable: bool,
    data: Vec<(String, u32)>,
    demo: Vec<(String, u32)>,
    assets: Vec<(String, u32)>,
}

fn check_manifest(
    reader: &mut Reader<'_>,
    dir: &Path,
    series: &(u32, u32),
) -> Result<Option<ManifestFacts>, Error> {
    let path = dir.join("__manifest__.py");
    let rel = "__manifest__.py";
    let text = match read_text(&path)? {
        Ok(text) => text,
        Err(line) => {
            reader.add(Code::ManifestSyntax, rel, line, NOT_UTF8);
            return Ok(None);
        }
    };
    let parsed = match manifest::parse(&text) {
        Ok(parsed) => parsed,
        Err(ManifestError::NotLiteral { line, message }) => {
            reader.add(Code::ManifestSyntax, rel, line, message);
            return Ok(None);
        }
        Err(ManifestError::NotDict { line, found }) => {
            reader.add(
                Code::ManifestNotDict,
                rel,
                line,
                format!("the manifest is {found}, not a dict"),
            );
            return Ok(None);
        }
    };
    for key in ["name", "version", "license", "depends"] {
        if parsed.get(key).is_none() {
            reader.add(
                Code::ManifestKeyMissing,
                rel,
                parsed.line,
                format!("no '{key}' key"),
            );
        }
    }
    let mut facts = ManifestFacts {
        version: None,
        depends: Vec::new(),
        depends_line: parsed.line,
        installable: true,
        data: Vec::new(),
        demo: Vec::new(),
        assets: Vec::new(),
    };
    for entry in &parsed.entries {
        let key = entry.key.as_str();
        let wrong =
            |expected: &str| format!("'{key}' is {}, not {expected}", entry.value.type_name());
        match key {
            "depends" | "data" | "demo" | "qweb" | "images" => match string_list(&entry.value) {
                Some(list) => match key {
                    "depends" => {
                        facts.depends = list;
                        facts.depends_line = entry.line;
                    }
                    "data" => facts.data = list,
                    "demo" => facts.demo = list,
                    _ => {}
                },
                None => reader.add(
                    Code::ManifestKeyType,
                    rel,
                    entry.line,
                    wrong("a list of strings"),
                ),
            },
            "installable" | "application" => {
                if matches!(entry.value, Lit::Bool(_)) {
                    if key == "installable" {
                        facts.installable = entry.value.truthy();
                    }
                } else {
                    reader.add(
                        Code::ManifestKeyType,
                        rel,
                        entry.line,
                        wrong("True or False"),
                    );
                }
            }
            "auto_install"
                if !matches!(entry.value, Lit::Bool(_)) && string_list(&entry.value).is_none() =>
            {
                reader.add(
                    Code::ManifestKeyType,
                    rel,
                    entry.line,
                    wrong("True, False or a list of modules"),
                );
            }
            "name" | "version" | "license" | "summary" | "author" | "category" | "website"
            | "description" | "maintainer" => match entry.value.as_str() {
                Some(text) => match key {
                    "version" => {
                        facts.version = Some((text.to_owned(), entry.line));
                        check_version(reader, text, entry.line, series);
                    }
                    "license" if !LICENSES.contains(&text) => reader.add(
                        Code::LicenseUnknown,
                        rel,
                        entry.line,
                        format!("licence '{text}' is not one Odoo knows"),
                    ),
                    _ => {}
                },
                None => reader.add(Code::ManifestKeyType, rel, entry.line, wrong("a string")),
            },
            "assets" => match &entry.value {
                Lit::Dict(bundles) => {
                    for bundle in bundles {
                        let Lit::List(items) = &bundle.value else {
                            reader.add(
                                Code::ManifestKeyType,
                                rel,
                                bundle.line,
                                format!("bundle '{}' is not a list", bundle.key),
                            );
                            continue;
                        };
                        for item in items {
                            match &item.value {
                                Lit::Str(path) => facts.assets.push((path.clone(), item.line)),
                                Lit::List(parts) => {
                                    let op = parts.first().and_then(|p| p.value.as_str());
                                    if op != Some("include") {
                                        if let Some(path) =
                                            parts.last().and_then(|p| p.value.as_str())
                                        {
                                            facts.assets.push((path.to_owned(), item.line));
                                        }
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                }
                _ => reader.add(Code::ManifestKeyType, rel, entry.line, wrong("a dict")),
            },
            _ => {}
        }
    }
    if facts.depends.is_empty() && reader.name != "base" {
        // Odoo's default: an addon without dependencies depends on base.
        facts.depends.push(("base".to_owned(), facts.depends_line));
    }
    Ok(Some(facts))
}

fn check_version(reader: &mut Reader<'_>, version: &str, line: u32, series: &(u32, u32)) {
    let parts: Vec<&str> = version.split('.').collect();
    let numeric = parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !numeric || parts.len() != 5 {
        reader.add(
            Code::VersionFormat,
            "__manifest__.py",
            line,
            format!(
                "version '{version}' is not <serie>.x.y.z (e.g. {}.{}.1.0.0)",
                series.0, series.1
            ),
        );
        return;
    }
    let serie = (parts[0].parse::<u32>().ok(), parts[1].parse::<u32>().ok());
    if serie != (Some(series.0), Some(series.1)) {
        reader.add(
            Code::VersionSerie,
            "__manifest__.py",
            line,
            format!(
                "version '{version}' is for {}.{}, the target is {}.{}",
                parts[0], parts[1], series.0, series.1
            ),
        );
    }
}

/// Reads one addon and runs its own checks. Findings are kept for checked addons only.
pub(crate) fn read(
    found: Found,
    series: &(u32, u32),
    findings: &mut Vec<Finding>,
) -> Result<Addon, Error> {
    let mut discarded = Vec::new();
    let sink = if found.checked {
        findings
    } else {
        &mut discarded
    };
    let mut reader = Reader {
        name: &found.name,
        findings: sink,
    };
    let files = files_of(&found.dir)?;
    let file_set: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    let facts = check_manifest(&mut reader, &found.dir, series)?;
    let mut addon = Addon {
        name: found.name.clone(),
        dir: found.dir.clone(),
        checked: found.checked,
        version: None,
        depends: Vec::new(),
        depends_line: 1,
        installable: true,
        loads: Vec::new(),
        models: BTreeSet::new(),
        own_models: BTreeSet::new(),
        fields: BTreeMap::new(),
    };
    // XML: every file must be well-formed; the listed ones are also read for ids.
    let mut parsed_xml: BTreeMap<&str, xml::DataFile> = BTreeMap::new();
    for rel in files.iter().filter(|f| f.ends_with(".xml")) {
        let text = match read_text(&found.dir.join(rel))? {
            Ok(text) => text,
            Err(line) => {
                reader.add(Code::XmlSyntax, rel, line, NOT_UTF8);
                continue;
            }
        };
        match xml::parse(&text) {
            Ok(data) => {
                parsed_xml.insert(rel, data);
            }
            Err(err) => reader.add(Code::XmlSyntax, rel, err.line, err.message),
        }
    }
    if let Some(facts) = &facts {
        addon.version.clone_from(&facts.version);
        addon.depends.clone_from(&facts.depends);
        addon.depends_line = facts.depends_line;
        addon.installable = facts.installable;
        for (listed, demo) in [(&facts.data, false), (&facts.demo, true)] {
            for (rel, line) in listed {
                if !file_set.contains(rel.as_str()) {
                    reader.add(
                        Code::ManifestFileMissing,
                        "__manifest__.py",
                        *line,
                        format!(
                            "'{rel}' is listed in '{}' but does not exist",
                            if demo { "demo" } else { "data" }
                        ),
                    );
                    continue;
                }
                let misplaced = if demo {
                    ["data/", "views/", "security/"]
                        .iter()
                        .any(|d| rel.starts_with(d))
                } else {
                    rel.starts_with("demo/")
                };
                if misplaced {
                    reader.add(
                        Code::DataDemoMixup,
                        "__manifest__.py",
                        *line,
                        if demo {
                            format!("'{rel}' is loaded as demo data: production databases never get it")
                        } else {
                            format!("'{rel}' is demo data loaded from 'data': every production database gets it")
                        },
                    );
                }
                let mut load = Load {
                    rel: rel.clone(),
                    demo,
                    ..Load::default()
                };
                if rel.ends_with(".xml") {
                    match parsed_xml.get(rel.as_str()) {
                        Some(data) => load.data = data.clone(),
                        None => continue,
                    }
                } else if rel.ends_with(".csv") {
                    let bytes =
                        std::fs::read(found.dir.join(rel)).map_err(io(&found.dir.join(rel)))?;
                    read_csv(&String::from_utf8_lossy(&bytes), rel, &mut load);
                }
                addon.loads.push(load);
            }
        }
        for (pattern, line) in &facts.assets {
            let Some(own) = pattern.strip_prefix(&format!("{}/", found.name)) else {
                continue;
            };
            if !files.iter().any(|f| glob_match(own, f)) {
                reader.add(
                    Code::ManifestFileMissing,
                    "__manifest__.py",
                    *line,
                    format!("asset '{pattern}' matches no file"),
                );
            }
        }
    }
    check_duplicates(&mut reader, &addon.loads);
    check_access_file(&mut reader, &found.dir, &file_set)?;
    read_python(&mut reader, &found.dir, &files, &mut addon)?;
    scan_secrets(&mut reader, &found.dir, &files)?;
    Ok(addon)
}

/// A CSV data file: its `id` column defines ids; `ir.model.access.csv` also gives its
/// rows' models and groups (references, at the row's place in the load).
fn read_csv(text: &str, rel: &str, load: &mut Load) {
    let rows = access::records(text);
    let Some((header, rows)) = rows.split_first() else {
        return;
    };
    let column = |name: &str| header.fields.iter().position(|h| h.trim() == name);
    let id = column("id");
    let model = column("model_id:id");
    let group = column("group_id:id");
    let is_access = rel.ends_with("ir.model.access.csv");
    for row in rows {
        let field = |index: Option<usize>| {
            index
                .and_then(|i| row.fields.get(i))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        if is_access {
            let group_id = field(group);
            if !group_id.is_empty() {
                load.data.references.push(xml::Reference {
                    id: group_id.clone(),
                    line: row.line,
                    defined_before: load.data.definitions.len(),
                });
            }
            load.access.push(AccessRow {
                line: row.line,
                model: field(model),
                group: group_id,
            });
        }
        let own = field(id);
        if !own.is_empty() {
            load.data.definitions.push(xml::Definition {
                id: own,
                line: row.line,
            });
        }
    }
}

/// X202: an id defined twice in the module's load (the second overwrites the first).
fn check_duplicates(reader: &mut Reader<'_>, loads: &[Load]) {
    let mut first: BTreeMap<String, (String, u32)> = BTreeMap::new();
    let prefix = format!("{}.", reader.name);
    for load in loads {
        for definition in &load.data.definitions {
            let local = definition
                .id
                .strip_prefix(&prefix)
                .unwrap_or(&definition.id);
            if local.contains('.') {
                continue;
            }
            match first.get(local) {
                Some((rel, line)) => {
                    let message = format!(
                        "id '{local}' is already defined at {}/{rel}:{line}",
                        reader.name
                    );
                    reader.add(Code::XmlDuplicateId, &load.rel, definition.line, message);
                }
                None => {
                    first.insert(local.to_owned(), (load.rel.clone(), definition.line));
                }
            }
        }
    }
}

/// A301 and A304 on `security/ir.model.access.csv`, listed or not.
fn check_access_file(
    reader: &mut Reader<'_>,
    dir: &Path,
    files: &BTreeSet<&str>,
) -> Result<(), Error> {
    let rel = "security/ir.model.access.csv";
    if !files.contains(rel) {
        return Ok(());
    }
    let bytes = std::fs::read(dir.join(rel)).map_err(io(&dir.join(rel)))?;
    let rows = access::records(&String::from_utf8_lossy(&bytes));
    let Some((header, rows)) = rows.split_first() else {
        reader.add(Code::AccessHeader, rel, 1, "the file is empty");
        return Ok(());
    };
    let columns: BTreeSet<&str> = header.fields.iter().map(|h| h.trim()).collect();
    let expected: BTreeSet<&str> = access::COLUMNS.into_iter().collect();
    if columns != expected {
        let missing: Vec<&str> = expected.difference(&columns).copied().collect();
        let unknown: Vec<&str> = columns.difference(&expected).copied().collect();
        reader.add(
            Code::AccessHeader,
            rel,
            header.line,
            format!(
                "header columns: missing [{}], unknown [{}]",
                missing.join(", "),
                unknown.join(", ")
            ),
        );
    }
    let perms: Vec<(usize, &str)> = header
        .fields
        .iter()
        .enumerate()
        .filter(|(_, h)| h.trim().starts_with("perm_"))
        .map(|(i, h)| (i, h.trim()))
        .collect();
    for row in rows {
        let bad: Vec<String> = perms
            .iter()
            .filter_map(|(i, name)| {
                let value = row.fields.get(*i).map_or("", |v| v.trim());
                (value != "0" && value != "1").then(|| format!("{name} = '{value}'"))
            })
            .collect();
        if !bad.is_empty() {
            reader.add(
                Code::AccessPermValue,
                rel,
                row.line,
                format!("{} (0 or 1 only)", bad.join(", ")),
            );
        }
    }
    Ok(())
}

/// Whether a Python file is loaded by import (tests and migrations are loaded by Odoo
/// by other means).
fn imported_by_odoo(rel: &str) -> bool {
    !["tests/", "migrations/", "upgrades/", "static/"]
        .iter()
        .any(|d| rel.starts_with(d))
        && rel != "__manifest__.py"
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// P401 to P403, and the models and fields for the cross-module checks.
fn read_python(
    reader: &mut Reader<'_>,
    dir: &Path,
    files: &[String],
    addon: &mut Addon,
) -> Result<(), Error> {
    let mut sources: BTreeMap<&str, python::Source> = BTreeMap::new();
    for rel in files
        .iter()
        .filter(|f| f.ends_with(".py") && *f != "__manifest__.py")
    {
        let text = match read_text(&dir.join(rel))? {
            Ok(text) => text,
            Err(line) => {
                reader.add(Code::PythonSyntax, rel, line, NOT_UTF8);
                continue;
            }
        };
        match python::parse(&text, rel) {
            Ok(source) => {
                sources.insert(rel, source);
            }
            Err(err) => reader.add(Code::PythonSyntax, rel, err.line, err.message),
        }
    }
    let exists = |rel: &str| files.iter().any(|f| f == rel);
    let mut imported: BTreeSet<String> = BTreeSet::new();
    let mut queue = vec!["__init__.py".to_owned()];
    while let Some(file) = queue.pop() {
        if !imported.insert(file.clone()) {
            continue;
        }
        let Some(source) = sources.get(file.as_str()) else {
            continue;
        };
        let package = file.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
        let mut missing = Vec::new();
        for import in &source.imports {
            let base = match &import.module {
                Some(module) => {
                    let base = join(&package, &module.replace('.', "/"));
                    if exists(&format!("{base}.py")) {
                        imported.insert(format!("{base}.py"));
                    } else if exists(&format!("{base}/__init__.py")) {
                        queue.push(format!("{base}/__init__.py"));
                    } else {
                        missing.push((module.clone(), import.line));
                        continue;
                    }
                    base
                }
                None => package.clone(),
            };
            for name in &import.names {
                if name == "*" {
                    continue;
                }
                let module = join(&base, name);
                if exists(&format!("{module}.py")) {
                    imported.insert(format!("{module}.py"));
                } else if exists(&format!("{module}/__init__.py")) {
                    queue.push(format!("{module}/__init__.py"));
                } else if import.module.is_none() {
                    missing.push((name.clone(), import.line));
                }
            }
        }
        for (name, line) in missing {
            reader.add(
                Code::ImportMissing,
                &file,
                line,
                format!("`{name}` is imported but neither {name}.py nor {name}/ exists"),
            );
        }
    }
    for (rel, source) in &sources {
        if !imported_by_odoo(rel) {
            continue;
        }
        for model in &source.models {
            if let Some(name) = model.model() {
                addon.models.insert(name.to_owned());
                addon
                    .fields
                    .entry(name.to_owned())
                    .or_default()
                    .extend(model.fields.iter().cloned());
            }
            if let Some(name) = &model.name {
                addon.own_models.insert(name.clone());
            }
        }
        if let Some(first) = source.models.first() {
            if !imported.contains(*rel) {
                let names: Vec<&str> = source.models.iter().filter_map(|m| m.model()).collect();
                reader.add(
                    Code::ModelNotImported,
                    rel,
                    first.line,
                    format!(
                        "{rel} defines {} but no __init__.py imports it",
                        names.join(", ")
                    ),
                );
            }
        }
    }
    Ok(())
}

fn scan_secrets(reader: &mut Reader<'_>, dir: &Path, files: &[String]) -> Result<(), Error> {
    for rel in files {
        let extension = rel.rsplit_once('.').map_or("", |(_, e)| e);
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if !secrets::EXTENSIONS.contains(&extension) && !name.starts_with(".env") {
            continue;
        }
        let path = dir.join(rel);
        let size = std::fs::metadata(&path).map_err(io(&path))?.len();
        if size > MAX_SCANNED {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let text = String::from_utf8_lossy(&bytes);
        for hit in secrets::scan(&text) {
            let mut finding = Finding::new(
                Code::SecretHardcoded,
                reader.name,
                format!("{}/{rel}", reader.name),
                hit.line,
                format!("{} is written in the file", hit.description),
            );
            finding.fingerprint = Some(hit.fingerprint);
            reader.findings.push(finding);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn asset_globs_match_as_odoo_does() {
        assert!(glob_match("static/src/**/*", "static/src/js/a.js"));
        assert!(glob_match("static/src/**/*.js", "static/src/a.js"));
        assert!(glob_match("static/src/*.js", "static/src/a.js"));
        assert!(!glob_match("static/src/*.js", "static/src/js/a.js"));
        assert!(!glob_match("static/src/**/*.scss", "static/src/js/a.js"));
        assert!(glob_match("static/src/js/a.js", "static/src/js/a.js"));
    }
}
