//! Releases: what gets deployed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A release: the image that runs, and the labels people use to talk about it.
///
/// In TOML:
/// ```toml
/// image = "registry.example.com/odoo:17.0-20250101"
/// git_sha = "4f2a9c1e0b7d"
/// version = "2025.01.1"
/// ```
///
/// ```
/// use deploy_core::Release;
///
/// let release = Release::new("registry.example.com/odoo:17.0")
///     .with_git_sha("4f2a9c1e0b7d5a3e")
///     .with_version("2025.01.1");
/// assert_eq!(release.short_sha(), Some("4f2a9c1e0b7d"));
/// assert_eq!(
///     release.to_string(),
///     "2025.01.1 (registry.example.com/odoo:17.0, 4f2a9c1e0b7d)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// Container image reference, e.g. `registry.example.com/odoo:17.0` or a digest
    /// reference `...@sha256:...`.
    pub image: String,
    /// Git commit the image was built from (full or abbreviated), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_sha: Option<String>,
    /// Human version label, e.g. `2025.01.1`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Release {
    /// Length of [`Release::short_sha`].
    pub const SHORT_SHA_LEN: usize = 12;

    /// A release of `image` with no sha and no version label.
    #[must_use]
    pub fn new(image: impl Into<String>) -> Self {
        Release {
            image: image.into(),
            git_sha: None,
            version: None,
        }
    }

    /// Sets the git sha.
    #[must_use]
    pub fn with_git_sha(mut self, sha: impl Into<String>) -> Self {
        self.git_sha = Some(sha.into());
        self
    }

    /// Sets the version label.
    #[must_use]
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// The first [`Release::SHORT_SHA_LEN`] characters of the git sha, if there is one.
    #[must_use]
    pub fn short_sha(&self) -> Option<&str> {
        self.git_sha.as_deref().map(|sha| {
            sha.char_indices()
                .nth(Self::SHORT_SHA_LEN)
                .map_or(sha, |(end, _)| &sha[..end])
        })
    }

    /// The name people use: the version label, or else the image reference.
    #[must_use]
    pub fn label(&self) -> &str {
        self.version.as_deref().unwrap_or(&self.image)
    }
}

impl fmt::Display for Release {
    /// `version (image, short-sha)`, leaving out what is unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.version, self.short_sha()) {
            (Some(version), Some(sha)) => write!(f, "{version} ({}, {sha})", self.image),
            (Some(version), None) => write!(f, "{version} ({})", self.image),
            (None, Some(sha)) => write!(f, "{} ({sha})", self.image),
            (None, None) => f.write_str(&self.image),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_leaves_out_unknown_parts() {
        assert_eq!(Release::new("odoo:17").to_string(), "odoo:17");
        assert_eq!(
            Release::new("odoo:17").with_git_sha("abc").to_string(),
            "odoo:17 (abc)"
        );
        assert_eq!(
            Release::new("odoo:17").with_version("1.2").to_string(),
            "1.2 (odoo:17)"
        );
        assert_eq!(Release::new("odoo:17").label(), "odoo:17");
        assert_eq!(Release::new("odoo:17").with_version("1.2").label(), "1.2");
    }

    #[test]
    fn short_sha_truncates() {
        let release = Release::new("x").with_git_sha("0123456789abcdef0123");
        assert_eq!(release.short_sha(), Some("0123456789ab"));
        assert_eq!(
            Release::new("x").with_git_sha("abc").short_sha(),
            Some("abc")
        );
        assert_eq!(Release::new("x").short_sha(), None);
    }

    #[test]
    fn serde_round_trip() {
        let release = Release::new("registry/odoo:17")
            .with_git_sha("abc123")
            .with_version("2025.1");
        let text = toml::to_string(&release).unwrap();
        assert_eq!(toml::from_str::<Release>(&text).unwrap(), release);
        let json = serde_json::to_string(&release).unwrap();
        assert_eq!(serde_json::from_str::<Release>(&json).unwrap(), release);

        let bare: Release = toml::from_str("image = \"odoo:17\"").unwrap();
        assert_eq!(bare, Release::new("odoo:17"));
        assert_eq!(
            serde_json::to_string(&bare).unwrap(),
            r#"{"image":"odoo:17"}"#
        );
        assert!(toml::from_str::<Release>("image = \"x\"\ntag = \"y\"").is_err());
    }
}
