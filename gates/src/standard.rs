//! The standard plan: the gates worth running against any Odoo, built in code from a
//! target (what `odoo-gate check` and `odoo-gate demo` run).
//!
//! | gate | kind | depends on | included |
//! |---|---|---|---|
//! | `port` | `tcp` | | always |
//! | `health` | `health` (`db_server_status = true`) | `port` | always |
//! | `websocket` | `websocket-health` | `port` | always |
//! | `login-page` | `login-page` | `port` | always |
//! | `version` | `version` (expected version and release, when given) | `port` | always |
//! | `database` | `database-listed` | `port` | the target has a database |
//! | `postgres` | `postgres` | | a DSN is given |
//! | `auth` | `authentication` | `health`, `database` | the target can log in (database, login, password or API key) |
//! | `modules` | `modules` (the named ones, and none pending) | `auth` | the target can log in |
//! | `smoke` | `smoke-crud` on `res.partner` | `auth` | comprehensive, the target can log in |
//! | `filestore` | `filestore` | `auth` | comprehensive, the target can log in |
//! | `response-time` | `response-time` (`/web/login`, `/web/health`) | `login-page` | comprehensive |
//! | `sessions` | `session-continuity` from another target | `auth` | comprehensive, another target given, and the target can log in |
//!
//! Gates of one level run concurrently, so a plan takes about as long as its slowest
//! chain of dependencies (four levels: `port`, the probes, `auth`, what needs a login).
//!
//! ```
//! use deploy_core::{SecretRef, Target};
//! use deploy_gates::standard::StandardPlan;
//!
//! let target = Target::new("odoo", "http://127.0.0.1:8069".parse()?)
//!     .with_database("prod")
//!     .with_login("admin")
//!     .with_password(SecretRef::env("ODOO_PASSWORD"));
//! let plan = StandardPlan::new(target).modules(["sale"]).build()?;
//! let names: Vec<&str> = plan.gates.iter().map(|g| g.name.as_str()).collect();
//! assert_eq!(
//!     names,
//!     ["port", "health", "websocket", "login-page", "version", "database", "auth", "modules"]
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use deploy_core::{SecretRef, Target};

use crate::{
    AuthenticationSettings, DatabaseListedSettings, FilestoreSettings, GateSettings, GateSpec,
    HealthSettings, LoginPageSettings, ModulesSettings, Plan, PostgresSettings,
    ResponseTimeSettings, Result, RunSettings, SessionContinuitySettings, SmokeCrudSettings,
    TcpSettings, VersionSettings, WebsocketHealthSettings,
};

/// Builds the standard [`Plan`] for a target; see the [module docs](self) for its gates.
#[derive(Debug, Clone)]
pub struct StandardPlan {
    target: Target,
    modules: Vec<String>,
    comprehensive: bool,
    postgres: Option<SecretRef>,
    session_from: Option<Target>,
    expected_version: Option<String>,
    expected_release: Option<String>,
    run: RunSettings,
}

impl StandardPlan {
    /// The quick set for `target`, run once with the default [`RunSettings`].
    #[must_use]
    pub fn new(target: Target) -> Self {
        StandardPlan {
            target,
            modules: Vec::new(),
            comprehensive: false,
            postgres: None,
            session_from: None,
            expected_version: None,
            expected_release: None,
            run: RunSettings::default(),
        }
    }

    /// Modules that must be installed (the `modules` gate checks that none is pending in
    /// any case).
    #[must_use]
    pub fn modules<I, S>(mut self, modules: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.modules.extend(modules.into_iter().map(Into::into));
        self
    }

    /// Adds the gates that write or load the server: `smoke`, `filestore`,
    /// `response-time`, and `sessions` when [`StandardPlan::session_from`] is set.
    #[must_use]
    pub fn comprehensive(mut self, comprehensive: bool) -> Self {
        self.comprehensive = comprehensive;
        self
    }

    /// Adds the `postgres` gate with this DSN.
    #[must_use]
    pub fn postgres(mut self, dsn: SecretRef) -> Self {
        self.postgres = Some(dsn);
        self
    }

    /// The live target whose sessions the `sessions` gate checks (comprehensive only).
    /// Its name must differ from the checked target's.
    #[must_use]
    pub fn session_from(mut self, target: Target) -> Self {
        self.session_from = Some(target);
        self
    }

