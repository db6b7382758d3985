//! The list query language: the typed query tree, `parse`, and the typing rules Temporal applies to values and operators.

use std::fmt::Write as _;

use crate::attrs::{Attr, Catalog, SystemColumn, ValueType, resolve};
use crate::lexer::lex;
use crate::parser::{Parser, PredKind, RawName, RawPred, RawVal, Val};
use crate::values::{execution_status_from_name, parse_datetime, parse_duration};

/// Longest accepted query, in bytes.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;
/// Deepest accepted nesting of parentheses and NOTs.
pub const MAX_NESTING_DEPTH: usize = 100;
/// Deepest typed [`Expr`] tree `parse` returns (a leaf has depth 1), so that recursive consumers
/// have a known bound. AND/OR chains are balanced; no realistic query comes near this.
pub const MAX_TREE_DEPTH: usize = 512;

/// A typed value. `Time` is unix nanoseconds (UTC).
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Int(i64),
    Double(f64),
    Bool(bool),
    Time(i64),
}

/// Comparison operators; `<>` is parsed as `Ne`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    /// The operator as Temporal prints it in messages ("=", "!=", ">", ...).
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }
}

/// A typed filter. Every leaf carries the attribute and its type; values are already converted
/// to the attribute's representation (see the crate docs for ExecutionStatus, ExecutionDuration, Datetime).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Compare { attr: Attr, ty: ValueType, op: CmpOp, value: Literal },
    In { attr: Attr, ty: ValueType, values: Vec<Literal>, negated: bool },
    Between { attr: Attr, ty: ValueType, low: Literal, high: Literal, negated: bool },
    StartsWith { attr: Attr, ty: ValueType, prefix: String, negated: bool },
    IsNull { attr: Attr, ty: ValueType, negated: bool },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

/// One ORDER BY item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy {
    pub attr: Attr,
    pub ty: ValueType,
    pub descending: bool,
}

/// A parsed list query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub filter: Option<Expr>,
    pub order_by: Vec<OrderBy>,
    pub group_by: Vec<Attr>,
}

/// Why a query was rejected. `position` is the 1-based character offset into the user's query
/// of the offending token, when known (always set for syntax errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid query: {message}")]
pub struct QueryError {
    pub position: Option<usize>,
    pub message: String,
}

impl QueryError {
    pub(crate) fn new(position: Option<usize>, message: impl Into<String>) -> Self {
        QueryError { position, message: message.into() }
    }

    pub(crate) fn syntax(position: usize, what: impl std::fmt::Display) -> Self {
        QueryError::new(Some(position), format!("malformed SQL query: syntax error at position {position}: {what}"))
    }
}

/// Parses and types a list query (the text of `ListWorkflowExecutions.query`).
pub fn parse(query: &str, catalog: &dyn Catalog) -> Result<Query, QueryError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(QueryError::new(
            None,
            format!("query is too long: {} bytes exceeds the limit of {MAX_QUERY_BYTES} bytes", query.len()),
        ));
    }
    let toks = lex(query)?;
    let raw = Parser::new(toks).parse_query(&mut |p| type_pred(p, catalog))?;
    let filter = raw.filter.transpose()?;

    if raw.group_by.len() > 1 {
        let pos = raw.group_by.get(1).map(|n| n.pos);
        return Err(QueryError::new(pos, "operation is not supported: 'GROUP BY' clause supports only a single field"));
    }
    let mut group_by = Vec::new();
    for name in raw.group_by {
        let (attr, _) = resolve_name(catalog, &name)?;
        if attr != Attr::Column(SystemColumn::ExecutionStatus) {
            return Err(QueryError::new(
                Some(name.pos),
                format!(
                    "operation is not supported: 'GROUP BY' clause is not supported for search attribute {}",
                    attr.name()
                ),
            ));
        }
        group_by.push(attr);
    }

    let mut order_by = Vec::new();
    for (name, descending) in raw.order_by {
        let (attr, ty) = resolve_name(catalog, &name)?;
        if ty == ValueType::Text {
            return Err(QueryError::new(
                Some(name.pos),
                "operation is not supported: unable to sort by search attribute type Text",
            ));
        }
        order_by.push(OrderBy { attr, ty, descending });
    }

    if let Some(pos) = raw.limit {
        return Err(QueryError::new(Some(pos), "operation is not supported: 'LIMIT' clause"));
    }

    Ok(Query { filter, order_by, group_by })
}

fn resolve_name(catalog: &dyn Catalog, name: &RawName) -> Result<(Attr, ValueType), QueryError> {
    resolve(catalog, &name.name)
        .ok_or_else(|| QueryError::new(Some(name.pos), format!("invalid search attribute: {}", name.name)))
}

/// Operator families, for checking what a type supports.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OpClass {
    Equality,
    Ordering,
    In,
    Between,
    StartsWith,
    Like,
}

