//! Deployment environments.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The environment a deployment runs in.
///
/// Written in lower case everywhere: `"dev"`, `"staging"`, `"uat"`, `"production"`: the
/// one canonical name that configuration, history files and reports store. Reading
/// ([`FromStr`], and deserializing from TOML or JSON) also accepts, in any letter case,
/// the names operators use: `prod`, `prd`, `live` for production; `stg`, `stage`,
/// `preprod` for staging; `test`, `qa`, `acceptance` for UAT; `develop`, `development`
/// for dev.
///
/// ```
/// use deploy_core::Environment;
///
/// let env: Environment = "prod".parse()?;
/// assert!(env.is_production());
/// assert_eq!(env.to_string(), "production");
/// assert_eq!("STG".parse::<Environment>()?, Environment::Staging);
/// assert_eq!(Environment::Uat.to_string(), "uat");
/// # Ok::<(), deploy_core::Error>(())
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema,
)]
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

    /// The other names each environment is known by, as [`FromStr`] accepts them.
    pub const ALIASES: [(&'static str, Environment); 11] = [
        ("prod", Environment::Production),
        ("prd", Environment::Production),
        ("live", Environment::Production),
        ("stg", Environment::Staging),
        ("stage", Environment::Staging),
        ("preprod", Environment::Staging),
        ("test", Environment::Uat),
        ("qa", Environment::Uat),
        ("acceptance", Environment::Uat),
        ("develop", Environment::Dev),
        ("development", Environment::Dev),
    ];

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

    /// Parses an environment name or one of its [aliases](Environment::ALIASES), in
    /// any letter case, around blanks.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownEnvironment`] for anything else.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        Environment::ALL
            .into_iter()
            .map(|env| (env.as_str(), env))
            .chain(Environment::ALIASES)
            .find(|(spelling, _)| spelling.eq_ignore_ascii_case(name))
            .map(|(_, env)| env)
            .ok_or_else(|| Error::UnknownEnvironment {
                value: s.to_owned(),
            })
    }
}

impl<'de> Deserialize<'de> for Environment {
    /// As [`FromStr`]: a canonical name or an alias.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
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
    fn from_str_takes_the_names_operators_use_and_rejects_others() {
        for (text, want) in [
            ("prod", Environment::Production),
            ("Production", Environment::Production),
            (" stg ", Environment::Staging),
            ("staging", Environment::Staging),
            ("UAT", Environment::Uat),
            ("test", Environment::Uat),
            ("dev", Environment::Dev),
        ] {
            assert_eq!(text.parse::<Environment>().unwrap(), want, "{text}");
        }
        let err = "prodd".parse::<Environment>().unwrap_err();
        assert!(matches!(err, Error::UnknownEnvironment { ref value } if value == "prodd"));
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
        let doc: Doc = toml::from_str("env = \"prod\"").unwrap();
        assert_eq!(doc.env, Environment::Production);
        assert!(toml::from_str::<Doc>("env = \"moon\"").is_err());
    }
}
