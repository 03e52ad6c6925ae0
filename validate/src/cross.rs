//! The checks across addons (level `comprehensive`): dependencies, references, view
//! and access models and groups; and the install dry run (level `bulletproof`):
//! dependency order, cycles, and every id a file needs loaded before it loads.
//!
//! `base`, `web` and `mail` are always known (Odoo's core and the addons the fake Odoo
//! ships); unless their folders are on the addons path their ids are unknown, so
//! references into them are not checked, and their models are taken by prefix (`res.*`,
//! `ir.*`, `mail.*`, ...).

use std::collections::{BTreeMap, BTreeSet};

use crate::addon::Addon;
use crate::{Code, Finding};

/// Addons known without their sources, with the model prefixes they define.
const BUILTIN: [(&str, &[&str]); 3] = [
    (
        "base",
        &[
            "res.",
            "ir.",
            "base",
            "report.",
            "decimal.precision",
            "change.password",
        ],
    ),
    ("web", &["web.", "base.document.layout"]),
    ("mail", &["mail.", "discuss.", "bus.", "res.", "fetchmail."]),
];

/// Where an id a module defines is loaded: (file index in its load, definitions
/// before it in that file). Model ids (`model_x`) exist before any file loads.
type Position = (usize, usize);
const BEFORE_FILES: Position = (0, 0);

/// The addons by name, with the ids each defines.
pub(crate) struct Index<'a> {
    addons: BTreeMap<&'a str, &'a Addon>,
    ids: BTreeMap<&'a str, BTreeMap<String, Position>>,
}

fn builtin(name: &str) -> Option<&'static [&'static str]> {
    BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, prefixes)| *prefixes)
}

/// `model_shop_item` for `shop.item`.
fn model_id(model: &str) -> String {
    format!("model_{}", model.replace('.', "_"))
}

impl<'a> Index<'a> {
    pub(crate) fn new(addons: &'a [Addon]) -> Self {
        let mut by_name = BTreeMap::new();
        let mut ids = BTreeMap::new();
        for addon in addons {
            by_name.insert(addon.name.as_str(), addon);
            let mut own: BTreeMap<String, Position> = BTreeMap::new();
            for model in &addon.own_models {
                own.insert(model_id(model), BEFORE_FILES);
            }
            let prefix = format!("{}.", addon.name);
            for (file, load) in addon.loads.iter().enumerate() {
                for (at, definition) in load.data.definitions.iter().enumerate() {
                    let local = definition
                        .id
                        .strip_prefix(&prefix)
                        .unwrap_or(&definition.id);
                    if !local.contains('.') {
                        own.entry(local.to_owned()).or_insert((file + 1, at));
                    }
                }
            }
            ids.insert(addon.name.as_str(), own);
        }
        Self {
            addons: by_name,
            ids,
        }
    }

    fn known(&self, name: &str) -> bool {
        self.addons.contains_key(name) || builtin(name).is_some()
    }

    /// `name` and every module it depends on, transitively (base always).
    fn closure(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::from(["base".to_owned()]);
        let mut stack = vec![name.to_owned()];
        while let Some(current) = stack.pop() {
            if !seen.insert(current.clone()) && current != "base" {
                continue;
            }
            if let Some(addon) = self.addons.get(current.as_str()) {
                for (dependency, _) in &addon.depends {
                    if !seen.contains(dependency) {
                        stack.push(dependency.clone());
                    }
                }
            }
        }
        seen
    }

    /// Whether every module of the closure is indexed or built in (models decidable).
    fn models_decidable(&self, closure: &BTreeSet<String>) -> bool {
        closure.iter().all(|m| self.known(m))
    }

    fn model_available(&self, closure: &BTreeSet<String>, model: &str) -> bool {
        closure.iter().any(|m| match self.addons.get(m.as_str()) {
            Some(addon) => addon.models.contains(model),
            None => {
                builtin(m).is_some_and(|prefixes| prefixes.iter().any(|p| model.starts_with(p)))
            }
        })
    }

    fn model_id_available(&self, closure: &BTreeSet<String>, id: &str) -> bool {
        closure.iter().any(|m| match self.addons.get(m.as_str()) {
            Some(addon) => addon.models.iter().any(|model| model_id(model) == id),
            None => builtin(m).is_some_and(|prefixes| {
                prefixes
                    .iter()
                    .any(|p| id.starts_with(&model_id(p.trim_end_matches('.'))))
            }),
        })
    }
}

