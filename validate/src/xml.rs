//! What the checks need from an XML data file: the ids it defines, the ids it refers to
//! and the models its views are for, each with its line, in document order.
//!
//! Defining elements are the direct children of `<odoo>`, `<openerp>` or `<data>`:
//! `<record>`, `<template>`, `<menuitem>`, `<report>`, `<act_window>`. References:
//! `ref="x"` on a record's `<field>` (and anywhere else), `eval="... ref('x') ..."`,
//! `<template inherit_id>`, `<menuitem parent action>`, every `groups="a,-b"` (views'
//! arch included), and `%(x)d` in an attribute (the arch's buttons).

use std::sync::OnceLock;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use regex::Regex;

use crate::text::Lines;

/// An id a file defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Definition {
    /// As written (`view_a` or `module.view_a`).
    pub(crate) id: String,
    pub(crate) line: u32,
}

/// An id a file refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    /// As written (`view_a` or `module.view_a`).
    pub(crate) id: String,
    pub(crate) line: u32,
    /// Its place in the file among definitions: the number of ids defined before it
    /// (a record's own references come before the record exists).
    pub(crate) defined_before: usize,
}

/// A view record's `<field name="model">`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ViewModel {
    pub(crate) model: String,
    pub(crate) line: u32,
}

/// A data file that is well-formed XML.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DataFile {
    pub(crate) definitions: Vec<Definition>,
    pub(crate) references: Vec<Reference>,
    pub(crate) view_models: Vec<ViewModel>,
}

/// Where the file stops being XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) line: u32,
    pub(crate) message: String,
}

fn eval_ref() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"\bref\(\s*['"]([A-Za-z0-9_.]+)['"]\s*\)"#).unwrap_or_else(|_| unreachable!())
    })
}

fn percent_ref() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^%\(([A-Za-z0-9_.]+)\)d$").unwrap_or_else(|_| unreachable!()))
}

/// Where an element sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// `<odoo>`, `<openerp>`, `<data>`: their children define ids.
    Container,
    /// A defining element: `<record>` (with whether it is a view), `<template>`, a
    /// `<menuitem>` (whose nested menu items define ids too), ...
    Record { view: bool, menu: bool },
    /// A `<field>` directly in a record (`model` when it is a view's model field).
    Field { model_of_view: bool },
    /// Anything else (arch content, `<function>`, ...).
    Other,
}

fn attributes(start: &BytesStart<'_>) -> Result<Vec<(String, String)>, String> {
    start
        .attributes()
        .map(|attribute| {
            let attribute = attribute.map_err(|e| e.to_string())?;
            let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
            let value = attribute
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| e.to_string())?
                .into_owned();
            Ok((key, value))
        })
        .collect()
}

