//! What the checks need from an addon's Python sources, read by a Python parser: the
//! model classes (their `_name`, `_inherit` and fields) and the relative imports.

use rustpython_parser::ast::{self, Constant, Expr, Ranged, Stmt};
use rustpython_parser::Parse;

use crate::text::Lines;

/// A class with `_name` or `_inherit` in its body: an Odoo model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModelClass {
    /// `_name`, when set.
    pub(crate) name: Option<String>,
    /// `_inherit`, a string or a list of strings.
    pub(crate) inherit: Vec<String>,
    /// The line of the `class` statement.
    pub(crate) line: u32,
    /// The fields it declares (`x = fields.Char(...)`).
    pub(crate) fields: Vec<String>,
}

impl ModelClass {
    /// The model this class defines or extends: `_name`, else a single `_inherit`.
    pub(crate) fn model(&self) -> Option<&str> {
        match (self.name.as_deref(), self.inherit.as_slice()) {
            (Some(name), _) => Some(name),
            (None, [single]) => Some(single.as_str()),
            (None, _) => None,
        }
    }
}

/// `from . import a, b` (module `None`) or `from .models import a` (module `models`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RelativeImport {
    pub(crate) module: Option<String>,
    pub(crate) names: Vec<String>,
    pub(crate) line: u32,
}

/// A Python file that parses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Source {
    pub(crate) models: Vec<ModelClass>,
    pub(crate) imports: Vec<RelativeImport>,
}

/// A syntax error: its line and Python's words for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) line: u32,
    pub(crate) message: String,
}

fn string(expression: &Expr) -> Option<String> {
    match expression {
        Expr::Constant(ast::ExprConstant {
            value: Constant::Str(s),
            ..
        }) => Some(s.clone()),
        _ => None,
    }
}

fn strings(expression: &Expr) -> Vec<String> {
    match expression {
        Expr::List(list) => list.elts.iter().filter_map(string).collect(),
        Expr::Tuple(tuple) => tuple.elts.iter().filter_map(string).collect(),
        other => string(other).into_iter().collect(),
    }
}

fn is_field_call(expression: &Expr) -> bool {
    let Expr::Call(call) = expression else {
        return false;
    };
    matches!(&*call.func, Expr::Attribute(attribute)
        if matches!(&*attribute.value, Expr::Name(name) if name.id.as_str() == "fields"))
}

fn model_class(class: &ast::StmtClassDef, lines: &Lines) -> Option<ModelClass> {
    let mut model = ModelClass {
        name: None,
        inherit: Vec::new(),
        line: lines.line(usize::from(class.start())),
        fields: Vec::new(),
    };
    let mut is_model = false;
    for statement in &class.body {
        let (targets, value): (Vec<&Expr>, &Expr) = match statement {
            Stmt::Assign(assign) => (assign.targets.iter().collect(), &assign.value),
            Stmt::AnnAssign(assign) => match &assign.value {
                Some(value) => (vec![&*assign.target], value),
                None => continue,
            },
            _ => continue,
        };
        for target in targets {
            let Expr::Name(name) = target else { continue };
            match name.id.as_str() {
                "_name" => {
                    is_model = true;
                    model.name = string(value);
                }
                "_inherit" => {
                    is_model = true;
                    model.inherit = strings(value);
                }
                field if is_field_call(value) => model.fields.push(field.to_owned()),
                _ => {}
            }
        }
    }
    is_model.then_some(model)
}

/// Reads a Python file.
pub(crate) fn parse(text: &str, path: &str) -> Result<Source, SyntaxError> {
    let lines = Lines::new(text);
    let suite = ast::Suite::parse(text, path).map_err(|err| SyntaxError {
        line: lines.line(usize::from(err.offset)),
        message: err.error.to_string(),
    })?;
    let mut source = Source::default();
    for statement in &suite {
        match statement {
            Stmt::ClassDef(class) => {
                if let Some(model) = model_class(class, &lines) {
                    source.models.push(model);
                }
            }
            Stmt::ImportFrom(import) if import.level.is_some_and(|l| l.to_u32() == 1) => {
                source.imports.push(RelativeImport {
                    module: import.module.as_ref().map(|m| m.as_str().to_owned()),
                    names: import
                        .names
                        .iter()
                        .map(|alias| alias.name.as_str().to_owned())
                        .collect(),
                    line: lines.line(usize::from(import.start())),
                });
            }
            _ => {}
        }
    }
    Ok(source)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn models_fields_and_imports_are_found() {
        let text = "from odoo import fields, models\nfrom . import wizard\n\n\nclass Item(models.Model):\n    _name = 'shop.item'\n    _description = 'Item'\n\n    name = fields.Char(required=True)\n    price: float = fields.Float()\n\n\nclass Partner(models.Model):\n    _inherit = ['res.partner']\n    points = fields.Integer()\n\n\nclass Helper:\n    pass\n";
        let source = parse(text, "models.py").unwrap_or_else(|e| unreachable!("{e:?}"));
        assert_eq!(source.models.len(), 2);
        assert_eq!(source.models[0].model(), Some("shop.item"));
        assert_eq!(source.models[0].line, 5);
        assert_eq!(source.models[0].fields, ["name", "price"]);
        assert_eq!(source.models[1].model(), Some("res.partner"));
        assert_eq!(source.imports.len(), 1);
        assert_eq!(source.imports[0].names, ["wizard"]);
        assert_eq!(source.imports[0].line, 2);
    }

    #[test]
    fn a_syntax_error_has_its_line() {
        let err = parse("class A:\n    def f(self:\n        pass\n", "a.py");
        assert!(matches!(err, Err(e) if e.line == 3));
    }
}
