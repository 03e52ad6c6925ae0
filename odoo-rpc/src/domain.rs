//! Search domains: a builder that serializes to Odoo's prefix-notation list.
//!
//! ```
//! use odoo_rpc::{Domain, Op};
//! use serde_json::json;
//!
//! let d = Domain::leaf("is_company", Op::Eq, true)
//!     .and(Domain::leaf("name", Op::ILike, "acme").or(Domain::leaf("ref", Op::In, vec!["A1", "B2"])))
//!     .and(Domain::any("child_ids", Domain::leaf("email", Op::NotILike, "@example.com")));
//! assert_eq!(
//!     d.to_value(),
//!     json!(["&", "&",
//!            ["is_company", "=", true],
//!            "|", ["name", "ilike", "acme"], ["ref", "in", ["A1", "B2"]],
//!            ["child_ids", "any", [["email", "not ilike", "@example.com"]]]])
//! );
//! ```
//!
//! An empty domain ([`Domain::new`]) matches every record and, as in Odoo's own
//! `expression.AND`/`OR`, adds no condition when combined: `d.and(Domain::new())`
//! and `d.or(Domain::new())` are both `d`. Negating it gives a domain that
//! matches nothing (`[[0, "=", 1]]`).

use std::fmt;
use std::str::FromStr;

use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::error::{Error, Result};

/// A comparison operator of a domain leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `=?`: true when the value is unset (`false`/`None`), else `=`.
    EqOrUnset,
    /// `=like`: SQL `LIKE` with the pattern as given.
    EqLike,
    /// `like`: `LIKE %value%`.
    Like,
    /// `not like`
    NotLike,
    /// `ilike`: case-insensitive `like`.
    ILike,
    /// `not ilike`
    NotILike,
    /// `=ilike`: case-insensitive `=like`.
    EqILike,
    /// `in`: the value is a list.
    In,
    /// `not in`
    NotIn,
    /// `child_of`: the record or one of its descendants.
    ChildOf,
    /// `parent_of`: the record or one of its ancestors.
    ParentOf,
    /// `any` (17.0+): some related record matches the sub-domain given as value.
    Any,
    /// `not any` (17.0+): no related record matches the sub-domain.
    NotAny,
}

impl Op {
    /// Every operator, in declaration order.
    pub const ALL: [Op; 19] = [
        Op::Eq,
        Op::Ne,
        Op::Gt,
        Op::Ge,
        Op::Lt,
        Op::Le,
        Op::EqOrUnset,
        Op::EqLike,
        Op::Like,
        Op::NotLike,
        Op::ILike,
        Op::NotILike,
        Op::EqILike,
        Op::In,
        Op::NotIn,
        Op::ChildOf,
        Op::ParentOf,
        Op::Any,
        Op::NotAny,
    ];

    /// The operator as Odoo spells it (`"not ilike"`, `"=?"`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::EqOrUnset => "=?",
            Op::EqLike => "=like",
            Op::Like => "like",
            Op::NotLike => "not like",
            Op::ILike => "ilike",
            Op::NotILike => "not ilike",
            Op::EqILike => "=ilike",
            Op::In => "in",
            Op::NotIn => "not in",
            Op::ChildOf => "child_of",
            Op::ParentOf => "parent_of",
            Op::Any => "any",
            Op::NotAny => "not any",
        }
    }

    /// Whether the value is a sub-domain (`any`, `not any`).
    #[must_use]
    pub fn takes_domain(self) -> bool {
        matches!(self, Op::Any | Op::NotAny)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Op {
    type Err = Error;

    /// Parses Odoo's spelling, case-insensitively; `<>` is read as `!=`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unknown operator.
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        if lower == "<>" {
            return Ok(Op::Ne);
        }
        Op::ALL
            .into_iter()
            .find(|op| op.as_str() == lower)
            .ok_or_else(|| Error::config(format!("unknown domain operator {s:?}")))
    }
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A search domain. Build it with [`Domain::leaf`], [`Domain::any`],
/// [`Domain::and`], [`Domain::or`], [`Domain::not`] (or `&`, `|`, `!`), or parse
/// Odoo's list form with [`Domain::from_value`]. Serializes to the list form.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Domain {
    /// `None`: no condition.
    root: Option<Node>,
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Leaf {
        field: String,
        op: Op,
        value: Value,
    },
    /// `[1, "=", 1]` (true) or `[0, "=", 1]` (false).
    Const(bool),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
}

