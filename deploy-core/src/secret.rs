//! Secret references: where a password or API key comes from.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Event, EventSink, Result};

/// Where a secret (password, API key, DSN) comes from. Configuration holds these
/// references, never the secret itself; [`SecretRef::resolve`] reads the value into a
/// [`SecretString`] when it is needed.
///
/// In TOML, a secret is a table with exactly one source:
/// ```toml
/// password = { env = "ODOO_PASSWORD" }               # an environment variable
/// api_key  = { file = "/run/secrets/odoo_api_key" }  # a file; trailing line breaks are trimmed
/// # Plaintext only with an explicit opt-in next to it (resolution then emits a warning):
/// dsn      = { plain = "postgres://odoo:odoo@db/odoo", allow_plaintext = true }
/// ```
/// A bare string (`password = "admin"`) is rejected with a message that says how to
/// write it, and so is `{ plain = "..." }` without `allow_plaintext = true` (it
/// deserializes, so a loader can report which field it is, but it never resolves).
///
/// Neither `Debug` nor `Serialize` ever shows a plaintext value: `Debug` prints
/// `[REDACTED]` and `Serialize` writes `plain = "[REDACTED]"`.
///
/// ```
/// use deploy_core::{NullSink, SecretRef};
/// use secrecy::ExposeSecret;
///
/// let secret = SecretRef::env("DEPLOY_CORE_DOC_EXAMPLE_PASSWORD");
/// let lookup = |var: &str| (var == "DEPLOY_CORE_DOC_EXAMPLE_PASSWORD").then(|| "s3cret".into());
/// let value = secret.resolve_with(&lookup, &NullSink)?;
/// assert_eq!(value.expose_secret(), "s3cret");
///
/// // Errors name the variable, never a value.
/// let missing = SecretRef::env("SURELY_NOT_SET_ANYWHERE").resolve(&NullSink).unwrap_err();
/// assert_eq!(
///     missing.to_string(),
///     "secret environment variable `SURELY_NOT_SET_ANYWHERE` is not set"
/// );
/// # Ok::<(), deploy_core::Error>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum SecretRef {
    /// The value of an environment variable (`{ env = "VAR" }`).
    Env(String),
    /// The contents of a file, trailing newlines trimmed (`{ file = "PATH" }`).
    File(PathBuf),
    /// A value written in the configuration itself (`{ plain = "...", allow_plaintext = true }`).
    ///
    /// Resolves only when `allow_plaintext` is true, and then emits a
    /// [`EventKind::Warning`](crate::EventKind::Warning).
    Plain {
        /// The secret.
        value: SecretString,
        /// Whether the user opted in to plaintext with `allow_plaintext = true`.
        allow_plaintext: bool,
    },
}

impl SecretRef {
    /// A reference to the environment variable `var`.
    #[must_use]
    pub fn env(var: impl Into<String>) -> Self {
        SecretRef::Env(var.into())
    }

    /// A reference to the file at `path`.
    #[must_use]
    pub fn file(path: impl Into<PathBuf>) -> Self {
        SecretRef::File(path.into())
    }

    /// A plaintext secret the caller explicitly allows (tests, throw-away setups).
    #[must_use]
    pub fn plain_allowed(value: impl Into<String>) -> Self {
        SecretRef::Plain {
            value: SecretString::from(value.into()),
            allow_plaintext: true,
        }
    }

    /// Whether this is a plaintext value written in the configuration.
    #[must_use]
    pub fn is_plaintext(&self) -> bool {
        matches!(self, SecretRef::Plain { .. })
    }

    /// Whether this reference may be resolved: false only for a plaintext value without
    /// the `allow_plaintext = true` opt-in. Loaders call this to refuse such a
    /// configuration up front, naming the field.
    #[must_use]
    pub fn is_allowed(&self) -> bool {
        !matches!(
            self,
            SecretRef::Plain {
                allow_plaintext: false,
                ..
            }
        )
    }