fn supports(attr: &Attr, ty: ValueType, class: OpClass) -> bool {
    use OpClass::*;
    match ty {
        ValueType::Text => class == Equality,
        ValueType::KeywordList => matches!(class, Equality | In),
        ValueType::Keyword => match class {
            Like => false,
            // ExecutionStatus values are converted to enum numbers, so a prefix means nothing.
            StartsWith => *attr != Attr::Column(SystemColumn::ExecutionStatus),
            _ => true,
        },
        ValueType::Int | ValueType::Double | ValueType::Datetime => {
            matches!(class, Equality | Ordering | In | Between)
        }
        ValueType::Bool => matches!(class, Equality | Ordering | In),
    }
}

fn check_op(attr: &Attr, ty: ValueType, class: OpClass, op: &str, name: &str, pos: usize) -> Result<(), QueryError> {
    if supports(attr, ty, class) {
        return Ok(());
    }
    Err(QueryError::new(
        Some(pos),
        format!("operation is not supported: operator '{op}' not supported for {ty} type search attribute '{name}'"),
    ))
}

fn neg_op(negated: bool, op: &str) -> String {
    if negated { format!("NOT {op}") } else { op.to_owned() }
}

fn type_pred(p: RawPred, catalog: &dyn Catalog) -> Result<Expr, QueryError> {
    let RawPred { name, pos, kind } = p;
    let (attr, ty) = resolve(catalog, &name)
        .ok_or_else(|| QueryError::new(Some(pos), format!("invalid search attribute: {name}")))?;
    let cx = ValueCx { attr: &attr, ty, name: &name };
    let expr = match kind {
        PredKind::IsNull(negated) => Expr::IsNull { attr: attr.clone(), ty, negated },
        PredKind::Cmp(op, v) => {
            let class = match op {
                CmpOp::Eq | CmpOp::Ne => OpClass::Equality,
                _ => OpClass::Ordering,
            };
            check_op(&attr, ty, class, op.symbol(), &name, pos)?;
            let value = cx.convert(v)?;
            Expr::Compare { attr: attr.clone(), ty, op, value }
        }
        PredKind::In(vals, negated) => {
            check_op(&attr, ty, OpClass::In, &neg_op(negated, "IN"), &name, pos)?;
            let values = vals.into_iter().map(|v| cx.convert(v)).collect::<Result<Vec<_>, _>>()?;
            Expr::In { attr: attr.clone(), ty, values, negated }
        }
        PredKind::Between(low, high, negated) => {
            let op = neg_op(negated, "BETWEEN");
            check_op(&attr, ty, OpClass::Between, &op, &name, pos)?;
            let low = cx.convert(low)?;
            let high = cx.convert(high)?;
            Expr::Between { attr: attr.clone(), ty, low, high, negated }
        }
        PredKind::StartsWith(v, negated) => {
            let op = neg_op(negated, "STARTS_WITH");
            check_op(&attr, ty, OpClass::StartsWith, &op, &name, pos)?;
            let prefix = match cx.convert(v)? {
                Literal::Str(s) => s,
                // Unreachable for string types, which only ever yield Str.
                other => {
                    return Err(QueryError::new(
                        Some(pos),
                        format!("invalid expression: STARTS_WITH needs a string, got {other:?}"),
                    ));
                }
            };
            Expr::StartsWith { attr: attr.clone(), ty, prefix, negated }
        }
        PredKind::Like(negated) => {
            check_op(&attr, ty, OpClass::Like, &neg_op(negated, "LIKE"), &name, pos)?;
            // `supports` never accepts LIKE.
            return Err(QueryError::new(Some(pos), "operation is not supported: LIKE"));
        }
    };
    Ok(expr)
}

/// The attribute a value is converted for.
struct ValueCx<'a> {
    attr: &'a Attr,
    ty: ValueType,
    name: &'a str,
}

/// A number literal, read the way Go's parser would type it.
enum Number {
    Int(i64),
    Float(f64),
}

fn read_number(text: &str, negative: bool) -> Number {
    let signed = if negative { format!("-{text}") } else { text.to_owned() };
    if let Ok(i) = signed.parse::<i64>() {
        return Number::Int(i);
    }
    Number::Float(signed.parse::<f64>().unwrap_or(f64::NAN))
}