impl Domain {
    /// The empty domain: every record.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A single condition: `[field, op, value]`. `field` may be a path
    /// (`"partner_id.country_id.code"`).
    #[must_use]
    pub fn leaf(field: impl Into<String>, op: Op, value: impl Into<Value>) -> Self {
        Self {
            root: Some(Node::Leaf {
                field: field.into(),
                op,
                value: value.into(),
            }),
        }
    }

    /// `[field, "any", sub_domain]`: some record of the relational `field` matches.
    #[must_use]
    pub fn any(field: impl Into<String>, sub_domain: Domain) -> Self {
        Self::leaf(field, Op::Any, sub_domain.to_value())
    }

    /// `[field, "not any", sub_domain]`: no record of `field` matches.
    #[must_use]
    pub fn not_any(field: impl Into<String>, sub_domain: Domain) -> Self {
        Self::leaf(field, Op::NotAny, sub_domain.to_value())
    }

    /// A domain that matches nothing: `[[0, "=", 1]]`.
    #[must_use]
    pub fn nothing() -> Self {
        Self {
            root: Some(Node::Const(false)),
        }
    }

    /// Whether this is the empty domain (no condition).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// Both conditions (`"&"`). An empty side adds nothing.
    #[must_use]
    pub fn and(self, other: Domain) -> Self {
        Self::combine(self, other, true)
    }

    /// Either condition (`"|"`). An empty side adds nothing (Odoo's convention).
    #[must_use]
    pub fn or(self, other: Domain) -> Self {
        Self::combine(self, other, false)
    }

    /// The negation (`"!"`). The empty domain's negation matches nothing.
    #[must_use]
    #[allow(clippy::should_implement_trait)] // `!` is implemented too, through this
    pub fn not(self) -> Self {
        let root = match self.root {
            None => Node::Const(false),
            Some(Node::Not(inner)) => *inner,
            Some(node) => Node::Not(Box::new(node)),
        };
        Self { root: Some(root) }
    }

    fn combine(a: Domain, b: Domain, and: bool) -> Self {
        let (a, b) = match (a.root, b.root) {
            (None, other) | (other, None) => return Self { root: other },
            (Some(a), Some(b)) => (a, b),
        };
        let mut items = Vec::new();
        for node in [a, b] {
            match (node, and) {
                (Node::And(inner), true) | (Node::Or(inner), false) => items.extend(inner),
                (node, _) => items.push(node),
            }
        }
        Self {
            root: Some(if and {
                Node::And(items)
            } else {
                Node::Or(items)
            }),
        }
    }

    /// The list form as a JSON value.
    #[must_use]
    pub fn to_value(&self) -> Value {
        let mut out = Vec::new();
        if let Some(root) = &self.root {
            push_prefix(root, &mut out);
        }
        Value::Array(out)
    }

    /// Parses Odoo's list form: prefix operators `"&"`, `"|"`, `"!"`, leaves
    /// `[field, op, value]`, `[1, "=", 1]`/`[0, "=", 1]`, with Odoo's implicit
    /// `"&"` between top-level terms.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the value is not a list, an operator lacks operands,
    /// a leaf is malformed or uses an unknown operator, or the value of
    /// `any`/`not any` is not itself a domain.
    pub fn from_value(value: Value) -> Result<Domain> {
        let Value::Array(items) = value else {
            return Err(Error::config("a domain must be a JSON list"));
        };
        parse_list(items, 0)
    }
}

fn parse_list(items: Vec<Value>, depth: usize) -> Result<Domain> {
    let mut tokens = items.into_iter();
    let mut terms = Vec::new();
    while let Some(node) = parse_node(&mut tokens, depth)? {
        terms.push(node);
    }
    Ok(terms.into_iter().fold(Domain::new(), |acc, node| {
        acc.and(Domain { root: Some(node) })
    }))
}