    /// Where the secret comes from, for messages: ``environment variable `VAR` ``,
    /// ``file `PATH` `` or `plaintext in the configuration`. Never the value.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Env(var) => format!("environment variable `{var}`"),
            SecretRef::File(path) => format!("file `{}`", path.display()),
            SecretRef::Plain { .. } => "plaintext in the configuration".to_owned(),
        }
    }

    /// Reads the secret, looking environment variables up in the process environment.
    ///
    /// A file's trailing newlines (`\n`, `\r\n`) are trimmed, so `echo pw > file` works.
    /// A plaintext value emits a warning event on `events`.
    ///
    /// # Errors
    ///
    /// [`Error::SecretEnvMissing`], [`Error::SecretEnvNotUnicode`], [`Error::SecretFile`],
    /// [`Error::SecretEmpty`] when the value is empty, and [`Error::PlaintextRefused`] for
    /// a plaintext value without the opt-in. No error contains the value.
    pub fn resolve(&self, events: &dyn EventSink) -> Result<SecretString> {
        self.resolve_with(&|var: &str| std::env::var_os(var), events)
    }

    /// Like [`SecretRef::resolve`], with environment variables looked up through `env`
    /// (tests, or a caller that keeps its own environment).
    ///
    /// # Errors
    ///
    /// As [`SecretRef::resolve`].
    pub fn resolve_with(
        &self,
        env: &dyn Fn(&str) -> Option<OsString>,
        events: &dyn EventSink,
    ) -> Result<SecretString> {
        let value = match self {
            SecretRef::Env(var) => env(var)
                .ok_or_else(|| Error::SecretEnvMissing { var: var.clone() })?
                .into_string()
                .map_err(|_| Error::SecretEnvNotUnicode { var: var.clone() })?,
            SecretRef::File(path) => read_file(path)?,
            SecretRef::Plain {
                allow_plaintext: false,
                ..
            } => return Err(Error::PlaintextRefused),
            SecretRef::Plain {
                value,
                allow_plaintext: true,
            } => {
                events.emit(&Event::warning(
                    "secret",
                    "using a plaintext secret from the configuration (allow_plaintext = true); \
                     prefer { env = \"VAR\" } or { file = \"PATH\" }",
                ));
                value.expose_secret().to_owned()
            }
        };
        if value.is_empty() {
            return Err(Error::SecretEmpty {
                reference: self.describe(),
            });
        }
        Ok(SecretString::from(value))
    }
}

fn read_file(path: &Path) -> Result<String> {
    let mut text = std::fs::read_to_string(path).map_err(|source| Error::SecretFile {
        path: path.to_owned(),
        source,
    })?;
    let trimmed = text.trim_end_matches(['\n', '\r']).len();
    text.truncate(trimmed);
    Ok(text)
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(var) => f.debug_tuple("Env").field(var).finish(),
            SecretRef::File(path) => f.debug_tuple("File").field(path).finish(),
            SecretRef::Plain {
                allow_plaintext, ..
            } => f
                .debug_struct("Plain")
                .field("value", &"[REDACTED]")
                .field("allow_plaintext", allow_plaintext)
                .finish(),
        }
    }
}

impl PartialEq for SecretRef {
    /// References compare by source; two plaintext values compare by value.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SecretRef::Env(a), SecretRef::Env(b)) => a == b,
            (SecretRef::File(a), SecretRef::File(b)) => a == b,
            (
                SecretRef::Plain {
                    value: a,
                    allow_plaintext: x,
                },
                SecretRef::Plain {
                    value: b,
                    allow_plaintext: y,
                },
            ) => x == y && a.expose_secret() == b.expose_secret(),
            _ => false,
        }
    }
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            SecretRef::Env(var) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("env", var)?;
                map.end()
            }
            SecretRef::File(path) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("file", path)?;
                map.end()
            }
            SecretRef::Plain {
                allow_plaintext, ..
            } => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("plain", "[REDACTED]")?;
                map.serialize_entry("allow_plaintext", allow_plaintext)?;
                map.end()
            }
        }
    }
}

const EXPECTED: &str =
    "a secret reference: { env = \"VAR\" }, { file = \"PATH\" } or { plain = \"...\", allow_plaintext = true }";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Repr {
    env: Option<String>,
    file: Option<PathBuf>,
    plain: Option<SecretString>,
    allow_plaintext: Option<bool>,
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(SecretRefVisitor)
    }
}

struct SecretRefVisitor;

