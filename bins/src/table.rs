//! Plain text tables for people: a header row, columns two spaces apart, no borders,
//! widths measured on what the terminal shows (wide characters count double), no
//! trailing spaces. Colour is put on after rendering ([`Table::render_lines`]), so it
//! never counts in a width. Every table the binaries print is one
//! of these.
//!
//! ```
//! let mut table = odoo_deploy::table::Table::new(&["SLOT", "SHARE", "RELEASE"]);
//! table.align_right(1);
//! table.row(["blue", "100%", "17.0-20240601"]);
//! table.row(["green", "0%", "-"]);
//! assert_eq!(
//!     table.render(),
//!     "SLOT   SHARE  RELEASE\nblue    100%  17.0-20240601\ngreen     0%  -\n"
//! );
//! ```

use comfy_table::{presets, CellAlignment, ColumnConstraint, ContentArrangement};

/// A table being filled.
#[derive(Debug)]
pub struct Table {
    inner: comfy_table::Table,
    columns: usize,
}

impl Table {
    /// A table with these column headings.
    #[must_use]
    pub fn new(header: &[&str]) -> Self {
        let mut table = Self::headless(header.len());
        table.inner.set_header(header.iter().copied());
        table.style_columns();
        table
    }

    /// A table of `columns` columns without a heading row (key-value listings).
    #[must_use]
    pub fn headless(columns: usize) -> Self {
        let mut inner = comfy_table::Table::new();
        inner
            .load_style(presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Disabled);
        Self { inner, columns }
    }

    /// Columns two spaces apart, as wide as their content. Columns exist once a
    /// heading or a row names them, so this runs after each.
    fn style_columns(&mut self) {
        for column in self.inner.column_iter_mut() {
            column.set_padding((0, 2));
            column.set_constraint(ColumnConstraint::ContentWidth);
        }
    }

    /// Right-aligns column `index` (numbers, durations).
    pub fn align_right(&mut self, index: usize) {
        if let Some(column) = self.inner.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }

    /// Adds a row (missing cells are empty, extra cells are dropped).
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut cells: Vec<String> = cells
            .into_iter()
            .map(Into::into)
            .take(self.columns)
            .collect();
        cells.resize(self.columns, String::new());
        self.inner.add_row(cells);
        self.style_columns();
    }

    /// Whether no row was added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.inner.row_count() == 0
    }

    /// The text, one line per row, each ending in `\n`.
    #[must_use]
    pub fn render(&self) -> String {
        self.render_lines()
            .into_iter()
            .map(|line| format!("{line}\n"))
            .collect()
    }

    /// The lines, header first, without their line breaks (to colour them).
    #[must_use]
    pub fn render_lines(&self) -> Vec<String> {
        self.inner
            .lines()
            .map(|line| line.trim_end().to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_characters_do_not_break_the_columns() {
        let mut table = Table::new(&["STATUS", "GATE", "MESSAGE"]);
        table.row(["pass", "santé", "ok"]);
        table.row(["fail", "日本", "boom"]);
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "STATUS  GATE   MESSAGE");
        assert_eq!(lines[1], "pass    santé  ok");
        assert_eq!(lines[2], "fail    日本   boom");
    }

    #[test]
    fn short_rows_are_filled_and_long_ones_cut() {
        let mut table = Table::new(&["A", "B"]);
        table.row(["1"]);
        table.row(["1", "2", "3"]);
        assert_eq!(table.render(), "A  B\n1\n1  2\n");
        let mut pairs = Table::headless(2);
        pairs.row(["database", "shop"]);
        pairs.row(["verified", "yes"]);
        assert_eq!(pairs.render(), "database  shop\nverified  yes\n");
    }
}