const MAX_DEPTH: usize = 256;

fn parse_node(tokens: &mut std::vec::IntoIter<Value>, depth: usize) -> Result<Option<Node>> {
    if depth > MAX_DEPTH {
        return Err(Error::config("domain nested too deeply"));
    }
    let Some(token) = tokens.next() else {
        return Ok(None);
    };
    let mut operand = |what: &str| -> Result<Node> {
        parse_node(tokens, depth + 1)?
            .ok_or_else(|| Error::config(format!("domain operator {what:?} lacks an operand")))
    };
    let node = match token {
        Value::String(s) if s == "&" => {
            let a = operand("&")?;
            let b = operand("&")?;
            Node::And(vec![a, b])
        }
        Value::String(s) if s == "|" => {
            let a = operand("|")?;
            let b = operand("|")?;
            Node::Or(vec![a, b])
        }
        Value::String(s) if s == "!" => Node::Not(Box::new(operand("!")?)),
        Value::Array(leaf) => parse_leaf(leaf, depth)?,
        Value::Bool(true) => Node::Const(true),
        Value::Bool(false) => Node::Const(false),
        other => {
            return Err(Error::config(format!(
                "unexpected domain element {other}: expected \"&\", \"|\", \"!\" or [field, operator, value]"
            )))
        }
    };
    Ok(Some(node))
}

fn parse_leaf(leaf: Vec<Value>, depth: usize) -> Result<Node> {
    let Ok::<[Value; 3], _>([field, op, value]) = leaf.try_into() else {
        return Err(Error::config(
            "a domain leaf must have three elements: [field, operator, value]",
        ));
    };
    let Value::String(op_text) = op else {
        return Err(Error::config("a domain operator must be a string"));
    };
    let op: Op = op_text.parse()?;
    match field {
        Value::String(field) if !field.is_empty() => {
            let value = if op.takes_domain() {
                // validate and normalize the sub-domain
                let Value::Array(items) = value else {
                    return Err(Error::config(format!(
                        "the value of {field:?} {op} must be a domain (a list)"
                    )));
                };
                let sub = parse_list(items, depth + 1).map_err(|e| match e {
                    Error::Config { message } => {
                        Error::config(format!("in the sub-domain of {field:?}: {message}"))
                    }
                    other => other,
                })?;
                sub.to_value()
            } else {
                value
            };
            Ok(Node::Leaf { field, op, value })
        }
        Value::Number(n) if op == Op::Eq && value.as_i64() == Some(1) => match n.as_i64() {
            Some(1) => Ok(Node::Const(true)),
            Some(0) => Ok(Node::Const(false)),
            _ => Err(Error::config("a domain leaf's field must be a name")),
        },
        _ => Err(Error::config(
            "a domain leaf's field must be a non-empty string",
        )),
    }
}

fn push_prefix(node: &Node, out: &mut Vec<Value>) {
    match node {
        Node::Leaf { field, op, value } => out.push(Value::Array(vec![
            Value::String(field.clone()),
            Value::String(op.as_str().to_owned()),
            value.clone(),
        ])),
        Node::Const(b) => out.push(serde_json::json!([i32::from(*b), "=", 1])),
        Node::And(items) | Node::Or(items) => {
            let symbol = if matches!(node, Node::And(_)) {
                "&"
            } else {
                "|"
            };
            for _ in 1..items.len() {
                out.push(Value::String(symbol.to_owned()));
            }
            for item in items {
                push_prefix(item, out);
            }
        }
        Node::Not(inner) => {
            out.push(Value::String("!".to_owned()));
            push_prefix(inner, out);
        }
    }
}

/// Serializes straight to the list form, without building a `Value`.
struct Prefix;

impl Prefix {
    fn len(node: &Node) -> usize {
        match node {
            Node::Leaf { .. } | Node::Const(_) => 1,
            Node::And(items) | Node::Or(items) => {
                items.len().saturating_sub(1) + items.iter().map(Self::len).sum::<usize>()
            }
            Node::Not(inner) => 1 + Self::len(inner),
        }
    }

