//! `__manifest__.py` read as Odoo reads it, `ast.literal_eval` of the file: a Python
//! literal, never run. Parsed by a real Python parser, so the error of a broken
//! manifest is where Python would put it; every key and list item keeps its line.

use rustpython_parser::ast::{self, Constant, Expr, Ranged, Stmt, UnaryOp};
use rustpython_parser::Parse;

use crate::text::Lines;

/// A Python literal, with the line of each item of its containers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes,
    /// A list, a tuple or a set.
    List(Vec<Item>),
    Dict(Vec<Entry>),
}

impl Lit {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Bool(_) => "a boolean",
            Self::Int(_) => "an integer",
            Self::Float(_) => "a float",
            Self::Str(_) => "a string",
            Self::Bytes => "bytes",
            Self::List(_) => "a list",
            Self::Dict(_) => "a dict",
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn truthy(&self) -> bool {
        match self {
            Self::None => false,
            Self::Bool(b) => *b,
            Self::Int(i) => *i != 0,
            Self::Float(f) => *f != 0.0,
            Self::Str(s) => !s.is_empty(),
            Self::Bytes => true,
            Self::List(items) => !items.is_empty(),
            Self::Dict(entries) => !entries.is_empty(),
        }
    }
}

/// An item of a list, tuple or set.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Item {
    pub(crate) value: Lit,
    pub(crate) line: u32,
}

/// A key of a dict (string keys only: the others are not manifest keys).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) value: Lit,
    pub(crate) line: u32,
}

/// Why a manifest is not what Odoo reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ManifestError {
    /// Not Python, or Python that is not a literal (a name, a call, two statements).
    NotLiteral { line: u32, message: String },
    /// A literal, but not a dict.
    NotDict { line: u32, found: &'static str },
}

/// A manifest that reads: its keys in order, with their lines.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Manifest {
    /// The line of the opening `{`.
    pub(crate) line: u32,
    pub(crate) entries: Vec<Entry>,
}

impl Manifest {
    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|entry| entry.key == key)
    }
}

/// Reads a manifest's text.
pub(crate) fn parse(text: &str) -> Result<Manifest, ManifestError> {
    let lines = Lines::new(text);
    let at = |offset: ast::text_size::TextSize| lines.line(usize::from(offset));
    let suite =
        ast::Suite::parse(text, "__manifest__.py").map_err(|err| ManifestError::NotLiteral {
            line: at(err.offset),
            message: format!("not Python: {}", err.error),
        })?;
    let mut statements = suite.iter();
    let expression = match (statements.next(), statements.next()) {
        (Some(Stmt::Expr(statement)), None) => &statement.value,
        (None, _) => {
            return Err(ManifestError::NotLiteral {
                line: 1,
                message: "the file is empty".to_owned(),
            })
        }
        (Some(Stmt::Expr(_)), Some(second)) => {
            return Err(ManifestError::NotLiteral {
                line: at(second.start()),
                message: "a second statement after the literal".to_owned(),
            })
        }
        (Some(other), _) => {
            return Err(ManifestError::NotLiteral {
                line: at(other.start()),
                message: "a statement, not a literal".to_owned(),
            })
        }
    };
    let value = literal(expression, &lines)?;
    match value {
        Lit::Dict(entries) => Ok(Manifest {
            line: at(expression.start()),
            entries,
        }),
        other => Err(ManifestError::NotDict {
            line: at(expression.start()),
            found: other.type_name(),
        }),
    }
}

fn constant(value: &Constant) -> Option<Lit> {
    Some(match value {
        Constant::None => Lit::None,
        Constant::Bool(b) => Lit::Bool(*b),
        Constant::Str(s) => Lit::Str(s.clone()),
        Constant::Bytes(_) => Lit::Bytes,
        Constant::Int(i) => Lit::Int(i.to_string().parse().unwrap_or(i64::MAX)),
        Constant::Float(f) => Lit::Float(*f),
        Constant::Tuple(items) => Lit::List(
            items
                .iter()
                .filter_map(constant)
                .map(|value| Item { value, line: 0 })
                .collect(),
        ),
        Constant::Complex { .. } => Lit::Float(0.0),
        Constant::Ellipsis => return None,
    })
}

