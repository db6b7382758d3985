//! The list query language and the search attribute catalog.
//!
//! * [`attrs`]: value types, the predefined attributes, the [`Catalog`] of custom ones and name resolution.
//! * [`query`]: [`parse`] turns a list query into a typed [`Query`], with Temporal's rules and messages.
//! * [`payload`]: search attribute payloads as SDKs send them, decoded to and encoded from [`Literal`]s.
//! * [`values`]: datetime, duration and workflow status conversions; [`text`]: Text attribute matching.
//! * [`sql`]: list queries as SQL over the SQL stores' common `runs` and `run_attrs` tables.
//!
//! Value representations in a typed query: Keyword/Text/KeywordList are `Literal::Str`, Int is
//! `Literal::Int`, Double is `Literal::Double`, Bool is `Literal::Bool`, Datetime is `Literal::Time`
//! (unix nanoseconds). Two system columns differ from their declared Keyword/Int type:
//! ExecutionStatus values are `Literal::Int` (the `WorkflowExecutionStatus` number) and
//! ExecutionDuration values are `Literal::Int` nanoseconds.

pub mod attrs;
mod lexer;
mod parser;
pub mod payload;
pub mod query;
pub mod sql;
pub mod text;
pub mod values;

pub use attrs::{Attr, Catalog, NoCustomAttributes, SYSTEM_ATTRIBUTES, SystemColumn, ValueType, resolve, system_attr};
pub use payload::{PayloadError, decode, decode_named, encode, payload_type};
pub use query::{
    CmpOp, Expr, Literal, MAX_NESTING_DEPTH, MAX_QUERY_BYTES, MAX_TREE_DEPTH, OrderBy, Query, QueryError, parse,
};