    fn write<S: SerializeSeq>(node: &Node, seq: &mut S) -> Result<(), S::Error> {
        match node {
            Node::Leaf { field, op, value } => seq.serialize_element(&LeafRef(field, *op, value)),
            Node::Const(b) => seq.serialize_element(&(i32::from(*b), "=", 1)),
            Node::And(items) | Node::Or(items) => {
                let symbol = if matches!(node, Node::And(_)) {
                    "&"
                } else {
                    "|"
                };
                for _ in 1..items.len() {
                    seq.serialize_element(symbol)?;
                }
                items.iter().try_for_each(|item| Self::write(item, seq))
            }
            Node::Not(inner) => {
                seq.serialize_element("!")?;
                Self::write(inner, seq)
            }
        }
    }
}

struct LeafRef<'a>(&'a str, Op, &'a Value);

impl Serialize for LeafRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(3)?;
        tuple.serialize_element(self.0)?;
        tuple.serialize_element(self.1.as_str())?;
        tuple.serialize_element(self.2)?;
        tuple.end()
    }
}

impl Serialize for Domain {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.root {
            None => serializer.serialize_seq(Some(0))?.end(),
            Some(root) => {
                let mut seq = serializer.serialize_seq(Some(Prefix::len(root)))?;
                Prefix::write(root, &mut seq)?;
                seq.end()
            }
        }
    }
}

impl From<Domain> for Value {
    fn from(domain: Domain) -> Value {
        domain.to_value()
    }
}

impl fmt::Display for Domain {
    /// The list form as compact JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_value())
    }
}

impl std::ops::BitAnd for Domain {
    type Output = Domain;

    fn bitand(self, rhs: Domain) -> Domain {
        self.and(rhs)
    }
}

impl std::ops::BitOr for Domain {
    type Output = Domain;

    fn bitor(self, rhs: Domain) -> Domain {
        self.or(rhs)
    }
}

impl std::ops::Not for Domain {
    type Output = Domain;