/// `ast.literal_eval` of one expression.
fn literal(expression: &Expr, lines: &Lines) -> Result<Lit, ManifestError> {
    let line = |e: &Expr| lines.line(usize::from(e.start()));
    let items = |elements: &[Expr]| -> Result<Lit, ManifestError> {
        elements
            .iter()
            .map(|e| {
                Ok(Item {
                    value: literal(e, lines)?,
                    line: line(e),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Lit::List)
    };
    let not_literal = |what: &str| ManifestError::NotLiteral {
        line: line(expression),
        message: format!("{what} is not a literal: Odoo reads the manifest with ast.literal_eval"),
    };
    match expression {
        Expr::Constant(c) => constant(&c.value).ok_or_else(|| not_literal("`...`")),
        Expr::List(list) => items(&list.elts),
        Expr::Tuple(tuple) => items(&tuple.elts),
        Expr::Set(set) => items(&set.elts),
        Expr::Dict(dict) => {
            let mut entries = Vec::new();
            for (key, value) in dict.keys.iter().zip(&dict.values) {
                let Some(key) = key else {
                    return Err(not_literal("`**` unpacking"));
                };
                let key_value = literal(key, lines)?;
                let value_lit = literal(value, lines)?;
                if let Lit::Str(name) = key_value {
                    entries.push(Entry {
                        key: name,
                        value: value_lit,
                        line: line(key),
                    });
                }
            }
            Ok(Lit::Dict(entries))
        }
        Expr::UnaryOp(op) if matches!(op.op, UnaryOp::USub | UnaryOp::UAdd) => {
            match literal(&op.operand, lines)? {
                Lit::Int(i) if op.op == UnaryOp::USub => Ok(Lit::Int(-i)),
                Lit::Float(f) if op.op == UnaryOp::USub => Ok(Lit::Float(-f)),
                number @ (Lit::Int(_) | Lit::Float(_)) => Ok(number),
                _ => Err(not_literal("a sign before a non-number")),
            }
        }
        Expr::Name(name) => Err(not_literal(&format!("the name `{}`", name.id))),
        Expr::Call(_) => Err(not_literal("a call")),
        Expr::JoinedStr(_) => Err(not_literal("an f-string")),
        _ => Err(not_literal("an expression")),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse, Lit, ManifestError};

    #[test]
    fn keys_and_items_keep_their_lines() {
        let text = "# -*- coding: utf-8 -*-\n{\n    'name': 'Shop',\n    'depends': [\n        'base',\n        'mail',\n    ],\n    'installable': True,\n}\n";
        let manifest = parse(text).unwrap_or_else(|e| unreachable!("{e:?}"));
        assert_eq!(manifest.line, 2);
        let depends = manifest.get("depends").map(|e| (&e.value, e.line));
        let Some((Lit::List(items), 4)) = depends else {
            unreachable!("{depends:?}")
        };
        assert_eq!(items.iter().map(|i| i.line).collect::<Vec<_>>(), [5, 6]);
        assert_eq!(
            manifest.get("installable").map(|e| &e.value),
            Some(&Lit::Bool(true))
        );
    }

    #[test]
    fn a_call_or_a_name_is_not_a_literal() {
        assert!(matches!(
            parse("{\n 'name': 'x',\n 'data': glob('*.xml'),\n}"),
            Err(ManifestError::NotLiteral { line: 3, .. })
        ));
        assert!(matches!(
            parse("dict(name='x')"),
            Err(ManifestError::NotLiteral { line: 1, .. })
        ));
        assert!(matches!(
            parse("{'name': 'x',\n 'version': '1.0'\n 'depends': []}"),
            Err(ManifestError::NotLiteral { .. })
        ));
        assert!(matches!(
            parse("['a']"),
            Err(ManifestError::NotDict { line: 1, .. })
        ));
    }
}
