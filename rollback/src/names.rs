//! Validation of names that end up in file names and SQL identifiers.

use crate::error::{Error, Result};

/// PostgreSQL's identifier limit (NAMEDATALEN - 1).
pub(crate) const PG_MAX_IDENT: usize = 63;

/// Checks that `value` is a safe name: `[A-Za-z0-9_.-]`, not empty, not starting with
/// `.` or `-`, at most `max_len` bytes.
pub(crate) fn check(kind: &'static str, value: &str, max_len: usize) -> Result<()> {
    let reason = if value.is_empty() {
        Some("is empty")
    } else if value.len() > max_len {
        Some("is too long")
    } else if value.starts_with('.') || value.starts_with('-') {
        Some("starts with '.' or '-'")
    } else if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        Some("may only contain ASCII letters, digits, '_', '.' and '-'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName {
            kind,
            value: value.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Quotes a (checked) name as an SQL identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `YYYYMMDDTHHMMSSZ`, the UTC stamp used in backup ids and replaced names.
pub(crate) fn stamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_odoo_style_names() {
        for ok in ["prod", "odoo_17.0-main", "A1"] {
            check("database", ok, PG_MAX_IDENT).unwrap();
        }
    }

    #[test]
    fn refuses_unsafe_names() {
        for bad in [
            "",
            ".hidden",
            "-x",
            "a/b",
            "a b",
            "a\"b",
            "é",
            &"x".repeat(64),
        ] {
            let err = check("database", bad, PG_MAX_IDENT).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidName {
                        kind: "database",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