/// How a reference resolves.
enum Resolution {
    /// Defined in `module`, at that place in its load.
    Defined { module: String, at: Position },
    /// Into a module whose ids are unknown (built in, or not on the path).
    Unknown,
    /// Into a module the referring one does not depend on.
    NotDependency { module: String },
    /// Nowhere.
    Missing { module: String, local: String },
}

fn resolve(index: &Index<'_>, addon: &Addon, closure: &BTreeSet<String>, id: &str) -> Resolution {
    let (module, local) = match id.split_once('.') {
        Some((module, local)) => (module.to_owned(), local.to_owned()),
        None => (addon.name.clone(), id.to_owned()),
    };
    if module != addon.name && !closure.contains(&module) {
        return Resolution::NotDependency { module };
    }
    match index.ids.get(module.as_str()) {
        Some(ids) => match ids.get(&local) {
            Some(at) => Resolution::Defined { module, at: *at },
            None => Resolution::Missing { module, local },
        },
        None => Resolution::Unknown,
    }
}

/// A reference of an addon's load: its file, line, text and place.
struct Use<'a> {
    rel: &'a str,
    file: usize,
    line: u32,
    id: &'a str,
    before: usize,
    csv_group: bool,
}

fn uses(addon: &Addon) -> Vec<Use<'_>> {
    let prefix = format!("{}.", addon.name);
    let mut all = Vec::new();
    for (file, load) in addon.loads.iter().enumerate() {
        let csv_group = load.rel.ends_with(".csv");
        for reference in &load.data.references {
            all.push(Use {
                rel: &load.rel,
                file: file + 1,
                line: reference.line,
                id: &reference.id,
                before: reference.defined_before,
                csv_group,
            });
        }
        // A record with another module's id writes into that module's record: it
        // must exist.
        for (at, definition) in load.data.definitions.iter().enumerate() {
            if definition.id.contains('.') && !definition.id.starts_with(&prefix) {
                all.push(Use {
                    rel: &load.rel,
                    file: file + 1,
                    line: definition.line,
                    id: &definition.id,
                    before: at,
                    csv_group,
                });
            }
        }
    }
    all
}

/// M109, X203 to X205, A302, A303 for every checked addon.
pub(crate) fn check(index: &Index<'_>, findings: &mut Vec<Finding>) {
    for addon in index.addons.values().filter(|a| a.checked) {
        let name = addon.name.as_str();
        for (dependency, line) in &addon.depends {
            if !index.known(dependency) {
                findings.push(Finding::new(
                    Code::DependencyMissing,
                    name,
                    addon.file("__manifest__.py"),
                    *line,
                    format!("dependency '{dependency}' is not on the addons path"),
                ));
            }
        }
        let closure = index.closure(name);
        for reference in uses(addon) {
            let (code_missing, code_foreign) = if reference.csv_group {
                (Code::AccessGroupUnresolved, Code::AccessGroupUnresolved)
            } else {
                (Code::XmlRefUnresolved, Code::XmlRefNotDependency)
            };
            match resolve(index, addon, &closure, reference.id) {
                Resolution::Defined { .. } | Resolution::Unknown => {}
                Resolution::NotDependency { module } => findings.push(Finding::new(
                    code_foreign,
                    name,
                    addon.file(reference.rel),
                    reference.line,
                    format!(
                        "'{}' is in '{module}', which {name} does not depend on",
                        reference.id
                    ),
                )),
                Resolution::Missing { module, local } => findings.push(Finding::new(
                    code_missing,
                    name,
                    addon.file(reference.rel),
                    reference.line,
                    format!("'{}': {module} defines no id '{local}'", reference.id),
                )),
            }
        }
        if !index.models_decidable(&closure) {
            continue;
        }
        for load in &addon.loads {
            for view in &load.data.view_models {
                if !index.model_available(&closure, &view.model) {
                    findings.push(Finding::new(
                        Code::ViewModelUnknown,
                        name,
                        addon.file(&load.rel),
                        view.line,
                        format!(
                            "the view is for model '{}', which neither {name} nor its dependencies define",
                            view.model
                        ),
                    ));
                }
            }
            for row in &load.access {
                let local = row
                    .model
                    .split_once('.')
                    .map_or(row.model.as_str(), |(_, l)| l);
                if !row.model.is_empty() && !index.model_id_available(&closure, local) {
                    findings.push(Finding::new(
                        Code::AccessModelUnknown,
                        name,
                        addon.file(&load.rel),
                        row.line,
                        format!("'{}' is no model of {name} or its dependencies", row.model),
                    ));
                }
            }
        }
    }
}

