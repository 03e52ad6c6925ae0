//! The error type of `deploy-core`.

use std::fmt;
use std::path::PathBuf;

use crate::deploy::BoxError;

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

    /// A string is not a stage point (`before_start`, `before_switch`, `after_switch`,
    /// `finish`).
    #[error("unknown stage point `{value}`: expected `before_start`, `before_switch`, `after_switch` or `finish`")]
    UnknownStagePoint {
        /// The string that was given.
        value: String,
    },

    /// A string is not an environment name (`dev`, `staging`, `uat`, `production`).
    #[error("unknown environment `{value}`: expected `dev`, `staging`, `uat` or `production` (or prod, stg, test...)")]
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

impl Classify for Error {
    /// Every error of this crate is a matter of configuration: a name that does not
    /// parse, a secret that cannot be read.
    fn class(&self) -> ErrorClass {
        ErrorClass::Config
    }
}

/// Who must act on an error, which is also the exit code every binary of the toolkit
/// gives it.
///
/// ```
/// use deploy_core::{Classify, ErrorClass};
///
/// let error: deploy_core::Error = "red".parse::<deploy_core::Slot>().unwrap_err();
/// assert_eq!(error.class(), ErrorClass::Config);
/// assert_eq!(ErrorClass::Refused.exit_code(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorClass {
    /// The operation was refused for a reason it states (nothing to roll back to, a
    /// stage's verdict): nothing is broken. Exit 1.
    Refused,
    /// The configuration, a flag or a secret is wrong: fix it and run again. Exit 2.
    Config,
    /// Something the toolkit depends on failed (Docker, the proxy, a database, a disk,
    /// the stack's lock is held): a person must look. Exit 3.
    Infrastructure,
}

impl ErrorClass {
    /// 1, 2 or 3.
    #[must_use]
    pub const fn exit_code(self) -> u8 {
        match self {
            ErrorClass::Refused => 1,
            ErrorClass::Config => 2,
            ErrorClass::Infrastructure => 3,
        }
    }

    /// `refused`, `configuration` or `infrastructure`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Refused => "refused",
            ErrorClass::Config => "configuration",
            ErrorClass::Infrastructure => "infrastructure",
        }
    }
}

/// An error that says its own [`ErrorClass`], so that a binary maps it to an exit code
/// without naming the library's variants.
pub trait Classify {
    /// Who must act on it.
    fn class(&self) -> ErrorClass;
}

/// The toolkit's one boxed error: any error, with the [`ErrorClass`] that says who must
/// act on it. A [stage](crate::DeployStage) that fails returns one; a
/// [`Deployer`](crate::Deployer) boxes one into its [`BoxError`](crate::BoxError) so
/// that its caller finds the class with [`class_of`] without knowing its crate.
///
/// Its message is its source's message, and its `source()` is its source's source: the
/// cause chain is shown once.
///
/// ```
/// use deploy_core::{class_of, BoxError, ClassifiedError, ErrorClass};
///
/// let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device");
/// let boxed: BoxError = Box::new(ClassifiedError::infrastructure(io));
/// assert_eq!(boxed.to_string(), "no space left on device");
/// assert_eq!(class_of(&*boxed), Some(ErrorClass::Infrastructure));
/// ```
#[derive(Debug)]
pub struct ClassifiedError {
    class: ErrorClass,
    source: BoxError,
}

impl ClassifiedError {
    /// A failure of `class`.
    pub fn new(class: ErrorClass, source: impl Into<BoxError>) -> Self {
        Self {
            class,
            source: source.into(),
        }
    }

    /// A configuration error (a bad setting, a missing secret): exit 2.
    pub fn config(source: impl Into<BoxError>) -> Self {
        Self::new(ErrorClass::Config, source)
    }

    /// An infrastructure failure (a database, a disk, a process): exit 3.
    pub fn infrastructure(source: impl Into<BoxError>) -> Self {
        Self::new(ErrorClass::Infrastructure, source)
    }

    /// A failure whose class `source` says itself.
    pub fn classified<E>(source: E) -> Self
    where
        E: Classify + std::error::Error + Send + Sync + 'static,
    {
        Self::new(source.class(), source)
    }

    /// The error underneath.
    #[must_use]
    pub fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.source
    }

    /// The error underneath, if it is a `T` (a library's own error type).
    #[must_use]
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.source.downcast_ref::<T>()
    }
}

impl fmt::Display for ClassifiedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

impl std::error::Error for ClassifiedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.source()
    }
}

impl Classify for ClassifiedError {
    fn class(&self) -> ErrorClass {
        self.class
    }
}

/// An error's message followed by its causes (`source()`), joined with `: `.
///
/// The toolkit's own errors either show their cause in their message or return it as
/// `source()`, never both; a cause whose text the message already holds (as some
/// third-party errors repeat theirs) is left out rather than shown twice.
///
/// ```
/// use deploy_core::error_chain;
///
/// #[derive(Debug)]
/// struct Outer(std::io::Error);
/// impl std::fmt::Display for Outer {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("writing the manifest")
///     }
/// }
/// impl std::error::Error for Outer {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
/// let error = Outer(std::io::Error::other("no space left on device"));
/// assert_eq!(error_chain(&error), "writing the manifest: no space left on device");
/// ```
#[must_use]
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The class of an error that is (or wraps, anywhere in its cause chain) a
/// [`ClassifiedError`]; `None` when none is found.
#[must_use]
pub fn class_of(error: &(dyn std::error::Error + 'static)) -> Option<ErrorClass> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(classified) = e.downcast_ref::<ClassifiedError>() {
            return Some(classified.class());
        }
        current = e.source();
    }
    None
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_classified_error_shows_its_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left");
        let error = ClassifiedError::infrastructure(io);
        assert_eq!(error.to_string(), "no space left");
        assert!(std::error::Error::source(&error).is_none());
        assert_eq!(error.class(), ErrorClass::Infrastructure);
        assert_eq!(error.class().exit_code(), 3);
        let boxed: BoxError = Box::new(ClassifiedError::config(Error::PlaintextRefused));
        assert_eq!(class_of(&*boxed), Some(ErrorClass::Config));
        let plain: BoxError = "just text".into();
        assert_eq!(class_of(&*plain), None);
    }
}