/// Reads one XML data file.
pub(crate) fn parse(text: &str) -> Result<DataFile, SyntaxError> {
    let lines = Lines::new(text);
    let mut reader = Reader::from_str(text);
    let mut file = DataFile::default();
    let mut stack: Vec<(Vec<u8>, Frame)> = Vec::new();
    let mut model_text: Option<(String, u32)> = None;
    loop {
        let position = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader.read_event().map_err(|e| SyntaxError {
            line: lines.line(usize::try_from(reader.error_position()).unwrap_or(position)),
            message: e.to_string(),
        })?;
        let (start, empty) = match event {
            Event::Start(start) => (start, false),
            Event::Empty(start) => (start, true),
            Event::Text(text) => {
                if let Some((model, _)) = model_text.as_mut() {
                    model.push_str(&text.decode().map_err(|e| SyntaxError {
                        line: lines.line(position),
                        message: e.to_string(),
                    })?);
                }
                continue;
            }
            Event::End(_) => {
                if let Some((
                    _,
                    Frame::Field {
                        model_of_view: true,
                    },
                )) = stack.last()
                {
                    if let Some((model, line)) = model_text.take() {
                        file.view_models.push(ViewModel {
                            model: model.trim().to_owned(),
                            line,
                        });
                    }
                }
                stack.pop();
                continue;
            }
            Event::Eof => {
                if let Some((name, _)) = stack.last() {
                    return Err(SyntaxError {
                        line: lines.line(text.len()),
                        message: format!(
                            "the file ends inside <{}>",
                            String::from_utf8_lossy(name)
                        ),
                    });
                }
                return Ok(file);
            }
            _ => continue,
        };
        let line = lines.line(position);
        let name = start.name().as_ref().to_vec();
        let attributes = attributes(&start).map_err(|message| SyntaxError { line, message })?;
        let attribute = |key: &str| {
            attributes
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let parent = stack.last().map_or(Frame::Container, |(_, frame)| *frame);
        let top = stack.is_empty();
        let defines = top
            || parent == Frame::Container
            || (name == b"menuitem" && matches!(parent, Frame::Record { menu: true, .. }));
        let reference = |id: &str, file: &mut DataFile| {
            let id = id.trim();
            if !id.is_empty() {
                let defined_before = file.definitions.len();
                file.references.push(Reference {
                    id: id.to_owned(),
                    line,
                    defined_before,
                });
            }
        };
        let frame = match name.as_slice() {
            b"odoo" | b"openerp" | b"data" if defines => Frame::Container,
            b"record" | b"template" | b"menuitem" | b"report" | b"act_window" if defines => {
                let view = name == b"template" || attribute("model") == Some("ir.ui.view");
                if name == b"template" {
                    if let Some(inherit) = attribute("inherit_id") {
                        reference(inherit, &mut file);
                    }
                }
                if name == b"menuitem" {
                    for key in ["parent", "action"] {
                        if let Some(id) = attribute(key) {
                            reference(id, &mut file);
                        }
                    }
                }
                Frame::Record {
                    view,
                    menu: name == b"menuitem",
                }
            }
            b"field" if matches!(parent, Frame::Record { .. }) => Frame::Field {
                model_of_view: matches!(parent, Frame::Record { view: true, .. })
                    && attribute("name") == Some("model"),
            },
            _ => Frame::Other,
        };
        if let Some(id) = attribute("ref") {
            reference(id, &mut file);
        }
        if let Some(expression) = attribute("eval") {
            for capture in eval_ref().captures_iter(expression) {
                reference(&capture[1], &mut file);
            }
        }
        if let Some(groups) = attribute("groups") {
            for group in groups.split(',') {
                reference(group.trim().trim_start_matches('-'), &mut file);
            }
        }
        for (_, value) in &attributes {
            if let Some(capture) = percent_ref().captures(value.trim()) {
                reference(&capture[1], &mut file);
            }
        }
        if let Frame::Record { .. } = frame {
            if let Some(id) = attribute("id") {
                file.definitions.push(Definition {
                    id: id.to_owned(),
                    line,
                });
            }
        }
        if frame
            == (Frame::Field {
                model_of_view: true,
            })
            && !empty
        {
            model_text = Some((String::new(), line));
        }
        if !empty {
            stack.push((name, frame));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    const VIEWS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<odoo>
    <record id="view_item_form" model="ir.ui.view">
        <field name="name">shop.item.form</field>
        <field name="model">shop.item</field>
        <field name="inherit_id" ref="base.view_partner_form"/>
        <field name="arch" type="xml">
            <form>
                <field name="model"/>
                <button name="%(action_item)d" type="action" groups="base.group_user,-base.group_portal"/>
            </form>
        </field>
    </record>
    <menuitem id="menu_root" name="Shop" action="action_item"/>
    <record id="rule" model="ir.rule">
        <field name="groups" eval="[(4, ref('group_manager'))]"/>
    </record>
</odoo>
"#;

    #[test]
    fn ids_references_and_view_models_have_their_lines() {
        let file = parse(VIEWS).unwrap_or_else(|e| unreachable!("{e:?}"));
        let defined: Vec<_> = file
            .definitions
            .iter()
            .map(|d| (d.id.as_str(), d.line))
            .collect();
        assert_eq!(
            defined,
            [("view_item_form", 3), ("menu_root", 14), ("rule", 15)]
        );
        let referred: Vec<_> = file
            .references
            .iter()
            .map(|r| (r.id.as_str(), r.line, r.defined_before))
            .collect();
        assert_eq!(
            referred,
            [
                ("base.view_partner_form", 6, 1),
                ("base.group_user", 10, 1),
                ("base.group_portal", 10, 1),
                ("action_item", 10, 1),
                ("action_item", 14, 1),
                ("group_manager", 16, 3),
            ]
        );
        assert_eq!(file.view_models.len(), 1);
        assert_eq!(file.view_models[0].model, "shop.item");
        assert_eq!(file.view_models[0].line, 5);
    }

    #[test]
    fn broken_xml_has_its_line() {
        let err = parse("<odoo>\n  <record id=\"a\" model=\"x\">\n  </field>\n</odoo>\n");
        assert!(matches!(err, Err(ref e) if e.line == 3), "{err:?}");
        let err = parse("<odoo>\n  <record id=\"a\" model=\"x\">\n");
        assert!(err.is_err());
    }
}