/// The install order: by depth in the dependency graph, then by name (Odoo's graph);
/// `None` for the modules of a cycle.
fn depths(index: &Index<'_>) -> BTreeMap<String, Option<usize>> {
    fn depth(
        index: &Index<'_>,
        name: &str,
        visiting: &mut BTreeSet<String>,
        done: &mut BTreeMap<String, Option<usize>>,
    ) -> Option<usize> {
        if let Some(known) = done.get(name) {
            return *known;
        }
        if !visiting.insert(name.to_owned()) {
            return None;
        }
        let result = match index.addons.get(name) {
            Some(addon) => {
                let mut deepest = Some(0);
                for (dependency, _) in &addon.depends {
                    match (deepest, depth(index, dependency, visiting, done)) {
                        (Some(d), Some(dd)) => deepest = Some(d.max(dd + 1)),
                        _ => deepest = None,
                    }
                }
                deepest
            }
            None => Some(0),
        };
        visiting.remove(name);
        done.insert(name.to_owned(), result);
        result
    }
    let mut done = BTreeMap::new();
    for name in index.addons.keys() {
        depth(index, name, &mut BTreeSet::new(), &mut done);
    }
    done
}

/// I701 and I702: the install dry run of every checked addon.
pub(crate) fn install(index: &Index<'_>, findings: &mut Vec<Finding>) {
    let depths = depths(index);
    let reported: BTreeSet<(String, u32)> = findings
        .iter()
        .filter(|f| {
            matches!(
                f.code(),
                Some(
                    Code::XmlRefUnresolved
                        | Code::XmlRefNotDependency
                        | Code::AccessGroupUnresolved
                )
            )
        })
        .map(|f| (f.file.clone(), f.line))
        .collect();
    for addon in index.addons.values().filter(|a| a.checked) {
        let name = addon.name.as_str();
        if depths.get(name).copied().flatten().is_none() {
            let in_cycle = addon
                .depends
                .iter()
                .any(|(dependency, _)| index.closure_reaches(dependency, name));
            let message = if in_cycle {
                format!("{name} is in a dependency cycle: Odoo cannot order its install")
            } else {
                format!("{name} depends on a module in a dependency cycle")
            };
            findings.push(Finding::new(
                Code::InstallOrder,
                name,
                addon.file("__manifest__.py"),
                addon.depends_line,
                message,
            ));
            continue;
        }
        for (dependency, line) in &addon.depends {
            if index
                .addons
                .get(dependency.as_str())
                .is_some_and(|d| !d.installable)
            {
                findings.push(Finding::new(
                    Code::InstallOrder,
                    name,
                    addon.file("__manifest__.py"),
                    *line,
                    format!("dependency '{dependency}' is not installable ('installable': False)"),
                ));
            }
        }
        let closure = index.closure(name);
        for reference in uses(addon) {
            let file = addon.file(reference.rel);
            if reported.contains(&(file.clone(), reference.line)) {
                continue;
            }
            let Resolution::Defined { module, at } = resolve(index, addon, &closure, reference.id)
            else {
                continue;
            };
            if module != name || at < (reference.file, reference.before) {
                continue;
            }
            let (defined_in, place) = addon
                .loads
                .get(at.0.saturating_sub(1))
                .map(|load| (load.rel.clone(), if load.demo { "demo" } else { "data" }))
                .unwrap_or_default();
            let message = if at.0 == reference.file {
                format!(
                    "'{}' is used before its record, further down {defined_in}: External ID not found at install",
                    reference.id
                )
            } else {
                format!(
                    "'{}' is defined in {defined_in} ({place}), which loads after {}: External ID not found at install",
                    reference.id, reference.rel
                )
            };
            findings.push(Finding::new(
                Code::InstallLoadOrder,
                name,
                file,
                reference.line,
                message,
            ));
        }
    }
}

impl Index<'_> {
    /// Whether `from` depends on `to`, transitively.
    fn closure_reaches(&self, from: &str, to: &str) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_owned()];
        while let Some(current) = stack.pop() {
            if current == to {
                return true;
            }
            if !seen.insert(current.clone()) {
                continue;
            }
            if let Some(addon) = self.addons.get(current.as_str()) {
                stack.extend(addon.depends.iter().map(|(d, _)| d.clone()));
            }
        }
        false
    }
}
