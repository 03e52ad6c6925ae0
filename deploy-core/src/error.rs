//! The error type of `deploy-core`.

use std::path::PathBuf;

/// Everything that can go wrong in `deploy-core`: parsing a name, or resolving a
/// secret reference.
///
/// Messages are lower case and never contain a secret value: secret errors name the
/// environment variable or the file, nothing else.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A string is not a slot name (`blue`, `green`).
    #[error("unknown slot `{value}`: expected `blue` or `green`")]
    UnknownSlot {
        /// The string that was given.
        value: String,
    },

    /// A string is not a deployment status (`started`, `succeeded`, `failed`, `rolled_back`).
    #[error("unknown deployment status `{value}`: expected `started`, `succeeded`, `failed` or `rolled_back`")]
    UnknownStatus {
        /// The string that was given.
        value: String,
    },

    /// A string is not an environment name (`dev`, `staging`, `uat`, `production`).
    #[error("unknown environment `{value}`: expected `dev`, `staging`, `uat` or `production`")]
    UnknownEnvironment {
        /// The string that was given.
        value: String,
    },

    /// The environment variable a [`SecretRef::Env`](crate::SecretRef::Env) names is not set.
    #[error("secret environment variable `{var}` is not set")]
    SecretEnvMissing {
        /// Name of the variable.
        var: String,
    },

    /// The environment variable a [`SecretRef::Env`](crate::SecretRef::Env) names is not valid
    /// UTF-8.
    #[error("secret environment variable `{var}` is not valid unicode")]
    SecretEnvNotUnicode {
        /// Name of the variable.
        var: String,
    },

    /// The file a [`SecretRef::File`](crate::SecretRef::File) names could not be read (missing,
    /// unreadable, or not UTF-8).
    #[error("cannot read secret file `{}`", path.display())]
    SecretFile {
        /// Path of the file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The secret resolved to an empty string (after trimming a trailing newline from a
    /// file), which is almost always a configuration mistake.
    #[error("secret from {reference} is empty")]
    SecretEmpty {
        /// Where the secret came from, e.g. ``environment variable `ODOO_PASSWORD` `` or
        /// ``file `/run/secrets/pw` ``; never the value.
        reference: String,
    },

    /// A plaintext secret was written in the configuration without the explicit
    /// `allow_plaintext = true` next to it.
    #[error("plaintext secret refused: use {{ env = \"VAR\" }} or {{ file = \"PATH\" }}, or opt in with allow_plaintext = true")]
    PlaintextRefused,
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
