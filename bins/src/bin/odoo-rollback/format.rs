//! Formatting helpers shared by the text outputs.

use super::*;

pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) fn short_sha(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Left-aligned columns separated by two spaces (no trailing spaces); the first row is
/// printed like the others (a heading row, or the first pair of a listing).
pub(crate) fn columns(rows: &[Vec<String>]) -> String {
    let width = rows.iter().map(Vec::len).max().unwrap_or_default();
    let mut table = odoo_deploy::table::Table::headless(width);
    for row in rows {
        table.row(row.iter().cloned());
    }
    table.render()
}
