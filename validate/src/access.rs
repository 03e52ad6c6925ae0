//! `security/ir.model.access.csv` as Odoo's CSV loader reads it: a header naming the
//! columns, then one access rule per row (quoted fields may hold commas and newlines).

/// The columns an access file has, in Odoo's order.
pub(crate) const COLUMNS: [&str; 8] = [
    "id",
    "name",
    "model_id:id",
    "group_id:id",
    "perm_read",
    "perm_write",
    "perm_create",
    "perm_unlink",
];

/// A row: its fields by column, and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) line: u32,
    pub(crate) fields: Vec<String>,
}

/// Splits CSV text into records, each with the line it starts on.
pub(crate) fn records(text: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1u32;
    let mut start = 1u32;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => {
                fields.push(std::mem::take(&mut field));
                any = true;
            }
            '\r' if !quoted => {}
            '\n' => {
                line += 1;
                if quoted {
                    field.push('\n');
                    continue;
                }
                if any || !field.trim().is_empty() {
                    fields.push(std::mem::take(&mut field));
                    rows.push(Row {
                        line: start,
                        fields: std::mem::take(&mut fields),
                    });
                }
                field.clear();
                any = false;
                start = line;
            }
            other => field.push(other),
        }
    }
    if any || !field.trim().is_empty() {
        fields.push(field);
        rows.push(Row {
            line: start,
            fields,
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::records;

    #[test]
    fn rows_keep_their_lines_and_quotes() {
        let rows = records("id,name\na,\"x, y\"\n\nb,\"multi\nline\"\nc,z");
        let lines: Vec<_> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 2, 4, 6]);
        assert_eq!(rows[1].fields, ["a", "x, y"]);
        assert_eq!(rows[2].fields, ["b", "multi\nline"]);
    }
}