    /// The version the `version` gate expects (`"17.0"`, `"saas~17.1"`, `"17"`).
    #[must_use]
    pub fn expected_version(mut self, version: impl Into<String>) -> Self {
        self.expected_version = Some(version.into());
        self
    }

    /// The release label the `version` gate expects.
    #[must_use]
    pub fn expected_release(mut self, release: impl Into<String>) -> Self {
        self.expected_release = Some(release.into());
        self
    }

    /// The run settings (default: once, 5 min timeout, 30 s per gate).
    #[must_use]
    pub fn run_settings(mut self, run: RunSettings) -> Self {
        self.run = run;
        self
    }

    /// The plan.
    ///
    /// # Errors
    ///
    /// The configuration errors of [`Plan::new`], e.g.
    /// [`Error::DuplicateTarget`](crate::Error::DuplicateTarget) when the session target
    /// has the checked target's name.
    pub fn build(self) -> Result<Plan> {
        let name = self.target.name.clone();
        let spec = |gate: &str, settings: GateSettings| GateSpec {
            timeout: self.run.gate_timeout,
            failure_limit: self.run.failure_limit,
            consecutive_error_limit: self.run.consecutive_error_limit,
            ..GateSpec::new(gate, name.clone(), settings)
        };
        let has_db = self.target.database.is_some();
        let can_login = has_db && self.target.login.is_some() && self.target.credential().is_some();

        let mut gates = vec![
            spec("port", GateSettings::Tcp(TcpSettings::default())),
            spec(
                "health",
                GateSettings::Health(HealthSettings {
                    db_server_status: true,
                    ..HealthSettings::default()
                }),
            )
            .depends_on(["port"]),
            spec(
                "websocket",
                GateSettings::WebsocketHealth(WebsocketHealthSettings::default()),
            )
            .depends_on(["port"]),
            spec(
                "login-page",
                GateSettings::LoginPage(LoginPageSettings::default()),
            )
            .depends_on(["port"]),
            spec(
                "version",
                GateSettings::Version(VersionSettings {
                    expected_version: self.expected_version.clone(),
                    expected_release: self.expected_release.clone(),
                }),
            )
            .depends_on(["port"]),
        ];
        if has_db {
            gates.push(
                spec(
                    "database",
                    GateSettings::DatabaseListed(DatabaseListedSettings::default()),
                )
                .depends_on(["port"]),
            );
        }
        if let Some(dsn) = &self.postgres {
            gates.push(spec(
                "postgres",
                GateSettings::Postgres(PostgresSettings::new(dsn.clone())),
            ));
        }
        if can_login {
            gates.push(
                spec(
                    "auth",
                    GateSettings::Authentication(AuthenticationSettings::default()),
                )
                .depends_on(["health", "database"]),
            );
            gates.push(
                spec(
                    "modules",
                    GateSettings::Modules(ModulesSettings {
                        modules: self.modules.clone(),
                    }),
                )
                .depends_on(["auth"]),
            );
        }
        let mut targets = vec![self.target.clone()];
        if self.comprehensive {
            if can_login {
                gates.push(
                    spec(
                        "smoke",
                        GateSettings::SmokeCrud(SmokeCrudSettings::default()),
                    )
                    .depends_on(["auth"]),
                );
                gates.push(
                    spec(
                        "filestore",
                        GateSettings::Filestore(FilestoreSettings::default()),
                    )
                    .depends_on(["auth"]),
                );
            }
            gates.push(
                spec(
                    "response-time",
                    GateSettings::ResponseTime(ResponseTimeSettings {
                        routes: vec!["/web/login".to_owned(), "/web/health".to_owned()],
                        ..ResponseTimeSettings::default()
                    }),
                )
                .depends_on(["login-page"]),
            );
            if let (Some(from), true) = (&self.session_from, can_login) {
                gates.push(
                    spec(
                        "sessions",
                        GateSettings::SessionContinuity(SessionContinuitySettings {
                            from_target: from.name.clone(),
                        }),
                    )
                    .depends_on(["auth"]),
                );
                targets.push(from.clone());
            }
        }
        Plan::new(self.run, targets, gates)
    }
}