impl ValueCx<'_> {
    fn err(&self, pos: usize, message: String) -> QueryError {
        QueryError::new(Some(pos), message)
    }

    /// `invalid value type for search attribute X of type T: <go %#v> (type: <go type>)`
    fn type_err(&self, v: &RawVal) -> QueryError {
        let (shown, go_type) = match &v.val {
            Val::Str(s) => (go_quote(s), "string"),
            Val::Num { text, negative } => {
                let shown = if *negative { format!("-{text}") } else { text.clone() };
                match read_number(text, *negative) {
                    Number::Int(_) => (shown, "int64"),
                    Number::Float(_) => (shown, "float64"),
                }
            }
            Val::Bool(b) => (b.to_string(), "bool"),
            Val::Null => ("nil".to_owned(), "nil"),
            Val::Ident(s) => (s.clone(), "identifier"),
        };
        self.err(
            v.pos,
            format!(
                "invalid expression: invalid value type for search attribute {} of type {}: {shown} (type: {go_type})",
                self.name, self.ty
            ),
        )
    }

    fn convert(&self, v: RawVal) -> Result<Literal, QueryError> {
        let pos = v.pos;
        match &v.val {
            Val::Ident(id) => {
                return Err(self.err(
                    pos,
                    format!(
                        "operation is not supported: column name on the right side of comparison expression (did you forget to quote {}?)",
                        go_quote(id)
                    ),
                ));
            }
            Val::Null => {
                return Err(self.err(
                    pos,
                    format!(
                        "invalid expression: NULL is not a value for search attribute {} (use IS NULL or IS NOT NULL)",
                        self.name
                    ),
                ));
            }
            _ => {}
        }
        match self.attr {
            Attr::Column(SystemColumn::ExecutionStatus) => return self.execution_status(v),
            Attr::Column(SystemColumn::ExecutionDuration) => return self.execution_duration(v),
            _ => {}
        }
        match (self.ty, &v.val) {
            (ValueType::Keyword | ValueType::KeywordList, Val::Str(s)) => Ok(Literal::Str(s.clone())),
            (ValueType::Text, Val::Str(s)) => {
                if s.trim().is_empty() {
                    return Err(self.err(
                        pos,
                        format!(
                            "invalid expression: no tokens found filtering on Text type search attribute {}",
                            self.name
                        ),
                    ));
                }
                Ok(Literal::Str(s.clone()))
            }
            (ValueType::Int, Val::Num { text, negative }) => match read_number(text, *negative) {
                Number::Int(i) => Ok(Literal::Int(i)),
                Number::Float(_) => Err(self.type_err(&v)),
            },
            (ValueType::Double, Val::Num { text, negative }) => match read_number(text, *negative) {
                Number::Int(i) => Ok(Literal::Double(i as f64)),
                Number::Float(f) if f.is_finite() => Ok(Literal::Double(f)),
                Number::Float(_) => Err(self.type_err(&v)),
            },
            (ValueType::Bool, Val::Bool(b)) => Ok(Literal::Bool(*b)),
            (ValueType::Bool, Val::Str(s)) if s.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
            (ValueType::Bool, Val::Str(s)) if s.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
            (ValueType::Datetime, Val::Str(s)) => parse_datetime(s)
                .map(Literal::Time)
                .ok_or_else(|| self.err(pos, format!("invalid expression: unable to parse datetime '{s}'"))),
            (ValueType::Datetime, Val::Num { text, negative }) => match read_number(text, *negative) {
                Number::Int(i) => Ok(Literal::Time(i)),
                Number::Float(_) => Err(self.type_err(&v)),
            },
            _ => Err(self.type_err(&v)),
        }
    }

    fn execution_status(&self, v: RawVal) -> Result<Literal, QueryError> {
        match &v.val {
            Val::Str(s) => execution_status_from_name(s)
                .map(|n| Literal::Int(i64::from(n)))
                .ok_or_else(|| self.err(v.pos, format!("invalid expression: invalid ExecutionStatus value '{s}'"))),
            Val::Num { text, negative } => {
                let valid = match read_number(text, *negative) {
                    Number::Int(i) => i32::try_from(i).ok().and_then(crate::values::execution_status_name).map(|_| i),
                    Number::Float(_) => None,
                };
                valid.map(Literal::Int).ok_or_else(|| {
                    let shown = if *negative { format!("-{text}") } else { text.clone() };
                    self.err(v.pos, format!("invalid expression: invalid ExecutionStatus value {shown}"))
                })
            }
            _ => Err(self.type_err(&v)),
        }
    }

    fn execution_duration(&self, v: RawVal) -> Result<Literal, QueryError> {
        match &v.val {
            Val::Str(s) => parse_duration(s).map(Literal::Int).ok_or_else(|| {
                self.err(
                    v.pos,
                    format!("invalid expression: invalid duration value for search attribute ExecutionDuration: {s}"),
                )
            }),
            Val::Num { text, negative } => match read_number(text, *negative) {
                Number::Int(i) => Ok(Literal::Int(i)),
                Number::Float(_) => Err(self.type_err(&v)),
            },
            _ => Err(self.type_err(&v)),
        }
    }
}

/// Quotes a string the way Go's `%q` does (enough for error messages).
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