    fn not(self) -> Domain {
        Domain::not(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_operator_serializes() {
        let expected = [
            "=",
            "!=",
            ">",
            ">=",
            "<",
            "<=",
            "=?",
            "=like",
            "like",
            "not like",
            "ilike",
            "not ilike",
            "=ilike",
            "in",
            "not in",
            "child_of",
            "parent_of",
            "any",
            "not any",
        ];
        assert_eq!(Op::ALL.len(), expected.len());
        for (op, text) in Op::ALL.into_iter().zip(expected) {
            let value = if op.takes_domain() {
                Domain::leaf("name", Op::Eq, "x").to_value()
            } else if matches!(op, Op::In | Op::NotIn) {
                json!([1, 2])
            } else {
                json!(1)
            };
            let d = Domain::leaf("f", op, value.clone());
            assert_eq!(d.to_value(), json!([["f", text, value]]), "{text}");
            assert_eq!(serde_json::to_value(&d).unwrap(), d.to_value(), "{text}");
            assert_eq!(text.parse::<Op>().unwrap(), op);
            assert_eq!(Domain::from_value(d.to_value()).unwrap(), d, "{text}");
        }
        assert_eq!("<>".parse::<Op>().unwrap(), Op::Ne);
        assert_eq!("NOT ILIKE".parse::<Op>().unwrap(), Op::NotILike);
        assert!(matches!("~".parse::<Op>(), Err(Error::Config { .. })));
    }

    #[test]
    fn empty_domain() {
        assert_eq!(Domain::new().to_value(), json!([]));
        assert_eq!(serde_json::to_string(&Domain::new()).unwrap(), "[]");
        assert!(Domain::new().is_empty());
        let a = Domain::leaf("a", Op::Eq, 1);
        assert_eq!(a.clone().and(Domain::new()), a);
        assert_eq!(Domain::new().or(a.clone()), a);
        assert_eq!(Domain::new().not().to_value(), json!([[0, "=", 1]]));
    }

    #[test]
    fn or_of_two() {
        let d = Domain::leaf("a", Op::Eq, 1).or(Domain::leaf("b", Op::Eq, 2));
        assert_eq!(d.to_value(), json!(["|", ["a", "=", 1], ["b", "=", 2]]));
    }

    #[test]
    fn nesting_and_flattening() {
        let a = || Domain::leaf("a", Op::Eq, 1);
        let b = || Domain::leaf("b", Op::Eq, 2);
        let c = || Domain::leaf("c", Op::Eq, 3);
        assert_eq!(
            (a() & b() & c()).to_value(),
            json!(["&", "&", ["a", "=", 1], ["b", "=", 2], ["c", "=", 3]])
        );
        assert_eq!(
            (a() | (b() & c())).to_value(),
            json!(["|", ["a", "=", 1], "&", ["b", "=", 2], ["c", "=", 3]])
        );
        assert_eq!(
            (!(a() | b())).to_value(),
            json!(["!", "|", ["a", "=", 1], ["b", "=", 2]])
        );
        assert_eq!(a().not().not(), a());
        let d = (a() | b()) & !c();
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!(["&", "|", ["a", "=", 1], ["b", "=", 2], "!", ["c", "=", 3]])
        );
        assert_eq!(d.to_string(), d.to_value().to_string());
    }

    #[test]
    fn any_takes_a_sub_domain() {
        let d = Domain::any("child_ids", Domain::leaf("name", Op::ILike, "x"))
            .and(Domain::not_any("tag_ids", Domain::new()));
        assert_eq!(
            d.to_value(),
            json!([
                "&",
                ["child_ids", "any", [["name", "ilike", "x"]]],
                ["tag_ids", "not any", []]
            ])
        );
    }

    #[test]
    fn parse_round_trips() {
        for raw in [
            json!([]),
            json!([["a", "=", 1]]),
            json!(["|", ["a", "=", 1], ["b", "=", 2]]),
            json!([
                "&",
                "!",
                ["a", "in", [1, 2]],
                "|",
                ["b", "=?", false],
                ["c", "child_of", 3]
            ]),
            json!([[1, "=", 1]]),
            json!([[0, "=", 1]]),
            json!([["p", "any", ["|", ["x", "=", 1], ["y", "!=", 2]]]]),
        ] {
            let d = Domain::from_value(raw.clone()).unwrap();
            assert_eq!(d.to_value(), raw);
        }
    }

    #[test]
    fn implicit_and() {
        let d = Domain::from_value(json!([["a", "=", 1], ["b", "=", 2], ["c", "=", 3]])).unwrap();
        assert_eq!(
            d.to_value(),
            json!(["&", "&", ["a", "=", 1], ["b", "=", 2], ["c", "=", 3]])
        );
        let d =
            Domain::from_value(json!(["|", ["a", "=", 1], ["b", "=", 2], ["c", "=", 3]])).unwrap();
        assert_eq!(
            d.to_value(),
            json!(["&", "|", ["a", "=", 1], ["b", "=", 2], ["c", "=", 3]])
        );
        // tuples in Python become lists; operators in upper case are accepted
        let d = Domain::from_value(json!([["name", "ILIKE", "x"]])).unwrap();
        assert_eq!(d.to_value(), json!([["name", "ilike", "x"]]));
    }

    #[test]
    fn parse_errors() {
        for raw in [
            json!({"a": 1}),
            json!("a"),
            json!(["|", ["a", "=", 1]]),
            json!(["&"]),
            json!(["!"]),
            json!([["a", "="]]),
            json!([["a", "=", 1, 2]]),
            json!([["a", "~", 1]]),
            json!([["a", 5, 1]]),
            json!([["", "=", 1]]),
            json!([[2, "=", 1]]),
            json!([5]),
            json!(["^"]),
            json!([["p", "any", "x"]]),
            json!([["p", "any", [["x"]]]]),
        ] {
            let err = Domain::from_value(raw.clone()).unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{raw}: {err:?}");
        }
        let mut deep = vec![json!("!"); 100_000];
        deep.push(json!(["a", "=", 1]));
        assert!(matches!(
            Domain::from_value(Value::Array(deep)),
            Err(Error::Config { .. })
        ));
    }
}
