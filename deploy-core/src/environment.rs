//! Deployment environments.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The environment a deployment runs in.
///
/// Written in lower case everywhere: `"dev"`, `"staging"`, `"uat"`, `"production"`.
/// [`FromStr`] also accepts any letter case (but no aliases such as `prod`, so one
/// environment has one spelling in configuration and history files).
///
/// ```
/// use deploy_core::Environment;
///
/// let env: Environment = "production".parse()?;
/// assert!(env.is_production());
/// assert_eq!(Environment::Uat.to_string(), "uat");
/// # Ok::<(), deploy_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Development.
    Dev,
    /// Staging.
    Staging,
    /// User acceptance testing.
    Uat,
    /// Production.
    Production,
}

impl Environment {
    /// Every environment, from the least to the most critical.
    pub const ALL: [Environment; 4] = [
        Environment::Dev,
        Environment::Staging,
        Environment::Uat,
        Environment::Production,
    ];

    /// The lower-case name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Environment::Dev => "dev",
            Environment::Staging => "staging",
            Environment::Uat => "uat",
            Environment::Production => "production",
        }
    }

    /// Whether this is [`Environment::Production`].
    #[must_use]
    pub const fn is_production(self) -> bool {
        matches!(self, Environment::Production)
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Environment {
    type Err = Error;

    /// Parses an environment name in any letter case.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownEnvironment`] for anything else.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Environment::ALL
            .into_iter()
            .find(|env| env.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownEnvironment {
                value: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_from_str_round_trip() {
        for env in Environment::ALL {
            assert_eq!(env.to_string().parse::<Environment>().unwrap(), env);
        }
        assert_eq!(
            "Production".parse::<Environment>().unwrap(),
            Environment::Production
        );
    }

    #[test]
    fn from_str_rejects_unknown() {
        let err = "prod".parse::<Environment>().unwrap_err();
        assert!(matches!(err, Error::UnknownEnvironment { ref value } if value == "prod"));
    }

    #[test]
    fn only_production_is_production() {
        let prod: Vec<_> = Environment::ALL
            .into_iter()
            .filter(|e| e.is_production())
            .collect();
        assert_eq!(prod, [Environment::Production]);
    }

    #[test]
    fn serde_uses_lower_case() {
        for env in Environment::ALL {
            let json = serde_json::to_string(&env).unwrap();
            assert_eq!(json, format!("\"{env}\""));
            assert_eq!(serde_json::from_str::<Environment>(&json).unwrap(), env);
        }
        #[derive(Deserialize)]
        struct Doc {
            env: Environment,
        }
        let doc: Doc = toml::from_str("env = \"staging\"").unwrap();
        assert_eq!(doc.env, Environment::Staging);
        assert!(toml::from_str::<Doc>("env = \"qa\"").is_err());
    }
}
