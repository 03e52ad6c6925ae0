//! The `modules` gate and its settings.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use odoo_rpc::{Domain, Op, SearchOptions};
use serde::Deserialize;

use super::common::{budget, odoo_failure, Connection};
use crate::settings::invalid;
use crate::{Gate, GateContext, Result, Verdict};

/// What modules pending in `state` mean, and what finishes them.
fn pending_problem(state: &str, names: &[&str]) -> String {
    let list = names.join(", ");
    let n = names.len();
    match state {
        "to upgrade" => format!(
            "{n} installed with an update pending ({state}): {list}; finish the update (odoo -u {})",
            names.join(",")
        ),
        "to install" => format!(
            "{n} marked for installation, not installed yet ({state}): {list}; finish it (odoo -i {})",
            names.join(",")
        ),
        "to remove" => format!(
            "{n} installed and marked for removal ({state}): {list}; finish or cancel the uninstallation"
        ),
        _ => format!("{n} {state}: {list}"),
    }
}

/// The states a deployed instance must not leave any module in.
const PENDING: [&str; 3] = ["to install", "to upgrade", "to remove"];

/// Checks the modules of the target's database: the named ones are `installed`, and no
/// module is `to install`, `to upgrade` or `to remove` (an update that did not run, or
/// ran halfway).
///
/// One `search_read` on `ir.module.module` for the named modules and the pending ones.
///
/// | outcome | when |
/// |---|---|
/// | `Pass` | every named module installed, no module pending |
/// | `Fail` | a named module missing or in another state, a module pending, Odoo answers with an error |
/// | `Err` | no Odoo answer |
///
/// Values: `installed` (named modules installed), `not_installed`, `pending`,
/// `to_install`, `to_upgrade`, `to_remove`.
#[derive(Debug, Clone)]
pub struct ModulesGate {
    name: String,
    connection: Arc<Connection>,
    modules: Vec<String>,
}

impl ModulesGate {
    /// A gate named `name` checking `connection`'s target.
    ///
    /// # Errors
    ///
    /// [`Error::MissingField`](crate::Error::MissingField) when the target cannot
    /// authenticate (no database, login, or password or API key).
    pub fn new(
        name: impl Into<String>,
        connection: Arc<Connection>,
        settings: &ModulesSettings,
    ) -> Result<Self> {
        connection.require_credentials()?;
        Ok(ModulesGate {
            name: name.into(),
            connection,
            modules: settings.modules.clone(),
        })
    }
}

#[derive(Deserialize)]
struct ModuleRow {
    name: String,
    state: String,
}

#[async_trait]
impl Gate for ModulesGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, cx: &GateContext) -> Result<Verdict> {
        let client = self.connection.odoo().with_timeout(budget(cx, &self.name)?);
        let pending = Domain::leaf("state", Op::In, serde_json::json!(PENDING));
        let domain = if self.modules.is_empty() {
            pending
        } else {
            Domain::leaf("name", Op::In, serde_json::json!(self.modules)).or(pending)
        };
        let rows: Vec<ModuleRow> = match client
            .search_read(
                "ir.module.module",
                &domain,
                &["name", "state"],
                &SearchOptions::default().order("name asc"),
            )
            .await
        {
            Ok(rows) => rows,
            Err(err) => return odoo_failure(&self.name, "reading ir.module.module", err),
        };
        let states: BTreeMap<&str, &str> = rows
            .iter()
            .map(|row| (row.name.as_str(), row.state.as_str()))
            .collect();

        // A named module `to upgrade` or `to remove` is installed, with an operation
        // pending: it is reported with the pending ones, not as missing (the fix is to
        // finish the update, not to install it).
        let mut not_installed = Vec::new();
        for module in &self.modules {
            match states.get(module.as_str()) {
                Some(&"installed" | &"to upgrade" | &"to remove") => {}
                Some(state) => not_installed.push(format!("{module} ({state})")),
                None => not_installed.push(format!("{module} (not found)")),
            }
        }
        let mut by_state: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for row in &rows {
            if PENDING.contains(&row.state.as_str()) {
                by_state.entry(&row.state).or_default().push(&row.name);
            }
        }
        let count = |state: &str| by_state.get(state).map_or(0, Vec::len) as f64;
        let pending_total: usize = by_state.values().map(Vec::len).sum();
        let installed = self.modules.len() - not_installed.len();

        let mut problems = Vec::new();
        if !not_installed.is_empty() {
            problems.push(format!("not installed: {}", not_installed.join(", ")));
        }
        for (state, names) in &by_state {
            problems.push(pending_problem(state, names));
        }
        let verdict = if problems.is_empty() {
            let named = if self.modules.is_empty() {
                String::new()
            } else {
                format!("{} installed; ", self.modules.join(", "))
            };
            Verdict::pass(format!("{named}no module pending"))
        } else {
            Verdict::fail(problems.join("; "))
        };
        Ok(verdict
            .with_value("installed", installed as f64)
            .with_value("not_installed", not_installed.len() as f64)
            .with_value("pending", pending_total as f64)
            .with_value("to_install", count("to install"))
            .with_value("to_upgrade", count("to upgrade"))
            .with_value("to_remove", count("to remove")))
    }
}

/// Settings of a `modules` gate.
///
/// ```toml
/// modules = ["sale", "stock"]   # default []: only check that no module is pending
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModulesSettings {
    /// Modules that must be `installed`. Whatever this lists, no module of the database
    /// may be `to install`, `to upgrade` or `to remove`.
    #[serde(default)]
    pub modules: Vec<String>,
}

impl ModulesSettings {
    /// Checks the values the types let through.
    pub(crate) fn validate(&self, gate: &str) -> Result<()> {
        if let Some(empty) = self.modules.iter().find(|m| m.trim().is_empty()) {
            return invalid(gate, "modules", format!("`{empty}` is not a module name"));
        }
        Ok(())
    }
}