impl<'de> Visitor<'de> for SecretRefVisitor {
    type Value = SecretRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    // Never echo the string: it is probably a password.
    fn visit_str<E: de::Error>(self, _value: &str) -> std::result::Result<SecretRef, E> {
        Err(E::custom(format_args!(
            "a bare string is not accepted as a secret; write {EXPECTED}"
        )))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<SecretRef, A::Error> {
        let repr = Repr::deserialize(de::value::MapAccessDeserializer::new(map))?;
        match repr {
            Repr {
                env: Some(var),
                file: None,
                plain: None,
                allow_plaintext: None,
            } => Ok(SecretRef::Env(var)),
            Repr {
                env: None,
                file: Some(path),
                plain: None,
                allow_plaintext: None,
            } => Ok(SecretRef::File(path)),
            Repr {
                env: None,
                file: None,
                plain: Some(value),
                allow_plaintext,
            } => Ok(SecretRef::Plain {
                value,
                allow_plaintext: allow_plaintext.unwrap_or(false),
            }),
            Repr {
                env: None,
                file: None,
                plain: None,
                ..
            } => Err(de::Error::custom(format_args!(
                "missing secret source; expected {EXPECTED}"
            ))),
            Repr {
                plain: None,
                allow_plaintext: Some(_),
                ..
            } => Err(de::Error::custom(
                "allow_plaintext only goes with plain = \"...\"",
            )),
            _ => Err(de::Error::custom(
                "a secret reference has exactly one of env, file or plain",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::{EventKind, RecordingSink};

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    #[test]
    fn env_resolves_from_lookup() {
        let lookup = |var: &str| (var == "PW").then(|| OsString::from("hunter2"));
        let value = SecretRef::env("PW")
            .resolve_with(&lookup, &crate::NullSink)
            .unwrap();
        assert_eq!(value.expose_secret(), "hunter2");
    }

    #[test]
    fn env_resolves_from_process_environment() {
        let var = "DEPLOY_CORE_TEST_SECRET_ENV_RESOLVES";
        // Unique name; no other test reads or writes it.
        std::env::set_var(var, "from-process-env");
        let value = SecretRef::env(var).resolve(&crate::NullSink).unwrap();
        std::env::remove_var(var);
        assert_eq!(value.expose_secret(), "from-process-env");
    }

    #[test]
    fn missing_env_names_the_variable() {
        let err = SecretRef::env("NOPE_VAR")
            .resolve_with(&no_env, &crate::NullSink)
            .unwrap_err();
        assert!(matches!(err, Error::SecretEnvMissing { ref var } if var == "NOPE_VAR"));
        assert!(err.to_string().contains("NOPE_VAR"));
    }

    #[test]
    fn empty_env_is_an_error_without_the_value() {
        let lookup = |_: &str| Some(OsString::new());
        let err = SecretRef::env("EMPTY")
            .resolve_with(&lookup, &crate::NullSink)
            .unwrap_err();
        assert!(matches!(err, Error::SecretEmpty { ref reference } if reference.contains("EMPTY")));
    }

    #[cfg(unix)]
    #[test]
    fn non_unicode_env_is_an_error() {
        use std::os::unix::ffi::OsStringExt;
        let lookup = |_: &str| Some(OsString::from_vec(vec![0xff, 0xfe]));
        let err = SecretRef::env("BIN")
            .resolve_with(&lookup, &crate::NullSink)
            .unwrap_err();
        assert!(matches!(err, Error::SecretEnvNotUnicode { ref var } if var == "BIN"));
    }

    #[test]
    fn file_trims_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "file-secret\n").unwrap();
        let value = SecretRef::file(&path).resolve(&crate::NullSink).unwrap();
        assert_eq!(value.expose_secret(), "file-secret");

        let crlf = dir.path().join("pw-crlf");
        let mut file = std::fs::File::create(&crlf).unwrap();
        file.write_all(b"  spaced secret  \r\n").unwrap();
        let value = SecretRef::file(&crlf).resolve(&crate::NullSink).unwrap();
        assert_eq!(value.expose_secret(), "  spaced secret  ");
    }

    #[test]
    fn missing_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent");
        let err = SecretRef::file(&path)
            .resolve(&crate::NullSink)
            .unwrap_err();
        match &err {
            Error::SecretFile { path: p, source } => {
                assert_eq!(p, &path);
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(err.to_string().contains("absent"));
    }

    #[test]
    fn file_with_only_a_newline_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "\n").unwrap();
        let err = SecretRef::file(&path)
            .resolve(&crate::NullSink)
            .unwrap_err();
        assert!(matches!(err, Error::SecretEmpty { .. }));
    }

    #[test]
    fn plaintext_refused_without_opt_in() {
        let secret: SecretRef = toml::from_str::<toml::Table>("s = { plain = \"admin\" }")
            .unwrap()
            .remove("s")
            .unwrap()
            .try_into()
            .unwrap();
        assert!(secret.is_plaintext());
        assert!(!secret.is_allowed());
        let sink = RecordingSink::new();
        let err = secret.resolve(&sink).unwrap_err();
        assert!(matches!(err, Error::PlaintextRefused));
        assert!(!err.to_string().contains("admin"));
        assert!(sink.events().is_empty());
    }

    #[test]
    fn plaintext_opted_in_resolves_with_a_warning() {
        #[derive(Deserialize)]
        struct Doc {
            password: SecretRef,
        }
        let doc: Doc =
            toml::from_str("password = { plain = \"admin\", allow_plaintext = true }").unwrap();
        assert!(doc.password.is_allowed());
        let sink = RecordingSink::new();
        let value = doc.password.resolve(&sink).unwrap();
        assert_eq!(value.expose_secret(), "admin");
        let events = sink.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::Warning);
        assert_eq!(events[0].subject, "secret");
        assert!(!events[0].message.contains("admin"));
    }

    #[test]
    fn debug_never_shows_the_value() {
        let secret = SecretRef::plain_allowed("topsecret-value");
        let debug = format!("{secret:?}");
        assert!(!debug.contains("topsecret-value"), "{debug}");
        assert!(debug.contains("REDACTED"));
        let resolved = secret.resolve(&crate::NullSink).unwrap();
        let debug = format!("{resolved:?}");
        assert!(!debug.contains("topsecret-value"), "{debug}");
        assert_eq!(format!("{:?}", SecretRef::env("V")), "Env(\"V\")");
    }

    #[test]
    fn serialize_redacts_plaintext() {
        let json = serde_json::to_string(&SecretRef::plain_allowed("topsecret-value")).unwrap();
        assert_eq!(json, r#"{"plain":"[REDACTED]","allow_plaintext":true}"#);
        assert_eq!(
            serde_json::to_string(&SecretRef::env("V")).unwrap(),
            r#"{"env":"V"}"#
        );
        assert_eq!(
            serde_json::to_string(&SecretRef::file("/p")).unwrap(),
            r#"{"file":"/p"}"#
        );
    }

    #[test]
    fn deserialize_forms() {
        #[derive(Deserialize, Debug)]
        struct Doc {
            s: SecretRef,
        }
        let parse = |text: &str| toml::from_str::<Doc>(text).map(|d| d.s);
        assert_eq!(parse("s = { env = \"X\" }").unwrap(), SecretRef::env("X"));
        assert_eq!(
            parse("s = { file = \"/x\" }").unwrap(),
            SecretRef::file("/x")
        );

        // The message itself never echoes the string (toml's Display adds the source
        // line; loaders show `message()` and a position instead).
        let bare = parse("s = \"hunter2\"").unwrap_err().message().to_owned();
        assert!(bare.contains("bare string"), "{bare}");
        assert!(!bare.contains("hunter2"), "{bare}");

        assert!(parse("s = { env = \"X\", file = \"/x\" }").is_err());
        assert!(parse("s = { env = \"X\", allow_plaintext = true }").is_err());
        assert!(parse("s = {}").is_err());
        assert!(parse("s = { vault = \"x\" }").is_err());

        // JSON and TOML round trip of the non-plaintext forms.
        for secret in [SecretRef::env("A"), SecretRef::file("/run/secrets/a")] {
            let json = serde_json::to_string(&secret).unwrap();
            assert_eq!(serde_json::from_str::<SecretRef>(&json).unwrap(), secret);
        }
    }
}
