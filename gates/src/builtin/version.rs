//! The `version` gate and its settings.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use super::common::{budget, odoo_failure, Connection};
use crate::{Gate, GateContext, Result, Verdict};

/// Checks the server's version and release.
///
/// `expected_version` matches `server_serie` or `server_version` exactly (`"17.0"`,
/// `"saas~17.1"`), or the major version when it is a bare number (`"17"`).
/// `expected_release` matches the release label the deployment reports in the
/// `X-Odoo-Release` response header (the project's images set it).
///
/// | outcome | when |
/// |---|---|
/// | `Pass` | every expectation set matches (with none set: the server reports a version) |
/// | `Fail` | a version or release differs; Odoo answers with an error |
/// | `Inconclusive` | `expected_release` is set but the server reports no release label |
/// | `Err` | no Odoo answer |
///
/// Values: `major`, `protocol_version`.
#[derive(Debug, Clone)]
pub struct VersionGate {
    name: String,
    connection: Arc<Connection>,
    expected_version: Option<String>,
    expected_release: Option<String>,
}

impl VersionGate {
    /// A gate named `name` checking `connection`'s target.
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        connection: Arc<Connection>,
        settings: &VersionSettings,
    ) -> Self {
        VersionGate {
            name: name.into(),
            connection,
            expected_version: settings.expected_version.clone(),
            expected_release: settings.expected_release.clone(),
        }
    }
}

fn version_matches(expected: &str, version: &odoo_rpc::ServerVersion) -> bool {
    let expected = expected.trim();
    expected == version.server_serie
        || expected == version.server_version
        || expected
            .parse::<u8>()
            .is_ok_and(|major| major == version.major)
}

#[async_trait]
impl Gate for VersionGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, cx: &GateContext) -> Result<Verdict> {
        let client = self.connection.odoo().with_timeout(budget(cx, &self.name)?);
        let version = match client.version().await {
            Ok(version) => version,
            Err(err) => return odoo_failure(&self.name, "reading the version", err),
        };
        let release = version.release.as_deref();
        let found = match release {
            Some(release) => format!(
                "{} (serie {}), release `{release}`",
                version.server_version, version.server_serie
            ),
            None => format!(
                "{} (serie {})",
                version.server_version, version.server_serie
            ),
        };
        let verdict = match (&self.expected_version, &self.expected_release, release) {
            (Some(expected), _, _) if !version_matches(expected, &version) => {
                Verdict::fail(format!("version {found}, expected {expected}"))
            }
            (_, Some(expected), Some(release)) if release != expected => Verdict::fail(format!(
                "release `{release}` deployed, expected `{expected}` (version {})",
                version.server_version
            )),
            (_, Some(expected), None) => Verdict::inconclusive(format!(
                "version {found}, but the server reports no release label (no X-Odoo-Release \
                 header): cannot confirm `{expected}`"
            )),
            _ => Verdict::pass(found),
        };
        Ok(verdict
            .with_value("major", f64::from(version.major))
            .with_value("protocol_version", version.protocol_version as f64))
    }
}

/// Settings of a `version` gate.
///
/// ```toml
/// expected_version = "17.0"         # server_serie must match (optional)
/// expected_release = "2025.01.1"    # X-Odoo-Release / release label must match (optional)
/// ```
/// With neither set, the gate passes when the server reports a version at all, and
/// records it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionSettings {
    /// Expected `server_serie`, e.g. `"17.0"` or `"saas~17.1"`.
    #[serde(default)]
    pub expected_version: Option<String>,
    /// Expected release label of the deployed build.
    #[serde(default)]
    pub expected_release: Option<String>,
}
